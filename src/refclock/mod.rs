//! Reference clocks, one module per kind.

pub mod local;
