//! The log collector against real files: appends, rotation by rename, copytruncate,
//! floods, huge lines, binary garbage, and the usual line formats.

use chrono::Utc;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use watchpost::collect::Collector;
use watchpost::collect::logs::LogCollector;
use watchpost::config::LogSource;
use watchpost::model::figure::{Reading, Value};
use watchpost::model::update::{LogLevel, LogLine, SourceHealth, Update};

struct Poll {
    lines: Vec<LogLine>,
    health: Option<SourceHealth>,
    readings: Vec<Reading>,
}

impl Poll {
    fn messages(&self) -> Vec<String> {
        self.lines.iter().map(|l| l.message.clone()).collect()
    }

    fn reading(&self, id: &str) -> &Reading {
        self.readings
            .iter()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("no reading {id} in {:?}", self.readings))
    }

    fn error_message(&self) -> String {
        match &self.health {
            Some(SourceHealth::Error { message, .. }) => message.clone(),
            other => panic!("expected an error, got {other:?}"),
        }
    }
}

async fn poll(collector: &mut LogCollector) -> Poll {
    let mut out = Poll {
        lines: Vec::new(),
        health: None,
        readings: Vec::new(),
    };
    for update in collector.poll().await {
        match update {
            Update::Logs(lines) => out.lines.extend(lines),
            Update::Health { source, health } => {
                assert_eq!(source, "app");
                out.health = Some(health);
            }
            Update::Readings { source, readings } => {
                assert_eq!(source, "app");
                out.readings.extend(readings);
            }
            other => panic!("unexpected update {other:?}"),
        }
    }
    out
}

fn source(files: &[&Path]) -> LogSource {
    LogSource {
        files: files.iter().map(|p| p.display().to_string()).collect(),
        ..LogSource::default()
    }
}

fn collector(files: &[&Path]) -> LogCollector {
    LogCollector::new("app", &source(files))
}

fn append(path: &Path) -> File {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
}

fn write_lines(file: &mut File, range: std::ops::RangeInclusive<u32>) {
    let mut text = String::new();
    for n in range {
        text.push_str(&format!("line {n}\n"));
    }
    file.write_all(text.as_bytes()).unwrap();
}

/// The numbers of "line N" messages, sorted, asserting each one parsed.
fn numbers(messages: &[String]) -> Vec<u32> {
    let mut numbers: Vec<u32> = messages
        .iter()
        .map(|m| {
            m.strip_prefix("line ")
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("odd line {m:?}"))
        })
        .collect();
    numbers.sort_unstable();
    numbers
}

#[tokio::test]
async fn appended_lines_are_delivered_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let mut file = append(&path);
    write_lines(&mut file, 1..=3);
    let mut c = collector(&[&path]);

    let first = poll(&mut c).await;
    assert_eq!(
        first.messages(),
        ["line 1", "line 2", "line 3"],
        "the start shows the tail"
    );
    assert_eq!(first.health, Some(SourceHealth::Ok));

    write_lines(&mut file, 4..=8);
    assert_eq!(
        poll(&mut c).await.messages(),
        ["line 4", "line 5", "line 6", "line 7", "line 8"]
    );
    assert!(
        poll(&mut c).await.lines.is_empty(),
        "nothing new, nothing sent"
    );

    // A line without its newline waits for it.
    file.write_all(b"line ").unwrap();
    assert!(poll(&mut c).await.lines.is_empty());
    file.write_all(b"9\nline 10\n").unwrap();
    assert_eq!(poll(&mut c).await.messages(), ["line 9", "line 10"]);
}

#[tokio::test]
async fn rename_rotation_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let mut file = append(&path);
    let mut c = collector(&[&path]);
    let mut seen = poll(&mut c).await.messages();

    let mut n = 0;
    let mut next = |count: u32| {
        let range = n + 1..=n + count;
        n += count;
        range
    };
    for round in 1..=5 {
        write_lines(&mut file, next(40));
        seen.extend(poll(&mut c).await.messages());
        write_lines(&mut file, next(25));
        // Rotate: rename, then the writer keeps writing to the old file for a while
        // before it reopens (logrotate + a late SIGHUP). No poll in between.
        std::fs::rename(&path, dir.path().join(format!("app.log.{round}"))).unwrap();
        write_lines(&mut file, next(10));
        if round % 2 == 0 {
            // Sometimes a poll sees the path missing between rename and reopen.
            let gap = poll(&mut c).await;
            assert!(
                gap.error_message().contains("no such file")
                    || gap.error_message().contains("no file matches")
            );
            seen.extend(gap.messages());
            write_lines(&mut file, next(5));
        }
        file = append(&path);
        write_lines(&mut file, next(30));
        if round % 3 == 0 {
            seen.extend(poll(&mut c).await.messages());
        }
    }
    for _ in 0..5 {
        seen.extend(poll(&mut c).await.messages());
    }
    assert_eq!(numbers(&seen), (1..=n).collect::<Vec<_>>());
}

#[tokio::test]
async fn rotation_under_a_concurrent_writer_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    File::create(&path).unwrap();
    // The glob also follows rotated files, so even two rotations between polls lose nothing.
    let pattern = dir.path().join("app.log*");
    let mut c = collector(&[&pattern]);
    let mut seen = poll(&mut c).await.messages();

    const TOTAL: u32 = 3000;
    let writer_path = path.clone();
    let writer = std::thread::spawn(move || {
        let mut file = append(&writer_path);
        for n in 1..=TOTAL {
            writeln!(file, "line {n}").unwrap();
            if n % 400 == 0 {
                let rotated = writer_path.with_file_name(format!("app.log.{n}"));
                std::fs::rename(&writer_path, rotated).unwrap();
                file = append(&writer_path);
            }
            if n % 50 == 0 {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
    });
    while !writer.is_finished() {
        seen.extend(poll(&mut c).await.messages());
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    writer.join().unwrap();
    seen.extend(poll(&mut c).await.messages());
    assert_eq!(numbers(&seen), (1..=TOTAL).collect::<Vec<_>>());
}

/// logrotate's copytruncate: copy the file, then truncate it in place.
fn copytruncate(path: &Path, copy: &Path) {
    std::fs::copy(path, copy).unwrap();
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(0)
        .unwrap();
}

#[tokio::test]
async fn copytruncate_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let mut file = append(&path);
    let mut c = collector(&[&path]);
    let mut seen = poll(&mut c).await.messages();

    write_lines(&mut file, 1..=50);
    seen.extend(poll(&mut c).await.messages());
    // Truncated, then fewer bytes written than were read: the file is shorter.
    copytruncate(&path, &dir.path().join("app.log.1"));
    write_lines(&mut file, 51..=55);
    seen.extend(poll(&mut c).await.messages());
    write_lines(&mut file, 56..=60);
    seen.extend(poll(&mut c).await.messages());
    // Truncated, then more bytes written than were read before the next poll: the size
    // alone would not tell; the bytes before the offset do.
    copytruncate(&path, &dir.path().join("app.log.2"));
    write_lines(&mut file, 61..=200);
    seen.extend(poll(&mut c).await.messages());
    write_lines(&mut file, 201..=210);
    seen.extend(poll(&mut c).await.messages());
    assert_eq!(numbers(&seen), (1..=210).collect::<Vec<_>>());
}

#[tokio::test]
async fn copytruncate_with_a_writer_that_does_not_append() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    // Not O_APPEND: after the truncate it writes at its old position, leaving NULs before.
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .unwrap();
    let mut c = collector(&[&path]);
    let mut seen = poll(&mut c).await.messages();
    write_lines(&mut file, 1..=20);
    seen.extend(poll(&mut c).await.messages());
    copytruncate(&path, &dir.path().join("app.log.1"));
    write_lines(&mut file, 21..=25);
    seen.extend(poll(&mut c).await.messages());
    assert_eq!(numbers(&seen), (1..=25).collect::<Vec<_>>());
}

#[tokio::test]
async fn huge_lines_and_binary_garbage_come_through_cut() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let mut file = append(&path);
    let mut c = collector(&[&path]);
    poll(&mut c).await;

    let mut data = b"ERROR ".to_vec();
    data.extend(std::iter::repeat_n(b'x', 1 << 20));
    data.push(b'\n');
    data.extend_from_slice(b"\xff\xfe\x00\x1b[2J\x1b]52;c;AAAA\x07\x9b\xc3(garbage\x80\n");
    data.extend_from_slice(b"after\n");
    file.write_all(&data).unwrap();

    let started = std::time::Instant::now();
    let got = poll(&mut c).await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(got.lines.len(), 3);
    let huge = &got.lines[0];
    assert_eq!(huge.level, LogLevel::Error);
    assert!(
        huge.message.len() <= 64 * 1024 + 64,
        "{} bytes kept",
        huge.message.len()
    );
    let cut = (1 << 20) + 6 - 64 * 1024;
    assert!(
        huge.message.ends_with(&format!("… [+{cut} bytes]")),
        "{}",
        &huge.message[huge.message.len() - 40..]
    );
    assert!(got.lines[1].message.contains('\u{fffd}'));
    assert!(got.lines[1].message.contains("garbage"));
    assert_eq!(got.lines[2].message, "after");
    assert_eq!(got.health, Some(SourceHealth::Ok));
}

#[tokio::test]
async fn a_huge_line_arriving_in_pieces_is_cut_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let mut file = append(&path);
    let mut c = collector(&[&path]);
    poll(&mut c).await;
    for _ in 0..4 {
        file.write_all(&vec![b'z'; 300 * 1024]).unwrap();
        assert!(poll(&mut c).await.lines.is_empty());
    }
    file.write_all(b"\nnext\n").unwrap();
    let got = poll(&mut c).await;
    assert_eq!(got.lines.len(), 2);
    assert!(
        got.lines[0]
            .message
            .ends_with(&format!("… [+{} bytes]", 4 * 300 * 1024 - 64 * 1024))
    );
    assert_eq!(got.lines[1].message, "next");
}

#[tokio::test]
async fn formats_levels_and_error_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.jsonl");
    let mut file = append(&path);
    let mut c = collector(&[&path]);
    poll(&mut c).await;

    // Stamped in the middle of the previous minute, so they count for errors_per_min.
    let minute = Utc::now().timestamp().div_euclid(60);
    let at = chrono::DateTime::from_timestamp((minute - 1) * 60 + 30, 0)
        .unwrap()
        .to_rfc3339();
    let text = format!(
        concat!(
            r#"{{"timestamp":"{at}","level":"ERROR","message":"Scheduled expiration cleanup failed","monitoring_event":"SCHEDULER_CLEANUP_FAILED","error_type":"OperationalError"}}"#,
            "\n",
            r#"{{"timestamp":"{at}","level":"DEBUG","message":"Tool outcome recorded: resolve-library-id - success","outcome":"success","latency_ms":45.23}}"#,
            "\n",
            "ts={at} level=warn msg=\"pool at 90%\" pool=db\n",
            "{at} CRITICAL disk full\n",
            "[info] all fine\n",
            "something exception happened\n",
        ),
        at = at
    );
    file.write_all(text.as_bytes()).unwrap();
    let got = poll(&mut c).await;
    let summary: Vec<(LogLevel, bool)> = got.lines.iter().map(|l| (l.level, l.is_error)).collect();
    assert_eq!(
        summary,
        [
            (LogLevel::Error, true),
            (LogLevel::Debug, false),
            (LogLevel::Warn, false),
            (LogLevel::Critical, true),
            (LogLevel::Info, false),
            (LogLevel::Error, true),
        ]
    );
    let json = &got.lines[0];
    assert_eq!(&*json.source, "app");
    assert_eq!(json.message, "Scheduled expiration cleanup failed");
    assert_eq!(
        json.fields.to_vec(),
        [
            (
                "monitoring_event".to_string(),
                "SCHEDULER_CLEANUP_FAILED".to_string()
            ),
            ("error_type".to_string(), "OperationalError".to_string()),
        ]
    );
    assert_eq!(
        got.lines[1].fields.to_vec()[1],
        ("latency_ms".to_string(), "45.23".to_string())
    );
    assert_eq!(got.lines[2].message, "pool at 90%");
    assert_eq!(
        got.lines[2].fields.to_vec(),
        [("pool".to_string(), "db".to_string())]
    );
    assert_eq!(got.lines[3].message, "disk full");
    assert_eq!(got.lines[3].at.timestamp(), (minute - 1) * 60 + 30);

    let errors_1h = got.reading("app.errors_1h");
    assert_eq!(errors_1h.value, Value::Number(3.0));
    assert_eq!(errors_1h.unit, "");
    let per_min = got.reading("app.errors_per_min");
    assert_eq!(per_min.unit, "/min");
    if Utc::now().timestamp().div_euclid(60) == minute {
        // Two stamped a minute ago; the unstamped one is "now", in the current minute.
        assert_eq!(per_min.value, Value::Number(2.0));
    }
}

#[tokio::test]
async fn a_missing_file_is_reported_and_picked_up_when_it_appears() {
    let dir = tempfile::tempdir().unwrap();
    let pattern = dir.path().join("*.jsonl");
    let mut c = collector(&[&pattern]);
    let got = poll(&mut c).await;
    assert_eq!(
        got.error_message(),
        format!("no file matches {}", pattern.display())
    );
    assert!(got.reading("app.errors_1h").error.is_some());

    let mut file = append(&dir.path().join("late.jsonl"));
    write_lines(&mut file, 1..=3);
    let got = poll(&mut c).await;
    assert_eq!(
        got.messages(),
        ["line 1", "line 2", "line 3"],
        "a file that appears later is read from its start"
    );
    assert_eq!(got.health, Some(SourceHealth::Ok));
    assert_eq!(got.reading("app.errors_1h").value, Value::Number(0.0));

    let missing = dir.path().join("nope.log");
    let mut c = collector(&[&missing]);
    assert!(
        poll(&mut c)
            .await
            .error_message()
            .contains("no file matches")
    );
}

#[tokio::test]
async fn unreadable_files_say_so() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret.log");
    std::fs::write(&path, "line 1\n").unwrap();

    // Any other failure is named too (here: a file used as a directory).
    let through_a_file = path.join("inner.log");
    let mut c = collector(&[&through_a_file]);
    let message = poll(&mut c).await.error_message();
    assert!(
        message.starts_with(&format!("cannot read {}: ", through_a_file.display())),
        "{message}"
    );

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    if File::open(&path).is_ok() {
        return; // running as root: permissions are not enforced
    }
    let mut c = collector(&[&path]);
    let message = poll(&mut c).await.error_message();
    assert!(message.contains("permission denied"), "{message}");
    assert!(message.contains("secret.log"), "{message}");
}

#[tokio::test]
async fn remote_hosts_and_bad_patterns_are_clear_errors() {
    let mut remote = source(&[Path::new("/var/log/app.log")]);
    remote.host = "ssh://deploy@example.invalid".into();
    let mut c = LogCollector::new("app", &remote);
    let got = poll(&mut c).await;
    let message = got.error_message();
    assert!(
        message.contains("ssh://deploy@example.invalid") && message.contains("HostPool"),
        "{message}"
    );
    assert!(got.reading("app.errors_per_min").error.is_some());

    let mut bad = source(&[Path::new("/var/log/app.log")]);
    bad.error_pattern = "(unclosed".into();
    let mut c = LogCollector::new("app", &bad);
    let message = poll(&mut c).await.error_message();
    assert!(
        message.contains("error_pattern") && message.contains("(unclosed"),
        "{message}"
    );
}

#[tokio::test]
async fn a_custom_error_pattern_is_case_insensitive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let mut file = append(&path);
    let mut src = source(&[&path]);
    src.error_pattern = "denied".into();
    let mut c = LogCollector::new("app", &src);
    poll(&mut c).await;
    file.write_all(b"permission DENIED for role viewer\nINFO fine\n")
        .unwrap();
    let got = poll(&mut c).await;
    assert_eq!(
        got.lines.iter().map(|l| l.is_error).collect::<Vec<_>>(),
        [true, false]
    );
    assert_eq!(got.reading("app.errors_1h").value, Value::Number(1.0));
}

mod parse_never_panics {
    use proptest::prelude::*;
    use watchpost::collect::logs::parse::parse_line;

    fn fragment() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "{",
            "}",
            "\"level\"",
            "\"msg\"",
            "\"ts\"",
            ":",
            ",",
            "\"",
            "=",
            " ",
            "  ",
            "ERROR",
            "warn",
            "[error]",
            "E",
            "E1212 10:30:45.1 1 f.go:1]",
            "<3>",
            "<9>",
            "Dec 12 10:30:45",
            "Feb 30 25:61:61",
            "host unit[1]:",
            "2025-12-12T10:30:45Z",
            "2025-13-45 99:99:99,1",
            "1702377045123",
            "99999999999999999999",
            "-1e400",
            "level=",
            "msg=\"",
            "\\",
            "svc  | ",
            "- name -",
            "\u{fffd}",
            "日本",
            "\x1b[2J",
            "\0",
            "\r",
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300), dropped in 0u64..10) {
            let pattern = regex::Regex::new("(?i)error").unwrap();
            let line = parse_line("app", &bytes, dropped, &pattern, chrono::Utc::now());
            prop_assert_eq!(&*line.source, "app");
            prop_assert_eq!(dropped > 0, line.message.ends_with(&format!(" … [+{dropped} bytes]")));
        }

        #[test]
        fn on_log_shaped_text(parts in prop::collection::vec(fragment(), 0..24)) {
            let pattern = regex::Regex::new("(?i)error").unwrap();
            let text = parts.concat();
            let line = parse_line("app", text.as_bytes(), 0, &pattern, chrono::Utc::now());
            // The level decides where the line names one; a line that names none and
            // matches the pattern shows as an error: either way, an error is at ERROR or above.
            prop_assert_eq!(line.is_error, line.level >= watchpost::model::update::LogLevel::Error);
            // An error the pattern did not find named its level.
            if line.is_error && !pattern.is_match(&text) {
                prop_assert!(line.level >= watchpost::model::update::LogLevel::Error);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// journald and command sources

mod processes {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;
    use std::time::Duration;
    use watchpost::collect::logs::LocalLauncher;
    use watchpost::config::Config;

    /// A fake `journalctl`, first in PATH for the processes the collector starts. It logs
    /// each call's arguments; the probe (`--lines=0`) succeeds (or says there is no
    /// journal, if `nojournal` exists); the read-back (`--reverse`) prints every entry,
    /// newest first, and ends; a follow run prints the entries of `entries` after the
    /// `--after-cursor` it was given (all of them without one), then either stays (if
    /// `stay` exists) or dies with a complaint on stderr.
    const FAKE_JOURNALCTL: &str = r#"#!/bin/sh
dir=$(dirname "$0")
echo "$*" >> "$dir/calls"
cursor=""
for a in "$@"; do
  case "$a" in
    --lines=0)
      if [ -e "$dir/nojournal" ]; then echo "No journal files were found." >&2; fi
      exit 0 ;;
    --after-cursor=*) cursor="${a#--after-cursor=}" ;;
    --reverse) tac "$dir/entries"; exit 0 ;;
  esac
done
if [ -z "$cursor" ]; then
  cat "$dir/entries"
else
  awk -v c="\"__CURSOR\":\"$cursor\"" 'found { print } index($0, c) { found = 1 }' "$dir/entries"
fi
if [ -e "$dir/stay" ]; then exec sleep 600; fi
echo "Failed to get journal: connection lost" >&2
exit 1
"#;

    struct FakeJournal {
        dir: tempfile::TempDir,
    }

    impl FakeJournal {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let script = dir.path().join("journalctl");
            std::fs::write(&script, FAKE_JOURNALCTL).unwrap();
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
            std::fs::write(dir.path().join("entries"), "").unwrap();
            FakeJournal { dir }
        }

        fn launcher(&self) -> Arc<LocalLauncher> {
            let path = format!(
                "{}:{}",
                self.dir.path().display(),
                std::env::var("PATH").unwrap_or_default()
            );
            Arc::new(LocalLauncher::new().env("PATH", path))
        }

        /// Entries `from..=to`, every third one an error, as journalctl writes them.
        fn add(&self, range: std::ops::RangeInclusive<u32>) {
            let mut text = String::new();
            for n in range {
                let priority = if n % 3 == 0 { 3 } else { 6 };
                let at = Utc::now().timestamp_micros();
                text.push_str(&format!(
                    r#"{{"__CURSOR":"s=abc;i={n:x};b=1","__REALTIME_TIMESTAMP":"{at}","PRIORITY":"{priority}","_SYSTEMD_UNIT":"tmws.service","_PID":"42","MESSAGE":"line {n}","SYSLOG_IDENTIFIER":"tmws"}}"#
                ));
                text.push('\n');
            }
            append(&self.dir.path().join("entries"))
                .write_all(text.as_bytes())
                .unwrap();
        }

        fn follow_calls(&self) -> Vec<String> {
            std::fs::read_to_string(self.dir.path().join("calls"))
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("--follow"))
                .map(String::from)
                .collect()
        }
    }

    /// Polls until `done` holds for a poll and the messages so far (8 s at most),
    /// collecting the messages.
    async fn poll_until(
        c: &mut LogCollector,
        seen: &mut Vec<String>,
        done: impl Fn(&Poll, &[String]) -> bool,
    ) -> Poll {
        let deadline = std::time::Instant::now() + Duration::from_secs(8);
        loop {
            let got = poll(c).await;
            seen.extend(got.messages());
            if done(&got, seen) {
                return got;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "gave up; saw {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn journald_source(unit: &str) -> LogSource {
        let mut s = source(&[]);
        s.journald = Some(unit.into());
        s
    }

    #[tokio::test]
    async fn journald_restarts_resume_after_the_cursor_without_repeats() {
        let fake = FakeJournal::new();
        fake.add(1..=3);
        let mut c =
            LogCollector::with_launcher("app", &journald_source("tmws.service"), fake.launcher());

        // The first poll waits for the backlog; the fake then dies.
        let mut seen = Vec::new();
        let first = poll_until(&mut c, &mut seen, |p, _| {
            matches!(p.health, Some(SourceHealth::Error { .. }))
        })
        .await;
        assert_eq!(seen, ["line 1", "line 2", "line 3"]);
        assert_eq!(
            first.error_message(),
            "journalctl -u tmws.service stopped (exit status: 1): Failed to get journal: connection lost"
        );
        assert_eq!(first.reading("app.errors_1h").value, Value::Number(1.0));

        // Restarted after the backoff, after the last cursor read: only the new entries.
        fake.add(4..=5);
        poll_until(&mut c, &mut seen, |_, seen| seen.len() >= 5).await;
        let lines = seen.len();
        // This time it stays up.
        std::fs::write(fake.dir.path().join("stay"), "").unwrap();
        fake.add(6..=6);
        let last = poll_until(&mut c, &mut seen, |p, _| {
            p.lines.iter().any(|l| l.message == "line 6")
        })
        .await;
        assert_eq!(lines, 5);
        assert_eq!(numbers(&seen), (1..=6).collect::<Vec<_>>());
        assert_eq!(last.health, Some(SourceHealth::Ok), "running again");
        assert_eq!(last.reading("app.errors_1h").value, Value::Number(2.0));
        let line = &last.lines[0];
        assert_eq!(line.level, LogLevel::Error);
        assert!(line.fields.get("unit") == Some("tmws.service"));

        // The window read back first, newest first, from the start of the figures'
        // window (61 minutes and the one being written)...
        let all = std::fs::read_to_string(fake.dir.path().join("calls")).unwrap();
        let back: Vec<&str> = all.lines().filter(|l| l.contains("--reverse")).collect();
        assert_eq!(back.len(), 1, "{all}");
        let since: i64 = back[0]
            .rsplit_once("--unit=tmws.service --since=@")
            .unwrap_or_else(|| panic!("{all}"))
            .1
            .parse()
            .unwrap();
        let ago = Utc::now().timestamp() - since;
        assert!((62 * 60..62 * 60 + 30).contains(&ago), "{ago} s: {all}");
        // ...then followed after the newest entry it saw, and after each restart after the
        // last entry delivered.
        let calls = fake.follow_calls();
        assert_eq!(calls.len(), 3, "{calls:?}");
        assert!(
            calls[0].ends_with("--after-cursor=s=abc;i=3;b=1"),
            "{calls:?}"
        );
        assert!(
            calls[1].ends_with("--after-cursor=s=abc;i=3;b=1"),
            "{calls:?}"
        );
        assert!(
            calls[2].ends_with("--after-cursor=s=abc;i=5;b=1"),
            "{calls:?}"
        );
        drop(c);
    }

    #[tokio::test]
    async fn journald_without_a_journal_says_so() {
        let fake = FakeJournal::new();
        std::fs::write(fake.dir.path().join("nojournal"), "").unwrap();
        let mut c = LogCollector::with_launcher("app", &journald_source("x"), fake.launcher());
        let got = poll(&mut c).await;
        let message = got.error_message();
        assert!(message.contains("this host has no journal"), "{message}");
        assert!(got.reading("app.errors_1h").error.is_some());
        assert!(
            fake.follow_calls().is_empty(),
            "no follow without a journal"
        );

        // And on this machine, as it is: no systemd here gives a clear error too (a host
        // with a journal follows a unit that does not exist, quietly).
        if !Path::new("/run/systemd/system").exists() {
            let mut c = LogCollector::new("app", &journald_source("watchpost-test.service"));
            let message = poll(&mut c).await.error_message();
            assert!(
                message.contains("this host has no journal")
                    || message.contains("journalctl not found"),
                "{message}"
            );
        }

        let empty = tempfile::tempdir().unwrap();
        let launcher = Arc::new(LocalLauncher::new().env("PATH", empty.path()));
        let mut c = LogCollector::with_launcher("app", &journald_source("x"), launcher);
        assert_eq!(
            poll(&mut c).await.error_message(),
            "journalctl not found: journald sources need systemd's journalctl on the host"
        );
    }

    fn command_source(argv: &[&str]) -> LogSource {
        let mut s = source(&[]);
        s.command = argv.iter().map(|a| a.to_string()).collect();
        s
    }

    #[tokio::test]
    async fn a_command_s_stdout_is_the_log_and_stderr_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let go = dir.path().join("go");
        let script = format!(
            r#"echo '{{"level":"error","message":"Failed to call MCP tool","outcome":"timeout"}}'; echo 'INFO fine'; echo 'kubectl: pod restarted' >&2; while [ ! -e {go} ]; do sleep 0.05; done; echo 'INFO later'; exec sleep 600"#,
            go = go.display()
        );
        let mut c = LogCollector::new("app", &command_source(&["sh", "-c", &script]));
        let got = poll(&mut c).await;
        assert_eq!(got.messages(), ["Failed to call MCP tool", "fine"]);
        assert!(got.lines[0].is_error);
        assert_eq!(got.error_message(), "sh: kubectl: pod restarted");
        assert_eq!(got.reading("app.errors_1h").value, Value::Number(1.0));
        // Still running, nothing new: the complaint stays until output comes again.
        let again = poll(&mut c).await;
        assert!(again.lines.is_empty());
        assert_eq!(again.error_message(), "sh: kubectl: pod restarted");
        std::fs::write(&go, "").unwrap();
        let mut later = poll(&mut c).await;
        for _ in 0..50 {
            if !later.lines.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            later = poll(&mut c).await;
        }
        assert_eq!(later.messages(), ["later"]);
        assert_eq!(later.health, Some(SourceHealth::Ok));
    }

    #[tokio::test]
    async fn a_missing_command_is_unknown_not_zero() {
        let mut c = LogCollector::new("app", &command_source(&["watchpost-no-such-tool", "-f"]));
        let got = poll(&mut c).await;
        assert_eq!(
            got.error_message(),
            "watchpost-no-such-tool: command not found"
        );
        assert!(got.reading("app.errors_1h").error.is_some());
        match got.health {
            Some(SourceHealth::Error { retry_in_secs, .. }) => assert_eq!(retry_in_secs, Some(1)),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_command_that_dies_without_a_line_is_unknown() {
        let mut c = LogCollector::new(
            "app",
            &command_source(&[
                "sh",
                "-c",
                "echo 'The connection to the server localhost:8080 was refused' >&2; exit 1",
            ]),
        );
        let got = poll(&mut c).await;
        assert_eq!(
            got.error_message(),
            "sh stopped (exit status: 1): The connection to the server localhost:8080 was refused"
        );
        assert!(got.reading("app.errors_1h").error.is_some());

        // A quiet command that keeps running has nothing to count: zero is right.
        let mut c = LogCollector::new("app", &command_source(&["sleep", "600"]));
        let got = poll(&mut c).await;
        assert_eq!(got.health, Some(SourceHealth::Ok));
        assert_eq!(got.reading("app.errors_1h").value, Value::Number(0.0));
    }

    #[tokio::test]
    async fn remote_process_sources_without_a_host_pool_say_how_to_get_one() {
        // (Through a HostPool they run on the host: see tests/it/remote.rs.)
        let mut s = command_source(&["true"]);
        s.host = "ssh://deploy@example.invalid".into();
        let mut c = LogCollector::new("app", &s);
        let message = poll(&mut c).await.error_message();
        assert!(message.contains("HostPool"), "{message}");
    }

    #[tokio::test]
    async fn seed_002_metrics_from_a_followed_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tmws.log");
        let mut file = append(&path);
        let config = Config::parse(&format!(
            r#"
            [logs.app]
            files = [{path:?}]

            [[logs.app.metric]]
            id = "tool_timeouts_1h"
            field = "outcome"
            equals = "timeout"
            kind = "count"
            window = "1h"
            warn = "> 10"

            [[logs.app.metric]]
            id = "tool_latency_p95"
            kind = "p95"
            field = "latency_ms"
            warn = "> 5000"

            [[logs.app.metric]]
            id = "cleanup_failed"
            field = "monitoring_event"
            equals = "SCHEDULER_CLEANUP_FAILED"
            kind = "count"
            crit = "> 0"
            "#,
            path = path.display().to_string()
        ))
        .unwrap();
        let mut c = LogCollector::new("app", &config.logs["app"]);
        let got = poll(&mut c).await;
        assert_eq!(
            got.reading("app.tool_timeouts_1h").value,
            Value::Number(0.0)
        );
        assert_eq!(
            got.reading("app.tool_latency_p95").value,
            Value::Text("no samples".into())
        );

        let mut text = String::new();
        let at = Utc::now().to_rfc3339();
        for n in 0..120 {
            let (outcome, latency) = if n % 10 == 0 {
                ("timeout", 30_000.0)
            } else {
                ("success", 40.0 + n as f64)
            };
            text.push_str(&format!(
                r#"{{"timestamp":"{at}","level":"DEBUG","message":"Tool outcome recorded","outcome":"{outcome}","latency_ms":{latency}}}"#
            ));
            text.push('\n');
        }
        text.push_str(&format!(
            r#"{{"timestamp":"{at}","level":"ERROR","message":"Scheduled expiration cleanup failed","monitoring_event":"SCHEDULER_CLEANUP_FAILED","error_type":"OperationalError"}}"#
        ));
        text.push('\n');
        file.write_all(text.as_bytes()).unwrap();
        let got = poll(&mut c).await;
        assert_eq!(got.lines.len(), 121);
        let timeouts = got.reading("app.tool_timeouts_1h");
        assert_eq!(timeouts.value, Value::Number(12.0));
        let rule = timeouts.default_rule.as_ref().unwrap();
        assert_eq!(
            watchpost::rules::judge(timeouts, None),
            watchpost::model::figure::Severity::Warn,
            "{rule:?}"
        );
        // 12 of 120 calls at 30 s: the p95 is a timeout.
        let p95 = got.reading("app.tool_latency_p95");
        assert_eq!(p95.value, Value::Number(30_000.0));
        assert_eq!(p95.unit, "ms");
        let cleanup = got.reading("app.cleanup_failed");
        assert_eq!(cleanup.value, Value::Number(1.0));
        assert_eq!(
            watchpost::rules::judge(cleanup, None),
            watchpost::model::figure::Severity::Crit
        );
    }

    #[test]
    fn config_takes_exactly_one_input_per_source() {
        let ok = Config::parse(
            r#"
            [logs.tmws]
            journald = "tmws.service"
            [logs.k8s]
            command = ["kubectl", "logs", "-f", "deploy/api", "--since=1h"]
            "#,
        )
        .unwrap();
        assert_eq!(ok.logs["tmws"].journald.as_deref(), Some("tmws.service"));
        assert_eq!(ok.logs["k8s"].command[0], "kubectl");

        let none = Config::parse("[logs.x]\nhost = \"local\"\n").unwrap_err();
        assert!(none.contains("give files"), "{none}");
        let two = Config::parse("[logs.x]\nfiles = [\"/a\"]\njournald = \"u\"\n").unwrap_err();
        assert!(two.contains("only one of"), "{two}");
        let dup = Config::parse(
            "[logs.x]\nfiles = [\"/a\"]\n[[logs.x.metric]]\nid = \"a\"\nkind = \"count\"\n[[logs.x.metric]]\nid = \"a\"\nkind = \"rate\"\n",
        )
        .unwrap_err();
        assert!(dup.contains("used twice"), "{dup}");
        let builtin = Config::parse(
            "[logs.x]\nfiles = [\"/a\"]\n[[logs.x.metric]]\nid = \"errors_1h\"\nkind = \"count\"\n",
        )
        .unwrap_err();
        assert!(
            builtin.contains("built-in") && builtin.contains("line 4"),
            "{builtin}"
        );
        let bad = Config::parse(
            "[logs.x]\nfiles = [\"/a\"]\n\n[[logs.x.metric]]\nid = \"p\"\nkind = \"p95\"\n",
        )
        .unwrap_err();
        assert!(
            bad.contains("line 4") && bad.contains("needs field"),
            "{bad}"
        );
    }
}
