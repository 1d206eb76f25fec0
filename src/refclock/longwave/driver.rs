//! Runs a longwave reference clock (DCF77, MSF, WWVB): a thread reading the GPIO line's edge
//! events into the station's decoder, giving a sample for each second the decoder labels, and
//! publishing the signal quality.
//!
//! The edges are stamped by the kernel on CLOCK_MONOTONIC, which the kernel actuator slews but
//! never steps: the decoder's stream of pulse widths and minute gaps stays whole when the
//! system clock is stepped (by a day at first start, from the longwave source alone). Each sample's local
//! time is the system clock's reading at the marker, converted when the sample is made.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use gpiocdev::line::{EdgeDetection, EdgeKind, EventClock, Value};

use super::decoder::{Decoder, Event, Quality};
use super::leap::LeapVote;
use super::station::{Station, StationKind};
use crate::clock::system::{monotonic_at_realtime, monotonic_now, realtime_at_monotonic};
use crate::config::{Bias, LongwaveSourceConfig};
use crate::refclock::dcf77::station::Dcf77;
use crate::refclock::msf::station::Msf;
use crate::refclock::wwvb::station::Wwvb;
use crate::refclock::Sample;
use crate::time::Realtime;
use crate::worker::{pause, Retry, Workers};

/// A second marker's error bound: the AM receivers' timing jitter, a few milliseconds.
pub const LONGWAVE_ERROR: f64 = 0.005;
/// Added to the error bound while `receiver_delay` is not set: modules are 30 to 100 ms late,
/// and clients must not be told the time is better than that.
const UNMEASURED_DELAY: f64 = 0.1;
const POLL: Duration = Duration::from_millis(500);
const RETRY: Duration = Duration::from_secs(5);
/// Seconds without an edge after which the signal counts as lost (pulses come every second).
const SILENT: f64 = 5.0;

#[derive(Clone, Debug, Default)]
pub struct LongwaveStatus {
    pub station: StationKind,
    pub quality: Quality,
    pub connected: bool,
    /// Why the line cannot be opened, while it cannot.
    pub line_error: Option<String>,
    /// As configured: `None` when not measured.
    pub receiver_delay: Option<f64>,
    /// CLOCK_MONOTONIC nanoseconds (never stepped, unlike the system clock this source may
    /// step) of the line's opening, the last edge and the last accepted minute.
    pub opened: Option<i64>,
    pub last_edge: Option<i64>,
    pub last_minute: Option<i64>,
}

/// How long the power-on line stays off before it is switched on.
const PON_EDGE: Duration = Duration::from_millis(200);

enum Edges {
    Gpio {
        events: gpiocdev::Request,
        /// Held so the receiver stays powered.
        _pon: Option<gpiocdev::Request>,
    },
    /// Edges from elsewhere in the process (the daemon injects a simulator's).
    Injected(Receiver<(Realtime, bool)>),
}

impl Edges {
    fn open(c: &LongwaveSourceConfig) -> Result<Self, gpiocdev::Error> {
        let on = if c.pon_level {
            Value::Active
        } else {
            Value::Inactive
        };
        let pon = match c.pon_line {
            Some(line) => {
                // Some modules (the Pollin DCF1) start only on an edge into the power-on level,
                // not on a level they were powered up with: go through the other level first.
                let request = gpiocdev::Request::builder()
                    .on_chip(&c.chip)
                    .with_consumer("pitime-dcf77-pon")
                    .with_line(line)
                    .as_output(on.not())
                    .request()?;
                std::thread::sleep(PON_EDGE);
                request.set_value(line, on)?;
                Some(request)
            }
            None => None,
        };
        Ok(Edges::Gpio {
            events: request_line(
                &c.chip,
                c.line,
                c.active_low,
                c.bias,
                c.debounce,
                "pitime-dcf77",
            )?,
            _pon: pon,
        })
    }

    /// The next edge: (CLOCK_MONOTONIC nanoseconds, line active), or `None` after `POLL`.
    fn next(&mut self) -> Result<Option<(i64, bool)>, String> {
        match self {
            Edges::Gpio { events, .. } => {
                if !events.wait_edge_event(POLL).map_err(|e| e.to_string())? {
                    return Ok(None);
                }
                let e = events.read_edge_event().map_err(|e| e.to_string())?;
                Ok(Some((e.timestamp_ns as i64, e.kind == EdgeKind::Rising)))
            }
            // Injected edges are stamped on the system clock, as they happen.
            Edges::Injected(rx) => match rx.recv_timeout(POLL) {
                Ok((at, active)) => Ok(Some((monotonic_at_realtime(at), active))),
                Err(RecvTimeoutError::Timeout) => Ok(None),
                Err(RecvTimeoutError::Disconnected) => Err("the injected edges stopped".into()),
            },
        }
    }
}

/// Requests `line` for both edges, stamped on CLOCK_MONOTONIC: as the driver reads a longwave
/// receiver, and as `pitime capture` and `pitime detect` watch a line.
pub fn request_line(
    chip: &Path,
    line: u32,
    active_low: bool,
    bias: Bias,
    debounce: f64,
    consumer: &str,
) -> Result<gpiocdev::Request, gpiocdev::Error> {
    let mut builder = gpiocdev::Request::builder();
    builder
        .on_chip(chip)
        .with_consumer(consumer)
        .with_line(line)
        .as_input()
        .with_edge_detection(EdgeDetection::BothEdges)
        .with_event_clock(EventClock::Monotonic);
    if active_low {
        builder.as_active_low();
    }
    let bias = match bias {
        Bias::AsIs => None,
        Bias::PullUp => Some(gpiocdev::line::Bias::PullUp),
        Bias::PullDown => Some(gpiocdev::line::Bias::PullDown),
        Bias::Disabled => Some(gpiocdev::line::Bias::Disabled),
    };
    if let Some(bias) = bias {
        builder.with_bias(bias);
    }
    if debounce > 0.0 {
        builder.with_debounce_period(Duration::from_secs_f64(debounce));
    }
    builder.request()
}

/// Decodes the receiver until dropped.
pub struct LongwaveDriver {
    _workers: Workers,
    pub status: Arc<ArcSwap<LongwaveStatus>>,
    pub name: String,
}

impl LongwaveDriver {
    /// Starts decoding the configured GPIO line, or `injected` edges (a simulated receiver's:
    /// line levels with their system-clock times).
    pub fn start(
        config: &LongwaveSourceConfig,
        injected: Option<Receiver<(Realtime, bool)>>,
        sample: Box<dyn Fn(Sample) + Send>,
    ) -> std::io::Result<Self> {
        let status = Arc::new(ArcSwap::from_pointee(LongwaveStatus {
            station: config.station,
            ..LongwaveStatus::default()
        }));
        let edges = injected.map(Edges::Injected);
        let mut workers = Workers::default();
        workers.spawn(config.station.name(), {
            let (status, config) = (status.clone(), config.clone());
            move |stop| match config.station {
                StationKind::Dcf77 => run::<Dcf77>(edges, &config, &*sample, &status, stop),
                StationKind::Msf => run::<Msf>(edges, &config, &*sample, &status, stop),
                StationKind::Wwvb => run::<Wwvb>(edges, &config, &*sample, &status, stop),
            }
        })?;
        Ok(LongwaveDriver {
            _workers: workers,
            status,
            name: config.name.clone(),
        })
    }
}

fn run<S: Station>(
    mut edges: Option<Edges>,
    c: &LongwaveSourceConfig,
    sample: &dyn Fn(Sample),
    published: &ArcSwap<LongwaveStatus>,
    stop: &AtomicBool,
) {
    let mut decoder = Decoder::<S>::new(c.confirm);
    let station = S::KIND.label();
    let mut status = LongwaveStatus {
        station: S::KIND,
        receiver_delay: c.receiver_delay,
        // Injected edges are there from the start.
        opened: edges.is_some().then(monotonic_now),
        ..LongwaveStatus::default()
    };
    // Stream time is seconds since the first edge on CLOCK_MONOTONIC: the decoder works in f64
    // seconds.
    let mut epoch: Option<i64> = None;
    let mut retry = Retry::default();
    let mut leap_vote = LeapVote::default();
    while !stop.load(Ordering::Relaxed) {
        let Some(source) = &mut edges else {
            match Edges::open(c) {
                Ok(e) => {
                    tracing::info!(source = %c.name, chip = %c.chip.display(), line = c.line, "{station} line opened");
                    edges = Some(e);
                    status.connected = true;
                    status.line_error = None;
                    status.opened = Some(monotonic_now());
                    retry.succeeded();
                }
                Err(e) => {
                    status.line_error =
                        Some(format!("line {} of {}: {e}", c.line, c.chip.display()));
                    publish(&mut status, &decoder, published);
                    if retry.failed() {
                        tracing::warn!(source = %c.name, "cannot open the {station} line: {e}; retrying");
                    }
                    pause(RETRY, stop);
                }
            }
            continue;
        };
        status.connected = true;
        let (at, active) = match source.next() {
            Ok(Some(edge)) => edge,
            Ok(None) => {
                publish(&mut status, &decoder, published);
                continue;
            }
            Err(e) => {
                tracing::warn!(source = %c.name, "{station} line failed: {e}");
                if matches!(source, Edges::Injected(_)) {
                    return;
                }
                edges = None;
                status.connected = false;
                publish(&mut status, &decoder, published);
                continue;
            }
        };
        let epoch = *epoch.get_or_insert(at);
        for event in decoder.edge((at - epoch) as f64 / 1e9, active) {
            match event {
                Event::Minute { minute, .. } => {
                    tracing::info!(source = %c.name, utc = %minute.utc, "{station} minute accepted");
                    status.last_minute = Some(at);
                    leap_vote.minute(minute.leap_announced);
                }
                Event::Second { t, utc } => {
                    let (delay, error) = match c.receiver_delay {
                        Some(delay) => (delay, LONGWAVE_ERROR),
                        None => (0.0, LONGWAVE_ERROR + UNMEASURED_DELAY),
                    };
                    let marker = epoch + ((t - delay) * 1e9).round() as i64;
                    let local = realtime_at_monotonic(marker);
                    if let Some(reference) = utc.to_realtime() {
                        let s = Sample::new(local, reference, error, S::KIND.refid());
                        sample(s.with_leap(leap_vote.leap()));
                    }
                }
            }
        }
        status.last_edge = Some(at);
        publish(&mut status, &decoder, published);
    }
}

/// Publishes the status; a line silent for `SILENT` seconds is not shown as locked.
fn publish<S: Station>(
    status: &mut LongwaveStatus,
    decoder: &Decoder<S>,
    published: &ArcSwap<LongwaveStatus>,
) {
    status.quality.clone_from(&decoder.quality);
    let silent = status
        .last_edge
        .is_none_or(|t| (monotonic_now() - t) as f64 / 1e9 > SILENT);
    status.quality.locked &= !silent;
    published.store(Arc::new(status.clone()));
}
