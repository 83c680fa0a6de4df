//! The record of a watch window: its size bound, restarts that resume it, one writer and
//! viewers, and — with the real binary in a real terminal (tmux) — a `kill -9` half-way
//! through a short window on a fixture deployment, a restart, history and alerts intact,
//! and the report complete with the incidents at the right times.

use crate::support::tmux::Tmux;
use chrono::{DateTime, Duration, TimeZone, Utc};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use watchpost::model::figure::{Reading, Value};
use watchpost::model::rule::{Priority, Rule, Threshold};
use watchpost::model::update::Update;
use watchpost::record::store::{self, Msg};
use watchpost::record::{self, Role, report};
use watchpost::rules::engine::Condition;
use watchpost::state::alerts::EventKind;
use watchpost::state::{AppState, Outgoing, Window};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 6, 7, 0, 0).unwrap()
}

fn settings(max_mb: u64) -> record::Settings {
    record::Settings {
        start_is_now: true,
        max_mb,
        criteria: serde_json::Value::Null,
        silences: vec![],
        commit_every: std::time::Duration::from_millis(100),
    }
}

fn writer_of(opened: record::Opened) -> (store::Writer, record::Lock) {
    match opened.role {
        Role::Writer { writer, lock } => (writer, lock),
        Role::Viewer { holder } => panic!("expected to write, the record is held by {holder:?}"),
    }
}

#[test]
fn two_hundred_figures_over_a_whole_day_stay_under_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.sqlite");
    let window = Window::new("big", t0(), Duration::hours(24));
    let opened = record::open(&path, &window, &settings(store::DEFAULT_MAX_MB), t0()).unwrap();
    let (writer, lock) = writer_of(opened);
    let bucket = store::bucket_secs(24 * 3600);
    assert_eq!(bucket, 30);
    let started = Instant::now();
    // Every figure in every bucket, with numbers that do not compress into small integers.
    for b in 0..store::MAX_BUCKETS {
        let at = t0() + Duration::seconds(b * bucket);
        for f in 0..200 {
            let value = 1234.5678 + (b * 200 + f) as f64 * 0.37;
            assert!(writer.send(Msg::Out(Outgoing::Sample {
                id: format!("source{:02}.figure_{f:03}_pct_1h", f % 17),
                name: format!("figure {f} of source {}", f % 17),
                unit: "%".into(),
                at,
                value: Value::Number(value),
                condition: if f % 9 == 0 {
                    Condition::Warn
                } else {
                    Condition::Ok
                },
            })));
        }
        if b % 200 == 199 {
            assert!(writer.flush(std::time::Duration::from_secs(120)));
        }
    }
    assert!(writer.flush(std::time::Duration::from_secs(120)));
    let status = writer.status();
    assert_eq!(status.dropped, 0);
    assert_eq!(status.full_dropped, 0, "nothing dropped under the limit");
    assert_eq!(status.last_error, None);
    drop(writer);
    drop(lock);
    let size = std::fs::metadata(&path).unwrap().len();
    let bound = store::samples_bound_bytes(200);
    eprintln!(
        "200 figures x {} buckets: {:.1} MB (bound {:.1} MB, limit {} MB) in {:?}",
        store::MAX_BUCKETS,
        size as f64 / 1e6,
        bound as f64 / 1e6,
        store::DEFAULT_MAX_MB,
        started.elapsed()
    );
    assert!(
        size <= bound,
        "{size} bytes is over the computed bound {bound}"
    );
    assert!(bound < store::DEFAULT_MAX_MB * 1024 * 1024);
    let reader = record::Reader::open(&path).unwrap();
    let samples = reader.samples().unwrap();
    assert_eq!(samples.len(), 200);
    assert!(
        samples
            .values()
            .all(|b| b.len() == store::MAX_BUCKETS as usize)
    );
    // Outside the window nothing is kept.
    let (writer, _lock) =
        writer_of(record::open(&path, &window, &settings(store::DEFAULT_MAX_MB), t0()).unwrap());
    for at in [t0() - Duration::seconds(1), t0() + Duration::hours(24)] {
        writer.send(Msg::Out(Outgoing::Sample {
            id: "late.figure".into(),
            name: "late".into(),
            unit: String::new(),
            at,
            value: Value::Number(1.0),
            condition: Condition::Ok,
        }));
    }
    writer.flush(std::time::Duration::from_secs(10));
    drop(writer);
    assert!(
        !record::Reader::open(&path)
            .unwrap()
            .samples()
            .unwrap()
            .contains_key("late.figure")
    );
}

#[test]
fn a_full_record_keeps_filling_old_buckets_drops_new_ones_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.sqlite");
    let window = Window::new("small", t0(), Duration::hours(24));
    let (writer, _lock) = writer_of(record::open(&path, &window, &settings(1), t0()).unwrap());
    let mut b = 0;
    while !writer.status().full && b < store::MAX_BUCKETS {
        for f in 0..50 {
            writer.send(Msg::Out(Outgoing::Sample {
                id: format!("s.f{f}"),
                name: format!("f{f}"),
                unit: String::new(),
                at: t0() + Duration::seconds(b * 30),
                value: Value::Number(b as f64 + 0.123),
                condition: Condition::Ok,
            }));
        }
        b += 1;
        if b % 20 == 0 {
            writer.flush(std::time::Duration::from_secs(30));
        }
    }
    assert!(writer.status().full, "1 MB fills up");
    for f in 0..50 {
        writer.send(Msg::Out(Outgoing::Sample {
            id: format!("s.f{f}"),
            name: format!("f{f}"),
            unit: String::new(),
            at: t0() + Duration::hours(23),
            value: Value::Number(1.0),
            condition: Condition::Ok,
        }));
    }
    writer.flush(std::time::Duration::from_secs(30));
    assert!(writer.status().full_dropped >= 50);
    drop(writer);
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size < 2 * 1024 * 1024, "{size}");
    let reader = record::Reader::open(&path).unwrap();
    let inputs = report::Inputs::read(&reader).unwrap();
    let built = report::build(
        &inputs,
        &watchpost::config::criteria::default_criteria(),
        t0() + Duration::hours(25),
    );
    assert!(
        built.caveats.iter().any(|c| c.contains("size limit")),
        "{:?}",
        built.caveats
    );
}

/// One reading round of a fake `api` service at `at`, through the state into the writer.
fn round(state: &mut AppState, writer: &store::Writer, up: bool, at: DateTime<Utc>) {
    state.apply(
        Update::Readings {
            source: "api".into(),
            readings: vec![
                Reading::number("api.up", "api up", if up { 1.0 } else { 0.0 }, "")
                    .with_rule(Rule::crit_only(Threshold::below(1.0)).with_priority(Priority::P0)),
                Reading::number("api.health_ms", "api health latency", 42.0, "ms"),
            ],
        },
        at,
    );
    for event in state.take_outbox() {
        if !matches!(event, Outgoing::Logs { .. }) {
            writer.send(Msg::Out(event));
        }
    }
}

#[test]
fn a_restart_resumes_the_window_its_history_and_its_open_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.sqlite");
    // First launch: `start = "now"` is t0, and remembered.
    let configured = Window::new("w", t0(), Duration::minutes(30));
    let opened = record::open(&path, &configured, &settings(50), t0()).unwrap();
    assert_eq!(opened.window.start, t0());
    let (writer, lock) = writer_of(opened);
    let mut state = AppState::new(configured.clone());
    state.enable_outbox();
    for i in 0..60 {
        round(&mut state, &writer, i < 50, t0() + Duration::seconds(i * 2));
    }
    assert_eq!(state.alerts.active.len(), 1, "api down at the end");
    assert!(writer.flush(std::time::Duration::from_secs(10)));
    drop(writer);
    drop(lock);

    // Relaunched ten minutes later with `start = "now"` again: the window is the same.
    let later = t0() + Duration::minutes(10);
    let configured = Window::new("w", later, Duration::minutes(30));
    let opened = record::open(&path, &configured, &settings(50), later).unwrap();
    assert_eq!(
        opened.window.start,
        t0(),
        "the remembered start wins over now"
    );
    assert!(opened.archived.is_none());
    let window = opened.window.clone();
    let (writer, _lock) = writer_of(opened);
    let mut state = AppState::new(window);
    state.enable_outbox();
    let reader = record::Reader::open(&path).unwrap();
    record::load_into(&reader, &mut state, later, true).unwrap();
    let history = &state.figure("api.health_ms").unwrap().history;
    assert_eq!(history.len(), 60, "one point per bucket of the first run");
    assert_eq!(state.alerts.active.len(), 1);
    assert_eq!(state.alerts.active[0].id, "api.up");
    assert_eq!(state.alerts.active[0].since, t0() + Duration::seconds(100));
    assert_eq!(
        state.timeline[0],
        Some(watchpost::model::figure::Severity::Crit)
    );
    // Still down: no second firing. Then up: resolved, in the record too.
    round(&mut state, &writer, false, later + Duration::seconds(1));
    round(&mut state, &writer, true, later + Duration::seconds(3));
    assert!(state.alerts.active.is_empty());
    assert!(writer.flush(std::time::Duration::from_secs(10)));
    let events = record::Reader::open(&path).unwrap().alert_events().unwrap();
    let kinds: Vec<EventKind> = events
        .iter()
        .filter(|e| e.id == "api.up")
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, vec![EventKind::Fired, EventKind::Resolved]);
}

#[test]
fn one_writer_others_view_and_take_over_when_it_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.sqlite");
    let window = Window::new("shared", t0(), Duration::hours(24));
    let first = record::open(&path, &window, &settings(50), t0()).unwrap();
    assert!(matches!(first.role, Role::Writer { .. }));
    let second = record::open(&path, &window, &settings(50), t0()).unwrap();
    match second.role {
        Role::Viewer { holder } => assert_eq!(holder, Some(std::process::id())),
        Role::Writer { .. } => panic!("two writers"),
    }
    assert_eq!(record::holder(&path), Some(std::process::id()));
    drop(first);
    let third = record::open(&path, &window, &settings(50), t0()).unwrap();
    assert!(
        matches!(third.role, Role::Writer { .. }),
        "the lock is free once the writer is gone"
    );
}

#[test]
fn a_finished_window_is_kept_aside_when_a_new_one_starts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tmws.sqlite");
    let window = Window::new("tmws", t0(), Duration::hours(1));
    drop(record::open(&path, &window, &settings(50), t0()).unwrap());
    let later = t0() + Duration::hours(2);
    let opened = record::open(
        &path,
        &Window::new("tmws", later, Duration::hours(1)),
        &settings(50),
        later,
    )
    .unwrap();
    assert_eq!(opened.window.start, later, "a new window");
    let archived = opened.archived.clone().expect("the old record is kept");
    assert_eq!(
        archived.file_name().unwrap().to_string_lossy(),
        "tmws-20260506T070000Z.sqlite"
    );
    let old = record::Reader::open(&archived)
        .unwrap()
        .meta()
        .unwrap()
        .unwrap();
    assert_eq!(old.start, t0());
    // A new version is a new window too.
    drop(opened);
    let mut v2 = Window::new("tmws", later, Duration::hours(1));
    v2.version = "v2".into();
    let opened = record::open(&path, &v2, &settings(50), later + Duration::minutes(1)).unwrap();
    assert!(opened.archived.is_some());
}

// ------------------------------------------------------------ the real binary, killed

/// Appends JSON log lines: info every half second, errors while down, one fatal line at
/// the start of each outage.
fn log_writer(path: PathBuf, down: Arc<AtomicBool>, stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        let mut was_down = false;
        while !stop.load(Ordering::SeqCst) {
            let now = Utc::now().to_rfc3339();
            let is_down = down.load(Ordering::SeqCst);
            let _ = writeln!(
                file,
                r#"{{"timestamp":"{now}","level":"INFO","message":"GET /api 200"}}"#
            );
            if is_down {
                let _ = writeln!(
                    file,
                    r#"{{"timestamp":"{now}","level":"ERROR","message":"database connection pool exhausted"}}"#
                );
                if !was_down {
                    let _ = writeln!(
                        file,
                        r#"{{"timestamp":"{now}","level":"CRITICAL","message":"fatal: cannot reach postgres"}}"#
                    );
                }
            }
            was_down = is_down;
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    });
}

/// The pid of the process running in the viewer's pane.
fn viewer_pid(tmux: &Tmux) -> u32 {
    tmux.format_in("t:viewer", "#{pane_pid}").parse().unwrap()
}

/// Waits until `at` seconds after `origin`.
fn until(origin: Instant, at: f64) {
    let target = origin + std::time::Duration::from_secs_f64(at);
    if let Some(wait) = target.checked_duration_since(Instant::now()) {
        std::thread::sleep(wait);
    }
}

fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}

#[test]
fn kill_9_half_way_then_restart_keeps_the_window_and_the_report_is_complete() {
    let dir = tempfile::tempdir().unwrap();
    let record_path = dir.path().join("shop.sqlite");
    let log_path = dir.path().join("app.jsonl");
    let alerts_out = dir.path().join("on_alert.txt");
    let down = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let url = crate::support::net::health_server(down.clone());
    std::fs::write(&log_path, "").unwrap();
    log_writer(log_path.clone(), down.clone(), stop.clone());
    let config = format!(
        r#"
[deployment]
name = "shop"
version = "v9.9.9"
start = "now"
length = "2m"
checkpoints = "30s"
on_alert = ["/bin/sh", "-c", "echo \"$WATCHPOST_ALERT_ID $WATCHPOST_ALERT_SEVERITY $WATCHPOST_ALERT_PRIORITY $WATCHPOST_ALERT_STATE\" >> {alerts}"]

[service.api]
health_url = "{url}"
interval = "1s"
timeout = "1s"

[logs.app]
files = ["{log}"]
"#,
        alerts = alerts_out.display(),
        log = log_path.display()
    );
    let config_path = dir.path().join("shop.toml");
    std::fs::write(&config_path, config).unwrap();
    let binary = env!("CARGO_BIN_EXE_watchpost");
    let run = format!(
        "{binary} run --config {} --record {}; echo EXIT=$?",
        shell_quote(&config_path),
        shell_quote(&record_path)
    );
    let Some(tmux) = Tmux::shell(160, 45) else {
        stop.store(true, Ordering::SeqCst);
        return;
    };
    tmux.send_in("t:0", &[&run, "Enter"]);
    tmux.wait_for_screen(
        "t:0",
        "the dashboard",
        std::time::Duration::from_secs(30),
        |s| s.contains("Alerts") && s.contains("shop"),
    );
    let started_at = {
        let reader = loop {
            if let Ok(r) = record::Reader::open(&record_path)
                && let Ok(Some(meta)) = r.meta()
            {
                break (r, meta);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        reader.1.start
    };
    // The schedule runs in window seconds: the window started `lag` seconds ago.
    let lag = (Utc::now() - started_at).num_milliseconds() as f64 / 1000.0;
    let base = Instant::now() - std::time::Duration::from_secs_f64(lag.max(0.0));
    let w = |secs: f64| until(base, secs);
    // First outage: T+12s to T+22s. Second: T+34s to T+60s, killed at T+42s inside it.
    w(12.0);
    down.store(true, Ordering::SeqCst);
    w(22.0);
    down.store(false, Ordering::SeqCst);
    w(34.0);
    down.store(true, Ordering::SeqCst);
    tmux.wait_for_screen(
        "t:0",
        "the second outage on screen",
        std::time::Duration::from_secs(20),
        |s| s.contains("api up"),
    );
    w(42.0);
    let pid = record::holder(&record_path).expect("the writer's pid in the lock file");
    let killed_at = Utc::now();
    assert!(
        Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()
            .unwrap()
            .success()
    );
    tmux.wait_for_screen(
        "t:0",
        "the shell after kill -9",
        std::time::Duration::from_secs(10),
        |s| s.contains("EXIT=137"),
    );

    // What survived the kill: everything up to a few seconds before it.
    {
        let reader = record::Reader::open(&record_path).unwrap();
        let samples = reader.samples().unwrap();
        let up = &samples["api.up"];
        let last = up.last().unwrap().t;
        assert!(
            killed_at - last <= Duration::seconds(3),
            "last bucket {last}, killed at {killed_at}"
        );
        let first_outage_down = up
            .iter()
            .filter(|b| {
                b.t >= started_at + Duration::seconds(13)
                    && b.t < started_at + Duration::seconds(21)
            })
            .filter(|b| b.mean() == Some(0.0))
            .count();
        assert!(first_outage_down >= 4, "first outage recorded: {up:?}");
    }

    // Restart in the same pane; and a second watchpost alongside, which only views.
    w(46.0);
    tmux.send_in("t:0", &[&format!("clear; {run}"), "Enter"]);
    tmux.wait_for_screen(
        "t:0",
        "the restarted dashboard",
        std::time::Duration::from_secs(30),
        |s| {
            !s.contains("EXIT=137")
                && s.contains("Alerts")
                && s.lines()
                    .next()
                    .is_some_and(|l| l.contains("shop") && l.contains("T+"))
        },
    );
    // The window goes on from where it was (T+00:00:4x or later), with its timeline.
    let screen = tmux.capture_in("t:0");
    let header = screen.lines().next().unwrap_or_default().to_string();
    assert!(
        header.contains("T+00:00:4") || header.contains("T+00:00:5") || header.contains("T+00:01:"),
        "{header}"
    );
    assert!(
        header.contains("▕✖"),
        "the first interval is remembered red: {header}"
    );
    tmux.window(
        "viewer",
        &format!(
            "{binary} run --config {} --record {}",
            shell_quote(&config_path),
            shell_quote(&record_path)
        ),
    );
    tmux.wait_for_screen(
        "t:viewer",
        "the viewer",
        std::time::Duration::from_secs(30),
        |s| s.contains(&"viewer (record held by pid".to_string()),
    );
    // A note, typed in the writer.
    tmux.send_in("t:0", &["n"]);
    tmux.send_in("t:0", &["-l", "pool raised to 40"]);
    tmux.send_in("t:0", &["Enter"]);
    tmux.wait_for_screen(
        "t:0",
        "the note kept",
        std::time::Duration::from_secs(10),
        |s| s.contains("note kept in the record"),
    );
    w(60.0);
    down.store(false, Ordering::SeqCst);
    // Let the recovery be seen and committed, then quit both.
    w(66.0);
    tmux.wait_for_screen(
        "t:0",
        "the outage resolved",
        std::time::Duration::from_secs(20),
        |s| s.contains("ok ") && s.contains("api up"),
    );
    // The writer leaves; the viewer takes the record over within a refresh or two.
    tmux.send_in("t:0", &["q"]);
    tmux.wait_for_screen(
        "t:0",
        "the writer's clean exit",
        std::time::Duration::from_secs(10),
        |s| s.contains("EXIT=0"),
    );
    tmux.wait_for_screen(
        "t:viewer",
        "the viewer taking over",
        std::time::Duration::from_secs(15),
        |s| s.contains("now writes the record") && !s.contains("viewer (record held"),
    );
    assert_eq!(record::holder(&record_path), Some(viewer_pid(&tmux)));
    tmux.send_in("t:viewer", &["q"]);
    std::thread::sleep(std::time::Duration::from_secs(2));
    stop.store(true, Ordering::SeqCst);

    // The report: complete, with both outages at the right times and one alert each.
    let out = Command::new(binary)
        .args(["report", "--format", "json", "--record"])
        .arg(&record_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let secs = |v: &serde_json::Value| -> f64 {
        let t = DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
        (t.with_timezone(&Utc) - started_at).num_milliseconds() as f64 / 1000.0
    };
    let ups: Vec<&serde_json::Value> = json["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["id"] == "api.up")
        .collect();
    assert_eq!(
        ups.len(),
        2,
        "one alert per outage, none doubled by the restart: {ups:#?}"
    );
    let (fired1, resolved1) = (secs(&ups[0]["fired"]), secs(&ups[0]["resolved"]));
    let (fired2, resolved2) = (secs(&ups[1]["fired"]), secs(&ups[1]["resolved"]));
    assert!(
        (12.0..16.0).contains(&fired1),
        "first outage fired at T+{fired1}"
    );
    assert!(
        (22.0..26.0).contains(&resolved1),
        "first outage resolved at T+{resolved1}"
    );
    assert!(
        (34.0..38.0).contains(&fired2),
        "second outage fired at T+{fired2}"
    );
    assert!(
        (60.0..64.0).contains(&resolved2),
        "resolved after the restart at T+{resolved2}"
    );
    assert_eq!(ups[0]["priority"], "P0");
    assert!(json["summary"]["critical_errors"].as_i64().unwrap() >= 2);
    assert!(json["summary"]["total_errors"].as_i64().unwrap() >= 10);
    let notes: Vec<&str> = json["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap())
        .collect();
    assert_eq!(notes, vec!["pool raised to 40"]);
    // Every checkpoint so far was either snapshotted or honestly missed, never invented.
    let md = Command::new(binary)
        .args(["report", "--record"])
        .arg(&record_path)
        .output()
        .unwrap();
    let md = String::from_utf8_lossy(&md.stdout);
    for needle in [
        "## Monitoring log",
        "## Final summary",
        "### Success criteria",
        "## Sign-off",
        "P0 CRIT api up",
        "Name: ________________",
    ] {
        assert!(md.contains(needle), "report lacks {needle:?}:\n{md}");
    }
    // No TMWS pack in this config: none of seed 000's sections.
    for pack_only in ["### KPIs", "### Escalation"] {
        assert!(
            !md.contains(pack_only),
            "{pack_only} without a TMWS pack:\n{md}"
        );
    }
    // on_alert ran without a shell of ours, once per firing (not again after the restart).
    let rung = std::fs::read_to_string(&alerts_out).unwrap_or_default();
    let fired: Vec<&str> = rung.lines().filter(|l| l.starts_with("api.up ")).collect();
    assert_eq!(
        fired,
        vec!["api.up crit P0 firing", "api.up crit P0 firing"],
        "{rung}"
    );
}

#[test]
fn the_record_its_sidecars_and_its_directories_are_private() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    // A umask that would make everything world-readable: the modes must not depend on it.
    let old_umask = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o002));
    let path = dir.path().join("new/nested/shop.sqlite");
    let window = Window::new("shop", t0(), Duration::hours(1));
    let opened = record::open(&path, &window, &settings(5), t0()).unwrap();
    let (writer, _lock) = writer_of(opened);
    assert!(writer.send(Msg::Out(Outgoing::Sample {
        id: "api.up".into(),
        name: "api up".into(),
        unit: String::new(),
        at: t0(),
        value: Value::Number(1.0),
        condition: Condition::Ok,
    })));
    assert!(writer.flush(std::time::Duration::from_secs(10)));
    nix::sys::stat::umask(old_umask);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
    let [wal, shm] = watchpost::model::sqlite_sidecars(&path);
    for p in [path.clone(), wal, shm] {
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
    assert_eq!(mode(&record::lock_path(&path)), 0o600);
    assert_eq!(mode(&dir.path().join("new")), 0o700);
    assert_eq!(mode(&dir.path().join("new/nested")), 0o700);

    // A record a version before this one left world-readable is taken back to 0600.
    let old = dir.path().join("old.sqlite");
    drop(rusqlite::Connection::open(&old).unwrap());
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
    drop(store::open_rw(&old).unwrap());
    assert_eq!(mode(&old), 0o600);
}

/// Another process reading the record while it is written (`watchpost report`, a viewer)
/// must find the WAL index in use. The writer once dropped SQLite's lock on the `-shm`
/// (closing its own handle of that file drops every lock the process holds on it), so the
/// reader took the index for abandoned and reset it (truncated) under the writer, which
/// died of SIGBUS when it next touched it.
#[test]
fn a_reader_in_another_process_leaves_the_writers_wal_index_alone() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shop.sqlite");
    let window = Window::new("shop", t0(), Duration::hours(1));
    let opened = record::open(&path, &window, &settings(5), t0()).unwrap();
    let (writer, _lock) = writer_of(opened);
    let sample = |at: DateTime<Utc>| {
        Msg::Out(Outgoing::Sample {
            id: "api.up".into(),
            name: "api up".into(),
            unit: String::new(),
            at,
            value: Value::Number(1.0),
            condition: Condition::Ok,
        })
    };
    assert!(writer.send(sample(t0())));
    assert!(writer.flush(std::time::Duration::from_secs(10)));
    let [_, shm] = watchpost::model::sqlite_sidecars(&path);
    let reserved = std::fs::metadata(&shm).unwrap().len();
    assert!(reserved >= 128 * 1024, "{reserved}");
    // The writer's process holds a lock on the index (SQLite's "in use" byte).
    let inode = std::fs::metadata(&shm).unwrap().ino();
    let locks = std::fs::read_to_string("/proc/locks").unwrap();
    let mine = format!("POSIX  ADVISORY  READ {} ", std::process::id());
    assert!(
        locks
            .lines()
            .any(|l| l.contains(&mine) && l.contains(&format!(":{inode} "))),
        "no lock of pid {} on {} (inode {inode}):\n{locks}",
        std::process::id(),
        shm.display()
    );
    // Another process reads the record: the index is left as it is, and the writer goes on.
    let out = Command::new(env!("CARGO_BIN_EXE_watchpost"))
        .args(["report", "--format", "json", "--record"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::metadata(&shm).unwrap().len(),
        reserved,
        "the index was reset under the writer"
    );
    for k in 1..=50 {
        assert!(writer.send(sample(t0() + Duration::seconds(30 * k))));
    }
    assert!(writer.flush(std::time::Duration::from_secs(10)));
    let reader = record::Reader::open(&path).unwrap();
    assert_eq!(reader.samples().unwrap()["api.up"].len(), 51);
}

#[test]
fn a_full_file_system_stops_the_record_says_so_and_leaves_it_intact() {
    use watchpost::app::App;
    use watchpost::state::RecordStatus;
    let disk = match crate::support::loopfs::LoopFs::new(2048, 0) {
        Ok(disk) => disk,
        Err(why) => {
            eprintln!("SKIPPED (needs a loop-mounted file system): {why}");
            return;
        }
    };
    let path = disk.mount().join("shop.sqlite");
    let window = Window::new("shop", t0(), Duration::hours(24));
    // The record's own bound (50 MB) is far above the disk's 2 MB: the disk fills first.
    let opened = record::open(&path, &window, &settings(store::DEFAULT_MAX_MB), t0()).unwrap();
    let mut app = App::new(
        AppState::new(opened.window.clone()),
        watchpost::ui::theme::Theme::built_in("default").unwrap(),
    );
    let (writer, lock) = writer_of(opened);
    app.set_recording(writer, lock);
    let mut first_error = None;
    for minute in 0..1400 {
        let at = t0() + Duration::minutes(minute);
        // New figures with long names every minute: the disk fills over a few hundred
        // minutes of window, long after the first ones are committed.
        let readings = (0..20)
            .map(|f| {
                Reading::number(
                    format!("src.m{minute:04}_f{f:02}_{}", "x".repeat(200)),
                    format!("figure {f} {}", "y".repeat(200)),
                    (minute * 20 + f) as f64,
                    "",
                )
            })
            .collect();
        app.apply_update_at(
            Update::Readings {
                source: "src".into(),
                readings,
            },
            at,
        );
        app.tick(at);
        let recording = app.recording.as_ref().unwrap();
        assert!(recording.writer.flush(std::time::Duration::from_secs(10)));
        app.tick(at);
        if let RecordStatus::Writing {
            error: Some(error), ..
        } = &app.state.record
        {
            first_error = Some((minute, error.clone()));
            break;
        }
    }
    let (minute, error) = first_error.expect("the disk never filled");
    assert!(error.contains("full"), "{error}");
    // The dashboard goes on: the state still takes figures and the writer still answers.
    let later = t0() + Duration::minutes(minute + 1);
    app.apply_update_at(
        Update::Readings {
            source: "api".into(),
            readings: vec![Reading::number("api.up", "api up", 1.0, "")],
        },
        later,
    );
    app.tick(later);
    assert!(app.state.figure("api.up").is_some());
    assert!(
        app.recording
            .as_ref()
            .unwrap()
            .writer
            .flush(std::time::Duration::from_secs(10))
    );
    drop(app);
    // What was committed before the disk filled is intact and readable, by the report
    // (a reader on a full disk once died of SIGBUS rebuilding the WAL index in `-shm`).
    let reader = record::Reader::open(&path).unwrap();
    let samples = reader.samples().unwrap();
    assert!(!samples.is_empty(), "nothing of the first minutes was kept");
    drop(reader);
    let report = Command::new(env!("CARGO_BIN_EXE_watchpost"))
        .args(["report", "--format", "json", "--record"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        report.status.success(),
        "{:?}: {}",
        report.status,
        String::from_utf8_lossy(&report.stderr)
    );
    // (As the report reads it: the WAL index in memory, nothing written.)
    let conn =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
            .unwrap();
    conn.pragma_update(None, "query_only", 1).unwrap();
    conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
        .unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

// ------------------------------------------- restarts: every log line counted once

/// What a log's writers have written inside the window (a line before the window's start
/// is not the record's).
#[derive(Default)]
struct Written {
    lines: std::sync::atomic::AtomicI64,
    errors: std::sync::atomic::AtomicI64,
    critical: std::sync::atomic::AtomicI64,
}

impl Written {
    fn get(&self) -> (i64, i64, i64) {
        (
            self.lines.load(Ordering::SeqCst),
            self.errors.load(Ordering::SeqCst),
            self.critical.load(Ordering::SeqCst),
        )
    }
}

/// Appends line `i` at `at` in one write (a reader never sees half of it as a line):
/// every 97th CRITICAL, every 5th ERROR, every 7th a WARNING that says "failed" (not an
/// error: its level decides), the rest INFO. Counted in `written` if at or after `start`.
fn append_line(
    file: &mut std::fs::File,
    at: DateTime<Utc>,
    i: u64,
    start: DateTime<Utc>,
    written: &Written,
) {
    let ts = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (level, message) = if i.is_multiple_of(97) {
        ("CRITICAL", "fatal: ledger out of sync")
    } else if i.is_multiple_of(5) {
        ("ERROR", "payment provider timeout")
    } else if i.is_multiple_of(7) {
        ("WARNING", "Login failed for user: invalid password")
    } else {
        ("INFO", "GET /api/cart 200")
    };
    let line =
        format!(r#"{{"timestamp":"{ts}","level":"{level}","message":"{message}","n":{i}}}"#) + "\n";
    file.write_all(line.as_bytes()).unwrap();
    if at >= start {
        written.lines.fetch_add(1, Ordering::SeqCst);
        if level != "INFO" && level != "WARNING" {
            written.errors.fetch_add(1, Ordering::SeqCst);
        }
        if level == "CRITICAL" {
            written.critical.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// `n` lines spread evenly from `from` to `to`, written now.
fn backfill(
    path: &Path,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    n: u64,
    first: u64,
    start: DateTime<Utc>,
    written: &Written,
) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let step = (to - from).num_milliseconds() / n as i64;
    for k in 0..n {
        append_line(
            &mut file,
            from + Duration::milliseconds(step * k as i64),
            first + k,
            start,
            written,
        );
    }
}

/// A line every 10 ms, stamped with the time it is written, until `stop`.
fn steady_writer(
    path: PathBuf,
    first: u64,
    start: DateTime<Utc>,
    written: Arc<Written>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        let mut i = first;
        while !stop.load(Ordering::SeqCst) {
            append_line(&mut file, Utc::now(), i, start, &written);
            i += 1;
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        i
    })
}

/// The record's lines, errors and critical lines of every second, summed.
fn recorded(path: &Path) -> (i64, i64, i64) {
    let Ok(reader) = record::Reader::open(path) else {
        return (0, 0, 0);
    };
    reader
        .logs()
        .unwrap_or_default()
        .iter()
        .fold((0, 0, 0), |(l, e, c), b| {
            (l + b.lines, e + b.errors, c + b.critical)
        })
}

fn wait_until(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed().as_secs() < secs,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The exit code the shell printed after a run (`echo "EXIT=$?;"`), if it has. (After a
/// `kill -9` the dashboard's screen is still there and the shell writes over it: the `;`
/// says where the code ends.)
fn exit_code(screen: &str) -> Option<i32> {
    screen.split("EXIT=").skip(1).find_map(|rest| {
        let (digits, _) = rest.split_once(';')?;
        digits.parse().ok()
    })
}

#[derive(Clone, Copy, Debug)]
enum Ending {
    Quit,
    Kill,
    Hangup,
}

/// `watchpost run --record` of a config with one log source `app`, in a clean shell in
/// tmux, started, quit and started again by a test; and the report of its record.
struct RecordedRuns {
    /// The deployment's name, on the dashboard's header.
    name: String,
    record_path: PathBuf,
    run: String,
    tmux: Tmux,
    runs: u32,
}

impl RecordedRuns {
    /// Writes `config` to `dir` (the deployment called `name`); `None` without tmux.
    fn new(dir: &Path, name: &str, config: &str) -> Option<RecordedRuns> {
        let config_path = dir.join(format!("{name}.toml"));
        std::fs::write(&config_path, config).unwrap();
        let record_path = dir.join(format!("{name}.sqlite"));
        let run = format!(
            "{} run --config {} --record {}; echo \"EXIT=$?;\"",
            env!("CARGO_BIN_EXE_watchpost"),
            shell_quote(&config_path),
            shell_quote(&record_path)
        );
        Some(RecordedRuns {
            name: name.to_string(),
            record_path,
            run,
            tmux: Tmux::shell(160, 45)?,
            runs: 0,
        })
    }

    /// Starts the dashboard (again) and waits for it.
    fn start(&mut self) {
        let run = if self.runs == 0 {
            self.run.clone()
        } else {
            format!("clear; {}", self.run)
        };
        self.runs += 1;
        self.tmux.send_in("t:0", &[&run, "Enter"]);
        let name = self.name.clone();
        self.tmux.wait_for_screen(
            "t:0",
            "the dashboard",
            std::time::Duration::from_secs(30),
            move |s| exit_code(s).is_none() && s.contains("Errors") && s.contains(&name),
        );
    }

    /// Waits for the run to end; its exit code.
    fn ended(&self) -> Option<i32> {
        self.tmux.wait_for_screen(
            "t:0",
            "the run's end",
            std::time::Duration::from_secs(15),
            |s| exit_code(s).is_some(),
        );
        exit_code(&self.tmux.capture_in("t:0"))
    }

    /// Quits with `q`; it exits cleanly.
    fn quit(&self) {
        self.tmux.send_in("t:0", &["q"]);
        assert_eq!(self.ended(), Some(0), "a clean exit");
    }

    /// `watchpost report --format FORMAT` of the record.
    fn report(&self, format: &str) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_watchpost"))
            .args(["report", "--format", format, "--record"])
            .arg(&self.record_path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// Lines written before the first start (some before the window's), during a run, while
/// nothing watched (after a quit, a `kill -9` or a SIGHUP) and during the next run: the
/// record counts each line of the window once, and the report's total and its intervals
/// say exactly the errors written.
fn restarts_count_every_line_once(ending: Ending) {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("app.jsonl");
    let now = Utc::now();
    let start = DateTime::from_timestamp(now.timestamp() - 600, 0).unwrap();
    let written = Arc::new(Written::default());
    // Before watchpost ever ran: 12 minutes, the first 2 before the window's start.
    backfill(
        &log_path,
        start - Duration::minutes(2),
        now - Duration::seconds(2),
        2400,
        0,
        start,
        &written,
    );
    let before = written.get();
    let config = format!(
        "[deployment]\nname = \"restarts\"\nstart = \"{}\"\nlength = \"1h\"\ncheckpoints = \"10m\"\n\n[logs.app]\nfiles = [\"{}\"]\n",
        start.to_rfc3339(),
        log_path.display()
    );
    let Some(mut runs) = RecordedRuns::new(dir.path(), "restarts", &config) else {
        return;
    };
    let record_path = runs.record_path.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = steady_writer(
        log_path.clone(),
        10_000,
        start,
        written.clone(),
        stop.clone(),
    );

    runs.start();
    // The read-back's count reaches the record; then a few seconds of lines read live.
    wait_until("the read-back counted in the record", 60, || {
        recorded(&record_path).1 >= before.1
    });
    std::thread::sleep(std::time::Duration::from_secs(3));
    let pid = record::holder(&record_path).expect("the writer's pid in the lock file");
    match ending {
        Ending::Quit => runs.tmux.send_in("t:0", &["q"]),
        Ending::Kill | Ending::Hangup => {
            let signal = if matches!(ending, Ending::Kill) {
                "-9"
            } else {
                "-HUP"
            };
            assert!(
                Command::new("kill")
                    .args([signal, &pid.to_string()])
                    .status()
                    .unwrap()
                    .success()
            );
        }
    }
    match ending {
        Ending::Kill => assert_eq!(runs.ended(), Some(137)),
        Ending::Quit | Ending::Hangup => assert_eq!(runs.ended(), Some(0)),
    }
    // Nothing watches: the steady writer goes on, and a burst comes.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let gap = Utc::now();
    backfill(
        &log_path,
        gap - Duration::seconds(1),
        gap,
        500,
        50_000,
        start,
        &written,
    );

    runs.start();
    std::thread::sleep(std::time::Duration::from_secs(3));
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    let all = written.get();
    assert!(
        all.1 > before.1 + 100,
        "lines were written during the runs: {all:?}"
    );
    wait_until("every line counted", 30, || recorded(&record_path) == all);
    // And nothing more comes (no line counted twice, late).
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(
        recorded(&record_path),
        all,
        "(lines, errors, critical) recorded vs written"
    );
    runs.quit();
    assert_eq!(
        recorded(&record_path),
        all,
        "(lines, errors, critical) recorded vs written"
    );

    let json: serde_json::Value = serde_json::from_str(&runs.report("json")).unwrap();
    assert_eq!(
        json["summary"]["total_errors"].as_i64(),
        Some(all.1),
        "{:#}",
        json["summary"]
    );
    assert_eq!(
        json["summary"]["critical_errors"].as_i64(),
        Some(all.2),
        "{:#}",
        json["summary"]
    );
    // The intervals so far: both watched (lines read back, or watchpost running), filled,
    // and adding up to the summary; the first begins at the window's start.
    let intervals = json["intervals"].as_array().unwrap();
    assert_eq!(intervals.len(), 2, "{intervals:#?}");
    assert_eq!(
        DateTime::parse_from_rfc3339(intervals[0]["from"].as_str().unwrap()).unwrap(),
        start
    );
    for interval in intervals {
        assert_eq!(interval["watched"], true, "{interval:#}");
    }
    let per_interval: i64 = intervals
        .iter()
        .map(|i| i["error_count"].as_i64().unwrap())
        .sum();
    assert_eq!(per_interval, all.1, "the intervals add up to the summary");
    let critical: i64 = intervals
        .iter()
        .map(|i| i["critical_errors"].as_i64().unwrap())
        .sum();
    assert_eq!(critical, all.2);
}

#[test]
fn restarts_count_every_line_once_after_quit() {
    restarts_count_every_line_once(Ending::Quit);
}

#[test]
fn restarts_count_every_line_once_after_sigkill() {
    restarts_count_every_line_once(Ending::Kill);
}

#[test]
fn restarts_count_every_line_once_after_sighup() {
    restarts_count_every_line_once(Ending::Hangup);
}

/// The line starts of `path`: (byte offset, the line's own time, its level).
fn lines_of(path: &Path) -> Vec<(u64, DateTime<Utc>, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut offset = 0u64;
    let mut out = Vec::new();
    for line in text.split_inclusive('\n') {
        let json: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        let at = DateTime::parse_from_rfc3339(json["timestamp"].as_str().unwrap())
            .unwrap()
            .with_timezone(&Utc);
        out.push((offset, at, json["level"].as_str().unwrap().to_string()));
        offset += line.len() as u64;
    }
    out
}

/// Waits until `done` says so, or fails with what it says and the screen.
fn wait_or_show(tmux: &Tmux, what: &str, secs: u64, mut done: impl FnMut() -> (bool, String)) {
    let started = Instant::now();
    loop {
        let (ok, state) = done();
        if ok {
            return;
        }
        assert!(
            started.elapsed().as_secs() < secs,
            "timed out waiting for {what}: {state}; screen:\n{}",
            tmux.capture_in("t:0")
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// What the record says of its log counts, or why it cannot be read.
fn record_state(path: &Path) -> String {
    match record::Reader::open(path) {
        Err(e) => format!("cannot open the record: {e}"),
        Ok(reader) => match reader.logs() {
            Err(e) => format!("cannot read its logs: {e}"),
            Ok(logs) => format!(
                "{} log buckets, watermarks {:?}, writer {:?}",
                logs.len(),
                reader.log_watermarks(),
                record::holder(path)
            ),
        },
    }
}

/// The last `app.errors_1h` the record holds.
fn last_errors_1h(path: &Path) -> Option<f64> {
    let reader = record::Reader::open(path).ok()?;
    let samples = reader.samples().ok()?;
    samples
        .get("app.errors_1h")?
        .iter()
        .rev()
        .find_map(|b| b.last)
}

/// A first run counts the lines of the window's first half hour and quits; while nothing
/// watches, 30,000 lines are written stamped over the next 50 minutes (older than the
/// figures' hour) and 300 over the last hour; then it starts again. With `read_back =
/// "256KiB"` the read-back stops long before the record's watermark: the record counts
/// exactly the lines of the bytes it read, keeps that the stretch from the watermark to
/// the oldest line read is partial (what was read, of how much, why), and the report
/// says "at least" for the summary and every interval that stretch touches — while the
/// figures, whose hour was read whole, are exact. Without the cap the same restart counts
/// every line and the report says nothing extra.
fn a_restart_whose_read_back_is_cut(cap: Option<u64>) {
    const CRITERIA: &str = "success_criteria = [\n  { name = \"Zero critical errors\", measure = \"critical_errors\", target = \"== 0\" },\n  { name = \"Under 10000 errors\", measure = \"errors\", target = \"< 10000\" },\n]\n";
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("app.jsonl");
    let now = Utc::now();
    let start = DateTime::from_timestamp(now.timestamp() - 150 * 60, 0).unwrap();
    let written = Arc::new(Written::default());
    backfill(
        &log_path,
        start,
        start + Duration::minutes(30),
        1200,
        0,
        start,
        &written,
    );
    let before = written.get();
    let read_back = cap
        .map(|c| format!("read_back = \"{}KiB\"\n", c / 1024))
        .unwrap_or_default();
    let config = format!(
        "[deployment]\nname = \"cut\"\nstart = \"{}\"\nlength = \"4h\"\ncheckpoints = \"1h\"\n{CRITERIA}\n[logs.app]\nfiles = [\"{}\"]\n{read_back}",
        start.to_rfc3339(),
        log_path.display()
    );
    let Some(mut runs) = RecordedRuns::new(dir.path(), "cut", &config) else {
        return;
    };
    let record_path = runs.record_path.clone();
    runs.start();
    wait_or_show(
        &runs.tmux,
        "the first run's lines in the record",
        60,
        || {
            (
                recorded(&record_path) == before,
                format!(
                    "{:?} of {before:?} ({})",
                    recorded(&record_path),
                    record_state(&record_path)
                ),
            )
        },
    );
    runs.quit();
    let watermark = record::Reader::open(&record_path)
        .unwrap()
        .log_watermarks()
        .unwrap()["app"];
    assert_eq!(watermark, lines_of(&log_path).last().unwrap().1);

    // Nothing watches: 50 minutes of lines older than the figures' hour, then the hour's.
    backfill(
        &log_path,
        now - Duration::minutes(119),
        now - Duration::minutes(70),
        30_000,
        100_000,
        start,
        &written,
    );
    let hour_from = written.get();
    backfill(
        &log_path,
        now - Duration::minutes(55),
        now - Duration::seconds(1),
        300,
        200_000,
        start,
        &written,
    );
    let all = written.get();
    let hour_errors = (all.1 - hour_from.1) as f64;
    let lines = lines_of(&log_path);
    let file_len = std::fs::metadata(&log_path).unwrap().len();

    runs.start();
    // What the record is to hold: every line, or the first run's and those of the bytes
    // read back (a chunk's first, partial line left out).
    let counted: Vec<&(u64, DateTime<Utc>, String)> = match cap {
        None => lines.iter().collect(),
        Some(cap) => lines
            .iter()
            .filter(|(offset, at, _)| *at <= watermark || *offset > file_len - cap)
            .collect(),
    };
    let expected = counted.iter().fold((0i64, 0i64, 0i64), |(l, e, c), x| {
        (
            l + 1,
            e + i64::from(x.2 == "ERROR" || x.2 == "CRITICAL"),
            c + i64::from(x.2 == "CRITICAL"),
        )
    });
    wait_or_show(
        &runs.tmux,
        "the read-back's counts in the record",
        60,
        || {
            (
                recorded(&record_path) == expected,
                format!("{:?} of {expected:?}", recorded(&record_path)),
            )
        },
    );
    // The figures' hour was read whole: errors_1h is exact.
    wait_or_show(&runs.tmux, "errors_1h of the hour's lines", 30, || {
        let got = last_errors_1h(&record_path);
        (
            got == Some(hour_errors),
            format!("{got:?}, {hour_errors} expected"),
        )
    });
    runs.quit();
    assert_eq!(recorded(&record_path), expected);
    eprintln!(
        "written (lines, errors, critical) {all:?}; recorded {expected:?}; file {file_len} bytes; errors_1h {hour_errors}"
    );

    let report = |format: &str| runs.report(format);
    let json: serde_json::Value = serde_json::from_str(&report("json")).unwrap();
    let markdown = report("md");
    let text = report("text");
    let summary = &json["summary"];
    assert_eq!(summary["total_errors"].as_i64(), Some(expected.1));
    assert_eq!(summary["critical_errors"].as_i64(), Some(expected.2));
    let intervals = json["intervals"].as_array().unwrap();
    assert_eq!(intervals.len(), 3, "{intervals:#?}");
    let sum: i64 = intervals
        .iter()
        .map(|i| i["error_count"].as_i64().unwrap())
        .sum();
    assert_eq!(sum, expected.1, "the intervals add up to the summary");

    let criterion = |name: &str| {
        let c = json["criteria"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {:#}", json["criteria"]))
            .clone();
        (
            c["measured"].as_str().unwrap().to_string(),
            c["verdict"].as_str().unwrap().to_string(),
        )
    };
    let Some(cap) = cap else {
        assert_eq!(
            criterion("Zero critical errors"),
            (all.2.to_string(), "fail".to_string())
        );
        assert_eq!(
            criterion("Under 10000 errors"),
            (all.1.to_string(), "pass".to_string())
        );
        assert_eq!(expected.1, all.1);
        assert!(summary.get("counts_partial").is_none(), "{summary:#}");
        for interval in intervals {
            assert!(interval.get("counts_partial").is_none(), "{interval:#}");
        }
        assert!(!markdown.contains("partial"), "{markdown}");
        assert!(!markdown.contains("at least"), "{markdown}");
        assert!(!text.contains("partial"), "{text}");
        return;
    };
    assert!(
        expected.1 < all.1,
        "the cap cut: {expected:?} of {all:?} counted"
    );
    // The stretch: from the watermark to the oldest line read back.
    let oldest_read = counted.iter().find(|(_, at, _)| *at > watermark).unwrap().1;
    let partial = summary["counts_partial"]
        .as_array()
        .expect("counts_partial");
    assert_eq!(partial.len(), 1, "{partial:#?}");
    let p = &partial[0];
    let time = |v: &serde_json::Value| {
        DateTime::parse_from_rfc3339(v.as_str().unwrap())
            .unwrap()
            .with_timezone(&Utc)
    };
    assert_eq!(p["source"], "app");
    assert_eq!(time(&p["from"]), watermark);
    assert_eq!(time(&p["to"]), oldest_read);
    assert_eq!(p["read_bytes"].as_u64(), Some(cap));
    assert_eq!(p["total_bytes"].as_u64(), Some(file_len));
    assert_eq!(p["why"], "its read_back cap of 256.0 KiB");
    // Hours 0-1 and 1-2 hold the stretch; hour 2-3 was read whole.
    let partial_in: Vec<bool> = intervals
        .iter()
        .map(|i| i.get("counts_partial").is_some())
        .collect();
    assert_eq!(partial_in, [true, true, false], "{intervals:#?}");
    // A lower bound decides "== 0" (it fails already), not "< 10000".
    assert_eq!(
        criterion("Zero critical errors"),
        (
            format!(
                "at least {} (app counted in part after a restart)",
                expected.2
            ),
            "fail".to_string()
        )
    );
    assert_eq!(
        criterion("Under 10000 errors"),
        (
            format!(
                "at least {} (app counted in part after a restart): not enough to judge < 10000",
                expected.1
            ),
            "not_measured".to_string()
        )
    );
    for line in markdown
        .lines()
        .filter(|l| l.contains("at least") || l.contains("partial"))
    {
        eprintln!("md| {line}");
    }
    eprintln!(
        "text| {}",
        text.lines().find(|l| l.starts_with("Errors")).unwrap()
    );
    assert!(
        markdown.contains(&format!("- Total Errors: at least {}", expected.1)),
        "{markdown}"
    );
    assert!(
        markdown.contains("  - partial: app: lines from"),
        "{markdown}"
    );
    assert!(
        text.contains(&format!("Errors: at least {} (", expected.1)),
        "{text}"
    );
    eprintln!("{}", p["text"].as_str().unwrap());
}

#[test]
fn a_restart_whose_read_back_is_cut_says_its_counts_are_partial() {
    a_restart_whose_read_back_is_cut(Some(256 * 1024));
}

#[test]
fn a_restart_read_back_whole_says_nothing_more() {
    a_restart_whose_read_back_is_cut(None);
}
