//! Top error patterns: error lines grouped by their message with the parts that vary from
//! one occurrence to the next masked, so "timeout after 31 ms talking to 10.0.0.7" and
//! "timeout after 5002 ms talking to 10.0.0.9" count as one pattern,
//! "timeout after <num> ms talking to <ip>".
//!
//! Masks: `<uuid>`, `<ts>` (dates, times, ISO timestamps), `<ip>` (IPv4, IPv6), `<email>`,
//! `<hex>` (`0x…`, and hex words of 8+ characters with a digit: hashes, ids), `<id>`
//! (names joined by `-` or `_` that hold a digit, such as `eris-builder-071`, and other
//! letter-and-digit words of 16+ characters), `<num>` (digit runs, decimals), and
//! `"<str>"` / `'<str>'` (quoted strings). Words without digits stay as they are.
//!
//! The masking is one hand-written pass over the bytes of the first [`MASKED_BYTES`] of the
//! message, writing into a reused buffer: no regex, no allocation unless the pattern is new.
//! The table keeps at most [`MAX_PATTERNS`]; when it is full, the least recently seen
//! eighth is evicted at once (so eviction costs little per line) and counted.

use crate::model::update::LogLine;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// Patterns kept at most.
pub(crate) const MAX_PATTERNS: usize = 1000;
/// Only this much of a message is masked and kept as the pattern.
pub(crate) const MASKED_BYTES: usize = 1024;
/// Sources listed per pattern at most.
const MAX_SOURCES: usize = 8;
/// A quoted string longer than this is not masked (it is probably not a value).
const MAX_QUOTED: usize = 256;

/// One group of error lines.
#[derive(Clone, Debug, PartialEq)]
pub struct Pattern {
    /// The message with its variable parts masked.
    pub template: String,
    pub count: u64,
    /// By the lines' own timestamps.
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// The first line of the group, whole.
    pub example: LogLine,
    /// The sources the group was seen in (at most 8 listed).
    pub sources: Vec<String>,
    /// Arrival order of the last line, for eviction.
    touched: u64,
}

#[derive(Clone, Debug, Default)]
pub struct Patterns {
    groups: HashMap<String, Pattern>,
    /// Reused for masking, so a known pattern costs no allocation.
    scratch: String,
    clock: u64,
    /// Patterns evicted to stay within the bound, and the lines they had counted.
    pub evicted_patterns: u64,
    pub evicted_lines: u64,
}

impl Patterns {
    /// Counts one line (the caller decides which lines are errors).
    pub(crate) fn observe(&mut self, line: &LogLine) {
        self.clock += 1;
        let mut scratch = std::mem::take(&mut self.scratch);
        mask_into(&line.message, &mut scratch);
        match self.groups.get_mut(scratch.as_str()) {
            Some(group) => {
                group.count += 1;
                group.first_seen = group.first_seen.min(line.at);
                group.last_seen = group.last_seen.max(line.at);
                group.touched = self.clock;
                if group.sources.len() < MAX_SOURCES
                    && !group.sources.iter().any(|s| **s == *line.source)
                {
                    group.sources.push(line.source.to_string());
                }
            }
            None => {
                if self.groups.len() >= MAX_PATTERNS {
                    self.evict();
                }
                let group = Pattern {
                    template: scratch.clone(),
                    count: 1,
                    first_seen: line.at,
                    last_seen: line.at,
                    example: line.clone(),
                    sources: vec![line.source.to_string()],
                    touched: self.clock,
                };
                self.groups.insert(scratch.clone(), group);
            }
        }
        self.scratch = scratch;
    }

    /// Drops the least recently seen eighth of the table.
    fn evict(&mut self) {
        let mut ages: Vec<u64> = self.groups.values().map(|g| g.touched).collect();
        let drop = (ages.len() / 8).max(1);
        let (_, cutoff, _) = ages.select_nth_unstable(drop - 1);
        let cutoff = *cutoff;
        self.groups.retain(|_, g| {
            let keep = g.touched > cutoff;
            if !keep {
                self.evicted_patterns += 1;
                self.evicted_lines += g.count;
            }
            keep
        });
    }

    /// Every pattern, the most frequent first (ties: the most recent first).
    pub fn sorted(&self) -> Vec<&Pattern> {
        let mut all: Vec<&Pattern> = self.groups.values().collect();
        all.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then(b.last_seen.cmp(&a.last_seen))
                .then(a.template.cmp(&b.template))
        });
        all
    }

    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    pub fn get(&self, template: &str) -> Option<&Pattern> {
        self.groups.get(template)
    }
}

/// The pattern of a message (see the module docs).
pub fn mask(message: &str) -> String {
    let mut out = String::new();
    mask_into(message, &mut out);
    out
}

/// Like [`mask`], into a buffer that is cleared first.
pub(crate) fn mask_into(message: &str, out: &mut String) {
    out.clear();
    let mut end = message.len().min(MASKED_BYTES);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let text = &message[..end];
    let b = text.as_bytes();
    let has_at = memchr_at(b);
    // Bytes from `pending` to `i` are copied as they are; every cut is at an ASCII byte,
    // so the copied slices are whole UTF-8.
    let mut pending = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let replaced = if c.is_ascii_alphanumeric() {
            let (token_end, replacement) = token(b, i, has_at);
            match replacement {
                Some(r) => Some((token_end, r)),
                None => {
                    i = token_end;
                    continue;
                }
            }
        } else if c == b'"' || (c == b'\'' && (i == 0 || !b[i - 1].is_ascii_alphanumeric())) {
            quoted(b, i).map(|close| {
                (
                    close + 1,
                    if c == b'"' {
                        Replacement::Str("\"<str>\"")
                    } else {
                        Replacement::Str("'<str>'")
                    },
                )
            })
        } else if c == b':' && b.get(i + 1) == Some(&b':') && (i == 0 || !is_ipv6_char(b[i - 1])) {
            ipv6(b, i).map(|e| (e, Replacement::Str("<ip>")))
        } else {
            None
        };
        match replaced {
            Some((token_end, replacement)) => {
                out.push_str(&text[pending..i]);
                match replacement {
                    Replacement::Str(s) => out.push_str(s),
                    Replacement::DigitRuns => push_digit_runs(&text[i..token_end], out),
                }
                i = token_end;
                pending = i;
            }
            None => i += 1,
        }
    }
    out.push_str(&text[pending..]);
}

enum Replacement {
    Str(&'static str),
    /// A short word mixing letters and digits: its digit runs become `<num>`.
    DigitRuns,
}

fn memchr_at(b: &[u8]) -> bool {
    b.contains(&b'@')
}

/// Classifies the token that starts at `i` (an ASCII letter or digit not preceded by one).
/// Returns where it ends and what replaces it (`None`: kept as it is).
fn token(b: &[u8], i: usize, has_at: bool) -> (usize, Option<Replacement>) {
    let c = b[i];
    if c.is_ascii_hexdigit()
        && let Some(e) = uuid(b, i)
    {
        return (e, Some(Replacement::Str("<uuid>")));
    }
    if c.is_ascii_digit() {
        if let Some(e) = timestamp(b, i) {
            return (e, Some(Replacement::Str("<ts>")));
        }
        if let Some(e) = ipv4(b, i) {
            return (e, Some(Replacement::Str("<ip>")));
        }
    }
    if c.is_ascii_hexdigit()
        && let Some(e) = ipv6(b, i)
    {
        return (e, Some(Replacement::Str("<ip>")));
    }
    if has_at && let Some(e) = email(b, i) {
        return (e, Some(Replacement::Str("<email>")));
    }
    if let Some(e) = compound_id(b, i) {
        return (e, Some(Replacement::Str("<id>")));
    }
    let end = i + b[i..]
        .iter()
        .position(|c| !c.is_ascii_alphanumeric())
        .unwrap_or(b.len() - i);
    let word = &b[i..end];
    let digits = word.iter().filter(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return (end, None);
    }
    if digits == word.len() {
        // A decimal: 45.23 is one number (but 1.2.3 is a version, masked part by part).
        let mut e = end;
        if (i == 0 || b[i - 1] != b'.')
            && b.get(e) == Some(&b'.')
            && b.get(e + 1).is_some_and(u8::is_ascii_digit)
            && !(e + 1..b.len())
                .find(|&k| !b[k].is_ascii_digit())
                .is_some_and(|k| b[k] == b'.' && b.get(k + 1).is_some_and(u8::is_ascii_digit))
        {
            e += 1;
            while e < b.len() && b[e].is_ascii_digit() {
                e += 1;
            }
        }
        return (e, Some(Replacement::Str("<num>")));
    }
    if word.len() > 2 && word[0] == b'0' && (word[1] == b'x' || word[1] == b'X') {
        if word[2..].iter().all(u8::is_ascii_hexdigit) {
            return (end, Some(Replacement::Str("<hex>")));
        }
    } else if word.len() >= 8 && word.iter().all(u8::is_ascii_hexdigit) {
        return (end, Some(Replacement::Str("<hex>")));
    }
    if word.len() >= 16 {
        return (end, Some(Replacement::Str("<id>")));
    }
    (end, Some(Replacement::DigitRuns))
}

/// A name made of words joined by `-` or `_`, starting with a letter and holding a digit
/// (`eris-builder-071`, `agent_17`, `pod-7f9c-x2`): one id as a whole, so every agent,
/// worker or pod counts towards one pattern instead of one pattern per name.
fn compound_id(b: &[u8], i: usize) -> Option<usize> {
    if !b[i].is_ascii_alphabetic() {
        return None;
    }
    let (mut e, mut joined, mut digit) = (i, false, false);
    while e < b.len() {
        let c = b[e];
        if c.is_ascii_alphanumeric() {
            digit |= c.is_ascii_digit();
        } else if (c == b'-' || c == b'_') && b.get(e + 1).is_some_and(u8::is_ascii_alphanumeric) {
            joined = true;
        } else {
            break;
        }
        e += 1;
    }
    (joined && digit).then_some(e)
}

fn push_digit_runs(word: &str, out: &mut String) {
    let mut in_digits = false;
    for c in word.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push_str("<num>");
                in_digits = true;
            }
        } else {
            out.push(c);
            in_digits = false;
        }
    }
}

/// Whether the token ending at `e` stands alone (not followed by a letter or digit).
fn ends_token(b: &[u8], e: usize) -> bool {
    b.get(e).is_none_or(|c| !c.is_ascii_alphanumeric())
}

fn digits_at(b: &[u8], i: usize, n: usize) -> bool {
    b.len() >= i + n && b[i..i + n].iter().all(u8::is_ascii_digit)
}

/// 8-4-4-4-12 hex digits.
fn uuid(b: &[u8], i: usize) -> Option<usize> {
    let s = b.get(i..i + 36)?;
    for (k, &c) in s.iter().enumerate() {
        let ok = match k {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_hexdigit(),
        };
        if !ok {
            return None;
        }
    }
    ends_token(b, i + 36).then_some(i + 36)
}

/// `2025-12-12`, `2025/12/12`, either followed by `T`/space and a time; or a time alone
/// (`10:30:45`, `10:30:45.123`); with an optional zone (`Z`, `+01:00`, `+0100`).
fn timestamp(b: &[u8], i: usize) -> Option<usize> {
    let mut e;
    if digits_at(b, i, 4)
        && matches!(b.get(i + 4), Some(b'-' | b'/'))
        && digits_at(b, i + 5, 2)
        && b.get(i + 7) == b.get(i + 4)
        && digits_at(b, i + 8, 2)
    {
        e = i + 10;
        if matches!(b.get(e), Some(b'T' | b' '))
            && let Some(t) = time(b, e + 1)
        {
            e = t;
        } else {
            return ends_token(b, e).then_some(e);
        }
    } else {
        e = time(b, i)?;
    }
    // Zone.
    match b.get(e) {
        Some(b'Z') => e += 1,
        Some(b'+' | b'-') if digits_at(b, e + 1, 2) => {
            if b.get(e + 3) == Some(&b':') && digits_at(b, e + 4, 2) {
                e += 6;
            } else if digits_at(b, e + 3, 2) {
                e += 5;
            }
        }
        _ => {}
    }
    ends_token(b, e).then_some(e)
}

/// `hh:mm:ss` with an optional fraction; returns its end.
fn time(b: &[u8], i: usize) -> Option<usize> {
    if !(digits_at(b, i, 2)
        && b.get(i + 2) == Some(&b':')
        && digits_at(b, i + 3, 2)
        && b.get(i + 5) == Some(&b':')
        && digits_at(b, i + 6, 2))
    {
        return None;
    }
    let mut e = i + 8;
    if matches!(b.get(e), Some(b'.' | b',')) && b.get(e + 1).is_some_and(u8::is_ascii_digit) {
        e += 1;
        while e < b.len() && b[e].is_ascii_digit() {
            e += 1;
        }
    }
    Some(e)
}

/// Four groups of 1–3 digits separated by dots.
fn ipv4(b: &[u8], i: usize) -> Option<usize> {
    let mut e = i;
    for part in 0..4 {
        let start = e;
        while e < b.len() && b[e].is_ascii_digit() && e - start < 4 {
            e += 1;
        }
        if e == start || e - start > 3 {
            return None;
        }
        if part < 3 {
            if b.get(e) != Some(&b'.') {
                return None;
            }
            e += 1;
        }
    }
    // Not the start of a longer dotted number.
    if b.get(e) == Some(&b'.') && b.get(e + 1).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    ends_token(b, e).then_some(e)
}

fn is_ipv6_char(c: u8) -> bool {
    c.is_ascii_hexdigit() || c == b':'
}

/// Hex groups of at most 4 digits separated by colons: at least two colons, and either a
/// `::` or all eight groups (so `10:30:45` or `a:b` are not addresses).
fn ipv6(b: &[u8], i: usize) -> Option<usize> {
    let mut e = i;
    let mut colons = 0;
    let mut group = 0;
    let mut double = false;
    while e < b.len() && is_ipv6_char(b[e]) {
        if b[e] == b':' {
            if b.get(e + 1) == Some(&b':') {
                if double {
                    return None;
                }
                double = true;
            }
            colons += 1;
            group = 0;
        } else {
            group += 1;
            if group > 4 {
                return None;
            }
        }
        e += 1;
    }
    if !(2..=7).contains(&colons) || !(double || colons == 7) {
        return None;
    }
    // A trailing single colon belongs to the text ("addr fe80::1: refused").
    if b[e - 1] == b':' && b[e - 2] != b':' {
        e -= 1;
    }
    ends_token(b, e).then_some(e)
}

/// `local@domain.tld`.
fn email(b: &[u8], i: usize) -> Option<usize> {
    let local_ok =
        |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-');
    let mut e = i;
    while e < b.len() && e - i <= 64 && local_ok(b[e]) {
        e += 1;
    }
    if b.get(e) != Some(&b'@') {
        return None;
    }
    e += 1;
    let domain = e;
    let mut dots = 0;
    while e < b.len() && (b[e].is_ascii_alphanumeric() || b[e] == b'-' || b[e] == b'.') {
        if b[e] == b'.' {
            dots += 1;
        }
        e += 1;
    }
    // A trailing dot ends the sentence, not the domain.
    if e > domain && b[e - 1] == b'.' {
        e -= 1;
        dots -= 1;
    }
    (dots > 0 && e > domain).then_some(e)
}

/// The closing quote of a quoted string starting at `i`, if it closes soon on this line.
fn quoted(b: &[u8], i: usize) -> Option<usize> {
    let q = b[i];
    let limit = (i + 1 + MAX_QUOTED).min(b.len());
    let mut k = i + 1;
    while k < limit {
        match b[k] {
            b'\\' => k += 2,
            c if c == q => {
                // An apostrophe inside a word ("don't") does not close a single quote.
                if q == b'\'' && b.get(k + 1).is_some_and(u8::is_ascii_alphanumeric) {
                    k += 1;
                    continue;
                }
                return Some(k);
            }
            _ => k += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::update::LogLevel;

    #[test]
    fn masks_what_varies() {
        let cases = [
            ("timeout after 31 ms", "timeout after <num> ms"),
            ("latency 45.23ms", "latency <num>ms"),
            ("version 2.4.18", "version <num>.<num>.<num>"),
            (
                "skill 550e8400-e29b-41d4-a716-446655440000 failed",
                "skill <uuid> failed",
            ),
            (
                "at 2025-12-12T10:30:45.123Z and 2025-12-12 10:30:45+01:00 and 10:30:45,5",
                "at <ts> and <ts> and <ts>",
            ),
            ("on 2025-12-12 only", "on <ts> only"),
            (
                "connect 10.0.0.7:5432 refused",
                "connect <ip>:<num> refused",
            ),
            ("from fe80::1ff:fe23:4567:890a", "from <ip>"),
            (
                "from ::1 and 2001:db8::ff00:42:8329.",
                "from <ip> and <ip>.",
            ),
            (
                "peer 2001:0db8:85a3:0000:0000:8a2e:0370:7334 reset",
                "peer <ip> reset",
            ),
            ("mail to bob.smith+x@example.co.uk.", "mail to <email>."),
            (
                "commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
                "commit <hex>",
            ),
            ("ptr 0x7ffd5e8c and 0xDEAD", "ptr <hex> and <hex>"),
            ("token aZ3kQ9xPq7Lm2Nb8Vc", "token <id>"),
            ("worker-12 on node7", "<id> on node<num>"),
            (
                "RBAC check failed for agent eris-builder-071: role lookup failed",
                "RBAC check failed for agent <id>: role lookup failed",
            ),
            ("agent_17 and get-library-docs", "<id> and get-library-docs"),
            (
                "user 'bob' said \"hi there\"",
                "user '<str>' said \"<str>\"",
            ),
            ("can't open 'x'", "can't open '<str>'"),
            ("deadbeef facade", "deadbeef facade"),
            ("schön 42 日本", "schön <num> 日本"),
            ("ratio 1.5.", "ratio <num>."),
        ];
        for (text, want) in cases {
            assert_eq!(mask(text), want, "{text}");
        }
    }

    #[test]
    fn masking_is_bounded_and_keeps_utf8_whole() {
        let long = "é".repeat(2000);
        let masked = mask(&long);
        assert!(masked.len() <= MASKED_BYTES);
        assert!(masked.chars().all(|c| c == 'é'));
    }

    fn line(message: &str, at: DateTime<Utc>) -> LogLine {
        LogLine {
            source: "app".into(),
            at,
            level: LogLevel::Error,
            message: message.into(),
            fields: Default::default(),
            is_error: true,
            tallied: false,
        }
    }

    #[test]
    fn counts_first_and_last_seen_and_keeps_the_first_example() {
        let t0 = Utc::now();
        let mut p = Patterns::default();
        p.observe(&line("db timeout after 30 ms", t0));
        p.observe(&line(
            "db timeout after 5000 ms",
            t0 + chrono::Duration::seconds(5),
        ));
        p.observe(&line(
            "db timeout after 7 ms",
            t0 - chrono::Duration::seconds(5),
        ));
        p.observe(&line("disk full", t0));
        let sorted = p.sorted();
        assert_eq!(sorted.len(), 2);
        assert_eq!(sorted[0].template, "db timeout after <num> ms");
        assert_eq!(sorted[0].count, 3);
        assert_eq!(sorted[0].first_seen, t0 - chrono::Duration::seconds(5));
        assert_eq!(sorted[0].last_seen, t0 + chrono::Duration::seconds(5));
        assert_eq!(sorted[0].example.message, "db timeout after 30 ms");
        assert_eq!(sorted[1].count, 1);
    }

    #[test]
    fn bounded_evicting_the_least_recent() {
        let now = Utc::now();
        let mut p = Patterns::default();
        p.observe(&line("kept alive", now));
        for n in 0..(MAX_PATTERNS * 3) {
            // Letters only, so every one is a pattern of its own.
            let word: String = format!("{n:x}")
                .chars()
                .map(|c| (b'g' + c.to_digit(16).unwrap() as u8) as char)
                .collect();
            p.observe(&line(&format!("unique {word}"), now));
            p.observe(&line("kept alive", now));
        }
        assert!(p.len() <= MAX_PATTERNS);
        assert!(p.get("kept alive").is_some());
        assert_eq!(
            p.get("kept alive").unwrap().count,
            MAX_PATTERNS as u64 * 3 + 1
        );
        assert_eq!(
            p.evicted_patterns as usize + p.len(),
            MAX_PATTERNS * 3 + 1,
            "every pattern is either kept or counted as evicted"
        );
        assert_eq!(p.evicted_lines, p.evicted_patterns);
    }
}
