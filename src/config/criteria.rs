//! `success_criteria` of `[deployment]`: what the window is judged by in the report, as the
//! config writes it (seed 003's sign-off sheet by default).

use serde::{Deserialize, Deserializer, Serialize};

/// One success criterion: what is measured and the target it must meet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Criterion {
    /// As the sign-off sheet says it.
    pub name: String,
    /// `critical_errors`, `errors`, `uptime`, `manual`, or `<stat> of <figure pattern>` with
    /// stat `min`, `max`, `avg`, `p95`, `p99`, `last` or `worst` (e.g. `p99 of *.health_ms`;
    /// `p99 of latency` is every response-time figure, see the report). Each matching
    /// figure is judged on its own; the worst decides and is named.
    #[serde(deserialize_with = "measure_text")]
    pub measure: String,
    /// A threshold (`"< 2000"`, `"== 0"`, `">= 99.9"`); for `worst of`, the worst state
    /// allowed (`"ok"` or `"warn"`). Defaults: `== 0` for error counts, `>= 100` for uptime.
    #[serde(default)]
    pub target: Option<String>,
}

impl Criterion {
    pub fn new(name: &str, measure: &str, target: Option<&str>) -> Criterion {
        Criterion {
            name: name.into(),
            measure: measure.into(),
            target: target.map(Into::into),
        }
    }
}

/// Seed 003's success criteria; those with no figure behind them report "not measured".
pub fn default_criteria() -> Vec<Criterion> {
    vec![
        Criterion::new(
            "Zero critical errors in logs",
            "critical_errors",
            Some("== 0"),
        ),
        Criterion::new("Zero security violations detected", "manual", None),
        Criterion::new(
            "100% service uptime (all services UP)",
            "uptime",
            Some(">= 100"),
        ),
        Criterion::new(
            "Response times < 2 seconds (99th percentile)",
            "p99 of latency",
            Some("< 2000"),
        ),
        Criterion::new(
            "Cache hit rate > 85%",
            "avg of *.cache_hit_pct",
            Some("> 85"),
        ),
        Criterion::new(
            "Database queries < 500ms (95th percentile)",
            "p95 of *.query_ms",
            Some("< 500"),
        ),
        Criterion::new(
            "No data loss or corruption detected",
            "worst of *.db.integrity",
            Some("ok"),
        ),
        Criterion::new("All users can access primary features", "manual", None),
    ]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Stat {
    Min,
    Max,
    Avg,
    P95,
    P99,
    Last,
    Worst,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Measure {
    CriticalErrors,
    Errors,
    Uptime,
    Manual,
    Figure { stat: Stat, pattern: String },
}

pub(crate) fn parse_measure(text: &str) -> Result<Measure, String> {
    let text = text.trim();
    match text {
        "critical_errors" => return Ok(Measure::CriticalErrors),
        "errors" => return Ok(Measure::Errors),
        "uptime" => return Ok(Measure::Uptime),
        "manual" => return Ok(Measure::Manual),
        _ => {}
    }
    let Some((stat, pattern)) = text.split_once(" of ") else {
        return Err(format!(
            "measure {text:?}: write critical_errors, errors, uptime, manual, or \"<stat> of <figure>\" (e.g. \"p99 of *.health_ms\")"
        ));
    };
    let stat = match stat.trim() {
        "min" => Stat::Min,
        "max" => Stat::Max,
        "avg" | "mean" => Stat::Avg,
        "p95" => Stat::P95,
        "p99" => Stat::P99,
        "last" => Stat::Last,
        "worst" => Stat::Worst,
        other => {
            return Err(format!(
                "measure {text:?}: {other:?} is not one of min, max, avg, p95, p99, last, worst"
            ));
        }
    };
    Ok(Measure::Figure {
        stat,
        pattern: pattern.trim().to_string(),
    })
}

fn measure_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_measure(&text).map_err(serde::de::Error::custom)?;
    Ok(text)
}
