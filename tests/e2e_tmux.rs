//! The real binary in a real terminal (tmux): `watchpost demo` shows every pane, `q`
//! quits, and the terminal is restored (main screen, cooked mode, echo on).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(width: u16, height: u16) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            eprintln!("SKIP: tmux is not installed (scripts/test.sh installs it)");
            return None;
        }
        let socket = format!("watchpost-test-{}-{}", std::process::id(), rand_suffix());
        let tmux = Tmux { socket };
        let status = tmux
            .cmd(&[
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                &width.to_string(),
                "-y",
                &height.to_string(),
            ])
            .arg("env -i PATH=/usr/bin:/bin HOME=/tmp TERM=screen-256color bash --norc --noprofile")
            .status()
            .expect("tmux new-session");
        assert!(status.success());
        Some(tmux)
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("tmux");
        // -u: the screen is UTF-8 whatever the locale of the machine running the tests.
        c.arg("-u").arg("-L").arg(&self.socket).args(args);
        c
    }

    fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        assert!(self.cmd(&args).status().unwrap().success());
    }

    fn capture(&self) -> String {
        let out = self
            .cmd(&["capture-pane", "-p", "-t", "t"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn format(&self, fmt: &str) -> String {
        let out = self
            .cmd(&["display-message", "-p", "-t", "t", fmt])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn wait_for(&self, what: &str, timeout: Duration, mut done: impl FnMut(&Tmux) -> bool) {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if done(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("timed out waiting for {what}; screen:\n{}", self.capture());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]).status();
    }
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_watchpost"))
}

const TITLES: [&str; 7] = [
    "Services",
    "RBAC",
    "License",
    "Containers",
    "Host",
    "Errors",
    "Alerts",
];

#[test]
fn demo_shows_every_pane_and_q_restores_the_terminal() {
    let Some(tmux) = Tmux::start(120, 40) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let stty_before = tmp.path().join("stty-before");
    let stty_after = tmp.path().join("stty-after");
    tmux.send(&[&format!("stty -a > {}", stty_before.display()), "Enter"]);
    tmux.send(&[&format!("{} demo", binary().display()), "Enter"]);
    tmux.wait_for("every pane title", Duration::from_secs(30), |t| {
        let screen = t.capture();
        TITLES.iter().all(|title| screen.contains(title))
    });
    assert_eq!(
        tmux.format("#{alternate_on}"),
        "1",
        "the dashboard uses the alternate screen"
    );
    // Live figures arrive: the RBAC pane shows a deny percentage from the simulator.
    tmux.wait_for("a deny percentage", Duration::from_secs(30), |t| {
        t.capture().contains('%')
    });

    tmux.send(&["q"]);
    tmux.wait_for("the main screen back", Duration::from_secs(10), |t| {
        t.format("#{alternate_on}") == "0"
    });
    tmux.send(&[&format!("stty -a > {}", stty_after.display()), "Enter"]);
    tmux.wait_for("stty output", Duration::from_secs(5), |_| {
        std::fs::metadata(&stty_after)
            .map(|m| m.len() > 0)
            .unwrap_or(false)
    });
    let before = std::fs::read_to_string(&stty_before).unwrap();
    let after = std::fs::read_to_string(&stty_after).unwrap();
    for flag in ["icanon", "echo", "isig", "icrnl", "opost"] {
        let on = |s: &str| s.split_whitespace().any(|w| w == flag);
        assert_eq!(on(&before), on(&after), "terminal flag {flag} not restored");
        assert!(on(&after), "{flag} should be on after quitting");
    }
    assert_eq!(
        tmux.format("#{mouse_any_flag}"),
        "0",
        "mouse capture released"
    );
    assert_eq!(tmux.format("#{cursor_flag}"), "1", "cursor shown again");
    assert!(
        !tmux.capture().contains("RBAC"),
        "dashboard gone from the main screen"
    );
}

#[test]
fn sigterm_restores_the_terminal() {
    let Some(tmux) = Tmux::start(100, 30) else {
        return;
    };
    // The pid goes to a file: the dashboard's alternate screen hides anything echoed.
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    tmux.send(&[
        &format!(
            "{} demo & echo $! > {}; fg",
            binary().display(),
            pid_file.display()
        ),
        "Enter",
    ]);
    tmux.wait_for("the dashboard", Duration::from_secs(30), |t| {
        t.format("#{alternate_on}") == "1"
    });
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let status = Command::new("kill")
        .args(["-TERM", pid.trim()])
        .status()
        .unwrap();
    assert!(status.success());
    tmux.wait_for("the main screen back", Duration::from_secs(10), |t| {
        t.format("#{alternate_on}") == "0"
    });
}

#[test]
fn tiny_and_resized_terminals_never_crash() {
    let Some(tmux) = Tmux::start(80, 24) else {
        return;
    };
    tmux.send(&[
        &format!("{} demo; echo EXIT=$?", binary().display()),
        "Enter",
    ]);
    tmux.wait_for("the dashboard at 80x24", Duration::from_secs(30), |t| {
        let screen = t.capture();
        TITLES.iter().all(|title| screen.contains(title))
    });
    for (w, h) in [(20, 5), (1, 1), (200, 60), (80, 24)] {
        assert!(
            tmux.cmd(&[
                "resize-window",
                "-t",
                "t",
                "-x",
                &w.to_string(),
                "-y",
                &h.to_string()
            ])
            .status()
            .unwrap()
            .success()
        );
        std::thread::sleep(Duration::from_millis(400));
    }
    tmux.wait_for(
        "the dashboard after resizes",
        Duration::from_secs(10),
        |t| t.capture().contains("Alerts"),
    );
    tmux.send(&["?"]);
    tmux.wait_for("the help overlay", Duration::from_secs(5), |t| {
        t.capture().contains("acknowledge")
    });
    tmux.send(&["Escape"]);
    tmux.send(&["q"]);
    tmux.wait_for("a clean exit", Duration::from_secs(10), |t| {
        t.capture().contains("EXIT=0")
    });
}

#[test]
fn no_color_draws_without_colour() {
    let Some(tmux) = Tmux::start(120, 36) else {
        return;
    };
    tmux.send(&[&format!("NO_COLOR=1 {} demo", binary().display()), "Enter"]);
    tmux.wait_for("every pane title", Duration::from_secs(30), |t| {
        let screen = t.capture();
        TITLES.iter().all(|title| screen.contains(title))
    });
    std::thread::sleep(Duration::from_secs(2));
    let out = tmux
        .cmd(&["capture-pane", "-p", "-e", "-t", "t"])
        .output()
        .unwrap();
    let styled = String::from_utf8_lossy(&out.stdout);
    // Every SGR sequence tmux reports must be free of colour parameters (30–37, 40–47,
    // 90–97, 100–107, 38;…, 48;…); bold, reverse and the like are fine.
    let sgr = regex::Regex::new(r"\x1b\[([0-9;]*)m").unwrap();
    for cap in sgr.captures_iter(&styled) {
        let params: Vec<&str> = cap[1].split(';').collect();
        for p in &params {
            let n: u32 = p.parse().unwrap_or(0);
            assert!(
                !matches!(n, 30..=37 | 38 | 40..=47 | 48 | 90..=97 | 100..=107),
                "colour SGR {:?} on screen with NO_COLOR",
                &cap[0]
            );
        }
    }
    // Selection and severity stay visible: the focused pane is marked without colour.
    tmux.wait_for("the focus marker", Duration::from_secs(10), |t| {
        t.capture().contains('▶')
    });
    tmux.send(&["q"]);
}

/// A dashboard session reads the watched database and never changes it: the file is
/// byte-for-byte the same after minutes' worth of refreshes, and no journal is left.
#[test]
fn dashboard_session_leaves_the_database_unchanged() {
    let Some(tmux) = Tmux::start(120, 36) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tmws.db");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(include_str!("../assets/tmws_schema.sql"))
            .unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode=DELETE; INSERT INTO alembic_version VALUES ('571948cc671b');",
        )
        .unwrap();
        let now = chrono::Utc::now();
        for i in 0..500 {
            let at = (now - chrono::Duration::seconds(i * 5))
                .format("%Y-%m-%d %H:%M:%S%.6f")
                .to_string();
            let result = if i % 10 == 0 { "DENY" } else { "ALLOW" };
            conn.execute(
                "INSERT INTO security_audit_logs (event_type, agent_id, details, created_at) VALUES ('permission_check', 'a', ?1, ?2)",
                (format!(r#"{{"result":"{result}","operation":"license:generate","role":"viewer"}}"#), at),
            )
            .unwrap();
        }
    }
    let before = std::fs::read(&db).unwrap();
    let config = dir.path().join("watchpost.toml");
    std::fs::write(
        &config,
        format!(
            "[deployment]\nname = \"session-test\"\n\n[sqlite.tmws]\npath = \"{}\"\npack = \"tmws\"\ninterval = \"200ms\"\n",
            db.display()
        ),
    )
    .unwrap();
    tmux.send(&[
        &format!(
            "{} run --config {}; echo EXIT=$?",
            binary().display(),
            config.display()
        ),
        "Enter",
    ]);
    tmux.wait_for("the deny figure", Duration::from_secs(30), |t| {
        t.capture().contains("10.0%")
    });
    std::thread::sleep(Duration::from_secs(3)); // a dozen more refreshes
    tmux.send(&["q"]);
    tmux.wait_for("a clean exit", Duration::from_secs(10), |t| {
        t.capture().contains("EXIT=0")
    });
    assert!(
        std::fs::read(&db).unwrap() == before,
        "the watched database changed"
    );
    for suffix in ["-journal", "-wal"] {
        let side = dir.path().join(format!("tmws.db{suffix}"));
        assert!(!side.exists(), "{} left behind", side.display());
    }
}
