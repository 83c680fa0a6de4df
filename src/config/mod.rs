//! The config file: a TOML description of one deployment and the sources that watch it.
//!
//! String values expand `${VAR}`, `${VAR:-default}` and a leading `~` while they are read,
//! so an unset variable is reported with the line it is on. [`validate`] checks the whole text
//! first and reports every problem with its line and column.

pub mod criteria;
pub mod expand;
pub mod log_metric;
pub mod validate;

use crate::model::rule::{Priority, Rule, Threshold};
use expand::{expanded, expanded_opt, expanded_vec};
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Clone, Debug, Deserialize, Default)]
#[serde(from = "RawConfig")]
pub struct Config {
    #[serde(default)]
    pub deployment: Deployment,
    /// Remote hosts, reached over SSH.
    #[serde(default)]
    pub hosts: BTreeMap<String, HostConfig>,
    /// SQLite databases, optionally with the TMWS pack.
    #[serde(default)]
    pub sqlite: BTreeMap<String, SqliteSource>,
    /// Services: a systemd unit and/or an HTTP health endpoint.
    #[serde(default)]
    pub service: BTreeMap<String, ServiceSource>,
    /// Log sources for the Errors pane.
    #[serde(default)]
    pub logs: BTreeMap<String, LogSource>,
    /// Docker engines for the Containers pane.
    #[serde(default)]
    pub docker: BTreeMap<String, DockerSource>,
    /// Host metrics (CPU, memory, disk, load) for the Host pane.
    #[serde(default)]
    pub system: BTreeMap<String, SystemSource>,
    /// Prometheus servers: PromQL figures, and targets for the Services and Host panes.
    #[serde(default)]
    pub prometheus: BTreeMap<String, PrometheusSource>,
    /// Alertmanagers whose active alerts join the Alerts pane.
    #[serde(default)]
    pub alertmanager: BTreeMap<String, AlertmanagerSource>,
    /// Redis servers: `PING` and `INFO` figures.
    #[serde(default)]
    pub redis: BTreeMap<String, RedisSource>,
    /// PostgreSQL servers, read-only: activity, sizes, counters and SQL metrics.
    #[serde(default)]
    pub postgres: BTreeMap<String, PostgresSource>,
    /// Figures from commands run on a host, for what has no native source.
    #[serde(default)]
    pub command: BTreeMap<String, CommandSource>,
    /// Thresholds by figure id, overriding a pack's defaults.
    #[serde(default)]
    pub rules: BTreeMap<String, Rule>,
    /// Custom SQL metrics by SQLite source name (`[[sqlite.NAME.metric]]`). Kept beside the
    /// sources rather than in [`SqliteSource`] so code that builds a source by hand stays as
    /// it is.
    pub metrics: BTreeMap<String, Vec<SqlMetric>>,
}

/// The file as serde reads it; [`Config`] moves the metrics out of the SQLite sources.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    deployment: Deployment,
    #[serde(default)]
    hosts: BTreeMap<String, HostConfig>,
    #[serde(default)]
    sqlite: BTreeMap<String, RawSqliteSource>,
    #[serde(default)]
    service: BTreeMap<String, ServiceSource>,
    #[serde(default)]
    logs: BTreeMap<String, LogSource>,
    #[serde(default)]
    docker: BTreeMap<String, DockerSource>,
    #[serde(default)]
    system: BTreeMap<String, SystemSource>,
    #[serde(default)]
    prometheus: BTreeMap<String, PrometheusSource>,
    #[serde(default)]
    alertmanager: BTreeMap<String, AlertmanagerSource>,
    #[serde(default)]
    redis: BTreeMap<String, RedisSource>,
    #[serde(default)]
    postgres: BTreeMap<String, PostgresSource>,
    #[serde(default)]
    command: BTreeMap<String, CommandSource>,
    #[serde(default)]
    rules: BTreeMap<String, Rule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSqliteSource {
    #[serde(deserialize_with = "expanded")]
    path: String,
    #[serde(default, deserialize_with = "expanded_opt")]
    pack: Option<String>,
    #[serde(default = "default_host", deserialize_with = "expanded")]
    host: String,
    #[serde(default = "default_sqlite_interval", with = "humantime_serde_compat")]
    interval: Duration,
    #[serde(default, deserialize_with = "expanded_opt")]
    expected_migration: Option<String>,
    #[serde(default)]
    metric: Vec<SqlMetric>,
}

impl From<RawConfig> for Config {
    fn from(raw: RawConfig) -> Self {
        let mut sqlite = BTreeMap::new();
        let mut metrics = BTreeMap::new();
        for (name, s) in raw.sqlite {
            if !s.metric.is_empty() {
                metrics.insert(name.clone(), s.metric);
            }
            sqlite.insert(
                name,
                SqliteSource {
                    path: s.path,
                    pack: s.pack,
                    host: s.host,
                    interval: s.interval,
                    expected_migration: s.expected_migration,
                },
            );
        }
        Config {
            deployment: raw.deployment,
            hosts: raw.hosts,
            sqlite,
            service: raw.service,
            logs: raw.logs,
            docker: raw.docker,
            system: raw.system,
            prometheus: raw.prometheus,
            alertmanager: raw.alertmanager,
            redis: raw.redis,
            postgres: raw.postgres,
            command: raw.command,
            rules: raw.rules,
            metrics,
        }
    }
}

/// A custom SQL metric on a SQLite source: one number (the first column of the first row),
/// or, with `kind = "table"`, rows shown as a drill-down table (its figure is the row count).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SqlMetric {
    /// The figure id after `<source>.`.
    pub id: String,
    #[serde(default, deserialize_with = "expanded_opt")]
    pub name: Option<String>,
    /// Taken as written (no `${…}` expansion: `$` is common in SQL, as in `'$.result'`).
    pub query: String,
    #[serde(default, deserialize_with = "expanded")]
    pub unit: String,
    #[serde(default)]
    pub warn: Option<Threshold>,
    #[serde(default)]
    pub crit: Option<Threshold>,
    #[serde(default)]
    pub priority: Option<Priority>,
    #[serde(default)]
    pub kind: MetricKind,
    /// Samples the value needs before it is judged, given by the query in a column named
    /// `samples` (see [`SqlMetric::SAMPLES_COLUMN`]); with that column and no setting,
    /// [`SqlMetric::DEFAULT_MIN_SAMPLES`].
    #[serde(default)]
    pub min_samples: Option<u32>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MetricKind {
    #[default]
    Number,
    Table,
}

/// A metric's own thresholds as a rule: none when neither warn nor crit is given.
fn threshold_rule(
    warn: Option<Threshold>,
    crit: Option<Threshold>,
    priority: Option<Priority>,
) -> Option<Rule> {
    (warn.is_some() || crit.is_some()).then_some(Rule {
        warn,
        crit,
        priority,
        ..Rule::default()
    })
}

impl SqlMetric {
    /// The column a number metric's query names `samples` holds how many samples its
    /// value was computed from (`SELECT 100.0 * SUM(denied) / COUNT(*), COUNT(*) AS samples`).
    pub(crate) const SAMPLES_COLUMN: &str = "samples";
    /// Samples a metric with a `samples` column needs before it is judged, unless it sets
    /// `min_samples`.
    pub(crate) const DEFAULT_MIN_SAMPLES: u32 = 20;

    /// The thresholds as a rule (none when neither warn nor crit is given).
    pub fn rule(&self) -> Option<Rule> {
        threshold_rule(self.warn, self.crit, self.priority).map(|rule| Rule {
            min_samples: self.min_samples,
            ..rule
        })
    }
}

/// The checkpoint schedule as the config writes it: one interval (`"30m"`: every 30
/// minutes) or a list of offsets (`["1h", "2h", "4h"]`). The start and the end of the window
/// are always checkpoints.
#[derive(Clone, Debug, PartialEq)]
pub enum Checkpoints {
    Every(Duration),
    At(Vec<Duration>),
}

impl<'de> Deserialize<'de> for Checkpoints {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        let parse = |text: &str| {
            humantime::parse_duration(text.trim()).map_err(|e| {
                serde::de::Error::custom(format!(
                    "checkpoint {text:?} is not a duration like \"1h\" or \"30m\": {e}"
                ))
            })
        };
        match Raw::deserialize(deserializer)? {
            Raw::One(text) => Ok(Checkpoints::Every(parse(&text)?)),
            Raw::Many(list) => Ok(Checkpoints::At(
                list.iter().map(|t| parse(t)).collect::<Result<_, _>>()?,
            )),
        }
    }
}

/// What to do with a host key that is not in known_hosts. A changed key is always refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HostKeyPolicy {
    /// Refuse it, with a message that says how to add it.
    #[default]
    Strict,
    /// Add it to known_hosts and connect (OpenSSH's `StrictHostKeyChecking accept-new`).
    AcceptNew,
}

impl HostKeyPolicy {
    /// `host_key` in `[hosts.NAME]`: absent, "strict" or "yes" → Strict; "accept-new".
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value.map(str::trim) {
            None | Some("") | Some("strict") | Some("yes") => Ok(HostKeyPolicy::Strict),
            Some("accept-new") => Ok(HostKeyPolicy::AcceptNew),
            Some(other) => Err(format!(
                "host_key = {other:?} is not \"strict\" or \"accept-new\""
            )),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deployment {
    #[serde(default = "default_name", deserialize_with = "expanded")]
    pub name: String,
    #[serde(default, deserialize_with = "expanded")]
    pub version: String,
    /// RFC 3339 time, or "now" (the first launch).
    #[serde(default = "default_start", deserialize_with = "expanded")]
    pub start: String,
    #[serde(default = "default_window", with = "humantime_serde_compat")]
    pub length: Duration,
    /// Checkpoint offsets (`["1h", "2h", "4h"]`) or one interval (`"30m"`); default seed
    /// 003's rhythm (hourly to 4h, every 2h to 12h, every 4h to 24h).
    #[serde(default)]
    pub checkpoints: Option<Checkpoints>,
    /// What the window is judged by in `watchpost report`; default seed 003's list.
    #[serde(default)]
    pub success_criteria: Option<Vec<criteria::Criterion>>,
    /// Size limit of the record in MB (default 50).
    #[serde(default)]
    pub record_max_mb: Option<u64>,
    /// A command run (without a shell) when an alert fires, with the alert in
    /// WATCHPOST_ALERT_* environment variables: `["notify-send", "watchpost"]`. Taken as
    /// written (no `${…}` expansion), so a script given here can use `$WATCHPOST_ALERT_ID`.
    #[serde(default)]
    pub on_alert: Vec<String>,
    /// Maintenance windows: `[{ from = "T+2h", until = "T+2h30m", figures = ["api.*"] }]`.
    #[serde(default)]
    pub silences: Vec<crate::rules::notify::SilenceSpec>,
}

impl Default for Deployment {
    fn default() -> Self {
        Deployment {
            name: default_name(),
            version: String::new(),
            start: default_start(),
            length: default_window(),
            checkpoints: None,
            success_criteria: None,
            record_max_mb: None,
            on_alert: Vec::new(),
            silences: Vec::new(),
        }
    }
}

fn default_name() -> String {
    "deployment".into()
}
fn default_start() -> String {
    "now".into()
}
fn default_window() -> Duration {
    Duration::from_secs(24 * 3600)
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// `user@host:port`, or an alias from ~/.ssh/config.
    #[serde(deserialize_with = "expanded")]
    pub ssh: String,
    #[serde(default, deserialize_with = "expanded_opt")]
    pub host_key: Option<String>,
    /// The environment variable that holds the passphrase of an encrypted key (passwords
    /// and passphrases never live in the config itself).
    #[serde(default, deserialize_with = "expanded_opt")]
    pub passphrase_env: Option<String>,
    /// A key file tried before ssh_config's IdentityFile and the `~/.ssh/id_*` defaults.
    #[serde(default, deserialize_with = "expanded_opt")]
    pub identity_file: Option<String>,
    /// A known_hosts file for this host instead of `~/.ssh/known_hosts` (also where
    /// `host_key = "accept-new"` records the key).
    #[serde(default, deserialize_with = "expanded_opt")]
    pub known_hosts: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqliteSource {
    #[serde(deserialize_with = "expanded")]
    pub path: String,
    #[serde(default, deserialize_with = "expanded_opt")]
    pub pack: Option<String>,
    #[serde(default = "default_host", deserialize_with = "expanded")]
    pub host: String,
    #[serde(default = "default_sqlite_interval", with = "humantime_serde_compat")]
    pub interval: Duration,
    /// The migration head the TMWS pack expects in `alembic_version`.
    #[serde(default, deserialize_with = "expanded_opt")]
    pub expected_migration: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSource {
    #[serde(default, deserialize_with = "expanded_opt")]
    pub health_url: Option<String>,
    #[serde(default, deserialize_with = "expanded_opt")]
    pub systemd: Option<String>,
    #[serde(default = "default_host", deserialize_with = "expanded")]
    pub host: String,
    #[serde(default = "default_service_interval", with = "humantime_serde_compat")]
    pub interval: Duration,
    #[serde(default = "default_timeout", with = "humantime_serde_compat")]
    pub timeout: Duration,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSource {
    /// Files or globs followed like `tail -F`.
    #[serde(default, deserialize_with = "expanded_vec")]
    pub files: Vec<String>,
    /// Or: a systemd unit, followed with `journalctl --follow --output=json --unit=…`.
    #[serde(default, deserialize_with = "expanded_opt")]
    pub journald: Option<String>,
    /// Or: a command (argv, no shell) whose standard output lines are the log.
    #[serde(default, deserialize_with = "expanded_vec")]
    pub command: Vec<String>,
    /// Or: compose services or container names whose logs are followed through the
    /// host's Docker engine (`docker compose logs --follow --tail N`).
    #[serde(default, deserialize_with = "expanded_vec")]
    pub docker: Vec<String>,
    /// With `docker`: only containers of this compose project.
    #[serde(default, deserialize_with = "expanded_opt")]
    pub project: Option<String>,
    /// At most this much of a source's files (or of journalctl's output, for `journald`)
    /// is read back at start to count the window ("512MiB", "64 MB"; "0": none, the
    /// figures start at the tail and say so).
    #[serde(default = "default_read_back", deserialize_with = "byte_size")]
    pub read_back: u64,
    /// With `docker`: at most this many of a container's last lines are read back at
    /// start (those of the window).
    #[serde(default = "default_docker_tail")]
    pub tail: usize,
    #[serde(default = "default_host", deserialize_with = "expanded")]
    pub host: String,
    /// Regex (case-insensitive) that makes a line an error.
    #[serde(default = "default_error_pattern", deserialize_with = "expanded")]
    pub error_pattern: String,
    /// The error pattern also makes a line whose own level is below ERROR an error
    /// (`WARNING Login failed`). By default a line's level decides where it names one,
    /// and the pattern classifies only the lines that name none.
    #[serde(default)]
    pub error_pattern_all_levels: bool,
    /// Figures derived from the lines: `[[logs.NAME.metric]]`.
    #[serde(default, rename = "metric")]
    pub metrics: Vec<log_metric::LogMetric>,
}

/// A log source with every key at its default and no input: set one of `files`,
/// `journald`, `command` or `docker`.
impl Default for LogSource {
    fn default() -> Self {
        LogSource {
            files: Vec::new(),
            journald: None,
            command: Vec::new(),
            docker: Vec::new(),
            project: None,
            read_back: DEFAULT_READ_BACK,
            tail: default_docker_tail(),
            host: default_host(),
            error_pattern: default_error_pattern(),
            error_pattern_all_levels: false,
            metrics: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerSource {
    #[serde(default = "default_host", deserialize_with = "expanded")]
    pub host: String,
    /// Only containers of this compose project.
    #[serde(default, deserialize_with = "expanded_opt")]
    pub project: Option<String>,
    /// Only these compose services (empty: every one).
    #[serde(default, deserialize_with = "expanded_vec")]
    pub services: Vec<String>,
    #[serde(default = "default_service_interval", with = "humantime_serde_compat")]
    pub interval: Duration,
    /// `[[docker.NAME.exec]]`: figures from commands run inside a service's container.
    #[serde(default)]
    pub exec: Vec<DockerExec>,
}

/// A command run inside a compose service's container through the engine's exec API (no
/// shell of ours), and the figure taken from what it prints: a `regex` capture, a `field`
/// of `key: value` / `key=value` lines or of JSON, or, with neither, its exit code.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DockerExec {
    /// The figure id after `<source>.`.
    pub id: String,
    #[serde(default, deserialize_with = "expanded_opt")]
    pub name: Option<String>,
    /// A compose service (of the source's project, if it has one) or a container name.
    #[serde(deserialize_with = "expanded")]
    pub service: String,
    /// The program and its arguments, as the container's exec runs them.
    #[serde(deserialize_with = "expanded_vec")]
    pub command: Vec<String>,
    /// The first match's first group (or the whole match) is the value.
    #[serde(default)]
    pub regex: Option<String>,
    /// A key of `key: value` / `key=value` lines, or a dotted path into JSON.
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default, deserialize_with = "expanded")]
    pub unit: String,
    #[serde(default)]
    pub warn: Option<Threshold>,
    #[serde(default)]
    pub crit: Option<Threshold>,
    #[serde(default)]
    pub priority: Option<Priority>,
    #[serde(default, rename = "for", with = "crate::model::rule::opt_duration")]
    pub for_duration: Option<Duration>,
    #[serde(default = "default_exec_interval", with = "humantime_serde_compat")]
    pub interval: Duration,
    /// A command still running then is stopped and reported.
    #[serde(default = "default_exec_timeout", with = "humantime_serde_compat")]
    pub timeout: Duration,
}

impl DockerExec {
    /// The thresholds and `for` as a rule; with no threshold and nothing extracted, the
    /// exit code: anything but 0 is critical.
    pub fn rule(&self) -> Option<Rule> {
        output_rule(
            self.warn,
            self.crit,
            self.priority,
            self.for_duration,
            self.regex.is_some() || self.field.is_some(),
        )
    }
}

/// The rule of a figure read from a command's output: its thresholds and `for`; with no
/// threshold and nothing extracted, the exit code: anything but 0 is critical.
fn output_rule(
    warn: Option<Threshold>,
    crit: Option<Threshold>,
    priority: Option<Priority>,
    for_duration: Option<Duration>,
    extracting: bool,
) -> Option<Rule> {
    if warn.is_some() || crit.is_some() {
        return Some(Rule {
            warn,
            crit,
            priority,
            for_duration,
            ..Rule::default()
        });
    }
    (!extracting).then(|| Rule {
        crit: Some(Threshold::new(
            crate::model::rule::Comparison::NotEqual,
            0.0,
        )),
        priority,
        for_duration,
        ..Rule::default()
    })
}

/// `[command.NAME]`: a command run on a host (this machine or a `[hosts]` host, over its
/// one SSH connection), its arguments passed as they are (through no shell of ours), on an
/// interval with a timeout; the figure `NAME.<id>` is read from what it prints as a
/// `[[docker.S.exec]]` figure is.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CommandSource {
    /// The figure id after `NAME.`.
    #[serde(default = "default_command_id")]
    pub id: String,
    #[serde(default, deserialize_with = "expanded_opt")]
    pub name: Option<String>,
    /// The program and its arguments.
    #[serde(deserialize_with = "expanded_vec")]
    pub argv: Vec<String>,
    #[serde(default = "default_host", deserialize_with = "expanded")]
    pub host: String,
    /// The first match's first group (or the whole match) is the value.
    #[serde(default)]
    pub regex: Option<String>,
    /// A key of `key: value` / `key=value` lines, or a dotted path into JSON.
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default, deserialize_with = "expanded")]
    pub unit: String,
    #[serde(default)]
    pub warn: Option<Threshold>,
    #[serde(default)]
    pub crit: Option<Threshold>,
    #[serde(default)]
    pub priority: Option<Priority>,
    #[serde(default, rename = "for", with = "crate::model::rule::opt_duration")]
    pub for_duration: Option<Duration>,
    #[serde(default = "default_exec_interval", with = "humantime_serde_compat")]
    pub interval: Duration,
    /// A command still running then is stopped and reported.
    #[serde(default = "default_exec_timeout", with = "humantime_serde_compat")]
    pub timeout: Duration,
}

impl CommandSource {
    /// As [`DockerExec::rule`].
    pub fn rule(&self) -> Option<Rule> {
        output_rule(
            self.warn,
            self.crit,
            self.priority,
            self.for_duration,
            self.regex.is_some() || self.field.is_some(),
        )
    }
}

pub(super) fn default_command_id() -> String {
    "value".into()
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemSource {
    #[serde(default = "default_host", deserialize_with = "expanded")]
    pub host: String,
    #[serde(default = "default_service_interval", with = "humantime_serde_compat")]
    pub interval: Duration,
}

/// How a Prometheus or Alertmanager API is reached: the base URL, a bearer token (from
/// the environment: `token = "${PROM_TOKEN}"`), a CA file for a private TLS certificate,
/// and how long one request may take.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiEndpoint {
    pub url: String,
    pub token: Option<String>,
    pub ca_file: Option<String>,
    pub timeout: Duration,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSource {
    #[serde(deserialize_with = "expanded")]
    pub url: String,
    #[serde(default, deserialize_with = "expanded_opt")]
    pub token: Option<String>,
    #[serde(default, deserialize_with = "expanded_opt")]
    pub ca_file: Option<String>,
    #[serde(default = "default_timeout", with = "humantime_serde_compat")]
    pub timeout: Duration,
    #[serde(default = "default_api_interval", with = "humantime_serde_compat")]
    pub interval: Duration,
    /// How far back the range queries at start-up fill each figure's sparkline ("0s": none).
    #[serde(default = "default_history", with = "humantime_serde_compat")]
    pub history: Duration,
    /// Fill the Services pane from `up`: one row per scrape target.
    #[serde(default)]
    pub services: bool,
    /// Fill the Host pane from node-exporter figures: one host per instance.
    #[serde(default)]
    pub hosts: bool,
    /// PromQL figures: `[[prometheus.NAME.figure]]`.
    #[serde(default, rename = "figure")]
    pub figures: Vec<PromFigure>,
}

/// One PromQL instant query shown as a figure: one value, or one figure per series.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PromFigure {
    /// The figure id after `<source>.`; a vector's series get `<source>.<id>.<labels>`.
    pub id: String,
    #[serde(default, deserialize_with = "expanded_opt")]
    pub name: Option<String>,
    /// PromQL, taken as written.
    pub query: String,
    #[serde(default, deserialize_with = "expanded")]
    pub unit: String,
    #[serde(default)]
    pub warn: Option<Threshold>,
    #[serde(default)]
    pub crit: Option<Threshold>,
    #[serde(default)]
    pub priority: Option<Priority>,
    #[serde(default, rename = "for", with = "crate::model::rule::opt_duration")]
    pub for_duration: Option<Duration>,
    /// The labels that name each series of a vector (default: all but `__name__`).
    #[serde(default)]
    pub by: Vec<String>,
}

impl PromFigure {
    /// The thresholds and `for` as a rule (none when no threshold is given).
    pub fn rule(&self) -> Option<Rule> {
        threshold_rule(self.warn, self.crit, self.priority).map(|rule| Rule {
            for_duration: self.for_duration,
            ..rule
        })
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerSource {
    #[serde(deserialize_with = "expanded")]
    pub url: String,
    #[serde(default, deserialize_with = "expanded_opt")]
    pub token: Option<String>,
    #[serde(default, deserialize_with = "expanded_opt")]
    pub ca_file: Option<String>,
    #[serde(default = "default_timeout", with = "humantime_serde_compat")]
    pub timeout: Duration,
    #[serde(default = "default_api_interval", with = "humantime_serde_compat")]
    pub interval: Duration,
}

/// A Redis server (`[redis.NAME]`): reached at `url` (`redis://[user[:password]@]host:port[/db]`,
/// from the environment when it holds a password) or at `address`, from `host`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSource {
    #[serde(default, deserialize_with = "expanded_opt")]
    pub url: Option<String>,
    /// `host:port` as seen from `host`; overrides the url's host and port.
    #[serde(default, deserialize_with = "expanded_opt")]
    pub address: Option<String>,
    /// A compose service (of `project`, if given) or container name on the host's Docker
    /// engine: when the url's host is that name (or there is no url), the server is
    /// reached at that container's address on its network ([`container_in_use`]).
    #[serde(default, deserialize_with = "expanded_opt")]
    pub container: Option<String>,
    #[serde(default, deserialize_with = "expanded_opt")]
    pub project: Option<String>,
    /// Only from the environment (`"${REDIS_PASSWORD}"`); overrides the url's.
    #[serde(default, deserialize_with = "expanded_opt")]
    pub password: Option<String>,
    #[serde(default = "default_host", deserialize_with = "expanded")]
    pub host: String,
    #[serde(default = "default_db_interval", with = "humantime_serde_compat")]
    pub interval: Duration,
    #[serde(default = "default_timeout", with = "humantime_serde_compat")]
    pub timeout: Duration,
    /// `[[redis.NAME.metric]]`: any INFO field as a figure.
    #[serde(default, rename = "metric")]
    pub metrics: Vec<RedisMetric>,
}

/// One field of Redis's `INFO` as a figure (`field = "instantaneous_ops_per_sec"`, or
/// `"db0.keys"` for a part of a keyspace line).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RedisMetric {
    /// The figure id after `<source>.`.
    pub id: String,
    #[serde(default, deserialize_with = "expanded_opt")]
    pub name: Option<String>,
    pub field: String,
    #[serde(default, deserialize_with = "expanded")]
    pub unit: String,
    #[serde(default)]
    pub warn: Option<Threshold>,
    #[serde(default)]
    pub crit: Option<Threshold>,
    #[serde(default)]
    pub priority: Option<Priority>,
    #[serde(default, rename = "for", with = "crate::model::rule::opt_duration")]
    pub for_duration: Option<Duration>,
}

impl RedisMetric {
    /// The thresholds and `for` as a rule (none when no threshold is given).
    pub fn rule(&self) -> Option<Rule> {
        threshold_rule(self.warn, self.crit, self.priority).map(|rule| Rule {
            for_duration: self.for_duration,
            ..rule
        })
    }
}

/// A PostgreSQL server (`[postgres.NAME]`), read-only: `url` is a `postgres://` URL or a
/// `key=value` connection string (from the environment when it holds a password);
/// `address` puts its host and port as seen from `host`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSource {
    #[serde(deserialize_with = "expanded")]
    pub url: String,
    #[serde(default, deserialize_with = "expanded_opt")]
    pub address: Option<String>,
    /// A compose service (of `project`, if given) or container name on the host's Docker
    /// engine: when the url's host is that name, the server is reached at that
    /// container's address on its network ([`container_in_use`]).
    #[serde(default, deserialize_with = "expanded_opt")]
    pub container: Option<String>,
    #[serde(default, deserialize_with = "expanded_opt")]
    pub project: Option<String>,
    #[serde(default, deserialize_with = "expanded_opt")]
    pub password: Option<String>,
    #[serde(default = "default_host", deserialize_with = "expanded")]
    pub host: String,
    #[serde(default = "default_db_interval", with = "humantime_serde_compat")]
    pub interval: Duration,
    /// Connecting, and each statement (`statement_timeout`).
    #[serde(default = "default_timeout", with = "humantime_serde_compat")]
    pub timeout: Duration,
    /// `[[postgres.NAME.metric]]`: SQL metrics, with the keys and rules of SQLite's.
    #[serde(default, rename = "metric")]
    pub metrics: Vec<SqlMetric>,
}

/// The API settings of a source, for the HTTP client (serde cannot flatten them into a
/// table that also denies unknown keys).
macro_rules! api_endpoint {
    ($source:ty) => {
        impl $source {
            pub fn api(&self) -> ApiEndpoint {
                ApiEndpoint {
                    url: self.url.clone(),
                    token: self.token.clone(),
                    ca_file: self.ca_file.clone(),
                    timeout: self.timeout,
                }
            }
        }
    };
}
api_endpoint!(PrometheusSource);
api_endpoint!(AlertmanagerSource);

pub(super) fn default_api_interval() -> Duration {
    Duration::from_secs(15)
}
fn default_history() -> Duration {
    Duration::from_secs(3600)
}

fn default_host() -> String {
    "local".into()
}
pub(super) fn default_exec_interval() -> Duration {
    Duration::from_secs(30)
}
fn default_exec_timeout() -> Duration {
    Duration::from_secs(10)
}
pub(super) fn default_db_interval() -> Duration {
    Duration::from_secs(10)
}
fn default_sqlite_interval() -> Duration {
    Duration::from_secs(5)
}
pub(super) fn default_service_interval() -> Duration {
    Duration::from_secs(2)
}
fn default_timeout() -> Duration {
    Duration::from_secs(5)
}
/// How much of a log source's files is read back at start, by default.
pub(crate) const DEFAULT_READ_BACK: u64 = 512 * 1024 * 1024;
fn default_read_back() -> u64 {
    DEFAULT_READ_BACK
}

/// A size written like "512MiB" or "64 MB" (validate places a bad one).
fn byte_size<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_byte_size(&text).map_err(serde::de::Error::custom)
}

/// "512MiB", "64 MB", "0" as bytes.
pub(crate) fn parse_byte_size(text: &str) -> Result<u64, String> {
    text.trim()
        .parse::<bytesize::ByteSize>()
        .map(|size| size.as_u64())
        .map_err(|e| format!("{text:?} is not a size like \"512MiB\" or \"64 MB\": {e}"))
}

/// Lines a docker log source reads back from each container at start, at most: the
/// window's lines, unless a container wrote more.
pub fn default_docker_tail() -> usize {
    100_000
}
/// The runbooks' grep: error, exception, failed, critical, fatal, panic.
pub fn default_error_pattern() -> String {
    r"(?i)\b(error|exception|failed|critical|fatal|panic)\b".into()
}

/// Durations written like "5s", "2m", "24h".
mod humantime_serde_compat {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(text.trim()).map_err(|e| {
            serde::de::Error::custom(format!(
                "{text:?} is not a duration like \"5s\" or \"24h\": {e}"
            ))
        })
    }
}

/// A config error: the file and every problem in it.
#[derive(Debug)]
pub struct ConfigError {
    pub path: PathBuf,
    /// One problem per line, each "line L, column C: …" when it has a place.
    pub message: String,
    pub problems: Vec<validate::Problem>,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut lines = self.message.lines();
        write!(
            f,
            "{}: {}",
            self.path.display(),
            lines.next().unwrap_or_default()
        )?;
        for line in lines {
            write!(f, "\n{}: {line}", self.path.display())?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads and parses a config file; errors name the file, line and column.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let bytes = std::fs::read(path).map_err(|e| ConfigError {
            path: path.to_path_buf(),
            message: format!("cannot read config: {e}"),
            problems: Vec::new(),
        })?;
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                let problems = vec![not_utf8(e.as_bytes(), e.utf8_error())];
                return Err(ConfigError {
                    path: path.to_path_buf(),
                    message: render(&problems),
                    problems,
                });
            }
        };
        Config::parse_checked(&text).map_err(|problems| ConfigError {
            path: path.to_path_buf(),
            message: render(&problems),
            problems,
        })
    }

    /// Parses a config text; the error lists every problem, one per line.
    pub fn parse(text: &str) -> Result<Config, String> {
        Config::parse_checked(text).map_err(|p| render(&p))
    }

    /// Parses a config text, or returns every problem found in it.
    pub fn parse_checked(text: &str) -> Result<Config, Vec<validate::Problem>> {
        let problems = validate::problems(text);
        if !problems.is_empty() {
            return Err(problems);
        }
        // The walk found nothing; serde is the last word on the model.
        toml::from_str::<Config>(text).map_err(|e| vec![toml_problem(text, &e)])
    }
}

/// Whether a Redis or PostgreSQL source with `container = "NAME"` is reached at that
/// container's address, found through the Docker engine: when the host it is given (its
/// url's, or `address`'s; see [`given_host`]) is that same name, as the app's own compose
/// config writes it (`redis://redis:6379`), or when it is given none. Any other host (an
/// IP, a DNS name) is reached as written and `container` is not used, so one environment
/// variable can point the source at a server anywhere. The name in use, if it is.
pub fn container_in_use<'a>(container: Option<&'a str>, host: &str) -> Option<&'a str> {
    let container = container.map(str::trim).filter(|c| !c.is_empty())?;
    let host = host.trim().trim_start_matches('[').trim_end_matches(']');
    (host.is_empty() || host.eq_ignore_ascii_case(container)).then_some(container)
}

/// The host a Redis or PostgreSQL source is given: `address`'s when there is one, else the
/// one its url names as its client reads it; "" when neither names one (or the url does
/// not parse: validation says why).
pub fn given_host(url: Option<&str>, address: Option<&str>, postgres: bool) -> String {
    if let Some(address) = address.map(str::trim).filter(|a| !a.is_empty()) {
        let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
        return host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
    }
    let url = url.map(str::trim).unwrap_or_default();
    if url.is_empty() {
        return String::new();
    }
    if postgres {
        use tokio_postgres::config::Host;
        let parsed = url.parse::<tokio_postgres::Config>().ok();
        match parsed.as_ref().and_then(|c| c.get_hosts().first()) {
            Some(Host::Tcp(host)) => host.clone(),
            Some(Host::Unix(dir)) => dir.display().to_string(),
            None => String::new(),
        }
    } else {
        match redis::IntoConnectionInfo::into_connection_info(url) {
            Ok(info) => match info.addr() {
                redis::ConnectionAddr::Tcp(host, _)
                | redis::ConnectionAddr::TcpTls { host, .. } => host.clone(),
                redis::ConnectionAddr::Unix(path) => path.display().to_string(),
                _ => String::new(),
            },
            Err(_) => String::new(),
        }
    }
}

/// The host and port a connection URL names, without its user or password
/// (`redis://:secret@cache:6379/0` → `cache:6379`; `host=db port=5433` → `db:5433`).
fn server_of(url: &str) -> String {
    if let Some((_, rest)) = url.split_once("://") {
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        return authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host)
            .to_string();
    }
    let value = |key: &str| {
        url.split_whitespace()
            .find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or("")
    };
    match (value("host"), value("port")) {
        (host, "") => host.to_string(),
        (host, port) => format!("{host}:{port}"),
    }
}

/// Where the first byte that is not UTF-8 stands, as line and column of the text before it.
fn not_utf8(bytes: &[u8], error: std::str::Utf8Error) -> validate::Problem {
    let valid = &bytes[..error.valid_up_to()];
    // The prefix is valid UTF-8 by definition of valid_up_to.
    let before = std::str::from_utf8(valid).unwrap_or_default();
    let (line, column) = validate::Locator::new(before).at(before.len());
    validate::Problem {
        line,
        column,
        message: format!(
            "byte 0x{:02x} is not UTF-8: a config file is UTF-8 text (was it saved in another encoding?)",
            bytes[error.valid_up_to()]
        ),
    }
}

fn render(problems: &[validate::Problem]) -> String {
    problems
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn toml_problem(text: &str, error: &toml::de::Error) -> validate::Problem {
    let (line, column) = error
        .span()
        .map_or((1, 1), |span| validate::Locator::new(text).at(span.start));
    validate::Problem {
        line,
        column,
        message: error.message().trim().to_string(),
    }
}

/// A plain-text explanation of a config, for `watchpost validate`.
pub fn explain(config: &Config) -> String {
    let given = |secret: &Option<String>| secret.as_deref().is_some_and(|t| !t.trim().is_empty());
    let mut out = String::new();
    let d = &config.deployment;
    out.push_str(&format!(
        "deployment {:?} {} — window starts {}, lasts {}\n",
        d.name,
        d.version,
        d.start,
        humantime::format_duration(d.length)
    ));
    for (name, host) in &config.hosts {
        let mut extra = String::new();
        if let Some(policy) = &host.host_key {
            extra.push_str(&format!(", host key {policy}"));
        }
        if let Some(key) = &host.identity_file {
            extra.push_str(&format!(", key {key}"));
        }
        if let Some(var) = &host.passphrase_env {
            extra.push_str(&format!(", passphrase from ${var}"));
        }
        if let Some(file) = &host.known_hosts {
            extra.push_str(&format!(", known_hosts {file}"));
        }
        out.push_str(&format!(
            "host {name}: ssh {}{extra} (one connection for all its sources)\n",
            host.ssh
        ));
    }
    for (name, s) in &config.sqlite {
        let pack = s
            .pack
            .as_deref()
            .map(|p| format!(", pack {p}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "sqlite {name}: {} on {}{pack}, every {}\n",
            s.path,
            s.host,
            humantime::format_duration(s.interval)
        ));
        if let Some(pack) = s
            .pack
            .as_deref()
            .and_then(crate::model::catalog::sqlite::pack)
        {
            let ids: Vec<String> = pack.figs.iter().map(|f| f.id(name)).collect();
            out.push_str(&format!("  figures {}\n", ids.join(", ")));
        }
        for m in config.metrics.get(name).into_iter().flatten() {
            let what = match m.kind {
                MetricKind::Number => "number",
                MetricKind::Table => "table (figure: row count)",
            };
            let rule = m
                .rule()
                .map(|r| format!(", {}", r.describe()))
                .unwrap_or_default();
            let samples = match m.min_samples {
                Some(_) => format!(
                    " (sample count from its `{}` column)",
                    SqlMetric::SAMPLES_COLUMN
                ),
                None if m.kind == MetricKind::Number && m.rule().is_some() => format!(
                    ", judged from {} samples if the query returns a `{}` column",
                    SqlMetric::DEFAULT_MIN_SAMPLES,
                    SqlMetric::SAMPLES_COLUMN
                ),
                None => String::new(),
            };
            out.push_str(&format!(
                "  metric {name}.{}: {what}{rule}{samples}\n",
                m.id
            ));
        }
    }
    for (name, s) in &config.service {
        let mut what = Vec::new();
        if let Some(url) = &s.health_url {
            what.push(format!("GET {url}"));
        }
        if let Some(unit) = &s.systemd {
            what.push(format!("systemd unit {unit}"));
        }
        out.push_str(&format!(
            "service {name}: {} on {}, figures {name}.up (P0 when 0){}\n",
            what.join(" + "),
            s.host,
            if s.health_url.is_some() {
                format!(
                    ", {name}.health_ms (warn > 1000, crit > 2000), {name}.health_code; these two fold into {name}.up while it is 0"
                )
            } else {
                String::new()
            }
        ));
    }
    for (name, s) in &config.logs {
        let what = match (&s.journald, s.command.is_empty()) {
            (Some(unit), _) => format!("journald unit {unit}"),
            (None, false) => format!("output of {}", s.command.join(" ")),
            (None, true) if !s.docker.is_empty() => format!(
                "docker logs of {}{} (the window's lines at start, its last {} at most, then followed)",
                s.docker.join(", "),
                s.project
                    .as_deref()
                    .map(|p| format!(" in compose project {p}"))
                    .unwrap_or_default(),
                s.tail
            ),
            (None, true) => s.files.join(", "),
        };
        let metrics: String = s
            .metrics
            .iter()
            .map(|m| format!(", {name}.{}", m.id))
            .collect();
        let applies = if s.error_pattern_all_levels {
            "on every line"
        } else {
            "on lines without a level; a level decides where there is one"
        };
        out.push_str(&format!("logs {name}: {what} on {}, errors match {} ({applies}), figures {name}.errors_1h, {name}.errors_per_min{metrics}\n", s.host, s.error_pattern));
        for m in &s.metrics {
            let default = match m.kind.default_min_samples() {
                Some(n) if m.rule.min_samples == Some(n) => " (the default for its kind)",
                _ => "",
            };
            let rule = m.rule.describe();
            let rule = if rule.is_empty() {
                "no thresholds".to_string()
            } else {
                rule
            };
            out.push_str(&format!("  metric {name}.{}: {rule}{default}\n", m.id));
        }
    }
    for (name, s) in &config.docker {
        let project = s
            .project
            .as_deref()
            .map(|p| format!(", compose project {p}"))
            .unwrap_or_default();
        let services = if s.services.is_empty() {
            String::new()
        } else {
            format!(", services {}", s.services.join(" "))
        };
        let absent = if s.services.is_empty() {
            String::new()
        } else {
            " (one of them with no container at all is CRIT \"absent\")".to_string()
        };
        out.push_str(&format!(
            "docker {name}: engine on {}{project}{services}{absent}; a container `created` or `restarting` counts as starting for {}, a health check `starting` is not down; a removed or replaced container leaves the panes with one \"removed\" line on the timeline\n",
            s.host,
            humantime::format_duration(crate::model::update::CONTAINER_START_GRACE)
        ));
        for e in &s.exec {
            let reads = match (&e.regex, &e.field) {
                (Some(re), _) => format!("the first match of /{re}/"),
                (None, Some(field)) => format!("field {field}"),
                (None, None) => "its exit code".to_string(),
            };
            let rule = e
                .rule()
                .map(|r| format!(", {}", r.describe()))
                .unwrap_or_default();
            out.push_str(&format!(
                "  exec {name}.{}: {} in a container of {}, every {}, stopped after {}, figure from {reads}{rule}\n",
                e.id,
                e.command.join(" "),
                e.service,
                humantime::format_duration(e.interval),
                humantime::format_duration(e.timeout),
            ));
        }
    }
    for (name, c) in &config.command {
        let reads = match (&c.regex, &c.field) {
            (Some(re), _) => format!("the first match of /{re}/"),
            (None, Some(field)) => format!("field {field}"),
            (None, None) => "its exit code".to_string(),
        };
        let rule = c
            .rule()
            .map(|r| format!(", {}", r.describe()))
            .unwrap_or_default();
        out.push_str(&format!(
            "command {name}.{}: {} on {}, every {}, stopped after {}, figure from {reads}{rule}\n",
            c.id,
            c.argv.join(" "),
            c.host,
            humantime::format_duration(c.interval),
            humantime::format_duration(c.timeout),
        ));
    }
    for (name, s) in &config.system {
        out.push_str(&format!("system {name}: CPU, memory, disk, load of {}, figures {name}.cpu_pct, .mem_pct, .disk_pct, .load1\n", s.host));
    }
    for (name, s) in &config.prometheus {
        let mut extra = String::new();
        if s.services {
            extra.push_str(&format!(
                ", services from `up` ({name}.<job>.<instance>.up)"
            ));
        }
        if s.hosts {
            extra.push_str(&format!(
                ", hosts from node-exporter ({name}.<instance>.cpu_pct, .mem_pct, .disk_pct, .load1)"
            ));
        }
        out.push_str(&format!(
            "prometheus {name}: {}{}{}, every {}, history {}{extra}\n",
            s.url,
            if given(&s.token) {
                ", bearer token"
            } else {
                ""
            },
            s.ca_file
                .as_deref()
                .map(|f| format!(", CA {f}"))
                .unwrap_or_default(),
            humantime::format_duration(s.interval),
            humantime::format_duration(s.history),
        ));
        for f in &s.figures {
            let rule = f
                .rule()
                .map(|r| format!(", {}", r.describe()))
                .unwrap_or_default();
            out.push_str(&format!("  figure {name}.{}: {}{rule}\n", f.id, f.query));
        }
        if !s.figures.is_empty() {
            out.push_str(&format!(
                "  (a query that answers a vector gives one figure per series: {name}.<figure>.<label values>)\n"
            ));
        }
    }
    for (name, s) in &config.alertmanager {
        out.push_str(&format!(
            "alertmanager {name}: active alerts of {}/api/v2/alerts{}, every {}, figures {name}.active, {name}.silenced\n",
            s.url.trim_end_matches('/'),
            if given(&s.token) { " with a bearer token" } else { "" },
            humantime::format_duration(s.interval)
        ));
    }
    // Where a database is reached: the url's host and port, or `address`, from `host`; or
    // the container's address, when the host given is the container's name.
    let reached = |url: Option<&str>,
                   postgres: bool,
                   address: &Option<String>,
                   container: &Option<String>,
                   project: &Option<String>,
                   host: &str| {
        let given = given_host(url, address.as_deref(), postgres);
        if let Some(container) = container_in_use(container.as_deref(), &given) {
            let of = project
                .as_deref()
                .map(|p| format!(" of compose project {p}"))
                .unwrap_or_default();
            let engine = if host == "local" {
                "this machine's Docker engine".to_string()
            } else {
                format!("{host}'s Docker engine, reached through its SSH connection")
            };
            let named = if given.is_empty() {
                String::new()
            } else {
                format!(" (the host given, {given}, is its name)")
            };
            return format!(
                "at the address of container {container}{of} on its network{named}, from {engine} (looked up again for every connection)"
            );
        }
        let at = match address {
            Some(address) => address.clone(),
            None => url.map(server_of).unwrap_or_default(),
        };
        let mut text = if host == "local" {
            format!("at {at}")
        } else {
            format!("at {at} as seen from {host} (through its SSH connection)")
        };
        if let Some(container) = container
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            text.push_str(&format!(
                ", as written: its host {given} is not the name of container {container}, so the Docker engine is not asked"
            ));
        }
        text
    };
    for (name, s) in &config.redis {
        let ids: Vec<String> = crate::model::catalog::redis::ALL
            .iter()
            .map(|f| f.id(name))
            .collect();
        out.push_str(&format!(
            "redis {name}: {}{}, every {}, timeout {}, figures {} (mem_pct with maxmemory set, master_link on a replica; cache_hit_pct and the per-minute figures over each interval)\n",
            reached(s.url.as_deref(), false, &s.address, &s.container, &s.project, &s.host),
            if given(&s.password) { ", password from the environment" } else { "" },
            humantime::format_duration(s.interval),
            humantime::format_duration(s.timeout),
            ids.join(", ")
        ));
        for m in &s.metrics {
            let rule = m
                .rule()
                .map(|r| format!(", {}", r.describe()))
                .unwrap_or_default();
            out.push_str(&format!(
                "  metric {name}.{}: INFO field {}{rule}\n",
                m.id, m.field
            ));
        }
    }
    for (name, s) in &config.postgres {
        let ids: Vec<String> = crate::model::catalog::postgres::ALL
            .iter()
            .map(|f| f.id(name))
            .collect();
        out.push_str(&format!(
            "postgres {name}: {}{}, every {}, one read-only connection (default_transaction_read_only, statement_timeout {}), figures {} (replication_lag_s only where there is a replica)\n",
            reached(Some(&s.url), true, &s.address, &s.container, &s.project, &s.host),
            if given(&s.password) { ", password from the environment" } else { "" },
            humantime::format_duration(s.interval),
            humantime::format_duration(s.timeout),
            ids.join(", ")
        ));
        for m in &s.metrics {
            let what = match m.kind {
                MetricKind::Number => "number",
                MetricKind::Table => "table (figure: row count)",
            };
            let rule = m
                .rule()
                .map(|r| format!(", {}", r.describe()))
                .unwrap_or_default();
            out.push_str(&format!("  metric {name}.{}: {what}{rule}\n", m.id));
        }
    }
    for (id, rule) in &config.rules {
        out.push_str(&format!("rule {id}: {}\n", rule.describe()));
    }
    out.push_str(
        "alerts: a source that fails raises one alert (<source>.source) and its figures' errors fold into it; no reading for 3 intervals (at least 15s) is \"no data\"; a percentile needs 20 samples in its window (p99: 100), a percent 20 lines, a rate 5 lines before it is judged (min_samples)\n",
    );
    out.push_str("config OK\n");
    out
}

/// Where a config is looked for when none is given, in order: `./watchpost.toml`, then
/// `<config dir>/watchpost/config.toml` (`$XDG_CONFIG_HOME`, by default `~/.config`).
pub fn discovery_paths() -> Vec<PathBuf> {
    let mut paths = vec![PathBuf::from("watchpost.toml")];
    if let Some(dir) = dirs::config_dir() {
        paths.push(dir.join("watchpost").join("config.toml"));
    }
    paths
}

/// The config to use: the one given, else the first of [`discovery_paths`] that exists.
/// When none does, the error says where it looked.
pub fn find(given: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(path) = given {
        return Ok(path.to_path_buf());
    }
    let paths = discovery_paths();
    if let Some(found) = paths.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    let looked: Vec<String> = paths
        .iter()
        .map(|p| match (p.is_relative(), std::env::current_dir()) {
            (true, Ok(cwd)) => format!("./{} ({})", p.display(), cwd.join(p).display()),
            _ => p.display().to_string(),
        })
        .collect();
    Err(format!(
        "no config given and none found: looked for {}; give --config FILE, or try `watchpost demo`",
        looked.join(", then ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_small_config() {
        let config = Config::parse(
            r#"
            [deployment]
            name = "tmws"
            length = "12h"

            [sqlite.tmws]
            path = "/tmp/x.db"
            pack = "tmws"

            [service.api]
            health_url = "http://127.0.0.1:8000/health"

            [rules."tmws.rbac.deny_pct_1h"]
            warn = "> 20"
            crit = "> 50"
            "#,
        )
        .unwrap();
        assert_eq!(config.deployment.length, Duration::from_secs(12 * 3600));
        assert_eq!(config.sqlite["tmws"].pack.as_deref(), Some("tmws"));
        assert!(config.rules["tmws.rbac.deny_pct_1h"].crit.is_some());
    }

    #[test]
    fn unknown_key_names_the_line() {
        let err = Config::parse("[deployment]\nname = \"x\"\nnmae = \"y\"\n").unwrap_err();
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("nmae"), "{err}");
    }

    #[test]
    fn unknown_host_is_an_error() {
        let err = Config::parse("[system.h]\nhost = \"prod\"\n").unwrap_err();
        assert!(err.contains("prod"), "{err}");
    }
}
