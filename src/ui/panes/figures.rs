//! Figures: every figure without a pane of its own, one row per figure (or per series of
//! a PromQL vector), with its value, its history as a sparkline (for PromQL filled at
//! start-up by range queries) and its labels or detail. They are the figures of the
//! Prometheus, Redis and PostgreSQL sources, of `[[docker.S.exec]]` and `[command.NAME]`,
//! and those the config defines beside a pane's own: `[[logs.L.metric]]` and
//! `[[sqlite.S.metric]]`. The pane is on the overview when the config has any.
//! Figures that are not OK come first, so what needs a look is at the top. The hosts and
//! targets a Prometheus source discovers are in the Host and Services panes, not here; a
//! database's own Services row (its `up` and latency) is there too, its figures here.

use super::Pane;
use super::common::{
    Cell, Column, Limit, Row, Titles, draw_block, figure_text, history_chart, inner, more_hint,
    one_line, sparkline, table,
};
use crate::model::figure::Severity;
use crate::state::{AppState, FigureState};
use crate::ui::{PaneContext, PaneId};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::{Frame, layout::Rect};

const SPARK: u16 = 24;
const COLUMNS: [Column; 5] = [
    Column::left("", 1, 1, 0),
    // A long name: the labels and the history go before it is cut, then its middle.
    Column::left("figure", 10, 48, 0)
        .grow(1)
        .fill()
        .whole_before(1)
        .cut_middle(),
    Column::right("value", 5, 20, 1).grow(0),
    Column::left("history", 8, SPARK, 2),
    Column::left("labels / why", 8, 100, 3),
];

/// The figures the pane lists, not-OK first, then by id.
pub fn listed(state: &AppState) -> Vec<&FigureState> {
    let sources = state.sources_of(PaneId::Figures);
    let containers = state.sources_of(PaneId::Containers);
    let mut figures: Vec<&FigureState> = state
        .figures
        .values()
        .filter(|f| {
            let id = &f.figure.id;
            state.listed_figures.contains_key(id)
                || sources.iter().any(|s| {
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

pub(crate) const PANE: Pane = Pane {
    height,
    ..Pane::new(PaneId::Figures, render)
};

/// A row per figure, read or waiting, under the table's header.
fn height(state: &AppState) -> Option<u16> {
    let waiting = waiting(state).len();
    Some((3 + listed(state).len() + waiting).min(usize::from(u16::MAX)) as u16)
}

/// The names of the config's own figures that have not been read yet.
fn waiting(state: &AppState) -> Vec<&String> {
    state
        .listed_figures
        .iter()
        .filter(|(id, _)| !state.figures.contains_key(*id))
        .map(|(_, name)| name)
        .collect()
}

pub(crate) fn render(frame: &mut Frame, area: Rect, ctx: &PaneContext) {
    let sources = ctx.state.sources_of(PaneId::Figures);
    let body = inner(area);
    let mut titles = Titles::default();
    let figures = listed(ctx.state);
    // The config's own figures that have not been read yet: listed by name from the
    // first frame, so every configured figure is on the screen.
    let waiting = waiting(ctx.state);
    if figures.is_empty() && waiting.is_empty() {
        frame.render_widget(ctx.placeholder(sources, "figure"), body);
        draw_block(frame, area, ctx, PaneId::Figures, sources, titles);
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
    } else if figures.is_empty() {
        Span::styled(format!("{} waiting", waiting.len()), theme.unknown)
    } else {
        Span::styled(format!("✓ {} figures", figures.len()), theme.ok)
    });
    let mut rows: Vec<Row> = figures.iter().map(|f| row(ctx, f)).collect();
    rows.extend(waiting.iter().map(|name| waiting_row(ctx, name)));
    let selected = ctx
        .focused
        .then_some(ctx.ui.selected.min(rows.len().saturating_sub(1)));
    // Zoomed with room: the selected figure's whole history under the table, its warn
    // and crit thresholds drawn across it.
    let charted = selected
        .and_then(|i| figures.get(i))
        .filter(|_| ctx.zoomed && body.height >= 14);
    let (table_area, chart_area) = match charted {
        Some(_) => {
            let rows_wanted = (rows.len() + 1).min(usize::from(body.height / 2)) as u16;
            let [top, bottom] =
                Layout::vertical([Constraint::Length(rows_wanted), Constraint::Min(0)]).areas(body);
            (top, Some(bottom))
        }
        None => (body, None),
    };
    let view = table(frame, table_area, theme, &COLUMNS, &rows, selected);
    if let (Some(f), Some(area)) = (charted, chart_area) {
        chart(frame, area, ctx, f);
    }
    titles.bottom = more_hint(theme, &view);
    draw_block(frame, area, ctx, PaneId::Figures, sources, titles);
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

/// A figure's history as a chart, with its thresholds.
fn chart(frame: &mut Frame, area: Rect, ctx: &PaneContext, f: &FigureState) {
    let theme = ctx.theme;
    let values: Vec<_> = f.history.iter().copied().collect();
    let (now, _) = figure_text(theme, Some(f));
    let [warn, crit] = f.limits;
    let limits: Vec<Limit> = [(warn, theme.warn), (crit, theme.crit)]
        .into_iter()
        .filter_map(|(t, style)| t.map(|t| (t.limit, style)))
        .filter(|(limit, _)| limit.is_finite())
        .collect();
    let mut title = vec![
        Span::styled(format!("{} ", one_line(&f.figure.name)), theme.muted),
        Span::styled(now, theme.title),
    ];
    for (label, threshold) in [("warn", warn), ("crit", crit)] {
        if let Some(t) = threshold {
            title.push(Span::styled(format!(" · {label} {t}"), theme.muted));
        }
    }
    let unit = f.figure.unit.clone();
    history_chart(
        frame,
        area,
        ctx,
        Line::from(title),
        &values,
        (1.0, &move |v| {
            format!("{} {unit}", compact_number(v))
                .trim_end()
                .to_string()
        }),
        &limits,
    );
}

/// A number for an axis label: at most three significant digits.
fn compact_number(v: f64) -> String {
    if v.abs() >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A configured figure not read yet: its name, and that it waits.
fn waiting_row(ctx: &PaneContext, name: &str) -> Row {
    let theme = ctx.theme;
    Row {
        cells: vec![
            Cell::new(Severity::Unknown.symbol(), theme.unknown),
            Cell::new(one_line(name), theme.text),
            Cell::new("…", theme.unknown),
            Cell::new("", theme.muted),
            Cell::new("not read yet", theme.muted),
        ],
        style: Style::default(),
    }
}

#[cfg(test)]
mod tests {
    //! PromQL figures with their values, histories and labels, not-OK ones first; NaN, an
    //! empty result and a query error each readable; the hosts a Prometheus source
    //! discovers left to the Host pane.

    use crate::model::figure::{Reading, Value};
    use crate::model::rule::{Rule, Threshold};
    use crate::model::update::{HostSnapshot, Update};
    use crate::state::{AppState, Window};
    use crate::ui::test_support::{FOCUSED_ZOOMED, draw_pane_at, text, theme};
    use crate::ui::{PaneId, UiState};
    use chrono::{DateTime, Duration, TimeZone, Utc};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 2, 6, 0, 0).unwrap()
    }

    fn state() -> AppState {
        let mut state = AppState::new(Window::new(
            "meatymusic",
            now() - Duration::hours(2),
            Duration::hours(24),
        ));
        state.register_source(PaneId::Figures, "mm");
        let warn = Rule::warn_only(Threshold::above(1.0));
        for (i, v) in [0.2, 0.4, 0.9, 1.6, 2.5].into_iter().enumerate() {
            let at = now() - Duration::seconds(60 - 15 * i as i64);
            let readings = vec![
                Reading::number(
                    "mm.boundary_violations_per_s",
                    "security boundary violations/s",
                    v,
                    "/s",
                )
                .with_rule(warn.clone()),
                Reading::number(
                    "mm.contexts_by_instance.api-1:8000",
                    "active security contexts {instance=\"api-1:8000\"}",
                    10.0 + i as f64,
                    "",
                )
                .with_detail("instance=\"api-1:8000\", job=\"meatymusic-api\""),
                Reading::number("mm.cache_hit_pct", "security cache hit rate", f64::NAN, "%")
                    .with_detail("NaN: not a number (such as 0/0, a ratio over no events)"),
                Reading {
                    value: Value::None,
                    ..Reading::text("mm.query_p95_s", "security query P95", "")
                }
                .with_detail("empty result: the query matched no series"),
                Reading::failed(
                    "mm.rls_coverage_pct",
                    "RLS policy coverage",
                    "PromQL bad_data: invalid parameter \"query\": 1:45: parse error: unclosed left parenthesis",
                ),
            ];
            state.apply(
                Update::Readings {
                    source: "mm".into(),
                    readings,
                },
                at,
            );
        }
        // A discovered host: its figures belong to the Host pane.
        state.apply(
            Update::Host {
                source: "mm.web-1:9100".into(),
                snapshot: HostSnapshot {
                    hostname: "web-1".into(),
                    ..HostSnapshot::default()
                },
            },
            now(),
        );
        state.apply(
            Update::Readings {
                source: "mm".into(),
                readings: vec![Reading::number(
                    "mm.web-1:9100.cpu_pct",
                    "mm.web-1:9100 CPU",
                    12.0,
                    "%",
                )],
            },
            now(),
        );
        state
    }

    fn draw(state: &AppState, width: u16, height: u16) -> String {
        let ui = UiState {
            focus: PaneId::Figures,
            zoomed: true,
            ..UiState::default()
        };
        let buffer = draw_pane_at(
            PaneId::Figures,
            state,
            &ui,
            &theme(),
            (width, height),
            &FOCUSED_ZOOMED,
            now(),
        );
        text(&buffer)
    }

    #[test]
    fn figures_pane_states() {
        let state = state();
        let wide = draw(&state, 170, 9);
        assert!(
            !wide.contains("web-1:9100"),
            "discovered hosts are the Host pane's:\n{wide}"
        );
        let at = |text: &str| {
            wide.find(text)
                .unwrap_or_else(|| panic!("no {text}:\n{wide}"))
        };
        // Not OK first (unknown outranks a warning, as in the header), the OK series last.
        assert!(at("security cache hit rate") < at("security boundary violations/s"));
        assert!(at("security boundary violations/s") < at("active security contexts"));
        assert!(
            wide.contains("unclosed left parenthesis"),
            "the whole error:\n{wide}"
        );
        assert!(wide.contains("empty result"), "{wide}");
        insta::assert_snapshot!(wide);
        insta::assert_snapshot!(draw(&state, 60, 8));
        let empty = AppState::new(Window::new("m", now(), Duration::hours(24)));
        assert!(draw(&empty, 40, 4).contains("no figure source configured"));
    }

    /// Zoomed, the selected figure's history is a chart with its thresholds across it.
    #[test]
    fn zoomed_the_selected_figure_is_charted_with_its_thresholds() {
        let state = state();
        let index = super::listed(&state)
            .iter()
            .position(|f| f.figure.id == "mm.boundary_violations_per_s")
            .unwrap();
        let ui = UiState {
            focus: PaneId::Figures,
            zoomed: true,
            selected: index,
            ..UiState::default()
        };
        let buffer = draw_pane_at(
            PaneId::Figures,
            &state,
            &ui,
            &theme(),
            (100, 24),
            &FOCUSED_ZOOMED,
            now(),
        );
        let screen = text(&buffer);
        assert!(
            screen.contains("security boundary violations/s 2.50 /s · warn > 1"),
            "{screen}"
        );
        assert!(screen.contains("now"), "the time axis:\n{screen}");
        // The threshold's line is drawn in the warn style across the chart.
        let warn_cells = buffer
            .content()
            .iter()
            .filter(|c| c.fg == theme().warn.fg.unwrap() && c.symbol() == "•")
            .count();
        assert!(
            warn_cells > 20,
            "{warn_cells} cells of the warn line:\n{screen}"
        );
        // Not zoomed, no chart.
        let overview = draw(&state, 100, 24);
        assert!(!overview.contains("· warn > 1"), "{overview}");
    }

    /// `[[logs.L.metric]]` and `[[sqlite.S.metric]]` figures have no pane of their own:
    /// listed here by name from the first frame, with their values once read.
    #[test]
    fn the_configs_own_figures_are_listed_before_and_after_their_first_reading() {
        let mut state = AppState::new(Window::new("shop", now(), Duration::hours(24)));
        state.register_source(PaneId::Errors, "app");
        for (id, name) in [
            ("app.checkout_p95_ms", "checkout p95"),
            ("app.payment_failures", "payment failures"),
        ] {
            state.listed_figures.insert(id.into(), name.into());
        }
        let before = draw(&state, 100, 6);
        for needle in [
            "checkout p95",
            "payment failures",
            "not read yet",
            "2 waiting",
        ] {
            assert!(before.contains(needle), "{needle}:\n{before}");
        }
        state.apply(
            Update::Readings {
                source: "app".into(),
                readings: vec![
                    Reading::number("app.payment_failures", "payment failures", 6.0, "")
                        .with_rule(Rule::warn_only(Threshold::above(5.0))),
                    // A figure of the source that is the Errors pane's, not listed here.
                    Reading::number("app.errors_1h", "errors in the last hour", 3.0, ""),
                ],
            },
            now(),
        );
        let after = draw(&state, 100, 6);
        let line = after
            .lines()
            .find(|l| l.contains("payment failures"))
            .unwrap();
        assert!(line.contains('6') && line.contains('▲'), "{after}");
        assert!(after.contains("checkout p95"), "{after}");
        assert!(!after.contains("errors in the last hour"), "{after}");
    }

    #[test]
    fn databases_and_container_execs_are_listed_but_not_containers() {
        let mut state = AppState::new(Window::new("warungin", now(), Duration::hours(24)));
        // A Redis source is its own Services row, and its figures are still listed here.
        state.register_source(PaneId::Services, "cache");
        state.register_source(PaneId::Figures, "cache");
        state.register_source(PaneId::Containers, "dock");
        state.register_source(PaneId::Figures, "dock");
        state.apply(
            Update::Service(crate::model::update::ServiceStatus {
                name: "cache".into(),
                kind: "redis".into(),
                up: true,
                status: "master".into(),
                latency_ms: Some(0.4),
                restarts: None,
                detail: String::new(),
            }),
            now(),
        );
        state.apply(
            Update::Readings {
                source: "cache".into(),
                readings: vec![Reading::number(
                    "cache.cache_hit_pct",
                    "keyspace hit %",
                    91.5,
                    "%",
                )],
            },
            now(),
        );
        state.apply(
            Update::Readings {
                source: "dock".into(),
                readings: vec![
                    Reading::number("dock.pg_isready", "postgres pg_isready", 0.0, ""),
                    Reading::number("dock.backend.cpu_pct", "backend cpu", 12.0, "%"),
                ],
            },
            now(),
        );
        let screen = draw(&state, 120, 8);
        assert!(screen.contains("keyspace hit %"), "{screen}");
        assert!(screen.contains("postgres pg_isready"), "{screen}");
        assert!(
            !screen.contains("backend cpu"),
            "containers are their pane's:\n{screen}"
        );
    }
}
