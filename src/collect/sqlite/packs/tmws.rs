//! The TMWS pack: seed 000's post-deploy checklist as figures of a SQLite source.
//!
//! | seed 000 step | figures (`<source>.` + …) |
//! |---|---|
//! | 2 RBAC permission checks | `rbac.checks_1h`, `rbac.deny_pct_1h`, `rbac.allow_1h`, `rbac.deny_1h` |
//! | 3 license generation | `license.generated_1h`, `license.revoked_1h`, table `license.by_tier` |
//! | 4 license validation, playbook B | `license.validations_1h`, `license.failure_pct_1h`, `license.failures_not_found_1h`, `license.failures_invalid_1h` |
//! | 5 migration | `db.migration` |
//! | 6 role distribution | `agents.admin_pct`, `agents.viewer_pct` |
//! | 7 audit volume | `audit.volume_24h` |
//! | 8 expiration, playbook B.2 | `license.expiring_7d`, `license.expired_active` |
//! | 9 denial analysis | table `rbac.top_denied` |
//!
//! (Step 11, size/freelist/integrity, is common to every SQLite source: see `sqlite.rs`.)
//! The figure ids are in the catalogue (`model::catalog::tmws`).
//!
//! Time windows compare by time, not text: applications write both
//! `YYYY-MM-DD HH:MM:SS[.ffffff]` and ISO-8601 `YYYY-MM-DDTHH:MM:SS[.fff](Z|±hh:mm)`, and the
//! seed's `created_at > datetime('now','-1 hour')` counts ISO rows from earlier the same day as
//! inside the window (`'T'` sorts after `' '`) and ignores offsets. A timestamp SQLite's date
//! functions cannot read is outside every window; such rows are counted and said in details.
//!
//! The two big append-only tables (`security_audit_logs`, `license_usage_history`) are read
//! incrementally (the generic [`Tail`], with this pack's [`stores`]): after the first read a refresh costs the same on ten million
//! rows as on ten thousand. The small tables (`license_keys`, `agents`, `alembic_version`)
//! are read with plain queries on every refresh: their figures change with time and with
//! `UPDATE`s (a key expires, gets revoked, an agent changes role), not only with inserts, and
//! they hold thousands of rows, not millions.
//!
//! Each section reads its raw counts into a plain struct (`RbacHour`, `Validations`, …) and
//! turns those into readings separately. [`Pack::reset`] drops the in-memory counts when
//! the file is replaced.

mod stores;

use crate::collect::sqlite::pack::{Pack, PackDb, PackOptions, now_secs, split_busy};
use crate::collect::sqlite::rows::{SqlRows, cell, col, first_int, int};
use crate::collect::sqlite::tail::{self, Tail, TailFetch};
use crate::collect::sqlite::{Busy, Harvest, Section};
use crate::model::catalog::Fig;
use crate::model::catalog::sqlite::PackFigures;
use crate::model::catalog::tmws::*;
use crate::model::figure::Reading;
use crate::model::rule::{Comparison, Priority, Rule, Threshold};
use crate::model::update::Table;
use rusqlite::types::ValueRef;
use std::time::Instant;
use stores::{AuditStore, UsageStore};

/// The pack's fixed queries of the small tables (the remote reader sends them all at once).
pub(crate) const MIGRATION_SQL: &str = "SELECT version_num FROM alembic_version LIMIT 3";
pub(crate) const MIGRATION_COUNT_SQL: &str = "SELECT COUNT(*) FROM alembic_version";
pub(crate) const AGENTS_SQL: &str =
    "SELECT lower(role) AS r, COUNT(*) AS n FROM agents GROUP BY r ORDER BY n DESC, r";
pub(crate) const SCHEMA_VERSION_SQL: &str = "PRAGMA schema_version";

/// Checks needed in one minute before `rbac.deny_pct_1m` can warn.
const MIN_CHECKS_1M: i64 = 20;

const RBAC_FIGS: &[Fig] = &[
    RBAC_CHECKS_1H,
    RBAC_DENY_PCT_1H,
    RBAC_DENY_PCT_1M,
    RBAC_ALLOW_1H,
    RBAC_DENY_1H,
];
const VALIDATION_FIGS: &[Fig] = &[
    LICENSE_VALIDATIONS_1H,
    LICENSE_FAILURE_PCT_1H,
    LICENSE_NOT_FOUND_1H,
    LICENSE_INVALID_1H,
];
const KEY_FIGS: &[Fig] = &[
    LICENSE_GENERATED_1H,
    LICENSE_REVOKED_1H,
    LICENSE_EXPIRING_7D,
    LICENSE_EXPIRED_ACTIVE,
];

/// How many rows the top-denied drill-down keeps (seed 000 step 9).
const TOP_DENIED_LIMIT: usize = 20;

/// SQL true when the timestamp column `col` lies after `now` moved by `modifier` ("-1 hour"),
/// for both timestamp spellings. The leading text comparison is only a superset filter (any
/// UTC offset is less than a day) that lets an index on `col` narrow the scan; `julianday`
/// decides.
fn after(col: &str, modifier: &str) -> String {
    format!(
        "({col} >= date('now', '{modifier}', '-1 day') AND julianday({col}) > julianday('now', '{modifier}'))"
    )
}

/// The pack's SQL for the small tables, built once.
pub(crate) struct Queries {
    generated_by_tier: String,
    revoked_by_tier: String,
    expiring_by_tier: String,
    expired_active: String,
}

impl Queries {
    fn new() -> Self {
        Queries {
            generated_by_tier: format!(
                "SELECT tier, COUNT(*) AS generated, \
                        COUNT(CASE WHEN revoked_at IS NULL THEN 1 END), \
                        COUNT(CASE WHEN revoked_at IS NOT NULL THEN 1 END) \
                 FROM license_keys WHERE {window} \
                 GROUP BY tier ORDER BY generated DESC, tier",
                window = after("created_at", "-1 hour"),
            ),
            revoked_by_tier: format!(
                "SELECT tier, COUNT(*) AS n FROM license_keys \
                 WHERE revoked_at IS NOT NULL AND {window} \
                 GROUP BY tier ORDER BY n DESC, tier",
                window = after("revoked_at", "-1 hour"),
            ),
            expiring_by_tier: format!(
                "SELECT tier, COUNT(*) AS n FROM license_keys \
                 WHERE revoked_at IS NULL AND {window} \
                   AND julianday(expires_at) <= julianday('now', '+7 days') \
                 GROUP BY tier ORDER BY n DESC, tier",
                window = after("expires_at", "+0 seconds"),
            ),
            expired_active: "SELECT COUNT(*) FROM license_keys \
                             WHERE revoked_at IS NULL AND julianday(expires_at) < julianday('now')"
                .to_string(),
        }
    }
}

/// The TMWS pack of one source, with what it remembers between polls.
pub(crate) struct TmwsPack {
    expected_migration: Option<String>,
    queries: Queries,
    audit: Tail<AuditStore>,
    usage: Tail<UsageStore>,
    /// `PRAGMA schema_version` when the tables were last read (VACUUM changes it).
    schema_version: Option<i64>,
    /// Table errors seen while catching up, reported by the next `collect`.
    audit_error: Option<String>,
    usage_error: Option<String>,
}

impl TmwsPack {
    pub fn new(expected_migration: Option<String>) -> Self {
        let expected_migration = expected_migration.filter(|m| !m.trim().is_empty());
        TmwsPack {
            expected_migration,
            queries: Queries::new(),
            audit: Tail::new(AuditStore::default()),
            usage: Tail::new(UsageStore::default()),
            schema_version: None,
            audit_error: None,
            usage_error: None,
        }
    }

    /// The registry's constructor.
    pub fn build(options: &PackOptions) -> Box<dyn Pack> {
        Box::new(TmwsPack::new(options.expected_migration.clone()))
    }

    /// A VACUUM (or any schema change) may renumber rows: count again from the start.
    fn check_schema<D: SqlRows + ?Sized>(&mut self, db: &mut D) -> Result<(), Busy> {
        let version = split_busy(
            db.rows(SCHEMA_VERSION_SQL)
                .and_then(|rows| first_int(&rows)),
        )?;
        if let Ok(version) = version {
            if self.schema_version.is_some_and(|v| v != version) {
                self.audit.mark_replaced();
                self.usage.mark_replaced();
            }
            self.schema_version = Some(version);
        }
        Ok(())
    }
}

impl Pack for TmwsPack {
    fn catalog(&self) -> &'static PackFigures {
        &PACK
    }

    fn reset(&mut self) {
        if self.audit.rows_read > 0 {
            self.audit.mark_replaced();
        } else {
            self.audit.reset();
        }
        if self.usage.rows_read > 0 {
            self.usage.mark_replaced();
        } else {
            self.usage.reset();
        }
        self.schema_version = None;
    }

    fn small_queries(&self) -> Vec<(&'static str, String)> {
        let q = &self.queries;
        vec![
            ("schema", SCHEMA_VERSION_SQL.to_string()),
            ("keys", q.generated_by_tier.clone()),
            ("keys", q.revoked_by_tier.clone()),
            ("keys", q.expiring_by_tier.clone()),
            ("keys", q.expired_active.clone()),
            ("migration", MIGRATION_SQL.to_string()),
            ("migration", MIGRATION_COUNT_SQL.to_string()),
            ("agents", AGENTS_SQL.to_string()),
        ]
    }

    /// The two big tables: `security_audit_logs`, then `license_usage_history`.
    fn tails(&self) -> Vec<TailFetch> {
        vec![self.audit.fetch(), self.usage.fetch()]
    }

    fn read_tails(
        &mut self,
        db: &mut dyn PackDb,
        now: f64,
        deadline: Option<Instant>,
    ) -> Result<bool, Busy> {
        self.check_schema(db)?;
        let audit = split_busy(self.audit.ingest(db, now, deadline))?;
        let usage = split_busy(self.usage.ingest(db, now, deadline))?;
        let done = audit.as_ref().map_or(true, |d| *d) && usage.as_ref().map_or(true, |d| *d);
        self.audit_error = audit.err();
        self.usage_error = usage.err();
        Ok(done)
    }

    fn collect(
        &mut self,
        db: &mut dyn PackDb,
        harvest: &mut Harvest,
        deadline: Option<Instant>,
        now: Option<f64>,
    ) -> Result<bool, Busy> {
        if !self.read_tails(db, now.unwrap_or_else(now_secs), deadline)? {
            return Ok(false);
        }
        let now = now.unwrap_or_else(now_secs);
        let source = harvest.source.clone();
        let s = source.as_str();
        let q = &self.queries;
        match &self.audit_error {
            Some(e) => harvest.fail(RBAC_FIGS, e),
            None => harvest.add(RBAC_FIGS, Ok(rbac(&self.audit, now, s)))?,
        }
        match &self.usage_error {
            Some(e) => harvest.fail(VALIDATION_FIGS, e),
            None => harvest.add(VALIDATION_FIGS, Ok(validations(&self.usage, now, s)))?,
        }
        harvest.add(KEY_FIGS, license_keys(db, q, s))?;
        harvest.add(
            &[DB_MIGRATION],
            migration(db, s, self.expected_migration.as_deref()),
        )?;
        harvest.add(&[AGENTS_ADMIN_PCT, AGENTS_VIEWER_PCT], agents(db, s))?;
        match &self.audit_error {
            Some(e) => harvest.fail(&[AUDIT_VOLUME_24H, AUDIT_JUMP_1H], e),
            None => harvest.add(
                &[AUDIT_VOLUME_24H, AUDIT_JUMP_1H],
                Ok(audit(&self.audit, now, s)),
            )?,
        }
        Ok(true)
    }
}

/// Notes on how a big table was read, for details.
fn tail_notes<S: tail::Store>(tail: &Tail<S>) -> Vec<String> {
    let mut notes = Vec::new();
    if tail.unreadable_times > 0 {
        notes.push(format!(
            "{} with a {} SQLite cannot read as a time (outside every window)",
            plural(tail.unreadable_times, "row", "rows"),
            S::TIME
        ));
    }
    notes.extend(tail.recount_note());
    notes
}

/// `part` of `whole` in percent; 0 when there is no whole (the detail then says so).
pub(crate) fn pct(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// "FREE 3 · PRO 1", the largest first, at most six.
fn breakdown(items: &[(String, i64)]) -> String {
    const SHOWN: usize = 6;
    let mut text = items
        .iter()
        .take(SHOWN)
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(" · ");
    if items.len() > SHOWN {
        text.push_str(&format!(" · +{} more", items.len() - SHOWN));
    }
    text
}

fn plural(n: i64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Permission checks of the last hour (seed 000 step 2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RbacHour {
    pub checks: i64,
    pub allow: i64,
    pub deny: i64,
    /// Rows whose `details` is missing or not JSON (counted as checks, neither allow nor deny).
    pub unreadable: i64,
    /// How the table was read (unreadable timestamps, a recent recount), for details.
    pub notes: Vec<String>,
}

impl RbacHour {
    pub fn readings(&self, source: &str) -> Vec<Reading> {
        let other = self.checks - self.allow - self.deny - self.unreadable;
        let mut notes = Vec::new();
        if self.unreadable > 0 {
            notes.push(format!(
                "{} without valid JSON details",
                plural(self.unreadable, "row", "rows")
            ));
        }
        if other > 0 {
            notes.push(format!(
                "{} with a result other than ALLOW/DENY",
                plural(other, "row", "rows")
            ));
        }
        notes.extend(self.notes.iter().cloned());
        let mut split = format!("allow {} · deny {}", self.allow, self.deny);
        for note in &notes {
            split.push_str(" · ");
            split.push_str(note);
        }
        let mut deny_detail = if self.checks == 0 {
            "no permission checks in the last hour".to_string()
        } else {
            format!("{} of {} checks denied", self.deny, self.checks)
        };
        for note in &self.notes {
            deny_detail.push_str(" · ");
            deny_detail.push_str(note);
        }
        vec![
            RBAC_CHECKS_1H
                .count(source, self.checks)
                .with_rule(Rule::crit_only(Threshold::below(1.0)).with_priority(Priority::P1))
                .with_detail(if self.checks == 0 {
                    let mut text =
                        "no permission checks in the last hour: RBAC may not be active".to_string();
                    for note in &self.notes {
                        text.push_str(" · ");
                        text.push_str(note);
                    }
                    text
                } else {
                    split.clone()
                }),
            RBAC_DENY_PCT_1H
                .number(source, pct(self.deny, self.checks), "%")
                .with_rule(
                    Rule::warn_crit(Threshold::above(20.0), Threshold::above(50.0))
                        .with_priority(Priority::P1),
                )
                .with_detail(deny_detail),
            RBAC_ALLOW_1H
                .count(source, self.allow)
                .with_detail(split.clone()),
            RBAC_DENY_1H.count(source, self.deny).with_detail(split),
        ]
    }
}

fn rbac(tail: &Tail<AuditStore>, now: f64, source: &str) -> Section {
    let c = tail.store.checks_1h(now);
    let hour = RbacHour {
        checks: c.checks,
        allow: c.allow,
        deny: c.deny,
        unreadable: c.unreadable,
        notes: tail_notes(tail),
    };
    let rows = tail
        .store
        .top_denied(TOP_DENIED_LIMIT)
        .into_iter()
        .map(|(op, role, n)| vec![op, role, n.to_string()])
        .collect();
    let table = Table {
        title: "top denied operation × role (7 days)".into(),
        columns: vec!["operation".into(), "role".into(), "denies".into()],
        rows,
    };
    let recent = tail.store.checks_within(60, now);
    let mut readings = hour.readings(source);
    // A handful of checks says little: the short window is judged only from a real sample,
    // so a quiet system does not raise alerts on two denials out of three.
    let recent_figure = RBAC_DENY_PCT_1M.number(source, pct(recent.deny, recent.checks), "%");
    readings.push(if recent.checks >= MIN_CHECKS_1M {
        recent_figure
            .with_rule(
                Rule::warn_crit(Threshold::above(20.0), Threshold::above(50.0))
                    .with_priority(Priority::P2),
            )
            .with_detail(format!(
                "{} of {} checks denied",
                recent.deny, recent.checks
            ))
    } else {
        recent_figure
            .with_rule(Rule::default())
            .with_detail(format!(
                "{} of {} checks denied: fewer than {MIN_CHECKS_1M}, not judged",
                recent.deny, recent.checks
            ))
    });
    Section {
        readings,
        tables: vec![(format!("{source}.{TABLE_TOP_DENIED}"), table)],
    }
}

/// License validations of the last hour (seed 000 step 4 and playbook B.1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Validations {
    pub total: i64,
    pub ok: i64,
    pub failed: i64,
    pub not_found: i64,
    pub invalid: i64,
    /// How the table was read (unreadable timestamps, a recent recount), for details.
    pub notes: Vec<String>,
}

impl Validations {
    /// Every validation of the hour failed: seed 000's escalation matrix makes that P0.
    pub(crate) fn all_failing(&self) -> bool {
        self.total > 0 && self.failed == self.total
    }

    pub fn readings(&self, source: &str) -> Vec<Reading> {
        let reasons = format!(
            "key not found {} · invalid or expired {}",
            self.not_found, self.invalid
        );
        let mut split = format!("ok {} · failed {}", self.ok, self.failed);
        let odd = self.total - self.ok - self.failed;
        if odd > 0 {
            split.push_str(&format!(
                " · {} with valid neither 0 nor 1",
                plural(odd, "row", "rows")
            ));
        }
        let mut failure = if self.total == 0 {
            "no validations in the last hour".to_string()
        } else if self.all_failing() {
            format!("all {} failed: {reasons} (P0: roll back?)", self.total)
        } else {
            format!("{} of {} failed: {reasons}", self.failed, self.total)
        };
        for note in &self.notes {
            split.push_str(" · ");
            split.push_str(note);
            failure.push_str(" · ");
            failure.push_str(note);
        }
        let priority = if self.all_failing() {
            Priority::P0
        } else {
            Priority::P1
        };
        vec![
            LICENSE_VALIDATIONS_1H
                .count(source, self.total)
                .with_detail(split),
            LICENSE_FAILURE_PCT_1H
                .number(source, pct(self.failed, self.total), "%")
                .with_rule(
                    Rule::warn_crit(Threshold::above(10.0), Threshold::above(50.0))
                        .with_priority(priority),
                )
                .with_detail(failure),
            LICENSE_NOT_FOUND_1H
                .count(source, self.not_found)
                .with_detail("users presenting unknown keys"),
            LICENSE_INVALID_1H
                .count(source, self.invalid)
                .with_detail("bad signature or expired: check SECRET_KEY, expirations"),
        ]
    }
}

fn validations(tail: &Tail<UsageStore>, now: f64, source: &str) -> Section {
    let c = tail.store.last_hour(now);
    let v = Validations {
        total: c.total,
        ok: c.ok,
        failed: c.failed,
        not_found: c.not_found,
        invalid: c.invalid,
        notes: tail_notes(tail),
    };
    Section {
        readings: v.readings(source),
        tables: Vec::new(),
    }
}

/// One tier's licenses generated in the last hour (seed 000 step 3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TierRow {
    pub tier: String,
    pub generated: i64,
    pub active: i64,
    pub revoked: i64,
}

/// License keys: generation, revocation, expiry (seed 000 steps 3 and 8, playbook B.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Keys {
    pub generated: Vec<TierRow>,
    pub revoked_1h: Vec<(String, i64)>,
    pub expiring_7d: Vec<(String, i64)>,
    pub expired_active: i64,
}

impl Keys {
    pub fn readings(&self, source: &str) -> Vec<Reading> {
        let generated: i64 = self.generated.iter().map(|t| t.generated).sum();
        let active: i64 = self.generated.iter().map(|t| t.active).sum();
        let revoked_of_new: i64 = self.generated.iter().map(|t| t.revoked).sum();
        let by_tier: Vec<(String, i64)> = self
            .generated
            .iter()
            .map(|t| (t.tier.clone(), t.generated))
            .collect();
        let revoked: i64 = self.revoked_1h.iter().map(|(_, n)| n).sum();
        let expiring: i64 = self.expiring_7d.iter().map(|(_, n)| n).sum();

        let mut generated_detail = if generated == 0 {
            "none in the last hour".to_string()
        } else {
            format!(
                "{} (active {active} · revoked {revoked_of_new})",
                breakdown(&by_tier)
            )
        };
        if generated > 0 && active == 0 {
            generated_detail.push_str(" · all revoked: system malfunction?");
        }
        vec![
            LICENSE_GENERATED_1H
                .count(source, generated)
                .with_rule(Rule::crit_only(Threshold::above(1000.0)).with_priority(Priority::P1))
                .with_detail(generated_detail),
            LICENSE_REVOKED_1H
                .count(source, revoked)
                .with_detail(if revoked == 0 {
                    "none in the last hour".to_string()
                } else {
                    breakdown(&self.revoked_1h)
                }),
            LICENSE_EXPIRING_7D
                .count(source, expiring)
                .with_rule(Rule::warn_only(Threshold::above(100.0)).with_priority(Priority::P2))
                .with_detail(if expiring > 100 {
                    format!("{}: notify users", breakdown(&self.expiring_7d))
                } else if expiring == 0 {
                    "none (not revoked, expiring in the next 7 days)".to_string()
                } else {
                    breakdown(&self.expiring_7d)
                }),
            LICENSE_EXPIRED_ACTIVE
                .count(source, self.expired_active)
                .with_rule(Rule::warn_only(Threshold::above(0.0)).with_priority(Priority::P2))
                .with_detail(if self.expired_active > 0 {
                    "past expires_at but not revoked".to_string()
                } else {
                    String::new()
                }),
        ]
    }

    pub fn table(&self) -> Table {
        Table {
            title: "licenses generated in the last hour, by tier".into(),
            columns: vec![
                "tier".into(),
                "generated".into(),
                "active".into(),
                "revoked".into(),
            ],
            rows: self
                .generated
                .iter()
                .map(|t| {
                    vec![
                        t.tier.clone(),
                        t.generated.to_string(),
                        t.active.to_string(),
                        t.revoked.to_string(),
                    ]
                })
                .collect(),
        }
    }
}

fn counts_by<D: SqlRows + ?Sized>(db: &mut D, sql: &str) -> rusqlite::Result<Vec<(String, i64)>> {
    db.rows(sql)?
        .iter()
        .map(|row| Ok((cell(ValueRef::from(col(row, 0)?)), int(col(row, 1)?)?)))
        .collect()
}

fn license_keys<D: SqlRows + ?Sized>(
    db: &mut D,
    q: &Queries,
    source: &str,
) -> rusqlite::Result<Section> {
    let generated = db
        .rows(&q.generated_by_tier)?
        .iter()
        .map(|row| {
            Ok(TierRow {
                tier: cell(ValueRef::from(col(row, 0)?)),
                generated: int(col(row, 1)?)?,
                active: int(col(row, 2)?)?,
                revoked: int(col(row, 3)?)?,
            })
        })
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let keys = Keys {
        generated,
        revoked_1h: counts_by(db, &q.revoked_by_tier)?,
        expiring_7d: counts_by(db, &q.expiring_by_tier)?,
        expired_active: first_int(&db.rows(&q.expired_active)?)?,
    };
    Ok(Section {
        readings: keys.readings(source),
        tables: vec![(format!("{source}.{TABLE_BY_TIER}"), keys.table())],
    })
}

/// Seed 000 step 5: `alembic_version` holds exactly one row, the expected head.
fn migration<D: SqlRows + ?Sized>(
    db: &mut D,
    source: &str,
    expected: Option<&str>,
) -> rusqlite::Result<Section> {
    let versions = db
        .rows(MIGRATION_SQL)?
        .iter()
        .map(|row| Ok(cell(ValueRef::from(col(row, 0)?))))
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let reading = match versions.as_slice() {
        [version] => {
            let reading = DB_MIGRATION.text(source, version.clone());
            match expected {
                Some(head) => reading
                    .with_rule(Rule::expecting(head).with_priority(Priority::P1))
                    .with_detail(if version == head {
                        "at the expected head".to_string()
                    } else {
                        format!("expected {head}: rollback or failed migration?")
                    }),
                None => reading.with_detail("no expected_migration configured"),
            }
        }
        // Zero rows or several: the seed calls this corruption, whatever the expected head.
        rows => {
            let count: i64 = if rows.len() > 2 {
                first_int(&db.rows(MIGRATION_COUNT_SQL)?)?
            } else {
                rows.len() as i64
            };
            DB_MIGRATION
                .text(source, plural(count, "row", "rows"))
                .with_rule(Rule::expecting(expected.unwrap_or("1 row")).with_priority(Priority::P0))
                .with_detail(format!(
                    "alembic_version must hold exactly one row{}",
                    if rows.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", rows.join(", "))
                    }
                ))
        }
    };
    Ok(Section {
        readings: vec![reading],
        tables: Vec::new(),
    })
}

/// Seed 000 step 6: role distribution. Roles compare case-insensitively (ORMs often store
/// enum names in capitals).
fn agents<D: SqlRows + ?Sized>(db: &mut D, source: &str) -> rusqlite::Result<Section> {
    let roles = counts_by(db, AGENTS_SQL)?;
    let total: i64 = roles.iter().map(|(_, n)| n).sum();
    let of = |name: &str| roles.iter().find(|(r, _)| r == name).map_or(0, |(_, n)| *n);
    let (admins, viewers) = (of("admin"), of("viewer"));
    let spread = if total == 0 {
        "no agents".to_string()
    } else {
        format!(
            "{} ({})",
            breakdown(&roles),
            plural(total, "agent", "agents")
        )
    };
    let admin_pct = pct(admins, total);
    let viewer_pct = pct(viewers, total);
    let readings = vec![
        AGENTS_ADMIN_PCT
            .number(source, admin_pct, "%")
            .with_rule(Rule::warn_only(Threshold::above(20.0)).with_priority(Priority::P1))
            .with_detail(if admin_pct > 20.0 {
                format!("{spread}: review admin assignments")
            } else {
                spread.clone()
            }),
        AGENTS_VIEWER_PCT
            .number(source, viewer_pct, "%")
            .with_rule(
                Rule::warn_only(Threshold::new(Comparison::Equal, 100.0))
                    .with_priority(Priority::P1),
            )
            .with_detail(if total > 0 && viewers == total {
                format!("{spread}: everyone is a viewer, role assignment may be broken")
            } else {
                spread
            }),
    ];
    Ok(Section {
        readings,
        tables: Vec::new(),
    })
}

/// Audit rows of the last 24 hours by event type (seed 000 step 7).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct AuditDay {
    /// (event type, rows in 24 h, of which in the last hour), largest first.
    pub by_type: Vec<(String, i64, i64)>,
    /// Hours of history before the last hour that the 24 h window actually covers (at most
    /// 23): a database that started logging 3 hours ago has a 2-hour baseline, not 23.
    pub baseline_hours: f64,
    /// How the table was read (unreadable timestamps, a recent recount), for details.
    pub notes: Vec<String>,
}

impl AuditDay {
    pub fn total(&self) -> i64 {
        self.by_type.iter().map(|(_, n, _)| n).sum()
    }

    pub(crate) fn last_hour(&self) -> i64 {
        self.by_type.iter().map(|(_, _, h)| h).sum()
    }

    /// The last hour against the hourly mean of the hours before it in the 24 h window (the
    /// seed's "sudden 10x increase"); `None` without at least an hour of baseline.
    pub fn jump(&self) -> Option<f64> {
        let before = self.total() - self.last_hour();
        (before > 0 && self.baseline_hours >= 1.0)
            .then(|| self.last_hour() as f64 / (before as f64 / self.baseline_hours))
    }

    pub fn readings(&self, source: &str) -> Vec<Reading> {
        let total = self.total();
        let types: Vec<(String, i64)> = self
            .by_type
            .iter()
            .map(|(t, n, _)| (t.clone(), *n))
            .collect();
        let mut detail = if total == 0 {
            "no audit events in 24 h".to_string()
        } else {
            breakdown(&types)
        };
        if !self.by_type.iter().any(|(t, _, _)| t == "permission_check") {
            detail.push_str(" · no permission_check events: RBAC audit logging broken?");
        }
        detail.push_str(&format!(" · last hour {}", self.last_hour()));
        for note in &self.notes {
            detail.push_str(" · ");
            detail.push_str(note);
        }
        let before = self.total() - self.last_hour();
        let jump = match self.jump() {
            Some(x) => AUDIT_JUMP_1H.number(source, x, "×").with_detail(format!(
                "last hour {} against {:.1}/h over the {:.0} h before{}",
                self.last_hour(),
                before as f64 / self.baseline_hours,
                self.baseline_hours,
                if x >= 10.0 {
                    ": attack or misconfiguration?"
                } else {
                    ""
                }
            )),
            None => AUDIT_JUMP_1H
                .text(source, "no baseline")
                .with_detail("no audit events in the hours before the last one to compare with"),
        };
        vec![
            AUDIT_VOLUME_24H.count(source, total).with_detail(detail),
            jump.with_rule(
                Rule::crit_only(Threshold::new(Comparison::GreaterOrEqual, 10.0))
                    .with_priority(Priority::P1),
            ),
        ]
    }
}

fn audit(tail: &Tail<AuditStore>, now: f64, source: &str) -> Section {
    let by_type = tail.store.events_24h(now);
    let baseline_hours = tail.store.oldest_event(now).map_or(0.0, |oldest| {
        ((now - 3600.0 - oldest) / 3600.0).clamp(0.0, 23.0)
    });
    let day = AuditDay {
        by_type,
        baseline_hours,
        notes: tail_notes(tail),
    };
    Section {
        readings: day.readings(source),
        tables: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::figure::Severity;
    use chrono::{Duration, Utc};
    use rusqlite::Connection;

    /// Whether `after(col, modifier)` holds for one timestamp text.
    fn holds(text: &str, modifier: &str) -> bool {
        let conn = Connection::open_in_memory().unwrap();
        let sql = format!(
            "SELECT COALESCE({}, 0) FROM (SELECT ?1 AS ts)",
            after("ts", modifier)
        );
        conn.query_row(&sql, [text], |row| row.get(0)).unwrap()
    }

    #[test]
    fn window_reads_every_spelling_by_time() {
        let now = Utc::now();
        for (minutes_ago, inside) in [(30, true), (90, false)] {
            let at = now - Duration::minutes(minutes_ago);
            let spellings = [
                at.format("%Y-%m-%d %H:%M:%S").to_string(),
                at.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
                at.format("%Y-%m-%dT%H:%M:%S").to_string(),
                at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
                (at + Duration::hours(2))
                    .format("%Y-%m-%dT%H:%M:%S+02:00")
                    .to_string(),
                (at + Duration::minutes(13 * 60 + 45))
                    .format("%Y-%m-%dT%H:%M:%S%.6f+13:45")
                    .to_string(),
                (at - Duration::hours(11))
                    .format("%Y-%m-%dT%H:%M:%S-11:00")
                    .to_string(),
            ];
            for text in spellings {
                assert_eq!(
                    holds(&text, "-1 hour"),
                    inside,
                    "{text} ({minutes_ago} min ago)"
                );
            }
        }
        // Unparseable or missing timestamps are outside every window, not an error.
        assert!(!holds("yesterday", "-1 hour"));
        assert!(!holds("", "-1 hour"));
    }

    #[test]
    fn percent_of_nothing_is_zero_with_words() {
        assert_eq!(pct(3, 10), 30.0);
        assert_eq!(pct(0, 0), 0.0);
        let readings = RbacHour::default().readings("s");
        assert!(readings[1].detail.contains("no permission checks"));
        let readings = Validations::default().readings("s");
        assert!(readings[1].detail.contains("no validations"));
    }

    #[test]
    fn breakdown_is_short() {
        let items: Vec<(String, i64)> = (0..8).map(|i| (format!("T{i}"), 10 - i)).collect();
        assert_eq!(breakdown(&items[..2]), "T0 10 · T1 9");
        assert!(breakdown(&items).ends_with("· +2 more"));
    }

    #[test]
    fn audit_jump_against_the_hours_before() {
        let day = AuditDay {
            by_type: vec![("permission_check".into(), 230 + 100, 100)],
            baseline_hours: 23.0,
            notes: Vec::new(),
        };
        // 230 rows over the 23 hours before: 10 an hour; 100 in the last hour is a 10x jump.
        assert_eq!(day.jump(), Some(10.0));
        let readings = day.readings("s");
        assert!(readings[1].detail.contains("attack or misconfiguration"));
        assert_eq!(crate::rules::judge(&readings[1], None), Severity::Crit);
        // The same rows over a 2-hour history are a steady rate, not a jump.
        let young = AuditDay {
            baseline_hours: 2.0,
            by_type: vec![("permission_check".into(), 300, 100)],
            notes: Vec::new(),
        };
        assert_eq!(young.jump(), Some(1.0));
        assert_eq!(
            crate::rules::judge(&young.readings("s")[1], None),
            Severity::Ok
        );
        let fresh = AuditDay {
            by_type: vec![("permission_check".into(), 5, 5)],
            baseline_hours: 0.0,
            notes: Vec::new(),
        };
        assert_eq!(fresh.jump(), None);
        assert_eq!(
            crate::rules::judge(&fresh.readings("s")[1], None),
            Severity::Ok
        );
        let quiet = AuditDay {
            by_type: vec![("login".into(), 5, 1)],
            baseline_hours: 23.0,
            notes: Vec::new(),
        };
        assert!(
            quiet.readings("s")[0]
                .detail
                .contains("no permission_check events")
        );
    }

    #[test]
    fn every_figure_has_a_distinct_id() {
        let mut keys: Vec<&str> = ALL.iter().map(|f| f.key).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), ALL.len());
    }
}
