//! One raw log line → one [`LogLine`]: JSON objects (`json`), logfmt (`logfmt`), or plain
//! text (`text`) with the level (`level`) and timestamp (`time`) read from the usual
//! prefixes; journald's JSON entries (`journal`). Text stays raw here (the UI sanitizes
//! it); invalid UTF-8 is decoded lossily.

mod journal;
mod json;
mod level;
mod logfmt;
mod text;
mod time;

#[cfg(test)]
pub(crate) use journal::SSHD;
pub(crate) use journal::{cursor_of, parse_entry};

use crate::model::update::{Fields, LogLevel, LogLine};
use chrono::{DateTime, Utc};
use regex::Regex;
use std::borrow::Cow;
use std::sync::Arc;

/// How a source's raw lines are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// JSON, logfmt or plain text.
    Text,
    /// `journalctl --output=json`.
    Journal,
}

impl Format {
    /// One raw line as a log line (see [`parse_line`]).
    pub fn parse(
        self,
        source: Arc<str>,
        raw: &[u8],
        dropped: u64,
        error_pattern: &Regex,
        now: DateTime<Utc>,
    ) -> LogLine {
        match self {
            Format::Text => parse_line(source, raw, dropped, error_pattern, now),
            Format::Journal => parse_entry(source, raw, dropped, error_pattern, now),
        }
    }
}

/// Longer lines are cut here, with a marker, so a 1 MB line costs no more than 64 KiB.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Parses one line (without its newline). `dropped` is how many bytes of the line the
/// reader already cut off; more are cut here if `raw` is over [`MAX_LINE_BYTES`].
/// `error_pattern` decides `is_error` together with the level (>= Error).
pub fn parse_line(
    source: impl Into<Arc<str>>,
    raw: &[u8],
    dropped: u64,
    error_pattern: &Regex,
    now: DateTime<Utc>,
) -> LogLine {
    let keep = raw.len().min(MAX_LINE_BYTES);
    let dropped = dropped + (raw.len() - keep) as u64;
    // Checked first: valid UTF-8 (the usual case) is checked much faster than it is
    // decoded lossily.
    let text = match std::str::from_utf8(&raw[..keep]) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(&raw[..keep]),
    };
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
    source: impl Into<Arc<str>>,
    text: &str,
    parsed: Parsed,
    fallback_level: Option<LogLevel>,
    dropped: u64,
    error_pattern: &Regex,
    now: DateTime<Utc>,
) -> LogLine {
    let named = parsed.level.or(fallback_level);
    // A line at error level or above is an error whatever it says: the pattern is not
    // needed (it is the costliest step for a long line).
    let matched = named.is_none_or(|l| l < LogLevel::Error) && error_pattern.is_match(text);
    // A line that names no level but matches the error pattern shows as an error.
    let level = named.unwrap_or(if matched {
        LogLevel::Error
    } else {
        LogLevel::Info
    });
    let mut message = parsed.message;
    if dropped > 0 {
        message.push_str(&format!(" … [+{dropped} bytes]"));
    }
    LogLine {
        source: source.into(),
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
    pub fields: Fields,
}

/// JSON, then logfmt, then plain text.
pub(crate) fn parse_text(text: &str, now: DateTime<Utc>) -> Parsed {
    json::parse(text, now)
        .or_else(|| logfmt::parse(text, now))
        .unwrap_or_else(|| text::parse(text, now))
}

// ---------------------------------------------------------------------------------------
// What the structured formats (JSON, logfmt) share

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

/// `k=v k=v`, the message of a structured line that has no message field.
fn render_fields(fields: &Fields) -> String {
    let mut out = String::with_capacity(fields.iter().map(|(k, v)| k.len() + v.len() + 2).sum());
    for (k, v) in fields {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// The length of the whitespace character at byte `i` (0 if there is none, or if `i` is
/// inside a character).
fn space_at(text: &str, i: usize) -> usize {
    match text.as_bytes().get(i) {
        Some(c) if c.is_ascii() => usize::from(c.is_ascii_whitespace()),
        Some(_) if !text.is_char_boundary(i) => 0,
        Some(_) => text[i..]
            .chars()
            .next()
            .filter(|c| c.is_whitespace())
            .map_or(0, char::len_utf8),
        None => 0,
    }
}

/// What the parsers' tests share.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    pub fn pattern() -> Regex {
        regex::RegexBuilder::new(&crate::config::default_error_pattern())
            .case_insensitive(true)
            .build()
            .unwrap()
    }

    pub fn parse(text: &str) -> LogLine {
        parse_line("app", text.as_bytes(), 0, &pattern(), Utc::now())
    }
}

#[cfg(test)]
mod tests {
    use super::testing::pattern;
    use super::*;

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
