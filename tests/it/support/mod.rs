//! Real servers the tests start on loopback (OpenSSH, Prometheus and Alertmanager, Redis,
//! PostgreSQL) and a loop-mounted file system.

pub mod loopfs;
#[macro_use]
pub mod prometheus;
#[macro_use]
pub mod postgres;
#[macro_use]
pub mod redis;
#[macro_use]
pub mod sshd;
