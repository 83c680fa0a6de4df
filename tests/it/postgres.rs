//! `[postgres.NAME]` against a real PostgreSQL from Debian's package, started by the tests
//! on 127.0.0.1 (see support/postgres.rs). Each built-in figure is compared with what `psql`
//! says right after the poll, with connections opened by the test and a long `pg_sleep`.

use crate::support::postgres::{Server, Session};
use crate::support::prometheus::eventually;
use crate::support::updates::{health, number, reading, readings};
use std::time::Duration;
use watchpost::collect::Collector;
use watchpost::collect::postgres::PostgresCollector;
use watchpost::config::Config;
use watchpost::model::figure::Value;
use watchpost::model::update::{SourceHealth, Update};

fn collector(body: &str) -> PostgresCollector {
    let config = Config::parse(body).unwrap_or_else(|e| panic!("{e}\n{body}"));
    let (name, source) = config.postgres.iter().next().expect("a [postgres.NAME]");
    PostgresCollector::new(name, source)
}

fn poll(rt: &tokio::runtime::Runtime, c: &mut PostgresCollector) -> Vec<Update> {
    rt.block_on(c.poll())
}

fn num(text: &str) -> f64 {
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{text:?} is not a number"))
}

/// Client backends by state as psql sees them, leaving psql's own connection out:
/// (total, active, idle, idle in transaction).
fn states(server: &Server) -> (f64, f64, f64, f64) {
    let line = server.psql(
        "SELECT count(*), count(*) FILTER (WHERE state = 'active'), \
         count(*) FILTER (WHERE state = 'idle'), \
         count(*) FILTER (WHERE state = 'idle in transaction') \
         FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
    );
    let n: Vec<f64> = line.split('|').map(num).collect();
    (n[0], n[1], n[2], n[3])
}

fn config(server: &Server, extra: &str) -> String {
    format!(
        "[postgres.db]\nurl = \"{}\"\ninterval = \"1s\"\ntimeout = \"3s\"\n{extra}",
        server.url()
    )
}

#[test]
fn every_figure_equals_psql_at_the_same_moment() {
    postgres_or_skip!();
    let server = Server::start(&[]);
    server.psql("CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT g, 0 FROM generate_series(1, 100) g");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut c = collector(&config(&server, ""));
    let first = poll(&rt, &mut c);
    assert_eq!(health(&first), SourceHealth::Ok, "{first:#?}");
    assert_eq!(number(&first, "db.up"), 1.0);
    assert_eq!(
        reading(&first, "db.rollbacks_per_min").value,
        Value::Text("no samples".into())
    );
    // No replica: no lag at all, not a zero.
    assert!(
        readings(&first)
            .iter()
            .all(|r| r.id != "db.replication_lag_s")
    );
    let (hit0, read0) = blocks(&server);

    // Three idle connections, one idle in a transaction, one running a long query.
    let idle: Vec<Session> = (0..3).map(|_| server.session()).collect();
    let mut in_tx = server.session();
    in_tx.send("BEGIN; SELECT 1;");
    let mut sleeper = server.session();
    sleeper.send("SELECT pg_sleep(60);");
    for _ in 0..5 {
        server.psql("BEGIN; UPDATE t SET v = v + 1 WHERE id = 1; ROLLBACK;");
    }
    eventually("the sessions settled", Duration::from_secs(10), || {
        let (_, active, idle_n, in_tx_n) = states(&server);
        (active == 1.0 && idle_n == 4.0 && in_tx_n == 1.0).then_some(())
    });
    let rollbacks_before = num(&server
        .psql("SELECT xact_rollback FROM pg_stat_database WHERE datname = current_database()"));
    // The counters of other backends reach pg_stat_database within a second.
    std::thread::sleep(Duration::from_millis(1200));

    let second = poll(&rt, &mut c);
    let (total, active, idle_n, in_tx_n) = states(&server);
    let psql_query_s = num(&server.psql(
        "SELECT EXTRACT(EPOCH FROM max(now() - query_start)) FROM pg_stat_activity \
         WHERE state = 'active' AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
    ));
    let psql_tx_s = num(&server.psql(
        "SELECT EXTRACT(EPOCH FROM max(now() - xact_start)) FROM pg_stat_activity \
         WHERE xact_start IS NOT NULL AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
    ));
    let size = num(&server.psql("SELECT pg_database_size(current_database())"));
    let max = num(&server.psql("SHOW max_connections"));
    let (hit1, read1) = blocks(&server);
    assert_eq!(health(&second), SourceHealth::Ok, "{second:#?}");

    // psql (its own connection left out) sees the collector's connection idle; the
    // collector saw itself active while it asked: the same connections, one state apart.
    assert_eq!(number(&second, "db.connections"), total);
    assert_eq!(number(&second, "db.connections.active"), active + 1.0);
    assert_eq!(number(&second, "db.connections.idle"), idle_n - 1.0);
    assert_eq!(
        number(&second, "db.connections.idle_in_transaction"),
        in_tx_n
    );
    assert_eq!((active, idle_n, in_tx_n), (1.0, 4.0, 1.0));
    assert_eq!(number(&second, "db.connections.other"), 0.0);
    assert_eq!(number(&second, "db.connections_pct"), 100.0 * total / max);
    // The long query and the open transaction, a moment earlier than psql asked.
    let query_s = number(&second, "db.longest_query_s");
    assert!(
        query_s > 1.0 && (psql_query_s - query_s).abs() < 1.0,
        "{query_s} vs {psql_query_s}"
    );
    let tx_s = number(&second, "db.longest_transaction_s");
    assert!((psql_tx_s - tx_s).abs() < 1.0, "{tx_s} vs {psql_tx_s}");
    assert!(
        tx_s >= query_s - 0.01,
        "a transaction is as old as its query: {tx_s} {query_s}"
    );
    assert_eq!(number(&second, "db.db_size_bytes"), size);

    // Five rollbacks between the polls; watchpost's own transactions commit.
    let r = reading(&second, "db.rollbacks_per_min");
    let count: f64 = r.detail.split(' ').next().unwrap().parse().unwrap();
    assert_eq!(count, 5.0, "{r:?}");
    let rollbacks_after = num(&server
        .psql("SELECT xact_rollback FROM pg_stat_database WHERE datname = current_database()"));
    assert_eq!(
        rollbacks_after, rollbacks_before,
        "no rollback after the five"
    );
    assert_eq!(number(&second, "db.deadlocks_per_min"), 0.0);

    // The buffer cache hit % over the interval: within what psql saw change around it.
    let r = reading(&second, "db.blks_hit_pct");
    let parts: Vec<f64> = r.detail.split(' ').filter_map(|w| w.parse().ok()).collect();
    let (hit, read) = (parts[0], parts[1]);
    assert!(
        hit + read > 0.0 && hit <= hit1 - hit0 && read <= read1 - read0,
        "{r:?}"
    );
    assert_eq!(
        number(&second, "db.blks_hit_pct"),
        100.0 * hit / (hit + read)
    );

    // The Services row: up, a primary.
    assert!(second.iter().any(|u| matches!(u,
        Update::Service(s) if s.name == "db" && s.up && s.kind == "postgres" && s.status == "primary")));
    drop((idle, in_tx, sleeper));
}

/// `pg_stat_database`'s blks_hit and blks_read of the database.
fn blocks(server: &Server) -> (f64, f64) {
    let line = server.psql(
        "SELECT blks_hit, blks_read FROM pg_stat_database WHERE datname = current_database()",
    );
    let (h, r) = line.split_once('|').unwrap();
    (num(h), num(r))
}

#[test]
fn a_deadlock_counts_once() {
    postgres_or_skip!();
    let server = Server::start(&["deadlock_timeout = '100ms'"]);
    server.psql("CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 0), (2, 0)");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut c = collector(&config(&server, ""));
    poll(&rt, &mut c);
    let mut a = server.session();
    let mut b = server.session();
    a.send("BEGIN; UPDATE t SET v = 1 WHERE id = 1;");
    b.send("BEGIN; UPDATE t SET v = 2 WHERE id = 2;");
    std::thread::sleep(Duration::from_millis(300));
    a.send("UPDATE t SET v = 1 WHERE id = 2;");
    std::thread::sleep(Duration::from_millis(300));
    b.send("UPDATE t SET v = 2 WHERE id = 1;");
    // One of the two is chosen and fails; a backend reports its counters out of its
    // transaction block, at the latest when it ends.
    std::thread::sleep(Duration::from_millis(600));
    drop((a, b));
    eventually("the deadlock found", Duration::from_secs(10), || {
        (num(&server
            .psql("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"))
            == 1.0)
            .then_some(())
    });
    std::thread::sleep(Duration::from_millis(1200));
    let second = poll(&rt, &mut c);
    let r = reading(&second, "db.deadlocks_per_min");
    assert!(r.detail.starts_with("1 deadlocks in "), "{r:?}");
    assert!(number(&second, "db.deadlocks_per_min") > 0.0);
}

#[test]
fn metrics_read_and_a_write_is_refused_by_the_server() {
    postgres_or_skip!();
    let server = Server::start(&[]);
    server.psql("CREATE TABLE orders (id int, total numeric(10,2)); INSERT INTO orders VALUES (1, 10.50), (2, 4.25), (3, 1.00)");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut c = collector(&config(
        &server,
        r#"
[[postgres.db.metric]]
id = "tables"
query = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
crit = "< 1"

[[postgres.db.metric]]
id = "revenue"
query = "SELECT sum(total), count(*) AS samples FROM orders"
warn = "< 100"

[[postgres.db.metric]]
id = "orders"
kind = "table"
query = "SELECT id, total FROM orders ORDER BY id"

[[postgres.db.metric]]
id = "unlock"
query = "SET default_transaction_read_only = off"

[[postgres.db.metric]]
id = "sneaky"
query = "INSERT INTO orders VALUES (4, 99) RETURNING id"

[[postgres.db.metric]]
id = "nothing"
query = "SELECT total FROM orders WHERE id = 42"
"#,
    ));
    let updates = poll(&rt, &mut c);
    assert_eq!(health(&updates), SourceHealth::Ok, "{updates:#?}");
    assert_eq!(
        number(&updates, "db.tables"),
        num(&server.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"))
    );
    let revenue = reading(&updates, "db.revenue");
    assert_eq!(revenue.value, Value::Number(15.75));
    // The samples column, as a SQLite metric's: 3 of the 20 a judged value needs.
    assert_eq!(revenue.samples, Some(3));
    assert_eq!(revenue.default_rule.as_ref().unwrap().min_samples, Some(20));
    assert_eq!(number(&updates, "db.orders"), 3.0);
    let table = updates
        .iter()
        .find_map(|u| match u {
            Update::Table { id, table } if id == "db.orders" => Some(table.clone()),
            _ => None,
        })
        .expect("the table");
    assert_eq!(table.columns, ["id", "total"]);
    assert_eq!(table.rows[0], ["1", "10.5"]);
    // The write: refused by the server even after a metric tried to lift read-only.
    let sneaky = reading(&updates, "db.sneaky");
    let error = sneaky.error.clone().expect("an error");
    assert!(error.contains("read-only transaction"), "{error}");
    assert!(error.contains("tries to write"), "{error}");
    assert_eq!(server.psql("SELECT count(*) FROM orders"), "3");
    assert_eq!(
        server.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'watchpost' AND state = 'idle'"),
        "1",
        "one connection"
    );
    let nothing = reading(&updates, "db.nothing");
    assert!(nothing.error.unwrap().contains("no rows"));
    // Polled again: still one connection, still read-only.
    let again = poll(&rt, &mut c);
    assert!(reading(&again, "db.sneaky").error.is_some());
    assert_eq!(server.psql("SELECT count(*) FROM orders"), "3");
}

#[test]
fn a_dead_server_is_a_source_error_and_a_restart_recovers() {
    postgres_or_skip!();
    let mut server = Server::start(&[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut c = collector(&config(&server, ""));
    assert_eq!(health(&poll(&rt, &mut c)), SourceHealth::Ok);
    server.kill();
    for _ in 0..2 {
        let down = poll(&rt, &mut c);
        let SourceHealth::Error { message, .. } = health(&down) else {
            panic!("{down:#?}")
        };
        assert!(
            message.starts_with(&format!("postgres at 127.0.0.1:{}: ", server.port)),
            "{message}"
        );
        assert_eq!(number(&down, "db.up"), 0.0);
        assert_eq!(
            reading(&down, "db.connections").error.as_deref(),
            Some(message.as_str())
        );
        assert!(
            down.iter()
                .any(|u| matches!(u, Update::Service(s) if !s.up))
        );
    }
    server.restart();
    let back = poll(&rt, &mut c);
    assert_eq!(health(&back), SourceHealth::Ok, "{back:#?}");
    assert_eq!(number(&back, "db.up"), 1.0);
}

#[test]
fn a_unix_socket_directory_is_a_place_too() {
    postgres_or_skip!();
    let server = Server::start(&[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut c = collector(&format!(
        "[postgres.db]\nurl = \"host={} port={} user=postgres dbname=postgres\"\n",
        server.socket_dir().display(),
        server.port
    ));
    let updates = poll(&rt, &mut c);
    assert_eq!(health(&updates), SourceHealth::Ok, "{updates:#?}");
    assert_eq!(
        number(&updates, "db.db_size_bytes"),
        num(&server.psql("SELECT pg_database_size('postgres')"))
    );
}

#[test]
fn check_reads_the_url_from_the_environment() {
    postgres_or_skip!();
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = crate::support::prometheus::write_config(
        dir.path(),
        "[postgres.db]\nurl = \"${WP_TEST_DATABASE_URL}\"\n\n[[postgres.db.metric]]\nid = \"tables\"\nquery = \"SELECT count(*) FROM pg_tables\"\n",
    );
    let mut command = std::process::Command::new(crate::support::check::BIN);
    command.env("WP_TEST_DATABASE_URL", server.url());
    let out = crate::support::check::check_json(command, &config);
    let json = out.json;
    let find = |id: &str| crate::support::check::by_id(&json, id).clone();
    assert_eq!(find("db.up")["value"], 1.0);
    assert_eq!(
        find("db.tables")["value"].as_f64().unwrap(),
        num(&server.psql("SELECT count(*) FROM pg_tables"))
    );
    assert!(
        find("db.blks_hit_pct")["detail"]
            .as_str()
            .unwrap()
            .contains("since the statistics were reset")
    );
    assert_eq!(out.code, 0, "{json:#}");
}

#[test]
fn replication_lag_is_there_only_with_a_replica_and_equals_psql() {
    postgres_or_skip!();
    let primary = Server::start(&[]);
    primary.psql("CREATE TABLE t (id int)");
    let replica = Server::replica_of(&primary);
    eventually("the replica streaming", Duration::from_secs(20), || {
        (primary.psql("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") == "1")
            .then_some(())
    });
    primary.psql("INSERT INTO t VALUES (1)");
    eventually("the insert replayed", Duration::from_secs(20), || {
        replica
            .try_psql("SELECT count(*) FROM t")
            .is_ok_and(|n| n.trim() == "1")
            .then_some(())
    });
    let rt = tokio::runtime::Runtime::new().unwrap();

    // On the replica: the age of the last transaction it replayed, as psql computes it.
    let mut on_replica = collector(&config(&replica, ""));
    let updates = poll(&rt, &mut on_replica);
    let lag = number(&updates, "db.replication_lag_s");
    let psql_lag =
        num(&replica.psql("SELECT EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())"));
    assert!(
        lag >= 0.0 && (psql_lag - lag).abs() < 1.0,
        "{lag} vs {psql_lag}"
    );
    assert!(
        updates
            .iter()
            .any(|u| matches!(u, Update::Service(s) if s.status == "replica"))
    );

    // On the primary: the most behind replica's replay_lag (none to wait for: 0).
    let mut on_primary = collector(&config(&primary, ""));
    let updates = poll(&rt, &mut on_primary);
    let lag = number(&updates, "db.replication_lag_s");
    let psql_lag = num(&primary
        .psql("SELECT COALESCE(EXTRACT(EPOCH FROM max(replay_lag)), 0) FROM pg_stat_replication"));
    assert!((psql_lag - lag).abs() < 1.0, "{lag} vs {psql_lag}");
    assert!(
        reading(&updates, "db.replication_lag_s")
            .detail
            .contains("1 replica")
    );
}
