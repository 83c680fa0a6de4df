//! Incremental reading of a pack's big append-only tables (the TMWS pack's
//! `security_audit_logs` and `license_usage_history`, for example): generic over the
//! [`Store`] a pack keeps each table's counts in.
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

pub(crate) const HOUR: i64 = 3600;
pub(crate) const DAY: i64 = 24 * HOUR;
pub(crate) const WEEK: i64 = 7 * DAY;

/// A timestamp column read by SQLite's date functions, as Unix seconds (NULL when SQLite
/// cannot read it as a time).
fn seconds(col: &str) -> String {
    format!("unixepoch({col}, 'subsec')")
}

/// The same value as [`seconds`] for SQLite before 3.42 (no `'subsec'`; Debian 12 ships
/// 3.40): `julianday` holds the time in whole milliseconds, which the rounding recovers
/// exactly, so both give the same number.
pub(crate) fn portable_seconds(col: &str) -> String {
    format!("((round(julianday({col}) * 86400000) - 210866760000000) / 1000.0)")
}

/// A row's values as a [`Store`] reads them: 0 the rowid, 1 the time, 2.. the store's columns.
pub(crate) trait Cols {
    fn value(&self, i: usize) -> rusqlite::Result<ValueRef<'_>>;
}

impl Cols for Row<'_> {
    fn value(&self, i: usize) -> rusqlite::Result<ValueRef<'_>> {
        self.get_ref(i)
    }
}

/// The SQL a tail reads its table with.
#[derive(Debug)]
pub(crate) struct TailSql {
    pub table: &'static str,
    /// `rowid, time, COLUMNS` of rows above `?1`, at most `?2`.
    pub select: String,
    /// Every column of the row at `?1`.
    pub fingerprint: String,
    /// `min(rowid), max(rowid)`.
    pub bounds: String,
}

/// A tail as a remote read sees it: what to fetch, from where (see [`Tail::fetch`]).
#[derive(Clone, Debug)]
pub(crate) struct TailFetch {
    pub table: &'static str,
    /// The time column ([`Store::TIME`]).
    pub time: &'static str,
    /// [`Store::REMOTE_COLUMNS`].
    pub columns: &'static str,
    /// [`Store::SPAN`]: older rows are skipped on the server's side.
    pub span: i64,
    /// The watermark: rows above it are new.
    pub after: i64,
    /// The last row read, compared on the next read (besides the lowest and newest).
    pub high: Option<i64>,
}

/// One read of rows above a watermark.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Page {
    /// The highest rowid the read covered (rows it skipped as too old included).
    pub covered: Option<i64>,
    /// No row above `covered` existed when the read was made.
    pub exhausted: bool,
}

/// Called for each row: rowid, time (None when SQLite cannot read it), the row.
pub(crate) type RowFn<'a> = dyn FnMut(i64, Option<f64>, &dyn Cols) -> rusqlite::Result<()> + 'a;

/// Where a tail reads its table: a local connection, or a batch fetched from a remote host.
pub(crate) trait TableReader {
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
pub(crate) struct LocalReader<'c>(pub &'c Connection);

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
pub(crate) struct Buckets<T> {
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
    pub(crate) fn expire(&mut self, now: f64, mut gone: impl FnMut(T)) {
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
    pub(crate) fn first_start(&self, window: i64, now: f64) -> Option<f64> {
        let first = (now.floor() as i64 - window).div_euclid(self.width) + 1;
        self.map
            .range(first..)
            .next()
            .map(|(k, _)| (*k * self.width) as f64)
    }

    pub(crate) fn min_rowid(&self) -> Option<i64> {
        self.map.values().map(|b| b.min_rowid).min()
    }
}

/// What one big table keeps in memory, and how its rows are read into it.
pub(crate) trait Store {
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
pub(crate) enum Recount {
    Shrunk,
    Changed,
    Retention,
    Replaced,
}

/// One big table read incrementally.
#[derive(Debug)]
pub(crate) struct Tail<S> {
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

    /// What a remote read fetches for this tail: its table and columns, the watermark, and
    /// the row this tail compares on its next read (the last one read).
    pub fn fetch(&self) -> TailFetch {
        TailFetch {
            table: S::TABLE,
            time: S::TIME,
            columns: S::REMOTE_COLUMNS,
            span: S::SPAN,
            after: self.watermark,
            high: self.high.map(|m| m.rowid),
        }
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

    fn mark<D: TableReader + ?Sized>(
        &self,
        db: &mut D,
        rowid: i64,
    ) -> rusqlite::Result<Option<Mark>> {
        Ok(db
            .print(&self.sql, rowid)?
            .map(|print| Mark { rowid, print }))
    }

    /// Compares the table with what was read before; starts over when rows went away or were
    /// replaced. O(log n): `min`/`max` of the rowid and two rowid lookups.
    fn verify<D: TableReader + ?Sized>(
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
    /// called inside a read transaction. `Ok(false)` also when the reader has no more rows
    /// to give now (a remote batch that ended before the table did).
    pub fn ingest<D: TableReader + ?Sized>(
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
    pub(crate) fn recount_note(&self) -> Option<String> {
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

    pub(crate) fn mark_replaced(&mut self) {
        self.recount(Recount::Replaced);
    }
}

/// Small interner: repeated texts (event types, operation × role) become small ids.
#[derive(Debug, Default)]
pub(crate) struct Names<K> {
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
}
