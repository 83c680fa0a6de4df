//! What the Containers pane remembers beyond the latest rows: a bounded CPU and memory
//! history per container, for the zoomed chart. It is fed by the rows the Docker
//! collector already sends (one sample per poll of a running container), so it costs no
//! request of its own.

use crate::model::update::ContainerRow;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, VecDeque};

/// Samples kept per container: ten minutes at the default two-second interval.
pub(crate) const CONTAINER_HISTORY_POINTS: usize = 300;

/// One poll's figures of one container.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ContainerSample {
    pub at: DateTime<Utc>,
    /// 100% = one core.
    pub cpu_pct: Option<f64>,
    pub mem_bytes: Option<f64>,
}

/// The recent figures of every container, by (source, container id).
#[derive(Clone, Debug, Default)]
pub struct ContainerHistory {
    by_container: HashMap<(String, String), VecDeque<ContainerSample>>,
}

impl ContainerHistory {
    /// Takes one sample of each running container of `source` that has figures, and
    /// forgets the containers `source` no longer lists (removed ones).
    pub fn record(&mut self, source: &str, rows: &[ContainerRow], now: DateTime<Utc>) {
        self.by_container
            .retain(|(s, id), _| s != source || rows.iter().any(|r| &r.id == id));
        for row in rows {
            if row.state != "running" || (row.cpu_pct.is_none() && row.mem_bytes.is_none()) {
                continue;
            }
            let samples = self
                .by_container
                .entry((source.to_string(), row.id.clone()))
                .or_default();
            if samples.len() == CONTAINER_HISTORY_POINTS {
                samples.pop_front();
            }
            samples.push_back(ContainerSample {
                at: now,
                cpu_pct: row.cpu_pct,
                mem_bytes: row.mem_bytes,
            });
        }
    }

    /// Oldest first.
    pub fn of(&self, source: &str, id: &str) -> Option<&VecDeque<ContainerSample>> {
        self.by_container.get(&(source.to_string(), id.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, state: &str, cpu: Option<f64>) -> ContainerRow {
        ContainerRow {
            id: id.into(),
            state: state.into(),
            cpu_pct: cpu,
            mem_bytes: cpu.map(|c| c * 1e6),
            ..ContainerRow::default()
        }
    }

    #[test]
    fn history_is_bounded_and_forgets_removed_containers() {
        let mut history = ContainerHistory::default();
        let t0 = Utc::now();
        for i in 0..CONTAINER_HISTORY_POINTS + 5 {
            let rows = [
                row("a", "running", Some(i as f64)),
                row("b", "exited", None),
            ];
            history.record("d", &rows, t0 + chrono::Duration::seconds(i as i64));
        }
        let a = history.of("d", "a").unwrap();
        assert_eq!(a.len(), CONTAINER_HISTORY_POINTS);
        assert_eq!(
            a.front().unwrap().cpu_pct,
            Some(5.0),
            "the oldest went first"
        );
        assert!(
            history.of("d", "b").is_none(),
            "a stopped container has no samples"
        );
        // Another source's rows leave this one's alone; a vanished container is forgotten.
        history.record("other", &[row("x", "running", Some(1.0))], t0);
        assert!(history.of("d", "a").is_some());
        history.record("d", &[], t0);
        assert!(history.of("d", "a").is_none());
        assert!(history.of("other", "x").is_some());
    }
}
