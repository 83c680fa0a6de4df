//! Terminal escape sequences in log text: services and `docker compose` colour their
//! levels (`\e[31mERROR\e[0m`, `\e[1;31mERROR`, `\e[38;5;196mERROR`). They are removed
//! before the level is read and the error pattern is tried, so a coloured level reads as
//! the level it is. (What the Errors tail shows goes through the screen's own sanitizer.)

use std::borrow::Cow;

/// `text` without its escape sequences: CSI (`ESC [ … final`, and the one-character
/// CSI U+009B), OSC (`ESC ] … BEL` or `ESC ] … ESC \`), other `ESC x` pairs. Borrowed
/// when there is none (the usual case: one `memchr` for ESC, one for U+009B's lead byte).
pub(crate) fn strip_ansi(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    if memchr::memchr2(0x1b, 0xc2, bytes).is_none()
        || (memchr::memchr(0x1b, bytes).is_none() && !text.contains('\u{9b}'))
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        match c {
            '\u{1b}' => match chars.peek().map(|&(_, c)| c) {
                Some('[') => {
                    chars.next();
                    skip_csi(&mut chars);
                }
                Some(']') => {
                    chars.next();
                    // OSC: to BEL or ST (ESC \).
                    while let Some((_, c)) = chars.next() {
                        if c == '\u{7}' {
                            break;
                        }
                        if c == '\u{1b}' {
                            if chars.peek().map(|&(_, c)| c) == Some('\\') {
                                chars.next();
                            }
                            break;
                        }
                    }
                }
                // A two-character sequence (ESC ( B, ESC 7, ...): drop the next one too.
                Some(_) => {
                    chars.next();
                }
                None => {}
            },
            '\u{9b}' => skip_csi(&mut chars),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Parameters and intermediates (0x20–0x3F), then the final character (0x40–0x7E).
fn skip_csi(chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>) {
    for (_, c) in chars.by_ref() {
        if ('\u{40}'..='\u{7e}').contains(&c) {
            return;
        }
        if !(' '..='?').contains(&c) {
            // Not a CSI after all: stop at what does not belong to one.
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_and_titles_go_text_stays() {
        let cases = [
            ("\x1b[31mERROR\x1b[0m db down", "ERROR db down"),
            ("\x1b[1;31mERROR db down", "ERROR db down"),
            ("\x1b[38;5;196mERROR\x1b[39m db down", "ERROR db down"),
            ("\x1b[38;2;255;0;0mERROR\x1b[m x", "ERROR x"),
            ("\x1b]0;title\x07ERROR x", "ERROR x"),
            ("\x1b]8;;http://a\x1b\\link\x1b]8;;\x1b\\ x", "link x"),
            ("\u{9b}31mERROR x", "ERROR x"),
            ("plain ümlaut ÉRROR", "plain ümlaut ÉRROR"),
            ("ends in \x1b", "ends in "),
        ];
        for (raw, want) in cases {
            assert_eq!(strip_ansi(raw), want, "{raw:?}");
        }
        assert!(matches!(strip_ansi("no escape, Ünïcode"), Cow::Borrowed(_)));
    }
}
