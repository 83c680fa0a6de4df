//! What the TMWS pack keeps in memory of its two big tables, and how their rows are read
//! into it (the incremental reading itself is the generic [`Tail`] of `sqlite/tail.rs`).
//!
//! [`Tail`]: crate::collect::sqlite::tail::Tail

use crate::collect::sqlite::rows::{cell, flag};
use crate::collect::sqlite::tail::{Buckets, Cols, DAY, HOUR, Names, Store, WEEK};
use rusqlite::types::ValueRef;
use std::collections::HashMap;

/// Permission checks in one second.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CheckCounts {
    pub checks: i64,
    pub allow: i64,
    pub deny: i64,
    pub unreadable: i64,
}

impl std::ops::AddAssign for CheckCounts {
    fn add_assign(&mut self, o: Self) {
        self.checks += o.checks;
        self.allow += o.allow;
        self.deny += o.deny;
        self.unreadable += o.unreadable;
    }
}

/// What one `details` text says about a permission check.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Decision {
    /// The text is JSON (SQLite's `json_valid`).
    pub readable: bool,
    /// `details ->> '$.result'` when it is a string.
    pub result: Option<String>,
    pub operation: String,
    pub role: String,
}

/// A JSON value as SQLite's `->>` shows it, in a table cell.
fn json_cell(value: Option<&serde_json::Value>) -> String {
    use serde_json::Value;
    match value {
        None | Some(Value::Null) => "(none)".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => (*b as i64).to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => other.to_string(),
    }
}

/// Reads the fields of seed 000's `details` (`result`, `operation`, `role`).
pub(crate) fn decide(details: Option<&[u8]>) -> Decision {
    let Some(bytes) = details else {
        return Decision::default();
    };
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Err(_) => Decision::default(),
        Ok(value) => {
            let result = value
                .get("result")
                .and_then(|r| r.as_str())
                .map(String::from);
            let deny = result.as_deref() == Some("DENY");
            Decision {
                readable: true,
                result,
                operation: if deny {
                    json_cell(value.get("operation"))
                } else {
                    String::new()
                },
                role: if deny {
                    json_cell(value.get("role"))
                } else {
                    String::new()
                },
            }
        }
    }
}

/// `security_audit_logs`: permission checks of the last hour, denies by operation × role over
/// 7 days, events by type over 24 hours.
#[derive(Debug)]
pub(crate) struct AuditStore {
    pub checks: Buckets<CheckCounts>,
    denied: Buckets<HashMap<u32, i64>>,
    /// The 7-day totals of `denied`, kept as buckets come and go.
    denied_total: HashMap<u32, i64>,
    pub denied_names: Names<(String, String)>,
    events: Buckets<HashMap<u32, i64>>,
    pub event_names: Names<String>,
}

impl Default for AuditStore {
    fn default() -> Self {
        AuditStore {
            checks: Buckets::new(1, HOUR),
            denied: Buckets::new(60, WEEK),
            denied_total: HashMap::new(),
            denied_names: Names::default(),
            events: Buckets::new(60, DAY),
            event_names: Names::default(),
        }
    }
}

impl AuditStore {
    /// Permission checks in the last hour.
    pub fn checks_1h(&self, now: f64) -> CheckCounts {
        self.checks_within(HOUR, now)
    }

    /// Permission checks in the last `window` seconds (at most an hour: the buckets kept).
    pub(crate) fn checks_within(&self, window: i64, now: f64) -> CheckCounts {
        let mut sum = CheckCounts::default();
        for c in self.checks.within(window.min(HOUR), now) {
            sum += *c;
        }
        sum
    }

    /// (operation, role, denies) over 7 days, most denied first.
    pub fn top_denied(&self, limit: usize) -> Vec<(String, String, i64)> {
        let mut rows: Vec<(String, String, i64)> = self
            .denied_total
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(id, n)| {
                let (op, role) = self.denied_names.name(*id);
                (op.clone(), role.clone(), *n)
            })
            .collect();
        rows.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| (&a.0, &a.1).cmp(&(&b.0, &b.1))));
        rows.truncate(limit);
        rows
    }

    /// Start of the oldest minute with an event in the 24 h window.
    pub(crate) fn oldest_event(&self, now: f64) -> Option<f64> {
        self.events.first_start(DAY, now)
    }

    /// (event type, rows in 24 h, of which in the last hour), largest first.
    pub(crate) fn events_24h(&self, now: f64) -> Vec<(String, i64, i64)> {
        let mut day: HashMap<u32, (i64, i64)> = HashMap::new();
        for counts in self.events.within(DAY, now) {
            for (id, n) in counts {
                day.entry(*id).or_default().0 += n;
            }
        }
        for counts in self.events.within(HOUR, now) {
            for (id, n) in counts {
                day.entry(*id).or_default().1 += n;
            }
        }
        let mut rows: Vec<(String, i64, i64)> = day
            .into_iter()
            .map(|(id, (n, h))| (self.event_names.name(id).clone(), n, h))
            .collect();
        rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        rows
    }
}

impl Store for AuditStore {
    const TABLE: &'static str = "security_audit_logs";
    const TIME: &'static str = "created_at";
    const COLUMNS: &'static str = "event_type, details";
    // Only permission checks are read past their event type.
    const REMOTE_COLUMNS: &'static str =
        "event_type, CASE WHEN event_type = 'permission_check' THEN details END";
    const SPAN: i64 = WEEK;

    fn ingest(&mut self, rowid: i64, t: f64, row: &dyn Cols, now: f64) -> rusqlite::Result<()> {
        let event = match row.value(2)? {
            ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
            ValueRef::Null => "(none)".to_string(),
            other => cell(other),
        };
        let is_check = event == "permission_check";
        let id = self.event_names.id(event);
        if let Some(counts) = self.events.at(t, rowid, now) {
            *counts.entry(id).or_default() += 1;
        }
        if !is_check || !(self.checks.live(t, now) || self.denied.live(t, now)) {
            return Ok(());
        }
        let details = match row.value(3)? {
            ValueRef::Text(b) | ValueRef::Blob(b) => Some(b),
            _ => None,
        };
        let decision = decide(details);
        if let Some(c) = self.checks.at(t, rowid, now) {
            c.checks += 1;
            match decision.result.as_deref() {
                _ if !decision.readable => c.unreadable += 1,
                Some("ALLOW") => c.allow += 1,
                Some("DENY") => c.deny += 1,
                _ => {}
            }
        }
        if decision.result.as_deref() == Some("DENY") {
            let key = self.denied_names.id((decision.operation, decision.role));
            if let Some(counts) = self.denied.at(t, rowid, now) {
                *counts.entry(key).or_default() += 1;
                *self.denied_total.entry(key).or_default() += 1;
            }
        }
        Ok(())
    }

    fn expire(&mut self, now: f64) {
        self.checks.expire(now, |_| {});
        self.events.expire(now, |_| {});
        let total = &mut self.denied_total;
        self.denied.expire(now, |gone| {
            for (id, n) in gone {
                if let Some(left) = total.get_mut(&id) {
                    *left -= n;
                }
            }
        });
        self.denied_total.retain(|_, n| *n > 0);
    }

    fn min_live_rowid(&self) -> Option<i64> {
        [
            self.checks.min_rowid(),
            self.denied.min_rowid(),
            self.events.min_rowid(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn clear(&mut self) {
        *self = AuditStore::default();
    }
}

/// License validations in one second.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ValidationCounts {
    pub total: i64,
    pub ok: i64,
    pub failed: i64,
    pub not_found: i64,
    pub invalid: i64,
}

impl std::ops::AddAssign for ValidationCounts {
    fn add_assign(&mut self, o: Self) {
        self.total += o.total;
        self.ok += o.ok;
        self.failed += o.failed;
        self.not_found += o.not_found;
        self.invalid += o.invalid;
    }
}

/// `license_usage_history`: validations of the last hour.
#[derive(Debug)]
pub(crate) struct UsageStore {
    pub validations: Buckets<ValidationCounts>,
}

impl Default for UsageStore {
    fn default() -> Self {
        UsageStore {
            validations: Buckets::new(1, HOUR),
        }
    }
}

impl UsageStore {
    pub(crate) fn last_hour(&self, now: f64) -> ValidationCounts {
        let mut sum = ValidationCounts::default();
        for c in self.validations.within(HOUR, now) {
            sum += *c;
        }
        sum
    }
}

impl Store for UsageStore {
    const TABLE: &'static str = "license_usage_history";
    const TIME: &'static str = "validated_at";
    // Compared in SQL so a valid stored as text or real compares as the seed's `valid = 1` does.
    const COLUMNS: &'static str = "valid = 1, valid = 0, license_key_id IS NULL";
    const REMOTE_COLUMNS: &'static str = Self::COLUMNS;
    const SPAN: i64 = HOUR;

    fn ingest(&mut self, rowid: i64, t: f64, row: &dyn Cols, now: f64) -> rusqlite::Result<()> {
        let ok = flag(row.value(2)?)?;
        let failed = flag(row.value(3)?)?;
        let no_key = flag(row.value(4)?)?.unwrap_or(false);
        if let Some(c) = self.validations.at(t, rowid, now) {
            c.total += 1;
            if ok == Some(true) {
                c.ok += 1;
            }
            if failed == Some(true) {
                c.failed += 1;
                if no_key {
                    c.not_found += 1;
                } else {
                    c.invalid += 1;
                }
            }
        }
        Ok(())
    }

    fn expire(&mut self, now: f64) {
        self.validations.expire(now, |_| {});
    }

    fn min_live_rowid(&self) -> Option<i64> {
        self.validations.min_rowid()
    }

    fn clear(&mut self) {
        *self = UsageStore::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_read_like_sqlite_json() {
        let d = decide(Some(br#"{"result":"DENY","operation":"x.y","role":null}"#));
        assert_eq!(
            d,
            Decision {
                readable: true,
                result: Some("DENY".into()),
                operation: "x.y".into(),
                role: "(none)".into()
            }
        );
        assert!(!decide(Some(b"result=DENY")).readable);
        assert!(!decide(None).readable);
        let odd = decide(Some(b"[1, 2]"));
        assert!(odd.readable && odd.result.is_none());
        let num = decide(Some(br#"{"result":"DENY","operation":7,"role":true}"#));
        assert_eq!((num.operation.as_str(), num.role.as_str()), ("7", "1"));
    }
}
