//! The shared vocabulary of every layer: figures and their readings, severities and
//! priorities, the rules the config writes, the updates collectors send, the sanitizer for
//! foreign text. It imports nothing else of watchpost, so everything can depend on it.

pub mod backoff;
pub mod catalog;
pub mod figure;
pub mod pane;
pub mod rule;
pub mod sanitize;
pub mod time;
pub mod update;

/// How many points of history each figure keeps for its sparkline.
pub const HISTORY_POINTS: usize = 240;
