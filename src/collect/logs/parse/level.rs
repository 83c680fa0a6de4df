//! Level names and numbers, as the formats write them.

use crate::model::update::LogLevel;

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
pub(super) fn level_word(word: &str) -> Option<LogLevel> {
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
pub(super) fn level_number(n: f64, syslog: bool) -> Option<LogLevel> {
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
