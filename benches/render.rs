//! One full-frame render of the overview at 200x60 with realistic data (README: Performance).

use chrono::{Duration, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use ratatui::{Terminal, backend::TestBackend};
use std::hint::black_box;
use watchpost::model::figure::Reading;
use watchpost::model::pane::PaneId;
use watchpost::model::rule::{Rule, Threshold};
use watchpost::model::update::*;
use watchpost::state::{AppState, Window};
use watchpost::ui::{UiState, theme::Theme};

/// A state like the demo's after an hour: every pane populated, 50,000 log lines.
fn realistic_state() -> (AppState, chrono::DateTime<Utc>) {
    let start = Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap();
    let now = start + Duration::minutes(75);
    let mut state = AppState::new(Window::new("tmws-demo", start, Duration::hours(24)));
    for (pane, source) in [
        (PaneId::Services, "api"),
        (PaneId::Rbac, "tmws"),
        (PaneId::License, "tmws"),
        (PaneId::Containers, "local"),
        (PaneId::Host, "host"),
        (PaneId::Errors, "app"),
    ] {
        state.register_source(pane, source);
    }
    for i in 0..240 {
        let at = now - Duration::seconds(2 * (240 - i));
        let deny = 8.0 + (i % 17) as f64;
        state.apply(
            Update::Readings {
                source: "tmws".into(),
                readings: vec![
                    Reading::number("tmws.rbac.deny_pct_1h", "deny % (1h)", deny, "%").with_rule(
                        Rule::warn_crit(Threshold::above(20.0), Threshold::above(50.0)),
                    ),
                    Reading::number(
                        "tmws.rbac.checks_1h",
                        "permission checks (1h)",
                        72_000.0 + i as f64,
                        "",
                    ),
                    Reading::number("tmws.rbac.allow_1h", "allowed (1h)", 66_000.0, ""),
                    Reading::number("tmws.rbac.deny_1h", "denied (1h)", 6_000.0, ""),
                    Reading::number(
                        "tmws.license.failure_pct_1h",
                        "validation failures (1h)",
                        3.2,
                        "%",
                    ),
                    Reading::number(
                        "tmws.license.validations_1h",
                        "validations (1h)",
                        9_000.0,
                        "",
                    ),
                    Reading::number("tmws.license.generated_1h", "generated (1h)", 180.0, ""),
                    Reading::number("tmws.license.expiring_7d", "expiring in 7 days", 23.0, ""),
                    Reading::number(
                        "tmws.license.expired_active",
                        "expired, not revoked",
                        2.0,
                        "",
                    ),
                    Reading::text("tmws.db.migration", "migration", "571948cc671b"),
                    Reading::text("tmws.db.integrity", "integrity", "ok"),
                ],
            },
            at,
        );
        state.apply(
            Update::Readings {
                source: "host".into(),
                readings: vec![
                    Reading::number("host.cpu_pct", "CPU", 20.0 + (i % 50) as f64, "%"),
                    Reading::number("host.mem_pct", "memory", 61.0, "%"),
                    Reading::number("host.disk_pct", "disk", 47.0, "%"),
                    Reading::number("host.load1", "load", 0.7, ""),
                ],
            },
            at,
        );
        state.apply(
            Update::Service(ServiceStatus {
                name: "api".into(),
                kind: "http".into(),
                up: i % 40 != 0,
                status: "200".into(),
                latency_ms: Some(12.0),
                restarts: None,
                detail: String::new(),
            }),
            at,
        );
    }
    state.apply(
        Update::Host {
            source: "host".into(),
            snapshot: HostSnapshot {
                hostname: "jump-1".into(),
                cpu_pct: 33.0,
                cores: 2,
                mem_used_bytes: 14e9,
                mem_total_bytes: 24e9,
                load: [0.7, 0.6, 0.5],
                uptime_secs: 86_400,
                disks: vec![DiskUsage {
                    mount: "/".into(),
                    used_bytes: 120e9,
                    available_bytes: 119e9,
                    total_bytes: 252e9,
                }],
            },
        },
        now,
    );
    let rows = (0..24)
        .map(|i| ContainerRow {
            id: format!("{i:012x}"),
            name: format!("warungin-svc{}-1", i % 8),
            project: "warungin".into(),
            service: format!("svc{}", i % 8),
            state: if i == 5 {
                "exited".into()
            } else {
                "running".into()
            },
            health: "healthy".into(),
            started_at: Some(start),
            restarts: (i % 3) as u64,
            cpu_pct: Some(1.5 * i as f64),
            mem_bytes: Some(1.2e8 + 1e6 * i as f64),
            mem_limit_bytes: Some(2e9),
            net_rx_bps: Some(1.2e4),
            net_tx_bps: Some(8.0e3),
            block_read_bytes: Some(1e6),
            block_write_bytes: Some(2e6),
            ..ContainerRow::default()
        })
        .collect();
    state.apply(
        Update::Containers {
            source: "local".into(),
            rows,
        },
        now,
    );
    let lines = (0..50_000)
        .map(|i| LogLine {
            source: if i % 3 == 0 {
                "app".into()
            } else {
                "api".into()
            },
            at: now - Duration::milliseconds(50_000 - i),
            level: if i % 7 == 0 {
                LogLevel::Error
            } else {
                LogLevel::Info
            },
            message: format!(
                "request {i} finished: tool_name=search outcome=timeout latency_ms={}",
                i % 900
            ),
            fields: vec![("outcome", "timeout")].into(),
            is_error: i % 7 == 0,
            tallied: false,
        })
        .collect();
    state.apply(Update::Logs(lines), now);
    state.apply(
        Update::Table {
            id: "tmws.rbac.top_denied".into(),
            table: Table {
                title: "top denied".into(),
                columns: vec!["operation".into(), "role".into(), "denies".into()],
                rows: (0..20)
                    .map(|i| {
                        vec![
                            format!("license:op{i}"),
                            "viewer".into(),
                            format!("{}", 400 - i),
                        ]
                    })
                    .collect(),
            },
        },
        now,
    );
    (state, now)
}

fn render_overview(c: &mut Criterion) {
    let (state, now) = realistic_state();
    let ui = UiState::default();
    let theme = Theme::built_in("default").unwrap();
    let mut terminal = Terminal::new(TestBackend::new(200, 60)).unwrap();
    c.bench_function("render overview 200x60", |b| {
        b.iter(|| {
            terminal
                .draw(|frame| watchpost::ui::draw(frame, black_box(&state), &ui, &theme, now))
                .unwrap();
        })
    });
}

criterion_group!(benches, render_overview);
criterion_main!(benches);
