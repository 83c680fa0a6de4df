//! `[[docker.NAME.exec]]`: a command run inside a compose service's container through the
//! engine's exec API (the arguments go to the container as they are, through no shell of
//! ours), on its own interval, with a timeout; its output read into one figure.
//!
//! Each exec runs in a task of its own, so a slow command never holds up the Containers
//! pane: a poll of the Docker source hands in the figures of the runs that finished and
//! starts the runs that are due. A run still going at its timeout is stopped (the engine
//! has no call for that, so its process is killed by its host PID, on the engine's host)
//! and its figure says so.

use crate::collect::extract;
use crate::config::DockerExec;
use crate::model::figure::Reading;
use crate::transport::{Transport, UnixForward};
use bollard::Docker;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::query_parameters::ListContainersOptions;
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// The most of a command's output that is read.
const MAX_OUTPUT: usize = 1024 * 1024;

/// The engine connection the runs share: made on first use, again after a failure.
struct Client {
    docker: Docker,
    /// Keeps the forwarded socket of a remote engine open.
    _forward: Option<UnixForward>,
}

/// Where the engine is.
#[derive(Clone)]
pub(super) struct Place {
    /// An address given to the collector (tests), else DOCKER_HOST or the socket.
    pub address: Option<String>,
    /// The host whose engine it is, when not this machine.
    pub remote: Option<Transport>,
}

struct Entry {
    spec: DockerExec,
    next_at: Instant,
    running: Option<JoinHandle<Reading>>,
}

pub(super) struct Execs {
    source: String,
    project: Option<String>,
    entries: Vec<Entry>,
    client: Arc<tokio::sync::Mutex<Option<Client>>>,
}

impl Execs {
    pub fn new(source: &str, project: Option<String>, specs: &[DockerExec]) -> Execs {
        let now = Instant::now();
        Execs {
            source: source.to_string(),
            project,
            entries: specs
                .iter()
                .map(|spec| Entry {
                    spec: spec.clone(),
                    next_at: now,
                    running: None,
                })
                .collect(),
            client: Arc::new(tokio::sync::Mutex::new(None)),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The figures of the runs that finished, after starting the ones that are due. With
    /// `wait` (`watchpost check`), every run is started and waited for.
    pub async fn poll(&mut self, place: &Place, wait: bool) -> Vec<Reading> {
        let now = Instant::now();
        for entry in &mut self.entries {
            if entry.running.is_none() && (wait || entry.next_at <= now) {
                let run = Run {
                    source: self.source.clone(),
                    project: self.project.clone(),
                    spec: entry.spec.clone(),
                    place: place.clone(),
                    client: self.client.clone(),
                };
                entry.running = Some(tokio::spawn(run.go()));
            }
        }
        let mut out = Vec::new();
        for entry in &mut self.entries {
            let finished = entry
                .running
                .as_ref()
                .is_some_and(|h| wait || h.is_finished());
            if !finished {
                continue;
            }
            let Some(handle) = entry.running.take() else {
                continue;
            };
            entry.next_at = Instant::now() + entry.spec.interval;
            out.push(match handle.await {
                Ok(reading) => reading,
                Err(e) => failed(&self.source, &entry.spec, &format!("the run failed: {e}")),
            });
        }
        out
    }
}

impl Drop for Execs {
    fn drop(&mut self) {
        for entry in &self.entries {
            if let Some(handle) = &entry.running {
                handle.abort();
            }
        }
    }
}

fn figure_id(source: &str, spec: &DockerExec) -> String {
    format!("{source}.{}", spec.id)
}

fn figure_name(spec: &DockerExec) -> String {
    spec.name.clone().unwrap_or_else(|| spec.id.clone())
}

fn failed(source: &str, spec: &DockerExec, error: &str) -> Reading {
    Reading::failed(
        figure_id(source, spec),
        figure_name(spec),
        format!("exec {}: {error}", spec.command.join(" ")),
    )
}

/// One run of one exec.
struct Run {
    source: String,
    project: Option<String>,
    spec: DockerExec,
    place: Place,
    client: Arc<tokio::sync::Mutex<Option<Client>>>,
}

/// How a run ended, before it is read into a figure.
struct Ran {
    container: String,
    stdout: String,
    stderr: String,
    exit: Option<i64>,
}

impl Run {
    async fn go(self) -> Reading {
        let reading = match self.run().await {
            Ok(ran) => self.read(&ran),
            Err(e) => failed(&self.source, &self.spec, &e),
        };
        match self.spec.rule() {
            Some(rule) => reading.with_rule(rule),
            None => reading,
        }
    }

    async fn docker(&self) -> Result<Docker, String> {
        let mut client = self.client.lock().await;
        if let Some(client) = client.as_ref() {
            return Ok(client.docker.clone());
        }
        let (docker, forward) =
            super::engine_client(self.place.remote.as_ref(), self.place.address.as_deref()).await?;
        *client = Some(Client {
            docker: docker.clone(),
            _forward: forward,
        });
        Ok(docker)
    }

    /// A running container of the service (of the project, if the source has one), or
    /// the running container of that name; the first by name when there are replicas.
    async fn container(&self, docker: &Docker) -> Result<String, String> {
        let service = &self.spec.service;
        let mut labels = vec![format!("com.docker.compose.service={service}")];
        if let Some(project) = &self.project {
            labels.push(format!("com.docker.compose.project={project}"));
        }
        let list = |filters: HashMap<String, Vec<String>>| async move {
            let options = ListContainersOptions {
                all: false,
                filters: Some(filters),
                ..Default::default()
            };
            docker.list_containers(Some(options)).await
        };
        let by_label = list(HashMap::from([("label".to_string(), labels)]))
            .await
            .map_err(|e| e.to_string())?;
        let mut names: Vec<String> = by_label
            .iter()
            .filter_map(|c| c.names.as_ref()?.first().cloned())
            .collect();
        if names.is_empty() {
            let by_name = list(HashMap::from([(
                "name".to_string(),
                vec![format!("^/{service}$")],
            )]))
            .await
            .map_err(|e| e.to_string())?;
            names = by_name
                .iter()
                .filter_map(|c| c.names.as_ref()?.first().cloned())
                .collect();
        }
        names.sort();
        names
            .first()
            .map(|n| n.trim_start_matches('/').to_string())
            .ok_or_else(|| {
                format!(
                    "no running container of {service}{}",
                    self.project
                        .as_deref()
                        .map(|p| format!(" in compose project {p}"))
                        .unwrap_or_default()
                )
            })
    }

    async fn run(&self) -> Result<Ran, String> {
        let docker = match self.docker().await {
            Ok(docker) => docker,
            Err(e) => return Err(e),
        };
        let result = self.run_with(&docker).await;
        if result.is_err() {
            // The next run connects again (an engine that restarted, a lost forward).
            *self.client.lock().await = None;
        }
        result
    }

    async fn run_with(&self, docker: &Docker) -> Result<Ran, String> {
        let container = self.container(docker).await?;
        let created = docker
            .create_exec(
                &container,
                CreateExecOptions {
                    cmd: Some(self.spec.command.clone()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| format!("in {container}: {e}"))?;
        let started = Instant::now();
        let output = docker
            .start_exec(
                &created.id,
                Some(StartExecOptions {
                    detach: false,
                    tty: false,
                    output_capacity: None,
                }),
            )
            .await
            .map_err(|e| format!("in {container}: {e}"))?;
        let StartExecResults::Attached { mut output, .. } = output else {
            return Err(format!(
                "in {container}: the engine did not attach the output"
            ));
        };
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let read = async {
            while let Some(item) = output.next().await {
                match item {
                    Ok(bollard::container::LogOutput::StdErr { message }) => {
                        if stderr.len() < MAX_OUTPUT {
                            stderr.extend_from_slice(&message);
                        }
                    }
                    Ok(other) => {
                        if stdout.len() < MAX_OUTPUT {
                            stdout.extend_from_slice(&other.into_bytes());
                        }
                    }
                    Err(e) => return Err(format!("in {container}: the output broke off: {e}")),
                }
            }
            Ok(())
        };
        match tokio::time::timeout(self.spec.timeout, read).await {
            Ok(result) => result?,
            Err(_) => {
                let stopped = self.stop(docker, &created.id).await;
                return Err(format!(
                    "in {container}: still running after {}, {stopped}",
                    humantime::format_duration(self.spec.timeout)
                ));
            }
        }
        // The stream ends as the process does; the exit code may take a moment to show.
        let mut exit = None;
        while started.elapsed() < self.spec.timeout + Duration::from_secs(2) {
            let inspect = docker
                .inspect_exec(&created.id)
                .await
                .map_err(|e| format!("in {container}: {e}"))?;
            if inspect.running != Some(true) {
                exit = inspect.exit_code;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Ran {
            container,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            exit,
        })
    }

    /// Kills a run that outlived its timeout, by the host PID the engine gives for it; says
    /// what became of it.
    async fn stop(&self, docker: &Docker, exec: &str) -> String {
        let pid = match docker.inspect_exec(exec).await {
            Ok(inspect) => inspect.pid.filter(|p| *p > 0),
            Err(e) => return format!("and the engine did not say which process it is ({e})"),
        };
        let Some(pid) = pid else {
            return "and the engine did not say which process it is".into();
        };
        let killed = match &self.place.remote {
            None => nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            )
            .map_err(|e| e.to_string()),
            Some(transport) => match transport.exec(&["kill", "-9", &pid.to_string()]).await {
                Ok(out) if out.success() => Ok(()),
                Ok(out) => Err(out.stderr_text().trim().to_string()),
                Err(e) => Err(e.to_string()),
            },
        };
        match killed {
            Ok(()) => format!("stopped (process {pid} killed)"),
            Err(e) => format!("and could not be stopped (process {pid}: {e})"),
        }
    }

    /// The figure from a finished run.
    fn read(&self, ran: &Ran) -> Reading {
        let (source, spec) = (&self.source, &self.spec);
        let how = extract::Extraction {
            regex: spec.regex.as_deref(),
            field: spec.field.as_deref(),
            unit: &spec.unit,
        };
        let finished = extract::Ran {
            stdout: &ran.stdout,
            stderr: &ran.stderr,
            exit: ran.exit,
        };
        let detail = format!("in {}", ran.container);
        extract::read(
            figure_id(source, spec),
            figure_name(spec),
            &how,
            &finished,
            &detail,
        )
        .unwrap_or_else(|e| failed(source, spec, &e))
    }
}
