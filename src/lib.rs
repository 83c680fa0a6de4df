//! watchpost: a terminal dashboard for the 24 hours after a production deploy.
//!
//! Data flows one way: sources → collectors → state → rules → panes → terminal, and the
//! imports follow it: each top-level module imports only those below it, in the order
//! `tests/it/layers.rs` keeps (model, rules, config, transport, collect, state, record, ui,
//! then the wiring). Comments name the runbooks watchpost replaces as "seed 000" to
//! "seed 004", and their terms (checkpoint rhythm, escalation matrix, playbooks): see
//! `docs/runbooks.md`.

pub mod app;
pub mod check;
pub mod cli;
pub mod collect;
pub mod config;
pub mod demo;
pub mod model;
pub mod record;
pub mod rules;
pub mod runtime;
pub mod state;
pub mod transport;
pub mod tui;
pub mod ui;

/// mimalloc for every binary, test and bench built on this crate: the log path makes and
/// drops millions of small strings a second in a bounded ring, first in first out, which
/// fragments glibc's heap (its consolidation was a fifth of ingest time); mimalloc's
/// per-size free lists take that pattern at a constant cost.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
