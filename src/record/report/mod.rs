//! `watchpost report`: seed 003's monitoring log and final summary, filled in from the
//! record, with seed 000's KPI table and escalation matrix when a source had the TMWS
//! pack, and the sign-off sheet left unsigned; or (`--format text`) a short summary for an
//! incident channel.
//!
//! One rule places every count: a bucket counts at its own time, or at the window's start
//! when it began before it, so the intervals' counts add up to the summary's. A success
//! criterion over figures judges each figure on its own and names the worst one;
//! `p99 of latency` is every response-time figure (see [`LATENCY`]).
//!
//! How figures become the log's words (all at the record's bucket resolution, 30 s for a
//! 24-hour window):
//! - **Service status**: every `*.up` figure (1 up, 0 down). Down time is the bucket length
//!   times the share of down readings; a bucket with only errors or no data is "unknown",
//!   never up. Down time under a maintenance silence is "documented".
//! - **Error count**: log lines that matched a log source's error pattern; **critical**:
//!   lines at level critical/fatal/panic.
//! - **Performance**: `*_ms` figures (health latencies, query times): NORMAL unless one
//!   was WARN or CRIT in the interval.
//! - **Critical issues**: alerts that were CRIT, or P0/P1, in the interval.
//! - **p95/p99** are taken over the bucket maxima, so they are an upper bound.
//! - **Partial counts**: where a source's read-back after a restart was cut before it
//!   reached where the record's count had stopped (its `read_back` cap, its time cap), the
//!   record keeps that stretch; every count it touches (an interval's, the summary's, an
//!   error criterion's) says "at least" with what was read, of how much and why, and a
//!   criterion that a lower bound cannot decide is "not measured".
//!
//! A success criterion with no figure behind it says "not measured", never "pass"; the
//! go-live recommendation is YES only when every measured criterion passes, the window is
//! over and no P0/P1 alert is still firing, and it lists what must be checked by hand.

mod markdown;
mod text;

use super::store::{Bucket, LogBucket, Reader, RecordMeta, RecordedGap};
use super::{Incident, Replay, replay, timeline};
use crate::config::criteria::{Criterion, Measure, Stat, default_criteria, parse_measure};
use crate::model::figure::{Severity, format_bytes, format_number};
use crate::model::rule::{Comparison, Priority, Threshold};
use crate::rules::engine::Condition;
use crate::rules::notify::{Silence, glob_match};
use crate::state::{Note, Window};
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Pass, fail, or no figure to tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    NotMeasured,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::NotMeasured => "not measured",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CriterionResult {
    pub name: String,
    pub measure: String,
    pub target: String,
    pub measured: String,
    pub verdict: Verdict,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KpiRow {
    pub metric: String,
    pub target: String,
    pub acceptable: String,
    pub measured: String,
    /// "on target", "acceptable", "out of range", "not measured".
    pub status: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EscalationRow {
    pub priority: Priority,
    pub condition: String,
    pub response: String,
    pub alerts: usize,
    pub acknowledged_in_time: usize,
    /// The slowest acknowledgement, or "not acknowledged".
    pub slowest: String,
}

/// One line of the timeline: a checkpoint interval and its worst state.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimelineCell {
    pub from: String,
    pub to: String,
    /// ok, warn, crit, unknown; "not watched"; "to come".
    pub state: String,
}

/// A stretch of a source's log lines the record counted only in part: the read-back of
/// the lines written while nothing watched stopped before it reached where the record's
/// count had stopped. Counts it touches are lower bounds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PartialCount {
    pub source: String,
    /// Where the record's count had stopped (its last counted line, or the window's start).
    pub from: DateTime<Utc>,
    /// The oldest line read back: from here on every line is counted.
    pub to: DateTime<Utc>,
    /// Bytes read back, of how many the source's files held before following started.
    pub read_bytes: u64,
    pub total_bytes: u64,
    /// Why the read-back stopped.
    pub why: String,
    /// All of it in words, as the Markdown and text reports say it.
    pub text: String,
}

/// One entry of the monitoring log.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IntervalLog {
    pub label: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub checkpoint: String,
    pub watched: bool,
    pub service_status: String,
    pub error_count: Option<i64>,
    pub critical_errors: Option<i64>,
    /// The counts are lower bounds: these stretches of the interval were counted in part.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub counts_partial: Vec<PartialCount>,
    pub performance: String,
    pub critical_issues: Vec<String>,
    /// Alerts below critical (P2/P3 warnings, no data) in the interval.
    pub other_alerts: Vec<String>,
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub total_errors: Option<i64>,
    pub critical_errors: Option<i64>,
    /// The counts are lower bounds: these stretches of the window were counted in part.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub counts_partial: Vec<PartialCount>,
    /// Seconds a service was down or unknown, and of that, under a maintenance silence.
    pub downtime_secs: Option<i64>,
    pub documented_downtime_secs: Option<i64>,
    pub uptime_pct: Option<f64>,
    /// The slowest latency figure (by its p99), its mean and p99 in ms.
    pub response_figure: Option<String>,
    pub average_response_ms: Option<f64>,
    pub p99_response_ms: Option<f64>,
    pub cache_hit_pct: Option<f64>,
    pub alerts_by_priority: BTreeMap<String, usize>,
    pub still_firing: Vec<String>,
    pub overall: Verdict,
    /// YES, NO or NOT YET, with why.
    pub go_live: String,
    pub recommendation: String,
}

/// Everything the report says.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub deployment: String,
    pub version: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub as_of: DateTime<Utc>,
    pub complete: bool,
    pub bucket_secs: i64,
    pub timeline: Vec<TimelineCell>,
    pub intervals: Vec<IntervalLog>,
    pub summary: Summary,
    pub criteria: Vec<CriterionResult>,
    pub kpis: Vec<KpiRow>,
    pub escalation: Vec<EscalationRow>,
    pub incidents: Vec<Incident>,
    pub notes: Vec<Note>,
    /// What the record could not keep (size limit, dropped events).
    pub caveats: Vec<String>,
}

/// Everything read from a record, so building the report is pure.
pub struct Inputs {
    pub meta: RecordMeta,
    pub figures: BTreeMap<String, String>,
    /// Each figure's unit, as its collector gave it.
    pub units: BTreeMap<String, String>,
    pub samples: BTreeMap<String, Vec<Bucket>>,
    pub replay: Replay,
    pub logs: Vec<LogBucket>,
    /// Stretches of log lines counted only in part.
    pub log_gaps: Vec<RecordedGap>,
    pub notes: Vec<Note>,
    pub snapshots: Vec<super::Snapshot>,
    pub dropped_full: u64,
    pub dropped_alert_events: u64,
}

/// Why a record cannot be reported on. `Display` is what `watchpost report` prints.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot read the record: {0}")]
    Read(rusqlite::Error),
    #[error("the record has no window (was it written by watchpost?)")]
    NoWindow,
}

impl Inputs {
    pub fn read(reader: &Reader) -> Result<Inputs, ReportError> {
        let e = ReportError::Read;
        let meta = reader.meta().map_err(e)?.ok_or(ReportError::NoWindow)?;
        let figures = reader.figures().map_err(e)?;
        Ok(Inputs {
            meta,
            units: figures
                .iter()
                .map(|f| (f.key.clone(), f.unit.clone()))
                .collect(),
            figures: figures.into_iter().map(|f| (f.key, f.name)).collect(),
            samples: reader.samples().map_err(e)?,
            replay: replay(&reader.alert_events().map_err(e)?),
            logs: reader.logs().map_err(e)?,
            log_gaps: reader.log_gaps().map_err(e)?,
            notes: reader.notes().map_err(e)?,
            snapshots: reader.snapshots().map_err(e)?,
            dropped_full: reader.counter("dropped_full").map_err(e)?,
            dropped_alert_events: reader.counter("dropped_alert_events").map_err(e)?,
        })
    }
}

/// The record's window.
fn window_of(meta: &RecordMeta) -> Window {
    let mut window = Window::new(
        &meta.deployment,
        meta.start,
        Duration::seconds(meta.length_secs),
    );
    window.version = meta.version.clone();
    window.checkpoints = meta
        .checkpoints
        .iter()
        .map(|s| Duration::seconds(*s))
        .collect();
    window
}

/// Time as offset into the window: `T+01:00`, or `T+00:01:30` when seconds matter.
pub fn offset(d: Duration) -> String {
    let secs = d.num_seconds().max(0);
    if secs % 60 == 0 {
        format!("T+{:02}:{:02}", secs / 3600, (secs % 3600) / 60)
    } else {
        format!(
            "T+{:02}:{:02}:{:02}",
            secs / 3600,
            (secs % 3600) / 60,
            secs % 60
        )
    }
}

/// "1h02m", "3m20s", "45s".
pub fn span(secs: i64) -> String {
    let secs = secs.max(0);
    if secs < 60 {
        format!("{secs}s")
    } else if secs < 3600 {
        if secs % 60 == 0 {
            format!("{}m", secs / 60)
        } else {
            format!("{}m{:02}s", secs / 60, secs % 60)
        }
    } else {
        format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60)
    }
}

/// "24 hours", "3 minutes", "90 seconds".
fn period(secs: i64) -> String {
    let plural = |n: i64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    if secs % 3600 == 0 {
        plural(secs / 3600, "hour")
    } else if secs % 60 == 0 {
        plural(secs / 60, "minute")
    } else {
        plural(secs, "second")
    }
}

fn clock(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// Builds the report as of `now` with `criteria` (the config's, or the record's, or seed
/// 003's).
/// What the sections of the report read besides the record's inputs: the window, the
/// moment the report speaks of, and which figures measure what.
struct Frame<'a> {
    inputs: &'a Inputs,
    window: Window,
    as_of: DateTime<Utc>,
    bucket: i64,
    silences: Vec<Silence>,
    /// Every bucket time with a recorded sample: when watchpost was watching.
    observed: Vec<DateTime<Utc>>,
    has_logs: bool,
    /// The stretches of the window counted only in part.
    partial: Vec<PartialCount>,
    services: Vec<&'a String>,
    latency: Vec<&'a String>,
}

impl<'a> Frame<'a> {
    /// The stretches counted in part that overlap `[from, to)`.
    fn partial_in(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<PartialCount> {
        self.partial
            .iter()
            .filter(|p| p.from < to && p.to > from)
            .cloned()
            .collect()
    }

    /// Where a bucket counts: at its own time, or at the window's start if it began
    /// before it. Every count of the report places buckets by this one rule, so the
    /// intervals' counts add up to the summary's.
    fn at(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        t.max(self.window.start)
    }

    /// The log buckets of the window (a bucket that began before the start included).
    fn window_logs(&self) -> impl Iterator<Item = &'a LogBucket> + '_ {
        let end = self.window.start + self.window.length;
        self.inputs.logs.iter().filter(move |l| self.at(l.t) < end)
    }

    fn new(inputs: &'a Inputs, now: DateTime<Utc>) -> Frame<'a> {
        let meta = &inputs.meta;
        let window = window_of(meta);
        let end = window.start + window.length;
        let mut observed: Vec<_> = inputs
            .samples
            .values()
            .flat_map(|b| b.iter().map(|b| b.t))
            .collect();
        // A bucket that began before the window's start counts at the start: the first
        // 30-second bucket of a window usually does.
        for t in &mut observed {
            *t = (*t).max(window.start);
        }
        observed.sort();
        observed.dedup();
        let keys = |keep: fn(&str) -> bool| -> Vec<&'a String> {
            inputs.samples.keys().filter(|k| keep(k)).collect()
        };
        let partial = inputs
            .log_gaps
            .iter()
            .filter(|g| g.gap.from < end && g.gap.to > window.start)
            .map(|g| partial_count(g, &window))
            .collect();
        Frame {
            inputs,
            partial,
            as_of: now.min(end.max(window.start)),
            window,
            bucket: meta.bucket_secs.max(1),
            silences: serde_json::from_value(meta.silences.clone()).unwrap_or_default(),
            observed,
            has_logs: !inputs.logs.is_empty()
                || inputs.figures.keys().any(|k| k.ends_with(".errors_1h")),
            services: keys(|k| k.ends_with(".up")),
            // Every figure of a time unit: probes, the application's latencies, queries.
            latency: inputs
                .samples
                .keys()
                .filter(|k| is_latency(inputs, k))
                .collect(),
        }
    }
}

/// A stretch counted in part, with its words: "app: lines from 13:02:11 (T+00:30:12) to
/// 13:49:50 (T+01:17:51) counted in part — the read-back after a restart read the last
/// 256.0 KiB of 2.3 MiB (stopped by its read_back cap of 256.0 KiB)".
fn partial_count(g: &RecordedGap, window: &Window) -> PartialCount {
    let at = |t: DateTime<Utc>| format!("{} ({})", t.format("%H:%M:%S"), offset(t - window.start));
    let gap = &g.gap;
    PartialCount {
        source: g.source.clone(),
        from: gap.from,
        to: gap.to,
        read_bytes: gap.read,
        total_bytes: gap.total,
        why: gap.why.clone(),
        text: format!(
            "{}: lines from {} to {} counted in part — the read-back after a restart read the last {}{} (stopped by {})",
            g.source,
            at(gap.from),
            at(gap.to),
            format_bytes(gap.read as f64),
            // A journal's read-back does not know the window's size in bytes (0).
            if gap.total > 0 {
                format!(" of {}", format_bytes(gap.total as f64))
            } else {
                String::new()
            },
            gap.why
        ),
    }
}

pub fn build(inputs: &Inputs, criteria: &[Criterion], now: DateTime<Utc>) -> Report {
    let f = Frame::new(inputs, now);
    let meta = &inputs.meta;
    let end = f.window.start + f.window.length;
    let cells = timeline(&f.window, &inputs.replay.segments, &f.observed, f.as_of);
    let intervals = f.window.intervals();
    let timeline_rows: Vec<TimelineCell> = intervals
        .iter()
        .zip(&cells)
        .map(|((from, to), cell)| TimelineCell {
            from: offset(*from),
            to: offset(*to),
            state: match cell {
                Some(s) => s.as_str().to_string(),
                None if f.window.start + *from > f.as_of => "to come".into(),
                None => "not watched".into(),
            },
        })
        .collect();
    let log_rows: Vec<IntervalLog> = intervals
        .iter()
        .enumerate()
        .filter_map(|(i, (from, to))| interval_log(&f, i, intervals.len(), from, to))
        .collect();
    let uptime = uptime(
        &f.services,
        &inputs.samples,
        &inputs.figures,
        f.bucket,
        &f.silences,
    );
    let criteria: Vec<CriterionResult> = criteria
        .iter()
        .map(|c| judge_criterion(c, inputs, f.has_logs, &f.partial, &uptime))
        .collect();
    let complete = now >= end;
    let summary = summary(&f, &criteria, &uptime, complete);
    Report {
        deployment: meta.deployment.clone(),
        version: meta.version.clone(),
        start: f.window.start,
        end,
        as_of: now,
        complete,
        bucket_secs: f.bucket,
        // Seed 000's KPI table and escalation matrix belong to its pack.
        kpis: if has_tmws_pack(inputs) {
            kpis(inputs, &uptime)
        } else {
            Vec::new()
        },
        escalation: if has_tmws_pack(inputs) {
            escalation(&inputs.replay.incidents, f.as_of)
        } else {
            Vec::new()
        },
        caveats: caveats(inputs, &timeline_rows, &f.partial),
        timeline: timeline_rows,
        intervals: log_rows,
        summary,
        criteria,
        incidents: inputs.replay.incidents.clone(),
        notes: inputs.notes.clone(),
    }
}

/// The log block of one checkpoint interval (`i` of `count`), or none for an interval
/// still to come that nothing was recorded in.
fn interval_log(
    f: &Frame,
    i: usize,
    count: usize,
    from: &Duration,
    to: &Duration,
) -> Option<IntervalLog> {
    let inputs = f.inputs;
    let (from_t, to_t) = (f.window.start + *from, f.window.start + *to);
    let in_range = |t: DateTime<Utc>| t >= from_t && t < to_t;
    let logs_in: Vec<&LogBucket> = f.window_logs().filter(|l| in_range(f.at(l.t))).collect();
    // Watched when anything was recorded in it: figures, or log lines counted.
    let watched = f.observed.iter().any(|t| in_range(*t)) || !logs_in.is_empty();
    if !watched && from_t > f.as_of {
        return None;
    }
    let label = if from.num_seconds() % 3600 == 0 && to.num_seconds() % 3600 == 0 {
        format!(
            "HOUR {}-{} (T+{} to T+{})",
            from.num_hours(),
            to.num_hours(),
            from.num_hours(),
            to.num_hours()
        )
    } else {
        format!("{} to {}", offset(*from), offset(*to))
    };
    let checkpoint = inputs
        .snapshots
        .iter()
        .find(|s| s.offset_secs == to.num_seconds())
        .map(|s| format!("{} snapshot at {}", offset(*to), clock(s.at)))
        .unwrap_or_else(|| {
            if to_t > f.as_of {
                format!("{} to come", offset(*to))
            } else {
                format!("{} no snapshot (watchpost was not running)", offset(*to))
            }
        });
    let service_status = if !watched {
        "not watched".to_string()
    } else {
        service_status(
            &f.services,
            &inputs.samples,
            &inputs.figures,
            f.bucket,
            &f.silences,
            in_range,
        )
    };
    // A stretch counted in part has counts, lower bounds, even where nothing else was
    // recorded.
    let counts_partial = f.partial_in(from_t, to_t);
    let (error_count, critical_errors) = if f.has_logs && (watched || !counts_partial.is_empty()) {
        (
            Some(logs_in.iter().map(|l| l.errors).sum()),
            Some(logs_in.iter().map(|l| l.critical).sum()),
        )
    } else {
        (None, None)
    };
    let performance = if watched {
        performance(&f.latency, &inputs.samples, &inputs.figures, in_range)
    } else {
        "not watched".into()
    };
    let critical = |inc: &Incident| inc.severity == Severity::Crit || inc.priority <= Priority::P1;
    let overlapping: Vec<&Incident> = inputs
        .replay
        .incidents
        .iter()
        .filter(|inc| inc.fired < to_t && inc.resolved.is_none_or(|r| r > from_t))
        .collect();
    let mut critical_issues: Vec<String> = overlapping
        .iter()
        .filter(|inc| critical(inc))
        .map(|inc| describe_incident(inc, &f.window, f.as_of))
        .collect();
    let other_alerts: Vec<String> = overlapping
        .iter()
        .filter(|inc| !critical(inc))
        .map(|inc| describe_incident(inc, &f.window, f.as_of))
        .collect();
    if let Some(n) = critical_errors
        && n > 0
    {
        critical_issues.push(format!(
            "{n} critical log line{}",
            if n == 1 { "" } else { "s" }
        ));
    }
    let notes = inputs
        .notes
        .iter()
        .filter(|n| in_range(n.at) || (i + 1 == count && n.at >= to_t))
        .map(|n| format!("{} {}", n.at.format("%H:%M:%S"), n.text))
        .collect();
    Some(IntervalLog {
        label,
        from: from_t,
        to: to_t,
        checkpoint,
        watched,
        service_status,
        error_count,
        critical_errors,
        counts_partial,
        performance,
        critical_issues,
        other_alerts,
        notes,
    })
}

/// The final summary: the window's counts, downtime and latency, the alerts, and the
/// go-live recommendation from the criteria and what still fires.
fn summary(
    f: &Frame,
    criteria: &[CriterionResult],
    uptime: &Option<Uptime>,
    complete: bool,
) -> Summary {
    let inputs = f.inputs;
    let window = &f.window;
    let end = window.start + window.length;
    let total_errors = f.has_logs.then(|| f.window_logs().map(|l| l.errors).sum());
    let critical_errors = f
        .has_logs
        .then(|| f.window_logs().map(|l| l.critical).sum());
    // The slowest of the latency figures, the same set the response-time criterion reads.
    let slowest = latency_figures(inputs)
        .into_iter()
        .filter_map(|id| {
            let p99 = in_ms(stat(&[id], &inputs.samples, Stat::P99)?, inputs, id);
            let avg = stat(&[id], &inputs.samples, Stat::Avg).map(|v| in_ms(v, inputs, id));
            Some((id, avg, p99))
        })
        .max_by(|a, b| a.2.total_cmp(&b.2));
    let response_figure = slowest.map(|(id, _, _)| id.clone());
    let average_response_ms = slowest.and_then(|(_, avg, _)| avg);
    let p99_response_ms = slowest.map(|(_, _, p99)| p99);
    let cache: Vec<&String> = inputs
        .samples
        .keys()
        .filter(|k| glob_match("*.cache_hit_pct", k))
        .collect();
    let cache_hit_pct = stat(&cache, &inputs.samples, Stat::Avg);
    let mut alerts_by_priority = BTreeMap::new();
    for p in [Priority::P0, Priority::P1, Priority::P2, Priority::P3] {
        alerts_by_priority.insert(
            p.label().to_string(),
            inputs
                .replay
                .incidents
                .iter()
                .filter(|i| i.priority == p && !i.silenced)
                .count(),
        );
    }
    let still_firing: Vec<String> = inputs
        .replay
        .open
        .iter()
        .filter(|a| a.state != crate::state::alerts::AlertState::Pending && !a.ok_now)
        .map(|a| format!("{} {} {}", a.priority.label(), a.severity.label(), a.name))
        .collect();

    let failed: Vec<&str> = criteria
        .iter()
        .filter(|c| c.verdict == Verdict::Fail)
        .map(|c| c.name.as_str())
        .collect();
    let unmeasured = criteria
        .iter()
        .filter(|c| c.verdict == Verdict::NotMeasured)
        .count();
    let urgent_firing: Vec<&crate::state::alerts::Alert> = inputs
        .replay
        .open
        .iter()
        .filter(|a| {
            a.state != crate::state::alerts::AlertState::Pending
                && !a.ok_now
                && a.priority <= Priority::P1
                && a.silenced.is_none()
        })
        .collect();
    let overall = if !failed.is_empty() {
        Verdict::Fail
    } else if criteria.iter().any(|c| c.verdict == Verdict::Pass) {
        Verdict::Pass
    } else {
        Verdict::NotMeasured
    };
    let by_hand = if unmeasured > 0 {
        format!(
            "; {unmeasured} criteri{} not measured by watchpost must be checked by hand",
            if unmeasured == 1 { "on" } else { "a" }
        )
    } else {
        String::new()
    };
    let (go_live, recommendation) = if !failed.is_empty() {
        (
            "NO".to_string(),
            format!("do not go live: fails {}{by_hand}", failed.join(", ")),
        )
    } else if !urgent_firing.is_empty() {
        (
            "NO".to_string(),
            format!(
                "do not go live: still firing {}{by_hand}",
                urgent_firing
                    .iter()
                    .map(|a| format!("{} {}", a.priority.label(), a.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    } else if !complete {
        (
            "NOT YET".to_string(),
            format!(
                "the window ends at {} ({}); so far every measured criterion passes{by_hand}",
                offset(window.length),
                clock(end)
            ),
        )
    } else if overall == Verdict::NotMeasured {
        (
            "NOT YET".to_string(),
            "no criterion could be measured: check them by hand".to_string(),
        )
    } else {
        (
            "YES".to_string(),
            format!("go live: every measured criterion passes{by_hand}"),
        )
    };
    let downtime_secs = uptime.as_ref().map(|u| u.down_secs + u.unknown_secs);
    Summary {
        total_errors,
        critical_errors,
        counts_partial: f.partial_in(window.start, end),
        downtime_secs,
        documented_downtime_secs: uptime.as_ref().map(|u| u.documented_secs),
        uptime_pct: uptime.as_ref().map(|u| u.worst_pct),
        response_figure,
        average_response_ms,
        p99_response_ms,
        cache_hit_pct,
        alerts_by_priority,
        still_firing,
        overall,
        go_live,
        recommendation,
    }
}

/// What the record does not cover: dropped buckets and transitions, unwatched intervals.
fn caveats(
    inputs: &Inputs,
    timeline_rows: &[TimelineCell],
    partial: &[PartialCount],
) -> Vec<String> {
    let meta = &inputs.meta;
    let mut caveats = Vec::new();
    for p in partial {
        caveats.push(format!(
            "{}; the error counts of that stretch are lower bounds",
            p.text
        ));
    }
    if inputs.dropped_full > 0 {
        caveats.push(format!(
            "{} figure buckets were not recorded: the record reached its size limit ({} MB)",
            inputs.dropped_full, meta.max_mb
        ));
    }
    if inputs.dropped_alert_events > 0 {
        caveats.push(format!(
            "{} alert transitions were not recorded (more than {} in the window)",
            inputs.dropped_alert_events,
            super::store::MAX_ALERT_EVENTS
        ));
    }
    let unwatched: Vec<&TimelineCell> = timeline_rows
        .iter()
        .filter(|c| c.state == "not watched")
        .collect();
    if !unwatched.is_empty() {
        caveats.push(format!(
            "watchpost recorded nothing in {} of the window's intervals ({})",
            unwatched.len(),
            unwatched
                .iter()
                .map(|c| format!("{}–{}", c.from, c.to))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    caveats
}

fn name_of<'a>(figures: &'a BTreeMap<String, String>, id: &'a str) -> &'a str {
    figures.get(id).map(String::as_str).unwrap_or(id)
}

/// How long each bucket of a figure stands for: until the next bucket with data, but no
/// longer than three typical gaps (or one bucket), so time watchpost was not running is not
/// read as up or down. The last bucket stands for one typical gap.
fn weighted(buckets: &[Bucket], bucket: i64) -> Vec<(&Bucket, f64)> {
    let mut gaps: Vec<i64> = buckets
        .windows(2)
        .map(|w| (w[1].t - w[0].t).num_seconds())
        .collect();
    gaps.sort_unstable();
    let typical = gaps.get(gaps.len() / 2).copied().unwrap_or(bucket).max(1);
    let cap = (3 * typical).max(bucket);
    buckets
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let d = match buckets.get(i + 1) {
                Some(next) => (next.t - b.t).num_seconds().min(cap),
                None => typical.min(cap),
            };
            (b, d.max(0) as f64)
        })
        .collect()
}

/// A service's name from its `up` figure ("api up" → "api").
fn service_name(figures: &BTreeMap<String, String>, id: &str) -> String {
    let name = name_of(figures, id);
    name.strip_suffix(" up").unwrap_or(name).to_string()
}

/// "ALL UP", or "ISSUES: api down 1m30s, worker unknown 30s".
fn service_status(
    services: &[&String],
    samples: &BTreeMap<String, Vec<Bucket>>,
    figures: &BTreeMap<String, String>,
    bucket: i64,
    silences: &[Silence],
    in_range: impl Fn(DateTime<Utc>) -> bool,
) -> String {
    if services.is_empty() {
        return "not measured (no service figures)".into();
    }
    let mut issues = Vec::new();
    for id in services {
        let (mut down, mut unknown, mut documented) = (0.0, 0.0, 0.0);
        for (b, d) in weighted(&samples[*id], bucket)
            .into_iter()
            .filter(|(b, _)| in_range(b.t))
        {
            let lost = match b.mean() {
                Some(mean) => {
                    down += (1.0 - mean.clamp(0.0, 1.0)) * d;
                    (1.0 - mean.clamp(0.0, 1.0)) * d
                }
                None => {
                    unknown += d;
                    d
                }
            };
            if silences.iter().any(|s| s.covers(id, b.t)) {
                documented += lost;
            }
        }
        let service = service_name(figures, id);
        if down > 0.0 {
            issues.push(format!("{service} down {}", span(down.round() as i64)));
        }
        if documented > 0.0 {
            issues.push(format!(
                "{} of it in a maintenance silence",
                span(documented.round() as i64)
            ));
        }
        if unknown > 0.0 {
            issues.push(format!(
                "{service} unknown {} (no data or source error)",
                span(unknown.round() as i64)
            ));
        }
    }
    if issues.is_empty() {
        "ALL UP".into()
    } else {
        format!("ISSUES: {}", issues.join(", "))
    }
}

/// "NORMAL (api health latency avg 12 ms, max 30 ms)" or "ISSUES: ...".
fn performance(
    latency: &[&String],
    samples: &BTreeMap<String, Vec<Bucket>>,
    figures: &BTreeMap<String, String>,
    in_range: impl Fn(DateTime<Utc>) -> bool,
) -> String {
    if latency.is_empty() {
        return "not measured (no latency figures)".into();
    }
    let mut parts = Vec::new();
    let mut issues = false;
    for id in latency {
        let buckets: Vec<&Bucket> = samples[*id].iter().filter(|b| in_range(b.t)).collect();
        let (sum, n): (f64, i64) = buckets
            .iter()
            .filter_map(|b| b.sum.map(|s| (s, b.n)))
            .fold((0.0, 0), |(s, n), (bs, bn)| (s + bs, n + bn));
        let max = buckets
            .iter()
            .filter_map(|b| b.max)
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
        let bad = buckets
            .iter()
            .any(|b| matches!(b.worst(), Some(Condition::Warn | Condition::Crit)));
        issues |= bad;
        let name = name_of(figures, id);
        match (n, max) {
            (n, Some(max)) if n > 0 => parts.push(format!(
                "{name} avg {}, max {}{}",
                format_number(sum / n as f64, "ms"),
                format_number(max, "ms"),
                if bad { ", over threshold" } else { "" }
            )),
            _ => parts.push(format!("{name} no values")),
        }
    }
    format!(
        "{} ({})",
        if issues { "ISSUES" } else { "NORMAL" },
        parts.join("; ")
    )
}

fn describe_incident(inc: &Incident, window: &Window, as_of: DateTime<Utc>) -> String {
    let conditions: Vec<&str> = inc.conditions.iter().map(|c| c.label()).collect();
    let until = match inc.resolved {
        Some(r) => format!(
            "{} to {} ({})",
            offset(inc.fired - window.start),
            offset(r - window.start),
            span((r - inc.fired).num_seconds())
        ),
        None => format!(
            "{} on, still firing ({})",
            offset(inc.fired - window.start),
            span((as_of - inc.fired).num_seconds())
        ),
    };
    let mut text = format!(
        "{} {} {} ({}) {}",
        inc.priority.label(),
        conditions.join("/"),
        inc.name,
        inc.value,
        until
    );
    if inc.silenced {
        text.push_str(", during a maintenance silence");
    }
    if inc.flapping {
        text.push_str(", flapping");
    }
    text
}

/// Service uptime over the window.
#[derive(Clone, Debug, PartialEq)]
struct Uptime {
    /// The lowest uptime of any service, documented downtime not counted against it.
    worst_pct: f64,
    worst_service: String,
    down_secs: i64,
    unknown_secs: i64,
    documented_secs: i64,
}

fn uptime(
    services: &[&String],
    samples: &BTreeMap<String, Vec<Bucket>>,
    figures: &BTreeMap<String, String>,
    bucket: i64,
    silences: &[Silence],
) -> Option<Uptime> {
    if services.is_empty() {
        return None;
    }
    let mut out = Uptime {
        worst_pct: 100.0,
        worst_service: String::new(),
        down_secs: 0,
        unknown_secs: 0,
        documented_secs: 0,
    };
    let (mut down_total, mut unknown_total, mut documented_total) = (0.0, 0.0, 0.0);
    for id in services {
        let (mut watched, mut bad) = (0.0, 0.0);
        for (b, d) in weighted(&samples[*id], bucket) {
            let lost = match b.mean() {
                Some(mean) => {
                    let down = (1.0 - mean.clamp(0.0, 1.0)) * d;
                    down_total += down;
                    down
                }
                None => {
                    unknown_total += d;
                    d
                }
            };
            watched += d;
            if silences.iter().any(|s| s.covers(id, b.t)) {
                documented_total += lost;
            } else {
                bad += lost;
            }
        }
        let pct = if watched > 0.0 {
            100.0 * (watched - bad) / watched
        } else {
            0.0
        };
        if pct < out.worst_pct || out.worst_service.is_empty() {
            out.worst_pct = pct;
            out.worst_service = service_name(figures, id);
        }
    }
    out.down_secs = down_total.round() as i64;
    out.unknown_secs = unknown_total.round() as i64;
    out.documented_secs = documented_total.round() as i64;
    Some(out)
}

/// A statistic over every bucket of the figures; `None` when there is no number.
fn stat(ids: &[&String], samples: &BTreeMap<String, Vec<Bucket>>, stat: Stat) -> Option<f64> {
    let buckets: Vec<&Bucket> = ids.iter().flat_map(|id| samples[*id].iter()).collect();
    match stat {
        Stat::Avg => {
            let (sum, n) = buckets
                .iter()
                .filter_map(|b| b.sum.map(|s| (s, b.n)))
                .fold((0.0, 0), |(s, n), (bs, bn)| (s + bs, n + bn));
            (n > 0).then(|| sum / n as f64)
        }
        Stat::Min => buckets.iter().filter_map(|b| b.min).reduce(f64::min),
        Stat::Max => buckets.iter().filter_map(|b| b.max).reduce(f64::max),
        Stat::Last => buckets
            .iter()
            .filter(|b| b.last.is_some())
            .max_by_key(|b| b.t)
            .and_then(|b| b.last),
        Stat::P95 | Stat::P99 => {
            let mut maxima: Vec<f64> = buckets.iter().filter_map(|b| b.max).collect();
            if maxima.is_empty() {
                return None;
            }
            maxima.sort_by(|a, b| a.total_cmp(b));
            let q = if stat == Stat::P95 { 0.95 } else { 0.99 };
            let rank = ((q * maxima.len() as f64).ceil() as usize).clamp(1, maxima.len());
            Some(maxima[rank - 1])
        }
        Stat::Worst => None,
    }
}

fn worst_condition(ids: &[&String], samples: &BTreeMap<String, Vec<Bucket>>) -> Option<Condition> {
    let bits = ids
        .iter()
        .flat_map(|id| samples[*id].iter())
        .fold(0, |acc, b| acc | b.seen);
    super::store::worst_condition(bits)
}

fn condition_rank(c: Condition) -> u8 {
    match c {
        Condition::Ok => 0,
        Condition::Warn => 1,
        Condition::NoData => 2,
        Condition::SourceError => 3,
        Condition::Crit => 4,
    }
}

fn judge_criterion(
    c: &Criterion,
    inputs: &Inputs,
    has_logs: bool,
    partial: &[PartialCount],
    uptime: &Option<Uptime>,
) -> CriterionResult {
    let not_measured = |why: &str, target: &str| CriterionResult {
        name: c.name.clone(),
        measure: c.measure.clone(),
        target: target.to_string(),
        measured: format!("not measured ({why})"),
        verdict: Verdict::NotMeasured,
    };
    let measure = match parse_measure(&c.measure) {
        Ok(m) => m,
        Err(e) => return not_measured(&e, c.target.as_deref().unwrap_or("")),
    };
    let default_target = match &measure {
        Measure::CriticalErrors | Measure::Errors => "== 0",
        Measure::Uptime => ">= 100",
        Measure::Figure {
            stat: Stat::Worst, ..
        } => "ok",
        _ => "",
    };
    let target = c.target.clone().unwrap_or_else(|| default_target.into());
    let threshold = |value: f64, measured: String| -> CriterionResult {
        match target.parse::<Threshold>() {
            Ok(t) => CriterionResult {
                name: c.name.clone(),
                measure: c.measure.clone(),
                target: target.clone(),
                measured,
                verdict: if t.holds(value) {
                    Verdict::Pass
                } else {
                    Verdict::Fail
                },
            },
            Err(e) => not_measured(&e, &target),
        }
    };
    let log_sum = |f: fn(&LogBucket) -> i64| inputs.logs.iter().map(f).sum::<i64>();
    match measure {
        Measure::Manual => not_measured("check by hand", "—"),
        Measure::CriticalErrors | Measure::Errors if !has_logs => {
            not_measured("no log source", &target)
        }
        Measure::CriticalErrors | Measure::Errors => {
            let n = if matches!(measure, Measure::CriticalErrors) {
                log_sum(|l| l.critical)
            } else {
                log_sum(|l| l.errors)
            };
            if partial.is_empty() {
                return threshold(n as f64, n.to_string());
            }
            // A lower bound: the verdict holds only if every count from `n` up gives it.
            let sources: Vec<&str> = partial.iter().map(|p| p.source.as_str()).collect();
            let measured = format!(
                "at least {n} ({} counted in part after a restart)",
                sources.join(", ")
            );
            match target.parse::<Threshold>() {
                Ok(t) => {
                    let holds = t.holds(n as f64);
                    let decided = match t.op {
                        Comparison::Less | Comparison::LessOrEqual | Comparison::Equal => !holds,
                        Comparison::Greater | Comparison::GreaterOrEqual => holds,
                        Comparison::NotEqual => n as f64 > t.limit,
                    };
                    if decided {
                        threshold(n as f64, measured)
                    } else {
                        CriterionResult {
                            name: c.name.clone(),
                            measure: c.measure.clone(),
                            target: target.clone(),
                            measured: format!("{measured}: not enough to judge {target}"),
                            verdict: Verdict::NotMeasured,
                        }
                    }
                }
                Err(e) => not_measured(&e, &target),
            }
        }
        Measure::Uptime => match uptime {
            None => not_measured("no service figures", &target),
            Some(u) => {
                let mut text = format!("{:.2}%", u.worst_pct);
                if u.worst_pct < 100.0 {
                    let _ = write!(text, " ({})", u.worst_service);
                }
                if u.documented_secs > 0 {
                    let _ = write!(
                        text,
                        ", plus {} documented maintenance",
                        span(u.documented_secs)
                    );
                }
                threshold(u.worst_pct, text)
            }
        },
        Measure::Figure { stat: s, pattern } => {
            let ids: Vec<&String> = if pattern == LATENCY {
                latency_figures(inputs)
            } else {
                inputs
                    .samples
                    .keys()
                    .filter(|k| glob_match(&pattern, k))
                    .collect()
            };
            if ids.is_empty() {
                return not_measured(&format!("no figure {pattern}"), &target);
            }
            if s == Stat::Worst {
                let Some(worst) = worst_condition(&ids, &inputs.samples) else {
                    return not_measured("no values", &target);
                };
                let allowed = match target.trim().to_ascii_lowercase().as_str() {
                    "ok" => Condition::Ok,
                    "warn" => Condition::Warn,
                    other => {
                        return not_measured(
                            &format!("target {other:?} for worst must be \"ok\" or \"warn\""),
                            &target,
                        );
                    }
                };
                let texts: Vec<String> = ids
                    .iter()
                    .flat_map(|id| inputs.samples[*id].iter())
                    .filter_map(|b| b.text.clone())
                    .collect();
                let mut measured = worst.label().to_string();
                if let Some(last) = texts.last() {
                    let _ = write!(measured, " (last {last:?})");
                }
                return CriterionResult {
                    name: c.name.clone(),
                    measure: c.measure.clone(),
                    target: target.clone(),
                    measured,
                    verdict: if condition_rank(worst) <= condition_rank(allowed) {
                        Verdict::Pass
                    } else {
                        Verdict::Fail
                    },
                };
            }
            // Each figure is judged on its own and the worst one decides, named in the
            // report: a pooled statistic would let a quiet figure hide a failing one.
            let Ok(limit) = target.parse::<Threshold>() else {
                return threshold(f64::NAN, String::new());
            };
            let values: Vec<(&String, f64)> = ids
                .iter()
                .filter_map(|id| Some((*id, in_ms(stat(&[id], &inputs.samples, s)?, inputs, id))))
                .collect();
            let worst = values.iter().copied().reduce(|a, b| {
                let (a_ok, b_ok) = (limit.holds(a.1), limit.holds(b.1));
                match (a_ok, b_ok) {
                    (true, false) => b,
                    (false, true) => a,
                    // Both pass or both fail: the one further on the failing side.
                    _ if limit.lower_is_worse() => {
                        if b.1 < a.1 {
                            b
                        } else {
                            a
                        }
                    }
                    _ => {
                        if b.1 > a.1 {
                            b
                        } else {
                            a
                        }
                    }
                }
            });
            match worst {
                Some((id, v)) => {
                    let unit = if is_latency(inputs, id) {
                        "ms"
                    } else {
                        unit_of(inputs, id)
                    };
                    let mut measured = format_number(v, unit);
                    let _ = write!(measured, " ({}", id.replace('`', "'"));
                    if values.len() > 1 {
                        let _ = write!(measured, ", worst of {}", values.len());
                    }
                    measured.push(')');
                    threshold(v, measured)
                }
                None => not_measured("no values", &target),
            }
        }
    }
}

/// Whether a source of the record had the TMWS pack: its figures are recorded on every
/// poll, failed or not, so their presence is the pack's.
fn has_tmws_pack(inputs: &Inputs) -> bool {
    inputs.figures.keys().any(|id| {
        crate::model::catalog::tmws::ALL
            .iter()
            .any(|f| f.is_key_of(id))
    })
}

/// The figure set `latency` in a measure ("p99 of latency"): every figure of a time
/// unit (ms or s) that measures responses — log metrics such as a p95 of `latency_ms`,
/// PromQL and SQL figures in ms or s — except database query timings (`*.query_ms`, their
/// own criterion); the health probes (`*.health_ms`) only when nothing else measures
/// latency, since a probe answers fast while the application's own requests are slow.
pub(crate) const LATENCY: &str = "latency";

fn is_latency(inputs: &Inputs, id: &str) -> bool {
    matches!(unit_of(inputs, id), "ms" | "s")
}

fn latency_figures(inputs: &Inputs) -> Vec<&String> {
    let timed: Vec<&String> = inputs
        .samples
        .keys()
        .filter(|k| is_latency(inputs, k) && !glob_match("*.query_ms", k))
        .collect();
    let (probes, others): (Vec<&String>, Vec<&String>) = timed
        .into_iter()
        .partition(|k| glob_match("*.health_ms", k));
    if others.is_empty() { probes } else { others }
}

/// A figure's unit: as recorded, else what its id suggests (records of older versions).
fn unit_of<'a>(inputs: &'a Inputs, id: &str) -> &'a str {
    match inputs.units.get(id).map(String::as_str) {
        Some(unit) if !unit.is_empty() => unit,
        _ if id.ends_with("_ms") => "ms",
        _ if id.ends_with("_pct") || id.contains("_pct_") => "%",
        _ => "",
    }
}

/// A latency in seconds as milliseconds, so figures in ms and s compare; others as they are.
fn in_ms(value: f64, inputs: &Inputs, id: &str) -> f64 {
    if unit_of(inputs, id) == "s" {
        value * 1000.0
    } else {
        value
    }
}

fn kpis(inputs: &Inputs, uptime: &Option<Uptime>) -> Vec<KpiRow> {
    let ids = |pattern: &str| -> Vec<&String> {
        inputs
            .samples
            .keys()
            .filter(|k| glob_match(pattern, k))
            .collect()
    };
    let range_status = |v: f64, on: (f64, f64), ok: (f64, f64)| -> String {
        if v >= on.0 && v <= on.1 {
            "on target".into()
        } else if v >= ok.0 && v <= ok.1 {
            "acceptable".into()
        } else {
            "out of range".into()
        }
    };
    let row = |metric: &str, target: &str, acceptable: &str| KpiRow {
        metric: metric.into(),
        target: target.into(),
        acceptable: acceptable.into(),
        measured: "—".into(),
        status: "not measured".into(),
    };
    let mut rows = Vec::new();

    let mut up = row("Uptime", "99.9%", "99% - 100%");
    if let Some(u) = uptime {
        up.measured = format!("{:.2}%", u.worst_pct);
        up.status = range_status(u.worst_pct, (99.9, 100.0), (99.0, 100.0));
    }
    rows.push(up);

    let mut deny = row("Permission Denial Rate", "5-15%", "0% - 20%");
    let deny_ids = ids("*.rbac.deny_pct_1h");
    if let (Some(avg), Some(max)) = (
        stat(&deny_ids, &inputs.samples, Stat::Avg),
        stat(&deny_ids, &inputs.samples, Stat::Max),
    ) {
        deny.measured = format!("avg {avg:.1}%, max {max:.1}%");
        deny.status = range_status(avg, (5.0, 15.0), (0.0, 20.0));
    }
    rows.push(deny);

    let mut validation = row("License Validation Success", "90%+", "85% - 100%");
    let failure_ids = ids("*.license.failure_pct_1h");
    if let (Some(avg), Some(max)) = (
        stat(&failure_ids, &inputs.samples, Stat::Avg),
        stat(&failure_ids, &inputs.samples, Stat::Max),
    ) {
        let success = 100.0 - avg;
        validation.measured = format!("avg {success:.1}%, lowest {:.1}%", 100.0 - max);
        validation.status = range_status(success, (90.0, 100.0), (85.0, 100.0));
    }
    rows.push(validation);

    let mut generation = row("License Generation Time", "<200ms", "50ms - 500ms");
    let gen_ids = ids("*.license.generation_ms");
    if let Some(avg) = stat(&gen_ids, &inputs.samples, Stat::Avg) {
        generation.measured = format!("avg {}", format_number(avg, "ms"));
        generation.status = range_status(avg, (0.0, 199.999), (50.0, 500.0));
    }
    rows.push(generation);

    let mut coverage = row("RBAC Audit Coverage", "100%", "95% - 100%");
    let cov_ids = ids("*.rbac.audit_coverage_pct");
    if let Some(min) = stat(&cov_ids, &inputs.samples, Stat::Min) {
        coverage.measured = format!("lowest {min:.1}%");
        coverage.status = range_status(min, (100.0, 100.0), (95.0, 100.0));
    }
    rows.push(coverage);

    let mut integrity = row("Database Integrity", "\"ok\"", "\"ok\" only");
    let int_ids = ids("*.db.integrity");
    if let Some(worst) = worst_condition(&int_ids, &inputs.samples) {
        let texts: Vec<String> = int_ids
            .iter()
            .flat_map(|id| inputs.samples[*id].iter())
            .filter_map(|b| b.text.clone())
            .filter(|t| t != "ok")
            .collect();
        integrity.measured = match texts.first() {
            None if worst == Condition::Ok => "\"ok\" throughout".into(),
            None => format!("{} at times", worst.label()),
            Some(t) => format!("{t:?} at times"),
        };
        integrity.status = if worst == Condition::Ok {
            "on target".into()
        } else {
            "out of range".into()
        };
    }
    rows.push(integrity);
    rows
}

fn escalation(incidents: &[Incident], as_of: DateTime<Utc>) -> Vec<EscalationRow> {
    let matrix = [
        (
            Priority::P0,
            "Service down, database corrupted, all validations failing",
            Duration::minutes(5),
            "5 minutes",
        ),
        (
            Priority::P1,
            ">50% permission denials, >50% validation failures",
            Duration::minutes(30),
            "30 minutes",
        ),
        (
            Priority::P2,
            "20-50% denials, 10-50% failures",
            Duration::hours(2),
            "2 hours",
        ),
        (
            Priority::P3,
            "<20% denials, <10% failures",
            Duration::days(1),
            "1 day",
        ),
    ];
    matrix
        .into_iter()
        .map(|(priority, condition, within, response)| {
            let mine: Vec<&Incident> = incidents
                .iter()
                .filter(|i| i.priority == priority && !i.silenced)
                .collect();
            let in_time = mine
                .iter()
                .filter(|i| {
                    let answered = i.acknowledged.or(i.resolved);
                    answered.is_some_and(|t| t - i.fired <= within)
                })
                .count();
            let slowest = mine
                .iter()
                .map(|i| match (i.acknowledged, i.resolved) {
                    (Some(a), _) => Some((a - i.fired).num_seconds()),
                    (None, Some(r)) => Some((r - i.fired).num_seconds()),
                    (None, None) => None,
                })
                .fold(None, |acc: Option<Option<i64>>, v| match (acc, v) {
                    (None, v) => Some(v),
                    (Some(None), _) | (_, None) => Some(None),
                    (Some(Some(a)), Some(b)) => Some(Some(a.max(b))),
                });
            let open_for = mine
                .iter()
                .filter(|i| i.acknowledged.is_none() && i.resolved.is_none())
                .map(|i| (as_of - i.fired).num_seconds())
                .max();
            EscalationRow {
                priority,
                condition: condition.into(),
                response: response.into(),
                alerts: mine.len(),
                acknowledged_in_time: in_time,
                slowest: match (slowest, open_for) {
                    (None, _) => "—".into(),
                    (Some(None), Some(open)) => {
                        format!("not acknowledged ({} open)", span(open))
                    }
                    (Some(None), None) => "not acknowledged".into(),
                    (Some(Some(s)), _) => span(s),
                },
            }
        })
        .collect()
}

/// Markdown-safe text: control sequences stripped, one line, Markdown specials escaped.
fn md(text: &str) -> String {
    let clean = crate::model::sanitize::sanitize(&text.replace(['\n', '\r', '\t'], " "));
    let mut out = String::with_capacity(clean.len());
    for c in clean.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn opt_count(n: Option<i64>) -> String {
    n.map(|n| n.to_string())
        .unwrap_or_else(|| "not measured (no log source)".into())
}

fn mark(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "✅ PASS",
        Verdict::Fail => "❌ FAIL",
        Verdict::NotMeasured => "— not measured",
    }
}

impl Report {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// The criteria a record was opened with (`meta.criteria`), or seed 003's.
pub fn recorded_criteria(meta: &RecordMeta) -> Vec<Criterion> {
    serde_json::from_value::<Vec<Criterion>>(meta.criteria.clone())
        .ok()
        .filter(|c| !c.is_empty())
        .unwrap_or_else(default_criteria)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_parse_or_say_why() {
        assert_eq!(parse_measure("uptime"), Ok(Measure::Uptime));
        assert_eq!(
            parse_measure("p99 of *.health_ms"),
            Ok(Measure::Figure {
                stat: Stat::P99,
                pattern: "*.health_ms".into()
            })
        );
        assert!(parse_measure("median of x").unwrap_err().contains("median"));
        assert!(parse_measure("speed").is_err());
        for c in default_criteria() {
            assert!(parse_measure(&c.measure).is_ok(), "{}", c.measure);
        }
    }

    #[test]
    fn percentiles_are_taken_over_bucket_maxima() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let buckets: Vec<Bucket> = (0..100)
            .map(|i| Bucket {
                t: t0 + Duration::seconds(i * 30),
                n: 1,
                min: Some(i as f64),
                max: Some(i as f64 + 1.0),
                sum: Some(i as f64),
                last: Some(i as f64),
                text: None,
                seen: 1,
            })
            .collect();
        let mut samples = BTreeMap::new();
        samples.insert("api.health_ms".to_string(), buckets);
        let id = "api.health_ms".to_string();
        let ids = vec![&id];
        assert_eq!(stat(&ids, &samples, Stat::P99), Some(99.0));
        assert_eq!(stat(&ids, &samples, Stat::P95), Some(95.0));
        assert_eq!(stat(&ids, &samples, Stat::Avg), Some(49.5));
        assert_eq!(stat(&ids, &samples, Stat::Max), Some(100.0));
        assert_eq!(stat(&ids, &samples, Stat::Last), Some(99.0));
    }

    #[test]
    fn markdown_is_escaped_and_stripped() {
        assert_eq!(md("a|b *x*\n\x1b[31mred"), "a\\|b \\*x\\* red");
    }

    #[test]
    fn offsets_and_spans() {
        assert_eq!(offset(Duration::hours(4)), "T+04:00");
        assert_eq!(offset(Duration::seconds(90)), "T+00:01:30");
        assert_eq!(span(45), "45s");
        assert_eq!(span(200), "3m20s");
        assert_eq!(span(3720), "1h02m");
    }
}
