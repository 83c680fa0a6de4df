//! The header line: which deployment, where we are in the watch window, the timeline of
//! its checkpoint intervals, the next checkpoint, how bad things are now (the worst alert
//! that counts: firing, not pending, not silenced), how many alerts wait for someone, and
//! whether this watchpost writes the record or views another's.
//! When the line is narrow, the least needed parts go first; the severity goes last.

use super::common::{format_span, width};
use crate::model::figure::Severity;
use crate::model::sanitize::sanitize;
use crate::model::time::format_offset;
use crate::state::{RecordStatus, Window};
use crate::ui::PaneContext;
use crate::ui::theme::Theme;
use chrono::{DateTime, Duration, Utc};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::{Frame, layout::Rect};

/// A part of the header, with how readily it is left out (higher goes first).
struct Part {
    spans: Vec<Span<'static>>,
    drop: u8,
}

impl Part {
    fn width(&self) -> usize {
        self.spans.iter().map(|s| width(&s.content)).sum()
    }
}

pub fn render(frame: &mut Frame, area: Rect, ctx: &PaneContext) {
    if area.is_empty() {
        return;
    }
    let theme = ctx.theme;
    let state = ctx.state;
    let window = &state.window;
    let now = ctx.now;
    let elapsed = window.elapsed(now);

    let mut left = vec![Part {
        spans: vec![Span::styled(sanitize(&window.deployment), theme.header)],
        drop: 3,
    }];
    if !window.version.is_empty() {
        left.push(Part {
            spans: vec![Span::styled(sanitize(&window.version), theme.muted)],
            drop: 6,
        });
    }
    let mut offset = vec![Span::styled(window_offset(window, elapsed), theme.accent)];
    offset.push(Span::styled(
        format!(" / {}", format_length(window.length)),
        theme.muted,
    ));
    left.push(Part {
        spans: offset,
        drop: 1,
    });
    if state.timeline.len() > 1 {
        left.push(Part {
            spans: timeline_spans(window, &state.timeline, now, theme),
            drop: 7,
        });
    }
    let next = if elapsed >= window.length {
        Span::styled("window complete", theme.ok)
    } else {
        match window.next_checkpoint(now) {
            Some(at) => Span::styled(
                format!(
                    "next check {} in {}",
                    window_offset(window, at),
                    format_span(at - elapsed)
                ),
                theme.text,
            ),
            None => Span::styled("no checkpoints left", theme.muted),
        }
    };
    left.push(Part {
        spans: vec![next],
        drop: 4,
    });

    let mut right = Vec::new();
    if ctx.ui.paused {
        right.push(Part {
            spans: vec![Span::styled(" PAUSED ", theme.warn.patch(theme.selection))],
            drop: 0,
        });
    }
    match &state.record {
        RecordStatus::Viewer { holder, .. } => right.push(Part {
            spans: vec![Span::styled(
                match holder {
                    Some(pid) => format!("viewer (record held by pid {pid})"),
                    None => "viewer (record held by another watchpost)".to_string(),
                },
                theme.accent,
            )],
            drop: 1,
        }),
        RecordStatus::Writing { full: true, .. } => right.push(Part {
            spans: vec![Span::styled("record full", theme.crit)],
            drop: 1,
        }),
        RecordStatus::Writing { error: Some(_), .. } => right.push(Part {
            spans: vec![Span::styled("record error", theme.warn)],
            drop: 2,
        }),
        RecordStatus::Failed(_) => right.push(Part {
            spans: vec![Span::styled("no record", theme.warn)],
            drop: 2,
        }),
        RecordStatus::Off | RecordStatus::Writing { .. } => {}
    }
    let failing = state.sources.values().filter(|s| s.is_error()).count();
    if failing > 0 {
        let noun = if failing == 1 { "source" } else { "sources" };
        right.push(Part {
            spans: vec![Span::styled(
                format!("{failing} {noun} failing"),
                theme.crit,
            )],
            drop: 1,
        });
    }
    let unacked = state.alerts.unacknowledged();
    let acked = state.alerts.active.len().saturating_sub(unacked);
    right.push(Part {
        spans: vec![Span::styled(
            format!("{unacked} alert{}", if unacked == 1 { "" } else { "s" }),
            if unacked > 0 { theme.warn } else { theme.muted },
        )],
        drop: 2,
    });
    let pending = state.alerts.pending();
    let silenced = state.alerts.silenced();
    let acked = acked.saturating_sub(pending);
    if acked > 0 {
        right.push(Part {
            spans: vec![Span::styled(format!("{acked} acked"), theme.muted)],
            drop: 5,
        });
    }
    if pending > 0 {
        right.push(Part {
            spans: vec![Span::styled(format!("{pending} pending"), theme.muted)],
            drop: 4,
        });
    }
    if silenced > 0 {
        right.push(Part {
            spans: vec![Span::styled(format!("{silenced} silenced"), theme.muted)],
            drop: 4,
        });
    }
    let worst = if state.figures.is_empty() && state.alerts.active.is_empty() {
        Span::styled("? no figures yet", theme.unknown)
    } else {
        let worst = state.worst();
        Span::styled(
            format!("{} {}", worst.symbol(), worst.label()),
            theme.severity(worst),
        )
    };
    right.push(Part {
        spans: vec![worst],
        drop: 0,
    });

    // Leave parts out, least needed first, until the line fits.
    let total = area.width as usize;
    let fits = |l: &[Part], r: &[Part]| {
        let parts = l.len() + r.len();
        let widths: usize = l.iter().chain(r).map(Part::width).sum();
        // One cell of margin on the left.
        widths + 3 * parts.saturating_sub(1) < total
    };
    while !fits(&left, &right) {
        let candidates = left
            .iter()
            .enumerate()
            .map(|(i, p)| (p.drop, false, i))
            .chain(right.iter().enumerate().map(|(i, p)| (p.drop, true, i)));
        match candidates.max_by_key(|(drop, _, _)| *drop) {
            Some((0, _, _)) => break,
            Some((_, true, i)) => {
                right.remove(i);
            }
            Some((_, false, i)) => {
                left.remove(i);
            }
            None => break,
        }
    }

    let sep = || Span::styled(" · ", theme.muted);
    let mut left_spans = vec![Span::raw(" ")];
    for (i, part) in left.into_iter().enumerate() {
        if i > 0 {
            left_spans.push(sep());
        }
        left_spans.extend(part.spans);
    }
    let mut right_spans = Vec::new();
    for (i, part) in right.into_iter().enumerate() {
        if i > 0 {
            right_spans.push(sep());
        }
        right_spans.extend(part.spans);
    }
    right_spans.push(Span::raw(" "));
    let left_line = Line::from(left_spans);
    let right_line = Line::from(right_spans);
    let right_width = (right_line.width() as u16).min(area.width);
    let left_area = Rect {
        width: area.width.saturating_sub(right_width),
        ..area
    };
    let right_area = Rect {
        x: area
            .x
            .saturating_add(area.width.saturating_sub(right_width)),
        width: right_width,
        ..area
    };
    frame.render_widget(
        Paragraph::new(super::common::truncate_line(
            left_line,
            left_area.width as usize,
        ))
        .style(theme.text),
        left_area,
    );
    frame.render_widget(Paragraph::new(right_line).right_aligned(), right_area);
}

/// `T+hh:mm`, with seconds when the whole window is shorter than an hour (rehearsals).
pub fn window_offset(window: &Window, offset: Duration) -> String {
    if window.length < Duration::hours(1) {
        let secs = offset.num_seconds().max(0);
        format!(
            "T+{:02}:{:02}:{:02}",
            secs / 3600,
            (secs % 3600) / 60,
            secs % 60
        )
    } else {
        format_offset(offset)
    }
}

/// One cell per checkpoint interval, by the worst state in it: the severity symbols (so it
/// reads without colour), `·` for what is to come, `-` where nothing was watched; the
/// current interval is reversed.
pub fn timeline_spans(
    window: &Window,
    cells: &[Option<Severity>],
    now: DateTime<Utc>,
    theme: &Theme,
) -> Vec<Span<'static>> {
    let current = window.interval_at(now);
    let intervals = window.intervals();
    let mut spans = Vec::with_capacity(cells.len() + 2);
    spans.push(Span::styled("▕", theme.muted));
    for (i, cell) in cells.iter().enumerate() {
        let future = intervals
            .get(i)
            .is_some_and(|(from, _)| window.start + *from > now);
        let (text, style) = match cell {
            Some(severity) => (severity.symbol(), theme.severity(*severity)),
            None if future => ("·", theme.muted),
            None => ("-", theme.muted),
        };
        let style = if Some(i) == current {
            style.patch(theme.selection)
        } else {
            style
        };
        spans.push(Span::styled(text, style));
    }
    spans.push(Span::styled("▏", theme.muted));
    spans
}

/// "24h", "90m", "1h30m".
pub fn format_length(length: Duration) -> String {
    let minutes = length.num_minutes().max(0);
    if minutes % 60 == 0 {
        format!("{}h", minutes / 60)
    } else if minutes < 60 {
        format!("{minutes}m")
    } else {
        format!("{}h{:02}m", minutes / 60, minutes % 60)
    }
}
