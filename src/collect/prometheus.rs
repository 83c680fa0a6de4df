//! A Prometheus server as a source (`[prometheus.NAME]`): PromQL instant queries as
//! figures, range queries that fill their sparklines at start-up, and, on request, the
//! Services pane from `up` and the Host pane from node-exporter figures of every instance.
//!
//! Figures: `<name>.<figure>` for a query whose answer is one value without labels (a
//! scalar, or `sum(...)`); `<name>.<figure>.<label values>` for each series of a vector
//! (`by = ["instance"]` picks the labels that name a series). With `services = true`,
//! `<name>.<job>.<instance>.up` per scrape target; with `hosts = true`,
//! `<name>.<instance>.cpu_pct`, `.mem_pct`, `.disk_pct`, `.load1` per node-exporter instance.
//!
//! Each round asks once for each distinct expression (the query API takes one expression
//! per request, so that is the batching it allows), at most [`PARALLEL_QUERIES`] at a time,
//! all at the same evaluation time; a round never overlaps the previous one
//! ([`crate::collect::spawn`]). Range queries run only in the first round.
//!
//! What can go wrong is told apart: an unreachable server (the source's health and every
//! figure say "cannot reach Prometheus…"), a query error (Prometheus's own message, e.g.
//! `PromQL bad_data: 1:5: parse error: …`), an empty result (no value, "empty result"), and
//! NaN (shown and written as `NaN`, "not a number", judged as no data).

use crate::collect::{Collector, failed, health};
use crate::config::{ApiEndpoint, PromFigure, PrometheusSource};
use crate::model::figure::{Reading, Value};
use crate::model::update::{DiskUsage, HostSnapshot, ServiceStatus, SourceHealth, Update};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::future::BoxFuture;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// How many queries of one round are in flight at once (kind to a busy server).
pub(crate) const PARALLEL_QUERIES: usize = 8;
/// The most of an API answer that is read.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// An HTTP client for one Prometheus-style API: base URL, bearer token, CA, timeout.
#[derive(Clone)]
pub(crate) struct ApiClient {
    /// What the pane calls the server ("Prometheus", "Alertmanager").
    what: &'static str,
    base: reqwest::Url,
    token: Option<String>,
    client: reqwest::Client,
}

/// Why an API request failed. Each holds the text the pane shows (the server's own words
/// for a rejected request).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub(crate) enum ApiError {
    /// No HTTP answer: refused, timed out, TLS failed.
    #[error("{0}")]
    Unreachable(String),
    /// An answer that says the request was wrong (Prometheus's own error text).
    #[error("{0}")]
    Rejected(String),
}

/// Why no client could be made for an API: the config's URL or CA file. `Display` is the
/// text the source's pane shows; `what` is the server's kind ("Prometheus").
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiClientError {
    #[error("{what} url {url:?} is not a valid URL: {error}")]
    Url {
        what: &'static str,
        url: String,
        error: crate::collect::UrlParseError,
    },
    #[error("{what} url {url:?}: the scheme must be http or https")]
    Scheme { what: &'static str, url: String },
    #[error("{what} ca_file {file}: cannot read it: {error}")]
    ReadCa {
        what: &'static str,
        file: String,
        error: std::io::Error,
    },
    #[error("{what} ca_file {file}: not a PEM certificate: {error}")]
    NotPem {
        what: &'static str,
        file: String,
        error: reqwest::Error,
    },
    #[error("{what} ca_file {file}: no PEM certificate in the file")]
    NoCertificate { what: &'static str, file: String },
    #[error("cannot create the HTTP client: {0}")]
    Client(reqwest::Error),
}

impl ApiClient {
    /// A client for `api`; a bad URL or CA file is an error the pane shows.
    pub fn new(what: &'static str, api: &ApiEndpoint) -> Result<Self, ApiClientError> {
        let mut base =
            reqwest::Url::parse(api.url.trim()).map_err(|error| ApiClientError::Url {
                what,
                url: api.url.clone(),
                error,
            })?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(ApiClientError::Scheme {
                what,
                url: api.url.clone(),
            });
        }
        // Joining "api/v1/query" must keep a path prefix such as /prometheus/.
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let mut builder = reqwest::Client::builder()
            // Monitoring servers are internal; a proxy meant for the internet must not
            // stand in between.
            .no_proxy()
            .timeout(api.timeout)
            .connect_timeout(api.timeout);
        if let Some(file) = &api.ca_file {
            let pem = std::fs::read(file).map_err(|error| ApiClientError::ReadCa {
                what,
                file: file.clone(),
                error,
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|error| {
                ApiClientError::NotPem {
                    what,
                    file: file.clone(),
                    error,
                }
            })?;
            if certs.is_empty() {
                return Err(ApiClientError::NoCertificate {
                    what,
                    file: file.clone(),
                });
            }
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder.build().map_err(ApiClientError::Client)?;
        Ok(ApiClient {
            what,
            base,
            token: api.token.clone().filter(|t| !t.trim().is_empty()),
            client,
        })
    }

    /// GET `path` (relative to the base URL) with `params`: the body of a 2xx answer, or
    /// the error (for any other answer, the server's own message when it gives one).
    pub async fn get(&self, path: &str, params: &[(&str, &str)]) -> Result<Vec<u8>, ApiError> {
        let mut url = self
            .base
            .join(path)
            .map_err(|e| ApiError::Rejected(format!("bad path {path}: {e}")))?;
        if !params.is_empty() {
            url.query_pairs_mut().extend_pairs(params);
        }
        let mut request = self.client.get(url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        let body = read_body(response)
            .await
            .map_err(|e| self.unreachable(&e))?;
        if status.is_success() {
            return Ok(body);
        }
        // Prometheus answers a bad query with 400/422 and a JSON error; say its words.
        let message = api_error_text(&body).unwrap_or_else(|| {
            let text = String::from_utf8_lossy(&body);
            let text = text.trim();
            let reason = status.canonical_reason().unwrap_or("");
            if text.is_empty() {
                format!("{} answered HTTP {} {reason}", self.what, status.as_u16())
            } else {
                format!(
                    "{} answered HTTP {} {reason}: {}",
                    self.what,
                    status.as_u16(),
                    first_line(text)
                )
            }
        });
        Err(ApiError::Rejected(message))
    }

    fn unreachable(&self, e: &reqwest::Error) -> ApiError {
        use std::error::Error as _;
        // reqwest's own text is "error sending request"; the cause says what happened.
        let mut cause = String::new();
        let mut source = e.source();
        while let Some(s) = source {
            cause = s.to_string();
            source = s.source();
        }
        let what = if e.is_timeout() {
            "no answer in time".to_string()
        } else if cause.is_empty() {
            e.to_string()
        } else {
            cause
        };
        ApiError::Unreachable(format!(
            "cannot reach {} at {}: {what}",
            self.what,
            self.base.as_str().trim_end_matches('/')
        ))
    }
}

async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BODY {
            break;
        }
    }
    Ok(body)
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// The `{"status":"error","errorType":…,"error":…}` of a Prometheus answer, as
/// "PromQL bad_data: 1:5: parse error: …".
fn api_error_text(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Failure {
        #[serde(rename = "errorType", default)]
        error_type: String,
        error: String,
    }
    let failure: Failure = serde_json::from_slice(body).ok()?;
    Some(if failure.error_type.is_empty() {
        failure.error
    } else {
        format!("PromQL {}: {}", failure.error_type, failure.error)
    })
}

/// One series of an instant query: its labels and its value as Prometheus wrote it.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: String,
}

impl Sample {
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }

    /// The value as a number, if it is one (NaN and ±Inf are numbers here).
    pub fn number(&self) -> Option<f64> {
        parse_value(&self.value)
    }
}

/// "1.5", "NaN", "+Inf", "-Inf" as Prometheus writes them.
fn parse_value(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        t => t.parse().ok(),
    }
}

/// What one instant query answered.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Answer {
    /// A vector (possibly empty), or a scalar as one series without labels.
    Samples(Vec<Sample>),
    /// The query failed: unreachable server, or Prometheus's error message.
    Failed(ApiError),
}

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error: Option<String>,
    #[serde(rename = "errorType", default)]
    error_type: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct VectorItem {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    value: (f64, String),
}

#[derive(Deserialize)]
struct MatrixItem {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    values: Vec<(f64, String)>,
}

fn envelope_data(body: &[u8]) -> Result<Data, ApiError> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| {
        ApiError::Rejected(format!("the answer is not Prometheus's query JSON: {e}"))
    })?;
    if envelope.status != "success" {
        return Err(ApiError::Rejected(format!(
            "PromQL {}: {}",
            envelope.error_type.unwrap_or_default(),
            envelope.error.unwrap_or_default()
        )));
    }
    envelope
        .data
        .ok_or_else(|| ApiError::Rejected("the answer has no data".into()))
}

/// Reads the body of `/api/v1/query`.
pub(crate) fn parse_instant(body: &[u8]) -> Answer {
    let data = match envelope_data(body) {
        Ok(data) => data,
        Err(e) => return Answer::Failed(e),
    };
    let bad = |e: serde_json::Error| {
        Answer::Failed(ApiError::Rejected(format!(
            "the {} result does not read: {e}",
            data.result_type
        )))
    };
    match data.result_type.as_str() {
        "vector" => match serde_json::from_value::<Vec<VectorItem>>(data.result.clone()) {
            Ok(items) => Answer::Samples(
                items
                    .into_iter()
                    .map(|i| Sample {
                        labels: i.metric,
                        value: i.value.1,
                    })
                    .collect(),
            ),
            Err(e) => bad(e),
        },
        "scalar" | "string" => match serde_json::from_value::<(f64, String)>(data.result.clone()) {
            Ok((_, value)) => Answer::Samples(vec![Sample {
                labels: BTreeMap::new(),
                value,
            }]),
            Err(e) => bad(e),
        },
        "matrix" => Answer::Failed(ApiError::Rejected(
            "the query gives a range vector; a figure needs an instant value (wrap it in rate(), avg_over_time(), …)".into(),
        )),
        other => Answer::Failed(ApiError::Rejected(format!(
            "unknown result type {other:?}"
        ))),
    }
}

/// One series of a range query: its labels and its points (NaN points left out).
pub(crate) type RangeSeries = (BTreeMap<String, String>, Vec<(DateTime<Utc>, f64)>);

/// Reads the body of `/api/v1/query_range`.
pub(crate) fn parse_range(body: &[u8]) -> Result<Vec<RangeSeries>, ApiError> {
    let data = envelope_data(body)?;
    if data.result_type != "matrix" {
        return Err(ApiError::Rejected(format!(
            "a range query answered a {}",
            data.result_type
        )));
    }
    let items: Vec<MatrixItem> = serde_json::from_value(data.result)
        .map_err(|e| ApiError::Rejected(format!("the matrix does not read: {e}")))?;
    Ok(items
        .into_iter()
        .map(|item| {
            let points = item
                .values
                .into_iter()
                .filter_map(|(t, v)| {
                    let v = parse_value(&v).filter(|v| v.is_finite())?;
                    let at = DateTime::from_timestamp_millis((t * 1000.0).round() as i64)?;
                    Some((at, v))
                })
                .collect();
            (item.metric, points)
        })
        .collect())
}

/// Keeps a label value usable inside a figure id: letters, digits and `_-.:`; the rest `_`.
fn id_part(text: &str) -> String {
    let part: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_-.:".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if part.is_empty() { "-".into() } else { part }
}

/// The labels that name a series: those in `by`, else every label but `__name__`.
fn naming_labels<'a>(
    labels: &'a BTreeMap<String, String>,
    by: &'a [String],
) -> Vec<(&'a str, &'a str)> {
    if by.is_empty() {
        labels
            .iter()
            .filter(|(k, _)| k.as_str() != "__name__")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    } else {
        by.iter()
            .map(|k| {
                let (k, v) = labels
                    .get_key_value(k)
                    .map_or((k.as_str(), ""), |(k, v)| (k.as_str(), v.as_str()));
                (k, v)
            })
            .collect()
    }
}

/// `instance="web-1:9100", job="node"`.
fn label_text(labels: &[(&str, &str)]) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The figure id and name of one series of figure `f` of source `source`: the figure's
/// own for a series without naming labels, `<figure>.<values>` otherwise.
pub(crate) fn series_id(
    source: &str,
    f: &PromFigure,
    labels: &BTreeMap<String, String>,
) -> (String, String) {
    let base_id = format!("{source}.{}", f.id);
    let base_name = f.name.clone().unwrap_or_else(|| base_id.clone());
    let naming = naming_labels(labels, &f.by);
    if naming.iter().all(|(_, v)| v.is_empty()) {
        return (base_id, base_name);
    }
    let suffix: Vec<String> = naming.iter().map(|(_, v)| id_part(v)).collect();
    (
        format!("{base_id}.{}", suffix.join(".")),
        format!("{base_name} {{{}}}", label_text(&naming)),
    )
}

/// The readings of figure `f` from its query's answer. `known` lists the series ids seen
/// before, so a series that left the result, or a failed query, says so instead of
/// going quiet.
pub(crate) fn figure_readings(
    source: &str,
    f: &PromFigure,
    answer: &Answer,
    known: &mut Vec<(String, String)>,
) -> Vec<Reading> {
    let base_id = format!("{source}.{}", f.id);
    let base_name = f.name.clone().unwrap_or_else(|| base_id.clone());
    let rule = f.rule();
    let finish = |reading: Reading| {
        let reading = reading.with_unit(&f.unit);
        match &rule {
            Some(rule) => reading.with_rule(rule.clone()),
            None => reading,
        }
    };
    let mut out = Vec::new();
    match answer {
        Answer::Failed(error) => {
            if known.is_empty() {
                out.push(finish(Reading::failed(
                    &base_id,
                    &base_name,
                    error.to_string(),
                )));
            }
            for (id, name) in known.iter() {
                out.push(finish(Reading::failed(id, name, error.to_string())));
            }
        }
        Answer::Samples(samples) if samples.is_empty() => {
            let empty = "empty result: the query matched no series";
            out.push(finish(
                Reading {
                    value: Value::None,
                    ..Reading::text(&base_id, &base_name, "")
                }
                .with_detail(empty),
            ));
            for (id, name) in known.iter().filter(|(id, _)| *id != base_id) {
                out.push(finish(
                    Reading {
                        value: Value::None,
                        ..Reading::text(id, name, "")
                    }
                    .with_detail(empty),
                ));
            }
            known.clear();
            known.push((base_id, base_name));
        }
        Answer::Samples(samples) => {
            let mut seen = Vec::new();
            for sample in samples {
                let (id, name) = series_id(source, f, &sample.labels);
                let labels = label_text(&naming_labels(&sample.labels, &[]));
                out.push(finish(sample_reading(&id, &name, sample, &labels)));
                seen.push((id, name));
            }
            for (id, name) in known.iter() {
                if !seen.iter().any(|(s, _)| s == id) {
                    out.push(finish(
                        Reading {
                            value: Value::None,
                            ..Reading::text(id, name, "")
                        }
                        .with_detail("no longer in the query's result"),
                    ));
                }
            }
            *known = seen;
        }
    }
    out
}

/// One series' value.
fn sample_reading(id: &str, name: &str, sample: &Sample, labels: &str) -> Reading {
    let detail = |what: &str| {
        if labels.is_empty() {
            what.to_string()
        } else if what.is_empty() {
            labels.to_string()
        } else {
            format!("{what}; {labels}")
        }
    };
    // NaN and ±Inf stay numbers: shown and written as such, judged as "no data".
    match sample.number() {
        Some(n) if n.is_finite() => Reading::number(id, name, n, "").with_detail(detail("")),
        Some(n) if n.is_nan() => Reading::number(id, name, n, "").with_detail(detail(
            "NaN: not a number (such as 0/0, a ratio over no events)",
        )),
        Some(n) => {
            Reading::number(id, name, n, "").with_detail(detail("infinite (a division by zero)"))
        }
        None => Reading::text(id, name, sample.value.clone()).with_detail(detail("not a number")),
    }
}

/// The queries behind `services = true`.
const UP: &str = "up";
const SCRAPE_SECONDS: &str = "scrape_duration_seconds";
/// The queries behind `hosts = true` (node-exporter's metric names), batched with regex
/// name matchers where one answer can carry several metrics.
const NODE_CPU: &str =
    r#"100 * (1 - avg by (instance) (irate(node_cpu_seconds_total{mode="idle"}[5m])))"#;
const NODE_CORES: &str = r#"count by (instance) (node_cpu_seconds_total{mode="idle"})"#;
const NODE_MEMORY: &str =
    r#"{__name__=~"node_memory_MemTotal_bytes|node_memory_MemAvailable_bytes"}"#;
const NODE_LOAD: &str = r#"{__name__=~"node_load1|node_load5|node_load15"}"#;
const NODE_DISKS: &str = r#"{__name__=~"node_filesystem_size_bytes|node_filesystem_free_bytes|node_filesystem_avail_bytes",fstype!~"tmpfs|ramfs|devtmpfs|overlay|squashfs|nsfs|autofs|proc|sysfs"}"#;
const NODE_UPTIME: &str = "node_time_seconds - node_boot_time_seconds";
const NODE_UNAME: &str = "node_uname_info";
const HOST_QUERIES: [&str; 7] = [
    NODE_CPU,
    NODE_CORES,
    NODE_MEMORY,
    NODE_LOAD,
    NODE_DISKS,
    NODE_UPTIME,
    NODE_UNAME,
];

pub(crate) struct PrometheusCollector {
    name: String,
    interval: Duration,
    history: Duration,
    services: bool,
    hosts: bool,
    figures: Vec<PromFigure>,
    client: Result<ApiClient, ApiClientError>,
    /// Series ids seen per figure, to report the ones that left.
    known: HashMap<String, Vec<(String, String)>>,
    /// Whether the start-up range queries are still to run.
    backfill: bool,
}

impl PrometheusCollector {
    pub fn new(name: &str, source: &PrometheusSource) -> Self {
        PrometheusCollector {
            name: name.to_string(),
            interval: source.interval,
            history: source.history,
            services: source.services,
            hosts: source.hosts,
            figures: source.figures.clone(),
            client: ApiClient::new("Prometheus", &source.api()),
            known: HashMap::new(),
            backfill: !source.history.is_zero(),
        }
    }

    /// Every distinct expression this source asks each round, in a stable order.
    pub(crate) fn expressions(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut add = |q: &str| {
            if !out.iter().any(|e| e == q) {
                out.push(q.to_string());
            }
        };
        for f in &self.figures {
            add(f.query.trim());
        }
        if self.services {
            add(UP);
            add(SCRAPE_SECONDS);
        }
        if self.hosts {
            for q in HOST_QUERIES {
                add(q);
            }
        }
        out
    }

    async fn round(&mut self, client: &ApiClient) -> Vec<Update> {
        let now = Utc::now();
        let time = format!("{:.3}", now.timestamp_millis() as f64 / 1000.0);
        let expressions = self.expressions();
        let answers: HashMap<String, Answer> =
            futures::stream::iter(expressions.iter().cloned().map(|query| {
                let time = time.clone();
                async move {
                    let answer = match client
                        .get(
                            "api/v1/query",
                            &[("query", query.as_str()), ("time", &time)],
                        )
                        .await
                    {
                        Ok(body) => parse_instant(&body),
                        Err(e) => Answer::Failed(e),
                    };
                    (query, answer)
                }
            }))
            .buffer_unordered(PARALLEL_QUERIES)
            .collect()
            .await;

        // Every query unreachable: the server is down; one line says so.
        let unreachable = answers
            .values()
            .find_map(|a| match a {
                Answer::Failed(ApiError::Unreachable(m)) => Some(m.clone()),
                _ => None,
            })
            .filter(|_| {
                answers
                    .values()
                    .all(|a| matches!(a, Answer::Failed(ApiError::Unreachable(_))))
            });

        let mut readings = Vec::new();
        for f in &self.figures {
            let answer = &answers[f.query.trim()];
            let known = self.known.entry(f.id.clone()).or_default();
            readings.extend(figure_readings(&self.name, f, answer, known));
        }
        let mut updates = Vec::new();
        if self.services {
            updates.extend(service_updates(
                &self.name,
                &answers[UP],
                &answers[SCRAPE_SECONDS],
                &mut readings,
            ));
        }
        if self.hosts {
            for (key, snapshot) in host_snapshots(&self.name, &answers) {
                readings.extend(crate::collect::host::readings(&key, &snapshot));
                updates.push(Update::Host {
                    source: key,
                    snapshot,
                });
            }
        }
        let mut out = vec![Update::Readings {
            source: self.name.clone(),
            readings,
        }];
        out.extend(updates);
        if let Some(message) = unreachable {
            out.push(failed(&self.name, message, self.interval));
            return out;
        }
        if self.backfill {
            self.backfill = false;
            out.extend(self.history_updates(client, now).await);
        }
        out.push(health(&self.name, SourceHealth::Ok));
        out
    }

    /// The start-up range queries: each figure's past over `history`, at most
    /// [`crate::model::HISTORY_POINTS`] points, as `Update::History` per series (and the
    /// CPU of every discovered host, for the Host pane's sparkline).
    async fn history_updates(&self, client: &ApiClient, now: DateTime<Utc>) -> Vec<Update> {
        let points = crate::model::HISTORY_POINTS as f64;
        let step = self
            .interval
            .as_secs_f64()
            .max(self.history.as_secs_f64() / points)
            .max(1.0);
        let start = now - chrono::Duration::from_std(self.history).unwrap_or_default();
        let (start, end, step) = (
            format!("{:.3}", start.timestamp_millis() as f64 / 1000.0),
            format!("{:.3}", now.timestamp_millis() as f64 / 1000.0),
            format!("{step:.3}"),
        );
        let mut queries: Vec<String> = Vec::new();
        let discovered_cpu = self.hosts.then_some(NODE_CPU);
        for query in self
            .figures
            .iter()
            .map(|f| f.query.trim())
            .chain(discovered_cpu)
        {
            if !queries.iter().any(|q| q == query) {
                queries.push(query.to_string());
            }
        }
        let (start, end, step) = (&start, &end, &step);
        let answers: HashMap<String, Result<Vec<RangeSeries>, ApiError>> =
            futures::stream::iter(queries.into_iter().map(|query| async move {
                let params = [
                    ("query", query.as_str()),
                    ("start", start.as_str()),
                    ("end", end.as_str()),
                    ("step", step.as_str()),
                ];
                let answer = client
                    .get("api/v1/query_range", &params)
                    .await
                    .and_then(|body| parse_range(&body));
                (query, answer)
            }))
            .buffer_unordered(PARALLEL_QUERIES)
            .collect()
            .await;
        let mut out = Vec::new();
        for f in &self.figures {
            // A failed range query only leaves the sparkline to grow from now.
            let Some(Ok(series)) = answers.get(f.query.trim()) else {
                continue;
            };
            for (labels, points) in series {
                if points.is_empty() {
                    continue;
                }
                let (id, _) = series_id(&self.name, f, labels);
                out.push(Update::History {
                    id,
                    points: points.clone(),
                });
            }
        }
        // The Host pane's CPU sparkline of every discovered host.
        if let Some(Ok(series)) = discovered_cpu.and_then(|q| answers.get(q)) {
            for (labels, points) in series {
                let instance = labels.get("instance").map_or("", String::as_str);
                out.push(Update::History {
                    id: format!("{}.{}.cpu_pct", self.name, id_part(instance)),
                    points: points
                        .iter()
                        .map(|(t, v)| (*t, v.clamp(0.0, 100.0)))
                        .collect(),
                });
            }
        }
        out
    }
}

/// One Services row and one `.up` figure per scrape target, from `up` and
/// `scrape_duration_seconds`.
fn service_updates(
    source: &str,
    up: &Answer,
    seconds: &Answer,
    readings: &mut Vec<Reading>,
) -> Vec<Update> {
    let samples = match up {
        Answer::Samples(samples) => samples,
        Answer::Failed(e) => {
            readings.push(Reading::failed(
                format!("{source}.up"),
                format!("{source} targets up"),
                e.to_string(),
            ));
            return Vec::new();
        }
    };
    let target = |s: &Sample| (s.label("job").to_string(), s.label("instance").to_string());
    let latency: HashMap<(String, String), f64> = match seconds {
        Answer::Samples(list) => list
            .iter()
            .filter_map(|s| Some((target(s), s.number()? * 1000.0)))
            .collect(),
        Answer::Failed(_) => HashMap::new(),
    };
    let up_rule = crate::model::rule::Rule::crit_only(crate::model::rule::Threshold::below(1.0))
        .with_priority(crate::model::rule::Priority::P0);
    let mut out = Vec::new();
    for s in samples {
        let (job, instance) = target(s);
        let name = format!("{source}.{}.{}", id_part(&job), id_part(&instance));
        let is_up = s.number() == Some(1.0);
        let latency_ms = latency.get(&(job.clone(), instance.clone())).copied();
        let detail = if is_up {
            format!("scraped by Prometheus (job {job}, instance {instance})")
        } else {
            format!(
                "Prometheus cannot scrape it: up = {} (job {job}, instance {instance})",
                s.value
            )
        };
        readings.push(
            Reading::number(
                format!("{name}.up"),
                format!("{job} {instance} up"),
                if is_up { 1.0 } else { 0.0 },
                "",
            )
            .with_detail(detail.clone())
            .with_rule(up_rule.clone()),
        );
        out.push(Update::Service(ServiceStatus {
            name,
            kind: "prom".into(),
            up: is_up,
            status: if is_up { "up".into() } else { "down".into() },
            latency_ms,
            restarts: None,
            detail,
        }));
    }
    out
}

/// One Host pane snapshot per node-exporter instance, keyed `<source>.<instance>`.
fn host_snapshots(source: &str, answers: &HashMap<String, Answer>) -> Vec<(String, HostSnapshot)> {
    let samples = |query: &str| match answers.get(query) {
        Some(Answer::Samples(list)) => list.as_slice(),
        _ => &[],
    };
    let mut hosts: BTreeMap<String, HostSnapshot> = BTreeMap::new();
    // An instance is a host when node-exporter reports its memory.
    for s in samples(NODE_MEMORY) {
        let host = hosts.entry(s.label("instance").to_string()).or_default();
        let n = s.number().unwrap_or(0.0);
        match s.label("__name__") {
            "node_memory_MemTotal_bytes" => host.mem_total_bytes = n,
            _ => host.mem_used_bytes = n, // available, turned into used below
        }
    }
    for host in hosts.values_mut() {
        host.mem_used_bytes = (host.mem_total_bytes - host.mem_used_bytes).max(0.0);
    }
    let mut each = |query: &str, set: &mut dyn FnMut(&mut HostSnapshot, &Sample)| {
        for s in samples(query) {
            if let Some(host) = hosts.get_mut(s.label("instance")) {
                set(host, s);
            }
        }
    };
    each(NODE_CPU, &mut |h, s| {
        h.cpu_pct = s
            .number()
            .filter(|n| n.is_finite())
            .unwrap_or(0.0)
            .clamp(0.0, 100.0)
    });
    each(NODE_CORES, &mut |h, s| {
        h.cores = s.number().unwrap_or(0.0) as usize
    });
    each(NODE_LOAD, &mut |h, s| {
        let slot = match s.label("__name__") {
            "node_load1" => 0,
            "node_load5" => 1,
            _ => 2,
        };
        h.load[slot] = s.number().unwrap_or(0.0);
    });
    each(NODE_UPTIME, &mut |h, s| {
        h.uptime_secs = s.number().unwrap_or(0.0).max(0.0) as u64
    });
    each(NODE_UNAME, &mut |h, s| {
        h.hostname = s.label("nodename").to_string()
    });
    each(NODE_DISKS, &mut |h, s| {
        let mount = s.label("mountpoint");
        let n = s.number().unwrap_or(0.0);
        let at = match h.disks.iter().position(|d| d.mount == mount) {
            Some(i) => i,
            None => {
                h.disks.push(DiskUsage {
                    mount: mount.to_string(),
                    // Free bytes until all three series are in; turned into used below.
                    used_bytes: f64::NAN,
                    available_bytes: f64::NAN,
                    total_bytes: 0.0,
                });
                h.disks.len() - 1
            }
        };
        let disk = &mut h.disks[at];
        match s.label("__name__") {
            "node_filesystem_size_bytes" => disk.total_bytes = n,
            "node_filesystem_avail_bytes" => disk.available_bytes = n,
            _ => disk.used_bytes = n,
        }
    });
    hosts
        .into_iter()
        .map(|(instance, mut host)| {
            // As `df` computes them: used = size − free; Use% = used / (used + avail), so
            // blocks reserved for root count neither way.
            for d in &mut host.disks {
                let free = d.used_bytes;
                d.used_bytes = (d.total_bytes - free).max(0.0);
            }
            host.disks.retain(|d| {
                d.total_bytes > 0.0 && d.used_bytes.is_finite() && d.available_bytes.is_finite()
            });
            host.disks.sort_by(|a, b| a.mount.cmp(&b.mount));
            if host.hostname.is_empty() {
                host.hostname = instance.clone();
            }
            (format!("{source}.{}", id_part(&instance)), host)
        })
        .collect()
}

impl Collector for PrometheusCollector {
    fn name(&self) -> &str {
        &self.name
    }
    fn panes(&self) -> &'static [crate::model::pane::PaneId] {
        use crate::model::pane::PaneId::{Figures, Host, Services};
        match (self.services, self.hosts) {
            (true, true) => &[Figures, Services, Host],
            (true, false) => &[Figures, Services],
            (false, true) => &[Figures, Host],
            (false, false) => &[Figures],
        }
    }
    fn interval(&self) -> Duration {
        self.interval
    }
    fn poll(&mut self) -> BoxFuture<'_, Vec<Update>> {
        Box::pin(async move {
            let client = match &self.client {
                Ok(client) => client.clone(),
                Err(e) => {
                    let e = e.to_string();
                    let readings = self
                        .figures
                        .iter()
                        .map(|f| {
                            let id = format!("{}.{}", self.name, f.id);
                            Reading::failed(&id, f.name.clone().unwrap_or(id.clone()), &e)
                        })
                        .collect();
                    return vec![
                        Update::Readings {
                            source: self.name.clone(),
                            readings,
                        },
                        health(
                            &self.name,
                            SourceHealth::Error {
                                message: e,
                                retry_in_secs: None,
                            },
                        ),
                    ];
                }
            };
            self.round(&client).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(id: &str, by: &[&str]) -> PromFigure {
        PromFigure {
            id: id.into(),
            name: None,
            query: "q".into(),
            unit: String::new(),
            warn: None,
            crit: None,
            priority: None,
            for_duration: None,
            by: by.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_vector_gives_one_figure_per_series_named_by_its_labels() {
        let body = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"__name__":"up","instance":"web-1:9100","job":"node"},"value":[1700000000.1,"1"]},
            {"metric":{"__name__":"up","instance":"web-2:9100","job":"node"},"value":[1700000000.1,"0"]}]}}"#;
        let answer = parse_instant(body);
        let mut known = Vec::new();
        let got = figure_readings("prom", &figure("up", &["instance"]), &answer, &mut known);
        let ids: Vec<&str> = got.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["prom.up.web-1:9100", "prom.up.web-2:9100"]);
        assert_eq!(got[1].value, Value::Number(0.0));
        assert_eq!(got[0].name, "prom.up {instance=\"web-1:9100\"}");
        assert!(got[0].detail.contains("job=\"node\""), "{}", got[0].detail);
        // A series that leaves the result says so instead of going quiet.
        let one = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"instance":"web-1:9100","job":"node"},"value":[1700000000.1,"1"]}]}}"#;
        let got = figure_readings(
            "prom",
            &figure("up", &["instance"]),
            &parse_instant(one),
            &mut known,
        );
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].value, Value::None);
        assert!(got[1].detail.contains("no longer"));
    }

    #[test]
    fn a_scalar_or_label_free_sum_is_the_figure_itself() {
        let scalar =
            br#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"2.5"]}}"#;
        let got = figure_readings(
            "p",
            &figure("x", &[]),
            &parse_instant(scalar),
            &mut Vec::new(),
        );
        assert_eq!(got[0].id, "p.x");
        assert_eq!(got[0].value, Value::Number(2.5));
        let sum = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"7"]}]}}"#;
        let got = figure_readings("p", &figure("x", &[]), &parse_instant(sum), &mut Vec::new());
        assert_eq!(
            (got[0].id.as_str(), &got[0].value),
            ("p.x", &Value::Number(7.0))
        );
    }

    #[test]
    fn empty_nan_and_errors_are_told_apart() {
        let empty = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        let e = &figure_readings(
            "p",
            &figure("x", &[]),
            &parse_instant(empty),
            &mut Vec::new(),
        )[0];
        assert_eq!((&e.value, &e.error), (&Value::None, &None));
        assert!(e.detail.starts_with("empty result"), "{}", e.detail);

        let nan = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}}"#;
        let n = &figure_readings("p", &figure("x", &[]), &parse_instant(nan), &mut Vec::new())[0];
        assert!(matches!(n.value, Value::Number(v) if v.is_nan()));
        assert_eq!(serde_json::to_string(&n.value).unwrap(), "\"NaN\"");
        assert!(n.detail.contains("not a number"), "{}", n.detail);
        assert_eq!(n.error, None);

        let bad = br#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected end of input"}"#;
        assert_eq!(
            api_error_text(bad).as_deref(),
            Some("PromQL bad_data: 1:5: parse error: unexpected end of input")
        );
        let answer = Answer::Failed(ApiError::Rejected(api_error_text(bad).unwrap()));
        let q = &figure_readings("p", &figure("x", &[]), &answer, &mut Vec::new())[0];
        assert_eq!(q.value, Value::None);
        assert!(q.error.as_deref().unwrap().contains("parse error"));

        let matrix = br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(
            matches!(parse_instant(matrix), Answer::Failed(ApiError::Rejected(m)) if m.contains("range vector"))
        );
        assert!(matches!(
            parse_instant(b"<html>"),
            Answer::Failed(ApiError::Rejected(_))
        ));
    }

    #[test]
    fn range_answers_become_history_points() {
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"instance":"a"},"values":[[1700000000,"1"],[1700000015,"NaN"],[1700000030,"3"]]}]}}"#;
        let series = parse_range(body).unwrap();
        assert_eq!(series.len(), 1);
        let values: Vec<f64> = series[0].1.iter().map(|(_, v)| *v).collect();
        assert_eq!(values, [1.0, 3.0]);
        assert_eq!(series[0].1[1].0.timestamp(), 1700000030);
    }

    #[test]
    fn label_values_are_kept_safe_inside_ids() {
        assert_eq!(id_part("10.0.0.1:9100"), "10.0.0.1:9100");
        assert_eq!(id_part("a b/c\u{1b}"), "a_b_c_");
        assert_eq!(id_part(""), "-");
    }

    #[test]
    fn node_exporter_answers_make_host_snapshots() {
        let vector = |items: &[(&[(&str, &str)], &str)]| {
            Answer::Samples(
                items
                    .iter()
                    .map(|(labels, v)| Sample {
                        labels: labels
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect(),
                        value: v.to_string(),
                    })
                    .collect(),
            )
        };
        let mut answers = HashMap::new();
        answers.insert(
            NODE_MEMORY.to_string(),
            vector(&[
                (
                    &[
                        ("__name__", "node_memory_MemTotal_bytes"),
                        ("instance", "h1"),
                    ],
                    "1000",
                ),
                (
                    &[
                        ("__name__", "node_memory_MemAvailable_bytes"),
                        ("instance", "h1"),
                    ],
                    "250",
                ),
            ]),
        );
        answers.insert(
            NODE_CPU.to_string(),
            vector(&[(&[("instance", "h1")], "42.5")]),
        );
        answers.insert(
            NODE_DISKS.to_string(),
            vector(&[
                (
                    &[
                        ("__name__", "node_filesystem_avail_bytes"),
                        ("instance", "h1"),
                        ("mountpoint", "/"),
                    ],
                    "100",
                ),
                (
                    &[
                        ("__name__", "node_filesystem_size_bytes"),
                        ("instance", "h1"),
                        ("mountpoint", "/"),
                    ],
                    "400",
                ),
                (
                    &[
                        ("__name__", "node_filesystem_free_bytes"),
                        ("instance", "h1"),
                        ("mountpoint", "/"),
                    ],
                    "120",
                ),
            ]),
        );
        let hosts = host_snapshots("prom", &answers);
        assert_eq!(hosts.len(), 1);
        let (key, h) = &hosts[0];
        assert_eq!(key, "prom.h1");
        assert_eq!(h.mem_used_bytes, 750.0);
        assert_eq!(h.cpu_pct, 42.5);
        // As df: used = size − free = 280, Use% = 280 / (280 + 100): the 20 reserved bytes
        // count neither way (size − avail would say 75 %).
        assert_eq!(h.disks[0].used_bytes, 280.0);
        assert!((h.disks[0].used_pct() - 100.0 * 280.0 / 380.0).abs() < 1e-9);
        assert_eq!(h.hostname, "h1");
    }
}
