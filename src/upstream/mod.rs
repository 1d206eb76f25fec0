//! Upstream NTP servers as a source: pitime as an NTP client, for cross-checking the reference
//! clocks and as a fallback without them. `client` is the protocol without I/O, `filter` its
//! clock filter, `driver` the UDP socket and thread around them.

pub mod client;
pub mod driver;
pub mod filter;
