//! GNSS receivers: NMEA and u-blox UBX over serial, optionally with a PPS pulse.
//!
//! `nmea` finds and checks sentences, `ubx` cuts u-blox binary frames from the same stream,
//! `ubx_nav` reads their time and fix and `ubx_receiver` spoofing, jamming and the pulse's
//! quantisation error; `decoder` applies the time policy and keeps the receiver status, `clock`
//! pairs times with pulses and decides whether to trust them, `receiver` detects and configures
//! the receiver; `serial` and `pps` are the I/O drivers and `driver` runs them.

pub mod clock;
pub mod decoder;
pub mod driver;
pub mod nmea;
pub mod pps;
pub mod receiver;
pub mod serial;
pub mod status;
pub mod ubx;
pub mod ubx_nav;
pub mod ubx_receiver;
