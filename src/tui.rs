//! The terminal guard: raw mode and the alternate screen are entered once and restored
//! on normal exit, on drop, and on panic (the hook runs before color-eyre's report, so
//! the report lands on a sane terminal). Signals end the event loop, which drops the guard.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use std::fmt;
use std::io::{self, Stdout, Write};
use std::mem::ManuallyDrop;

pub(crate) type Backend = CrosstermBackend<Stdout>;

pub(crate) struct Tui {
    /// Dropped by hand: ratatui's own drop prints to stderr when the cursor cannot be
    /// shown, and printing to a terminal that hung up (a closed tmux pane) panics.
    pub terminal: ManuallyDrop<Terminal<Backend>>,
    mouse: bool,
}

impl Tui {
    pub(crate) fn enter(mouse: bool) -> io::Result<Tui> {
        enable_raw_mode()?;
        let mut stdout = io::stdout();
        if let Err(e) = execute!(stdout, EnterAlternateScreen) {
            restore();
            return Err(e);
        }
        if mouse {
            execute!(stdout, EnableMouseCapture)?;
        }
        let mut terminal = Terminal::new(CrosstermBackend::new(stdout))?;
        terminal.hide_cursor()?;
        terminal.clear()?;
        Ok(Tui {
            terminal: ManuallyDrop::new(terminal),
            mouse,
        })
    }

    pub(crate) fn set_mouse(&mut self, on: bool) -> io::Result<()> {
        if on != self.mouse {
            if on {
                execute!(self.terminal.backend_mut(), EnableMouseCapture)?;
            } else {
                execute!(self.terminal.backend_mut(), DisableMouseCapture)?;
            }
            self.mouse = on;
        }
        Ok(())
    }

    /// Puts `text` on the clipboard of the terminal (OSC 52; tmux passes it on when its
    /// `set-clipboard` allows).
    pub(crate) fn copy(&mut self, text: &str) -> io::Result<()> {
        execute!(self.terminal.backend_mut(), CopyToClipboard(text))
    }
}

/// OSC 52 `c`: sets the clipboard to the text, base64 in the sequence, ended by BEL (which
/// older terminals and tmux read as well as ST).
pub(crate) struct CopyToClipboard<'a>(pub &'a str);

impl crossterm::Command for CopyToClipboard<'_> {
    fn write_ansi(&self, f: &mut impl fmt::Write) -> fmt::Result {
        write!(f, "\x1b]52;c;{}\x07", STANDARD.encode(self.0))
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        restore();
        // With the cursor shown, ratatui's drop has nothing to say; when the terminal is
        // gone the cursor cannot be shown, and the terminal is left to the process's exit.
        if self.terminal.show_cursor().is_ok() {
            // SAFETY: `terminal` is not used after this: the Tui is being dropped.
            unsafe { ManuallyDrop::drop(&mut self.terminal) };
        }
    }
}

/// Puts the terminal back: mouse off, main screen, cursor shown, cooked mode.
/// Safe to call more than once and from a panic hook.
pub fn restore() {
    let mut stdout = io::stdout();
    let _ = execute!(
        stdout,
        DisableMouseCapture,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
    let _ = disable_raw_mode();
}

/// Installs color-eyre with a panic hook that restores the terminal first. The report is
/// written without panicking when stderr is gone (a closed tmux pane): a panic inside the
/// panic hook would abort the process before anything is cleaned up.
pub fn install_hooks() -> color_eyre::Result<()> {
    let (panic_hook, eyre_hook) = color_eyre::config::HookBuilder::default().into_hooks();
    eyre_hook.install()?;
    std::panic::set_hook(Box::new(move |info| {
        restore();
        let _ = writeln!(io::stderr(), "{}", panic_hook.panic_report(info));
    }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes crossterm writes for a command.
    fn ansi(command: impl crossterm::Command) -> Vec<u8> {
        let mut out = Vec::new();
        execute!(out, command).unwrap();
        out
    }

    #[test]
    fn osc_52_carries_the_line_in_base64_and_ends_with_bel() {
        let line = "2026-11-23 11:50:00 tmws ERROR Failed to call MCP tool";
        assert_eq!(
            ansi(CopyToClipboard(line)),
            b"\x1b]52;c;MjAyNi0xMS0yMyAxMTo1MDowMCB0bXdzIEVSUk9SIEZhaWxlZCB0byBjYWxsIE1DUCB0b29s\x07"
        );
        // Not ASCII: its UTF-8 bytes.
        assert_eq!(ansi(CopyToClipboard("é")), b"\x1b]52;c;w6k=\x07");
    }
}
