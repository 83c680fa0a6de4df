//! Log sources: lines from files followed like `tail -F`, journald units, commands'
//! output and containers' logs (each kind a [`source::LineSource`], see `source`), parsed
//! (see `parse`), error counts kept for `<name>.errors_1h` and `<name>.errors_per_min`, and
//! the source's `[[logs.NAME.metric]]` figures computed (see `metrics`).
//!
//! Every kind's lines take the same path ([`Ingest`]): parsed, classified against the
//! source's `error_pattern`, counted, off the async executor. On a remote host (`host =
//! "prod"`) every kind runs there, through the host's one SSH connection, and while the
//! host is down the source says so in the host's words.

pub(crate) mod metrics;
pub mod parse;
pub(crate) mod source;
mod tally;

pub use source::{EXPAND_EVERY, Launcher, LocalLauncher, MAX_REMOTE_FILES};
pub use tally::RecordFrom;

use crate::collect::{Collector, Reach, failed, health, reach_without_pool};
use crate::config::LogSource;
use crate::config::log_metric::LogMetric;
use crate::model::figure::Reading;
use crate::model::update::{LogLine, SourceHealth, Update};
use crate::transport::Transport;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use metrics::{Coverage, Derived};
use parse::{ErrorRule, Format};
use regex::{Regex, RegexBuilder};
use source::{LineSource, Runner, Tailer};
use std::sync::Arc;
use std::time::Duration;
use tally::Tally;

pub struct LogCollector {
    name: String,
    interval: Duration,
    /// The compiled error pattern, or why it does not compile.
    error_pattern: Result<Regex, String>,
    /// Where the lines come from, or why there is nothing to read: the source names no
    /// input (the config check says so too), or its host cannot be reached at all.
    input: Result<Box<dyn LineSource>, String>,
    metric_defs: Vec<LogMetric>,
    /// Taken by the reading task during a poll; `None` only if that task died.
    derived: Option<Derived>,
    /// The last poll left more to read than one poll takes: poll again soon.
    behind: bool,
    /// The error pattern applies to lines with a level below ERROR too.
    all_levels: bool,
    /// Polled once (`check`): a poll reads until the source is settled (its window read
    /// back, a command's run ended) or `ONE_SHOT_LIMIT` passes.
    one_shot: bool,
    /// The record's count of the lines read back (see `tally`), when there is a record;
    /// taken by the reading task during a poll, as `derived` is.
    tally: Option<Tally>,
    /// The source was told how far back its lines are to be counted (at the first poll).
    reach_told: bool,
}

/// How long one poll of a one-shot `check` reads a source at most (under the 15 s that
/// `check` gives a source).
pub(crate) const ONE_SHOT_LIMIT: Duration = Duration::from_secs(12);
/// Lines of a one-shot read kept for the tail (the rest are counted only).
const ONE_SHOT_LINES: usize = 200;

/// How soon a source that is behind (written faster than one poll a `interval` reads) is
/// read again.
const CATCH_UP_INTERVAL: Duration = Duration::from_millis(10);

/// What a source without any input says.
const NO_INPUT: &str = "no input configured: set files, journald, command or docker";

impl LogCollector {
    /// A source on this machine (a source on another host says it needs a [`HostPool`]:
    /// use [`LogCollector::on`]).
    ///
    /// [`HostPool`]: crate::transport::HostPool
    pub fn new(name: &str, source: &LogSource) -> Self {
        Self::on(name, source, reach_without_pool(&source.host))
    }

    /// A source read through `reach`, its host's transport: files, journald and commands
    /// run on that host.
    pub fn on(name: &str, source: &LogSource, reach: Reach) -> Self {
        match reach {
            Ok(Transport::Local) => Self::build(name, source, Runner::local(), None),
            Ok(transport) => Self::build(name, source, Runner::Remote(transport), None),
            Err(error) => {
                let mut collector = Self::build(name, source, Runner::local(), None);
                if collector.input.is_ok() {
                    collector.input = Err(error.to_string());
                }
                collector
            }
        }
    }

    /// A source whose processes (journald, command) are started by `launcher` (a local
    /// launcher with its own environment, in tests). Files are read here.
    pub fn with_launcher(name: &str, source: &LogSource, launcher: Arc<dyn Launcher>) -> Self {
        Self::build(name, source, Runner::Local(launcher), None)
    }

    /// A docker log source talking to the engine at `address` (`unix:///path` or
    /// `tcp://host:port`) instead of DOCKER_HOST or the default socket (tests use it for an
    /// engine that is not there).
    pub fn with_engine_address(name: &str, source: &LogSource, address: &str) -> Self {
        Self::build(name, source, Runner::local(), Some(address.to_string()))
    }

    fn build(
        name: &str,
        source: &LogSource,
        runner: Runner,
        engine_address: Option<String>,
    ) -> Self {
        let interval = Duration::from_secs(2);
        let input = source::open(name, source, runner, engine_address, interval)
            .ok_or_else(|| NO_INPUT.to_string());
        LogCollector {
            name: name.to_string(),
            interval,
            error_pattern: compile_error_pattern(&source.error_pattern),
            input,
            metric_defs: source.metrics.clone(),
            derived: Some(Derived::new(&source.metrics)),
            behind: false,
            all_levels: source.error_pattern_all_levels,
            one_shot: false,
            tally: None,
            reach_told: false,
        }
    }

    /// Counts for the record the lines it has not counted yet (`from`: what it has), the
    /// lines written while nothing watched included: they are read back with the window.
    /// Without a record (`None`) nothing is tallied.
    pub fn with_record(mut self, from: Option<RecordFrom>) -> Self {
        self.tally = from.map(Tally::new);
        self
    }

    fn error_updates(&self, message: String) -> Vec<Update> {
        vec![
            failed(&self.name, message.clone(), self.interval),
            Update::Readings {
                source: self.name.clone(),
                readings: self.failed_readings(&message),
            },
        ]
    }

    /// Without any line to read, the counts are unknown rather than zero.
    fn failed_readings(&self, message: &str) -> Vec<Reading> {
        Derived::failed_readings(self.derived.as_ref(), &self.name, message)
    }

    fn readings(&self, now: DateTime<Utc>) -> Vec<Reading> {
        match &self.derived {
            Some(derived) => derived.readings(&self.name, now),
            None => Vec::new(),
        }
    }

    async fn read(&mut self, error_pattern: Regex) -> Vec<Update> {
        let source = match &mut self.input {
            Ok(source) => source,
            Err(message) => {
                let message = message.clone();
                return self.error_updates(message);
            }
        };
        let derived = self
            .derived
            .take()
            .unwrap_or_else(|| Derived::new(&self.metric_defs));
        let mut ingest = Ingest {
            name: self.name.clone(),
            error_pattern,
            all_levels: self.all_levels,
            derived,
            tally: self.tally.take(),
        };
        if !self.reach_told {
            self.reach_told = true;
            source.reach(ingest.reach(Utc::now()));
        }
        let mut kept: std::collections::VecDeque<LogLine> = Default::default();
        let started = tokio::time::Instant::now();
        let read = loop {
            let mut read = match source.read(ingest).await {
                Ok(read) => read,
                // The reading task died, and the counts with it.
                Err(message) => return self.error_updates(message),
            };
            // One shot: read on (keeping the newest lines for the tail) until settled.
            let out_of_time = started.elapsed() >= ONE_SHOT_LIMIT;
            if !self.one_shot || read.settled || out_of_time {
                // Cut by the limit between the source's own look at its deadline and here:
                // still say so, never a silent low count.
                if self.one_shot
                    && !read.settled
                    && !matches!(read.ingest.derived.coverage, Coverage::Partial(_))
                {
                    read.ingest.derived.coverage = Coverage::Partial(format!(
                        "partial: still reading after {}s; what came later is not counted",
                        ONE_SHOT_LIMIT.as_secs()
                    ));
                }
                if self.one_shot && !kept.is_empty() {
                    kept.extend(read.lines.drain(..));
                    let over = kept.len().saturating_sub(ONE_SHOT_LINES);
                    kept.drain(..over);
                    read.lines = kept.into();
                }
                break read;
            }
            kept.extend(read.lines.drain(..));
            let over = kept.len().saturating_sub(ONE_SHOT_LINES);
            kept.drain(..over);
            ingest = read.ingest;
        };
        self.derived = Some(read.ingest.derived);
        self.behind = read.behind;
        // The tally goes to the record once the read-back is over: oldest first, after
        // nothing newer (see `tally`).
        let mut counts = Vec::new();
        let mut partial = None;
        if let Some(mut tally) = read.ingest.tally {
            tally.holding = read.reading_back;
            if !tally.holding {
                counts = tally.take();
                partial = tally.take_cut();
            }
            self.tally = Some(tally);
        }
        let mut updates = self.updates(read.lines, read.problem, read.unknown);
        if read.keep_figures {
            updates.retain(|u| !matches!(u, Update::Readings { .. }));
        }
        if !counts.is_empty() || partial.is_some() {
            updates.insert(
                0,
                Update::LogCounts {
                    source: self.name.clone(),
                    counts,
                    partial,
                },
            );
        }
        updates
    }

    /// The updates of one poll: the lines, the figures (unknown if no line could be read
    /// at all) and the health.
    fn updates(
        &self,
        lines: Vec<LogLine>,
        problem: Option<(String, Option<Duration>)>,
        unknown: bool,
    ) -> Vec<Update> {
        let now = Utc::now();
        let mut updates = Vec::new();
        if !lines.is_empty() {
            updates.push(Update::Logs(lines));
        }
        let readings = match &problem {
            Some((message, _)) if unknown => self.failed_readings(message),
            _ => self.readings(now),
        };
        updates.push(Update::Readings {
            source: self.name.clone(),
            readings,
        });
        updates.push(match problem {
            None => health(&self.name, SourceHealth::Ok),
            Some((message, retry)) => health(
                &self.name,
                SourceHealth::Error {
                    message,
                    retry_in_secs: retry.map(|r| r.as_secs().max(1)),
                },
            ),
        });
        updates
    }
}

fn compile_error_pattern(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .case_insensitive(true)
        .build()
        .map_err(|e| {
            format!(
                "error_pattern {pattern:?} is not a valid regex: {}",
                last_line(&e)
            )
        })
}

/// Lines read back that name no time of their own, held until the line before them that
/// does (read after them, going backwards) gives them its time, at most this many.
const MAX_PENDING: usize = 10_000;

/// Where a read-back going backwards through a file stands, for the time of the lines
/// that name none.
pub(crate) struct Carry {
    /// The time of the oldest line read back that named one (the file's modification time
    /// at first).
    pub at: DateTime<Utc>,
    /// `at` is a line's own time, not the file's.
    pub placed: bool,
    /// Lines naming no time, waiting for the time of the line before them.
    pending: Vec<LogLine>,
}

impl Carry {
    pub fn new(modified: DateTime<Utc>) -> Self {
        Carry {
            at: modified,
            placed: false,
            pending: Vec::new(),
        }
    }
}

/// What a line read back is counted in: the figures, and the record's tally.
struct Counts<'a> {
    derived: &'a mut Derived,
    tally: &'a mut Option<Tally>,
}

impl Counts<'_> {
    fn one(&mut self, line: &LogLine, placed: bool, now: DateTime<Utc>) {
        let with_metrics = self.derived.has_metrics();
        self.derived.observe(line, with_metrics, now);
        if let Some(tally) = self.tally
            && tally.wants(line.at, placed)
        {
            tally.add(line);
        }
    }

    fn settle(&mut self, carry: &mut Carry, now: DateTime<Utc>) {
        let mut pending = std::mem::take(&mut carry.pending);
        for line in &mut pending {
            line.at = carry.at;
            self.one(line, carry.placed, now);
        }
        pending.clear();
        carry.pending = pending;
    }
}

/// Parse, classify and count: the one path every source's lines take, moved into the
/// blocking task that reads them and handed back.
pub(crate) struct Ingest {
    name: String,
    error_pattern: Regex,
    /// The pattern applies to lines with a level below ERROR too.
    all_levels: bool,
    derived: Derived,
    /// The record's count of what is read back, and of what is read meanwhile.
    tally: Option<Tally>,
}

impl Ingest {
    fn rule(&self) -> ErrorRule<'_> {
        ErrorRule {
            pattern: &self.error_pattern,
            all_levels: self.all_levels,
        }
    }

    /// Lines shown but not counted: the newest lines of a file read back at start (the
    /// read-back counts them, once, for the figures and for the record).
    pub fn shown<'a>(
        &self,
        raw: impl ExactSizeIterator<Item = (&'a [u8], u64, Option<DateTime<Utc>>)>,
        format: Format,
        now: DateTime<Utc>,
    ) -> Vec<LogLine> {
        let source: Arc<str> = self.name.as_str().into();
        let rule = self.rule();
        let tallied = self.tally.is_some();
        raw.map(|(bytes, dropped, written)| {
            let mut line =
                format.parse(source.clone(), bytes, dropped, rule, written.unwrap_or(now));
            line.tallied = tallied;
            line
        })
        .collect()
    }

    /// How far back lines are still to be counted: the longest window a figure reads, or
    /// further back to where the record's count stopped.
    pub fn reach(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let figures = now - self.derived.window();
        match &self.tally {
            Some(tally) => figures.min(tally.reach()),
            None => figures,
        }
    }

    /// Where the figures' longest window starts.
    pub(crate) fn figures_reach(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - self.derived.window()
    }

    /// Counts lines read back (not shown), newest first. A line naming no time of its
    /// own (a stack trace's) takes the time of the line before it that does — its
    /// message's, as it had when it was read live — so it waits in `carry` until that line
    /// comes. Returns the newest time a line named, if any did.
    pub(crate) fn count_back<'a>(
        &mut self,
        newest_first: impl Iterator<Item = &'a [u8]>,
        carry: &mut Carry,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let source: Arc<str> = self.name.as_str().into();
        let mut newest = None;
        let rule = ErrorRule {
            pattern: &self.error_pattern,
            all_levels: self.all_levels,
        };
        let counts = &mut Counts {
            derived: &mut self.derived,
            tally: &mut self.tally,
        };
        for bytes in newest_first {
            let (line, dated) = Format::Text.parse_dated(source.clone(), bytes, 0, rule, carry.at);
            if !dated {
                carry.pending.push(line);
                if carry.pending.len() >= MAX_PENDING {
                    // Too many to hold: they take the time of the newer line instead.
                    counts.settle(carry, now);
                }
                continue;
            }
            carry.at = line.at;
            carry.placed = true;
            newest = newest.max(Some(line.at));
            counts.settle(carry, now);
            counts.one(&line, true, now);
        }
        newest
    }

    /// Counts lines read back (not shown) that each name their own time (journald's
    /// entries), in any order: for the figures and the record's tally.
    pub(crate) fn count_dated<'a>(
        &mut self,
        raw: impl Iterator<Item = (&'a [u8], u64, Option<DateTime<Utc>>)>,
        format: Format,
        now: DateTime<Utc>,
    ) {
        let source: Arc<str> = self.name.as_str().into();
        let rule = ErrorRule {
            pattern: &self.error_pattern,
            all_levels: self.all_levels,
        };
        let mut counts = Counts {
            derived: &mut self.derived,
            tally: &mut self.tally,
        };
        for (bytes, dropped, written) in raw {
            let line = format.parse(source.clone(), bytes, dropped, rule, written.unwrap_or(now));
            counts.one(&line, true, now);
        }
    }

    /// Counts the lines waiting in `carry` for their time, at `carry`'s: the file's start
    /// came, or a stretch of lines naming no time.
    pub(crate) fn settle_back(&mut self, carry: &mut Carry, now: DateTime<Utc>) {
        Counts {
            derived: &mut self.derived,
            tally: &mut self.tally,
        }
        .settle(carry, now);
    }

    /// Raw lines (bytes, bytes cut, the time the transport gave) to log lines, the error
    /// counts and metrics updated.
    pub fn lines<'a>(
        &mut self,
        raw: impl ExactSizeIterator<Item = (&'a [u8], u64, Option<DateTime<Utc>>)>,
        format: Format,
        now: DateTime<Utc>,
    ) -> Vec<LogLine> {
        let mut lines = Vec::with_capacity(raw.len());
        let with_metrics = self.derived.has_metrics();
        // One copy of the name for the batch, shared by its lines.
        let source: Arc<str> = self.name.as_str().into();
        for (bytes, dropped, written) in raw {
            // A line naming no time of its own is dated by its transport, or by now.
            let written = written.unwrap_or(now);
            let rule = ErrorRule {
                pattern: &self.error_pattern,
                all_levels: self.all_levels,
            };
            let mut line = format.parse(source.clone(), bytes, dropped, rule, written);
            self.derived.observe(&line, with_metrics, now);
            // Read while the window is read back: the record takes it with the tally.
            if let Some(tally) = &mut self.tally
                && tally.holding
            {
                if tally.wants(line.at, true) {
                    tally.add(&line);
                }
                line.tallied = true;
            }
            lines.push(line);
        }
        lines
    }
}

impl Collector for LogCollector {
    fn name(&self) -> &str {
        &self.name
    }
    fn panes(&self) -> &'static [crate::model::pane::PaneId] {
        &[crate::model::pane::PaneId::Errors]
    }
    fn interval(&self) -> Duration {
        if self.behind {
            CATCH_UP_INTERVAL
        } else {
            self.interval
        }
    }
    fn one_shot(&mut self) {
        self.one_shot = true;
        if let Ok(source) = &mut self.input {
            source.one_shot(ONE_SHOT_LIMIT);
        }
    }
    fn poll(&mut self) -> BoxFuture<'_, Vec<Update>> {
        Box::pin(async move {
            match self.error_pattern.clone() {
                Ok(pattern) => self.read(pattern).await,
                Err(message) => self.error_updates(message),
            }
        })
    }
}

/// Reads files from their start, through the same reading, parsing, classifying and
/// counting as the collector, in batches of at most 8 MiB per file. For benchmarks and
/// tools that take a whole file in.
pub struct FileIngest {
    tailer: Tailer,
    ingest: Ingest,
}

impl FileIngest {
    pub fn new(name: &str, source: &LogSource) -> Result<Self, String> {
        let mut tailer = Tailer::new(source.files.clone(), source.read_back);
        tailer.from_start = true;
        Ok(FileIngest {
            tailer,
            ingest: Ingest {
                name: name.to_string(),
                error_pattern: compile_error_pattern(&source.error_pattern)?,
                all_levels: source.error_pattern_all_levels,
                derived: Derived::new(&source.metrics),
                tally: None,
            },
        })
    }

    /// The next batch of lines; empty at the end of what is written so far.
    pub fn next_batch(&mut self, now: DateTime<Utc>) -> Result<Vec<LogLine>, String> {
        let outcome = self.tailer.poll();
        if let Some(problem) = summarize(&outcome.problems) {
            return Err(problem);
        }
        let lines = self.ingest.lines(outcome.lines.iter(), Format::Text, now);
        self.tailer.recycle(outcome.lines);
        Ok(lines)
    }
}

/// The first few problems in one sentence (a glob over 100 unreadable files stays short).
pub(crate) fn summarize(problems: &[String]) -> Option<String> {
    const SHOWN: usize = 3;
    let first = problems.first()?;
    let mut message = problems
        .iter()
        .skip(1)
        .take(SHOWN - 1)
        .fold(first.clone(), |m, p| m + "; " + p);
    if problems.len() > SHOWN {
        message.push_str(&format!(" (and {} more)", problems.len() - SHOWN));
    }
    Some(message)
}

fn last_line(e: &regex::Error) -> String {
    e.to_string()
        .lines()
        .last()
        .unwrap_or("")
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::source::files_tests::append_12_mib;
    use super::*;
    use std::fs::File;

    #[tokio::test]
    async fn a_source_written_faster_than_a_poll_reads_is_read_again_soon() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flood.log");
        File::create(&path).unwrap();
        let config = crate::config::Config::parse(&format!(
            "[logs.flood]\nfiles = [{:?}]\n",
            path.display().to_string()
        ))
        .unwrap();
        let mut collector = LogCollector::new("flood", &config.logs["flood"]);
        collector.poll().await;
        assert_eq!(collector.interval(), Duration::from_secs(2));
        append_12_mib(&path);
        collector.poll().await;
        assert_eq!(collector.interval(), CATCH_UP_INTERVAL);
        collector.poll().await;
        assert_eq!(collector.interval(), Duration::from_secs(2), "caught up");
    }

    /// A source that cannot be read says why in every figure it has, its metrics too.
    #[tokio::test]
    async fn an_unreachable_source_fails_every_figure() {
        let config = crate::config::Config::parse(
            "[logs.app]\nfiles = [\"/x.log\"]\n\n[[logs.app.metric]]\nid = \"timeouts_1h\"\nfield = \"outcome\"\nequals = \"timeout\"\nkind = \"count\"\n",
        )
        .unwrap();
        let reach = reach_without_pool("prod");
        let why = reach.as_ref().unwrap_err().to_string();
        let mut collector = LogCollector::on("app", &config.logs["app"], reach);
        for _ in 0..2 {
            let readings: Vec<(String, bool)> = collector
                .poll()
                .await
                .into_iter()
                .filter_map(|u| match u {
                    Update::Readings { readings, .. } => Some(readings),
                    _ => None,
                })
                .flatten()
                .map(|r| (r.id.clone(), r.error.as_deref() == Some(why.as_str())))
                .collect();
            assert_eq!(
                readings,
                [
                    ("app.errors_1h".to_string(), true),
                    ("app.errors_per_min".to_string(), true),
                    ("app.timeouts_1h".to_string(), true),
                ]
            );
        }
    }
}
