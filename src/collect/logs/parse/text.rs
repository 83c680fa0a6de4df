//! Plain text lines: the level and timestamp read from the usual prefixes (ISO/Python/nginx
//! timestamps, syslog and journalctl `host unit[pid]:`, glog `E1212 …]`, `<3>` priorities,
//! compose `svc  | `) and the first words.

use super::level::{level_number, level_word};
use super::time::{parse_glog_time, parse_syslog_time, parse_time};
use super::{Parsed, space_at};
use crate::model::update::{Fields, LogLevel};
use chrono::{DateTime, Utc};
use regex::Regex;
use std::sync::LazyLock;

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

pub(super) fn parse(text: &str, now: DateTime<Utc>) -> Parsed {
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
    if level.is_none() {
        level = inline_level(rest);
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

/// A `level=error` (`lvl=`, `severity=`) pair anywhere in the line, beyond the first
/// words `find_level` looks at: `component=db request=42 level=error msg=...`.
fn inline_level(text: &str) -> Option<LogLevel> {
    memchr::memchr(b'=', text.as_bytes())?;
    text.split_whitespace()
        .filter(|t| t.contains('='))
        .find_map(|t| match token_level(t, false) {
            Some((level, true)) => Some(level),
            _ => None,
        })
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
    // Python's default `ERROR:root:message`: the word before the first colon.
    let word = match word.split_once(':') {
        Some((head, _)) if !head.is_empty() && head.bytes().all(|c| c.is_ascii_uppercase()) => head,
        _ => word,
    };
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

#[cfg(test)]
mod tests {
    use super::super::level::level_word;
    use super::*;
    use crate::collect::logs::parse::testing::parse;
    use chrono::{DateTime, Datelike, Local, Timelike, Utc};

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
}
