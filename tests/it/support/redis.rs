//! A real Redis server for tests (Debian's `redis-server`), on 127.0.0.1 and a free port
//! with its own temporary directory and no persistence, killed on drop; and `redis-cli`
//! (Debian's `redis-tools`) as the reference every figure is compared with.
//!
//! Without the binaries the tests skip with a message (`apt-get install redis-server
//! redis-tools`, as scripts/test.sh does), unless WATCHPOST_REQUIRE_REDIS=1 or CI=true,
//! where they fail.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SERVER: &str = "redis-server";
pub const CLI: &str = "redis-cli";

pub fn redis_required() -> bool {
    std::env::var("WATCHPOST_REQUIRE_REDIS").is_ok_and(|v| v == "1")
        || std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Returns from the test with a visible message when Redis is not installed, or fails it
/// when it is required.
#[macro_export]
macro_rules! redis_or_skip {
    () => {
        for program in [$crate::support::redis::SERVER, $crate::support::redis::CLI] {
            if $crate::support::prometheus::installed(program).is_none() {
                let problem = format!(
                    "{program} is not installed (apt-get install redis-server redis-tools)"
                );
                if $crate::support::redis::redis_required() {
                    panic!("WATCHPOST_REQUIRE_REDIS=1 or CI=true, but {problem}");
                }
                eprintln!("SKIPPED (no Redis here): {problem}");
                return;
            }
        }
    };
}

/// A redis-server process, killed and reaped on drop.
pub struct Server {
    pub port: u16,
    pub dir: tempfile::TempDir,
    extra: Vec<String>,
    child: Option<Child>,
}

impl Server {
    /// Starts a server; `extra` are more `--name value` settings.
    pub fn start(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = super::prometheus::free_port();
        let mut server = Server {
            port,
            dir,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            child: None,
        };
        server.run();
        server
    }

    fn run(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("stderr.log")).expect("log file");
        let mut args: Vec<String> = [
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--dir",
            &self.dir.path().display().to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--protected-mode",
            "no",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(self.extra.iter().cloned());
        let child = Command::new(SERVER)
            .args(&args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start redis-server: {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.cli(&["PING"]).trim() != "PONG" {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("redis-server exited with {status}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "redis-server not ready:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the server (the port stays ours for [`Server::restart`]).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) {
        self.kill();
        self.run();
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// `redis-cli -p PORT ARGS…`'s output (raw, one answer a line).
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(CLI)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs each line of `commands` through one `redis-cli` connection.
    pub fn cli_lines(&self, commands: &[String]) -> String {
        let mut child = Command::new(CLI)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run redis-cli");
        let mut stdin = child.stdin.take().expect("stdin");
        for command in commands {
            writeln!(stdin, "{command}").expect("write a command");
        }
        drop(stdin);
        let out = child.wait_with_output().expect("redis-cli output");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `redis-cli INFO` as key → value.
    pub fn info(&self) -> HashMap<String, String> {
        self.cli(&["INFO"])
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (k, v) = l.split_once(':')?;
                Some((k.trim().to_string(), v.trim().to_string()))
            })
            .collect()
    }

    /// A `redis-cli` that holds one connection open, blocked in `BLPOP` until killed.
    pub fn blocked_client(&self, list: &str) -> Held {
        Held(
            Command::new(CLI)
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
                .args(["BLPOP", list, "0"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("run redis-cli BLPOP"),
        )
    }
}

/// One `redis-cli` connection kept open, fed commands one line at a time.
pub struct Controller {
    _child: Held,
    stdin: std::process::ChildStdin,
}

impl Controller {
    pub fn send(&mut self, command: &str) {
        writeln!(self.stdin, "{command}").expect("write to redis-cli");
        self.stdin.flush().expect("flush");
        // redis-cli answers in its own time; the caller waits for the effect.
        std::thread::sleep(Duration::from_millis(200));
    }
}

impl Server {
    /// A connection that stays open while the controller lives.
    pub fn controller(&self) -> Controller {
        let mut child = Command::new(CLI)
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run redis-cli");
        let stdin = child.stdin.take().expect("stdin");
        Controller {
            _child: Held(child),
            stdin,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A helper process killed on drop.
pub struct Held(pub Child);

impl Drop for Held {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
