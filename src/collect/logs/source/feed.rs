//! The queue between a source's producer task and the collector's poll: what every kind
//! that delivers lines by itself (a local process, a host's SSH streams, the Docker
//! engine) puts its [`Event`]s into.
//!
//! A [`Feed`] runs its producer in its own task; the producer queues events through an
//! [`Outbox`], bounded by bytes: when the queue is full `send` waits, so a process's pipe
//! (or SSH flow control) holds the rest and nothing is dropped. `drain` takes what came
//! since the last poll; dropping the feed stops the producer (and kills its process).

use super::files::START_TAIL_LINES;
use super::readback::{Backlog, ReadBack};
use super::remote::{ChunkError, read_chunk};
use super::{LineSource, Read as SourceRead};
use crate::collect::blocking::Worker;
use crate::collect::logs::Ingest;
use crate::collect::logs::metrics::Coverage;
use crate::collect::logs::parse::{Format, MAX_LINE_BYTES};
use crate::model::backoff::Backoff;
use crate::transport::Transport;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Bytes of output queued between the reading task and `poll` at most.
pub(crate) const QUEUE_BYTES: usize = 16 * 1024 * 1024;
pub(crate) const MIN_BACKOFF: Duration = Duration::from_secs(1);
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// A log source's restarts: 1 s doubling to 60 s.
pub(crate) fn source_backoff() -> Backoff {
    Backoff::new(MIN_BACKOFF, MAX_BACKOFF)
}
/// Queue cost of an event besides its text.
pub(super) const EVENT_OVERHEAD: usize = 64;

/// One line as read: at most `MAX_LINE_BYTES` bytes, plus how many more were cut.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawLine {
    pub bytes: Vec<u8>,
    pub dropped: u64,
    /// When the line was written, if its transport says so (the Docker engine's stamp);
    /// the line's own time, when it names one, still wins.
    pub at: Option<DateTime<Utc>>,
}

impl RawLine {
    /// A line from a stream, cut to what a log line keeps (counting the bytes cut).
    pub fn cut(mut bytes: Vec<u8>) -> RawLine {
        let dropped = bytes.len().saturating_sub(MAX_LINE_BYTES) as u64;
        bytes.truncate(MAX_LINE_BYTES);
        RawLine {
            bytes,
            dropped,
            at: None,
        }
    }
}

/// What a producer tells the collector's poll, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A run started.
    Started,
    /// A line of stdout.
    Line(RawLine),
    /// Lines that came together (a container's log frames already arrived).
    Lines(Vec<RawLine>),
    /// A line of stderr.
    Stderr(String),
    /// The process ended, or could not be started; the next try is in `retry`.
    Down { message: String, retry: Duration },
    /// A problem that lasts until the source says it is over (`None`), whatever else comes
    /// (a remote glob that matches nothing).
    Lasting(Option<String>),
    /// A file on an SSH host is followed from `end` on: what comes before is the
    /// collector's to read back.
    Backlog(RemoteBacklog),
    /// What was read of the window was cut, in a few words (said in every figure).
    Partial(String),
    /// The read-back stopped short of where the record's count reaches: lines older than
    /// `oldest` were not counted (the record keeps the stretch as partial; see `tally`).
    CountCut(CountCut),
    /// A line of the window read back, newest first (journald): counted, and the newest
    /// ones shown.
    Back(RawLine),
    /// The window's read-back is over: the figures are complete (or partial, if it was
    /// cut).
    BackEnd,
}

/// Where a producer's own read-back stopped (see [`Event::CountCut`]).
#[derive(Clone, Debug, PartialEq)]
pub struct CountCut {
    /// The oldest line counted (or now, if none was).
    pub oldest: DateTime<Utc>,
    /// Bytes read back.
    pub read: u64,
    /// What stopped it ("the read_back cap of 1.0 MiB").
    pub why: String,
}

/// How a feed's producer is started: what its collector knows by its first read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Start {
    /// Read once (`check`).
    pub one_shot: bool,
    /// Lines back to this time are still to be counted (see [`LineSource::reach`]).
    pub since: Option<DateTime<Utc>>,
    /// Read once: a producer that reads a backlog itself stops by this moment, saying
    /// what it did not read ([`Event::Partial`]), a little before the one-shot read's own
    /// limit.
    pub until: Option<Instant>,
}

/// A producer's own limit in a one-shot read comes this long before the read's, so what
/// it says of a cut arrives before the read ends.
pub(crate) const PRODUCER_MARGIN: Duration = Duration::from_secs(1);

/// What a file on an SSH host held before following started.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RemoteBacklog {
    pub path: String,
    pub inode: String,
    /// Where following starts (a line starts there).
    pub end: u64,
    /// The file's modification time, for lines that name no time.
    pub modified: std::time::SystemTime,
    /// The file's last lines, from `end` on, are on their way (not in a one-shot read,
    /// which reads the file back to its end instead).
    pub tail_follows: bool,
}

impl Event {
    pub(super) fn cost(&self) -> usize {
        EVENT_OVERHEAD
            + match self {
                Event::Line(line) | Event::Back(line) => line.bytes.len(),
                Event::Lines(lines) => lines.iter().map(|l| l.bytes.len() + 16).sum(),
                Event::Stderr(text) | Event::Down { message: text, .. } => text.len(),
                Event::Lasting(text) => text.as_ref().map_or(0, String::len),
                Event::Backlog(backlog) => backlog.path.len(),
                Event::Partial(text) => text.len(),
                Event::CountCut(cut) => cut.why.len(),
                Event::Started | Event::BackEnd => 0,
            }
    }
}

/// A producer running in its own task, with the queue of what it produced.
pub struct Feed {
    rx: mpsc::UnboundedReceiver<(Event, u32)>,
    budget: Arc<Semaphore>,
    task: JoinHandle<()>,
}

impl Feed {
    /// Runs `producer` in its own task (needs a tokio runtime); what it sends through its
    /// [`Outbox`] is queued for [`Feed::drain`].
    pub(crate) fn from_producer<F, Fut>(producer: F) -> Self
    where
        F: FnOnce(Outbox) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (tx, rx) = mpsc::unbounded_channel();
        let budget = Arc::new(Semaphore::new(QUEUE_BYTES));
        let outbox = Outbox {
            tx,
            budget: budget.clone(),
        };
        let task = tokio::spawn(producer(outbox));
        Feed { rx, budget, task }
    }

    /// What was produced since the last call, without waiting: at most about
    /// `QUEUE_BYTES` of it.
    pub fn drain(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        let mut taken = 0;
        while taken < QUEUE_BYTES {
            match self.rx.try_recv() {
                Ok((event, permits)) => {
                    self.budget.add_permits(permits as usize);
                    taken += permits as usize;
                    events.push(event);
                }
                Err(_) => break,
            }
        }
        events
    }

    /// Waits for the first output (`limit` at most), and takes what came with it: for a
    /// producer that reads its window back itself, whose first read shows what came first
    /// rather than waiting for the read-back.
    pub(crate) async fn first(&mut self, limit: Duration) -> Vec<Event> {
        let mut events = Vec::new();
        if let Ok(Some((event, permits))) = tokio::time::timeout(limit, self.rx.recv()).await {
            self.budget.add_permits(permits as usize);
            events.push(event);
        }
        events.extend(self.drain());
        events
    }

    /// Waits for the first output to settle: until `quiet` passes without anything new
    /// after something came, the run ends, or `limit` passes. A remote file's backlog
    /// may promise its tail: then the wait goes on until a line comes, however slow the
    /// host is to start following (the first read shows the newest lines at once).
    pub(crate) async fn settle(&mut self, quiet: Duration, limit: Duration) -> Vec<Event> {
        let deadline = Instant::now() + limit;
        let mut events: Vec<Event> = Vec::new();
        loop {
            let tail_promised = events
                .iter()
                .any(|e| matches!(e, Event::Backlog(b) if b.tail_follows))
                && !events
                    .iter()
                    .any(|e| matches!(e, Event::Line(_) | Event::Lines(_)));
            let wait = if events.is_empty() || tail_promised {
                deadline.saturating_duration_since(Instant::now())
            } else {
                quiet.min(deadline.saturating_duration_since(Instant::now()))
            };
            match tokio::time::timeout(wait, self.rx.recv()).await {
                Ok(Some((event, permits))) => {
                    self.budget.add_permits(permits as usize);
                    let down = matches!(event, Event::Down { .. });
                    events.push(event);
                    events.extend(self.drain());
                    if down || events.iter().any(|e| matches!(e, Event::Down { .. })) {
                        return events;
                    }
                }
                Ok(None) | Err(_) => return events,
            }
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        // Dropping the task's future drops the process handle, which kills it.
        self.task.abort();
    }
}

/// Where a producer puts its events (see [`Feed::from_producer`]).
pub struct Outbox {
    tx: mpsc::UnboundedSender<(Event, u32)>,
    budget: Arc<Semaphore>,
}

impl Outbox {
    /// Queues an event, waiting for room. False once nobody is listening.
    pub async fn send(&self, event: Event) -> bool {
        let permits = event.cost().min(QUEUE_BYTES) as u32;
        match self.budget.acquire_many(permits).await {
            Ok(p) => p.forget(),
            Err(_) => return false,
        }
        self.tx.send((event, permits)).is_ok()
    }

    /// Says the source is down, and waits the backoff's next wait. False once nobody is
    /// listening.
    pub(crate) async fn down_for(&self, message: String, backoff: &mut Backoff) -> bool {
        let wait = backoff.next_wait();
        if !self
            .send(Event::Down {
                message,
                retry: wait,
            })
            .await
        {
            return false;
        }
        tokio::time::sleep(wait).await;
        true
    }
}

/// The first read of a feed waits this long for its first output to settle (so a
/// one-shot `check` sees the backlog)...
const SETTLE_QUIET: Duration = Duration::from_millis(300);
/// ...but no longer than this...
const SETTLE_LIMIT: Duration = Duration::from_secs(2);
/// ...or this on a remote host (connecting, signing in and a login shell come first).
const SETTLE_LIMIT_REMOTE: Duration = Duration::from_secs(10);

/// A line source over a [`Feed`]: what its producer said, in order, turned into lines
/// and the source's health.
pub(crate) struct FeedSource {
    format: Format,
    label: String,
    /// The SSH host the producer works on (`None` here): while it is down, its own line
    /// says what is wrong.
    remote: Option<Transport>,
    /// Used on the first read (it needs the runtime).
    /// Told how (see [`Start`]).
    start: Option<Box<dyn FnOnce(Start) -> Feed + Send>>,
    /// Lines back to this time are still to be counted, for the start.
    since: Option<DateTime<Utc>>,
    /// Its run ends by itself when it is read once (journald without `--follow`).
    ends_when_read_once: bool,
    feed: Option<Feed>,
    /// A run has started at least once.
    ever_started: bool,
    /// A line has come at least once.
    ever_read: bool,
    /// What is wrong now, with the retry delay if the producer is down.
    problem: Option<(String, Option<Duration>)>,
    /// A problem the source itself says is over (see `Event::Lasting`).
    lasting: Option<String>,
    /// Its first run ends by itself (a command; not a follower like journald): a one-shot
    /// read reads that run to its end.
    ends: bool,
    /// Read once (`check`): until this deadline at most (see [`LineSource::one_shot`]).
    one_shot: Option<(Instant, Duration)>,
    /// The first run ended, in a one-shot read: later events belong to a rerun.
    run_ended: bool,
    /// Files on the SSH host whose lines before following started are read back.
    back: Option<RemoteReadBack>,
    /// Read once (`check`) within this deadline: the read-back's time limit.
    one_shot_until: Option<Instant>,
    /// The read-back's byte cap (files on an SSH host).
    read_back: u64,
    /// What the producer said was cut of the window (see [`Event::Partial`]).
    partial: Option<String>,
    /// Parses the lines off the executor, always on the same thread (see `blocking`).
    parser: Worker<()>,
    /// The producer reads the window back itself first ([`Event::Back`]): how far.
    own_back: Option<OwnBack>,
}

/// A window read back by the producer (journald): newest first, until [`Event::BackEnd`].
struct OwnBack {
    pending: bool,
    /// Bytes read back so far, of at most `cap`.
    read: u64,
    cap: u64,
    /// The newest lines read back were shown in the tail.
    shown: bool,
}

impl FeedSource {
    /// A source whose feed `start` starts at the first read; `label` names it in a
    /// complaint on stderr.
    pub fn new(
        format: Format,
        label: String,
        remote: Option<Transport>,
        start: impl FnOnce(Start) -> Feed + Send + 'static,
    ) -> Self {
        FeedSource {
            format,
            label,
            remote,
            start: Some(Box::new(start)),
            since: None,
            ends_when_read_once: false,
            feed: None,
            ever_started: false,
            ever_read: false,
            problem: None,
            lasting: None,
            ends: false,
            one_shot: None,
            run_ended: false,
            back: None,
            one_shot_until: None,
            read_back: crate::config::DEFAULT_READ_BACK,
            partial: None,
            parser: Worker::new(|| ()),
            own_back: None,
        }
    }

    /// The producer reads the window back itself first, at most `cap` bytes of it: the
    /// figures say "reading back" until it says it is over.
    pub(crate) fn reads_back_first(mut self, cap: u64) -> Self {
        self.own_back = Some(OwnBack {
            pending: true,
            read: 0,
            cap,
            shown: false,
        });
        self
    }

    /// Reads back at most `bytes` of the files the producer reports a backlog of.
    pub(crate) fn read_back(mut self, bytes: u64) -> Self {
        self.read_back = bytes;
        self
    }

    /// The producer's first run ends by itself (a command): a one-shot read reads it to
    /// its end rather than to the first quiet moment.
    pub fn ends(mut self) -> Self {
        self.ends = true;
        self
    }

    /// The producer's first run ends by itself when the source is read once.
    pub(crate) fn ends_when_read_once(mut self) -> Self {
        self.ends_when_read_once = true;
        self
    }

    fn start_with(&self) -> Start {
        Start {
            one_shot: self.one_shot_until.is_some(),
            since: self.since,
            until: self
                .one_shot_until
                .map(|until| until.checked_sub(PRODUCER_MARGIN).unwrap_or(until)),
        }
    }

    /// A one-shot read of a source whose run ends: what came since the last read, waiting
    /// for the first event (up to the deadline); nothing once the run ended.
    async fn events_to_end(&mut self, deadline: Instant) -> Vec<Event> {
        if self.run_ended {
            return Vec::new();
        }
        if self.feed.is_none()
            && let Some(start) = self.start.take()
        {
            let how = Start {
                one_shot: true,
                ..self.start_with()
            };
            self.feed = Some(start(how));
        }
        let Some(feed) = self.feed.as_mut() else {
            return Vec::new();
        };
        let mut events = Vec::new();
        let wait = deadline.saturating_duration_since(Instant::now());
        if let Ok(Some((event, permits))) = tokio::time::timeout(wait, feed.rx.recv()).await {
            feed.budget.add_permits(permits as usize);
            events.push(event);
        }
        events.extend(feed.drain());
        events
    }

    async fn events(&mut self) -> Vec<Event> {
        match &mut self.feed {
            Some(feed) => feed.drain(),
            None => {
                let start = self
                    .start
                    .take()
                    .expect("a feed source has its starter until it starts");
                let limit = match self.remote {
                    Some(_) => SETTLE_LIMIT_REMOTE,
                    None => SETTLE_LIMIT,
                };
                let how = self.start_with();
                let reads_back = self.own_back.is_some();
                let feed = self.feed.insert(start(how));
                if reads_back {
                    feed.first(limit).await
                } else {
                    feed.settle(SETTLE_QUIET, limit).await
                }
            }
        }
    }
}

impl LineSource for FeedSource {
    fn reach(&mut self, since: DateTime<Utc>) {
        self.since = Some(since);
    }

    fn one_shot(&mut self, limit: Duration) {
        if self.ends || self.ends_when_read_once {
            self.one_shot = Some((Instant::now() + limit, limit));
        }
        self.one_shot_until = Some(Instant::now() + limit);
    }

    fn read(&mut self, mut ingest: Ingest) -> BoxFuture<'_, Result<SourceRead, String>> {
        Box::pin(async move {
            let events = match self.one_shot {
                Some((deadline, _)) => self.events_to_end(deadline).await,
                None => self.events().await,
            };
            let mut raw = Vec::new();
            // Lines read back by the producer, newest first.
            let mut back = Vec::new();
            let mut complained = false;
            let ended = format!("{} ended", self.label);
            for event in events {
                if self.run_ended {
                    // A one-shot read stops at the first run's end: the rest is a rerun.
                    break;
                }
                match event {
                    Event::Down { message, .. } if self.one_shot.is_some() && message == ended => {
                        self.run_ended = true;
                    }
                    Event::Down { message, retry } if self.one_shot.is_some() => {
                        self.run_ended = true;
                        self.problem = Some((message, Some(retry)));
                    }
                    Event::Started => {
                        self.ever_started = true;
                        self.problem = None;
                    }
                    Event::Line(line) => raw.push(line),
                    Event::Lines(lines) => raw.extend(lines),
                    Event::Stderr(text) => {
                        self.problem = Some((format!("{}: {text}", self.label), None));
                        complained = true;
                    }
                    Event::Down { message, retry } => self.problem = Some((message, Some(retry))),
                    Event::Lasting(problem) => self.lasting = problem,
                    Event::Partial(note) => self.partial = Some(note),
                    Event::CountCut(cut) => {
                        // Bytes of the whole window are not known: what was read is said.
                        if let Some(tally) = &mut ingest.tally {
                            tally.cut(cut.oldest, cut.read, 0, &cut.why);
                        }
                    }
                    Event::Back(line) => {
                        if let Some(own) = &mut self.own_back {
                            own.read += line.bytes.len() as u64 + line.dropped + 1;
                        }
                        back.push(line);
                    }
                    Event::BackEnd => {
                        if let Some(own) = &mut self.own_back {
                            own.pending = false;
                        }
                    }
                    Event::Backlog(backlog) => {
                        if let Some(transport) = &self.remote {
                            let (until, cap) = (self.one_shot_until, self.read_back);
                            self.back
                                .get_or_insert_with(|| {
                                    RemoteReadBack::new(transport.clone(), until, cap)
                                })
                                .add(backlog);
                        }
                    }
                }
            }
            // Output in a later poll, without a new complaint: the complaint on stderr is over.
            // (Within one poll the order of stdout and stderr lines says nothing: two pipes.)
            if !raw.is_empty()
                && !complained
                && self
                    .problem
                    .as_ref()
                    .is_some_and(|(_, retry)| retry.is_none())
            {
                self.problem = None;
            }
            let mut problem = self
                .problem
                .clone()
                .or_else(|| self.lasting.clone().map(|p| (p, None)));
            self.ever_read |= !raw.is_empty() || !back.is_empty();
            // Counts are known while the process runs (a quiet unit has no lines to count) or
            // once it has delivered lines; not when it never ran, or only died without a line.
            let mut down = problem.as_ref().is_some_and(|(_, retry)| retry.is_some());
            // While the host is not connected, its own line says what is wrong and when it is
            // tried again (counting down at every poll), and the figures stay as they were, with
            // their age, as other sources on the host keep theirs.
            let mut host_down = false;
            if let Some(Transport::Ssh(host)) = &self.remote {
                let status = host.current_status();
                if !status.is_up() {
                    problem = Some((status.describe(host.name()), None));
                    down = true;
                    host_down = true;
                }
            }
            let unknown = (!self.ever_started && problem.is_some())
                || ((down || self.lasting.is_some()) && !self.ever_read);
            let mut settled = true;
            let mut reading_back = false;
            if let Some(own) = &self.own_back {
                ingest.derived.coverage = if own.pending {
                    Coverage::ReadingBack {
                        read: own.read,
                        total: own.cap,
                    }
                } else {
                    Coverage::Complete
                };
                reading_back = own.pending;
            }
            if let Some((deadline, limit)) = self.one_shot {
                let out_of_time = Instant::now() >= deadline;
                settled = self.run_ended || out_of_time;
                if out_of_time && !self.run_ended {
                    ingest.derived.coverage = Coverage::Partial(format!(
                        "partial: {} was still writing after {}s; what came later is not counted",
                        self.label,
                        limit.as_secs()
                    ));
                }
            }
            if let Some(note) = &self.partial {
                ingest.derived.coverage = Coverage::Partial(note.clone());
            }
            let format = self.format;
            // The newest lines read back are shown (oldest first), from the first read that
            // brings any (a later one's are older: the tail would go back in time); every
            // one is counted.
            let show = match &mut self.own_back {
                Some(own) if !own.shown && !back.is_empty() => {
                    own.shown = true;
                    START_TAIL_LINES.min(back.len())
                }
                _ => 0,
            };
            let task = self.parser.run(move |_| {
                let now = Utc::now();
                let mut lines = ingest.shown(
                    back[..show]
                        .iter()
                        .rev()
                        .map(|l| (l.bytes.as_slice(), l.dropped, l.at)),
                    format,
                    now,
                );
                ingest.count_dated(
                    back.iter().map(|l| (l.bytes.as_slice(), l.dropped, l.at)),
                    format,
                    now,
                );
                lines.extend(ingest.lines(
                    raw.iter().map(|l| (l.bytes.as_slice(), l.dropped, l.at)),
                    format,
                    now,
                ));
                (ingest, lines)
            });
            let (mut ingest, lines) = task.await.map_err(|e| format!("log parser failed: {e}"))?;
            // Then a slice of the files' read-back (none in the first read: the tail first).
            if let Some(back) = &mut self.back {
                ingest = back.read(ingest).await?;
                reading_back = back.pending();
                settled &= !matches!(ingest.derived.coverage, Coverage::ReadingBack { .. });
            }
            Ok(SourceRead {
                ingest,
                lines,
                problem,
                unknown,
                keep_figures: host_down,
                behind: reading_back,
                settled,
                reading_back,
            })
        })
    }
}

/// The read-back of files on an SSH host (see `readback`): their chunks are fetched
/// through the host's connection, newest first, and counted off the executor.
pub(crate) struct RemoteReadBack {
    transport: Transport,
    files: Vec<(RemoteBacklog, Option<Backlog>)>,
    read_back: ReadBack,
}

impl RemoteReadBack {
    fn new(transport: Transport, one_shot_until: Option<Instant>, max_bytes: u64) -> Self {
        let mut read_back = ReadBack::new(max_bytes);
        if let Some(until) = one_shot_until {
            read_back.one_shot(until.saturating_duration_since(Instant::now()));
        }
        RemoteReadBack {
            transport,
            files: Vec::new(),
            read_back,
        }
    }

    fn add(&mut self, file: RemoteBacklog) {
        self.read_back.total += file.end;
        let backlog = Backlog::new(file.end, DateTime::<Utc>::from(file.modified));
        self.files.push((file, Some(backlog)));
    }

    fn pending(&self) -> bool {
        self.files.iter().any(|(_, b)| b.is_some())
    }

    /// Reads back a slice, counting it through `ingest` (sets its coverage). An error
    /// says the counting task died.
    async fn read(&mut self, mut ingest: Ingest) -> Result<Ingest, String> {
        let now = Utc::now();
        let figures_from = ingest.figures_reach(now);
        if self.pending() && self.read_back.begun() {
            let mut this_slice = 0;
            'files: for (file, slot) in &mut self.files {
                while let Some(backlog) = slot {
                    if this_slice >= self.read_back.slice {
                        break 'files;
                    }
                    if self.read_back.capped(&mut ingest, backlog, figures_from) {
                        *slot = None;
                        continue;
                    }
                    let (at, len) = self.read_back.next_chunk(backlog);
                    let what = format!("{}:{}", self.transport.name(), file.path);
                    let bytes =
                        match read_chunk(&self.transport, &file.path, &file.inode, at, len).await {
                            Ok(bytes) => bytes,
                            // Again at the next read, when the host is back.
                            Err(ChunkError::HostDown) => break 'files,
                            Err(ChunkError::Replaced) => {
                                let why = format!("{what} was replaced while it was read back");
                                self.read_back.record_cut(&mut ingest, backlog, &why);
                                self.read_back.cut = Some(format!("partial: {why}"));
                                *slot = None;
                                continue;
                            }
                            Err(ChunkError::Failed(why)) => {
                                let why = format!("cannot read back {what}: {why}");
                                self.read_back.record_cut(&mut ingest, backlog, &why);
                                self.read_back.cut = Some(format!("partial: {why}"));
                                *slot = None;
                                continue;
                            }
                        };
                    this_slice += len;
                    let mut taken = slot.take().expect("a backlog is being read");
                    let mut read_back = std::mem::take(&mut self.read_back);
                    let end = file.end;
                    let task = tokio::task::spawn_blocking(move || {
                        let more = read_back.count_chunk(
                            &mut ingest,
                            &mut taken,
                            &bytes,
                            at,
                            &what,
                            end,
                            now,
                        );
                        (ingest, taken, read_back, more)
                    });
                    let (back, taken, read_back, more) =
                        task.await.map_err(|e| format!("log parser failed: {e}"))?;
                    ingest = back;
                    self.read_back = read_back;
                    if more {
                        *slot = Some(taken);
                    }
                }
            }
        }
        let figures_pending = self
            .files
            .iter()
            .filter_map(|(_, b)| b.as_ref())
            .any(|b| b.carry.at >= figures_from);
        ingest.derived.coverage = self.read_back.coverage(figures_pending);
        Ok(ingest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backlog() -> Event {
        backlog_with(true)
    }

    fn backlog_with(tail_follows: bool) -> Event {
        Event::Backlog(RemoteBacklog {
            path: "/var/log/app.log".into(),
            inode: "12".into(),
            end: 100,
            modified: std::time::SystemTime::UNIX_EPOCH,
            tail_follows,
        })
    }

    fn line(text: &str) -> Event {
        Event::Line(RawLine::cut(text.as_bytes().to_vec()))
    }

    /// A host slow to start following after it measured the file (a loaded machine, a
    /// slow link) still shows the tail in the first read, not an empty pane.
    #[tokio::test(start_paused = true)]
    async fn a_backlog_waits_for_its_tail_past_the_quiet_time() {
        let mut feed = Feed::from_producer(|out: Outbox| async move {
            out.send(backlog()).await;
            tokio::time::sleep(Duration::from_secs(3)).await;
            out.send(line("newest")).await;
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
        let events = feed
            .settle(Duration::from_millis(300), Duration::from_secs(10))
            .await;
        assert_eq!(events, vec![backlog(), line("newest")]);
    }

    /// Anything else that came is settled by the quiet time alone: a command's start, or
    /// the backlog of a one-shot read (which follows no tail: it reads to the end).
    #[tokio::test(start_paused = true)]
    async fn other_output_settles_after_the_quiet_time() {
        for first in [Event::Started, backlog_with(false)] {
            let sent = first.clone();
            let mut feed = Feed::from_producer(|out: Outbox| async move {
                out.send(sent).await;
                tokio::time::sleep(Duration::from_secs(3)).await;
                out.send(line("late")).await;
            });
            let events = feed
                .settle(Duration::from_millis(300), Duration::from_secs(10))
                .await;
            assert_eq!(events, vec![first]);
        }
    }
}
