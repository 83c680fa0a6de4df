//! watchpost: a terminal dashboard for the 24 hours after a production deploy.
//!
//! Data flows one way: sources → collectors → state → rules → panes → terminal.

pub mod app;
pub mod check;
pub mod cli;
pub mod collect;
pub mod config;
pub mod demo;
pub mod record;
pub mod rules;
pub mod state;
pub mod transport;
pub mod tui;
pub mod ui;
