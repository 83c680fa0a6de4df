//! Sources on a remote host, through its one SSH connection, against a real OpenSSH server
//! on 127.0.0.1 (see support/sshd.rs). The "remote" host is this machine, so every remote
//! figure can be compared with the same figure read locally.

use crate::support::net::ClosedPort;
use crate::support::sshd;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use rusqlite::Connection;
use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};
use watchpost::collect::docker::DockerCollector;
use watchpost::collect::host::HostCollector;
use watchpost::collect::http::ServiceCollector;
use watchpost::collect::logs::LogCollector;
use watchpost::collect::sqlite::SqliteCollector;
use watchpost::collect::{self, Collector};
use watchpost::config::{Config, DockerSource, ServiceSource, SqliteSource, SystemSource};
use watchpost::model::figure::{Reading, Value};
use watchpost::model::update::{HostSnapshot, SourceHealth, Update};
use watchpost::state::{AppState, Window};
use watchpost::transport::{HostPool, PoolOptions};
use watchpost::ui::theme::Theme;
use watchpost::ui::{PaneContext, UiState, panes};

const SCHEMA: &str = include_str!("../../assets/tmws_schema.sql");
const HEAD: &str = "571948cc671b";
const WAIT: Duration = Duration::from_secs(15);

// ------------------------------------------------------------------ helpers

fn readings(updates: &[Update]) -> Vec<Reading> {
    updates
        .iter()
        .flat_map(|u| match u {
            Update::Readings { readings, .. } => readings.clone(),
            _ => Vec::new(),
        })
        .collect()
}

fn by_id(updates: &[Update]) -> HashMap<String, Reading> {
    readings(updates)
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect()
}

fn last_health(updates: &[Update]) -> Option<SourceHealth> {
    updates.iter().rev().find_map(|u| match u {
        Update::Health { health, .. } => Some(health.clone()),
        _ => None,
    })
}

fn error_of(updates: &[Update]) -> Option<String> {
    match last_health(updates) {
        Some(SourceHealth::Error { message, .. }) => Some(message),
        _ => None,
    }
}

fn number(r: &Reading) -> f64 {
    match &r.value {
        Value::Number(n) => *n,
        other => panic!("{} is not a number: {other:?} ({:?})", r.id, r.error),
    }
}

fn marker(name: &str) -> PathBuf {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    PathBuf::from(format!(
        "/tmp/pwned-{name}-{}-{}",
        std::process::id(),
        h.finish()
    ))
}

fn stamp(at: chrono::DateTime<chrono::Utc>, fmt: usize) -> String {
    match fmt % 4 {
        0 => at.format("%Y-%m-%d %H:%M:%S").to_string(),
        1 => at.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
        2 => at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        _ => (at + chrono::Duration::hours(2))
            .format("%Y-%m-%dT%H:%M:%S+02:00")
            .to_string(),
    }
}

/// A TMWS database with rows in every window (well away from the edges), in four
/// timestamp spellings, a row SQLite cannot read the time of and details that are not JSON.
fn tmws_db(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(SCHEMA).unwrap();
    let now = chrono::Utc::now();
    let min = chrono::Duration::minutes;
    let tx = conn.unchecked_transaction().unwrap();
    tx.execute("INSERT INTO alembic_version VALUES (?1)", [HEAD])
        .unwrap();
    let audit = |at: chrono::DateTime<chrono::Utc>, fmt: usize, event: &str, details: &str| {
        tx.execute(
            "INSERT INTO security_audit_logs (event_type, agent_id, details, created_at) VALUES (?1, 'a1', ?2, ?3)",
            rusqlite::params![event, details, stamp(at, fmt)],
        )
        .unwrap();
    };
    let check = |result: &str, op: &str, role: &str| {
        format!(r#"{{"result": "{result}", "operation": "{op}", "role": "{role}"}}"#)
    };
    for i in 0..12 {
        let result = if i % 3 == 0 { "DENY" } else { "ALLOW" };
        audit(
            now - min(3 + i * 4),
            i as usize,
            "permission_check",
            &check(result, "license.generate", "viewer"),
        );
    }
    for i in 0..6 {
        audit(
            now - min(90 + i * 120),
            i as usize,
            "permission_check",
            &check("DENY", "agent.delete", "editor"),
        );
    }
    audit(
        now - chrono::Duration::days(3),
        1,
        "permission_check",
        &check("DENY", "license.revoke", "admin"),
    );
    audit(
        now - chrono::Duration::days(10),
        2,
        "permission_check",
        &check("DENY", "too.old", "viewer"),
    );
    audit(now - min(20), 0, "permission_check", "result=DENY");
    audit(now - min(25), 3, "license_generated", r#"{"tier":"PRO"}"#);
    tx.execute(
        "INSERT INTO security_audit_logs (event_type, agent_id, details, created_at) VALUES ('login', 'a1', '{}', 'yesterday')",
        [],
    )
    .unwrap();
    let key = |tier: &str, created: i64, revoked: Option<i64>, expires: Option<i64>, n: usize| {
        tx.execute(
            "INSERT INTO license_keys (license_key, agent_id, tier, issued_at, created_at, expires_at, revoked_at) VALUES (?1, 'a1', ?2, ?3, ?3, ?4, ?5)",
            rusqlite::params![
                format!("KEY-{n}"),
                tier,
                stamp(now - min(created), n),
                expires.map(|e| stamp(now + min(e), n)),
                revoked.map(|r| stamp(now - min(r), n)),
            ],
        )
        .unwrap();
    };
    key("FREE", 10, None, Some(30 * 24 * 60), 1);
    key("FREE", 20, None, Some(3 * 24 * 60), 2);
    key("PRO", 45, Some(10), Some(2 * 24 * 60), 3);
    key("ENTERPRISE", 40 * 24 * 60, None, Some(-24 * 60), 4);
    key("PRO", 9 * 24 * 60, Some(30), Some(100 * 24 * 60), 5);
    for (i, (key, valid)) in [
        (Some(1), 1),
        (Some(1), 1),
        (None, 0),
        (Some(2), 0),
        (Some(1), 1),
    ]
    .into_iter()
    .enumerate()
    {
        tx.execute(
            "INSERT INTO license_usage_history (license_key_id, agent_id, valid, validated_at) VALUES (?1, 'a1', ?2, ?3)",
            rusqlite::params![key, valid, stamp(now - min(5 + 9 * i as i64), i)],
        )
        .unwrap();
    }
    for (i, role) in ["viewer", "viewer", "ADMIN", "editor"].iter().enumerate() {
        tx.execute(
            "INSERT INTO agents (agent_id, role, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
            rusqlite::params![format!("agent-{i}"), role, stamp(now, 0)],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    path
}

fn sqlite_source(path: &Path, host: &str) -> SqliteSource {
    SqliteSource {
        path: path.to_string_lossy().into_owned(),
        pack: Some("tmws".into()),
        host: host.into(),
        interval: Duration::from_secs(5),
        expected_migration: Some(HEAD.into()),
    }
}

/// The figures of a poll keyed by what follows the source name.
fn figures(updates: &[Update], source: &str) -> BTreeMap<String, Reading> {
    readings(updates)
        .into_iter()
        .map(|r| {
            let key =
                r.id.strip_prefix(&format!("{source}."))
                    .unwrap_or_else(|| panic!("{} is not of {source}", r.id))
                    .to_string();
            (key, r)
        })
        .collect()
}

/// The one figure that moves with the clock itself (its baseline is "the hours since the
/// oldest event", to the microsecond): two reads a moment apart differ in the 5th digit.
const JUMP: &str = "audit.jump_1h";

fn close(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(a), Value::Number(b)) => (a - b).abs() <= 1e-3 * a.abs().max(1.0),
        _ => a == b,
    }
}

/// Every figure of `remote` is `local`'s: value, unit, error, detail, rule.
fn assert_same_figures(local: &[Update], remote: &[Update]) {
    let local = figures(local, "near");
    let remote = figures(remote, "far");
    assert_eq!(
        local.keys().collect::<Vec<_>>(),
        remote.keys().collect::<Vec<_>>()
    );
    for (key, l) in &local {
        let r = &remote[key];
        if key == JUMP {
            assert!(close(&l.value, &r.value), "{key}: {l:?} vs {r:?}");
        } else {
            assert_eq!(l.value, r.value, "{key}: {l:?} vs {r:?}");
        }
        assert_eq!(l.error, r.error, "{key}");
        assert_eq!(l.unit, r.unit, "{key}");
        assert_eq!(l.name, r.name, "{key}");
        assert_eq!(l.default_rule, r.default_rule, "{key}");
        if key != "db.integrity" {
            assert_eq!(l.detail, r.detail, "{key}");
        }
    }
}

// ------------------------------------------------------------------ host metrics

fn local_proc(key: &str) -> f64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap()
        * 1024.0
}

fn snapshot(updates: &[Update]) -> HostSnapshot {
    updates
        .iter()
        .find_map(|u| match u {
            Update::Host { snapshot, .. } => Some(snapshot.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no host snapshot: {updates:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_host_figures_are_present_and_sane() {
    let sshd = sshd_or_skip!();
    let pool = sshd.pool("id_ed25519");
    let source = SystemSource {
        host: "test".into(),
        interval: Duration::from_secs(2),
    };
    let mut remote = HostCollector::on("box", &source, collect::reach(&pool, "test"));
    let mut local = crate::support::host::local(source.interval);
    let deadline = Instant::now() + WAIT;
    let first = loop {
        let updates = remote.poll().await;
        if !readings(&updates).is_empty() {
            break updates;
        }
        assert!(Instant::now() < deadline, "no figures: {updates:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    for updates in [first, remote.poll().await] {
        assert_eq!(last_health(&updates), None, "{updates:?}");
        let figs = by_id(&updates);
        let ids: Vec<&str> = {
            let mut ids: Vec<&str> = figs.keys().map(String::as_str).collect();
            ids.sort();
            ids
        };
        assert_eq!(
            ids,
            ["box.cpu_pct", "box.disk_pct", "box.load1", "box.mem_pct"]
        );
        let cpu = number(&figs["box.cpu_pct"]);
        assert!((0.0..=100.0).contains(&cpu), "{cpu}");
        let mem = number(&figs["box.mem_pct"]);
        assert!(mem > 0.0 && mem < 100.0, "{mem}");
        let disk = number(&figs["box.disk_pct"]);
        assert!(disk > 0.0 && disk <= 100.0, "{disk}");
        assert!(number(&figs["box.load1"]) >= 0.0);
        assert!(figs["box.cpu_pct"].default_rule.is_some());

        // The same machine: the same facts as read here.
        let s = snapshot(&updates);
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(s.hostname, hostname.trim());
        let cores = std::fs::read_to_string("/proc/stat")
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
            .count();
        assert_eq!(s.cores, cores);
        assert_eq!(s.mem_total_bytes, local_proc("MemTotal"));
        assert!(s.uptime_secs > 0);
        assert!(!s.disks.is_empty());
    }
    // The fullest disk agrees with the local collector (statvfs of the same mounts).
    let local_updates = local.poll().await;
    let local_disk = number(&by_id(&local_updates)["box.disk_pct"]);
    let remote_disk = number(&by_id(&remote.poll().await)["box.disk_pct"]);
    assert!(
        (local_disk - remote_disk).abs() < 2.0,
        "local {local_disk} remote {remote_disk}"
    );
}

// ------------------------------------------------------------------ SQLite

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_check_tmws_figures_equal_local() {
    let sshd = sshd_or_skip!();
    if std::process::Command::new("sqlite3")
        .arg("-version")
        .output()
        .is_err()
    {
        assert!(
            !sshd::ssh_required(),
            "the remote SQLite test needs the sqlite3 CLI (apt-get install sqlite3)"
        );
        eprintln!("SKIPPED: no sqlite3 CLI here (apt-get install sqlite3)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = tmws_db(dir.path(), "tmws.db");
    let metrics = r#"
[[sqlite.SRC.metric]]
id = "keys.total"
query = "SELECT COUNT(*) FROM license_keys"
warn = "> 3"

[[sqlite.SRC.metric]]
id = "agents.list"
kind = "table"
query = "SELECT agent_id, role FROM agents ORDER BY agent_id"

[[sqlite.SRC.metric]]
id = "broken"
query = "SELECT nope FROM agents"
"#;
    let config = format!(
        r#"[deployment]
name = "remote-check"

[hosts.box]
ssh = {dest:?}
identity_file = {key:?}
known_hosts = {known:?}

[sqlite.near]
path = {db:?}
pack = "tmws"
expected_migration = "{HEAD}"
{near_metrics}
[sqlite.far]
path = {db:?}
pack = "tmws"
host = "box"
expected_migration = "{HEAD}"
{far_metrics}"#,
        dest = sshd.destination(),
        key = sshd.key("id_ed25519").to_string_lossy(),
        known = sshd.known_hosts().to_string_lossy(),
        db = db.to_string_lossy(),
        near_metrics = metrics.replace("SRC", "near"),
        far_metrics = metrics.replace("SRC", "far"),
    );
    let config_path = dir.path().join("watchpost.toml");
    std::fs::write(&config_path, &config).unwrap();
    let before = std::fs::read(&db).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_watchpost"))
        .args(["check", "--format", "json", "--config"])
        .arg(&config_path)
        .env("WATCHPOST_SSH_CONFIG", sshd.ssh_config())
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("WATCHPOST_KNOWN_HOSTS")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.code().is_some_and(|c| c <= 2),
        "exit {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let checks = report["checks"].as_array().unwrap();
    let of = |source: &str| -> BTreeMap<String, serde_json::Value> {
        checks
            .iter()
            .filter_map(|c| {
                let id = c["id"].as_str()?;
                Some((
                    id.strip_prefix(&format!("{source}."))?.to_string(),
                    c.clone(),
                ))
            })
            .collect()
    };
    let (near, far) = (of("near"), of("far"));
    assert!(near.len() >= 20, "{stdout}");
    assert_eq!(
        near.keys().collect::<Vec<_>>(),
        far.keys().collect::<Vec<_>>(),
        "{stdout}"
    );
    for id in [
        "rbac.deny_pct_1h",
        "rbac.checks_1h",
        "license.failure_pct_1h",
        "license.validations_1h",
        "license.generated_1h",
        "license.expiring_7d",
        "license.expired_active",
        "db.migration",
        "db.integrity",
        "agents.admin_pct",
        "audit.volume_24h",
        "keys.total",
        "agents.list",
    ] {
        assert!(near.contains_key(id), "{id} missing: {stdout}");
        assert!(near[id]["error"].is_null(), "{id}: {}", near[id]);
    }
    for (id, n) in &near {
        let f = &far[id];
        if id == JUMP {
            let (a, b) = (n["value"].as_f64().unwrap(), f["value"].as_f64().unwrap());
            assert!((a - b).abs() <= 1e-3 * a.abs().max(1.0), "{id}: {n} vs {f}");
        }
        // Errors name their source; a local SQL error also quotes the query with an offset.
        let error = |c: &serde_json::Value, source: &str| {
            c["error"]
                .as_str()
                .map(|e| e.replace(&format!(" {source}."), " SOURCE."))
        };
        match (error(n, "near"), error(f, "far")) {
            (Some(l), Some(r)) => assert!(l.starts_with(&r), "{id}: {l} / {r}"),
            (l, r) => assert_eq!(l, r, "{id}"),
        }
        for field in ["value", "unit", "severity", "name"] {
            if id == JUMP && field == "value" {
                continue;
            }
            assert_eq!(n[field], f[field], "{id}.{field}: near {n} far {f}");
        }
        if id != "db.integrity" {
            assert_eq!(n["detail"], f["detail"], "{id}: near {n} far {f}");
        }
    }
    // The failing metric fails the same way on both.
    assert!(
        far["broken"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("no such column: nope")),
        "{}",
        far["broken"]
    );
    assert_eq!(far["keys.total"]["severity"], "warn");
    assert_eq!(std::fs::read(&db).unwrap(), before, "the file was changed");
}

/// Polls until the source yields figures (the first poll may meet the connection still
/// being made).
async fn poll_figures(c: &mut dyn Collector) -> Vec<Update> {
    let deadline = Instant::now() + WAIT;
    loop {
        let updates = c.poll().await;
        if !readings(&updates).is_empty() {
            return updates;
        }
        assert!(Instant::now() < deadline, "no figures: {updates:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_sqlite_follows_the_file_like_local() {
    let sshd = sshd_or_skip!();
    if std::process::Command::new("sqlite3")
        .arg("-version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: no sqlite3 CLI here (apt-get install sqlite3)");
        return;
    }
    let pool = sshd.pool("id_ed25519");
    let dir = tempfile::tempdir().unwrap();
    let db = tmws_db(dir.path(), "big.db");
    // In WAL mode (the reader must not need to write anything to read).
    {
        let conn = Connection::open(&db).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }
    // History: 210k rows older than a week (skipped on the server, covered by rowid span),
    // then 30k permission checks of the last hour (more than one fetch).
    {
        let conn = Connection::open(&db).unwrap();
        let tx = conn.unchecked_transaction().unwrap();
        let old = stamp(chrono::Utc::now() - chrono::Duration::days(9), 0);
        let mut stmt = tx
            .prepare("INSERT INTO security_audit_logs (event_type, details, created_at) VALUES ('permission_check', '{\"result\":\"DENY\",\"operation\":\"old\",\"role\":\"x\"}', ?1)")
            .unwrap();
        for _ in 0..210_000 {
            stmt.execute([&old]).unwrap();
        }
        drop(stmt);
        let now = chrono::Utc::now();
        let mut stmt = tx
            .prepare("INSERT INTO security_audit_logs (event_type, details, created_at) VALUES ('permission_check', ?1, ?2)")
            .unwrap();
        for i in 0..30_000i64 {
            let result = if i % 7 == 0 { "DENY" } else { "ALLOW" };
            let details = format!(
                r#"{{"result":"{result}","operation":"op{}","role":"r"}}"#,
                i % 5
            );
            stmt.execute(rusqlite::params![
                details,
                stamp(now - chrono::Duration::seconds(300 + i % 3000), i as usize)
            ])
            .unwrap();
        }
        drop(stmt);
        tx.commit().unwrap();
    }
    let mut local = SqliteCollector::new("near", &sqlite_source(&db, "local"));
    let mut remote = SqliteCollector::on(
        "far",
        &sqlite_source(&db, "test"),
        collect::reach(&pool, "test"),
    );
    let l = poll_figures(&mut local).await;
    let r = poll_figures(&mut remote).await;
    assert_eq!(last_health(&r), Some(SourceHealth::Ok), "{r:?}");
    assert_same_figures(&l, &r);
    let checks = number(&by_id(&r)["far.rbac.checks_1h"]);
    assert!(checks > 30_000.0, "{checks}");
    // Drill-down tables agree too.
    let table = |u: &[Update], id: &str| {
        u.iter()
            .find_map(|x| match x {
                Update::Table { id: t, table } if t == id => Some(table.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no table {id}"))
    };
    assert_eq!(
        table(&l, "near.rbac.top_denied"),
        table(&r, "far.rbac.top_denied")
    );
    assert_eq!(
        table(&l, "near.license.by_tier"),
        table(&r, "far.license.by_tier")
    );

    // New rows: both read only what was added, and agree.
    {
        let conn = Connection::open(&db).unwrap();
        let now = chrono::Utc::now();
        for i in 0..50 {
            conn.execute(
                "INSERT INTO security_audit_logs (event_type, details, created_at) VALUES ('permission_check', '{\"result\":\"DENY\",\"operation\":\"fresh\",\"role\":\"r\"}', ?1)",
                [stamp(now - chrono::Duration::minutes(2), i)],
            )
            .unwrap();
        }
        conn.execute(
            "INSERT INTO license_usage_history (license_key_id, agent_id, valid, validated_at) VALUES (NULL, 'a', 0, ?1)",
            [stamp(now - chrono::Duration::minutes(1), 0)],
        )
        .unwrap();
    }
    let l = poll_figures(&mut local).await;
    let r = poll_figures(&mut remote).await;
    assert_same_figures(&l, &r);
    assert_eq!(number(&by_id(&r)["far.rbac.checks_1h"]), checks + 50.0);

    // Old rows deleted by a retention job, and a VACUUM: both recount, and still agree.
    {
        let conn = Connection::open(&db).unwrap();
        conn.execute("DELETE FROM security_audit_logs WHERE rowid <= 1000", [])
            .unwrap();
        conn.execute_batch("VACUUM").unwrap();
    }
    let l = poll_figures(&mut local).await;
    let r = poll_figures(&mut remote).await;
    for (key, lr) in figures(&l, "near") {
        let rr = &figures(&r, "far")[&key];
        assert!(close(&lr.value, &rr.value), "{key} after VACUUM");
        if key != JUMP {
            assert_eq!(lr.value, rr.value, "{key} after VACUUM");
        }
    }

    // A missing table fails the same figures with the same words.
    {
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch("PRAGMA foreign_keys = OFF; DROP TABLE license_keys")
            .unwrap();
    }
    let l = poll_figures(&mut local).await;
    let r = poll_figures(&mut remote).await;
    let lf = figures(&l, "near");
    let rf = figures(&r, "far");
    assert_eq!(
        lf["license.generated_1h"].error.as_deref(),
        Some("no such table: license_keys")
    );
    for (key, lr) in &lf {
        assert_eq!(lr.error, rf[key].error, "{key}");
    }
    assert_eq!(error_of(&l), error_of(&r));

    // A file that is not a database (its WAL gone with the old file), then none at all.
    for side in watchpost::model::sqlite_sidecars(&db) {
        let _ = std::fs::remove_file(side);
    }
    std::fs::write(&db, "not a database, just text\n".repeat(200)).unwrap();
    let r = remote.poll().await;
    let message = error_of(&r).unwrap_or_default();
    assert!(message.contains("file is not a database"), "{message}");
    std::fs::remove_file(&db).unwrap();
    let r = remote.poll().await;
    let message = error_of(&r).unwrap_or_default();
    assert!(message.contains("no such file"), "{message}");
    assert!(message.contains("on test"), "{message}");
}

// ------------------------------------------------------------------ services

/// A loopback health endpoint answering `code` with a JSON status.
struct HealthServer {
    port: u16,
    code: Arc<AtomicU16>,
    task: tokio::task::JoinHandle<()>,
}

impl HealthServer {
    async fn start() -> HealthServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let code = Arc::new(AtomicU16::new(200));
        let c = code.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let c = c.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |_req: Request<hyper::body::Incoming>| {
                        let c = c.clone();
                        async move {
                            let code = StatusCode::from_u16(c.load(Ordering::SeqCst)).unwrap();
                            let body = if code.is_success() {
                                r#"{"status": "healthy"}"#
                            } else {
                                r#"{"status": "unhealthy"}"#
                            };
                            Ok::<_, Infallible>(
                                Response::builder()
                                    .status(code)
                                    .header("content-type", "application/json")
                                    .body(Full::new(Bytes::from(body)))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        HealthServer { port, code, task }
    }

    /// `localhost`, as the runbooks write it on the server.
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/health", self.port)
    }
}

impl Drop for HealthServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn service(url: Option<String>, unit: Option<&str>, host: &str) -> ServiceSource {
    ServiceSource {
        health_url: url,
        systemd: unit.map(String::from),
        host: host.into(),
        interval: Duration::from_secs(2),
        timeout: Duration::from_secs(2),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_service_health_is_checked_from_the_server() {
    let sshd = sshd_or_skip!();
    let pool = sshd.pool("id_ed25519");
    let server = HealthServer::start().await;
    let mut remote = ServiceCollector::on(
        "api",
        &service(Some(server.url()), None, "test"),
        collect::reach(&pool, "test"),
    );
    let updates = poll_figures(&mut remote).await;
    assert_eq!(last_health(&updates), Some(SourceHealth::Ok), "{updates:?}");
    let figs = by_id(&updates);
    assert_eq!(number(&figs["api.up"]), 1.0);
    assert_eq!(number(&figs["api.health_code"]), 200.0);
    let ms = number(&figs["api.health_ms"]);
    assert!(ms > 0.0 && ms < 2000.0, "{ms}");
    assert!(
        figs["api.up"].detail.contains("HTTP 200 OK")
            && figs["api.up"].detail.contains("status \"healthy\""),
        "{}",
        figs["api.up"].detail
    );
    // The same ids as the local check of the same URL.
    let local = ServiceCollector::new("api", &service(Some(server.url()), None, "local"))
        .poll()
        .await;
    let mut local_ids: Vec<String> = by_id(&local).into_keys().collect();
    let mut remote_ids: Vec<String> = figs.keys().cloned().collect();
    local_ids.sort();
    remote_ids.sort();
    assert_eq!(local_ids, remote_ids);

    // Down: a 503 with an unhealthy body.
    server.code.store(503, Ordering::SeqCst);
    let figs = by_id(&remote.poll().await);
    assert_eq!(number(&figs["api.up"]), 0.0);
    assert_eq!(number(&figs["api.health_code"]), 503.0);
    assert!(figs["api.up"].detail.contains("status \"unhealthy\""));

    // Refused: down, and said so.
    let port = server.port;
    drop(server);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut refused = ServiceCollector::on(
        "api",
        &service(
            Some(format!("http://127.0.0.1:{port}/health")),
            None,
            "test",
        ),
        collect::reach(&pool, "test"),
    );
    let updates = refused.poll().await;
    let figs = by_id(&updates);
    assert_eq!(number(&figs["api.up"]), 0.0);
    assert!(
        figs["api.up"].detail.contains("connection refused"),
        "{}",
        figs["api.up"].detail
    );
    assert!(figs["api.health_ms"].error.is_some());
}

/// The health script where the server has wget but no curl, and where it has neither
/// (run here with a PATH that holds only what the script may use).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_script_falls_back_to_wget_and_says_when_neither_is_there() {
    use watchpost::collect::http::{REMOTE_HTTP_SCRIPT, parse_remote_http};
    let Ok(wget) = which("wget") else {
        assert!(
            !sshd::ssh_required(),
            "the wget fallback test needs wget (apt-get install wget)"
        );
        eprintln!("SKIPPED: no wget here");
        return;
    };
    let server = HealthServer::start().await;
    let bin = tempfile::tempdir().unwrap();
    let run = |path: PathBuf| {
        let url = server.url();
        async move {
            tokio::process::Command::new("/bin/sh")
                .args(["-c", REMOTE_HTTP_SCRIPT, "sh", &url, "2.000"])
                .env_clear()
                .env("PATH", path)
                .output()
                .await
                .unwrap()
        }
    };
    // Neither: exit 127 and a message.
    let out = run(bin.path().to_path_buf()).await;
    assert_eq!(out.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&out.stderr).contains("neither curl nor wget"));
    // wget only (and the tools the script uses around it).
    std::os::unix::fs::symlink(&wget, bin.path().join("wget")).unwrap();
    for tool in ["date", "tail", "grep"] {
        std::os::unix::fs::symlink(which(tool).unwrap(), bin.path().join(tool)).unwrap();
    }
    let out = run(bin.path().to_path_buf()).await;
    assert!(out.status.success(), "{out:?}");
    let outcome = parse_remote_http(
        &out.stdout,
        &String::from_utf8_lossy(&out.stderr),
        Duration::from_secs(2),
        1000.0,
    )
    .unwrap();
    assert!(outcome.up, "{outcome:?}");
    assert_eq!(outcome.code, Some(200));
    let ms = outcome.latency_ms.unwrap();
    assert!(ms > 0.0 && ms < 1000.0, "{ms}");
    server.code.store(503, Ordering::SeqCst);
    let out = run(bin.path().to_path_buf()).await;
    let outcome = parse_remote_http(&out.stdout, "", Duration::from_secs(2), 1000.0).unwrap();
    assert!(!outcome.up);
    assert_eq!(outcome.code, Some(503));
}

fn which(tool: &str) -> Result<PathBuf, String> {
    let out = std::process::Command::new("sh")
        .args(["-c", "command -v \"$1\"", "sh", tool])
        .output()
        .map_err(|e| e.to_string())?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() && path.starts_with('/') {
        Ok(PathBuf::from(path))
    } else {
        Err(format!("{tool} not found"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_in_remote_commands_are_quoted_and_nothing_runs() {
    let sshd = sshd_or_skip!();
    let pool = sshd.pool("id_ed25519");
    let unit_marker = marker("unit");
    let path_marker = marker("path");
    let unit = format!("x; touch {}", unit_marker.display());
    let mut svc = ServiceCollector::on(
        "svc",
        &service(None, Some(&unit), "test"),
        collect::reach(&pool, "test"),
    );
    let updates = svc.poll().await;
    assert!(!readings(&updates).is_empty(), "{updates:?}");
    let path = format!("/tmp/wp-$(touch {}).db", path_marker.display());
    let mut db = SqliteCollector::on(
        "db",
        &sqlite_source(Path::new(&path), "test"),
        collect::reach(&pool, "test"),
    );
    let updates = db.poll().await;
    let message = error_of(&updates).unwrap_or_default();
    assert!(message.contains("no such file"), "{message}");
    // The path went through whole.
    assert!(message.contains("$(touch"), "{message}");
    // Log sources: a glob and a path to follow, a journald unit (`$$` is a `$` in the
    // config).
    let glob_marker = marker("glob");
    let follow_marker = marker("follow");
    let journal_marker = marker("journal");
    let config = Config::parse(&format!(
        r#"
[hosts.test]
ssh = "user@127.0.0.1"

[logs.glob]
files = ["/tmp/wp-$$(touch {glob})*.log", "/tmp/wp-`touch {follow}`.log"]
host = "test"

[logs.journal]
journald = "x; touch {journal}"
host = "test"
"#,
        glob = glob_marker.display(),
        follow = follow_marker.display(),
        journal = journal_marker.display(),
    ))
    .unwrap();
    let mut glob = LogCollector::on("glob", &config.logs["glob"], collect::reach(&pool, "test"));
    let updates = glob.poll().await;
    let message = error_of(&updates).unwrap_or_default();
    assert!(
        message.contains("no file matches /tmp/wp-$(touch"),
        "{message}"
    );
    let mut journal = LogCollector::on(
        "journal",
        &config.logs["journal"],
        collect::reach(&pool, "test"),
    );
    journal.poll().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for m in [
        &unit_marker,
        &path_marker,
        &glob_marker,
        &follow_marker,
        &journal_marker,
    ] {
        assert!(!m.exists(), "{} was created: a value was run", m.display());
    }
}

// ------------------------------------------------------------------ log sources

/// What a log line says, without its time: (message, level, fields, is_error).
type LineSaid = (String, String, Vec<(String, String)>, bool);

/// A log source's lines and figures, gathered over polls.
#[derive(Default)]
struct LogsSeen {
    /// Every line, in arrival order.
    lines: Vec<LineSaid>,
    figures: HashMap<String, Reading>,
    health: Option<SourceHealth>,
}

impl LogsSeen {
    fn take(&mut self, updates: Vec<Update>) {
        for update in updates {
            match update {
                Update::Logs(lines) => self.lines.extend(lines.into_iter().map(|l| {
                    let fields = l
                        .fields
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect();
                    (l.message, format!("{:?}", l.level), fields, l.is_error)
                })),
                Update::Readings { readings, .. } => {
                    for r in readings {
                        self.figures.insert(r.id.clone(), r);
                    }
                }
                Update::Health { health, .. } => self.health = Some(health),
                _ => {}
            }
        }
    }

    fn messages(&self) -> Vec<String> {
        self.lines.iter().map(|l| l.0.clone()).collect()
    }

    fn number(&self, id: &str) -> f64 {
        number(self.figures.get(id).unwrap_or_else(|| panic!("no {id}")))
    }
}

/// Polls `c` (every 200 ms) until `done` holds, or fails after `limit`.
async fn poll_logs(
    c: &mut dyn Collector,
    seen: &mut LogsSeen,
    limit: Duration,
    done: impl Fn(&LogsSeen) -> bool,
) {
    let deadline = Instant::now() + limit;
    loop {
        seen.take(c.poll().await);
        if done(seen) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not there after {limit:?}: lines {:?}, health {:?}",
            seen.messages(),
            seen.health
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn append_text(path: &Path, text: &str) {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

/// JSON lines with their own time, so local and remote parse them alike.
fn json_lines(tag: &str, count: usize) -> String {
    let at = chrono::Utc::now().to_rfc3339();
    (0..count)
        .map(|n| {
            let level = if n % 3 == 0 { "ERROR" } else { "INFO" };
            format!(
                "{{\"timestamp\":\"{at}\",\"level\":\"{level}\",\"message\":\"{tag} {n}\",\"latency_ms\":{}}}\n",
                10 * (n + 1)
            )
        })
        .collect()
}

fn log_config(files: &str, host_line: &str) -> Config {
    Config::parse(&format!(
        r#"
[hosts.test]
ssh = "user@127.0.0.1"

[logs.app]
files = [{files:?}]
{host_line}

[[logs.app.metric]]
id = "latency_p95"
kind = "p95"
field = "latency_ms"

[[logs.app.metric]]
id = "new_lines"
kind = "count"
match = "^new "
window = "1h"
"#
    ))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_file_logs_equal_local_ones_across_rotation_and_new_files() {
    let sshd = sshd_or_skip!();
    let pool = sshd.pool("id_ed25519");
    let dir = tempfile::tempdir().unwrap();
    let glob = dir.path().join("app-*.log").to_string_lossy().into_owned();
    let first = dir.path().join("app-1.log");
    std::fs::write(&first, json_lines("backlog", 3)).unwrap();
    let remote_config = log_config(&glob, "host = \"test\"");
    let local_config = log_config(&glob, "");
    let mut remote = LogCollector::on(
        "app",
        &remote_config.logs["app"],
        collect::reach(&pool, "test"),
    );
    let mut local = LogCollector::new("app", &local_config.logs["app"]);
    let (mut r, mut l) = (LogsSeen::default(), LogsSeen::default());
    // The first poll has the file's last lines (what a one-shot `check` counts).
    r.take(remote.poll().await);
    assert_eq!(r.messages(), ["backlog 0", "backlog 1", "backlog 2"]);
    poll_logs(&mut local, &mut l, WAIT, |s| s.lines.len() >= 3).await;

    // New lines, a rotation by rename (out of the glob) with a late line in the old file,
    // and a second file that matches the glob later (read from its start).
    append_text(&first, &json_lines("new", 4));
    let rotated = dir.path().join("app-1.log.old");
    std::fs::rename(&first, &rotated).unwrap();
    append_text(&rotated, &json_lines("late", 1));
    std::fs::write(&first, json_lines("after", 2)).unwrap();
    std::fs::write(dir.path().join("app-2.log"), json_lines("second", 2)).unwrap();
    let total = 3 + 4 + 1 + 2 + 2;
    let limit = WAIT + collect::logs::EXPAND_EVERY;
    poll_logs(&mut remote, &mut r, limit, |s| s.lines.len() >= total).await;
    poll_logs(&mut local, &mut l, limit, |s| s.lines.len() >= total).await;
    // Nothing more, nothing twice.
    tokio::time::sleep(Duration::from_secs(3)).await;
    r.take(remote.poll().await);
    l.take(local.poll().await);
    let sorted = |s: &LogsSeen| {
        let mut lines = s.lines.clone();
        lines.sort_by(|a, b| a.0.cmp(&b.0));
        lines
    };
    assert_eq!(sorted(&r), sorted(&l), "the same lines, parsed alike");
    assert_eq!(r.lines.len(), total, "{:?}", r.messages());
    // Within one file, in order.
    let order = |s: &LogsSeen, tag: &str| -> Vec<String> {
        s.messages()
            .into_iter()
            .filter(|m| m.starts_with(tag))
            .collect()
    };
    assert_eq!(order(&r, "new"), ["new 0", "new 1", "new 2", "new 3"]);
    for id in ["app.errors_1h", "app.latency_p95", "app.new_lines"] {
        assert_eq!(r.number(id), l.number(id), "{id}");
    }
    // backlog 0, new 0, new 3, late 0, after 0, second 0.
    assert_eq!(r.number("app.errors_1h"), 6.0);
    assert_eq!(r.number("app.new_lines"), 4.0);
    assert_eq!(r.health, Some(SourceHealth::Ok));
}

/// The issue's case on an SSH host: 200,000 JSONL lines of the last 50 minutes, 20,000
/// ERROR and about 25,000 WARNING lines that say "failed". `check` (the binary) and the
/// dashboard's collector count the ERROR lines exactly: the lines before the shown tail
/// are read back through the connection, and with a record they are counted for it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_window_written_before_the_start_is_counted_whole() {
    use watchpost::collect::logs::RecordFrom;
    let sshd = sshd_or_skip!();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.jsonl");
    let now = chrono::Utc::now();
    let written =
        crate::logs_readback::write_jsonl(&log, 200_000, chrono::Duration::minutes(50), now);
    assert_eq!(written.errors, 20_000);

    // check, from a config file, signing in with a key and the server's known_hosts.
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let toml = format!(
        "[deployment]\nname = \"remote-readback\"\n\n[hosts.test]\nssh = \"{dest}\"\nidentity_file = {key:?}\nknown_hosts = {known:?}\n\n[logs.app]\nhost = \"test\"\nfiles = [{log:?}]\n",
        dest = sshd.destination(),
        key = sshd.key("id_ed25519").display().to_string(),
        known = sshd.known_hosts().display().to_string(),
        log = log.display().to_string(),
    );
    let config_path = dir.path().join("watchpost.toml");
    std::fs::write(&config_path, &toml).unwrap();
    let started = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_watchpost"))
        .args([
            "check",
            "--config",
            config_path.to_str().unwrap(),
            "--format",
            "json",
        ])
        .env("HOME", &home)
        .env_remove("SSH_AUTH_SOCK")
        .output()
        .unwrap();
    eprintln!(
        "check over ssh, 200,000 lines ({} MB): {:?}",
        std::fs::metadata(&log).unwrap().len() / 1_000_000,
        started.elapsed()
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "app.errors_1h")
        .unwrap_or_else(|| panic!("no app.errors_1h in {report:#}"));
    assert_eq!(check["value"].as_f64(), Some(20_000.0), "{check:#}");
    assert_eq!(check["error"], serde_json::Value::Null, "{check:#}");
    assert_eq!(check["detail"], "", "{check:#}");

    // The dashboard: the tail at once, "reading back", then the exact count; and for a
    // record that has counted nothing yet, every line of its window once.
    let pool = sshd.pool("id_ed25519");
    let config = log_config(&log.display().to_string(), "host = \"test\"");
    // On a minute's start, so the lines written in the window are counted by the minute.
    let window_start =
        chrono::DateTime::from_timestamp((now.timestamp() - 20 * 60).div_euclid(60) * 60, 0)
            .unwrap();
    let mut remote = LogCollector::on("app", &config.logs["app"], collect::reach(&pool, "test"))
        .with_record(Some(RecordFrom {
            counted_until: None,
            window_start,
        }));
    let first = remote.poll().await;
    let shown = first
        .iter()
        .filter_map(|u| match u {
            Update::Logs(lines) => Some(lines.len()),
            _ => None,
        })
        .sum::<usize>();
    assert_eq!(shown, 200, "the newest lines at once");
    assert_eq!(
        by_id(&first)["app.errors_1h"].value,
        Value::Text("reading back".into())
    );
    let (mut recorded_errors, mut updates) = (0u64, first);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        for update in &updates {
            match update {
                Update::LogCounts { counts, .. } => {
                    recorded_errors += counts.iter().map(|c| u64::from(c.errors)).sum::<u64>()
                }
                Update::Logs(lines) => {
                    recorded_errors +=
                        lines.iter().filter(|l| l.is_error && !l.tallied).count() as u64
                }
                _ => {}
            }
        }
        if let Some(Value::Number(n)) = by_id(&updates)
            .get("app.errors_1h")
            .map(|r| r.value.clone())
        {
            assert_eq!(n, 20_000.0);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still reading back: {:?}",
            by_id(&updates).get("app.errors_1h")
        );
        tokio::time::sleep(remote.interval()).await;
        updates = remote.poll().await;
    }
    // The record's tally comes when the read-back is over (here with the figures: the
    // record's window is inside the hour).
    let in_window = written
        .per_minute
        .iter()
        .filter(|(m, _)| **m * 60 >= window_start.timestamp())
        .map(|(_, n)| n)
        .sum::<u64>();
    assert_eq!(
        recorded_errors, in_window,
        "the record's count of the window"
    );
    assert!(recorded_errors > 7_000, "{recorded_errors}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_command_and_journald_sources_run_on_the_host() {
    let sshd = sshd_or_skip!();
    let pool = sshd.pool("id_ed25519");
    let dir = tempfile::tempdir().unwrap();
    // The command runs on the host: its working file is the host's (made before it prints,
    // so it exists once the lines are seen).
    let out = dir.path().join("from-the-host");
    let config = Config::parse(&format!(
        r#"
[logs.cmd]
command = ["sh", "-c", "touch \"$$1\"; echo \"ERROR one ($$(pwd))\"; echo fine; exec sleep 600", "sh", {out:?}]
host = "test"

[hosts.test]
ssh = "user@127.0.0.1"

[logs.journal]
journald = "watchpost-test.service"
host = "test"
"#,
        out = out.to_string_lossy()
    ))
    .unwrap();
    let mut cmd = LogCollector::on("cmd", &config.logs["cmd"], collect::reach(&pool, "test"));
    let mut seen = LogsSeen::default();
    poll_logs(&mut cmd, &mut seen, WAIT, |s| s.lines.len() >= 2).await;
    // "ERROR" is the level; the message names the remote shell's working directory.
    assert!(
        seen.lines[0].0.starts_with("one ("),
        "{:?}",
        seen.messages()
    );
    assert_eq!(seen.lines[0].1, "Error");
    assert!(seen.lines[0].3, "an error line");
    assert_eq!(seen.messages()[1], "fine");
    assert_eq!(seen.number("cmd.errors_1h"), 1.0);
    assert_eq!(seen.health, Some(SourceHealth::Ok));
    assert!(out.exists());

    // journald on the host: followed when it has a journal; this test machine may have
    // none, which the host's own journalctl says (through the same connection).
    let mut journal = LogCollector::on(
        "journal",
        &config.logs["journal"],
        collect::reach(&pool, "test"),
    );
    let updates = journal.poll().await;
    let has_journal = Path::new("/run/systemd/system").exists();
    if !has_journal {
        let message = error_of(&updates).unwrap_or_default();
        assert!(
            message.contains("this host has no journal")
                || message.contains("journalctl not found"),
            "{message}"
        );
        assert!(by_id(&updates)["journal.errors_1h"].error.is_some());
    } else {
        assert_eq!(last_health(&updates), Some(SourceHealth::Ok), "{updates:?}");
    }
}

// ------------------------------------------------------------------ one connection, faults

/// Runs the collectors of a config and keeps what each source said last, and the state
/// the panes draw from.
struct Running {
    rx: tokio::sync::mpsc::Receiver<Update>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// Per source: when it last had figures, and its last health.
    last_figures: HashMap<String, Instant>,
    health: HashMap<String, SourceHealth>,
    state: AppState,
}

impl Running {
    fn start(collectors: Vec<Box<dyn Collector>>) -> Running {
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let window = Window::new("test", chrono::Utc::now(), chrono::Duration::hours(24));
        let state = watchpost::app::initial_state(window, &collectors, &Config::default());
        let tasks = collectors
            .into_iter()
            .map(|c| collect::spawn(c, tx.clone()))
            .collect();
        Running {
            rx,
            tasks,
            last_figures: HashMap::new(),
            health: HashMap::new(),
            state,
        }
    }

    /// The Errors pane as drawn now, one text line per row.
    fn errors_pane(&self, width: u16, height: u16) -> String {
        let theme = Theme::built_in("default").unwrap();
        let ui = UiState::default();
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal
            .draw(|frame| {
                let ctx = PaneContext {
                    state: &self.state,
                    ui: &ui,
                    theme: &theme,
                    focused: false,
                    zoomed: false,
                    now: chrono::Utc::now(),
                };
                panes::errors::render(frame, frame.area(), &ctx);
            })
            .unwrap();
        let buffer = terminal.backend().buffer();
        (0..height)
            .map(|y| {
                let row: String = (0..width).map(|x| buffer[(x, y)].symbol()).collect();
                row.trim_end().to_string()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// How many times each message is in the log buffer the Errors pane shows.
    fn shown(&self, source: &str) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for line in self.state.logs.iter().filter(|l| &*l.source == source) {
            *counts.entry(line.message.clone()).or_insert(0) += 1;
        }
        counts
    }

    /// Takes updates until `done` holds or `limit` passes; returns whether it held.
    async fn until(&mut self, limit: Duration, done: impl Fn(&Running) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if done(self) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.rx.recv()).await {
                Ok(Some(update)) => match self.applied(update) {
                    // A container listing is figures too (an empty engine has no readings).
                    Update::Containers { source, .. } => {
                        self.last_figures.insert(source.clone(), Instant::now());
                        self.health.insert(source, SourceHealth::Ok);
                    }
                    Update::Readings { source, readings } if !readings.is_empty() => {
                        self.last_figures.insert(source.clone(), Instant::now());
                        self.health.insert(source, SourceHealth::Ok);
                    }
                    Update::Health { source, health } => {
                        self.health.insert(source, health);
                    }
                    _ => {}
                },
                _ => return done(self),
            }
        }
    }
}

impl Running {
    /// Applies an update to the state, as the app does, and hands it back.
    fn applied(&mut self, update: Update) -> Update {
        self.state.apply(update.clone(), chrono::Utc::now());
        update
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_carries_every_source_and_faults_are_shown_then_healed() {
    let mut sshd = sshd_or_skip!();
    let have_sqlite3 = std::process::Command::new("sqlite3")
        .arg("-version")
        .output()
        .is_ok();
    let dir = tempfile::tempdir().unwrap();
    let db = tmws_db(dir.path(), "tmws.db");
    let server = HealthServer::start().await;
    let mut text = format!(
        r#"[system.box]
host = "test"
interval = "1s"

[service.api]
health_url = "{url}"
host = "test"
interval = "1s"
timeout = "2s"
"#,
        url = server.url()
    );
    if have_sqlite3 {
        text.push_str(&format!(
            "\n[sqlite.tmws]\npath = {:?}\npack = \"tmws\"\nhost = \"test\"\ninterval = \"1s\"\n",
            db.to_string_lossy()
        ));
    }
    // A remote `tail -F` and a remote command: two long-lived streams on the connection.
    let log = dir.path().join("app.log");
    std::fs::write(&log, "").unwrap();
    text.push_str(&format!(
        "\n[logs.app]\nfiles = [{:?}]\nhost = \"test\"\n\n[logs.ticks]\ncommand = [\"sh\", \"-c\", \"echo started; exec sleep 3600\"]\nhost = \"test\"\n",
        log.to_string_lossy()
    ));
    // The host name in the config is a [hosts] entry; the test's pool knows it as "test".
    text.push_str("\n[hosts.test]\nssh = \"user@127.0.0.1\"\n");
    let config = Config::parse(&text).unwrap();
    let pool = sshd.quick_pool();
    let collectors = collect::from_config(&config, &pool, None);
    let sources: Vec<String> = collectors.iter().map(|c| c.name().to_string()).collect();
    assert_eq!(sources.len(), if have_sqlite3 { 5 } else { 4 });
    let mut run = Running::start(collectors);
    let all_have_figures = |r: &Running| sources.iter().all(|s| r.last_figures.contains_key(s));
    assert!(
        run.until(WAIT, all_have_figures).await,
        "figures: {:?}, health: {:?}",
        run.last_figures,
        run.health
    );
    // Lines of the followed file reach the Errors pane's buffer.
    for i in 1..=5 {
        append_text(&log, &format!("ERROR fault line {i}\n"));
    }
    let all_lines = |n: usize| {
        move |r: &Running| (1..=n).all(|i| r.shown("app").contains_key(&format!("fault line {i}")))
    };
    assert!(
        run.until(WAIT, all_lines(5)).await,
        "{:?}",
        run.shown("app")
    );
    // Several polls of every source, over one TCP connection, with both log streams
    // running.
    run.until(Duration::from_secs(3), |_| false).await;
    assert!(
        run.shown("ticks").contains_key("started"),
        "{:?}",
        run.shown("ticks")
    );
    assert_eq!(sshd.established_from_here(), 1, "connections from here");
    assert_eq!(sshd.established(), 1, "connections to the server");
    assert_eq!(pool.hosts().len(), 1);

    // Kill the server mid-stream: every source says so within seconds, with the host's
    // line.
    sshd.crash();
    let killed = Instant::now();
    let all_down = |r: &Running| {
        sources.iter().all(|s| {
            matches!(r.health.get(s), Some(SourceHealth::Error { message, .. })
                if message.starts_with("ssh test: ") && message.contains("retrying in"))
        })
    };
    assert!(
        run.until(Duration::from_secs(8), all_down).await,
        "after {:?}: {:?}",
        killed.elapsed(),
        run.health
    );
    eprintln!(
        "every source down after {:?}: {:?}",
        killed.elapsed(),
        run.health
    );
    // Lines written while it is down.
    for i in 6..=10 {
        append_text(&log, &format!("ERROR fault line {i}\n"));
    }
    // The Errors pane says it, with the age of the log sources' figures.
    run.until(Duration::from_secs(2), |_| false).await;
    let pane = run.errors_pane(200, 12);
    let title = pane.lines().next().unwrap_or_default();
    let said =
        regex::Regex::new(r"app ssh test: [^,]+, retrying in \d+s \(figures (\d+)s old\)").unwrap();
    let age: u64 = match said.captures(title) {
        Some(found) => found[1].parse().unwrap(),
        None => panic!("{pane}"),
    };
    assert!(age >= 1, "the figures kept their age: {pane}");
    assert!(pane.contains("fault line 5"), "{pane}");
    eprintln!("the Errors pane while down:\n{pane}");
    let before_restart = Instant::now();

    // Start it again: figures resume within 10 s.
    sshd.start_again().unwrap();
    let restarted = Instant::now();
    let all_fresh = |r: &Running| {
        sources.iter().all(|s| {
            r.last_figures.get(s).is_some_and(|at| *at > before_restart)
                && r.health.get(s) == Some(&SourceHealth::Ok)
        })
    };
    assert!(
        run.until(Duration::from_secs(10), all_fresh).await,
        "not resumed 10 s after the restart: {:?}\n{}",
        run.health,
        sshd.log()
    );
    // And the stream: the lines written while it was down, each exactly once.
    let left = Duration::from_secs(10).saturating_sub(restarted.elapsed());
    assert!(
        run.until(left, all_lines(10)).await,
        "the stream did not resume within 10 s: {:?}",
        run.shown("app")
    );
    eprintln!("resumed {:?} after the restart", restarted.elapsed());
    append_text(&log, "ERROR fault line 11\n");
    assert!(run.until(WAIT, all_lines(11)).await);
    run.until(Duration::from_secs(3), |_| false).await;
    let expected: BTreeMap<String, usize> =
        (1..=11).map(|i| (format!("fault line {i}"), 1)).collect();
    assert_eq!(run.shown("app"), expected, "every line shown once");
    assert!(!run.errors_pane(200, 12).contains("ssh test:"));
    assert_eq!(sshd.established_from_here(), 1);
    assert_eq!(sshd.established(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_host_never_delays_other_sources() {
    // A port nothing listens on: the remote source reports at once, the local one works.
    let closed = ClosedPort::new();
    let port = closed.port;
    let config = Config::parse(&format!(
        "[hosts.gone]\nssh = \"nobody@127.0.0.1:{port}\"\n\n[system.far]\nhost = \"gone\"\ninterval = \"1s\"\n\n[system.near]\ninterval = \"1s\"\n"
    ))
    .unwrap();
    let pool = HostPool::new(
        BTreeMap::from([(
            "gone".to_string(),
            watchpost::transport::HostEntry::new(format!("nobody@127.0.0.1:{port}")),
        )]),
        PoolOptions {
            agent: watchpost::transport::AgentSource::Off,
            default_identities: false,
            ..PoolOptions::default()
        },
    );
    let started = Instant::now();
    let collectors = collect::from_config(&config, &pool, None);
    assert!(started.elapsed() < Duration::from_millis(200));
    let mut run = Running::start(collectors);
    assert!(
        run.until(Duration::from_secs(3), |r| r
            .last_figures
            .contains_key("near"))
            .await
    );
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        run.until(Duration::from_secs(5), |r| matches!(
            r.health.get("far"),
            Some(SourceHealth::Error { message, .. })
                if message.starts_with("ssh gone: connection refused, retrying in")
        ))
        .await,
        "{:?}",
        run.health
    );
}

// ------------------------------------------------------------------ Docker

fn docker_problem() -> Option<String> {
    match std::process::Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
    {
        Err(e) => Some(format!("the docker CLI cannot run: {e}")),
        Ok(out) if !out.status.success() => Some(format!(
            "the Docker engine does not answer: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(_) if !Path::new("/var/run/docker.sock").exists() => {
            Some("the engine is not at /var/run/docker.sock".into())
        }
        Ok(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_docker_engine_through_the_forwarded_socket() {
    if let Some(problem) = docker_problem() {
        if std::env::var("WATCHPOST_REQUIRE_DOCKER").is_ok_and(|v| v == "1") {
            panic!("WATCHPOST_REQUIRE_DOCKER=1 but {problem}");
        }
        eprintln!("SKIPPED (no usable Docker here): {problem}");
        return;
    }
    let mut sshd = sshd_or_skip!();
    let pool = sshd.quick_pool();
    let source = |host: &str| DockerSource {
        host: host.into(),
        project: None,
        services: Vec::new(),
        interval: Duration::from_secs(1),
        exec: Vec::new(),
    };
    let containers = |updates: &[Update]| -> Option<Vec<String>> {
        updates.iter().find_map(|u| match u {
            Update::Containers { rows, .. } => {
                let mut ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
                ids.sort();
                Some(ids)
            }
            _ => None,
        })
    };
    let mut local = DockerCollector::new("dk", &source("local"));
    let local_ids = containers(&local.poll().await).expect("the local engine answers");
    let remote = DockerCollector::on("dk", &source("test"), collect::reach(&pool, "test"));
    let mut run = Running::start(vec![Box::new(remote)]);
    assert!(
        run.until(WAIT, |r| r.last_figures.contains_key("dk")
            || r.health.get("dk") == Some(&SourceHealth::Ok))
            .await
            || local_ids.is_empty(),
        "{:?}",
        run.health
    );
    // Same engine, same containers: compare with a direct poll through the pool (again,
    // while containers other tests left behind are still going away).
    let mut direct = DockerCollector::on("dk", &source("test"), collect::reach(&pool, "test"));
    let deadline = Instant::now() + WAIT;
    loop {
        let remote_ids = containers(&direct.poll().await).expect("the remote engine answers");
        let local_ids = containers(&local.poll().await).expect("the local engine answers");
        if remote_ids == local_ids {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "remote {remote_ids:?} local {local_ids:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(sshd.established_from_here(), 1);

    // The host goes away: the pane says so; it comes back: the engine answers again.
    sshd.crash();
    assert!(
        run.until(Duration::from_secs(8), |r| matches!(
            r.health.get("dk"),
            Some(SourceHealth::Error { message, .. }) if message.starts_with("ssh test: ")
        ))
        .await,
        "{:?}",
        run.health
    );
    let before_restart = Instant::now();
    sshd.start_again().unwrap();
    let back = |r: &Running| {
        r.health.get("dk") == Some(&SourceHealth::Ok)
            && (local_ids.is_empty()
                || r.last_figures
                    .get("dk")
                    .is_some_and(|at| *at > before_restart))
    };
    // An empty engine has no figures: its health says it is back.
    assert!(
        run.until(Duration::from_secs(10), back).await,
        "{:?}",
        run.health
    );
}

// ------------------------------------------------------------------ the seed 003 example

#[test]
fn the_warungin_example_validates_and_keeps_the_runbooks_literals_out() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/warungin.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    for literal in ["192.168.1.101", "faiz", "-p 123", "/home/faiz"] {
        assert!(!text.contains(literal), "the example holds {literal:?}");
    }
    let validate = |env: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_watchpost"));
        cmd.args(["validate", "--config"]).arg(&path);
        for var in [
            "WARUNGIN_HOST",
            "WARUNGIN_SSH",
            "WARUNGIN_PROJECT",
            "WARUNGIN_URL",
            "WARUNGIN_VERSION",
            "WARUNGIN_DEPLOYED_AT",
            "WARUNGIN_LOG_UNIT",
            "WARUNGIN_REDIS_URL",
            "WARUNGIN_DATABASE_URL",
        ] {
            cmd.env_remove(var);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.ends_with("config OK\n"), "{stdout}");
        stdout
    };
    let local = validate(&[]);
    assert!(
        local.contains("docker warungin: engine on local, compose project warungin"),
        "{local}"
    );
    let remote = validate(&[
        ("WARUNGIN_HOST", "warungin"),
        ("WARUNGIN_SSH", "deploy@pos.example.invalid:2222"),
        ("WARUNGIN_PROJECT", "pos"),
    ]);
    assert!(
        remote.contains("host warungin: ssh deploy@pos.example.invalid:2222"),
        "{remote}"
    );
    assert!(remote.contains("compose project pos"), "{remote}");
    assert!(
        remote.contains("system server: CPU, memory, disk, load of warungin"),
        "{remote}"
    );
    assert!(
        remote.contains("logs journal: journald unit docker.service on warungin"),
        "{remote}"
    );
    assert!(
        remote.contains(
            "logs backend-logs: docker logs of backend in compose project pos (the window's lines at start, its last 100000 at most, then followed) on warungin"
        ),
        "{remote}"
    );
    assert!(
        local.contains("logs frontend-logs: docker logs of frontend in compose project warungin"),
        "{local}"
    );
    // The databases: by default the compose containers (the urls' hosts are the services'
    // names), found through the server's engine over its connection.
    assert!(
        remote.contains(
            "redis cache: at the address of container redis of compose project pos on its network (the host given, redis, is its name), from warungin's Docker engine, reached through its SSH connection (looked up again for every connection)"
        ),
        "{remote}"
    );
    assert!(
        local.contains(
            "postgres db: at the address of container postgres of compose project warungin on its network (the host given, postgres, is its name), from this machine's Docker engine"
        ),
        "{local}"
    );
    // Urls with other hosts: reached as written, from the server over its connection.
    let elsewhere = validate(&[
        ("WARUNGIN_HOST", "warungin"),
        ("WARUNGIN_SSH", "deploy@pos.example.invalid:2222"),
        ("WARUNGIN_REDIS_URL", "redis://10.9.8.7:6380"),
        (
            "WARUNGIN_DATABASE_URL",
            "postgres://app@db.example.invalid:5433/warungin",
        ),
    ]);
    assert!(
        elsewhere.contains(
            "redis cache: at 10.9.8.7:6380 as seen from warungin (through its SSH connection), as written: its host 10.9.8.7 is not the name of container redis, so the Docker engine is not asked"
        ),
        "{elsewhere}"
    );
    assert!(
        elsewhere.contains(
            "postgres db: at db.example.invalid:5433 as seen from warungin (through its SSH connection), as written: its host db.example.invalid is not the name of container postgres"
        ),
        "{elsewhere}"
    );
    assert!(remote.contains("metric db.tables: number, crit < 1, priority P0"));

    // Every source is on the one host; the rules carry the runbook's thresholds.
    let config = Config::parse(&text.replace(
        "${WARUNGIN_HOST:-local}",
        "ssh://deploy@pos.example.invalid",
    ))
    .unwrap();
    assert_eq!(
        collect::hosts_in_use(&config),
        ["ssh://deploy@pos.example.invalid"]
    );
    assert_eq!(
        config.redis["cache"].host,
        "ssh://deploy@pos.example.invalid"
    );
    assert_eq!(
        config.postgres["db"].host,
        "ssh://deploy@pos.example.invalid"
    );
    let cpu = &config.rules["server.cpu_pct"];
    assert_eq!(
        (cpu.warn.map(|t| t.limit), cpu.crit.map(|t| t.limit)),
        (Some(70.0), Some(85.0))
    );
    for id in ["server.mem_pct", "server.disk_pct"] {
        let r = &config.rules[id];
        assert_eq!(
            (r.warn.map(|t| t.limit), r.crit.map(|t| t.limit)),
            (Some(80.0), Some(90.0)),
            "{id}"
        );
    }
    assert_eq!(
        config.rules["warungin.postgres.state"].priority,
        Some(watchpost::model::rule::Priority::P0)
    );
    assert_eq!(
        config.docker["warungin"].project.as_deref(),
        Some("warungin")
    );
    // The runbook's greps, as the journal source's metrics.
    let ids: Vec<&str> = config.logs["journal"]
        .metrics
        .iter()
        .map(|m| m.id.as_str())
        .collect();
    assert_eq!(ids, ["critical_1h", "unauthorized_1h", "security_words_1h"]);
    assert_eq!(
        config.rules["journal.errors_1h"].crit.map(|t| t.limit),
        Some(4.0)
    );
}
