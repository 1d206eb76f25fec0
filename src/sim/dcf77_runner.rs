//! Plays the DCF77 signal generator in real time, an hour at a time, as the edges a GPIO line
//! would report (local time of each edge, line active or not).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::dcf77::Dcf77Signal;
use super::true_clock::TrueClock;
use crate::config::Dcf77SimConfig;
use crate::time::Realtime;

const CHUNK: i64 = 3600;

pub struct SimulatedDcf77 {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SimulatedDcf77 {
    pub fn start(
        config: Dcf77SimConfig,
        receiver_delay: f64,
    ) -> std::io::Result<(Self, Receiver<(Realtime, bool)>)> {
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("sim-dcf77".into())
            .spawn({
                let stop = stop.clone();
                move || {
                    let clock = TrueClock::new(config.clock_offset);
                    let mut start = clock.now().as_nanos().div_euclid(1_000_000_000) + 1;
                    for chunk in 0u64.. {
                        let signal = Dcf77Signal {
                            start,
                            duration: CHUNK as f64,
                            jitter: config.jitter,
                            receiver_delay,
                            glitch_rate: config.glitch_rate,
                            wrong_width_rate: config.wrong_width_rate,
                            missing_rate: config.missing_rate,
                            seed: config.seed.wrapping_add(chunk),
                            ..Dcf77Signal::default()
                        };
                        let origin = Realtime::from_timespec(start, 0);
                        for (t, level) in signal.generate().edges {
                            let Some(at) = clock.sleep_until(origin.add_secs_f64(t), &stop) else {
                                return;
                            };
                            if tx.send((at, level)).is_err() {
                                return;
                            }
                        }
                        start += CHUNK;
                    }
                }
            })?;
        Ok((
            SimulatedDcf77 {
                stop,
                thread: Some(thread),
            },
            rx,
        ))
    }
}

impl Drop for SimulatedDcf77 {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
