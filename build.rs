//! Records the build day: a receiver reporting a time before it is wrong (rollover, two-digit
//! year), and the NMEA decoder uses it as its default floor. SOURCE_DATE_EPOCH keeps
//! reproducible builds reproducible.

use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        });
    println!("cargo:rustc-env=PITIME_BUILD_DAY={}", secs / 86_400);
}
