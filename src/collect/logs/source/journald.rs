//! journald units: `journalctl --output=json --unit=UNIT`, its JSON entries read into log
//! lines (see `parse::journal`), in two steps:
//!
//! 1. **The window read back, newest first.** `journalctl --reverse --since=@EPOCH` (no
//!    `--follow`), EPOCH being where the lines still to be counted start: the longest
//!    window a figure reads (the hour of `errors_1h`, a metric's window), or further back
//!    to the last line the record counted (or its window's start). It starts at the
//!    journal's newest entry and goes back to EPOCH, so the tail shows the newest entries
//!    at once and the figures say "reading back" until it is over. It is bounded by the
//!    source's `read_back` bytes (of journalctl's JSON output) and by 60 s (read once:
//!    the one-shot limit): a cut keeps the newest entries and says so in every figure
//!    (`partial: last 64.0 MiB of the journal's window read back, back to 13:42:10 UTC;
//!    older entries are not counted`).
//! 2. **Following.** `journalctl --follow --after-cursor=C`, C being the cursor of the
//!    newest entry the read-back saw (its first line): the entries written while it ran
//!    and after come once, none twice. (A window without entries follows from EPOCH
//!    instead: whatever came meanwhile is new.) Every later run resumes after the last
//!    entry delivered (`--after-cursor`), so a restart neither loses nor repeats a line;
//!    the cursor is the plan's resume token, kept by the local run or by the host's SSH
//!    stream.
//!
//! Read once (`check`), only the first step runs, and the source's run ends with it.
//! Before each step `journalctl --lines=0` checks that there is a journal to read: on a
//! host without systemd `journalctl --follow` would wait silently forever.

use super::command::{self, Launcher, Plan, read_line, run_to_end};
use super::feed::{CountCut, Event, Feed, MIN_BACKOFF, Outbox, RawLine, Start, source_backoff};
use crate::collect::logs::parse::{cursor_of, realtime_of};
use crate::model::figure::format_bytes;
use crate::transport::{LineStream, StreamEvent, StreamSpec, Transport};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, BufReader};

/// How far back the first run starts when the collector has not said (an hour).
pub(crate) const SINCE: &str = "-1h";
const PROBE_LIMIT: Duration = Duration::from_secs(10);

/// Follows one unit, resuming after the last cursor delivered.
pub(crate) struct JournaldPlan {
    unit: String,
    /// Where the first run starts, in Unix seconds (rounded down: a second early).
    since: Option<i64>,
    /// Follows new entries (not when read once).
    follow: bool,
    /// The read-back's byte cap (`read_back`).
    read_back: u64,
    /// The newest entry the read-back saw: following starts after it.
    after: Option<String>,
    /// Nothing was read back (`read_back = "0"`): following starts at the journal's end.
    from_end: bool,
}

impl JournaldPlan {
    pub fn new(unit: &str, read_back: u64) -> Self {
        JournaldPlan {
            unit: unit.trim().to_string(),
            since: None,
            follow: true,
            read_back,
            after: None,
            from_end: false,
        }
    }

    fn since_arg(&self) -> String {
        match self.since {
            Some(since) => format!("--since=@{since}"),
            None => format!("--since={SINCE}"),
        }
    }

    /// The read-back's command line: the window, newest first, without following.
    fn back_argv(&self) -> Vec<String> {
        let mut argv: Vec<String> = [
            "journalctl",
            "--reverse",
            "--output=json",
            "--all",
            "--no-pager",
            "--lines=all",
        ]
        .map(String::from)
        .to_vec();
        argv.push(format!("--unit={}", self.unit));
        argv.push(self.since_arg());
        argv
    }
}

impl Plan for JournaldPlan {
    fn label(&self) -> String {
        format!("journalctl -u {}", self.unit)
    }

    fn resume_token(&self, line: &[u8]) -> Option<String> {
        cursor_of(line)
    }

    fn prepare(&mut self, start: Start) {
        self.since = start.since.map(|t| t.timestamp());
        self.follow = !start.one_shot;
    }

    fn argv(&self, cursor: Option<&str>) -> Vec<String> {
        let mut argv: Vec<String> = ["journalctl"].map(String::from).to_vec();
        if self.follow {
            argv.push("--follow".into());
        }
        let cursor = cursor.or(self.after.as_deref());
        let lines = if cursor.is_none() && self.from_end {
            "--lines=0"
        } else {
            "--lines=all"
        };
        argv.extend(["--output=json", "--all", "--no-pager", lines].map(String::from));
        // `--unit=X` rather than `-u X`: a unit name can never read as an option.
        argv.push(format!("--unit={}", self.unit));
        match cursor {
            Some(cursor) => argv.push(format!("--after-cursor={cursor}")),
            None if self.from_end => {}
            None => argv.push(self.since_arg()),
        }
        argv
    }

    fn preflight<'a>(
        &'a mut self,
        launcher: &'a dyn Launcher,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            // The default output: `--output=json` keeps journalctl quiet about a missing
            // journal.
            let argv: Vec<String> = ["journalctl", "--no-pager", "--lines=0"]
                .map(String::from)
                .into_iter()
                .chain([format!("--unit={}", self.unit)])
                .collect();
            let (exit, _stdout, stderr) = run_to_end(launcher, &argv, PROBE_LIMIT)
                .await
                .map_err(|e| self.spawn_error(&e))?;
            let said = stderr.lines().map(str::trim).find(|l| !l.is_empty());
            if stderr.contains("No journal files were found") {
                return Err(
                    "journald: this host has no journal (journalctl: No journal files were found.); is systemd running here?"
                        .to_string(),
                );
            }
            if stderr.contains("insufficient permissions") {
                return Err(format!(
                    "journald: not allowed to read the journal ({}); add the user to the systemd-journal or adm group",
                    said.unwrap_or("insufficient permissions")
                ));
            }
            if exit.code != Some(0) {
                return Err(match said {
                    Some(text) => format!("{} failed ({}): {text}", self.label(), exit.description),
                    None => format!("{} failed ({})", self.label(), exit.description),
                });
            }
            Ok(())
        })
    }

    fn spawn_error(&self, e: &io::Error) -> String {
        match e.kind() {
            io::ErrorKind::NotFound => {
                "journalctl not found: journald sources need systemd's journalctl on the host"
                    .to_string()
            }
            _ => command::spawn_error(&self.label(), e),
        }
    }
}

/// Where a unit's journal is read: here, by a launcher, or on an SSH host.
pub(super) enum Reader {
    Local(Arc<dyn Launcher>),
    Remote(Transport),
}

/// Reads the unit's window back, then follows it (see the module's comment), in a feed's
/// task.
pub(super) fn start(mut plan: JournaldPlan, reader: Reader, start: Start) -> Feed {
    plan.prepare(start);
    Feed::from_producer(move |out| async move {
        let Some(newest) = read_back(&mut plan, &reader, &out, start.until).await else {
            return;
        };
        if start.one_shot {
            let ended = Event::Down {
                message: format!("{} ended", plan.label()),
                retry: MIN_BACKOFF,
            };
            out.send(ended).await;
            return;
        }
        plan.after = newest;
        match reader {
            Reader::Local(launcher) => command::run(Box::new(plan), launcher, out).await,
            Reader::Remote(transport) => {
                super::remote::run_process(Box::new(plan), transport, out).await
            }
        }
    })
}

/// Reads the window back newest first into `out` (`Event::Back`), then says it is over
/// (`Event::BackEnd`, after `Event::Partial` if it was cut). Returns the newest entry's
/// cursor (`None`: the window held none), or `None` once nobody listens.
async fn read_back(
    plan: &mut JournaldPlan,
    reader: &Reader,
    out: &Outbox,
    until: Option<tokio::time::Instant>,
) -> Option<Option<String>> {
    if plan.read_back == 0 {
        plan.from_end = true;
        let note = "partial: read_back = 0: the journal's window is not read back; entries are counted from the start on".to_string();
        let cut = CountCut {
            oldest: Utc::now(),
            read: 0,
            why: "read_back = 0".to_string(),
        };
        return (out.send(Event::CountCut(cut)).await
            && out.send(Event::Partial(note)).await
            && out.send(Event::BackEnd).await)
            .then_some(None);
    }
    let mut backoff = source_backoff();
    // Is there a journal to read? (Until there is, the source says why.)
    loop {
        let checked = match reader {
            Reader::Local(launcher) => plan.preflight(&**launcher).await,
            Reader::Remote(transport) => super::remote::preflight(plan, transport).await,
        };
        match checked {
            Ok(()) => break,
            Err(message) => {
                if !out.down_for(message, &mut backoff).await {
                    return None;
                }
            }
        }
    }
    let began = tokio::time::Instant::now();
    // The dashboard's read-back is bounded in time as a file's is.
    let until = until.or(Some(began + super::readback::READ_BACK_MAX_TIME));
    let label = plan.label();
    let mut lines = match BackLines::open(reader, plan.back_argv(), &label).await {
        Ok(lines) => lines,
        Err(message) => BackLines::Failed(Some(message)),
    };
    if !out.send(Event::Started).await {
        return None;
    }
    let mut newest: Option<String> = None;
    let mut read: u64 = 0;
    let mut oldest: Option<DateTime<Utc>> = None;
    let back_to = |oldest: Option<DateTime<Utc>>| {
        oldest.map_or(String::new(), |at| {
            format!(", back to {}", at.format("%H:%M:%S UTC"))
        })
    };
    let cut = loop {
        let next = match until {
            Some(until) => match tokio::time::timeout_at(until, lines.next()).await {
                Ok(next) => next,
                Err(_) => {
                    let secs = began.elapsed().as_secs();
                    break Some((
                        format!(
                            "partial: the journal's window was still being read back after {secs}s: its last {} read{}; older entries are not counted",
                            format_bytes(read as f64),
                            back_to(oldest)
                        ),
                        format!("the {secs}s read-back time limit"),
                    ));
                }
            },
            None => lines.next().await,
        };
        match next {
            Ok(Some(line)) => {
                if newest.is_none() {
                    newest = cursor_of(&line.bytes);
                }
                if let Some(at) = realtime_of(&line.bytes) {
                    oldest = Some(at);
                }
                read += (line.bytes.len() as u64 + line.dropped) + 1;
                if !out.send(Event::Back(line)).await {
                    return None;
                }
                if read >= plan.read_back {
                    break Some((
                        format!(
                            "partial: last {} of the journal's window read back (read_back){}; older entries are not counted",
                            format_bytes(read as f64),
                            back_to(oldest)
                        ),
                        format!(
                            "its read_back cap of {}",
                            format_bytes(plan.read_back as f64)
                        ),
                    ));
                }
            }
            Ok(None) => break None,
            Err(message) => {
                break Some((
                    format!(
                        "partial: the journal's window could not be read back whole ({message}): its last {} read{}",
                        format_bytes(read as f64),
                        back_to(oldest)
                    ),
                    format!("an error: {message}"),
                ));
            }
        }
    };
    // Stops journalctl, if it still runs.
    drop(lines);
    if let Some((note, why)) = cut {
        let cut = CountCut {
            oldest: oldest.unwrap_or_else(Utc::now),
            read,
            why,
        };
        if !(out.send(Event::CountCut(cut)).await && out.send(Event::Partial(note)).await) {
            return None;
        }
    }
    out.send(Event::BackEnd).await.then_some(newest)
}

/// The lines of the read-back's journalctl, here or on the host.
enum BackLines {
    Local {
        stdout: BufReader<Pin<Box<dyn AsyncRead + Send>>>,
        stderr: Pin<Box<dyn AsyncRead + Send>>,
        exit: BoxFuture<'static, io::Result<command::Exit>>,
        label: String,
    },
    Remote {
        stream: LineStream,
        transport: Transport,
        label: String,
    },
    /// It could not be started: why (said once).
    Failed(Option<String>),
}

impl BackLines {
    async fn open(reader: &Reader, argv: Vec<String>, label: &str) -> Result<Self, String> {
        match reader {
            Reader::Local(launcher) => {
                let launched = launcher
                    .launch(&argv)
                    .await
                    .map_err(|e| command::spawn_error(label, &e))?;
                Ok(BackLines::Local {
                    stdout: BufReader::with_capacity(64 * 1024, launched.stdout),
                    stderr: launched.stderr,
                    exit: launched.exit,
                    label: label.to_string(),
                })
            }
            Reader::Remote(transport) => {
                let mut spec = StreamSpec::new(move |_| argv.clone());
                spec.restart_on_exit = false;
                Ok(BackLines::Remote {
                    stream: transport.stream(spec),
                    transport: transport.clone(),
                    label: label.to_string(),
                })
            }
        }
    }

    /// The next line; `None` at the end of a run that went well.
    async fn next(&mut self) -> Result<Option<RawLine>, String> {
        match self {
            BackLines::Local {
                stdout,
                stderr,
                exit,
                label,
            } => {
                match read_line(stdout).await {
                    Ok(Some(line)) => return Ok(Some(line)),
                    Ok(None) => {}
                    Err(e) => return Err(format!("cannot read the output of {label}: {e}")),
                }
                let mut said = Vec::new();
                let _ = stderr.take(64 * 1024).read_to_end(&mut said).await;
                let said = String::from_utf8_lossy(&said);
                let said = said.lines().map(str::trim).rfind(|l| !l.is_empty());
                match exit.await {
                    Ok(exit) if exit.code == Some(0) => Ok(None),
                    Ok(exit) => Err(match said {
                        Some(text) => format!("{label} stopped ({}): {text}", exit.description),
                        None => format!("{label} stopped ({})", exit.description),
                    }),
                    Err(e) => Err(format!("{label} stopped: {e}")),
                }
            }
            BackLines::Remote {
                stream,
                transport,
                label,
            } => loop {
                match stream.recv().await {
                    Some(StreamEvent::Line { text, .. }) => return Ok(Some(RawLine::cut(text))),
                    Some(StreamEvent::Started { .. }) => continue,
                    Some(StreamEvent::Exited { status, .. }) if status.success() => {
                        return Ok(None);
                    }
                    Some(StreamEvent::Exited { status, stderr, .. }) => {
                        let said = stderr.lines().map(str::trim).rfind(|l| !l.is_empty());
                        return Err(match said {
                            Some(text) => format!("{label} stopped ({status}): {text}"),
                            None => format!("{label} stopped ({status})"),
                        });
                    }
                    Some(StreamEvent::Interrupted { reason }) => {
                        return Err(format!("ssh {}: {reason}", transport.name()));
                    }
                    None => return Ok(None),
                }
            },
            BackLines::Failed(why) => match why.take() {
                Some(why) => Err(why),
                None => Ok(None),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::logs::parse::SSHD;

    #[test]
    fn argv_resumes_after_the_cursor() {
        let plan = JournaldPlan::new("tmws.service", crate::config::DEFAULT_READ_BACK);
        assert_eq!(
            plan.argv(None),
            [
                "journalctl",
                "--follow",
                "--output=json",
                "--all",
                "--no-pager",
                "--lines=all",
                "--unit=tmws.service",
                "--since=-1h"
            ]
        );
        // The last cursor delivered: a line without one leaves it as it was.
        let mut cursor = None;
        for line in [SSHD.as_bytes(), b"not json"] {
            if let Some(new) = plan.resume_token(line) {
                cursor = Some(new);
            }
        }
        assert_eq!(
            plan.argv(cursor.as_deref()).last().unwrap(),
            "--after-cursor=s=8f1c6f2a;i=1a2b;b=5e4d;m=2f0c;t=6453a1b2c3d4e;x=77aa"
        );
    }

    /// Told where the lines still to be counted start, the first run starts there; read
    /// once, it does not follow.
    #[test]
    fn the_first_run_starts_where_the_counting_does() {
        use chrono::TimeZone;
        let mut plan = JournaldPlan::new("tmws.service", crate::config::DEFAULT_READ_BACK);
        let since = Utc
            .with_ymd_and_hms(2026, 5, 6, 7, 0, 0)
            .unwrap()
            .checked_add_signed(chrono::Duration::milliseconds(900))
            .unwrap();
        plan.prepare(Start {
            one_shot: false,
            since: Some(since),
            until: None,
        });
        assert_eq!(
            plan.argv(None),
            [
                "journalctl",
                "--follow",
                "--output=json",
                "--all",
                "--no-pager",
                "--lines=all",
                "--unit=tmws.service",
                "--since=@1778050800"
            ]
        );
        assert_eq!(
            plan.argv(Some("s=1")).last().unwrap(),
            "--after-cursor=s=1",
            "a restart resumes after the cursor, wherever the first run started"
        );
        plan.prepare(Start {
            one_shot: true,
            since: Some(since),
            until: None,
        });
        assert!(!plan.argv(None).contains(&"--follow".to_string()));
    }

    /// The window is read back newest first, from the journal's end back to where the
    /// counting starts; following then starts after the newest entry it saw (or, with
    /// `read_back = "0"`, at the journal's end).
    #[test]
    fn the_read_back_goes_newest_first_and_following_starts_after_its_newest_entry() {
        let mut plan = JournaldPlan::new("tmws.service", 1024);
        plan.prepare(Start {
            one_shot: false,
            since: DateTime::from_timestamp(1_778_050_800, 0),
            until: None,
        });
        assert_eq!(
            plan.back_argv(),
            [
                "journalctl",
                "--reverse",
                "--output=json",
                "--all",
                "--no-pager",
                "--lines=all",
                "--unit=tmws.service",
                "--since=@1778050800"
            ]
        );
        plan.after = Some("s=newest".into());
        assert_eq!(plan.argv(None).last().unwrap(), "--after-cursor=s=newest");
        assert_eq!(
            plan.argv(Some("s=later")).last().unwrap(),
            "--after-cursor=s=later",
            "a restart resumes after the last entry delivered"
        );
        let mut plan = JournaldPlan::new("tmws.service", 0);
        plan.from_end = true;
        let argv = plan.argv(None);
        assert!(argv.contains(&"--lines=0".to_string()), "{argv:?}");
        assert!(!argv.iter().any(|a| a.starts_with("--since")), "{argv:?}");
    }
}
