//! Every integration test in one binary: one link of the crate and its dependencies
//! instead of one per file. Each file is a module; shared servers live in `support/`.

// First: the macros of support/ are seen only by the modules declared after it.
#[macro_use]
mod support;

mod check_cli;
mod cli;
mod collectors;
mod commands;
mod config;
mod db_ssh;
mod demo_world;
mod disk;
mod docker;
mod e2e_tmux;
mod hygiene;
mod layers;
mod logs;
mod logs_readback;
mod parse_props;
mod patterns;
mod postgres;
mod prometheus;
mod readonly_db;
mod record;
mod redis;
mod remote;
mod report;
mod rules;
mod sanitize;
mod screens;
mod soak;
mod sqlite_tmws;
mod ssh;
