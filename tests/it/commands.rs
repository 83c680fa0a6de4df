//! `[command.NAME]`: figures from a command run on this machine, and on a `[hosts]` host
//! over the real sshd of support/sshd.rs.

use std::time::{Duration, Instant};
use watchpost::collect::command::CommandCollector;
use watchpost::collect::{self, Collector};
use watchpost::config::{CommandSource, Config};
use watchpost::model::figure::{Reading, Value};
use watchpost::model::update::{SourceHealth, Update};

/// The one `[command.NAME]` of a config text (read and checked as a file is).
fn command(text: &str) -> (String, CommandSource) {
    let config = Config::parse_checked(text).unwrap_or_else(|p| panic!("{p:?}"));
    config.command.into_iter().next().expect("a [command.NAME]")
}

fn reading(updates: &[Update]) -> Reading {
    updates
        .iter()
        .find_map(|u| match u {
            Update::Readings { readings, .. } => readings.first().cloned(),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no reading in {updates:?}"))
}

fn health(updates: &[Update]) -> Option<SourceHealth> {
    updates.iter().find_map(|u| match u {
        Update::Health { health, .. } => Some(health.clone()),
        _ => None,
    })
}

const CONNECTIONS: &str = r#"
[command.pg]
id = "connections"
argv = ["sh", "-c", "echo 'accepting'; echo \"connections: 7\""]
field = "connections"
warn = "> 5"
"#;

#[tokio::test]
async fn a_local_command_gives_the_field_it_prints() {
    let (name, spec) = command(CONNECTIONS);
    let mut collector = CommandCollector::new(&name, &spec);
    let updates = collector.poll().await;
    let r = reading(&updates);
    assert_eq!(r.id, "pg.connections");
    assert_eq!(r.value, Value::Number(7.0), "{r:?}");
    assert!(r.default_rule.is_some(), "the warn threshold goes with it");
    assert_eq!(health(&updates), Some(SourceHealth::Ok));
    assert_eq!(
        collector.panes(),
        &[watchpost::model::pane::PaneId::Figures]
    );
}

#[tokio::test]
async fn a_regex_reads_its_first_group_and_a_failed_command_is_an_error() {
    let (name, spec) = command(
        r#"
[command.db]
id = "clients"
argv = ["sh", "-c", "echo 'server up, 12 clients, 3 idle'"]
regex = '(\d+) clients'
"#,
    );
    let r = reading(&CommandCollector::new(&name, &spec).poll().await);
    assert_eq!(r.id, "db.clients");
    assert_eq!(r.value, Value::Number(12.0), "{r:?}");

    // Same extraction, but the command fails: the figure is an error, with its stderr.
    let failing = CommandSource {
        argv: vec![
            "sh".into(),
            "-c".into(),
            "echo '12 clients'; echo 'no such database' >&2; exit 3".into(),
        ],
        ..spec.clone()
    };
    let r = reading(&CommandCollector::new(&name, &failing).poll().await);
    let error = r.error.clone().unwrap_or_default();
    assert!(
        error.contains("exit code 3") && error.contains("no such database"),
        "{r:?}"
    );

    // Without extraction the exit code is the figure, judged critical when it is not 0.
    let exit_code = CommandSource {
        regex: None,
        ..failing
    };
    let r = reading(&CommandCollector::new(&name, &exit_code).poll().await);
    assert_eq!(r.value, Value::Number(3.0), "{r:?}");
    assert!(r.default_rule.is_some());
}

#[tokio::test]
async fn a_hanging_command_is_cut_at_its_timeout_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let (name, mut spec) = command(
        r#"
[command.stuck]
argv = ["sleep", "60"]
interval = "5s"
timeout = "1s"
"#,
    );
    // Notes its pid first (`$` in the file would be read as a variable of the config).
    spec.argv = vec![
        "sh".into(),
        "-c".into(),
        "echo $$ > \"$0\"; exec sleep 60".into(),
        pid_file.display().to_string(),
    ];
    let started = Instant::now();
    let updates = CommandCollector::new(&name, &spec).poll().await;
    let took = started.elapsed();
    assert!(took < Duration::from_millis(2500), "took {took:?}");
    let r = reading(&updates);
    assert_eq!(r.id, "stuck.value");
    let error = r.error.clone().unwrap_or_default();
    assert!(error.contains("still running after 1s"), "{r:?}");
    match health(&updates) {
        Some(SourceHealth::Error { message, .. }) => assert!(message.contains("1s"), "{message}"),
        other => panic!("health {other:?}"),
    }
    // The process is gone (or a zombie about to be reaped), not left sleeping.
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let stat = format!("/proc/{}/stat", pid.trim());
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let state = std::fs::read_to_string(&stat).unwrap_or_default();
        let alive = state
            .rsplit(')')
            .next()
            .and_then(|s| s.split_whitespace().next())
            .is_some_and(|s| s != "Z" && s != "X");
        if !alive {
            break;
        }
        assert!(Instant::now() < deadline, "still running: {state}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_command_over_ssh_gives_the_same_figure() {
    let sshd = sshd_or_skip!();
    let pool = sshd.pool("id_ed25519");
    let (name, local_spec) = command(CONNECTIONS);
    let spec = CommandSource {
        host: "test".into(),
        ..local_spec.clone()
    };
    let mut remote = CommandCollector::on(&name, &spec, collect::reach(&pool, "test"));
    let deadline = Instant::now() + Duration::from_secs(15);
    let remote_reading = loop {
        let updates = remote.poll().await;
        if let Some(r) = updates.iter().find_map(|u| match u {
            Update::Readings { readings, .. } => readings.first().cloned(),
            _ => None,
        }) {
            break r;
        }
        assert!(Instant::now() < deadline, "no figure: {updates:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let local_reading = reading(&CommandCollector::new(&name, &local_spec).poll().await);
    assert_eq!(remote_reading.id, local_reading.id);
    assert_eq!(remote_reading.value, local_reading.value);
    assert_eq!(remote_reading.value, Value::Number(7.0));
    assert_eq!(remote_reading.detail, "on test");

    // A hanging command on the host is cut at its timeout too.
    let stuck = CommandSource {
        argv: vec!["sleep".into(), "60".into()],
        timeout: Duration::from_secs(1),
        interval: Duration::from_secs(5),
        ..spec
    };
    let started = Instant::now();
    let updates = CommandCollector::on(&name, &stuck, collect::reach(&pool, "test"))
        .poll()
        .await;
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
    let error = reading(&updates).error.unwrap_or_default();
    assert!(error.contains("still running after 1s"), "{error}");
}

#[test]
fn config_problems_have_their_line_and_column() {
    let text = r#"[command.pg]
id = "ready"
regex = "("

[command.other]
argv = []
"#;
    let got: Vec<String> = watchpost::config::validate::problems(text)
        .iter()
        .map(|p| p.to_string())
        .collect();
    let has = |start: &str, part: &str| {
        assert!(
            got.iter().any(|l| l.starts_with(start) && l.contains(part)),
            "no {start:?} … {part:?} in {got:#?}"
        )
    };
    has("line 2, column 1:", "[command.pg] needs `argv`");
    has("line 3, column 9:", "not a valid regex");
    has("line 6, column 8:", "the command is empty");
}
