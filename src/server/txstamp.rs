//! The server's side of kernel and hardware timestamps: choosing and turning them on for each
//! interface and listening socket, and handing each transmit timestamp the kernel loops back
//! to the interleaved table.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::hwclock::{self, Poller, SocketHardware, Stamp};
use super::interleave::{self, Interleave};
use super::Shared;
use crate::clock::system::realtime_now;
use crate::discipline::snapshot::ClockSnapshot;
use crate::ntp::hwstamp::{self, Capability};
use crate::ntp::txstamp::{self, Timestamping};
use crate::ntp::udp::{RecvBatch, BATCH};

/// Which timestamps one interface of a listening address got, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamping {
    pub address: SocketAddr,
    pub interface: String,
    pub timestamping: Timestamping,
    pub why: String,
    /// With hardware timestamps: the interface's index, whose clock `ServerStats::hw_clocks`
    /// has.
    pub index: Option<u32>,
    /// With hardware timestamps: on received datagrams too, not only on sent ones.
    pub receives: bool,
}

/// Decides which timestamps each interface serving `address` gets when `wanted`, turning on
/// hardware timestamps (and reading their clock with `poller`) where they are chosen; an
/// interface where that fails gets kernel timestamps, and says why.
pub fn plan(
    address: SocketAddr,
    wanted: Timestamping,
    poller: &mut Poller,
    shared: &Arc<Shared>,
) -> Vec<Stamping> {
    let interfaces = hwstamp::interfaces(address.ip()).unwrap_or_else(|e| {
        tracing::warn!(%address, "cannot list the network interfaces: {e}");
        Vec::new()
    });
    interfaces
        .into_iter()
        .map(|interface| {
            let capability = hwstamp::query(&interface);
            let (mut timestamping, mut why) = hwstamp::choose(wanted, &capability);
            let (mut index, mut receives) = (None, false);
            if let (Timestamping::Hardware, Ok(c)) = (timestamping, &capability) {
                match turn_on(&interface, c, poller, shared) {
                    Ok((i, rx)) => {
                        (index, receives) = (Some(i), rx);
                        if !rx {
                            why.push_str(", on what it sends (received datagrams keep the kernel's stamps: the driver has no receive filter for NTP)");
                        }
                    }
                    Err(e) => {
                        timestamping = Timestamping::Kernel;
                        why = format!("has hardware timestamps ({why}), but {e}");
                    }
                }
            }
            Stamping {
                address,
                interface,
                timestamping,
                why,
                index,
                receives,
            }
        })
        .collect()
}

/// Turns on the hardware timestamps of `interface` and starts reading its clock; its index,
/// and whether it stamps what it receives too.
fn turn_on(
    interface: &str,
    capability: &Capability,
    poller: &mut Poller,
    shared: &Arc<Shared>,
) -> Result<(u32, bool), String> {
    let phc = capability.phc.ok_or("it has no clock")?;
    let receives = hwstamp::enable(interface, capability).map_err(|e| refused(&e))?;
    let index = hwstamp::index(interface).map_err(|e| format!("has no index ({e})"))?;
    poller
        .add(shared, interface, index, phc)
        .map_err(|e| format!("cannot read its clock ({e})"))?;
    Ok((index, receives))
}

/// Why SIOCSHWTSTAMP failed, for the status.
fn refused(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EPERM) => {
            "cannot turn them on (SIOCSHWTSTAMP needs CAP_NET_ADMIN; the systemd unit gives it)"
                .to_string()
        }
        _ => format!("cannot turn them on (SIOCSHWTSTAMP: {e})"),
    }
}

/// The interfaces of `plan` that got hardware timestamps, if any.
pub fn hardware(plan: &[Stamping]) -> Option<SocketHardware> {
    let indexes: Vec<u32> = plan.iter().filter_map(|s| s.index).collect();
    let transmit_only = plan
        .iter()
        .filter(|s| !s.receives)
        .filter_map(|s| s.index)
        .collect();
    (!indexes.is_empty()).then_some(SocketHardware {
        indexes,
        transmit_only,
    })
}

/// Sets up the timestamps of `socket` as `wanted`, with hardware ones if `hardware` (some of
/// its interfaces have them on); returns what it got: `Hardware` (as `Kernel`, with hardware
/// stamps where the interface gives them), `Kernel` when transmit timestamps are on (and so
/// interleaved mode), `User` otherwise.
pub fn setup(socket: &UdpSocket, wanted: Timestamping, hardware: bool) -> Timestamping {
    let addr = socket.local_addr().ok();
    if wanted == Timestamping::User {
        if let Err(e) = txstamp::disable_kernel_rx(socket) {
            tracing::warn!(?addr, "cannot turn kernel receive timestamps off: {e}");
        }
        return Timestamping::User;
    }
    if let Err(e) = txstamp::enable_kernel(socket, false) {
        tracing::warn!(?addr, "no kernel transmit timestamps ({e}): no interleaved mode, transmit times read before sending");
        return Timestamping::User;
    }
    match hardware.then(|| hwstamp::enable_socket(socket)) {
        Some(Ok(())) => Timestamping::Hardware,
        Some(Err(e)) => {
            tracing::warn!(
                ?addr,
                "the kernel refused hardware timestamps on the socket ({e})"
            );
            // Back to kernel timestamps alone.
            match txstamp::enable_kernel(socket, false) {
                Ok(()) => Timestamping::Kernel,
                Err(_) => Timestamping::User,
            }
        }
        None => Timestamping::Kernel,
    }
}

/// Corrects `plan` by what the sockets got (`socket`, from `setup`) and says it in the log.
pub fn report(plan: &mut [Stamping], socket: Timestamping) {
    for s in plan.iter_mut() {
        let refused = match (socket, s.timestamping) {
            (Timestamping::User, Timestamping::User) => None,
            (Timestamping::User, _) => {
                Some((Timestamping::User, "the kernel refused transmit timestamps"))
            }
            (Timestamping::Kernel, Timestamping::Hardware) => Some((
                Timestamping::Kernel,
                "the kernel refused hardware timestamps on the socket",
            )),
            _ => None,
        };
        if let Some((got, why)) = refused {
            s.timestamping = got;
            s.why = why.to_string();
            s.index = None;
            s.receives = false;
        }
        let (address, interface) = (s.address, &s.interface);
        tracing::info!(%address, %interface, timestamping = s.timestamping.name(), "timestamps: {}", s.why);
    }
}

/// How long a worker waits for a hardware transmit stamp after the send (or after the last one
/// came) before counting those still due as fallen back: no older stamp converts anyway
/// (`hwclock::MAX_TX_AGE`).
pub const HARDWARE_WAIT: Duration = Duration::from_secs(1);

/// The transmit stamps a worker waits for: the error queue is read only while some are due,
/// so that basic clients cost no system call.
#[derive(Debug, Default)]
pub struct Awaited {
    /// Stamped replies whose first stamp has not been read.
    pub first: usize,
    /// Replies sent by an interface that stamps in hardware whose hardware stamp has not come.
    pub hardware: usize,
    /// When the hardware stamps due were sent, or the last one came.
    since: Option<Instant>,
}

impl Awaited {
    /// `stamped` replies were sent at `now` asking for stamps, `hardware` of them by an
    /// interface that stamps in hardware.
    pub fn sent(&mut self, stamped: usize, hardware: usize, now: Instant) {
        self.first += stamped;
        self.hardware += hardware;
        if hardware > 0 {
            self.since = Some(now);
        }
    }

    pub fn got(&mut self, found: &Collected, now: Instant) {
        self.first = self.first.saturating_sub(found.first);
        self.hardware = self.hardware.saturating_sub(found.hardware);
        if found.hardware > 0 {
            self.since = Some(now);
        }
    }

    /// How long to wait for hardware stamps still due at `now` (zero: they are late).
    pub fn hardware_wait(&self, now: Instant) -> Option<Duration> {
        let since = self.since.filter(|_| self.hardware > 0)?;
        Some(HARDWARE_WAIT.saturating_sub(now.saturating_duration_since(since)))
    }

    /// Gives up on the hardware stamps due: how many there were.
    pub fn lost(&mut self) -> usize {
        self.since = None;
        std::mem::take(&mut self.hardware)
    }
}

/// What one reading of the error queue found.
#[derive(Default)]
pub struct Collected {
    /// Replies whose first transmit stamp this was (a reply whose hardware stamp follows its
    /// software one counts once).
    pub first: usize,
    /// Hardware stamps, used or not.
    pub hardware: usize,
}

/// Takes the transmit timestamps waiting on `socket`'s error queue and records each in `table`,
/// the interface's where `hardware` has it and it converts.
pub fn collect(
    socket: &UdpSocket,
    batch: &mut RecvBatch,
    table: &mut Interleave,
    clock: &ClockSnapshot,
    hardware: Option<(&SocketHardware, &Shared)>,
) -> Collected {
    let mut found = Collected::default();
    let clocks = hardware.map(|(_, shared)| shared.stats.hw_clocks.load());
    let now = realtime_now();
    while let Ok(n) = batch.recv_errqueue(socket) {
        for i in 0..n {
            let r = batch.get(i);
            found.hardware += usize::from(r.hw.is_some());
            let Some((to, reply)) = txstamp::udp_payload(r.data) else {
                continue;
            };
            // A datagram an interface stamps comes back twice (`hwstamp::enable_socket`): its
            // software stamp, recorded as any other, then its hardware one, which replaces it.
            let stamp = match (hardware, &clocks, r.hw) {
                (Some((h, shared)), Some(clocks), Some(hw)) => {
                    let clocks = hwclock::Clocks {
                        clocks,
                        stepped: clock.changes.stepped,
                    };
                    let stamp = h.transmit(&clocks, Some(hw), r.interface, now);
                    let counts = &shared.stats.hw;
                    hwclock::count(stamp, &counts.tx, &counts.tx_fallback);
                    stamp
                }
                _ => Stamp::NotHardware,
            };
            let tx = match stamp {
                Stamp::Hardware(t) => Some((t, true)),
                _ => r.rx.map(|t| (t, false)),
            };
            if let (Some((tx, from_hardware)), Some(rx)) = (tx, interleave::sent_receive(reply)) {
                let served = clock.correction.apply(tx).to_ntp();
                found.first += usize::from(table.transmitted(to, rx, served, from_hardware));
            }
        }
        if n < BATCH {
            break;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hardware_stamps_due_are_waited_for_a_second_then_counted_lost() {
        let t0 = Instant::now();
        let mut due = Awaited::default();
        assert_eq!(due.hardware_wait(t0), None);
        // Three stamped replies, two by a hardware interface.
        due.sent(3, 2, t0);
        assert_eq!(due.hardware_wait(t0), Some(HARDWARE_WAIT));
        // Their software stamps, and one hardware stamp 0.4 s later: the wait starts again.
        let at = t0 + Duration::from_millis(400);
        due.got(
            &Collected {
                first: 3,
                hardware: 1,
            },
            at,
        );
        assert_eq!((due.first, due.hardware), (0, 1));
        let later = at + Duration::from_millis(700);
        assert_eq!(due.hardware_wait(later), Some(Duration::from_millis(300)));
        assert_eq!(
            due.hardware_wait(at + HARDWARE_WAIT * 2),
            Some(Duration::ZERO)
        );
        assert_eq!(due.lost(), 1);
        assert_eq!(due.hardware_wait(later), None);
        // Replies by other interfaces start no wait.
        due.sent(2, 0, later);
        assert_eq!((due.first, due.hardware_wait(later)), (2, None));
    }

    #[test]
    fn a_refusal_says_what_is_missing() {
        let eperm = std::io::Error::from_raw_os_error(libc::EPERM);
        assert!(refused(&eperm).contains("needs CAP_NET_ADMIN"));
        let busy = std::io::Error::from_raw_os_error(libc::EBUSY);
        assert!(refused(&busy).starts_with("cannot turn them on (SIOCSHWTSTAMP: "));
    }

    #[test]
    fn only_a_socket_with_hardware_interfaces_asks_for_hardware_stamps() {
        let stamping = |index| Stamping {
            address: "0.0.0.0:123".parse().unwrap(),
            interface: "eth0".into(),
            timestamping: Timestamping::Kernel,
            why: String::new(),
            index,
            receives: true,
        };
        assert!(hardware(&[stamping(None), stamping(None)]).is_none());
        let got = hardware(&[stamping(None), stamping(Some(4))]).unwrap();
        assert_eq!(got.indexes, [4]);
        assert!(got.transmit_only.is_empty());
        let tx_only = Stamping {
            receives: false,
            ..stamping(Some(5))
        };
        let got = hardware(&[stamping(Some(4)), tx_only]).unwrap();
        assert_eq!((got.indexes, got.transmit_only), (vec![4, 5], vec![5]));
        // The kernel refusing hardware stamps on the socket turns them back to kernel ones.
        let mut plan = vec![Stamping {
            timestamping: Timestamping::Hardware,
            ..stamping(Some(4))
        }];
        report(&mut plan, Timestamping::Kernel);
        assert_eq!(
            (plan[0].timestamping, plan[0].index),
            (Timestamping::Kernel, None)
        );
        assert!(plan[0].why.contains("refused hardware"), "{}", plan[0].why);
    }
}
