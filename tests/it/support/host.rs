//! The Host pane's collector for this machine.

use std::time::Duration;
use watchpost::collect::host::HostCollector;
use watchpost::config::SystemSource;

/// A collector named `box` of this machine's CPU, memory, disks and load.
pub fn local(interval: Duration) -> HostCollector {
    HostCollector::new(
        "box",
        &SystemSource {
            host: "local".into(),
            interval,
        },
    )
}
