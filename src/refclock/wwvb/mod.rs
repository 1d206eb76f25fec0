//! WWVB (Fort Collins, 60 kHz): `frame` is the minute frame's layout and plain checks, `station` what the shared
//! longwave decoder (`refclock::longwave`) needs to know of it.

pub mod frame;
pub mod station;
