//! Runs a GPS reference clock: a thread reading the serial port (reopening it when the device
//! goes away), one reading pulses, and one feeding both to the decoder and the pairing clock,
//! handing samples to the discipline and publishing the receiver's status.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use super::clock::{ClockCounters, ClockOptions, GpsClock, JumpEvent};
use super::decoder::{build_date, DecoderOptions, NmeaDecoder};
use super::pps::{self, Pulses};
use super::receiver::{Link, ReceiverState};
use super::serial::{PortHandle, SerialPort};
use super::status::{FixType, ReceiverStatus};
use super::ubx::{Message, ReceiverStream};
use crate::clock::change::{ClockChanges, ClockWatch};
use crate::clock::system::{monotonic_now, realtime_now};
use crate::config::GpsSourceConfig;
use crate::refclock::Sample;
use crate::time::Realtime;
use crate::worker::{pause, Retry, Workers};

/// How long a read or pulse wait blocks before checking for a stop request.
const POLL: Duration = Duration::from_millis(500);
/// Between attempts to open a missing device.
const RETRY: Duration = Duration::from_secs(1);
/// Pulse quantisation errors kept for the statistics files, which are written every 16 s.
const KEPT_Q_ERRORS: usize = 32;
/// A receiver sends every second; a port silent this long is closed and opened again, which
/// revives a USB serial adapter whose reads stalled (seen with QEMU's FTDI emulation after a
/// reopen) and costs nothing when the receiver is really silent.
const SILENT: Duration = Duration::from_secs(10);

/// What the status page, the metrics and the alarms show for a GPS source.
#[derive(Clone, Debug, Default)]
pub struct GpsStatus {
    /// The serial device, and the PPS input when one is configured, as the user named them.
    pub device: String,
    pub pps: Option<String>,
    pub receiver: ReceiverStatus,
    pub clock: ClockCounters,
    pub trusted: bool,
    pub connected: bool,
    pub reconnects: u64,
    /// Why the serial device, or the PPS input, cannot be opened, while it cannot.
    pub device_error: Option<String>,
    pub pps_error: Option<String>,
    /// The last sentence with a good checksum, and the last pulse.
    pub last_sentence: Option<Realtime>,
    pub last_pulse: Option<Realtime>,
    pub heard: Heard,
    /// The sentence delay in use and the spread of the measured ones, seconds.
    pub sentence_delay: Option<(f64, f64)>,
    pub alarm: Option<JumpEvent>,
    /// Lines cut short or too long.
    pub lines_dropped: u64,
    /// The quantisation errors (u-blox TIM-TP) of the last pulses given as samples: (UTC
    /// second, seconds), newest last; and whether they were applied.
    pub q_errors: VecDeque<(Realtime, f64)>,
    pub q_error_applied: bool,
    /// What the receiver is, and how applying `[source.receiver]` to it went.
    pub setup: ReceiverState,
}

/// When the receiver was last heard from, CLOCK_MONOTONIC nanoseconds: never stepped, so a
/// silence is measured right across a step of the system clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Heard {
    /// The serial device opened; kept while a silent port is reopened, so that the silence
    /// counts from the first opening.
    pub opened: Option<i64>,
    /// Any bytes, and the last sentence with a good checksum.
    pub bytes: Option<i64>,
    pub sentence: Option<i64>,
    pub pulse: Option<i64>,
    /// The receiver got the fix it has now.
    pub fix: Option<i64>,
}

enum Input {
    Bytes(Vec<u8>, Realtime),
    Pulse(Realtime),
    /// The port opened at this speed, with a handle that writes to it.
    Connected(Option<PortHandle>, u32),
    Disconnected,
    /// The serial device cannot be opened: why.
    Missing(String),
    /// The PPS input opened, or why it cannot be.
    Pps(Result<(), String>),
}

/// Gives the estimate (true time - local time) of another trusted source at a local time.
pub type Feedback = Box<dyn Fn(Realtime) -> ClockFeedback + Send>;

/// What the driver learns from the discipline's published clock at a local time.
pub struct ClockFeedback {
    /// (true time - local time), when another source can number pulses.
    pub numbering: Option<f64>,
    /// The changes made to the system clock since start.
    pub changes: ClockChanges,
}

/// Reads the receiver until dropped.
pub struct GpsDriver {
    _workers: Workers,
    pub status: Arc<ArcSwap<GpsStatus>>,
    pub name: String,
}

/// Inputs the daemon gives the driver instead of the configured devices (a simulated
/// receiver's): a serial device to open and the pulses' timestamps.
pub struct Injected {
    pub device: PathBuf,
    pub pulses: mpsc::Receiver<Realtime>,
    /// What the pulses are called on the status page.
    pub pps_name: String,
}

impl GpsDriver {
    /// Starts the threads on the configured devices, or on `injected` ones; `sample` receives
    /// every sample the source gives.
    pub fn start(
        config: &GpsSourceConfig,
        injected: Option<Injected>,
        sample: Box<dyn Fn(Sample) + Send>,
        feedback: Feedback,
    ) -> std::io::Result<Self> {
        let status = Arc::new(ArcSwap::from_pointee(GpsStatus::default()));
        let (tx, rx) = mpsc::channel();
        let (device, pulses, pps_name) = match injected {
            Some(i) => (i.device, Some(Pulses::Injected(i.pulses)), Some(i.pps_name)),
            None => (config.device.clone(), None, pps::name(&config.pps)),
        };
        let device_name = device.display().to_string();
        let has_pps = pps_name.is_some();
        let mut workers = Workers::default();
        workers.spawn("gps-serial", {
            let (tx, baud) = (tx.clone(), config.baud);
            move |stop| read_serial(device, baud, tx, stop)
        })?;
        if has_pps {
            workers.spawn("gps-pps", {
                let (tx, c) = (tx.clone(), config.clone());
                move |stop| read_pulses(pulses, &c, tx, stop)
            })?;
        }
        drop(tx);
        let decoder = NmeaDecoder::new(DecoderOptions {
            not_before: build_date(),
            require_fix: config.require_fix,
        });
        let clock = GpsClock::new(ClockOptions {
            pps: has_pps,
            sentence_delay: config.sentence_delay,
        });
        // Runs until the readers stop and close the channel.
        workers.spawn("gps", {
            let (status, name) = (status.clone(), config.name.clone());
            let (hide, apply_qerr) = (config.hide_position, config.apply_qerr);
            let link = Link::new(&config.name, config.receiver.clone());
            move |_| {
                let mut source = Source {
                    link,
                    name,
                    hide_position: hide,
                    apply_qerr,
                    reader: ReceiverStream::default(),
                    decoder,
                    clock,
                    status: GpsStatus {
                        device: device_name,
                        pps: pps_name,
                        ..GpsStatus::default()
                    },
                };
                source.run(rx, &*sample, &*feedback, &status)
            }
        })?;
        Ok(GpsDriver {
            _workers: workers,
            status,
            name: config.name.clone(),
        })
    }
}

fn read_serial(device: PathBuf, baud: u32, tx: Sender<Input>, stop: &AtomicBool) {
    let mut buf = [0u8; 1024];
    let mut retry = Retry::default();
    // Said once while the port stays silent across reopenings.
    let mut logged_silent = false;
    while !stop.load(Ordering::Relaxed) {
        let mut port = match SerialPort::open(&device, baud) {
            Ok(p) => p,
            Err(e) => {
                if retry.failed() {
                    tracing::warn!(device = %device.display(), "cannot open the receiver: {e}; retrying");
                    if tx.send(Input::Missing(e.to_string())).is_err() {
                        return;
                    }
                }
                pause(RETRY, stop);
                continue;
            }
        };
        retry.succeeded();
        if !logged_silent {
            tracing::info!(device = %device.display(), baud, "receiver connected");
        }
        let handle = port
            .handle()
            .inspect_err(|e| tracing::warn!("cannot write to the receiver: {e}"))
            .ok();
        if tx.send(Input::Connected(handle, baud)).is_err() {
            return;
        }
        let mut last_data = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            match port.read_timeout(&mut buf, POLL) {
                Ok(0) if last_data.elapsed() < SILENT => {}
                Ok(0) => {
                    if !logged_silent {
                        tracing::warn!(device = %device.display(), "no data from the receiver for {} s: opening the port again", SILENT.as_secs());
                        logged_silent = true;
                    }
                    let _ = tx.send(Input::Disconnected);
                    break;
                }
                Ok(n) => {
                    last_data = Instant::now();
                    logged_silent = false;
                    if tx
                        .send(Input::Bytes(buf[..n].to_vec(), realtime_now()))
                        .is_err()
                    {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(device = %device.display(), "receiver disconnected: {e}");
                    let _ = tx.send(Input::Disconnected);
                    break;
                }
            }
        }
        // A device that opens but fails every read must not make this loop spin.
        pause(RETRY, stop);
    }
}

fn read_pulses(
    mut pulses: Option<Pulses>,
    config: &GpsSourceConfig,
    tx: Sender<Input>,
    stop: &AtomicBool,
) {
    let mut retry = Retry::default();
    while !stop.load(Ordering::Relaxed) {
        let p = match &mut pulses {
            Some(p) => p,
            None => match Pulses::open(&config.pps, config.pps_edge) {
                Ok(opened) => {
                    tracing::info!(pps = ?config.pps, "PPS opened");
                    pulses = opened;
                    retry.succeeded();
                    if tx.send(Input::Pps(Ok(()))).is_err() {
                        return;
                    }
                    continue;
                }
                Err(e) => {
                    if retry.failed() {
                        tracing::warn!(pps = ?config.pps, "cannot open PPS: {e}; retrying");
                        if tx.send(Input::Pps(Err(e.to_string()))).is_err() {
                            return;
                        }
                    }
                    pause(RETRY, stop);
                    continue;
                }
            },
        };
        match p.next(POLL) {
            Ok(Some(t)) => {
                if tx.send(Input::Pulse(t)).is_err() {
                    return;
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!("PPS failed: {e}; reopening");
                // An injected channel cannot be reopened: it ends with its sender.
                if matches!(p, Pulses::Injected(_)) {
                    return;
                }
                pulses = None;
                pause(RETRY, stop);
            }
        }
    }
}

struct Source {
    link: Link,
    name: String,
    hide_position: bool,
    apply_qerr: bool,
    reader: ReceiverStream<Realtime>,
    decoder: NmeaDecoder,
    clock: GpsClock,
    status: GpsStatus,
}

impl Source {
    fn run(
        &mut self,
        rx: mpsc::Receiver<Input>,
        sample: &dyn Fn(Sample),
        feedback: &dyn Fn(Realtime) -> ClockFeedback,
        published: &ArcSwap<GpsStatus>,
    ) {
        let mut watch = ClockWatch::default();
        loop {
            let input = rx.recv_timeout(POLL);
            // What the alarms measure silences on.
            let heard_at = monotonic_now();
            let now = heard_at as f64 / 1e9;
            let at = match &input {
                Ok(Input::Bytes(_, at) | Input::Pulse(at)) => Some(*at),
                _ => None,
            };
            let fed = at.map(feedback);
            // Times kept from before a change of the system clock are restated after it.
            if let Some(change) = fed.as_ref().and_then(|f| watch.news(&f.changes)) {
                self.clock.clock_changed(&change);
            }
            match input {
                Ok(Input::Bytes(bytes, at)) => {
                    let mut outputs = Vec::new();
                    let sentences = self.decoder.status.counters.sentences;
                    self.link.bytes(&bytes, now);
                    let (decoder, clock, link) =
                        (&mut self.decoder, &mut self.clock, &mut self.link);
                    self.reader.push(&bytes, at, |message, start| {
                        if let Message::Line(line) = &message {
                            link.line(line, now);
                        }
                        if let Some(report) = decoder.message(&message) {
                            outputs.push(clock.on_time(&report, start));
                        }
                    });
                    let heard = &mut self.status.heard;
                    heard.bytes = Some(heard_at);
                    if self.decoder.status.counters.sentences > sentences {
                        self.status.last_sentence = Some(at);
                        heard.sentence = Some(heard_at);
                    }
                    heard.fix = match self.decoder.status.fix {
                        FixType::None => None,
                        _ => Some(heard.fix.unwrap_or(heard_at)),
                    };
                    for out in outputs {
                        self.alarm(out.alarm);
                        out.sample
                            .into_iter()
                            .for_each(|s| sample(self.annotate(s)));
                    }
                }
                Ok(Input::Pulse(at)) => {
                    self.status.last_pulse = Some(at);
                    self.status.heard.pulse = Some(heard_at);
                    let out = self.clock.on_pps(at, fed.and_then(|f| f.numbering));
                    self.alarm(out.alarm);
                    out.sample
                        .into_iter()
                        .for_each(|s| sample(self.annotate(s)));
                }
                Ok(Input::Connected(port, baud)) => {
                    self.link.connected(port, baud);
                    self.status.connected = true;
                    self.status.device_error = None;
                    self.status.heard.opened.get_or_insert(heard_at);
                }
                Ok(Input::Missing(why)) => {
                    self.status.device_error = Some(why);
                    self.status.heard.opened = None;
                }
                Ok(Input::Pps(opened)) => self.status.pps_error = opened.err(),
                Ok(Input::Disconnected) => {
                    self.status.connected = false;
                    self.status.reconnects += 1;
                    self.reader.reset();
                    self.link.disconnected();
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
            self.link.poll(now);
            self.publish(published);
        }
    }

    /// A sample carries the leap second the receiver announces for the end of its day, and is
    /// demoted while the receiver reports spoofing. A pulse's quantisation error is recorded,
    /// and applied when configured: the edge came that long after the labelled second.
    fn annotate(&mut self, s: Sample) -> Sample {
        let leap = self.decoder.leap_at(s.reference);
        let mut s = Sample {
            demoted: self.decoder.status.spoofing.is_alarm(),
            ..s.with_leap(leap)
        };
        let q_error = self.decoder.q_error(s.reference);
        if let Some(q) = q_error.filter(|_| s.refid == *b"PPS\0") {
            let kept = &mut self.status.q_errors;
            kept.push_back((s.reference, q));
            if kept.len() > KEPT_Q_ERRORS {
                kept.pop_front();
            }
            if self.apply_qerr {
                s.reference = s.reference.add_secs_f64(q);
            }
        }
        s
    }

    fn alarm(&self, alarm: Option<JumpEvent>) {
        match alarm {
            Some(JumpEvent::JumpRejected { seconds }) => {
                tracing::warn!(source = %self.name, seconds, "receiver time jumped: not followed")
            }
            Some(JumpEvent::JumpFollowed { seconds }) => {
                tracing::warn!(source = %self.name, seconds, "receiver time jump held: acquired, the discipline decides")
            }
            None => {}
        }
    }

    /// Logs the changes an operator wants to hear about.
    fn log_changes(&self) {
        let (old, new) = (&self.status, &self.decoder.status);
        let name = &self.name;
        if (old.receiver.fix == FixType::None) != (new.fix == FixType::None) {
            match new.fix {
                FixType::None => tracing::warn!(source = %name, "receiver lost its fix"),
                fix => tracing::info!(source = %name, fix = fix.name(), "receiver has a fix"),
            }
        }
        if old.receiver.antenna != new.antenna {
            let antenna = new.antenna.name();
            if new.antenna.is_fault() {
                tracing::warn!(source = %name, antenna, "antenna fault");
            } else {
                tracing::info!(source = %name, antenna, "antenna status");
            }
        }
        if old.receiver.spoofing != new.spoofing {
            let spoofing = new.spoofing.name();
            match new.spoofing.is_alarm() {
                true => {
                    tracing::warn!(source = %name, spoofing, "receiver reports spoofing: source demoted")
                }
                false => tracing::info!(source = %name, spoofing, "receiver spoofing detection"),
            }
        }
        let jammed = |r: &ReceiverStatus| r.jamming.is_some_and(|j| j.is_alarm());
        if jammed(&old.receiver) != jammed(new) {
            let j = new.jamming.unwrap_or_default();
            let (state, indicator, noise) = (j.state.name(), j.indicator, j.noise);
            match jammed(new) {
                true => {
                    tracing::warn!(source = %name, state, indicator, noise, "receiver reports jamming")
                }
                false => tracing::info!(source = %name, state, indicator, noise, "jamming over"),
            }
        }
        if old.trusted != self.clock.trusted() {
            match self.clock.trusted() {
                true => tracing::info!(source = %name, "receiver time trusted"),
                false => tracing::warn!(source = %name, "receiver time not trusted"),
            }
        }
    }

    fn publish(&mut self, published: &ArcSwap<GpsStatus>) {
        self.log_changes();
        let s = &mut self.status;
        s.receiver.clone_from(&self.decoder.status);
        if self.hide_position {
            s.receiver.position = None;
        }
        s.clock = self.clock.counters;
        s.trusted = self.clock.trusted();
        s.sentence_delay = self.clock.sentence_delay();
        s.alarm = self.clock.alarm;
        s.lines_dropped = self.reader.lines.dropped;
        s.q_error_applied = self.apply_qerr;
        s.receiver.counters.bad_frames += self.reader.frames.bad;
        s.setup.clone_from(self.link.state());
        published.store(Arc::new(s.clone()));
    }
}
