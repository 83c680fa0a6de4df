//! `[command.NAME]`: one command run on a host (this machine, or a `[hosts]` host over its
//! one SSH connection) on its own interval, its arguments passed as they are (through no
//! shell of ours); what it prints is read into the figure `NAME.<id>` as a
//! `[[docker.S.exec]]` figure is (see [`super::extract`]). A run still going at its timeout
//! is killed (the transport kills it: locally the child, remotely through its channel's
//! watcher) and its figure says so.

use super::extract::{self, Extraction, Ran};
use super::{Collector, Reach, health};
use crate::config::CommandSource;
use crate::model::figure::Reading;
use crate::model::update::{SourceHealth, Update};
use crate::transport::TransportError;
use futures::future::BoxFuture;
use std::time::Duration;

pub struct CommandCollector {
    name: String,
    spec: CommandSource,
    reach: Reach,
}

impl CommandCollector {
    /// On this machine (a remote `host` reports that it needs a transport).
    pub fn new(name: &str, spec: &CommandSource) -> Self {
        Self::on(name, spec, super::reach_without_pool(&spec.host))
    }

    /// On the host behind `reach` (from the pool: [`crate::collect::reach`]).
    pub fn on(name: &str, spec: &CommandSource, reach: Reach) -> Self {
        CommandCollector {
            name: name.to_string(),
            spec: spec.clone(),
            reach,
        }
    }

    fn id(&self) -> String {
        format!("{}.{}", self.name, self.spec.id)
    }

    fn figure_name(&self) -> String {
        self.spec.name.clone().unwrap_or_else(|| self.id())
    }

    fn failed(&self, error: &str) -> Reading {
        Reading::failed(
            self.id(),
            self.figure_name(),
            format!("{}: {error}", self.spec.argv.join(" ")),
        )
    }

    fn with_rule(&self, reading: Reading) -> Reading {
        match self.spec.rule() {
            Some(rule) => reading.with_rule(rule),
            None => reading,
        }
    }

    /// The updates of a run that gave no output to read: the figure and the source's
    /// health both say why.
    fn broken(&self, message: String) -> Vec<Update> {
        vec![
            Update::Readings {
                source: self.name.clone(),
                readings: vec![self.with_rule(self.failed(&message))],
            },
            health(
                &self.name,
                SourceHealth::Error {
                    message,
                    retry_in_secs: Some(self.spec.interval.as_secs().max(1)),
                },
            ),
        ]
    }
}

impl Collector for CommandCollector {
    fn name(&self) -> &str {
        &self.name
    }
    fn panes(&self) -> &'static [crate::model::pane::PaneId] {
        &[crate::model::pane::PaneId::Figures]
    }
    fn interval(&self) -> Duration {
        self.spec.interval
    }
    fn poll(&mut self) -> BoxFuture<'_, Vec<Update>> {
        Box::pin(async move {
            let transport = match &self.reach {
                Ok(transport) => transport.clone(),
                Err(e) => {
                    let message = e.to_string();
                    return self.broken(message);
                }
            };
            let detail = format!("on {}", transport.name());
            let output = match transport
                .exec_timeout(&self.spec.argv, self.spec.timeout)
                .await
            {
                Ok(output) => output,
                // The host's own line says it; the figure keeps its value and age.
                Err(e) if super::host_unreachable(&transport, &e) => {
                    return vec![super::host_down(&self.name, &transport, &e)];
                }
                Err(TransportError::Timeout { .. }) => {
                    return self.broken(format!(
                        "{detail}: still running after {}, killed",
                        humantime::format_duration(self.spec.timeout)
                    ));
                }
                Err(e) => return self.broken(format!("{detail}: {e}")),
            };
            let (stdout, stderr) = (output.stdout_text(), output.stderr_text());
            let reading = match output.status.code {
                // Killed by a signal: there is no exit code, and its output is cut short.
                None => self.failed(&format!(
                    "{detail}: {}: {}",
                    output.status,
                    extract::first_line(&stderr)
                )),
                Some(code) => {
                    let how = Extraction {
                        regex: self.spec.regex.as_deref(),
                        field: self.spec.field.as_deref(),
                        unit: &self.spec.unit,
                    };
                    let ran = Ran {
                        stdout: &stdout,
                        stderr: &stderr,
                        exit: Some(i64::from(code)),
                    };
                    extract::read(self.id(), self.figure_name(), &how, &ran, &detail)
                        .unwrap_or_else(|e| self.failed(&e))
                }
            };
            vec![
                Update::Readings {
                    source: self.name.clone(),
                    readings: vec![self.with_rule(reading)],
                },
                health(&self.name, SourceHealth::Ok),
            ]
        })
    }
}
