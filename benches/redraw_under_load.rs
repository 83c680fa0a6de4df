//! The screen keeps redrawing while a log source writes as fast as it can (README:
//! Performance). A writer thread appends seed-shaped lines to a file flat out; the real
//! log collector follows it on its own tokio task, and the dashboard's own loop
//! (`app::event_loop`, the one `watchpost run` uses) applies what arrives and draws the
//! 200x60 overview with the Errors pane focused, while a simulated user holds ↓ (a key
//! every 25 ms, so there is always something to draw).
//!
//! Printed: the gaps between consecutive frames (median, p99, max; the target is that the
//! screen is redrawn within 100 ms), how long a draw takes, how many lines the writer
//! wrote and the dashboard took in, and how busy the dashboard's thread was.
//! `WATCHPOST_BENCH_SECS` sets the length (default 20 s).

use chrono::Utc;
use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::{Terminal, backend::TestBackend};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use watchpost::app::{self, Action, App, Screen};
use watchpost::collect::{self, Collector};
use watchpost::config::Config;
use watchpost::model::update::Update;
use watchpost::state::Window;
use watchpost::ui::PaneId;
use watchpost::ui::theme::Theme;

const KEY_EVERY: Duration = Duration::from_millis(25);

/// The frames, on a test backend, with when each was finished and how long it took.
struct TimedScreen {
    terminal: Terminal<TestBackend>,
    finished: Vec<Instant>,
    took: Vec<Duration>,
}

impl Screen for TimedScreen {
    fn draw(&mut self, app: &mut App) -> std::io::Result<()> {
        let started = Instant::now();
        Screen::draw(&mut self.terminal, app)?;
        self.took.push(started.elapsed());
        self.finished.push(Instant::now());
        Ok(())
    }
}

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

    // The runtime `watchpost run` uses.
    let runtime = watchpost::runtime::build().unwrap();
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
        let (tx, rx) = mpsc::channel::<Update>(4096);
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

        let mut screen = TimedScreen {
            terminal: Terminal::new(TestBackend::new(200, 60)).unwrap(),
            finished: Vec::new(),
            took: Vec::new(),
        };
        // ↓ on the newest line: the tail keeps following and a frame is always due.
        let keys = Box::pin(futures::stream::unfold(
            tokio::time::interval(KEY_EVERY),
            |mut every| async move {
                every.tick().await;
                let down = KeyEvent::new(KeyCode::Down, KeyModifiers::NONE);
                Some((Ok(Event::Key(down)), every))
            },
        ));
        let (started, cpu_before) = (Instant::now(), thread_cpu());
        let quit = Box::pin(tokio::time::sleep(Duration::from_secs(secs)));
        app::event_loop(&mut app, &mut screen, keys, rx, quit)
            .await
            .unwrap();
        let (elapsed, cpu) = (started.elapsed().as_secs_f64(), thread_cpu() - cpu_before);
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap();
        for task in tasks {
            task.abort();
        }
        let mut gaps: Vec<Duration> = screen
            .finished
            .windows(2)
            .map(|pair| pair[1] - pair[0])
            .collect();
        gaps.sort();
        screen.took.sort();
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let written = written.load(Ordering::Relaxed);
        let taken = app.shown().logs.pushed();
        println!(
            "redraw while a log source writes flat out ({secs} s, 200x60, Errors focused, a key every {} ms):",
            KEY_EVERY.as_millis()
        );
        println!(
            "  writer: {written} lines ({:.0} lines/s, {} MB); dashboard took in {taken} lines ({:.0} lines/s); {} in the buffer",
            written as f64 / elapsed,
            size / (1024 * 1024),
            taken as f64 / elapsed,
            app.shown().logs.len()
        );
        println!(
            "  frames: {}; gap between frames median {}, p99 {}, max {}; a draw median {}",
            screen.finished.len(),
            ms(percentile(&gaps, 50.0)),
            ms(percentile(&gaps, 99.0)),
            ms(gaps.last().copied().unwrap_or_default()),
            ms(percentile(&screen.took, 50.0)),
        );
        println!(
            "  the dashboard's thread was on a CPU {:.0}% of the time",
            100.0 * cpu.as_secs_f64() / elapsed
        );
    });
    let _ = std::fs::remove_file(&path);
}
