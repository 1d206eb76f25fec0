//! Threads that run until they are told to stop: each polls a shared stop flag, and all are
//! told and joined when their owner is dropped (also when a later thread fails to start). And
//! what every driver thread does with a device that will not open: say so once, retry.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often a sleeping worker looks at its stop flag.
const STOP_CHECK: Duration = Duration::from_millis(500);

#[derive(Default)]
pub struct Workers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Workers {
    /// Starts a named thread running `f`, which must return soon after the flag it is given
    /// is set.
    pub fn spawn(
        &mut self,
        name: &str,
        f: impl FnOnce(&AtomicBool) + Send + 'static,
    ) -> std::io::Result<()> {
        let stop = self.stop.clone();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || f(&stop))?;
        self.threads.push(thread);
        Ok(())
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Sleeps `total`, waking every `STOP_CHECK` to see whether to stop.
pub fn pause(total: Duration, stop: &AtomicBool) {
    let mut left = total;
    while !left.is_zero() && !stop.load(Ordering::Relaxed) {
        let step = left.min(STOP_CHECK);
        std::thread::sleep(step);
        left -= step;
    }
}

/// Opening a device again and again: a failure is logged (and reported) once until an open
/// succeeds, not at every try; the caller `pause`s between tries.
#[derive(Default)]
pub struct Retry {
    failing: bool,
}

impl Retry {
    /// An open failed: true the first time in a row, when the caller says why.
    pub fn failed(&mut self) -> bool {
        !std::mem::replace(&mut self.failing, true)
    }

    /// An open succeeded: the next failure is news again.
    pub fn succeeded(&mut self) {
        self.failing = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dropping_stops_and_joins_every_thread() {
        let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut workers = Workers::default();
        for _ in 0..3 {
            let done = done.clone();
            workers
                .spawn("test", move |stop| {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                })
                .unwrap();
        }
        drop(workers);
        assert_eq!(done.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn a_failure_is_news_once_until_a_success() {
        let mut retry = Retry::default();
        assert!(retry.failed());
        assert!(!retry.failed());
        retry.succeeded();
        assert!(retry.failed());
    }
}
