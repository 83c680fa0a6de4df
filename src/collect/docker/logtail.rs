//! The last log lines of the container zoomed in the Containers pane: `docker logs
//! --follow --timestamps --tail 100` through bollard, opened when the pane zooms on a
//! container and dropped when it leaves it. A dashboard nobody zooms reads no logs, and
//! a zoom never reads a container's whole history.
//!
//! A log source's containers (`[logs.NAME] docker = [...]`) are followed the same way
//! into its [`LogFeed`]: each running one from its last `tail` lines, and again after a
//! restart from the time of the last line delivered, so no line comes twice.

use super::{AbortOnDrop, Shared, describe_error, lock};
use crate::collect::ScreenWatch;
use crate::collect::command::{Event, Outbox, RawLine};
use crate::state::update::{CONTAINER_LOG_TAIL, ContainerLogLine, ContainerLogTail};
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptions;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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
pub fn push_output(tail: &mut ContainerLogTail, output: &LogOutput) {
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

/// Where a log source's container lines go, and how far each container was delivered.
pub(in crate::collect) struct LogFeed {
    outbox: Outbox,
    /// Lines read back from a container's log the first time it is followed.
    tail: usize,
    /// By container id: the stamp of the last line delivered.
    delivered: Mutex<HashMap<String, DateTime<Utc>>>,
    /// Whether a selected container runs (told by every reconcile).
    running: tokio::sync::watch::Sender<bool>,
}

impl LogFeed {
    pub(in crate::collect) fn new(outbox: Outbox, tail: usize) -> Self {
        LogFeed {
            outbox,
            tail,
            delivered: Mutex::new(HashMap::new()),
            running: tokio::sync::watch::Sender::new(true),
        }
    }

    /// Changes when the selection goes from some running container to none, or back.
    pub(in crate::collect) fn watch_running(&self) -> tokio::sync::watch::Receiver<bool> {
        self.running.subscribe()
    }

    /// Queues an event for the source. False once nobody is listening.
    pub(in crate::collect) async fn send(&self, event: Event) -> bool {
        self.outbox.send(event).await
    }

    fn delivered(&self) -> std::sync::MutexGuard<'_, HashMap<String, DateTime<Utc>>> {
        self.delivered.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The follow of one container's log for a log source.
pub(in crate::collect) struct Follow {
    /// When the followed run of the container started, so a restart is followed again.
    started_at: Option<DateTime<Utc>>,
    task: AbortOnDrop,
}

/// One follow per selected running container: opens the missing ones, opens again the
/// ones whose container restarted or whose stream ended, drops the ones of containers
/// that stopped or went away.
pub(super) fn reconcile_feed(
    docker: &Docker,
    shared: &Arc<Mutex<Shared>>,
    feed: &Arc<LogFeed>,
    follows: &mut HashMap<String, Follow>,
) {
    let running: Vec<(String, String, Option<DateTime<Utc>>)> = lock(shared)
        .containers
        .values()
        .filter(|r| r.state == "running")
        .map(|r| (r.id.clone(), r.name.clone(), r.started_at))
        .collect();
    feed.running.send_if_modified(|any| {
        let changed = *any == running.is_empty();
        *any = !running.is_empty();
        changed
    });
    follows.retain(|id, _| running.iter().any(|(r, _, _)| r == id));
    for (id, name, started_at) in running {
        let current = follows
            .get(&id)
            .is_some_and(|f| f.started_at == started_at && !f.task.0.is_finished());
        if current {
            continue;
        }
        // The old follow goes before the new one reads, so both never deliver.
        follows.remove(&id);
        let task = tokio::spawn(follow_into_feed(
            docker.clone(),
            id.clone(),
            name,
            feed.clone(),
        ));
        follows.insert(
            id,
            Follow {
                started_at,
                task: AbortOnDrop(task),
            },
        );
    }
}

/// Reads container `id`'s log into the feed until its run ends: from its last `tail`
/// lines the first time, from the last delivered line's second after that (lines at or
/// before the last stamp an earlier follow delivered are skipped).
async fn follow_into_feed(docker: Docker, id: String, name: String, feed: Arc<LogFeed>) {
    let resume = feed.delivered().get(&id).copied();
    let options = LogsOptions {
        follow: true,
        stdout: true,
        stderr: true,
        timestamps: true,
        tail: match resume {
            Some(_) => "all".to_string(),
            None => feed.tail.to_string(),
        },
        since: resume.map_or(0, |at| at.timestamp().clamp(0, i32::MAX as i64) as i32),
        ..Default::default()
    };
    let mut stream = docker.logs(&id, Some(options)).boxed();
    while let Some(item) = stream.next().await {
        let output = match item {
            Ok(output) => output,
            Err(e) => {
                let message = format!("logs of {name}: {}", describe_error(&e));
                feed.send(Event::Stderr(message)).await;
                return;
            }
        };

        let Some((_, lines)) = stamped_lines(&output) else {
            continue;
        };
        let mut fresh = Vec::new();
        {
            let mut delivered = feed.delivered();
            for (at, text) in lines {
                if let Some(at) = at {
                    // Only what an earlier follow delivered is skipped: within one follow
                    // stdout and stderr lines may come slightly out of stamp order.
                    if resume.is_some_and(|last| at <= last) {
                        continue;
                    }
                    let last = delivered.entry(id.clone()).or_insert(at);
                    *last = (*last).max(at);
                }
                fresh.push(RawLine {
                    at,
                    ..RawLine::cut(text.to_vec())
                });
            }
        }
        for line in fresh {
            if !feed.send(Event::Line(line)).await {
                return;
            }
        }
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
