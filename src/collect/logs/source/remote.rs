//! Log sources on a remote host, through the host's one SSH connection (see `transport`).
//! What they deliver goes into a [`Feed`], as a local process's output does, so the
//! collector parses, counts and reports it as it does for a local source.
//!
//! - journald units and commands: the plan's command runs as one of the host's long-lived
//!   streams. journald's cursor is the stream's resume token, so a restart after a
//!   reconnect starts after the last entry delivered. journald's check that there is a
//!   journal at all runs first, as a one-shot command on the host.
//! - Files and globs: the patterns are expanded on the host by its shell (each pattern is
//!   an argument of a constant script, never part of the script), and each file found is
//!   followed by a [`StreamSpec::follow_file`] stream: across rotation, and after a
//!   reconnect from the byte after the last line delivered. Globs (and paths not there
//!   yet) are expanded again every [`EXPAND_EVERY`]. A file that appears later is read
//!   from its start, unless its inode was followed before (a rotation into a name the
//!   glob matches), which goes on from its end. A glob's file that no longer matches is
//!   dropped.
//! - At most [`MAX_REMOTE_FILES`] files per source (plain paths first, then the most
//!   recently written matches): every stream holds one of the connection's session
//!   channels, and OpenSSH allows 10 per connection (`MaxSessions`), shared with every
//!   other source on that host.
//! - A file found at start shows its last 200 lines, and what came before them is read
//!   back to count it, as for a local file (see `readback`): where following starts is
//!   measured first, the collector is told ([`Event::Backlog`]), and it reads the chunks
//!   with [`read_chunk`], newest first, through the same connection.

use super::command::{Exit, Launched, Launcher, Plan};
use super::feed::{
    Event, Feed, MAX_BACKOFF, MIN_BACKOFF, Outbox, RawLine, RemoteBacklog, source_backoff,
};
use super::glob::{Found, is_glob, keep_newest};
use crate::transport::{
    ExitStatus, HostStatus, LineStream, StreamEvent, StreamSpec, Transport, TransportError,
};
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::{BoxStream, SelectAll};
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// Files followed at once per remote source.
pub const MAX_REMOTE_FILES: usize = 4;
/// How often globs (and paths not found yet) are expanded again on the host.
pub const EXPAND_EVERY: Duration = Duration::from_secs(10);
/// The last lines of each file shown at start, as for a local file.
const START_LINES: u64 = super::files::START_TAIL_LINES as u64;
const EXPAND_TIMEOUT: Duration = Duration::from_secs(10);

/// Prints `INDEX INODE MTIME PATH` for every regular file each pattern (`$1`, `$2`, ...)
/// matches, INDEX counting the patterns from 1. The pattern is expanded unquoted with an
/// empty IFS: pathname expansion only, no word splitting; its text is never run. Names
/// with a newline are skipped (they cannot be told apart in this output).
const EXPAND_SCRIPT: &str = r#"nl='
'
i=0
IFS=
for p in "$@"; do
  i=$((i + 1))
  for f in $p; do
    case $f in *"$nl"*) continue ;; esac
    [ -f "$f" ] || continue
    s=$(stat -L -c '%i %Y' -- "$f" 2>/dev/null) || continue
    printf '%s %s %s\n' "$i" "$s" "$f"
  done
done"#;

/// Prints the file's bytes from offset `$3` on, `$4` of them at most, in whole 64 KiB
/// blocks (`dd` seeks to them, with GNU and busybox alike; the caller cuts what is beyond);
/// exits 3 if the path no longer leads to inode `$2` (replaced since it was measured).
const CHUNK_SCRIPT: &str = r#"f=$1 ino=$2 at=$3 len=$4
s=$(stat -L -c %i -- "$f" 2>/dev/null) || exit 3
[ "$s" = "$ino" ] || exit 3
bs=65536
skip=$((at / bs))
count=$(( (at % bs + len + bs - 1) / bs ))
exec dd if="$f" bs=$bs skip=$skip count=$count 2>/dev/null"#;

const CHUNK_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a chunk could not be read back.
pub(super) enum ChunkError {
    /// The path leads to another file now (rotated): the rest of it cannot be read.
    Replaced,
    /// The host is down: try again later.
    HostDown,
    /// Anything else, in words.
    Failed(String),
}

/// The bytes `[at, at + len)` of the file with `inode` at `path` on the host.
pub(super) async fn read_chunk(
    transport: &Transport,
    path: &str,
    inode: &str,
    at: u64,
    len: u64,
) -> Result<Vec<u8>, ChunkError> {
    let args = [
        path.to_string(),
        inode.to_string(),
        at.to_string(),
        len.to_string(),
    ];
    let out = match transport
        .exec_script(CHUNK_SCRIPT, &args, CHUNK_TIMEOUT)
        .await
    {
        Ok(out) => out,
        Err(e) if crate::collect::host_unreachable(transport, &e) => {
            return Err(ChunkError::HostDown);
        }
        Err(e) => return Err(ChunkError::Failed(e.to_string())),
    };
    if out.status.code == Some(3) {
        return Err(ChunkError::Replaced);
    }
    if !out.success() {
        let said = out.stderr_text();
        return Err(ChunkError::Failed(format!(
            "{} {}",
            out.status,
            said.trim()
        )));
    }
    let skip = (at % 65536) as usize;
    let mut bytes = out.stdout;
    if bytes.len() < skip + len as usize {
        return Err(ChunkError::Failed(format!(
            "{} bytes where {len} were expected (the file got shorter)",
            bytes.len().saturating_sub(skip)
        )));
    }
    bytes.truncate(skip + len as usize);
    bytes.drain(..skip);
    Ok(bytes)
}

/// A journald unit or a command, run on the host as a long-lived stream.
pub(super) fn process(plan: Box<dyn Plan>, transport: Transport) -> Feed {
    Feed::from_producer(move |out| run_process(plan, transport, out))
}

/// Files and globs, followed on the host. Read once (`check`), a file's last lines are
/// not streamed: the read-back reads the file to its end, so what is counted does not wait
/// for the stream.
pub(super) fn files(patterns: Vec<String>, transport: Transport, one_shot: bool) -> Feed {
    let tail = if one_shot { 0 } else { START_LINES };
    Feed::from_producer(move |out| run_files(patterns, transport, tail, out))
}

/// Waits until the host is connected (a check run while it is down would only fail; the
/// collector shows the host's own line meanwhile).
async fn until_up(transport: &Transport) {
    let mut status = transport.status();
    let _ = status.wait_for(HostStatus::is_up).await;
}

/// The plan's check (journald: is there a journal?) on the host, once it is connected.
pub(super) async fn preflight(plan: &mut dyn Plan, transport: &Transport) -> Result<(), String> {
    until_up(transport).await;
    plan.preflight(&ExecLauncher(transport.clone())).await
}

pub(super) async fn run_process(mut plan: Box<dyn Plan>, transport: Transport, out: Outbox) {
    let label = plan.label();
    // The plan's check (journald: is there a journal?) as one-shot commands on the host.
    let launcher = ExecLauncher(transport.clone());
    let mut backoff = source_backoff();
    loop {
        until_up(&transport).await;
        match plan.preflight(&launcher).await {
            Ok(()) => break,
            Err(message) => {
                if !out.down_for(message, &mut backoff).await {
                    return;
                }
            }
        }
    }
    let mut stream = transport.stream(stream_spec(plan));
    while let Some(event) = stream.recv().await {
        if let Some(event) = translate(&transport, event, &label, false)
            && !out.send(event).await
        {
            return;
        }
    }
}

/// The plan as one of the host's long-lived streams: each (re)start resumes after the
/// last token delivered (journald's cursor), which the stream keeps.
fn stream_spec(plan: Box<dyn Plan>) -> StreamSpec {
    let plan = Arc::new(Mutex::new(plan));
    let token_plan = plan.clone();
    StreamSpec::new(move |resume| {
        plan.lock()
            .expect("the plan is never poisoned")
            .argv(resume.token.as_deref())
    })
    .with_token(move |line| {
        token_plan
            .lock()
            .expect("the plan is never poisoned")
            .resume_token(line)
    })
}

/// A stream event as a process event; `None` for one that is no news. `label` names the
/// command in an exit's message; with `clean_exit_restarts`, an exit 0 is the command's
/// own planned restart (a followed file that was replaced).
fn translate(
    transport: &Transport,
    event: StreamEvent,
    label: &str,
    clean_exit_restarts: bool,
) -> Option<Event> {
    match event {
        StreamEvent::Started { .. } => Some(Event::Started),
        // (A line over the stream's own limit, 1 MiB, was cut there already; the bytes
        // cut there are not counted.)
        StreamEvent::Line { text, .. } => Some(Event::Line(RawLine::cut(text))),
        StreamEvent::Interrupted { reason } => Some(Event::Down {
            message: format!("ssh {}: {reason}", transport.name()),
            retry: MIN_BACKOFF,
        }),
        StreamEvent::Exited { status, .. } if clean_exit_restarts && status.success() => None,
        StreamEvent::Exited {
            status,
            stderr,
            retry_in,
        } => Some(Event::Down {
            message: exit_message(label, &status, &stderr),
            retry: retry_in.unwrap_or(MAX_BACKOFF),
        }),
    }
}

fn exit_message(label: &str, status: &ExitStatus, stderr: &str) -> String {
    let said = stderr.lines().map(str::trim).rfind(|l| !l.is_empty());
    // As a local run says it (a one-shot read takes "ended" as the run's end).
    let how = if status.success() {
        format!("{label} ended")
    } else {
        format!("{label} stopped ({status})")
    };
    match said {
        Some(text) => format!("{how}: {text}"),
        None => how,
    }
}

/// Runs one-shot commands on the host for a plan's checks: the whole output is read
/// before it is handed over, so only for short commands (`journalctl --lines=0`).
struct ExecLauncher(Transport);

impl Launcher for ExecLauncher {
    fn launch(&self, argv: &[String]) -> BoxFuture<'static, io::Result<Launched>> {
        let transport = self.0.clone();
        let argv = argv.to_vec();
        Box::pin(async move {
            let out = transport
                .exec_timeout(&argv, EXPAND_TIMEOUT)
                .await
                .map_err(|e| io::Error::other(e.to_string()))?;
            // The remote shell's "command not found".
            if out.status.code == Some(127) {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    out.stderr_text().trim().to_string(),
                ));
            }
            let exit = Exit {
                code: out.status.code,
                description: out.status.to_string(),
            };
            Ok(Launched {
                stdout: Box::pin(io::Cursor::new(out.stdout)),
                stderr: Box::pin(io::Cursor::new(out.stderr)),
                exit: Box::pin(async move { Ok(exit) }),
            })
        })
    }
}

/// The files the patterns match on the host now, known by their inode.
async fn expand(
    transport: &Transport,
    patterns: &[String],
) -> Result<Vec<Found<String>>, TransportError> {
    let out = transport
        .exec_script(EXPAND_SCRIPT, patterns, EXPAND_TIMEOUT)
        .await?;
    Ok(parse_expansion(&out.stdout_text()))
}

fn parse_expansion(text: &str) -> Vec<Found<String>> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(4, ' ');
            let pattern = parts.next()?.parse::<usize>().ok()?.checked_sub(1)?;
            let id = parts.next()?.to_string();
            let modified = epoch_seconds(parts.next()?.parse().ok()?);
            let path = PathBuf::from(parts.next()?);
            Some(Found {
                pattern,
                path,
                id,
                modified,
            })
        })
        .collect()
}

/// A time `stat -c %Y` printed.
fn epoch_seconds(seconds: i64) -> SystemTime {
    let since = Duration::from_secs(seconds.unsigned_abs());
    if seconds < 0 {
        SystemTime::UNIX_EPOCH - since
    } else {
        SystemTime::UNIX_EPOCH + since
    }
}

/// The path of a file an expansion found, as the host printed it.
fn path_of(found: &Found<String>) -> String {
    found.path.to_string_lossy().into_owned()
}

/// One followed file: its path and the inode it had when last seen.
struct Followed {
    path: String,
    inode: Option<String>,
}

async fn run_files(patterns: Vec<String>, transport: Transport, tail: u64, out: Outbox) {
    let mut followed: Vec<Followed> = Vec::new();
    let mut streams: SelectAll<BoxStream<'static, (usize, StreamEvent)>> = SelectAll::new();
    let mut first = true;
    let mut next_expand = Instant::now();
    let mut said = String::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next_expand) => {
                until_up(&transport).await;
                let found = match expand(&transport, &patterns).await {
                    Ok(found) => found,
                    // The host dropped again, or the shell is slow: try again soon.
                    Err(_) => {
                        next_expand = Instant::now() + MIN_BACKOFF;
                        continue;
                    }
                };
                let (start, problems) = plan_follows(&patterns, &found, &mut followed, first);
                for (index, start) in start {
                    let spec = match start {
                        Start::Spec(spec) => spec,
                        Start::Tail { path, modified } => {
                            match transport.measure_follow(&path, tail).await {
                                Some((inode, end)) => {
                                    // The lines before the tail are the collector's to read back.
                                    if end > 0 {
                                        let backlog = RemoteBacklog {
                                            path: path.clone(),
                                            inode: inode.clone(),
                                            end,
                                            modified,
                                            tail_follows: tail > 0,
                                        };
                                        if !out.send(Event::Backlog(backlog)).await {
                                            return;
                                        }
                                    }
                                    StreamSpec::follow_file_at(&path, &inode, end)
                                }
                                // Not there (yet): read from its start when it comes.
                                None => StreamSpec::follow_file(&path, START_LINES),
                            }
                        }
                    };
                    let stream: LineStream = transport.stream(spec);
                    streams.push(stream.map(move |e| (index, e)).boxed());
                }
                // Said when it changes; the collector shows it until it is over.
                let message = problems.join("; ");
                if message != said {
                    let lasting = (!message.is_empty()).then(|| message.clone());
                    if !out.send(Event::Lasting(lasting)).await {
                        return;
                    }
                    said = message;
                }
                first = false;
                let again = patterns.iter().enumerate().any(|(i, p)| {
                    is_glob(p) || !found.iter().any(|f| f.pattern == i)
                });
                next_expand = Instant::now()
                    + if again { EXPAND_EVERY } else { Duration::from_secs(24 * 3600) };
            }
            Some((index, event)) = streams.next() => {
                let label = format!("following {}", followed[index].path);
                if let Some(event) = translate(&transport, event, &label, true)
                    && !out.send(event).await
                {
                    return;
                }
            }
        }
    }
}

/// How a newly followed file starts.
enum Start {
    /// Found at start: its last lines shown, the lines before them read back (where they
    /// start is measured first).
    Tail {
        path: String,
        modified: SystemTime,
    },
    Spec(StreamSpec),
}

/// Which new streams to open for what an expansion found, and the problems to report.
/// Plain paths are followed from the first expansion on, found or not (the follower waits
/// for a missing file); glob matches once found.
fn plan_follows(
    patterns: &[String],
    found: &[Found<String>],
    followed: &mut Vec<Followed>,
    first: bool,
) -> (Vec<(usize, Start)>, Vec<String>) {
    let mut problems = Vec::new();
    let mut wanted: Vec<(String, Option<&Found<String>>)> = Vec::new();
    for (i, pattern) in patterns.iter().enumerate() {
        let matches: Vec<&Found<String>> = found.iter().filter(|f| f.pattern == i).collect();
        if matches.is_empty() {
            problems.push(format!("no file matches {pattern}"));
        }
        if is_glob(pattern) {
            wanted.extend(matches.iter().map(|f| (path_of(f), Some(*f))));
        } else {
            wanted.push((pattern.clone(), matches.first().copied()));
        }
    }
    wanted.dedup_by(|a, b| a.0 == b.0);
    let mut new: Vec<(String, Option<&Found<String>>)> = wanted
        .into_iter()
        .filter(|(path, _)| !followed.iter().any(|f| &f.path == path))
        .collect();
    let room = MAX_REMOTE_FILES.saturating_sub(followed.len());
    let left_out = keep_newest(&mut new, room, |(_, f)| f.map(|f| f.modified));
    if left_out > 0 {
        problems.push(format!(
            "{left_out} matching files not followed (a remote source follows at most {MAX_REMOTE_FILES})"
        ));
    }
    // The inodes followed until now (a rotated file keeps its inode under a new name),
    // then what is followed now, as this expansion sees it.
    let known: Vec<String> = followed.iter().filter_map(|f| f.inode.clone()).collect();
    for f in followed.iter_mut() {
        if let Some(now) = found.iter().find(|found| path_of(found) == f.path) {
            f.inode = Some(now.id.clone());
        }
    }
    let mut start = Vec::new();
    for (path, found) in new {
        let inode = found.map(|f| f.id.clone());
        let spec = if first {
            Start::Tail {
                path: path.clone(),
                modified: found.map_or(SystemTime::now(), |f| f.modified),
            }
        } else if inode.as_ref().is_some_and(|i| known.contains(i)) {
            // A followed file under a new name (rotated into the glob): already shown.
            Start::Spec(StreamSpec::follow_file(&path, 0))
        } else {
            Start::Spec(StreamSpec::follow_file_from_start(&path))
        };
        start.push((followed.len(), spec));
        followed.push(Followed { path, inode });
    }
    (start, problems)
}

#[cfg(test)]
mod tests {
    use super::super::journald::JournaldPlan;
    use super::*;
    use crate::transport::Resume;

    fn found(pattern: usize, inode: &str, path: &str) -> Found<String> {
        Found {
            pattern,
            path: path.into(),
            id: inode.into(),
            modified: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn the_expansion_output_is_read_back_whole() {
        let text = "1 42 1700000000 /var/log/app log.jsonl\n2 7 5 /x\nbad line\n";
        assert_eq!(
            parse_expansion(text),
            vec![
                Found {
                    pattern: 0,
                    path: "/var/log/app log.jsonl".into(),
                    id: "42".into(),
                    modified: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
                },
                Found {
                    pattern: 1,
                    path: "/x".into(),
                    id: "7".into(),
                    modified: SystemTime::UNIX_EPOCH + Duration::from_secs(5),
                },
            ]
        );
    }

    fn args(start: &Start) -> Vec<String> {
        match start {
            Start::Spec(spec) => spec.command_for(&Default::default())[4..].to_vec(),
            Start::Tail { path, .. } => vec!["tail".into(), path.clone()],
        }
    }

    #[test]
    fn new_files_start_at_their_tail_first_then_from_their_start() {
        let patterns = vec!["/l/*.log".to_string(), "/l/plain.log".to_string()];
        let mut followed = Vec::new();
        let (start, problems) =
            plan_follows(&patterns, &[found(0, "1", "/l/a.log")], &mut followed, true);
        assert_eq!(problems, ["no file matches /l/plain.log"]);
        let specs: Vec<Vec<String>> = start.iter().map(|(_, s)| args(s)).collect();
        assert_eq!(specs, [["tail", "/l/a.log"], ["tail", "/l/plain.log"]]);

        // Later: a.log was rotated to b.log (same inode), a new a.log came.
        let now = [
            found(0, "2", "/l/a.log"),
            found(0, "1", "/l/b.log"),
            found(0, "3", "/l/c.log"),
            found(1, "9", "/l/plain.log"),
        ];
        let (start, problems) = plan_follows(&patterns, &now, &mut followed, false);
        assert!(problems.is_empty(), "{problems:?}");
        let specs: Vec<Vec<String>> = start.iter().map(|(_, s)| args(s)).collect();
        // b.log is the old a.log: from its end. c.log is new: from its start.
        assert_eq!(specs, [["/l/b.log", "", "", "0"], ["/l/c.log", "", "", ""]]);
        assert_eq!(followed.len(), 4);

        // Full: more files are reported, not followed.
        let (start, problems) = plan_follows(
            &patterns,
            &[found(0, "5", "/l/d.log")],
            &mut followed,
            false,
        );
        assert!(start.is_empty());
        assert!(
            problems.contains(
                &"1 matching files not followed (a remote source follows at most 4)".to_string()
            ),
            "{problems:?}"
        );
    }

    /// A journald unit on a host: the stream resumes after the last cursor delivered.
    #[test]
    fn journal_resumes_after_the_cursor() {
        let spec = stream_spec(Box::new(JournaldPlan::new(
            "tmws.service",
            crate::config::DEFAULT_READ_BACK,
        )));
        let first = spec.command_for(&Resume::default());
        assert!(first.contains(&"--since=-1h".to_string()), "{first:?}");
        assert!(
            first.contains(&"--unit=tmws.service".to_string()),
            "{first:?}"
        );
        let line = br#"{"__CURSOR":"s=abc;i=12","MESSAGE":"x"}"#;
        let cursor = spec.token_of(line).unwrap();
        assert_eq!(cursor, "s=abc;i=12");
        let again = spec.command_for(&Resume {
            token: Some(cursor),
            ..Resume::default()
        });
        assert!(
            again.contains(&"--after-cursor=s=abc;i=12".to_string()),
            "{again:?}"
        );
        assert!(spec.token_of(b"not json").is_none());
    }

    /// A chunk at any offset and length, in whole blocks read with `dd`, cut to what was
    /// asked; a path that leads to another file now says so.
    #[tokio::test]
    async fn a_chunk_is_the_bytes_asked_for_and_a_replaced_file_is_noticed() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let inode = std::fs::metadata(&path).unwrap().ino().to_string();
        let name = path.display().to_string();
        let local = Transport::Local;
        for (at, len) in [(0, 10), (65_530, 20), (70_000, 130_000), (131_072, 65_536)] {
            let got = read_chunk(&local, &name, &inode, at, len)
                .await
                .ok()
                .unwrap();
            assert_eq!(got, &bytes[at as usize..(at + len) as usize], "{at} {len}");
        }
        assert!(matches!(
            read_chunk(&local, &name, &inode, 199_990, 20).await,
            Err(ChunkError::Failed(_))
        ));
        std::fs::rename(&path, dir.path().join("app.log.1")).unwrap();
        std::fs::write(&path, b"new\n").unwrap();
        assert!(matches!(
            read_chunk(&local, &name, &inode, 0, 4).await,
            Err(ChunkError::Replaced)
        ));
    }
}
