//! The command line: `demo`, `run`, `check`, `validate`.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// A terminal dashboard for the 24 hours after a production deploy.
///
/// watchpost turns a post-deploy runbook (sqlite3 queries, curl /health, systemctl,
/// journalctl | grep, docker stats, thresholds, an hourly log) into one config file
/// and one live screen.
#[derive(Debug, Parser)]
#[command(name = "watchpost", version, propagate_version = true)]
#[command(
    after_help = "Start with `watchpost demo` to see the dashboard on a simulated deployment.\n\
Keys inside the dashboard: press ? for the full list.\n\
Exit codes of `check`: 0 all OK, 1 worst is WARN, 2 worst is CRIT, 3 unknown or config error."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Config file (same as `watchpost run --config FILE`).
    #[arg(long, short = 'c', global = false, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub display: DisplayArgs,
}

#[derive(Debug, Clone, Args)]
pub struct DisplayArgs {
    /// Colour theme: default, light, high-contrast, monochrome, or a user theme in
    /// <config dir>/watchpost/themes/NAME.toml. NO_COLOR forces monochrome.
    #[arg(long, global = true, value_name = "NAME", default_value = "default")]
    pub theme: String,

    /// Start with mouse capture on (toggle with `m`).
    #[arg(long, global = true)]
    pub mouse: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The whole dashboard on an embedded simulated deployment: a TMWS-shaped SQLite
    /// database written by a simulator, a growing JSONL log, a local health endpoint that
    /// fails during a scripted incident (first ~1 minute in, then every few minutes),
    /// this machine's host figures, and local Docker if reachable. No config, no network;
    /// leaves nothing behind.
    Demo,
    /// The live dashboard for a real deployment.
    Run {
        /// The deployment's config file (TOML).
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
    },
    /// Every check once, no TUI. Exit code 0 all OK, 1 worst is WARN, 2 worst is CRIT,
    /// 3 unknown or a config error (the Nagios convention).
    Check {
        /// The deployment's config file (TOML).
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Parse the config and explain it: sources, figures, rules. Errors name the line.
    Validate {
        /// The deployment's config file (TOML).
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
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
}
