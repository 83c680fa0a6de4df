//! The overview fitted to each example config at 80x24, 120x40 and 200x60, as it is drawn
//! before any source has answered: only the panes the config feeds, every figure the
//! config defines named (the Figures pane lists those not read yet), nothing that says
//! "no … source configured". The snapshots are the layouts, reviewed by eye.

use chrono::{TimeZone, Utc};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::path::Path;
use watchpost::app::{App, initial_state};
use watchpost::config::Config;
use watchpost::state::Window;
use watchpost::transport::HostPool;
use watchpost::ui::keys::Keymap;
use watchpost::ui::theme::Theme;

const EXAMPLES: [&str; 4] = ["fossawork", "meatymusic", "tmws", "warungin"];
const SIZES: [(u16, u16); 3] = [(80, 24), (120, 40), (200, 60)];

/// The example's dashboard at its first frame, at every size.
fn screens(name: &str) -> (Config, Vec<String>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(format!("{name}.toml"));
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let pool = HostPool::from_config(&config).unwrap();
    let collectors = watchpost::collect::from_config(&config, &pool, None);
    let start = Utc.with_ymd_and_hms(2026, 12, 3, 9, 0, 0).unwrap();
    let window = Window::new(name, start, chrono::Duration::hours(24));
    let theme = Theme::built_in("monochrome").unwrap();
    let mut app = App::new(initial_state(window, &collectors, &config), theme.clone());
    app.set_keymap(Keymap::default());
    let now = start + chrono::Duration::minutes(5);
    let drawn = SIZES
        .iter()
        .map(|&(width, height)| {
            let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
            terminal
                .draw(|frame| watchpost::ui::draw(frame, &app.state, &app.ui, &theme, now))
                .unwrap();
            let buffer = terminal.backend().buffer().clone();
            (0..height)
                .map(|y| {
                    (0..width)
                        .map(|x| buffer[(x, y)].symbol())
                        .collect::<String>()
                        .trim_end()
                        .to_string()
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect();
    (config, drawn)
}

#[tokio::test]
async fn every_example_gets_the_panes_it_feeds_and_names_every_figure_it_defines() {
    for name in EXAMPLES {
        let (config, drawn) = screens(name);
        for (screen, (width, height)) in drawn.iter().zip(SIZES) {
            assert!(
                !screen.contains("source configured"),
                "{name} at {width}x{height}:\n{screen}"
            );
            insta::assert_snapshot!(format!("{name}_{width}x{height}"), screen);
        }
        // Every log and SQL metric by name, where the Figures pane has the room.
        let tall = &drawn[2];
        for log in config.logs.values() {
            for metric in &log.metrics {
                assert!(
                    tall.contains(&metric.name),
                    "{name}: {} missing at 200x60:\n{tall}",
                    metric.name
                );
            }
        }
        for metrics in config.metrics.values() {
            for metric in metrics {
                let shown = metric.name.clone().unwrap_or_else(|| metric.id.clone());
                assert!(tall.contains(&shown), "{name}: {shown} missing:\n{tall}");
            }
        }
    }
}
