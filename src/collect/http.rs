//! The Services pane's source for one service: an HTTP health endpoint (`curl /health`)
//! and/or a systemd unit (`systemctl status`), as in the runbooks.
//!
//! Figures: `<name>.up` (1 or 0, critical and P0 when 0), `<name>.health_ms`,
//! `<name>.health_code` (with a URL) and `<name>.restarts` (with a unit).
//!
//! A service that refuses connections or times out is *down*: the check ran, so the
//! source itself is healthy. A malformed URL or a missing `systemctl` is a source error.
//!
//! On a remote host both checks run there, through the host's SSH connection: the unit
//! with `systemctl show` (the unit name one quoted argument), the URL "from the server's
//! point of view" as the runbooks do it (`curl http://localhost/...` on the server), with
//! `curl` or, where there is none, `wget` (see [`REMOTE_HTTP_SCRIPT`]). The figures are
//! the same as locally.

use crate::collect::{Collector, Reach, health};
use crate::config::ServiceSource;
use crate::model::figure::Reading;
use crate::model::rule::{Priority, Rule, Threshold};
use crate::model::update::{ServiceStatus, SourceHealth, Update};
use crate::transport::{Transport, TransportError};
use futures::future::BoxFuture;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The most of a health body that is read (enough for any JSON status document).
const MAX_BODY: usize = 64 * 1024;

/// Why the health check could not run (a service that answers badly or not at all is a
/// result, not an error). `Display` is the text the Services pane shows.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    #[error("health_url {text:?} is not a valid URL: {error}")]
    Url {
        text: String,
        error: crate::collect::UrlParseError,
    },
    #[error("health_url {0:?}: https is not supported by this build yet (plain http only)")]
    Https(String),
    #[error("health_url {text:?}: scheme {scheme:?} is not http")]
    Scheme { text: String, scheme: String },
    #[error("health_url {0:?} has no host")]
    NoHost(String),
    #[error("cannot create the HTTP client: {0}")]
    Client(reqwest::Error),
    /// The check on a remote host did not run there.
    #[error("health check on {host}: {error}")]
    Remote {
        host: String,
        error: RemoteHttpError,
    },
}

/// Why [`REMOTE_HTTP_SCRIPT`] gave no outcome.
#[derive(Debug, thiserror::Error)]
pub enum RemoteHttpError {
    /// Exit 127: no curl or wget (the shell's words on stderr, if any).
    #[error("{}", or_no_client(.0))]
    NoClient(String),
    /// Neither curl's nor wget's trailer: the first line of stderr, if any.
    #[error("the health check printed nothing usable{}", colon(.0))]
    Unusable(Option<String>),
}

fn or_no_client(stderr: &str) -> &str {
    if stderr.is_empty() {
        "neither curl nor wget is installed on this host"
    } else {
        stderr
    }
}

/// ` on HOST`, or nothing.
fn on_host(host: &Option<String>) -> String {
    host.as_deref()
        .map(|h| format!(" on {h}"))
        .unwrap_or_default()
}

/// `: TEXT`, or nothing.
fn colon(text: &Option<String>) -> String {
    text.as_deref()
        .map(|t| format!(": {t}"))
        .unwrap_or_default()
}

/// Why `systemctl show` said nothing about a unit. `Display` is the text the Services
/// pane shows.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UnitError {
    #[error(
        "systemd: systemctl show {unit} did not answer within {}",
        humantime::format_duration(*.after)
    )]
    NoAnswer { unit: String, after: Duration },
    /// No `systemctl` (here, or on `host`).
    #[error(
        "systemd: cannot check unit {unit}{}: systemctl is not installed (no systemd on this host?)",
        on_host(.host)
    )]
    NoSystemctl { unit: String, host: Option<String> },
    #[error("systemd: cannot run systemctl: {0}")]
    Run(std::io::Error),
    /// `systemctl` failed: its stderr on one line, or its exit status.
    #[error("systemd: systemctl show {unit} failed (is systemd running here?): {reason}")]
    Failed { unit: String, reason: String },
    #[error("systemd: systemctl show {unit} gave no ActiveState")]
    NoActiveState { unit: String },
}

pub struct ServiceCollector {
    name: String,
    interval: Duration,
    timeout: Duration,
    reach: Reach,
    url: Option<Result<reqwest::Url, HttpError>>,
    unit: Option<String>,
    /// One client for every poll, so connections are reused.
    client: Result<reqwest::Client, HttpError>,
}

impl ServiceCollector {
    /// A service on this machine (a remote `host` reports that it needs a transport).
    pub fn new(name: &str, source: &ServiceSource) -> Self {
        Self::on(
            name,
            source,
            crate::collect::reach_without_pool(&source.host),
        )
    }

    /// A service on the host behind `reach` (from the pool: [`crate::collect::reach`]).
    pub fn on(name: &str, source: &ServiceSource, reach: Reach) -> Self {
        let client = reqwest::Client::builder()
            // Health endpoints are internal; an HTTP_PROXY meant for the internet must not
            // stand between the tool and the service it watches.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .map_err(HttpError::Client);
        ServiceCollector {
            name: name.to_string(),
            interval: source.interval,
            timeout: source.timeout,
            reach,
            url: source.health_url.as_deref().map(parse_url),
            unit: source.systemd.clone(),
            client,
        }
    }
}

impl Collector for ServiceCollector {
    fn name(&self) -> &str {
        &self.name
    }
    fn panes(&self) -> &'static [crate::model::pane::PaneId] {
        &[crate::model::pane::PaneId::Services]
    }
    fn interval(&self) -> Duration {
        self.interval
    }
    fn poll(&mut self) -> BoxFuture<'_, Vec<Update>> {
        Box::pin(async move {
            let transport = match crate::collect::resolve(&self.name, &self.reach) {
                Ok(transport) => transport,
                Err(updates) => return updates,
            };
            if let Some(transport) = transport {
                return self.poll_remote(&transport).await;
            }
            let http = async {
                match (&self.url, &self.client) {
                    (None, _) => None,
                    (Some(Err(e)), _) | (Some(Ok(_)), Err(e)) => Some(Err(e.to_string())),
                    (Some(Ok(url)), Ok(client)) => {
                        Some(Ok(check_http(client, url, self.timeout).await))
                    }
                }
            };
            let unit = async {
                match &self.unit {
                    None => None,
                    Some(unit) => Some(
                        check_systemd(unit, self.timeout)
                            .await
                            .map_err(|e| e.to_string()),
                    ),
                }
            };
            // Both checks run at once: a slow endpoint does not delay the unit.
            let (http, unit) = tokio::join!(http, unit);
            assemble(&self.name, self.unit.as_deref(), http, unit)
        })
    }
}

impl ServiceCollector {
    /// Both checks on the remote host, at once. While the host cannot be reached only its
    /// line is reported: the service's figures keep their values and their age.
    async fn poll_remote(&self, transport: &Transport) -> Vec<Update> {
        let http = async {
            match &self.url {
                None => Ok(None),
                Some(Err(e)) => Ok(Some(Err(e.to_string()))),
                Some(Ok(url)) => {
                    check_http_remote(transport, url, self.timeout)
                        .await
                        .map(|outcome| {
                            Some(outcome.map_err(|error| {
                                HttpError::Remote {
                                    host: transport.name().to_string(),
                                    error,
                                }
                                .to_string()
                            }))
                        })
                }
            }
        };
        let unit = async {
            match &self.unit {
                None => Ok(None),
                Some(unit) => check_systemd_remote(transport, unit, self.timeout)
                    .await
                    .map(|status| Some(status.map_err(|e| e.to_string()))),
            }
        };
        let (http, unit) = tokio::join!(http, unit);
        let (http, unit) = match (http, unit) {
            (Ok(http), Ok(unit)) => (http, unit),
            (Err(e), _) | (_, Err(e)) => {
                return vec![if crate::collect::host_unreachable(transport, &e) {
                    crate::collect::host_down(&self.name, transport, &e)
                } else {
                    crate::collect::failed(
                        &self.name,
                        crate::collect::transport_message(transport, &e),
                        self.interval,
                    )
                }];
            }
        };
        assemble(&self.name, self.unit.as_deref(), http, unit)
    }
}

/// What the remote host runs for a health URL: `$1` the URL, `$2` the time limit in
/// seconds. With curl: the body (at most its last 70 kB, enough for any status document)
/// and then `@watchpost-curl CODE SECONDS` and `@watchpost-exit STATUS` lines. Without
/// curl, wget: the response headers and `@watchpost-wget STATUS START_NS END_NS`. With
/// neither, exit 127 and a message.
pub const REMOTE_HTTP_SCRIPT: &str = r#"url=$1; t=$2
if command -v curl >/dev/null 2>&1; then
  { curl -sS -L --max-redirs 5 --noproxy '*' --max-time "$t" \
      -w '\n@watchpost-curl %{http_code} %{time_total}\n' "$url"
    echo "@watchpost-exit $?"; } | tail -c 70000
  exit 0
fi
if command -v wget >/dev/null 2>&1; then
  if wget --version 2>/dev/null | grep -q 'GNU Wget'; then set -- -t 1 --max-redirect=5; else set --; fi
  s=$(date +%s%N 2>/dev/null)
  o=$(wget -S -O /dev/null -T "$t" "$@" "$url" 2>&1)
  r=$?
  e=$(date +%s%N 2>/dev/null)
  printf '%s\n' "$o" | tail -c 70000
  echo "@watchpost-wget $r $s $e"
  exit 0
fi
echo "neither curl nor wget is installed on this host" >&2
exit 127"#;

/// The remote health check. `Err` is a transport failure (host down, timeout); the inner
/// result is the check's own outcome, or why it could not run (no curl or wget).
pub(crate) async fn check_http_remote(
    transport: &Transport,
    url: &reqwest::Url,
    timeout: Duration,
) -> Result<Result<HttpOutcome, RemoteHttpError>, TransportError> {
    let limit = format!("{:.3}", timeout.as_secs_f64().max(0.001));
    let started = Instant::now();
    // curl's own limit, plus the round trip.
    let out = transport
        .exec_script(
            REMOTE_HTTP_SCRIPT,
            &[url.as_str(), limit.as_str()],
            timeout + Duration::from_secs(3),
        )
        .await?;
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    if out.status.code == Some(127) {
        return Ok(Err(RemoteHttpError::NoClient(
            out.stderr_text().trim().to_string(),
        )));
    }
    Ok(parse_remote_http(
        &out.stdout,
        &out.stderr_text(),
        timeout,
        wall_ms,
    ))
}

/// Reads what [`REMOTE_HTTP_SCRIPT`] printed into the same outcome a local check gives.
pub fn parse_remote_http(
    stdout: &[u8],
    stderr: &str,
    timeout: Duration,
    wall_ms: f64,
) -> Result<HttpOutcome, RemoteHttpError> {
    let text = String::from_utf8_lossy(stdout);
    if let Some(at) = text.rfind("@watchpost-curl ") {
        let body = text[..at].strip_suffix('\n').unwrap_or(&text[..at]);
        let mut tail = text[at..].lines();
        let mut fields = tail.next().unwrap_or("").split_whitespace().skip(1);
        let code: u16 = fields.next().and_then(|c| c.parse().ok()).unwrap_or(0);
        let seconds: Option<f64> = fields.next().and_then(|t| t.parse().ok());
        let exit: i32 = tail
            .find_map(|l| l.strip_prefix("@watchpost-exit "))
            .and_then(|c| c.trim().parse().ok())
            .unwrap_or(-1);
        let curl_error = stderr
            .lines()
            .map(str::trim)
            .rfind(|l| l.starts_with("curl:"))
            .unwrap_or("")
            .to_string();
        if exit != 0 {
            return Ok(down(describe_curl_error(exit, &curl_error, timeout)));
        }
        if code == 0 {
            return Ok(down(format!("no HTTP answer ({curl_error})")));
        }
        return Ok(outcome(code, seconds.map(|s| s * 1000.0), body.as_bytes()));
    }
    if let Some(at) = text.rfind("@watchpost-wget ") {
        let mut fields = text[at..].split_whitespace().skip(1);
        let exit: i32 = fields.next().and_then(|c| c.parse().ok()).unwrap_or(-1);
        let start: Option<u128> = fields.next().and_then(|v| v.parse().ok());
        let end: Option<u128> = fields.next().and_then(|v| v.parse().ok());
        let headers = &text[..at];
        // The last status line is the final answer after redirects.
        let code = headers.lines().rev().find_map(|l| {
            let mut words = l.split_whitespace();
            let proto = words.next()?;
            proto.starts_with("HTTP/").then_some(())?;
            words.next()?.parse::<u16>().ok()
        });
        // Without a nanosecond clock (busybox date) the round trip is an upper bound.
        let ms = match (start, end) {
            (Some(s), Some(e)) if e >= s && s > 1_000_000_000_000 => (e - s) as f64 / 1e6,
            _ => wall_ms,
        };
        return Ok(match code {
            Some(code) => outcome(code, Some(ms), b""),
            None if exit == 4 && headers.contains("refused") => down("connection refused".into()),
            None if exit == 4 => down(format!(
                "no HTTP answer within {} (wget)",
                humantime::format_duration(timeout)
            )),
            None => {
                let last = headers.lines().map(str::trim).rfind(|l| !l.is_empty());
                down(format!(
                    "request failed (wget exit {exit}){}",
                    last.map(|l| format!(": {l}")).unwrap_or_default()
                ))
            }
        });
    }
    let why = stderr.lines().map(str::trim).find(|l| !l.is_empty());
    Err(RemoteHttpError::Unusable(why.map(str::to_string)))
}

/// A check that got no HTTP answer.
fn down(detail: String) -> HttpOutcome {
    HttpOutcome {
        up: false,
        code: None,
        latency_ms: None,
        status_field: None,
        detail,
    }
}

/// curl's exit codes in the words a local check uses.
fn describe_curl_error(exit: i32, message: &str, timeout: Duration) -> String {
    match exit {
        28 => format!("timed out after {}", humantime::format_duration(timeout)),
        7 if message.contains("refused") || message.contains("Couldn't connect") => {
            "connection refused".into()
        }
        6 => format!("cannot connect: {message}"),
        7 => format!("cannot connect: {message}"),
        _ if message.is_empty() => format!("request failed (curl exit {exit})"),
        _ => format!("request failed: {message}"),
    }
}

/// The verdict on one HTTP answer: a 2xx code and a body that does not say it is unwell.
fn outcome(code: u16, latency_ms: Option<f64>, body: &[u8]) -> HttpOutcome {
    let status_field = json_status(&body[..body.len().min(MAX_BODY)]);
    let healthy_body = status_field
        .as_deref()
        .is_none_or(|s| !is_unhealthy_word(s));
    let up = (200..300).contains(&code) && healthy_body;
    let mut detail = format!("HTTP {code}");
    if let Some(reason) = reqwest::StatusCode::from_u16(code)
        .ok()
        .and_then(|c| c.canonical_reason())
    {
        detail.push_str(&format!(" {reason}"));
    }
    if let Some(ms) = latency_ms {
        detail.push_str(&format!(" in {ms:.0} ms"));
    }
    if let Some(status) = &status_field {
        detail.push_str(&format!(", status \"{status}\""));
    }
    HttpOutcome {
        up,
        code: Some(code),
        latency_ms,
        status_field,
        detail,
    }
}

/// What one HTTP health check found.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpOutcome {
    pub up: bool,
    pub code: Option<u16>,
    pub latency_ms: Option<f64>,
    /// The `status` field of a JSON body, if any.
    pub status_field: Option<String>,
    pub detail: String,
}

/// What `systemctl show` said about a unit.
#[derive(Clone, Debug, PartialEq, Default)]
pub(crate) struct UnitStatus {
    pub load_state: String,
    pub active_state: String,
    pub sub_state: String,
    pub restarts: Option<u64>,
    pub active_since: String,
}

impl UnitStatus {
    pub fn up(&self) -> bool {
        self.active_state == "active"
    }

    fn detail(&self, unit: &str) -> String {
        if self.load_state == "not-found" {
            return format!("unit {unit} not found");
        }
        let mut text = format!("{unit} {}/{}", self.active_state, self.sub_state);
        if self.up() && !self.active_since.is_empty() {
            text.push_str(&format!(" since {}", self.active_since));
        }
        text
    }
}

/// Checks the URL once when the config is read: only plain http is built in.
fn parse_url(text: &str) -> Result<reqwest::Url, HttpError> {
    let url = reqwest::Url::parse(text.trim()).map_err(|error| HttpError::Url {
        text: text.to_string(),
        error,
    })?;
    match url.scheme() {
        "http" => {}
        "https" => return Err(HttpError::Https(text.to_string())),
        other => {
            return Err(HttpError::Scheme {
                text: text.to_string(),
                scheme: other.to_string(),
            });
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(HttpError::NoHost(text.to_string()));
    }
    Ok(url)
}

/// GETs the health URL once, timing the whole exchange (headers and body), like `curl`.
pub(crate) async fn check_http(
    client: &reqwest::Client,
    url: &reqwest::Url,
    timeout: Duration,
) -> HttpOutcome {
    let started = Instant::now();
    let result = async {
        let mut response = client.get(url.clone()).timeout(timeout).send().await?;
        let code = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            let room = MAX_BODY.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() >= MAX_BODY {
                break;
            }
        }
        Ok::<_, reqwest::Error>((code, body))
    }
    .await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok((code, body)) => {
            let status_field = json_status(&body);
            let healthy_body = status_field
                .as_deref()
                .is_none_or(|s| !is_unhealthy_word(s));
            let up = code.is_success() && healthy_body;
            let mut detail = format!("HTTP {}", code.as_u16());
            if let Some(reason) = code.canonical_reason() {
                detail.push_str(&format!(" {reason}"));
            }
            detail.push_str(&format!(" in {latency_ms:.0} ms"));
            if let Some(status) = &status_field {
                detail.push_str(&format!(", status \"{status}\""));
            }
            HttpOutcome {
                up,
                code: Some(code.as_u16()),
                latency_ms: Some(latency_ms),
                status_field,
                detail,
            }
        }
        Err(e) => HttpOutcome {
            up: false,
            code: e.status().map(|s| s.as_u16()),
            latency_ms: None,
            status_field: None,
            detail: describe_http_error(&e, timeout),
        },
    }
}

/// The `status` field of a JSON health document (`{"status": "healthy"}`).
fn json_status(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    match value.get("status")? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// Status words that health endpoints use to say they are not well, even with a 200.
fn is_unhealthy_word(status: &str) -> bool {
    matches!(
        status.trim().to_ascii_lowercase().as_str(),
        "unhealthy" | "down" | "fail" | "failed" | "failing" | "error" | "out_of_service"
    )
}

/// A short reason: "connection refused", "timed out after 1s", ...
fn describe_http_error(error: &reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return format!("timed out after {}", humantime::format_duration(timeout));
    }
    // The useful words are at the bottom of the error chain (an io::Error or a DNS error).
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    let mut innermost = None;
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return "connection refused".into(),
                std::io::ErrorKind::TimedOut => {
                    return format!("timed out after {}", humantime::format_duration(timeout));
                }
                _ => {}
            }
        }
        innermost = Some(e.to_string());
        source = e.source();
    }
    let what = if error.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    match innermost {
        Some(inner) => format!("{what}: {inner}"),
        None => format!("{what}: {error}"),
    }
}

/// Runs `systemctl show` for a unit (no shell; the unit is one argument after `--`).
pub(crate) async fn check_systemd(unit: &str, timeout: Duration) -> Result<UnitStatus, UnitError> {
    let mut command = tokio::process::Command::new("systemctl");
    command
        .args([
            "show",
            "--property=LoadState,ActiveState,SubState,NRestarts,ActiveEnterTimestamp",
            "--no-pager",
            "--",
            unit,
        ])
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = match tokio::time::timeout(timeout, command.output()).await {
        Err(_) => {
            return Err(UnitError::NoAnswer {
                unit: unit.to_string(),
                after: timeout,
            });
        }
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(UnitError::NoSystemctl {
                unit: unit.to_string(),
                host: None,
            });
        }
        Ok(Err(e)) => return Err(UnitError::Run(e)),
        Ok(Ok(output)) => output,
    };
    interpret_systemctl(
        unit,
        output.status.success(),
        &output.status.to_string(),
        &output.stdout,
        &output.stderr,
    )
}

/// `systemctl show` on a remote host (the unit is one quoted argument after `--`). `Err`
/// is a transport failure; the inner result is what a local check would say.
pub(crate) async fn check_systemd_remote(
    transport: &Transport,
    unit: &str,
    timeout: Duration,
) -> Result<Result<UnitStatus, UnitError>, TransportError> {
    let out = transport
        .exec_timeout(
            &[
                "systemctl",
                "show",
                "--property=LoadState,ActiveState,SubState,NRestarts,ActiveEnterTimestamp",
                "--no-pager",
                "--",
                unit,
            ],
            timeout + Duration::from_secs(2),
        )
        .await?;
    if out.status.code == Some(127) {
        return Ok(Err(UnitError::NoSystemctl {
            unit: unit.to_string(),
            host: Some(transport.name().to_string()),
        }));
    }
    Ok(interpret_systemctl(
        unit,
        out.success(),
        &out.status.to_string(),
        &out.stdout,
        &out.stderr,
    ))
}

/// What `systemctl show` printed, as a unit status or the reason it failed.
fn interpret_systemctl(
    unit: &str,
    success: bool,
    status: &str,
    stdout: &[u8],
    stderr: &[u8],
) -> Result<UnitStatus, UnitError> {
    if !success {
        let stderr = String::from_utf8_lossy(stderr);
        let reason = stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let reason = if reason.is_empty() {
            format!("exit status {status}")
        } else {
            reason
        };
        return Err(UnitError::Failed {
            unit: unit.to_string(),
            reason,
        });
    }
    let status = parse_systemctl_show(&String::from_utf8_lossy(stdout));
    if status.active_state.is_empty() {
        return Err(UnitError::NoActiveState {
            unit: unit.to_string(),
        });
    }
    Ok(status)
}

/// Reads `Key=Value` lines from `systemctl show`.
pub(crate) fn parse_systemctl_show(text: &str) -> UnitStatus {
    let mut status = UnitStatus::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim().to_string();
        match key.trim() {
            "LoadState" => status.load_state = value,
            "ActiveState" => status.active_state = value,
            "SubState" => status.sub_state = value,
            "NRestarts" => status.restarts = value.parse().ok(),
            "ActiveEnterTimestamp" => status.active_since = value,
            _ => {}
        }
    }
    status
}

/// Turns the two checks into the updates: the Services row, the figures, the health.
fn assemble(
    name: &str,
    unit_name: Option<&str>,
    http: Option<Result<HttpOutcome, String>>,
    unit: Option<Result<UnitStatus, String>>,
) -> Vec<Update> {
    let id = |figure: &str| format!("{name}.{figure}");
    // Names carry the service so an alert reads "api up", not label("up").
    let label = |what: &str| format!("{name} {what}");
    let mut readings = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    // Verdicts of the parts that ran: (up, detail).
    let mut verdicts: Vec<(bool, String)> = Vec::new();

    let mut code = None;
    let mut latency_ms = None;
    // Latency and code say nothing new while the service is down: they fold into `up`.
    let code_rule = Rule::default().depending_on(id("up"));
    match &http {
        None => {}
        Some(Err(e)) => {
            errors.push(e.clone());
            readings.push(
                Reading::failed(id("health_ms"), label("health latency"), e.clone())
                    .with_unit("ms")
                    .with_rule(code_rule.clone()),
            );
            readings.push(
                Reading::failed(id("health_code"), label("health code"), e.clone())
                    .with_rule(code_rule.clone()),
            );
        }
        Some(Ok(outcome)) => {
            verdicts.push((outcome.up, outcome.detail.clone()));
            code = outcome.code;
            latency_ms = outcome.latency_ms;
            let latency_rule = Rule::warn_crit(Threshold::above(1000.0), Threshold::above(2000.0))
                .depending_on(id("up"));
            readings.push(match outcome.latency_ms {
                Some(ms) if outcome.code.is_some() => {
                    Reading::number(id("health_ms"), label("health latency"), ms, "ms")
                        .with_detail(outcome.detail.clone())
                        .with_rule(latency_rule)
                }
                _ => Reading::failed(
                    id("health_ms"),
                    label("health latency"),
                    outcome.detail.clone(),
                )
                .with_unit("ms")
                .with_rule(latency_rule),
            });
            readings.push(
                match outcome.code {
                    Some(code) => Reading::number(
                        id("health_code"),
                        label("health code"),
                        f64::from(code),
                        "",
                    )
                    .with_detail(outcome.detail.clone()),
                    None => Reading::failed(
                        id("health_code"),
                        label("health code"),
                        outcome.detail.clone(),
                    ),
                }
                .with_rule(code_rule.clone()),
            );
        }
    }

    let mut restarts = None;
    let mut sub_state = None;
    match &unit {
        None => {}
        Some(Err(e)) => {
            errors.push(e.clone());
            readings.push(Reading::failed(
                id("restarts"),
                label("restarts"),
                e.clone(),
            ));
        }
        Some(Ok(status)) => {
            verdicts.push((status.up(), status.detail(unit_name.unwrap_or("unit"))));
            restarts = status.restarts;
            sub_state = Some(if status.sub_state.is_empty() {
                status.active_state.clone()
            } else {
                status.sub_state.clone()
            });
            readings.push(match status.restarts {
                Some(n) => Reading::number(id("restarts"), label("restarts"), n as f64, "")
                    .with_detail("systemd NRestarts since the unit was loaded"),
                None => Reading::failed(
                    id("restarts"),
                    label("restarts"),
                    "systemd gave no NRestarts",
                ),
            });
        }
    }

    let up_rule = Rule::crit_only(Threshold::below(1.0)).with_priority(Priority::P0);
    let any_down = verdicts.iter().any(|(up, _)| !up);
    let mut updates = Vec::new();
    // Up is only claimed when every configured check ran; down is certain as soon as one says so.
    if any_down || (errors.is_empty() && !verdicts.is_empty()) {
        let up = !any_down;
        let detail = verdicts
            .iter()
            .map(|(_, d)| d.as_str())
            .chain(errors.iter().map(String::as_str));
        let detail = detail.collect::<Vec<_>>().join("; ");
        let kind = match (&http, &unit) {
            (Some(_), Some(_)) => "systemd+http",
            (Some(_), None) => "http",
            _ => "systemd",
        };
        let status = match (sub_state, code) {
            (Some(sub), Some(code)) => format!("{sub} · {code}"),
            (Some(sub), None) => sub,
            (None, Some(code)) => code.to_string(),
            (None, None) => "down".into(),
        };
        updates.push(Update::Service(ServiceStatus {
            name: name.to_string(),
            kind: kind.into(),
            up,
            status,
            latency_ms,
            restarts,
            detail: detail.clone(),
        }));
        readings.insert(
            0,
            Reading::number(id("up"), label("up"), if up { 1.0 } else { 0.0 }, "")
                .with_detail(detail)
                .with_rule(up_rule),
        );
    } else {
        let error = errors.join("; ");
        readings.insert(
            0,
            Reading::failed(id("up"), label("up"), error).with_rule(up_rule),
        );
    }
    updates.push(Update::Readings {
        source: name.to_string(),
        readings,
    });
    // Health goes last: a reading marks the source fresh, an error must still win.
    updates.push(if errors.is_empty() {
        health(name, SourceHealth::Ok)
    } else {
        health(
            name,
            SourceHealth::Error {
                message: errors.join("; "),
                retry_in_secs: None,
            },
        )
    });
    updates
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_systemctl_show() {
        let status = parse_systemctl_show(
            "LoadState=loaded\nActiveState=active\nSubState=running\nNRestarts=2\n\
             ActiveEnterTimestamp=Mon 2026-11-23 10:00:00 UTC\n",
        );
        assert!(status.up());
        assert_eq!(status.sub_state, "running");
        assert_eq!(status.restarts, Some(2));
        assert_eq!(status.active_since, "Mon 2026-11-23 10:00:00 UTC");
        let failed = parse_systemctl_show("ActiveState=failed\nSubState=failed\nNRestarts=5\n");
        assert!(!failed.up());
    }

    #[test]
    fn malformed_urls_are_rejected_with_the_reason() {
        assert!(parse_url("http://127.0.0.1:8000/health").is_ok());
        let error = |text: &str| parse_url(text).unwrap_err().to_string();
        assert_eq!(
            error("not a url"),
            "health_url \"not a url\" is not a valid URL: relative URL without a base"
        );
        assert_eq!(
            error("ftp://x/health"),
            "health_url \"ftp://x/health\": scheme \"ftp\" is not http"
        );
        assert_eq!(
            error("https://x/health"),
            "health_url \"https://x/health\": https is not supported by this build yet (plain http only)"
        );
    }

    #[test]
    fn json_status_field_and_unhealthy_words() {
        assert_eq!(
            json_status(br#"{"status": "healthy"}"#).as_deref(),
            Some("healthy")
        );
        assert_eq!(json_status(br#"{"status": 1}"#).as_deref(), Some("1"));
        assert_eq!(json_status(b"OK"), None);
        assert!(is_unhealthy_word("Unhealthy"));
        assert!(is_unhealthy_word("DOWN"));
        assert!(!is_unhealthy_word("healthy"));
    }

    #[test]
    fn remote_curl_output_reads_like_a_local_check() {
        let t = Duration::from_secs(2);
        let ok = parse_remote_http(
            b"{\"status\": \"healthy\"}\n@watchpost-curl 200 0.012500\n@watchpost-exit 0\n",
            "",
            t,
            40.0,
        )
        .unwrap();
        assert!(ok.up);
        assert_eq!(ok.code, Some(200));
        assert_eq!(ok.latency_ms, Some(12.5));
        assert_eq!(ok.status_field.as_deref(), Some("healthy"));
        assert_eq!(ok.detail, "HTTP 200 OK in 12 ms, status \"healthy\"");
        // A 200 that says it is unwell is down, as locally.
        let sick = parse_remote_http(
            b"{\"status\":\"unhealthy\"}\n@watchpost-curl 200 0.01\n@watchpost-exit 0\n",
            "",
            t,
            1.0,
        )
        .unwrap();
        assert!(!sick.up);
        let refused = parse_remote_http(
            b"\n@watchpost-curl 000 0.000155\n@watchpost-exit 7\n",
            "curl: (7) Failed to connect to 127.0.0.1 port 1 after 0 ms: Couldn't connect to server",
            t,
            1.0,
        )
        .unwrap();
        assert!(!refused.up);
        assert_eq!(refused.detail, "connection refused");
        assert_eq!(refused.code, None);
        let slow = parse_remote_http(
            b"\n@watchpost-curl 000 2.001\n@watchpost-exit 28\n",
            "curl: (28) Operation timed out",
            t,
            1.0,
        )
        .unwrap();
        assert_eq!(slow.detail, "timed out after 2s");
        let unusable = |stderr: &str| parse_remote_http(b"", stderr, t, 1.0).unwrap_err();
        assert_eq!(
            unusable("\n sh: 1: oops\n").to_string(),
            "the health check printed nothing usable: sh: 1: oops"
        );
        assert_eq!(
            unusable("").to_string(),
            "the health check printed nothing usable"
        );
    }

    #[test]
    fn remote_wget_output_gives_the_final_code() {
        let t = Duration::from_secs(2);
        let out = b"Connecting to 127.0.0.1:80... connected.\n  HTTP/1.1 301 Moved\n  Location: /x\n  HTTP/1.1 503 Service Unavailable\n@watchpost-wget 8 1700000000000000000 1700000000025000000\n";
        let o = parse_remote_http(out, "", t, 99.0).unwrap();
        assert_eq!(o.code, Some(503));
        assert!(!o.up);
        assert_eq!(o.latency_ms, Some(25.0));
        // busybox date has no %N: the round trip is the latency.
        let out = b"  HTTP/1.1 200 OK\n@watchpost-wget 0 %N %N\n";
        let o = parse_remote_http(out, "", t, 99.0).unwrap();
        assert!(o.up);
        assert_eq!(o.latency_ms, Some(99.0));
        let out = b"failed: Connection refused.\n@watchpost-wget 4 1 2\n";
        let o = parse_remote_http(out, "", t, 99.0).unwrap();
        assert_eq!(o.detail, "connection refused");
    }

    #[test]
    fn a_down_unit_is_down_even_when_http_is_unknown() {
        let unit = UnitStatus {
            active_state: "failed".into(),
            sub_state: "failed".into(),
            ..Default::default()
        };
        let updates = assemble(
            "api",
            Some("api.service"),
            Some(Err("bad url".into())),
            Some(Ok(unit)),
        );
        let Update::Readings { readings, .. } = &updates[1] else {
            panic!("{updates:?}")
        };
        assert_eq!(readings[0].id, "api.up");
        assert_eq!(readings[0].value.as_f64(), Some(0.0));
        assert!(matches!(
            updates.last(),
            Some(Update::Health {
                health: SourceHealth::Error { .. },
                ..
            })
        ));
    }
}
