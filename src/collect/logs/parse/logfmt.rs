//! logfmt lines: `key=value key="quoted value"`.

use super::level::level_word;
use super::time::parse_time;
use super::{LEVEL_KEYS, MESSAGE_KEYS, Parsed, TIME_KEYS, render_fields, space_at};
use crate::model::update::Fields;
use chrono::{DateTime, Utc};
use std::borrow::Cow;

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

pub(super) fn parse(text: &str, now: DateTime<Utc>) -> Option<Parsed> {
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

#[cfg(test)]
mod tests {
    use crate::collect::logs::parse::testing::parse;
    use crate::model::update::LogLevel;
    use chrono::DateTime;

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
}
