//! PLACEHOLDER: being written.
use crate::collect::Collector;
use crate::config::LogSource;
use crate::state::update::Update;
use futures::future::BoxFuture;
use std::time::Duration;

pub struct LogCollector {
    name: String,
    interval: Duration,
}

impl LogCollector {
    pub fn new(name: &str, source: &LogSource) -> Self {
        let _ = source;
        LogCollector {
            name: name.to_string(),
            interval: Duration::from_secs(2),
        }
    }
}

impl Collector for LogCollector {
    fn name(&self) -> &str {
        &self.name
    }
    fn panes(&self) -> &'static [&'static str] {
        &["errors"]
    }
    fn interval(&self) -> Duration {
        self.interval
    }
    fn poll(&mut self) -> BoxFuture<'_, Vec<Update>> {
        Box::pin(async { Vec::new() })
    }
}
