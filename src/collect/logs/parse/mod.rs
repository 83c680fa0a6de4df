//! One raw log line → one [`LogLine`]: JSON objects (`json`), logfmt (`logfmt`), or plain
//! text (`text`) with the level (`level`) and timestamp (`time`) read from the usual
//! prefixes; journald's JSON entries (`journal`). Text stays raw here (the UI sanitizes
//! it); invalid UTF-8 is decoded lossily.

mod ansi;
mod journal;
mod json;
mod level;
mod logfmt;
mod text;
mod time;

pub(crate) use ansi::strip_ansi;
#[cfg(test)]
pub(crate) use journal::SSHD;
pub(crate) use journal::{cursor_of, parse_entry, realtime_of};

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
        rule: ErrorRule<'_>,
        now: DateTime<Utc>,
    ) -> LogLine {
        self.parse_dated(source, raw, dropped, rule, now).0
    }

    /// As [`Format::parse`], and whether the line named its own time (else it is dated
    /// `now`).
    pub fn parse_dated(
        self,
        source: Arc<str>,
        raw: &[u8],
        dropped: u64,
        rule: ErrorRule<'_>,
        now: DateTime<Utc>,
    ) -> (LogLine, bool) {
        match self {
            Format::Text => parse_line_dated(source, raw, dropped, rule, now),
            Format::Journal => (parse_entry(source, raw, dropped, rule, now), true),
        }
    }
}

/// What makes a line an error: its own level when it names one (ERROR or above), the
/// error pattern when it names none, and the pattern on lines with a lower level too
/// when the source asks for it (`error_pattern_all_levels = true`).
#[derive(Clone, Copy, Debug)]
pub struct ErrorRule<'a> {
    pub pattern: &'a Regex,
    /// The pattern also makes a line whose level is below ERROR an error.
    pub all_levels: bool,
}

impl<'a> ErrorRule<'a> {
    /// The default: the pattern classifies lines without a level only.
    pub fn new(pattern: &'a Regex) -> Self {
        ErrorRule {
            pattern,
            all_levels: false,
        }
    }

    /// Whether a line with level `named` (if any) and text `text` is an error by the
    /// pattern (a line at ERROR or above is one anyway).
    fn matches(self, named: Option<LogLevel>, text: &str) -> bool {
        match named {
            None => self.pattern.is_match(text),
            Some(level) if level >= LogLevel::Error => false,
            Some(_) => self.all_levels && self.pattern.is_match(text),
        }
    }
}

/// Longer lines are cut here, with a marker, so a 1 MB line costs no more than 64 KiB.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Parses one line (without its newline). `dropped` is how many bytes of the line the
/// reader already cut off; more are cut here if `raw` is over [`MAX_LINE_BYTES`].
/// A line that names its level is an error at ERROR or above; `error_pattern` decides
/// for a line that names none (see [`ErrorRule`]).
pub fn parse_line(
    source: impl Into<Arc<str>>,
    raw: &[u8],
    dropped: u64,
    error_pattern: &Regex,
    now: DateTime<Utc>,
) -> LogLine {
    parse_line_with(source, raw, dropped, ErrorRule::new(error_pattern), now)
}

/// As [`parse_line`], with the source's whole error rule.
pub fn parse_line_with(
    source: impl Into<Arc<str>>,
    raw: &[u8],
    dropped: u64,
    rule: ErrorRule<'_>,
    now: DateTime<Utc>,
) -> LogLine {
    parse_line_dated(source, raw, dropped, rule, now).0
}

/// As [`parse_line_with`], and whether the line named its own time.
fn parse_line_dated(
    source: impl Into<Arc<str>>,
    raw: &[u8],
    dropped: u64,
    rule: ErrorRule<'_>,
    now: DateTime<Utc>,
) -> (LogLine, bool) {
    let keep = raw.len().min(MAX_LINE_BYTES);
    let dropped = dropped + (raw.len() - keep) as u64;
    // Checked first: valid UTF-8 (the usual case) is checked much faster than it is
    // decoded lossily.
    let text = match std::str::from_utf8(&raw[..keep]) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(&raw[..keep]),
    };
    let text = text.strip_suffix('\r').unwrap_or(&text);
    let (parsed, plain) = parse_through_colour(text, now);
    let dated = parsed.at.is_some();
    (
        finish(source, &plain, parsed, None, dropped, rule, now),
        dated,
    )
}

/// Parses `text` with its escape sequences removed (a coloured level reads as its level),
/// and returns that plain text for the error pattern. The message keeps the line as
/// written (the screen's sanitizer defuses what it holds).
pub(crate) fn parse_through_colour(text: &str, now: DateTime<Utc>) -> (Parsed, Cow<'_, str>) {
    let plain = strip_ansi(text);
    let mut parsed = parse_text(&plain, now);
    if let Cow::Owned(_) = plain {
        parsed.message = parse_text(text, now).message;
    }
    (parsed, plain)
}

/// Builds the line from what the text said. `fallback_level` is the level the transport
/// gave (journald's PRIORITY), used when the text names none; the rule's pattern is tried
/// on `text` (see [`ErrorRule`]).
pub(crate) fn finish(
    source: impl Into<Arc<str>>,
    text: &str,
    parsed: Parsed,
    fallback_level: Option<LogLevel>,
    dropped: u64,
    rule: ErrorRule<'_>,
    now: DateTime<Utc>,
) -> LogLine {
    let named = parsed.level.or(fallback_level);
    // The level decides where there is one: a line at error level or above is an error
    // whatever it says, one below is not (unless the source applies its pattern to every
    // level). The pattern is the costliest step for a long line: tried only when needed.
    let matched = rule.matches(named, text);
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
        tallied: false,
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
