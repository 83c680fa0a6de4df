//! PLACEHOLDER: being written.
use crate::collect::Collector;
use crate::config::ServiceSource;
use crate::state::update::Update;
use futures::future::BoxFuture;
use std::time::Duration;

pub struct ServiceCollector {
    name: String,
    interval: Duration,
}

impl ServiceCollector {
    pub fn new(name: &str, source: &ServiceSource) -> Self {
        let _ = source;
        ServiceCollector {
            name: name.to_string(),
            interval: Duration::from_secs(2),
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
        Box::pin(async { Vec::new() })
    }
}
