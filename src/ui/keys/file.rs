//! The user's keymap file: one `[keys]` table of `action = "key"` or
//! `action = ["key", "key"]` lines, read from `<config dir>/watchpost/keys.toml` or the file
//! of `--keys`. The keys given replace the action's built-in ones. Every problem (an
//! unknown action, a key that does not parse, a key that would do two things) is reported
//! with its line and column, as the config's are, before the terminal is touched.

use super::{Clash, Key, Keymap};
use crate::config::validate::{Locator, Problem, nearest};
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue};

/// Where the keymap file is read from when `--keys` does not name one.
pub fn default_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("watchpost").join("keys.toml"))
}

/// A keymap file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeymapError {
    #[error("{}: cannot read the keymap: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// One line per problem: `FILE: line L, column C: …`.
    #[error("{}", render(.path, .problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

fn render(path: &Path, problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{}: {p}", path.display()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// An action the file rebinds: its keys, each with where it is written.
struct Entry {
    name: &'static str,
    keys: Vec<(Key, Range<usize>)>,
}

impl Keymap {
    /// The keymap in effect: the built-in one with `path` (`--keys`) applied, else with
    /// the default file ([`default_path`]) when there is one. A `--keys` file that cannot
    /// be read is an error; a missing default file is not.
    pub fn load(path: Option<&Path>) -> Result<Keymap, KeymapError> {
        let (path, required) = match path {
            Some(path) => (path.to_path_buf(), true),
            None => match default_path() {
                Some(path) => (path, false),
                None => return Ok(Keymap::default()),
            },
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Keymap::default());
            }
            Err(source) => return Err(KeymapError::Read { path, source }),
        };
        Keymap::parse(&text).map_err(|problems| KeymapError::Invalid { path, problems })
    }

    /// The built-in keymap with a keymap file's text applied, or every problem in it in
    /// the order of the file.
    pub fn parse(text: &str) -> Result<Keymap, Vec<Problem>> {
        let at = Locator::new(text);
        let problem = |span: &Range<usize>, message: String| {
            let (line, column) = at.at(span.start);
            Problem {
                line,
                column,
                message,
            }
        };
        let root = DeTable::parse(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            vec![problem(
                &span,
                format!("TOML syntax: {}", e.message().trim()),
            )]
        })?;
        let mut keymap = Keymap::default();
        let names = keymap.rebindable_names();
        let mut problems = Vec::new();
        let mut entries: Vec<Entry> = Vec::new();
        for (key, value) in root.get_ref().iter() {
            if key.get_ref() != "keys" {
                problems.push(problem(
                    &key.span(),
                    format!(
                        "unknown table `{}`: a keymap file has one table, [keys]",
                        key.get_ref()
                    ),
                ));
                continue;
            }
            let DeValue::Table(table) = value.get_ref() else {
                problems.push(problem(
                    &value.span(),
                    "`keys` must be a table: [keys] and then action = \"key\" lines".into(),
                ));
                continue;
            };
            for (action, value) in table.iter() {
                let written = action.get_ref().as_ref();
                let Some(name) = names.iter().copied().find(|n| *n == written) else {
                    problems.push(problem(&action.span(), unknown_action(written, &names)));
                    continue;
                };
                let spellings: Vec<(&str, Range<usize>)> = match value.get_ref() {
                    DeValue::String(key) => vec![(key.as_ref(), value.span())],
                    DeValue::Array(items) => {
                        let mut out = Vec::new();
                        for item in items.iter() {
                            match item.get_ref() {
                                DeValue::String(key) => out.push((key.as_ref(), item.span())),
                                _ => problems.push(problem(
                                    &item.span(),
                                    format!("`{name}`: a key is a string such as \"q\""),
                                )),
                            }
                        }
                        if items.is_empty() {
                            problems.push(problem(
                                &value.span(),
                                format!("`{name}` needs at least one key"),
                            ));
                        }
                        out
                    }
                    _ => {
                        problems.push(problem(
                            &value.span(),
                            format!(
                                "`{name}` takes a key (\"q\") or a list of keys ([\"q\", \"ctrl-c\"])"
                            ),
                        ));
                        continue;
                    }
                };
                let mut keys: Vec<(Key, Range<usize>)> = Vec::new();
                for (spelled, span) in spellings {
                    match Key::parse(spelled) {
                        // The same key twice in one list is the key once.
                        Ok(key) if keys.iter().any(|(k, _)| *k == key) => {}
                        Ok(key) => keys.push((key, span)),
                        Err(why) => {
                            problems
                                .push(problem(&span, format!("{spelled:?} is not a key: {why}")));
                        }
                    }
                }
                entries.push(Entry { name, keys });
            }
        }
        for entry in entries.iter().filter(|e| !e.keys.is_empty()) {
            let keys: Vec<Key> = entry.keys.iter().map(|(k, _)| *k).collect();
            keymap.rebind(entry.name, &keys);
        }
        for clash in keymap.clashes() {
            if let Some((span, message)) = blame(&clash, &entries, &at) {
                problems.push(problem(&span, message));
            }
        }
        problems.sort();
        // A clash in two scopes is one mistake: said once, at its key.
        problems.dedup_by(|a, b| a.line == b.line && a.column == b.column);
        if problems.is_empty() {
            Ok(keymap)
        } else {
            Err(problems)
        }
    }
}

/// "unknown action `x`", with the name meant when one is close, and the names.
fn unknown_action(written: &str, names: &[&'static str]) -> String {
    let fixed = match written {
        "focus_pane" => Some("the number keys focus the panes"),
        "note_type" | "filter_type" => Some("characters typed into a prompt are text"),
        "click" | "resize" => Some("it is the mouse's or the terminal's, not a key's"),
        _ => None,
    };
    if let Some(why) = fixed {
        return format!("`{written}` cannot be rebound: {why}");
    }
    // A name the word begins, or that begins the word (`acknowledge`, `ack`), before the
    // nearest spelling.
    let meant = names
        .iter()
        .copied()
        .find(|n| n.starts_with(written) || written.starts_with(n))
        .or_else(|| nearest(written, names.iter().copied()));
    let hint = meant.map_or(String::new(), |m| format!("; did you mean `{m}`?"));
    format!(
        "unknown action `{written}`{hint} (actions: {})",
        names.join(", ")
    )
}

/// Where a clash is the file's doing, and what to say there: at the key the file gave
/// last of the two.
fn blame(clash: &Clash, entries: &[Entry], at: &Locator) -> Option<(Range<usize>, String)> {
    let given: Vec<(&Entry, &Range<usize>)> = entries
        .iter()
        .filter(|e| clash.names.contains(&e.name))
        .filter_map(|e| {
            let (_, span) = e.keys.iter().find(|(k, _)| *k == clash.key)?;
            Some((e, span))
        })
        .collect();
    let (entry, span) = given.iter().max_by_key(|(_, span)| span.start)?;
    let other = if clash.names[0] == entry.name {
        clash.names[1]
    } else {
        clash.names[0]
    };
    let key = clash.key.label(9);
    let scope = clash.when.describe();
    let message = if other.ends_with("_type") {
        format!(
            "`{key}` types text {scope}: give `{}` a key such as ctrl-s, enter or esc",
            entry.name
        )
    } else if other == "focus_pane" {
        format!(
            "`{key}` focuses pane {key} {scope}: give `{}` another key",
            entry.name
        )
    } else if let Some((_, first)) = given.iter().find(|(e, _)| e.name == other) {
        let (line, _) = at.at(first.start);
        format!("`{key}` is also given to `{other}` (line {line}), and both apply {scope}",)
    } else {
        format!(
            "`{key}` is already `{other}`'s key {scope}: give `{other}` another key too, or `{}` another one",
            entry.name
        )
    };
    Some(((*span).clone(), message))
}
