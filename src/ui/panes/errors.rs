//! Errors: the merged, time-ordered tail of every log source (seed 002/003's
//! `journalctl | grep` and `docker compose logs | grep -i error`), newest at the bottom,
//! with the error rate per minute in the title.
//!
//! The tail follows new lines until the user scrolls back; then it is a paused scroll-back
//! that holds still while lines arrive (counted as "N new"), and End/`F` follows again.
//! `/` filters (regex, `!regex`, `level:`, `source:`; ↑/↓ in the prompt go through the
//! filters applied before) and what its regex matches is highlighted, `e` switches error
//! lines / all lines, `w` wraps long messages, `y` copies the selected line. Zoomed, it
//! adds one errors-per-minute sparkline per source, `Enter` opens every field of the
//! selected line, and `t` switches to the top error patterns (count, first and last seen,
//! sources, one full example each).

use super::common::{
    Cell, Column, Row, Titles, count_sparkline, draw_block, fit, fit_columns, inner, lines,
    one_line, table, width,
};
use super::{Cx, Outcome, Pane, Prompt};
use crate::model::sanitize::sanitize;
use crate::model::update::{LogLevel, LogLine};
use crate::state::AppState;
use crate::state::patterns::Pattern;
use crate::ui::keys::{Action, Binding, Help, Key, When, ch, code};
use crate::ui::prompt::{History, LineEdit};
use crate::ui::theme::Theme;
use crate::ui::{PaneContext, PaneId, UiState};
use crossterm::event::KeyCode;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph, Wrap};
use regex::Regex;
use std::ops::Range;
use unicode_width::UnicodeWidthChar;

const COLUMNS: [Column; 4] = [
    Column::left("time", 8, 8, 2),
    Column::left("source", 3, 12, 3),
    Column::left("level", 5, 5, 1),
    Column::left("message", 8, u16::MAX, 0).grow(9).fill(),
];

const PATTERN_COLUMNS: [Column; 5] = [
    Column::right("count", 5, 8, 0),
    Column::left("first", 8, 8, 3),
    Column::left("last", 8, 8, 2),
    Column::left("sources", 6, 20, 4),
    Column::left("pattern", 10, u16::MAX, 0).grow(9),
];

/// The Errors pane's own view state.
#[derive(Clone, Debug)]
pub struct ErrorsView {
    /// The filter that lines pass (`/`).
    pub(crate) filter: LogFilter,
    /// The filter is being typed: keys are text.
    pub(crate) editing: bool,
    /// The filter's text with the cursor, while it is typed.
    pub(crate) line: LineEdit,
    /// The filters applied this session, for ↑/↓ in the prompt.
    pub(crate) history: History,
    /// The filter as it was before `/`, restored by Esc.
    pub(crate) before_edit: Option<LogFilter>,
    /// Only error lines (the default), or every line (`e`).
    pub(crate) errors_only: bool,
    /// The selected line, counted back from the newest (0 = following).
    pub(crate) scroll: usize,
    /// Scrolled back (or a line's fields open): lines that arrived after this arrival number
    /// are held back, so what is read holds still. `None` follows the newest line.
    pub(crate) anchor: Option<u64>,
    /// Long messages wrap over several rows instead of being cut.
    pub(crate) wrap: bool,
    /// The zoomed pane lists the top error patterns instead of the tail.
    pub(crate) patterns: bool,
    /// Every field of the selected line (or the selected pattern's example) is shown.
    pub(crate) detail: bool,
}

impl Default for ErrorsView {
    fn default() -> Self {
        ErrorsView {
            filter: LogFilter::default(),
            editing: false,
            line: LineEdit::default(),
            history: History::default(),
            before_edit: None,
            errors_only: true,
            scroll: 0,
            anchor: None,
            wrap: false,
            patterns: false,
            detail: false,
        }
    }
}

impl ErrorsView {
    /// Whether the tail follows new lines (else it is a paused scroll-back).
    pub fn following(&self) -> bool {
        self.anchor.is_none()
    }

    /// The tail holds still while a line is selected back from the newest or a line's
    /// fields are open, and follows again when neither is the case.
    fn hold(&mut self, shown: &AppState) {
        let hold = self.scroll > 0 || self.detail;
        match (hold, self.anchor) {
            (true, None) => self.anchor = Some(shown.logs.pushed()),
            (false, Some(_)) => self.anchor = None,
            _ => {}
        }
    }

    /// Back to the newest line, following.
    fn follow(&mut self) {
        self.scroll = 0;
        self.detail = false;
        self.anchor = None;
    }

    /// The prompt's text changed: the filter follows it as it is typed.
    fn retype(&mut self) {
        self.filter = LogFilter::parse(self.line.text());
    }
}

// ---------------------------------------------------------------------------------------
// Keys

/// The pane's part of the key table. `/`, `e`, `w`, `F` and `t` work from any pane.
pub(crate) const KEYS: &[Binding] = &[
    Binding::new(
        &[ch('/')],
        Action::StartFilter,
        When::Screen,
        Help::Row(&["filter errors: regex, !regex, level:warn, source:name"]),
    )
    .footer(4, "filter"),
    Binding::new(
        &[ch('e')],
        Action::ToggleErrorsOnly,
        When::Screen,
        Help::Row(&["error lines only / all lines"]),
    ),
    Binding::new(
        &[ch('w')],
        Action::ToggleWrap,
        When::Screen,
        Help::Row(&["errors: wrap · follow the newest · copy the line"]),
    ),
    Binding::new(&[ch('F')], Action::Follow, When::Screen, Help::Same),
    Binding::new(&[ch('y')], Action::CopyLine, When::Screen, Help::Same),
    Binding::new(
        &[ch('t')],
        Action::TogglePatterns,
        When::Screen,
        Help::Row(&["errors: top patterns / tail · zoomed: all fields"]),
    ),
    Binding::new(
        &[code(KeyCode::Enter)],
        Action::ToggleLineFields,
        When::Zoomed(PaneId::Errors),
        Help::Same,
    ),
    // The filter being typed: keys are text.
    Binding::new(
        &[code(KeyCode::Enter)],
        Action::FilterApply,
        FILTER,
        Help::Hidden,
    )
    .footer(0, "apply"),
    Binding::new(
        &[code(KeyCode::Esc)],
        Action::FilterCancel,
        FILTER,
        Help::Hidden,
    )
    .footer(1, "cancel"),
    Binding::new(
        &[code(KeyCode::Backspace)],
        Action::FilterBackspace,
        FILTER,
        Help::Hidden,
    ),
    Binding::new(
        &[code(KeyCode::Up)],
        Action::FilterOlder,
        FILTER,
        Help::Hidden,
    )
    .footer(3, "history"),
    Binding::new(
        &[code(KeyCode::Down)],
        Action::FilterNewer,
        FILTER,
        Help::Hidden,
    )
    .footer(3, "history"),
    Binding::new(&[Key::Text], Action::FilterInput(' '), FILTER, Help::Hidden),
];

const FILTER: When = When::Prompt(PaneId::Errors);

/// The key of an action as the pane's text names it (the keymap may have rebound it).
fn key_of(ctx: &PaneContext, name: &str, when: When) -> String {
    ctx.ui.keymap.key_of(name, when).unwrap_or_default()
}

pub(crate) const PANE: Pane = Pane {
    keys: KEYS,
    handle,
    prompt: Some(Prompt {
        open: |ui| ui.views.errors.editing,
        line: prompt_line,
    }),
    ..Pane::new(PaneId::Errors, render)
};

/// The footer while the filter is typed, the text in `room` cells.
fn prompt_line(ui: &UiState, theme: &Theme, room: usize) -> Vec<Span<'static>> {
    let view = &ui.views.errors;
    let error = view
        .filter
        .error
        .as_ref()
        .map(|e| format!("  {}", one_line(e)));
    let used = "filter: ".len() + error.as_deref().map_or(0, width);
    let mut spans = vec![Span::styled("filter: ", theme.accent)];
    spans.extend(
        view.line
            .spans(room.saturating_sub(used).max(8), theme.text),
    );
    if let Some(error) = error {
        spans.push(Span::styled(error, theme.crit));
    }
    spans
}

/// Applies `text` as the filter, as Enter in the prompt does (`:filter` too): kept in the
/// history, the tail following the newest line that passes.
pub(crate) fn apply_filter(ui: &mut UiState, text: &str) {
    ui.focus_on(PaneId::Errors);
    ui.selected = 0;
    let view = &mut ui.views.errors;
    view.filter = LogFilter::parse(text);
    view.history.push(text);
    view.editing = false;
    view.before_edit = None;
    view.follow();
}

fn handle(action: &Action, cx: &mut Cx) -> Outcome {
    let focused = cx.ui.focus == PaneId::Errors;
    // ↑↓ move through the tail, not the patterns table (which is the screen's selection).
    let tail = focused && !(cx.ui.zoomed && cx.ui.views.errors.patterns);
    let shown = cx.shown;
    let ui = &mut *cx.ui;
    let view = &mut ui.views.errors;
    match action {
        Action::StartFilter => {
            ui.focus_on(PaneId::Errors);
            let view = &mut ui.views.errors;
            view.before_edit = Some(view.filter.clone());
            view.line = LineEdit::new(&view.filter.input);
            view.history.reset();
            view.editing = true;
        }
        Action::FilterInput(c) => {
            view.line.insert(*c);
            view.retype();
        }
        Action::FilterBackspace => {
            if view.line.backspace() {
                view.retype();
            }
        }
        Action::Edit(edit) if view.editing => {
            if view.line.apply(*edit) {
                view.retype();
            }
        }
        Action::FilterOlder => {
            if view.history.older(&mut view.line) {
                view.retype();
            }
        }
        Action::FilterNewer => {
            if view.history.newer(&mut view.line) {
                view.retype();
            }
        }
        Action::FilterApply => {
            let text = view.line.text().to_string();
            apply_filter(ui, &text);
        }
        Action::FilterCancel => {
            view.editing = false;
            view.filter = view.before_edit.take().unwrap_or_default();
        }
        Action::CopyLine => {
            if !focused {
                ui.flash = Some(format!(
                    "focus {} and select a line to copy it",
                    super::title_with_number(ui, PaneId::Errors)
                ));
                return Outcome::Done;
            }
            match selected_line(shown, ui, ui.zoomed) {
                Some(line) => return Outcome::Copy(copied_text(line)),
                None => ui.flash = Some("no line to copy".into()),
            }
        }
        Action::ToggleErrorsOnly => {
            view.errors_only = !view.errors_only;
            let flash = if view.errors_only {
                "errors only"
            } else {
                "all log lines"
            };
            ui.flash = Some(flash.to_string());
        }
        Action::ToggleWrap => {
            view.wrap = !view.wrap;
            let flash = if view.wrap {
                "errors: long lines wrap"
            } else {
                "errors: long lines cut"
            };
            ui.flash = Some(flash.to_string());
        }
        Action::TogglePatterns => {
            ui.focus_on(PaneId::Errors);
            ui.zoomed = true;
            ui.selected = 0;
            let view = &mut ui.views.errors;
            view.patterns = !view.patterns;
            view.detail = false;
            view.hold(shown);
        }
        Action::ToggleLineFields => {
            view.detail = !view.detail;
            view.hold(shown);
        }
        Action::Follow => {
            ui.focus_on(PaneId::Errors);
            ui.views.errors.follow();
        }
        // Esc: a line's fields close first; unzooming is the screen's; then the filter
        // goes, then the scroll-back.
        Action::Back => {
            if view.detail {
                view.detail = false;
                view.hold(shown);
            } else if ui.zoomed {
                return Outcome::Pass;
            } else if view.filter.is_active() {
                view.filter = LogFilter::default();
            } else if view.scroll > 0 {
                view.follow();
            } else {
                return Outcome::Pass;
            }
        }
        Action::Up(n) if tail => {
            view.scroll = (view.scroll + n).min(shown.logs.len());
            view.hold(shown);
        }
        Action::Down(n) if tail => {
            view.scroll = view.scroll.saturating_sub(*n);
            view.hold(shown);
        }
        Action::Top if tail => {
            view.scroll = shown.logs.len();
            view.hold(shown);
        }
        Action::Bottom if tail => view.follow(),
        _ => return Outcome::Pass,
    }
    Outcome::Done
}

// ---------------------------------------------------------------------------------------
// The filter

/// The Errors pane's filter: regex include, `!regex` exclude, `level:warn`, `source:name`.
#[derive(Clone, Debug, Default)]
pub struct LogFilter {
    /// The text as typed.
    pub input: String,
    pub include: Option<Regex>,
    pub exclude: Option<Regex>,
    pub min_level: Option<LogLevel>,
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
                match LogLevel::parse(level) {
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

    pub(crate) fn is_active(&self) -> bool {
        !self.input.trim().is_empty()
    }

    pub fn matches(&self, line: &LogLine) -> bool {
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

/// The window of the error counts in the title and per source (half an hour, whatever
/// the width), and the minutes of a sparkline at most.
const SPARK_MINUTES: usize = 30;

/// The newest `n` of a run of per-minute counts (oldest first).
fn last_minutes(counts: &[u64], n: usize) -> &[u64] {
    &counts[counts.len().saturating_sub(n)..]
}

pub(crate) fn level_style(theme: &Theme, level: LogLevel) -> Style {
    match level {
        LogLevel::Critical | LogLevel::Error => theme.crit,
        LogLevel::Warn => theme.warn,
        LogLevel::Info => theme.text,
        LogLevel::Debug | LogLevel::Trace => theme.muted,
    }
}

/// A source's colour: configured sources take the theme's source colours in the order the
/// config lists them (so up to eight sources never share one); any other source (a line
/// from a source since removed) falls back to a colour picked from its name.
pub(crate) fn source_style(ctx: &PaneContext, name: &str) -> Style {
    let theme = ctx.theme;
    match ctx
        .state
        .sources_of(PaneId::Errors)
        .iter()
        .position(|s| s == name)
    {
        Some(i) if !theme.sources.is_empty() => theme.sources[i % theme.sources.len()],
        _ => theme.source(name),
    }
}

/// The part of the tail that is on screen.
pub struct TailView<'a> {
    /// Oldest first.
    pub lines: Vec<&'a LogLine>,
    /// Which of `lines` is the selected one.
    pub selected: Option<usize>,
    /// The selection actually applied, counted back from the newest shown line (the
    /// requested one clamped at the oldest line).
    pub scroll: usize,
    /// Lines that arrived since the view was paused (not shown until it follows again).
    pub held_back: u64,
}

/// The lines that pass the pane's filters, newest first, without those held back by a
/// paused view; at most `take`.
fn matching<'a>(ctx: &PaneContext<'a>, take: usize) -> Vec<&'a LogLine> {
    matching_in(ctx.state, &ctx.ui.views.errors, take)
}

fn matching_in<'a>(state: &'a AppState, view: &ErrorsView, take: usize) -> Vec<&'a LogLine> {
    let anchor = view.anchor.unwrap_or(u64::MAX);
    state
        .logs
        .iter_seq()
        .rev()
        .filter(|(seq, _)| *seq < anchor)
        .map(|(_, l)| l)
        .filter(|l| (!view.errors_only || l.is_error) && view.filter.matches(l))
        .take(take)
        .collect()
}

/// The line `y` copies: the selected one of the tail (the newest while it follows), or
/// zoomed on the top patterns the selected pattern's example; as [`visible`] and
/// [`render_patterns`] pick them.
fn selected_line<'a>(state: &'a AppState, ui: &UiState, zoomed: bool) -> Option<&'a LogLine> {
    let view = &ui.views.errors;
    if zoomed && view.patterns {
        let patterns = patterns_in(state, view);
        let last = patterns.len().checked_sub(1)?;
        return Some(&patterns[ui.selected.min(last)].example);
    }
    let lines = matching_in(state, view, view.scroll.saturating_add(1));
    let last = lines.len().checked_sub(1)?;
    Some(lines[view.scroll.min(last)])
}

/// What `y` puts on the clipboard: the line as the pane shows it, on one line and through
/// the sanitizer (a log's escape sequences never reach the clipboard), with its date.
fn copied_text(line: &LogLine) -> String {
    format!(
        "{} {} {} {}",
        line.at.format("%Y-%m-%d %H:%M:%S"),
        one_line(&line.source),
        line.level.label(),
        one_line(&line.message)
    )
}

/// The tail for `rows` screen rows; `height` is how many rows a line takes (1 unless
/// wrapped). The selected line stays in view: the newest lines fill the bottom, and once
/// the selection goes past the top, the view scrolls with it.
pub fn visible<'a>(
    ctx: &PaneContext<'a>,
    rows: usize,
    height: impl Fn(&LogLine) -> usize,
) -> TailView<'a> {
    let held_back = ctx
        .ui
        .views
        .errors
        .anchor
        .map_or(0, |a| ctx.state.logs.pushed().saturating_sub(a));
    let newest_first = matching(ctx, ctx.ui.views.errors.scroll.saturating_add(rows.max(1)));
    if newest_first.is_empty() || rows == 0 {
        return TailView {
            lines: Vec::new(),
            selected: None,
            scroll: 0,
            held_back,
        };
    }
    let cursor = ctx.ui.views.errors.scroll.min(newest_first.len() - 1);
    // From the selected line toward the newest, as many as fit under it...
    let mut used = height(newest_first[cursor]).min(rows);
    let mut bottom = cursor;
    while bottom > 0 && used + height(newest_first[bottom - 1]) <= rows {
        bottom -= 1;
        used += height(newest_first[bottom]);
    }
    // ...then older lines above it while there is room.
    let mut top = cursor;
    while top + 1 < newest_first.len() && used + height(newest_first[top + 1]) <= rows {
        top += 1;
        used += height(newest_first[top]);
    }
    let mut shown: Vec<&LogLine> = newest_first[bottom..=top].to_vec();
    shown.reverse();
    TailView {
        selected: Some(top - cursor),
        lines: shown,
        scroll: cursor,
        held_back,
    }
}

pub fn render(frame: &mut Frame, area: Rect, ctx: &PaneContext) {
    let sources = ctx.state.sources_of(PaneId::Errors);
    let mut titles = Titles::default();
    // The count covers the last half hour whatever the width; the sparkline shows as
    // many of its minutes as fit.
    let minutes = ((area.width as usize).saturating_sub(16) / 3).min(SPARK_MINUTES);
    if minutes >= 3 && !(sources.is_empty() && ctx.state.logs.is_empty()) {
        let counts = ctx
            .state
            .logs
            .errors_per_minute(None, ctx.now, SPARK_MINUTES);
        let total: u64 = counts.iter().sum();
        let style = if total > 0 {
            ctx.theme.warn
        } else {
            ctx.theme.muted
        };
        titles.top = vec![
            Span::styled(count_sparkline(last_minutes(&counts, minutes)), style),
            Span::styled(format!(" {total} in {SPARK_MINUTES}m"), ctx.theme.muted),
        ];
    }
    if ctx.state.logs.dropped > 0 {
        titles.bottom_right = vec![Span::styled(
            format!("{} dropped", ctx.state.logs.dropped),
            ctx.theme.warn,
        )];
    }
    let body = inner(area);
    if ctx.zoomed && ctx.ui.views.errors.patterns {
        render_patterns(frame, body, ctx, &mut titles);
    } else {
        render_tail(frame, body, ctx, sources, &mut titles);
    }
    draw_block(frame, area, ctx, PaneId::Errors, sources, titles);
}

// ---------------------------------------------------------------------------------------
// The tail

fn render_tail(
    frame: &mut Frame,
    body: Rect,
    ctx: &PaneContext,
    sources: &[String],
    titles: &mut Titles,
) {
    let theme = ctx.theme;
    let ui = ctx.ui;
    let mut body = body;
    if ctx.zoomed {
        body = source_sparklines(frame, body, ctx, sources);
    }

    // Column widths from the lines around the selection (the message takes the rest).
    let around = matching(
        ctx,
        ui.views.errors.scroll.saturating_add(body.height as usize),
    );
    let sample_from = ui.views.errors.scroll.saturating_sub(body.height as usize);
    let sample: Vec<Row> = around
        .iter()
        .skip(sample_from)
        .map(|l| prefix_row(ctx, l))
        .collect();
    let widths = fit_columns(&COLUMNS, &sample, body.width, false);
    let message_width = widths
        .iter()
        .find(|(i, _)| *i == 3)
        .map_or(0, |(_, w)| *w as usize);
    let height = |l: &LogLine| -> usize {
        if ui.views.errors.wrap && message_width > 0 {
            wrap_cells(&message_text(ctx, l), message_width)
                .len()
                .max(1)
        } else {
            1
        }
    };
    let view = visible(ctx, body.height as usize, height);

    titles.bottom = mode_spans(ctx, &view);
    if view.lines.is_empty() {
        empty_tail(frame, body, ctx, sources, &view);
        return;
    }

    let show_selection = ctx.focused && (!ui.views.errors.following() || ui.views.errors.detail);
    let highlight = theme.highlight();
    let mut out: Vec<Line<'static>> = Vec::with_capacity(body.height as usize);
    for (i, line) in view.lines.iter().enumerate() {
        let selected = show_selection && view.selected == Some(i);
        let row = prefix_row(ctx, line);
        let message = message_text(ctx, line);
        // Found in the text as shown (after the sanitizer), not in the raw message.
        let found = match_ranges(&ui.views.errors.filter, &message);
        let pieces = if ui.views.errors.wrap && message_width > 0 {
            wrap_cells(&message, message_width)
        } else {
            vec![message]
        };
        let mut offset = 0;
        for (n, piece) in pieces.into_iter().enumerate() {
            let mut spans = Vec::new();
            for (pos, (column, w)) in widths.iter().enumerate() {
                if pos > 0 {
                    spans.push(Span::raw(" "));
                }
                let w = *w as usize;
                if *column == 3 {
                    spans.extend(highlighted(
                        &piece,
                        offset,
                        &found,
                        w,
                        (theme.text, highlight),
                    ));
                } else if n == 0 {
                    let cell = &row.cells[*column];
                    spans.push(Span::styled(fit(&cell.text, w, false, true), cell.style));
                } else {
                    spans.push(Span::raw(" ".repeat(w)));
                }
            }
            offset += piece.chars().count();
            let mut line = Line::from(spans);
            if selected {
                line = line.patch_style(theme.selection);
            }
            out.push(line);
        }
    }
    // A wrapped selected line taller than the pane shows its start.
    let skip = out.len().saturating_sub(body.height as usize);
    let out = if view.selected == Some(0) && skip > 0 {
        out.into_iter().take(body.height as usize).collect()
    } else {
        out.into_iter().skip(skip).collect()
    };
    lines(frame, body, out);
    if ui.views.errors.detail {
        let selected = view.selected.and_then(|i| view.lines.get(i)).copied();
        detail(frame, body, ctx, selected);
    }
}

/// What the message column says: the message on one line; zoomed, the fields after it.
fn message_text(ctx: &PaneContext, line: &LogLine) -> String {
    let mut message = one_line(&line.message);
    if ctx.zoomed {
        for (key, value) in &line.fields {
            message.push_str(&format!("  {}={}", one_line(key), one_line(value)));
        }
    }
    message
}

/// Where the filter's regex terms match `text`, as ranges of characters; none for a
/// filter of exclusions, levels and sources only. Empty matches mark nothing.
fn match_ranges(filter: &LogFilter, text: &str) -> Vec<Range<usize>> {
    let Some(re) = &filter.include else {
        return Vec::new();
    };
    let mut out = Vec::new();
    // Byte offsets to character counts, walking the text once.
    let (mut chars, mut byte) = (0, 0);
    let mut char_at = |to: usize| {
        chars += text[byte..to].chars().count();
        byte = to;
        chars
    };
    for m in re.find_iter(text).filter(|m| !m.is_empty()) {
        let start = char_at(m.start());
        let end = char_at(m.end());
        out.push(start..end);
    }
    out
}

/// A piece of a message (starting at character `offset` of it) fitted to `w` cells, the
/// characters in `found` drawn in the second style, the rest in the first.
fn highlighted(
    piece: &str,
    offset: usize,
    found: &[Range<usize>],
    w: usize,
    (plain, marked): (Style, Style),
) -> Vec<Span<'static>> {
    let fitted = fit(piece, w, false, true);
    if found.is_empty() {
        return vec![Span::styled(fitted, plain)];
    }
    // The characters kept from the piece: all when it fits, else those before the `…`.
    let kept = if width(piece) <= w {
        piece.chars().count()
    } else {
        fitted.trim_end().chars().count().saturating_sub(1)
    };
    let mut spans: Vec<Span<'static>> = Vec::new();
    let mut run = String::new();
    let mut run_marked = false;
    for (i, c) in fitted.chars().enumerate() {
        let at = offset + i;
        let is_marked = i < kept && found.iter().any(|r| r.contains(&at));
        if is_marked != run_marked && !run.is_empty() {
            let style = if run_marked { marked } else { plain };
            spans.push(Span::styled(std::mem::take(&mut run), style));
        }
        run_marked = is_marked;
        run.push(c);
    }
    if !run.is_empty() {
        spans.push(Span::styled(run, if run_marked { marked } else { plain }));
    }
    spans
}

/// Time, source and level cells (the message cell is laid out apart, to wrap).
fn prefix_row(ctx: &PaneContext, line: &LogLine) -> Row {
    let theme = ctx.theme;
    Row {
        cells: vec![
            Cell::new(line.at.format("%H:%M:%S").to_string(), theme.muted),
            Cell::new(one_line(&line.source), source_style(ctx, &line.source)),
            Cell::new(line.level.label(), level_style(theme, line.level)),
            Cell::new(String::new(), theme.text),
        ],
        style: Style::default(),
    }
}

/// `text` cut into pieces of at most `cells` cells each (a hard wrap: log lines are read
/// as written, and ids or paths have no spaces to break at).
pub(crate) fn wrap_cells(text: &str, cells: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut piece = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > cells && !piece.is_empty() {
            out.push(std::mem::take(&mut piece));
            used = 0;
        }
        piece.push(c);
        used += w;
    }
    if !piece.is_empty() || out.is_empty() {
        out.push(piece);
    }
    out
}

/// FOLLOW or PAUSED (with how far back and how many lines wait), the line filter, wrap.
fn mode_spans(ctx: &PaneContext, view: &TailView) -> Vec<Span<'static>> {
    let theme = ctx.theme;
    let ui = ctx.ui;
    let mut spans = Vec::new();
    if ui.views.errors.following() {
        spans.push(Span::styled("FOLLOW", theme.ok));
    } else {
        let mut text = format!("PAUSED ↑{}", view.scroll);
        if view.held_back > 0 {
            text.push_str(&format!(" · {} new", view.held_back));
        }
        spans.push(Span::styled(text, theme.accent.patch(theme.selection)));
        spans.push(Span::styled(" End follows", theme.muted));
    }
    spans.push(Span::styled(
        if ui.views.errors.errors_only {
            " · errors only"
        } else {
            " · all lines"
        },
        theme.muted,
    ));
    if ui.views.errors.wrap {
        spans.push(Span::styled(" · wrap", theme.muted));
    }
    spans.extend(filter_spans(ctx));
    spans
}

fn filter_spans(ctx: &PaneContext) -> Vec<Span<'static>> {
    let ui = ctx.ui;
    if !ui.views.errors.filter.is_active() {
        return Vec::new();
    }
    let (text, style) = match &ui.views.errors.filter.error {
        Some(error) => (
            format!(" · filter error: {}", one_line(error)),
            ctx.theme.crit,
        ),
        None => (
            format!(" · filter: {}", one_line(&ui.views.errors.filter.input)),
            ctx.theme.accent,
        ),
    };
    vec![Span::styled(text, style)]
}

/// Why nothing shows: no source, sources failing, a filter that matches nothing, no
/// errors yet, or a paused view whose lines have left the buffer.
fn empty_tail(
    frame: &mut Frame,
    body: Rect,
    ctx: &PaneContext,
    sources: &[String],
    view: &TailView,
) {
    let theme = ctx.theme;
    let ui = ctx.ui;
    let waiting = ctx.state.logs.is_empty()
        && (sources.is_empty()
            || sources.iter().all(|s| {
                ctx.state
                    .sources
                    .get(s)
                    .is_none_or(|s| s.is_error() || s.last_ok.is_none())
            }));
    if waiting {
        frame.render_widget(ctx.placeholder(sources, "log"), body);
        return;
    }
    let (text, style) = if !ui.views.errors.following() && view.held_back > 0 {
        (
            format!(
                "the lines scrolled back to have left the buffer ({} new): End follows",
                view.held_back
            ),
            theme.muted,
        )
    } else if ui.views.errors.filter.is_active() {
        (
            format!(
                "no lines match filter {}",
                one_line(&ui.views.errors.filter.input)
            ),
            theme.muted,
        )
    } else if ui.views.errors.errors_only {
        ("✓ no error lines yet".to_string(), theme.ok)
    } else {
        ("no log lines yet".to_string(), theme.muted)
    };
    lines(frame, body, vec![Line::from(Span::styled(text, style))]);
}

/// Zoomed: one row per source, its errors per minute over the last half hour. Returns
/// the room left under them (at most a quarter of the body goes to sparklines).
fn source_sparklines(frame: &mut Frame, body: Rect, ctx: &PaneContext, sources: &[String]) -> Rect {
    let theme = ctx.theme;
    let mut names: Vec<&str> = sources.iter().map(String::as_str).collect();
    for name in ctx.state.logs.sources() {
        if !names.contains(&name.as_str()) {
            names.push(name);
        }
    }
    let room = (body.height / 4) as usize;
    if names.is_empty() || room == 0 || body.width < 20 {
        return body;
    }
    let name_width = names
        .iter()
        .map(|n| width(n))
        .max()
        .unwrap_or(0)
        .clamp(3, 16);
    let minutes = (body.width as usize)
        .saturating_sub(name_width + 22)
        .min(SPARK_MINUTES);
    if minutes < 3 {
        return body;
    }
    let mut out = Vec::new();
    for name in names.iter().take(room) {
        let counts = ctx
            .state
            .logs
            .errors_per_minute(Some(name), ctx.now, SPARK_MINUTES);
        let total: u64 = counts.iter().sum();
        let last = counts.last().copied().unwrap_or(0);
        let style = if total > 0 { theme.warn } else { theme.muted };
        out.push(Line::from(vec![
            Span::styled(
                fit(&sanitize(name), name_width, false, true),
                source_style(ctx, name),
            ),
            Span::raw(" "),
            Span::styled(count_sparkline(last_minutes(&counts, minutes)), style),
            Span::styled(
                format!(" {last}/min · {total} in {SPARK_MINUTES}m"),
                theme.muted,
            ),
        ]));
    }
    if names.len() > room
        && let Some(last) = out.last_mut()
    {
        *last = Line::from(Span::styled(
            format!("… {} more sources", names.len() - room + 1),
            theme.muted,
        ));
    }
    let used = out.len() as u16;
    lines(
        frame,
        Rect {
            height: used,
            ..body
        },
        out,
    );
    Rect {
        y: body.y + used,
        height: body.height - used,
        ..body
    }
}

// ---------------------------------------------------------------------------------------
// Top patterns

/// The patterns the filter lets through (judged on each pattern's example), most frequent
/// first.
pub(crate) fn shown_patterns<'a>(ctx: &PaneContext<'a>) -> Vec<&'a Pattern> {
    patterns_in(ctx.state, &ctx.ui.views.errors)
}

fn patterns_in<'a>(state: &'a AppState, view: &ErrorsView) -> Vec<&'a Pattern> {
    state
        .logs
        .patterns()
        .into_iter()
        .filter(|p| view.filter.matches(&p.example))
        .collect()
}

fn render_patterns(frame: &mut Frame, body: Rect, ctx: &PaneContext, titles: &mut Titles) {
    let theme = ctx.theme;
    let patterns = shown_patterns(ctx);
    let table_stats = ctx.state.logs.pattern_table();
    let mut bottom = vec![Span::styled(
        format!("TOP PATTERNS · {}", patterns.len()),
        theme.accent,
    )];
    if table_stats.evicted_patterns > 0 {
        bottom.push(Span::styled(
            format!(
                " · {} rare patterns evicted ({} lines)",
                table_stats.evicted_patterns, table_stats.evicted_lines
            ),
            theme.warn,
        ));
    }
    bottom.push(Span::styled(" · t: tail", theme.muted));
    bottom.extend(filter_spans(ctx));
    titles.bottom = bottom;
    if patterns.is_empty() {
        let text = if ctx.ui.views.errors.filter.is_active() {
            format!(
                "no pattern matches filter {}",
                one_line(&ctx.ui.views.errors.filter.input)
            )
        } else {
            "✓ no error lines yet: no patterns".to_string()
        };
        lines(
            frame,
            body,
            vec![Line::from(Span::styled(text, theme.muted))],
        );
        return;
    }
    let selected = ctx.ui.selected.min(patterns.len() - 1);
    // The selected pattern's example under the table, whole (wrapped over a few rows).
    let example_rows = if body.height >= 8 { 3 } else { 0 };
    let table_area = Rect {
        height: body.height - example_rows,
        ..body
    };
    let rows: Vec<Row> = patterns
        .iter()
        .map(|p| Row {
            cells: vec![
                Cell::new(p.count.to_string(), theme.text),
                Cell::new(p.first_seen.format("%H:%M:%S").to_string(), theme.muted),
                Cell::new(p.last_seen.format("%H:%M:%S").to_string(), theme.muted),
                Cell::new(
                    one_line(&p.sources.join(",")),
                    match p.sources.as_slice() {
                        [one] => source_style(ctx, one),
                        _ => theme.text,
                    },
                ),
                Cell::new(one_line(&p.template), level_style(theme, p.example.level)),
            ],
            style: Style::default(),
        })
        .collect();
    table(
        frame,
        table_area,
        theme,
        &PATTERN_COLUMNS,
        &rows,
        Some(selected),
    );
    let example = &patterns[selected].example;
    if example_rows > 0 {
        let area = Rect {
            y: body.y + table_area.height,
            height: example_rows,
            ..body
        };
        let text = format!(
            "{} {} {}",
            example.at.format("%Y-%m-%d %H:%M:%S"),
            one_line(&example.source),
            one_line(&example.message)
        );
        let paragraph = Paragraph::new(vec![
            Line::from(Span::styled(
                format!(
                    "example ({}: every field)",
                    key_of(ctx, "line_fields", When::Zoomed(PaneId::Errors))
                ),
                theme.muted,
            )),
            Line::from(Span::styled(text, theme.text)),
        ])
        .wrap(Wrap { trim: false });
        frame.render_widget(paragraph, area);
    }
    if ctx.ui.views.errors.detail {
        detail(frame, body, ctx, Some(example));
    }
}

// ---------------------------------------------------------------------------------------
// A line's fields

/// Every field of `line` over the pane's body: time, source, level, the whole message
/// (its own lines kept), then each field, wrapped.
fn detail(frame: &mut Frame, body: Rect, ctx: &PaneContext, line: Option<&LogLine>) {
    if body.width < 4 || body.height < 3 {
        return;
    }
    let theme = ctx.theme;
    let block = Block::bordered()
        .border_type(BorderType::Double)
        .border_style(theme.border_focused)
        .title(Line::from(Span::styled(" line fields ", theme.title)))
        .title_bottom(
            Line::from(Span::styled(
                format!(" {} closes ", key_of(ctx, "back", When::Screen)),
                theme.muted,
            ))
            .right_aligned(),
        );
    let area = block.inner(body);
    frame.render_widget(Clear, body);
    frame.render_widget(block, body);
    let Some(line) = line else {
        lines(
            frame,
            area,
            vec![Line::from(Span::styled("no line selected", theme.muted))],
        );
        return;
    };
    let key_width = line
        .fields
        .iter()
        .map(|(k, _)| width(&sanitize(k)))
        .chain([7])
        .max()
        .unwrap_or(7)
        .min(24);
    let field = |key: &str, value: String, style: Style| {
        Line::from(vec![
            Span::styled(fit(key, key_width, false, true), theme.accent),
            Span::raw("  "),
            Span::styled(value, style),
        ])
    };
    let mut out = vec![
        field(
            "time",
            line.at.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string(),
            theme.text,
        ),
        field(
            "source",
            sanitize(&line.source),
            source_style(ctx, &line.source),
        ),
        field(
            "level",
            format!(
                "{}{}",
                line.level.label(),
                if line.is_error { " (error line)" } else { "" }
            ),
            level_style(theme, line.level),
        ),
    ];
    for (n, text) in line.message.split('\n').enumerate() {
        let key = if n == 0 { "message" } else { "" };
        out.push(field(
            key,
            sanitize(text.trim_end_matches('\r')),
            theme.text,
        ));
    }
    for (key, value) in &line.fields {
        out.push(field(&sanitize(key), one_line(value), theme.text));
    }
    frame.render_widget(Paragraph::new(out).wrap(Wrap { trim: false }), area);
}

#[cfg(test)]
mod tests {
    use super::LogFilter;
    use crate::model::update::{LogLevel, LogLine, Update};
    use crate::state::AppState;
    use crate::ui::test_support::*;
    use crate::ui::{PaneId, UiState};
    use chrono::Duration;
    use ratatui::style::{Color, Modifier};

    #[test]
    fn errors_states() {
        insta::assert_snapshot!(states_sheet(PaneId::Errors));
        insta::assert_snapshot!(zoomed_sheet(PaneId::Errors, 120, 16));
    }

    #[test]
    fn errors_pane_filters_scrolls_and_says_so() {
        let theme = theme();
        let state = deployment(Level::Crit);
        let size = (70, 8);
        let opts = Opts {
            focused: true,
            zoomed: false,
        };
        let mut ui = UiState::default();
        let follow = text(&draw_pane(PaneId::Errors, &state, &ui, &theme, size, &opts));
        assert!(follow.contains("FOLLOW"), "{follow}");
        assert!(
            !follow.contains("server started"),
            "info lines hidden by default: {follow}"
        );
        assert!(follow.contains("CRIT"), "{follow}");

        ui.views.errors.errors_only = false;
        ui.views.errors.scroll = 5;
        ui.views.errors.anchor = Some(state.logs.pushed());
        let scrolled = text(&draw_pane(PaneId::Errors, &state, &ui, &theme, size, &opts));
        assert!(scrolled.contains("PAUSED ↑5"), "{scrolled}");
        assert!(scrolled.contains("all lines"), "{scrolled}");

        // Scrolling past the oldest line stops at the oldest line.
        ui.views.errors.scroll = 10_000;
        let top = text(&draw_pane(PaneId::Errors, &state, &ui, &theme, size, &opts));
        assert!(top.contains("server started"), "{top}");

        ui.views.errors.scroll = 0;
        ui.views.errors.anchor = None;
        ui.views.errors.filter = LogFilter::parse("redis");
        let filtered = text(&draw_pane(PaneId::Errors, &state, &ui, &theme, size, &opts));
        assert!(filtered.contains("connection reset"), "{filtered}");
        assert!(!filtered.contains("database is locked"), "{filtered}");
        assert!(filtered.contains("filter: redis"), "{filtered}");

        ui.views.errors.filter = LogFilter::parse("no-such-thing");
        let none = text(&draw_pane(PaneId::Errors, &state, &ui, &theme, size, &opts));
        assert!(
            none.contains("no lines match filter no-such-thing"),
            "{none}"
        );

        ui.views.errors.filter = LogFilter::default();
        ui.views.errors.errors_only = true;
        let ok = text(&draw_pane(
            PaneId::Errors,
            &{
                let mut s = connecting();
                s.apply(
                    Update::Logs(vec![log(now(), LogLevel::Info, "app", "all quiet")]),
                    now(),
                );
                s
            },
            &ui,
            &theme,
            size,
            &opts,
        ));
        assert!(ok.contains("no error lines yet"), "{ok}");
        insta::assert_snapshot!(format!("{follow}{scrolled}{filtered}"));
    }

    #[test]
    fn errors_pane_counts_dropped_lines() {
        let mut state = connecting();
        let lines: Vec<LogLine> = (0..crate::state::logbuf::DEFAULT_CAPACITY + 7)
            .map(|i| {
                log(
                    now() - Duration::seconds(i as i64 % 50),
                    LogLevel::Error,
                    "app",
                    "boom",
                )
            })
            .collect();
        state.apply(Update::Logs(lines), now());
        let screen = text(&draw_pane(
            PaneId::Errors,
            &state,
            &UiState::default(),
            &theme(),
            (70, 6),
            &PLAIN,
        ));
        assert!(screen.contains("7 dropped"), "{screen}");
    }

    /// Seed 002's JSON lines and two other sources, through the real parser.
    fn errors_triage_state() -> AppState {
        let pattern = regex::RegexBuilder::new("error|exception|failed|critical|fatal|panic")
            .case_insensitive(true)
            .build()
            .unwrap();
        let mut state = connecting();
        state.register_source(PaneId::Errors, "tmws");
        state.register_source(PaneId::Errors, "nginx");
        let raw = [
            (
                "tmws",
                r#"{"timestamp": "2026-11-23T11:50:00Z", "level": "ERROR", "message": "Failed to call MCP tool", "tool_name": "get-library-docs", "outcome": "timeout", "latency_ms": 30012.0, "error_type": "TimeoutError"}"#,
            ),
            (
                "tmws",
                r#"{"timestamp": "2026-11-23T11:52:00Z", "level": "WARNING", "message": "Skill activation denied", "security_event": "SKILL_ACTIVATION_DENIED", "agent_id": "agent-17"}"#,
            ),
            (
                "nginx",
                "2026/11/23 11:55:00 [error] 1234#0: *88 connect() failed (111: Connection refused) while connecting to upstream, client: 10.0.3.7",
            ),
            (
                "tmws",
                r#"{"timestamp": "2026-11-23T11:58:00Z", "level": "ERROR", "message": "Scheduled expiration cleanup failed", "error_type": "OperationalError", "total_cleanups_attempted": 3, "monitoring_event": "SCHEDULER_CLEANUP_FAILED"}"#,
            ),
            (
                "tmws",
                r#"{"timestamp": "2026-11-23T11:59:00Z", "level": "ERROR", "message": "Failed to call MCP tool", "tool_name": "search_memories", "outcome": "timeout", "latency_ms": 31877.5, "error_type": "TimeoutError"}"#,
            ),
        ];
        let lines = raw
            .iter()
            .map(|(source, text)| {
                crate::collect::logs::parse::parse_line(
                    *source,
                    text.as_bytes(),
                    0,
                    &pattern,
                    now(),
                )
            })
            .collect();
        state.apply(Update::Logs(lines), now());
        state
    }

    /// The Errors pane's text in the default theme.
    fn errors_text(state: &AppState, ui: &UiState, size: (u16, u16), opts: &Opts) -> String {
        text(&draw_pane(PaneId::Errors, state, ui, &theme(), size, opts))
    }

    fn errors_ui(f: impl FnOnce(&mut UiState)) -> UiState {
        let mut ui = UiState {
            focus: PaneId::Errors,
            zoomed: true,
            ..UiState::default()
        };
        f(&mut ui);
        ui
    }

    #[test]
    fn errors_tail_is_merged_in_time_order_with_a_stable_colour_per_source() {
        let theme = theme();
        let mut state = errors_triage_state();
        // A source that is late: its line goes where its time puts it, not at the bottom.
        state.apply(
            Update::Logs(vec![log(
                now() - Duration::minutes(7),
                LogLevel::Error,
                "worker",
                "late worker error",
            )]),
            now(),
        );
        let ui = errors_ui(|ui| ui.views.errors.errors_only = false);
        let buffer = draw_pane(
            PaneId::Errors,
            &state,
            &ui,
            &theme,
            (110, 16),
            &FOCUSED_ZOOMED,
        );
        let screen = text(&buffer);
        let rows: Vec<u16> = ["11:50:00", "11:53:00", "11:55:00", "11:58:00", "11:59:00"]
            .iter()
            .map(|t| {
                find(&buffer, &format!("{t} "))
                    .unwrap_or_else(|| panic!("{t}: {screen}"))
                    .1
            })
            .collect();
        assert!(rows.windows(2).all(|w| w[0] < w[1]), "time order: {screen}");
        // Each source's name is drawn in its own colour wherever it appears, and the two
        // sources differ.
        let style_of = |needle: &str| {
            // In a line of the tail (after its time), not in the title.
            let (x, y) = find(&buffer, &format!(":00 {needle}")).unwrap();
            buffer[(x + 4, y)].fg
        };
        let tmws_rows: Vec<u16> = screen
            .lines()
            .enumerate()
            .filter(|(_, l)| l.contains(":00 tmws "))
            .map(|(y, _)| y as u16)
            .collect();
        assert!(tmws_rows.len() >= 2, "{screen}");
        let x_source = find(&buffer, "11:50:00").unwrap().0 + 9;
        let colours: Vec<_> = tmws_rows
            .iter()
            .map(|y| buffer[(x_source, *y)].fg)
            .collect();
        assert!(colours.windows(2).all(|w| w[0] == w[1]), "{colours:?}");
        // In the order the sources are configured: app, tmws, nginx.
        assert_eq!(colours[0], theme.sources[1].fg.unwrap_or(Color::Reset));
        assert_ne!(style_of("nginx"), style_of("tmws"));
        // The level column carries the level's style.
        let (x, y) = find(&buffer, "ERROR").unwrap();
        assert_eq!(buffer[(x, y)].fg, theme.crit.fg.unwrap_or(Color::Reset));
        let (x, y) = find(&buffer, "WARN ").unwrap();
        assert_eq!(buffer[(x, y)].fg, theme.warn.fg.unwrap_or(Color::Reset));
    }

    #[test]
    fn errors_pane_follows_then_holds_still_when_scrolled_back() {
        let theme = theme();
        let mut state = errors_triage_state();
        let size = (100, 9);
        let following = errors_ui(|ui| ui.zoomed = false);
        let screen = errors_text(&state, &following, size, &FOCUSED_PLAIN);
        assert!(screen.contains("FOLLOW"), "{screen}");

        // Scrolled back two lines: paused at what was there.
        let paused = errors_ui(|ui| {
            ui.zoomed = false;
            ui.views.errors.scroll = 2;
            ui.views.errors.anchor = Some(state.logs.pushed());
        });
        let before = draw_pane(
            PaneId::Errors,
            &state,
            &paused,
            &theme,
            size,
            &FOCUSED_PLAIN,
        );
        let before_text = text(&before);
        assert!(before_text.contains("PAUSED ↑2"), "{before_text}");
        // The selected line (two back from the newest: the 11:55 nginx line) is reversed.
        let (_, y) = find(&before, "11:55:00").unwrap();
        for x in 1..99 {
            assert!(
                before[(x, y)].modifier.contains(Modifier::REVERSED),
                "cell {x} of the selected line: {before_text}"
            );
        }
        let (_, y_newest) = find(&before, "11:59:00").unwrap();
        assert!(!before[(2, y_newest)].modifier.contains(Modifier::REVERSED));

        // New lines arrive, faster than anyone reads: the view holds still and counts them.
        let burst: Vec<LogLine> = (0..40)
            .map(|i| log(now(), LogLevel::Error, "tmws", &format!("burst line {i}")))
            .collect();
        state.apply(Update::Logs(burst), now());
        let after = errors_text(&state, &paused, size, &FOCUSED_PLAIN);
        assert!(after.contains("PAUSED ↑2 · 40 new"), "{after}");
        assert!(!after.contains("burst line"), "{after}");
        let body = |t: &str| t.lines().skip(1).take(6).collect::<Vec<_>>().join("\n");
        assert_eq!(body(&before_text), body(&after));

        // Following again shows the newest.
        let followed = errors_text(&state, &following, size, &FOCUSED_PLAIN);
        assert!(followed.contains("burst line 39"), "{followed}");
        assert!(followed.contains("FOLLOW"), "{followed}");
        insta::assert_snapshot!(format!("{screen}{before_text}{after}{followed}"));
    }

    #[test]
    fn errors_pane_filters_exclude_level_and_source() {
        let state = errors_triage_state();
        let size = (110, 10);
        let draw = |filter: &str| {
            let ui = errors_ui(|ui| {
                ui.zoomed = false;
                ui.views.errors.errors_only = false;
                ui.views.errors.filter = LogFilter::parse(filter);
            });
            errors_text(&state, &ui, size, &FOCUSED_PLAIN)
        };
        let excluded = draw("!mcp");
        assert!(!excluded.contains("Failed to call MCP tool"), "{excluded}");
        assert!(excluded.contains("cleanup failed"), "{excluded}");
        let level = draw("level:error");
        assert!(!level.contains("Skill activation denied"), "{level}");
        assert!(level.contains("connect() failed"), "{level}");
        let source = draw("source:nginx");
        assert!(source.contains("connect() failed"), "{source}");
        assert!(!source.contains("MCP"), "{source}");
        let combined = draw("fail !cleanup source:tmws");
        assert!(combined.contains("Failed to call MCP tool"), "{combined}");
        assert!(!combined.contains("cleanup failed"), "{combined}");
        assert!(!combined.contains("connect()"), "{combined}");
        let bad = draw("(unclosed");
        assert!(bad.contains("filter error: bad regex"), "{bad}");
        insta::assert_snapshot!(format!("{excluded}{level}{source}{combined}{bad}"));
    }

    #[test]
    fn errors_pane_wraps_long_lines_when_asked() {
        let mut state = connecting();
        let long = format!("start of a long message {} end-of-message", "x".repeat(150));
        state.apply(
            Update::Logs(vec![log(now(), LogLevel::Error, "app", &long)]),
            now(),
        );
        let size = (60, 8);
        let cut_ui = errors_ui(|ui| ui.zoomed = false);
        let cut = errors_text(&state, &cut_ui, size, &FOCUSED_PLAIN);
        assert!(cut.contains("start of a long"), "{cut}");
        assert!(cut.contains('…'), "{cut}");
        assert!(!cut.contains("end-of-message"), "{cut}");
        let wrap_ui = errors_ui(|ui| {
            ui.zoomed = false;
            ui.views.errors.wrap = true;
        });
        let wrapped = errors_text(&state, &wrap_ui, size, &FOCUSED_PLAIN);
        assert!(wrapped.contains("end-of-message"), "{wrapped}");
        assert!(wrapped.contains("· wrap"), "{wrapped}");
        insta::assert_snapshot!(format!("{cut}{wrapped}"));
    }

    #[test]
    fn enter_on_a_line_shows_all_its_fields() {
        let theme = theme();
        let state = errors_triage_state();
        // The newest error but one: the scheduler cleanup failure.
        let ui = errors_ui(|ui| {
            ui.views.errors.scroll = 1;
            ui.views.errors.anchor = Some(state.logs.pushed());
            ui.views.errors.detail = true;
        });
        let buffer = draw_pane(
            PaneId::Errors,
            &state,
            &ui,
            &theme,
            (100, 20),
            &FOCUSED_ZOOMED,
        );
        let screen = text(&buffer);
        for needle in [
            "line fields",
            "2026-11-23 11:58:00.000 UTC",
            "Scheduled expiration cleanup failed",
            "monitoring_event",
            "SCHEDULER_CLEANUP_FAILED",
            "error_type",
            "OperationalError",
            "total_cleanups_attempted",
            "Esc closes",
        ] {
            assert!(screen.contains(needle), "{needle}: {screen}");
        }
        // Every field of seed 002's tool-timeout line, on the newest line.
        let ui = errors_ui(|ui| {
            ui.views.errors.anchor = Some(state.logs.pushed());
            ui.views.errors.detail = true;
        });
        let newest = errors_text(&state, &ui, (100, 20), &FOCUSED_ZOOMED);
        for needle in [
            "tool_name",
            "search_memories",
            "outcome",
            "timeout",
            "latency_ms",
            "31877.5",
            "TimeoutError",
        ] {
            assert!(newest.contains(needle), "{needle}: {newest}");
        }
        let (x, y) = find(&buffer, "monitoring_event").unwrap();
        assert_eq!(buffer[(x, y)].fg, theme.accent.fg.unwrap_or(Color::Reset));
        // The security event of the warning line.
        let ui = errors_ui(|ui| {
            ui.views.errors.errors_only = false;
            ui.views.errors.scroll = 3;
            ui.views.errors.anchor = Some(state.logs.pushed());
            ui.views.errors.detail = true;
        });
        let warning = errors_text(&state, &ui, (100, 20), &FOCUSED_ZOOMED);
        assert!(warning.contains("security_event"), "{warning}");
        assert!(warning.contains("SKILL_ACTIVATION_DENIED"), "{warning}");
        insta::assert_snapshot!(format!("{screen}{newest}"));
    }

    #[test]
    fn zoomed_errors_show_a_sparkline_per_source() {
        let theme = theme();
        let state = errors_triage_state();
        let ui = errors_ui(|_| {});
        let buffer = draw_pane(
            PaneId::Errors,
            &state,
            &ui,
            &theme,
            (100, 20),
            &FOCUSED_ZOOMED,
        );
        let screen = text(&buffer);
        // tmws: 3 errors in the last half hour, nginx 1; app has none.
        assert!(screen.contains("3 in 30m"), "{screen}");
        assert!(screen.contains("1 in 30m"), "{screen}");
        assert!(screen.contains("0 in 30m"), "{screen}");
        let (x, y) = find(&buffer, "nginx").unwrap();
        assert_eq!(
            buffer[(x, y)].fg,
            theme.sources[2].fg.unwrap_or(Color::Reset)
        );
        // A source with errors has its sparkline in the warn style; one without, muted.
        let spark_x = x + 6;
        assert_eq!(
            buffer[(spark_x, y)].fg,
            theme.warn.fg.unwrap_or(Color::Reset)
        );
        let (x, y) = find(&buffer, "app ").unwrap();
        assert_eq!(
            buffer[(x + 6, y)].fg,
            theme.muted.fg.unwrap_or(Color::Reset)
        );
    }

    #[test]
    fn top_patterns_view_counts_and_shows_one_example_each() {
        let theme = theme();
        let state = errors_triage_state();
        let ui = errors_ui(|ui| ui.views.errors.patterns = true);
        let buffer = draw_pane(
            PaneId::Errors,
            &state,
            &ui,
            &theme,
            (120, 14),
            &FOCUSED_ZOOMED,
        );
        let screen = text(&buffer);
        // The two tool timeouts are one pattern, counted twice, first and last seen.
        let (_, y) = find(&buffer, "Failed to call MCP tool").unwrap();
        let row = screen.lines().nth(y as usize).unwrap();
        assert!(row.contains("    2 11:50:00 11:59:00 tmws"), "{row}");
        assert!(screen.contains("TOP PATTERNS · 3"), "{screen}");
        // The nginx line is masked: its ids and address vary.
        assert!(
            screen.contains("*<num> connect() failed (<num>: Connection refused)"),
            "{screen}"
        );
        // The selected (first) pattern is reversed and its example is shown whole.
        assert!(buffer[(3, y)].modifier.contains(Modifier::REVERSED));
        assert!(screen.contains("example (Enter: every field)"), "{screen}");
        assert!(
            screen.contains("2026-11-23 11:50:00 tmws Failed to call MCP tool"),
            "{screen}"
        );
        // Enter on it: the example's every field.
        let detail_ui = errors_ui(|ui| {
            ui.views.errors.patterns = true;
            ui.views.errors.detail = true;
        });
        let detail = errors_text(&state, &detail_ui, (120, 14), &FOCUSED_ZOOMED);
        assert!(detail.contains("get-library-docs"), "{detail}");
        assert!(detail.contains("30012.0"), "{detail}");
        // Filtered.
        let filtered_ui = errors_ui(|ui| {
            ui.views.errors.patterns = true;
            ui.views.errors.filter = LogFilter::parse("source:nginx");
        });
        let filtered = errors_text(&state, &filtered_ui, (120, 14), &FOCUSED_ZOOMED);
        assert!(filtered.contains("TOP PATTERNS · 1"), "{filtered}");
        let none_ui = errors_ui(|ui| ui.views.errors.patterns = true);
        let empty = errors_text(&connecting(), &none_ui, (120, 6), &FOCUSED_ZOOMED);
        assert!(empty.contains("no patterns"), "{empty}");
        insta::assert_snapshot!(format!("{screen}{detail}{filtered}{empty}"));
    }

    /// Which characters of `needle` (found on screen) are drawn highlighted: `^` marked, ` ` not.
    fn marks(buffer: &ratatui::buffer::Buffer, needle: &str) -> String {
        let (x, y) = find(buffer, needle).unwrap_or_else(|| panic!("{needle}: {}", text(buffer)));
        (0..needle.chars().count() as u16)
            .map(|i| {
                let cell = &buffer[(x + i, y)];
                let marked = cell.modifier.contains(Modifier::UNDERLINED)
                    && cell.modifier.contains(Modifier::BOLD);
                if marked { '^' } else { ' ' }
            })
            .collect()
    }

    #[test]
    fn what_the_filter_matches_is_highlighted_as_shown() {
        let theme = theme();
        let mut state = errors_triage_state();
        // Escape sequences before the match: the highlight is placed in the text as drawn,
        // after the sanitizer took them out, not where the raw bytes had it.
        state.apply(
            Update::Logs(vec![log(
                now(),
                LogLevel::Error,
                "app",
                "\x1b[1m\x1b]0;title\x07disk\x1b[0m is full: FULL stop",
            )]),
            now(),
        );
        let draw = |filter: &str, ui_change: &dyn Fn(&mut UiState), opts: &Opts| {
            let mut ui = errors_ui(|ui| {
                ui.zoomed = false;
                ui.views.errors.errors_only = false;
                ui.views.errors.filter = LogFilter::parse(filter);
            });
            ui_change(&mut ui);
            draw_pane(PaneId::Errors, &state, &ui, &theme, (110, 12), opts)
        };
        let buffer = draw("full|call", &|_| {}, &FOCUSED_PLAIN);
        // Case-insensitive, every match, nothing else.
        assert_eq!(
            marks(&buffer, "disk is full: FULL stop"),
            "        ^^^^  ^^^^     "
        );
        assert_eq!(marks(&buffer, "Failed to call MCP"), "          ^^^^    ");
        let (x, y) = find(&buffer, "full:").unwrap();
        assert_eq!(buffer[(x, y)].fg, theme.accent.fg.unwrap_or(Color::Reset));
        // Exclusions, levels and sources mark nothing (nor does a filter left empty).
        for filter in ["!cleanup", "level:warn", "source:app", ""] {
            let buffer = draw(filter, &|_| {}, &FOCUSED_PLAIN);
            assert_eq!(marks(&buffer, "disk is full"), "            ", "{filter}");
        }
        // Only the regex terms of a combined filter.
        let buffer = draw("source:app full !nothing", &|_| {}, &FOCUSED_PLAIN);
        assert_eq!(marks(&buffer, "is full: FULL"), "   ^^^^  ^^^^");
        // On the selected (reversed) line too.
        let selected = draw(
            "full",
            &|ui| {
                ui.views.errors.scroll = 0;
                ui.views.errors.detail = false;
                ui.views.errors.anchor = Some(u64::MAX - 1);
            },
            &FOCUSED_PLAIN,
        );
        let (x, y) = find(&selected, "full:").unwrap();
        assert!(selected[(x, y)].modifier.contains(Modifier::REVERSED));
        assert_eq!(marks(&selected, "is full"), "   ^^^^");
        // Zoomed: in the fields after the message as well.
        // (The filter passes lines on their message: `call` lets the tool timeouts in.)
        let zoomed = draw("call|timeout", &|ui| ui.zoomed = true, &FOCUSED_ZOOMED);
        assert_eq!(marks(&zoomed, "outcome=timeout"), "        ^^^^^^^");
        // Wrapped, a match cut over two rows is marked on both; cut, the `…` is not.
        let mut haystack = connecting();
        haystack.apply(
            Update::Logs(vec![log(
                now(),
                LogLevel::Error,
                "app",
                &"needle ".repeat(30),
            )]),
            now(),
        );
        for wrap in [true, false] {
            let ui = errors_ui(|ui| {
                ui.zoomed = false;
                ui.views.errors.wrap = wrap;
                ui.views.errors.filter = LogFilter::parse("needle");
            });
            let (w, h) = (60, 8);
            let buffer = draw_pane(
                PaneId::Errors,
                &haystack,
                &ui,
                &theme,
                (w, h),
                &FOCUSED_PLAIN,
            );
            let mut marked_rows = 0;
            for y in 1..h - 1 {
                let mut marked = false;
                for x in 1..w - 1 {
                    let cell = &buffer[(x, y)];
                    let is_marked = cell.modifier.contains(Modifier::UNDERLINED);
                    match cell.symbol() {
                        "n" | "e" | "d" | "l" => assert!(is_marked, "({x},{y}): {}", text(&buffer)),
                        _ => assert!(!is_marked, "({x},{y}): {}", text(&buffer)),
                    }
                    marked |= is_marked;
                }
                marked_rows += usize::from(marked);
            }
            assert_eq!(marked_rows > 1, wrap, "{}", text(&buffer));
        }
    }

    #[test]
    fn the_filter_prompt_draws_its_cursor_where_it_is() {
        let mut line = crate::ui::prompt::LineEdit::new("timeout (unclosed");
        for _ in 0..10 {
            line.apply(crate::ui::prompt::Edit::Left);
        }
        let ui = errors_ui(|ui| {
            ui.zoomed = false;
            ui.views.errors.editing = true;
            ui.views.errors.filter = LogFilter::parse(line.text());
            ui.views.errors.line = line;
        });
        let buffer = draw_screen(&errors_triage_state(), &ui, &theme(), 100, 24);
        let screen = text(&buffer);
        let footer = screen.lines().last().unwrap();
        assert!(
            footer.starts_with("filter: timeout (unclosed  bad regex"),
            "{footer}"
        );
        assert!(
            footer.ends_with("Enter apply · Esc cancel · ↑/↓ history"),
            "{footer}"
        );
        let (x, y) = find(&buffer, "filter: ").unwrap();
        let reversed: Vec<u16> = (x..x + 30)
            .filter(|x| buffer[(*x, y)].modifier.contains(Modifier::REVERSED))
            .collect();
        // "filter: " and 7 characters before the cursor: it is on the space.
        assert_eq!(reversed, [x + 15], "{footer}");
        // A filter longer than the footer keeps the cursor in view.
        let long = format!("{} end", "word ".repeat(40));
        let ui = errors_ui(|ui| {
            ui.views.errors.editing = true;
            ui.views.errors.line = crate::ui::prompt::LineEdit::new(&long);
        });
        let screen = text(&draw_screen(&errors_triage_state(), &ui, &theme(), 80, 24));
        let footer = screen.lines().last().unwrap();
        assert!(
            footer.starts_with("filter: …") && footer.contains("end█"),
            "{footer}"
        );
        assert!(footer.contains("Esc cancel"), "{footer}");
    }

    #[test]
    fn errors_views_survive_tiny_sizes_and_say_something() {
        let theme = theme();
        let state = errors_triage_state();
        let views: Vec<(&str, UiState)> = vec![
            ("follow", errors_ui(|_| {})),
            (
                "paused",
                errors_ui(|ui| {
                    ui.views.errors.scroll = 2;
                    ui.views.errors.anchor = Some(state.logs.pushed());
                }),
            ),
            (
                "paused, its lines gone",
                errors_ui(|ui| {
                    ui.views.errors.scroll = 2;
                    ui.views.errors.anchor = Some(0);
                }),
            ),
            ("wrap", errors_ui(|ui| ui.views.errors.wrap = true)),
            (
                "detail",
                errors_ui(|ui| {
                    ui.views.errors.detail = true;
                    ui.views.errors.anchor = Some(state.logs.pushed());
                }),
            ),
            ("patterns", errors_ui(|ui| ui.views.errors.patterns = true)),
            (
                "pattern detail",
                errors_ui(|ui| {
                    ui.views.errors.patterns = true;
                    ui.views.errors.detail = true;
                    ui.selected = 99;
                }),
            ),
        ];
        let mut out = String::new();
        for (name, ui) in &views {
            for width in 0..=24 {
                for height in 0..=8 {
                    for opts in [&PLAIN, &FOCUSED_ZOOMED] {
                        draw_pane(PaneId::Errors, &state, ui, &theme, (width, height), opts);
                    }
                }
            }
            for size in [(16, 4), (30, 6)] {
                out.push_str(&format!("── {name} at {}x{}\n", size.0, size.1));
                let screen = errors_text(&state, ui, size, &FOCUSED_ZOOMED);
                assert!(
                    screen.contains("6 Errors") || screen.contains("6 Err"),
                    "{name}: {screen}"
                );
                out.push_str(&screen);
            }
        }
        insta::assert_snapshot!(out);
    }
}
