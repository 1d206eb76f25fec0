//! The clocks of the interfaces that stamp in hardware: one thread reads each against the
//! system clock (`ntp::phc`), fits it (`ntp::phc_fit`) and publishes the conversions, which
//! the server workers read without locks to turn hardware timestamps into system time. A
//! datagram whose stamp cannot be converted (no stamp, the fit not ready, a conversion far from
//! the kernel's own stamp) keeps its kernel timestamp, and is counted as fallen back.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::Shared;
use crate::clock::change::ClockWatch;
use crate::ntp::phc::Phc;
use crate::ntp::phc_fit::{Conversion, FitState, PhcFit, Reading};
use crate::ntp::udp::Received;
use crate::time::Realtime;

/// How often a clock is read once its fit is ready, and before (so that it is ready in a
/// second or two after start or after a step).
const POLL: Duration = Duration::from_secs(1);
const POLL_STARTING: Duration = Duration::from_millis(250);
/// A converted receive timestamp further than this from the kernel's software one of the same
/// datagram is wrong (a clock stepped and the fit has not seen it yet): the kernel's is used.
const MAX_DISAGREEMENT: f64 = 0.01;
/// The frame check sequence, not counted in a frame's length as the kernel gives it.
const FCS: u32 = 4;
/// The link-layer headers before an NTP payload when the kernel does not give a frame's
/// length: Ethernet, IP (v4 or v6, no options) and UDP, as chrony assumes.
const HEADERS_V4: u32 = 14 + 20 + 8;
const HEADERS_V6: u32 = 14 + 40 + 8;
/// A converted transmit timestamp must lie between this long before it was read and then.
const MAX_TX_AGE: f64 = 1.0;

/// One interface's clock as last read.
#[derive(Clone, Debug)]
pub struct HwClock {
    pub interface: String,
    pub index: u32,
    /// N of /dev/ptpN.
    pub phc: u32,
    pub conversion: Option<Conversion>,
    pub fit: FitState,
    /// The ioctl that reads it.
    pub method: &'static str,
    /// Why the last poll gave no sample, if it did not.
    pub problem: Option<String>,
    /// The link's speed in Mb/s, if it is up and the driver says.
    pub link_speed: Option<u32>,
    /// The system clock's steps (`ClockChanges::stepped`) the fit has been restated for: a
    /// worker whose clock snapshot says otherwise does not use it until it is.
    pub stepped: f64,
}

/// Every hardware clock in use: the snapshot in `ServerStats::hw_clocks`.
#[derive(Clone, Debug, Default)]
pub struct HwClocks(pub Vec<HwClock>);

impl HwClocks {
    pub fn get(&self, index: u32) -> Option<&HwClock> {
        self.0.iter().find(|c| c.index == index)
    }
}

/// What a worker converts a batch's stamps with: the clocks as published, and the steps of the
/// system clock its clock snapshot knows of.
pub struct Clocks<'a> {
    pub clocks: &'a HwClocks,
    pub stepped: f64,
}

/// Hardware-stamped datagrams and those that fell back to the kernel's stamp, each way.
#[derive(Default)]
pub struct HwCounts {
    pub rx: AtomicU64,
    pub rx_fallback: AtomicU64,
    pub tx: AtomicU64,
    pub tx_fallback: AtomicU64,
}

/// What became of one datagram's timestamp.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stamp {
    /// Its interface's hardware time, converted to system time.
    Hardware(Realtime),
    /// Its interface stamps in hardware, but this stamp could not be used.
    FellBack,
    /// It came by an interface without hardware timestamps.
    NotHardware,
}

/// The interfaces of one socket that stamp in hardware: what its worker needs.
#[derive(Clone, Debug)]
pub struct SocketHardware {
    pub indexes: Vec<u32>,
    /// Those that stamp only what they send: what they receive keeps its kernel stamp.
    pub transmit_only: Vec<u32>,
}

impl SocketHardware {
    /// The system time of a datagram's hardware stamp `hw`, taken by hardware interface
    /// `index` (`interface`), if it lies within `within` seconds of `near` (its kernel stamp,
    /// or when it was read), and the clock's fit knows of the system clock's steps as
    /// `clocks.stepped` does.
    fn convert(
        clocks: &Clocks,
        hw: Option<i64>,
        index: Option<u32>,
        near: Realtime,
        within: f64,
    ) -> Stamp {
        let Some(index) = index else {
            return Stamp::NotHardware;
        };
        let fit = clocks
            .clocks
            .get(index)
            .filter(|c| c.stepped == clocks.stepped);
        let system = hw.zip(fit.and_then(|c| c.conversion));
        match system.and_then(|(hw, c)| c.to_system(hw)) {
            Some(ns)
                if (i128::from(ns) - i128::from(near.as_nanos())).abs() as f64 <= within * 1e9 =>
            {
                Stamp::Hardware(Realtime::from_nanos(ns))
            }
            _ => Stamp::FellBack,
        }
    }

    /// A received datagram's stamp: its kernel stamp `software` is the one to agree with.
    /// The interface stamps a frame as it starts to arrive, but a receive timestamp is the
    /// time it has arrived, as chrony takes it: the frame's duration at the link's speed is
    /// added (`frame_len`, its length without the checksum).
    fn receive(
        &self,
        clocks: &Clocks,
        hw: Option<i64>,
        named: Option<u32>,
        software: Realtime,
        frame_len: u32,
    ) -> Stamp {
        let index = self.interface(named);
        if index.is_some_and(|i| self.transmit_only.contains(&i)) {
            return Stamp::NotHardware;
        }
        let speed = index
            .and_then(|i| clocks.clocks.get(i)?.link_speed)
            .filter(|&mbps| mbps > 0);
        let duration = speed.map_or(0, |mbps| {
            (i64::from(frame_len) + i64::from(FCS)) * 8_000 / i64::from(mbps)
        });
        let hw = hw.and_then(|t| t.checked_add(duration));
        Self::convert(clocks, hw, index, software, MAX_DISAGREEMENT)
    }

    /// The stamp of datagram `r` (IPv4 if `ipv4`), whose kernel stamp is `software`. The frame's
    /// length is the kernel's, else the NTP payload's plus the usual headers.
    pub fn received(&self, clocks: &Clocks, r: &Received, ipv4: bool, software: Realtime) -> Stamp {
        let headers = if ipv4 { HEADERS_V4 } else { HEADERS_V6 };
        let frame_len = r.frame_len.unwrap_or(r.data.len() as u32 + headers);
        self.receive(clocks, r.hw, r.interface, software, frame_len)
    }

    /// The hardware interface a datagram came or left by: the one the kernel `named`, or, if it
    /// did not say, the socket's only one; `None` if that is not an interface with hardware
    /// stamps (its stamps are the kernel's).
    pub fn interface(&self, named: Option<u32>) -> Option<u32> {
        match (named, self.indexes.as_slice()) {
            (Some(i), _) => self.indexes.contains(&i).then_some(i),
            (None, [only]) => Some(*only),
            _ => None,
        }
    }

    /// A sent datagram's stamp, read from the error queue at `now`.
    pub fn transmit(
        &self,
        clocks: &Clocks,
        hw: Option<i64>,
        named: Option<u32>,
        now: Realtime,
    ) -> Stamp {
        let half = MAX_TX_AGE / 2.0;
        let index = self.interface(named);
        Self::convert(clocks, hw, index, now.add_secs_f64(-half), half)
    }
}

/// Counts a stamp into `used` or `fell_back`.
pub fn count(stamp: Stamp, used: &AtomicU64, fell_back: &AtomicU64) {
    match stamp {
        Stamp::Hardware(_) => used.fetch_add(1, Ordering::Relaxed),
        Stamp::FellBack => fell_back.fetch_add(1, Ordering::Relaxed),
        Stamp::NotHardware => 0,
    };
}

struct Device {
    clock: HwClock,
    phc: Phc,
    fit: PhcFit,
}

/// The thread that reads the clocks, started with the first one.
#[derive(Default)]
pub struct Poller {
    running: Option<(mpsc::Sender<Device>, JoinHandle<()>)>,
    indexes: Vec<u32>,
}

impl Poller {
    /// Starts reading /dev/ptp`phc`, the clock of interface `interface` (`index`); nothing if
    /// it is read already (another address on the same interface).
    pub fn add(
        &mut self,
        shared: &Arc<Shared>,
        interface: &str,
        index: u32,
        phc: u32,
    ) -> io::Result<()> {
        if self.indexes.contains(&index) {
            return Ok(());
        }
        let phc_device = Phc::open(phc)?;
        let device = Device {
            clock: HwClock {
                interface: interface.to_string(),
                index,
                phc,
                conversion: None,
                fit: FitState::default(),
                method: phc_device.method().name(),
                problem: None,
                link_speed: None,
                stepped: 0.0,
            },
            phc: phc_device,
            fit: PhcFit::default(),
        };
        if self.running.is_none() {
            let (send, receive) = mpsc::channel();
            let shared = shared.clone();
            let thread = std::thread::Builder::new()
                .name("phc".into())
                .spawn(move || run(receive, &shared))?;
            self.running = Some((send, thread));
        }
        if let Some((send, _)) = &self.running {
            send.send(device).map_err(io::Error::other)?;
        }
        self.indexes.push(index);
        Ok(())
    }

    /// Stops the thread (it ends as soon as it sees the channel closed).
    pub fn stop(self) {
        if let Some((send, thread)) = self.running {
            drop(send);
            let _ = thread.join();
        }
    }
}

fn run(receive: mpsc::Receiver<Device>, shared: &Shared) {
    let mut devices: Vec<Device> = Vec::new();
    let mut readings: Vec<Reading> = Vec::new();
    let mut watch = ClockWatch::default();
    loop {
        let starting = devices.iter().any(|d| d.fit.conversion().is_none());
        match receive.recv_timeout(if starting { POLL_STARTING } else { POLL }) {
            Ok(device) => devices.push(device),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let changes = shared.clock.load().changes;
        let change = watch.news(&changes);
        for d in &mut devices {
            if let Some(change) = &change {
                d.fit.clock_changed(change);
            }
            d.clock.stepped = changes.stepped;
            poll(d, &mut readings);
        }
        let clocks = devices.iter().map(|d| d.clock.clone()).collect();
        shared.stats.hw_clocks.store(Arc::new(HwClocks(clocks)));
    }
}

fn poll(d: &mut Device, readings: &mut Vec<Reading>) {
    let was_ready = d.fit.conversion().is_some();
    d.clock.problem = match d.phc.read(readings) {
        Ok(()) => match d.fit.add(readings) {
            Err(r) => Some(r.to_string()),
            // Gathering samples again: why it started again still holds.
            Ok(()) if d.fit.conversion().is_none() => d.clock.problem.take(),
            Ok(()) => None,
        },
        Err(e) => Some(e.to_string()),
    };
    d.clock.method = d.phc.method().name();
    d.clock.link_speed = link_speed(&d.clock.interface);
    d.clock.conversion = d.fit.conversion();
    d.clock.fit = d.fit.state();
    let (interface, phc) = (&d.clock.interface, d.clock.phc);
    match (was_ready, d.clock.conversion) {
        (false, Some(c)) => tracing::info!(
            %interface,
            "hardware timestamps in use: /dev/ptp{phc} follows the system clock within {:.0} ns ({} samples, {})",
            c.error * 1e9,
            d.clock.fit.samples,
            d.clock.method
        ),
        (true, None) => tracing::warn!(
            %interface,
            "/dev/ptp{phc} no longer follows the system clock (a clock was stepped): kernel timestamps until it does again"
        ),
        _ => {}
    }
}

/// The interface's link speed in Mb/s, from sysfs (-1 or an error while the link is down).
fn link_speed(interface: &str) -> Option<u32> {
    std::fs::read_to_string(format!("/sys/class/net/{interface}/speed"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: i64 = 1_000_000_000;
    const SYS: i64 = 1_790_000_000 * SECOND;

    /// Clocks where interface 2's hardware time is system time minus 1000 s, exactly.
    fn at_step(clocks: &HwClocks, stepped: f64) -> Clocks<'_> {
        Clocks { clocks, stepped }
    }

    /// A socket whose interfaces `indexes` stamp both ways.
    fn on(indexes: &[u32]) -> SocketHardware {
        SocketHardware {
            indexes: indexes.to_vec(),
            transmit_only: Vec::new(),
        }
    }

    fn clocks() -> HwClocks {
        let mut fit = PhcFit::default();
        for i in 0..4 {
            let sys = SYS + i * SECOND;
            let r = Reading {
                sys_before: sys,
                phc: sys - 1000 * SECOND,
                sys_after: sys,
            };
            fit.add(&[r]).unwrap();
        }
        HwClocks(vec![HwClock {
            interface: "eth0".into(),
            index: 2,
            phc: 0,
            conversion: fit.conversion(),
            fit: fit.state(),
            method: "PTP_SYS_OFFSET_PRECISE",
            problem: None,
            link_speed: None,
            stepped: 0.0,
        }])
    }

    #[test]
    fn a_stamp_is_converted_by_its_own_interfaces_clock() {
        let (clocks, sw) = (clocks(), Realtime::from_nanos(SYS + 4 * SECOND));
        let hw = Some(SYS + 4 * SECOND - 1000 * SECOND + 500);
        let one = on(&[2]);
        let want = Stamp::Hardware(Realtime::from_nanos(SYS + 4 * SECOND + 500));
        assert_eq!(
            one.receive(&at_step(&clocks, 0.0), hw, Some(2), sw, 90),
            want
        );
        // The kernel did not say the interface: the socket's only one.
        assert_eq!(one.receive(&at_step(&clocks, 0.0), hw, None, sw, 90), want);
        // Another interface, or one of several unnamed, is not hardware.
        assert_eq!(
            one.receive(&at_step(&clocks, 0.0), hw, Some(3), sw, 90),
            Stamp::NotHardware
        );
        let two = on(&[2, 5]);
        assert_eq!(
            two.receive(&at_step(&clocks, 0.0), hw, None, sw, 90),
            Stamp::NotHardware
        );
        // No hardware stamp, or a clock not yet fitted: fall back.
        assert_eq!(
            one.receive(&at_step(&clocks, 0.0), None, Some(2), sw, 90),
            Stamp::FellBack
        );
        let empty = HwClocks(vec![HwClock {
            conversion: None,
            ..clocks.0[0].clone()
        }]);
        assert_eq!(
            one.receive(&at_step(&empty, 0.0), hw, Some(2), sw, 90),
            Stamp::FellBack
        );
        // The system clock was stepped and the poller has not restated the fit yet.
        let stepped = at_step(&clocks, 0.25);
        assert_eq!(one.receive(&stepped, hw, Some(2), sw, 90), Stamp::FellBack);
    }

    #[test]
    fn an_interface_that_stamps_only_what_it_sends_keeps_kernel_receive_stamps() {
        let fitted = clocks();
        let clocks = at_step(&fitted, 0.0);
        let tx_only = SocketHardware {
            transmit_only: vec![2],
            ..on(&[2])
        };
        let hw = Some(SYS + 4 * SECOND - 1000 * SECOND);
        let sw = Realtime::from_nanos(SYS + 4 * SECOND);
        // Received: not a fallback (nothing was lost), the kernel's stamp as on any interface.
        assert_eq!(
            tx_only.receive(&clocks, hw, Some(2), sw, 90),
            Stamp::NotHardware
        );
        assert_eq!(
            tx_only.receive(&clocks, None, None, sw, 90),
            Stamp::NotHardware
        );
        // Sent: the interface's own.
        let at = Realtime::from_nanos(SYS + 4 * SECOND + 1_000);
        assert_eq!(
            tx_only.transmit(&clocks, hw, Some(2), at),
            Stamp::Hardware(sw)
        );
    }

    #[test]
    fn a_received_frame_is_stamped_when_it_has_arrived() {
        let mut clocks = clocks();
        let one = on(&[2]);
        let sw = Realtime::from_nanos(SYS + 4 * SECOND);
        let hw = Some(SYS + 4 * SECOND - 1000 * SECOND);
        // A 90-byte frame and its checksum at 100 Mb/s: 7.52 us; at 1 Gb/s, 752 ns.
        for (speed, ns) in [(100, 7_520), (1000, 752)] {
            clocks.0[0].link_speed = Some(speed);
            let want = Stamp::Hardware(Realtime::from_nanos(SYS + 4 * SECOND + ns));
            assert_eq!(one.receive(&at_step(&clocks, 0.0), hw, None, sw, 90), want);
        }
        // Sent frames are stamped as they start to leave, as NTP wants: no correction.
        let at = Realtime::from_nanos(SYS + 4 * SECOND + 1_000);
        let want = Stamp::Hardware(Realtime::from_nanos(SYS + 4 * SECOND));
        assert_eq!(one.transmit(&at_step(&clocks, 0.0), hw, Some(2), at), want);
    }

    #[test]
    fn a_clock_that_cannot_be_read_says_why_and_stays_not_ready() {
        // /dev/null takes none of the ioctls: each poll fails, and says so.
        let mut d = Device {
            clock: clocks().0[0].clone(),
            phc: Phc::open_path("/dev/null").unwrap(),
            fit: PhcFit::default(),
        };
        d.clock.conversion = None;
        let mut readings = Vec::new();
        for _ in 0..3 {
            poll(&mut d, &mut readings);
        }
        assert_eq!(d.clock.conversion, None);
        let problem = d.clock.problem.clone().unwrap_or_default();
        assert!(problem.contains("ioctl"), "{problem}");
        assert_eq!(d.clock.fit.samples, 0);
    }

    #[test]
    fn a_conversion_far_from_the_kernels_stamp_is_not_used() {
        let (clocks, one) = (clocks(), on(&[2]));
        let hw = Some(SYS + 4 * SECOND - 1000 * SECOND);
        let late = Realtime::from_nanos(SYS + 4 * SECOND + SECOND / 50);
        assert_eq!(
            one.receive(&at_step(&clocks, 0.0), hw, Some(2), late, 90),
            Stamp::FellBack
        );
        // A transmit stamp read a moment after the datagram left is used; one from the future
        // or long ago is not.
        let at = |ns| Realtime::from_nanos(SYS + 4 * SECOND + ns);
        assert!(matches!(
            one.transmit(&at_step(&clocks, 0.0), hw, None, at(50_000)),
            Stamp::Hardware(_)
        ));
        assert_eq!(
            one.transmit(&at_step(&clocks, 0.0), hw, None, at(-1_000)),
            Stamp::FellBack
        );
        assert_eq!(
            one.transmit(&at_step(&clocks, 0.0), hw, None, at(2 * SECOND)),
            Stamp::FellBack
        );
    }
}
