//! The config file: a TOML description of one deployment and the sources that watch it.
//!
//! String values expand `${VAR}`, `${VAR:-default}` and a leading `~` while they are read,
//! so an unset variable is reported with the line it is on.

pub mod expand;

use crate::rules::Rule;
use expand::{expanded, expanded_opt, expanded_vec};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Clone, Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
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
    /// Thresholds by figure id, overriding a pack's defaults.
    #[serde(default)]
    pub rules: BTreeMap<String, Rule>,
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
}

impl Default for Deployment {
    fn default() -> Self {
        Deployment {
            name: default_name(),
            version: String::new(),
            start: default_start(),
            length: default_window(),
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
    #[serde(default = "default_host", deserialize_with = "expanded")]
    pub host: String,
    /// Regex (case-insensitive) that makes a line an error.
    #[serde(default = "default_error_pattern", deserialize_with = "expanded")]
    pub error_pattern: String,
    /// Figures derived from the lines: `[[logs.NAME.metric]]`.
    #[serde(default, rename = "metric")]
    pub metrics: Vec<crate::collect::logmetrics::LogMetric>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerSource {
    #[serde(default = "default_host", deserialize_with = "expanded")]
    pub host: String,
    /// Only containers of this compose project.
    #[serde(default, deserialize_with = "expanded_opt")]
    pub project: Option<String>,
    #[serde(default = "default_service_interval", with = "humantime_serde_compat")]
    pub interval: Duration,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemSource {
    #[serde(default = "default_host", deserialize_with = "expanded")]
    pub host: String,
    #[serde(default = "default_service_interval", with = "humantime_serde_compat")]
    pub interval: Duration,
}

fn default_host() -> String {
    "local".into()
}
fn default_sqlite_interval() -> Duration {
    Duration::from_secs(5)
}
fn default_service_interval() -> Duration {
    Duration::from_secs(2)
}
fn default_timeout() -> Duration {
    Duration::from_secs(5)
}
/// The runbooks' grep: error, exception, failed, critical, fatal, panic.
pub fn default_error_pattern() -> String {
    r"(?i)\b(error|exception|failed|critical|fatal|panic)\b".into()
}

/// Durations written like "5s", "2m", "24h".
mod humantime_serde_compat {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(text.trim()).map_err(|e| {
            serde::de::Error::custom(format!(
                "{text:?} is not a duration like \"5s\" or \"24h\": {e}"
            ))
        })
    }
}

/// A config error with where it is.
#[derive(Debug)]
pub struct ConfigError {
    pub path: PathBuf,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads and parses a config file; errors name the file, line and column.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            path: path.to_path_buf(),
            message: format!("cannot read config: {e}"),
        })?;
        Config::parse(&text).map_err(|message| ConfigError {
            path: path.to_path_buf(),
            message,
        })
    }

    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| describe_toml_error(text, &e))?;
        config.check()?;
        Ok(config)
    }

    /// Cross-field checks that serde cannot express.
    fn check(&self) -> Result<(), String> {
        let known_host =
            |h: &str| h == "local" || h.starts_with("ssh://") || self.hosts.contains_key(h);
        let mut problems = Vec::new();
        let mut hosts_used: Vec<(&str, &str)> = Vec::new();
        hosts_used.extend(
            self.sqlite
                .iter()
                .map(|(n, s)| (n.as_str(), s.host.as_str())),
        );
        hosts_used.extend(
            self.service
                .iter()
                .map(|(n, s)| (n.as_str(), s.host.as_str())),
        );
        hosts_used.extend(self.logs.iter().map(|(n, s)| (n.as_str(), s.host.as_str())));
        hosts_used.extend(
            self.docker
                .iter()
                .map(|(n, s)| (n.as_str(), s.host.as_str())),
        );
        hosts_used.extend(
            self.system
                .iter()
                .map(|(n, s)| (n.as_str(), s.host.as_str())),
        );
        for (name, host) in hosts_used {
            if !known_host(host) {
                problems.push(format!(
                    "source {name:?}: host {host:?} is not \"local\", an ssh:// address or a name under [hosts]"
                ));
            }
        }
        for (name, service) in &self.service {
            if service.health_url.is_none() && service.systemd.is_none() {
                problems.push(format!(
                    "service {name:?}: give health_url, systemd, or both"
                ));
            }
        }
        for (name, logs) in &self.logs {
            let kinds = [
                !logs.files.is_empty(),
                logs.journald.is_some(),
                !logs.command.is_empty(),
            ];
            match kinds.iter().filter(|k| **k).count() {
                0 => problems.push(format!(
                    "logs {name:?}: give files (a list of files or globs), journald (a unit) or command (a list: program and arguments)"
                )),
                1 => {}
                _ => problems.push(format!(
                    "logs {name:?}: give only one of files, journald and command (use one source for each)"
                )),
            }
            if logs
                .journald
                .as_deref()
                .is_some_and(|u| u.trim().is_empty())
            {
                problems.push(format!("logs {name:?}: journald names no unit"));
            }
            if let Some(problem) = crate::collect::logmetrics::check_ids(&logs.metrics) {
                problems.push(format!("logs {name:?}: {problem}"));
            }
            if let Err(e) = regex::Regex::new(&logs.error_pattern) {
                problems.push(format!(
                    "logs {name:?}: error_pattern is not a valid regex: {e}"
                ));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}

/// A TOML error as "line L, column C: message".
fn describe_toml_error(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().to_string();
    match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before
                .rsplit('\n')
                .next()
                .map(|l| l.chars().count() + 1)
                .unwrap_or(1);
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

/// A plain-text explanation of a config, for `watchpost validate`.
pub fn explain(config: &Config) -> String {
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
        out.push_str(&format!("host {name}: ssh {}\n", host.ssh));
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
            "service {name}: {} on {}, figures {name}.up{}\n",
            what.join(" + "),
            s.host,
            if s.health_url.is_some() {
                format!(", {name}.health_ms")
            } else {
                String::new()
            }
        ));
    }
    for (name, s) in &config.logs {
        let what = match (&s.journald, s.command.is_empty()) {
            (Some(unit), _) => format!("journald unit {unit}"),
            (None, false) => format!("output of {}", s.command.join(" ")),
            (None, true) => s.files.join(", "),
        };
        let metrics: String = s
            .metrics
            .iter()
            .map(|m| format!(", {name}.{}", m.id))
            .collect();
        out.push_str(&format!("logs {name}: {what} on {}, errors match {}, figures {name}.errors_1h, {name}.errors_per_min{metrics}\n", s.host, s.error_pattern));
    }
    for (name, s) in &config.docker {
        let project = s
            .project
            .as_deref()
            .map(|p| format!(", compose project {p}"))
            .unwrap_or_default();
        out.push_str(&format!("docker {name}: engine on {}{project}\n", s.host));
    }
    for (name, s) in &config.system {
        out.push_str(&format!("system {name}: CPU, memory, disk, load of {}, figures {name}.cpu_pct, .mem_pct, .disk_pct, .load1\n", s.host));
    }
    for (id, rule) in &config.rules {
        out.push_str(&format!("rule {id}: {}\n", rule.describe()));
    }
    out.push_str("config OK\n");
    out
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
