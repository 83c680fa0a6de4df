//! Containers' logs (`docker = ["backend"]`): read by the container work's engine task
//! (`collect::docker::follow_logs`, its reader in `docker/logtail.rs`: the same
//! connection, `/events` and backoff as the Containers pane, on the host's forwarded
//! socket for a remote host) into a [`Feed`](super::feed::Feed), and counted like the
//! rest. Each container is read first from where the lines still to be counted start
//! (the engine's `since`: the figures' window, or back to the record's last counted line
//! or its window's start), at most its last `tail` lines (a stopped container's unread
//! last run read back once the same way).

use super::feed::FeedSource;
use crate::collect::logs::parse::Format;
use crate::config::LogSource;
use crate::transport::Transport;

/// The containers `source` names, as a line source; `engine_address` instead of
/// DOCKER_HOST or the default socket.
pub(super) fn containers(
    name: &str,
    source: &LogSource,
    remote: Option<Transport>,
    engine_address: Option<String>,
) -> FeedSource {
    let (names, project, tail) = (source.docker.clone(), source.project.clone(), source.tail);
    let name = name.to_string();
    let transport = remote.clone();
    FeedSource::new(Format::Text, "docker".to_string(), remote, move |start| {
        crate::collect::docker::follow_logs(
            &name,
            names,
            project,
            (tail, start.since),
            transport,
            engine_address,
        )
    })
}
