//! Files on this machine, followed like `tail -F`.
//!
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
//! - The first poll shows each existing file's last 64 KiB (at most 200 lines) at once,
//!   and what came before where following starts is read back to count it (see
//!   [`readback`](super::readback)). Files that appear later are read from their start (or
//!   shown from their tail and read back, if already over 8 MiB).
//! - Each poll reads at most 8 MiB per file; the rest waits for the next poll. A line
//!   without its newline yet waits too. A line over 64 KiB keeps its first 64 KiB and says
//!   how many bytes were cut.
//!
//! Reading, parsing and counting run together on the source's own worker thread, on one buffer
//! per poll (no allocation per line).

use super::glob::{Found, is_glob, keep_newest};
use super::readback::{Backlog, ReadBack};
use super::{LineSource, Read as SourceRead};
use crate::collect::blocking::Worker;
use crate::collect::logs::metrics::Coverage;
use crate::collect::logs::parse::{Format, MAX_LINE_BYTES};
use crate::collect::logs::{Ingest, summarize};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use std::fs::{File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// At most this much is read from one file in one poll.
pub(crate) const MAX_READ_PER_POLL: u64 = 8 * 1024 * 1024;
/// The first poll starts this far before the end of an existing file...
pub(crate) const START_TAIL_BYTES: u64 = 64 * 1024;
/// ...and keeps at most this many of the lines found there.
pub(crate) const START_TAIL_LINES: usize = 200;
/// Files followed at once per source (the most recently modified win).
const MAX_FILES: usize = 128;
/// A retired file is closed after this many polls that found nothing new in it.
const RETIRE_AFTER_IDLE_POLLS: u32 = 3;
const MAX_RETIRED: usize = 32;
/// Bytes remembered from just before the read offset, to notice a file rewritten in place.
const FINGERPRINT_BYTES: usize = 64;

/// Lines read in one poll, back to back in one buffer (no allocation per line).
#[derive(Default)]
pub(crate) struct LineBatch {
    data: Vec<u8>,
    /// Where each line is in `data`, and how many bytes of it were cut.
    spans: Vec<(usize, usize, u64)>,
}

impl LineBatch {
    fn len(&self) -> usize {
        self.spans.len()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    pub(crate) fn iter(
        &self,
    ) -> impl ExactSizeIterator<Item = (&[u8], u64, Option<DateTime<Utc>>)> {
        self.spans
            .iter()
            .map(|&(start, end, dropped)| (&self.data[start..end], dropped, None))
    }

    /// Takes `data[start..end]` as a line: at most `MAX_LINE_BYTES` of it are kept. Blank
    /// lines and the NUL padding a non-appending writer leaves after a copytruncate are
    /// skipped.
    fn push_span(&mut self, mut start: usize, end: usize, mut dropped: u64) {
        while start < end && self.data[start] == 0 {
            start += 1;
        }
        let mut end = end;
        if end - start > MAX_LINE_BYTES {
            dropped += (end - start - MAX_LINE_BYTES) as u64;
            end = start + MAX_LINE_BYTES;
        }
        if dropped == 0 && self.data[start..end].iter().all(u8::is_ascii_whitespace) {
            return;
        }
        self.spans.push((start, end, dropped));
    }

    /// Takes a line assembled elsewhere.
    fn push_copy(&mut self, bytes: &[u8], dropped: u64) {
        let start = self.data.len();
        self.data.extend_from_slice(bytes);
        self.push_span(start, self.data.len(), dropped);
    }
}

pub(crate) struct PollOutcome {
    pub lines: LineBatch,
    /// The newest lines of files whose earlier lines are read back (see [`ReadBack`]):
    /// shown at once, counted by the read-back.
    pub shown: LineBatch,
    /// What went wrong, one sentence each; the source's health.
    pub problems: Vec<String>,
    /// Files followed after this poll, including rotated ones still being drained (so a
    /// poll that lands between a rename and the new file does not make the counts unknown).
    pub followed: usize,
    /// A file had more new bytes than one poll reads.
    pub behind: bool,
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

pub(crate) struct Tailer {
    /// A batch given back after use, so its buffers are reused (see `recycle`).
    spare: LineBatch,
    patterns: Vec<String>,
    files: Vec<OpenFile>,
    /// The first poll has run: files found from now on are new and read from the start.
    started: bool,
    /// Read every file from its start, however long (`FileIngest`).
    pub(crate) from_start: bool,
    /// The lines written before following started, counted from the files.
    read_back: ReadBack,
    /// The chunk being read back.
    buf: Vec<u8>,
}

struct OpenFile {
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
    /// What is left to read back before where following started.
    backlog: Option<Backlog>,
}

impl Tailer {
    /// Follows `patterns`, reading back at most `read_back` bytes of what they held.
    pub(crate) fn new(patterns: Vec<String>, read_back: u64) -> Self {
        Tailer {
            spare: LineBatch::default(),
            patterns,
            files: Vec::new(),
            started: false,
            from_start: false,
            read_back: ReadBack::new(read_back),
            buf: Vec::new(),
        }
    }

    /// A one-shot read: the read-back gets `limit` at most, in slices as large as the cap.
    pub(crate) fn one_shot(&mut self, limit: Duration) {
        self.read_back.one_shot(limit);
    }

    pub(crate) fn poll(&mut self) -> PollOutcome {
        let mut problems = Vec::new();
        let found = self.find_files(&mut problems);
        let mut lines = std::mem::take(&mut self.spare);
        let mut shown = LineBatch::default();
        let mut behind = false;

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
                    Ok(read) => behind |= read >= MAX_READ_PER_POLL,
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
                    let tail_start = !self.from_start && (!self.started || followed.offset > 0);
                    // A tail start's lines are shown; the read-back counts them.
                    let batch = if tail_start { &mut shown } else { &mut lines };
                    let first = batch.len();
                    if let Err(e) = followed.read_new(batch) {
                        problems.push(format!(
                            "cannot read {}: {}",
                            f.path.display(),
                            describe(&e)
                        ));
                    }
                    if tail_start {
                        // A tail start: show only the last lines found there...
                        let new = shown.len() - first;
                        if new > START_TAIL_LINES {
                            shown.spans.drain(first..first + new - START_TAIL_LINES);
                        }
                        // ...and read back what comes before where following starts.
                        let end = followed.line_start();
                        if end > 0 {
                            self.read_back.total += end;
                            followed.backlog =
                                Some(Backlog::new(end, DateTime::<Utc>::from(f.modified)));
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
            shown,
            problems,
            followed: self.files.len(),
            behind,
        }
    }

    /// Takes a batch back for the next poll. Its buffers are kept while polls fill them
    /// (a source writing fast), and shrunk when they are mostly idle.
    pub(crate) fn recycle(&mut self, mut batch: LineBatch) {
        let used = batch.data.len();
        batch.data.clear();
        batch.spans.clear();
        if batch.data.capacity() > 4 * used.max(64 * 1024) {
            batch.data.shrink_to(used.max(64 * 1024));
            batch.spans.shrink_to(1024);
        }
        self.spare = batch;
    }

    /// Expands every pattern into the regular files it matches now.
    fn find_files(&self, problems: &mut Vec<String>) -> Vec<Found<FileId>> {
        let mut found: Vec<Found<FileId>> = Vec::new();
        for (index, pattern) in self.patterns.iter().enumerate() {
            let before = found.len();
            let problems_before = problems.len();
            let mut add = |path: PathBuf, problems: &mut Vec<String>| match std::fs::metadata(&path)
            {
                Ok(meta) if meta.is_file() => {
                    let id = file_id(&meta, &path);
                    if !found.iter().any(|f| f.id == id) {
                        let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                        found.push(Found {
                            pattern: index,
                            path,
                            id,
                            modified,
                        });
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
        let matching = found.len();
        if keep_newest(&mut found, MAX_FILES, |f| Some(f.modified)) > 0 {
            problems.push(format!(
                "{matching} files match; following the {MAX_FILES} most recently modified"
            ));
        }
        found
    }

    /// Opens a newly found file. `None` if it turned out to be one already followed (it was
    /// replaced between the look and the open).
    fn open(&self, found: &Found<FileId>) -> io::Result<Option<OpenFile>> {
        let file = File::open(&found.path)?;
        let meta = file.metadata()?;
        let id = file_id(&meta, &found.path);
        if self.files.iter().any(|f| f.id == id) {
            return Ok(None);
        }
        let len = meta.len();
        let tail = !self.from_start && (!self.started || len > MAX_READ_PER_POLL);
        let start = if tail {
            len.saturating_sub(START_TAIL_BYTES)
        } else {
            0
        };
        Ok(Some(OpenFile {
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
            backlog: None,
        }))
    }

    /// Closes retired files that stayed idle long enough (or are too many), flushing the
    /// last line of each even without its newline: nothing more will come.
    fn close_retired(&mut self, lines: &mut LineBatch) {
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

fn describe(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file".to_string(),
        io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    }
}

impl OpenFile {
    /// Where the next line to be read starts: past the complete lines read, before the
    /// line whose newline has not come yet.
    fn line_start(&self) -> u64 {
        if self.skip_to_newline {
            // No line started in what was read: it is all the end of one (read back).
            return self.offset;
        }
        self.offset
            .saturating_sub(self.partial.len() as u64 + self.partial_dropped)
    }

    /// Reads what was appended since the last call (at most `MAX_READ_PER_POLL`), pushing
    /// complete lines. Returns the number of bytes read.
    fn read_new(&mut self, lines: &mut LineBatch) -> io::Result<u64> {
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
        // Read straight into the batch: complete lines are used where they landed. (Into a
        // buffer of the size wanted: `read_to_end` would grow it to look for more.)
        let base = lines.data.len();
        lines.data.resize(base + want as usize, 0);
        let mut got = 0;
        let read = loop {
            match self.file.read(&mut lines.data[base + got..]) {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    got += n;
                    if got == want as usize {
                        break Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        lines.data.truncate(base + got);
        self.offset += got as u64;
        self.remember_tail(&lines.data[base..]);
        self.split(base, lines);
        read?;
        Ok(got as u64)
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

    /// Splits the bytes read into `lines.data[base..]` into lines.
    fn split(&mut self, base: usize, lines: &mut LineBatch) {
        let end_all = lines.data.len();
        let mut pos = base;
        if self.skip_to_newline {
            match memchr::memchr(b'\n', &lines.data[pos..end_all]) {
                Some(end) => {
                    pos += end + 1;
                    self.skip_to_newline = false;
                }
                None => return,
            }
        }
        while let Some(end) = memchr::memchr(b'\n', &lines.data[pos..end_all]) {
            let line_end = pos + end;
            if self.partial.is_empty() && self.partial_dropped == 0 {
                lines.push_span(pos, line_end, 0);
            } else {
                // The end of a line begun in an earlier read.
                self.append(&lines.data[pos..line_end]);
                self.flush_partial(lines);
            }
            pos = line_end + 1;
        }
        // A line without its newline yet waits (its bytes in the batch stay unused).
        self.append(&lines.data[pos..end_all]);
    }

    /// Adds to the current line, keeping at most `MAX_LINE_BYTES` of it.
    fn append(&mut self, bytes: &[u8]) {
        let room = MAX_LINE_BYTES
            .saturating_sub(self.partial.len())
            .min(bytes.len());
        self.partial.extend_from_slice(&bytes[..room]);
        self.partial_dropped += (bytes.len() - room) as u64;
    }

    /// Ends the current line.
    fn flush_partial(&mut self, lines: &mut LineBatch) {
        let dropped = std::mem::take(&mut self.partial_dropped);
        lines.push_copy(&self.partial, dropped);
        self.partial.clear();
    }
}

impl Tailer {
    /// Whether anything is still to be read back (for the figures, or for the record).
    pub(crate) fn reading_back(&self) -> bool {
        self.files.iter().any(|f| f.backlog.is_some())
    }

    /// Whether a file is not read back past the start of the figures' window yet.
    fn figures_pending(&self, figures_from: DateTime<Utc>) -> bool {
        self.files
            .iter()
            .filter_map(|f| f.backlog.as_ref())
            .any(|b| b.carry.at >= figures_from)
    }

    /// Reads back a slice of what files held before following started (see
    /// [`readback`](super::readback)), counting it through `ingest`; says how far the
    /// read-back is.
    pub(crate) fn read_back(&mut self, ingest: &mut Ingest, now: DateTime<Utc>) -> Coverage {
        let figures_from = ingest.figures_reach(now);
        if self.reading_back() && self.read_back.begun() {
            let rb = &mut self.read_back;
            let mut this_slice = 0;
            'files: for f in &mut self.files {
                let following_from = f.line_start();
                let what = f.path.display().to_string();
                while let Some(backlog) = &mut f.backlog {
                    if this_slice >= rb.slice {
                        break 'files;
                    }
                    if rb.capped(ingest, backlog, figures_from) {
                        f.backlog = None;
                        continue;
                    }
                    let (at, len) = rb.next_chunk(backlog);
                    self.buf.resize(len as usize, 0);
                    let read = f
                        .file
                        .seek(SeekFrom::Start(at))
                        .and_then(|_| f.file.read_exact(&mut self.buf));
                    if let Err(e) = read {
                        let why = format!("cannot read back {what}: {}", describe(&e));
                        rb.record_cut(ingest, backlog, &why);
                        rb.cut = Some(format!("partial: {why}"));
                        f.backlog = None;
                        continue;
                    }
                    this_slice += len;
                    let more =
                        rb.count_chunk(ingest, backlog, &self.buf, at, &what, following_from, now);
                    if !more {
                        f.backlog = None;
                    }
                }
            }
        }
        self.read_back.coverage(self.figures_pending(figures_from))
    }
}

/// A source's files on this machine, as a line source.
pub(crate) struct LocalFiles {
    /// Moved into a blocking task for each read and back.
    tailer: Worker<Tailer>,
    /// When a problem is looked at again: the collector's next poll.
    retry: Duration,
    /// `check`'s single read: the read-back's time limit (applied on every run, so a
    /// reader made afresh after a panic keeps it).
    one_shot: Option<Duration>,
}

impl LocalFiles {
    pub fn new(patterns: Vec<String>, retry: Duration, read_back: u64) -> Self {
        LocalFiles {
            tailer: Worker::new(move || Tailer::new(patterns.clone(), read_back)),
            retry,
            one_shot: None,
        }
    }
}

impl LineSource for LocalFiles {
    fn one_shot(&mut self, limit: Duration) {
        self.one_shot = Some(limit);
    }

    fn read(&mut self, mut ingest: Ingest) -> BoxFuture<'_, Result<SourceRead, String>> {
        Box::pin(async move {
            let one_shot = self.one_shot;
            let task = self.tailer.run(move |tailer| {
                if let Some(limit) = one_shot {
                    tailer.one_shot(limit);
                }
                let now = Utc::now();
                let outcome = tailer.poll();
                let mut lines = ingest.shown(outcome.shown.iter(), Format::Text, now);
                lines.extend(ingest.lines(outcome.lines.iter(), Format::Text, now));
                tailer.recycle(outcome.lines);
                // Then a slice of the read-back (none in the first poll: the tail first).
                ingest.derived.coverage = tailer.read_back(&mut ingest, now);
                let reading_back = tailer.reading_back();
                let more = (
                    outcome.problems,
                    outcome.followed,
                    outcome.behind,
                    reading_back,
                );
                (ingest, more, lines)
            });
            // The reader panicked: its state is gone; the next read starts over at the tails.
            let (ingest, (problems, followed, behind, reading_back), lines) =
                task.await.map_err(|e| format!("log reader failed: {e}"))?;
            let settled = !matches!(ingest.derived.coverage, Coverage::ReadingBack { .. });
            let problem = summarize(&problems);
            let unknown = problem.is_some() && followed == 0;
            Ok(SourceRead {
                ingest,
                lines,
                problem: problem.map(|p| (p, Some(self.retry))),
                unknown,
                keep_figures: false,
                behind: behind || reading_back,
                settled,
                reading_back,
            })
        })
    }
}

#[cfg(test)]
pub(in crate::collect::logs) mod tests {
    use super::*;
    use std::io::Write;

    fn text_of(batch: &LineBatch) -> Vec<String> {
        batch
            .iter()
            .map(|(bytes, _, _)| String::from_utf8_lossy(bytes).into_owned())
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
        let mut tailer = Tailer::new(
            vec![path.display().to_string()],
            crate::config::DEFAULT_READ_BACK,
        );
        let outcome = tailer.poll();
        // Shown, not counted: the read-back counts them with the lines before.
        assert!(outcome.lines.is_empty());
        let lines = text_of(&outcome.shown);
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
        let mut tailer = Tailer::new(
            vec![path.display().to_string()],
            crate::config::DEFAULT_READ_BACK,
        );
        let lines = text_of(&tailer.poll().shown);
        assert_eq!(
            lines.len(),
            2,
            "{:?}",
            lines.iter().map(|l| l.len()).collect::<Vec<_>>()
        );
        assert_eq!(lines[1], "last line");
    }

    /// 12 MiB in lines of 1 KiB: one and a half polls' worth.
    pub(in crate::collect::logs) fn append_12_mib(path: &Path) {
        let line = "y".repeat(1023) + "\n";
        let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
        for _ in 0..(12 * 1024) {
            file.write_all(line.as_bytes()).unwrap();
        }
    }

    #[test]
    fn a_poll_reads_at_most_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flood.log");
        File::create(&path).unwrap();
        let mut tailer = Tailer::new(
            vec![path.display().to_string()],
            crate::config::DEFAULT_READ_BACK,
        );
        assert!(tailer.poll().lines.is_empty());
        append_12_mib(&path);
        let first = tailer.poll();
        assert_eq!(first.lines.len(), 8 * 1024);
        assert!(first.behind, "more is waiting");
        let second = tailer.poll();
        assert_eq!(second.lines.len(), 4 * 1024);
        assert!(!second.behind);
    }

    /// Read back for the record: a stack trace's lines go with their message's second
    /// (as when they are read live, after it), lines the record counted are left out, and
    /// the lines shown from the tail are counted by the read-back, not again.
    #[test]
    fn the_read_back_tallies_for_the_record_what_it_has_not_counted() {
        use crate::collect::logs::RecordFrom;
        use crate::collect::logs::metrics::Derived;
        use crate::collect::logs::tally::Tally;
        use chrono::SecondsFormat;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        let now = Utc::now();
        let second = |back: i64| DateTime::from_timestamp(now.timestamp() - back, 0).unwrap();
        let ts = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
        let text = format!(
            "{} INFO counted before\n{} ERROR payment declined\n    at shop.Pay.charge\n    at shop.Api.handle\n{} INFO next\n",
            ts(second(30)),
            ts(second(20) + chrono::Duration::milliseconds(250)),
            ts(second(10)),
        );
        std::fs::write(&path, text).unwrap();
        let mut tailer = Tailer::new(
            vec![path.display().to_string()],
            crate::config::DEFAULT_READ_BACK,
        );
        let mut ingest = Ingest {
            name: "app".into(),
            error_pattern: regex::Regex::new("(?i)error").unwrap(),
            all_levels: false,
            derived: Derived::new(&[]),
            tally: Some(Tally::new(RecordFrom {
                counted_until: Some(second(30)),
                window_start: second(3600),
            })),
        };
        let outcome = tailer.poll();
        let shown = ingest.shown(outcome.shown.iter(), Format::Text, now);
        assert_eq!(shown.len(), 5);
        assert!(shown.iter().all(|l| l.tallied), "the read-back counts them");
        while tailer.read_back(&mut ingest, now) != Coverage::Complete {}
        let counts = ingest.tally.as_mut().unwrap().take();
        let got: Vec<(DateTime<Utc>, u32, u32)> =
            counts.iter().map(|c| (c.at, c.lines, c.errors)).collect();
        assert_eq!(got, [(second(20), 3, 1), (second(10), 1, 0)]);
        assert_eq!(
            counts[0].newest,
            second(20) + chrono::Duration::milliseconds(250)
        );
    }
}
