//! JSON object lines: the first level, time and message keys make the line, the other
//! members its fields; read by a borrowing reader that accepts exactly what JSON allows.

use super::level::{level_number, level_word};
use super::time::{from_epoch, from_epoch_int, parse_time};
use super::{Parsed, render_fields};
use crate::model::update::Fields;
use chrono::{DateTime, Utc};

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
pub(super) fn parse(text: &str, now: DateTime<Utc>) -> Option<Parsed> {
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
    reader::members(text, |key, value| {
        match key_role(&key) {
            Role::Level if !level_seen => {
                level_seen = true;
                let syslog = key.eq_ignore_ascii_case("priority");
                level = match &value {
                    // A coloured level (`"\u001b[31mERROR\u001b[0m"`) reads as its word.
                    reader::Value::Str(s) => level_word(&super::strip_ansi(s))
                        .or_else(|| s.parse().ok().and_then(|n| level_number(n, syslog))),
                    reader::Value::Number(n) => {
                        n.parse().ok().and_then(|n| level_number(n, syslog))
                    }
                    _ => None,
                };
                if level.is_some() {
                    return;
                }
            }
            Role::Time if !time_seen => {
                time_seen = true;
                at = match &value {
                    reader::Value::Str(s) => parse_time(s, now),
                    reader::Value::Number(n) => n.parse::<i64>().map_or_else(
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
                if !matches!(value, reader::Value::Nested(_)) {
                    message = Some(value.into_text());
                    return;
                }
            }
            Role::Event if !event_seen => {
                event_seen = true;
                if matches!(value, reader::Value::Str(_)) {
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
mod reader {
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
        pub(crate) fn into_text(self) -> String {
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

#[cfg(test)]
mod tests {
    use super::super::{LEVEL_KEYS, MESSAGE_KEYS, TIME_KEYS};
    use super::*;
    use crate::collect::logs::parse::testing::parse;
    use crate::model::update::LogLevel;
    use chrono::{Local, Timelike};

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
}
