//! The Services pane's source for one service: an HTTP health endpoint (`curl /health`)
//! and/or a systemd unit (`systemctl status`), as in the runbooks.
//!
//! Figures: `<name>.up` (1 or 0, critical and P0 when 0), `<name>.health_ms`,
//! `<name>.health_code` (with a URL) and `<name>.restarts` (with a unit).
//!
//! A service that refuses connections or times out is *down*: the check ran, so the
//! source itself is healthy. A malformed URL or a missing `systemctl` is a source error.

use crate::collect::{Collector, health};
use crate::config::ServiceSource;
use crate::rules::{Priority, Rule, Threshold};
use crate::state::figure::Reading;
use crate::state::update::{ServiceStatus, SourceHealth, Update};
use futures::future::BoxFuture;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The most of a health body that is read (enough for any JSON status document).
const MAX_BODY: usize = 64 * 1024;

pub struct ServiceCollector {
    name: String,
    interval: Duration,
    timeout: Duration,
    host: String,
    url: Option<Result<reqwest::Url, String>>,
    unit: Option<String>,
    /// One client for every poll, so connections are reused.
    client: Result<reqwest::Client, String>,
}

impl ServiceCollector {
    pub fn new(name: &str, source: &ServiceSource) -> Self {
        let client = reqwest::Client::builder()
            // Health endpoints are internal; an HTTP_PROXY meant for the internet must not
            // stand between the tool and the service it watches.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .map_err(|e| format!("cannot create the HTTP client: {e}"));
        ServiceCollector {
            name: name.to_string(),
            interval: source.interval,
            timeout: source.timeout,
            host: source.host.clone(),
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
    fn panes(&self) -> &'static [&'static str] {
        &["services"]
    }
    fn interval(&self) -> Duration {
        self.interval
    }
    fn poll(&mut self) -> BoxFuture<'_, Vec<Update>> {
        Box::pin(async move {
            if self.host != "local" {
                return vec![health(
                    &self.name,
                    SourceHealth::Error {
                        message: super::host::REMOTE_NOT_BUILT.into(),
                        retry_in_secs: None,
                    },
                )];
            }
            let http = async {
                match (&self.url, &self.client) {
                    (None, _) => None,
                    (Some(Err(e)), _) => Some(Err(e.clone())),
                    (Some(Ok(_)), Err(e)) => Some(Err(e.clone())),
                    (Some(Ok(url)), Ok(client)) => {
                        Some(Ok(check_http(client, url, self.timeout).await))
                    }
                }
            };
            let unit = async {
                match &self.unit {
                    None => None,
                    Some(unit) => Some(check_systemd(unit, self.timeout).await),
                }
            };
            // Both checks run at once: a slow endpoint does not delay the unit.
            let (http, unit) = tokio::join!(http, unit);
            assemble(&self.name, self.unit.as_deref(), http, unit)
        })
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
pub struct UnitStatus {
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
fn parse_url(text: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(text.trim())
        .map_err(|e| format!("health_url {text:?} is not a valid URL: {e}"))?;
    match url.scheme() {
        "http" => {}
        "https" => {
            return Err(format!(
                "health_url {text:?}: https is not supported by this build yet (plain http only)"
            ));
        }
        other => return Err(format!("health_url {text:?}: scheme {other:?} is not http")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("health_url {text:?} has no host"));
    }
    Ok(url)
}

/// GETs the health URL once, timing the whole exchange (headers and body), like `curl`.
pub async fn check_http(
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
pub async fn check_systemd(unit: &str, timeout: Duration) -> Result<UnitStatus, String> {
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
            return Err(format!(
                "systemd: systemctl show {unit} did not answer within {}",
                humantime::format_duration(timeout)
            ));
        }
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "systemd: cannot check unit {unit}: systemctl is not installed (no systemd on this host?)"
            ));
        }
        Ok(Err(e)) => return Err(format!("systemd: cannot run systemctl: {e}")),
        Ok(Ok(output)) => output,
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let reason = stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let reason = if reason.is_empty() {
            format!("exit status {}", output.status)
        } else {
            reason
        };
        return Err(format!(
            "systemd: systemctl show {unit} failed (is systemd running here?): {reason}"
        ));
    }
    let status = parse_systemctl_show(&String::from_utf8_lossy(&output.stdout));
    if status.active_state.is_empty() {
        return Err(format!(
            "systemd: systemctl show {unit} gave no ActiveState"
        ));
    }
    Ok(status)
}

/// Reads `Key=Value` lines from `systemctl show`.
pub fn parse_systemctl_show(text: &str) -> UnitStatus {
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
    match &http {
        None => {}
        Some(Err(e)) => {
            errors.push(e.clone());
            readings.push(
                Reading::failed(id("health_ms"), label("health latency"), e.clone())
                    .with_unit("ms"),
            );
            readings.push(Reading::failed(
                id("health_code"),
                label("health code"),
                e.clone(),
            ));
        }
        Some(Ok(outcome)) => {
            verdicts.push((outcome.up, outcome.detail.clone()));
            code = outcome.code;
            latency_ms = outcome.latency_ms;
            let latency_rule = Rule::warn_crit(Threshold::above(1000.0), Threshold::above(2000.0));
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
            readings.push(match outcome.code {
                Some(code) => {
                    Reading::number(id("health_code"), label("health code"), f64::from(code), "")
                        .with_detail(outcome.detail.clone())
                }
                None => Reading::failed(
                    id("health_code"),
                    label("health code"),
                    outcome.detail.clone(),
                ),
            });
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
        assert!(
            parse_url("not a url")
                .unwrap_err()
                .contains("not a valid URL")
        );
        assert!(
            parse_url("ftp://x/health")
                .unwrap_err()
                .contains("not http")
        );
        assert!(parse_url("https://x/health").unwrap_err().contains("https"));
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
