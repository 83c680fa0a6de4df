//! Containers: what `docker compose ps` and `docker stats` said in seed 003, live:
//! state and health, CPU (100% = one core), memory used/limit, network rates, restarts,
//! uptime and block I/O, grouped by compose project and service, sortable by any column
//! (`s` picks the next column, `S` reverses). Zoomed, the selected container also gets
//! its CPU and memory history as charts and its last log lines.

use super::common::{
    Cell, Column, Row, Titles, compact_bytes, draw_block, format_span, history_chart, inner, lines,
    message, more_hint, one_line, table, table_problems_first,
};
use super::{Cx, Outcome, Pane};
use crate::model::figure::Severity;
use crate::model::update::{ContainerRow, SourceHealth};
use crate::state::AppState;
use crate::state::containers::ContainerSample;
use crate::ui::keys::{Action, Binding, Help, When, ch};
use crate::ui::{PaneContext, PaneId, UiState};
use chrono::{DateTime, Utc};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::{Frame, layout::Rect};
use std::cmp::Ordering;
use std::collections::HashMap;

// The state column says "unhealthy" or "starting" for a running container whose health
// check is not passing, so the health column can go first when the pane is narrow.
// In the order of [`SortBy::ALL`].
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
pub(crate) fn state_severity(state: &str) -> Severity {
    match state.to_ascii_lowercase().as_str() {
        "running" => Severity::Ok,
        "restarting" | "paused" | "removing" | "created" => Severity::Warn,
        "exited" | "dead" => Severity::Crit,
        _ => Severity::Unknown,
    }
}

/// How bad a container's health check is; `None` when it has none.
pub(crate) fn health_severity(health: &str) -> Option<Severity> {
    match health.to_ascii_lowercase().as_str() {
        "" | "none" => None,
        "healthy" => Some(Severity::Ok),
        "starting" => Some(Severity::Warn),
        "unhealthy" => Some(Severity::Crit),
        _ => Some(Severity::Unknown),
    }
}

/// What the pane sorts by: one of its columns, in the columns' order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum SortBy {
    /// Compose project, service, container name: the pane's grouping itself.
    #[default]
    Project,
    Container,
    State,
    Health,
    Cpu,
    Memory,
    Network,
    Restarts,
    Uptime,
    Id,
    BlockIo,
}

impl SortBy {
    pub const ALL: [SortBy; 11] = [
        SortBy::Project,
        SortBy::Container,
        SortBy::State,
        SortBy::Health,
        SortBy::Cpu,
        SortBy::Memory,
        SortBy::Network,
        SortBy::Restarts,
        SortBy::Uptime,
        SortBy::Id,
        SortBy::BlockIo,
    ];

    /// The next column (`s`), back to the first after the last.
    pub fn next(self) -> SortBy {
        let at = SortBy::ALL.iter().position(|s| *s == self).unwrap_or(0);
        SortBy::ALL[(at + 1) % SortBy::ALL.len()]
    }

    pub fn label(self) -> &'static str {
        match self {
            SortBy::Project => "project",
            SortBy::Container => "container",
            SortBy::State => "state",
            SortBy::Health => "health",
            SortBy::Cpu => "cpu",
            SortBy::Memory => "mem",
            SortBy::Network => "net",
            SortBy::Restarts => "restarts",
            SortBy::Uptime => "uptime",
            SortBy::Id => "id",
            SortBy::BlockIo => "block i/o",
        }
    }

    fn column(self) -> usize {
        SortBy::ALL.iter().position(|s| *s == self).unwrap_or(0)
    }

    /// Whether the row has no figure in this column: such rows go last, whichever way
    /// the column is read.
    fn is_missing(self, row: &ContainerRow) -> bool {
        match self {
            SortBy::Cpu => row.cpu_pct.is_none(),
            SortBy::Memory => row.mem_bytes.is_none(),
            SortBy::Network => row.net_rx_bps.is_none() && row.net_tx_bps.is_none(),
            SortBy::Uptime => uptime_key(row).is_none(),
            SortBy::BlockIo => row.block_read_bytes.is_none() && row.block_write_bytes.is_none(),
            _ => false,
        }
    }

    /// How the column reads first before `S`: names A to Z, the worst state first, the
    /// biggest figures first, the shortest uptime (the latest restart) first.
    fn compare(self, a: &ContainerRow, b: &ContainerRow) -> Ordering {
        let figure = |f: fn(&ContainerRow) -> Option<f64>| descending(f(a), f(b));
        let sum = |x: Option<f64>, y: Option<f64>| match (x, y) {
            (None, None) => None,
            (x, y) => Some(x.unwrap_or(0.0) + y.unwrap_or(0.0)),
        };
        match self {
            SortBy::Project => Ordering::Equal,
            SortBy::Container => a.name.cmp(&b.name),
            SortBy::State => {
                (worst_of(b).rank().cmp(&worst_of(a).rank())).then(a.state.cmp(&b.state))
            }
            SortBy::Health => {
                // No health check at all sorts after every check.
                let health = |r: &ContainerRow| health_severity(&r.health).map(Severity::rank);
                health(b).cmp(&health(a)).then(a.health.cmp(&b.health))
            }
            SortBy::Cpu => figure(|r| r.cpu_pct),
            SortBy::Memory => figure(|r| r.mem_bytes),
            SortBy::Network => descending(
                sum(a.net_rx_bps, a.net_tx_bps),
                sum(b.net_rx_bps, b.net_tx_bps),
            ),
            SortBy::Restarts => b.restarts.cmp(&a.restarts),
            // Latest start first; a container that does not run has no uptime.
            SortBy::Uptime => descending(uptime_key(a), uptime_key(b)),
            SortBy::Id => a.id.cmp(&b.id),
            SortBy::BlockIo => descending(
                sum(a.block_read_bytes, a.block_write_bytes),
                sum(b.block_read_bytes, b.block_write_bytes),
            ),
        }
    }
}

/// Bigger first (missing figures are sorted apart, by [`SortBy::is_missing`]).
fn descending(a: Option<f64>, b: Option<f64>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => b.total_cmp(&a),
        _ => Ordering::Equal,
    }
}

fn uptime_key(row: &ContainerRow) -> Option<f64> {
    row.started_at
        .filter(|_| state_severity(&row.state) == Severity::Ok)
        .map(|at| at.timestamp_millis() as f64)
}

/// The pane's own corner of the UI state: its sort and the container selected in it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContainersView {
    pub(crate) sort: SortBy,
    /// `S`: the sort column read the other way.
    pub(crate) reversed: bool,
    /// The selected container as (source, id): the selection follows it when rows move.
    pub(crate) selected: Option<(String, String)>,
}

/// The pane's part of the key table.
pub(crate) const KEYS: &[Binding] = &[
    Binding::new(
        &[ch('s')],
        Action::SortNext,
        When::Screen,
        Help::Row(&["Containers: sort by the next column / reverse"]),
    ),
    Binding::new(&[ch('S')], Action::SortReverse, When::Screen, Help::Same),
];

/// The sort keys as the bottom border names them: `s/S`.
fn sort_keys(ctx: &PaneContext) -> String {
    let keymap = &ctx.ui.keymap;
    ["sort_next", "sort_reverse"]
        .iter()
        .filter_map(|name| keymap.key_of(name, When::Screen))
        .collect::<Vec<_>>()
        .join("/")
}

pub(crate) const PANE: Pane = Pane {
    keys: KEYS,
    handle,
    settle,
    height,
    ..Pane::new(PaneId::Containers, render)
};

/// A row per container (at least one, for "no containers"), under the header.
fn height(state: &AppState) -> Option<u16> {
    let rows: usize = state.containers.values().map(Vec::len).sum();
    Some((3 + rows.max(1)).min(usize::from(u16::MAX)) as u16)
}

fn handle(action: &Action, cx: &mut Cx) -> Outcome {
    let ui = &mut *cx.ui;
    match action {
        Action::SortNext | Action::SortReverse if ui.focus != PaneId::Containers => {
            ui.flash = Some(format!(
                "s / S sort the Containers pane: focus {}",
                super::title_with_number(ui, PaneId::Containers)
            ));
        }
        Action::SortNext => {
            let view = &mut ui.views.containers;
            view.sort = view.sort.next();
            view.reversed = false;
        }
        Action::SortReverse => {
            let view = &mut ui.views.containers;
            view.reversed = !view.reversed;
        }
        _ => return Outcome::Pass,
    }
    Outcome::Done
}

/// Keeps the selection on the same container while its rows move (a new sort, new
/// figures), or picks the container under the selection after a move.
fn settle(cx: &mut Cx, moved: bool) {
    if cx.ui.focus != PaneId::Containers {
        return;
    }
    let listed = listed(cx.shown, cx.ui);
    let ui = &mut *cx.ui;
    let pinned = ui.views.containers.selected.as_ref().and_then(|(s, id)| {
        listed
            .iter()
            .position(|(source, row)| source == s && &row.id == id)
    });
    match pinned {
        Some(index) if !moved => ui.selected = index,
        _ => ui.selected = selected_index(ui, listed.len()),
    }
    ui.views.containers.selected = listed
        .get(ui.selected)
        .map(|(source, row)| (source.to_string(), row.id.clone()));
}

/// The container whose logs the collectors should read: the selected one, while the pane
/// is zoomed.
pub fn zoomed_container(ui: &UiState) -> Option<(String, String)> {
    (ui.focus == PaneId::Containers && ui.zoomed)
        .then(|| ui.views.containers.selected.clone())
        .flatten()
}

/// Every source's containers in the order the pane lists them: sorted by the chosen
/// column, then grouped so that a compose project's rows stay together and, inside it,
/// a service's replicas; a group sits where its first row sorted.
fn listed<'a>(state: &'a AppState, ui: &UiState) -> Vec<(&'a str, &'a ContainerRow)> {
    let view = &ui.views.containers;
    let mut all: Vec<(&str, &ContainerRow)> = state
        .sources_of(PaneId::Containers)
        .iter()
        .filter_map(|s| state.containers.get(s).map(|rows| (s.as_str(), rows)))
        .flat_map(|(s, rows)| rows.iter().map(move |r| (s, r)))
        .collect();
    let grouping = |(s, r): &(&'a str, &'a ContainerRow)| (*s, &r.project, &r.service, &r.name);
    let missing = |r: &ContainerRow| view.sort.is_missing(r);
    all.sort_by(|a, b| {
        let by = view.sort.compare(a.1, b.1);
        let by = if view.reversed { by.reverse() } else { by };
        missing(a.1)
            .cmp(&missing(b.1))
            .then(by)
            .then_with(|| grouping(a).cmp(&grouping(b)))
    });
    // A container outside compose is a group of its own.
    let service = |r: &'a ContainerRow| {
        if r.service.is_empty() {
            &r.name
        } else {
            &r.service
        }
    };
    let mut project_rank: HashMap<(&str, &str), usize> = HashMap::new();
    let mut service_rank: HashMap<(&str, &str, &str), usize> = HashMap::new();
    for (i, (s, r)) in all.iter().enumerate() {
        project_rank.entry((s, &r.project)).or_insert(i);
        service_rank.entry((s, &r.project, service(r))).or_insert(i);
    }
    let mut ranked: Vec<(usize, (&str, &ContainerRow))> = all.into_iter().enumerate().collect();
    ranked.sort_by_key(|(i, (s, r))| {
        (
            project_rank[&(*s, r.project.as_str())],
            service_rank[&(*s, r.project.as_str(), service(r).as_str())],
            *i,
        )
    });
    ranked.into_iter().map(|(_, row)| row).collect()
}

/// The row the zoomed pane details: the selection, kept in range.
pub(crate) fn selected_index(ui: &UiState, count: usize) -> usize {
    ui.selected.min(count.saturating_sub(1))
}

pub fn render(frame: &mut Frame, area: Rect, ctx: &PaneContext) {
    let sources = ctx.state.sources_of(PaneId::Containers);
    let body = inner(area);
    let mut titles = Titles::default();
    let theme = ctx.theme;
    let all = listed(ctx.state, ctx.ui);
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
    let view = &ctx.ui.views.containers;
    let sorted = view.sort != SortBy::default() || view.reversed;
    if ctx.focused || sorted {
        let arrow = if view.reversed { "▲" } else { "▼" };
        titles.bottom_right = vec![Span::styled(
            format!("sort {}{arrow} {}", view.sort.label(), sort_keys(ctx)),
            if sorted { theme.accent } else { theme.muted },
        )];
    }

    let mut columns: Vec<Column> = if ctx.zoomed {
        COLUMNS.to_vec()
    } else {
        COLUMNS[..9].to_vec()
    };
    if let Some(column) = columns.get_mut(view.sort.column()).filter(|_| sorted) {
        let arrow = if view.reversed { "▲" } else { "▼" };
        column.title = format!("{}{arrow}", column.title).into();
    }
    let selected = selected_index(ctx.ui, rows.len());
    let detail = ctx.zoomed && body.height >= 14 && body.width >= 40;
    let [note, table_area, detail_area] = if ctx.zoomed && body.height >= 4 {
        let table_rows = if detail {
            (rows.len() as u16 + 1).clamp(3, (body.height - 1) / 2)
        } else {
            body.height - 1
        };
        Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(table_rows),
            Constraint::Min(0),
        ])
        .areas(body)
    } else {
        [Rect::default(), body, Rect::default()]
    };
    lines(
        frame,
        note,
        vec![Line::from(Span::styled(
            "cpu: 100% = 1 core · mem: used/limit · net: receive/transmit per second",
            theme.muted,
        ))],
    );
    // The overview never hides a container in trouble; zoomed, the list scrolls.
    let table_view = if ctx.zoomed {
        let selected = ctx.focused.then_some(selected);
        table(frame, table_area, theme, &columns, &rows, selected)
    } else {
        let problems: Vec<bool> = all
            .iter()
            .map(|(_, c)| worst_of(c) != Severity::Ok)
            .collect();
        table_problems_first(frame, table_area, theme, &columns, &rows, &problems)
    };
    titles.bottom = more_hint(theme, &table_view);
    if detail && let Some((source, container)) = all.get(selected) {
        details(frame, detail_area, ctx, source, container);
    }
    draw_block(frame, area, ctx, PaneId::Containers, sources, titles);
}

/// The selected container's CPU and memory charts beside its last log lines.
fn details(frame: &mut Frame, area: Rect, ctx: &PaneContext, source: &str, c: &ContainerRow) {
    let (charts, log) = if area.width >= 100 {
        let [charts, log] =
            Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)])
                .areas(area);
        (charts, log)
    } else {
        let [charts, log] =
            Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
        (charts, log)
    };
    let [cpu_area, mem_area] =
        Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(charts);
    let samples: Vec<ContainerSample> = ctx
        .state
        .container_history
        .of(source, &c.id)
        .map(|h| h.iter().copied().collect())
        .unwrap_or_default();
    let name = one_line(&c.name);
    let cpu: Vec<(DateTime<Utc>, f64)> = samples
        .iter()
        .filter_map(|s| Some((s.at, s.cpu_pct?)))
        .collect();
    let cpu_now = c.cpu_pct.map_or("—".into(), |v| format!("{v:.1}%"));
    let cpu_max = cpu.iter().map(|(_, v)| *v).fold(0.0, f64::max);
    history_chart(
        frame,
        cpu_area,
        ctx,
        Line::from(vec![
            Span::styled(format!("cpu of {name} "), ctx.theme.muted),
            Span::styled(cpu_now, ctx.theme.title),
            Span::styled(
                format!(" · max {cpu_max:.1}% · 100% = 1 core"),
                ctx.theme.muted,
            ),
        ]),
        &cpu,
        (1.0, &|v| format!("{v:.0}%")),
        &[],
    );
    let mem: Vec<(DateTime<Utc>, f64)> = samples
        .iter()
        .filter_map(|s| Some((s.at, s.mem_bytes?)))
        .collect();
    let mem_now = match (c.mem_bytes, c.mem_limit_bytes) {
        (Some(used), Some(limit)) if limit > 0.0 => {
            format!("{} of {}", compact_bytes(used), compact_bytes(limit))
        }
        (Some(used), _) => compact_bytes(used),
        (None, _) => "—".into(),
    };
    let mem_max = mem.iter().map(|(_, v)| *v).fold(0.0, f64::max);
    history_chart(
        frame,
        mem_area,
        ctx,
        Line::from(vec![
            Span::styled("mem ", ctx.theme.muted),
            Span::styled(mem_now, ctx.theme.title),
            Span::styled(
                format!(" · max {}", compact_bytes(mem_max)),
                ctx.theme.muted,
            ),
        ]),
        &mem,
        (MIB, &compact_bytes),
        &[],
    );
    log_tail(frame, log, ctx, source, c);
}

const MIB: f64 = 1024.0 * 1024.0;

/// The selected container's last log lines, newest at the bottom, every one sanitized.
fn log_tail(frame: &mut Frame, area: Rect, ctx: &PaneContext, source: &str, c: &ContainerRow) {
    if area.is_empty() {
        return;
    }
    let theme = ctx.theme;
    let [head, body] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    let tail = ctx
        .state
        .container_logs
        .as_ref()
        .filter(|t| t.source == source && t.id == c.id);
    let count = tail.map_or(0, |t| t.lines.len());
    lines(
        frame,
        head,
        vec![Line::from(vec![
            Span::styled(" log of ", theme.muted),
            Span::styled(one_line(&c.name), theme.title),
            Span::styled(
                format!(" · last {count} lines (docker logs --tail)"),
                theme.muted,
            ),
        ])],
    );
    let Some(tail) = tail else {
        message(frame, body, " reading the last log lines…", theme.unknown);
        return;
    };
    // An error goes last: it says why the lines stop there.
    let mut notes: Vec<Line<'static>> = Vec::new();
    if let Some(error) = &tail.error {
        notes.push(Line::from(Span::styled(
            format!(" {}", one_line(error)),
            theme.crit,
        )));
    } else if tail.lines.is_empty() {
        notes.push(Line::from(Span::styled(" no log lines", theme.muted)));
    }
    let room = (body.height as usize).saturating_sub(notes.len());
    let shown = &tail.lines[tail.lines.len().saturating_sub(room)..];
    let mut out: Vec<Line<'static>> = shown
        .iter()
        .map(|line| {
            let time = line
                .at
                .map_or("        ".to_string(), |t| t.format("%H:%M:%S").to_string());
            // stderr is marked by a bar and the colour of its time, so it reads without colour.
            let (mark, style) = if line.stderr {
                ("▌", theme.warn)
            } else {
                (" ", theme.muted)
            };
            Line::from(vec![
                Span::styled(format!("{mark}{time} "), style),
                Span::styled(one_line(&line.text), theme.text),
            ])
        })
        .collect();
    out.append(&mut notes);
    lines(frame, body, out);
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

#[cfg(test)]
mod tests {
    use super::{ContainersView, SortBy};
    use crate::model::update::{ContainerLogLine, ContainerLogTail, ContainerRow, Update};
    use crate::state::AppState;
    use crate::ui::test_support::*;
    use crate::ui::{PaneId, UiState, panes};
    use chrono::Duration;
    use ratatui::style::{Color, Modifier};

    #[test]
    fn containers_states() {
        insta::assert_snapshot!(states_sheet(PaneId::Containers));
        insta::assert_snapshot!(zoomed_sheet(PaneId::Containers, 120, 12));
    }

    #[test]
    fn containers_without_rows_say_why() {
        let mut state = connecting();
        state.apply(
            Update::Containers {
                source: "docker".into(),
                rows: vec![],
            },
            now(),
        );
        let screen = text(&draw_pane(
            PaneId::Containers,
            &state,
            &UiState::default(),
            &theme(),
            (48, 7),
            &PLAIN,
        ));
        assert!(screen.contains("no containers"), "{screen}");
        let screen = text(&draw_pane(
            PaneId::Containers,
            &failing(),
            &UiState::default(),
            &theme(),
            (48, 7),
            &PLAIN,
        ));
        assert!(screen.contains("connection refused"), "{screen}");
    }

    #[test]
    fn containers_in_trouble_are_never_hidden_in_the_overview() {
        let state = deployment(Level::Crit);
        // Four rows of room, six containers: the exited one sorts last but is shown.
        let buffer = draw_pane(
            PaneId::Containers,
            &state,
            &UiState::default(),
            &theme(),
            (60, 6),
            &PLAIN,
        );
        let screen = text(&buffer);
        assert!(
            screen.contains("redis-1") && screen.contains("✖ exited"),
            "{screen}"
        );
        assert!(screen.contains("✖ unhealthy"), "{screen}");
        assert!(screen.contains("+3 more"), "{screen}");
        let (x, y) = find(&buffer, "✖ exited").unwrap();
        assert_eq!(Some(buffer[(x, y)].fg), theme().crit.fg);
    }

    /// The deployment with two minutes of the backend's figures behind it and its last log
    /// lines, as the Docker collector sends them while the backend is zoomed.
    fn containers_zoomed(level: Level) -> AppState {
        let mut state = deployment(level);
        state.container_history = Default::default();
        for i in 0..30 {
            let mut rows = containers(level);
            rows[0].cpu_pct = Some(10.0 + f64::from(i % 10) * 5.0);
            rows[0].mem_bytes = Some((300.0 + f64::from(i) * 4.0) * 1024.0 * 1024.0);
            state.apply(
                Update::Containers {
                    source: "docker".into(),
                    rows,
                },
                now() - Duration::seconds(124 - 4 * i64::from(i)),
            );
        }
        let line = |secs: i64, stderr: bool, text: &str| ContainerLogLine {
            at: Some(now() - Duration::seconds(secs)),
            stderr,
            text: text.into(),
        };
        state.apply(
            Update::ContainerLogs(ContainerLogTail {
                source: "docker".into(),
                id: "777700000000".into(),
                lines: vec![
                    line(30, false, "GET /api/orders 200 12ms"),
                    line(20, true, "ERROR pool exhausted\x1b]0;pwned\x07\x1b[2J"),
                    line(10, false, "GET /api/health 200 1ms"),
                ],
                error: (level == Level::Crit).then(|| {
                    "docker logs: the engine answered 501: no logs with driver none".into()
                }),
            }),
            now(),
        );
        state
    }

    fn containers_ui(sort: SortBy, reversed: bool) -> UiState {
        UiState {
            focus: PaneId::Containers,
            zoomed: true,
            views: panes::Views {
                containers: ContainersView {
                    sort,
                    reversed,
                    selected: None,
                },
                ..panes::Views::default()
            },
            ..UiState::default()
        }
    }

    fn names(state: &AppState, ui: &UiState) -> Vec<String> {
        super::listed(state, ui)
            .iter()
            .map(|(_, r)| r.name.trim_start_matches("warungin-").to_string())
            .collect()
    }

    #[test]
    fn containers_sort_by_any_column_and_keep_groups_together() {
        let state = deployment(Level::Crit);
        let by = |sort, reversed| names(&state, &containers_ui(sort, reversed));
        assert_eq!(
            by(SortBy::Project, false),
            [
                "backend-1",
                "frontend-1",
                "nginx-1",
                "postgres-1",
                "promtail-1",
                "redis-1"
            ]
        );
        assert_eq!(
            by(SortBy::Cpu, false),
            [
                "backend-1",
                "postgres-1",
                "frontend-1",
                "nginx-1",
                "promtail-1",
                "redis-1"
            ],
            "busiest first; the exited redis has no CPU figure and goes last"
        );
        assert_eq!(
            by(SortBy::Cpu, true),
            [
                "promtail-1",
                "nginx-1",
                "frontend-1",
                "postgres-1",
                "backend-1",
                "redis-1"
            ],
            "reversed, still missing figures last"
        );
        // The worst state first: the exited redis and the unhealthy backend, both critical.
        assert_eq!(by(SortBy::State, false)[..2], ["redis-1", "backend-1"]);
        assert_eq!(by(SortBy::Restarts, false)[0], "backend-1");
        assert_eq!(
            by(SortBy::Uptime, false)[0],
            "backend-1",
            "latest start first"
        );
        assert_eq!(by(SortBy::Memory, false)[0], "backend-1");
        // Every column is reachable with `s` and comes back to the grouping.
        let mut sort = SortBy::Project;
        for _ in 0..SortBy::ALL.len() {
            sort = sort.next();
            by(sort, false);
        }
        assert_eq!(sort, SortBy::Project);

        // Replicas of a service stay together, and a project stays together, placed where
        // their busiest container sorts.
        let mut state = connecting();
        let row = |project: &str, service: &str, name: &str, cpu: f64| ContainerRow {
            id: name.into(),
            name: name.into(),
            project: project.into(),
            service: service.into(),
            state: "running".into(),
            cpu_pct: Some(cpu),
            ..ContainerRow::default()
        };
        state.apply(
            Update::Containers {
                source: "docker".into(),
                rows: vec![
                    row("shop", "api", "api-1", 10.0),
                    row("shop", "worker", "worker-1", 50.0),
                    row("shop", "worker", "worker-2", 0.1),
                    row("blog", "web", "web-1", 30.0),
                    row("", "", "loose", 40.0),
                ],
            },
            now(),
        );
        assert_eq!(
            names(&state, &containers_ui(SortBy::Cpu, false)),
            ["worker-1", "worker-2", "api-1", "loose", "web-1"]
        );
    }

    #[test]
    fn containers_zoomed_show_history_charts_and_last_log_lines() {
        let theme = theme();
        let mut out = String::new();
        for (name, level, sort, size) in [
            ("ok, wide", Level::Ok, SortBy::Project, (130, 30)),
            ("ok, sorted by cpu", Level::Ok, SortBy::Cpu, (130, 30)),
            (
                "ok, narrow: charts above the log",
                Level::Ok,
                SortBy::Project,
                (80, 34),
            ),
            ("crit, log error", Level::Crit, SortBy::Project, (130, 30)),
            ("just enough room", Level::Ok, SortBy::Project, (42, 16)),
        ] {
            let state = containers_zoomed(level);
            let ui = containers_ui(sort, false);
            out.push_str(&format!("── {name}, {}x{}\n", size.0, size.1));
            out.push_str(&text(&draw_pane(
                PaneId::Containers,
                &state,
                &ui,
                &theme,
                size,
                &ZOOMED,
            )));
        }
        insta::assert_snapshot!(out);

        let state = containers_zoomed(Level::Ok);
        let buffer = draw_pane(
            PaneId::Containers,
            &state,
            &containers_ui(SortBy::Cpu, false),
            &theme,
            (130, 30),
            &ZOOMED,
        );
        let screen = text(&buffer);
        // The selected row (the busiest, first) is reversed; its chart and log are shown.
        let (x, y) = find(&buffer, "warungin-backend-1").unwrap();
        assert!(buffer[(x, y)].modifier.contains(Modifier::REVERSED));
        assert!(
            screen.contains("cpu of warungin-backend-1 55.0%"),
            "{screen}"
        );
        assert!(screen.contains("max 55.0%"), "{screen}");
        assert!(screen.contains("last 3 lines"), "{screen}");
        assert!(screen.contains("GET /api/health 200 1ms"), "{screen}");
        // The sorted column is marked in the header and on the border, in the accent style.
        assert!(screen.contains("cpu▼"), "{screen}");
        let (x, y) = find(&buffer, "sort cpu▼ s/S").unwrap();
        assert_eq!(buffer[(x, y)].fg, theme.accent.fg.unwrap_or(Color::Reset));
        // stderr lines carry a bar in the warn style; control sequences never reach the screen.
        let (x, y) = find(&buffer, "ERROR pool exhausted").unwrap();
        assert!(screen.contains("▌"), "{screen}");
        assert_eq!(
            buffer[(x - 10, y)].fg,
            theme.warn.fg.unwrap_or(Color::Reset)
        );
        for cell in buffer.content() {
            assert!(!cell.symbol().chars().any(char::is_control), "{cell:?}");
        }
        // Braille dots: a chart is drawn.
        assert!(
            screen
                .chars()
                .any(|c| ('\u{2801}'..='\u{28ff}').contains(&c)),
            "{screen}"
        );

        // A log error is in the crit style.
        let crit = containers_zoomed(Level::Crit);
        let buffer = draw_pane(
            PaneId::Containers,
            &crit,
            &containers_ui(SortBy::Project, false),
            &theme,
            (130, 30),
            &ZOOMED,
        );
        let (x, y) = find(&buffer, "docker logs: the engine answered 501").unwrap();
        assert_eq!(Some(buffer[(x, y)].fg), theme.crit.fg);

        // Another container selected: its own (empty) history, and its log still to come.
        let ui = UiState {
            selected: 1,
            ..containers_ui(SortBy::Project, false)
        };
        let screen = text(&draw_pane(
            PaneId::Containers,
            &state,
            &ui,
            &theme,
            (130, 30),
            &ZOOMED,
        ));
        assert!(
            screen.contains("cpu of warungin-frontend-1 1.2%"),
            "{screen}"
        );
        assert!(screen.contains("reading the last log lines"), "{screen}");
    }

    #[test]
    fn zoomed_containers_survive_every_size() {
        let theme = theme();
        for level in [Level::Ok, Level::Crit] {
            let state = containers_zoomed(level);
            for sort in [SortBy::Project, SortBy::Cpu, SortBy::Uptime] {
                let ui = containers_ui(sort, true);
                for width in (0..=140).step_by(10) {
                    for height in (0..=36).step_by(2) {
                        draw_pane(
                            PaneId::Containers,
                            &state,
                            &ui,
                            &theme,
                            (width, height),
                            &ZOOMED,
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_border_names_the_sort_keys_in_effect() {
        let state = deployment(Level::Ok);
        let border = |ui: &UiState| {
            let screen = text(&draw_pane(
                PaneId::Containers,
                &state,
                ui,
                &theme(),
                (60, 9),
                &FOCUSED_PLAIN,
            ));
            screen.lines().last().unwrap().to_string()
        };
        assert!(border(&UiState::default()).contains("sort project▼ s/S"));
        let keymap = crate::ui::keys::Keymap::parse("[keys]\nsort_next = \"o\"\n").unwrap();
        let ui = UiState {
            keymap: std::sync::Arc::new(keymap),
            ..UiState::default()
        };
        assert!(border(&ui).contains("sort project▼ o/S"), "{}", border(&ui));
    }
}
