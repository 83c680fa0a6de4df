//! Rule semantics over time, as a pure state machine with an injected clock.
//!
//! Each figure has a [`RuleState`]. Every reading (or source error) is classified into a
//! [`Condition`] — OK, warn, crit, no data, source error — and moves the figure's alert
//! through its [`AlertPhase`]:
//!
//! - OK → **pending** when a reading is bad (warn, crit, no value, or an error) but the
//!   rule's `min_failures` (bad readings in a row, default 1) or `for` (how long it has been
//!   bad, default 0) is not met yet;
//! - pending → **firing** once both are met (checked on each reading and on [`RuleState::sweep`],
//!   so a `for` expires even between readings);
//! - firing follows the condition at once (warn ↔ crit ↔ source error) and **resolves** on
//!   the first OK reading; a pending alert that sees an OK reading is **cancelled**.
//!
//! "No data" comes two ways: a reading without a value (pack says "nothing to judge"),
//! which goes through the same gates, and silence — no reading for longer than the rule's
//! `no_data_after` (default three reading intervals, at least [`MIN_NO_DATA_AFTER`]) —
//! which fires at once on a sweep, the wait being its own `for`. A source error is the
//! collector failing (an error on the reading, or the source's health turning to error);
//! it counts as a sign of life, so a failing source is "source error", never "no data".
//! Neither is ever OK.
//!
//! Two things keep one fault from paging many times:
//! - **too few samples**: a statistic (a percentile, a percent, a rate) computed from fewer
//!   samples than its rule's `min_samples` is shown but judged OK, so a p95 of one slow
//!   request cannot fire (see [`Rule::lacks_samples`]);
//! - **folding into the cause**: a bad figure whose cause is bad now does not ring on its
//!   own. Its cause is the figure its rule `depends_on` (`api.health_ms` on `api.up`), or,
//!   for a source error, its source's own alert (`<source>.source`). While folded the figure
//!   shows its real condition, its alert machine sees OK (an alert it had resolves into the
//!   cause) and it does not go stale; once the cause is OK it is judged on its own again.

use super::Rule;
use crate::model::figure::{Reading, Severity, Value};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// "No data" never triggers sooner than this after the last reading.
pub(crate) const MIN_NO_DATA_AFTER: Duration = Duration::seconds(15);
/// The reading interval assumed before two readings have been seen.
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::seconds(20);

/// What one reading says, before time is taken into account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    #[default]
    Ok,
    Warn,
    Crit,
    /// No value to judge, or no reading for too long.
    NoData,
    /// The collector could not read the figure (or the whole source failed).
    SourceError,
}

impl Condition {
    pub const ALL: [Condition; 5] = [
        Condition::Ok,
        Condition::Warn,
        Condition::Crit,
        Condition::NoData,
        Condition::SourceError,
    ];

    /// The severity a figure in this condition shows: no data and errors are unknown.
    pub fn severity(self) -> Severity {
        match self {
            Condition::Ok => Severity::Ok,
            Condition::Warn => Severity::Warn,
            Condition::Crit => Severity::Crit,
            Condition::NoData | Condition::SourceError => Severity::Unknown,
        }
    }

    pub fn is_ok(self) -> bool {
        self == Condition::Ok
    }

    /// "OK", "WARN", "CRIT", "NO DATA", "ERROR".
    pub fn label(self) -> &'static str {
        match self {
            Condition::Ok => "OK",
            Condition::Warn => "WARN",
            Condition::Crit => "CRIT",
            Condition::NoData => "NO DATA",
            Condition::SourceError => "ERROR",
        }
    }

    /// The stable spelling used in the record, JSON and `on_alert`'s environment.
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Ok => "ok",
            Condition::Warn => "warn",
            Condition::Crit => "crit",
            Condition::NoData => "no_data",
            Condition::SourceError => "source_error",
        }
    }

    pub fn parse(text: &str) -> Option<Condition> {
        Condition::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

/// Where one figure's alert stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AlertPhase {
    #[default]
    Ok,
    /// Bad since `since`, waiting for `for` / `min_failures`.
    Pending {
        condition: Condition,
        since: DateTime<Utc>,
    },
    /// Fired at `since`; the bad spell began at `began`.
    Firing {
        condition: Condition,
        since: DateTime<Utc>,
        began: DateTime<Utc>,
    },
}

impl AlertPhase {
    pub fn condition(&self) -> Condition {
        match self {
            AlertPhase::Ok => Condition::Ok,
            AlertPhase::Pending { condition, .. } | AlertPhase::Firing { condition, .. } => {
                *condition
            }
        }
    }
}

/// What changed with one evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// OK → pending.
    Pending,
    /// OK or pending → firing.
    Fired,
    /// Firing, with another condition than before (warn → crit, crit → source error...).
    Changed { from: Condition },
    /// Firing → OK.
    Resolved,
    /// Pending → OK without ever firing.
    Cancelled,
}

/// The verdict on one reading at one time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Judgement {
    /// What this reading says on its own.
    pub condition: Condition,
    /// The figure's severity now (`condition.severity()`): what panes and `check` show.
    pub severity: Severity,
    /// The alert after this reading.
    pub phase: AlertPhase,
    pub transition: Option<Transition>,
    /// Bad readings in a row, this one included.
    pub consecutive_bad: u32,
    /// Bad, but its cause is bad too: the alert folds into the cause's (see the module
    /// docs); `condition` and `severity` still say what the reading says.
    pub folded: bool,
}

/// The instantaneous condition of a reading under a rule (or the reading's pack default).
pub fn classify(reading: &Reading, rule: Option<&Rule>) -> Condition {
    if reading.error.is_some() {
        return Condition::SourceError;
    }
    match &reading.value {
        Value::None => Condition::NoData,
        Value::Number(n) if !n.is_finite() => Condition::NoData,
        value => match rule {
            // Too few samples to judge a statistic: shown, not judged.
            Some(rule) if rule.lacks_samples(reading).is_some() => Condition::Ok,
            Some(rule) => match rule.judge(value) {
                Severity::Ok => Condition::Ok,
                Severity::Warn => Condition::Warn,
                Severity::Crit => Condition::Crit,
                Severity::Unknown => Condition::NoData,
            },
            None => Condition::Ok,
        },
    }
}

/// One figure's alert state machine.
#[derive(Clone, Debug, Default)]
pub struct RuleState {
    pub rule: Rule,
    phase: AlertPhase,
    /// When the current run of bad readings began.
    bad_since: Option<DateTime<Utc>>,
    consecutive_bad: u32,
    last_seen: Option<DateTime<Utc>>,
    /// The last gap between two readings.
    interval: Option<Duration>,
    /// The last condition seen (a reading, an error, or staleness).
    last: Condition,
}

impl RuleState {
    pub fn new(rule: Rule) -> Self {
        RuleState {
            rule,
            ..RuleState::default()
        }
    }

    pub fn phase(&self) -> AlertPhase {
        self.phase
    }

    pub fn last_seen(&self) -> Option<DateTime<Utc>> {
        self.last_seen
    }

    /// Whether the last thing seen of this figure was bad (pending or firing alike): what
    /// makes it the cause that its dependents fold into.
    pub(crate) fn is_bad(&self) -> bool {
        !self.last.is_ok()
    }

    /// Judges one reading at `now`.
    #[cfg(test)]
    pub(crate) fn evaluate(&mut self, reading: &Reading, now: DateTime<Utc>) -> Judgement {
        let condition = classify(reading, Some(&self.rule));
        self.observe(condition, now)
    }

    /// Moves the state machine with one observed condition at `now` (a reading, or the
    /// source failing as a whole).
    pub(crate) fn observe(&mut self, condition: Condition, now: DateTime<Utc>) -> Judgement {
        if let Some(last) = self.last_seen {
            let gap = now - last;
            if gap > Duration::zero() {
                self.interval = Some(gap);
            }
        }
        self.last_seen = Some(now);
        self.last = condition;
        let transition = if condition.is_ok() {
            self.consecutive_bad = 0;
            self.bad_since = None;
            match std::mem::take(&mut self.phase) {
                AlertPhase::Firing { .. } => Some(Transition::Resolved),
                AlertPhase::Pending { .. } => Some(Transition::Cancelled),
                AlertPhase::Ok => None,
            }
        } else {
            self.consecutive_bad = self.consecutive_bad.saturating_add(1);
            let began = *self.bad_since.get_or_insert(now);
            match self.phase {
                AlertPhase::Firing {
                    condition: from,
                    since,
                    began,
                } => {
                    self.phase = AlertPhase::Firing {
                        condition,
                        since,
                        began,
                    };
                    (from != condition).then_some(Transition::Changed { from })
                }
                AlertPhase::Ok | AlertPhase::Pending { .. } => {
                    let was_ok = self.phase == AlertPhase::Ok;
                    if self.gates_met(began, now) {
                        self.phase = AlertPhase::Firing {
                            condition,
                            since: now,
                            began,
                        };
                        Some(Transition::Fired)
                    } else {
                        self.phase = AlertPhase::Pending {
                            condition,
                            since: began,
                        };
                        was_ok.then_some(Transition::Pending)
                    }
                }
            }
        };
        self.judgement(condition, transition)
    }

    /// How long without a reading means "no data" for this figure.
    pub(crate) fn no_data_after(&self) -> Duration {
        match self
            .rule
            .no_data_after
            .and_then(|d| Duration::from_std(d).ok())
        {
            Some(limit) => limit,
            None => (self.interval.unwrap_or(DEFAULT_INTERVAL) * 3).max(MIN_NO_DATA_AFTER),
        }
    }

    /// A sign of life without a verdict (its source answered, with an error that its own
    /// alert reports): the figure is not "no data", and its alert stays as it is.
    pub fn touch(&mut self, now: DateTime<Utc>) {
        if self.last_seen.is_some() {
            self.last_seen = Some(now);
        }
    }

    /// Time passing without a reading: a pending alert whose `for` has run out fires, and a
    /// figure not heard from for too long is "no data". Returns a judgement only when
    /// something changed.
    pub fn sweep(&mut self, now: DateTime<Utc>) -> Option<Judgement> {
        self.sweep_with(now, true)
    }

    fn sweep_with(&mut self, now: DateTime<Utc>, staleness: bool) -> Option<Judgement> {
        let last_seen = self.last_seen?;
        if staleness && now - last_seen > self.no_data_after() && self.last != Condition::NoData {
            self.last = Condition::NoData;
            self.consecutive_bad = self.consecutive_bad.saturating_add(1);
            let began = *self.bad_since.get_or_insert(last_seen);
            let transition = match self.phase {
                AlertPhase::Firing {
                    condition: from,
                    since,
                    began,
                } => {
                    self.phase = AlertPhase::Firing {
                        condition: Condition::NoData,
                        since,
                        began,
                    };
                    (from != Condition::NoData).then_some(Transition::Changed { from })
                }
                // Staleness is its own `for`: the wait has already happened.
                AlertPhase::Ok | AlertPhase::Pending { .. } => {
                    self.phase = AlertPhase::Firing {
                        condition: Condition::NoData,
                        since: now,
                        began,
                    };
                    Some(Transition::Fired)
                }
            };
            return Some(self.judgement(Condition::NoData, transition));
        }
        if let AlertPhase::Pending { condition, since } = self.phase
            && self.gates_met(since, now)
        {
            self.phase = AlertPhase::Firing {
                condition,
                since: now,
                began: since,
            };
            return Some(self.judgement(condition, Some(Transition::Fired)));
        }
        None
    }

    /// Puts back an alert that was firing when watchpost last stopped, so the first OK
    /// reading resolves it (rather than it staying open in the record forever) and a bad
    /// one does not fire it a second time. `now` counts as the last sign of life, so a
    /// restart does not read the time watchpost was down as "no data".
    pub fn restore(&mut self, phase: AlertPhase, now: DateTime<Utc>) {
        self.phase = phase;
        match phase {
            AlertPhase::Ok => {
                self.bad_since = None;
                self.consecutive_bad = 0;
            }
            AlertPhase::Pending { condition, since }
            | AlertPhase::Firing {
                condition,
                began: since,
                ..
            } => {
                self.bad_since = Some(since);
                self.consecutive_bad = self.rule.min_failures.unwrap_or(1).max(1);
                self.last = condition;
            }
        }
        self.last_seen = Some(now);
    }

    fn gates_met(&self, began: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        let needed = self.rule.min_failures.unwrap_or(1).max(1);
        let hold = self
            .rule
            .for_duration
            .and_then(|d| Duration::from_std(d).ok())
            .unwrap_or_else(Duration::zero);
        self.consecutive_bad >= needed && now - began >= hold
    }

    fn judgement(&self, condition: Condition, transition: Option<Transition>) -> Judgement {
        Judgement {
            condition,
            severity: condition.severity(),
            phase: self.phase,
            transition,
            consecutive_bad: self.consecutive_bad,
            folded: false,
        }
    }
}

/// Every figure's state machine, by figure id; and one per source for the source itself
/// failing (`<source>.source`), which is only ever judged on the source's health.
#[derive(Clone, Debug, Default)]
pub struct Engine {
    figures: HashMap<String, RuleState>,
    sources: HashMap<String, RuleState>,
}

/// The id of a source's own alert.
pub(crate) fn source_id(source: &str) -> String {
    format!("{source}.source")
}

/// Whether figure `id` belongs to `subject`: the id itself, or one under it (`dock.q3.state`
/// under `dock.q3`).
pub(crate) fn in_subject(id: &str, subject: &str) -> bool {
    id.strip_prefix(subject)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

impl Engine {
    /// Judges a reading of figure `reading.id` under `rule` (the configured rule, or the
    /// pack's default). A changed rule takes effect at once; the alert's state is kept.
    pub(crate) fn evaluate(
        &mut self,
        rule: &Rule,
        reading: &Reading,
        now: DateTime<Utc>,
    ) -> Judgement {
        let condition = classify(reading, Some(rule));
        let folded = !condition.is_ok() && self.cause(&reading.id, rule, condition).is_some();
        let state = self.state_mut(&reading.id, rule);
        if !folded {
            return state.observe(condition, now);
        }
        let mut judgement = state.observe(Condition::Ok, now);
        judgement.condition = condition;
        judgement.severity = condition.severity();
        judgement.folded = true;
        judgement
    }

    /// The alert that a bad `condition` of figure `id` folds into, if that cause is bad
    /// now: the figure its rule depends on, or (for a source error) its source's own alert.
    pub(crate) fn cause(&self, id: &str, rule: &Rule, condition: Condition) -> Option<String> {
        if let Some(parent) = rule.depends_on.as_deref()
            && parent != id
            && self.figures.get(parent).is_some_and(RuleState::is_bad)
        {
            return Some(parent.to_string());
        }
        if condition == Condition::SourceError {
            return self
                .sources
                .iter()
                .find(|(source_id, state)| {
                    state.is_bad()
                        && source_id
                            .strip_suffix(".source")
                            .and_then(|source| id.strip_prefix(source))
                            .is_some_and(|rest| rest.starts_with('.'))
                })
                .map(|(source_id, _)| source_id.clone());
        }
        None
    }

    /// Forgets every figure of `subject` (an id, or the part of ids before a `.`): the thing
    /// it measured is gone, so it can never be "no data".
    pub fn remove(&mut self, subject: &str) {
        self.figures.retain(|id, _| !in_subject(id, subject));
    }

    /// Every figure of `source` counts `now` as a sign of life (see [`RuleState::touch`]).
    pub(crate) fn touch_source(&mut self, source: &str, now: DateTime<Utc>) {
        let prefix = format!("{source}.");
        for (_, state) in self
            .figures
            .iter_mut()
            .filter(|(id, _)| id.starts_with(&prefix))
        {
            state.touch(now);
        }
    }

    /// The source's health: `Some(SourceError)` when it failed, `Some(Ok)` when it answered.
    /// Its own alert (`<source>.source`) follows; its figures count the failure as a sign of
    /// life, so they do not also turn "no data" (their alerts, if any, stay as they are).
    /// Returns the source alert's judgement, if the source has one or fails now.
    pub(crate) fn source_health(
        &mut self,
        source: &str,
        rule: &Rule,
        condition: Condition,
        now: DateTime<Utc>,
    ) -> Option<Judgement> {
        if !condition.is_ok() {
            self.touch_source(source, now);
        }
        let id = source_id(source);
        if condition.is_ok() && !self.sources.contains_key(&id) {
            return None;
        }
        let state = self
            .sources
            .entry(id)
            .or_insert_with(|| RuleState::new(rule.clone()));
        if state.rule != *rule {
            state.rule = rule.clone();
        }
        let judgement = state.observe(condition, now);
        (judgement.transition.is_some() || !condition.is_ok()).then_some(judgement)
    }

    /// Runs every figure's [`RuleState::sweep`]; returns the ones that changed. A figure
    /// folded into a cause that is bad now does not go stale (its cause speaks for it).
    pub fn sweep(&mut self, now: DateTime<Utc>) -> Vec<(String, Judgement)> {
        let bad: std::collections::HashSet<String> = self
            .figures
            .iter()
            .filter(|(_, state)| state.is_bad())
            .map(|(id, _)| id.clone())
            .collect();
        let mut out: Vec<(String, Judgement)> = self
            .figures
            .iter_mut()
            .filter_map(|(id, state)| {
                if state
                    .rule
                    .depends_on
                    .as_ref()
                    .is_some_and(|p| bad.contains(p))
                {
                    state.touch(now);
                    return None;
                }
                state.sweep(now).map(|j| (id.clone(), j))
            })
            .collect();
        // A source's own alert is judged on its health only: its `for` runs out, it never
        // goes stale.
        out.extend(
            self.sources
                .iter_mut()
                .filter_map(|(id, state)| state.sweep_with(now, false).map(|j| (id.clone(), j))),
        );
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Puts back a recorded alert (see [`RuleState::restore`]).
    pub fn restore(&mut self, id: &str, rule: &Rule, phase: AlertPhase, now: DateTime<Utc>) {
        if let Some(source) = id.strip_suffix(".source")
            && !self.figures.contains_key(id)
        {
            self.sources
                .entry(source_id(source))
                .or_insert_with(|| RuleState::new(rule.clone()))
                .restore(phase, now);
            return;
        }
        self.state_mut(id, rule).restore(phase, now);
    }

    pub fn get(&self, id: &str) -> Option<&RuleState> {
        self.figures.get(id).or_else(|| self.sources.get(id))
    }

    fn state_mut(&mut self, id: &str, rule: &Rule) -> &mut RuleState {
        let state = self
            .figures
            .entry(id.to_string())
            .or_insert_with(|| RuleState::new(rule.clone()));
        if state.rule != *rule {
            state.rule = rule.clone();
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::rule::Threshold;
    use chrono::TimeZone;
    use std::time::Duration as StdDuration;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 2, 3, 0, 0).unwrap()
    }

    fn at(secs: i64) -> DateTime<Utc> {
        t0() + Duration::seconds(secs)
    }

    fn deny(v: f64) -> Reading {
        Reading::number("tmws.rbac.deny_pct_1h", "deny", v, "%")
    }

    fn rule() -> Rule {
        Rule::warn_crit(Threshold::above(20.0), Threshold::above(50.0))
    }

    #[test]
    fn without_for_a_bad_reading_fires_at_once_and_an_ok_one_resolves() {
        let mut s = RuleState::new(rule());
        let j = s.evaluate(&deny(60.0), at(0));
        assert_eq!(j.transition, Some(Transition::Fired));
        assert_eq!(j.severity, Severity::Crit);
        let j = s.evaluate(&deny(30.0), at(2));
        assert_eq!(
            j.transition,
            Some(Transition::Changed {
                from: Condition::Crit
            })
        );
        assert!(matches!(
            j.phase,
            AlertPhase::Firing { condition: Condition::Warn, since, .. } if since == at(0)
        ));
        let j = s.evaluate(&deny(5.0), at(4));
        assert_eq!(j.transition, Some(Transition::Resolved));
        assert_eq!(j.phase, AlertPhase::Ok);
        assert_eq!(s.evaluate(&deny(5.0), at(6)).transition, None);
    }

    #[test]
    fn for_keeps_an_alert_pending_until_it_has_held() {
        let mut s = RuleState::new(rule().held_for(StdDuration::from_secs(60)));
        let j = s.evaluate(&deny(60.0), at(0));
        assert_eq!(j.transition, Some(Transition::Pending));
        assert_eq!(j.severity, Severity::Crit, "the figure itself is CRIT now");
        assert!(matches!(j.phase, AlertPhase::Pending { since, .. } if since == at(0)));
        assert_eq!(s.evaluate(&deny(70.0), at(30)).transition, None);
        // 59 s: still pending; 60 s: fires, with the spell's start kept.
        assert_eq!(s.evaluate(&deny(70.0), at(59)).transition, None);
        let j = s.evaluate(&deny(70.0), at(60));
        assert_eq!(j.transition, Some(Transition::Fired));
        assert!(matches!(
            j.phase,
            AlertPhase::Firing { since, began, .. } if since == at(60) && began == at(0)
        ));
    }

    #[test]
    fn a_pending_alert_that_recovers_is_cancelled_and_the_clock_restarts() {
        let mut s = RuleState::new(rule().held_for(StdDuration::from_secs(60)));
        s.evaluate(&deny(60.0), at(0));
        let j = s.evaluate(&deny(1.0), at(40));
        assert_eq!(j.transition, Some(Transition::Cancelled));
        assert_eq!(
            s.evaluate(&deny(60.0), at(50)).transition,
            Some(Transition::Pending)
        );
        // 60 s after the first spell began, but only 50 s into the second.
        assert_eq!(s.evaluate(&deny(60.0), at(100)).transition, None);
        assert_eq!(
            s.evaluate(&deny(60.0), at(110)).transition,
            Some(Transition::Fired)
        );
    }

    #[test]
    fn for_expires_between_readings_on_a_sweep() {
        let mut s = RuleState::new(
            rule()
                .held_for(StdDuration::from_secs(30))
                .no_data_after(StdDuration::from_secs(600)),
        );
        s.evaluate(&deny(60.0), at(0));
        assert_eq!(s.sweep(at(29)), None);
        let j = s.sweep(at(31)).expect("fires on the sweep");
        assert_eq!(j.transition, Some(Transition::Fired));
        assert_eq!(s.sweep(at(32)), None, "fires once");
    }

    #[test]
    fn min_failures_counts_bad_readings_in_a_row() {
        let mut s = RuleState::new(rule().after_failures(3));
        assert_eq!(
            s.evaluate(&deny(60.0), at(0)).transition,
            Some(Transition::Pending)
        );
        assert_eq!(s.evaluate(&deny(60.0), at(2)).transition, None);
        // An OK reading breaks the run.
        assert_eq!(
            s.evaluate(&deny(1.0), at(4)).transition,
            Some(Transition::Cancelled)
        );
        s.evaluate(&deny(60.0), at(6));
        let j = s.evaluate(&deny(25.0), at(8));
        assert_eq!(j.consecutive_bad, 2);
        assert_eq!(j.transition, None);
        let j = s.evaluate(&deny(60.0), at(10));
        assert_eq!(j.transition, Some(Transition::Fired));
        assert_eq!(j.phase.condition(), Condition::Crit);
    }

    #[test]
    fn for_and_min_failures_must_both_hold() {
        let mut s = RuleState::new(
            rule()
                .after_failures(2)
                .held_for(StdDuration::from_secs(10)),
        );
        s.evaluate(&deny(60.0), at(0));
        // Ten seconds passed, but one reading only (the sweep does not count as a reading).
        assert_eq!(s.sweep(at(11)), None);
        assert_eq!(
            s.evaluate(&deny(60.0), at(12)).transition,
            Some(Transition::Fired)
        );
    }

    #[test]
    fn errors_are_source_errors_and_missing_values_no_data_neither_ok() {
        let rule = rule();
        assert_eq!(
            classify(&Reading::failed("x.y", "y", "no such table"), Some(&rule)),
            Condition::SourceError
        );
        let mut none = deny(0.0);
        none.value = Value::None;
        assert_eq!(classify(&none, Some(&rule)), Condition::NoData);
        assert_eq!(classify(&deny(f64::NAN), Some(&rule)), Condition::NoData);
        assert_eq!(classify(&deny(1.0), None), Condition::Ok);
        assert_eq!(Condition::NoData.severity(), Severity::Unknown);
        assert_eq!(Condition::SourceError.severity(), Severity::Unknown);

        let mut s = RuleState::new(rule.clone());
        let j = s.evaluate(&Reading::failed("x.y", "y", "locked"), at(0));
        assert_eq!(j.transition, Some(Transition::Fired));
        assert_eq!(j.phase.condition(), Condition::SourceError);
        // The value comes back bad: same alert, another condition.
        let j = s.evaluate(&deny(60.0), at(2));
        assert_eq!(
            j.transition,
            Some(Transition::Changed {
                from: Condition::SourceError
            })
        );
    }

    #[test]
    fn silence_from_a_figure_is_no_data_after_three_intervals() {
        let mut s = RuleState::new(rule());
        s.evaluate(&deny(1.0), at(0));
        s.evaluate(&deny(1.0), at(10));
        // Interval 10 s → no data after 30 s.
        assert_eq!(s.no_data_after(), Duration::seconds(30));
        assert_eq!(s.sweep(at(40)), None);
        let j = s.sweep(at(41)).expect("no data");
        assert_eq!(j.transition, Some(Transition::Fired));
        assert_eq!(j.condition, Condition::NoData);
        assert!(
            matches!(j.phase, AlertPhase::Firing { began, .. } if began == at(10)),
            "the spell began with the last reading"
        );
        assert_eq!(s.sweep(at(50)), None, "reported once");
        let j = s.evaluate(&deny(1.0), at(60));
        assert_eq!(j.transition, Some(Transition::Resolved));
    }

    #[test]
    fn a_failing_source_has_its_own_alert_and_keeps_its_figures_alive() {
        let mut engine = Engine::default();
        let rule = rule().no_data_after(StdDuration::from_secs(20));
        engine.evaluate(&rule, &deny(1.0), at(0));
        let source_rule = Rule::default();
        for t in [10, 20, 30, 40] {
            let j = engine
                .source_health("tmws", &source_rule, Condition::SourceError, at(t))
                .expect("the source's alert");
            if t == 10 {
                assert_eq!(j.transition, Some(Transition::Fired));
            } else {
                assert_eq!(j.transition, None);
            }
            assert_eq!(j.condition, Condition::SourceError);
        }
        // The figure's own alert is untouched, and it is not "no data" while its source
        // keeps answering (with errors).
        assert_eq!(
            engine.get("tmws.rbac.deny_pct_1h").unwrap().phase(),
            AlertPhase::Ok
        );
        assert!(engine.sweep(at(55)).is_empty());
        // Another source is not touched; a healthy answer resolves the source's alert.
        assert_eq!(
            engine.source_health("tmws-api", &source_rule, Condition::Ok, at(56)),
            None
        );
        let j = engine
            .source_health("tmws", &source_rule, Condition::Ok, at(57))
            .unwrap();
        assert_eq!(j.transition, Some(Transition::Resolved));
        assert_eq!(
            engine.source_health("tmws", &source_rule, Condition::Ok, at(58)),
            None
        );
        // The source's alert never goes stale; the figure does once nothing comes at all.
        let changed = engine.sweep(at(120));
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].0, "tmws.rbac.deny_pct_1h");
        assert_eq!(changed[0].1.condition, Condition::NoData);
    }

    #[test]
    fn min_no_data_floor_and_configured_limit() {
        let mut s = RuleState::new(rule());
        s.evaluate(&deny(1.0), at(0));
        s.evaluate(&deny(1.0), at(1));
        assert_eq!(s.no_data_after(), MIN_NO_DATA_AFTER);
        let s = RuleState::new(rule().no_data_after(StdDuration::from_secs(300)));
        assert_eq!(s.no_data_after(), Duration::seconds(300));
    }

    #[test]
    fn restored_alerts_resolve_on_the_first_ok_reading_and_do_not_fire_twice() {
        let mut s = RuleState::new(rule());
        s.restore(
            AlertPhase::Firing {
                condition: Condition::Crit,
                since: at(-600),
                began: at(-600),
            },
            at(0),
        );
        assert_eq!(s.evaluate(&deny(60.0), at(2)).transition, None);
        assert_eq!(
            s.evaluate(&deny(1.0), at(4)).transition,
            Some(Transition::Resolved)
        );
        // Restoring counts as a sign of life: no "no data" for the time it was down.
        let mut s = RuleState::new(rule());
        s.restore(AlertPhase::Ok, at(0));
        assert_eq!(s.sweep(at(5)), None);
    }

    #[test]
    fn a_statistic_from_too_few_samples_is_shown_but_not_judged() {
        let rule = Rule::crit_only(Threshold::above(2000.0)).needing_samples(20);
        let p95 =
            |v: f64, n: u64| Reading::number("app.latency_p95", "p95", v, "ms").with_samples(n);
        assert_eq!(classify(&p95(2842.0, 1), Some(&rule)), Condition::Ok);
        assert_eq!(classify(&p95(2842.0, 19), Some(&rule)), Condition::Ok);
        assert_eq!(classify(&p95(2842.0, 20), Some(&rule)), Condition::Crit);
        // A figure that says nothing of its samples is judged as always.
        let plain = Reading::number("app.latency_p95", "p95", 2842.0, "ms");
        assert_eq!(classify(&plain, Some(&rule)), Condition::Crit);
    }

    #[test]
    fn a_dependent_folds_into_its_cause_and_comes_back_on_its_own() {
        let mut engine = Engine::default();
        let up_rule = Rule::crit_only(Threshold::below(1.0));
        let ms_rule = Rule::crit_only(Threshold::above(2000.0)).depending_on("api.up");
        let up = |v: f64| Reading::number("api.up", "up", v, "");
        let ms = |v: f64| Reading::number("api.health_ms", "ms", v, "ms");
        // Slow while up: fires on its own.
        engine.evaluate(&up_rule, &up(1.0), at(0));
        let j = engine.evaluate(&ms_rule, &ms(3000.0), at(0));
        assert_eq!(j.transition, Some(Transition::Fired));
        // Down: up fires; the latency's alert resolves into it, its figure still CRIT.
        let j = engine.evaluate(&up_rule, &up(0.0), at(2));
        assert_eq!(j.transition, Some(Transition::Fired));
        let j = engine.evaluate(&ms_rule, &ms(3000.0), at(2));
        assert!(j.folded);
        assert_eq!(j.severity, Severity::Crit);
        assert_eq!(j.transition, Some(Transition::Resolved));
        let j = engine.evaluate(
            &ms_rule,
            &Reading::failed("api.health_ms", "ms", "refused"),
            at(4),
        );
        assert!(j.folded && j.transition.is_none());
        // Nothing read for long: the cause speaks for it, no "no data".
        engine.evaluate(&up_rule, &up(0.0), at(60));
        assert!(
            engine
                .sweep(at(61))
                .iter()
                .all(|(id, _)| id != "api.health_ms")
        );
        // Up again and still slow: its own alert again.
        engine.evaluate(&up_rule, &up(1.0), at(62));
        let j = engine.evaluate(&ms_rule, &ms(3000.0), at(62));
        assert!(!j.folded);
        assert_eq!(j.transition, Some(Transition::Fired));
    }

    #[test]
    fn source_errors_fold_into_the_failing_source() {
        let mut engine = Engine::default();
        let failed = Reading::failed("tmws.rbac.deny_pct_1h", "deny", "no such file");
        engine.source_health("tmws", &Rule::default(), Condition::SourceError, at(0));
        let j = engine.evaluate(&rule(), &failed, at(0));
        assert!(j.folded && j.transition.is_none());
        assert_eq!(j.condition, Condition::SourceError);
        // Another source's figure is not folded; nor is one whose source answers.
        let other = Reading::failed("tmws2.rbac.deny_pct_1h", "deny", "no such file");
        assert!(!engine.evaluate(&rule(), &other, at(0)).folded);
        engine.source_health("tmws", &Rule::default(), Condition::Ok, at(2));
        assert!(!engine.evaluate(&rule(), &failed, at(2)).folded);
    }

    #[test]
    fn a_changed_rule_applies_to_the_next_reading() {
        let mut engine = Engine::default();
        engine.evaluate(&rule(), &deny(30.0), at(0));
        let stricter = Rule::crit_only(Threshold::above(25.0));
        let j = engine.evaluate(&stricter, &deny(30.0), at(2));
        assert_eq!(j.condition, Condition::Crit);
        assert_eq!(engine.get("tmws.rbac.deny_pct_1h").unwrap().rule, stricter);
    }
}
