//! The Metrics pane (9) on `TestBackend`: PromQL figures with their values, histories and
//! labels, not-OK ones first; NaN, an empty result and a query error each readable; the
//! hosts a Prometheus source discovers left to the Host pane.

use chrono::{DateTime, Duration, TimeZone, Utc};
use ratatui::{Terminal, backend::TestBackend};
use watchpost::model::figure::{Reading, Value};
use watchpost::model::rule::{Rule, Threshold};
use watchpost::model::update::{HostSnapshot, Update};
use watchpost::state::{AppState, Window};
use watchpost::ui::theme::Theme;
use watchpost::ui::{PaneContext, PaneId, UiState, panes};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, 6, 0, 0).unwrap()
}

fn state() -> AppState {
    let mut state = AppState::new(Window::new(
        "meatymusic",
        now() - Duration::hours(2),
        Duration::hours(24),
    ));
    state.register_source(PaneId::Metrics, "mm");
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
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    let ui = UiState {
        focus: PaneId::Metrics,
        zoomed: true,
        ..UiState::default()
    };
    let theme = Theme::built_in("default").unwrap();
    terminal
        .draw(|frame| {
            let ctx = PaneContext {
                state,
                ui: &ui,
                theme: &theme,
                focused: true,
                zoomed: true,
                now: now(),
            };
            panes::metrics::render(frame, frame.area(), &ctx);
        })
        .unwrap();
    let buffer = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..buffer.area.height {
        let line: String = (0..buffer.area.width)
            .map(|x| buffer[(x, y)].symbol())
            .collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[test]
fn metrics_pane_states() {
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
    assert!(draw(&empty, 40, 4).contains("no prometheus, redis or postgres"));
}

#[test]
fn databases_and_container_execs_are_listed_but_not_containers() {
    let mut state = AppState::new(Window::new("warungin", now(), Duration::hours(24)));
    // A Redis source is its own Services row, and its figures are still listed here.
    state.register_source(PaneId::Services, "cache");
    state.register_source(PaneId::Metrics, "cache");
    state.register_source(PaneId::Containers, "dock");
    state.register_source(PaneId::Metrics, "dock");
    state.apply(
        Update::Service(watchpost::model::update::ServiceStatus {
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
