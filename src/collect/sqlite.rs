//! SQLite sources: a database file read strictly read-only, with an optional pack of figures
//! named by id in the config (`pack = "tmws"`): a [`Pack`] from the registry in
//! `sqlite/packs.rs` (the TMWS pack of seed 000 is `sqlite/packs/tmws.rs`).
//!
//! How this collector stays out of the application's way:
//! - the file is opened with `SQLITE_OPEN_READ_ONLY` (no URI parsing) and `PRAGMA query_only`,
//!   so neither we nor a bug of ours can write to it;
//! - no file of the application's is created: a WAL database without its own `-wal`/`-shm`
//!   (cleanly closed) is read with `immutable=1` (no sidecar files, no locks), since an
//!   ordinary read-only open would create them owned by our user, and the application's next
//!   write would fail; once the application has its sidecars, the ordinary read-only open
//!   uses them (see [`open_mode`] and [`Worker::read`]);
//! - each poll reads in one short `BEGIN DEFERRED … COMMIT`; no read transaction (and so no
//!   SHARED lock or WAL snapshot) is held between polls;
//! - a busy or locked database is waited for at most [`BUSY_TIMEOUT`], then reported as
//!   [`SourceHealth::Busy`] with no readings, so the figures already shown stay as they were;
//! - the connection is kept between polls and reopened when the file was replaced (another
//!   inode: restore, `VACUUM INTO` + rename) or disappeared;
//! - every rusqlite call runs on the source's own worker thread (`collect::blocking`), which keeps the connection;
//! - a pack's big tables are read incrementally (see `sqlite/tail.rs`); the first read of a
//!   large table, and a recount, go in read transactions of at most `CHUNK` (20 ms) each with a
//!   gap between them, so the application's writers are never held up for long;
//! - custom SQL metrics (`[[sqlite.NAME.metric]]`, see `sqlite/metrics.rs`) run one statement
//!   each, refused if it would write, interrupted when it runs past its time budget.
//!
//! Errors are data: a missing file, a file that is not a database, a missing table or column
//! give `SourceHealth::Error` with SQLite's own text and the affected figures as
//! `Reading::failed`, never a zero and never a panic.
//!
//! A database on a remote host is read through the host's SSH connection with the remote
//! `sqlite3` CLI, read-only, in JSON mode (see `sqlite/remote.rs`): the same pack code
//! turns the rows into the same figures.

pub(crate) mod metrics;
mod pack;
mod packs;
mod remote;
mod rows;
mod tail;

use crate::collect::{Collector, Reach, blocking};
use crate::config::{SqlMetric, SqliteSource};
use crate::model::catalog::{
    Fig,
    sqlite::{DB_FREELIST, DB_INTEGRITY, DB_SIZE_MB},
};
use crate::model::figure::Reading;
use crate::model::rule::{Priority, Rule, Threshold};
use crate::model::sqlite_sidecars;
use crate::model::update::{SourceHealth, Table, Update};
use crate::transport::Transport;
use futures::future::BoxFuture;
use pack::{Pack, PackOptions, now_secs};
use rows::{SqlRows, col, int};
use rusqlite::{Connection, ErrorCode, OpenFlags};
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tail::LocalReader;

/// How long a poll waits for a lock held by the application before it reports "busy"
/// (the wait itself holds no lock, so it never slows the application).
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_millis(250);

/// The integrity check reads the whole file, so it runs at most this often; between runs the
/// last result is shown with its age.
pub(crate) const INTEGRITY_EVERY: Duration = Duration::from_secs(5 * 60);

/// Longest the integrity check may run in rollback-journal mode, where our SHARED lock keeps
/// the application from committing: no longer than we would wait for the application.
const INTEGRITY_BUDGET_ROLLBACK: Duration = BUSY_TIMEOUT;
/// In WAL mode readers do not block writers (only checkpoints), so it may run longer.
const INTEGRITY_BUDGET_WAL: Duration = Duration::from_secs(10);

/// Longest a read transaction of the pack's big tables lasts before it is ended and a new one
/// started (the first read of a large table takes many of them).
const CHUNK: Duration = Duration::from_millis(20);
/// Catching up stops after this long (a writer faster than we read); the snapshot then reads
/// what is left in one go.
const CATCH_UP_LIMIT: Duration = Duration::from_secs(60);
/// Snapshots tried before the last one, which has no deadline.
const SNAPSHOT_ATTEMPTS: usize = 3;
/// Reads of one poll: a read without locks whose file changed meanwhile is read again.
const READ_ATTEMPTS: usize = 3;

/// What one section of queries produced.
#[derive(Debug, Default)]
pub(crate) struct Section {
    pub readings: Vec<Reading>,
    /// Drill-down tables by id (`<source>.rbac.top_denied`).
    pub tables: Vec<(String, Table)>,
}

/// The database answered "busy" or "locked": the poll is abandoned and the figures kept.
#[derive(Debug)]
pub struct Busy(pub String);

/// Everything one poll gathered, section by section.
#[derive(Debug)]
pub(crate) struct Harvest {
    pub source: String,
    pub readings: Vec<Reading>,
    pub tables: Vec<(String, Table)>,
    /// Distinct error texts of failed sections, in order.
    pub errors: Vec<String>,
}

impl Harvest {
    pub fn new(source: &str) -> Self {
        Harvest {
            source: source.to_string(),
            readings: Vec::new(),
            tables: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// Adds one custom metric's outcome: its reading, its table, and its error text once.
    pub(crate) fn add_metric(&mut self, outcome: metrics::Outcome) {
        if let Some(e) = &outcome.reading.error
            && !self.errors.contains(e)
        {
            self.errors.push(e.clone());
        }
        self.readings.push(outcome.reading);
        self.tables.extend(outcome.table);
    }

    /// Adds one section's result. A failed section turns each of its figures into a failed
    /// reading with the error text (so no figure silently keeps or shows a number); a busy
    /// database aborts the whole poll.
    pub fn add(&mut self, figs: &[Fig], result: rusqlite::Result<Section>) -> Result<(), Busy> {
        match result {
            Ok(section) => {
                self.readings.extend(section.readings);
                self.tables.extend(section.tables);
                Ok(())
            }
            Err(e) if is_busy(&e) => Err(Busy(e.to_string())),
            Err(e) => {
                let text = e.to_string();
                self.fail(figs, &text);
                Ok(())
            }
        }
    }

    /// Marks figures as failed with `text` and remembers the error for the source's health.
    pub fn fail(&mut self, figs: &[Fig], text: &str) {
        self.readings
            .extend(figs.iter().map(|f| f.failed(&self.source, text)));
        if !self.errors.iter().any(|e| e == text) {
            self.errors.push(text.to_string());
        }
    }
}

/// Whether SQLite said the database is busy or locked (worth retrying, not an error).
pub(crate) fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// A read-only SQLite source, polled on its own interval.
pub struct SqliteCollector {
    name: String,
    interval: Duration,
    settings: Settings,
    /// Holds the connection on its own thread; each poll runs there.
    worker: blocking::Worker<Worker>,
    /// The reader of a database on a remote host (`None` for a local one).
    remote: Option<remote::RemoteWorker>,
}

/// What the worker needs from the config.
#[derive(Clone, Debug)]
struct Settings {
    source: String,
    path: PathBuf,
    /// Why the source's host cannot be reached at all (no transport for it).
    unreachable: Option<String>,
    pack: Option<String>,
    expected_migration: Option<String>,
    retry: Duration,
    /// Custom SQL metrics (`[[sqlite.NAME.metric]]`).
    metrics: Vec<SqlMetric>,
}

impl SqliteCollector {
    /// A database on this machine (a remote `host` reports that it needs a transport).
    pub fn new(name: &str, source: &SqliteSource) -> Self {
        Self::on(
            name,
            source,
            crate::collect::reach_without_pool(&source.host),
        )
    }

    /// A database on the host behind `reach` (from the pool: [`crate::collect::reach`]).
    pub fn on(name: &str, source: &SqliteSource, reach: Reach) -> Self {
        let settings = Settings {
            source: name.to_string(),
            path: PathBuf::from(&source.path),
            unreachable: reach.as_ref().err().map(ToString::to_string),
            pack: source.pack.clone(),
            expected_migration: source.expected_migration.clone(),
            retry: source.interval,
            metrics: Vec::new(),
        };
        let remote = match reach {
            Ok(transport @ Transport::Ssh(_)) => Some(remote::RemoteWorker::new(
                settings.clone(),
                transport,
                source.interval,
            )),
            _ => None,
        };
        SqliteCollector {
            name: name.to_string(),
            interval: source.interval,
            worker: worker_of(&settings),
            settings,
            remote,
        }
    }

    /// Adds custom SQL metrics, each a figure `<source>.<id>`.
    pub fn with_metrics(mut self, metrics: Vec<SqlMetric>) -> Self {
        self.settings.metrics = metrics;
        self.worker = worker_of(&self.settings);
        if let Some(remote) = self.remote.take() {
            self.remote = Some(remote.with_settings(self.settings.clone()));
        }
        self
    }
}

impl Collector for SqliteCollector {
    fn name(&self) -> &str {
        &self.name
    }

    fn panes(&self) -> &'static [crate::model::pane::PaneId] {
        use crate::model::pane::PaneId;
        // The TMWS pack's figures have panes of their own; a source of SQL metrics only
        // is listed in the Figures pane.
        match self.settings.pack {
            Some(_) => &[PaneId::Rbac, PaneId::License],
            None => &[PaneId::Figures],
        }
    }

    fn interval(&self) -> Duration {
        self.interval
    }

    fn poll(&mut self) -> BoxFuture<'_, Vec<Update>> {
        Box::pin(async move {
            if let Some(remote) = self.remote.as_mut() {
                return remote.poll().await;
            }
            match self.worker.run(Worker::poll).await {
                Ok(updates) => updates,
                // Only a bug gets here (a panic in the worker); say so and start afresh next time.
                Err(e) => vec![super::failed(
                    &self.name,
                    format!("internal error while reading the database: {e}"),
                    self.interval,
                )],
            }
        })
    }
}

/// The blocking half of a source, made afresh from `settings` when a run loses it.
fn worker_of(settings: &Settings) -> blocking::Worker<Worker> {
    let settings = settings.clone();
    blocking::Worker::new(move || Worker::new(settings.clone()))
}

/// An open connection and the file it was opened on.
struct OpenDb {
    conn: Connection,
    /// The file as it was when the connection was opened.
    probe: Probe,
}

/// How a database file is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpenMode {
    /// `SQLITE_OPEN_READ_ONLY` on the path: a rollback-journal database, or a WAL database whose
    /// application has its `-wal` and `-shm` (SQLite then uses them and creates nothing).
    ReadOnly,
    /// `file:PATH?immutable=1`: a WAL database without its `-wal` or `-shm`. An ordinary
    /// read-only open would create them, owned by our user (the application's next write then
    /// fails with "attempt to write a readonly database"); immutable creates no file and takes
    /// no lock. SQLite trusts the file not to change, so each read is checked afterwards.
    Immutable,
}

/// The header's magic string (the first 16 bytes of every SQLite database).
const MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// How to open a database whose first bytes are `header`, with `wal_file` / `shm_file`
/// telling whether its `-wal` / `-shm` exist: WAL mode (header bytes 18 and 19, the file
/// format write and read versions, are 2) without both sidecars means immutable.
pub(crate) fn open_mode(header: &[u8], wal_file: bool, shm_file: bool) -> OpenMode {
    if header_says_wal(header) && !(wal_file && shm_file) {
        OpenMode::Immutable
    } else {
        OpenMode::ReadOnly
    }
}

fn header_says_wal(header: &[u8]) -> bool {
    header.len() >= 20 && header.starts_with(MAGIC) && (header[18] == 2 || header[19] == 2)
}

/// What is at a database's path right now: enough to choose how to open it and to notice
/// that it changed.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Probe {
    /// The path with symlinks resolved (where SQLite puts the sidecars).
    real: PathBuf,
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    wal_file: bool,
    shm_file: bool,
    /// The header says WAL mode.
    wal: bool,
    mode: OpenMode,
}

impl Probe {
    /// Looks at the file at `path` (its metadata, its first 100 bytes and its sidecars); the
    /// error says what is wrong in words an operator can act on.
    fn of(path: &Path) -> Result<Probe, OpenError> {
        let path_buf = || path.to_path_buf();
        let unreadable = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::PermissionDenied => OpenError::Denied {
                path: path_buf(),
                advice: access_advice(path),
            },
            _ => OpenError::Read {
                path: path_buf(),
                error: e,
            },
        };
        let meta = match std::fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(OpenError::Missing(path_buf()));
            }
            Err(e) => return Err(unreadable(e)),
        };
        if meta.is_dir() {
            return Err(OpenError::Directory(path_buf()));
        }
        let mut header = Vec::with_capacity(100);
        let file = std::fs::File::open(path).map_err(unreadable)?;
        if let Err(e) = file.take(100).read_to_end(&mut header) {
            return Err(OpenError::Read {
                path: path_buf(),
                error: e,
            });
        }
        if header.is_empty() {
            return Err(OpenError::Empty(path_buf()));
        }
        let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let [wal_file, shm_file] = sqlite_sidecars(&real).map(|p| p.exists());
        Ok(Probe {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            wal_file,
            shm_file,
            wal: header_says_wal(&header),
            mode: open_mode(&header, wal_file, shm_file),
            real,
        })
    }

    fn same_file(&self, other: &Probe) -> bool {
        (self.dev, self.ino) == (other.dev, other.ino)
    }

    /// Same file, same size and modification time: its content did not change.
    fn same_content(&self, other: &Probe) -> bool {
        self.same_file(other) && (self.size, self.mtime) == (other.size, other.mtime)
    }
}

/// Why a database file cannot be read or opened. `Display` is the text its figures show.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    #[error("no such file: {}", .0.display())]
    Missing(PathBuf),
    #[error("cannot read {}: {advice}", .path.display())]
    Denied { path: PathBuf, advice: String },
    #[error("cannot read {}: {error}", .path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{} is a directory, not a database file", .0.display())]
    Directory(PathBuf),
    #[error("{} is an empty file (0 bytes), not a SQLite database yet", .0.display())]
    Empty(PathBuf),
    /// SQLite refused to open it; `note` says who may read it when access is the cause.
    #[error("cannot open {}: {error}{}", .path.display(), .note.as_ref().map(|n| format!(" ({n})")).unwrap_or_default())]
    Open {
        path: PathBuf,
        error: rusqlite::Error,
        note: Option<String>,
    },
}

/// Why a file cannot be read, for the operator: its owner and mode (or those of the
/// directory that cannot be searched), the user watchpost runs as, and what to do.
fn access_advice(path: &Path) -> String {
    let (me, facts, owner, group) = ownership(path);
    match (owner, group) {
        (Some(owner), Some(group)) => format!(
            "permission denied: {facts}; give {me} read access (for example: add {me} to \
             group {group} and make the file group-readable), or run watchpost as {owner}"
        ),
        _ => format!("permission denied ({facts})"),
    }
}

/// The owner and mode of the file (or of the directory that cannot be searched) and the
/// user watchpost runs as, for an error about opening it.
fn access_note(path: &Path) -> String {
    ownership(path).1
}

/// `(our user, "… is owned by … with mode …, and watchpost runs as …", owner, group)`.
fn ownership(path: &Path) -> (String, String, Option<String>, Option<String>) {
    let me = user_name(nix::unistd::geteuid().as_raw());
    // The file itself when it can be looked at, else the nearest directory that can.
    let found = std::fs::metadata(path)
        .ok()
        .map(|m| ("the file", path.to_path_buf(), m))
        .or_else(|| {
            path.ancestors()
                .skip(1)
                .filter(|a| !a.as_os_str().is_empty())
                .find_map(|a| {
                    std::fs::metadata(a)
                        .ok()
                        .map(|m| ("the directory", a.to_path_buf(), m))
                })
        });
    match found {
        Some((what, at, meta)) => {
            let owner = user_name(meta.uid());
            let group = group_name(meta.gid());
            let facts = format!(
                "{what} {} is owned by {owner}:{group} with mode {:04o}, and watchpost runs as {me}",
                at.display(),
                meta.mode() & 0o7777,
            );
            (me, facts, Some(owner), Some(group))
        }
        None => {
            let facts = format!("watchpost runs as {me}");
            (me, facts, None, None)
        }
    }
}

/// A user's name (or its number when it has none).
pub(crate) fn user_name(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(user)) => user.name,
        _ => uid.to_string(),
    }
}

/// A group's name (or its number when it has none).
pub(crate) fn group_name(gid: u32) -> String {
    match nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid)) {
        Ok(Some(group)) => group.name,
        _ => gid.to_string(),
    }
}

/// The last integrity check, reused between runs.
#[derive(Clone, Debug)]
struct IntegrityResult {
    at: Instant,
    outcome: Result<String, String>,
}

/// The blocking half of the collector: owns the connection and the pack's memory.
struct Worker {
    settings: Settings,
    db: Option<OpenDb>,
    integrity: Option<IntegrityResult>,
    pack: PackSlot,
}

/// A source's pack: none, one from the registry, or why the configured one cannot be read
/// (an unknown id: every figure fails with that text).
type PackSlot = Result<Option<Box<dyn Pack>>, packs::UnknownPack>;

/// The pack `settings` name, built from the registry.
fn pack_of(settings: &Settings) -> PackSlot {
    match settings.pack.as_deref() {
        None | Some("") => Ok(None),
        Some(id) => {
            let options = PackOptions {
                expected_migration: settings.expected_migration.clone(),
            };
            packs::build(id, &options).map(Some)
        }
    }
}

/// Every figure of a source: its own, then its pack's.
fn figs_of(pack: &PackSlot) -> Vec<Fig> {
    let mut figs = vec![DB_SIZE_MB, DB_FREELIST, DB_INTEGRITY];
    if let Ok(Some(pack)) = pack {
        figs.extend_from_slice(pack.figs());
    }
    figs
}

impl Worker {
    fn new(settings: Settings) -> Self {
        Worker {
            pack: pack_of(&settings),
            settings,
            db: None,
            integrity: None,
        }
    }

    /// One poll: readings, tables and health, in the order the state should apply them
    /// (readings mark the source OK, so an error health comes after them).
    fn poll(&mut self) -> Vec<Update> {
        let source = self.settings.source.clone();
        let mut harvest = Harvest::new(&source);
        match self.read(&mut harvest) {
            Err(Busy(message)) => {
                vec![super::health(&source, SourceHealth::Busy { message })]
            }
            Ok(()) => {
                let mut updates = Vec::new();
                if !harvest.readings.is_empty() {
                    updates.push(Update::Readings {
                        source: source.clone(),
                        readings: harvest.readings,
                    });
                }
                for (id, table) in harvest.tables {
                    updates.push(Update::Table { id, table });
                }
                updates.push(if harvest.errors.is_empty() {
                    super::health(&source, SourceHealth::Ok)
                } else {
                    super::failed(&source, harvest.errors.join("; "), self.settings.retry)
                });
                updates
            }
        }
    }

    /// Fails every figure of the source (its own, its pack's, its metrics') with `text`.
    fn fail_all(&self, harvest: &mut Harvest, text: &str) {
        fail_all(harvest, &self.pack, &self.settings.metrics, text);
    }

    fn read(&mut self, harvest: &mut Harvest) -> Result<(), Busy> {
        if let Err(e) = &self.pack {
            self.fail_all(harvest, &e.to_string());
            return Ok(());
        }
        if let Some(text) = self.settings.unreachable.clone() {
            self.fail_all(harvest, &text);
            return Ok(());
        }
        for _ in 0..READ_ATTEMPTS {
            let opened = match self.connect() {
                Ok(opened) => opened,
                Err(e) => {
                    self.fail_all(harvest, &e.to_string());
                    return Ok(());
                }
            };
            let integrity = self.integrity.clone();
            let mut fresh = Harvest::new(&harvest.source);
            let outcome = self.read_open(&mut fresh, opened.wal);
            if opened.mode == OpenMode::Immutable {
                // Immutable means SQLite trusted the file not to change: check it did not.
                let now = Probe::of(&self.settings.path).ok();
                let held = now.as_ref().is_some_and(|now| {
                    now.mode == OpenMode::Immutable
                        && (now.wal_file, now.shm_file) == (opened.wal_file, opened.shm_file)
                        && now.same_content(&opened)
                });
                if !held {
                    // The application opened the database while we read it (its sidecars
                    // appeared: what we read may miss its newest commits) or wrote the file
                    // itself (a checkpoint: what we read may not be consistent). This poll's
                    // result goes; the next attempt opens the way the file now asks for.
                    self.integrity = integrity;
                    if now.is_some_and(|now| now.same_content(&opened)) {
                        self.db = None;
                    } else {
                        self.forget();
                    }
                    continue;
                }
            }
            harvest.readings.extend(fresh.readings);
            harvest.tables.extend(fresh.tables);
            harvest.errors.extend(fresh.errors);
            return outcome;
        }
        Err(Busy(
            "the database kept changing while it was read; reading it again at the next refresh"
                .into(),
        ))
    }

    /// Reads the figures, custom metrics and integrity check through the open connection.
    /// `wal`: the header says WAL mode (an immutable connection reports journal mode "delete").
    fn read_open(&mut self, harvest: &mut Harvest, wal: bool) -> Result<(), Busy> {
        let Some(db) = self.db.as_mut() else {
            return Ok(());
        };

        // SNAPSHOT_ATTEMPTS > 0: the loop always sets it.
        let mut outcome = Ok(None);
        for attempt in 0..SNAPSHOT_ATTEMPTS {
            if let Ok(Some(pack)) = &mut self.pack {
                catch_up(&mut db.conn, pack.as_mut())?;
            }
            // The last attempt reads whatever is left, however long it takes.
            let deadline = (attempt + 1 < SNAPSHOT_ATTEMPTS).then(|| Instant::now() + CHUNK);
            let mut fresh = Harvest::new(&harvest.source);
            outcome = read_snapshot(&mut db.conn, &mut self.pack, &mut fresh, deadline);
            if !matches!(outcome, Ok(None)) {
                harvest.readings.extend(fresh.readings);
                harvest.tables.extend(fresh.tables);
                harvest.errors.extend(fresh.errors);
                break;
            }
        }
        let wal = match outcome {
            Ok(journal_wal) => wal || journal_wal.unwrap_or(false),
            Err(SnapshotError::Busy(busy)) => return Err(busy),
            Err(SnapshotError::Fatal(e)) => {
                // The file as a whole is unreadable (not a database, I/O error): start over with
                // a fresh connection next time, in case it gets fixed or replaced.
                self.forget();
                self.fail_all(harvest, &e.to_string());
                return Ok(());
            }
        };
        let Some(db) = self.db.as_mut() else {
            return Ok(());
        };

        // Custom metrics, each its own short statement (and time budget).
        for m in &self.settings.metrics {
            harvest.add_metric(metrics::run(&db.conn, &harvest.source, m, wal));
        }

        // Outside the figures' transaction, so that transaction stays short.
        if let Some(budget) = integrity_due(self.integrity.as_ref(), wal) {
            // Busy right after our own read worked: keep the last result, try next poll.
            if let Some(outcome) = integrity_check(&db.conn, budget) {
                self.integrity = Some(IntegrityResult {
                    at: Instant::now(),
                    outcome,
                });
            }
        }
        harvest
            .readings
            .push(integrity_reading(&harvest.source, self.integrity.as_ref()));
        Ok(())
    }

    /// Makes sure `self.db` is a connection to the file now at the path, opened the way the
    /// file asks for now ([`open_mode`]); returns what the file looked like.
    fn connect(&mut self) -> Result<Probe, OpenError> {
        let path = self.settings.path.clone();
        let probe = match Probe::of(&path) {
            Ok(probe) => probe,
            Err(e) => {
                self.forget();
                return Err(e);
            }
        };
        if let Some(db) = &self.db {
            if !db.probe.same_file(&probe) {
                // A different file now lives at the path.
                self.forget();
            } else if db.probe.mode != probe.mode
                || (probe.mode == OpenMode::Immutable && !db.probe.same_content(&probe))
            {
                // The application opened or closed the database (its sidecars appeared or
                // went), or the file changed under an immutable connection (whose page cache
                // would be stale): the same file, opened afresh. What was learnt stays.
                self.db = None;
            } else {
                return Ok(db.probe.clone());
            }
        }
        let opened = match probe.mode {
            OpenMode::ReadOnly => open_read_only(&path),
            OpenMode::Immutable => open_immutable(&probe.real),
        };
        let conn = opened.map_err(|error| OpenError::Open {
            note: matches!(
                error.sqlite_error_code(),
                Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied | ErrorCode::ReadOnly)
            )
            .then(|| access_note(&probe.real)),
            path: path.clone(),
            error,
        })?;
        self.db = Some(OpenDb {
            conn,
            probe: probe.clone(),
        });
        Ok(probe)
    }

    /// Drops the connection and everything learnt from the file behind it.
    fn forget(&mut self) {
        self.db = None;
        self.integrity = None;
        if let Ok(Some(pack)) = &mut self.pack {
            pack.reset();
        }
    }
}

/// Fails every figure of a source (its own, its pack's, its metrics') with `text`.
fn fail_all(harvest: &mut Harvest, pack: &PackSlot, metrics: &[SqlMetric], text: &str) {
    harvest.fail(&figs_of(pack), text);
    for m in metrics {
        harvest
            .readings
            .push(metrics::failed(&harvest.source, m, text));
    }
}

/// The time budget of an integrity check if one is due (none run yet, or the last is
/// older than [`INTEGRITY_EVERY`]); a WAL database gets longer, as readers do not block
/// its writer.
fn integrity_due(last: Option<&IntegrityResult>, wal: bool) -> Option<Duration> {
    if last.is_some_and(|last| last.at.elapsed() < INTEGRITY_EVERY) {
        return None;
    }
    Some(if wal {
        INTEGRITY_BUDGET_WAL
    } else {
        INTEGRITY_BUDGET_ROLLBACK
    })
}

/// The integrity figure from the last check (or why there is none).
fn integrity_reading(source: &str, integrity: Option<&IntegrityResult>) -> Reading {
    match integrity {
        Some(IntegrityResult {
            at,
            outcome: Ok(text),
        }) => DB_INTEGRITY
            .text(source, text.clone())
            .with_rule(Rule::expecting("ok").with_priority(Priority::P0))
            .with_detail(format!(
                "PRAGMA quick_check, {} ago (runs every {} min)",
                age(at.elapsed()),
                INTEGRITY_EVERY.as_secs() / 60
            )),
        // The figure is unknown, but the source itself read fine: no error health for it.
        Some(IntegrityResult {
            outcome: Err(text), ..
        }) => DB_INTEGRITY.failed(source, text),
        None => DB_INTEGRITY.failed(source, "not run yet: the database was busy"),
    }
}

/// Opens a WAL database that has no `-wal`/`-shm` of its own without creating them:
/// `file:PATH?immutable=1`, read-only (no sidecar files, no locks). The caller checks after
/// each read that the file did not change meanwhile.
pub(crate) fn open_immutable(path: &Path) -> rusqlite::Result<Connection> {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let uri = file_uri(path.as_os_str().as_bytes(), "immutable=1");
    let conn = Connection::open_with_flags(
        Path::new(OsStr::from_bytes(&uri)),
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    guard(conn)
}

/// The `file:` URI of `path` with the query `params`: `%`, `?` and `#` escaped so the path
/// stays a path (locally and for the remote `sqlite3`).
pub(crate) fn file_uri(path: &[u8], params: &str) -> Vec<u8> {
    let mut uri = b"file:".to_vec();
    // "//x" would be read as an authority: one leading slash is the same path.
    let mut path = path;
    while path.starts_with(b"//") {
        path = &path[1..];
    }
    for &c in path {
        match c {
            b'%' => uri.extend_from_slice(b"%25"),
            b'?' => uri.extend_from_slice(b"%3F"),
            b'#' => uri.extend_from_slice(b"%23"),
            c => uri.push(c),
        }
    }
    uri.push(b'?');
    uri.extend_from_slice(params.as_bytes());
    uri
}

/// Opens a database so that nothing can be written through the connection.
pub(crate) fn open_read_only(path: &Path) -> rusqlite::Result<Connection> {
    // A path is a path, never "file:…?mode=rwc". Not passing SQLITE_OPEN_URI is not enough:
    // the bundled SQLite is built with SQLITE_USE_URI, so a name starting with "file:" would
    // still be read as a URI. "./file:…" is not one.
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        Path::new(".").join(path)
    };
    let conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    guard(conn)
}

/// `PRAGMA query_only` and the busy handler, on every connection.
fn guard(mut conn: Connection) -> rusqlite::Result<Connection> {
    conn.pragma_update(None, "query_only", 1)?;
    // Like busy_timeout, but retrying every millisecond: SQLite's own schedule backs off to
    // 25-100 ms sleeps, and a reader that sleeps that long keeps missing the short gaps between
    // a busy application's commits (in rollback-journal mode). Waiting holds no lock, so the
    // quicker retries cost the application nothing.
    let mut started = Instant::now();
    conn.busy_handler(Some(move |attempt: i32| {
        if attempt == 0 {
            started = Instant::now();
        }
        if started.elapsed() >= BUSY_TIMEOUT {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
        true
    }))?;
    Ok(conn)
}

enum SnapshotError {
    Busy(Busy),
    /// The database cannot be read at all (not a database, corrupt header, I/O error).
    Fatal(rusqlite::Error),
}

/// Reads every section in one short read transaction. Returns whether the file is in WAL
/// mode, or `None` when the pack's big tables had more new rows than `deadline` allowed
/// (nothing is added to `harvest` then: the caller catches up and tries again).
fn read_snapshot(
    conn: &mut Connection,
    pack: &mut PackSlot,
    harvest: &mut Harvest,
    deadline: Option<Instant>,
) -> Result<Option<bool>, SnapshotError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Deferred)
        .map_err(fatal)?;
    // The first read takes the snapshot (SHARED lock or WAL read mark); this is where
    // "busy" and "file is not a database" show up.
    tx.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))
        .map_err(fatal)?;
    let wal = tx
        .query_row("PRAGMA journal_mode", [], |row| row.get::<_, String>(0))
        .map(|mode| mode.eq_ignore_ascii_case("wal"))
        .map_err(fatal)?;

    let source = harvest.source.clone();
    let busy = |b: Busy| SnapshotError::Busy(b);
    if let Ok(Some(pack)) = pack
        && !pack
            .collect(&mut LocalReader(&tx), harvest, deadline, None)
            .map_err(busy)?
    {
        tx.commit().map_err(fatal)?;
        return Ok(None);
    }
    harvest
        .add(
            &[DB_SIZE_MB, DB_FREELIST],
            db_size(&mut LocalReader(&tx), &source),
        )
        .map_err(busy)?;
    tx.commit().map_err(fatal)?;
    Ok(Some(wal))
}

fn fatal(e: rusqlite::Error) -> SnapshotError {
    if is_busy(&e) {
        SnapshotError::Busy(Busy(e.to_string()))
    } else {
        SnapshotError::Fatal(e)
    }
}

/// Reads the pack's backlog of new rows (all of them on the first poll) in short read
/// transactions of at most [`CHUNK`] each, so a first read of millions of rows never holds a
/// lock long enough to hold up the application's writes.
fn catch_up(conn: &mut Connection, pack: &mut dyn Pack) -> Result<(), Busy> {
    let started = Instant::now();
    loop {
        let tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Deferred) {
            Ok(tx) => tx,
            Err(e) if is_busy(&e) => return Err(Busy(e.to_string())),
            // The snapshot meets the same error and reports it.
            Err(_) => return Ok(()),
        };
        let done = pack.read_tails(
            &mut LocalReader(&tx),
            now_secs(),
            Some(Instant::now() + CHUNK),
        )?;
        // Only a read: nothing to lose if the commit fails, the snapshot reports the cause.
        if tx.commit().is_err() || done || started.elapsed() >= CATCH_UP_LIMIT {
            return Ok(());
        }
        // A gap for the application's writers (in rollback-journal mode our SHARED lock
        // keeps them from committing while a chunk is read).
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub(crate) const PAGES_SQL: &str =
    "SELECT page_count, page_size FROM pragma_page_count(), pragma_page_size()";
pub(crate) const FREELIST_SQL: &str = "PRAGMA freelist_count";

/// Seed 000 step 11: size in MB and freelist pages.
fn db_size<D: SqlRows>(db: &mut D, source: &str) -> rusqlite::Result<Section> {
    let pages_row = db.rows(PAGES_SQL)?;
    let row = pages_row
        .first()
        .ok_or(rusqlite::Error::QueryReturnedNoRows)?;
    let (pages, page_size) = (int(col(row, 0)?)?, int(col(row, 1)?)?);
    let freelist_row = db.rows(FREELIST_SQL)?;
    let freelist = int(col(
        freelist_row
            .first()
            .ok_or(rusqlite::Error::QueryReturnedNoRows)?,
        0,
    )?)?;
    let bytes = pages as f64 * page_size as f64;
    Ok(Section {
        readings: vec![
            DB_SIZE_MB
                .number(source, bytes / 1024.0 / 1024.0, "MB")
                .with_detail(format!("{pages} pages of {page_size} bytes")),
            DB_FREELIST
                .count(source, freelist)
                .with_rule(Rule::warn_only(Threshold::above(1000.0)).with_priority(Priority::P2))
                .with_detail(if freelist > 1000 {
                    "VACUUM in a maintenance window".to_string()
                } else {
                    format!(
                        "{:.1}% of {pages} pages",
                        100.0 * freelist as f64 / pages.max(1) as f64
                    )
                }),
        ],
        tables: Vec::new(),
    })
}

/// `PRAGMA quick_check` within a time budget: its text, or why it could not finish;
/// `None` when the database was busy (skipped, tried again next poll).
fn integrity_check(conn: &Connection, budget: Duration) -> Option<Result<String, String>> {
    let result = with_deadline(conn, budget, || -> rusqlite::Result<Vec<String>> {
        let mut stmt = conn.prepare("PRAGMA quick_check(10)")?;
        let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
        rows.collect()
    });
    Some(match result {
        Ok(lines) if lines.is_empty() => Err("quick_check returned nothing".into()),
        Ok(lines) => Ok(lines.join("; ")),
        Err(e) if is_busy(&e) => return None,
        Err(e) if e.sqlite_error_code() == Some(ErrorCode::OperationInterrupted) => Err(format!(
            "quick_check stopped after {} ms so as not to hold up the application's writes; \
             run PRAGMA integrity_check in a maintenance window",
            budget.as_millis()
        )),
        Err(e) => Err(e.to_string()),
    })
}

/// Runs `f`, interrupting whatever statement it runs on `conn` once `budget` has passed.
fn with_deadline<T>(conn: &Connection, budget: Duration, f: impl FnOnce() -> T) -> T {
    let handle = conn.get_interrupt_handle();
    let (done, wait) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(budget) {
            // A no-op if the statement already finished.
            handle.interrupt();
        }
    });
    let out = f();
    drop(done);
    let _ = watchdog.join();
    out
}

fn age(elapsed: Duration) -> String {
    crate::model::time::format_age(chrono::Duration::from_std(elapsed).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(path: &Path) -> Settings {
        Settings {
            source: "db".into(),
            path: path.to_path_buf(),
            unreachable: None,
            pack: None,
            expected_migration: None,
            retry: Duration::from_secs(5),
            metrics: Vec::new(),
        }
    }

    #[test]
    fn integrity_check_is_reused_between_runs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        let mut worker = Worker::new(settings(&path));
        worker.poll();
        let first = worker.integrity.as_ref().unwrap().at;
        worker.poll();
        assert_eq!(
            worker.integrity.as_ref().unwrap().at,
            first,
            "ran again within {INTEGRITY_EVERY:?}"
        );
        // A replaced file (a new inode renamed over the old one) forgets the old result.
        let fresh = dir.path().join("fresh.db");
        Connection::open(&fresh)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        std::fs::rename(&fresh, &path).unwrap();
        worker.poll();
        assert!(worker.integrity.as_ref().unwrap().at > first);
    }

    #[test]
    fn a_slow_statement_is_interrupted_at_the_deadline() {
        let conn = Connection::open_in_memory().unwrap();
        let started = Instant::now();
        let result: rusqlite::Result<i64> = with_deadline(&conn, Duration::from_millis(50), || {
            conn.query_row(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n",
                [],
                |row| row.get(0),
            )
        });
        assert_eq!(
            result.unwrap_err().sqlite_error_code(),
            Some(ErrorCode::OperationInterrupted)
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        // The handle does not linger: the next statement runs normally.
        let one: i64 = conn.query_row("SELECT 1", [], |row| row.get(0)).unwrap();
        assert_eq!(one, 1);
    }

    /// A WAL database with table `t` of `rows` rows, cleanly closed (no `-wal`, no `-shm`).
    fn closed_wal_db(dir: &Path, rows: i64) -> PathBuf {
        let path = dir.join("app.db");
        let conn = Connection::open(&path).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        conn.execute_batch("CREATE TABLE t (x)").unwrap();
        for i in 0..rows {
            conn.execute("INSERT INTO t VALUES (?1)", [i]).unwrap();
        }
        drop(conn);
        assert_eq!(sidecars(&path), (false, false));
        path
    }

    fn sidecars(path: &Path) -> (bool, bool) {
        let [wal, shm] = sqlite_sidecars(path).map(|p| p.exists());
        (wal, shm)
    }

    fn counting(path: &Path, query: &str) -> Worker {
        let metric: SqlMetric =
            toml::from_str(&format!("id = \"rows\"\nquery = {query:?}")).unwrap();
        Worker::new(Settings {
            metrics: vec![metric],
            ..settings(path)
        })
    }

    /// The `db.rows` figure of a poll (panics with the poll when it is missing or failed).
    fn rows_of(updates: &[Update]) -> f64 {
        updates
            .iter()
            .find_map(|u| match u {
                Update::Readings { readings, .. } => readings.iter().find(|r| r.id == "db.rows"),
                _ => None,
            })
            .and_then(|r| match r.value {
                crate::model::figure::Value::Number(n) => Some(n),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no db.rows in {updates:?}"))
    }

    fn mode_of(worker: &Worker) -> OpenMode {
        worker.db.as_ref().expect("a connection").probe.mode
    }

    #[test]
    fn the_mode_follows_the_header_and_the_sidecars() {
        let mut wal = [0u8; 100];
        wal[..16].copy_from_slice(MAGIC);
        wal[18] = 2;
        wal[19] = 2;
        let mut rollback = wal;
        rollback[18] = 1;
        rollback[19] = 1;
        // WAL without its sidecars (cleanly closed, or a persistent -wal without -shm).
        assert_eq!(open_mode(&wal, false, false), OpenMode::Immutable);
        assert_eq!(open_mode(&wal, true, false), OpenMode::Immutable);
        assert_eq!(open_mode(&wal, false, true), OpenMode::Immutable);
        // The application has them: SQLite uses them and creates nothing.
        assert_eq!(open_mode(&wal, true, true), OpenMode::ReadOnly);
        // Rollback journal: a reader creates no file.
        assert_eq!(open_mode(&rollback, false, false), OpenMode::ReadOnly);
        assert_eq!(open_mode(&rollback, true, true), OpenMode::ReadOnly);
        // Not a database, or too short to say: SQLite reports it, with nothing created.
        let mut other = wal;
        other[0] = b'X';
        assert_eq!(open_mode(&other, false, false), OpenMode::ReadOnly);
        assert_eq!(open_mode(&wal[..18], false, false), OpenMode::ReadOnly);
        assert_eq!(open_mode(b"", false, false), OpenMode::ReadOnly);
    }

    #[test]
    fn the_probe_reads_the_real_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = closed_wal_db(dir.path(), 1);
        let probe = Probe::of(&path).unwrap();
        assert!(probe.wal);
        assert_eq!(probe.mode, OpenMode::Immutable);
        // Through a symlink the sidecars are looked for beside the real file (as SQLite does).
        let link = dir.path().join("link.db");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("INSERT INTO t VALUES (9)").unwrap();
        assert_eq!(sidecars(&path), (true, true));
        assert_eq!(Probe::of(&link).unwrap().mode, OpenMode::ReadOnly);
        drop(conn);
        // A rollback-journal database.
        let old = dir.path().join("old.db");
        Connection::open(&old)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        let probe = Probe::of(&old).unwrap();
        assert!(!probe.wal);
        assert_eq!(probe.mode, OpenMode::ReadOnly);
    }

    #[test]
    fn uris_escape_what_sqlite_would_read_as_uri_syntax() {
        assert_eq!(
            file_uri(b"/var/x.db", "immutable=1"),
            b"file:/var/x.db?immutable=1"
        );
        assert_eq!(
            file_uri(b"/tmp/a?mode=rwc#x%y.db", "immutable=1"),
            b"file:/tmp/a%3Fmode=rwc%23x%25y.db?immutable=1"
        );
        assert_eq!(
            file_uri(b"///srv/x.db", "mode=ro"),
            b"file:/srv/x.db?mode=ro"
        );
        // A path with URI syntax in its name opens that file, and only that file.
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join("a?mode=rwc#x%41.db");
        std::fs::copy(closed_wal_db(dir.path(), 3), &odd).unwrap();
        let conn = open_immutable(&odd).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 3);
        assert!(!dir.path().join("a").exists());
    }

    #[test]
    fn a_cleanly_closed_wal_database_gets_no_sidecars() {
        let dir = tempfile::tempdir().unwrap();
        let path = closed_wal_db(dir.path(), 5);
        let mut worker = counting(&path, "SELECT count(*) FROM t");
        for _ in 0..2 {
            let updates = worker.poll();
            assert_eq!(rows_of(&updates), 5.0);
            assert!(
                matches!(
                    updates.last(),
                    Some(Update::Health {
                        health: SourceHealth::Ok,
                        ..
                    })
                ),
                "{updates:?}"
            );
            assert_eq!(mode_of(&worker), OpenMode::Immutable);
            assert_eq!(
                sidecars(&path),
                (false, false),
                "a file of the app's was created"
            );
        }
        // The integrity check ran on the same connection, with nothing created either.
        assert!(matches!(
            worker.integrity.as_ref().map(|i| &i.outcome),
            Some(Ok(text)) if text == "ok"
        ));
        // And the application writes afterwards as it did before.
        Connection::open(&path)
            .unwrap()
            .execute_batch("INSERT INTO t VALUES (6)")
            .unwrap();
    }

    #[test]
    fn the_connection_follows_the_application_opening_and_closing() {
        let dir = tempfile::tempdir().unwrap();
        let path = closed_wal_db(dir.path(), 2);
        let mut worker = counting(&path, "SELECT count(*) FROM t");
        assert_eq!(rows_of(&worker.poll()), 2.0);
        assert_eq!(mode_of(&worker), OpenMode::Immutable);

        // The application opens it and commits rows that stay in its -wal.
        let app = Connection::open(&path).unwrap();
        app.execute_batch("PRAGMA wal_autocheckpoint=0; INSERT INTO t VALUES (3), (4)")
            .unwrap();
        assert_eq!(sidecars(&path), (true, true));
        assert_eq!(rows_of(&worker.poll()), 4.0);
        assert_eq!(mode_of(&worker), OpenMode::ReadOnly);
        app.execute_batch("INSERT INTO t VALUES (5)").unwrap();
        assert_eq!(rows_of(&worker.poll()), 5.0);
        drop(app);
        // Our connection kept the application's sidecars from being removed as it closed
        // (they are its own files); its next clean close removes them.
        drop(worker);
        let app = Connection::open(&path).unwrap();
        let _: i64 = app
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        drop(app);

        // Between two polls the application opened, wrote and closed it (a checkpoint into
        // the file, the sidecars removed): an immutable connection must not serve its cache.
        let mut worker = counting(&path, "SELECT count(*) FROM t");
        assert_eq!(sidecars(&path), (false, false));
        assert_eq!(rows_of(&worker.poll()), 5.0);
        assert_eq!(mode_of(&worker), OpenMode::Immutable);
        {
            let app = Connection::open(&path).unwrap();
            for i in 0..200 {
                app.execute("INSERT INTO t VALUES (?1)", [i]).unwrap();
            }
        }
        assert_eq!(sidecars(&path), (false, false));
        assert_eq!(rows_of(&worker.poll()), 205.0);
        assert_eq!(mode_of(&worker), OpenMode::Immutable);
    }

    #[test]
    fn a_read_the_application_overtook_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = closed_wal_db(dir.path(), 1);
        // A metric that takes a while (about half a second; under 5 s, its time budget,
        // on a loaded machine) after counting the rows.
        let mut worker = counting(
            &path,
            "SELECT (SELECT count(*) FROM t) + 0 * (WITH RECURSIVE c(x) AS \
             (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1500000) SELECT count(*) FROM c)",
        );
        let app_path = path.clone();
        let (reader_done, wait_for_reader) = mpsc::channel::<()>();
        let app = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            let app = Connection::open(&app_path).unwrap();
            app.execute_batch("INSERT INTO t VALUES (2)").unwrap();
            // Held open until the reader is done, however slow the machine: closing would
            // remove the sidecars and send the reader back to immutable mode.
            let _ = wait_for_reader.recv_timeout(Duration::from_secs(120));
        });
        let started = Instant::now();
        let updates = worker.poll();
        let elapsed = started.elapsed();
        let mode = mode_of(&worker);
        reader_done.send(()).unwrap();
        app.join().unwrap();
        assert!(
            elapsed > Duration::from_millis(50),
            "the read ended before the application opened the database ({elapsed:?}); \
             the test needs a slower query"
        );
        // The immutable read (1 row) was discarded; the one through the app's sidecars counts.
        assert_eq!(rows_of(&updates), 2.0, "{updates:?}");
        assert_eq!(mode, OpenMode::ReadOnly);
    }

    #[test]
    fn an_empty_file_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.db");
        std::fs::write(&path, b"").unwrap();
        let mut worker = Worker::new(settings(&path));
        let updates = worker.poll();
        let text = format!("{updates:?}");
        assert!(text.contains("empty file"), "{text}");
        assert!(!text.contains("no such table"), "{text}");
    }

    #[test]
    fn the_connection_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        let conn = open_read_only(&path).unwrap();
        let error = conn.execute("INSERT INTO t VALUES (1)", []).unwrap_err();
        assert!(
            error.to_string().contains("readonly") || error.to_string().contains("read-only"),
            "{error}"
        );
        // A "file:" name is a plain path, never a URI (with URIs on this would open x.db).
        let uri = format!("file:{}", path.display());
        assert!(open_read_only(Path::new(&uri)).is_err());
    }
}
