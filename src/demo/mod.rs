//! PLACEHOLDER: the simulated deployment is being written.
use crate::config::Config;

pub struct DemoWorld;

impl DemoWorld {
    pub async fn start() -> color_eyre::Result<DemoWorld> {
        Ok(DemoWorld)
    }
    pub fn config(&self) -> Config {
        Config::default()
    }
}
