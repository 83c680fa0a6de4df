//! Real servers the tests start on loopback (OpenSSH, Prometheus and Alertmanager, Redis,
//! PostgreSQL), a loop-mounted file system, the `watchpost check` binary's JSON and this
//! machine's Host collector.

pub mod check;
pub mod host;
pub mod loopfs;
pub mod net;
#[macro_use]
pub mod prometheus;
#[macro_use]
pub mod postgres;
#[macro_use]
pub mod redis;
#[macro_use]
pub mod sshd;
pub mod tmux;
pub mod updates;
