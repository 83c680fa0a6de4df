//! Reading one figure from what a command printed: a `regex` capture, a `field` of
//! `key: value` / `key=value` lines or a dotted path into JSON, or, with neither, the exit
//! code. Shared by `[[docker.S.exec]]` and `[command.NAME]`.

use crate::model::figure::Reading;

/// How a command ended, before it is read into a figure.
pub(crate) struct Ran<'a> {
    pub stdout: &'a str,
    pub stderr: &'a str,
    /// `None` when no exit code is known (killed by a signal, or the engine gave none).
    pub exit: Option<i64>,
}

/// What to read from the output, and the unit of a number.
pub(crate) struct Extraction<'a> {
    pub regex: Option<&'a str>,
    pub field: Option<&'a str>,
    pub unit: &'a str,
}

impl Extraction<'_> {
    fn extracting(&self) -> bool {
        self.regex.is_some() || self.field.is_some()
    }
}

/// The figure `id` from a finished run, with `detail` (where it ran) on it; `Err` says
/// why there is none (the caller puts the command in front).
pub(crate) fn read(
    id: String,
    name: String,
    how: &Extraction<'_>,
    ran: &Ran<'_>,
    detail: &str,
) -> Result<Reading, String> {
    if !how.extracting() {
        return match ran.exit {
            Some(code) => Ok(Reading::number(id, name, code as f64, how.unit)
                .with_detail(format!("exit code, {detail}: {}", first_line(ran.stdout)))),
            None => Err(format!("{detail}: no exit code")),
        };
    }
    if let Some(code) = ran.exit.filter(|c| *c != 0) {
        let why = first_line(if ran.stderr.trim().is_empty() {
            ran.stdout
        } else {
            ran.stderr
        });
        return Err(format!("{detail}: exit code {code}: {why}"));
    }
    let value = match (how.regex, how.field) {
        (Some(pattern), _) => match regex::Regex::new(pattern) {
            Err(e) => Err(format!("regex {pattern:?}: {e}")),
            Ok(re) => re
                .captures(ran.stdout)
                .map(|c| {
                    c.get(1)
                        .or_else(|| c.get(0))
                        .map_or(String::new(), |m| m.as_str().to_string())
                })
                .ok_or_else(|| {
                    format!(
                        "no match of /{pattern}/ in what it printed: {}",
                        first_line(ran.stdout)
                    )
                }),
        },
        (None, Some(field)) => field_value(ran.stdout, field).ok_or_else(|| {
            format!(
                "no field {field:?} in what it printed: {}",
                first_line(ran.stdout)
            )
        }),
        (None, None) => Err("nothing to read".into()),
    };
    match value {
        Ok(text) => Ok(match text.trim().parse::<f64>() {
            Ok(n) if n.is_finite() => Reading::number(id, name, n, how.unit),
            _ => Reading::text(id, name, text.trim()),
        }
        .with_detail(detail.to_string())),
        Err(e) => Err(format!("{detail}: {e}")),
    }
}

/// The value of `field` in a command's output: a dotted path into JSON (`stats.hits`,
/// `items.0.count`), or the first `field: value` / `field=value` line (`key:value` as
/// `redis-cli info` prints, `KEY=value` as an env dump).
pub fn field_value(output: &str, field: &str) -> Option<String> {
    let trimmed = output.trim_start();
    if (trimmed.starts_with('{') || trimmed.starts_with('['))
        && let Ok(json) = serde_json::from_str::<serde_json::Value>(trimmed)
    {
        let mut at = &json;
        for part in field.split('.') {
            at = match at {
                serde_json::Value::Object(map) => map.get(part)?,
                serde_json::Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        return Some(match at {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        });
    }
    output.lines().find_map(|line| {
        let line = line.trim();
        let (key, value) = line
            .split_once(':')
            .filter(|(k, _)| !k.contains('='))
            .or_else(|| line.split_once('='))?;
        (key.trim() == field).then(|| value.trim().to_string())
    })
}

/// The first non-blank line of `text`, shortened for a pane.
pub(crate) fn first_line(text: &str) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let line = line.trim();
    if line.is_empty() {
        "(nothing)".into()
    } else if line.chars().count() > 120 {
        format!("{}…", line.chars().take(120).collect::<String>())
    } else {
        line.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_key_value_lines_and_json() {
        let info = "# Stats\r\nkeyspace_hits:42\r\nkeyspace_misses:8\r\n";
        assert_eq!(field_value(info, "keyspace_misses").as_deref(), Some("8"));
        assert_eq!(field_value("A=1\nB = two\n", "B").as_deref(), Some("two"));
        let json = r#"{"stats": {"hits": 7, "name": "x"}, "list": [{"n": 3}]}"#;
        assert_eq!(field_value(json, "stats.hits").as_deref(), Some("7"));
        assert_eq!(field_value(json, "stats.name").as_deref(), Some("x"));
        assert_eq!(field_value(json, "list.0.n").as_deref(), Some("3"));
        assert_eq!(field_value(json, "stats.none"), None);
        assert_eq!(
            field_value("url=http://x:1\n", "url").as_deref(),
            Some("http://x:1")
        );
    }

    #[test]
    fn a_nonzero_exit_is_an_error_unless_the_exit_code_is_the_figure() {
        let ran = Ran {
            stdout: "count: 3\n",
            stderr: "refused\n",
            exit: Some(2),
        };
        let field = Extraction {
            regex: None,
            field: Some("count"),
            unit: "",
        };
        let err = read("s.x".into(), "x".into(), &field, &ran, "on local").unwrap_err();
        assert!(err.contains("exit code 2: refused"), "{err}");
        let exit = Extraction {
            regex: None,
            field: None,
            unit: "",
        };
        let reading = read("s.x".into(), "x".into(), &exit, &ran, "on local");
        assert!(reading.is_ok());
    }
}
