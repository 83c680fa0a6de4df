//! A real PostgreSQL server for tests (Debian's `postgresql`): `initdb` into a temporary
//! directory, then `postgres` on 127.0.0.1, a free port and a unix socket in that directory,
//! stopped on drop; and `psql` (Debian's `postgresql-client`) as the reference every figure
//! is compared with. PostgreSQL refuses to run as root, so a test run as root runs the
//! server as readonly_db.rs's application user (`wp-app`, created when missing).
//!
//! Without the binaries the tests skip with a message (`apt-get install postgresql`, as
//! scripts/test.sh does), unless WATCHPOST_REQUIRE_POSTGRES=1 or CI=true, where they fail.
#![allow(dead_code)]

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn postgres_required() -> bool {
    std::env::var("WATCHPOST_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
        || std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The directory of `initdb` and `postgres`: Debian keeps them under
/// /usr/lib/postgresql/<version>/bin (the newest is taken), others on PATH.
pub fn bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).or_else(|| {
        super::prometheus::installed("postgres").and_then(|p| p.parent().map(Path::to_path_buf))
    })
}

/// Why the tests cannot run here, if they cannot.
pub fn missing() -> Option<String> {
    let Some(bin) = bin_dir() else {
        return Some("postgres is not installed (apt-get install postgresql)".into());
    };
    if !bin.join("initdb").is_file() {
        return Some(format!("no initdb in {}", bin.display()));
    }
    if super::prometheus::installed("psql").is_none() {
        return Some("psql is not installed (apt-get install postgresql-client)".into());
    }
    None
}

/// Returns from the test with a visible message when PostgreSQL is not installed (or no
/// user to run it as can be had), or fails it when it is required.
#[macro_export]
macro_rules! postgres_or_skip {
    () => {
        let problem = $crate::support::postgres::missing().or_else(|| {
            $crate::support::postgres::run_as()
                .err()
                .map(|e| format!("no user to run postgres as: {e}"))
        });
        if let Some(problem) = problem {
            if $crate::support::postgres::postgres_required() {
                panic!("WATCHPOST_REQUIRE_POSTGRES=1 or CI=true, but {problem}");
            }
            eprintln!("SKIPPED (no PostgreSQL here): {problem}");
            return;
        }
    };
}

/// The user the server runs as: `wp-app` under root, else ourselves (`None`).
pub fn run_as() -> Result<Option<(u32, u32)>, String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    crate::readonly_db::users().map(Some)
}

pub struct Server {
    pub port: u16,
    pub dir: tempfile::TempDir,
    user: Option<(u32, u32)>,
    child: Option<Child>,
}

impl Server {
    /// initdb (trust authentication, superuser `postgres`) and start; `settings` are more
    /// `-c name=value` for the server.
    pub fn start(settings: &[&str]) -> Server {
        let server = Server::empty();
        let out = server
            .command("initdb")
            .args(["-D", &server.data().display().to_string()])
            .args(["-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(server.data().join("postgresql.conf"))
            .unwrap();
        for setting in settings {
            writeln!(conf, "{setting}").unwrap();
        }
        let mut server = server;
        server.run();
        server
    }

    /// A streaming replica of `primary` (`pg_basebackup -R`), started on a port of its own.
    pub fn replica_of(primary: &Server) -> Server {
        let mut server = Server::empty();
        let out = server
            .command("pg_basebackup")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &primary.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-D", &server.data().display().to_string()])
            .args(["-R", "-X", "stream", "--no-sync"])
            .output()
            .expect("run pg_basebackup");
        assert!(
            out.status.success(),
            "pg_basebackup failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        server.run();
        server
    }

    /// A temporary directory with an empty data and socket directory for the server's user.
    fn empty() -> Server {
        let user = run_as().expect("a user to run postgres as");
        let dir = tempfile::tempdir().expect("temp dir");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        for sub in ["data", "sock"] {
            let path = dir.path().join(sub);
            std::fs::create_dir(&path).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
            if let Some((uid, gid)) = user {
                std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
            }
        }
        Server {
            port: super::prometheus::free_port(),
            dir,
            user,
            child: None,
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(bin_dir().expect("postgres installed").join(program));
        cmd.current_dir(self.dir.path());
        if let Some((uid, gid)) = self.user {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    fn run(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("server.log")).expect("log");
        let child = self
            .command("postgres")
            .args(["-D", &self.data().display().to_string()])
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args([
                "-c",
                &format!("unix_socket_directories={}", self.socket_dir().display()),
            ])
            .args(["-c", "fsync=off", "-c", "max_connections=30"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start postgres");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("postgres exited with {status}:\n{}", self.log());
            }
            if self.try_psql("SELECT 1").is_ok_and(|o| o.trim() == "1") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "postgres not ready:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Stops the server at once, as a crash would (SIGQUIT: immediate shutdown).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGQUIT);
            let deadline = Instant::now() + Duration::from_secs(20);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.kill();
        self.run();
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn psql_command(&self) -> Command {
        let mut cmd = Command::new("psql");
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", "postgres", "-X", "-q", "-At"])
            .env_remove("PGPASSWORD")
            .env_remove("PGOPTIONS");
        cmd
    }

    pub fn try_psql(&self, sql: &str) -> Result<String, String> {
        let out = self
            .psql_command()
            .args(["-v", "ON_ERROR_STOP=1", "-c", sql])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// `psql -At -c SQL`'s output, trimmed.
    pub fn psql(&self, sql: &str) -> String {
        self.try_psql(sql)
            .unwrap_or_else(|e| panic!("psql {sql:?}: {e}\n{}", self.log()))
            .trim()
            .to_string()
    }

    /// A `psql` session kept open, fed statements one line at a time.
    pub fn session(&self) -> Session {
        let mut child = self
            .psql_command()
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run psql");
        let stdin = child.stdin.take().expect("stdin");
        Session { child, stdin }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct Session {
    child: Child,
    stdin: std::process::ChildStdin,
}

impl Session {
    pub fn send(&mut self, sql: &str) {
        writeln!(self.stdin, "{sql}").expect("write to psql");
        self.stdin.flush().expect("flush");
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
