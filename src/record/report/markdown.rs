//! The report as Markdown: seed 003's monitoring log template, filled in section by
//! section from a built [`Report`].

use super::{Report, Verdict, clock, mark, md, offset, opt_count, period, span};
use crate::model::figure::format_number;
use crate::model::sanitize::sanitize;
use std::fmt::Write as _;

impl Report {
    /// The report as Markdown: the log template of seed 003 filled in.
    pub fn to_markdown(&self) -> String {
        let mut o = String::new();
        self.write_heading(&mut o);
        self.write_timeline(&mut o);
        self.write_monitoring_log(&mut o);
        self.write_summary(&mut o);
        self.write_criteria(&mut o);
        self.write_kpis(&mut o);
        self.write_escalation(&mut o);
        self.write_alerts(&mut o);
        self.write_caveats(&mut o);
        self.write_sign_off(&mut o);
        o
    }

    /// Title, times and status: the head of seed 003's log template.
    fn write_heading(&self, o: &mut String) {
        let title = if self.version.is_empty() {
            md(&self.deployment)
        } else {
            format!("{} {}", md(&self.deployment), md(&self.version))
        };
        let length = (self.end - self.start).num_seconds();
        let _ = writeln!(o, "# {title} — post-deployment monitoring\n");
        let _ = writeln!(o, "- Deployment: {title}");
        let _ = writeln!(o, "- Monitoring start: {}", clock(self.start));
        let _ = writeln!(
            o,
            "- Monitoring end: {} ({} after the start)",
            clock(self.end),
            period(length)
        );
        if self.complete {
            let _ = writeln!(o, "- Status: window complete");
        } else {
            let _ = writeln!(
                o,
                "- Status: in progress, {} of {} (report as of {})",
                offset(self.as_of - self.start),
                offset(self.end - self.start),
                clock(self.as_of)
            );
        }
        let _ = writeln!(
            o,
            "- Resolution: figures kept in {}-second buckets",
            self.bucket_secs
        );
        let _ = writeln!(o, "- Monitoring team: ________________");
    }

    /// The worst state of each interval, as one table.
    fn write_timeline(&self, o: &mut String) {
        let _ = writeln!(o, "\n## Timeline\n");
        let _ = writeln!(o, "| Interval | Worst state |");
        let _ = writeln!(o, "|---|---|");
        for cell in &self.timeline {
            let state = match cell.state.as_str() {
                "ok" => "✓ OK".to_string(),
                "warn" => "▲ WARN".to_string(),
                "crit" => "✖ CRIT".to_string(),
                "unknown" => "? UNKNOWN".to_string(),
                other => other.to_string(),
            };
            let _ = writeln!(o, "| {} – {} | {state} |", cell.from, cell.to);
        }
    }

    /// One block per checkpoint interval, as the hourly log is filled in by hand.
    fn write_monitoring_log(&self, o: &mut String) {
        let _ = writeln!(o, "\n## Monitoring log\n");
        for log in &self.intervals {
            let _ = writeln!(o, "### {}\n", log.label);
            let _ = writeln!(
                o,
                "- Time: {} to {}; checkpoint {}",
                log.from.format("%H:%M:%S"),
                log.to.format("%H:%M:%S"),
                log.checkpoint
            );
            let _ = writeln!(o, "- Service Status: {}", md(&log.service_status));
            let partial = !log.counts_partial.is_empty();
            let errors = match (log.error_count, log.critical_errors, log.watched) {
                (Some(e), Some(c), _) if partial => format!("at least {e} ({c} critical)"),
                (_, _, false) => "not watched".to_string(),
                (Some(e), Some(c), true) => format!("{e} ({c} critical)"),
                _ => "not measured (no log source)".to_string(),
            };
            let _ = writeln!(o, "- Error Count: {errors}");
            for p in &log.counts_partial {
                let _ = writeln!(o, "  - partial: {}", md(&p.text));
            }
            let _ = writeln!(o, "- Performance: {}", md(&log.performance));
            if log.critical_issues.is_empty() {
                let _ = writeln!(o, "- Critical Issues: NONE");
            } else {
                let _ = writeln!(o, "- Critical Issues:");
                for issue in &log.critical_issues {
                    let _ = writeln!(o, "  - {}", md(issue));
                }
            }
            if !log.other_alerts.is_empty() {
                let _ = writeln!(o, "- Other Alerts:");
                for alert in &log.other_alerts {
                    let _ = writeln!(o, "  - {}", md(alert));
                }
            }
            if log.notes.is_empty() {
                let _ = writeln!(o, "- Notes: —");
            } else {
                let _ = writeln!(o, "- Notes:");
                for note in &log.notes {
                    let _ = writeln!(o, "  - {}", md(note));
                }
            }
            let _ = writeln!(o);
        }
    }

    /// The final summary: counts, downtime, latency, alerts, the recommendation.
    fn write_summary(&self, o: &mut String) {
        let s = &self.summary;
        let _ = writeln!(
            o,
            "## Final summary ({})\n",
            if self.complete {
                offset(self.end - self.start)
            } else {
                format!("so far, {}", offset(self.as_of - self.start))
            }
        );
        let at_least = if s.counts_partial.is_empty() {
            ""
        } else {
            "at least "
        };
        let count = |n: Option<i64>| match n {
            Some(n) => format!("{at_least}{n}"),
            None => opt_count(None),
        };
        let _ = writeln!(o, "- Total Errors: {}", count(s.total_errors));
        let _ = writeln!(o, "- Critical Errors: {}", count(s.critical_errors));
        for p in &s.counts_partial {
            let _ = writeln!(o, "  - partial: {}", md(&p.text));
        }
        let downtime = match (s.downtime_secs, s.documented_downtime_secs) {
            (Some(d), Some(doc)) if doc > 0 => {
                format!(
                    "{} (of which {} documented maintenance)",
                    span(d),
                    span(doc)
                )
            }
            (Some(d), _) => span(d),
            (None, _) => "not measured (no service figures)".into(),
        };
        let _ = writeln!(o, "- Service Downtime: {downtime}");
        let _ = writeln!(
            o,
            "- Uptime: {}",
            s.uptime_pct
                .map(|u| format!("{u:.2}% (lowest of any service)"))
                .unwrap_or_else(|| "not measured".into())
        );
        let _ = writeln!(
            o,
            "- Average Response Time: {}",
            match (s.average_response_ms, s.p99_response_ms, &s.response_figure) {
                (Some(avg), Some(p99), Some(id)) => format!(
                    "{} (p99 ≤ {}, {})",
                    format_number(avg, "ms"),
                    format_number(p99, "ms"),
                    md(id)
                ),
                _ => "not measured".into(),
            }
        );
        let _ = writeln!(
            o,
            "- Cache Hit Rate: {}",
            s.cache_hit_pct
                .map(|c| format!("{c:.1}%"))
                .unwrap_or_else(|| "not measured".into())
        );
        let alerts: Vec<String> = s
            .alerts_by_priority
            .iter()
            .map(|(p, n)| format!("{p} {n}"))
            .collect();
        let _ = writeln!(o, "- Alerts: {}", alerts.join(", "));
        if !s.still_firing.is_empty() {
            let firing: Vec<String> = s.still_firing.iter().map(|f| md(f)).collect();
            let _ = writeln!(o, "- Still firing: {}", firing.join("; "));
        }
        let _ = writeln!(o, "- Overall Status: {}", s.overall.label());
        let _ = writeln!(
            o,
            "- Go-Live Approval: {} — {}",
            s.go_live,
            md(&s.recommendation)
        );
    }

    /// Each success criterion with the figure that measured it.
    fn write_criteria(&self, o: &mut String) {
        let _ = writeln!(o, "\n### Success criteria\n");
        let _ = writeln!(o, "| Criterion | Target | Measured | Result |");
        let _ = writeln!(o, "|---|---|---|---|");
        for c in &self.criteria {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} |",
                md(&c.name),
                md(&c.target),
                md(&c.measured),
                mark(c.verdict)
            );
        }
    }

    /// The KPI table of the TMWS pack.
    fn write_kpis(&self, o: &mut String) {
        if self.kpis.is_empty() {
            return;
        }
        let _ = writeln!(o, "\n### KPIs (week 1 targets)\n");
        let _ = writeln!(
            o,
            "| Metric | Target | Acceptable Range | Measured | Status |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|");
        for k in &self.kpis {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} |",
                md(&k.metric),
                md(&k.target),
                md(&k.acceptable),
                md(&k.measured),
                k.status
            );
        }
    }

    /// The escalation matrix: alerts per priority and whether they were answered in time.
    fn write_escalation(&self, o: &mut String) {
        if self.escalation.is_empty() {
            return;
        }
        let _ = writeln!(o, "\n### Escalation\n");
        let _ = writeln!(
            o,
            "| Severity | Condition | Response Time | Alerts | Answered in time | Slowest answer |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|---|");
        for e in &self.escalation {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} |",
                e.priority.label(),
                md(&e.condition),
                e.response,
                e.alerts,
                e.acknowledged_in_time,
                e.slowest
            );
        }
        let _ = writeln!(
            o,
            "\nAn alert is answered when it is acknowledged (or, failing that, resolved)."
        );
    }

    /// Every alert of the window.
    fn write_alerts(&self, o: &mut String) {
        if !self.incidents.is_empty() {
            let _ = writeln!(o, "\n### Alerts\n");
            let _ = writeln!(
                o,
                "| Priority | State | Figure | Value | Fired | Resolved | Acknowledged |"
            );
            let _ = writeln!(o, "|---|---|---|---|---|---|---|");
            for i in &self.incidents {
                let mut state: Vec<&str> = i.conditions.iter().map(|c| c.label()).collect();
                if i.silenced {
                    state.push("silenced");
                }
                if i.flapping {
                    state.push("flapping");
                }
                let _ = writeln!(
                    o,
                    "| {} | {} | {} (`{}`) | {} | {} | {} | {} |",
                    i.priority.label(),
                    state.join(", "),
                    md(&i.name),
                    i.id.replace('`', "'"),
                    md(&i.value),
                    offset(i.fired - self.start),
                    i.resolved
                        .map(|r| format!(
                            "{} ({})",
                            offset(r - self.start),
                            span((r - i.fired).num_seconds())
                        ))
                        .unwrap_or_else(|| "still firing".into()),
                    i.acknowledged
                        .map(|a| format!("after {}", span((a - i.fired).num_seconds())))
                        .unwrap_or_else(|| "—".into()),
                );
            }
        }
    }

    /// What the record could not see.
    fn write_caveats(&self, o: &mut String) {
        if !self.caveats.is_empty() {
            let _ = writeln!(o, "\n### What the record does not cover\n");
            for c in &self.caveats {
                let _ = writeln!(o, "- {}", md(c));
            }
        }
    }

    /// The sign-off sheet, left unsigned.
    fn write_sign_off(&self, o: &mut String) {
        let s = &self.summary;
        let length = (self.end - self.start).num_seconds();
        let tick = |ok: bool| if ok { "✅" } else { "❌" };
        let _ = writeln!(o, "\n## Sign-off\n");
        let _ = writeln!(o, "```text");
        let heading = if length % 3600 == 0 {
            format!("{}-HOUR", length / 3600)
        } else {
            span(length).to_uppercase()
        };
        let _ = writeln!(
            o,
            "=== {heading} POST-DEPLOYMENT MONITORING - SIGN-OFF ===\n"
        );
        let _ = writeln!(o, "Project: {}", sanitize(&self.deployment));
        let _ = writeln!(o, "Deployment Date: {}", self.start.format("%Y-%m-%d"));
        let _ = writeln!(o, "Monitoring Period: {}", period(length));
        let _ = writeln!(o, "End Time: {}\n", clock(self.end));
        let _ = writeln!(o, "RESULTS SUMMARY:");
        let uptime_line = match s.uptime_pct {
            Some(u) => format!("{u:.2}% {}", tick(u >= 100.0)),
            None => "not measured".into(),
        };
        let _ = writeln!(o, "- Service Uptime: {uptime_line}");
        let critical = match s.critical_errors {
            Some(c) => format!("{c} {}", tick(c == 0)),
            None => "not measured".into(),
        };
        let _ = writeln!(o, "- Critical Errors: {critical}");
        let _ = writeln!(o, "- Security Issues: ________ (check by hand)");
        let _ = writeln!(o, "- User Incidents: ________ (check by hand)");
        let integrity = self
            .criteria
            .iter()
            .find(|c| c.measure.starts_with("worst of") && c.measure.contains("integrity"))
            .map(|c| match c.verdict {
                Verdict::Pass => "Verified ✅".to_string(),
                Verdict::Fail => format!("{} ❌", c.measured),
                Verdict::NotMeasured => "not measured".into(),
            })
            .unwrap_or_else(|| "not measured".into());
        let _ = writeln!(o, "- Data Integrity: {integrity}");
        let _ = writeln!(
            o,
            "- watchpost recommendation: {} — {}\n",
            s.go_live,
            sanitize(&s.recommendation)
        );
        let line = "________________  Date: __________  Signature: ________________";
        let _ = writeln!(o, "MONITORING COMPLETED BY:");
        let _ = writeln!(o, "Name: {line}\n");
        let _ = writeln!(o, "APPROVALS:");
        for role in [
            "Tech Lead:",
            "Security Lead:",
            "QA Lead:",
            "Product Manager:",
        ] {
            let _ = writeln!(o, "{role:<16} {line}");
        }
        let _ = writeln!(
            o,
            "\nFINAL STATUS: ________________ (GO-LIVE APPROVED / NOT APPROVED)\n"
        );
        let _ = writeln!(o, "Notes:");
        if self.notes.is_empty() {
            let _ = writeln!(o, "[Any additional observations or recommendations]");
        }
        for n in &self.notes {
            let _ = writeln!(
                o,
                "- {} {}",
                offset(n.at - self.start),
                sanitize(&n.text.replace(['\n', '\r'], " "))
            );
        }
        let _ = writeln!(o, "```");
    }
}
