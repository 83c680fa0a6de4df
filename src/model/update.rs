//! What collectors send to the state owner. The one way in for new data.

use super::figure::Reading;
use chrono::{DateTime, Utc};
use std::sync::Arc;

/// A collector's own health, shown by every pane that uses the source.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceHealth {
    /// Not heard from yet.
    Connecting,
    /// The last run worked.
    Ok,
    /// The last run failed; figures (if any) are as old as `last_ok`.
    Error {
        message: String,
        retry_in_secs: Option<u64>,
    },
    /// The database or host answered "busy"; figures kept, not zeroed.
    Busy { message: String },
}

/// One row of the Services pane.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceStatus {
    pub name: String,
    /// "http", "systemd", "compose".
    pub kind: String,
    pub up: bool,
    /// HTTP status code, or unit sub-state such as "running".
    pub status: String,
    pub latency_ms: Option<f64>,
    pub restarts: Option<u64>,
    pub detail: String,
}

/// How long a container may stay `created` or `restarting` before that counts as down:
/// starting is not down.
pub(crate) const CONTAINER_START_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// One row of the Containers pane.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ContainerRow {
    pub id: String,
    pub name: String,
    pub project: String,
    pub service: String,
    pub state: String,
    pub health: String,
    pub started_at: Option<DateTime<Utc>>,
    pub restarts: u64,
    pub cpu_pct: Option<f64>,
    pub mem_bytes: Option<f64>,
    pub mem_limit_bytes: Option<f64>,
    pub net_rx_bps: Option<f64>,
    pub net_tx_bps: Option<f64>,
    pub block_read_bytes: Option<f64>,
    pub block_write_bytes: Option<f64>,
    /// When the engine created it (a container passing through `created` is starting).
    pub created_at: Option<DateTime<Utc>>,
    /// When it last exited (a container `restarting` since then is starting again).
    pub finished_at: Option<DateTime<Utc>>,
    /// Its compose replica number (`com.docker.compose.container-number`), if any: a new
    /// container with the same project, service and number replaces this one.
    pub number: String,
}

/// The last log lines of the container zoomed in the Containers pane (`docker logs --tail`),
/// fetched only while it is zoomed. Text is raw here; the pane sanitizes it.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct ContainerLogTail {
    pub source: String,
    /// The container's id.
    pub id: String,
    /// Oldest first, at most [`CONTAINER_LOG_TAIL`] lines.
    pub lines: Vec<ContainerLogLine>,
    /// Why the lines could not be read (a logging driver that keeps none, an engine error).
    pub error: Option<String>,
}

/// How many of a zoomed container's last log lines are fetched and kept.
pub const CONTAINER_LOG_TAIL: usize = 100;

#[derive(Clone, Debug, PartialEq)]
pub struct ContainerLogLine {
    /// The engine's own stamp of the line, when it gave one.
    pub at: Option<DateTime<Utc>>,
    pub stderr: bool,
    pub text: String,
}

/// The Host pane's snapshot beyond its figures.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct HostSnapshot {
    pub hostname: String,
    pub cpu_pct: f64,
    pub cores: usize,
    pub mem_used_bytes: f64,
    pub mem_total_bytes: f64,
    pub load: [f64; 3],
    pub uptime_secs: u64,
    pub disks: Vec<DiskUsage>,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct DiskUsage {
    pub mount: String,
    /// Blocks in use, as `df`'s Used column: (blocks − free blocks) × fragment size.
    pub used_bytes: f64,
    /// Free to an ordinary user, as `df`'s Available column (reserved blocks excluded).
    pub available_bytes: f64,
    /// The file system's size, as `df`'s 1B-blocks column.
    pub total_bytes: f64,
}

impl DiskUsage {
    /// `df`'s Use%: used / (used + available). Blocks reserved for root count neither as
    /// used nor as available, so a disk with a large reserve is not shown fuller than `df`
    /// says (df then rounds up to a whole percent; this keeps the fraction).
    pub fn used_pct(&self) -> f64 {
        let reachable = self.used_bytes + self.available_bytes;
        if reachable <= 0.0 {
            0.0
        } else {
            100.0 * self.used_bytes / reachable
        }
    }
}

/// Level of a log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Critical,
}

impl LogLevel {
    pub fn label(self) -> &'static str {
        match self {
            LogLevel::Trace => "TRACE",
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
            LogLevel::Critical => "CRIT",
        }
    }

    /// Reads the usual spellings: "warning", "ERR", "fatal", "panic", ...
    pub fn parse(text: &str) -> Option<LogLevel> {
        match text.trim().to_ascii_lowercase().as_str() {
            "trace" => Some(LogLevel::Trace),
            "debug" | "dbg" => Some(LogLevel::Debug),
            "info" | "information" | "notice" => Some(LogLevel::Info),
            "warn" | "warning" => Some(LogLevel::Warn),
            "error" | "err" => Some(LogLevel::Error),
            "critical" | "crit" | "fatal" | "panic" | "emerg" | "alert" => Some(LogLevel::Critical),
            _ => None,
        }
    }
}

/// One line of a log, parsed. Text fields are raw here; the UI sanitizes them.
///
/// Lean on purpose (ingest makes a million a second): the source's name is shared with
/// every line of the source, and all fields live in one string, so a line costs at most
/// three allocations (message, field text, field bounds) however many fields it has.
#[derive(Clone, Debug, PartialEq)]
pub struct LogLine {
    pub source: Arc<str>,
    pub at: DateTime<Utc>,
    pub level: LogLevel,
    pub message: String,
    /// Other fields of a structured line, in their order.
    pub fields: Fields,
    /// Whether the source's error pattern matched this line.
    pub is_error: bool,
    /// Counted for the record by its source's own tally (see [`Update::LogCounts`]): a
    /// line shown from a file's tail at start, or read while the source's window was
    /// being read back. The record does not count it again.
    pub tallied: bool,
}

impl LogLine {
    /// A line without fields; `is_error` from the level (Error and above).
    pub fn new(
        source: impl Into<Arc<str>>,
        at: DateTime<Utc>,
        level: LogLevel,
        message: impl Into<String>,
    ) -> LogLine {
        LogLine {
            source: source.into(),
            at,
            level,
            message: message.into(),
            fields: Fields::default(),
            is_error: level >= LogLevel::Error,
            tallied: false,
        }
    }
}

/// The fields of a structured line, in their order, keys and values back to back in one
/// string. Keys may repeat (a JSON object may say a key twice).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fields {
    text: String,
    /// Where each key, then its value, ends in `text`.
    ends: Vec<u32>,
}

impl Fields {
    pub fn with_capacity(fields: usize, bytes: usize) -> Fields {
        Fields {
            text: String::with_capacity(bytes),
            ends: Vec::with_capacity(fields * 2),
        }
    }

    pub fn push(&mut self, key: &str, value: &str) {
        self.text.push_str(key);
        self.ends.push(self.text.len() as u32);
        self.text.push_str(value);
        self.ends.push(self.text.len() as u32);
    }

    pub fn len(&self) -> usize {
        self.ends.len() / 2
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The `i`th field.
    pub fn at(&self, i: usize) -> Option<(&str, &str)> {
        let start = match i {
            0 => 0,
            _ => *self.ends.get(2 * i - 1)? as usize,
        };
        let key_end = *self.ends.get(2 * i)? as usize;
        let value_end = *self.ends.get(2 * i + 1)? as usize;
        Some((&self.text[start..key_end], &self.text[key_end..value_end]))
    }

    pub fn iter(&self) -> FieldsIter<'_> {
        FieldsIter {
            fields: self,
            range: 0..self.len(),
        }
    }

    /// The value of the first field named `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Takes the `i`th field out, returning its value.
    pub fn remove(&mut self, i: usize) -> Option<String> {
        let (key, value) = self.at(i)?;
        let (key_len, value_len) = (key.len(), value.len());
        let value = value.to_string();
        let start = self.ends[2 * i + 1] as usize - key_len - value_len;
        self.text
            .replace_range(start..start + key_len + value_len, "");
        self.ends.drain(2 * i..2 * i + 2);
        let gone = (key_len + value_len) as u32;
        for end in &mut self.ends[2 * i..] {
            *end -= gone;
        }
        Some(value)
    }

    /// Every field of `other` after these.
    pub(crate) fn extend_from(&mut self, other: &Fields) {
        for (k, v) in other {
            self.push(k, v);
        }
    }

    /// As owned pairs (for tests and tools).
    pub fn to_vec(&self) -> Vec<(String, String)> {
        self.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

/// The fields of a line, in order.
pub struct FieldsIter<'a> {
    fields: &'a Fields,
    range: std::ops::Range<usize>,
}

impl<'a> Iterator for FieldsIter<'a> {
    type Item = (&'a str, &'a str);
    fn next(&mut self) -> Option<Self::Item> {
        self.range.next().and_then(|i| self.fields.at(i))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.range.size_hint()
    }
}

impl DoubleEndedIterator for FieldsIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.range.next_back().and_then(|i| self.fields.at(i))
    }
}

impl ExactSizeIterator for FieldsIter<'_> {}

impl<'a> IntoIterator for &'a Fields {
    type Item = (&'a str, &'a str);
    type IntoIter = FieldsIter<'a>;
    fn into_iter(self) -> FieldsIter<'a> {
        self.iter()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Fields {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Fields {
        let mut fields = Fields::default();
        for (k, v) in iter {
            fields.push(k.as_ref(), v.as_ref());
        }
        fields
    }
}

impl<K: AsRef<str>, V: AsRef<str>> From<Vec<(K, V)>> for Fields {
    fn from(pairs: Vec<(K, V)>) -> Fields {
        pairs.into_iter().collect()
    }
}

/// A source's log lines of one second, counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LogCount {
    /// The second.
    pub at: DateTime<Utc>,
    /// The newest line's own time: the record counts lines up to it as seen.
    pub newest: DateTime<Utc>,
    pub lines: u32,
    pub errors: u32,
    pub critical: u32,
}

/// A stretch of a source's lines the record counted only in part: the read-back of the
/// lines written while nothing watched was cut (by its `read_back` size, its time cap, a
/// file it could not read or lines naming no time) before it reached `from`, where the
/// record's count had stopped. Lines from `from` to `to` were counted only as far as they
/// were read; from `to` on, every line is counted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogGap {
    /// Where the record's count had stopped (its watermark, or the window's start).
    pub from: DateTime<Utc>,
    /// The oldest line time read back: lines from here on are all counted.
    pub to: DateTime<Utc>,
    /// Bytes read back, of how many before where following started.
    pub read: u64,
    pub total: u64,
    /// Why the read-back stopped ("its read_back cap of 64.0 KiB").
    pub why: String,
}

/// A small table for a drill-down ("top denied operations").
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Table {
    pub title: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// Everything a collector can tell the state.
#[derive(Clone, Debug, PartialEq)]
pub enum Update {
    Readings {
        source: String,
        readings: Vec<Reading>,
    },
    Health {
        source: String,
        health: SourceHealth,
    },
    Service(ServiceStatus),
    Host {
        source: String,
        snapshot: HostSnapshot,
    },
    Containers {
        source: String,
        rows: Vec<ContainerRow>,
    },
    Logs(Vec<LogLine>),
    /// A log source's lines counted for the record without being sent one by one (the
    /// lines of its window read back at start, and the lines read meanwhile), per second,
    /// oldest first.
    LogCounts {
        source: String,
        counts: Vec<LogCount>,
        /// The read-back that gave these counts was cut before it reached where the
        /// record's count had stopped: the counts of that stretch are partial.
        partial: Option<LogGap>,
    },
    ContainerLogs(ContainerLogTail),
    Table {
        id: String,
        table: Table,
    },
    /// Past values of a figure (a Prometheus range query at start-up) for its sparkline,
    /// oldest first; points newer than the figure's own history are left out.
    History {
        id: String,
        points: Vec<(DateTime<Utc>, f64)>,
    },
    /// Every alert an external alert manager has active now (Alertmanager); the ones not
    /// listed any more have resolved.
    Alerts {
        source: String,
        alerts: Vec<ExternalAlert>,
    },
    /// Things a source watched that no longer exist (a container removed, or replaced
    /// under another figure key): their figures, Services rows and alerts leave at once,
    /// with one "removed" line each on the alert timeline, never "no data".
    Removed {
        source: String,
        /// Figure ids, or the part of them before a `.` (`dock.q3` for every `dock.q3.*`).
        subjects: Vec<String>,
        /// Services rows, by name.
        services: Vec<String>,
        /// Why, as the timeline says it ("container removed").
        reason: String,
    },
}

/// An alert that another system fired (Alertmanager), listed beside watchpost's own.
#[derive(Clone, Debug, PartialEq)]
pub struct ExternalAlert {
    /// Stable for the alert's label set (Alertmanager's fingerprint).
    pub key: String,
    /// `alertname`.
    pub name: String,
    /// Every label but `alertname`, in order.
    pub labels: Vec<(String, String)>,
    pub severity: super::figure::Severity,
    pub priority: crate::model::rule::Priority,
    pub starts_at: DateTime<Utc>,
    /// The summary or description annotation, if any.
    pub summary: String,
    /// Why it is silenced or inhibited there, if it is.
    pub silenced: Option<String>,
}
