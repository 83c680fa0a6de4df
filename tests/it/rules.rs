//! Rule semantics through the state owner, with an injected clock: `for`, consecutive
//! failures, no data vs source error, maintenance silences, storm control, flapping; and
//! the config that turns them on. (The state machines alone are unit-tested in
//! `src/rules/engine.rs`, `src/rules/notify.rs` and `src/state/alerts.rs`.)

use chrono::{DateTime, Duration, TimeZone, Utc};
use watchpost::config::Config;
use watchpost::model::figure::{Reading, Severity};
use watchpost::model::rule::{Priority, Rule, Threshold};
use watchpost::model::update::{SourceHealth, Update};
use watchpost::rules::engine::Condition;
use watchpost::rules::notify::Silence;
use watchpost::state::alerts::{AlertState, EventKind};
use watchpost::state::{AppState, Outgoing, Window};

fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 4, 10, 0, 0).unwrap() + Duration::seconds(secs)
}

fn state() -> AppState {
    let mut state = AppState::new(Window::new("rules", t(0), Duration::hours(24)));
    state.enable_outbox();
    state
}

fn up(value: f64) -> Reading {
    Reading::number("api.up", "api up", value, "")
        .with_rule(Rule::crit_only(Threshold::below(1.0)).with_priority(Priority::P0))
}

fn latency(ms: f64) -> Reading {
    Reading::number("api.health_ms", "api health latency", ms, "ms")
}

fn read(state: &mut AppState, readings: Vec<Reading>, at: i64) {
    state.apply(
        Update::Readings {
            source: "api".into(),
            readings,
        },
        t(at),
    );
}

/// Alert events in the outbox since the last call: (kind, figure, rings).
fn events(state: &mut AppState) -> Vec<(EventKind, String, bool)> {
    state
        .take_outbox()
        .into_iter()
        .filter_map(|o| match o {
            Outgoing::Alert(e) => Some((e.kind, e.id, e.notify)),
            _ => None,
        })
        .collect()
}

#[test]
fn for_from_the_config_keeps_an_alert_pending_then_fires_it() {
    let config = Config::parse(
        r#"
        [service.api]
        health_url = "http://127.0.0.1:9/health"

        [rules."api.health_ms"]
        warn = "> 1000"
        crit = "> 2000"
        for = "30s"
        "#,
    )
    .unwrap();
    let mut s = state();
    s.rules = config.rules.clone().into_iter().collect();
    read(&mut s, vec![latency(2500.0)], 0);
    let figure = s.figure("api.health_ms").unwrap();
    assert_eq!(
        figure.figure.severity,
        Severity::Crit,
        "the figure is CRIT now"
    );
    assert_eq!(s.alerts.active[0].state, AlertState::Pending);
    assert_eq!(
        s.worst(),
        Severity::Ok,
        "a pending alert does not count yet"
    );
    assert_eq!(
        events(&mut s),
        vec![(EventKind::Pending, "api.health_ms".into(), false)]
    );
    read(&mut s, vec![latency(2600.0)], 20);
    assert!(events(&mut s).is_empty());
    // The `for` runs out between readings: the clock's sweep fires it.
    assert!(s.tick(t(31)));
    assert_eq!(
        events(&mut s),
        vec![(EventKind::Fired, "api.health_ms".into(), true)]
    );
    assert_eq!(s.worst(), Severity::Crit);
    assert_eq!(s.alerts.active[0].began, t(0));
    assert_eq!(s.alerts.active[0].since, t(31));
    read(&mut s, vec![latency(90.0)], 40);
    assert_eq!(
        events(&mut s),
        vec![(EventKind::Resolved, "api.health_ms".into(), false)]
    );
    assert_eq!(s.alerts.resolved[0].resolved_at, Some(t(40)));
}

#[test]
fn min_failures_from_the_config_needs_bad_readings_in_a_row() {
    let config = Config::parse(
        r#"
        [service.api]
        health_url = "http://127.0.0.1:9/health"

        [rules."api.up"]
        crit = "< 1"
        priority = "P0"
        min_failures = 3
        "#,
    )
    .unwrap();
    assert_eq!(config.rules["api.up"].min_failures, Some(3));
    let mut s = state();
    s.rules = config.rules.clone().into_iter().collect();
    read(&mut s, vec![up(0.0)], 0);
    read(&mut s, vec![up(0.0)], 2);
    read(&mut s, vec![up(1.0)], 4);
    read(&mut s, vec![up(0.0)], 6);
    read(&mut s, vec![up(0.0)], 8);
    assert_eq!(s.worst(), Severity::Ok, "never three in a row yet");
    read(&mut s, vec![up(0.0)], 10);
    assert_eq!(s.worst(), Severity::Crit);
    assert_eq!(s.alerts.active[0].priority, Priority::P0);
    assert_eq!(s.alerts.active[0].began, t(6));
}

#[test]
fn a_failing_source_is_source_error_and_a_silent_one_no_data() {
    let mut s = state();
    read(&mut s, vec![up(1.0), latency(20.0)], 0);
    // The source fails: its `up` says why, its latency figure is not read at all.
    read(
        &mut s,
        vec![Reading::failed("api.up", "api up", "connection refused")],
        2,
    );
    s.apply(
        Update::Health {
            source: "api".into(),
            health: SourceHealth::Error {
                message: "connection refused".into(),
                retry_in_secs: Some(2),
            },
        },
        t(2),
    );
    // One alert for the failing source; the figure that failed says so on its own row
    // but folds into the source's alert; the other one is not made up as failing.
    let conditions: Vec<(String, Condition)> = s
        .alerts
        .active
        .iter()
        .map(|a| (a.id.clone(), a.condition))
        .collect();
    assert_eq!(
        conditions,
        vec![("api.source".to_string(), Condition::SourceError)]
    );
    let up = s.figure("api.up").unwrap();
    assert_eq!(up.figure.severity, Severity::Unknown);
    assert!(up.figure.error.is_some());
    assert_eq!(s.alerts.active[0].severity, Severity::Unknown);
    assert_eq!(s.worst(), Severity::Unknown, "an error is never OK");
    assert_eq!(events(&mut s).len(), 1);
    // Answering with errors keeps the latency figure alive: no "no data" for it.
    for at in [4, 6, 30, 60] {
        s.apply(
            Update::Health {
                source: "api".into(),
                health: SourceHealth::Error {
                    message: "connection refused".into(),
                    retry_in_secs: Some(2),
                },
            },
            t(at),
        );
        s.tick(t(at));
    }
    // A round with no readings at all: the source itself is the alert.
    let source = s
        .alerts
        .active
        .iter()
        .find(|a| a.id == "api.source")
        .expect("the source's own alert");
    assert_eq!(source.condition, Condition::SourceError);
    assert!(source.reason.contains("connection refused"));
    assert!(!s.alerts.active.iter().any(|a| a.id == "api.health_ms"));
    // It answers again: the source's alert resolves.
    s.apply(
        Update::Health {
            source: "api".into(),
            health: SourceHealth::Ok,
        },
        t(62),
    );
    assert!(!s.alerts.active.iter().any(|a| a.id == "api.source"));
    assert_eq!(s.alerts.resolved[0].id, "api.source");

    // Another source goes quiet: no data after three intervals (at least 15 s).
    let mut s = state();
    for at in [0, 5, 10] {
        read(&mut s, vec![latency(20.0)], at);
    }
    s.take_outbox();
    assert!(!s.tick(t(25)));
    assert!(s.tick(t(26)));
    let alert = &s.alerts.active[0];
    assert_eq!(alert.condition, Condition::NoData);
    assert!(
        alert.reason.contains("no reading for 16s"),
        "{}",
        alert.reason
    );
    let samples: Vec<Condition> = s
        .take_outbox()
        .into_iter()
        .filter_map(|o| match o {
            Outgoing::Sample { condition, .. } => Some(condition),
            _ => None,
        })
        .collect();
    assert_eq!(samples, vec![Condition::NoData], "the record hears of it");
}

#[test]
fn silenced_alerts_are_recorded_but_neither_ring_nor_count_until_the_silence_ends() {
    let config = Config::parse(
        r#"
        [deployment]
        silences = [{ from = "T+10m", until = "T+20m", figures = ["api.*"], reason = "planned restart" }]
        "#,
    )
    .unwrap();
    let mut s = state();
    s.silences = config
        .deployment
        .silences
        .iter()
        .map(|spec| spec.resolve(t(0)).unwrap())
        .collect();
    assert_eq!(s.silences[0].from, t(600));
    read(&mut s, vec![up(0.0)], 700);
    assert_eq!(
        events(&mut s),
        vec![(EventKind::Fired, "api.up".into(), false)]
    );
    assert_eq!(
        s.alerts.active[0].silenced.as_deref(),
        Some("planned restart")
    );
    assert_eq!(s.worst(), Severity::Ok);
    assert_eq!(s.alerts.silenced(), 1);
    // Still down as the maintenance ends.
    read(&mut s, vec![up(0.0)], 1195);
    s.tick(t(1199));
    assert!(events(&mut s).is_empty());
    s.tick(t(1200));
    assert_eq!(
        events(&mut s),
        vec![(EventKind::Unsilenced, "api.up".into(), true)]
    );
    assert_eq!(s.worst(), Severity::Crit);
    // Bad silence times are config errors that name the line.
    let err = Config::parse("[deployment]\nsilences = [{ from = \"T+soon\", until = \"T+1h\" }]\n")
        .unwrap_err();
    assert!(err.contains("line 2"), "{err}");
}

#[test]
fn storm_control_rings_at_most_five_times_in_five_minutes() {
    let mut s = state();
    s.rules.insert(
        "api.health_ms".into(),
        Rule::warn_crit(Threshold::above(1000.0), Threshold::above(2000.0)),
    );
    let mut rung = 0;
    let mut held = 0;
    // Warn and crit in turn every 10 s for 4 minutes: an escalation every 20 s.
    for i in 0..24 {
        let ms = if i % 2 == 0 { 1500.0 } else { 2500.0 };
        read(&mut s, vec![latency(ms)], i * 10);
        for (_, _, rings) in events(&mut s) {
            if rings {
                rung += 1;
            }
        }
        held = s.alerts.active[0].held_back;
    }
    assert_eq!(rung, 5);
    assert!(held >= 6, "held back {held}");
}

#[test]
fn a_flapping_alert_rings_once_and_stays_listed() {
    let mut s = state();
    let mut rung = Vec::new();
    for i in 0..8 {
        read(&mut s, vec![up(0.0)], i * 20);
        read(&mut s, vec![up(1.0)], i * 20 + 10);
        rung.extend(events(&mut s).into_iter().filter(|(_, _, r)| *r));
    }
    let kinds: Vec<EventKind> = rung.iter().map(|(k, _, _)| *k).collect();
    assert_eq!(
        kinds,
        vec![
            EventKind::Fired,
            EventKind::Fired,
            EventKind::Fired,
            EventKind::Flapping
        ]
    );
    assert_eq!(s.alerts.active.len(), 1);
    assert_eq!(s.alerts.active[0].state, AlertState::Flapping);
    assert_eq!(
        s.worst(),
        Severity::Crit,
        "flapping counts even while OK for now"
    );
}

#[test]
fn check_reports_the_instantaneous_severity_of_the_same_rules() {
    let mut s = AppState::new(Window::new("rules", t(0), Duration::hours(24)));
    s.rules.insert(
        "api.health_ms".into(),
        Rule::crit_only(Threshold::above(2000.0)).held_for(std::time::Duration::from_secs(60)),
    );
    read(&mut s, vec![latency(2500.0)], 0);
    let report = watchpost::check::report_from_state(&s, &["api".into()], t(0));
    assert_eq!(
        report.worst,
        Severity::Crit,
        "check has no history: instantaneous"
    );
    assert_eq!(s.worst(), Severity::Ok, "the dashboard waits for `for`");
    assert_eq!(
        watchpost::rules::judge(&latency(2500.0), s.rules.get("api.health_ms")),
        Severity::Crit
    );
}

#[test]
fn the_window_config_takes_checkpoints_criteria_and_on_alert() {
    let config = Config::parse(
        r#"
        [deployment]
        name = "warungin"
        length = "3m"
        checkpoints = "30s"
        record_max_mb = 20
        on_alert = ["notify-send", "watchpost"]
        success_criteria = [
          { name = "p99 under 2 s", measure = "p99 of *.health_ms", target = "< 2000" },
          { name = "no critical errors", measure = "critical_errors" },
        ]
        "#,
    )
    .unwrap();
    let window = Window::from_config(&config.deployment, t(0)).unwrap();
    let offsets: Vec<i64> = window.checkpoints.iter().map(|c| c.num_seconds()).collect();
    assert_eq!(offsets, vec![0, 30, 60, 90, 120, 150, 180]);
    assert_eq!(window.intervals().len(), 6);
    assert_eq!(window.interval_at(t(95)), Some(3));
    assert_eq!(config.deployment.record_max_mb, Some(20));
    assert_eq!(config.deployment.on_alert, vec!["notify-send", "watchpost"]);
    assert_eq!(
        config.deployment.success_criteria.as_ref().unwrap().len(),
        2
    );

    let list = Config::parse("[deployment]\ncheckpoints = [\"1h\", \"4h\"]\n").unwrap();
    let window = Window::from_config(&list.deployment, t(0)).unwrap();
    let hours: Vec<i64> = window.checkpoints.iter().map(|c| c.num_hours()).collect();
    assert_eq!(hours, vec![0, 1, 4, 24]);

    for (text, words) in [
        ("[deployment]\ncheckpoints = \"soon\"\n", "line 2"),
        (
            "[deployment]\nsuccess_criteria = [{ name = \"x\", measure = \"median of y\" }]\n",
            "median",
        ),
        ("[rules.\"a.b\"]\nfor = \"a while\"\n", "line 2"),
    ] {
        let err = Config::parse(text).unwrap_err();
        assert!(err.contains(words), "{text}: {err}");
    }
}

#[test]
fn silences_resolve_offsets_against_the_window_start() {
    let s = Silence::parse_time("T+1h30m", t(0)).unwrap();
    assert_eq!(s, t(5400));
}
