//! The record's SQLite schema, its single writer thread and its readers.
//!
//! Figures are kept at a fixed resolution for the whole window: the window is cut into at
//! most [`MAX_BUCKETS`] buckets (30 s for 24 hours, never under a second), and each bucket
//! of each figure is one row with the count, min, max, sum and last of its numbers, the
//! last text, and the set of conditions seen in it. Nothing outside the window is kept.
//! With [`ROW_BYTES_BOUND`] bytes a row at most (measured by `tests/it/record.rs`), 200
//! figures over a whole window stay under [`samples_bound_bytes`] ≈ 37 MB, below the
//! default [`DEFAULT_MAX_MB`]; past `record_max_mb` new buckets are dropped and counted.
//!
//! One thread writes. It takes messages from a bounded channel (the app never waits for
//! it: a full channel drops and counts), folds samples into buckets in memory, and commits
//! one transaction every [`COMMIT_EVERY`], so a `kill -9` loses at most that much. WAL with
//! `synchronous = NORMAL`: a committed transaction survives the process dying.

use crate::model::figure::{Severity, Value};
use crate::model::rule::Priority;
use crate::model::sqlite_sidecars;
use crate::rules::engine::Condition;
use crate::state::alerts::{AlertEvent, EventKind};
use crate::state::{Note, Outgoing};
use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The window is cut into at most this many buckets per figure.
pub const MAX_BUCKETS: i64 = 2880;
/// How often the writer commits.
pub const COMMIT_EVERY: Duration = Duration::from_secs(1);
/// Messages waiting for the writer; past this the app drops (and counts) rather than wait.
pub(crate) const CHANNEL_CAPACITY: usize = 65_536;
/// Default size limit of a record.
pub const DEFAULT_MAX_MB: u64 = 50;
/// An upper bound of the bytes one sample row takes on disk, b-tree overhead included.
pub(crate) const ROW_BYTES_BOUND: u64 = 64;
/// Alert events kept; past this (a pathological flapping storm) they are counted, not kept.
pub(crate) const MAX_ALERT_EVENTS: i64 = 50_000;
/// Notes kept, and their length.
pub(crate) const MAX_NOTES: i64 = 10_000;
pub(crate) const MAX_NOTE_CHARS: usize = 500;
/// Current schema.
pub(crate) const SCHEMA_VERSION: i64 = 1;

/// The bound on sample bytes for `figures` figures over a whole window.
pub fn samples_bound_bytes(figures: u64) -> u64 {
    figures * MAX_BUCKETS as u64 * ROW_BYTES_BOUND
}

/// Seconds per bucket for a window of `length_secs`.
pub fn bucket_secs(length_secs: i64) -> i64 {
    ((length_secs + MAX_BUCKETS - 1) / MAX_BUCKETS).max(1)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS figures (
  id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, name TEXT NOT NULL, unit TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS samples (
  figure INTEGER NOT NULL, t INTEGER NOT NULL, n INTEGER NOT NULL,
  min REAL, max REAL, sum REAL, last REAL, text TEXT, seen INTEGER NOT NULL,
  PRIMARY KEY (figure, t)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alerts (
  seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, figure TEXT NOT NULL, name TEXT NOT NULL,
  kind TEXT NOT NULL, condition TEXT NOT NULL, severity TEXT NOT NULL, priority TEXT NOT NULL,
  value TEXT NOT NULL, since INTEGER NOT NULL, began INTEGER NOT NULL,
  silenced INTEGER NOT NULL, notified INTEGER NOT NULL, held_back INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (
  offset_s INTEGER NOT NULL, at INTEGER NOT NULL, figure TEXT NOT NULL, name TEXT NOT NULL,
  value TEXT NOT NULL, num REAL, unit TEXT NOT NULL, condition TEXT NOT NULL,
  PRIMARY KEY (offset_s, figure)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS notes (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, text TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS coverage (t INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS logs (
  source TEXT NOT NULL, t INTEGER NOT NULL, lines INTEGER NOT NULL, errors INTEGER NOT NULL,
  critical INTEGER NOT NULL, PRIMARY KEY (source, t)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS log_gaps (
  source TEXT NOT NULL, from_ms INTEGER NOT NULL, to_ms INTEGER NOT NULL,
  read INTEGER NOT NULL, total INTEGER NOT NULL, why TEXT NOT NULL);
";

/// Conditions as bits, so a bucket can say everything it saw.
pub(crate) fn condition_bit(c: Condition) -> i64 {
    match c {
        Condition::Ok => 1,
        Condition::Warn => 2,
        Condition::Crit => 4,
        Condition::NoData => 8,
        Condition::SourceError => 16,
    }
}

/// The worst condition in a set of bits (crit > error > no data > warn > ok).
pub(crate) fn worst_condition(bits: i64) -> Option<Condition> {
    [
        Condition::Crit,
        Condition::SourceError,
        Condition::NoData,
        Condition::Warn,
        Condition::Ok,
    ]
    .into_iter()
    .find(|c| bits & condition_bit(*c) != 0)
}

pub(crate) fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

pub fn from_secs(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(s, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// What a record says about its window.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RecordMeta {
    pub deployment: String,
    pub version: String,
    pub start: DateTime<Utc>,
    pub length_secs: i64,
    /// Checkpoint offsets in seconds from the start.
    pub checkpoints: Vec<i64>,
    pub bucket_secs: i64,
    /// The success criteria the window is judged by (JSON of `report::Criterion`).
    #[serde(default)]
    pub criteria: serde_json::Value,
    /// The maintenance silences (JSON of `rules::notify::Silence`).
    #[serde(default)]
    pub silences: serde_json::Value,
    #[serde(default)]
    pub max_mb: u64,
}

/// One figure of the record.
#[derive(Clone, Debug, PartialEq)]
pub struct FigureInfo {
    pub key: String,
    pub name: String,
    pub unit: String,
}

/// One bucket of one figure.
#[derive(Clone, Debug, PartialEq)]
pub struct Bucket {
    pub t: DateTime<Utc>,
    /// Numbers seen.
    pub n: i64,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub sum: Option<f64>,
    pub last: Option<f64>,
    pub text: Option<String>,
    /// Condition bits (see [`condition_bit`]).
    pub seen: i64,
}

impl Bucket {
    pub fn mean(&self) -> Option<f64> {
        match (self.sum, self.n) {
            (Some(sum), n) if n > 0 => Some(sum / n as f64),
            _ => None,
        }
    }

    pub fn worst(&self) -> Option<Condition> {
        worst_condition(self.seen)
    }
}

/// A checkpoint snapshot row: one figure as it stood at the checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct SnapshotFigure {
    pub id: String,
    pub name: String,
    /// Displayed value (or error).
    pub value: String,
    pub number: Option<f64>,
    pub unit: String,
    pub condition: Condition,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub offset_secs: i64,
    pub at: DateTime<Utc>,
    pub figures: Vec<SnapshotFigure>,
}

/// Log lines of one source in one bucket.
#[derive(Clone, Debug, PartialEq)]
pub struct LogBucket {
    pub source: String,
    pub t: DateTime<Utc>,
    pub lines: i64,
    pub errors: i64,
    pub critical: i64,
}

/// A stretch of a source's lines the record counted only in part (see
/// [`LogGap`](crate::model::update::LogGap)).
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedGap {
    pub source: String,
    pub gap: crate::model::update::LogGap,
}

/// What goes to the writer.
#[derive(Debug)]
pub enum Msg {
    /// A sample, an alert transition or log counts, as the state produced them.
    Out(Outgoing),
    Snapshot(Snapshot),
    Note(Note),
    /// Commit now and answer.
    Flush(std::sync::mpsc::Sender<()>),
}

/// The writer's health, for the header.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WriterStatus {
    pub commits: u64,
    /// Messages dropped because the channel was full.
    pub dropped: u64,
    /// Sample buckets not kept because the record reached its size limit.
    pub full_dropped: u64,
    pub alert_events_dropped: u64,
    pub last_error: Option<String>,
    pub bytes: u64,
    /// The record reached its size limit.
    pub full: bool,
}

/// Creates the record file 0600 before SQLite opens it (SQLite gives its `-wal` and
/// `-shm` the database file's mode), and takes an existing one of ours back to 0600.
fn make_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
    super::private_dir_for(path)?;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(super::PRIVATE_FILE)
        .open(path)?;
    let meta = std::fs::metadata(path)?;
    if meta.uid() == nix::unistd::geteuid().as_raw() && meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(super::PRIVATE_FILE))?;
        for name in sqlite_sidecars(path) {
            if std::fs::metadata(&name).is_ok() {
                std::fs::set_permissions(
                    &name,
                    std::fs::Permissions::from_mode(super::PRIVATE_FILE),
                )?;
            }
        }
    }
    Ok(())
}

/// Room given to the WAL index (`-shm`) up front: four 32 KiB regions, each indexing 4,096
/// WAL frames, where the record commits every second and checkpoints every 1,000 pages.
const WAL_INDEX_RESERVE: i64 = 128 * 1024;

/// SQLite maps the `-shm` file into memory and grows it page by page; on a full file
/// system the kernel cannot back a new page, and the first write to it kills the process
/// with SIGBUS. Allocating its blocks now, while there is room, means a disk that fills
/// later fails the record's writes (said in the header) and nothing else.
///
/// The file handle used for that stays open as long as the process runs: closing any
/// handle of a file drops every POSIX lock the process holds on it, SQLite's own lock on
/// the `-shm` included (the one that tells another process opening the record — a
/// viewer, `watchpost report` — that the index is in use). Without it that process took
/// the index for abandoned and reset it under the writer, which died of SIGBUS.
fn reserve_wal_index(path: &Path) -> std::io::Result<()> {
    let [_, shm] = sqlite_sidecars(path);
    let shm = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(shm)?;
    let reserved =
        nix::fcntl::posix_fallocate(&shm, 0, WAL_INDEX_RESERVE).map_err(std::io::Error::from);
    std::mem::forget(shm);
    reserved
}

/// Opens (creating if needed) a record for writing and makes sure its schema is there.
pub fn open_rw(path: &Path) -> rusqlite::Result<Connection> {
    make_private(path).map_err(|e| {
        rusqlite::Error::ToSqlConversionFailure(Box::new(std::io::Error::new(
            e.kind(),
            format!("cannot make {} private: {e}", path.display()),
        )))
    })?;
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(SCHEMA)?;
    reserve_wal_index(path).map_err(|e| {
        rusqlite::Error::ToSqlConversionFailure(Box::new(std::io::Error::new(
            e.kind(),
            format!("cannot reserve room for the record's index: {e}"),
        )))
    })?;
    conn.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?1)",
        params![SCHEMA_VERSION.to_string()],
    )?;
    Ok(conn)
}

/// Writes the window's description (and keeps it across restarts).
pub(crate) fn write_meta(conn: &Connection, meta: &RecordMeta) -> rusqlite::Result<()> {
    let json = serde_json::to_string(meta).map_err(|e| {
        rusqlite::Error::ToSqlConversionFailure(Box::new(std::io::Error::other(e.to_string())))
    })?;
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('window', ?1)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![json],
    )?;
    Ok(())
}

/// Reads the window's description, if the record has one.
pub(crate) fn read_meta(conn: &Connection) -> rusqlite::Result<Option<RecordMeta>> {
    let json: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'window'", [], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
}

/// A record opened for reading (the report, the viewer, loading on start).
pub struct Reader {
    conn: Connection,
}

impl Reader {
    /// Opens read-only; the record is never changed through it.
    pub fn open(path: &Path) -> rusqlite::Result<Reader> {
        if !path.exists() {
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                Some(format!("no record at {}", path.display())),
            ));
        }
        // A WAL left behind with no writer (it stopped on a full disk, or was killed):
        // a reader would rebuild the WAL index in the `-shm` file, whose new pages a full
        // disk cannot back (SIGBUS). With no writer to share it with, the index can live
        // in this process's memory: exclusive locking mode, which needs a file opened for
        // writing; `query_only` keeps this connection from writing anything.
        let [wal, _] = sqlite_sidecars(path);
        if wal.exists() && !super::writer_active(path) {
            let private = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .and_then(|conn| {
                conn.pragma_update(None, "query_only", 1)?;
                conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
                conn.busy_timeout(Duration::from_secs(5))?;
                Ok(conn)
            });
            // Not ours to write (another user's record): shared, as below.
            if let Ok(conn) = private {
                return Ok(Reader { conn });
            }
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(5))?;
        Ok(Reader { conn })
    }

    pub fn meta(&self) -> rusqlite::Result<Option<RecordMeta>> {
        read_meta(&self.conn)
    }

    pub fn figures(&self) -> rusqlite::Result<Vec<FigureInfo>> {
        let mut stmt = self
            .conn
            .prepare("SELECT key, name, unit FROM figures ORDER BY key")?;
        let rows = stmt.query_map([], |r| {
            Ok(FigureInfo {
                key: r.get(0)?,
                name: r.get(1)?,
                unit: r.get(2)?,
            })
        })?;
        rows.collect()
    }

    /// Every bucket of every figure, oldest first.
    pub fn samples(&self) -> rusqlite::Result<BTreeMap<String, Vec<Bucket>>> {
        self.samples_where("", [])
    }

    /// The last `points` buckets of every figure, oldest first (for sparklines on start).
    pub(crate) fn recent_samples(
        &self,
        points: usize,
    ) -> rusqlite::Result<BTreeMap<String, Vec<Bucket>>> {
        // Per figure, newest first along the primary key: no scan of the whole table.
        let mut figures = self.conn.prepare("SELECT id, key FROM figures")?;
        let ids: Vec<(i64, String)> = figures
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut stmt = self.conn.prepare(
            "SELECT t, n, min, max, sum, last, text, seen FROM samples
             WHERE figure = ?1 ORDER BY t DESC LIMIT ?2",
        )?;
        let mut out = BTreeMap::new();
        for (id, key) in ids {
            let mut buckets: Vec<Bucket> = stmt
                .query_map(params![id, points as i64], |r| {
                    Ok(Bucket {
                        t: from_secs(r.get(0)?),
                        n: r.get(1)?,
                        min: r.get(2)?,
                        max: r.get(3)?,
                        sum: r.get(4)?,
                        last: r.get(5)?,
                        text: r.get(6)?,
                        seen: r.get(7)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            if !buckets.is_empty() {
                buckets.reverse();
                out.insert(key, buckets);
            }
        }
        Ok(out)
    }

    /// The start of every bucket in which anything was recorded, oldest first.
    pub fn covered(&self) -> rusqlite::Result<Vec<DateTime<Utc>>> {
        let mut stmt = self.conn.prepare("SELECT t FROM coverage ORDER BY t")?;
        let rows = stmt.query_map([], |r| Ok(from_secs(r.get(0)?)))?;
        rows.collect()
    }

    fn samples_where<P: rusqlite::Params>(
        &self,
        filter: &str,
        params: P,
    ) -> rusqlite::Result<BTreeMap<String, Vec<Bucket>>> {
        let sql = format!(
            "SELECT f.key, s.t, s.n, s.min, s.max, s.sum, s.last, s.text, s.seen
             FROM samples s JOIN figures f ON f.id = s.figure {filter} ORDER BY f.key, s.t"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query(params)?;
        let mut out: BTreeMap<String, Vec<Bucket>> = BTreeMap::new();
        while let Some(r) = rows.next()? {
            let key: String = r.get(0)?;
            out.entry(key).or_default().push(Bucket {
                t: from_secs(r.get(1)?),
                n: r.get(2)?,
                min: r.get(3)?,
                max: r.get(4)?,
                sum: r.get(5)?,
                last: r.get(6)?,
                text: r.get(7)?,
                seen: r.get(8)?,
            });
        }
        Ok(out)
    }

    pub fn alert_events(&self) -> rusqlite::Result<Vec<AlertEvent>> {
        let mut stmt = self.conn.prepare(
            "SELECT at, figure, name, kind, condition, severity, priority, value, since, began,
                    silenced, notified, held_back FROM alerts ORDER BY seq",
        )?;
        let rows = stmt.query_map([], |r| {
            let kind: String = r.get(3)?;
            let condition: String = r.get(4)?;
            let severity: String = r.get(5)?;
            let priority: String = r.get(6)?;
            Ok(AlertEvent {
                at: from_millis(r.get(0)?),
                id: r.get(1)?,
                name: r.get(2)?,
                kind: EventKind::parse(&kind).unwrap_or(EventKind::Changed),
                condition: Condition::parse(&condition).unwrap_or(Condition::NoData),
                severity: parse_severity(&severity),
                priority: parse_priority(&priority),
                value: r.get(7)?,
                since: from_millis(r.get(8)?),
                began: from_millis(r.get(9)?),
                silenced: r.get::<_, i64>(10)? != 0,
                notify: r.get::<_, i64>(11)? != 0,
                held_back: r.get::<_, i64>(12)?.max(0) as u32,
            })
        })?;
        rows.collect()
    }

    pub fn notes(&self) -> rusqlite::Result<Vec<Note>> {
        let mut stmt = self
            .conn
            .prepare("SELECT at, text FROM notes ORDER BY at, seq")?;
        let rows = stmt.query_map([], |r| {
            Ok(Note {
                at: from_millis(r.get(0)?),
                text: r.get(1)?,
            })
        })?;
        rows.collect()
    }

    pub(crate) fn snapshots(&self) -> rusqlite::Result<Vec<Snapshot>> {
        let mut stmt = self.conn.prepare(
            "SELECT offset_s, at, figure, name, value, num, unit, condition
             FROM checkpoints ORDER BY offset_s, figure",
        )?;
        let mut rows = stmt.query([])?;
        let mut out: Vec<Snapshot> = Vec::new();
        while let Some(r) = rows.next()? {
            let offset: i64 = r.get(0)?;
            let condition: String = r.get(7)?;
            let figure = SnapshotFigure {
                id: r.get(2)?,
                name: r.get(3)?,
                value: r.get(4)?,
                number: r.get(5)?,
                unit: r.get(6)?,
                condition: Condition::parse(&condition).unwrap_or(Condition::NoData),
            };
            match out.last_mut() {
                Some(s) if s.offset_secs == offset => s.figures.push(figure),
                _ => out.push(Snapshot {
                    offset_secs: offset,
                    at: from_millis(r.get(1)?),
                    figures: vec![figure],
                }),
            }
        }
        Ok(out)
    }

    pub fn logs(&self) -> rusqlite::Result<Vec<LogBucket>> {
        let mut stmt = self
            .conn
            .prepare("SELECT source, t, lines, errors, critical FROM logs ORDER BY t, source")?;
        let rows = stmt.query_map([], |r| {
            Ok(LogBucket {
                source: r.get(0)?,
                t: from_secs(r.get(1)?),
                lines: r.get(2)?,
                errors: r.get(3)?,
                critical: r.get(4)?,
            })
        })?;
        rows.collect()
    }

    /// The stretches of log lines counted only in part, oldest first (none in a record
    /// written before they were kept).
    pub fn log_gaps(&self) -> rusqlite::Result<Vec<RecordedGap>> {
        let kept: bool = self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'log_gaps')",
            [],
            |r| r.get(0),
        )?;
        if !kept {
            return Ok(Vec::new());
        }
        let mut stmt = self.conn.prepare(
            "SELECT source, from_ms, to_ms, read, total, why FROM log_gaps ORDER BY from_ms, source",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(RecordedGap {
                source: r.get(0)?,
                gap: crate::model::update::LogGap {
                    from: from_millis(r.get(1)?),
                    to: from_millis(r.get(2)?),
                    read: r.get::<_, i64>(3)?.max(0) as u64,
                    total: r.get::<_, i64>(4)?.max(0) as u64,
                    why: r.get(5)?,
                },
            })
        })?;
        rows.collect()
    }

    /// The latest log line time counted per source (lines up to it are not counted again).
    pub fn log_watermarks(&self) -> rusqlite::Result<HashMap<String, DateTime<Utc>>> {
        let mut stmt = self
            .conn
            .prepare("SELECT key, value FROM meta WHERE key LIKE 'log_seen:%'")?;
        let rows = stmt.query_map([], |r| {
            let key: String = r.get(0)?;
            let value: String = r.get(1)?;
            Ok((key, value))
        })?;
        let mut out = HashMap::new();
        for row in rows {
            let (key, value) = row?;
            if let (Some(source), Ok(ms)) = (key.strip_prefix("log_seen:"), value.parse::<i64>()) {
                out.insert(source.to_string(), from_millis(ms));
            }
        }
        Ok(out)
    }

    /// What the writer noted about itself (drops).
    pub fn counter(&self, key: &str) -> rusqlite::Result<u64> {
        let value: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?;
        Ok(value.and_then(|v| v.parse().ok()).unwrap_or(0))
    }
}

pub(crate) fn parse_severity(text: &str) -> Severity {
    match text {
        "ok" => Severity::Ok,
        "warn" => Severity::Warn,
        "crit" => Severity::Crit,
        _ => Severity::Unknown,
    }
}

pub(crate) fn parse_priority(text: &str) -> Priority {
    match text {
        "P0" => Priority::P0,
        "P1" => Priority::P1,
        "P2" => Priority::P2,
        _ => Priority::P3,
    }
}

/// A bucket being filled in memory.
#[derive(Clone, Debug, Default)]
struct Agg {
    n: i64,
    min: Option<f64>,
    max: Option<f64>,
    sum: Option<f64>,
    last: Option<f64>,
    text: Option<String>,
    seen: i64,
}

impl Agg {
    fn add(&mut self, value: &Value, condition: Condition) {
        self.seen |= condition_bit(condition);
        match value {
            Value::Number(v) if v.is_finite() => {
                self.n += 1;
                self.min = Some(self.min.map_or(*v, |m| m.min(*v)));
                self.max = Some(self.max.map_or(*v, |m| m.max(*v)));
                self.sum = Some(self.sum.unwrap_or(0.0) + v);
                self.last = Some(*v);
            }
            Value::Text(t) => self.text = Some(t.clone()),
            _ => {}
        }
    }
}

/// The window as the writer needs it.
#[derive(Clone, Copy, Debug)]
pub struct Span {
    pub start: DateTime<Utc>,
    pub length_secs: i64,
    pub bucket_secs: i64,
}

impl Span {
    /// The bucket (unix seconds) of time `at`, if it is inside the window.
    pub fn bucket(&self, at: DateTime<Utc>) -> Option<i64> {
        let offset = (at - self.start).num_seconds();
        if at < self.start || offset >= self.length_secs {
            return None;
        }
        let index = offset / self.bucket_secs;
        Some(self.start.timestamp() + index * self.bucket_secs)
    }
}

/// The handle of the writer thread. Dropping it commits what is pending and stops it.
pub struct Writer {
    tx: Option<SyncSender<Msg>>,
    thread: Option<JoinHandle<()>>,
    status: Arc<Mutex<WriterStatus>>,
    path: PathBuf,
}

impl Writer {
    /// Starts the writer thread on an open (read-write) connection.
    pub fn start(
        conn: Connection,
        path: &Path,
        span: Span,
        max_bytes: u64,
        commit_every: Duration,
    ) -> std::io::Result<Writer> {
        let (tx, rx) = sync_channel(CHANNEL_CAPACITY);
        let status = Arc::new(Mutex::new(WriterStatus::default()));
        let shared = status.clone();
        let thread = std::thread::Builder::new()
            .name("record-writer".into())
            .spawn(move || {
                let mut worker = Worker::new(conn, span, max_bytes, shared);
                worker.run(rx, commit_every);
            })?;
        Ok(Writer {
            tx: Some(tx),
            thread: Some(thread),
            status,
            path: path.to_path_buf(),
        })
    }

    /// Queues a message; never waits. Returns false (and counts it) when it was dropped.
    pub fn send(&self, msg: Msg) -> bool {
        let Some(tx) = &self.tx else {
            return false;
        };
        match tx.try_send(msg) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.status
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .dropped += 1;
                false
            }
        }
    }

    /// Commits everything queued so far; waits up to `timeout` (tests, quitting).
    pub fn flush(&self, timeout: Duration) -> bool {
        let (done, wait) = std::sync::mpsc::channel();
        let Some(tx) = &self.tx else {
            return false;
        };
        if tx.send(Msg::Flush(done)).is_err() {
            return false;
        }
        wait.recv_timeout(timeout).is_ok()
    }

    pub fn status(&self) -> WriterStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel makes the thread commit and stop.
        self.tx.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Worker {
    conn: Connection,
    span: Span,
    max_bytes: u64,
    status: Arc<Mutex<WriterStatus>>,
    figure_ids: HashMap<String, i64>,
    samples: BTreeMap<(i64, i64), Agg>,
    logs: BTreeMap<(String, i64), (i64, i64, i64)>,
    log_seen: HashMap<String, i64>,
    log_gaps: Vec<RecordedGap>,
    alerts: Vec<AlertEvent>,
    snapshots: Vec<Snapshot>,
    notes: Vec<Note>,
    full: bool,
    counters: WriterStatus,
}

impl Worker {
    fn new(conn: Connection, span: Span, max_bytes: u64, status: Arc<Mutex<WriterStatus>>) -> Self {
        Worker {
            conn,
            span,
            max_bytes,
            status,
            figure_ids: HashMap::new(),
            samples: BTreeMap::new(),
            logs: BTreeMap::new(),
            log_seen: HashMap::new(),
            log_gaps: Vec::new(),
            alerts: Vec::new(),
            snapshots: Vec::new(),
            notes: Vec::new(),
            full: false,
            counters: WriterStatus::default(),
        }
    }

    fn run(&mut self, rx: Receiver<Msg>, commit_every: Duration) {
        if let Err(e) = self.load_existing() {
            self.counters.last_error = Some(format!("record: {e}"));
        }
        let mut next_commit = Instant::now() + commit_every;
        loop {
            let wait = next_commit.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(Msg::Flush(done)) => {
                    self.commit();
                    next_commit = Instant::now() + commit_every;
                    let _ = done.send(());
                }
                Ok(msg) => self.take(msg),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    self.commit();
                    // Leave a clean file behind: fold the WAL back in.
                    let _ = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
                    return;
                }
            }
            if Instant::now() >= next_commit {
                self.commit();
                next_commit = Instant::now() + commit_every;
            }
        }
    }

    fn take(&mut self, msg: Msg) {
        match msg {
            Msg::Out(Outgoing::Sample {
                id,
                name,
                unit,
                at,
                value,
                condition,
            }) => {
                let Some(t) = self.span.bucket(at) else {
                    return;
                };
                let figure = match self.figure_id(&id, &name, &unit) {
                    Ok(f) => f,
                    Err(e) => {
                        self.counters.last_error = Some(format!("record: {e}"));
                        return;
                    }
                };
                self.samples
                    .entry((figure, t))
                    .or_default()
                    .add(&value, condition);
            }
            Msg::Out(Outgoing::Alert(event)) => self.alerts.push(event),
            Msg::Out(Outgoing::Logs {
                source,
                at,
                newest,
                lines,
                errors,
                critical,
            }) => {
                // The newest line's own time, not its second: a restart counts the lines
                // after it, and only those.
                let seen = self.log_seen.entry(source.clone()).or_insert(i64::MIN);
                *seen = (*seen).max(millis(newest));
                let Some(t) = self.span.bucket(at) else {
                    return;
                };
                let entry = self.logs.entry((source, t)).or_default();
                entry.0 += i64::from(lines);
                entry.1 += i64::from(errors);
                entry.2 += i64::from(critical);
            }
            Msg::Out(Outgoing::LogGap { source, gap }) => {
                self.log_gaps.push(RecordedGap { source, gap })
            }
            Msg::Snapshot(s) => self.snapshots.push(s),
            Msg::Note(n) => self.notes.push(n),
            Msg::Flush(done) => {
                self.commit();
                let _ = done.send(());
            }
        }
    }

    /// Figure ids and drop counters from earlier sessions, so both carry on.
    fn load_existing(&mut self) -> rusqlite::Result<()> {
        let mut stmt = self.conn.prepare("SELECT key, id FROM figures")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (key, id) = row?;
            self.figure_ids.insert(key, id);
        }
        let counter = |key: &str| -> rusqlite::Result<u64> {
            let value: Option<String> = self
                .conn
                .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()?;
            Ok(value.and_then(|v| v.parse().ok()).unwrap_or(0))
        };
        // The watermarks only move forward, whatever a session's lines say.
        let mut stmt = self
            .conn
            .prepare("SELECT key, value FROM meta WHERE key LIKE 'log_seen:%'")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (key, value) = row?;
            if let (Some(source), Ok(ms)) = (key.strip_prefix("log_seen:"), value.parse::<i64>()) {
                self.log_seen.insert(source.to_string(), ms);
            }
        }
        drop(stmt);
        self.counters.full_dropped = counter("dropped_full")?;
        self.counters.alert_events_dropped = counter("dropped_alert_events")?;
        Ok(())
    }

    fn figure_id(&mut self, key: &str, name: &str, unit: &str) -> rusqlite::Result<i64> {
        if let Some(id) = self.figure_ids.get(key) {
            return Ok(*id);
        }
        self.conn.execute(
            "INSERT INTO figures (key, name, unit) VALUES (?1, ?2, ?3)
             ON CONFLICT(key) DO UPDATE SET name = excluded.name, unit = excluded.unit",
            params![key, name, unit],
        )?;
        let id: i64 = self
            .conn
            .query_row("SELECT id FROM figures WHERE key = ?1", [key], |r| r.get(0))?;
        self.figure_ids.insert(key.to_string(), id);
        Ok(id)
    }

    fn commit(&mut self) {
        let result = self.write_pending();
        match result {
            Ok(()) => self.counters.commits += 1,
            Err(e) => self.counters.last_error = Some(format!("record: {e}")),
        }
        self.counters.bytes = self.size().unwrap_or(self.counters.bytes);
        self.full = self.counters.bytes >= self.max_bytes;
        self.counters.full = self.full;
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        let dropped = status.dropped;
        *status = WriterStatus {
            dropped,
            ..self.counters.clone()
        };
    }

    fn size(&self) -> rusqlite::Result<u64> {
        let pages: i64 = self.conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let size: i64 = self.conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        Ok((pages.max(0) * size.max(0)) as u64)
    }

    fn write_pending(&mut self) -> rusqlite::Result<()> {
        let samples = std::mem::take(&mut self.samples);
        let logs = std::mem::take(&mut self.logs);
        let gaps = std::mem::take(&mut self.log_gaps);
        let alerts = std::mem::take(&mut self.alerts);
        let snapshots = std::mem::take(&mut self.snapshots);
        let notes = std::mem::take(&mut self.notes);
        let tx = self.conn.transaction()?;
        {
            let mut exists =
                tx.prepare_cached("SELECT 1 FROM samples WHERE figure = ?1 AND t = ?2")?;
            let mut upsert = tx.prepare_cached(
                "INSERT INTO samples (figure, t, n, min, max, sum, last, text, seen)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT(figure, t) DO UPDATE SET
                   n = n + excluded.n,
                   min = CASE WHEN samples.min IS NULL OR excluded.min < samples.min
                              THEN excluded.min ELSE samples.min END,
                   max = CASE WHEN samples.max IS NULL OR excluded.max > samples.max
                              THEN excluded.max ELSE samples.max END,
                   sum = CASE WHEN excluded.sum IS NULL THEN samples.sum
                              WHEN samples.sum IS NULL THEN excluded.sum
                              ELSE samples.sum + excluded.sum END,
                   last = coalesce(excluded.last, samples.last),
                   text = coalesce(excluded.text, samples.text),
                   seen = samples.seen | excluded.seen",
            )?;
            let mut cover = tx.prepare_cached("INSERT OR IGNORE INTO coverage (t) VALUES (?1)")?;
            let mut covered = std::collections::BTreeSet::new();
            for ((figure, t), agg) in samples {
                // Full: buckets already there keep filling, new ones are dropped.
                if self.full && !exists.exists(params![figure, t])? {
                    self.counters.full_dropped += 1;
                    continue;
                }
                upsert.execute(params![
                    figure, t, agg.n, agg.min, agg.max, agg.sum, agg.last, agg.text, agg.seen
                ])?;
                covered.insert(t);
            }
            for t in covered {
                cover.execute(params![t])?;
            }
            let mut log = tx.prepare_cached(
                "INSERT INTO logs (source, t, lines, errors, critical) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(source, t) DO UPDATE SET lines = lines + excluded.lines,
                   errors = errors + excluded.errors, critical = critical + excluded.critical",
            )?;
            for ((source, t), (lines, errors, critical)) in logs {
                log.execute(params![source, t, lines, errors, critical])?;
            }
            let mut gap = tx.prepare_cached(
                "INSERT INTO log_gaps (source, from_ms, to_ms, read, total, why)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for RecordedGap { source, gap: g } in gaps {
                gap.execute(params![
                    source,
                    millis(g.from),
                    millis(g.to),
                    g.read as i64,
                    g.total as i64,
                    g.why
                ])?;
            }
            let mut seen = tx.prepare_cached(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            )?;
            for (source, ms) in &self.log_seen {
                seen.execute(params![format!("log_seen:{source}"), ms.to_string()])?;
            }
            let kept: i64 = tx.query_row("SELECT COUNT(*) FROM alerts", [], |r| r.get(0))?;
            let mut room = (MAX_ALERT_EVENTS - kept).max(0) as usize;
            let mut alert = tx.prepare_cached(
                "INSERT INTO alerts (at, figure, name, kind, condition, severity, priority, value,
                   since, began, silenced, notified, held_back)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?;
            for e in alerts {
                if room == 0 {
                    self.counters.alert_events_dropped += 1;
                    continue;
                }
                room -= 1;
                alert.execute(params![
                    millis(e.at),
                    e.id,
                    e.name,
                    e.kind.as_str(),
                    e.condition.as_str(),
                    e.severity.as_str(),
                    e.priority.label(),
                    e.value,
                    millis(e.since),
                    millis(e.began),
                    i64::from(e.silenced),
                    i64::from(e.notify),
                    i64::from(e.held_back),
                ])?;
            }
            let mut snap = tx.prepare_cached(
                "INSERT OR REPLACE INTO checkpoints (offset_s, at, figure, name, value, num, unit, condition)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for s in snapshots {
                for f in s.figures {
                    snap.execute(params![
                        s.offset_secs,
                        millis(s.at),
                        f.id,
                        f.name,
                        f.value,
                        f.number,
                        f.unit,
                        f.condition.as_str(),
                    ])?;
                }
            }
            let notes_kept: i64 = tx.query_row("SELECT COUNT(*) FROM notes", [], |r| r.get(0))?;
            let mut note = tx.prepare_cached("INSERT INTO notes (at, text) VALUES (?1, ?2)")?;
            for (i, n) in notes.into_iter().enumerate() {
                if notes_kept + i as i64 >= MAX_NOTES {
                    break;
                }
                let text: String = n.text.chars().take(MAX_NOTE_CHARS).collect();
                note.execute(params![millis(n.at), text])?;
            }
            for (key, value) in [
                ("dropped_full", self.counters.full_dropped),
                ("dropped_alert_events", self.counters.alert_events_dropped),
            ] {
                if value > 0 {
                    seen.execute(params![key, value.to_string()])?;
                }
            }
        }
        tx.commit()
    }
}
