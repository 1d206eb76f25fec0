//! The server's side of kernel transmit timestamps: turning them on for a listening socket, and
//! handing each one the kernel loops back to the interleaved table.

use std::net::UdpSocket;

use super::interleave::{self, Interleave};
use crate::discipline::snapshot::ClockSnapshot;
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
    match txstamp::enable_kernel(socket) {
        Ok(()) => Timestamping::Kernel,
        Err(e) => {
            tracing::warn!(?addr, "no kernel transmit timestamps ({e}): no interleaved mode, transmit times read before sending");
            Timestamping::User
        }
    }
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
