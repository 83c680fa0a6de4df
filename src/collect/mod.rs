//! Collectors: one module per kind of source. Each is polled by its own task on its own
//! interval; a run never overlaps the previous one, and results go to the state owner
//! over a channel. `watchpost check` polls each once.

pub mod alertmanager;
pub(crate) mod blocking;
pub mod command;
pub(crate) mod counters;
pub mod docker;
pub(crate) mod extract;
pub mod host;
pub mod http;
pub mod logs;
pub mod postgres;
pub mod prometheus;
pub mod redis;
pub mod sqlite;

use crate::config::Config;
use crate::model::update::{SourceHealth, Update};
use crate::transport::{HostPool, Transport, TransportError};
use futures::future::BoxFuture;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub(crate) type UpdateSender = mpsc::Sender<Update>;

/// A source of figures. `poll` does one round of collection.
pub trait Collector: Send + 'static {
    /// The source name (the first part of every figure id it produces).
    fn name(&self) -> &str;
    /// Which panes this source feeds.
    fn panes(&self) -> &'static [crate::model::pane::PaneId];
    /// How long to wait between the end of one poll and the start of the next.
    fn interval(&self) -> Duration;
    /// One round of collection. Errors are reported as `Update::Health` (and as figures
    /// with an error), never by panicking.
    fn poll(&mut self) -> BoxFuture<'_, Vec<Update>>;
    /// Hands the collector what the screen shows, for what it fetches only on demand.
    /// Most collectors need nothing of it.
    fn watch_screen(&mut self, _screen: ScreenWatch) {}
    /// The collector is polled once (`watchpost check`): a poll may take longer to read
    /// what a live dashboard would read over several (a log source's window read back, a
    /// command read to its end), within the check's time for a source.
    fn one_shot(&mut self) {}
}

/// What is on screen that a collector fetches only while it is shown (as bottom collects
/// only what is drawn): the dashboard publishes it, collectors read it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OnScreen {
    /// The container zoomed in the Containers pane, as (source, container id): its last
    /// log lines are followed while it stays there.
    pub zoomed_container: Option<(String, String)>,
}

pub(crate) type ScreenWatch = tokio::sync::watch::Receiver<OnScreen>;

/// What the record has counted of the log sources, for their read-back at start (see
/// [`logs::RecordFrom`]).
#[derive(Clone, Debug, PartialEq)]
pub struct RecordMarks {
    /// The start of the record's window.
    pub window_start: chrono::DateTime<chrono::Utc>,
    /// The newest line time counted, per log source.
    pub counted_until: std::collections::HashMap<String, chrono::DateTime<chrono::Utc>>,
}

impl RecordMarks {
    fn of(&self, source: &str) -> logs::RecordFrom {
        logs::RecordFrom {
            counted_until: self.counted_until.get(source).copied(),
            window_start: self.window_start,
        }
    }
}

/// Builds every collector a config describes, in config order. Each one gets the
/// [`Transport`] of its `host` from `pool` (one SSH connection per host, shared by every
/// source on it); resolving never blocks, the connection is made in the background.
/// With a record (`record`: what it has counted), log sources count for it the lines it
/// has not counted yet, those written while nothing watched included.
pub fn from_config(
    config: &Config,
    pool: &HostPool,
    record: Option<&RecordMarks>,
) -> Vec<Box<dyn Collector>> {
    let reach = |host: &str| reach(pool, host);
    let mut collectors: Vec<Box<dyn Collector>> = Vec::new();
    for (name, source) in &config.service {
        collectors.push(Box::new(http::ServiceCollector::on(
            name,
            source,
            reach(&source.host),
        )));
    }
    for (name, source) in &config.sqlite {
        let metrics = config.metrics.get(name).cloned().unwrap_or_default();
        collectors.push(Box::new(
            sqlite::SqliteCollector::on(name, source, reach(&source.host)).with_metrics(metrics),
        ));
    }
    for (name, source) in &config.docker {
        collectors.push(Box::new(docker::DockerCollector::on(
            name,
            source,
            reach(&source.host),
        )));
    }
    for (name, source) in &config.system {
        collectors.push(Box::new(host::HostCollector::on(
            name,
            source,
            reach(&source.host),
        )));
    }
    for (name, source) in &config.logs {
        collectors.push(Box::new(
            logs::LogCollector::on(name, source, reach(&source.host))
                .with_record(record.map(|r| r.of(name))),
        ));
    }
    for (name, source) in &config.prometheus {
        collectors.push(Box::new(prometheus::PrometheusCollector::new(name, source)));
    }
    for (name, source) in &config.redis {
        collectors.push(Box::new(redis::RedisCollector::on(
            name,
            source,
            reach(&source.host),
        )));
    }
    for (name, source) in &config.postgres {
        collectors.push(Box::new(postgres::PostgresCollector::on(
            name,
            source,
            reach(&source.host),
        )));
    }
    for (name, spec) in &config.command {
        collectors.push(Box::new(command::CommandCollector::on(
            name,
            spec,
            reach(&spec.host),
        )));
    }
    for (name, source) in &config.alertmanager {
        collectors.push(Box::new(alertmanager::AlertmanagerCollector::new(
            name, source,
        )));
    }
    collectors
}

/// The hosts the config's sources use (not `local`), each once, in config order: the ones
/// whose keys [`HostPool::unlock_keys`] should unlock before the TUI starts.
pub fn hosts_in_use(config: &Config) -> Vec<String> {
    let hosts = config
        .service
        .values()
        .map(|s| &s.host)
        .chain(config.sqlite.values().map(|s| &s.host))
        .chain(config.docker.values().map(|s| &s.host))
        .chain(config.system.values().map(|s| &s.host))
        .chain(config.logs.values().map(|s| &s.host))
        .chain(config.redis.values().map(|s| &s.host))
        .chain(config.postgres.values().map(|s| &s.host))
        .chain(config.command.values().map(|s| &s.host));
    let mut seen = Vec::new();
    for host in hosts {
        let host = host.trim();
        if !(host.is_empty() || host == "local" || seen.iter().any(|h| h == host)) {
            seen.push(host.to_string());
        }
    }
    seen
}

/// One [`HostPool`] for the process, with the passphrases of encrypted keys of the hosts in
/// use asked for now (before any TUI), unless an agent or `passphrase_env` has them.
pub fn host_pool(
    config: &Config,
    prompt: &mut dyn crate::transport::PassphrasePrompt,
) -> Result<HostPool, TransportError> {
    let pool = HostPool::from_config(config)?;
    let hosts = hosts_in_use(config);
    let hosts: Vec<&str> = hosts.iter().map(String::as_str).collect();
    pool.unlock_keys(&hosts, prompt)?;
    Ok(pool)
}

/// What `reqwest::Url::parse` refuses a URL with (the `url` crate's error).
pub(crate) type UrlParseError = <reqwest::Url as std::str::FromStr>::Err;

/// How a collector reaches its host: a transport, or why there is none.
pub(crate) type Reach = Result<Transport, ReachError>;

/// Why a source's host cannot be reached at all. `Display` is the text its pane shows.
#[derive(Debug, thiserror::Error)]
pub enum ReachError {
    /// A host string the pool cannot resolve.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// A collector built without a pool, for a remote host.
    #[error(
        "host {0:?}: only local sources can be read without the SSH transport (build collectors with collect::from_config and a HostPool)"
    )]
    NoPool(String),
}

/// The transport of `host` from `pool`, or the reason there is none.
pub fn reach(pool: &HostPool, host: &str) -> Reach {
    Ok(pool.transport(host)?)
}

/// Where one poll reads from: `Ok(None)` for this machine, `Ok(Some(t))` through an SSH
/// host, or the update that says why the source's host cannot be reached.
pub fn resolve(source: &str, reach: &Reach) -> Result<Option<Transport>, Vec<Update>> {
    match reach {
        Err(error) => Err(vec![health(
            source,
            SourceHealth::Error {
                message: error.to_string(),
                retry_in_secs: None,
            },
        )]),
        Ok(Transport::Local) => Ok(None),
        Ok(transport) => Ok(Some(transport.clone())),
    }
}

/// For collectors built without a pool (`Collector::new`): local works, a remote host says
/// how to get a transport.
pub(crate) fn reach_without_pool(host: &str) -> Reach {
    let host = host.trim();
    if host.is_empty() || host == "local" {
        Ok(Transport::Local)
    } else {
        Err(ReachError::NoPool(host.to_string()))
    }
}

/// What a pane says about a failed remote call: while the host is not connected, the
/// host's own line ("ssh prod: connection refused, retrying in 4s"); otherwise the error.
pub(crate) fn transport_message(transport: &Transport, error: &TransportError) -> String {
    if let Transport::Ssh(host) = transport {
        let status = host.current_status();
        if !status.is_up() {
            return status.describe(host.name());
        }
    }
    error.to_string()
}

/// Whether the host of `transport` is known to be down or still connecting (its figures
/// are then kept as they are, with their age, and only the host's line is news).
pub(crate) fn host_unreachable(transport: &Transport, error: &TransportError) -> bool {
    match error {
        TransportError::HostDown { .. } => true,
        _ => match transport {
            Transport::Ssh(host) => !host.current_status().is_up(),
            Transport::Local => false,
        },
    }
}

/// The health update for a host that cannot be reached: the message alone, so a pane reads
/// "ssh prod: connection refused, retrying in 4s (figures 12s old)".
pub(crate) fn host_down(source: &str, transport: &Transport, error: &TransportError) -> Update {
    health(
        source,
        SourceHealth::Error {
            message: transport_message(transport, error),
            retry_in_secs: None,
        },
    )
}

/// A timeout for one remote command of a collector polled every `interval`: shorter than
/// the interval (a slow host never piles up work), but never below [`MIN_EXEC_BUDGET`]: the
/// command runs through the remote user's login shell, and a shell that reads a heavy
/// `.bashrc` (pyenv, nvm, conda) can take seconds before the command even starts.
pub(crate) fn exec_budget(interval: Duration) -> Duration {
    interval.mul_f64(0.9).max(MIN_EXEC_BUDGET)
}

/// The least time a remote command of a collector is given (see [`exec_budget`]).
pub(crate) const MIN_EXEC_BUDGET: Duration = Duration::from_secs(5);

/// Runs a collector until the receiver is gone. Each run finishes before the next starts.
pub fn spawn(mut collector: Box<dyn Collector>, tx: UpdateSender) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let updates = collector.poll().await;
            for update in updates {
                if tx.send(update).await.is_err() {
                    return;
                }
            }
            tokio::time::sleep(collector.interval()).await;
        }
    })
}

/// Health update helper for collectors.
pub fn health(source: &str, health: SourceHealth) -> Update {
    Update::Health {
        source: source.to_string(),
        health,
    }
}

/// Error health update helper for collectors.
pub fn failed(source: &str, message: impl Into<String>, retry: Duration) -> Update {
    health(
        source,
        SourceHealth::Error {
            message: message.into(),
            retry_in_secs: Some(retry.as_secs().max(1)),
        },
    )
}
