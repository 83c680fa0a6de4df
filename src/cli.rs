//! The command line: `demo`, `run`, `check`, `validate`, `report`, `completions`, `man`.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// A terminal dashboard for the 24 hours after a production deploy.
///
/// watchpost turns a post-deploy runbook (sqlite3 queries, curl /health, systemctl,
/// journalctl | grep, docker stats, thresholds, an hourly log) into one config file
/// and one live screen.
#[derive(Debug, Parser)]
#[command(name = "watchpost", version = env!("WATCHPOST_VERSION"), propagate_version = true)]
// `watchpost --config FILE` takes the dashboard's options itself; before a subcommand they
// would be ignored, so they are refused there (each subcommand has its own).
#[command(args_conflicts_with_subcommands = true)]
#[command(
    after_help = "Start with `watchpost demo` to see the dashboard on a simulated deployment.\n\
Keys inside the dashboard: press ? for the full list; rebind them in\n\
<config dir>/watchpost/keys.toml or --keys FILE ([keys] then action = \"key\", see the README).\n\
Exit codes of `check`: 0 all OK, 1 worst is WARN, 2 worst is CRIT, 3 unknown or config error.\n\
The watch window is recorded in <data dir>/watchpost/<deployment>.sqlite (or --record PATH);\n\
restarting resumes it, and `watchpost report` turns it into the monitoring log and sign-off."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Config file (same as `watchpost run --config FILE`). Default: ./watchpost.toml,
    /// else <config dir>/watchpost/config.toml.
    #[arg(long, short = 'c', global = false, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub record: RecordArgs,

    #[command(flatten)]
    pub keys: KeysArgs,

    #[command(flatten)]
    pub display: DisplayArgs,
}

/// The user's keymap file, for the commands that draw the dashboard.
#[derive(Debug, Clone, Default, Args)]
pub struct KeysArgs {
    /// Keymap file (TOML): a [keys] table of `action = "key"` or `action = ["key", "key"]`
    /// (quit = "Q", ack = ["a", "ctrl-a"]). Default: <config dir>/watchpost/keys.toml when
    /// it exists. A mistake in it is reported with its line and column, and exit code 2.
    ///
    /// Actions: help, focus_next, focus_previous, watch_window, zoom, back, up, down, page_up, page_down,
    /// top, bottom, quit, note_save, note_cancel, note_backspace, command_run,
    /// command_cancel, command_complete, command_backspace, sort_next, sort_reverse,
    /// filter, errors_only, wrap, follow, copy_line, patterns, line_fields, filter_apply,
    /// filter_cancel, filter_backspace, filter_older, filter_newer, ack, pause, note,
    /// command, mouse, and in every prompt cursor_left, cursor_right, cursor_start,
    /// cursor_end, delete_forward, delete_word, delete_to_start. Keys: a character (q, Q,
    /// ?), space, enter, esc, tab, backtab, backspace, delete, insert, up, down, left,
    /// right, pgup, pgdn, home, end, f1-f12, each also after ctrl- (ctrl-a).
    #[arg(long = "keys", value_name = "FILE")]
    pub file: Option<PathBuf>,
}

/// How the dashboard looks, for the commands that draw it (`demo`, `run`).
#[derive(Debug, Clone, Args)]
pub struct DisplayArgs {
    /// Colour theme: default, light, high-contrast, monochrome, or a user theme in
    /// <config dir>/watchpost/themes/NAME.toml. NO_COLOR forces monochrome.
    #[arg(long, value_name = "NAME", default_value = "default")]
    pub theme: String,

    /// Start with mouse capture on (toggle with `m`).
    #[arg(long)]
    pub mouse: bool,
}

impl Default for DisplayArgs {
    fn default() -> Self {
        DisplayArgs {
            theme: "default".into(),
            mouse: false,
        }
    }
}

/// Where the watch window is recorded.
#[derive(Debug, Clone, Default, Args)]
pub struct RecordArgs {
    /// The window's record (SQLite). Default: <data dir>/watchpost/<deployment>.sqlite.
    /// A second watchpost on the same record shows it as a viewer.
    #[arg(long, value_name = "PATH")]
    pub record: Option<PathBuf>,
    /// Keep no record (no history across restarts, nothing for `report`).
    #[arg(long, conflicts_with = "record")]
    pub no_record: bool,
}

/// Options of `watchpost demo`; all but `--record` are for tests and rehearsals.
#[derive(Debug, Clone, Default, Args)]
pub struct DemoArgs {
    /// Record the demo's window here and resume it when run again (the demo keeps no
    /// record by default).
    #[arg(long, value_name = "PATH")]
    pub record: Option<PathBuf>,
    /// Length of the watch window (e.g. 3m).
    #[arg(long, hide = true, value_name = "DURATION", value_parser = parse_duration)]
    pub window: Option<std::time::Duration>,
    /// Checkpoint every DURATION instead of seed 003's rhythm.
    #[arg(long, hide = true, value_name = "DURATION", value_parser = parse_duration)]
    pub checkpoint_every: Option<std::time::Duration>,
    /// The first incident starts this long after the start (then one an hour).
    #[arg(long, hide = true, value_name = "DURATION", value_parser = parse_duration)]
    pub incident_after: Option<std::time::Duration>,
    /// How long an incident lasts (default 45s).
    #[arg(long, hide = true, value_name = "DURATION", value_parser = parse_duration)]
    pub incident_duration: Option<std::time::Duration>,
    /// Write this many extra log lines a second (a soak's flood log).
    #[arg(long, hide = true, value_name = "LINES_PER_SEC", default_value_t = 0)]
    pub flood: u32,
    #[command(flatten)]
    pub keys: KeysArgs,
    #[command(flatten)]
    pub display: DisplayArgs,
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{text:?} is not a duration like 30s: {e}"))
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The whole dashboard on an embedded simulated deployment: a TMWS-shaped SQLite
    /// database written by a simulator, a growing JSONL log, a local health endpoint that
    /// fails during a scripted incident (first ~1 minute in, then every few minutes),
    /// this machine's host figures, and local Docker if reachable. No config, no network;
    /// leaves nothing behind (unless given --record).
    Demo(DemoArgs),
    /// The live dashboard for a real deployment, recording its watch window.
    Run {
        /// The deployment's config file (TOML). Default: ./watchpost.toml, else
        /// <config dir>/watchpost/config.toml.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: Option<PathBuf>,
        #[command(flatten)]
        record: RecordArgs,
        #[command(flatten)]
        keys: KeysArgs,
        #[command(flatten)]
        display: DisplayArgs,
    },
    /// Every check once, no TUI. Exit code 0 all OK, 1 worst is WARN, 2 worst is CRIT,
    /// 3 unknown or a config error (the Nagios convention).
    Check {
        /// The deployment's config file (TOML). Default: ./watchpost.toml, else
        /// <config dir>/watchpost/config.toml.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Parse the config and explain it: sources, figures, rules. Errors name the line.
    Validate {
        /// The deployment's config file (TOML). Default: ./watchpost.toml, else
        /// <config dir>/watchpost/config.toml.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// The window's monitoring log, final summary, KPIs and an unsigned sign-off sheet
    /// (seed 003's template), from its record.
    #[command(group(clap::ArgGroup::new("source").args(["record", "config"]).required(true).multiple(true)))]
    Report {
        /// The record to report on.
        #[arg(long, value_name = "PATH")]
        record: Option<PathBuf>,
        /// The deployment's config: its record (unless --record) and success criteria.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ReportFormat::Md)]
        format: ReportFormat,
        /// Report as of this RFC 3339 time instead of now.
        #[arg(long, hide = true, value_name = "TIME")]
        at: Option<String>,
    },
    /// Print the shell completion script (bash, zsh or fish) on stdout, e.g.
    /// `source <(watchpost completions bash)` in ~/.bashrc.
    Completions {
        /// The shell to complete in.
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the man page (roff) on stdout, e.g. `watchpost man > watchpost.1`.
    Man,
}

/// The shells `watchpost completions` writes a script for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

impl Shell {
    /// Writes this shell's completion script for the whole command line to `out`.
    pub fn write_completions(self, out: &mut dyn std::io::Write) {
        use clap::CommandFactory;
        use clap_complete::Shell as S;
        let shell = match self {
            Shell::Bash => S::Bash,
            Shell::Zsh => S::Zsh,
            Shell::Fish => S::Fish,
        };
        clap_complete::generate(shell, &mut Cli::command(), "watchpost", out);
    }
}

/// Writes the man page (roff) of the whole command line to `out`: one page, each
/// subcommand's synopsis, description and options under COMMANDS.
pub fn write_man_page(out: &mut dyn std::io::Write) -> std::io::Result<()> {
    use clap::CommandFactory;
    let command = Cli::command();
    let man = clap_mangen::Man::new(command.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    writeln!(out, ".SH COMMANDS")?;
    for sub in command.get_subcommands() {
        let full = format!("watchpost {}", sub.get_name());
        let man = clap_mangen::Man::new(sub.clone().bin_name(full.clone()));
        writeln!(out, ".SS \"{full}\"")?;
        // The subcommand's sections, their headings dropped: they sit under its own.
        let mut text = Vec::new();
        man.render_synopsis_section(&mut text)?;
        man.render_description_section(&mut text)?;
        if sub.get_arguments().any(|a| !a.is_hide_set()) {
            man.render_options_section(&mut text)?;
        }
        let text = String::from_utf8_lossy(&text)
            .replace(".SH SYNOPSIS\n", "")
            .replace(".SH DESCRIPTION\n", ".PP\n")
            .replace(".SH OPTIONS\n", "");
        out.write_all(text.as_bytes())?;
    }
    man.render_extra_section(out)?;
    man.render_version_section(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Markdown: the monitoring log, summary and sign-off sheet.
    Md,
    Json,
    /// A short plain-text summary for an incident channel (at most 15 lines).
    Text,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn check_takes_format() {
        let cli = Cli::try_parse_from([
            "watchpost",
            "check",
            "--config",
            "x.toml",
            "--format",
            "json",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Check {
                format: Format::Json,
                ..
            })
        ));
        assert!(
            Cli::try_parse_from(["watchpost", "check", "--config", "x", "--format", "xml"])
                .is_err()
        );
    }

    #[test]
    fn report_needs_a_record_or_a_config() {
        assert!(Cli::try_parse_from(["watchpost", "report"]).is_err());
        let cli = Cli::try_parse_from(["watchpost", "report", "--record", "w.sqlite"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Report {
                format: ReportFormat::Md,
                ..
            })
        ));
        let cli = Cli::try_parse_from(["watchpost", "report", "-c", "x.toml", "--format", "json"])
            .unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Report {
                format: ReportFormat::Json,
                ..
            })
        ));
    }

    #[test]
    fn keys_help_names_every_action_a_keymap_file_can_rebind() {
        let mut command = Cli::command();
        let run = command.find_subcommand_mut("run").unwrap();
        let arg = run.get_arguments().find(|a| a.get_id() == "file").unwrap();
        let help = arg.get_long_help().unwrap().to_string();
        for name in crate::ui::keys::Keymap::default().rebindable_names() {
            assert!(
                help.split([' ', ',', '.']).any(|w| w == name),
                "--keys help lacks {name}"
            );
        }
    }

    #[test]
    fn demo_takes_hidden_window_options() {
        let cli = Cli::try_parse_from([
            "watchpost",
            "demo",
            "--record",
            "d.sqlite",
            "--window",
            "3m",
            "--incident-after",
            "20s",
        ])
        .unwrap();
        match cli.command {
            Some(Command::Demo(args)) => {
                assert_eq!(args.window, Some(std::time::Duration::from_secs(180)));
                assert_eq!(
                    args.incident_after,
                    Some(std::time::Duration::from_secs(20))
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(
            Cli::try_parse_from([
                "watchpost",
                "run",
                "-c",
                "x",
                "--record",
                "r",
                "--no-record"
            ])
            .is_err()
        );
    }
}
