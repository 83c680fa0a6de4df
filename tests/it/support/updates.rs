//! What a collector's poll said: its readings by id, a number, its last health.

use watchpost::model::figure::{Reading, Value};
use watchpost::model::update::{SourceHealth, Update};

/// Every reading of the updates, in order.
pub fn readings(updates: &[Update]) -> Vec<Reading> {
    updates
        .iter()
        .filter_map(|u| match u {
            Update::Readings { readings, .. } => Some(readings.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// The reading `id`, which must be there.
pub fn reading(updates: &[Update], id: &str) -> Reading {
    readings(updates)
        .into_iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no {id} in {:#?}", readings(updates)))
}

/// The value of reading `id`.
pub fn value(updates: &[Update], id: &str) -> Value {
    reading(updates, id).value
}

/// The number of reading `id`, which must be one.
pub fn number(updates: &[Update], id: &str) -> f64 {
    let r = reading(updates, id);
    match &r.value {
        Value::Number(n) => *n,
        other => panic!("{id} is {other:?}, not a number ({r:?})"),
    }
}

/// The last health the updates say.
pub fn health(updates: &[Update]) -> SourceHealth {
    updates
        .iter()
        .rev()
        .find_map(|u| match u {
            Update::Health { health, .. } => Some(health.clone()),
            _ => None,
        })
        .expect("a health update")
}
