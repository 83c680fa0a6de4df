//! journald units: `journalctl --follow --output=json --unit=UNIT` as a long-lived
//! process (see `command`), its JSON entries read into log lines (see `parse::journal`).
//!
//! - The first run starts where the lines still to be counted start (`--since=@EPOCH`):
//!   the longest window a figure reads (the hour of `errors_1h`, a metric's window), or
//!   further back to the last line the record counted (or its window's start), so
//!   `errors_1h`, the log metrics and the record count each line of their window once from
//!   the start, the lines written while nothing watched included; the tail shows the
//!   newest once the backlog has come through. Every later run resumes after the last
//!   entry delivered (`--after-cursor`), so a restart neither loses nor repeats a line.
//!   The cursor is the plan's resume token: kept by the local run, or by the host's SSH
//!   stream.
//! - Read once (`check`), it runs without `--follow`: to the journal's end, and stops.
//! - Before each run, `journalctl --lines=0` checks that there is a journal to read: on a
//!   host without systemd `journalctl --follow` would wait silently forever.

use super::command::{self, Launcher, Plan, run_to_end};
use super::feed::Start;
use crate::collect::logs::parse::cursor_of;
use futures::future::BoxFuture;
use std::io;
use std::time::Duration;

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
}

impl JournaldPlan {
    pub fn new(unit: &str) -> Self {
        JournaldPlan {
            unit: unit.trim().to_string(),
            since: None,
            follow: true,
        }
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
        argv.extend(["--output=json", "--all", "--no-pager", "--lines=all"].map(String::from));
        // `--unit=X` rather than `-u X`: a unit name can never read as an option.
        argv.push(format!("--unit={}", self.unit));
        argv.push(match (cursor, self.since) {
            (Some(cursor), _) => format!("--after-cursor={cursor}"),
            (None, Some(since)) => format!("--since=@{since}"),
            (None, None) => format!("--since={SINCE}"),
        });
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::logs::parse::SSHD;

    #[test]
    fn argv_resumes_after_the_cursor() {
        let plan = JournaldPlan::new("tmws.service");
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
        let mut plan = JournaldPlan::new("tmws.service");
        let since = chrono::Utc
            .with_ymd_and_hms(2026, 5, 6, 7, 0, 0)
            .unwrap()
            .checked_add_signed(chrono::Duration::milliseconds(900))
            .unwrap();
        plan.prepare(Start {
            one_shot: false,
            since: Some(since),
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
        });
        assert!(!plan.argv(None).contains(&"--follow".to_string()));
    }
}
