//! `[[docker.NAME.exec]]`: a command run inside a compose service's container through the
//! engine's exec API (the arguments go to the container as they are, through no shell of
//! ours), on its own interval, with a timeout; its output read into one figure.
//!
//! Each exec runs in a task of its own, so a slow command never holds up the Containers
//! pane: a poll of the Docker source hands in the figures of the runs that finished and
//! starts the runs that are due. A run still going at its timeout is stopped (the engine
//! has no call for that, so its process is killed by its host PID, on the engine's host)
//! and its figure says so.

use super::{DEFAULT_SOCKET, REMOTE_SOCKET, connect};
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
        let (docker, forward) = match &self.place.remote {
            Some(transport) => {
                let forward = transport
                    .forward_unix(REMOTE_SOCKET)
                    .await
                    .map_err(|e| format!("cannot forward {REMOTE_SOCKET}: {e}"))?;
                let docker = connect(&forward.docker_host(), true)
                    .await
                    .map_err(|e| e.to_string())?;
                (docker, Some(forward))
            }
            None => {
                let (address, explicit) = match &self.place.address {
                    Some(address) => (address.clone(), true),
                    None => (super::engine_address(), false),
                };
                let docker = connect(&address, explicit).await.map_err(|e| {
                    format!(
                        "cannot reach the engine at {}: {e}",
                        if address.is_empty() {
                            DEFAULT_SOCKET
                        } else {
                            &address
                        }
                    )
                })?;
                (docker, None)
            }
        };
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
        let (id, name) = (figure_id(source, spec), figure_name(spec));
        let detail = format!("in {}", ran.container);
        let extracting = spec.regex.is_some() || spec.field.is_some();
        if !extracting {
            return match ran.exit {
                Some(code) => Reading::number(id, name, code as f64, &spec.unit)
                    .with_detail(format!("exit code, {detail}: {}", first_line(&ran.stdout))),
                None => failed(
                    source,
                    spec,
                    &format!("{detail}: the engine gave no exit code"),
                ),
            };
        }
        if let Some(code) = ran.exit.filter(|c| *c != 0) {
            let why = first_line(if ran.stderr.trim().is_empty() {
                &ran.stdout
            } else {
                &ran.stderr
            });
            return failed(source, spec, &format!("{detail}: exit code {code}: {why}"));
        }
        let value = match (&spec.regex, &spec.field) {
            (Some(pattern), _) => match regex::Regex::new(pattern) {
                Err(e) => Err(format!("regex {pattern:?}: {e}")),
                Ok(re) => re
                    .captures(&ran.stdout)
                    .map(|c| {
                        c.get(1)
                            .or_else(|| c.get(0))
                            .map_or(String::new(), |m| m.as_str().to_string())
                    })
                    .ok_or_else(|| {
                        format!(
                            "no match of /{pattern}/ in what it printed: {}",
                            first_line(&ran.stdout)
                        )
                    }),
            },
            (None, Some(field)) => field_value(&ran.stdout, field).ok_or_else(|| {
                format!(
                    "no field {field:?} in what it printed: {}",
                    first_line(&ran.stdout)
                )
            }),
            (None, None) => Err("nothing to read".into()),
        };
        match value {
            Ok(text) => match text.trim().parse::<f64>() {
                Ok(n) if n.is_finite() => Reading::number(id, name, n, &spec.unit),
                _ => Reading::text(id, name, text.trim()),
            }
            .with_detail(detail),
            Err(e) => failed(source, spec, &format!("{detail}: {e}")),
        }
    }
}

/// The value of `field` in a command's output: a dotted path into JSON (`stats.hits`,
/// `items.0.count`), or the first `field: value` / `field=value` line (`key:value` as
/// `redis-cli info` prints, `KEY=value` as an env dump).
pub fn field_value(output: &str, field: &str) -> Option<String> {
    let trimmed = output.trim_start();
    if (trimmed.starts_with('{') || trimmed.starts_with('['))
        && let Ok(json) = serde_json::from_str::<serde_json::Value>(trimmed)
    {
        let mut at = &json;
        for part in field.split('.') {
            at = match at {
                serde_json::Value::Object(map) => map.get(part)?,
                serde_json::Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        return Some(match at {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        });
    }
    output.lines().find_map(|line| {
        let line = line.trim();
        let (key, value) = line
            .split_once(':')
            .filter(|(k, _)| !k.contains('='))
            .or_else(|| line.split_once('='))?;
        (key.trim() == field).then(|| value.trim().to_string())
    })
}

fn first_line(text: &str) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let line = line.trim();
    if line.is_empty() {
        "(nothing)".into()
    } else if line.chars().count() > 120 {
        format!("{}…", line.chars().take(120).collect::<String>())
    } else {
        line.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::field_value;

    #[test]
    fn fields_of_key_value_lines_and_json() {
        let info = "# Stats\r\nkeyspace_hits:42\r\nkeyspace_misses:8\r\n";
        assert_eq!(field_value(info, "keyspace_misses").as_deref(), Some("8"));
        assert_eq!(field_value("A=1\nB = two\n", "B").as_deref(), Some("two"));
        let json = r#"{"stats": {"hits": 7, "name": "x"}, "list": [{"n": 3}]}"#;
        assert_eq!(field_value(json, "stats.hits").as_deref(), Some("7"));
        assert_eq!(field_value(json, "stats.name").as_deref(), Some("x"));
        assert_eq!(field_value(json, "list.0.n").as_deref(), Some("3"));
        assert_eq!(field_value(json, "stats.none"), None);
        assert_eq!(
            field_value("url=http://x:1\n", "url").as_deref(),
            Some("http://x:1")
        );
    }
}
