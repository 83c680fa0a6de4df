//! The last log lines of the container zoomed in the Containers pane: `docker logs
//! --follow --timestamps --tail 100` through bollard, opened when the pane zooms on a
//! container and dropped when it leaves it. A dashboard nobody zooms reads no logs, and
//! a zoom never reads a container's whole history.
//!
//! A log source's containers (`[logs.NAME] docker = [...]`) are read the same way into
//! its [`LogFeed`]: each running one followed from where the lines still to be counted
//! start (`since`), at most its last `tail` lines, and again after a restart from the time
//! of the last line delivered, so no line comes twice; a stopped one whose last run was
//! never read (it crashed before the source started, or between two listings) is read
//! back once, without following. A first read that brings `tail` lines may have been cut
//! by it: the figures say so.
//!
//! Read once (`check`), every selected container that ever ran is read once without
//! following, to the end of its log (by the one-shot limit at most: a read cut there says
//! which log and how much was read); the reads under way are counted, so the source's run
//! ends when the last one does.

use super::{AbortOnDrop, Shared, describe_error, lock};
use crate::collect::ScreenWatch;
use crate::collect::logs::source::{CountCut, Event, Outbox, RawLine, Start};
use crate::model::update::{CONTAINER_LOG_TAIL, ContainerLogLine, ContainerLogTail};
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptions;
use chrono::{DateTime, Utc};
use futures::{FutureExt, StreamExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Frames of a container's log already arrived that go into one event at most.
const BATCH_FRAMES: usize = 1024;

/// A longer line is cut: the pane shows one line per entry anyway.
const MAX_LINE_CHARS: usize = 2000;

/// The follow of one container's log, while that container is zoomed.
pub(super) struct Tail {
    id: String,
    /// When the followed run of the container started, so a restart is followed again.
    started_at: Option<DateTime<Utc>>,
    task: AbortOnDrop,
}

/// Opens, keeps or drops the follow so that it matches what the screen shows: the
/// container zoomed in the Containers pane, if it belongs to this `source`.
pub(super) fn reconcile_tail(
    docker: &Docker,
    source: &str,
    screen: &ScreenWatch,
    shared: &Arc<Mutex<Shared>>,
    tail: &mut Option<Tail>,
) {
    let wanted = screen
        .borrow()
        .zoomed_container
        .clone()
        .filter(|(s, _)| s == source)
        .map(|(_, id)| id);
    let Some(id) = wanted else {
        *tail = None;
        return;
    };
    let started_at = lock(shared).containers.get(&id).and_then(|r| r.started_at);
    if let Some(current) = tail
        && current.id == id
        && (!current.task.0.is_finished() || current.started_at == started_at)
    {
        return;
    }
    {
        let mut shared = lock(shared);
        shared.logs = Some(ContainerLogTail {
            source: source.to_string(),
            id: id.clone(),
            lines: Vec::new(),
            error: None,
        });
        shared.logs_generation += 1;
    }
    let task = tokio::spawn(follow_log(docker.clone(), id.clone(), shared.clone()));
    *tail = Some(Tail {
        id,
        started_at,
        task: AbortOnDrop(task),
    });
}

/// Reads the log of container `id` into the shared tail until the container stops (the
/// stream ends) or the follow is dropped.
async fn follow_log(docker: Docker, id: String, shared: Arc<Mutex<Shared>>) {
    let options = LogsOptions {
        follow: true,
        stdout: true,
        stderr: true,
        timestamps: true,
        tail: CONTAINER_LOG_TAIL.to_string(),
        ..Default::default()
    };
    let mut stream = docker.logs(&id, Some(options)).boxed();
    while let Some(item) = stream.next().await {
        let mut guard = lock(&shared);
        let shared = &mut *guard;
        let Some(tail) = shared.logs.as_mut().filter(|t| t.id == id) else {
            return;
        };
        let failed = match item {
            Ok(output) => {
                push_output(tail, &output);
                false
            }
            Err(e) => {
                tail.error = Some(format!("docker logs: {}", describe_error(&e)));
                true
            }
        };
        shared.logs_generation += 1;
        if failed {
            return;
        }
    }
}

/// Adds the lines of one frame of the log stream (one or more lines, each stamped by the
/// engine), keeping the last [`CONTAINER_LOG_TAIL`].
pub(crate) fn push_output(tail: &mut ContainerLogTail, output: &LogOutput) {
    let Some((stderr, lines)) = stamped_lines(output) else {
        return;
    };
    for (at, text) in lines {
        let text = String::from_utf8_lossy(text);
        tail.lines.push(ContainerLogLine {
            at,
            stderr,
            text: text.chars().take(MAX_LINE_CHARS).collect(),
        });
    }
    let extra = tail.lines.len().saturating_sub(CONTAINER_LOG_TAIL);
    tail.lines.drain(..extra);
}

/// One line of the log stream: the engine's stamp and the text.
type StampedLine<'a> = (Option<DateTime<Utc>>, &'a [u8]);

/// The lines of one frame of the log stream, each with the engine's stamp, and whether
/// they came on stderr; `None` for stdin frames.
fn stamped_lines(output: &LogOutput) -> Option<(bool, impl Iterator<Item = StampedLine<'_>>)> {
    let (stderr, bytes) = match output {
        LogOutput::StdErr { message } => (true, message),
        LogOutput::StdOut { message } | LogOutput::Console { message } => (false, message),
        LogOutput::StdIn { .. } => return None,
    };
    let lines = bytes
        .split(|b| *b == b'\n')
        .filter(|p| !p.is_empty())
        .map(|piece| {
            let (at, text) = split_stamp(piece);
            (at, text.strip_suffix(b"\r").unwrap_or(text))
        });
    Some((stderr, lines))
}

/// "2026-11-23T10:00:02.123456789Z message" → the stamp and the message.
fn split_stamp(line: &[u8]) -> (Option<DateTime<Utc>>, &[u8]) {
    if let Some(space) = line.iter().position(|b| *b == b' ')
        && let Ok(stamp) = std::str::from_utf8(&line[..space])
        && let Ok(at) = DateTime::parse_from_rfc3339(stamp)
    {
        return (Some(at.with_timezone(&Utc)), &line[space + 1..]);
    }
    (None, line)
}

// ---------------------------------------------------------------------------------------
// A log source's containers

/// Where a log source's container lines go, and how far each container was read.
pub(in crate::collect) struct LogFeed {
    outbox: Outbox,
    /// Lines read back from a container's log the first time it is read, at most...
    tail: usize,
    /// ...and from this time on (the engine's `since`, in whole seconds).
    since: Option<DateTime<Utc>>,
    /// By container id: how far its log was delivered.
    progress: Mutex<HashMap<String, Progress>>,
    /// Whether a selected container runs (told by every reconcile).
    running: tokio::sync::watch::Sender<bool>,
    /// Read once (`check`): each selected container is read once, without following, by
    /// this moment at most.
    one_shot: Option<Option<tokio::time::Instant>>,
    /// Read once: the reads still under way (`None` until the first reconcile).
    one_shot_reads: tokio::sync::watch::Sender<Option<usize>>,
}

/// How far one container's log was read.
#[derive(Clone, Copy, Debug, Default)]
struct Progress {
    /// The stamp of the last line delivered.
    last: Option<DateTime<Utc>>,
    /// The run (its start) whose log was read to its end: followed until it stopped, or
    /// read back after it had stopped. Such a run is not read again.
    read_run: Option<DateTime<Utc>>,
}

impl LogFeed {
    pub(in crate::collect) fn new(outbox: Outbox, tail: usize, start: Start) -> Self {
        LogFeed {
            outbox,
            tail,
            since: start.since,
            progress: Mutex::new(HashMap::new()),
            running: tokio::sync::watch::Sender::new(true),
            one_shot: start.one_shot.then_some(start.until),
            one_shot_reads: tokio::sync::watch::Sender::new(None),
        }
    }

    /// Read once: how many reads are under way (`None` before the first reconcile).
    pub(in crate::collect) fn watch_one_shot_reads(
        &self,
    ) -> tokio::sync::watch::Receiver<Option<usize>> {
        self.one_shot_reads.subscribe()
    }

    /// Changes when the selection goes from some running container to none, or back.
    pub(in crate::collect) fn watch_running(&self) -> tokio::sync::watch::Receiver<bool> {
        self.running.subscribe()
    }

    /// Queues an event for the source. False once nobody is listening.
    pub(in crate::collect) async fn send(&self, event: Event) -> bool {
        self.outbox.send(event).await
    }

    fn progress(&self) -> std::sync::MutexGuard<'_, HashMap<String, Progress>> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One read of a container's log for a log source: a follow while the container runs,
/// or a single read back of a run that ended unread.
pub(in crate::collect) struct Follow {
    /// The run (its start) this read is for, so a new run is read again.
    started_at: Option<DateTime<Utc>>,
    /// A follow (`--follow`) rather than a read back.
    follows: bool,
    task: AbortOnDrop,
}

impl Follow {
    fn is_finished(&self) -> bool {
        self.task.0.is_finished()
    }

    /// Aborts the read and waits until it has really stopped (an abort takes effect at
    /// the task's next await).
    async fn stop(mut self) {
        self.task.0.abort();
        let _ = (&mut self.task.0).await;
    }
}

/// At most one read per selected container: a follow for each running one (opened again
/// when it restarted or its stream ended), one read back for each stopped one whose
/// current run was never read to its end (it crashed before the source started, or
/// between two listings), nothing for a run that was. A follow of a container that stops
/// is left to end by itself, so the lines up to the crash are all read. Containers that
/// left the selection are forgotten.
pub(super) fn reconcile_feed(
    docker: &Docker,
    shared: &Arc<Mutex<Shared>>,
    feed: &Arc<LogFeed>,
    follows: &mut HashMap<String, Follow>,
) {
    let selected: Vec<Selected> = lock(shared)
        .containers
        .values()
        .map(|r| Selected {
            id: r.id.clone(),
            name: r.name.clone(),
            running: r.state == "running",
            // Never started, or on its way out: nothing to read.
            readable: r.started_at.is_some() && r.state != "removing",
            started_at: r.started_at,
        })
        .collect();
    // Only a running container clears "no running container of …": a stopped one's
    // lines read back say why it stopped, but still nothing runs.
    let any_running = selected.iter().any(|c| c.running);
    feed.running.send_if_modified(|any| {
        let changed = *any != any_running;
        *any = any_running;
        changed
    });
    let is_selected = |id: &String| selected.iter().any(|c| c.id == *id);
    follows.retain(|id, _| is_selected(id));
    feed.progress().retain(|id, _| is_selected(id));
    if feed.one_shot.is_some() {
        reconcile_one_shot(docker, feed, follows, selected);
        return;
    }
    for c in selected {
        let current = follows.get(&c.id).filter(|f| f.started_at == c.started_at);
        let follow = if c.running {
            if current.is_some_and(|f| f.follows && !f.is_finished()) {
                continue;
            }
            true
        } else {
            let read = feed.progress().get(&c.id).and_then(|p| p.read_run);
            if !c.readable || read == c.started_at {
                continue;
            }
            // A follow still reading the end of this run, or a read back under way.
            if current.is_some_and(|f| !f.is_finished()) {
                continue;
            }
            false
        };
        // The read it replaces has stopped before this one starts, so both never deliver.
        let previous = follows.remove(&c.id);
        let task = tokio::spawn(read_into_feed(
            docker.clone(),
            Read {
                id: c.id.clone(),
                name: c.name,
                started_at: c.started_at,
                follow,
            },
            feed.clone(),
            previous,
            None,
        ));
        follows.insert(
            c.id,
            Follow {
                started_at: c.started_at,
                follows: follow,
                task: AbortOnDrop(task),
            },
        );
    }
}

/// Read once (`check`): each selected container that ever ran, running or not, is read
/// once without following, to the end of its log; the reads under way are counted, so
/// the source's run ends when the last one does.
fn reconcile_one_shot(
    docker: &Docker,
    feed: &Arc<LogFeed>,
    follows: &mut HashMap<String, Follow>,
    selected: Vec<Selected>,
) {
    let to_read: Vec<Selected> = selected
        .into_iter()
        .filter(|c| c.readable && !follows.contains_key(&c.id))
        .collect();
    // Counted all at once before they start, so the count never reads 0 while a read is
    // still to come.
    feed.one_shot_reads
        .send_modify(|n| *n = Some(n.unwrap_or(0) + to_read.len()));
    for c in to_read {
        let pending = OneShotRead(feed.clone());
        let task = tokio::spawn(read_into_feed(
            docker.clone(),
            Read {
                id: c.id.clone(),
                name: c.name,
                started_at: c.started_at,
                follow: false,
            },
            feed.clone(),
            None,
            Some(pending),
        ));
        follows.insert(
            c.id,
            Follow {
                started_at: c.started_at,
                follows: false,
                task: AbortOnDrop(task),
            },
        );
    }
}

/// One read of a one-shot run under way (counted by its reconcile): the count goes down
/// when it ends (also when its task is aborted).
struct OneShotRead(Arc<LogFeed>);

impl Drop for OneShotRead {
    fn drop(&mut self) {
        self.0
            .one_shot_reads
            .send_modify(|n| *n = Some(n.unwrap_or(1).saturating_sub(1)));
    }
}

/// A selected container as a reconcile sees it.
struct Selected {
    id: String,
    name: String,
    running: bool,
    readable: bool,
    started_at: Option<DateTime<Utc>>,
}

/// What one read of a container's log is for.
struct Read {
    id: String,
    name: String,
    /// The run it reads.
    started_at: Option<DateTime<Utc>>,
    /// Follow until the container stops, or read what is there and end.
    follow: bool,
}

/// Reads container `id`'s log into the feed: the first time from `since`, its last `tail`
/// lines at most (a read that brings that many says it may be cut); from the last
/// delivered line's second after that (lines at or before the last stamp an
/// earlier read delivered are skipped). A follow runs until the container stops; a read
/// back ends at the log's end. Either marks its run as read once that is known to be
/// whole.
async fn read_into_feed(
    docker: Docker,
    read: Read,
    feed: Arc<LogFeed>,
    previous: Option<Follow>,
    // Read once: counted as under way until this read ends.
    _one_shot: Option<OneShotRead>,
) {
    if let Some(previous) = previous {
        previous.stop().await;
    }
    let Read {
        id,
        name,
        started_at,
        follow,
    } = read;
    let resume = feed.progress().get(&id).and_then(|p| p.last);
    let since = resume.or(feed.since);
    let options = LogsOptions {
        follow,
        stdout: true,
        stderr: true,
        timestamps: true,
        tail: match resume {
            Some(_) => "all".to_string(),
            None => feed.tail.to_string(),
        },
        since: since.map_or(0, |at| at.timestamp().clamp(0, i32::MAX as i64) as i32),
        ..Default::default()
    };
    // The first read's lines written before it began: as many as `tail` means cut.
    let began = Utc::now();
    let began_at = tokio::time::Instant::now();
    let mut read_back = 0;
    let mut stream = docker.logs(&id, Some(options)).boxed();
    // Read once, by the one-shot limit at most.
    let until = feed.one_shot.flatten();
    let mut lines_read: u64 = 0;
    // Of this read's lines: the oldest line's time and the bytes, for a cut's record.
    let mut oldest_read: Option<DateTime<Utc>> = None;
    let mut bytes_read: u64 = 0;
    loop {
        let next = match until {
            Some(until) => match tokio::time::timeout_at(until, stream.next()).await {
                Ok(next) => next,
                Err(_) => {
                    let oldest = feed.since.map_or(String::new(), |at| {
                        format!(" from {}", at.format("%H:%M:%S UTC"))
                    });
                    let note = format!(
                        "partial: the log of {name} was still being read after {}s ({} lines{oldest} read); its newer lines are not counted",
                        began_at.elapsed().as_secs(),
                        lines_read
                    );
                    feed.send(Event::Partial(note)).await;
                    return;
                }
            },
            None => stream.next().await,
        };
        let Some(item) = next else { break };
        // Frames that have already arrived go with it: one event for many lines.
        let mut items = vec![item];
        let mut ended = false;
        while items.len() < BATCH_FRAMES {
            match stream.next().now_or_never() {
                Some(Some(item)) => items.push(item),
                Some(None) => {
                    ended = true;
                    break;
                }
                None => break,
            }
        }
        let mut batch: Vec<RawLine> = Vec::with_capacity(items.len());
        let mut failed = None;
        for item in items {
            let output = match item {
                Ok(output) => output,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            };
            let Some((_, lines)) = stamped_lines(&output) else {
                continue;
            };
            // Only what an earlier read delivered is skipped: within one read stdout and
            // stderr lines may come slightly out of stamp order.
            batch.extend(
                lines
                    .filter(|(at, _)| !at.is_some_and(|at| resume.is_some_and(|last| at <= last)))
                    .map(|(at, text)| RawLine {
                        at,
                        ..RawLine::cut(text.to_vec())
                    }),
            );
        }
        let newest = batch.iter().filter_map(|l| l.at).max();
        let before_start = batch
            .iter()
            .filter(|l| resume.is_none() && l.at.is_some_and(|at| at < began))
            .count();
        lines_read += batch.len() as u64;
        bytes_read += batch.iter().map(|l| l.bytes.len() as u64 + 1).sum::<u64>();
        if let Some(first) = batch.iter().filter_map(|l| l.at).min() {
            oldest_read = Some(oldest_read.map_or(first, |o| o.min(first)));
        }
        if !batch.is_empty() && !feed.send(Event::Lines(batch)).await {
            return;
        }
        if before_start > 0 {
            let crossed = read_back < feed.tail && read_back + before_start >= feed.tail;
            read_back += before_start;
            if crossed {
                let note = format!(
                    "partial: only the last {} lines of {name} read back (its tail)",
                    feed.tail
                );
                // Older lines than the first one read were not: the record keeps that.
                let cut = CountCut {
                    oldest: oldest_read.unwrap_or(began),
                    read: bytes_read,
                    why: format!("the tail of {} lines of {name}", feed.tail),
                };
                if !(feed.send(Event::CountCut(cut)).await && feed.send(Event::Partial(note)).await)
                {
                    return;
                }
            }
        }
        // Counted as delivered only once queued: a read aborted in the middle of a send
        // leaves those lines to the next read.
        if let Some(at) = newest {
            let mut progress = feed.progress();
            let last = &mut progress.entry(id.clone()).or_default().last;
            *last = Some(last.map_or(at, |l| l.max(at)));
        }
        match failed {
            // Removed meanwhile: its events say so, nothing to complain about.
            Some(e) if super::is_not_found(&e) => return,
            Some(e) => {
                let message = format!("logs of {name}: {}", describe_error(&e));
                feed.send(Event::Stderr(message)).await;
                return;
            }
            None => {}
        }
        if ended {
            break;
        }
    }
    // A follow's stream also ends when the engine goes away: its run is whole only if the
    // container no longer runs it.
    if follow && still_runs(&docker, &id, started_at).await {
        return;
    }
    feed.progress().entry(id).or_default().read_run = started_at;
}

/// Whether container `id` still runs the run that started at `started_at` (or cannot be
/// asked, which counts as running: the run is read again rather than lost).
async fn still_runs(docker: &Docker, id: &str, started_at: Option<DateTime<Utc>>) -> bool {
    let asked = tokio::time::timeout(super::REQUEST_TIMEOUT, docker.inspect_container(id, None));
    match asked.await {
        Ok(Ok(inspect)) => super::row_from_inspect(&inspect)
            .is_some_and(|row| row.state == "running" && row.started_at == started_at),
        Ok(Err(e)) => !super::is_not_found(&e),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(text: &[u8]) -> LogOutput {
        LogOutput::StdOut {
            message: text.to_vec().into(),
        }
    }

    #[test]
    fn frames_become_stamped_lines_and_the_tail_is_bounded() {
        let mut tail = ContainerLogTail::default();
        push_output(
            &mut tail,
            &out(b"2026-11-23T10:00:02.123456789Z hello\r\n2026-11-23T10:00:03Z second\n"),
        );
        push_output(
            &mut tail,
            &LogOutput::StdErr {
                message: b"no stamp \xff here\n".to_vec().into(),
            },
        );
        assert_eq!(tail.lines.len(), 3);
        assert_eq!(tail.lines[0].text, "hello");
        assert_eq!(
            tail.lines[0].at.unwrap().to_rfc3339(),
            "2026-11-23T10:00:02.123456789+00:00"
        );
        assert!(!tail.lines[1].stderr && tail.lines[2].stderr);
        assert_eq!(tail.lines[2].at, None);
        assert_eq!(tail.lines[2].text, "no stamp \u{fffd} here");
        for i in 0..CONTAINER_LOG_TAIL + 7 {
            push_output(&mut tail, &out(format!("line {i}\n").as_bytes()));
        }
        assert_eq!(tail.lines.len(), CONTAINER_LOG_TAIL);
        assert_eq!(
            tail.lines.last().unwrap().text,
            format!("line {}", CONTAINER_LOG_TAIL + 6)
        );
        let long = "x".repeat(MAX_LINE_CHARS * 2);
        push_output(&mut tail, &out(long.as_bytes()));
        assert_eq!(tail.lines.last().unwrap().text.len(), MAX_LINE_CHARS);
    }
}
