//! Every pane rendered on `TestBackend` in its states (ok, warn, crit, source error,
//! connecting, not configured), zoomed, and at tiny sizes; the whole screen at 80x24,
//! 200x60 and 20x5. Text goes to insta snapshots (tests/snapshots/); styles are checked
//! cell by cell so a colour regression shows.

use chrono::{DateTime, Duration, TimeZone, Utc};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};
use watchpost::model::figure::Reading;
use watchpost::model::rule::{Comparison, Priority, Rule, Threshold};
use watchpost::model::update::{
    ContainerLogLine, ContainerLogTail, ContainerRow, DiskUsage, HostSnapshot, LogLevel, LogLine,
    ServiceStatus, SourceHealth, Table, Update,
};
use watchpost::state::{AppState, Window};
use watchpost::ui::panes::containers::{ContainersView, SortBy};
use watchpost::ui::theme::Theme;
use watchpost::ui::{self, LogFilter, PaneContext, PaneId, UiState, panes};

// ---------------------------------------------------------------- fixtures

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Level {
    Ok,
    Warn,
    Crit,
}

fn window() -> Window {
    let mut window = Window::new("tmws", now() - Duration::minutes(134), Duration::hours(24));
    window.version = "v2.3.0".into();
    window
}

/// A deployment whose sources are registered but have not reported yet.
fn connecting() -> AppState {
    let mut state = AppState::new(window());
    state.register_source(PaneId::Services, "tmws-api");
    state.register_source(PaneId::Services, "tmws-worker");
    state.register_source(PaneId::Rbac, "tmws");
    state.register_source(PaneId::License, "tmws");
    state.register_source(PaneId::Containers, "docker");
    state.register_source(PaneId::Host, "host");
    state.register_source(PaneId::Errors, "app");
    state
}

fn pct_rule(warn: f64, crit: f64) -> Rule {
    Rule::warn_crit(Threshold::above(warn), Threshold::above(crit))
}

fn readings(state: &mut AppState, source: &str, readings: Vec<Reading>, at: DateTime<Utc>) {
    state.apply(
        Update::Readings {
            source: source.into(),
            readings,
        },
        at,
    );
}

fn tmws_readings(level: Level, deny: f64) -> Vec<Reading> {
    let failure = match level {
        Level::Ok => 2.1,
        Level::Warn => 14.8,
        Level::Crit => 58.0,
    };
    let expired_active = if level == Level::Crit { 3.0 } else { 0.0 };
    let checks = 1284.0;
    let denies = (checks * deny / 100.0_f64).round();
    vec![
        Reading::number("tmws.rbac.deny_pct_1h", "RBAC deny rate 1h", deny, "%")
            .with_rule(pct_rule(20.0, 50.0).with_priority(Priority::P1)),
        Reading::number(
            "tmws.rbac.checks_1h",
            "RBAC permission checks 1h",
            checks,
            "",
        )
        .with_rule(Rule::crit_only(Threshold::new(Comparison::Equal, 0.0))),
        Reading::number("tmws.rbac.allow_1h", "RBAC allowed 1h", checks - denies, ""),
        Reading::number("tmws.rbac.deny_1h", "RBAC denied 1h", denies, ""),
        Reading::number("tmws.agents.admin_pct", "admin agents", 3.2, "%")
            .with_rule(Rule::warn_only(Threshold::above(20.0))),
        Reading::number(
            "tmws.license.failure_pct_1h",
            "license validation failures 1h",
            failure,
            "%",
        )
        .with_rule(pct_rule(10.0, 50.0)),
        Reading::number(
            "tmws.license.validations_1h",
            "license validations 1h",
            412.0,
            "",
        ),
        Reading::number(
            "tmws.license.generated_1h",
            "licenses generated 1h",
            34.0,
            "",
        )
        .with_detail("pro 20 · free 12 · enterprise 2")
        .with_rule(Rule::crit_only(Threshold::above(1000.0))),
        Reading::number("tmws.license.revoked_1h", "licenses revoked 1h", 0.0, ""),
        Reading::number(
            "tmws.license.expiring_7d",
            "licenses expiring in 7 days",
            12.0,
            "",
        )
        .with_rule(Rule::warn_only(Threshold::above(100.0))),
        Reading::number(
            "tmws.license.expired_active",
            "expired licenses not revoked",
            expired_active,
            "",
        )
        .with_rule(Rule::warn_only(Threshold::above(0.0))),
        Reading::text("tmws.db.migration", "alembic migration", "571948cc671b")
            .with_rule(Rule::expecting("571948cc671b").with_priority(Priority::P0)),
        Reading::text("tmws.db.integrity", "database integrity", "ok")
            .with_rule(Rule::expecting("ok").with_priority(Priority::P0)),
    ]
}

fn service(name: &str, kind: &str, up: bool, status: &str, ms: Option<f64>) -> ServiceStatus {
    ServiceStatus {
        name: name.into(),
        kind: kind.into(),
        up,
        status: status.into(),
        latency_ms: ms,
        restarts: Some(0),
        detail: if kind == "http" {
            "GET http://127.0.0.1:8000/health".into()
        } else {
            format!("systemctl status {name}")
        },
    }
}

fn containers(level: Level) -> Vec<ContainerRow> {
    let started = now() - Duration::minutes(140);
    let row = |service: &str, cpu: f64, mem_mib: f64, limit_mib: f64| ContainerRow {
        id: format!("{:0<12}", service.len() * 1111),
        name: format!("warungin-{service}-1"),
        project: "warungin".into(),
        service: service.into(),
        state: "running".into(),
        health: "healthy".into(),
        started_at: Some(started),
        restarts: 0,
        cpu_pct: Some(cpu),
        mem_bytes: Some(mem_mib * 1024.0 * 1024.0),
        mem_limit_bytes: Some(limit_mib * 1024.0 * 1024.0),
        net_rx_bps: Some(14_000.0),
        net_tx_bps: Some(3_100.0),
        block_read_bytes: Some(1.2e6),
        block_write_bytes: Some(4.0e5),
        ..ContainerRow::default()
    };
    let mut rows = vec![
        row("backend", 23.4, 412.0, 1024.0),
        row("frontend", 1.2, 96.0, 512.0),
        row("nginx", 0.4, 12.0, 128.0),
        row("postgres", 8.9, 380.0, 2048.0),
        row("redis", 0.8, 24.0, 256.0),
    ];
    rows.push(ContainerRow {
        health: String::new(),
        ..row("promtail", 0.3, 40.0, 0.0)
    });
    match level {
        Level::Ok => {}
        Level::Warn => {
            rows[0].cpu_pct = Some(168.0);
            rows[3].health = "starting".into();
        }
        Level::Crit => {
            rows[0].health = "unhealthy".into();
            rows[0].restarts = 3;
            rows[0].started_at = Some(now() - Duration::seconds(40));
            rows[4].state = "exited".into();
            rows[4].health = String::new();
            rows[4].cpu_pct = None;
            rows[4].mem_bytes = None;
            rows[4].net_rx_bps = None;
            rows[4].net_tx_bps = None;
        }
    }
    rows
}

fn host_snapshot(level: Level) -> HostSnapshot {
    let (cpu, mem, disk) = match level {
        Level::Ok => (23.0, 48.0, 41.0),
        Level::Warn => (76.0, 83.0, 62.0),
        Level::Crit => (93.0, 95.5, 91.0),
    };
    let total = 16.0 * 1024.0 * 1024.0 * 1024.0;
    HostSnapshot {
        hostname: "prod-app-1".into(),
        cpu_pct: cpu,
        cores: 4,
        mem_used_bytes: total * mem / 100.0,
        mem_total_bytes: total,
        load: [cpu / 25.0, cpu / 28.0, cpu / 33.0],
        uptime_secs: 3 * 86_400 + 4 * 3600,
        disks: vec![
            DiskUsage {
                mount: "/".into(),
                used_bytes: 100e9 * disk / 100.0,
                available_bytes: 100e9 * (100.0 - disk) / 100.0,
                total_bytes: 100e9,
            },
            DiskUsage {
                mount: "/var/lib/docker".into(),
                used_bytes: 120e9,
                available_bytes: 380e9,
                total_bytes: 500e9,
            },
        ],
    }
}

fn log(at: DateTime<Utc>, level: LogLevel, source: &str, message: &str) -> LogLine {
    LogLine {
        source: source.into(),
        at,
        level,
        message: message.into(),
        fields: vec![("logger", "tmws.security.rbac")].into(),
        is_error: level >= LogLevel::Error,
        tallied: false,
    }
}

fn logs(level: Level) -> Vec<LogLine> {
    let t = |secs: i64| now() - Duration::seconds(secs);
    let mut lines = vec![
        log(
            t(600),
            LogLevel::Info,
            "app",
            "server started on 127.0.0.1:8000",
        ),
        log(
            t(540),
            LogLevel::Info,
            "app",
            "license validated tier=pro agent=a-17",
        ),
        log(
            t(480),
            LogLevel::Warn,
            "app",
            "slow query: license_usage_history took 612 ms",
        ),
        log(
            t(420),
            LogLevel::Error,
            "app",
            "permission denied: license.revoke for role viewer",
        ),
        log(
            t(300),
            LogLevel::Info,
            "worker",
            "job sweep_expired finished in 2.1s",
        ),
    ];
    if level != Level::Ok {
        lines.push(log(
            t(200),
            LogLevel::Error,
            "worker",
            "redis: connection reset by peer",
        ));
        lines.push(log(
            t(120),
            LogLevel::Warn,
            "app",
            "retrying license signature check",
        ));
    }
    if level == Level::Crit {
        for i in 0..6 {
            lines.push(log(
                t(90 - i * 10),
                if i == 5 {
                    LogLevel::Critical
                } else {
                    LogLevel::Error
                },
                "app",
                "sqlite3.OperationalError: database is locked\nTraceback (most recent call last):",
            ));
        }
    }
    lines
}

/// A deployment in the given state: every source has reported, with some history.
fn deployment(level: Level) -> AppState {
    let mut state = connecting();
    let deny = match level {
        Level::Ok => 8.2,
        Level::Warn => 31.5,
        Level::Crit => 62.4,
    };
    // Twenty rounds of history, thirty seconds apart, rising to the final value.
    for i in 0..20 {
        let at = now() - Duration::seconds(30 * (20 - i));
        let step = f64::from(i as u32) / 19.0;
        let deny_then = 6.0 + (deny - 6.0) * step * step;
        readings(&mut state, "tmws", tmws_readings(level, deny_then), at);
        let cpu = host_snapshot(level).cpu_pct * (0.5 + 0.5 * step);
        readings(
            &mut state,
            "host",
            vec![
                Reading::number("host.cpu_pct", "host CPU", cpu, "%")
                    .with_rule(pct_rule(70.0, 85.0)),
            ],
            at,
        );
        let ms = 12.0
            + f64::from((i * 7 % 11) as u32)
            + match level {
                Level::Ok if i == 6 => 700.0, // a blip, resolved since: listed as resolved
                Level::Ok => 0.0,
                Level::Warn => step * 640.0,
                Level::Crit => step * 900.0,
            };
        readings(
            &mut state,
            "tmws-api",
            vec![
                Reading::number("tmws-api.up", "tmws-api up", 1.0, "")
                    .with_rule(Rule::crit_only(Threshold::below(1.0)).with_priority(Priority::P0)),
                Reading::number("tmws-api.health_ms", "tmws-api health latency", ms, "ms")
                    .with_rule(pct_rule(500.0, 2000.0)),
            ],
            at,
        );
        state.apply(
            Update::Service(service("tmws-api", "http", true, "200", Some(ms))),
            at,
        );
        let mut worker = service("tmws-worker", "systemd", true, "running", None);
        if level != Level::Ok {
            worker.restarts = Some(1);
        }
        state.apply(Update::Service(worker), at);
        state.apply(
            Update::Health {
                source: "tmws-worker".into(),
                health: SourceHealth::Ok,
            },
            at,
        );
    }
    readings(
        &mut state,
        "tmws",
        tmws_readings(level, deny),
        now() - Duration::seconds(3),
    );
    state.apply(
        Update::Table {
            id: "tmws.rbac.top_denied".into(),
            table: Table {
                title: "top denied operations, last hour".into(),
                columns: vec!["operation".into(), "role".into(), "denies".into()],
                rows: vec![
                    vec!["license.revoke".into(), "viewer".into(), "412".into()],
                    vec!["license.generate".into(), "viewer".into(), "188".into()],
                    vec!["agent.update_role".into(), "editor".into(), "64".into()],
                    vec!["license.revoke".into(), "editor".into(), "21".into()],
                    vec!["audit.export".into(), "viewer".into(), "7".into()],
                ],
            },
        },
        now() - Duration::seconds(3),
    );
    let host = host_snapshot(level);
    let fullest = host
        .disks
        .iter()
        .map(DiskUsage::used_pct)
        .fold(0.0, f64::max);
    readings(
        &mut state,
        "host",
        vec![
            Reading::number("host.cpu_pct", "host CPU", host.cpu_pct, "%")
                .with_rule(pct_rule(70.0, 85.0)),
            Reading::number(
                "host.mem_pct",
                "host memory",
                100.0 * host.mem_used_bytes / host.mem_total_bytes,
                "%",
            )
            .with_rule(pct_rule(80.0, 90.0)),
            Reading::number("host.disk_pct", "host disk", fullest, "%")
                .with_rule(pct_rule(80.0, 90.0)),
            Reading::number("host.load1", "host load 1m", host.load[0], "")
                .with_rule(Rule::warn_only(Threshold::above(4.0))),
        ],
        now() - Duration::seconds(2),
    );
    state.apply(
        Update::Host {
            source: "host".into(),
            snapshot: host,
        },
        now() - Duration::seconds(2),
    );
    let rows = containers(level);
    let backend_cpu = rows[0].cpu_pct.unwrap_or(0.0);
    readings(
        &mut state,
        "docker",
        vec![
            Reading::number("docker.backend.cpu_pct", "backend CPU", backend_cpu, "%")
                .with_rule(pct_rule(150.0, 300.0)),
            Reading::number(
                "docker.backend.restarts",
                "backend restarts",
                rows[0].restarts as f64,
                "",
            )
            .with_rule(Rule::warn_crit(
                Threshold::above(0.0),
                Threshold::above(2.0),
            )),
        ],
        now() - Duration::seconds(4),
    );
    state.apply(
        Update::Containers {
            source: "docker".into(),
            rows,
        },
        now() - Duration::seconds(4),
    );
    state.apply(Update::Logs(logs(level)), now() - Duration::seconds(1));
    state.apply(
        Update::Health {
            source: "app".into(),
            health: SourceHealth::Ok,
        },
        now() - Duration::seconds(1),
    );
    if level == Level::Crit {
        let at = now() - Duration::seconds(45);
        state.apply(
            Update::Service(service("tmws-api", "http", false, "503", Some(2400.0))),
            at,
        );
        readings(
            &mut state,
            "tmws-api",
            vec![
                Reading::number("tmws-api.up", "tmws-api up", 0.0, "")
                    .with_rule(Rule::crit_only(Threshold::below(1.0)).with_priority(Priority::P0)),
                Reading::number(
                    "tmws-api.health_ms",
                    "tmws-api health latency",
                    2400.0,
                    "ms",
                )
                .with_rule(pct_rule(500.0, 2000.0)),
            ],
            at,
        );
        state.alerts.acknowledge("host.mem_pct");
    }
    if level == Level::Warn {
        state.alerts.acknowledge("tmws.license.failure_pct_1h");
    }
    state
}

/// Every source failed before it produced anything.
fn failing() -> AppState {
    let mut state = connecting();
    let fail = |state: &mut AppState, source: &str, message: &str| {
        state.apply(
            Update::Health {
                source: source.into(),
                health: SourceHealth::Error {
                    message: message.into(),
                    retry_in_secs: Some(4),
                },
            },
            now(),
        );
    };
    fail(&mut state, "tmws", "no such table: security_audit_logs");
    fail(
        &mut state,
        "docker",
        "docker: connection refused (/var/run/docker.sock)",
    );
    fail(&mut state, "host", "ssh prod: connection refused");
    fail(
        &mut state,
        "app",
        "/var/log/tmws/app.jsonl: permission denied",
    );
    fail(
        &mut state,
        "tmws-api",
        "GET http://127.0.0.1:8000/health: connection refused",
    );
    fail(
        &mut state,
        "tmws-worker",
        "systemctl: unit tmws-worker.service not found",
    );
    state
}

/// Figures were read once, then the sources failed: figures stay, errors show.
fn stale() -> AppState {
    let mut state = deployment(Level::Ok);
    readings(
        &mut state,
        "tmws",
        vec![
            Reading::failed(
                "tmws.license.failure_pct_1h",
                "license validation failures 1h",
                "no such table: license_usage_history",
            ),
            Reading::failed(
                "tmws.db.integrity",
                "database integrity",
                "database is locked",
            ),
        ],
        now() - Duration::seconds(1),
    );
    let errors = [
        ("tmws", "database is locked"),
        ("docker", "docker: connection refused"),
        ("host", "ssh prod: connection reset"),
    ];
    for (source, message) in errors {
        state.apply(
            Update::Health {
                source: source.into(),
                health: SourceHealth::Error {
                    message: message.into(),
                    retry_in_secs: Some(8),
                },
            },
            now(),
        );
    }
    state
}

// ---------------------------------------------------------------- rendering

fn terminal(width: u16, height: u16) -> Terminal<TestBackend> {
    Terminal::new(TestBackend::new(width, height)).unwrap()
}

struct Opts {
    focused: bool,
    zoomed: bool,
}

const PLAIN: Opts = Opts {
    focused: false,
    zoomed: false,
};
const ZOOMED: Opts = Opts {
    focused: true,
    zoomed: true,
};

fn draw_pane(
    pane: PaneId,
    state: &AppState,
    ui: &UiState,
    theme: &Theme,
    (width, height): (u16, u16),
    opts: &Opts,
) -> Buffer {
    let mut terminal = terminal(width, height);
    terminal
        .draw(|frame| {
            let ctx = PaneContext {
                state,
                ui,
                theme,
                focused: opts.focused,
                zoomed: opts.zoomed,
                now: now(),
            };
            let area = frame.area();
            let pane = panes::pane(pane).expect("a listed pane");
            (pane.render)(frame, area, &ctx);
        })
        .unwrap();
    terminal.backend().buffer().clone()
}

fn draw_screen(state: &AppState, ui: &UiState, theme: &Theme, width: u16, height: u16) -> Buffer {
    let mut terminal = terminal(width, height);
    terminal
        .draw(|frame| ui::draw(frame, state, ui, theme, now()))
        .unwrap();
    terminal.backend().buffer().clone()
}

/// The buffer's text, one line per row, trailing blanks cut.
fn text(buffer: &Buffer) -> String {
    let area = buffer.area;
    let mut out = String::new();
    for y in area.top()..area.bottom() {
        let mut line = String::new();
        for x in area.left()..area.right() {
            line.push_str(buffer[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Where `needle` starts on screen (first match, by row).
fn find(buffer: &Buffer, needle: &str) -> Option<(u16, u16)> {
    let area = buffer.area;
    for y in area.top()..area.bottom() {
        let cells: Vec<(u16, String)> = (area.left()..area.right())
            .map(|x| (x, buffer[(x, y)].symbol().to_string()))
            .collect();
        let row: String = cells.iter().map(|(_, s)| s.as_str()).collect();
        if let Some(byte) = row.find(needle) {
            let mut seen = 0;
            for (x, s) in &cells {
                if seen == byte {
                    return Some((*x, y));
                }
                seen += s.len();
            }
        }
    }
    None
}

fn theme() -> Theme {
    Theme::built_in("default").unwrap()
}

/// The size each pane gets in the 80x24 overview.
fn overview_size(pane: PaneId) -> (u16, u16) {
    let body = Rect::new(0, 1, 80, 22);
    ui::overview_layout(body)
        .into_iter()
        .find(|(p, _)| *p == pane)
        .map_or((80, 22), |(_, r)| (r.width, r.height))
}

/// A pane in every state at its 80x24 overview size, stacked with labels.
fn states_sheet(pane: PaneId) -> String {
    let theme = theme();
    let ui = UiState::default();
    let size = overview_size(pane);
    let cases: Vec<(&str, AppState)> = vec![
        ("ok", deployment(Level::Ok)),
        ("warn", deployment(Level::Warn)),
        ("crit", deployment(Level::Crit)),
        ("source error, no data", failing()),
        ("source error, stale data", stale()),
        ("connecting", connecting()),
        ("not configured", AppState::new(window())),
    ];
    let mut out = format!("{} at {}x{}\n", pane.title(), size.0, size.1);
    for (name, state) in cases {
        out.push_str(&format!("── {name}\n"));
        out.push_str(&text(&draw_pane(pane, &state, &ui, &theme, size, &PLAIN)));
    }
    out
}

fn zoomed_sheet(pane: PaneId, width: u16, height: u16) -> String {
    let theme = theme();
    let ui = UiState::default();
    let mut out = String::new();
    for (name, state) in [
        ("ok", deployment(Level::Ok)),
        ("crit", deployment(Level::Crit)),
    ] {
        out.push_str(&format!("── {name}, zoomed {width}x{height}\n"));
        out.push_str(&text(&draw_pane(
            pane,
            &state,
            &ui,
            &theme,
            (width, height),
            &ZOOMED,
        )));
    }
    out
}

// ---------------------------------------------------------------- snapshots per pane

#[test]
fn services_states() {
    insta::assert_snapshot!(states_sheet(PaneId::Services));
    insta::assert_snapshot!(zoomed_sheet(PaneId::Services, 100, 16));
}

#[test]
fn rbac_states() {
    insta::assert_snapshot!(states_sheet(PaneId::Rbac));
    insta::assert_snapshot!(zoomed_sheet(PaneId::Rbac, 80, 16));
}

#[test]
fn license_states() {
    insta::assert_snapshot!(states_sheet(PaneId::License));
    insta::assert_snapshot!(zoomed_sheet(PaneId::License, 80, 14));
}

#[test]
fn containers_states() {
    insta::assert_snapshot!(states_sheet(PaneId::Containers));
    insta::assert_snapshot!(zoomed_sheet(PaneId::Containers, 120, 12));
}

#[test]
fn host_states() {
    insta::assert_snapshot!(states_sheet(PaneId::Host));
    insta::assert_snapshot!(zoomed_sheet(PaneId::Host, 80, 14));
}

#[test]
fn errors_states() {
    insta::assert_snapshot!(states_sheet(PaneId::Errors));
    insta::assert_snapshot!(zoomed_sheet(PaneId::Errors, 120, 16));
}

#[test]
fn alerts_states() {
    insta::assert_snapshot!(states_sheet(PaneId::Alerts));
    insta::assert_snapshot!(zoomed_sheet(PaneId::Alerts, 110, 14));
}

/// Alerts with long figure names, as a compose project's containers and a log metric
/// give them, beside a source error whose reason is long.
fn long_named_alerts() -> AppState {
    let mut state = deployment(Level::Crit);
    readings(
        &mut state,
        "warungin",
        vec![
            Reading::number(
                "warungin.warungin-backend-worker-1.restarts",
                "warungin-backend-worker-1 restarts",
                4.0,
                "",
            )
            .with_rule(Rule::warn_crit(
                Threshold::above(0.0),
                Threshold::above(2.0),
            )),
        ],
        now() - Duration::seconds(90),
    );
    readings(
        &mut state,
        "app",
        vec![
            Reading::number(
                "app.checkout_latency_p95",
                "app p95 of checkout latency_ms (5m)",
                2842.0,
                "ms",
            )
            .with_rule(pct_rule(1000.0, 2000.0)),
        ],
        now() - Duration::seconds(30),
    );
    state.apply(
        Update::Health {
            source: "prod-metrics".into(),
            health: SourceHealth::Error {
                message: "GET http://127.0.0.1:9090/api/v1/query: connection refused".into(),
                retry_in_secs: Some(4),
            },
        },
        now() - Duration::seconds(20),
    );
    state
}

/// At 120 columns the Alerts pane is 48 wide: a figure's name keeps its room before the
/// value column grows (a long value is cut first), and zoomed the whole name shows.
#[test]
fn alert_names_stay_readable_at_120_columns() {
    let state = long_named_alerts();
    let theme = theme();
    let ui = UiState::default();
    let (_, rect) = ui::overview_layout(Rect::new(0, 1, 120, 38))
        .into_iter()
        .find(|(p, _)| *p == PaneId::Alerts)
        .unwrap();
    let size = (rect.width, rect.height);
    let overview = draw_pane(PaneId::Alerts, &state, &ui, &theme, size, &PLAIN);
    let zoomed = draw_pane(PaneId::Alerts, &state, &ui, &theme, (120, 18), &ZOOMED);
    let screen = text(&overview);
    // Names that fit are whole; numbers are never cut.
    for whole in [
        "tmws-api health latency",
        "RBAC deny rate 1h",
        "2842 ms",
        "2400 ms",
    ] {
        assert!(screen.contains(whole), "{whole}\n{screen}");
    }
    // Longer names keep both ends: what (the subject) and which figure.
    for name in [
        "warungin-backend-worker-1 restarts",
        "app p95 of checkout latency_ms (5m)",
        "license validation failures 1h",
        "expired licenses not revoked",
    ] {
        let (head, tail) = (&name[..10], &name[name.len() - 8..]);
        assert!(
            screen
                .lines()
                .any(|l| l.contains(name)
                    || (l.contains(head) && l.contains('…') && l.contains(tail))),
            "{name}\n{screen}"
        );
        assert!(find(&zoomed, name).is_some(), "{name}\n{}", text(&zoomed));
    }
    let mut out = format!("── overview at 120x40: Alerts {}x{}\n", size.0, size.1);
    out.push_str(&text(&overview));
    out.push_str("── zoomed 120x18\n");
    out.push_str(&text(&zoomed));
    insta::assert_snapshot!(out);
}

#[test]
fn window_states() {
    insta::assert_snapshot!(zoomed_sheet(PaneId::Window, 100, 20));
    insta::assert_snapshot!(zoomed_sheet(PaneId::Window, 50, 24));
}

#[test]
fn header_states() {
    let theme = theme();
    let mut out = String::new();
    let paused = UiState {
        paused: true,
        ..UiState::default()
    };
    let cases: Vec<(&str, AppState, UiState)> = vec![
        ("ok", deployment(Level::Ok), UiState::default()),
        ("crit", deployment(Level::Crit), UiState::default()),
        ("crit, paused", deployment(Level::Crit), paused),
        ("connecting", connecting(), UiState::default()),
        ("failing", failing(), UiState::default()),
    ];
    for (name, state, ui) in cases {
        for width in [200, 80, 40, 12] {
            out.push_str(&format!("── {name} at {width}\n"));
            out.push_str(&text(&draw_pane_header(&state, &ui, &theme, width)));
        }
    }
    insta::assert_snapshot!(out);
}

fn draw_pane_header(state: &AppState, ui: &UiState, theme: &Theme, width: u16) -> Buffer {
    let mut terminal = terminal(width, 1);
    terminal
        .draw(|frame| {
            let ctx = PaneContext {
                state,
                ui,
                theme,
                focused: false,
                zoomed: false,
                now: now(),
            };
            panes::header::render(frame, frame.area(), &ctx);
        })
        .unwrap();
    terminal.backend().buffer().clone()
}

#[test]
fn rbac_drilldown_in_the_overview() {
    let ui = UiState {
        views: drilled(),
        ..UiState::default()
    };
    let buffer = draw_pane(
        PaneId::Rbac,
        &deployment(Level::Crit),
        &ui,
        &theme(),
        (40, 9),
        &Opts {
            focused: true,
            zoomed: false,
        },
    );
    insta::assert_snapshot!(text(&buffer));
    assert!(find(&buffer, "license.revoke").is_some());
}

// ---------------------------------------------------------------- tiny sizes

#[test]
fn every_pane_survives_every_small_size() {
    let theme = theme();
    let states = [
        deployment(Level::Crit),
        deployment(Level::Ok),
        failing(),
        connecting(),
        AppState::new(window()),
    ];
    let ui = UiState {
        views: drilled(),
        selected: 99,
        ..UiState::default()
    };
    for state in &states {
        for pane in panes::panes().iter().copied() {
            for width in 0..=14 {
                for height in 0..=6 {
                    for opts in [&PLAIN, &ZOOMED] {
                        draw_pane(pane, state, &ui, &theme, (width, height), opts);
                    }
                }
            }
        }
        for (width, height) in [
            (0, 0),
            (1, 1),
            (2, 1),
            (1, 30),
            (300, 1),
            (29, 7),
            (30, 8),
            (31, 9),
        ] {
            draw_screen(state, &UiState::default(), &theme, width, height);
            let help = UiState {
                help: true,
                ..UiState::default()
            };
            draw_screen(state, &help, &theme, width, height);
        }
    }
}

#[test]
fn tiny_panes_say_something() {
    let theme = theme();
    let ui = UiState::default();
    let state = deployment(Level::Crit);
    let mut out = String::new();
    for pane in panes::panes().iter().copied() {
        for size in [(10, 3), (16, 4), (1, 1)] {
            out.push_str(&format!("── {} at {}x{}\n", pane.title(), size.0, size.1));
            out.push_str(&text(&draw_pane(pane, &state, &ui, &theme, size, &PLAIN)));
        }
    }
    insta::assert_snapshot!(out);
    // At 16x4 a pane still shows its number and name.
    let buffer = draw_pane(PaneId::Rbac, &state, &ui, &theme, (16, 4), &PLAIN);
    assert!(text(&buffer).contains("2 RBAC"), "{}", text(&buffer));
}

// ---------------------------------------------------------------- whole screen

#[test]
fn screen_80x24() {
    let theme = theme();
    let ui = UiState::default();
    insta::assert_snapshot!(
        "screen_80x24_ok",
        text(&draw_screen(&deployment(Level::Ok), &ui, &theme, 80, 24))
    );
    insta::assert_snapshot!(
        "screen_80x24_crit",
        text(&draw_screen(&deployment(Level::Crit), &ui, &theme, 80, 24))
    );
    insta::assert_snapshot!(
        "screen_80x24_failing",
        text(&draw_screen(&failing(), &ui, &theme, 80, 24))
    );
    insta::assert_snapshot!(
        "screen_80x24_connecting",
        text(&draw_screen(&connecting(), &ui, &theme, 80, 24))
    );
}

#[test]
fn screen_200x60() {
    let theme = theme();
    let ui = UiState {
        focus: PaneId::Alerts,
        ..UiState::default()
    };
    insta::assert_snapshot!(text(&draw_screen(
        &deployment(Level::Crit),
        &ui,
        &theme,
        200,
        60
    )));
}

#[test]
fn screen_tiny() {
    let theme = theme();
    let ui = UiState::default();
    insta::assert_snapshot!(text(&draw_screen(
        &deployment(Level::Crit),
        &ui,
        &theme,
        20,
        5
    )));
}

#[test]
fn screen_zoomed_and_help() {
    let theme = theme();
    let state = deployment(Level::Crit);
    let mut ui = UiState {
        focus: PaneId::Rbac,
        zoomed: true,
        ..UiState::default()
    };
    insta::assert_snapshot!(
        "screen_zoomed_rbac",
        text(&draw_screen(&state, &ui, &theme, 80, 24))
    );
    ui.focus = PaneId::Window;
    insta::assert_snapshot!(
        "screen_zoomed_window",
        text(&draw_screen(&state, &ui, &theme, 80, 24))
    );
    let help = UiState {
        help: true,
        ..UiState::default()
    };
    let buffer = draw_screen(&state, &help, &theme, 80, 24);
    insta::assert_snapshot!("screen_help", text(&buffer));
    let screen = text(&buffer);
    for row in ui::keys::help_rows() {
        assert!(screen.contains(&row.keys), "help lacks {:?}", row.keys);
    }
}

// ---------------------------------------------------------------- styles

#[test]
fn crit_deny_rate_is_drawn_in_the_crit_style() {
    let theme = theme();
    let ui = UiState::default();
    let buffer = draw_pane(
        PaneId::Rbac,
        &deployment(Level::Crit),
        &ui,
        &theme,
        (30, 7),
        &PLAIN,
    );
    let (x, y) = find(&buffer, "62.4%").expect("deny rate on screen");
    let cell = &buffer[(x, y)];
    assert_eq!(Some(cell.fg), theme.crit.fg);
    assert!(cell.modifier.contains(Modifier::BOLD));
    let (x, y) = find(&buffer, "✖ CRIT").expect("severity word on screen");
    assert_eq!(Some(buffer[(x, y)].fg), theme.crit.fg);

    let buffer = draw_pane(
        PaneId::Rbac,
        &deployment(Level::Ok),
        &ui,
        &theme,
        (30, 7),
        &PLAIN,
    );
    let (x, y) = find(&buffer, "8.2%").expect("deny rate on screen");
    assert_eq!(Some(buffer[(x, y)].fg), theme.ok.fg);
}

#[test]
fn focused_pane_has_the_focused_border() {
    let theme = theme();
    let state = deployment(Level::Ok);
    let ui = UiState {
        focus: PaneId::Rbac,
        ..UiState::default()
    };
    let buffer = draw_screen(&state, &ui, &theme, 80, 24);
    let layout = ui::overview_layout(Rect::new(0, 1, 80, 22));
    for (pane, rect) in layout {
        let corner = &buffer[(rect.x, rect.y)];
        let expected = if pane == PaneId::Rbac {
            theme.border_focused
        } else {
            theme.border
        };
        assert_eq!(Some(corner.fg), expected.fg, "{pane:?} border");
        let (bx, by) = (rect.x, rect.y + rect.height / 2);
        assert_eq!(
            Some(buffer[(bx, by)].fg),
            expected.fg,
            "{pane:?} left border"
        );
    }
    assert!(text(&buffer).contains("▶2 RBAC"));
}

#[test]
fn selected_alert_row_is_reversed() {
    let theme = theme();
    let state = deployment(Level::Crit);
    assert!(state.alerts.active.len() >= 3);
    let ui = UiState {
        selected: 1,
        ..UiState::default()
    };
    let focused = Opts {
        focused: true,
        zoomed: false,
    };
    let buffer = draw_pane(PaneId::Alerts, &state, &ui, &theme, (60, 12), &focused);
    let second = &state.alerts.active[1].name;
    let (_, y) = find(&buffer, second).expect("second alert on screen");
    for x in 1..59 {
        assert!(
            buffer[(x, y)].modifier.contains(Modifier::REVERSED),
            "cell {x} of the selected row is not reversed"
        );
    }
    let first = &state.alerts.active[0].name;
    let (_, y0) = find(&buffer, first).unwrap();
    assert!(!buffer[(2, y0)].modifier.contains(Modifier::REVERSED));

    // Unfocused: no selection shown.
    let buffer = draw_pane(PaneId::Alerts, &state, &ui, &theme, (60, 12), &PLAIN);
    let (_, y) = find(&buffer, second).unwrap();
    assert!(!buffer[(2, y)].modifier.contains(Modifier::REVERSED));
}

#[test]
fn alerts_list_the_worst_first_with_priority() {
    let state = deployment(Level::Crit);
    let buffer = draw_pane(
        PaneId::Alerts,
        &state,
        &UiState::default(),
        &theme(),
        (70, 14),
        &PLAIN,
    );
    let screen = text(&buffer);
    let p0 = find(&buffer, "P0").expect("a P0 alert").1;
    let p2 = find(&buffer, "P2").expect("a P2 alert").1;
    assert!(p0 < p2, "{screen}");
    assert!(screen.contains("ACK"), "{screen}");
    assert!(screen.contains("✖ CRIT"), "{screen}");
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
fn monochrome_has_no_colour_anywhere() {
    let theme = Theme::built_in("monochrome").unwrap();
    let ui = UiState {
        focus: PaneId::Alerts,
        ..UiState::default()
    };
    for (state, symbol) in [
        (deployment(Level::Crit), "✖ CRIT"),
        (stale(), "? "),
        (failing(), ""),
    ] {
        for (w, h) in [(80, 24), (200, 60)] {
            let buffer = draw_screen(&state, &ui, &theme, w, h);
            for cell in buffer.content() {
                assert_eq!(cell.fg, Color::Reset, "a cell has a colour: {cell:?}");
                assert_eq!(cell.bg, Color::Reset, "a cell has a colour: {cell:?}");
            }
            // Severity survives without colour: symbols and words.
            let screen = text(&buffer);
            assert!(screen.contains(symbol), "{screen}");
        }
    }
}

#[test]
fn foreign_text_is_sanitized_everywhere() {
    let mut state = deployment(Level::Crit);
    let evil = "evil\x1b]0;pwned\x07\x1b[2J\u{9b}31m\r\nname";
    let mut rows = containers(Level::Ok);
    rows[0].name = evil.into();
    rows[0].project = evil.into();
    state.apply(
        Update::Containers {
            source: "docker".into(),
            rows,
        },
        now(),
    );
    state.apply(
        Update::Logs(vec![log(now(), LogLevel::Error, evil, evil)]),
        now(),
    );
    state.apply(
        Update::Service(service(evil, evil, false, evil, None)),
        now(),
    );
    state.apply(
        Update::Table {
            id: "tmws.rbac.top_denied".into(),
            table: Table {
                title: evil.into(),
                columns: vec![evil.into(), "role".into(), "denies".into()],
                rows: vec![vec![evil.into(), evil.into(), evil.into()]],
            },
        },
        now(),
    );
    state.window.deployment = evil.into();
    let mut ui = UiState {
        zoomed: true,
        views: drilled(),
        ..UiState::default()
    };
    for pane in panes::panes().iter().copied() {
        ui.focus = pane;
        for (w, h) in [(80, 24), (200, 60)] {
            let buffer = draw_screen(&state, &ui, &theme(), w, h);
            for cell in buffer.content() {
                assert!(
                    !cell.symbol().chars().any(char::is_control),
                    "{pane:?}: control character {:?} on screen",
                    cell.symbol()
                );
            }
        }
    }
}

// ---------------------------------------------------------------- behaviour

#[test]
fn errors_pane_filters_scrolls_and_says_so() {
    let theme = theme();
    let state = deployment(Level::Crit);
    let size = (70, 8);
    let opts = Opts {
        focused: true,
        zoomed: false,
    };
    let mut ui = UiState::default();
    let follow = text(&draw_pane(PaneId::Errors, &state, &ui, &theme, size, &opts));
    assert!(follow.contains("FOLLOW"), "{follow}");
    assert!(
        !follow.contains("server started"),
        "info lines hidden by default: {follow}"
    );
    assert!(follow.contains("CRIT"), "{follow}");

    ui.views.errors.errors_only = false;
    ui.views.errors.scroll = 5;
    ui.views.errors.anchor = Some(state.logs.pushed());
    let scrolled = text(&draw_pane(PaneId::Errors, &state, &ui, &theme, size, &opts));
    assert!(scrolled.contains("PAUSED ↑5"), "{scrolled}");
    assert!(scrolled.contains("all lines"), "{scrolled}");

    // Scrolling past the oldest line stops at the oldest line.
    ui.views.errors.scroll = 10_000;
    let top = text(&draw_pane(PaneId::Errors, &state, &ui, &theme, size, &opts));
    assert!(top.contains("server started"), "{top}");

    ui.views.errors.scroll = 0;
    ui.views.errors.anchor = None;
    ui.views.errors.filter = LogFilter::parse("redis");
    let filtered = text(&draw_pane(PaneId::Errors, &state, &ui, &theme, size, &opts));
    assert!(filtered.contains("connection reset"), "{filtered}");
    assert!(!filtered.contains("database is locked"), "{filtered}");
    assert!(filtered.contains("filter: redis"), "{filtered}");

    ui.views.errors.filter = LogFilter::parse("no-such-thing");
    let none = text(&draw_pane(PaneId::Errors, &state, &ui, &theme, size, &opts));
    assert!(
        none.contains("no lines match filter no-such-thing"),
        "{none}"
    );

    ui.views.errors.filter = LogFilter::default();
    ui.views.errors.errors_only = true;
    let ok = text(&draw_pane(
        PaneId::Errors,
        &{
            let mut s = connecting();
            s.apply(
                Update::Logs(vec![log(now(), LogLevel::Info, "app", "all quiet")]),
                now(),
            );
            s
        },
        &ui,
        &theme,
        size,
        &opts,
    ));
    assert!(ok.contains("no error lines yet"), "{ok}");
    insta::assert_snapshot!(format!("{follow}{scrolled}{filtered}"));
}

#[test]
fn errors_pane_counts_dropped_lines() {
    let mut state = connecting();
    let lines: Vec<LogLine> = (0..watchpost::state::logbuf::DEFAULT_CAPACITY + 7)
        .map(|i| {
            log(
                now() - Duration::seconds(i as i64 % 50),
                LogLevel::Error,
                "app",
                "boom",
            )
        })
        .collect();
    state.apply(Update::Logs(lines), now());
    let screen = text(&draw_pane(
        PaneId::Errors,
        &state,
        &UiState::default(),
        &theme(),
        (70, 6),
        &PLAIN,
    ));
    assert!(screen.contains("7 dropped"), "{screen}");
}

#[test]
fn header_says_paused_and_counts_unacked_alerts() {
    let state = deployment(Level::Crit);
    let ui = UiState {
        paused: true,
        ..UiState::default()
    };
    let line = text(&draw_pane_header(&state, &ui, &theme(), 120));
    assert!(line.contains("PAUSED"), "{line}");
    assert!(line.contains("T+02:14 / 24h"), "{line}");
    assert!(line.contains("next check T+03:00 in 46m"), "{line}");
    let unacked = state.alerts.unacknowledged();
    assert!(line.contains(&format!("{unacked} alerts")), "{line}");
    assert!(line.contains("✖ CRIT"), "{line}");
    // Narrow: the severity and PAUSED stay, the rest goes first.
    let narrow = text(&draw_pane_header(&state, &ui, &theme(), 20));
    assert!(
        narrow.contains("PAUSED") && narrow.contains("✖ CRIT"),
        "{narrow}"
    );
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

#[test]
fn resolved_alerts_follow_the_active_ones_in_the_selection() {
    let state = deployment(Level::Ok);
    assert!(state.alerts.active.is_empty());
    assert_eq!(state.alerts.resolved.len(), 1);
    assert_eq!(panes::alerts::listed(&state).len(), 1);
    let ui = UiState {
        selected: 0,
        ..UiState::default()
    };
    let focused = Opts {
        focused: true,
        zoomed: false,
    };
    let buffer = draw_pane(PaneId::Alerts, &state, &ui, &theme(), (60, 6), &focused);
    let screen = text(&buffer);
    assert!(screen.contains("no alerts — all figures OK"), "{screen}");
    let (x, y) = find(&buffer, "ok 6m ago").expect("resolved alert listed");
    assert!(
        buffer[(x, y)].modifier.contains(Modifier::REVERSED),
        "{screen}"
    );
    let (x, y) = find(&buffer, "no alerts").unwrap();
    assert_eq!(Some(buffer[(x, y)].fg), theme().ok.fg);
}

#[test]
fn drilldown_shows_only_while_rbac_is_focused() {
    let state = deployment(Level::Crit);
    let ui = UiState {
        views: drilled(),
        ..UiState::default()
    };
    let screen = text(&draw_pane(
        PaneId::Rbac,
        &state,
        &ui,
        &theme(),
        (40, 9),
        &PLAIN,
    ));
    assert!(!screen.contains("license.generate"), "{screen}");
    assert!(screen.contains("trend"), "{screen}");
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

// ---------------------------------------------------------------- containers: sort, zoom

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
            error: (level == Level::Crit)
                .then(|| "docker logs: the engine answered 501: no logs with driver none".into()),
        }),
        now(),
    );
    state
}

/// The RBAC pane drilled down (its table in place of the summary).
fn drilled() -> panes::Views {
    panes::Views {
        rbac: panes::rbac::RbacView { drilldown: true },
        ..panes::Views::default()
    }
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
    panes::containers::listed(state, ui)
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

// ---------------------------------------------------------------- the Errors pane's views

/// Seed 002's JSON lines and two other sources, through the real parser.
fn errors_triage_state() -> AppState {
    let pattern = regex::RegexBuilder::new("error|exception|failed|critical|fatal|panic")
        .case_insensitive(true)
        .build()
        .unwrap();
    let mut state = connecting();
    state.register_source(PaneId::Errors, "tmws");
    state.register_source(PaneId::Errors, "nginx");
    let raw = [
        (
            "tmws",
            r#"{"timestamp": "2026-11-23T11:50:00Z", "level": "ERROR", "message": "Failed to call MCP tool", "tool_name": "get-library-docs", "outcome": "timeout", "latency_ms": 30012.0, "error_type": "TimeoutError"}"#,
        ),
        (
            "tmws",
            r#"{"timestamp": "2026-11-23T11:52:00Z", "level": "WARNING", "message": "Skill activation denied", "security_event": "SKILL_ACTIVATION_DENIED", "agent_id": "agent-17"}"#,
        ),
        (
            "nginx",
            "2026/11/23 11:55:00 [error] 1234#0: *88 connect() failed (111: Connection refused) while connecting to upstream, client: 10.0.3.7",
        ),
        (
            "tmws",
            r#"{"timestamp": "2026-11-23T11:58:00Z", "level": "ERROR", "message": "Scheduled expiration cleanup failed", "error_type": "OperationalError", "total_cleanups_attempted": 3, "monitoring_event": "SCHEDULER_CLEANUP_FAILED"}"#,
        ),
        (
            "tmws",
            r#"{"timestamp": "2026-11-23T11:59:00Z", "level": "ERROR", "message": "Failed to call MCP tool", "tool_name": "search_memories", "outcome": "timeout", "latency_ms": 31877.5, "error_type": "TimeoutError"}"#,
        ),
    ];
    let lines = raw
        .iter()
        .map(|(source, text)| {
            watchpost::collect::logs::parse::parse_line(
                *source,
                text.as_bytes(),
                0,
                &pattern,
                now(),
            )
        })
        .collect();
    state.apply(Update::Logs(lines), now());
    state
}

/// The Errors pane's text in the default theme.
fn errors_text(state: &AppState, ui: &UiState, size: (u16, u16), opts: &Opts) -> String {
    text(&draw_pane(PaneId::Errors, state, ui, &theme(), size, opts))
}

const FOCUSED_ZOOMED: Opts = Opts {
    focused: true,
    zoomed: true,
};

fn errors_ui(f: impl FnOnce(&mut UiState)) -> UiState {
    let mut ui = UiState {
        focus: PaneId::Errors,
        zoomed: true,
        ..UiState::default()
    };
    f(&mut ui);
    ui
}

#[test]
fn errors_tail_is_merged_in_time_order_with_a_stable_colour_per_source() {
    let theme = theme();
    let mut state = errors_triage_state();
    // A source that is late: its line goes where its time puts it, not at the bottom.
    state.apply(
        Update::Logs(vec![log(
            now() - Duration::minutes(7),
            LogLevel::Error,
            "worker",
            "late worker error",
        )]),
        now(),
    );
    let ui = errors_ui(|ui| ui.views.errors.errors_only = false);
    let buffer = draw_pane(
        PaneId::Errors,
        &state,
        &ui,
        &theme,
        (110, 16),
        &FOCUSED_ZOOMED,
    );
    let screen = text(&buffer);
    let rows: Vec<u16> = ["11:50:00", "11:53:00", "11:55:00", "11:58:00", "11:59:00"]
        .iter()
        .map(|t| {
            find(&buffer, &format!("{t} "))
                .unwrap_or_else(|| panic!("{t}: {screen}"))
                .1
        })
        .collect();
    assert!(rows.windows(2).all(|w| w[0] < w[1]), "time order: {screen}");
    // Each source's name is drawn in its own colour wherever it appears, and the two
    // sources differ.
    let style_of = |needle: &str| {
        // In a line of the tail (after its time), not in the title.
        let (x, y) = find(&buffer, &format!(":00 {needle}")).unwrap();
        buffer[(x + 4, y)].fg
    };
    let tmws_rows: Vec<u16> = screen
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(":00 tmws "))
        .map(|(y, _)| y as u16)
        .collect();
    assert!(tmws_rows.len() >= 2, "{screen}");
    let x_source = find(&buffer, "11:50:00").unwrap().0 + 9;
    let colours: Vec<_> = tmws_rows
        .iter()
        .map(|y| buffer[(x_source, *y)].fg)
        .collect();
    assert!(colours.windows(2).all(|w| w[0] == w[1]), "{colours:?}");
    // In the order the sources are configured: app, tmws, nginx.
    assert_eq!(colours[0], theme.sources[1].fg.unwrap_or(Color::Reset));
    assert_ne!(style_of("nginx"), style_of("tmws"));
    // The level column carries the level's style.
    let (x, y) = find(&buffer, "ERROR").unwrap();
    assert_eq!(buffer[(x, y)].fg, theme.crit.fg.unwrap_or(Color::Reset));
    let (x, y) = find(&buffer, "WARN ").unwrap();
    assert_eq!(buffer[(x, y)].fg, theme.warn.fg.unwrap_or(Color::Reset));
}

#[test]
fn errors_pane_follows_then_holds_still_when_scrolled_back() {
    let theme = theme();
    let mut state = errors_triage_state();
    let size = (100, 9);
    let following = errors_ui(|ui| ui.zoomed = false);
    let screen = errors_text(&state, &following, size, &FOCUSED_PLAIN);
    assert!(screen.contains("FOLLOW"), "{screen}");

    // Scrolled back two lines: paused at what was there.
    let paused = errors_ui(|ui| {
        ui.zoomed = false;
        ui.views.errors.scroll = 2;
        ui.views.errors.anchor = Some(state.logs.pushed());
    });
    let before = draw_pane(
        PaneId::Errors,
        &state,
        &paused,
        &theme,
        size,
        &FOCUSED_PLAIN,
    );
    let before_text = text(&before);
    assert!(before_text.contains("PAUSED ↑2"), "{before_text}");
    // The selected line (two back from the newest: the 11:55 nginx line) is reversed.
    let (_, y) = find(&before, "11:55:00").unwrap();
    for x in 1..99 {
        assert!(
            before[(x, y)].modifier.contains(Modifier::REVERSED),
            "cell {x} of the selected line: {before_text}"
        );
    }
    let (_, y_newest) = find(&before, "11:59:00").unwrap();
    assert!(!before[(2, y_newest)].modifier.contains(Modifier::REVERSED));

    // New lines arrive, faster than anyone reads: the view holds still and counts them.
    let burst: Vec<LogLine> = (0..40)
        .map(|i| log(now(), LogLevel::Error, "tmws", &format!("burst line {i}")))
        .collect();
    state.apply(Update::Logs(burst), now());
    let after = errors_text(&state, &paused, size, &FOCUSED_PLAIN);
    assert!(after.contains("PAUSED ↑2 · 40 new"), "{after}");
    assert!(!after.contains("burst line"), "{after}");
    let body = |t: &str| t.lines().skip(1).take(6).collect::<Vec<_>>().join("\n");
    assert_eq!(body(&before_text), body(&after));

    // Following again shows the newest.
    let followed = errors_text(&state, &following, size, &FOCUSED_PLAIN);
    assert!(followed.contains("burst line 39"), "{followed}");
    assert!(followed.contains("FOLLOW"), "{followed}");
    insta::assert_snapshot!(format!("{screen}{before_text}{after}{followed}"));
}

const FOCUSED_PLAIN: Opts = Opts {
    focused: true,
    zoomed: false,
};

#[test]
fn errors_pane_filters_exclude_level_and_source() {
    let state = errors_triage_state();
    let size = (110, 10);
    let draw = |filter: &str| {
        let ui = errors_ui(|ui| {
            ui.zoomed = false;
            ui.views.errors.errors_only = false;
            ui.views.errors.filter = LogFilter::parse(filter);
        });
        errors_text(&state, &ui, size, &FOCUSED_PLAIN)
    };
    let excluded = draw("!mcp");
    assert!(!excluded.contains("Failed to call MCP tool"), "{excluded}");
    assert!(excluded.contains("cleanup failed"), "{excluded}");
    let level = draw("level:error");
    assert!(!level.contains("Skill activation denied"), "{level}");
    assert!(level.contains("connect() failed"), "{level}");
    let source = draw("source:nginx");
    assert!(source.contains("connect() failed"), "{source}");
    assert!(!source.contains("MCP"), "{source}");
    let combined = draw("fail !cleanup source:tmws");
    assert!(combined.contains("Failed to call MCP tool"), "{combined}");
    assert!(!combined.contains("cleanup failed"), "{combined}");
    assert!(!combined.contains("connect()"), "{combined}");
    let bad = draw("(unclosed");
    assert!(bad.contains("filter error: bad regex"), "{bad}");
    insta::assert_snapshot!(format!("{excluded}{level}{source}{combined}{bad}"));
}

#[test]
fn errors_pane_wraps_long_lines_when_asked() {
    let mut state = connecting();
    let long = format!("start of a long message {} end-of-message", "x".repeat(150));
    state.apply(
        Update::Logs(vec![log(now(), LogLevel::Error, "app", &long)]),
        now(),
    );
    let size = (60, 8);
    let cut_ui = errors_ui(|ui| ui.zoomed = false);
    let cut = errors_text(&state, &cut_ui, size, &FOCUSED_PLAIN);
    assert!(cut.contains("start of a long"), "{cut}");
    assert!(cut.contains('…'), "{cut}");
    assert!(!cut.contains("end-of-message"), "{cut}");
    let wrap_ui = errors_ui(|ui| {
        ui.zoomed = false;
        ui.views.errors.wrap = true;
    });
    let wrapped = errors_text(&state, &wrap_ui, size, &FOCUSED_PLAIN);
    assert!(wrapped.contains("end-of-message"), "{wrapped}");
    assert!(wrapped.contains("· wrap"), "{wrapped}");
    insta::assert_snapshot!(format!("{cut}{wrapped}"));
}

#[test]
fn enter_on_a_line_shows_all_its_fields() {
    let theme = theme();
    let state = errors_triage_state();
    // The newest error but one: the scheduler cleanup failure.
    let ui = errors_ui(|ui| {
        ui.views.errors.scroll = 1;
        ui.views.errors.anchor = Some(state.logs.pushed());
        ui.views.errors.detail = true;
    });
    let buffer = draw_pane(
        PaneId::Errors,
        &state,
        &ui,
        &theme,
        (100, 20),
        &FOCUSED_ZOOMED,
    );
    let screen = text(&buffer);
    for needle in [
        "line fields",
        "2026-11-23 11:58:00.000 UTC",
        "Scheduled expiration cleanup failed",
        "monitoring_event",
        "SCHEDULER_CLEANUP_FAILED",
        "error_type",
        "OperationalError",
        "total_cleanups_attempted",
        "Esc closes",
    ] {
        assert!(screen.contains(needle), "{needle}: {screen}");
    }
    // Every field of seed 002's tool-timeout line, on the newest line.
    let ui = errors_ui(|ui| {
        ui.views.errors.anchor = Some(state.logs.pushed());
        ui.views.errors.detail = true;
    });
    let newest = errors_text(&state, &ui, (100, 20), &FOCUSED_ZOOMED);
    for needle in [
        "tool_name",
        "search_memories",
        "outcome",
        "timeout",
        "latency_ms",
        "31877.5",
        "TimeoutError",
    ] {
        assert!(newest.contains(needle), "{needle}: {newest}");
    }
    let (x, y) = find(&buffer, "monitoring_event").unwrap();
    assert_eq!(buffer[(x, y)].fg, theme.accent.fg.unwrap_or(Color::Reset));
    // The security event of the warning line.
    let ui = errors_ui(|ui| {
        ui.views.errors.errors_only = false;
        ui.views.errors.scroll = 3;
        ui.views.errors.anchor = Some(state.logs.pushed());
        ui.views.errors.detail = true;
    });
    let warning = errors_text(&state, &ui, (100, 20), &FOCUSED_ZOOMED);
    assert!(warning.contains("security_event"), "{warning}");
    assert!(warning.contains("SKILL_ACTIVATION_DENIED"), "{warning}");
    insta::assert_snapshot!(format!("{screen}{newest}"));
}

#[test]
fn zoomed_errors_show_a_sparkline_per_source() {
    let theme = theme();
    let state = errors_triage_state();
    let ui = errors_ui(|_| {});
    let buffer = draw_pane(
        PaneId::Errors,
        &state,
        &ui,
        &theme,
        (100, 20),
        &FOCUSED_ZOOMED,
    );
    let screen = text(&buffer);
    // tmws: 3 errors in the last half hour, nginx 1; app has none.
    assert!(screen.contains("3 in 30m"), "{screen}");
    assert!(screen.contains("1 in 30m"), "{screen}");
    assert!(screen.contains("0 in 30m"), "{screen}");
    let (x, y) = find(&buffer, "nginx").unwrap();
    assert_eq!(
        buffer[(x, y)].fg,
        theme.sources[2].fg.unwrap_or(Color::Reset)
    );
    // A source with errors has its sparkline in the warn style; one without, muted.
    let spark_x = x + 6;
    assert_eq!(
        buffer[(spark_x, y)].fg,
        theme.warn.fg.unwrap_or(Color::Reset)
    );
    let (x, y) = find(&buffer, "app ").unwrap();
    assert_eq!(
        buffer[(x + 6, y)].fg,
        theme.muted.fg.unwrap_or(Color::Reset)
    );
}

#[test]
fn top_patterns_view_counts_and_shows_one_example_each() {
    let theme = theme();
    let state = errors_triage_state();
    let ui = errors_ui(|ui| ui.views.errors.patterns = true);
    let buffer = draw_pane(
        PaneId::Errors,
        &state,
        &ui,
        &theme,
        (120, 14),
        &FOCUSED_ZOOMED,
    );
    let screen = text(&buffer);
    // The two tool timeouts are one pattern, counted twice, first and last seen.
    let (_, y) = find(&buffer, "Failed to call MCP tool").unwrap();
    let row = screen.lines().nth(y as usize).unwrap();
    assert!(row.contains("    2 11:50:00 11:59:00 tmws"), "{row}");
    assert!(screen.contains("TOP PATTERNS · 3"), "{screen}");
    // The nginx line is masked: its ids and address vary.
    assert!(
        screen.contains("*<num> connect() failed (<num>: Connection refused)"),
        "{screen}"
    );
    // The selected (first) pattern is reversed and its example is shown whole.
    assert!(buffer[(3, y)].modifier.contains(Modifier::REVERSED));
    assert!(screen.contains("example (Enter: every field)"), "{screen}");
    assert!(
        screen.contains("2026-11-23 11:50:00 tmws Failed to call MCP tool"),
        "{screen}"
    );
    // Enter on it: the example's every field.
    let detail_ui = errors_ui(|ui| {
        ui.views.errors.patterns = true;
        ui.views.errors.detail = true;
    });
    let detail = errors_text(&state, &detail_ui, (120, 14), &FOCUSED_ZOOMED);
    assert!(detail.contains("get-library-docs"), "{detail}");
    assert!(detail.contains("30012.0"), "{detail}");
    // Filtered.
    let filtered_ui = errors_ui(|ui| {
        ui.views.errors.patterns = true;
        ui.views.errors.filter = LogFilter::parse("source:nginx");
    });
    let filtered = errors_text(&state, &filtered_ui, (120, 14), &FOCUSED_ZOOMED);
    assert!(filtered.contains("TOP PATTERNS · 1"), "{filtered}");
    let none_ui = errors_ui(|ui| ui.views.errors.patterns = true);
    let empty = errors_text(&connecting(), &none_ui, (120, 6), &FOCUSED_ZOOMED);
    assert!(empty.contains("no patterns"), "{empty}");
    insta::assert_snapshot!(format!("{screen}{detail}{filtered}{empty}"));
}

#[test]
fn errors_views_survive_tiny_sizes_and_say_something() {
    let theme = theme();
    let state = errors_triage_state();
    let views: Vec<(&str, UiState)> = vec![
        ("follow", errors_ui(|_| {})),
        (
            "paused",
            errors_ui(|ui| {
                ui.views.errors.scroll = 2;
                ui.views.errors.anchor = Some(state.logs.pushed());
            }),
        ),
        (
            "paused, its lines gone",
            errors_ui(|ui| {
                ui.views.errors.scroll = 2;
                ui.views.errors.anchor = Some(0);
            }),
        ),
        ("wrap", errors_ui(|ui| ui.views.errors.wrap = true)),
        (
            "detail",
            errors_ui(|ui| {
                ui.views.errors.detail = true;
                ui.views.errors.anchor = Some(state.logs.pushed());
            }),
        ),
        ("patterns", errors_ui(|ui| ui.views.errors.patterns = true)),
        (
            "pattern detail",
            errors_ui(|ui| {
                ui.views.errors.patterns = true;
                ui.views.errors.detail = true;
                ui.selected = 99;
            }),
        ),
    ];
    let mut out = String::new();
    for (name, ui) in &views {
        for width in 0..=24 {
            for height in 0..=8 {
                for opts in [&PLAIN, &FOCUSED_ZOOMED] {
                    draw_pane(PaneId::Errors, &state, ui, &theme, (width, height), opts);
                }
            }
        }
        for size in [(16, 4), (30, 6)] {
            out.push_str(&format!("── {name} at {}x{}\n", size.0, size.1));
            let screen = errors_text(&state, ui, size, &FOCUSED_ZOOMED);
            assert!(
                screen.contains("6 Errors") || screen.contains("6 Err"),
                "{name}: {screen}"
            );
            out.push_str(&screen);
        }
    }
    insta::assert_snapshot!(out);
}
