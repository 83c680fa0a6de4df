//! A Redis server as a source (`[redis.NAME]`): `PING` for reachability and latency, `INFO`
//! for the rest, over one connection kept between polls (made again after it breaks).
//!
//! Figures (see [`crate::model::catalog::redis`]): `up`, `ping_ms`, `cache_hit_pct` (hits of
//! the lookups between two polls, from the change of `keyspace_hits` and `keyspace_misses`,
//! not since the server started), `mem_used_bytes` and, while `maxmemory` is set,
//! `mem_pct`; `evictions_per_min` and `rejected_conns_per_min` (the change of
//! `evicted_keys` and `rejected_connections`), `clients`, `blocked_clients`, `role`, and on a
//! replica `master_link` (`master_link_status`). `[[redis.NAME.metric]]` adds any INFO
//! field. A figure over the interval says "no samples" until two polls were made (or, for
//! the hit %, while nothing was looked up); `watchpost check`, which looks once, reads the
//! counters since the server started instead and says so.
//!
//! The server is reached from the source's `host`: from here, or through a `[hosts]` host's
//! one SSH connection as a `direct-tcpip` channel ([`Transport::connect_tcp`]).

use crate::collect::counters::{self, NEEDS_TWO, no_samples};
use crate::collect::docker::address::ContainerAddress;
use crate::collect::{Collector, Reach, health};
use crate::config::{RedisMetric, RedisSource};
use crate::model::catalog::{Fig, redis as fig};
use crate::model::figure::Reading;
use crate::model::pane::PaneId;
use crate::model::rule::{Priority, Rule, Threshold};
use crate::model::update::{ServiceStatus, SourceHealth, Update};
use crate::transport::Transport;
use ::redis::aio::MultiplexedConnection;
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Where the server is and how to sign in.
#[derive(Clone, Debug)]
struct Target {
    host: String,
    port: u16,
    settings: ::redis::RedisConnectionInfo,
    /// Reached at a container's address (`container = "SERVICE"`): which one.
    container: Option<String>,
}

impl Target {
    fn from_source(source: &RedisSource) -> Result<Target, String> {
        let (mut host, mut port, mut settings) = match source.url.as_deref().map(str::trim) {
            Some(url) if !url.is_empty() => {
                let info = ::redis::IntoConnectionInfo::into_connection_info(url)
                    .map_err(|e| format!("the url is not a Redis URL: {e}"))?;
                match info.addr() {
                    ::redis::ConnectionAddr::Tcp(host, port) => {
                        (host.clone(), *port, info.redis_settings().clone())
                    }
                    _ => return Err("only redis://host:port URLs are supported".into()),
                }
            }
            _ => (String::new(), 6379, ::redis::RedisConnectionInfo::default()),
        };
        if let Some(address) = source.address.as_deref().map(str::trim)
            && !address.is_empty()
        {
            let (h, p) = split_address(address)?;
            (host, port) = (h, p);
        }
        // With `container`, the host given decides: the container's own name (or none) is
        // its address, from the engine; any other host is reached as written.
        let container = crate::config::container_in_use(source.container.as_deref(), &host);
        if container.is_some() {
            host.clear();
        }
        if host.is_empty() && container.is_none() {
            return Err("give url, address (host:port) or container".into());
        }
        if let Some(password) = source.password.as_deref().filter(|p| !p.is_empty()) {
            settings = settings.set_password(password);
        }
        // No CLIENT SETINFO: older servers answer it with an error, and it says nothing we need.
        settings = settings
            .set_protocol(::redis::ProtocolVersion::RESP2)
            .set_skip_set_lib_name();
        Ok(Target {
            host,
            port,
            settings,
            container: container.map(|c| match source.project.as_deref() {
                Some(p) if !p.trim().is_empty() => format!("container {c} of compose project {p}"),
                _ => format!("container {c}"),
            }),
        })
    }

    fn address(&self) -> String {
        match &self.container {
            Some(container) if self.host.is_empty() => container.clone(),
            Some(container) => format!("{container} ({}:{})", self.host, self.port),
            None => format!("{}:{}", self.host, self.port),
        }
    }
}

/// The lookup of `container` (with its compose `project`) on the engine of the host behind
/// `reach`, for a Redis or PostgreSQL source that names one.
pub(crate) fn container_address(
    container: Option<&str>,
    project: &Option<String>,
    reach: &Reach,
) -> Option<ContainerAddress> {
    let container = container.map(str::trim).filter(|c| !c.is_empty())?;
    let remote = match reach {
        Ok(Transport::Ssh(_)) => reach.as_ref().ok().cloned(),
        _ => None,
    };
    let project = project.clone().filter(|p| !p.trim().is_empty());
    Some(ContainerAddress::new(container, project, remote))
}

/// `host:port` (IPv6 in brackets) into its parts.
pub(crate) fn split_address(address: &str) -> Result<(String, u16), String> {
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| format!("address {address:?} is not host:port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("address {address:?}: {port:?} is not a port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((host.to_string(), port))
}

/// The counters whose change over an interval makes a figure.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Counters {
    at: Instant,
    hits: u64,
    misses: u64,
    evicted: u64,
    rejected: u64,
}

pub struct RedisCollector {
    name: String,
    interval: Duration,
    timeout: Duration,
    reach: Reach,
    target: Result<Target, String>,
    metrics: Vec<RedisMetric>,
    conn: Option<MultiplexedConnection>,
    last: Option<Counters>,
    one_shot: bool,
    /// `container = "SERVICE"`: its address, looked up for every new connection.
    container: Option<ContainerAddress>,
}

impl RedisCollector {
    /// A server reached from the host behind `reach` (from the pool: [`crate::collect::reach`]).
    pub fn on(name: &str, source: &RedisSource, reach: Reach) -> Self {
        let target = Target::from_source(source);
        // Only when the container is the one reached (the url's host is its name).
        let in_use = target.as_ref().is_ok_and(|t| t.container.is_some());
        let container = container_address(
            source.container.as_deref().filter(|_| in_use),
            &source.project,
            &reach,
        );
        RedisCollector {
            container,
            name: name.to_string(),
            interval: source.interval,
            timeout: source.timeout,
            reach,
            target,
            metrics: source.metrics.clone(),
            conn: None,
            last: None,
            one_shot: false,
        }
    }

    /// A server reached from this machine.
    pub fn new(name: &str, source: &RedisSource) -> Self {
        Self::on(
            name,
            source,
            crate::collect::reach_without_pool(&source.host),
        )
    }

    async fn connect(
        &self,
        transport: &Transport,
        target: &Target,
    ) -> Result<MultiplexedConnection, String> {
        let stream = transport
            .connect_tcp(&target.host, target.port, self.timeout)
            .await
            .map_err(|e| e.to_string())?;
        let config = ::redis::AsyncConnectionConfig::new()
            .set_response_timeout(Some(self.timeout))
            .set_connection_timeout(Some(self.timeout));
        let made = tokio::time::timeout(
            self.timeout,
            MultiplexedConnection::new_with_config(&target.settings, stream, config),
        )
        .await
        .map_err(|_| {
            format!(
                "{} did not answer the handshake within {}s",
                target.address(),
                self.timeout.as_secs()
            )
        })?;
        let (conn, driver) = made.map_err(|e| describe(&e))?;
        // The driver reads the answers; it ends when the connection is dropped or breaks.
        tokio::spawn(driver);
        Ok(conn)
    }

    async fn round(&mut self) -> Vec<Update> {
        let target = match &self.target {
            Ok(target) => target.clone(),
            Err(e) => return self.down(&format!("redis {}: {e}", self.name)),
        };
        let transport = match &self.reach {
            Ok(transport) => transport.clone(),
            Err(e) => {
                let e = e.to_string();
                return self.down(&e);
            }
        };
        let mut target = target;
        if self.conn.is_none()
            && let Some(container) = &mut self.container
        {
            // Looked up again for every connection: a recreated container has a new address.
            match container.resolve().await {
                Ok(ip) => {
                    if let Ok(t) = &mut self.target {
                        t.host = ip.clone();
                    }
                    target.host = ip;
                }
                Err(e) => {
                    if let Ok(t) = &mut self.target {
                        t.host.clear();
                    }
                    return self.down(&format!("redis {}: {e}", self.name));
                }
            }
        }
        if self.conn.is_none() {
            match self.connect(&transport, &target).await {
                Ok(conn) => self.conn = Some(conn),
                Err(e) => return self.down(&format!("redis at {}: {e}", target.address())),
            }
        }
        let Some(conn) = self.conn.as_mut() else {
            return Vec::new();
        };
        let started = Instant::now();
        let pong: Result<String, _> = ::redis::cmd("PING").query_async(conn).await;
        let ping_ms = started.elapsed().as_secs_f64() * 1000.0;
        let info: Result<String, _> = match pong {
            Ok(_) => ::redis::cmd("INFO").query_async(conn).await,
            Err(e) => Err(e),
        };
        let info = match info {
            Ok(text) => parse_info(&text),
            Err(e) => {
                // A broken connection is made again on the next poll.
                self.conn = None;
                return self.down(&format!("redis at {}: {}", target.address(), describe(&e)));
            }
        };
        self.readings(&target, ping_ms, &info)
    }

    /// Every figure of one good poll.
    fn readings(
        &mut self,
        target: &Target,
        ping_ms: f64,
        info: &HashMap<String, String>,
    ) -> Vec<Update> {
        let source = self.name.as_str();
        let int = |key: &str| info.get(key).and_then(|v| v.trim().parse::<u64>().ok());
        let missing =
            |f: &Fig, key: &str| f.failed(source, &format!("INFO has no {key} (is this Redis?)"));
        let mut readings = Vec::new();
        let role = info.get("role").cloned().unwrap_or_default();
        let version = info.get("redis_version").cloned().unwrap_or_default();
        let detail = format!("redis {version} at {}, {role}", target.address());
        readings.push(
            fig::UP
                .number(source, 1.0, "")
                .with_detail(detail.clone())
                .with_rule(up_rule()),
        );
        readings.push(fig::PING_MS.number(source, ping_ms, "ms"));

        let now = Counters {
            at: Instant::now(),
            hits: int("keyspace_hits").unwrap_or(0),
            misses: int("keyspace_misses").unwrap_or(0),
            evicted: int("evicted_keys").unwrap_or(0),
            rejected: int("rejected_connections").unwrap_or(0),
        };
        let uptime = int("uptime_in_seconds").unwrap_or(0);
        let since = if self.one_shot {
            Since::Start(uptime)
        } else {
            match self.last {
                None => Since::Nothing,
                Some(last) => Since::Last(last),
            }
        };
        readings.push(hit_pct(source, since, &now));
        readings.push(per_minute(
            fig::EVICTIONS_PER_MIN,
            source,
            since,
            now.evicted,
            |c| c.evicted,
            "keys evicted",
        ));
        readings.push(
            per_minute(
                fig::REJECTED_PER_MIN,
                source,
                since,
                now.rejected,
                |c| c.rejected,
                "connections rejected (maxclients)",
            )
            .with_rule(Rule::warn_only(Threshold::above(0.0)).with_priority(Priority::P2)),
        );
        self.last = Some(now);

        match int("used_memory") {
            Some(used) => {
                let max = int("maxmemory").unwrap_or(0);
                let policy = info.get("maxmemory_policy").cloned().unwrap_or_default();
                let detail = if max > 0 {
                    format!(
                        "of maxmemory {} ({policy})",
                        crate::model::figure::format_bytes(max as f64)
                    )
                } else {
                    "no maxmemory set".to_string()
                };
                readings.push(
                    fig::MEM_USED_BYTES
                        .number(source, used as f64, "bytes")
                        .with_detail(detail),
                );
                if max > 0 {
                    readings.push(
                        fig::MEM_PCT
                            .number(source, 100.0 * used as f64 / max as f64, "%")
                            .with_detail(format!(
                                "{} of {} ({policy})",
                                crate::model::figure::format_bytes(used as f64),
                                crate::model::figure::format_bytes(max as f64)
                            ))
                            .with_rule(Rule::warn_crit(
                                Threshold::above(80.0),
                                Threshold::above(90.0),
                            )),
                    );
                }
            }
            None => readings.push(missing(&fig::MEM_USED_BYTES, "used_memory")),
        }
        for (f, key) in [
            (fig::CLIENTS, "connected_clients"),
            (fig::BLOCKED_CLIENTS, "blocked_clients"),
        ] {
            readings.push(match int(key) {
                Some(n) => f.number(source, n as f64, ""),
                None => missing(&f, key),
            });
        }
        readings.push(fig::ROLE.text(source, role.clone()));
        if role == "slave" || role == "replica" {
            let link = info
                .get("master_link_status")
                .cloned()
                .unwrap_or_else(|| "unknown".into());
            let master = format!(
                "master {}:{}",
                info.get("master_host").map_or("?", String::as_str),
                info.get("master_port").map_or("?", String::as_str)
            );
            let detail = match int("master_link_down_since_seconds") {
                Some(secs) if link != "up" => format!("{master}, down for {secs}s"),
                _ => master,
            };
            readings.push(
                fig::MASTER_LINK
                    .text(source, link)
                    .with_detail(detail)
                    .with_rule(Rule::expecting("up").with_priority(Priority::P1)),
            );
        }
        name_by_source(source, &mut readings);
        for m in &self.metrics {
            readings.push(metric_reading(source, m, info));
        }
        vec![
            Update::Service(ServiceStatus {
                name: self.name.clone(),
                kind: "redis".into(),
                up: true,
                status: if role.is_empty() { "PONG".into() } else { role },
                latency_ms: Some(ping_ms),
                restarts: None,
                detail,
            }),
            Update::Readings {
                source: self.name.clone(),
                readings,
            },
            health(&self.name, SourceHealth::Ok),
        ]
    }

    /// The server cannot be reached (or the source cannot be set up): `up` is 0, every other
    /// figure carries the error, the Services row is down and the source's health says why.
    fn down(&mut self, message: &str) -> Vec<Update> {
        self.conn = None;
        let source = self.name.as_str();
        let mut readings = vec![
            fig::UP
                .number(source, 0.0, "")
                .with_detail(message)
                .with_rule(up_rule()),
        ];
        readings.extend(
            fig::ALL
                .iter()
                .filter(|f| **f != fig::UP && **f != fig::MEM_PCT && **f != fig::MASTER_LINK)
                .map(|f| f.failed(source, message)),
        );
        name_by_source(source, &mut readings);
        readings.extend(self.metrics.iter().map(|m| {
            let id = format!("{source}.{}", m.id);
            Reading::failed(&id, m.name.clone().unwrap_or(id.clone()), message)
        }));
        vec![
            Update::Service(ServiceStatus {
                name: self.name.clone(),
                kind: "redis".into(),
                up: false,
                status: "down".into(),
                latency_ms: None,
                restarts: None,
                detail: message.to_string(),
            }),
            Update::Readings {
                source: self.name.clone(),
                readings,
            },
            health(
                &self.name,
                SourceHealth::Error {
                    message: message.to_string(),
                    retry_in_secs: Some(self.interval.as_secs().max(1)),
                },
            ),
        ]
    }
}

/// Built-in figures are named after their source ("cache keyspace hit %"): the Figures
/// pane and the alerts list the figures of several servers side by side.
pub(crate) fn name_by_source(source: &str, readings: &mut [Reading]) {
    for r in readings {
        r.name = format!("{source} {}", r.name);
    }
}

/// A server that does not answer is critical, and pages as a database does (P0).
fn up_rule() -> Rule {
    Rule::crit_only(Threshold::below(1.0)).with_priority(Priority::P0)
}

/// What a figure over an interval is measured from.
#[derive(Clone, Copy, Debug)]
enum Since {
    /// The first poll of a live source: nothing yet.
    Nothing,
    /// The previous poll.
    Last(Counters),
    /// `watchpost check` looks once: since the server started, this many seconds ago.
    Start(u64),
}

/// The change of a counter, or `None` when it went backwards (a restart, CONFIG RESETSTAT).
fn delta(now: u64, before: u64) -> Option<u64> {
    now.checked_sub(before)
}

fn hit_pct(source: &str, since: Since, now: &Counters) -> Reading {
    let rule = Rule::warn_only(Threshold::below(85.0))
        .with_priority(Priority::P2)
        .needing_samples(20);
    let (hits, misses, span) = match since {
        Since::Nothing => return no_samples(fig::CACHE_HIT_PCT, source, NEEDS_TWO).with_rule(rule),
        Since::Last(last) => match (delta(now.hits, last.hits), delta(now.misses, last.misses)) {
            (Some(h), Some(m)) => (
                h,
                m,
                format!("in {:.1}s", now.at.duration_since(last.at).as_secs_f64()),
            ),
            _ => {
                return no_samples(
                    fig::CACHE_HIT_PCT,
                    source,
                    "the counters went back (a restart or CONFIG RESETSTAT); again from the next poll",
                )
                .with_rule(rule);
            }
        },
        Since::Start(uptime) => (
            now.hits,
            now.misses,
            format!("since the server started {uptime}s ago (one look)"),
        ),
    };
    let lookups = hits + misses;
    if lookups == 0 {
        return no_samples(
            fig::CACHE_HIT_PCT,
            source,
            &format!("no key was looked up {span}"),
        )
        .with_rule(rule);
    }
    fig::CACHE_HIT_PCT
        .number(source, 100.0 * hits as f64 / lookups as f64, "%")
        .with_detail(format!("{hits} hits, {misses} misses {span}"))
        .with_samples(lookups)
        .with_rule(rule)
}

fn per_minute(
    f: Fig,
    source: &str,
    since: Since,
    now: u64,
    counter: fn(&Counters) -> u64,
    what: &str,
) -> Reading {
    let change = match since {
        Since::Nothing => return no_samples(f, source, NEEDS_TWO),
        Since::Last(last) => {
            let secs = last.at.elapsed().as_secs_f64();
            match delta(now, counter(&last)) {
                Some(n) => (n, secs, format!("in {secs:.1}s")),
                None => {
                    return no_samples(
                        f,
                        source,
                        "the counter went back (a restart or CONFIG RESETSTAT); again from the next poll",
                    );
                }
            }
        }
        Since::Start(uptime) => (
            now,
            uptime as f64,
            format!("since the server started {uptime}s ago (one look)"),
        ),
    };
    counters::per_minute(f, source, change, what)
}

/// One `[[redis.NAME.metric]]`: the INFO field's value, a number when it reads as one.
fn metric_reading(source: &str, m: &RedisMetric, info: &HashMap<String, String>) -> Reading {
    let id = format!("{source}.{}", m.id);
    let name = m.name.clone().unwrap_or_else(|| m.id.clone());
    let reading = match info_field(info, &m.field) {
        None => Reading::failed(&id, &name, format!("INFO has no field {:?}", m.field)),
        Some(value) => match value.trim().parse::<f64>() {
            Ok(n) if n.is_finite() => Reading::number(&id, &name, n, &m.unit),
            _ => Reading::text(&id, &name, value.trim()),
        },
    };
    match m.rule() {
        Some(rule) => reading.with_rule(rule),
        None => reading,
    }
}

/// A field of INFO: `key`, or `line.part` for one part of a `k=v,k=v` line (`db0.keys`).
fn info_field(info: &HashMap<String, String>, field: &str) -> Option<String> {
    if let Some(value) = info.get(field) {
        return Some(value.clone());
    }
    let (line, part) = field.rsplit_once('.')?;
    info.get(line)?.split(',').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == part).then(|| v.trim().to_string())
    })
}

/// INFO's `key:value` lines (sections and comments left out).
pub(crate) fn parse_info(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (key, value) = line.split_once(':')?;
            Some((key.trim().to_string(), value.trim().to_string()))
        })
        .collect()
}

/// A client error as a pane says it: the server's own words, or what broke.
fn describe(e: &::redis::RedisError) -> String {
    if e.is_timeout() {
        return "no answer in time".into();
    }
    if e.is_connection_refusal() {
        return "connection refused".into();
    }
    if e.is_connection_dropped() || e.is_io_error() {
        return format!("connection lost ({e})");
    }
    match e.kind() {
        ::redis::ErrorKind::AuthenticationFailed => {
            format!("authentication failed: {e} (check the password in the url or password)")
        }
        _ => e.to_string(),
    }
}

impl Collector for RedisCollector {
    fn name(&self) -> &str {
        &self.name
    }
    fn panes(&self) -> &'static [PaneId] {
        &[PaneId::Services, PaneId::Figures]
    }
    fn interval(&self) -> Duration {
        self.interval
    }
    fn poll(&mut self) -> BoxFuture<'_, Vec<Update>> {
        Box::pin(async move {
            // Bounded as a whole: a server that accepts but never answers is down.
            let budget = self.timeout * 3;
            match tokio::time::timeout(budget, self.round()).await {
                Ok(updates) => updates,
                Err(_) => {
                    let address = self
                        .target
                        .as_ref()
                        .map(Target::address)
                        .unwrap_or_default();
                    self.down(&format!(
                        "redis at {address}: no answer within {}s",
                        budget.as_secs()
                    ))
                }
            }
        })
    }
    fn one_shot(&mut self) {
        self.one_shot = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "# Server\r\nredis_version:7.0.15\r\nuptime_in_seconds:100\r\n\r\n# Stats\r\nkeyspace_hits:30\r\nkeyspace_misses:10\r\n# Keyspace\r\ndb0:keys=3,expires=1,avg_ttl=0\r\n";

    #[test]
    fn info_lines_and_parts_of_keyspace_lines() {
        let info = parse_info(INFO);
        assert_eq!(info["keyspace_hits"], "30");
        assert_eq!(info_field(&info, "db0.keys").as_deref(), Some("3"));
        assert_eq!(info_field(&info, "db0.expires").as_deref(), Some("1"));
        assert_eq!(info_field(&info, "db0.nothing"), None);
        assert_eq!(
            info_field(&info, "redis_version").as_deref(),
            Some("7.0.15")
        );
    }

    #[test]
    fn hit_rate_is_over_the_interval_and_needs_lookups() {
        let at = Instant::now();
        let before = Counters {
            at,
            hits: 100,
            misses: 100,
            evicted: 0,
            rejected: 0,
        };
        let now = Counters {
            at: at + Duration::from_secs(10),
            hits: 130,
            misses: 110,
            ..before
        };
        let r = hit_pct("c", Since::Last(before), &now);
        assert_eq!(r.value, crate::model::figure::Value::Number(75.0));
        assert_eq!(r.samples, Some(40));
        let r = hit_pct("c", Since::Last(now), &now);
        assert_eq!(
            r.value,
            crate::model::figure::Value::Text("no samples".into())
        );
        let r = hit_pct("c", Since::Nothing, &now);
        assert_eq!(
            r.value,
            crate::model::figure::Value::Text("no samples".into())
        );
        // A restart sets the counters back: not a negative rate.
        let r = hit_pct("c", Since::Last(now), &before);
        assert!(r.detail.contains("went back"), "{}", r.detail);
    }

    #[test]
    fn addresses_split_into_host_and_port() {
        assert_eq!(
            split_address("127.0.0.1:6380").unwrap(),
            ("127.0.0.1".into(), 6380)
        );
        assert_eq!(split_address("[::1]:6379").unwrap(), ("::1".into(), 6379));
        assert!(split_address("redis").is_err());
    }
}
