//! Time representations and the conversions between them, in one place.
//!
//! `Realtime` is a reading of the system's CLOCK_REALTIME (Unix epoch, nanoseconds);
//! `NtpTimestamp` is the 64-bit NTP wire format (era-relative seconds since 1900 and a binary
//! fraction). Conversions between the two are explicit and era-aware.

use std::fmt;

/// Leap indicator values, as NTP carries them; 3 means "clock unsynchronised".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leap {
    None = 0,
    Insert = 1,
    Delete = 2,
    Unsynchronised = 3,
}

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

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a count of days since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A UTC time as a receiver labels it: a civil day and a second of that day. Second 86400 is
/// an inserted leap second (23:59:60), which the Unix timescale cannot name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UtcTime {
    /// Days since 1970-01-01.
    pub day: i64,
    /// Second of the day, 0..=86400.
    pub second: u32,
    pub nanos: u32,
}

impl UtcTime {
    /// Validates a civil date and time; a second of 60 is accepted only at 23:59.
    pub fn from_civil(date: (i64, u32, u32), time: (u32, u32, u32), nanos: u32) -> Option<Self> {
        let (year, month, day) = date;
        let (h, m, s) = time;
        let date_ok = (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month);
        let time_ok = h < 24 && m < 60 && (s < 60 || (s == 60 && h == 23 && m == 59));
        (date_ok && time_ok && nanos < NANOS_PER_SEC as u32).then(|| UtcTime {
            day: days_from_civil(year, month, day),
            second: h * 3600 + m * 60 + s,
            nanos,
        })
    }

    pub fn from_realtime(t: Realtime) -> Self {
        let secs = t.0.div_euclid(NANOS_PER_SEC);
        UtcTime {
            day: secs.div_euclid(86_400),
            second: secs.rem_euclid(86_400) as u32,
            nanos: t.0.rem_euclid(NANOS_PER_SEC) as u32,
        }
    }

    pub fn is_leap_second(&self) -> bool {
        self.second >= 86_400
    }

    /// Hours, minutes and seconds of the day: 23:59:60 for an inserted leap second.
    pub fn hms(&self) -> (u32, u32, u32) {
        match self.second {
            86_400.. => (23, 59, 60),
            s => (s / 3600, s / 60 % 60, s % 60),
        }
    }

    /// The instant on the Unix timescale; `None` for an inserted leap second.
    pub fn to_realtime(&self) -> Option<Realtime> {
        (!self.is_leap_second()).then(|| {
            Realtime::from_timespec(self.day * 86_400 + self.second as i64, self.nanos as i64)
        })
    }
}

/// ISO 8601 with milliseconds, as gpsd prints it: `2017-07-19T08:50:01.000Z`.
impl fmt::Display for UtcTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, mo, d) = civil_from_days(self.day);
        let (h, mi, s) = match self.second {
            86_400.. => (23, 59, 60),
            s => (s / 3600, s / 60 % 60, s % 60),
        };
        let ms = self.nanos / 1_000_000;
        write!(f, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
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
    fn civil_dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        for days in (-800_000..800_000).step_by(97) {
            let (y, m, d) = civil_from_days(days);
            assert!(d >= 1 && d <= days_in_month(y, m));
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn utc_time_validates_and_prints() {
        let t = UtcTime::from_civil((2017, 7, 19), (8, 50, 1), 0).unwrap();
        assert_eq!(t.to_string(), "2017-07-19T08:50:01.000Z");
        assert_eq!(
            t.to_realtime(),
            Some(Realtime::from_timespec(1_500_454_201, 0))
        );
        assert_eq!(UtcTime::from_realtime(t.to_realtime().unwrap()), t);
        let leap = UtcTime::from_civil((2016, 12, 31), (23, 59, 60), 0).unwrap();
        assert_eq!(leap.to_string(), "2016-12-31T23:59:60.000Z");
        assert_eq!(leap.to_realtime(), None);
        assert!(UtcTime::from_civil((2016, 12, 31), (23, 58, 60), 0).is_none());
        assert!(UtcTime::from_civil((2017, 2, 29), (0, 0, 0), 0).is_none());
        assert!(UtcTime::from_civil((2016, 2, 29), (24, 0, 0), 0).is_none());
    }

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
