//! The DCF77 minute frame: 59 bits, one a second, sent during the minute *before* the time they
//! encode. Bit layout (PTB): 0 start (0), 1-14 civil warnings, 15 call bit, 16 A1 (summer time
//! change announced), 17-18 Z1 Z2 (CEST, CET), 19 A2 (leap second announced), 20 S (1),
//! 21-27 minute, 28 P1, 29-34 hour, 35 P2, 36-41 day, 42-44 weekday, 45-49 month, 50-57 year,
//! 58 P3. Numbers are BCD, least significant bit first; parities are even.

pub use crate::refclock::longwave::bcd::bcd_bits;
use crate::refclock::longwave::bcd::bcd_value;
pub use crate::refclock::longwave::station::Minute;
use crate::time::{days_from_civil, days_in_month, UtcTime};

pub const FRAME_BITS: usize = 59;

/// (first bit, BCD weights) of each number.
pub const MINUTE: (usize, &[u32]) = (21, &[1, 2, 4, 8, 10, 20, 40]);
pub const HOUR: (usize, &[u32]) = (29, &[1, 2, 4, 8, 10, 20]);
pub const DAY: (usize, &[u32]) = (36, &[1, 2, 4, 8, 10, 20]);
pub const WEEKDAY: (usize, &[u32]) = (42, &[1, 2, 4]);
pub const MONTH: (usize, &[u32]) = (45, &[1, 2, 4, 8, 10]);
pub const YEAR: (usize, &[u32]) = (50, &[1, 2, 4, 8, 10, 20, 40, 80]);
/// Parity bits and the ranges (inclusive of the parity bit) they make even.
const PARITIES: [(usize, usize); 3] = [(21, 28), (29, 35), (36, 58)];
/// Bits that must be known to decode: from A1 to P3.
pub const REQUIRED: std::ops::RangeInclusive<usize> = 16..=58;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    Undecided,
    StartBits,
    ZoneBits,
    Parity,
    Digits,
    Calendar,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FrameError::Undecided => "undecided bits",
            FrameError::StartBits => "bit 0 or bit 20 wrong",
            FrameError::ZoneBits => "Z1 equals Z2",
            FrameError::Parity => "parity error",
            FrameError::Digits => "BCD digit out of range",
            FrameError::Calendar => "no such date or time",
        })
    }
}

/// Reads a BCD number, refusing digits above 9.
fn bcd(bits: &[bool; FRAME_BITS], (start, weights): (usize, &[u32])) -> Option<u32> {
    let pattern = (0..weights.len()).fold(0, |p, i| p | u32::from(bits[start + i]) << i);
    bcd_value(pattern, weights)
}

/// Fills in what the format fixes: one undecided bit in a parity group is whatever makes the
/// parity even, one of Z1/Z2 is the opposite of the other, S is 1. What cannot be filled
/// stays undecided.
pub fn resolve(bits: &mut [Option<bool>; FRAME_BITS]) {
    for (start, end) in PARITIES {
        let unknown: Vec<usize> = (start..=end).filter(|&i| bits[i].is_none()).collect();
        if let [i] = unknown[..] {
            let ones = (start..=end).filter(|&j| bits[j] == Some(true)).count();
            bits[i] = Some(ones % 2 == 1);
        }
    }
    match (bits[17], bits[18]) {
        (None, Some(z2)) => bits[17] = Some(!z2),
        (Some(z1), None) => bits[18] = Some(!z1),
        _ => {}
    }
    bits[20] = bits[20].or(Some(true));
}

/// Decodes a frame of decided bits (`None` where a bit was not decided; bits 0-15 may be
/// unknown when reception began mid-minute).
pub fn decode(bits: &[Option<bool>; FRAME_BITS]) -> Result<Minute, FrameError> {
    if REQUIRED.clone().any(|i| bits[i].is_none()) {
        return Err(FrameError::Undecided);
    }
    let b: [bool; FRAME_BITS] = std::array::from_fn(|i| bits[i].unwrap_or(false));
    if bits[0] == Some(true) || !b[20] {
        return Err(FrameError::StartBits);
    }
    if b[17] == b[18] {
        return Err(FrameError::ZoneBits);
    }
    for (start, end) in PARITIES {
        if b[start..=end].iter().filter(|&&x| x).count() % 2 != 0 {
            return Err(FrameError::Parity);
        }
    }
    let read = |field| bcd(&b, field).ok_or(FrameError::Digits);
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
    // 1970-01-01 was a Thursday (4); DCF77 counts Monday as 1.
    if weekday != ((days + 3).rem_euclid(7) + 1) as u32 {
        return Err(FrameError::Calendar);
    }
    let offset_hours = if b[17] { 2 } else { 1 };
    let local = days * 86_400 + i64::from(hour * 3600 + minute * 60);
    let utc = local - offset_hours * 3600;
    Ok(Minute {
        utc: UtcTime {
            day: utc.div_euclid(86_400),
            second: utc.rem_euclid(86_400) as u32,
            nanos: 0,
        },
        offset_hours,
        dst_announced: b[16],
        leap_announced: b[19],
    })
}

/// The frame sent during the minute before `minute` starts (for the simulator and tests).
pub fn encode(minute: &Minute) -> [bool; FRAME_BITS] {
    let mut b = [false; FRAME_BITS];
    let local = minute.utc.day * 86_400 + i64::from(minute.utc.second) + minute.offset_hours * 3600;
    let days = local.div_euclid(86_400);
    let (year, month, day) = crate::time::civil_from_days(days);
    let tod = local.rem_euclid(86_400) as u32;
    let weekday = ((days + 3).rem_euclid(7) + 1) as u32;
    let mut put = |(start, weights): (usize, &[u32]), value: u32| {
        let bits = bcd_bits(value, weights);
        for (i, bit) in b[start..start + weights.len()].iter_mut().enumerate() {
            *bit = bits >> i & 1 == 1;
        }
    };
    put(MINUTE, tod / 60 % 60);
    put(HOUR, tod / 3600);
    put(DAY, day);
    put(WEEKDAY, weekday);
    put(MONTH, month);
    put(YEAR, (year % 100) as u32);
    b[16] = minute.dst_announced;
    b[17] = minute.offset_hours == 2;
    b[18] = minute.offset_hours != 2;
    b[19] = minute.leap_announced;
    b[20] = true;
    for (start, end) in PARITIES {
        b[end] = b[start..end].iter().filter(|&&x| x).count() % 2 == 1;
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

    fn known(b: [bool; FRAME_BITS]) -> [Option<bool>; FRAME_BITS] {
        b.map(Some)
    }

    #[test]
    fn round_trips_across_the_calendar() {
        for m in [
            minute(2026, 11, 22, 3, 16, 1),
            minute(2016, 12, 31, 23, 0, 1),
            minute(2024, 2, 29, 22, 59, 1),
            minute(2026, 7, 19, 8, 50, 2),
        ] {
            assert_eq!(decode(&known(encode(&m))), Ok(m));
        }
    }

    #[test]
    fn a_known_frame_decodes() {
        // 2026-11-22 04:16 CET (03:16 UTC), a Sunday.
        let m = decode(&known(encode(&minute(2026, 11, 22, 3, 16, 1)))).unwrap();
        assert_eq!(m.utc.to_string(), "2026-11-22T03:16:00.000Z");
        let b = encode(&m);
        // Minute 16: bits 21-27 = 0110 100 (6 + 10), hour 4 = 0010 00.
        let bits: String = b[21..=34]
            .iter()
            .map(|&x| if x { '1' } else { '0' })
            .collect();
        assert_eq!(bits, "01101001001000");
    }

    #[test]
    fn one_undecided_bit_per_parity_group_is_resolved() {
        let good = encode(&minute(2026, 11, 22, 3, 16, 1));
        let mut b = known(good);
        for i in [18, 20, 23, 31, 44] {
            b[i] = None;
        }
        resolve(&mut b);
        assert_eq!(b, known(good));
        // Two in one group stay undecided.
        let mut b = known(good);
        b[23] = None;
        b[24] = None;
        resolve(&mut b);
        assert_eq!(decode(&b), Err(FrameError::Undecided));
    }

    #[test]
    fn every_check_rejects_a_broken_frame() {
        let good = encode(&minute(2026, 11, 22, 3, 16, 1));
        let broken = |i: usize| {
            let mut b = known(good);
            b[i] = Some(!good[i]);
            decode(&b)
        };
        assert_eq!(broken(0), Err(FrameError::StartBits));
        assert_eq!(broken(20), Err(FrameError::StartBits));
        assert_eq!(broken(17), Err(FrameError::ZoneBits));
        for i in [21, 28, 30, 35, 40, 50, 58] {
            assert_eq!(broken(i), Err(FrameError::Parity), "bit {i}");
        }
        // Two flips in one parity group pass parity but not the digit or calendar checks.
        let mut b = known(good);
        b[24] = Some(true); // minute units 6 + 8 = 14
        b[22] = Some(!good[22]);
        assert!(decode(&b).is_err());
        // The weekday must match the date.
        let mut b = known(good);
        b[42] = Some(!good[42]);
        b[43] = Some(!good[43]);
        assert_eq!(decode(&b), Err(FrameError::Calendar));
        let mut b = known(good);
        b[30] = None;
        assert_eq!(decode(&b), Err(FrameError::Undecided));
        // Bits before A1 may be unknown (reception began mid-minute).
        let mut b = known(good);
        b[..16].fill(None);
        assert!(decode(&b).is_ok());
    }
}
