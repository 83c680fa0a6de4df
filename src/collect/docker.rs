//! The Containers pane's source: one Docker engine through its API (bollard).
//!
//! Collection is event driven, as `docker stats` itself is, so that watching many
//! containers stays cheap:
//! - one background task per engine, started on the first poll, lists the containers
//!   once (all of them, stopped ones too) and then follows `/events` (type container);
//!   a container is inspected again only when an event says it changed;
//! - every running container has one streaming stats subscription, opened when it starts
//!   and dropped when it stops;
//! - `poll()` only copies the shared snapshot;
//! - the container zoomed in the Containers pane (told by [`crate::collect::OnScreen`])
//!   has its last log lines followed while it stays zoomed (see `logtail`).
//!
//! When the engine goes away the task reconnects with backoff (1 s doubling to 30 s) and
//! subscribes again; the last rows stay on screen with the error, never an empty list.
//!
//! A remote engine is reached through its host's SSH connection: a local socket forwarded
//! to the host's `/var/run/docker.sock` (`direct-streamlocal`), kept for the collector's
//! life; bollard talks to it as to a local engine. While the host is down the pane says so
//! ("ssh prod: connection refused, retrying in 4s"), and the engine is reached again as
//! soon as the host reconnects.
//!
//! Figures agree with `docker stats` (see the pure functions [`cpu_percent`],
//! [`memory_used`], [`network_totals`], [`block_io`]): CPU % is the container's CPU time
//! delta over the host's, times the online CPUs (100% = one core); memory is usage minus
//! the inactive page cache.

pub(crate) mod address;
mod exec;
mod logtail;

use crate::collect::{Collector, OnScreen, Reach, ScreenWatch, health};
use crate::config::DockerSource;
use crate::model::backoff::Backoff;
use crate::model::figure::{Reading, format_bytes};
use crate::model::rule::{Priority, Rule, Threshold};
use crate::model::update::{ContainerLogTail, ContainerRow, ServiceStatus, SourceHealth, Update};
use crate::transport::{HostStatus, Transport, UnixForward};
use bollard::models::{
    ContainerInspectResponse, ContainerMemoryStats, ContainerStatsResponse, EventMessage,
};
use bollard::query_parameters::{EventsOptions, ListContainersOptions, StatsOptions};
use bollard::{ClientVersion, Docker};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::future::BoxFuture;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub(crate) const PROJECT_LABEL: &str = "com.docker.compose.project";
pub(crate) const SERVICE_LABEL: &str = "com.docker.compose.service";
pub(crate) const NUMBER_LABEL: &str = "com.docker.compose.container-number";

/// How long a container may stay `created` or `restarting` before that counts as down.
pub(crate) const START_GRACE: Duration = crate::model::update::CONTAINER_START_GRACE;

/// Where the engine listens when DOCKER_HOST is not set.
const DEFAULT_SOCKET: &str = "unix:///var/run/docker.sock";

/// Where a remote host's engine listens.
pub(crate) const REMOTE_SOCKET: &str = "/var/run/docker.sock";

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Bound on one API call (connect, list, inspect); bollard's own default is two minutes.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often stats subscriptions that ended on their own are looked at again.
const STREAM_CHECK: Duration = Duration::from_secs(10);
/// How long the first poll waits for the engine to answer (so `check` sees figures).
const FIRST_LIST_WAIT: Duration = Duration::from_secs(5);
/// How long the first poll waits for a CPU figure of every running container.
const FIRST_STATS_WAIT: Duration = Duration::from_secs(3);

pub struct DockerCollector {
    name: String,
    interval: Duration,
    reach: Reach,
    selection: Selection,
    /// `None`: DOCKER_HOST or the default socket.
    address: Option<String>,
    engine: Option<Engine>,
    /// What the dashboard shows (which container is zoomed); never changes without one.
    screen: ScreenWatch,
    /// The generation of the log tail last sent, so an unchanged tail is not sent again.
    logs_sent: u64,
    /// The figure subjects and Services rows of the last poll: those missing from the next
    /// one are removed (see [`Update::Removed`]).
    sent: Shown,
    /// `[[docker.NAME.exec]]`: commands run in containers, each on its own interval.
    execs: exec::Execs,
    /// Polled once (`watchpost check`): every exec runs, and is waited for.
    one_shot: bool,
}

impl DockerCollector {
    /// The engine of this machine (a remote `host` reports that it needs a transport).
    pub fn new(name: &str, source: &DockerSource) -> Self {
        Self::on(
            name,
            source,
            crate::collect::reach_without_pool(&source.host),
        )
    }

    /// The engine of the host behind `reach` (from the pool: [`crate::collect::reach`]).
    pub fn on(name: &str, source: &DockerSource, reach: Reach) -> Self {
        DockerCollector {
            name: name.to_string(),
            interval: source.interval,
            reach,
            selection: Selection {
                project: source.project.clone().filter(|p| !p.trim().is_empty()),
                services: source.services.clone(),
                by_name: false,
            },
            address: None,
            engine: None,
            screen: watch::channel(OnScreen::default()).1,
            logs_sent: 0,
            sent: Shown::default(),
            execs: exec::Execs::new(
                name,
                source.project.clone().filter(|p| !p.trim().is_empty()),
                &source.exec,
            ),
            one_shot: false,
        }
    }

    /// Talks to the engine at `address` (`unix:///path` or `tcp://host:port`) instead of
    /// DOCKER_HOST or the default socket; the tests use it to put a breakable proxy in
    /// front of the engine.
    pub fn with_engine_address(mut self, address: &str) -> Self {
        self.address = Some(address.to_string());
        self
    }
}

impl Collector for DockerCollector {
    fn name(&self) -> &str {
        &self.name
    }
    fn panes(&self) -> &'static [crate::model::pane::PaneId] {
        use crate::model::pane::PaneId::{Containers, Figures, Services};
        // The figures of its execs are listed in the Figures pane.
        if self.execs.is_empty() {
            &[Containers, Services]
        } else {
            &[Containers, Services, Figures]
        }
    }
    fn interval(&self) -> Duration {
        self.interval
    }
    fn watch_screen(&mut self, screen: ScreenWatch) {
        self.screen = screen;
    }
    fn poll(&mut self) -> BoxFuture<'_, Vec<Update>> {
        Box::pin(async move {
            let remote = match crate::collect::resolve(&self.name, &self.reach) {
                Ok(remote) => remote,
                Err(updates) => return updates,
            };
            if self.engine.is_none() {
                let engine = Engine::start(
                    &self.name,
                    self.address.clone(),
                    self.selection.clone(),
                    remote.clone(),
                    self.screen.clone(),
                    None,
                );
                engine.wait_first(FIRST_LIST_WAIT, FIRST_STATS_WAIT).await;
                self.engine = Some(engine);
            }
            let Some(engine) = &self.engine else {
                return Vec::new();
            };
            let (status, rows, logs) = {
                let shared = lock(&engine.shared);
                let logs = (shared.logs_generation != self.logs_sent)
                    .then(|| shared.logs.clone())
                    .flatten();
                self.logs_sent = shared.logs_generation;
                (
                    shared.status.clone(),
                    shared.containers.values().cloned().collect::<Vec<_>>(),
                    logs,
                )
            };
            let mut updates = match status {
                // Nothing is known yet; the pane keeps saying "connecting…".
                EngineStatus::Connecting => Vec::new(),
                // The last rows stay in the state with their age; only the error is news.
                EngineStatus::Down { message, retry } => vec![health(
                    &self.name,
                    SourceHealth::Error {
                        message,
                        retry_in_secs: retry.map(|r| r.as_secs().max(1)),
                    },
                )],
                EngineStatus::Up => {
                    let (mut updates, shown) = project_updates(
                        &self.name,
                        rows,
                        &self.selection.services,
                        self.selection.project.as_deref(),
                        Utc::now(),
                    );
                    let subjects: Vec<String> = self
                        .sent
                        .subjects
                        .difference(&shown.subjects)
                        .cloned()
                        .collect();
                    let services: Vec<String> = self
                        .sent
                        .services
                        .difference(&shown.services)
                        .cloned()
                        .collect();
                    if !subjects.is_empty() || !services.is_empty() {
                        updates.push(Update::Removed {
                            source: self.name.clone(),
                            subjects,
                            services,
                            reason: "container removed".into(),
                        });
                    }
                    self.sent = shown;
                    updates
                }
            };
            updates.extend(logs.map(Update::ContainerLogs));
            if !self.execs.is_empty() {
                let place = exec::Place {
                    address: self.address.clone(),
                    remote,
                };
                let readings = self.execs.poll(&place, self.one_shot).await;
                if !readings.is_empty() {
                    updates.push(Update::Readings {
                        source: self.name.clone(),
                        readings,
                    });
                }
            }
            updates
        })
    }
    fn one_shot(&mut self) {
        self.one_shot = true;
    }
}

/// The logs of a log source's containers (`[logs.NAME] docker = [...]`): compose services
/// or container names, of `project` if given, on the engine this machine reaches (or
/// `address`), or on `remote`'s through its forwarded socket. The same engine task as the
/// Containers pane's (connection, backoff, `/events`), following each selected running
/// container's log from its last `tail` lines, and a restarted or new container's from
/// the last line delivered; a stopped container's last run, if it was never read, is read
/// back once by the same rules. Events come as a process source's do.
pub(crate) fn follow_logs(
    source: &str,
    names: Vec<String>,
    project: Option<String>,
    tail: usize,
    start: crate::collect::logs::source::Start,
    remote: Option<Transport>,
    address: Option<String>,
) -> crate::collect::logs::source::Feed {
    let selection = Selection {
        project: project.filter(|p| !p.trim().is_empty()),
        services: names,
        by_name: true,
    };
    let source = source.to_string();
    let idle = format!(
        "no running container of {}{}",
        selection.services.join(", "),
        selection
            .project
            .as_deref()
            .map(|p| format!(" in compose project {p}"))
            .unwrap_or_default()
    );
    crate::collect::logs::source::Feed::from_producer(move |outbox| async move {
        let feed = Arc::new(logtail::LogFeed::new(outbox, tail, start));
        let screen = watch::channel(OnScreen::default()).1;
        let engine = Engine::start(
            &source,
            address,
            selection,
            remote,
            screen,
            Some(feed.clone()),
        );
        // The engine's status, told once per change, and whether any container runs.
        let mut ready = engine.ready.clone();
        let mut running = feed.watch_running();
        // Read once: how many reads are still under way (`None` before the first listing).
        let mut reads = feed.watch_one_shot_reads();
        let mut told = EngineStatus::Connecting;
        loop {
            tokio::select! {
                changed = ready.changed() => if changed.is_err() { return },
                done = async { reads.wait_for(|n| *n == Some(0)).await.is_ok() },
                    if start.one_shot && told == EngineStatus::Up => {
                    if !done {
                        return;
                    }
                    // Every selected container's log is read: the one-shot run ends here.
                    let ended = crate::collect::logs::source::Event::Down {
                        message: "docker ended".to_string(),
                        retry: FIRST_BACKOFF,
                    };
                    feed.send(ended).await;
                    return;
                }
                changed = running.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let any = *running.borrow_and_update();
                    let problem = (!any).then(|| idle.clone());
                    if !feed.send(crate::collect::logs::source::Event::Lasting(problem)).await {
                        return;
                    }
                    continue;
                }
            }
            let status = lock(&engine.shared).status.clone();
            if status == told {
                continue;
            }
            let event = match &status {
                EngineStatus::Connecting => continue,
                EngineStatus::Up => crate::collect::logs::source::Event::Started,
                EngineStatus::Down { message, retry } => {
                    crate::collect::logs::source::Event::Down {
                        message: message.clone(),
                        retry: retry.unwrap_or(FIRST_BACKOFF),
                    }
                }
            };
            if !feed.send(event).await {
                return;
            }
            told = status;
        }
    })
}

/// How the engine connection stands.
#[derive(Clone, Debug, PartialEq)]
enum EngineStatus {
    Connecting,
    Up,
    /// `retry`: the engine's own backoff; `None` when the message says it (a host's line).
    Down {
        message: String,
        retry: Option<Duration>,
    },
}

/// What the background task knows, read by `poll()`.
struct Shared {
    status: EngineStatus,
    /// By container id.
    containers: BTreeMap<String, ContainerRow>,
    /// The zoomed container's last log lines, while it is zoomed.
    logs: Option<ContainerLogTail>,
    /// Bumped at every change of `logs`.
    logs_generation: u64,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A panic elsewhere must not take the figures with it.
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// A task that is aborted when its handle is dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The background side of a collector: the task and what it shares.
struct Engine {
    shared: Arc<Mutex<Shared>>,
    /// Bumped each time a listing completed or the connection failed.
    ready: watch::Receiver<u64>,
    _task: AbortOnDrop,
}

impl Engine {
    fn start(
        source: &str,
        address: Option<String>,
        selection: Selection,
        remote: Option<Transport>,
        screen: ScreenWatch,
        feed: Option<Arc<logtail::LogFeed>>,
    ) -> Engine {
        let shared = Arc::new(Mutex::new(Shared {
            status: EngineStatus::Connecting,
            containers: BTreeMap::new(),
            logs: None,
            logs_generation: 0,
        }));
        let (tx, rx) = watch::channel(0);
        let session = SessionSetup {
            source: source.to_string(),
            selection,
            screen,
            shared: shared.clone(),
            ready: tx,
            feed,
        };
        let task = match remote {
            Some(transport) => tokio::spawn(run_remote_engine(transport, session)),
            None => tokio::spawn(run_engine(address, session)),
        };
        Engine {
            shared,
            ready: rx,
            _task: AbortOnDrop(task),
        }
    }

    /// Waits (boundedly) for the first answer of the engine and the first CPU figures, so
    /// that a single poll (`watchpost check`) reports real figures.
    async fn wait_first(&self, list_wait: Duration, stats_wait: Duration) {
        let mut ready = self.ready.clone();
        if tokio::time::timeout(list_wait, ready.wait_for(|g| *g > 0))
            .await
            .is_err()
        {
            return;
        }
        let deadline = tokio::time::Instant::now() + stats_wait;
        while tokio::time::Instant::now() < deadline {
            let done = {
                let shared = lock(&self.shared);
                shared.status != EngineStatus::Up
                    || shared
                        .containers
                        .values()
                        .filter(|r| r.state == "running")
                        .all(|r| r.cpu_pct.is_some())
            };
            if done {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The engine's address as the user would recognise it: DOCKER_HOST or the default socket.
fn engine_address() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_SOCKET.to_string())
}

/// A client of the engine a source reaches: `remote`'s, through its socket forwarded over
/// the host's SSH connection (the forward, kept with the client, lives as long as it), or
/// the one at `address` here (DOCKER_HOST or the default socket when `None`). For the
/// sources that ask the engine now and then (exec figures, a database's container).
pub(crate) async fn engine_client(
    remote: Option<&Transport>,
    address: Option<&str>,
) -> Result<(Docker, Option<UnixForward>), String> {
    match remote {
        Some(transport) => {
            let forward = transport
                .forward_unix(REMOTE_SOCKET)
                .await
                .map_err(|e| format!("cannot forward {REMOTE_SOCKET}: {e}"))?;
            let docker = connect(&forward.docker_host(), true)
                .await
                .map_err(|e| format!("cannot reach the engine at {REMOTE_SOCKET}: {e}"))?;
            Ok((docker, Some(forward)))
        }
        None => {
            let (address, explicit) = match address {
                Some(address) => (address.to_string(), true),
                None => (engine_address(), false),
            };
            let docker = connect(&address, explicit).await.map_err(|e| {
                let shown = if address.is_empty() {
                    DEFAULT_SOCKET
                } else {
                    &address
                };
                format!("cannot reach the engine at {shown}: {e}")
            })?;
            Ok((docker, None))
        }
    }
}

/// Connects, then settles on an API version the daemon speaks. `explicit` is an address
/// given by the caller; otherwise bollard's defaults apply (DOCKER_HOST or the socket).
async fn connect(address: &str, explicit: bool) -> Result<Docker, EngineError> {
    let local = address.starts_with("unix://");
    let timeout = REQUEST_TIMEOUT.as_secs() * 12;
    let docker = match (explicit, local) {
        (false, true) => Docker::connect_with_local_defaults(),
        (false, false) => Docker::connect_with_defaults(),
        (true, true) => Docker::connect_with_local(address, timeout, bollard::API_DEFAULT_VERSION),
        (true, false) => Docker::connect_with_http(address, timeout, bollard::API_DEFAULT_VERSION),
    }?;
    match docker.clone().negotiate_version().await {
        Ok(docker) => Ok(docker),
        Err(e) => {
            // bollard asks for its own (newest) API version first; an older daemon answers
            // "client version 1.53 is too new. Maximum supported API version is 1.41".
            let Some(version) = max_api_version(&e.to_string()) else {
                return Err(e.into());
            };
            let docker = if local {
                Docker::connect_with_local(address, timeout, &version)
            } else {
                Docker::connect_with_http(address, timeout, &version)
            }?;
            docker.version().await?;
            Ok(docker)
        }
    }
}

/// Reads "Maximum supported API version is 1.41" out of a daemon's refusal.
fn max_api_version(message: &str) -> Option<ClientVersion> {
    let rest = message.split("Maximum supported API version is").nth(1)?;
    let version = rest
        .trim()
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()?;
    let (major, minor) = version.split_once('.')?;
    Some(ClientVersion {
        major_version: major.parse().ok()?,
        minor_version: minor.parse().ok()?,
    })
}

/// Why the engine could not be reached or read. `Display` is the Containers pane's text.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EngineError {
    #[error("{}", describe_error(.0))]
    Api(#[from] bollard::errors::Error),
    #[error("inspecting container {0} took too long")]
    InspectTimedOut(String),
}

/// A short reason from a bollard error, with the io error at the bottom of the chain.
fn describe_error(error: &bollard::errors::Error) -> String {
    use bollard::errors::Error as E;
    match error {
        E::SocketNotFoundError(path) => {
            return format!("no socket at {path} (is Docker installed and running?)");
        }
        E::DockerResponseServerError {
            status_code,
            message,
        } => {
            return format!("the engine answered {status_code}: {}", message.trim());
        }
        E::RequestTimeoutError => return "the engine did not answer in time".into(),
        _ => {}
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    let mut innermost = error.to_string();
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::NotFound => {
                    "no such socket (is Docker installed and running?)".into()
                }
                std::io::ErrorKind::PermissionDenied => {
                    "permission denied (is this user in the docker group?)".into()
                }
                std::io::ErrorKind::ConnectionRefused => {
                    "connection refused (is the daemon running?)".into()
                }
                _ => io.to_string(),
            };
        }
        innermost = e.to_string();
        source = e.source();
    }
    innermost
}

/// Keeps one engine connection alive for as long as the collector lives.
async fn run_engine(explicit: Option<String>, setup: SessionSetup) {
    let SessionSetup { shared, ready, .. } = &setup;
    let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
    loop {
        // Read again on every attempt, as the docker CLI would.
        let address = explicit.clone().unwrap_or_else(engine_address);
        let (was_up, reason) = session(&address, explicit.is_some(), &setup).await;
        if was_up {
            backoff.reset();
        }
        let wait = backoff.next_wait();
        let message = if was_up {
            format!("docker: lost the engine at {address}: {reason}")
        } else {
            format!("docker: cannot reach the engine at {address}: {reason}")
        };
        lock(shared).status = EngineStatus::Down {
            message,
            retry: Some(wait),
        };
        ready.send_modify(|g| *g += 1);
        tokio::time::sleep(wait).await;
    }
}

/// [`run_engine`] for an engine on an SSH host: one forwarded socket for the collector's
/// life; while the host is down its own line is the status; a reconnect of the host cuts
/// the backoff short.
async fn run_remote_engine(transport: Transport, setup: SessionSetup) {
    let SessionSetup { shared, ready, .. } = &setup;
    let host = transport.name().to_string();
    let label = format!("{REMOTE_SOCKET} on {host}");
    let down = |message: String, retry: Option<Duration>| {
        lock(shared).status = EngineStatus::Down { message, retry };
        ready.send_modify(|g| *g += 1);
    };
    // The forward is only a local socket and a registration with the host's thread; it
    // survives reconnects of the host.
    let forward: UnixForward = loop {
        match transport.forward_unix(REMOTE_SOCKET).await {
            Ok(forward) => break forward,
            Err(e) => {
                down(
                    format!("docker: cannot forward {label}: {e}"),
                    Some(MAX_BACKOFF),
                );
                tokio::time::sleep(MAX_BACKOFF).await;
            }
        }
    };
    let address = forward.docker_host();
    let mut status = transport.status();
    let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
    loop {
        // Wait for the host, saying so (the countdown refreshed every second).
        loop {
            let now = status.borrow_and_update().clone();
            if now.is_up() {
                break;
            }
            // Before the first connection there is nothing to show but "connecting…".
            if !matches!(now, HostStatus::Connecting { attempt: 1 }) {
                down(now.describe(&host), None);
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), status.changed()).await;
        }
        let (was_up, reason) = session(&address, true, &setup).await;
        if was_up {
            backoff.reset();
        }
        let host_now = status.borrow().clone();
        if !host_now.is_up() {
            // The host went away under the engine: its line says it all.
            down(host_now.describe(&host), None);
            continue;
        }
        let message = if was_up {
            format!("docker: lost the engine at {label}: {reason}")
        } else {
            format!("docker: cannot reach the engine at {label}: {reason}")
        };
        let wait = backoff.next_wait();
        down(message, Some(wait));
        // A reconnect of the host (it went down and up meanwhile) retries at once.
        let mut watch = transport.status();
        watch.borrow_and_update();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = async {
                loop {
                    if watch.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                    if watch.borrow().is_up() {
                        return;
                    }
                }
            } => {}
        }
    }
}

/// Which containers of the engine the source watches.
#[derive(Clone, Debug, Default)]
struct Selection {
    /// Only this compose project's (filtered by the engine, label `com.docker.compose.project`).
    project: Option<String>,
    /// Only these compose services (label `com.docker.compose.service`); empty: all.
    services: Vec<String>,
    /// `services` may also be container names (a log source's `docker = [...]`).
    by_name: bool,
}

impl Selection {
    fn wants(&self, row: &ContainerRow) -> bool {
        self.project.as_ref().is_none_or(|p| *p == row.project)
            && (self.services.is_empty()
                || self.services.contains(&row.service)
                || (self.by_name && self.services.contains(&row.name)))
    }
}

/// What every session of one engine task works with.
struct SessionSetup {
    /// The collector's name, as the screen names its containers.
    source: String,
    selection: Selection,
    screen: ScreenWatch,
    shared: Arc<Mutex<Shared>>,
    /// Bumped each time a listing completed or the connection failed.
    ready: watch::Sender<u64>,
    /// A log source's: the selected containers' logs are followed into it instead of
    /// their stats.
    feed: Option<Arc<logtail::LogFeed>>,
}

/// One connection: list, subscribe, follow. Returns whether the engine answered at all,
/// and why the session ended.
async fn session(address: &str, explicit: bool, setup: &SessionSetup) -> (bool, String) {
    let (shared, ready) = (&setup.shared, &setup.ready);
    let selection = &setup.selection;
    let project = selection.project.as_deref();
    let docker = match tokio::time::timeout(REQUEST_TIMEOUT, connect(address, explicit)).await {
        Ok(Ok(docker)) => docker,
        Ok(Err(e)) => return (false, e.to_string()),
        Err(_) => return (false, "the engine did not answer in time".into()),
    };
    // Events from one second before the listing are replayed, so a change that happens
    // while the list is read is not missed.
    let since = (Utc::now().timestamp() - 1).to_string();
    let mut filters = label_filter(project);
    filters.insert("type".to_string(), vec!["container".to_string()]);
    let mut events = docker
        .events(Some(EventsOptions {
            since: Some(since),
            until: None,
            filters: Some(filters),
        }))
        .boxed();

    let rows = match tokio::time::timeout(REQUEST_TIMEOUT * 3, list_rows(&docker, selection)).await
    {
        Ok(Ok(rows)) => rows,
        Ok(Err(e)) => return (false, e.to_string()),
        Err(_) => return (false, "listing the containers took too long".into()),
    };
    {
        let mut shared = lock(shared);
        let old = std::mem::take(&mut shared.containers);
        for mut row in rows {
            if let Some(previous) = old.get(&row.id) {
                keep_stats(&mut row, previous);
            }
            shared.containers.insert(row.id.clone(), row);
        }
        shared.status = EngineStatus::Up;
    }
    ready.send_modify(|g| *g += 1);

    let mut streams: HashMap<String, AbortOnDrop> = HashMap::new();
    let mut follows = HashMap::new();
    let reconcile = |streams: &mut HashMap<String, AbortOnDrop>,
                     follows: &mut HashMap<String, logtail::Follow>| {
        match &setup.feed {
            Some(feed) => logtail::reconcile_feed(&docker, shared, feed, follows),
            None => reconcile_streams(&docker, shared, streams),
        }
    };
    reconcile(&mut streams, &mut follows);
    let mut screen = setup.screen.clone();
    // Without a dashboard behind it (`check`, tests) the screen never changes.
    let mut screen_open = true;
    let mut tail = None;
    let follow_zoomed = |tail: &mut Option<logtail::Tail>, screen: &ScreenWatch| {
        logtail::reconcile_tail(&docker, &setup.source, screen, shared, tail)
    };
    follow_zoomed(&mut tail, &screen);
    let mut check = tokio::time::interval(STREAM_CHECK);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(event)) => {
                    if let Err(e) = handle_event(&docker, selection, shared, &event).await {
                        return (true, e.to_string());
                    }
                    reconcile(&mut streams, &mut follows);
                    follow_zoomed(&mut tail, &screen);
                }
                Some(Err(e)) => return (true, describe_error(&e)),
                None => return (true, "the event stream ended (daemon restarting?)".into()),
            },
            changed = screen.changed(), if screen_open => match changed {
                Ok(()) => follow_zoomed(&mut tail, &screen),
                Err(_) => screen_open = false,
            },
            _ = check.tick() => reconcile(&mut streams, &mut follows),
        }
    }
}

fn label_filter(project: Option<&str>) -> HashMap<String, Vec<String>> {
    let mut filters = HashMap::new();
    if let Some(project) = project {
        filters.insert(
            "label".to_string(),
            vec![format!("{PROJECT_LABEL}={project}")],
        );
    }
    filters
}

/// Lists every container (stopped ones too) and inspects each once.
async fn list_rows(
    docker: &Docker,
    selection: &Selection,
) -> Result<Vec<ContainerRow>, EngineError> {
    let options = ListContainersOptions {
        all: true,
        filters: Some(label_filter(selection.project.as_deref())),
        ..Default::default()
    };
    let list = docker.list_containers(Some(options)).await?;
    let mut rows = Vec::new();
    for summary in list {
        let Some(id) = summary.id else { continue };
        match docker.inspect_container(&id, None).await {
            Ok(inspect) => rows.extend(row_from_inspect(&inspect).filter(|r| selection.wants(r))),
            // Removed between the list and the inspect.
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(rows)
}

fn is_not_found(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Container events that change what the pane shows; exec_* (health probes), attach,
/// top and the like do not.
fn is_relevant(action: &str) -> bool {
    let verb = action.split(':').next().unwrap_or("").trim();
    matches!(
        verb,
        "create"
            | "start"
            | "restart"
            | "stop"
            | "die"
            | "pause"
            | "unpause"
            | "oom"
            | "rename"
            | "destroy"
            | "update"
            | "health_status"
    )
}

/// Re-inspects the one container an event is about.
async fn handle_event(
    docker: &Docker,
    selection: &Selection,
    shared: &Mutex<Shared>,
    event: &EventMessage,
) -> Result<(), EngineError> {
    let Some(action) = event.action.as_deref() else {
        return Ok(());
    };
    if !is_relevant(action) {
        return Ok(());
    }
    let Some(id) = event.actor.as_ref().and_then(|a| a.id.clone()) else {
        return Ok(());
    };
    if action == "destroy" {
        lock(shared).containers.remove(&id);
        return Ok(());
    }
    let inspect =
        match tokio::time::timeout(REQUEST_TIMEOUT, docker.inspect_container(&id, None)).await {
            Err(_) => return Err(EngineError::InspectTimedOut(id)),
            Ok(Err(e)) if is_not_found(&e) => {
                lock(shared).containers.remove(&id);
                return Ok(());
            }
            Ok(Err(e)) => return Err(e.into()),
            Ok(Ok(inspect)) => inspect,
        };
    let Some(mut row) = row_from_inspect(&inspect) else {
        return Ok(());
    };
    if !selection.wants(&row) {
        return Ok(());
    }
    let mut shared = lock(shared);
    if let Some(previous) = shared.containers.get(&id) {
        keep_stats(&mut row, previous);
    }
    shared.containers.insert(id, row);
    Ok(())
}

/// Carries the stats figures over a re-inspection, while the container runs.
fn keep_stats(row: &mut ContainerRow, previous: &ContainerRow) {
    if row.state != "running" {
        return;
    }
    row.cpu_pct = previous.cpu_pct;
    row.mem_bytes = previous.mem_bytes;
    row.mem_limit_bytes = previous.mem_limit_bytes;
    row.net_rx_bps = previous.net_rx_bps;
    row.net_tx_bps = previous.net_tx_bps;
    row.block_read_bytes = previous.block_read_bytes;
    row.block_write_bytes = previous.block_write_bytes;
}

/// One stats subscription per running container: opens the missing ones, drops the ones
/// of containers that stopped or went away.
fn reconcile_streams(
    docker: &Docker,
    shared: &Arc<Mutex<Shared>>,
    streams: &mut HashMap<String, AbortOnDrop>,
) {
    let running: Vec<String> = {
        let guard = lock(shared);
        guard
            .containers
            .values()
            .filter(|r| r.state == "running")
            .map(|r| r.id.clone())
            .collect()
    };
    streams.retain(|id, _| running.contains(id));
    for id in running {
        let alive = streams.get(&id).is_some_and(|s| !s.0.is_finished());
        if !alive {
            let task = tokio::spawn(follow_stats(docker.clone(), id.clone(), shared.clone()));
            streams.insert(id, AbortOnDrop(task));
        }
    }
}

/// Reads one container's stats stream (one sample a second) into its row.
async fn follow_stats(docker: Docker, id: String, shared: Arc<Mutex<Shared>>) {
    let mut stream = docker
        .stats(
            &id,
            Some(StatsOptions {
                stream: true,
                one_shot: false,
            }),
        )
        .boxed();
    let mut previous: Option<ContainerStatsResponse> = None;
    while let Some(Ok(sample)) = stream.next().await {
        // A stopping container's last sample is empty ("read": "0001-01-01…").
        if !is_real_sample(&sample) {
            continue;
        }
        let figures = StatsFigures::from_samples(&sample, previous.as_ref());
        {
            let mut shared = lock(&shared);
            let Some(row) = shared.containers.get_mut(&id) else {
                return;
            };
            if row.state != "running" {
                return;
            }
            figures.apply(row);
        }
        previous = Some(sample);
    }
}

fn is_real_sample(sample: &ContainerStatsResponse) -> bool {
    let read_ok = sample
        .read
        .as_deref()
        .is_some_and(|r| !r.starts_with("0001-"));
    read_ok && sample.memory_stats.as_ref().and_then(|m| m.usage).is_some()
}

/// A Containers row from `docker inspect`.
pub(crate) fn row_from_inspect(inspect: &ContainerInspectResponse) -> Option<ContainerRow> {
    let id = inspect.id.clone()?;
    let name = inspect
        .name
        .as_deref()
        .unwrap_or("")
        .trim_start_matches('/')
        .to_string();
    let labels = inspect.config.as_ref().and_then(|c| c.labels.as_ref());
    let label = |key: &str| labels.and_then(|l| l.get(key)).cloned().unwrap_or_default();
    let state = inspect.state.as_ref();
    let status = state
        .and_then(|s| s.status)
        .map(|s| s.to_string())
        .unwrap_or_else(|| "unknown".into());
    let health = state
        .and_then(|s| s.health.as_ref())
        .and_then(|h| h.status)
        .map(|h| h.to_string())
        .filter(|h| !h.is_empty() && h != "none")
        .unwrap_or_default();
    let started_at = state
        .and_then(|s| s.started_at.as_deref())
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        // Never started: the engine says "0001-01-01T00:00:00Z".
        .filter(|t| t.timestamp() > 0);
    let stamp = |t: Option<&str>| {
        t.and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .filter(|t| t.timestamp() > 0)
    };
    Some(ContainerRow {
        id,
        name,
        project: label(PROJECT_LABEL),
        service: label(SERVICE_LABEL),
        number: label(NUMBER_LABEL),
        state: status,
        health,
        started_at,
        created_at: stamp(inspect.created.as_deref()),
        finished_at: stamp(state.and_then(|s| s.finished_at.as_deref())),
        restarts: inspect.restart_count.unwrap_or(0).max(0) as u64,
        ..ContainerRow::default()
    })
}

/// What one stats sample says, in the units of the pane.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct StatsFigures {
    pub cpu_pct: Option<f64>,
    pub mem_bytes: Option<f64>,
    pub mem_limit_bytes: Option<f64>,
    pub net_rx_bps: Option<f64>,
    pub net_tx_bps: Option<f64>,
    pub block_read_bytes: Option<f64>,
    pub block_write_bytes: Option<f64>,
}

impl StatsFigures {
    /// Figures of `sample`; network rates need the previous sample of the same stream.
    pub(crate) fn from_samples(
        sample: &ContainerStatsResponse,
        previous: Option<&ContainerStatsResponse>,
    ) -> StatsFigures {
        let memory = sample.memory_stats.as_ref();
        let (rx_bps, tx_bps) = previous.and_then(|p| network_rates(p, sample)).unzip();
        let (read, write) = block_io(sample).unzip();
        StatsFigures {
            cpu_pct: cpu_percent(sample),
            mem_bytes: memory.and_then(memory_used).map(|b| b as f64),
            mem_limit_bytes: memory
                .and_then(|m| m.limit)
                .filter(|&l| l > 0)
                .map(|l| l as f64),
            net_rx_bps: rx_bps,
            net_tx_bps: tx_bps,
            block_read_bytes: read.map(|b| b as f64),
            block_write_bytes: write.map(|b| b as f64),
        }
    }

    fn apply(&self, row: &mut ContainerRow) {
        // The first sample of a stream has no CPU or network delta: keep the last ones.
        if self.cpu_pct.is_some() {
            row.cpu_pct = self.cpu_pct;
        }
        if self.net_rx_bps.is_some() {
            row.net_rx_bps = self.net_rx_bps;
            row.net_tx_bps = self.net_tx_bps;
        }
        row.mem_bytes = self.mem_bytes;
        row.mem_limit_bytes = self.mem_limit_bytes;
        row.block_read_bytes = self.block_read_bytes;
        row.block_write_bytes = self.block_write_bytes;
    }
}

/// CPU % as `docker stats` computes it: the container's CPU time delta over the host's,
/// times the online CPUs, times 100 (so 100% is one core). `None` until the sample has a
/// previous one to compare with (the first sample of a stream).
pub(crate) fn cpu_percent(sample: &ContainerStatsResponse) -> Option<f64> {
    let cpu = sample.cpu_stats.as_ref()?;
    let pre = sample.precpu_stats.as_ref()?;
    let usage = cpu.cpu_usage.as_ref()?;
    let total = usage.total_usage? as f64;
    let system = cpu.system_cpu_usage? as f64;
    let pre_system = pre.system_cpu_usage.filter(|&s| s > 0)? as f64;
    let pre_total = pre
        .cpu_usage
        .as_ref()
        .and_then(|u| u.total_usage)
        .unwrap_or(0) as f64;
    let online = match cpu.online_cpus {
        Some(n) if n > 0 => f64::from(n),
        _ => usage.percpu_usage.as_ref().map_or(0, Vec::len) as f64,
    };
    let cpu_delta = total - pre_total;
    let system_delta = system - pre_system;
    if system_delta > 0.0 && cpu_delta > 0.0 {
        Some(cpu_delta / system_delta * online * 100.0)
    } else {
        Some(0.0)
    }
}

/// Memory in use as `docker stats` shows it: usage minus the inactive page cache
/// (`total_inactive_file` on cgroup v1, `inactive_file` on cgroup v2).
pub(crate) fn memory_used(memory: &ContainerMemoryStats) -> Option<u64> {
    let usage = memory.usage?;
    let stats = memory.stats.as_ref();
    if let Some(&inactive) = stats.and_then(|s| s.get("total_inactive_file"))
        && inactive < usage
    {
        return Some(usage - inactive);
    }
    if let Some(&inactive) = stats.and_then(|s| s.get("inactive_file"))
        && inactive < usage
    {
        return Some(usage - inactive);
    }
    Some(usage)
}

/// Received and sent bytes, summed over every interface.
pub(crate) fn network_totals(sample: &ContainerStatsResponse) -> Option<(u64, u64)> {
    let networks = sample.networks.as_ref()?;
    let rx = networks.values().map(|n| n.rx_bytes.unwrap_or(0)).sum();
    let tx = networks.values().map(|n| n.tx_bytes.unwrap_or(0)).sum();
    Some((rx, tx))
}

/// Bytes per second received and sent between two samples of one stream, timed by the
/// samples' own `read` stamps. `None` if a counter went back (the container restarted).
pub(crate) fn network_rates(
    previous: &ContainerStatsResponse,
    current: &ContainerStatsResponse,
) -> Option<(f64, f64)> {
    let at = |s: &ContainerStatsResponse| {
        s.read
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    let seconds = (at(current)? - at(previous)?).num_microseconds()? as f64 / 1e6;
    if seconds <= 0.0 {
        return None;
    }
    let (rx0, tx0) = network_totals(previous)?;
    let (rx1, tx1) = network_totals(current)?;
    if rx1 < rx0 || tx1 < tx0 {
        return None;
    }
    Some(((rx1 - rx0) as f64 / seconds, (tx1 - tx0) as f64 / seconds))
}

/// Block I/O read and written since the container started, as `docker stats` sums
/// `io_service_bytes_recursive` ("Read"/"Write" on cgroup v1, "read"/"write" on v2).
pub(crate) fn block_io(sample: &ContainerStatsResponse) -> Option<(u64, u64)> {
    let entries = sample
        .blkio_stats
        .as_ref()?
        .io_service_bytes_recursive
        .as_ref()?;
    let mut read = 0u64;
    let mut write = 0u64;
    for entry in entries {
        let value = entry.value.unwrap_or(0);
        match entry.op.as_deref().and_then(|op| op.chars().next()) {
            Some('r' | 'R') => read = read.saturating_add(value),
            Some('w' | 'W') => write = write.saturating_add(value),
            _ => {}
        }
    }
    Some((read, write))
}

/// The figure key of each row: its compose service, or the container name when it has
/// none or when the service name is shared (replicas, or two projects with a "db").
/// Labels are any text, and ids travel to `check`'s output, the record and `on_alert`'s
/// environment: they go through the sanitizer here.
fn figure_keys(rows: &[ContainerRow]) -> Vec<String> {
    let clean = |text: &str| crate::model::sanitize::sanitize(text);
    let base = |r: &ContainerRow| {
        if r.service.is_empty() {
            clean(&r.name)
        } else {
            clean(&r.service)
        }
    };
    let mut counts: HashMap<String, usize> = HashMap::new();
    for row in rows {
        *counts.entry(base(row)).or_default() += 1;
    }
    rows.iter()
        .map(|r| {
            if counts[&base(r)] > 1 {
                clean(&r.name)
            } else {
                base(r)
            }
        })
        .collect()
}

/// What one poll showed: the figure subjects (`<source>.<key>`) and the Services rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Shown {
    pub subjects: std::collections::BTreeSet<String>,
    pub services: std::collections::BTreeSet<String>,
}

/// Whether a container is on its way up: `created` (not started yet) or `restarting` (its
/// restart policy starts it again) for at most [`START_GRACE`] since it was created or last
/// exited; or running with its health check still `starting` (the engine itself turns
/// that into `unhealthy` once the check has failed its retries).
pub(crate) fn is_starting(row: &ContainerRow, now: DateTime<Utc>) -> bool {
    let recent = |t: Option<DateTime<Utc>>| {
        t.is_some_and(|t| (now - t).to_std().unwrap_or_default() < START_GRACE)
    };
    match row.state.as_str() {
        "created" => recent(row.created_at),
        "restarting" => recent(row.finished_at.or(row.started_at)),
        "running" => row.health == "starting",
        _ => false,
    }
}

/// Whether the engine is removing a container (`removing`, as `docker rm -f` and
/// `docker compose down` leave it for a moment): it is on its way out, not down, and its
/// removal is one "removed" line on the timeline, never a page. (A container that merely
/// stopped is down at once: a kill must show within seconds.)
pub(crate) fn is_being_removed(row: &ContainerRow) -> bool {
    row.state == "removing"
}

/// The containers that stand for their compose replica. Of the containers with the same
/// project, service and replica number, those that run (or restart, or are paused) stay;
/// one that is stopped stays unless a newer one took its place; one that is `created`
/// beside one that runs is its replacement, not started yet (compose creates it before it
/// stops the old one). The others are being replaced: they leave the panes as a removed
/// container does. Containers outside compose stand for themselves.
pub(crate) fn current_replicas(rows: Vec<ContainerRow>) -> Vec<ContainerRow> {
    let mut groups: BTreeMap<(String, String, String), Vec<ContainerRow>> = BTreeMap::new();
    let mut out = Vec::new();
    for row in rows {
        if row.service.is_empty() {
            out.push(row);
        } else {
            let key = (row.project.clone(), row.service.clone(), row.number.clone());
            groups.entry(key).or_default().push(row);
        }
    }
    let live = |r: &ContainerRow| matches!(r.state.as_str(), "running" | "restarting" | "paused");
    for (_, members) in groups {
        let any_live = members.iter().any(live);
        let kept: Vec<bool> = members
            .iter()
            .map(|r| {
                if live(r) {
                    return true;
                }
                // Created beside one that runs: the replacement, not started yet.
                if r.state == "created" && any_live {
                    return false;
                }
                // Stopped, and a newer container took its place.
                !members.iter().any(|o| o.created_at > r.created_at)
            })
            .collect();
        out.extend(
            members
                .into_iter()
                .zip(kept)
                .filter_map(|(r, keep)| keep.then_some(r)),
        );
    }
    out
}

/// The updates of one poll at `now` (the rows, one Services row per compose service, the
/// figures), with the compose services the config names
/// (`services = [...]` of `project`): one of them without any container is a finding of
/// its own (`<source>.<service>.state` = "absent", down in Services). Also says what it
/// showed, so the next poll can tell what was removed.
pub(crate) fn project_updates(
    source: &str,
    rows: Vec<ContainerRow>,
    named: &[String],
    project: Option<&str>,
    now: DateTime<Utc>,
) -> (Vec<Update>, Shown) {
    let mut rows = current_replicas(rows);
    rows.sort_by(|a, b| (&a.project, &a.service, &a.name).cmp(&(&b.project, &b.service, &b.name)));
    let keys = figure_keys(&rows);
    let mut shown = Shown::default();
    let mut readings = Vec::new();
    for (row, key) in rows.iter().zip(&keys) {
        shown.subjects.insert(format!("{source}.{key}"));
        let id = |figure: &str| format!("{source}.{key}.{figure}");
        let running = row.state == "running";
        let starting = is_starting(row, now);
        let mut state_detail = row.name.clone();
        if let Some(started) = row.started_at.filter(|_| running) {
            state_detail.push_str(&format!(
                ", up since {}",
                started.format("%Y-%m-%d %H:%M:%S UTC")
            ));
        }
        // Starting is not down: judged once it has had START_GRACE to come up.
        let grace = format!(
            "starting: judged if not up within {}",
            humantime::format_duration(START_GRACE)
        );
        let leaving = is_being_removed(row);
        if starting && !running {
            state_detail.push_str(&format!(" ({grace})"));
        } else if leaving {
            state_detail.push_str(" (being removed)");
        }
        let state_rule = if (starting && !running) || leaving {
            Rule::default().with_priority(Priority::P0)
        } else {
            Rule::expecting("running").with_priority(Priority::P0)
        };
        readings.push(
            Reading::text(id("state"), format!("{key} state"), row.state.clone())
                .with_detail(state_detail)
                .with_rule(state_rule),
        );
        if !row.health.is_empty() {
            let (rule, detail) = if starting && running {
                (Rule::default(), format!("{} ({grace})", row.name))
            } else {
                (Rule::expecting("healthy"), row.name.clone())
            };
            readings.push(
                Reading::text(id("health"), format!("{key} health"), row.health.clone())
                    .with_detail(detail)
                    .with_rule(rule.depending_on(id("state"))),
            );
        }
        readings.push(
            Reading::number(
                id("restarts"),
                format!("{key} restarts"),
                row.restarts as f64,
                "",
            )
            .with_detail("restarts by the restart policy (docker inspect RestartCount)")
            .with_rule(Rule::warn_only(Threshold::above(0.0))),
        );
        // A container that does not run uses nothing, as `docker stats` shows it.
        let cpu = if running { row.cpu_pct } else { Some(0.0) };
        if let Some(cpu) = cpu {
            readings.push(
                Reading::number(id("cpu_pct"), format!("{key} CPU"), cpu, "%")
                    .with_detail("100% = one core"),
            );
        }
        let mem = if running { row.mem_bytes } else { Some(0.0) };
        if let Some(mem) = mem {
            let detail = match row.mem_limit_bytes {
                Some(limit) => format!("of {}", format_bytes(limit)),
                None => String::new(),
            };
            readings.push(
                Reading::number(id("mem_bytes"), format!("{key} memory"), mem, "bytes")
                    .with_detail(detail),
            );
        }
    }

    let mut services = compose_services(&rows, now);
    // Services the config names that have no container at all.
    let project = project.unwrap_or_default();
    for service in named {
        if rows.iter().any(|r| r.service == *service) {
            continue;
        }
        let key = crate::model::sanitize::sanitize(service);
        shown.subjects.insert(format!("{source}.{key}"));
        let detail = if project.is_empty() {
            format!("no container of compose service {service}")
        } else {
            format!("no container of compose service {service} in project {project}")
        };
        readings.push(
            Reading::text(
                format!("{source}.{key}.state"),
                format!("{key} state"),
                "absent",
            )
            .with_detail(detail.clone())
            .with_rule(Rule::expecting("running").with_priority(Priority::P0)),
        );
        services.push(ServiceStatus {
            name: service_name(project, service),
            kind: "compose".into(),
            up: false,
            status: "absent".into(),
            latency_ms: None,
            restarts: None,
            detail,
        });
    }
    shown.services = services.iter().map(|s| s.name.clone()).collect();
    let mut updates = vec![Update::Containers {
        source: source.to_string(),
        rows: rows.clone(),
    }];
    updates.extend(services.into_iter().map(Update::Service));
    updates.push(Update::Readings {
        source: source.to_string(),
        readings,
    });
    (updates, shown)
}

fn service_name(project: &str, service: &str) -> String {
    if project.is_empty() {
        service.to_string()
    } else {
        format!("{project}/{service}")
    }
}

/// One Services row per compose service: up when all its containers run and are healthy
/// (or are starting, see [`is_starting`]).
fn compose_services(rows: &[ContainerRow], now: DateTime<Utc>) -> Vec<ServiceStatus> {
    let mut services: BTreeMap<(&str, &str), Vec<&ContainerRow>> = BTreeMap::new();
    for row in rows.iter().filter(|r| !r.service.is_empty()) {
        services
            .entry((row.project.as_str(), row.service.as_str()))
            .or_default()
            .push(row);
    }
    services
        .into_iter()
        .map(|((project, service), members)| {
            let fine = |r: &ContainerRow| {
                is_starting(r, now)
                    || (r.state == "running" && (r.health.is_empty() || r.health == "healthy"))
            };
            let running = members.iter().filter(|r| r.state == "running").count();
            let up = members.iter().all(|r| fine(r));
            let status = if members.len() == 1 {
                let r = members[0];
                if r.health.is_empty() {
                    r.state.clone()
                } else {
                    format!("{} ({})", r.state, r.health)
                }
            } else {
                format!("{running}/{} running", members.len())
            };
            let problems: Vec<String> = members
                .iter()
                .filter(|r| !fine(r))
                .map(|r| {
                    if r.health.is_empty() {
                        format!("{}: {}", r.name, r.state)
                    } else {
                        format!("{}: {}, {}", r.name, r.state, r.health)
                    }
                })
                .collect();
            let detail = if problems.is_empty() {
                format!("{} container(s) running", members.len())
            } else {
                problems.join("; ")
            };
            ServiceStatus {
                name: service_name(project, service),
                kind: "compose".into(),
                up,
                status,
                latency_ms: None,
                restarts: Some(members.iter().map(|r| r.restarts).sum()),
                detail,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The updates of one poll, with no compose services named.
    fn container_updates(source: &str, rows: Vec<ContainerRow>) -> Vec<Update> {
        project_updates(source, rows, &[], None, Utc::now()).0
    }

    /// A cgroup v1 sample shaped like the Engine API's (Docker 20.10, cgroupfs driver).
    const V1_SAMPLE: &str = r#"{
      "read": "2026-11-23T10:00:02.000000000Z",
      "preread": "2026-11-23T10:00:01.000000000Z",
      "pids_stats": {"current": 3},
      "blkio_stats": {
        "io_service_bytes_recursive": [
          {"major": 254, "minor": 0, "op": "Read", "value": 4096000},
          {"major": 254, "minor": 0, "op": "Write", "value": 1024000},
          {"major": 254, "minor": 0, "op": "Sync", "value": 5120000},
          {"major": 254, "minor": 0, "op": "Async", "value": 0},
          {"major": 254, "minor": 0, "op": "Discard", "value": 0},
          {"major": 254, "minor": 0, "op": "Total", "value": 5120000},
          {"major": 254, "minor": 16, "op": "Read", "value": 904000}
        ],
        "io_serviced_recursive": [], "io_queue_recursive": [], "io_service_time_recursive": [],
        "io_wait_time_recursive": [], "io_merged_recursive": [], "io_time_recursive": [],
        "sectors_recursive": []
      },
      "num_procs": 0,
      "storage_stats": {},
      "cpu_stats": {
        "cpu_usage": {
          "total_usage": 2500000000,
          "percpu_usage": [1500000000, 1000000000],
          "usage_in_kernelmode": 10000000,
          "usage_in_usermode": 2490000000
        },
        "system_cpu_usage": 10000000000,
        "online_cpus": 2,
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}
      },
      "precpu_stats": {
        "cpu_usage": {
          "total_usage": 1500000000,
          "percpu_usage": [1000000000, 500000000],
          "usage_in_kernelmode": 10000000,
          "usage_in_usermode": 1490000000
        },
        "system_cpu_usage": 8000000000,
        "online_cpus": 2,
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}
      },
      "memory_stats": {
        "usage": 104857600,
        "max_usage": 110000000,
        "stats": {
          "active_anon": 52428800, "active_file": 10485760, "cache": 41943040,
          "inactive_anon": 0, "inactive_file": 31457280, "mapped_file": 0,
          "rss": 52428800, "total_active_anon": 52428800, "total_active_file": 10485760,
          "total_cache": 41943040, "total_inactive_anon": 0, "total_inactive_file": 20971520,
          "total_rss": 52428800, "hierarchical_memory_limit": 9223372036854771712
        },
        "failcnt": 0,
        "limit": 2147483648
      },
      "name": "/watchpost-web-1",
      "id": "4f1c0c3c",
      "networks": {
        "eth0": {"rx_bytes": 10000, "rx_packets": 10, "rx_errors": 0, "rx_dropped": 0,
                 "tx_bytes": 4000, "tx_packets": 5, "tx_errors": 0, "tx_dropped": 0},
        "eth1": {"rx_bytes": 5000, "rx_packets": 3, "rx_errors": 0, "rx_dropped": 0,
                 "tx_bytes": 1000, "tx_packets": 1, "tx_errors": 0, "tx_dropped": 0}
      }
    }"#;

    /// A cgroup v2 sample (no percpu_usage, "inactive_file", lower-case blkio ops).
    const V2_SAMPLE: &str = r#"{
      "read": "2026-11-23T10:00:03.500000000Z",
      "preread": "2026-11-23T10:00:02.500000000Z",
      "pids_stats": {"current": 1, "limit": 4615},
      "blkio_stats": {
        "io_service_bytes_recursive": [
          {"major": 8, "minor": 0, "op": "read", "value": 2000},
          {"major": 8, "minor": 0, "op": "write", "value": 6000},
          {"major": 8, "minor": 16, "op": "read", "value": 1000}
        ],
        "io_serviced_recursive": null, "io_queue_recursive": null,
        "io_service_time_recursive": null, "io_wait_time_recursive": null,
        "io_merged_recursive": null, "io_time_recursive": null, "sectors_recursive": null
      },
      "num_procs": 0,
      "storage_stats": {},
      "cpu_stats": {
        "cpu_usage": {"total_usage": 9000000000, "usage_in_kernelmode": 1000000, "usage_in_usermode": 8999000000},
        "system_cpu_usage": 50000000000,
        "online_cpus": 4,
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}
      },
      "precpu_stats": {
        "cpu_usage": {"total_usage": 8000000000, "usage_in_kernelmode": 1000000, "usage_in_usermode": 7999000000},
        "system_cpu_usage": 46000000000,
        "online_cpus": 4,
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}
      },
      "memory_stats": {
        "usage": 73400320,
        "stats": {
          "active_anon": 0, "active_file": 4096, "anon": 52428800, "anon_thp": 0,
          "file": 20971520, "file_dirty": 0, "file_mapped": 0, "file_writeback": 0,
          "inactive_anon": 52428800, "inactive_file": 16777216, "kernel_stack": 16384,
          "pgactivate": 0, "pgfault": 1000, "pgmajfault": 0, "shmem": 0, "slab": 100000,
          "sock": 0, "unevictable": 0, "workingset_activate": 0, "workingset_refault": 0
        },
        "limit": 8589934592
      },
      "name": "/api",
      "id": "9a8b7c",
      "networks": {
        "eth0": {"rx_bytes": 3000, "rx_packets": 3, "rx_errors": 0, "rx_dropped": 0,
                 "tx_bytes": 1500, "tx_packets": 2, "tx_errors": 0, "tx_dropped": 0}
      }
    }"#;

    fn sample(json: &str) -> ContainerStatsResponse {
        serde_json::from_str(json).expect("fixture parses as the Engine API type")
    }

    #[test]
    fn cpu_percent_cgroup_v1_uses_online_cpus() {
        // (2.5e9 - 1.5e9) / (10e9 - 8e9) × 2 × 100 = 100%: one core busy.
        let pct = cpu_percent(&sample(V1_SAMPLE)).unwrap();
        assert!((pct - 100.0).abs() < 1e-9, "{pct}");
    }

    #[test]
    fn cpu_percent_falls_back_to_percpu_length() {
        let mut s = sample(V1_SAMPLE);
        s.cpu_stats.as_mut().unwrap().online_cpus = Some(0);
        assert!((cpu_percent(&s).unwrap() - 100.0).abs() < 1e-9);
        s.cpu_stats
            .as_mut()
            .unwrap()
            .cpu_usage
            .as_mut()
            .unwrap()
            .percpu_usage = Some(vec![1, 2, 3, 4]);
        assert!((cpu_percent(&s).unwrap() - 200.0).abs() < 1e-9);
    }

    #[test]
    fn cpu_percent_cgroup_v2() {
        // (9e9 - 8e9) / (50e9 - 46e9) × 4 × 100 = 100%.
        let pct = cpu_percent(&sample(V2_SAMPLE)).unwrap();
        assert!((pct - 100.0).abs() < 1e-9, "{pct}");
    }

    #[test]
    fn first_sample_of_a_stream_has_no_cpu_figure() {
        let mut s = sample(V2_SAMPLE);
        s.precpu_stats = Some(Default::default());
        assert_eq!(cpu_percent(&s), None);
        // An idle container: no CPU delta is 0%, not "unknown".
        let mut idle = sample(V2_SAMPLE);
        let pre = idle.precpu_stats.as_mut().unwrap();
        pre.cpu_usage.as_mut().unwrap().total_usage = Some(9_000_000_000);
        assert_eq!(cpu_percent(&idle), Some(0.0));
    }

    #[test]
    fn memory_subtracts_inactive_file_per_cgroup_version() {
        // v1: usage − total_inactive_file (not inactive_file).
        let v1 = sample(V1_SAMPLE);
        assert_eq!(
            memory_used(v1.memory_stats.as_ref().unwrap()),
            Some(104_857_600 - 20_971_520)
        );
        // v2: usage − inactive_file.
        let v2 = sample(V2_SAMPLE);
        assert_eq!(
            memory_used(v2.memory_stats.as_ref().unwrap()),
            Some(73_400_320 - 16_777_216)
        );
        // Inactive cache larger than usage (a racy read): usage as it is.
        let mut odd = v2.memory_stats.clone().unwrap();
        odd.stats
            .as_mut()
            .unwrap()
            .insert("inactive_file".into(), 100_000_000);
        assert_eq!(memory_used(&odd), Some(73_400_320));
    }

    #[test]
    fn network_is_summed_over_interfaces_and_rated_by_sample_time() {
        let previous = sample(V1_SAMPLE);
        assert_eq!(network_totals(&previous), Some((15_000, 5_000)));
        let mut current = sample(V1_SAMPLE);
        current.read = Some("2026-11-23T10:00:04.000000000Z".into());
        let networks = current.networks.as_mut().unwrap();
        networks.get_mut("eth0").unwrap().rx_bytes = Some(20_000);
        networks.get_mut("eth1").unwrap().tx_bytes = Some(3_000);
        // 2 s later: +10 000 B received, +2 000 B sent.
        let (rx, tx) = network_rates(&previous, &current).unwrap();
        assert!(
            (rx - 5_000.0).abs() < 1e-9 && (tx - 1_000.0).abs() < 1e-9,
            "{rx} {tx}"
        );
        // Counters that go back (a restart) give no rate rather than a negative one.
        assert_eq!(network_rates(&current, &previous), None);
    }

    #[test]
    fn block_io_sums_read_and_write_entries_only() {
        assert_eq!(
            block_io(&sample(V1_SAMPLE)),
            Some((4_096_000 + 904_000, 1_024_000))
        );
        assert_eq!(block_io(&sample(V2_SAMPLE)), Some((3_000, 6_000)));
    }

    #[test]
    fn figures_of_a_sample() {
        let figures = StatsFigures::from_samples(&sample(V2_SAMPLE), None);
        assert_eq!(figures.mem_limit_bytes, Some(8_589_934_592.0));
        assert_eq!(figures.net_rx_bps, None, "a rate needs two samples");
        assert!(figures.cpu_pct.is_some());
    }

    #[test]
    fn hostile_labels_make_clean_figure_ids() {
        let evil = "web\x1b]0;pwned\x07\x1b[2J\u{9b}31m\r\n";
        let mut rows = vec![row("shop-web-1", "shop", evil, "running", "unhealthy")];
        rows[0].name = format!("{evil}-1");
        let updates = container_updates("d", rows);
        let Some(Update::Readings { readings, .. }) = updates.last() else {
            panic!()
        };
        for reading in readings {
            assert!(
                !reading
                    .id
                    .chars()
                    .chain(reading.name.chars())
                    .any(char::is_control),
                "{reading:?}"
            );
        }
        assert!(readings.iter().any(|r| r.id.starts_with("d.web")));
    }

    #[test]
    fn api_version_from_a_refusal() {
        let v = max_api_version(
            "Docker responded with status code 400: client version 1.53 is too new. Maximum supported API version is 1.41",
        )
        .unwrap();
        assert_eq!((v.major_version, v.minor_version), (1, 41));
        assert!(max_api_version("some other error").is_none());
    }

    fn row(name: &str, project: &str, service: &str, state: &str, health: &str) -> ContainerRow {
        ContainerRow {
            id: format!("id-{name}"),
            name: name.into(),
            project: project.into(),
            service: service.into(),
            state: state.into(),
            health: health.into(),
            ..ContainerRow::default()
        }
    }

    #[test]
    fn starting_is_not_down_for_a_while() {
        let now = Utc::now();
        let ago = |secs: i64| Some(now - chrono::Duration::seconds(secs));
        let mut created = row("p-q3-1", "p", "q3", "created", "");
        created.created_at = ago(2);
        assert!(is_starting(&created, now));
        created.created_at = ago(31);
        assert!(!is_starting(&created, now), "stuck in created is down");
        let mut restarting = row("p-q3-1", "p", "q3", "restarting", "");
        restarting.finished_at = ago(1);
        assert!(is_starting(&restarting, now));
        let checking = row("p-q3-1", "p", "q3", "running", "starting");
        assert!(is_starting(&checking, now));
        assert!(!is_starting(&row("p-q3-1", "p", "q3", "exited", ""), now));
        // Being removed: on its way out, not down. Stopped: down at once.
        let removing = row("p-q3-1", "p", "q3", "removing", "");
        assert!(is_being_removed(&removing));
        let (updates, _) = project_updates("d", vec![removing], &[], None, now);
        let Some(Update::Readings { readings, .. }) = updates.last() else {
            panic!()
        };
        let state = readings.iter().find(|r| r.id == "d.q3.state").unwrap();
        assert_eq!(crate::rules::judge(state, None), Severity::Ok);
        assert!(state.detail.contains("being removed"));
        let mut exited = row("p-q3-1", "p", "q3", "exited", "");
        exited.finished_at = ago(1);
        assert!(!is_being_removed(&exited));
        let (updates, _) = project_updates("d", vec![exited], &[], None, now);
        let Some(Update::Readings { readings, .. }) = updates.last() else {
            panic!()
        };
        let state = readings.iter().find(|r| r.id == "d.q3.state").unwrap();
        assert_eq!(crate::rules::judge(state, None), Severity::Crit);

        created.created_at = ago(2);
        let (updates, _) = project_updates("d", vec![created], &[], None, now);
        let Some(Update::Readings { readings, .. }) = updates.last() else {
            panic!()
        };
        use crate::model::figure::Severity;
        assert_eq!(crate::rules::judge(&readings[0], None), Severity::Ok);
        let service = updates.iter().find_map(|u| match u {
            Update::Service(s) => Some(s),
            _ => None,
        });
        assert!(service.is_some_and(|s| s.up));
    }

    #[test]
    fn a_replacement_stands_for_its_replica_and_the_old_one_leaves() {
        let now = Utc::now();
        let at = |secs: i64| Some(now - chrono::Duration::seconds(secs));
        let mut old = row("p-q1-1", "p", "q1", "running", "");
        old.created_at = at(100);
        let mut new = row("tmp_p-q1-1", "p", "q1", "created", "");
        new.created_at = at(1);
        let names = |rows: Vec<ContainerRow>| {
            let mut n: Vec<String> = current_replicas(rows).into_iter().map(|r| r.name).collect();
            n.sort();
            n
        };
        // Created beside the one that runs: not shown yet.
        assert_eq!(names(vec![old.clone(), new.clone()]), vec!["p-q1-1"]);
        // The old one stopped: the new one takes over.
        old.state = "exited".into();
        assert_eq!(names(vec![old.clone(), new.clone()]), vec!["tmp_p-q1-1"]);
        // Two that run (replicas without numbers) both stay; so does a lone exited one.
        old.state = "running".into();
        new.state = "running".into();
        assert_eq!(names(vec![old.clone(), new]).len(), 2);
        old.state = "exited".into();
        assert_eq!(names(vec![old]), vec!["p-q1-1"]);
    }

    #[test]
    fn a_named_service_without_containers_is_absent() {
        let (updates, shown) = project_updates(
            "d",
            vec![row("p-web-1", "p", "web", "running", "")],
            &["web".to_string(), "db".to_string()],
            Some("p"),
            Utc::now(),
        );
        let Some(Update::Readings { readings, .. }) = updates.last() else {
            panic!()
        };
        let db = readings.iter().find(|r| r.id == "d.db.state").unwrap();
        use crate::model::figure::Severity;
        assert_eq!(crate::rules::judge(db, None), Severity::Crit);
        assert!(shown.services.contains("p/db") && shown.subjects.contains("d.db"));
        // Without `services = [...]`, nothing is missing.
        let (_, shown) = project_updates("d", Vec::new(), &[], Some("p"), Utc::now());
        assert!(shown.subjects.is_empty() && shown.services.is_empty());
    }

    #[test]
    fn updates_name_figures_by_service_and_judge_compose_services() {
        let mut web1 = row("shop-web-1", "shop", "web", "running", "healthy");
        web1.cpu_pct = Some(12.5);
        web1.mem_bytes = Some(1024.0);
        let rows = vec![
            web1,
            row("shop-db-1", "shop", "db", "exited", ""),
            row("shop-worker-1", "shop", "worker", "running", "unhealthy"),
            row("shop-worker-2", "shop", "worker", "running", "healthy"),
            row("lonely", "", "", "running", ""),
        ];
        let updates = container_updates("d", rows);
        let Some(Update::Readings { readings, .. }) = updates.last() else {
            panic!()
        };
        let ids: Vec<&str> = readings.iter().map(|r| r.id.as_str()).collect();
        assert!(
            ids.contains(&"d.web.state")
                && ids.contains(&"d.web.health")
                && ids.contains(&"d.web.cpu_pct")
        );
        assert!(ids.contains(&"d.db.state") && !ids.contains(&"d.db.health"));
        // Replicas share a service name, so their figures use the container name.
        assert!(ids.contains(&"d.shop-worker-1.health") && ids.contains(&"d.shop-worker-2.state"));
        assert!(ids.contains(&"d.lonely.state"));
        assert!(!ids.contains(&"d.lonely.cpu_pct"), "no stats sample yet");
        let get = |id: &str| readings.iter().find(|r| r.id == id).unwrap();
        use crate::model::figure::Severity;
        assert_eq!(crate::rules::judge(get("d.db.state"), None), Severity::Crit);
        assert_eq!(
            get("d.db.state").default_rule.as_ref().unwrap().priority,
            Some(Priority::P0)
        );
        assert_eq!(
            crate::rules::judge(get("d.shop-worker-1.health"), None),
            Severity::Crit
        );
        assert_eq!(get("d.web.mem_bytes").unit, "bytes");

        let services: Vec<&ServiceStatus> = updates
            .iter()
            .filter_map(|u| {
                if let Update::Service(s) = u {
                    Some(s)
                } else {
                    None
                }
            })
            .collect();
        let by_name = |n: &str| services.iter().find(|s| s.name == n).unwrap();
        assert!(by_name("shop/web").up);
        assert!(!by_name("shop/db").up);
        assert!(!by_name("shop/worker").up, "one unhealthy replica");
        assert_eq!(by_name("shop/worker").status, "2/2 running");
        assert!(by_name("shop/worker").detail.contains("shop-worker-1"));
        assert_eq!(services.len(), 3);
    }
}
