//! A SQLite database on a remote host, read through the host's SSH connection with the
//! remote `sqlite3` command-line shell: read-only (`-readonly`, `file:PATH?mode=ro`,
//! `PRAGMA query_only`), in `-safe` mode where the shell has it (no `writefile()`, no
//! `.shell`), in JSON mode, and bounded by `timeout` where the host has it.
//!
//! As locally, no file of the application's is created: the script looks at the file on
//! the host (header bytes 18-19 with `od`, `-e` on `PATH-wal` and `PATH-shm`) and reads a
//! WAL database that lacks its sidecars with `file:PATH?immutable=1` instead of
//! `mode=ro` (which would create them, owned by the SSH user). After such a read it looks
//! again: if the sidecars or the file changed meanwhile, it prints `watchpost-again` (on
//! both streams) and reads again the way the file now asks for; only the last read counts.
//!
//! One poll is one command: every query of the poll goes as its own argument (the shell
//! runs them in order), between marker queries that tell the results apart, inside one
//! `BEGIN … COMMIT` (one snapshot, as locally). The values in the command line (the path,
//! the queries) are single shell arguments, quoted by the transport, never spliced into a
//! shell string. The shell stops at the first failing query: the ones after it run again in
//! a second command, and the rest of the failed query's section fails with the same text
//! (a missing table fails the figures that need it, as locally).
//!
//! A pack's big tables are read incrementally as locally (the same [`Tail`] code):
//! each command also fetches the rows above the watermark, the rows the tail compares
//! (lowest, newest, last read) and the table's bounds; rows older than every window are
//! skipped on the server (only their rowids are covered), so a first read sends the last
//! week, not the table. Times are read by the server's SQLite with a formula that gives
//! the same number as the local `unixepoch(…, 'subsec')` on SQLite before 3.42.
//!
//! [`Tail`]: super::tail::Tail

use super::metrics;
use super::pack::now_secs;
use super::rows::{Rows, SqlRows, cell};
use super::tail::{Cols, Page, RowFn, TableReader, TailFetch, TailSql, portable_seconds};
use super::{
    Busy, DB_FREELIST, DB_SIZE_MB, FREELIST_SQL, Harvest, IntegrityResult, PAGES_SQL, PackSlot,
    Settings, db_size, fail_all, pack_of,
};
use crate::model::update::{SourceHealth, Update};
use crate::transport::{Output, Transport, TransportError};
use rusqlite::types::{Value, ValueRef};
use serde::Deserialize;
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

/// Rows a tail fetches per command, and the rowid span one command scans at most (a read
/// transaction on the server stays short however big the table).
const ROWS_PER_FETCH: i64 = 20_000;
const ROWID_SPAN: i64 = 200_000;
/// Seconds of margin on the server's window filter (the tail decides exactly).
const WINDOW_MARGIN: i64 = 300;
/// A poll that is still catching up after this long reports how far it got and goes on at
/// the next poll (a first read of a long history over a slow link).
const CATCH_UP_PER_POLL: Duration = Duration::from_secs(8);
/// The server's own busy wait, as locally ([`super::BUSY_TIMEOUT`]).
const BUSY_MS: u128 = super::BUSY_TIMEOUT.as_millis();

/// What the remote host runs: `$1` the time limit (seconds), `$2` the path, `$3` the busy
/// wait (ms), `$4` and `$5` the path's `mode=ro` and `immutable=1` URIs, then the
/// statements. The first line says what is at the path (`dir`, `missing`, or the file's
/// device:inode, to notice a replaced file); then the shell's JSON. A WAL database (header
/// byte 18 or 19 is 2) without its `-wal` or `-shm` is read immutable (creating neither);
/// when its sidecars or its content changed during that read, `watchpost-again` is printed
/// and it is read again; `watchpost-changing` when it kept changing.
const SCRIPT: &str = r#"t=$1; p=$2; b=$3; o=$4; i=$5; shift 5
if [ -d "$p" ]; then echo "watchpost-file dir"; exit 0; fi
if [ ! -e "$p" ]; then echo "watchpost-file missing"; exit 0; fi
echo "watchpost-file $(stat -L -c %d:%i -- "$p" 2>/dev/null)"
command -v sqlite3 >/dev/null 2>&1 || { echo "sqlite3 is not installed (apt-get install sqlite3)" >&2; exit 127; }
s=; if sqlite3 -safe -version >/dev/null 2>&1; then s=-safe; fi
r=$(readlink -f -- "$p" 2>/dev/null); [ -n "$r" ] || r=$p
w() { set -- $(od -An -tu1 -j18 -N2 -- "$r" 2>/dev/null); [ "${1:-0}" = 2 ] || [ "${2:-0}" = 2 ]; }
bare() { w && { [ ! -e "$r-wal" ] || [ ! -e "$r-shm" ]; }; }
state() { [ -e "$r-wal" ] && printf w; [ -e "$r-shm" ] && printf s; stat -L -c ' %d:%i:%s:%y' -- "$r" 2>/dev/null; }
run() {
  if command -v timeout >/dev/null 2>&1; then set -- timeout "$t" sqlite3 "$@"; else set -- sqlite3 "$@"; fi
  "$@"
}
n=0
while bare; do
  n=$((n + 1))
  a=$(state)
  run $s -init /dev/null -batch -readonly -json -cmd ".timeout $b" -cmd "PRAGMA query_only=1" "$i" "$@"; c=$?
  if [ "$c" = 124 ] || [ "$(state)" = "$a" ]; then exit "$c"; fi
  printf '\nwatchpost-again\n'; printf '\nwatchpost-again\n' >&2
  if [ "$n" -ge 3 ]; then echo watchpost-changing; exit 0; fi
done
run $s -init /dev/null -batch -readonly -json -cmd ".timeout $b" -cmd "PRAGMA query_only=1" "$o" "$@""#;

const MARK: &str = "watchpost_mark";
const ROWID: &str = "watchpost_rowid";
const NOW_SQL: &str =
    "SELECT ((round(julianday('now') * 86400000) - 210866760000000) / 1000.0) AS now";

/// The reader of one remote SQLite source.
pub(super) struct RemoteWorker {
    settings: Settings,
    transport: Transport,
    interval: Duration,
    /// The pack and its memory of the big tables; taken out while rows are ingested.
    pack: PackSlot,
    /// `device:inode` of the file last read (a different one means a replaced file).
    file: Option<String>,
    integrity: Option<IntegrityResult>,
}

impl RemoteWorker {
    pub fn new(settings: Settings, transport: Transport, interval: Duration) -> Self {
        RemoteWorker {
            pack: pack_of(&settings),
            settings,
            transport,
            interval,
            file: None,
            integrity: None,
        }
    }

    pub(crate) fn with_settings(self, settings: Settings) -> Self {
        RemoteWorker::new(settings, self.transport, self.interval)
    }

    fn host(&self) -> &str {
        self.transport.name()
    }

    /// One command's time limit: shorter than the interval, long enough for a round trip.
    fn budget(&self) -> Duration {
        crate::collect::exec_budget(self.interval)
    }

    /// Fails every figure of the source (its own, its pack's, its metrics') with `text`.
    fn fail_all(&self, harvest: &mut Harvest, text: &str) {
        fail_all(harvest, &self.pack, &self.settings.metrics, text);
    }

    /// Forgets what was learnt from the file (it was replaced, or vanished).
    fn forget(&mut self) {
        self.integrity = None;
        if let Ok(Some(pack)) = &mut self.pack {
            pack.reset();
        }
    }

    pub async fn poll(&mut self) -> Vec<Update> {
        let source = self.settings.source.clone();
        let mut harvest = Harvest::new(&source);
        match self.read(&mut harvest).await {
            Ok(()) => {}
            Err(Stop::Updates(updates)) => return updates,
            Err(Stop::Busy(Busy(message))) => {
                return vec![crate::collect::health(
                    &source,
                    SourceHealth::Busy { message },
                )];
            }
        }
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
            crate::collect::health(&source, SourceHealth::Ok)
        } else {
            crate::collect::failed(&source, harvest.errors.join("; "), self.settings.retry)
        });
        updates
    }

    async fn read(&mut self, harvest: &mut Harvest) -> Result<(), Stop> {
        if let Err(e) = &self.pack {
            self.fail_all(harvest, &e.to_string());
            return Ok(());
        }
        let started = Instant::now();
        let (plan, batch) = loop {
            let plan = Plan::new(
                &self.settings,
                self.pack.as_ref().ok().and_then(Option::as_deref),
            );
            let batch = match self.run_with_limit(&plan, self.budget()).await {
                Ok(batch) => batch,
                Err(RunError::Transport(e)) => return Err(self.transport_stop(&e)),
                // Too slow this time: the figures stay as they are, with their age.
                Err(RunError::TimedOut) => {
                    return Err(Stop::Updates(vec![crate::collect::failed(
                        &self.settings.source,
                        format!(
                            "the queries on {} took longer than {} (a very large database, or an overloaded host?)",
                            self.host(),
                            humantime::format_duration(self.budget())
                        ),
                        self.settings.retry,
                    )]));
                }
                Err(RunError::Busy(message)) => return Err(Stop::Busy(Busy(message))),
                Err(RunError::Fatal(text)) => {
                    // The file as a whole cannot be read: start over next time.
                    self.file = None;
                    self.forget();
                    self.fail_all(harvest, &text);
                    return Ok(());
                }
                Err(RunError::Gone(text)) => {
                    self.file = None;
                    self.forget();
                    self.fail_all(harvest, &text);
                    return Ok(());
                }
            };
            if batch.file.as_deref() != self.file.as_deref() {
                if self.file.is_some() {
                    self.forget();
                }
                self.file = batch.file.clone();
            }
            // The pack reads the rows (CPU work on up to tens of thousands of rows: off the
            // executor, the pack moved in and back).
            let mut pack = self.pack.as_mut().ok().and_then(Option::take);
            let source = self.settings.source.clone();
            let (pack_back, result) = tokio::task::spawn_blocking(move || {
                let mut fresh = Harvest::new(&source);
                let mut db = RemoteDb::new(&plan, &batch);
                let now = db.now();
                let done = match pack.as_mut() {
                    Some(p) => p.collect(&mut db, &mut fresh, None, Some(now)),
                    None => Ok(true),
                };
                (pack, done.map(|done| (done, fresh, plan, batch)))
            })
            .await
            .map_err(|e| {
                Stop::Updates(vec![crate::collect::failed(
                    &self.settings.source,
                    format!("internal error while reading the database: {e}"),
                    self.settings.retry,
                )])
            })?;
            if let Ok(slot) = &mut self.pack {
                *slot = pack_back;
            }
            match result {
                Err(busy) => return Err(Stop::Busy(busy)),
                Ok((true, fresh, plan, batch)) => {
                    harvest.readings.extend(fresh.readings);
                    harvest.tables.extend(fresh.tables);
                    harvest.errors.extend(fresh.errors);
                    break (plan, batch);
                }
                Ok((false, ..)) if started.elapsed() < CATCH_UP_PER_POLL => continue,
                Ok((false, ..)) => {
                    return Err(Stop::Busy(Busy(format!(
                        "reading the history of the big tables on {} (goes on at the next refresh)",
                        self.host()
                    ))));
                }
            }
        };

        let mut db = RemoteDb::new(&plan, &batch);
        let source = harvest.source.clone();
        harvest
            .add(&[DB_SIZE_MB, DB_FREELIST], db_size(&mut db, &source))
            .map_err(Stop::Busy)?;
        for (m, index) in self.settings.metrics.iter().zip(&plan.metrics) {
            let reading = match index {
                Err(text) => metrics::Outcome {
                    reading: metrics::failed(
                        &source,
                        m,
                        &format!("metric {source}.{}: {text}", m.id),
                    ),
                    table: None,
                },
                Ok(index) => match batch.result(*index) {
                    Ok(set) => {
                        if set.sets > 1 {
                            metrics::Outcome {
                                reading: metrics::failed(
                                    &source,
                                    m,
                                    &format!(
                                        "metric {source}.{}: give one statement per metric (the query holds several)",
                                        m.id
                                    ),
                                ),
                                table: None,
                            }
                        } else {
                            metrics::from_rows(&source, m, set.columns.clone(), &set.values())
                        }
                    }
                    Err(e) => metrics::Outcome {
                        reading: metrics::failed(
                            &source,
                            m,
                            &format!(
                                "metric {source}.{}: {}",
                                m.id,
                                metrics::MetricError::of(e, self.budget())
                            ),
                        ),
                        table: None,
                    },
                },
            };
            harvest.add_metric(reading);
        }

        if let Some(budget) = super::integrity_due(self.integrity.as_ref(), batch.wal) {
            // Busy, or the host went away just now: the last result stays (the next poll
            // says what became of the host).
            if let Ok(Some(outcome)) = self.integrity_check(budget).await {
                self.integrity = Some(IntegrityResult {
                    at: Instant::now(),
                    outcome,
                });
            }
        }
        harvest
            .readings
            .push(super::integrity_reading(&source, self.integrity.as_ref()));
        Ok(())
    }

    /// The updates for a failed command: the host's line while it is down (figures kept with
    /// their age), otherwise the error.
    fn transport_stop(&self, error: &TransportError) -> Stop {
        let source = &self.settings.source;
        Stop::Updates(vec![
            if crate::collect::host_unreachable(&self.transport, error) {
                crate::collect::host_down(source, &self.transport, error)
            } else {
                crate::collect::failed(
                    source,
                    format!(
                        "sqlite on {}: {}",
                        self.host(),
                        crate::collect::transport_message(&self.transport, error)
                    ),
                    self.settings.retry,
                )
            },
        ])
    }

    /// `PRAGMA quick_check(10)` in its own command, stopped by `timeout` after `budget`
    /// (a read that long would hold up the application's writes in rollback-journal mode).
    /// `None` when the database was busy (tried again next poll).
    async fn integrity_check(
        &self,
        budget: Duration,
    ) -> Result<Option<Result<String, String>>, TransportError> {
        let plan = Plan::single("PRAGMA quick_check(10)");
        let limit = budget.max(Duration::from_secs(1));
        match self.run_with_limit(&plan, limit).await {
            Ok(batch) => Ok(Some(match batch.result(0) {
                Ok(set) => {
                    let lines: Vec<String> = set
                        .values()
                        .iter()
                        .filter_map(|row| row.first().map(|v| cell(v.into())))
                        .collect();
                    if lines.is_empty() {
                        Err("quick_check returned nothing".into())
                    } else {
                        Ok(lines.join("; "))
                    }
                }
                Err(e) => Err(e.to_string()),
            })),
            Err(RunError::Transport(e)) => Err(e),
            Err(RunError::Busy(_)) => Ok(None),
            Err(RunError::TimedOut) => Ok(Some(Err(format!(
                "quick_check stopped after {} ms so as not to hold up the application's writes; \
                 run PRAGMA integrity_check in a maintenance window",
                limit.as_millis()
            )))),
            Err(RunError::Fatal(text) | RunError::Gone(text)) => Ok(Some(Err(text))),
        }
    }

    /// Runs a plan's statements, again from after the first failing one until every one has
    /// a result.
    async fn run_with_limit(&self, plan: &Plan, limit: Duration) -> Result<Batch, RunError> {
        let mut results: Vec<Option<Result<ResultSet, rusqlite::Error>>> =
            (0..plan.stmts.len()).map(|_| None).collect();
        let mut file = None;
        let mut wal = false;
        loop {
            let pending: Vec<usize> = (0..plan.stmts.len())
                .filter(|i| results[*i].is_none())
                .collect();
            if pending.is_empty() {
                break;
            }
            let args = self.command(plan, &pending, limit);
            let out = self
                .transport
                .exec_script(SCRIPT, &args, limit + Duration::from_secs(2))
                .await
                .map_err(RunError::Transport)?;
            let parsed = parse_output(&out, &self.settings, self.host())?;
            if file.is_none() {
                file = parsed.file;
            }
            for (i, set) in parsed.done {
                if plan.stmts[i].sql == "PRAGMA journal_mode" {
                    wal = set
                        .rows
                        .first()
                        .and_then(|r| r.first())
                        .is_some_and(|(_, v)| {
                            v.as_str().is_some_and(|m| m.eq_ignore_ascii_case("wal"))
                        });
                }
                results[i] = Some(Ok(set));
            }
            match parsed.failed {
                None => {
                    // Everything that ran is in; anything left did not run (the shell
                    // ended early without saying why).
                    for i in pending {
                        results[i].get_or_insert_with(|| {
                            Err(sql_error("the sqlite3 shell ended before this query ran"))
                        });
                    }
                }
                Some((i, error)) => {
                    if is_busy_error(&error) {
                        return Err(RunError::Busy(error.to_string()));
                    }
                    if plan.stmts[i].fatal || is_fatal_error(&error) {
                        return Err(RunError::Fatal(error.to_string()));
                    }
                    // The query's section fails as one (a missing table fails every query
                    // of that section the same way).
                    let group = plan.stmts[i].group;
                    for (stmt, result) in plan.stmts.iter().zip(results.iter_mut()).skip(i) {
                        if stmt.group == group && result.is_none() {
                            *result = Some(Err(clone_error(&error)));
                        }
                    }
                }
            }
        }
        Ok(Batch {
            file,
            wal,
            results: results
                .into_iter()
                .map(|r| r.expect("every statement has a result"))
                .collect(),
        })
    }

    /// The script's arguments for the statements `pending` of `plan`.
    fn command(&self, plan: &Plan, pending: &[usize], limit: Duration) -> Vec<String> {
        let path = self.settings.path.to_string_lossy().into_owned();
        let mut args = vec![
            format!("{}", limit.as_secs_f64().ceil().max(1.0) as u64),
            path.clone(),
            BUSY_MS.to_string(),
            file_uri(&path, "mode=ro"),
            file_uri(&path, "immutable=1"),
        ];
        let mut in_tx = false;
        for &i in pending {
            let stmt = &plan.stmts[i];
            if stmt.tx && !in_tx {
                args.push("BEGIN".into());
                in_tx = true;
            } else if !stmt.tx && in_tx {
                args.push("COMMIT".into());
                in_tx = false;
            }
            args.push(format!("SELECT {i} AS {MARK}"));
            args.push(stmt.sql.clone());
        }
        args.push(format!("SELECT -1 AS {MARK}"));
        if in_tx {
            args.push("COMMIT".into());
        }
        args
    }
}

/// Why a poll ended early.
enum Stop {
    Updates(Vec<Update>),
    Busy(Busy),
}

/// Why a command gave no results.
#[derive(Debug)]
enum RunError {
    Transport(TransportError),
    Busy(String),
    /// The file cannot be read at all (not a database, cannot be opened, no sqlite3).
    Fatal(String),
    /// Nothing (readable) at the path.
    Gone(String),
    /// `timeout` stopped the shell.
    TimedOut,
}

/// `file:` URI of a path with `params` (`%`, `?` and `#` escaped so the path stays a path).
pub(crate) fn file_uri(path: &str, params: &str) -> String {
    String::from_utf8_lossy(&super::file_uri(path.as_bytes(), params)).into_owned()
}

/// One query of a plan.
#[derive(Clone, Debug)]
struct Stmt {
    sql: String,
    /// Queries of one section: a failure fails them all.
    group: usize,
    /// Inside the read transaction (the figures); metrics run after it, each alone.
    tx: bool,
    /// A failure means the file cannot be read at all.
    fatal: bool,
}

/// Where a tail's results are in a plan.
#[derive(Clone, Debug)]
struct TailPlan {
    table: &'static str,
    /// The watermark the rows were fetched above.
    after: i64,
    bounds: usize,
    marks: usize,
    rows: usize,
    /// The rowid asked for by name (the last row read), besides the lowest and newest.
    high: Option<i64>,
}

/// Every query of one poll, and where each answer is.
#[derive(Clone, Debug, Default)]
struct Plan {
    stmts: Vec<Stmt>,
    now: Option<usize>,
    small: HashMap<String, usize>,
    tails: Vec<TailPlan>,
    /// Per metric: its statement, or why it was not sent.
    metrics: Vec<Result<usize, String>>,
}

impl Plan {
    fn push(&mut self, sql: impl Into<String>, group: usize, fatal: bool) -> usize {
        self.stmts.push(Stmt {
            sql: sql.into(),
            group,
            tx: true,
            fatal,
        });
        self.stmts.len() - 1
    }

    fn single(sql: &str) -> Plan {
        let mut plan = Plan::default();
        plan.push(sql, 0, false);
        plan
    }

    fn new(settings: &Settings, pack: Option<&dyn super::Pack>) -> Plan {
        let mut plan = Plan::default();
        // The first read of the file: "not a database" and "busy" show up here.
        plan.now = Some(plan.push(NOW_SQL, 0, true));
        plan.push("SELECT count(*) FROM sqlite_master", 0, true);
        plan.push("PRAGMA journal_mode", 0, true);
        let mut group = 1;
        if let Some(pack) = pack {
            let mut groups: HashMap<&str, usize> = HashMap::new();
            for (section, sql) in pack.small_queries() {
                let g = *groups.entry(section).or_insert_with(|| {
                    group += 1;
                    group
                });
                let i = plan.push(sql.clone(), g, false);
                plan.small.insert(sql, i);
            }
            for tail in pack.tails() {
                group += 1;
                plan.add_tail(&tail, group);
            }
        }
        group += 1;
        for sql in [PAGES_SQL, FREELIST_SQL] {
            let i = plan.push(sql, group, false);
            plan.small.insert(sql.to_string(), i);
        }
        for m in &settings.metrics {
            group += 1;
            let query = m.query.trim();
            if query.starts_with('.') {
                // The shell would run it as a dot-command, not as SQL.
                plan.metrics.push(Err(
                    "a metric is one SQL statement; a line starting with '.' is a sqlite3 shell command"
                        .into(),
                ));
                continue;
            }
            plan.stmts.push(Stmt {
                sql: query.to_string(),
                group,
                tx: false,
                fatal: false,
            });
            plan.metrics.push(Ok(plan.stmts.len() - 1));
        }
        plan
    }

    /// The queries of one tail (the lowest row is fetched by `min(rowid)`, whatever it is
    /// now).
    fn add_tail(&mut self, tail: &TailFetch, group: usize) {
        let (after, high) = (tail.after, tail.high);
        let t = tail.table;
        let bounds = self.push(
            format!("SELECT min(rowid) AS lo, max(rowid) AS hi FROM {t}"),
            group,
            false,
        );
        let mut wanted = format!("(SELECT min(rowid) FROM {t}), (SELECT max(rowid) FROM {t})");
        if let Some(h) = high {
            wanted.push_str(&format!(", {h}"));
        }
        let marks = self.push(
            format!("SELECT rowid AS {ROWID}, * FROM {t} WHERE rowid IN ({wanted})"),
            group,
            false,
        );
        let time = portable_seconds(tail.time);
        let now = portable_seconds("'now'");
        let rows = self.push(
            format!(
                "SELECT rowid AS r, {time} AS t, {cols} FROM {t} \
                 WHERE rowid > {after} AND rowid <= {end} \
                   AND ({time} IS NULL OR {time} > {now} - {span}) \
                 ORDER BY rowid LIMIT {limit}",
                cols = tail.columns,
                end = after.saturating_add(ROWID_SPAN),
                span = tail.span + WINDOW_MARGIN,
                limit = ROWS_PER_FETCH,
            ),
            group,
            false,
        );
        self.tails.push(TailPlan {
            table: t,
            after,
            bounds,
            marks,
            rows,
            high,
        });
    }
}

/// One row of a result, its columns in the order the query gave them.
#[derive(Debug, Default, Clone)]
struct JsonRow(Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for JsonRow {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = JsonRow;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a row object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<JsonRow, A::Error> {
                let mut row = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, serde_json::Value>()? {
                    row.push((k, v));
                }
                Ok(JsonRow(row))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// One query's answer.
#[derive(Debug, Default, Clone)]
struct ResultSet {
    /// Column names (of the first row; none without rows).
    columns: Vec<String>,
    rows: Vec<Vec<(String, serde_json::Value)>>,
    /// How many result sets the query printed (more than one: several statements).
    sets: usize,
}

impl ResultSet {
    fn values(&self) -> Rows {
        self.rows
            .iter()
            .map(|row| row.iter().map(|(_, v)| json_value(v)).collect())
            .collect()
    }
}

/// A JSON cell as the SQLite value it was printed from.
fn json_value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Integer(i64::from(*b)),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Real(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::Text(s.clone()),
        other => Value::Text(other.to_string()),
    }
}

/// What one command printed, sorted out.
struct Parsed {
    file: Option<String>,
    done: Vec<(usize, ResultSet)>,
    /// The statement the shell stopped at, and its error.
    failed: Option<(usize, rusqlite::Error)>,
}

/// Reads the script's output: the file line, then result sets between markers.
fn parse_output(out: &Output, settings: &Settings, host: &str) -> Result<Parsed, RunError> {
    let path = settings.path.display();
    let (stdout, again) = last_read(out.stdout_text());
    let (stderr, _) = last_read(out.stderr_text());
    if again && stdout.lines().any(|l| l == "watchpost-changing") {
        return Err(RunError::Busy(
            "the database kept changing while it was read; reading it again at the next refresh"
                .into(),
        ));
    }
    if out.status.code == Some(127) {
        return Err(RunError::Fatal(format!(
            "cannot read {path} on {host}: {}",
            first_line(&stderr).unwrap_or("sqlite3 is not installed")
        )));
    }
    if out.status.code == Some(124) || out.status.signal.is_some() {
        return Err(RunError::TimedOut);
    }
    // The file line comes first (a chatty login script may print before it).
    let start = if stdout.starts_with("watchpost-file") {
        Some(0)
    } else {
        stdout.find("\nwatchpost-file").map(|i| i + 1)
    };
    let rest = start.map_or("", |i| &stdout[i..]);
    let (head, json) = rest.split_once('\n').unwrap_or((rest, ""));
    let file = match head.strip_prefix("watchpost-file") {
        Some(rest) => rest.trim().to_string(),
        None => {
            return Err(RunError::Fatal(format!(
                "cannot read {path} on {host}: {}",
                first_line(&stderr).unwrap_or("the remote command printed nothing")
            )));
        }
    };
    match file.as_str() {
        "missing" => return Err(RunError::Gone(format!("no such file: {path} on {host}"))),
        "dir" => {
            return Err(RunError::Gone(format!(
                "{path} on {host} is a directory, not a database file"
            )));
        }
        _ => {}
    }
    let mut done = Vec::new();
    let mut current: Option<usize> = None;
    let mut set: Option<ResultSet> = None;
    let mut stream = serde_json::Deserializer::from_str(json).into_iter::<Vec<JsonRow>>();
    let mut ended = false;
    loop {
        match stream.next() {
            None => break,
            Some(Err(e)) => {
                return Err(RunError::Fatal(format!(
                    "cannot read the answer of sqlite3 on {host}: {e}"
                )));
            }
            Some(Ok(rows)) => {
                let mark = match rows.as_slice() {
                    [JsonRow(cols)] if cols.len() == 1 && cols[0].0 == MARK => cols[0].1.as_i64(),
                    _ => None,
                };
                match mark {
                    Some(k) => {
                        if let Some(i) = current.take() {
                            done.push((i, set.take().unwrap_or_default()));
                        }
                        if k < 0 {
                            ended = true;
                        } else {
                            current = Some(k as usize);
                        }
                    }
                    None => {
                        let entry = set.get_or_insert_with(ResultSet::default);
                        entry.sets += 1;
                        if entry.sets == 1 {
                            entry.columns = rows
                                .first()
                                .map(|r| r.0.iter().map(|(k, _)| k.clone()).collect())
                                .unwrap_or_default();
                            entry.rows = rows.into_iter().map(|r| r.0).collect();
                        }
                    }
                }
            }
        }
    }
    let failed = match current {
        // The shell stopped inside this statement.
        Some(i) if !ended => Some((i, parse_error(&stderr))),
        _ if !ended && out.status.code != Some(0) && done.is_empty() => {
            // Before the first statement: the file could not be opened.
            return Err(RunError::Fatal(format!(
                "cannot open {path} on {host}: {}",
                error_text(&stderr)
            )));
        }
        _ => None,
    };
    Ok(Parsed {
        file: (!file.is_empty()).then_some(file),
        done,
        failed,
    })
}

/// The output of the script's last read: a read discarded because the file changed under it
/// ends with a `watchpost-again` line; the file line before it is kept. Also whether there
/// was such a line.
fn last_read(text: String) -> (String, bool) {
    const AGAIN: &str = "watchpost-again\n";
    let cut = if text.starts_with(AGAIN) {
        Some(0)
    } else {
        text.rfind(&format!("\n{AGAIN}")).map(|i| i + 1)
    };
    let Some(cut) = cut else {
        return (text, false);
    };
    let rest = &text[cut + AGAIN.len()..];
    // The file line (first of stdout, none on stderr) stays in front of the last read.
    let head = text
        .lines()
        .find(|l| l.starts_with("watchpost-file"))
        .filter(|_| !text[..cut].is_empty());
    let mut kept = String::new();
    if let Some(head) = head {
        kept.push_str(head);
        kept.push('\n');
    }
    kept.push_str(rest);
    (kept, true)
}

fn first_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).find(|l| !l.is_empty())
}

/// The message of the shell's first error line, without its decorations.
fn error_text(stderr: &str) -> String {
    let line = stderr
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("Error") || l.contains("error") || l.contains("Error"))
        .or_else(|| first_line(stderr))
        .unwrap_or("the sqlite3 shell failed without a message");
    let mut text = line;
    for prefix in ["Error: ", "Parse error: ", "Runtime error: "] {
        if let Some(rest) = text.strip_prefix(prefix) {
            text = rest;
        }
    }
    // Newer shells: "Parse error near line 1: …".
    for prefix in ["Parse error near line ", "Runtime error near line "] {
        if let Some(rest) = text.strip_prefix(prefix) {
            text = rest.split_once(": ").map_or(rest, |(_, r)| r);
        }
    }
    for prefix in ["in prepare, ", "stepping, "] {
        if let Some(rest) = text.strip_prefix(prefix) {
            text = rest;
        }
    }
    text.to_string()
}

/// The shell's error as the error rusqlite would have given for the same failure.
fn parse_error(stderr: &str) -> rusqlite::Error {
    let text = error_text(stderr);
    // "… (5)": SQLite's result code, when the shell printed it.
    let (message, code) = match text.rsplit_once(" (") {
        Some((message, rest)) => match rest.strip_suffix(')').and_then(|c| c.parse::<i32>().ok()) {
            Some(code) => (message.to_string(), Some(code)),
            None => (text.clone(), None),
        },
        None => (text.clone(), None),
    };
    let code = code.unwrap_or_else(|| {
        if message.contains("database is locked") {
            rusqlite::ffi::SQLITE_BUSY
        } else if message.contains("database table is locked") {
            rusqlite::ffi::SQLITE_LOCKED
        } else if message.contains("file is not a database") {
            rusqlite::ffi::SQLITE_NOTADB
        } else if message.contains("attempt to write a readonly database") {
            rusqlite::ffi::SQLITE_READONLY
        } else {
            rusqlite::ffi::SQLITE_ERROR
        }
    });
    rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), Some(message))
}

fn sql_error(message: &str) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
        Some(message.to_string()),
    )
}

fn clone_error(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        other => sql_error(&other.to_string()),
    }
}

fn is_busy_error(e: &rusqlite::Error) -> bool {
    super::is_busy(e)
}

/// Errors that mean the file as a whole cannot be read.
fn is_fatal_error(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode as C;
    matches!(
        e.sqlite_error_code(),
        Some(C::NotADatabase | C::CannotOpen | C::SystemIoFailure | C::DatabaseCorrupt)
    )
}

/// The answers of one poll.
struct Batch {
    file: Option<String>,
    wal: bool,
    results: Vec<Result<ResultSet, rusqlite::Error>>,
}

impl Batch {
    fn result(&self, i: usize) -> Result<&ResultSet, rusqlite::Error> {
        match self.results.get(i) {
            Some(Ok(set)) => Ok(set),
            Some(Err(e)) => Err(clone_error(e)),
            None => Err(sql_error("internal: no such query in the plan")),
        }
    }
}

/// A batch seen as a database by the pack: its small queries by SQL text, its tails by
/// table.
struct RemoteDb<'a> {
    plan: &'a Plan,
    batch: &'a Batch,
}

impl<'a> RemoteDb<'a> {
    fn new(plan: &'a Plan, batch: &'a Batch) -> Self {
        RemoteDb { plan, batch }
    }

    /// The server's clock at the start of the poll, as Unix seconds.
    fn now(&self) -> f64 {
        self.plan
            .now
            .and_then(|i| self.batch.result(i).ok())
            .and_then(|set| set.rows.first()?.first()?.1.as_f64())
            .unwrap_or_else(now_secs)
    }

    fn tail(&self, table: &str) -> rusqlite::Result<&'a TailPlan> {
        self.plan
            .tails
            .iter()
            .find(|t| t.table == table)
            .ok_or_else(|| sql_error("internal: table not fetched"))
    }
}

impl SqlRows for RemoteDb<'_> {
    fn rows(&mut self, sql: &str) -> rusqlite::Result<Rows> {
        let i = *self
            .plan
            .small
            .get(sql)
            .ok_or_else(|| sql_error("internal: query not sent"))?;
        Ok(self.batch.result(i)?.values())
    }
}

/// A fetched row for a store: 0 the rowid, 1 the time, then the columns.
struct RemoteRow(Vec<Value>);

impl Cols for RemoteRow {
    fn value(&self, i: usize) -> rusqlite::Result<ValueRef<'_>> {
        self.0
            .get(i)
            .map(ValueRef::from)
            .ok_or(rusqlite::Error::InvalidColumnIndex(i))
    }
}

impl TableReader for RemoteDb<'_> {
    fn bounds(&mut self, sql: &TailSql) -> rusqlite::Result<(Option<i64>, Option<i64>)> {
        let tail = self.tail(sql.table)?;
        let set = self.batch.result(tail.bounds)?;
        let row = set.values().into_iter().next().unwrap_or_default();
        let int = |v: Option<&Value>| match v {
            Some(Value::Integer(n)) => Some(*n),
            _ => None,
        };
        Ok((int(row.first()), int(row.get(1))))
    }

    fn print(&mut self, sql: &TailSql, rowid: i64) -> rusqlite::Result<Option<u64>> {
        let tail = self.tail(sql.table)?;
        let (lo, hi) = self.bounds(sql)?;
        let fetched: HashSet<i64> = [lo, hi, tail.high].into_iter().flatten().collect();
        if !fetched.contains(&rowid) {
            // Not asked for in this batch (a mark after a partial read): no comparison.
            return Ok(None);
        }
        let set = self.batch.result(tail.marks)?;
        for row in &set.rows {
            let id = row
                .iter()
                .find(|(k, _)| k == ROWID)
                .and_then(|(_, v)| v.as_i64());
            if id == Some(rowid) {
                let mut h = DefaultHasher::new();
                for (k, v) in row {
                    k.hash(&mut h);
                    v.to_string().hash(&mut h);
                }
                return Ok(Some(h.finish()));
            }
        }
        Ok(None)
    }

    fn page(
        &mut self,
        sql: &TailSql,
        after: i64,
        _limit: i64,
        each: &mut RowFn<'_>,
    ) -> rusqlite::Result<Option<Page>> {
        let tail = self.tail(sql.table)?;
        if after != tail.after {
            return Ok(None);
        }
        let (_, hi) = self.bounds(sql)?;
        let set = self.batch.result(tail.rows)?;
        let mut last = None;
        for values in set.values() {
            let rowid = match values.first() {
                Some(Value::Integer(n)) => *n,
                _ => return Err(sql_error("a fetched row has no rowid")),
            };
            let t = match values.get(1) {
                Some(Value::Real(x)) => Some(*x),
                Some(Value::Integer(n)) => Some(*n as f64),
                _ => None,
            };
            each(rowid, t, &RemoteRow(values))?;
            last = Some(rowid);
        }
        let full = set.rows.len() as i64 >= ROWS_PER_FETCH;
        let covered = match (full, last) {
            (true, Some(last)) => last,
            _ => after
                .saturating_add(ROWID_SPAN)
                .min(hi.unwrap_or(after))
                .max(after),
        };
        Ok(Some(Page {
            covered: Some(covered),
            exhausted: hi.is_none_or(|hi| covered >= hi),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_keep_paths_whole() {
        assert_eq!(file_uri("/var/x.db", "mode=ro"), "file:/var/x.db?mode=ro");
        assert_eq!(
            file_uri("/tmp/a?mode=rwc#x%y.db", "mode=ro"),
            "file:/tmp/a%3Fmode=rwc%23x%25y.db?mode=ro"
        );
        assert_eq!(
            file_uri("/tmp/a?mode=rwc#x%y.db", "immutable=1"),
            "file:/tmp/a%3Fmode=rwc%23x%25y.db?immutable=1"
        );
        assert_eq!(file_uri("//srv/x.db", "mode=ro"), "file:/srv/x.db?mode=ro");
        assert_eq!(file_uri("data/x.db", "mode=ro"), "file:data/x.db?mode=ro");
    }

    #[test]
    fn only_the_last_read_counts() {
        let (out, again) = last_read("watchpost-file 1:2\n[{\"a\":1}]\n".into());
        assert_eq!(out, "watchpost-file 1:2\n[{\"a\":1}]\n");
        assert!(!again);
        let (out, again) =
            last_read("watchpost-file 1:2\n[{\"a\":1}]\nwatchpost-again\n[{\"a\":2}]\n".into());
        assert_eq!(out, "watchpost-file 1:2\n[{\"a\":2}]\n");
        assert!(again);
        // stderr: no file line, the first read's errors dropped.
        let (err, again) = last_read("Error: x\nwatchpost-again\n".into());
        assert_eq!(err, "");
        assert!(again);
        let (err, _) = last_read("watchpost-again\nError: y\n".into());
        assert_eq!(err, "Error: y\n");
    }

    #[test]
    fn shell_errors_read_like_rusqlite_errors() {
        let e = parse_error("Error: in prepare, no such table: license_keys\n");
        assert_eq!(e.to_string(), "no such table: license_keys");
        assert!(!is_busy_error(&e) && !is_fatal_error(&e));
        let e = parse_error("Error: stepping, database is locked (5)\n");
        assert_eq!(e.to_string(), "database is locked");
        assert!(is_busy_error(&e));
        let e = parse_error("Error: in prepare, file is not a database (26)\n");
        assert!(is_fatal_error(&e), "{e:?}");
        let e = parse_error("Parse error near line 1: no such column: tier\n  SELECT tier\n");
        assert_eq!(e.to_string(), "no such column: tier");
        let e = parse_error("line 0: cannot use the writefile() function in safe mode\n");
        assert!(e.to_string().contains("safe mode"), "{e}");
    }

    #[test]
    fn rows_keep_their_column_order() {
        let text = r#"[{"z":1,"a":2.5,"m":"x","n":null}]"#;
        let rows: Vec<JsonRow> = serde_json::from_str(text).unwrap();
        let keys: Vec<&str> = rows[0].0.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["z", "a", "m", "n"]);
        let values: Vec<Value> = rows[0].0.iter().map(|(_, v)| json_value(v)).collect();
        assert_eq!(
            values,
            [
                Value::Integer(1),
                Value::Real(2.5),
                Value::Text("x".into()),
                Value::Null
            ]
        );
        // The shell prints reals with 20 digits: the same double comes back.
        let t: serde_json::Value = serde_json::from_str("1704060000.1229999065").unwrap();
        assert_eq!(t.as_f64(), Some(1704060000.123));
    }
}
