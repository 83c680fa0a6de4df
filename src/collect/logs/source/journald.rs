//! journald units: `journalctl --follow --output=json --unit=UNIT` as a long-lived
//! process (see `command`), its JSON entries read into log lines (see `parse::journal`).
//!
//! - The first run starts an hour back (`--since=-1h`), so `errors_1h` and the log metrics
//!   are right from the start; every later run resumes after the last entry delivered
//!   (`--after-cursor`), so a restart neither loses nor repeats a line. The cursor is the
//!   plan's resume token: kept by the local run, or by the host's SSH stream.
//! - Before each run, `journalctl --lines=0` checks that there is a journal to read: on a
//!   host without systemd `journalctl --follow` would wait silently forever.

use super::command::{self, Launcher, Plan, run_to_end};
use crate::collect::logs::parse::cursor_of;
use futures::future::BoxFuture;
use std::io;
use std::time::Duration;

/// How far back the first run starts.
pub(crate) const SINCE: &str = "-1h";
const PROBE_LIMIT: Duration = Duration::from_secs(10);

/// Follows one unit, resuming after the last cursor delivered.
pub(crate) struct JournaldPlan {
    unit: String,
}

impl JournaldPlan {
    pub fn new(unit: &str) -> Self {
        JournaldPlan {
            unit: unit.trim().to_string(),
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

    fn argv(&self, cursor: Option<&str>) -> Vec<String> {
        let mut argv: Vec<String> = [
            "journalctl",
            "--follow",
            "--output=json",
            "--all",
            "--no-pager",
            "--lines=all",
        ]
        .map(String::from)
        .to_vec();
        // `--unit=X` rather than `-u X`: a unit name can never read as an option.
        argv.push(format!("--unit={}", self.unit));
        argv.push(match cursor {
            Some(cursor) => format!("--after-cursor={cursor}"),
            None => format!("--since={SINCE}"),
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
}
