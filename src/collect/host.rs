//! PLACEHOLDER: being written.
use crate::collect::Collector;
use crate::config::SystemSource;
use crate::state::update::Update;
use futures::future::BoxFuture;
use std::time::Duration;

pub struct HostCollector {
    name: String,
    interval: Duration,
}

impl HostCollector {
    pub fn new(name: &str, source: &SystemSource) -> Self {
        let _ = source;
        HostCollector {
            name: name.to_string(),
            interval: Duration::from_secs(2),
        }
    }
}

impl Collector for HostCollector {
    fn name(&self) -> &str {
        &self.name
    }
    fn panes(&self) -> &'static [&'static str] {
        &["host"]
    }
    fn interval(&self) -> Duration {
        self.interval
    }
    fn poll(&mut self) -> BoxFuture<'_, Vec<Update>> {
        Box::pin(async { Vec::new() })
    }
}
