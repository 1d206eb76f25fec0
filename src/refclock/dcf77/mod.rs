//! DCF77 longwave time signal receivers on a GPIO line.
//!
//! `level` bins the line and reads a second from its marker; `phase` finds the markers;
//! `mark` the minute mark; `evidence` gathers the time of day and the date over minutes;
//! `frame` is the minute frame's layout and plain checks; `decoder` ties them into labelled
//! seconds and minutes; `leap` believes a leap-second announcement; `driver` reads the GPIO
//! line.

pub mod decoder;
pub mod driver;
pub mod evidence;
pub mod frame;
pub mod leap;
pub mod level;
pub mod mark;
pub mod phase;
