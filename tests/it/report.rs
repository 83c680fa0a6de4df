//! `watchpost report` on a deterministic 24-hour window: the Markdown must be exactly
//! `tests/golden/report.md` (run with `UPDATE_GOLDEN=1` to rewrite it after a deliberate
//! change, and read the diff). The window is played through the real pieces with an
//! injected clock: the state owner and its rules, the app's outbox, the record's writer
//! thread, a restart in the middle (record reopened, history and alerts loaded back),
//! checkpoints, notes, a maintenance silence, then the report from the record.

use chrono::{DateTime, Duration, TimeZone, Utc};
use std::path::Path;
use watchpost::app::App;
use watchpost::model::figure::Reading;
use watchpost::model::rule::{Priority, Rule, Threshold};
use watchpost::model::update::{LogLevel, LogLine, Update};
use watchpost::record::{self, Role, report};
use watchpost::rules::notify::SilenceSpec;
use watchpost::state::{AppState, Window};
use watchpost::ui::theme::Theme;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 2, 1, 8, 0, 0).unwrap()
}

fn at(h: i64, m: i64, s: i64) -> DateTime<Utc> {
    start() + Duration::hours(h) + Duration::minutes(m) + Duration::seconds(s)
}

fn window() -> Window {
    let mut w = Window::new("warungin", start(), Duration::hours(24));
    w.version = "v1.4.0".into();
    w
}

fn settings() -> record::Settings {
    record::Settings {
        start_is_now: false,
        max_mb: 50,
        criteria: serde_json::to_value(watchpost::config::criteria::default_criteria()).unwrap(),
        silences: vec![SilenceSpec {
            from: "T+20h".into(),
            until: "T+20h30m".into(),
            figures: vec!["api.*".into()],
            reason: "planned database upgrade".into(),
        }],
        commit_every: std::time::Duration::from_millis(200),
    }
}

/// Opens the record as the writer and loads what it has, as `watchpost run` does.
fn open_app(path: &Path, now: DateTime<Utc>) -> App {
    let opened = record::open(path, &window(), &settings(), now).expect("open the record");
    let mut state = AppState::new(opened.window.clone());
    state.silences = settings()
        .silences
        .iter()
        .map(|s| s.resolve(start()).unwrap())
        .collect();
    let reader = record::Reader::open(path).unwrap();
    record::load_into(&reader, &mut state, now, true).unwrap();
    let mut app = App::new(state, Theme::built_in("default").unwrap());
    match opened.role {
        Role::Writer { writer, lock } => app.set_recording(writer, lock),
        Role::Viewer { .. } => panic!("the test is the only writer"),
    }
    app
}

fn readings(t: DateTime<Utc>) -> Vec<Reading> {
    let minutes = (t - start()).num_minutes();
    // api down T+02:10–T+02:13 (a P0) and, during the silence, T+20:05–T+20:15.
    let down = (130..133).contains(&minutes) || (1205..1215).contains(&minutes);
    let deny = if (300..340).contains(&minutes) {
        35.0
    } else {
        8.0 + (minutes % 7) as f64 * 0.5
    };
    let latency = if down {
        2400.0
    } else {
        40.0 + (minutes % 5) as f64 * 3.0
    };
    vec![
        Reading::number("api.up", "api up", if down { 0.0 } else { 1.0 }, "")
            .with_rule(Rule::crit_only(Threshold::below(1.0)).with_priority(Priority::P0)),
        Reading::number("api.health_ms", "api health latency", latency, "ms").with_rule(
            Rule::warn_crit(Threshold::above(1000.0), Threshold::above(2000.0)),
        ),
        Reading::number("tmws.rbac.deny_pct_1h", "RBAC deny rate 1h", deny, "%").with_rule(
            Rule::warn_crit(Threshold::above(20.0), Threshold::above(50.0))
                .with_priority(Priority::P1),
        ),
        Reading::number(
            "tmws.license.failure_pct_1h",
            "license validation failures 1h",
            3.0,
            "%",
        ),
        Reading::text("tmws.db.integrity", "database integrity", "ok")
            .with_rule(Rule::expecting("ok").with_priority(Priority::P0)),
    ]
}

fn log_lines(t: DateTime<Utc>) -> Vec<LogLine> {
    let minutes = (t - start()).num_minutes();
    let line = |level: LogLevel, message: &str| LogLine {
        source: "app".into(),
        at: t,
        level,
        message: message.into(),
        fields: Default::default(),
        is_error: level >= LogLevel::Error,
        tallied: false,
    };
    let mut lines = vec![line(LogLevel::Info, "GET /api/products 200")];
    if minutes % 30 == 0 && t.timestamp() % 60 == 0 {
        lines.push(line(LogLevel::Error, "payment provider timeout"));
    }
    if (130..133).contains(&minutes) {
        lines.push(line(LogLevel::Error, "database connection pool exhausted"));
        if minutes == 131 && t.timestamp() % 60 == 0 {
            lines.push(line(LogLevel::Critical, "fatal: cannot reach postgres"));
        }
    }
    lines
}

/// Plays the window from `from` to `to` every 30 s.
fn play(app: &mut App, from: DateTime<Utc>, to: DateTime<Utc>) {
    let mut t = from;
    while t < to {
        app.apply_update_at(
            Update::Readings {
                source: "api".into(),
                readings: readings(t).drain(..2).collect(),
            },
            t,
        );
        app.apply_update_at(
            Update::Readings {
                source: "tmws".into(),
                readings: readings(t).drain(2..).collect(),
            },
            t,
        );
        app.apply_update_at(Update::Logs(log_lines(t)), t);
        app.tick(t + Duration::seconds(1));
        if t == at(2, 11, 0) {
            assert!(app.acknowledge_alert("api.up", t));
        }
        if t == at(2, 12, 30) {
            app.add_note("restarted the api pod; pool size raised to 40", t);
        }
        if t == at(5, 30, 0) {
            app.add_note("deny rate up after the role import | checked: expected", t);
        }
        t += Duration::seconds(30);
    }
}

fn flush(app: &App) {
    let recording = app.recording.as_ref().expect("recording");
    assert!(recording.writer.flush(std::time::Duration::from_secs(30)));
    let status = recording.writer.status();
    assert_eq!(status.last_error, None);
    assert_eq!(status.dropped, 0);
}

/// The fixture record: a whole window with a restart at T+13:00 (down until T+15:30).
fn build_record(path: &Path) {
    let mut app = open_app(path, start());
    play(&mut app, start(), at(13, 0, 0));
    flush(&app);
    drop(app);
    // Restarted two and a half hours later: the record is reopened and loaded.
    let mut app = open_app(path, at(15, 30, 0));
    assert!(
        app.state.figure("api.health_ms").unwrap().history.len() > 100,
        "sparkline history comes back from the record"
    );
    play(&mut app, at(15, 30, 0), at(24, 0, 0));
    // The clock's second after the end takes the T+24 checkpoint.
    app.tick(at(24, 0, 1));
    app.add_note("window closed, handing over to the day team", at(24, 0, 30));
    flush(&app);
}

fn golden_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/report.md")
}

#[test]
fn the_markdown_report_matches_the_golden_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warungin.sqlite");
    build_record(&path);
    let reader = record::Reader::open(&path).unwrap();
    let inputs = report::Inputs::read(&reader).unwrap();
    let criteria = report::recorded_criteria(&inputs.meta);
    let built = report::build(&inputs, &criteria, at(24, 1, 0));
    let markdown = built.to_markdown();
    let golden = golden_path();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, &markdown).unwrap();
    }
    let expected = std::fs::read_to_string(&golden)
        .expect("tests/golden/report.md (create it with UPDATE_GOLDEN=1)");
    if markdown != expected {
        let first = markdown
            .lines()
            .zip(expected.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(markdown.lines().count().min(expected.lines().count()));
        panic!(
            "the report differs from tests/golden/report.md at line {}:\n got: {:?}\nwant: {:?}\n(UPDATE_GOLDEN=1 rewrites it)",
            first + 1,
            markdown.lines().nth(first),
            expected.lines().nth(first)
        );
    }

    // What the golden file must say, whatever its wording: the facts of the window.
    assert!(built.complete);
    let incidents: Vec<_> = built
        .incidents
        .iter()
        .filter(|i| i.id == "api.up")
        .collect();
    assert_eq!(incidents.len(), 2, "{incidents:?}");
    assert_eq!(incidents[0].fired, at(2, 10, 0));
    assert_eq!(incidents[0].resolved, Some(at(2, 13, 0)));
    assert_eq!(incidents[0].acknowledged, Some(at(2, 11, 0)));
    assert!(incidents[1].silenced);
    assert_eq!(built.summary.critical_errors, Some(1));
    assert_eq!(built.summary.downtime_secs, Some(13 * 60));
    assert_eq!(built.summary.documented_downtime_secs, Some(10 * 60));
    assert_eq!(built.summary.go_live, "NO");
    let verdict = |name: &str| {
        built
            .criteria
            .iter()
            .find(|c| c.name.contains(name))
            .unwrap()
            .verdict
    };
    assert_eq!(verdict("critical errors"), report::Verdict::Fail);
    assert_eq!(verdict("Cache hit rate"), report::Verdict::NotMeasured);
    assert_eq!(verdict("security violations"), report::Verdict::NotMeasured);
    assert_eq!(verdict("No data loss"), report::Verdict::Pass);
    assert!(
        markdown.contains("Name: ________________  Date: __________  Signature: ________________")
    );
}

#[test]
fn the_json_report_has_the_same_facts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warungin.sqlite");
    build_record(&path);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_watchpost"))
        .args([
            "report",
            "--format",
            "json",
            "--at",
            "2026-02-02T08:01:00Z",
            "--record",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["deployment"], "warungin");
    assert_eq!(json["complete"], true);
    assert_eq!(json["summary"]["go_live"], "NO");
    assert_eq!(json["intervals"].as_array().unwrap().len(), 11);
    let markdown = std::process::Command::new(env!("CARGO_BIN_EXE_watchpost"))
        .args(["report", "--at", "2026-02-02T08:01:00Z", "--record"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&markdown.stdout),
        std::fs::read_to_string(golden_path()).unwrap(),
        "the CLI prints the same Markdown"
    );
    // No record: one clear line.
    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_watchpost"))
        .args(["report", "--record", "/nonexistent/w.sqlite"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("/nonexistent/w.sqlite"), "{err}");
}

// ------------------------------------------- a window with no TMWS pack and a slow app

/// Two hours of a shop with no SQLite pack: its health probe answers in 8 ms all along,
/// while the application's own latency (a log metric, p95 of `latency_ms`) is 2842 ms
/// from T+00:40 to T+01:10. Errors are logged every 5 minutes; the first log bucket of
/// the window begins 10 s before its start.
fn build_shop_record(path: &Path) -> DateTime<Utc> {
    let start = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 10).unwrap();
    let window = Window::new("shop", start, Duration::hours(2));
    let settings = record::Settings {
        silences: Vec::new(),
        ..settings()
    };
    let opened = record::open(path, &window, &settings, start).expect("open the record");
    let mut app = App::new(
        AppState::new(opened.window.clone()),
        Theme::built_in("default").unwrap(),
    );
    match opened.role {
        Role::Writer { writer, lock } => app.set_recording(writer, lock),
        Role::Viewer { .. } => panic!("the test is the only writer"),
    }
    let mut t = start;
    while t < start + Duration::hours(2) {
        let minute = (t - start).num_minutes();
        let slow = (40..70).contains(&minute);
        let readings = vec![
            Reading::number("web.up", "web up", 1.0, "")
                .with_rule(Rule::crit_only(Threshold::below(1.0)).with_priority(Priority::P0)),
            Reading::number("web.health_ms", "web health latency", 8.0, "ms"),
            Reading::number(
                "app.latency_p95",
                "latency_ms p95 (15m)",
                if slow { 2842.0 } else { 120.0 },
                "ms",
            )
            .with_rule(Rule::warn_crit(
                Threshold::above(1000.0),
                Threshold::above(2000.0),
            )),
        ];
        app.apply_update_at(
            Update::Readings {
                source: "web".into(),
                readings,
            },
            t,
        );
        if minute % 5 == 0 && (t - start).num_seconds() % 60 == 0 {
            let line = LogLine {
                source: "app".into(),
                at: t,
                level: LogLevel::Error,
                message: "payment provider timeout".into(),
                fields: Default::default(),
                is_error: true,
                tallied: false,
            };
            app.apply_update_at(Update::Logs(vec![line]), t);
        }
        app.tick(t + Duration::seconds(1));
        t += Duration::seconds(30);
    }
    app.tick(start + Duration::hours(2) + Duration::seconds(1));
    flush(&app);
    start
}

fn shop_report(path: &Path) -> report::Report {
    let start = build_shop_record(path);
    let reader = record::Reader::open(path).unwrap();
    let inputs = report::Inputs::read(&reader).unwrap();
    let criteria = report::recorded_criteria(&inputs.meta);
    report::build(
        &inputs,
        &criteria,
        start + Duration::hours(2) + Duration::minutes(1),
    )
}

#[test]
fn a_slow_application_fails_the_response_time_criterion_and_names_the_figure() {
    let dir = tempfile::tempdir().unwrap();
    let built = shop_report(&dir.path().join("shop.sqlite"));
    let response = built
        .criteria
        .iter()
        .find(|c| c.name.starts_with("Response times"))
        .unwrap();
    // The probe's 8 ms does not pass a window whose application answered in 2.8 s.
    assert_eq!(response.verdict, report::Verdict::Fail, "{response:?}");
    assert!(response.measured.contains("2842 ms"), "{response:?}");
    assert!(
        response.measured.contains("app.latency_p95"),
        "{response:?}"
    );
    assert!(!response.measured.contains("health"), "{response:?}");
    assert_eq!(
        built.summary.response_figure.as_deref(),
        Some("app.latency_p95")
    );
    let markdown = built.to_markdown();
    // Seed 000's sections belong to the TMWS pack, which this deployment does not have.
    assert!(!markdown.contains("### KPIs"), "{markdown}");
    assert!(!markdown.contains("### Escalation"), "{markdown}");
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/report_no_pack.md");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &markdown).unwrap();
    }
    assert_eq!(
        markdown,
        std::fs::read_to_string(&golden).expect("UPDATE_GOLDEN=1 writes it"),
        "differs from {}",
        golden.display()
    );
}

#[test]
fn every_count_in_the_report_agrees_with_itself() {
    let dir = tempfile::tempdir().unwrap();
    let built = shop_report(&dir.path().join("shop.sqlite"));
    // 24 error lines, one every 5 minutes of the two hours; the one at the start is in a
    // bucket that began 10 s before it and still counts, in hour 0 and in the total.
    let total = built.summary.total_errors.unwrap();
    assert_eq!(total, 24);
    let per_interval: i64 = built
        .intervals
        .iter()
        .map(|i| {
            assert!(i.watched, "{} was watched the whole time", i.label);
            i.error_count.unwrap()
        })
        .sum();
    assert_eq!(per_interval, total, "the intervals add up to the summary");
    let critical: i64 = built
        .intervals
        .iter()
        .filter_map(|i| i.critical_errors)
        .sum();
    assert_eq!(Some(critical), built.summary.critical_errors);
    // Alerts per priority in the summary are the alerts table's rows.
    for (priority, n) in &built.summary.alerts_by_priority {
        let rows = built
            .incidents
            .iter()
            .filter(|i| i.priority.label() == priority && !i.silenced)
            .count();
        assert_eq!(*n, rows, "{priority}");
    }
    // The Markdown says the same numbers.
    let markdown = built.to_markdown();
    assert!(
        markdown.contains(&format!("- Total Errors: {total}")),
        "{markdown}"
    );
    let logged: i64 = markdown
        .lines()
        .filter_map(|l| l.strip_prefix("- Error Count: "))
        .map(|l| l.split(' ').next().unwrap().parse::<i64>().unwrap())
        .sum();
    assert_eq!(logged, total, "{markdown}");
}

#[test]
fn the_text_summary_fits_a_chat_message() {
    let dir = tempfile::tempdir().unwrap();
    let built = shop_report(&dir.path().join("shop.sqlite"));
    let text = built.to_text();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() <= 15, "{text}");
    assert!(lines[0].starts_with("shop: window complete"), "{text}");
    assert!(lines[1].starts_with("Go-live: NO"), "{text}");
    assert!(text.contains("Response times < 2 seconds"), "{text}");
    assert!(text.contains("2842 ms (app.latency_p95)"), "{text}");
    assert!(text.contains("Errors: 24 (0 critical)"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("- P1 CRIT latency_ms p95")
                && l.contains("at T+00:40")
                && l.contains("for 30m")),
        "{text}"
    );
    // Plain text: no Markdown escapes or tables, nothing a terminal would interpret.
    assert!(
        !text.contains('\\') && !text.contains('|') && !text.contains('\x1b'),
        "{text}"
    );
}
