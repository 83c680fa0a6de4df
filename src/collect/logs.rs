//! Log files followed like `tail -F`: globs expanded on every poll, the bytes appended
//! since the last poll read, rotation by rename and by copytruncate followed, lines parsed
//! (see `logparse`) and error counts kept for `<name>.errors_1h` and `<name>.errors_per_min`.
//!
//! How the following works:
//! - A file is known by its identity (device + inode) and read through a handle kept
//!   open, so a renamed (rotated) or deleted file can still be read to its end.
//! - When no configured path leads to a followed file any more, it is "retired": read to
//!   its end on each poll (a writer may keep writing to it until it reopens its log) and
//!   closed after a few polls without new data. Retired files are read before the files
//!   that replaced them, so lines keep their order across a rotation.
//! - A file that got shorter than what was read, or whose last read bytes changed
//!   (copytruncate followed by fast writes), is read again from its start. Lines written
//!   after the last poll and before a copytruncate went to the copy only and are not seen,
//!   as with `tail -F`.
//! - The first poll starts each existing file at its last 64 KiB (at most 200 lines), so
//!   the pane is not empty at start and a multi-GB log is not read. Files that appear later
//!   are read from their start (or their tail, if already over 8 MiB).
//! - Each poll reads at most 8 MiB per file; the rest waits for the next poll. A line
//!   without its newline yet waits too. A line over 64 KiB keeps its first 64 KiB and says
//!   how many bytes were cut.
//!
//! All file I/O and parsing run in `spawn_blocking`.

use crate::collect::logparse::{MAX_LINE_BYTES, parse_line};
use crate::collect::{Collector, failed, health};
use crate::config::LogSource;
use crate::state::figure::Reading;
use crate::state::update::{LogLine, SourceHealth, Update};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use regex::{Regex, RegexBuilder};
use std::collections::BTreeMap;
use std::fs::{File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// At most this much is read from one file in one poll.
pub const MAX_READ_PER_POLL: u64 = 8 * 1024 * 1024;
/// The first poll starts this far before the end of an existing file...
pub const START_TAIL_BYTES: u64 = 64 * 1024;
/// ...and keeps at most this many of the lines found there.
pub const START_TAIL_LINES: usize = 200;
/// Files followed at once per source (the most recently modified win).
const MAX_FILES: usize = 128;
/// A retired file is closed after this many polls that found nothing new in it.
const RETIRE_AFTER_IDLE_POLLS: u32 = 3;
const MAX_RETIRED: usize = 32;
/// Bytes remembered from just before the read offset, to notice a file rewritten in place.
const FINGERPRINT_BYTES: usize = 64;
/// Minutes of error counts kept (one hour plus the current minute).
const MINUTES_KEPT: i64 = 61;

pub const REMOTE_NOT_BUILT: &str = "remote log sources need the SSH transport (not built yet)";

pub struct LogCollector {
    name: String,
    interval: Duration,
    host: String,
    /// The compiled error pattern, or why it does not compile.
    error_pattern: Result<Regex, String>,
    /// Taken by the blocking task during a poll; `None` only if that task died.
    tailer: Option<Tailer>,
    patterns: Vec<String>,
    errors: ErrorCounts,
}

impl LogCollector {
    pub fn new(name: &str, source: &LogSource) -> Self {
        let error_pattern = RegexBuilder::new(&source.error_pattern)
            .case_insensitive(true)
            .build()
            .map_err(|e| {
                format!(
                    "error_pattern {:?} is not a valid regex: {}",
                    source.error_pattern,
                    last_line(&e)
                )
            });
        LogCollector {
            name: name.to_string(),
            interval: Duration::from_secs(2),
            host: source.host.trim().to_string(),
            error_pattern,
            tailer: Some(Tailer::new(source.files.clone())),
            patterns: source.files.clone(),
            errors: ErrorCounts::default(),
        }
    }

    fn error_updates(&self, message: String) -> Vec<Update> {
        vec![
            failed(&self.name, message.clone(), self.interval),
            Update::Readings {
                source: self.name.clone(),
                readings: self.failed_readings(&message),
            },
        ]
    }

    /// Without any file to read, the counts are unknown rather than zero.
    fn failed_readings(&self, message: &str) -> Vec<Reading> {
        vec![
            Reading::failed(self.errors_1h_id(), "errors in the last hour", message),
            Reading::failed(self.per_min_id(), "errors per minute", message),
        ]
    }

    fn errors_1h_id(&self) -> String {
        format!("{}.errors_1h", self.name)
    }

    fn per_min_id(&self) -> String {
        format!("{}.errors_per_min", self.name)
    }

    async fn poll_local(&mut self, error_pattern: Regex) -> Vec<Update> {
        let mut tailer = self
            .tailer
            .take()
            .unwrap_or_else(|| Tailer::new(self.patterns.clone()));
        let name = self.name.clone();
        let task = tokio::task::spawn_blocking(move || {
            let now = Utc::now();
            let outcome = tailer.poll();
            let lines: Vec<LogLine> = outcome
                .lines
                .iter()
                .map(|raw| parse_line(&name, &raw.bytes, raw.dropped, &error_pattern, now))
                .collect();
            (tailer, outcome.problems, outcome.followed, lines)
        });
        let (tailer, problems, followed, lines) = match task.await {
            Ok(result) => result,
            // The reader panicked: its state is gone; the next poll starts over at the tails.
            Err(e) => return self.error_updates(format!("log reader failed: {e}")),
        };
        self.tailer = Some(tailer);

        let now = Utc::now();
        for line in lines.iter().filter(|l| l.is_error) {
            self.errors.add(line.at, now);
        }
        let mut updates = Vec::new();
        if !lines.is_empty() {
            updates.push(Update::Logs(lines));
        }
        let problem = summarize(&problems);
        let readings = match &problem {
            Some(message) if followed == 0 => self.failed_readings(message),
            _ => vec![
                Reading::number(
                    self.errors_1h_id(),
                    "errors in the last hour",
                    self.errors.last_hour(now) as f64,
                    "",
                ),
                Reading::number(
                    self.per_min_id(),
                    "errors per minute",
                    self.errors.last_full_minute(now) as f64,
                    "/min",
                ),
            ],
        };
        updates.push(Update::Readings {
            source: self.name.clone(),
            readings,
        });
        updates.push(match problem {
            None => health(&self.name, SourceHealth::Ok),
            Some(message) => failed(&self.name, message, self.interval),
        });
        updates
    }
}

impl Collector for LogCollector {
    fn name(&self) -> &str {
        &self.name
    }
    fn panes(&self) -> &'static [&'static str] {
        &["errors"]
    }
    fn interval(&self) -> Duration {
        self.interval
    }
    fn poll(&mut self) -> BoxFuture<'_, Vec<Update>> {
        Box::pin(async move {
            if !(self.host.is_empty() || self.host == "local") {
                return self.error_updates(REMOTE_NOT_BUILT.to_string());
            }
            if self.patterns.is_empty() {
                return self.error_updates(
                    "no files configured: set files = [\"/path/app.log\", ...]".to_string(),
                );
            }
            match self.error_pattern.clone() {
                Ok(pattern) => self.poll_local(pattern).await,
                Err(message) => self.error_updates(message),
            }
        })
    }
}

/// The first few problems in one sentence (a glob over 100 unreadable files stays short).
fn summarize(problems: &[String]) -> Option<String> {
    const SHOWN: usize = 3;
    let first = problems.first()?;
    let mut message = problems
        .iter()
        .skip(1)
        .take(SHOWN - 1)
        .fold(first.clone(), |m, p| m + "; " + p);
    if problems.len() > SHOWN {
        message.push_str(&format!(" (and {} more)", problems.len() - SHOWN));
    }
    Some(message)
}

fn last_line(e: &regex::Error) -> String {
    e.to_string()
        .lines()
        .last()
        .unwrap_or("")
        .trim()
        .to_string()
}

// ---------------------------------------------------------------------------------------
// Error counts

/// Error lines per minute (by the lines' own timestamps), for the last hour only.
#[derive(Default)]
struct ErrorCounts {
    per_minute: BTreeMap<i64, u64>,
}

impl ErrorCounts {
    fn add(&mut self, at: DateTime<Utc>, now: DateTime<Utc>) {
        // A clock ahead of ours counts as now.
        let minute = at.min(now).timestamp().div_euclid(60);
        let current = now.timestamp().div_euclid(60);
        if minute > current - MINUTES_KEPT {
            *self.per_minute.entry(minute).or_default() += 1;
        }
        self.per_minute.retain(|m, _| *m > current - MINUTES_KEPT);
    }

    /// Errors in the current minute and the 59 before it.
    fn last_hour(&self, now: DateTime<Utc>) -> u64 {
        let current = now.timestamp().div_euclid(60);
        self.per_minute
            .range(current - 59..=current)
            .map(|(_, n)| n)
            .sum()
    }

    fn last_full_minute(&self, now: DateTime<Utc>) -> u64 {
        let current = now.timestamp().div_euclid(60);
        self.per_minute.get(&(current - 1)).copied().unwrap_or(0)
    }
}

// ---------------------------------------------------------------------------------------
// Following files (blocking; runs in spawn_blocking)

/// One line as read: at most `MAX_LINE_BYTES` bytes, plus how many more were cut.
struct RawLine {
    bytes: Vec<u8>,
    dropped: u64,
}

struct PollOutcome {
    lines: Vec<RawLine>,
    /// What went wrong, one sentence each; the source's health.
    problems: Vec<String>,
    /// Files followed after this poll, including rotated ones still being drained (so a
    /// poll that lands between a rename and the new file does not make the counts unknown).
    followed: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileId(u64, u64);

#[cfg(unix)]
fn file_id(meta: &Metadata, _path: &Path) -> FileId {
    use std::os::unix::fs::MetadataExt;
    FileId(meta.dev(), meta.ino())
}

/// Without inodes, a path is its identity: copytruncate is followed, rename is not.
#[cfg(not(unix))]
fn file_id(_meta: &Metadata, path: &Path) -> FileId {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut hasher);
    FileId(0, hasher.finish())
}

struct Tailer {
    patterns: Vec<String>,
    files: Vec<Followed>,
    /// The first poll has run: files found from now on are new and read from the start.
    started: bool,
}

struct Followed {
    id: FileId,
    path: PathBuf,
    file: File,
    /// Bytes of the file consumed so far.
    offset: u64,
    /// The start of a line whose newline has not been read yet.
    partial: Vec<u8>,
    /// Bytes of that line beyond `MAX_LINE_BYTES`, not kept.
    partial_dropped: u64,
    /// Discard everything up to the first newline (reading started mid-line).
    skip_to_newline: bool,
    /// The last bytes before `offset`, as read.
    fingerprint: Vec<u8>,
    /// No configured path leads here any more (renamed or deleted).
    retired: bool,
    idle_polls: u32,
}

impl Tailer {
    fn new(patterns: Vec<String>) -> Self {
        Tailer {
            patterns,
            files: Vec::new(),
            started: false,
        }
    }

    fn poll(&mut self) -> PollOutcome {
        let mut problems = Vec::new();
        let found = self.find_files(&mut problems);
        let mut lines = Vec::new();

        for followed in &mut self.files {
            match found.iter().find(|f| f.id == followed.id) {
                Some(f) => {
                    followed.path = f.path.clone();
                    followed.retired = false;
                    followed.idle_polls = 0;
                }
                None => followed.retired = true,
            }
        }
        // Rotated-away files first: their lines are older than their replacements'.
        for retired in [true, false] {
            for followed in self.files.iter_mut().filter(|f| f.retired == retired) {
                match followed.read_new(&mut lines) {
                    Ok(0) if followed.retired => followed.idle_polls += 1,
                    Ok(_) => {}
                    Err(e) => problems.push(format!(
                        "cannot read {}: {}",
                        followed.path.display(),
                        describe(&e)
                    )),
                }
            }
        }
        self.close_retired(&mut lines);

        for f in &found {
            if self.files.iter().any(|known| known.id == f.id) {
                continue;
            }
            match self.open(f) {
                Ok(Some(mut followed)) => {
                    let tail_start = !self.started || followed.offset > 0;
                    let first = lines.len();
                    if let Err(e) = followed.read_new(&mut lines) {
                        problems.push(format!(
                            "cannot read {}: {}",
                            f.path.display(),
                            describe(&e)
                        ));
                    }
                    if tail_start {
                        // A tail start: keep only the last lines found there.
                        let new = lines.len() - first;
                        if new > START_TAIL_LINES {
                            lines.drain(first..first + new - START_TAIL_LINES);
                        }
                    }
                    self.files.push(followed);
                }
                Ok(None) => {}
                Err(e) => problems.push(format!(
                    "cannot open {}: {}",
                    f.path.display(),
                    describe(&e)
                )),
            }
        }
        self.started = true;
        PollOutcome {
            lines,
            problems,
            followed: self.files.len(),
        }
    }

    /// Expands every pattern into the regular files it matches now.
    fn find_files(&self, problems: &mut Vec<String>) -> Vec<Found> {
        let mut found: Vec<Found> = Vec::new();
        for pattern in &self.patterns {
            let before = found.len();
            let problems_before = problems.len();
            let mut add = |path: PathBuf, problems: &mut Vec<String>| match std::fs::metadata(&path)
            {
                Ok(meta) if meta.is_file() => {
                    let id = file_id(&meta, &path);
                    if !found.iter().any(|f| f.id == id) {
                        let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                        found.push(Found { path, id, modified });
                    }
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    problems.push(format!("cannot read {}: {}", path.display(), describe(&e)))
                }
            };
            if is_glob(pattern) {
                match glob::glob(pattern) {
                    Ok(paths) => {
                        for entry in paths {
                            match entry {
                                Ok(path) => add(path, problems),
                                Err(e) => problems.push(format!(
                                    "cannot read {}: {}",
                                    e.path().display(),
                                    describe(e.error())
                                )),
                            }
                        }
                    }
                    Err(e) => problems.push(format!("bad glob {pattern}: {}", e.msg)),
                }
            } else {
                add(PathBuf::from(pattern), problems);
            }
            if found.len() == before && problems.len() == problems_before {
                problems.push(format!("no file matches {pattern}"));
            }
        }
        if found.len() > MAX_FILES {
            problems.push(format!(
                "{} files match; following the {MAX_FILES} most recently modified",
                found.len()
            ));
            found.sort_by_key(|f| std::cmp::Reverse(f.modified));
            found.truncate(MAX_FILES);
        }
        found
    }

    /// Opens a newly found file. `None` if it turned out to be one already followed (it was
    /// replaced between the look and the open).
    fn open(&self, found: &Found) -> io::Result<Option<Followed>> {
        let file = File::open(&found.path)?;
        let meta = file.metadata()?;
        let id = file_id(&meta, &found.path);
        if self.files.iter().any(|f| f.id == id) {
            return Ok(None);
        }
        let len = meta.len();
        let tail = !self.started || len > MAX_READ_PER_POLL;
        let start = if tail {
            len.saturating_sub(START_TAIL_BYTES)
        } else {
            0
        };
        Ok(Some(Followed {
            id,
            path: found.path.clone(),
            file,
            // From one byte early, so a line that starts exactly at `start` is kept whole.
            offset: start.saturating_sub(1),
            partial: Vec::new(),
            partial_dropped: 0,
            skip_to_newline: start > 0,
            fingerprint: Vec::new(),
            retired: false,
            idle_polls: 0,
        }))
    }

    /// Closes retired files that stayed idle long enough (or are too many), flushing the
    /// last line of each even without its newline: nothing more will come.
    fn close_retired(&mut self, lines: &mut Vec<RawLine>) {
        let mut retired = self.files.iter().filter(|f| f.retired).count();
        let mut index = 0;
        while index < self.files.len() {
            let f = &self.files[index];
            let too_many = f.retired && retired > MAX_RETIRED;
            if f.retired && (f.idle_polls >= RETIRE_AFTER_IDLE_POLLS || too_many) {
                let mut closed = self.files.remove(index);
                closed.flush_partial(lines);
                retired -= 1;
            } else {
                index += 1;
            }
        }
    }
}

struct Found {
    path: PathBuf,
    id: FileId,
    modified: SystemTime,
}

fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

fn describe(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    }
}

impl Followed {
    /// Reads what was appended since the last call (at most `MAX_READ_PER_POLL`), pushing
    /// complete lines. Returns the number of bytes read.
    fn read_new(&mut self, lines: &mut Vec<RawLine>) -> io::Result<u64> {
        let len = self.file.metadata()?.len();
        if len < self.offset || (len > self.offset && !self.fingerprint_holds()?) {
            // Truncated (copytruncate) or rewritten: what is there now is all new.
            self.flush_partial(lines);
            self.offset = 0;
            self.fingerprint.clear();
            self.skip_to_newline = false;
        }
        if len == self.offset {
            return Ok(0);
        }
        let want = (len - self.offset).min(MAX_READ_PER_POLL);
        self.file.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::with_capacity(want as usize);
        (&mut self.file).take(want).read_to_end(&mut buf)?;
        self.offset += buf.len() as u64;
        self.remember_tail(&buf);
        self.split(&buf, lines);
        Ok(buf.len() as u64)
    }

    /// Whether the bytes just before `offset` are still the ones read there.
    fn fingerprint_holds(&mut self) -> io::Result<bool> {
        if self.fingerprint.is_empty() {
            return Ok(true);
        }
        let at = self.offset - self.fingerprint.len() as u64;
        self.file.seek(SeekFrom::Start(at))?;
        let mut now = vec![0; self.fingerprint.len()];
        match self.file.read_exact(&mut now) {
            Ok(()) => Ok(now == self.fingerprint),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn remember_tail(&mut self, buf: &[u8]) {
        if buf.len() >= FINGERPRINT_BYTES {
            self.fingerprint = buf[buf.len() - FINGERPRINT_BYTES..].to_vec();
        } else {
            self.fingerprint.extend_from_slice(buf);
            let excess = self.fingerprint.len().saturating_sub(FINGERPRINT_BYTES);
            self.fingerprint.drain(..excess);
        }
    }

    fn split(&mut self, mut buf: &[u8], lines: &mut Vec<RawLine>) {
        if self.skip_to_newline {
            match buf.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    buf = &buf[end + 1..];
                    self.skip_to_newline = false;
                }
                None => return,
            }
        }
        while let Some(end) = buf.iter().position(|&b| b == b'\n') {
            self.append(&buf[..end]);
            self.flush_partial(lines);
            buf = &buf[end + 1..];
        }
        self.append(buf);
    }

    /// Adds to the current line, keeping at most `MAX_LINE_BYTES` of it.
    fn append(&mut self, bytes: &[u8]) {
        let room = MAX_LINE_BYTES
            .saturating_sub(self.partial.len())
            .min(bytes.len());
        self.partial.extend_from_slice(&bytes[..room]);
        self.partial_dropped += (bytes.len() - room) as u64;
    }

    /// Ends the current line. Blank lines and the NUL padding a non-appending writer leaves
    /// after a copytruncate are skipped.
    fn flush_partial(&mut self, lines: &mut Vec<RawLine>) {
        let dropped = std::mem::take(&mut self.partial_dropped);
        let bytes = std::mem::take(&mut self.partial);
        let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
        let line = &bytes[start..];
        if line.iter().all(|b| b.is_ascii_whitespace()) && dropped == 0 {
            return;
        }
        let bytes = if start == 0 { bytes } else { line.to_vec() };
        lines.push(RawLine { bytes, dropped });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn lines_of(outcome: &PollOutcome) -> Vec<String> {
        outcome
            .lines
            .iter()
            .map(|l| String::from_utf8_lossy(&l.bytes).into_owned())
            .collect()
    }

    #[test]
    fn first_poll_starts_at_a_bounded_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.log");
        let mut file = File::create(&path).unwrap();
        for n in 0..20_000 {
            writeln!(file, "line {n:05} with some padding to make it longer").unwrap();
        }
        let mut tailer = Tailer::new(vec![path.display().to_string()]);
        let outcome = tailer.poll();
        let lines = lines_of(&outcome);
        assert_eq!(lines.len(), START_TAIL_LINES);
        assert_eq!(
            lines.last().unwrap(),
            "line 19999 with some padding to make it longer"
        );
        assert_eq!(lines[0], "line 19800 with some padding to make it longer");
    }

    #[test]
    fn tail_start_on_a_line_boundary_keeps_that_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("exact.log");
        // Make a line begin exactly START_TAIL_BYTES before the end.
        let last = "last line\n";
        let filler = "x".repeat(START_TAIL_BYTES as usize - last.len() - 1) + "\n";
        std::fs::write(&path, format!("first\n{filler}{last}")).unwrap();
        let mut tailer = Tailer::new(vec![path.display().to_string()]);
        let lines = lines_of(&tailer.poll());
        assert_eq!(
            lines.len(),
            2,
            "{:?}",
            lines.iter().map(|l| l.len()).collect::<Vec<_>>()
        );
        assert_eq!(lines[1], "last line");
    }

    #[test]
    fn a_poll_reads_at_most_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flood.log");
        File::create(&path).unwrap();
        let mut tailer = Tailer::new(vec![path.display().to_string()]);
        assert!(tailer.poll().lines.is_empty());
        let line = "y".repeat(1023) + "\n";
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        for _ in 0..(12 * 1024) {
            file.write_all(line.as_bytes()).unwrap();
        }
        let first = tailer.poll().lines.len();
        assert_eq!(first, 8 * 1024);
        let second = tailer.poll().lines.len();
        assert_eq!(second, 4 * 1024);
    }

    #[test]
    fn error_counts_by_minute() {
        let mut counts = ErrorCounts::default();
        let now = DateTime::parse_from_rfc3339("2025-12-12T10:30:30Z")
            .unwrap()
            .with_timezone(&Utc);
        counts.add(now, now);
        counts.add(now - chrono::Duration::minutes(1), now);
        counts.add(now - chrono::Duration::minutes(1), now);
        counts.add(now - chrono::Duration::minutes(59), now);
        counts.add(now - chrono::Duration::minutes(61), now); // too old
        counts.add(now + chrono::Duration::minutes(5), now); // ahead: counts as now
        assert_eq!(counts.last_hour(now), 5);
        assert_eq!(counts.last_full_minute(now), 2);
        let later = now + chrono::Duration::minutes(30);
        assert_eq!(counts.last_hour(later), 4);
        assert_eq!(counts.last_full_minute(later), 0);
        assert!(counts.per_minute.len() <= MINUTES_KEPT as usize);
    }
}
