//! Drawing: the layout of the overview, the zoomed view and the help overlay.
//! Render functions take state, UI state, theme and a `Rect`; they do no I/O.

pub mod help;
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
use regex::Regex;
use theme::Theme;

/// The focusable panes, in focus order; `1`–`8` pick them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PaneId {
    Services,
    Rbac,
    License,
    Containers,
    Host,
    Errors,
    Alerts,
    Window,
    /// PromQL figures (zoomed only, like the window).
    Metrics,
}

impl PaneId {
    pub const ALL: [PaneId; 9] = [
        PaneId::Services,
        PaneId::Rbac,
        PaneId::License,
        PaneId::Containers,
        PaneId::Host,
        PaneId::Errors,
        PaneId::Alerts,
        PaneId::Window,
        PaneId::Metrics,
    ];

    pub fn title(self) -> &'static str {
        match self {
            PaneId::Services => "Services",
            PaneId::Rbac => "RBAC",
            PaneId::License => "License",
            PaneId::Containers => "Containers",
            PaneId::Host => "Host",
            PaneId::Errors => "Errors",
            PaneId::Alerts => "Alerts",
            PaneId::Window => "Window",
            PaneId::Metrics => "Metrics",
        }
    }

    /// The key that focuses it ("1".."9").
    pub fn number(self) -> usize {
        PaneId::ALL.iter().position(|p| *p == self).unwrap_or(0) + 1
    }

    pub fn next(self) -> PaneId {
        PaneId::ALL[self.number() % PaneId::ALL.len()]
    }

    pub fn previous(self) -> PaneId {
        PaneId::ALL[(self.number() + PaneId::ALL.len() - 2) % PaneId::ALL.len()]
    }
}

/// The Errors pane's filter: regex include, `!regex` exclude, `level:warn`, `source:name`.
#[derive(Clone, Debug, Default)]
pub struct LogFilter {
    /// The text as typed.
    pub input: String,
    pub include: Option<Regex>,
    pub exclude: Option<Regex>,
    pub min_level: Option<crate::model::update::LogLevel>,
    pub source: Option<String>,
    /// Why the typed text is not a valid filter (shown in the pane).
    pub error: Option<String>,
}

impl LogFilter {
    /// Parses a filter; space-separated terms, all must hold.
    pub fn parse(input: &str) -> LogFilter {
        let mut filter = LogFilter {
            input: input.to_string(),
            ..LogFilter::default()
        };
        let mut includes = Vec::new();
        let mut excludes = Vec::new();
        for term in input.split_whitespace() {
            if let Some(level) = term.strip_prefix("level:") {
                match crate::model::update::LogLevel::parse(level) {
                    Some(l) => filter.min_level = Some(l),
                    None => filter.error = Some(format!("unknown level {level:?}")),
                }
            } else if let Some(source) = term.strip_prefix("source:") {
                filter.source = Some(source.to_string());
            } else if let Some(pattern) = term.strip_prefix('!') {
                excludes.push(pattern.to_string());
            } else {
                includes.push(term.to_string());
            }
        }
        let compile = |parts: &[String], filter: &mut LogFilter| -> Option<Regex> {
            if parts.is_empty() {
                return None;
            }
            let pattern = format!("(?i){}", parts.join(" "));
            match Regex::new(&pattern) {
                Ok(re) => Some(re),
                Err(e) => {
                    filter.error = Some(format!(
                        "bad regex: {}",
                        e.to_string().lines().last().unwrap_or("")
                    ));
                    None
                }
            }
        };
        filter.include = compile(&includes, &mut filter);
        filter.exclude = compile(&excludes, &mut filter);
        filter
    }

    pub fn is_active(&self) -> bool {
        !self.input.trim().is_empty()
    }

    pub fn matches(&self, line: &crate::model::update::LogLine) -> bool {
        if let Some(level) = self.min_level
            && line.level < level
        {
            return false;
        }
        if let Some(source) = &self.source
            && *line.source != **source
        {
            return false;
        }
        if let Some(re) = &self.include
            && !re.is_match(&line.message)
        {
            return false;
        }
        if let Some(re) = &self.exclude
            && re.is_match(&line.message)
        {
            return false;
        }
        true
    }
}

/// What the user has done to the screen: focus, zoom, scroll, filters.
#[derive(Clone, Debug)]
pub struct UiState {
    pub focus: PaneId,
    pub zoomed: bool,
    pub help: bool,
    pub paused: bool,
    pub mouse: bool,
    /// Typing a filter in the Errors pane.
    pub editing_filter: bool,
    pub filter: LogFilter,
    /// Show only error lines in the Errors pane (default) or every line.
    pub errors_only: bool,
    /// The selected line of the Errors pane, counted back from the newest (0 = following).
    pub log_scroll: usize,
    /// The rest of the Errors pane's view: scroll-back anchor, wrap, patterns, details.
    pub errors: ErrorsView,
    /// Selected row in the focused table pane.
    pub selected: usize,
    /// The Containers pane's sort and selected container.
    pub containers: panes::containers::ContainersView,
    /// The RBAC pane's drill-down (top denied operation × role).
    pub drilldown: bool,
    /// A short message in the footer ("paused", "mouse on").
    pub flash: Option<String>,
    /// A note being typed (`n`), shown in the footer until Enter or Esc.
    pub note: Option<String>,
}

impl Default for UiState {
    fn default() -> Self {
        UiState {
            focus: PaneId::Services,
            zoomed: false,
            help: false,
            paused: false,
            mouse: false,
            editing_filter: false,
            filter: LogFilter::default(),
            errors_only: true,
            log_scroll: 0,
            errors: ErrorsView::default(),
            selected: 0,
            containers: panes::containers::ContainersView::default(),
            drilldown: false,
            flash: None,
            note: None,
        }
    }
}

/// How the Errors pane is looked at, besides the filter and the selected line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ErrorsView {
    /// Scrolled back (or a line's fields open): lines that arrived after this arrival number
    /// are held back, so what is read holds still. `None` follows the newest line.
    pub anchor: Option<u64>,
    /// Long messages wrap over several rows instead of being cut.
    pub wrap: bool,
    /// The zoomed pane lists the top error patterns instead of the tail.
    pub patterns: bool,
    /// Every field of the selected line (or the selected pattern's example) is shown.
    pub detail: bool,
}

impl ErrorsView {
    /// Whether the tail follows new lines (else it is a paused scroll-back).
    pub fn following(&self) -> bool {
        self.anchor.is_none()
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
                Span::styled(format!("{marker}{} ", pane.number()), self.theme.muted),
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
    match pane {
        PaneId::Services => panes::services::render(frame, area, ctx),
        PaneId::Rbac => panes::rbac::render(frame, area, ctx),
        PaneId::License => panes::license::render(frame, area, ctx),
        PaneId::Containers => panes::containers::render(frame, area, ctx),
        PaneId::Host => panes::host::render(frame, area, ctx),
        PaneId::Errors => panes::errors::render(frame, area, ctx),
        PaneId::Alerts => panes::alerts::render(frame, area, ctx),
        PaneId::Window => panes::window::render(frame, area, ctx),
        PaneId::Metrics => panes::metrics::render(frame, area, ctx),
    }
}

/// Where each pane of the overview goes. Three bands: status figures, resources, triage.
/// The Window pane is the header line in the overview; it is shown whole when zoomed.
pub fn overview_layout(body: Rect) -> Vec<(PaneId, Rect)> {
    let [top, middle, bottom] = Layout::vertical([
        Constraint::Percentage(30),
        Constraint::Percentage(30),
        Constraint::Percentage(40),
    ])
    .areas(body);
    let [services, rbac, license] = Layout::horizontal([
        Constraint::Percentage(40),
        Constraint::Percentage(30),
        Constraint::Percentage(30),
    ])
    .areas(top);
    let [containers, host] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(middle);
    let [errors, alerts] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(bottom);
    vec![
        (PaneId::Services, services),
        (PaneId::Rbac, rbac),
        (PaneId::License, license),
        (PaneId::Containers, containers),
        (PaneId::Host, host),
        (PaneId::Errors, errors),
        (PaneId::Alerts, alerts),
    ]
}

fn draw_footer(frame: &mut Frame, area: Rect, ui: &UiState, theme: &Theme) {
    let mut spans = vec![];
    if let Some(note) = &ui.note {
        spans.push(Span::styled("note: ", theme.accent));
        spans.push(Span::styled(sanitize(note), theme.text));
        spans.push(Span::styled("█", theme.text));
        spans.push(Span::styled("  Enter save · Esc cancel", theme.muted));
    } else if ui.editing_filter {
        spans.push(Span::styled("filter: ", theme.accent));
        spans.push(Span::styled(ui.filter.input.clone(), theme.text));
        spans.push(Span::styled("█", theme.text));
        if let Some(error) = &ui.filter.error {
            spans.push(Span::styled(format!("  {error}"), theme.crit));
        }
        spans.push(Span::styled("  Enter apply · Esc cancel", theme.muted));
    } else {
        if ui.paused {
            spans.push(Span::styled(" PAUSED ", theme.warn.patch(theme.selection)));
            spans.push(Span::raw(" "));
        }
        if let Some(flash) = &ui.flash {
            spans.push(Span::styled(format!("{flash}  "), theme.accent));
        }
        let hints = "?:help  Tab/1-9:focus  Enter:zoom  Esc:back  /:filter  p:pause  a:ack  n:note  m:mouse  q:quit";
        spans.push(Span::styled(hints, theme.muted));
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
