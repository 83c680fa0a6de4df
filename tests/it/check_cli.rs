//! `watchpost check` end to end: the real binary on a config pointing at a SQLite file
//! written here with seed 000's schema. The JSON shape of product.md, figures equal to the
//! seed's own SQL, Nagios exit codes, and the watched file left byte-for-byte unchanged.

use crate::support::check::{BIN, by_id, num};
use chrono::{DateTime, Duration, Utc};
use rusqlite::Connection;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const SCHEMA: &str = include_str!("../../assets/tmws_schema.sql");
const HEAD: &str = "571948cc671b";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Rollback,
    Wal,
}

fn ts(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// A TMWS database whose last hour has `allow` allowed and `deny` denied permission checks,
/// and otherwise healthy figures (so the deny rate alone decides the worst severity).
fn write_db(dir: &Path, mode: Mode, allow: usize, deny: usize) -> PathBuf {
    let path = dir.join("tmws.db");
    let conn = Connection::open(&path).unwrap();
    let journal = if mode == Mode::Wal { "wal" } else { "delete" };
    let _: String = conn
        .query_row(&format!("PRAGMA journal_mode={journal}"), [], |r| r.get(0))
        .unwrap();
    conn.execute_batch(SCHEMA).unwrap();
    // One transaction: a few hundred rows, one fsync.
    conn.execute_batch("BEGIN").unwrap();
    let now = Utc::now();
    let m = Duration::minutes;
    conn.execute("INSERT INTO alembic_version VALUES (?1)", [HEAD])
        .unwrap();
    let check = |at: DateTime<Utc>, result: &str, op: &str, role: &str| {
        conn.execute(
            "INSERT INTO security_audit_logs (event_type, agent_id, details, created_at) VALUES ('permission_check', 'a', ?1, ?2)",
            rusqlite::params![
                format!(r#"{{"result": "{result}", "operation": "{op}", "role": "{role}"}}"#),
                ts(at)
            ],
        )
        .unwrap();
    };
    for i in 0..allow {
        check(
            now - m(3 + (i as i64 % 50)),
            "ALLOW",
            "license.validate",
            "viewer",
        );
    }
    for i in 0..deny {
        check(
            now - m(4 + (i as i64 % 50)),
            "DENY",
            "license.generate",
            "viewer",
        );
    }
    // Older rows: the day before and the week (steady, so no audit jump).
    for h in 2..23 {
        for i in 0..15 {
            check(
                now - Duration::hours(h) - m(i * 3),
                "ALLOW",
                "license.validate",
                "editor",
            );
        }
    }
    check(now - Duration::days(3), "DENY", "agent.delete", "viewer");
    for (i, tier) in ["FREE", "FREE", "PRO"].iter().enumerate() {
        conn.execute(
            "INSERT INTO license_keys (license_key, agent_id, tier, issued_at, created_at, expires_at) VALUES (?1, 'a', ?2, ?3, ?3, ?4)",
            rusqlite::params![format!("K{i}"), tier, ts(now - m(10 + i as i64)), ts(now + Duration::days(3 + i as i64))],
        )
        .unwrap();
    }
    for i in 0..20 {
        conn.execute(
            "INSERT INTO license_usage_history (license_key_id, agent_id, valid, validated_at) VALUES (1, 'a', ?1, ?2)",
            rusqlite::params![(i != 0) as i64, ts(now - m(2 + i))],
        )
        .unwrap();
    }
    for (i, role) in [
        "viewer", "viewer", "viewer", "editor", "admin", "viewer", "viewer", "viewer", "editor",
        "viewer",
    ]
    .iter()
    .enumerate()
    {
        conn.execute(
            "INSERT INTO agents (agent_id, role, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
            rusqlite::params![format!("agent-{i}"), role, ts(now)],
        )
        .unwrap();
    }
    conn.execute_batch("COMMIT").unwrap();
    path
}

fn write_config(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("watchpost.toml");
    std::fs::write(&path, body).unwrap();
    path
}

const CONFIG: &str = r#"
[deployment]
name = "tmws-check-test"

[sqlite.tmws]
path = "${WATCHPOST_TEST_DB}"
pack = "tmws"
expected_migration = "571948cc671b"
"#;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// The binary with `WATCHPOST_TEST_DB` set to `db`, or unset.
fn watchpost(db: Option<&Path>) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("WATCHPOST_TEST_DB");
    if let Some(db) = db {
        cmd.env("WATCHPOST_TEST_DB", db);
    }
    cmd
}

fn run(args: &[&str], db: Option<&Path>) -> Run {
    let out = watchpost(db).args(args).output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn check_json(config: &Path, db: &Path) -> (i32, Value) {
    let r = crate::support::check::check_json(watchpost(Some(db)), config);
    (r.code, r.json)
}

fn scalar<T: rusqlite::types::FromSql>(conn: &Connection, sql: &str) -> T {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// The exact shape of product.md.
fn assert_shape(json: &Value) {
    let top: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut top = top;
    top.sort();
    assert_eq!(top, ["at", "checks", "deployment", "worst"]);
    assert!(json["deployment"].is_string());
    let at = json["at"].as_str().unwrap();
    DateTime::parse_from_rfc3339(at).unwrap_or_else(|e| panic!("at {at:?}: {e}"));
    let severities = ["ok", "warn", "crit", "unknown"];
    assert!(severities.contains(&json["worst"].as_str().unwrap()));
    let checks = json["checks"].as_array().unwrap();
    assert!(!checks.is_empty());
    for c in checks {
        let mut keys: Vec<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            ["detail", "error", "id", "name", "severity", "unit", "value"],
            "{c}"
        );
        assert!(c["id"].is_string() && c["name"].is_string() && c["unit"].is_string());
        assert!(c["detail"].is_string());
        assert!(
            c["value"].is_number() || c["value"].is_string() || c["value"].is_null(),
            "{c}"
        );
        assert!(c["error"].is_string() || c["error"].is_null(), "{c}");
        assert!(severities.contains(&c["severity"].as_str().unwrap()), "{c}");
    }
}

fn check_against_seed(mode: Mode) {
    let dir = tempfile::tempdir().unwrap();
    let db = write_db(dir.path(), mode, 17, 3);
    if mode == Mode::Wal {
        // Fold the WAL into the file so "unchanged" is about the database file itself.
        Connection::open(&db)
            .unwrap()
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
    }
    let config = write_config(dir.path(), CONFIG);
    let before = std::fs::read(&db).unwrap();
    let (code, json) = check_json(&config, &db);
    assert_shape(&json);
    assert_eq!(json["deployment"], "tmws-check-test");
    assert_eq!(json["worst"], "ok", "{json:#}");
    assert_eq!(code, 0);

    let seed =
        Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    // Seed 000 step 2.
    let (checks, deny_pct): (i64, f64) = seed
        .query_row(
            "SELECT COUNT(*) as total_checks,
  ROUND(100.0 * SUM(CASE WHEN details->>'result' = 'DENY' THEN 1 ELSE 0 END) / COUNT(*), 2) as deny_percentage
FROM security_audit_logs
WHERE event_type = 'permission_check'
  AND created_at > datetime('now', '-1 hour');",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(num(&json, "tmws.rbac.checks_1h"), checks as f64);
    assert!((num(&json, "tmws.rbac.deny_pct_1h") - deny_pct).abs() < 0.006);
    // Step 4.
    let (validations, failure_rate): (i64, f64) = seed
        .query_row(
            "SELECT COUNT(*) as total_validations,
  ROUND(100.0 * SUM(CASE WHEN valid = 0 THEN 1 ELSE 0 END) / COUNT(*), 2) as failure_rate
FROM license_usage_history
WHERE validated_at > datetime('now', '-1 hour');",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        num(&json, "tmws.license.validations_1h"),
        validations as f64
    );
    assert!((num(&json, "tmws.license.failure_pct_1h") - failure_rate).abs() < 0.006);
    // Step 3 (summed over tiers), step 8, playbook B.2.
    let generated: i64 = scalar(
        &seed,
        "SELECT COALESCE(SUM(total_generated), 0) FROM (SELECT COUNT(*) as total_generated, tier FROM license_keys WHERE created_at > datetime('now', '-1 hour') GROUP BY tier)",
    );
    assert_eq!(num(&json, "tmws.license.generated_1h"), generated as f64);
    let expiring: i64 = scalar(
        &seed,
        "SELECT COALESCE(SUM(expiring_soon), 0) FROM (SELECT COUNT(*) as expiring_soon, tier FROM license_keys WHERE revoked_at IS NULL AND expires_at BETWEEN datetime('now') AND datetime('now', '+7 days') GROUP BY tier)",
    );
    assert_eq!(num(&json, "tmws.license.expiring_7d"), expiring as f64);
    let expired: i64 = scalar(
        &seed,
        "SELECT COUNT(*) as expired_licenses FROM license_keys WHERE revoked_at IS NULL AND expires_at < datetime('now');",
    );
    assert_eq!(num(&json, "tmws.license.expired_active"), expired as f64);
    // Step 5.
    let version: String = scalar(&seed, "SELECT version_num FROM alembic_version");
    assert_eq!(by_id(&json, "tmws.db.migration")["value"], version.as_str());
    // Step 6.
    let admin_pct: f64 = scalar(
        &seed,
        "SELECT ROUND(100.0 * COUNT(*) / (SELECT COUNT(*) FROM agents), 2) FROM agents WHERE role = 'admin'",
    );
    assert!((num(&json, "tmws.agents.admin_pct") - admin_pct).abs() < 0.006);
    // Step 7 (summed over days and types).
    let volume: i64 = scalar(
        &seed,
        "SELECT SUM(event_count) FROM (SELECT DATE(created_at) as date, event_type, COUNT(*) as event_count FROM security_audit_logs WHERE created_at > datetime('now', '-24 hours') GROUP BY DATE(created_at), event_type)",
    );
    assert_eq!(num(&json, "tmws.audit.volume_24h"), volume as f64);
    // Step 11.
    let integrity: String = scalar(&seed, "PRAGMA integrity_check;");
    assert_eq!(
        by_id(&json, "tmws.db.integrity")["value"],
        integrity.as_str()
    );
    let freelist: i64 = scalar(&seed, "PRAGMA freelist_count;");
    assert_eq!(num(&json, "tmws.db.freelist"), freelist as f64);
    let size_mb: f64 = scalar(
        &seed,
        "SELECT page_count * page_size / 1024.0 / 1024.0 FROM pragma_page_count(), pragma_page_size()",
    );
    // MB keep two decimals in the JSON: within half of the last one.
    assert!((num(&json, "tmws.db.size_mb") - size_mb).abs() <= 0.005);
    for id in [
        "tmws.rbac.deny_pct_1h",
        "tmws.rbac.checks_1h",
        "tmws.license.failure_pct_1h",
        "tmws.license.validations_1h",
        "tmws.license.generated_1h",
        "tmws.license.expiring_7d",
        "tmws.license.expired_active",
        "tmws.db.migration",
        "tmws.db.integrity",
        "tmws.agents.admin_pct",
        "tmws.audit.volume_24h",
    ] {
        assert_eq!(by_id(&json, id)["severity"], "ok", "{id}");
    }
    drop(seed);
    assert!(
        std::fs::read(&db).unwrap() == before,
        "{mode:?}: check changed the database file"
    );
    if mode == Mode::Rollback {
        assert!(!dir.path().join("tmws.db-journal").exists());
    }
}

#[test]
fn check_json_equals_seed_sql_rollback_journal() {
    check_against_seed(Mode::Rollback);
}

#[test]
fn check_json_equals_seed_sql_wal() {
    check_against_seed(Mode::Wal);
}

#[test]
fn exit_codes_follow_nagios() {
    for mode in [Mode::Rollback, Mode::Wal] {
        // 10% denied: ok; 30%: warn (> 20); 60%: crit (> 50).
        for (allow, deny, worst, code) in [(18, 2, "ok", 0), (14, 6, "warn", 1), (8, 12, "crit", 2)]
        {
            let dir = tempfile::tempdir().unwrap();
            let db = write_db(dir.path(), mode, allow, deny);
            let config = write_config(dir.path(), CONFIG);
            let (got, json) = check_json(&config, &db);
            assert_eq!(json["worst"], worst, "{mode:?} {allow}/{deny}: {json:#}");
            assert_eq!(got, code, "{mode:?} {allow}/{deny}");
            assert_eq!(by_id(&json, "tmws.rbac.deny_pct_1h")["severity"], worst);
        }
    }
    // A missing database: unknown, 3, with the reason in the check.
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), CONFIG);
    let missing = dir.path().join("nope.db");
    let (code, json) = check_json(&config, &missing);
    assert_eq!((code, json["worst"].as_str()), (3, Some("unknown")));
    let error = by_id(&json, "tmws.rbac.checks_1h")["error"]
        .as_str()
        .unwrap();
    assert!(error.contains("no such file"), "{error}");
    assert!(!missing.exists());
}

#[test]
fn config_errors_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let db = write_db(dir.path(), Mode::Rollback, 1, 0);
    let bad = write_config(dir.path(), &CONFIG.replace("pack =", "pakc ="));
    let r = run(
        &[
            "check",
            "--config",
            bad.to_str().unwrap(),
            "--format",
            "json",
        ],
        Some(&db),
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("pakc") && r.stderr.contains("pack"),
        "{}",
        r.stderr
    );
    // An unset variable without a default is a config error too.
    let good = write_config(dir.path(), CONFIG);
    let r = run(&["check", "--config", good.to_str().unwrap()], None);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("WATCHPOST_TEST_DB"), "{}", r.stderr);
    // A missing config file too.
    let r = run(
        &[
            "check",
            "--config",
            dir.path().join("none.toml").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
}

#[test]
fn text_format_lists_every_check() {
    let dir = tempfile::tempdir().unwrap();
    let db = write_db(dir.path(), Mode::Rollback, 14, 6);
    let config = write_config(dir.path(), CONFIG);
    let r = run(&["check", "--config", config.to_str().unwrap()], Some(&db));
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("worst: WARN"), "{}", r.stdout);
    assert!(
        r.stdout.lines().any(|l| l.trim_start().starts_with("WARN")
            && l.contains("tmws.rbac.deny_pct_1h")
            && l.contains("30.0%")),
        "{}",
        r.stdout
    );
}

#[test]
fn a_failing_source_is_said_once_with_its_figures_under_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("gone.db");
    let config = write_config(dir.path(), CONFIG);
    let r = run(
        &["check", "--config", config.to_str().unwrap()],
        Some(&missing),
    );
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    let source_line = r
        .stdout
        .lines()
        .find(|l| l.starts_with("tmws: error: "))
        .unwrap_or_else(|| panic!("no line for the failing source:\n{}", r.stdout));
    let error = source_line.trim_start_matches("tmws: error: ");
    assert!(error.contains("gone.db"), "{source_line}");
    // The error is said once, not once per figure (there are 20 of them).
    assert_eq!(r.stdout.matches(error).count(), 1, "{}", r.stdout);
    let figures: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("UNKNOWN") && l.contains("tmws."))
        .collect();
    assert!(figures.len() >= 17, "{}", r.stdout);
    assert!(
        figures.iter().all(|l| l.contains("(source error)")),
        "{}",
        r.stdout
    );
}

#[test]
fn json_is_json_even_for_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write_config(dir.path(), &CONFIG.replace("pack =", "pakc ="));
    let r = crate::support::check::check_json(watchpost(None), &bad);
    assert_eq!(r.code, 3, "{}", r.stderr);
    let json = r.json;
    assert_eq!(json["worst"], "unknown", "{json:#}");
    assert!(json["error"].as_str().unwrap().contains("pakc"), "{json:#}");
    assert!(json["checks"].as_array().unwrap().is_empty(), "{json:#}");
}

#[test]
fn json_numbers_are_rounded_to_their_figures_precision() {
    let dir = tempfile::tempdir().unwrap();
    let db = write_db(dir.path(), Mode::Rollback, 6, 1);
    // 1 in 7 denied: 14.285714…; the host's CPU share is a 32-bit float.
    let config = write_config(
        dir.path(),
        &format!("{CONFIG}\n[system.box]\nhost = \"local\"\n"),
    );
    let (_, json) = check_json(&config, &db);
    assert_eq!(num(&json, "tmws.rbac.deny_pct_1h"), 14.29, "{json:#}");
    for check in json["checks"].as_array().unwrap() {
        let Some(value) = check["value"].as_f64() else {
            continue;
        };
        let decimals = match check["unit"].as_str().unwrap_or("") {
            "%" => 2,
            "ms" => 1,
            "s" => 3,
            "MB" => 2,
            "bytes" => 0,
            _ => 3,
        };
        // The number as JSON text has no more decimals than its unit keeps.
        let text = check["value"].to_string();
        let after_point = text.split('.').nth(1).map_or(0, str::len);
        assert!(
            after_point <= decimals,
            "{} = {text} ({value})",
            check["id"]
        );
    }
}
