//! Where a log source's lines come from: one [`LineSource`] per kind, chosen by [`open`]
//! from the source's config. The collector (`logs`) polls it, and does the rest the same
//! way for every kind.
//!
//! - Files on this machine ([`files`]): read in the blocking pool at each poll.
//! - Everything that delivers lines by itself runs as a producer task that queues events
//!   in a [`Feed`], read by [`FeedSource`]: a command's or journald unit's process
//!   ([`command`], [`journald`]), the same on an SSH host, and files followed there
//!   ([`remote`]), and containers' logs through the Docker engine ([`docker`]).
//!
//! On a remote host (`host = "prod"`) every kind runs there, through the host's one SSH
//! connection, and while the host is down the source says so in the host's words ("ssh
//! prod: connection refused, retrying in 4s").

mod command;
mod docker;
mod feed;
mod files;
mod glob;
mod journald;
mod readback;
mod remote;

pub use command::{Launcher, LocalLauncher};
pub use feed::{CountCut, Event, Feed, Outbox, RawLine, Start};
pub(crate) use files::Tailer;
#[cfg(test)]
pub(super) use files::tests as files_tests;
pub use remote::{EXPAND_EVERY, MAX_REMOTE_FILES};

use crate::collect::logs::Ingest;
use crate::collect::logs::parse::Format;
use crate::config::LogSource;
use crate::model::update::LogLine;
use crate::transport::Transport;
use chrono::{DateTime, Utc};
use command::{CommandPlan, Plan};
use feed::FeedSource;
use files::LocalFiles;
use futures::future::BoxFuture;
use journald::JournaldPlan;
use std::sync::Arc;
use std::time::Duration;

/// Where a log source's lines come from.
pub(crate) trait LineSource: Send {
    /// Reads what arrived since the last read and runs it through `ingest` (parsing,
    /// classifying, counting: off the async executor), which it hands back with the lines.
    /// An error says the reading task died (`ingest` is gone with it).
    fn read(&mut self, ingest: Ingest) -> BoxFuture<'_, Result<Read, String>>;

    /// The source is read once (`check`), within `limit`: what it holds now is read to
    /// its end (a command's run to its exit), and a cut is said in the figures.
    fn one_shot(&mut self, _limit: Duration) {}

    /// Lines back to `since` are still to be counted (the figures' longest window, or
    /// further back to where the record's count stopped): told before the first read, for
    /// sources that ask for their lines by time (journald's `--since`).
    fn reach(&mut self, _since: DateTime<Utc>) {}
}

/// One read of a [`LineSource`].
pub(crate) struct Read {
    pub ingest: Ingest,
    pub lines: Vec<LogLine>,
    /// What is wrong now, with the retry delay if the source is down.
    pub problem: Option<(String, Option<Duration>)>,
    /// No line could be read at all: the figures are unknown, not zero.
    pub unknown: bool,
    /// The source's host is down: the figures stay as they were, with their age (no
    /// readings are sent), as other sources on the host keep theirs.
    pub keep_figures: bool,
    /// More was waiting than one read takes: read again soon.
    pub behind: bool,
    /// The figures read what the source holds: its window read back, a one-shot
    /// command's run ended (a one-shot read stops here).
    pub settled: bool,
    /// Lines written before following started are still being read back (for the
    /// figures, or further back for the record): the record's tally waits for them.
    pub reading_back: bool,
}

/// Where a source's processes run.
pub(crate) enum Runner {
    Local(Arc<dyn Launcher>),
    Remote(Transport),
}

impl Runner {
    pub fn local() -> Self {
        Runner::Local(Arc::new(LocalLauncher::new()))
    }
}

/// The line source `source` configures (`None`: it names no input), run by `runner`.
/// `engine_address` is the Docker engine to use instead of DOCKER_HOST or the default
/// socket; `interval` the collector's, when a file problem is looked at again.
pub(crate) fn open(
    name: &str,
    source: &LogSource,
    runner: Runner,
    engine_address: Option<String>,
    interval: Duration,
) -> Option<Box<dyn LineSource>> {
    let remote = match &runner {
        Runner::Remote(transport) => Some(transport.clone()),
        Runner::Local(_) => None,
    };
    if let Some(unit) = &source.journald {
        let plan = JournaldPlan::new(unit, source.read_back);
        let label = plan.label();
        let reader = match runner {
            Runner::Local(launcher) => journald::Reader::Local(launcher),
            Runner::Remote(transport) => journald::Reader::Remote(transport),
        };
        // Its window is read back first (newest first), then followed; read once, the
        // read-back is the run, and it ends.
        let source = FeedSource::new(Format::Journal, label, remote, move |start| {
            journald::start(plan, reader, start)
        })
        .reads_back_first(source.read_back)
        .ends_when_read_once();
        return Some(Box::new(source));
    }
    if !source.command.is_empty() {
        let mut plan = CommandPlan::new(source.command.clone());
        let label = plan.label();
        let source = match runner {
            Runner::Local(launcher) => FeedSource::new(Format::Text, label, remote, move |start| {
                plan.prepare(start);
                command::start(Box::new(plan), launcher)
            }),
            Runner::Remote(transport) => {
                FeedSource::new(Format::Text, label, remote, move |start| {
                    plan.prepare(start);
                    remote::process(Box::new(plan), transport)
                })
            }
        };
        // A command's run may end by itself (`cat`, `kubectl logs` without -f): a one-shot
        // read reads it to that end.
        return Some(Box::new(source.ends()));
    }
    if !source.docker.is_empty() {
        return Some(Box::new(docker::containers(
            name,
            source,
            remote,
            engine_address,
        )));
    }
    if source.files.is_empty() {
        return None;
    }
    let patterns = source.files.clone();
    Some(match runner {
        Runner::Local(_) => Box::new(LocalFiles::new(patterns, interval, source.read_back)),
        Runner::Remote(transport) => Box::new(
            FeedSource::new(
                Format::Text,
                "files".to_string(),
                remote,
                move |start: Start| remote::files(patterns, transport, start.one_shot),
            )
            .read_back(source.read_back),
        ),
    })
}
