//! Containers: what `docker compose ps` and `docker stats` said in seed 003, live:
//! state and health, CPU (100% = one core), memory used/limit, network rates, restarts and
//! uptime, grouped by compose project and service.

use super::common::{
    Cell, Column, Row, Titles, compact_bytes, draw_block, format_span, inner, lines, more_hint,
    one_line, table, table_problems_first,
};
use crate::state::figure::Severity;
use crate::state::update::{ContainerRow, SourceHealth};
use crate::ui::{PaneContext, PaneId};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::{Frame, layout::Rect};

// The state column says "unhealthy" or "starting" for a running container whose health
// check is not passing, so the health column can go first when the pane is narrow.
const COLUMNS: [Column; 11] = [
    Column::left("project", 8, 16, 6),
    Column::left("container", 10, 32, 0).fill(),
    Column::left("state", 9, 11, 0).clipped(),
    Column::left("health", 7, 9, 7),
    Column::right("cpu", 6, 7, 1),
    Column::right("mem", 9, 11, 2),
    Column::right("net ↓/↑ /s", 11, 14, 5),
    Column::right("rst", 3, 4, 3),
    Column::right("up", 5, 6, 4),
    Column::left("id", 12, 12, 9),
    Column::right("block r/w", 9, 11, 8),
];

/// How bad a container's state is.
pub fn state_severity(state: &str) -> Severity {
    match state.to_ascii_lowercase().as_str() {
        "running" => Severity::Ok,
        "restarting" | "paused" | "removing" | "created" => Severity::Warn,
        "exited" | "dead" => Severity::Crit,
        _ => Severity::Unknown,
    }
}

/// How bad a container's health check is; `None` when it has none.
pub fn health_severity(health: &str) -> Option<Severity> {
    match health.to_ascii_lowercase().as_str() {
        "" | "none" => None,
        "healthy" => Some(Severity::Ok),
        "starting" => Some(Severity::Warn),
        "unhealthy" => Some(Severity::Crit),
        _ => Some(Severity::Unknown),
    }
}

pub fn render(frame: &mut Frame, area: Rect, ctx: &PaneContext) {
    let sources = ctx.state.sources_of("containers");
    let body = inner(area);
    let mut titles = Titles::default();
    let theme = ctx.theme;
    // Every source's rows, sorted by project, service and name.
    let mut all: Vec<(&str, &ContainerRow)> = sources
        .iter()
        .filter_map(|s| ctx.state.containers.get(s).map(|rows| (s, rows)))
        .flat_map(|(s, rows)| rows.iter().map(move |r| (s.as_str(), r)))
        .collect();
    all.sort_by(|a, b| {
        (a.0, &a.1.project, &a.1.service, &a.1.name).cmp(&(
            b.0,
            &b.1.project,
            &b.1.service,
            &b.1.name,
        ))
    });
    if all.is_empty() {
        let waiting = sources.iter().any(|s| {
            ctx.state
                .sources
                .get(s)
                .is_none_or(|s| s.is_error() || s.health == SourceHealth::Connecting)
        });
        if sources.is_empty() || waiting {
            frame.render_widget(ctx.placeholder(sources, "docker"), body);
        } else {
            lines(
                frame,
                body,
                vec![Line::from(Span::styled("no containers", theme.muted))],
            );
        }
        draw_block(frame, area, ctx, PaneId::Containers, sources, titles);
        return;
    }

    let several_sources = sources.len() > 1;
    let mut last_group: Option<(String, String)> = None;
    let rows: Vec<Row> = all
        .iter()
        .map(|(source, c)| {
            let project = if several_sources {
                format!("{source}:{}", c.project)
            } else {
                c.project.clone()
            };
            let group = (source.to_string(), project.clone());
            let first = last_group.as_ref() != Some(&group);
            last_group = Some(group);
            row(ctx, source, c, if first { &project } else { "" })
        })
        .collect();

    let bad: Vec<Severity> = all
        .iter()
        .map(|(_, c)| worst_of(c))
        .filter(|s| *s != Severity::Ok)
        .collect();
    let worst = bad.iter().copied().fold(Severity::Ok, Severity::worst);
    titles.top.push(if !bad.is_empty() {
        Span::styled(
            format!(
                "{} {} of {} not healthy",
                worst.symbol(),
                bad.len(),
                all.len()
            ),
            theme.severity(worst),
        )
    } else {
        Span::styled(
            format!("{} {} running", Severity::Ok.symbol(), all.len()),
            theme.ok,
        )
    });

    let columns: &[Column] = if ctx.zoomed { &COLUMNS } else { &COLUMNS[..9] };
    let table_area = if ctx.zoomed && body.height >= 4 {
        let [note, rest] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(body);
        lines(
            frame,
            note,
            vec![Line::from(Span::styled(
                "cpu: 100% = 1 core · mem: used/limit · net: receive/transmit per second",
                theme.muted,
            ))],
        );
        rest
    } else {
        body
    };
    // The overview never hides a container in trouble; zoomed, the list scrolls.
    let view = if ctx.zoomed {
        let selected = ctx
            .focused
            .then_some(ctx.ui.selected.min(rows.len().saturating_sub(1)));
        table(frame, table_area, theme, columns, &rows, selected)
    } else {
        let problems: Vec<bool> = all
            .iter()
            .map(|(_, c)| worst_of(c) != Severity::Ok)
            .collect();
        table_problems_first(frame, table_area, theme, columns, &rows, &problems)
    };
    titles.bottom = more_hint(theme, &view);
    draw_block(frame, area, ctx, PaneId::Containers, sources, titles);
}

fn worst_of(c: &ContainerRow) -> Severity {
    let state = state_severity(&c.state);
    health_severity(&c.health).map_or(state, |h| state.worst(h))
}

/// The figure a container source gives for a compose service or container.
fn figure_severity(
    ctx: &PaneContext,
    source: &str,
    c: &ContainerRow,
    figure: &str,
) -> Option<Severity> {
    [c.service.as_str(), c.name.as_str()]
        .iter()
        .filter(|n| !n.is_empty())
        .find_map(|n| ctx.state.figure(&format!("{source}.{n}.{figure}")))
        .map(|f| f.figure.severity)
}

fn row(ctx: &PaneContext, source: &str, c: &ContainerRow, project: &str) -> Row {
    let theme = ctx.theme;
    let worst = worst_of(c);
    // The compose project is in its own column; strip it from "project-service-1".
    let name = if ctx.zoomed || c.project.is_empty() {
        c.name.clone()
    } else {
        c.name
            .strip_prefix(&format!("{}-", c.project))
            .or_else(|| c.name.strip_prefix(&format!("{}_", c.project)))
            .unwrap_or(&c.name)
            .to_string()
    };
    let word = match health_severity(&c.health) {
        Some(Severity::Warn | Severity::Crit) if state_severity(&c.state) == Severity::Ok => {
            &c.health
        }
        _ => &c.state,
    };
    let state = Cell::new(
        format!("{} {}", worst.symbol(), one_line(word)),
        theme.severity(worst),
    );
    let health = match health_severity(&c.health) {
        None => Cell::new("—", theme.muted),
        Some(sev) => Cell::new(one_line(&c.health), theme.severity(sev)),
    };
    let marked = |text: String, sev: Option<Severity>| match sev {
        Some(s) if s != Severity::Ok => {
            Cell::new(format!("{text}{}", s.symbol()), theme.severity(s))
        }
        _ => Cell::new(text, theme.text),
    };
    let cpu = match c.cpu_pct {
        Some(pct) => marked(
            format!("{pct:.1}%"),
            figure_severity(ctx, source, c, "cpu_pct"),
        ),
        None => Cell::new("—", theme.muted),
    };
    let mem = match (c.mem_bytes, c.mem_limit_bytes) {
        (Some(used), Some(limit)) if limit > 0.0 => marked(
            format!("{}/{}", compact_bytes(used), compact_bytes(limit)),
            figure_severity(ctx, source, c, "mem_bytes"),
        ),
        (Some(used), _) => marked(
            compact_bytes(used),
            figure_severity(ctx, source, c, "mem_bytes"),
        ),
        (None, _) => Cell::new("—", theme.muted),
    };
    let net = match (c.net_rx_bps, c.net_tx_bps) {
        (None, None) => Cell::new("—", theme.muted),
        (rx, tx) => Cell::new(
            format!(
                "↓{} ↑{}",
                rx.map_or("?".into(), compact_bytes),
                tx.map_or("?".into(), compact_bytes)
            ),
            theme.text,
        ),
    };
    let restarts_sev =
        figure_severity(ctx, source, c, "restarts").or((c.restarts > 0).then_some(Severity::Warn));
    let restarts = marked(c.restarts.to_string(), restarts_sev);
    let uptime = match c.started_at {
        Some(at) if state_severity(&c.state) == Severity::Ok => {
            Cell::new(format_span(ctx.now - at), theme.muted)
        }
        _ => Cell::new("—", theme.muted),
    };
    let block = match (c.block_read_bytes, c.block_write_bytes) {
        (None, None) => Cell::new("—", theme.muted),
        (r, w) => Cell::new(
            format!(
                "{}/{}",
                r.map_or("?".into(), compact_bytes),
                w.map_or("?".into(), compact_bytes)
            ),
            theme.text,
        ),
    };
    Row {
        cells: vec![
            Cell::new(one_line(project), theme.accent),
            Cell::new(one_line(&name), theme.text),
            state,
            health,
            cpu,
            mem,
            net,
            restarts,
            uptime,
            Cell::new(
                one_line(&c.id.chars().take(12).collect::<String>()),
                theme.muted,
            ),
            block,
        ],
        style: Style::default(),
    }
}
