//! The record: watchpost's own SQLite database of one deployment's watch window.
//!
//! It holds every figure at a bounded resolution for the whole window, every alert
//! transition, a snapshot of every figure at each checkpoint, the notes typed with `n`,
//! and the count of log lines, errors and critical lines. It lives in
//! `<data dir>/watchpost/<deployment>.sqlite` (XDG: `~/.local/share/watchpost/`) unless
//! `--record PATH` says otherwise.
//!
//! Only one process writes: it holds an exclusive `flock` on `<record>.lock` (which also
//! holds its pid). A second watchpost on the same record is a viewer: it runs its own
//! collectors for the live panes, takes its alerts, notes, timeline and snapshots from the
//! record every [`VIEWER_REFRESH`], says "viewer (record held by pid N)" in the header, and
//! takes over as the writer when the lock comes free.
//!
//! Restarting resumes the window: a `start = "now"` is the start remembered by the record;
//! figure histories (sparklines), open and recent alerts, notes and the timeline are
//! loaded back. A window that is over, or a new `version`, with `start = "now"`, starts a
//! new record; the old one is kept beside it as `<deployment>-<old start>.sqlite`.

pub mod report;
pub mod store;

use crate::model::HISTORY_POINTS;
use crate::model::figure::{Figure, Severity, Value};
use crate::model::rule::Rule;
use crate::rules::engine::{AlertPhase, Condition};
use crate::state::alerts::{Alert, AlertEvent, AlertState, EventKind};
use crate::state::{AppState, FigureState, Note, Window};
use chrono::{DateTime, Duration, Utc};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
pub use store::{Reader, RecordMeta, Snapshot, SnapshotFigure};

/// How often a viewer reads the record again.
pub(crate) const VIEWER_REFRESH: std::time::Duration = std::time::Duration::from_secs(2);

/// `<data dir>/watchpost/<deployment>.sqlite`.
pub fn default_path(deployment: &str) -> Option<PathBuf> {
    Some(
        dirs::data_dir()?
            .join("watchpost")
            .join(format!("{}.sqlite", file_safe(deployment))),
    )
}

/// A deployment name as a file name: letters, digits, `-`, `_` and `.` kept, the rest `_`.
pub(crate) fn file_safe(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let safe = safe.trim_start_matches('.').to_string();
    if safe.is_empty() {
        "deployment".into()
    } else {
        safe
    }
}

pub fn lock_path(record: &Path) -> PathBuf {
    let mut name = record.as_os_str().to_os_string();
    name.push(".lock");
    PathBuf::from(name)
}

/// The writer's lock: an exclusive `flock` on `<record>.lock`, released when dropped (or
/// when the process dies, however it dies).
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

impl Lock {
    /// Takes the lock, or says which pid holds it.
    pub(crate) fn try_take(record: &Path) -> std::io::Result<Result<Lock, Option<u32>>> {
        let path = lock_path(record);
        private_dir_for(&path)?;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .mode(PRIVATE_FILE)
            .open(&path)?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0)?;
                write!(file, "{}", std::process::id())?;
                file.flush()?;
                Ok(Ok(Lock { _file: file }))
            }
            Err(std::fs::TryLockError::WouldBlock) => Ok(Err(holder(record))),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

/// The record holds log lines (tokens, customer data), alert texts and notes: its files
/// are the user's alone, and so are the directories watchpost makes for them.
pub(crate) const PRIVATE_FILE: u32 = 0o600;
pub(crate) const PRIVATE_DIR: u32 = 0o700;

/// Makes the directory a file goes in, private, where it does not exist yet (an existing
/// directory is the user's choice and is left as it is).
pub(crate) fn private_dir_for(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.exists() => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(PRIVATE_DIR)
            .create(dir),
        _ => Ok(()),
    }
}

/// Whether a writer holds the record now: its lock file is locked (a shared lock, taken
/// and given back at once, is refused while the writer holds its exclusive one).
pub(crate) fn writer_active(record: &Path) -> bool {
    match File::open(lock_path(record)) {
        Ok(file) => matches!(
            file.try_lock_shared(),
            Err(std::fs::TryLockError::WouldBlock)
        ),
        Err(_) => false,
    }
}

/// The pid written in the lock file (whoever holds it now or held it last).
pub fn holder(record: &Path) -> Option<u32> {
    let mut text = String::new();
    File::open(lock_path(record))
        .ok()?
        .read_to_string(&mut text)
        .ok()?;
    text.trim().parse().ok()
}

/// What the process is to the record.
pub enum Role {
    Writer { writer: store::Writer, lock: Lock },
    Viewer { holder: Option<u32> },
}

/// A record opened for a dashboard: the window it resumes and this process's role.
pub struct Opened {
    pub path: PathBuf,
    pub window: Window,
    pub role: Role,
    /// Where an earlier, finished window's record was moved to.
    pub archived: Option<PathBuf>,
}

/// How the writer is set up.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The deployment's `start` as configured ("now" or a time).
    pub start_is_now: bool,
    pub max_mb: u64,
    pub criteria: serde_json::Value,
    /// Maintenance silences as configured; resolved against the window's start.
    pub silences: Vec<crate::rules::notify::SilenceSpec>,
    pub commit_every: std::time::Duration,
}

/// Why the record could not be opened. `Display` is the line the dashboard and `run` show.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("record {}: {error}", .path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("record {}: {error}", .path.display())]
    Sql {
        path: PathBuf,
        error: rusqlite::Error,
    },
    /// A configured silence does not resolve against the window's start.
    #[error(transparent)]
    Silence(#[from] crate::rules::notify::SilenceError),
}

/// Opens the record at `path` for the window `configured` (built from the config at `now`):
/// takes the lock and starts the writer, or becomes a viewer. A remembered start wins over
/// `start = "now"`.
pub fn open(
    path: &Path,
    configured: &Window,
    settings: &Settings,
    now: DateTime<Utc>,
) -> Result<Opened, RecordError> {
    let io = |error: std::io::Error| RecordError::Io {
        path: path.to_path_buf(),
        error,
    };
    let sql = |error: rusqlite::Error| RecordError::Sql {
        path: path.to_path_buf(),
        error,
    };
    let lock = Lock::try_take(path).map_err(io)?;
    let lock = match lock {
        Ok(lock) => lock,
        Err(holder) => {
            let mut window = configured.clone();
            if let Ok(reader) = Reader::open(path)
                && let Ok(Some(meta)) = reader.meta()
            {
                window = window_from_meta(&meta, configured);
            }
            return Ok(Opened {
                path: path.to_path_buf(),
                window,
                role: Role::Viewer { holder },
                archived: None,
            });
        }
    };
    let mut conn = store::open_rw(path).map_err(sql)?;
    let mut window = configured.clone();
    let mut archived = None;
    if let Some(meta) = store::read_meta(&conn).map_err(sql)? {
        let length = Duration::seconds(meta.length_secs);
        let over = now >= meta.start + length;
        let new_version = meta.version != configured.version;
        if settings.start_is_now && (over || new_version) {
            // A new window: keep the old record beside the new one.
            let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
            drop(conn);
            let stamp = meta.start.format("%Y%m%dT%H%M%SZ");
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "record".into());
            let target = path.with_file_name(format!("{stem}-{stamp}.sqlite"));
            std::fs::rename(path, &target).map_err(io)?;
            for side in crate::model::sqlite_sidecars(path) {
                let _ = std::fs::remove_file(side);
            }
            archived = Some(target);
            conn = store::open_rw(path).map_err(sql)?;
        } else if settings.start_is_now {
            window.start = meta.start;
        }
    }
    let silences: Vec<crate::rules::notify::Silence> = settings
        .silences
        .iter()
        .map(|s| s.resolve(window.start))
        .collect::<Result<_, _>>()?;
    let bucket_secs = store::bucket_secs(window.length.num_seconds());
    let meta = RecordMeta {
        deployment: window.deployment.clone(),
        version: window.version.clone(),
        start: window.start,
        length_secs: window.length.num_seconds(),
        checkpoints: window.checkpoints.iter().map(|c| c.num_seconds()).collect(),
        bucket_secs,
        criteria: settings.criteria.clone(),
        silences: serde_json::to_value(&silences).unwrap_or_default(),
        max_mb: settings.max_mb,
    };
    store::write_meta(&conn, &meta).map_err(sql)?;
    let span = store::Span {
        start: window.start,
        length_secs: meta.length_secs,
        bucket_secs,
    };
    let writer = store::Writer::start(
        conn,
        path,
        span,
        settings.max_mb.saturating_mul(1024 * 1024),
        settings.commit_every,
    )
    .map_err(io)?;
    Ok(Opened {
        path: path.to_path_buf(),
        window,
        role: Role::Writer { writer, lock },
        archived,
    })
}

/// The window a record describes, with the configured deployment text where it is empty.
pub(crate) fn window_from_meta(meta: &RecordMeta, configured: &Window) -> Window {
    let mut window = Window::new(
        &meta.deployment,
        meta.start,
        Duration::seconds(meta.length_secs),
    );
    window.version = meta.version.clone();
    window.checkpoints = meta
        .checkpoints
        .iter()
        .map(|s| Duration::seconds(*s))
        .collect();
    if window.checkpoints.is_empty() {
        window.checkpoints = configured.checkpoints.clone();
    }
    window
}

/// One stretch of one alert at one severity, from the record's transitions.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    pub id: String,
    pub severity: Severity,
    pub condition: Condition,
    pub from: DateTime<Utc>,
    /// `None`: still firing at the end of the record.
    pub to: Option<DateTime<Utc>>,
    pub silenced: bool,
}

/// One alert from firing to resolved.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Incident {
    pub id: String,
    pub name: String,
    /// The worst reached.
    pub severity: Severity,
    pub priority: crate::model::rule::Priority,
    pub conditions: Vec<Condition>,
    pub began: DateTime<Utc>,
    pub fired: DateTime<Utc>,
    pub resolved: Option<DateTime<Utc>>,
    pub acknowledged: Option<DateTime<Utc>>,
    pub silenced: bool,
    pub flapping: bool,
    /// The value that made it fire, and the worst one seen.
    pub value: String,
    pub notified: bool,
}

/// The record's alert transitions replayed.
#[derive(Clone, Debug, Default)]
pub struct Replay {
    pub segments: Vec<Segment>,
    pub incidents: Vec<Incident>,
    /// Alerts open at the end: pending, firing, flapping.
    pub open: Vec<Alert>,
    /// Resolved ones, newest first.
    pub resolved: Vec<Alert>,
}

impl Replay {
    /// The engine phase of each open alert, to restore on start.
    pub fn phases(&self) -> Vec<(String, AlertPhase)> {
        self.open
            .iter()
            .map(|a| {
                let phase = match a.state {
                    AlertState::Pending => AlertPhase::Pending {
                        condition: a.condition,
                        since: a.began,
                    },
                    AlertState::Flapping if a.ok_now => AlertPhase::Ok,
                    AlertState::Firing | AlertState::Flapping => AlertPhase::Firing {
                        condition: a.condition,
                        since: a.since,
                        began: a.began,
                    },
                };
                (a.id.clone(), phase)
            })
            .collect()
    }
}

/// Replays alert transitions, oldest first.
pub fn replay(events: &[AlertEvent]) -> Replay {
    struct Open {
        alert: Alert,
        incident: Option<usize>,
        segment: Option<usize>,
    }
    let mut out = Replay::default();
    let mut open: BTreeMap<String, Open> = BTreeMap::new();
    let close_segment = |out: &mut Replay, o: &mut Open, at: DateTime<Utc>| {
        if let Some(s) = o.segment.take() {
            out.segments[s].to = Some(at);
        }
    };
    let open_segment = |out: &mut Replay, o: &mut Open, e: &AlertEvent| {
        out.segments.push(Segment {
            id: e.id.clone(),
            severity: e.severity,
            condition: e.condition,
            from: e.at,
            to: None,
            silenced: o.alert.silenced.is_some(),
        });
        o.segment = Some(out.segments.len() - 1);
    };
    for e in events {
        match e.kind {
            EventKind::Pending => {
                open.entry(e.id.clone()).or_insert_with(|| Open {
                    alert: alert_from(e, AlertState::Pending),
                    incident: None,
                    segment: None,
                });
            }
            EventKind::Cancelled => {
                if open
                    .get(&e.id)
                    .is_some_and(|o| o.alert.state == AlertState::Pending)
                {
                    open.remove(&e.id);
                }
            }
            EventKind::Fired => {
                let o = open.entry(e.id.clone()).or_insert_with(|| Open {
                    alert: alert_from(e, AlertState::Firing),
                    incident: None,
                    segment: None,
                });
                if o.alert.state != AlertState::Flapping {
                    let acknowledged = false;
                    o.alert = Alert {
                        acknowledged,
                        ..alert_from(e, AlertState::Firing)
                    };
                }
                o.alert.ok_now = false;
                o.alert.silenced = e.silenced.then(String::new);
                close_segment(&mut out, o, e.at);
                open_segment(&mut out, o, e);
                out.incidents.push(Incident {
                    id: e.id.clone(),
                    name: e.name.clone(),
                    severity: e.severity,
                    priority: e.priority,
                    conditions: vec![e.condition],
                    began: e.began,
                    fired: e.at,
                    resolved: None,
                    acknowledged: None,
                    silenced: e.silenced,
                    flapping: o.alert.state == AlertState::Flapping,
                    value: e.value.clone(),
                    notified: e.notify,
                });
                o.incident = Some(out.incidents.len() - 1);
            }
            EventKind::Changed => {
                let Some(o) = open.get_mut(&e.id) else {
                    continue;
                };
                let worse = e.severity.rank() > o.alert.severity.rank();
                o.alert.condition = e.condition;
                o.alert.severity = e.severity;
                o.alert.priority = e.priority;
                o.alert.reason = e.value.clone();
                if worse {
                    o.alert.acknowledged = false;
                }
                close_segment(&mut out, o, e.at);
                open_segment(&mut out, o, e);
                if let Some(i) = o.incident {
                    let inc = &mut out.incidents[i];
                    if !inc.conditions.contains(&e.condition) {
                        inc.conditions.push(e.condition);
                    }
                    if e.severity.rank() > inc.severity.rank() {
                        inc.severity = e.severity;
                        inc.value = e.value.clone();
                    }
                    inc.priority = inc.priority.min(e.priority);
                    inc.notified |= e.notify;
                }
            }
            EventKind::Resolved => {
                let Some(mut o) = open.remove(&e.id) else {
                    continue;
                };
                close_segment(&mut out, &mut o, e.at);
                if let Some(i) = o.incident.take() {
                    out.incidents[i].resolved = Some(e.at);
                }
                if o.alert.state == AlertState::Flapping {
                    o.alert.ok_now = true;
                    open.insert(e.id.clone(), o);
                } else {
                    o.alert.resolved_at = Some(e.at);
                    out.resolved.push(o.alert);
                }
            }
            EventKind::Acknowledged => {
                if let Some(o) = open.get_mut(&e.id) {
                    o.alert.acknowledged = true;
                    if let Some(i) = o.incident {
                        out.incidents[i].acknowledged.get_or_insert(e.at);
                    }
                }
            }
            // The alert waits for someone again; its incident keeps the time it was first
            // answered (the report's time to acknowledge).
            EventKind::Unacknowledged => {
                if let Some(o) = open.get_mut(&e.id) {
                    o.alert.acknowledged = false;
                }
            }
            EventKind::Flapping => {
                if !open.contains_key(&e.id)
                    && let Some(pos) = out
                        .resolved
                        .iter()
                        .rposition(|a| a.id == e.id && a.resolved_at == Some(e.at))
                {
                    // Resolved, then found flapping at the same moment: it stays listed.
                    let mut alert = out.resolved.remove(pos);
                    alert.resolved_at = None;
                    alert.ok_now = true;
                    open.insert(
                        e.id.clone(),
                        Open {
                            alert,
                            incident: None,
                            segment: None,
                        },
                    );
                }
                if let Some(o) = open.get_mut(&e.id) {
                    o.alert.state = AlertState::Flapping;
                    if let Some(i) = o.incident {
                        out.incidents[i].flapping = true;
                    } else if let Some(inc) = out.incidents.iter_mut().rev().find(|i| i.id == e.id)
                    {
                        inc.flapping = true;
                    }
                }
            }
            EventKind::FlapEnded => {
                let Some(o) = open.get_mut(&e.id) else {
                    continue;
                };
                if o.alert.ok_now {
                    let mut o = open.remove(&e.id).expect("present");
                    o.alert.resolved_at = Some(e.at);
                    o.alert.ok_now = false;
                    o.alert.state = AlertState::Firing;
                    out.resolved.push(o.alert);
                } else {
                    o.alert.state = AlertState::Firing;
                    o.alert.severity = o.alert.condition.severity();
                }
            }
            EventKind::Removed => {
                // Every alert of the subject closes; nothing resolved, nothing open.
                let gone: Vec<String> = open
                    .keys()
                    .filter(|id| crate::rules::engine::in_subject(id, &e.id))
                    .cloned()
                    .collect();
                for id in gone {
                    let mut o = open.remove(&id).expect("present");
                    close_segment(&mut out, &mut o, e.at);
                    if let Some(i) = o.incident.take() {
                        out.incidents[i].resolved = Some(e.at);
                    }
                    o.alert.resolved_at = Some(e.at);
                    o.alert.ok_now = false;
                    o.alert.reason = e.value.clone();
                    out.resolved.push(o.alert);
                }
            }
            EventKind::Silenced | EventKind::Unsilenced => {
                let Some(o) = open.get_mut(&e.id) else {
                    continue;
                };
                o.alert.silenced = (e.kind == EventKind::Silenced).then(String::new);
                if o.segment.is_some() {
                    close_segment(&mut out, o, e.at);
                    let mut e = e.clone();
                    e.severity = o.alert.severity;
                    e.condition = o.alert.condition;
                    open_segment(&mut out, o, &e);
                }
            }
        }
    }
    out.open = open.into_values().map(|o| o.alert).collect();
    out.resolved.reverse();
    out
}

fn alert_from(e: &AlertEvent, state: AlertState) -> Alert {
    Alert {
        id: e.id.clone(),
        name: e.name.clone(),
        state,
        condition: e.condition,
        severity: e.severity,
        priority: e.priority,
        since: e.since,
        began: e.began,
        resolved_at: None,
        acknowledged: false,
        reason: e.value.clone(),
        silenced: e.silenced.then(String::new),
        held_back: e.held_back,
        ok_now: false,
    }
}

/// The worst alert state in each checkpoint interval: `None` where the window has not got
/// to yet or watchpost recorded nothing; OK where it watched and nothing fired.
pub fn timeline(
    window: &Window,
    segments: &[Segment],
    observed: &[DateTime<Utc>],
    now: DateTime<Utc>,
) -> Vec<Option<Severity>> {
    window
        .intervals()
        .iter()
        .map(|(from, to)| {
            let (from, to) = (window.start + *from, window.start + *to);
            if from > now {
                return None;
            }
            let seen = observed.iter().any(|t| *t >= from && *t < to);
            let worst = segments
                .iter()
                .filter(|s| !s.silenced && s.from < to && s.to.is_none_or(|end| end > from))
                .map(|s| s.severity)
                .fold(None, |acc: Option<Severity>, s| {
                    Some(acc.map_or(s, |a| a.worst(s)))
                });
            match (seen, worst) {
                (_, Some(w)) => Some(w),
                (true, None) => Some(Severity::Ok),
                (false, None) => None,
            }
        })
        .collect()
}

/// What a record adds to a fresh state: figure histories (as bucket means, the last
/// [`HISTORY_POINTS`]), open and recent alerts, notes, snapshots, the timeline, and how far
/// log lines were counted. With `restore_engine`, open alerts are put back in the rule
/// engine so they resolve (or stay firing) without firing again.
pub fn load_into(
    reader: &Reader,
    state: &mut AppState,
    now: DateTime<Utc>,
    restore_engine: bool,
) -> rusqlite::Result<()> {
    let figures: HashMap<String, store::FigureInfo> = reader
        .figures()?
        .into_iter()
        .map(|f| (f.key.clone(), f))
        .collect();
    let recent = reader.recent_samples(HISTORY_POINTS)?;
    for (key, buckets) in &recent {
        let Some(info) = figures.get(key) else {
            continue;
        };
        let Some(last) = buckets.last() else {
            continue;
        };
        let history: VecDeque<(DateTime<Utc>, f64)> = buckets
            .iter()
            .filter_map(|b| b.mean().map(|m| (b.t, m)))
            .collect();
        let value = match (&last.text, last.last) {
            (Some(text), _) => Value::Text(text.clone()),
            (None, Some(v)) => Value::Number(v),
            (None, None) => Value::None,
        };
        let severity = last
            .worst()
            .map(Condition::severity)
            .unwrap_or(Severity::Unknown);
        let entry = state
            .figures
            .entry(key.clone())
            .or_insert_with(|| FigureState {
                figure: Figure {
                    id: key.clone(),
                    name: info.name.clone(),
                    value,
                    unit: info.unit.clone(),
                    severity,
                    detail: "from the record".into(),
                    error: None,
                    at: last.t,
                },
                history: VecDeque::new(),
                since: last.t,
                limits: [None, None],
            });
        // Recorded points first, then whatever this process has seen already.
        let mut merged = history;
        let first_live = entry.history.front().map(|(t, _)| *t);
        merged.retain(|(t, _)| first_live.is_none_or(|f| *t < f));
        merged.extend(entry.history.iter().copied());
        let extra = merged.len().saturating_sub(HISTORY_POINTS);
        merged.drain(..extra);
        entry.history = merged;
    }
    apply_view(state, &view(reader, &state.window, now)?);
    if restore_engine {
        let replayed = replay(&reader.alert_events()?);
        for (id, phase) in replayed.phases() {
            let rule = state.rules.get(&id).cloned().unwrap_or_else(Rule::default);
            state.engine.restore(&id, &rule, phase, now);
        }
    }
    state.log_watermarks = reader.log_watermarks()?;
    Ok(())
}

/// What a viewer takes from the record on each refresh.
#[derive(Clone, Debug, Default)]
pub struct View {
    pub open: Vec<Alert>,
    pub resolved: Vec<Alert>,
    pub notes: Vec<Note>,
    pub snapshots: Vec<i64>,
    pub timeline: Vec<Option<Severity>>,
}

/// Reads the parts of the record a dashboard shows besides figures.
pub fn view(reader: &Reader, window: &Window, now: DateTime<Utc>) -> rusqlite::Result<View> {
    let replayed = replay(&reader.alert_events()?);
    let observed = observed_times(reader)?;
    Ok(View {
        timeline: timeline(window, &replayed.segments, &observed, now),
        open: replayed.open,
        resolved: replayed.resolved,
        notes: reader.notes()?,
        snapshots: reader.snapshots()?.iter().map(|s| s.offset_secs).collect(),
    })
}

/// Puts a view into a state.
pub(crate) fn apply_view(state: &mut AppState, view: &View) {
    state
        .alerts
        .restore(view.open.clone(), view.resolved.clone());
    state.notes = view.notes.clone();
    state.snapshots = view.snapshots.iter().copied().collect();
    if view.timeline.len() == state.timeline.len() {
        for (cell, recorded) in state.timeline.iter_mut().zip(&view.timeline) {
            *cell = match (*cell, *recorded) {
                (Some(a), Some(b)) => Some(a.worst(b)),
                (a, b) => a.or(b),
            };
        }
    } else {
        state.timeline = view.timeline.clone();
    }
}

/// The start of every bucket in which something was recorded.
fn observed_times(reader: &Reader) -> rusqlite::Result<Vec<DateTime<Utc>>> {
    reader.covered()
}

/// Every figure as it stands, for a checkpoint snapshot.
pub(crate) fn snapshot_figures(state: &AppState) -> Vec<SnapshotFigure> {
    state
        .figures
        .values()
        .map(|f| SnapshotFigure {
            id: f.figure.id.clone(),
            name: f.figure.name.clone(),
            value: f
                .figure
                .error
                .clone()
                .unwrap_or_else(|| f.figure.display_value()),
            number: f.figure.value.as_f64(),
            unit: f.figure.unit.clone(),
            condition: match (&f.figure.error, f.figure.severity) {
                (Some(_), _) => Condition::SourceError,
                (None, Severity::Ok) => Condition::Ok,
                (None, Severity::Warn) => Condition::Warn,
                (None, Severity::Crit) => Condition::Crit,
                (None, Severity::Unknown) => Condition::NoData,
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::rule::Priority;
    use chrono::TimeZone;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 2, 3, 0, 0).unwrap() + Duration::seconds(secs)
    }

    fn event(kind: EventKind, t: i64, severity: Severity) -> AlertEvent {
        AlertEvent {
            at: at(t),
            id: "api.up".into(),
            name: "api up".into(),
            kind,
            condition: match severity {
                Severity::Warn => Condition::Warn,
                Severity::Crit => Condition::Crit,
                _ => Condition::Ok,
            },
            severity,
            priority: Priority::P0,
            value: "0".into(),
            since: at(t),
            began: at(t),
            silenced: false,
            notify: true,
            held_back: 0,
        }
    }

    #[test]
    fn replay_takes_an_acknowledgement_back() {
        let events = vec![
            event(EventKind::Fired, 10, Severity::Crit),
            event(EventKind::Acknowledged, 15, Severity::Crit),
            event(EventKind::Unacknowledged, 18, Severity::Crit),
        ];
        let r = replay(&events);
        assert!(!r.open[0].acknowledged);
        assert_eq!(r.incidents[0].acknowledged, Some(at(15)));
        let again = [
            events,
            vec![event(EventKind::Acknowledged, 20, Severity::Crit)],
        ]
        .concat();
        assert!(replay(&again).open[0].acknowledged);
    }

    #[test]
    fn replay_builds_incidents_segments_and_open_alerts() {
        let events = vec![
            event(EventKind::Fired, 10, Severity::Warn),
            event(EventKind::Acknowledged, 15, Severity::Warn),
            event(EventKind::Changed, 20, Severity::Crit),
            event(EventKind::Resolved, 30, Severity::Crit),
            event(EventKind::Fired, 100, Severity::Crit),
        ];
        let r = replay(&events);
        assert_eq!(r.incidents.len(), 2);
        assert_eq!(r.incidents[0].severity, Severity::Crit);
        assert_eq!(r.incidents[0].resolved, Some(at(30)));
        assert_eq!(r.incidents[0].acknowledged, Some(at(15)));
        assert_eq!(r.segments.len(), 3);
        assert_eq!(r.segments[0].to, Some(at(20)));
        assert_eq!(r.segments[2].to, None);
        assert_eq!(r.open.len(), 1);
        assert!(!r.open[0].acknowledged);
        assert_eq!(r.resolved.len(), 1);
        assert!(matches!(
            r.phases()[0].1,
            AlertPhase::Firing { since, .. } if since == at(100)
        ));
    }

    #[test]
    fn timeline_cells_take_the_worst_and_leave_unwatched_ones_empty() {
        let mut window = Window::new("t", at(0), Duration::seconds(120));
        window.checkpoints = vec![
            Duration::zero(),
            Duration::seconds(30),
            Duration::seconds(60),
            Duration::seconds(90),
            Duration::seconds(120),
        ];
        let segments = vec![Segment {
            id: "a".into(),
            severity: Severity::Crit,
            condition: Condition::Crit,
            from: at(35),
            to: Some(at(40)),
            silenced: false,
        }];
        let observed = vec![at(0), at(31), at(95)];
        let cells = timeline(&window, &segments, &observed, at(100));
        assert_eq!(
            cells,
            vec![
                Some(Severity::Ok),
                Some(Severity::Crit),
                None,
                Some(Severity::Ok)
            ]
        );
        // Silenced segments do not colour the timeline.
        let silenced = vec![Segment {
            silenced: true,
            ..segments[0].clone()
        }];
        assert_eq!(
            timeline(&window, &silenced, &observed, at(100))[1],
            Some(Severity::Ok)
        );
    }

    #[test]
    fn file_names_are_safe() {
        assert_eq!(file_safe("tmws prod/eu"), "tmws_prod_eu");
        assert_eq!(file_safe("../x"), "_x");
        assert_eq!(file_safe(""), "deployment");
    }
}
