//! Figures: the named numbers (or texts) every collector produces and every pane shows.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// How bad a figure is. The order of `rank` is the order of "worst":
/// a critical figure outranks an unknown one, which outranks a warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Ok,
    Warn,
    Crit,
    Unknown,
}

impl Severity {
    pub fn rank(self) -> u8 {
        match self {
            Severity::Ok => 0,
            Severity::Warn => 1,
            Severity::Unknown => 2,
            Severity::Crit => 3,
        }
    }

    pub fn worst(self, other: Severity) -> Severity {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }

    /// Nagios plugin convention, used by `watchpost check`.
    pub fn exit_code(self) -> i32 {
        match self {
            Severity::Ok => 0,
            Severity::Warn => 1,
            Severity::Crit => 2,
            Severity::Unknown => 3,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Severity::Ok => "OK",
            Severity::Warn => "WARN",
            Severity::Crit => "CRIT",
            Severity::Unknown => "UNKNOWN",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Warn => "warn",
            Severity::Crit => "crit",
            Severity::Unknown => "unknown",
        }
    }

    /// A symbol that carries the severity without colour (NO_COLOR, monochrome).
    pub fn symbol(self) -> &'static str {
        match self {
            Severity::Ok => "✓",
            Severity::Warn => "▲",
            Severity::Crit => "✖",
            Severity::Unknown => "?",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A figure's value as JSON shows it: a number, a string or null. A number that is not
/// finite (a PromQL `0/0`) is written as "NaN", "+Inf" or "-Inf", never as a missing value.
#[derive(Clone, Debug, PartialEq, Deserialize, Default)]
#[serde(untagged)]
pub enum Value {
    Number(f64),
    Text(String),
    #[default]
    None,
}

impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Number(n) if n.is_finite() => s.serialize_f64(*n),
            Value::Number(n) => s.serialize_str(&format_number(*n, "")),
            Value::Text(t) => s.serialize_str(t),
            Value::None => s.serialize_none(),
        }
    }
}

impl Value {
    /// The number rounded to [`json_decimals`] of its unit; texts and none unchanged.
    pub(crate) fn rounded_for(&self, unit: &str) -> Value {
        match self {
            Value::Number(n) if n.is_finite() => {
                let scale = 10f64.powi(json_decimals(unit));
                let rounded = (n * scale).round() / scale;
                // Past 2^53 / scale the multiplication itself loses digits: keep the number.
                Value::Number(if rounded.is_finite() && n.abs() < 1e12 {
                    rounded
                } else {
                    *n
                })
            }
            other => other.clone(),
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) if n.is_finite() => Some(*n),
            _ => None,
        }
    }

    /// The value as a short display string with its unit.
    pub fn display(&self, unit: &str) -> String {
        match self {
            Value::Number(n) => format_number(*n, unit),
            Value::Text(t) => t.clone(),
            Value::None => "—".to_string(),
        }
    }
}

/// Formats a number with its unit the way the panes show it.
pub(crate) fn format_number(n: f64, unit: &str) -> String {
    if n.is_nan() {
        return "NaN".into();
    }
    if n.is_infinite() {
        return if n > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    match unit {
        "%" => format!("{n:.1}%"),
        "bytes" => format_bytes(n),
        "ms" => format!("{n:.0} ms"),
        "s" => format!("{n:.2} s"),
        "MB" => format!("{n:.1} MB"),
        _ if n.fract() == 0.0 && n.abs() < 1e15 => {
            if unit.is_empty() {
                format!("{}", n as i64)
            } else {
                format!("{} {unit}", n as i64)
            }
        }
        _ if unit.is_empty() => format!("{n:.2}"),
        _ => format!("{n:.2} {unit}"),
    }
}

/// Decimals a figure's number keeps in `check`'s JSON: one more than the panes show,
/// so the JSON says what the screen says and nothing of a float's noise.
pub(crate) fn json_decimals(unit: &str) -> i32 {
    match unit {
        "%" => 2,
        "ms" => 1,
        "s" => 3,
        "MB" => 2,
        "bytes" => 0,
        _ => 3,
    }
}

/// Binary units, like `docker stats` (KiB, MiB, GiB).
pub(crate) fn format_bytes(n: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n.max(0.0);
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// One reading of one figure, as a collector produces it, before rules give it a severity.
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    /// Stable id: `<source name>.<figure>`.
    pub id: String,
    /// Human name shown in panes and `check`.
    pub name: String,
    pub value: Value,
    pub unit: String,
    pub detail: String,
    /// Why the figure could not be read (the figure is then `unknown`).
    pub error: Option<String>,
    /// Thresholds that come with the figure (a pack's defaults); config rules override them.
    pub default_rule: Option<crate::model::rule::Rule>,
    /// How many samples a statistical value was computed from (the values under a
    /// percentile, the lines under a percent); `None` for a figure that is not a statistic.
    /// A rule's `min_samples` keeps a value from too few of them from being judged.
    pub samples: Option<u64>,
}

impl Reading {
    pub fn number(id: impl Into<String>, name: impl Into<String>, value: f64, unit: &str) -> Self {
        Reading {
            id: id.into(),
            name: name.into(),
            value: Value::Number(value),
            unit: unit.into(),
            detail: String::new(),
            error: None,
            default_rule: None,
            samples: None,
        }
    }

    pub fn text(id: impl Into<String>, name: impl Into<String>, value: impl Into<String>) -> Self {
        Reading {
            id: id.into(),
            name: name.into(),
            value: Value::Text(value.into()),
            unit: String::new(),
            detail: String::new(),
            error: None,
            default_rule: None,
            samples: None,
        }
    }

    pub fn failed(
        id: impl Into<String>,
        name: impl Into<String>,
        error: impl Into<String>,
    ) -> Self {
        Reading {
            id: id.into(),
            name: name.into(),
            value: Value::None,
            unit: String::new(),
            detail: String::new(),
            error: Some(error.into()),
            default_rule: None,
            samples: None,
        }
    }

    pub(crate) fn with_unit(mut self, unit: &str) -> Self {
        self.unit = unit.into();
        self
    }

    pub(crate) fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    pub fn with_rule(mut self, rule: crate::model::rule::Rule) -> Self {
        self.default_rule = Some(rule);
        self
    }

    /// The value is a statistic over `samples` samples (see [`Reading::samples`]).
    pub(crate) fn with_samples(mut self, samples: u64) -> Self {
        self.samples = Some(samples);
        self
    }
}

/// A figure as it stands now: a reading judged by the rules.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Figure {
    pub id: String,
    pub name: String,
    pub value: Value,
    pub unit: String,
    pub severity: Severity,
    pub detail: String,
    pub error: Option<String>,
    #[serde(skip)]
    pub at: DateTime<Utc>,
}

impl Figure {
    pub(crate) fn display_value(&self) -> String {
        self.value.display(&self.unit)
    }
}
