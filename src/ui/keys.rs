//! The key table: every key the dashboard answers to, as data. The keymap
//! ([`action_for_key`]), the `?` overlay ([`help_rows`]) and the footer ([`footer_hints`],
//! [`prompt_hints`]) are all read from it, so they cannot disagree.
//!
//! The table is this file's keys for the whole screen ([`SCREEN`] and [`GENERAL`]) with
//! each pane's own part (`ui::panes::<pane>::KEYS`, beside its render function) between
//! them, in pane order. Each [`Binding`] names its action by a stable name
//! ([`Action::name`]), so a user keymap file can later rebind a name without code.

use super::PaneId;
use super::UiState;
use super::panes;
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// What a key (or mouse event) asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Quit,
    ToggleHelp,
    FocusNext,
    FocusPrevious,
    Focus(PaneId),
    ToggleZoom,
    Back,
    StartFilter,
    FilterInput(char),
    FilterBackspace,
    FilterApply,
    FilterCancel,
    ToggleErrorsOnly,
    /// Errors pane: wrap long messages or cut them.
    ToggleWrap,
    /// Errors pane, zoomed: the top error patterns or the tail.
    TogglePatterns,
    /// Errors pane, zoomed: every field of the selected line (or pattern example).
    ToggleLineFields,
    /// Errors pane: back to the newest line, following.
    Follow,
    TogglePause,
    Acknowledge,
    StartNote,
    NoteInput(char),
    NoteBackspace,
    NoteSave,
    NoteCancel,
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
    /// The name a keymap file would use for it; stable across releases.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Quit => "quit",
            Action::ToggleHelp => "help",
            Action::FocusNext => "focus_next",
            Action::FocusPrevious => "focus_previous",
            Action::Focus(_) => "focus_pane",
            Action::ToggleZoom => "zoom",
            Action::Back => "back",
            Action::StartFilter => "filter",
            Action::FilterInput(_) => "filter_type",
            Action::FilterBackspace => "filter_backspace",
            Action::FilterApply => "filter_apply",
            Action::FilterCancel => "filter_cancel",
            Action::ToggleErrorsOnly => "errors_only",
            Action::ToggleWrap => "wrap",
            Action::TogglePatterns => "patterns",
            Action::ToggleLineFields => "line_fields",
            Action::Follow => "follow",
            Action::TogglePause => "pause",
            Action::Acknowledge => "acknowledge",
            Action::StartNote => "note",
            Action::NoteInput(_) => "note_type",
            Action::NoteBackspace => "note_backspace",
            Action::NoteSave => "note_save",
            Action::NoteCancel => "note_cancel",
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
    /// `1`, `2`, …: the pane with that number in [`panes::panes`].
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
    fn answers(&self, event: &KeyEvent, action: &Action) -> Option<Action> {
        match (*self, event.code) {
            (Key::Press(code, ctrl), pressed) => (code == pressed
                && (!ctrl || event.modifiers.contains(KeyModifiers::CONTROL)))
            .then(|| action.clone()),
            (Key::Text, KeyCode::Char(c)) => Some(action.filled(c, None)),
            (Key::PaneNumber, KeyCode::Char(c @ '1'..='9')) => {
                let pane = panes::panes().get(c as usize - '1' as usize)?;
                Some(action.filled(c, Some(*pane)))
            }
            _ => None,
        }
    }

    /// How the overlay writes it: `↑`, `PgUp`, `Shift-Tab`, `Ctrl-C`, `1–9`.
    pub fn label(&self) -> String {
        match self {
            Key::Press(code, ctrl) => {
                let name = match code {
                    KeyCode::Char(c) if *ctrl => c.to_ascii_uppercase().to_string(),
                    KeyCode::Char(c) => c.to_string(),
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
            Key::PaneNumber => format!("1–{}", panes::panes().len().min(9)),
        }
    }

    /// How the footer writes it (plain ASCII where the overlay has a dash).
    pub fn short_label(&self) -> String {
        match self {
            Key::PaneNumber => format!("1-{}", panes::panes().len().min(9)),
            other => other.label(),
        }
    }
}

/// Where a binding applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// Everywhere, even while text is typed.
    Always,
    /// The dashboard, no prompt or overlay open.
    Screen,
    /// The `?` overlay is open.
    Help,
    /// A note is being typed.
    Note,
    /// A pane's prompt is open (the Errors filter).
    Prompt(PaneId),
    /// The pane is focused and zoomed (before [`When::Screen`]'s bindings).
    Zoomed(PaneId),
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
/// neighbours with the same hint share it (`Tab/1-9:focus`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footer {
    pub order: u8,
    pub hint: &'static str,
}

/// One entry of the key table.
#[derive(Clone, Debug, PartialEq)]
pub struct Binding {
    pub keys: &'static [Key],
    pub action: Action,
    pub when: When,
    pub help: Help,
    pub footer: Option<Footer>,
}

impl Binding {
    pub const fn new(keys: &'static [Key], action: Action, when: When, help: Help) -> Binding {
        Binding {
            keys,
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
}

use Help::{Hidden, Row, Same};
use When::{Always, Screen};

/// The screen's keys listed before the panes' own: help, focus, zoom, moving.
pub const SCREEN: &[Binding] = &[
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
        Row(&["focus a pane (8: the watch window, 9: metrics)"]),
    )
    .footer(1, "focus"),
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
    // The overlay: closed by the keys that say so on its frame.
    Binding::new(&[ch('q')], Action::Quit, When::Help, Hidden),
    Binding::new(
        &[code(KeyCode::Esc), ch('?'), code(KeyCode::Enter)],
        Action::ToggleHelp,
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
];

/// The screen's keys listed after the panes' own.
pub const GENERAL: &[Binding] = &[
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
        &[ch('m')],
        Action::ToggleMouse,
        Screen,
        Row(&["mouse on / off"]),
    )
    .footer(8, "mouse"),
    Binding::new(&[ch('q'), ctrl('c')], Action::Quit, Screen, Row(&["quit"])).footer(9, "quit"),
];

/// The whole table, in the overlay's order.
pub fn bindings() -> impl Iterator<Item = &'static Binding> {
    SCREEN
        .iter()
        .chain(panes::PANES.iter().flat_map(|p| p.keys.iter()))
        .chain(GENERAL.iter())
}

/// Which bindings apply now, most specific first.
fn contexts(ui: &UiState) -> Vec<When> {
    if ui.note.is_some() {
        return vec![Always, When::Note];
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

/// The keymap: the action of the first binding that applies and answers to `key`.
pub fn action_for_key(key: KeyEvent, ui: &UiState) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    contexts(ui).into_iter().find_map(|when| {
        bindings()
            .filter(|b| b.when == when)
            .find_map(|b| b.keys.iter().find_map(|k| k.answers(&key, &b.action)))
    })
}

/// One row of the `?` overlay: the keys and what they do (continued on more lines).
#[derive(Clone, Debug, PartialEq)]
pub struct HelpRow {
    pub keys: String,
    pub text: &'static [&'static str],
}

/// The overlay's rows. A row's keys are written column by column: the first key of each
/// binding on the row, then the second ones (`↑ ↓  k j`).
pub fn help_rows() -> Vec<HelpRow> {
    let mut rows: Vec<(Vec<&'static Binding>, &'static [&'static str])> = Vec::new();
    for binding in bindings() {
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
                    for label in row.iter().filter_map(|b| b.keys.get(i)).map(Key::label) {
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

/// Footer hints of the bindings in `when`, in their order, neighbours with one hint merged:
/// (keys, hint).
fn hints(when: When) -> Vec<(Vec<String>, &'static str)> {
    let mut shown: Vec<(&Footer, &Binding)> = bindings()
        .filter(|b| b.when == when)
        .filter_map(|b| b.footer.as_ref().map(|f| (f, b)))
        .collect();
    shown.sort_by_key(|(f, _)| f.order);
    let mut out: Vec<(Vec<String>, &'static str)> = Vec::new();
    for (footer, binding) in shown {
        let key = binding
            .keys
            .first()
            .map(Key::short_label)
            .unwrap_or_default();
        match out.last_mut() {
            Some((keys, hint)) if *hint == footer.hint => keys.push(key),
            _ => out.push((vec![key], footer.hint)),
        }
    }
    out
}

/// The footer's hints on the dashboard: `?:help  Tab/1-9:focus  …`.
pub fn footer_hints() -> String {
    hints(Screen)
        .into_iter()
        .map(|(keys, hint)| format!("{}:{hint}", keys.join("/")))
        .collect::<Vec<_>>()
        .join("  ")
}

/// The footer's hints while a prompt is open: `Enter save · Esc cancel`.
pub fn prompt_hints(when: When) -> String {
    hints(when)
        .into_iter()
        .map(|(keys, hint)| format!("{} {hint}", keys.join("/")))
        .collect::<Vec<_>>()
        .join(" · ")
}

#[cfg(test)]
mod tests {
    use super::*;
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
        Key::Press(event.code, ctrl).label()
    }

    /// The overlay's key column, token by token, `1–9` spelled out.
    fn help_keys() -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for row in help_rows() {
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
            note: Some(String::new()),
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
                filter,
                When::Prompt(PaneId::Errors),
                "Enter apply · Esc cancel",
            ),
        ] {
            assert_eq!(prompt_hints(when), footer);
            for binding in bindings().filter(|b| b.when == when) {
                for k in binding.keys {
                    let Key::Press(code, _) = k else { continue };
                    let event = key(*code, KeyModifiers::NONE);
                    assert_eq!(action_for_key(event, &ui), Some(binding.action.clone()));
                    if binding.footer.is_some() {
                        assert!(footer.contains(&k.label()), "{k:?} not in {footer:?}");
                    }
                }
            }
            // Any other character is text, even q.
            let q = action_for_key(key(KeyCode::Char('q'), KeyModifiers::NONE), &ui);
            assert!(q.is_some_and(|a| a.name().ends_with("_type")));
        }
    }

    #[test]
    fn the_footer_names_keys_that_do_what_it_says() {
        let ui = UiState::default();
        assert_eq!(
            footer_hints(),
            "?:help  Tab/1-9:focus  Enter:zoom  Esc:back  /:filter  p:pause  a:ack  n:note  m:mouse  q:quit"
        );
        for (keys, hint) in hints(Screen) {
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
        for when in bindings().map(|b| b.when).collect::<Vec<_>>() {
            let mut seen_keys = Vec::new();
            let mut seen_names = BTreeSet::new();
            for binding in bindings().filter(|b| b.when == when) {
                for key in binding.keys {
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
    fn digits_focus_the_panes_in_their_order() {
        let ui = UiState::default();
        for (i, pane) in panes::panes().iter().enumerate() {
            let digit = char::from_digit(i as u32 + 1, 10).unwrap();
            assert_eq!(
                action_for_key(key(KeyCode::Char(digit), KeyModifiers::NONE), &ui),
                Some(Action::Focus(*pane))
            );
        }
    }
}
