//! Log sources: files followed like `tail -F`, journald units and commands' output (the
//! last two through `command`'s process core), lines parsed (see `logparse`, `journald`),
//! error counts kept for `<name>.errors_1h` and `<name>.errors_per_min`, and the source's
//! `[[logs.NAME.metric]]` figures computed (see `logmetrics`).
//!
//! How files are followed:
//! - A file is known by its identity (device + inode) and read through a handle kept
//!   open, so a renamed (rotated) or deleted file can still be read to its end.
//! - When no configured path leads to a followed file any more, it is "retired": read to
//!   its end on each poll (a writer may keep writing to it until it reopens its log) and
//!   closed after a few polls without new data. Retired files are read before the files
//!   that replaced them, so lines keep their order across a rotation.
//! - A file that got shorter than what was read, or whose last read bytes changed
//!   (copytruncate followed by fast writes), is read again from its start. Lines written
//!   after the last poll and before a copytruncate went to the copy only and are not seen,
//!   as with `tail -F`.
//! - The first poll starts each existing file at its last 64 KiB (at most 200 lines), so
//!   the pane is not empty at start and a multi-GB log is not read. Files that appear later
//!   are read from their start (or their tail, if already over 8 MiB).
//! - Each poll reads at most 8 MiB per file; the rest waits for the next poll. A line
//!   without its newline yet waits too. A line over 64 KiB keeps its first 64 KiB and says
//!   how many bytes were cut.
//!
//! File I/O, parsing, counting and metrics run in `spawn_blocking`. journald units and
//! commands run as long-lived processes (`command`, `journald`). On a remote host
//! (`host = "prod"`) every kind runs there, through the host's one SSH connection (see
//! `remote`): the same parsing, counting and figures, and while the host is down the
//! source says so in the host's words ("ssh prod: connection refused, retrying in 4s").
//! Docker logs (`docker = ["backend"]`) come through the container work's engine task
//! (see `docker::follow_logs`: the same connection, `/events` and backoff as the
//! Containers pane, on the host's forwarded socket for a remote host), each container's
//! last `tail` lines first (a stopped container's unread last run read back once), and
//! are counted like the rest.

mod remote;

pub use remote::{EXPAND_EVERY, MAX_REMOTE_FILES};

use crate::collect::command::{
    CommandPlan, Event, EventSource, Launcher, LocalLauncher, Plan, ProcessLines,
};
use crate::collect::journald::{self, JournaldPlan};
use crate::collect::logmetrics::LogMetrics;
use crate::collect::logparse::{MAX_LINE_BYTES, parse_line};
use crate::collect::{Collector, Reach, failed, health, reach_without_pool};
use crate::config::LogSource;
use crate::config::log_metric::LogMetric;
use crate::model::figure::Reading;
use crate::model::update::{LogLine, SourceHealth, Update};
use crate::transport::Transport;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use regex::{Regex, RegexBuilder};
use std::collections::BTreeMap;
use std::fs::{File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// At most this much is read from one file in one poll.
pub const MAX_READ_PER_POLL: u64 = 8 * 1024 * 1024;
/// The first poll starts this far before the end of an existing file...
pub const START_TAIL_BYTES: u64 = 64 * 1024;
/// ...and keeps at most this many of the lines found there.
pub const START_TAIL_LINES: usize = 200;
/// Files followed at once per source (the most recently modified win).
const MAX_FILES: usize = 128;
/// A retired file is closed after this many polls that found nothing new in it.
const RETIRE_AFTER_IDLE_POLLS: u32 = 3;
const MAX_RETIRED: usize = 32;
/// Bytes remembered from just before the read offset, to notice a file rewritten in place.
const FINGERPRINT_BYTES: usize = 64;
/// Minutes of error counts kept (one hour plus the current minute).
const MINUTES_KEPT: i64 = 61;
/// The first poll of a process source waits this long for its first output to settle
/// (so a one-shot `check` sees the backlog)...
const SETTLE_QUIET: Duration = Duration::from_millis(300);
/// ...but no longer than this...
const SETTLE_LIMIT: Duration = Duration::from_secs(2);
/// ...or this on a remote host (connecting, signing in and a login shell come first).
const SETTLE_LIMIT_REMOTE: Duration = Duration::from_secs(10);

pub struct LogCollector {
    name: String,
    interval: Duration,
    /// The SSH host the source is read on; `None` here.
    remote: Option<Transport>,
    /// The compiled error pattern, or why it does not compile.
    error_pattern: Result<Regex, String>,
    input: Input,
    metric_defs: Vec<LogMetric>,
    /// Taken by the blocking task during a poll; `None` only if that task died.
    derived: Option<Derived>,
    /// The last poll left more to read than one poll takes: poll again soon.
    behind: bool,
}

/// How soon a source that is behind (written faster than one poll a `interval` reads) is
/// read again.
const CATCH_UP_INTERVAL: Duration = Duration::from_millis(10);

/// Where the lines come from.
enum Input {
    Files {
        patterns: Vec<String>,
        /// Taken by the blocking task during a poll; `None` only if that task died.
        tailer: Option<Tailer>,
    },
    Process(Box<ProcessInput>),
    /// The source names no input (the config check says so too).
    Nothing,
    /// The source's host cannot be reached at all (why, for the pane).
    Unreachable(String),
}

/// Starts what delivers a process source's events.
type Starter = Box<dyn FnOnce() -> Box<dyn EventSource> + Send>;

struct ProcessInput {
    parser: LineParser,
    /// Used on the first poll (it needs the runtime).
    start: Option<Starter>,
    label: String,
    lines: Option<Box<dyn EventSource>>,
    /// A run has started at least once.
    ever_started: bool,
    /// A line has come at least once.
    ever_read: bool,
    /// What is wrong now, with the retry delay if the process is down.
    problem: Option<(String, Option<Duration>)>,
    /// A problem the source itself says is over (see `Event::Lasting`).
    lasting: Option<String>,
}

/// Where a source's processes run.
enum Runner {
    Local(Arc<dyn Launcher>),
    Remote(Transport),
}

fn local_launcher() -> Arc<dyn Launcher> {
    Arc::new(LocalLauncher::new())
}

/// How a raw line becomes a log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LineParser {
    /// JSON, logfmt or plain text.
    Text,
    /// `journalctl --output=json`.
    Journal,
}

/// What is counted from the lines: error counts and the configured metrics.
struct Derived {
    errors: ErrorCounts,
    metrics: LogMetrics,
}

impl Derived {
    fn new(metrics: &[LogMetric]) -> Self {
        Derived {
            errors: ErrorCounts::default(),
            metrics: LogMetrics::new(metrics),
        }
    }
}

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
            Ok(Transport::Local) => {
                Self::build(name, source, Runner::Local(local_launcher()), None)
            }
            Ok(transport) => Self::build(name, source, Runner::Remote(transport), None),
            Err(message) => {
                let mut collector =
                    Self::build(name, source, Runner::Local(local_launcher()), None);
                if !matches!(collector.input, Input::Nothing) {
                    collector.input = Input::Unreachable(message);
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
        Self::build(
            name,
            source,
            Runner::Local(local_launcher()),
            Some(address.to_string()),
        )
    }

    fn build(
        name: &str,
        source: &LogSource,
        runner: Runner,
        engine_address: Option<String>,
    ) -> Self {
        let error_pattern = compile_error_pattern(&source.error_pattern);
        let process = |parser, label: String, start: Starter| {
            Input::Process(Box::new(ProcessInput {
                parser,
                label,
                start: Some(start),
                lines: None,
                ever_started: false,
                ever_read: false,
                problem: None,
                lasting: None,
            }))
        };
        let plan: Option<(LineParser, Box<dyn Plan>)> = if let Some(unit) = &source.journald {
            Some((LineParser::Journal, Box::new(JournaldPlan::new(unit))))
        } else if !source.command.is_empty() {
            Some((
                LineParser::Text,
                Box::new(CommandPlan::new(source.command.clone())),
            ))
        } else {
            None
        };
        let remote = match &runner {
            Runner::Remote(transport) => Some(transport.clone()),
            Runner::Local(_) => None,
        };
        let input = match (plan, runner) {
            (None, runner) if !source.docker.is_empty() => {
                let (names, project, tail) =
                    (source.docker.clone(), source.project.clone(), source.tail);
                let name = name.to_string();
                let transport = match runner {
                    Runner::Remote(transport) => Some(transport),
                    Runner::Local(_) => None,
                };
                process(
                    LineParser::Text,
                    "docker".to_string(),
                    Box::new(move || {
                        Box::new(crate::collect::docker::follow_logs(
                            &name,
                            names,
                            project,
                            tail,
                            transport,
                            engine_address,
                        ))
                    }),
                )
            }
            (Some((parser, plan)), runner) => {
                let label = plan.label();
                let start: Starter = match runner {
                    Runner::Local(launcher) => {
                        Box::new(move || Box::new(ProcessLines::start(plan, launcher)))
                    }
                    Runner::Remote(transport) => {
                        Box::new(move || Box::new(remote::process(plan, transport)))
                    }
                };
                process(parser, label, start)
            }
            (None, _) if source.files.is_empty() => Input::Nothing,
            (None, Runner::Local(_)) => Input::Files {
                patterns: source.files.clone(),
                tailer: Some(Tailer::new(source.files.clone())),
            },
            (None, Runner::Remote(transport)) => {
                let patterns = source.files.clone();
                process(
                    LineParser::Text,
                    "files".to_string(),
                    Box::new(move || Box::new(remote::files(patterns, transport))),
                )
            }
        };
        LogCollector {
            name: name.to_string(),
            interval: Duration::from_secs(2),
            remote,
            error_pattern,
            input,
            metric_defs: source.metrics.clone(),
            derived: Some(Derived::new(&source.metrics)),
            behind: false,
        }
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
        let mut readings = vec![
            Reading::failed(self.errors_1h_id(), "errors in the last hour", message),
            Reading::failed(self.per_min_id(), "errors per minute", message),
        ];
        if let Some(derived) = &self.derived {
            readings.extend(derived.metrics.failed_readings(&self.name, message));
        }
        readings
    }

    fn readings(&self, now: DateTime<Utc>) -> Vec<Reading> {
        let Some(derived) = &self.derived else {
            return Vec::new();
        };
        let mut readings = vec![
            Reading::number(
                self.errors_1h_id(),
                "errors in the last hour",
                derived.errors.last_hour(now) as f64,
                "",
            ),
            Reading::number(
                self.per_min_id(),
                "errors per minute",
                derived.errors.last_full_minute(now) as f64,
                "/min",
            ),
        ];
        readings.extend(derived.metrics.readings(&self.name, now));
        readings
    }

    fn errors_1h_id(&self) -> String {
        format!("{}.errors_1h", self.name)
    }

    fn per_min_id(&self) -> String {
        format!("{}.errors_per_min", self.name)
    }

    fn take_derived(&mut self) -> Derived {
        self.derived
            .take()
            .unwrap_or_else(|| Derived::new(&self.metric_defs))
    }

    async fn poll_files(&mut self, error_pattern: Regex) -> Vec<Update> {
        let Input::Files { patterns, tailer } = &mut self.input else {
            return Vec::new();
        };
        let mut tailer = tailer
            .take()
            .unwrap_or_else(|| Tailer::new(patterns.clone()));
        let mut derived = self.take_derived();
        let name = self.name.clone();
        let task = tokio::task::spawn_blocking(move || {
            let now = Utc::now();
            let outcome = tailer.poll();
            let lines = ingest(
                &name,
                outcome.lines.iter(),
                LineParser::Text,
                &error_pattern,
                &mut derived,
                now,
            );
            tailer.recycle(outcome.lines);
            let more = (outcome.problems, outcome.followed, outcome.behind);
            (tailer, derived, more, lines)
        });
        let (tailer, derived, (problems, followed, behind), lines) = match task.await {
            Ok(result) => result,
            // The reader panicked: its state is gone; the next poll starts over at the tails.
            Err(e) => return self.error_updates(format!("log reader failed: {e}")),
        };
        if let Input::Files { tailer: slot, .. } = &mut self.input {
            *slot = Some(tailer);
        }
        self.derived = Some(derived);
        self.behind = behind;

        let problem = summarize(&problems);
        let unknown = problem.is_some() && followed == 0;
        self.updates(lines, problem.map(|p| (p, Some(self.interval))), unknown)
    }

    async fn poll_process(&mut self, error_pattern: Regex) -> Vec<Update> {
        let Input::Process(input) = &mut self.input else {
            return Vec::new();
        };
        let events = match &mut input.lines {
            Some(lines) => lines.drain(),
            None => {
                let start = input
                    .start
                    .take()
                    .expect("a process source has its starter until it starts");
                let limit = match self.remote {
                    Some(_) => SETTLE_LIMIT_REMOTE,
                    None => SETTLE_LIMIT,
                };
                let lines = input.lines.insert(start());
                lines.settle(SETTLE_QUIET, limit).await
            }
        };
        let mut raw = Vec::new();
        let mut complained = false;
        for event in events {
            match event {
                Event::Started => {
                    input.ever_started = true;
                    input.problem = None;
                }
                Event::Line(line) => raw.push(line),
                Event::Stderr(text) => {
                    input.problem = Some((format!("{}: {text}", input.label), None));
                    complained = true;
                }
                Event::Down { message, retry } => input.problem = Some((message, Some(retry))),
                Event::Lasting(problem) => input.lasting = problem,
            }
        }
        // Output in a later poll, without a new complaint: the complaint on stderr is over.
        // (Within one poll the order of stdout and stderr lines says nothing: two pipes.)
        if !raw.is_empty()
            && !complained
            && input
                .problem
                .as_ref()
                .is_some_and(|(_, retry)| retry.is_none())
        {
            input.problem = None;
        }
        let parser = input.parser;
        let mut problem = input
            .problem
            .clone()
            .or_else(|| input.lasting.clone().map(|p| (p, None)));
        input.ever_read |= !raw.is_empty();
        // Counts are known while the process runs (a quiet unit has no lines to count) or
        // once it has delivered lines; not when it never ran, or only died without a line.
        let mut down = problem.as_ref().is_some_and(|(_, retry)| retry.is_some());
        // While the host is not connected, its own line says what is wrong and when it is
        // tried again (counting down at every poll), and the figures stay as they were, with
        // their age, as other sources on the host keep theirs.
        let mut host_down = false;
        if let Some(Transport::Ssh(host)) = &self.remote {
            let status = host.current_status();
            if !status.is_up() {
                problem = Some((status.describe(host.name()), None));
                down = true;
                host_down = true;
            }
        }
        let unknown = (!input.ever_started && problem.is_some())
            || ((down || input.lasting.is_some()) && !input.ever_read);

        let mut derived = self.take_derived();
        let name = self.name.clone();
        let task = tokio::task::spawn_blocking(move || {
            let lines = ingest(
                &name,
                raw.iter().map(|l| (l.bytes.as_slice(), l.dropped, l.at)),
                parser,
                &error_pattern,
                &mut derived,
                Utc::now(),
            );
            (derived, lines)
        });
        let lines = match task.await {
            Ok((derived, lines)) => {
                self.derived = Some(derived);
                lines
            }
            Err(e) => return self.error_updates(format!("log parser failed: {e}")),
        };
        let mut updates = self.updates(lines, problem, unknown);
        if host_down {
            updates.retain(|u| !matches!(u, Update::Readings { .. }));
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

/// Parse, classify and count: raw lines to log lines, error counts and metrics updated.
/// The one path every source's lines take.
fn ingest<'a>(
    source: &str,
    raw: impl ExactSizeIterator<Item = (&'a [u8], u64, Option<DateTime<Utc>>)>,
    parser: LineParser,
    error_pattern: &Regex,
    derived: &mut Derived,
    now: DateTime<Utc>,
) -> Vec<LogLine> {
    let mut lines = Vec::with_capacity(raw.len());
    let with_metrics = !derived.metrics.is_empty();
    // One copy of the name for the batch, shared by its lines.
    let source: Arc<str> = source.into();
    for (bytes, dropped, written) in raw {
        // A line naming no time of its own is dated by its transport, or by now.
        let written = written.unwrap_or(now);
        let line = match parser {
            LineParser::Text => parse_line(source.clone(), bytes, dropped, error_pattern, written),
            LineParser::Journal => {
                journald::parse_entry(source.clone(), bytes, dropped, error_pattern, written)
            }
        };
        if line.is_error {
            derived.errors.add(line.at, now);
        }
        if with_metrics {
            derived.metrics.observe(&line, now);
        }
        lines.push(line);
    }
    lines
}

impl Collector for LogCollector {
    fn name(&self) -> &str {
        &self.name
    }
    fn panes(&self) -> &'static [&'static str] {
        &["errors"]
    }
    fn interval(&self) -> Duration {
        if self.behind {
            CATCH_UP_INTERVAL
        } else {
            self.interval
        }
    }
    fn poll(&mut self) -> BoxFuture<'_, Vec<Update>> {
        Box::pin(async move {
            let pattern = match self.error_pattern.clone() {
                Ok(pattern) => pattern,
                Err(message) => return self.error_updates(message),
            };
            match &self.input {
                Input::Nothing => self.error_updates(
                    "no input configured: set files, journald, command or docker".to_string(),
                ),
                Input::Unreachable(message) => self.error_updates(message.clone()),
                Input::Files { .. } => self.poll_files(pattern).await,
                Input::Process(_) => self.poll_process(pattern).await,
            }
        })
    }
}

/// Reads files from their start, through the same reading, parsing, classifying and
/// counting as the collector, in batches of at most 8 MiB per file. For benchmarks and
/// tools that take a whole file in.
pub struct FileIngest {
    name: String,
    tailer: Tailer,
    error_pattern: Regex,
    derived: Derived,
}

impl FileIngest {
    pub fn new(name: &str, source: &LogSource) -> Result<Self, String> {
        let mut tailer = Tailer::new(source.files.clone());
        tailer.from_start = true;
        Ok(FileIngest {
            name: name.to_string(),
            tailer,
            error_pattern: compile_error_pattern(&source.error_pattern)?,
            derived: Derived::new(&source.metrics),
        })
    }

    /// The next batch of lines; empty at the end of what is written so far.
    pub fn next_batch(&mut self, now: DateTime<Utc>) -> Result<Vec<LogLine>, String> {
        let outcome = self.tailer.poll();
        if let Some(problem) = summarize(&outcome.problems) {
            return Err(problem);
        }
        let lines = ingest(
            &self.name,
            outcome.lines.iter(),
            LineParser::Text,
            &self.error_pattern,
            &mut self.derived,
            now,
        );
        self.tailer.recycle(outcome.lines);
        Ok(lines)
    }

    /// Error lines counted in the hour before `now`.
    pub fn errors_last_hour(&self, now: DateTime<Utc>) -> u64 {
        self.derived.errors.last_hour(now)
    }
}

/// The first few problems in one sentence (a glob over 100 unreadable files stays short).
fn summarize(problems: &[String]) -> Option<String> {
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

// ---------------------------------------------------------------------------------------
// Error counts

/// Error lines per minute (by the lines' own timestamps), for the last hour only.
#[derive(Default)]
struct ErrorCounts {
    per_minute: BTreeMap<i64, u64>,
}

impl ErrorCounts {
    fn add(&mut self, at: DateTime<Utc>, now: DateTime<Utc>) {
        // A clock ahead of ours counts as now.
        let minute = at.min(now).timestamp().div_euclid(60);
        let current = now.timestamp().div_euclid(60);
        if minute <= current - MINUTES_KEPT {
            return;
        }
        if let Some(n) = self.per_minute.get_mut(&minute) {
            *n += 1;
            return;
        }
        self.per_minute.insert(minute, 1);
        // Old minutes go when a new one comes (not on every line).
        self.per_minute.retain(|m, _| *m > current - MINUTES_KEPT);
    }

    /// Errors in the current minute and the 59 before it.
    fn last_hour(&self, now: DateTime<Utc>) -> u64 {
        let current = now.timestamp().div_euclid(60);
        self.per_minute
            .range(current - 59..=current)
            .map(|(_, n)| n)
            .sum()
    }

    fn last_full_minute(&self, now: DateTime<Utc>) -> u64 {
        let current = now.timestamp().div_euclid(60);
        self.per_minute.get(&(current - 1)).copied().unwrap_or(0)
    }
}

// ---------------------------------------------------------------------------------------
// Following files (blocking; runs in spawn_blocking)

/// Lines read in one poll, back to back in one buffer (no allocation per line).
#[derive(Default)]
struct LineBatch {
    data: Vec<u8>,
    /// Where each line is in `data`, and how many bytes of it were cut.
    spans: Vec<(usize, usize, u64)>,
}

impl LineBatch {
    fn len(&self) -> usize {
        self.spans.len()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    fn iter(&self) -> impl ExactSizeIterator<Item = (&[u8], u64, Option<DateTime<Utc>>)> {
        self.spans
            .iter()
            .map(|&(start, end, dropped)| (&self.data[start..end], dropped, None))
    }

    /// Takes `data[start..end]` as a line: at most `MAX_LINE_BYTES` of it are kept. Blank
    /// lines and the NUL padding a non-appending writer leaves after a copytruncate are
    /// skipped.
    fn push_span(&mut self, mut start: usize, end: usize, mut dropped: u64) {
        while start < end && self.data[start] == 0 {
            start += 1;
        }
        let mut end = end;
        if end - start > MAX_LINE_BYTES {
            dropped += (end - start - MAX_LINE_BYTES) as u64;
            end = start + MAX_LINE_BYTES;
        }
        if dropped == 0 && self.data[start..end].iter().all(u8::is_ascii_whitespace) {
            return;
        }
        self.spans.push((start, end, dropped));
    }

    /// Takes a line assembled elsewhere.
    fn push_copy(&mut self, bytes: &[u8], dropped: u64) {
        let start = self.data.len();
        self.data.extend_from_slice(bytes);
        self.push_span(start, self.data.len(), dropped);
    }
}

struct PollOutcome {
    lines: LineBatch,
    /// What went wrong, one sentence each; the source's health.
    problems: Vec<String>,
    /// Files followed after this poll, including rotated ones still being drained (so a
    /// poll that lands between a rename and the new file does not make the counts unknown).
    followed: usize,
    /// A file had more new bytes than one poll reads.
    behind: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileId(u64, u64);

#[cfg(unix)]
fn file_id(meta: &Metadata, _path: &Path) -> FileId {
    use std::os::unix::fs::MetadataExt;
    FileId(meta.dev(), meta.ino())
}

/// Without inodes, a path is its identity: copytruncate is followed, rename is not.
#[cfg(not(unix))]
fn file_id(_meta: &Metadata, path: &Path) -> FileId {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut hasher);
    FileId(0, hasher.finish())
}

struct Tailer {
    /// A batch given back after use, so its buffers are reused (see `recycle`).
    spare: LineBatch,
    patterns: Vec<String>,
    files: Vec<Followed>,
    /// The first poll has run: files found from now on are new and read from the start.
    started: bool,
    /// Read every file from its start, however long (`FileIngest`).
    from_start: bool,
}

struct Followed {
    id: FileId,
    path: PathBuf,
    file: File,
    /// Bytes of the file consumed so far.
    offset: u64,
    /// The start of a line whose newline has not been read yet.
    partial: Vec<u8>,
    /// Bytes of that line beyond `MAX_LINE_BYTES`, not kept.
    partial_dropped: u64,
    /// Discard everything up to the first newline (reading started mid-line).
    skip_to_newline: bool,
    /// The last bytes before `offset`, as read.
    fingerprint: Vec<u8>,
    /// No configured path leads here any more (renamed or deleted).
    retired: bool,
    idle_polls: u32,
}

impl Tailer {
    fn new(patterns: Vec<String>) -> Self {
        Tailer {
            spare: LineBatch::default(),
            patterns,
            files: Vec::new(),
            started: false,
            from_start: false,
        }
    }

    fn poll(&mut self) -> PollOutcome {
        let mut problems = Vec::new();
        let found = self.find_files(&mut problems);
        let mut lines = std::mem::take(&mut self.spare);
        let mut behind = false;

        for followed in &mut self.files {
            match found.iter().find(|f| f.id == followed.id) {
                Some(f) => {
                    followed.path = f.path.clone();
                    followed.retired = false;
                    followed.idle_polls = 0;
                }
                None => followed.retired = true,
            }
        }
        // Rotated-away files first: their lines are older than their replacements'.
        for retired in [true, false] {
            for followed in self.files.iter_mut().filter(|f| f.retired == retired) {
                match followed.read_new(&mut lines) {
                    Ok(0) if followed.retired => followed.idle_polls += 1,
                    Ok(read) => behind |= read >= MAX_READ_PER_POLL,
                    Err(e) => problems.push(format!(
                        "cannot read {}: {}",
                        followed.path.display(),
                        describe(&e)
                    )),
                }
            }
        }
        self.close_retired(&mut lines);

        for f in &found {
            if self.files.iter().any(|known| known.id == f.id) {
                continue;
            }
            match self.open(f) {
                Ok(Some(mut followed)) => {
                    let tail_start = !self.from_start && (!self.started || followed.offset > 0);
                    let first = lines.len();
                    if let Err(e) = followed.read_new(&mut lines) {
                        problems.push(format!(
                            "cannot read {}: {}",
                            f.path.display(),
                            describe(&e)
                        ));
                    }
                    if tail_start {
                        // A tail start: keep only the last lines found there.
                        let new = lines.len() - first;
                        if new > START_TAIL_LINES {
                            lines.spans.drain(first..first + new - START_TAIL_LINES);
                        }
                    }
                    self.files.push(followed);
                }
                Ok(None) => {}
                Err(e) => problems.push(format!(
                    "cannot open {}: {}",
                    f.path.display(),
                    describe(&e)
                )),
            }
        }
        self.started = true;
        PollOutcome {
            lines,
            problems,
            followed: self.files.len(),
            behind,
        }
    }

    /// Takes a batch back for the next poll. Its buffers are kept while polls fill them
    /// (a source writing fast), and shrunk when they are mostly idle.
    fn recycle(&mut self, mut batch: LineBatch) {
        let used = batch.data.len();
        batch.data.clear();
        batch.spans.clear();
        if batch.data.capacity() > 4 * used.max(64 * 1024) {
            batch.data.shrink_to(used.max(64 * 1024));
            batch.spans.shrink_to(1024);
        }
        self.spare = batch;
    }

    /// Expands every pattern into the regular files it matches now.
    fn find_files(&self, problems: &mut Vec<String>) -> Vec<Found> {
        let mut found: Vec<Found> = Vec::new();
        for pattern in &self.patterns {
            let before = found.len();
            let problems_before = problems.len();
            let mut add = |path: PathBuf, problems: &mut Vec<String>| match std::fs::metadata(&path)
            {
                Ok(meta) if meta.is_file() => {
                    let id = file_id(&meta, &path);
                    if !found.iter().any(|f| f.id == id) {
                        let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                        found.push(Found { path, id, modified });
                    }
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    problems.push(format!("cannot read {}: {}", path.display(), describe(&e)))
                }
            };
            if is_glob(pattern) {
                match glob::glob(pattern) {
                    Ok(paths) => {
                        for entry in paths {
                            match entry {
                                Ok(path) => add(path, problems),
                                Err(e) => problems.push(format!(
                                    "cannot read {}: {}",
                                    e.path().display(),
                                    describe(e.error())
                                )),
                            }
                        }
                    }
                    Err(e) => problems.push(format!("bad glob {pattern}: {}", e.msg)),
                }
            } else {
                add(PathBuf::from(pattern), problems);
            }
            if found.len() == before && problems.len() == problems_before {
                problems.push(format!("no file matches {pattern}"));
            }
        }
        if found.len() > MAX_FILES {
            problems.push(format!(
                "{} files match; following the {MAX_FILES} most recently modified",
                found.len()
            ));
            found.sort_by_key(|f| std::cmp::Reverse(f.modified));
            found.truncate(MAX_FILES);
        }
        found
    }

    /// Opens a newly found file. `None` if it turned out to be one already followed (it was
    /// replaced between the look and the open).
    fn open(&self, found: &Found) -> io::Result<Option<Followed>> {
        let file = File::open(&found.path)?;
        let meta = file.metadata()?;
        let id = file_id(&meta, &found.path);
        if self.files.iter().any(|f| f.id == id) {
            return Ok(None);
        }
        let len = meta.len();
        let tail = !self.from_start && (!self.started || len > MAX_READ_PER_POLL);
        let start = if tail {
            len.saturating_sub(START_TAIL_BYTES)
        } else {
            0
        };
        Ok(Some(Followed {
            id,
            path: found.path.clone(),
            file,
            // From one byte early, so a line that starts exactly at `start` is kept whole.
            offset: start.saturating_sub(1),
            partial: Vec::new(),
            partial_dropped: 0,
            skip_to_newline: start > 0,
            fingerprint: Vec::new(),
            retired: false,
            idle_polls: 0,
        }))
    }

    /// Closes retired files that stayed idle long enough (or are too many), flushing the
    /// last line of each even without its newline: nothing more will come.
    fn close_retired(&mut self, lines: &mut LineBatch) {
        let mut retired = self.files.iter().filter(|f| f.retired).count();
        let mut index = 0;
        while index < self.files.len() {
            let f = &self.files[index];
            let too_many = f.retired && retired > MAX_RETIRED;
            if f.retired && (f.idle_polls >= RETIRE_AFTER_IDLE_POLLS || too_many) {
                let mut closed = self.files.remove(index);
                closed.flush_partial(lines);
                retired -= 1;
            } else {
                index += 1;
            }
        }
    }
}

struct Found {
    path: PathBuf,
    id: FileId,
    modified: SystemTime,
}

fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

fn describe(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    }
}

impl Followed {
    /// Reads what was appended since the last call (at most `MAX_READ_PER_POLL`), pushing
    /// complete lines. Returns the number of bytes read.
    fn read_new(&mut self, lines: &mut LineBatch) -> io::Result<u64> {
        let len = self.file.metadata()?.len();
        if len < self.offset || (len > self.offset && !self.fingerprint_holds()?) {
            // Truncated (copytruncate) or rewritten: what is there now is all new.
            self.flush_partial(lines);
            self.offset = 0;
            self.fingerprint.clear();
            self.skip_to_newline = false;
        }
        if len == self.offset {
            return Ok(0);
        }
        let want = (len - self.offset).min(MAX_READ_PER_POLL);
        self.file.seek(SeekFrom::Start(self.offset))?;
        // Read straight into the batch: complete lines are used where they landed. (Into a
        // buffer of the size wanted: `read_to_end` would grow it to look for more.)
        let base = lines.data.len();
        lines.data.resize(base + want as usize, 0);
        let mut got = 0;
        let read = loop {
            match self.file.read(&mut lines.data[base + got..]) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    got += n;
                    if got == want as usize {
                        break Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        lines.data.truncate(base + got);
        self.offset += got as u64;
        self.remember_tail(&lines.data[base..]);
        self.split(base, lines);
        read?;
        Ok(got as u64)
    }

    /// Whether the bytes just before `offset` are still the ones read there.
    fn fingerprint_holds(&mut self) -> io::Result<bool> {
        if self.fingerprint.is_empty() {
            return Ok(true);
        }
        let at = self.offset - self.fingerprint.len() as u64;
        self.file.seek(SeekFrom::Start(at))?;
        let mut now = vec![0; self.fingerprint.len()];
        match self.file.read_exact(&mut now) {
            Ok(()) => Ok(now == self.fingerprint),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn remember_tail(&mut self, buf: &[u8]) {
        if buf.len() >= FINGERPRINT_BYTES {
            self.fingerprint = buf[buf.len() - FINGERPRINT_BYTES..].to_vec();
        } else {
            self.fingerprint.extend_from_slice(buf);
            let excess = self.fingerprint.len().saturating_sub(FINGERPRINT_BYTES);
            self.fingerprint.drain(..excess);
        }
    }

    /// Splits the bytes read into `lines.data[base..]` into lines.
    fn split(&mut self, base: usize, lines: &mut LineBatch) {
        let end_all = lines.data.len();
        let mut pos = base;
        if self.skip_to_newline {
            match memchr::memchr(b'\n', &lines.data[pos..end_all]) {
                Some(end) => {
                    pos += end + 1;
                    self.skip_to_newline = false;
                }
                None => return,
            }
        }
        while let Some(end) = memchr::memchr(b'\n', &lines.data[pos..end_all]) {
            let line_end = pos + end;
            if self.partial.is_empty() && self.partial_dropped == 0 {
                lines.push_span(pos, line_end, 0);
            } else {
                // The end of a line begun in an earlier read.
                self.append(&lines.data[pos..line_end]);
                self.flush_partial(lines);
            }
            pos = line_end + 1;
        }
        // A line without its newline yet waits (its bytes in the batch stay unused).
        self.append(&lines.data[pos..end_all]);
    }

    /// Adds to the current line, keeping at most `MAX_LINE_BYTES` of it.
    fn append(&mut self, bytes: &[u8]) {
        let room = MAX_LINE_BYTES
            .saturating_sub(self.partial.len())
            .min(bytes.len());
        self.partial.extend_from_slice(&bytes[..room]);
        self.partial_dropped += (bytes.len() - room) as u64;
    }

    /// Ends the current line.
    fn flush_partial(&mut self, lines: &mut LineBatch) {
        let dropped = std::mem::take(&mut self.partial_dropped);
        lines.push_copy(&self.partial, dropped);
        self.partial.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn lines_of(outcome: &PollOutcome) -> Vec<String> {
        outcome
            .lines
            .iter()
            .map(|(bytes, _, _)| String::from_utf8_lossy(bytes).into_owned())
            .collect()
    }

    #[test]
    fn first_poll_starts_at_a_bounded_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.log");
        let mut file = File::create(&path).unwrap();
        for n in 0..20_000 {
            writeln!(file, "line {n:05} with some padding to make it longer").unwrap();
        }
        let mut tailer = Tailer::new(vec![path.display().to_string()]);
        let outcome = tailer.poll();
        let lines = lines_of(&outcome);
        assert_eq!(lines.len(), START_TAIL_LINES);
        assert_eq!(
            lines.last().unwrap(),
            "line 19999 with some padding to make it longer"
        );
        assert_eq!(lines[0], "line 19800 with some padding to make it longer");
    }

    #[test]
    fn tail_start_on_a_line_boundary_keeps_that_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exact.log");
        // Make a line begin exactly START_TAIL_BYTES before the end.
        let last = "last line\n";
        let filler = "x".repeat(START_TAIL_BYTES as usize - last.len() - 1) + "\n";
        std::fs::write(&path, format!("first\n{filler}{last}")).unwrap();
        let mut tailer = Tailer::new(vec![path.display().to_string()]);
        let lines = lines_of(&tailer.poll());
        assert_eq!(
            lines.len(),
            2,
            "{:?}",
            lines.iter().map(|l| l.len()).collect::<Vec<_>>()
        );
        assert_eq!(lines[1], "last line");
    }

    /// 12 MiB in lines of 1 KiB: one and a half polls' worth.
    fn append_12_mib(path: &Path) {
        let line = "y".repeat(1023) + "\n";
        let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
        for _ in 0..(12 * 1024) {
            file.write_all(line.as_bytes()).unwrap();
        }
    }

    #[test]
    fn a_poll_reads_at_most_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flood.log");
        File::create(&path).unwrap();
        let mut tailer = Tailer::new(vec![path.display().to_string()]);
        assert!(tailer.poll().lines.is_empty());
        append_12_mib(&path);
        let first = tailer.poll();
        assert_eq!(first.lines.len(), 8 * 1024);
        assert!(first.behind, "more is waiting");
        let second = tailer.poll();
        assert_eq!(second.lines.len(), 4 * 1024);
        assert!(!second.behind);
    }

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

    #[test]
    fn error_counts_by_minute() {
        let mut counts = ErrorCounts::default();
        let now = DateTime::parse_from_rfc3339("2025-12-12T10:30:30Z")
            .unwrap()
            .with_timezone(&Utc);
        counts.add(now, now);
        counts.add(now - chrono::Duration::minutes(1), now);
        counts.add(now - chrono::Duration::minutes(1), now);
        counts.add(now - chrono::Duration::minutes(59), now);
        counts.add(now - chrono::Duration::minutes(61), now); // too old
        counts.add(now + chrono::Duration::minutes(5), now); // ahead: counts as now
        assert_eq!(counts.last_hour(now), 5);
        assert_eq!(counts.last_full_minute(now), 2);
        let later = now + chrono::Duration::minutes(30);
        assert_eq!(counts.last_hour(later), 4);
        assert_eq!(counts.last_full_minute(later), 0);
        assert!(counts.per_minute.len() <= MINUTES_KEPT as usize);
    }
}
