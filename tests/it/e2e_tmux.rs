//! The real binary in a real terminal (tmux): `watchpost demo` shows every pane, `q`
//! quits, and the terminal is restored (main screen, cooked mode, echo on).

use crate::support::tmux::Tmux;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

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
    let Some(tmux) = Tmux::shell(120, 40) else {
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

/// `--keys` rebinds: with `quit = "x"` the footer says `x:quit`, `q` no longer quits
/// (the dashboard is still there after it) and `x` does, restoring the terminal.
#[test]
fn a_keymap_file_rebinds_quit() {
    let Some(tmux) = Tmux::shell(120, 40) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.toml");
    std::fs::write(&keys, "[keys]\nquit = \"x\"\n").unwrap();
    tmux.send(&[
        &format!(
            "{} demo --keys {}; echo EXIT=$?",
            binary().display(),
            keys.display()
        ),
        "Enter",
    ]);
    tmux.wait_for(
        "the footer with the rebound key",
        Duration::from_secs(30),
        |t| {
            let screen = t.capture();
            screen.contains("x:quit") && TITLES.iter().all(|title| screen.contains(title))
        },
    );
    tmux.send(&["q"]);
    // Long enough for a quit to show: the dashboard draws and exits within a frame or two.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        tmux.format("#{alternate_on}"),
        "1",
        "q quit though quit is x:\n{}",
        tmux.capture()
    );
    tmux.send(&["x"]);
    tmux.wait_for("the main screen back", Duration::from_secs(10), |t| {
        t.format("#{alternate_on}") == "0"
    });
    tmux.wait_for("a clean exit", Duration::from_secs(10), |t| {
        t.capture().contains("EXIT=0")
    });
}

#[test]
fn sigterm_restores_the_terminal() {
    let Some(tmux) = Tmux::shell(100, 30) else {
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
    let Some(tmux) = Tmux::shell(80, 24) else {
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
    let Some(tmux) = Tmux::shell(120, 36) else {
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
    let Some(tmux) = Tmux::shell(120, 36) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tmws.db");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(include_str!("../../assets/tmws_schema.sql"))
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
            "[deployment]\nname = \"session-test\"\n\n[sqlite.tmws]\npath = \"{}\"\npack = \"tmws\"\ninterval = \"1s\"\n",
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
    std::thread::sleep(Duration::from_secs(4)); // a few more refreshes (1 s is the minimum)
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

/// Log lines that try to drive the terminal: OSC 0 (title), OSC 52 (clipboard), OSC 8
/// (hyperlink), tmux's own rename, CSI 2J (clear) and cursor moves.
const ATTACK_LINES: &[&str] = &[
    "ERROR ATTACK-1 title \x1b]0;PWNED-TITLE\x07 end1",
    "ERROR ATTACK-2 clipboard \x1b]52;c;UFdORUQtQ0xJUA==\x07 end2",
    "ERROR ATTACK-3 link \x1b]8;;http://evil.invalid/\x1b\\click-here\x1b]8;;\x1b\\ end3",
    "ERROR ATTACK-4 clear \x1b[2J\x1b[H end4",
    "ERROR ATTACK-5 move \x1b[1;1HINJECTED\x1b[10A\x1b[5C end5",
    "ERROR ATTACK-6 rename \x1bkPWNED-NAME\x1b\\ end6",
];

/// What an attack could change: the pane's title, the window's name, tmux's paste
/// buffers (where OSC 52 lands with set-clipboard on).
fn terminal_state(tmux: &Tmux, pane: &str) -> (String, String, String) {
    let format = |fmt: &str| {
        let out = tmux
            .cmd(&["display-message", "-p", "-t", pane, fmt])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let buffers = tmux.cmd(&["list-buffers"]).output().unwrap();
    (
        format("#{pane_title}"),
        format("#{window_name}"),
        String::from_utf8_lossy(&buffers.stdout).into_owned(),
    )
}

fn arm(tmux: &Tmux) {
    for option in [["set-clipboard", "on"], ["allow-rename", "on"]] {
        assert!(
            tmux.cmd(&["set-option", "-g", option[0], option[1]])
                .status()
                .unwrap()
                .success()
        );
    }
    // A fixed window name: tmux's automatic-rename would otherwise follow whatever process
    // runs in the active pane (env, then bash), and only an escape sequence may change it.
    for args in [
        &["select-pane", "-t", "t.0", "-T", "BEFORE-TITLE"][..],
        &["rename-window", "-t", "t", "BEFORE-NAME"][..],
        &["set-window-option", "-t", "t", "automatic-rename", "off"][..],
    ] {
        assert!(tmux.cmd(args).status().unwrap().success(), "{args:?}");
    }
}

/// Lines with escape sequences written into a followed file while the dashboard runs
/// change nothing on the user's terminal: not the tmux pane's title or window name, not
/// the paste buffers, not the pane beside it, not the dashboard's own screen; the text
/// shows with the sequences taken out. A control run first shows the same bytes printed
/// raw do change all of that, so the checks can fail.
#[test]
fn escape_sequences_in_a_followed_log_change_nothing_on_the_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let attack = dir.path().join("attack.txt");
    std::fs::write(&attack, ATTACK_LINES.join("\n") + "\n").unwrap();

    // Control: cat prints the bytes as they are.
    {
        let Some(control) = Tmux::shell(100, 30) else {
            return;
        };
        arm(&control);
        let before = terminal_state(&control, "t.0");
        control.send(&[&format!("cat {}", attack.display()), "Enter"]);
        control.wait_for("the raw bytes to act", Duration::from_secs(10), |t| {
            let now = terminal_state(t, "t.0");
            now.0 == "PWNED-TITLE" && now.1 == "PWNED-NAME" && now.2.contains("PWNED-CLIP")
        });
        assert_ne!(before, terminal_state(&control, "t.0"));
    }

    let Some(tmux) = Tmux::shell(150, 40) else {
        return;
    };
    arm(&tmux);
    // A second pane under the dashboard with text of its own.
    assert!(
        tmux.cmd(&["split-window", "-v", "-l", "6", "-t", "t.0"])
            .arg("env -i PATH=/usr/bin:/bin HOME=/tmp TERM=screen-256color bash --norc --noprofile")
            .status()
            .unwrap()
            .success()
    );
    tmux.cmd(&[
        "send-keys",
        "-t",
        "t.1",
        "clear; echo OUTSIDE-MARKER",
        "Enter",
    ])
    .status()
    .unwrap();
    let capture = |pane: &str| {
        let out = tmux
            .cmd(&["capture-pane", "-p", "-t", pane])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    tmux.wait_for("the marker beside", Duration::from_secs(10), |_| {
        capture("t.1").lines().any(|l| l == "OUTSIDE-MARKER")
    });
    let outside_before = capture("t.1");

    let log = dir.path().join("app.log");
    std::fs::write(&log, "").unwrap();
    let config = dir.path().join("watchpost.toml");
    std::fs::write(
        &config,
        format!(
            "[deployment]\nname = \"escape-test\"\n\n[logs.app]\nfiles = [\"{}\"]\n",
            log.display()
        ),
    )
    .unwrap();
    tmux.cmd(&[
        "send-keys",
        "-t",
        "t.0",
        &format!(
            "{} run --no-record --config {}; echo EXIT=$?",
            binary().display(),
            config.display()
        ),
        "Enter",
    ])
    .status()
    .unwrap();
    // A config of one log: the panes it feeds.
    const LOG_ONLY: [&str; 2] = ["1 Errors", "2 Alerts"];
    tmux.wait_for("the dashboard", Duration::from_secs(30), |_| {
        let screen = capture("t.0");
        LOG_ONLY.iter().all(|title| screen.contains(title))
    });
    let state_before = terminal_state(&tmux, "t.0");
    assert_eq!(
        (state_before.0.as_str(), state_before.1.as_str()),
        ("BEFORE-TITLE", "BEFORE-NAME")
    );

    // Appended while the dashboard follows the file, one line at a time.
    {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        for line in ATTACK_LINES {
            writeln!(file, "{line}").unwrap();
            file.flush().unwrap();
            std::thread::sleep(Duration::from_millis(150));
        }
    }
    tmux.wait_for(
        "every attack line in the Errors pane",
        Duration::from_secs(20),
        |_| {
            let screen = capture("t.0");
            (1..=6).all(|n| screen.contains(&format!("ATTACK-{n}")))
        },
    );
    // Give a stray sequence time to act (and the dashboard a few frames).
    std::thread::sleep(Duration::from_millis(1500));
    let screen = capture("t.0");

    assert_eq!(
        terminal_state(&tmux, "t.0"),
        state_before,
        "title, window name or buffers changed"
    );
    assert_eq!(
        capture("t.1"),
        outside_before,
        "the pane beside the dashboard changed"
    );
    // The dashboard is whole: nothing cleared it or wrote over it.
    for title in LOG_ONLY {
        assert!(
            screen.contains(title),
            "{title} gone after the attack:\n{screen}"
        );
    }
    let first_row = screen.lines().next().unwrap_or("");
    assert!(
        first_row.contains("escape-test"),
        "header overwritten:\n{screen}"
    );
    assert!(
        !first_row.contains("INJECTED"),
        "a cursor move went through:\n{screen}"
    );
    // Each line shows sanitized: its text in order on one row, the payloads gone.
    for (n, words) in [
        (1, "title  end1"),
        (2, "clipboard  end2"),
        (3, "link click-here end3"),
        (4, "clear  end4"),
        (5, "move INJECTED end5"),
        // ESC k is taken out; its text is plain text without it (and renamed nothing).
        (6, "rename PWNED-NAME end6"),
    ] {
        let row = screen
            .lines()
            .find(|l| l.contains(&format!("ATTACK-{n}")))
            .unwrap_or_else(|| panic!("ATTACK-{n}:\n{screen}"));
        let shown: String = row.split_whitespace().collect::<Vec<_>>().join(" ");
        let wanted: String = words.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(shown.contains(&wanted), "ATTACK-{n}: {row:?}");
    }
    for payload in ["PWNED-TITLE", "UFdORUQtQ0xJUA", "evil.invalid"] {
        assert!(!screen.contains(payload), "{payload} on screen:\n{screen}");
    }
    tmux.cmd(&["send-keys", "-t", "t.0", "q"]).status().unwrap();
    tmux.wait_for("a clean exit", Duration::from_secs(10), |_| {
        capture("t.0").contains("EXIT=0")
    });
}

/// The demo's directory of one running demo, from its open files.
fn demo_dir_of(pid: u32) -> Option<PathBuf> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .find_map(|target| {
            let dir = target.parent()?;
            let name = dir.file_name()?.to_str()?;
            name.starts_with("watchpost-demo-")
                .then(|| dir.to_path_buf())
        })
}

#[test]
fn closing_the_demos_tmux_session_removes_its_files() {
    // The demo is the pane's own process, as when a tmux user runs `tmux new watchpost demo`
    // and later closes the session: it gets SIGHUP and its terminal is gone.
    let Some(tmux) = Tmux::start(100, 30, &format!("exec {} demo", binary().display())) else {
        return;
    };
    tmux.wait_for("the dashboard", Duration::from_secs(30), |t| {
        t.format("#{alternate_on}") == "1"
    });
    let pid: u32 = tmux.format("#{pane_pid}").parse().unwrap();
    let mut dir = None;
    tmux.wait_for("the demo's files", Duration::from_secs(10), |_| {
        dir = demo_dir_of(pid);
        dir.is_some()
    });
    let dir = dir.unwrap();
    assert!(dir.exists());
    assert!(
        tmux.cmd(&["kill-session", "-t", "t"])
            .status()
            .unwrap()
            .success()
    );
    let start = Instant::now();
    while std::path::Path::new(&format!("/proc/{pid}")).exists()
        && start.elapsed() < Duration::from_secs(20)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the demo still runs 20 s after its session closed"
    );
    assert!(!dir.exists(), "{} is left behind", dir.display());
}

#[test]
fn a_crashed_demos_files_are_removed_by_the_next_demo() {
    let Some(tmux) = Tmux::shell(100, 30) else {
        return;
    };
    // What a demo killed with SIGKILL leaves: its directory, its pid no longer running.
    let gone = Command::new("true").spawn().unwrap();
    let dead_pid = gone.id();
    let mut gone = gone;
    gone.wait().unwrap();
    let leftover = std::env::temp_dir().join(format!("watchpost-demo-test{}", rand_suffix()));
    std::fs::create_dir(&leftover).unwrap();
    std::fs::write(leftover.join("owner.pid"), dead_pid.to_string()).unwrap();
    std::fs::write(leftover.join("tmws.db"), vec![0u8; 4096]).unwrap();
    // A live demo's directory (this test process stands for it) stays.
    let live = std::env::temp_dir().join(format!("watchpost-demo-live{}", rand_suffix()));
    std::fs::create_dir(&live).unwrap();
    std::fs::write(live.join("owner.pid"), std::process::id().to_string()).unwrap();
    tmux.send(&[&format!("{} demo", binary().display()), "Enter"]);
    tmux.wait_for("the dashboard", Duration::from_secs(30), |t| {
        t.format("#{alternate_on}") == "1"
    });
    tmux.send(&["q"]);
    assert!(!leftover.exists(), "{} is still there", leftover.display());
    assert!(live.exists(), "a running demo's directory was removed");
    std::fs::remove_dir_all(&live).unwrap();
}

/// The demo at 80x24 during its scripted incident: the RBAC line leads with the one-minute
/// deny rate and its ✖ (the hour's rate, still low, comes after it), and the footer keeps
/// `q:quit` however little room it has.
#[test]
fn the_demo_at_80x24_keeps_the_minutes_deny_rate_and_quit_on_screen() {
    let command = format!(
        "{} demo --incident-after 3s --incident-duration 5m",
        binary().display()
    );
    let Some(tmux) = Tmux::start(80, 24, &command) else {
        return;
    };
    tmux.wait_for(
        "the minute's deny rate first, critical",
        Duration::from_secs(90),
        |t| {
            t.capture().lines().any(|line| {
                line.split("deny ").skip(1).any(|rest| {
                    let figure: String = rest.chars().take_while(|c| *c != ' ').collect();
                    figure.ends_with('%') && rest[figure.len()..].starts_with(" ✖")
                }) && line.contains("1m")
            })
        },
    );
    let screen = tmux.capture();
    let footer = screen.lines().last().unwrap_or_default();
    assert!(
        footer.contains("?:help") && footer.contains("q:quit"),
        "{screen}"
    );
    assert!(screen.contains("1m trend"), "{screen}");
}

/// A config of one JSONL log with two `[[logs.L.metric]]` figures and a health URL: the
/// screen has the panes those feed (Services, Figures, Errors, Alerts) and no pane that
/// says "no … source configured"; both figures are on it by name, with their values.
#[test]
fn a_logs_metrics_and_a_health_url_fill_a_screen_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.jsonl");
    let now = chrono::Utc::now();
    let mut lines = String::new();
    for i in 0..60 {
        let at = now - chrono::Duration::seconds(60 - i);
        let outcome = if i % 10 == 0 { "payment_failed" } else { "ok" };
        lines.push_str(&format!(
            "{{\"ts\":\"{}\",\"level\":\"INFO\",\"msg\":\"checkout\",\"ms\":{},\"outcome\":\"{outcome}\"}}\n",
            at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            100 + i * 5,
        ));
    }
    std::fs::write(&log, lines).unwrap();
    let health = crate::support::net::health_server(Default::default());
    let config = dir.path().join("watchpost.toml");
    std::fs::write(
        &config,
        format!(
            "[deployment]\nname = \"shop\"\n\n\
             [service.shop]\nhealth_url = \"{health}\"\n\n\
             [logs.app]\nfiles = [{log:?}]\n\n\
             [[logs.app.metric]]\nid = \"checkout_p95_ms\"\nname = \"checkout p95\"\nkind = \"p95\"\nfield = \"ms\"\nwindow = \"15m\"\nunit = \"ms\"\n\n\
             [[logs.app.metric]]\nid = \"payment_failures\"\nname = \"payment failures\"\nkind = \"count\"\nfield = \"outcome\"\nequals = \"payment_failed\"\nwindow = \"15m\"\n",
            log = log.display().to_string(),
        ),
    )
    .unwrap();
    let command = format!(
        "{} run --config {} --no-record",
        binary().display(),
        config.display()
    );
    let Some(tmux) = Tmux::start(120, 40, &command) else {
        return;
    };
    tmux.wait_for(
        "both figures with their values",
        Duration::from_secs(30),
        |t| {
            let screen = t.capture();
            let row = |name: &str, value: &str| {
                screen
                    .lines()
                    .any(|l| l.contains(name) && l.contains(value))
            };
            // p95 of 100, 105, … 395: the 57th of 60 values; 6 lines failed.
            row("checkout p95", "ms") && row("payment failures", "6")
        },
    );
    let screen = tmux.capture();
    assert!(!screen.contains("source configured"), "{screen}");
    for title in ["1 Services", "2 Figures", "3 Errors", "4 Alerts"] {
        assert!(screen.contains(title), "{title} missing:\n{screen}");
    }
    for absent in ["RBAC", "License", "Containers", "Host"] {
        assert!(!screen.contains(absent), "{absent} drawn:\n{screen}");
    }
}

/// The operator's habits in a real terminal: the filter typed with the cursor moved back
/// into it, `y` copying the selected line through OSC 52 (with `set-clipboard on` tmux
/// keeps it as a paste buffer: the line as shown, its escape sequences gone), and `:q`.
#[test]
fn y_copies_the_filtered_line_to_the_clipboard_and_colon_q_quits() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.jsonl");
    std::fs::write(
        &log,
        concat!(
            r#"{"timestamp": "2026-11-23T11:50:00Z", "level": "ERROR", "message": "upstream \u001b]0;PWNED-TITLE\u0007connection refused\u001b[2J (port 5432)"}"#,
            "\n",
            r#"{"timestamp": "2026-11-23T11:51:00Z", "level": "ERROR", "message": "disk full on /var"}"#,
            "\n",
        ),
    )
    .unwrap();
    let config = dir.path().join("watchpost.toml");
    std::fs::write(
        &config,
        format!(
            "[deployment]\nname = \"copy-test\"\n\n[logs.app]\nfiles = [{:?}]\n",
            log.display().to_string()
        ),
    )
    .unwrap();
    let Some(tmux) = Tmux::shell(120, 30) else {
        return;
    };
    assert!(
        tmux.cmd(&["set-option", "-g", "set-clipboard", "on"])
            .status()
            .unwrap()
            .success()
    );
    tmux.send(&[
        &format!(
            "{} run --no-record --config {}; echo EXIT=$?",
            binary().display(),
            config.display()
        ),
        "Enter",
    ]);
    tmux.wait_for(
        "both lines in the Errors pane",
        Duration::from_secs(30),
        |t| {
            let screen = t.capture();
            screen.contains("disk full on /var") && screen.contains("connection refused")
        },
    );
    // "refsed", the cursor three back, "u" where it is: "refused".
    tmux.send(&["/", "refsed", "Left", "Left", "Left", "u"]);
    tmux.wait_for("the filter typed", Duration::from_secs(10), |t| {
        t.capture().contains("filter: refused")
    });
    tmux.send(&["Enter", "y"]);
    tmux.wait_for(
        "the copy said in the footer",
        Duration::from_secs(10),
        |t| t.capture().contains("copied 1 line ("),
    );
    let expected = "2026-11-23 11:50:00 app ERROR upstream connection refused (port 5432)";
    tmux.wait_for(
        "the line in tmux's paste buffer",
        Duration::from_secs(10),
        |t| {
            let out = t.cmd(&["show-buffer"]).output().unwrap();
            String::from_utf8_lossy(&out.stdout) == expected
        },
    );
    let screen = tmux.capture();
    assert!(
        screen.contains(&format!("copied 1 line ({} bytes)", expected.len())),
        "{screen}"
    );
    assert!(!screen.contains("disk full"), "filtered out:\n{screen}");
    assert_ne!(tmux.format("#{pane_title}"), "PWNED-TITLE");
    tmux.send(&[":", "q", "Enter"]);
    tmux.wait_for("a clean exit", Duration::from_secs(10), |t| {
        t.capture().contains("EXIT=0")
    });
}
