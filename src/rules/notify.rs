//! Which alerts ring: storm control, flapping and maintenance silences, with an injected
//! clock.
//!
//! - **Storm control** (seed 001's alert-storm prevention): the same alert notifies at most
//!   [`STORM_MAX_PER_ALERT`] times in [`STORM_WINDOW_PER_ALERT`], and all alerts together at
//!   most [`STORM_MAX_TOTAL`] times in [`STORM_WINDOW_TOTAL`]. A notification held back is
//!   counted; the next one that goes out says how many were held back before it.
//! - **Flapping**: an alert that fires or resolves [`FLAP_CHANGES`] times within
//!   [`FLAP_WINDOW`] is flapping. It notifies once when it starts flapping, then stays
//!   listed (not resolved, not re-fired) until it has been quiet for a whole `FLAP_WINDOW`.
//! - **Silences** (maintenance windows from `[deployment] silences`): an alert that fires
//!   inside one is recorded and listed as silenced but rings no bell, runs no `on_alert`,
//!   and does not count towards the header's worst state or the timeline; if it is still
//!   firing when the silence ends, it notifies then.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::{HashMap, VecDeque};

pub(crate) const STORM_MAX_PER_ALERT: usize = 5;
pub(crate) const STORM_WINDOW_PER_ALERT: Duration = Duration::minutes(5);
pub(crate) const STORM_MAX_TOTAL: usize = 20;
pub(crate) const STORM_WINDOW_TOTAL: Duration = Duration::minutes(10);
pub(crate) const FLAP_CHANGES: usize = 6;
pub(crate) const FLAP_WINDOW: Duration = Duration::minutes(10);

/// Whether a notification may go out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Ring; `held_back` notifications of this alert were suppressed since the last one.
    Notify { held_back: u32 },
    /// Held back by storm control; `count` held back so far for this alert.
    Suppressed { count: u32 },
}

impl Decision {
    #[cfg(test)]
    pub(crate) fn notifies(self) -> bool {
        matches!(self, Decision::Notify { .. })
    }
}

/// Storm and flap bookkeeping for every alert.
#[derive(Clone, Debug, Default)]
pub(crate) struct Policy {
    sent: HashMap<String, VecDeque<DateTime<Utc>>>,
    sent_total: VecDeque<DateTime<Utc>>,
    held_back: HashMap<String, u32>,
    changes: HashMap<String, VecDeque<DateTime<Utc>>>,
}

fn prune(times: &mut VecDeque<DateTime<Utc>>, now: DateTime<Utc>, window: Duration) {
    while times.front().is_some_and(|t| now - *t >= window) {
        times.pop_front();
    }
}

impl Policy {
    /// Asks to notify about alert `id` at `now`; counts it when it goes out.
    pub fn notify(&mut self, id: &str, now: DateTime<Utc>) -> Decision {
        let sent = self.sent.entry(id.to_string()).or_default();
        prune(sent, now, STORM_WINDOW_PER_ALERT);
        prune(&mut self.sent_total, now, STORM_WINDOW_TOTAL);
        if sent.len() >= STORM_MAX_PER_ALERT || self.sent_total.len() >= STORM_MAX_TOTAL {
            let count = self.held_back.entry(id.to_string()).or_default();
            *count += 1;
            return Decision::Suppressed { count: *count };
        }
        sent.push_back(now);
        self.sent_total.push_back(now);
        Decision::Notify {
            held_back: self.held_back.remove(id).unwrap_or(0),
        }
    }

    /// How many notifications of `id` are held back now.
    #[cfg(test)]
    pub(crate) fn held_back(&self, id: &str) -> u32 {
        self.held_back.get(id).copied().unwrap_or(0)
    }

    /// Counts a fire or resolve of `id`; true when the alert is flapping after it.
    pub fn change(&mut self, id: &str, now: DateTime<Utc>) -> bool {
        let changes = self.changes.entry(id.to_string()).or_default();
        prune(changes, now, FLAP_WINDOW);
        changes.push_back(now);
        changes.len() >= FLAP_CHANGES
    }

    /// True once `id` has had no fire or resolve for a whole [`FLAP_WINDOW`].
    pub fn quiet(&self, id: &str, now: DateTime<Utc>) -> bool {
        self.changes
            .get(id)
            .and_then(|c| c.back())
            .is_none_or(|last| now - *last >= FLAP_WINDOW)
    }
}

/// A maintenance window: alerts of matching figures are silenced between `from` and `until`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// Figure id patterns; `*` matches any run of characters. Empty means every figure.
    pub figures: Vec<String>,
    pub reason: String,
}

impl Silence {
    /// Whether this silence covers figure `id` at time `at`.
    pub fn covers(&self, id: &str, at: DateTime<Utc>) -> bool {
        at >= self.from
            && at < self.until
            && (self.figures.is_empty() || self.figures.iter().any(|p| glob_match(p, id)))
    }

    /// Reads a time written as RFC 3339 or as an offset into the window ("T+2h", "T+90m").
    pub fn parse_time(text: &str, start: DateTime<Utc>) -> Result<DateTime<Utc>, SilenceError> {
        let text = text.trim();
        if let Some(offset) = text.strip_prefix("T+").or_else(|| text.strip_prefix("t+")) {
            let d =
                humantime::parse_duration(offset.trim()).map_err(|error| SilenceError::Offset {
                    text: text.to_string(),
                    error,
                })?;
            let d = Duration::from_std(d).map_err(|error| SilenceError::TooFar {
                text: text.to_string(),
                error,
            })?;
            return Ok(start + d);
        }
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|error| SilenceError::Time {
                text: text.to_string(),
                error,
            })
    }
}

/// Why a silence's time or span is refused; `text` is the time as written. `Display` is
/// the message `validate` and the dashboard show.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SilenceError {
    #[error("{text:?}: {error} (write an offset like \"T+2h30m\")")]
    Offset {
        text: String,
        error: humantime::DurationError,
    },
    #[error("{text:?}: {error}")]
    TooFar {
        text: String,
        error: chrono::OutOfRangeError,
    },
    #[error("{text:?} is neither an RFC 3339 time nor \"T+<duration>\": {error}")]
    Time {
        text: String,
        error: chrono::ParseError,
    },
    #[error("silence {reason:?}: until ({until}) is not after from ({from})")]
    Empty {
        reason: String,
        from: String,
        until: String,
    },
}

/// A silence as the config writes it (`[deployment] silences`); times are RFC 3339 or
/// offsets into the window ("T+2h").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceSpec {
    #[serde(deserialize_with = "time_text")]
    pub from: String,
    #[serde(deserialize_with = "time_text")]
    pub until: String,
    /// Figure id patterns (`*` wildcard); empty or absent: every figure.
    #[serde(default)]
    pub figures: Vec<String>,
    #[serde(default)]
    pub reason: String,
}

impl SilenceSpec {
    /// The silence in a window starting at `start`.
    pub fn resolve(&self, start: DateTime<Utc>) -> Result<Silence, SilenceError> {
        let from = Silence::parse_time(&self.from, start)?;
        let until = Silence::parse_time(&self.until, start)?;
        if until <= from {
            return Err(SilenceError::Empty {
                reason: self.reason.clone(),
                from: self.from.clone(),
                until: self.until.clone(),
            });
        }
        Ok(Silence {
            from,
            until,
            figures: self.figures.clone(),
            reason: if self.reason.is_empty() {
                "maintenance".into()
            } else {
                self.reason.clone()
            },
        })
    }
}

/// Checks a silence time while the config is read, so a typo names its line.
fn time_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let text = String::deserialize(deserializer)?;
    Silence::parse_time(&text, DateTime::<Utc>::UNIX_EPOCH).map_err(serde::de::Error::custom)?;
    Ok(text)
}

/// The silence covering `id` at `at`, if any.
pub fn silenced<'a>(silences: &'a [Silence], id: &str, at: DateTime<Utc>) -> Option<&'a Silence> {
    silences.iter().find(|s| s.covers(id, at))
}

/// `*` matches any run of characters (including dots); everything else literally.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &text[first.len()..];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 2, 3, 0, 0).unwrap() + Duration::seconds(secs)
    }

    #[test]
    fn the_same_alert_rings_at_most_five_times_in_five_minutes() {
        let mut p = Policy::default();
        for i in 0..5 {
            assert_eq!(
                p.notify("api.up", at(i * 10)),
                Decision::Notify { held_back: 0 }
            );
        }
        assert_eq!(
            p.notify("api.up", at(60)),
            Decision::Suppressed { count: 1 }
        );
        assert_eq!(
            p.notify("api.up", at(120)),
            Decision::Suppressed { count: 2 }
        );
        assert_eq!(p.held_back("api.up"), 2);
        // Another alert is not held back by this one's storm.
        assert!(p.notify("db.integrity", at(121)).notifies());
        // Five minutes after the first: one slot is free again, and it says what it held.
        assert_eq!(
            p.notify("api.up", at(300)),
            Decision::Notify { held_back: 2 }
        );
        assert_eq!(p.held_back("api.up"), 0);
    }

    #[test]
    fn all_alerts_together_ring_at_most_twenty_times_in_ten_minutes() {
        let mut p = Policy::default();
        for i in 0..20 {
            assert!(p.notify(&format!("f{i}.x"), at(i)).notifies());
        }
        assert_eq!(p.notify("f99.x", at(30)), Decision::Suppressed { count: 1 });
        assert!(p.notify("f99.x", at(600)).notifies());
    }

    #[test]
    fn six_changes_in_ten_minutes_is_flapping_until_quiet_for_ten() {
        let mut p = Policy::default();
        for i in 0..5 {
            assert!(!p.change("api.up", at(i * 60)));
        }
        assert!(p.change("api.up", at(300)));
        assert!(!p.quiet("api.up", at(899)));
        assert!(p.quiet("api.up", at(900)));
        // Spread out, the same number of changes is not flapping.
        let mut p = Policy::default();
        for i in 0..10 {
            assert!(!p.change("api.up", at(i * 150)));
        }
    }

    #[test]
    fn silences_cover_their_figures_and_time() {
        let start = at(0);
        let s = Silence {
            from: Silence::parse_time("T+1h", start).unwrap(),
            until: Silence::parse_time("2026-01-02T04:30:00Z", start).unwrap(),
            figures: vec!["api.*".into()],
            reason: "db migration".into(),
        };
        assert!(!s.covers("api.up", at(3599)));
        assert!(s.covers("api.up", at(3600)));
        assert!(s.covers("api.health_ms", at(5399)));
        assert!(!s.covers("api.up", at(5400)));
        assert!(!s.covers("tmws.db.integrity", at(4000)));
        let all = Silence {
            figures: vec![],
            ..s.clone()
        };
        assert!(all.covers("tmws.db.integrity", at(4000)));
        assert_eq!(
            Silence::parse_time("soon", start).unwrap_err().to_string(),
            "\"soon\" is neither an RFC 3339 time nor \"T+<duration>\": premature end of input"
        );
        assert_eq!(
            Silence::parse_time("T+later", start)
                .unwrap_err()
                .to_string(),
            "\"T+later\": expected number at 0 (write an offset like \"T+2h30m\")"
        );
    }

    #[test]
    fn globs() {
        assert!(glob_match("*", "a.b"));
        assert!(glob_match("*.up", "api.up"));
        assert!(!glob_match("*.up", "api.upx"));
        assert!(glob_match("tmws.*.deny*", "tmws.rbac.deny_pct_1h"));
        assert!(glob_match("a*a", "aa"));
        assert!(!glob_match("a*a", "a"));
        assert!(glob_match("api.up", "api.up"));
    }
}
