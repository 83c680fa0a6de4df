//! A real OpenSSH server for tests, on 127.0.0.1 and a free port, with everything it
//! needs in a temporary directory: its own host key, client keys (ed25519, ecdsa, rsa and
//! an encrypted ed25519), authorized_keys, a known_hosts file that knows the server, and
//! an empty ssh_config so the user's own ~/.ssh is never read. Killed (with every session
//! process it forked) on drop.
//!
//! Without /usr/sbin/sshd the tests skip with a message (`apt-get install
//! openssh-server`), unless WATCHPOST_REQUIRE_SSH=1, where they fail.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use watchpost::transport::{AgentSource, HostEntry, HostPool, PoolOptions};

pub const SSHD: &str = "/usr/sbin/sshd";
/// The passphrase of the encrypted test key.
pub const PASSPHRASE: &str = "correct horse battery";

pub fn ssh_required() -> bool {
    std::env::var("WATCHPOST_REQUIRE_SSH").is_ok_and(|v| v == "1")
}

/// Starts an sshd, or skips the test (returns from it) with a visible message, or fails
/// when WATCHPOST_REQUIRE_SSH=1.
#[macro_export]
macro_rules! sshd_or_skip {
    () => {
        match $crate::support::sshd::Sshd::start() {
            Ok(sshd) => sshd,
            Err(problem) => {
                if $crate::support::sshd::ssh_required() {
                    panic!("WATCHPOST_REQUIRE_SSH=1 but {problem}");
                }
                eprintln!("SKIPPED (no OpenSSH server here): {problem}");
                return;
            }
        }
    };
}

pub struct Sshd {
    dir: tempfile::TempDir,
    pub port: u16,
    pub user: String,
    child: Option<Child>,
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ssh-keygen` a key pair without a passphrase (or with one).
pub fn keygen(path: &Path, kind: &str, passphrase: &str) -> Result<(), String> {
    let mut cmd = Command::new("ssh-keygen");
    cmd.args([
        "-q",
        "-t",
        kind,
        "-N",
        passphrase,
        "-C",
        "watchpost-test",
        "-f",
    ])
    .arg(path);
    if kind == "rsa" {
        cmd.args(["-b", "2048"]);
    }
    run(&mut cmd).map(|_| ())
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

impl Sshd {
    pub fn start() -> Result<Sshd, String> {
        if !Path::new(SSHD).exists() {
            return Err(format!(
                "{SSHD} is missing (install it with: apt-get install openssh-server)"
            ));
        }
        if Command::new("ssh-keygen")
            .arg("-?")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            return Err("ssh-keygen is missing (apt-get install openssh-client)".into());
        }
        // The privilege separation directory sshd insists on.
        std::fs::create_dir_all("/run/sshd")
            .map_err(|e| format!("cannot create /run/sshd: {e}"))?;
        let dir = tempfile::Builder::new()
            .prefix("watchpost-sshd-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let d = dir.path();
        keygen(&d.join("host_ed25519"), "ed25519", "")?;
        for (name, kind) in [
            ("id_ed25519", "ed25519"),
            ("id_ecdsa", "ecdsa"),
            ("id_rsa", "rsa"),
        ] {
            keygen(&d.join(name), kind, "")?;
        }
        keygen(&d.join("id_locked"), "ed25519", PASSPHRASE)?;
        let mut authorized = String::new();
        for name in ["id_ed25519", "id_ecdsa", "id_rsa", "id_locked"] {
            authorized.push_str(
                &std::fs::read_to_string(d.join(format!("{name}.pub")))
                    .map_err(|e| e.to_string())?,
            );
        }
        std::fs::write(d.join("authorized_keys"), authorized).map_err(|e| e.to_string())?;
        std::fs::write(d.join("ssh_config"), "").map_err(|e| e.to_string())?;
        let user = run(Command::new("id").arg("-un"))?.trim().to_string();
        let port = free_port()?;
        let config = format!(
            "ListenAddress 127.0.0.1\n\
             HostKey {d}/host_ed25519\n\
             PidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\n\
             StrictModes no\n\
             UsePAM no\n\
             PermitRootLogin prohibit-password\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\n\
             AllowStreamLocalForwarding yes\n\
             AllowTcpForwarding yes\n\
             AllowUsers {user}\n\
             LogLevel VERBOSE\n",
            d = d.display()
        );
        std::fs::write(d.join("sshd_config"), config).map_err(|e| e.to_string())?;
        let mut sshd = Sshd {
            dir,
            port,
            user,
            child: None,
        };
        sshd.start_again()?;
        std::fs::write(sshd.known_hosts(), format!("{}\n", sshd.known_hosts_line()))
            .map_err(|e| e.to_string())?;
        Ok(sshd)
    }

    /// Starts the server (again) on the same port with the same host key.
    pub fn start_again(&mut self) -> Result<(), String> {
        let d = self.dir.path();
        let log = d.join("sshd.log");
        let before = std::fs::read_to_string(&log).map(|l| l.len()).unwrap_or(0);
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .arg("-p")
            .arg(self.port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .map_err(|e| e.to_string())?,
            )
            .spawn()
            .map_err(|e| format!("cannot start {SSHD}: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text
                .get(before..)
                .is_some_and(|t| t.contains("Server listening on"))
            {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(format!(
                    "sshd exited ({status}): {}",
                    text.get(before..).unwrap_or("")
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "sshd did not start: {}",
                    text.get(before..).unwrap_or("")
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server as a crash would: every sshd process (the listener and one per
    /// connection) dies at once, so every connection drops; the commands they ran are left
    /// to end on their own. (Killing those too could kill a login shell in the middle of
    /// its own start-up, e.g. pyenv's rehash, and leave its lock behind for every later
    /// shell on the machine.)
    pub fn kill(&mut self) {
        self.crash();
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    /// The crash of `kill`, keeping the (now dead) child to reap later; returns once
    /// nothing listens on the port.
    pub fn crash(&self) {
        if let Some(child) = &self.child {
            signal_tree_named(child.id(), libc::SIGCONT, None);
            signal_tree_named(child.id(), libc::SIGKILL, Some("sshd"));
            let deadline = Instant::now() + Duration::from_secs(5);
            while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                assert!(Instant::now() < deadline, "sshd still listens");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) the server and its sessions: the kernel still
    /// acknowledges TCP, but nothing answers.
    pub fn freeze(&self, frozen: bool) {
        if let Some(child) = &self.child {
            signal_tree(
                child.id(),
                if frozen { libc::SIGSTOP } else { libc::SIGCONT },
            );
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A client private key: "id_ed25519", "id_ecdsa", "id_rsa" or "id_locked".
    pub fn key(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn known_hosts(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    pub fn ssh_config(&self) -> PathBuf {
        self.dir.path().join("ssh_config")
    }

    /// "ssh-ed25519 AAAA…" of the server's host key.
    pub fn host_public_key(&self) -> String {
        let text = std::fs::read_to_string(self.dir.path().join("host_ed25519.pub")).unwrap();
        text.split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn host_pattern(&self) -> String {
        format!("[127.0.0.1]:{}", self.port)
    }

    /// The known_hosts line OpenSSH would write for this server.
    pub fn known_hosts_line(&self) -> String {
        format!("{} {}", self.host_pattern(), self.host_public_key())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    pub fn destination(&self) -> String {
        format!("{}@127.0.0.1:{}", self.user, self.port)
    }

    /// Options that read nothing of the user's ~/.ssh and no agent.
    pub fn options(&self) -> PoolOptions {
        PoolOptions {
            known_hosts: Some(self.known_hosts()),
            ssh_config: Some(self.ssh_config()),
            agent: AgentSource::Off,
            default_identities: false,
            connect_timeout: Duration::from_secs(5),
            ..PoolOptions::default()
        }
    }

    /// A `[hosts.test]` entry that signs in with one key file.
    pub fn entry(&self, key: &str) -> HostEntry {
        HostEntry {
            identity_files: vec![self.key(key)],
            ..HostEntry::new(self.destination())
        }
    }

    /// A pool with this server as host "test", signing in with `key`.
    pub fn pool(&self, key: &str) -> HostPool {
        self.pool_with(self.entry(key), self.options())
    }

    /// A pool with this server as host "test" that notices a dead server within seconds
    /// and retries often (so the fault tests fit in their time).
    pub fn quick_pool(&self) -> HostPool {
        let options = PoolOptions {
            keepalive: Duration::from_secs(1),
            dead_after: Duration::from_secs(3),
            backoff_max: Duration::from_secs(2),
            ..self.options()
        };
        self.pool_with(self.entry("id_ed25519"), options)
    }

    pub fn pool_with(&self, entry: HostEntry, options: PoolOptions) -> HostPool {
        HostPool::new(BTreeMap::from([("test".to_string(), entry)]), options)
    }

    /// Established TCP connections to the server's port, from any process.
    pub fn established(&self) -> usize {
        established_to(self.port, None)
    }

    /// Established TCP connections to the server's port from this test process.
    pub fn established_from_here(&self) -> usize {
        established_to(self.port, Some(&own_socket_inodes()))
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Counts ESTABLISHED entries of /proc/net/tcp{,6} whose remote port is `port`
/// (optionally only sockets with these inodes).
pub fn established_to(port: u16, inodes: Option<&HashSet<u64>>) -> usize {
    let mut count = 0;
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 10 || fields[3] != "01" {
                continue;
            }
            let remote_port = fields[2]
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if remote_port != Some(port) {
                continue;
            }
            if let Some(inodes) = inodes {
                match fields[9].parse::<u64>() {
                    Ok(inode) if inodes.contains(&inode) => {}
                    _ => continue,
                }
            }
            count += 1;
        }
    }
    count
}

/// Inodes of the sockets this process holds.
pub fn own_socket_inodes() -> HashSet<u64> {
    let mut inodes = HashSet::new();
    if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
        for entry in entries.flatten() {
            if let Ok(target) = std::fs::read_link(entry.path()) {
                let target = target.to_string_lossy();
                if let Some(n) = target
                    .strip_prefix("socket:[")
                    .and_then(|t| t.strip_suffix(']'))
                    .and_then(|n| n.parse().ok())
                {
                    inodes.insert(n);
                }
            }
        }
    }
    inodes
}

/// Signals a process and all its descendants (sshd's session processes call setsid, so a
/// process group would not catch them).
pub fn signal_tree(root: u32, signal: libc::c_int) {
    signal_tree_named(root, signal, None)
}

/// Like `signal_tree`, but only the processes whose command name is `only` (when given).
pub fn signal_tree_named(root: u32, signal: libc::c_int, only: Option<&str>) {
    let mut children: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // "pid (comm) state ppid ..." — comm may hold spaces and parentheses.
            let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
                continue;
            };
            if let Some(ppid) = after.split_whitespace().nth(1).and_then(|p| p.parse().ok()) {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut all = vec![root];
    let mut i = 0;
    while i < all.len() {
        if let Some(kids) = children.get(&all[i]) {
            all.extend(kids);
        }
        i += 1;
    }
    for pid in all {
        if let Some(name) = only {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() != name {
                continue;
            }
        }
        // SAFETY: kill(2) with a pid we found; a pid that is gone just fails.
        unsafe {
            libc::kill(pid as libc::pid_t, signal);
        }
    }
}

/// An ssh-agent on its own socket, holding the given keys. Killed on drop.
pub struct Agent {
    child: Child,
    pub socket: PathBuf,
}

impl Agent {
    pub fn start(dir: &Path, name: &str, keys: &[PathBuf]) -> Result<Agent, String> {
        let socket = dir.join(format!("agent-{name}.sock"));
        let _ = std::fs::remove_file(&socket);
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start ssh-agent: {e}"))?;
        let agent = Agent { child, socket };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !agent.socket.exists() {
            if Instant::now() > deadline {
                return Err("ssh-agent did not create its socket".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for key in keys {
            run(Command::new("ssh-add")
                .env("SSH_AUTH_SOCK", &agent.socket)
                .arg(key)
                .stdin(Stdio::null()))?;
        }
        Ok(agent)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
