//! PLACEHOLDER help overlay.
use crate::ui::theme::Theme;
use ratatui::{Frame, layout::Rect};

pub fn render(frame: &mut Frame, area: Rect, theme: &Theme) {
    let _ = (frame, area, theme);
}
