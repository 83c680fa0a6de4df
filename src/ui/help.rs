//! The help overlay: every key the app answers to, and what the severity symbols mean.
//! Centered over the screen; cut (never wrapped) when the terminal is small.

use crate::model::figure::Severity;
use crate::ui::theme::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};

/// (keys, what they do). The app loop implements exactly these.
pub const KEYS: &[(&str, &str)] = &[
    ("?", "show / hide this help"),
    ("Tab / Shift-Tab", "next / previous pane"),
    ("1–9", "focus a pane (8: the watch window, 9: PromQL)"),
    ("Enter", "zoom / drill down; zoomed Errors: all fields"),
    ("Esc", "back: close help, unzoom, cancel filter"),
    ("↑ ↓  k j", "select a row / scroll the errors back (pauses)"),
    ("PgUp PgDn", "a page up / down"),
    ("Home End  g G", "top / bottom (End follows new lines)"),
    ("/", "filter the errors: regex, !regex excludes,"),
    ("", "level:warn, source:name (terms combine)"),
    ("e", "error lines only / all lines"),
    ("s / S", "Containers: sort by the next column / reverse"),
    ("w  F", "errors: wrap long lines · follow the newest"),
    ("t", "errors: top error patterns / the tail (zooms)"),
    ("p", "pause / resume live updates"),
    ("a", "acknowledge the selected alert (focus Alerts, 7)"),
    ("n", "write a note into the window's record"),
    ("m", "mouse on / off"),
    ("q  Ctrl-C", "quit"),
];

/// The lines of the overlay.
pub fn lines(theme: &Theme) -> Vec<Line<'static>> {
    let key_width = KEYS
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out: Vec<Line<'static>> = KEYS
        .iter()
        .map(|(key, what)| {
            Line::from(vec![
                Span::styled(format!(" {key:<key_width$}  "), theme.accent),
                Span::styled(what.to_string(), theme.text),
            ])
        })
        .collect();
    out.push(Line::default());
    let mut legend = vec![Span::styled(" ", theme.text)];
    for severity in [
        Severity::Ok,
        Severity::Warn,
        Severity::Crit,
        Severity::Unknown,
    ] {
        legend.push(Span::styled(
            format!("{} {}", severity.symbol(), severity.label()),
            theme.severity(severity),
        ));
        legend.push(Span::raw("  "));
    }
    out.push(Line::from(legend));
    out.push(Line::from(Span::styled(
        " ┆ on a bar marks the warn and crit thresholds",
        theme.muted,
    )));
    out
}

pub fn render(frame: &mut Frame, area: Rect, theme: &Theme) {
    if area.is_empty() {
        return;
    }
    let content = lines(theme);
    let content_width = content.iter().map(Line::width).max().unwrap_or(0) as u16;
    let width = content_width.saturating_add(3).min(area.width);
    let height = (content.len() as u16).saturating_add(2).min(area.height);
    let overlay = Rect {
        x: area.x.saturating_add(area.width.saturating_sub(width) / 2),
        y: area
            .y
            .saturating_add(area.height.saturating_sub(height) / 2),
        width,
        height,
    };
    frame.render_widget(Clear, overlay);
    let block = Block::bordered()
        .border_type(BorderType::Thick)
        .border_style(theme.border_focused)
        .title(Line::from(Span::styled(" Help — keys ", theme.title)))
        .title_bottom(Line::from(Span::styled(" Esc or ? closes ", theme.muted)).right_aligned());
    let inner = block.inner(overlay);
    frame.render_widget(block, overlay);
    let cut: Vec<Line<'static>> = content
        .into_iter()
        .map(|l| crate::ui::panes::common::truncate_line(l, inner.width as usize))
        .collect();
    frame.render_widget(Paragraph::new(cut), inner);
}
