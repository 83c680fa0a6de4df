//! Drawing: the layout of the overview, the zoomed view and the help overlay.
//! Render functions take state, UI state, theme and a `Rect`; they do no I/O.

pub mod help;
pub mod keys;
pub mod panes;

pub mod theme;

use crate::model::sanitize::sanitize;
use crate::state::AppState;
use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Paragraph};
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
    pub note: Option<String>,
    /// Each pane's own view state.
    pub views: panes::Views,
}

impl Default for UiState {
    fn default() -> Self {
        UiState {
            focus: panes::panes()[0],
            zoomed: false,
            help: false,
            paused: false,
            mouse: false,
            selected: 0,
            flash: None,
            note: None,
            views: panes::Views::default(),
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
        let mut block = Block::default()
            .borders(Borders::ALL)
            .border_type(if self.focused {
                BorderType::Thick
            } else {
                BorderType::Plain
            })
            .border_style(border)
            .title(Line::from(vec![
                Span::styled(
                    format!("{marker}{} ", panes::number(pane)),
                    self.theme.muted,
                ),
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
        for (pane, rect) in overview_layout(body) {
            render_pane(frame, rect, pane, &ctx(pane, false));
        }
    }
    draw_footer(frame, footer, ui, theme);
    if ui.help {
        help::render(frame, area, theme);
    }
}

fn render_pane(frame: &mut Frame, area: Rect, pane: PaneId, ctx: &PaneContext) {
    if let Some(pane) = panes::pane(pane) {
        (pane.render)(frame, area, ctx);
    }
}

/// Where each pane of the overview goes ([`panes::OVERVIEW`]).
pub fn overview_layout(body: Rect) -> Vec<(PaneId, Rect)> {
    let bands = Layout::vertical(
        panes::OVERVIEW
            .iter()
            .map(|(height, _)| Constraint::Percentage(*height)),
    )
    .split(body);
    let mut out = Vec::new();
    for ((_, row), band) in panes::OVERVIEW.iter().zip(bands.iter()) {
        let cells =
            Layout::horizontal(row.iter().map(|(_, w)| Constraint::Percentage(*w))).split(*band);
        out.extend(row.iter().map(|(pane, _)| *pane).zip(cells.iter().copied()));
    }
    out
}

fn draw_footer(frame: &mut Frame, area: Rect, ui: &UiState, theme: &Theme) {
    let mut spans = vec![];
    if let Some(note) = &ui.note {
        spans.push(Span::styled("note: ", theme.accent));
        spans.push(Span::styled(sanitize(note), theme.text));
        spans.push(Span::styled("█", theme.text));
        let hints = keys::prompt_hints(keys::When::Note);
        spans.push(Span::styled(format!("  {hints}"), theme.muted));
    } else if let Some(pane) = panes::prompt_open(ui) {
        if let Some(prompt) = panes::pane(pane).and_then(|p| p.prompt.as_ref()) {
            spans.extend((prompt.line)(ui, theme));
        }
        let hints = keys::prompt_hints(keys::When::Prompt(pane));
        spans.push(Span::styled(format!("  {hints}"), theme.muted));
    } else {
        if ui.paused {
            spans.push(Span::styled(" PAUSED ", theme.warn.patch(theme.selection)));
            spans.push(Span::raw(" "));
        }
        if let Some(flash) = &ui.flash {
            spans.push(Span::styled(format!("{flash}  "), theme.accent));
        }
        spans.push(Span::styled(keys::footer_hints(), theme.muted));
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
