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

    pub(crate) fn current_status(&self) -> HostStatus {
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
    ) -> Result<UnixStream, JumpError> {
        self.direct_tcp(host, port, timeout).map_err(JumpError)
    }

    /// A socket connected to `host:port` as seen from this host, carried by a
    /// `direct-tcpip` channel of its one connection (the server's `AllowTcpForwarding`
    /// must allow it). Blocking: call it from a blocking thread.
    pub(crate) fn direct_tcp(
        &self,
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<UnixStream, TunnelError> {
        if let Some(err) = self.down_error() {
            return Err(TunnelError::Host(err));
        }
        let (reply, answer) = std::sync::mpsc::channel();
        self.send(Request::DirectTcp {
            host: host.to_string(),
            port,
            deadline: Instant::now() + timeout,
            reply,
        })
        .map_err(TunnelError::Host)?;
        match answer.recv_timeout(timeout + Duration::from_millis(500)) {
            Ok(result) => result,
            Err(_) => Err(TunnelError::NoAnswer {
                via: self.name().to_string(),
                host: host.to_string(),
                port,
                after: timeout,
                status: self.current_status().describe(self.name()),
            }),
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

/// Why a `direct-tcpip` tunnel through a host's connection did not open. `Display` names
/// the host ("ssh prod: …").
#[derive(Debug, thiserror::Error)]
pub(crate) enum TunnelError {
    /// The host is down, or its thread is gone.
    #[error("{0}")]
    Host(TransportError),
    /// The host's server refused the `direct-tcpip` channel.
    #[error("ssh {host}: {message}")]
    Channel { host: String, message: String },
    #[error("cannot make a socket pair: {0}")]
    SocketPair(std::io::Error),
    /// The request waited in the host's queue past its deadline.
    #[error("timed out waiting to open the tunnel")]
    Queued,
    /// The host's thread did not answer at all.
    #[error(
        "ssh {via} did not open a tunnel to {host}:{port} within {}s ({status})",
        .after.as_secs()
    )]
    NoAnswer {
        via: String,
        host: String,
        port: u16,
        after: Duration,
        status: String,
    },
}

/// Why a tunnel through a jump host (ProxyJump) did not open: the reason the host behind
/// it shows.
#[derive(Debug, thiserror::Error)]
#[error("jump host {0}")]
pub(crate) struct JumpError(pub TunnelError);

/// Why a connection attempt failed. `Display` is the reason the host's status line gives.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    #[error("{}", .0.message())]
    Session(ssh2::Error),
    #[error(transparent)]
    Jump(#[from] JumpError),
    #[error("cannot resolve {host}: {error}")]
    Resolve { host: String, error: std::io::Error },
    #[error("{0} has no address")]
    NoAddress(String),
    #[error("connection refused")]
    Refused,
    #[error("connection timed out after {}s", .0.as_secs())]
    TimedOut(Duration),
    #[error("cannot connect to {addr}: {error}")]
    Connect {
        addr: std::net::SocketAddr,
        error: std::io::Error,
    },
    #[error("SSH handshake with {host}:{port} failed: {}", mux::describe_error(.error))]
    Handshake {
        host: String,
        port: u16,
        error: ssh2::Error,
    },
    /// Boxed: its messages carry the most fields, and every attempt returns this type.
    #[error(transparent)]
    HostKey(#[from] Box<known_hosts::HostKeyError>),
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
}

impl ConnectError {
    /// Host key and authentication failures will not fix themselves in a second: they wait
    /// the longest backoff.
    pub(crate) fn lasting(&self) -> bool {
        matches!(self, ConnectError::HostKey(_) | ConnectError::Auth(_))
    }
}

/// Connects, checks the host key and signs in (blocking, bounded by the timeouts).
pub(crate) fn connect(setup: &HostSetup) -> Result<Connection, ConnectError> {
    let target = &setup.target;
    let options = &setup.options;
    let timeout = target.connect_timeout.unwrap_or(options.connect_timeout);
    let mut session = Session::new().map_err(ConnectError::Session)?;
    let (fd, tcp) = match &setup.jump {
        Some(jump) => {
            let stream = jump.open_tcp(&target.host, target.port, timeout)?;
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
    session
        .handshake()
        .map_err(|error| ConnectError::Handshake {
            host: target.host.clone(),
            port: target.port,
            error,
        })?;
    known_hosts::verify(
        &session,
        &target.host,
        target.port,
        &files,
        &entries,
        setup.entry.host_key,
    )
    .map_err(Box::new)?;
    auth::authenticate(&session, target, &setup.entry, options, &setup.passphrases)?;
    // want_reply: the server answers every keepalive, so silence for `dead_after` means
    // it is gone or hung (see mux); TCP_USER_TIMEOUT catches a vanished peer too.
    session.set_keepalive(true, options.keepalive.as_secs().max(1) as u32);
    session.set_timeout(0);
    session.set_blocking(false);
    Ok(Connection { session, fd, tcp })
}

fn tcp_connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, ConnectError> {
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|error| ConnectError::Resolve {
            host: host.to_string(),
            error,
        })?
        .collect();
    let mut last = ConnectError::NoAddress(host.to_string());
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => return Ok(stream),
            Err(error) => {
                last = match error.kind() {
                    std::io::ErrorKind::ConnectionRefused => ConnectError::Refused,
                    std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                        ConnectError::TimedOut(timeout)
                    }
                    _ => ConnectError::Connect { addr, error },
                }
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
