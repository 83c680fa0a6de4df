//! The alert book: which figures are not OK, since when, at what priority, and whether
//! someone has acknowledged them. Fed by every judged figure.

use super::figure::{Figure, Severity};
use crate::rules::{Priority, Rule};
use chrono::{DateTime, Utc};
use std::collections::VecDeque;

/// How many resolved alerts stay listed.
const RESOLVED_KEPT: usize = 50;

#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub id: String,
    pub name: String,
    pub severity: Severity,
    pub priority: Priority,
    pub since: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub acknowledged: bool,
    /// The value (or error) that made it fire, as last seen.
    pub reason: String,
}

#[derive(Clone, Debug, Default)]
pub struct AlertBook {
    /// Firing now, worst first.
    pub active: Vec<Alert>,
    /// Resolved lately, newest first.
    pub resolved: VecDeque<Alert>,
}

impl AlertBook {
    /// Opens, updates or resolves the alert of one figure.
    pub fn observe(&mut self, figure: &Figure, rule: &Rule, now: DateTime<Utc>) {
        let position = self.active.iter().position(|a| a.id == figure.id);
        let reason = match &figure.error {
            Some(error) => error.clone(),
            None => figure.display_value(),
        };
        match (figure.severity, position) {
            (Severity::Ok, None) => {}
            (Severity::Ok, Some(i)) => {
                let mut alert = self.active.remove(i);
                alert.resolved_at = Some(now);
                self.resolved.push_front(alert);
                self.resolved.truncate(RESOLVED_KEPT);
            }
            (severity, Some(i)) => {
                let alert = &mut self.active[i];
                if alert.severity != severity {
                    // A change of severity is news: it needs a fresh acknowledgement.
                    alert.acknowledged =
                        alert.acknowledged && severity.rank() < alert.severity.rank();
                    alert.severity = severity;
                    alert.priority = rule.priority_for(severity).unwrap_or(Priority::P3);
                }
                alert.reason = reason;
            }
            (severity, None) => self.active.push(Alert {
                id: figure.id.clone(),
                name: figure.name.clone(),
                severity,
                priority: rule.priority_for(severity).unwrap_or(Priority::P3),
                since: now,
                resolved_at: None,
                acknowledged: false,
                reason,
            }),
        }
        self.active.sort_by(|a, b| {
            a.priority
                .cmp(&b.priority)
                .then(b.severity.rank().cmp(&a.severity.rank()))
                .then(a.since.cmp(&b.since))
        });
    }

    /// Acknowledges one active alert by id. Returns whether it existed.
    pub fn acknowledge(&mut self, id: &str) -> bool {
        match self.active.iter_mut().find(|a| a.id == id) {
            Some(alert) => {
                alert.acknowledged = true;
                true
            }
            None => false,
        }
    }

    pub fn unacknowledged(&self) -> usize {
        self.active.iter().filter(|a| !a.acknowledged).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::figure::Value;

    fn figure(severity: Severity) -> Figure {
        Figure {
            id: "svc.up".into(),
            name: "svc up".into(),
            value: Value::Number(0.0),
            unit: String::new(),
            severity,
            detail: String::new(),
            error: None,
            at: Utc::now(),
        }
    }

    #[test]
    fn fires_acknowledges_and_resolves() {
        let mut book = AlertBook::default();
        let now = Utc::now();
        book.observe(&figure(Severity::Warn), &Rule::default(), now);
        assert_eq!(book.active.len(), 1);
        assert_eq!(book.active[0].priority, Priority::P2);
        assert!(book.acknowledge("svc.up"));
        book.observe(&figure(Severity::Crit), &Rule::default(), now);
        assert!(!book.active[0].acknowledged, "escalation needs a new ack");
        assert_eq!(book.active[0].since, now);
        book.observe(&figure(Severity::Ok), &Rule::default(), now);
        assert!(book.active.is_empty());
        assert_eq!(book.resolved.len(), 1);
        assert!(book.resolved[0].resolved_at.is_some());
    }
}
