//! The demo's JSONL application log, in the shapes of seed 002 (TMWS security logging):
//! tool outcomes, skill activations with a `security_event`, scheduler `monitoring_event`s,
//! warnings for timeouts and errors with an `error_type`. A few lines a second normally; a
//! burst of errors during an incident ("database connection pool exhausted", "RBAC check
//! failed for agent ...").
//!
//! The file is rotated by renaming it to `<name>.1` when it would pass the size limit, the
//! way logrotate's `copytruncate`-less mode does, so a long demo never fills the disk.

use super::incident::{Phase, Script};
use super::simulator::{AGENTS, POOL_ERROR, agent_name};
use super::{Counters, StopSignal};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The expiration scheduler's cleanup runs this often in the demo (hourly in TMWS).
const CLEANUP_EVERY: Duration = Duration::from_secs(60);

const TOOLS: [(&str, &str); 9] = [
    ("resolve-library-id", "mcp__context7"),
    ("get-library-docs", "mcp__context7"),
    ("search_memories", "mcp__tmws"),
    ("store_memory", "mcp__tmws"),
    ("validate_license", "mcp__tmws"),
    ("generate_license", "mcp__tmws"),
    ("get_scheduler_status", "mcp__tmws"),
    ("find_symbol", "mcp__serena"),
    ("read_file", "mcp__serena"),
];
const SKILLS: [&str; 5] = [
    "code-review-assistant",
    "release-notes-writer",
    "threat-model-helper",
    "sql-query-explainer",
    "test-gap-finder",
];
const NAMESPACES: [&str; 3] = ["default", "project-x", "tmws-core"];

/// `2025-12-12T10:30:45.123Z`, as in seed 002.
fn log_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// One JSON line with `timestamp`, `level` and `message` first, then `fields` in order.
pub(crate) fn json_line(
    at: DateTime<Utc>,
    level: &str,
    message: &str,
    fields: &[(&str, Value)],
) -> String {
    let mut line = format!(
        "{{\"timestamp\":{},\"level\":{},\"message\":{}",
        Value::from(log_time(at)),
        Value::from(level),
        Value::from(message)
    );
    for (key, value) in fields {
        line.push_str(&format!(",{}:{}", Value::from(*key), value));
    }
    line.push('}');
    line
}

fn uuid_like(rng: &mut SmallRng) -> String {
    let a: u128 = rng.random();
    let hex = format!("{a:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Writes the application log. Blocking file I/O, so it runs on its own thread.
pub(crate) struct AppLog {
    path: PathBuf,
    rotate_bytes: u64,
    file: File,
    size: u64,
    rng: SmallRng,
    counters: Arc<Counters>,
    total_cleanups: u64,
    total_deleted: u64,
    last_cleanup: Option<DateTime<Utc>>,
    next_cleanup: Instant,
    /// The phase of the previous line, to announce transitions once.
    previous: &'static str,
    /// Extra ordinary lines a second on top of the usual few (`demo --flood`, for soaks).
    flood_per_sec: u32,
}

impl AppLog {
    pub(crate) fn create(
        path: &Path,
        rotate_bytes: u64,
        seed: u64,
        counters: Arc<Counters>,
    ) -> io::Result<AppLog> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        let mut log = AppLog {
            path: path.to_path_buf(),
            rotate_bytes: rotate_bytes.max(1024),
            file,
            size,
            rng: SmallRng::seed_from_u64(seed),
            counters,
            total_cleanups: 0,
            total_deleted: 0,
            last_cleanup: None,
            next_cleanup: Instant::now() + Duration::from_secs(10),
            previous: "normal",
            flood_per_sec: 0,
        };
        let now = Utc::now();
        let next = log_time(now + TimeDelta::hours(1));
        log.append(&json_line(
            now,
            "INFO",
            "Application startup complete",
            &[
                ("version", json!("v2.3.0")),
                ("environment", json!("production")),
            ],
        ))?;
        log.append(&json_line(
            now,
            "INFO",
            "Expiration scheduler started",
            &[
                ("interval_hours", json!(1.0)),
                ("next_run_time", json!(next)),
                ("monitoring_event", json!("SCHEDULER_START")),
            ],
        ))?;
        Ok(log)
    }

    /// Appends one line, rotating first if it would make the file too big.
    pub(crate) fn append(&mut self, line: &str) -> io::Result<()> {
        let len = line.len() as u64 + 1;
        if self.size > 0 && self.size + len > self.rotate_bytes {
            self.rotate()?;
        }
        // One write per line, so a follower never sees half a line.
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.file.write_all(&bytes)?;
        self.size += len;
        self.counters.log_line();
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let mut rotated = self.path.clone().into_os_string();
        rotated.push(".1");
        std::fs::rename(&self.path, &rotated)?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        self.counters.log_rotation();
        Ok(())
    }

    /// Adds `lines_per_sec` ordinary lines a second to what [`run`](Self::run) writes.
    pub(crate) fn flood(mut self, lines_per_sec: u32) -> Self {
        self.flood_per_sec = lines_per_sec;
        self
    }

    /// Writes lines until `stop` is signalled: a line every ~0.4 s, faster during an incident,
    /// plus the flood's lines, caught up to its rate at each wake-up.
    pub(crate) fn run(mut self, script: Script, stop: Arc<StopSignal>) {
        let flood_start = Instant::now();
        let mut flooded: u64 = 0;
        loop {
            let phase = script.now();
            let pause = match phase {
                Phase::Incident { .. } => self.rng.random_range(60..250),
                _ => self.rng.random_range(150..700),
            };
            if stop.sleep(Duration::from_millis(pause)) {
                return;
            }
            let phase = script.now();
            let now = Utc::now();
            let mut lines = self.next_lines(now, phase);
            if self.flood_per_sec > 0 {
                let due =
                    (flood_start.elapsed().as_secs_f64() * f64::from(self.flood_per_sec)) as u64;
                lines.extend((flooded..due).map(|_| self.normal_line(now)));
                flooded = due;
            }
            for line in lines {
                if let Err(e) = self.append(&line) {
                    self.counters
                        .write_error(format!("application log {}: {e}", self.path.display()));
                }
            }
        }
    }

    fn agent(&mut self) -> String {
        agent_name(self.rng.random_range(0..AGENTS))
    }

    /// The lines to write at `at` in `phase`: usually one, more at a transition.
    pub(crate) fn next_lines(&mut self, at: DateTime<Utc>, phase: Phase) -> Vec<String> {
        let mut lines = Vec::new();
        let name = phase.name();
        if name != self.previous {
            match phase {
                Phase::Incident { number, .. } => lines.push(json_line(
                    at,
                    "CRITICAL",
                    "Health check failed: database connection pool exhausted",
                    &[
                        ("incident", json!(number)),
                        ("error_type", json!("TimeoutError")),
                        ("detail", json!(POOL_ERROR)),
                    ],
                )),
                Phase::Recovery { .. } => lines.push(json_line(
                    at,
                    "WARNING",
                    "Database connection pool recovered",
                    &[
                        ("pool_size", json!(20)),
                        ("checked_out", json!(self.rng.random_range(12..19))),
                    ],
                )),
                Phase::Normal { .. } => {
                    lines.push(json_line(at, "INFO", "Health check passed", &[]))
                }
            }
            self.previous = name;
        }
        if Instant::now() >= self.next_cleanup {
            self.next_cleanup = Instant::now() + CLEANUP_EVERY;
            lines.push(self.cleanup(at, phase));
        }
        let line = match phase {
            Phase::Incident { .. } => self.incident_line(at),
            _ => self.normal_line(at),
        };
        lines.push(line);
        lines
    }

    fn cleanup(&mut self, at: DateTime<Utc>, phase: Phase) -> String {
        if phase.is_incident() {
            return json_line(
                at,
                "ERROR",
                "Scheduled expiration cleanup failed",
                &[
                    ("error_type", json!("TimeoutError")),
                    ("total_cleanups_attempted", json!(self.total_cleanups + 1)),
                    ("monitoring_event", json!("SCHEDULER_CLEANUP_FAILED")),
                ],
            );
        }
        let deleted = self.rng.random_range(0..60);
        self.total_cleanups += 1;
        self.total_deleted += deleted;
        self.last_cleanup = Some(at);
        json_line(
            at,
            "INFO",
            "Scheduled expiration cleanup completed",
            &[
                ("deleted_count", json!(deleted)),
                ("total_cleanups", json!(self.total_cleanups)),
                ("total_deleted", json!(self.total_deleted)),
                ("last_run_time", json!(self.last_cleanup.map(log_time))),
                ("monitoring_event", json!("SCHEDULER_CLEANUP_SUCCESS")),
            ],
        )
    }

    fn tool_outcome(&mut self, at: DateTime<Utc>, outcome: &str, latency_ms: f64) -> String {
        let (tool, server) = TOOLS[self.rng.random_range(0..TOOLS.len())];
        let agent = self.agent();
        let latency = (latency_ms * 100.0).round() / 100.0;
        match outcome {
            "success" => json_line(
                at,
                "INFO",
                &format!("Tool outcome recorded: {tool} - success"),
                &[
                    ("tool_name", json!(tool)),
                    ("server_id", json!(server)),
                    ("outcome", json!("success")),
                    ("latency_ms", json!(latency)),
                    ("agent_id", json!(agent)),
                ],
            ),
            "timeout" => json_line(
                at,
                "WARNING",
                &format!("Tool outcome recorded: {tool} - timeout"),
                &[
                    ("tool_name", json!(tool)),
                    ("server_id", json!(server)),
                    ("outcome", json!("timeout")),
                    ("latency_ms", json!(latency)),
                    ("agent_id", json!(agent)),
                    ("error_type", json!("TimeoutError")),
                ],
            ),
            _ => {
                let error_type =
                    ["ConnectionError", "ValueError", "McpError"][self.rng.random_range(0..3)];
                json_line(
                    at,
                    "ERROR",
                    &format!("Failed to call MCP tool: {tool}"),
                    &[
                        ("tool_name", json!(tool)),
                        ("server_id", json!(server)),
                        ("outcome", json!("error")),
                        ("latency_ms", json!(latency)),
                        ("agent_id", json!(agent)),
                        ("error_type", json!(error_type)),
                    ],
                )
            }
        }
    }

    fn skill_event(&mut self, at: DateTime<Utc>) -> String {
        let skill = SKILLS[self.rng.random_range(0..SKILLS.len())];
        let tool = format!("skill_{}", skill.replace('-', "_"));
        let agent = self.agent();
        let namespace = NAMESPACES[self.rng.random_range(0..NAMESPACES.len())];
        let skill_id = uuid_like(&mut self.rng);
        let roll = self.rng.random_range(0..100);
        if roll < 60 {
            let activation_id = uuid_like(&mut self.rng);
            json_line(
                at,
                "INFO",
                &format!("Skill registered as MCP tool: {tool}"),
                &[
                    ("skill_id", json!(skill_id)),
                    ("skill_name", json!(skill)),
                    ("tool_name", json!(tool)),
                    ("security_event", json!("SKILL_ACTIVATION_SUCCESS")),
                    ("agent_id", json!(agent)),
                    ("namespace", json!(namespace)),
                    ("version", json!(self.rng.random_range(1..5))),
                    ("activation_id", json!(activation_id)),
                ],
            )
        } else if roll < 92 {
            json_line(
                at,
                "INFO",
                &format!("Skill unregistered from MCP tools: {tool}"),
                &[
                    ("skill_id", json!(skill_id)),
                    ("skill_name", json!(skill)),
                    ("tool_name", json!(tool)),
                    ("security_event", json!("SKILL_DEACTIVATION_SUCCESS")),
                    ("agent_id", json!(agent)),
                    ("namespace", json!(namespace)),
                    ("duration_ms", json!(self.rng.random_range(3..40))),
                ],
            )
        } else {
            json_line(
                at,
                "WARNING",
                &format!("Skill activated but MCP tool registration failed: {tool}"),
                &[
                    ("skill_id", json!(skill_id)),
                    ("skill_name", json!(skill)),
                    ("tool_name", json!(tool)),
                    (
                        "security_event",
                        json!("SKILL_ACTIVATION_REGISTRATION_FAILED"),
                    ),
                    ("agent_id", json!(agent)),
                    ("namespace", json!(namespace)),
                    ("error_type", json!("ToolRegistrationError")),
                ],
            )
        }
    }

    fn normal_line(&mut self, at: DateTime<Utc>) -> String {
        let roll = self.rng.random_range(0..1000);
        match roll {
            0..=779 => {
                let latency = self.rng.random_range(8.0..180.0);
                self.tool_outcome(at, "success", latency)
            }
            780..=809 => self.tool_outcome(at, "timeout", 30_000.0),
            810..=824 => {
                let latency = self.rng.random_range(5.0..400.0);
                self.tool_outcome(at, "error", latency)
            }
            825..=944 => self.skill_event(at),
            _ => {
                let agent = self.agent();
                json_line(
                    at,
                    "WARNING",
                    "Permission denied",
                    &[
                        ("agent_id", json!(agent)),
                        ("role", json!("viewer")),
                        ("operation", json!("license:generate")),
                        ("security_event", json!("PERMISSION_DENIED")),
                    ],
                )
            }
        }
    }

    fn incident_line(&mut self, at: DateTime<Utc>) -> String {
        let roll = self.rng.random_range(0..100);
        match roll {
            0..=34 => json_line(
                at,
                "ERROR",
                "database connection pool exhausted",
                &[
                    ("error_type", json!("TimeoutError")),
                    ("pool_size", json!(20)),
                    ("max_overflow", json!(10)),
                    ("checked_out", json!(30)),
                    ("detail", json!(POOL_ERROR)),
                ],
            ),
            35..=64 => {
                let agent = self.agent();
                let operation = [
                    "license:validate",
                    "license:generate",
                    "memory:read",
                    "agent:read",
                ][self.rng.random_range(0..4)];
                json_line(
                    at,
                    "ERROR",
                    &format!("RBAC check failed for agent {agent}: role lookup failed"),
                    &[
                        ("agent_id", json!(agent)),
                        ("operation", json!(operation)),
                        ("result", json!("DENY")),
                        ("error_type", json!("OperationalError")),
                        ("security_event", json!("RBAC_CHECK_FAILED")),
                    ],
                )
            }
            65..=79 => self.tool_outcome(at, "timeout", 30_000.0),
            80..=84 => {
                let latency = self.rng.random_range(1000.0..30_000.0);
                self.tool_outcome(at, "error", latency)
            }
            _ => {
                let latency = self.rng.random_range(400.0..4000.0);
                self.tool_outcome(at, "success", latency)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters() -> Arc<Counters> {
        Arc::new(Counters::default())
    }

    #[test]
    fn lines_are_json_with_timestamp_level_message_first() {
        let at = DateTime::parse_from_rfc3339("2025-12-12T10:31:20.456Z")
            .unwrap()
            .with_timezone(&Utc);
        let line = json_line(at, "INFO", "say \"hi\"\n", &[("latency_ms", json!(45.23))]);
        assert!(
            line.starts_with(
                r#"{"timestamp":"2025-12-12T10:31:20.456Z","level":"INFO","message":"#
            ),
            "{line}"
        );
        let value: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["message"], "say \"hi\"\n");
        assert_eq!(value["latency_ms"], 45.23);
    }

    #[test]
    fn incident_lines_are_mostly_errors_and_normal_lines_mostly_not() {
        let dir = tempfile::tempdir().unwrap();
        let mut log =
            AppLog::create(&dir.path().join("app.jsonl"), 1 << 20, 3, counters()).unwrap();
        let now = Utc::now();
        let mut share = |phase: Phase| {
            let lines: Vec<String> = (0..400).flat_map(|_| log.next_lines(now, phase)).collect();
            let errors = lines
                .iter()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .filter(|v| v["level"] == "ERROR" || v["level"] == "CRITICAL")
                .count();
            errors as f64 / lines.len() as f64
        };
        assert!(
            share(Phase::Normal {
                next_incident_in: None
            }) < 0.05
        );
        assert!(
            share(Phase::Incident {
                number: 1,
                ends_in: Duration::from_secs(5)
            }) > 0.5
        );
    }

    #[test]
    fn rotates_by_rename_when_too_big() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.jsonl");
        let counters = counters();
        let mut log = AppLog::create(&path, 4096, 5, counters.clone()).unwrap();
        let now = Utc::now();
        for _ in 0..100 {
            for line in log.next_lines(
                now,
                Phase::Normal {
                    next_incident_in: None,
                },
            ) {
                log.append(&line).unwrap();
            }
        }
        assert!(std::fs::metadata(&path).unwrap().len() <= 4096);
        assert!(
            std::fs::metadata(dir.path().join("app.jsonl.1"))
                .unwrap()
                .len()
                <= 4096
        );
        assert!(counters.snapshot().log_rotations >= 1);
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            serde_json::from_str::<Value>(line).unwrap();
        }
    }
}
