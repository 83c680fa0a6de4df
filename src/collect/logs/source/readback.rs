//! Reading back what a file held before following started, to count it: newest first, in
//! chunks, until the lines are older than what is still to be counted, bounded by caps.
//! The same for a file on this machine (`files`) and on an SSH host (`remote`): they only
//! fetch the chunks differently.
//!
//! The read-back goes backwards from where following starts in chunks of `CHUNK`, until
//! the lines are older than the longest window a figure reads (the hour of `errors_1h`, a
//! metric's window) — or, with a record, than the last line it counted (or its window's
//! start), when that is older: the lines written while nothing watched — or the file's
//! start. Bounded per source by its `read_back` size and [`READ_BACK_MAX_TIME`]; a cut
//! is said in every figure ("partial: last 512.0 MiB of 3.1 GiB"). The dashboard reads a
//! slice of `SLICE` per poll (polls come every 10 ms while it is under way), so the first
//! frame and the tail never wait; `check` reads it whole before it reports.
//!
//! Lines are taken newest first: a line that names no time of its own (a stack trace's)
//! takes the time of the line before it that does (its message's), or at the file's start
//! the next newer one's, or the file's modification time. A chunk in which no line names a
//! time ends the read-back of that file (its lines cannot be placed in the window), and
//! the figures say so.

use crate::collect::logs::metrics::Coverage;
use crate::collect::logs::{Carry, Ingest};
use crate::model::figure::format_bytes;
use chrono::{DateTime, Utc};
use std::time::{Duration, Instant};

/// A source's read-back reads `read_back` bytes at most (512 MiB unless the config says),
/// for this long at most (a one-shot `check`: its own, shorter limit).
pub(crate) const READ_BACK_MAX_TIME: Duration = Duration::from_secs(60);
/// The dashboard reads this much of it per poll.
pub(super) const SLICE: u64 = 32 * 1024 * 1024;
/// Read back in chunks of this size.
pub(super) const CHUNK: u64 = 4 * 1024 * 1024;

/// One source's read-back: how far it is, its caps, and why it was cut.
pub(crate) struct ReadBack {
    /// Bytes before where following started, every file's.
    pub total: u64,
    /// Bytes read back so far.
    pub read: u64,
    started: Option<Instant>,
    time_cap: Duration,
    /// Bytes read back per poll.
    pub slice: u64,
    /// Why the read-back was cut, if it was.
    pub cut: Option<String>,
    /// The byte cap.
    max_bytes: u64,
}

/// The default cap; a placeholder while a read-back is away in a blocking task.
impl Default for ReadBack {
    fn default() -> Self {
        ReadBack::new(crate::config::DEFAULT_READ_BACK)
    }
}

impl ReadBack {
    /// A read-back of at most `max_bytes`.
    pub(crate) fn new(max_bytes: u64) -> Self {
        ReadBack {
            total: 0,
            read: 0,
            started: None,
            time_cap: READ_BACK_MAX_TIME,
            slice: SLICE,
            cut: None,
            max_bytes,
        }
    }
}

/// What is left to read back of one file: `[0, end)`, read from `end` backwards.
pub(crate) struct Backlog {
    /// A line starts here; the next chunk read back ends here.
    pub end: u64,
    /// The time of the lines read back, for those naming none.
    pub carry: Carry,
}

impl Backlog {
    pub fn new(end: u64, modified: DateTime<Utc>) -> Self {
        Backlog {
            end,
            carry: Carry::new(modified),
        }
    }
}

impl ReadBack {
    /// A one-shot read: the read-back gets `limit` at most, in slices as large as the cap.
    pub(crate) fn one_shot(&mut self, limit: Duration) {
        self.time_cap = limit.min(READ_BACK_MAX_TIME);
        self.slice = self.max_bytes.max(1);
    }

    /// Starts the clock at the first call, and says whether it had started: the first poll
    /// shows the tail at once, the read-back starts with the next.
    pub(crate) fn begun(&mut self) -> bool {
        if self.started.is_some() {
            return true;
        }
        self.started = Some(Instant::now());
        false
    }

    pub fn reading(&self) -> Coverage {
        Coverage::ReadingBack {
            read: self.read,
            total: self.total,
        }
    }

    /// How far the figures are: still reading back while a file is not read back past
    /// the start of their window (`figures_pending`), even if the record's count reads on.
    pub(crate) fn coverage(&self, figures_pending: bool) -> Coverage {
        match &self.cut {
            _ if figures_pending => self.reading(),
            Some(cut) => Coverage::Partial(cut.clone()),
            None => Coverage::Complete,
        }
    }

    /// Whether a cap stops `backlog`'s read-back now; if so it is over, and if that cuts
    /// the figures' window the figures say so. If it cuts what the record's count still
    /// wanted (the lines written while nothing watched, older than the figures' window or
    /// not), the record is told that stretch is partial.
    pub(crate) fn capped(
        &mut self,
        ingest: &mut Ingest,
        backlog: &Backlog,
        figures_from: DateTime<Utc>,
    ) -> bool {
        let (why, record_why) = if self.read >= self.max_bytes {
            (
                String::new(),
                format!(
                    "its read_back cap of {}",
                    format_bytes(self.max_bytes as f64)
                ),
            )
        } else if self.started.is_some_and(|s| s.elapsed() >= self.time_cap) {
            let secs = self.time_cap.as_secs();
            (
                format!(" within the {secs}s cap"),
                format!("the {secs}s read-back time cap"),
            )
        } else {
            return false;
        };
        if backlog.carry.at >= figures_from {
            self.cut = Some(format!(
                "partial: last {} of {} read back{why}",
                format_bytes(self.read as f64),
                format_bytes(self.total as f64)
            ));
        }
        self.record_cut(ingest, backlog, &record_why);
        true
    }

    /// `backlog`'s read-back ends before its file's start, for `why`: the record's count
    /// is partial back from the oldest line read, if it wanted older lines.
    pub(crate) fn record_cut(&self, ingest: &mut Ingest, backlog: &Backlog, why: &str) {
        if let Some(tally) = &mut ingest.tally {
            tally.cut(backlog.carry.at, self.read, self.total, why);
        }
    }

    /// The next chunk of `backlog` to read: `(at, len)`.
    pub(crate) fn next_chunk(&self, backlog: &Backlog) -> (u64, u64) {
        let len = CHUNK
            .min(backlog.end)
            .min(self.max_bytes.saturating_sub(self.read));
        (backlog.end - len, len)
    }

    /// Counts the lines of `buf`, the file's bytes `[at, at + buf.len())` (a chunk
    /// [`ReadBack::next_chunk`] named), through `ingest`. `what` names the file and
    /// `following_from` is where following started, for a cut's words. Returns whether
    /// the file's read-back goes on.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn count_chunk(
        &mut self,
        ingest: &mut Ingest,
        backlog: &mut Backlog,
        buf: &[u8],
        at: u64,
        what: &str,
        following_from: u64,
        now: DateTime<Utc>,
    ) -> bool {
        self.read += buf.len() as u64;
        // Complete lines: after the first newline, unless this is the file's start.
        let (lines, next_end) = if at == 0 {
            (buf, 0)
        } else {
            match memchr::memchr(b'\n', buf) {
                Some(p) => (&buf[p + 1..], at + p as u64 + 1),
                // All of one long line: its start, read later, stands for it.
                None => (&buf[..0], at),
            }
        };
        let newest_first = lines.rsplit(|&b| b == b'\n').filter_map(|line| {
            let start = line.iter().position(|&b| b != 0).unwrap_or(line.len());
            let line = &line[start..];
            (!line.iter().all(u8::is_ascii_whitespace)).then_some(line)
        });
        let mut any = false;
        let newest = ingest.count_back(
            newest_first.inspect(|_| any = true),
            &mut backlog.carry,
            now,
        );
        backlog.end = next_end;
        let older = newest.is_some_and(|t| t < ingest.reach(now));
        let undated = any && newest.is_none();
        if undated && next_end > 0 {
            self.cut = Some(format!(
                "partial: lines of {what} name no time; only its last {} read back",
                format_bytes(following_from.saturating_sub(next_end) as f64)
            ));
            self.record_cut(ingest, backlog, &format!("lines of {what} name no time"));
        }
        if next_end == 0 || undated {
            // The file's start, or a stretch of lines naming no time: what waits for a
            // time takes the newest one known.
            ingest.settle_back(&mut backlog.carry, now);
        }
        // (Past the window, lines still waiting belong to an older line.)
        !(next_end == 0 || older || undated)
    }
}
