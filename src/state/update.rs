//! What collectors send to the state owner. The one way in for new data.

use super::figure::Reading;
use chrono::{DateTime, Utc};

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
    pub used_bytes: f64,
    pub total_bytes: f64,
}

impl DiskUsage {
    pub fn used_pct(&self) -> f64 {
        if self.total_bytes <= 0.0 {
            0.0
        } else {
            100.0 * self.used_bytes / self.total_bytes
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
#[derive(Clone, Debug, PartialEq)]
pub struct LogLine {
    pub source: String,
    pub at: DateTime<Utc>,
    pub level: LogLevel,
    pub message: String,
    /// Other fields of a structured line, in their order.
    pub fields: Vec<(String, String)>,
    /// Whether the source's error pattern matched this line.
    pub is_error: bool,
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
    pub priority: crate::rules::Priority,
    pub starts_at: DateTime<Utc>,
    /// The summary or description annotation, if any.
    pub summary: String,
    /// Why it is silenced or inhibited there, if it is.
    pub silenced: Option<String>,
}
