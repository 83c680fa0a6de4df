//! License: validation failures and volume over the last hour, keys generated (by tier),
//! revoked, expiring within 7 days, expired but still active (seed 000 steps 3, 4, 8 and
//! playbook B), and the database's migration and integrity (steps 5 and 11).
//! When the pane is short, figures that are not OK are kept and OK ones are counted.

use super::Pane;
use super::common::{Cell, Column, Row, Titles, draw_block, figure_text, inner, lines, table_with};
use crate::model::catalog::{Fig, sqlite, tmws};
use crate::model::figure::Severity;
use crate::state::FigureState;
use crate::ui::{PaneContext, PaneId};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::{Frame, layout::Rect};

/// (figure, short label, long label), in the order the pane lists them.
const FIGURES: [(Fig, &str, &str); 8] = [
    (
        tmws::LICENSE_FAILURE_PCT_1H,
        "failures 1h",
        "validation failures 1h",
    ),
    (
        tmws::LICENSE_VALIDATIONS_1H,
        "validations",
        "validations 1h",
    ),
    (tmws::LICENSE_GENERATED_1H, "generated", "keys generated 1h"),
    (tmws::LICENSE_REVOKED_1H, "revoked", "keys revoked 1h"),
    (
        tmws::LICENSE_EXPIRING_7D,
        "expiring 7d",
        "expiring within 7 days",
    ),
    (
        tmws::LICENSE_EXPIRED_ACTIVE,
        "expired active",
        "expired but not revoked",
    ),
    (tmws::DB_MIGRATION, "migration", "schema migration"),
    (sqlite::DB_INTEGRITY, "integrity", "database integrity"),
];

pub(crate) const PANE: Pane = Pane {
    height: |_| Some(FIGURES.len() as u16 + 2),
    ..Pane::new(PaneId::License, render)
};

const COLUMNS: [Column; 4] = [
    Column::left("", 1, 1, 0),
    Column::left("figure", 6, 24, 0).grow(1).fill(),
    Column::right("value", 4, 16, 1).grow(0),
    Column::left("detail", 8, 60, 2),
];

pub fn render(frame: &mut Frame, area: Rect, ctx: &PaneContext) {
    let sources = ctx.state.sources_of(PaneId::License);
    let body = inner(area);
    let titles = Titles::default();
    let figures: Vec<(usize, Option<&FigureState>)> = match sources.first() {
        Some(source) => FIGURES
            .iter()
            .enumerate()
            .map(|(i, (fig, _, _))| (i, ctx.state.figure(&fig.id(source))))
            .collect(),
        None => Vec::new(),
    };
    if figures.iter().all(|(_, f)| f.is_none()) {
        frame.render_widget(ctx.placeholder(sources, "license"), body);
        draw_block(frame, area, ctx, PaneId::License, sources, titles);
        return;
    }
    let theme = ctx.theme;
    let header = ctx.zoomed && body.height >= 3;
    let height = (body.height as usize).saturating_sub(usize::from(header));
    // Which figures get a row: all if they fit; else the not-OK ones first, then a count
    // (on a one-line pane, the worst figure alone).
    let (shown, hidden) = if figures.len() <= height {
        (figures.clone(), Vec::new())
    } else {
        let room = if height <= 1 { height } else { height - 1 };
        let mut ranked = figures.clone();
        ranked.sort_by_key(|(i, f)| {
            let rank = f.map_or(0, |f| f.figure.severity.rank());
            (std::cmp::Reverse(rank), *i)
        });
        let hidden = ranked.split_off(room.min(ranked.len()));
        ranked.sort_by_key(|(i, _)| *i);
        (ranked, hidden)
    };
    let with_detail = ctx.zoomed || body.width >= 48;
    let columns: &[Column] = if with_detail { &COLUMNS } else { &COLUMNS[..3] };
    let rows: Vec<Row> = shown
        .iter()
        .map(|(i, f)| row(ctx, *i, *f, with_detail))
        .collect();
    let list_height = (rows.len().min(height) + usize::from(header)) as u16;
    let [list, rest] =
        Layout::vertical([Constraint::Length(list_height), Constraint::Min(0)]).areas(body);
    table_with(frame, list, theme, columns, &rows, None, header);
    if !hidden.is_empty() && !rest.is_empty() {
        let worst = hidden
            .iter()
            .map(|(_, f)| f.map_or(Severity::Ok, |f| f.figure.severity))
            .fold(Severity::Ok, Severity::worst);
        let text = if worst == Severity::Ok {
            format!("+{} more {} OK", hidden.len(), Severity::Ok.symbol())
        } else {
            format!("+{} more", hidden.len())
        };
        lines(
            frame,
            rest,
            vec![Line::from(Span::styled(text, theme.muted))],
        );
    }
    draw_block(frame, area, ctx, PaneId::License, sources, titles);
}

/// One figure's row. A failed reading says "error" as its value and why in the detail
/// column, or the why itself as its value when the detail column is not shown.
fn row(ctx: &PaneContext, index: usize, figure: Option<&FigureState>, with_detail: bool) -> Row {
    let theme = ctx.theme;
    let (_, short, long) = FIGURES[index];
    let label = if ctx.zoomed { long } else { short };
    let (value, style) = figure_text(theme, figure);
    let symbol = match figure {
        None => Cell::new("·", theme.muted),
        Some(f) => {
            let sev = f.figure.severity;
            Cell::new(sev.symbol(), theme.severity(sev))
        }
    };
    let failed = figure.is_some_and(|f| f.figure.error.is_some());
    let (value, detail) = match figure {
        Some(_) if failed && with_detail => {
            (Cell::new("error", style), Cell::new(value, theme.unknown))
        }
        Some(f) => (
            Cell::new(value, style),
            Cell::new(super::common::one_line(&f.figure.detail), theme.muted),
        ),
        None => (Cell::new(value, style), Cell::new("", theme.muted)),
    };
    Row {
        cells: vec![symbol, Cell::new(label, theme.text), value, detail],
        style: Style::default(),
    }
}

#[cfg(test)]
mod tests {
    use crate::ui::test_support::*;
    use crate::ui::{PaneId, UiState};

    #[test]
    fn license_states() {
        insta::assert_snapshot!(states_sheet(PaneId::License));
        insta::assert_snapshot!(zoomed_sheet(PaneId::License, 80, 14));
    }

    #[test]
    fn failed_figures_show_their_error_and_missing_ones_a_dash() {
        let mut state = stale();
        state.figures.remove("tmws.license.revoked_1h");
        let theme = theme();
        let buffer = draw_pane(
            PaneId::License,
            &state,
            &UiState::default(),
            &theme,
            (70, 12),
            &PLAIN,
        );
        let screen = text(&buffer);
        let (x, y) = find(&buffer, "no such table: license_usage_history").expect(&screen);
        assert_eq!(Some(buffer[(x, y)].fg), theme.unknown.fg);
        let revoked = screen.lines().find(|l| l.contains("revoked")).unwrap();
        assert!(revoked.contains('—'), "{screen}");
        assert!(screen.contains("? integrity"), "{screen}");
    }
}
