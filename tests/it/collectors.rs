//! Host and service collectors against the real machine and tiny loopback servers.

use crate::support::net::ClosedPort;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::time::Duration;
use watchpost::collect::Collector;
use watchpost::collect::host::HostCollector;
use watchpost::collect::http::ServiceCollector;
use watchpost::config::{ServiceSource, SystemSource};
use watchpost::model::figure::{Reading, Value};
use watchpost::model::update::{ServiceStatus, SourceHealth, Update};

fn readings(updates: &[Update]) -> Vec<Reading> {
    updates
        .iter()
        .filter_map(|u| {
            if let Update::Readings { readings, .. } = u {
                Some(readings.clone())
            } else {
                None
            }
        })
        .flatten()
        .collect()
}

fn reading<'a>(readings: &'a [Reading], id: &str) -> &'a Reading {
    readings.iter().find(|r| r.id == id).unwrap_or_else(|| {
        panic!(
            "no reading {id} in {:?}",
            readings.iter().map(|r| &r.id).collect::<Vec<_>>()
        )
    })
}

fn number(readings: &[Reading], id: &str) -> f64 {
    reading(readings, id)
        .value
        .as_f64()
        .unwrap_or_else(|| panic!("{id} is not a number: {:?}", reading(readings, id)))
}

fn service(updates: &[Update]) -> &ServiceStatus {
    updates
        .iter()
        .find_map(|u| {
            if let Update::Service(s) = u {
                Some(s)
            } else {
                None
            }
        })
        .unwrap_or_else(|| panic!("no service row in {updates:?}"))
}

fn last_health(updates: &[Update]) -> Option<&SourceHealth> {
    updates.iter().rev().find_map(|u| {
        if let Update::Health { health, .. } = u {
            Some(health)
        } else {
            None
        }
    })
}

#[tokio::test]
async fn host_figures_are_present_and_in_range() {
    let mut collector = crate::support::host::local(Duration::from_secs(1));
    for round in 0..2 {
        let updates = collector.poll().await;
        let snapshot = updates
            .iter()
            .find_map(|u| {
                if let Update::Host { snapshot, .. } = u {
                    Some(snapshot.clone())
                } else {
                    None
                }
            })
            .unwrap_or_else(|| panic!("round {round}: no host snapshot in {updates:?}"));
        assert!(snapshot.cores >= 1);
        assert!(snapshot.mem_total_bytes > 0.0);
        assert!(
            !snapshot.disks.is_empty(),
            "at least one disk (or the overlay root)"
        );
        let readings = readings(&updates);
        for id in ["box.cpu_pct", "box.mem_pct", "box.disk_pct"] {
            let value = number(&readings, id);
            assert!((0.0..=100.0).contains(&value), "{id} = {value}");
            assert!(
                reading(&readings, id).default_rule.is_some(),
                "{id} carries the runbook thresholds"
            );
        }
        let load = number(&readings, "box.load1");
        assert!(load >= 0.0);
        assert!(reading(&readings, "box.load1").detail.contains("cores"));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn remote_host_is_a_clear_error_for_now() {
    let mut collector = HostCollector::new(
        "far",
        &SystemSource {
            host: "ssh://prod".into(),
            interval: Duration::from_secs(1),
        },
    );
    let updates = collector.poll().await;
    match last_health(&updates) {
        Some(SourceHealth::Error { message, .. }) => {
            assert!(message.contains("SSH transport"), "{message}")
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

/// A loopback health endpoint whose answer the test sets: the status code, and a delay.
struct HealthServer {
    addr: SocketAddr,
    code: Arc<AtomicU16>,
    delay_ms: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl HealthServer {
    async fn start() -> HealthServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let code = Arc::new(AtomicU16::new(200));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let (c, d) = (code.clone(), delay_ms.clone());
        let task = tokio::spawn(async move {
            // The connections live in the server's task: stopping it closes them too.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (c, d) = (c.clone(), d.clone());
                connections.spawn(async move {
                    let service = service_fn(move |_req: Request<hyper::body::Incoming>| {
                        let (c, d) = (c.clone(), d.clone());
                        async move {
                            let delay = d.load(Ordering::SeqCst);
                            if delay > 0 {
                                tokio::time::sleep(Duration::from_millis(delay)).await;
                            }
                            let code = StatusCode::from_u16(c.load(Ordering::SeqCst)).unwrap();
                            let body = if code.is_success() {
                                r#"{"status": "healthy"}"#
                            } else {
                                r#"{"status": "unhealthy"}"#
                            };
                            let response = Response::builder()
                                .status(code)
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(body)))
                                .unwrap();
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        HealthServer {
            addr,
            code,
            delay_ms,
            task,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/health", self.addr)
    }
}

impl Drop for HealthServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn http_source(url: &str, timeout: Duration) -> ServiceSource {
    ServiceSource {
        health_url: Some(url.into()),
        systemd: None,
        host: "local".into(),
        interval: Duration::from_secs(1),
        timeout,
    }
}

#[tokio::test]
async fn http_service_up_then_down_then_slow() {
    let server = HealthServer::start().await;
    let mut collector = ServiceCollector::new(
        "api",
        &http_source(&server.url(), Duration::from_millis(500)),
    );

    let updates = collector.poll().await;
    let row = service(&updates);
    assert!(row.up, "{row:?}");
    assert_eq!(row.kind, "http");
    assert_eq!(row.status, "200");
    assert!(row.detail.contains("healthy"), "{row:?}");
    let r = readings(&updates);
    assert_eq!(number(&r, "api.up"), 1.0);
    assert_eq!(number(&r, "api.health_code"), 200.0);
    let ms = number(&r, "api.health_ms");
    assert!(ms > 0.0 && ms < 500.0, "{ms}");
    assert_eq!(last_health(&updates), Some(&SourceHealth::Ok));

    server.code.store(503, Ordering::SeqCst);
    let updates = collector.poll().await;
    let row = service(&updates);
    assert!(!row.up);
    assert_eq!(row.status, "503");
    assert!(
        row.detail.contains("503") && row.detail.contains("unhealthy"),
        "{row:?}"
    );
    let r = readings(&updates);
    assert_eq!(number(&r, "api.up"), 0.0);
    assert_eq!(number(&r, "api.health_code"), 503.0);
    let up = reading(&r, "api.up");
    assert_eq!(
        watchpost::rules::judge(up, None),
        watchpost::model::figure::Severity::Crit
    );
    assert_eq!(
        up.default_rule.as_ref().and_then(|rule| rule.priority),
        Some(watchpost::model::rule::Priority::P0)
    );
    // The check ran: the service is down, the source is fine.
    assert_eq!(last_health(&updates), Some(&SourceHealth::Ok));

    server.code.store(200, Ordering::SeqCst);
    server.delay_ms.store(2_000, Ordering::SeqCst);
    let started = std::time::Instant::now();
    let updates = collector.poll().await;
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "the timeout bounds the check"
    );
    let row = service(&updates);
    assert!(!row.up);
    assert!(row.detail.contains("timed out after 500ms"), "{row:?}");
    assert_eq!(last_health(&updates), Some(&SourceHealth::Ok));
}

#[tokio::test]
async fn refused_port_is_down_with_the_reason() {
    let closed = ClosedPort::new();
    let url = format!("http://{}/health", closed.addr());
    let mut collector = ServiceCollector::new("gone", &http_source(&url, Duration::from_secs(1)));
    let updates = collector.poll().await;
    let row = service(&updates);
    assert!(!row.up);
    assert!(row.detail.contains("refused"), "{row:?}");
    let r = readings(&updates);
    assert_eq!(number(&r, "gone.up"), 0.0);
    assert!(reading(&r, "gone.up").detail.contains("refused"));
    assert!(
        reading(&r, "gone.health_ms").error.is_some(),
        "no latency without an answer"
    );
    assert_eq!(last_health(&updates), Some(&SourceHealth::Ok));
}

#[tokio::test]
async fn malformed_url_is_a_source_error() {
    let mut collector =
        ServiceCollector::new("bad", &http_source("http//nope", Duration::from_secs(1)));
    let updates = collector.poll().await;
    match last_health(&updates) {
        Some(SourceHealth::Error { message, .. }) => {
            assert!(message.contains("not a valid URL"), "{message}")
        }
        other => panic!("expected a source error, got {other:?}"),
    }
    let r = readings(&updates);
    assert!(
        reading(&r, "bad.up").error.is_some(),
        "up is unknown, not 0 or 1"
    );
    assert_eq!(reading(&r, "bad.up").value, Value::None);
}

#[tokio::test]
async fn systemd_without_systemd_is_a_clear_error() {
    let source = ServiceSource {
        health_url: None,
        systemd: Some("watchpost-test-no-such-unit.service".into()),
        host: "local".into(),
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(5),
    };
    let mut collector = ServiceCollector::new("unit", &source);
    let updates = collector.poll().await;
    if std::path::Path::new("/run/systemd/system").exists() {
        // A systemd host: the unit does not exist, so the service is down.
        let row = service(&updates);
        assert!(!row.up);
        assert!(row.detail.contains("not found"), "{row:?}");
    } else {
        match last_health(&updates) {
            Some(SourceHealth::Error { message, .. }) => {
                assert!(message.starts_with("systemd:"), "{message}");
                assert!(message.contains("systemctl"), "{message}");
            }
            other => panic!("expected a source error without systemd, got {other:?}"),
        }
        assert!(reading(&readings(&updates), "unit.up").error.is_some());
    }
}

#[tokio::test]
async fn remote_service_is_a_clear_error_for_now() {
    let mut source = http_source("http://127.0.0.1:1/health", Duration::from_secs(1));
    source.host = "ssh://prod".into();
    let updates = ServiceCollector::new("far", &source).poll().await;
    match last_health(&updates) {
        Some(SourceHealth::Error { message, .. }) => {
            assert!(message.contains("SSH transport"), "{message}")
        }
        other => panic!("expected an error, got {other:?}"),
    }
}

/// A service whose endpoint stops answering is one page: `up` = 0 at P0. Its latency and
/// code cannot be read while it is down; they fold into that page instead of ringing on
/// their own, and come back on their own once it answers again.
#[tokio::test]
async fn up_zero_raises_one_p0_not_three() {
    use watchpost::model::rule::Priority;
    use watchpost::state::{AppState, Outgoing, Window};
    let server = HealthServer::start().await;
    let url = server.url();
    let mut collector =
        ServiceCollector::new("api", &http_source(&url, Duration::from_millis(500)));
    let mut state = AppState::new(Window::new(
        "up",
        chrono::Utc::now(),
        chrono::Duration::hours(24),
    ));
    state.enable_outbox();
    let mut events = Vec::new();
    let mut at = chrono::Utc::now();
    let step = async |collector: &mut ServiceCollector,
                      state: &mut AppState,
                      at: chrono::DateTime<chrono::Utc>| {
        for update in collector.poll().await {
            state.apply(update, at);
        }
        state.tick(at);
        state
            .take_outbox()
            .into_iter()
            .filter_map(|o| match o {
                Outgoing::Alert(e) => Some(e),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    events.extend(step(&mut collector, &mut state, at).await);
    assert!(events.is_empty(), "{events:#?}");

    // The server stops: connection refused from now on. Half a minute of polls, well past
    // the time after which a silent figure is "no data".
    drop(server);
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..30 {
        at += chrono::Duration::seconds(1);
        events.extend(step(&mut collector, &mut state, at).await);
    }
    let opened: Vec<String> = events
        .iter()
        .filter(|e| matches!(e.kind.as_str(), "pending" | "fired" | "changed"))
        .map(|e| {
            format!(
                "{} {} {} {}",
                e.kind.as_str(),
                e.id,
                e.priority.label(),
                e.condition.label()
            )
        })
        .collect();
    assert_eq!(
        opened,
        vec!["fired api.up P0 CRIT".to_string()],
        "{events:#?}"
    );
    let active: Vec<String> = state
        .alerts
        .active
        .iter()
        .map(|a| format!("{} {}", a.id, a.priority.label()))
        .collect();
    assert_eq!(active, vec!["api.up P0".to_string()]);
    assert!(
        state
            .alerts
            .active
            .iter()
            .all(|a| a.priority == Priority::P0)
    );
    // The figures still say what they can: no latency, the reason why.
    let latency = state.figure("api.health_ms").expect("shown");
    assert!(latency.figure.error.is_some(), "{latency:?}");
}

/// `free -b`'s Mem line: (total, used), used being total − available (procps 4).
fn free_bytes() -> (f64, f64) {
    let out = std::process::Command::new("free")
        .arg("-b")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with("Mem:")).unwrap();
    let n: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap())
        .collect();
    (n[0], n[1])
}

#[tokio::test]
async fn memory_agrees_with_free_at_the_same_moment() {
    let mut collector = crate::support::host::local(Duration::from_secs(1));
    collector.poll().await;
    // Memory moves between two reads: take free before and after ours.
    let (total, used_before) = free_bytes();
    let updates = collector.poll().await;
    let (_, used_after) = free_bytes();
    let ours = number(&readings(&updates), "box.mem_pct");
    let (low, high) = (
        100.0 * used_before.min(used_after) / total,
        100.0 * used_before.max(used_after) / total,
    );
    assert!(
        ours >= low - 0.5 && ours <= high + 0.5,
        "mem_pct {ours:.2} vs free's used {low:.2}–{high:.2} %"
    );
}

/// Busy and total jiffies of all CPUs from /proc/stat (as top and mpstat count them).
fn proc_stat() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap();
    let fields: Vec<u64> = text
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap())
        .collect();
    // user nice system idle iowait irq softirq steal: idle and iowait are not busy.
    let total: u64 = fields.iter().take(8).sum();
    let idle = fields[3] + fields[4];
    (total - idle, total)
}

#[tokio::test]
async fn cpu_agrees_with_proc_stat_over_the_same_interval() {
    // One core kept busy, so the figure is far from zero.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let burner = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut x = 0u64;
            while !stop.load(Ordering::Relaxed) {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            x
        })
    };
    let mut collector = crate::support::host::local(Duration::from_secs(1));
    collector.poll().await;
    let (busy0, total0) = proc_stat();
    collector.poll().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (busy1, total1) = proc_stat();
    let updates = collector.poll().await;
    stop.store(true, Ordering::Relaxed);
    burner.join().unwrap();
    let ours = number(&readings(&updates), "box.cpu_pct");
    let reference = 100.0 * (busy1 - busy0) as f64 / (total1 - total0) as f64;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    assert!(
        reference >= 100.0 / cores - 10.0,
        "the burner shows: {reference:.1}"
    );
    assert!(
        (ours - reference).abs() < 10.0,
        "cpu_pct {ours:.1} vs /proc/stat {reference:.1} over the same 2 s"
    );
}
