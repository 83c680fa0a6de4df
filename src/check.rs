//! `watchpost check`: every check once, no TUI, with the same rules as the dashboard.
//! The readings go through the same state owner and rule engine; with one round there is
//! no history, so a rule's `for` and `min_failures` cannot have elapsed and each figure is
//! reported at its instantaneous severity (what the dashboard would show as pending is
//! WARN or CRIT here). A figure that could not be read is unknown, never OK.

use crate::collect::{self, Collector};
use crate::config::Config;
use crate::model::figure::{Figure, Severity};
use crate::model::sanitize::sanitize;
use crate::model::update::{SourceHealth, Update};
use crate::state::{AppState, Window};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use std::time::Duration;

/// How long one source may take in `check` before it is reported as unknown.
const SOURCE_TIMEOUT: Duration = Duration::from_secs(15);
/// Collectors that stream (Docker stats) need a moment before their first figures.
const WARM_UP: Duration = Duration::from_secs(4);

#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub deployment: String,
    pub at: String,
    pub worst: Severity,
    pub checks: Vec<Figure>,
    /// Each configured source and what went wrong with it, for the text output's grouping.
    #[serde(skip)]
    pub sources: Vec<SourceStatus>,
}

/// A configured source and its error, if it failed.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceStatus {
    pub name: String,
    pub error: Option<String>,
}

impl CheckReport {
    pub fn exit_code(&self) -> i32 {
        self.worst.exit_code()
    }

    /// The JSON contract of product.md; numbers rounded to their figure's precision, so
    /// a CPU share read as a 32-bit float is 14.29, not 14.285715103149414.
    pub fn to_json(&self) -> String {
        let rounded = CheckReport {
            deployment: self.deployment.clone(),
            at: self.at.clone(),
            worst: self.worst,
            checks: self
                .checks
                .iter()
                .map(|c| Figure {
                    value: c.value.rounded_for(&c.unit),
                    ..c.clone()
                })
                .collect(),
            sources: Vec::new(),
        };
        serde_json::to_string_pretty(&rounded).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// For a person: one line per source, with its error once when it failed, then its
    /// figures; a figure that failed for the source's reason does not repeat the reason.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{}  {}  worst: {}\n",
            sanitize(&self.deployment),
            self.at,
            self.worst.label()
        );
        let id_width = self.checks.iter().map(|c| c.id.len()).max().unwrap_or(0);
        for (source, checks) in self.by_source() {
            let error = source.error.as_deref();
            match error {
                Some(error) => out.push_str(&format!(
                    "\n{}: error: {}\n",
                    sanitize(&source.name),
                    sanitize(error)
                )),
                None => out.push_str(&format!("\n{}:\n", sanitize(&source.name))),
            }
            for check in checks {
                let value = match &check.error {
                    Some(e) if Some(e.as_str()) == error => "(source error)".to_string(),
                    Some(e) => format!("error: {e}"),
                    None => check.display_value(),
                };
                let detail = if check.detail.is_empty() {
                    String::new()
                } else {
                    format!("  ({})", check.detail)
                };
                out.push_str(&format!(
                    "  {:<7} {:<id_width$}  {}{}\n",
                    check.severity.label(),
                    sanitize(&check.id),
                    sanitize(&value),
                    sanitize(&detail),
                ));
            }
        }
        out
    }

    /// The checks grouped under their source (`<source>.` prefix), failing sources first;
    /// checks of no configured source (another system's alerts) under their own prefix.
    fn by_source(&self) -> Vec<(SourceStatus, Vec<&Figure>)> {
        let mut groups: Vec<(SourceStatus, Vec<&Figure>)> = self
            .sources
            .iter()
            .map(|s| (s.clone(), Vec::new()))
            .collect();
        for check in &self.checks {
            let at = groups
                .iter()
                .position(|(s, _)| is_of_source(&check.id, &s.name))
                .unwrap_or_else(|| {
                    let name = check.id.split('.').next().unwrap_or_default().to_string();
                    groups.push((SourceStatus { name, error: None }, Vec::new()));
                    groups.len() - 1
                });
            groups[at].1.push(check);
        }
        groups.sort_by_key(|(s, _)| s.error.is_none());
        groups
    }
}

fn is_of_source(id: &str, source: &str) -> bool {
    id.strip_prefix(source)
        .is_some_and(|rest| rest.starts_with('.'))
}

/// Polls one collector until it yields figures (or an error), within the timeouts.
async fn poll_settled(mut collector: Box<dyn Collector>) -> Vec<Update> {
    let name = collector.name().to_string();
    collector.one_shot();
    let started = tokio::time::Instant::now();
    let mut updates = Vec::new();
    loop {
        let round = match tokio::time::timeout(SOURCE_TIMEOUT, collector.poll()).await {
            Ok(round) => round,
            Err(_) => {
                updates.push(collect::health(
                    &name,
                    SourceHealth::Error {
                        message: format!("no answer within {}s", SOURCE_TIMEOUT.as_secs()),
                        retry_in_secs: None,
                    },
                ));
                return updates;
            }
        };
        let has_figures = round
            .iter()
            .any(|u| matches!(u, Update::Readings { readings, .. } if !readings.is_empty()));
        let has_error = round.iter().any(|u| {
            matches!(
                u,
                Update::Health {
                    health: SourceHealth::Error { .. },
                    ..
                }
            )
        });
        updates.extend(round);
        if has_figures || has_error || started.elapsed() >= WARM_UP {
            return updates;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Runs every check of a config once; remote sources go through `pool`'s connections.
pub async fn run_checks(
    config: &Config,
    pool: &crate::transport::HostPool,
    now: DateTime<Utc>,
) -> CheckReport {
    let collectors = collect::from_config(config, pool, None);
    let names: Vec<String> = collectors.iter().map(|c| c.name().to_string()).collect();
    let window = Window::new(&config.deployment.name, now, chrono::Duration::hours(24));
    let mut state = crate::app::initial_state(window, &collectors, config);
    let rounds = futures::future::join_all(collectors.into_iter().map(poll_settled)).await;
    for update in rounds.into_iter().flatten() {
        state.apply(update, now);
    }
    report_from_state(&state, &names, now)
}

/// The report of what a state knows: every figure, plus an unknown check for each source
/// that failed without producing any figure (so a dead source is never silently OK).
pub fn report_from_state(state: &AppState, sources: &[String], now: DateTime<Utc>) -> CheckReport {
    let mut checks: Vec<Figure> = state.figures.values().map(|f| f.figure.clone()).collect();
    for name in sources {
        let prefix = format!("{name}.");
        if checks.iter().any(|c| c.id.starts_with(&prefix)) {
            continue;
        }
        if let Some(source) = state.sources.get(name) {
            let error = match &source.health {
                SourceHealth::Error { message, .. } | SourceHealth::Busy { message } => {
                    Some(message.clone())
                }
                SourceHealth::Connecting => Some("no figures yet".to_string()),
                SourceHealth::Ok => None,
            };
            if let Some(error) = error {
                checks.push(Figure {
                    id: format!("{name}.source"),
                    name: format!("{name} source"),
                    value: crate::model::figure::Value::None,
                    unit: String::new(),
                    severity: Severity::Unknown,
                    detail: String::new(),
                    error: Some(error),
                    at: now,
                });
            }
        }
    }
    // Alerts another system fired (Alertmanager) are checks too; silenced ones are OK.
    for alert in &state.alerts.active {
        if state.figures.contains_key(&alert.id) || alert.id.ends_with(".source") {
            continue;
        }
        checks.push(Figure {
            id: alert.id.clone(),
            name: alert.name.clone(),
            value: crate::model::figure::Value::Text(alert.reason.clone()),
            unit: String::new(),
            severity: match &alert.silenced {
                Some(_) => Severity::Ok,
                None => alert.severity,
            },
            detail: format!(
                "{} since {}{}",
                alert.priority.label(),
                alert.since.to_rfc3339_opts(SecondsFormat::Secs, true),
                alert
                    .silenced
                    .as_deref()
                    .map(|why| format!(", {why}"))
                    .unwrap_or_default()
            ),
            error: None,
            at: now,
        });
    }
    checks.sort_by(|a, b| a.id.cmp(&b.id));
    let worst = checks
        .iter()
        .map(|c| c.severity)
        .fold(Severity::Ok, Severity::worst);
    let sources = sources
        .iter()
        .map(|name| SourceStatus {
            name: name.clone(),
            error: state.sources.get(name).and_then(|s| match &s.health {
                SourceHealth::Error { message, .. } | SourceHealth::Busy { message } => {
                    Some(message.clone())
                }
                SourceHealth::Connecting | SourceHealth::Ok => None,
            }),
        })
        .collect();
    CheckReport {
        deployment: state.window.deployment.clone(),
        at: now.to_rfc3339_opts(SecondsFormat::Secs, true),
        worst,
        checks,
        sources,
    }
}
