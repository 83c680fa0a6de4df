//! Incremental reading of the TMWS pack's two big append-only tables (`security_audit_logs`,
//! `license_usage_history`).
//!
//! After the first read, a refresh reads only rows whose rowid is above a watermark, reads
//! each row's time once (SQLite's own date parser, so `YYYY-MM-DD HH:MM:SS[.ffffff]`, ISO 8601
//! with `T`, `Z` and offsets all count by time), and adds it to in-memory time buckets:
//! per second for the 1-hour windows (exact to the second, like the seed's
//! `> datetime('now','-1 hour')`), per minute for the 24-hour and 7-day windows (a bucket
//! counts when it starts inside the window: at most a minute's rows at the far edge differ).
//! Windows slide by dropping buckets that left them. A row written late (old timestamp, new
//! rowid) lands in the bucket of its timestamp.
//!
//! The cost of a refresh is a handful of rowid b-tree lookups plus the new rows, whatever the
//! table's size and with or without an index on the time column. What is checked, each
//! refresh, so that nothing is mis-added:
//! - `max(rowid)` below the watermark, or the row at the watermark no longer the row we read
//!   (a fingerprint of all its columns): rows went away or another database is there → recount;
//! - `min(rowid)` moved up (a retention `DELETE` of the oldest rows): fine if every deleted
//!   rowid was below the oldest row still counted in a window, otherwise → recount;
//!   `min(rowid)` moved down or its row changed → recount;
//! - `PRAGMA schema_version` changed (`VACUUM` bumps it, as do schema changes) → recount
//!   (checked by the pack); a new inode (restore, rename over) → recount (checked by the
//!   collector).
//!
//! Not detected: an `UPDATE` of a row already read, or a `DELETE` in the middle of the
//! window that leaves the lowest and the newest row in place. Audit and usage logs are
//! append-only, and retention jobs delete the oldest rows, which is what is checked.
//!
//! A recount (and the first read) scans the table by rowid in chunks, each in its own short
//! read transaction (see [`Tail::ingest`]'s deadline), so no lock is held for long.
//!
//! The same logic reads a remote database: a [`TableReader`] is either a local connection or
//! a batch of rows fetched through the remote `sqlite3` CLI (see `sqlite/remote.rs`), which
//! skips rows too old for every window on the server's side ([`Store::SPAN`]).

use rusqlite::types::ValueRef;
use rusqlite::{Connection, Row};
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::time::Instant;

/// Rows read per statement step batch (the deadline is checked between batches).
const PAGE: i64 = 2048;

pub const HOUR: i64 = 3600;
pub const DAY: i64 = 24 * HOUR;
pub const WEEK: i64 = 7 * DAY;

/// A timestamp column read by SQLite's date functions, as Unix seconds (NULL when SQLite
/// cannot read it as a time).
fn seconds(col: &str) -> String {
    format!("unixepoch({col}, 'subsec')")
}

/// The same value as [`seconds`] for SQLite before 3.42 (no `'subsec'`; Debian 12 ships
/// 3.40): `julianday` holds the time in whole milliseconds, which the rounding recovers
/// exactly, so both give the same number.
pub fn portable_seconds(col: &str) -> String {
    format!("((round(julianday({col}) * 86400000) - 210866760000000) / 1000.0)")
}

/// A row's values as a [`Store`] reads them: 0 the rowid, 1 the time, 2.. the store's columns.
pub trait Cols {
    fn value(&self, i: usize) -> rusqlite::Result<ValueRef<'_>>;
}

impl Cols for Row<'_> {
    fn value(&self, i: usize) -> rusqlite::Result<ValueRef<'_>> {
        self.get_ref(i)
    }
}

/// A column that holds a comparison (`valid = 1`): true, false or NULL.
fn flag(value: ValueRef<'_>) -> rusqlite::Result<Option<bool>> {
    match value {
        ValueRef::Null => Ok(None),
        ValueRef::Integer(n) => Ok(Some(n != 0)),
        other => Err(rusqlite::Error::InvalidColumnType(
            0,
            "comparison".into(),
            other.data_type(),
        )),
    }
}

/// The SQL a tail reads its table with.
#[derive(Debug)]
pub struct TailSql {
    pub table: &'static str,
    /// `rowid, time, COLUMNS` of rows above `?1`, at most `?2`.
    pub select: String,
    /// Every column of the row at `?1`.
    pub fingerprint: String,
    /// `min(rowid), max(rowid)`.
    pub bounds: String,
}

/// One read of rows above a watermark.
#[derive(Clone, Copy, Debug)]
pub struct Page {
    /// The highest rowid the read covered (rows it skipped as too old included).
    pub covered: Option<i64>,
    /// No row above `covered` existed when the read was made.
    pub exhausted: bool,
}

/// Called for each row: rowid, time (None when SQLite cannot read it), the row.
pub type RowFn<'a> = dyn FnMut(i64, Option<f64>, &dyn Cols) -> rusqlite::Result<()> + 'a;

/// Where a tail reads its table: a local connection, or a batch fetched from a remote host.
pub trait TableReader {
    /// `min(rowid)` and `max(rowid)`.
    fn bounds(&mut self, sql: &TailSql) -> rusqlite::Result<(Option<i64>, Option<i64>)>;
    /// A hash of every column of the row at `rowid` (`None` if there is none).
    fn print(&mut self, sql: &TailSql, rowid: i64) -> rusqlite::Result<Option<u64>>;
    /// Feeds rows above `after` in rowid order (at most `limit` for a local read), or
    /// returns `None` when this reader holds no rows for that watermark (a remote batch
    /// fetched for another one: fetch again).
    fn page(
        &mut self,
        sql: &TailSql,
        after: i64,
        limit: i64,
        each: &mut RowFn<'_>,
    ) -> rusqlite::Result<Option<Page>>;
}

/// A table read through a local connection.
pub struct LocalReader<'c>(pub &'c Connection);

impl TableReader for LocalReader<'_> {
    fn bounds(&mut self, sql: &TailSql) -> rusqlite::Result<(Option<i64>, Option<i64>)> {
        self.0
            .prepare_cached(&sql.bounds)?
            .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
    }

    fn print(&mut self, sql: &TailSql, rowid: i64) -> rusqlite::Result<Option<u64>> {
        let mut stmt = self.0.prepare_cached(&sql.fingerprint)?;
        let mut rows = stmt.query([rowid])?;
        let Some(row) = rows.next()? else {
            return Ok(None);
        };
        let mut h = DefaultHasher::new();
        let n = row.as_ref().column_count();
        for i in 0..n {
            match row.get_ref(i)? {
                ValueRef::Null => 0u8.hash(&mut h),
                ValueRef::Integer(v) => (1u8, v).hash(&mut h),
                ValueRef::Real(v) => (2u8, v.to_bits()).hash(&mut h),
                ValueRef::Text(t) => (3u8, t).hash(&mut h),
                ValueRef::Blob(b) => (4u8, b).hash(&mut h),
            }
        }
        Ok(Some(h.finish()))
    }

    fn page(
        &mut self,
        sql: &TailSql,
        after: i64,
        limit: i64,
        each: &mut RowFn<'_>,
    ) -> rusqlite::Result<Option<Page>> {
        let mut stmt = self.0.prepare_cached(&sql.select)?;
        let mut rows = stmt.query(rusqlite::params![after, limit])?;
        let mut n = 0;
        let mut last = None;
        while let Some(row) = rows.next()? {
            n += 1;
            let rowid: i64 = row.get(0)?;
            each(rowid, row.get::<_, Option<f64>>(1)?, row)?;
            last = Some(rowid);
        }
        Ok(Some(Page {
            covered: last,
            exhausted: n < limit,
        }))
    }
}

/// Counts in fixed-width time buckets, kept only while they can still be inside a window.
#[derive(Debug)]
pub struct Buckets<T> {
    /// Bucket width in seconds.
    width: i64,
    /// The longest window these buckets serve, in seconds.
    span: i64,
    map: BTreeMap<i64, Bucket<T>>,
}

#[derive(Debug)]
struct Bucket<T> {
    counts: T,
    /// Lowest rowid counted here (to tell whether a retention delete touched a window).
    min_rowid: i64,
}

impl<T: Default> Buckets<T> {
    pub fn new(width: i64, span: i64) -> Self {
        Buckets {
            width,
            span,
            map: BTreeMap::new(),
        }
    }

    fn key(&self, t: f64) -> i64 {
        (t / self.width as f64).floor() as i64
    }

    /// Whether the bucket `key` lies in the window of `window` seconds before `now`: its start
    /// is after `floor(now) - window`. For one-second buckets that is the seed's
    /// `created_at > datetime('now', '-1 hour')` for whole-second timestamps.
    fn inside(&self, key: i64, window: i64, now: f64) -> bool {
        key * self.width > now.floor() as i64 - window
    }

    /// The counts of the bucket for time `t`, or `None` when it is already out of every window.
    pub fn at(&mut self, t: f64, rowid: i64, now: f64) -> Option<&mut T> {
        let key = self.key(t);
        if !self.inside(key, self.span, now) {
            return None;
        }
        let bucket = self.map.entry(key).or_insert_with(|| Bucket {
            counts: T::default(),
            min_rowid: rowid,
        });
        bucket.min_rowid = bucket.min_rowid.min(rowid);
        Some(&mut bucket.counts)
    }

    /// Whether time `t` would land in a live bucket.
    pub fn live(&self, t: f64, now: f64) -> bool {
        self.inside(self.key(t), self.span, now)
    }

    /// Drops the buckets that left the longest window, handing each to `gone`.
    pub fn expire(&mut self, now: f64, mut gone: impl FnMut(T)) {
        let first_live = (now.floor() as i64 - self.span).div_euclid(self.width) + 1;
        let keep = self.map.split_off(&first_live);
        for (_, bucket) in std::mem::replace(&mut self.map, keep) {
            gone(bucket.counts);
        }
    }

    /// The buckets inside the last `window` seconds.
    pub fn within(&self, window: i64, now: f64) -> impl Iterator<Item = &T> {
        let first = (now.floor() as i64 - window).div_euclid(self.width) + 1;
        self.map.range(first..).map(|(_, b)| &b.counts)
    }

    /// Start (Unix seconds) of the oldest bucket inside the last `window` seconds.
    pub fn first_start(&self, window: i64, now: f64) -> Option<f64> {
        let first = (now.floor() as i64 - window).div_euclid(self.width) + 1;
        self.map
            .range(first..)
            .next()
            .map(|(k, _)| (*k * self.width) as f64)
    }

    pub fn min_rowid(&self) -> Option<i64> {
        self.map.values().map(|b| b.min_rowid).min()
    }

    pub fn clear(&mut self) {
        self.map.clear();
    }
}

/// What one big table keeps in memory, and how its rows are read into it.
pub trait Store {
    const TABLE: &'static str;
    const TIME: &'static str;
    /// The columns after `rowid` and the time, as a select list.
    const COLUMNS: &'static str;
    /// The same columns for a remote read, where every byte crosses the network: a value
    /// `ingest` never looks at for a row may be NULL instead.
    const REMOTE_COLUMNS: &'static str;
    /// How far back (seconds before now) any window of the store reaches: a remote read
    /// skips older rows on the server's side (plus a margin; `ingest` still decides).
    const SPAN: i64;
    /// Adds one row (`row` holds rowid, time, then `COLUMNS` from index 2) read at `now`.
    fn ingest(&mut self, rowid: i64, t: f64, row: &dyn Cols, now: f64) -> rusqlite::Result<()>;
    /// Slides the windows to `now`.
    fn expire(&mut self, now: f64);
    /// Lowest rowid still counted in some window.
    fn min_live_rowid(&self) -> Option<i64>;
    fn clear(&mut self);
}

/// A row as last seen: its rowid and a hash of all its columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Mark {
    rowid: i64,
    print: u64,
}

/// Why a table is being read again from the start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recount {
    Shrunk,
    Changed,
    Retention,
    Replaced,
}

/// One big table read incrementally.
#[derive(Debug)]
pub struct Tail<S> {
    pub store: S,
    /// Highest rowid read.
    watermark: i64,
    low: Option<Mark>,
    high: Option<Mark>,
    /// Rows whose time SQLite cannot read: outside every window, counted and shown.
    pub unreadable_times: i64,
    min_unreadable: Option<i64>,
    /// Rows read since the start (or the last recount).
    pub rows_read: u64,
    /// Why the last recount happened (shown in details for a while).
    pub last_recount: Option<(Recount, Instant)>,
    sql: TailSql,
}

impl<S: Store> Tail<S> {
    pub fn new(store: S) -> Self {
        Tail {
            store,
            watermark: 0,
            low: None,
            high: None,
            unreadable_times: 0,
            min_unreadable: None,
            rows_read: 0,
            last_recount: None,
            sql: TailSql {
                table: S::TABLE,
                select: format!(
                    "SELECT rowid, {}, {} FROM {} WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
                    seconds(S::TIME),
                    S::COLUMNS,
                    S::TABLE
                ),
                fingerprint: format!("SELECT * FROM {} WHERE rowid = ?1", S::TABLE),
                bounds: format!(
                    "SELECT (SELECT min(rowid) FROM {t}), (SELECT max(rowid) FROM {t})",
                    t = S::TABLE
                ),
            },
        }
    }

    /// The rowids of the rows this tail compares on its next read (the lowest and the
    /// last one read), for a remote read to fetch with the new rows.
    pub fn marks(&self) -> (i64, Option<i64>, Option<i64>) {
        (
            self.watermark,
            self.low.map(|m| m.rowid),
            self.high.map(|m| m.rowid),
        )
    }

    /// Forgets everything: the next read starts from the first row.
    pub fn reset(&mut self) {
        self.store.clear();
        self.watermark = 0;
        self.low = None;
        self.high = None;
        self.unreadable_times = 0;
        self.min_unreadable = None;
        self.rows_read = 0;
    }

    fn recount(&mut self, why: Recount) {
        self.reset();
        self.last_recount = Some((why, Instant::now()));
    }

    fn mark<D: TableReader>(&self, db: &mut D, rowid: i64) -> rusqlite::Result<Option<Mark>> {
        Ok(db
            .print(&self.sql, rowid)?
            .map(|print| Mark { rowid, print }))
    }

    /// Compares the table with what was read before; starts over when rows went away or were
    /// replaced. O(log n): `min`/`max` of the rowid and two rowid lookups.
    fn verify<D: TableReader>(
        &mut self,
        db: &mut D,
    ) -> rusqlite::Result<(Option<i64>, Option<i64>)> {
        let (lo, hi) = db.bounds(&self.sql)?;
        if self.watermark == 0 && self.low.is_none() {
            return Ok((lo, hi));
        }
        if hi.unwrap_or(0) < self.watermark {
            self.recount(Recount::Shrunk);
            return Ok((lo, hi));
        }
        if let Some(high) = self.high
            && db.print(&self.sql, high.rowid)? != Some(high.print)
        {
            self.recount(Recount::Changed);
            return Ok((lo, hi));
        }
        if let (Some(low), Some(lo)) = (self.low, lo) {
            if lo < low.rowid {
                self.recount(Recount::Changed);
            } else if lo == low.rowid {
                if db.print(&self.sql, lo)? != Some(low.print) {
                    self.recount(Recount::Changed);
                }
            } else {
                // The oldest rows were deleted: harmless unless a window still counted them.
                let counted = self.store.min_live_rowid().is_some_and(|m| m < lo)
                    || self.min_unreadable.is_some_and(|m| m < lo);
                if counted {
                    self.recount(Recount::Retention);
                } else {
                    self.low = self.mark(db, lo)?;
                }
            }
        }
        Ok((lo, hi))
    }

    /// Verifies the table, then reads the rows above the watermark until there are none left
    /// (`Ok(true)`) or `deadline` passes (`Ok(false)`, to go on in a new transaction). Must be
    /// called inside a read transaction.
    pub fn ingest(
        &mut self,
        conn: &Connection,
        now: f64,
        deadline: Option<Instant>,
    ) -> rusqlite::Result<bool> {
        self.ingest_from(&mut LocalReader(conn), now, deadline)
    }

    /// [`Tail::ingest`] from any reader. `Ok(false)` also when the reader has no more rows
    /// to give now (a remote batch that ended before the table did).
    pub fn ingest_from<D: TableReader>(
        &mut self,
        db: &mut D,
        now: f64,
        deadline: Option<Instant>,
    ) -> rusqlite::Result<bool> {
        self.store.expire(now);
        let (lo, hi) = self.verify(db)?;
        let Some(hi) = hi else {
            // An empty table.
            return Ok(true);
        };
        let mut done = self.watermark >= hi;
        while !done {
            let Tail {
                store,
                watermark,
                unreadable_times,
                min_unreadable,
                rows_read,
                sql,
                ..
            } = self;
            let after = *watermark;
            let page = db.page(sql, after, PAGE, &mut |rowid, t, row| {
                match t {
                    Some(t) if t.is_finite() => store.ingest(rowid, t, row, now)?,
                    _ => {
                        *unreadable_times += 1;
                        min_unreadable.get_or_insert(rowid);
                    }
                }
                *watermark = rowid;
                *rows_read += 1;
                Ok(())
            })?;
            let Some(page) = page else {
                break;
            };
            if let Some(covered) = page.covered {
                self.watermark = self.watermark.max(covered);
            }
            done = page.exhausted || self.watermark >= hi;
            if !done && deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
        }
        if self.low.is_none()
            && let Some(lo) = lo
        {
            self.low = self.mark(db, lo)?;
        }
        if self.watermark > 0 && self.high.is_none_or(|h| h.rowid != self.watermark) {
            self.high = self.mark(db, self.watermark)?;
        }
        Ok(done)
    }

    /// A note for details after a recount ("recounted 12 s ago: …").
    pub fn recount_note(&self) -> Option<String> {
        let (why, at) = self.last_recount.as_ref()?;
        let age = at.elapsed();
        if age.as_secs() > 10 * 60 {
            return None;
        }
        let why = match why {
            Recount::Shrunk => "rows above the last one read were deleted",
            Recount::Changed => "rows already read were replaced",
            Recount::Retention => "a retention delete reached into the windows",
            Recount::Replaced => "the database was replaced or vacuumed",
        };
        Some(format!("recounted {} s ago: {why}", age.as_secs()))
    }

    pub fn mark_replaced(&mut self) {
        self.recount(Recount::Replaced);
    }
}

/// Small interner: repeated texts (event types, operation × role) become small ids.
#[derive(Debug, Default)]
pub struct Names<K> {
    ids: HashMap<K, u32>,
    names: Vec<K>,
}

impl<K: Clone + Eq + Hash> Names<K> {
    pub fn id(&mut self, key: K) -> u32 {
        if let Some(id) = self.ids.get(&key) {
            return *id;
        }
        let id = self.names.len() as u32;
        self.ids.insert(key.clone(), id);
        self.names.push(key);
        id
    }

    pub fn name(&self, id: u32) -> &K {
        &self.names[id as usize]
    }
}

/// Permission checks in one second.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckCounts {
    pub checks: i64,
    pub allow: i64,
    pub deny: i64,
    pub unreadable: i64,
}

impl std::ops::AddAssign for CheckCounts {
    fn add_assign(&mut self, o: Self) {
        self.checks += o.checks;
        self.allow += o.allow;
        self.deny += o.deny;
        self.unreadable += o.unreadable;
    }
}

/// What one `details` text says about a permission check.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Decision {
    /// The text is JSON (SQLite's `json_valid`).
    pub readable: bool,
    /// `details ->> '$.result'` when it is a string.
    pub result: Option<String>,
    pub operation: String,
    pub role: String,
}

/// A JSON value as SQLite's `->>` shows it, in a table cell.
fn json_cell(value: Option<&serde_json::Value>) -> String {
    use serde_json::Value;
    match value {
        None | Some(Value::Null) => "(none)".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => (*b as i64).to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => other.to_string(),
    }
}

/// Reads the fields of seed 000's `details` (`result`, `operation`, `role`).
pub fn decide(details: Option<&[u8]>) -> Decision {
    let Some(bytes) = details else {
        return Decision::default();
    };
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Err(_) => Decision::default(),
        Ok(value) => {
            let result = value
                .get("result")
                .and_then(|r| r.as_str())
                .map(String::from);
            let deny = result.as_deref() == Some("DENY");
            Decision {
                readable: true,
                result,
                operation: if deny {
                    json_cell(value.get("operation"))
                } else {
                    String::new()
                },
                role: if deny {
                    json_cell(value.get("role"))
                } else {
                    String::new()
                },
            }
        }
    }
}

/// `security_audit_logs`: permission checks of the last hour, denies by operation × role over
/// 7 days, events by type over 24 hours.
#[derive(Debug)]
pub struct AuditStore {
    pub checks: Buckets<CheckCounts>,
    denied: Buckets<HashMap<u32, i64>>,
    /// The 7-day totals of `denied`, kept as buckets come and go.
    denied_total: HashMap<u32, i64>,
    pub denied_names: Names<(String, String)>,
    events: Buckets<HashMap<u32, i64>>,
    pub event_names: Names<String>,
}

impl Default for AuditStore {
    fn default() -> Self {
        AuditStore {
            checks: Buckets::new(1, HOUR),
            denied: Buckets::new(60, WEEK),
            denied_total: HashMap::new(),
            denied_names: Names::default(),
            events: Buckets::new(60, DAY),
            event_names: Names::default(),
        }
    }
}

impl AuditStore {
    /// Permission checks in the last hour.
    pub fn checks_1h(&self, now: f64) -> CheckCounts {
        self.checks_within(HOUR, now)
    }

    /// Permission checks in the last `window` seconds (at most an hour: the buckets kept).
    pub fn checks_within(&self, window: i64, now: f64) -> CheckCounts {
        let mut sum = CheckCounts::default();
        for c in self.checks.within(window.min(HOUR), now) {
            sum += *c;
        }
        sum
    }

    /// (operation, role, denies) over 7 days, most denied first.
    pub fn top_denied(&self, limit: usize) -> Vec<(String, String, i64)> {
        let mut rows: Vec<(String, String, i64)> = self
            .denied_total
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(id, n)| {
                let (op, role) = self.denied_names.name(*id);
                (op.clone(), role.clone(), *n)
            })
            .collect();
        rows.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| (&a.0, &a.1).cmp(&(&b.0, &b.1))));
        rows.truncate(limit);
        rows
    }

    /// Start of the oldest minute with an event in the 24 h window.
    pub fn oldest_event(&self, now: f64) -> Option<f64> {
        self.events.first_start(DAY, now)
    }

    /// (event type, rows in 24 h, of which in the last hour), largest first.
    pub fn events_24h(&self, now: f64) -> Vec<(String, i64, i64)> {
        let mut day: HashMap<u32, (i64, i64)> = HashMap::new();
        for counts in self.events.within(DAY, now) {
            for (id, n) in counts {
                day.entry(*id).or_default().0 += n;
            }
        }
        for counts in self.events.within(HOUR, now) {
            for (id, n) in counts {
                day.entry(*id).or_default().1 += n;
            }
        }
        let mut rows: Vec<(String, i64, i64)> = day
            .into_iter()
            .map(|(id, (n, h))| (self.event_names.name(id).clone(), n, h))
            .collect();
        rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        rows
    }
}

impl Store for AuditStore {
    const TABLE: &'static str = "security_audit_logs";
    const TIME: &'static str = "created_at";
    const COLUMNS: &'static str = "event_type, details";
    // Only permission checks are read past their event type.
    const REMOTE_COLUMNS: &'static str =
        "event_type, CASE WHEN event_type = 'permission_check' THEN details END";
    const SPAN: i64 = WEEK;

    fn ingest(&mut self, rowid: i64, t: f64, row: &dyn Cols, now: f64) -> rusqlite::Result<()> {
        let event = match row.value(2)? {
            ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
            ValueRef::Null => "(none)".to_string(),
            other => super::cell(other),
        };
        let is_check = event == "permission_check";
        let id = self.event_names.id(event);
        if let Some(counts) = self.events.at(t, rowid, now) {
            *counts.entry(id).or_default() += 1;
        }
        if !is_check || !(self.checks.live(t, now) || self.denied.live(t, now)) {
            return Ok(());
        }
        let details = match row.value(3)? {
            ValueRef::Text(b) | ValueRef::Blob(b) => Some(b),
            _ => None,
        };
        let decision = decide(details);
        if let Some(c) = self.checks.at(t, rowid, now) {
            c.checks += 1;
            match decision.result.as_deref() {
                _ if !decision.readable => c.unreadable += 1,
                Some("ALLOW") => c.allow += 1,
                Some("DENY") => c.deny += 1,
                _ => {}
            }
        }
        if decision.result.as_deref() == Some("DENY") {
            let key = self.denied_names.id((decision.operation, decision.role));
            if let Some(counts) = self.denied.at(t, rowid, now) {
                *counts.entry(key).or_default() += 1;
                *self.denied_total.entry(key).or_default() += 1;
            }
        }
        Ok(())
    }

    fn expire(&mut self, now: f64) {
        self.checks.expire(now, |_| {});
        self.events.expire(now, |_| {});
        let total = &mut self.denied_total;
        self.denied.expire(now, |gone| {
            for (id, n) in gone {
                if let Some(left) = total.get_mut(&id) {
                    *left -= n;
                }
            }
        });
        self.denied_total.retain(|_, n| *n > 0);
    }

    fn min_live_rowid(&self) -> Option<i64> {
        [
            self.checks.min_rowid(),
            self.denied.min_rowid(),
            self.events.min_rowid(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn clear(&mut self) {
        *self = AuditStore::default();
    }
}

/// License validations in one second.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ValidationCounts {
    pub total: i64,
    pub ok: i64,
    pub failed: i64,
    pub not_found: i64,
    pub invalid: i64,
}

impl std::ops::AddAssign for ValidationCounts {
    fn add_assign(&mut self, o: Self) {
        self.total += o.total;
        self.ok += o.ok;
        self.failed += o.failed;
        self.not_found += o.not_found;
        self.invalid += o.invalid;
    }
}

/// `license_usage_history`: validations of the last hour.
#[derive(Debug)]
pub struct UsageStore {
    pub validations: Buckets<ValidationCounts>,
}

impl Default for UsageStore {
    fn default() -> Self {
        UsageStore {
            validations: Buckets::new(1, HOUR),
        }
    }
}

impl UsageStore {
    pub fn last_hour(&self, now: f64) -> ValidationCounts {
        let mut sum = ValidationCounts::default();
        for c in self.validations.within(HOUR, now) {
            sum += *c;
        }
        sum
    }
}

impl Store for UsageStore {
    const TABLE: &'static str = "license_usage_history";
    const TIME: &'static str = "validated_at";
    // Compared in SQL so a valid stored as text or real compares as the seed's `valid = 1` does.
    const COLUMNS: &'static str = "valid = 1, valid = 0, license_key_id IS NULL";
    const REMOTE_COLUMNS: &'static str = Self::COLUMNS;
    const SPAN: i64 = HOUR;

    fn ingest(&mut self, rowid: i64, t: f64, row: &dyn Cols, now: f64) -> rusqlite::Result<()> {
        let ok = flag(row.value(2)?)?;
        let failed = flag(row.value(3)?)?;
        let no_key = flag(row.value(4)?)?.unwrap_or(false);
        if let Some(c) = self.validations.at(t, rowid, now) {
            c.total += 1;
            if ok == Some(true) {
                c.ok += 1;
            }
            if failed == Some(true) {
                c.failed += 1;
                if no_key {
                    c.not_found += 1;
                } else {
                    c.invalid += 1;
                }
            }
        }
        Ok(())
    }

    fn expire(&mut self, now: f64) {
        self.validations.expire(now, |_| {});
    }

    fn min_live_rowid(&self) -> Option<i64> {
        self.validations.min_rowid()
    }

    fn clear(&mut self) {
        *self = UsageStore::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_slide_and_respect_the_edge() {
        let mut b: Buckets<i64> = Buckets::new(1, 3600);
        let now = 10_000.4;
        // floor(now) - 3600 = 6400: a row at 6400 is out (not after), 6401 is in.
        assert!(b.at(6400.0, 1, now).is_none());
        *b.at(6401.0, 2, now).unwrap() += 1;
        *b.at(9500.5, 3, now).unwrap() += 1;
        assert_eq!(b.within(3600, now).sum::<i64>(), 2);
        assert_eq!(b.within(1000, now).sum::<i64>(), 1);
        assert_eq!(b.min_rowid(), Some(2));
        // One second later the 6401 bucket has left.
        let mut gone = 0;
        b.expire(now + 1.0, |n| gone += n);
        assert_eq!(gone, 1);
        assert_eq!(b.within(3600, now + 1.0).sum::<i64>(), 1);
        assert_eq!(b.min_rowid(), Some(3));
    }

    #[test]
    fn minute_buckets_count_when_they_start_inside() {
        let mut b: Buckets<i64> = Buckets::new(60, 86_400);
        let now = 200_000.0;
        *b.at(now - 10.0, 1, now).unwrap() += 1;
        *b.at(now - 3_000.0, 2, now).unwrap() += 1;
        *b.at(now - 80_000.0, 3, now).unwrap() += 1;
        assert_eq!(b.within(3600, now).sum::<i64>(), 2);
        assert_eq!(b.within(86_400, now).sum::<i64>(), 3);
        // Late rows in the future are kept too (the seed's `>` counts them).
        assert!(b.at(now + 30.0, 4, now).is_some());
    }

    #[test]
    fn decisions_read_like_sqlite_json() {
        let d = decide(Some(br#"{"result":"DENY","operation":"x.y","role":null}"#));
        assert_eq!(
            d,
            Decision {
                readable: true,
                result: Some("DENY".into()),
                operation: "x.y".into(),
                role: "(none)".into()
            }
        );
        assert!(!decide(Some(b"result=DENY")).readable);
        assert!(!decide(None).readable);
        let odd = decide(Some(b"[1, 2]"));
        assert!(odd.readable && odd.result.is_none());
        let num = decide(Some(br#"{"result":"DENY","operation":7,"role":true}"#));
        assert_eq!((num.operation.as_str(), num.role.as_str()), ("7", "1"));
    }
}
