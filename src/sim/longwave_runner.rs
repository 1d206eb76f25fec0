//! Plays the longwave signal generator in real time, an hour at a time, as the edges a GPIO line
//! would report (local time of each edge, line active or not).

use std::sync::mpsc::{self, Receiver};

use super::longwave::LongwaveSignal;
use super::true_clock::TrueClock;
use crate::config::LongwaveSimConfig;
use crate::refclock::longwave::station::StationKind;
use crate::time::Realtime;
use crate::worker::Workers;

const CHUNK: i64 = 3600;

/// Plays the signal until dropped.
pub struct SimulatedLongwave {
    _workers: Workers,
}

impl SimulatedLongwave {
    pub fn start(
        station: StationKind,
        config: LongwaveSimConfig,
        receiver_delay: f64,
    ) -> std::io::Result<(Self, Receiver<(Realtime, bool)>)> {
        let (tx, rx) = mpsc::channel();
        let mut workers = Workers::default();
        workers.spawn(&format!("sim-{}", station.name()), move |stop| {
            let clock = TrueClock::new(config.clock_offset);
            let mut start = clock.now().as_nanos().div_euclid(1_000_000_000) + 1;
            for chunk in 0u64.. {
                let signal = LongwaveSignal {
                    station,
                    start,
                    duration: CHUNK as f64,
                    jitter: config.jitter,
                    receiver_delay,
                    glitch_rate: config.glitch_rate,
                    wrong_width_rate: config.wrong_width_rate,
                    missing_rate: config.missing_rate,
                    seed: config.seed.wrapping_add(chunk),
                    ..LongwaveSignal::default()
                };
                let origin = Realtime::from_timespec(start, 0);
                for (t, level) in signal.generate().edges {
                    let Some(at) = clock.sleep_until(origin.add_secs_f64(t), stop) else {
                        return;
                    };
                    if tx.send((at, level)).is_err() {
                        return;
                    }
                }
                // Wait out the hour even when it had no edges (missing_rate = 1), rather than
                // spin through the hours ahead, deaf to the stop flag.
                if clock
                    .sleep_until(origin.add_secs_f64(CHUNK as f64), stop)
                    .is_none()
                {
                    return;
                }
                start += CHUNK;
            }
        })?;
        Ok((SimulatedLongwave { _workers: workers }, rx))
    }
}
