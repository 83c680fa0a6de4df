//! Redis and PostgreSQL reached the way the runbook reaches them, with no port of theirs
//! opened from here: `address` as seen from a `[hosts]` host, carried over that host's one
//! SSH connection (the real sshd of support/sshd.rs) as `direct-tcpip` channels. The
//! figures are the ones read directly, and the process holds one TCP connection: to sshd.
//! And examples/warungin.toml's seed 003 checks judged against local servers.

use crate::support::postgres::Server as Postgres;
use crate::support::redis::Server as Redis;
use crate::support::sshd::{established_to, own_socket_inodes};
use crate::support::updates::{health, value};
use watchpost::collect::Collector;
use watchpost::collect::postgres::PostgresCollector;
use watchpost::collect::redis::RedisCollector;
use watchpost::config::Config;
use watchpost::model::figure::Value;
use watchpost::model::update::SourceHealth;

#[test]
fn redis_and_postgres_through_one_ssh_connection() {
    redis_or_skip!();
    postgres_or_skip!();
    let sshd = sshd_or_skip!();
    let mut redis = Redis::start(&[]);
    let postgres = Postgres::start(&[]);
    redis.cli_lines(&[
        "SET a 1".into(),
        "GET a".into(),
        "GET a".into(),
        "GET b".into(),
    ]);

    // The config as a user writes it: the servers' addresses as the host sees them.
    let config = Config::parse(&format!(
        r#"[hosts.test]
ssh = "{dest}"

[redis.cache]
address = "127.0.0.1:{redis}"
host = "test"
interval = "1s"
timeout = "3s"

[postgres.db]
url = "postgres://postgres@db.invalid/postgres"
address = "127.0.0.1:{pg}"
host = "test"
interval = "1s"
timeout = "3s"

[[postgres.db.metric]]
id = "tables"
query = "SELECT count(*) FROM pg_tables"
"#,
        dest = sshd.destination(),
        redis = redis.port,
        pg = postgres.port,
    ))
    .unwrap();
    let pool = sshd.quick_pool();
    let transport = pool.transport("test").unwrap();
    let mut cache = RedisCollector::on("cache", &config.redis["cache"], Ok(transport.clone()));
    let mut db = PostgresCollector::on("db", &config.postgres["db"], Ok(transport));
    let rt = tokio::runtime::Runtime::new().unwrap();

    let first = rt.block_on(cache.poll());
    assert_eq!(health(&first), SourceHealth::Ok, "{first:#?}");
    let pg = rt.block_on(db.poll());
    assert_eq!(health(&pg), SourceHealth::Ok, "{pg:#?}");
    let info = redis.info();
    assert_eq!(value(&first, "cache.up"), Value::Number(1.0));
    assert_eq!(
        value(&first, "cache.role"),
        Value::Text(info["role"].clone())
    );
    assert_eq!(
        value(&first, "cache.clients"),
        Value::Number(info["connected_clients"].parse::<f64>().unwrap() - 1.0)
    );
    assert_eq!(
        value(&pg, "db.db_size_bytes"),
        Value::Number(
            postgres
                .psql("SELECT pg_database_size('postgres')")
                .parse()
                .unwrap()
        )
    );
    assert_eq!(
        value(&pg, "db.tables"),
        Value::Number(
            postgres
                .psql("SELECT count(*) FROM pg_tables")
                .parse()
                .unwrap()
        )
    );

    // This process holds one TCP connection, to sshd; none to either server (sshd makes
    // those), though both count a client of ours.
    let ours = own_socket_inodes();
    assert_eq!(established_to(sshd.port, Some(&ours)), 1);
    assert_eq!(established_to(redis.port, Some(&ours)), 0);
    assert_eq!(established_to(postgres.port, Some(&ours)), 0);
    assert_eq!(
        postgres.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'watchpost'"),
        "1"
    );

    // The hit rate over the interval, through the tunnel.
    redis.cli_lines(
        &(0..8)
            .map(|_| "GET a".to_string())
            .chain(["GET c".into(), "GET d".into()])
            .collect::<Vec<_>>(),
    );
    let second = rt.block_on(cache.poll());
    assert_eq!(value(&second, "cache.cache_hit_pct"), Value::Number(80.0));

    // A dead server behind the host: the source's error says where, then it recovers.
    redis.kill();
    let mut message = String::new();
    for _ in 0..2 {
        let down = rt.block_on(cache.poll());
        match health(&down) {
            SourceHealth::Error { message: m, .. } => message = m,
            other => panic!("{other:?}"),
        }
        assert_eq!(value(&down, "cache.up"), Value::Number(0.0));
    }
    assert!(
        message.contains(&format!("127.0.0.1:{}", redis.port))
            && message.contains("ssh test: the server could not open a tunnel"),
        "{message}"
    );
    redis.restart();
    let back = rt.block_on(cache.poll());
    assert_eq!(health(&back), SourceHealth::Ok, "{back:#?}");
    // Still the one connection to sshd, and the postgres source never noticed.
    assert_eq!(established_to(sshd.port, Some(&own_socket_inodes())), 1);
    let pg = rt.block_on(db.poll());
    assert_eq!(health(&pg), SourceHealth::Ok, "{pg:#?}");
}

#[test]
fn the_warungin_example_judges_the_cache_hit_and_connection_checks() {
    redis_or_skip!();
    postgres_or_skip!();
    let redis = Redis::start(&[]);
    let postgres = Postgres::start(&[]);
    postgres.psql("CREATE TABLE sales (id int)");
    // 18 hits and 2 misses since the server started: 90 %, from 20 lookups (enough to judge).
    let mut commands = vec!["SET product:1 kopi".to_string()];
    commands.extend((0..18).map(|_| "GET product:1".to_string()));
    commands.extend(["GET product:2".into(), "GET product:3".into()]);
    redis.cli_lines(&commands);
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/warungin.toml");
    let mut command = std::process::Command::new(crate::support::check::BIN);
    command
        .env("WARUNGIN_REDIS_URL", redis.url())
        .env("WARUNGIN_DATABASE_URL", postgres.url())
        .env("WARUNGIN_HOST", "local")
        .env("WARUNGIN_URL", "http://127.0.0.1:9");
    let json = crate::support::check::check_json(command, std::path::Path::new(example)).json;
    let find = |id: &str| crate::support::check::by_id(&json, id).clone();
    let hit = find("cache.cache_hit_pct");
    assert_eq!(
        (hit["value"].as_f64(), hit["severity"].as_str()),
        (Some(90.0), Some("ok")),
        "{hit:#}"
    );
    let up = find("db.up");
    assert_eq!(
        (up["value"].as_f64(), up["severity"].as_str()),
        (Some(1.0), Some("ok"))
    );
    let pct = find("db.connections_pct");
    assert_eq!(pct["severity"], "ok", "{pct:#}");
    let connections = find("db.connections")["value"].as_f64().unwrap();
    let max: f64 = postgres.psql("SHOW max_connections").parse().unwrap();
    assert_eq!(
        pct["value"].as_f64().unwrap(),
        (10000.0 * connections / max).round() / 100.0
    );
    let tables = find("db.tables");
    assert_eq!(
        (tables["value"].as_f64(), tables["severity"].as_str()),
        (Some(1.0), Some("ok"))
    );
    assert_eq!(find("cache.up")["severity"], "ok");
    // The urls' hosts are not the containers' names (redis, postgres): the servers were
    // reached as written, not looked up through the Docker engine, and their details say so.
    let cache = find("cache.up")["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        cache.contains(&format!(" at 127.0.0.1:{}, ", redis.port)) && !cache.contains("container"),
        "{cache}"
    );
    let db = find("db.up")["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        db.contains(&format!(" at 127.0.0.1:{}, ", postgres.port)) && !db.contains("container"),
        "{db}"
    );
}
