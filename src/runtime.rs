//! The async runtime every command runs on: two workers for the collectors, and the
//! thread that calls `block_on` for the dashboard's own loop (`app::event_loop`).
//! The redraw benchmark builds the same one, so it measures what `watchpost run` does.
//!
//! (Running the collectors' workers at a lower priority than the dashboard was tried: on
//! two busy cores the monitored program then starved them, to an eighth of the lines.)

pub fn build() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}
