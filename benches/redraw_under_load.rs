//! The screen keeps redrawing while a log source writes as fast as it can (README:
//! Performance). A writer thread appends seed-shaped lines to a file flat out; the real
//! log collector follows it on its own tokio task, as in `watchpost run`; the dashboard's
//! loop applies what arrives and draws the 200x60 overview (Errors focused) at most every
//! 100 ms, as `app::run` does, while a simulated user holds ↓ (a key every 25 ms, so there
//! is always something to draw).
//!
//! Printed: the gaps between consecutive frames (median, p99, max: the target is that no
//! gap goes much past the 100 ms frame interval), what one frame's work costs (applying
//! the updates since the last frame, in slices as `app::run` does, and drawing), and how
//! many lines the writer wrote and the dashboard took in. `WATCHPOST_BENCH_SECS` sets the length (default 20 s).

use chrono::Utc;
use ratatui::{Terminal, backend::TestBackend};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use watchpost::app::{self, Action, App};
use watchpost::collect::{self, Collector};
use watchpost::config::Config;
use watchpost::state::Window;
use watchpost::state::update::Update;
use watchpost::ui::PaneId;
use watchpost::ui::theme::Theme;

const FRAME_INTERVAL: Duration = Duration::from_millis(100);
const KEY_EVERY: Duration = Duration::from_millis(25);

/// Appends lines until `stop`, as fast as the disk takes them; counts what it wrote.
fn flood(path: &Path, stop: Arc<AtomicBool>, written: Arc<AtomicU64>) {
    let file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..1000 {
            let at = Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
            let _ = match n % 4 {
                0 => writeln!(
                    out,
                    r#"{{"timestamp": "{at}", "level": "ERROR", "message": "Failed to call MCP tool", "tool_name": "get-library-docs", "outcome": "timeout", "latency_ms": {}.0, "error_type": "TimeoutError"}}"#,
                    30_000 + n % 5000
                ),
                1 => writeln!(
                    out,
                    r#"{{"timestamp": "{at}", "level": "DEBUG", "message": "Tool outcome recorded: search_memories - success", "outcome": "success", "latency_ms": {}.5}}"#,
                    n % 900
                ),
                2 => writeln!(
                    out,
                    "ts={at} level=info msg=\"request served\" path=/api/v1/licenses/{} status=200",
                    n % 100_000
                ),
                _ => writeln!(
                    out,
                    "{at} ERROR connect() failed (111: Connection refused) while connecting to upstream, client: 10.0.{}.{}",
                    n % 256,
                    (n / 256) % 256
                ),
            };
            n += 1;
        }
        let _ = out.flush();
        written.store(n, Ordering::Relaxed);
    }
}

/// CPU time of this thread (Linux), to tell work from waiting for a core.
fn thread_cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse().ok())
        .map(Duration::from_nanos)
        .unwrap_or_default()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    // `cargo bench` passes --bench; a filter that names another bench skips this one.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if !args.is_empty()
        && !args
            .iter()
            .any(|a| "redraw_under_load".contains(a.as_str()))
    {
        return;
    }
    let secs: u64 = std::env::var("WATCHPOST_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("flood.log");
    std::fs::write(&path, "").unwrap();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let config =
            Config::parse(&format!("[logs.flood]\nfiles = [{:?}]\n", path.display().to_string()))
                .unwrap();
        let collectors: Vec<Box<dyn Collector>> = vec![Box::new(
            collect::logs::LogCollector::new("flood", &config.logs["flood"]),
        )];
        let window = Window::new("flood", Utc::now(), chrono::Duration::hours(24));
        let state = app::initial_state(window, &collectors, &config);
        let mut app = App::new(state, Theme::built_in("default").unwrap());
        app.handle(Action::Focus(PaneId::Errors));
        let (tx, mut rx) = mpsc::channel::<Update>(4096);
        let tasks: Vec<_> = collectors
            .into_iter()
            .map(|c| collect::spawn(c, tx.clone()))
            .collect();

        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let writer = {
            let (path, stop, written) = (path.clone(), stop.clone(), written.clone());
            std::thread::spawn(move || flood(&path, stop, written))
        };

        let mut terminal = Terminal::new(TestBackend::new(200, 60)).unwrap();
        let mut keys = tokio::time::interval(KEY_EVERY);
        let started = Instant::now();
        let end = started + Duration::from_secs(secs);
        let mut last_draw = Instant::now() - FRAME_INTERVAL;
        let mut dirty = true;
        let (mut gaps, mut frame_work, mut draws) = (Vec::new(), Vec::new(), Vec::new());
        // How long after it was due each frame began.
        let mut late = Vec::new();
        // The longest the loop was busy with lines in one turn (a frame waits at most this).
        let mut longest_turn = Duration::ZERO;
        let mut longest_turn_cpu = Duration::ZERO;
        let mut applying = Duration::ZERO;
        let mut applied_lines = 0u64;
        let mut previous_frame: Option<Instant> = None;
        while Instant::now() < end {
            let next_draw = last_draw + FRAME_INTERVAL;
            tokio::select! {
                // As app::run: take what is queued, apply it in slices until the frame
                // is due.
                Some(update) = rx.recv(), if !app.has_backlog() => {
                    let (t, cpu) = (Instant::now(), thread_cpu());
                    let mut take = |app: &mut App, update: Update| {
                        if let Update::Logs(lines) = &update {
                            applied_lines += lines.len() as u64;
                        }
                        app.queue(update);
                    };
                    take(&mut app, update);
                    while let Ok(update) = rx.try_recv() {
                        take(&mut app, update);
                    }
                    dirty |= app.apply_queued(next_draw);
                    applying += t.elapsed();
                    if t.elapsed() > longest_turn {
                        longest_turn = t.elapsed();
                        longest_turn_cpu = thread_cpu() - cpu;
                    }
                }
                _ = std::future::ready(()), if app.has_backlog() && !(dirty && Instant::now() >= next_draw) => {
                    let (t, cpu) = (Instant::now(), thread_cpu());
                    dirty |= app.apply_queued(next_draw);
                    applying += t.elapsed();
                    if t.elapsed() > longest_turn {
                        longest_turn = t.elapsed();
                        longest_turn_cpu = thread_cpu() - cpu;
                    }
                }
                _ = keys.tick() => {
                    // ↓ on the newest line: the tail keeps following, a frame is due.
                    app.handle(Action::Down(1));
                    dirty = true;
                }
                _ = tokio::time::sleep_until(next_draw), if dirty => {
                    let t = Instant::now();
                    late.push(t.saturating_duration_since(next_draw));
                    terminal.draw(|frame| app.draw(frame)).unwrap();
                    let drawn = t.elapsed();
                    draws.push(drawn);
                    frame_work.push(applying + drawn);
                    applying = Duration::ZERO;
                    if let Some(previous) = previous_frame {
                        gaps.push(t - previous);
                    }
                    previous_frame = Some(t);
                    last_draw = Instant::now();
                    dirty = false;
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        for task in tasks {
            task.abort();
        }
        let elapsed = started.elapsed().as_secs_f64();
        for list in [&mut gaps, &mut frame_work, &mut draws, &mut late] {
            list.sort();
        }
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let written = written.load(Ordering::Relaxed);
        println!(
            "redraw while a log source writes flat out ({secs} s, 200x60, Errors focused, a key every {} ms):",
            KEY_EVERY.as_millis()
        );
        println!(
            "  writer: {written} lines ({:.0} lines/s, {} MB); dashboard took in {applied_lines} lines ({:.0} lines/s); {} in the buffer",
            written as f64 / elapsed,
            size / (1024 * 1024),
            applied_lines as f64 / elapsed,
            app.shown().logs.len()
        );
        println!(
            "  frames: {}; gap between frames median {}, p99 {}, max {} (frame interval {})",
            gaps.len() + 1,
            ms(percentile(&gaps, 50.0)),
            ms(percentile(&gaps, 99.0)),
            ms(gaps.last().copied().unwrap_or_default()),
            ms(FRAME_INTERVAL)
        );
        println!(
            "  a frame began after it was due by: median {}, p99 {}, max {}",
            ms(percentile(&late, 50.0)),
            ms(percentile(&late, 99.0)),
            ms(late.last().copied().unwrap_or_default()),
        );
        println!(
            "  longest turn spent applying lines: {} ({} of it on the CPU)",
            ms(longest_turn),
            ms(longest_turn_cpu)
        );
        println!(
            "  one frame's work (apply what arrived + draw): median {}, p99 {}, max {}; the draw alone median {}",
            ms(percentile(&frame_work, 50.0)),
            ms(percentile(&frame_work, 99.0)),
            ms(frame_work.last().copied().unwrap_or_default()),
            ms(percentile(&draws, 50.0)),
        );
    });
    let _ = std::fs::remove_file(&path);
}
