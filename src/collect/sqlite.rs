//! PLACEHOLDER: being written.
use crate::collect::Collector;
use crate::config::SqliteSource;
use crate::state::update::Update;
use futures::future::BoxFuture;
use std::time::Duration;

pub struct SqliteCollector {
    name: String,
    interval: Duration,
}

impl SqliteCollector {
    pub fn new(name: &str, source: &SqliteSource) -> Self {
        let _ = source;
        SqliteCollector {
            name: name.to_string(),
            interval: Duration::from_secs(2),
        }
    }
}

impl Collector for SqliteCollector {
    fn name(&self) -> &str {
        &self.name
    }
    fn panes(&self) -> &'static [&'static str] {
        &["rbac", "license"]
    }
    fn interval(&self) -> Duration {
        self.interval
    }
    fn poll(&mut self) -> BoxFuture<'_, Vec<Update>> {
        Box::pin(async { Vec::new() })
    }
}
