//! `container = "SERVICE"` on a `[redis.NAME]` or `[postgres.NAME]` source: the server is
//! the running container of that compose service (of `project`, when given), or the running
//! container of that name, reached at its address on its network as the Docker engine
//! gives it — the engine of the source's host: this machine's, or a `[hosts]` host's
//! through its one SSH connection, as the Containers pane reaches it. Nothing needs to be
//! published. The address is looked up again for every new connection, so a container
//! restarted or recreated with a new address is found at the next poll. Used only when the
//! host the source is given is the container's name, or none ([`crate::config::container_in_use`]):
//! a url with any other host is reached as written.

use super::engine_client;
use crate::transport::{Transport, UnixForward};
use bollard::Docker;
use bollard::models::ContainerSummary;
use bollard::query_parameters::ListContainersOptions;
use std::collections::HashMap;

/// Finds a service's container and its address through the engine.
pub(crate) struct ContainerAddress {
    service: String,
    project: Option<String>,
    /// The host whose engine it is, when not this machine.
    remote: Option<Transport>,
    /// The engine connection, made on first use and again after a failure; the forward
    /// of a remote engine's socket is kept open with it.
    client: Option<(Docker, Option<UnixForward>)>,
}

impl ContainerAddress {
    pub fn new(service: &str, project: Option<String>, remote: Option<Transport>) -> Self {
        ContainerAddress {
            service: service.to_string(),
            project,
            remote,
            client: None,
        }
    }

    /// "container cache" or "container cache of compose project shop".
    pub fn describe(&self) -> String {
        match &self.project {
            Some(project) => format!("container {} of compose project {project}", self.service),
            None => format!("container {}", self.service),
        }
    }

    async fn docker(&mut self) -> Result<Docker, String> {
        if let Some((docker, _)) = &self.client {
            return Ok(docker.clone());
        }
        let (docker, forward) = engine_client(self.remote.as_ref(), None).await?;
        self.client = Some((docker.clone(), forward));
        Ok(docker)
    }

    /// The container's address now: its IP on its network (the compose project's own
    /// network first), or why there is none.
    pub async fn resolve(&mut self) -> Result<String, String> {
        let docker = self.docker().await?;
        let found = self.find(&docker).await;
        if let Err(Lookup::Engine(_)) = &found {
            // The next lookup connects again (an engine that restarted, a lost forward).
            self.client = None;
        }
        let container = found.map_err(|e| match e {
            Lookup::Engine(e) => {
                format!("cannot ask the Docker engine for {}: {e}", self.describe())
            }
            Lookup::Missing(e) => e,
        })?;
        let name = name_of(&container);
        let networks = container
            .network_settings
            .as_ref()
            .and_then(|n| n.networks.as_ref())
            .cloned()
            .unwrap_or_default();
        let mut names: Vec<&String> = networks.keys().collect();
        // The compose project's networks first (`<project>_default`), then by name.
        let project = self.project.clone().or_else(|| {
            container
                .labels
                .as_ref()
                .and_then(|l| l.get("com.docker.compose.project").cloned())
        });
        names.sort_by_key(|n| {
            let own = project
                .as_deref()
                .is_some_and(|p| n.starts_with(&format!("{p}_")));
            (!own, (*n).clone())
        });
        names
            .into_iter()
            .find_map(|n| {
                networks[n]
                    .ip_address
                    .clone()
                    .filter(|ip| !ip.is_empty())
            })
            .ok_or_else(|| {
                format!(
                    "{} ({name}) has no address on a network (network mode host or none?); give address = \"host:port\" instead",
                    self.describe()
                )
            })
    }

    /// The running container: of the compose service (and project), or of that name; the
    /// first by name when there are replicas. None running: whether one is there stopped.
    async fn find(&self, docker: &Docker) -> Result<ContainerSummary, Lookup> {
        let service = &self.service;
        let mut labels = vec![format!("com.docker.compose.service={service}")];
        if let Some(project) = &self.project {
            labels.push(format!("com.docker.compose.project={project}"));
        }
        let list = |all: bool, filters: HashMap<String, Vec<String>>| async move {
            let options = ListContainersOptions {
                all,
                filters: Some(filters),
                ..Default::default()
            };
            docker.list_containers(Some(options)).await
        };
        let by_label = || HashMap::from([("label".to_string(), labels.clone())]);
        let by_name = || HashMap::from([("name".to_string(), vec![format!("^/{service}$")])]);
        for filters in [by_label(), by_name()] {
            let mut running = list(false, filters)
                .await
                .map_err(|e| Lookup::Engine(e.to_string()))?;
            running.sort_by_key(name_of);
            if let Some(first) = running.into_iter().next() {
                return Ok(first);
            }
        }
        for filters in [by_label(), by_name()] {
            let stopped = list(true, filters)
                .await
                .map_err(|e| Lookup::Engine(e.to_string()))?;
            if let Some(c) = stopped.first() {
                return Err(Lookup::Missing(format!(
                    "{} is not running ({}: {})",
                    self.describe(),
                    name_of(c),
                    c.status.as_deref().unwrap_or("stopped")
                )));
            }
        }
        Err(Lookup::Missing(format!(
            "no container of compose service {service}{} and none named {service}",
            self.project
                .as_deref()
                .map(|p| format!(" in project {p}"))
                .unwrap_or_default()
        )))
    }
}

enum Lookup {
    Engine(String),
    Missing(String),
}

fn name_of(c: &ContainerSummary) -> String {
    c.names
        .as_ref()
        .and_then(|n| n.first())
        .map(|n| n.trim_start_matches('/').to_string())
        .unwrap_or_default()
}
