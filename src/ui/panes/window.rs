//! PLACEHOLDER: replaced by the pane implementation.
use crate::ui::PaneContext;
use ratatui::{Frame, layout::Rect};

pub fn render(frame: &mut Frame, area: Rect, ctx: &PaneContext) {
    let _ = (frame, area, ctx);
}
