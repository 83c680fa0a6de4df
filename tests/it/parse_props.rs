//! Properties of the log line parsers (`collect::logs::parse`): JSON, logfmt and plain text
//! with level detection. Lines written by a generator in each format read back as what
//! was written (message, level, time, fields); any input, however long or broken, gives a
//! line of bounded size without a panic.

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use regex::Regex;
use watchpost::collect::logs::parse::{MAX_LINE_BYTES, parse_line};
use watchpost::model::update::{LogLevel, LogLine};

fn pattern() -> Regex {
    Regex::new(r"(?i)\b(error|exception|failed|critical|fatal|panic)\b").unwrap()
}

fn parse(text: &str) -> LogLine {
    parse_line("app", text.as_bytes(), 0, &pattern(), Utc::now())
}

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 12, 12, 8, 0, 0).unwrap()
}

/// A time within a year of the base, to the millisecond.
fn time() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..365 * 86_400_000).prop_map(|ms| base() + Duration::milliseconds(ms))
}

/// (how the level is written, what it reads as).
fn level() -> impl Strategy<Value = (&'static str, LogLevel)> {
    prop::sample::select(vec![
        ("DEBUG", LogLevel::Debug),
        ("INFO", LogLevel::Info),
        ("WARNING", LogLevel::Warn),
        ("WARN", LogLevel::Warn),
        ("ERROR", LogLevel::Error),
        ("CRITICAL", LogLevel::Critical),
        ("FATAL", LogLevel::Critical),
    ])
}

/// Message text: words, punctuation, quotes, backslashes, non-ASCII, tabs and newlines.
fn message() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "request",
        "served",
        "in",
        "42",
        "ms",
        " ",
        " ",
        "-",
        ":",
        "=",
        "\"",
        "\\",
        "é",
        "日本",
        "\t",
        "\n",
        "{",
        "}",
        "[x]",
        "10.0.0.7",
        "user@example.com",
    ]);
    prop::collection::vec(piece, 1..12)
        .prop_map(|p| p.concat())
        .prop_filter("some text", |m| !m.trim().is_empty())
}

/// Field names that are not the level, time or message of a line.
fn field_name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,10}".prop_filter("not a role name", |k| {
        ![
            "level",
            "levelname",
            "severity",
            "lvl",
            "loglevel",
            "priority",
            "timestamp",
            "time",
            "ts",
            "t",
            "datetime",
            "asctime",
            "message",
            "msg",
            "event",
        ]
        .contains(&k.as_str())
    })
}

/// A bare logfmt value (no spaces, quotes or `=`), or one that needs quoting.
fn field_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_./:-]{1,12}",
        message().prop_map(|m| m.replace(['\n', '\t'], " ")),
    ]
}

fn fields() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::btree_map(field_name(), field_value(), 0..6)
        .prop_map(|m| m.into_iter().collect())
}

fn logfmt_quote(value: &str) -> String {
    let escaped = value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
        .replace('\t', "\\t");
    format!("\"{escaped}\"")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, failure_persistence: None, ..ProptestConfig::default() })]

    /// A JSON line as serde_json writes it reads back whole.
    #[test]
    fn json_lines_round_trip(
        at in time(),
        (written, level) in level(),
        message in message(),
        fields in fields(),
        latency in prop::option::of(0.0f64..1e6),
    ) {
        let mut object = serde_json::Map::new();
        object.insert("timestamp".into(), at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string().into());
        object.insert("level".into(), written.into());
        object.insert("message".into(), message.clone().into());
        let mut expected = fields.clone();
        for (k, v) in &fields {
            object.insert(k.clone(), v.clone().into());
        }
        if let Some(ms) = latency {
            // A number field keeps the digits as written.
            let number = serde_json::Number::from_f64(ms).unwrap();
            expected.push(("latency_ms".into(), number.to_string()));
            object.insert("latency_ms".into(), serde_json::Value::Number(number));
        }
        let text = serde_json::Value::Object(object).to_string();
        let line = parse(&text);
        prop_assert_eq!(&line.message, &message, "{}", text);
        prop_assert_eq!(line.level, level);
        prop_assert_eq!(line.at, at);
        // serde_json's map is sorted; the parser keeps the line's order.
        let mut got = line.fields.to_vec();
        got.sort();
        expected.sort();
        prop_assert_eq!(got, expected);
        prop_assert_eq!(line.is_error, level >= LogLevel::Error || pattern().is_match(&text));
    }

    /// `ts=… level=… msg="…" k=v …` reads back whole, quoted and escaped values included.
    #[test]
    fn logfmt_lines_round_trip(
        at in time(),
        (written, level) in level(),
        message in message(),
        fields in fields(),
    ) {
        let mut text = format!(
            "ts={} level={} msg={}",
            at.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            written.to_lowercase(),
            logfmt_quote(&message)
        );
        for (k, v) in &fields {
            let bare = !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || "_./:-".contains(c));
            text.push_str(&format!(" {k}={}", if bare { v.clone() } else { logfmt_quote(v) }));
        }
        let line = parse(&text);
        prop_assert_eq!(&line.message, &message, "{}", text);
        prop_assert_eq!(line.level, level);
        prop_assert_eq!(line.at, at);
        prop_assert_eq!(line.fields.to_vec(), fields);
    }

    /// Plain text: the level is found after an ISO or Python timestamp, with or without a
    /// logger name, and the rest is the message.
    #[test]
    fn plain_text_levels_are_detected(
        at in time(),
        (written, level) in level(),
        words in prop::collection::vec("[a-z]{4,9}", 1..8),
        logger in prop::option::of("[a-z]{3,6}\\.[a-z]{3,8}"),
        python in any::<bool>(),
    ) {
        // Words that name a level would be read as one.
        prop_assume!(words.iter().all(|w| LogLevel::parse(w).is_none() && !["warnings", "errors", "severe", "emergency", "information"].contains(&w.as_str())));
        let message = words.join(" ");
        let stamp = if python {
            at.format("%Y-%m-%d %H:%M:%S,%3f").to_string()
        } else {
            at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
        };
        let text = match &logger {
            Some(logger) => format!("{stamp} - {logger} - {written} - {message}"),
            None => format!("{stamp} {written} {message}"),
        };
        let line = parse(&text);
        prop_assert_eq!(line.level, level, "{}", text);
        prop_assert_eq!(&line.message, &message, "{}", text);
        if !python {
            prop_assert_eq!(line.at, at);
        }
        prop_assert_eq!(line.fields.get("logger"), logger.as_deref());
    }

    /// Without a level word, an error word makes an error line; a clean line is info.
    #[test]
    fn plain_text_without_a_level_is_judged_by_the_error_pattern(
        words in prop::collection::vec("[a-z]{4,9}", 1..8),
        failed in any::<bool>(),
    ) {
        prop_assume!(words.iter().all(|w| LogLevel::parse(w).is_none() && !["warnings", "errors", "severe", "emergency", "information", "failed", "exception"].contains(&w.as_str())));
        let mut message = words.join(" ");
        if failed {
            message.push_str(" failed");
        }
        let line = parse(&message);
        prop_assert_eq!(line.is_error, failed);
        prop_assert_eq!(line.level, if failed { LogLevel::Error } else { LogLevel::Info });
        prop_assert_eq!(line.message, message);
    }

    /// Any bytes, up to far past the cut: no panic, and the line stays bounded whatever
    /// the format (lossy decoding may triple invalid bytes; the fields of a JSON object
    /// without a message are also its message).
    #[test]
    fn any_input_gives_a_bounded_line(
        fragment in prop::sample::select(vec![
            "{\"a\":\"", "\\u0000", "x=\"y\" ", "\u{fffd}", "\x1b[2J", "ERROR ", "日本",
            "}", "\"", "\\", " ", "\0", "\r\n",
        ]),
        repeat in 0usize..40_000,
        tail in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut raw = fragment.repeat(repeat).into_bytes();
        raw.extend_from_slice(&tail);
        let line = parse_line("app", &raw, 0, &pattern(), Utc::now());
        let fields: usize = line.fields.iter().map(|(k, v)| k.len() + v.len()).sum();
        prop_assert!(line.message.len() <= 3 * MAX_LINE_BYTES + 64, "message {} bytes", line.message.len());
        prop_assert!(fields <= 3 * MAX_LINE_BYTES, "fields {} bytes", fields);
        if raw.len() > MAX_LINE_BYTES {
            let marker = format!(" … [+{} bytes]", raw.len() - MAX_LINE_BYTES);
            prop_assert!(line.message.ends_with(&marker));
        }
    }
}
