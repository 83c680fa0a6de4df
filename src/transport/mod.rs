//! Where commands, files and sockets are reached: this machine, or a host over SSH.
//!
//! A source's `host` string (`local`, a `[hosts]` name, `ssh://[user@]host[:port]` or
//! `ssh://alias` from `~/.ssh/config`) becomes a [`Transport`] through a [`HostPool`]. Every
//! SSH host has exactly one TCP connection, owned by one dedicated thread (libssh2 is
//! blocking C; it never runs on the tokio executor). Callers talk to that thread over
//! channels, so a slow or dead host never blocks anything beyond the caller's own timeout.
//!
//! What a collector does with a transport:
//! - [`Transport::exec`]: one command, arguments shell-quoted one by one (never
//!   hand-quoted), stdout/stderr/exit status back. `exec(&["systemctl", "show", unit])`.
//! - [`Transport::stream`]: a long-lived command (`tail -F`, `journalctl -f`) as a stream of
//!   lines that survives reconnects. See [`StreamSpec`] for how a restart avoids repeats.
//! - [`Transport::forward_unix`]: a local unix socket that tunnels every connection to a
//!   remote unix socket (`direct-streamlocal@openssh.com`), e.g. for bollard and the remote
//!   `/var/run/docker.sock`.
//! - [`Transport::connect_tcp`]: a stream to `host:port` as seen from the host, over a
//!   `direct-tcpip` channel of its one connection (Redis, PostgreSQL with nothing published).
//! - [`Transport::status`]: a `watch` of [`HostStatus`] so panes can say
//!   "ssh prod: connection refused, retrying in 4s".
//!
//! Remote commands run through the login shell of the remote user, which must be a POSIX
//! shell (sh, bash, dash, zsh, ksh) for the quoting to hold.
//!
//! Wiring a collector (sketch):
//! ```no_run
//! # async fn demo(config: &watchpost::config::Config) -> Result<(), Box<dyn std::error::Error>> {
//! use watchpost::transport::{HostPool, StreamEvent, StreamSpec};
//! let pool = HostPool::from_config(config)?; // one per process, shared by all collectors
//! let host = pool.transport("prod")?;        // the source's `host` value
//! let out = host.exec(&["systemctl", "show", "tmws.service", "-p", "NRestarts"]).await?;
//! let mut log = host.follow_file("/var/log/app.jsonl", 0).await; // tail -F, new lines
//! let mut journal = host.stream(StreamSpec::fixed(&["journalctl", "-f", "-u", "tmws"]));
//! let docker_sock = host.forward_unix("/var/run/docker.sock").await?; // keep it alive
//! let docker = bollard::Docker::connect_with_unix(
//!     &docker_sock.path().to_string_lossy(), 30, bollard::API_DEFAULT_VERSION)?;
//! while let Some(event) = log.recv().await {
//!     if let StreamEvent::Line { text, .. } = event { /* parse, sanitize later */ }
//! }
//! # Ok(()) }
//! ```

mod auth;
mod known_hosts;
mod local;
mod mux;
mod ssh;
mod stream;
mod target;

use crate::config::HostKeyPolicy;
pub use auth::{PassphrasePrompt, prompt_passphrase_on_tty};
pub use ssh::SshHost;
pub use stream::{LineStream, Resume, StreamEvent, StreamSpec};
pub use target::{SshTarget, TargetError};

use crate::config::{Config, HostConfig};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Default limit on what one `exec` may print (stdout + stderr).
pub(crate) const DEFAULT_MAX_OUTPUT: usize = 64 * 1024 * 1024;

/// What a finished command printed and how it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub status: ExitStatus,
}

impl Output {
    /// Exited with code 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }
    /// stdout as text (invalid UTF-8 replaced).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    /// stderr as text (invalid UTF-8 replaced).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// How a command ended: an exit code, or a signal.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ExitStatus {
    /// The exit code; `None` when the command was killed by a signal.
    pub code: Option<i32>,
    /// The signal's name without `SIG` (e.g. "TERM"), when killed by one.
    pub signal: Option<String>,
}

impl ExitStatus {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.code, &self.signal) {
            (Some(code), _) => write!(f, "exit code {code}"),
            (None, Some(signal)) => write!(f, "killed by SIG{signal}"),
            (None, None) => write!(f, "no exit status"),
        }
    }
}

/// Why a transport operation failed. `Display` is what a pane can show as is.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The host is not connected: "ssh NAME: REASON, retrying in Ns".
    #[error("ssh {host}: {reason}{}", retrying(.retry_in))]
    HostDown {
        host: String,
        reason: String,
        retry_in: Option<Duration>,
    },
    /// The operation did not finish in time.
    #[error("{host}: {what} timed out after {}s", ceil_secs(*.after))]
    Timeout {
        host: String,
        what: String,
        after: Duration,
    },
    /// The connection is fine but this channel failed (refused socket forward, exec
    /// request denied, too many sessions, ...).
    #[error("{host}: {message}")]
    Channel { host: String, message: String },
    /// The command printed more than the limit.
    #[error("{host}: command printed more than {limit} bytes")]
    TooLarge { host: String, limit: usize },
    /// A host string that does not resolve, or an unreadable ssh config, found before
    /// connecting.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// A host name that is not `local`, an `ssh://` address or a `[hosts]` entry.
    #[error("host {0:?} is not \"local\", an ssh:// address or a name under [hosts]")]
    UnknownHost(String),
    /// A `[hosts]` entry the config layer refused (its text names the field).
    #[error("{0}")]
    Config(String),
    /// A local process or socket error.
    #[error("{0}")]
    Io(String),
}

/// `, retrying in Ns` when a retry is planned.
fn retrying(retry_in: &Option<Duration>) -> String {
    match retry_in {
        Some(retry) => format!(", retrying in {}s", ceil_secs(*retry)),
        None => String::new(),
    }
}

pub(crate) fn ceil_secs(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000) as u64
}

/// The state of a host's one connection, as data for panes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostStatus {
    /// A connection attempt is under way (`attempt` counts from 1 since the last success).
    Connecting { attempt: u32 },
    /// Connected and authenticated since `since`.
    Up { since: Instant },
    /// Not connected; the next attempt is at `retry_at` (`retry_in` after the failure).
    Down {
        reason: String,
        retry_in: Duration,
        retry_at: Instant,
    },
}

impl HostStatus {
    pub fn is_up(&self) -> bool {
        matches!(self, HostStatus::Up { .. })
    }

    /// One line for a pane: "ssh prod: connection refused, retrying in 4s".
    pub fn describe(&self, host: &str) -> String {
        self.describe_at(host, Instant::now())
    }

    /// [`HostStatus::describe`] with the countdown taken at `now`.
    pub(crate) fn describe_at(&self, host: &str, now: Instant) -> String {
        match self {
            HostStatus::Connecting { attempt } if *attempt > 1 => {
                format!("ssh {host}: connecting (attempt {attempt})")
            }
            HostStatus::Connecting { .. } => format!("ssh {host}: connecting"),
            HostStatus::Up { .. } => format!("ssh {host}: connected"),
            HostStatus::Down {
                reason, retry_at, ..
            } => format!(
                "ssh {host}: {reason}, retrying in {}s",
                ceil_secs(retry_at.saturating_duration_since(now))
            ),
        }
    }
}

/// Shell-quotes every argument and joins them into one remote command line.
/// `quote(&["ls", "x; rm -rf /"])` is `ls 'x; rm -rf /'`.
pub(crate) fn quote<S: AsRef<str>>(args: &[S]) -> String {
    shell_words::join(args.iter().map(|a| a.as_ref()))
}

/// The command line that runs `script` with `sh -c`, passing `args` as `$1`, `$2`, ...
/// Use it for pipelines: the script is a constant, untrusted values go in `args`.
pub(crate) fn script_command<S: AsRef<str>>(script: &str, args: &[S]) -> Vec<String> {
    let mut all = vec!["sh".to_string(), "-c".into(), script.into(), "sh".into()];
    all.extend(args.iter().map(|a| a.as_ref().to_string()));
    all
}

/// How to reach a source: this machine or an SSH host. Cheap to clone.
#[derive(Clone, Debug)]
pub enum Transport {
    Local,
    Ssh(SshHost),
}

impl Transport {
    /// "local", or the host's name as the config wrote it.
    pub fn name(&self) -> &str {
        match self {
            Transport::Local => "local",
            Transport::Ssh(host) => host.name(),
        }
    }

    pub fn is_local(&self) -> bool {
        matches!(self, Transport::Local)
    }

    /// Runs one command (arguments quoted one by one) with the default timeout (30 s).
    pub async fn exec<S: AsRef<str>>(&self, args: &[S]) -> Result<Output, TransportError> {
        self.exec_timeout(args, DEFAULT_EXEC_TIMEOUT).await
    }

    /// Runs one command; gives up (and closes its channel) after `timeout`.
    pub async fn exec_timeout<S: AsRef<str>>(
        &self,
        args: &[S],
        timeout: Duration,
    ) -> Result<Output, TransportError> {
        if args.is_empty() {
            return Err(TransportError::Io("exec: empty command".into()));
        }
        match self {
            Transport::Local => local::exec(args, timeout).await,
            Transport::Ssh(host) => host.exec_timeout(args, timeout).await,
        }
    }

    /// Runs `sh -c SCRIPT sh ARGS...`: a constant script with quoted positional arguments.
    pub async fn exec_script<S: AsRef<str>>(
        &self,
        script: &str,
        args: &[S],
        timeout: Duration,
    ) -> Result<Output, TransportError> {
        self.exec_timeout(&script_command(script, args), timeout)
            .await
    }

    /// A long-lived command as a stream of lines, restarted (with [`Resume`]) after a
    /// reconnect or an exit. Dropping the stream stops the command. For the local transport
    /// this must be called inside a tokio runtime.
    pub fn stream(&self, spec: StreamSpec) -> LineStream {
        match self {
            Transport::Local => local::stream(spec),
            Transport::Ssh(host) => host.stream(spec),
        }
    }

    /// Follows a file like `tail -F`, starting with its last `backlog` lines (0: new lines
    /// only), across rotation, and after a reconnect exactly after the last line delivered
    /// (see [`StreamSpec::follow_file`]). A missing file is read from its start once it
    /// appears.
    pub async fn follow_file(&self, path: &str, backlog: u64) -> LineStream {
        // Measured first, so "new lines" means the lines written after this call returns
        // (the stream's command starts a little later). A failed measure (host down) leaves
        // it to the command.
        self.stream(match self.measure_follow(path, backlog).await {
            Some((inode, offset)) => StreamSpec::follow_file_at(path, &inode, offset),
            None => StreamSpec::follow_file(path, backlog),
        })
    }

    /// Where following `path` with its last `backlog` lines starts: its inode and the
    /// offset of the first of those lines (`None`: no such file, or the host did not
    /// answer). Follow from there with [`StreamSpec::follow_file_at`].
    pub(crate) async fn measure_follow(&self, path: &str, backlog: u64) -> Option<(String, u64)> {
        self.exec_timeout(
            &stream::follow_start_command(path, backlog),
            Duration::from_secs(10),
        )
        .await
        .ok()
        .and_then(|out| stream::parse_follow_start(&out.stdout))
    }

    /// A local unix socket path that reaches `remote_path` on the host. For the local
    /// transport it is `remote_path` itself. Connections made while the host is down are
    /// closed at once, so a client (bollard) fails fast instead of hanging.
    pub async fn forward_unix(&self, remote_path: &str) -> Result<UnixForward, TransportError> {
        match self {
            Transport::Local => Ok(UnixForward {
                path: PathBuf::from(remote_path),
                _dir: None,
                _guard: None,
            }),
            Transport::Ssh(host) => host.forward_unix(remote_path),
        }
    }

    /// A byte stream to `host:port` as seen from this transport's machine: a TCP
    /// connection from here, or a `direct-tcpip` channel of the host's one SSH connection
    /// (no port is published or listened on). Fails after `timeout`.
    pub(crate) async fn connect_tcp(
        &self,
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<TcpChannel, TransportError> {
        match self {
            Transport::Local => {
                let connect = tokio::net::TcpStream::connect((host, port));
                match tokio::time::timeout(timeout, connect).await {
                    Ok(Ok(stream)) => {
                        let _ = stream.set_nodelay(true);
                        Ok(TcpChannel::Tcp(stream))
                    }
                    Ok(Err(e)) => Err(TransportError::Io(format!(
                        "cannot connect to {host}:{port}: {}",
                        io_reason(&e)
                    ))),
                    Err(_) => Err(TransportError::Timeout {
                        host: format!("{host}:{port}"),
                        what: "connecting".into(),
                        after: timeout,
                    }),
                }
            }
            Transport::Ssh(ssh) => {
                let (ssh, target) = (ssh.clone(), host.to_string());
                let opened =
                    tokio::task::spawn_blocking(move || ssh.direct_tcp(&target, port, timeout))
                        .await
                        .map_err(|e| TransportError::Io(format!("tunnel thread: {e}")))?;
                let stream = opened.map_err(|e| match e {
                    ssh::TunnelError::Host(down) => down,
                    ssh::TunnelError::Channel { host, message } => TransportError::Channel {
                        host: format!("ssh {host}"),
                        message,
                    },
                    other => TransportError::Io(other.to_string()),
                })?;
                stream
                    .set_nonblocking(true)
                    .and_then(|()| tokio::net::UnixStream::from_std(stream))
                    .map(TcpChannel::Ssh)
                    .map_err(|e| TransportError::Io(format!("tunnel to {host}:{port}: {e}")))
            }
        }
    }

    /// The connection state; the local transport is always up.
    pub fn status(&self) -> watch::Receiver<HostStatus> {
        match self {
            Transport::Local => local_status(),
            Transport::Ssh(host) => host.status(),
        }
    }
}

fn local_status() -> watch::Receiver<HostStatus> {
    static LOCAL: std::sync::OnceLock<watch::Sender<HostStatus>> = std::sync::OnceLock::new();
    LOCAL
        .get_or_init(|| {
            watch::Sender::new(HostStatus::Up {
                since: Instant::now(),
            })
        })
        .subscribe()
}

/// What a refused or failed connection says, without the OS's error number.
fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::TimedOut => "connection timed out".into(),
        _ => e.to_string(),
    }
}

/// A byte stream to a TCP service ([`Transport::connect_tcp`]): a TCP connection from this
/// machine, or the local end of a socket pair pumped through an SSH channel.
#[derive(Debug)]
pub(crate) enum TcpChannel {
    Tcp(tokio::net::TcpStream),
    Ssh(tokio::net::UnixStream),
}

impl tokio::io::AsyncRead for TcpChannel {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            TcpChannel::Tcp(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            TcpChannel::Ssh(s) => std::pin::Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for TcpChannel {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            TcpChannel::Tcp(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            TcpChannel::Ssh(s) => std::pin::Pin::new(s).poll_write(cx, buf),
        }
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            TcpChannel::Tcp(s) => std::pin::Pin::new(s).poll_flush(cx),
            TcpChannel::Ssh(s) => std::pin::Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            TcpChannel::Tcp(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            TcpChannel::Ssh(s) => std::pin::Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// A local unix socket that tunnels to a remote one. The socket (and its private temp
/// directory) goes away on drop.
#[derive(Debug)]
pub struct UnixForward {
    path: PathBuf,
    _dir: Option<tempfile::TempDir>,
    _guard: Option<ssh::ForwardGuard>,
}

impl UnixForward {
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The address for bollard's `Docker::connect_with_unix` / `DOCKER_HOST`.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.path.display())
    }
}

pub(crate) const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(30);

/// One `[hosts.NAME]` entry, with the settings the transport needs.
#[derive(Clone, Debug, Default)]
pub struct HostEntry {
    /// `user@host:port`, `ssh://…`, or an alias from ~/.ssh/config.
    pub ssh: String,
    pub host_key: HostKeyPolicy,
    /// The environment variable that holds the passphrase of an encrypted key.
    pub passphrase_env: Option<String>,
    /// Key files tried before ssh config's IdentityFile and the `~/.ssh/id_*` defaults.
    pub identity_files: Vec<PathBuf>,
    /// This host's known_hosts file (checked, and written by accept-new), instead of the
    /// pool's.
    pub known_hosts: Option<PathBuf>,
}

impl HostEntry {
    pub fn new(ssh: impl Into<String>) -> Self {
        HostEntry {
            ssh: ssh.into(),
            ..HostEntry::default()
        }
    }

    /// Reads a config entry; an unknown `host_key` value is an error.
    pub fn from_config(config: &HostConfig) -> Result<Self, TransportError> {
        Ok(HostEntry {
            ssh: config.ssh.clone(),
            host_key: HostKeyPolicy::parse(config.host_key.as_deref())
                .map_err(TransportError::Config)?,
            passphrase_env: config
                .passphrase_env
                .clone()
                .filter(|v| !v.trim().is_empty()),
            identity_files: config
                .identity_file
                .iter()
                .filter(|p| !p.trim().is_empty())
                .map(PathBuf::from)
                .collect(),
            known_hosts: config
                .known_hosts
                .as_deref()
                .filter(|p| !p.trim().is_empty())
                .map(PathBuf::from),
        })
    }
}

/// Where the ssh-agent is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AgentSource {
    /// `SSH_AUTH_SOCK`, when set.
    #[default]
    Env,
    /// This socket.
    Socket(PathBuf),
    /// No agent.
    Off,
}

/// Settings shared by every host of a pool. `Default` is what the CLI uses.
#[derive(Clone, Debug)]
pub struct PoolOptions {
    /// known_hosts file to check and to append to (accept-new). Default:
    /// `$WATCHPOST_KNOWN_HOSTS`, else `~/.ssh/known_hosts` (plus `/etc/ssh/ssh_known_hosts`
    /// for checking).
    pub known_hosts: Option<PathBuf>,
    /// ssh_config file. Default: `$WATCHPOST_SSH_CONFIG`, else `~/.ssh/config` if present.
    pub ssh_config: Option<PathBuf>,
    pub agent: AgentSource,
    /// Try `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa` when no IdentityFile is given.
    pub default_identities: bool,
    pub connect_timeout: Duration,
    /// How often a keepalive is sent on an idle connection.
    pub keepalive: Duration,
    /// Unacknowledged data older than this kills the connection (TCP_USER_TIMEOUT).
    pub dead_after: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Session channels (execs + streams) open at once; OpenSSH's MaxSessions is 10.
    pub max_sessions: usize,
    pub max_output: usize,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            known_hosts: None,
            ssh_config: None,
            agent: AgentSource::Env,
            default_identities: true,
            connect_timeout: Duration::from_secs(10),
            keepalive: Duration::from_secs(5),
            dead_after: Duration::from_secs(15),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            max_sessions: 10,
            max_output: DEFAULT_MAX_OUTPUT,
        }
    }
}

impl PoolOptions {
    /// The known_hosts files: the one written to, and every one read.
    pub(crate) fn known_hosts_files(&self) -> known_hosts::KnownHostsFiles {
        if let Some(path) = &self.known_hosts {
            return known_hosts::KnownHostsFiles::only(path.clone());
        }
        if let Some(path) = std::env::var_os("WATCHPOST_KNOWN_HOSTS").filter(|p| !p.is_empty()) {
            return known_hosts::KnownHostsFiles::only(PathBuf::from(path));
        }
        let user = home_dir().join(".ssh").join("known_hosts");
        known_hosts::KnownHostsFiles {
            user,
            global: vec![PathBuf::from("/etc/ssh/ssh_known_hosts")],
        }
    }

    fn ssh_config_path(&self) -> Option<PathBuf> {
        if let Some(path) = &self.ssh_config {
            return Some(path.clone());
        }
        if let Some(path) = std::env::var_os("WATCHPOST_SSH_CONFIG").filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(path));
        }
        let default = home_dir().join(".ssh").join("config");
        default.exists().then_some(default)
    }

    pub(crate) fn agent_socket(&self) -> Option<PathBuf> {
        match &self.agent {
            AgentSource::Env => std::env::var_os("SSH_AUTH_SOCK")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
            AgentSource::Socket(path) => Some(path.clone()),
            AgentSource::Off => None,
        }
    }
}

pub(crate) fn home_dir() -> PathBuf {
    dirs::home_dir().unwrap_or_else(|| PathBuf::from("/"))
}

/// Every host's one connection. Resolve a source's `host` string with
/// [`HostPool::transport`]; the same target always gets the same [`SshHost`].
#[derive(Clone)]
pub struct HostPool {
    inner: Arc<PoolInner>,
}

struct PoolInner {
    entries: BTreeMap<String, HostEntry>,
    options: Arc<PoolOptions>,
    ssh_config: Mutex<Option<Arc<target::SshConfigFile>>>,
    hosts: Mutex<HashMap<String, SshHost>>,
    passphrases: auth::Passphrases,
}

impl fmt::Debug for HostPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostPool")
            .field("entries", &self.inner.entries.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl HostPool {
    pub fn new(entries: BTreeMap<String, HostEntry>, options: PoolOptions) -> Self {
        HostPool {
            inner: Arc::new(PoolInner {
                entries,
                options: Arc::new(options),
                ssh_config: Mutex::new(None),
                hosts: Mutex::new(HashMap::new()),
                passphrases: auth::Passphrases::default(),
            }),
        }
    }

    /// The pool for a config's `[hosts]`, with default options.
    pub fn from_config(config: &Config) -> Result<Self, TransportError> {
        let mut entries = BTreeMap::new();
        for (name, host) in &config.hosts {
            let entry = HostEntry::from_config(host)
                .map_err(|e| TransportError::Config(format!("[hosts.{name}]: {e}")))?;
            entries.insert(name.clone(), entry);
        }
        Ok(HostPool::new(entries, PoolOptions::default()))
    }

    pub fn options(&self) -> &PoolOptions {
        &self.inner.options
    }

    /// The transport for a source's `host` value. Starts the host's connection thread on
    /// first use (it connects in the background; this never blocks on the network).
    pub fn transport(&self, host: &str) -> Result<Transport, TransportError> {
        let host = host.trim();
        if host.is_empty() || host == "local" {
            return Ok(Transport::Local);
        }
        let (name, entry) = self.entry_for(host)?;
        let target = self.resolve(&entry.ssh)?;
        Ok(Transport::Ssh(self.host_for(&name, &target, &entry)?))
    }

    /// Resolves a host string to where it connects, without connecting.
    pub fn resolve_target(&self, host: &str) -> Result<SshTarget, TransportError> {
        let (_, entry) = self.entry_for(host.trim())?;
        self.resolve(&entry.ssh)
    }

    /// Every SSH host started so far (jump hosts included), for status lines.
    pub fn hosts(&self) -> Vec<SshHost> {
        let mut hosts: Vec<SshHost> = self.inner.hosts.lock().unwrap().values().cloned().collect();
        hosts.sort_by(|a, b| a.name().cmp(b.name()));
        hosts
    }

    /// Before the TUI starts: asks (with `prompt`) for the passphrase of every encrypted
    /// key these hosts may use, unless the agent holds the key or the entry's
    /// `passphrase_env` variable is set. Returns the keys asked for. A prompt error (no
    /// terminal) skips that key; authentication then reports it.
    pub fn unlock_keys(
        &self,
        hosts: &[&str],
        prompt: &mut dyn PassphrasePrompt,
    ) -> Result<Vec<PathBuf>, TransportError> {
        let mut asked = Vec::new();
        for host in hosts {
            let host = host.trim();
            if host.is_empty() || host == "local" {
                continue;
            }
            let (_, entry) = self.entry_for(host)?;
            let mut target = Some(self.resolve(&entry.ssh)?);
            while let Some(t) = target {
                let files = auth::identity_candidates(&entry, &t, &self.inner.options);
                asked.extend(auth::unlock(
                    &files,
                    &entry,
                    &self.inner.options,
                    &self.inner.passphrases,
                    prompt,
                ));
                target = t.proxy_jump.map(|j| *j);
            }
        }
        Ok(asked)
    }

    fn entry_for(&self, host: &str) -> Result<(String, HostEntry), TransportError> {
        if let Some(entry) = self.inner.entries.get(host) {
            return Ok((host.to_string(), entry.clone()));
        }
        if let Some(rest) = host.strip_prefix("ssh://") {
            return Ok((rest.trim_end_matches('/').to_string(), HostEntry::new(host)));
        }
        Err(TransportError::UnknownHost(host.to_string()))
    }

    fn config_file(&self) -> Result<Arc<target::SshConfigFile>, TransportError> {
        let mut slot = self.inner.ssh_config.lock().unwrap();
        if let Some(file) = slot.as_ref() {
            return Ok(file.clone());
        }
        let file = Arc::new(target::SshConfigFile::load(
            self.inner.options.ssh_config_path().as_deref(),
        )?);
        *slot = Some(file.clone());
        Ok(file)
    }

    fn resolve(&self, ssh: &str) -> Result<SshTarget, TransportError> {
        let config = self.config_file()?;
        Ok(target::resolve(ssh, &config)?)
    }

    /// The one handle per target (user, host, port, jump chain); jump hosts first.
    fn host_for(
        &self,
        name: &str,
        target: &SshTarget,
        entry: &HostEntry,
    ) -> Result<SshHost, TransportError> {
        let jump = match target.proxy_jump.as_deref() {
            Some(j) => {
                // A jump host signs in with its own ssh_config keys, then the entry's.
                let jump_entry = HostEntry {
                    ssh: j.destination(),
                    host_key: entry.host_key,
                    passphrase_env: entry.passphrase_env.clone(),
                    identity_files: entry.identity_files.clone(),
                    known_hosts: entry.known_hosts.clone(),
                };
                Some(self.host_for(&j.alias, j, &jump_entry)?)
            }
            None => None,
        };
        let mut hosts = self.inner.hosts.lock().unwrap();
        if let Some(host) = hosts.get(&target.key()) {
            return Ok(host.clone());
        }
        let host = SshHost::spawn(ssh::HostSetup {
            name: name.to_string(),
            target: target.clone(),
            entry: entry.clone(),
            options: self.inner.options.clone(),
            passphrases: self.inner.passphrases.clone(),
            jump,
        })?;
        hosts.insert(target.key(), host.clone());
        Ok(host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_each_argument_whole() {
        assert_eq!(
            quote(&["echo", "x; touch /tmp/pwned"]),
            "echo 'x; touch /tmp/pwned'"
        );
        assert_eq!(
            quote(&["a b", "$(id)", "`id`", "it's"]),
            r#"'a b' '$(id)' '`id`' 'it'\''s'"#
        );
        assert_eq!(quote(&["", "plain"]), "'' plain");
        let words = shell_words::split(&quote(&["x; touch /tmp/p", "a'b\"c", "\n"])).unwrap();
        assert_eq!(words, vec!["x; touch /tmp/p", "a'b\"c", "\n"]);
    }

    #[test]
    fn script_command_passes_values_as_positional_arguments() {
        let cmd = script_command("wc -l < \"$1\"", &["/var/log/x y.log"]);
        assert_eq!(quote(&cmd), "sh -c 'wc -l < \"$1\"' sh '/var/log/x y.log'");
    }

    #[test]
    fn down_status_counts_down() {
        let now = Instant::now();
        let status = HostStatus::Down {
            reason: "connection refused".into(),
            retry_in: Duration::from_secs(4),
            retry_at: now + Duration::from_millis(3500),
        };
        assert_eq!(
            status.describe_at("prod", now),
            "ssh prod: connection refused, retrying in 4s"
        );
        assert_eq!(
            status.describe_at("prod", now + Duration::from_secs(10)),
            "ssh prod: connection refused, retrying in 0s"
        );
    }

    #[test]
    fn unknown_host_names_are_config_errors() {
        let pool = HostPool::new(BTreeMap::new(), PoolOptions::default());
        assert!(matches!(pool.transport("local"), Ok(Transport::Local)));
        let err = pool.transport("prod").unwrap_err();
        assert!(err.to_string().contains("not \"local\""), "{err}");
    }

    #[test]
    fn host_entry_rejects_unknown_host_key_policy() {
        let config = HostConfig {
            ssh: "a@b".into(),
            host_key: Some("yolo".into()),
            passphrase_env: None,
            identity_file: None,
            known_hosts: None,
        };
        assert!(HostEntry::from_config(&config).is_err());
        let config = HostConfig {
            ssh: "a@b".into(),
            host_key: Some("accept-new".into()),
            passphrase_env: Some("PROD_KEY_PASSPHRASE".into()),
            identity_file: Some("/keys/prod".into()),
            known_hosts: Some("/etc/watchpost/known_hosts".into()),
        };
        let entry = HostEntry::from_config(&config).unwrap();
        assert_eq!(entry.host_key, HostKeyPolicy::AcceptNew);
        assert_eq!(entry.passphrase_env.as_deref(), Some("PROD_KEY_PASSPHRASE"));
        assert_eq!(entry.identity_files, vec![PathBuf::from("/keys/prod")]);
        assert_eq!(
            entry.known_hosts,
            Some(PathBuf::from("/etc/watchpost/known_hosts"))
        );
    }
}
