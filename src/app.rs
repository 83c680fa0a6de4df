//! The event loop: terminal input, collector updates, signals and the redraw deadline,
//! merged in one `tokio::select!`. The screen is drawn only when something changed
//! (data, key, resize, the clock's second), at most ten times a second. Idle is idle.
//!
//! After every change the state's outbox goes to the record's writer thread (samples,
//! alert transitions, log counts) and to the notifier: a terminal bell for each batch with
//! a new firing alert, and `on_alert` run without a shell in a detached process. Each
//! clock second also sweeps the rules (`for`, no data), takes checkpoint snapshots, and in
//! a viewer reads the record again (taking over as writer when the lock comes free).

use crate::collect::{self, Collector, OnScreen};
use crate::model::update::{LogLine, Update};
use crate::record::{self, Role};
use crate::state::alerts::AlertEvent;
use crate::state::{AppState, Note, Outgoing, RecordStatus};
use crate::tui::Tui;
use crate::ui::command::{self, Command};
use crate::ui::panes::{self, Cx, Outcome};
use crate::ui::prompt::LineEdit;
use crate::ui::theme::Theme;
use crate::ui::{self, UiState};
use chrono::{DateTime, Utc};
use crossterm::event::{Event, EventStream, MouseEventKind};
use futures::StreamExt;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Minimum time between two frames: about 11 a second while something keeps changing.
/// Kept 10 ms under 100 so that a frame a few milliseconds late (a busy machine's
/// scheduler) still comes within 100 ms of the one before.
const FRAME_INTERVAL: Duration = Duration::from_millis(90);
/// Ages ("3s ago") and T+ move with the clock; redraw this often when nothing else happens.
const CLOCK_INTERVAL: Duration = Duration::from_secs(1);

pub use crate::ui::keys::{Action, action_for_key};

/// The longest note kept.
pub(crate) const NOTE_MAX_CHARS: usize = record::store::MAX_NOTE_CHARS;

/// How a dashboard keeps its record, so a viewer can take over as the writer.
pub struct RecordSetup {
    pub path: std::path::PathBuf,
    /// The window as the config describes it.
    pub configured: crate::state::Window,
    pub settings: record::Settings,
}

/// The record this process writes.
pub struct Recording {
    pub writer: record::store::Writer,
    _lock: record::Lock,
}

/// The dashboard: live state, a frozen copy while paused, and what the user did.
pub struct App {
    pub state: AppState,
    /// While paused, the screen shows this snapshot; the live state keeps collecting.
    frozen: Option<AppState>,
    pub ui: UiState,
    pub theme: Theme,
    pub quit: bool,
    /// The last size drawn at, for mouse hit-testing.
    screen: ratatui::layout::Rect,
    /// The record writer, when this process holds the record.
    pub recording: Option<Recording>,
    /// How to (re)open the record: a viewer uses it to take over.
    pub record_setup: Option<RecordSetup>,
    /// `on_alert`: argv of a command run (no shell) for each notifying alert.
    pub on_alert: Vec<String>,
    /// Alerts that notify, waiting for the loop to ring and run `on_alert`.
    notifications: Vec<AlertEvent>,
    /// Tells the collectors what is on screen (the zoomed container's logs are read only
    /// while it is zoomed).
    on_screen: tokio::sync::watch::Sender<OnScreen>,
    /// Text for the terminal's clipboard (`y`), written with the next frame.
    clipboard: Option<String>,
    /// Updates taken off the channel and not applied yet (a big batch of log lines is
    /// taken a slice at a time), so a burst is applied between frames instead of holding
    /// one back.
    backlog: std::collections::VecDeque<Queued>,
}

/// Log lines applied in one go at most: a few milliseconds of work.
const LINES_PER_SLICE: usize = 8192;

/// What waits in the event loop's backlog: an update, or the lines of a burst not yet
/// applied (taken a slice at a time from the front, the rest never moved).
enum Queued {
    Update(Update),
    Lines(std::vec::IntoIter<LogLine>),
}

impl App {
    pub fn new(state: AppState, theme: Theme) -> App {
        App {
            state,
            frozen: None,
            ui: UiState::default(),
            theme,
            quit: false,
            screen: ratatui::layout::Rect::default(),
            recording: None,
            record_setup: None,
            on_alert: Vec::new(),
            notifications: Vec::new(),
            on_screen: tokio::sync::watch::Sender::new(OnScreen::default()),
            clipboard: None,
            backlog: std::collections::VecDeque::new(),
        }
    }

    /// The text `y` asked to copy, for the loop to write to the terminal with the next frame.
    pub(crate) fn take_clipboard(&mut self) -> Option<String> {
        self.clipboard.take()
    }

    /// What the collectors are told is on screen.
    pub fn watch_screen(&self) -> collect::ScreenWatch {
        self.on_screen.subscribe()
    }

    /// Makes this app the record's writer (the state's outbox is drained into it).
    pub fn set_recording(&mut self, writer: record::store::Writer, lock: record::Lock) {
        self.state.record = RecordStatus::Writing {
            path: writer.path().to_path_buf(),
            full: false,
            error: None,
        };
        self.state.alerts_from_record = false;
        self.state.enable_outbox();
        self.recording = Some(Recording {
            writer,
            _lock: lock,
        });
    }

    /// Alerts that should ring now; the loop rings once and runs `on_alert` for each.
    pub(crate) fn take_notifications(&mut self) -> Vec<AlertEvent> {
        std::mem::take(&mut self.notifications)
    }

    /// Sends what the state produced to the record and queues notifications.
    fn drain_outbox(&mut self) {
        for event in self.state.take_outbox() {
            if let Outgoing::Alert(alert) = &event
                && alert.notify
            {
                self.notifications.push(alert.clone());
            }
            let msg = record::store::Msg::Out(event);
            if let Some(recording) = &self.recording {
                recording.writer.send(msg);
            }
        }
    }

    /// A clock second: rules swept, checkpoint snapshot taken if one is due, the record's
    /// health copied into the header. Returns whether the screen should change.
    pub fn tick(&mut self, now: DateTime<Utc>) -> bool {
        let changed = self.state.tick(now);
        if let Some(at) = self.state.due_checkpoint(now)
            && self.recording.is_some()
        {
            let snapshot = record::Snapshot {
                offset_secs: at.num_seconds(),
                at: now,
                figures: record::snapshot_figures(&self.state),
            };
            if let Some(recording) = &self.recording {
                recording
                    .writer
                    .send(record::store::Msg::Snapshot(snapshot));
            }
            self.state.snapshots.insert(at.num_seconds());
        }
        if let Some(recording) = &self.recording {
            let status = recording.writer.status();
            let error = status.last_error.clone().or_else(|| {
                (status.dropped > 0).then(|| format!("{} updates dropped", status.dropped))
            });
            self.state.record = RecordStatus::Writing {
                path: recording.writer.path().to_path_buf(),
                full: status.full,
                error,
            };
        }
        self.drain_outbox();
        changed
    }

    /// The state the screen shows (the frozen copy while paused).
    pub fn shown(&self) -> &AppState {
        self.frozen.as_ref().unwrap_or(&self.state)
    }

    pub(crate) fn apply_update(&mut self, update: Update) {
        self.apply_update_at(update, Utc::now());
    }

    /// Queues an update to be applied by [`App::apply_queued`]; lines in slices.
    pub(crate) fn queue(&mut self, update: Update) {
        match update {
            Update::Logs(lines) if lines.len() > LINES_PER_SLICE => {
                self.backlog.push_back(Queued::Lines(lines.into_iter()))
            }
            update => self.backlog.push_back(Queued::Update(update)),
        }
    }

    /// Whether queued updates wait to be applied.
    pub(crate) fn has_backlog(&self) -> bool {
        !self.backlog.is_empty()
    }

    /// Applies queued updates, at least one, until `until` (when the next frame is due).
    /// Returns whether anything was applied.
    pub(crate) fn apply_queued(&mut self, until: Instant) -> bool {
        let mut applied = false;
        while let Some(front) = self.backlog.front_mut() {
            match front {
                Queued::Lines(lines) => {
                    self.state.push_logs(lines, LINES_PER_SLICE);
                    if lines.len() == 0 {
                        self.backlog.pop_front();
                    }
                    self.drain_outbox();
                }
                Queued::Update(_) => {
                    if let Some(Queued::Update(update)) = self.backlog.pop_front() {
                        self.apply_update(update);
                    }
                }
            }
            applied = true;
            if Instant::now() >= until {
                break;
            }
        }
        applied
    }

    pub fn apply_update_at(&mut self, update: Update, now: DateTime<Utc>) {
        self.state.apply(update, now);
        self.drain_outbox();
    }

    /// Puts a viewer's fresh read of the record into the state (and the paused copy).
    pub(crate) fn apply_view(&mut self, view: &record::View) {
        record::apply_view(&mut self.state, view);
        if let Some(frozen) = &mut self.frozen {
            record::apply_view(frozen, view);
        }
    }

    /// Keeps a note with its time, in the state and the record.
    pub fn add_note(&mut self, text: &str, now: DateTime<Utc>) {
        let text: String = text.trim().chars().take(NOTE_MAX_CHARS).collect();
        if text.is_empty() {
            self.ui.flash = Some("empty note not kept".into());
            return;
        }
        let note = Note { at: now, text };
        if let Some(recording) = &self.recording {
            recording
                .writer
                .send(record::store::Msg::Note(note.clone()));
            self.ui.flash = Some("note kept in the record".into());
        } else {
            self.ui.flash = Some("note kept on screen only (no record)".into());
        }
        self.state.notes.push(note.clone());
        if let Some(frozen) = &mut self.frozen {
            frozen.notes.push(note);
        }
    }

    pub fn draw(&mut self, frame: &mut ratatui::Frame) {
        self.screen = frame.area();
        let state = self.frozen.as_ref().unwrap_or(&self.state);
        ui::draw(frame, state, &self.ui, &self.theme, Utc::now());
    }

    /// Carries out one action. Returns whether the screen changed.
    pub fn handle(&mut self, action: Action) -> bool {
        self.ui.flash = None;
        // Moving the selection picks a container; anything else keeps the one picked.
        let moved = matches!(
            action,
            Action::Up(_) | Action::Down(_) | Action::Top | Action::Bottom
        );
        let changed = self.carry_out(action);
        self.settle(moved);
        changed
    }

    /// The panes first (the focused one before the others), then the screen's own keys.
    fn carry_out(&mut self, action: Action) -> bool {
        // Esc closes the overlay before anything a pane would do with it.
        if !(action == Action::Back && self.ui.help) {
            let mut cx = Cx {
                ui: &mut self.ui,
                shown: self.frozen.as_ref().unwrap_or(&self.state),
                live: &self.state,
            };
            match panes::handle(&action, &mut cx) {
                Outcome::Pass => {}
                Outcome::Done => return true,
                Outcome::Acknowledge(id) => {
                    self.acknowledge_alert(&id, Utc::now());
                    return true;
                }
                Outcome::Unacknowledge(id) => {
                    self.unacknowledge_alert(&id, Utc::now());
                    return true;
                }
                Outcome::Copy(text) => {
                    self.ui.flash = Some(format!("copied 1 line ({} bytes)", text.len()));
                    self.clipboard = Some(text);
                    return true;
                }
            }
        }
        match action {
            Action::Quit => self.quit = true,
            Action::ToggleHelp => self.ui.help = !self.ui.help,
            Action::FocusNext => {
                let next = panes::next(self.ui.keymap.panes(), self.ui.focus);
                self.ui.focus_on(next);
            }
            Action::FocusPrevious => {
                let previous = panes::previous(self.ui.keymap.panes(), self.ui.focus);
                self.ui.focus_on(previous);
            }
            Action::Focus(pane) => self.ui.focus_on(pane),
            Action::WatchWindow => {
                self.ui.focus_on(ui::PaneId::Window);
                self.ui.zoomed = true;
            }
            Action::ToggleZoom if self.ui.zoomed => self.unzoom(),
            Action::ToggleZoom => self.ui.zoomed = true,
            Action::Back => {
                if self.ui.help {
                    self.ui.help = false;
                } else if self.ui.zoomed {
                    self.unzoom();
                }
            }
            Action::TogglePause => {
                self.ui.paused = !self.ui.paused;
                self.frozen = self.ui.paused.then(|| self.state.clone());
            }
            Action::StartNote => match self.note_refused() {
                Some(why) => self.ui.flash = Some(why),
                None => self.ui.note = Some(LineEdit::default()),
            },
            Action::NoteInput(c) => {
                if let Some(note) = &mut self.ui.note
                    && note.len() < NOTE_MAX_CHARS
                {
                    note.insert(c);
                }
            }
            Action::NoteBackspace => {
                if let Some(note) = &mut self.ui.note {
                    note.backspace();
                }
            }
            Action::NoteSave => {
                if let Some(line) = self.ui.note.take() {
                    self.add_note(line.text(), Utc::now());
                }
            }
            Action::NoteCancel => self.ui.note = None,
            // The editing keys of the note and the command line (a pane's prompt has
            // taken its own above).
            Action::Edit(edit) => {
                if let Some(line) = self.ui.note.as_mut().or(self.ui.command.as_mut()) {
                    line.apply(edit);
                }
            }
            Action::StartCommand => self.ui.command = Some(LineEdit::default()),
            Action::CommandInput(c) => {
                if let Some(line) = &mut self.ui.command {
                    line.insert(c);
                }
            }
            Action::CommandBackspace => {
                if let Some(line) = &mut self.ui.command {
                    line.backspace();
                }
            }
            Action::CommandComplete => {
                if let Some(line) = &mut self.ui.command {
                    command::complete(line);
                }
            }
            Action::CommandRun => {
                if let Some(line) = self.ui.command.take() {
                    self.run_command(line.text());
                }
            }
            Action::CommandCancel => self.ui.command = None,
            Action::ToggleMouse => {
                self.ui.mouse = !self.ui.mouse;
                self.ui.flash = Some(
                    if self.ui.mouse {
                        "mouse on"
                    } else {
                        "mouse off"
                    }
                    .to_string(),
                );
            }
            Action::Up(n) => self.ui.selected = self.ui.selected.saturating_sub(n),
            Action::Down(n) => self.ui.selected = self.ui.selected.saturating_add(n),
            Action::Top => self.ui.selected = 0,
            Action::Bottom => self.ui.selected = usize::MAX / 2,
            Action::Click { column, row } if !self.ui.zoomed => {
                let body = ratatui::layout::Rect {
                    y: self.screen.y + 1,
                    height: self.screen.height.saturating_sub(2),
                    ..self.screen
                };
                let shown = self.frozen.as_ref().unwrap_or(&self.state);
                let hit = ui::overview_layout(body, self.ui.keymap.panes(), shown)
                    .into_iter()
                    .find(|(_, r)| r.contains(ratatui::layout::Position { x: column, y: row }));
                if let Some((pane, _)) = hit {
                    self.ui.focus_on(pane);
                }
            }
            // The panes' own actions (handled above), a click while zoomed, a resize: a redraw.
            _ => {}
        }
        true
    }

    /// Why this process takes no note: a viewer's notes go to the watchpost that holds the
    /// record.
    fn note_refused(&self) -> Option<String> {
        match &self.state.record {
            RecordStatus::Viewer { holder, .. } => Some(format!(
                "viewer: write notes in the watchpost that holds the record{}",
                holder.map(|p| format!(" (pid {p})")).unwrap_or_default()
            )),
            _ => None,
        }
    }

    /// Carries out a `:` command line; a mistake in it is said in the footer.
    fn run_command(&mut self, text: &str) {
        let command = match command::parse(text) {
            Ok(Some(command)) => command,
            Ok(None) => return,
            Err(why) => {
                self.ui.flash = Some(why);
                return;
            }
        };
        match command {
            Command::Quit => self.quit = true,
            Command::Note(None) => {
                self.carry_out(Action::StartNote);
            }
            Command::Note(Some(text)) => match self.note_refused() {
                Some(why) => self.ui.flash = Some(why),
                None => self.add_note(&text, Utc::now()),
            },
            Command::Ack => {
                self.carry_out(Action::Acknowledge);
            }
            Command::Unack => {
                self.carry_out(Action::Unacknowledge);
            }
            Command::Filter(regex) => {
                let filter = ui::LogFilter::parse(&regex);
                if let Some(error) = filter.error {
                    self.ui.flash = Some(format!("filter not applied: {error}"));
                    return;
                }
                panes::errors::apply_filter(&mut self.ui, &regex);
                self.ui.flash = Some(if regex.is_empty() {
                    "filter cleared".to_string()
                } else {
                    format!("filter: {}", crate::model::sanitize::sanitize(&regex))
                });
            }
            Command::Theme(name) => match Theme::built_in(&name) {
                Ok(theme) => {
                    self.theme = theme;
                    self.ui.flash = Some(format!("theme {name}"));
                }
                Err(why) => self.ui.flash = Some(why),
            },
        }
    }

    /// The keymap in effect, for the panes the config feeds: the overview, Tab and the
    /// number keys cover exactly those, and the first has the focus.
    pub fn set_keymap(&mut self, keymap: ui::keys::Keymap) {
        let keymap = keymap.for_panes(panes::on_overview(&self.state));
        self.ui.focus = keymap.panes()[0];
        self.ui.keymap = std::sync::Arc::new(keymap);
    }

    /// Back to the overview; out of a pane that is only shown zoomed, the focus goes to
    /// the overview's first pane.
    fn unzoom(&mut self) {
        self.ui.zoomed = false;
        if !self.ui.keymap.panes().contains(&self.ui.focus) {
            let first = self.ui.keymap.panes()[0];
            self.ui.focus_on(first);
        }
    }

    /// Lets the panes bring their view state in step with the focus, the zoom and the data
    /// (the Containers selection follows its container), and tells the collectors which
    /// container is zoomed.
    pub(crate) fn settle(&mut self, moved: bool) {
        let mut cx = Cx {
            ui: &mut self.ui,
            shown: self.frozen.as_ref().unwrap_or(&self.state),
            live: &self.state,
        };
        panes::settle(&mut cx, moved);
        let zoomed = panes::containers::zoomed_container(&self.ui);
        self.on_screen.send_if_modified(|screen| {
            let changed = screen.zoomed_container != zoomed;
            screen.zoomed_container = zoomed;
            changed
        });
    }

    /// Takes back the acknowledgement of alert `id` at `now`, in the state, the paused copy
    /// and the record.
    pub fn unacknowledge_alert(&mut self, id: &str, now: DateTime<Utc>) -> bool {
        self.change_alert(|alerts| alerts.unacknowledge_at(id, now))
    }

    /// Acknowledges alert `id` at `now`, in the state, the paused copy and the record.
    pub fn acknowledge_alert(&mut self, id: &str, now: DateTime<Utc>) -> bool {
        self.change_alert(|alerts| alerts.acknowledge_at(id, now))
    }

    /// Makes one change to the alerts, live and in the paused copy, and records the event
    /// it makes; false when it changed nothing.
    fn change_alert(
        &mut self,
        change: impl Fn(&mut crate::state::alerts::AlertBook) -> Option<AlertEvent>,
    ) -> bool {
        let event = change(&mut self.state.alerts);
        if let Some(frozen) = &mut self.frozen {
            change(&mut frozen.alerts);
        }
        let Some(event) = event else {
            return false;
        };
        if let Some(recording) = &self.recording {
            recording
                .writer
                .send(record::store::Msg::Out(Outgoing::Alert(event)));
        }
        true
    }
}

/// Builds the initial state for a set of collectors: every source registered, so panes
/// can say "connecting…" from the first frame, and the config's own figures listed.
pub fn initial_state(
    window: crate::state::Window,
    collectors: &[Box<dyn Collector>],
    config: &crate::config::Config,
) -> AppState {
    let mut state = AppState::new(window);
    for collector in collectors {
        for &pane in collector.panes() {
            state.register_source(pane, collector.name());
        }
    }
    // The figures the config defines beside a pane's own: listed in the Figures pane.
    for (source, log) in &config.logs {
        for metric in &log.metrics {
            let id = metric.figure_id(source);
            state.listed_figures.insert(id, metric.name.clone());
        }
    }
    for (source, metrics) in &config.metrics {
        for metric in metrics {
            use collect::sqlite::metrics::{figure_id, figure_name};
            let (id, name) = (figure_id(source, metric), figure_name(metric));
            state.listed_figures.insert(id, name);
        }
    }
    state.rules = config
        .rules
        .iter()
        .map(|(id, rule)| (id.clone(), rule.clone()))
        .collect();
    state
}

/// Runs the dashboard until the user quits or a signal arrives.
pub async fn run(
    mut app: App,
    collectors: Vec<Box<dyn Collector>>,
    mouse: bool,
) -> color_eyre::Result<()> {
    let (tx, rx) = mpsc::channel::<Update>(4096);
    let tasks: Vec<_> = collectors
        .into_iter()
        .map(|mut c| {
            c.watch_screen(app.watch_screen());
            collect::spawn(c, tx.clone())
        })
        .collect();
    drop(tx);

    // The handlers first: a signal that came between entering the alternate screen and
    // installing them would end the process with the terminal left in raw mode.
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut tui = Tui::enter(mouse)?;
    app.ui.mouse = mouse;
    let signalled = Box::pin(async move {
        tokio::select! {
            _ = sigterm.recv() => {}
            _ = sighup.recv() => {}
            _ = sigint.recv() => {}
        }
    });
    let ended = event_loop(&mut app, &mut tui, EventStream::new(), rx, signalled).await;
    for task in tasks {
        task.abort();
    }
    drop(tui);
    // Commit what is queued before leaving (the writer also does it when dropped).
    if let Some(recording) = &app.recording {
        recording.writer.flush(Duration::from_secs(3));
    }
    ended
}

/// Where the event loop's frames go: the terminal in [`run`], a test backend in the
/// redraw benchmark (so the benchmark measures this loop, not a copy of it).
pub trait Screen {
    fn draw(&mut self, app: &mut App) -> std::io::Result<()>;
    /// Turns mouse capture on or off (a terminal's business only).
    fn set_mouse(&mut self, _on: bool) -> std::io::Result<()> {
        Ok(())
    }
    /// Rings the terminal's bell between frames.
    fn bell(&mut self) {}
    /// Puts `text` on the terminal's clipboard, before a frame.
    fn copy(&mut self, _text: &str) {}
}

impl Screen for Tui {
    fn draw(&mut self, app: &mut App) -> std::io::Result<()> {
        self.terminal.draw(|frame| app.draw(frame)).map(|_| ())
    }

    fn set_mouse(&mut self, on: bool) -> std::io::Result<()> {
        Tui::set_mouse(self, on)
    }

    fn bell(&mut self) {
        use std::io::Write as _;
        let backend = self.terminal.backend_mut();
        let _ = backend.write_all(b"\x07");
        let _ = backend.flush();
    }

    fn copy(&mut self, text: &str) {
        // A terminal that does not take OSC 52 ignores it: nothing to report.
        let _ = Tui::copy(self, text);
    }
}

impl<B: ratatui::backend::Backend> Screen for ratatui::Terminal<B> {
    fn draw(&mut self, app: &mut App) -> std::io::Result<()> {
        ratatui::Terminal::draw(self, |frame| app.draw(frame))
            .map(|_| ())
            .map_err(|e| std::io::Error::other(e.to_string()))
    }
}

/// The dashboard's one loop: input, updates from the collectors, the viewer's refreshes,
/// and frames, until the user quits, `events` ends or `quit` completes.
///
/// Frames are due on a fixed grid of [`FRAME_INTERVAL`] while something keeps changing,
/// and a due frame goes first: a collector that outpaces the screen waits on its bounded
/// channel, it never holds a frame back.
pub async fn event_loop(
    app: &mut App,
    screen: &mut impl Screen,
    mut events: impl futures::Stream<Item = std::io::Result<Event>> + Unpin,
    mut rx: mpsc::Receiver<Update>,
    mut quit: impl Future<Output = ()> + Unpin,
) -> color_eyre::Result<()> {
    let mut dirty = true;
    // When the last frame was due (not when it was drawn: a late frame does not push the
    // next one later).
    let mut last_due = Instant::now() - FRAME_INTERVAL;
    let mut clock = tokio::time::interval(CLOCK_INTERVAL);
    clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A viewer reads the record again on its own task; answers come back here.
    let (view_tx, mut view_rx) = mpsc::channel::<ViewerNews>(4);
    let mut viewer_busy = false;
    let mut last_view = Instant::now() - record::VIEWER_REFRESH;

    while !app.quit {
        let next_draw = last_due + FRAME_INTERVAL;
        // Checked here rather than left to the timer alone: under load the runtime's
        // timer can fire tens of milliseconds late, and a due frame must not wait for it.
        let frame_due = dirty && Instant::now() >= next_draw;
        tokio::select! {
            // Branches are tried in this order: a due frame first, then the user.
            biased;
            _ = async {
                if !frame_due {
                    tokio::time::sleep_until(next_draw).await;
                }
            }, if dirty => {
                screen.set_mouse(app.ui.mouse)?;
                let notifications = app.take_notifications();
                if !notifications.is_empty() {
                    // One bell per batch, between frames.
                    screen.bell();
                    for event in &notifications {
                        if let Err(e) = run_on_alert(&app.on_alert, event, &app.state.window.deployment) {
                            app.ui.flash = Some(e.to_string());
                        }
                    }
                }
                if let Some(text) = app.take_clipboard() {
                    screen.copy(&text);
                }
                screen.draw(app)?;
                let now = Instant::now();
                // On the grid while frames keep coming; after a quiet spell, from now.
                last_due = if now.duration_since(next_draw) < FRAME_INTERVAL { next_draw } else { now };
                dirty = false;
            }
            _ = &mut quit => app.quit = true,
            event = events.next() => match event {
                Some(Ok(Event::Key(key))) => {
                    if let Some(action) = action_for_key(key, &app.ui) {
                        dirty |= app.handle(action);
                    }
                }
                Some(Ok(Event::Mouse(mouse))) if app.ui.mouse => {
                    let action = match mouse.kind {
                        MouseEventKind::Down(_) => Some(Action::Click { column: mouse.column, row: mouse.row }),
                        MouseEventKind::ScrollUp => Some(Action::Up(3)),
                        MouseEventKind::ScrollDown => Some(Action::Down(3)),
                        _ => None,
                    };
                    if let Some(action) = action {
                        dirty |= app.handle(action);
                    }
                }
                Some(Ok(Event::Resize(_, _))) => dirty |= app.handle(Action::Resize),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => app.quit = true,
            },
            Some(news) = view_rx.recv() => {
                viewer_busy = false;
                match news {
                    ViewerNews::View(view) => app.apply_view(&view),
                    ViewerNews::TookOver(opened, reader) => app.take_over(*opened, reader, Utc::now()),
                    ViewerNews::Failed(message) => app.ui.flash = Some(message),
                }
                dirty = true;
            }
            _ = clock.tick() => {
                app.tick(Utc::now());
                dirty = true;
                if matches!(app.state.record, RecordStatus::Viewer { .. })
                    && !viewer_busy
                    && last_view.elapsed() >= record::VIEWER_REFRESH
                    && let Some(setup) = &app.record_setup
                {
                    viewer_busy = true;
                    last_view = Instant::now();
                    spawn_viewer_refresh(setup, &app.state.window, view_tx.clone());
                }
            }
            // Taken off the channel only when the backlog is empty, so a collector that
            // outpaces the screen waits on the channel (bounded) instead of piling up here.
            Some(update) = rx.recv(), if !app.has_backlog() => {
                app.queue(update);
                // What is already queued too, so a burst costs one frame: applied by the
                // next branch, from the next turn on, until each frame is due.
                while let Ok(update) = rx.try_recv() {
                    app.queue(update);
                }
            }
            _ = std::future::ready(()), if app.has_backlog() && !frame_due => {
                if app.apply_queued(next_draw) {
                    app.settle(false);
                    dirty |= !app.ui.paused;
                }
            }
        }
    }
    Ok(())
}

/// What a viewer's refresh found.
pub(crate) enum ViewerNews {
    View(record::View),
    /// The lock came free: this process now writes the record.
    TookOver(Box<record::Opened>, record::Reader),
    Failed(String),
}

/// Reads the record (off the executor): takes the lock if it is free, else reads the view.
fn spawn_viewer_refresh(
    setup: &RecordSetup,
    window: &crate::state::Window,
    tx: mpsc::Sender<ViewerNews>,
) {
    let (path, configured, settings, window) = (
        setup.path.clone(),
        setup.configured.clone(),
        setup.settings.clone(),
        window.clone(),
    );
    tokio::task::spawn_blocking(move || {
        let now = Utc::now();
        let news = match record::Lock::try_take(&path) {
            Ok(Ok(lock)) => {
                // Free: open it properly as the writer (the lock is taken again inside).
                drop(lock);
                match record::open(&path, &configured, &settings, now) {
                    Ok(opened) if matches!(opened.role, Role::Writer { .. }) => {
                        match record::Reader::open(&path) {
                            Ok(reader) => ViewerNews::TookOver(Box::new(opened), reader),
                            Err(e) => ViewerNews::Failed(format!("record: {e}")),
                        }
                    }
                    Ok(_) => match record::Reader::open(&path)
                        .and_then(|r| record::view(&r, &window, now))
                    {
                        Ok(view) => ViewerNews::View(view),
                        Err(e) => ViewerNews::Failed(format!("record: {e}")),
                    },
                    Err(e) => ViewerNews::Failed(e.to_string()),
                }
            }
            _ => match record::Reader::open(&path).and_then(|r| record::view(&r, &window, now)) {
                Ok(view) => ViewerNews::View(view),
                Err(e) => ViewerNews::Failed(format!("record: {e}")),
            },
        };
        let _ = tx.blocking_send(news);
    });
}

impl App {
    /// A viewer becomes the writer: open alerts are put back into the rule engine, so they
    /// resolve (or stay firing) without firing again.
    pub(crate) fn take_over(
        &mut self,
        opened: record::Opened,
        reader: record::Reader,
        now: DateTime<Utc>,
    ) {
        let Role::Writer { writer, lock } = opened.role else {
            return;
        };
        self.state.alerts_from_record = false;
        if let Err(e) = record::load_into(&reader, &mut self.state, now, true) {
            self.ui.flash = Some(format!("record: {e}"));
        }
        self.set_recording(writer, lock);
        self.ui.flash = Some("the other watchpost left: this one now writes the record".into());
    }
}

/// `on_alert`'s program could not be started. `Display` is the flash line.
#[derive(Debug, thiserror::Error)]
#[error("on_alert: cannot run {program:?}: {error}")]
pub(crate) struct OnAlertError {
    program: String,
    error: std::io::Error,
}

/// Runs `on_alert` for one alert: no shell, the alert in WATCHPOST_ALERT_* variables, in
/// a detached process reaped by a task (killed after a minute), never waited for here.
pub(crate) fn run_on_alert(
    argv: &[String],
    event: &AlertEvent,
    deployment: &str,
) -> Result<(), OnAlertError> {
    let Some((program, args)) = argv.split_first() else {
        return Ok(());
    };
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .envs(event.environment(deployment))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(false);
    let mut child = command.spawn().map_err(|error| OnAlertError {
        program: program.clone(),
        error,
    })?;
    tokio::spawn(async move {
        if tokio::time::timeout(Duration::from_secs(60), child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Window;
    use crate::ui::PaneId;
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    fn app() -> App {
        let state = AppState::new(Window::new("t", Utc::now(), chrono::Duration::hours(24)));
        App::new(state, Theme::built_in("default").unwrap())
    }

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn keys_focus_zoom_and_quit() {
        let mut app = app();
        for (code, expect) in [
            (KeyCode::Char('3'), PaneId::License),
            (KeyCode::Tab, PaneId::Containers),
        ] {
            let action = action_for_key(key(code), &app.ui).unwrap();
            app.handle(action);
            assert_eq!(app.ui.focus, expect);
        }
        app.handle(action_for_key(key(KeyCode::BackTab), &app.ui).unwrap());
        assert_eq!(app.ui.focus, PaneId::License);
        app.handle(action_for_key(key(KeyCode::Enter), &app.ui).unwrap());
        assert!(app.ui.zoomed);
        app.handle(action_for_key(key(KeyCode::Esc), &app.ui).unwrap());
        assert!(!app.ui.zoomed);
        app.handle(action_for_key(key(KeyCode::Char('q')), &app.ui).unwrap());
        assert!(app.quit);
    }

    /// The panes on screen follow the config, and Tab, Shift-Tab and the digits visit
    /// exactly those: from pane 1, back to pane 1 after as many presses as there are.
    #[test]
    fn tab_visits_exactly_the_panes_the_config_puts_on_screen() {
        let config = crate::config::Config::parse(
            "[logs.app]\nfiles = [\"/var/log/app.jsonl\"]\n\n\
             [[logs.app.metric]]\nid = \"latency_p95\"\nkind = \"p95\"\nfield = \"ms\"\n\n\
             [service.api]\nhealth_url = \"http://127.0.0.1:1/health\"\n",
        )
        .unwrap();
        let pool = crate::transport::HostPool::from_config(&config).unwrap();
        let collectors = collect::from_config(&config, &pool, None);
        let window = Window::new("t", Utc::now(), chrono::Duration::hours(24));
        let mut app = App::new(
            initial_state(window, &collectors, &config),
            Theme::built_in("default").unwrap(),
        );
        app.set_keymap(ui::keys::Keymap::default());
        let shown = app.ui.keymap.panes().to_vec();
        assert_eq!(
            shown,
            [
                PaneId::Services,
                PaneId::Figures,
                PaneId::Errors,
                PaneId::Alerts
            ]
        );
        assert_eq!(app.ui.focus, PaneId::Services);
        let mut visited = Vec::new();
        for presses in 1..=10 {
            app.handle(action_for_key(key(KeyCode::Tab), &app.ui).unwrap());
            visited.push(app.ui.focus);
            if app.ui.focus == PaneId::Services {
                assert_eq!(presses, shown.len(), "{visited:?}");
                break;
            }
        }
        assert_eq!(visited.len(), shown.len(), "{visited:?}");
        app.handle(action_for_key(key(KeyCode::BackTab), &app.ui).unwrap());
        assert_eq!(app.ui.focus, PaneId::Alerts);
        // The digits are the panes' numbers; the next one is nobody's.
        app.handle(action_for_key(key(KeyCode::Char('2')), &app.ui).unwrap());
        assert_eq!(app.ui.focus, PaneId::Figures);
        assert_eq!(action_for_key(key(KeyCode::Char('5')), &app.ui), None);
        // 0 is the watch window, zoomed; Esc goes back to the overview's first pane.
        app.handle(action_for_key(key(KeyCode::Char('0')), &app.ui).unwrap());
        assert_eq!((app.ui.focus, app.ui.zoomed), (PaneId::Window, true));
        app.handle(action_for_key(key(KeyCode::Esc), &app.ui).unwrap());
        assert_eq!((app.ui.focus, app.ui.zoomed), (PaneId::Services, false));
    }

    #[test]
    fn filter_is_typed_then_applied_or_cancelled() {
        let mut app = app();
        app.handle(Action::StartFilter);
        assert_eq!(app.ui.focus, PaneId::Errors);
        for c in "time.?out".chars() {
            let action = action_for_key(key(KeyCode::Char(c)), &app.ui).unwrap();
            app.handle(action);
        }
        // 'q' is text while typing a filter, not quit.
        assert!(!app.quit);
        app.handle(action_for_key(key(KeyCode::Enter), &app.ui).unwrap());
        assert!(!app.ui.views.errors.editing);
        assert!(
            app.ui
                .views
                .errors
                .filter
                .include
                .as_ref()
                .unwrap()
                .is_match("request TIMED-OUT? no: timeout")
        );
        app.handle(Action::StartFilter);
        app.handle(Action::FilterInput('x'));
        app.handle(Action::FilterCancel);
        assert_eq!(app.ui.views.errors.filter.input, "time.?out");
    }

    #[test]
    fn pause_freezes_what_is_shown() {
        let mut app = app();
        app.handle(Action::TogglePause);
        app.apply_update(Update::Readings {
            source: "s".into(),
            readings: vec![crate::model::figure::Reading::number("s.x", "x", 1.0, "")],
        });
        assert!(app.shown().figure("s.x").is_none());
        app.handle(Action::TogglePause);
        assert!(app.shown().figure("s.x").is_some());
    }

    #[test]
    fn n_opens_a_note_whose_keys_are_text_until_enter() {
        let mut app = app();
        app.handle(action_for_key(key(KeyCode::Char('n')), &app.ui).unwrap());
        assert_eq!(app.ui.note.as_ref().map(LineEdit::text), Some(""));
        for c in "pool to 40, q".chars() {
            let action = action_for_key(key(KeyCode::Char(c)), &app.ui).unwrap();
            app.handle(action);
        }
        assert!(!app.quit, "q is text in a note");
        app.handle(action_for_key(key(KeyCode::Backspace), &app.ui).unwrap());
        app.handle(action_for_key(key(KeyCode::Enter), &app.ui).unwrap());
        assert_eq!(app.ui.note, None);
        assert_eq!(app.state.notes.len(), 1);
        assert_eq!(app.state.notes[0].text, "pool to 40,");
        assert!(app.ui.flash.as_deref().unwrap().contains("no record"));
        // Esc drops a note being typed; an empty one is not kept.
        app.handle(Action::StartNote);
        app.handle(Action::NoteInput('x'));
        app.handle(action_for_key(key(KeyCode::Esc), &app.ui).unwrap());
        app.handle(Action::StartNote);
        app.handle(Action::NoteSave);
        assert_eq!(app.state.notes.len(), 1);
        // A viewer does not take notes.
        app.state.record = RecordStatus::Viewer {
            path: "r.sqlite".into(),
            holder: Some(42),
        };
        app.handle(Action::StartNote);
        assert_eq!(app.ui.note, None);
        assert!(app.ui.flash.as_deref().unwrap().contains("pid 42"));
    }

    #[test]
    fn a_new_firing_alert_rings_once_and_a_pending_one_does_not() {
        use crate::model::figure::Reading;
        use crate::model::rule::{Priority, Rule, Threshold};
        let mut app = app();
        app.state.enable_outbox();
        let up = |v: f64| Update::Readings {
            source: "api".into(),
            readings: vec![
                Reading::number("api.up", "api up", v, "")
                    .with_rule(Rule::crit_only(Threshold::below(1.0)).with_priority(Priority::P0)),
            ],
        };
        let now = Utc::now();
        app.apply_update_at(up(0.0), now);
        let rung = app.take_notifications();
        assert_eq!(rung.len(), 1);
        assert_eq!(rung[0].id, "api.up");
        app.apply_update_at(up(0.0), now + chrono::Duration::seconds(2));
        assert!(
            app.take_notifications().is_empty(),
            "still firing is not news"
        );
        // With a `for`, the alert is pending first: nothing rings.
        app.state.rules.insert(
            "x.v".into(),
            Rule::crit_only(Threshold::above(1.0)).held_for(Duration::from_secs(60)),
        );
        app.apply_update_at(
            Update::Readings {
                source: "x".into(),
                readings: vec![Reading::number("x.v", "v", 5.0, "")],
            },
            now,
        );
        assert!(app.take_notifications().is_empty());
    }

    #[tokio::test]
    async fn on_alert_without_a_command_does_nothing_and_a_missing_program_is_said() {
        let event = AlertEvent {
            at: Utc::now(),
            id: "a.b".into(),
            name: "b".into(),
            kind: crate::state::alerts::EventKind::Fired,
            condition: crate::rules::engine::Condition::Crit,
            severity: crate::model::figure::Severity::Crit,
            priority: crate::model::rule::Priority::P1,
            value: "1".into(),
            since: Utc::now(),
            began: Utc::now(),
            silenced: false,
            notify: true,
            held_back: 0,
        };
        assert!(run_on_alert(&[], &event, "d").is_ok());
        let missing = ["/nonexistent/notify".to_string()];
        assert_eq!(
            run_on_alert(&missing, &event, "d").unwrap_err().to_string(),
            "on_alert: cannot run \"/nonexistent/notify\": No such file or directory (os error 2)"
        );
    }

    #[test]
    fn containers_sort_keys_keep_the_selected_container_and_zoom_tells_the_collectors() {
        use crate::model::update::ContainerRow;
        use crate::ui::panes::containers::SortBy;
        let mut app = app();
        app.state.register_source(PaneId::Containers, "d");
        let row = |id: &str, cpu: f64| ContainerRow {
            id: id.into(),
            name: id.into(),
            project: "p".into(),
            service: id.into(),
            state: "running".into(),
            cpu_pct: Some(cpu),
            ..ContainerRow::default()
        };
        let rows = |a: f64, b: f64, c: f64| Update::Containers {
            source: "d".into(),
            rows: vec![row("a", a), row("b", b), row("c", c)],
        };
        app.apply_update(rows(1.0, 2.0, 3.0));
        let screen = app.watch_screen();
        // `s` elsewhere says where it works.
        app.handle(action_for_key(key(KeyCode::Char('s')), &app.ui).unwrap());
        assert!(app.ui.flash.as_deref().unwrap().contains("Containers"));
        app.handle(Action::Focus(PaneId::Containers));
        app.handle(action_for_key(key(KeyCode::Down), &app.ui).unwrap());
        assert_eq!(app.ui.selected, 1, "b, in the compose order a b c");
        // Sorted by CPU (c b a, then a b c reversed), the selection stays on b.
        for _ in 0..4 {
            app.handle(action_for_key(key(KeyCode::Char('s')), &app.ui).unwrap());
        }
        assert_eq!(app.ui.views.containers.sort, SortBy::Cpu);
        app.handle(action_for_key(key(KeyCode::Char('S')), &app.ui).unwrap());
        assert!(app.ui.views.containers.reversed);
        assert_eq!(
            app.ui.views.containers.selected,
            Some(("d".into(), "b".into()))
        );
        // New figures reorder the rows: the selection follows b to the top.
        app.ui.views.containers.reversed = false;
        app.apply_update(rows(1.0, 9.0, 3.0));
        app.settle(false);
        assert_eq!(app.ui.selected, 0);
        assert_eq!(screen.borrow().zoomed_container, None, "not zoomed yet");
        // Zoomed: the collectors learn which container, and forget it on Esc.
        app.handle(action_for_key(key(KeyCode::Enter), &app.ui).unwrap());
        assert!(screen.has_changed().unwrap());
        assert_eq!(
            screen.borrow().zoomed_container,
            Some(("d".into(), "b".into()))
        );
        app.handle(action_for_key(key(KeyCode::Down), &app.ui).unwrap());
        assert_eq!(
            screen.borrow().zoomed_container,
            Some(("d".into(), "c".into()))
        );
        app.handle(action_for_key(key(KeyCode::Esc), &app.ui).unwrap());
        assert_eq!(screen.borrow().zoomed_container, None);
    }

    #[test]
    fn errors_keys_scroll_back_pause_follow_wrap_fields_and_patterns() {
        use crate::model::update::{LogLevel, LogLine};
        let mut app = app();
        let lines = |n: usize| {
            Update::Logs(
                (0..n)
                    .map(|i| LogLine::new("app", Utc::now(), LogLevel::Error, format!("e{i}")))
                    .collect(),
            )
        };
        app.apply_update(lines(10));
        let press = |app: &mut App, code: KeyCode| {
            if let Some(action) = action_for_key(key(code), &app.ui) {
                app.handle(action);
            }
        };
        press(&mut app, KeyCode::Char('6'));
        assert!(app.ui.views.errors.following());
        // k (or ↑) selects an older line and holds the view at what has arrived so far.
        press(&mut app, KeyCode::Char('k'));
        assert_eq!(app.ui.views.errors.scroll, 1);
        assert_eq!(app.ui.views.errors.anchor, Some(10));
        app.apply_update(lines(5));
        assert_eq!(
            app.ui.views.errors.anchor,
            Some(10),
            "new lines do not move it"
        );
        // Back down to the newest follows again; so do G, End and F.
        press(&mut app, KeyCode::Char('j'));
        assert!(app.ui.views.errors.following());
        for code in [KeyCode::Char('G'), KeyCode::End, KeyCode::Char('F')] {
            press(&mut app, KeyCode::PageUp);
            assert!(!app.ui.views.errors.following());
            press(&mut app, code);
            assert!(app.ui.views.errors.following(), "{code:?}");
            assert_eq!(app.ui.views.errors.scroll, 0);
        }
        // w wraps; Enter zooms, then (zoomed) opens the selected line's fields, held.
        press(&mut app, KeyCode::Char('w'));
        assert!(app.ui.views.errors.wrap);
        press(&mut app, KeyCode::Enter);
        assert!(app.ui.zoomed);
        press(&mut app, KeyCode::Enter);
        assert!(app.ui.views.errors.detail);
        assert!(
            !app.ui.views.errors.following(),
            "the open line holds still"
        );
        // Esc closes the fields (following again), then unzooms.
        press(&mut app, KeyCode::Esc);
        assert!(!app.ui.views.errors.detail && app.ui.zoomed && app.ui.views.errors.following());
        // t: the top patterns, where ↑↓ move through the patterns, not the tail.
        press(&mut app, KeyCode::Char('t'));
        assert!(app.ui.views.errors.patterns && app.ui.zoomed);
        press(&mut app, KeyCode::Down);
        assert_eq!((app.ui.selected, app.ui.views.errors.scroll), (1, 0));
        press(&mut app, KeyCode::Char('t'));
        assert!(!app.ui.views.errors.patterns);
        press(&mut app, KeyCode::Esc);
        assert!(!app.ui.zoomed);
    }

    #[test]
    fn a_burst_of_lines_is_applied_in_slices_until_the_frame_is_due() {
        use crate::model::update::{LogLevel, LogLine};
        let mut app = app();
        let lines: Vec<LogLine> = (0..LINES_PER_SLICE * 2 + 5)
            .map(|i| LogLine::new("app", Utc::now(), LogLevel::Error, format!("e{i}")))
            .collect();
        app.queue(Update::Logs(lines));
        assert!(app.has_backlog());
        // A frame already due: one slice, then the frame gets its turn.
        assert!(app.apply_queued(Instant::now()));
        assert_eq!(app.state.logs.len(), LINES_PER_SLICE);
        // Time to spare: the rest, in order.
        assert!(app.apply_queued(Instant::now() + Duration::from_secs(60)));
        assert!(!app.has_backlog());
        assert_eq!(app.state.logs.len(), LINES_PER_SLICE * 2 + 5);
        let last = app.state.logs.iter().last().unwrap();
        assert_eq!(last.message, format!("e{}", LINES_PER_SLICE * 2 + 4));
        assert!(!app.apply_queued(Instant::now()), "nothing left to apply");
    }

    #[test]
    fn ctrl_c_quits_even_while_typing() {
        let mut app = app();
        app.handle(Action::StartFilter);
        let action = action_for_key(
            KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
            &app.ui,
        );
        assert_eq!(action, Some(Action::Quit));
    }

    /// Frames from the loop on a test backend, each as its text, and what was copied to
    /// the clipboard (with the number of frames drawn before it).
    struct Frames {
        terminal: ratatui::Terminal<ratatui::backend::TestBackend>,
        shown: Vec<String>,
        copied: Vec<(usize, String)>,
    }

    impl Frames {
        fn new(width: u16, height: u16) -> Frames {
            let backend = ratatui::backend::TestBackend::new(width, height);
            Frames {
                terminal: ratatui::Terminal::new(backend).unwrap(),
                shown: Vec::new(),
                copied: Vec::new(),
            }
        }
    }

    impl Screen for Frames {
        fn draw(&mut self, app: &mut App) -> std::io::Result<()> {
            Screen::draw(&mut self.terminal, app)?;
            let buffer = self.terminal.backend().buffer();
            self.shown
                .push(buffer.content().iter().map(|c| c.symbol()).collect());
            Ok(())
        }

        fn copy(&mut self, text: &str) {
            self.copied.push((self.shown.len(), text.to_string()));
        }
    }

    /// Presses keys, each as the keymap reads it.
    fn press(app: &mut App, keys: &[(KeyCode, KeyModifiers)]) {
        for (code, held) in keys {
            if let Some(action) = action_for_key(KeyEvent::new(*code, *held), &app.ui) {
                app.handle(action);
            }
        }
    }

    fn plain(code: KeyCode) -> (KeyCode, KeyModifiers) {
        (code, KeyModifiers::NONE)
    }

    fn typing(text: &str) -> Vec<(KeyCode, KeyModifiers)> {
        text.chars().map(|c| plain(KeyCode::Char(c))).collect()
    }

    #[test]
    fn a_note_is_edited_where_the_cursor_is() {
        let mut app = app();
        press(&mut app, &typing("npool to 40 now"));
        let ctrl_w = (KeyCode::Char('w'), KeyModifiers::CONTROL);
        let ctrl_u = (KeyCode::Char('u'), KeyModifiers::CONTROL);
        // Ctrl-W takes "now" back; ← twice and "0" goes in between "4" and "0".
        press(
            &mut app,
            &[ctrl_w, plain(KeyCode::Left), plain(KeyCode::Left)],
        );
        press(&mut app, &typing("0"));
        let note = app.ui.note.as_ref().unwrap();
        assert_eq!((note.text(), note.cursor()), ("pool to 400 ", 10));
        // Home, Delete, then Backspace at the start (nothing), End and Backspace.
        press(
            &mut app,
            &[
                plain(KeyCode::Home),
                plain(KeyCode::Delete),
                plain(KeyCode::Backspace),
                plain(KeyCode::End),
                plain(KeyCode::Backspace),
            ],
        );
        assert_eq!(app.ui.note.as_ref().unwrap().text(), "ool to 400");
        // Ctrl-U from the middle keeps what is after the cursor.
        press(
            &mut app,
            &[
                plain(KeyCode::Left),
                plain(KeyCode::Left),
                plain(KeyCode::Left),
            ],
        );
        press(&mut app, &[ctrl_u]);
        press(&mut app, &typing("raised to"));
        press(&mut app, &[plain(KeyCode::Enter)]);
        assert_eq!(app.state.notes[0].text, "raised to400");
        // The footer draws the cursor where it is: on the 4 while it is before it.
        press(&mut app, &typing("nab"));
        press(&mut app, &[plain(KeyCode::Left)]);
        let buffer = ui::test_support::draw_screen(&app.state, &app.ui, &app.theme, 80, 24);
        let (x, y) = ui::test_support::find(&buffer, "note: ab").unwrap();
        let cursor = &buffer[(x + 7, y)];
        assert_eq!(cursor.symbol(), "b");
        assert!(cursor.modifier.contains(ratatui::style::Modifier::REVERSED));
        assert!(
            !buffer[(x + 6, y)]
                .modifier
                .contains(ratatui::style::Modifier::REVERSED)
        );
    }

    #[test]
    fn the_filter_prompt_edits_in_place_and_goes_back_through_the_filters_applied() {
        let mut app = app();
        let up = plain(KeyCode::Up);
        let down = plain(KeyCode::Down);
        let filter = |app: &App| app.ui.views.errors.line.text().to_string();
        for text in ["timeout", "refused", "refused", "level:warn"] {
            press(&mut app, &typing("/"));
            press(&mut app, &[(KeyCode::Char('u'), KeyModifiers::CONTROL)]);
            press(&mut app, &typing(text));
            press(&mut app, &[plain(KeyCode::Enter)]);
        }
        assert_eq!(app.ui.views.errors.filter.input, "level:warn");
        // ↑ goes back newest first (the repeat kept once), ↓ forward to what was typed.
        press(&mut app, &typing("/"));
        press(&mut app, &[(KeyCode::Char('u'), KeyModifiers::CONTROL)]);
        press(&mut app, &typing("red"));
        press(&mut app, &[up]);
        assert_eq!(filter(&app), "level:warn");
        press(&mut app, &[up]);
        assert_eq!(filter(&app), "refused");
        assert_eq!(
            app.ui.views.errors.filter.input, "refused",
            "applied as shown"
        );
        press(&mut app, &[up, up]);
        assert_eq!(filter(&app), "timeout");
        press(&mut app, &[down, down, down]);
        assert_eq!(filter(&app), "red");
        // Editing in the middle: Home, then the text goes in front.
        press(&mut app, &[plain(KeyCode::Home)]);
        press(&mut app, &typing("!"));
        assert_eq!(filter(&app), "!red");
        assert_eq!(app.ui.views.errors.line.cursor(), 1);
        assert!(app.ui.views.errors.filter.exclude.is_some());
        // Esc gives back the filter applied before.
        press(&mut app, &[plain(KeyCode::Esc)]);
        assert_eq!(app.ui.views.errors.filter.input, "level:warn");
        assert_eq!(
            app.ui.views.errors.history.entries().collect::<Vec<_>>(),
            ["level:warn", "refused", "timeout"]
        );
    }

    /// An app with a firing alert and an error line whose message carries escape sequences.
    fn triage_app() -> App {
        use crate::model::figure::Reading;
        use crate::model::rule::{Rule, Threshold};
        use crate::model::update::{LogLevel, LogLine};
        let mut app = app();
        let at = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 23, 11, 50, 0).unwrap();
        app.apply_update(Update::Logs(vec![
            LogLine::new("tmws", at, LogLevel::Error, "first failure".to_string()),
            LogLine::new(
                "tmws",
                at,
                LogLevel::Error,
                "Failed \x1b]52;c;UFdORUQ=\x07to call\x1b[2J MCP tool".to_string(),
            ),
        ]));
        app.apply_update(Update::Readings {
            source: "api".into(),
            readings: vec![
                Reading::number("api.up", "api up", 0.0, "")
                    .with_rule(Rule::crit_only(Threshold::below(1.0))),
            ],
        });
        app
    }

    #[test]
    fn y_copies_the_selected_line_sanitized() {
        let mut app = triage_app();
        // Elsewhere, y says where it works.
        press(&mut app, &typing("y"));
        assert!(app.ui.flash.as_deref().unwrap().contains("focus Errors"));
        assert_eq!(app.take_clipboard(), None);
        press(&mut app, &typing("6y"));
        let copied = app.take_clipboard().expect("the newest line is copied");
        assert_eq!(
            copied,
            "2026-11-23 11:50:00 tmws ERROR Failed to call MCP tool"
        );
        assert_eq!(
            app.ui.flash.as_deref(),
            Some(format!("copied 1 line ({} bytes)", copied.len()).as_str())
        );
        // One line back.
        press(&mut app, &[plain(KeyCode::Up)]);
        press(&mut app, &typing("y"));
        assert_eq!(
            app.take_clipboard().as_deref(),
            Some("2026-11-23 11:50:00 tmws ERROR first failure")
        );
    }

    fn command(app: &mut App, text: &str) {
        press(app, &typing(":"));
        press(app, &typing(text));
        press(app, &[plain(KeyCode::Enter)]);
        assert!(app.ui.command.is_none(), "Enter closes the command line");
    }

    #[test]
    fn colon_commands_do_what_their_keys_do() {
        let mut app = triage_app();
        let flash = |app: &App| app.ui.flash.clone().unwrap_or_default();
        // :note TEXT keeps it; :note alone opens the note prompt.
        command(&mut app, "note pool to 40");
        assert_eq!(app.state.notes[0].text, "pool to 40");
        command(&mut app, "note");
        assert!(app.ui.note.is_some());
        press(&mut app, &[plain(KeyCode::Esc)]);
        // :ack / :unack on the selected alert of the Alerts pane.
        command(&mut app, "ack");
        assert!(flash(&app).contains("focus Alerts"), "{}", flash(&app));
        app.handle(Action::Focus(PaneId::Alerts));
        command(&mut app, "ack");
        assert!(app.state.alerts.active[0].acknowledged);
        assert_eq!(flash(&app), "acknowledged api.up");
        command(&mut app, "unack");
        assert!(!app.state.alerts.active[0].acknowledged);
        assert_eq!(flash(&app), "unacknowledged api.up");
        command(&mut app, "unack");
        assert_eq!(flash(&app), "api.up is not acknowledged");
        // :filter applies as / then Enter (and goes into the filter history).
        command(&mut app, "filter time(out|d)");
        assert_eq!(app.ui.focus, PaneId::Errors);
        assert_eq!(app.ui.views.errors.filter.input, "time(out|d)");
        assert!(!app.ui.views.errors.editing);
        assert_eq!(
            app.ui.views.errors.history.entries().next(),
            Some("time(out|d)")
        );
        command(&mut app, "filter (unclosed");
        assert!(
            flash(&app).starts_with("filter not applied: bad regex"),
            "{}",
            flash(&app)
        );
        assert_eq!(app.ui.views.errors.filter.input, "time(out|d)", "kept");
        command(&mut app, "filter");
        assert!(!app.ui.views.errors.filter.is_active());
        // :theme switches to a built-in theme.
        command(&mut app, "theme monochrome");
        assert_eq!(app.theme, Theme::built_in("monochrome").unwrap());
        command(&mut app, "theme plaid");
        assert!(
            flash(&app).starts_with("unknown theme \"plaid\""),
            "{}",
            flash(&app)
        );
        assert_eq!(app.theme.name, "monochrome");
        // Tab completes; a mistake is a sentence; Esc drops the line; :q quits.
        press(&mut app, &typing(":th"));
        press(&mut app, &[plain(KeyCode::Tab)]);
        press(&mut app, &typing("d"));
        press(&mut app, &[plain(KeyCode::Tab)]);
        assert_eq!(app.ui.command.as_ref().unwrap().text(), "theme default");
        press(&mut app, &[plain(KeyCode::Enter)]);
        assert_eq!(app.theme.name, "default");
        command(&mut app, "launch missiles");
        assert!(
            flash(&app).starts_with("unknown command :launch"),
            "{}",
            flash(&app)
        );
        press(&mut app, &typing(":q"));
        press(&mut app, &[plain(KeyCode::Esc)]);
        assert!(!app.quit && app.ui.command.is_none());
        command(&mut app, "q");
        assert!(app.quit);
    }

    /// Runs the event loop on `screen` with the keys and updates the test sends, until a
    /// key quits it (30 s at most).
    async fn run_until_quit(
        app: &mut App,
        screen: &mut Frames,
        keys: mpsc::Receiver<Event>,
        updates: mpsc::Receiver<Update>,
    ) {
        let keys = Box::pin(futures::stream::unfold(keys, |mut rx| async move {
            rx.recv().await.map(|event| (Ok(event), rx))
        }));
        let never = Box::pin(std::future::pending::<()>());
        tokio::time::timeout(
            Duration::from_secs(30),
            event_loop(app, screen, keys, updates, never),
        )
        .await
        .expect("q ends the loop")
        .unwrap();
    }

    #[tokio::test]
    async fn the_event_loop_writes_a_copy_to_the_terminal_before_the_next_frame() {
        let mut app = triage_app();
        let mut screen = Frames::new(100, 30);
        let (_tx, rx) = mpsc::channel(1);
        let (keys_tx, keys_rx) = mpsc::channel(4);
        let typist = tokio::spawn(async move {
            for c in ['6', 'y', 'q'] {
                tokio::time::sleep(Duration::from_millis(200)).await;
                keys_tx
                    .send(Event::Key(key(KeyCode::Char(c))))
                    .await
                    .unwrap();
            }
        });
        run_until_quit(&mut app, &mut screen, keys_rx, rx).await;
        typist.await.unwrap();
        let [(before, text)] = screen.copied.as_slice() else {
            panic!("one copy: {:?}", screen.copied);
        };
        assert_eq!(
            text,
            "2026-11-23 11:50:00 tmws ERROR Failed to call MCP tool"
        );
        // The frame right after it says so.
        let frame = &screen.shown[*before];
        assert!(frame.contains("copied 1 line (54 bytes)"), "{frame}");
    }

    #[tokio::test]
    async fn the_event_loop_applies_a_flood_draws_and_quits_on_q() {
        use crate::model::update::{LogLevel, LogLine};
        let mut app = app();
        app.handle(Action::Focus(PaneId::Errors));
        let mut screen = Frames::new(120, 30);
        let (tx, rx) = mpsc::channel(4);
        // More lines than one slice, in batches the bounded channel makes wait.
        let flood = tokio::spawn(async move {
            for batch in 0..20 {
                let lines = (0..LINES_PER_SLICE / 2)
                    .map(|i| {
                        let text = format!("batch {batch} line {i} failed");
                        LogLine::new("app", Utc::now(), LogLevel::Error, text)
                    })
                    .collect();
                tx.send(Update::Logs(lines)).await.unwrap();
            }
        });
        // The user waits for the flood to be sent, then presses q.
        let (keys_tx, keys_rx) = mpsc::channel(1);
        let press = tokio::spawn(async move {
            flood.await.unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
            keys_tx
                .send(Event::Key(key(KeyCode::Char('q'))))
                .await
                .unwrap();
        });
        run_until_quit(&mut app, &mut screen, keys_rx, rx).await;
        press.await.unwrap();
        assert!(app.quit);
        assert_eq!(app.state.logs.pushed(), 20 * LINES_PER_SLICE as u64 / 2);
        let last = screen.shown.last().expect("frames were drawn");
        assert!(last.contains("batch 19 line 4095 failed"), "{last}");
    }

    #[tokio::test]
    async fn the_event_loop_ends_with_its_quit_future_or_its_input() {
        let mut app = app();
        let mut screen = Frames::new(80, 24);
        let (_tx, rx) = mpsc::channel(1);
        let idle = Box::pin(futures::stream::pending());
        let soon = Box::pin(tokio::time::sleep(Duration::from_millis(50)));
        event_loop(&mut app, &mut screen, idle, rx, soon)
            .await
            .unwrap();
        assert!(app.quit && !screen.shown.is_empty());

        // Input that ends (the terminal went away) ends the loop too.
        let mut app = self::app();
        let (_tx, rx) = mpsc::channel(1);
        let closed = Box::pin(futures::stream::empty());
        let never = Box::pin(std::future::pending::<()>());
        tokio::time::timeout(
            Duration::from_secs(10),
            event_loop(&mut app, &mut screen, closed, rx, never),
        )
        .await
        .expect("closed input ends the loop")
        .unwrap();
        assert!(app.quit);
    }
}
