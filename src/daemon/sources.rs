//! The running sources: their drivers, the simulated receivers the configuration asks for,
//! and what the drivers published.

use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::Event;
use crate::config::{GpsSourceConfig, LongwaveSourceConfig, SourceConfig};
use crate::refclock::gps::driver::{ClockFeedback, GpsDriver, GpsStatus, Injected};
use crate::refclock::longwave::driver::{LongwaveDriver, LongwaveStatus};
use crate::server::Shared;
use crate::sim::gps_runner::SimulatedGps;
use crate::sim::longwave_runner::SimulatedLongwave;
use crate::time::Realtime;
use crate::upstream::driver::{NtpDriver, NtpStatus};
use crate::web::status::DriverStatus;

/// The simulated receiver a GPS source asks for, started, and the inputs it gives its driver.
fn simulated_gps(
    g: &GpsSourceConfig,
    simulators: &mut Vec<Box<dyn Send>>,
) -> std::io::Result<Option<Injected>> {
    let Some(config) = &g.simulate else {
        return Ok(None);
    };
    let (simulator, pulses) = SimulatedGps::start(config.clone(), &g.name)?;
    let device = simulator.device.clone();
    simulators.push(Box::new(simulator));
    Ok(Some(Injected {
        device,
        pulses,
        pps_name: "the simulated PPS".into(),
    }))
}

/// The simulated longwave receiver a source asks for, started, and its edges.
fn simulated_longwave(
    d: &LongwaveSourceConfig,
    simulators: &mut Vec<Box<dyn Send>>,
) -> std::io::Result<Option<Receiver<(Realtime, bool)>>> {
    let Some(config) = &d.simulate else {
        return Ok(None);
    };
    let (simulator, edges) =
        SimulatedLongwave::start(d.station, config.clone(), d.receiver_delay.unwrap_or(0.0))?;
    simulators.push(Box::new(simulator));
    Ok(Some(edges))
}

/// The running sources: a driver per reference clock, and the simulators some read.
pub(super) struct Sources {
    pub(super) generation: u64,
    gps: Vec<GpsDriver>,
    longwave: Vec<LongwaveDriver>,
    ntp: Vec<NtpDriver>,
    /// The simulated receivers (`[source.simulate]`) whose signals the drivers read: dropped
    /// after them (fields drop in order), so no driver sees its input vanish.
    simulators: Vec<Box<dyn Send>>,
}

impl Sources {
    pub(super) fn none() -> Self {
        Sources {
            generation: 0,
            gps: Vec::new(),
            longwave: Vec::new(),
            ntp: Vec::new(),
            simulators: Vec::new(),
        }
    }

    /// Starts a driver for each configured reference clock. One that fails to start is
    /// logged and left out; the others run.
    pub(super) fn start(
        generation: u64,
        configs: &[SourceConfig],
        events: &Sender<Event>,
        shared: &Arc<Shared>,
    ) -> Self {
        let mut sources = Sources {
            generation,
            ..Sources::none()
        };
        for (index, config) in configs.iter().enumerate() {
            let events = events.clone();
            let sample = Box::new(move |s| {
                let _ = events.send(Event::Sample(generation, index, s));
            });
            let started = match config {
                SourceConfig::Local(_) => continue,
                SourceConfig::Gps(g) => {
                    let shared = shared.clone();
                    let feedback = Box::new(move |at| {
                        let clock = shared.clock.load();
                        ClockFeedback {
                            numbering: clock.numbering_offset(at),
                            changes: clock.changes,
                        }
                    });
                    simulated_gps(g, &mut sources.simulators)
                        .and_then(|injected| GpsDriver::start(g, injected, sample, feedback))
                        .map(|d| sources.gps.push(d))
                }
                SourceConfig::Longwave(d) => simulated_longwave(d, &mut sources.simulators)
                    .and_then(|injected| LongwaveDriver::start(d, injected, sample))
                    .map(|d| sources.longwave.push(d)),
                SourceConfig::Ntp(n) => {
                    let shared_clock = shared.clone();
                    let changes = Box::new(move || shared_clock.clock.load().changes);
                    NtpDriver::start(n, &shared.policy.load().keys, sample, changes)
                        .map(|d| sources.ntp.push(d))
                }
            };
            if let Err(e) = started {
                tracing::error!(source = %config.name(), "cannot start: {e}");
            }
        }
        sources
    }

    /// What each driver published last, by source name.
    pub(super) fn published(&self) -> Published {
        Published {
            gps: published(&self.gps, |d| (&d.name, &*d.status)),
            longwave: published(&self.longwave, |d| (&d.name, &*d.status)),
            upstream: published(&self.ntp, |d| (&d.name, &*d.status)),
        }
    }

    /// Stops every driver (each stops its threads when dropped).
    pub(super) fn stop(self) {
        drop(self);
    }
}

/// The drivers' statuses copied at one instant.
pub(super) struct Published {
    gps: Vec<(String, GpsStatus)>,
    longwave: Vec<(String, LongwaveStatus)>,
    upstream: Vec<(String, NtpStatus)>,
}

impl Published {
    pub(super) fn view(&self) -> DriverStatus<'_> {
        DriverStatus {
            gps: &self.gps,
            longwave: &self.longwave,
            upstream: &self.upstream,
        }
    }
}

/// Each driver's name and the status it last published.
fn published<D, S: Clone>(
    drivers: &[D],
    of: impl Fn(&D) -> (&String, &ArcSwap<S>),
) -> Vec<(String, S)> {
    drivers
        .iter()
        .map(|d| {
            let (name, status) = of(d);
            (name.clone(), (**status.load()).clone())
        })
        .collect()
}
