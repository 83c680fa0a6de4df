//! The help overlay: every key the app answers to (generated from the key table in
//! `ui::keys`), and what the severity symbols mean.
//! Centered over the screen; cut (never wrapped) when the terminal is small.

use crate::model::figure::Severity;
use crate::ui::keys::{Keymap, When};
use crate::ui::theme::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};

/// The lines of the overlay: the rows of the key table in effect, then the legend.
pub fn lines(theme: &Theme, keymap: &Keymap) -> Vec<Line<'static>> {
    let rows = keymap.help_rows();
    let key_width = rows
        .iter()
        .map(|row| row.keys.chars().count())
        .max()
        .unwrap_or(0);
    let mut out: Vec<Line<'static>> = Vec::new();
    for row in rows {
        for (i, what) in row.text.iter().enumerate() {
            let key = if i == 0 { row.keys.as_str() } else { "" };
            out.push(Line::from(vec![
                Span::styled(format!(" {key:<key_width$}  "), theme.accent),
                Span::styled(what.to_string(), theme.text),
            ]));
        }
    }
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

/// What the overlay's frame says closes it: ` Esc or ? closes ` (the keys of `back` and
/// `help` in the overlay).
fn closing(keymap: &Keymap) -> String {
    let keys: Vec<String> = ["back", "help"]
        .iter()
        .filter_map(|name| keymap.key_of(name, When::Help))
        .collect();
    format!(" {} closes ", keys.join(" or "))
}

pub fn render(frame: &mut Frame, area: Rect, theme: &Theme, keymap: &Keymap) {
    if area.is_empty() {
        return;
    }
    let content = lines(theme, keymap);
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
        .title_bottom(Line::from(Span::styled(closing(keymap), theme.muted)).right_aligned());
    let inner = block.inner(overlay);
    frame.render_widget(block, overlay);
    let cut: Vec<Line<'static>> = content
        .into_iter()
        .map(|l| crate::ui::panes::common::truncate_line(l, inner.width as usize))
        .collect();
    frame.render_widget(Paragraph::new(cut), inner);
}

#[cfg(test)]
mod tests {
    use crate::ui::UiState;
    use crate::ui::keys::Keymap;
    use crate::ui::test_support::*;
    use std::sync::Arc;

    /// A keymap file's keys are the ones the overlay lists, its frame names and the footer
    /// shows.
    #[test]
    fn the_overlay_and_the_footer_show_rebound_keys() {
        let keymap = Keymap::parse(
            "[keys]\nquit = \"Q\"\nack = [\"a\", \"ctrl-a\"]\nhelp = \"f1\"\n\
             back = [\"backspace\", \"esc\"]\nzoom = \"space\"\nup = [\"up\", \"ctrl-p\"]\n",
        )
        .unwrap();
        let ui = UiState {
            help: true,
            keymap: Arc::new(keymap),
            ..UiState::default()
        };
        let screen = text(&draw_screen(&deployment(Level::Ok), &ui, &theme(), 110, 34));
        for (keys, what) in [
            ("F1 ", "show / hide this help"),
            ("Space ", "zoom / drill down"),
            ("Backspace  Esc ", "back: close help"),
            ("↑ ↓  Ctrl-P j ", "select a row"),
            ("a  Ctrl-A ", "acknowledge the selected alert"),
            ("Q ", "quit"),
        ] {
            assert!(
                screen
                    .lines()
                    .any(|l| l.contains(&format!("┃ {keys}")) && l.contains(what)),
                "{keys}{what} not in\n{screen}"
            );
        }
        assert!(screen.contains("━ Backspace or F1 closes ┛"), "{screen}");
        let footer = screen.lines().last().unwrap();
        assert_eq!(
            footer.trim(),
            "F1:help  Tab/1-7:focus  Space:zoom  Backspace:back  /:filter  p:pause  a:ack  n:note  m:mouse  Q:quit"
        );
        insta::assert_snapshot!(screen);
    }
}
