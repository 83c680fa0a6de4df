//! Log lines from a long-lived process: a command's standard output (`command = [...]`
//! in a log source), and the core that journald sources use too.
//!
//! - A [`Launcher`] starts a process from an argv (never through a shell) and hands back
//!   its stdout, stderr and exit. [`LocalLauncher`] runs it here; a launcher over an SSH
//!   connection plugs in the same way, so the code above it does not change.
//! - A [`Plan`] says what to run, run after run: journald resumes after the last cursor
//!   delivered (`--after-cursor`) so nothing repeats.
//! - [`start`] runs the plan in a [`Feed`]'s task: stdout lines (at most 64 KiB each, the
//!   rest cut and counted) go into the feed's queue, bounded by bytes; when the queue is
//!   full the task stops reading, so the process waits (a pipe is its own backpressure)
//!   and nothing is dropped. stderr lines come through as source errors. When the process
//!   ends it is started again after a backoff (1 s doubling to 60 s, back to 1 s after a
//!   run of 30 s); dropping the feed kills it.
//!
//! On a remote host the plan runs as one of the SSH transport's long-lived streams instead
//! (`source::remote`), which keeps the resume token itself ([`Plan::resume_token`]).
//!
//! A command that prints what it already printed when it starts again (`kubectl logs -f`
//! without `--since`, `docker logs -f --tail 100`) repeats those lines after a restart:
//! give such commands a `--since`/`--tail` bound. (Docker logs come with the container
//! work, through the engine connection.)

use super::feed::{Event, Feed, Outbox, RawLine, Start, source_backoff};
use crate::collect::logs::parse::MAX_LINE_BYTES;
use futures::future::BoxFuture;
use std::ffi::OsString;
use std::io;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, BufReader};
use tokio::time::Instant;

/// A run this long counts as healthy: the next restart waits the shortest backoff again.
const HEALTHY_RUN: Duration = Duration::from_secs(30);

/// How a process ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exit {
    pub code: Option<i32>,
    /// "exit status: 1", "signal: 9 (SIGKILL)".
    pub description: String,
}

/// A started process.
pub struct Launched {
    pub stdout: Pin<Box<dyn AsyncRead + Send>>,
    pub stderr: Pin<Box<dyn AsyncRead + Send>>,
    /// Resolves when the process has ended. Dropping it stops the process.
    pub exit: BoxFuture<'static, io::Result<Exit>>,
}

/// Where processes run: here, or (later) on a host through its SSH connection.
pub trait Launcher: Send + Sync + 'static {
    /// Starts `argv[0]` with the rest as its arguments, without a shell.
    fn launch(&self, argv: &[String]) -> BoxFuture<'static, io::Result<Launched>>;
}

/// Runs processes on this machine.
#[derive(Clone, Debug, Default)]
pub struct LocalLauncher {
    env: Vec<(OsString, OsString)>,
}

impl LocalLauncher {
    pub fn new() -> Self {
        LocalLauncher::default()
    }

    /// Sets a variable for the processes started (`PATH` also decides where the program
    /// is looked up).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }
}

impl Launcher for LocalLauncher {
    fn launch(&self, argv: &[String]) -> BoxFuture<'static, io::Result<Launched>> {
        let spawned = match argv.split_first() {
            None => Err(io::Error::new(io::ErrorKind::InvalidInput, "empty command")),
            Some((program, args)) => tokio::process::Command::new(program)
                .args(args)
                .envs(self.env.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn(),
        };
        Box::pin(async move {
            let mut child = spawned?;
            let stdout = child
                .stdout
                .take()
                .ok_or_else(|| io::Error::other("no stdout"))?;
            let stderr = child
                .stderr
                .take()
                .ok_or_else(|| io::Error::other("no stderr"))?;
            Ok(Launched {
                stdout: Box::pin(stdout),
                stderr: Box::pin(stderr),
                exit: Box::pin(async move {
                    let status = child.wait().await?;
                    Ok(Exit {
                        code: status.code(),
                        description: status.to_string(),
                    })
                }),
            })
        })
    }
}

/// What to run, run after run.
pub(crate) trait Plan: Send + Sync + 'static {
    /// A short name for messages: "journalctl -u tmws", "kubectl".
    fn label(&self) -> String;
    /// Told how the source starts, before the first run: how far back its lines are
    /// still to be counted, and whether it is read once.
    fn prepare(&mut self, _start: Start) {}
    /// The command line of a run that resumes after the line that carried `token` (`None`:
    /// nothing to resume after, as for the first run).
    fn argv(&self, token: Option<&str>) -> Vec<String>;
    /// The token in a stdout line that a later run can resume after (journald's cursor);
    /// the last one delivered is kept, here or by the host's SSH stream.
    fn resume_token(&self, _line: &[u8]) -> Option<String> {
        None
    }
    /// Runs before each start; an error skips the start and waits as after a failed run.
    fn preflight<'a>(
        &'a mut self,
        _launcher: &'a dyn Launcher,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
    /// Why the process could not be started.
    fn spawn_error(&self, e: &io::Error) -> String {
        spawn_error(&self.label(), e)
    }
}

/// A spawn error in words: a missing program says so plainly.
pub(crate) fn spawn_error(label: &str, e: &io::Error) -> String {
    let program = label.split_whitespace().next().unwrap_or(label);
    match e.kind() {
        io::ErrorKind::NotFound => format!("{program}: command not found"),
        io::ErrorKind::PermissionDenied => format!("{program}: permission denied"),
        _ => format!("cannot start {label}: {e}"),
    }
}

/// A command's stdout, as configured (`command = ["kubectl", "logs", "-f", ...]`).
pub(crate) struct CommandPlan {
    argv: Vec<String>,
}

impl CommandPlan {
    pub fn new(argv: Vec<String>) -> Self {
        CommandPlan { argv }
    }
}

impl Plan for CommandPlan {
    fn label(&self) -> String {
        let program = self.argv.first().map(String::as_str).unwrap_or("command");
        std::path::Path::new(program)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(program)
            .to_string()
    }
    fn argv(&self, _token: Option<&str>) -> Vec<String> {
        self.argv.clone()
    }
}

/// Runs `plan` on `launcher` in a feed's task, run after run (needs a tokio runtime).
pub fn start(plan: Box<dyn Plan>, launcher: Arc<dyn Launcher>) -> Feed {
    Feed::from_producer(move |outbox| run(plan, launcher, outbox))
}

pub(super) async fn run(mut plan: Box<dyn Plan>, launcher: Arc<dyn Launcher>, out: Outbox) {
    let mut backoff = source_backoff();
    // The last resume token delivered (journald's cursor).
    let mut token: Option<String> = None;
    loop {
        let started = Instant::now();
        let message = match plan.preflight(&*launcher).await {
            Err(message) => message,
            Ok(()) => match launcher.launch(&plan.argv(token.as_deref())).await {
                Err(e) => plan.spawn_error(&e),
                Ok(launched) => {
                    if !out.send(Event::Started).await {
                        return;
                    }
                    match run_once(&*plan, &mut token, launched, &out).await {
                        Some(message) => message,
                        None => return,
                    }
                }
            },
        };
        if started.elapsed() >= HEALTHY_RUN {
            backoff.reset();
        }
        if !out.down_for(message, &mut backoff).await {
            return;
        }
    }
}

/// Reads one run to its end. Returns how it ended, or `None` if nobody listens any more.
async fn run_once(
    plan: &dyn Plan,
    token: &mut Option<String>,
    launched: Launched,
    out: &Outbox,
) -> Option<String> {
    let label = plan.label();
    let Launched {
        stdout,
        stderr,
        exit,
    } = launched;
    let read_stdout = async {
        let mut reader = BufReader::with_capacity(64 * 1024, stdout);
        loop {
            match read_line(&mut reader).await {
                Ok(Some(line)) => {
                    if let Some(new) = plan.resume_token(&line.bytes) {
                        *token = Some(new);
                    }
                    if !out.send(Event::Line(line)).await {
                        return Err(None);
                    }
                }
                Ok(None) => return Ok(()),
                Err(e) => return Err(Some(format!("cannot read the output of {label}: {e}"))),
            }
        }
    };
    let read_stderr = async {
        let mut reader = BufReader::new(stderr);
        let mut last = None;
        loop {
            match read_line(&mut reader).await {
                Ok(Some(line)) => {
                    let text = String::from_utf8_lossy(&line.bytes).trim().to_string();
                    if text.is_empty() {
                        continue;
                    }
                    last = Some(text.clone());
                    if !out.send(Event::Stderr(text)).await {
                        return (last, false);
                    }
                }
                Ok(None) | Err(_) => return (last, true),
            }
        }
    };
    let (stdout_result, (last_stderr, listening)) = tokio::join!(read_stdout, read_stderr);
    if !listening {
        return None;
    }
    if let Err(problem) = stdout_result {
        return problem;
    }
    let how = match exit.await {
        Ok(exit) if exit.code == Some(0) => format!("{label} ended"),
        Ok(exit) => format!("{label} stopped ({})", exit.description),
        Err(e) => format!("{label} stopped: {e}"),
    };
    Some(match last_stderr {
        Some(text) => format!("{how}: {text}"),
        None => how,
    })
}

/// Reads one line (without its newline), keeping at most `MAX_LINE_BYTES` of it.
/// `None` at the end; a last line without a newline still comes through. Blank lines
/// are skipped.
pub async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R) -> io::Result<Option<RawLine>> {
    let mut line = RawLine {
        bytes: Vec::new(),
        dropped: 0,
        at: None,
    };
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok((!line.bytes.is_empty() || line.dropped > 0).then_some(line));
        }
        let (chunk, used, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(end) => (&buf[..end], end + 1, true),
            None => (buf, buf.len(), false),
        };
        let room = MAX_LINE_BYTES
            .saturating_sub(line.bytes.len())
            .min(chunk.len());
        line.bytes.extend_from_slice(&chunk[..room]);
        line.dropped += (chunk.len() - room) as u64;
        reader.consume(used);
        if done {
            if line.bytes.iter().all(u8::is_ascii_whitespace) && line.dropped == 0 {
                line.bytes.clear();
                continue;
            }
            return Ok(Some(line));
        }
    }
}

/// Runs a command to its end and returns its exit and output (stdout, stderr), each cut
/// at `MAX_LINE_BYTES`, within `limit`. For short probes (`journalctl --lines=0`).
pub(crate) async fn run_to_end(
    launcher: &dyn Launcher,
    argv: &[String],
    limit: Duration,
) -> io::Result<(Exit, String, String)> {
    let work = async {
        let launched = launcher.launch(argv).await?;
        let collect = |reader: Pin<Box<dyn AsyncRead + Send>>| async move {
            let mut reader = BufReader::new(reader);
            let mut text = String::new();
            while let Some(line) = read_line(&mut reader).await? {
                if text.len() < MAX_LINE_BYTES {
                    text.push_str(&String::from_utf8_lossy(&line.bytes));
                    text.push('\n');
                }
            }
            io::Result::Ok(text)
        };
        let (stdout, stderr) = tokio::join!(collect(launched.stdout), collect(launched.stderr));
        let exit = launched.exit.await?;
        Ok((exit, stdout?, stderr?))
    };
    tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no answer within {}s", limit.as_secs()),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::super::feed::{EVENT_OVERHEAD, MIN_BACKOFF, QUEUE_BYTES};
    use super::*;

    fn sh(script: &str) -> Box<dyn Plan> {
        Box::new(CommandPlan::new(vec![
            "sh".into(),
            "-c".into(),
            script.into(),
        ]))
    }

    async fn until_down(p: &mut Feed) -> Vec<Event> {
        let mut all = Vec::new();
        for _ in 0..200 {
            let events = p.drain();
            let down = events.iter().any(|e| matches!(e, Event::Down { .. }));
            all.extend(events);
            if down {
                return all;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("never went down: {all:?}");
    }

    #[tokio::test]
    async fn lines_stderr_and_exit_in_order() {
        let mut p = start(
            sh("echo one; echo; printf 'two\\r\\n'; echo oops >&2; printf 'last'; exit 3"),
            Arc::new(LocalLauncher::new()),
        );
        let events = until_down(&mut p).await;
        let lines: Vec<String> = events
            .iter()
            .filter_map(|e| match e {
                Event::Line(l) => Some(String::from_utf8_lossy(&l.bytes).into_owned()),
                _ => None,
            })
            .collect();
        assert_eq!(lines, ["one", "two\r", "last"]);
        assert_eq!(events[0], Event::Started);
        assert!(events.contains(&Event::Stderr("oops".into())));
        match events.last().unwrap() {
            Event::Down { message, retry } => {
                assert_eq!(message, "sh stopped (exit status: 3): oops");
                assert_eq!(*retry, MIN_BACKOFF);
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_missing_program_says_so_and_backs_off() {
        let mut p = start(
            Box::new(CommandPlan::new(vec!["watchpost-no-such-program".into()])),
            Arc::new(LocalLauncher::new()),
        );
        let events = until_down(&mut p).await;
        assert_eq!(
            events,
            [Event::Down {
                message: "watchpost-no-such-program: command not found".into(),
                retry: MIN_BACKOFF
            }]
        );
        tokio::time::sleep(MIN_BACKOFF + Duration::from_millis(300)).await;
        let events = until_down(&mut p).await;
        assert_eq!(
            events.last(),
            Some(&Event::Down {
                message: "watchpost-no-such-program: command not found".into(),
                retry: MIN_BACKOFF * 2
            })
        );
    }

    #[tokio::test]
    async fn long_lines_are_cut_and_a_full_queue_holds_the_process_back() {
        // 40 MiB of output, in 1 MiB lines: more than the queue holds.
        let mut p = start(
            sh("for i in $(seq 40); do head -c 1048575 /dev/zero | tr '\\0' x; echo; done"),
            Arc::new(LocalLauncher::new()),
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut lines = 0;
        let mut rounds = 0;
        loop {
            let events = p.drain();
            let queued: usize = events.iter().map(Event::cost).sum();
            assert!(queued <= QUEUE_BYTES + MAX_LINE_BYTES + EVENT_OVERHEAD);
            for e in &events {
                if let Event::Line(l) = e {
                    assert_eq!(l.bytes.len(), MAX_LINE_BYTES);
                    assert_eq!(l.dropped, 1048575 - MAX_LINE_BYTES as u64);
                    lines += 1;
                }
            }
            if events.iter().any(|e| matches!(e, Event::Down { .. })) {
                break;
            }
            rounds += 1;
            assert!(rounds < 500, "{lines} lines");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(lines, 40);
    }

    #[tokio::test]
    async fn dropping_stops_the_process() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("alive");
        let script = format!(
            "echo started; while true; do date +%s%N > {}; sleep 0.05; done",
            marker.display()
        );
        let mut p = start(sh(&script), Arc::new(LocalLauncher::new()));
        let first = p
            .settle(Duration::from_millis(200), Duration::from_secs(5))
            .await;
        assert!(first.contains(&Event::Started), "{first:?}");
        drop(p);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = std::fs::read_to_string(&marker).unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(before, std::fs::read_to_string(&marker).unwrap());
    }
}
