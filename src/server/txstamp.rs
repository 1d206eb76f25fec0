//! The server's side of kernel transmit timestamps: turning them on for a listening socket, and
//! handing each one the kernel loops back to the interleaved table.

use std::net::{SocketAddr, UdpSocket};

use super::interleave::{self, Interleave};
use crate::discipline::snapshot::ClockSnapshot;
use crate::ntp::hwstamp;
use crate::ntp::txstamp::{self, Timestamping};
use crate::ntp::udp::{RecvBatch, BATCH};

/// Sets up the timestamps of `socket` as `wanted`; returns what it got: `Kernel` when transmit
/// timestamps are on (and so interleaved mode), `User` otherwise.
pub fn setup(socket: &UdpSocket, wanted: Timestamping) -> Timestamping {
    let addr = socket.local_addr().ok();
    if wanted == Timestamping::User {
        if let Err(e) = txstamp::disable_kernel_rx(socket) {
            tracing::warn!(?addr, "cannot turn kernel receive timestamps off: {e}");
        }
        return Timestamping::User;
    }
    match txstamp::enable_kernel(socket, false) {
        Ok(()) => Timestamping::Kernel,
        Err(e) => {
            tracing::warn!(?addr, "no kernel transmit timestamps ({e}): no interleaved mode, transmit times read before sending");
            Timestamping::User
        }
    }
}

/// Which timestamps one interface of a listening address got, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamping {
    pub address: SocketAddr,
    pub interface: String,
    pub timestamping: Timestamping,
    pub why: String,
}

/// Says, in the log and in what it returns for the status, which timestamps each interface
/// serving `address` got when `wanted`; `socket` is what `setup` got for its sockets.
pub fn report(address: SocketAddr, wanted: Timestamping, socket: Timestamping) -> Vec<Stamping> {
    let interfaces = hwstamp::interfaces(address.ip()).unwrap_or_else(|e| {
        tracing::warn!(%address, "cannot list the network interfaces: {e}");
        Vec::new()
    });
    interfaces
        .into_iter()
        .map(|interface| {
            let (timestamping, why) = match socket {
                Timestamping::User if wanted != Timestamping::User => {
                    (socket, "the kernel refused transmit timestamps".to_string())
                }
                _ => hwstamp::choose(wanted, &hwstamp::query(&interface)),
            };
            tracing::info!(%address, %interface, timestamping = timestamping.name(), "timestamps: {why}");
            Stamping {
                address,
                interface,
                timestamping,
                why,
            }
        })
        .collect()
}

/// Takes the transmit timestamps waiting on `socket`'s error queue and records each in `table`;
/// returns how many matched a sent reply's frame.
pub fn collect(
    socket: &UdpSocket,
    batch: &mut RecvBatch,
    table: &mut Interleave,
    clock: &ClockSnapshot,
) -> usize {
    let mut found = 0;
    while let Ok(n) = batch.recv_errqueue(socket) {
        for i in 0..n {
            let r = batch.get(i);
            let Some((tx, (to, reply))) = r.rx.zip(txstamp::udp_payload(r.data)) else {
                continue;
            };
            if let Some(rx) = interleave::sent_receive(reply) {
                table.transmitted(to, rx, clock.correction.apply(tx).to_ntp());
                found += 1;
            }
        }
        if n < BATCH {
            break;
        }
    }
    found
}
