//! Drawing: the layout of the overview, the zoomed view and the help overlay.
//! Render functions take state, UI state, theme and a `Rect`; they do no I/O.

pub mod command;
pub mod help;
pub mod keys;
pub mod panes;
pub mod prompt;

pub mod theme;

#[cfg(test)]
pub(crate) mod test_support;

use crate::model::sanitize::sanitize;
use crate::state::AppState;
use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph};
use std::sync::Arc;
use theme::Theme;

pub use crate::model::pane::PaneId;
pub use panes::errors::LogFilter;

/// What the user has done to the screen: focus, zoom, the overlay, a note being typed. Each
/// pane's own view state (scroll, sort, filter) is in its file, gathered in `views`.
#[derive(Clone, Debug)]
pub struct UiState {
    pub focus: PaneId,
    pub zoomed: bool,
    pub help: bool,
    pub paused: bool,
    pub mouse: bool,
    /// Selected row in the focused table pane.
    pub selected: usize,
    /// A short message in the footer ("paused", "mouse on").
    pub flash: Option<String>,
    /// A note being typed (`n`), shown in the footer until Enter or Esc.
    pub note: Option<prompt::LineEdit>,
    /// The `:` command line being typed, shown in the footer until Enter or Esc.
    pub command: Option<prompt::LineEdit>,
    /// Each pane's own view state.
    pub views: panes::Views,
    /// The key table in effect: the built-in one, or with the user's keymap file applied.
    pub keymap: Arc<keys::Keymap>,
}

impl Default for UiState {
    fn default() -> Self {
        UiState {
            focus: panes::DEMO_OVERVIEW[0],
            zoomed: false,
            help: false,
            paused: false,
            mouse: false,
            selected: 0,
            flash: None,
            note: None,
            command: None,
            views: panes::Views::default(),
            keymap: keys::Keymap::built_in(),
        }
    }
}

impl UiState {
    /// Moves the focus to `pane`; the selection starts at its top.
    pub fn focus_on(&mut self, pane: PaneId) {
        if self.focus != pane {
            self.focus = pane;
            self.selected = 0;
        }
    }
}

/// What a pane's render function gets.
pub struct PaneContext<'a> {
    pub state: &'a AppState,
    pub ui: &'a UiState,
    pub theme: &'a Theme,
    pub focused: bool,
    pub zoomed: bool,
    pub now: DateTime<Utc>,
}

impl PaneContext<'_> {
    /// The pane's frame: title with its number, the health of its sources on the right.
    pub fn block(&self, pane: PaneId, sources: &[String]) -> Block<'static> {
        let border = self.theme.block_border(self.focused);
        let title_style = if self.focused {
            self.theme.title.patch(self.theme.border_focused)
        } else {
            self.theme.title
        };
        let marker = if self.focused { "▶" } else { " " };
        // Its number key: 1-9 on the overview, 0 the watch window; none for a pane that
        // is not on the overview.
        let number = match pane {
            PaneId::Window => "0".to_string(),
            pane => panes::number(self.ui.keymap.panes(), pane)
                .map(|n| n.to_string())
                .unwrap_or_default(),
        };
        let mut block = Block::default()
            .borders(Borders::ALL)
            .border_type(if self.focused {
                BorderType::Thick
            } else {
                BorderType::Plain
            })
            .border_style(border)
            .title(Line::from(vec![
                Span::styled(format!("{marker}{number} "), self.theme.muted),
                Span::styled(pane.title().to_string(), title_style),
            ]));
        if let Some(status) = self.sources_status(sources) {
            block = block.title(status.right_aligned());
        }
        block
    }

    /// "tmws 2s ago" or the error of the first failing source, styled by how bad it is.
    pub fn sources_status(&self, sources: &[String]) -> Option<Line<'static>> {
        let mut spans = Vec::new();
        for name in sources {
            let Some(source) = self.state.sources.get(name) else {
                continue;
            };
            let style = match source.health {
                crate::model::update::SourceHealth::Ok => self.theme.muted,
                crate::model::update::SourceHealth::Connecting => self.theme.unknown,
                crate::model::update::SourceHealth::Busy { .. } => self.theme.warn,
                crate::model::update::SourceHealth::Error { .. } => self.theme.crit,
            };
            if !spans.is_empty() {
                spans.push(Span::styled(" · ", self.theme.muted));
            }
            let text = sanitize(&format!("{name} {}", source.describe(self.now)));
            spans.push(Span::styled(text, style));
        }
        if spans.is_empty() {
            None
        } else {
            Some(Line::from(spans))
        }
    }

    /// The first error among a pane's sources, to show in its body when it has no data.
    pub fn source_error(&self, sources: &[String]) -> Option<String> {
        sources.iter().find_map(|name| {
            let source = self.state.sources.get(name)?;
            source
                .is_error()
                .then(|| sanitize(&format!("{name}: {}", source.describe(self.now))))
        })
    }

    /// The body to show when a pane has no data yet: why, in words.
    pub fn placeholder(&self, sources: &[String], what: &str) -> Paragraph<'static> {
        let (text, style) = if sources.is_empty() {
            (format!("no {what} source configured"), self.theme.muted)
        } else if let Some(error) = self.source_error(sources) {
            (error, self.theme.crit)
        } else {
            ("connecting…".to_string(), self.theme.unknown)
        };
        Paragraph::new(text)
            .style(style)
            .wrap(ratatui::widgets::Wrap { trim: true })
    }
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, state: &AppState, ui: &UiState, theme: &Theme, now: DateTime<Utc>) {
    let area = frame.area();
    if area.width < 30 || area.height < 8 {
        draw_tiny(frame, area, state, theme, now);
        return;
    }
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let ctx = |pane: PaneId, zoomed: bool| PaneContext {
        state,
        ui,
        theme,
        focused: ui.focus == pane,
        zoomed,
        now,
    };
    panes::header::render(frame, header, &ctx(PaneId::Window, false));
    if ui.zoomed {
        render_pane(frame, body, ui.focus, &ctx(ui.focus, true));
    } else {
        for (pane, rect) in overview_layout(body, ui.keymap.panes(), state) {
            render_pane(frame, rect, pane, &ctx(pane, false));
        }
    }
    draw_footer(frame, footer, ui, theme);
    if ui.help {
        help::render(frame, area, theme, &ui.keymap);
    }
}

fn render_pane(frame: &mut Frame, area: Rect, pane: PaneId, ctx: &PaneContext) {
    if let Some(pane) = panes::pane(pane) {
        (pane.render)(frame, area, ctx);
    }
}

/// Where each pane on the overview goes ([`panes::overview_rows`]): a row of panes that
/// have only so much to show is no taller than they want (up to its share), and the rows
/// that take all they get share the rest.
pub(crate) fn overview_layout(
    body: Rect,
    shown: &[PaneId],
    state: &AppState,
) -> Vec<(PaneId, Rect)> {
    let rows = panes::overview_rows(shown);
    let share = |percent: u16| ((u32::from(body.height) * u32::from(percent) + 50) / 100) as u16;
    let heights = rows.iter().map(|(percent, row)| {
        match panes::row_height(state, row) {
            // At least a border, a line and a border.
            Some(wanted) => Constraint::Length(wanted.clamp(3, share(*percent).max(3))),
            None => Constraint::Fill(1),
        }
    });
    let bands = Layout::vertical(heights).split(body);
    let mut out = Vec::new();
    for ((_, row), band) in rows.iter().zip(bands.iter()) {
        let total: u32 = row.iter().map(|(_, w)| u32::from(*w)).sum();
        let cells = Layout::horizontal(
            row.iter()
                .map(|(_, w)| Constraint::Ratio(u32::from(*w), total.max(1))),
        )
        .split(*band);
        out.extend(row.iter().map(|(pane, _)| *pane).zip(cells.iter().copied()));
    }
    out
}

fn draw_footer(frame: &mut Frame, area: Rect, ui: &UiState, theme: &Theme) {
    let mut spans = vec![];
    let width = usize::from(area.width);
    // A prompt's text gets the room its hints leave (at least a few cells), so the cursor
    // stays in view however long the text.
    let room = |hints: &str, label: &str| {
        width
            .saturating_sub(hints.chars().count() + 2 + label.chars().count())
            .max(8)
    };
    if let Some(note) = &ui.note {
        let hints = ui.keymap.prompt_hints(keys::When::Note);
        spans.push(Span::styled("note: ", theme.accent));
        spans.extend(note.spans(room(&hints, "note: "), theme.text));
        spans.push(Span::styled(format!("  {hints}"), theme.muted));
    } else if let Some(line) = &ui.command {
        let hints = ui.keymap.prompt_hints(keys::When::Command);
        let offered = command::candidates(line.text()).join(" ");
        let label_room = room(&hints, ":").saturating_sub(offered.chars().count() + 2);
        spans.push(Span::styled(":", theme.accent));
        spans.extend(line.spans(label_room.max(8), theme.text));
        if !offered.is_empty() {
            spans.push(Span::styled(format!("  {offered}"), theme.accent));
        }
        spans.push(Span::styled(format!("  {hints}"), theme.muted));
    } else if let Some(pane) = panes::prompt_open(ui) {
        let hints = ui.keymap.prompt_hints(keys::When::Prompt(pane));
        if let Some(prompt) = panes::pane(pane).and_then(|p| p.prompt.as_ref()) {
            spans.extend((prompt.line)(ui, theme, room(&hints, "")));
        }
        spans.push(Span::styled(format!("  {hints}"), theme.muted));
    } else {
        if ui.paused {
            spans.push(Span::styled(" PAUSED ", theme.warn.patch(theme.selection)));
            spans.push(Span::raw(" "));
        }
        if let Some(flash) = &ui.flash {
            spans.push(Span::styled(format!("{flash}  "), theme.accent));
        }
        // The hints get what is left; help and quit stay whatever the width.
        let used: usize = spans.iter().map(|s| s.width()).sum();
        let room = usize::from(area.width).saturating_sub(used);
        spans.push(Span::styled(
            ui.keymap.footer_hints_within(room),
            theme.muted,
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// Below 30x8 there is no room for panes: one line that still says how bad things are.
fn draw_tiny(frame: &mut Frame, area: Rect, state: &AppState, theme: &Theme, now: DateTime<Utc>) {
    let worst = state.worst();
    let alerts = state.alerts.active.len();
    let offset = crate::model::time::format_offset(state.window.elapsed(now));
    let lines = vec![
        Line::from(vec![
            Span::styled(
                format!("{} {}", worst.symbol(), worst.label()),
                theme.severity(worst),
            ),
            Span::styled(format!(" {alerts} alerts"), theme.text),
        ]),
        Line::from(Span::styled(
            sanitize(&state.window.deployment),
            theme.header,
        )),
        Line::from(Span::styled(offset, theme.muted)),
        Line::from(Span::styled("enlarge the terminal", theme.muted)),
    ];
    frame.render_widget(Paragraph::new(lines), area);
}

/// A style for a figure's severity, used by every pane.
pub fn severity_style(theme: &Theme, figure: Option<&crate::state::FigureState>) -> Style {
    match figure {
        Some(f) => theme.severity(f.figure.severity),
        None => theme.muted,
    }
}

#[cfg(test)]
mod tests {
    //! The whole screen at 80x24, 200x60 and tiny sizes, and every pane at tiny sizes; each
    //! pane's own states are tested in its file.

    use super::theme::Theme;
    use super::{PaneId, UiState, panes};
    use crate::model::update::{LogLevel, Table, Update};
    use crate::state::AppState;
    use crate::ui;
    use crate::ui::test_support::*;
    use ratatui::layout::Rect;
    use ratatui::style::Color;

    #[test]
    fn every_pane_survives_every_small_size() {
        let theme = theme();
        let states = [
            deployment(Level::Crit),
            deployment(Level::Ok),
            failing(),
            connecting(),
            AppState::new(window()),
        ];
        let ui = UiState {
            views: drilled(),
            selected: 99,
            ..UiState::default()
        };
        for state in &states {
            for pane in panes::panes().iter().copied() {
                for width in 0..=14 {
                    for height in 0..=6 {
                        for opts in [&PLAIN, &ZOOMED] {
                            draw_pane(pane, state, &ui, &theme, (width, height), opts);
                        }
                    }
                }
            }
            for (width, height) in [
                (0, 0),
                (1, 1),
                (2, 1),
                (1, 30),
                (300, 1),
                (29, 7),
                (30, 8),
                (31, 9),
            ] {
                draw_screen(state, &UiState::default(), &theme, width, height);
                let help = UiState {
                    help: true,
                    ..UiState::default()
                };
                draw_screen(state, &help, &theme, width, height);
            }
        }
    }

    #[test]
    fn tiny_panes_say_something() {
        let theme = theme();
        let ui = UiState::default();
        let state = deployment(Level::Crit);
        let mut out = String::new();
        for pane in panes::panes().iter().copied() {
            for size in [(10, 3), (16, 4), (1, 1)] {
                out.push_str(&format!("── {} at {}x{}\n", pane.title(), size.0, size.1));
                out.push_str(&text(&draw_pane(pane, &state, &ui, &theme, size, &PLAIN)));
            }
        }
        insta::assert_snapshot!(out);
        // At 16x4 a pane still shows its number and name.
        let buffer = draw_pane(PaneId::Rbac, &state, &ui, &theme, (16, 4), &PLAIN);
        assert!(text(&buffer).contains("2 RBAC"), "{}", text(&buffer));
    }

    #[test]
    fn screen_80x24() {
        let theme = theme();
        let ui = UiState::default();
        insta::assert_snapshot!(
            "screen_80x24_ok",
            text(&draw_screen(&deployment(Level::Ok), &ui, &theme, 80, 24))
        );
        insta::assert_snapshot!(
            "screen_80x24_crit",
            text(&draw_screen(&deployment(Level::Crit), &ui, &theme, 80, 24))
        );
        insta::assert_snapshot!(
            "screen_80x24_failing",
            text(&draw_screen(&failing(), &ui, &theme, 80, 24))
        );
        insta::assert_snapshot!(
            "screen_80x24_connecting",
            text(&draw_screen(&connecting(), &ui, &theme, 80, 24))
        );
    }

    #[test]
    fn screen_200x60() {
        let theme = theme();
        let ui = UiState {
            focus: PaneId::Alerts,
            ..UiState::default()
        };
        insta::assert_snapshot!(text(&draw_screen(
            &deployment(Level::Crit),
            &ui,
            &theme,
            200,
            60
        )));
    }

    #[test]
    fn screen_120x40() {
        let theme = theme();
        let ui = UiState::default();
        insta::assert_snapshot!(text(&draw_screen(
            &deployment(Level::Crit),
            &ui,
            &theme,
            120,
            40
        )));
    }

    #[test]
    fn screen_tiny() {
        let theme = theme();
        let ui = UiState::default();
        insta::assert_snapshot!(text(&draw_screen(
            &deployment(Level::Crit),
            &ui,
            &theme,
            20,
            5
        )));
    }

    #[test]
    fn screen_zoomed_and_help() {
        let theme = theme();
        let state = deployment(Level::Crit);
        let mut ui = UiState {
            focus: PaneId::Rbac,
            zoomed: true,
            ..UiState::default()
        };
        insta::assert_snapshot!(
            "screen_zoomed_rbac",
            text(&draw_screen(&state, &ui, &theme, 80, 24))
        );
        ui.focus = PaneId::Window;
        insta::assert_snapshot!(
            "screen_zoomed_window",
            text(&draw_screen(&state, &ui, &theme, 80, 24))
        );
        let help = UiState {
            help: true,
            ..UiState::default()
        };
        let buffer = draw_screen(&state, &help, &theme, 80, 24);
        insta::assert_snapshot!("screen_help", text(&buffer));
        let screen = text(&buffer);
        for row in ui::keys::Keymap::default().help_rows() {
            assert!(screen.contains(&row.keys), "help lacks {:?}", row.keys);
        }
    }

    #[test]
    fn focused_pane_has_the_focused_border() {
        let theme = theme();
        let state = deployment(Level::Ok);
        let ui = UiState {
            focus: PaneId::Rbac,
            ..UiState::default()
        };
        let buffer = draw_screen(&state, &ui, &theme, 80, 24);
        let layout = ui::overview_layout(Rect::new(0, 1, 80, 22), panes::DEMO_OVERVIEW, &state);
        for (pane, rect) in layout {
            let corner = &buffer[(rect.x, rect.y)];
            let expected = if pane == PaneId::Rbac {
                theme.border_focused
            } else {
                theme.border
            };
            assert_eq!(Some(corner.fg), expected.fg, "{pane:?} border");
            let (bx, by) = (rect.x, rect.y + rect.height / 2);
            assert_eq!(
                Some(buffer[(bx, by)].fg),
                expected.fg,
                "{pane:?} left border"
            );
        }
        assert!(text(&buffer).contains("▶2 RBAC"));
    }

    #[test]
    fn monochrome_has_no_colour_anywhere() {
        let theme = Theme::built_in("monochrome").unwrap();
        let ui = UiState {
            focus: PaneId::Alerts,
            ..UiState::default()
        };
        // The filter's matches highlighted, and a prompt with its cursor and completions.
        let mut filtered = UiState {
            focus: PaneId::Errors,
            command: Some(super::prompt::LineEdit::new("th")),
            ..UiState::default()
        };
        filtered.views.errors.errors_only = false;
        filtered.views.errors.filter = panes::errors::LogFilter::parse("error|fail|e");
        for (state, symbol) in [
            (deployment(Level::Crit), "✖ CRIT"),
            (stale(), "? "),
            (failing(), ""),
        ] {
            for ((w, h), ui) in [(80, 24), (200, 60)]
                .into_iter()
                .flat_map(|size| [(size, &ui), (size, &filtered)])
            {
                let buffer = draw_screen(&state, ui, &theme, w, h);
                for cell in buffer.content() {
                    assert_eq!(cell.fg, Color::Reset, "a cell has a colour: {cell:?}");
                    assert_eq!(cell.bg, Color::Reset, "a cell has a colour: {cell:?}");
                }
                // Severity survives without colour: symbols and words.
                let screen = text(&buffer);
                assert!(screen.contains(symbol), "{screen}");
                // So do the filter's marks (bold and underlined) where it has lines.
                if std::ptr::eq(ui, &filtered) && !state.logs.is_empty() {
                    use ratatui::style::Modifier;
                    let marked = Modifier::UNDERLINED | Modifier::BOLD;
                    assert!(
                        buffer
                            .content()
                            .iter()
                            .any(|c| c.modifier.contains(marked) && c.symbol() == "e"),
                        "{screen}"
                    );
                }
            }
        }
    }

    #[test]
    fn foreign_text_is_sanitized_everywhere() {
        let mut state = deployment(Level::Crit);
        let evil = "evil\x1b]0;pwned\x07\x1b[2J\u{9b}31m\r\nname";
        let mut rows = containers(Level::Ok);
        rows[0].name = evil.into();
        rows[0].project = evil.into();
        state.apply(
            Update::Containers {
                source: "docker".into(),
                rows,
            },
            now(),
        );
        state.apply(
            Update::Logs(vec![log(now(), LogLevel::Error, evil, evil)]),
            now(),
        );
        state.apply(
            Update::Service(service(evil, evil, false, evil, None)),
            now(),
        );
        state.apply(
            Update::Table {
                id: "tmws.rbac.top_denied".into(),
                table: Table {
                    title: evil.into(),
                    columns: vec![evil.into(), "role".into(), "denies".into()],
                    rows: vec![vec![evil.into(), evil.into(), evil.into()]],
                },
            },
            now(),
        );
        state.window.deployment = evil.into();
        let mut ui = UiState {
            zoomed: true,
            views: drilled(),
            ..UiState::default()
        };
        for pane in panes::panes().iter().copied() {
            ui.focus = pane;
            for (w, h) in [(80, 24), (200, 60)] {
                let buffer = draw_screen(&state, &ui, &theme(), w, h);
                for cell in buffer.content() {
                    assert!(
                        !cell.symbol().chars().any(char::is_control),
                        "{pane:?}: control character {:?} on screen",
                        cell.symbol()
                    );
                }
            }
        }
    }
}
