//! The simulated deployment behind `watchpost demo`, run with a fast incident schedule and
//! checked with the runbook's own SQL, a real HTTP client and the log file itself.

use rusqlite::{Connection, OpenFlags};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};
use watchpost::demo::{DemoOptions, DemoWorld, IncidentSchedule, MIGRATION_HEAD, Phase, phase_at};

/// Seed 000, step 2, verbatim (plus an optional time range for the incident's rows).
const DENY_SQL: &str = "
SELECT
  COUNT(*) as total_checks,
  SUM(CASE WHEN details->>'result' = 'ALLOW' THEN 1 ELSE 0 END) as allow_count,
  SUM(CASE WHEN details->>'result' = 'DENY' THEN 1 ELSE 0 END) as deny_count,
  ROUND(100.0 * SUM(CASE WHEN details->>'result' = 'DENY' THEN 1 ELSE 0 END) / COUNT(*), 2) as deny_percentage
FROM security_audit_logs
WHERE event_type = 'permission_check'
  AND created_at > datetime('now', '-1 hour')
  AND created_at > ?1 AND created_at <= ?2;
";

const FIRST_INCIDENT: Duration = Duration::from_secs(8);
const INCIDENT: Duration = Duration::from_secs(6);

fn fast() -> DemoOptions {
    DemoOptions {
        schedule: IncidentSchedule::fast(FIRST_INCIDENT, INCIDENT),
        seed: Some(42),
        ..DemoOptions::default()
    }
}

/// Opened the way a monitor opens it: read-only.
fn reader(path: &Path) -> Connection {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    conn.busy_timeout(Duration::from_secs(2)).unwrap();
    conn
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |row| row.get(0)).unwrap()
}

/// (total checks, deny %) of permission checks in the last hour between two SQL times.
fn deny(conn: &Connection, after: &str, until: &str) -> (i64, f64) {
    conn.query_row(DENY_SQL, [after, until], |row| {
        Ok((row.get(0)?, row.get(3)?))
    })
    .unwrap()
}

/// The database's idea of now, in the same format the simulator writes.
fn sql_now(conn: &Connection) -> String {
    conn.query_row(
        "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now') || '000'",
        [],
        |row| row.get(0),
    )
    .unwrap()
}

async fn health(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let response = client.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    (status, body)
}

fn log_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

async fn wait_for(world: &DemoWorld, what: &str, done: impl Fn(Phase) -> bool) {
    let deadline = Instant::now() + FIRST_INCIDENT + INCIDENT + Duration::from_secs(10);
    while !done(world.incident_phase()) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}, phase is {}",
            world.incident_phase()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_world_lives_through_an_incident_and_leaves_nothing_behind() {
    let world = DemoWorld::start_with(fast()).await.unwrap();
    let dir = world.dir().to_path_buf();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    assert!(world.db_path().is_file());
    assert!(world.log_path().is_file());
    assert!(
        matches!(
            world.incident_phase(),
            Phase::Normal {
                next_incident_in: Some(_)
            }
        ),
        "{}",
        world.incident_phase()
    );

    // Seeded and backfilled: the checklist's queries have figures at once.
    let db = reader(world.db_path());
    let mode: String = db
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM agents"), 200);
    let roles: Vec<(String, f64)> = db
        .prepare(
            "SELECT role, ROUND(100.0 * COUNT(*) / (SELECT COUNT(*) FROM agents), 2) FROM agents
             GROUP BY role ORDER BY COUNT(*) DESC",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        roles,
        vec![
            ("viewer".into(), 80.0),
            ("editor".into(), 16.0),
            ("admin".into(), 4.0)
        ]
    );
    let version: String = db
        .query_row("SELECT version_num FROM alembic_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        (
            count(&db, "SELECT COUNT(*) FROM alembic_version"),
            version.as_str()
        ),
        (1, MIGRATION_HEAD)
    );
    let keys = count(&db, "SELECT COUNT(*) FROM license_keys");
    assert!((420..=650).contains(&keys), "{keys} license keys");
    let tiers = count(&db, "SELECT COUNT(DISTINCT tier) FROM license_keys");
    assert_eq!(tiers, 3);
    assert!(
        count(
            &db,
            "SELECT COUNT(*) FROM license_keys WHERE revoked_at IS NOT NULL"
        ) > 5
    );
    let expiring = count(
        &db,
        "SELECT COUNT(*) FROM license_keys WHERE revoked_at IS NULL
         AND expires_at BETWEEN datetime('now') AND datetime('now', '+7 days')",
    );
    assert!(
        (5..=100).contains(&expiring),
        "{expiring} expiring within 7 days"
    );
    let expired_active = count(
        &db,
        "SELECT COUNT(*) FROM license_keys WHERE revoked_at IS NULL AND expires_at < datetime('now')",
    );
    assert!(
        (1..=20).contains(&expired_active),
        "{expired_active} expired but not revoked"
    );
    let generated = count(
        &db,
        "SELECT COUNT(*) FROM license_keys WHERE created_at > datetime('now', '-1 hour')",
    );
    assert!(
        (60..=400).contains(&generated),
        "{generated} generated in the last hour"
    );
    let (validations, failure_pct): (i64, f64) = db
        .query_row(
            "SELECT COUNT(*), ROUND(100.0 * SUM(CASE WHEN valid = 0 THEN 1 ELSE 0 END) / COUNT(*), 2)
             FROM license_usage_history WHERE validated_at > datetime('now', '-1 hour')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(
        validations > 5_000,
        "{validations} validations in the last hour"
    );
    assert!(
        (1.0..6.0).contains(&failure_pct),
        "validation failure {failure_pct}%"
    );
    assert!(
        count(
            &db,
            "SELECT COUNT(*) FROM license_usage_history WHERE license_key_id IS NULL"
        ) > 0
    );

    // Normal traffic: tens of checks a second over the last hour, ~8% denied.
    let (checks, deny_pct) = deny(&db, "", "9999");
    assert!(
        checks > 40_000,
        "{checks} permission checks in the last hour"
    );
    assert!(
        (6.0..10.5).contains(&deny_pct),
        "deny {deny_pct}% before the incident"
    );

    // Healthy, and the log grows with JSON lines.
    let (status, body) = health(&client, world.health_url()).await;
    assert_eq!(
        (status, body),
        (200, serde_json::json!({"status": "healthy"}))
    );
    let size_before = std::fs::metadata(world.log_path()).unwrap().len();

    // A reader holding a transaction open never makes the writer fail (WAL + busy_timeout).
    let checks_before = world.stats().permission_checks;
    {
        let held = reader(world.db_path());
        held.execute_batch("BEGIN; SELECT COUNT(*) FROM security_audit_logs;")
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        held.execute_batch("COMMIT").unwrap();
    }
    assert!(
        world.stats().permission_checks > checks_before,
        "the writer stalled behind a reader"
    );
    assert!(
        std::fs::metadata(world.log_path()).unwrap().len() > size_before,
        "the log did not grow"
    );

    // The incident: health fails, denials jump, errors burst.
    wait_for(&world, "the incident", |p| p.is_incident()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let incident_from = sql_now(&db);
    let (status, body) = health(&client, world.health_url()).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(body["reason"], "database connection pool exhausted");
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let incident_until = sql_now(&db);
    assert!(
        world.incident_phase().is_incident(),
        "the incident ended before it was measured"
    );
    let (incident_checks, incident_deny) = deny(&db, &incident_from, &incident_until);
    assert!(
        incident_checks > 40,
        "only {incident_checks} permission checks during the incident"
    );
    assert!(
        incident_deny > 50.0,
        "deny {incident_deny}% during the incident"
    );
    let lines = log_lines(world.log_path());
    assert!(
        lines.iter().all(|l| l["timestamp"].is_string()
            && l["level"].is_string()
            && l["message"].is_string())
    );
    let pool_errors = lines
        .iter()
        .filter(|l| l["level"] == "ERROR" && l["message"] == "database connection pool exhausted")
        .count();
    let rbac_errors = lines
        .iter()
        .filter(|l| {
            l["level"] == "ERROR"
                && l["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("RBAC check failed for agent ")
        })
        .count();
    assert!(
        pool_errors >= 2 && rbac_errors >= 2,
        "{pool_errors} pool errors, {rbac_errors} RBAC errors"
    );
    assert!(lines.iter().any(|l| {
        l["message"]
            .as_str()
            .unwrap()
            .starts_with("Tool outcome recorded: ")
    }));

    // Recovery: healthy again.
    wait_for(&world, "the recovery", |p| !p.is_incident()).await;
    let (status, _) = health(&client, world.health_url()).await;
    assert_eq!(status, 200);

    let stats = world.stats();
    assert_eq!(stats.write_errors, 0, "{:?}", stats.last_error);
    assert!(stats.health_requests >= 3);
    drop(db);
    drop(world);
    assert!(!dir.exists(), "{} is left behind", dir.display());
}

#[tokio::test]
async fn config_describes_the_world() {
    let world = DemoWorld::start_with(fast()).await.unwrap();
    let config = world.config();
    assert_eq!(config.deployment.name, "tmws-demo");
    assert_eq!(config.deployment.version, "v2.3.0");
    assert_eq!(config.deployment.length, Duration::from_secs(24 * 3600));
    let start = chrono::DateTime::parse_from_rfc3339(&config.deployment.start).unwrap();
    assert!((chrono::Utc::now() - start.to_utc()).num_seconds().abs() < 60);

    let sqlite = &config.sqlite["tmws"];
    assert_eq!(Path::new(&sqlite.path), world.db_path());
    assert_eq!(sqlite.pack.as_deref(), Some("tmws"));
    assert_eq!(sqlite.expected_migration.as_deref(), Some(MIGRATION_HEAD));
    assert_eq!(sqlite.interval, Duration::from_secs(2));
    let api = &config.service["api"];
    assert_eq!(api.health_url.as_deref(), Some(world.health_url()));
    assert!(world.health_url().starts_with("http://127.0.0.1:"));
    assert_eq!(api.timeout, Duration::from_secs(1));
    assert_eq!(
        config.logs["app"].files,
        vec![world.log_path().to_str().unwrap().to_string()]
    );
    assert!(regex::Regex::new(&config.logs["app"].error_pattern).is_ok());
    assert_eq!(config.docker["local"].host, "local");
    assert_eq!(config.system["host"].host, "local");

    // Unknown paths are a plain 404, not a health answer.
    let response = reqwest::get(world.health_url().replace("/health", "/nope"))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
}

#[test]
fn default_schedule_is_a_minute_in_then_every_four_minutes_for_45_seconds() {
    let secs = Duration::from_secs;
    assert!(!phase_at(secs(59)).is_incident());
    assert!(phase_at(secs(60)).is_incident());
    assert!(phase_at(secs(104)).is_incident());
    assert!(!phase_at(secs(105)).is_incident());
    assert!(!phase_at(secs(299)).is_incident());
    assert_eq!(
        phase_at(secs(300)),
        Phase::Incident {
            number: 2,
            ends_in: secs(45)
        }
    );
}
