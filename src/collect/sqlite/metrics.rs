//! Custom SQL metrics on a SQLite source (`[[sqlite.NAME.metric]]`): a query that returns one
//! number, or (`kind = "table"`) rows shown as a drill-down table whose figure is the row count.
//!
//! Each metric runs as one statement in autocommit mode (its own short read transaction) on
//! the source's read-only, `query_only` connection, with a time budget: in rollback-journal
//! mode a long read keeps the application from committing, so it is interrupted as soon as
//! it could hurt. A statement that would write is refused before it runs.

use super::{BUSY_TIMEOUT, is_busy, with_deadline};
use crate::config::{MetricKind, SqlMetric};
use crate::model::figure::Reading;
use crate::model::update::Table;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode};
use std::time::Duration;

/// Longest a metric may run in WAL mode (readers do not block writers there).
const BUDGET_WAL: Duration = Duration::from_secs(5);
/// Rows a table metric keeps for the drill-down.
pub(crate) const TABLE_ROWS: usize = 500;

/// What one metric produced.
pub struct Outcome {
    pub reading: Reading,
    pub table: Option<(String, Table)>,
}

pub(crate) fn figure_id(source: &str, metric: &SqlMetric) -> String {
    format!("{source}.{}", metric.id)
}

pub(crate) fn figure_name(metric: &SqlMetric) -> String {
    metric.name.clone().unwrap_or_else(|| metric.id.clone())
}

/// The metric's reading marked as failed with `error`.
pub(crate) fn failed(source: &str, metric: &SqlMetric, error: &str) -> Reading {
    Reading::failed(figure_id(source, metric), figure_name(metric), error)
}

/// Runs one metric. Errors (SQL, a write, text where a number is expected, busy) come back
/// as a failed reading naming the metric, never as a zero.
pub(crate) fn run(conn: &Connection, source: &str, metric: &SqlMetric, wal: bool) -> Outcome {
    let budget = if wal { BUDGET_WAL } else { BUSY_TIMEOUT };
    let id = figure_id(source, metric);
    let result = with_deadline(conn, budget, || evaluate(conn, source, metric, budget));
    match result {
        Ok(outcome) => outcome,
        Err(text) => Outcome {
            reading: failed(source, metric, &format!("metric {id}: {text}")),
            table: None,
        },
    }
}

/// Why a metric has no value. `Display` is the text of its failed reading (after
/// "metric ID: ").
#[derive(Debug, thiserror::Error)]
pub(crate) enum MetricError {
    #[error("the database is busy ({0}); tried for {ms} ms", ms = BUSY_TIMEOUT.as_millis())]
    Busy(rusqlite::Error),
    #[error(
        "stopped after {budget_ms} ms so as not to hold up the application's writes; make the query cheaper (an index, a LIMIT)"
    )]
    Interrupted { budget_ms: u128 },
    #[error(
        "the query tries to write ({0}); watchpost opens databases read-only and metrics may only read"
    )]
    Writes(rusqlite::Error),
    #[error("give one statement per metric (the query holds several)")]
    SeveralStatements,
    #[error(transparent)]
    Sql(rusqlite::Error),
    #[error(
        "the query would write to the database; watchpost opens databases read-only and metrics may only read (SELECT, WITH, read-only PRAGMA)"
    )]
    WouldWrite,
    #[error("the query returned no rows; a number metric needs one row holding one number")]
    NoRows,
    #[error("the query returned no columns")]
    NoColumns,
    #[error(
        "the query returned NULL where a number is expected (COALESCE(…, 0) if none means zero)"
    )]
    Null,
    #[error("the query returned text {0:?} where a number is expected")]
    Text(String),
    #[error("the query returned a {0} byte blob where a number is expected")]
    Blob(usize),
    #[error(
        "min_samples needs the query to return how many samples the value is from, in a column named {:?}",
        SqlMetric::SAMPLES_COLUMN
    )]
    NoSamplesColumn,
}

impl MetricError {
    /// What SQLite's error `e` means for a metric run with a time budget of `budget`.
    pub(super) fn of(e: rusqlite::Error, budget: Duration) -> Self {
        if is_busy(&e) {
            return MetricError::Busy(e);
        }
        match e.sqlite_error_code() {
            Some(ErrorCode::OperationInterrupted) => MetricError::Interrupted {
                budget_ms: budget.as_millis(),
            },
            Some(ErrorCode::ReadOnly) => MetricError::Writes(e),
            _ => match e {
                rusqlite::Error::MultipleStatement => MetricError::SeveralStatements,
                other => MetricError::Sql(other),
            },
        }
    }
}

fn evaluate(
    conn: &Connection,
    source: &str,
    metric: &SqlMetric,
    budget: Duration,
) -> Result<Outcome, MetricError> {
    let err = |e: rusqlite::Error| MetricError::of(e, budget);
    let mut stmt = conn.prepare(&metric.query).map_err(err)?;
    if !stmt.readonly() {
        return Err(MetricError::WouldWrite);
    }
    match metric.kind {
        MetricKind::Number => {
            let columns = stmt.column_count();
            let samples_at = samples_column(stmt.column_names());
            let mut rows = stmt.query([]).map_err(err)?;
            let Some(row) = rows.next().map_err(err)? else {
                return Err(MetricError::NoRows);
            };
            let value = number(row.get_ref(0).map_err(err)?)?;
            let samples = match samples_at {
                Some(i) => Some(number(row.get_ref(i).map_err(err)?)?),
                None => None,
            };
            number_outcome(source, metric, value, columns, samples)
        }
        MetricKind::Table => {
            let columns: Vec<String> = stmt.column_names().map(String::from).collect();
            let mut rows = stmt.query([]).map_err(err)?;
            let mut kept = Vec::new();
            let mut count: i64 = 0;
            while let Some(row) = rows.next().map_err(err)? {
                count += 1;
                if kept.len() < TABLE_ROWS {
                    let mut cells = Vec::with_capacity(columns.len());
                    for i in 0..columns.len() {
                        cells.push(super::rows::cell(row.get_ref(i).map_err(err)?));
                    }
                    kept.push(cells);
                }
            }
            Ok(table_outcome(source, metric, columns, kept, count))
        }
    }
}

/// The number a metric's first cell holds, or why it is not one.
pub(super) fn number(value: ValueRef<'_>) -> Result<f64, MetricError> {
    match value {
        ValueRef::Integer(n) => Ok(n as f64),
        ValueRef::Real(x) => Ok(x),
        ValueRef::Null => Err(MetricError::Null),
        ValueRef::Text(t) => {
            let text = String::from_utf8_lossy(t);
            match text.trim().parse::<f64>() {
                Ok(x) if x.is_finite() => Ok(x),
                _ => Err(MetricError::Text(truncate(&text, 60))),
            }
        }
        ValueRef::Blob(b) => Err(MetricError::Blob(b.len())),
    }
}

/// Where the `samples` column is among a query's columns.
fn samples_column<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<usize> {
    names
        .into_iter()
        .position(|n| n.eq_ignore_ascii_case(SqlMetric::SAMPLES_COLUMN))
        .filter(|&i| i > 0)
}

/// A number metric's outcome (`columns`: how many the query returned; `samples`: its
/// `samples` column, if it has one).
pub(super) fn number_outcome(
    source: &str,
    metric: &SqlMetric,
    value: f64,
    columns: usize,
    samples: Option<f64>,
) -> Result<Outcome, MetricError> {
    let mut reading = Reading::number(
        figure_id(source, metric),
        figure_name(metric),
        value,
        &metric.unit,
    );
    let mut rule = metric.rule();
    match samples {
        Some(n) => {
            reading = reading.with_samples(n.max(0.0) as u64);
            if let Some(rule) = &mut rule {
                rule.min_samples = rule.min_samples.or(Some(SqlMetric::DEFAULT_MIN_SAMPLES));
            }
        }
        None if metric.min_samples.is_some() => {
            return Err(MetricError::NoSamplesColumn);
        }
        None => {}
    }
    let ignored = columns - 1 - usize::from(samples.is_some());
    if ignored > 0 {
        reading = reading.with_detail(format!("first column of {columns}; the others are ignored"));
    }
    if let Some(rule) = rule {
        reading = reading.with_rule(rule);
    }
    Ok(Outcome {
        reading,
        table: None,
    })
}

/// A table metric's outcome: the first [`TABLE_ROWS`] rows kept, `count` in all.
pub(super) fn table_outcome(
    source: &str,
    metric: &SqlMetric,
    columns: Vec<String>,
    kept: Vec<Vec<String>>,
    count: i64,
) -> Outcome {
    let id = figure_id(source, metric);
    let name = figure_name(metric);
    let unit = if metric.unit.is_empty() {
        "rows"
    } else {
        metric.unit.as_str()
    };
    let mut reading = Reading::number(id.clone(), name.clone(), count as f64, unit);
    if count as usize > TABLE_ROWS {
        reading = reading.with_detail(format!("first {TABLE_ROWS} of {count} rows shown"));
    }
    if let Some(rule) = metric.rule() {
        reading = reading.with_rule(rule);
    }
    Outcome {
        reading,
        table: Some((
            id,
            Table {
                title: name,
                columns,
                rows: kept,
            },
        )),
    }
}

/// A metric's outcome from rows read elsewhere (a remote `sqlite3`): the same figure and
/// table, the same words for what is wrong.
pub(super) fn from_rows(
    source: &str,
    metric: &SqlMetric,
    columns: Vec<String>,
    rows: &[Vec<rusqlite::types::Value>],
) -> Outcome {
    from_rows_counted(source, metric, columns, rows, rows.len())
}

/// [`from_rows`] for a reader that kept only the first rows (at most [`TABLE_ROWS`] of a
/// table) of the `count` the query returned: PostgreSQL's metrics, whose cells are turned
/// into SQLite's values so that they are judged and worded as a SQLite metric's.
pub(crate) fn from_rows_counted(
    source: &str,
    metric: &SqlMetric,
    columns: Vec<String>,
    rows: &[Vec<rusqlite::types::Value>],
    count: usize,
) -> Outcome {
    let id = figure_id(source, metric);
    let result = match metric.kind {
        MetricKind::Number => match rows.first() {
            None => Err(MetricError::NoRows),
            Some(row) => match row.first() {
                None => Err(MetricError::NoColumns),
                Some(value) => number(ValueRef::from(value)).and_then(|n| {
                    let samples = samples_column(columns.iter().map(String::as_str))
                        .and_then(|i| row.get(i))
                        .map(|v| number(ValueRef::from(v)))
                        .transpose()?;
                    number_outcome(source, metric, n, columns.len().max(row.len()), samples)
                }),
            },
        },
        MetricKind::Table => {
            let kept = rows
                .iter()
                .take(TABLE_ROWS)
                .map(|row| {
                    row.iter()
                        .map(|v| super::rows::cell(ValueRef::from(v)))
                        .collect()
                })
                .collect();
            Ok(table_outcome(source, metric, columns, kept, count as i64))
        }
    };
    match result {
        Ok(outcome) => outcome,
        Err(text) => Outcome {
            reading: failed(source, metric, &format!("metric {id}: {text}")),
            table: None,
        },
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(max).collect::<String>())
    }
}
