//! The key table: every key the dashboard answers to, as data. The keymap
//! ([`Keymap::action_for`]), the `?` overlay ([`Keymap::help_rows`]) and the footer
//! ([`Keymap::footer_hints`], [`Keymap::prompt_hints`]) are all read from it, so they
//! cannot disagree.
//!
//! The built-in table is this file's keys for the whole screen ([`SCREEN`] and
//! [`GENERAL`]) with each pane's own part (`ui::panes::<pane>::KEYS`, beside its render
//! function) between them, in pane order. Each [`Binding`] names its action by a stable
//! name ([`Action::name`]): the user's keymap file (`file.rs`) rebinds by that name, and
//! the [`Keymap`] in effect is the built-in table with the file applied.

mod file;

pub use file::{KeymapError, default_path};

use super::PaneId;
use super::UiState;
use super::panes;
use super::prompt::Edit;
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use std::borrow::Cow;
use std::sync::{Arc, LazyLock};

/// What a key (or mouse event) asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Quit,
    ToggleHelp,
    FocusNext,
    FocusPrevious,
    Focus(PaneId),
    /// The watch window (checkpoints, record, every source), zoomed: it is the overview's
    /// header line, not a pane of it.
    WatchWindow,
    ToggleZoom,
    Back,
    StartFilter,
    FilterInput(char),
    FilterBackspace,
    FilterApply,
    FilterCancel,
    /// The filter prompt: the filter applied before the one shown / the one after it.
    FilterOlder,
    FilterNewer,
    /// An editing key of whichever prompt is open (the cursor, deleting words).
    Edit(Edit),
    ToggleErrorsOnly,
    /// Errors pane: wrap long messages or cut them.
    ToggleWrap,
    /// Errors pane, zoomed: the top error patterns or the tail.
    TogglePatterns,
    /// Errors pane, zoomed: every field of the selected line (or pattern example).
    ToggleLineFields,
    /// Errors pane: back to the newest line, following.
    Follow,
    /// Errors pane: the selected line to the terminal's clipboard (OSC 52).
    CopyLine,
    TogglePause,
    Acknowledge,
    /// Takes an acknowledgement back (the `:unack` command; no key of its own).
    Unacknowledge,
    StartNote,
    NoteInput(char),
    NoteBackspace,
    NoteSave,
    NoteCancel,
    /// The `:` command line.
    StartCommand,
    CommandInput(char),
    CommandBackspace,
    CommandComplete,
    CommandRun,
    CommandCancel,
    ToggleMouse,
    /// Containers pane: sort by the next column / reverse the sort.
    SortNext,
    SortReverse,
    Up(usize),
    Down(usize),
    Top,
    Bottom,
    Click {
        column: u16,
        row: u16,
    },
    Resize,
}

impl Action {
    /// The name a keymap file uses for it; stable across releases.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::ToggleHelp => "help",
            Action::FocusNext => "focus_next",
            Action::FocusPrevious => "focus_previous",
            Action::Focus(_) => "focus_pane",
            Action::WatchWindow => "watch_window",
            Action::ToggleZoom => "zoom",
            Action::Back => "back",
            Action::StartFilter => "filter",
            Action::FilterInput(_) => "filter_type",
            Action::FilterBackspace => "filter_backspace",
            Action::FilterApply => "filter_apply",
            Action::FilterCancel => "filter_cancel",
            Action::FilterOlder => "filter_older",
            Action::FilterNewer => "filter_newer",
            Action::Edit(edit) => edit.name(),
            Action::ToggleErrorsOnly => "errors_only",
            Action::ToggleWrap => "wrap",
            Action::TogglePatterns => "patterns",
            Action::ToggleLineFields => "line_fields",
            Action::Follow => "follow",
            Action::CopyLine => "copy_line",
            Action::TogglePause => "pause",
            Action::Acknowledge => "ack",
            Action::Unacknowledge => "unack",
            Action::StartNote => "note",
            Action::NoteInput(_) => "note_type",
            Action::NoteBackspace => "note_backspace",
            Action::NoteSave => "note_save",
            Action::NoteCancel => "note_cancel",
            Action::StartCommand => "command",
            Action::CommandInput(_) => "command_type",
            Action::CommandBackspace => "command_backspace",
            Action::CommandComplete => "command_complete",
            Action::CommandRun => "command_run",
            Action::CommandCancel => "command_cancel",
            Action::ToggleMouse => "mouse",
            Action::SortNext => "sort_next",
            Action::SortReverse => "sort_reverse",
            Action::Up(1) => "up",
            Action::Up(_) => "page_up",
            Action::Down(1) => "down",
            Action::Down(_) => "page_down",
            Action::Top => "top",
            Action::Bottom => "bottom",
            Action::Click { .. } => "click",
            Action::Resize => "resize",
        }
    }

    /// The action a [`Key::Text`] or [`Key::PaneNumber`] binding stands for, its
    /// placeholder filled with the character typed or the pane numbered.
    fn filled(&self, c: char, pane: Option<PaneId>) -> Action {
        match self {
            Action::FilterInput(_) => Action::FilterInput(c),
            Action::NoteInput(_) => Action::NoteInput(c),
            Action::CommandInput(_) => Action::CommandInput(c),
            Action::Focus(p) => Action::Focus(pane.unwrap_or(*p)),
            other => other.clone(),
        }
    }
}

/// A key of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// One key; with Ctrl held when `ctrl` (Shift is in the character: `S`, `G`). A key
    /// without Ctrl answers whatever other modifiers are held.
    Press(KeyCode, bool),
    /// Any character: text typed into a prompt.
    Text,
    /// `1`, `2`, …: the pane with that number on the overview ([`Keymap::panes`]).
    PaneNumber,
}

/// A character key.
pub const fn ch(c: char) -> Key {
    Key::Press(KeyCode::Char(c), false)
}

/// A named key (Enter, Esc, ↑, …).
pub const fn code(code: KeyCode) -> Key {
    Key::Press(code, false)
}

/// A character with Ctrl held.
pub const fn ctrl(c: char) -> Key {
    Key::Press(KeyCode::Char(c), true)
}

impl Key {
    /// The action bound to this key for the event, if the event is this key.
    fn answers(&self, event: &KeyEvent, action: &Action, panes: &[PaneId]) -> Option<Action> {
        match (*self, event.code) {
            (Key::Press(code, ctrl), pressed) => (code == pressed
                && (!ctrl || event.modifiers.contains(KeyModifiers::CONTROL)))
            .then(|| action.clone()),
            (Key::Text, KeyCode::Char(c)) => Some(action.filled(c, None)),
            (Key::PaneNumber, KeyCode::Char(c @ '1'..='9')) => {
                let pane = panes.get(c as usize - '1' as usize)?;
                Some(action.filled(c, Some(*pane)))
            }
            _ => None,
        }
    }

    /// How the overlay writes it: `↑`, `PgUp`, `Shift-Tab`, `Ctrl-C`, `1–7` (the number
    /// keys of the `panes` panes on the overview).
    pub fn label(&self, panes: usize) -> String {
        match self {
            Key::Press(code, ctrl) => {
                let name = match code {
                    KeyCode::Char(' ') => "Space".into(),
                    KeyCode::Char(c) if *ctrl => c.to_ascii_uppercase().to_string(),
                    KeyCode::Char(c) => c.to_string(),
                    KeyCode::F(n) => format!("F{n}"),
                    KeyCode::Up => "↑".into(),
                    KeyCode::Down => "↓".into(),
                    KeyCode::Left => "←".into(),
                    KeyCode::Right => "→".into(),
                    KeyCode::PageUp => "PgUp".into(),
                    KeyCode::PageDown => "PgDn".into(),
                    KeyCode::BackTab => "Shift-Tab".into(),
                    other => format!("{other:?}"),
                };
                if *ctrl { format!("Ctrl-{name}") } else { name }
            }
            Key::Text => "text".into(),
            Key::PaneNumber => format!("1–{}", panes.min(9)),
        }
    }

    /// The keys it stands for: the number keys one by one; nothing for [`Key::Text`] (any
    /// character, which [`Keymap::clashes`] looks at on its own).
    fn spelled_out(&self, panes: usize) -> Vec<Key> {
        match self {
            Key::Press(..) => vec![*self],
            Key::Text => Vec::new(),
            Key::PaneNumber => (1..=panes.min(9) as u32)
                .filter_map(|n| char::from_digit(n, 10))
                .map(ch)
                .collect(),
        }
    }

    /// How the footer writes it (plain ASCII where the overlay has a dash).
    pub(crate) fn short_label(&self, panes: usize) -> String {
        match self {
            Key::PaneNumber => format!("1-{}", panes.min(9)),
            other => other.label(panes),
        }
    }

    /// Reads a key as a keymap file writes it: a character (`q`, `Q`, `?`, `/`), `space`, a
    /// named key (`enter`, `esc`, `tab`, `backtab`, `backspace`, `delete`, `insert`, `up`,
    /// `down`, `left`, `right`, `pgup`, `pgdn`, `home`, `end`, `f1`…`f12`), or either
    /// after `ctrl-` (`ctrl-a`, `ctrl-up`). Names are read in any case; a character as it
    /// is (`Q` is Shift-q).
    pub fn parse(text: &str) -> Result<Key, String> {
        let lower = text.to_ascii_lowercase();
        let (ctrl, rest) = match ["ctrl-", "ctrl+"]
            .iter()
            .find(|prefix| lower.starts_with(*prefix) && text.len() > prefix.len())
        {
            // The prefixes are ASCII: cutting at their length is cutting at a char boundary.
            Some(prefix) => (true, &text[prefix.len()..]),
            None => (false, text),
        };
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (None, _) => return Err("a key is a character or a name such as enter".into()),
            (Some(c), None) if c.is_control() => {
                return Err("a control character; write ctrl-x instead".into());
            }
            (Some(c), None) if ctrl && c.is_ascii_alphabetic() => {
                KeyCode::Char(c.to_ascii_lowercase())
            }
            (Some(_), None) if ctrl => {
                return Err("Ctrl goes with a letter or a named key (ctrl-a, ctrl-up)".into());
            }
            (Some(c), None) => KeyCode::Char(c),
            _ => named(&rest.to_ascii_lowercase()).ok_or_else(|| {
                let word = lower.split(['-', '+']).next().unwrap_or_default();
                match word {
                    "alt" | "meta" | "super" | "cmd" => {
                        "only Ctrl is read as a modifier".to_string()
                    }
                    "shift" => "write Shift with the character itself (Q, not shift-q)".into(),
                    _ => "not a key name: use a character or one of space, enter, esc, \
                          tab, backtab, backspace, delete, insert, up, down, left, right, \
                          pgup, pgdn, home, end, f1-f12, each optionally after ctrl-"
                        .into(),
                }
            })?,
        };
        Ok(Key::Press(code, ctrl))
    }
}

/// A named key of [`Key::parse`], lower case.
fn named(name: &str) -> Option<KeyCode> {
    Some(match name {
        "space" => KeyCode::Char(' '),
        "enter" | "return" => KeyCode::Enter,
        "esc" | "escape" => KeyCode::Esc,
        "tab" => KeyCode::Tab,
        "backtab" | "shift-tab" => KeyCode::BackTab,
        "backspace" => KeyCode::Backspace,
        "delete" | "del" => KeyCode::Delete,
        "insert" | "ins" => KeyCode::Insert,
        "up" => KeyCode::Up,
        "down" => KeyCode::Down,
        "left" => KeyCode::Left,
        "right" => KeyCode::Right,
        "pgup" | "pageup" => KeyCode::PageUp,
        "pgdn" | "pagedown" => KeyCode::PageDown,
        "home" => KeyCode::Home,
        "end" => KeyCode::End,
        _ => match name.strip_prefix('f').map(str::parse::<u8>) {
            Some(Ok(n @ 1..=12)) => KeyCode::F(n),
            _ => return None,
        },
    })
}

/// Where a binding applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum When {
    /// Everywhere, even while text is typed.
    Always,
    /// The dashboard, no prompt or overlay open.
    Screen,
    /// The `?` overlay is open.
    Help,
    /// A note is being typed.
    Note,
    /// The `:` command line is open.
    Command,
    /// A pane's prompt is open (the Errors filter).
    Prompt(PaneId),
    /// The pane is focused and zoomed (before [`When::Screen`]'s bindings).
    Zoomed(PaneId),
}

impl When {
    /// Where it applies, in words: "on the dashboard".
    pub fn describe(self) -> String {
        match self {
            Always => "everywhere".into(),
            Screen => "on the dashboard".into(),
            When::Help => "in the help overlay".into(),
            When::Note => "while a note is typed".into(),
            When::Command => "in the command line".into(),
            When::Prompt(pane) => format!("in the {} pane's prompt", pane.title()),
            When::Zoomed(pane) => format!("in the zoomed {} pane", pane.title()),
        }
    }
}

/// How a binding shows in the `?` overlay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Help {
    /// Not listed: prompt and overlay keys, which the footer or the overlay's own frame says.
    Hidden,
    /// A row of its own: its text, continued on more lines when there are more.
    Row(&'static [&'static str]),
    /// On the row before it, its keys beside that row's (`↓` beside `↑`).
    Same,
}

/// How a binding shows in the footer: `keys:hint` (`keys hint` in a prompt), in `order`;
/// neighbours with the same hint share it (`Tab/1-7:focus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Footer {
    pub order: u8,
    pub hint: &'static str,
}

/// One entry of the key table.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Binding {
    /// The built-in keys, or the keymap file's.
    pub keys: Cow<'static, [Key]>,
    pub action: Action,
    pub when: When,
    pub help: Help,
    pub footer: Option<Footer>,
}

impl Binding {
    pub const fn new(keys: &'static [Key], action: Action, when: When, help: Help) -> Binding {
        Binding {
            keys: Cow::Borrowed(keys),
            action,
            when,
            help,
            footer: None,
        }
    }

    /// Shown in the footer as `keys:hint`, in `order`.
    pub const fn footer(mut self, order: u8, hint: &'static str) -> Binding {
        self.footer = Some(Footer { order, hint });
        self
    }

    /// Whether a keymap file may give it other keys: not Ctrl-C's quit, which works even
    /// while text is typed, nor the text and number keys.
    fn rebindable(&self) -> bool {
        self.when != Always && self.keys.iter().all(|k| matches!(k, Key::Press(..)))
    }
}

use Help::{Hidden, Row, Same};
use When::{Always, Screen};

/// The screen's keys listed before the panes' own: help, focus, zoom, moving.
pub(crate) const SCREEN: &[Binding] = &[
    Binding::new(&[ctrl('c')], Action::Quit, Always, Hidden),
    Binding::new(
        &[ch('?')],
        Action::ToggleHelp,
        Screen,
        Row(&["show / hide this help"]),
    )
    .footer(0, "help"),
    Binding::new(
        &[code(KeyCode::Tab)],
        Action::FocusNext,
        Screen,
        Row(&["next / previous pane"]),
    )
    .footer(1, "focus"),
    Binding::new(
        &[code(KeyCode::BackTab)],
        Action::FocusPrevious,
        Screen,
        Same,
    ),
    Binding::new(
        &[Key::PaneNumber],
        Action::Focus(PaneId::Services),
        Screen,
        Row(&["focus a pane by the number in its title"]),
    )
    .footer(1, "focus"),
    Binding::new(
        &[ch('0')],
        Action::WatchWindow,
        Screen,
        Row(&["the watch window: checkpoints, record, sources"]),
    ),
    Binding::new(
        &[code(KeyCode::Enter)],
        Action::ToggleZoom,
        Screen,
        Row(&["zoom / drill down"]),
    )
    .footer(2, "zoom"),
    Binding::new(
        &[code(KeyCode::Esc)],
        Action::Back,
        Screen,
        Row(&["back: close help, unzoom, cancel filter"]),
    )
    .footer(3, "back"),
    Binding::new(
        &[code(KeyCode::Up), ch('k')],
        Action::Up(1),
        Screen,
        Row(&["select a row / scroll the errors back (pauses)"]),
    ),
    Binding::new(
        &[code(KeyCode::Down), ch('j')],
        Action::Down(1),
        Screen,
        Same,
    ),
    Binding::new(
        &[code(KeyCode::PageUp)],
        Action::Up(10),
        Screen,
        Row(&["a page up / down"]),
    ),
    Binding::new(&[code(KeyCode::PageDown)], Action::Down(10), Screen, Same),
    Binding::new(
        &[code(KeyCode::Home), ch('g')],
        Action::Top,
        Screen,
        Row(&["top / bottom (End follows new lines)"]),
    ),
    Binding::new(&[code(KeyCode::End), ch('G')], Action::Bottom, Screen, Same),
    // The overlay: closed by the keys that say so on its frame. Each is its action's own,
    // so that rebinding `quit`, `help` or `back` rebinds it here too.
    Binding::new(&[ch('q')], Action::Quit, When::Help, Hidden),
    Binding::new(&[ch('?')], Action::ToggleHelp, When::Help, Hidden),
    Binding::new(
        &[code(KeyCode::Esc), code(KeyCode::Enter)],
        Action::Back,
        When::Help,
        Hidden,
    ),
    // A note being typed: keys are text.
    Binding::new(
        &[code(KeyCode::Enter)],
        Action::NoteSave,
        When::Note,
        Hidden,
    )
    .footer(0, "save"),
    Binding::new(
        &[code(KeyCode::Esc)],
        Action::NoteCancel,
        When::Note,
        Hidden,
    )
    .footer(1, "cancel"),
    Binding::new(
        &[code(KeyCode::Backspace)],
        Action::NoteBackspace,
        When::Note,
        Hidden,
    ),
    Binding::new(&[Key::Text], Action::NoteInput(' '), When::Note, Hidden),
    // The `:` command line: keys are text.
    Binding::new(
        &[code(KeyCode::Enter)],
        Action::CommandRun,
        When::Command,
        Hidden,
    )
    .footer(0, "run"),
    Binding::new(
        &[code(KeyCode::Esc)],
        Action::CommandCancel,
        When::Command,
        Hidden,
    )
    .footer(1, "cancel"),
    Binding::new(
        &[code(KeyCode::Tab)],
        Action::CommandComplete,
        When::Command,
        Hidden,
    )
    .footer(2, "complete"),
    Binding::new(
        &[code(KeyCode::Backspace)],
        Action::CommandBackspace,
        When::Command,
        Hidden,
    ),
    Binding::new(
        &[Key::Text],
        Action::CommandInput(' '),
        When::Command,
        Hidden,
    ),
];

/// The keys that edit the text of every prompt (the note, the command line, a pane's
/// prompt), each given to all of them by [`bindings`]. The footer does not list them;
/// the README does.
const EDITING: &[(&[Key], Edit)] = &[
    (&[code(KeyCode::Left)], Edit::Left),
    (&[code(KeyCode::Right)], Edit::Right),
    (&[code(KeyCode::Home)], Edit::Start),
    (&[code(KeyCode::End)], Edit::End),
    (&[code(KeyCode::Delete)], Edit::DeleteForward),
    (&[ctrl('w')], Edit::DeleteWord),
    (&[ctrl('u')], Edit::DeleteToStart),
];

/// [`EDITING`] in every prompt.
static PROMPT_EDITING: LazyLock<Vec<Binding>> = LazyLock::new(|| {
    let mut prompts = vec![When::Note, When::Command];
    prompts.extend(
        panes::PANES
            .iter()
            .filter(|p| p.prompt.is_some())
            .map(|p| When::Prompt(p.id)),
    );
    prompts
        .into_iter()
        .flat_map(|when| {
            EDITING
                .iter()
                .map(move |&(keys, edit)| Binding::new(keys, Action::Edit(edit), when, Hidden))
        })
        .collect()
});

/// The screen's keys listed after the panes' own.
pub(crate) const GENERAL: &[Binding] = &[
    Binding::new(
        &[ch('p')],
        Action::TogglePause,
        Screen,
        Row(&["pause / resume live updates"]),
    )
    .footer(5, "pause"),
    Binding::new(
        &[ch('n')],
        Action::StartNote,
        Screen,
        Row(&["write a note into the window's record"]),
    )
    .footer(7, "note"),
    Binding::new(
        &[ch(':')],
        Action::StartCommand,
        Screen,
        Row(&["command line: q note ack unack filter theme"]),
    ),
    Binding::new(
        &[ch('m')],
        Action::ToggleMouse,
        Screen,
        Row(&["mouse on / off"]),
    )
    .footer(8, "mouse"),
    Binding::new(&[ch('q'), ctrl('c')], Action::Quit, Screen, Row(&["quit"])).footer(9, "quit"),
];

/// The built-in table, in the overlay's order.
fn bindings() -> impl Iterator<Item = &'static Binding> {
    SCREEN
        .iter()
        .chain(panes::PANES.iter().flat_map(|p| p.keys.iter()))
        .chain(GENERAL.iter())
        .chain(PROMPT_EDITING.iter())
}

/// Which bindings apply now, most specific first.
fn contexts(ui: &UiState) -> Vec<When> {
    if ui.note.is_some() {
        return vec![Always, When::Note];
    }
    if ui.command.is_some() {
        return vec![Always, When::Command];
    }
    if let Some(pane) = panes::prompt_open(ui) {
        return vec![Always, When::Prompt(pane)];
    }
    if ui.help {
        return vec![Always, When::Help];
    }
    let mut out = vec![Always];
    if ui.zoomed {
        out.push(When::Zoomed(ui.focus));
    }
    out.push(Screen);
    out
}

/// The keymap in effect ([`UiState::keymap`]): the action for `key`.
pub fn action_for_key(key: KeyEvent, ui: &UiState) -> Option<Action> {
    ui.keymap.action_for(key, ui)
}

/// The key table in effect: the built-in one, with the user's keymap file applied
/// ([`Keymap::load`]). The keymap, the `?` overlay and the footer all read it.
#[derive(Clone, Debug, PartialEq)]
pub struct Keymap {
    bindings: Vec<Binding>,
    /// The panes on the overview, in focus order: what Tab visits and the number keys
    /// reach ([`Keymap::for_panes`]).
    panes: Vec<PaneId>,
}

impl Default for Keymap {
    fn default() -> Self {
        Keymap {
            bindings: bindings().cloned().collect(),
            panes: panes::DEMO_OVERVIEW.to_vec(),
        }
    }
}

/// One copy of the built-in keymap for every [`UiState`] that has no other.
static BUILT_IN: LazyLock<Arc<Keymap>> = LazyLock::new(|| Arc::new(Keymap::default()));

/// Two actions on one key where both apply (found by [`Keymap::clashes`]).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Clash {
    pub key: Key,
    pub when: When,
    /// The action that has the key first in the table, then the other.
    pub names: [&'static str; 2],
}

impl Keymap {
    /// The built-in keymap, shared.
    pub fn built_in() -> Arc<Keymap> {
        Arc::clone(&BUILT_IN)
    }

    /// This keymap for the panes on the overview (in focus order; never none: the first
    /// has the focus).
    pub fn for_panes(mut self, shown: Vec<PaneId>) -> Keymap {
        if !shown.is_empty() {
            self.panes = shown;
        }
        self
    }

    /// The panes on the overview, in focus order.
    pub fn panes(&self) -> &[PaneId] {
        &self.panes
    }

    /// The action of the binding that applies and answers to `key`, the most specific
    /// scope first; within a scope a key bound as pressed (with or without Ctrl) comes
    /// before one that answers whatever modifiers are held.
    pub(crate) fn action_for(&self, key: KeyEvent, ui: &UiState) -> Option<Action> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        let exact = Key::Press(key.code, key.modifiers.contains(KeyModifiers::CONTROL));
        contexts(ui).into_iter().find_map(|when| {
            let scope = || self.bindings.iter().filter(move |b| b.when == when);
            scope()
                .find(|b| b.keys.contains(&exact))
                .map(|b| b.action.clone())
                .or_else(|| {
                    scope().find_map(|b| {
                        b.keys
                            .iter()
                            .find_map(|k| k.answers(&key, &b.action, &self.panes))
                    })
                })
        })
    }

    /// The names a keymap file may rebind, in the table's order.
    pub(crate) fn rebindable_names(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for binding in self.bindings.iter().filter(|b| b.rebindable()) {
            if !out.contains(&binding.action.name()) {
                out.push(binding.action.name());
            }
        }
        out
    }

    /// Gives the action named `name` these keys wherever it is bound (the screen, the
    /// overlay, a prompt), but for the bindings that are not rebindable.
    pub(crate) fn rebind(&mut self, name: &str, keys: &[Key]) {
        for binding in self.bindings.iter_mut() {
            if binding.action.name() == name && binding.rebindable() {
                binding.keys = Cow::Owned(keys.to_vec());
            }
        }
    }

    /// Keys that would do two things: bound to two actions in one scope (Ctrl-C's quit,
    /// which applies everywhere, counting in each), a character bound where characters are
    /// text, a digit where digits focus the panes.
    pub(crate) fn clashes(&self) -> Vec<Clash> {
        let mut scopes: Vec<When> = Vec::new();
        for binding in &self.bindings {
            if binding.when != Always && !scopes.contains(&binding.when) {
                scopes.push(binding.when);
            }
        }
        let mut out = Vec::new();
        for when in scopes {
            let bound = self
                .bindings
                .iter()
                .filter(|b| b.when == Always || b.when == when);
            let text = bound
                .clone()
                .find(|b| b.keys.contains(&Key::Text))
                .map(|b| b.action.name());
            let mut seen: Vec<(Key, &'static str)> = Vec::new();
            for binding in bound {
                let name = binding.action.name();
                for key in binding
                    .keys
                    .iter()
                    .flat_map(|k| k.spelled_out(self.panes.len()))
                {
                    if let (Some(text), Key::Press(KeyCode::Char(_), false)) = (text, key) {
                        out.push(Clash {
                            key,
                            when,
                            names: [text, name],
                        });
                    }
                    match seen.iter().find(|(k, _)| *k == key) {
                        Some((_, first)) if *first != name => out.push(Clash {
                            key,
                            when,
                            names: [first, name],
                        }),
                        Some(_) => {}
                        None => seen.push((key, name)),
                    }
                }
            }
        }
        out
    }

    /// The first key of the action named `name` in `when`, as the footer writes it (`Esc`),
    /// for the text of a pane or the overlay that names a key.
    pub(crate) fn key_of(&self, name: &str, when: When) -> Option<String> {
        self.bindings
            .iter()
            .find(|b| b.when == when && b.action.name() == name)
            .and_then(|b| b.keys.first())
            .map(|k| k.short_label(self.panes.len()))
    }

    /// The overlay's rows. A row's keys are written column by column: the first key of
    /// each binding on the row, then the second ones (`↑ ↓  k j`).
    pub(crate) fn help_rows(&self) -> Vec<HelpRow> {
        let mut rows: Vec<(Vec<&Binding>, &'static [&'static str])> = Vec::new();
        for binding in &self.bindings {
            match binding.help {
                Hidden => {}
                Row(text) => rows.push((vec![binding], text)),
                Same => {
                    if let Some((row, _)) = rows.last_mut() {
                        row.push(binding);
                    }
                }
            }
        }
        rows.into_iter()
            .map(|(row, text)| {
                let depth = row.iter().map(|b| b.keys.len()).max().unwrap_or(0);
                let columns: Vec<String> = (0..depth)
                    .map(|i| {
                        let mut labels: Vec<String> = Vec::new();
                        for label in row
                            .iter()
                            .filter_map(|b| b.keys.get(i))
                            .map(|k| k.label(self.panes.len()))
                        {
                            if !labels.contains(&label) {
                                labels.push(label);
                            }
                        }
                        labels.join(" ")
                    })
                    .collect();
                HelpRow {
                    keys: columns.join("  "),
                    text,
                }
            })
            .collect()
    }

    /// Footer hints of the bindings in `when`, in their order, neighbours with one hint
    /// merged: (keys, hint, kept whatever the width: help and quit).
    fn hints(&self, when: When) -> Vec<(Vec<String>, &'static str, bool)> {
        let mut shown: Vec<(&Footer, &Binding)> = self
            .bindings
            .iter()
            .filter(|b| b.when == when)
            .filter_map(|b| b.footer.as_ref().map(|f| (f, b)))
            .collect();
        shown.sort_by_key(|(f, _)| f.order);
        let mut out: Vec<(Vec<String>, &'static str, bool)> = Vec::new();
        for (footer, binding) in shown {
            let key = binding
                .keys
                .first()
                .map(|k| k.short_label(self.panes.len()))
                .unwrap_or_default();
            let kept = matches!(binding.action, Action::ToggleHelp | Action::Quit);
            match out.last_mut() {
                Some((keys, hint, _)) if *hint == footer.hint => keys.push(key),
                _ => out.push((vec![key], footer.hint, kept)),
            }
        }
        out
    }

    /// The footer's hints on the dashboard: `?:help  Tab/1-7:focus  …`.
    #[cfg(test)]
    pub(crate) fn footer_hints(&self) -> String {
        self.footer_hints_within(usize::MAX)
    }

    /// The footer's hints in `width` columns: the hints are left out right to left, but
    /// for help and quit, which stay whatever the width (`?:help  q:quit`).
    pub(crate) fn footer_hints_within(&self, width: usize) -> String {
        let mut hints: Vec<(String, bool)> = self
            .hints(Screen)
            .into_iter()
            .map(|(keys, hint, kept)| (format!("{}:{hint}", keys.join("/")), kept))
            .collect();
        let joined = |hints: &[(String, bool)]| {
            hints
                .iter()
                .map(|(text, _)| text.as_str())
                .collect::<Vec<_>>()
                .join("  ")
        };
        while joined(&hints).chars().count() > width {
            match hints.iter().rposition(|(_, kept)| !kept) {
                Some(i) => {
                    hints.remove(i);
                }
                None => break,
            }
        }
        joined(&hints)
    }

    /// The footer's hints while a prompt is open: `Enter save · Esc cancel`.
    pub(crate) fn prompt_hints(&self, when: When) -> String {
        self.hints(when)
            .into_iter()
            .map(|(keys, hint, _)| format!("{} {hint}", keys.join("/")))
            .collect::<Vec<_>>()
            .join(" · ")
    }
}

/// One row of the `?` overlay: the keys and what they do (continued on more lines).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct HelpRow {
    pub(crate) keys: String,
    pub(crate) text: &'static [&'static str],
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::prompt::LineEdit;
    use std::collections::BTreeSet;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    /// Every key a terminal can send that the table could mention.
    fn candidates() -> Vec<KeyEvent> {
        let mut codes: Vec<KeyCode> = (' '..='~').map(KeyCode::Char).collect();
        codes.extend([
            KeyCode::Enter,
            KeyCode::Esc,
            KeyCode::Tab,
            KeyCode::BackTab,
            KeyCode::Backspace,
            KeyCode::Delete,
            KeyCode::Insert,
            KeyCode::Up,
            KeyCode::Down,
            KeyCode::Left,
            KeyCode::Right,
            KeyCode::PageUp,
            KeyCode::PageDown,
            KeyCode::Home,
            KeyCode::End,
        ]);
        codes.extend((1..=12).map(KeyCode::F));
        let plain = codes.iter().map(|c| key(*c, KeyModifiers::NONE));
        let with_ctrl = codes.iter().map(|c| key(*c, KeyModifiers::CONTROL));
        plain.chain(with_ctrl).collect()
    }

    /// The screens where different keys apply: the overview, and each pane zoomed.
    fn screens() -> Vec<UiState> {
        let mut out = vec![UiState::default()];
        for pane in panes::panes() {
            out.push(UiState {
                focus: *pane,
                zoomed: true,
                ..UiState::default()
            });
        }
        out
    }

    /// How the overlay names a key event (what `Key::label` writes for it).
    fn label(event: &KeyEvent) -> String {
        let ctrl = event.modifiers.contains(KeyModifiers::CONTROL);
        Key::Press(event.code, ctrl).label(0)
    }

    /// The overlay's key column, token by token, `1–9` spelled out.
    fn help_keys() -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for row in Keymap::default().help_rows() {
            for token in row.keys.split_whitespace() {
                if let Some((from, to)) = token.split_once('–') {
                    let (from, to): (u32, u32) = (from.parse().unwrap(), to.parse().unwrap());
                    out.extend((from..=to).map(|n| n.to_string()));
                } else {
                    out.insert(token.to_string());
                }
            }
        }
        out
    }

    #[test]
    fn every_key_the_keymap_answers_to_is_in_the_help_and_every_key_there_answers() {
        let shown = help_keys();
        let mut answered = BTreeSet::new();
        for ui in screens() {
            for event in candidates() {
                let Some(action) = action_for_key(event, &ui) else {
                    continue;
                };
                // A key held with Ctrl that does what it does without it is the same key.
                let plain = key(event.code, KeyModifiers::NONE);
                let ctrl = event.modifiers.contains(KeyModifiers::CONTROL);
                if ctrl && action_for_key(plain, &ui) == Some(action.clone()) {
                    continue;
                }
                let name = label(&event);
                assert!(
                    shown.contains(&name),
                    "{name} ({}) is not in the help",
                    action.name()
                );
                answered.insert(name);
            }
        }
        for name in &shown {
            assert!(
                answered.contains(name),
                "the help lists {name}: no key does"
            );
        }
    }

    #[test]
    fn prompt_keys_are_in_their_footer_and_other_keys_are_text() {
        let note = UiState {
            note: Some(LineEdit::default()),
            ..UiState::default()
        };
        let command = UiState {
            command: Some(LineEdit::default()),
            ..UiState::default()
        };
        let filter = UiState {
            views: panes::Views {
                errors: panes::errors::ErrorsView {
                    editing: true,
                    ..Default::default()
                },
                ..Default::default()
            },
            ..UiState::default()
        };
        for (ui, when, footer) in [
            (note, When::Note, "Enter save · Esc cancel"),
            (
                command,
                When::Command,
                "Enter run · Esc cancel · Tab complete",
            ),
            (
                filter,
                When::Prompt(PaneId::Errors),
                "Enter apply · Esc cancel · ↑/↓ history",
            ),
        ] {
            assert_eq!(Keymap::default().prompt_hints(when), footer);
            for binding in bindings().filter(|b| b.when == when) {
                for k in binding.keys.iter() {
                    let Key::Press(code, ctrl) = k else { continue };
                    let held = if *ctrl {
                        KeyModifiers::CONTROL
                    } else {
                        KeyModifiers::NONE
                    };
                    let event = key(*code, held);
                    assert_eq!(action_for_key(event, &ui), Some(binding.action.clone()));
                    if binding.footer.is_some() {
                        assert!(
                            footer.contains(&k.label(ui.keymap.panes().len())),
                            "{k:?} not in {footer:?}"
                        );
                    }
                }
            }
            // Any other character is text, even q; so are w and u without Ctrl.
            for c in ['q', 'w', 'u', ':'] {
                let typed = action_for_key(key(KeyCode::Char(c), KeyModifiers::NONE), &ui);
                assert!(typed.is_some_and(|a| a.name().ends_with("_type")), "{c}");
            }
            // Every prompt edits its text with the same keys.
            for (code, held, edit) in [
                (KeyCode::Left, KeyModifiers::NONE, Edit::Left),
                (KeyCode::Right, KeyModifiers::NONE, Edit::Right),
                (KeyCode::Home, KeyModifiers::NONE, Edit::Start),
                (KeyCode::End, KeyModifiers::NONE, Edit::End),
                (KeyCode::Delete, KeyModifiers::NONE, Edit::DeleteForward),
                (KeyCode::Char('w'), KeyModifiers::CONTROL, Edit::DeleteWord),
                (
                    KeyCode::Char('u'),
                    KeyModifiers::CONTROL,
                    Edit::DeleteToStart,
                ),
            ] {
                assert_eq!(
                    action_for_key(key(code, held), &ui),
                    Some(Action::Edit(edit)),
                    "{when:?}"
                );
            }
        }
        // Off the prompts, Home and End are the screen's.
        let screen = UiState::default();
        assert_eq!(
            action_for_key(key(KeyCode::Home, KeyModifiers::NONE), &screen),
            Some(Action::Top)
        );
        assert_eq!(
            action_for_key(key(KeyCode::End, KeyModifiers::NONE), &screen),
            Some(Action::Bottom)
        );
    }

    #[test]
    fn an_editing_key_rebound_is_rebound_in_every_prompt() {
        let keymap = Keymap::parse("[keys]\ncursor_start = \"ctrl-a\"\n").unwrap();
        let ctrl_a = key(KeyCode::Char('a'), KeyModifiers::CONTROL);
        for ui in [
            UiState {
                note: Some(LineEdit::default()),
                ..UiState::default()
            },
            UiState {
                command: Some(LineEdit::default()),
                ..UiState::default()
            },
        ] {
            let ui = UiState {
                keymap: Arc::new(keymap.clone()),
                ..ui
            };
            assert_eq!(action_for_key(ctrl_a, &ui), Some(Action::Edit(Edit::Start)));
        }
        // A character for it would be text in a prompt: refused.
        assert!(Keymap::parse("[keys]\ndelete_word = \"w\"\n").is_err());
    }

    #[test]
    fn the_footer_names_keys_that_do_what_it_says() {
        let ui = UiState::default();
        assert_eq!(
            Keymap::default().footer_hints(),
            "?:help  Tab/1-7:focus  Enter:zoom  Esc:back  /:filter  p:pause  a:ack  n:note  m:mouse  q:quit"
        );
        for (keys, hint, _) in Keymap::default().hints(Screen) {
            for spelled in keys {
                let event = if spelled.starts_with("1-") {
                    key(KeyCode::Char('1'), KeyModifiers::NONE)
                } else {
                    candidates()
                        .into_iter()
                        .find(|e| label(e) == spelled)
                        .unwrap_or_else(|| panic!("no key is spelled {spelled}"))
                };
                let action = action_for_key(event, &ui).expect("the key answers");
                assert!(
                    bindings().any(|b| b.when == Screen
                        && b.footer.is_some_and(|f| f.hint == hint)
                        && b.action.name() == action.name()),
                    "footer {spelled}:{hint} does {}",
                    action.name()
                );
            }
        }
    }

    #[test]
    fn no_key_is_bound_twice_where_it_applies_and_names_are_unique() {
        assert_eq!(Keymap::default().clashes(), []);
        for when in bindings().map(|b| b.when).collect::<Vec<_>>() {
            let mut seen_keys = Vec::new();
            let mut seen_names = BTreeSet::new();
            for binding in bindings().filter(|b| b.when == when) {
                for key in binding.keys.iter() {
                    assert!(!seen_keys.contains(key), "{key:?} twice in {when:?}");
                    seen_keys.push(*key);
                }
                assert!(
                    seen_names.insert(binding.action.name()),
                    "{} twice in {when:?}",
                    binding.action.name()
                );
            }
        }
    }

    #[test]
    fn digits_focus_the_panes_on_the_overview_in_their_order() {
        let mut ui = UiState::default();
        let digit = |n: usize| {
            key(
                KeyCode::Char(char::from_digit(n as u32, 10).unwrap()),
                KeyModifiers::NONE,
            )
        };
        for shown in [
            panes::DEMO_OVERVIEW.to_vec(),
            vec![PaneId::Services, PaneId::Figures, PaneId::Alerts],
        ] {
            ui.keymap = Arc::new(Keymap::default().for_panes(shown.clone()));
            for (i, pane) in shown.iter().enumerate() {
                assert_eq!(
                    action_for_key(digit(i + 1), &ui),
                    Some(Action::Focus(*pane))
                );
            }
            // The next digit is no pane's.
            assert_eq!(action_for_key(digit(shown.len() + 1), &ui), None);
            let help = ui.keymap.help_rows();
            let expected = format!("1–{}", shown.len());
            assert!(help.iter().any(|r| r.keys == expected), "{help:?}");
            assert!(
                ui.keymap
                    .footer_hints()
                    .contains(&format!("1-{}", shown.len()))
            );
        }
        // 0 zooms the watch window, which is not on the overview.
        assert_eq!(
            action_for_key(key(KeyCode::Char('0'), KeyModifiers::NONE), &ui),
            Some(Action::WatchWindow)
        );
    }

    #[test]
    fn keys_are_read_as_a_keymap_file_writes_them() {
        let press = |code, ctrl| Ok(Key::Press(code, ctrl));
        for (text, key) in [
            ("q", press(KeyCode::Char('q'), false)),
            ("Q", press(KeyCode::Char('Q'), false)),
            ("?", press(KeyCode::Char('?'), false)),
            ("/", press(KeyCode::Char('/'), false)),
            ("-", press(KeyCode::Char('-'), false)),
            ("space", press(KeyCode::Char(' '), false)),
            ("ctrl-c", press(KeyCode::Char('c'), true)),
            ("Ctrl+A", press(KeyCode::Char('a'), true)),
            ("enter", press(KeyCode::Enter, false)),
            ("Esc", press(KeyCode::Esc, false)),
            ("tab", press(KeyCode::Tab, false)),
            ("backtab", press(KeyCode::BackTab, false)),
            ("shift-tab", press(KeyCode::BackTab, false)),
            ("f1", press(KeyCode::F(1), false)),
            ("F12", press(KeyCode::F(12), false)),
            ("up", press(KeyCode::Up, false)),
            ("down", press(KeyCode::Down, false)),
            ("pgup", press(KeyCode::PageUp, false)),
            ("PgDn", press(KeyCode::PageDown, false)),
            ("home", press(KeyCode::Home, false)),
            ("end", press(KeyCode::End, false)),
            ("ctrl-up", press(KeyCode::Up, true)),
        ] {
            assert_eq!(Key::parse(text), key, "{text}");
        }
        for (text, why) in [
            ("", "a key is"),
            ("f13", "not a key name"),
            ("enterr", "not a key name"),
            ("alt-x", "only Ctrl"),
            ("shift-q", "Q, not shift-q"),
            ("ctrl-?", "Ctrl goes with a letter"),
            ("\t", "control character"),
        ] {
            let err = Key::parse(text).unwrap_err();
            assert!(err.contains(why), "{text:?}: {err}");
        }
        // What the overlay writes for keys only a keymap file binds.
        assert_eq!(Key::parse("space").unwrap().label(0), "Space");
        assert_eq!(Key::parse("f5").unwrap().label(0), "F5");
        assert_eq!(Key::parse("ctrl-a").unwrap().label(0), "Ctrl-A");
    }

    fn press(code: KeyCode) -> KeyEvent {
        key(code, KeyModifiers::NONE)
    }

    #[test]
    fn a_rebound_action_answers_its_new_keys_only() {
        let keymap = Keymap::parse(
            "[keys]\nquit = \"x\"\nack = [\"a\", \"ctrl-a\"]\npause = \"ctrl-p\"\nnote = \"p\"\n",
        )
        .unwrap();
        let ui = UiState {
            keymap: Arc::new(keymap),
            ..UiState::default()
        };
        let help = UiState {
            help: true,
            ..ui.clone()
        };
        let note = UiState {
            note: Some(LineEdit::default()),
            ..ui.clone()
        };
        let ctrl = |c| key(KeyCode::Char(c), KeyModifiers::CONTROL);
        assert_eq!(
            action_for_key(press(KeyCode::Char('x')), &ui),
            Some(Action::Quit)
        );
        assert_eq!(action_for_key(press(KeyCode::Char('q')), &ui), None);
        // In the overlay too; and Ctrl-C quits everywhere, as before.
        assert_eq!(
            action_for_key(press(KeyCode::Char('x')), &help),
            Some(Action::Quit)
        );
        assert_eq!(action_for_key(press(KeyCode::Char('q')), &help), None);
        assert_eq!(action_for_key(ctrl('c'), &ui), Some(Action::Quit));
        assert_eq!(action_for_key(ctrl('c'), &note), Some(Action::Quit));
        // A key typed into a note is text whatever it does on the dashboard.
        assert_eq!(
            action_for_key(press(KeyCode::Char('x')), &note),
            Some(Action::NoteInput('x'))
        );
        assert_eq!(action_for_key(ctrl('a'), &ui), Some(Action::Acknowledge));
        assert_eq!(
            action_for_key(press(KeyCode::Char('a')), &ui),
            Some(Action::Acknowledge)
        );
        // Ctrl-P is pause's, though `p` (note's, and earlier in no way) answers Ctrl too.
        assert_eq!(action_for_key(ctrl('p'), &ui), Some(Action::TogglePause));
        assert_eq!(
            action_for_key(press(KeyCode::Char('p')), &ui),
            Some(Action::StartNote)
        );
        assert!(
            ui.keymap
                .footer_hints()
                .contains("Ctrl-P:pause  a:ack  p:note  m:mouse  x:quit"),
            "{}",
            ui.keymap.footer_hints()
        );
        // Untouched actions keep their keys.
        assert_eq!(
            action_for_key(press(KeyCode::Char('?')), &ui),
            Some(Action::ToggleHelp)
        );
    }

    /// The problems of a keymap file as `line:column message`.
    fn problems(text: &str) -> Vec<String> {
        Keymap::parse(text)
            .unwrap_err()
            .into_iter()
            .map(|p| format!("{}:{} {}", p.line, p.column, p.message))
            .collect()
    }

    #[test]
    fn a_key_given_to_two_actions_is_refused_with_its_line_and_column() {
        let found = problems("[keys]\nquit = \"x\"\npause = [\"p\", \"x\"]\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("3:15 `x` is also given to `quit` (line 2)"),
            "{found:?}"
        );
        // Against a built-in key the file leaves alone.
        let found = problems("# mine\n[keys]\n  quit = \"p\"\n");
        assert_eq!(
            found,
            [
                "3:10 `p` is already `pause`'s key on the dashboard: give `pause` another key \
              too, or `quit` another one"
            ]
        );
        // Swapped keys are no clash.
        assert!(Keymap::parse("[keys]\npause = \"m\"\nmouse = \"p\"\n").is_ok());
        // Where characters are text, and where digits focus panes.
        let found = problems("[keys]\nnote_save = \"s\"\nzoom = \"3\"\n");
        assert!(
            found[0].starts_with("2:13 `s` types text while a note is typed"),
            "{found:?}"
        );
        assert!(
            found[1].starts_with("3:8 `3` focuses pane 3 on the dashboard"),
            "{found:?}"
        );
    }

    #[test]
    fn a_keymap_file_names_each_mistake_where_it_is() {
        let found = problems(
            "[keys]\nacknowledge = \"a\"\nquit = \"alt-q\"\nhelp = 1\nup = []\nfocus_pane = \"x\"\n[colours]\n",
        );
        assert!(
            found[0].starts_with("2:1 unknown action `acknowledge`; did you mean `ack`?"),
            "{found:?}"
        );
        assert!(
            found[1].starts_with("3:8 \"alt-q\" is not a key: only Ctrl"),
            "{found:?}"
        );
        assert!(found[2].starts_with("4:8 `help` takes a key"), "{found:?}");
        assert!(
            found[3].starts_with("5:6 `up` needs at least one key"),
            "{found:?}"
        );
        assert!(
            found[4].starts_with("6:1 `focus_pane` cannot be rebound"),
            "{found:?}"
        );
        assert!(
            found[5].starts_with("7:2 unknown table `colours`"),
            "{found:?}"
        );
        assert_eq!(found.len(), 6, "{found:?}");
        let found = problems("[keys]\nquit = \"x\"\nquit = \"y\"\n");
        assert!(found[0].starts_with("3:1 TOML syntax"), "{found:?}");
        // An empty file, or an empty table, is the built-in keymap.
        assert_eq!(Keymap::parse("").unwrap(), Keymap::default());
        assert_eq!(Keymap::parse("[keys]\n").unwrap(), Keymap::default());
    }

    #[test]
    fn a_missing_default_file_is_the_built_in_keymap_and_a_missing_keys_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("keys.toml");
        let err = Keymap::load(Some(&missing)).unwrap_err();
        assert!(matches!(err, KeymapError::Read { .. }), "{err}");
        assert!(err.to_string().contains("keys.toml: cannot read"), "{err}");
        std::fs::write(&missing, "[keys]\nquit = \"p\"\n").unwrap();
        let err = Keymap::load(Some(&missing)).unwrap_err().to_string();
        assert!(
            err.contains("keys.toml: line 2, column 8: `p` is already"),
            "{err}"
        );
    }

    #[test]
    fn the_readmes_keymap_example_is_a_keymap_that_does_what_it_says() {
        let readme = include_str!("../../README.md");
        let section = &readme[readme.find("### Your own keys").unwrap()..];
        let start = section.find("```toml\n").unwrap() + "```toml\n".len();
        let end = start + section[start..].find("```").unwrap();
        let ui = UiState {
            keymap: Arc::new(Keymap::parse(&section[start..end]).unwrap()),
            ..UiState::default()
        };
        assert_eq!(
            action_for_key(press(KeyCode::Char('Q')), &ui),
            Some(Action::Quit)
        );
        assert_eq!(action_for_key(press(KeyCode::Char('q')), &ui), None);
        assert_eq!(
            action_for_key(press(KeyCode::Char(' ')), &ui),
            Some(Action::ToggleZoom)
        );
    }
}
