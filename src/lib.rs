//! pitime: a stratum-1 NTP server for the Raspberry Pi. Reference clocks feed the discipline,
//! which publishes clock snapshots that the NTP server and the status page read; the map of the
//! modules is docs/architecture.md.

pub mod alarm;
pub mod atomic_file;
pub mod capture;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod detect;
pub mod discipline;
#[doc(hidden)]
pub mod fuzz;
pub mod loadgen;
pub mod manpage;
pub mod ntp;
pub mod refclock;
pub mod replay;
pub mod server;
pub mod sim;
pub mod snmp;
pub mod systemd;
pub mod tcp;
pub mod time;
pub mod upstream;
pub mod web;
pub mod worker;
