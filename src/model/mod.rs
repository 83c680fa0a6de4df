//! The shared vocabulary of every layer: figures and their readings, severities and
//! priorities, the rules the config writes, the updates collectors send, the sanitizer for
//! foreign text. It imports nothing else of watchpost, so everything can depend on it.
//!
//! Errors, layer by layer: a function that can fail on an operation (I/O, SQLite, the
//! container engine, a transport) returns its layer's error type (`thiserror`:
//! `rules::notify::SilenceError`, `config::ConfigError`, `transport::TransportError` (with
//! `TargetError` for host strings and ssh config), `state::WindowError`,
//! `record::RecordError`, `record::report::ReportError`, `app::OnAlertError`, and in
//! `collect/` `ReachError`, `http::HttpError`/`UnitError`, `prometheus::ApiClientError`/
//! `ApiError`, `sqlite::OpenError`, `metrics::MetricError`, `packs::UnknownPack`,
//! `docker::EngineError`, `blocking::WorkerError`), whose `Display` is exactly the text a
//! user reads. The text is made where a collector builds what a pane shows
//! (`SourceHealth::Error { message }`, `Reading::failed(.., text)`), not below. `String`
//! errors stay only where the text itself is the product: parsers whose message is the final
//! word to the user (serde `deserialize_with` helpers, clap value parsers, config, theme and
//! remote output parsers), and values kept as already-rendered text for a pane (a figure's
//! stored failure text, a host's `HostStatus::Down` reason). An error type used by two
//! layers lives in the lower one.

pub mod backoff;
pub mod catalog;
pub mod figure;
pub mod pane;
pub mod rule;
pub mod sanitize;
pub mod time;
pub mod update;

/// How many points of history each figure keeps for its sparkline.
pub(crate) const HISTORY_POINTS: usize = 240;

/// The files SQLite keeps beside a database in WAL mode, `[PATH-wal, PATH-shm]`: the
/// suffix goes on the whole name (`x.sqlite-wal`), as SQLite names them.
pub fn sqlite_sidecars(path: &std::path::Path) -> [std::path::PathBuf; 2] {
    ["-wal", "-shm"].map(|suffix| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        name.into()
    })
}
