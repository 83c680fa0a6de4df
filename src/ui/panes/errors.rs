//! Errors: the merged tail of every log source (seed 002/003's `journalctl | grep` and
//! `docker compose logs | grep -i error`), newest at the bottom, with the error rate per
//! minute in the title. Filterable (`/`), error lines only or all lines (`e`), scrollable.

use super::common::{
    Cell, Column, Row, Titles, count_sparkline, draw_block, inner, lines, one_line, table_with,
};
use crate::state::update::{LogLevel, LogLine};
use crate::ui::theme::Theme;
use crate::ui::{PaneContext, PaneId};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::{Frame, layout::Rect};

const COLUMNS: [Column; 4] = [
    Column::left("time", 8, 8, 2),
    Column::left("source", 3, 12, 3),
    Column::left("level", 5, 5, 1),
    Column::left("message", 8, u16::MAX, 0).grow(9),
];

pub fn level_style(theme: &Theme, level: LogLevel) -> Style {
    match level {
        LogLevel::Critical | LogLevel::Error => theme.crit,
        LogLevel::Warn => theme.warn,
        LogLevel::Info => theme.text,
        LogLevel::Debug | LogLevel::Trace => theme.muted,
    }
}

/// The lines to show: at most `rows`, `scroll` matching lines back from the newest (clamped
/// at the oldest), oldest first; and the scroll actually applied.
pub fn visible<'a>(ctx: &PaneContext<'a>, rows: usize) -> (Vec<&'a LogLine>, usize) {
    let ui = ctx.ui;
    let wanted = ui.log_scroll.saturating_add(rows);
    let mut newest_first: Vec<&LogLine> = ctx
        .state
        .logs
        .iter()
        .rev()
        .filter(|l| (!ui.errors_only || l.is_error) && ui.filter.matches(l))
        .take(wanted)
        .collect();
    let start = ui.log_scroll.min(newest_first.len().saturating_sub(rows));
    let scroll = start;
    newest_first = newest_first.into_iter().skip(start).take(rows).collect();
    newest_first.reverse();
    (newest_first, scroll)
}

pub fn render(frame: &mut Frame, area: Rect, ctx: &PaneContext) {
    let sources = ctx.state.sources_of("errors");
    let body = inner(area);
    let theme = ctx.theme;
    let ui = ctx.ui;
    let logs = &ctx.state.logs;
    let mut titles = Titles::default();

    // Errors per minute over the last half hour, as wide as the title allows.
    let minutes = ((area.width as usize).saturating_sub(16) / 3).min(30);
    if minutes >= 3 && !(sources.is_empty() && logs.is_empty()) {
        let counts = logs.errors_per_minute(None, ctx.now, minutes);
        let total: u64 = counts.iter().sum();
        let style = if total > 0 { theme.warn } else { theme.muted };
        titles.top = vec![
            Span::styled(count_sparkline(&counts), style),
            Span::styled(format!(" {total} in {minutes}m"), theme.muted),
        ];
    }

    let (shown, scroll) = visible(ctx, body.height as usize);
    let mut bottom = Vec::new();
    if scroll == 0 {
        bottom.push(Span::styled("FOLLOW", theme.ok));
    } else {
        bottom.push(Span::styled(format!("SCROLL +{scroll}"), theme.accent));
    }
    bottom.push(Span::styled(
        if ui.errors_only {
            " · errors only"
        } else {
            " · all lines"
        },
        theme.muted,
    ));
    if ui.filter.is_active() {
        let (text, style) = match &ui.filter.error {
            Some(error) => (format!(" · filter error: {}", one_line(error)), theme.crit),
            None => (
                format!(" · filter: {}", one_line(&ui.filter.input)),
                theme.accent,
            ),
        };
        bottom.push(Span::styled(text, style));
    }
    titles.bottom = bottom;
    if logs.dropped > 0 {
        titles.bottom_right = vec![Span::styled(
            format!("{} dropped", logs.dropped),
            theme.warn,
        )];
    }

    if shown.is_empty() {
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
        } else {
            let (text, style) = if ui.filter.is_active() {
                (
                    format!("no lines match filter {}", one_line(&ui.filter.input)),
                    theme.muted,
                )
            } else if ui.errors_only {
                ("✓ no error lines yet".to_string(), theme.ok)
            } else {
                ("no log lines yet".to_string(), theme.muted)
            };
            lines(frame, body, vec![Line::from(Span::styled(text, style))]);
        }
        draw_block(frame, area, ctx, PaneId::Errors, sources, titles);
        return;
    }

    let rows: Vec<Row> = shown.iter().map(|l| row(ctx, l)).collect();
    table_with(frame, body, theme, &COLUMNS, &rows, None, false);
    draw_block(frame, area, ctx, PaneId::Errors, sources, titles);
}

fn row(ctx: &PaneContext, line: &LogLine) -> Row {
    let theme = ctx.theme;
    let mut message = one_line(&line.message);
    if ctx.zoomed {
        for (key, value) in &line.fields {
            message.push_str(&format!("  {}={}", one_line(key), one_line(value)));
        }
    }
    Row {
        cells: vec![
            Cell::new(line.at.format("%H:%M:%S").to_string(), theme.muted),
            Cell::new(one_line(&line.source), theme.source(&line.source)),
            Cell::new(line.level.label(), level_style(theme, line.level)),
            Cell::new(message, theme.text),
        ],
        style: Style::default(),
    }
}
