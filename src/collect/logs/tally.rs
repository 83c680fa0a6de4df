//! The record's count of a source's lines that are not sent to it one by one: the lines
//! of the window read back at start (and those shown from the files' tails, which the
//! read-back counts), per second.
//!
//! The record counts each source's lines up to a watermark (the newest line time it has
//! counted, committed with the counts); a restart counts only the lines after it. That
//! holds only if the record receives a source's lines oldest first: a count committed
//! before a kill must never skip older lines still to come. So while a read-back is under
//! way, the lines read meanwhile are tallied too (and marked, so the state does not count
//! them), and the whole tally goes to the record, oldest second first, once the read-back
//! ends.
//!
//! A read-back cut (by a cap, a file it could not read, lines naming no time) before it
//! reached where the record's count stopped leaves the record's count of that stretch
//! partial: the tally keeps that ([`LogGap`]) and it goes to the record with the counts,
//! so the report says so rather than show a low count as whole.

use crate::model::update::{LogCount, LogGap, LogLevel, LogLine};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

/// What the record has counted of a source already: where its tally starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordFrom {
    /// The newest line time the record has counted of this source, if it has any.
    pub counted_until: Option<DateTime<Utc>>,
    /// The start of the record's window: older lines are not the record's.
    pub window_start: DateTime<Utc>,
}

impl RecordFrom {
    /// How far back the lines still to be counted for the record go.
    pub fn reach(&self) -> DateTime<Utc> {
        match self.counted_until {
            Some(until) => until.max(self.window_start),
            None => self.window_start,
        }
    }
}

pub(crate) struct Tally {
    from: RecordFrom,
    /// Lines read are tallied rather than counted by the state, until the read-back ends.
    pub holding: bool,
    seconds: BTreeMap<i64, LogCount>,
    /// The read-back was cut before it reached `from`'s reach.
    cut: Option<LogGap>,
}

impl Tally {
    pub fn new(from: RecordFrom) -> Self {
        Tally {
            from,
            holding: true,
            seconds: BTreeMap::new(),
            cut: None,
        }
    }

    pub fn reach(&self) -> DateTime<Utc> {
        self.from.reach()
    }

    /// Whether a line at `at` is still to be counted. `placed`: its time is its own or a
    /// newer line's in the same file; a line dated only by the file's modification time
    /// cannot be told from the lines an earlier session counted, and counts only for a
    /// source the record has not counted before.
    pub(crate) fn wants(&self, at: DateTime<Utc>, placed: bool) -> bool {
        if at < self.from.window_start {
            return false;
        }
        match self.from.counted_until {
            // The watermark is kept in milliseconds.
            Some(until) => placed && at.timestamp_millis() > until.timestamp_millis(),
            None => true,
        }
    }

    pub fn add(&mut self, line: &LogLine) {
        let second = line.at.timestamp();
        let count = self.seconds.entry(second).or_insert_with(|| LogCount {
            at: DateTime::from_timestamp(second, 0).unwrap_or(line.at),
            newest: line.at,
            ..LogCount::default()
        });
        count.lines += 1;
        count.errors += u32::from(line.is_error);
        count.critical += u32::from(line.level == LogLevel::Critical);
        count.newest = count.newest.max(line.at);
    }

    /// A read-back stopped where its oldest line read is at `to` (`read` of `total`
    /// bytes, for `why`): if the record's count wanted older lines, the stretch from its
    /// reach to `to` is partial. Several files cut: the stretch reaches the newest cut.
    pub(crate) fn cut(&mut self, to: DateTime<Utc>, read: u64, total: u64, why: &str) {
        let from = self.reach();
        if to <= from {
            return;
        }
        let to = self.cut.as_ref().map_or(to, |c| c.to.max(to));
        self.cut = Some(LogGap {
            from,
            to,
            read,
            total,
            why: why.to_string(),
        });
    }

    /// The stretch the read-back left partial, if any (once: it goes with the counts).
    pub fn take_cut(&mut self) -> Option<LogGap> {
        self.cut.take()
    }

    /// The counts so far, oldest first; the tally starts empty again.
    pub fn take(&mut self) -> Vec<LogCount> {
        std::mem::take(&mut self.seconds).into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(secs: i64, ms: u32) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, ms * 1_000_000)
            .unwrap()
    }

    #[test]
    fn lines_after_the_watermark_and_in_the_window_are_wanted() {
        let tally = Tally::new(RecordFrom {
            counted_until: Some(t(10, 500)),
            window_start: t(0, 0),
        });
        assert!(
            !tally.wants(t(10, 500), true),
            "the watermark's own millisecond"
        );
        assert!(tally.wants(t(10, 501), true));
        assert!(!tally.wants(t(11, 0), false), "dated by the file only");
        assert_eq!(tally.reach(), t(10, 500));
        let first = Tally::new(RecordFrom {
            counted_until: None,
            window_start: t(0, 0),
        });
        assert!(first.wants(t(11, 0), false));
        assert!(!first.wants(t(-1, 0), true), "before the window");
    }

    #[test]
    fn a_cut_short_of_the_reach_is_a_partial_stretch() {
        let mut tally = Tally::new(RecordFrom {
            counted_until: Some(t(10, 500)),
            window_start: t(0, 0),
        });
        tally.cut(t(10, 500), 10, 20, "cap");
        assert_eq!(tally.take_cut(), None, "read back to the watermark: whole");
        tally.cut(t(40, 0), 10, 20, "cap");
        tally.cut(t(30, 0), 12, 20, "cap");
        assert_eq!(
            tally.take_cut(),
            Some(LogGap {
                from: t(10, 500),
                to: t(40, 0),
                read: 12,
                total: 20,
                why: "cap".into()
            }),
            "from the watermark to the newest cut"
        );
        assert_eq!(tally.take_cut(), None, "said once");
    }

    #[test]
    fn counts_come_out_per_second_oldest_first() {
        let mut tally = Tally::new(RecordFrom {
            counted_until: None,
            window_start: t(0, 0),
        });
        for (at, level) in [
            (t(5, 900), LogLevel::Error),
            (t(3, 100), LogLevel::Info),
            (t(5, 200), LogLevel::Critical),
        ] {
            tally.add(&LogLine::new("app", at, level, "x"));
        }
        let counts = tally.take();
        assert_eq!(
            counts,
            [
                LogCount {
                    at: t(3, 0),
                    newest: t(3, 100),
                    lines: 1,
                    errors: 0,
                    critical: 0
                },
                LogCount {
                    at: t(5, 0),
                    newest: t(5, 900),
                    lines: 2,
                    errors: 2,
                    critical: 1
                },
            ]
        );
        assert!(tally.take().is_empty());
    }
}
