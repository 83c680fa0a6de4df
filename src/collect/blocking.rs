//! The one way a collector runs a blocking library (rusqlite, sysinfo, file reads): each
//! worker has a thread of its own that holds its state (a connection, CPU counters, file
//! offsets) between runs, so the async executor never blocks.
//!
//! A thread of its own, not tokio's blocking pool: a log reader allocates every line it
//! reads, and the dashboard frees them later. From the pool, consecutive runs land on
//! whichever thread is idle, and each allocating thread keeps its own heap (mimalloc's,
//! as glibc's arenas): the 50,000-line ring ended up spread over several heaps, each kept
//! at its high-water mark, and resident memory rose by steps under a log flood while the
//! live heap stayed flat. One thread per worker allocates from one heap, which reuses
//! what the dashboard frees.
//!
//! Runs never overlap: the thread takes them in order. A poll cancelled while its run was
//! still going leaves the run to finish on the thread; the next run comes after it, on the
//! state it left. A run whose closure panicked is reported as [`WorkerError`] (the state
//! it held is made afresh for the next run), never lost silently.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;

/// Why a run produced no result.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WorkerError {
    /// The closure panicked; its message.
    #[error("panicked: {0}")]
    Panicked(String),
    /// The thread could not be started, or is gone.
    #[error("the worker thread is gone")]
    Gone,
}

/// A run, with the state it works on; says whether it panicked.
type Job<T> = Box<dyn FnOnce(&mut T) -> bool + Send>;

/// State of type `T` that blocking work runs on, one run at a time, on its own thread.
pub(crate) struct Worker<T> {
    /// To the worker's thread; dropping it ends the thread (and drops the state there).
    jobs: Option<mpsc::Sender<Job<T>>>,
}

impl<T: Send + 'static> Worker<T> {
    /// A worker whose state is `fresh()`, made again by `fresh` whenever a run loses it.
    pub(crate) fn new(fresh: impl Fn() -> T + Send + 'static) -> Self {
        let (tx, rx) = mpsc::channel::<Job<T>>();
        let spawned = std::thread::Builder::new()
            .name("watchpost-worker".into())
            .spawn(move || {
                let mut state = fresh();
                for job in rx {
                    if job(&mut state) {
                        state = fresh();
                    }
                }
            });
        Worker {
            jobs: spawned.ok().map(|_| tx),
        }
    }

    /// Runs `work` on the state on the worker's thread, after the previous run has finished.
    pub(crate) async fn run<R, F>(&mut self, work: F) -> Result<R, WorkerError>
    where
        F: FnOnce(&mut T) -> R + Send + 'static,
        R: Send + 'static,
    {
        let (result_tx, result_rx) = tokio::sync::oneshot::channel();
        let job: Job<T> =
            Box::new(
                move |state| match catch_unwind(AssertUnwindSafe(|| work(state))) {
                    Ok(result) => {
                        let _ = result_tx.send(Ok(result));
                        false
                    }
                    Err(payload) => {
                        let _ = result_tx.send(Err(WorkerError::Panicked(panic_text(&*payload))));
                        true
                    }
                },
            );
        let sent = self
            .jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send(job).is_ok());
        if !sent {
            return Err(WorkerError::Gone);
        }
        result_rx.await.unwrap_or(Err(WorkerError::Gone))
    }
}

/// A panic's message, when it has one.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "without a message".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn the_state_lives_between_runs() {
        let mut worker = Worker::new(|| 0u32);
        for expected in 1..=3 {
            let seen = worker
                .run(|n| {
                    *n += 1;
                    *n
                })
                .await
                .unwrap();
            assert_eq!(seen, expected);
        }
    }

    #[tokio::test]
    async fn a_panic_is_reported_and_the_next_run_starts_afresh() {
        let mut worker = Worker::new(|| 7u32);
        worker.run(|n| *n += 1).await.unwrap();
        let error = worker
            .run(|n: &mut u32| {
                if *n > 0 {
                    panic!("boom")
                }
            })
            .await
            .unwrap_err();
        assert!(error.to_string().contains("boom"), "{error}");
        assert_eq!(worker.run(|n| *n).await.unwrap(), 7);
    }

    #[tokio::test]
    async fn a_cancelled_run_is_waited_for_and_keeps_its_state() {
        let mut worker = Worker::new(Vec::<u32>::new);
        let slow = worker.run(move |v| {
            std::thread::sleep(Duration::from_millis(200));
            v.push(1);
        });
        // Cancelled while the blocking part still runs.
        let _ = tokio::time::timeout(Duration::from_millis(20), slow).await;
        let seen = worker
            .run(|v| {
                v.push(2);
                v.clone()
            })
            .await
            .unwrap();
        assert_eq!(
            seen,
            [1, 2],
            "the second run came after the first, on its state"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_run_is_on_the_workers_own_thread() {
        // What keeps a log reader's lines in one heap (see the module's comment).
        let mut worker = Worker::new(|| ());
        let mut threads = std::collections::HashSet::new();
        for _ in 0..20 {
            // Other blocking work at the same time, as other collectors do.
            let busy = tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(2)));
            threads.insert(worker.run(|_| std::thread::current().id()).await.unwrap());
            busy.await.unwrap();
        }
        assert_eq!(threads.len(), 1, "{threads:?}");
        assert_ne!(
            threads.into_iter().next(),
            Some(std::thread::current().id())
        );
    }

    #[tokio::test]
    async fn dropping_the_worker_ends_its_thread_and_its_state() {
        struct Held(mpsc::Sender<()>);
        impl Drop for Held {
            fn drop(&mut self) {
                let _ = self.0.send(());
            }
        }
        let (tx, rx) = mpsc::channel();
        let mut worker = Worker::new(move || Held(tx.clone()));
        worker.run(|_| ()).await.unwrap();
        drop(worker);
        rx.recv_timeout(Duration::from_secs(5))
            .expect("the state is dropped on the worker's thread");
    }
}
