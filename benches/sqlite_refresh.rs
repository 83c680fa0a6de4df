//! Refresh cost of the TMWS pack on 10,000,000 `security_audit_logs` rows with no index on
//! `created_at`, side by side with seed 000's deny-rate query run once on the same file
//! (README: Performance).
//!
//! The database is built once and kept at `target/bench-data/tmws-10m.db` (about 1 GB; delete
//! it to rebuild). Each measured refresh follows a few hundred new rows written by a separate
//! connection, as a live application would.

use chrono::{Duration, Utc};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use rusqlite::Connection;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration as StdDuration, Instant};
use watchpost::collect::Collector;
use watchpost::collect::sqlite::SqliteCollector;
use watchpost::config::SqliteSource;

const ROWS: i64 = 10_000_000;
/// The rows span 30 days up to the moment they were built, in time order.
const SPAN_DAYS: i64 = 30;
const NEW_ROWS_PER_REFRESH: usize = 300;

const SEED_DENY_RATE: &str = "SELECT
  COUNT(*) as total_checks,
  SUM(CASE WHEN details->>'result' = 'ALLOW' THEN 1 ELSE 0 END) as allow_count,
  SUM(CASE WHEN details->>'result' = 'DENY' THEN 1 ELSE 0 END) as deny_count,
  ROUND(100.0 * SUM(CASE WHEN details->>'result' = 'DENY' THEN 1 ELSE 0 END) / COUNT(*), 2) as deny_percentage
FROM security_audit_logs
WHERE event_type = 'permission_check'
  AND created_at > datetime('now', '-1 hour');";

fn data_path(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("bench-data").join(name)
}

/// Builds a database of `rows` audit rows unless a complete one is already there.
fn database(name: &str, rows_wanted: i64) -> PathBuf {
    let path = data_path(name);
    if path.exists() {
        let conn = Connection::open(&path).unwrap();
        let rows: Option<i64> = conn
            .query_row("SELECT max(rowid) FROM security_audit_logs", [], |r| {
                r.get(0)
            })
            .ok()
            .flatten();
        let complete: bool = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'bench_complete'",
                [],
                |r| r.get(0),
            )
            .unwrap_or(false);
        if complete && rows.is_some_and(|n| n >= rows_wanted) {
            return path;
        }
        drop(conn);
        std::fs::remove_file(&path).unwrap();
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let started = Instant::now();
    eprintln!("building {} ({rows_wanted} rows, once)…", path.display());
    let building = path.with_extension("building");
    let _ = std::fs::remove_file(&building);
    let mut conn = Connection::open(&building).unwrap();
    // Only for building: no journal, no fsync.
    conn.execute_batch(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -200000;",
    )
    .unwrap();
    conn.execute_batch(include_str!("../assets/tmws_schema.sql"))
        .unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO security_audit_logs (id, event_type, agent_id, details, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .unwrap();
        let ops = [
            "license.generate",
            "license.validate",
            "license.revoke",
            "agent.create",
            "agent.delete",
            "memory.write",
            "memory.read",
            "task.assign",
        ];
        let roles = ["viewer", "editor", "admin"];
        let details: Vec<Vec<String>> = ["ALLOW", "DENY"]
            .iter()
            .map(|result| {
                ops.iter()
                    .flat_map(|op| {
                        roles.iter().map(move |role| {
                            format!(
                                r#"{{"result": "{result}", "operation": "{op}", "role": "{role}"}}"#
                            )
                        })
                    })
                    .collect()
            })
            .collect();
        let end = Utc::now();
        let start = end - Duration::days(SPAN_DAYS);
        let step_ms = Duration::days(SPAN_DAYS).num_milliseconds() as f64 / rows_wanted as f64;
        // Format the time once per second, not once per row.
        let mut second = i64::MIN;
        let mut stamp = String::new();
        let mut x: u64 = 42;
        for id in 1..=rows_wanted {
            let at = start + Duration::milliseconds((id as f64 * step_ms) as i64);
            if at.timestamp() != second {
                second = at.timestamp();
                stamp = at.format("%Y-%m-%d %H:%M:%S").to_string();
            }
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let r = (x >> 33) as usize;
            let (event, detail) = if r % 10 < 8 {
                let deny = (r / 10) % 100 < 12;
                let d = &details[deny as usize][(r / 1000) % (ops.len() * roles.len())];
                ("permission_check", Some(d.as_str()))
            } else if r % 10 == 8 {
                ("license_generated", Some("{}"))
            } else {
                ("login", None)
            };
            insert
                .execute(rusqlite::params![id, event, "agent-1", detail, stamp])
                .unwrap();
        }
    }
    tx.execute_batch(
        "CREATE TABLE bench_complete (x); INSERT INTO alembic_version VALUES ('571948cc671b');",
    )
    .unwrap();
    tx.commit().unwrap();
    drop(conn);
    std::fs::rename(&building, &path).unwrap();
    eprintln!("built in {:.1} s", started.elapsed().as_secs_f64());
    path
}

fn insert_new_rows(conn: &Connection) {
    let now = Utc::now().format("%Y-%m-%d %H:%M:%S").to_string();
    let tx = conn.unchecked_transaction().unwrap();
    {
        let mut insert = tx
            .prepare_cached(
                "INSERT INTO security_audit_logs (event_type, agent_id, details, created_at) VALUES ('permission_check', 'agent-2', ?1, ?2)",
            )
            .unwrap();
        for i in 0..NEW_ROWS_PER_REFRESH {
            let result = if i % 7 == 0 { "DENY" } else { "ALLOW" };
            let details =
                format!(r#"{{"result": "{result}", "operation": "bench.op", "role": "viewer"}}"#);
            insert.execute(rusqlite::params![details, now]).unwrap();
        }
    }
    tx.commit().unwrap();
}

/// A collector on `path` that has done its first (full) read.
fn warmed(runtime: &tokio::runtime::Runtime, path: &std::path::Path) -> SqliteCollector {
    let source = SqliteSource {
        path: path.to_string_lossy().into_owned(),
        pack: Some("tmws".into()),
        host: "local".into(),
        interval: StdDuration::from_secs(5),
        expected_migration: Some("571948cc671b".into()),
    };
    let mut collector = SqliteCollector::new("tmws", &source);
    let started = Instant::now();
    let first = runtime.block_on(collector.poll());
    eprintln!(
        "{}: first read (full scan in short transactions) {:.3} s, {} updates",
        path.display(),
        started.elapsed().as_secs_f64(),
        first.len()
    );
    collector
}

fn bench(c: &mut Criterion) {
    let big = database("tmws-10m.db", ROWS);
    let small = database("tmws-10k.db", 10_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();

    let mut group = c.benchmark_group("sqlite_refresh");
    for (label, path) in [("10m", &big), ("10k", &small)] {
        let mut collector = warmed(&runtime, path);
        let writer = Connection::open(path).unwrap();
        writer.busy_timeout(StdDuration::from_secs(2)).unwrap();
        group.bench_function(
            format!("tmws_pack_refresh_after_300_new_rows_{label}"),
            |b| {
                b.iter_batched(
                    || insert_new_rows(&writer),
                    |()| black_box(runtime.block_on(collector.poll())),
                    BatchSize::PerIteration,
                )
            },
        );
    }
    group.sample_size(10);
    group.measurement_time(StdDuration::from_secs(70));
    let seed =
        Connection::open_with_flags(&big, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    group.bench_function("seed_000_deny_rate_query_10m", |b| {
        b.iter(|| {
            let row: (i64, Option<i64>) = seed
                .query_row(SEED_DENY_RATE, [], |r| Ok((r.get(0)?, r.get(2)?)))
                .unwrap();
            black_box(row)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
