//! One raw log line → one [`LogLine`]: JSON objects, logfmt, or plain text with the level
//! and timestamp read from the usual prefixes (ISO/Python/nginx timestamps, syslog and
//! journalctl `host unit[pid]:`, glog `E1212 …]`, `<3>` priorities, compose `svc  | `).
//! Text stays raw here (the UI sanitizes it); invalid UTF-8 is decoded lossily.

use crate::model::update::{Fields, LogLevel, LogLine};
use chrono::{
    DateTime, Datelike, Local, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc,
};
use regex::Regex;
use std::borrow::Cow;
use std::cell::Cell;
use std::sync::{Arc, LazyLock};

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
    parse_json(text, now)
        .or_else(|| parse_logfmt(text, now))
        .unwrap_or_else(|| parse_plain(text, now))
}

// ---------------------------------------------------------------------------------------
// JSON

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

/// What a JSON or logfmt key names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Level,
    Time,
    Message,
    /// structlog's message.
    Event,
    Other,
}

/// The role of a key (see `LEVEL_KEYS`, `TIME_KEYS`, `MESSAGE_KEYS`), by its length
/// first: one or two comparisons per key instead of one per known name.
fn key_role(key: &str) -> Role {
    let is = |name: &str| key.eq_ignore_ascii_case(name);
    match key.len() {
        1 if is("t") => Role::Time,
        2 if is("ts") => Role::Time,
        3 if is("lvl") => Role::Level,
        3 if is("msg") => Role::Message,
        4 if is("time") => Role::Time,
        5 if is("level") => Role::Level,
        5 if is("event") => Role::Event,
        7 if is("message") => Role::Message,
        7 if is("asctime") => Role::Time,
        8 if is("severity") || is("loglevel") || is("priority") => Role::Level,
        8 if is("datetime") => Role::Time,
        9 if is("levelname") || is("log.level") => Role::Level,
        9 if is("timestamp") => Role::Time,
        10 if is("@timestamp") => Role::Time,
        20 if is("__realtime_timestamp") => Role::Time,
        _ => Role::Other,
    }
}

/// Reads a JSON object line in one pass: the first level, time and message keys give the
/// line's level, time and message (a level or time that does not read stays a field; a
/// nested message is no message); structlog's string `event` is the message when no
/// message key exists; every other member is a field, in order.
fn parse_json(text: &str, now: DateTime<Utc>) -> Option<Parsed> {
    if !text.trim_start().starts_with('{') {
        return None;
    }
    let mut level = None;
    let mut at = None;
    let mut message = None;
    let (mut level_seen, mut time_seen, mut message_seen, mut event_seen) =
        (false, false, false, false);
    // Where the event member sits among the fields, if it may become the message.
    let mut event_at = None;
    let mut fields = Fields::with_capacity(8, text.len());
    json::members(text, |key, value| {
        match key_role(&key) {
            Role::Level if !level_seen => {
                level_seen = true;
                let syslog = key.eq_ignore_ascii_case("priority");
                level = match &value {
                    json::Value::Str(s) => level_word(s)
                        .or_else(|| s.parse().ok().and_then(|n| level_number(n, syslog))),
                    json::Value::Number(n) => n.parse().ok().and_then(|n| level_number(n, syslog)),
                    _ => None,
                };
                if level.is_some() {
                    return;
                }
            }
            Role::Time if !time_seen => {
                time_seen = true;
                at = match &value {
                    json::Value::Str(s) => parse_time(s, now),
                    json::Value::Number(n) => n.parse::<i64>().map_or_else(
                        |_| n.parse::<f64>().ok().and_then(from_epoch),
                        from_epoch_int,
                    ),
                    _ => None,
                };
                if at.is_some() {
                    return;
                }
            }
            Role::Message if !message_seen => {
                message_seen = true;
                if !matches!(value, json::Value::Nested(_)) {
                    message = Some(value.into_text());
                    return;
                }
            }
            Role::Event if !event_seen => {
                event_seen = true;
                if matches!(value, json::Value::Str(_)) {
                    event_at = Some(fields.len());
                }
            }
            _ => {}
        }
        fields.push(&key, value.text());
    })?;
    let message = match (message, event_at) {
        (Some(message), _) => message,
        (None, Some(i)) if !message_seen => fields.remove(i).unwrap_or_default(),
        (None, _) => render_fields(&fields),
    };
    Some(Parsed {
        at,
        level,
        message,
        fields,
    })
}

/// A reader for one JSON object per line that borrows what it can: no allocation for a
/// key or a string without escapes, none for a number. Numbers, literals and nested
/// values are kept as written. It accepts exactly what JSON allows (a line that is not
/// JSON is read as text instead).
mod json {
    use std::borrow::Cow;

    /// serde_json's limit too.
    const MAX_DEPTH: usize = 128;

    #[derive(Debug, PartialEq)]
    pub enum Value<'a> {
        Str(Cow<'a, str>),
        Number(&'a str),
        /// `true`, `false`, `null`.
        Literal(&'a str),
        /// An object or an array, as written.
        Nested(&'a str),
    }

    impl Value<'_> {
        /// As a field shows it: strings bare, the rest as written.
        pub fn into_text(self) -> String {
            self.text().to_string()
        }

        /// [`Value::into_text`], borrowed.
        pub fn text(&self) -> &str {
            match self {
                Value::Str(s) => s,
                Value::Number(t) | Value::Literal(t) | Value::Nested(t) => t,
            }
        }
    }

    /// The members of the object that is the whole of `text`, in order.
    #[cfg(test)]
    pub fn object(text: &str) -> Option<Vec<(Cow<'_, str>, Value<'_>)>> {
        let mut all = Vec::new();
        members(text, |k, v| all.push((k, v)))?;
        Some(all)
    }

    /// Calls `each` with the members of the object that is the whole of `text`, in
    /// order; `None` if `text` is not one JSON object (some members may have been given).
    pub fn members<'a>(text: &'a str, mut each: impl FnMut(Cow<'a, str>, Value<'a>)) -> Option<()> {
        let mut r = Reader {
            text,
            b: text.as_bytes(),
            i: 0,
        };
        r.ws();
        r.expect(b'{')?;
        r.ws();
        if r.peek() == Some(b'}') {
            r.i += 1;
        } else {
            loop {
                r.ws();
                let key = r.string()?;
                r.ws();
                r.expect(b':')?;
                r.ws();
                let value = r.value(1)?;
                each(key, value);
                r.ws();
                match r.next()? {
                    b',' => continue,
                    b'}' => break,
                    _ => return None,
                }
            }
        }
        r.ws();
        (r.i == r.b.len()).then_some(())
    }

    struct Reader<'a> {
        text: &'a str,
        b: &'a [u8],
        i: usize,
    }

    impl<'a> Reader<'a> {
        fn peek(&self) -> Option<u8> {
            self.b.get(self.i).copied()
        }

        fn next(&mut self) -> Option<u8> {
            let c = self.peek()?;
            self.i += 1;
            Some(c)
        }

        fn expect(&mut self, c: u8) -> Option<()> {
            (self.next()? == c).then_some(())
        }

        fn ws(&mut self) {
            while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
                self.i += 1;
            }
        }

        fn value(&mut self, depth: usize) -> Option<Value<'a>> {
            let start = self.i;
            match self.peek()? {
                b'"' => self.string().map(Value::Str),
                b'{' | b'[' => {
                    self.skip_nested(depth)?;
                    Some(Value::Nested(&self.text[start..self.i]))
                }
                b't' => self.literal("true"),
                b'f' => self.literal("false"),
                b'n' => self.literal("null"),
                b'-' | b'0'..=b'9' => {
                    self.number()?;
                    Some(Value::Number(&self.text[start..self.i]))
                }
                _ => None,
            }
        }

        fn literal(&mut self, word: &'static str) -> Option<Value<'a>> {
            let end = self.i + word.len();
            if self.b.get(self.i..end)? == word.as_bytes() {
                self.i = end;
                Some(Value::Literal(word))
            } else {
                None
            }
        }

        fn digits(&mut self) -> usize {
            let start = self.i;
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.i += 1;
            }
            self.i - start
        }

        /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
        fn number(&mut self) -> Option<()> {
            if self.peek() == Some(b'-') {
                self.i += 1;
            }
            match self.peek()? {
                b'0' => self.i += 1,
                b'1'..=b'9' => {
                    self.digits();
                }
                _ => return None,
            }
            if self.peek() == Some(b'.') {
                self.i += 1;
                if self.digits() == 0 {
                    return None;
                }
            }
            if matches!(self.peek(), Some(b'e' | b'E')) {
                self.i += 1;
                if matches!(self.peek(), Some(b'+' | b'-')) {
                    self.i += 1;
                }
                if self.digits() == 0 {
                    return None;
                }
            }
            Some(())
        }

        fn skip_nested(&mut self, depth: usize) -> Option<()> {
            if depth > MAX_DEPTH {
                return None;
            }
            let close = if self.next()? == b'{' { b'}' } else { b']' };
            self.ws();
            if self.peek() == Some(close) {
                self.i += 1;
                return Some(());
            }
            loop {
                self.ws();
                if close == b'}' {
                    self.string()?;
                    self.ws();
                    self.expect(b':')?;
                    self.ws();
                }
                self.value(depth + 1)?;
                self.ws();
                match self.next()? {
                    b',' => continue,
                    c if c == close => return Some(()),
                    _ => return None,
                }
            }
        }

        /// A string, borrowed unless it has escapes.
        fn string(&mut self) -> Option<Cow<'a, str>> {
            self.expect(b'"')?;
            let start = self.i;
            let stop = start + memchr::memchr2(b'"', b'\\', &self.b[start..])?;
            if self.b[start..stop].iter().any(|&c| c < 0x20) {
                return None; // JSON has no raw control characters in strings
            }
            self.i = stop;
            if self.b[stop] == b'"' {
                self.i += 1;
                return Some(Cow::Borrowed(&self.text[start..stop]));
            }
            let mut out = String::with_capacity(self.i - start + 16);
            out.push_str(&self.text[start..self.i]);
            loop {
                let run = self.i;
                while let Some(c) = self.peek() {
                    if c == b'"' || c == b'\\' || c < 0x20 {
                        break;
                    }
                    self.i += 1;
                }
                out.push_str(&self.text[run..self.i]);
                match self.next()? {
                    b'"' => return Some(Cow::Owned(out)),
                    b'\\' => {
                        let c = match self.next()? {
                            b'"' => '"',
                            b'\\' => '\\',
                            b'/' => '/',
                            b'b' => '\u{8}',
                            b'f' => '\u{c}',
                            b'n' => '\n',
                            b'r' => '\r',
                            b't' => '\t',
                            b'u' => self.unicode_escape()?,
                            _ => return None,
                        };
                        out.push(c);
                    }
                    _ => return None,
                }
            }
        }

        fn hex4(&mut self) -> Option<u32> {
            let digits = self.text.get(self.i..self.i + 4)?;
            if !digits.bytes().all(|c| c.is_ascii_hexdigit()) {
                return None;
            }
            self.i += 4;
            u32::from_str_radix(digits, 16).ok()
        }

        /// After `\u`: a character, surrogate pairs joined; a lone surrogate is an error.
        fn unicode_escape(&mut self) -> Option<char> {
            let first = self.hex4()?;
            match first {
                0xD800..=0xDBFF => {
                    if self.b.get(self.i..self.i + 2)? != b"\\u" {
                        return None;
                    }
                    self.i += 2;
                    let second = self.hex4()?;
                    if !(0xDC00..=0xDFFF).contains(&second) {
                        return None;
                    }
                    char::from_u32(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))
                }
                0xDC00..=0xDFFF => None,
                n => char::from_u32(n),
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn accepts_what_serde_json_accepts() {
            let cases = [
                r#"{}"#,
                r#" { "a" : 1 , "b":"x" } "#,
                r#"{"a":-0.5e+3,"b":[1,{"c":[]},"d"],"e":null,"f":true,"g":false}"#,
                r#"{"esc":"q\"b\\s\/n\nt\tu\u00e9\ud83d\ude00"}"#,
                r#"{"a":1,"a":2}"#,
                r#"{"a":1}x"#,
                r#"{"a":01}"#,
                r#"{"a":1.}"#,
                r#"{"a":.5}"#,
                r#"{"a":+1}"#,
                r#"{"a":"\x"}"#,
                r#"{"a":"\ud800"}"#,
                r#"{"a":"\udc00x"}"#,
                r#"{"a":"\u12"}"#,
                r#"{"a":[1,]}"#,
                r#"{"a":1,}"#,
                r#"{"a" 1}"#,
                r#"{"a":tru}"#,
                "{\"a\":\"tab\tinside\"}",
                r#"{"a":"unterminated}"#,
                r#"{"a":{"b":1}"#,
                r#"[1,2]"#,
                r#"{1:2}"#,
                r#"{"日本":"語","e":"\u65e5"}"#,
            ];
            for text in cases {
                let ours = object(text);
                let theirs = serde_json::from_str::<serde_json::Value>(text)
                    .ok()
                    .filter(|v| v.is_object());
                assert_eq!(ours.is_some(), theirs.is_some(), "{text}");
                if let (Some(ours), Some(serde_json::Value::Object(theirs))) = (ours, theirs) {
                    for (k, v) in ours {
                        if let (Value::Str(s), Some(serde_json::Value::String(t))) =
                            (&v, theirs.get(k.as_ref()))
                        {
                            assert_eq!(s, t, "{text}");
                        }
                    }
                }
            }
            let deep = "[".repeat(200) + &"]".repeat(200);
            assert!(object(&format!(r#"{{"a":{deep}}}"#)).is_none());
        }

        use proptest::prelude::*;

        fn string_literal() -> impl Strategy<Value = String> {
            let piece = prop::sample::select(vec![
                "a",
                "é",
                "日",
                " ",
                "\\n",
                "\\\"",
                "\\\\",
                "\\/",
                "\\u00e9",
                "\\ud83d\\ude00",
                "\\ud800",
                "\\x",
                "\t",
                "\\u12",
            ]);
            prop::collection::vec(piece, 0..5).prop_map(|p| format!("\"{}\"", p.concat()))
        }

        fn number() -> impl Strategy<Value = String> {
            prop_oneof![
                (any::<i32>(), 0u32..1000, 0u8..3).prop_map(|(i, f, e)| match e {
                    0 => i.to_string(),
                    1 => format!("{i}.{f}"),
                    _ => format!("{i}.{f}e-{}", f % 20),
                }),
                prop::sample::select(vec!["01", "1.", "-", ".5", "+1", "1e", "-0", "0.0E+1"])
                    .prop_map(String::from),
            ]
        }

        fn value() -> impl Strategy<Value = String> {
            let leaf = prop_oneof![
                prop::sample::select(vec!["true", "false", "null", "nul"]).prop_map(String::from),
                number(),
                string_literal(),
            ];
            leaf.prop_recursive(3, 24, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4)
                        .prop_map(|v| format!("[{}]", v.join(","))),
                    prop::collection::vec((string_literal(), inner), 0..4).prop_map(|v| {
                        let members: Vec<String> =
                            v.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                        format!("{{{}}}", members.join(","))
                    }),
                ]
            })
        }

        /// An object line, sometimes spaced out, sometimes damaged by one byte.
        fn line() -> impl Strategy<Value = String> {
            let members = prop::collection::vec((string_literal(), value()), 0..5);
            let damage = prop::option::of((
                any::<prop::sample::Index>(),
                prop::sample::select(vec!["", "\"", ",", "}", "]", ":", "\\", " "]),
            ));
            (members, any::<bool>(), damage).prop_map(|(members, spaced, damage)| {
                let sep = if spaced { " , " } else { "," };
                let members: Vec<String> = members
                    .iter()
                    .map(|(k, v)| {
                        if spaced {
                            format!(" {k} : {v} ")
                        } else {
                            format!("{k}:{v}")
                        }
                    })
                    .collect();
                let mut text = format!("{{{}}}", members.join(sep));
                if let Some((at, with)) = damage {
                    let mut at = at.index(text.len());
                    while !text.is_char_boundary(at) {
                        at -= 1;
                    }
                    // Replace one character (or delete it, with "").
                    let end = text[at..].chars().next().map_or(at, |c| at + c.len_utf8());
                    text.replace_range(at..end, with);
                }
                text
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

            /// Exactly the objects serde_json reads, with the same strings.
            #[test]
            fn agrees_with_serde_json(text in line()) {
                let ours = object(&text);
                let theirs = serde_json::from_str::<serde_json::Value>(&text).ok();
                prop_assert_eq!(ours.is_some(), theirs.as_ref().is_some_and(|v| v.is_object()), "{}", text);
                if let (Some(ours), Some(serde_json::Value::Object(theirs))) = (ours, theirs) {
                    for (k, v) in &ours {
                        let once = ours.iter().filter(|(other, _)| other == k).count() == 1;
                        if let (true, Value::Str(s)) = (once, v) {
                            prop_assert_eq!(Some(s.as_ref()), theirs.get(k.as_ref()).and_then(|t| t.as_str()));
                        }
                    }
                }
            }
        }

        #[test]
        fn borrows_plain_strings() {
            let members = object(r#"{"level":"INFO","n":45.23,"o":{"a": 1}}"#).unwrap();
            assert!(matches!(members[0].0, Cow::Borrowed("level")));
            assert_eq!(members[0].1, Value::Str(Cow::Borrowed("INFO")));
            assert_eq!(members[1].1, Value::Number("45.23"));
            assert_eq!(members[2].1, Value::Nested(r#"{"a": 1}"#));
        }
    }
}

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

// ---------------------------------------------------------------------------------------
// logfmt

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

/// `key=value key="quoted value"`; every token must be a pair, and there must be two.
/// Keys and values are borrowed unless a value has escapes.
fn logfmt_pairs(text: &str) -> Option<Vec<(&str, Cow<'_, str>)>> {
    let text = text.trim();
    let b = text.as_bytes();
    let mut pairs = Vec::with_capacity(8);
    let mut i = 0;
    while i < b.len() {
        let key_start = i;
        // Only these bytes make a key; anything else (whitespace included) ends it, and
        // only `=` may end it.
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b"_.-/@".contains(&b[i])) {
            i += 1;
        }
        if i == key_start || b.get(i) != Some(&b'=') {
            return None;
        }
        let key = &text[key_start..i];
        i += 1;
        let value = if b.get(i) == Some(&b'"') {
            i += 1;
            let value_start = i;
            let mut owned: Option<String> = None;
            // Straight to the closing quote or the first escape (none: not logfmt).
            i += memchr::memchr2(b'"', b'\\', &b[i..])?;
            loop {
                match *b.get(i)? {
                    b'"' => break,
                    b'\\' => {
                        let out = owned.get_or_insert_with(|| text[value_start..i].to_string());
                        let escaped = text.get(i + 1..)?.chars().next()?;
                        out.push(match escaped {
                            'n' => '\n',
                            't' => '\t',
                            other => other,
                        });
                        i += 1 + escaped.len_utf8();
                    }
                    _ => {
                        let c = text[i..].chars().next()?;
                        if let Some(out) = &mut owned {
                            out.push(c);
                        }
                        i += c.len_utf8();
                    }
                }
            }
            let value = match owned {
                Some(out) => Cow::Owned(out),
                None => Cow::Borrowed(&text[value_start..i]),
            };
            i += 1;
            if i < b.len() && space_at(text, i) == 0 {
                return None;
            }
            value
        } else {
            let value_start = i;
            while i < b.len()
                && !b[i].is_ascii_whitespace()
                && (b[i].is_ascii() || space_at(text, i) == 0)
            {
                i += 1;
            }
            Cow::Borrowed(&text[value_start..i])
        };
        pairs.push((key, value));
        loop {
            let n = space_at(text, i);
            if n == 0 {
                break;
            }
            i += n;
        }
    }
    (pairs.len() >= 2).then_some(pairs)
}

fn parse_logfmt(text: &str, now: DateTime<Utc>) -> Option<Parsed> {
    // Most lines that are not logfmt say so in their first word.
    let first = text.trim_start().split(char::is_whitespace).next()?;
    if !first.contains('=') {
        return None;
    }
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
    let mut message_value = None;
    let mut fields = Fields::with_capacity(pairs.len(), text.len());
    for (i, (key, value)) in pairs.into_iter().enumerate() {
        if Some(i) == message_at {
            message_value = Some(value.into_owned());
        } else if !used(i) {
            fields.push(key, &value);
        }
    }
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
/// Every ISO tag ends in `]:`; looked for before the regex runs.
static CLOSE_COLON: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new(b"]:"));
/// glog / klog: `E1212 10:30:45.123456    42 file.go:12] `.
static GLOG: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"^([IWEF])(\d{2})(\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?)\s+\d+\s+([^\s\]]+)\]\s?")
});

fn parse_plain(text: &str, now: DateTime<Utc>) -> Parsed {
    let mut fields = Fields::default();
    let mut level = None;
    let mut at = None;
    let mut rest = text;

    // Each prefix is tried only when the line's first bytes can start it: most lines have
    // none of them, and captures cost more than a look at a byte.
    if memchr::memchr(b'|', &rest.as_bytes()[..rest.len().min(80)]).is_some()
        && let Some(c) = COMPOSE
            .captures(rest)
            .filter(|c| level_word(&c[1]).is_none())
    {
        fields.push("service", &c[1]);
        rest = &rest[c[0].len()..];
    }
    if rest.starts_with('<')
        && let Some(c) = PRIORITY.captures(rest)
    {
        level = c[1].parse().ok().and_then(|n| level_number(n, true));
        rest = &rest[c[0].len()..];
    }
    let first = rest.as_bytes().first().copied().unwrap_or(0);
    let digit_first = first.is_ascii_digit() || first == b'[';
    if matches!(first, b'I' | b'W' | b'E' | b'F')
        && let Some(c) = GLOG.captures(rest)
    {
        level = level_word(&c[1]);
        at = parse_glog_time(&c[2], &c[3], &c[4], now);
        fields.push("file", &c[5]);
        rest = &rest[c[0].len()..];
    } else if let Some((time, len)) = digit_first.then(|| iso_prefix(rest)).flatten() {
        at = parse_time(time, now);
        rest = &rest[len..];
        if CLOSE_COLON.find(rest.as_bytes()).is_some()
            && let Some(tag) = ISO_TAG.captures(rest)
        {
            push_tag(&mut fields, &tag);
            rest = &rest[tag[0].len()..];
        }
    } else if digit_first && let Some(c) = SLASH_TIME.captures(rest) {
        at = parse_time(&c[1], now);
        rest = &rest[c[0].len()..];
    } else if first.is_ascii_uppercase()
        && let Some(c) = SYSLOG_TIME.captures(rest)
    {
        at = parse_syslog_time(&c[1], now);
        rest = &rest[c[0].len()..];
        if let Some(tag) = SYSLOG_TAG.captures(rest) {
            push_tag(&mut fields, &tag);
            rest = &rest[tag[0].len()..];
        }
    }

    let mut message = rest.trim();
    if level.is_none()
        && let Some((found, prefix, after)) = find_level(rest)
    {
        level = Some(found);
        if !prefix.is_empty() {
            fields.push("logger", prefix);
        }
        message = after;
    }
    let message = message.to_string();
    Parsed {
        at,
        level,
        message,
        fields,
    }
}

/// An ISO 8601 / RFC 3339 / Python asctime prefix, optionally in brackets, followed by
/// whitespace or the end: `2025-12-12T10:30:45.123Z `, `[2025-12-12 10:30:45,123] `,
/// `2025-12-12 10:30:45 UTC `. Returns the time's text and the length of the prefix.
/// (By hand: the regex with captures was a tenth of the cost of a plain line.)
fn iso_prefix(text: &str) -> Option<(&str, usize)> {
    let b = text.as_bytes();
    let start = usize::from(b.first() == Some(&b'['));
    let digits = |from: usize, n: usize| {
        b.get(from..from + n)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let s = start;
    if !(digits(s, 4)
        && at(s + 4, b'-')
        && digits(s + 5, 2)
        && at(s + 7, b'-')
        && digits(s + 8, 2)
        && matches!(b.get(s + 10), Some(b'T' | b' '))
        && digits(s + 11, 2)
        && at(s + 13, b':')
        && digits(s + 14, 2)
        && at(s + 16, b':')
        && digits(s + 17, 2))
    {
        return None;
    }
    let mut end = s + 19;
    if matches!(b.get(end), Some(b'.' | b',')) && digits(end + 1, 1) {
        end += 1;
        while digits(end, 1) {
            end += 1;
        }
    }
    // The zone, if what follows it fits; else the time without it (as a regex would
    // backtrack).
    let zone_end = if at(end, b'Z') {
        Some(end + 1)
    } else if matches!(b.get(end), Some(b'+' | b'-')) && digits(end + 1, 2) {
        if at(end + 3, b':') && digits(end + 4, 2) {
            Some(end + 6)
        } else if digits(end + 3, 2) {
            Some(end + 5)
        } else {
            None
        }
    } else if b[end..].starts_with(b" UTC") {
        Some(end + 4)
    } else if b[end..].starts_with(b"UTC") {
        Some(end + 3)
    } else {
        None
    };
    let tail = |time_end: usize| {
        let mut i = time_end;
        if at(i, b']') {
            i += 1;
        }
        let before = i;
        loop {
            let n = space_at(text, i);
            if n == 0 {
                break;
            }
            i += n;
        }
        (i > before || i == b.len()).then_some(i)
    };
    for time_end in zone_end.into_iter().chain([end]) {
        if let Some(len) = tail(time_end) {
            return Some((&text[s..time_end], len));
        }
    }
    None
}

fn push_tag(fields: &mut Fields, tag: &regex::Captures) {
    fields.push("host", &tag[1]);
    fields.push("unit", &tag[2]);
    if let Some(pid) = tag.get(3) {
        fields.push("pid", pid.as_str());
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
    for token in text.split_whitespace() {
        // The token is a piece of `text`: its place is where it points.
        let start = token.as_ptr() as usize - text.as_ptr() as usize;
        let offset = start + token.len();
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
    for key in ["level=", "lvl=", "severity="] {
        if token.len() >= key.len()
            && token.as_bytes()[..key.len()].eq_ignore_ascii_case(key.as_bytes())
        {
            // As written in any case, but a single letter is not a level here.
            let value = token[key.len()..].trim_matches('"');
            return (value.trim().len() > 1)
                .then(|| level_word(value))
                .flatten()
                .map(|level| (level, true));
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

/// Level names in their usual spellings (what `LogLevel::parse` reads, and a few more),
/// matched without allocating.
const LEVEL_WORDS: &[(&str, LogLevel)] = &[
    ("trace", LogLevel::Trace),
    ("debug", LogLevel::Debug),
    ("dbg", LogLevel::Debug),
    ("info", LogLevel::Info),
    ("information", LogLevel::Info),
    ("notice", LogLevel::Info),
    ("warn", LogLevel::Warn),
    ("warning", LogLevel::Warn),
    ("warnings", LogLevel::Warn),
    ("error", LogLevel::Error),
    ("err", LogLevel::Error),
    ("errors", LogLevel::Error),
    ("severe", LogLevel::Error),
    ("critical", LogLevel::Critical),
    ("crit", LogLevel::Critical),
    ("fatal", LogLevel::Critical),
    ("panic", LogLevel::Critical),
    ("emerg", LogLevel::Critical),
    ("emergency", LogLevel::Critical),
    ("alert", LogLevel::Critical),
];

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
        _ if word.len() < 3 || word.len() > 11 => None,
        _ => LEVEL_WORDS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(word))
            .map(|(_, level)| *level),
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
    match parse_iso(text) {
        Some(at) => at,
        None => parse_time_general(text, now),
    }
}

/// Every form `parse_time` reads, through chrono's parsers.
fn parse_time_general(text: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
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

thread_local! {
    /// The local offset of the last hour converted: (hour since the epoch, as a naive
    /// local time; offset in seconds). Log times come in order, so this is nearly always
    /// the hour wanted, and chrono's time zone lookup is skipped.
    static LOCAL_HOUR: Cell<Option<(i64, i64)>> = const { Cell::new(None) };
}

/// A naive local time in UTC (the earlier one when a clock change makes it ambiguous).
fn local(naive: NaiveDateTime) -> Option<DateTime<Utc>> {
    let as_utc = naive.and_utc();
    let hour = as_utc.timestamp().div_euclid(3600);
    if let Some((cached, offset)) = LOCAL_HOUR.get()
        && cached == hour
    {
        return Some(as_utc - chrono::Duration::seconds(offset));
    }
    let at = Local
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))?;
    // Remembered only if the whole hour has one offset (not the hour of a clock change).
    let start = NaiveDateTime::new(naive.date(), NaiveTime::from_hms_opt(naive.hour(), 0, 0)?);
    let end = start + chrono::Duration::seconds(3599);
    let offset_at = |t: NaiveDateTime| {
        Local
            .from_local_datetime(&t)
            .single()
            .map(|l| l.offset().local_minus_utc() as i64)
    };
    match (offset_at(start), offset_at(end)) {
        (Some(a), Some(b)) if a == b => LOCAL_HOUR.set(Some((hour, a))),
        _ => LOCAL_HOUR.set(None),
    }
    Some(at)
}

/// `YYYY-MM-DD[T ]HH:MM:SS[.,fraction][zone]` and `YYYY/MM/DD HH:MM:SS[.,fraction]`, read
/// without chrono's format parser; zone `Z`, `±HH:MM`, `±HHMM` or `UTC` (after an optional
/// space); none is local time. `None`: another shape (the general parser tries);
/// `Some(None)`: this shape, but not a valid time.
fn parse_iso(text: &str) -> Option<Option<DateTime<Utc>>> {
    let b = text.as_bytes();
    let num = |from: usize, n: usize| -> Option<u32> {
        let digits = b.get(from..from + n)?;
        digits.iter().try_fold(0u32, |v, &c| {
            c.is_ascii_digit().then(|| v * 10 + u32::from(c - b'0'))
        })
    };
    let sep = *b.get(4)?;
    if !(sep == b'-' || sep == b'/') || b.get(7) != Some(&sep) {
        return None;
    }
    let t = *b.get(10)?;
    let t_ok = if sep == b'/' {
        t == b' '
    } else {
        matches!(t, b'T' | b't' | b' ')
    };
    if !t_ok || b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if second > 59 {
        return None; // a leap second: the general parser knows them
    }
    let mut i = 19;
    let mut nanos = 0u32;
    if matches!(b.get(i), Some(b'.' | b',')) {
        i += 1;
        let start = i;
        while let Some(&c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            if i - start < 9 {
                nanos = nanos * 10 + u32::from(c - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        nanos *= 10u32.pow(9u32.saturating_sub((i - start) as u32));
    }
    let zone = &text[i..];
    let offset = match zone {
        "" => None,
        "Z" | "z" | "UTC" | " UTC" => Some(0),
        _ => {
            let z = zone.strip_prefix(' ').unwrap_or(zone).as_bytes();
            let sign = match z.first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return None,
            };
            let two = |k: usize| -> Option<i64> {
                let d = z.get(k..k + 2)?;
                d.iter()
                    .all(u8::is_ascii_digit)
                    .then(|| i64::from((d[0] - b'0') * 10 + (d[1] - b'0')))
            };
            let (h, m) = match z.len() {
                6 if z[3] == b':' => (two(1)?, two(4)?),
                5 => (two(1)?, two(3)?),
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            Some(sign * (h * 3600 + m * 60))
        }
    };
    if sep == b'/' && offset.is_some() {
        return None;
    }
    let Some(date) = NaiveDate::from_ymd_opt(year as i32, month, day) else {
        return Some(None);
    };
    let Some(time) = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos) else {
        return Some(None);
    };
    let naive = NaiveDateTime::new(date, time);
    Some(match offset {
        Some(offset) => Some(naive.and_utc() - chrono::Duration::seconds(offset)),
        None => local(naive),
    })
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
        let time = NaiveTime::parse_from_str(time, "%H:%M:%S%.f").ok()?;
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
            line.fields.to_vec(),
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
        assert_eq!(
            line.fields.to_vec()[0],
            ("outcome".into(), "timeout".into())
        );
        assert_eq!(
            line.fields.to_vec()[1],
            ("latency_ms".into(), "45.23".into())
        );
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
            line.fields.to_vec(),
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
            line.fields.to_vec(),
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
            line.fields.to_vec(),
            vec![("logger".to_string(), "tmws.app".to_string())]
        );
        assert_eq!(line.at.with_timezone(&Local).minute(), 30);
    }

    #[test]
    fn journal_and_syslog_prefixes() {
        // A single-digit day is padded with a space; no pid.
        let line = parse("Mar  5 01:02:03 db1 kernel: Out of memory: Killed process 42");
        assert_eq!(line.at.with_timezone(&Local).day(), 5);
        assert_eq!(line.fields.to_vec()[1], ("unit".into(), "kernel".into()));
        assert_eq!(line.message, "Out of memory: Killed process 42");
        assert!(line.at <= Utc::now() + chrono::Duration::days(1));

        let line = parse("Dec 12 10:30:45 web1 tmws[1234]: ERROR: license check failed");
        assert_eq!(line.level, LogLevel::Error);
        assert_eq!(line.message, "license check failed");
        assert_eq!(
            &line.fields.to_vec()[..2],
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
        assert_eq!(line.fields.to_vec()[2], ("pid".into(), "99".into()));

        let line = parse("backend-1  | 2025-12-12T10:30:45Z WARN pool exhausted");
        assert_eq!(
            line.fields.to_vec()[0],
            ("service".into(), "backend-1".into())
        );
        assert_eq!(line.level, LogLevel::Warn);

        let line = parse("E1212 10:30:45.123456   42 server.go:99] listen failed");
        assert_eq!(line.level, LogLevel::Error);
        assert_eq!(line.message, "listen failed");
        assert_eq!(
            line.fields.to_vec()[0],
            ("file".into(), "server.go:99".into())
        );
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
    fn the_fast_time_reader_agrees_with_chrono() {
        let now = Utc::now();
        let mut cases = vec![
            "2025-12-12T10:30:45Z".to_string(),
            "2025-12-12T10:30:45.123Z".into(),
            "2025-12-12t10:30:45.123456789z".into(),
            "2025-12-12T10:30:45.1234567891Z".into(),
            "2025-12-12 10:30:45,123".into(),
            "2025-12-12 10:30:45".into(),
            "2025-12-12T10:30:45+01:00".into(),
            "2025-12-12T10:30:45-0530".into(),
            "2025-12-12 10:30:45 +0000".into(),
            "2025-12-12 10:30:45 UTC".into(),
            "2025-12-12T10:30:45UTC".into(),
            "2025/12/12 10:30:45".into(),
            "2025/12/12 10:30:45.5".into(),
            "2025-02-30T10:30:45Z".into(),
            "2025-12-12T24:00:00Z".into(),
            "2025-12-12T10:30:45+24:00".into(),
            "2025-12-12T10:30:45.Z".into(),
            "2025-12-12X10:30:45Z".into(),
            "2025-12-12T10:30:45 nonsense".into(),
            "2024-03-31 02:30:00".into(),
            "2024-10-27 02:30:00".into(),
        ];
        for month in 1..=12 {
            cases.push(format!("2025-{month:02}-15 12:00:00"));
        }
        for text in &cases {
            assert_eq!(
                parse_time(text, now),
                parse_time_general(text, now),
                "{text}"
            );
        }
    }

    #[test]
    fn the_iso_prefix_reads_what_the_old_regex_read() {
        let regex = Regex::new(
            r"^\[?(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2}| ?UTC)?)\]?(?:\s+|$)",
        )
        .unwrap();
        for text in [
            "2025-12-12T10:30:45.123Z ERROR db down",
            "[2025-12-12 10:30:45,123] INFO x",
            "2025-12-12 10:30:45 UTC x",
            "2025-12-12 10:30:45 UTCx",
            "2025-12-12T10:30:45+0100\tx",
            "2025-12-12T10:30:45+01:00",
            "2025-12-12T10:30:45Zx",
            "2025-12-12T10:30:45.5x",
            "2025-12-12T10:30:45] x",
            "2025-12-12T10:30:45]x",
            "2025-12-12T10:30:45\u{a0}x",
            "2025-12-12T10:30:4",
            "2025-12-12 10:30:45 - tmws.app - WARNING - slow query",
            "[[2025-12-12 10:30:45",
        ] {
            let old = regex
                .captures(text)
                .map(|c| (c.get(1).unwrap().as_str(), c[0].len()));
            assert_eq!(iso_prefix(text), old, "{text:?}");
        }
    }

    #[test]
    fn level_words_read_as_log_level_parse_reads_them() {
        for word in [
            "trace",
            "DEBUG",
            "dbg",
            "Info",
            "information",
            "NOTICE",
            "warn",
            "Warning",
            "ERROR",
            "err",
            "critical",
            "CRIT",
            "fatal",
            "panic",
            "emerg",
            "alert",
            " error ",
            "errorx",
            "x",
            "",
        ] {
            if let Some(level) = LogLevel::parse(word) {
                assert_eq!(level_word(word), Some(level), "{word}");
            } else {
                assert_eq!(level_word(word), None, "{word}");
            }
        }
        assert_eq!(level_word("Warnings"), Some(LogLevel::Warn));
        assert_eq!(
            token_level("LEVEL=Error", false),
            Some((LogLevel::Error, true))
        );
        assert_eq!(token_level("level=e", false), None);
    }

    #[test]
    fn key_roles_match_the_key_lists() {
        for key in LEVEL_KEYS {
            assert_eq!(key_role(key), Role::Level, "{key}");
            assert_eq!(key_role(&key.to_uppercase()), Role::Level, "{key}");
        }
        for key in TIME_KEYS {
            assert_eq!(key_role(key), Role::Time, "{key}");
        }
        for key in MESSAGE_KEYS {
            assert_eq!(key_role(key), Role::Message, "{key}");
        }
        assert_eq!(key_role("event"), Role::Event);
        for key in [
            "",
            "x",
            "lev",
            "levels",
            "timestamps",
            "messages",
            "tool_name",
        ] {
            assert_eq!(key_role(key), Role::Other, "{key}");
        }
    }

    #[test]
    fn json_roles_in_odd_places() {
        // The first level key decides; a second one is a field.
        let line = parse(r#"{"level":"warn","severity":"error","msg":"x"}"#);
        assert_eq!(line.level, LogLevel::Warn);
        assert_eq!(
            line.fields.to_vec(),
            vec![("severity".into(), "error".into())]
        );
        // A level that does not read stays a field.
        let line = parse(r#"{"level":"loud","msg":"x"}"#);
        assert_eq!(line.fields.to_vec(), vec![("level".into(), "loud".into())]);
        // event is the message only without any message key, and only as a string.
        let line = parse(r#"{"event":"started","pid":1}"#);
        assert_eq!(line.message, "started");
        assert_eq!(line.fields.to_vec(), vec![("pid".into(), "1".into())]);
        let line = parse(r#"{"event":"started","message":"real"}"#);
        assert_eq!(line.message, "real");
        assert_eq!(
            line.fields.to_vec(),
            vec![("event".into(), "started".into())]
        );
        let line = parse(r#"{"event":{"a":1},"pid":1}"#);
        assert_eq!(line.message, r#"event={"a":1} pid=1"#);
        // A nested message is no message, and event does not stand in for it.
        let line = parse(r#"{"message":{"a":1},"event":"e"}"#);
        assert_eq!(line.message, r#"message={"a":1} event=e"#);
        // Escapes and numbers as written.
        let line = parse(r#"{"msg":"tab\there \"q\" \u00e9","n":1.50,"b":true,"z":null}"#);
        assert_eq!(line.message, "tab\there \"q\" é");
        assert_eq!(
            line.fields.to_vec(),
            vec![
                ("n".into(), "1.50".into()),
                ("b".into(), "true".into()),
                ("z".into(), "null".into())
            ]
        );
        // logfmt with non-ASCII values.
        let line = parse("level=日本 x=1");
        assert_eq!(line.message, "level=日本 x=1");
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
