//! The alert book: which figures are pending, firing or flapping, since when, at what
//! priority, whether someone has acknowledged them, whether a maintenance silence covers
//! them; and what resolved lately. Fed by the rule engine's judgements
//! ([`crate::rules::engine`]); every change comes back as an [`AlertEvent`] for the record,
//! the bell and `on_alert` (see [`crate::rules::notify`] for which ones ring).

use crate::model::figure::Severity;
use crate::model::rule::{Priority, Rule};
use crate::model::update::ExternalAlert;
use crate::rules::engine::{AlertPhase, Condition, Judgement, Transition};
use crate::rules::notify::{Decision, Policy, Silence, silenced};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, VecDeque};

/// How many resolved alerts stay listed.
const RESOLVED_KEPT: usize = 50;

/// Where a listed alert stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Bad, waiting for the rule's `for` / `min_failures`.
    Pending,
    Firing,
    /// Fired and resolved too often lately; stays listed until quiet.
    Flapping,
}

impl AlertState {
    pub fn label(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Flapping => "flapping",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub id: String,
    pub name: String,
    pub state: AlertState,
    pub condition: Condition,
    /// `condition.severity()`; while flapping, the worst seen.
    pub severity: Severity,
    pub priority: Priority,
    /// Fired at (pending: bad since).
    pub since: DateTime<Utc>,
    /// When the bad spell began (before any `for`).
    pub began: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub acknowledged: bool,
    /// The value (or error) that made it fire, as last seen.
    pub reason: String,
    /// The reason of the maintenance silence covering it, if one does.
    pub silenced: Option<String>,
    /// Notifications held back by storm control.
    pub held_back: u32,
    /// Flapping and OK at the moment.
    pub ok_now: bool,
}

impl Alert {
    /// A newly listed alert for `seen`: not acknowledged, not resolved, nothing held back,
    /// no reason yet (the caller sets it).
    fn opened(
        seen: &Observed,
        state: AlertState,
        condition: Condition,
        priority: Priority,
        (since, began): (DateTime<Utc>, DateTime<Utc>),
        silenced: Option<String>,
    ) -> Self {
        Alert {
            id: seen.id.to_string(),
            name: seen.name.to_string(),
            state,
            condition,
            severity: condition.severity(),
            priority,
            since,
            began,
            resolved_at: None,
            acknowledged: false,
            reason: String::new(),
            silenced,
            held_back: 0,
            ok_now: false,
        }
    }

    /// An alert of external source `source` (Alertmanager) as the book lists it: id
    /// `<source>.<alertname>.<fingerprint>`, its labels in the name, firing since it began.
    pub fn external(source: &str, ext: &ExternalAlert) -> Alert {
        let condition = match ext.severity {
            Severity::Crit => Condition::Crit,
            _ => Condition::Warn,
        };
        let labels: Vec<String> = ext.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut name = format!("{source}: {}", ext.name);
        if !labels.is_empty() {
            name.push_str(&format!(" {{{}}}", labels.join(", ")));
        }
        Alert {
            id: format!("{source}.{}.{}", ext.name, ext.key),
            name,
            state: AlertState::Firing,
            condition,
            severity: condition.severity(),
            priority: ext.priority,
            since: ext.starts_at,
            began: ext.starts_at,
            resolved_at: None,
            acknowledged: false,
            reason: if ext.summary.is_empty() {
                "firing in Alertmanager".to_string()
            } else {
                ext.summary.clone()
            },
            silenced: ext.silenced.clone(),
            held_back: 0,
            ok_now: false,
        }
    }

    /// Counts towards the header's worst state and the timeline: firing or flapping, not
    /// pending, not silenced.
    pub fn counts(&self) -> bool {
        self.state != AlertState::Pending && self.silenced.is_none()
    }
}

/// What happened to an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Pending,
    Fired,
    /// Firing, another condition (warn → crit, crit → source error...).
    Changed,
    Resolved,
    /// Pending, then OK without firing.
    Cancelled,
    Acknowledged,
    /// An acknowledgement taken back (`:unack`): the alert waits for someone again.
    Unacknowledged,
    Flapping,
    FlapEnded,
    Silenced,
    Unsilenced,
    /// What the figures measured is gone (a container removed): its alerts close without
    /// resolving, and it leaves every pane. One per subject, never ringing.
    Removed,
}

impl EventKind {
    pub const ALL: [EventKind; 12] = [
        EventKind::Pending,
        EventKind::Fired,
        EventKind::Changed,
        EventKind::Resolved,
        EventKind::Cancelled,
        EventKind::Acknowledged,
        EventKind::Unacknowledged,
        EventKind::Flapping,
        EventKind::FlapEnded,
        EventKind::Silenced,
        EventKind::Unsilenced,
        EventKind::Removed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Pending => "pending",
            EventKind::Fired => "fired",
            EventKind::Changed => "changed",
            EventKind::Resolved => "resolved",
            EventKind::Cancelled => "cancelled",
            EventKind::Acknowledged => "acknowledged",
            EventKind::Unacknowledged => "unacknowledged",
            EventKind::Flapping => "flapping",
            EventKind::FlapEnded => "flap_ended",
            EventKind::Silenced => "silenced",
            EventKind::Unsilenced => "unsilenced",
            EventKind::Removed => "removed",
        }
    }

    pub fn parse(text: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// One change of one alert: a row of the record, and what `on_alert` is told.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlertEvent {
    pub at: DateTime<Utc>,
    pub id: String,
    pub name: String,
    pub kind: EventKind,
    pub condition: Condition,
    pub severity: Severity,
    pub priority: Priority,
    /// The value or error, as displayed.
    pub value: String,
    pub since: DateTime<Utc>,
    pub began: DateTime<Utc>,
    pub silenced: bool,
    /// Rings the bell and runs `on_alert`.
    pub notify: bool,
    /// Storm control: notifications held back before this one (or so far, if this one is
    /// held back too).
    pub held_back: u32,
}

impl AlertEvent {
    /// The environment `on_alert` runs with.
    pub fn environment(&self, deployment: &str) -> Vec<(String, String)> {
        let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        let state = match self.kind {
            EventKind::Resolved => "resolved",
            EventKind::Flapping => "flapping",
            EventKind::Pending => "pending",
            _ => "firing",
        };
        [
            ("WATCHPOST_DEPLOYMENT", deployment.to_string()),
            ("WATCHPOST_ALERT_ID", self.id.clone()),
            ("WATCHPOST_ALERT_NAME", self.name.clone()),
            ("WATCHPOST_ALERT_EVENT", self.kind.as_str().to_string()),
            ("WATCHPOST_ALERT_STATE", state.to_string()),
            (
                "WATCHPOST_ALERT_CONDITION",
                self.condition.as_str().to_string(),
            ),
            (
                "WATCHPOST_ALERT_SEVERITY",
                self.severity.as_str().to_string(),
            ),
            (
                "WATCHPOST_ALERT_PRIORITY",
                self.priority.label().to_string(),
            ),
            ("WATCHPOST_ALERT_VALUE", self.value.clone()),
            ("WATCHPOST_ALERT_SINCE", time(self.since)),
            ("WATCHPOST_ALERT_AT", time(self.at)),
            ("WATCHPOST_ALERT_HELD_BACK", self.held_back.to_string()),
        ]
        .into_iter()
        // A NUL cannot go into the environment.
        .map(|(k, v)| (k.to_string(), v.replace('\0', "")))
        .collect()
    }
}

#[derive(Clone, Debug, Default)]
pub struct AlertBook {
    /// Pending, firing and flapping now, worst first.
    pub active: Vec<Alert>,
    /// Resolved lately, newest first.
    pub resolved: VecDeque<Alert>,
    policy: Policy,
    /// Sources whose alerts another system manages (Alertmanager): their alerts come and
    /// go with [`AlertBook::sync_external`], and their silences are that system's.
    external: BTreeSet<String>,
}

/// What the engine said about one figure, with what the book needs to list it.
pub struct Observed<'a> {
    pub id: &'a str,
    pub name: &'a str,
    /// The value or error, as displayed.
    pub reason: String,
    pub judgement: &'a Judgement,
    pub rule: &'a Rule,
}

impl AlertBook {
    /// Applies one judgement; returns the events it caused.
    pub fn apply(
        &mut self,
        seen: Observed<'_>,
        now: DateTime<Utc>,
        silences: &[Silence],
    ) -> Vec<AlertEvent> {
        let j = seen.judgement;
        let position = self.active.iter().position(|a| a.id == seen.id);
        let condition = j.phase.condition();
        let priority = seen
            .rule
            .priority_for(condition.severity())
            .unwrap_or(Priority::P3);
        let silence = silenced(silences, seen.id, now).map(|s| s.reason.clone());
        let mut events = Vec::new();
        match (j.transition, position) {
            (None, Some(i)) => {
                let alert = &mut self.active[i];
                alert.reason = seen.reason;
                if alert.state == AlertState::Flapping && !j.condition.is_ok() {
                    alert.ok_now = false;
                }
            }
            (None, None) => {}
            (Some(Transition::Pending), _) => {
                if let Some(i) = position {
                    // A flapping alert going bad again: it stays flapping.
                    let alert = &mut self.active[i];
                    alert.reason = seen.reason;
                    alert.ok_now = false;
                } else {
                    let alert = Alert::opened(
                        &seen,
                        AlertState::Pending,
                        condition,
                        priority,
                        phase_times(j.phase, now),
                        silence.clone(),
                    );
                    self.active.push(Alert {
                        reason: seen.reason,
                        ..alert
                    });
                }
                events.push(self.event(seen.id, EventKind::Pending, now, false, 0));
            }
            (Some(Transition::Cancelled), Some(i)) => {
                if self.active[i].state == AlertState::Pending {
                    self.active.remove(i);
                } else {
                    self.active[i].ok_now = true;
                }
                events.push(self.cancelled(seen, condition, priority, now));
            }
            (Some(Transition::Cancelled), None) => {
                events.push(self.cancelled(seen, condition, priority, now));
            }
            (Some(Transition::Fired), _) => {
                let flapping_now = self.policy.change(seen.id, now);
                let (since, began) = phase_times(j.phase, now);
                let i = match position {
                    Some(i) => i,
                    None => {
                        self.active.push(Alert::opened(
                            &seen,
                            AlertState::Pending,
                            condition,
                            priority,
                            (since, began),
                            silence.clone(),
                        ));
                        self.active.len() - 1
                    }
                };
                let alert = &mut self.active[i];
                alert.reason = seen.reason;
                alert.ok_now = false;
                alert.silenced = silence.clone();
                alert.condition = condition;
                if alert.state == AlertState::Flapping {
                    if condition.severity().rank() > alert.severity.rank() {
                        alert.severity = condition.severity();
                        alert.priority = priority;
                    }
                    events.push(self.event(seen.id, EventKind::Fired, now, false, 0));
                } else {
                    alert.state = AlertState::Firing;
                    alert.severity = condition.severity();
                    alert.priority = priority;
                    alert.since = since;
                    alert.began = began;
                    alert.acknowledged = false;
                    alert.resolved_at = None;
                    if flapping_now {
                        alert.state = AlertState::Flapping;
                        events.push(self.event(seen.id, EventKind::Fired, now, false, 0));
                        events.push(self.ring(
                            seen.id,
                            EventKind::Flapping,
                            now,
                            silence.is_none(),
                        ));
                    } else {
                        events.push(self.ring(seen.id, EventKind::Fired, now, silence.is_none()));
                    }
                }
            }
            (Some(Transition::Changed { from }), position) => {
                let i = match position {
                    Some(i) => i,
                    // Not listed (the viewer's book, or a restore that missed it): list it.
                    None => {
                        self.active.push(Alert::opened(
                            &seen,
                            AlertState::Firing,
                            from,
                            priority,
                            phase_times(j.phase, now),
                            silence.clone(),
                        ));
                        self.active.len() - 1
                    }
                };
                let alert = &mut self.active[i];
                let worse = condition.severity().rank() > alert.severity.rank();
                alert.reason = seen.reason;
                alert.condition = condition;
                alert.ok_now = false;
                let flapping = alert.state == AlertState::Flapping;
                if !flapping || worse {
                    alert.severity = condition.severity();
                    alert.priority = priority;
                }
                // Worse is news: it needs a fresh acknowledgement and rings.
                if worse {
                    alert.acknowledged = false;
                }
                let notify = worse && !flapping && alert.silenced.is_none();
                events.push(self.ring(seen.id, EventKind::Changed, now, notify));
            }
            (Some(Transition::Resolved), position) => {
                let flapping_now = self.policy.change(seen.id, now);
                let Some(i) = position else {
                    return events;
                };
                if self.active[i].state == AlertState::Flapping {
                    self.active[i].ok_now = true;
                    events.push(self.event(seen.id, EventKind::Resolved, now, false, 0));
                } else if flapping_now {
                    let silent = self.active[i].silenced.is_some();
                    self.active[i].state = AlertState::Flapping;
                    self.active[i].ok_now = true;
                    events.push(self.event(seen.id, EventKind::Resolved, now, false, 0));
                    events.push(self.ring(seen.id, EventKind::Flapping, now, !silent));
                } else {
                    events.push(self.event(seen.id, EventKind::Resolved, now, false, 0));
                    let mut alert = self.active.remove(i);
                    alert.resolved_at = Some(now);
                    alert.reason = seen.reason;
                    self.resolved.push_front(alert);
                    self.resolved.truncate(RESOLVED_KEPT);
                }
            }
        }
        self.sort();
        events
    }

    /// Makes the active alerts of external source `source` those in `alerts`: new ones
    /// fire (and ring unless silenced there), changed ones change, missing ones resolve.
    pub(crate) fn sync_external(
        &mut self,
        source: &str,
        alerts: Vec<ExternalAlert>,
        now: DateTime<Utc>,
    ) -> Vec<AlertEvent> {
        self.external.insert(source.to_string());
        let mut events = Vec::new();
        let mut listed = BTreeSet::new();
        for ext in alerts {
            let alert = Alert::external(source, &ext);
            listed.insert(alert.id.clone());
            match self.active.iter_mut().find(|a| a.id == alert.id) {
                None => {
                    let (id, silent) = (alert.id.clone(), alert.silenced.is_some());
                    self.active.push(alert);
                    events.push(self.ring(&id, EventKind::Fired, now, !silent));
                }
                Some(known) => {
                    let worse = alert.severity.rank() > known.severity.rank();
                    let changed = alert.condition != known.condition;
                    let silence_change = (known.silenced.is_some(), alert.silenced.is_some());
                    known.name = alert.name;
                    known.reason = alert.reason;
                    known.condition = alert.condition;
                    known.severity = alert.severity;
                    known.priority = alert.priority;
                    known.silenced = alert.silenced;
                    if worse {
                        known.acknowledged = false;
                    }
                    let silent = known.silenced.is_some();
                    if changed {
                        events.push(self.ring(
                            &alert.id,
                            EventKind::Changed,
                            now,
                            worse && !silent,
                        ));
                    }
                    match silence_change {
                        (false, true) => {
                            events.push(self.event(&alert.id, EventKind::Silenced, now, false, 0))
                        }
                        (true, false) => {
                            events.push(self.ring(&alert.id, EventKind::Unsilenced, now, true))
                        }
                        _ => {}
                    }
                }
            }
        }
        let own = crate::rules::engine::source_id(source);
        let prefix = format!("{source}.");
        let gone: Vec<String> = self
            .active
            .iter()
            .filter(|a| a.id.starts_with(&prefix) && a.id != own && !listed.contains(&a.id))
            .map(|a| a.id.clone())
            .collect();
        for id in gone {
            events.push(self.event(&id, EventKind::Resolved, now, false, 0));
            if let Some(i) = self.active.iter().position(|a| a.id == id) {
                let mut alert = self.active.remove(i);
                alert.resolved_at = Some(now);
                self.resolved.push_front(alert);
                self.resolved.truncate(RESOLVED_KEPT);
            }
        }
        self.sort();
        events
    }

    /// `subject` (a figure id, or the part of ids before a `.`, see
    /// [`crate::rules::engine::in_subject`]) is gone: its active alerts close (listed as
    /// resolved, "removed"), and one "removed" event says so, whether it had alerts or not.
    pub fn remove(
        &mut self,
        subject: &str,
        name: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> AlertEvent {
        let mut i = 0;
        while i < self.active.len() {
            if crate::rules::engine::in_subject(&self.active[i].id, subject) {
                let mut alert = self.active.remove(i);
                alert.resolved_at = Some(now);
                alert.ok_now = false;
                alert.reason = reason.to_string();
                self.resolved.push_front(alert);
            } else {
                i += 1;
            }
        }
        self.resolved.truncate(RESOLVED_KEPT);
        AlertEvent {
            at: now,
            id: subject.to_string(),
            name: name.to_string(),
            kind: EventKind::Removed,
            condition: Condition::Ok,
            severity: Severity::Ok,
            priority: Priority::P3,
            value: reason.to_string(),
            since: now,
            began: now,
            silenced: false,
            notify: false,
            held_back: 0,
        }
    }

    /// Whether another system manages this alert (see [`AlertBook::sync_external`]).
    fn is_external(&self, id: &str) -> bool {
        self.external.iter().any(|source| {
            id.strip_prefix(source.as_str())
                .and_then(|rest| rest.strip_prefix('.'))
                .is_some_and(|rest| rest != "source")
        })
    }

    /// Time passing: flapping alerts that have been quiet long enough settle (resolved or
    /// firing), and maintenance silences begin and end.
    pub fn tick(&mut self, now: DateTime<Utc>, silences: &[Silence]) -> Vec<AlertEvent> {
        let mut events = Vec::new();
        let mut i = 0;
        while i < self.active.len() {
            let id = self.active[i].id.clone();
            if self.is_external(&id) {
                i += 1;
                continue;
            }
            if self.active[i].state == AlertState::Flapping && self.policy.quiet(&id, now) {
                events.push(self.event(&id, EventKind::FlapEnded, now, false, 0));
                if self.active[i].ok_now {
                    let mut alert = self.active.remove(i);
                    alert.resolved_at = Some(now);
                    alert.ok_now = false;
                    self.resolved.push_front(alert);
                    self.resolved.truncate(RESOLVED_KEPT);
                    continue;
                }
                let alert = &mut self.active[i];
                alert.state = AlertState::Firing;
                alert.severity = alert.condition.severity();
            }
            let covering = silenced(silences, &id, now).map(|s| s.reason.clone());
            let was = self.active[i].silenced.is_some();
            match (was, covering) {
                (false, Some(reason)) => {
                    self.active[i].silenced = Some(reason);
                    events.push(self.event(&id, EventKind::Silenced, now, false, 0));
                }
                (true, None) => {
                    self.active[i].silenced = None;
                    // Still firing when the maintenance ends: that is news.
                    let notify = self.active[i].state == AlertState::Firing;
                    events.push(self.ring(&id, EventKind::Unsilenced, now, notify));
                }
                _ => {}
            }
            i += 1;
        }
        if !events.is_empty() {
            self.sort();
        }
        events
    }

    /// Acknowledges one active alert by id. Returns whether it existed.
    pub fn acknowledge(&mut self, id: &str) -> bool {
        self.acknowledge_at(id, Utc::now()).is_some()
    }

    /// Acknowledges one active alert by id at `now`; the event is for the record.
    pub(crate) fn acknowledge_at(&mut self, id: &str, now: DateTime<Utc>) -> Option<AlertEvent> {
        let alert = self.active.iter_mut().find(|a| a.id == id)?;
        alert.acknowledged = true;
        Some(self.event(id, EventKind::Acknowledged, now, false, 0))
    }

    /// Takes back the acknowledgement of one active alert by id at `now`; the event is for
    /// the record. `None` when it is not listed or not acknowledged.
    pub(crate) fn unacknowledge_at(&mut self, id: &str, now: DateTime<Utc>) -> Option<AlertEvent> {
        let alert = self
            .active
            .iter_mut()
            .find(|a| a.id == id && a.acknowledged)?;
        alert.acknowledged = false;
        Some(self.event(id, EventKind::Unacknowledged, now, false, 0))
    }

    pub(crate) fn unacknowledged(&self) -> usize {
        self.active
            .iter()
            .filter(|a| !a.acknowledged && a.state != AlertState::Pending)
            .count()
    }

    /// Alerts pending now.
    pub fn pending(&self) -> usize {
        self.active
            .iter()
            .filter(|a| a.state == AlertState::Pending)
            .count()
    }

    /// Alerts firing (or flapping) under a maintenance silence.
    pub fn silenced(&self) -> usize {
        self.active
            .iter()
            .filter(|a| a.state != AlertState::Pending && a.silenced.is_some())
            .count()
    }

    /// The worst severity of the alerts that count (firing or flapping, not silenced).
    pub fn worst(&self) -> Severity {
        self.active
            .iter()
            .filter(|a| a.counts())
            .map(|a| a.severity)
            .fold(Severity::Ok, Severity::worst)
    }

    /// Puts back alerts the record had open, and recently resolved ones, without events.
    pub fn restore(&mut self, active: Vec<Alert>, resolved: Vec<Alert>) {
        self.active = active;
        self.resolved = resolved.into_iter().take(RESOLVED_KEPT).collect();
        self.sort();
    }

    fn sort(&mut self) {
        self.active.sort_by(|a, b| {
            (a.state == AlertState::Pending)
                .cmp(&(b.state == AlertState::Pending))
                .then(a.priority.cmp(&b.priority))
                .then(b.severity.rank().cmp(&a.severity.rank()))
                .then(a.since.cmp(&b.since))
                .then(a.id.cmp(&b.id))
        });
    }

    fn cancelled(
        &self,
        seen: Observed<'_>,
        condition: Condition,
        priority: Priority,
        now: DateTime<Utc>,
    ) -> AlertEvent {
        AlertEvent {
            at: now,
            id: seen.id.to_string(),
            name: seen.name.to_string(),
            kind: EventKind::Cancelled,
            condition,
            severity: condition.severity(),
            priority,
            value: seen.reason,
            since: now,
            began: now,
            silenced: false,
            notify: false,
            held_back: 0,
        }
    }

    /// An event that rings unless storm control holds it back.
    fn ring(&mut self, id: &str, kind: EventKind, now: DateTime<Utc>, wanted: bool) -> AlertEvent {
        if !wanted {
            return self.event(id, kind, now, false, 0);
        }
        match self.policy.notify(id, now) {
            Decision::Notify { held_back } => self.event(id, kind, now, true, held_back),
            Decision::Suppressed { count } => {
                if let Some(alert) = self.active.iter_mut().find(|a| a.id == id) {
                    alert.held_back = count;
                }
                self.event(id, kind, now, false, count)
            }
        }
    }

    fn event(
        &self,
        id: &str,
        kind: EventKind,
        now: DateTime<Utc>,
        notify: bool,
        held_back: u32,
    ) -> AlertEvent {
        let alert = self.active.iter().find(|a| a.id == id);
        match alert {
            Some(a) => AlertEvent {
                at: now,
                id: a.id.clone(),
                name: a.name.clone(),
                kind,
                condition: a.condition,
                severity: a.severity,
                priority: a.priority,
                value: a.reason.clone(),
                since: a.since,
                began: a.began,
                silenced: a.silenced.is_some(),
                notify,
                held_back,
            },
            None => AlertEvent {
                at: now,
                id: id.to_string(),
                name: id.to_string(),
                kind,
                condition: Condition::Ok,
                severity: Severity::Ok,
                priority: Priority::P3,
                value: String::new(),
                since: now,
                began: now,
                silenced: false,
                notify,
                held_back,
            },
        }
    }
}

/// (since, began) of a phase; OK has neither, so both are `now`.
fn phase_times(phase: AlertPhase, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    match phase {
        AlertPhase::Ok => (now, now),
        AlertPhase::Pending { since, .. } => (since, since),
        AlertPhase::Firing { since, began, .. } => (since, began),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::figure::Reading;
    use crate::model::rule::{Rule, Threshold};
    use crate::rules::engine::RuleState;
    use crate::rules::notify::FLAP_WINDOW;
    use chrono::{Duration, TimeZone};

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 2, 3, 0, 0).unwrap() + Duration::seconds(secs)
    }

    struct Rig {
        book: AlertBook,
        state: RuleState,
        rule: Rule,
        silences: Vec<Silence>,
    }

    impl Rig {
        fn new(rule: Rule) -> Rig {
            Rig {
                book: AlertBook::default(),
                state: RuleState::new(rule.clone()),
                rule,
                silences: Vec::new(),
            }
        }

        fn read(&mut self, value: f64, t: i64) -> Vec<AlertEvent> {
            let reading = Reading::number("api.up", "api up", value, "");
            let j = self.state.evaluate(&reading, at(t));
            self.book.apply(
                Observed {
                    id: "api.up",
                    name: "api up",
                    reason: value.to_string(),
                    judgement: &j,
                    rule: &self.rule,
                },
                at(t),
                &self.silences,
            )
        }
    }

    fn kinds(events: &[AlertEvent]) -> Vec<(EventKind, bool)> {
        events.iter().map(|e| (e.kind, e.notify)).collect()
    }

    fn up_rule() -> Rule {
        Rule::crit_only(Threshold::below(1.0)).with_priority(Priority::P0)
    }

    #[test]
    fn fires_acknowledges_escalates_and_resolves() {
        let rule = Rule::warn_crit(Threshold::above(1.0), Threshold::above(5.0));
        let mut rig = Rig::new(rule);
        assert_eq!(kinds(&rig.read(2.0, 0)), vec![(EventKind::Fired, true)]);
        assert_eq!(rig.book.active[0].priority, Priority::P2);
        assert!(rig.book.acknowledge_at("api.up", at(1)).is_some());
        assert_eq!(rig.book.unacknowledged(), 0);
        assert_eq!(kinds(&rig.read(9.0, 2)), vec![(EventKind::Changed, true)]);
        assert!(
            !rig.book.active[0].acknowledged,
            "escalation needs a new ack"
        );
        assert_eq!(rig.book.active[0].priority, Priority::P1);
        assert_eq!(rig.book.active[0].since, at(0));
        // Getting better is not news.
        assert_eq!(kinds(&rig.read(2.0, 4)), vec![(EventKind::Changed, false)]);
        assert_eq!(kinds(&rig.read(0.0, 6)), vec![(EventKind::Resolved, false)]);
        assert!(rig.book.active.is_empty());
        assert_eq!(rig.book.resolved[0].resolved_at, Some(at(6)));
        assert_eq!(rig.book.worst(), Severity::Ok);
    }

    #[test]
    fn an_acknowledgement_can_be_taken_back_and_given_again() {
        let mut rig = Rig::new(up_rule());
        rig.read(0.0, 0);
        assert!(
            rig.book.unacknowledge_at("api.up", at(1)).is_none(),
            "not acknowledged"
        );
        assert!(rig.book.acknowledge_at("api.up", at(2)).is_some());
        let event = rig.book.unacknowledge_at("api.up", at(3)).unwrap();
        assert_eq!(
            (event.kind, event.at, event.notify),
            (EventKind::Unacknowledged, at(3), false)
        );
        assert_eq!(event.kind.as_str(), "unacknowledged");
        assert_eq!(
            EventKind::parse("unacknowledged"),
            Some(EventKind::Unacknowledged)
        );
        assert!(!rig.book.active[0].acknowledged);
        assert_eq!(rig.book.unacknowledged(), 1);
        assert!(rig.book.acknowledge_at("api.up", at(4)).is_some());
        assert_eq!(rig.book.unacknowledged(), 0);
        assert!(rig.book.unacknowledge_at("no.such", at(5)).is_none());
    }

    #[test]
    fn pending_alerts_are_listed_but_do_not_count_or_ring() {
        let mut rig = Rig::new(up_rule().held_for(std::time::Duration::from_secs(30)));
        assert_eq!(kinds(&rig.read(0.0, 0)), vec![(EventKind::Pending, false)]);
        assert_eq!(rig.book.active[0].state, AlertState::Pending);
        assert_eq!(rig.book.worst(), Severity::Ok);
        assert_eq!(rig.book.pending(), 1);
        assert_eq!(rig.book.unacknowledged(), 0);
        assert_eq!(kinds(&rig.read(0.0, 30)), vec![(EventKind::Fired, true)]);
        assert_eq!(rig.book.active[0].began, at(0));
        assert_eq!(rig.book.active[0].since, at(30));
        assert_eq!(rig.book.worst(), Severity::Crit);
        // And a pending one that recovers disappears without a trace in the list.
        let mut rig = Rig::new(up_rule().held_for(std::time::Duration::from_secs(30)));
        rig.read(0.0, 0);
        assert_eq!(
            kinds(&rig.read(1.0, 10)),
            vec![(EventKind::Cancelled, false)]
        );
        assert!(rig.book.active.is_empty() && rig.book.resolved.is_empty());
    }

    #[test]
    fn storm_control_holds_back_the_sixth_ring_in_five_minutes() {
        // Warn ↔ crit every 20 s: each escalation is news and rings, without the fire/resolve
        // changes that would make it flapping.
        let mut rig = Rig::new(Rule::warn_crit(
            Threshold::above(1.0),
            Threshold::above(5.0),
        ));
        let mut rung = Vec::new();
        for i in 0..6 {
            rung.extend(rig.read(if i % 2 == 0 { 2.0 } else { 9.0 }, i * 20));
        }
        // fired, crit, (warn), crit, (warn), crit: 4 rings so far.
        assert_eq!(rung.iter().filter(|e| e.notify).count(), 4);
        rig.read(2.0, 120);
        let fifth = rig.read(9.0, 140);
        assert!(fifth[0].notify);
        rig.read(2.0, 160);
        let sixth = rig.read(9.0, 180);
        assert_eq!(kinds(&sixth), vec![(EventKind::Changed, false)]);
        assert_eq!(sixth[0].held_back, 1);
        assert_eq!(rig.book.active[0].held_back, 1);
        assert_eq!(rig.book.active[0].state, AlertState::Firing);
        // Five minutes after the first ring a slot is free; it says what was held back.
        rig.read(2.0, 299);
        let next = rig.read(9.0, 300);
        assert_eq!(kinds(&next), vec![(EventKind::Changed, true)]);
        assert_eq!(next[0].held_back, 1);
    }

    #[test]
    fn flapping_rings_once_and_stays_listed_until_quiet() {
        let mut rig = Rig::new(up_rule());
        let mut all = Vec::new();
        for i in 0..3 {
            all.extend(rig.read(0.0, i * 20));
            all.extend(rig.read(1.0, i * 20 + 10));
        }
        // fired, resolved, fired, resolved, fired, resolved(6th change → flapping).
        assert_eq!(rig.book.active.len(), 1);
        assert_eq!(rig.book.active[0].state, AlertState::Flapping);
        assert!(rig.book.active[0].ok_now);
        let flapping: Vec<_> = all
            .iter()
            .filter(|e| e.kind == EventKind::Flapping)
            .collect();
        assert_eq!(flapping.len(), 1);
        assert!(flapping[0].notify);
        // More flaps: recorded, never rung, still one listed alert.
        for i in 3..6 {
            let events = rig.read(0.0, i * 20);
            assert!(events.iter().all(|e| !e.notify), "{events:?}");
            rig.read(1.0, i * 20 + 10);
        }
        assert_eq!(rig.book.active.len(), 1);
        assert!(rig.book.resolved.len() <= 2);
        assert_eq!(rig.book.worst(), Severity::Crit);
        // Quiet for a whole flap window while OK: resolved.
        let last = 5 * 20 + 10;
        assert!(rig.book.tick(at(last + 10), &[]).is_empty());
        let quiet = at(last) + FLAP_WINDOW;
        let events = rig.book.tick(quiet, &[]);
        assert_eq!(kinds(&events), vec![(EventKind::FlapEnded, false)]);
        assert!(rig.book.active.is_empty());
        assert_eq!(rig.book.resolved[0].id, "api.up");
    }

    #[test]
    fn silenced_alerts_are_listed_and_recorded_but_ring_only_when_the_silence_ends() {
        let mut rig = Rig::new(up_rule());
        rig.silences.push(Silence {
            from: at(0),
            until: at(600),
            figures: vec!["api.*".into()],
            reason: "planned restart".into(),
        });
        let events = rig.read(0.0, 10);
        assert_eq!(kinds(&events), vec![(EventKind::Fired, false)]);
        assert!(events[0].silenced);
        assert_eq!(
            rig.book.active[0].silenced.as_deref(),
            Some("planned restart")
        );
        assert_eq!(
            rig.book.worst(),
            Severity::Ok,
            "silenced alerts do not count"
        );
        assert_eq!(rig.book.silenced(), 1);
        let silences = rig.silences.clone();
        assert!(rig.book.tick(at(599), &silences).is_empty());
        let events = rig.book.tick(at(600), &silences);
        assert_eq!(kinds(&events), vec![(EventKind::Unsilenced, true)]);
        assert_eq!(rig.book.worst(), Severity::Crit);
        // A silence that starts while firing is recorded too.
        let later = vec![Silence {
            from: at(700),
            until: at(800),
            figures: vec![],
            reason: "maintenance".into(),
        }];
        let events = rig.book.tick(at(700), &later);
        assert_eq!(kinds(&events), vec![(EventKind::Silenced, false)]);
    }

    #[test]
    fn environment_names_the_alert() {
        let mut rig = Rig::new(up_rule());
        let events = rig.read(0.0, 0);
        let env = events[0].environment("tmws");
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("WATCHPOST_ALERT_ID"), Some("api.up"));
        assert_eq!(get("WATCHPOST_ALERT_SEVERITY"), Some("crit"));
        assert_eq!(get("WATCHPOST_ALERT_PRIORITY"), Some("P0"));
        assert_eq!(get("WATCHPOST_ALERT_STATE"), Some("firing"));
        assert_eq!(get("WATCHPOST_ALERT_VALUE"), Some("0"));
        assert_eq!(get("WATCHPOST_DEPLOYMENT"), Some("tmws"));
        assert_eq!(get("WATCHPOST_ALERT_SINCE"), Some("2026-01-02T03:00:00Z"));
    }
}
