//! Semantic theme roles. Panes ask for a role (`theme.severity(Crit)`, `theme.block_border(focused)`),
//! never for a raw colour. Built-in themes are TOML files embedded in the binary; a user file
//! `<config dir>/watchpost/themes/NAME.toml` overrides single fields of the theme it names.

use crate::model::figure::Severity;
use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;

/// Built-in themes, embedded.
pub(crate) const BUILT_IN: &[(&str, &str)] = &[
    ("default", include_str!("../../themes/default.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
    ("monochrome", include_str!("../../themes/monochrome.toml")),
];

/// One role's style as written in a theme file.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct StyleSpec {
    pub fg: Option<String>,
    pub bg: Option<String>,
    #[serde(default)]
    pub modifiers: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    /// A user theme names the theme it overrides.
    extends: Option<String>,
    #[serde(default)]
    roles: BTreeMap<String, StyleSpec>,
    #[serde(default)]
    sources: Vec<String>,
}

/// The roles every pane draws with.
#[derive(Clone, Debug, PartialEq)]
pub struct Theme {
    pub name: String,
    pub ok: Style,
    pub warn: Style,
    pub crit: Style,
    pub unknown: Style,
    pub border: Style,
    pub border_focused: Style,
    pub title: Style,
    pub text: Style,
    pub muted: Style,
    pub selection: Style,
    pub accent: Style,
    pub header: Style,
    /// Stable colours for log sources, by index.
    pub sources: Vec<Style>,
}

pub(crate) const ROLE_NAMES: &[&str] = &[
    "ok",
    "warn",
    "crit",
    "unknown",
    "border",
    "border_focused",
    "title",
    "text",
    "muted",
    "selection",
    "accent",
    "header",
];

impl Theme {
    /// A built-in theme by name, with the user's overrides applied if a file exists.
    pub fn load(name: &str) -> Result<Theme, String> {
        let user_file = user_theme_path(name);
        let user = match &user_file {
            Some(path) if path.exists() => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                Some(
                    toml::from_str::<ThemeFile>(&text)
                        .map_err(|e| format!("{}: {e}", path.display()))?,
                )
            }
            _ => None,
        };
        let base_name = match (&user, BUILT_IN.iter().any(|(n, _)| *n == name)) {
            (_, true) => name.to_string(),
            (Some(user), false) => user.extends.clone().unwrap_or_else(|| "default".into()),
            (None, false) => {
                let names: Vec<&str> = BUILT_IN.iter().map(|(n, _)| *n).collect();
                return Err(format!(
                    "unknown theme {name:?}; built-in themes are {}",
                    names.join(", ")
                ));
            }
        };
        let mut theme = Theme::built_in(&base_name)?;
        theme.name = name.to_string();
        if let Some(user) = user {
            theme
                .apply(&user)
                .map_err(|e| format!("theme {name:?}: {e}"))?;
        }
        Ok(theme)
    }

    pub fn built_in(name: &str) -> Result<Theme, String> {
        let text = BUILT_IN
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| *t)
            .ok_or_else(|| format!("unknown theme {name:?}"))?;
        let file: ThemeFile =
            toml::from_str(text).map_err(|e| format!("built-in theme {name}: {e}"))?;
        let mut theme = Theme::blank(name);
        theme.apply(&file)?;
        Ok(theme)
    }

    fn blank(name: &str) -> Theme {
        Theme {
            name: name.into(),
            ok: Style::default(),
            warn: Style::default(),
            crit: Style::default(),
            unknown: Style::default(),
            border: Style::default(),
            border_focused: Style::default(),
            title: Style::default(),
            text: Style::default(),
            muted: Style::default(),
            selection: Style::default(),
            accent: Style::default(),
            header: Style::default(),
            sources: Vec::new(),
        }
    }

    fn apply(&mut self, file: &ThemeFile) -> Result<(), String> {
        for (role, spec) in &file.roles {
            let style = parse_style(spec).map_err(|e| format!("role {role}: {e}"))?;
            let slot = match role.as_str() {
                "ok" => &mut self.ok,
                "warn" => &mut self.warn,
                "crit" => &mut self.crit,
                "unknown" => &mut self.unknown,
                "border" => &mut self.border,
                "border_focused" => &mut self.border_focused,
                "title" => &mut self.title,
                "text" => &mut self.text,
                "muted" => &mut self.muted,
                "selection" => &mut self.selection,
                "accent" => &mut self.accent,
                "header" => &mut self.header,
                other => {
                    return Err(format!(
                        "unknown role {other:?}; roles are {}",
                        ROLE_NAMES.join(", ")
                    ));
                }
            };
            *slot = style;
        }
        if !file.sources.is_empty() {
            self.sources = file
                .sources
                .iter()
                .map(|c| parse_color(c).map(|c| Style::default().fg(c)))
                .collect::<Result<_, _>>()?;
        }
        Ok(())
    }

    /// Text a filter matched: the accent, bold and underlined, so it shows inside a
    /// reversed selection and without colour (monochrome) too.
    pub fn highlight(&self) -> Style {
        self.accent
            .add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
    }

    /// The style of a severity. Severity is also always shown by a symbol or label,
    /// so it survives monochrome terminals.
    pub fn severity(&self, severity: Severity) -> Style {
        match severity {
            Severity::Ok => self.ok,
            Severity::Warn => self.warn,
            Severity::Crit => self.crit,
            Severity::Unknown => self.unknown,
        }
    }

    pub(crate) fn block_border(&self, focused: bool) -> Style {
        if focused {
            self.border_focused
        } else {
            self.border
        }
    }

    /// A stable colour for a named source (same name, same colour, every run).
    pub fn source(&self, name: &str) -> Style {
        if self.sources.is_empty() {
            return self.text;
        }
        let hash = name
            .bytes()
            .fold(5381u32, |h, b| h.wrapping_mul(33) ^ u32::from(b));
        self.sources[hash as usize % self.sources.len()]
    }
}

fn user_theme_path(name: &str) -> Option<PathBuf> {
    dirs::config_dir().map(|d| {
        d.join("watchpost")
            .join("themes")
            .join(format!("{name}.toml"))
    })
}

fn parse_style(spec: &StyleSpec) -> Result<Style, String> {
    let mut style = Style::default();
    if let Some(fg) = &spec.fg {
        style = style.fg(parse_color(fg)?);
    }
    if let Some(bg) = &spec.bg {
        style = style.bg(parse_color(bg)?);
    }
    for m in &spec.modifiers {
        style = style.add_modifier(match m.to_ascii_lowercase().as_str() {
            "bold" => Modifier::BOLD,
            "dim" => Modifier::DIM,
            "italic" => Modifier::ITALIC,
            "underlined" | "underline" => Modifier::UNDERLINED,
            "reversed" | "reverse" => Modifier::REVERSED,
            "slow_blink" | "blink" => Modifier::SLOW_BLINK,
            other => return Err(format!("unknown modifier {other:?}")),
        });
    }
    Ok(style)
}

fn parse_color(text: &str) -> Result<Color, String> {
    Color::from_str(text).map_err(|_| {
        format!("unknown colour {text:?} (use a named ANSI colour, an index or #rrggbb)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_theme_loads() {
        for (name, _) in BUILT_IN {
            let theme = Theme::built_in(name).unwrap();
            assert_ne!(
                theme.selection,
                Style::default(),
                "{name}: selection must be visible"
            );
        }
    }

    #[test]
    fn monochrome_has_no_colour() {
        let theme = Theme::built_in("monochrome").unwrap();
        for style in [
            theme.ok,
            theme.warn,
            theme.crit,
            theme.unknown,
            theme.border_focused,
            theme.selection,
        ] {
            assert_eq!(style.fg, None);
            assert_eq!(style.bg, None);
        }
    }

    #[test]
    fn unknown_theme_lists_the_choices() {
        let err = Theme::load("no-such-theme").unwrap_err();
        assert!(err.contains("high-contrast"), "{err}");
    }
}
