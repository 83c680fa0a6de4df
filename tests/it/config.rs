//! Config files and `watchpost validate`: every problem with its line and column, unknown
//! keys with the nearest valid one, `${VAR}` / `${VAR:-default}` / `~` expansion, custom SQL
//! metrics, and the shipped examples/tmws.toml.

use std::path::{Path, PathBuf};
use std::process::Command;
use watchpost::config::{Config, MetricKind};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// `watchpost validate --config FILE` with exactly the environment given (plus PATH/HOME).
fn validate(config: &Path, env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_watchpost"));
    cmd.args(["validate", "--config", config.to_str().unwrap()])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", "/home/watchpost-test");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn write(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("watchpost.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn problems(text: &str) -> Vec<String> {
    match Config::parse_checked(text) {
        Ok(_) => Vec::new(),
        Err(problems) => problems.iter().map(|p| p.to_string()).collect(),
    }
}

fn has(problems: &[String], prefix: &str, words: &[&str]) -> bool {
    problems
        .iter()
        .any(|p| p.starts_with(prefix) && words.iter().all(|w| p.contains(w)))
}

#[test]
fn every_problem_is_reported_with_line_and_column() {
    let text = r#"[deployment]
name = "tmws"
lenght = "24h"

[sqlite.tmws]
path = "/var/lib/tmws.db"
pakc = "tmws"
interval = 10

[[sqlite.tmws.metric]]
id = "slow_queries"
query = "SELECT 1"
warn = "more than 5"
kind = "chart"

[service.api]
host = "prod"

[rules."tmws.rbac.deny_pct"]
warn = "> 20"
"#;
    let got = problems(text);
    assert_eq!(got.len(), 8, "{got:#?}");
    assert!(has(&got, "line 3, column 1:", &["`lenght`", "`length`"]));
    assert!(has(&got, "line 7, column 1:", &["`pakc`", "`pack`"]));
    assert!(has(&got, "line 8, column 12:", &["`interval`", "\"5s\""]));
    assert!(has(&got, "line 13, column 8:", &["`warn`", "more than 5"]));
    assert!(has(
        &got,
        "line 14, column 8:",
        &["\"chart\"", "number, table"]
    ));
    assert!(has(&got, "line 16, column 10:", &["health_url, systemd"]));
    assert!(has(&got, "line 17, column 8:", &["\"prod\"", "[hosts]"]));
    // (The source has no pack, `pakc` being a typo, so only its own figures exist.)
    assert!(has(
        &got,
        "line 19, column 8:",
        &["tmws.rbac.deny_pct", "no figure \"rbac.deny_pct\""]
    ));
    // In file order.
    let mut sorted = got.clone();
    sorted.sort_by_key(|p| {
        let line: usize = p[5..p.find(',').unwrap()].parse().unwrap();
        line
    });
    assert_eq!(got, sorted);
}

#[test]
fn unknown_keys_name_the_nearest_valid_one() {
    let got = problems("[sqllite.tmws]\npath = \"x\"\n");
    assert!(
        has(&got, "line 1, column 2:", &["`sqllite`", "`sqlite`"]),
        "{got:#?}"
    );
    let got = problems("[logs.app]\nfiles = [\"/x\"]\nerror_patern = \"x\"\n");
    assert!(
        has(
            &got,
            "line 3, column 1:",
            &["`error_patern`", "nearest valid key is `error_pattern`"]
        ),
        "{got:#?}"
    );
    let got = problems(
        "[sqlite.db]\npath = \"x\"\n[[sqlite.db.metric]]\nid = \"a\"\nqurey = \"SELECT 1\"\n",
    );
    assert!(
        has(&got, "line 5, column 1:", &["`qurey`", "`query`"]),
        "{got:#?}"
    );
    assert!(
        has(&got, "line 4, column 1:", &["needs `query`"]),
        "{got:#?}"
    );
    let got = problems("[system.h]\nhost = \"lcoal\"\n[hosts.local2]\nssh = \"x\"\n");
    assert!(has(&got, "line 2, column 8:", &["\"lcoal\""]), "{got:#?}");
    let got = problems(
        "[sqlite.tmws]\npath = \"x\"\npack = \"tmws\"\n[rules.\"tmws.rbac.deny_pct\"]\nwarn = \"> 1\"\n[rules.\"tmsw.db.size_mb\"]\nwarn = \"> 1\"\n",
    );
    assert!(
        has(
            &got,
            "line 4, column 8:",
            &["nearest is \"tmws.rbac.deny_pct_1h\""]
        ),
        "{got:#?}"
    );
    assert!(
        has(
            &got,
            "line 6, column 8:",
            &["no source is named \"tmsw\"", "\"tmws\""]
        ),
        "{got:#?}"
    );
    let got = problems("[sqlite.db]\npath = \"x\"\npack = \"tmsw\"\n");
    assert!(
        has(
            &got,
            "line 3, column 8:",
            &["\"tmsw\"", "nearest is \"tmws\""]
        ),
        "{got:#?}"
    );
}

#[test]
fn toml_syntax_errors_have_a_place() {
    let got = problems("[deployment]\nname = \"x\nlength = \"1h\"\n");
    assert!(!got.is_empty());
    assert!(got[0].starts_with("line 2,"), "{got:#?}");
    assert!(got[0].contains("TOML syntax"), "{got:#?}");
}

#[test]
fn metrics_are_read_per_source() {
    let config = Config::parse(
        r#"
[sqlite.tmws]
path = "/x.db"
pack = "tmws"

[[sqlite.tmws.metric]]
id = "slow_queries"
query = "SELECT count(*) FROM q WHERE details ->> '$.ms' > 500"
unit = "queries"
warn = "> 5"
crit = "> 20"

[[sqlite.tmws.metric]]
id = "recent.roles"
name = "role changes"
kind = "table"
query = "SELECT agent_id, role FROM agents"
priority = "P3"

[rules."tmws.slow_queries"]
warn = "> 1"
"#,
    )
    .unwrap();
    let metrics = &config.metrics["tmws"];
    assert_eq!(metrics.len(), 2);
    assert_eq!(metrics[0].kind, MetricKind::Number);
    assert_eq!(
        metrics[0].query, "SELECT count(*) FROM q WHERE details ->> '$.ms' > 500",
        "queries are taken as written, $ and all"
    );
    assert_eq!(metrics[0].rule().unwrap().describe(), "warn > 5, crit > 20");
    assert_eq!(metrics[1].kind, MetricKind::Table);
    assert!(metrics[1].rule().is_none());
    assert_eq!(config.sqlite["tmws"].path, "/x.db");

    let got = problems(
        "[sqlite.a]\npath = \"x\"\n[[sqlite.a.metric]]\nid = \"m\"\nquery = \"SELECT 1\"\n[[sqlite.a.metric]]\nid = \"m\"\nquery = \"SELECT 2\"\n[[sqlite.a.metric]]\nid = \"db.size_mb\"\nquery = \"\"\n",
    );
    assert!(
        has(&got, "line 7, column 6:", &["two metrics", "\"m\""]),
        "{got:#?}"
    );
    assert!(
        has(&got, "line 10, column 6:", &["already a figure"]),
        "{got:#?}"
    );
    assert!(has(&got, "", &["the query is empty"]), "{got:#?}");
}

#[test]
fn env_vars_defaults_and_home_expand() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        r#"
[deployment]
name = "${WP_NAME}"

[sqlite.tmws]
path = "${WP_DB}"
pack = "tmws"

[logs.app]
files = ["${WP_LOG:-~/logs/app.jsonl}", "~/other.log"]
"#,
    );
    let r = validate(
        &config,
        &[("WP_NAME", "prod-tmws"), ("WP_DB", "/data/tmws.db")],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("deployment \"prod-tmws\""),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("sqlite tmws: /data/tmws.db"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("/home/watchpost-test/logs/app.jsonl, /home/watchpost-test/other.log"),
        "{}",
        r.stdout
    );
    let r = validate(
        &config,
        &[
            ("WP_NAME", "x"),
            ("WP_DB", "/d.db"),
            ("WP_LOG", "/var/log/app.jsonl"),
        ],
    );
    assert!(
        r.stdout.contains("logs app: /var/log/app.jsonl"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_missing_env_var_is_an_error_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "[deployment]\nname = \"x\"\n\n[sqlite.tmws]\npath = \"${WP_MISSING_DB}\"\npack = \"tmws\"\n\n[logs.app]\nfiles = [\"/ok\", \"${WP_MISSING_LOG}\"]\n",
    );
    let r = validate(&config, &[]);
    assert_ne!(r.code, 0);
    let file = config.display().to_string();
    assert!(
        r.stderr.contains(&format!(
            "{file}: line 5, column 8: `path` in [sqlite.tmws]"
        )),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("WP_MISSING_DB"), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("{file}: line 9, column 17:"))
            && r.stderr.contains("WP_MISSING_LOG"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("${WP_MISSING_DB:-"),
        "suggests a default: {}",
        r.stderr
    );
}

/// The shipped example for seeds 000 and 002 is valid, with the environment pointing at
/// files of this test and with nothing set (the runbook's defaults).
#[test]
fn examples_tmws_toml_validates() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tmws.toml");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tmws.db");
    let log = dir.path().join("tmws.jsonl");
    std::fs::write(&log, "").unwrap();
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(include_str!("../../assets/tmws_schema.sql"))
        .unwrap();
    let r = validate(
        &example,
        &[
            ("TMWS_DB", db.to_str().unwrap()),
            ("TMWS_LOG", log.to_str().unwrap()),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains(&format!("sqlite tmws: {}", db.display())),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&log.display().to_string()),
        "{}",
        r.stdout
    );
    for id in [
        "tmws.rbac.deny_pct_1h",
        "tmws.license.failure_pct_1h",
        "tmws.audit.volume_24h",
        "tmws.license.generation_ms_7d",
    ] {
        assert!(r.stdout.contains(id), "{id}: {}", r.stdout);
    }
    assert!(r.stdout.contains("tmws-api.up"), "{}", r.stdout);
    for id in [
        "tmws-log.cleanup_failed_1h",
        "tmws-log.tool_timeouts_1h",
        "tmws-log.tool_latency_p95",
        "tmws-log.skill_registration_failed_1h",
    ] {
        assert!(r.stdout.contains(id), "{id}: {}", r.stdout);
    }
    assert!(r.stdout.contains("config OK"));

    let r = validate(&example, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("sqlite tmws: /home/watchpost-test/.tmws/data/tmws.db on local"),
        "{}",
        r.stdout
    );
    let config = Config::parse(&std::fs::read_to_string(&example).unwrap()).unwrap();
    assert_eq!(
        config.sqlite["tmws"].expected_migration.as_deref(),
        Some("571948cc671b")
    );
    assert_eq!(config.service["tmws-api"].systemd.as_deref(), Some("tmws"));
    assert_eq!(
        config.service["tmws-api"].health_url.as_deref(),
        Some("http://localhost:8000/health")
    );
    let deny = &config.rules["tmws.rbac.deny_pct_1h"];
    assert_eq!(deny.describe(), "warn > 20, crit > 50, priority P1");
    assert_eq!(
        config.rules["tmws.license.generated_1h"].describe(),
        "crit > 1000, priority P1"
    );
    assert_eq!(
        config.rules["tmws.license.expiring_7d"].describe(),
        "warn > 100, priority P2"
    );
    assert_eq!(
        config.rules["tmws.db.freelist"].describe(),
        "warn > 1000, priority P2"
    );
}

/// `watchpost check --format json` on `config` with `env`: the exit code and the checks.
fn check_json(
    config: &Path,
    env: &[(&str, &std::ffi::OsStr)],
) -> (Option<i32>, Vec<serde_json::Value>) {
    let out = Command::new(env!("CARGO_BIN_EXE_watchpost"))
        .args(["check", "--config", config.to_str().unwrap()])
        .args(["--format", "json"])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (
        out.status.code(),
        json["checks"].as_array().unwrap().clone(),
    )
}

fn check_by_id(checks: &[serde_json::Value], id: &str) -> serde_json::Value {
    checks
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("{id}: {checks:?}"))
        .clone()
}

/// The shipped example for seed 001 is valid with nothing set (the runbook's /logs) and
/// with FOSSAWORK_LOGS pointing elsewhere, and names the runbook's thresholds.
#[test]
fn examples_fossawork_toml_validates() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fossawork.toml");
    let r = validate(&example, &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("logs errors: /logs/errors/*.jsonl on local"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("logs api: /logs/performance/*.jsonl on local"),
        "{}",
        r.stdout
    );
    for id in [
        "api.response_p95_s",
        "api.response_p99_s",
        "api.error_rate_pct",
        "api.5xx_pct",
        "errors.errors_1h",
        "fossawork-host.cpu_pct",
        "backend.up",
        "frontend.up",
    ] {
        assert!(r.stdout.contains(id), "{id}: {}", r.stdout);
    }
    assert!(r.stdout.contains("config OK"));
    let r = validate(
        &example,
        &[
            ("FOSSAWORK_LOGS", "/srv/fossa/logs"),
            ("FOSSAWORK_HOST", "ssh://ops@fossa.invalid"),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("/srv/fossa/logs/performance/*.jsonl on ssh://ops@fossa.invalid"),
        "{}",
        r.stdout
    );

    let config = Config::parse(&std::fs::read_to_string(&example).unwrap()).unwrap();
    let metric = |source: &str, id: &str| {
        config.logs[source]
            .metrics
            .iter()
            .find(|m| m.id == id)
            .unwrap_or_else(|| panic!("{source}.{id}"))
            .rule
            .describe()
    };
    assert_eq!(
        metric("api", "response_p95_s"),
        "warn > 3, crit > 10, priority P1, judged from 20 samples"
    );
    assert_eq!(
        metric("api", "response_p99_s"),
        "warn > 7, crit > 15, priority P2, judged from 100 samples"
    );
    assert_eq!(
        metric("api", "error_rate_pct"),
        "warn > 1, crit > 5, priority P1, judged from 20 samples"
    );
    assert_eq!(
        config.rules["fossawork-host.cpu_pct"].describe(),
        "warn > 70, crit > 85, priority P2"
    );
    assert_eq!(
        config.rules["fossawork-host.mem_pct"].describe(),
        "warn > 80, crit > 90, priority P1"
    );
    assert_eq!(
        config.rules["fossawork-host.disk_pct"].describe(),
        "warn > 80, crit > 90, priority P1"
    );
}

/// `check` on the seed 001 example over a real log directory: the response-time p95 of
/// the performance log is judged against the runbook's 3 s / 10 s.
#[test]
fn examples_fossawork_toml_judges_response_times_from_the_logs() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fossawork.toml");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("performance")).unwrap();
    std::fs::create_dir_all(dir.path().join("errors")).unwrap();
    let now = chrono::Utc::now();
    let mut performance = String::new();
    // 100 requests: 90 quick, 10 at 4.5 s: p95 is 4.5 s (warn), two with an error_type.
    for i in 0..100 {
        let at = (now - chrono::Duration::seconds(100 - i)).to_rfc3339();
        let time = if i % 10 == 0 { 4.5 } else { 0.2 };
        let error = if i % 50 == 0 {
            r#", "error_type": "TimeoutError""#
        } else {
            ""
        };
        performance.push_str(&format!(
            r#"{{"timestamp": "{at}", "endpoint": "/api/work-orders", "response_time": {time}, "status_code": 200{error}}}"#
        ));
        performance.push('\n');
    }
    std::fs::write(dir.path().join("performance/2026-12-02.jsonl"), performance).unwrap();
    std::fs::write(
        dir.path().join("errors/2026-12-02.jsonl"),
        format!(
            "{{\"timestamp\": \"{}\", \"error_type\": \"DatabaseError\", \"message\": \"database is locked\"}}\n",
            now.to_rfc3339()
        ),
    )
    .unwrap();
    // Nothing listens on port 9: the services are down, the logs are still read.
    let (code, checks) = check_json(
        &example,
        &[
            ("FOSSAWORK_LOGS", dir.path().as_os_str()),
            ("FOSSAWORK_API", "http://127.0.0.1:9".as_ref()),
            ("FOSSAWORK_WEB", "http://127.0.0.1:9".as_ref()),
        ],
    );
    let check = |id: &str| check_by_id(&checks, id);
    let p95 = check("api.response_p95_s");
    assert_eq!(p95["value"], 4.5, "{p95}");
    assert_eq!(p95["severity"], "warn", "{p95}");
    let rate = check("api.error_rate_pct");
    assert_eq!(rate["value"], 2.0, "{rate}");
    assert_eq!(rate["severity"], "warn", "{rate}");
    assert_eq!(check("errors.errors_1h")["value"], 1.0);
    assert_eq!(check("backend.up")["severity"], "crit");
    assert_eq!(code, Some(2), "the backend is down: CRIT");
}

/// `check` on the seed 000+002 example with seed 002's events in its log: over 10 tool
/// timeouts in the hour warn, one SCHEDULER_CLEANUP_FAILED is critical at once, and the
/// tool latency p95 is judged against 5000 ms.
#[test]
fn examples_tmws_toml_judges_seed_002_events() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tmws.toml");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tmws.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(include_str!("../../assets/tmws_schema.sql"))
        .unwrap();
    let now = chrono::Utc::now();
    let at = |secs: i64| (now - chrono::Duration::seconds(secs)).to_rfc3339();
    let mut log = String::new();
    for i in 0..11 {
        log.push_str(&format!(
            r#"{{"timestamp": "{}", "level": "WARNING", "message": "Tool outcome recorded: get-library-docs - timeout", "tool_name": "get-library-docs", "outcome": "timeout", "latency_ms": 30000.0, "error_type": "TimeoutError"}}"#,
            at(600 - i * 10)
        ));
        log.push('\n');
    }
    for i in 0..9 {
        log.push_str(&format!(
            r#"{{"timestamp": "{}", "level": "DEBUG", "message": "Tool outcome recorded: search_memories - success", "outcome": "success", "latency_ms": 45.23}}"#,
            at(300 - i * 10)
        ));
        log.push('\n');
    }
    log.push_str(&format!(
        r#"{{"timestamp": "{}", "level": "ERROR", "message": "Scheduled expiration cleanup failed", "error_type": "OperationalError", "monitoring_event": "SCHEDULER_CLEANUP_FAILED"}}"#,
        at(5)
    ));
    log.push('\n');
    let log_path = dir.path().join("tmws.jsonl");
    std::fs::write(&log_path, log).unwrap();
    let (_, checks) = check_json(
        &example,
        &[
            ("TMWS_DB", db.as_os_str()),
            ("TMWS_LOG", log_path.as_os_str()),
        ],
    );
    let check = |id: &str| check_by_id(&checks, id);
    let timeouts = check("tmws-log.tool_timeouts_1h");
    assert_eq!(
        (timeouts["value"].clone(), timeouts["severity"].clone()),
        (11.0.into(), "warn".into()),
        "{timeouts}"
    );
    let cleanup = check("tmws-log.cleanup_failed_1h");
    assert_eq!(
        (cleanup["value"].clone(), cleanup["severity"].clone()),
        (1.0.into(), "crit".into()),
        "{cleanup}"
    );
    // 20 latencies, 11 of them 30 s: the p95 is 30000 ms, over 5000.
    let latency = check("tmws-log.tool_latency_p95");
    assert_eq!(
        (latency["value"].clone(), latency["severity"].clone()),
        (30000.0.into(), "warn".into()),
        "{latency}"
    );
    assert_eq!(
        check("tmws-log.skill_registration_failed_1h")["severity"],
        "ok"
    );
}

#[test]
fn docker_log_sources_are_known_to_validate() {
    let ok = problems(
        "[logs.backend-logs]\ndocker = [\"backend\", \"worker\"]\nproject = \"warungin\"\ntail = 50\n",
    );
    assert!(ok.is_empty(), "{ok:#?}");
    let config = Config::parse(
        "[logs.backend-logs]\ndocker = [\"backend\"]\nproject = \"${WP_NO_SUCH_PROJECT:-shop}\"\n",
    )
    .unwrap();
    let source = &config.logs["backend-logs"];
    assert_eq!(source.docker, ["backend"]);
    assert_eq!(source.project.as_deref(), Some("shop"));
    assert_eq!(
        source.tail, 100_000,
        "the default tail: a cap, the window decides"
    );

    let got = problems("[logs.b]\ndokcer = [\"backend\"]\n");
    assert!(
        has(
            &got,
            "line 2, column 1:",
            &["`dokcer`", "nearest valid key is `docker`"]
        ),
        "{got:#?}"
    );
    let got = problems("[logs.b]\ndocker = [\"backend\"]\ntial = 5\n");
    assert!(
        has(&got, "line 3, column 1:", &["`tial`", "`tail`"]),
        "{got:#?}"
    );
    let got = problems("[logs.b]\ndocker = [\"backend\"]\nfiles = [\"/x\"]\n");
    assert!(
        has(
            &got,
            "line 1, column 7:",
            &["give only one of files, journald, command and docker"]
        ),
        "{got:#?}"
    );
    let got = problems("[logs.b]\ndocker = [\"backend\"]\ntail = \"lots\"\n");
    assert!(!got.is_empty(), "a tail that is not a number");
}

// ------------------------------------------------ every mistake has a place, no panic

#[test]
fn a_byte_that_is_not_utf8_is_placed_by_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("watchpost.toml");
    let mut bytes = b"[deployment]\nname = \"caf".to_vec();
    bytes.push(0xe9); // Latin-1 é
    bytes.extend_from_slice(b"\"\n");
    std::fs::write(&path, &bytes).unwrap();
    let error = Config::load(&path).unwrap_err();
    assert_eq!(error.problems.len(), 1, "{error}");
    assert_eq!((error.problems[0].line, error.problems[0].column), (2, 12));
    let text = error.to_string();
    assert!(
        text.contains("line 2, column 12") && text.contains("0xe9"),
        "{text}"
    );
}

#[test]
fn intervals_below_the_minimum_and_durations_past_a_year_are_refused() {
    let base = "[deployment]\nname = \"x\"\n\n[system.box]\nhost = \"local\"\n";
    for (interval, want) in [("0s", "minimum of 1s"), ("250ms", "minimum of 1s")] {
        let error = Config::parse(&format!("{base}interval = \"{interval}\"\n")).unwrap_err();
        assert!(
            error.contains("line 6") && error.contains(want),
            "{interval}: {error}"
        );
    }
    assert!(Config::parse(&format!("{base}interval = \"1s\"\n")).is_ok());
    let error = Config::parse("[deployment]\nlength = \"999999999h\"\n").unwrap_err();
    assert!(
        error.contains("line 2") && error.contains("longer than"),
        "{error}"
    );
}

#[test]
fn a_timeout_that_outlasts_the_no_data_judgement_is_refused() {
    let base =
        "[deployment]\nname = \"x\"\n\n[service.api]\nhealth_url = \"http://127.0.0.1:1/\"\n";
    // interval 2s: no data after max(3 × 2s, 15s) = 15s; 20s would page "no data" first.
    let error = Config::parse(&format!("{base}timeout = \"20s\"\n")).unwrap_err();
    assert!(
        error.contains("line 6, column 11")
            && error.contains("timeout 20s is not shorter than 15s")
            && error.contains("interval 2s"),
        "{error}"
    );
    assert!(Config::parse(&format!("{base}timeout = \"14s\"\n")).is_ok());
    // A longer interval makes room for it: no data after 3 × 10s = 30s.
    assert!(Config::parse(&format!("{base}timeout = \"20s\"\ninterval = \"10s\"\n")).is_ok());
    let prom = "[deployment]\nname = \"x\"\n\n[prometheus.p]\nurl = \"http://127.0.0.1:9/\"\ntimeout = \"45s\"\n";
    let error = Config::parse(prom).unwrap_err();
    assert!(
        error.contains("[prometheus.p]: timeout 45s is not shorter than 45s"),
        "{error}"
    );
}

#[test]
fn a_read_back_size_is_parsed_or_placed() {
    let base = "[deployment]\nname = \"x\"\n\n[logs.app]\nfiles = [\"/var/log/app.log\"]\n";
    let config = Config::parse(&format!("{base}read_back = \"64MiB\"\n")).unwrap();
    assert_eq!(config.logs["app"].read_back, 64 * 1024 * 1024);
    assert_eq!(
        Config::parse(base).unwrap().logs["app"].read_back,
        512 * 1024 * 1024
    );
    let error = Config::parse(&format!("{base}read_back = \"lots\"\n")).unwrap_err();
    assert!(
        error.contains("line 6, column 13") && error.contains("is not a size like"),
        "{error}"
    );
}

mod mutated_examples {
    use super::*;
    use proptest::prelude::*;

    fn examples() -> Vec<Vec<u8>> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        files.sort();
        files.iter().map(|p| std::fs::read(p).unwrap()).collect()
    }

    #[derive(Debug, Clone)]
    enum Edit {
        Set(usize, u8),
        Insert(usize, u8),
        Delete(usize),
    }

    fn edit() -> impl Strategy<Value = Edit> {
        prop_oneof![
            (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Edit::Set(at, b)),
            (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Edit::Insert(at, b)),
            any::<usize>().prop_map(Edit::Delete),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

        /// Any example config with a few bytes changed loads, or fails with every problem
        /// placed by line and column; never a panic.
        #[test]
        fn loads_or_fails_with_a_place(which in any::<usize>(), edits in prop::collection::vec(edit(), 1..4)) {
            let all = examples();
            let mut bytes = all[which % all.len()].clone();
            for e in edits {
                let n = bytes.len().max(1);
                match e {
                    Edit::Set(at, b) if !bytes.is_empty() => bytes[at % n] = b,
                    Edit::Insert(at, b) => bytes.insert(at % (bytes.len() + 1), b),
                    Edit::Delete(at) if !bytes.is_empty() => { bytes.remove(at % n); }
                    _ => {}
                }
            }
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("mutated.toml");
            std::fs::write(&path, &bytes).unwrap();
            if let Err(error) = Config::load(&path) {
                prop_assert!(!error.problems.is_empty(), "no place: {error}");
                for p in &error.problems {
                    prop_assert!(p.line >= 1 && p.column >= 1, "{error}");
                }
            }
        }
    }
}
