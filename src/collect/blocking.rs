//! The one way a collector runs a blocking library (rusqlite, sysinfo, file reads): its state
//! is moved into `spawn_blocking` for a run and moved back after, so the async executor never
//! blocks and the state (a connection, CPU counters, file offsets) lives between polls.
//!
//! A run never overlaps the previous one: a poll that was cancelled while its run was still
//! going leaves the run's handle here, and the next run waits for it and takes the state back
//! from it. A run whose closure panicked is reported as [`WorkerError`] (the state it held
//! is gone; the next run starts from a fresh one), never lost silently.

use tokio::task::{JoinError, JoinHandle};

/// Why a run produced no result: the closure panicked (or its task was aborted).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub(crate) struct WorkerError(#[from] JoinError);

/// State of type `T` that blocking work runs on, one run at a time.
pub(crate) struct Worker<T> {
    /// The state between runs; `None` while a run has it.
    state: Option<T>,
    /// A run whose poll was cancelled before it finished: it still has the state.
    running: Option<JoinHandle<T>>,
    /// Makes the state afresh when a run lost it (a panic).
    fresh: Box<dyn Fn() -> T + Send>,
}

impl<T: Send + 'static> Worker<T> {
    /// A worker whose state is `fresh()`, made again by `fresh` whenever a run loses it.
    pub(crate) fn new(fresh: impl Fn() -> T + Send + 'static) -> Self {
        Worker {
            state: Some(fresh()),
            running: None,
            fresh: Box::new(fresh),
        }
    }

    /// Runs `work` on the state on a blocking thread, after the previous run has finished.
    pub(crate) async fn run<R, F>(&mut self, work: F) -> Result<R, WorkerError>
    where
        F: FnOnce(&mut T) -> R + Send + 'static,
        R: Send + 'static,
    {
        if let Some(previous) = self.running.as_mut() {
            let previous = previous.await;
            self.running = None;
            match previous {
                Ok(state) => self.state = Some(state),
                // That run panicked with nobody waiting for it: say so now.
                Err(e) => {
                    self.state = Some((self.fresh)());
                    return Err(e.into());
                }
            }
        }
        let mut state = self.state.take().unwrap_or_else(|| (self.fresh)());
        let (result_tx, mut result_rx) = tokio::sync::oneshot::channel();
        // Kept in `self` while awaited: if this future is dropped, the next run waits for it.
        let handle = self.running.insert(tokio::task::spawn_blocking(move || {
            let result = work(&mut state);
            let _ = result_tx.send(result);
            state
        }));
        let joined = handle.await;
        self.running = None;
        match joined {
            Ok(state) => {
                self.state = Some(state);
                // Sent before the task returned the state.
                Ok(result_rx
                    .try_recv()
                    .expect("a finished run has sent its result"))
            }
            Err(e) => {
                self.state = Some((self.fresh)());
                Err(e.into())
            }
        }
    }

    /// The state between runs (`None` while a cancelled run still holds it).
    #[cfg(test)]
    pub(crate) fn state(&self) -> Option<&T> {
        self.state.as_ref()
    }
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
        assert!(worker.state().is_none(), "the cancelled run still has it");
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
}
