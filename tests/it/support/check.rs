//! `watchpost check --format json` run as a child process, and its answer read.

use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// The built `watchpost` binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_watchpost");

/// What one `watchpost check --format json` gave.
pub struct CheckJson {
    pub code: i32,
    pub json: Value,
    pub stderr: String,
}

/// Runs `command` (the binary, or a wrapper such as `runuser … BIN`, with its environment
/// set) with `check --config CONFIG --format json` added; panics, with both outputs, when
/// stdout is not JSON.
pub fn check_json(mut command: Command, config: &Path) -> CheckJson {
    let out = command
        .args(["check", "--config"])
        .arg(config)
        .args(["--format", "json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\nstderr: {stderr}"));
    CheckJson {
        code: out.status.code().unwrap_or(-1),
        json,
        stderr,
    }
}

/// The check with `id` in the answer.
pub fn by_id<'a>(json: &'a Value, id: &str) -> &'a Value {
    json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} in {json:#}"))
}

/// The number of check `id`, which must have no error.
pub fn num(json: &Value, id: &str) -> f64 {
    let c = by_id(json, id);
    assert!(c["error"].is_null(), "{id}: {}", c["error"]);
    c["value"]
        .as_f64()
        .unwrap_or_else(|| panic!("{id} is not a number: {c}"))
}
