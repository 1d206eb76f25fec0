//! Time representations and the conversions between them, in one place.
//!
//! `Realtime` is a reading of the system's CLOCK_REALTIME (Unix epoch, nanoseconds);
//! `NtpTimestamp` is the 64-bit NTP wire format (era-relative seconds since 1900 and a binary
//! fraction). Conversions between the two are explicit and era-aware.

use std::fmt;

/// Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01).
pub const NTP_UNIX_OFFSET: i64 = 2_208_988_800;
const NANOS_PER_SEC: i64 = 1_000_000_000;

/// A reading of CLOCK_REALTIME: nanoseconds since the Unix epoch (covers 1678..2262).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Realtime(i64);

impl Realtime {
    pub const fn from_nanos(nanos: i64) -> Self {
        Realtime(nanos)
    }

    pub fn from_timespec(secs: i64, nanos: i64) -> Self {
        Realtime(secs.saturating_mul(NANOS_PER_SEC).saturating_add(nanos))
    }

    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// `self - earlier` in seconds.
    pub fn seconds_since(self, earlier: Realtime) -> f64 {
        (self.0 - earlier.0) as f64 / 1e9
    }

    /// This instant shifted by `secs` seconds (which may be negative).
    pub fn add_secs_f64(self, secs: f64) -> Realtime {
        Realtime(self.0.saturating_add((secs * 1e9).round() as i64))
    }

    /// The NTP timestamp of this instant. The era is implicit on the wire: 2036-02-07 wraps to 0.
    pub fn to_ntp(self) -> NtpTimestamp {
        let secs = self.0.div_euclid(NANOS_PER_SEC) + NTP_UNIX_OFFSET;
        let nanos = self.0.rem_euclid(NANOS_PER_SEC) as u64;
        let frac = (nanos << 32) / NANOS_PER_SEC as u64;
        NtpTimestamp(((secs as u64 & 0xffff_ffff) << 32) | frac)
    }
}

/// The 64-bit NTP timestamp format: 32 bits of seconds since the start of the era, 32 of fraction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NtpTimestamp(pub u64);

impl NtpTimestamp {
    pub const ZERO: NtpTimestamp = NtpTimestamp(0);

    pub fn from_be_bytes(bytes: [u8; 8]) -> Self {
        NtpTimestamp(u64::from_be_bytes(bytes))
    }

    pub fn to_be_bytes(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }

    /// The instant this timestamp names, taking the era closest to `pivot` (within ±68 years).
    pub fn to_realtime_near(self, pivot: Realtime) -> Realtime {
        let pivot_ntp = pivot.to_ntp();
        // Signed distance in NTP units, modulo 2^64: unambiguous within half an era.
        let diff = self.0.wrapping_sub(pivot_ntp.0) as i64;
        let diff_nanos = ((diff as i128 * NANOS_PER_SEC as i128) >> 32) as i64;
        Realtime(pivot.0.saturating_add(diff_nanos))
    }
}

impl fmt::Display for NtpTimestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}.{:08x}", self.0 >> 32, self.0 & 0xffff_ffff)
    }
}

/// The 32-bit NTP short format (16.16 fixed point seconds), used for root delay and dispersion.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct NtpShort(pub u32);

impl NtpShort {
    /// Converts non-negative seconds, saturating at the format's maximum (65535.99998 s).
    pub fn from_secs_f64(secs: f64) -> Self {
        if secs.is_nan() || secs <= 0.0 {
            return NtpShort(0);
        }
        let units = (secs * 65536.0).ceil();
        NtpShort(if units >= u32::MAX as f64 {
            u32::MAX
        } else {
            units as u32
        })
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 65536.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_epoch_maps_to_ntp_offset() {
        let ts = Realtime::from_nanos(0).to_ntp();
        assert_eq!(ts.0 >> 32, NTP_UNIX_OFFSET as u64);
        assert_eq!(ts.0 & 0xffff_ffff, 0);
    }

    #[test]
    fn half_second_is_half_fraction() {
        let ts = Realtime::from_nanos(500_000_000).to_ntp();
        assert_eq!(ts.0 & 0xffff_ffff, 0x8000_0000);
    }

    #[test]
    fn era_rollover_in_2036_round_trips() {
        // 2036-02-07T06:28:16Z is the first second of NTP era 1.
        let rollover = Realtime::from_timespec(2_085_978_496, 0);
        assert_eq!(rollover.to_ntp().0, 0);
        let later = rollover.add_secs_f64(10.25);
        let wire = later.to_ntp();
        assert_eq!(wire.0 >> 32, 10);
        let back = wire.to_realtime_near(rollover.add_secs_f64(-100.0));
        assert!((back.seconds_since(later)).abs() < 1e-9);
    }

    #[test]
    fn realtime_round_trips_through_ntp() {
        let t = Realtime::from_timespec(1_763_800_000, 123_456_789);
        let back = t.to_ntp().to_realtime_near(t.add_secs_f64(5000.0));
        assert!((back.seconds_since(t)).abs() < 1e-9);
    }

    #[test]
    fn short_format_saturates_and_rounds_up() {
        assert_eq!(NtpShort::from_secs_f64(-1.0).0, 0);
        assert_eq!(NtpShort::from_secs_f64(f64::NAN).0, 0);
        assert_eq!(NtpShort::from_secs_f64(1e9).0, u32::MAX);
        assert_eq!(NtpShort::from_secs_f64(1.0).0, 65536);
        assert_eq!(NtpShort::from_secs_f64(1e-9).0, 1);
    }
}
