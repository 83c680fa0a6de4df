//! Durations as the runbooks and the panes write them: `T+02:30`, `4m`.

use chrono::Duration;

/// `T+hh:mm` as the runbooks write it.
pub(crate) fn format_offset(offset: Duration) -> String {
    let minutes = offset.num_minutes().max(0);
    format!("T+{:02}:{:02}", minutes / 60, minutes % 60)
}

/// "3s", "4m", "2h".
pub(crate) fn format_age(age: Duration) -> String {
    let secs = age.num_seconds().max(0);
    if secs < 60 {
        format!("{secs}s")
    } else if secs < 3600 {
        format!("{}m", secs / 60)
    } else {
        format!("{}h", secs / 3600)
    }
}
