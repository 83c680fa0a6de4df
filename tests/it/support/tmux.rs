//! The real binary in a real terminal: a tmux server of the test's own, its socket in a
//! temporary directory (removed with it), killed on drop, so a test leaves nothing behind
//! in `/tmp/tmux-UID/`.
//!
//! The session is `t`; methods without a target work on its first pane (`t`), the `_in`
//! ones on a pane or window the test names (`t:viewer`, `t.0`).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// A clean shell: no profile, a known PATH and TERM, whatever the machine's.
pub const CLEAN_SHELL: &str =
    "env -i PATH=/usr/bin:/bin HOME=/tmp TERM=screen-256color bash --norc --noprofile";

pub struct Tmux {
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmux {
    /// A session `t` of `width` x `height` running `command`; `None` (with a SKIP line)
    /// where tmux is not installed.
    pub fn start(width: u16, height: u16, command: &str) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            eprintln!("SKIP: tmux is not installed (scripts/test.sh installs it)");
            return None;
        }
        let dir = tempfile::tempdir().expect("a directory for the tmux socket");
        let tmux = Tmux {
            socket: dir.path().join("tmux"),
            _dir: dir,
        };
        let (width, height) = (width.to_string(), height.to_string());
        let started = tmux
            .cmd(&[
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                &width,
                "-y",
                &height,
                command,
            ])
            .status()
            .expect("tmux new-session");
        assert!(started.success(), "tmux new-session");
        Some(tmux)
    }

    /// A session running [`CLEAN_SHELL`].
    pub fn shell(width: u16, height: u16) -> Option<Tmux> {
        Tmux::start(width, height, CLEAN_SHELL)
    }

    /// A tmux command on this server.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("tmux");
        // -u: the screen is UTF-8 whatever the locale of the machine running the tests.
        c.arg("-u").arg("-S").arg(&self.socket).args(args);
        c
    }

    /// A new window `name` running `command`, in the background.
    pub fn window(&self, name: &str, command: &str) {
        let made = self
            .cmd(&["new-window", "-d", "-t", "t", "-n", name, command])
            .status()
            .unwrap();
        assert!(made.success(), "tmux new-window {name}");
    }

    pub fn send(&self, keys: &[&str]) {
        self.send_in("t", keys);
    }

    pub fn send_in(&self, target: &str, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", target];
        args.extend_from_slice(keys);
        assert!(self.cmd(&args).status().unwrap().success(), "{args:?}");
    }

    pub fn capture(&self) -> String {
        self.capture_in("t")
    }

    pub fn capture_in(&self, target: &str) -> String {
        let out = self
            .cmd(&["capture-pane", "-p", "-t", target])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A tmux format of the first pane (`#{alternate_on}`, `#{pane_pid}`).
    pub fn format(&self, fmt: &str) -> String {
        self.format_in("t", fmt)
    }

    pub fn format_in(&self, target: &str, fmt: &str) -> String {
        let out = self
            .cmd(&["display-message", "-p", "-t", target, fmt])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Waits until `done`, or fails with the first pane's screen.
    pub fn wait_for(&self, what: &str, timeout: Duration, mut done: impl FnMut(&Tmux) -> bool) {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if done(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("timed out waiting for {what}; screen:\n{}", self.capture());
    }

    /// Waits until `done` says so of `target`'s screen, or fails with it.
    pub fn wait_for_screen(
        &self,
        target: &str,
        what: &str,
        timeout: Duration,
        done: impl Fn(&str) -> bool,
    ) {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if done(&self.capture_in(target)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!(
            "timed out waiting for {what}; screen:\n{}",
            self.capture_in(target)
        );
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]).status();
    }
}
