//! Rules turn a figure's value into a severity: thresholds such as `> 20`,
//! with the runbooks' P0–P3 priority attached to what fires.
//!
//! [`judge`] is the instantaneous verdict on one reading (what `watchpost check` reports and
//! what a figure is coloured by). [`engine`] adds time: `for` durations, consecutive failures,
//! "no data" and "source error", and turns verdicts into pending, firing and resolved
//! alerts; [`notify`] decides which of those ring the bell (storm control, flapping,
//! maintenance silences). [`baseline`] judges a figure since the deploy against its own
//! samples from before it.

// Wired in by the baseline sources (issue 18); the expectation fails once it is used.
#[cfg_attr(
    not(test),
    expect(dead_code, reason = "wired in by the baseline sources (issue 18)")
)]
pub mod baseline;
pub mod engine;
pub mod notify;

use crate::model::figure::{Reading, Severity};
use crate::model::rule::Rule;

/// The instantaneous severity of a reading: an error or a missing value is unknown;
/// otherwise the configured rule, or the reading's own default, decides. The same
/// classification the engine starts from, so every view agrees on a figure's severity.
pub fn judge(reading: &Reading, configured: Option<&Rule>) -> Severity {
    engine::classify(reading, configured.or(reading.default_rule.as_ref())).severity()
}
