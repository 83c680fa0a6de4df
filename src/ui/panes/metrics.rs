//! Metrics (zoomed, pane 9): every figure of the Prometheus, Redis and PostgreSQL sources
//! and of `[[docker.S.exec]]`, one row per figure (or per series of a PromQL vector), with
//! its value, its history as a sparkline (for PromQL filled at start-up by range queries)
//! and its labels or detail.
//! Figures that are not OK come first, so what needs a look is at the top. The hosts and
//! targets a Prometheus source discovers are in the Host and Services panes, not here; a
//! database's own Services row (its `up` and latency) is there too, its figures here.

use super::Pane;
use super::common::{
    Cell, Column, Row, Titles, draw_block, figure_text, inner, more_hint, one_line, sparkline,
    table,
};
use crate::model::figure::Severity;
use crate::state::FigureState;
use crate::ui::{PaneContext, PaneId};
use ratatui::style::Style;
use ratatui::text::Span;
use ratatui::{Frame, layout::Rect};

const SPARK: u16 = 24;
const COLUMNS: [Column; 5] = [
    Column::left("", 1, 1, 0),
    Column::left("figure", 10, 48, 0).grow(1).fill(),
    Column::right("value", 5, 20, 1).grow(0),
    Column::left("history", 8, SPARK, 2),
    Column::left("labels / why", 8, 100, 3),
];

/// The figures the pane lists, not-OK first, then by id.
pub fn listed<'a>(ctx: &PaneContext<'a>) -> Vec<&'a FigureState> {
    let state = ctx.state;
    let sources = state.sources_of(PaneId::Metrics);
    let containers = state.sources_of(PaneId::Containers);
    let mut figures: Vec<&FigureState> = state
        .figures
        .values()
        .filter(|f| {
            let id = &f.figure.id;
            sources.iter().any(|s| {
                id.strip_prefix(s.as_str())
                    .and_then(|rest| rest.strip_prefix('.'))
                    // A Docker source's containers are in their pane; its execs (`S.E`) here.
                    .is_some_and(|rest| !containers.contains(s) || !rest.contains('.'))
            })
                // Discovered hosts and targets have their own panes (a source that is its
                // own Services row, a database, keeps its figures here).
                && !id.rsplit_once('.').is_some_and(|(owner, _)| {
                    !sources.iter().any(|s| s == owner)
                        && (state.hosts.contains_key(owner) || state.services.contains_key(owner))
                })
        })
        .collect();
    figures.sort_by(|a, b| {
        b.figure
            .severity
            .rank()
            .cmp(&a.figure.severity.rank())
            .then(a.figure.id.cmp(&b.figure.id))
    });
    figures
}

pub const PANE: Pane = Pane::new(PaneId::Metrics, render);

pub fn render(frame: &mut Frame, area: Rect, ctx: &PaneContext) {
    let sources = ctx.state.sources_of(PaneId::Metrics);
    let body = inner(area);
    let mut titles = Titles::default();
    let figures = listed(ctx);
    if figures.is_empty() {
        frame.render_widget(
            ctx.placeholder(sources, "prometheus, redis or postgres"),
            body,
        );
        draw_block(frame, area, ctx, PaneId::Metrics, sources, titles);
        return;
    }
    let theme = ctx.theme;
    let bad = figures
        .iter()
        .filter(|f| f.figure.severity != Severity::Ok)
        .count();
    titles.top.push(if bad > 0 {
        let worst = figures[0].figure.severity;
        Span::styled(
            format!("{} {bad} not OK", worst.symbol()),
            theme.severity(worst),
        )
    } else {
        Span::styled(format!("✓ {} figures", figures.len()), theme.ok)
    });
    let rows: Vec<Row> = figures.iter().map(|f| row(ctx, f)).collect();
    let selected = ctx
        .focused
        .then_some(ctx.ui.selected.min(rows.len().saturating_sub(1)));
    let view = table(frame, body, theme, &COLUMNS, &rows, selected);
    titles.bottom = more_hint(theme, &view);
    draw_block(frame, area, ctx, PaneId::Metrics, sources, titles);
}

fn row(ctx: &PaneContext, f: &FigureState) -> Row {
    let theme = ctx.theme;
    let severity = f.figure.severity;
    // An error gets the wide last column; a value without one can still say there why
    // it is empty or NaN, or carry the series' labels.
    let (value, value_style, labels) = match &f.figure.error {
        Some(error) => ("error".to_string(), theme.unknown, one_line(error)),
        None => {
            let (value, style) = figure_text(theme, Some(f));
            (value, style, one_line(&f.figure.detail))
        }
    };
    Row {
        cells: vec![
            Cell::new(severity.symbol(), theme.severity(severity)),
            Cell::new(one_line(&f.figure.name), theme.text),
            Cell::new(value, value_style),
            Cell::new(
                sparkline(&f.history_values(), SPARK as usize),
                theme.severity(severity),
            ),
            Cell::new(
                labels,
                if f.figure.error.is_some() {
                    theme.unknown
                } else {
                    theme.muted
                },
            ),
        ],
        style: Style::default(),
    }
}
