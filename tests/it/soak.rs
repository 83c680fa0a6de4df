//! The demo soaked with a flood log: every buffer is bounded, so the dashboard's memory
//! levels off and the record grows slowly. `scripts/soak.sh` runs the hour the README
//! quotes (minutes 10-20 against 50-60); the suite runs the same script for four minutes
//! under a heavier flood (seconds 40-80 against 200-240), on the release build the test
//! command makes first (the debug build's memory moves too much to judge in four minutes).

use std::path::PathBuf;
use std::process::Command;

/// The release binary beside this test's debug one, if it has been built.
fn release_binary() -> Option<PathBuf> {
    let debug = PathBuf::from(env!("CARGO_BIN_EXE_watchpost"));
    let release = debug.parent()?.parent()?.join("release").join("watchpost");
    release.exists().then_some(release)
}

#[test]
fn a_soak_of_the_demo_with_a_flood_log_keeps_its_memory_level() {
    let Some(binary) = release_binary() else {
        let why = "the release binary is not built (scripts/test.sh builds it first)";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
        eprintln!("SKIP: {why}");
        return;
    };
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("SKIP: tmux is not installed (scripts/test.sh installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("samples.csv");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/soak.sh");
    let out = Command::new("bash")
        .arg(script)
        .env("SOAK_MINUTES", "4")
        .env("SOAK_SAMPLE", "5")
        .env("FLOOD", "3000")
        .env("WATCHPOST_BIN", &binary)
        .env("SOAK_CSV", &csv)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}{stdout}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "the last minute's mean memory is more than 10 % from the second's (or the run failed)"
    );

    // The samples are real: memory of a running dashboard, and a record that grows.
    let samples: Vec<Vec<u64>> = std::fs::read_to_string(&csv)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|f| f.parse().unwrap()).collect())
        .collect();
    assert_eq!(samples.len(), 48, "a sample every 5 s for 4 minutes");
    let (first, last) = (&samples[0], &samples[samples.len() - 1]);
    assert!(
        samples.iter().all(|s| s[1] > 1024),
        "resident memory in KiB, of the live dashboard"
    );
    assert!(
        last[2] > first[2],
        "the record grows: {first:?} .. {last:?}"
    );
    assert!(
        last[3] > first[3],
        "the dashboard ran: {first:?} .. {last:?}"
    );
}
