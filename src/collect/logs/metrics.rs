//! Figures derived from log lines, judged by the rules like any other figure: every
//! source's error counts (`NAME.errors_1h`, `NAME.errors_per_min`, see [`Derived`]), and
//! its `[[logs.NAME.metric]]` figures, each giving the reading `NAME.<id>`.
//!
//! ```toml
//! # Seed 002: tool timeouts over 10 an hour, any failed cleanup at once, latency p95.
//! [[logs.tmws.metric]]
//! id = "tool_timeouts_1h"
//! field = "outcome"
//! equals = "timeout"
//! kind = "count"
//! window = "1h"
//! warn = "> 10"
//!
//! [[logs.tmws.metric]]
//! id = "cleanup_failed_1h"
//! field = "monitoring_event"
//! equals = "SCHEDULER_CLEANUP_FAILED"
//! kind = "count"
//! crit = "> 0"
//! priority = "P1"
//!
//! [[logs.tmws.metric]]
//! id = "tool_latency_p95"
//! kind = "p95"
//! field = "latency_ms"
//! warn = "> 5000"
//! ```
//!
//! Which lines count: all of `match` (a regex on the message), `where` (a table of exact
//! field values), and, for `count`/`rate`/`percent`, `field` with `equals` (exact value;
//! a number compares as a number), with `matches` (a regex on the value), or alone (the
//! field is present). For a percentile, `field` names the number and lines without a
//! number there are skipped.
//!
//! Kinds: `count` (lines in the window), `rate` (lines per minute over the window),
//! `percent` (matching lines as a percentage of all the source's lines in the window),
//! `p50`/`p90`/`p95`/`p99`/`pNN` or `percentile` with `percentile = 99.9` (nearest rank).
//!
//! Windows are whole minutes (the current one plus the ones before it, as `errors_1h`),
//! from one minute to a day, by the lines' own timestamps. A percentile keeps at most
//! 2,048 values per minute (a uniform sample beyond that, weighted by the minute's count).

use crate::config::log_metric::{FieldTest, LogMetric, MetricKind};
use crate::model::figure::Reading;
use crate::model::update::LogLine;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// Values kept per minute for a percentile.
const SAMPLE_PER_MINUTE: usize = 2048;

/// A field of a line by name: exact, then ignoring case (journald upper-cases its
/// fields); `message` and `level` name the parsed message and level.
pub fn field<'a>(line: &'a LogLine, name: &str) -> Option<&'a str> {
    if let Some(v) = line.fields.get(name) {
        return Some(v);
    }
    if let Some((_, v)) = line
        .fields
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
    {
        return Some(v);
    }
    match name.to_ascii_lowercase().as_str() {
        "message" | "msg" => Some(&line.message),
        "level" => Some(line.level.label()),
        _ => None,
    }
}

impl LogMetric {
    fn selects(&self, line: &LogLine) -> bool {
        if let Some(re) = &self.message
            && !re.is_match(&line.message)
        {
            return false;
        }
        for (k, v) in &self.conditions {
            if field(line, k) != Some(v.as_str()) {
                return false;
            }
        }
        let value = || self.field.as_deref().and_then(|f| field(line, f));
        match &self.test {
            FieldTest::None => true,
            FieldTest::Present => value().is_some(),
            FieldTest::Equals(want) => value() == Some(want.as_str()),
            FieldTest::EqualsNumber(want) => value()
                .and_then(|v| v.trim().parse::<f64>().ok())
                .is_some_and(|v| v == *want),
            FieldTest::Matches(re) => value().is_some_and(|v| re.is_match(v)),
        }
    }

    /// The number a percentile reads from a line.
    fn number(&self, line: &LogLine) -> Option<f64> {
        let text = field(line, self.field.as_deref()?)?;
        let n: f64 = text.trim().trim_matches('"').parse().ok()?;
        n.is_finite().then_some(n)
    }
}

/// One minute of a metric.
#[derive(Clone, Debug, Default)]
struct Bucket {
    minute: i64,
    /// Lines that matched.
    hits: u64,
    /// Every line of the source (for `percent`).
    lines: u64,
    /// A percentile's values (a uniform sample of `hits` of them once over the cap).
    values: Vec<f64>,
}

/// The running state of one metric.
#[derive(Clone, Debug)]
pub(crate) struct MetricState {
    pub metric: LogMetric,
    buckets: VecDeque<Bucket>,
    /// For reservoir sampling.
    rng: u64,
}

impl MetricState {
    pub fn new(metric: LogMetric) -> Self {
        MetricState {
            metric,
            buckets: VecDeque::new(),
            rng: 0x853c_49e6_748f_ea9b,
        }
    }

    fn random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// Takes one line into account.
    pub(crate) fn observe(&mut self, line: &LogLine, now: DateTime<Utc>) {
        let current = now.timestamp().div_euclid(60);
        // A clock ahead of ours counts as now.
        let minute = line.at.min(now).timestamp().div_euclid(60);
        if minute <= current - self.metric.window_minutes {
            return;
        }
        let counts_all = self.metric.kind == MetricKind::Percent;
        let hit = self.metric.selects(line);
        let value = match self.metric.kind {
            MetricKind::Percentile(_) if hit => match self.metric.number(line) {
                Some(v) => Some(v),
                None => return,
            },
            _ => None,
        };
        if !hit && !counts_all {
            return;
        }
        let index = self.bucket(minute, current);
        let random = self.random();
        let bucket = &mut self.buckets[index];
        bucket.lines += 1;
        if hit {
            bucket.hits += 1;
            if let Some(v) = value {
                if bucket.values.len() < SAMPLE_PER_MINUTE {
                    bucket.values.push(v);
                } else {
                    // Reservoir sampling: the kept values stay a uniform sample of the minute.
                    let slot = (random % bucket.hits) as usize;
                    if slot < SAMPLE_PER_MINUTE {
                        bucket.values[slot] = v;
                    }
                }
            }
        }
    }

    /// The index of the bucket for `minute`, made if needed; old buckets are dropped.
    fn bucket(&mut self, minute: i64, current: i64) -> usize {
        let oldest = current - self.metric.window_minutes;
        while self.buckets.front().is_some_and(|b| b.minute <= oldest) {
            self.buckets.pop_front();
        }
        // Lines mostly come in order: look from the newest.
        match self.buckets.iter().rposition(|b| b.minute <= minute) {
            Some(i) if self.buckets[i].minute == minute => i,
            Some(i) => {
                self.buckets.insert(
                    i + 1,
                    Bucket {
                        minute,
                        ..Bucket::default()
                    },
                );
                i + 1
            }
            None => {
                self.buckets.push_front(Bucket {
                    minute,
                    ..Bucket::default()
                });
                0
            }
        }
    }

    /// The figure now.
    pub fn reading(&self, source: &str, now: DateTime<Utc>) -> Reading {
        let m = &self.metric;
        let current = now.timestamp().div_euclid(60);
        let live = || {
            self.buckets
                .iter()
                .filter(move |b| b.minute > current - m.window_minutes && b.minute <= current)
        };
        let hits: u64 = live().map(|b| b.hits).sum();
        let id = m.figure_id(source);
        let window = humantime::format_duration(Duration::from_secs(m.window_minutes as u64 * 60));
        let reading = match m.kind {
            MetricKind::Count => Reading::number(id, &m.name, hits as f64, &m.unit)
                .with_detail(format!("{hits} matching line{} in {window}", plural(hits))),
            MetricKind::Rate => {
                Reading::number(id, &m.name, hits as f64 / m.window_minutes as f64, &m.unit)
                    .with_detail(format!("{hits} matching line{} in {window}", plural(hits)))
                    .with_samples(hits)
            }
            MetricKind::Percent => {
                let lines: u64 = live().map(|b| b.lines).sum();
                if lines == 0 {
                    no_samples(id, &m.name, format!("no lines in {window}"))
                } else {
                    Reading::number(id, &m.name, 100.0 * hits as f64 / lines as f64, &m.unit)
                        .with_detail(format!("{hits} of {lines} lines in {window}"))
                        .with_samples(lines)
                }
            }
            MetricKind::Percentile(p) => {
                let mut weighted: Vec<(f64, f64)> = Vec::new();
                for b in live() {
                    if b.values.is_empty() {
                        continue;
                    }
                    let weight = b.hits as f64 / b.values.len() as f64;
                    weighted.extend(b.values.iter().map(|&v| (v, weight)));
                }
                match percentile(&mut weighted, p) {
                    Some(v) => Reading::number(id, &m.name, v, &m.unit)
                        .with_detail(format!("p{p} of {hits} value{} in {window}", plural(hits)))
                        .with_samples(hits),
                    None => no_samples(
                        id,
                        &m.name,
                        format!(
                            "no line with a number in {} in {window}",
                            m.field.as_deref().unwrap_or("")
                        ),
                    ),
                }
            }
        };
        reading.with_rule(m.rule.clone())
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Nothing to compute from is not a failure of the source, nor a zero: a text value that
/// the thresholds leave OK, saying why.
fn no_samples(id: String, name: &str, why: String) -> Reading {
    Reading::text(id, name, "no samples").with_detail(why)
}

/// Nearest-rank percentile of weighted values: the smallest value whose cumulative weight
/// reaches p% of the total.
fn percentile(values: &mut [(f64, f64)], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = values.iter().map(|(_, w)| w).sum();
    let target = (p / 100.0 * total).max(f64::MIN_POSITIVE);
    let mut seen = 0.0;
    for &(v, w) in values.iter() {
        seen += w;
        // A little slack for the rounding of fractional weights.
        if seen >= target - 1e-9 * total {
            return Some(v);
        }
    }
    values.last().map(|(v, _)| *v)
}

/// Every metric of one source.
#[derive(Clone, Debug, Default)]
pub(crate) struct LogMetrics {
    states: Vec<MetricState>,
}

impl LogMetrics {
    pub fn new(metrics: &[LogMetric]) -> Self {
        LogMetrics {
            states: metrics.iter().cloned().map(MetricState::new).collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    pub(crate) fn observe(&mut self, line: &LogLine, now: DateTime<Utc>) {
        for state in &mut self.states {
            state.observe(line, now);
        }
    }

    pub fn readings(&self, source: &str, now: DateTime<Utc>) -> Vec<Reading> {
        self.states.iter().map(|s| s.reading(source, now)).collect()
    }

    /// Readings that say why nothing could be computed.
    pub(crate) fn failed_readings(&self, source: &str, message: &str) -> Vec<Reading> {
        self.states
            .iter()
            .map(|s| {
                Reading::failed(s.metric.figure_id(source), &s.metric.name, message)
                    .with_unit(&s.metric.unit)
                    .with_rule(s.metric.rule.clone())
            })
            .collect()
    }
}

/// Minutes of error counts kept (one hour plus the current minute).
const MINUTES_KEPT: i64 = 61;

/// How much of the window the figures have read: the lines written before watchpost
/// started are read back from the files (see `source::files`) before a figure is a
/// number, and a read-back cut by its cap says so in every figure.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) enum Coverage {
    /// Every line of the window that the source holds has been counted.
    #[default]
    Complete,
    /// The read-back is under way: `read` bytes of at most `total`.
    ReadingBack { read: u64, total: u64 },
    /// The read-back, or a one-shot read, was cut: why, in a few words ("partial: last
    /// 512 MB of 3.1 GB").
    Partial(String),
}

/// What a figure shows while its window is being read back.
pub(crate) const READING_BACK: &str = "reading back";

/// Everything counted from one source's lines: its error counts (`NAME.errors_1h`,
/// `NAME.errors_per_min`) and its `[[logs.NAME.metric]]` figures.
pub(crate) struct Derived {
    errors: ErrorCounts,
    metrics: LogMetrics,
    pub coverage: Coverage,
}

impl Derived {
    pub fn new(metrics: &[LogMetric]) -> Self {
        Derived {
            errors: ErrorCounts::default(),
            metrics: LogMetrics::new(metrics),
            coverage: Coverage::Complete,
        }
    }

    /// How far back lines count in some figure: the hour of the error counts (and the
    /// minute being written), or the longest metric window.
    pub fn window(&self) -> chrono::Duration {
        let minutes = self
            .metrics
            .states
            .iter()
            .map(|s| s.metric.window_minutes)
            .chain([MINUTES_KEPT])
            .max()
            .unwrap_or(MINUTES_KEPT);
        chrono::Duration::minutes(minutes + 1)
    }

    /// Whether any `[[logs.NAME.metric]]` looks at the lines.
    pub(crate) fn has_metrics(&self) -> bool {
        !self.metrics.is_empty()
    }

    /// Counts one line (an error by the line's own time); `with_metrics` as
    /// [`Derived::has_metrics`] said for the batch.
    pub(crate) fn observe(&mut self, line: &LogLine, with_metrics: bool, now: DateTime<Utc>) {
        if line.is_error {
            self.errors.add(line.at, now);
        }
        if with_metrics {
            self.metrics.observe(line, now);
        }
    }

    /// The figures of `source` now: numbers once the window is read; "reading back"
    /// while it is being read; with the cut said in their detail if it was cut.
    pub fn readings(&self, source: &str, now: DateTime<Utc>) -> Vec<Reading> {
        let readings = self.counted(source, now);
        match &self.coverage {
            Coverage::Complete => readings,
            Coverage::ReadingBack { read, total } => readings
                .into_iter()
                .map(|r| {
                    Reading::text(r.id, r.name, READING_BACK)
                        .with_unit(&r.unit)
                        .with_detail(format!(
                            "the window's lines: {} of at most {} read",
                            crate::model::figure::format_bytes(*read as f64),
                            crate::model::figure::format_bytes(*total as f64)
                        ))
                })
                .collect(),
            Coverage::Partial(note) => readings
                .into_iter()
                .map(|mut r| {
                    r.detail = if r.detail.is_empty() {
                        note.clone()
                    } else {
                        format!("{note}; {}", r.detail)
                    };
                    r
                })
                .collect(),
        }
    }

    fn counted(&self, source: &str, now: DateTime<Utc>) -> Vec<Reading> {
        let mut readings = vec![
            Reading::number(
                errors_1h_id(source),
                "errors in the last hour",
                self.errors.last_hour(now) as f64,
                "",
            ),
            Reading::number(
                per_min_id(source),
                "errors per minute",
                self.errors.last_full_minute(now) as f64,
                "/min",
            ),
        ];
        readings.extend(self.metrics.readings(source, now));
        readings
    }

    /// Without any line to read, the counts are unknown rather than zero (`derived`: the
    /// source's counts, if it still has them, for its metrics' names).
    pub(crate) fn failed_readings(
        derived: Option<&Self>,
        source: &str,
        message: &str,
    ) -> Vec<Reading> {
        let mut readings = vec![
            Reading::failed(errors_1h_id(source), "errors in the last hour", message),
            Reading::failed(per_min_id(source), "errors per minute", message),
        ];
        if let Some(derived) = derived {
            readings.extend(derived.metrics.failed_readings(source, message));
        }
        readings
    }
}

fn errors_1h_id(source: &str) -> String {
    format!("{source}.errors_1h")
}

fn per_min_id(source: &str) -> String {
    format!("{source}.errors_per_min")
}

/// Error lines per minute (by the lines' own timestamps), for the last hour only.
#[derive(Default)]
struct ErrorCounts {
    per_minute: BTreeMap<i64, u64>,
}

impl ErrorCounts {
    fn add(&mut self, at: DateTime<Utc>, now: DateTime<Utc>) {
        // A clock ahead of ours counts as now.
        let minute = at.min(now).timestamp().div_euclid(60);
        let current = now.timestamp().div_euclid(60);
        if minute <= current - MINUTES_KEPT {
            return;
        }
        if let Some(n) = self.per_minute.get_mut(&minute) {
            *n += 1;
            return;
        }
        self.per_minute.insert(minute, 1);
        // Old minutes go when a new one comes (not on every line).
        self.per_minute.retain(|m, _| *m > current - MINUTES_KEPT);
    }

    /// Errors in the current minute and the 59 before it.
    fn last_hour(&self, now: DateTime<Utc>) -> u64 {
        let current = now.timestamp().div_euclid(60);
        self.per_minute
            .range(current - 59..=current)
            .map(|(_, n)| n)
            .sum()
    }

    fn last_full_minute(&self, now: DateTime<Utc>) -> u64 {
        let current = now.timestamp().div_euclid(60);
        self.per_minute.get(&(current - 1)).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::figure::{Severity, Value};
    use crate::model::rule::Priority;
    use crate::model::update::LogLevel;
    use crate::rules::judge;
    use serde::Deserialize;

    fn metric(toml_text: &str) -> LogMetric {
        #[derive(Deserialize)]
        struct One {
            metric: LogMetric,
        }
        toml::from_str::<One>(&format!("[metric]\n{toml_text}"))
            .unwrap_or_else(|e| panic!("{e}"))
            .metric
    }

    fn metric_err(toml_text: &str) -> String {
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct One {
            metric: LogMetric,
        }
        toml::from_str::<One>(&format!("[metric]\n{toml_text}"))
            .unwrap_err()
            .to_string()
    }

    fn line(at: DateTime<Utc>, message: &str, fields: &[(&str, &str)]) -> LogLine {
        LogLine {
            source: "tmws".into(),
            at,
            level: LogLevel::Info,
            message: message.into(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            is_error: false,
            tallied: false,
        }
    }

    fn severity(reading: &Reading) -> Severity {
        judge(reading, None)
    }

    fn number(reading: &Reading) -> f64 {
        match reading.value {
            Value::Number(n) => n,
            ref other => panic!("not a number: {other:?} ({})", reading.detail),
        }
    }

    #[test]
    fn seed_002_tool_timeouts_over_ten_an_hour() {
        let m = metric(
            r#"id = "tool_timeouts_1h"
               field = "outcome"
               equals = "timeout"
               kind = "count"
               window = "1h"
               warn = "> 10""#,
        );
        let mut s = MetricState::new(m);
        let now = Utc::now();
        for i in 0..10 {
            let at = now - chrono::Duration::minutes(5 * i);
            s.observe(
                &line(at, "Failed to call MCP tool", &[("outcome", "timeout")]),
                now,
            );
            s.observe(
                &line(at, "Tool outcome recorded", &[("outcome", "success")]),
                now,
            );
        }
        // Two hours ago: outside the window.
        s.observe(
            &line(
                now - chrono::Duration::hours(2),
                "x",
                &[("outcome", "timeout")],
            ),
            now,
        );
        let r = s.reading("tmws", now);
        assert_eq!(r.id, "tmws.tool_timeouts_1h");
        assert_eq!(number(&r), 10.0);
        assert_eq!(severity(&r), Severity::Ok);
        s.observe(&line(now, "again", &[("outcome", "timeout")]), now);
        let r = s.reading("tmws", now);
        assert_eq!(number(&r), 11.0);
        assert_eq!(severity(&r), Severity::Warn);
        // An hour later the window has moved on.
        let later = now + chrono::Duration::minutes(61);
        assert_eq!(number(&s.reading("tmws", later)), 0.0);
    }

    #[test]
    fn seed_002_any_cleanup_failure_is_critical_at_once() {
        let m = metric(
            r#"id = "cleanup_failed"
               field = "monitoring_event"
               equals = "SCHEDULER_CLEANUP_FAILED"
               kind = "count"
               crit = "> 0"
               priority = "P1""#,
        );
        assert_eq!(m.window_minutes, 60);
        let mut s = MetricState::new(m);
        let now = Utc::now();
        s.observe(
            &line(
                now,
                "cleanup done",
                &[("monitoring_event", "SCHEDULER_CLEANUP_SUCCESS")],
            ),
            now,
        );
        assert_eq!(severity(&s.reading("tmws", now)), Severity::Ok);
        s.observe(
            &line(
                now,
                "Scheduled expiration cleanup failed",
                &[("monitoring_event", "SCHEDULER_CLEANUP_FAILED")],
            ),
            now,
        );
        let r = s.reading("tmws", now);
        assert_eq!(severity(&r), Severity::Crit);
        assert_eq!(
            r.default_rule.as_ref().unwrap().priority,
            Some(Priority::P1)
        );
    }

    #[test]
    fn seed_002_latency_p95_over_5000_ms() {
        let m = metric(
            r#"id = "tool_latency_p95"
               kind = "p95"
               field = "latency_ms"
               warn = "> 5000""#,
        );
        assert_eq!(m.unit, "ms");
        let mut s = MetricState::new(m);
        let now = Utc::now();
        // 1..=100 ms: p95 is 95.
        for v in 1..=100 {
            s.observe(&line(now, "ok", &[("latency_ms", &format!("{v}.0"))]), now);
        }
        // Lines without the field, or with text in it, are skipped.
        s.observe(&line(now, "no latency", &[]), now);
        s.observe(&line(now, "bad", &[("latency_ms", "n/a")]), now);
        let r = s.reading("tmws", now);
        assert_eq!(number(&r), 95.0);
        assert_eq!(severity(&r), Severity::Ok);
        // Six slow calls in 106 make the p95 slow.
        for _ in 0..6 {
            s.observe(&line(now, "slow", &[("latency_ms", "45000.5")]), now);
        }
        let r = s.reading("tmws", now);
        assert_eq!(number(&r), 45000.5);
        assert_eq!(severity(&r), Severity::Warn);
    }

    #[test]
    fn seed_001_response_time_p95_warn_3s_crit_10s() {
        let m = metric(
            r#"id = "response_p95"
               kind = "p95"
               field = "response_time_ms"
               window = "15m"
               warn = "> 3000"
               crit = "> 10000""#,
        );
        let mut s = MetricState::new(m);
        let now = Utc::now();
        let feed = |s: &mut MetricState, fast: u32, slow: u32, slow_ms: &str| {
            for _ in 0..fast {
                s.observe(&line(now, "GET /api", &[("response_time_ms", "120")]), now);
            }
            for _ in 0..slow {
                s.observe(
                    &line(now, "GET /api", &[("response_time_ms", slow_ms)]),
                    now,
                );
            }
        };
        feed(&mut s, 100, 0, "0");
        assert_eq!(severity(&s.reading("f", now)), Severity::Ok);
        feed(&mut s, 0, 10, "4000");
        assert_eq!(severity(&s.reading("f", now)), Severity::Warn);
        feed(&mut s, 0, 20, "12000");
        let r = s.reading("f", now);
        assert_eq!(number(&r), 12000.0);
        assert_eq!(severity(&r), Severity::Crit);
    }

    #[test]
    fn percentile_is_sampled_beyond_the_cap_and_stays_close() {
        let m = metric(
            r#"id = "p99"
               kind = "percentile"
               percentile = 99.0
               field = "v""#,
        );
        let mut s = MetricState::new(m);
        let now = Utc::now();
        // 50,000 values 0..50,000 in one minute (shuffled by a stride).
        for i in 0..50_000u64 {
            let v = (i * 7919) % 50_000;
            s.observe(&line(now, "x", &[("v", &v.to_string())]), now);
        }
        assert!(s.buckets[0].values.len() <= SAMPLE_PER_MINUTE);
        let p99 = number(&s.reading("x", now));
        assert!((p99 - 49_500.0).abs() < 500.0, "{p99}");
    }

    #[test]
    fn rate_percent_match_and_where() {
        let now = Utc::now();
        let rate = metric(
            r#"id = "fails"
kind = "rate"
window = "10m"
match = "(?i)failed""#,
        );
        let mut s = MetricState::new(rate);
        for _ in 0..30 {
            s.observe(&line(now, "Request FAILED", &[]), now);
            s.observe(&line(now, "fine", &[]), now);
        }
        let r = s.reading("x", now);
        assert_eq!(number(&r), 3.0);
        assert_eq!(r.unit, "/min");

        let pct = metric(
            r#"id = "5xx_pct"
               kind = "percent"
               field = "status"
               matches = "^5"
               where = { method = "GET" }
               crit = "> 5"
               min_samples = 6"#,
        );
        let mut s = MetricState::new(pct);
        assert_eq!(s.reading("x", now).value, Value::Text("no samples".into()));
        assert_eq!(severity(&s.reading("x", now)), Severity::Ok);
        for status in ["200", "200", "503", "404", "500"] {
            s.observe(
                &line(now, "req", &[("status", status), ("method", "GET")]),
                now,
            );
        }
        s.observe(
            &line(now, "req", &[("status", "500"), ("method", "POST")]),
            now,
        );
        let r = s.reading("x", now);
        // Two GET 5xx among six lines.
        assert!((number(&r) - 100.0 * 2.0 / 6.0).abs() < 1e-9);
        assert_eq!(severity(&r), Severity::Crit);

        let numeric = metric(
            r#"id = "s"
kind = "count"
field = "status"
equals = 500"#,
        );
        let mut s = MetricState::new(numeric);
        s.observe(&line(now, "r", &[("status", "500")]), now);
        s.observe(&line(now, "r", &[("status", "500.0")]), now);
        s.observe(&line(now, "r", &[("status", "200")]), now);
        assert_eq!(number(&s.reading("x", now)), 2.0);

        // Field names ignore case (journald's are upper case); message and level work.
        let m = metric(
            r#"id = "e"
kind = "count"
field = "level"
equals = "ERROR""#,
        );
        let mut s = MetricState::new(m);
        let mut l = line(now, "x", &[("MONITORING_EVENT", "X")]);
        l.level = LogLevel::Error;
        s.observe(&l, now);
        assert_eq!(number(&s.reading("x", now)), 1.0);
        assert_eq!(field(&l, "monitoring_event"), Some("X"));
    }

    #[test]
    fn bad_metric_configs_say_what_is_wrong() {
        let cases = [
            (
                r#"id = "x"
kind = "avg""#,
                "is not one of",
            ),
            (
                r#"id = "x"
kind = "p95""#,
                "needs field",
            ),
            (
                r#"id = "x"
kind = "p95"
field = "a"
equals = "b""#,
                "choose its lines",
            ),
            (
                r#"id = "x"
kind = "count"
equals = "b""#,
                "add field",
            ),
            (
                r#"id = "x"
kind = "count"
match = "(""#,
                "not a valid regex",
            ),
            (
                r#"id = "x"
kind = "count"
window = "3d""#,
                "between 1m and 24h",
            ),
            (
                r#"id = "x"
kind = "count"
window = "soon""#,
                "not a duration",
            ),
            (
                r#"id = "x y"
kind = "count""#,
                "must be letters",
            ),
            (
                r#"id = "x"
kind = "percentile""#,
                "percentile = NN",
            ),
            (
                r#"id = "x"
kind = "p101"
field = "a""#,
                "between 0 and 100",
            ),
            (
                r#"id = "x"
kind = "count"
warn = "20""#,
                "must start with",
            ),
            (
                r#"id = "x"
kind = "count"
colour = "red""#,
                "unknown field",
            ),
        ];
        for (text, want) in cases {
            let err = metric_err(text);
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn out_of_order_lines_land_in_their_minute() {
        let m = metric(
            r#"id = "c"
kind = "count"
window = "5m""#,
        );
        let mut s = MetricState::new(m);
        let now = Utc::now();
        for back in [0, 3, 1, 4, 2, 3, 10] {
            s.observe(&line(now - chrono::Duration::minutes(back), "x", &[]), now);
        }
        let minutes: Vec<i64> = s.buckets.iter().map(|b| b.minute).collect();
        assert!(minutes.windows(2).all(|w| w[0] < w[1]), "{minutes:?}");
        assert_eq!(number(&s.reading("x", now)), 6.0);
    }

    #[test]
    fn error_counts_by_minute() {
        let mut counts = ErrorCounts::default();
        let now = DateTime::parse_from_rfc3339("2025-12-12T10:30:30Z")
            .unwrap()
            .with_timezone(&Utc);
        counts.add(now, now);
        counts.add(now - chrono::Duration::minutes(1), now);
        counts.add(now - chrono::Duration::minutes(1), now);
        counts.add(now - chrono::Duration::minutes(59), now);
        counts.add(now - chrono::Duration::minutes(61), now); // too old
        counts.add(now + chrono::Duration::minutes(5), now); // ahead: counts as now
        assert_eq!(counts.last_hour(now), 5);
        assert_eq!(counts.last_full_minute(now), 2);
        let later = now + chrono::Duration::minutes(30);
        assert_eq!(counts.last_hour(later), 4);
        assert_eq!(counts.last_full_minute(later), 0);
        assert!(counts.per_minute.len() <= MINUTES_KEPT as usize);
    }
}
