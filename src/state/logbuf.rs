//! The bounded log buffer behind the Errors pane, with per-minute error counts per source
//! and the top error patterns (see `patterns`).
//!
//! Lines are kept in time order across sources (a merged tail): a line older than the
//! newest one kept is inserted where it belongs. Every line gets an arrival number
//! (`seq`), so a view scrolled back can hold still while new lines arrive.

use super::patterns::{Pattern, Patterns};
use crate::model::update::LogLine;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, VecDeque};

pub const DEFAULT_CAPACITY: usize = 50_000;
/// Minutes of per-minute error counts kept per source (the sparkline's width).
const MINUTES_KEPT: usize = 60;

#[derive(Clone, Debug)]
pub struct LogBuffer {
    /// (arrival number, line), oldest first by the lines' own time.
    lines: VecDeque<(u64, LogLine)>,
    /// Lines pushed since start; the next line's arrival number.
    pushed: u64,
    capacity: usize,
    /// Lines pushed out of the buffer since start, said on screen.
    pub dropped: u64,
    /// Per source: (minute since epoch, error count), oldest first.
    per_minute: BTreeMap<String, VecDeque<(i64, u64)>>,
    /// Error lines grouped by message; kept for every error line pushed, including lines
    /// the ring has since dropped.
    patterns: Patterns,
}

impl LogBuffer {
    pub fn new(capacity: usize) -> Self {
        LogBuffer {
            lines: VecDeque::with_capacity(capacity.min(4096)),
            capacity: capacity.max(1),
            pushed: 0,
            dropped: 0,
            per_minute: BTreeMap::new(),
            patterns: Patterns::default(),
        }
    }

    pub fn push(&mut self, line: LogLine) {
        if line.is_error {
            self.patterns.observe(&line);
            self.count_error(&line);
        }
        if self.lines.len() == self.capacity {
            self.lines.pop_front();
            self.dropped += 1;
        }
        let seq = self.pushed;
        self.pushed += 1;
        // Almost every line is the newest; a late one goes after the last line not newer.
        // Late lines are usually late by little (a source that writes whole seconds among
        // one that writes milliseconds): look back a few lines before searching the ring.
        const NEAR: usize = 16;
        let len = self.lines.len();
        let not_newer = |(_, l): &(u64, LogLine)| l.at <= line.at;
        let at = match (0..len.min(NEAR)).find(|&back| not_newer(&self.lines[len - 1 - back])) {
            Some(back) => len - back,
            None if len <= NEAR => 0,
            None => self.lines.partition_point(not_newer),
        };
        if at == len {
            self.lines.push_back((seq, line));
        } else {
            self.lines.insert(at, (seq, line));
        }
    }

    /// Lines pushed since start (the arrival number the next line gets).
    pub fn pushed(&self) -> u64 {
        self.pushed
    }

    fn count_error(&mut self, line: &LogLine) {
        let minute = line.at.timestamp().div_euclid(60);
        // Looked up by reference first: the source's name is cloned once, not per line.
        let counts = match self.per_minute.get_mut(&*line.source) {
            Some(counts) => counts,
            None => self.per_minute.entry(line.source.to_string()).or_default(),
        };
        match counts.iter_mut().rev().find(|(m, _)| *m == minute) {
            Some((_, n)) => *n += 1,
            None => {
                counts.push_back((minute, 1));
                counts.make_contiguous().sort_by_key(|(m, _)| *m);
                while counts.len() > MINUTES_KEPT {
                    counts.pop_front();
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The lines, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &LogLine> + ExactSizeIterator {
        self.lines.iter().map(|(_, line)| line)
    }

    /// The lines with their arrival numbers, oldest first.
    pub(crate) fn iter_seq(
        &self,
    ) -> impl DoubleEndedIterator<Item = (u64, &LogLine)> + ExactSizeIterator {
        self.lines.iter().map(|(seq, line)| (*seq, line))
    }

    /// Error counts per minute for the last `minutes` minutes up to `now`, oldest first.
    pub(crate) fn errors_per_minute(
        &self,
        source: Option<&str>,
        now: DateTime<Utc>,
        minutes: usize,
    ) -> Vec<u64> {
        let current = now.timestamp().div_euclid(60);
        let mut out = vec![0u64; minutes];
        for (name, counts) in &self.per_minute {
            if source.is_some_and(|s| s != name) {
                continue;
            }
            for (minute, n) in counts {
                let back = current - minute;
                if back >= 0 && (back as usize) < minutes {
                    out[minutes - 1 - back as usize] += n;
                }
            }
        }
        out
    }

    /// Error lines in the last `minutes` minutes (all sources or one).
    #[cfg(test)]
    pub(crate) fn errors_in_last(
        &self,
        source: Option<&str>,
        now: DateTime<Utc>,
        minutes: usize,
    ) -> u64 {
        self.errors_per_minute(source, now, minutes).iter().sum()
    }

    /// The error patterns, the most frequent first (ties: the most recent first).
    pub fn patterns(&self) -> Vec<&Pattern> {
        self.patterns.sorted()
    }

    /// The pattern table itself: its size and how many patterns it evicted.
    pub fn pattern_table(&self) -> &Patterns {
        &self.patterns
    }

    pub fn sources(&self) -> impl Iterator<Item = &String> {
        self.per_minute.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::update::LogLevel;

    fn line(at: DateTime<Utc>, is_error: bool) -> LogLine {
        LogLine {
            source: "app".into(),
            at,
            level: if is_error {
                LogLevel::Error
            } else {
                LogLevel::Info
            },
            message: "m".into(),
            fields: Default::default(),
            is_error,
            tallied: false,
        }
    }

    #[test]
    fn bounded_and_counts_drops() {
        let mut buf = LogBuffer::new(3);
        let now = Utc::now();
        for _ in 0..5 {
            buf.push(line(now, true));
        }
        assert_eq!(buf.len(), 3);
        assert_eq!(buf.dropped, 2);
        assert_eq!(buf.errors_in_last(None, now, 1), 5);
    }

    #[test]
    fn per_minute_buckets() {
        let mut buf = LogBuffer::new(100);
        let now = Utc::now();
        buf.push(line(now - chrono::Duration::minutes(2), true));
        buf.push(line(now, true));
        buf.push(line(now, false));
        let series = buf.errors_per_minute(Some("app"), now, 3);
        assert_eq!(series, vec![1, 0, 1]);
    }

    #[test]
    fn error_lines_feed_the_patterns_and_outlive_the_ring() {
        let mut buf = LogBuffer::new(2);
        let now = Utc::now();
        for n in 0..5 {
            let mut l = line(now, n != 2);
            l.message = format!("request {n} failed");
            buf.push(l);
        }
        let patterns = buf.patterns();
        assert_eq!(patterns.len(), 1);
        assert_eq!(patterns[0].template, "request <num> failed");
        assert_eq!(patterns[0].count, 4, "the info line is not counted");
        assert_eq!(buf.len(), 2);
    }

    #[test]
    fn a_late_line_is_merged_in_time_order_and_keeps_its_arrival_number() {
        let mut buf = LogBuffer::new(10);
        let now = Utc::now();
        let s = chrono::Duration::seconds;
        for (i, at) in [now, now + s(2), now + s(1), now + s(2), now - s(5)]
            .into_iter()
            .enumerate()
        {
            let mut l = line(at, false);
            l.message = i.to_string();
            buf.push(l);
        }
        let order: Vec<(u64, &str)> = buf
            .iter_seq()
            .map(|(n, l)| (n, l.message.as_str()))
            .collect();
        assert_eq!(
            order,
            vec![(4, "4"), (0, "0"), (2, "2"), (1, "1"), (3, "3")]
        );
        assert_eq!(buf.pushed(), 5);

        // Far more lines than the few looked at from the end: a line late by a few lines
        // and one older than all but the first still land in time order.
        let mut buf = LogBuffer::new(1000);
        for i in 0..100 {
            buf.push(line(now + s(i), false));
        }
        buf.push(line(now + s(97), false));
        buf.push(line(now + s(1), false));
        let times: Vec<_> = buf.iter().map(|l| l.at).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(buf.iter_seq().nth(2).map(|(n, _)| n), Some(101));
    }
}
