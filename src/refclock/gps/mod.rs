//! GNSS receivers: NMEA and u-blox UBX over serial, optionally with a PPS pulse.
//!
//! `nmea` finds and checks sentences, `ubx` cuts u-blox binary frames from the same stream and
//! `ubx_nav` reads their time and fix, `ubx_receiver` spoofing and jamming; `decoder` applies the time policy and keeps the receiver
//! status, `clock` pairs times with pulses and decides whether to trust them; `serial` and
//! `pps` are the I/O drivers and `driver` runs them.

pub mod clock;
pub mod decoder;
pub mod driver;
pub mod nmea;
pub mod pps;
pub mod serial;
pub mod status;
pub mod ubx;
pub mod ubx_nav;
pub mod ubx_receiver;
