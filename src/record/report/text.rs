//! The report as a short plain-text summary for an incident channel: the verdict, what
//! failed, the error counts and the worst alerts with their durations, in at most
//! [`MAX_LINES`] lines that paste into chat as they are (no Markdown, no colour).

use super::{Report, Verdict, offset, span};
use crate::model::figure::Severity;
use crate::model::sanitize::sanitize;
use std::fmt::Write as _;

/// Lines the summary may take, however much happened.
pub(crate) const MAX_LINES: usize = 15;
/// Alerts listed by name; the rest are counted.
const WORST_ALERTS: usize = 5;

impl Report {
    pub fn to_text(&self) -> String {
        let s = &self.summary;
        let mut lines: Vec<String> = Vec::new();
        let title = if self.version.is_empty() {
            sanitize(&self.deployment)
        } else {
            format!("{} {}", sanitize(&self.deployment), sanitize(&self.version))
        };
        let progress = if self.complete {
            format!("window complete ({})", offset(self.end - self.start))
        } else {
            format!(
                "{} of {}",
                offset(self.as_of - self.start),
                offset(self.end - self.start)
            )
        };
        lines.push(format!("{title}: {progress}"));
        lines.push(format!(
            "Go-live: {} — {}",
            s.go_live,
            sanitize(&s.recommendation)
        ));
        let count = |v: Verdict| self.criteria.iter().filter(|c| c.verdict == v).count();
        let mut criteria = format!(
            "Criteria: {} pass, {} fail, {} not measured",
            count(Verdict::Pass),
            count(Verdict::Fail),
            count(Verdict::NotMeasured)
        );
        let failing: Vec<String> = self
            .criteria
            .iter()
            .filter(|c| c.verdict == Verdict::Fail)
            .map(|c| format!("{}: {}", sanitize(&c.name), sanitize(&c.measured)))
            .collect();
        if !failing.is_empty() {
            let _ = write!(criteria, ". Failing: {}", failing.join("; "));
        }
        lines.push(criteria);
        lines.push(match (s.total_errors, s.critical_errors) {
            (Some(e), Some(c)) if !s.counts_partial.is_empty() => {
                let stretches: Vec<String> =
                    s.counts_partial.iter().map(|p| sanitize(&p.text)).collect();
                format!(
                    "Errors: at least {e} ({c} critical); partial: {}",
                    stretches.join("; ")
                )
            }
            (Some(e), Some(c)) => format!("Errors: {e} ({c} critical)"),
            _ => "Errors: not measured (no log source)".into(),
        });
        if let Some(down) = s.downtime_secs {
            let mut line = format!("Downtime: {}", span(down));
            if let (Some(u), Some(doc)) = (s.uptime_pct, s.documented_downtime_secs) {
                let _ = write!(line, ", uptime {u:.2}%");
                if doc > 0 {
                    let _ = write!(line, " ({} documented maintenance)", span(doc));
                }
            }
            lines.push(line);
        }
        let by_priority: Vec<String> = s
            .alerts_by_priority
            .iter()
            .map(|(p, n)| format!("{p} {n}"))
            .collect();
        lines.push(format!("Alerts: {}", by_priority.join(", ")));
        if !s.still_firing.is_empty() {
            let firing: Vec<String> = s.still_firing.iter().map(|f| sanitize(f)).collect();
            lines.push(format!("Still firing: {}", firing.join("; ")));
        }
        // The worst alerts: by priority, then critical before the rest, then the longest.
        let mut alerts: Vec<_> = self.incidents.iter().filter(|i| !i.silenced).collect();
        let lasted =
            |i: &super::Incident| (i.resolved.unwrap_or(self.as_of) - i.fired).num_seconds();
        alerts.sort_by_key(|i| (i.priority, i.severity != Severity::Crit, -lasted(i)));
        for i in alerts.iter().take(WORST_ALERTS) {
            let resolved = match i.resolved {
                Some(_) => format!("for {}", span(lasted(i))),
                None => format!("firing for {}", span(lasted(i))),
            };
            let acknowledged = match i.acknowledged {
                Some(a) => format!("acknowledged after {}", span((a - i.fired).num_seconds())),
                None => "not acknowledged".into(),
            };
            lines.push(format!(
                "- {} {} {} ({}): at {} {resolved}, {acknowledged}",
                i.priority.label(),
                i.severity.label(),
                sanitize(&i.name),
                sanitize(&i.value),
                offset(i.fired - self.start),
            ));
        }
        if alerts.len() > WORST_ALERTS {
            lines.push(format!(
                "- and {} more (watchpost report --format md lists them all)",
                alerts.len() - WORST_ALERTS
            ));
        }
        lines.truncate(MAX_LINES);
        let mut out = lines.join("\n");
        out.push('\n');
        out
    }
}
