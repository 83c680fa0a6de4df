//! The connection thread of one SSH host: connect, multiplex, reconnect.
//!
//! The session runs in libssh2's non-blocking mode. Every pass of the loop takes new
//! requests, steps the one channel being opened (libssh2 keeps the opening state in the
//! session, so opens are serialised) and every open channel; when a pass changes nothing
//! and libssh2 has nothing queued, the thread sleeps in poll(2) on the session socket, the
//! wake-up socket, forward listeners and tunnelled sockets. Idle means asleep.
//!
//! Streams and forwards are registered with the thread, not with a session: they outlive
//! a connection and are restarted on the next one.

use super::ssh::{self, Connection, HostSetup, TunnelError};
use super::stream::{Resume, SplitLine, Splitter, StreamEvent, StreamSpec, Tail, exit_backoff};
use super::{ExitStatus, HostStatus, Output, TransportError, quote, script_command};
use crate::model::backoff::Backoff;
use ssh2::{Channel, ErrorCode, Session};
use std::collections::{BTreeMap, VecDeque};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::mpsc::TryRecvError;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

pub(crate) enum Request {
    Exec {
        command: String,
        timeout: Duration,
        deadline: Instant,
        max_output: usize,
        reply: oneshot::Sender<Result<Output, TransportError>>,
    },
    OpenStream {
        id: u64,
        spec: StreamSpec,
        tx: mpsc::Sender<StreamEvent>,
    },
    CloseStream {
        id: u64,
    },
    OpenForward {
        id: u64,
        listener: UnixListener,
        remote_path: String,
    },
    CloseForward {
        id: u64,
    },
    DirectTcp {
        host: String,
        port: u16,
        deadline: Instant,
        reply: std::sync::mpsc::Sender<Result<UnixStream, TunnelError>>,
    },
    Shutdown,
}

/// Runs a stream's command so that it dies with its channel: when the channel's stdin
/// closes (channel closed, connection dropped) the watcher kills the command, so no
/// `tail -F` is left behind on the server after a reconnect.
const STREAM_WRAPPER: &str = r#"exec 3<&0
"$@" </dev/null 3<&- &
p=$!
{ cat <&3 >/dev/null 2>&1; kill "$p" 2>/dev/null; } >/dev/null 2>&1 &
w=$!
exec 3<&-
wait "$p" 2>/dev/null
s=$?
kill "$w" 2>/dev/null
exit "$s""#;

pub(crate) fn remote_stream_command(args: &[String]) -> String {
    quote(&script_command(STREAM_WRAPPER, args))
}

struct StreamReg {
    spec: StreamSpec,
    tx: mpsc::Sender<StreamEvent>,
    resume: Resume,
    backoff: Backoff,
    /// When to (re)start; `None` while running or while the host is down.
    start_at: Option<Instant>,
    /// Queued, opening or open.
    running: bool,
    started_once: bool,
}

struct ForwardReg {
    listener: UnixListener,
    remote_path: String,
}

pub(crate) struct HostCtx {
    setup: HostSetup,
    rx: std::sync::mpsc::Receiver<Request>,
    wake: UnixStream,
    status: watch::Sender<HostStatus>,
    streams: BTreeMap<u64, StreamReg>,
    forwards: BTreeMap<u64, ForwardReg>,
    shutdown: bool,
}

impl HostCtx {
    pub fn new(
        setup: HostSetup,
        rx: std::sync::mpsc::Receiver<Request>,
        wake: UnixStream,
        status: watch::Sender<HostStatus>,
    ) -> Self {
        HostCtx {
            setup,
            rx,
            wake,
            status,
            streams: BTreeMap::new(),
            forwards: BTreeMap::new(),
            shutdown: false,
        }
    }

    fn name(&self) -> &str {
        &self.setup.name
    }

    fn drain_wake(&self) {
        let mut buf = [0u8; 256];
        while matches!((&self.wake).read(&mut buf), Ok(n) if n > 0) {}
    }

    /// Next request, or `None`; notes a shutdown.
    fn next_request(&mut self) -> Option<Request> {
        match self.rx.try_recv() {
            Ok(Request::Shutdown) | Err(TryRecvError::Disconnected) => {
                self.shutdown = true;
                None
            }
            Ok(request) => Some(request),
            Err(TryRecvError::Empty) => None,
        }
    }

    /// Registers streams and forwards; returns what needs a connection.
    fn register(&mut self, request: Request) -> Option<Request> {
        match request {
            Request::OpenStream { id, spec, tx } => {
                self.streams.insert(
                    id,
                    StreamReg {
                        spec,
                        tx,
                        resume: Resume::default(),
                        backoff: exit_backoff(),
                        start_at: Some(Instant::now()),
                        running: false,
                        started_once: false,
                    },
                );
                None
            }
            Request::CloseStream { id } => {
                self.streams.remove(&id);
                None
            }
            Request::OpenForward {
                id,
                listener,
                remote_path,
            } => {
                self.forwards.insert(
                    id,
                    ForwardReg {
                        listener,
                        remote_path,
                    },
                );
                None
            }
            Request::CloseForward { id } => {
                self.forwards.remove(&id);
                None
            }
            Request::Shutdown => {
                self.shutdown = true;
                None
            }
            other => Some(other),
        }
    }

    /// While down: answers at once, and waits for `retry_at`. False on shutdown.
    fn wait_down(&mut self, reason: &str, retry_at: Instant) -> bool {
        loop {
            self.drain_wake();
            while let Some(request) = self.next_request() {
                let retry_in = retry_at.saturating_duration_since(Instant::now());
                match self.register(request) {
                    Some(Request::Exec { reply, .. }) => {
                        let _ = reply.send(Err(TransportError::HostDown {
                            host: self.name().to_string(),
                            reason: reason.to_string(),
                            retry_in: Some(retry_in),
                        }));
                    }
                    Some(Request::DirectTcp { reply, .. }) => {
                        let _ = reply.send(Err(TunnelError::Host(TransportError::HostDown {
                            host: self.name().to_string(),
                            reason: reason.to_string(),
                            retry_in: Some(retry_in),
                        })));
                    }
                    _ => {}
                }
            }
            if self.shutdown {
                return false;
            }
            // Connections to a forward are closed at once: the client fails fast.
            for forward in self.forwards.values() {
                while let Ok((conn, _)) = forward.listener.accept() {
                    drop(conn);
                }
            }
            let now = Instant::now();
            if now >= retry_at {
                return true;
            }
            let mut fds = vec![pollfd(self.wake.as_raw_fd(), libc::POLLIN)];
            fds.extend(
                self.forwards
                    .values()
                    .map(|f| pollfd(f.listener.as_raw_fd(), libc::POLLIN)),
            );
            poll(&mut fds, retry_at - now);
        }
    }

    /// Tells running streams that the connection dropped; they restart on the next one.
    fn interrupt_streams(&mut self, reason: &str) {
        for reg in self.streams.values_mut() {
            if reg.running {
                let _ = reg.tx.try_send(StreamEvent::Interrupted {
                    reason: reason.to_string(),
                });
            }
            reg.running = false;
            reg.start_at = None;
        }
    }
}

fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

fn poll(fds: &mut [libc::pollfd], timeout: Duration) {
    let ms = timeout.as_millis().clamp(0, 60_000) as libc::c_int;
    // Round a sub-millisecond wait up so the loop does not spin.
    let ms = if ms == 0 && !timeout.is_zero() { 1 } else { ms };
    // SAFETY: `fds` is a valid, exclusively borrowed array of pollfd for the call.
    unsafe {
        libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms);
    }
}

/// The thread: connect, serve, back off, again, until every handle is gone.
pub(crate) fn host_thread(mut ctx: HostCtx) {
    let options = ctx.setup.options.clone();
    let mut backoff = Backoff::new(options.backoff_min, options.backoff_max);
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        ctx.status.send_replace(HostStatus::Connecting { attempt });
        // The host's status keeps the reason as the text its line shows.
        let (reason, lasting) = match ssh::connect(&ctx.setup) {
            Ok(conn) => {
                attempt = 0;
                backoff.reset();
                ctx.status.send_replace(HostStatus::Up {
                    since: Instant::now(),
                });
                match Mux::new(conn, &options).run(&mut ctx) {
                    Ended::Shutdown => return,
                    Ended::Lost(reason) => (reason, false),
                }
            }
            Err(failure) => (failure.to_string(), failure.lasting()),
        };
        if lasting {
            backoff.give_up_soon();
        }
        let wait = backoff.next_wait();
        let retry_at = Instant::now() + wait;
        ctx.status.send_replace(HostStatus::Down {
            reason: reason.clone(),
            retry_in: wait,
            retry_at,
        });
        ctx.interrupt_streams(&reason);
        if !ctx.wait_down(&reason, retry_at) {
            return;
        }
    }
}

enum Ended {
    Shutdown,
    Lost(String),
}

/// The session is unusable.
struct Lost(String);

pub(crate) fn is_eagain(e: &ssh2::Error) -> bool {
    e.code() == ErrorCode::Session(-37)
}

/// libssh2 errors that mean the transport (not one channel) is broken.
fn is_fatal_code(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::Session(-9..=-1 | -14..=-12 | -30 | -29 | -40 | -45..=-43 | -52)
    )
}

pub(crate) fn describe_error(e: &ssh2::Error) -> String {
    match e.code() {
        ErrorCode::Session(-13) => "connection closed by the server".into(),
        ErrorCode::Session(-43) => "connection lost (receive failed)".into(),
        ErrorCode::Session(-7) => "connection lost (send failed)".into(),
        ErrorCode::Session(-9) | ErrorCode::Session(-30) => "timed out".into(),
        ErrorCode::Session(-2) => "the server sent no SSH banner (is it an SSH server?)".into(),
        ErrorCode::Session(-5) | ErrorCode::Session(-8) => {
            format!("key exchange failed: {}", e.message())
        }
        _ => e.message().to_string(),
    }
}

fn check(e: ssh2::Error) -> Result<ssh2::Error, Lost> {
    if is_fatal_code(e.code()) {
        Err(Lost(describe_error(&e)))
    } else {
        Ok(e)
    }
}

/// After an I/O error from a channel: broken session, or just this channel?
fn io_check(session: &Session, e: std::io::Error) -> Result<String, Lost> {
    match ssh2::Error::last_session_error(session) {
        Some(last) if is_fatal_code(last.code()) => Err(Lost(describe_error(&last))),
        _ => Ok(e.to_string()),
    }
}

enum ReadState {
    Data,
    Eof,
    Blocked,
}

/// Reads what is there (up to `budget` bytes) from one stream of a channel.
fn read_into(
    session: &Session,
    channel: &Channel,
    stream_id: i32,
    out: &mut Vec<u8>,
    budget: usize,
) -> Result<ReadState, Lost> {
    let mut stream = channel.stream(stream_id);
    let mut chunk = [0u8; 32 * 1024];
    let mut got = 0usize;
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => {
                return Ok(if channel.eof() {
                    ReadState::Eof
                } else if got > 0 {
                    ReadState::Data
                } else {
                    ReadState::Blocked
                });
            }
            Ok(n) => {
                out.extend_from_slice(&chunk[..n]);
                got += n;
                if got >= budget {
                    return Ok(ReadState::Data);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                return Ok(if got > 0 {
                    ReadState::Data
                } else {
                    ReadState::Blocked
                });
            }
            Err(e) => {
                io_check(session, e)?;
                // This channel is broken; treat it as ended.
                return Ok(ReadState::Eof);
            }
        }
    }
}

fn exit_status(channel: &Channel) -> ExitStatus {
    if let Ok(signal) = channel.exit_signal()
        && let Some(name) = signal.exit_signal
    {
        return ExitStatus {
            code: None,
            signal: Some(name),
        };
    }
    ExitStatus {
        code: channel.exit_status().ok(),
        signal: None,
    }
}

struct ExecReq {
    command: String,
    timeout: Duration,
    deadline: Instant,
    max_output: usize,
    reply: oneshot::Sender<Result<Output, TransportError>>,
}

enum Setup {
    Exec(ExecReq),
    Stream {
        id: u64,
    },
    Forward {
        local: UnixStream,
        remote_path: String,
    },
    Tcp {
        host: String,
        port: u16,
        deadline: Instant,
        local: UnixStream,
        give: UnixStream,
        reply: std::sync::mpsc::Sender<Result<UnixStream, TunnelError>>,
    },
    /// Opens and closes a session channel so libssh2 reads (and answers) what the server
    /// sent while no channel was reading.
    Drain,
}

impl Setup {
    /// Counts against the server's MaxSessions.
    fn is_session(&self) -> bool {
        matches!(self, Setup::Exec(_) | Setup::Stream { .. } | Setup::Drain)
    }
}

struct Opening {
    setup: Setup,
    channel: Option<Channel>,
    command: Option<String>,
}

enum Outcome {
    Keep,
    /// Finished, channel closed.
    Done,
    /// Close the channel (and wait for the server's close) before dropping it.
    Close,
}

struct ExecOp {
    channel: Channel,
    timeout: Duration,
    deadline: Instant,
    max_output: usize,
    reply: Option<oneshot::Sender<Result<Output, TransportError>>>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    out_done: bool,
    err_done: bool,
}

const STREAM_PENDING: usize = 1024;

struct StreamOp {
    id: u64,
    channel: Channel,
    splitter: Splitter,
    pending: VecDeque<SplitLine>,
    stderr: Tail,
    out_done: bool,
    err_done: bool,
    started: Instant,
    /// Waiting for the reader to take lines.
    blocked: bool,
    /// The run's first line is its header (see `StreamSpec::with_header`), not yet read.
    header_due: bool,
}

const PUMP_CAP: usize = 256 * 1024;

struct Pump {
    channel: Channel,
    local: UnixStream,
    up: Vec<u8>,
    down: Vec<u8>,
    local_eof: bool,
    remote_eof: bool,
    eof_sent: bool,
    local_shut: bool,
}

enum Op {
    Exec(ExecOp),
    Stream(StreamOp),
    Pump(Pump),
    Closing {
        channel: Channel,
        session: bool,
        give_up: Instant,
    },
}

impl Op {
    fn is_session(&self) -> bool {
        match self {
            Op::Exec(_) | Op::Stream(_) => true,
            Op::Pump(_) => false,
            Op::Closing { session, .. } => *session,
        }
    }

    fn channel(&self) -> &Channel {
        match self {
            Op::Exec(op) => &op.channel,
            Op::Stream(op) => &op.channel,
            Op::Pump(op) => &op.channel,
            Op::Closing { channel, .. } => channel,
        }
    }

    /// Would it read if the socket had data?
    fn wants_read(&self) -> bool {
        match self {
            Op::Exec(_) | Op::Closing { .. } => true,
            Op::Stream(op) => op.pending.len() < STREAM_PENDING && !op.out_done,
            Op::Pump(op) => op.down.len() < PUMP_CAP || !op.up.is_empty(),
        }
    }

    /// Has libssh2 already queued something this op can act on? (Another channel's read
    /// may have pulled it off the socket, so poll(2) would not see it.)
    fn has_queued(&self, outbound_blocked: bool) -> bool {
        let channel = self.channel();
        let available = || channel.read_window().available > 0;
        match self {
            Op::Exec(op) => !(op.out_done && op.err_done) && (available() || channel.eof()),
            Op::Stream(op) => {
                op.pending.len() < STREAM_PENDING
                    && !(op.out_done && op.err_done)
                    && (available() || channel.eof())
            }
            Op::Pump(op) => {
                (op.down.len() < PUMP_CAP && !op.remote_eof && (available() || channel.eof()))
                    || (!outbound_blocked
                        && !op.up.is_empty()
                        && channel.write_window().remaining > 0)
            }
            Op::Closing { .. } => false,
        }
    }
}

struct Mux {
    session: Session,
    fd: RawFd,
    max_sessions: usize,
    queue: VecDeque<Setup>,
    opening: Option<Opening>,
    ops: Vec<Op>,
    next_keepalive: Instant,
    tcp: bool,
    dead_after: Duration,
    next_liveness: Instant,
    /// Reading what the server sent while no channel was open, at most this often.
    next_drain: Instant,
}

impl Mux {
    fn new(conn: Connection, options: &super::PoolOptions) -> Self {
        let now = Instant::now();
        Mux {
            session: conn.session,
            fd: conn.fd,
            max_sessions: options.max_sessions.max(1),
            queue: VecDeque::new(),
            opening: None,
            ops: Vec::new(),
            next_keepalive: now,
            tcp: conn.tcp,
            // Never shorter than two keepalive rounds: the server needs a chance to answer.
            dead_after: options
                .dead_after
                .max(options.keepalive * 2 + Duration::from_secs(1)),
            next_liveness: now + Duration::from_secs(1),
            next_drain: now,
        }
    }

    fn run(mut self, ctx: &mut HostCtx) -> Ended {
        let now = Instant::now();
        for reg in ctx.streams.values_mut() {
            if reg.started_once {
                reg.resume.restarts += 1;
            }
            reg.running = false;
            reg.start_at = Some(now);
        }
        let result = self.serve(ctx);
        match result {
            Ok(()) => {
                self.teardown(ctx, "watchpost is stopping");
                let _ = self.session.disconnect(None, "watchpost is stopping", None);
                Ended::Shutdown
            }
            Err(Lost(reason)) => {
                let reason = socket_state(self.fd).unwrap_or(reason);
                self.teardown(ctx, &reason);
                Ended::Lost(reason)
            }
        }
    }

    fn serve(&mut self, ctx: &mut HostCtx) -> Result<(), Lost> {
        loop {
            let mut progress = self.take_requests(ctx);
            if ctx.shutdown {
                return Ok(());
            }
            ctx.drain_wake();
            let now = Instant::now();
            progress |= self.accept_forwards(ctx);
            progress |= self.schedule_streams(ctx, now);
            progress |= self.expire(now, &ctx.setup.name);
            progress |= self.step_opening(ctx)?;
            progress |= self.step_ops(ctx, now)?;
            if now >= self.next_keepalive {
                match self.session.keepalive_send() {
                    Ok(secs) => {
                        self.next_keepalive = now + Duration::from_secs(u64::from(secs.max(1)))
                    }
                    Err(e) if is_eagain(&e) => {}
                    Err(e) => {
                        check(e)?;
                    }
                }
            }
            let outbound_blocked = matches!(
                self.session.block_directions(),
                ssh2::BlockDirections::Outbound | ssh2::BlockDirections::Both
            );
            if now >= self.next_liveness {
                self.next_liveness = now + Duration::from_secs(1);
                self.check_liveness()?;
            }
            if progress || self.ops.iter().any(|op| op.has_queued(outbound_blocked)) {
                continue;
            }
            self.sleep(ctx, now)?;
        }
    }

    fn take_requests(&mut self, ctx: &mut HostCtx) -> bool {
        let mut progress = false;
        while let Some(request) = ctx.next_request() {
            progress = true;
            match ctx.register(request) {
                Some(Request::Exec {
                    command,
                    timeout,
                    deadline,
                    max_output,
                    reply,
                }) => self.queue.push_back(Setup::Exec(ExecReq {
                    command,
                    timeout,
                    deadline,
                    max_output,
                    reply,
                })),
                Some(Request::DirectTcp {
                    host,
                    port,
                    deadline,
                    reply,
                }) => match UnixStream::pair() {
                    Ok((local, give)) => {
                        let _ = local.set_nonblocking(true);
                        self.queue.push_back(Setup::Tcp {
                            host,
                            port,
                            deadline,
                            local,
                            give,
                            reply,
                        });
                    }
                    Err(e) => {
                        let _ = reply.send(Err(TunnelError::SocketPair(e)));
                    }
                },
                _ => {}
            }
        }
        progress
    }

    fn accept_forwards(&mut self, ctx: &HostCtx) -> bool {
        let mut progress = false;
        for forward in ctx.forwards.values() {
            while let Ok((conn, _)) = forward.listener.accept() {
                if conn.set_nonblocking(true).is_ok() {
                    self.queue.push_back(Setup::Forward {
                        local: conn,
                        remote_path: forward.remote_path.clone(),
                    });
                }
                progress = true;
            }
        }
        progress
    }

    fn schedule_streams(&mut self, ctx: &mut HostCtx, now: Instant) -> bool {
        let mut progress = false;
        for (id, reg) in ctx.streams.iter_mut() {
            if !reg.running && reg.start_at.is_some_and(|t| t <= now) {
                reg.running = true;
                reg.start_at = None;
                self.queue.push_back(Setup::Stream { id: *id });
                progress = true;
            }
        }
        progress
    }

    /// Answers queued requests whose time is up or whose caller is gone.
    fn expire(&mut self, now: Instant, host: &str) -> bool {
        let before = self.queue.len();
        let mut kept = VecDeque::with_capacity(before);
        for setup in self.queue.drain(..) {
            match setup {
                Setup::Exec(req) if req.reply.is_closed() => {}
                Setup::Exec(req) if now >= req.deadline => {
                    let _ = req.reply.send(Err(TransportError::Timeout {
                        host: host.to_string(),
                        what: "command (waiting for a free session channel)".into(),
                        after: req.timeout,
                    }));
                }
                Setup::Tcp {
                    deadline, reply, ..
                } if now >= deadline => {
                    let _ = reply.send(Err(TunnelError::Queued));
                }
                other => kept.push_back(other),
            }
        }
        self.queue = kept;
        self.queue.len() != before
    }

    fn session_channels(&self) -> usize {
        self.ops.iter().filter(|op| op.is_session()).count()
            + usize::from(self.opening.as_ref().is_some_and(|o| o.setup.is_session()))
    }

    fn step_opening(&mut self, ctx: &mut HostCtx) -> Result<bool, Lost> {
        let mut progress = false;
        if self.opening.is_none() {
            let sessions = self.session_channels();
            let Some(pos) = self
                .queue
                .iter()
                .position(|s| !s.is_session() || sessions < self.max_sessions)
            else {
                return Ok(false);
            };
            let setup = self.queue.remove(pos).expect("position is in the queue");
            let command = match &setup {
                Setup::Exec(req) => Some(req.command.clone()),
                Setup::Stream { id } => match ctx.streams.get(id) {
                    Some(reg) => Some(remote_stream_command(&reg.spec.command_for(&reg.resume))),
                    // Closed while queued.
                    None => return Ok(true),
                },
                _ => None,
            };
            self.opening = Some(Opening {
                setup,
                channel: None,
                command,
            });
            progress = true;
        }
        let opening = self.opening.as_mut().expect("set above");
        if opening.channel.is_none() {
            let result = match &opening.setup {
                Setup::Exec(_) | Setup::Stream { .. } | Setup::Drain => {
                    self.session.channel_session()
                }
                Setup::Forward { remote_path, .. } => {
                    self.session.channel_direct_streamlocal(remote_path, None)
                }
                Setup::Tcp { host, port, .. } => {
                    self.session.channel_direct_tcpip(host, *port, None)
                }
            };
            match result {
                Ok(channel) => {
                    opening.channel = Some(channel);
                    progress = true;
                }
                Err(e) if is_eagain(&e) => return Ok(progress),
                Err(e) => {
                    let e = check(e)?;
                    let opening = self.opening.take().expect("set above");
                    // With other sessions open, a refused session is the server's
                    // MaxSessions (lower than ours, or a slot it has not freed yet):
                    // learn the limit and wait for a free one.
                    let others = self.session_channels();
                    if opening.setup.is_session()
                        && others > 0
                        && e.code() == ErrorCode::Session(-21)
                    {
                        self.max_sessions = others;
                        self.queue.push_front(opening.setup);
                        return Ok(true);
                    }
                    let message = match &opening.setup {
                        // The server tried to connect and could not: say so, not "sessions".
                        Setup::Tcp { host, port, .. } => format!(
                            "the server could not open a tunnel to {host}:{port} ({}): nothing listens there, or its sshd does not allow TCP forwarding",
                            e.message()
                        ),
                        _ => channel_refusal(&e),
                    };
                    fail_setup(opening.setup, ctx, &message);
                    return Ok(true);
                }
            }
        }
        if let Some(command) = &opening.command {
            let channel = opening.channel.as_mut().expect("opened above");
            match channel.exec(command) {
                Ok(()) => {}
                Err(e) if is_eagain(&e) => return Ok(progress),
                Err(e) => {
                    let e = check(e)?;
                    let opening = self.opening.take().expect("set above");
                    self.ops
                        .push(closing(opening.channel.expect("opened"), true));
                    fail_setup(
                        opening.setup,
                        ctx,
                        &format!("the server refused to run the command: {}", e.message()),
                    );
                    return Ok(true);
                }
            }
        }
        let opening = self.opening.take().expect("set above");
        let channel = opening.channel.expect("opened above");
        match opening.setup {
            Setup::Exec(req) => self.ops.push(Op::Exec(ExecOp {
                channel,
                timeout: req.timeout,
                deadline: req.deadline,
                max_output: req.max_output,
                reply: Some(req.reply),
                stdout: Vec::new(),
                stderr: Vec::new(),
                out_done: false,
                err_done: false,
            })),
            Setup::Stream { id } => match ctx.streams.get_mut(&id) {
                Some(reg) => {
                    reg.started_once = true;
                    // A command with a header has started when its header comes.
                    if !reg.spec.has_header() {
                        let _ = reg.tx.try_send(StreamEvent::Started {
                            restarts: reg.resume.restarts,
                        });
                    }
                    self.ops.push(Op::Stream(StreamOp {
                        id,
                        channel,
                        splitter: Splitter::new(reg.spec.max_line),
                        pending: VecDeque::new(),
                        stderr: Tail::default(),
                        out_done: false,
                        err_done: false,
                        started: Instant::now(),
                        blocked: false,
                        header_due: reg.spec.has_header(),
                    }));
                }
                None => self.ops.push(closing(channel, true)),
            },
            Setup::Drain => self.ops.push(closing(channel, true)),
            Setup::Forward { local, .. } => self.ops.push(Op::Pump(Pump::new(channel, local))),
            Setup::Tcp {
                local, give, reply, ..
            } => {
                if reply.send(Ok(give)).is_ok() {
                    self.ops.push(Op::Pump(Pump::new(channel, local)));
                } else {
                    self.ops.push(closing(channel, false));
                }
            }
        }
        Ok(true)
    }

    fn step_ops(&mut self, ctx: &mut HostCtx, now: Instant) -> Result<bool, Lost> {
        let mut progress = false;
        let mut i = 0;
        while i < self.ops.len() {
            let (moved, outcome) = match &mut self.ops[i] {
                Op::Exec(op) => op.step(&self.session, now, ctx.name())?,
                Op::Stream(op) => op.step(&self.session, &mut ctx.streams, now)?,
                Op::Pump(op) => op.step(&self.session)?,
                Op::Closing {
                    channel, give_up, ..
                } => match channel.close() {
                    Err(e) if is_eagain(&e) && now < *give_up => (false, Outcome::Keep),
                    Err(e) if is_eagain(&e) => (true, Outcome::Done),
                    Err(e) => {
                        check(e)?;
                        (true, Outcome::Done)
                    }
                    Ok(()) => (true, Outcome::Done),
                },
            };
            progress |= moved;
            match outcome {
                Outcome::Keep => i += 1,
                Outcome::Done => {
                    self.ops.swap_remove(i);
                }
                Outcome::Close => {
                    let op = self.ops.swap_remove(i);
                    let session = op.is_session();
                    let channel = match op {
                        Op::Exec(op) => op.channel,
                        Op::Stream(op) => op.channel,
                        Op::Pump(op) => op.channel,
                        Op::Closing { channel, .. } => channel,
                    };
                    self.ops.push(closing(channel, session));
                    progress = true;
                }
            }
        }
        Ok(progress)
    }

    /// The server answers every keepalive; nothing at all from it for `dead_after` means
    /// it is gone or hung, even when TCP still acknowledges (a stopped sshd, a
    /// half-open path).
    fn check_liveness(&self) -> Result<(), Lost> {
        if !self.tcp {
            return Ok(());
        }
        match last_received(self.fd) {
            Some(quiet) if quiet > self.dead_after => Err(Lost(format!(
                "the server stopped answering (nothing received for {}s)",
                quiet.as_secs()
            ))),
            _ => Ok(()),
        }
    }

    /// Sleeps until a socket is ready or a timer is due.
    fn sleep(&mut self, ctx: &HostCtx, now: Instant) -> Result<(), Lost> {
        let reading = self.opening.is_some() || self.ops.iter().any(Op::wants_read);
        let idle = self.opening.is_none() && self.ops.is_empty() && self.queue.is_empty();
        let drain_due = idle && now >= self.next_drain;
        let mut events = libc::POLLRDHUP;
        if reading || drain_due {
            events |= libc::POLLIN;
        }
        if matches!(
            self.session.block_directions(),
            ssh2::BlockDirections::Outbound | ssh2::BlockDirections::Both
        ) {
            events |= libc::POLLOUT;
        }
        let mut fds = vec![
            pollfd(ctx.wake.as_raw_fd(), libc::POLLIN),
            pollfd(self.fd, events),
        ];
        fds.extend(
            ctx.forwards
                .values()
                .map(|f| pollfd(f.listener.as_raw_fd(), libc::POLLIN)),
        );
        for op in &self.ops {
            if let Op::Pump(p) = op {
                let mut ev = 0;
                if !p.local_eof && p.up.len() < PUMP_CAP {
                    ev |= libc::POLLIN;
                }
                if !p.down.is_empty() {
                    ev |= libc::POLLOUT;
                }
                if ev != 0 {
                    fds.push(pollfd(p.local.as_raw_fd(), ev));
                }
            }
        }

        let mut wake_at = self
            .next_keepalive
            .min(self.next_liveness)
            .min(now + Duration::from_secs(5));
        if idle && !drain_due {
            wake_at = wake_at.min(self.next_drain);
        }
        for setup in &self.queue {
            match setup {
                Setup::Exec(req) => wake_at = wake_at.min(req.deadline),
                Setup::Tcp { deadline, .. } => wake_at = wake_at.min(*deadline),
                _ => {}
            }
        }
        for op in &self.ops {
            match op {
                Op::Exec(op) => wake_at = wake_at.min(op.deadline),
                // A reader that is behind: look again soon.
                Op::Stream(op) if op.blocked => {
                    wake_at = wake_at.min(now + Duration::from_millis(20))
                }
                Op::Closing { give_up, .. } => wake_at = wake_at.min(*give_up),
                _ => {}
            }
        }
        for reg in ctx.streams.values() {
            if let Some(at) = reg.start_at {
                wake_at = wake_at.min(at);
            }
        }
        // A caller that gave up on an exec: noticed within a second.
        if self.ops.iter().any(|op| matches!(op, Op::Exec(_))) {
            wake_at = wake_at.min(now + Duration::from_secs(1));
        }
        poll(&mut fds, wake_at.saturating_duration_since(Instant::now()));

        let revents = fds[1].revents;
        let hangup = revents & (libc::POLLHUP | libc::POLLERR | libc::POLLRDHUP) != 0;
        if hangup && !reading {
            return Err(Lost(if revents & libc::POLLERR != 0 {
                "connection lost (socket error)".into()
            } else {
                "connection closed by the server".into()
            }));
        }
        if drain_due && revents & libc::POLLIN != 0 {
            self.queue.push_back(Setup::Drain);
            self.next_drain = Instant::now() + Duration::from_secs(30);
        }
        Ok(())
    }

    /// Answers everything that was waiting on this session.
    fn teardown(&mut self, ctx: &mut HostCtx, reason: &str) {
        let down = || TransportError::HostDown {
            host: ctx.setup.name.clone(),
            reason: reason.to_string(),
            retry_in: None,
        };
        let mut setups: Vec<Setup> = self.queue.drain(..).collect();
        if let Some(opening) = self.opening.take() {
            setups.push(opening.setup);
        }
        for setup in setups {
            match setup {
                Setup::Exec(req) => {
                    let _ = req.reply.send(Err(down()));
                }
                Setup::Tcp { reply, .. } => {
                    let _ = reply.send(Err(TunnelError::Host(down())));
                }
                _ => {}
            }
        }
        for op in self.ops.drain(..) {
            if let Op::Exec(mut op) = op
                && let Some(reply) = op.reply.take()
            {
                let _ = reply.send(Err(down()));
            }
        }
    }
}

/// How long since the server last sent data on this TCP socket (TCP_INFO).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn last_received(fd: RawFd) -> Option<Duration> {
    // SAFETY: getsockopt writes at most `len` bytes into a zeroed tcp_info.
    unsafe {
        let mut info: libc::tcp_info = std::mem::zeroed();
        let mut len = size_of::<libc::tcp_info>() as libc::socklen_t;
        let rc = libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        );
        (rc == 0).then(|| Duration::from_millis(u64::from(info.tcpi_last_data_recv)))
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn last_received(_fd: RawFd) -> Option<Duration> {
    None
}

/// What the socket says after libssh2 gave up on it: closed, reset or timed out.
fn socket_state(fd: RawFd) -> Option<String> {
    let mut byte = 0u8;
    // SAFETY: a one-byte peek into a local buffer on a socket this thread owns.
    let n = unsafe {
        libc::recv(
            fd,
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    if n == 0 {
        return Some("connection closed by the server".into());
    }
    if n > 0 {
        return None;
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::ECONNRESET) => Some("connection reset by the server".into()),
        Some(libc::ETIMEDOUT) => Some("connection timed out (the server stopped answering)".into()),
        Some(libc::EHOSTUNREACH) | Some(libc::ENETUNREACH) => {
            Some("connection lost (host unreachable)".into())
        }
        _ => None,
    }
}

fn closing(channel: Channel, session: bool) -> Op {
    Op::Closing {
        channel,
        session,
        give_up: Instant::now() + Duration::from_secs(30),
    }
}

fn channel_refusal(e: &ssh2::Error) -> String {
    match e.code() {
        ErrorCode::Session(-21) => format!(
            "the server refused to open a channel ({}): too many sessions, or forwarding not allowed",
            e.message()
        ),
        _ => format!("cannot open a channel: {}", e.message()),
    }
}

/// A setup that could not get its channel.
fn fail_setup(setup: Setup, ctx: &mut HostCtx, message: &str) {
    let host = ctx.setup.name.clone();
    match setup {
        Setup::Exec(req) => {
            let _ = req.reply.send(Err(TransportError::Channel {
                host,
                message: message.to_string(),
            }));
        }
        Setup::Stream { id } => {
            if let Some(reg) = ctx.streams.get_mut(&id) {
                let wait = reg.backoff.after_run(Duration::ZERO);
                reg.running = false;
                reg.start_at = Some(Instant::now() + wait);
                let _ = reg.tx.try_send(StreamEvent::Exited {
                    status: ExitStatus::default(),
                    stderr: message.to_string(),
                    retry_in: Some(wait),
                });
            }
        }
        Setup::Tcp { reply, .. } => {
            let _ = reply.send(Err(TunnelError::Channel {
                host,
                message: message.to_string(),
            }));
        }
        // The local client sees its connection closed.
        Setup::Forward { .. } | Setup::Drain => {}
    }
}

impl ExecOp {
    fn step(
        &mut self,
        session: &Session,
        now: Instant,
        host: &str,
    ) -> Result<(bool, Outcome), Lost> {
        let Some(reply) = self.reply.as_ref() else {
            return Ok((true, Outcome::Close));
        };
        if reply.is_closed() {
            return Ok((true, Outcome::Close));
        }
        if now >= self.deadline {
            self.answer(Err(TransportError::Timeout {
                host: host.to_string(),
                what: "command".into(),
                after: self.timeout,
            }));
            return Ok((true, Outcome::Close));
        }
        let mut progress = false;
        if !self.out_done {
            match read_into(session, &self.channel, 0, &mut self.stdout, 1 << 20)? {
                ReadState::Data => progress = true,
                ReadState::Eof => {
                    self.out_done = true;
                    progress = true;
                }
                ReadState::Blocked => {}
            }
        }
        if !self.err_done {
            match read_into(session, &self.channel, 1, &mut self.stderr, 1 << 20)? {
                ReadState::Data => progress = true,
                ReadState::Eof => {
                    self.err_done = true;
                    progress = true;
                }
                ReadState::Blocked => {}
            }
        }
        if self.stdout.len() + self.stderr.len() > self.max_output {
            let limit = self.max_output;
            self.answer(Err(TransportError::TooLarge {
                host: host.to_string(),
                limit,
            }));
            return Ok((true, Outcome::Close));
        }
        if self.out_done && self.err_done {
            // Waits for the server's close, which comes after the exit status.
            match self.channel.close() {
                Err(e) if is_eagain(&e) => return Ok((progress, Outcome::Keep)),
                Err(e) => {
                    check(e)?;
                }
                Ok(()) => {}
            }
            let output = Output {
                stdout: std::mem::take(&mut self.stdout),
                stderr: std::mem::take(&mut self.stderr),
                status: exit_status(&self.channel),
            };
            self.answer(Ok(output));
            return Ok((true, Outcome::Done));
        }
        Ok((progress, Outcome::Keep))
    }

    fn answer(&mut self, result: Result<Output, TransportError>) {
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(result);
        }
    }
}

impl StreamOp {
    fn step(
        &mut self,
        session: &Session,
        streams: &mut BTreeMap<u64, StreamReg>,
        now: Instant,
    ) -> Result<(bool, Outcome), Lost> {
        let Some(reg) = streams.get_mut(&self.id) else {
            // The stream was dropped.
            return Ok((true, Outcome::Close));
        };
        let mut progress = false;
        match self.deliver(reg) {
            Some(moved) => progress |= moved,
            None => {
                streams.remove(&self.id);
                return Ok((true, Outcome::Close));
            }
        }
        if !self.out_done && self.pending.len() < STREAM_PENDING {
            let mut data = Vec::new();
            match read_into(session, &self.channel, 0, &mut data, 256 * 1024)? {
                ReadState::Data => progress = true,
                ReadState::Eof => {
                    self.out_done = true;
                    progress = true;
                }
                ReadState::Blocked => {}
            }
            self.splitter.push(&data, &mut self.pending);
            if self.out_done
                && let Some(last) = self.splitter.finish()
            {
                self.pending.push_back(last);
            }
            match self.deliver(reg) {
                Some(moved) => progress |= moved,
                None => {
                    streams.remove(&self.id);
                    return Ok((true, Outcome::Close));
                }
            }
        }
        if !self.err_done {
            let mut data = Vec::new();
            match read_into(session, &self.channel, 1, &mut data, 64 * 1024)? {
                ReadState::Data => progress = true,
                ReadState::Eof => {
                    self.err_done = true;
                    progress = true;
                }
                ReadState::Blocked => {}
            }
            self.stderr.push(&data);
        }
        self.blocked = !self.pending.is_empty();
        if self.out_done && self.err_done && self.pending.is_empty() {
            match self.channel.close() {
                Err(e) if is_eagain(&e) => return Ok((progress, Outcome::Keep)),
                Err(e) => {
                    check(e)?;
                }
                Ok(()) => {}
            }
            let status = exit_status(&self.channel);
            let retry = reg
                .spec
                .restart_on_exit
                .then(|| reg.backoff.after_run(self.started.elapsed()));
            let _ = reg.tx.try_send(StreamEvent::Exited {
                status,
                stderr: self.stderr.text(),
                retry_in: retry,
            });
            reg.running = false;
            match retry {
                Some(wait) => {
                    reg.start_at = Some(now + wait);
                    reg.resume.restarts += 1;
                }
                // Dropping the sender ends the reader's stream.
                None => {
                    streams.remove(&self.id);
                }
            }
            return Ok((true, Outcome::Done));
        }
        Ok((progress, Outcome::Keep))
    }

    /// Hands pending lines to the reader, counting them for the resume. `None` when the
    /// reader is gone.
    fn deliver(&mut self, reg: &mut StreamReg) -> Option<bool> {
        let mut moved = false;
        if self.header_due && !self.pending.is_empty() {
            // The command runs now: its header says so (see `StreamSpec::with_header`).
            let permit = match reg.tx.try_reserve() {
                Ok(permit) => permit,
                Err(mpsc::error::TrySendError::Full(())) => return Some(false),
                Err(mpsc::error::TrySendError::Closed(())) => return None,
            };
            let header = self.pending.pop_front().expect("not empty");
            reg.spec.take_header(&mut reg.resume, &header.text);
            self.header_due = false;
            permit.send(StreamEvent::Started {
                restarts: reg.resume.restarts,
            });
            moved = true;
        }
        while !self.pending.is_empty() {
            let permit = match reg.tx.try_reserve() {
                Ok(permit) => permit,
                Err(mpsc::error::TrySendError::Full(())) => break,
                Err(mpsc::error::TrySendError::Closed(())) => return None,
            };
            let line = self.pending.pop_front().expect("not empty");
            reg.spec.count(&mut reg.resume, &line);
            permit.send(StreamEvent::Line {
                text: line.text,
                truncated: line.truncated,
            });
            moved = true;
        }
        Some(moved)
    }
}

impl Pump {
    fn new(channel: Channel, local: UnixStream) -> Self {
        Pump {
            channel,
            local,
            up: Vec::new(),
            down: Vec::new(),
            local_eof: false,
            remote_eof: false,
            eof_sent: false,
            local_shut: false,
        }
    }

    fn step(&mut self, session: &Session) -> Result<(bool, Outcome), Lost> {
        let mut progress = false;
        let mut chunk = [0u8; 32 * 1024];
        // local → remote
        if !self.local_eof && self.up.len() < PUMP_CAP {
            match (&self.local).read(&mut chunk) {
                Ok(0) => {
                    self.local_eof = true;
                    progress = true;
                }
                Ok(n) => {
                    self.up.extend_from_slice(&chunk[..n]);
                    progress = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => return Ok((true, Outcome::Close)),
            }
        }
        if !self.up.is_empty() {
            match self.channel.write(&self.up) {
                Ok(n) => {
                    self.up.drain(..n);
                    progress |= n > 0;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => {
                    io_check(session, e)?;
                    return Ok((true, Outcome::Close));
                }
            }
        }
        if self.local_eof && self.up.is_empty() && !self.eof_sent {
            match self.channel.send_eof() {
                Err(e) if is_eagain(&e) => {}
                Err(e) => {
                    check(e)?;
                    self.eof_sent = true;
                }
                Ok(()) => {
                    self.eof_sent = true;
                    progress = true;
                }
            }
        }
        // remote → local
        if !self.remote_eof && self.down.len() < PUMP_CAP {
            match read_into(session, &self.channel, 0, &mut self.down, PUMP_CAP)? {
                ReadState::Data => progress = true,
                ReadState::Eof => {
                    self.remote_eof = true;
                    progress = true;
                }
                ReadState::Blocked => {}
            }
        }
        if !self.down.is_empty() {
            match (&self.local).write(&self.down) {
                Ok(n) => {
                    self.down.drain(..n);
                    progress |= n > 0;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => return Ok((true, Outcome::Close)),
            }
        }
        if self.remote_eof && self.down.is_empty() && !self.local_shut {
            let _ = self.local.shutdown(std::net::Shutdown::Write);
            self.local_shut = true;
            progress = true;
        }
        if self.eof_sent && self.local_shut {
            return Ok((true, Outcome::Close));
        }
        Ok((progress, Outcome::Keep))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the wrapper like sshd would: stdin stays open until the command is done.
    fn run_wrapped(args: &[&str]) -> (Option<i32>, String) {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let words = shell_words::split(&remote_stream_command(&args)).unwrap();
        let mut child = std::process::Command::new(&words[0])
            .args(&words[1..])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        drop(stdin);
        (status.code(), out)
    }

    #[test]
    fn the_stream_wrapper_is_valid_sh_and_passes_arguments_whole() {
        let (code, out) = run_wrapped(&["printf", "%s|", "a b", "x; touch /nonexistent/p"]);
        assert_eq!(out, "a b|x; touch /nonexistent/p|");
        assert_eq!(code, Some(0));
    }

    #[test]
    fn the_stream_wrapper_keeps_the_exit_status() {
        assert_eq!(run_wrapped(&["sh", "-c", "exit 7"]).0, Some(7));
    }

    #[test]
    fn the_stream_wrapper_kills_the_command_when_stdin_closes() {
        let args: Vec<String> = vec!["sleep".into(), "30".into()];
        let words = shell_words::split(&remote_stream_command(&args)).unwrap();
        let started = Instant::now();
        let mut child = std::process::Command::new(&words[0])
            .args(&words[1..])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        drop(child.stdin.take());
        let status = child.wait().unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "sleep was not killed"
        );
        assert!(!status.success());
    }

    #[test]
    fn fatal_codes_are_transport_errors_only() {
        assert!(is_fatal_code(ErrorCode::Session(-13)));
        assert!(is_fatal_code(ErrorCode::Session(-43)));
        assert!(!is_fatal_code(ErrorCode::Session(-37)));
        assert!(!is_fatal_code(ErrorCode::Session(-21)));
        assert!(!is_fatal_code(ErrorCode::Session(-26)));
    }
}
