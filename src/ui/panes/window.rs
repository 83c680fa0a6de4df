//! Window (zoomed, pane 8): the deployment and its watch window, a timeline across it
//! (each checkpoint interval as wide as it is long, by the worst alert state in it), the
//! runbook's checkpoints (seed 003: hourly to T+4, every two hours to T+12, every four to
//! T+24) marked done (with or without their snapshot in the record), next or upcoming, the
//! record this watchpost writes or views, the health of every source, and the notes.

use super::Pane;
use super::common::{
    Cell, Column, Row, Titles, bar, draw_block, format_span, inner, lines, one_line, table,
};
use super::header::{format_length, window_offset};
use crate::model::figure::Severity;
use crate::model::update::SourceHealth;
use crate::state::RecordStatus;
use crate::ui::{PaneContext, PaneId};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::{Frame, layout::Rect};

const SOURCE_COLUMNS: [Column; 4] = [
    Column::left("", 1, 1, 0),
    Column::left("source", 4, 24, 0),
    Column::left("panes", 4, 24, 2),
    Column::left("health", 6, u16::MAX, 1).grow(9),
];

pub(crate) const PANE: Pane = Pane::new(PaneId::Window, render);

pub fn render(frame: &mut Frame, area: Rect, ctx: &PaneContext) {
    let body = inner(area);
    let theme = ctx.theme;
    let window = &ctx.state.window;
    let now = ctx.now;
    let elapsed = window.elapsed(now);
    let titles = Titles::default();

    // The deployment and where we are in its window.
    let mut head = vec![Line::from(vec![
        Span::styled(one_line(&window.deployment), theme.header),
        Span::styled(
            if window.version.is_empty() {
                String::new()
            } else {
                format!(" {}", one_line(&window.version))
            },
            theme.muted,
        ),
    ])];
    head.push(Line::from(vec![
        Span::styled("now ", theme.muted),
        Span::styled(window_offset(window, elapsed), theme.accent),
        Span::styled(" of ", theme.muted),
        Span::styled(format_length(window.length), theme.text),
        Span::styled(" · started ", theme.muted),
        Span::styled(
            window.start.format("%Y-%m-%d %H:%M UTC").to_string(),
            theme.text,
        ),
    ]));
    let length_secs = window.length.num_seconds().max(1) as f64;
    let pct = (elapsed.num_seconds() as f64 / length_secs * 100.0).clamp(0.0, 100.0);
    let cells = (body.width as usize).saturating_sub(6).min(60);
    let mut progress = bar(theme, pct, cells, (101.0, 101.0), theme.accent);
    progress.push(Span::styled(format!(" {pct:.0}%"), theme.muted));
    head.push(Line::from(progress));
    if cells > 0 && !ctx.state.timeline.is_empty() {
        let mut strip = timeline(ctx, cells);
        strip.push(Span::styled(" worst by interval", theme.muted));
        head.push(Line::from(strip));
    }
    head.push(record_line(ctx));
    let head_rows = (head.len() as u16).min(body.height);
    let [top, _, rest] = Layout::vertical([
        Constraint::Length(head_rows),
        Constraint::Length(u16::from(body.height > head_rows + 2)),
        Constraint::Min(0),
    ])
    .areas(body);
    lines(frame, top, head);

    let (checks_area, sources_area) = if rest.width >= 70 {
        let [a, _, b] = Layout::horizontal([
            Constraint::Length(if window.length < chrono::Duration::hours(1) {
                35
            } else {
                32
            }),
            Constraint::Length(2),
            Constraint::Min(0),
        ])
        .areas(rest);
        (a, b)
    } else {
        let n = window.checkpoints.len() as u16 + 1;
        let [a, _, b] = Layout::vertical([
            Constraint::Length(n.min(rest.height / 2)),
            Constraint::Length(u16::from(rest.height > 6)),
            Constraint::Min(0),
        ])
        .areas(rest);
        (a, b)
    };
    checkpoints(frame, checks_area, ctx);
    let notes_rows = if ctx.state.notes.is_empty() {
        0
    } else {
        (ctx.state.notes.len() as u16 + 1).min(sources_area.height / 2)
    };
    let [sources_area, notes_area] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(notes_rows)]).areas(sources_area);
    sources(frame, sources_area, ctx);
    notes(frame, notes_area, ctx);
    draw_block(frame, area, ctx, PaneId::Window, &[], titles);
}

/// The window in `cells` columns; each column takes the state of the interval it falls in:
/// the severity symbol (readable without colour), `·` to come, `-` not watched.
fn timeline(ctx: &PaneContext, cells: usize) -> Vec<Span<'static>> {
    let theme = ctx.theme;
    let window = &ctx.state.window;
    let intervals = window.intervals();
    let length = window.length.num_milliseconds().max(1) as f64;
    let now_col = ((window.elapsed(ctx.now).num_milliseconds() as f64 / length) * cells as f64)
        .floor() as usize;
    let mut spans: Vec<Span<'static>> = Vec::new();
    for col in 0..cells {
        let at = window.length.num_milliseconds() as f64 * (col as f64 + 0.5) / cells as f64;
        let index = intervals
            .iter()
            .position(|(from, to)| {
                at >= from.num_milliseconds() as f64 && at < to.num_milliseconds() as f64
            })
            .unwrap_or(intervals.len().saturating_sub(1));
        let future = intervals
            .get(index)
            .is_some_and(|(from, _)| window.start + *from > ctx.now);
        let (text, style) = match ctx.state.timeline.get(index).copied().flatten() {
            Some(severity) => (severity.symbol(), theme.severity(severity)),
            None if future => ("·", theme.muted),
            None => ("-", theme.muted),
        };
        let style = if col == now_col {
            style.patch(theme.selection)
        } else {
            style
        };
        spans.push(Span::styled(text, style));
    }
    spans
}

/// "record ~/.local/share/watchpost/tmws.sqlite", "viewer of … (held by pid 4242)", …
fn record_line(ctx: &PaneContext) -> Line<'static> {
    let theme = ctx.theme;
    let path = |p: &std::path::Path| one_line(&p.display().to_string());
    match &ctx.state.record {
        RecordStatus::Off => Line::from(Span::styled("not recorded", theme.muted)),
        RecordStatus::Writing {
            path: p,
            full,
            error,
        } => {
            let mut spans = vec![
                Span::styled("record ", theme.muted),
                Span::styled(path(p), theme.text),
            ];
            if *full {
                spans.push(Span::styled(
                    " · full: new figures are not kept",
                    theme.crit,
                ));
            }
            if let Some(e) = error {
                spans.push(Span::styled(format!(" · {}", one_line(e)), theme.warn));
            }
            Line::from(spans)
        }
        RecordStatus::Viewer { path: p, holder } => Line::from(vec![
            Span::styled("viewer of ", theme.accent),
            Span::styled(path(p), theme.text),
            Span::styled(
                match holder {
                    Some(pid) => format!(" (held by pid {pid})"),
                    None => " (held by another watchpost)".into(),
                },
                theme.muted,
            ),
        ]),
        RecordStatus::Failed(e) => Line::from(vec![
            Span::styled("no record: ", theme.warn),
            Span::styled(one_line(e), theme.text),
        ]),
    }
}

fn notes(frame: &mut Frame, area: Rect, ctx: &PaneContext) {
    if area.is_empty() {
        return;
    }
    let theme = ctx.theme;
    let window = &ctx.state.window;
    let rows = (area.height as usize).saturating_sub(1);
    let skip = ctx.state.notes.len().saturating_sub(rows);
    let mut out = vec![Line::from(Span::styled("notes", theme.title))];
    for note in ctx.state.notes.iter().skip(skip) {
        out.push(Line::from(vec![
            Span::styled(
                format!("{} ", window_offset(window, note.at - window.start)),
                theme.muted,
            ),
            Span::styled(one_line(&note.text), theme.text),
        ]));
    }
    lines(frame, area, out);
}

fn checkpoints(frame: &mut Frame, area: Rect, ctx: &PaneContext) {
    if area.is_empty() {
        return;
    }
    let theme = ctx.theme;
    let window = &ctx.state.window;
    let elapsed = window.elapsed(ctx.now);
    let next = window.next_checkpoint(ctx.now);
    let mut out: Vec<Line<'static>> = window
        .checkpoints
        .iter()
        .map(|c| {
            let clock = (window.start + *c).format("%H:%M").to_string();
            let recording = matches!(
                ctx.state.record,
                RecordStatus::Writing { .. } | RecordStatus::Viewer { .. }
            );
            let (mark, word, style) = if *c <= elapsed {
                if !recording || ctx.state.snapshots.contains(&c.num_seconds()) {
                    (Severity::Ok.symbol(), "done".to_string(), theme.ok)
                } else {
                    ("-", "no snapshot".to_string(), theme.muted)
                }
            } else if Some(*c) == next {
                (
                    "▶",
                    format!("next, in {}", format_span(*c - elapsed)),
                    theme.accent,
                )
            } else {
                ("·", String::new(), theme.muted)
            };
            Line::from(vec![
                Span::styled(format!("{mark} "), style),
                Span::styled(
                    window_offset(window, *c),
                    if *c <= elapsed { theme.text } else { style },
                ),
                Span::styled(format!(" {clock} UTC "), theme.muted),
                Span::styled(word, style),
            ])
        })
        .collect();
    let title = Line::from(Span::styled("checkpoints", theme.title));
    let rows = (area.height as usize).saturating_sub(1);
    // Keep the next checkpoint in view, with two done ones above it.
    let next_index = window
        .checkpoints
        .iter()
        .position(|c| Some(*c) == next)
        .unwrap_or(out.len());
    let start = next_index
        .saturating_sub(2)
        .min(out.len().saturating_sub(rows));
    out = out.into_iter().skip(start).take(rows).collect();
    out.insert(0, title);
    lines(frame, area, out);
}

fn sources(frame: &mut Frame, area: Rect, ctx: &PaneContext) {
    if area.is_empty() {
        return;
    }
    let theme = ctx.theme;
    let [title, table_area] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    lines(
        frame,
        title,
        vec![Line::from(Span::styled("sources", theme.title))],
    );
    if ctx.state.sources.is_empty() {
        lines(
            frame,
            table_area,
            vec![Line::from(Span::styled(
                "no sources configured",
                theme.muted,
            ))],
        );
        return;
    }
    let rows: Vec<Row> = ctx
        .state
        .sources
        .iter()
        .map(|(name, source)| {
            let severity = match source.health {
                SourceHealth::Ok => Severity::Ok,
                SourceHealth::Busy { .. } => Severity::Warn,
                SourceHealth::Error { .. } => Severity::Crit,
                SourceHealth::Connecting => Severity::Unknown,
            };
            let mut panes: Vec<&str> = ctx
                .state
                .pane_sources
                .iter()
                .filter(|(_, list)| list.iter().any(|s| s == name))
                .map(|(pane, _)| pane.key())
                .collect();
            panes.sort_unstable();
            let health_style = if severity == Severity::Ok {
                theme.text
            } else {
                theme.severity(severity)
            };
            Row {
                cells: vec![
                    Cell::new(severity.symbol(), theme.severity(severity)),
                    Cell::new(one_line(name), theme.text),
                    Cell::new(panes.join(","), theme.muted),
                    Cell::new(one_line(&source.describe(ctx.now)), health_style),
                ],
                style: Style::default(),
            }
        })
        .collect();
    table(frame, table_area, theme, &SOURCE_COLUMNS, &rows, None);
}

#[cfg(test)]
mod tests {
    use crate::ui::PaneId;
    use crate::ui::test_support::*;

    #[test]
    fn window_states() {
        insta::assert_snapshot!(zoomed_sheet(PaneId::Window, 100, 20));
        insta::assert_snapshot!(zoomed_sheet(PaneId::Window, 50, 24));
    }
}
