//! Longwave time signal receivers on a GPIO line (DCF77, MSF, WWVB), one decoder for all.
//!
//! `level` bins the line; `phase` finds the second markers; `mark` the minute mark;
//! `evidence` gathers the time of day and the date over minutes; `decoder` ties them into
//! labelled seconds and minutes; `leap` believes a leap-second announcement; `driver` reads the
//! GPIO line. What differs between stations (pulse shapes, frame layouts, civil time, how a
//! leap second is sent) is a `station::Station`, implemented in `refclock::dcf77`, `msf` and
//! `wwvb`.

pub mod bcd;
pub mod decoder;
pub mod driver;
pub mod evidence;
pub mod leap;
pub mod level;
pub mod mark;
pub mod phase;
pub mod station;
