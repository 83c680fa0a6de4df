//! The SQLite collector and the TMWS pack on real database files made from
//! `assets/tmws_schema.sql`: figures against seed 000's own SQL, timestamp formats, bad input,
//! read-only behaviour and a concurrent writer.

use chrono::{DateTime, Duration, Utc};
use rusqlite::Connection;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration as StdDuration;
use watchpost::collect::Collector;
use watchpost::collect::sqlite::SqliteCollector;
use watchpost::config::SqliteSource;
use watchpost::model::figure::{Reading, Severity, Value};
use watchpost::model::update::{SourceHealth, Table, Update};
use watchpost::rules;

const SCHEMA: &str = include_str!("../../assets/tmws_schema.sql");
const HEAD: &str = "571948cc671b";

// ---------------------------------------------------------------- fixtures

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Rollback,
    Wal,
}

/// How an application might spell a timestamp.
#[derive(Clone, Copy, Debug)]
enum Fmt {
    /// `YYYY-MM-DD HH:MM:SS` (what the seed's `datetime('now')` compares against).
    Space,
    /// `YYYY-MM-DD HH:MM:SS.ffffff` (Python's `str(datetime)`).
    SpaceMicros,
    /// `YYYY-MM-DDTHH:MM:SS.fffZ`.
    IsoZ,
    /// `YYYY-MM-DDTHH:MM:SS+02:00` (local time two hours east of UTC).
    IsoPlus2,
    /// `YYYY-MM-DDTHH:MM:SS.ffffff-05:00`.
    IsoMinus5,
}

fn stamp(at: DateTime<Utc>, fmt: Fmt) -> String {
    match fmt {
        Fmt::Space => at.format("%Y-%m-%d %H:%M:%S").to_string(),
        Fmt::SpaceMicros => at.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
        Fmt::IsoZ => at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        Fmt::IsoPlus2 => (at + Duration::hours(2))
            .format("%Y-%m-%dT%H:%M:%S+02:00")
            .to_string(),
        Fmt::IsoMinus5 => (at - Duration::hours(5))
            .format("%Y-%m-%dT%H:%M:%S%.6f-05:00")
            .to_string(),
    }
}

fn create_db(dir: &Path, mode: Mode) -> PathBuf {
    let path = dir.join("tmws.db");
    let conn = Connection::open(&path).unwrap();
    let journal = if mode == Mode::Wal { "wal" } else { "delete" };
    let set: String = conn
        .query_row(&format!("PRAGMA journal_mode={journal}"), [], |r| r.get(0))
        .unwrap();
    assert_eq!(set, journal);
    conn.execute_batch(SCHEMA).unwrap();
    path
}

/// A model of what the test wrote, so the truth can be computed by time in Rust.
#[derive(Default)]
struct Model {
    /// (instant, event type, details)
    audit: Vec<(DateTime<Utc>, String, Option<String>)>,
    /// (instant, has a key, valid)
    usage: Vec<(DateTime<Utc>, bool, i64)>,
    keys: Vec<KeyRow>,
    roles: Vec<String>,
}

/// (tier, created, revoked, expires)
type KeyRow = (
    String,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
);

struct Writer<'a> {
    conn: &'a Connection,
    model: Model,
    n: usize,
}

impl<'a> Writer<'a> {
    fn new(conn: &'a Connection) -> Self {
        Writer {
            conn,
            model: Model::default(),
            n: 0,
        }
    }

    fn audit(&mut self, at: DateTime<Utc>, fmt: Fmt, event: &str, details: Option<&str>) {
        self.conn
            .execute(
                "INSERT INTO security_audit_logs (event_type, agent_id, details, created_at) VALUES (?1, 'a1', ?2, ?3)",
                rusqlite::params![event, details, stamp(at, fmt)],
            )
            .unwrap();
        self.model
            .audit
            .push((at, event.into(), details.map(String::from)));
    }

    fn check(&mut self, at: DateTime<Utc>, fmt: Fmt, result: &str, op: &str, role: &str) {
        let details = format!(r#"{{"result": "{result}", "operation": "{op}", "role": "{role}"}}"#);
        self.audit(at, fmt, "permission_check", Some(&details));
    }

    fn key(
        &mut self,
        tier: &str,
        created: DateTime<Utc>,
        revoked: Option<DateTime<Utc>>,
        expires: Option<DateTime<Utc>>,
        fmt: Fmt,
    ) -> i64 {
        self.n += 1;
        self.conn
            .execute(
                "INSERT INTO license_keys (license_key, agent_id, tier, issued_at, created_at, expires_at, revoked_at) \
                 VALUES (?1, 'a1', ?2, ?3, ?3, ?4, ?5)",
                rusqlite::params![
                    format!("KEY-{}", self.n),
                    tier,
                    stamp(created, fmt),
                    expires.map(|t| stamp(t, fmt)),
                    revoked.map(|t| stamp(t, fmt)),
                ],
            )
            .unwrap();
        self.model
            .keys
            .push((tier.into(), created, revoked, expires));
        self.conn.last_insert_rowid()
    }

    fn validation(&mut self, at: DateTime<Utc>, fmt: Fmt, key: Option<i64>, valid: i64) {
        self.conn
            .execute(
                "INSERT INTO license_usage_history (license_key_id, agent_id, valid, validated_at) VALUES (?1, 'a1', ?2, ?3)",
                rusqlite::params![key, valid, stamp(at, fmt)],
            )
            .unwrap();
        self.model.usage.push((at, key.is_some(), valid));
    }

    fn agent(&mut self, role: &str) {
        self.n += 1;
        let now = stamp(Utc::now(), Fmt::Space);
        self.conn
            .execute(
                "INSERT INTO agents (agent_id, role, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
                rusqlite::params![format!("agent-{}", self.n), role, now],
            )
            .unwrap();
        self.model.roles.push(role.to_lowercase());
    }
}

/// Rows at times well away from every window edge, in the formats given (cycled).
fn populate(conn: &Connection, formats: &[Fmt]) -> Model {
    let now = Utc::now();
    let mins = Duration::minutes;
    let mut fmt = formats.iter().copied().cycle();
    let mut w = Writer::new(conn);
    conn.execute("INSERT INTO alembic_version VALUES (?1)", [HEAD])
        .unwrap();

    // Last hour: 7 ALLOW, 3 DENY. Older: more of both, inside 24 h and inside 7 days.
    for i in 0..7 {
        w.check(
            now - mins(5 + i * 7),
            fmt.next().unwrap(),
            "ALLOW",
            "license.validate",
            "viewer",
        );
    }
    w.check(
        now - mins(10),
        fmt.next().unwrap(),
        "DENY",
        "license.generate",
        "viewer",
    );
    w.check(
        now - mins(20),
        fmt.next().unwrap(),
        "DENY",
        "license.generate",
        "viewer",
    );
    w.check(
        now - mins(40),
        fmt.next().unwrap(),
        "DENY",
        "license.revoke",
        "editor",
    );
    for i in 0..4 {
        w.check(
            now - mins(90 + i * 60),
            fmt.next().unwrap(),
            "DENY",
            "license.revoke",
            "editor",
        );
        w.check(
            now - mins(100 + i * 60),
            fmt.next().unwrap(),
            "ALLOW",
            "license.validate",
            "admin",
        );
    }
    w.check(
        now - Duration::days(3),
        fmt.next().unwrap(),
        "DENY",
        "agent.delete",
        "viewer",
    );
    w.check(
        now - Duration::days(10),
        fmt.next().unwrap(),
        "DENY",
        "agent.delete",
        "viewer",
    );
    w.audit(
        now - mins(15),
        fmt.next().unwrap(),
        "license_generated",
        Some(r#"{"tier": "PRO"}"#),
    );
    w.audit(
        now - Duration::hours(30),
        fmt.next().unwrap(),
        "license_generated",
        Some("{}"),
    );

    // Keys: 3 FREE + 1 PRO in the last hour (one PRO revoked 10 min ago), older ones,
    // two expiring within 7 days, one expired but active, one expired and revoked.
    let free1 = w.key(
        "FREE",
        now - mins(10),
        None,
        Some(now + Duration::days(30)),
        fmt.next().unwrap(),
    );
    w.key(
        "FREE",
        now - mins(20),
        None,
        Some(now + Duration::days(3)),
        fmt.next().unwrap(),
    );
    w.key("FREE", now - mins(30), None, None, fmt.next().unwrap());
    w.key(
        "PRO",
        now - mins(45),
        Some(now - mins(10)),
        Some(now + Duration::days(2)),
        fmt.next().unwrap(),
    );
    w.key(
        "PRO",
        now - Duration::days(2),
        None,
        Some(now + Duration::days(6)),
        fmt.next().unwrap(),
    );
    w.key(
        "ENTERPRISE",
        now - Duration::days(40),
        None,
        Some(now - Duration::days(1)),
        fmt.next().unwrap(),
    );
    w.key(
        "FREE",
        now - Duration::days(40),
        Some(now - Duration::days(5)),
        Some(now - Duration::days(2)),
        fmt.next().unwrap(),
    );
    w.key(
        "PRO",
        now - Duration::days(9),
        Some(now - mins(30)),
        Some(now + Duration::days(100)),
        fmt.next().unwrap(),
    );

    // Validations: 6 in the last hour (2 failed: one unknown key, one invalid), 3 older.
    for i in 0..4 {
        w.validation(now - mins(3 + i * 11), fmt.next().unwrap(), Some(free1), 1);
    }
    w.validation(now - mins(25), fmt.next().unwrap(), None, 0);
    w.validation(now - mins(35), fmt.next().unwrap(), Some(free1), 0);
    for i in 0..3 {
        w.validation(now - mins(80 + i * 30), fmt.next().unwrap(), None, 0);
    }

    for role in ["viewer", "viewer", "viewer", "VIEWER", "editor", "admin"] {
        w.agent(role);
    }
    w.model
}

fn truth_in(at: DateTime<Utc>, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
    at > from && at <= to
}

// ---------------------------------------------------------------- collector helpers

fn source(path: &Path) -> SqliteSource {
    SqliteSource {
        path: path.to_string_lossy().into_owned(),
        pack: Some("tmws".into()),
        host: "local".into(),
        interval: StdDuration::from_millis(100),
        expected_migration: Some(HEAD.into()),
    }
}

struct Poll {
    readings: HashMap<String, Reading>,
    tables: HashMap<String, Table>,
    health: Vec<SourceHealth>,
    order_ok: bool,
}

async fn poll(collector: &mut SqliteCollector) -> Poll {
    let updates = collector.poll().await;
    let mut p = Poll {
        readings: HashMap::new(),
        tables: HashMap::new(),
        health: Vec::new(),
        order_ok: true,
    };
    let mut seen_health = false;
    for u in updates {
        match u {
            Update::Readings { source, readings } => {
                assert_eq!(source, "tmws");
                p.order_ok &= !seen_health;
                for r in readings {
                    assert!(
                        p.readings.insert(r.id.clone(), r).is_none(),
                        "figure sent twice"
                    );
                }
            }
            Update::Table { id, table } => {
                p.tables.insert(id, table);
            }
            Update::Health { source, health } => {
                assert_eq!(source, "tmws");
                seen_health = true;
                p.health.push(health);
            }
            other => panic!("unexpected update {other:?}"),
        }
    }
    p
}

impl Poll {
    fn num(&self, key: &str) -> f64 {
        let r = self.reading(key);
        assert!(r.error.is_none(), "{key}: {:?}", r.error);
        match r.value {
            Value::Number(n) => n,
            ref v => panic!("{key} is not a number: {v:?}"),
        }
    }

    fn text(&self, key: &str) -> String {
        match &self.reading(key).value {
            Value::Text(t) => t.clone(),
            v => panic!("{key} is not text: {v:?}"),
        }
    }

    fn reading(&self, key: &str) -> &Reading {
        self.readings
            .get(&format!("tmws.{key}"))
            .unwrap_or_else(|| panic!("no figure tmws.{key}"))
    }

    fn severity(&self, key: &str) -> Severity {
        rules::judge(self.reading(key), None)
    }

    fn error_text(&self) -> String {
        match self.health.last() {
            Some(SourceHealth::Error { message, .. }) => message.clone(),
            other => panic!("expected an error health, got {other:?}"),
        }
    }

    fn assert_ok(&self) {
        assert_eq!(
            self.health,
            vec![SourceHealth::Ok],
            "readings: {:#?}",
            self.readings
                .values()
                .filter(|r| r.error.is_some())
                .collect::<Vec<_>>()
        );
        assert!(self.order_ok);
    }
}

fn collector(path: &Path) -> SqliteCollector {
    SqliteCollector::new("tmws", &source(path))
}

const ALL_IDS: &[&str] = &[
    "rbac.checks_1h",
    "rbac.deny_pct_1h",
    "rbac.deny_pct_1m",
    "rbac.allow_1h",
    "rbac.deny_1h",
    "license.validations_1h",
    "license.failure_pct_1h",
    "license.failures_not_found_1h",
    "license.failures_invalid_1h",
    "license.generated_1h",
    "license.revoked_1h",
    "license.expiring_7d",
    "license.expired_active",
    "db.migration",
    "db.integrity",
    "db.size_mb",
    "db.freelist",
    "agents.admin_pct",
    "agents.viewer_pct",
    "audit.volume_24h",
    "audit.jump_1h",
];

// ---------------------------------------------------------------- seed 000's SQL, verbatim

fn seed_step2(conn: &Connection) -> (i64, i64, i64, Option<f64>) {
    conn.query_row(
        "SELECT
  COUNT(*) as total_checks,
  SUM(CASE WHEN details->>'result' = 'ALLOW' THEN 1 ELSE 0 END) as allow_count,
  SUM(CASE WHEN details->>'result' = 'DENY' THEN 1 ELSE 0 END) as deny_count,
  ROUND(100.0 * SUM(CASE WHEN details->>'result' = 'DENY' THEN 1 ELSE 0 END) / COUNT(*), 2) as deny_percentage
FROM security_audit_logs
WHERE event_type = 'permission_check'
  AND created_at > datetime('now', '-1 hour');",
        [],
        |r| Ok((r.get(0)?, r.get::<_, Option<i64>>(1)?.unwrap_or(0), r.get::<_, Option<i64>>(2)?.unwrap_or(0), r.get(3)?)),
    )
    .unwrap()
}

fn seed_step3(conn: &Connection) -> Vec<Vec<String>> {
    let mut stmt = conn
        .prepare(
            "SELECT
  COUNT(*) as total_generated,
  tier,
  COUNT(CASE WHEN revoked_at IS NULL THEN 1 END) as active,
  COUNT(CASE WHEN revoked_at IS NOT NULL THEN 1 END) as revoked
FROM license_keys
WHERE created_at > datetime('now', '-1 hour')
GROUP BY tier;",
        )
        .unwrap();
    let mut rows: Vec<Vec<String>> = stmt
        .query_map([], |r| {
            Ok(vec![
                r.get::<_, String>(1)?,
                r.get::<_, i64>(0)?.to_string(),
                r.get::<_, i64>(2)?.to_string(),
                r.get::<_, i64>(3)?.to_string(),
            ])
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    rows.sort();
    rows
}

fn seed_step4(conn: &Connection) -> (i64, i64, i64, Option<f64>) {
    conn.query_row(
        "SELECT
  COUNT(*) as total_validations,
  SUM(CASE WHEN valid = 1 THEN 1 ELSE 0 END) as successful,
  SUM(CASE WHEN valid = 0 THEN 1 ELSE 0 END) as failed,
  ROUND(100.0 * SUM(CASE WHEN valid = 0 THEN 1 ELSE 0 END) / COUNT(*), 2) as failure_rate
FROM license_usage_history
WHERE validated_at > datetime('now', '-1 hour');",
        [],
        |r| {
            Ok((
                r.get(0)?,
                r.get::<_, Option<i64>>(1)?.unwrap_or(0),
                r.get::<_, Option<i64>>(2)?.unwrap_or(0),
                r.get(3)?,
            ))
        },
    )
    .unwrap()
}

fn seed_playbook_b1(conn: &Connection) -> HashMap<String, i64> {
    let mut stmt = conn
        .prepare(
            "SELECT
     CASE
       WHEN license_key_id IS NULL THEN 'License not found'
       WHEN valid = 0 THEN 'Invalid signature or expired'
       ELSE 'Unknown'
     END as reason,
     COUNT(*) as count
   FROM license_usage_history
   WHERE validated_at > datetime('now', '-1 hour') AND valid = 0
   GROUP BY reason;",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn seed_scalar(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn seed_grouped_sum(conn: &Connection, sql: &str, col: usize) -> i64 {
    let mut stmt = conn.prepare(sql).unwrap();
    stmt.query_map([], |r| r.get::<_, i64>(col))
        .unwrap()
        .map(Result::unwrap)
        .sum()
}

fn seed_step6(conn: &Connection) -> HashMap<String, f64> {
    let mut stmt = conn
        .prepare(
            "SELECT
  role,
  COUNT(*) as agent_count,
  ROUND(100.0 * COUNT(*) / (SELECT COUNT(*) FROM agents), 2) as percentage
FROM agents
GROUP BY role
ORDER BY agent_count DESC;",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

const SEED_STEP7: &str = "SELECT
  DATE(created_at) as date,
  event_type,
  COUNT(*) as event_count
FROM security_audit_logs
WHERE created_at > datetime('now', '-24 hours')
GROUP BY DATE(created_at), event_type
ORDER BY date DESC, event_count DESC;";

const SEED_STEP8: &str = "SELECT
  COUNT(*) as expiring_soon,
  tier
FROM license_keys
WHERE revoked_at IS NULL
  AND expires_at BETWEEN datetime('now') AND datetime('now', '+7 days')
GROUP BY tier;";

const SEED_PLAYBOOK_B2: &str = "SELECT COUNT(*) as expired_licenses
   FROM license_keys
   WHERE revoked_at IS NULL AND expires_at < datetime('now');";

fn seed_step9(conn: &Connection) -> Vec<Vec<String>> {
    let mut stmt = conn
        .prepare(
            "SELECT
  details->>'operation' as operation,
  details->>'role' as role,
  COUNT(*) as deny_count
FROM security_audit_logs
WHERE event_type = 'permission_check'
  AND details->>'result' = 'DENY'
  AND created_at > datetime('now', '-7 days')
GROUP BY operation, role
ORDER BY deny_count DESC
LIMIT 20;",
        )
        .unwrap();
    let mut rows: Vec<Vec<String>> = stmt
        .query_map([], |r| {
            Ok(vec![
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?.to_string(),
            ])
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    rows.sort();
    rows
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 0.006
}

fn sorted(rows: &[Vec<String>]) -> Vec<Vec<String>> {
    let mut rows = rows.to_vec();
    rows.sort();
    rows
}

// ---------------------------------------------------------------- tests

/// With the timestamps the seed's SQL handles (space-separated), every figure equals the
/// seed's own query on the same file.
async fn matches_seed_sql(mode: Mode) {
    let dir = tempfile::tempdir().unwrap();
    let path = create_db(dir.path(), mode);
    let writer = Connection::open(&path).unwrap();
    populate(&writer, &[Fmt::Space]);
    drop(writer);

    let mut c = collector(&path);
    let p = poll(&mut c).await;
    p.assert_ok();
    for id in ALL_IDS {
        p.reading(id);
    }
    assert_eq!(p.readings.len(), ALL_IDS.len());

    let seed = Connection::open(&path).unwrap();
    let (checks, allow, deny, deny_pct) = seed_step2(&seed);
    assert_eq!((checks, allow, deny), (10, 7, 3), "fixture sanity");
    assert_eq!(p.num("rbac.checks_1h"), checks as f64);
    assert_eq!(p.num("rbac.allow_1h"), allow as f64);
    assert_eq!(p.num("rbac.deny_1h"), deny as f64);
    assert!(close(p.num("rbac.deny_pct_1h"), deny_pct.unwrap()));
    assert_eq!(p.reading("rbac.deny_pct_1h").unit, "%");
    // The one-minute figure is the seed's query with the window shortened.
    let (recent_checks, recent_deny): (i64, i64) = seed
        .query_row(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN details->>'result' = 'DENY' THEN 1 ELSE 0 END), 0)
             FROM security_audit_logs
             WHERE event_type = 'permission_check' AND created_at > datetime('now', '-1 minutes')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let expected_1m = if recent_checks == 0 {
        0.0
    } else {
        100.0 * recent_deny as f64 / recent_checks as f64
    };
    assert!(
        close(p.num("rbac.deny_pct_1m"), expected_1m),
        "{} vs {expected_1m}",
        p.num("rbac.deny_pct_1m")
    );
    assert_eq!(
        p.severity("rbac.deny_pct_1h"),
        Severity::Warn,
        "30% denied is above 20"
    );

    let by_tier = seed_step3(&seed);
    assert_eq!(sorted(&p.tables["tmws.license.by_tier"].rows), by_tier);
    let generated: i64 = by_tier.iter().map(|r| r[1].parse::<i64>().unwrap()).sum();
    assert_eq!(p.num("license.generated_1h"), generated as f64);
    assert_eq!(generated, 4);
    assert!(
        p.reading("license.generated_1h")
            .detail
            .contains("FREE 3 · PRO 1"),
        "{}",
        p.reading("license.generated_1h").detail
    );

    let (total, _ok, _failed, failure_rate) = seed_step4(&seed);
    assert_eq!(p.num("license.validations_1h"), total as f64);
    assert!(close(
        p.num("license.failure_pct_1h"),
        failure_rate.unwrap()
    ));
    assert_eq!(
        p.severity("license.failure_pct_1h"),
        Severity::Warn,
        "33% failed is above 10"
    );
    let reasons = seed_playbook_b1(&seed);
    assert_eq!(
        p.num("license.failures_not_found_1h"),
        reasons["License not found"] as f64
    );
    assert_eq!(
        p.num("license.failures_invalid_1h"),
        reasons["Invalid signature or expired"] as f64
    );

    assert_eq!(
        seed_scalar(&seed, "SELECT COUNT(*) FROM alembic_version;"),
        1
    );
    assert_eq!(p.text("db.migration"), HEAD);
    assert_eq!(p.severity("db.migration"), Severity::Ok);

    // The seed groups by role as written; the pack compares case-insensitively.
    let roles = seed_step6(&seed);
    assert!(close(p.num("agents.admin_pct"), roles["admin"]));
    assert!(close(
        p.num("agents.viewer_pct"),
        roles["viewer"] + roles["VIEWER"]
    ));

    assert_eq!(
        p.num("audit.volume_24h"),
        seed_grouped_sum(&seed, SEED_STEP7, 2) as f64
    );
    assert_eq!(
        p.num("license.expiring_7d"),
        seed_grouped_sum(&seed, SEED_STEP8, 0) as f64
    );
    assert_eq!(p.num("license.expiring_7d"), 2.0);
    assert_eq!(
        p.num("license.expired_active"),
        seed_scalar(&seed, SEED_PLAYBOOK_B2) as f64
    );
    assert_eq!(p.num("license.expired_active"), 1.0);
    assert_eq!(p.severity("license.expired_active"), Severity::Warn);
    assert_eq!(p.num("license.revoked_1h"), 2.0);

    assert_eq!(
        sorted(&p.tables["tmws.rbac.top_denied"].rows),
        seed_step9(&seed)
    );
    assert_eq!(
        p.tables["tmws.rbac.top_denied"].columns,
        ["operation", "role", "denies"]
    );
    assert_eq!(
        p.tables["tmws.rbac.top_denied"].rows[0],
        ["license.revoke", "editor", "5"]
    );

    let size_mb: i64 = seed_scalar(
        &seed,
        "SELECT page_count * page_size / 1024 / 1024 as size_mb FROM pragma_page_count(), pragma_page_size();",
    );
    assert_eq!(p.num("db.size_mb").floor() as i64, size_mb);
    assert!(p.num("db.size_mb") > 0.0);
    assert_eq!(
        p.num("db.freelist"),
        seed_scalar(&seed, "PRAGMA freelist_count;") as f64
    );
    let integrity: String = seed
        .query_row("PRAGMA integrity_check;", [], |r| r.get(0))
        .unwrap();
    assert_eq!(p.text("db.integrity"), integrity);
    assert_eq!(p.severity("db.integrity"), Severity::Ok);
}

#[tokio::test]
async fn figures_equal_seed_sql_rollback_journal() {
    matches_seed_sql(Mode::Rollback).await;
}

#[tokio::test]
async fn figures_equal_seed_sql_wal() {
    matches_seed_sql(Mode::Wal).await;
}

/// Mixed spellings (ISO with Z and offsets, microseconds): windows are right by time.
async fn mixed_formats(mode: Mode) {
    let dir = tempfile::tempdir().unwrap();
    let path = create_db(dir.path(), mode);
    let writer = Connection::open(&path).unwrap();
    let formats = [
        Fmt::IsoZ,
        Fmt::IsoPlus2,
        Fmt::Space,
        Fmt::IsoMinus5,
        Fmt::SpaceMicros,
    ];
    let model = populate(&writer, &formats);

    let mut c = collector(&path);
    let p = poll(&mut c).await;
    p.assert_ok();

    let now = Utc::now();
    let hour = now - Duration::hours(1);
    let checks: Vec<_> = model
        .audit
        .iter()
        .filter(|(at, e, _)| e == "permission_check" && truth_in(*at, hour, now))
        .collect();
    let result_is = |d: &Option<String>, r: &str| {
        d.as_deref()
            .unwrap_or("")
            .contains(&format!("\"result\": \"{r}\""))
    };
    let deny = checks
        .iter()
        .filter(|(_, _, d)| result_is(d, "DENY"))
        .count() as f64;
    let allow = checks
        .iter()
        .filter(|(_, _, d)| result_is(d, "ALLOW"))
        .count() as f64;
    assert_eq!(p.num("rbac.checks_1h"), checks.len() as f64);
    assert_eq!(p.num("rbac.allow_1h"), allow);
    assert_eq!(p.num("rbac.deny_1h"), deny);
    assert!(close(
        p.num("rbac.deny_pct_1h"),
        100.0 * deny / checks.len() as f64
    ));

    let usage: Vec<_> = model
        .usage
        .iter()
        .filter(|(at, _, _)| truth_in(*at, hour, now))
        .collect();
    let failed = usage.iter().filter(|(_, _, v)| *v == 0).count() as f64;
    assert_eq!(p.num("license.validations_1h"), usage.len() as f64);
    assert!(close(
        p.num("license.failure_pct_1h"),
        100.0 * failed / usage.len() as f64
    ));
    assert_eq!(
        p.num("license.failures_not_found_1h"),
        usage.iter().filter(|(_, k, v)| *v == 0 && !k).count() as f64
    );
    assert_eq!(
        p.num("license.failures_invalid_1h"),
        usage.iter().filter(|(_, k, v)| *v == 0 && *k).count() as f64
    );

    let new_keys: Vec<_> = model
        .keys
        .iter()
        .filter(|(_, c, _, _)| truth_in(*c, hour, now))
        .collect();
    assert_eq!(p.num("license.generated_1h"), new_keys.len() as f64);
    let mut tiers: HashMap<&str, (i64, i64, i64)> = HashMap::new();
    for (tier, _, revoked, _) in &new_keys {
        let e = tiers.entry(tier.as_str()).or_default();
        e.0 += 1;
        if revoked.is_some() {
            e.2 += 1
        } else {
            e.1 += 1
        }
    }
    let mut expected_rows: Vec<Vec<String>> = tiers
        .iter()
        .map(|(t, (g, a, r))| vec![t.to_string(), g.to_string(), a.to_string(), r.to_string()])
        .collect();
    expected_rows.sort();
    assert_eq!(
        sorted(&p.tables["tmws.license.by_tier"].rows),
        expected_rows
    );
    let revoked = model
        .keys
        .iter()
        .filter(|(_, _, r, _)| r.is_some_and(|r| truth_in(r, hour, now)))
        .count();
    assert_eq!(p.num("license.revoked_1h"), revoked as f64);
    let expiring = model
        .keys
        .iter()
        .filter(|(_, _, r, e)| {
            r.is_none() && e.is_some_and(|e| truth_in(e, now, now + Duration::days(7)))
        })
        .count();
    assert_eq!(p.num("license.expiring_7d"), expiring as f64);
    let expired = model
        .keys
        .iter()
        .filter(|(_, _, r, e)| r.is_none() && e.is_some_and(|e| e < now))
        .count();
    assert_eq!(p.num("license.expired_active"), expired as f64);

    let day = model
        .audit
        .iter()
        .filter(|(at, _, _)| truth_in(*at, now - Duration::hours(24), now))
        .count();
    assert_eq!(p.num("audit.volume_24h"), day as f64);

    let week = now - Duration::days(7);
    let mut denied: HashMap<(String, String), i64> = HashMap::new();
    for (at, e, d) in &model.audit {
        if e == "permission_check" && truth_in(*at, week, now) && result_is(d, "DENY") {
            let v: serde_json::Value = serde_json::from_str(d.as_deref().unwrap()).unwrap();
            *denied
                .entry((
                    v["operation"].as_str().unwrap().into(),
                    v["role"].as_str().unwrap().into(),
                ))
                .or_default() += 1;
        }
    }
    let mut expected_top: Vec<Vec<String>> = denied
        .into_iter()
        .map(|((o, r), n)| vec![o, r, n.to_string()])
        .collect();
    expected_top.sort();
    assert_eq!(sorted(&p.tables["tmws.rbac.top_denied"].rows), expected_top);

    // The seed's text comparison would have got this file wrong: a +02:00 row from two hours
    // ago spells "now" and a -05:00 row from minutes ago spells five hours back.
    let (seed_checks, ..) = seed_step2(&writer);
    let (seed_validations, ..) = seed_step4(&writer);
    assert!(
        seed_checks != checks.len() as i64 || seed_validations != usage.len() as i64,
        "the fixture should trip the seed's text comparison"
    );
}

#[tokio::test]
async fn iso_and_offset_timestamps_count_by_time_rollback() {
    mixed_formats(Mode::Rollback).await;
}

#[tokio::test]
async fn iso_and_offset_timestamps_count_by_time_wal() {
    mixed_formats(Mode::Wal).await;
}

#[tokio::test]
async fn non_json_details_are_counted_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let path = create_db(dir.path(), Mode::Rollback);
    let conn = Connection::open(&path).unwrap();
    let mut w = Writer::new(&conn);
    let now = Utc::now();
    w.check(
        now - Duration::minutes(5),
        Fmt::Space,
        "DENY",
        "license.generate",
        "viewer",
    );
    w.check(
        now - Duration::minutes(6),
        Fmt::IsoZ,
        "ALLOW",
        "license.validate",
        "viewer",
    );
    w.audit(
        now - Duration::minutes(7),
        Fmt::Space,
        "permission_check",
        Some("result=DENY op=x"),
    );
    w.audit(
        now - Duration::minutes(8),
        Fmt::Space,
        "permission_check",
        Some("{\"result\": \"DENY\""),
    );
    w.audit(
        now - Duration::minutes(9),
        Fmt::Space,
        "permission_check",
        None,
    );
    drop(conn);

    let mut c = collector(&path);
    let p = poll(&mut c).await;
    // Only the RBAC figures are under test here; the other tables are empty, not missing.
    assert_eq!(p.num("rbac.checks_1h"), 5.0);
    assert_eq!(p.num("rbac.deny_1h"), 1.0);
    assert_eq!(p.num("rbac.allow_1h"), 1.0);
    assert!(close(p.num("rbac.deny_pct_1h"), 20.0));
    let detail = &p.reading("rbac.checks_1h").detail;
    assert!(
        detail.contains("3 rows without valid JSON details"),
        "{detail}"
    );
    assert_eq!(
        p.tables["tmws.rbac.top_denied"].rows,
        vec![vec!["license.generate", "viewer", "1"]]
    );
}

#[tokio::test]
async fn missing_file_is_an_error_not_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.db");
    let mut c = collector(&path);
    let p = poll(&mut c).await;
    let error = p.error_text();
    assert!(
        error.contains("no such file") && error.contains("nope.db"),
        "{error}"
    );
    for id in ALL_IDS {
        let r = p.reading(id);
        assert_eq!(r.value, Value::None, "{id}");
        assert!(r.error.as_deref().unwrap().contains("no such file"), "{id}");
        assert_eq!(rules::judge(r, None), Severity::Unknown);
    }
    assert!(!path.exists(), "a read-only open must not create the file");
}

#[tokio::test]
async fn missing_table_names_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = create_db(dir.path(), Mode::Rollback);
    let conn = Connection::open(&path).unwrap();
    populate(&conn, &[Fmt::Space]);
    conn.execute_batch("DROP TABLE license_usage_history; DROP TABLE license_keys;")
        .unwrap();
    drop(conn);

    let mut c = collector(&path);
    let p = poll(&mut c).await;
    let error = p.error_text();
    assert!(error.contains("no such table: license_keys"), "{error}");
    assert!(
        error.contains("no such table: license_usage_history"),
        "{error}"
    );
    assert!(p.order_ok, "the error health must come after the readings");
    for id in [
        "license.generated_1h",
        "license.expiring_7d",
        "license.validations_1h",
        "license.failure_pct_1h",
    ] {
        let r = p.reading(id);
        assert_eq!(r.value, Value::None);
        assert!(
            r.error.as_deref().unwrap().starts_with("no such table"),
            "{id}: {:?}",
            r.error
        );
    }
    // The rest of the checklist still reads.
    assert_eq!(p.num("rbac.checks_1h"), 10.0);
    assert_eq!(p.text("db.migration"), HEAD);
    assert!(p.tables.contains_key("tmws.rbac.top_denied"));
    assert!(!p.tables.contains_key("tmws.license.by_tier"));
}

#[tokio::test]
async fn missing_column_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(SCHEMA).unwrap();
    conn.execute_batch(
        "DROP TABLE license_keys; CREATE TABLE license_keys (id INTEGER PRIMARY KEY, tier TEXT, created_at TEXT, expires_at TEXT);",
    )
    .unwrap();
    drop(conn);
    let p = poll(&mut collector(&path)).await;
    assert!(
        p.error_text().contains("no such column: revoked_at"),
        "{}",
        p.error_text()
    );
    assert_eq!(p.reading("license.generated_1h").value, Value::None);
}

#[tokio::test]
async fn not_a_database_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tmws.db");
    std::fs::write(&path, "this is a text file, not SQLite\n".repeat(200)).unwrap();
    let before = std::fs::read(&path).unwrap();
    let p = poll(&mut collector(&path)).await;
    assert!(
        p.error_text().contains("file is not a database"),
        "{}",
        p.error_text()
    );
    assert!(
        p.readings
            .values()
            .all(|r| r.value == Value::None && r.error.is_some())
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[tokio::test]
async fn empty_tables_give_zeros_with_words() {
    let dir = tempfile::tempdir().unwrap();
    let path = create_db(dir.path(), Mode::Rollback);
    let p = poll(&mut collector(&path)).await;
    // No checks at all is its own critical alert, the empty alembic_version is corruption.
    assert_eq!(p.num("rbac.checks_1h"), 0.0);
    assert_eq!(p.severity("rbac.checks_1h"), Severity::Crit);
    assert!(
        p.reading("rbac.checks_1h")
            .detail
            .contains("RBAC may not be active")
    );
    assert_eq!(p.severity("rbac.deny_pct_1h"), Severity::Ok);
    assert!(
        p.reading("rbac.deny_pct_1h")
            .detail
            .contains("no permission checks")
    );
    assert_eq!(p.text("db.migration"), "0 rows");
    assert_eq!(p.severity("db.migration"), Severity::Crit);
    assert!(
        p.reading("audit.volume_24h")
            .detail
            .contains("no permission_check events")
    );
}

#[tokio::test]
async fn migration_rows_and_head() {
    let dir = tempfile::tempdir().unwrap();
    let path = create_db(dir.path(), Mode::Rollback);
    let conn = Connection::open(&path).unwrap();
    conn.execute("INSERT INTO alembic_version VALUES ('0123abcd')", [])
        .unwrap();
    let p = poll(&mut collector(&path)).await;
    assert_eq!(p.text("db.migration"), "0123abcd");
    assert_eq!(
        p.severity("db.migration"),
        Severity::Crit,
        "not the expected head"
    );

    conn.execute("INSERT INTO alembic_version VALUES (?1)", [HEAD])
        .unwrap();
    let p = poll(&mut collector(&path)).await;
    assert_eq!(p.text("db.migration"), "2 rows");
    assert_eq!(p.severity("db.migration"), Severity::Crit);

    // Without an expected head, one row is fine and two are still corruption.
    let mut plain = source(&path);
    plain.expected_migration = None;
    let p = poll(&mut SqliteCollector::new("tmws", &plain)).await;
    assert_eq!(p.text("db.migration"), "2 rows");
    assert_eq!(p.severity("db.migration"), Severity::Crit);
    conn.execute("DELETE FROM alembic_version WHERE version_num = ?1", [HEAD])
        .unwrap();
    let p = poll(&mut SqliteCollector::new("tmws", &plain)).await;
    assert_eq!(p.severity("db.migration"), Severity::Ok);
}

#[tokio::test]
async fn all_viewers_and_many_admins_warn() {
    let dir = tempfile::tempdir().unwrap();
    let path = create_db(dir.path(), Mode::Rollback);
    let conn = Connection::open(&path).unwrap();
    let mut w = Writer::new(&conn);
    for _ in 0..3 {
        w.agent("viewer");
    }
    let p = poll(&mut collector(&path)).await;
    assert_eq!(p.num("agents.viewer_pct"), 100.0);
    assert_eq!(p.severity("agents.viewer_pct"), Severity::Warn);
    assert!(
        p.reading("agents.viewer_pct")
            .detail
            .contains("everyone is a viewer")
    );
    w.agent("ADMIN");
    let p = poll(&mut collector(&path)).await;
    assert_eq!(p.num("agents.admin_pct"), 25.0);
    assert_eq!(p.severity("agents.admin_pct"), Severity::Warn);
    assert_eq!(p.severity("agents.viewer_pct"), Severity::Ok);
}

#[tokio::test]
async fn polls_leave_the_file_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = create_db(dir.path(), Mode::Rollback);
    let conn = Connection::open(&path).unwrap();
    populate(&conn, &[Fmt::Space, Fmt::IsoZ]);
    drop(conn);
    let before = std::fs::read(&path).unwrap();
    let listing = |dir: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(listing(dir.path()), ["tmws.db"]);

    let mut c = collector(&path);
    for _ in 0..5 {
        poll(&mut c).await.assert_ok();
    }
    drop(c);
    assert!(
        std::fs::read(&path).unwrap() == before,
        "the database file changed"
    );
    assert_eq!(
        listing(dir.path()),
        ["tmws.db"],
        "no -journal or -wal file may be created"
    );
}

#[tokio::test]
async fn a_locked_database_is_busy_and_keeps_figures() {
    let dir = tempfile::tempdir().unwrap();
    let path = create_db(dir.path(), Mode::Rollback);
    let conn = Connection::open(&path).unwrap();
    populate(&conn, &[Fmt::Space]);
    let mut c = collector(&path);
    poll(&mut c).await.assert_ok();

    conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let started = std::time::Instant::now();
    let p = poll(&mut c).await;
    let waited = started.elapsed();
    assert!(
        p.readings.is_empty() && p.tables.is_empty(),
        "no readings (so no zeros) while busy"
    );
    assert!(
        matches!(&p.health[..], [SourceHealth::Busy { message }] if message.contains("locked")),
        "{:?}",
        p.health
    );
    assert!(
        waited >= StdDuration::from_millis(200) && waited < StdDuration::from_secs(2),
        "{waited:?}"
    );
    conn.execute_batch("COMMIT").unwrap();
    poll(&mut c).await.assert_ok();
}

#[tokio::test]
async fn a_replaced_file_is_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let path = create_db(dir.path(), Mode::Rollback);
    let mut c = collector(&path);
    let p = poll(&mut c).await;
    assert_eq!(p.num("rbac.checks_1h"), 0.0);

    // A restore: a new file renamed over the old one (new inode).
    let other = tempfile::tempdir().unwrap();
    let fresh = create_db(other.path(), Mode::Rollback);
    let conn = Connection::open(&fresh).unwrap();
    populate(&conn, &[Fmt::Space]);
    drop(conn);
    std::fs::rename(&fresh, &path).unwrap();
    let p = poll(&mut c).await;
    p.assert_ok();
    assert_eq!(p.num("rbac.checks_1h"), 10.0);

    std::fs::remove_file(&path).unwrap();
    let p = poll(&mut c).await;
    assert!(p.error_text().contains("no such file"));
    assert_eq!(p.reading("rbac.checks_1h").value, Value::None);
}

#[tokio::test]
async fn unknown_pack_and_remote_host_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = create_db(dir.path(), Mode::Rollback);
    let mut s = source(&path);
    s.pack = Some("tmsw".into());
    let p = poll(&mut SqliteCollector::new("tmws", &s)).await;
    assert!(
        p.error_text().contains("unknown pack \"tmsw\""),
        "{}",
        p.error_text()
    );
    let mut s = source(&path);
    s.host = "ssh://prod".into();
    let p = poll(&mut SqliteCollector::new("tmws", &s)).await;
    assert!(p.error_text().contains("only local"), "{}", p.error_text());
}

#[tokio::test]
async fn without_a_pack_only_database_health() {
    let dir = tempfile::tempdir().unwrap();
    let path = create_db(dir.path(), Mode::Rollback);
    let mut s = source(&path);
    s.pack = None;
    let p = poll(&mut SqliteCollector::new("tmws", &s)).await;
    p.assert_ok();
    let mut ids: Vec<&str> = p.readings.keys().map(String::as_str).collect();
    ids.sort();
    assert_eq!(
        ids,
        ["tmws.db.freelist", "tmws.db.integrity", "tmws.db.size_mb"]
    );
}

/// A writer with a modest busy timeout inserts as fast as it can while the collector polls
/// every 100 ms: it sees no error and loses nothing.
async fn writer_is_not_disturbed(mode: Mode) {
    let dir = tempfile::tempdir().unwrap();
    let path = create_db(dir.path(), mode);
    let conn = Connection::open(&path).unwrap();
    populate(&conn, &[Fmt::Space, Fmt::IsoZ]);
    drop(conn);

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let path = path.clone();
        let stop = stop.clone();
        std::thread::spawn(move || -> (u64, Vec<String>) {
            let conn = Connection::open(&path).unwrap();
            conn.busy_timeout(StdDuration::from_millis(100)).unwrap();
            let mut inserted = 0u64;
            let mut errors = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let at = stamp(Utc::now(), Fmt::Space);
                match conn.execute(
                    "INSERT INTO security_audit_logs (event_type, details, created_at) VALUES ('permission_check', '{\"result\": \"ALLOW\"}', ?1)",
                    [at],
                ) {
                    Ok(_) => inserted += 1,
                    Err(e) => errors.push(e.to_string()),
                }
            }
            (inserted, errors)
        })
    };

    let mut c = collector(&path);
    let started = std::time::Instant::now();
    let (mut ok_polls, mut busy_polls) = (0, 0);
    let mut last_checks = 0.0;
    while started.elapsed() < StdDuration::from_secs(3) {
        let p = poll(&mut c).await;
        match &p.health[..] {
            [SourceHealth::Ok] => {
                let checks = p.num("rbac.checks_1h");
                assert!(checks >= last_checks, "counts never go backwards");
                last_checks = checks;
                ok_polls += 1;
            }
            // A writer in a tight loop can starve a rollback-journal reader; that is "busy"
            // with the figures kept, never an error or a zero.
            [SourceHealth::Busy { .. }] => {
                assert!(p.readings.is_empty());
                busy_polls += 1;
            }
            other => panic!("{other:?}"),
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (inserted, errors) = writer.join().unwrap();
    assert!(
        errors.is_empty(),
        "the writer saw {} errors, first: {:?}",
        errors.len(),
        errors.first()
    );
    assert!(
        inserted > 100,
        "the writer should have been busy ({inserted})"
    );
    eprintln!("{mode:?}: {inserted} inserts, {ok_polls} polls read, {busy_polls} busy");
    assert!(ok_polls >= 1, "no poll got through ({busy_polls} busy)");
    if mode == Mode::Wal {
        assert_eq!(busy_polls, 0, "WAL readers never wait for writers");
    }

    let check = Connection::open(&path).unwrap();
    let rows: i64 = check
        .query_row(
            "SELECT COUNT(*) FROM security_audit_logs WHERE agent_id IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows as u64, inserted, "no insert may be lost");
    let p = poll(&mut c).await;
    p.assert_ok();
    assert_eq!(p.num("rbac.checks_1h"), 10.0 + inserted as f64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writer_rollback_journal() {
    writer_is_not_disturbed(Mode::Rollback).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writer_wal() {
    writer_is_not_disturbed(Mode::Wal).await;
}

/// In WAL mode a reader needs the -shm index; when no application connection is open SQLite
/// creates it (and an empty -wal), as the application's own next open would. The database
/// file itself stays byte-for-byte the same and nothing is written to the -wal.
#[tokio::test]
async fn wal_polls_leave_the_database_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = create_db(dir.path(), Mode::Wal);
    let conn = Connection::open(&path).unwrap();
    populate(&conn, &[Fmt::Space, Fmt::IsoPlus2]);
    drop(conn);
    let before = std::fs::read(&path).unwrap();
    let mut c = collector(&path);
    for _ in 0..3 {
        poll(&mut c).await.assert_ok();
    }
    drop(c);
    assert!(
        std::fs::read(&path).unwrap() == before,
        "the database file changed"
    );
    let wal = dir.path().join("tmws.db-wal");
    assert!(
        !wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0,
        "we wrote to the WAL"
    );
}

/// Between polls no lock and no WAL snapshot is held: a writer with no busy timeout at all
/// gets an exclusive lock at once, and a TRUNCATE checkpoint is not blocked by us.
#[tokio::test]
async fn nothing_is_held_between_polls() {
    for mode in [Mode::Rollback, Mode::Wal] {
        let dir = tempfile::tempdir().unwrap();
        let path = create_db(dir.path(), mode);
        let conn = Connection::open(&path).unwrap();
        populate(&conn, &[Fmt::Space]);
        conn.busy_timeout(StdDuration::ZERO).unwrap();
        let mut c = collector(&path);
        for _ in 0..3 {
            poll(&mut c).await.assert_ok();
            conn.execute_batch("BEGIN EXCLUSIVE; INSERT INTO agents (agent_id, created_at, updated_at) VALUES (hex(randomblob(8)), '', ''); COMMIT")
                .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
            if mode == Mode::Wal {
                let busy: i64 = conn
                    .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
                    .unwrap();
                assert_eq!(busy, 0, "a reader still holds a WAL snapshot");
            }
        }
    }
}

// ---------------------------------------------------------------- incremental refreshes

/// A small deterministic generator (the same rows on every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// The big-table figures as the model says they must be, by time.
#[derive(Debug, PartialEq)]
struct Truth {
    checks: i64,
    allow: i64,
    deny: i64,
    validations: i64,
    failed: i64,
    not_found: i64,
    audit_24h: i64,
    top_denied: Vec<Vec<String>>,
}

fn truth(model: &Model, now: DateTime<Utc>) -> Truth {
    let hour = now - Duration::hours(1);
    let day = now - Duration::hours(24);
    let week = now - Duration::days(7);
    let result = |d: &Option<String>| -> Option<serde_json::Value> {
        d.as_deref().and_then(|d| serde_json::from_str(d).ok())
    };
    let mut t = Truth {
        checks: 0,
        allow: 0,
        deny: 0,
        validations: 0,
        failed: 0,
        not_found: 0,
        audit_24h: 0,
        top_denied: Vec::new(),
    };
    let mut denied: HashMap<(String, String), i64> = HashMap::new();
    for (at, event, details) in &model.audit {
        if *at > day {
            t.audit_24h += 1;
        }
        if event != "permission_check" {
            continue;
        }
        let v = result(details);
        let r = v
            .as_ref()
            .and_then(|v| v["result"].as_str().map(String::from));
        if *at > hour {
            t.checks += 1;
            match r.as_deref() {
                Some("ALLOW") => t.allow += 1,
                Some("DENY") => t.deny += 1,
                _ => {}
            }
        }
        if *at > week && r.as_deref() == Some("DENY") {
            let v = v.unwrap();
            *denied
                .entry((
                    v["operation"].as_str().unwrap().into(),
                    v["role"].as_str().unwrap().into(),
                ))
                .or_default() += 1;
        }
    }
    for (at, has_key, valid) in &model.usage {
        if *at > hour {
            t.validations += 1;
            if *valid == 0 {
                t.failed += 1;
                if !has_key {
                    t.not_found += 1;
                }
            }
        }
    }
    t.top_denied = denied
        .into_iter()
        .map(|((o, r), n)| vec![o, r, n.to_string()])
        .collect();
    t.top_denied.sort();
    t
}

fn seen(p: &Poll) -> Truth {
    Truth {
        checks: p.num("rbac.checks_1h") as i64,
        allow: p.num("rbac.allow_1h") as i64,
        deny: p.num("rbac.deny_1h") as i64,
        validations: p.num("license.validations_1h") as i64,
        failed: (p.num("license.failures_not_found_1h") + p.num("license.failures_invalid_1h"))
            as i64,
        not_found: p.num("license.failures_not_found_1h") as i64,
        audit_24h: p.num("audit.volume_24h") as i64,
        top_denied: sorted(&p.tables["tmws.rbac.top_denied"].rows),
    }
}

/// What seed 000's own SQL says (right for space-separated timestamps).
fn seed_truth(conn: &Connection) -> Truth {
    let (checks, allow, deny, _) = seed_step2(conn);
    let (validations, _, failed, _) = seed_step4(conn);
    let reasons = seed_playbook_b1(conn);
    Truth {
        checks,
        allow,
        deny,
        validations,
        failed,
        not_found: reasons.get("License not found").copied().unwrap_or(0),
        audit_24h: seed_grouped_sum(conn, SEED_STEP7, 2),
        top_denied: seed_step9(conn),
    }
}

/// Rows at times away from the window edges (so a test never races the clock): the last
/// hour, the day, the week, and older, in the order a late writer might send them.
fn write_round(w: &mut Writer<'_>, rng: &mut Lcg, formats: &[Fmt], n: usize) {
    let now = Utc::now();
    if w.model.keys.is_empty() {
        w.key(
            "FREE",
            now - Duration::days(3),
            None,
            Some(now + Duration::days(30)),
            Fmt::Space,
        );
    }
    let ops = ["license.generate", "license.revoke", "agent.delete"];
    let roles = ["viewer", "editor", "admin"];
    for _ in 0..n {
        let fmt = formats[rng.next(formats.len() as u64) as usize];
        let minutes_ago = match rng.next(4) {
            0 | 1 => 2 + rng.next(50) as i64,
            2 => 70 + rng.next(20 * 60) as i64,
            _ => 26 * 60 + rng.next(12 * 24 * 60) as i64,
        };
        let at = now - Duration::minutes(minutes_ago);
        // Keep clear of the 7-day edge (rows are compared with the seed at another instant).
        let week_edge = now - Duration::days(7);
        if (at - week_edge).num_minutes().abs() < 5 {
            continue;
        }
        match rng.next(5) {
            0 | 1 => {
                let result = if rng.next(3) == 0 { "DENY" } else { "ALLOW" };
                w.check(
                    at,
                    fmt,
                    result,
                    ops[rng.next(3) as usize],
                    roles[rng.next(3) as usize],
                )
            }
            2 => w.audit(at, fmt, "license_generated", Some("{}")),
            _ => {
                let key = (rng.next(3) > 0).then_some(1);
                w.validation(at, fmt, key, (rng.next(4) > 0) as i64);
            }
        }
    }
}

async fn incremental_refreshes(mode: Mode, formats: &[Fmt]) {
    let dir = tempfile::tempdir().unwrap();
    let path = create_db(dir.path(), mode);
    let conn = Connection::open(&path).unwrap();
    let mut w = Writer::new(&conn);
    let mut rng = Lcg(7);
    write_round(&mut w, &mut rng, formats, 300);
    let mut c = collector(&path);
    poll(&mut c).await.assert_ok();
    let seed_comparable = formats.iter().all(|f| matches!(f, Fmt::Space));
    for round in 0..25 {
        let n = 1 + rng.next(40) as usize;
        write_round(&mut w, &mut rng, formats, n);
        let p = poll(&mut c).await;
        p.assert_ok();
        let got = seen(&p);
        assert_eq!(got, truth(&w.model, Utc::now()), "round {round}");
        if seed_comparable {
            assert_eq!(
                got,
                seed_truth(&conn),
                "round {round} against the seed's SQL"
            );
        }
        // A collector reading the file from scratch agrees with the incremental one.
        if round % 8 == 0 {
            assert_eq!(seen(&poll(&mut collector(&path)).await), got);
        }
    }
}

#[tokio::test]
async fn incremental_refreshes_equal_seed_sql_rollback() {
    incremental_refreshes(Mode::Rollback, &[Fmt::Space]).await;
}

#[tokio::test]
async fn incremental_refreshes_equal_seed_sql_wal() {
    incremental_refreshes(Mode::Wal, &[Fmt::Space]).await;
}

#[tokio::test]
async fn incremental_refreshes_with_iso_timestamps() {
    let formats = [
        Fmt::IsoZ,
        Fmt::IsoPlus2,
        Fmt::Space,
        Fmt::IsoMinus5,
        Fmt::SpaceMicros,
    ];
    incremental_refreshes(Mode::Wal, &formats).await;
    incremental_refreshes(Mode::Rollback, &formats).await;
}

/// A retention job deleting rows that are still inside the windows makes the pack count
/// again; one deleting only rows older than every window changes nothing.
#[tokio::test]
async fn retention_delete_is_recounted() {
    for mode in [Mode::Rollback, Mode::Wal] {
        let dir = tempfile::tempdir().unwrap();
        let path = create_db(dir.path(), mode);
        let conn = Connection::open(&path).unwrap();
        let mut w = Writer::new(&conn);
        let mut rng = Lcg(11);
        write_round(&mut w, &mut rng, &[Fmt::Space], 400);
        let mut c = collector(&path);
        let before = seen(&poll(&mut c).await);
        assert_eq!(before, seed_truth(&conn));

        // Older than 8 days: outside every window, so nothing to recount.
        conn.execute_batch(
            "DELETE FROM security_audit_logs WHERE created_at < datetime('now', '-8 days');",
        )
        .unwrap();
        let p = poll(&mut c).await;
        assert_eq!(seen(&p), before, "{mode:?}");
        assert!(!p.reading("rbac.checks_1h").detail.contains("recounted"));

        // Rows of the last day go: top denied and audit volume must drop with them. A
        // retention job deletes the oldest rows, which are the lowest rowids (what the pack
        // checks); the random rounds above are not in time order, so the usage rows go by id.
        let now = Utc::now();
        for i in 0..30 {
            w.check(
                now - Duration::hours(3) - Duration::minutes(i),
                Fmt::Space,
                "DENY",
                "retention.test",
                "viewer",
            );
        }
        assert_eq!(
            seen(&poll(&mut c).await),
            seed_truth(&conn),
            "{mode:?} before"
        );
        conn.execute_batch(
            "DELETE FROM security_audit_logs WHERE created_at < datetime('now', '-2 hours');
             DELETE FROM license_usage_history WHERE id <= (SELECT min(id) + 40 FROM license_usage_history);",
        )
        .unwrap();
        let p = poll(&mut c).await;
        p.assert_ok();
        let truth = seed_truth(&conn);
        assert_eq!(seen(&p), truth, "{mode:?} after the delete");
        assert!(
            !truth.top_denied.iter().any(|r| r[0] == "retention.test"),
            "the fixture deletes the retention.test rows"
        );
        assert!(
            p.reading("rbac.checks_1h").detail.contains("recounted"),
            "{}",
            p.reading("rbac.checks_1h").detail
        );
        // And later inserts are counted again on top.
        write_round(&mut w, &mut rng, &[Fmt::Space], 50);
        assert_eq!(seen(&poll(&mut c).await), seed_truth(&conn), "{mode:?}");
    }
}

/// Deleting the newest rows (max(rowid) goes down) and reusing their rowids is caught too.
#[tokio::test]
async fn deleted_newest_rows_and_reused_rowids_are_recounted() {
    let dir = tempfile::tempdir().unwrap();
    let path = create_db(dir.path(), Mode::Rollback);
    let conn = Connection::open(&path).unwrap();
    let mut w = Writer::new(&conn);
    let mut rng = Lcg(5);
    write_round(&mut w, &mut rng, &[Fmt::Space], 200);
    let mut c = collector(&path);
    poll(&mut c).await.assert_ok();
    conn.execute_batch(
        "DELETE FROM security_audit_logs WHERE id > (SELECT max(id) - 20 FROM security_audit_logs);",
    )
    .unwrap();
    assert_eq!(seen(&poll(&mut c).await), seed_truth(&conn));
    // New rows now take the deleted rowids: max(rowid) is back where it was, with other rows.
    let now = Utc::now();
    for i in 0..20 {
        w.check(
            now - Duration::minutes(3 + i),
            Fmt::Space,
            "DENY",
            "reused.rowid",
            "admin",
        );
    }
    assert_eq!(seen(&poll(&mut c).await), seed_truth(&conn));
}

/// VACUUM rewrites the file in place (same inode) and may renumber rows: the pack counts again.
#[tokio::test]
async fn vacuum_is_recounted() {
    for mode in [Mode::Rollback, Mode::Wal] {
        let dir = tempfile::tempdir().unwrap();
        let path = create_db(dir.path(), mode);
        let conn = Connection::open(&path).unwrap();
        let mut w = Writer::new(&conn);
        let mut rng = Lcg(3);
        write_round(&mut w, &mut rng, &[Fmt::Space], 400);
        let mut c = collector(&path);
        poll(&mut c).await.assert_ok();
        conn.execute_batch(
            "DELETE FROM security_audit_logs WHERE id % 3 = 0; DELETE FROM license_usage_history WHERE id % 2 = 0;",
        )
        .unwrap();
        let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap());
        conn.execute_batch("VACUUM").unwrap();
        assert_eq!(
            inode,
            std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap()),
            "VACUUM keeps the inode"
        );
        let p = poll(&mut c).await;
        p.assert_ok();
        assert_eq!(seen(&p), seed_truth(&conn), "{mode:?}");
        assert!(
            p.reading("rbac.checks_1h").detail.contains("vacuumed"),
            "{}",
            p.reading("rbac.checks_1h").detail
        );
        write_round(&mut w, &mut rng, &[Fmt::Space], 30);
        assert_eq!(seen(&poll(&mut c).await), seed_truth(&conn), "{mode:?}");
    }
}

/// A database copied over the watched one (same inode: `cp backup.db tmws.db`) or renamed
/// over it (new inode) with other contents: the figures are those of the new contents.
#[tokio::test]
async fn a_file_replaced_by_other_contents_is_recounted() {
    let dir = tempfile::tempdir().unwrap();
    let path = create_db(dir.path(), Mode::Rollback);
    let conn = Connection::open(&path).unwrap();
    let mut w = Writer::new(&conn);
    write_round(&mut w, &mut Lcg(1), &[Fmt::Space], 300);
    drop(conn);
    let mut c = collector(&path);
    poll(&mut c).await.assert_ok();

    for (seed, rows, rename) in [(2, 500, false), (3, 100, false), (4, 300, true)] {
        let other = tempfile::tempdir().unwrap();
        let copy = create_db(other.path(), Mode::Rollback);
        let oc = Connection::open(&copy).unwrap();
        let mut ow = Writer::new(&oc);
        write_round(&mut ow, &mut Lcg(seed), &[Fmt::Space], rows);
        let model = ow.model;
        drop(oc);
        let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap());
        if rename {
            std::fs::rename(&copy, &path).unwrap();
        } else {
            std::fs::copy(&copy, &path).unwrap();
            assert_eq!(
                inode,
                std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap())
            );
        }
        let p = poll(&mut c).await;
        p.assert_ok();
        let check = Connection::open(&path).unwrap();
        assert_eq!(seen(&p), seed_truth(&check), "seed {seed}");
        assert_eq!(seen(&p), truth(&model, Utc::now()), "seed {seed}");
    }
}

/// Timestamps SQLite cannot read are outside every window, counted and said.
#[tokio::test]
async fn unreadable_timestamps_are_counted_and_said() {
    let dir = tempfile::tempdir().unwrap();
    let path = create_db(dir.path(), Mode::Rollback);
    let conn = Connection::open(&path).unwrap();
    let mut w = Writer::new(&conn);
    w.check(
        Utc::now() - Duration::minutes(5),
        Fmt::Space,
        "ALLOW",
        "a",
        "viewer",
    );
    for bad in ["yesterday", "", "2025-13-45 99:00:00"] {
        conn.execute(
            "INSERT INTO security_audit_logs (event_type, details, created_at) VALUES ('permission_check', '{\"result\": \"DENY\"}', ?1)",
            [bad],
        )
        .unwrap();
    }
    conn.execute(
        "INSERT INTO license_usage_history (valid, validated_at) VALUES (0, 'soon')",
        [],
    )
    .unwrap();
    let mut c = collector(&path);
    let p = poll(&mut c).await;
    p.assert_ok();
    assert_eq!(p.num("rbac.checks_1h"), 1.0);
    let detail = &p.reading("rbac.checks_1h").detail;
    assert!(
        detail.contains("3 rows with a created_at SQLite cannot read"),
        "{detail}"
    );
    assert!(
        p.reading("audit.volume_24h")
            .detail
            .contains("3 rows with a created_at"),
        "{}",
        p.reading("audit.volume_24h").detail
    );
    assert!(
        p.reading("license.failure_pct_1h")
            .detail
            .contains("1 row with a validated_at SQLite cannot read"),
        "{}",
        p.reading("license.failure_pct_1h").detail
    );
    // Still counted once each after more refreshes.
    poll(&mut c).await;
    let p = poll(&mut c).await;
    assert!(
        p.reading("rbac.checks_1h")
            .detail
            .contains("3 rows with a created_at")
    );
}

/// All validations of the hour failing is seed 000's P0.
#[tokio::test]
async fn all_validations_failing_is_p0() {
    let dir = tempfile::tempdir().unwrap();
    let path = create_db(dir.path(), Mode::Rollback);
    let conn = Connection::open(&path).unwrap();
    let mut w = Writer::new(&conn);
    let now = Utc::now();
    for i in 0..4 {
        w.validation(now - Duration::minutes(i + 1), Fmt::IsoZ, None, 0);
    }
    let mut c = collector(&path);
    let p = poll(&mut c).await;
    let r = p.reading("license.failure_pct_1h");
    assert_eq!(p.num("license.failure_pct_1h"), 100.0);
    assert_eq!(rules::judge(r, None), Severity::Crit);
    assert_eq!(
        r.default_rule
            .as_ref()
            .unwrap()
            .priority_for(Severity::Crit),
        Some(watchpost::model::rule::Priority::P0)
    );
    let key = w.key("PRO", now, None, None, Fmt::IsoZ);
    w.validation(now - Duration::minutes(1), Fmt::IsoZ, Some(key), 1);
    let p = poll(&mut c).await;
    let r = p.reading("license.failure_pct_1h");
    assert_eq!(rules::judge(r, None), Severity::Crit);
    assert_eq!(
        r.default_rule
            .as_ref()
            .unwrap()
            .priority_for(Severity::Crit),
        Some(watchpost::model::rule::Priority::P1)
    );
}

/// The 10x jump of audit volume is its own figure.
#[tokio::test]
async fn audit_jump_is_its_own_figure() {
    let dir = tempfile::tempdir().unwrap();
    let path = create_db(dir.path(), Mode::Wal);
    let conn = Connection::open(&path).unwrap();
    let mut w = Writer::new(&conn);
    let now = Utc::now();
    // 2 events an hour for the 23 hours before the last one.
    for h in 1..24 {
        for m in [10, 40] {
            w.audit(
                now - Duration::hours(h) - Duration::minutes(m),
                Fmt::Space,
                "login",
                None,
            );
        }
    }
    let mut c = collector(&path);
    let p = poll(&mut c).await;
    assert_eq!(p.severity("audit.jump_1h"), Severity::Ok);
    for m in 0..30 {
        w.audit(
            now - Duration::minutes(m) - Duration::seconds(20),
            Fmt::IsoZ,
            "login",
            None,
        );
    }
    let p = poll(&mut c).await;
    let jump = p.num("audit.jump_1h");
    assert!(jump >= 10.0, "{jump}");
    assert_eq!(p.severity("audit.jump_1h"), Severity::Crit);
    assert!(p.reading("audit.jump_1h").detail.contains("attack"));
}

// ---------------------------------------------------------------- custom SQL metrics

fn metric(id: &str, query: &str) -> watchpost::config::SqlMetric {
    watchpost::config::SqlMetric {
        id: id.into(),
        name: None,
        query: query.into(),
        unit: String::new(),
        warn: None,
        crit: None,
        priority: None,
        kind: watchpost::config::MetricKind::Number,
        min_samples: None,
    }
}

#[tokio::test]
async fn custom_metrics_read_numbers_and_tables() {
    for mode in [Mode::Rollback, Mode::Wal] {
        let dir = tempfile::tempdir().unwrap();
        let path = create_db(dir.path(), mode);
        let conn = Connection::open(&path).unwrap();
        populate(&conn, &[Fmt::Space]);
        let before = std::fs::read(&path).unwrap();
        let mut denies = metric(
            "denies_total",
            "SELECT count(*) FROM security_audit_logs WHERE details ->> '$.result' = 'DENY'",
        );
        denies.warn = Some("> 5".parse().unwrap());
        denies.crit = Some("> 50".parse().unwrap());
        let mut ratio = metric("admins.ratio", "SELECT 1.0 * 1 / 6");
        ratio.unit = "x".into();
        let mut roles = metric(
            "agents.roles",
            "SELECT lower(role) AS role, count(*) AS n FROM agents GROUP BY 1 ORDER BY n DESC",
        );
        roles.kind = watchpost::config::MetricKind::Table;
        roles.name = Some("agents by role".into());
        roles.crit = Some("> 2".parse().unwrap());
        let mut c = collector(&path).with_metrics(vec![denies, ratio, roles]);
        let p = poll(&mut c).await;
        p.assert_ok();
        let seed_denies = seed_scalar(
            &conn,
            "SELECT count(*) FROM security_audit_logs WHERE details->>'result' = 'DENY'",
        );
        assert_eq!(p.num("denies_total"), seed_denies as f64);
        assert_eq!(
            p.severity("denies_total"),
            Severity::Warn,
            "{seed_denies} > 5"
        );
        assert!((p.num("admins.ratio") - 1.0 / 6.0).abs() < 1e-12);
        assert_eq!(p.reading("admins.ratio").unit, "x");
        assert_eq!(p.num("agents.roles"), 3.0, "viewer, editor, admin");
        assert_eq!(p.reading("agents.roles").unit, "rows");
        assert_eq!(p.reading("agents.roles").name, "agents by role");
        assert_eq!(p.severity("agents.roles"), Severity::Crit);
        let table = &p.tables["tmws.agents.roles"];
        assert_eq!(table.columns, ["role", "n"]);
        assert_eq!(table.rows[0], ["viewer", "4"]);
        drop(c);
        drop(conn);
        if mode == Mode::Rollback {
            assert!(std::fs::read(&path).unwrap() == before);
        }
    }
}

#[tokio::test]
async fn custom_metric_errors_are_clear_and_never_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = create_db(dir.path(), Mode::Rollback);
    let conn = Connection::open(&path).unwrap();
    populate(&conn, &[Fmt::Space]);
    let before = std::fs::read(&path).unwrap();
    let cases = [
        (
            "writes",
            "DELETE FROM agents",
            "would write to the database",
        ),
        (
            "pragma_write",
            "PRAGMA user_version = 7",
            "would write to the database",
        ),
        (
            "two",
            "SELECT 1; DELETE FROM agents",
            "one statement per metric",
        ),
        (
            "text",
            "SELECT 'lots'",
            "returned text \"lots\" where a number is expected",
        ),
        (
            "null",
            "SELECT max(id) FROM agents WHERE 0",
            "returned NULL where a number is expected",
        ),
        ("none", "SELECT 1 WHERE 0", "returned no rows"),
        ("bad_sql", "SELEKT 1", "syntax error"),
        (
            "no_table",
            "SELECT count(*) FROM nope",
            "no such table: nope",
        ),
        (
            "slow",
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n",
            "so as not to hold up the application's writes",
        ),
    ];
    let metrics = cases.iter().map(|(id, q, _)| metric(id, q)).collect();
    let mut c = collector(&path).with_metrics(metrics);
    let p = poll(&mut c).await;
    for (id, _, words) in cases {
        let r = p.reading(id);
        assert_eq!(r.value, Value::None, "{id}");
        let error = r.error.as_deref().unwrap();
        assert!(
            error.starts_with(&format!("metric tmws.{id}: ")) && error.contains(words),
            "{id}: {error}"
        );
        assert_eq!(rules::judge(r, None), Severity::Unknown);
    }
    // The pack's figures are unaffected; the source says what went wrong.
    assert_eq!(p.num("rbac.checks_1h"), 10.0);
    assert!(
        p.error_text().contains("metric tmws.writes"),
        "{}",
        p.error_text()
    );
    let agents: i64 = seed_scalar(&conn, "SELECT count(*) FROM agents");
    assert_eq!(agents, 6, "nothing was deleted");
    drop(c);
    assert!(std::fs::read(&path).unwrap() == before);
}

/// A metric on a missing file fails with the file's error, like every other figure.
#[tokio::test]
async fn custom_metrics_of_a_missing_file_fail_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = collector(&dir.path().join("gone.db")).with_metrics(vec![metric("m", "SELECT 1")]);
    let p = poll(&mut c).await;
    assert!(
        p.reading("m")
            .error
            .as_deref()
            .unwrap()
            .contains("no such file")
    );
}

#[tokio::test]
async fn a_deleted_database_clears_the_rows_it_can_no_longer_vouch_for() {
    use watchpost::state::{AppState, Window};
    let dir = tempfile::tempdir().unwrap();
    let path = create_db(dir.path(), Mode::Rollback);
    populate(&Connection::open(&path).unwrap(), &[Fmt::Space]);
    let mut c = collector(&path);
    let now = Utc::now();
    let mut state = AppState::new(Window::new("t", now, Duration::hours(24)));
    for u in c.poll().await {
        state.apply(u, now);
    }
    assert!(
        state.tables.contains_key("tmws.rbac.top_denied"),
        "{:?}",
        state.tables.keys().collect::<Vec<_>>()
    );
    std::fs::remove_file(&path).unwrap();
    // Two minutes of failed polls later.
    let later = now + Duration::minutes(2);
    for at in [now + Duration::seconds(5), later] {
        for u in c.poll().await {
            state.apply(u, at);
        }
    }
    assert!(
        !state.tables.keys().any(|id| id.starts_with("tmws.")),
        "a table of a failed source is still shown: {:?}",
        state.tables.keys().collect::<Vec<_>>()
    );
    let said = state.sources["tmws"].describe(later);
    assert!(said.contains("no such file"), "{said}");
    assert!(said.contains("failing for 1m"), "{said}");
}
