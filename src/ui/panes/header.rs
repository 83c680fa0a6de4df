//! The header line: which deployment, where we are in the watch window, the timeline of
//! its checkpoint intervals, the next checkpoint, how bad things are now (the worst alert
//! that counts: firing, not pending, not silenced), how many alerts wait for someone, and
//! whether this watchpost writes the record or views another's.
//! When the line is narrow, the least needed parts go first; the severity goes last.

use super::common::{format_span, width};
use crate::model::figure::Severity;
use crate::model::sanitize::sanitize;
use crate::model::time::format_offset;
use crate::state::{AppState, RecordStatus, Window};
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
    /// A part of one span.
    fn one(span: Span<'static>, drop: u8) -> Part {
        Part {
            spans: vec![span],
            drop,
        }
    }

    fn width(&self) -> usize {
        self.spans.iter().map(|s| width(&s.content)).sum()
    }
}

pub(crate) fn render(frame: &mut Frame, area: Rect, ctx: &PaneContext) {
    if area.is_empty() {
        return;
    }
    let mut left = window_parts(ctx);
    let mut right = status_parts(ctx);
    leave_out_until_fit(&mut left, &mut right, area.width as usize);
    draw(frame, area, ctx.theme, left, right);
}

/// The left side: the deployment, its version, where we are in the window, the timeline
/// of its intervals, the next checkpoint.
fn window_parts(ctx: &PaneContext) -> Vec<Part> {
    let theme = ctx.theme;
    let state = ctx.state;
    let window = &state.window;
    let now = ctx.now;
    let elapsed = window.elapsed(now);

    let mut left = vec![Part::one(
        Span::styled(sanitize(&window.deployment), theme.header),
        3,
    )];
    if !window.version.is_empty() {
        left.push(Part::one(
            Span::styled(sanitize(&window.version), theme.muted),
            6,
        ));
    }
    left.push(Part {
        spans: vec![
            Span::styled(window_offset(window, elapsed), theme.accent),
            Span::styled(format!(" / {}", format_length(window.length)), theme.muted),
        ],
        drop: 1,
    });
    if state.timeline.len() > 1 {
        left.push(Part {
            spans: timeline_spans(window, &state.timeline, now, theme),
            drop: 7,
        });
    }
    left.push(Part::one(next_checkpoint(window, now, theme), 4));
    left
}

/// "next check T+04:00 in 1h52m", or that the window is complete or has no checkpoints left.
fn next_checkpoint(window: &Window, now: DateTime<Utc>, theme: &Theme) -> Span<'static> {
    let elapsed = window.elapsed(now);
    if elapsed >= window.length {
        return Span::styled("window complete", theme.ok);
    }
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
}

/// The right side: paused, the record's state, failing sources, the alert counts and,
/// last, the worst severity now.
fn status_parts(ctx: &PaneContext) -> Vec<Part> {
    let theme = ctx.theme;
    let state = ctx.state;
    let mut right = Vec::new();
    if ctx.ui.paused {
        right.push(Part::one(
            Span::styled(" PAUSED ", theme.warn.patch(theme.selection)),
            0,
        ));
    }
    right.extend(record_part(&state.record, theme));
    let failing = state.sources.values().filter(|s| s.is_error()).count();
    if failing > 0 {
        let noun = if failing == 1 { "source" } else { "sources" };
        right.push(Part::one(
            Span::styled(format!("{failing} {noun} failing"), theme.crit),
            1,
        ));
    }
    right.extend(alert_parts(state, theme));
    right.push(Part::one(worst_now(state, theme), 0));
    right
}

/// Whether this watchpost views another's record, or its own is full or failing.
fn record_part(record: &RecordStatus, theme: &Theme) -> Option<Part> {
    let (text, style, drop) = match record {
        RecordStatus::Viewer { holder, .. } => (
            match holder {
                Some(pid) => format!("viewer (record held by pid {pid})"),
                None => "viewer (record held by another watchpost)".to_string(),
            },
            theme.accent,
            1,
        ),
        RecordStatus::Writing { full: true, .. } => ("record full".into(), theme.crit, 1),
        RecordStatus::Writing { error: Some(_), .. } => ("record error".into(), theme.warn, 2),
        RecordStatus::Failed(_) => ("no record".into(), theme.warn, 2),
        RecordStatus::Off | RecordStatus::Writing { .. } => return None,
    };
    Some(Part::one(Span::styled(text, style), drop))
}

/// "3 alerts" waiting for someone, then how many are acknowledged, pending, silenced.
fn alert_parts(state: &AppState, theme: &Theme) -> Vec<Part> {
    let unacked = state.alerts.unacknowledged();
    let pending = state.alerts.pending();
    let silenced = state.alerts.silenced();
    let acked = state
        .alerts
        .active
        .len()
        .saturating_sub(unacked)
        .saturating_sub(pending);
    let mut parts = vec![Part::one(
        Span::styled(
            format!("{unacked} alert{}", if unacked == 1 { "" } else { "s" }),
            if unacked > 0 { theme.warn } else { theme.muted },
        ),
        2,
    )];
    let counts = [
        (acked, "acked", 5),
        (pending, "pending", 4),
        (silenced, "silenced", 4),
    ];
    for (count, word, drop) in counts {
        if count > 0 {
            parts.push(Part::one(
                Span::styled(format!("{count} {word}"), theme.muted),
                drop,
            ));
        }
    }
    parts
}

/// "✖ CRIT": the worst alert that counts now, or that nothing was read yet.
fn worst_now(state: &AppState, theme: &Theme) -> Span<'static> {
    if state.figures.is_empty() && state.alerts.active.is_empty() {
        return Span::styled("? no figures yet", theme.unknown);
    }
    let worst = state.worst();
    Span::styled(
        format!("{} {}", worst.symbol(), worst.label()),
        theme.severity(worst),
    )
}

/// Leaves parts out, least needed first (among equals, the last one, reading the left
/// side then the right), until the line fits in `total` cells; parts that drop 0 stay.
fn leave_out_until_fit(left: &mut Vec<Part>, right: &mut Vec<Part>, total: usize) {
    let fits = |l: &[Part], r: &[Part]| {
        let parts = l.len() + r.len();
        let widths: usize = l.iter().chain(r).map(Part::width).sum();
        // One cell of margin on the left.
        widths + 3 * parts.saturating_sub(1) < total
    };
    while !fits(left, right) {
        let candidates = left
            .iter()
            .enumerate()
            .map(|(i, p)| (p.drop, false, i))
            .chain(right.iter().enumerate().map(|(i, p)| (p.drop, true, i)));
        match candidates.max_by_key(|(drop, _, _)| *drop) {
            Some((0, _, _)) | None => break,
            Some((_, true, i)) => {
                right.remove(i);
            }
            Some((_, false, i)) => {
                left.remove(i);
            }
        }
    }
}

/// The parts' spans with " · " between them.
fn joined(parts: Vec<Part>, theme: &Theme) -> Vec<Span<'static>> {
    let mut spans = Vec::new();
    for (i, part) in parts.into_iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(" · ", theme.muted));
        }
        spans.extend(part.spans);
    }
    spans
}

/// The right side flush right, whole; the left side in the rest, cut if it must be.
fn draw(frame: &mut Frame, area: Rect, theme: &Theme, left: Vec<Part>, right: Vec<Part>) {
    let mut left_spans = vec![Span::raw(" ")];
    left_spans.extend(joined(left, theme));
    let mut right_spans = joined(right, theme);
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
pub(crate) fn window_offset(window: &Window, offset: Duration) -> String {
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
pub(crate) fn timeline_spans(
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
pub(crate) fn format_length(length: Duration) -> String {
    let minutes = length.num_minutes().max(0);
    if minutes % 60 == 0 {
        format!("{}h", minutes / 60)
    } else if minutes < 60 {
        format!("{minutes}m")
    } else {
        format!("{}h{:02}m", minutes / 60, minutes % 60)
    }
}

#[cfg(test)]
mod tests {
    use crate::state::AppState;
    use crate::ui::test_support::*;
    use crate::ui::theme::Theme;
    use crate::ui::{PaneContext, UiState};
    use ratatui::buffer::Buffer;

    #[test]
    fn header_states() {
        let theme = theme();
        let mut out = String::new();
        let paused = UiState {
            paused: true,
            ..UiState::default()
        };
        let cases: Vec<(&str, AppState, UiState)> = vec![
            ("ok", deployment(Level::Ok), UiState::default()),
            ("crit", deployment(Level::Crit), UiState::default()),
            ("crit, paused", deployment(Level::Crit), paused),
            ("connecting", connecting(), UiState::default()),
            ("failing", failing(), UiState::default()),
        ];
        for (name, state, ui) in cases {
            for width in [200, 80, 40, 12] {
                out.push_str(&format!("── {name} at {width}\n"));
                out.push_str(&text(&draw_pane_header(&state, &ui, &theme, width)));
            }
        }
        insta::assert_snapshot!(out);
    }

    fn draw_pane_header(state: &AppState, ui: &UiState, theme: &Theme, width: u16) -> Buffer {
        let mut terminal = terminal(width, 1);
        terminal
            .draw(|frame| {
                let ctx = PaneContext {
                    state,
                    ui,
                    theme,
                    focused: false,
                    zoomed: false,
                    now: now(),
                };
                super::render(frame, frame.area(), &ctx);
            })
            .unwrap();
        terminal.backend().buffer().clone()
    }

    #[test]
    fn header_says_paused_and_counts_unacked_alerts() {
        let state = deployment(Level::Crit);
        let ui = UiState {
            paused: true,
            ..UiState::default()
        };
        let line = text(&draw_pane_header(&state, &ui, &theme(), 120));
        assert!(line.contains("PAUSED"), "{line}");
        assert!(line.contains("T+02:14 / 24h"), "{line}");
        assert!(line.contains("next check T+03:00 in 46m"), "{line}");
        let unacked = state.alerts.unacknowledged();
        assert!(line.contains(&format!("{unacked} alerts")), "{line}");
        assert!(line.contains("✖ CRIT"), "{line}");
        // Narrow: the severity and PAUSED stay, the rest goes first.
        let narrow = text(&draw_pane_header(&state, &ui, &theme(), 20));
        assert!(
            narrow.contains("PAUSED") && narrow.contains("✖ CRIT"),
            "{narrow}"
        );
    }
}
