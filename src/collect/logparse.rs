//! One raw log line → one [`LogLine`]: JSON objects, logfmt, or plain text with the level
//! and timestamp read from the usual prefixes (ISO/Python/nginx timestamps, syslog and
//! journalctl `host unit[pid]:`, glog `E1212 …]`, `<3>` priorities, compose `svc  | `).
//! Text stays raw here (the UI sanitizes it); invalid UTF-8 is decoded lossily.

use crate::state::update::{LogLevel, LogLine};
use chrono::{DateTime, Datelike, Local, NaiveDate, NaiveDateTime, TimeZone, Utc};
use regex::Regex;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value as Json;
use std::fmt;
use std::sync::LazyLock;

/// Longer lines are cut here, with a marker, so a 1 MB line costs no more than 64 KiB.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Parses one line (without its newline). `dropped` is how many bytes of the line the
/// reader already cut off; more are cut here if `raw` is over [`MAX_LINE_BYTES`].
/// `error_pattern` decides `is_error` together with the level (>= Error).
pub fn parse_line(
    source: &str,
    raw: &[u8],
    dropped: u64,
    error_pattern: &Regex,
    now: DateTime<Utc>,
) -> LogLine {
    let keep = raw.len().min(MAX_LINE_BYTES);
    let dropped = dropped + (raw.len() - keep) as u64;
    let text = String::from_utf8_lossy(&raw[..keep]);
    let text = text.strip_suffix('\r').unwrap_or(&text);
    finish(
        source,
        text,
        parse_text(text, now),
        None,
        dropped,
        error_pattern,
        now,
    )
}

/// Builds the line from what the text said. `fallback_level` is the level the transport
/// gave (journald's PRIORITY), used when the text names none; `error_pattern` is tried on
/// `text`.
pub(crate) fn finish(
    source: &str,
    text: &str,
    parsed: Parsed,
    fallback_level: Option<LogLevel>,
    dropped: u64,
    error_pattern: &Regex,
    now: DateTime<Utc>,
) -> LogLine {
    let matched = error_pattern.is_match(text);
    // A line that names no level but matches the error pattern shows as an error.
    let level = parsed.level.or(fallback_level).unwrap_or(if matched {
        LogLevel::Error
    } else {
        LogLevel::Info
    });
    let mut message = parsed.message;
    if dropped > 0 {
        message.push_str(&format!(" … [+{dropped} bytes]"));
    }
    LogLine {
        source: source.to_string(),
        at: parsed.at.unwrap_or(now),
        level,
        message,
        fields: parsed.fields,
        is_error: matched || level >= LogLevel::Error,
    }
}

/// What one line's text says, before the source and the error pattern are applied.
pub(crate) struct Parsed {
    pub at: Option<DateTime<Utc>>,
    pub level: Option<LogLevel>,
    pub message: String,
    pub fields: Vec<(String, String)>,
}

/// JSON, then logfmt, then plain text.
pub(crate) fn parse_text(text: &str, now: DateTime<Utc>) -> Parsed {
    parse_json(text, now)
        .or_else(|| parse_logfmt(text, now))
        .unwrap_or_else(|| parse_plain(text, now))
}

// ---------------------------------------------------------------------------------------
// JSON

/// A JSON object's members in the order they were written (serde_json's `Map` sorts
/// them unless its `preserve_order` feature is on).
struct OrderedObject(Vec<(String, Json)>);

impl<'de> Deserialize<'de> for OrderedObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = OrderedObject;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedObject, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<String, Json>()? {
                    members.push(member);
                }
                Ok(OrderedObject(members))
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
}

const LEVEL_KEYS: &[&str] = &[
    "level",
    "levelname",
    "severity",
    "lvl",
    "loglevel",
    "log.level",
    "priority",
];
const TIME_KEYS: &[&str] = &[
    "timestamp",
    "time",
    "ts",
    "@timestamp",
    "t",
    "datetime",
    "asctime",
    "__realtime_timestamp",
];
const MESSAGE_KEYS: &[&str] = &["message", "msg"];

fn parse_json(text: &str, now: DateTime<Utc>) -> Option<Parsed> {
    if !text.trim_start().starts_with('{') {
        return None;
    }
    let OrderedObject(members) = serde_json::from_str(text).ok()?;
    let find = |keys: &[&str]| {
        members
            .iter()
            .position(|(k, _)| keys.iter().any(|key| k.eq_ignore_ascii_case(key)))
    };

    let level_at = find(LEVEL_KEYS);
    let level = level_at.and_then(|i| {
        let syslog = members[i].0.eq_ignore_ascii_case("priority");
        match &members[i].1 {
            Json::String(s) => {
                level_word(s).or_else(|| s.parse().ok().and_then(|n| level_number(n, syslog)))
            }
            Json::Number(n) => n.as_f64().and_then(|n| level_number(n, syslog)),
            _ => None,
        }
    });
    let time_at = find(TIME_KEYS);
    let at = time_at.and_then(|i| match &members[i].1 {
        Json::String(s) => parse_time(s, now),
        Json::Number(n) => n
            .as_i64()
            .map_or_else(|| n.as_f64().and_then(from_epoch), from_epoch_int),
        _ => None,
    });
    // structlog writes the message as "event"; take it only when nothing else names one.
    let message_at = find(MESSAGE_KEYS)
        .or_else(|| find(&["event"]).filter(|&i| members[i].1.is_string()))
        .filter(|&i| !matches!(members[i].1, Json::Object(_) | Json::Array(_)));

    let used = |i: usize| {
        Some(i) == message_at
            || (Some(i) == level_at && level.is_some())
            || (Some(i) == time_at && at.is_some())
    };
    let message_value = message_at.map(|i| json_text(&members[i].1));
    let fields: Vec<(String, String)> = members
        .iter()
        .enumerate()
        .filter(|(i, _)| !used(*i))
        .map(|(_, (k, v))| (k.clone(), json_text(v)))
        .collect();
    let message = message_value.unwrap_or_else(|| render_fields(&fields));
    Some(Parsed {
        at,
        level,
        message,
        fields,
    })
}

/// A JSON value as a field shows it: strings bare, the rest as compact JSON.
fn json_text(value: &Json) -> String {
    match value {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `k=v k=v`, the message of a structured line that has no message field.
fn render_fields(fields: &[(String, String)]) -> String {
    let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
    parts.join(" ")
}

// ---------------------------------------------------------------------------------------
// logfmt

/// `key=value key="quoted value"`; every token must be a pair, and there must be two.
fn logfmt_pairs(text: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut chars = text.trim().chars().peekable();
    while chars.peek().is_some() {
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            if !(c.is_ascii_alphanumeric() || "_.-/@".contains(c)) {
                return None;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() || chars.next() != Some('=') {
            return None;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => match chars.next()? {
                        'n' => value.push('\n'),
                        't' => value.push('\t'),
                        other => value.push(other),
                    },
                    c => value.push(c),
                }
            }
            if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                return None;
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        pairs.push((key, value));
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
    }
    (pairs.len() >= 2).then_some(pairs)
}

fn parse_logfmt(text: &str, now: DateTime<Utc>) -> Option<Parsed> {
    let pairs = logfmt_pairs(text)?;
    let find = |keys: &[&str]| {
        pairs
            .iter()
            .position(|(k, _)| keys.iter().any(|key| k.eq_ignore_ascii_case(key)))
    };
    let level_at = find(LEVEL_KEYS);
    let level = level_at.and_then(|i| level_word(&pairs[i].1));
    let time_at = find(TIME_KEYS);
    let at = time_at.and_then(|i| parse_time(&pairs[i].1, now));
    let message_at = find(MESSAGE_KEYS);
    let used = |i: usize| {
        Some(i) == message_at
            || (Some(i) == level_at && level.is_some())
            || (Some(i) == time_at && at.is_some())
    };
    let message_value = message_at.map(|i| pairs[i].1.clone());
    let fields: Vec<(String, String)> = pairs
        .iter()
        .enumerate()
        .filter(|(i, _)| !used(*i))
        .map(|(_, pair)| pair.clone())
        .collect();
    let message = message_value.unwrap_or_else(|| render_fields(&fields));
    Some(Parsed {
        at,
        level,
        message,
        fields,
    })
}

// ---------------------------------------------------------------------------------------
// Plain text

fn regex(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("built-in pattern {pattern:?}: {e}"))
}

/// `backend-1  | ` from `docker compose logs`.
static COMPOSE: LazyLock<Regex> = LazyLock::new(|| regex(r"^([A-Za-z0-9][\w.-]*)\s+\|\s?"));
/// `<3>` syslog/kernel priority.
static PRIORITY: LazyLock<Regex> = LazyLock::new(|| regex(r"^<([0-7])>"));
/// ISO 8601 / RFC 3339 / Python asctime, optionally in brackets.
static ISO_TIME: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r"^\[?(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2}| ?UTC)?)\]?(?:\s+|$)",
    )
});
/// nginx error log: `2025/12/12 10:30:45`.
static SLASH_TIME: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^\[?(\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}(?:[.,]\d+)?)\]?(?:\s+|$)"));
/// syslog / journalctl short: `Dec 12 10:30:45`.
static SYSLOG_TIME: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^([A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2})(?:\s+|$)"));
/// After a syslog time: `host unit[pid]: ` (the pid is optional).
static SYSLOG_TAG: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^(\S+)\s+([^\s\[\]:]+)(?:\[(\d+)\])?:(?:\s+|$)"));
/// After an ISO time (journalctl -o short-iso): `host unit[pid]: ` (the pid is required).
static ISO_TAG: LazyLock<Regex> =
    LazyLock::new(|| regex(r"^(\S+)\s+([^\s\[\]:]+)\[(\d+)\]:(?:\s+|$)"));
/// glog / klog: `E1212 10:30:45.123456    42 file.go:12] `.
static GLOG: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"^([IWEF])(\d{2})(\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?)\s+\d+\s+([^\s\]]+)\]\s?")
});

fn parse_plain(text: &str, now: DateTime<Utc>) -> Parsed {
    let mut fields = Vec::new();
    let mut level = None;
    let mut at = None;
    let mut rest = text;

    if let Some(c) = COMPOSE
        .captures(rest)
        .filter(|c| level_word(&c[1]).is_none())
    {
        fields.push(("service".to_string(), c[1].to_string()));
        rest = &rest[c[0].len()..];
    }
    if let Some(c) = PRIORITY.captures(rest) {
        level = c[1].parse().ok().and_then(|n| level_number(n, true));
        rest = &rest[c[0].len()..];
    }
    if let Some(c) = GLOG.captures(rest) {
        level = level_word(&c[1]);
        at = parse_glog_time(&c[2], &c[3], &c[4], now);
        fields.push(("file".to_string(), c[5].to_string()));
        rest = &rest[c[0].len()..];
    } else if let Some(c) = ISO_TIME.captures(rest) {
        at = parse_time(&c[1], now);
        rest = &rest[c[0].len()..];
        if let Some(tag) = ISO_TAG.captures(rest) {
            push_tag(&mut fields, &tag);
            rest = &rest[tag[0].len()..];
        }
    } else if let Some(c) = SLASH_TIME.captures(rest) {
        at = parse_time(&c[1], now);
        rest = &rest[c[0].len()..];
    } else if let Some(c) = SYSLOG_TIME.captures(rest) {
        at = parse_syslog_time(&c[1], now);
        rest = &rest[c[0].len()..];
        if let Some(tag) = SYSLOG_TAG.captures(rest) {
            push_tag(&mut fields, &tag);
            rest = &rest[tag[0].len()..];
        }
    }

    let mut message = rest.trim().to_string();
    if level.is_none()
        && let Some((found, prefix, after)) = find_level(rest)
    {
        level = Some(found);
        if !prefix.is_empty() {
            fields.push(("logger".to_string(), prefix.to_string()));
        }
        message = after.to_string();
    }
    Parsed {
        at,
        level,
        message,
        fields,
    }
}

fn push_tag(fields: &mut Vec<(String, String)>, tag: &regex::Captures) {
    fields.push(("host".to_string(), tag[1].to_string()));
    fields.push(("unit".to_string(), tag[2].to_string()));
    if let Some(pid) = tag.get(3) {
        fields.push(("pid".to_string(), pid.as_str().to_string()));
    }
}

/// Characters around a level word: `[ERROR]`, `<warn>`, `ERROR:`, `(info)`.
const DECORATION: &[char] = &['[', ']', '(', ')', '<', '>', ':', '|', ','];
/// Tokens that only separate (`-` in Python's default format, `|`, `:`).
fn is_separator(token: &str) -> bool {
    token.chars().all(|c| matches!(c, '-' | '|' | ':' | '—'))
}

/// Looks for a level in the first three words. Returns it with the words before it (a
/// logger name, as in Python's `asctime - name - LEVEL - message`) and the message after
/// it; an inline `level=warn` token leaves the text whole.
fn find_level(text: &str) -> Option<(LogLevel, &str, &str)> {
    let separator = |c: char| c.is_whitespace() || matches!(c, '-' | '|' | ':' | '—');
    let mut words = 0;
    let mut offset = 0;
    for token in text.split_whitespace() {
        let start = offset + text[offset..].find(token).unwrap_or(0);
        offset = start + token.len();
        if is_separator(token) {
            continue;
        }
        match token_level(token, words == 0) {
            Some((level, true)) => return Some((level, "", text.trim())),
            Some((level, false)) => {
                let prefix = text[..start].trim_matches(separator);
                return Some((
                    level,
                    prefix,
                    text[offset..].trim_start_matches(separator).trim_end(),
                ));
            }
            None => {}
        }
        words += 1;
        if words == 3 {
            break;
        }
    }
    None
}

/// A token that names a level, and whether it is an inline `level=…` pair. Uppercase
/// (`ERROR`), decorated (`[error]`, `error:`) or `level=error` forms count anywhere in the
/// window; a bare lowercase word or a single letter (`E`, `W`) only as the first word.
fn token_level(token: &str, first: bool) -> Option<(LogLevel, bool)> {
    let lower = token.to_ascii_lowercase();
    for key in ["level=", "lvl=", "severity="] {
        if let Some(value) = lower.strip_prefix(key) {
            return level_word(value.trim_matches('"')).map(|level| (level, true));
        }
    }
    let word = token.trim_matches(DECORATION);
    if word.is_empty() || !word.chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    let decorated = word.len() != token.len();
    let upper = word.chars().all(|c| c.is_ascii_uppercase());
    let allowed = if word.len() == 1 {
        first && upper
    } else {
        decorated || upper || first
    };
    if allowed {
        level_word(word).map(|level| (level, false))
    } else {
        None
    }
}

/// A level name in any of its usual spellings, or a single-letter abbreviation.
fn level_word(word: &str) -> Option<LogLevel> {
    let word = word.trim();
    match word {
        "T" => Some(LogLevel::Trace),
        "D" => Some(LogLevel::Debug),
        "I" => Some(LogLevel::Info),
        "W" => Some(LogLevel::Warn),
        "E" => Some(LogLevel::Error),
        "F" | "C" => Some(LogLevel::Critical),
        _ => LogLevel::parse(word).or_else(|| match word.to_ascii_lowercase().as_str() {
            "warnings" => Some(LogLevel::Warn),
            "errors" | "severe" => Some(LogLevel::Error),
            "emergency" => Some(LogLevel::Critical),
            _ => None,
        }),
    }
}

/// Numeric levels: syslog priorities (0 emerg … 7 debug) or pino/bunyan (10 trace … 60 fatal).
pub(crate) fn level_number(n: f64, syslog: bool) -> Option<LogLevel> {
    if syslog || (0.0..=7.0).contains(&n) {
        return match n as i64 {
            0..=2 => Some(LogLevel::Critical),
            3 => Some(LogLevel::Error),
            4 => Some(LogLevel::Warn),
            5 | 6 => Some(LogLevel::Info),
            7 => Some(LogLevel::Debug),
            _ => None,
        };
    }
    match n as i64 {
        10..=19 => Some(LogLevel::Trace),
        20..=29 => Some(LogLevel::Debug),
        30..=39 => Some(LogLevel::Info),
        40..=49 => Some(LogLevel::Warn),
        50..=59 => Some(LogLevel::Error),
        60..=69 => Some(LogLevel::Critical),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// Timestamps

/// RFC 3339 and its near relatives (space for `T`, comma decimals, `+0000`, ` UTC`), naive
/// local times, epoch numbers (s, ms, µs or ns by size) and syslog times without a year.
pub fn parse_time(text: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if text.is_empty() || text.len() > 64 {
        return None;
    }
    if let Ok(n) = text.parse::<i64>() {
        return from_epoch_int(n);
    }
    if let Ok(n) = text.parse::<f64>() {
        return from_epoch(n);
    }
    let mut s = text.replace(',', ".");
    if let Some(stripped) = s.strip_suffix(" UTC").or_else(|| s.strip_suffix("UTC")) {
        s = format!("{stripped}+00:00");
    } else if let Some(stripped) = s.strip_suffix('Z').or_else(|| s.strip_suffix('z')) {
        s = format!("{stripped}+00:00");
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(&s) {
        return Some(t.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f%z",
        "%Y-%m-%d %H:%M:%S%.f %z",
    ] {
        if let Ok(t) = DateTime::parse_from_str(&s, format) {
            return Some(t.with_timezone(&Utc));
        }
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y/%m/%d %H:%M:%S%.f",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(&s, format) {
            return local(t);
        }
    }
    parse_syslog_time(text, now)
}

fn local(naive: NaiveDateTime) -> Option<DateTime<Utc>> {
    Local
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// Seconds, milliseconds, microseconds or nanoseconds since the epoch, told apart by size.
fn from_epoch(n: f64) -> Option<DateTime<Utc>> {
    if !n.is_finite() || n <= 0.0 || n >= 9.2e18 {
        return None;
    }
    if n.fract() == 0.0 {
        return from_epoch_int(n as i64);
    }
    // Split before scaling so a fraction of a second keeps its precision.
    let per_second = epoch_units_per_second(n as i64);
    let seconds = (n / per_second as f64).floor();
    let nanos = ((n - seconds * per_second as f64) * (1e9 / per_second as f64)).round();
    DateTime::from_timestamp(seconds as i64, (nanos as u32).min(999_999_999))
}

fn from_epoch_int(n: i64) -> Option<DateTime<Utc>> {
    if n <= 0 {
        return None;
    }
    let per_second = epoch_units_per_second(n);
    let nanos_per_unit = 1_000_000_000 / per_second;
    DateTime::from_timestamp(n / per_second, ((n % per_second) * nanos_per_unit) as u32)
}

/// 1e11 seconds is the year 5138, so anything bigger is a finer unit.
fn epoch_units_per_second(n: i64) -> i64 {
    match n {
        100_000_000_000_000_000.. => 1_000_000_000,
        100_000_000_000_000.. => 1_000_000,
        100_000_000_000.. => 1_000,
        _ => 1,
    }
}

/// `Dec 12 10:30:45`, local time, in the year that puts it closest before now.
fn parse_syslog_time(text: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let year = now.with_timezone(&Local).year();
    let with_year = |year: i32| {
        NaiveDateTime::parse_from_str(
            &format!(
                "{year} {}",
                text.split_whitespace().collect::<Vec<_>>().join(" ")
            ),
            "%Y %b %d %H:%M:%S",
        )
        .ok()
        .and_then(local)
    };
    let t = with_year(year)?;
    if t > now + chrono::Duration::days(1) {
        with_year(year - 1)
    } else {
        Some(t)
    }
}

/// glog's `MMDD hh:mm:ss.ffffff`, local time, this year (or last, as for syslog).
fn parse_glog_time(
    month: &str,
    day: &str,
    time: &str,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let year = now.with_timezone(&Local).year();
    let at = |year: i32| {
        let date = NaiveDate::from_ymd_opt(year, month.parse().ok()?, day.parse().ok()?)?;
        let time = chrono::NaiveTime::parse_from_str(time, "%H:%M:%S%.f").ok()?;
        local(date.and_time(time))
    };
    let t = at(year)?;
    if t > now + chrono::Duration::days(1) {
        at(year - 1)
    } else {
        Some(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, Timelike};

    fn pattern() -> Regex {
        regex::RegexBuilder::new(&crate::config::default_error_pattern())
            .case_insensitive(true)
            .build()
            .unwrap()
    }

    fn parse(text: &str) -> LogLine {
        parse_line("app", text.as_bytes(), 0, &pattern(), Utc::now())
    }

    #[test]
    fn json_in_the_shape_of_seed_002() {
        let line = parse(
            r#"{"timestamp": "2025-12-12T10:30:45.123Z", "level": "INFO", "message": "Skill registered as MCP tool: skill_code_review_assistant", "skill_id": "abc123", "security_event": "SKILL_ACTIVATION_SUCCESS", "version": 2}"#,
        );
        assert_eq!(line.level, LogLevel::Info);
        assert_eq!(
            line.at,
            DateTime::parse_from_rfc3339("2025-12-12T10:30:45.123Z").unwrap()
        );
        assert_eq!(
            line.message,
            "Skill registered as MCP tool: skill_code_review_assistant"
        );
        assert_eq!(
            line.fields,
            vec![
                ("skill_id".to_string(), "abc123".to_string()),
                (
                    "security_event".to_string(),
                    "SKILL_ACTIVATION_SUCCESS".to_string()
                ),
                ("version".to_string(), "2".to_string()),
            ]
        );
        assert!(!line.is_error);

        let line = parse(
            r#"{"timestamp":"2025-12-12T10:31:20.456Z","level":"ERROR","message":"Failed to call MCP tool","outcome":"timeout","latency_ms":45.23,"error_type":"TimeoutError"}"#,
        );
        assert_eq!(line.level, LogLevel::Error);
        assert!(line.is_error);
        assert_eq!(line.fields[0], ("outcome".into(), "timeout".into()));
        assert_eq!(line.fields[1], ("latency_ms".into(), "45.23".into()));
    }

    #[test]
    fn json_variants() {
        let line = parse(
            r#"{"levelname":"WARNING","asctime":"2025-12-12 11:00:00,789","msg":"slow","nested":{"a":1}}"#,
        );
        assert_eq!(line.level, LogLevel::Warn);
        assert_eq!(line.message, "slow");
        assert_eq!(line.at.with_timezone(&Local).hour(), 11);
        assert_eq!(
            line.fields,
            vec![("nested".to_string(), r#"{"a":1}"#.to_string())]
        );

        let line = parse(r#"{"level":50,"time":1702377045123,"msg":"boom"}"#);
        assert_eq!(line.level, LogLevel::Error);
        assert_eq!(line.at.timestamp_millis(), 1702377045123);

        let line = parse(
            r#"{"severity":"critical","@timestamp":"2025-12-12T10:30:45+01:00","event":"db down"}"#,
        );
        assert_eq!(line.level, LogLevel::Critical);
        assert_eq!(line.message, "db down");
        assert_eq!(line.at.hour(), 9);

        // No message field: the fields make the message.
        let line = parse(r#"{"monitoring_event":"SCHEDULER_START","interval_hours":1.0}"#);
        assert_eq!(
            line.message,
            "monitoring_event=SCHEDULER_START interval_hours=1.0"
        );
        assert_eq!(line.level, LogLevel::Info);

        // Not an object, or broken: plain text.
        assert_eq!(
            parse(r#"{"level":"INFO","msg":"cut"#).message,
            r#"{"level":"INFO","msg":"cut"#
        );
        assert_eq!(parse("[1, 2]").message, "[1, 2]");
    }

    #[test]
    fn logfmt() {
        let line = parse(
            r#"ts=2025-12-12T10:30:45Z level=error msg="connection refused" host=db retries=3"#,
        );
        assert_eq!(line.level, LogLevel::Error);
        assert_eq!(line.message, "connection refused");
        assert_eq!(
            line.at,
            DateTime::parse_from_rfc3339("2025-12-12T10:30:45Z").unwrap()
        );
        assert_eq!(
            line.fields,
            vec![("host".into(), "db".into()), ("retries".into(), "3".into())]
        );
        assert!(line.is_error);

        let line = parse(r#"level=warn msg="quote \" inside""#);
        assert_eq!(line.level, LogLevel::Warn);
        assert_eq!(line.message, "quote \" inside");
        // One pair only, or loose words: not logfmt.
        assert_eq!(parse("user=bob logged in").message, "user=bob logged in");
    }

    #[test]
    fn plain_levels() {
        let cases: &[(&str, LogLevel, &str)] = &[
            ("ERROR something broke", LogLevel::Error, "something broke"),
            ("WARN: disk at 85%", LogLevel::Warn, "disk at 85%"),
            (
                "[error] upstream timed out",
                LogLevel::Error,
                "upstream timed out",
            ),
            ("[INFO] started", LogLevel::Info, "started"),
            ("E something", LogLevel::Error, "something"),
            (
                "panic: runtime error: index out of range",
                LogLevel::Critical,
                "runtime error: index out of range",
            ),
            (
                "2025-12-12T10:30:45.123Z ERROR db down",
                LogLevel::Error,
                "db down",
            ),
            (
                "2025-12-12 10:30:45,123 - tmws.app - WARNING - slow query",
                LogLevel::Warn,
                "slow query",
            ),
            (
                "2025/12/12 10:30:45 [error] 123#0: *1 connect() failed",
                LogLevel::Error,
                "123#0: *1 connect() failed",
            ),
            ("<3>kernel oops", LogLevel::Error, "kernel oops"),
            (
                "something happened level=warn here",
                LogLevel::Warn,
                "something happened level=warn here",
            ),
            ("all good here", LogLevel::Info, "all good here"),
            (
                "request failed with status 500",
                LogLevel::Error,
                "request failed with status 500",
            ),
        ];
        for (text, level, message) in cases {
            let line = parse(text);
            assert_eq!(
                (line.level, line.message.as_str()),
                (*level, *message),
                "{text}"
            );
        }
        // Not a level when lowercase and not first: "user error count" stays a message.
        let line = parse("the user error count");
        assert_eq!(line.message, "the user error count");
        assert!(line.is_error); // the pattern still matches
    }

    #[test]
    fn python_logger_name_becomes_a_field() {
        let line = parse("2025-12-12 10:30:45,123 - tmws.app - ERROR - Failed");
        assert_eq!(
            line.fields,
            vec![("logger".to_string(), "tmws.app".to_string())]
        );
        assert_eq!(line.at.with_timezone(&Local).minute(), 30);
    }

    #[test]
    fn journal_and_syslog_prefixes() {
        // A single-digit day is padded with a space; no pid.
        let line = parse("Mar  5 01:02:03 db1 kernel: Out of memory: Killed process 42");
        assert_eq!(line.at.with_timezone(&Local).day(), 5);
        assert_eq!(line.fields[1], ("unit".into(), "kernel".into()));
        assert_eq!(line.message, "Out of memory: Killed process 42");
        assert!(line.at <= Utc::now() + chrono::Duration::days(1));

        let line = parse("Dec 12 10:30:45 web1 tmws[1234]: ERROR: license check failed");
        assert_eq!(line.level, LogLevel::Error);
        assert_eq!(line.message, "license check failed");
        assert_eq!(
            &line.fields[..2],
            &[
                ("host".into(), "web1".into()),
                ("unit".into(), "tmws".into())
            ]
        );
        assert_eq!(line.at.with_timezone(&Local).second(), 45);

        let line = parse("2025-12-12T10:30:45+0000 web1 sshd[99]: Accepted publickey");
        assert_eq!(
            line.at,
            DateTime::parse_from_rfc3339("2025-12-12T10:30:45Z").unwrap()
        );
        assert_eq!(line.message, "Accepted publickey");
        assert_eq!(line.fields[2], ("pid".into(), "99".into()));

        let line = parse("backend-1  | 2025-12-12T10:30:45Z WARN pool exhausted");
        assert_eq!(line.fields[0], ("service".into(), "backend-1".into()));
        assert_eq!(line.level, LogLevel::Warn);

        let line = parse("E1212 10:30:45.123456   42 server.go:99] listen failed");
        assert_eq!(line.level, LogLevel::Error);
        assert_eq!(line.message, "listen failed");
        assert_eq!(line.fields[0], ("file".into(), "server.go:99".into()));
    }

    #[test]
    fn timestamps() {
        let now = Utc::now();
        let z = DateTime::parse_from_rfc3339("2025-12-12T10:30:45Z").unwrap();
        for text in [
            "2025-12-12T10:30:45Z",
            "2025-12-12 10:30:45Z",
            "2025-12-12T10:30:45+00:00",
            "2025-12-12T10:30:45 UTC",
        ] {
            assert_eq!(parse_time(text, now), Some(z.with_timezone(&Utc)), "{text}");
        }
        assert_eq!(parse_time("1765535445", now), Some(z.with_timezone(&Utc)));
        assert_eq!(
            parse_time("1765535445000000", now),
            Some(z.with_timezone(&Utc))
        );
        assert_eq!(parse_time("not a time", now), None);
        assert!(parse_time("Feb 30 10:00:00", now).is_none());
    }

    #[test]
    fn long_and_binary_lines() {
        let mut raw = b"ERROR ".to_vec();
        raw.extend(std::iter::repeat_n(b'x', 1 << 20));
        let line = parse_line("app", &raw, 0, &pattern(), Utc::now());
        assert_eq!(line.level, LogLevel::Error);
        assert!(line.message.len() < MAX_LINE_BYTES + 64);
        assert!(
            line.message
                .ends_with(&format!(" … [+{} bytes]", raw.len() - MAX_LINE_BYTES))
        );

        let line = parse_line(
            "app",
            b"\xff\xfe\x00\x1b[2J\x9b binary",
            7,
            &pattern(),
            Utc::now(),
        );
        assert!(line.message.contains('\u{fffd}'));
        assert!(line.message.ends_with(" … [+7 bytes]"));
    }
}
