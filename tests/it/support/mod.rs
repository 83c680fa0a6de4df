//! Real servers the tests start on loopback: OpenSSH, Prometheus and Alertmanager.

#[macro_use]
pub mod prometheus;
#[macro_use]
pub mod sshd;
