//! The last log lines of the container zoomed in the Containers pane: `docker logs
//! --follow --timestamps --tail 100` through bollard, opened when the pane zooms on a
//! container and dropped when it leaves it. A dashboard nobody zooms reads no logs, and
//! a zoom never reads a container's whole history.

use super::{AbortOnDrop, Shared, describe_error, lock};
use crate::collect::ScreenWatch;
use crate::state::update::{CONTAINER_LOG_TAIL, ContainerLogLine, ContainerLogTail};
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptions;
use chrono::{DateTime, Utc};
use futures::StreamExt;
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
    let (stderr, bytes) = match output {
        LogOutput::StdErr { message } => (true, message),
        LogOutput::StdOut { message } | LogOutput::Console { message } => (false, message),
        LogOutput::StdIn { .. } => return,
    };
    for piece in bytes.split(|b| *b == b'\n').filter(|p| !p.is_empty()) {
        let line = String::from_utf8_lossy(piece);
        let (at, text) = split_stamp(&line);
        let text = text.trim_end_matches('\r');
        tail.lines.push(ContainerLogLine {
            at,
            stderr,
            text: text.chars().take(MAX_LINE_CHARS).collect(),
        });
    }
    let extra = tail.lines.len().saturating_sub(CONTAINER_LOG_TAIL);
    tail.lines.drain(..extra);
}

/// "2026-11-23T10:00:02.123456789Z message" → the stamp and the message.
fn split_stamp(line: &str) -> (Option<DateTime<Utc>>, &str) {
    if let Some((stamp, rest)) = line.split_once(' ')
        && let Ok(at) = DateTime::parse_from_rfc3339(stamp)
    {
        return (Some(at.with_timezone(&Utc)), rest);
    }
    (None, line)
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
