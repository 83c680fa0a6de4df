//! An SSH host: a cheap handle to the one thread that owns the host's one connection.
//!
//! The handle never touches libssh2: it sends requests over a channel and wakes the
//! thread through a socket pair; answers come back over tokio channels, so async callers
//! never block. The thread (see `mux`) connects, multiplexes every channel on the one
//! session, and reconnects with backoff.

use super::auth::{self, Passphrases};
use super::known_hosts;
use super::mux::{self, Request};
use super::stream::StreamEvent;
use super::target::SshTarget;
use super::{
    HostEntry, HostStatus, LineStream, Output, PoolOptions, StreamSpec, TransportError,
    UnixForward, quote,
};
use ssh2::Session;
use std::fmt;
use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

#[derive(Clone)]
pub(crate) struct HostSetup {
    pub name: String,
    pub target: SshTarget,
    pub entry: HostEntry,
    pub options: Arc<PoolOptions>,
    pub passphrases: Passphrases,
    pub jump: Option<SshHost>,
}

/// A handle to one SSH host's connection. Clones share it; the connection thread ends
/// when the last clone (and every stream and forward made from it) is dropped.
#[derive(Clone)]
pub struct SshHost {
    inner: Arc<Shared>,
}

struct Shared {
    name: String,
    target: SshTarget,
    tx: std::sync::mpsc::Sender<Request>,
    waker: UnixStream,
    status: watch::Receiver<HostStatus>,
    next_id: AtomicU64,
    max_output: usize,
}

impl Drop for Shared {
    fn drop(&mut self) {
        let _ = self.tx.send(Request::Shutdown);
        let _ = (&self.waker).write(&[1]);
    }
}

impl fmt::Debug for SshHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SshHost")
            .field("name", &self.inner.name)
            .field("target", &self.inner.target.key())
            .finish()
    }
}

impl SshHost {
    pub(crate) fn spawn(setup: HostSetup) -> Result<SshHost, TransportError> {
        let io = |e: std::io::Error| TransportError::Io(format!("ssh {}: {e}", setup.name));
        let (tx, rx) = std::sync::mpsc::channel();
        let (waker, wake_rx) = UnixStream::pair().map_err(io)?;
        waker.set_nonblocking(true).map_err(io)?;
        wake_rx.set_nonblocking(true).map_err(io)?;
        let (status_tx, status_rx) = watch::channel(HostStatus::Connecting { attempt: 1 });
        let ctx = mux::HostCtx::new(setup.clone(), rx, wake_rx, status_tx);
        std::thread::Builder::new()
            .name(format!("ssh {}", setup.name.replace('\0', "")))
            .spawn(move || mux::host_thread(ctx))
            .map_err(io)?;
        Ok(SshHost {
            inner: Arc::new(Shared {
                name: setup.name,
                target: setup.target,
                tx,
                waker,
                status: status_rx,
                next_id: AtomicU64::new(1),
                max_output: setup.options.max_output,
            }),
        })
    }

    /// The name panes show: the `[hosts]` name, or the inline address.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    pub fn target(&self) -> &SshTarget {
        &self.inner.target
    }

    /// The connection state, as it changes.
    pub fn status(&self) -> watch::Receiver<HostStatus> {
        self.inner.status.clone()
    }

    pub fn current_status(&self) -> HostStatus {
        self.inner.status.borrow().clone()
    }

    fn send(&self, request: Request) -> Result<(), TransportError> {
        self.inner
            .tx
            .send(request)
            .map_err(|_| TransportError::HostDown {
                host: self.inner.name.clone(),
                reason: "the connection thread has stopped".into(),
                retry_in: None,
            })?;
        let _ = (&self.inner.waker).write(&[1]);
        Ok(())
    }

    fn down_error(&self) -> Option<TransportError> {
        match &*self.inner.status.borrow() {
            HostStatus::Down {
                reason, retry_at, ..
            } => Some(TransportError::HostDown {
                host: self.inner.name.clone(),
                reason: reason.clone(),
                retry_in: Some(retry_at.saturating_duration_since(Instant::now())),
            }),
            _ => None,
        }
    }

    /// Runs a command (each argument shell-quoted) with the default timeout.
    pub async fn exec<S: AsRef<str>>(&self, args: &[S]) -> Result<Output, TransportError> {
        self.exec_timeout(args, super::DEFAULT_EXEC_TIMEOUT).await
    }

    /// Runs a command; fails at once when the host is down, and after `timeout` at most.
    pub async fn exec_timeout<S: AsRef<str>>(
        &self,
        args: &[S],
        timeout: Duration,
    ) -> Result<Output, TransportError> {
        if let Some(err) = self.down_error() {
            return Err(err);
        }
        let command = quote(args);
        let what = args
            .first()
            .map(|a| format!("{:?}", a.as_ref()))
            .unwrap_or_default();
        let (reply, answer) = oneshot::channel();
        self.send(Request::Exec {
            command,
            timeout,
            deadline: Instant::now() + timeout,
            max_output: self.inner.max_output,
            reply,
        })?;
        // The thread answers at the deadline; the margin only covers a stuck thread.
        match tokio::time::timeout(timeout + Duration::from_millis(500), answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(self.down_error().unwrap_or(TransportError::HostDown {
                host: self.inner.name.clone(),
                reason: "connection lost".into(),
                retry_in: None,
            })),
            Err(_) => Err(self
                .down_error()
                .unwrap_or_else(|| TransportError::Timeout {
                    host: self.inner.name.clone(),
                    what: format!(
                        "{what} (still {})",
                        self.current_status().describe(self.name())
                    ),
                    after: timeout,
                })),
        }
    }

    /// A long-lived command as lines; see [`StreamSpec`] for restarts and resume.
    pub fn stream(&self, spec: StreamSpec) -> LineStream {
        let (tx, rx) = mpsc::channel(spec.capacity.max(1));
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        match self.send(Request::OpenStream { id, spec, tx }) {
            Ok(()) => LineStream::new(
                rx,
                Some(Box::new(CloseGuard {
                    host: self.clone(),
                    close: Some(Request::CloseStream { id }),
                })),
            ),
            Err(e) => {
                // The thread is gone: a stream that says so and ends.
                let (tx, rx) = mpsc::channel(1);
                let _ = tx.try_send(StreamEvent::Interrupted {
                    reason: e.to_string(),
                });
                LineStream::new(rx, None)
            }
        }
    }

    /// A local unix socket (in a private temp dir) tunnelled to `remote_path` on the host.
    pub fn forward_unix(&self, remote_path: &str) -> Result<UnixForward, TransportError> {
        let io = |e: std::io::Error| TransportError::Io(format!("forward to {remote_path}: {e}"));
        let dir = tempfile::Builder::new()
            .prefix("watchpost-fwd-")
            .tempdir()
            .map_err(io)?;
        let path = dir.path().join("remote.sock");
        let listener = UnixListener::bind(&path).map_err(io)?;
        listener.set_nonblocking(true).map_err(io)?;
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        self.send(Request::OpenForward {
            id,
            listener,
            remote_path: remote_path.to_string(),
        })?;
        Ok(UnixForward {
            path,
            _dir: Some(dir),
            _guard: Some(ForwardGuard(CloseGuard {
                host: self.clone(),
                close: Some(Request::CloseForward { id }),
            })),
        })
    }

    /// For a host that uses this one as its ProxyJump: a socket connected, through this
    /// host's session (`direct-tcpip`), to `host:port`. Blocking; called from the other
    /// host's connection thread.
    pub(crate) fn open_tcp(
        &self,
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<UnixStream, String> {
        self.direct_tcp(host, port, timeout)
            .map_err(|e| format!("jump host {e}"))
    }

    /// A socket connected to `host:port` as seen from this host, carried by a
    /// `direct-tcpip` channel of its one connection (the server's `AllowTcpForwarding`
    /// must allow it). Blocking: call it from a blocking thread.
    pub(crate) fn direct_tcp(
        &self,
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<UnixStream, String> {
        if let Some(err) = self.down_error() {
            return Err(err.to_string());
        }
        let (reply, answer) = std::sync::mpsc::channel();
        self.send(Request::DirectTcp {
            host: host.to_string(),
            port,
            deadline: Instant::now() + timeout,
            reply,
        })
        .map_err(|e| e.to_string())?;
        match answer.recv_timeout(timeout + Duration::from_millis(500)) {
            Ok(result) => result,
            Err(_) => Err(format!(
                "ssh {} did not open a tunnel to {host}:{port} within {}s ({})",
                self.name(),
                timeout.as_secs(),
                self.current_status().describe(self.name())
            )),
        }
    }
}

/// Sends a close request when a stream or forward is dropped.
struct CloseGuard {
    host: SshHost,
    close: Option<Request>,
}

impl Drop for CloseGuard {
    fn drop(&mut self) {
        if let Some(request) = self.close.take() {
            let _ = self.host.send(request);
        }
    }
}

/// Keeps a forward registered with its host's thread.
pub(crate) struct ForwardGuard(CloseGuard);

impl fmt::Debug for ForwardGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ForwardGuard({})", self.0.host.name())
    }
}

/// A connected, authenticated session in non-blocking mode, and its socket.
pub(crate) struct Connection {
    pub session: Session,
    pub fd: RawFd,
    /// A TCP socket of our own (not a tunnel through a jump host): TCP_INFO tells when
    /// the server last sent anything.
    pub tcp: bool,
}

/// Why a connection attempt failed; `lasting` failures (host key, authentication) wait
/// the longest backoff, they will not fix themselves in a second.
pub(crate) struct ConnectFailure {
    pub reason: String,
    pub lasting: bool,
}

impl ConnectFailure {
    fn now(reason: impl Into<String>) -> Self {
        ConnectFailure {
            reason: reason.into(),
            lasting: false,
        }
    }
    fn lasting(reason: impl Into<String>) -> Self {
        ConnectFailure {
            reason: reason.into(),
            lasting: true,
        }
    }
}

/// Connects, checks the host key and signs in (blocking, bounded by the timeouts).
pub(crate) fn connect(setup: &HostSetup) -> Result<Connection, ConnectFailure> {
    let target = &setup.target;
    let options = &setup.options;
    let timeout = target.connect_timeout.unwrap_or(options.connect_timeout);
    let mut session = Session::new().map_err(|e| ConnectFailure::now(e.message().to_string()))?;
    let (fd, tcp) = match &setup.jump {
        Some(jump) => {
            let stream = jump
                .open_tcp(&target.host, target.port, timeout)
                .map_err(ConnectFailure::now)?;
            let fd = stream.as_raw_fd();
            session.set_tcp_stream(stream);
            (fd, false)
        }
        None => {
            let stream = tcp_connect(&target.host, target.port, timeout)?;
            tune_socket(&stream, options);
            let fd = stream.as_raw_fd();
            session.set_tcp_stream(stream);
            (fd, true)
        }
    };
    session.set_timeout(timeout.as_millis().min(u32::MAX as u128) as u32);
    let files = match &setup.entry.known_hosts {
        Some(path) => known_hosts::KnownHostsFiles::only(path.clone()),
        None => options.known_hosts_files(),
    };
    let entries = known_hosts::entries_for(&files, &target.host, target.port);
    known_hosts::prepare(&session, &entries);
    session.handshake().map_err(|e| {
        ConnectFailure::now(format!(
            "SSH handshake with {}:{} failed: {}",
            target.host,
            target.port,
            mux::describe_error(&e)
        ))
    })?;
    known_hosts::verify(
        &session,
        &target.host,
        target.port,
        &files,
        &entries,
        setup.entry.host_key,
    )
    .map_err(ConnectFailure::lasting)?;
    auth::authenticate(&session, target, &setup.entry, options, &setup.passphrases)
        .map_err(ConnectFailure::lasting)?;
    // want_reply: the server answers every keepalive, so silence for `dead_after` means
    // it is gone or hung (see mux); TCP_USER_TIMEOUT catches a vanished peer too.
    session.set_keepalive(true, options.keepalive.as_secs().max(1) as u32);
    session.set_timeout(0);
    session.set_blocking(false);
    Ok(Connection { session, fd, tcp })
}

fn tcp_connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, ConnectFailure> {
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| ConnectFailure::now(format!("cannot resolve {host}: {e}")))?
        .collect();
    let mut last = ConnectFailure::now(format!("{host} has no address"));
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => return Ok(stream),
            Err(e) => {
                last = ConnectFailure::now(match e.kind() {
                    std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                        format!("connection timed out after {}s", timeout.as_secs())
                    }
                    _ => format!("cannot connect to {addr}: {e}"),
                })
            }
        }
    }
    Err(last)
}

/// TCP keepalive and TCP_USER_TIMEOUT: a peer that vanished without a FIN is noticed
/// within `dead_after` instead of the kernel's ~15 minutes.
fn tune_socket(stream: &TcpStream, options: &PoolOptions) {
    let socket = socket2::SockRef::from(stream);
    let _ = socket.set_tcp_nodelay(true);
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(options.keepalive)
        .with_interval(options.keepalive)
        .with_retries(3);
    let _ = socket.set_tcp_keepalive(&keepalive);
    let _ = socket.set_tcp_user_timeout(Some(options.dead_after));
}
