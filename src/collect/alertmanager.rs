//! An Alertmanager as a source (`[alertmanager.NAME]`): its active alerts
//! (`GET /api/v2/alerts`) join the Alerts pane beside watchpost's own, with their labels,
//! severity and start time; silenced or inhibited ones are marked and do not count
//! towards the worst state. They go into the record, and so into the report, like
//! watchpost's own alerts.
//!
//! Alert ids: `<name>.<alertname>.<fingerprint>`. Figures: `<name>.active` (alerts that
//! count: not silenced, not inhibited) and `<name>.silenced`.
//!
//! The `severity` label decides the state: `critical` (also `crit`, `page`, `error`,
//! `high`) is CRIT at P1, anything else WARN (`warning` at P2, `info` and the rest at P3);
//! a `priority` label of P0–P3 overrides the priority.

use crate::collect::prometheus::{ApiClient, ApiClientError};
use crate::collect::{Collector, failed, health};
use crate::config::AlertmanagerSource;
use crate::model::figure::{Reading, Severity};
use crate::model::rule::Priority;
use crate::model::update::{ExternalAlert, SourceHealth, Update};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

pub(crate) struct AlertmanagerCollector {
    name: String,
    interval: Duration,
    client: Result<ApiClient, ApiClientError>,
}

impl AlertmanagerCollector {
    pub fn new(name: &str, source: &AlertmanagerSource) -> Self {
        AlertmanagerCollector {
            name: name.to_string(),
            interval: source.interval,
            client: ApiClient::new("Alertmanager", &source.api()),
        }
    }
}

/// One alert of `/api/v2/alerts` (the fields watchpost uses).
#[derive(Deserialize)]
struct GettableAlert {
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    starts_at: DateTime<Utc>,
    fingerprint: String,
    status: AlertStatus,
}

#[derive(Deserialize)]
struct AlertStatus {
    state: String,
    #[serde(rename = "silencedBy", default)]
    silenced_by: Vec<String>,
    #[serde(rename = "inhibitedBy", default)]
    inhibited_by: Vec<String>,
}

/// Reads the body of `/api/v2/alerts` into the alerts the Alerts pane lists.
pub(crate) fn parse_alerts(body: &[u8]) -> Result<Vec<ExternalAlert>, String> {
    let alerts: Vec<GettableAlert> = serde_json::from_slice(body)
        .map_err(|e| format!("the answer is not Alertmanager's alert list: {e}"))?;
    Ok(alerts.into_iter().map(external).collect())
}

fn external(a: GettableAlert) -> ExternalAlert {
    let severity_label = a.labels.get("severity").map(|s| s.to_ascii_lowercase());
    let (severity, priority) = match severity_label.as_deref() {
        Some("critical" | "crit" | "page" | "error" | "high") => (Severity::Crit, Priority::P1),
        Some("warning" | "warn" | "medium") => (Severity::Warn, Priority::P2),
        _ => (Severity::Warn, Priority::P3),
    };
    let priority = match a.labels.get("priority").map(String::as_str) {
        Some("P0") => Priority::P0,
        Some("P1") => Priority::P1,
        Some("P2") => Priority::P2,
        Some("P3") => Priority::P3,
        _ => priority,
    };
    let silenced = if !a.status.silenced_by.is_empty() {
        Some(format!(
            "silenced in Alertmanager ({})",
            a.status.silenced_by.join(", ")
        ))
    } else if !a.status.inhibited_by.is_empty() {
        Some("inhibited in Alertmanager".to_string())
    } else if a.status.state == "suppressed" {
        Some("suppressed in Alertmanager".to_string())
    } else {
        None
    };
    let summary = ["summary", "description", "message"]
        .iter()
        .find_map(|k| a.annotations.get(*k))
        .cloned()
        .unwrap_or_default();
    let name = a.labels.get("alertname").cloned().unwrap_or_default();
    ExternalAlert {
        key: a.fingerprint,
        name: if name.is_empty() {
            "alert".into()
        } else {
            name
        },
        labels: a
            .labels
            .into_iter()
            .filter(|(k, _)| k != "alertname")
            .collect(),
        severity,
        priority,
        starts_at: a.starts_at,
        summary,
        silenced,
    }
}

/// The figures of one answer: how many alerts count, how many are silenced.
fn readings(source: &str, alerts: &[ExternalAlert]) -> Vec<Reading> {
    let (quiet, counting): (Vec<&ExternalAlert>, Vec<&ExternalAlert>) =
        alerts.iter().partition(|a| a.silenced.is_some());
    let names = |list: &[&ExternalAlert]| {
        let mut names: Vec<&str> = list.iter().map(|a| a.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names.join(", ")
    };
    vec![
        Reading::number(
            format!("{source}.active"),
            format!("{source} active alerts"),
            counting.len() as f64,
            "",
        )
        .with_detail(names(&counting)),
        Reading::number(
            format!("{source}.silenced"),
            format!("{source} silenced alerts"),
            quiet.len() as f64,
            "",
        )
        .with_detail(names(&quiet)),
    ]
}

impl Collector for AlertmanagerCollector {
    fn name(&self) -> &str {
        &self.name
    }
    fn panes(&self) -> &'static [crate::model::pane::PaneId] {
        &[crate::model::pane::PaneId::Alerts]
    }
    fn interval(&self) -> Duration {
        self.interval
    }
    fn poll(&mut self) -> BoxFuture<'_, Vec<Update>> {
        Box::pin(async move {
            let client = match &self.client {
                Ok(client) => client,
                Err(e) => {
                    return vec![health(
                        &self.name,
                        SourceHealth::Error {
                            message: e.to_string(),
                            retry_in_secs: None,
                        },
                    )];
                }
            };
            let answer = client.get("api/v2/alerts", &[]).await;
            let alerts = match answer
                .map_err(|e| e.to_string())
                .and_then(|b| parse_alerts(&b))
            {
                Ok(alerts) => alerts,
                // Unreachable: the alerts listed stay as they were, with the source's line.
                Err(message) => {
                    let failures = readings(&self.name, &[])
                        .into_iter()
                        .map(|r| Reading::failed(r.id, r.name, message.clone()))
                        .collect();
                    return vec![
                        Update::Readings {
                            source: self.name.clone(),
                            readings: failures,
                        },
                        failed(&self.name, message, self.interval),
                    ];
                }
            };
            vec![
                Update::Readings {
                    source: self.name.clone(),
                    readings: readings(&self.name, &alerts),
                },
                Update::Alerts {
                    source: self.name.clone(),
                    alerts,
                },
                health(&self.name, SourceHealth::Ok),
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"[
      {"annotations":{"summary":"12 violations/s"},"endsAt":"2026-12-02T05:00:00Z",
       "fingerprint":"a1b2c3d4e5f60718","receivers":[{"name":"default"}],
       "startsAt":"2026-12-02T04:00:00.5Z",
       "status":{"inhibitedBy":[],"silencedBy":[],"state":"active"},
       "updatedAt":"2026-12-02T04:01:00Z","generatorURL":"http://p/graph",
       "labels":{"alertname":"SecurityBoundaryViolationCritical","severity":"critical","instance":"api:8000"}},
      {"annotations":{},"endsAt":"2026-12-02T05:00:00Z","fingerprint":"ffff000011112222",
       "receivers":[],"startsAt":"2026-12-02T04:10:00Z",
       "status":{"inhibitedBy":[],"silencedBy":["5d1c"],"state":"suppressed"},
       "updatedAt":"2026-12-02T04:11:00Z","labels":{"alertname":"SecurityCachePerformancePoor","severity":"info"}}
    ]"#;

    #[test]
    fn alerts_keep_labels_severity_start_and_silence() {
        let alerts = parse_alerts(BODY).unwrap();
        assert_eq!(alerts.len(), 2);
        let crit = &alerts[0];
        assert_eq!(crit.name, "SecurityBoundaryViolationCritical");
        assert_eq!(
            (crit.severity, crit.priority),
            (Severity::Crit, Priority::P1)
        );
        assert_eq!(crit.starts_at.to_rfc3339(), "2026-12-02T04:00:00.500+00:00");
        assert!(
            crit.labels
                .contains(&("instance".into(), "api:8000".into()))
        );
        assert_eq!(crit.summary, "12 violations/s");
        assert_eq!(crit.silenced, None);
        let info = &alerts[1];
        assert_eq!(
            (info.severity, info.priority),
            (Severity::Warn, Priority::P3)
        );
        assert!(info.silenced.as_deref().unwrap().contains("5d1c"));
        let figures = readings("am", &alerts);
        assert_eq!(figures[0].value.as_f64(), Some(1.0));
        assert_eq!(figures[1].value.as_f64(), Some(1.0));
    }

    #[test]
    fn a_wrong_answer_is_a_readable_error() {
        let err = parse_alerts(b"{\"status\":\"error\"}").err().unwrap();
        assert!(err.contains("not Alertmanager's alert list"), "{err}");
    }
}
