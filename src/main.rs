use clap::Parser;
use std::process::ExitCode;
use watchpost::cli::{
    Cli, Command, DemoArgs, DisplayArgs, Format, KeysArgs, RecordArgs, ReportFormat,
};
use watchpost::config::Config;
use watchpost::ui::keys::Keymap;
use watchpost::ui::theme::Theme;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    // Printing a script or a page needs no runtime.
    match &cli.command {
        Some(Command::Completions { shell }) => {
            shell.write_completions(&mut std::io::stdout().lock());
            return ExitCode::SUCCESS;
        }
        Some(Command::Man) => {
            return match watchpost::cli::write_man_page(&mut std::io::stdout().lock()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("watchpost: cannot write the man page: {e}");
                    ExitCode::from(1)
                }
            };
        }
        _ => {}
    }
    let runtime = match watchpost::runtime::build() {
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
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = error.print();
        return ExitCode::SUCCESS;
    }
    eprintln!("watchpost: {}", usage_line(&error.render().to_string()));
    ExitCode::from(2)
}

/// clap's message on one line: its first paragraph joined (so a missing argument is named,
/// not left on the next line), then where to look (`see watchpost run --help`).
fn usage_line(rendered: &str) -> String {
    let message = rendered
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    let message = if message.is_empty() {
        "invalid arguments"
    } else {
        message
    };
    // "Usage: watchpost run --config <FILE>" names the command the mistake is in.
    let command = rendered
        .lines()
        .find_map(|l| l.trim().strip_prefix("Usage: "))
        .map(|usage| {
            usage
                .split_whitespace()
                .take_while(|w| !w.starts_with(['-', '[', '<']))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .filter(|c| c.starts_with("watchpost"))
        .unwrap_or_else(|| "watchpost".into());
    // "unexpected argument '--theme' found" in `check`: say it is check that has no such option.
    let message = match message.strip_suffix(" found") {
        Some(unknown) if unknown.starts_with("unexpected argument") && command != "watchpost" => {
            format!("{unknown} for `{command}`")
        }
        _ => message.to_string(),
    };
    format!("{message} (see {command} --help)")
}

async fn dispatch(cli: Cli) -> u8 {
    match cli.command {
        Some(Command::Demo(args)) => match keymap(&args.keys) {
            Ok(keymap) => report(run_demo(&args, keymap).await),
            Err(code) => code,
        },
        Some(Command::Run {
            config,
            record,
            keys,
            display,
        }) => match (find_config(config.as_deref(), 1), keymap(&keys)) {
            (Err(code), _) | (_, Err(code)) => code,
            (Ok(config), Ok(keymap)) => {
                report(run_dashboard(&config, &record, &display, keymap).await)
            }
        },
        Some(Command::Check { config, format }) => {
            match watchpost::config::find(config.as_deref()) {
                Ok(config) => run_check(&config, format).await,
                Err(e) => check_failed(e, format),
            }
        }
        Some(Command::Validate { config }) => match find_config(config.as_deref(), 1) {
            Ok(config) => validate(&config),
            Err(code) => code,
        },
        Some(Command::Report {
            record,
            config,
            format,
            at,
        }) => run_report(record, config, format, at).await,
        // Handled before the runtime starts.
        Some(Command::Completions { .. } | Command::Man) => 0,
        None => match (find_config(cli.config.as_deref(), 2), keymap(&cli.keys)) {
            (Err(code), _) | (_, Err(code)) => code,
            (Ok(config), Ok(keymap)) => {
                report(run_dashboard(&config, &cli.record, &cli.display, keymap).await)
            }
        },
    }
}

/// The config given, or the one found where watchpost looks; when there is none, where it
/// looked goes to stderr and `code` is returned.
fn find_config(given: Option<&std::path::Path>, code: u8) -> Result<std::path::PathBuf, u8> {
    watchpost::config::find(given).map_err(|e| {
        eprintln!("watchpost: {e}");
        code
    })
}

fn report(result: color_eyre::Result<()>) -> u8 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            // Not eprintln!: it panics when the terminal has hung up.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "watchpost: {e:#}");
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

/// The keymap in effect: `--keys FILE`, else the default file when there is one. A mistake
/// in it is printed with its line and column, and ends the program with exit code 2 before
/// anything is started or the terminal touched.
fn keymap(args: &KeysArgs) -> Result<Keymap, u8> {
    Keymap::load(args.file.as_deref()).map_err(|e| {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "watchpost: {e}");
        2
    })
}

async fn run_demo(args: &DemoArgs, keymap: Keymap) -> color_eyre::Result<()> {
    let display = &args.display;
    let theme = theme(display)?;
    watchpost::tui::install_hooks()?;
    // A panic that ends the process skips the demo's Drop: remove its files first.
    let report_panic = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        watchpost::demo::remove_live_dirs();
        report_panic(info);
    }));
    let mut options = watchpost::demo::DemoOptions::default();
    if args.incident_after.is_some() || args.incident_duration.is_some() {
        let default = watchpost::demo::IncidentSchedule::default();
        options.schedule = watchpost::demo::IncidentSchedule::fast(
            args.incident_after.unwrap_or(default.first_after),
            args.incident_duration.unwrap_or(default.duration),
        );
    }
    options.flood_lines_per_sec = args.flood;
    let world = watchpost::demo::DemoWorld::start_with(options).await?;
    let mut config = world.config();
    if let Some(length) = args.window {
        config.deployment.length = length;
    }
    if let Some(every) = args.checkpoint_every {
        config.deployment.checkpoints = Some(watchpost::config::Checkpoints::Every(every));
    }
    // A recorded demo resumes its window when run again, like a real deployment.
    if args.record.is_some() {
        config.deployment.start = "now".into();
    }
    let record = RecordArgs {
        record: args.record.clone(),
        no_record: args.record.is_none(),
    };
    let result = start_dashboard(&config, &record, theme, keymap, display.mouse).await;
    drop(world); // stops the simulator and removes its files
    result
}

async fn run_dashboard(
    path: &std::path::Path,
    record: &RecordArgs,
    display: &DisplayArgs,
    keymap: Keymap,
) -> color_eyre::Result<()> {
    let theme = theme(display)?;
    let config = Config::load(path)?;
    watchpost::tui::install_hooks()?;
    start_dashboard(&config, record, theme, keymap, display.mouse).await
}

/// The success criteria of a config as the record keeps them.
fn criteria_json(config: &Config) -> serde_json::Value {
    let criteria = config
        .deployment
        .success_criteria
        .clone()
        .unwrap_or_else(watchpost::config::criteria::default_criteria);
    serde_json::to_value(criteria).unwrap_or_default()
}

async fn start_dashboard(
    config: &Config,
    record_args: &RecordArgs,
    theme: Theme,
    keymap: Keymap,
    mouse: bool,
) -> color_eyre::Result<()> {
    use color_eyre::eyre::eyre;
    use watchpost::record::{self, Role};
    use watchpost::state::RecordStatus;
    let now = chrono::Utc::now();
    let configured = watchpost::state::Window::from_config(&config.deployment, now)?;
    // One SSH connection per host for the whole process; key passphrases asked now,
    // before the TUI takes the terminal.
    let pool = watchpost::collect::host_pool(
        config,
        &mut watchpost::transport::prompt_passphrase_on_tty(),
    )?;
    let path = match (&record_args.record, record_args.no_record) {
        (_, true) => None,
        (Some(path), false) => Some(path.clone()),
        (None, false) => record::default_path(&config.deployment.name),
    };
    let settings = record::Settings {
        start_is_now: matches!(config.deployment.start.trim(), "now" | ""),
        max_mb: config
            .deployment
            .record_max_mb
            .unwrap_or(record::store::DEFAULT_MAX_MB),
        criteria: criteria_json(config),
        silences: config.deployment.silences.clone(),
        commit_every: record::store::COMMIT_EVERY,
    };
    // Opening the record is blocking I/O: off the executor.
    let opened = match &path {
        None => None,
        Some(path) => {
            let (path, window, settings) = (path.clone(), configured.clone(), settings.clone());
            Some(
                tokio::task::spawn_blocking(move || record::open(&path, &window, &settings, now))
                    .await?,
            )
        }
    };
    let window = match &opened {
        Some(Ok(opened)) => opened.window.clone(),
        _ => configured.clone(),
    };
    // What the record has counted of each log source: the sources count the rest for it.
    let marks = match &opened {
        Some(Ok(opened)) => {
            let (path, window_start) = (opened.path.clone(), opened.window.start);
            tokio::task::spawn_blocking(move || {
                record::Reader::open(&path)
                    .and_then(|reader| reader.log_watermarks())
                    .ok()
                    .map(|counted_until| watchpost::collect::RecordMarks {
                        window_start,
                        counted_until,
                    })
            })
            .await?
        }
        _ => None,
    };
    let collectors = watchpost::collect::from_config(config, &pool, marks.as_ref());
    let mut state = watchpost::app::initial_state(window, &collectors, config);
    state.silences = config
        .deployment
        .silences
        .iter()
        .map(|s| s.resolve(state.window.start))
        .collect::<Result<_, _>>()
        .map_err(|e| eyre!("deployment.silences: {e}"))?;
    let mut flash = None;
    let mut writer = None;
    match opened {
        None if !record_args.no_record => {
            state.record = RecordStatus::Failed(
                "no data directory to keep it in (set XDG_DATA_HOME or give --record PATH)".into(),
            );
        }
        None => {}
        Some(Err(e)) => state.record = RecordStatus::Failed(e.to_string()),
        Some(Ok(opened)) => {
            let is_writer = matches!(opened.role, Role::Writer { .. });
            if let Some(old) = &opened.archived {
                flash = Some(format!(
                    "a new window: the previous record is kept as {}",
                    old.display()
                ));
            }
            let (path, loaded) = {
                let path = opened.path.clone();
                let state = std::mem::replace(
                    &mut state,
                    watchpost::state::AppState::new(configured.clone()),
                );
                tokio::task::spawn_blocking(move || {
                    let mut state = state;
                    let result = record::Reader::open(&path)
                        .and_then(|reader| record::load_into(&reader, &mut state, now, is_writer));
                    (path, (state, result))
                })
                .await?
            };
            let (loaded, result) = loaded;
            state = loaded;
            if let Err(e) = result {
                flash = Some(format!("record {}: {e}", path.display()));
            }
            match opened.role {
                Role::Writer { writer: w, lock } => writer = Some((w, lock)),
                Role::Viewer { holder } => {
                    state.alerts_from_record = true;
                    state.record = RecordStatus::Viewer {
                        path: path.clone(),
                        holder,
                    };
                }
            }
        }
    }
    let mut app = watchpost::app::App::new(state, theme);
    app.set_keymap(keymap);
    if let Some((w, lock)) = writer {
        app.set_recording(w, lock);
    }
    if let Some(path) = path {
        app.record_setup = Some(watchpost::app::RecordSetup {
            path,
            configured,
            settings,
        });
    }
    app.on_alert = config.deployment.on_alert.clone();
    app.ui.flash = flash;
    watchpost::app::run(app, collectors, mouse).await
}

/// `watchpost report`: the record of a window as Markdown or JSON.
async fn run_report(
    record: Option<std::path::PathBuf>,
    config: Option<std::path::PathBuf>,
    format: ReportFormat,
    at: Option<String>,
) -> u8 {
    use watchpost::record::{self, report};
    let config = match config.map(|p| Config::load(&p)) {
        None => None,
        Some(Ok(config)) => Some(config),
        Some(Err(e)) => {
            eprintln!("watchpost: {e}");
            return 1;
        }
    };
    let path = match (record, &config) {
        (Some(path), _) => path,
        (None, Some(config)) => match record::default_path(&config.deployment.name) {
            Some(path) => path,
            None => {
                eprintln!("watchpost: no data directory to find the record in; give --record PATH");
                return 1;
            }
        },
        (None, None) => {
            eprintln!("watchpost: give --record PATH or --config FILE");
            return 2;
        }
    };
    let now = match at {
        None => chrono::Utc::now(),
        Some(text) => match chrono::DateTime::parse_from_rfc3339(&text) {
            Ok(t) => t.with_timezone(&chrono::Utc),
            Err(e) => {
                eprintln!("watchpost: --at {text:?} is not an RFC 3339 time: {e}");
                return 2;
            }
        },
    };
    let criteria = config
        .as_ref()
        .and_then(|c| c.deployment.success_criteria.clone());
    let built = tokio::task::spawn_blocking(move || {
        let reader = record::Reader::open(&path)
            .map_err(|e| format!("cannot open the record {}: {e}", path.display()))?;
        let inputs = report::Inputs::read(&reader).map_err(|e| e.to_string())?;
        let criteria = criteria.unwrap_or_else(|| report::recorded_criteria(&inputs.meta));
        Ok::<_, String>(report::build(&inputs, &criteria, now))
    })
    .await;
    match built {
        Ok(Ok(report)) => {
            match format {
                ReportFormat::Md => print!("{}", report.to_markdown()),
                ReportFormat::Json => println!("{}", report.to_json()),
                ReportFormat::Text => print!("{}", report.to_text()),
            }
            0
        }
        Ok(Err(e)) => {
            eprintln!("watchpost: {e}");
            1
        }
        Err(e) => {
            eprintln!("watchpost: the report task failed: {e}");
            1
        }
    }
}

/// `check` could not start: the error on stderr and, under --format json, as JSON on
/// stdout too (a script reading it never has to parse English); exit code 3 (unknown).
fn check_failed(error: String, format: Format) -> u8 {
    eprintln!("watchpost: {error}");
    if format == Format::Json {
        let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let json =
            serde_json::json!({ "at": at, "worst": "unknown", "checks": [], "error": error });
        println!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        );
    }
    3
}

async fn run_check(path: &std::path::Path, format: Format) -> u8 {
    let fail = |error: String| check_failed(error, format);
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(e) => return fail(e.to_string()),
    };
    let pool = match watchpost::collect::host_pool(
        &config,
        &mut watchpost::transport::prompt_passphrase_on_tty(),
    ) {
        Ok(pool) => pool,
        Err(e) => return fail(e.to_string()),
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
