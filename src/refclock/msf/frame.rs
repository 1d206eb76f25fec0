//! The MSF minute frame (NPL, "MSF 60 kHz time and date code"): the carrier is off for the
//! first 100 ms of every second, for 500 ms at second 0 (the minute marker); bit A is the
//! 100-200 ms, bit B the 200-300 ms (off = 1). Sent during the minute *before* the time they
//! encode, in UK civil time (GMT, or BST = UTC+1). A bits: 17-24 year, 25-29 month, 30-35 day
//! of month, 36-38 day of week (Sunday 0), 39-44 hour, 45-51 minute, all BCD most significant
//! bit first; 52-59 the minute identifier 01111110. B bits: 1-16 DUT1, 53 BST change within
//! the hour, 54-57 odd parities over 17-24, 25-35, 36-38 and 39-51, 58 BST in effect, 59 0.
//! A leap second is an extra 00 second after the DUT1 code: bits 17-59 come a second late.
//! MSF announces none.

pub use crate::refclock::longwave::bcd::bcd_bits;
use crate::refclock::longwave::bcd::bcd_value;
pub use crate::refclock::longwave::station::Minute;
use crate::time::{civil_from_days, days_from_civil, days_in_month, UtcTime};

/// Bit A of position `p` is `[p]`, bit B `[B + p]`, as in the decoder's frames.
pub const B: usize = 60;
/// (first bit, BCD weights) of each number.
pub const YEAR: (usize, &[u32]) = (17, &[80, 40, 20, 10, 8, 4, 2, 1]);
pub const MONTH: (usize, &[u32]) = (25, &[10, 8, 4, 2, 1]);
pub const DAY: (usize, &[u32]) = (30, &[20, 10, 8, 4, 2, 1]);
pub const WEEKDAY: (usize, &[u32]) = (36, &[4, 2, 1]);
pub const HOUR: (usize, &[u32]) = (39, &[20, 10, 8, 4, 2, 1]);
pub const MINUTE: (usize, &[u32]) = (45, &[40, 20, 10, 8, 4, 2, 1]);
/// The minute identifier, A bits 52-59.
pub const IDENTIFIER: [bool; 8] = [false, true, true, true, true, true, true, false];
/// Each odd parity bit (B) and the A bits it covers.
pub const PARITIES: [(usize, std::ops::RangeInclusive<usize>); 4] = [
    (B + 54, 17..=24),
    (B + 55, 25..=35),
    (B + 56, 36..=38),
    (B + 57, 39..=51),
];
pub const BST_WARNING: usize = B + 53;
pub const BST: usize = B + 58;
/// Bits that must be known to decode: the A bits from the year on and B 53-59.
const REQUIRED: [std::ops::RangeInclusive<usize>; 2] = [17..=59, B + 53..=B + 59];

pub type Bits = [bool; 2 * B];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    Undecided,
    Identifier,
    Parity,
    Digits,
    Calendar,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FrameError::Undecided => "undecided bits",
            FrameError::Identifier => "minute identifier (A 52-59, B 59) wrong",
            FrameError::Parity => "parity error",
            FrameError::Digits => "BCD digit out of range",
            FrameError::Calendar => "no such date or time",
        })
    }
}

fn field(bits: &Bits, (start, weights): (usize, &[u32])) -> u32 {
    (0..weights.len()).fold(0, |p, i| p | u32::from(bits[start + i]) << i)
}

/// Decodes a frame of decided bits (`None` where a bit was not decided).
pub fn decode(bits: &[Option<bool>; 2 * B]) -> Result<Minute, FrameError> {
    if REQUIRED
        .iter()
        .flat_map(|r| r.clone())
        .any(|i| bits[i].is_none())
    {
        return Err(FrameError::Undecided);
    }
    let b: Bits = std::array::from_fn(|i| bits[i].unwrap_or(false));
    if b[52..=59] != IDENTIFIER || b[B + 59] {
        return Err(FrameError::Identifier);
    }
    for (parity, range) in PARITIES {
        if (b[range].iter().filter(|&&x| x).count() + usize::from(b[parity])) % 2 != 1 {
            return Err(FrameError::Parity);
        }
    }
    let read = |f| bcd_value(field(&b, f), f.1).ok_or(FrameError::Digits);
    let (minute, hour, day) = (read(MINUTE)?, read(HOUR)?, read(DAY)?);
    let (weekday, month, year) = (read(WEEKDAY)?, read(MONTH)?, read(YEAR)?);
    let year = 2000 + i64::from(year);
    if minute > 59
        || hour > 23
        || !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
    {
        return Err(FrameError::Calendar);
    }
    let days = days_from_civil(year, month, day);
    // 1970-01-01 was a Thursday; MSF counts Sunday as 0.
    if weekday != (days + 4).rem_euclid(7) as u32 {
        return Err(FrameError::Calendar);
    }
    let offset_hours = i64::from(b[BST]);
    let utc = days * 86_400 + i64::from(hour * 3600 + minute * 60) - offset_hours * 3600;
    Ok(Minute {
        utc: UtcTime {
            day: utc.div_euclid(86_400),
            second: utc.rem_euclid(86_400) as u32,
            nanos: 0,
        },
        offset_hours,
        dst_announced: b[BST_WARNING],
        leap_announced: false,
    })
}

/// The frame sent during the minute before `minute` starts (for the simulator and tests).
pub fn encode(minute: &Minute) -> Bits {
    let mut b = [false; 2 * B];
    let local = minute.utc.day * 86_400 + i64::from(minute.utc.second) + minute.offset_hours * 3600;
    let days = local.div_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let tod = local.rem_euclid(86_400) as u32;
    let mut put = |(start, weights): (usize, &[u32]), value: u32| {
        let bits = bcd_bits(value, weights);
        for (i, bit) in b[start..start + weights.len()].iter_mut().enumerate() {
            *bit = bits >> i & 1 == 1;
        }
    };
    put(YEAR, (year % 100) as u32);
    put(MONTH, month);
    put(DAY, day);
    put(WEEKDAY, (days + 4).rem_euclid(7) as u32);
    put(HOUR, tod / 3600);
    put(MINUTE, tod / 60 % 60);
    b[52..=59].copy_from_slice(&IDENTIFIER);
    b[BST_WARNING] = minute.dst_announced;
    b[BST] = minute.offset_hours == 1;
    for (parity, range) in PARITIES {
        b[parity] = b[range].iter().filter(|&&x| x).count() % 2 == 0;
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minute(y: i64, mo: u32, d: u32, h: u32, mi: u32, offset: i64) -> Minute {
        Minute {
            utc: UtcTime::from_civil((y, mo, d), (h, mi, 0), 0).unwrap(),
            offset_hours: offset,
            dst_announced: false,
            leap_announced: false,
        }
    }

    fn known(b: Bits) -> [Option<bool>; 2 * B] {
        b.map(Some)
    }

    #[test]
    fn round_trips_across_the_calendar() {
        for m in [
            minute(2026, 11, 22, 3, 16, 0),
            minute(2016, 12, 31, 23, 0, 0),
            minute(2024, 2, 29, 22, 59, 0),
            minute(2026, 7, 19, 23, 50, 1),
        ] {
            assert_eq!(decode(&known(encode(&m))), Ok(m));
        }
    }

    #[test]
    fn a_known_frame_decodes() {
        // 2026-07-19 09:50 BST (08:50 UTC), a Sunday: hour 09 = 000 1001 MSB first, minute 50
        // = 101 0000, weekday 0.
        let b = encode(&minute(2026, 7, 19, 8, 50, 1));
        let bits: String = b[36..=51]
            .iter()
            .map(|&x| if x { '1' } else { '0' })
            .collect();
        assert_eq!(bits, "0000010011010000");
        // 2 + 2 ones in the time: its odd parity bit is 1; B 58 says BST.
        assert!(b[B + 57] && b[BST]);
    }

    #[test]
    fn every_check_rejects_a_broken_frame() {
        let good = encode(&minute(2026, 11, 22, 3, 16, 0));
        let broken = |i: usize| {
            let mut b = known(good);
            b[i] = Some(!good[i]);
            decode(&b)
        };
        for i in [52, 53, 58, 59, B + 59] {
            assert_eq!(broken(i), Err(FrameError::Identifier), "bit {i}");
        }
        for i in [
            17,
            24,
            25,
            35,
            36,
            38,
            39,
            51,
            B + 54,
            B + 55,
            B + 56,
            B + 57,
        ] {
            assert_eq!(broken(i), Err(FrameError::Parity), "bit {i}");
        }
        // The weekday must match the date (two flips keep the parity).
        let mut b = known(good);
        b[37] = Some(!good[37]);
        b[38] = Some(!good[38]);
        assert_eq!(decode(&b), Err(FrameError::Calendar));
        let mut b = known(good);
        b[40] = None;
        assert_eq!(decode(&b), Err(FrameError::Undecided));
        // The DUT1 bits may be unknown (reception began mid-minute).
        let mut b = known(good);
        b[..17].fill(None);
        b[B..B + 17].fill(None);
        assert!(decode(&b).is_ok());
    }
}
