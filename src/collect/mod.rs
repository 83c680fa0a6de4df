//! Collectors: one module per kind of source. Each is polled by its own task on its own
//! interval; a run never overlaps the previous one, and results go to the state owner
//! over a channel. `watchpost check` polls each once.

pub mod command;
pub mod docker;
pub mod host;
pub mod http;
pub mod journald;
pub mod logmetrics;
pub mod logparse;
pub mod logs;
pub mod sqlite;
pub mod tmws;

use crate::config::Config;
use crate::state::update::{SourceHealth, Update};
use futures::future::BoxFuture;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub type UpdateSender = mpsc::Sender<Update>;

/// A source of figures. `poll` does one round of collection.
pub trait Collector: Send + 'static {
    /// The source name (the first part of every figure id it produces).
    fn name(&self) -> &str;
    /// Which pane this source feeds ("services", "rbac", "license", "containers", "host", "errors").
    fn panes(&self) -> &'static [&'static str];
    /// How long to wait between the end of one poll and the start of the next.
    fn interval(&self) -> Duration;
    /// One round of collection. Errors are reported as `Update::Health` (and as figures
    /// with an error), never by panicking.
    fn poll(&mut self) -> BoxFuture<'_, Vec<Update>>;
}

/// Builds every collector a config describes, in config order.
pub fn from_config(config: &Config) -> Vec<Box<dyn Collector>> {
    let mut collectors: Vec<Box<dyn Collector>> = Vec::new();
    for (name, source) in &config.service {
        collectors.push(Box::new(http::ServiceCollector::new(name, source)));
    }
    for (name, source) in &config.sqlite {
        let metrics = config.metrics.get(name).cloned().unwrap_or_default();
        collectors.push(Box::new(
            sqlite::SqliteCollector::new(name, source).with_metrics(metrics),
        ));
    }
    for (name, source) in &config.docker {
        collectors.push(Box::new(docker::DockerCollector::new(name, source)));
    }
    for (name, source) in &config.system {
        collectors.push(Box::new(host::HostCollector::new(name, source)));
    }
    for (name, source) in &config.logs {
        collectors.push(Box::new(logs::LogCollector::new(name, source)));
    }
    collectors
}

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
