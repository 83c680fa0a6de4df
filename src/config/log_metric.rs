//! `[[logs.NAME.metric]]`: a figure derived from a log source's lines, as the config writes
//! it, checked and compiled. Counting the lines is the log collector's work.

use crate::model::rule::{Priority, Rule, Threshold};
use regex::Regex;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

const MAX_WINDOW_MINUTES: i64 = 24 * 60;

/// One `[[logs.NAME.metric]]`, checked and compiled.
#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "RawMetric")]
pub struct LogMetric {
    pub id: String,
    pub name: String,
    pub kind: MetricKind,
    /// Whole minutes.
    pub window_minutes: i64,
    pub message: Option<Regex>,
    pub field: Option<String>,
    pub test: FieldTest,
    pub conditions: Vec<(String, String)>,
    pub unit: String,
    pub rule: Rule,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MetricKind {
    Count,
    /// Per minute.
    Rate,
    Percent,
    /// Nearest-rank percentile, 0 < p <= 100.
    Percentile(f64),
}

/// What `field` must hold, for the counting kinds.
#[derive(Clone, Debug)]
pub enum FieldTest {
    /// No test (no field, or a percentile's value field).
    None,
    Present,
    Equals(String),
    EqualsNumber(f64),
    Matches(Regex),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetric {
    id: String,
    #[serde(default)]
    name: Option<String>,
    kind: String,
    #[serde(default)]
    percentile: Option<f64>,
    #[serde(default)]
    window: Option<String>,
    #[serde(default, rename = "match")]
    message: Option<String>,
    #[serde(default)]
    field: Option<String>,
    #[serde(default)]
    equals: Option<Scalar>,
    #[serde(default)]
    matches: Option<String>,
    #[serde(default, rename = "where")]
    conditions: BTreeMap<String, Scalar>,
    #[serde(default)]
    unit: Option<String>,
    #[serde(default)]
    warn: Option<Threshold>,
    #[serde(default)]
    crit: Option<Threshold>,
    #[serde(default)]
    priority: Option<Priority>,
    #[serde(default)]
    min_samples: Option<u32>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Bool(b) => b.to_string(),
            Scalar::Int(n) => n.to_string(),
            Scalar::Float(n) => n.to_string(),
            Scalar::Text(s) => s.clone(),
        }
    }
}

impl MetricKind {
    /// How many samples in its window a figure of this kind needs before it is judged
    /// (`min_samples`, unless the metric or its `[rules."id"]` says otherwise):
    /// - a percentile: enough values that it is not just the largest one, 100/(100 − p),
    ///   and never fewer than 20 nor more than 100 (p50–p95: 20, p99: 100);
    /// - a percent: 20 lines of the source in the window (its denominator);
    /// - a rate: 5 matching lines in the window;
    /// - a count: none (a count is its own evidence: `crit = "> 0"` fires on one line).
    pub(crate) fn default_min_samples(self) -> Option<u32> {
        match self {
            MetricKind::Count => None,
            MetricKind::Rate => Some(5),
            MetricKind::Percent => Some(20),
            MetricKind::Percentile(p) => {
                let needed = if p >= 100.0 {
                    100.0
                } else {
                    (100.0 / (100.0 - p)).ceil()
                };
                Some(needed.clamp(20.0, 100.0) as u32)
            }
        }
    }
}

fn compile(what: &str, pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|e| {
        format!(
            "{what} {pattern:?} is not a valid regex: {}",
            e.to_string().lines().last().unwrap_or("").trim()
        )
    })
}

fn parse_kind(kind: &str, percentile: Option<f64>) -> Result<MetricKind, String> {
    let p = match kind.trim() {
        "count" => return Ok(MetricKind::Count),
        "rate" => return Ok(MetricKind::Rate),
        "percent" => return Ok(MetricKind::Percent),
        "percentile" => {
            percentile.ok_or("kind = \"percentile\" needs percentile = NN (for example 99.9)")?
        }
        other => match other.strip_prefix('p').and_then(|n| n.parse::<f64>().ok()) {
            Some(p) => p,
            None => {
                return Err(format!(
                    "kind {other:?} is not one of count, rate, percent, p50, p90, p95, p99, percentile"
                ));
            }
        },
    };
    if !(p > 0.0 && p <= 100.0) {
        return Err(format!("percentile {p} is not between 0 and 100"));
    }
    Ok(MetricKind::Percentile(p))
}

impl LogMetric {
    /// Its figure's id: `<source>.<id>`.
    pub fn figure_id(&self, source: &str) -> String {
        format!("{source}.{}", self.id)
    }
}

impl TryFrom<RawMetric> for LogMetric {
    type Error = String;

    fn try_from(raw: RawMetric) -> Result<Self, String> {
        let id = raw.id.trim().to_string();
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(format!(
                "metric id {:?} must be letters, digits, '_', '-' or '.'",
                raw.id
            ));
        }
        let kind = parse_kind(&raw.kind, raw.percentile)?;
        if raw.percentile.is_some() && raw.kind.trim() != "percentile" {
            return Err(format!(
                "metric {id}: percentile = … goes with kind = \"percentile\""
            ));
        }
        let window = raw.window.as_deref().unwrap_or("1h");
        let duration = humantime::parse_duration(window.trim()).map_err(|e| {
            format!("metric {id}: window {window:?} is not a duration like \"1h\": {e}")
        })?;
        let window_minutes = (duration.as_secs() as i64 + 59) / 60;
        if !(1..=MAX_WINDOW_MINUTES).contains(&window_minutes) || duration < Duration::from_secs(1)
        {
            return Err(format!(
                "metric {id}: window {window:?} must be between 1m and 24h"
            ));
        }
        let message = raw
            .message
            .as_deref()
            .map(|p| compile("match", p))
            .transpose()
            .map_err(|e| format!("metric {id}: {e}"))?;
        let field = raw.field.map(|f| f.trim().to_string());
        let percentile = matches!(kind, MetricKind::Percentile(_));
        if percentile && field.is_none() {
            return Err(format!(
                "metric {id}: a percentile needs field = \"…\", the field that holds the number"
            ));
        }
        if percentile && (raw.equals.is_some() || raw.matches.is_some()) {
            return Err(format!(
                "metric {id}: for a percentile, field names the number; choose its lines with match or where"
            ));
        }
        if raw.equals.is_some() && raw.matches.is_some() {
            return Err(format!("metric {id}: give equals or matches, not both"));
        }
        if field.is_none() && (raw.equals.is_some() || raw.matches.is_some()) {
            return Err(format!(
                "metric {id}: equals and matches test a field: add field = \"…\""
            ));
        }
        let test = match (&field, raw.equals, raw.matches) {
            (_, _, _) if percentile => FieldTest::None,
            (None, _, _) => FieldTest::None,
            (Some(_), Some(Scalar::Int(n)), _) => FieldTest::EqualsNumber(n as f64),
            (Some(_), Some(Scalar::Float(n)), _) => FieldTest::EqualsNumber(n),
            (Some(_), Some(other), _) => FieldTest::Equals(other.text()),
            (Some(_), None, Some(pattern)) => FieldTest::Matches(
                compile("matches", &pattern).map_err(|e| format!("metric {id}: {e}"))?,
            ),
            (Some(_), None, None) => FieldTest::Present,
        };
        let unit = raw.unit.unwrap_or_else(|| match kind {
            MetricKind::Count => String::new(),
            MetricKind::Rate => "/min".into(),
            MetricKind::Percent => "%".into(),
            MetricKind::Percentile(_) => {
                let f = field.as_deref().unwrap_or("").to_ascii_lowercase();
                if f.ends_with("_ms") || f.ends_with("millis") {
                    "ms".into()
                } else if f.ends_with("_s") || f.ends_with("_seconds") || f.ends_with("_secs") {
                    "s".into()
                } else {
                    String::new()
                }
            }
        });
        let window_text =
            humantime::format_duration(Duration::from_secs(window_minutes as u64 * 60)).to_string();
        let name = raw.name.unwrap_or_else(|| match kind {
            MetricKind::Count => format!("{id} ({window_text})"),
            MetricKind::Rate => format!("{id} per minute ({window_text})"),
            MetricKind::Percent => format!("{id} % of lines ({window_text})"),
            MetricKind::Percentile(p) => format!(
                "{} p{p} ({window_text})",
                field.as_deref().unwrap_or_default()
            ),
        });
        Ok(LogMetric {
            id,
            name,
            kind,
            window_minutes,
            message,
            field,
            test,
            conditions: raw
                .conditions
                .into_iter()
                .map(|(k, v)| (k, v.text()))
                .collect(),
            unit,
            rule: Rule {
                warn: raw.warn,
                crit: raw.crit,
                priority: raw.priority,
                min_samples: raw.min_samples.or(kind.default_min_samples()),
                ..Rule::default()
            },
        })
    }
}
