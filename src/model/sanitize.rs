//! The one entry for foreign text (log lines, container names, query results) on its way
//! to the screen.
//!
//! Escape sequences are parsed with `vte` (the parser behind Alacritty), so a sequence is
//! removed whole, parameters included, instead of leaving debris such as `[2J` behind.
//! What comes out:
//! - printable text, including wide characters (CJK, emoji);
//! - no escape or control sequence of any kind: CSI, OSC (titles, hyperlinks, clipboard),
//!   DCS, SOS/PM/APC strings, `ESC x`, C0 and C1 controls, DEL. The 8-bit introducers
//!   (U+009B CSI, U+009D OSC, U+0090 DCS, ...) are read as their 7-bit forms, so their
//!   parameters go with them;
//! - no bidi overrides/isolates or invisible characters that could make text read as
//!   something it is not (zero-width spaces and joiners, BOM, soft hyphen, Hangul fillers,
//!   tag characters);
//! - TAB becomes spaces up to the next multiple of 8 columns (counted from the start of
//!   the text, since the caller's column is not known here);
//! - `\n`, `\r` (a `\r\n` pair counts once), NEL, U+2028 and U+2029 become one space each:
//!   the UI draws one line per entry, and a newline in foreign text must not move the
//!   cursor.
//!
//! An unterminated OSC/DCS/APC string swallows the rest of the text, as a terminal would.
//! The output of every function here is stable: sanitizing it again changes nothing.

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use unicode_width::UnicodeWidthChar;
use vte::{Params, Parser, Perform};

const TAB_STOP: usize = 8;
/// `sanitize_truncated` reads at most this many input bytes (or 16 per kept column, if
/// more) however long the text is: a 1 MB line costs as much as a short one.
const TRUNCATE_WORK_BYTES: usize = 64 * 1024;

/// Text without any escape or control sequence, on one line. See the module docs.
pub fn sanitize(text: &str) -> String {
    let mut sink = Sink::plain();
    let mut parser = Parser::new();
    feed_str(&mut parser, &mut sink, text);
    sink.out
}

/// Like [`sanitize`], for raw bytes: invalid UTF-8 becomes U+FFFD first (as
/// `String::from_utf8_lossy` does), then the text is sanitized.
pub fn sanitize_bytes(bytes: &[u8]) -> String {
    sanitize(&String::from_utf8_lossy(bytes))
}

/// Sanitizes and cuts to fit `max_chars` terminal columns (wide characters count two).
///
/// When the text does not fit, the result ends in `…` and, if there is room, a marker
/// with the number of input bytes not shown: `"first part… [+12345 bytes]"`. The whole
/// result, marker included, is at most `max_chars` columns wide (`max_chars == 0` gives
/// an empty string). Only the start of the text is read (about as much as fits, plus a
/// bounded allowance for escape sequences), so the cost does not grow with its length.
pub fn sanitize_truncated(text: &str, max_chars: usize) -> String {
    if max_chars == 0 {
        return String::new();
    }
    // Room for "…" and " [+N bytes]" with N as large as it can get.
    let marker_room = 1 + format!(" [+{} bytes]", text.len()).len();
    let with_marker = max_chars > marker_room;
    let keep = if with_marker {
        max_chars - marker_room
    } else {
        max_chars - 1
    };
    let work_limit = TRUNCATE_WORK_BYTES.max(max_chars.saturating_mul(16));

    let mut sink = Sink::plain();
    let mut parser = Parser::new();
    // Output length and input end of the last visible char that still fits in `keep`.
    let (mut cut_out, mut cut_in) = (0usize, 0usize);
    let mut cut = false;
    for (start, c) in text.char_indices() {
        if start >= work_limit {
            cut = true;
            break;
        }
        let before = sink.out.len();
        feed_char(&mut parser, &mut sink, c);
        if sink.out.len() > before && sink.width <= keep {
            cut_out = sink.out.len();
            cut_in = start + c.len_utf8();
        }
        if sink.width > max_chars {
            cut = true;
            break;
        }
    }
    if !cut {
        return sink.out;
    }
    let mut out = sink.out;
    out.truncate(cut_out);
    out.push('…');
    if with_marker {
        out.push_str(&format!(" [+{} bytes]", text.len() - cut_in));
    }
    out
}

/// Sanitizes like [`sanitize`] but keeps SGR (`CSI … m`) as ratatui styles patched over
/// `base`: the 16 named colours, 256-colour indexes, truecolour, bold, dim, italic,
/// underline, reverse and crossed-out. Blink and conceal are dropped (foreign text must not
/// hide itself or flash). Every other sequence is removed as in [`sanitize`]. Callers that
/// honour NO_COLOR should use [`sanitize`] instead.
pub fn sanitize_styled(text: &str, base: Style) -> Line<'static> {
    let mut sink = Sink::styled(base);
    let mut parser = Parser::new();
    feed_str(&mut parser, &mut sink, text);
    let styled = sink.flush_span();
    Line::from(styled.spans).style(base)
}

/// The 8-bit C1 introducers and the 7-bit final byte that means the same after ESC.
fn seven_bit(c: char) -> Option<u8> {
    match c {
        '\u{90}' => Some(b'P'),  // DCS
        '\u{98}' => Some(b'X'),  // SOS
        '\u{9b}' => Some(b'['),  // CSI
        '\u{9c}' => Some(b'\\'), // ST
        '\u{9d}' => Some(b']'),  // OSC
        '\u{9e}' => Some(b'^'),  // PM
        '\u{9f}' => Some(b'_'),  // APC
        _ => None,
    }
}

/// Feeds text to the parser, turning 8-bit introducers into `ESC x` (vte reads 7-bit
/// sequences only, and would otherwise print the parameters of an 8-bit CSI as text).
fn feed_str(parser: &mut Parser, sink: &mut Sink, text: &str) {
    let mut rest = 0;
    for (at, c) in text.match_indices(|c| seven_bit(c).is_some()) {
        parser.advance(sink, &text.as_bytes()[rest..at]);
        let c = c.chars().next().and_then(seven_bit).unwrap_or(b'[');
        parser.advance(sink, &[0x1b, c]);
        rest = at + 2;
    }
    parser.advance(sink, &text.as_bytes()[rest..]);
}

fn feed_char(parser: &mut Parser, sink: &mut Sink, c: char) {
    match seven_bit(c) {
        Some(final_byte) => parser.advance(sink, &[0x1b, final_byte]),
        None => parser.advance(sink, c.encode_utf8(&mut [0; 4]).as_bytes()),
    }
}

/// Characters that draw nothing (or reorder what is drawn) and so can make foreign text
/// look like something else: bidi embeddings/overrides/isolates and marks, zero-width
/// spaces and joiners, word joiner and invisible operators, BOM, soft hyphen, combining
/// grapheme joiner, Mongolian vowel separator, Hangul fillers, interlinear annotation
/// controls and tag characters.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00ad}'
            | '\u{034f}'
            | '\u{061c}'
            | '\u{115f}'
            | '\u{1160}'
            | '\u{17b4}'
            | '\u{17b5}'
            | '\u{180e}'
            | '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{206f}'
            | '\u{3164}'
            | '\u{feff}'
            | '\u{ffa0}'
            | '\u{fff9}'..='\u{fffb}'
            | '\u{e0000}'..='\u{e007f}'
    )
}

/// Collects what survives parsing. With `styled`, text is split into spans at SGR changes.
struct Sink {
    out: String,
    /// Display columns of everything emitted so far (for tab stops and truncation).
    width: usize,
    /// The last thing emitted came from `\r`, so a following `\n` adds nothing.
    after_cr: bool,
    styled: Option<Styled>,
}

struct Styled {
    base: Style,
    /// What the text's own SGR sequences asked for, relative to `base`.
    sgr: Style,
    spans: Vec<Span<'static>>,
}

impl Sink {
    fn plain() -> Self {
        Sink {
            out: String::new(),
            width: 0,
            after_cr: false,
            styled: None,
        }
    }

    fn styled(base: Style) -> Self {
        Sink {
            styled: Some(Styled {
                base,
                sgr: Style::default(),
                spans: Vec::new(),
            }),
            ..Sink::plain()
        }
    }

    fn push(&mut self, c: char) {
        self.out.push(c);
        self.width += c.width().unwrap_or(0);
        self.after_cr = false;
    }

    /// Moves the text collected so far into a span with the current style.
    fn flush_span(&mut self) -> Styled {
        let mut styled = self.styled.take().unwrap_or(Styled {
            base: Style::default(),
            sgr: Style::default(),
            spans: Vec::new(),
        });
        if !self.out.is_empty() {
            let style = styled.base.patch(styled.sgr);
            styled
                .spans
                .push(Span::styled(std::mem::take(&mut self.out), style));
        }
        styled
    }

    fn apply_sgr(&mut self, params: &Params) {
        let Some(current) = self.styled.as_ref().map(|s| s.sgr) else {
            return;
        };
        let next = sgr(current, params);
        if next != current {
            let mut styled = self.flush_span();
            styled.sgr = next;
            self.styled = Some(styled);
        }
    }
}

impl Perform for Sink {
    fn print(&mut self, c: char) {
        match c {
            '\u{2028}' | '\u{2029}' => self.push(' '),
            // vte prints DEL; any other control that reaches here goes too.
            c if c.is_control() || is_invisible(c) => {}
            c => self.push(c),
        }
    }

    fn execute(&mut self, byte: u8) {
        match byte {
            b'\t' => {
                for _ in 0..TAB_STOP - self.width % TAB_STOP {
                    self.push(' ');
                }
            }
            b'\n' if self.after_cr => self.after_cr = false,
            b'\n' | 0x85 => self.push(' '),
            b'\r' => {
                self.push(' ');
                self.after_cr = true;
            }
            // BEL, BS, NUL, the other C0 and C1 controls: dropped.
            _ => {}
        }
    }

    fn csi_dispatch(&mut self, params: &Params, intermediates: &[u8], ignore: bool, action: char) {
        // Private-marker variants (`CSI > 4 ; 2 m`) are not SGR.
        if action == 'm' && intermediates.is_empty() && !ignore {
            self.apply_sgr(params);
        }
    }
}

/// Applies one SGR sequence to `style`. Unknown or malformed parameters are skipped.
fn sgr(mut style: Style, params: &Params) -> Style {
    if params.is_empty() {
        return Style::default();
    }
    let mut iter = params.iter();
    while let Some(param) = iter.next() {
        match param {
            [0] => style = Style::default(),
            [1] => style = style.add_modifier(Modifier::BOLD),
            [2] => style = style.add_modifier(Modifier::DIM),
            [3] => style = style.add_modifier(Modifier::ITALIC),
            [4, 0] => style = remove(style, Modifier::UNDERLINED),
            [4] | [4, _] | [21] => style = style.add_modifier(Modifier::UNDERLINED),
            [7] => style = style.add_modifier(Modifier::REVERSED),
            [9] => style = style.add_modifier(Modifier::CROSSED_OUT),
            [22] => style = remove(style, Modifier::BOLD | Modifier::DIM),
            [23] => style = remove(style, Modifier::ITALIC),
            [24] => style = remove(style, Modifier::UNDERLINED),
            [27] => style = remove(style, Modifier::REVERSED),
            [29] => style = remove(style, Modifier::CROSSED_OUT),
            [n @ 30..=37] => style.fg = Some(named(n - 30)),
            [n @ 90..=97] => style.fg = Some(named(n - 90 + 8)),
            [39] => style.fg = None,
            [n @ 40..=47] => style.bg = Some(named(n - 40)),
            [n @ 100..=107] => style.bg = Some(named(n - 100 + 8)),
            [49] => style.bg = None,
            [which @ (38 | 48 | 58), rest @ ..] => {
                let color = if rest.is_empty() {
                    extended_semicolons(&mut iter)
                } else {
                    extended_colons(rest)
                };
                if let Some(color) = color {
                    style = match which {
                        38 => style.fg(color),
                        48 => style.bg(color),
                        _ => style.underline_color(color),
                    };
                }
            }
            [59] => style.underline_color = None,
            // 5/6 blink and 8 conceal are deliberately not kept; the rest is unknown.
            _ => {}
        }
    }
    style
}

fn remove(mut style: Style, modifier: Modifier) -> Style {
    style.add_modifier.remove(modifier);
    style
}

/// The 16 named colours by ANSI index (0–7 normal, 8–15 bright).
fn named(index: u16) -> Color {
    match index {
        0 => Color::Black,
        1 => Color::Red,
        2 => Color::Green,
        3 => Color::Yellow,
        4 => Color::Blue,
        5 => Color::Magenta,
        6 => Color::Cyan,
        7 => Color::Gray,
        8 => Color::DarkGray,
        9 => Color::LightRed,
        10 => Color::LightGreen,
        11 => Color::LightYellow,
        12 => Color::LightBlue,
        13 => Color::LightMagenta,
        14 => Color::LightCyan,
        _ => Color::White,
    }
}

fn byte(value: u16) -> Option<u8> {
    u8::try_from(value).ok()
}

/// `38;5;n` and `38;2;r;g;b`: the colour's parts are the following parameters.
fn extended_semicolons<'a>(iter: &mut impl Iterator<Item = &'a [u16]>) -> Option<Color> {
    let mut next = || iter.next().and_then(|p| p.first().copied());
    match next()? {
        5 => Some(Color::Indexed(byte(next()?)?)),
        2 => {
            let (r, g, b) = (next()?, next()?, next()?);
            Some(Color::Rgb(byte(r)?, byte(g)?, byte(b)?))
        }
        _ => None,
    }
}

/// `38:5:n`, `38:2:r:g:b` and `38:2:colourspace:r:g:b`: the parts are sub-parameters.
fn extended_colons(rest: &[u16]) -> Option<Color> {
    match rest {
        [5, n] => Some(Color::Indexed(byte(*n)?)),
        [2, r, g, b] | [2, _, r, g, b, ..] => Some(Color::Rgb(byte(*r)?, byte(*g)?, byte(*b)?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No escape, no control character (C0, DEL, C1), no bidi override or zero-width char.
    fn assert_clean(out: &str) {
        for c in out.chars() {
            assert!(!c.is_control(), "control char {:?} in {out:?}", c);
            assert!(!is_invisible(c), "invisible char {:?} in {out:?}", c);
        }
    }

    fn check(input: &str, expected: &str) {
        let out = sanitize(input);
        assert_clean(&out);
        assert_eq!(out, expected, "input {input:?}");
    }

    #[test]
    fn plain_text_and_wide_chars_pass() {
        check("hello, world", "hello, world");
        check("日本語 ✓ 🚀 café", "日本語 ✓ 🚀 café");
        check("", "");
    }

    #[test]
    fn osc_title_hyperlink_and_clipboard_go() {
        check("a\x1b]0;evil title\x07b", "ab");
        check("a\x1b]2;title\x1b\\b", "ab");
        check(
            "see \x1b]8;;https://evil.example/\x1b\\the docs\x1b]8;;\x1b\\ now",
            "see the docs now",
        );
        check("x\x1b]52;c;cm0gLXJmIC8=\x07y", "xy");
    }

    #[test]
    fn csi_sequences_go_with_their_parameters() {
        check("\x1b[2Jcleared", "cleared");
        check("a\x1b[Hb\x1b[10;20Hc\x1b[3Ad", "abcd");
        check("\x1b[?1049h\x1b[?1000hmouse\x1b[?1000l", "mouse");
        check("\x1b[31mred\x1b[0m", "red");
    }

    #[test]
    fn dcs_apc_pm_sos_strings_go() {
        check("a\x1bP1$r0m\x1b\\b", "ab");
        check("a\x1b_Gf=100;payload\x1b\\b", "ab");
        check("a\x1b^private\x1b\\b", "ab");
        check("a\x1bXstring\x1b\\b", "ab");
    }

    #[test]
    fn c0_controls_and_del_go() {
        check("ding\x07 back\x08space\x7f nul\x00", "ding backspace nul");
        check("lone \x1b", "lone ");
        check("\x1bcreset", "reset");
        check("\x1b7save\x1b8", "save");
    }

    #[test]
    fn c1_controls_and_8bit_csi_go() {
        check("a\u{9b}31mb", "ab");
        check("a\u{9b}2Jb", "ab");
        check("a\u{9d}0;title\u{9c}b", "ab");
        check("a\u{90}dcs\u{9c}b", "ab");
        check("a\u{85}b\u{84}c\u{9f}apc\u{9c}d", "a bcd");
    }

    #[test]
    fn tabs_and_newlines() {
        check("a\tb", "a       b");
        check("12345678\tx", "12345678        x");
        check("one\ntwo\r\nthree\rfour", "one two three four");
    }

    #[test]
    fn bidi_and_zero_width_go() {
        check("admin\u{202e}txt.exe", "admintxt.exe");
        check("a\u{2066}b\u{2069}c", "abc");
        check("ad\u{200b}m\u{200d}in\u{feff}", "admin");
    }

    #[test]
    fn invalid_utf8_becomes_replacement() {
        let out = sanitize_bytes(b"ok \xff\xfe \x1b[31mred \xc3");
        assert_clean(&out);
        assert_eq!(out, "ok \u{fffd}\u{fffd} red \u{fffd}");
        assert_eq!(sanitize_bytes(b"a\x9bb"), "a\u{fffd}b");
    }

    #[test]
    fn twice_is_once() {
        let input = "x\t\x1b[1mbold\x1b[0m\r\n\u{9b}2J\u{202e}y\x1b]0;t";
        let once = sanitize(input);
        assert_eq!(sanitize(&once), once);
    }

    #[test]
    fn truncated_fits_and_says_what_was_cut() {
        assert_eq!(sanitize_truncated("short", 10), "short");
        assert_eq!(sanitize_truncated("exactly10!", 10), "exactly10!");
        let long = "x".repeat(1000);
        let out = sanitize_truncated(&long, 40);
        // 40 columns: text, "…", " [+N bytes]" with room for N up to 4 digits.
        assert!(out.ends_with(" bytes]"), "{out}");
        assert_eq!(out.chars().count(), 40 - 1, "{out}"); // the marker's N has 3 digits here
        let shown = out.chars().take_while(|c| *c == 'x').count();
        assert_eq!(
            out,
            format!("{}… [+{} bytes]", "x".repeat(shown), 1000 - shown)
        );
        // Too narrow for the marker: just the ellipsis.
        assert_eq!(sanitize_truncated(&long, 5), "xxxx…");
        assert_eq!(sanitize_truncated(&long, 1), "…");
        assert_eq!(sanitize_truncated(&long, 0), "");
    }

    #[test]
    fn truncated_counts_wide_chars_and_strips() {
        let out = sanitize_truncated("\x1b[31m日本語日本語\x1b[0m", 7);
        assert_eq!(out, "日本語…");
        assert_eq!(sanitize_truncated("\x1b[31mred\x1b[0m", 3), "red");
    }

    #[test]
    fn truncated_is_fast_on_a_megabyte() {
        let line = format!("{}\x1b[2J{}", "a".repeat(500_000), "b".repeat(500_000));
        let started = std::time::Instant::now();
        let out = sanitize_truncated(&line, 300);
        assert!(started.elapsed() < std::time::Duration::from_millis(200));
        assert!(out.ends_with(&format!(
            " [+{} bytes]",
            line.len() - 300 + 1 + " [+1000004 bytes]".len()
        )));
        assert!(unicode_width::UnicodeWidthStr::width(out.as_str()) <= 300);
        // Escape-only input is bounded too.
        let osc = format!("\x1b]0;{}", "t".repeat(1_000_000));
        let out = sanitize_truncated(&osc, 300);
        assert_eq!(out, format!("… [+{} bytes]", osc.len()));
    }

    #[test]
    fn styled_keeps_sgr_colours_over_base() {
        let base = Style::default()
            .fg(Color::Gray)
            .add_modifier(Modifier::ITALIC);
        let line = sanitize_styled(
            "a\x1b[1;31mb\x1b[0mc\x1b[38;5;208md\x1b[48;2;1;2;3me\x1b[38:2::9:8:7mf",
            base,
        );
        let spans: Vec<(String, Style)> = line
            .spans
            .iter()
            .map(|s| (s.content.to_string(), s.style))
            .collect();
        assert_eq!(spans[0], ("a".into(), base));
        assert_eq!(
            spans[1],
            ("b".into(), base.fg(Color::Red).add_modifier(Modifier::BOLD))
        );
        assert_eq!(spans[2], ("c".into(), base));
        assert_eq!(spans[3], ("d".into(), base.fg(Color::Indexed(208))));
        assert_eq!(
            spans[4],
            (
                "e".into(),
                base.fg(Color::Indexed(208)).bg(Color::Rgb(1, 2, 3))
            )
        );
        assert_eq!(spans[5].1.fg, Some(Color::Rgb(9, 8, 7)));
        assert_eq!(spans.len(), 6);
    }

    #[test]
    fn styled_bright_default_and_off_codes() {
        let line = sanitize_styled(
            "\x1b[92;4mx\x1b[39;24my\x1b[7;9mz\x1b[27;29;100mw\x1b[mv",
            Style::default(),
        );
        let styles: Vec<Style> = line.spans.iter().map(|s| s.style).collect();
        assert_eq!(
            styles[0],
            Style::default()
                .fg(Color::LightGreen)
                .add_modifier(Modifier::UNDERLINED)
        );
        assert_eq!(styles[1], Style::default());
        assert_eq!(
            styles[2],
            Style::default().add_modifier(Modifier::REVERSED | Modifier::CROSSED_OUT)
        );
        assert_eq!(styles[3], Style::default().bg(Color::DarkGray));
        assert_eq!(styles[4], Style::default());
    }

    #[test]
    fn styled_drops_everything_else() {
        let line = sanitize_styled(
            "\x1b]0;t\x07\x1b[2J\x1b[5;8mhid\x1b[?25lden\u{9b}1m!",
            Style::default(),
        );
        let text: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
        assert_eq!(text, "hidden!");
        assert_clean(&text);
        // Blink and conceal are not kept; 8-bit CSI SGR is.
        assert_eq!(line.spans[0].style, Style::default());
        assert_eq!(
            line.spans.last().map(|s| s.style),
            Some(Style::default().add_modifier(Modifier::BOLD))
        );
    }
}
