//! Clocks: reading the system clock, and (with the discipline) the actuators that steer it.

pub mod system;
