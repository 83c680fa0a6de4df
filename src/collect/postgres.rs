//! A PostgreSQL server as a source (`[postgres.NAME]`), read-only by construction: one
//! connection, opened with `default_transaction_read_only=on` and a `statement_timeout`,
//! and every poll's statements in short `BEGIN READ ONLY` transactions, one for the
//! built-in figures and one per metric (a single statement each: the extended protocol
//! takes no more), so the server refuses any write; after each metric `RESET ALL` undoes
//! whatever `SET` it made.
//!
//! Figures (see [`crate::model::catalog::postgres`]): `up`; client connections by state from
//! `pg_stat_activity` and their share of `max_connections`; the longest running query and
//! the longest open transaction (other than ours); replication lag where there is a replica
//! (absent otherwise); the database's size; deadlocks and rollbacks per minute and the
//! buffer cache hit % from the change of `pg_stat_database`'s counters between two polls
//! (since the last stats reset in `watchpost check`, which looks once).
//! `[[postgres.NAME.metric]]` runs any SQL with the keys and rules of `[[sqlite.S.metric]]`:
//! its cells become SQLite values and go through the same code, so a number, a `samples`
//! column, a table and the words for what is wrong are the same.
//!
//! The server is reached from the source's `host`: from here (TCP, or a unix socket
//! directory as `host`), or through a `[hosts]` host's one SSH connection as a `direct-tcpip`
//! channel ([`Transport::connect_tcp`]).

use crate::collect::counters::{self, NEEDS_TWO, no_samples};
use crate::collect::sqlite::metrics::{self as sql_metrics, TABLE_ROWS};
use crate::collect::{Collector, Reach, health};
use crate::config::{PostgresSource, SqlMetric};
use crate::model::catalog::{Fig, postgres as fig};
use crate::model::figure::Reading;
use crate::model::pane::PaneId;
use crate::model::rule::{Priority, Rule, Threshold};
use crate::model::update::{ServiceStatus, SourceHealth, Table, Update};
use crate::transport::Transport;
use futures::future::BoxFuture;
use futures::{StreamExt, pin_mut};
use rusqlite::types::Value as Cell;
use std::time::{Duration, Instant};
use tokio_postgres::config::Host;
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::{Client, NoTls};

/// Where the server is: a TCP address, or a unix socket directory on this machine.
#[derive(Clone, Debug)]
enum Place {
    Tcp(String, u16),
    Socket(std::path::PathBuf, u16),
}

impl Place {
    fn describe(&self) -> String {
        match self {
            Place::Tcp(host, port) => format!("{host}:{port}"),
            Place::Socket(dir, port) => format!("{}/.s.PGSQL.{port}", dir.display()),
        }
    }
}

#[derive(Clone, Debug)]
struct Target {
    place: Place,
    config: tokio_postgres::Config,
    /// Reached at a container's address (`container = "SERVICE"`): which one.
    container: Option<String>,
}

impl Target {
    /// Where the server is, in the words of the source's messages.
    fn describe(&self) -> String {
        match (&self.container, &self.place) {
            (Some(container), Place::Tcp(host, _)) if host.is_empty() => container.clone(),
            (Some(container), place) => format!("{container} ({})", place.describe()),
            (None, place) => place.describe(),
        }
    }
}

impl Target {
    fn from_source(source: &PostgresSource) -> Result<Target, String> {
        let mut config: tokio_postgres::Config = source
            .url
            .trim()
            .parse()
            .map_err(|e| format!("the url is not a PostgreSQL connection string: {e}"))?;
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let mut place = match config.get_hosts().first() {
            Some(Host::Tcp(host)) => Place::Tcp(host.clone(), port),
            Some(Host::Unix(dir)) => Place::Socket(dir.clone(), port),
            None => Place::Tcp("localhost".into(), port),
        };
        if let Some(address) = source.address.as_deref().map(str::trim)
            && !address.is_empty()
        {
            let (host, port) = super::redis::split_address(address)?;
            place = Place::Tcp(host, port);
        }
        // With `container`, the host given decides: the container's own name (or none) is
        // its address, from the engine; any other host is reached as written.
        let given = crate::config::given_host(Some(&source.url), source.address.as_deref(), true);
        let container =
            crate::config::container_in_use(source.container.as_deref(), &given).map(|c| {
                match source.project.as_deref() {
                    Some(p) if !p.trim().is_empty() => {
                        format!("container {c} of compose project {p}")
                    }
                    _ => format!("container {c}"),
                }
            });
        if container.is_some() {
            // The container's address, found when connecting; the port given.
            let port = match &place {
                Place::Tcp(_, port) | Place::Socket(_, port) => *port,
            };
            place = Place::Tcp(String::new(), port);
        }
        if let Some(password) = source.password.as_deref().filter(|p| !p.is_empty()) {
            config.password(password);
        }
        // Read-only by construction: every transaction of the session starts read-only, and
        // nothing of ours runs longer than the timeout or sits idle in a transaction.
        let ms = source.timeout.as_millis().max(1);
        let ours = format!(
            "-c default_transaction_read_only=on -c statement_timeout={ms} -c idle_in_transaction_session_timeout={ms}"
        );
        let options = match config.get_options() {
            Some(theirs) if !theirs.trim().is_empty() => format!("{theirs} {ours}"),
            _ => ours,
        };
        config.options(options);
        if config.get_application_name().is_none() {
            config.application_name("watchpost");
        }
        config.connect_timeout(source.timeout);
        Ok(Target {
            place,
            config,
            container,
        })
    }
}

/// `pg_stat_database`'s counters whose change over an interval makes a figure.
#[derive(Clone, Copy, Debug)]
struct Counters {
    at: Instant,
    deadlocks: i64,
    rollbacks: i64,
    blks_hit: i64,
    blks_read: i64,
}

pub struct PostgresCollector {
    name: String,
    interval: Duration,
    timeout: Duration,
    reach: Reach,
    target: Result<Target, String>,
    metrics: Vec<SqlMetric>,
    client: Option<Client>,
    last: Option<Counters>,
    one_shot: bool,
    /// `container = "SERVICE"`: its address, looked up for every new connection.
    container: Option<crate::collect::docker::address::ContainerAddress>,
}

/// The built-in figures in one statement (our own backend left out of the longest query and
/// transaction). Counted over client backends: background workers are not connections.
const STATS: &str = "WITH a AS (
  SELECT pid, state, query_start, xact_start FROM pg_stat_activity
  WHERE backend_type = 'client backend'
)
SELECT
  (SELECT count(*) FROM a)::int8,
  (SELECT count(*) FROM a WHERE state = 'active')::int8,
  (SELECT count(*) FROM a WHERE state = 'idle')::int8,
  (SELECT count(*) FROM a WHERE state = 'idle in transaction')::int8,
  current_setting('max_connections')::int8,
  (SELECT EXTRACT(EPOCH FROM max(now() - query_start))::float8 FROM a
     WHERE state = 'active' AND pid <> pg_backend_pid()),
  (SELECT EXTRACT(EPOCH FROM max(now() - xact_start))::float8 FROM a
     WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid()),
  pg_database_size(current_database())::int8,
  d.deadlocks::int8, d.xact_rollback::int8, d.blks_hit::int8, d.blks_read::int8,
  EXTRACT(EPOCH FROM now() - COALESCE(d.stats_reset, pg_postmaster_start_time()))::float8,
  pg_is_in_recovery(),
  EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8,
  (SELECT count(*) FROM pg_stat_replication)::int8,
  (SELECT EXTRACT(EPOCH FROM max(replay_lag))::float8 FROM pg_stat_replication),
  current_database()::text,
  current_setting('server_version')::text
FROM pg_stat_database d WHERE d.datname = current_database()";

impl PostgresCollector {
    /// A server reached from the host behind `reach` (from the pool: [`crate::collect::reach`]).
    pub fn on(name: &str, source: &PostgresSource, reach: Reach) -> Self {
        let target = Target::from_source(source);
        // Only when the container is the one reached (the url's host is its name).
        let in_use = target.as_ref().is_ok_and(|t| t.container.is_some());
        let container = super::redis::container_address(
            source.container.as_deref().filter(|_| in_use),
            &source.project,
            &reach,
        );
        PostgresCollector {
            container,
            name: name.to_string(),
            interval: source.interval,
            timeout: source.timeout,
            reach,
            target,
            metrics: source.metrics.clone(),
            client: None,
            last: None,
            one_shot: false,
        }
    }

    /// A server reached from this machine.
    pub fn new(name: &str, source: &PostgresSource) -> Self {
        Self::on(
            name,
            source,
            crate::collect::reach_without_pool(&source.host),
        )
    }

    async fn connect(&self, transport: &Transport, target: &Target) -> Result<Client, String> {
        let handshake = async {
            match (&target.place, transport) {
                (Place::Tcp(host, port), _) => {
                    let stream = transport
                        .connect_tcp(host, *port, self.timeout)
                        .await
                        .map_err(|e| e.to_string())?;
                    let (client, connection) = target
                        .config
                        .connect_raw(stream, NoTls)
                        .await
                        .map_err(|e| describe(&e))?;
                    tokio::spawn(connection);
                    Ok(client)
                }
                (Place::Socket(dir, port), Transport::Local) => {
                    let path = dir.join(format!(".s.PGSQL.{port}"));
                    let stream = tokio::net::UnixStream::connect(&path)
                        .await
                        .map_err(|e| format!("cannot connect to {}: {e}", path.display()))?;
                    let (client, connection) = target
                        .config
                        .connect_raw(stream, NoTls)
                        .await
                        .map_err(|e| describe(&e))?;
                    tokio::spawn(connection);
                    Ok(client)
                }
                (Place::Socket(..), Transport::Ssh(_)) => Err(
                    "a unix socket is read on this machine only; give address = \"host:port\" as seen from the host".to_string(),
                ),
            }
        };
        tokio::time::timeout(self.timeout, handshake)
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "no answer within {}s",
                    self.timeout.as_secs_f64().ceil()
                ))
            })
    }

    async fn round(&mut self) -> Vec<Update> {
        let target = match &self.target {
            Ok(target) => target.clone(),
            Err(e) => {
                let e = format!("postgres {}: {e}", self.name);
                return self.down(&e.to_string());
            }
        };
        let transport = match &self.reach {
            Ok(transport) => transport.clone(),
            Err(e) => {
                let e = e.to_string();
                return self.down(&e);
            }
        };
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
        }
        let mut target = target;
        if self.client.is_none()
            && let Some(container) = &mut self.container
        {
            // Looked up again for every connection: a recreated container has a new address.
            let found = container.resolve().await;
            let port = match &target.place {
                Place::Tcp(_, port) | Place::Socket(_, port) => *port,
            };
            let host = found.as_ref().cloned().unwrap_or_default();
            target.place = Place::Tcp(host, port);
            if let Ok(t) = &mut self.target {
                t.place = target.place.clone();
            }
            if let Err(e) = found {
                return self.down(&format!("postgres {}: {e}", self.name));
            }
        }
        let place = target.describe();
        if self.client.is_none() {
            match self.connect(&transport, &target).await {
                Ok(client) => self.client = Some(client),
                Err(e) => return self.down(&format!("postgres at {place}: {e}")),
            }
        }
        // Held apart while in use; put back after a good round, made again after a bad one.
        let Some(client) = self.client.take() else {
            return Vec::new();
        };
        let started = Instant::now();
        let stats = read_only(&client, async {
            let ping = client.simple_query("SELECT 1").await;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            ping?;
            client.query_one(STATS, &[]).await.map(|row| (ms, row))
        })
        .await;
        let (latency_ms, row) = match stats {
            Ok(stats) => stats,
            Err(e) => return self.down(&format!("postgres at {place}: {}", describe(&e))),
        };
        let mut readings = match self.figures(&row, &place) {
            Ok(readings) => readings,
            Err(e) => return self.down(&format!("postgres at {place}: {}", describe(&e))),
        };
        let mut updates = Vec::new();
        for m in &self.metrics {
            let outcome = run_metric(&client, &self.name, m).await;
            readings.push(outcome.reading);
            if let Some((id, table)) = outcome.table {
                updates.push(Update::Table { id, table });
            }
        }
        let role = if row.get::<_, bool>(13) {
            "replica"
        } else {
            "primary"
        };
        let version: String = row.get(18);
        let database: String = row.get(17);
        updates.insert(
            0,
            Update::Service(ServiceStatus {
                name: self.name.clone(),
                kind: "postgres".into(),
                up: true,
                status: role.into(),
                latency_ms: Some(latency_ms),
                restarts: None,
                detail: format!("PostgreSQL {version} at {place}, database {database}"),
            }),
        );
        updates.insert(
            1,
            Update::Readings {
                source: self.name.clone(),
                readings,
            },
        );
        updates.push(health(&self.name, SourceHealth::Ok));
        self.client = Some(client);
        updates
    }

    /// The built-in figures from the row of [`STATS`].
    fn figures(
        &mut self,
        row: &tokio_postgres::Row,
        place: &str,
    ) -> Result<Vec<Reading>, tokio_postgres::Error> {
        let source = self.name.as_str();
        let total: i64 = row.try_get(0)?;
        let active: i64 = row.try_get(1)?;
        let idle: i64 = row.try_get(2)?;
        let idle_tx: i64 = row.try_get(3)?;
        let max: i64 = row.try_get(4)?;
        let longest_query: Option<f64> = row.try_get(5)?;
        let longest_tx: Option<f64> = row.try_get(6)?;
        let size: i64 = row.try_get(7)?;
        let now = Counters {
            at: Instant::now(),
            deadlocks: row.try_get(8)?,
            rollbacks: row.try_get(9)?,
            blks_hit: row.try_get(10)?,
            blks_read: row.try_get(11)?,
        };
        let since_reset: f64 = row.try_get(12)?;
        let in_recovery: bool = row.try_get(13)?;
        let replay_age: Option<f64> = row.try_get(14)?;
        let replicas: i64 = row.try_get(15)?;
        let replica_lag: Option<f64> = row.try_get(16)?;
        let database: String = row.try_get(17)?;
        let version: String = row.try_get(18)?;

        let mut out = vec![
            fig::UP
                .number(source, 1.0, "")
                .with_detail(format!(
                    "PostgreSQL {version} at {place}, database {database}"
                ))
                .with_rule(up_rule()),
            fig::CONNECTIONS
                .count(source, total)
                .with_detail(format!("of max_connections {max}")),
            fig::CONNECTIONS_PCT
                .number(source, 100.0 * total as f64 / max.max(1) as f64, "%")
                .with_detail(format!("{total} of max_connections {max}"))
                .with_rule(Rule::warn_crit(
                    Threshold::above(80.0),
                    Threshold::above(90.0),
                )),
            fig::ACTIVE.count(source, active),
            fig::IDLE.count(source, idle),
            fig::IDLE_IN_TX.count(source, idle_tx),
            fig::OTHER.count(source, total - active - idle - idle_tx),
            fig::LONGEST_QUERY_S
                .number(source, longest_query.unwrap_or(0.0).max(0.0), "s")
                .with_detail(if longest_query.is_some() {
                    "the longest of the queries running now"
                } else {
                    "no query running (but ours)"
                }),
            fig::LONGEST_TX_S
                .number(source, longest_tx.unwrap_or(0.0).max(0.0), "s")
                .with_detail(if longest_tx.is_some() {
                    "the oldest transaction open now"
                } else {
                    "no transaction open (but ours)"
                }),
            fig::DB_SIZE_BYTES
                .number(source, size as f64, "bytes")
                .with_detail(format!("pg_database_size({database})")),
        ];
        if in_recovery {
            out.push(match replay_age {
                Some(lag) => fig::REPLICATION_LAG_S
                    .number(source, lag.max(0.0), "s")
                    .with_detail("a replica: since the last transaction it replayed"),
                None => no_samples(
                    fig::REPLICATION_LAG_S,
                    source,
                    "a replica that has replayed no transaction yet",
                ),
            });
        } else if replicas > 0 {
            out.push(
                fig::REPLICATION_LAG_S
                    .number(source, replica_lag.unwrap_or(0.0).max(0.0), "s")
                    .with_detail(format!(
                        "the most behind of {replicas} replica{} (replay_lag)",
                        if replicas == 1 { "" } else { "s" }
                    )),
            );
        }
        let since = if self.one_shot {
            Since::Start(since_reset)
        } else {
            match self.last {
                None => Since::Nothing,
                Some(last) => Since::Last(last),
            }
        };
        out.push(per_minute(
            fig::DEADLOCKS_PER_MIN,
            source,
            since,
            now.deadlocks,
            |c| c.deadlocks,
            "deadlocks",
        ));
        out.push(per_minute(
            fig::ROLLBACKS_PER_MIN,
            source,
            since,
            now.rollbacks,
            |c| c.rollbacks,
            "transactions rolled back",
        ));
        out.push(blks_hit_pct(source, since, &now));
        self.last = Some(now);
        super::redis::name_by_source(source, &mut out);
        Ok(out)
    }

    /// The server cannot be reached: `up` 0, every other figure with the error, the
    /// Services row down, the source's health saying why.
    fn down(&mut self, message: &str) -> Vec<Update> {
        self.client = None;
        let source = self.name.as_str();
        let mut readings = vec![
            fig::UP
                .number(source, 0.0, "")
                .with_detail(message)
                .with_rule(up_rule()),
        ];
        readings.extend(
            fig::ALL
                .iter()
                .filter(|f| **f != fig::UP && **f != fig::REPLICATION_LAG_S)
                .map(|f| f.failed(source, message)),
        );
        super::redis::name_by_source(source, &mut readings);
        readings.extend(
            self.metrics
                .iter()
                .map(|m| sql_metrics::failed(source, m, message)),
        );
        vec![
            Update::Service(ServiceStatus {
                name: self.name.clone(),
                kind: "postgres".into(),
                up: false,
                status: "down".into(),
                latency_ms: None,
                restarts: None,
                detail: message.to_string(),
            }),
            Update::Readings {
                source: self.name.clone(),
                readings,
            },
            health(
                &self.name,
                SourceHealth::Error {
                    message: message.to_string(),
                    retry_in_secs: Some(self.interval.as_secs().max(1)),
                },
            ),
        ]
    }
}

/// A server that does not answer is critical, and pages as a database does (P0).
fn up_rule() -> Rule {
    Rule::crit_only(Threshold::below(1.0)).with_priority(Priority::P0)
}

/// Runs `work` inside `BEGIN READ ONLY` … `COMMIT`: a short transaction in which the server
/// refuses any write. It commits rather than rolls back so that watchpost's own reads do not
/// show in `xact_rollback` (a failed statement rolls it back all the same).
async fn read_only<T>(
    client: &Client,
    work: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, tokio_postgres::Error> {
    client.batch_execute("BEGIN READ ONLY").await?;
    let result = work.await;
    let end = client
        .batch_execute(if result.is_ok() { "COMMIT" } else { "ROLLBACK" })
        .await;
    let value = result?;
    end?;
    Ok(value)
}

/// What a figure over an interval is measured from.
#[derive(Clone, Copy, Debug)]
enum Since {
    Nothing,
    Last(Counters),
    /// `watchpost check` looks once: since the statistics were reset, this many seconds ago.
    Start(f64),
}

const WENT_BACK: &str =
    "the counters went back (a stats reset or a restart); again from the next poll";

fn per_minute(
    f: Fig,
    source: &str,
    since: Since,
    now: i64,
    counter: fn(&Counters) -> i64,
    what: &str,
) -> Reading {
    let change = match since {
        Since::Nothing => return no_samples(f, source, NEEDS_TWO),
        Since::Last(last) => {
            let Ok(count) = u64::try_from(now - counter(&last)) else {
                return no_samples(f, source, WENT_BACK);
            };
            let secs = last.at.elapsed().as_secs_f64();
            (count, secs, format!("in {secs:.1}s"))
        }
        Since::Start(secs) => (
            // The counters of a server's statistics are never negative.
            u64::try_from(now).unwrap_or(0),
            secs,
            format!("since the statistics were reset {secs:.0}s ago (one look)"),
        ),
    };
    counters::per_minute(f, source, change, what)
}

fn blks_hit_pct(source: &str, since: Since, now: &Counters) -> Reading {
    let f = fig::BLKS_HIT_PCT;
    let (hit, read, span) = match since {
        Since::Nothing => return no_samples(f, source, NEEDS_TWO),
        Since::Last(last) => {
            let (hit, read) = (now.blks_hit - last.blks_hit, now.blks_read - last.blks_read);
            if hit < 0 || read < 0 {
                return no_samples(f, source, WENT_BACK);
            }
            let secs = now.at.duration_since(last.at).as_secs_f64();
            (hit, read, format!("in {secs:.1}s"))
        }
        Since::Start(secs) => (
            now.blks_hit,
            now.blks_read,
            format!("since the statistics were reset {secs:.0}s ago (one look)"),
        ),
    };
    if hit + read == 0 {
        return no_samples(f, source, &format!("no block was read {span}"));
    }
    f.number(source, 100.0 * hit as f64 / (hit + read) as f64, "%")
        .with_detail(format!(
            "{hit} blocks from the buffer cache, {read} read {span}"
        ))
        .with_samples((hit + read) as u64)
}

/// One `[[postgres.NAME.metric]]` in its own read-only transaction, its cells judged as a
/// SQLite metric's.
async fn run_metric(client: &Client, source: &str, m: &SqlMetric) -> sql_metrics::Outcome {
    let id = format!("{source}.{}", m.id);
    let rows = read_only(client, async {
        let statement = client.prepare(&m.query).await?;
        let columns: Vec<String> = statement
            .columns()
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        let stream = client
            .query_raw(
                &statement,
                std::iter::empty::<&(dyn tokio_postgres::types::ToSql + Sync)>(),
            )
            .await?;
        pin_mut!(stream);
        let mut kept: Vec<Vec<Cell>> = Vec::new();
        let mut count = 0usize;
        while let Some(row) = stream.next().await {
            let row = row?;
            count += 1;
            if kept.len() < TABLE_ROWS {
                let mut cells = Vec::with_capacity(row.len());
                for i in 0..row.len() {
                    cells.push(row.try_get::<_, PgCell>(i)?.0);
                }
                kept.push(cells);
            }
        }
        Ok((columns, kept, count))
    })
    .await;
    // A metric's `SET` outlives its transaction: back to the session's settings (read-only
    // by default, the statement_timeout), which the connection's options made its defaults.
    let reset = client.batch_execute("RESET ALL").await;
    let rows = rows.and_then(|rows| reset.map(|()| rows));
    match rows {
        Ok((columns, kept, count)) => {
            sql_metrics::from_rows_counted(source, m, columns, &kept, count)
        }
        Err(e) => sql_metrics::Outcome {
            reading: sql_metrics::failed(source, m, &format!("metric {id}: {}", metric_error(&e))),
            table: None::<(String, Table)>,
        },
    }
}

/// Why a metric's statement failed, in the server's words, with what it means here.
fn metric_error(e: &tokio_postgres::Error) -> String {
    use tokio_postgres::error::SqlState;
    match e.code() {
        Some(code) if *code == SqlState::READ_ONLY_SQL_TRANSACTION => format!(
            "the query tries to write ({}); watchpost reads PostgreSQL in read-only transactions and metrics may only read",
            describe(e)
        ),
        Some(code) if *code == SqlState::QUERY_CANCELED => format!(
            "stopped by statement_timeout ({}); make the query cheaper or the source's timeout longer",
            describe(e)
        ),
        _ => describe(e),
    }
}

/// The server's own message (with its SQLSTATE), or what broke.
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {} ({})", db.severity(), db.message(), db.code().code());
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

/// Any PostgreSQL value as a SQLite one: integers, floats and numerics as numbers, text as
/// text; what has no such form (a timestamp, an array) says what it is, so a number metric
/// names it and a table shows it.
struct PgCell(Cell);

impl<'a> FromSql<'a> for PgCell {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let cell = match *ty {
            Type::BOOL => Cell::Integer(i64::from(bool::from_sql(ty, raw)?)),
            Type::INT2 => Cell::Integer(i64::from(i16::from_sql(ty, raw)?)),
            Type::INT4 => Cell::Integer(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT8 => Cell::Integer(i64::from_sql(ty, raw)?),
            Type::OID => Cell::Integer(i64::from(u32::from_sql(ty, raw)?)),
            Type::FLOAT4 => Cell::Real(f64::from(f32::from_sql(ty, raw)?)),
            Type::FLOAT8 => Cell::Real(f64::from_sql(ty, raw)?),
            Type::NUMERIC => match numeric_text(raw) {
                Some(text) => match text.parse::<f64>() {
                    Ok(n) if n.is_finite() => Cell::Real(n),
                    _ => Cell::Text(text),
                },
                None => Cell::Text("(a numeric that does not read)".into()),
            },
            Type::JSON => Cell::Text(String::from_utf8_lossy(raw).into_owned()),
            // jsonb's binary form is a version byte, then the text.
            Type::JSONB => {
                Cell::Text(String::from_utf8_lossy(raw.get(1..).unwrap_or(&[])).into_owned())
            }
            _ if <String as FromSql>::accepts(ty) => Cell::Text(String::from_sql(ty, raw)?),
            _ => Cell::Text(format!("(a {ty} value: cast it to text or a number)")),
        };
        Ok(PgCell(cell))
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(PgCell(Cell::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A numeric's binary form as decimal text: digit groups of base 10000 around a weight.
fn numeric_text(raw: &[u8]) -> Option<String> {
    let word =
        |i: usize| -> Option<u16> { Some(u16::from_be_bytes([*raw.get(i)?, *raw.get(i + 1)?])) };
    let groups = word(0)? as usize;
    let weight = word(2)? as i16 as i32;
    let sign = word(4)?;
    match sign {
        0xC000 => return Some("NaN".into()),
        0xD000 => return Some("Infinity".into()),
        0xF000 => return Some("-Infinity".into()),
        _ => {}
    }
    let digits: Vec<u16> = (0..groups)
        .map(|i| word(8 + 2 * i))
        .collect::<Option<_>>()?;
    let mut text = String::new();
    if sign == 0x4000 {
        text.push('-');
    }
    // Integer part: groups 0..=weight (missing ones are zero).
    if weight < 0 {
        text.push('0');
    } else {
        for g in 0..=weight {
            let d = digits.get(g as usize).copied().unwrap_or(0);
            if g == 0 {
                text.push_str(&d.to_string());
            } else {
                text.push_str(&format!("{d:04}"));
            }
        }
    }
    let first_fraction = (weight + 1).max(0);
    if (first_fraction as usize) < digits.len() || weight < -1 {
        text.push('.');
        for _ in 0..(-weight - 1).max(0) {
            text.push_str("0000");
        }
        for d in digits.iter().skip(first_fraction as usize) {
            text.push_str(&format!("{d:04}"));
        }
    }
    Some(text)
}

impl Collector for PostgresCollector {
    fn name(&self) -> &str {
        &self.name
    }
    fn panes(&self) -> &'static [PaneId] {
        &[PaneId::Services, PaneId::Figures]
    }
    fn interval(&self) -> Duration {
        self.interval
    }
    fn poll(&mut self) -> BoxFuture<'_, Vec<Update>> {
        Box::pin(async move {
            // Every statement has the server's statement_timeout; the round as a whole is
            // bounded too, for a server that accepts and never answers.
            let budget = self.timeout * (3 + self.metrics.len() as u32);
            match tokio::time::timeout(budget, self.round()).await {
                Ok(updates) => updates,
                Err(_) => {
                    let place = self
                        .target
                        .as_ref()
                        .map(Target::describe)
                        .unwrap_or_default();
                    self.down(&format!(
                        "postgres at {place}: no answer within {}s",
                        budget.as_secs()
                    ))
                }
            }
        })
    }
    fn one_shot(&mut self) {
        self.one_shot = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(groups: &[u16], weight: i16, sign: u16) -> Vec<u8> {
        let mut raw = Vec::new();
        raw.extend((groups.len() as u16).to_be_bytes());
        raw.extend(weight.to_be_bytes());
        raw.extend(sign.to_be_bytes());
        raw.extend(0u16.to_be_bytes());
        for g in groups {
            raw.extend(g.to_be_bytes());
        }
        raw
    }

    #[test]
    fn numerics_read_as_decimal_text() {
        assert_eq!(
            numeric_text(&numeric(&[75, 5000], 0, 0)).unwrap(),
            "75.5000"
        );
        assert_eq!(numeric_text(&numeric(&[1, 2345], 1, 0)).unwrap(), "12345");
        assert_eq!(numeric_text(&numeric(&[5], -1, 0x4000)).unwrap(), "-0.0005");
        assert_eq!(numeric_text(&numeric(&[12], -2, 0)).unwrap(), "0.00000012");
        assert_eq!(numeric_text(&numeric(&[], 0, 0)).unwrap(), "0");
        assert_eq!(numeric_text(&numeric(&[], 0, 0xC000)).unwrap(), "NaN");
        assert_eq!(numeric_text(&numeric(&[1], 2, 0)).unwrap(), "100000000");
    }
}
