//! Rules as the config writes them: a threshold such as `> 20`, the runbooks' P0–P3
//! priority, and how long a condition must hold. The judging over time lives in `rules`.

use super::figure::{Severity, Value};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A comparison against a number, written as in the runbooks: `> 20`, `<= 0.5`, `== 0`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Threshold {
    pub op: Comparison,
    pub limit: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Comparison {
    Greater,
    GreaterOrEqual,
    Less,
    LessOrEqual,
    Equal,
    NotEqual,
}

impl Comparison {
    fn symbol(self) -> &'static str {
        match self {
            Comparison::Greater => ">",
            Comparison::GreaterOrEqual => ">=",
            Comparison::Less => "<",
            Comparison::LessOrEqual => "<=",
            Comparison::Equal => "==",
            Comparison::NotEqual => "!=",
        }
    }
}

impl Threshold {
    pub const fn new(op: Comparison, limit: f64) -> Self {
        Threshold { op, limit }
    }

    pub const fn above(limit: f64) -> Self {
        Threshold::new(Comparison::Greater, limit)
    }

    pub const fn below(limit: f64) -> Self {
        Threshold::new(Comparison::Less, limit)
    }

    /// Whether a lower value is the worse one under this threshold (`> 85`: a hit rate).
    pub(crate) fn lower_is_worse(&self) -> bool {
        matches!(self.op, Comparison::Greater | Comparison::GreaterOrEqual)
    }

    pub fn holds(&self, value: f64) -> bool {
        match self.op {
            Comparison::Greater => value > self.limit,
            Comparison::GreaterOrEqual => value >= self.limit,
            Comparison::Less => value < self.limit,
            Comparison::LessOrEqual => value <= self.limit,
            Comparison::Equal => value == self.limit,
            Comparison::NotEqual => value != self.limit,
        }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op.symbol(), self.limit)
    }
}

impl FromStr for Threshold {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        // Longest operators first so ">=" is not read as ">" followed by "=5".
        let ops = [
            (">=", Comparison::GreaterOrEqual),
            ("<=", Comparison::LessOrEqual),
            ("==", Comparison::Equal),
            ("!=", Comparison::NotEqual),
            (">", Comparison::Greater),
            ("<", Comparison::Less),
            ("=", Comparison::Equal),
        ];
        for (symbol, op) in ops {
            if let Some(rest) = text.strip_prefix(symbol) {
                let rest = rest.trim().trim_end_matches('%').trim();
                let limit: f64 = rest.parse().map_err(|_| {
                    format!("threshold {text:?}: {rest:?} is not a number (write it like \"> 20\")")
                })?;
                return Ok(Threshold { op, limit });
            }
        }
        Err(format!(
            "threshold {text:?} must start with one of > >= < <= == != (for example \"> 20\")"
        ))
    }
}

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The escalation matrix of seed 000.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Priority {
    P0,
    P1,
    P2,
    P3,
}

impl Priority {
    pub fn label(self) -> &'static str {
        match self {
            Priority::P0 => "P0",
            Priority::P1 => "P1",
            Priority::P2 => "P2",
            Priority::P3 => "P3",
        }
    }
}

/// Thresholds for one figure.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(default)]
    pub warn: Option<Threshold>,
    #[serde(default)]
    pub crit: Option<Threshold>,
    /// A text value that is OK; any other text is critical (e.g. `PRAGMA integrity_check` = "ok").
    #[serde(default)]
    pub expect: Option<String>,
    /// Priority when critical (default P1); a warning is one step lower.
    #[serde(default)]
    pub priority: Option<Priority>,
    /// How long the condition must hold before the alert fires (`for = "2m"`); until then
    /// the alert is pending. Once firing it follows the value at once.
    #[serde(default, rename = "for", with = "opt_duration")]
    pub for_duration: Option<Duration>,
    /// How many bad readings in a row before the alert fires (default 1).
    #[serde(default)]
    pub min_failures: Option<u32>,
    /// No reading for this long means "no data" (default: three reading intervals, at
    /// least 15 s).
    #[serde(default, with = "opt_duration")]
    pub no_data_after: Option<Duration>,
    /// A statistic (a percentile, a percent, a rate) computed from fewer samples than this
    /// is shown but not judged: it cannot fire. Defaults per kind of figure (see the
    /// README); a figure that says nothing of its samples is always judged.
    #[serde(default)]
    pub min_samples: Option<u32>,
    /// The figure this one depends on (`api.health_ms` on `api.up`): while that one is
    /// not OK, this one's alert folds into it instead of ringing on its own.
    #[serde(default)]
    pub depends_on: Option<String>,
}

impl Rule {
    pub fn warn_crit(warn: Threshold, crit: Threshold) -> Self {
        Rule {
            warn: Some(warn),
            crit: Some(crit),
            ..Rule::default()
        }
    }

    pub fn crit_only(crit: Threshold) -> Self {
        Rule {
            crit: Some(crit),
            ..Rule::default()
        }
    }

    pub(crate) fn warn_only(warn: Threshold) -> Self {
        Rule {
            warn: Some(warn),
            ..Rule::default()
        }
    }

    pub fn expecting(text: &str) -> Self {
        Rule {
            expect: Some(text.into()),
            ..Rule::default()
        }
    }

    pub fn with_priority(mut self, priority: Priority) -> Self {
        self.priority = Some(priority);
        self
    }

    /// The condition must hold this long before the alert fires.
    pub fn held_for(mut self, duration: Duration) -> Self {
        self.for_duration = Some(duration);
        self
    }

    /// This many bad readings in a row before the alert fires.
    #[cfg(test)]
    pub(crate) fn after_failures(mut self, count: u32) -> Self {
        self.min_failures = Some(count);
        self
    }

    /// No reading for this long is "no data".
    #[cfg(test)]
    pub(crate) fn no_data_after(mut self, duration: Duration) -> Self {
        self.no_data_after = Some(duration);
        self
    }

    /// A statistic needs at least this many samples before it is judged.
    pub(crate) fn needing_samples(mut self, count: u32) -> Self {
        self.min_samples = Some(count);
        self
    }

    /// While figure `id` is not OK, this one's alert folds into it.
    pub(crate) fn depending_on(mut self, id: impl Into<String>) -> Self {
        self.depends_on = Some(id.into());
        self
    }

    /// `Some((samples, needed))` when `reading` is a statistic over fewer samples than
    /// this rule's `min_samples`: its value is shown but not judged.
    pub(crate) fn lacks_samples(&self, reading: &super::figure::Reading) -> Option<(u64, u32)> {
        let needed = self.min_samples?;
        let samples = reading.samples?;
        (samples < u64::from(needed)).then_some((samples, needed))
    }

    /// This rule (the configured one) with what it leaves unsaid taken from `default` (a
    /// pack's or collector's rule for the same figure): the samples a statistic needs and
    /// the figure it depends on are facts about the figure, not thresholds, so a user who
    /// sets only `warn` keeps them.
    pub fn over(mut self, default: Option<&Rule>) -> Rule {
        if let Some(default) = default {
            if self.min_samples.is_none() {
                self.min_samples = default.min_samples;
            }
            if self.depends_on.is_none() {
                self.depends_on = default.depends_on.clone();
            }
        }
        self
    }

    /// The severity of a value under this rule. A missing value is unknown, never OK.
    pub fn judge(&self, value: &Value) -> Severity {
        match value {
            Value::None => Severity::Unknown,
            Value::Number(n) if !n.is_finite() => Severity::Unknown,
            Value::Number(n) => {
                if self.crit.is_some_and(|t| t.holds(*n)) {
                    Severity::Crit
                } else if self.warn.is_some_and(|t| t.holds(*n)) {
                    Severity::Warn
                } else {
                    Severity::Ok
                }
            }
            Value::Text(text) => match &self.expect {
                Some(expected) if text.trim() != expected => Severity::Crit,
                _ => Severity::Ok,
            },
        }
    }

    /// Priority of an alert at this severity: seed 000's matrix, P1 for critical by default.
    pub fn priority_for(&self, severity: Severity) -> Option<Priority> {
        let crit = self.priority.unwrap_or(Priority::P1);
        match severity {
            Severity::Ok => None,
            Severity::Crit => Some(crit),
            Severity::Warn | Severity::Unknown => Some(match crit {
                Priority::P0 => Priority::P1,
                Priority::P1 => Priority::P2,
                _ => Priority::P3,
            }),
        }
    }

    /// A one-line description of the thresholds, for `validate` and the help.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(w) = self.warn {
            parts.push(format!("warn {w}"));
        }
        if let Some(c) = self.crit {
            parts.push(format!("crit {c}"));
        }
        if let Some(e) = &self.expect {
            parts.push(format!("expect {e:?}"));
        }
        if let Some(p) = self.priority {
            parts.push(format!("priority {}", p.label()));
        }
        if let Some(d) = self.for_duration {
            parts.push(format!("for {}", humantime::format_duration(d)));
        }
        if let Some(n) = self.min_failures {
            parts.push(format!("after {n} failed readings"));
        }
        if let Some(d) = self.no_data_after {
            parts.push(format!("no data after {}", humantime::format_duration(d)));
        }
        if let Some(n) = self.min_samples {
            parts.push(format!("judged from {n} samples"));
        }
        if let Some(id) = &self.depends_on {
            parts.push(format!("folds into {id} while it is not OK"));
        }
        parts.join(", ")
    }
}

/// `Option<Duration>` written like "90s" or "2m" in the config.
pub(crate) mod opt_duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(text.trim())
            .map(Some)
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "{text:?} is not a duration like \"30s\" or \"5m\": {e}"
                ))
            })
    }

    pub(crate) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_runbook_thresholds() {
        assert_eq!("> 20".parse::<Threshold>().unwrap(), Threshold::above(20.0));
        assert_eq!(
            ">=5".parse::<Threshold>().unwrap().op,
            Comparison::GreaterOrEqual
        );
        assert_eq!(
            "< 85%".parse::<Threshold>().unwrap(),
            Threshold::below(85.0)
        );
        assert!("20".parse::<Threshold>().is_err());
        assert!("> lots".parse::<Threshold>().is_err());
    }

    #[test]
    fn crit_outranks_warn_and_missing_is_unknown() {
        let rule = Rule::warn_crit(Threshold::above(20.0), Threshold::above(50.0));
        assert_eq!(rule.judge(&Value::Number(10.0)), Severity::Ok);
        assert_eq!(rule.judge(&Value::Number(20.5)), Severity::Warn);
        assert_eq!(rule.judge(&Value::Number(51.0)), Severity::Crit);
        assert_eq!(rule.judge(&Value::None), Severity::Unknown);
        assert_eq!(rule.judge(&Value::Number(f64::NAN)), Severity::Unknown);
    }

    #[test]
    fn expected_text() {
        let rule = Rule::expecting("ok");
        assert_eq!(rule.judge(&Value::Text("ok".into())), Severity::Ok);
        assert_eq!(
            rule.judge(&Value::Text("*** page 3 corrupt".into())),
            Severity::Crit
        );
    }

    #[test]
    fn priorities_follow_escalation_matrix() {
        let rule = Rule::default().with_priority(Priority::P0);
        assert_eq!(rule.priority_for(Severity::Crit), Some(Priority::P0));
        assert_eq!(rule.priority_for(Severity::Warn), Some(Priority::P1));
        assert_eq!(
            Rule::default().priority_for(Severity::Warn),
            Some(Priority::P2)
        );
        assert_eq!(Rule::default().priority_for(Severity::Ok), None);
    }
}
