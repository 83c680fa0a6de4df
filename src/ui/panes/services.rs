//! Services: one row per service (systemd unit, HTTP health endpoint, compose service):
//! up or down, status code or unit state, latency, restarts, uptime over the window.
//! Down services come first so a narrow pane never hides them. Zoomed: every column and
//! the latency history of the selected service.

use super::Pane;
use super::common::{
    Cell, Column, Row, Titles, draw_block, figure_severity, figure_text, format_span, inner, lines,
    more_hint, one_line, sparkline, table,
};
use crate::model::figure::Severity;
use crate::state::ServiceState;
use crate::ui::{PaneContext, PaneId};
use ratatui::layout::{Constraint, Layout};
use ratatui::text::{Line, Span};
use ratatui::{Frame, layout::Rect};

const COLUMNS: [Column; 9] = [
    Column::left("state", 6, 6, 0).clipped(),
    Column::left("service", 6, 28, 0).fill(),
    Column::left("kind", 4, 7, 6),
    Column::left("status", 3, 12, 3),
    Column::right("ms", 4, 8, 1),
    Column::right("rst", 3, 5, 5),
    Column::right("up", 4, 6, 2),
    Column::right("since", 5, 6, 4),
    Column::left("detail", 6, 60, 7),
];

/// The services in the order the pane shows them: down first, then by name.
pub fn sorted<'a>(ctx: &PaneContext<'a>) -> Vec<(&'a String, &'a ServiceState)> {
    let mut services: Vec<_> = ctx.state.services.iter().collect();
    services.sort_by(|a, b| a.1.status.up.cmp(&b.1.status.up).then(a.0.cmp(b.0)));
    services
}

pub(crate) const PANE: Pane = Pane {
    height,
    ..Pane::new(PaneId::Services, render)
};

/// A row per service (each configured one before its first check), under the header.
fn height(state: &crate::state::AppState) -> Option<u16> {
    let rows = state
        .services
        .len()
        .max(state.sources_of(PaneId::Services).len());
    Some((3 + rows).min(usize::from(u16::MAX)) as u16)
}

pub fn render(frame: &mut Frame, area: Rect, ctx: &PaneContext) {
    let sources = ctx.state.sources_of(PaneId::Services);
    let body = inner(area);
    let services = sorted(ctx);
    let mut titles = Titles::default();
    if services.is_empty() {
        frame.render_widget(ctx.placeholder(sources, "service"), body);
        draw_block(frame, area, ctx, PaneId::Services, sources, titles);
        return;
    }
    let theme = ctx.theme;
    let down = services.iter().filter(|(_, s)| !s.status.up).count();
    titles.top.push(if down > 0 {
        Span::styled(format!("✖ {down} down"), theme.crit)
    } else {
        Span::styled(format!("✓ {} up", services.len()), theme.ok)
    });

    let rows: Vec<Row> = services
        .iter()
        .map(|(name, service)| row(ctx, name, service))
        .collect();
    let mut columns: Vec<Column> = if ctx.zoomed {
        COLUMNS.to_vec()
    } else {
        COLUMNS[..8].to_vec()
    };
    // Names matter more than every other column but the state: keep up to 12 cells of them.
    let longest = services
        .iter()
        .map(|(n, _)| super::common::width(&one_line(n)))
        .max()
        .unwrap_or(0);
    columns[1].min = longest.clamp(6, 12) as u16;
    // Selection is for browsing the zoomed list; the overview lists down services first.
    let selected = (ctx.focused && ctx.zoomed)
        .then_some(ctx.ui.selected.min(services.len().saturating_sub(1)));

    let (table_area, history_area) = if ctx.zoomed && body.height >= 8 {
        let [t, h] = Layout::vertical([Constraint::Min(3), Constraint::Length(4)]).areas(body);
        (t, Some(h))
    } else {
        (body, None)
    };
    let view = table(frame, table_area, theme, &columns, &rows, selected);
    titles.bottom = more_hint(theme, &view);
    if let Some(history_area) = history_area {
        let index = selected.unwrap_or(0);
        if let Some((name, _)) = services.get(index) {
            history(frame, history_area, ctx, name);
        }
    }
    draw_block(frame, area, ctx, PaneId::Services, sources, titles);
}

fn row(ctx: &PaneContext, name: &str, service: &ServiceState) -> Row {
    let theme = ctx.theme;
    let status = &service.status;
    let up_figure = ctx.state.figure(&format!("{name}.up"));
    let latency_figure = ctx.state.figure(&format!("{name}.health_ms"));
    let state = if status.up {
        Cell::new(format!("{} UP", Severity::Ok.symbol()), theme.ok)
    } else {
        Cell::new(format!("{} DOWN", Severity::Crit.symbol()), theme.crit)
    };
    let latency = match (status.latency_ms, latency_figure) {
        (Some(ms), figure) => {
            let severity = figure.map_or(Severity::Ok, |f| f.figure.severity);
            let mark = if severity == Severity::Ok {
                String::new()
            } else {
                severity.symbol().to_string()
            };
            Cell::new(format!("{ms:.0}{mark}"), theme.severity(severity))
        }
        (None, Some(figure)) if figure.figure.error.is_some() => Cell::new("? err", theme.unknown),
        (None, _) => Cell::new("—", theme.muted),
    };
    let uptime = service.uptime_pct();
    let uptime_style = if uptime >= 99.9 {
        theme.ok
    } else if uptime >= 99.0 {
        theme.warn
    } else {
        theme.crit
    };
    let status_style = match figure_severity(up_figure) {
        Severity::Ok | Severity::Unknown if status.up => theme.text,
        _ => theme.severity(if status.up {
            Severity::Warn
        } else {
            Severity::Crit
        }),
    };
    Row {
        cells: vec![
            state,
            Cell::new(one_line(name), theme.text),
            Cell::new(one_line(&status.kind), theme.muted),
            Cell::new(
                if status.status.is_empty() {
                    "—".to_string()
                } else {
                    one_line(&status.status)
                },
                status_style,
            ),
            latency,
            Cell::new(
                status.restarts.map_or("—".to_string(), |r| r.to_string()),
                if status.restarts.unwrap_or(0) > 0 {
                    theme.warn
                } else {
                    theme.text
                },
            ),
            Cell::new(format_uptime(uptime), uptime_style),
            Cell::new(format_span(ctx.now - service.since), theme.muted),
            Cell::new(one_line(&status.detail), theme.muted),
        ],
        style: ratatui::style::Style::default(),
    }
}

/// The selected service's health latency over time, with its figures' state.
fn history(frame: &mut Frame, area: Rect, ctx: &PaneContext, name: &str) {
    let theme = ctx.theme;
    let id = format!("{name}.health_ms");
    let figure = ctx.state.figure(&id);
    let mut out = vec![Line::from(vec![
        Span::styled("health latency of ", theme.muted),
        Span::styled(one_line(name), theme.title),
        Span::styled(format!(" ({id})"), theme.muted),
    ])];
    let Some(figure) = figure else {
        out.push(Line::from(Span::styled(
            "no health URL: latency is not measured",
            theme.muted,
        )));
        lines(frame, area, out);
        return;
    };
    let values = figure.history_values();
    let (now_text, now_style) = figure_text(theme, Some(figure));
    if values.is_empty() {
        out.push(Line::from(vec![
            Span::styled("now ", theme.muted),
            Span::styled(now_text, now_style),
        ]));
        lines(frame, area, out);
        return;
    }
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    out.push(Line::from(vec![
        Span::styled("now ", theme.muted),
        Span::styled(now_text, now_style),
        Span::styled(
            format!(
                "  min {low:.0} ms · avg {mean:.0} ms · max {high:.0} ms · {} samples",
                values.len()
            ),
            theme.muted,
        ),
    ]));
    let cells = area.width as usize;
    let spark = sparkline(&values, cells);
    out.push(Line::from(Span::styled(
        spark,
        theme.severity(figure.figure.severity),
    )));
    lines(frame, area, out);
}

/// "100%" or "99.2%": five cells at most; never rounds a miss up to 100%.
fn format_uptime(pct: f64) -> String {
    if pct >= 100.0 {
        "100%".into()
    } else {
        format!("{:.1}%", pct.min(99.9))
    }
}

#[cfg(test)]
mod tests {
    use crate::ui::test_support::*;
    use crate::ui::{PaneId, UiState};

    #[test]
    fn services_states() {
        insta::assert_snapshot!(states_sheet(PaneId::Services));
        insta::assert_snapshot!(zoomed_sheet(PaneId::Services, 100, 16));
    }

    #[test]
    fn down_service_is_crit_and_listed_first() {
        let theme = theme();
        let buffer = draw_pane(
            PaneId::Services,
            &deployment(Level::Crit),
            &UiState::default(),
            &theme,
            (60, 6),
            &PLAIN,
        );
        let (x, y) = find(&buffer, "✖ DOWN").expect("down marker");
        assert_eq!(Some(buffer[(x, y)].fg), theme.crit.fg);
        let (_, worker) = find(&buffer, "✓ UP").unwrap();
        assert!(y < worker, "{}", text(&buffer));
    }

    #[test]
    fn zoomed_services_show_the_selected_service_history() {
        let state = deployment(Level::Crit);
        let ui = UiState {
            selected: 0,
            ..UiState::default()
        };
        let screen = text(&draw_pane(
            PaneId::Services,
            &state,
            &ui,
            &theme(),
            (90, 14),
            &ZOOMED,
        ));
        assert!(screen.contains("health latency of tmws-api"), "{screen}");
        assert!(screen.contains("max 2400 ms"), "{screen}");
        let ui = UiState {
            selected: 1,
            ..UiState::default()
        };
        let screen = text(&draw_pane(
            PaneId::Services,
            &state,
            &ui,
            &theme(),
            (90, 14),
            &ZOOMED,
        ));
        assert!(screen.contains("health latency of tmws-worker"), "{screen}");
        assert!(screen.contains("latency is not measured"), "{screen}");
    }
}
