//! `[redis.NAME]` against a real redis-server from Debian's package, started by the tests on
//! 127.0.0.1 (see support/redis.rs). Every built-in figure is compared with what
//! `redis-cli INFO` says right after the poll, with keys hit and missed by the test.

use crate::support::redis::Server;
use crate::support::updates::{health, number, reading, readings};
use std::time::Duration;
use watchpost::collect::Collector;
use watchpost::collect::redis::RedisCollector;
use watchpost::config::Config;
use watchpost::model::figure::{Reading, Value};
use watchpost::model::update::{SourceHealth, Update};

fn collector(body: &str) -> RedisCollector {
    let config = Config::parse(body).unwrap_or_else(|e| panic!("{e}\n{body}"));
    let (name, source) = config.redis.iter().next().expect("a [redis.NAME] source");
    RedisCollector::new(name, source)
}

fn poll(rt: &tokio::runtime::Runtime, c: &mut RedisCollector) -> Vec<Update> {
    rt.block_on(c.poll())
}

fn int(info: &std::collections::HashMap<String, String>, key: &str) -> f64 {
    info[key]
        .parse()
        .unwrap_or_else(|_| panic!("{key} = {:?}", info[key]))
}

/// The count a per-minute figure's detail says ("12 keys evicted in 3.4s") and the span.
fn count_and_secs(r: &Reading) -> (f64, f64) {
    let count: f64 = r.detail.split(' ').next().unwrap().parse().unwrap();
    let secs: f64 = r
        .detail
        .rsplit_once(" in ")
        .and_then(|(_, s)| s.strip_suffix('s'))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no span in {:?}", r.detail));
    (count, secs)
}

#[test]
fn every_figure_equals_redis_cli_info_at_the_same_moment() {
    redis_or_skip!();
    let server = Server::start(&["--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut c = collector(&format!(
        "[redis.cache]\nurl = \"{}\"\ninterval = \"1s\"\n",
        server.url()
    ));

    let first = poll(&rt, &mut c);
    assert_eq!(health(&first), SourceHealth::Ok, "{first:#?}");
    assert_eq!(number(&first, "cache.up"), 1.0);
    // The hit rate is over an interval: nothing to say after one poll.
    let hit = reading(&first, "cache.cache_hit_pct");
    assert_eq!(hit.value, Value::Text("no samples".into()), "{hit:?}");

    // 3 keys; 30 lookups of them and 10 of keys that do not exist: 75 %.
    let mut commands: Vec<String> = (0..3).map(|i| format!("SET k{i} v{i}")).collect();
    commands.extend((0..30).map(|i| format!("GET k{}", i % 3)));
    commands.extend((0..10).map(|i| format!("GET missing{i}")));
    server.cli_lines(&commands);
    let blocked = server.blocked_client("queue");
    crate::support::prometheus::eventually(
        "the BLPOP client blocked",
        Duration::from_secs(10),
        || (server.info()["blocked_clients"] == "1").then_some(()),
    );

    let second = poll(&rt, &mut c);
    let info = server.info();
    assert_eq!(health(&second), SourceHealth::Ok);
    let hit = reading(&second, "cache.cache_hit_pct");
    assert_eq!(hit.value, Value::Number(75.0), "{hit:?}");
    assert_eq!(hit.samples, Some(40));
    assert!(
        hit.detail.starts_with("30 hits, 10 misses in "),
        "{}",
        hit.detail
    );
    // Since start INFO says the same here (nothing else looked anything up).
    assert_eq!(int(&info, "keyspace_hits"), 30.0);
    assert_eq!(int(&info, "keyspace_misses"), 10.0);

    // redis-cli INFO is one client more than the collector saw: its own connection.
    assert_eq!(
        number(&second, "cache.clients"),
        int(&info, "connected_clients") - 1.0
    );
    assert_eq!(number(&second, "cache.blocked_clients"), 1.0);
    assert_eq!(
        number(&second, "cache.blocked_clients"),
        int(&info, "blocked_clients")
    );
    assert_eq!(
        reading(&second, "cache.role").value,
        Value::Text(info["role"].clone())
    );
    let used = number(&second, "cache.mem_used_bytes");
    let max = int(&info, "maxmemory");
    assert_eq!(max, 64.0 * 1024.0 * 1024.0);
    // redis-cli's own connection has its buffers too: the same within 64 KiB.
    assert!(
        (used - int(&info, "used_memory")).abs() < 64.0 * 1024.0,
        "{used} vs {}",
        info["used_memory"]
    );
    let pct = number(&second, "cache.mem_pct");
    assert!((pct - 100.0 * used / max).abs() < 1e-9, "{pct}");
    assert!(
        reading(&second, "cache.mem_pct")
            .detail
            .contains("allkeys-lru")
    );
    let ping = number(&second, "cache.ping_ms");
    assert!(ping > 0.0 && ping < 1000.0, "{ping}");
    // No eviction and no refused connection in between: 0 a minute.
    assert_eq!(number(&second, "cache.evictions_per_min"), 0.0);
    assert_eq!(number(&second, "cache.rejected_conns_per_min"), 0.0);
    assert_eq!(int(&info, "evicted_keys"), 0.0);
    // A primary has no link to a master.
    assert!(
        readings(&second)
            .iter()
            .all(|r| r.id != "cache.master_link")
    );
    // The Services row: up, with the PING as its latency.
    assert!(second.iter().any(|u| matches!(u,
        Update::Service(s) if s.name == "cache" && s.up && s.kind == "redis" && s.latency_ms == Some(ping))));
    drop(blocked);
}

#[test]
fn evictions_and_rejected_connections_per_minute_follow_the_counters() {
    redis_or_skip!();
    let server = Server::start(&["--maxmemory-policy", "allkeys-lru"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut c = collector(&format!(
        "[redis.cache]\naddress = \"127.0.0.1:{}\"\ninterval = \"1s\"\n",
        server.port
    ));
    let first = poll(&rt, &mut c);
    assert_eq!(health(&first), SourceHealth::Ok, "{first:#?}");
    assert_eq!(
        reading(&first, "cache.evictions_per_min").value,
        Value::Text("no samples".into())
    );
    // No maxmemory: used bytes, no percent.
    assert!(readings(&first).iter().all(|r| r.id != "cache.mem_pct"));
    assert!(
        reading(&first, "cache.mem_used_bytes")
            .detail
            .contains("no maxmemory")
    );

    // Memory just above what is used now, then 200 values of 20 KiB: keys are evicted.
    let used = int(&server.info(), "used_memory");
    let limit = (used as u64 + 1024 * 1024).to_string();
    server.cli(&["CONFIG", "SET", "maxmemory", &limit]);
    let value = "x".repeat(20 * 1024);
    let commands: Vec<String> = (0..200).map(|i| format!("SET big{i} {value}")).collect();
    server.cli_lines(&commands);
    server.cli(&["CONFIG", "SET", "maxmemory", "0"]);
    // Room for the collector's connection alone: a connection kept open sets it (and sets
    // it back), every new one is refused.
    let mut control = server.controller();
    control.send("CONFIG SET maxclients 1");
    let mut refused = 0;
    crate::support::prometheus::eventually("connections refused", Duration::from_secs(10), || {
        server
            .cli(&["PING"])
            .contains("max number of clients")
            .then(|| refused += 1)
            .filter(|_| refused >= 3)
    });
    let second = poll(&rt, &mut c);
    control.send("CONFIG SET maxclients 100");
    crate::support::prometheus::eventually("maxclients back", Duration::from_secs(10), || {
        (server.cli(&["PING"]).trim() == "PONG").then_some(())
    });
    let info = server.info();
    let evicted = int(&info, "evicted_keys");
    assert!(evicted > 0.0, "nothing was evicted: {info:?}");
    let r = reading(&second, "cache.evictions_per_min");
    let (count, secs) = count_and_secs(&r);
    assert_eq!(count, evicted, "{r:?}");
    let per_min = number(&second, "cache.evictions_per_min");
    assert!(
        (per_min * secs / 60.0 - count).abs() <= count * 0.06,
        "{per_min}/min over {secs}s for {count}"
    );
    let rejected = int(&info, "rejected_connections");
    assert!(rejected >= 3.0, "{info:?}");
    let r = reading(&second, "cache.rejected_conns_per_min");
    let (count, secs) = count_and_secs(&r);
    assert_eq!(count, rejected, "{r:?}");
    let per_min = number(&second, "cache.rejected_conns_per_min");
    assert!(
        (per_min * secs / 60.0 - count).abs() <= count * 0.06,
        "{per_min}"
    );
    drop(control);
}

#[test]
fn a_dead_server_is_a_source_error_and_a_restart_recovers() {
    redis_or_skip!();
    let mut server = Server::start(&[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut c = collector(&format!(
        "[redis.cache]\nurl = \"{}\"\ninterval = \"1s\"\ntimeout = \"2s\"\n",
        server.url()
    ));
    assert_eq!(health(&poll(&rt, &mut c)), SourceHealth::Ok);
    server.kill();
    // The open connection breaks, then the next one is refused.
    for _ in 0..2 {
        let down = poll(&rt, &mut c);
        let SourceHealth::Error { message, .. } = health(&down) else {
            panic!("{down:#?}")
        };
        let address = format!("127.0.0.1:{}", server.port);
        assert!(message.contains(&address), "{message}");
        assert!(
            message.contains("refused") || message.contains("lost"),
            "{message}"
        );
        assert_eq!(number(&down, "cache.up"), 0.0);
        let clients = reading(&down, "cache.clients");
        assert_eq!(clients.error.as_deref(), Some(message.as_str()));
        assert!(
            down.iter()
                .any(|u| matches!(u, Update::Service(s) if !s.up))
        );
    }
    server.restart();
    let back = poll(&rt, &mut c);
    assert_eq!(health(&back), SourceHealth::Ok, "{back:#?}");
    assert_eq!(number(&back, "cache.up"), 1.0);
}

#[test]
fn a_replica_reports_its_link_to_the_master() {
    redis_or_skip!();
    let mut master = Server::start(&[]);
    let port = master.port.to_string();
    let replica = Server::start(&["--replicaof", "127.0.0.1", &port]);
    crate::support::prometheus::eventually("the replica linked", Duration::from_secs(20), || {
        (replica.info()["master_link_status"] == "up").then_some(())
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut c = collector(&format!(
        "[redis.replica]\nurl = \"{}\"\ninterval = \"1s\"\n",
        replica.url()
    ));
    let up = poll(&rt, &mut c);
    let info = replica.info();
    assert_eq!(
        reading(&up, "replica.role").value,
        Value::Text(info["role"].clone())
    );
    assert_eq!(info["role"], "slave");
    let link = reading(&up, "replica.master_link");
    assert_eq!(link.value, Value::Text(info["master_link_status"].clone()));
    assert!(
        link.detail.contains(&format!("127.0.0.1:{port}")),
        "{}",
        link.detail
    );

    master.kill();
    crate::support::prometheus::eventually("the link down", Duration::from_secs(20), || {
        (replica.info()["master_link_status"] == "down").then_some(())
    });
    let down = poll(&rt, &mut c);
    let link = reading(&down, "replica.master_link");
    assert_eq!(link.value, Value::Text("down".into()));
    // Judged by its rule: anything but "up" is critical.
    let rule = link.default_rule.clone().expect("a rule");
    assert_eq!(
        rule.judge(&link.value),
        watchpost::model::figure::Severity::Crit
    );
}

#[test]
fn metrics_pick_any_info_field() {
    redis_or_skip!();
    let server = Server::start(&[]);
    server.cli_lines(&["SET a 1".into(), "SET b 2".into()]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut c = collector(&format!(
        r#"[redis.cache]
url = "{}"

[[redis.cache.metric]]
id = "keys"
field = "db0.keys"
warn = "> 1"
for = "1m"

[[redis.cache.metric]]
id = "version"
field = "redis_version"

[[redis.cache.metric]]
id = "nothing"
field = "no_such_field"
"#,
        server.url()
    ));
    let updates = poll(&rt, &mut c);
    let keys = reading(&updates, "cache.keys");
    assert_eq!(keys.value, Value::Number(2.0));
    let rule = keys.default_rule.clone().unwrap();
    assert_eq!(rule.for_duration, Some(Duration::from_secs(60)));
    let info = server.info();
    assert_eq!(
        reading(&updates, "cache.version").value,
        Value::Text(info["redis_version"].clone())
    );
    let nothing = reading(&updates, "cache.nothing");
    assert!(nothing.error.as_deref().unwrap().contains("no_such_field"));
}

#[test]
fn check_reads_the_hit_rate_since_start_and_the_url_from_the_environment() {
    redis_or_skip!();
    let server = Server::start(&[]);
    let mut commands: Vec<String> = vec!["SET a 1".into()];
    commands.extend((0..9).map(|_| "GET a".to_string()));
    commands.push("GET b".into());
    server.cli_lines(&commands);
    let dir = tempfile::tempdir().unwrap();
    let config = crate::support::prometheus::write_config(
        dir.path(),
        "[redis.cache]\nurl = \"${WP_TEST_REDIS_URL}\"\n",
    );
    let mut command = std::process::Command::new(crate::support::check::BIN);
    command.env("WP_TEST_REDIS_URL", server.url());
    let out = crate::support::check::check_json(command, &config);
    let json = out.json;
    let find = |id: &str| crate::support::check::by_id(&json, id).clone();
    assert_eq!(find("cache.up")["value"], 1.0);
    let hit = find("cache.cache_hit_pct");
    assert_eq!(hit["value"], 90.0, "{hit:#}");
    assert!(
        hit["detail"]
            .as_str()
            .unwrap()
            .contains("since the server started")
    );
    assert_eq!(out.code, 0, "{json:#}");
}
