//! Real Prometheus and Alertmanager servers for tests (Debian's `prometheus` and
//! `prometheus-alertmanager`), each on 127.0.0.1 and a free port with its own temporary
//! data directory, killed on drop (so also when a test panics); and a small exporter,
//! run by the test itself, that serves seed 004's metric names with values the test sets.
//!
//! Without the binaries the tests skip with a message (`apt-get install prometheus
//! prometheus-alertmanager`, as scripts/test.sh does), unless WATCHPOST_REQUIRE_PROMETHEUS=1
//! or CI=true, where they fail.
#![allow(dead_code)]

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const PROMETHEUS: &str = "prometheus";
pub const ALERTMANAGER: &str = "prometheus-alertmanager";

pub fn prometheus_required() -> bool {
    std::env::var("WATCHPOST_REQUIRE_PROMETHEUS").is_ok_and(|v| v == "1")
        || std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The path of `program` on PATH, if it is installed.
pub fn installed(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

/// Returns from the test with a visible message when the servers are not installed, or
/// fails it when they are required.
#[macro_export]
macro_rules! prometheus_or_skip {
    () => {
        for program in [$crate::support::prometheus::PROMETHEUS, $crate::support::prometheus::ALERTMANAGER] {
            if $crate::support::prometheus::installed(program).is_none() {
                let problem = format!(
                    "{program} is not installed (apt-get install prometheus prometheus-alertmanager)"
                );
                if $crate::support::prometheus::prometheus_required() {
                    panic!("WATCHPOST_REQUIRE_PROMETHEUS=1 or CI=true, but {problem}");
                }
                eprintln!("SKIPPED (no Prometheus here): {problem}");
                return;
            }
        }
    };
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// A server process, killed and reaped on drop.
pub struct Server {
    pub name: &'static str,
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Child,
    /// Serves https (a web config with TLS).
    tls: bool,
}

impl Server {
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// What the server wrote to stderr so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// Waits until `/-/ready` answers 200 (over plain HTTP).
    fn wait_ready(self) -> Server {
        self.wait_until(|server| {
            http_get(&format!("{}/-/ready", server.url())).is_ok_and(|(code, _)| code == 200)
        })
    }

    /// Waits until the server logs that it listens (for TLS, which the probe cannot speak).
    fn wait_listening(self) -> Server {
        self.wait_until(|server| {
            server
                .log()
                .contains("Server is ready to receive web requests")
        })
    }

    fn wait_until(mut self, ready: impl Fn(&Server) -> bool) -> Server {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited with {status}:\n{}", self.name, self.log());
            }
            if ready(&self) {
                return self;
            }
            assert!(
                Instant::now() < deadline,
                "{} not ready in 30s:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(name: &'static str, program: &str, dir: &Path, args: &[String]) -> Child {
    let log = std::fs::File::create(dir.join("stderr.log")).expect("log file");
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {name}: {e}"))
}

/// Starts Alertmanager with one receiver that sends nowhere and no clustering.
pub fn alertmanager() -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let config = "route:\n  receiver: 'nowhere'\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: 'nowhere'\n";
    std::fs::write(dir.path().join("alertmanager.yml"), config).expect("write config");
    let path = dir.path().to_path_buf();
    let args = vec![
        format!("--config.file={}", path.join("alertmanager.yml").display()),
        format!("--storage.path={}", path.join("data").display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
        // One instance, no gossip port.
        "--cluster.listen-address=".into(),
    ];
    let child = spawn("alertmanager", ALERTMANAGER, &path, &args);
    Server {
        name: "alertmanager",
        port,
        dir,
        child,
        tls: false,
    }
    .wait_ready()
}

/// Starts Prometheus scraping `target` (host:port) every second, evaluating `rules` (a
/// rule file's YAML) every second, and sending alerts to `alertmanager` if given.
pub fn prometheus(target: &str, rules: &str, alertmanager: Option<u16>) -> Server {
    prometheus_scraping(&[target.to_string()], rules, alertmanager, None)
}

/// [`prometheus`] with several scrape targets of one job, and optionally a web config
/// (`--web.config.file`: TLS or basic auth), which makes its URL https.
pub fn prometheus_scraping(
    targets: &[String],
    rules: &str,
    alertmanager: Option<u16>,
    web_config: Option<&str>,
) -> Server {
    let target = targets
        .iter()
        .map(|t| format!("'{t}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let path = dir.path().to_path_buf();
    std::fs::write(path.join("rules.yml"), rules).expect("write rules");
    let alerting = match alertmanager {
        Some(am) => format!(
            "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{am}']\n"
        ),
        None => String::new(),
    };
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - '{}'\n{alerting}scrape_configs:\n  - job_name: 'meatymusic-api'\n    honor_labels: true\n    static_configs:\n      - targets: [{target}]\n",
        path.join("rules.yml").display()
    );
    std::fs::write(path.join("prometheus.yml"), config).expect("write config");
    let mut args = vec![
        format!("--config.file={}", path.join("prometheus.yml").display()),
        format!("--storage.tsdb.path={}", path.join("data").display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
        // Alerts reach Alertmanager at once, not after the default minute.
        "--rules.alert.resend-delay=1s".into(),
    ];
    if let Some(web) = web_config {
        std::fs::write(path.join("web.yml"), web).expect("write web config");
        args.push(format!(
            "--web.config.file={}",
            path.join("web.yml").display()
        ));
    }
    let child = spawn("prometheus", PROMETHEUS, &path, &args);
    let server = Server {
        name: "prometheus",
        port,
        dir,
        child,
        tls: web_config.is_some(),
    };
    if server.tls {
        // The readiness probe here speaks plain HTTP; wait for the server's own word.
        return server.wait_listening();
    }
    server.wait_ready()
}

/// A blocking GET on loopback: (status, body).
pub fn http_get(url: &str) -> Result<(u16, String), String> {
    http_request("GET", url, None)
}

/// A blocking POST of JSON on loopback: (status, body).
pub fn http_post_json(url: &str, body: &str) -> Result<(u16, String), String> {
    http_request("POST", url, Some(body))
}

fn http_request(method: &str, url: &str, body: Option<&str>) -> Result<(u16, String), String> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").ok_or("http only")?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut stream = std::net::TcpStream::connect(host).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let body = body.unwrap_or("");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no HTTP status in {text:?}"))?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    // Chunked answers (Alertmanager's API) come in hex-sized pieces.
    let chunked = text.split_once("\r\n\r\n").is_some_and(|(h, _)| {
        h.to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
    });
    Ok((
        status,
        if chunked {
            dechunk(body)
        } else {
            body.to_string()
        },
    ))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// One metric the exporter serves: a gauge (set by the test) or a counter that grows at a
/// rate the test sets.
#[derive(Clone, Debug)]
struct Metric {
    kind: &'static str,
    value: f64,
    per_second: f64,
}

/// The test's own exporter: `GET /metrics` in Prometheus's text format.
pub struct Exporter {
    pub port: u16,
    metrics: Arc<Mutex<(Instant, BTreeMap<String, Metric>)>>,
    /// The Authorization headers of the requests it got, in order.
    authorizations: Arc<Mutex<Vec<String>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Exporter {
    pub fn start() -> Exporter {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the exporter");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("address").port();
        let metrics = Arc::new(Mutex::new((Instant::now(), BTreeMap::new())));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shared = metrics.clone();
        let authorizations = Arc::new(Mutex::new(Vec::new()));
        let seen = authorizations.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let serve = async {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let shared = shared.clone();
                        let seen = seen.clone();
                        let service = service_fn(move |request: Request<Incoming>| {
                            if let Some(auth) = request.headers().get("authorization") {
                                let auth = String::from_utf8_lossy(auth.as_bytes()).into_owned();
                                seen.lock().unwrap().push(auth);
                            }
                            let text = render(&shared);
                            async move {
                                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(text))))
                            }
                        });
                        tokio::spawn(async move {
                            let _ = http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        });
                    }
                };
                tokio::select! {
                    _ = serve => {}
                    _ = stopped => {}
                }
            });
        });
        Exporter {
            port,
            metrics,
            authorizations,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The Authorization headers of the requests so far.
    pub fn authorizations(&self) -> Vec<String> {
        self.authorizations.lock().unwrap().clone()
    }

    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Sets a gauge, `series` being a name with labels: `name{instance="a"}`.
    pub fn gauge(&self, series: &str, value: f64) {
        let mut guard = self.metrics.lock().unwrap();
        guard.1.insert(
            series.to_string(),
            Metric {
                kind: "gauge",
                value,
                per_second: 0.0,
            },
        );
    }

    /// Makes a counter grow at `per_second` from now on (it keeps its count).
    pub fn counter_rate(&self, series: &str, per_second: f64) {
        let mut guard = self.metrics.lock().unwrap();
        advance(&mut guard);
        let metric = guard.1.entry(series.to_string()).or_insert(Metric {
            kind: "counter",
            value: 0.0,
            per_second: 0.0,
        });
        metric.per_second = per_second;
    }

    /// Stops serving a series (it leaves the next scrape).
    pub fn remove(&self, series: &str) {
        self.metrics.lock().unwrap().1.remove(series);
    }
}

fn advance(guard: &mut (Instant, BTreeMap<String, Metric>)) {
    let elapsed = guard.0.elapsed().as_secs_f64();
    guard.0 = Instant::now();
    for metric in guard.1.values_mut() {
        metric.value += metric.per_second * elapsed;
    }
}

fn render(shared: &Mutex<(Instant, BTreeMap<String, Metric>)>) -> String {
    let mut guard = shared.lock().unwrap();
    advance(&mut guard);
    let mut out = String::new();
    let mut typed = Vec::new();
    for (series, metric) in guard.1.iter() {
        let name = series.split('{').next().unwrap_or(series);
        if !typed.contains(&name) {
            out.push_str(&format!("# TYPE {name} {}\n", metric.kind));
            typed.push(name);
        }
        out.push_str(&format!("{series} {}\n", metric.value));
    }
    out
}

impl Drop for Exporter {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Waits until `check` gives `Some`, or fails with `what` and the servers' logs.
pub fn eventually<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Writes a watchpost config into `dir` and returns its path.
pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("watchpost.toml");
    std::fs::write(&path, text).expect("write config");
    path
}
