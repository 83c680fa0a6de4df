//! What the panes' tests share: a deployment in each state (ok, warn, crit, failing, stale,
//! connecting), drawing a pane or the whole screen on `TestBackend`, and reading the
//! buffer back as text. Text goes to insta snapshots (`snapshots/` beside each test);
//! styles are checked cell by cell so a colour regression shows.

use crate::model::figure::Reading;
use crate::model::rule::{Comparison, Priority, Rule, Threshold};
use crate::model::update::{
    ContainerRow, DiskUsage, HostSnapshot, LogLevel, LogLine, ServiceStatus, SourceHealth, Table,
    Update,
};
use crate::state::{AppState, Window};
use crate::ui::theme::Theme;
use crate::ui::{self, PaneContext, PaneId, UiState, panes};
use chrono::{DateTime, Duration, TimeZone, Utc};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;

// ---------------------------------------------------------------- fixtures

pub(crate) fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Level {
    Ok,
    Warn,
    Crit,
}

pub(crate) fn window() -> Window {
    let mut window = Window::new("tmws", now() - Duration::minutes(134), Duration::hours(24));
    window.version = "v2.3.0".into();
    window
}

/// A deployment whose sources are registered but have not reported yet.
pub(crate) fn connecting() -> AppState {
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

pub(crate) fn pct_rule(warn: f64, crit: f64) -> Rule {
    Rule::warn_crit(Threshold::above(warn), Threshold::above(crit))
}

pub(crate) fn readings(
    state: &mut AppState,
    source: &str,
    readings: Vec<Reading>,
    at: DateTime<Utc>,
) {
    state.apply(
        Update::Readings {
            source: source.into(),
            readings,
        },
        at,
    );
}

pub(crate) fn tmws_readings(level: Level, deny: f64) -> Vec<Reading> {
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

pub(crate) fn service(
    name: &str,
    kind: &str,
    up: bool,
    status: &str,
    ms: Option<f64>,
) -> ServiceStatus {
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

pub(crate) fn containers(level: Level) -> Vec<ContainerRow> {
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

pub(crate) fn host_snapshot(level: Level) -> HostSnapshot {
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

pub(crate) fn log(at: DateTime<Utc>, level: LogLevel, source: &str, message: &str) -> LogLine {
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

pub(crate) fn logs(level: Level) -> Vec<LogLine> {
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
pub(crate) fn deployment(level: Level) -> AppState {
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
pub(crate) fn failing() -> AppState {
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
pub(crate) fn stale() -> AppState {
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

pub(crate) fn terminal(width: u16, height: u16) -> Terminal<TestBackend> {
    Terminal::new(TestBackend::new(width, height)).unwrap()
}

pub(crate) struct Opts {
    pub(crate) focused: bool,
    pub(crate) zoomed: bool,
}

pub(crate) const PLAIN: Opts = Opts {
    focused: false,
    zoomed: false,
};

pub(crate) const ZOOMED: Opts = Opts {
    focused: true,
    zoomed: true,
};

pub(crate) const FOCUSED_PLAIN: Opts = Opts {
    focused: true,
    zoomed: false,
};

pub(crate) const FOCUSED_ZOOMED: Opts = Opts {
    focused: true,
    zoomed: true,
};

pub(crate) fn draw_pane(
    pane: PaneId,
    state: &AppState,
    ui: &UiState,
    theme: &Theme,
    size: (u16, u16),
    opts: &Opts,
) -> Buffer {
    draw_pane_at(pane, state, ui, theme, size, opts, now())
}

/// [`draw_pane`] at another time than [`now`] (a fixture of its own).
pub(crate) fn draw_pane_at(
    pane: PaneId,
    state: &AppState,
    ui: &UiState,
    theme: &Theme,
    (width, height): (u16, u16),
    opts: &Opts,
    now: DateTime<Utc>,
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
                now,
            };
            let area = frame.area();
            let pane = panes::pane(pane).expect("a listed pane");
            (pane.render)(frame, area, &ctx);
        })
        .unwrap();
    terminal.backend().buffer().clone()
}

pub(crate) fn draw_screen(
    state: &AppState,
    ui: &UiState,
    theme: &Theme,
    width: u16,
    height: u16,
) -> Buffer {
    let mut terminal = terminal(width, height);
    terminal
        .draw(|frame| ui::draw(frame, state, ui, theme, now()))
        .unwrap();
    terminal.backend().buffer().clone()
}

/// The buffer's text, one line per row, trailing blanks cut.
pub(crate) fn text(buffer: &Buffer) -> String {
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
pub(crate) fn find(buffer: &Buffer, needle: &str) -> Option<(u16, u16)> {
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

pub(crate) fn theme() -> Theme {
    Theme::built_in("default").unwrap()
}

/// The size each pane gets in the 80x24 overview.
pub(crate) fn overview_size(pane: PaneId) -> (u16, u16) {
    let body = Rect::new(0, 1, 80, 22);
    ui::overview_layout(body, panes::DEMO_OVERVIEW, &deployment(Level::Crit))
        .into_iter()
        .find(|(p, _)| *p == pane)
        .map_or((80, 22), |(_, r)| (r.width, r.height))
}

/// A pane in every state at its 80x24 overview size, stacked with labels.
pub(crate) fn states_sheet(pane: PaneId) -> String {
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

pub(crate) fn zoomed_sheet(pane: PaneId, width: u16, height: u16) -> String {
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

/// The RBAC pane drilled down (its table in place of the summary).
pub(crate) fn drilled() -> panes::Views {
    panes::Views {
        rbac: panes::rbac::RbacView { drilldown: true },
        ..panes::Views::default()
    }
}
