//! The text of a prompt being typed (the Errors filter, a note, the `:` command line): one
//! line with a cursor, edited the way a shell edits it, and the filter's history. Every
//! prompt keeps its text in a [`LineEdit`], so the keys edit them all alike.

use crate::model::sanitize::sanitize;
use ratatui::style::{Modifier, Style};
use ratatui::text::Span;
use std::collections::VecDeque;
use unicode_width::UnicodeWidthChar;

/// An editing key of every prompt (bound once per prompt in `ui::keys`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edit {
    Left,
    Right,
    Start,
    End,
    /// The character under the cursor (Delete).
    DeleteForward,
    /// The word before the cursor (Ctrl-W).
    DeleteWord,
    /// From the cursor back to the start (Ctrl-U).
    DeleteToStart,
}

impl Edit {
    /// The name a keymap file uses for it.
    pub fn name(self) -> &'static str {
        match self {
            Edit::Left => "cursor_left",
            Edit::Right => "cursor_right",
            Edit::Start => "cursor_start",
            Edit::End => "cursor_end",
            Edit::DeleteForward => "delete_forward",
            Edit::DeleteWord => "delete_word",
            Edit::DeleteToStart => "delete_to_start",
        }
    }
}

/// One line of text and a cursor in it. The cursor counts characters, not bytes, so a
/// multi-byte character is one step.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LineEdit {
    text: String,
    /// Characters before the cursor: 0 ..= the text's character count.
    cursor: usize,
}

impl LineEdit {
    /// `text` with the cursor at its end.
    pub fn new(text: &str) -> LineEdit {
        LineEdit {
            text: text.to_string(),
            cursor: text.chars().count(),
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Characters before the cursor.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// How many characters the text has.
    pub fn len(&self) -> usize {
        self.text.chars().count()
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// The byte offset of character `index` (the text's length past the end).
    fn byte(&self, index: usize) -> usize {
        self.text
            .char_indices()
            .nth(index)
            .map_or(self.text.len(), |(b, _)| b)
    }

    /// Types `c` at the cursor. Control characters are not text: they are left out.
    pub fn insert(&mut self, c: char) {
        if c.is_control() {
            return;
        }
        let at = self.byte(self.cursor);
        self.text.insert(at, c);
        self.cursor += 1;
    }

    /// Deletes the character before the cursor (Backspace). Returns whether the text changed.
    pub fn backspace(&mut self) -> bool {
        if self.cursor == 0 {
            return false;
        }
        self.remove(self.cursor - 1, self.cursor);
        true
    }

    /// Carries out an editing key. Returns whether the text changed (moving the cursor
    /// leaves it as it was).
    pub fn apply(&mut self, edit: Edit) -> bool {
        let len = self.len();
        match edit {
            Edit::Left => self.cursor = self.cursor.saturating_sub(1),
            Edit::Right => self.cursor = (self.cursor + 1).min(len),
            Edit::Start => self.cursor = 0,
            Edit::End => self.cursor = len,
            Edit::DeleteForward if self.cursor < len => {
                self.remove(self.cursor, self.cursor + 1);
                return true;
            }
            Edit::DeleteWord if self.cursor > 0 => {
                // As a shell's Ctrl-W: the spaces before the cursor, then the word before them.
                let chars: Vec<char> = self.text.chars().collect();
                let mut from = self.cursor;
                while from > 0 && chars[from - 1].is_whitespace() {
                    from -= 1;
                }
                while from > 0 && !chars[from - 1].is_whitespace() {
                    from -= 1;
                }
                self.remove(from, self.cursor);
                return true;
            }
            Edit::DeleteToStart if self.cursor > 0 => {
                self.remove(0, self.cursor);
                return true;
            }
            Edit::DeleteForward | Edit::DeleteWord | Edit::DeleteToStart => {}
        }
        false
    }

    /// Removes characters `from..to` (character indices); the cursor goes to `from`.
    fn remove(&mut self, from: usize, to: usize) {
        let (start, end) = (self.byte(from), self.byte(to));
        self.text.replace_range(start..end, "");
        self.cursor = from;
    }

    /// The text drawn in `room` cells with the cursor where it is: the character under
    /// it reversed, or a block after the last one. Text too long for the room is shown
    /// around the cursor, with `…` where it goes on.
    pub fn spans(&self, room: usize, style: Style) -> Vec<Span<'static>> {
        let chars: Vec<char> = self.text.chars().collect();
        let cells = |c: &char| c.width().unwrap_or(0);
        let cursor_cells = chars.get(self.cursor).map_or(1, cells).max(1);
        let total: usize =
            chars.iter().map(cells).sum::<usize>() + usize::from(self.cursor == chars.len());
        let (mut from, mut to) = (0, chars.len());
        if total > room {
            // Room for an ellipsis on either side; a quarter of the rest after the cursor
            // (so what is typed at the end has the text before it in view), then before it.
            let room = room.saturating_sub(2).max(cursor_cells);
            let mut used = cursor_cells;
            to = (self.cursor + 1).min(chars.len());
            while to < chars.len() && used + cells(&chars[to]) <= room / 4 + cursor_cells {
                used += cells(&chars[to]);
                to += 1;
            }
            from = self.cursor;
            while from > 0 && used + cells(&chars[from - 1]) <= room {
                from -= 1;
                used += cells(&chars[from]);
            }
            // Near the start: what is left goes to the text after the cursor.
            while to < chars.len() && used + cells(&chars[to]) <= room {
                used += cells(&chars[to]);
                to += 1;
            }
        }
        let piece = |range: &[char]| sanitize(&range.iter().collect::<String>());
        let mut out = Vec::new();
        if from > 0 {
            out.push(Span::styled("…", style.add_modifier(Modifier::DIM)));
        }
        out.push(Span::styled(piece(&chars[from..self.cursor]), style));
        match chars.get(self.cursor) {
            Some(c) => {
                out.push(Span::styled(
                    piece(&[*c]),
                    style.add_modifier(Modifier::REVERSED),
                ));
                out.push(Span::styled(piece(&chars[self.cursor + 1..to]), style));
            }
            None => out.push(Span::styled("█", style)),
        }
        if to < chars.len() {
            out.push(Span::styled("…", style.add_modifier(Modifier::DIM)));
        }
        out.retain(|s| !s.content.is_empty());
        out
    }
}

/// The texts applied before, newest first, as a shell keeps its commands: ↑ goes to an
/// older one, ↓ back to a newer one and, past the newest, to what was being typed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    entries: VecDeque<String>,
    /// The entry shown in the prompt; `None`: the text being typed.
    at: Option<usize>,
    /// What was being typed before ↑, given back by ↓.
    draft: String,
}

impl History {
    /// The most kept: the oldest goes.
    pub const MAX: usize = 50;

    /// The entries, newest first.
    pub fn entries(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(String::as_str)
    }

    /// Keeps an applied text, unless it is blank or the newest already; back to the text
    /// being typed.
    pub fn push(&mut self, text: &str) {
        self.at = None;
        if text.trim().is_empty() || self.entries.front().is_some_and(|e| e == text) {
            return;
        }
        self.entries.push_front(text.to_string());
        self.entries.truncate(Self::MAX);
    }

    /// A prompt opens: ↑ starts from the newest entry again.
    pub fn reset(&mut self) {
        self.at = None;
        self.draft.clear();
    }

    /// ↑: the next older entry into `line`. Returns whether there was one.
    pub fn older(&mut self, line: &mut LineEdit) -> bool {
        let next = self.at.map_or(0, |i| i + 1);
        let Some(entry) = self.entries.get(next) else {
            return false;
        };
        if self.at.is_none() {
            self.draft = line.text().to_string();
        }
        *line = LineEdit::new(entry);
        self.at = Some(next);
        true
    }

    /// ↓: the next newer entry into `line`, or past the newest what was being typed.
    /// Returns whether `line` changed.
    pub fn newer(&mut self, line: &mut LineEdit) -> bool {
        match self.at {
            None => false,
            Some(0) => {
                self.at = None;
                *line = LineEdit::new(&std::mem::take(&mut self.draft));
                true
            }
            Some(i) => {
                self.at = Some(i - 1);
                *line = LineEdit::new(&self.entries[i - 1]);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text with `|` where the cursor is.
    fn shown(line: &LineEdit) -> String {
        let mut text: Vec<char> = line.text().chars().collect();
        text.insert(line.cursor(), '|');
        text.into_iter().collect()
    }

    fn typed(text: &str) -> LineEdit {
        let mut line = LineEdit::default();
        for c in text.chars() {
            line.insert(c);
        }
        line
    }

    #[test]
    fn the_cursor_moves_by_characters_and_text_goes_in_where_it_is() {
        let mut line = typed("héllo wörld");
        assert_eq!(shown(&line), "héllo wörld|");
        line.apply(Edit::Start);
        line.apply(Edit::Right);
        line.apply(Edit::Right);
        assert_eq!(shown(&line), "hé|llo wörld");
        line.insert('→');
        assert_eq!(shown(&line), "hé→|llo wörld");
        line.apply(Edit::End);
        line.apply(Edit::Left);
        line.insert('大');
        assert_eq!(shown(&line), "hé→llo wörl大|d");
        // The ends hold the cursor.
        for _ in 0..40 {
            line.apply(Edit::Right);
        }
        assert_eq!(line.cursor(), line.len());
        for _ in 0..40 {
            line.apply(Edit::Left);
        }
        assert_eq!(line.cursor(), 0);
        // A control character is not text.
        line.insert('\x1b');
        line.insert('\n');
        assert_eq!(shown(&line), "|hé→llo wörl大d");
    }

    #[test]
    fn backspace_deletes_before_the_cursor_and_delete_after_it() {
        let mut line = typed("abcd");
        line.apply(Edit::Left);
        assert!(line.backspace());
        assert_eq!(shown(&line), "ab|d");
        assert!(line.apply(Edit::DeleteForward));
        assert_eq!(shown(&line), "ab|");
        assert!(!line.apply(Edit::DeleteForward), "nothing after the cursor");
        line.apply(Edit::Start);
        assert!(!line.backspace(), "nothing before the cursor");
        assert_eq!(shown(&line), "|ab");
        let mut wide = typed("日本語");
        wide.apply(Edit::Left);
        wide.backspace();
        assert_eq!(shown(&wide), "日|語");
    }

    #[test]
    fn ctrl_w_deletes_the_word_before_the_cursor_and_ctrl_u_back_to_the_start() {
        let mut line = typed("level:error  timeout !retry");
        assert!(line.apply(Edit::DeleteWord));
        assert_eq!(shown(&line), "level:error  timeout |");
        // Spaces before the cursor go with the word before them.
        assert!(line.apply(Edit::DeleteWord));
        assert_eq!(shown(&line), "level:error  |");
        assert!(line.apply(Edit::DeleteWord));
        assert_eq!(shown(&line), "|");
        assert!(!line.apply(Edit::DeleteWord));
        // In the middle: only what is before the cursor goes.
        let mut line = typed("source:app fail");
        for _ in 0..5 {
            line.apply(Edit::Left);
        }
        line.apply(Edit::DeleteWord);
        assert_eq!(shown(&line), "| fail");
        let mut line = typed("one two three");
        for _ in 0..6 {
            line.apply(Edit::Left);
        }
        assert!(line.apply(Edit::DeleteToStart));
        assert_eq!(shown(&line), "| three");
        assert!(!line.apply(Edit::DeleteToStart));
    }

    fn rendered(line: &LineEdit, room: usize) -> (String, Option<String>) {
        let spans = line.spans(room, Style::default());
        let text: String = spans.iter().map(|s| s.content.as_ref()).collect();
        let under = spans
            .iter()
            .find(|s| s.style.add_modifier.contains(Modifier::REVERSED))
            .map(|s| s.content.to_string());
        (text, under)
    }

    #[test]
    fn the_cursor_is_drawn_where_it_is_and_stays_in_view() {
        let mut line = typed("timeout");
        assert_eq!(rendered(&line, 40), ("timeout█".into(), None));
        line.apply(Edit::Start);
        line.apply(Edit::Right);
        assert_eq!(rendered(&line, 40), ("timeout".into(), Some("i".into())));
        // Longer than the room: the part around the cursor, cut with an ellipsis.
        let long: String = (0..60).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        let mut line = LineEdit::new(&long);
        let (text, _) = rendered(&line, 20);
        assert!(text.starts_with('…') && text.ends_with("h█"), "{text}");
        assert!(unicode_width::UnicodeWidthStr::width(text.as_str()) <= 20);
        line.apply(Edit::Start);
        let (text, under) = rendered(&line, 20);
        assert!(text.starts_with("abc") && text.ends_with('…'), "{text}");
        assert_eq!(under.as_deref(), Some("a"));
        assert!(unicode_width::UnicodeWidthStr::width(text.as_str()) <= 20);
        for _ in 0..30 {
            line.apply(Edit::Right);
        }
        let (text, under) = rendered(&line, 20);
        assert_eq!(under.as_deref(), Some("e"), "{text}");
        assert!(text.starts_with('…') && text.ends_with('…'), "{text}");
    }

    #[test]
    fn history_goes_back_newest_first_and_forward_to_what_was_typed() {
        let mut history = History::default();
        for text in [
            "timeout",
            "level:error",
            "level:error",
            "  ",
            "redis",
            "timeout",
        ] {
            history.push(text);
        }
        // Newest first, the repeat in a row kept once, the blank not at all.
        assert_eq!(
            history.entries().collect::<Vec<_>>(),
            ["timeout", "redis", "level:error", "timeout"]
        );
        let mut line = typed("half-typ");
        history.reset();
        assert!(history.older(&mut line));
        assert_eq!(line.text(), "timeout");
        assert_eq!(line.cursor(), line.len());
        assert!(history.older(&mut line));
        assert_eq!(line.text(), "redis");
        assert!(history.older(&mut line));
        assert!(history.older(&mut line));
        assert_eq!(line.text(), "timeout");
        assert!(!history.older(&mut line), "no older one");
        assert_eq!(line.text(), "timeout");
        assert!(history.newer(&mut line));
        assert_eq!(line.text(), "level:error");
        for _ in 0..2 {
            history.newer(&mut line);
        }
        assert_eq!(line.text(), "timeout");
        assert!(history.newer(&mut line));
        assert_eq!(line.text(), "half-typ", "past the newest: what was typed");
        assert!(!history.newer(&mut line));
    }

    #[test]
    fn history_keeps_the_newest_fifty() {
        let mut history = History::default();
        for n in 0..60 {
            history.push(&format!("filter {n}"));
        }
        let entries: Vec<&str> = history.entries().collect();
        assert_eq!(entries.len(), History::MAX);
        assert_eq!(entries[0], "filter 59");
        assert_eq!(entries[49], "filter 10");
    }
}
