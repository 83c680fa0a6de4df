//! Read-only means no file of the watched application's is created, changed or taken over
//! (issue 20). The application's SQLite database is in WAL mode; when it is cleanly closed it
//! has no `-wal`/`-shm`, and an ordinary read-only open would create them, owned by the
//! user watchpost runs as: the application's next write then fails with "attempt to write a
//! readonly database". As root SQLite hands such files to the database's owner, so the
//! ownership cases run `watchpost check` as a second Unix user (created here when the test
//! runs as root; skipped with a reason otherwise, and failed instead under `CI=true` or
//! `WATCHPOST_REQUIRE_USERS=1`).
//!
//! Real SQLite files, the real `watchpost check` binary, the real collector, and for the
//! remote path the real `sqlite3` shell behind a real sshd on 127.0.0.1.

use crate::support::check::{BIN, by_id, num};
use crate::support::sshd;

use rusqlite::Connection;
use serde_json::Value as Json;
use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use watchpost::collect::sqlite::SqliteCollector;
use watchpost::collect::{self, Collector};
use watchpost::config::SqliteSource;
use watchpost::model::figure::Value;
use watchpost::model::update::{SourceHealth, Update};

const SCHEMA: &str = include_str!("../../assets/tmws_schema.sql");
const HEAD: &str = "571948cc671b";
pub(crate) const APP: &str = "wp-app";
const OPERATOR: &str = "wp-operator";

// ---------------------------------------------------------------- fixtures

fn stamp(minutes_ago: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::minutes(minutes_ago))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// Adds `n` allowed permission checks of the last hour through `conn`.
fn add_checks(conn: &Connection, n: usize) {
    let tx = conn.unchecked_transaction().unwrap();
    for i in 0..n {
        tx.execute(
            "INSERT INTO security_audit_logs (event_type, agent_id, details, created_at) \
             VALUES ('permission_check', 'a', '{\"result\": \"ALLOW\", \"operation\": \"x\", \"role\": \"viewer\"}', ?1)",
            [stamp(2 + (i as i64 % 40))],
        )
        .unwrap();
    }
    tx.commit().unwrap();
}

/// A TMWS database in WAL mode with `checks` permission checks in the last hour, cleanly
/// closed: no `-wal`, no `-shm`.
fn closed_wal_db(dir: &Path, checks: usize) -> PathBuf {
    let path = dir.join("app.db");
    let conn = Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    conn.execute_batch(SCHEMA).unwrap();
    conn.execute("INSERT INTO alembic_version VALUES (?1)", [HEAD])
        .unwrap();
    conn.execute(
        "INSERT INTO agents (agent_id, role, created_at, updated_at) VALUES ('a', 'viewer', ?1, ?1)",
        [stamp(60 * 24)],
    )
    .unwrap();
    add_checks(&conn, checks);
    drop(conn);
    assert_eq!(names(dir), set(&["app.db"]), "not cleanly closed");
    path
}

/// The names in a directory.
fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// `ls -l` of a directory, for the test's output.
fn listing(dir: &Path) -> String {
    let out = Command::new("ls").arg("-la").arg(dir).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A config with the TMWS pack and a custom metric counting every audit row.
fn write_config(dir: &Path, db: &Path) -> PathBuf {
    let config = dir.join("watchpost.toml");
    std::fs::write(
        &config,
        format!(
            "[deployment]\nname = \"readonly-test\"\n\n\
             [sqlite.app]\npath = '{}'\npack = \"tmws\"\nexpected_migration = \"{HEAD}\"\n\n\
             [[sqlite.app.metric]]\nid = \"audit_rows\"\nquery = \"SELECT count(*) FROM security_audit_logs\"\n",
            db.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    config
}

/// `watchpost check --format json`, as this process's user or (with `runuser`) as `user`.
fn check(config: &Path, user: Option<(&str, &Path)>) -> (i32, Json, String) {
    let cmd = match user {
        None => Command::new(BIN),
        Some((user, home)) => {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", user, "--", "env"])
                .arg(format!("HOME={}", home.display()))
                .arg(BIN);
            cmd
        }
    };
    let r = crate::support::check::check_json(cmd, config);
    (r.code, r.json, r.stderr)
}

fn source(path: &Path, host: &str) -> SqliteSource {
    SqliteSource {
        path: path.to_string_lossy().into_owned(),
        pack: Some("tmws".into()),
        host: host.into(),
        interval: Duration::from_secs(5),
        expected_migration: Some(HEAD.into()),
    }
}

/// One poll: the number of `app.rbac.checks_1h`, after asserting the source is healthy.
async fn checks_1h(collector: &mut SqliteCollector) -> f64 {
    let updates = collector.poll().await;
    let health = updates.iter().rev().find_map(|u| match u {
        Update::Health { health, .. } => Some(health.clone()),
        _ => None,
    });
    assert_eq!(health, Some(SourceHealth::Ok), "{updates:#?}");
    updates
        .iter()
        .find_map(|u| match u {
            Update::Readings { readings, .. } => readings
                .iter()
                .find(|r| r.id.ends_with(".rbac.checks_1h"))
                .cloned(),
            _ => None,
        })
        .and_then(|r| match r.value {
            Value::Number(n) => Some(n),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no rbac.checks_1h in {updates:#?}"))
}

// ------------------------------------------------- a second Unix user

pub(crate) fn users_required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("WATCHPOST_REQUIRE_USERS").is_ok_and(|v| v == "1")
}

fn sh(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn exists(user: &str) -> bool {
    Command::new("id")
        .arg(user)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The application's user `wp-app` and an operator `wp-operator` in its group (created
/// when missing), or why they cannot be had here.
pub(crate) fn users() -> Result<(u32, u32), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not running as root (the test creates users and runs as them)".into());
    }
    for tool in ["useradd", "groupadd", "runuser", "sqlite3"] {
        if sh(Command::new("sh").args(["-c", &format!("command -v {tool}")])).is_err() {
            return Err(format!("{tool} is not installed"));
        }
    }
    if !exists(APP) {
        sh(Command::new("groupadd").args(["-f", APP]))?;
        sh(Command::new("useradd").args(["-M", "-N", "-g", APP, "-s", "/usr/sbin/nologin", APP]))?;
    }
    if !exists(OPERATOR) {
        sh(Command::new("groupadd").args(["-f", OPERATOR]))?;
        sh(Command::new("useradd").args([
            "-M",
            "-N",
            "-g",
            OPERATOR,
            "-G",
            APP,
            "-s",
            "/usr/sbin/nologin",
            OPERATOR,
        ]))?;
    }
    let groups = sh(Command::new("id").args(["-nG", OPERATOR]))?;
    if !groups.split_whitespace().any(|g| g == APP) {
        sh(Command::new("usermod").args(["-aG", APP, OPERATOR]))?;
    }
    let id = |flag: &str, user: &str| -> Result<u32, String> {
        sh(Command::new("id").args([flag, user]))?
            .trim()
            .parse()
            .map_err(|e| format!("id {flag} {user}: {e}"))
    };
    let uid = id("-u", APP)?;
    let gid = id("-g", APP)?;
    // The operator must be able to run the binary where cargo put it.
    let bin = env!("CARGO_BIN_EXE_watchpost");
    sh(Command::new("runuser").args(["-u", OPERATOR, "--", bin, "--version"]))
        .map_err(|e| format!("{OPERATOR} cannot run {bin}: {e}"))?;
    Ok((uid, gid))
}

macro_rules! users_or_skip {
    () => {
        match users() {
            Ok(ids) => ids,
            Err(why) => {
                if users_required() {
                    panic!("CI=true or WATCHPOST_REQUIRE_USERS=1, but no second user: {why}");
                }
                eprintln!("SKIPPED (needs a second Unix user): {why}");
                return;
            }
        }
    };
}

/// A directory like the application's: `<tmp>/data`, owned by wp-app, group-writable and
/// setgid (mode 2775), with the application's cleanly closed WAL database in it (0644).
fn app_dir(tmp: &Path, (uid, gid): (u32, u32), checks: usize) -> (PathBuf, PathBuf) {
    std::fs::set_permissions(tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = tmp.join("data");
    std::fs::create_dir(&data).unwrap();
    let db = closed_wal_db(&data, checks);
    std::os::unix::fs::chown(&db, Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::chown(&data, Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o2775)).unwrap();
    (data, db)
}

// ---------------------------------------------------------------- tests

#[test]
fn an_operator_check_creates_nothing_beside_the_apps_wal_database() {
    let ids = users_or_skip!();
    let tmp = tempfile::tempdir().unwrap();
    let (data, db) = app_dir(tmp.path(), ids, 25);
    let config = write_config(tmp.path(), &db);

    let (_, json, stderr) = check(&config, Some((OPERATOR, tmp.path())));
    eprintln!("after `watchpost check` as {OPERATOR}:\n{}", listing(&data));
    assert_eq!(
        names(&data),
        set(&["app.db"]),
        "check as {OPERATOR} left files beside the database:\n{}\nstderr: {stderr}",
        listing(&data)
    );
    assert_eq!(num(&json, "app.rbac.checks_1h"), 25.0, "{json:#}");
    assert_eq!(num(&json, "app.audit_rows"), 25.0);
    assert_eq!(by_id(&json, "app.db.integrity")["value"], "ok");
    assert_eq!(std::fs::metadata(&db).unwrap().uid(), ids.0);

    // The application still writes.
    let insert = format!(
        "INSERT INTO security_audit_logs (event_type, details, created_at) VALUES ('permission_check', '{{\"result\": \"DENY\"}}', '{}')",
        stamp(1)
    );
    let out = Command::new("runuser")
        .args(["-u", APP, "--", "sqlite3"])
        .arg(&db)
        .arg(&insert)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{APP} cannot write its database after the check: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        listing(&data)
    );

    // With the application holding the database open, its own sidecars are used (and
    // nothing of the operator's appears); the new row is counted.
    let hold = Command::new("runuser")
        .args(["-u", APP, "--", "python3", "-c"])
        .arg(
            "import sqlite3, sys, time\n\
             c = sqlite3.connect(sys.argv[1])\n\
             c.execute('SELECT count(*) FROM agents').fetchall()\n\
             print('open', flush=True)\n\
             sys.stdin.read()\n",
        )
        .arg(&db)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn();
    if let Ok(mut hold) = hold {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(hold.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if line.trim() == "open" {
            assert_eq!(names(&data), set(&["app.db", "app.db-shm", "app.db-wal"]));
            let (_, json, _) = check(&config, Some((OPERATOR, tmp.path())));
            assert_eq!(num(&json, "app.audit_rows"), 26.0, "{json:#}");
            for name in ["app.db-wal", "app.db-shm"] {
                let meta = std::fs::metadata(data.join(name)).unwrap();
                assert_eq!(
                    meta.uid(),
                    ids.0,
                    "{name} changed hands:\n{}",
                    listing(&data)
                );
            }
        } else {
            eprintln!("(no python3 here: the held-open part is skipped)");
        }
        drop(hold.stdin.take());
        hold.wait().unwrap();
    }
    let out = Command::new("runuser")
        .args(["-u", APP, "--", "sqlite3"])
        .arg(&db)
        .arg(&insert)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_database_the_operator_cannot_read_says_who_owns_it() {
    let ids = users_or_skip!();
    let tmp = tempfile::tempdir().unwrap();
    let (data, db) = app_dir(tmp.path(), ids, 3);
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = write_config(tmp.path(), &db);
    let (_, json, _) = check(&config, Some((OPERATOR, tmp.path())));
    let error = by_id(&json, "app.rbac.checks_1h")["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error in {json:#}"))
        .to_string();
    for part in [
        db.to_str().unwrap(),
        "permission denied",
        "owned by wp-app:wp-app",
        "mode 0600",
        "runs as wp-operator",
    ] {
        assert!(error.contains(part), "{part:?} missing from: {error}");
    }
    assert_eq!(names(&data), set(&["app.db"]));
}

#[test]
fn a_database_the_app_holds_open_is_read_through_its_own_sidecars() {
    let tmp = tempfile::tempdir().unwrap();
    let db = closed_wal_db(tmp.path(), 10);
    let config = write_config(tmp.path(), &db);
    // The application: a live connection with rows committed to its -wal, not checkpointed.
    let app = Connection::open(&db).unwrap();
    app.execute_batch("PRAGMA wal_autocheckpoint=0").unwrap();
    add_checks(&app, 7);
    let wal_size = std::fs::metadata(tmp.path().join("app.db-wal"))
        .unwrap()
        .len();
    assert!(wal_size > 0);
    let before = names(tmp.path());
    assert_eq!(
        before,
        set(&["app.db", "app.db-shm", "app.db-wal", "watchpost.toml"])
    );

    let (_, json, _) = check(&config, None);
    assert_eq!(num(&json, "app.rbac.checks_1h"), 17.0, "{json:#}");
    assert_eq!(num(&json, "app.audit_rows"), 17.0);
    assert_eq!(names(tmp.path()), before, "a file was created");
    // The application goes on writing.
    add_checks(&app, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reader_switches_when_the_app_opens_its_database() {
    let tmp = tempfile::tempdir().unwrap();
    let db = closed_wal_db(tmp.path(), 4);
    let mut collector = SqliteCollector::new("app", &source(&db, "local"));
    // Cleanly closed: read without creating anything, twice.
    for _ in 0..2 {
        assert_eq!(checks_1h(&mut collector).await, 4.0);
        assert_eq!(names(tmp.path()), set(&["app.db"]));
    }
    // The application opens it and writes: the next poll sees the rows.
    let app = Connection::open(&db).unwrap();
    app.execute_batch("PRAGMA wal_autocheckpoint=0").unwrap();
    add_checks(&app, 3);
    assert_eq!(checks_1h(&mut collector).await, 7.0);
    add_checks(&app, 2);
    assert_eq!(checks_1h(&mut collector).await, 9.0);
    // Its writes keep working while we read.
    add_checks(&app, 1);
    assert_eq!(checks_1h(&mut collector).await, 10.0);
    drop(app);
    assert_eq!(checks_1h(&mut collector).await, 10.0);
    // Nothing but the application's own files.
    let left = names(tmp.path());
    assert!(
        left.is_subset(&set(&["app.db", "app.db-shm", "app.db-wal"])),
        "{left:?}"
    );
    // The application opens, writes and closes again (its close removes its sidecars once
    // we let go of them): a fresh reader sees every row, with nothing created.
    drop(collector);
    {
        let app = Connection::open(&db).unwrap();
        add_checks(&app, 5);
    }
    assert_eq!(names(tmp.path()), set(&["app.db"]));
    let mut collector = SqliteCollector::new("app", &source(&db, "local"));
    assert_eq!(checks_1h(&mut collector).await, 15.0);
    {
        let app = Connection::open(&db).unwrap();
        add_checks(&app, 5);
    }
    // The file changed under the lock-free reader between polls: read afresh, not from cache.
    assert_eq!(checks_1h(&mut collector).await, 20.0);
    assert_eq!(names(tmp.path()), set(&["app.db"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_read_creates_nothing_beside_the_database() {
    let sshd = sshd_or_skip!();
    if Command::new("sqlite3").arg("-version").output().is_err() {
        if sshd::ssh_required() {
            panic!("WATCHPOST_REQUIRE_SSH=1 but no sqlite3 CLI here (apt-get install sqlite3)");
        }
        eprintln!("SKIPPED: no sqlite3 CLI here (apt-get install sqlite3)");
        return;
    }
    let pool = sshd.quick_pool();
    let tmp = tempfile::tempdir().unwrap();
    let db = closed_wal_db(tmp.path(), 6);
    let mut remote =
        SqliteCollector::on("far", &source(&db, "test"), collect::reach(&pool, "test"));
    for _ in 0..2 {
        assert_eq!(checks_1h(&mut remote).await, 6.0);
        assert_eq!(
            names(tmp.path()),
            set(&["app.db"]),
            "the remote read left files:\n{}",
            listing(tmp.path())
        );
    }
    // With the application holding it open, its uncheckpointed rows are read (mode=ro).
    let app = Connection::open(&db).unwrap();
    app.execute_batch("PRAGMA wal_autocheckpoint=0").unwrap();
    add_checks(&app, 4);
    assert_eq!(checks_1h(&mut remote).await, 10.0);
    drop(app);
}
