use clap::Parser;
use std::process::ExitCode;
use watchpost::cli::{Cli, Command, DisplayArgs, Format};
use watchpost::config::Config;
use watchpost::ui::theme::Theme;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("watchpost: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(dispatch(cli));
    // Collector tasks may be blocked in I/O; don't wait for them.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    ExitCode::from(code)
}

/// Help and version print as usual; a usage error is one clear line and exit code 2.
fn usage_error(error: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(error.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand) {
        let _ = error.print();
        return ExitCode::SUCCESS;
    }
    let rendered = error.render().to_string();
    let first = rendered.lines().next().unwrap_or("invalid arguments");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    eprintln!("watchpost: {first} (see watchpost --help)");
    ExitCode::from(2)
}

async fn dispatch(cli: Cli) -> u8 {
    match cli.command {
        Some(Command::Demo) => report(run_demo(&cli.display).await),
        Some(Command::Run { config }) => report(run_dashboard(&config, &cli.display).await),
        Some(Command::Check { config, format }) => run_check(&config, format).await,
        Some(Command::Validate { config }) => validate(&config),
        None => match cli.config {
            Some(config) => report(run_dashboard(&config, &cli.display).await),
            None => {
                eprintln!(
                    "watchpost: give a config (`watchpost run --config FILE`) or try `watchpost demo`; see --help"
                );
                2
            }
        },
    }
}

fn report(result: color_eyre::Result<()>) -> u8 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("watchpost: {e:#}");
            1
        }
    }
}

/// The theme to use: NO_COLOR (any non-empty value) forces monochrome.
fn theme(display: &DisplayArgs) -> color_eyre::Result<Theme> {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let name = if no_color {
        "monochrome"
    } else {
        display.theme.as_str()
    };
    Theme::load(name).map_err(|e| color_eyre::eyre::eyre!(e))
}

async fn run_demo(display: &DisplayArgs) -> color_eyre::Result<()> {
    let theme = theme(display)?;
    watchpost::tui::install_hooks()?;
    let world = watchpost::demo::DemoWorld::start().await?;
    let config = world.config();
    let result = start_dashboard(&config, theme, display.mouse).await;
    drop(world); // stops the simulator and removes its files
    result
}

async fn run_dashboard(path: &std::path::Path, display: &DisplayArgs) -> color_eyre::Result<()> {
    let theme = theme(display)?;
    let config = Config::load(path)?;
    watchpost::tui::install_hooks()?;
    start_dashboard(&config, theme, display.mouse).await
}

async fn start_dashboard(config: &Config, theme: Theme, mouse: bool) -> color_eyre::Result<()> {
    let window = watchpost::state::Window::from_config(&config.deployment, chrono::Utc::now())
        .map_err(|e| color_eyre::eyre::eyre!(e))?;
    // One SSH connection per host for the whole process; key passphrases asked now,
    // before the TUI takes the terminal.
    let pool = watchpost::collect::host_pool(
        config,
        &mut watchpost::transport::prompt_passphrase_on_tty(),
    )?;
    let collectors = watchpost::collect::from_config(config, &pool);
    let state = watchpost::app::initial_state(window, &collectors, config);
    let app = watchpost::app::App::new(state, theme);
    watchpost::app::run(app, collectors, mouse).await
}

async fn run_check(path: &std::path::Path, format: Format) -> u8 {
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("watchpost: {e}");
            return 3;
        }
    };
    let pool = match watchpost::collect::host_pool(
        &config,
        &mut watchpost::transport::prompt_passphrase_on_tty(),
    ) {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("watchpost: {e}");
            return 3;
        }
    };
    let report = watchpost::check::run_checks(&config, &pool, chrono::Utc::now()).await;
    match format {
        Format::Json => println!("{}", report.to_json()),
        Format::Text => print!("{}", report.to_text()),
    }
    report.exit_code() as u8
}

fn validate(path: &std::path::Path) -> u8 {
    match Config::load(path) {
        Ok(config) => {
            print!("{}", watchpost::config::explain(&config));
            0
        }
        Err(e) => {
            eprintln!("watchpost: {e}");
            1
        }
    }
}
