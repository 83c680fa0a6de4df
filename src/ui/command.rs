//! The `:` command line: what its text asks for ([`parse`]) and what Tab makes of it
//! ([`complete`]). The app carries a command out; nothing here acts.

use super::prompt::LineEdit;
use super::theme;
use crate::model::sanitize::sanitize;

/// What a command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Quit,
    /// `:note TEXT` keeps the note; `:note` alone opens the note prompt (as `n`).
    Note(Option<String>),
    Ack,
    Unack,
    /// `:filter REGEX` applies an Errors filter; `:filter` alone clears it.
    Filter(String),
    /// A built-in theme, by a name that exists.
    Theme(String),
}

/// What each command takes after its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Takes {
    Nothing,
    /// Text, maybe none.
    Text,
    /// A built-in theme's name.
    Theme,
}

/// The commands, in the order Tab offers them.
const COMMANDS: &[(&str, Takes)] = &[
    ("ack", Takes::Nothing),
    ("filter", Takes::Text),
    ("note", Takes::Text),
    ("q", Takes::Nothing),
    ("quit", Takes::Nothing),
    ("theme", Takes::Theme),
    ("unack", Takes::Nothing),
];

fn theme_names() -> impl Iterator<Item = &'static str> {
    theme::BUILT_IN.iter().map(|(name, _)| *name)
}

/// The command of a command line; `Ok(None)` for an empty one. The error is a sentence
/// for the footer.
pub fn parse(text: &str) -> Result<Option<Command>, String> {
    let text = text.trim();
    let (name, rest) = match text.split_once(char::is_whitespace) {
        Some((name, rest)) => (name, rest.trim()),
        None => (text, ""),
    };
    if name.is_empty() {
        return Ok(None);
    }
    let Some((name, takes)) = COMMANDS.iter().find(|(n, _)| *n == name) else {
        let name = sanitize(name);
        let known: Vec<&str> = COMMANDS.iter().map(|(n, _)| *n).collect();
        let near = known
            .iter()
            .map(|k| (strsim::levenshtein(k, &name), *k))
            .filter(|(d, _)| *d <= 2 && *d < name.chars().count())
            .min();
        return Err(match near {
            Some((_, k)) => format!("unknown command :{name}; did you mean :{k}?"),
            None => format!("unknown command :{name}; commands: {}", known.join(", ")),
        });
    };
    if *takes == Takes::Nothing && !rest.is_empty() {
        return Err(format!(":{name} takes no argument"));
    }
    let rest = rest.to_string();
    Ok(Some(match *name {
        "q" | "quit" => Command::Quit,
        "ack" => Command::Ack,
        "unack" => Command::Unack,
        "note" => Command::Note((!rest.is_empty()).then_some(rest)),
        "filter" => Command::Filter(rest),
        _ => {
            let names: Vec<&str> = theme_names().collect();
            if rest.is_empty() {
                return Err(format!(":theme needs a name: {}", names.join(", ")));
            }
            if !names.contains(&rest.as_str()) {
                return Err(format!(
                    "unknown theme {:?}; built-in themes are {}",
                    sanitize(&rest),
                    names.join(", ")
                ));
            }
            Command::Theme(rest)
        }
    }))
}

/// What the word being typed may become: command names while the first word is typed,
/// theme names after `theme `; nothing once a word is whole and alone.
pub fn candidates(text: &str) -> Vec<&'static str> {
    let text = text.trim_start();
    let out = matching(text);
    match out.as_slice() {
        [only] if text.ends_with(only) => Vec::new(),
        _ => out,
    }
}

/// The names the word being typed is the start of.
fn matching(text: &str) -> Vec<&'static str> {
    match text.split_once(' ') {
        None => COMMANDS
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| name.starts_with(text))
            .collect(),
        Some(("theme", rest)) => {
            let rest = rest.trim_start();
            theme_names().filter(|n| n.starts_with(rest)).collect()
        }
        Some(_) => Vec::new(),
    }
}

/// Tab: the word being typed completed as far as the candidates agree (a whole command
/// name gets the space before its argument). Returns whether the line changed.
pub fn complete(line: &mut LineEdit) -> bool {
    let text = line.text().trim_start().to_string();
    // What goes before the completed word, and what the command completed takes.
    let (head, takes) = match text.split_once(' ') {
        None => {
            let takes = COMMANDS
                .iter()
                .find(|(name, _)| name.starts_with(&text))
                .map(|(_, t)| *t);
            ("", takes)
        }
        Some(("theme", _)) => ("theme ", None),
        Some(_) => return false,
    };
    let offered = matching(&text);
    let Some(first) = offered.first() else {
        return false;
    };
    let mut common = first.to_string();
    for other in &offered[1..] {
        let shared = common
            .chars()
            .zip(other.chars())
            .take_while(|(a, b)| a == b)
            .count();
        common = common.chars().take(shared).collect();
    }
    let whole = offered.len() == 1;
    let mut completed = format!("{head}{common}");
    if whole && head.is_empty() && takes.is_some_and(|t| t != Takes::Nothing) {
        completed.push(' ');
    }
    if completed.chars().count() <= text.chars().count() {
        // Nothing to add: the cursor still goes to the end.
        let changed = line.cursor() != line.len();
        *line = LineEdit::new(line.text());
        return changed;
    }
    *line = LineEdit::new(&completed);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_command_is_read_with_its_argument() {
        for (text, command) in [
            ("q", Command::Quit),
            ("  quit ", Command::Quit),
            ("ack", Command::Ack),
            ("unack", Command::Unack),
            (
                "note pool raised to 40",
                Command::Note(Some("pool raised to 40".into())),
            ),
            ("note", Command::Note(None)),
            (
                "filter timeout|refused",
                Command::Filter("timeout|refused".into()),
            ),
            (
                "filter  level:warn !retry",
                Command::Filter("level:warn !retry".into()),
            ),
            ("filter", Command::Filter(String::new())),
            ("theme monochrome", Command::Theme("monochrome".into())),
            (
                "theme high-contrast",
                Command::Theme("high-contrast".into()),
            ),
        ] {
            assert_eq!(parse(text), Ok(Some(command)), "{text:?}");
        }
        assert_eq!(parse(""), Ok(None));
        assert_eq!(parse("   "), Ok(None));
    }

    #[test]
    fn an_unknown_command_or_a_bad_argument_is_a_sentence() {
        for (text, says) in [
            ("thme dark", "unknown command :thme; did you mean :theme?"),
            (
                "xyzzy",
                "unknown command :xyzzy; commands: ack, filter, note, q, quit",
            ),
            ("q now", ":q takes no argument"),
            ("ack api.up", ":ack takes no argument"),
            (
                "theme",
                ":theme needs a name: default, light, high-contrast, monochrome",
            ),
            (
                "theme solarized",
                "unknown theme \"solarized\"; built-in themes are default",
            ),
            // What was typed is sanitized before it is shown.
            ("\u{1b}[2Jboom", "unknown command :boom"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.starts_with(says), "{text:?}: {err}");
        }
    }

    fn tab(text: &str) -> String {
        let mut line = LineEdit::new(text);
        complete(&mut line);
        assert_eq!(line.cursor(), line.len(), "the cursor ends at the end");
        line.text().to_string()
    }

    #[test]
    fn tab_completes_the_command_name_and_the_theme_name() {
        assert_eq!(tab("th"), "theme ");
        assert_eq!(tab("fi"), "filter ");
        assert_eq!(tab("n"), "note ");
        assert_eq!(tab("note"), "note ");
        assert_eq!(tab("ack"), "ack");
        assert_eq!(tab("un"), "unack");
        assert_eq!(tab("a"), "ack");
        // Several candidates: as far as they agree.
        assert_eq!(tab("qu"), "quit");
        assert_eq!(tab("q"), "q");
        assert_eq!(tab(""), "");
        assert_eq!(tab("theme m"), "theme monochrome");
        assert_eq!(tab("theme h"), "theme high-contrast");
        assert_eq!(tab("theme "), "theme ");
        assert_eq!(tab("theme zz"), "theme zz");
        // Nothing to complete in a filter's regex or an unknown word.
        assert_eq!(tab("filter ti"), "filter ti");
        assert_eq!(tab("zz"), "zz");
        // What Tab would choose among is offered while typing.
        assert_eq!(candidates("t"), ["theme"]);
        assert_eq!(candidates("q"), ["q", "quit"]);
        assert_eq!(
            candidates("theme "),
            ["default", "light", "high-contrast", "monochrome"]
        );
        assert_eq!(candidates("theme l"), ["light"]);
        assert!(candidates("theme light").is_empty());
        assert!(candidates("ack").is_empty());
        assert!(candidates("filter x").is_empty());
    }
}
