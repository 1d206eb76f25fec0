//! Reading u-blox navigation messages: the time of a solution (NAV-PVT, NAV-TIMEUTC,
//! NAV-TIMEGPS) with its validity flags and accuracy estimate, the fix NAV-PVT reports, and
//! the leap second NAV-TIMELS announces.
//! Pure; offsets from the u-blox 8 / M8 interface description (UBX-13003221), unchanged in
//! generations 9 and 10. A payload shorter than its message's is an error, never a guess.

use super::ubx::UbxFrame;
use crate::time::{Realtime, UtcTime};

/// GPS time began at 1980-01-06T00:00:00 UTC: seconds from the Unix epoch.
pub(super) const GPS_EPOCH: i64 = 315_964_800;
pub(super) const WEEK: i64 = 7 * 86_400;

/// The payload is shorter than the message's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Truncated {
    pub message: &'static str,
    pub length: usize,
}

impl std::fmt::Display for Truncated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} payload of {} bytes is too short",
            self.message, self.length
        )
    }
}

/// The time of one navigation solution.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UbxTime {
    pub message: &'static str,
    /// The time the solution labels, to the millisecond (the resolution of NMEA's times);
    /// `None` when its fields do not make a date and time.
    pub time: Option<UtcTime>,
    /// Whether the receiver's validity flags vouch for the time: NMEA's fix flag.
    pub valid: bool,
    /// The receiver's estimate of its time error (tAcc), seconds.
    pub accuracy: f64,
    /// From NAV-TIMEGPS: GPS - UTC in seconds, when the receiver says it is known.
    pub leap_seconds: Option<i8>,
}

/// What NAV-PVT says of the fix.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PvtFix {
    /// gnssFixOK: a fix within the receiver's accuracy limits.
    pub ok: bool,
    /// fixType: 0 none, 1 dead reckoning, 2 2D, 3 3D, 4 GNSS + dead reckoning, 5 time only.
    pub kind: u8,
    pub satellites: u8,
    /// Degrees and metres above mean sea level.
    pub position: (f64, f64, f64),
}

/// The time in a NAV-PVT, NAV-TIMEUTC or NAV-TIMEGPS message; `Ok(None)` for other messages.
pub fn time(frame: &UbxFrame) -> Result<Option<UbxTime>, Truncated> {
    match (frame.class, frame.id) {
        (0x01, 0x07) => pvt_time(frame).map(Some),
        (0x01, 0x21) => timeutc(frame).map(Some),
        (0x01, 0x20) => timegps(frame).map(Some),
        _ => Ok(None),
    }
}

/// The fix in a NAV-PVT message; `Ok(None)` for other messages.
pub fn pvt_fix(frame: &UbxFrame) -> Result<Option<PvtFix>, Truncated> {
    if (frame.class, frame.id) != (0x01, 0x07) {
        return Ok(None);
    }
    let p = Payload::new(frame, "NAV-PVT", 84)?;
    let degrees = |at| f64::from(p.i32(at)) * 1e-7;
    Ok(Some(PvtFix {
        ok: p.u8(21) & 1 == 1,
        kind: p.u8(20),
        satellites: p.u8(23),
        position: (degrees(28), degrees(24), f64::from(p.i32(36)) / 1000.0),
    }))
}

/// What NAV-TIMELS says of leap seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeapSeconds {
    /// GPS - UTC now, seconds, when valid.
    pub current: Option<i8>,
    /// The next change: +1 (a second inserted), -1 (deleted) or 0 (none announced).
    pub change: i8,
    /// Seconds from this epoch to the change (negative: since the last one), when valid.
    pub to_event: Option<i32>,
}

/// The leap seconds in a NAV-TIMELS message (protocol 17 and later); `Ok(None)` for other
/// messages.
pub fn timels(frame: &UbxFrame) -> Result<Option<LeapSeconds>, Truncated> {
    if (frame.class, frame.id) != (0x01, 0x26) {
        return Ok(None);
    }
    let p = Payload::new(frame, "NAV-TIMELS", 24)?;
    let valid = p.u8(23);
    Ok(Some(LeapSeconds {
        current: (valid & 1 != 0).then_some(p.u8(9) as i8),
        change: p.u8(11) as i8,
        to_event: (valid & 2 != 0).then_some(p.i32(12)),
    }))
}

/// NAV-PVT: the UTC date and time of the epoch, valid when validDate, validTime and
/// fullyResolved are all set. (84 bytes before protocol 15, 92 since.)
fn pvt_time(frame: &UbxFrame) -> Result<UbxTime, Truncated> {
    let p = Payload::new(frame, "NAV-PVT", 84)?;
    let valid = p.u8(11) & 0b111 == 0b111;
    Ok(UbxTime {
        message: "NAV-PVT",
        time: civil(&p, 4, p.i32(16)),
        valid,
        accuracy: f64::from(p.u32(12)) / 1e9,
        leap_seconds: None,
    })
}

/// NAV-TIMEUTC: valid when validTOW, validWKN and validUTC are all set.
fn timeutc(frame: &UbxFrame) -> Result<UbxTime, Truncated> {
    let p = Payload::new(frame, "NAV-TIMEUTC", 20)?;
    let valid = p.u8(19) & 0b111 == 0b111;
    Ok(UbxTime {
        message: "NAV-TIMEUTC",
        time: civil(&p, 12, p.i32(8)),
        valid,
        accuracy: f64::from(p.u32(4)) / 1e9,
        leap_seconds: None,
    })
}

/// NAV-TIMEGPS: GPS week and time of week, made UTC with its leap seconds; valid when
/// towValid, weekValid and leapSValid are all set.
fn timegps(frame: &UbxFrame) -> Result<UbxTime, Truncated> {
    let p = Payload::new(frame, "NAV-TIMEGPS", 16)?;
    let flags = p.u8(11);
    let leap = p.u8(10) as i8;
    let nanos = i64::from(p.u32(0)) * 1_000_000 + i64::from(p.i32(4));
    let week = i64::from(p.u16(8) as i16);
    let seconds = GPS_EPOCH + week * WEEK - i64::from(leap);
    // During an inserted leap second GPS time runs on while UTC repeats a second: the Unix
    // timescale names it as the second after, which the pairing then drops as a repeat.
    // (Weeks past 2262 do not fit the timescale: no time.)
    let time = seconds
        .checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(round_ms(nanos)))
        .map(|n| UtcTime::from_realtime(Realtime::from_nanos(n)));
    Ok(UbxTime {
        message: "NAV-TIMEGPS",
        time,
        valid: flags & 0b111 == 0b111,
        accuracy: f64::from(p.u32(12)) / 1e9,
        leap_seconds: (flags & 0b100 != 0).then_some(leap),
    })
}

/// The civil date and time at `at` (year, month, day, hour, minute, second, as PVT and
/// TIMEUTC lay them out) plus u-blox's signed nanoseconds (-1 s .. +1 s), to the millisecond.
fn civil(p: &Payload, at: usize, nano: i32) -> Option<UtcTime> {
    let date = (
        i64::from(p.u16(at)),
        u32::from(p.u8(at + 2)),
        u32::from(p.u8(at + 3)),
    );
    let time = (
        u32::from(p.u8(at + 4)),
        u32::from(p.u8(at + 5)),
        u32::from(p.u8(at + 6)),
    );
    let base = UtcTime::from_civil(date, time, 0)?;
    let nanos = i64::from(base.second) * 1_000_000_000 + round_ms(i64::from(nano));
    // Carry into the day before or after (which is assumed to have no leap second).
    let day_nanos = 86_400 * 1_000_000_000;
    let (day, nanos) = match nanos {
        n if n < 0 => (base.day - 1, n + day_nanos),
        n if n >= day_nanos && base.second < 86_400 => (base.day + 1, n - day_nanos),
        n => (base.day, n),
    };
    Some(UtcTime {
        day,
        second: (nanos / 1_000_000_000) as u32,
        nanos: (nanos % 1_000_000_000) as u32,
    })
}

fn round_ms(nanos: i64) -> i64 {
    (nanos as f64 / 1e6).round() as i64 * 1_000_000
}

/// A payload checked long enough for every fixed offset read from it.
pub(super) struct Payload<'a>(&'a [u8]);

impl<'a> Payload<'a> {
    pub(super) fn new(
        frame: &'a UbxFrame,
        message: &'static str,
        length: usize,
    ) -> Result<Self, Truncated> {
        match frame.payload.get(..length) {
            Some(p) => Ok(Payload(p)),
            None => Err(Truncated {
                message,
                length: frame.payload.len(),
            }),
        }
    }

    pub(super) fn u8(&self, at: usize) -> u8 {
        self.0[at]
    }

    pub(super) fn u16(&self, at: usize) -> u16 {
        u16::from_le_bytes([self.0[at], self.0[at + 1]])
    }

    pub(super) fn u32(&self, at: usize) -> u32 {
        u32::from_le_bytes([self.0[at], self.0[at + 1], self.0[at + 2], self.0[at + 3]])
    }

    pub(super) fn i32(&self, at: usize) -> i32 {
        self.u32(at) as i32
    }
}

/// Payloads as a receiver sends them, for tests here and in the simulator.
pub mod build {
    use crate::time::{civil_from_days, UtcTime};

    /// NAV-PVT (92 bytes) at `t` with a 3D fix when `valid`.
    pub fn pvt(t: UtcTime, valid: bool, t_acc_ns: u32) -> Vec<u8> {
        let mut p = vec![0u8; 92];
        put_civil(&mut p, 4, t);
        p[11] = if valid { 0b111 } else { 0 };
        p[12..16].copy_from_slice(&t_acc_ns.to_le_bytes());
        p[16..20].copy_from_slice(&(t.nanos as i32).to_le_bytes());
        p[20] = if valid { 3 } else { 0 };
        p[21] = u8::from(valid);
        p[23] = if valid { 9 } else { 0 };
        p
    }

    /// NAV-TIMEUTC (20 bytes) at `t`, all validity flags set when `valid`.
    pub fn timeutc(t: UtcTime, valid: bool, t_acc_ns: u32) -> Vec<u8> {
        let mut p = vec![0u8; 20];
        p[4..8].copy_from_slice(&t_acc_ns.to_le_bytes());
        p[8..12].copy_from_slice(&(t.nanos as i32).to_le_bytes());
        put_civil(&mut p, 12, t);
        p[19] = if valid { 0b111 } else { 0 };
        p
    }

    /// NAV-TIMELS: `current` leap seconds, `change` announced `to_event` seconds ahead.
    pub fn timels(current: i8, change: i8, to_event: i32) -> Vec<u8> {
        let mut p = vec![0u8; 24];
        p[9] = current as u8;
        p[10] = 2; // announced by GPS
        p[11] = change as u8;
        p[12..16].copy_from_slice(&to_event.to_le_bytes());
        p[23] = 0b11;
        p
    }

    /// Year, month, day, hour, minute and second from `at`, as PVT and TIMEUTC lay them out.
    fn put_civil(p: &mut [u8], at: usize, t: UtcTime) {
        let (y, mo, d) = civil_from_days(t.day);
        let (h, mi, s) = t.hms();
        p[at..at + 2].copy_from_slice(&(y as u16).to_le_bytes());
        p[at + 2..at + 7].copy_from_slice(&[mo as u8, d as u8, h as u8, mi as u8, s as u8]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refclock::gps::decoder::parse_date;

    fn nav(id: u8, payload: Vec<u8>) -> UbxFrame {
        UbxFrame {
            class: 0x01,
            id,
            payload,
        }
    }

    fn at(text: &str, second: u32, nanos: u32) -> UtcTime {
        UtcTime {
            second,
            nanos,
            ..parse_date(text).unwrap()
        }
    }

    #[test]
    fn pvt_gives_its_time_fix_and_accuracy() {
        let t = at("2026-07-19", 31_801, 0);
        let f = nav(0x07, build::pvt(t, true, 25));
        let got = time(&f).unwrap().unwrap();
        assert_eq!(got.time.unwrap().to_string(), "2026-07-19T08:50:01.000Z");
        assert!(got.valid);
        assert_eq!(got.accuracy, 25e-9);
        let fix = pvt_fix(&f).unwrap().unwrap();
        assert_eq!((fix.ok, fix.kind, fix.satellites), (true, 3, 9));
        // Not fully resolved: the time is read, but not vouched for.
        let mut p = build::pvt(t, true, 25);
        p[11] = 0b011;
        assert!(!time(&nav(0x07, p)).unwrap().unwrap().valid);
    }

    #[test]
    fn a_negative_nano_rounds_into_the_second_before_across_midnight() {
        let mut p = build::pvt(at("2026-07-20", 0, 0), true, 25);
        p[16..20].copy_from_slice(&(-3_000_000i32).to_le_bytes());
        let got = time(&nav(0x07, p.clone())).unwrap().unwrap();
        assert_eq!(got.time.unwrap().to_string(), "2026-07-19T23:59:59.997Z");
        // A few microseconds of receiver clock bias round to the whole second.
        p[16..20].copy_from_slice(&(-4_321i32).to_le_bytes());
        let got = time(&nav(0x07, p)).unwrap().unwrap();
        assert_eq!(got.time.unwrap().to_string(), "2026-07-20T00:00:00.000Z");
    }

    #[test]
    fn timeutc_and_its_leap_second() {
        let leap = at("2016-12-31", 86_400, 0);
        let got = time(&nav(0x21, build::timeutc(leap, true, 12)))
            .unwrap()
            .unwrap();
        assert_eq!(got.time.unwrap().to_string(), "2016-12-31T23:59:60.000Z");
        assert!(got.valid);
        let got = time(&nav(0x21, build::timeutc(leap, false, 12)))
            .unwrap()
            .unwrap();
        assert!(!got.valid);
    }

    #[test]
    fn timegps_is_made_utc_with_its_leap_seconds() {
        // 2017-07-19T08:50:01Z is GPS week 1958, 291019 s (Wednesday 08:50:19 GPS).
        let mut p = vec![0u8; 16];
        p[0..4].copy_from_slice(&291_019_000u32.to_le_bytes());
        p[4..8].copy_from_slice(&(-1_200i32).to_le_bytes());
        p[8..10].copy_from_slice(&1958u16.to_le_bytes());
        p[10] = 18;
        p[11] = 0b111;
        p[12..16].copy_from_slice(&40u32.to_le_bytes());
        let got = time(&nav(0x20, p.clone())).unwrap().unwrap();
        assert_eq!(got.time.unwrap().to_string(), "2017-07-19T08:50:01.000Z");
        assert_eq!((got.valid, got.leap_seconds), (true, Some(18)));
        // Leap seconds not yet known: the time is the receiver's default guess, not valid.
        p[11] = 0b011;
        let got = time(&nav(0x20, p)).unwrap().unwrap();
        assert_eq!((got.valid, got.leap_seconds), (false, None));
    }

    #[test]
    fn timels_gives_the_announced_leap_second() {
        let ls = timels(&nav(0x26, build::timels(18, 1, 3600)))
            .unwrap()
            .unwrap();
        assert_eq!(
            ls,
            LeapSeconds {
                current: Some(18),
                change: 1,
                to_event: Some(3600)
            }
        );
        let mut p = build::timels(18, -1, 3600);
        p[23] = 0;
        let ls = timels(&nav(0x26, p)).unwrap().unwrap();
        assert_eq!((ls.current, ls.change, ls.to_event), (None, -1, None));
        assert!(timels(&nav(0x26, vec![0; 23])).is_err());
        assert_eq!(timels(&nav(0x07, vec![])), Ok(None));
    }

    #[test]
    fn truncated_payloads_and_garbage_are_errors_not_panics() {
        for (id, need) in [(0x07, 84), (0x21, 20), (0x20, 16)] {
            for len in [0, 1, need - 1] {
                let err = time(&nav(id, vec![0xff; len])).unwrap_err();
                assert_eq!(err.length, len);
            }
            // Any bytes of the right length read as something, valid or not.
            let junk: Vec<u8> = (0..need).map(|i| (i * 37 % 256) as u8).collect();
            let _ = time(&nav(id, junk));
        }
        assert!(pvt_fix(&nav(0x07, vec![0; 10])).is_err());
        for len in 0..40 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 53 % 256) as u8).collect();
            let _ = (timels(&nav(0x26, junk.clone())), pvt_fix(&nav(0x07, junk)));
        }
        assert_eq!(time(&nav(0x35, vec![])), Ok(None));
        // Impossible fields give no time.
        let mut p = build::pvt(at("2026-07-19", 0, 0), true, 25);
        p[6] = 13;
        assert_eq!(time(&nav(0x07, p)).unwrap().unwrap().time, None);
    }
}
