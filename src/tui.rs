//! The terminal guard: raw mode and the alternate screen are entered once and restored
//! on normal exit, on drop, and on panic (the hook runs before color-eyre's report, so
//! the report lands on a sane terminal). Signals end the event loop, which drops the guard.

use crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
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
