//! SQLite sources: a database file read strictly read-only, with optional packs of figures
//! (the TMWS pack of seed 000 is in [`super::tmws`]).
//!
//! How this collector stays out of the application's way:
//! - the file is opened with `SQLITE_OPEN_READ_ONLY` (no URI parsing) and `PRAGMA query_only`,
//!   so neither we nor a bug of ours can write to it;
//! - each poll reads in one short `BEGIN DEFERRED … COMMIT`; no read transaction (and so no
//!   SHARED lock or WAL snapshot) is held between polls;
//! - a busy or locked database is waited for at most [`BUSY_TIMEOUT`], then reported as
//!   [`SourceHealth::Busy`] with no readings, so the figures already shown stay as they were;
//! - the connection is kept between polls and reopened when the file was replaced (another
//!   inode: restore, `VACUUM INTO` + rename) or disappeared;
//! - every rusqlite call runs in `spawn_blocking`; the worker is moved in and out;
//! - a pack's big tables are read incrementally (see `tmws/tail.rs`); the first read of a
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

mod metrics;
mod remote;

use crate::collect::tmws::tail::{LocalReader, TableReader};
use crate::collect::{Collector, Reach, tmws::TmwsPack};
use crate::config::{SqlMetric, SqliteSource};
use crate::model::catalog::{
    Fig,
    sqlite::{DB_FREELIST, DB_INTEGRITY, DB_SIZE_MB},
};
use crate::model::figure::Reading;
use crate::model::rule::{Priority, Rule, Threshold};
use crate::model::update::{SourceHealth, Table, Update};
use crate::transport::Transport;
use futures::future::BoxFuture;
use rusqlite::types::Value;
use rusqlite::{Connection, ErrorCode, OpenFlags};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a poll waits for a lock held by the application before it reports "busy"
/// (the wait itself holds no lock, so it never slows the application).
pub const BUSY_TIMEOUT: Duration = Duration::from_millis(250);

/// The integrity check reads the whole file, so it runs at most this often; between runs the
/// last result is shown with its age.
pub const INTEGRITY_EVERY: Duration = Duration::from_secs(5 * 60);

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

/// What one section of queries produced.
#[derive(Debug, Default)]
pub struct Section {
    pub readings: Vec<Reading>,
    /// Drill-down tables by id (`<source>.rbac.top_denied`).
    pub tables: Vec<(String, Table)>,
}

/// The database answered "busy" or "locked": the poll is abandoned and the figures kept.
#[derive(Debug)]
pub struct Busy(pub String);

/// Everything one poll gathered, section by section.
#[derive(Debug)]
pub struct Harvest {
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
    pub fn add_metric(&mut self, outcome: metrics::Outcome) {
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

/// Rows of one query as owned values: how the pack reads its small tables, locally or
/// from a remote batch.
pub type Rows = Vec<Vec<Value>>;

/// Something that answers a query with its rows.
pub trait SqlRows {
    fn rows(&mut self, sql: &str) -> rusqlite::Result<Rows>;
}

impl SqlRows for LocalReader<'_> {
    fn rows(&mut self, sql: &str) -> rusqlite::Result<Rows> {
        let mut stmt = self.0.prepare_cached(sql)?;
        let columns = stmt.column_count();
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(
                (0..columns)
                    .map(|i| row.get::<_, Value>(i))
                    .collect::<rusqlite::Result<Vec<_>>>()?,
            );
        }
        Ok(out)
    }
}

/// What a pack reads a database through: its small tables and its big ones.
pub trait PackDb: SqlRows + TableReader {}
impl<T: SqlRows + TableReader> PackDb for T {}

/// Whether SQLite said the database is busy or locked (worth retrying, not an error).
pub fn is_busy(error: &rusqlite::Error) -> bool {
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
    /// Moved into `spawn_blocking` for each poll and back; `None` only while a poll runs
    /// (or after a poll was cancelled, when a fresh worker is made).
    worker: Option<Worker>,
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
            unreachable: reach.as_ref().err().cloned(),
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
            worker: Some(Worker::new(settings.clone())),
            settings,
            remote,
        }
    }

    /// Adds custom SQL metrics, each a figure `<source>.<id>`.
    pub fn with_metrics(mut self, metrics: Vec<SqlMetric>) -> Self {
        self.settings.metrics = metrics;
        self.worker = Some(Worker::new(self.settings.clone()));
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

    fn panes(&self) -> &'static [&'static str] {
        &["rbac", "license"]
    }

    fn interval(&self) -> Duration {
        self.interval
    }

    fn poll(&mut self) -> BoxFuture<'_, Vec<Update>> {
        Box::pin(async move {
            if let Some(remote) = self.remote.as_mut() {
                return remote.poll().await;
            }
            let mut worker = self
                .worker
                .take()
                .unwrap_or_else(|| Worker::new(self.settings.clone()));
            let joined = tokio::task::spawn_blocking(move || {
                let updates = worker.poll();
                (worker, updates)
            })
            .await;
            match joined {
                Ok((worker, updates)) => {
                    self.worker = Some(worker);
                    updates
                }
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

/// An open connection and the file it was opened on.
struct OpenDb {
    conn: Connection,
    dev: u64,
    ino: u64,
}

/// The last integrity check, reused between runs.
#[derive(Clone, Debug)]
struct IntegrityResult {
    at: Instant,
    outcome: Result<String, String>,
}

/// The blocking half of the collector: owns the connection and the packs' memory.
struct Worker {
    settings: Settings,
    db: Option<OpenDb>,
    integrity: Option<IntegrityResult>,
    pack: Pack,
}

enum Pack {
    None,
    Tmws(Box<TmwsPack>),
    Unknown(String),
}

impl Worker {
    fn new(settings: Settings) -> Self {
        let pack = match settings.pack.as_deref() {
            None | Some("") => Pack::None,
            Some("tmws") => {
                Pack::Tmws(Box::new(TmwsPack::new(settings.expected_migration.clone())))
            }
            Some(other) => Pack::Unknown(other.to_string()),
        };
        Worker {
            settings,
            db: None,
            integrity: None,
            pack,
        }
    }

    fn figs(&self) -> Vec<Fig> {
        let mut figs = vec![DB_SIZE_MB, DB_FREELIST, DB_INTEGRITY];
        if let Pack::Tmws(_) = self.pack {
            figs.extend_from_slice(crate::model::catalog::tmws::ALL);
        }
        figs
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
        harvest.fail(&self.figs(), text);
        for m in &self.settings.metrics {
            harvest
                .readings
                .push(metrics::failed(&harvest.source, m, text));
        }
    }

    fn read(&mut self, harvest: &mut Harvest) -> Result<(), Busy> {
        if let Pack::Unknown(name) = &self.pack {
            let text = format!("unknown pack {name:?} (known packs: tmws)");
            self.fail_all(harvest, &text);
            return Ok(());
        }
        if let Some(text) = self.settings.unreachable.clone() {
            self.fail_all(harvest, &text);
            return Ok(());
        }
        if let Err(text) = self.connect() {
            self.fail_all(harvest, &text);
            return Ok(());
        }
        let Some(db) = self.db.as_mut() else {
            return Ok(());
        };

        let mut outcome = Err(SnapshotError::Fatal("not read".into()));
        for attempt in 0..SNAPSHOT_ATTEMPTS {
            if let Pack::Tmws(pack) = &mut self.pack {
                catch_up(&mut db.conn, pack)?;
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
            Ok(wal) => wal.unwrap_or(false),
            Err(SnapshotError::Busy(busy)) => return Err(busy),
            Err(SnapshotError::Fatal(text)) => {
                // The file as a whole is unreadable (not a database, I/O error): start over with
                // a fresh connection next time, in case it gets fixed or replaced.
                self.forget();
                self.fail_all(harvest, &text);
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

    /// Makes sure `self.db` is a connection to the file now at the path.
    fn connect(&mut self) -> Result<(), String> {
        let path = self.settings.path.clone();
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) => {
                self.forget();
                return Err(match e.kind() {
                    std::io::ErrorKind::NotFound => format!("no such file: {}", path.display()),
                    _ => format!("cannot read {}: {e}", path.display()),
                });
            }
        };
        if meta.is_dir() {
            self.forget();
            return Err(format!(
                "{} is a directory, not a database file",
                path.display()
            ));
        }
        if let Some(db) = &self.db
            && (db.dev, db.ino) == (meta.dev(), meta.ino())
        {
            return Ok(());
        }
        // A different file now lives at the path (or this is the first poll).
        self.forget();
        let conn =
            open_read_only(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        self.db = Some(OpenDb {
            conn,
            dev: meta.dev(),
            ino: meta.ino(),
        });
        Ok(())
    }

    /// Drops the connection and everything learnt from the file behind it.
    fn forget(&mut self) {
        self.db = None;
        self.integrity = None;
        if let Pack::Tmws(pack) = &mut self.pack {
            pack.reset();
        }
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

/// Opens a database so that nothing can be written through the connection.
pub fn open_read_only(path: &Path) -> rusqlite::Result<Connection> {
    // A path is a path, never "file:…?mode=rwc". Not passing SQLITE_OPEN_URI is not enough:
    // the bundled SQLite is built with SQLITE_USE_URI, so a name starting with "file:" would
    // still be read as a URI. "./file:…" is not one.
    let path = if path.is_absolute() {
        path.to_path_buf()
    } else {
        Path::new(".").join(path)
    };
    let mut conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
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
    Fatal(String),
}

/// Reads every section in one short read transaction. Returns whether the file is in WAL
/// mode, or `None` when the pack's big tables had more new rows than `deadline` allowed
/// (nothing is added to `harvest` then: the caller catches up and tries again).
fn read_snapshot(
    conn: &mut Connection,
    pack: &mut Pack,
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
    if let Pack::Tmws(pack) = pack
        && !pack.collect(&tx, harvest, deadline).map_err(busy)?
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
        SnapshotError::Fatal(e.to_string())
    }
}

/// Reads the pack's backlog of new rows (all of them on the first poll) in short read
/// transactions of at most [`CHUNK`] each, so a first read of millions of rows never holds a
/// lock long enough to hold up the application's writes.
fn catch_up(conn: &mut Connection, pack: &mut TmwsPack) -> Result<(), Busy> {
    let started = Instant::now();
    loop {
        let tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Deferred) {
            Ok(tx) => tx,
            Err(e) if is_busy(&e) => return Err(Busy(e.to_string())),
            // The snapshot meets the same error and reports it.
            Err(_) => return Ok(()),
        };
        let done = pack.read_tails(&tx, Some(Instant::now() + CHUNK))?;
        // Only a read: nothing to lose if the commit fails, the snapshot reports the cause.
        if tx.commit().is_err() || done || started.elapsed() >= CATCH_UP_LIMIT {
            return Ok(());
        }
        // A gap for the application's writers (in rollback-journal mode our SHARED lock
        // keeps them from committing while a chunk is read).
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub const PAGES_SQL: &str =
    "SELECT page_count, page_size FROM pragma_page_count(), pragma_page_size()";
pub const FREELIST_SQL: &str = "PRAGMA freelist_count";

/// Seed 000 step 11: size in MB and freelist pages.
fn db_size<D: SqlRows>(db: &mut D, source: &str) -> rusqlite::Result<Section> {
    use crate::collect::tmws::{col, int};
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
