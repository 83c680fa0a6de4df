//! Prometheus and Alertmanager sources against the real servers from Debian's packages,
//! started on 127.0.0.1 by the tests (see support/prometheus.rs). Prometheus scrapes an
//! exporter the test runs, serving seed 004's metric names with values the test sets,
//! and evaluates a rule file with a short `for`.

use crate::support::net::ClosedPort;
use crate::support::prometheus;

use prometheus::{Exporter, eventually, http_get, http_post_json, write_config};
use std::process::Command;
use std::time::Duration;

/// Runs the real binary's `check --format json`: (exit code, the JSON).
fn check_json(config: &std::path::Path) -> (i32, serde_json::Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_watchpost"))
        .args(["check", "--format", "json", "--config"])
        .arg(config)
        .output()
        .expect("run watchpost check");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check printed no JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), json)
}

fn find<'a>(json: &'a serde_json::Value, id: &str) -> Option<&'a serde_json::Value> {
    json["checks"]
        .as_array()?
        .iter()
        .find(|c| c["id"].as_str() == Some(id))
}

fn ids(json: &serde_json::Value) -> Vec<String> {
    json["checks"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["id"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

const NO_RULES: &str = "groups: []\n";

/// Seed 004's alert rules with a `for` short enough for a test.
const RULES: &str = r#"groups:
  - name: meatymusic-security
    rules:
      - alert: SecurityBoundaryViolationCritical
        expr: sum(rate(meatymusic_security_boundary_violations_total[5s])) > 10
        for: 2s
        labels:
          severity: critical
        annotations:
          summary: "More than 10 security boundary violations per second"
      - alert: SecurityCachePerformancePoor
        expr: meatymusic_security_contexts_active > 1000
        for: 1s
        labels:
          severity: info
"#;

/// Waits until Prometheus has scraped the exporter at least twice (rates need two samples).
fn wait_scraped(prom: &prometheus::Server) {
    wait_scrapes(prom, 2);
}

/// Waits until Prometheus has scraped the exporter `n` times.
fn wait_scrapes(prom: &prometheus::Server, n: usize) {
    eventually(
        &format!("{n} scrapes of the exporter"),
        Duration::from_secs(30),
        || {
            let url = format!(
                "{}/api/v1/query?query=count_over_time(up%5B1m%5D)",
                prom.url()
            );
            let (_, body) = http_get(&url).ok()?;
            let json: serde_json::Value = serde_json::from_str(&body).ok()?;
            let seen: f64 = json["data"]["result"][0]["value"][1]
                .as_str()?
                .parse()
                .ok()?;
            (seen >= n as f64).then_some(())
        },
    );
}

#[test]
fn promql_figures_follow_the_exporter_in_check_json() {
    prometheus_or_skip!();
    let exporter = Exporter::start();
    exporter.gauge(
        r#"meatymusic_security_contexts_active{instance="api-1"}"#,
        5.0,
    );
    exporter.gauge(
        r#"meatymusic_security_contexts_active{instance="api-2"}"#,
        7.0,
    );
    exporter.counter_rate(r#"meatymusic_auth_failures_total{auth_method="jwt"}"#, 4.0);
    let prom = prometheus::prometheus(&exporter.target(), NO_RULES, None);
    wait_scraped(&prom);

    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            r#"
[deployment]
name = "meatymusic"

[prometheus.mm]
url = "{url}"
interval = "1s"
history = "0s"

[[prometheus.mm.figure]]
id = "contexts_total"
name = "security contexts"
query = "sum(meatymusic_security_contexts_active)"
warn = "> 100"

[[prometheus.mm.figure]]
id = "contexts"
query = "meatymusic_security_contexts_active"
by = ["instance"]

[[prometheus.mm.figure]]
id = "auth_failures_per_s"
query = "sum(rate(meatymusic_auth_failures_total[5s]))"
unit = "/s"
"#,
            url = prom.url()
        ),
    );
    let (_, json) = check_json(&config);
    let total = find(&json, "mm.contexts_total").unwrap_or_else(|| panic!("{json:#}"));
    assert_eq!(total["value"], 12.0, "{total:#}");
    assert_eq!(total["severity"], "ok");
    // A vector: one figure per instance, named by its label.
    let api1 = find(&json, "mm.contexts.api-1").unwrap_or_else(|| panic!("{:?}", ids(&json)));
    assert_eq!(api1["value"], 5.0);
    assert!(
        api1["name"]
            .as_str()
            .unwrap()
            .contains(r#"instance="api-1""#)
    );
    assert_eq!(find(&json, "mm.contexts.api-2").unwrap()["value"], 7.0);
    assert!(find(&json, "mm.auth_failures_per_s").unwrap()["value"].is_number());
    // The counter grows by 4/s; once a few scrapes are in, the rate says so.
    eventually("a rate of about 4/s", Duration::from_secs(20), || {
        let (_, json) = check_json(&config);
        let rate = find(&json, "mm.auth_failures_per_s")?["value"].as_f64()?;
        (3.0..=5.0).contains(&rate).then_some(())
    });

    // The exporter changes; the figure follows, and the threshold turns it WARN.
    exporter.gauge(
        r#"meatymusic_security_contexts_active{instance="api-2"}"#,
        200.0,
    );
    let (code, json) = eventually("the new value in check", Duration::from_secs(20), || {
        let (code, json) = check_json(&config);
        let total = find(&json, "mm.contexts_total")?.clone();
        (total["value"] == 205.0).then_some((code, json))
    });
    assert_eq!(
        find(&json, "mm.contexts_total").unwrap()["severity"],
        "warn"
    );
    assert_eq!(json["worst"], "warn");
    assert_eq!(code, 1);
}

#[test]
fn unreachable_bad_promql_empty_and_nan_are_each_shown_for_what_they_are() {
    prometheus_or_skip!();
    let exporter = Exporter::start();
    exporter.gauge("meatymusic_security_contexts_active", 3.0);
    let prom = prometheus::prometheus(&exporter.target(), NO_RULES, None);
    wait_scraped(&prom);
    let closed_port = ClosedPort::new();
    let closed = closed_port.port;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            r#"
[prometheus.mm]
url = "{url}"
history = "0s"

[[prometheus.mm.figure]]
id = "bad"
query = "sum(rate(meatymusic_auth_failures_total[5m])"

[[prometheus.mm.figure]]
id = "empty"
query = "meatymusic_no_such_metric"

[[prometheus.mm.figure]]
id = "nan"
query = "0 / 0"

[[prometheus.mm.figure]]
id = "fine"
query = "sum(meatymusic_security_contexts_active)"

[prometheus.gone]
url = "http://127.0.0.1:{closed}"
history = "0s"

[[prometheus.gone.figure]]
id = "contexts"
query = "meatymusic_security_contexts_active"
"#,
            url = prom.url()
        ),
    );
    let (code, json) = check_json(&config);
    let get = |id: &str| find(&json, id).unwrap_or_else(|| panic!("no {id} in {json:#}"));

    // Bad PromQL: Prometheus's own message.
    let bad = get("mm.bad");
    let error = bad["error"].as_str().expect("an error");
    assert!(
        error.contains("PromQL bad_data") && error.contains("parse error"),
        "{error}"
    );
    assert_eq!(bad["severity"], "unknown");
    assert!(bad["value"].is_null());

    // Empty: no value, no error, said in the detail.
    let empty = get("mm.empty");
    assert!(
        empty["value"].is_null() && empty["error"].is_null(),
        "{empty:#}"
    );
    assert!(
        empty["detail"]
            .as_str()
            .unwrap()
            .starts_with("empty result"),
        "{empty:#}"
    );
    assert_eq!(empty["severity"], "unknown");

    // NaN: the text NaN, not a missing value.
    let nan = get("mm.nan");
    assert_eq!(nan["value"], "NaN", "{nan:#}");
    assert!(nan["error"].is_null());
    assert!(nan["detail"].as_str().unwrap().contains("not a number"));
    assert_eq!(nan["severity"], "unknown");

    // The good figure of the same source is unaffected.
    assert_eq!(get("mm.fine")["value"], 3.0);

    // Unreachable server: the figure says so, with the address.
    let gone = get("gone.contexts");
    let error = gone["error"].as_str().expect("an error");
    assert!(
        error.contains(&format!(
            "cannot reach Prometheus at http://127.0.0.1:{closed}"
        )),
        "{error}"
    );
    assert!(error.to_lowercase().contains("refused"), "{error}");
    assert_eq!(json["worst"], "unknown");
    assert_eq!(code, 3);
}

/// Polls every collector of `config` once and applies the updates to `state` at `now`.
fn poll_into(
    runtime: &tokio::runtime::Runtime,
    collectors: &mut [Box<dyn watchpost::collect::Collector>],
    state: &mut watchpost::state::AppState,
    now: chrono::DateTime<chrono::Utc>,
) {
    for collector in collectors.iter_mut() {
        for update in runtime.block_on(collector.poll()) {
            state.apply(update, now);
        }
    }
}

/// The Alerts pane as text, 140 columns wide.
fn alerts_pane(state: &watchpost::state::AppState, now: chrono::DateTime<chrono::Utc>) -> String {
    use ratatui::{Terminal, backend::TestBackend};
    let mut terminal = Terminal::new(TestBackend::new(140, 12)).unwrap();
    let ui = watchpost::ui::UiState::default();
    let theme = watchpost::ui::theme::Theme::built_in("default").unwrap();
    terminal
        .draw(|frame| {
            let ctx = watchpost::ui::PaneContext {
                state,
                ui: &ui,
                theme: &theme,
                focused: false,
                zoomed: false,
                now,
            };
            watchpost::ui::panes::alerts::render(frame, frame.area(), &ctx);
        })
        .unwrap();
    let buffer = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..buffer.area.height {
        for x in 0..buffer.area.width {
            out.push_str(buffer[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

/// The alerts Alertmanager lists now, as JSON.
fn alertmanager_alerts(am: &prometheus::Server) -> Vec<serde_json::Value> {
    http_get(&format!("{}/api/v2/alerts", am.url()))
        .ok()
        .and_then(|(_, body)| serde_json::from_str::<Vec<serde_json::Value>>(&body).ok())
        .unwrap_or_default()
}

fn named<'a>(alerts: &'a [serde_json::Value], name: &str) -> Option<&'a serde_json::Value> {
    alerts
        .iter()
        .find(|a| a["labels"]["alertname"].as_str() == Some(name))
}

#[test]
fn a_rule_with_for_fires_reaches_alertmanager_and_watchpost_shows_it() {
    use watchpost::model::figure::Severity;
    use watchpost::state::alerts::AlertState;
    prometheus_or_skip!();
    const VIOLATIONS: &str = r#"meatymusic_security_boundary_violations_total{violation_type="rls_bypass",table_name="songs"}"#;
    let exporter = Exporter::start();
    exporter.counter_rate(VIOLATIONS, 0.0);
    exporter.gauge("meatymusic_security_contexts_active", 10.0);
    let am = prometheus::alertmanager();
    let prom = prometheus::prometheus(&exporter.target(), RULES, Some(am.port));
    wait_scraped(&prom);

    let dir = tempfile::tempdir().unwrap();
    let config_path = write_config(
        dir.path(),
        &format!(
            r#"
[deployment]
name = "meatymusic"

[prometheus.mm]
url = "{prom}"
interval = "1s"
history = "0s"

[[prometheus.mm.figure]]
id = "violations_per_s"
name = "boundary violations/s"
query = "sum(rate(meatymusic_security_boundary_violations_total[5s]))"
unit = "/s"
crit = "> 10"
for = "2s"
priority = "P0"

[alertmanager.am]
url = "{am}"
interval = "1s"
"#,
            prom = prom.url(),
            am = am.url()
        ),
    );

    // Quiet: nothing fires anywhere.
    let (code, json) = check_json(&config_path);
    assert_eq!(code, 0, "{json:#}");
    assert_eq!(find(&json, "am.active").unwrap()["value"], 0.0);

    // 50 violations a second: Prometheus's rule (for: 2s) fires and reaches Alertmanager.
    exporter.counter_rate(VIOLATIONS, 50.0);
    let alert = eventually(
        "SecurityBoundaryViolationCritical in Alertmanager",
        Duration::from_secs(30),
        || {
            named(
                &alertmanager_alerts(&am),
                "SecurityBoundaryViolationCritical",
            )
            .cloned()
        },
    );
    assert_eq!(alert["labels"]["severity"], "critical");

    // `check` shows both: the figure over its threshold and Alertmanager's alert.
    let (code, json) = check_json(&config_path);
    assert_eq!(code, 2, "{json:#}");
    assert_eq!(
        find(&json, "mm.violations_per_s").unwrap()["severity"],
        "crit"
    );
    let listed = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("am.SecurityBoundaryViolationCritical."))
        })
        .unwrap_or_else(|| panic!("no Alertmanager alert in {json:#}"));
    assert_eq!(listed["severity"], "crit");
    assert_eq!(
        listed["value"],
        "More than 10 security boundary violations per second"
    );

    // The dashboard's state: the figure's own `for` (2s) keeps it pending first; the
    // Alertmanager alert is firing at once, with its labels and start time.
    let config = watchpost::config::Config::load(&config_path).unwrap();
    let pool = watchpost::transport::HostPool::from_config(&config).unwrap();
    let mut collectors = watchpost::collect::from_config(&config, &pool, None);
    let start = chrono::Utc::now();
    let window = watchpost::state::Window::new("meatymusic", start, chrono::Duration::hours(24));
    let mut state = watchpost::app::initial_state(window, &collectors, &config);
    state.enable_outbox();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    poll_into(&runtime, &mut collectors, &mut state, start);
    let own = |state: &watchpost::state::AppState| {
        state
            .alerts
            .active
            .iter()
            .find(|a| a.id == "mm.violations_per_s")
            .map(|a| a.state)
    };
    assert_eq!(own(&state), Some(AlertState::Pending));
    let external = state
        .alerts
        .active
        .iter()
        .find(|a| a.id.starts_with("am.SecurityBoundaryViolationCritical."))
        .unwrap_or_else(|| panic!("{:#?}", state.alerts.active))
        .clone();
    assert_eq!(external.state, AlertState::Firing);
    assert_eq!(external.severity, Severity::Crit);
    assert!(
        external.name.contains("{severity=critical}"),
        "{}",
        external.name
    );
    let starts_at: chrono::DateTime<chrono::Utc> =
        alert["startsAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(external.since, starts_at);
    assert!(external.counts());
    assert_eq!(state.worst(), Severity::Crit);
    let pane = alerts_pane(&state, start);
    assert!(
        pane.contains("am: SecurityBoundaryViolationCritical"),
        "{pane}"
    );
    state.tick(start + chrono::Duration::seconds(3));
    assert_eq!(own(&state), Some(AlertState::Firing));

    // A silence in Alertmanager: the alert stays listed, marked, and stops counting.
    let now = chrono::Utc::now();
    let silence = serde_json::json!({
        "matchers": [{"name": "alertname", "value": "SecurityBoundaryViolationCritical", "isRegex": false, "isEqual": true}],
        "startsAt": now.to_rfc3339(),
        "endsAt": (now + chrono::Duration::hours(1)).to_rfc3339(),
        "createdBy": "watchpost test",
        "comment": "maintenance"
    });
    let (status, body) = http_post_json(
        &format!("{}/api/v2/silences", am.url()),
        &silence.to_string(),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    eventually(
        "the alert silenced in Alertmanager",
        Duration::from_secs(10),
        || {
            let alerts = alertmanager_alerts(&am);
            let a = named(&alerts, "SecurityBoundaryViolationCritical")?;
            (a["status"]["state"] == "suppressed").then_some(())
        },
    );
    let later = start + chrono::Duration::seconds(4);
    poll_into(&runtime, &mut collectors, &mut state, later);
    let silenced = state
        .alerts
        .active
        .iter()
        .find(|a| a.id == external.id)
        .unwrap();
    assert!(
        silenced
            .silenced
            .as_deref()
            .unwrap()
            .contains("silenced in Alertmanager")
    );
    assert!(!silenced.counts());
    let pane = alerts_pane(&state, later);
    let line = pane
        .lines()
        .find(|l| l.contains("am: SecurityBoundaryViolationCritical"))
        .unwrap_or_else(|| panic!("{pane}"));
    assert!(line.contains("silenced"), "{pane}");

    // Violations stop: Prometheus resolves, Alertmanager drops it, watchpost resolves it.
    exporter.counter_rate(VIOLATIONS, 0.0);
    eventually(
        "the alert resolved in Alertmanager",
        Duration::from_secs(30),
        || {
            named(
                &alertmanager_alerts(&am),
                "SecurityBoundaryViolationCritical",
            )
            .is_none()
            .then_some(())
        },
    );
    let end = start + chrono::Duration::seconds(40);
    poll_into(&runtime, &mut collectors, &mut state, end);
    assert!(!state.alerts.active.iter().any(|a| a.id == external.id));
    assert!(state.alerts.resolved.iter().any(|a| a.id == external.id));

    // What the record keeps, and the report is built from: the external alert's incident.
    let events: Vec<_> = state
        .take_outbox()
        .into_iter()
        .filter_map(|o| match o {
            watchpost::state::Outgoing::Alert(event) => Some(event),
            _ => None,
        })
        .collect();
    let replay = watchpost::record::replay(&events);
    let incident = replay
        .incidents
        .iter()
        .find(|i| i.id == external.id)
        .unwrap_or_else(|| panic!("{:#?}", replay.incidents));
    assert_eq!(incident.severity, Severity::Crit);
    assert_eq!(incident.began, starts_at);
    assert!(incident.resolved.is_some());
}

/// node-exporter's figures for `hosts` instances (served by the test's exporter, each
/// series with its own `instance` label), host `i` at 10·i % CPU.
fn serve_node_exporter(exporter: &Exporter, hosts: usize) {
    for i in 0..hosts {
        let instance = format!("web-{i}:9100");
        let l = |extra: &str| format!(r#"{{instance="{instance}"{extra}}}"#);
        exporter.counter_rate(
            &format!("node_cpu_seconds_total{}", l(r#",cpu="0",mode="idle""#)),
            1.0 - (10.0 * i as f64 % 100.0) / 100.0,
        );
        exporter.gauge(&format!("node_memory_MemTotal_bytes{}", l("")), 8e9);
        exporter.gauge(&format!("node_memory_MemAvailable_bytes{}", l("")), 6e9);
        exporter.gauge(&format!("node_load1{}", l("")), 0.5);
        exporter.gauge(&format!("node_load5{}", l("")), 0.4);
        exporter.gauge(&format!("node_load15{}", l("")), 0.3);
        let fs = r#",mountpoint="/",fstype="ext4",device="/dev/sda1""#;
        exporter.gauge(&format!("node_filesystem_size_bytes{}", l(fs)), 100e9);
        // 5 GB reserved for root: free 10 GB, available 5 GB, as node_exporter reports it.
        exporter.gauge(&format!("node_filesystem_free_bytes{}", l(fs)), 10e9);
        exporter.gauge(&format!("node_filesystem_avail_bytes{}", l(fs)), 5e9);
        exporter.gauge(
            &format!("node_uname_info{}", l(&format!(r#",nodename="web-{i}""#))),
            1.0,
        );
    }
}

#[test]
fn fifty_hosts_fill_the_host_and_services_panes_without_ssh() {
    use watchpost::model::figure::Severity;
    prometheus_or_skip!();
    let exporter = Exporter::start();
    serve_node_exporter(&exporter, 50);
    // A second target that nobody serves: `up` is 0 for it.
    let dead_port = ClosedPort::new();
    let dead = dead_port.addr();
    let prom =
        prometheus::prometheus_scraping(&[exporter.target(), dead.clone()], NO_RULES, None, None);
    wait_scraped(&prom);
    let dir = tempfile::tempdir().unwrap();
    let config_path = write_config(
        dir.path(),
        &format!(
            "[prometheus.fleet]\nurl = \"{}\"\ninterval = \"1s\"\nhistory = \"1m\"\nservices = true\nhosts = true\n",
            prom.url()
        ),
    );
    // CPU is a rate: wait for two scrapes of the counters.
    let json = eventually("50 hosts with CPU figures", Duration::from_secs(20), || {
        let (_, json) = check_json(&config_path);
        let cpu = find(&json, "fleet.web-3:9100.cpu_pct")?["value"].as_f64()?;
        (cpu > 20.0 && cpu < 40.0).then_some(json)
    });
    let ids = ids(&json);
    for i in 0..50 {
        for figure in ["cpu_pct", "mem_pct", "disk_pct", "load1"] {
            let id = format!("fleet.web-{i}:9100.{figure}");
            assert!(ids.contains(&id), "no {id} in {ids:?}");
        }
    }
    assert_eq!(
        find(&json, "fleet.web-0:9100.mem_pct").unwrap()["value"],
        25.0
    );
    // As df: used 90 GB of the 95 GB an ordinary user can reach (the reserve counts
    // neither way), 94.7 % (df: 95%), over the runbook's 90: critical.
    let disk = find(&json, "fleet.web-0:9100.disk_pct").unwrap();
    let value = disk["value"].as_f64().unwrap();
    assert!((value - 100.0 * 90.0 / 95.0).abs() < 0.01, "{disk:#}");
    assert_eq!(value.ceil(), 95.0, "df's rounding up gives df's Use%");
    assert_eq!(disk["severity"].as_str(), Some("crit"));
    let up = format!("fleet.meatymusic-api.{}.up", exporter.target());
    assert_eq!(
        find(&json, &up).unwrap_or_else(|| panic!("{ids:?}"))["value"],
        1.0
    );
    let down = find(&json, &format!("fleet.meatymusic-api.{dead}.up")).unwrap();
    assert_eq!(
        (down["value"].as_f64(), down["severity"].as_str()),
        (Some(0.0), Some("crit"))
    );

    // The panes: 50 hosts in the Host pane, both targets in the Services pane. A few
    // seconds of past first, for the start-up range query of the CPU.
    wait_scrapes(&prom, 6);
    let config = watchpost::config::Config::load(&config_path).unwrap();
    let pool = watchpost::transport::HostPool::from_config(&config).unwrap();
    let mut collectors = watchpost::collect::from_config(&config, &pool, None);
    let now = chrono::Utc::now();
    let window = watchpost::state::Window::new("fleet", now, chrono::Duration::hours(24));
    let mut state = watchpost::app::initial_state(window, &collectors, &config);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    poll_into(&runtime, &mut collectors, &mut state, now);
    let hosts: Vec<&String> = state
        .sources_of(watchpost::model::pane::PaneId::Host)
        .iter()
        .filter(|s| state.hosts.contains_key(*s))
        .collect();
    assert_eq!(hosts.len(), 50, "{hosts:?}");
    // The start-up range query filled each host's CPU sparkline.
    let cpu = state.figure("fleet.web-7:9100.cpu_pct").unwrap();
    assert!(cpu.history.len() >= 3, "{:?}", cpu.history);
    let web7 = &state.hosts["fleet.web-7:9100"];
    assert_eq!(web7.hostname, "web-7");
    assert_eq!(web7.load, [0.5, 0.4, 0.3]);
    assert_eq!(web7.disks[0].mount, "/");
    let services: Vec<(&String, bool)> = state
        .services
        .iter()
        .map(|(name, s)| (name, s.status.up))
        .collect();
    assert_eq!(services.len(), 2, "{services:?}");
    assert!(services.contains(&(&format!("fleet.meatymusic-api.{dead}"), false)));
    assert_eq!(state.worst_figure(), Severity::Crit);
}

#[test]
fn range_queries_fill_the_sparkline_at_start_up() {
    prometheus_or_skip!();
    let exporter = Exporter::start();
    exporter.gauge("meatymusic_db_pool_connections_active", 4.0);
    let prom = prometheus::prometheus(&exporter.target(), NO_RULES, None);
    // A few seconds of past for the range query to find.
    wait_scrapes(&prom, 5);
    let config = watchpost::config::Config::parse(&format!(
        "[prometheus.mm]\nurl = \"{}\"\ninterval = \"1s\"\nhistory = \"1m\"\n\n[[prometheus.mm.figure]]\nid = \"db_active\"\nquery = \"sum(meatymusic_db_pool_connections_active)\"\n",
        prom.url()
    ))
    .unwrap();
    let pool = watchpost::transport::HostPool::from_config(&config).unwrap();
    let mut collectors = watchpost::collect::from_config(&config, &pool, None);
    let now = chrono::Utc::now();
    let window = watchpost::state::Window::new("mm", now, chrono::Duration::hours(24));
    let mut state = watchpost::app::initial_state(window, &collectors, &config);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    poll_into(&runtime, &mut collectors, &mut state, now);
    let figure = state.figure("mm.db_active").unwrap();
    // One poll, yet several points: the past came from the range query, oldest first.
    assert!(figure.history.len() >= 4, "{:?}", figure.history);
    assert!(figure.history.iter().all(|(_, v)| *v == 4.0));
    assert!(
        figure
            .history
            .iter()
            .zip(figure.history.iter().skip(1))
            .all(|(a, b)| a.0 < b.0)
    );
    assert_eq!(figure.history.back().unwrap().0, now);
    // The next round asks instant queries only: history grows by one point.
    let before = figure.history.len();
    poll_into(
        &runtime,
        &mut collectors,
        &mut state,
        now + chrono::Duration::seconds(1),
    );
    assert_eq!(
        state.figure("mm.db_active").unwrap().history.len(),
        before + 1
    );
}

#[test]
fn tls_with_a_private_ca_and_a_bearer_token_from_the_environment() {
    prometheus_or_skip!();
    if prometheus::installed("openssl").is_none() {
        assert!(
            !prometheus::prometheus_required(),
            "openssl is needed to make the test CA"
        );
        eprintln!("SKIPPED: no openssl to make a test CA");
        return;
    }
    let certs = tempfile::tempdir().unwrap();
    let at = |f: &str| certs.path().join(f).display().to_string();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    // A CA of our own, and a server certificate for 127.0.0.1 signed by it.
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=watchpost test CA",
        "-keyout",
        &at("ca.key"),
        "-out",
        &at("ca.pem"),
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        &at("server.key"),
        "-out",
        &at("server.csr"),
    ]);
    std::fs::write(at("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &at("server.csr"),
        "-CA",
        &at("ca.pem"),
        "-CAkey",
        &at("ca.key"),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        &at("ext.cnf"),
        "-out",
        &at("server.pem"),
    ]);

    let exporter = Exporter::start();
    exporter.gauge("meatymusic_security_contexts_active", 9.0);
    let web = format!(
        "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
        at("server.pem"),
        at("server.key")
    );
    let prom = prometheus::prometheus_scraping(&[exporter.target()], NO_RULES, None, Some(&web));
    let config = |ca: Option<&str>| {
        let ca = ca
            .map(|c| format!("ca_file = \"{c}\"\n"))
            .unwrap_or_default();
        format!(
            "[prometheus.mm]\nurl = \"{}\"\ntoken = \"${{WATCHPOST_TEST_PROM_TOKEN}}\"\nhistory = \"0s\"\n{ca}\n[[prometheus.mm.figure]]\nid = \"contexts\"\nquery = \"sum(meatymusic_security_contexts_active)\"\n",
            prom.url()
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let run = |text: &str| {
        let path = write_config(dir.path(), text);
        let out = Command::new(env!("CARGO_BIN_EXE_watchpost"))
            .args(["check", "--format", "json", "--config"])
            .arg(&path)
            .env("WATCHPOST_TEST_PROM_TOKEN", "s3cret-token")
            .output()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    // With the CA: figures over https.
    let json = eventually("the figure over TLS", Duration::from_secs(20), || {
        let json = run(&config(Some(&at("ca.pem"))));
        (find(&json, "mm.contexts")?["value"] == 9.0).then_some(json)
    });
    assert_eq!(json["worst"], "ok");
    // Without it, the certificate is not trusted, and the figure says why.
    let json = run(&config(None));
    let error = find(&json, "mm.contexts").unwrap()["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(error.contains("cannot reach Prometheus"), "{error}");
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    // A CA file that is not a certificate is a clear error, not a panic.
    std::fs::write(at("junk.pem"), "not a certificate\n").unwrap();
    let json = run(&config(Some(&at("junk.pem"))));
    let error = find(&json, "mm.contexts").unwrap()["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        error.contains("ca_file") && error.contains("junk.pem"),
        "{error}"
    );

    // The token goes out as `Authorization: Bearer …` (Prometheus itself checks none, so
    // the test's own HTTP server is asked what it got; its answer is no query JSON).
    let json = run(&format!(
        "[prometheus.mm]\nurl = \"http://{}\"\ntoken = \"${{WATCHPOST_TEST_PROM_TOKEN}}\"\nhistory = \"0s\"\n\n[[prometheus.mm.figure]]\nid = \"contexts\"\nquery = \"up\"\n",
        exporter.target()
    ));
    assert!(
        exporter
            .authorizations()
            .contains(&"Bearer s3cret-token".to_string())
    );
    let error = find(&json, "mm.contexts").unwrap()["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(error.contains("not Prometheus's query JSON"), "{error}");
}

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/meatymusic.toml");

/// Seed 004's example is valid with nothing set (the runbook's defaults) and knows every
/// figure of the seed's dashboards and rules.
#[test]
fn examples_meatymusic_toml_validates() {
    let out = Command::new(env!("CARGO_BIN_EXE_watchpost"))
        .args(["validate", "--config", EXAMPLE])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("prometheus mm: http://localhost:9090,"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("bearer token"),
        "no token is set: {stdout}"
    );
    assert!(
        stdout.contains("alertmanager am: active alerts of http://localhost:9093/api/v2/alerts")
    );
    for (id, rule) in [
        ("mm.boundary_violations_per_s", "warn > 1, for 2m"),
        (
            "mm.boundary_violations_critical",
            "crit > 10, priority P1, for 1m",
        ),
        ("mm.auth_failures_per_s", "warn > 20, for 2m"),
        (
            "mm.auth_failures_critical",
            "crit > 100, priority P1, for 1m",
        ),
        ("mm.rls_coverage_pct", "crit < 95, priority P1, for 5m"),
        ("mm.query_p95_s", "warn > 2, for 5m"),
        ("mm.rls_overhead_p95_s", "warn > 0.5, for 3m"),
        ("mm.cache_hit_pct", "warn < 70, priority P2, for 5m"),
    ] {
        let line = stdout
            .lines()
            .find(|l| l.contains(&format!("figure {id}:")))
            .unwrap_or_else(|| panic!("no {id}: {stdout}"));
        assert!(line.ends_with(rule), "{line}");
    }
    let with_url = Command::new(env!("CARGO_BIN_EXE_watchpost"))
        .args(["validate", "--config", EXAMPLE])
        .env("PROMETHEUS_URL", "https://prometheus.internal:9090")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&with_url.stdout)
            .contains("prometheus mm: https://prometheus.internal:9090,")
    );
}

/// The example against a real Prometheus scraping seed 004's metric names.
#[test]
fn examples_meatymusic_toml_reads_seed_004s_metrics() {
    prometheus_or_skip!();
    let exporter = Exporter::start();
    exporter.counter_rate(r#"meatymusic_security_boundary_violations_total{violation_type="rls_bypass",table_name="songs",user_id="u1",instance="api:8000"}"#, 2.0);
    exporter.counter_rate(r#"meatymusic_auth_failures_total{auth_method="jwt",failure_reason="expired",instance="api:8000"}"#, 1.0);
    exporter.counter_rate(
        r#"meatymusic_auth_attempts_total{auth_method="jwt",instance="api:8000"}"#,
        10.0,
    );
    exporter.gauge(
        r#"meatymusic_security_contexts_active{instance="api:8000"}"#,
        12.0,
    );
    exporter.gauge(
        r#"meatymusic_security_memory_usage_bytes{component="context_cache",instance="api:8000"}"#,
        64e6,
    );
    exporter.gauge(
        r#"meatymusic_db_pool_connections_active{instance="api:8000"}"#,
        7.0,
    );
    exporter.gauge(
        r#"meatymusic_db_pool_connections_idle{instance="api:8000"}"#,
        3.0,
    );
    let prom = prometheus::prometheus(&exporter.target(), NO_RULES, None);
    wait_scraped(&prom);
    // The example as shipped, but its rates over 5 seconds instead of 5 minutes, so a
    // test of a few seconds sees them.
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(EXAMPLE).unwrap();
    assert!(example.contains("[5m]"));
    let config = write_config(dir.path(), &example.replace("[5m]", "[5s]"));
    let no_alertmanager = ClosedPort::new();
    let out = |url: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_watchpost"))
            .args(["check", "--format", "json", "--config"])
            .arg(&config)
            .env("PROMETHEUS_URL", url)
            .env(
                "ALERTMANAGER_URL",
                format!("http://{}", no_alertmanager.addr()),
            )
            .output()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let json = eventually("the example's rates", Duration::from_secs(20), || {
        let json = out(&prom.url());
        let rate = find(&json, "mm.boundary_violations_per_s")?["value"].as_f64()?;
        (rate > 1.0).then_some(json)
    });
    let value = |id: &str| {
        find(&json, id).unwrap_or_else(|| panic!("no {id}: {:?}", ids(&json)))["value"].clone()
    };
    // Above the warning line (1/s), under the critical one (10/s).
    assert_eq!(
        find(&json, "mm.boundary_violations_per_s").unwrap()["severity"],
        "warn"
    );
    assert_eq!(
        find(&json, "mm.boundary_violations_critical").unwrap()["severity"],
        "ok"
    );
    assert!(value("mm.violations_by_table.songs").as_f64().unwrap() > 1.0);
    assert!((5.0..=15.0).contains(&value("mm.auth_failure_pct").as_f64().unwrap()));
    assert_eq!(value("mm.contexts_by_instance.api:8000"), 12.0);
    assert_eq!(value("mm.memory_by_component.context_cache"), 64e6);
    assert_eq!(value("mm.db_pool_active"), 7.0);
    // No histogram is served: an empty result, said as such.
    let p95 = find(&json, "mm.query_p95_s").unwrap();
    assert!(
        p95["detail"].as_str().unwrap().starts_with("empty result"),
        "{p95:#}"
    );
    // Its Alertmanager is not running: said, not hidden.
    let am = find(&json, "am.active").unwrap();
    assert!(
        am["error"]
            .as_str()
            .unwrap()
            .contains("cannot reach Alertmanager"),
        "{am:#}"
    );
}
