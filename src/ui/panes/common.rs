//! Pieces every pane shares: the pane frame with its titles, a column-fitting table,
//! text sparklines and bars, and short formats for spans of time and sizes.
//! All arithmetic saturates: any `Rect`, down to 0x0, renders without panicking.

use crate::model::figure::Severity;
use crate::model::rule::Threshold;
use crate::model::sanitize::sanitize;
use crate::model::update::SourceHealth;
use crate::state::FigureState;
use crate::ui::theme::Theme;
use crate::ui::{PaneContext, PaneId};
use chrono::{DateTime, Duration, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, Paragraph, Wrap};
use std::borrow::Cow;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// The display width of a string in cells.
pub fn width(text: &str) -> usize {
    UnicodeWidthStr::width(text)
}

/// Cuts `text` to `max` cells, ending in "…" when something was cut.
pub fn truncate(text: &str, max: usize) -> String {
    if width(text) <= max {
        return text.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > max.saturating_sub(1) {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// Below this many cells a middle cut leaves two halves too short to read: the end is cut.
pub(crate) const MIDDLE_CUT_MIN: usize = 20;

/// Cuts `text` to `max` cells by taking out its middle, so both ends stay ("warungin-bac…
/// r-1 restarts"): for names whose start says what and whose end says which figure. Under
/// [`MIDDLE_CUT_MIN`] cells, cuts the end like [`truncate`].
pub(crate) fn truncate_middle(text: &str, max: usize) -> String {
    if width(text) <= max {
        return text.to_string();
    }
    if max < MIDDLE_CUT_MIN {
        return truncate(text, max);
    }
    let room = max - 1;
    let tail_room = room / 2;
    let head = clip_keeping_spaces(text, room - tail_room);
    let mut tail: Vec<char> = Vec::new();
    let mut used = 0;
    for c in text.chars().rev() {
        let w = c.width().unwrap_or(0);
        if used + w > room - width(&head) {
            break;
        }
        tail.push(c);
        used += w;
    }
    let tail: String = tail.into_iter().rev().collect();
    format!("{head}…{tail}")
}

/// The first `max` cells of `text`, spaces kept.
fn clip_keeping_spaces(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > max {
            break;
        }
        out.push(c);
        used += w;
    }
    out
}

/// Cuts `text` to `max` cells without an ellipsis (for "✖ CRIT" that may shrink to "✖").
pub(crate) fn clip(text: &str, max: usize) -> String {
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w > max {
            break;
        }
        out.push(c);
        used += w;
    }
    out.trim_end().to_string()
}

/// Foreign text made fit for one line: newlines and tabs become spaces, then the sanitizer.
pub(crate) fn one_line(text: &str) -> String {
    let flat: String = text
        .chars()
        .map(|c| {
            if matches!(c, '\n' | '\r' | '\t') {
                ' '
            } else {
                c
            }
        })
        .collect();
    sanitize(&flat)
}

/// Cuts a styled line to `max` cells, ending in "…" when something was cut.
pub(crate) fn truncate_line(line: Line<'static>, max: usize) -> Line<'static> {
    if line.width() <= max {
        return line;
    }
    let mut spans = Vec::new();
    let mut used = 0;
    let budget = max.saturating_sub(1);
    let mut last_style = Style::default();
    for span in line.spans {
        let w = width(&span.content);
        last_style = span.style;
        if used + w <= budget {
            used += w;
            spans.push(span);
        } else {
            let room = budget.saturating_sub(used);
            let cut = clip(&span.content, room);
            if !cut.is_empty() {
                spans.push(Span::styled(cut, span.style));
            }
            break;
        }
    }
    if max > 0 {
        spans.push(Span::styled("…", last_style));
    }
    Line::from(spans)
}

/// Pads (or cuts) `text` to exactly `w` cells.
pub fn fit(text: &str, w: usize, right: bool, ellipsis: bool) -> String {
    let cut = if ellipsis {
        truncate(text, w)
    } else {
        clip(text, w)
    };
    let pad = w.saturating_sub(width(&cut));
    if right {
        format!("{}{cut}", " ".repeat(pad))
    } else {
        format!("{cut}{}", " ".repeat(pad))
    }
}

/// "45s", "12m", "1h05m", "2d03h": a duration short enough for a table cell.
pub(crate) fn format_span(span: Duration) -> String {
    let secs = span.num_seconds().max(0);
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// "512M", "1.5G": bytes in at most five cells, binary units like `docker stats`.
pub(crate) fn compact_bytes(n: f64) -> String {
    const UNITS: [&str; 6] = ["B", "K", "M", "G", "T", "P"];
    if !n.is_finite() {
        return "?".into();
    }
    let mut value = n.max(0.0);
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value >= 10.0 {
        format!("{value:.0}{}", UNITS[unit])
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}

/// A figure's value as shown in a pane, with the style that says how bad it is:
/// missing is "—" (muted), a failed reading shows its error (unknown).
pub(crate) fn figure_text(theme: &Theme, figure: Option<&FigureState>) -> (String, Style) {
    match figure {
        None => ("—".to_string(), theme.muted),
        Some(f) => match &f.figure.error {
            Some(error) => (one_line(error), theme.unknown),
            None => (
                one_line(&f.figure.display_value()),
                theme.severity(f.figure.severity),
            ),
        },
    }
}

/// The severity of a figure, `Unknown` when it is missing.
pub(crate) fn figure_severity(figure: Option<&FigureState>) -> Severity {
    figure.map_or(Severity::Unknown, |f| f.figure.severity)
}

const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// The last `cells` values as a text sparkline, scaled from 0 (or the minimum when it is
/// negative) to the maximum. Empty when there is nothing to draw.
pub fn sparkline(values: &[f64], cells: usize) -> String {
    let values: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if cells == 0 || values.is_empty() {
        return String::new();
    }
    let tail = &values[values.len().saturating_sub(cells)..];
    let low = tail.iter().copied().fold(0.0_f64, f64::min);
    let high = tail.iter().copied().fold(f64::MIN, f64::max);
    let span = high - low;
    tail.iter()
        .map(|v| {
            if span <= 0.0 {
                BLOCKS[0]
            } else {
                let level = ((v - low) / span * 7.0).round();
                BLOCKS[(level.max(0.0) as usize).min(7)]
            }
        })
        .collect()
}

/// A sparkline whose bars past a threshold are drawn in its severity's style (warn, crit)
/// and the others in `style`: where a figure crossed its limits shows in the trend itself,
/// and without colour the word in the figure's line still says it.
pub(crate) fn judged_sparkline(
    theme: &Theme,
    values: &[f64],
    cells: usize,
    [warn, crit]: [Option<Threshold>; 2],
    style: Style,
) -> Vec<Span<'static>> {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let bars = sparkline(&finite, cells);
    let tail = &finite[finite.len().saturating_sub(bars.chars().count())..];
    let style_of = |v: f64| {
        if crit.is_some_and(|t| t.holds(v)) {
            theme.crit
        } else if warn.is_some_and(|t| t.holds(v)) {
            theme.warn
        } else {
            style
        }
    };
    let mut spans: Vec<Span<'static>> = Vec::new();
    let mut run = String::new();
    let mut run_style = None;
    for (bar, v) in bars.chars().zip(tail) {
        let style = style_of(*v);
        if run_style.is_some_and(|s| s != style) {
            spans.push(Span::styled(
                std::mem::take(&mut run),
                run_style.unwrap_or(style),
            ));
        }
        run_style = Some(style);
        run.push(bar);
    }
    if let Some(style) = run_style {
        spans.push(Span::styled(run, style));
    }
    spans
}

/// Integer counts as a sparkline (errors per minute).
pub(crate) fn count_sparkline(counts: &[u64]) -> String {
    let values: Vec<f64> = counts.iter().map(|c| *c as f64).collect();
    sparkline(&values, counts.len())
}

/// A horizontal bar of `cells` cells for `pct` (0–100), with the warn and crit limits
/// marked in the empty part so the distance to a threshold can be read without colour.
pub(crate) fn bar(
    theme: &Theme,
    pct: f64,
    cells: usize,
    limits: (f64, f64),
    style: Style,
) -> Vec<Span<'static>> {
    if cells == 0 {
        return Vec::new();
    }
    let pct = if pct.is_finite() {
        pct.clamp(0.0, 100.0)
    } else {
        0.0
    };
    let filled = ((pct / 100.0) * cells as f64).round() as usize;
    let filled = filled.min(cells);
    let mark = |limit: f64| ((limit / 100.0) * cells as f64).round() as usize;
    let (warn_at, crit_at) = (mark(limits.0), mark(limits.1));
    let mut rest = String::new();
    for i in filled..cells {
        rest.push(if i == warn_at || i == crit_at {
            '┆'
        } else {
            '·'
        });
    }
    vec![
        Span::styled("█".repeat(filled), style),
        Span::styled(rest, theme.muted),
    ]
}

/// Text that explains an empty or failed pane, wrapped to the area.
pub fn message(frame: &mut Frame, area: Rect, text: impl Into<String>, style: Style) {
    if area.is_empty() {
        return;
    }
    frame.render_widget(
        Paragraph::new(text.into())
            .style(style)
            .wrap(Wrap { trim: true }),
        area,
    );
}

/// Several lines, cut to the area (no wrapping).
pub fn lines(frame: &mut Frame, area: Rect, lines: Vec<Line<'static>>) {
    if area.is_empty() {
        return;
    }
    let lines = lines
        .into_iter()
        .map(|l| truncate_line(l, area.width as usize))
        .collect::<Vec<_>>();
    frame.render_widget(Paragraph::new(lines), area);
}

/// The area inside a pane's border.
pub fn inner(area: Rect) -> Rect {
    Block::bordered().inner(area)
}

/// Extra titles a pane puts on its frame besides its name and its sources' health.
#[derive(Default)]
pub(crate) struct Titles {
    /// After the pane's name, top left.
    pub top: Vec<Span<'static>>,
    /// On the bottom border, left.
    pub bottom: Vec<Span<'static>>,
    /// On the bottom border, right.
    pub bottom_right: Vec<Span<'static>>,
}

/// Draws the pane's frame: `ctx.block`'s name and focus, then the sources' health on the right,
/// cut so it never covers the name, and the pane's own extra titles.
pub(crate) fn draw_block(
    frame: &mut Frame,
    area: Rect,
    ctx: &PaneContext,
    pane: PaneId,
    sources: &[String],
    titles: Titles,
) {
    if area.is_empty() {
        return;
    }
    let mut block = ctx.block(pane, &[]);
    // "▶1 Services " is the name's width; the borders take one cell on each side.
    let name_width = 3 + width(pane.title()) + 1;
    let mut room = (area.width as usize).saturating_sub(2 + name_width);
    let status = ctx.sources_status(sources);
    let status_want = status.as_ref().map_or(0, Line::width);
    if !titles.top.is_empty() && room > 4 {
        // The pane's own summary first, leaving the sources' health some room.
        let budget = match status_want {
            0 => room,
            w => room.saturating_sub(w.min(16) + 1).max(room / 2),
        };
        let top = truncate_line(Line::from(titles.top), budget);
        room = room.saturating_sub(top.width() + 1);
        block = block.title(top);
    }
    if let Some(status) = status
        && room >= 4
    {
        let status = if status.width() > room && sources.len() > 1 {
            sources_summary(ctx, sources)
        } else {
            status
        };
        block = block.title(truncate_line(status, room.saturating_sub(1)).right_aligned());
    }
    let bottom_room = (area.width as usize).saturating_sub(2);
    let mut right_width = 0;
    if !titles.bottom_right.is_empty() {
        let right = truncate_line(Line::from(titles.bottom_right), bottom_room / 2);
        right_width = right.width() + 1;
        block = block.title_bottom(right.right_aligned());
    }
    if !titles.bottom.is_empty() {
        let left = truncate_line(
            Line::from(titles.bottom),
            bottom_room.saturating_sub(right_width),
        );
        block = block.title_bottom(left);
    }
    frame.render_widget(block, area);
}

/// The health of several sources in few words: the first failing one, else how many are
/// still connecting, else the age of the stalest figures.
pub(crate) fn sources_summary(ctx: &PaneContext, sources: &[String]) -> Line<'static> {
    let theme = ctx.theme;
    let known: Vec<(&String, &crate::state::SourceState)> = sources
        .iter()
        .filter_map(|name| ctx.state.sources.get(name).map(|s| (name, s)))
        .collect();
    let failing: Vec<_> = known.iter().filter(|(_, s)| s.is_error()).collect();
    if let Some((name, source)) = failing.first() {
        let more = if failing.len() > 1 {
            format!(" (+{} failing)", failing.len() - 1)
        } else {
            String::new()
        };
        return Line::from(Span::styled(
            one_line(&format!("{name} {}{more}", source.describe(ctx.now))),
            theme.crit,
        ));
    }
    if let Some((name, source)) = known
        .iter()
        .find(|(_, s)| matches!(s.health, SourceHealth::Busy { .. }))
    {
        return Line::from(Span::styled(
            one_line(&format!("{name} {}", source.describe(ctx.now))),
            theme.warn,
        ));
    }
    let connecting = known
        .iter()
        .filter(|(_, s)| s.health == SourceHealth::Connecting)
        .count();
    if connecting > 0 {
        let text = if connecting == known.len() {
            "connecting…".to_string()
        } else {
            format!("{connecting} of {} connecting…", known.len())
        };
        return Line::from(Span::styled(text, theme.unknown));
    }
    let stalest = known.iter().filter_map(|(_, s)| s.last_ok).min();
    let age = stalest.map_or(String::new(), |at| {
        format!(" {} ago", crate::model::time::format_age(ctx.now - at))
    });
    Line::from(Span::styled(age.trim_start().to_string(), theme.muted))
}

/// How a table column lines up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// One column of a [`table`]: the narrowest it may get, the widest it wants, and which
/// columns go first when the pane is narrow (higher `drop` goes first).
#[derive(Clone, Debug)]
pub struct Column {
    pub title: Cow<'static, str>,
    pub min: u16,
    pub max: u16,
    pub drop: u8,
    pub align: Align,
    /// Which columns get spare room first (lower first); defaults to `drop`.
    pub grow: u8,
    /// Cut without "…" (for cells like "✖ CRIT" whose first cell carries the meaning).
    pub clip: bool,
    /// Takes the room left at the end (up to its `max`), so the columns after it sit at
    /// the right edge of a narrow pane.
    pub fill: bool,
    /// Cut in the middle, keeping both ends, instead of at the end.
    pub middle: bool,
    /// Kept whole while columns with a `drop` above this can make room: they are dropped
    /// first (a figure's labels and history before its name is cut, never its value).
    pub whole: Option<u8>,
}

impl Column {
    pub const fn left(title: &'static str, min: u16, max: u16, drop: u8) -> Column {
        Column {
            title: Cow::Borrowed(title),
            min,
            max,
            drop,
            align: Align::Left,
            grow: drop,
            clip: false,
            fill: false,
            middle: false,
            whole: None,
        }
    }

    pub const fn right(title: &'static str, min: u16, max: u16, drop: u8) -> Column {
        Column {
            title: Cow::Borrowed(title),
            min,
            max,
            drop,
            align: Align::Right,
            grow: drop,
            clip: false,
            fill: false,
            middle: false,
            whole: None,
        }
    }

    /// Gets spare room before columns with a higher `grow`.
    pub const fn grow(mut self, grow: u8) -> Column {
        self.grow = grow;
        self
    }

    pub const fn fill(mut self) -> Column {
        self.fill = true;
        self
    }

    pub const fn clipped(mut self) -> Column {
        self.clip = true;
        self
    }

    /// Columns with a `drop` above `than` are dropped before this one is cut.
    pub const fn whole_before(mut self, than: u8) -> Column {
        self.whole = Some(than);
        self
    }

    /// Cut in the middle ([`truncate_middle`]) when the column is too narrow.
    pub const fn cut_middle(mut self) -> Column {
        self.middle = true;
        self
    }

    /// A column whose title comes from data (a drill-down table's header).
    pub fn named(title: String, min: u16, max: u16, drop: u8, align: Align) -> Column {
        Column {
            title: Cow::Owned(title),
            min,
            max,
            drop,
            align,
            grow: drop,
            clip: false,
            fill: false,
            middle: false,
            whole: None,
        }
    }
}

/// One cell: its text (already sanitized) and style.
#[derive(Clone, Debug)]
pub struct Cell {
    pub text: String,
    pub style: Style,
}

impl Cell {
    pub fn new(text: impl Into<String>, style: Style) -> Cell {
        Cell {
            text: text.into(),
            style,
        }
    }
}

/// One row: its cells, in column order, and a base style under them.
#[derive(Clone, Debug)]
pub struct Row {
    pub cells: Vec<Cell>,
    pub style: Style,
}

/// Which columns fit in `total` cells and how wide each gets: the least needed columns are
/// dropped until the minimums fit, then the rest of the room goes to the most needed first.
pub(crate) fn fit_columns(
    columns: &[Column],
    rows: &[Row],
    total: u16,
    header: bool,
) -> Vec<(usize, u16)> {
    let want: Vec<u16> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let title = if header { width(&c.title) } else { 0 };
            let content = rows
                .iter()
                .filter_map(|r| r.cells.get(i))
                .map(|cell| width(&cell.text))
                .chain(std::iter::once(title))
                .max()
                .unwrap_or(0);
            (content.min(u16::MAX as usize) as u16).clamp(c.min, c.max.max(c.min))
        })
        .collect();
    let mut keep: Vec<usize> = (0..columns.len()).collect();
    let needed = |keep: &[usize]| -> u32 {
        keep.iter().map(|&i| u32::from(columns[i].min)).sum::<u32>()
            + keep.len().saturating_sub(1) as u32
    };
    // Drops the least needed column of `keep` (among equals, the rightmost) that is less
    // needed than `than`.
    let drop_one = |keep: &mut Vec<usize>, than: u8| -> bool {
        let worst = keep
            .iter()
            .enumerate()
            .filter(|(_, i)| columns[**i].drop > than)
            .max_by_key(|(pos, i)| (columns[**i].drop, *pos))
            .map(|(pos, _)| pos);
        match worst {
            Some(pos) => {
                keep.remove(pos);
                true
            }
            None => false,
        }
    };
    while keep.len() > 1 && needed(&keep) > u32::from(total) {
        if !drop_one(&mut keep, 0) {
            // Every column is as needed as the first: drop the rightmost.
            keep.pop();
        }
    }
    loop {
        let widths = spread(columns, &want, &keep, total, needed(&keep));
        // A column to keep whole that is cut: make room by dropping a less needed one.
        let cut = keep
            .iter()
            .zip(&widths)
            .filter(|(i, w)| **w < want[**i])
            .find_map(|(i, _)| columns[*i].whole);
        match cut {
            Some(than) if keep.len() > 1 && drop_one(&mut keep, than) => continue,
            _ => return keep.into_iter().zip(widths).collect(),
        }
    }
}

/// How wide each kept column gets in `total` cells: its minimum, then the rest of the room
/// to the most needed first (up to what its content wants), then what is left to the
/// filling column.
fn spread(columns: &[Column], want: &[u16], keep: &[usize], total: u16, needed: u32) -> Vec<u16> {
    if keep.len() == 1 {
        return vec![want[keep[0]].min(total)];
    }
    let mut widths: Vec<u16> = keep.iter().map(|&i| columns[i].min).collect();
    let mut left = u32::from(total).saturating_sub(needed);
    let mut order: Vec<usize> = (0..keep.len()).collect();
    order.sort_by_key(|&pos| (columns[keep[pos]].grow, pos));
    for pos in order {
        let extra = u32::from(want[keep[pos]].saturating_sub(widths[pos])).min(left);
        widths[pos] = widths[pos].saturating_add(extra as u16);
        left -= extra;
    }
    if let Some(pos) = keep.iter().position(|&i| columns[i].fill) {
        let room = u32::from(columns[keep[pos]].max.saturating_sub(widths[pos]));
        widths[pos] = widths[pos].saturating_add(left.min(room) as u16);
    }
    widths
}

/// What a table drew, so the pane can say what did not fit.
pub struct TableView {
    /// Rows above and below the visible ones.
    pub hidden_above: usize,
    pub hidden_below: usize,
}

/// Draws a table with a header row (when there are at least 3 rows of room), keeping the
/// selected row in view and marking it with the theme's selection (reverse + bold).
pub fn table(
    frame: &mut Frame,
    area: Rect,
    theme: &Theme,
    columns: &[Column],
    rows: &[Row],
    selected: Option<usize>,
) -> TableView {
    table_with(frame, area, theme, columns, rows, selected, true)
}

/// [`table`], with or without the header row.
pub(crate) fn table_with(
    frame: &mut Frame,
    area: Rect,
    theme: &Theme,
    columns: &[Column],
    rows: &[Row],
    selected: Option<usize>,
    header: bool,
) -> TableView {
    let view = Which::Selected(selected);
    draw_table(frame, area, theme, columns, rows, header, view)
}

/// A table in a summary pane: when not every row fits, the rows for which `problem` holds
/// are shown first (in their order), then as many others as fit, in the rows' order.
pub(crate) fn table_problems_first(
    frame: &mut Frame,
    area: Rect,
    theme: &Theme,
    columns: &[Column],
    rows: &[Row],
    problem: &[bool],
) -> TableView {
    draw_table(
        frame,
        area,
        theme,
        columns,
        rows,
        true,
        Which::ProblemsFirst(problem),
    )
}

/// Which rows a table shows.
enum Which<'a> {
    /// From the top, scrolled to keep the selected row (if any) in view.
    Selected(Option<usize>),
    ProblemsFirst(&'a [bool]),
}

/// The indices of at most `room` rows: problems first, the rest after, in the rows' order.
pub(crate) fn pick_rows(count: usize, room: usize, problem: &[bool]) -> Vec<usize> {
    if count <= room {
        return (0..count).collect();
    }
    let is_problem = |i: usize| problem.get(i).copied().unwrap_or(false);
    let mut chosen: Vec<usize> = (0..count).filter(|&i| is_problem(i)).take(room).collect();
    let left = room.saturating_sub(chosen.len());
    chosen.extend((0..count).filter(|&i| !is_problem(i)).take(left));
    chosen.sort_unstable();
    chosen
}

fn draw_table(
    frame: &mut Frame,
    area: Rect,
    theme: &Theme,
    columns: &[Column],
    rows: &[Row],
    header: bool,
    which: Which,
) -> TableView {
    let mut view = TableView {
        hidden_above: 0,
        hidden_below: 0,
    };
    if area.is_empty() {
        view.hidden_below = rows.len();
        return view;
    }
    let header = header && area.height >= 3 && !rows.is_empty();
    let layout = fit_columns(columns, rows, area.width, header);
    let visible = (area.height as usize).saturating_sub(usize::from(header));
    let (shown, selected): (Vec<usize>, Option<usize>) = match which {
        Which::Selected(selected) => {
            let selected = selected.map(|s| s.min(rows.len().saturating_sub(1)));
            let offset = match selected {
                Some(s) if s >= visible => s + 1 - visible,
                _ => 0,
            };
            view.hidden_above = offset;
            (
                (offset..rows.len().min(offset + visible)).collect(),
                selected,
            )
        }
        Which::ProblemsFirst(problem) => (pick_rows(rows.len(), visible, problem), None),
    };
    view.hidden_below = rows.len().saturating_sub(view.hidden_above + shown.len());
    let full = area.width as usize;
    let mut out = Vec::new();
    if header {
        let mut spans = Vec::new();
        for (n, (i, w)) in layout.iter().enumerate() {
            if n > 0 {
                spans.push(Span::raw(" "));
            }
            let c = &columns[*i];
            spans.push(Span::styled(
                fit(&c.title, *w as usize, c.align == Align::Right, false),
                theme.muted,
            ));
        }
        out.push(Line::from(spans));
    }
    for index in shown {
        let row = &rows[index];
        let mut spans = Vec::new();
        for (n, (i, w)) in layout.iter().enumerate() {
            if n > 0 {
                spans.push(Span::styled(" ", row.style));
            }
            let c = &columns[*i];
            let cell = row.cells.get(*i);
            let text = cell.map_or("", |cell| cell.text.as_str());
            let style = row
                .style
                .patch(cell.map_or(Style::default(), |cell| cell.style));
            let text = if c.middle {
                Cow::Owned(truncate_middle(text, *w as usize))
            } else {
                Cow::Borrowed(text)
            };
            spans.push(Span::styled(
                fit(&text, *w as usize, c.align == Align::Right, !c.clip),
                style,
            ));
        }
        let mut line = Line::from(spans);
        if selected == Some(index) {
            let pad = full.saturating_sub(line.width());
            line.push_span(Span::raw(" ".repeat(pad)));
            line = line.patch_style(theme.selection);
        }
        out.push(line);
    }
    lines(frame, area, out);
    view
}

/// "+3 more" for a pane's bottom border.
pub(crate) fn more_hint(theme: &Theme, view: &TableView) -> Vec<Span<'static>> {
    let mut parts = Vec::new();
    if view.hidden_above > 0 {
        parts.push(format!("{} above", view.hidden_above));
    }
    if view.hidden_below > 0 {
        parts.push(format!("+{} more", view.hidden_below));
    }
    if parts.is_empty() {
        Vec::new()
    } else {
        vec![Span::styled(parts.join(" "), theme.muted)]
    }
}

/// A figure's warn or crit threshold on a chart: where, and in which style.
pub(crate) type Limit = (f64, Style);

/// One figure's recent values as a line chart under a title: time up to now on the x
/// axis, 0 (or the lowest value, when below) to a round number in `unit`s (printed by
/// `format`) on the y axis, each threshold in `limits` a flat line across it.
pub(crate) fn history_chart(
    frame: &mut Frame,
    area: Rect,
    ctx: &PaneContext,
    title: Line<'static>,
    values: &[(DateTime<Utc>, f64)],
    (unit, format): (f64, &dyn Fn(f64) -> String),
    limits: &[Limit],
) {
    if area.is_empty() {
        return;
    }
    let theme = ctx.theme;
    if values.len() < 2 || area.height < 3 {
        let [head, rest] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
        lines(frame, head, vec![title]);
        message(frame, rest, "collecting samples…", theme.muted);
        return;
    }
    let points: Vec<(f64, f64)> = values
        .iter()
        .map(|(at, v)| ((*at - ctx.now).num_milliseconds() as f64 / 1000.0, *v))
        .collect();
    let oldest = points.first().map_or(-60.0, |(x, _)| *x).min(-60.0);
    let highest = points
        .iter()
        .map(|(_, v)| *v)
        .chain(limits.iter().map(|(limit, _)| *limit))
        .fold(0.0, f64::max);
    let lowest = points.iter().map(|(_, v)| *v).fold(0.0, f64::min);
    let top = nice_ceiling((highest * 1.1 / unit).max(1.0)) * unit;
    let bottom = if lowest < 0.0 {
        -nice_ceiling(-lowest * 1.1 / unit) * unit
    } else {
        0.0
    };
    let span = format_span(Duration::seconds(-oldest as i64));
    let lines_at: Vec<[(f64, f64); 2]> = limits
        .iter()
        .map(|(limit, _)| [(oldest, *limit), (0.0, *limit)])
        .collect();
    let mut datasets: Vec<Dataset> = limits
        .iter()
        .zip(&lines_at)
        .map(|((_, style), line)| {
            Dataset::default()
                .marker(Marker::Dot)
                .graph_type(GraphType::Line)
                .style(*style)
                .data(line)
        })
        .collect();
    datasets.push(
        Dataset::default()
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(theme.accent)
            .data(&points),
    );
    let chart = Chart::new(datasets)
        .block(Block::new().title(truncate_line(title, area.width as usize)))
        .style(theme.text)
        .x_axis(
            Axis::default()
                .style(theme.muted)
                .bounds([oldest, 0.0])
                .labels([Line::from(format!("-{span}")), Line::from("now")]),
        )
        .y_axis(
            Axis::default()
                .style(theme.muted)
                .bounds([bottom, top])
                .labels([Line::from(format(bottom)), Line::from(format(top))]),
        );
    frame.render_widget(chart, area);
}

/// The smallest 1, 2, 2.5 or 5 × 10^k at or above `v`: an axis top that reads well.
fn nice_ceiling(v: f64) -> f64 {
    if !v.is_finite() || v <= 0.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|step| step * magnitude)
        .find(|top| *top >= v)
        .unwrap_or(10.0 * magnitude)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_are_never_hidden() {
        let problem = [false, false, false, true, false];
        assert_eq!(pick_rows(5, 2, &problem), vec![0, 3]);
        assert_eq!(pick_rows(5, 1, &problem), vec![3]);
        assert_eq!(pick_rows(2, 5, &problem), vec![0, 1]);
        assert!(pick_rows(5, 0, &problem).is_empty());
    }

    #[test]
    fn truncation_never_exceeds_the_room() {
        assert_eq!(truncate("services", 5), "serv…");
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abc", 0), "");
        assert_eq!(clip("✖ CRIT", 1), "✖");
        assert_eq!(fit("7", 3, true, true), "  7");
        assert_eq!(
            truncate_middle("warungin-backend-worker-1 restarts", 20),
            "warungin-b… restarts"
        );
        assert_eq!(truncate_middle("host CPU", 8), "host CPU");
        assert_eq!(
            truncate_middle("tmws-api health latency", 12),
            "tmws-api he…"
        );
        for max in 0..30 {
            assert!(width(&truncate_middle("tmws-api health latency", max)) <= max);
        }
    }

    #[test]
    fn spans_and_sizes_read_short() {
        assert_eq!(format_span(Duration::seconds(59)), "59s");
        assert_eq!(format_span(Duration::minutes(65)), "1h05m");
        assert_eq!(format_span(Duration::hours(50)), "2d02h");
        assert_eq!(compact_bytes(512.0 * 1024.0 * 1024.0), "512M");
        assert_eq!(compact_bytes(1.5 * 1024.0 * 1024.0 * 1024.0), "1.5G");
    }

    #[test]
    fn sparkline_scales_to_the_highest_value() {
        assert_eq!(sparkline(&[0.0, 50.0, 100.0], 3), "▁▅█");
        assert_eq!(sparkline(&[1.0, 2.0, 3.0], 2), "▆█");
        assert_eq!(sparkline(&[], 5), "");
        assert_eq!(sparkline(&[5.0, 5.0], 5), "██");
    }

    #[test]
    fn columns_drop_least_needed_first() {
        let cols = [
            Column::left("name", 4, 20, 0),
            Column::right("a", 3, 3, 2),
            Column::right("b", 3, 3, 1),
        ];
        let rows = vec![Row {
            cells: vec![
                Cell::new("service", Style::default()),
                Cell::new("1", Style::default()),
                Cell::new("2", Style::default()),
            ],
            style: Style::default(),
        }];
        let fit = fit_columns(&cols, &rows, 9, true);
        assert_eq!(fit.iter().map(|(i, _)| *i).collect::<Vec<_>>(), vec![0, 2]);
        assert_eq!(fit_columns(&cols, &rows, 0, true).len(), 1);
        let wide = fit_columns(&[cols[0].clone().fill(), cols[1].clone()], &rows, 30, false);
        assert_eq!(wide, vec![(0, 20), (1, 3)]);
    }

    /// A name kept whole before details: the details go first, never the value.
    #[test]
    fn a_whole_column_is_cut_only_once_the_details_are_gone() {
        let cols = [
            Column::left("figure", 6, 40, 0).whole_before(1),
            Column::right("value", 5, 8, 1),
            Column::left("history", 6, 10, 2),
            Column::left("why", 6, 30, 3),
        ];
        let row = |name: &str| Row {
            cells: ["x", "12.5%", "▁▂▃▄▅▆", "a detail of a kind"]
                .iter()
                .enumerate()
                .map(|(i, t)| Cell::new(if i == 0 { name } else { t }, Style::default()))
                .collect(),
            style: Style::default(),
        };
        let long = vec![row("checkout latency p95 (15m)")];
        let kept = |fit: Vec<(usize, u16)>| fit.iter().map(|(i, _)| *i).collect::<Vec<_>>();
        // Room for all at their minimums, but the name is cut: why and history go.
        let fit = fit_columns(&cols, &long, 38, false);
        assert_eq!(kept(fit.clone()), vec![0, 1], "{fit:?}");
        assert_eq!(fit[0].1, 26, "the whole name");
        // Narrower still: the name is cut, the value stays.
        assert_eq!(kept(fit_columns(&cols, &long, 20, false)), vec![0, 1]);
        // A short name leaves the details where they are.
        assert_eq!(
            kept(fit_columns(&cols, &[row("p95")], 38, false)),
            vec![0, 1, 2, 3]
        );
    }
}
