//! The sanitizer against hostile terminal input: nothing that a terminal would act on
//! may survive, and nothing may panic.

use proptest::prelude::*;
use ratatui::style::{Color, Style};
use unicode_width::UnicodeWidthChar;
use watchpost::model::sanitize::{sanitize, sanitize_bytes, sanitize_styled, sanitize_truncated};

/// What no sanitized text may contain: ESC, BEL, any other C0 control, DEL, C1 controls,
/// bidi overrides/isolates and zero-width characters.
fn assert_inert(out: &str) {
    for c in out.chars() {
        let code = c as u32;
        assert!(code >= 0x20, "C0 control {code:#x} in {out:?}");
        assert!(code != 0x7f, "DEL in {out:?}");
        assert!(
            !(0x80..=0x9f).contains(&code),
            "C1 control {code:#x} in {out:?}"
        );
        assert!(
            !(0x202a..=0x202e).contains(&code),
            "bidi override {code:#x} in {out:?}"
        );
        assert!(
            !(0x2066..=0x2069).contains(&code),
            "bidi isolate {code:#x} in {out:?}"
        );
        assert!(
            !matches!(code, 0x200b..=0x200f | 0xfeff | 0x2060),
            "zero-width {code:#x} in {out:?}"
        );
    }
}

fn columns(text: &str) -> usize {
    text.chars().map(|c| c.width().unwrap_or(0)).sum()
}

/// Hostile inputs with what must remain of them.
const CASES: &[(&str, &str)] = &[
    ("\x1b]0;pwned title\x07after", "after"),
    ("\x1b]2;pwned title\x1b\\after", "after"),
    (
        "\x1b]8;;https://evil.example/\x1b\\click me\x1b]8;;\x1b\\",
        "click me",
    ),
    ("\x1b]8;id=1;file:///etc/passwd\x07link\x1b]8;;\x07", "link"),
    ("\x1b]52;c;Y3VybCBldmlsIHwgc2g=\x07copied?", "copied?"),
    ("\x1b]52;p;?\x1b\\query", "query"),
    ("\x1b[2Jscreen", "screen"),
    ("\x1b[3J\x1b[Hhome", "home"),
    ("up\x1b[5Adown\x1b[5B", "updown"),
    ("\x1b[10;10Hmoved\x1b[s\x1b[u", "moved"),
    ("\x1b[?1049halt screen\x1b[?1049l", "alt screen"),
    ("\x1b[?1000h\x1b[?1006hmouse", "mouse"),
    ("\x1b[?25lhidden cursor", "hidden cursor"),
    ("\x1b[6n\x1b[21tqueries", "queries"),
    ("\x1b[31;1mred bold\x1b[0m", "red bold"),
    ("bell\x07 bs\x08 del\x7f end", "bell bs del end"),
    // ESC takes the next byte with it (here: ESC SP F, a charset switch), as a terminal would.
    ("esc\x1b F gone", "esc gone"),
    ("nul\x00 so\x0e si\x0f can\x18 sub\x1a", "nul so si can sub"),
    ("lone escape at end\x1b", "lone escape at end"),
    ("\x1bPq#0;2;0;0;0#1!\x1b\\sixel", "sixel"),
    ("\x1b_Ga=T,f=100;AAAA\x1b\\kitty", "kitty"),
    ("\x1b^pm\x1b\\\x1bXsos\x1b\\text", "text"),
    ("\u{9b}2J8-bit csi", "8-bit csi"),
    ("\u{9b}?1049h8-bit mode", "8-bit mode"),
    ("\u{9d}0;title\u{9c}8-bit osc", "8-bit osc"),
    ("\u{90}dcs\u{9c}8-bit dcs", "8-bit dcs"),
    ("c1\u{84}\u{88}\u{8d}\u{8e}\u{8f}\u{9a} gone", "c1 gone"),
    ("a\u{202e}gnp.exe", "agnp.exe"),
    ("\u{2067}rtl\u{2069}", "rtl"),
    ("pay\u{200b}pal", "paypal"),
    ("tab\there", "tab     here"),
    ("multi\nline\r\nentry", "multi line entry"),
    ("wide 日本語 and 🙂 stay", "wide 日本語 and 🙂 stay"),
];

#[test]
fn hostile_sequences_do_not_survive() {
    for (input, expected) in CASES {
        let out = sanitize(input);
        assert_inert(&out);
        assert_eq!(&out, expected, "input {input:?}");
        assert_eq!(
            &sanitize_bytes(input.as_bytes()),
            expected,
            "bytes of {input:?}"
        );
        let styled: String = sanitize_styled(input, Style::default())
            .spans
            .iter()
            .map(|s| s.content.as_ref())
            .collect();
        assert_eq!(&styled, expected, "styled {input:?}");
    }
}

#[test]
fn invalid_utf8_is_replaced_not_dropped_or_passed() {
    let out = sanitize_bytes(b"start \xff\xc0\x80 \x1b[2J\xe2\x82 end \x9b31m");
    assert_inert(&out);
    assert!(out.starts_with("start \u{fffd}"), "{out:?}");
    assert!(out.contains(" end "), "{out:?}");
    assert!(!out.contains("[2J"), "{out:?}");
}

#[test]
fn styled_keeps_colour_and_nothing_else() {
    let base = Style::default().fg(Color::White);
    let line = sanitize_styled("\x1b]0;t\x07ok \x1b[32mgreen\x1b[39m \x1b[2Jplain", base);
    let parts: Vec<(&str, Style)> = line
        .spans
        .iter()
        .map(|s| (s.content.as_ref(), s.style))
        .collect();
    assert_eq!(
        parts,
        vec![
            ("ok ", base),
            ("green", base.fg(Color::Green)),
            (" plain", base)
        ]
    );
}

#[test]
fn truncated_megabyte_line_is_cheap_and_marked() {
    let line = "E".repeat(1 << 20);
    let started = std::time::Instant::now();
    let out = sanitize_truncated(&line, 300);
    assert!(
        started.elapsed() < std::time::Duration::from_millis(250),
        "took {:?}",
        started.elapsed()
    );
    assert!(columns(&out) <= 300);
    let shown = out.chars().take_while(|c| *c == 'E').count();
    assert!(shown > 250, "{shown}");
    assert_eq!(
        out,
        format!("{}… [+{} bytes]", "E".repeat(shown), line.len() - shown)
    );
}

/// Fragments that make parsers stumble, mixed with text.
fn hostile_fragment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "\x1b", "[", "]", "P", "X", "^", "_", "\\", "\x07", ";", ":", "?", ">", "0", "1", "2", "5",
        "8", "38", "52", "m", "H", "J", "h", "l", "c", "\x1b[", "\x1b]", "\x1b\\", "\u{9b}",
        "\u{9c}", "\u{9d}", "\u{90}", "\u{85}", "\u{9f}", "\x18", "\x1a", "\x7f", "\x00", "\x08",
        "\t", "\n", "\r", "\u{202e}", "\u{2066}", "\u{200b}", "\u{feff}", "a", "word ", "日本",
        "🙂", "é", "\u{301}",
    ])
}

fn hostile_text() -> impl Strategy<Value = String> {
    prop::collection::vec(hostile_fragment(), 0..64).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_come_out_inert(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let out = sanitize_bytes(&bytes);
        assert_inert(&out);
        prop_assert_eq!(sanitize(&out), out);
    }

    #[test]
    fn arbitrary_strings_come_out_inert(text in any::<String>()) {
        let out = sanitize(&text);
        assert_inert(&out);
        prop_assert_eq!(sanitize(&out), out.clone());
        prop_assert_eq!(sanitize_bytes(text.as_bytes()), out);
    }

    #[test]
    fn hostile_mixes_come_out_inert(text in hostile_text()) {
        let out = sanitize(&text);
        assert_inert(&out);
        prop_assert_eq!(sanitize(&out), out.clone());
        let styled: String = sanitize_styled(&text, Style::default()).spans.iter().map(|s| s.content.as_ref()).collect();
        prop_assert_eq!(styled, out);
    }

    #[test]
    fn truncated_fits_and_is_a_prefix(text in hostile_text(), max in 0usize..60) {
        let full = sanitize(&text);
        let out = sanitize_truncated(&text, max);
        assert_inert(&out);
        prop_assert!(columns(&out) <= max, "{:?} is wider than {}", out, max);
        if max == 0 {
            prop_assert_eq!(out, "");
        } else if columns(&full) <= max {
            prop_assert_eq!(out, full);
        } else {
            let shown = out.split('…').next().unwrap_or("");
            prop_assert!(out.len() > shown.len(), "no ellipsis in {:?}", out);
            prop_assert!(full.starts_with(shown), "{:?} is not a prefix of {:?}", shown, full);
        }
    }
}
