//! `${VAR}`, `${VAR:-default}` and `~` in config strings, expanded while they are read
//! (so paths and secrets can stay out of the file).

use serde::{Deserialize, Deserializer};

/// Expands one string from the environment.
pub(crate) fn expand(text: &str) -> Result<String, String> {
    shellexpand::full(text)
        // A default can start with `~` too (`${TMWS_DB:-~/.tmws/data/tmws.db}`).
        .map(|s| shellexpand::tilde(&s).into_owned())
        .map_err(|e| {
            format!(
                "{:?}: environment variable {} is not set (give a default with ${{{}:-…}})",
                text, e.var_name, e.var_name
            )
        })
}

pub(crate) fn expanded<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let text = String::deserialize(deserializer)?;
    expand(&text).map_err(serde::de::Error::custom)
}

pub(crate) fn expanded_opt<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    let text = String::deserialize(deserializer)?;
    expand(&text).map(Some).map_err(serde::de::Error::custom)
}

pub(crate) fn expanded_vec<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<String>, D::Error> {
    let items = Vec::<String>::deserialize(deserializer)?;
    items
        .iter()
        .map(|t| expand(t))
        .collect::<Result<_, _>>()
        .map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_and_home() {
        // SAFETY: tests in this module are the only readers of these variables.
        unsafe { std::env::remove_var("WATCHPOST_TEST_UNSET") };
        assert_eq!(expand("${WATCHPOST_TEST_UNSET:-/var/x}").unwrap(), "/var/x");
        assert!(expand("~/db").unwrap().starts_with('/'));
        assert!(
            expand("${WATCHPOST_TEST_UNSET:-~/x.db}")
                .unwrap()
                .starts_with('/')
        );
        let err = expand("${WATCHPOST_TEST_UNSET}").unwrap_err();
        assert!(err.contains("WATCHPOST_TEST_UNSET"), "{err}");
    }
}
