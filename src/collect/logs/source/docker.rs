//! Containers' logs (`docker = ["backend"]`): read by the container work's engine task
//! (`collect::docker::follow_logs`, its reader in `docker/logtail.rs`: the same
//! connection, `/events` and backoff as the Containers pane, on the host's forwarded
//! socket for a remote host) into a [`Feed`](super::feed::Feed), and counted like the
//! rest. Each container is read first from where the lines still to be counted start
//! (the engine's `since`: the figures' window, or back to the record's last counted line
//! or its window's start), at most its last `tail` lines (a stopped container's unread
//! last run read back once the same way).
//!
//! Read once (`check`), every selected container, running or not, is read once without
//! following (the engine's `follow=false`, from the same `since`), each to the end of its
//! log, and the source's run ends when all of them are read: `check` waits for that
//! rather than for a quiet moment. When the one-shot limit comes first, the reads stop and
//! the figures say which log was cut and how much of it was read (`partial: …`).

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
            tail,
            start,
            transport,
            engine_address,
        )
    })
    // Read once, each container's window is read to its end and the producer says so.
    .ends_when_read_once()
}
