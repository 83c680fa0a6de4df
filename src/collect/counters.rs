//! Figures made from a server's cumulative counters (Redis's `INFO`, PostgreSQL's
//! `pg_stat_database`): their change between two polls, as a rate. Nothing to compute from
//! is neither a failure nor a zero, so it is a text value the thresholds leave OK, saying why.

use crate::model::catalog::Fig;
use crate::model::figure::Reading;

/// Why an interval figure has no value at the first poll.
pub(crate) const NEEDS_TWO: &str =
    "needs two polls: the figure is the counters' change between them";

/// "no samples", with why.
pub(crate) fn no_samples(f: Fig, source: &str, why: &str) -> Reading {
    f.text(source, "no samples").with_detail(why)
}

/// `count` events over `secs` seconds as a rate per minute, its detail
/// "{count} {what} {span}".
pub(crate) fn per_minute(
    f: Fig,
    source: &str,
    (count, secs, span): (u64, f64, String),
    what: &str,
) -> Reading {
    if secs <= 0.0 {
        return no_samples(f, source, "no time has passed");
    }
    f.number(source, count as f64 * 60.0 / secs, "/min")
        .with_detail(format!("{count} {what} {span}"))
}
