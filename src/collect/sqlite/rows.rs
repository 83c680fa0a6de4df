//! Rows of a query as owned values, and the helpers that read their cells as strictly as
//! rusqlite's typed getters do: the same code reads a local connection and a remote batch.

use super::tail::LocalReader;
use rusqlite::types::{Value, ValueRef};

/// Rows of one query as owned values: how a pack reads its small tables, locally or
/// from a remote batch.
pub type Rows = Vec<Vec<Value>>;

/// Something that answers a query with its rows.
pub(crate) trait SqlRows {
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

/// The value at `i` of a row, or the error rusqlite gives for a missing column.
pub fn col(row: &[Value], i: usize) -> rusqlite::Result<&Value> {
    row.get(i).ok_or(rusqlite::Error::InvalidColumnIndex(i))
}

/// An integer cell (a `COUNT`), typed as strictly as rusqlite's `get::<i64>`.
pub(crate) fn int(value: &Value) -> rusqlite::Result<i64> {
    match value {
        Value::Integer(n) => Ok(*n),
        other => Err(rusqlite::Error::InvalidColumnType(
            0,
            "count".into(),
            other.data_type(),
        )),
    }
}

/// The first column of the first row as an integer.
pub(crate) fn first_int(rows: &[Vec<Value>]) -> rusqlite::Result<i64> {
    let row = rows.first().ok_or(rusqlite::Error::QueryReturnedNoRows)?;
    int(col(row, 0)?)
}

/// A query cell as text, whatever its SQLite type.
pub fn cell(value: ValueRef<'_>) -> String {
    match value {
        ValueRef::Null => "(none)".into(),
        ValueRef::Integer(n) => n.to_string(),
        ValueRef::Real(x) => x.to_string(),
        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
        ValueRef::Blob(b) => format!("({} byte blob)", b.len()),
    }
}

/// A column that holds a comparison (`valid = 1`): true, false or NULL.
pub fn flag(value: ValueRef<'_>) -> rusqlite::Result<Option<bool>> {
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
