//! One file per pane. Each has `render(frame, area, ctx)`.

pub mod alerts;
pub mod common;
pub mod containers;
pub mod errors;
pub mod header;
pub mod host;
pub mod license;
pub mod metrics;
pub mod rbac;
pub mod services;
pub mod window;
