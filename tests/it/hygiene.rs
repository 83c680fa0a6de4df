//! Alert hygiene through the state owner, with real collectors: a statistical figure does
//! not fire before it has enough samples, and a service that is down raises one page, not
//! one per figure that depends on it being up.

use std::io::Write;
use std::time::Duration;
use watchpost::collect::Collector;
use watchpost::collect::logs::LogCollector;
use watchpost::config::Config;
use watchpost::model::rule::Priority;
use watchpost::state::alerts::AlertEvent;
use watchpost::state::{AppState, Outgoing, Window};

fn state() -> AppState {
    let mut state = AppState::new(Window::new(
        "hygiene",
        chrono::Utc::now(),
        chrono::Duration::hours(24),
    ));
    state.enable_outbox();
    state
}

/// Applies one poll (and a tick) at the real time; returns the alert events it caused.
async fn step(collector: &mut dyn Collector, state: &mut AppState) -> Vec<AlertEvent> {
    let now = chrono::Utc::now();
    for update in collector.poll().await {
        state.apply(update, now);
    }
    state.tick(now);
    state
        .take_outbox()
        .into_iter()
        .filter_map(|o| match o {
            Outgoing::Alert(e) => Some(e),
            _ => None,
        })
        .collect()
}

fn describe(events: &[AlertEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            format!(
                "{} {} {} {} ({})",
                e.kind.as_str(),
                e.id,
                e.priority.label(),
                e.condition.label(),
                e.value
            )
        })
        .collect()
}

fn latency_line(ms: f64) -> String {
    let at = chrono::Utc::now().to_rfc3339();
    format!(
        "{{\"timestamp\":\"{at}\",\"level\":\"INFO\",\"message\":\"request served\",\"latency_ms\":{ms}}}\n"
    )
}

#[tokio::test]
async fn a_p95_with_one_slow_sample_raises_nothing_and_fires_with_enough() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let mut file = std::fs::File::create(&path).unwrap();
    let config = Config::parse(&format!(
        r#"
        [logs.app]
        files = [{path:?}]

        [[logs.app.metric]]
        id = "latency_p95"
        kind = "p95"
        field = "latency_ms"
        window = "5m"
        crit = "> 2000"
        priority = "P1"
        "#,
        path = path.display().to_string()
    ))
    .unwrap();
    let mut collector = LogCollector::new("app", &config.logs["app"]);
    let mut s = state();
    let mut events = step(&mut collector, &mut s).await;

    // One slow request: a p95 of one sample is that sample. Not a page.
    file.write_all(latency_line(2842.0).as_bytes()).unwrap();
    for _ in 0..4 {
        events.extend(step(&mut collector, &mut s).await);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let figure = s.figure("app.latency_p95").expect("the figure is shown");
    assert_eq!(figure.figure.value.as_f64(), Some(2842.0), "{figure:?}");
    assert!(
        events.is_empty() && s.alerts.active.is_empty(),
        "one sample must not raise anything: {:#?}; active {:#?}",
        describe(&events),
        s.alerts.active
    );

    // Enough slow requests: it fires, P1 CRIT, once.
    let mut text = String::new();
    for n in 0..40 {
        text.push_str(&latency_line(2500.0 + n as f64));
    }
    file.write_all(text.as_bytes()).unwrap();
    for _ in 0..4 {
        events.extend(step(&mut collector, &mut s).await);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let fired: Vec<&AlertEvent> = events
        .iter()
        .filter(|e| e.kind.as_str() == "fired")
        .collect();
    assert_eq!(fired.len(), 1, "{:#?}", describe(&events));
    assert_eq!(fired[0].id, "app.latency_p95");
    assert_eq!(fired[0].priority, Priority::P1);
    assert_eq!(fired[0].condition.label(), "CRIT");
}
