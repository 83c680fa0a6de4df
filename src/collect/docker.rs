//! PLACEHOLDER: being written.
use crate::collect::Collector;
use crate::config::DockerSource;
use crate::state::update::Update;
use futures::future::BoxFuture;
use std::time::Duration;

pub struct DockerCollector {
    name: String,
    interval: Duration,
}

impl DockerCollector {
    pub fn new(name: &str, source: &DockerSource) -> Self {
        let _ = source;
        DockerCollector {
            name: name.to_string(),
            interval: Duration::from_secs(2),
        }
    }
}

impl Collector for DockerCollector {
    fn name(&self) -> &str {
        &self.name
    }
    fn panes(&self) -> &'static [&'static str] {
        &["containers", "services"]
    }
    fn interval(&self) -> Duration {
        self.interval
    }
    fn poll(&mut self) -> BoxFuture<'_, Vec<Update>> {
        Box::pin(async { Vec::new() })
    }
}
