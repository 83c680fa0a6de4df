//! Ingest throughput (README: Performance): read, parse, classify, filter and buffer a big
//! log file on one core, through the collector's own path (`FileIngest`: the tailer that
//! follows files, the JSON/logfmt/plain parser, the error pattern and counts, the Errors
//! pane's filter, the state's bounded `LogBuffer` with its error patterns), side by side
//! with `grep -c -i error` on the same file.
//!
//! The file (mixed JSON, logfmt and plain lines in the shapes of the seeds, about 15%
//! errors) is generated once under `target/bench-data/`. Its size is
//! `WATCHPOST_BENCH_MB` (default 1024, the issue's 1 GB).
//!
//! Criterion times CPU, not the wall clock: this thread's CPU time for watchpost, the
//! child's (user + system) for grep, so "lines per second on one core" holds on a machine
//! whose cores other work shares. One pass of each is also timed by the wall clock first.

use chrono::{Duration, TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group};
use std::hint::black_box;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use watchpost::collect::logs::FileIngest;
use watchpost::config::Config;
use watchpost::state::logbuf::{DEFAULT_CAPACITY, LogBuffer};
use watchpost::ui::LogFilter;

/// xorshift64*, so the file is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const TOOLS: &[&str] = &[
    "resolve-library-id",
    "get-library-docs",
    "search_memories",
    "create_task",
    "skill_code_review_assistant",
];

fn write_line(out: &mut impl Write, rng: &mut Rng, n: u64) -> std::io::Result<()> {
    let start = Utc.with_ymd_and_hms(2025, 12, 12, 8, 0, 0).unwrap();
    let at = start + Duration::milliseconds(n as i64 * 7);
    let iso = at.format("%Y-%m-%dT%H:%M:%S%.3fZ");
    let tool = TOOLS[rng.below(TOOLS.len() as u64) as usize];
    let id = rng.next();
    match rng.below(20) {
        // Seed 002's JSON lines: tool outcomes, security and scheduler events.
        0..=6 => writeln!(
            out,
            r#"{{"timestamp": "{iso}", "level": "DEBUG", "message": "Tool outcome recorded: {tool} - success", "tool_name": "{tool}", "server_id": "mcp__context7", "outcome": "success", "latency_ms": {}.{:02}, "agent_id": "agent-{}"}}"#,
            rng.below(900),
            rng.below(100),
            id % 1000
        ),
        7 => writeln!(
            out,
            r#"{{"timestamp": "{iso}", "level": "ERROR", "message": "Failed to call MCP tool", "tool_name": "{tool}", "outcome": "timeout", "latency_ms": {}.0, "error_type": "TimeoutError"}}"#,
            30_000 + rng.below(5000)
        ),
        8 => writeln!(
            out,
            r#"{{"timestamp": "{iso}", "level": "INFO", "message": "Skill registered as MCP tool: {tool}", "skill_id": "{:016x}", "security_event": "SKILL_ACTIVATION_SUCCESS", "namespace": "default", "version": {}}}"#,
            id,
            rng.below(9) + 1
        ),
        9 => writeln!(
            out,
            r#"{{"timestamp": "{iso}", "level": "ERROR", "message": "Scheduled expiration cleanup failed", "error_type": "OperationalError", "total_cleanups_attempted": {}, "monitoring_event": "SCHEDULER_CLEANUP_FAILED"}}"#,
            rng.below(100)
        ),
        // logfmt.
        10..=12 => writeln!(
            out,
            r#"ts={iso} level=info msg="request served" method=GET path=/api/v1/licenses/{} status=200 duration_ms={}"#,
            id % 100_000,
            rng.below(400)
        ),
        13 => writeln!(
            out,
            r#"ts={iso} level=warn msg="slow query" table=security_audit_logs duration_ms={}"#,
            1000 + rng.below(4000)
        ),
        // Python logging and nginx's error log.
        14..=16 => writeln!(
            out,
            "{} - tmws.services.license - INFO - License validated for agent {} (tier PRO)",
            at.format("%Y-%m-%d %H:%M:%S,%3f"),
            id % 10_000
        ),
        17 => writeln!(
            out,
            "{} - tmws.api - ERROR - Permission check failed: role viewer cannot {} (request {:08x})",
            at.format("%Y-%m-%d %H:%M:%S,%3f"),
            tool,
            id as u32
        ),
        18 => writeln!(
            out,
            "{} [error] 1234#0: *{} connect() failed (111: Connection refused) while connecting to upstream, client: 10.0.{}.{}",
            at.format("%Y/%m/%d %H:%M:%S"),
            id % 100_000,
            rng.below(256),
            rng.below(256)
        ),
        _ => writeln!(out, "{iso} INFO health check ok in {} ms", rng.below(50)),
    }
}

/// The generated file and its line count, made once.
fn bench_file() -> (PathBuf, u64) {
    let mb: u64 = std::env::var("WATCHPOST_BENCH_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("ingest-{mb}mb.log"));
    let count_path = dir.join(format!("ingest-{mb}mb.lines"));
    if let (Ok(_), Ok(count)) = (
        std::fs::metadata(&path),
        std::fs::read_to_string(&count_path),
    ) && let Ok(count) = count.trim().parse()
    {
        return (path, count);
    }
    eprintln!("generating {} ({mb} MB)…", path.display());
    let partial = dir.join(format!("ingest-{mb}mb.log.partial"));
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&partial).unwrap());
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut written = 0u64;
    let mut lines = 0u64;
    let target = mb * 1024 * 1024;
    let mut line = Vec::with_capacity(512);
    while written < target {
        line.clear();
        write_line(&mut line, &mut rng, lines).unwrap();
        out.write_all(&line).unwrap();
        written += line.len() as u64;
        lines += 1;
    }
    out.flush().unwrap();
    drop(out);
    std::fs::rename(&partial, &path).unwrap();
    std::fs::write(&count_path, lines.to_string()).unwrap();
    (path, lines)
}

/// Reads the whole file through the collector's path into a buffer the size of the app's.
/// Returns (lines, lines the filter kept, error lines, patterns).
fn ingest(path: &Path, config: &Config, filter: &LogFilter) -> (u64, u64, u64, usize) {
    let mut ingest = FileIngest::new("app", &config.logs["app"]).unwrap();
    let mut buffer = LogBuffer::new(DEFAULT_CAPACITY);
    let now = Utc::now();
    let (mut lines, mut shown, mut errors) = (0u64, 0u64, 0u64);
    loop {
        let batch = ingest
            .next_batch(now)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if batch.is_empty() {
            break;
        }
        for line in batch {
            lines += 1;
            errors += u64::from(line.is_error);
            shown += u64::from(filter.matches(&line));
            buffer.push(line);
        }
    }
    (lines, shown, errors, buffer.patterns().len())
}

/// CPU time of this thread (Linux), so the figure holds on a busy machine too.
fn thread_cpu() -> Option<std::time::Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos = text.split_whitespace().next()?.parse().ok()?;
    Some(std::time::Duration::from_nanos(nanos))
}

/// CPU time (user + system) and peak RSS in KiB of `who`: this process, or its children
/// that have ended (grep, lnav).
fn usage(who: nix::sys::resource::UsageWho) -> (std::time::Duration, i64) {
    let usage = nix::sys::resource::getrusage(who).expect("getrusage");
    let time = |t: nix::sys::time::TimeVal| {
        std::time::Duration::from_secs(t.tv_sec() as u64)
            + std::time::Duration::from_micros(t.tv_usec() as u64)
    };
    (
        time(usage.user_time()) + time(usage.system_time()),
        usage.max_rss(),
    )
}

/// CPU time (user + system) of the children that have ended, such as grep.
fn children_cpu() -> std::time::Duration {
    usage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).0
}

fn grep_count(path: &Path) -> u64 {
    let out = Command::new("grep")
        .args(["-c", "-i", "error"])
        .arg(path)
        .env("LC_ALL", "C")
        .output()
        .expect("grep runs");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

fn bench(c: &mut Criterion) {
    let (path, line_count) = bench_file();
    let size = std::fs::metadata(&path).unwrap().len();
    let config = Config::parse(&format!(
        "[logs.app]\nfiles = [{:?}]\n",
        path.display().to_string()
    ))
    .unwrap();
    // What a user triaging would type: errors and warnings, without the health checks.
    let filter = LogFilter::parse("level:warn !health");

    // One timed pass each first, for the summary (and so the file is in the page cache).
    let started = std::time::Instant::now();
    let grep_cpu_before = children_cpu();
    let grep_errors = grep_count(&path);
    let grep_time = started.elapsed();
    let grep_cpu = children_cpu() - grep_cpu_before;
    let started = std::time::Instant::now();
    let cpu_before = thread_cpu();
    let (lines, shown, errors, patterns) = ingest(&path, &config, &filter);
    let ingest_time = started.elapsed();
    let cpu = cpu_before.and_then(|before| Some(thread_cpu()? - before));
    assert_eq!(lines, line_count, "every line read once");
    let per_second = |d: std::time::Duration| lines as f64 / d.as_secs_f64();
    eprintln!(
        "{} MB, {lines} lines ({errors} errors, {shown} shown by the filter, {patterns} patterns)",
        size / (1024 * 1024)
    );
    eprintln!(
        "  watchpost ingest: {:.2} s wall = {:.0} lines/s ({:.0} MB/s){}",
        ingest_time.as_secs_f64(),
        per_second(ingest_time),
        size as f64 / 1048576.0 / ingest_time.as_secs_f64(),
        cpu.map(|cpu| format!(
            "; {:.2} s on the CPU = {:.0} lines per CPU-second",
            cpu.as_secs_f64(),
            per_second(cpu)
        ))
        .unwrap_or_default()
    );
    eprintln!(
        "  grep -c -i error: {:.2} s wall = {:.0} lines/s; {:.2} s on the CPU = {:.0} lines per CPU-second ({grep_errors} matching lines)",
        grep_time.as_secs_f64(),
        per_second(grep_time),
        grep_cpu.as_secs_f64(),
        per_second(grep_cpu),
    );

    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(line_count));
    group.sample_size(10);
    group.warm_up_time(std::time::Duration::from_secs(1));
    group.measurement_time(std::time::Duration::from_secs(30));
    group.bench_function("watchpost", |b| {
        b.iter_custom(|iters| {
            let before = thread_cpu().expect("/proc/thread-self/schedstat");
            for _ in 0..iters {
                black_box(ingest(&path, &config, &filter));
            }
            thread_cpu().expect("/proc/thread-self/schedstat") - before
        })
    });
    group.bench_function("grep -c -i error", |b| {
        b.iter_custom(|iters| {
            let before = children_cpu();
            for _ in 0..iters {
                black_box(grep_count(&path));
            }
            children_cpu() - before
        })
    });
    group.finish();
}

criterion_group!(benches, bench);

/// `WATCHPOST_BENCH_READBACK=1 cargo bench --bench ingest`: the read-back at start of a
/// 400 MB, 2,000,000-line JSONL hour (50 minutes of it, 10% ERROR), through the dashboard's
/// own path (`LogCollector`, polled at its interval until `errors_1h` is a number).
/// Prints wall time, CPU (user + system) and peak RSS; the file goes in a temporary
/// directory, removed after. `WATCHPOST_BENCH_READBACK_LINES` changes the line count.
fn readback() {
    use watchpost::collect::Collector;
    use watchpost::collect::logs::LogCollector;
    use watchpost::model::figure::Value;
    use watchpost::model::update::Update;

    let lines: u64 = std::env::var("WATCHPOST_BENCH_READBACK_LINES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000_000);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("hour.jsonl");
    let now = Utc::now();
    let span = Duration::minutes(50);
    let step = span.num_microseconds().unwrap() / lines as i64;
    let mut errors = 0u64;
    {
        let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&path).unwrap());
        let pad = "x".repeat(60);
        for i in 0..lines {
            let at = now - span + Duration::microseconds(step * i as i64);
            let ts = at.format("%Y-%m-%dT%H:%M:%S%.6fZ");
            let (level, message) = match i % 10 {
                3 => {
                    errors += 1;
                    ("ERROR", "Failed to call MCP tool")
                }
                5 => ("WARNING", "Login failed for user: invalid password"),
                _ => ("INFO", "Tool outcome recorded: success"),
            };
            writeln!(
                out,
                r#"{{"timestamp":"{ts}","level":"{level}","message":"{message}","request":{i},"latency_ms":{},"note":"{pad}"}}"#,
                i % 900
            )
            .unwrap();
        }
        out.flush().unwrap();
    }
    let bytes = std::fs::metadata(&path).unwrap().len();
    let config = Config::parse(&format!(
        "[logs.app]\nfiles = [{:?}]\n",
        path.display().to_string()
    ))
    .unwrap();
    let cpu = || usage(nix::sys::resource::UsageWho::RUSAGE_SELF).0;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (cpu_before, started) = (cpu(), std::time::Instant::now());
    let counted = runtime.block_on(async {
        let mut collector = LogCollector::new("app", &config.logs["app"]);
        loop {
            for update in collector.poll().await {
                if let Update::Readings { readings, .. } = update
                    && let Some(r) = readings.iter().find(|r| r.id == "app.errors_1h")
                    && let Value::Number(n) = r.value
                {
                    return n as u64;
                }
            }
            tokio::time::sleep(collector.interval()).await;
        }
    });
    let (wall, cpu_used) = (started.elapsed(), cpu() - cpu_before);
    let peak_kib: u64 = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0);
    println!(
        "read-back of {lines} lines ({:.0} MB) over 50 minutes: {counted} of {errors} ERROR lines counted; \
         wall {:.2} s, CPU {:.2} s, peak RSS {:.1} MB",
        bytes as f64 / 1e6,
        wall.as_secs_f64(),
        cpu_used.as_secs_f64(),
        peak_kib as f64 / 1024.0
    );
    assert_eq!(counted, errors, "every ERROR line of the window, once");
    lnav_side_by_side(&path, errors, cpu_used);
}

/// The same count by lnav, where it is installed: its JSON format for these lines is
/// installed into a throwaway `HOME`, and one SQL query counts the ERROR lines. Prints its
/// wall time, CPU and peak RSS (the child's, from `getrusage`) and watchpost's CPU ratio.
fn lnav_side_by_side(path: &Path, errors: u64, ours: std::time::Duration) {
    if Command::new("lnav").arg("-V").output().is_err() {
        println!("lnav is not installed: no side-by-side figure (apt-get install lnav)");
        return;
    }
    let home = tempfile::tempdir().expect("a temporary HOME for lnav");
    let format = home.path().join("jsonl.json");
    std::fs::write(
        &format,
        r#"{"jsonl_bench": {"title": "JSONL", "description": "timestamp, level, message",
            "json": true, "file-pattern": "\\.jsonl$", "timestamp-field": "timestamp",
            "level-field": "level", "body-field": "message",
            "level": {"error": "ERROR", "warning": "WARNING", "info": "INFO"}}}"#,
    )
    .unwrap();
    let installed = Command::new("lnav")
        .env("HOME", home.path())
        .arg("-i")
        .arg(&format)
        .output()
        .expect("lnav -i");
    assert!(installed.status.success(), "lnav -i: {installed:?}");
    let children = || usage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN);
    let (before, _) = children();
    let started = std::time::Instant::now();
    let out = Command::new("lnav")
        .env("HOME", home.path())
        .args([
            "-n",
            "-c",
            ";SELECT count(*) FROM jsonl_bench WHERE log_level = 'error'",
        ])
        .arg(path)
        .output()
        .expect("lnav");
    let wall = started.elapsed();
    let (after, peak_kib) = children();
    let text = String::from_utf8_lossy(&out.stdout);
    let counted: u64 = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .next_back()
        .unwrap_or(0);
    let cpu = after - before;
    println!(
        "lnav {} of the same file: {counted} of {errors} ERROR lines counted; wall {:.2} s, CPU {:.2} s, \
         peak RSS {:.1} MB; watchpost's CPU is {:.2}× lnav's",
        String::from_utf8_lossy(&Command::new("lnav").arg("-V").output().unwrap().stdout).trim(),
        wall.as_secs_f64(),
        cpu.as_secs_f64(),
        peak_kib as f64 / 1024.0,
        ours.as_secs_f64() / cpu.as_secs_f64().max(1e-9),
    );
}

fn main() {
    if std::env::var_os("WATCHPOST_BENCH_READBACK").is_some() {
        readback();
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
