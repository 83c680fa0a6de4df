//! journald entries: one line of `journalctl --output=json` as a log line, and its cursor.
//!
//! An entry's MESSAGE (a string, or an array of bytes when it is not clean UTF-8) is
//! parsed like a file's line, so an application that logs JSON or logfmt to journald
//! keeps its fields and level; PRIORITY (0–7) gives the level otherwise and
//! `__REALTIME_TIMESTAMP` the time. The unit, pid, host and the entry's own fields (those
//! without a leading `_`) are kept as fields.

use super::level::level_number;
use super::{ErrorRule, MAX_LINE_BYTES, finish, parse_line_with, parse_through_colour};
use crate::model::update::LogLine;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value as Json};

/// The `__CURSOR` of a JSON entry, found without parsing the whole entry.
pub(crate) fn cursor_of(line: &[u8]) -> Option<String> {
    string_field(line, b"\"__CURSOR\"")
}

/// When a JSON entry was written (`__REALTIME_TIMESTAMP`), found without parsing it.
pub(crate) fn realtime_of(line: &[u8]) -> Option<DateTime<Utc>> {
    let micros: i64 = string_field(line, b"\"__REALTIME_TIMESTAMP\"")?
        .parse()
        .ok()?;
    DateTime::from_timestamp_micros(micros)
}

/// A string field of a JSON entry by its quoted key.
fn string_field(line: &[u8], key: &[u8]) -> Option<String> {
    let at = line.windows(key.len()).position(|w| w == key)? + key.len();
    let rest = &line[at..];
    let colon = rest.iter().position(|&b| !b.is_ascii_whitespace())?;
    if rest[colon] != b':' {
        return None;
    }
    let rest = &rest[colon + 1..];
    let quote = rest.iter().position(|&b| !b.is_ascii_whitespace())?;
    if rest[quote] != b'"' {
        return None;
    }
    let rest = &rest[quote + 1..];
    let mut out = Vec::new();
    let mut escaped = false;
    for &b in rest {
        match (escaped, b) {
            (false, b'\\') => escaped = true,
            (false, b'"') => return String::from_utf8(out).ok().filter(|c| !c.is_empty()),
            (_, b) => {
                out.push(b);
                escaped = false;
            }
        }
    }
    None
}

/// Journal fields kept under their own name besides the entry's own fields.
const META: &[(&str, &str)] = &[
    ("_SYSTEMD_UNIT", "unit"),
    ("_PID", "pid"),
    ("_HOSTNAME", "host"),
];
/// The entry's own fields that are not worth a row.
const SKIPPED: &[&str] = &[
    "MESSAGE",
    "PRIORITY",
    "SYSLOG_FACILITY",
    "SYSLOG_IDENTIFIER",
    "SYSLOG_PID",
    "SYSLOG_TIMESTAMP",
    "SYSLOG_RAW",
    "INVOCATION_ID",
];

/// One line of `journalctl --output=json` as a log line. A line that is not a journal
/// entry (cut, or not JSON) is read as plain text.
pub(crate) fn parse_entry(
    source: impl Into<std::sync::Arc<str>>,
    raw: &[u8],
    dropped: u64,
    rule: ErrorRule<'_>,
    now: DateTime<Utc>,
) -> LogLine {
    let entry: Option<Map<String, Json>> = if dropped == 0 {
        serde_json::from_slice(raw).ok()
    } else {
        None
    };
    let Some(entry) = entry else {
        return parse_line_with(source, raw, dropped, rule, now);
    };
    let message = entry.get("MESSAGE").map(field_text).unwrap_or_default();
    let keep = message.len().min(MAX_LINE_BYTES);
    let mut cut = keep;
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    let dropped = (message.len() - cut) as u64;
    let text = &message[..cut];
    let text = text.strip_suffix('\n').unwrap_or(text);
    let (mut parsed, plain) = parse_through_colour(text, now);
    let text = plain.as_ref();
    let priority = entry
        .get("PRIORITY")
        .map(field_text)
        .and_then(|p| p.trim().parse::<f64>().ok())
        .and_then(|p| level_number(p, true));
    let realtime = entry
        .get("__REALTIME_TIMESTAMP")
        .map(field_text)
        .and_then(|t| t.trim().parse::<i64>().ok())
        .and_then(DateTime::from_timestamp_micros);
    parsed.at = parsed.at.or(realtime);

    let mut fields = crate::model::update::Fields::default();
    for (key, name) in META {
        let value = entry.get(*key).map(field_text).filter(|v| !v.is_empty());
        let value = match (*key, value) {
            ("_SYSTEMD_UNIT", None) => entry.get("SYSLOG_IDENTIFIER").map(field_text),
            (_, value) => value,
        };
        if let Some(value) = value {
            fields.push(name, &value);
        }
    }
    fields.extend_from(&parsed.fields);
    for (key, value) in &entry {
        if key.starts_with('_') || SKIPPED.contains(&key.as_str()) || value.is_null() {
            continue;
        }
        fields.push(key, &field_text(value));
    }
    parsed.fields = fields;
    finish(source, text, parsed, priority, dropped, rule, now)
}

/// A journal field's value as text: strings as they are, byte arrays (what journalctl
/// writes for a value that is not clean UTF-8) decoded lossily, several values joined.
fn field_text(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        Json::Array(items) if items.iter().all(|i| i.as_u64().is_some_and(|n| n < 256)) => {
            let bytes: Vec<u8> = items
                .iter()
                .filter_map(|i| i.as_u64())
                .map(|n| n as u8)
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Json::Array(items) => items.iter().map(field_text).collect::<Vec<_>>().join(" "),
        other => other.to_string(),
    }
}

/// An entry captured from `journalctl -o json` on a Debian 12 host (ids shortened).
#[cfg(test)]
pub(crate) const SSHD: &str = r#"{"_SOURCE_REALTIME_TIMESTAMP":"1765535445123456","SYSLOG_FACILITY":"4","_UID":"0","__CURSOR":"s=8f1c6f2a;i=1a2b;b=5e4d;m=2f0c;t=6453a1b2c3d4e;x=77aa","_COMM":"sshd","PRIORITY":"6","_SYSTEMD_UNIT":"ssh.service","__REALTIME_TIMESTAMP":"1765535445123999","_PID":"812","SYSLOG_IDENTIFIER":"sshd","_HOSTNAME":"web1","MESSAGE":"Accepted publickey for deploy from 10.0.0.7 port 52144 ssh2","_TRANSPORT":"syslog","__MONOTONIC_TIMESTAMP":"51234567","_BOOT_ID":"5e4d"}"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::logs::parse::testing::pattern;
    use crate::model::update::LogLevel;
    use chrono::Timelike;

    fn parse(line: &str) -> LogLine {
        parse_entry(
            "tmws",
            line.as_bytes(),
            0,
            ErrorRule::new(&pattern()),
            Utc::now(),
        )
    }

    #[test]
    fn a_plain_entry() {
        let line = parse(SSHD);
        assert_eq!(
            line.message,
            "Accepted publickey for deploy from 10.0.0.7 port 52144 ssh2"
        );
        assert_eq!(line.level, LogLevel::Info);
        assert!(!line.is_error);
        assert_eq!(line.at.timestamp(), 1765535445);
        assert_eq!(line.at.nanosecond(), 123_999_000);
        assert_eq!(
            &line.fields.to_vec()[..3],
            &[
                ("unit".to_string(), "ssh.service".to_string()),
                ("pid".to_string(), "812".to_string()),
                ("host".to_string(), "web1".to_string()),
            ]
        );
        assert!(line.fields.iter().all(|(k, _)| !k.starts_with('_')));
        assert_eq!(
            cursor_of(SSHD.as_bytes()).as_deref(),
            Some("s=8f1c6f2a;i=1a2b;b=5e4d;m=2f0c;t=6453a1b2c3d4e;x=77aa")
        );
    }

    #[test]
    fn priority_gives_the_level_when_the_text_names_none() {
        for (priority, level) in [
            ("0", LogLevel::Critical),
            ("2", LogLevel::Critical),
            ("3", LogLevel::Error),
            ("4", LogLevel::Warn),
            ("5", LogLevel::Info),
            ("7", LogLevel::Debug),
        ] {
            let line = parse(&format!(
                r#"{{"__CURSOR":"c","__REALTIME_TIMESTAMP":"1765535445000000","PRIORITY":"{priority}","MESSAGE":"something happened","_SYSTEMD_UNIT":"tmws.service"}}"#
            ));
            assert_eq!(line.level, level, "{priority}");
            assert_eq!(line.is_error, level >= LogLevel::Error);
        }
        // The text's own level wins: Python logging to stdout arrives as PRIORITY 6.
        let line = parse(
            r#"{"PRIORITY":"6","MESSAGE":"2025-12-12 10:30:45,123 - tmws.app - ERROR - License check failed","__REALTIME_TIMESTAMP":"1765535445000000"}"#,
        );
        assert_eq!(line.level, LogLevel::Error);
        assert_eq!(line.message, "License check failed");
    }

    #[test]
    fn json_in_the_message_keeps_its_fields() {
        let line = parse(
            r#"{"__CURSOR":"c1","__REALTIME_TIMESTAMP":"1765535480000000","PRIORITY":"6","_SYSTEMD_UNIT":"tmws.service","_PID":"4242","MESSAGE":"{\"timestamp\":\"2025-12-12T10:31:20.456Z\",\"level\":\"ERROR\",\"message\":\"Scheduled expiration cleanup failed\",\"monitoring_event\":\"SCHEDULER_CLEANUP_FAILED\",\"error_type\":\"OperationalError\"}","CODE_FILE":"scheduler.py"}"#,
        );
        assert_eq!(line.level, LogLevel::Error);
        assert_eq!(line.message, "Scheduled expiration cleanup failed");
        assert_eq!(
            line.at,
            DateTime::parse_from_rfc3339("2025-12-12T10:31:20.456Z").unwrap()
        );
        let field = |k: &str| line.fields.get(k);
        assert_eq!(field("monitoring_event"), Some("SCHEDULER_CLEANUP_FAILED"));
        assert_eq!(field("unit"), Some("tmws.service"));
        assert_eq!(field("CODE_FILE"), Some("scheduler.py"));
    }

    #[test]
    fn byte_array_messages_and_odd_entries() {
        // "bad \xff byte \x1b[2J" as journalctl writes a message that is not clean UTF-8.
        let line = parse(
            r#"{"__REALTIME_TIMESTAMP":"1765535445000000","PRIORITY":"3","SYSLOG_IDENTIFIER":"kernel","MESSAGE":[98,97,100,32,255,32,98,121,116,101,32,27,91,50,74]}"#,
        );
        assert_eq!(line.message, "bad \u{fffd} byte \u{1b}[2J");
        assert_eq!(line.level, LogLevel::Error);
        assert_eq!(
            line.fields.to_vec()[0],
            ("unit".to_string(), "kernel".to_string())
        );

        // A value too large for journalctl's JSON is null; no MESSAGE at all is empty.
        let line = parse(r#"{"__REALTIME_TIMESTAMP":"1765535445000000","MESSAGE":null}"#);
        assert_eq!(line.message, "");
        // Not an entry: read as text.
        let line = parse("-- Boot 5e4d --");
        assert_eq!(line.message, "-- Boot 5e4d --");
        // A field given several times.
        let line = parse(r#"{"MESSAGE":"m","TAG":["a","b"]}"#);
        assert!(
            line.fields
                .to_vec()
                .contains(&("TAG".to_string(), "a b".to_string()))
        );
    }

    #[test]
    fn cursor_scan_handles_spacing_and_absence() {
        assert_eq!(
            cursor_of(br#"{ "__CURSOR" : "s=1;i=2" , "MESSAGE":"x"}"#).as_deref(),
            Some("s=1;i=2")
        );
        assert_eq!(cursor_of(br#"{"MESSAGE":"__CURSOR"}"#), None);
        assert_eq!(cursor_of(br#"{"__CURSOR":"unterminated"#), None);
    }
}
