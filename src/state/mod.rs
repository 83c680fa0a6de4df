//! What is known now, with bounded history. One owner (the app loop) applies updates;
//! panes only read it.

pub mod alerts;
pub mod figure;
pub mod logbuf;
pub mod patterns;
pub mod update;

use crate::rules::{self, Rule};
use alerts::AlertBook;
use chrono::{DateTime, Duration, Utc};
use figure::{Figure, Severity, Value};
use logbuf::LogBuffer;
use std::collections::{BTreeMap, HashMap, VecDeque};
use update::{ContainerRow, HostSnapshot, ServiceStatus, SourceHealth, Table, Update};

/// How many points of history each figure keeps for its sparkline.
pub const HISTORY_POINTS: usize = 240;

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
    pub fn default_checkpoints(length: Duration) -> Vec<Duration> {
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
    ) -> Result<Self, String> {
        let start = match deployment.start.trim() {
            "now" | "" => now,
            text => DateTime::parse_from_rfc3339(text)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    format!(
                        "deployment.start {text:?} is neither \"now\" nor an RFC 3339 time: {e}"
                    )
                })?,
        };
        let length =
            Duration::from_std(deployment.length).map_err(|e| format!("deployment.length: {e}"))?;
        let mut window = Window::new(&deployment.name, start, length);
        window.version = deployment.version.clone();
        Ok(window)
    }

    /// Time since the start of the window (never negative).
    pub fn elapsed(&self, now: DateTime<Utc>) -> Duration {
        (now - self.start).max(Duration::zero())
    }

    /// The next checkpoint after `now`, if the window has one left.
    pub fn next_checkpoint(&self, now: DateTime<Utc>) -> Option<Duration> {
        let elapsed = self.elapsed(now);
        self.checkpoints.iter().copied().find(|c| *c > elapsed)
    }
}

/// `T+hh:mm` as the runbooks write it.
pub fn format_offset(offset: Duration) -> String {
    let minutes = offset.num_minutes().max(0);
    format!("T+{:02}:{:02}", minutes / 60, minutes % 60)
}

/// A figure and its recent past.
#[derive(Clone, Debug)]
pub struct FigureState {
    pub figure: Figure,
    /// Numeric history, oldest first, bounded by HISTORY_POINTS.
    pub history: VecDeque<(DateTime<Utc>, f64)>,
    /// When the severity last changed.
    pub since: DateTime<Utc>,
}

impl FigureState {
    pub fn history_values(&self) -> Vec<f64> {
        self.history.iter().map(|(_, v)| *v).collect()
    }
}

/// A source's health with the age of its figures.
#[derive(Clone, Debug)]
pub struct SourceState {
    pub health: SourceHealth,
    pub last_ok: Option<DateTime<Utc>>,
}

impl SourceState {
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
                text
            }
        }
    }

    pub fn is_error(&self) -> bool {
        matches!(self.health, SourceHealth::Error { .. })
    }
}

/// "3s", "4m", "2h".
pub fn format_age(age: Duration) -> String {
    let secs = age.num_seconds().max(0);
    if secs < 60 {
        format!("{secs}s")
    } else if secs < 3600 {
        format!("{}m", secs / 60)
    } else {
        format!("{}h", secs / 3600)
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
    pub fn uptime_pct(&self) -> f64 {
        if self.samples_total == 0 {
            100.0
        } else {
            100.0 * self.samples_up as f64 / self.samples_total as f64
        }
    }
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
    pub logs: LogBuffer,
    pub tables: BTreeMap<String, Table>,
    pub alerts: AlertBook,
    /// Rules from the config, by figure id; they override a pack's defaults.
    pub rules: HashMap<String, Rule>,
    /// Which source feeds which pane, in config order (e.g. the RBAC pane's SQLite source).
    pub pane_sources: BTreeMap<&'static str, Vec<String>>,
}

impl AppState {
    pub fn new(window: Window) -> Self {
        AppState {
            window,
            figures: BTreeMap::new(),
            sources: BTreeMap::new(),
            services: BTreeMap::new(),
            hosts: BTreeMap::new(),
            containers: BTreeMap::new(),
            logs: LogBuffer::new(logbuf::DEFAULT_CAPACITY),
            tables: BTreeMap::new(),
            alerts: AlertBook::default(),
            rules: HashMap::new(),
            pane_sources: BTreeMap::new(),
        }
    }

    /// Registers a source before it reports, so panes can say "connecting…".
    pub fn register_source(&mut self, pane: &'static str, source: &str) {
        self.sources
            .entry(source.to_string())
            .or_insert(SourceState {
                health: SourceHealth::Connecting,
                last_ok: None,
            });
        let list = self.pane_sources.entry(pane).or_default();
        if !list.iter().any(|s| s == source) {
            list.push(source.to_string());
        }
    }

    /// The sources a pane reads, in config order.
    pub fn sources_of(&self, pane: &str) -> &[String] {
        self.pane_sources
            .get(pane)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    pub fn figure(&self, id: &str) -> Option<&FigureState> {
        self.figures.get(id)
    }

    pub fn value(&self, id: &str) -> Option<f64> {
        self.figures.get(id).and_then(|f| f.figure.value.as_f64())
    }

    /// The worst severity of every figure on screen.
    pub fn worst(&self) -> Severity {
        self.figures
            .values()
            .map(|f| f.figure.severity)
            .fold(Severity::Ok, Severity::worst)
    }

    /// Applies one update at time `now`.
    pub fn apply(&mut self, update: Update, now: DateTime<Utc>) {
        match update {
            Update::Readings { source, readings } => {
                for reading in readings {
                    self.apply_reading(reading, now);
                }
                self.mark_ok(&source, now);
            }
            Update::Health { source, health } => {
                let entry = self.sources.entry(source).or_insert(SourceState {
                    health: SourceHealth::Connecting,
                    last_ok: None,
                });
                if health == SourceHealth::Ok {
                    entry.last_ok = Some(now);
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
                self.hosts.insert(source.clone(), snapshot);
                self.mark_ok(&source, now);
            }
            Update::Containers { source, rows } => {
                self.containers.insert(source.clone(), rows);
                self.mark_ok(&source, now);
            }
            Update::Logs(lines) => {
                for line in lines {
                    self.logs.push(line);
                }
            }
            Update::Table { id, table } => {
                self.tables.insert(id, table);
            }
        }
    }

    fn mark_ok(&mut self, source: &str, now: DateTime<Utc>) {
        let entry = self
            .sources
            .entry(source.to_string())
            .or_insert(SourceState {
                health: SourceHealth::Connecting,
                last_ok: None,
            });
        entry.health = SourceHealth::Ok;
        entry.last_ok = Some(now);
    }

    fn apply_reading(&mut self, reading: figure::Reading, now: DateTime<Utc>) {
        let configured = self.rules.get(&reading.id);
        let severity = rules::judge(&reading, configured);
        let rule = configured
            .or(reading.default_rule.as_ref())
            .cloned()
            .unwrap_or_default();
        let figure = Figure {
            id: reading.id.clone(),
            name: reading.name,
            value: reading.value,
            unit: reading.unit,
            severity,
            detail: reading.detail,
            error: reading.error,
            at: now,
        };
        self.alerts.observe(&figure, &rule, now);
        let entry = self
            .figures
            .entry(reading.id)
            .or_insert_with(|| FigureState {
                figure: figure.clone(),
                history: VecDeque::with_capacity(HISTORY_POINTS),
                since: now,
            });
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
    use crate::rules::Threshold;
    use figure::Reading;

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
