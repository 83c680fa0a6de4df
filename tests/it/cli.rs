//! The command line as a user meets it: help that explains, and one clear line for mistakes.

use std::process::Command;

fn watchpost(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_watchpost"))
        .args(args)
        .output()
        .expect("run watchpost")
}

#[test]
fn help_explains_every_command() {
    let out = watchpost(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for word in ["demo", "run", "check", "validate", "--theme", "Exit codes"] {
        assert!(text.contains(word), "--help lacks {word}:\n{text}");
    }
    let out = watchpost(&["demo", "--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("simulated deployment"), "{text}");
}

#[test]
fn unknown_flag_is_one_line_and_exit_2() {
    for args in [
        &["--bogus"][..],
        &["check", "--config", "x.toml", "--format", "xml"],
        &["frobnicate"],
    ] {
        let out = watchpost(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?} gave:\n{err}");
        assert!(err.starts_with("watchpost: "), "{err}");
    }
}

#[test]
fn missing_config_is_a_config_error_for_check() {
    let out = watchpost(&["check", "--config", "/nonexistent/watchpost.toml"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/watchpost.toml") && err.contains("cannot read"),
        "{err}"
    );
}

#[test]
fn unknown_theme_names_the_choices() {
    let out = Command::new(env!("CARGO_BIN_EXE_watchpost"))
        .args(["demo", "--theme", "neon"])
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown theme") && err.contains("monochrome"),
        "{err}"
    );
}

/// A keymap with a mistake stops `demo` and `run` before anything starts: exit code 2 and
/// the file, line and column on stderr. Without a terminal, reaching the dashboard would
/// fail otherwise.
#[test]
fn a_keymap_mistake_is_exit_2_with_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("mine.toml");
    std::fs::write(&keys, "[keys]\nquit = \"x\"\npause = [\"p\", \"x\"]\n").unwrap();
    let keys = keys.to_str().unwrap();
    let run = |args: &[&str], config_home: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_watchpost"))
            .args(args)
            .env("XDG_CONFIG_HOME", config_home)
            .output()
            .unwrap()
    };
    let nowhere = dir.path().join("no-config-home");
    for args in [
        &["demo", "--keys", keys][..],
        &["run", "-c", "/nonexistent/watchpost.toml", "--keys", keys],
        &["--keys", keys, "-c", "/nonexistent/watchpost.toml"],
    ] {
        let out = run(args, &nowhere);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with(&format!(
                "watchpost: {keys}: line 3, column 15: `x` is also given to `quit` (line 2)"
            )),
            "{args:?}: {err}"
        );
    }
    // A --keys file that is not there is a mistake too.
    let out = run(&["demo", "--keys", "/nonexistent/keys.toml"], &nowhere);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/keys.toml: cannot read"), "{err}");
    // The default file is <config dir>/watchpost/keys.toml.
    let home = dir.path().join("config");
    std::fs::create_dir_all(home.join("watchpost")).unwrap();
    std::fs::write(
        home.join("watchpost/keys.toml"),
        "[keys]\nack = \"alt-a\"\n",
    )
    .unwrap();
    let out = run(&["demo"], &home);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("watchpost/keys.toml: line 2, column 7: \"alt-a\" is not a key"),
        "{err}"
    );
    let out = watchpost(&["run", "--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("--keys <FILE>") && text.contains("keys.toml"),
        "{text}"
    );
}

/// The subcommands `watchpost --help` lists (its "Commands:" section), `help` aside.
fn subcommands_in_help() -> Vec<String> {
    let out = watchpost(&["--help"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let names: Vec<String> = text
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|name| name != "help")
        .collect();
    assert!(names.len() >= 5, "no Commands: section in\n{text}");
    names
}

/// The bash completion script, sourced in a real bash, completes `watchpost ch` to
/// `check` and `watchpost completions ` to the three shells.
#[test]
fn bash_completion_completes_subcommands() {
    let complete = |words: &str| -> Vec<String> {
        let script = format!(
            r#"source <("$WATCHPOST" completions bash) || exit 9
COMP_LINE={words:?}
COMP_POINT=${{#COMP_LINE}}
read -ra COMP_WORDS <<< "$COMP_LINE"
[[ "$COMP_LINE" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
spec=$(complete -p watchpost) || exit 8
fn=$(sed -E 's/.*-F ([^ ]+).*/\1/' <<< "$spec")
"$fn" watchpost "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}""#
        );
        let out = Command::new("bash")
            .args(["--norc", "--noprofile", "-c", &script])
            .env("WATCHPOST", env!("CARGO_BIN_EXE_watchpost"))
            .output()
            .expect("run bash");
        assert!(
            out.status.success(),
            "bash failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert_eq!(complete("watchpost ch"), ["check"]);
    let mut shells = complete("watchpost completions ");
    shells.retain(|w| !w.starts_with('-'));
    assert_eq!(shells, ["bash", "zsh", "fish"]);
    for shell in ["zsh", "fish"] {
        let out = watchpost(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("check"),
            "{shell}"
        );
    }
}

/// `watchpost man` is a page `man -l` renders without a warning, and it names every
/// subcommand `--help` lists.
#[test]
fn man_page_renders_and_names_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("watchpost.1");
    let out = watchpost(&["man"]);
    assert!(out.status.success());
    std::fs::write(&page, &out.stdout).unwrap();
    let man_available = Command::new("man").arg("--version").output().is_ok();
    let rendered = if man_available {
        Command::new("man")
            .args(["--warnings=all", "-l"])
            .arg(&page)
            .env("MANWIDTH", "100")
            .env("MANPAGER", "cat")
            .output()
            .expect("run man")
    } else {
        Command::new("groff")
            .args(["-man", "-Tutf8", "-wall"])
            .arg(&page)
            .output()
            .expect("neither man nor groff: apt-get install man-db")
    };
    assert!(rendered.status.success());
    let warnings = String::from_utf8_lossy(&rendered.stderr);
    assert!(warnings.trim().is_empty(), "warnings:\n{warnings}");
    let text = String::from_utf8_lossy(&rendered.stdout);
    // Without formatting (groff's overstrikes when not run by man).
    let text: String = text
        .split('\u{8}')
        .enumerate()
        .map(|(i, part)| {
            if i == 0 {
                part
            } else {
                part.get(1..).unwrap_or("")
            }
        })
        .collect();
    assert!(
        text.contains("SYNOPSIS") && text.contains("COMMANDS"),
        "{text}"
    );
    for name in subcommands_in_help() {
        let heading = format!("watchpost {name}");
        assert!(
            text.lines().any(|l| l.trim() == heading),
            "the man page has no section for {heading}:\n{text}"
        );
    }
}

/// A subcommand run without an argument it needs says which one, on its one line: every
/// required argument in its `--help` usage line is named in the error.
#[test]
fn a_missing_argument_is_named() {
    let mut checked = Vec::new();
    for name in subcommands_in_help() {
        let help = watchpost(&[&name, "--help"]);
        let help = String::from_utf8_lossy(&help.stdout).to_string();
        let usage = help
            .lines()
            .find_map(|l| l.strip_prefix("Usage: "))
            .unwrap_or_else(|| panic!("{name} --help has no usage line:\n{help}"));
        let prefix = format!("watchpost {name}");
        // The required ones: outside [ ], e.g. `--config <FILE>`, `<SHELL>`,
        // `<--record <PATH>|--config <FILE>>` (one of them).
        let required: Vec<String> = usage
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{usage}"))
            .split_whitespace()
            .filter(|w| !w.starts_with('['))
            .flat_map(|w| w.split('|'))
            .map(|w| w.trim_start_matches('<').trim_end_matches('>').to_string())
            .filter(|w| w.starts_with("--") || w.chars().all(|c| c.is_ascii_uppercase()))
            .filter(|w| !w.is_empty())
            .collect();
        let flags: Vec<&String> = required.iter().filter(|w| w.starts_with("--")).collect();
        let wanted: Vec<&String> = if flags.is_empty() {
            required.iter().collect()
        } else {
            flags
        };
        if wanted.is_empty() {
            continue; // nothing required: `demo` would start the dashboard
        }
        let out = watchpost(&[&name]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{name} gave:\n{err}");
        for arg in &wanted {
            assert!(
                err.contains(arg.as_str()),
                "`watchpost {name}` does not name {arg}: {err}"
            );
        }
        assert!(
            err.contains(&format!("see watchpost {name} --help")),
            "{err}"
        );
        checked.push(name);
    }
    // run, check and validate need no --config: they look for one (see config_discovery).
    for name in ["report", "completions"] {
        assert!(
            checked.iter().any(|c| c == name),
            "{name} not checked: {checked:?}"
        );
    }
}

/// `--version` names the commit the binary was built from: the short HEAD of this checkout
/// (the package version alone where the source is not a git checkout).
#[test]
fn version_names_the_commit() {
    let out = watchpost(&["--version"]);
    assert!(out.status.success());
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let head = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let package = env!("CARGO_PKG_VERSION");
    match head {
        Some(head) => assert_eq!(version, format!("watchpost {package} ({head})")),
        None => assert_eq!(version, format!("watchpost {package}")),
    }
    // Every subcommand says the same.
    let out = watchpost(&["check", "--version"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&version["watchpost ".len()..]));
}

/// `--theme` and `--mouse` are for the commands that draw the dashboard: `check` and
/// `report` refuse them, naming the option and the command, and no help offers them there.
#[test]
fn display_options_only_where_they_do_something() {
    for (args, option, command) in [
        (
            &["check", "--theme", "x", "-c", "f.toml"][..],
            "--theme",
            "check",
        ),
        (&["check", "--mouse", "-c", "f.toml"], "--mouse", "check"),
        (
            &["report", "--theme", "x", "--record", "r"],
            "--theme",
            "report",
        ),
        (&["report", "--mouse", "--record", "r"], "--mouse", "report"),
        (
            &["validate", "--theme", "x", "-c", "f.toml"],
            "--theme",
            "validate",
        ),
    ] {
        let out = watchpost(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!(
                "unexpected argument '{option}' for `watchpost {command}`"
            )),
            "{args:?} gave: {err}"
        );
        let help = watchpost(&[command, "--help"]);
        assert!(
            !String::from_utf8_lossy(&help.stdout).contains(option),
            "{command} --help"
        );
    }
    // Before a subcommand they would be ignored just as well: refused.
    let out = watchpost(&["--theme", "light", "check", "-c", "f.toml"]);
    assert_eq!(out.status.code(), Some(2));
    // Where they draw, they are offered.
    for command in ["demo", "run"] {
        let help = String::from_utf8_lossy(&watchpost(&[command, "--help"]).stdout).to_string();
        assert!(
            help.contains("--theme") && help.contains("--mouse"),
            "{command}: {help}"
        );
    }
}

/// With no `--config`, run/check/validate take `./watchpost.toml`, else
/// `$XDG_CONFIG_HOME/watchpost/config.toml`; with neither, they say where they looked.
#[test]
fn config_discovery() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().join("cwd");
    let xdg = dir.path().join("xdg");
    std::fs::create_dir_all(&cwd).unwrap();
    std::fs::create_dir_all(xdg.join("watchpost")).unwrap();
    let in_dir = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_watchpost"))
            .args(args)
            .current_dir(&cwd)
            .env("XDG_CONFIG_HOME", &xdg)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let local = cwd.join("watchpost.toml");
    let user = xdg.join("watchpost").join("config.toml");

    // Neither: each command names both places, and exits as for an unreadable config.
    for (command, code) in [("validate", 1), ("check", 3), ("run", 1)] {
        let out = in_dir(&[command]);
        assert_eq!(out.status.code(), Some(code), "{command}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&local.display().to_string())
                && err.contains(&user.display().to_string())
                && err.contains("--config"),
            "{command}: {err}"
        );
    }
    let out = in_dir(&["check", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["worst"], "unknown");
    assert!(
        json["error"].as_str().unwrap().contains("config.toml"),
        "{json}"
    );

    // Only the user's: found.
    std::fs::write(&user, "[deployment]\nname = \"from-xdg\"\n").unwrap();
    let out = in_dir(&["validate"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"from-xdg\""));
    let out = in_dir(&["check", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["worst"], "ok", "{json}");

    // Both: ./watchpost.toml first.
    std::fs::write(&local, "[deployment]\nname = \"from-cwd\"\n").unwrap();
    let out = in_dir(&["validate"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"from-cwd\""));
    let out = in_dir(&["check"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("from-cwd"));

    // --config still wins over both.
    let given = dir.path().join("given.toml");
    std::fs::write(&given, "[deployment]\nname = \"given\"\n").unwrap();
    let out = in_dir(&["validate", "-c", given.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"given\""));
}
