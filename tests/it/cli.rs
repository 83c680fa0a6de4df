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
        .args(["--theme", "neon", "demo"])
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
