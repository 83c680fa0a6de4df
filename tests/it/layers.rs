//! The one-way flow of the README, held against the code: every `crate::` path in non-test
//! code of `src/` names a top-level module, and a module may only name those below it in
//! [`LAYERS`]. A circle between two modules is impossible then, and the test says which
//! file broke the order, with the line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lowest first: each top-level module of `src/` may import only the ones before it.
/// `main.rs` and `lib.rs` are the wiring and import anything.
const LAYERS: &[&str] = &[
    // The shared vocabulary: figures, severities, rules as written, updates, the sanitizer.
    "model",
    // Judging figures over time: alert phases, storm control, silences.
    "rules",
    // The TOML model and its validation.
    "config",
    // Where commands and files are reached: local, SSH.
    "transport",
    // The sources: one module per kind.
    "collect",
    // What is known now, and its bounded history.
    "state",
    // The window's own record and its report.
    "record",
    // Panes, layout, theme, keys.
    "ui",
    "tui",
    "runtime",
    "demo",
    // The top: wiring only.
    "app",
    "check",
    "cli",
];

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|m| *m == module)
}

/// Source text with comments, string and char literals blanked and `#[cfg(test)]` items
/// removed, so only code that ships is read. Line breaks are kept for line numbers.
fn shipped_code(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |out: &mut String, s: &[u8]| {
        for &b in s {
            out.push(if b == b'\n' { '\n' } else { ' ' });
        }
    };
    while i < bytes.len() {
        let rest = &bytes[i..];
        if rest.starts_with(b"//") {
            let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            blank(&mut out, &rest[..end]);
            i += end;
        } else if rest.starts_with(b"/*") {
            let end = find(rest, b"*/").map_or(rest.len(), |e| e + 2);
            blank(&mut out, &rest[..end]);
            i += end;
        } else if rest.starts_with(b"r#") || rest.starts_with(b"r\"") {
            let hashes = rest[1..].iter().take_while(|&&b| b == b'#').count();
            if rest.get(1 + hashes) != Some(&b'"') {
                out.push('r');
                i += 1;
                continue;
            }
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            let body = 2 + hashes;
            let end = find(&rest[body..], &close).map_or(rest.len(), |e| body + e + close.len());
            blank(&mut out, &rest[..end]);
            i += end;
        } else if rest[0] == b'"' {
            let mut j = 1;
            while j < rest.len() && rest[j] != b'"' {
                j += if rest[j] == b'\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(rest.len());
            blank(&mut out, &rest[..end]);
            i += end;
        } else if rest[0] == b'\'' {
            // A char literal ('x', '\n', '"'); anything else is a lifetime.
            let len = if rest.get(1) == Some(&b'\\') {
                rest.iter().skip(2).position(|&b| b == b'\'').map(|p| p + 3)
            } else {
                let ch = text[i + 1..].chars().next().map_or(1, char::len_utf8);
                (rest.get(1 + ch) == Some(&b'\'')).then_some(ch + 2)
            };
            match len {
                Some(len) => {
                    blank(&mut out, &rest[..len]);
                    i += len;
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else if rest.starts_with(b"#[cfg(test)]") {
            let end = item_end(rest);
            blank(&mut out, &rest[..end]);
            i += end;
        } else {
            let ch = text[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The length of the item an attribute stands on: to its `;` or its closing brace.
fn item_end(rest: &[u8]) -> usize {
    let mut depth = 0usize;
    for (j, &b) in rest.iter().enumerate() {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return j + 1;
                }
            }
            b';' if depth == 0 => return j + 1,
            _ => {}
        }
    }
    rest.len()
}

/// The top-level modules a piece of shipped code names through `crate::`, with the line.
fn named_modules(code: &str, file_is_top: bool) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    for (number, line) in code.lines().enumerate() {
        let mut heads: Vec<&str> = Vec::new();
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().last();
            let after = &rest[at + "crate::".len()..];
            rest = after;
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                continue;
            }
            heads.push(after);
        }
        // `super::` in src/x.rs or src/x/mod.rs is the crate itself.
        if file_is_top {
            let mut rest = line;
            while let Some(at) = rest.find("super::") {
                rest = &rest[at + "super::".len()..];
                heads.push(rest);
            }
        }
        for head in heads {
            if let Some(group) = head.strip_prefix('{') {
                // `crate::{a, b::c}`: the first word of each part, until the group closes.
                let group = group.split('}').next().unwrap_or("");
                for part in group.split(',') {
                    found.push((first_word(part), number + 1));
                }
            } else {
                found.push((first_word(head), number + 1));
            }
        }
    }
    found.retain(|(m, _)| !m.is_empty() && m != "self");
    found
}

fn first_word(text: &str) -> String {
    text.trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// (from, to) → the first place that makes the edge.
fn edges(src: &Path) -> BTreeMap<(String, String), String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut edges = BTreeMap::new();
    for path in files {
        let rel = path.strip_prefix(src).unwrap();
        let parts: Vec<String> = rel
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let from = parts[0].trim_end_matches(".rs").to_string();
        if from == "main" || from == "lib" {
            continue;
        }
        let file_is_top = parts.len() == 1 || (parts.len() == 2 && parts[1] == "mod.rs");
        let text = std::fs::read_to_string(&path).unwrap();
        for (to, line) in named_modules(&shipped_code(&text), file_is_top) {
            if to != from {
                edges
                    .entry((from.clone(), to))
                    .or_insert_with(|| format!("{}:{line}", rel.display()));
            }
        }
    }
    edges
}

#[test]
fn every_top_level_module_is_in_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules = BTreeSet::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let name = name.trim_end_matches(".rs").to_string();
        if name != "main" && name != "lib" {
            modules.insert(name);
        }
    }
    let missing: Vec<_> = modules.iter().filter(|m| rank(m).is_none()).collect();
    assert!(
        missing.is_empty(),
        "src/ has modules with no place in LAYERS (tests/it/layers.rs): {missing:?}"
    );
}

#[test]
fn imports_flow_one_way_down_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let upward: Vec<String> = edges(&src)
        .into_iter()
        .filter(|((from, to), _)| match (rank(from), rank(to)) {
            (Some(f), Some(t)) => t > f,
            _ => false,
        })
        .map(|((from, to), at)| format!("{from} -> {to} ({at})"))
        .collect();
    assert!(
        upward.is_empty(),
        "these imports go up the layers (order in tests/it/layers.rs, lowest first: {}):\n{}",
        LAYERS.join(" < "),
        upward.join("\n")
    );
}

#[test]
fn the_reader_sees_imports_and_skips_tests_comments_and_strings() {
    let code = r##"
use crate::model::figure::Reading;
use crate::{config::Config, state};
// use crate::ui::nothing;
/* crate::app */
const S: &str = "crate::check";
const R: &str = r#"crate::cli "quoted" "#;
fn f<'a>(x: &'a str) -> char { let _ = crate::transport::X; '"' }
#[cfg(test)]
mod tests {
    use crate::demo::Y;
}
#[cfg(test)]
fn helper() { crate::tui::z() }
fn after() { crate::rules::judge() }
"##;
    let found: Vec<String> = named_modules(&shipped_code(code), false)
        .into_iter()
        .map(|(m, _)| m)
        .collect();
    assert_eq!(
        found,
        ["model", "config", "state", "transport", "rules"].map(String::from)
    );
    // super:: at the top of a module is the crate.
    let found = named_modules(&shipped_code("use super::ui::Theme;"), true);
    assert_eq!(found, [("ui".to_string(), 1)]);
}
