//! What the SQLite collector needs of a pack: a set of figures read from an application's
//! database, named in the config by an id (`pack = "tmws"`).
//!
//! The collector owns the file: it opens it read-only, keeps read transactions short,
//! notices a replaced file, and runs the same pack locally (through a connection) or on a
//! remote host (through batches of the remote `sqlite3` shell's answers). A pack owns its
//! queries and what it remembers between polls:
//! - its small tables are read with plain queries on every poll ([`Pack::small_queries`],
//!   the same SQL text that [`Pack::collect`] asks its [`PackDb`] for);
//! - its big append-only tables are read incrementally through [`Tail`]s ([`Pack::tails`]
//!   says where each stands, for a remote read to fetch the new rows; [`Pack::read_tails`]
//!   catches up, in as many short transactions as the collector likes);
//! - [`Pack::reset`] forgets what was learnt when the file was replaced.
//!
//! Packs are listed in the registry (`sqlite/packs.rs`) and their figures in the catalogue
//! (`model/catalog.rs`), where `config` finds them by id without knowing any collector.
//!
//! [`Tail`]: super::tail::Tail

use super::rows::SqlRows;
use super::tail::{TableReader, TailFetch};
use super::{Busy, Harvest, is_busy};
use crate::model::catalog::Fig;
use crate::model::catalog::sqlite::PackFigures;
use std::time::Instant;

/// What a pack reads a database through: its small tables and its big ones, a local
/// connection or a remote batch alike.
pub(crate) trait PackDb: SqlRows + TableReader {}
impl<T: SqlRows + TableReader> PackDb for T {}

/// The settings of a source that packs read (a pack ignores those it has no use for).
#[derive(Clone, Debug, Default)]
pub(crate) struct PackOptions {
    /// The migration head expected in the database (`expected_migration`).
    pub expected_migration: Option<String>,
}

/// A pack of figures on a SQLite source, with what it remembers between polls.
pub(crate) trait Pack: Send + Sync {
    /// The pack's entry in the catalogue: the id a config names it by, and every figure it
    /// produces (each one is sent on every poll, failed or not).
    fn catalog(&self) -> &'static PackFigures;

    fn figs(&self) -> &'static [Fig] {
        self.catalog().figs
    }

    /// The file behind the source was replaced or vanished: forget what was learnt from it.
    fn reset(&mut self) {}

    /// Reads new rows of the big tables inside the caller's (short) read transaction, with
    /// the time taken as `now`, until none are left or `deadline` passes. Returns whether
    /// every table is read to the end. Errors other than busy (a missing table) end the
    /// reading of that table; [`Pack::collect`] reports them.
    fn read_tails(
        &mut self,
        _db: &mut dyn PackDb,
        _now: f64,
        _deadline: Option<Instant>,
    ) -> Result<bool, Busy> {
        Ok(true)
    }

    /// Reads every section inside the caller's read transaction into `harvest`. A section
    /// that fails (a missing table or column) fails only its own figures; busy aborts the
    /// poll. Returns `Ok(false)`, with nothing added, when the big tables could not be read
    /// to the end before `deadline` (the caller catches up in short transactions and tries
    /// again). `now` is the database host's clock when it is not this one's (a remote
    /// reader); by default the time is read here.
    fn collect(
        &mut self,
        db: &mut dyn PackDb,
        harvest: &mut Harvest,
        deadline: Option<Instant>,
        now: Option<f64>,
    ) -> Result<bool, Busy>;

    /// Every query of the small tables [`Pack::collect`] may run, each with the section it
    /// belongs to (for a remote read, which sends them all at once: a failed query fails
    /// its section).
    fn small_queries(&self) -> Vec<(&'static str, String)>;

    /// The big tables and where each one's reading stands, for a remote read to fetch
    /// their new rows.
    fn tails(&self) -> Vec<TailFetch> {
        Vec::new()
    }
}

/// Now, as Unix seconds.
pub(crate) fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Busy propagates; any other error is kept as text for the section that owns the table.
pub(crate) fn split_busy<T>(result: rusqlite::Result<T>) -> Result<Result<T, String>, Busy> {
    match result {
        Ok(v) => Ok(Ok(v)),
        Err(e) if is_busy(&e) => Err(Busy(e.to_string())),
        Err(e) => Ok(Err(e.to_string())),
    }
}
