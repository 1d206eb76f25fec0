//! Talking to the receiver: detecting what it is (UBX-MON-VER, PMTK605) and applying
//! `[source.receiver]` to it, every command checked against its acknowledgement.
//!
//! `ubx_cfg` and `pmtk` build the u-blox and MediaTek commands and read their answers, `plan`
//! turns the configuration into commands for the receiver found, `session` is the pure state
//! machine that sends them one at a time and judges the answers, and `link` connects it to the
//! serial port.

pub mod link;
pub mod plan;
pub mod pmtk;
pub mod session;
pub mod ubx_cfg;

pub use link::Link;
pub use session::{Identity, Outcome, ReceiverState, Setting};
