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
