//! The simulated deployment behind `watchpost demo`: no config, no network beyond 127.0.0.1,
//! nothing left behind.
//!
//! [`DemoWorld::start`] creates, in a fresh temporary directory:
//! - `tmws.db`, a TMWS-shaped SQLite database (WAL) created from `assets/tmws_schema.sql`:
//!   200 agents (80% viewer, 16% editor, 4% admin), ~500 license keys over FREE/PRO/ENTERPRISE
//!   (some revoked, some expiring within 7 days, a few expired but not revoked), the
//!   migration head `571948cc671b`, and the last hour of traffic. A writer thread then keeps
//!   adding traffic: ~20 permission checks a second (~8% denied), ~3 license validations a
//!   second (~3% invalid), ~3 generations a minute ([`simulator`]).
//! - `tmws.jsonl`, an application log in the shapes of seed 002 that grows by a few lines a
//!   second and is rotated to `tmws.jsonl.1` at 20 MB ([`applog`]).
//! - `GET http://127.0.0.1:<port>/health`, answering `{"status":"healthy"}` ([`health`]).
//!
//! # The scripted incident
//! With the default [`IncidentSchedule`], the first incident starts 60 s after the start and
//! then one starts every 4 minutes (T+60s, T+5m, T+9m, ...). Each lasts 45 s:
//! - about 70% of permission checks are denied (role lookups fail), 15% of validations fail;
//! - errors burst into the log ("database connection pool exhausted", "RBAC check failed for
//!   agent ...", tool timeouts, a failed scheduler cleanup);
//! - `/health` answers 503 `{"status":"unhealthy","reason":"database connection pool
//!   exhausted"}`, slowly.
//!
//! Then 15 s of recovery (traffic back to normal, `/health` 200 but slow), then normal until
//! the next one. [`incident::phase_at`] is the schedule as a pure function;
//! [`DemoWorld::start_with`] takes a faster schedule for tests.
//!
//! Dropping the [`DemoWorld`] stops the writer threads (and waits for them), stops the
//! health server, and removes the directory with everything in it.

pub mod applog;
pub mod health;
pub mod incident;
pub mod simulator;

pub use incident::{IncidentSchedule, Phase, phase_at};
pub use simulator::MIGRATION_HEAD;

use crate::config::{
    Config, Deployment, DockerSource, LogSource, ServiceSource, SqliteSource, SystemSource,
};
use chrono::{DateTime, SecondsFormat, Utc};
use color_eyre::eyre::{WrapErr, eyre};
use incident::Script;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// How often the database writer commits a transaction.
const WRITER_TICK: Duration = Duration::from_millis(500);

/// How to run the demo; `Default` is what `watchpost demo` uses.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// When incidents happen.
    pub schedule: IncidentSchedule,
    /// Seed for the simulated traffic; `None` picks one at random.
    pub seed: Option<u64>,
    /// The application log is renamed to `<name>.1` when it would grow past this.
    pub log_rotate_bytes: u64,
    /// Extra ordinary log lines a second (0: none); a soak's flood.
    pub flood_lines_per_sec: u32,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            schedule: IncidentSchedule::default(),
            seed: None,
            log_rotate_bytes: 20 * 1024 * 1024,
            flood_lines_per_sec: 0,
        }
    }
}

/// What the simulated deployment has done so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DemoStats {
    /// Permission checks written (including the backfilled hour).
    pub permission_checks: u64,
    /// Of which denied.
    pub denials: u64,
    pub validations: u64,
    pub generations: u64,
    pub log_lines: u64,
    pub log_rotations: u64,
    pub health_requests: u64,
    /// Failed database transactions or log writes; the demo keeps going after one.
    pub write_errors: u64,
    pub last_error: Option<String>,
}

/// Counters shared by the demo's threads and tasks.
#[derive(Default)]
pub(crate) struct Counters {
    permission_checks: AtomicU64,
    denials: AtomicU64,
    validations: AtomicU64,
    generations: AtomicU64,
    log_lines: AtomicU64,
    log_rotations: AtomicU64,
    health_requests: AtomicU64,
    write_errors: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl Counters {
    fn add_db(&self, checks: u64, denials: u64, validations: u64, generations: u64) {
        self.permission_checks.fetch_add(checks, Ordering::Relaxed);
        self.denials.fetch_add(denials, Ordering::Relaxed);
        self.validations.fetch_add(validations, Ordering::Relaxed);
        self.generations.fetch_add(generations, Ordering::Relaxed);
    }
    fn log_line(&self) {
        self.log_lines.fetch_add(1, Ordering::Relaxed);
    }
    fn log_rotation(&self) {
        self.log_rotations.fetch_add(1, Ordering::Relaxed);
    }
    fn health_request(&self) {
        self.health_requests.fetch_add(1, Ordering::Relaxed);
    }
    fn write_error(&self, message: String) {
        self.write_errors.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(message);
    }
    fn snapshot(&self) -> DemoStats {
        DemoStats {
            permission_checks: self.permission_checks.load(Ordering::Relaxed),
            denials: self.denials.load(Ordering::Relaxed),
            validations: self.validations.load(Ordering::Relaxed),
            generations: self.generations.load(Ordering::Relaxed),
            log_lines: self.log_lines.load(Ordering::Relaxed),
            log_rotations: self.log_rotations.load(Ordering::Relaxed),
            health_requests: self.health_requests.load(Ordering::Relaxed),
            write_errors: self.write_errors.load(Ordering::Relaxed),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }
}

/// Tells the writer threads to stop, waking them at once.
#[derive(Default)]
pub(crate) struct StopSignal {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl StopSignal {
    fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.wake.notify_all();
    }

    /// Sleeps for `duration` or until stopped; true when stopped.
    fn sleep(&self, duration: Duration) -> bool {
        let guard = self.stopped.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = self
            .wake
            .wait_timeout_while(guard, duration, |stopped| !*stopped)
            .unwrap_or_else(|e| e.into_inner());
        *guard
    }
}

/// A running simulated deployment. Drop it to stop everything and delete its files.
pub struct DemoWorld {
    script: Script,
    started_at: DateTime<Utc>,
    db_path: PathBuf,
    log_path: PathBuf,
    health_url: String,
    counters: Arc<Counters>,
    stop: Arc<StopSignal>,
    threads: Vec<JoinHandle<()>>,
    server: tokio::task::JoinHandle<()>,
    /// Last, so it is removed after the threads that write into it have stopped.
    dir: TempDir,
}

impl DemoWorld {
    /// Starts the demo with the default schedule (first incident a minute in).
    pub async fn start() -> color_eyre::Result<DemoWorld> {
        DemoWorld::start_with(DemoOptions::default()).await
    }

    /// Starts the demo with `options`. Must run inside a tokio runtime (the health server
    /// is a task on it); the writers are threads of their own.
    pub async fn start_with(options: DemoOptions) -> color_eyre::Result<DemoWorld> {
        remove_leftovers(&std::env::temp_dir());
        let dir = tempfile::Builder::new()
            .prefix(DIR_PREFIX)
            .tempdir()
            .wrap_err("cannot create a temporary directory for the demo")?;
        std::fs::write(dir.path().join(OWNER_FILE), std::process::id().to_string())
            .wrap_err("cannot write the demo's owner file")?;
        live_dirs().push(dir.path().to_path_buf());
        if dir.path().to_str().is_none() {
            return Err(eyre!(
                "the temporary directory {} is not valid UTF-8",
                dir.path().display()
            ));
        }
        let db_path = dir.path().join("tmws.db");
        let log_path = dir.path().join("tmws.jsonl");
        let seed = options.seed.unwrap_or_else(rand::random);
        let counters = Arc::new(Counters::default());

        let simulator = {
            let (path, counters) = (db_path.clone(), counters.clone());
            tokio::task::spawn_blocking(move || simulator::Simulator::create(&path, seed, counters))
                .await
                .wrap_err("the demo database seeding task failed")?
                .wrap_err_with(|| {
                    format!("cannot create the demo database {}", db_path.display())
                })?
        };
        let applog = applog::AppLog::create(
            &log_path,
            options.log_rotate_bytes,
            seed ^ 0x5eed,
            counters.clone(),
        )
        .wrap_err_with(|| format!("cannot create the demo log {}", log_path.display()))?
        .flood(options.flood_lines_per_sec);
        let listener = health::bind()
            .await
            .wrap_err("cannot listen on 127.0.0.1 for the demo health endpoint")?;
        let health_addr = listener
            .local_addr()
            .wrap_err("cannot read the demo health endpoint's address")?;

        // The clock starts once everything is ready, so the first incident is on time.
        let script = Script {
            started: Instant::now(),
            schedule: options.schedule,
        };
        let started_at = Utc::now();
        let stop = Arc::new(StopSignal::default());
        let server = health::spawn(listener, script, counters.clone());
        let mut world = DemoWorld {
            script,
            started_at,
            db_path,
            log_path,
            health_url: format!("http://{health_addr}/health"),
            counters,
            stop: stop.clone(),
            threads: Vec::new(),
            server,
            dir,
        };
        let signal = stop.clone();
        let writer = std::thread::Builder::new()
            .name("demo-db-writer".into())
            .spawn(move || simulator.run(script, signal, WRITER_TICK))
            .wrap_err("cannot start the demo database writer thread")?;
        world.threads.push(writer);
        let logger = std::thread::Builder::new()
            .name("demo-log-writer".into())
            .spawn(move || applog.run(script, stop))
            .wrap_err("cannot start the demo log writer thread")?;
        world.threads.push(logger);
        Ok(world)
    }

    /// The config that watches this world, as `watchpost run --config` would read it.
    pub fn config(&self) -> Config {
        let local = || "local".to_string();
        let every = Duration::from_secs(2);
        let mut config = Config {
            deployment: Deployment {
                name: "tmws-demo".into(),
                version: "v2.3.0".into(),
                start: self.started_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                length: Duration::from_secs(24 * 3600),
                ..Deployment::default()
            },
            ..Config::default()
        };
        config.sqlite.insert(
            "tmws".into(),
            SqliteSource {
                path: self.db_path_str().into(),
                pack: Some("tmws".into()),
                host: local(),
                interval: every,
                expected_migration: Some(MIGRATION_HEAD.into()),
            },
        );
        config.service.insert(
            "api".into(),
            ServiceSource {
                health_url: Some(self.health_url.clone()),
                systemd: None,
                host: local(),
                interval: every,
                timeout: Duration::from_secs(1),
            },
        );
        config.logs.insert(
            "app".into(),
            LogSource {
                files: vec![self.log_path_str().into()],
                host: local(),
                ..LogSource::default()
            },
        );
        config.docker.insert(
            "local".into(),
            DockerSource {
                host: local(),
                project: None,
                services: Vec::new(),
                interval: every,
                exec: Vec::new(),
            },
        );
        config.system.insert(
            "host".into(),
            SystemSource {
                host: local(),
                interval: every,
            },
        );
        config
    }

    /// The temporary directory everything lives in (gone after drop).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The TMWS database.
    pub fn db_path(&self) -> &Path {
        &self.db_path
    }

    /// The JSONL application log (rotated to `<name>.1`).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// `http://127.0.0.1:<port>/health`.
    pub fn health_url(&self) -> &str {
        &self.health_url
    }

    /// When the world started (the start of the watch window).
    pub fn started_at(&self) -> DateTime<Utc> {
        self.started_at
    }

    pub fn schedule(&self) -> IncidentSchedule {
        self.script.schedule
    }

    /// What the deployment is doing now.
    pub fn incident_phase(&self) -> Phase {
        self.script.now()
    }

    pub fn stats(&self) -> DemoStats {
        self.counters.snapshot()
    }

    // start_with checked that the directory is UTF-8, and the file names are.
    fn db_path_str(&self) -> &str {
        self.db_path.to_str().unwrap_or_default()
    }

    fn log_path_str(&self) -> &str {
        self.log_path.to_str().unwrap_or_default()
    }
}

impl Drop for DemoWorld {
    fn drop(&mut self) {
        self.stop.stop();
        self.server.abort();
        // The writers wake at once and finish at most one short transaction or line.
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        // `dir` is dropped after this, removing the files.
        live_dirs().retain(|d| d != self.dir.path());
    }
}

/// The demo's files live in `<tmp>/watchpost-demo-XXXXXX`, with the owner's pid in
/// `owner.pid`, so a later demo can tell a crashed demo's leftovers from a running one's.
const DIR_PREFIX: &str = "watchpost-demo-";
const OWNER_FILE: &str = "owner.pid";
/// A directory without an owner file is being made right now, unless it is this old.
const UNOWNED_GRACE: Duration = Duration::from_secs(60);

/// The directories of this process's running demos, for [`remove_live_dirs`].
fn live_dirs() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    static DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    DIRS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Removes this process's demo files now: for ways out that skip the demo's `Drop` (a
/// panic that ends the process, or an exit from deep inside). The threads may still be
/// writing; their files go with the directory.
pub fn remove_live_dirs() {
    for dir in live_dirs().drain(..) {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Removes what crashed demos left in `tmp`: directories whose owner no longer runs.
/// A running demo's directory (its owner alive), and one just being made, are kept.
pub(crate) fn remove_leftovers(tmp: &Path) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(DIR_PREFIX) {
            continue;
        }
        let dir = entry.path();
        // Only directories of ours: not a link to somewhere else, not another user's.
        let Ok(meta) = std::fs::symlink_metadata(&dir) else {
            continue;
        };
        use std::os::unix::fs::MetadataExt;
        if !meta.is_dir() || meta.uid() != nix::unistd::geteuid().as_raw() {
            continue;
        }
        let owner = std::fs::read_to_string(dir.join(OWNER_FILE))
            .ok()
            .and_then(|text| text.trim().parse::<i32>().ok());
        let abandoned = match owner {
            Some(pid) => !process_runs(pid),
            None => meta
                .modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|age| age > UNOWNED_GRACE),
        };
        if abandoned {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

fn process_runs(pid: i32) -> bool {
    use nix::errno::Errno;
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        // It exists, as someone else's process.
        Err(Errno::EPERM) => true,
        Err(_) => false,
    }
}

impl std::fmt::Debug for DemoWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoWorld")
            .field("dir", &self.dir.path())
            .field("health_url", &self.health_url)
            .field("phase", &self.incident_phase())
            .finish()
    }
}
