//! Simulated receivers and oscillators: what stands in for antennas, serial ports and PPS lines on machines
//! that have none (tests, the demo, benchmarks).

pub mod gps;
pub mod gps_receiver;
pub mod gps_runner;
pub mod longwave;
pub mod longwave_bench;
pub mod longwave_runner;
pub mod oscillator;
pub mod player;
pub mod rng;
pub mod scenario;
pub mod true_clock;
