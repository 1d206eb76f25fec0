//! Threads that run until they are told to stop: each polls a shared stop flag, and all are
//! told and joined when their owner is dropped (also when a later thread fails to start).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

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
}
