//! Checks a config file's text against what watchpost understands and reports *every*
//! problem with its line and column: TOML syntax, unknown keys (with the nearest valid one),
//! values of the wrong type, durations and thresholds that do not parse, unset environment
//! variables, hosts and sources that are not defined, rules for figures that do not exist.
//!
//! serde stops at the first error, so the walk here goes over the spanned TOML tree itself;
//! the model is deserialized only once this finds nothing (a unit test keeps the key lists
//! here and the serde model in step).

use super::expand::expand;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One problem in a config file.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

/// Byte offsets to line and column (both from 1, columns in characters).
pub(crate) struct Locator<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> Locator<'a> {
    pub fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Locator { text, starts }
    }

    pub fn at(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|s| *s <= offset) - 1;
        let start = self.starts[line];
        let column = self
            .text
            .get(start..offset)
            .map_or(1, |s| s.chars().count() + 1);
        (line + 1, column)
    }
}

/// The shortest `interval` of any source.
pub(crate) const MIN_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);
/// The longest duration any key takes: a window, an interval or a `for` beyond a year is a
/// typo, and would overflow the clock arithmetic of windows and alerts.
pub(crate) const MAX_DURATION: std::time::Duration =
    std::time::Duration::from_secs(366 * 24 * 3600);

/// What a key's value must be.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    /// A string; `${VAR}`, `${VAR:-default}` and `~` are expanded.
    Text,
    /// A string taken as written (SQL, rule texts).
    Verbatim,
    /// A duration such as "5s" or "24h".
    Duration,
    /// A size such as "512MiB" or "64 MB".
    Bytes,
    /// A threshold such as "> 20".
    Threshold,
    /// P0, P1, P2 or P3.
    Priority,
    /// One of a few words.
    OneOf(&'static [&'static str]),
    /// "local", "ssh://…" or a name under `[hosts]` (expanded).
    Host,
    /// A list of strings (expanded).
    TextList,
    /// A regular expression (expanded).
    Regex,
    /// "now" or an RFC 3339 time (expanded).
    Start,
    /// A figure id part: letters, digits, `_`, `-`, `.`.
    Ident,
    /// `[[sqlite.NAME.metric]]` tables.
    Metrics,
    /// A structured value (tables, lists, numbers) whose shape serde checks when the
    /// config is read; its errors carry the line too.
    Structured,
    /// The name of an environment variable (not its value: secrets stay out of the file).
    EnvName,
    /// A secret that must come from the environment (`"${PROM_TOKEN}"`), never written out.
    Secret,
    /// An http:// or https:// URL (expanded).
    Url,
    /// true or false.
    Bool,
    /// `[[prometheus.NAME.figure]]` tables.
    PromFigures,
    /// `[[redis.NAME.metric]]` tables.
    RedisMetrics,
    /// `[[docker.NAME.exec]]` tables.
    DockerExecs,
    /// A `redis://` URL (expanded); a password in it must come from the environment.
    RedisUrl,
    /// A `postgres://` URL or `key=value` string (expanded); a password in it must come
    /// from the environment.
    PostgresUrl,
    /// `host:port` (expanded).
    Address,
}

pub struct Field {
    pub key: &'static str,
    pub kind: Kind,
    pub required: bool,
}

const fn f(key: &'static str, kind: Kind) -> Field {
    Field {
        key,
        kind,
        required: false,
    }
}

const fn req(key: &'static str, kind: Kind) -> Field {
    Field {
        key,
        kind,
        required: true,
    }
}

/// Sections at the top of the file; all but `deployment` hold named entries.
pub(crate) const SECTIONS: &[&str] = &[
    "deployment",
    "hosts",
    "sqlite",
    "service",
    "logs",
    "docker",
    "system",
    "prometheus",
    "alertmanager",
    "redis",
    "postgres",
    "command",
    "rules",
];

/// The ids a SQLite source's `pack` may name (the catalogue lists the packs).
pub(crate) const PACKS: &[&str] = &crate::model::catalog::sqlite::PACK_IDS;
pub(crate) const METRIC_KINDS: &[&str] = &["number", "table"];

pub(crate) const DEPLOYMENT: &[Field] = &[
    f("name", Kind::Text),
    f("version", Kind::Text),
    f("start", Kind::Start),
    f("length", Kind::Duration),
    f("checkpoints", Kind::Structured),
    f("success_criteria", Kind::Structured),
    f("record_max_mb", Kind::Structured),
    // Taken as written (no ${…} expansion): the command reads $WATCHPOST_ALERT_* itself.
    f("on_alert", Kind::Structured),
    f("silences", Kind::Structured),
];
pub const HOST: &[Field] = &[
    req("ssh", Kind::Text),
    f("host_key", Kind::Text),
    f("passphrase_env", Kind::EnvName),
    f("identity_file", Kind::Text),
    f("known_hosts", Kind::Text),
];
pub(crate) const SQLITE: &[Field] = &[
    req("path", Kind::Text),
    f("pack", Kind::OneOf(PACKS)),
    f("host", Kind::Host),
    f("interval", Kind::Duration),
    f("expected_migration", Kind::Text),
    f("metric", Kind::Metrics),
];
pub(crate) const METRIC: &[Field] = &[
    req("id", Kind::Ident),
    f("name", Kind::Text),
    req("query", Kind::Verbatim),
    f("unit", Kind::Text),
    f("warn", Kind::Threshold),
    f("crit", Kind::Threshold),
    f("priority", Kind::Priority),
    f("kind", Kind::OneOf(METRIC_KINDS)),
    f("min_samples", Kind::Structured),
];
pub(crate) const SERVICE: &[Field] = &[
    f("health_url", Kind::Text),
    f("systemd", Kind::Text),
    f("host", Kind::Host),
    f("interval", Kind::Duration),
    f("timeout", Kind::Duration),
];
pub(crate) const LOGS: &[Field] = &[
    f("files", Kind::TextList),
    f("journald", Kind::Text),
    f("command", Kind::TextList),
    f("docker", Kind::TextList),
    f("project", Kind::Text),
    f("tail", Kind::Structured),
    f("metric", Kind::Structured),
    f("host", Kind::Host),
    f("error_pattern", Kind::Regex),
    f("error_pattern_all_levels", Kind::Bool),
    f("read_back", Kind::Bytes),
];
pub(crate) const DOCKER: &[Field] = &[
    f("host", Kind::Host),
    f("project", Kind::Text),
    f("services", Kind::TextList),
    f("interval", Kind::Duration),
    f("exec", Kind::DockerExecs),
];
pub(crate) const DOCKER_EXEC: &[Field] = &[
    req("id", Kind::Ident),
    f("name", Kind::Text),
    req("service", Kind::Text),
    req("command", Kind::TextList),
    f("regex", Kind::Regex),
    f("field", Kind::Verbatim),
    f("unit", Kind::Text),
    f("warn", Kind::Threshold),
    f("crit", Kind::Threshold),
    f("priority", Kind::Priority),
    f("for", Kind::Duration),
    f("interval", Kind::Duration),
    f("timeout", Kind::Duration),
];
pub(crate) const COMMAND: &[Field] = &[
    f("id", Kind::Ident),
    f("name", Kind::Text),
    req("argv", Kind::TextList),
    f("host", Kind::Host),
    f("regex", Kind::Regex),
    f("field", Kind::Verbatim),
    f("unit", Kind::Text),
    f("warn", Kind::Threshold),
    f("crit", Kind::Threshold),
    f("priority", Kind::Priority),
    f("for", Kind::Duration),
    f("interval", Kind::Duration),
    f("timeout", Kind::Duration),
];
pub const PROMETHEUS: &[Field] = &[
    req("url", Kind::Url),
    f("token", Kind::Secret),
    f("ca_file", Kind::Text),
    f("timeout", Kind::Duration),
    f("interval", Kind::Duration),
    f("history", Kind::Duration),
    f("services", Kind::Bool),
    f("hosts", Kind::Bool),
    f("figure", Kind::PromFigures),
];
pub(crate) const PROM_FIGURE: &[Field] = &[
    req("id", Kind::Ident),
    f("name", Kind::Text),
    req("query", Kind::Verbatim),
    f("unit", Kind::Text),
    f("warn", Kind::Threshold),
    f("crit", Kind::Threshold),
    f("priority", Kind::Priority),
    f("for", Kind::Duration),
    f("by", Kind::TextList),
];
pub const ALERTMANAGER: &[Field] = &[
    req("url", Kind::Url),
    f("token", Kind::Secret),
    f("ca_file", Kind::Text),
    f("timeout", Kind::Duration),
    f("interval", Kind::Duration),
];
pub(crate) const REDIS: &[Field] = &[
    f("url", Kind::RedisUrl),
    f("address", Kind::Address),
    f("container", Kind::Text),
    f("project", Kind::Text),
    f("password", Kind::Secret),
    f("host", Kind::Host),
    f("interval", Kind::Duration),
    f("timeout", Kind::Duration),
    f("metric", Kind::RedisMetrics),
];
pub(crate) const REDIS_METRIC: &[Field] = &[
    req("id", Kind::Ident),
    f("name", Kind::Text),
    req("field", Kind::Verbatim),
    f("unit", Kind::Text),
    f("warn", Kind::Threshold),
    f("crit", Kind::Threshold),
    f("priority", Kind::Priority),
    f("for", Kind::Duration),
];
pub(crate) const POSTGRES: &[Field] = &[
    req("url", Kind::PostgresUrl),
    f("address", Kind::Address),
    f("container", Kind::Text),
    f("project", Kind::Text),
    f("password", Kind::Secret),
    f("host", Kind::Host),
    f("interval", Kind::Duration),
    f("timeout", Kind::Duration),
    f("metric", Kind::Metrics),
];
pub(crate) const SYSTEM: &[Field] = &[f("host", Kind::Host), f("interval", Kind::Duration)];
pub(crate) const RULE: &[Field] = &[
    f("warn", Kind::Threshold),
    f("crit", Kind::Threshold),
    f("expect", Kind::Verbatim),
    f("priority", Kind::Priority),
    f("for", Kind::Duration),
    f("min_failures", Kind::Structured),
    f("no_data_after", Kind::Duration),
    f("min_samples", Kind::Structured),
    f("depends_on", Kind::Text),
];

/// The valid word nearest to `word` (Damerau-Levenshtein, then Jaro-Winkler on ties).
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates.into_iter().min_by(|a, b| {
        let da = strsim::damerau_levenshtein(word, a);
        let db = strsim::damerau_levenshtein(word, b);
        da.cmp(&db).then_with(|| {
            strsim::jaro_winkler(word, b)
                .partial_cmp(&strsim::jaro_winkler(word, a))
                .unwrap_or(std::cmp::Ordering::Equal)
        })
    })
}

fn type_name(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a number",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date",
        DeValue::Array(_) => "a list",
        DeValue::Table(_) => "a table",
    }
}

/// What the walk learns on the way (names of hosts and sources) and the problems found.
struct Walk<'a> {
    at: Locator<'a>,
    problems: Vec<Problem>,
}

impl Walk<'_> {
    fn problem(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, column) = self.at.at(span.start);
        self.problems.push(Problem {
            line,
            column,
            message: message.into(),
        });
    }
}

/// Every problem in a config text, in the order of the file. Empty means the model will load.
pub fn problems(text: &str) -> Vec<Problem> {
    let mut walk = Walk {
        at: Locator::new(text),
        problems: Vec::new(),
    };
    let (root, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        for e in errors {
            let span = e.span().unwrap_or(0..0);
            walk.problem(span, format!("TOML syntax: {}", e.message().trim()));
        }
        walk.problems.sort();
        return walk.problems;
    }
    let root = root.get_ref();
    check_root(&mut walk, root);
    walk.problems.sort();
    walk.problems.dedup();
    walk.problems
}

fn check_root(walk: &mut Walk<'_>, root: &DeTable<'_>) {
    // Host names first: sources refer to them.
    let mut hosts: BTreeSet<String> = BTreeSet::new();
    if let Some((_, v)) = root.iter().find(|(k, _)| k.get_ref() == "hosts")
        && let DeValue::Table(t) = v.get_ref()
    {
        hosts.extend(t.iter().map(|(k, _)| k.get_ref().to_string()));
    }
    // Sources by name: (kind, figures known for it, if any).
    let mut sources: BTreeMap<String, Option<Vec<String>>> = BTreeMap::new();
    let mut rules: Option<&Spanned<DeValue<'_>>> = None;

    for (key, value) in root.iter() {
        let name = key.get_ref().as_ref();
        match name {
            "deployment" => {
                if let Some(table) = expect_table(walk, key, value, "[deployment]") {
                    check_fields(walk, table, DEPLOYMENT, "[deployment]", &hosts);
                }
            }
            "rules" => rules = Some(value),
            section if SECTIONS.contains(&section) => {
                let Some(entries) = expect_table(walk, key, value, &format!("[{section}.NAME]"))
                else {
                    continue;
                };
                for (entry_key, entry) in entries.iter() {
                    let entry_name = entry_key.get_ref().as_ref();
                    let label = format!("[{section}.{entry_name}]");
                    let Some(table) = expect_table(walk, entry_key, entry, &label) else {
                        continue;
                    };
                    let fields = match section {
                        "hosts" => HOST,
                        "sqlite" => SQLITE,
                        "service" => SERVICE,
                        "logs" => LOGS,
                        "docker" => DOCKER,
                        "prometheus" => PROMETHEUS,
                        "alertmanager" => ALERTMANAGER,
                        "redis" => REDIS,
                        "postgres" => POSTGRES,
                        "command" => COMMAND,
                        _ => SYSTEM,
                    };
                    check_fields(walk, table, fields, &label, &hosts);
                    match section {
                        "service" => {
                            check_timeout(walk, table, &label, super::default_service_interval())
                        }
                        "prometheus" | "alertmanager" => {
                            check_timeout(walk, table, &label, super::default_api_interval())
                        }
                        "redis" | "postgres" => {
                            check_timeout(walk, table, &label, super::default_db_interval())
                        }
                        "command" => check_exec(walk, table, entry_key.span(), &label),
                        _ => {}
                    }
                    if section == "hosts" {
                        if let Some((_, value)) = get(table, "host_key")
                            && let DeValue::String(raw) = value.get_ref()
                            && let Ok(text) = expand(raw)
                            && let Err(e) = super::HostKeyPolicy::parse(Some(text.as_str()))
                        {
                            walk.problem(value.span(), format!("{label}: {e}"));
                        }
                        continue;
                    }
                    if sources.contains_key(entry_name) {
                        walk.problem(
                            entry_key.span(),
                            format!(
                                "{label}: another source is already named {entry_name:?} (figure ids start with the source name, so names must be unique across sections)"
                            ),
                        );
                    }
                    let figures = match section {
                        "sqlite" => Some(sqlite_figures(walk, table, &label)),
                        "redis" => Some(metric_figures(
                            walk,
                            table,
                            &label,
                            crate::model::catalog::redis::ALL,
                        )),
                        "postgres" => Some(metric_figures(
                            walk,
                            table,
                            &label,
                            crate::model::catalog::postgres::ALL,
                        )),
                        // Its one figure, so a rule for another id is caught.
                        "command" => Some(vec![
                            get(table, "id")
                                .and_then(|(_, v)| v.get_ref().as_str().map(str::to_string))
                                .unwrap_or_else(super::default_command_id),
                        ]),
                        _ => None,
                    };
                    if matches!(section, "redis" | "postgres") {
                        check_container_host(walk, table, section == "postgres", &label);
                    }
                    match section {
                        "service"
                            if get(table, "health_url").is_none()
                                && get(table, "systemd").is_none() =>
                        {
                            walk.problem(
                                entry_key.span(),
                                format!("{label}: give health_url, systemd, or both"),
                            );
                        }
                        "redis"
                            if get(table, "url").is_none()
                                && get(table, "address").is_none()
                                && get(table, "container").is_none() =>
                        {
                            walk.problem(
                                entry_key.span(),
                                format!("{label}: give url (redis://host:port, from the environment: url = \"${{REDIS_URL}}\"), address (host:port) or container (a compose service)"),
                            );
                        }
                        "redis" | "postgres"
                            if get(table, "address").is_some()
                                && get(table, "container").is_some() =>
                        {
                            walk.problem(
                                entry_key.span(),
                                format!("{label}: give address or container, not both (with container, the url's host says where the server is: the container's name for its address from the Docker engine, any other host as written)"),
                            );
                        }
                        "redis" | "postgres"
                            if get(table, "project").is_some()
                                && get(table, "container").is_none() =>
                        {
                            walk.problem(
                                entry_key.span(),
                                format!("{label}: project goes with container (the compose project of its service)"),
                            );
                        }
                        "logs" => {
                            let given = |key: &str| match get(table, key).map(|(_, v)| v.get_ref())
                            {
                                Some(DeValue::Array(items)) => !items.is_empty(),
                                Some(_) => true,
                                None => false,
                            };
                            match ["files", "journald", "command", "docker"].iter().filter(|k| given(k)).count() {
                                0 => walk.problem(
                                    entry_key.span(),
                                    format!("{label}: give files (a list of files or globs), journald (a unit), command (a list: program and arguments) or docker (a list of compose services or container names)"),
                                ),
                                1 => {}
                                _ => walk.problem(
                                    entry_key.span(),
                                    format!("{label}: give only one of files, journald, command and docker (use one source for each)"),
                                ),
                            }
                            // Metric ids become figure ids: unique, and not a built-in one.
                            if let Some((_, metrics)) = get(table, "metric")
                                && let DeValue::Array(items) = metrics.get_ref()
                            {
                                let mut seen: Vec<String> = Vec::new();
                                for item in items.iter() {
                                    let DeValue::Table(metric) = item.get_ref() else {
                                        continue;
                                    };
                                    let Some((_, id)) = get(metric, "id") else {
                                        continue;
                                    };
                                    let Some(text) = id.get_ref().as_str() else {
                                        continue;
                                    };
                                    if matches!(text, "errors_1h" | "errors_per_min") {
                                        walk.problem(id.span(), format!("{label}: metric id {text:?} is a built-in figure of every log source"));
                                    } else if seen.iter().any(|s| s == text) {
                                        walk.problem(
                                            id.span(),
                                            format!("{label}: metric id {text:?} is used twice"),
                                        );
                                    }
                                    seen.push(text.to_string());
                                }
                            }
                        }
                        _ => {}
                    }
                    sources.insert(entry_name.to_string(), figures);
                }
            }
            unknown => {
                let near = nearest(unknown, SECTIONS.iter().copied()).unwrap_or("deployment");
                walk.problem(
                    key.span(),
                    format!(
                        "unknown section `{unknown}`; the nearest valid one is `{near}` (valid: {})",
                        SECTIONS.join(", ")
                    ),
                );
            }
        }
    }

    if let Some(value) = rules {
        let DeValue::Table(rules) = value.get_ref() else {
            walk.problem(
                value.span(),
                "[rules] must be a table of [rules.\"FIGURE ID\"]",
            );
            return;
        };
        for (id_key, rule) in rules.iter() {
            let id = id_key.get_ref().as_ref();
            let label = format!("[rules.\"{id}\"]");
            if let Some(table) = expect_table(walk, id_key, rule, &label) {
                check_fields(walk, table, RULE, &label, &hosts);
            }
            check_rule_id(walk, id_key.span(), id, &sources);
        }
    }
}

/// A rule must name a figure of a configured source (for SQLite sources, one it produces).
fn check_rule_id(
    walk: &mut Walk<'_>,
    span: Range<usize>,
    id: &str,
    sources: &BTreeMap<String, Option<Vec<String>>>,
) {
    let owner = sources
        .keys()
        .filter(|s| id.starts_with(&format!("{s}.")))
        .max_by_key(|s| s.len());
    match owner {
        None => {
            let first = id.split('.').next().unwrap_or(id);
            let near = nearest(first, sources.keys().map(String::as_str));
            walk.problem(
                span,
                match near {
                    Some(near) => format!(
                        "rule {id:?}: no source is named {first:?} (figure ids are <source>.<figure>; the nearest source is {near:?})"
                    ),
                    None => format!(
                        "rule {id:?}: no source is configured, so no figure can have this id"
                    ),
                },
            );
        }
        Some(source) => {
            if let Some(Some(figures)) = sources.get(source) {
                let figure = &id[source.len() + 1..];
                if !figures.iter().any(|f| f == figure) {
                    let near = nearest(figure, figures.iter().map(String::as_str)).unwrap_or("");
                    walk.problem(
                        span,
                        format!(
                            "rule {id:?}: source {source:?} has no figure {figure:?}; the nearest is \"{source}.{near}\""
                        ),
                    );
                }
            }
        }
    }
}

/// The figures a Redis or PostgreSQL source will produce (for checking rule ids): its
/// built-in ones and its metrics.
fn metric_figures(
    walk: &mut Walk<'_>,
    table: &DeTable<'_>,
    label: &str,
    builtin: &[crate::model::catalog::Fig],
) -> Vec<String> {
    let figures = builtin.iter().map(|f| f.key.to_string()).collect();
    with_metric_ids(walk, table, label, figures)
}

/// The figures a SQLite source will produce (for checking rule ids): its own, its pack's
/// and its metrics.
fn sqlite_figures(walk: &mut Walk<'_>, table: &DeTable<'_>, label: &str) -> Vec<String> {
    use crate::model::catalog::sqlite::{DB_FREELIST, DB_INTEGRITY, DB_SIZE_MB};
    let mut figures: Vec<String> = [DB_SIZE_MB, DB_FREELIST, DB_INTEGRITY]
        .iter()
        .map(|f| f.key.to_string())
        .collect();
    if let Some((_, pack)) = get(table, "pack")
        && let DeValue::String(p) = pack.get_ref()
        && let Some(pack) = crate::model::catalog::sqlite::pack(p.as_ref())
    {
        figures.extend(pack.figs.iter().map(|f| f.key.to_string()));
    }
    with_metric_ids(walk, table, label, figures)
}

/// `builtin` and the ids of the source's `[[….metric]]` tables, which must be new and
/// unique.
fn with_metric_ids(
    walk: &mut Walk<'_>,
    table: &DeTable<'_>,
    label: &str,
    mut figures: Vec<String>,
) -> Vec<String> {
    let builtin = figures.len();
    if let Some((_, metrics)) = get(table, "metric")
        && let DeValue::Array(items) = metrics.get_ref()
    {
        for item in items.iter() {
            let DeValue::Table(metric) = item.get_ref() else {
                continue;
            };
            let Some((_, id)) = get(metric, "id") else {
                continue;
            };
            let DeValue::String(text) = id.get_ref() else {
                continue;
            };
            let text = text.to_string();
            if figures[..builtin].contains(&text) {
                walk.problem(
                    id.span(),
                    format!("{label}: metric id {text:?} is already a figure of this source"),
                );
            } else if figures[builtin..].contains(&text) {
                walk.problem(
                    id.span(),
                    format!("{label}: two metrics have the id {text:?}"),
                );
            }
            figures.push(text);
        }
    }
    figures
}

fn get<'t, 'i>(
    table: &'t DeTable<'i>,
    key: &str,
) -> Option<(
    &'t Spanned<toml::de::DeString<'i>>,
    &'t Spanned<DeValue<'i>>,
)> {
    table.iter().find(|(k, _)| k.get_ref() == key)
}

fn expect_table<'t, 'i>(
    walk: &mut Walk<'_>,
    key: &Spanned<toml::de::DeString<'_>>,
    value: &'t Spanned<DeValue<'i>>,
    what: &str,
) -> Option<&'t DeTable<'i>> {
    match value.get_ref() {
        DeValue::Table(t) => Some(t),
        other => {
            walk.problem(
                key.span(),
                format!(
                    "`{}` must be a table ({what}), not {}",
                    key.get_ref(),
                    type_name(other)
                ),
            );
            None
        }
    }
}

fn check_fields(
    walk: &mut Walk<'_>,
    table: &DeTable<'_>,
    fields: &[Field],
    label: &str,
    hosts: &BTreeSet<String>,
) {
    for (key, value) in table.iter() {
        let name = key.get_ref().as_ref();
        match fields.iter().find(|f| f.key == name) {
            Some(field) => check_value(walk, key, value, field.kind, label, hosts),
            None => {
                let valid: Vec<&str> = fields.iter().map(|f| f.key).collect();
                let near = nearest(name, valid.iter().copied()).unwrap_or("");
                walk.problem(
                    key.span(),
                    format!(
                        "unknown key `{name}` in {label}; the nearest valid key is `{near}` (valid keys: {})",
                        valid.join(", ")
                    ),
                );
            }
        }
    }
    for field in fields.iter().filter(|f| f.required) {
        if get(table, field.key).is_none() {
            // Point at the table's first key, or its start when it is empty.
            let span = table.iter().next().map_or(0..0, |(k, _)| k.span());
            walk.problem(span, format!("{label} needs `{}`", field.key));
        }
    }
}

/// A source's `timeout` must end before its figures would be judged "no data" (three
/// intervals, at least [`MIN_NO_DATA_AFTER`](crate::rules::engine::MIN_NO_DATA_AFTER)):
/// otherwise a slow answer shows as no data, and pages as such, before it is a timeout.
/// Polls never overlap (the next starts an interval after the last one ends), so a long
/// timeout cannot pile up work; it can only make the figures lie about why they are late.
fn check_timeout(
    walk: &mut Walk<'_>,
    table: &DeTable<'_>,
    label: &str,
    default_interval: std::time::Duration,
) {
    let duration = |key: &str| -> Option<Result<std::time::Duration, ()>> {
        let (_, value) = get(table, key)?;
        let DeValue::String(raw) = value.get_ref() else {
            return Some(Err(()));
        };
        let Ok(text) = expand(raw) else {
            return Some(Err(()));
        };
        Some(humantime::parse_duration(text.trim()).map_err(|_| ()))
    };
    // Unparseable values have their own problem already.
    let Some(Ok(timeout)) = duration("timeout") else {
        return;
    };
    let interval = match duration("interval") {
        Some(Ok(interval)) => interval,
        Some(Err(())) => return,
        None => default_interval,
    };
    let min_no_data = crate::rules::engine::MIN_NO_DATA_AFTER
        .to_std()
        .unwrap_or_default();
    let no_data = (interval * 3).max(min_no_data);
    if timeout >= no_data {
        let span = get(table, "timeout").map_or(0..0, |(_, v)| v.span());
        walk.problem(
            span,
            format!(
                "{label}: timeout {} is not shorter than {}, after which a figure without a reading is judged \"no data\" (3 × interval {}, at least {}): a slow answer would page as no data before it timed out; shorten the timeout or lengthen the interval",
                humantime::format_duration(timeout),
                humantime::format_duration(no_data),
                humantime::format_duration(interval),
                humantime::format_duration(min_no_data),
            ),
        );
    }
}

fn check_value(
    walk: &mut Walk<'_>,
    key: &Spanned<toml::de::DeString<'_>>,
    value: &Spanned<DeValue<'_>>,
    kind: Kind,
    label: &str,
    hosts: &BTreeSet<String>,
) {
    let name = key.get_ref().as_ref();
    let span = value.span();
    let wrong = |walk: &mut Walk<'_>, want: &str| {
        walk.problem(
            span.clone(),
            format!(
                "`{name}` in {label} must be {want}, not {}",
                type_name(value.get_ref())
            ),
        )
    };
    if let Kind::Structured = kind {
        return;
    }
    if let Kind::Metrics | Kind::PromFigures | Kind::RedisMetrics | Kind::DockerExecs = kind {
        let (what, fields) = match kind {
            Kind::Metrics => ("metric", METRIC),
            Kind::RedisMetrics => ("metric", REDIS_METRIC),
            Kind::DockerExecs => ("exec", DOCKER_EXEC),
            _ => ("figure", PROM_FIGURE),
        };
        let DeValue::Array(items) = value.get_ref() else {
            return wrong(walk, &format!("a list of [[…{what}]] tables"));
        };
        let mut ids: Vec<String> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item.get_ref() {
                DeValue::Table(metric) => {
                    let label = format!("{label} {what} #{}", i + 1);
                    let named = get(metric, "id")
                        .and_then(|(_, v)| v.get_ref().as_str().map(|s| s.to_string()));
                    let label = match named {
                        Some(id) => format!("{label} ({id:?})"),
                        None => label,
                    };
                    check_fields(walk, metric, fields, &label, hosts);
                    if let Kind::DockerExecs = kind {
                        check_exec(walk, metric, item.span(), &label);
                    }
                    if let Some((_, q)) = get(metric, "query")
                        && let DeValue::String(q) = q.get_ref()
                        && q.trim().is_empty()
                    {
                        walk.problem(item.span(), format!("{label}: the query is empty"));
                    }
                    // SQLite metric ids are checked with the source's built-in figures.
                    if let Kind::PromFigures | Kind::DockerExecs = kind
                        && let Some((_, id)) = get(metric, "id")
                        && let DeValue::String(text) = id.get_ref()
                    {
                        if ids.iter().any(|seen| seen == text.as_ref()) {
                            walk.problem(
                                id.span(),
                                format!("{label}: two figures have the id {text:?}"),
                            );
                        }
                        ids.push(text.to_string());
                    }
                }
                other => walk.problem(
                    item.span(),
                    format!(
                        "`{name}` in {label} must hold tables ([[…{what}]]), not {}",
                        type_name(other)
                    ),
                ),
            }
        }
        return;
    }
    if let Kind::TextList = kind {
        let DeValue::Array(items) = value.get_ref() else {
            return wrong(walk, "a list of strings");
        };
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) => {
                    if let Err(e) = expand(s) {
                        walk.problem(item.span(), format!("`{name}` in {label}: {e}"));
                    }
                }
                other => walk.problem(
                    item.span(),
                    format!(
                        "`{name}` in {label} must list strings, not {}",
                        type_name(other)
                    ),
                ),
            }
        }
        return;
    }
    if let Kind::Bool = kind {
        if !matches!(value.get_ref(), DeValue::Boolean(_)) {
            wrong(walk, "true or false");
        }
        return;
    }
    let DeValue::String(raw) = value.get_ref() else {
        let want = match kind {
            Kind::Duration => "a string like \"5s\" or \"24h\"",
            Kind::Bytes => "a string like \"512MiB\"",
            Kind::Threshold => "a string like \"> 20\"",
            _ => "a string",
        };
        return wrong(walk, want);
    };
    let raw: &str = raw.as_ref();
    let expanded = match kind {
        Kind::Text
        | Kind::Host
        | Kind::Regex
        | Kind::Start
        | Kind::Url
        | Kind::Secret
        | Kind::RedisUrl
        | Kind::PostgresUrl
        | Kind::Address => match expand(raw) {
            Ok(text) => text,
            Err(e) => return walk.problem(span, format!("`{name}` in {label}: {e}")),
        },
        _ => raw.to_string(),
    };
    let problem = match kind {
        Kind::Duration => match humantime::parse_duration(raw.trim()) {
            Err(e) => Some(format!(
                "{raw:?} is not a duration like \"5s\" or \"24h\": {e}"
            )),
            Ok(d) if d > MAX_DURATION => Some(format!(
                "{raw:?} is longer than watchpost can count with (at most {})",
                humantime::format_duration(MAX_DURATION)
            )),
            Ok(d) if name == "interval" && d < MIN_INTERVAL => Some(format!(
                "interval {raw:?} is below the minimum of {}: polling faster burns CPU here and loads the watched system for nothing a person can read",
                humantime::format_duration(MIN_INTERVAL)
            )),
            Ok(_) => None,
        },
        Kind::Bytes => super::parse_byte_size(raw).err(),
        Kind::Threshold => raw.parse::<crate::model::rule::Threshold>().err(),
        Kind::Priority => (!["P0", "P1", "P2", "P3"].contains(&raw))
            .then(|| format!("{raw:?} is not a priority (P0, P1, P2 or P3)")),
        Kind::OneOf(words) => (!words.contains(&raw)).then(|| {
            format!(
                "{raw:?} is not known; the nearest is {:?} (known: {})",
                nearest(raw, words.iter().copied()).unwrap_or(""),
                words.join(", ")
            )
        }),
        Kind::Host => {
            let ok =
                expanded == "local" || expanded.starts_with("ssh://") || hosts.contains(&expanded);
            (!ok).then(|| {
                let mut text = format!(
                    "host {expanded:?} is not \"local\", an ssh:// address or a name under [hosts]"
                );
                if let Some(near) = nearest(&expanded, hosts.iter().map(String::as_str)) {
                    text.push_str(&format!(" (the nearest host is {near:?})"));
                }
                text
            })
        }
        Kind::Regex => regex::Regex::new(&expanded)
            .err()
            .map(|e| format!("not a valid regex: {e}")),
        Kind::Start => {
            let t = expanded.trim();
            (t != "now" && !t.is_empty() && chrono::DateTime::parse_from_rfc3339(t).is_err())
                .then(|| format!("{t:?} is neither \"now\" nor an RFC 3339 time"))
        }
        Kind::Ident => {
            let ok = !raw.is_empty()
                && raw
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
                && !raw.starts_with('.')
                && !raw.ends_with('.');
            (!ok).then(|| {
                format!("{raw:?} must be letters, digits, `_`, `-` and inner dots (it becomes part of a figure id)")
            })
        }
        Kind::EnvName => {
            let ok = !raw.is_empty()
                && !raw.starts_with(|c: char| c.is_ascii_digit())
                && raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            (!ok).then(|| {
                "must name an environment variable (letters, digits and `_`) that holds the passphrase, never the passphrase itself".to_string()
            })
        }
        Kind::Secret => (!raw.contains("${")).then(|| {
            let (example, what) = if name == "password" {
                ("DB_PASSWORD", "password")
            } else {
                ("PROM_TOKEN", "token")
            };
            format!(
                "must come from the environment (write it like \"${{{example}}}\"), never the {what} itself"
            )
        }),
        Kind::Url => match reqwest::Url::parse(expanded.trim()) {
            Err(e) => Some(format!("{expanded:?} is not a URL: {e}")),
            Ok(url) if !matches!(url.scheme(), "http" | "https") => Some(format!(
                "{expanded:?}: the scheme must be http or https, not {:?}",
                url.scheme()
            )),
            Ok(url) if url.host_str().is_none_or(str::is_empty) => {
                Some(format!("{expanded:?} has no host"))
            }
            Ok(_) => None,
        },
        Kind::RedisUrl | Kind::PostgresUrl => literal_password(raw)
            .then(|| {
                "holds a password written in the file; give the whole URL from the environment (url = \"${DATABASE_URL}\") or the password alone (password = \"${DB_PASSWORD}\")".to_string()
            })
            .or_else(|| server_url_problem(kind, expanded.trim())),
        Kind::Address => address_problem(expanded.trim()),
        Kind::Text
        | Kind::Verbatim
        | Kind::Metrics
        | Kind::PromFigures
        | Kind::RedisMetrics
        | Kind::DockerExecs
        | Kind::TextList
        | Kind::Structured
        | Kind::Bool => None,
    };
    if let Some(text) = problem {
        walk.problem(span, format!("`{name}` in {label}: {text}"));
    }
}

/// What an exec table needs beyond its keys: a command, at most one way to read it, and a
/// timeout that ends before its figure would be "no data".
fn check_exec(walk: &mut Walk<'_>, table: &DeTable<'_>, span: Range<usize>, label: &str) {
    let key = if get(table, "argv").is_some() {
        "argv"
    } else {
        "command"
    };
    if let Some((_, command)) = get(table, key)
        && let DeValue::Array(items) = command.get_ref()
        && items.is_empty()
    {
        walk.problem(
            command.span(),
            format!("{label}: the command is empty (give the program and its arguments)"),
        );
    }
    if get(table, "regex").is_some() && get(table, "field").is_some() {
        walk.problem(
            span,
            format!("{label}: give regex or field, not both (or neither: the exit code)"),
        );
    }
    check_timeout(walk, table, label, super::default_exec_interval());
}

/// `container` with a url written in the file whose host is another name: the container is
/// never used (a url reaches it when its host is its name, `redis://redis:6379`; any other
/// host is reached as written). A url or container from the environment may name any host:
/// pointing the source elsewhere is what the variable is for.
fn check_container_host(walk: &mut Walk<'_>, table: &DeTable<'_>, postgres: bool, label: &str) {
    let (Some((_, container)), Some((_, url))) = (get(table, "container"), get(table, "url"))
    else {
        return;
    };
    let (DeValue::String(name), DeValue::String(raw)) = (container.get_ref(), url.get_ref()) else {
        return;
    };
    if name.contains("${") || raw.contains("${") || get(table, "address").is_some() {
        return;
    }
    let (Ok(name), Ok(expanded)) = (expand(name), expand(raw)) else {
        return;
    };
    let host = super::given_host(Some(&expanded), None, postgres);
    if super::container_in_use(Some(&name), &host).is_none() && !name.trim().is_empty() {
        let name = name.trim();
        let scheme = if postgres { "postgres" } else { "redis" };
        walk.problem(
            url.span(),
            format!(
                "{label}: the url's host {host} is not {name:?}, so container {name} is never used: a url whose host is the container's name ({scheme}://{name}:PORT) is reached at its address from the Docker engine, any other as written; write {name} as the url's host, or drop container"
            ),
        );
    }
}

/// Whether a connection URL or `key=value` string, as written in the file, holds a password
/// that is not an environment variable: `redis://:hunter2@db` or `password=hunter2` (but
/// not `redis://:${REDIS_PASSWORD}@db`, nor a whole `${DATABASE_URL}`).
pub(crate) fn literal_password(raw: &str) -> bool {
    // Whatever a variable stands for came from the environment: mark it, then look.
    const ENV: &str = "\u{1}";
    let marked = regex::Regex::new(r"\$\{[^}]*\}")
        .map(|re| re.replace_all(raw, ENV).into_owned())
        .unwrap_or_else(|_| raw.to_string());
    let literal = |password: &str| !password.is_empty() && !password.contains(ENV);
    if let Some((_, rest)) = marked.split_once("://") {
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        return authority
            .rsplit_once('@')
            .and_then(|(userinfo, _)| userinfo.split_once(':'))
            .is_some_and(|(_, password)| literal(password));
    }
    regex::Regex::new(r"(?i)(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S*)")
        .ok()
        .and_then(|re| re.captures(&marked))
        .is_some_and(|c| literal(c[1].trim_matches('\'')))
}

/// Why an expanded Redis or PostgreSQL connection string will not do, if it will not.
fn server_url_problem(kind: Kind, url: &str) -> Option<String> {
    if url.is_empty() {
        return matches!(kind, Kind::PostgresUrl).then(|| "is empty".to_string());
    }
    match kind {
        Kind::RedisUrl => {
            let scheme = url.split_once("://").map(|(s, _)| s);
            match scheme {
                Some("redis") => redis::IntoConnectionInfo::into_connection_info(url)
                    .err()
                    .map(|e| format!("is not a Redis URL: {e}")),
                Some("rediss") => Some(
                    "rediss:// (TLS) is not supported yet; reach the server over a [hosts] host (host = \"NAME\") instead".to_string(),
                ),
                _ => Some("must be a redis://[user[:password]@]host[:port][/db] URL".to_string()),
            }
        }
        _ => url
            .parse::<tokio_postgres::Config>()
            .err()
            .map(|e| format!("is not a PostgreSQL connection string (postgres://user@host:port/db or \"host=… user=… dbname=…\"): {e}")),
    }
}

/// Why an expanded `address` is not `host:port`, if it is not.
fn address_problem(address: &str) -> Option<String> {
    let parsed = address.rsplit_once(':').and_then(|(host, port)| {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
        (!host.is_empty()).then_some(port)
    });
    parsed
        .is_none()
        .then(|| format!("{address:?} is not host:port (as in \"127.0.0.1:6379\")"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        problems(text).iter().map(|p| p.to_string()).collect()
    }

    /// One of `got` starts with `start` (its place) and says `part`.
    fn has_problem(got: &[String], start: &str, part: &str) {
        assert!(
            got.iter().any(|l| l.starts_with(start) && l.contains(part)),
            "no {start:?} … {part:?} in {got:#?}"
        )
    }

    #[test]
    fn locator_counts_lines_and_characters() {
        let at = Locator::new("ab\n\u{e9}x = 1\n");
        assert_eq!(at.at(0), (1, 1));
        assert_eq!(at.at(3), (2, 1));
        assert_eq!(at.at(5), (2, 2), "é is one column");
    }

    #[test]
    fn every_problem_with_its_place() {
        let text = "[deployment]\nnmae = \"x\"\nlength = 5\n\n[sqlite.db]\npaht = \"/x\"\ninterval = \"soon\"\n";
        let got = lines(text);
        assert_eq!(got.len(), 5, "{got:#?}");
        assert!(got[0].starts_with("line 2, column 1: unknown key `nmae`"));
        assert!(got[0].contains("nearest valid key is `name`"));
        assert!(got[1].starts_with("line 3, column 10: `length`"));
        assert!(got.iter().any(|l| l.contains("[sqlite.db] needs `path`")));
        assert!(
            got.iter()
                .any(|l| l.starts_with("line 6, column 1: unknown key `paht`")
                    && l.contains("`path`"))
        );
        assert!(
            got.iter()
                .any(|l| l.starts_with("line 7, column 12:") && l.contains("\"soon\""))
        );
    }

    /// The keys serde accepts for the table that `toml` puts `zz_unknown` in.
    fn serde_keys(toml: &str) -> Vec<String> {
        let err = toml::from_str::<crate::config::Config>(toml)
            .unwrap_err()
            .to_string();
        let expected = err
            .split_once(", expected ")
            .map(|(_, rest)| rest)
            .unwrap_or_else(|| panic!("{err}"));
        let mut keys: Vec<String> = expected
            .split('`')
            .skip(1)
            .step_by(2)
            .map(String::from)
            .collect();
        keys.sort();
        keys
    }

    fn ours(fields: &[Field]) -> Vec<String> {
        let mut keys: Vec<String> = fields.iter().map(|f| f.key.to_string()).collect();
        keys.sort();
        keys
    }

    #[test]
    fn key_lists_match_the_serde_model() {
        let mut sections: Vec<String> = SECTIONS.iter().map(|s| s.to_string()).collect();
        sections.sort();
        assert_eq!(serde_keys("zz_unknown = 1"), sections);
        let cases: [(&str, &[Field]); 17] = [
            ("[redis.r]\nzz_unknown = 1", REDIS),
            (
                "[redis.r]\nurl = \"redis://x\"\n[[redis.r.metric]]\nzz_unknown = 1",
                REDIS_METRIC,
            ),
            ("[postgres.p]\nzz_unknown = 1", POSTGRES),
            (
                "[postgres.p]\nurl = \"x\"\n[[postgres.p.metric]]\nzz_unknown = 1",
                METRIC,
            ),
            ("[prometheus.p]\nzz_unknown = 1", PROMETHEUS),
            (
                "[prometheus.p]\nurl = \"http://x\"\n[[prometheus.p.figure]]\nzz_unknown = 1",
                PROM_FIGURE,
            ),
            ("[alertmanager.a]\nzz_unknown = 1", ALERTMANAGER),
            ("[deployment]\nzz_unknown = 1", DEPLOYMENT),
            ("[hosts.h]\nzz_unknown = 1", HOST),
            ("[sqlite.s]\nzz_unknown = 1", SQLITE),
            (
                "[sqlite.s]\npath = \"x\"\n[[sqlite.s.metric]]\nzz_unknown = 1",
                METRIC,
            ),
            ("[service.s]\nzz_unknown = 1", SERVICE),
            ("[logs.s]\nzz_unknown = 1", LOGS),
            ("[docker.s]\nzz_unknown = 1", DOCKER),
            ("[docker.s]\n[[docker.s.exec]]\nzz_unknown = 1", DOCKER_EXEC),
            ("[system.s]\nzz_unknown = 1", SYSTEM),
            ("[rules.\"x.y\"]\nzz_unknown = 1", RULE),
        ];
        for (text, fields) in cases {
            assert_eq!(serde_keys(text), ours(fields), "{text}");
        }
    }

    #[test]
    fn host_settings_are_checked() {
        let text = "[hosts.prod]\nssh = \"deploy@192.0.2.1\"\nhost_key = \"yolo\"\npassphrase_env = \"hunter2 is my passphrase\"\nidentity_file = \"~/.ssh/prod\"\nknown_hosts = \"/etc/watchpost/known_hosts\"\n";
        let got = lines(text);
        assert_eq!(got.len(), 2, "{got:#?}");
        assert!(got[0].starts_with("line 3, column 12:") && got[0].contains("accept-new"));
        assert!(got[1].starts_with("line 4,") && got[1].contains("never the passphrase itself"));
        let fine = "[hosts.prod]\nssh = \"deploy@192.0.2.1\"\nhost_key = \"accept-new\"\npassphrase_env = \"PROD_KEY_PASSPHRASE\"\n";
        assert!(lines(fine).is_empty(), "{:?}", lines(fine));
    }

    #[test]
    fn prometheus_and_alertmanager_keys_are_checked() {
        let text = r#"[prometheus.prom]
url = "ftp://prom:9090"
tokn = "${PROM_TOKEN}"
intreval = "5s"
services = "yes"

[[prometheus.prom.figure]]
id = "auth fails"
qeury = "sum(rate(x[5m]))"
for = "soon"

[[prometheus.prom.figure]]
id = "p95"
query = "histogram_quantile(0.95, x)"
warn = "above 2"

[[prometheus.prom.figure]]
id = "p95"
query = "y"

[alertmanager.am]
url = "http://127.0.0.1:9093"
token = "hunter2"
"#;
        let got = lines(text);
        let has = |start: &str, part: &str| has_problem(&got, start, part);
        has("line 2, column 7:", "scheme must be http or https");
        has("line 3, column 1:", "unknown key `tokn`");
        has("line 3, column 1:", "nearest valid key is `token`");
        has("line 4, column 1:", "nearest valid key is `interval`");
        has("line 5, column 12:", "true or false");
        has("line 8, column 6:", "letters, digits");
        has("line 9, column 1:", "nearest valid key is `query`");
        has("line ", "figure #1 (\"auth fails\") needs `query`");
        has("line 10, column 7:", "\"soon\"");
        has("line 15, column 8:", "must start with one of");
        has("line 18, column 6:", "two figures have the id \"p95\"");
        has("line 23, column 9:", "must come from the environment");
        assert_eq!(got.len(), 11, "{got:#?}");

        let fine = "[prometheus.prom]\nurl = \"${PROMETHEUS_URL:-http://localhost:9090}\"\ntoken = \"${PROM_TOKEN:-}\"\nca_file = \"/etc/ssl/prom-ca.pem\"\ntimeout = \"3s\"\ninterval = \"5s\"\nhistory = \"30m\"\nservices = true\nhosts = true\n\n[[prometheus.prom.figure]]\nid = \"up\"\nquery = \"up\"\nby = [\"instance\"]\ncrit = \"< 1\"\nfor = \"1m\"\npriority = \"P0\"\n\n[alertmanager.am]\nurl = \"http://127.0.0.1:9093\"\n\n[rules.\"prom.up.web-1:9100\"]\nfor = \"5m\"\n";
        assert!(lines(fine).is_empty(), "{:?}", lines(fine));
        crate::config::Config::parse(fine).unwrap();
    }

    #[test]
    fn database_sources_refuse_a_password_written_in_the_file() {
        let text = r#"[redis.cache]
url = "redis://:hunter2@127.0.0.1:6379/0"

[redis.fine]
url = "redis://:${REDIS_PASSWORD:-}@127.0.0.1:6379"
password = "${REDIS_PASSWORD:-x}"

[redis.literal]
address = "127.0.0.1:6379"
password = "hunter2"

[redis.nowhere]
interval = "5s"

[redis.bad]
url = "rediss://cache:6379"
address = "cache"

[postgres.db]
url = "postgres://app:s3cret@127.0.0.1:5432/app"

[postgres.kv]
url = "host=127.0.0.1 user=app password=s3cret dbname=app"

[postgres.env]
url = "${DATABASE_URL:-postgres://app@127.0.0.1/app}"

[[postgres.env.metric]]
id = "connections"
query = "SELECT 1"
"#;
        let got = lines(text);
        let has = |start: &str, part: &str| has_problem(&got, start, part);
        has("line 2, column 7:", "password written in the file");
        has("line 10, column 12:", "must come from the environment");
        has("line 12, column 8:", "give url");
        has("line 16, column 7:", "TLS");
        has("line 17, column 11:", "not host:port");
        has("line 20, column 7:", "password written in the file");
        has("line 23, column 7:", "password written in the file");
        has("line 29, column 6:", "already a figure of this source");
        assert_eq!(got.len(), 8, "{got:#?}");
        assert!(!literal_password("${DATABASE_URL}"));
        assert!(!literal_password("postgres://app@db/app"));
        assert!(literal_password("password='a b' host=db"));
    }

    #[test]
    fn a_database_in_a_container_is_given_by_container_alone() {
        let text = r#"[redis.cache]
container = "redis"
project = "warungin"

[redis.both]
container = "redis"
address = "127.0.0.1:6379"

[postgres.db]
url = "postgres://app@db/app"
project = "warungin"

[postgres.fine]
url = "postgres://app@Postgres/app"
container = "postgres"
"#;
        let got = lines(text);
        let has = |start: &str, part: &str| has_problem(&got, start, part);
        has("line 5, column 8:", "give address or container, not both");
        has("line 9, column 11:", "project goes with container");
        assert_eq!(got.len(), 2, "{got:#?}");
    }

    #[test]
    fn with_container_a_url_written_in_the_file_names_the_container_as_its_host() {
        // Written in the file with another host, container would never be used; from the
        // environment, another host is the point (a server anywhere), and so is no error.
        let text = r#"[redis.cache]
url = "redis://127.0.0.1:6379"
container = "redis"

[postgres.db]
url = "postgres://app@db.example.com:5433/app"
container = "postgres"
project = "warungin"

[postgres.keywords]
url = "host=10.1.2.3 user=app dbname=app"
container = "postgres"

[redis.same]
url = "redis://redis:6379"
container = "redis"

[redis.alone]
container = "redis"

[postgres.no_host]
url = "postgres:///app"
container = "postgres"

[redis.from_env]
url = "${WATCHPOST_UNIT_TEST_UNSET_REDIS_URL:-redis://127.0.0.1:6379}"
container = "redis"

[postgres.db_from_env]
url = "${WATCHPOST_UNIT_TEST_UNSET_DATABASE_URL:-postgres://app@10.0.0.5/app}"
container = "postgres"

[redis.named_from_env]
url = "redis://127.0.0.1:6379"
container = "${WATCHPOST_UNIT_TEST_UNSET_SERVICE:-redis}"
"#;
        let got = lines(text);
        let has = |start: &str, parts: &[&str]| {
            assert!(
                got.iter()
                    .any(|l| l.starts_with(start) && parts.iter().all(|p| l.contains(p))),
                "no {start:?} … {parts:?} in {got:#?}"
            )
        };
        has(
            "line 2, column 7:",
            &[
                "[redis.cache]: the url's host 127.0.0.1 is not \"redis\", so container redis is never used",
                "(redis://redis:PORT)",
            ],
        );
        has(
            "line 6, column 7:",
            &[
                "the url's host db.example.com is not \"postgres\"",
                "(postgres://postgres:PORT)",
            ],
        );
        has("line 11, column 7:", &["the url's host 10.1.2.3 is not"]);
        assert_eq!(got.len(), 3, "{got:#?}");
    }

    #[test]
    fn the_host_given_decides_whether_the_container_is_used() {
        use super::super::{container_in_use, given_host};
        let redis = |url: &str| given_host(Some(url), None, false);
        let postgres = |url: &str| given_host(Some(url), None, true);
        assert_eq!(redis("redis://:secret@redis:6379/0"), "redis");
        assert_eq!(redis("redis://[::1]:6379"), "::1");
        assert_eq!(
            postgres("postgres://postgres@postgres:5432/warungin"),
            "postgres"
        );
        assert_eq!(postgres("host=db port=5433 user=app"), "db");
        assert_eq!(postgres("postgres:///app"), "");
        assert_eq!(
            given_host(Some("redis://redis:6379"), Some("10.0.0.5:6379"), false),
            "10.0.0.5"
        );
        assert_eq!(given_host(None, Some("[::1]:6379"), false), "::1");
        assert_eq!(given_host(None, None, false), "");
        assert_eq!(container_in_use(Some("redis"), "redis"), Some("redis"));
        assert_eq!(container_in_use(Some(" redis "), "REDIS"), Some("redis"));
        assert_eq!(container_in_use(Some("redis"), ""), Some("redis"));
        assert_eq!(container_in_use(Some("redis"), "127.0.0.1"), None);
        assert_eq!(container_in_use(Some("redis"), "redis.example.com"), None);
        assert_eq!(container_in_use(Some(""), "redis"), None);
        assert_eq!(container_in_use(None, "redis"), None);
    }

    #[test]
    fn docker_execs_are_checked() {
        let text = r#"[docker.local]
project = "warungin"

[[docker.local.exec]]
id = "ready"
service = "postgres"
command = ["pg_isready"]

[[docker.local.exec]]
id = "hits"
service = "redis"
command = []
regex = 'hits:(\d+)'
field = "keyspace_hits"

[[docker.local.exec]]
id = "ready"
servce = "x"
command = ["true"]
timeout = "2m"
regex = "("
"#;
        let got = lines(text);
        let has = |start: &str, part: &str| has_problem(&got, start, part);
        has("line 12, column 11:", "the command is empty");
        has("line 9, column 1:", "give regex or field, not both");
        has("line 17, column 6:", "two figures have the id \"ready\"");
        has("line 18, column 1:", "nearest valid key is `service`");
        has("line 19, column 1:", "needs `service`");
        has("line 20, column 11:", "not shorter than");
        has("line 21, column 9:", "not a valid regex");
        assert_eq!(got.len(), 7, "{got:#?}");
    }

    #[test]
    fn commands_are_checked() {
        let text = r#"[command.pg]
id = "ready"
regex = "("
field = "x"

[command.up]
argv = ["true"]
timeout = "2m"

[rules]
"up.value" = { crit = "!= 0" }
"up.nope" = { crit = "!= 0" }
"#;
        let got = lines(text);
        let has = |start: &str, part: &str| has_problem(&got, start, part);
        has("line 4, column 1:", "[command.pg] needs `argv`");
        has("line 3, column 9:", "not a valid regex");
        has("line 1, column 10:", "give regex or field, not both");
        has("line 8, column 11:", "not shorter than");
        has("line 12, column 1:", "up.nope");
        assert_eq!(got.len(), 5, "{got:#?}");
    }

    #[test]
    fn nearest_prefers_the_closest_spelling() {
        assert_eq!(nearest("pakc", ["path", "pack", "host"]), Some("pack"));
        assert_eq!(nearest("sqllite", SECTIONS.iter().copied()), Some("sqlite"));
        assert_eq!(nearest("x", std::iter::empty()), None);
    }
}
