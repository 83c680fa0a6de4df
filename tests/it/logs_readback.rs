//! "Nothing missed" in the log ingest: a window's figures read that window (the lines
//! written before watchpost started are read back, each counted once), a line's level
//! decides where it names one, and levels read through colour. Started after the lines
//! were written, as an operator opens watchpost 40 minutes into a deploy.

use chrono::{DateTime, Duration as Span, SecondsFormat, Utc};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};
use watchpost::collect::Collector;
use watchpost::collect::logs::LogCollector;
use watchpost::config::Config;
use watchpost::model::figure::{Reading, Value};
use watchpost::model::update::{LogLine, Update};

/// What a generated log holds.
pub(crate) struct Written {
    pub errors: u64,
    /// ERROR lines per minute (Unix minute).
    pub per_minute: std::collections::BTreeMap<i64, u64>,
}

/// `lines` JSONL lines spread over the `span` before now: every 10th an ERROR, every 7th
/// (not an error) a WARNING "Login failed … invalid password", the rest INFO.
pub(crate) fn write_jsonl(path: &Path, lines: u64, span: Span, now: DateTime<Utc>) -> Written {
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    let start = now - span;
    let step = span.num_milliseconds() / lines as i64;
    let mut written = Written {
        errors: 0,
        per_minute: Default::default(),
    };
    for i in 0..lines {
        let at = start + Span::milliseconds(step * i as i64);
        let ts = at.to_rfc3339_opts(SecondsFormat::Millis, true);
        if i % 10 == 3 {
            written.errors += 1;
            *written
                .per_minute
                .entry(at.timestamp().div_euclid(60))
                .or_default() += 1;
            writeln!(
                out,
                r#"{{"timestamp":"{ts}","level":"ERROR","message":"Failed to call MCP tool","request":{i},"latency_ms":{}}}"#,
                i % 900
            )
        } else if i % 7 == 0 {
            writeln!(
                out,
                r#"{{"timestamp":"{ts}","level":"WARNING","message":"Login failed for user u{i}: invalid password","request":{i}}}"#
            )
        } else {
            writeln!(
                out,
                r#"{{"timestamp":"{ts}","level":"INFO","message":"request served","request":{i},"latency_ms":{}}}"#,
                i % 500
            )
        }
        .unwrap();
    }
    out.flush().unwrap();
    written
}

fn number(reading: &Reading) -> f64 {
    match reading.value {
        Value::Number(n) => n,
        ref other => panic!(
            "{} is not a number: {other:?} ({})",
            reading.id, reading.detail
        ),
    }
}

/// One poll's readings of source `name`, by id.
async fn readings(collector: &mut LogCollector) -> Vec<Reading> {
    collector
        .poll()
        .await
        .into_iter()
        .filter_map(|u| match u {
            Update::Readings { readings, .. } => Some(readings),
            _ => None,
        })
        .flatten()
        .collect()
}

fn find<'a>(readings: &'a [Reading], id: &str) -> &'a Reading {
    readings
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no {id} in {readings:?}"))
}

/// Polls as the dashboard does (the collector's own interval) until `id` is a number.
async fn poll_until_read(collector: &mut LogCollector, id: &str) -> Vec<Reading> {
    let started = Instant::now();
    loop {
        let got = readings(collector).await;
        if matches!(find(&got, id).value, Value::Number(_)) {
            return got;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "still reading back: {:?}",
            find(&got, id)
        );
        tokio::time::sleep(collector.interval()).await;
    }
}

fn config(body: &str) -> Config {
    Config::parse(body).unwrap_or_else(|e| panic!("{e}"))
}

fn check_json(config_path: &Path) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_watchpost"))
        .args([
            "check",
            "--config",
            config_path.to_str().unwrap(),
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn check_of<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {report:#}"))
}

/// The issue's case: 200,000 JSONL lines of the last 50 minutes, 20,000 of them ERROR and
/// about 25,000 WARNING lines that say "failed". `check` (the binary, from a file and
/// from `cat` run as a command) and the dashboard count the ERROR lines exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_written_before_the_start_is_counted_whole_by_check_and_the_dashboard() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.jsonl");
    let now = Utc::now();
    let written = write_jsonl(&log, 200_000, Span::minutes(50), now);
    assert_eq!(written.errors, 20_000);
    let toml = format!(
        "[deployment]\nname = \"readback\"\n\n[logs.app]\nfiles = [{log:?}]\n\n\
         [[logs.app.metric]]\nid = \"latency_p95\"\nkind = \"p95\"\nfield = \"latency_ms\"\nwindow = \"15m\"\n\n\
         [logs.piped]\ncommand = [\"cat\", {log:?}]\n",
        log = log.display().to_string()
    );
    let config_path = dir.path().join("watchpost.toml");
    std::fs::write(&config_path, &toml).unwrap();

    // check, as cron runs it.
    let report = check_json(&config_path);
    for id in ["app.errors_1h", "piped.errors_1h"] {
        let check = check_of(&report, id);
        assert_eq!(check["value"].as_f64(), Some(20_000.0), "{id}: {check:#}");
        assert_eq!(check["error"], serde_json::Value::Null, "{id}: {check:#}");
    }
    assert!(
        !check_of(&report, "piped.errors_1h")["detail"]
            .as_str()
            .unwrap_or("")
            .contains("partial"),
        "cat ends: nothing cut"
    );

    // The dashboard: the tail at once, figures "reading back", then the exact counts.
    let cfg = config(&toml);
    let mut collector = LogCollector::new("app", &cfg.logs["app"]);
    let first = collector.poll().await;
    let tail: Vec<&LogLine> = first
        .iter()
        .filter_map(|u| match u {
            Update::Logs(lines) => Some(lines),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(!tail.is_empty(), "the newest lines are shown at once");
    assert!(tail.len() <= 200);
    let first_readings: Vec<Reading> = first
        .into_iter()
        .filter_map(|u| match u {
            Update::Readings { readings, .. } => Some(readings),
            _ => None,
        })
        .flatten()
        .collect();
    let errors = find(&first_readings, "app.errors_1h");
    assert_eq!(
        errors.value,
        Value::Text("reading back".into()),
        "{errors:?}"
    );
    let got = poll_until_read(&mut collector, "app.errors_1h").await;
    assert_eq!(number(find(&got, "app.errors_1h")), 20_000.0);
    let at = Utc::now();
    let last_minute = at.timestamp().div_euclid(60) - 1;
    let per_min = written.per_minute.get(&last_minute).copied().unwrap_or(0) as f64;
    assert_eq!(number(find(&got, "app.errors_per_min")), per_min);
    let p95 = number(find(&got, "app.latency_p95"));
    assert!((400.0..900.0).contains(&p95), "{p95}");

    // Lines written after the start are counted once, on top.
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let ts = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    for _ in 0..5 {
        writeln!(
            file,
            r#"{{"timestamp":"{ts}","level":"ERROR","message":"late"}}"#
        )
        .unwrap();
    }
    let got = readings(&mut collector).await;
    assert_eq!(number(find(&got, "app.errors_1h")), 20_005.0);
    assert_eq!(
        number(find(&readings(&mut collector).await, "app.errors_1h")),
        20_005.0
    );
}

/// Older lines than the window are not counted, and the read-back stops near the window's
/// start rather than reading the whole file.
#[tokio::test]
async fn lines_older_than_the_window_are_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.jsonl");
    let now = Utc::now();
    // 3 hours, evenly: one hour (and the current minute) of it counts.
    let written = write_jsonl(&log, 36_000, Span::hours(3), now);
    let current = now.timestamp().div_euclid(60);
    let in_hour: u64 = written
        .per_minute
        .range(current - 59..=current)
        .map(|(_, n)| n)
        .sum();
    let cfg = config(&format!(
        "[logs.app]\nfiles = [{:?}]\n",
        log.display().to_string()
    ));
    let mut collector = LogCollector::new("app", &cfg.logs["app"]);
    let got = poll_until_read(&mut collector, "app.errors_1h").await;
    let counted = number(find(&got, "app.errors_1h")) as u64;
    // A minute may turn between the count and the reading.
    assert!(
        counted.abs_diff(in_hour) <= written.errors / 180 + 1,
        "{counted} vs {in_hour}"
    );
    assert!(find(&got, "app.errors_1h").detail.is_empty());
}

/// The level decides where a line names one; the pattern classifies the rest, and
/// applies to leveled lines too when the source asks for it.
#[tokio::test]
async fn the_level_decides_and_the_pattern_classifies_lines_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    let lines = [
        "2025-12-12T10:00:00Z WARNING Login failed for user bob: invalid password",
        r#"{"level":"warning","message":"Login failed for user eve"}"#,
        "level=info msg=\"cleanup failed, retrying\"",
        "INFO: request failed validation",
        "request failed with status 500",
        "Traceback: something exception here",
        "2025-12-12T10:00:01Z ERROR db down",
        "all quiet",
    ];
    let classify = |all_levels: bool| -> Vec<bool> {
        let mut source = config(&format!(
            "[logs.app]\nfiles = [{:?}]\n",
            log.display().to_string()
        ))
        .logs["app"]
            .clone();
        source.error_pattern_all_levels = all_levels;
        let pattern = regex::RegexBuilder::new(&source.error_pattern)
            .case_insensitive(true)
            .build()
            .unwrap();
        let rule = watchpost::collect::logs::parse::ErrorRule {
            pattern: &pattern,
            all_levels,
        };
        lines
            .iter()
            .map(|l| {
                watchpost::collect::logs::parse::parse_line_with(
                    "app",
                    l.as_bytes(),
                    0,
                    rule,
                    Utc::now(),
                )
                .is_error
            })
            .collect()
    };
    assert_eq!(
        classify(false),
        [false, false, false, false, true, true, true, false]
    );
    assert_eq!(
        classify(true),
        [true, true, true, true, true, true, true, false]
    );
    // And the config key reads.
    let source =
        &config("[logs.app]\nfiles = [\"/x\"]\nerror_pattern_all_levels = true\n").logs["app"];
    assert!(source.error_pattern_all_levels);
    let _ = std::fs::write(&log, lines.join("\n"));
}

/// Coloured levels, bracketed ones and the usual framework shapes read as levels.
#[test]
fn levels_read_through_colour_and_common_shapes() {
    use watchpost::collect::logs::parse::parse_line;
    use watchpost::model::update::LogLevel;
    let pattern = regex::RegexBuilder::new(&watchpost::config::default_error_pattern())
        .case_insensitive(true)
        .build()
        .unwrap();
    let level = |text: &str| parse_line("app", text.as_bytes(), 0, &pattern, Utc::now());
    let coloured = [
        "\x1b[31mERROR\x1b[0m database unreachable",
        "\x1b[1;31mERROR\x1b[0m database unreachable",
        "\x1b[38;5;196mERROR\x1b[0m database unreachable",
        "2025-12-12T10:00:00Z \x1b[31mERROR\x1b[0m database unreachable",
        "backend-1  | \x1b[1;31mERROR\x1b[0m: database unreachable",
        "\x1b[36mbackend-1  |\x1b[0m \x1b[38;5;196mERROR\x1b[39m database unreachable",
    ];
    for text in coloured {
        let line = level(text);
        assert_eq!(line.level, LogLevel::Error, "{text:?}");
        assert!(line.is_error, "{text:?}");
    }
    // A coloured WARNING stays a warning, whatever it says.
    let line = level("\x1b[33mWARNING\x1b[0m login failed");
    assert_eq!((line.level, line.is_error), (LogLevel::Warn, false));
    // A coloured JSON level.
    let line = level(r#"{"level":"\u001b[31merror\u001b[0m","msg":"x"}"#);
    assert_eq!(line.level, LogLevel::Error);

    for (text, want) in [
        ("[ERROR] upstream timed out", LogLevel::Error),
        ("[2025-12-12 10:00:00,123] [WARNING] slow", LogLevel::Warn),
        (
            "E1203 10:30:45.123456       1 controller.go:123] sync failed",
            LogLevel::Error,
        ),
        (
            "I1203 10:30:45.123456       1 controller.go:123] sync failed once",
            LogLevel::Info,
        ),
        (
            "ts=2025-12-12T10:00:00Z caller=db.go:12 component=db level=error msg=down",
            LogLevel::Error,
        ),
        (
            "2025-12-12T10:00:00Z web1 app[42]: component=db req=9 level=warn x",
            LogLevel::Warn,
        ),
        ("<3>kernel: oops", LogLevel::Error),
        ("<4>kernel: failed to load firmware", LogLevel::Warn),
        ("ERROR:root:payment failed", LogLevel::Error),
        ("CRITICAL:tmws.app:disk full", LogLevel::Critical),
    ] {
        assert_eq!(level(text).level, want, "{text}");
    }
}

/// journald's window from a real journal: a transient unit writes K ERROR lines and exits
/// before watchpost starts; `check` and the dashboard count K, and the tail ends with the
/// newest line. Needs a journal and `systemd-run` (systemd as the init): skipped, saying
/// why, where there is none (a container without systemd).
#[tokio::test]
async fn journald_reads_its_window_back_from_a_real_journal() {
    let probe = std::process::Command::new("journalctl")
        .args(["--no-pager", "--lines=0"])
        .output();
    let reason = match &probe {
        Err(e) => Some(format!("journalctl cannot run: {e}")),
        Ok(out) if String::from_utf8_lossy(&out.stderr).contains("No journal files") => {
            Some("journalctl: No journal files were found".to_string())
        }
        Ok(out) if !out.status.success() => Some(format!(
            "journalctl --lines=0 failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(_) => None,
    };
    if let Some(reason) = reason {
        eprintln!("SKIPPED (no journal to read here): {reason}");
        return;
    }
    let unit = format!("watchpost-readback-{}.service", std::process::id());
    let errors = 7;
    let script = format!(
        "for i in $(seq 1 {errors}); do echo \"ERROR payment failed $i\"; echo \"INFO request served $i\"; done"
    );
    let run = std::process::Command::new("systemd-run")
        .args(["--unit", &unit, "--wait", "--quiet", "sh", "-c", &script])
        .output();
    match &run {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            eprintln!(
                "SKIPPED (cannot start a transient unit): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return;
        }
        Err(e) => {
            eprintln!("SKIPPED (no systemd-run): {e}");
            return;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let toml = format!("[deployment]\nname = \"journal\"\n\n[logs.app]\njournald = \"{unit}\"\n");
    let config_path = dir.path().join("watchpost.toml");
    std::fs::write(&config_path, &toml).unwrap();
    let report = check_json(&config_path);
    let check = check_of(&report, "app.errors_1h");
    assert_eq!(check["value"].as_f64(), Some(errors as f64), "{check:#}");

    let cfg = config(&toml);
    let mut collector = LogCollector::new("app", &cfg.logs["app"]);
    let started = Instant::now();
    let mut last = None;
    loop {
        let updates = collector.poll().await;
        for update in &updates {
            if let Update::Logs(lines) = update
                && let Some(line) = lines.last()
            {
                last = Some(line.message.clone());
            }
        }
        let got: Vec<Reading> = updates
            .into_iter()
            .filter_map(|u| match u {
                Update::Readings { readings, .. } => Some(readings),
                _ => None,
            })
            .flatten()
            .collect();
        if find(&got, "app.errors_1h").value == Value::Number(errors as f64) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?}",
            find(&got, "app.errors_1h")
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        last.as_deref()
            .is_some_and(|m| m.contains(&format!("request served {errors}"))),
        "the tail ends with the newest line: {last:?}"
    );
}

/// A source's `read_back` caps what is read back: the figures count the lines of the
/// last `read_back` bytes exactly, and say they are partial, with how much was read of
/// how much ("partial: last 2.0 MiB of 9.6 MiB read back"), in `check` and the dashboard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_back_cut_by_its_cap_counts_what_it_read_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.jsonl");
    write_jsonl(&log, 100_000, Span::minutes(30), Utc::now());
    let bytes = std::fs::read(&log).unwrap();
    let cap = 2 * 1024 * 1024;
    // The cut falls inside a line: the read-back counts from the next line on.
    let cut = bytes.len() - cap;
    let first = cut + memchr_newline(&bytes[cut..]) + 1;
    let expected = bytes[first..]
        .split(|&b| b == b'\n')
        .filter(|line| line.windows(15).any(|w| w == br#""level":"ERROR""#))
        .count() as f64;
    let partial = format!(
        "partial: last 2.0 MiB of {:.1} MiB read back",
        bytes.len() as f64 / 1024.0 / 1024.0
    );
    let body = format!(
        "[logs.app]\nfiles = [{:?}]\nread_back = \"2MiB\"\n",
        log.display().to_string()
    );

    let config_path = dir.path().join("watchpost.toml");
    std::fs::write(&config_path, &body).unwrap();
    let report = check_json(&config_path);
    let check = check_of(&report, "app.errors_1h");
    assert_eq!(check["value"].as_f64(), Some(expected), "{check:#}");
    assert!(
        check["detail"].as_str().unwrap_or("").contains(&partial),
        "{check:#}"
    );

    let cfg = config(&body);
    let mut collector = LogCollector::new("app", &cfg.logs["app"]);
    let got = poll_until_read(&mut collector, "app.errors_1h").await;
    let reading = find(&got, "app.errors_1h");
    assert_eq!(number(reading), expected, "{reading:?}");
    assert!(reading.detail.contains(&partial), "{reading:?}");
}

fn memchr_newline(bytes: &[u8]) -> usize {
    bytes.iter().position(|&b| b == b'\n').expect("a newline")
}

/// systemd's `systemd-journal-remote`, which writes journal files from the export format
/// (Debian: `apt-get install -y systemd-journal-remote`).
fn journal_remote() -> Option<std::path::PathBuf> {
    [
        "/lib/systemd/systemd-journal-remote",
        "/usr/lib/systemd/systemd-journal-remote",
    ]
    .into_iter()
    .map(std::path::PathBuf::from)
    .find(|p| p.exists())
}

/// Appends entries (MESSAGE, PRIORITY, time) of `unit` to the journal file `file`,
/// written by the real systemd-journal-remote from the export format.
fn append_journal(tool: &Path, file: &Path, unit: &str, entries: &[(String, u8, DateTime<Utc>)]) {
    let mut export = Vec::new();
    for (i, (message, priority, at)) in entries.iter().enumerate() {
        write!(
            export,
            "__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID=0123456789abcdef0123456789abcdef\n_HOSTNAME=h\n_SYSTEMD_UNIT={unit}\nPRIORITY={priority}\nMESSAGE={message}\n\n",
            at.timestamp_micros(),
            i + 1
        )
        .unwrap();
    }
    let mut child = std::process::Command::new(tool)
        .arg(format!("--output={}", file.display()))
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&export).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "systemd-journal-remote: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// journald's window from a real journal file (written by systemd-journal-remote, read by
/// the real journalctl through `--file`, which a `journalctl` first on PATH adds): 20,000
/// entries of the last 50 minutes, older ERROR entries and another unit's around them.
/// `check` counts the window's ERROR entries exactly; with `read_back = "1MiB"` it counts
/// the ERROR entries of the newest 1 MiB of journalctl's output exactly and says it is
/// partial; the dashboard says "reading back", shows the newest entry at once, reaches the
/// exact count, and then counts entries written later once each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journald_reads_its_window_back_newest_first_from_a_journal_file() {
    let Some(tool) = journal_remote() else {
        eprintln!("SKIPPED (no systemd-journal-remote: apt-get install -y systemd-journal-remote)");
        return;
    };
    let Some(real) = ["/usr/bin/journalctl", "/bin/journalctl"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        eprintln!("SKIPPED (no journalctl)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("app.journal");
    let unit = "app.service";
    let now = Utc::now();
    let total = 20_000i64;
    let span = Span::minutes(50);
    let mut entries = Vec::new();
    // Older than the window, and another unit's: never counted.
    for i in 0..300 {
        entries.push((
            format!("ERROR old failure {i}"),
            3,
            now - Span::minutes(90) + Span::seconds(i),
        ));
    }
    let mut errors = 0u64;
    for i in 0..total {
        let at = now - span + Span::milliseconds(span.num_milliseconds() * i / total);
        let entry = if i % 10 == 3 {
            errors += 1;
            (format!("ERROR payment failed {i}"), 3, at)
        } else if i % 7 == 0 {
            (
                format!("WARNING login failed for user u{i}: invalid password"),
                4,
                at,
            )
        } else {
            (format!("INFO request served {i}"), 6, at)
        };
        entries.push(entry);
    }
    append_journal(&tool, &journal, unit, &entries);
    let others: Vec<_> = (0..200)
        .map(|i| (format!("ERROR not mine {i}"), 3, now - Span::minutes(10)))
        .collect();
    append_journal(&tool, &journal, "other.service", &others);

    // journalctl, reading the file.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let wrapper = bin.join("journalctl");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec {real} --file={} \"$@\"\n",
            journal.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let check = |toml: &str| {
        let config_path = dir.path().join("watchpost.toml");
        std::fs::write(&config_path, toml).unwrap();
        let began = Instant::now();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_watchpost"))
            .args([
                "check",
                "--config",
                config_path.to_str().unwrap(),
                "--format",
                "json",
            ])
            .env("PATH", &path)
            .output()
            .unwrap();
        let took = began.elapsed();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let check = check_of(&report, "app.errors_1h").clone();
        eprintln!("check in {:.1}s: {check}", took.as_secs_f64());
        check
    };
    let toml = format!("[deployment]\nname = \"journal\"\n\n[logs.app]\njournald = \"{unit}\"\n");
    let whole = check(&toml);
    assert_eq!(whole["value"].as_f64(), Some(errors as f64), "{whole:#}");
    assert!(
        !whole["detail"].as_str().unwrap_or("").contains("partial"),
        "{whole:#}"
    );

    // Capped: the newest 1 MiB of journalctl's output is what counts.
    let cap = 1024 * 1024;
    let newest = std::process::Command::new(&wrapper)
        .args([
            "--reverse",
            "--output=json",
            "--all",
            "--no-pager",
            "--lines=all",
        ])
        .arg(format!("--unit={unit}"))
        .output()
        .unwrap();
    let (mut read, mut expected) = (0usize, 0u64);
    for line in newest
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
    {
        let entry: serde_json::Value = serde_json::from_slice(line).unwrap();
        if entry["MESSAGE"].as_str().unwrap_or("").starts_with("ERROR") {
            expected += 1;
        }
        read += line.len() + 1;
        if read >= cap {
            break;
        }
    }
    assert!(expected > 0 && expected < errors, "{expected} of {errors}");
    let capped = check(&format!("{toml}read_back = \"1MiB\"\n"));
    assert_eq!(
        capped["value"].as_f64(),
        Some(expected as f64),
        "{capped:#}"
    );
    let detail = capped["detail"].as_str().unwrap_or("");
    assert!(
        detail.starts_with(
            "partial: last 1.0 MiB of the journal's window read back (read_back), back to "
        ) && detail.ends_with("; older entries are not counted"),
        "{capped:#}"
    );

    // After a restart whose record had counted up to 80 minutes ago, the cut is the
    // record's too: the stretch from there to the oldest entry read back is kept as
    // partial, never a silent short count.
    let capped_cfg = config(&format!("{toml}read_back = \"1MiB\"\n"));
    let launcher = watchpost::collect::logs::LocalLauncher::new().env("PATH", &path);
    let counted_until = now - Span::minutes(80);
    let mut collector = LogCollector::with_launcher(
        "app",
        &capped_cfg.logs["app"],
        std::sync::Arc::new(launcher),
    )
    .with_record(Some(watchpost::collect::logs::RecordFrom {
        counted_until: Some(counted_until),
        window_start: now - Span::hours(3),
    }));
    let started = Instant::now();
    let gap = loop {
        let partial = collector.poll().await.into_iter().find_map(|u| match u {
            Update::LogCounts {
                partial: Some(gap), ..
            } => Some(gap),
            _ => None,
        });
        if let Some(gap) = partial {
            break gap;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the record was not told of the cut"
        );
        tokio::time::sleep(collector.interval()).await;
    };
    assert_eq!(gap.from, counted_until, "{gap:?}");
    assert!(gap.to > now - span && gap.to < now, "{gap:?}");
    assert!(
        gap.read >= cap as u64 && gap.read < cap as u64 + 64 * 1024,
        "{gap:?}"
    );
    assert_eq!(gap.why, "its read_back cap of 1.0 MiB");

    // The dashboard: "reading back", the newest entry shown at once, then the exact count.
    let cfg = config(&toml);
    let launcher = watchpost::collect::logs::LocalLauncher::new().env("PATH", &path);
    let mut collector =
        LogCollector::with_launcher("app", &cfg.logs["app"], std::sync::Arc::new(launcher));
    let started = Instant::now();
    let mut saw_reading_back = false;
    let mut shown: Vec<String> = Vec::new();
    loop {
        let updates = collector.poll().await;
        for update in &updates {
            if let Update::Logs(lines) = update {
                shown.extend(lines.iter().map(|l| l.message.clone()));
            }
        }
        let got: Vec<Reading> = updates
            .into_iter()
            .filter_map(|u| match u {
                Update::Readings { readings, .. } => Some(readings),
                _ => None,
            })
            .flatten()
            .collect();
        let reading = find(&got, "app.errors_1h");
        match &reading.value {
            Value::Number(n) => {
                assert_eq!(*n, errors as f64, "{reading:?}");
                assert!(reading.detail.is_empty(), "{reading:?}");
                break;
            }
            _ => {
                assert!(reading.detail.contains("the window's lines"), "{reading:?}");
                saw_reading_back = true;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{reading:?}");
        tokio::time::sleep(collector.interval()).await;
    }
    eprintln!(
        "dashboard: exact after {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert!(saw_reading_back, "the figures said \"reading back\" first");
    // (The level word is read off the message: "login failed for user u19999: …".)
    assert!(
        shown
            .last()
            .is_some_and(|m| m.contains(&format!("u{}:", total - 1))),
        "the newest entry ends the tail: {:?}",
        shown.last()
    );
    assert!(
        shown.len() <= 200,
        "only the newest are shown: {}",
        shown.len()
    );

    // Written after the start: each counted once.
    let later: Vec<_> = (0..5)
        .map(|i| (format!("ERROR later failure {i}"), 3, Utc::now()))
        .collect();
    append_journal(&tool, &journal, unit, &later);
    let started = Instant::now();
    loop {
        let got = readings(&mut collector).await;
        let n = number(find(&got, "app.errors_1h"));
        assert!(n <= (errors + 5) as f64, "counted twice: {n}");
        if n == (errors + 5) as f64 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{n}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // And nothing more comes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = readings(&mut collector).await;
    assert_eq!(number(find(&got, "app.errors_1h")), (errors + 5) as f64);
}
