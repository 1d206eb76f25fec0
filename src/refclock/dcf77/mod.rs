//! DCF77 longwave time signal receivers on a GPIO line.
//!
//! `frame` decodes and checks one minute's 59 bits; `decoder` turns edges into pulses, seconds,
//! minute marks and accepted minutes; `leap` believes a leap-second announcement; `driver`
//! reads the GPIO line.

pub mod decoder;
pub mod driver;
pub mod frame;
pub mod leap;
