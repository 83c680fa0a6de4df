//! What is known now, with bounded history. One owner (the app loop) applies updates;
//! panes only read it.

pub mod alerts;
pub mod containers;

pub mod logbuf;
pub mod patterns;

use crate::config::Checkpoints;
use crate::model::HISTORY_POINTS;
use crate::model::figure::{Figure, Severity, Value};
use crate::model::pane::PaneId;
use crate::model::rule::Rule;
use crate::model::time::{format_age, format_offset};
use crate::model::update::{
    ContainerLogTail, ContainerRow, HostSnapshot, LogLevel, ServiceStatus, SourceHealth, Table,
    Update,
};
use crate::rules::engine::{Condition, Engine, Judgement};
use crate::rules::notify::Silence;
use alerts::{AlertBook, AlertEvent, Observed};
use chrono::{DateTime, Duration, Utc};
use logbuf::LogBuffer;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;

/// Why `[deployment]` does not make a window. `Display` is the message `run` stops with.
#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    #[error("deployment.start {text:?} is neither \"now\" nor an RFC 3339 time: {error}")]
    Start {
        text: String,
        error: chrono::ParseError,
    },
    #[error("deployment.length: {0}")]
    Length(chrono::OutOfRangeError),
    #[error("deployment.checkpoints: {0}")]
    Checkpoint(chrono::OutOfRangeError),
    #[error(
        "deployment.checkpoints: {} is after the end of the window ({})",
        format_offset(*.at),
        format_offset(*.length)
    )]
    AfterEnd { at: Duration, length: Duration },
}

/// The watch window: the deployment and the hours after it.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    pub deployment: String,
    pub version: String,
    pub start: DateTime<Utc>,
    pub length: Duration,
    /// Offsets from the start at which the runbook asks for a checkpoint.
    pub checkpoints: Vec<Duration>,
}

impl Window {
    /// Seed 003's rhythm: hourly for four hours, every two until twelve, every four until 24.
    pub(crate) fn default_checkpoints(length: Duration) -> Vec<Duration> {
        let mut points = Vec::new();
        let mut hour = 0;
        while Duration::hours(hour) <= length {
            points.push(Duration::hours(hour));
            hour += match hour {
                h if h < 4 => 1,
                h if h < 12 => 2,
                _ => 4,
            };
        }
        points
    }

    /// Checkpoints every `every` from the start to the end of a window of `length`.
    pub fn every(every: Duration, length: Duration) -> Vec<Duration> {
        let mut points = vec![Duration::zero()];
        if every <= Duration::zero() {
            points.push(length);
            return points;
        }
        let mut at = every;
        while at < length {
            points.push(at);
            at += every;
        }
        points.push(length);
        points
    }

    pub fn new(deployment: &str, start: DateTime<Utc>, length: Duration) -> Self {
        Window {
            deployment: deployment.into(),
            version: String::new(),
            start,
            length,
            checkpoints: Window::default_checkpoints(length),
        }
    }

    /// The window a config describes. `start = "now"` starts it at `now`.
    pub fn from_config(
        deployment: &crate::config::Deployment,
        now: DateTime<Utc>,
    ) -> Result<Self, WindowError> {
        let start = match deployment.start.trim() {
            "now" | "" => now,
            text => DateTime::parse_from_rfc3339(text)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|error| WindowError::Start {
                    text: text.to_string(),
                    error,
                })?,
        };
        let length = Duration::from_std(deployment.length).map_err(WindowError::Length)?;
        let mut window = Window::new(&deployment.name, start, length);
        window.version = deployment.version.clone();
        match &deployment.checkpoints {
            None => {}
            Some(Checkpoints::Every(every)) => {
                let every = Duration::from_std(*every).map_err(WindowError::Checkpoint)?;
                window.checkpoints = Window::every(every, length);
            }
            Some(Checkpoints::At(offsets)) => {
                let mut points = vec![Duration::zero()];
                for offset in offsets {
                    let offset = Duration::from_std(*offset).map_err(WindowError::Checkpoint)?;
                    if offset > length {
                        return Err(WindowError::AfterEnd { at: offset, length });
                    }
                    points.push(offset);
                }
                points.push(length);
                points.sort();
                points.dedup();
                window.checkpoints = points;
            }
        }
        Ok(window)
    }

    /// The checkpoint intervals, as offsets from the start: one per pair of consecutive
    /// checkpoints, covering the window from 0 to its length.
    pub fn intervals(&self) -> Vec<(Duration, Duration)> {
        let mut points: Vec<Duration> = self
            .checkpoints
            .iter()
            .copied()
            .filter(|c| *c >= Duration::zero() && *c <= self.length)
            .collect();
        points.push(Duration::zero());
        points.push(self.length);
        points.sort();
        points.dedup();
        points.windows(2).map(|w| (w[0], w[1])).collect()
    }

    /// The index of the interval `now` is in, if it is inside the window.
    pub fn interval_at(&self, now: DateTime<Utc>) -> Option<usize> {
        if now < self.start {
            return None;
        }
        let elapsed = now - self.start;
        self.intervals()
            .iter()
            .position(|(from, to)| elapsed >= *from && elapsed < *to)
    }

    /// Time since the start of the window (never negative).
    pub fn elapsed(&self, now: DateTime<Utc>) -> Duration {
        (now - self.start).max(Duration::zero())
    }

    /// The next checkpoint after `now`, if the window has one left.
    pub(crate) fn next_checkpoint(&self, now: DateTime<Utc>) -> Option<Duration> {
        let elapsed = self.elapsed(now);
        self.checkpoints.iter().copied().find(|c| *c > elapsed)
    }
}

/// A figure and its recent past.
#[derive(Clone, Debug)]
pub struct FigureState {
    pub figure: Figure,
    /// Numeric history, oldest first, bounded by HISTORY_POINTS.
    pub history: VecDeque<(DateTime<Utc>, f64)>,
    /// When the severity last changed.
    pub since: DateTime<Utc>,
    /// The warn and crit thresholds of its rule at its last reading (drawn on its chart).
    pub limits: [Option<crate::model::rule::Threshold>; 2],
}

impl FigureState {
    pub(crate) fn history_values(&self) -> Vec<f64> {
        self.history.iter().map(|(_, v)| *v).collect()
    }
}

/// A source's health with the age of its figures.
#[derive(Clone, Debug)]
pub struct SourceState {
    pub health: SourceHealth,
    pub last_ok: Option<DateTime<Utc>>,
    /// When its current run of errors began.
    pub failing_since: Option<DateTime<Utc>>,
}

impl SourceState {
    /// A source that has not reported yet.
    pub fn connecting() -> SourceState {
        SourceState {
            health: SourceHealth::Connecting,
            last_ok: None,
            failing_since: None,
        }
    }

    /// A short status line: "12s ago", "connecting…", "error: …".
    pub fn describe(&self, now: DateTime<Utc>) -> String {
        let age = self.last_ok.map(|at| format_age(now - at));
        match (&self.health, age) {
            (SourceHealth::Connecting, _) => "connecting…".into(),
            (SourceHealth::Ok, Some(age)) => format!("{age} ago"),
            (SourceHealth::Ok, None) => "ok".into(),
            (SourceHealth::Busy { message }, age) => match age {
                Some(age) => format!("busy: {message} (figures {age} old)"),
                None => format!("busy: {message}"),
            },
            (
                SourceHealth::Error {
                    message,
                    retry_in_secs,
                },
                age,
            ) => {
                let mut text = message.clone();
                if let Some(secs) = retry_in_secs {
                    text.push_str(&format!(", retrying in {secs}s"));
                }
                if let Some(age) = age {
                    text.push_str(&format!(" (figures {age} old)"));
                }
                // How long it has failed, once that is more than a moment.
                if let Some(since) = self.failing_since
                    && now - since >= Duration::minutes(1)
                {
                    text.push_str(&format!(", failing for {}", format_age(now - since)));
                }
                text
            }
        }
    }

    pub fn is_error(&self) -> bool {
        matches!(self.health, SourceHealth::Error { .. })
    }
}

/// A service row with its uptime over the window.
#[derive(Clone, Debug)]
pub struct ServiceState {
    pub status: ServiceStatus,
    pub samples_up: u64,
    pub samples_total: u64,
    pub since: DateTime<Utc>,
}

impl ServiceState {
    pub(crate) fn uptime_pct(&self) -> f64 {
        if self.samples_total == 0 {
            100.0
        } else {
            100.0 * self.samples_up as f64 / self.samples_total as f64
        }
    }
}

/// A note typed during the window (`n`), kept with its time.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Note {
    pub at: DateTime<Utc>,
    pub text: String,
}

/// What this process is to the record of the window.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum RecordStatus {
    /// Not recording (`check`, `demo` without `--record`).
    #[default]
    Off,
    /// Writing the record.
    Writing {
        path: PathBuf,
        /// The size limit was reached: new buckets are dropped.
        full: bool,
        /// The writer's last error, if any.
        error: Option<String>,
    },
    /// Another watchpost writes it; this one shows it.
    Viewer { path: PathBuf, holder: Option<u32> },
    /// The record could not be opened; the dashboard runs without it.
    Failed(String),
}

/// What the state tells the record and the notifier (when someone listens).
#[derive(Clone, Debug, PartialEq)]
pub enum Outgoing {
    /// One reading (or a source error, or staleness) of one figure.
    Sample {
        id: String,
        name: String,
        unit: String,
        at: DateTime<Utc>,
        value: Value,
        condition: Condition,
    },
    Alert(AlertEvent),
    /// Log lines of one source at one second.
    Logs {
        source: String,
        at: DateTime<Utc>,
        /// The newest line's own time (the record's watermark: lines up to it are counted).
        newest: DateTime<Utc>,
        lines: u32,
        errors: u32,
        critical: u32,
    },
    /// A stretch of a source's lines the record counted only in part: its read-back was
    /// cut before it reached where the record's count had stopped.
    LogGap {
        source: String,
        gap: crate::model::update::LogGap,
    },
}

/// Everything the panes draw from.
#[derive(Clone, Debug)]
pub struct AppState {
    pub window: Window,
    pub figures: BTreeMap<String, FigureState>,
    pub sources: BTreeMap<String, SourceState>,
    pub services: BTreeMap<String, ServiceState>,
    pub hosts: BTreeMap<String, HostSnapshot>,
    pub containers: BTreeMap<String, Vec<ContainerRow>>,
    /// Each container's recent CPU and memory, for the zoomed Containers pane.
    pub container_history: containers::ContainerHistory,
    /// The last log lines of the container zoomed in the Containers pane.
    pub container_logs: Option<ContainerLogTail>,
    pub logs: LogBuffer,
    pub tables: BTreeMap<String, Table>,
    pub alerts: AlertBook,
    /// Rules from the config, by figure id; they override a pack's defaults.
    pub rules: HashMap<String, Rule>,
    /// Which source feeds which pane, in config order (e.g. the RBAC pane's SQLite source).
    pub pane_sources: BTreeMap<PaneId, Vec<String>>,
    /// Figures the config defines that no pane of their source shows (`[[logs.L.metric]]`,
    /// `[[sqlite.S.metric]]`), by id with their names: the Figures pane lists them, from the
    /// first frame on.
    pub listed_figures: BTreeMap<String, String>,
    /// Every figure's rule state over time (`for`, failures in a row, no data).
    pub engine: Engine,
    /// Maintenance windows: alerts in them are recorded but do not ring or count.
    pub silences: Vec<Silence>,
    /// Events for the record and the notifier; `None` (nothing kept) unless enabled.
    pub outbox: Option<Vec<Outgoing>>,
    /// The worst alert state of each checkpoint interval (`None`: not watched / not yet).
    pub timeline: Vec<Option<Severity>>,
    pub notes: Vec<Note>,
    /// Checkpoints (seconds from the start) that have their snapshot in the record.
    pub snapshots: BTreeSet<i64>,
    pub record: RecordStatus,
    /// Log lines up to these times (per source) were counted by an earlier session.
    pub log_watermarks: HashMap<String, DateTime<Utc>>,
    /// A viewer's alerts come from the record, not from its own judgements.
    pub alerts_from_record: bool,
    /// Whether every reading of a source's last round failed, until its health comes.
    round: HashMap<String, bool>,
}

impl AppState {
    pub fn new(window: Window) -> Self {
        let cells = window.intervals().len();
        AppState {
            window,
            figures: BTreeMap::new(),
            sources: BTreeMap::new(),
            services: BTreeMap::new(),
            hosts: BTreeMap::new(),
            containers: BTreeMap::new(),
            container_history: containers::ContainerHistory::default(),
            container_logs: None,
            logs: LogBuffer::new(logbuf::DEFAULT_CAPACITY),
            tables: BTreeMap::new(),
            alerts: AlertBook::default(),
            rules: HashMap::new(),
            pane_sources: BTreeMap::new(),
            listed_figures: BTreeMap::new(),
            engine: Engine::default(),
            silences: Vec::new(),
            outbox: None,
            timeline: vec![None; cells],
            notes: Vec::new(),
            snapshots: BTreeSet::new(),
            record: RecordStatus::Off,
            log_watermarks: HashMap::new(),
            alerts_from_record: false,
            round: HashMap::new(),
        }
    }

    /// Starts keeping [`Outgoing`] events for someone to [`AppState::take_outbox`].
    pub fn enable_outbox(&mut self) {
        self.outbox.get_or_insert_with(Vec::new);
    }

    pub fn take_outbox(&mut self) -> Vec<Outgoing> {
        self.outbox.as_mut().map(std::mem::take).unwrap_or_default()
    }

    fn emit(&mut self, event: Outgoing) {
        if let Some(outbox) = &mut self.outbox {
            outbox.push(event);
        }
    }

    /// The rule a reading is judged by: the configured one, else the pack's default.
    /// A configured rule keeps the default's `min_samples` and `depends_on` unless it sets
    /// them itself (see [`Rule::over`]).
    pub(crate) fn rule_for(&self, reading: &crate::model::figure::Reading) -> Rule {
        match self.rules.get(&reading.id) {
            Some(configured) => configured.clone().over(reading.default_rule.as_ref()),
            None => reading.default_rule.clone().unwrap_or_default(),
        }
    }

    /// Registers a source before it reports, so panes can say "connecting…".
    pub fn register_source(&mut self, pane: PaneId, source: &str) {
        self.sources
            .entry(source.to_string())
            .or_insert(SourceState::connecting());
        let list = self.pane_sources.entry(pane).or_default();
        if !list.iter().any(|s| s == source) {
            list.push(source.to_string());
        }
    }

    /// The sources a pane reads, in config order.
    pub fn sources_of(&self, pane: PaneId) -> &[String] {
        self.pane_sources
            .get(&pane)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    pub fn figure(&self, id: &str) -> Option<&FigureState> {
        self.figures.get(id)
    }

    pub fn value(&self, id: &str) -> Option<f64> {
        self.figures.get(id).and_then(|f| f.figure.value.as_f64())
    }

    /// The worst state now: the worst alert that counts (firing or flapping, not pending,
    /// not silenced). A figure that is bad but still pending under its rule's `for` is not
    /// counted yet; `watchpost check` judges figures instantaneously instead.
    pub fn worst(&self) -> Severity {
        self.alerts.worst()
    }

    /// The worst instantaneous severity of every figure (what `check` reports).
    pub fn worst_figure(&self) -> Severity {
        self.figures
            .values()
            .map(|f| f.figure.severity)
            .fold(Severity::Ok, Severity::worst)
    }

    /// Applies one update at time `now`.
    pub fn apply(&mut self, update: Update, now: DateTime<Utc>) {
        match update {
            Update::Readings { source, readings } => {
                // A collector's round is its readings, then its health: remember whether
                // every reading failed, so a failing source is not reported twice.
                let all_failed = readings.iter().all(|r| r.error.is_some());
                self.round.insert(source.clone(), all_failed);
                // Every figure failed: the source failed, and says so once, in its own
                // alert, before its figures are judged (so they fold into it).
                if let Some(error) = readings
                    .iter()
                    .find_map(|r| r.error.clone())
                    .filter(|_| all_failed)
                {
                    self.source_health(&source, Some(&error), now);
                } else if !readings.is_empty()
                    && !self.sources.get(&source).is_some_and(SourceState::is_error)
                {
                    // Figures again, and no error from the source's health: it answers.
                    self.source_health(&source, None, now);
                }
                // Causes before the figures that depend on them, so that a round that
                // takes a service down folds its latency into its `up` at once.
                let (dependents, causes): (Vec<_>, Vec<_>) = readings
                    .into_iter()
                    .partition(|r| self.rule_for(r).depends_on.is_some());
                for reading in causes.into_iter().chain(dependents) {
                    self.apply_reading(reading, now);
                }
                // Only figures read fresh make the source's figures young again.
                if !all_failed {
                    self.mark_ok(&source, now);
                }
            }
            Update::Health { source, health } => {
                let all_failed = self.round.remove(&source).unwrap_or(false);
                match &health {
                    SourceHealth::Error { message, .. } => {
                        self.source_health(&source, Some(message), now)
                    }
                    // A round whose every figure failed is a failed source, whatever its
                    // health says.
                    SourceHealth::Ok if all_failed => {}
                    SourceHealth::Ok => self.source_health(&source, None, now),
                    SourceHealth::Busy { .. } | SourceHealth::Connecting => {}
                }
                if matches!(health, SourceHealth::Error { .. }) {
                    // What it can no longer vouch for goes: a drill-down table would
                    // otherwise stand under the error as if it were current.
                    let prefix = format!("{source}.");
                    self.tables.retain(|id, _| !id.starts_with(&prefix));
                }
                let entry = self
                    .sources
                    .entry(source)
                    .or_insert(SourceState::connecting());
                match &health {
                    SourceHealth::Ok => {
                        entry.last_ok = Some(now);
                        entry.failing_since = None;
                    }
                    SourceHealth::Error { .. } if entry.failing_since.is_none() => {
                        entry.failing_since = Some(now);
                    }
                    _ => {}
                }
                entry.health = health;
            }
            Update::Service(status) => {
                let entry = self
                    .services
                    .entry(status.name.clone())
                    .or_insert(ServiceState {
                        status: status.clone(),
                        samples_up: 0,
                        samples_total: 0,
                        since: now,
                    });
                if entry.status.up != status.up {
                    entry.since = now;
                }
                entry.samples_total += 1;
                entry.samples_up += u64::from(status.up);
                entry.status = status;
            }
            Update::Host { source, snapshot } => {
                // Hosts found by a Prometheus source join the pane as they appear.
                if !self.sources_of(PaneId::Host).contains(&source) {
                    self.pane_sources
                        .entry(PaneId::Host)
                        .or_default()
                        .push(source.clone());
                }
                self.hosts.insert(source.clone(), snapshot);
                self.mark_ok(&source, now);
            }
            Update::Containers { source, rows } => {
                self.container_history.record(&source, &rows, now);
                self.containers.insert(source.clone(), rows);
                self.mark_ok(&source, now);
            }
            Update::Logs(lines) => {
                let mut lines = lines.into_iter();
                self.push_logs(&mut lines, usize::MAX);
            }
            Update::LogCounts {
                source,
                counts,
                partial,
            } => {
                // Said before the counts, so a commit that takes the counts (and moves the
                // watermark past the stretch) takes the word that they are partial too.
                if let Some(gap) = partial {
                    self.emit(Outgoing::LogGap {
                        source: source.clone(),
                        gap,
                    });
                }
                for count in counts {
                    self.emit(Outgoing::Logs {
                        source: source.clone(),
                        at: count.at,
                        newest: count.newest,
                        lines: count.lines,
                        errors: count.errors,
                        critical: count.critical,
                    });
                }
            }
            Update::ContainerLogs(tail) => self.container_logs = Some(tail),
            Update::Table { id, table } => {
                self.tables.insert(id, table);
            }
            Update::History { id, points } => {
                if let Some(entry) = self.figures.get_mut(&id) {
                    let first = entry.history.front().map(|(t, _)| *t);
                    let older = points
                        .into_iter()
                        .filter(|(t, v)| v.is_finite() && first.is_none_or(|f| *t < f));
                    let mut history: VecDeque<(DateTime<Utc>, f64)> = older.collect();
                    history.extend(entry.history.drain(..));
                    while history.len() > HISTORY_POINTS {
                        history.pop_front();
                    }
                    entry.history = history;
                }
            }
            Update::Alerts { source, alerts } => {
                if !self.alerts_from_record {
                    for event in self.alerts.sync_external(&source, alerts, now) {
                        self.emit(Outgoing::Alert(event));
                    }
                }
                self.mark_ok(&source, now);
            }
            Update::Removed {
                source,
                subjects,
                services,
                reason,
            } => {
                for subject in subjects {
                    self.figures
                        .retain(|id, _| !crate::rules::engine::in_subject(id, &subject));
                    self.engine.remove(&subject);
                    if !self.alerts_from_record {
                        let what = subject
                            .strip_prefix(&source)
                            .and_then(|rest| rest.strip_prefix('.'))
                            .unwrap_or(&subject);
                        let name = format!("{what} ({source})");
                        let event = self.alerts.remove(&subject, &name, &reason, now);
                        self.emit(Outgoing::Alert(event));
                    }
                }
                for service in services {
                    self.services.remove(&service);
                }
            }
        }
        self.mark_timeline(now);
    }

    /// Time passing: pending alerts whose `for` ran out fire, silent figures become "no
    /// data", flapping alerts settle, silences begin and end, the timeline moves on.
    /// Returns whether the alerts changed.
    pub fn tick(&mut self, now: DateTime<Utc>) -> bool {
        let mut changed = false;
        for (id, judgement) in self.engine.sweep(now) {
            let (name, unit) = self
                .figures
                .get(&id)
                .map(|f| (f.figure.name.clone(), f.figure.unit.clone()))
                .unwrap_or_else(|| (id.clone(), String::new()));
            let reason = match judgement.condition {
                Condition::NoData => {
                    let last = self.engine.get(&id).and_then(|s| s.last_seen());
                    match last {
                        Some(t) => format!("no reading for {}", format_age(now - t)),
                        None => "no reading".into(),
                    }
                }
                _ => self
                    .figures
                    .get(&id)
                    .map(|f| f.figure.display_value())
                    .unwrap_or_default(),
            };
            changed |= self.judged(&id, &name, reason, &judgement, now);
            if judgement.condition == Condition::NoData {
                self.emit(Outgoing::Sample {
                    id: id.clone(),
                    name,
                    unit,
                    at: now,
                    value: Value::None,
                    condition: Condition::NoData,
                });
            }
        }
        if !self.alerts_from_record {
            let events = self.alerts.tick(now, &self.silences);
            changed |= !events.is_empty();
            for event in events {
                self.emit(Outgoing::Alert(event));
            }
        }
        self.mark_timeline(now);
        changed
    }

    /// Colours the current checkpoint interval with the worst state now (once figures exist).
    pub(crate) fn mark_timeline(&mut self, now: DateTime<Utc>) {
        if self.figures.is_empty() {
            return;
        }
        if let Some(i) = self.window.interval_at(now)
            && let Some(cell) = self.timeline.get_mut(i)
        {
            let worst = self.alerts.worst();
            *cell = Some(cell.map_or(worst, |c| c.worst(worst)));
        }
    }

    /// The checkpoint due for a snapshot at `now`: passed, not taken, and recent (a
    /// checkpoint missed while watchpost was not running stays missed).
    pub(crate) fn due_checkpoint(&self, now: DateTime<Utc>) -> Option<Duration> {
        if self.figures.is_empty() {
            return None;
        }
        let elapsed = now - self.window.start;
        let intervals = self.window.intervals();
        let mut points: Vec<(Duration, Duration)> = intervals
            .iter()
            .map(|(from, to)| (*from, *to - *from))
            .collect();
        if let Some((_, to)) = intervals.last() {
            points.push((*to, Duration::minutes(10)));
        }
        // Wait for every source's first answer, but not for more than half the grace.
        let settled = self
            .sources
            .values()
            .all(|s| s.health != SourceHealth::Connecting);
        points.into_iter().rev().find_map(|(at, next_gap)| {
            let grace = (next_gap / 2).clamp(Duration::seconds(5), Duration::minutes(5));
            let late = elapsed - at;
            (at <= elapsed
                && late <= grace
                && (settled || late >= grace / 2)
                && !self.snapshots.contains(&at.num_seconds()))
            .then_some(at)
        })
    }

    /// A source's health (`Some(message)`: failed) into its own alert, `<source>.source`:
    /// one alert for the source however many figures it has; their source errors fold
    /// into it (see [`crate::rules::engine`]).
    fn source_health(&mut self, source: &str, error: Option<&String>, now: DateTime<Utc>) {
        let id = crate::rules::engine::source_id(source);
        let rule = self.rules.get(&id).cloned().unwrap_or_default();
        let name = format!("{source} source");
        let condition = match error {
            Some(_) => Condition::SourceError,
            None => Condition::Ok,
        };
        let Some(judgement) = self.engine.source_health(source, &rule, condition, now) else {
            return;
        };
        let reason = match error {
            Some(message) => format!("source error: {message}"),
            None => "answering again".into(),
        };
        self.judged(&id, &name, reason, &judgement, now);
        if !condition.is_ok() {
            self.emit(Outgoing::Sample {
                id,
                name,
                unit: String::new(),
                at: now,
                value: Value::None,
                condition,
            });
        }
    }

    /// Hands a judgement to the alert book (unless a viewer's alerts come from the record).
    fn judged(
        &mut self,
        id: &str,
        name: &str,
        reason: String,
        judgement: &Judgement,
        now: DateTime<Utc>,
    ) -> bool {
        if self.alerts_from_record {
            return false;
        }
        let rule = self
            .engine
            .get(id)
            .map(|s| s.rule.clone())
            .unwrap_or_default();
        let events = self.alerts.apply(
            Observed {
                id,
                name,
                reason,
                judgement,
                rule: &rule,
            },
            now,
            &self.silences,
        );
        let changed = !events.is_empty();
        for event in events {
            self.emit(Outgoing::Alert(event));
        }
        changed
    }

    /// Counts log lines, errors and critical lines per source and second, skipping lines
    /// an earlier session already counted.
    /// Takes up to `most` lines off the front of `lines` into the buffer (and the
    /// record's counts). The rest stay where they are: a burst is applied a slice at a
    /// time without moving what waits.
    pub(crate) fn push_logs(
        &mut self,
        lines: &mut std::vec::IntoIter<crate::model::update::LogLine>,
        most: usize,
    ) {
        let n = most.min(lines.len());
        if self.outbox.is_some() {
            self.count_logs(&lines.as_slice()[..n]);
        }
        for line in lines.by_ref().take(n) {
            self.logs.push(line);
        }
    }

    fn count_logs(&mut self, lines: &[crate::model::update::LogLine]) {
        // (lines, errors, critical, newest) per (source, second), keyed by the shared
        // name: no copy of it per line.
        type Key = (std::sync::Arc<str>, DateTime<Utc>);
        let mut counts: BTreeMap<Key, (u32, u32, u32, DateTime<Utc>)> = BTreeMap::new();
        for line in lines {
            // Counted by its source's tally, or by an earlier session (the watermark is
            // kept in milliseconds).
            if line.tallied
                || self
                    .log_watermarks
                    .get(&*line.source)
                    .is_some_and(|mark| line.at.timestamp_millis() <= mark.timestamp_millis())
            {
                continue;
            }
            let second = DateTime::from_timestamp(line.at.timestamp(), 0).unwrap_or(line.at);
            let entry = counts
                .entry((line.source.clone(), second))
                .or_insert((0, 0, 0, line.at));
            entry.0 += 1;
            entry.1 += u32::from(line.is_error);
            entry.2 += u32::from(line.level == LogLevel::Critical);
            entry.3 = entry.3.max(line.at);
        }
        for ((source, at), (lines, errors, critical, newest)) in counts {
            self.emit(Outgoing::Logs {
                source: source.to_string(),
                at,
                newest,
                lines,
                errors,
                critical,
            });
        }
    }

    fn mark_ok(&mut self, source: &str, now: DateTime<Utc>) {
        let entry = self
            .sources
            .entry(source.to_string())
            .or_insert(SourceState::connecting());
        entry.health = SourceHealth::Ok;
        entry.last_ok = Some(now);
        entry.failing_since = None;
    }

    fn apply_reading(&mut self, reading: crate::model::figure::Reading, now: DateTime<Utc>) {
        let rule = self.rule_for(&reading);
        let judgement = self.engine.evaluate(&rule, &reading, now);
        let severity = judgement.severity;
        let mut detail = reading.detail.clone();
        if let Some((samples, needed)) = rule.lacks_samples(&reading) {
            let note = format!(
                "not judged: {samples} sample{} of the {needed} it needs",
                if samples == 1 { "" } else { "s" }
            );
            detail = if detail.is_empty() {
                note
            } else {
                format!("{detail}; {note}")
            };
        }
        let figure = Figure {
            id: reading.id.clone(),
            name: reading.name,
            value: reading.value,
            unit: reading.unit,
            severity,
            detail,
            error: reading.error,
            at: now,
        };
        let reason = match &figure.error {
            Some(error) => error.clone(),
            None => figure.display_value(),
        };
        self.judged(&figure.id, &figure.name, reason, &judgement, now);
        if self.outbox.is_some() {
            self.emit(Outgoing::Sample {
                id: figure.id.clone(),
                name: figure.name.clone(),
                unit: figure.unit.clone(),
                at: now,
                value: figure.value.clone(),
                condition: judgement.condition,
            });
        }
        let entry = self
            .figures
            .entry(reading.id)
            .or_insert_with(|| FigureState {
                figure: figure.clone(),
                history: VecDeque::with_capacity(HISTORY_POINTS),
                since: now,
                limits: [None, None],
            });
        entry.limits = [rule.warn, rule.crit];
        if entry.figure.severity != severity {
            entry.since = now;
        }
        if let Value::Number(n) = figure.value
            && n.is_finite()
        {
            if entry.history.len() == HISTORY_POINTS {
                entry.history.pop_front();
            }
            entry.history.push_back((now, n));
        }
        entry.figure = figure;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::figure::Reading;
    use crate::model::rule::Threshold;

    fn state() -> AppState {
        AppState::new(Window::new("test", Utc::now(), Duration::hours(24)))
    }

    #[test]
    fn default_checkpoints_follow_seed_003() {
        let hours: Vec<i64> = Window::default_checkpoints(Duration::hours(24))
            .iter()
            .map(|d| d.num_hours())
            .collect();
        assert_eq!(hours, vec![0, 1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24]);
    }

    #[test]
    fn readings_get_severity_and_history() {
        let mut s = state();
        let now = Utc::now();
        let rule = Rule::warn_crit(Threshold::above(20.0), Threshold::above(50.0));
        for (i, v) in [5.0, 25.0, 60.0].into_iter().enumerate() {
            s.apply(
                Update::Readings {
                    source: "tmws".into(),
                    readings: vec![
                        Reading::number("tmws.rbac.deny_pct_1h", "deny", v, "%")
                            .with_rule(rule.clone()),
                    ],
                },
                now + Duration::seconds(i as i64),
            );
        }
        let f = s.figure("tmws.rbac.deny_pct_1h").unwrap();
        assert_eq!(f.figure.severity, Severity::Crit);
        assert_eq!(f.history_values(), vec![5.0, 25.0, 60.0]);
        assert_eq!(s.worst(), Severity::Crit);
        assert_eq!(s.sources["tmws"].health, SourceHealth::Ok);
    }

    #[test]
    fn configured_rule_overrides_pack_default() {
        let mut s = state();
        s.rules
            .insert("x.v".into(), Rule::crit_only(Threshold::above(1.0)));
        s.apply(
            Update::Readings {
                source: "x".into(),
                readings: vec![
                    Reading::number("x.v", "v", 2.0, "")
                        .with_rule(Rule::crit_only(Threshold::above(100.0))),
                ],
            },
            Utc::now(),
        );
        assert_eq!(s.figure("x.v").unwrap().figure.severity, Severity::Crit);
    }

    #[test]
    fn offsets_read_like_the_runbook() {
        assert_eq!(format_offset(Duration::minutes(125)), "T+02:05");
        assert_eq!(format_age(Duration::seconds(75)), "1m");
    }
}
