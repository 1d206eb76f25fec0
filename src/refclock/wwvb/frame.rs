//! The WWVB minute frame (NIST Special Publication 250-67, the amplitude-modulated legacy
//! code): the carrier drops at the start of every second and comes back after 0.2 s (a 0),
//! 0.5 s (a 1) or 0.8 s (a marker). Markers at seconds 0, 9, 19, 29, 39, 49 and 59, so two
//! in a row begin the minute. The frame names the UTC minute that *begins* at its first
//! marker: 1-8 minute, 12-18 hour, 22-33 day of year, 45-53 year (two digits), BCD most
//! significant bit first with unused bits 0; 36-43 DUT1; 55 leap year; 56 a leap second at
//! the end of this month; 57 DST in effect at 24:00 UTC today, 58 at 00:00 UTC today. A leap
//! second is a third marker in a row, second 60.

use crate::refclock::longwave::bcd::{bcd_bits, bcd_value};
use crate::refclock::longwave::station::Minute;
use crate::time::{civil_from_days, days_from_civil, UtcTime};

pub const MARKERS: [usize; 7] = [0, 9, 19, 29, 39, 49, 59];
/// The positions of each number's bits and their weights.
pub const MINUTE: ([usize; 7], [u32; 7]) = ([1, 2, 3, 5, 6, 7, 8], [40, 20, 10, 8, 4, 2, 1]);
pub const HOUR: ([usize; 6], [u32; 6]) = ([12, 13, 15, 16, 17, 18], [20, 10, 8, 4, 2, 1]);
pub const DAY: ([usize; 10], [u32; 10]) = (
    [22, 23, 25, 26, 27, 28, 30, 31, 32, 33],
    [200, 100, 80, 40, 20, 10, 8, 4, 2, 1],
);
pub const YEAR: ([usize; 8], [u32; 8]) = (
    [45, 46, 47, 48, 50, 51, 52, 53],
    [80, 40, 20, 10, 8, 4, 2, 1],
);
/// Bits always 0.
pub const ZEROS: [usize; 11] = [4, 10, 11, 14, 20, 21, 24, 34, 35, 44, 54];
pub const LEAP_YEAR: usize = 55;
pub const LEAP_WARNING: usize = 56;
/// DST in effect at the end (24:00 UTC) and at the start (00:00 UTC) of the UTC day.
pub const DST_END_OF_DAY: usize = 57;
pub const DST_START_OF_DAY: usize = 58;

/// A second of the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Symbol {
    Zero,
    One,
    Marker,
}

/// What the frame of a minute says besides its time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flags {
    /// DST at 00:00 and at 24:00 UTC of the minute's day.
    pub dst: [bool; 2],
    pub leap_warning: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    Undecided,
    Markers,
    Zeros,
    Digits,
    Calendar,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FrameError::Undecided => "undecided bits",
            FrameError::Markers => "a marker missing or out of place",
            FrameError::Zeros => "an unused bit set",
            FrameError::Digits => "BCD digit out of range",
            FrameError::Calendar => "no such date or time",
        })
    }
}

/// Reads a number from its positions.
fn read<const N: usize>(s: &[Symbol; 60], (at, weights): ([usize; N], [u32; N])) -> Option<u32> {
    let bits = at.iter().enumerate();
    let pattern = bits.fold(0, |p, (i, &k)| p | u32::from(s[k] == Symbol::One) << i);
    bcd_value(pattern, &weights)
}

/// Decodes a frame (`None` where a second was not decided): the minute it begins, and flags.
pub fn decode(s: &[Option<Symbol>; 60]) -> Result<(Minute, Flags), FrameError> {
    if s[..=58].iter().any(|x| x.is_none()) {
        return Err(FrameError::Undecided);
    }
    let s: [Symbol; 60] = std::array::from_fn(|i| s[i].unwrap_or(Symbol::Marker));
    let marker = |i: usize| MARKERS.contains(&i);
    if (0..60).any(|i| (s[i] == Symbol::Marker) != marker(i)) {
        return Err(FrameError::Markers);
    }
    if ZEROS.iter().any(|&i| s[i] != Symbol::Zero) {
        return Err(FrameError::Zeros);
    }
    let digits = |x: Option<u32>| x.ok_or(FrameError::Digits);
    let (minute, hour) = (digits(read(&s, MINUTE))?, digits(read(&s, HOUR))?);
    let (day, year) = (digits(read(&s, DAY))?, digits(read(&s, YEAR))?);
    let year = 2000 + i64::from(year);
    let leap_year = year % 4 == 0;
    let year_days = if leap_year { 366 } else { 365 };
    if minute > 59
        || hour > 23
        || !(1..=year_days).contains(&day)
        || (s[LEAP_YEAR] == Symbol::One) != leap_year
    {
        return Err(FrameError::Calendar);
    }
    let days = days_from_civil(year, 1, 1) + i64::from(day) - 1;
    let one = |i: usize| s[i] == Symbol::One;
    let flags = Flags {
        dst: [one(DST_START_OF_DAY), one(DST_END_OF_DAY)],
        leap_warning: one(LEAP_WARNING),
    };
    let minute = Minute {
        utc: UtcTime {
            day: days,
            second: hour * 3600 + minute * 60,
            nanos: 0,
        },
        offset_hours: 0,
        dst_announced: flags.dst[0] != flags.dst[1],
        leap_announced: flags.leap_warning,
    };
    Ok((minute, flags))
}

/// The frame that begins at `utc` (a minute's start).
pub fn encode(utc: UtcTime, flags: Flags) -> [Symbol; 60] {
    let mut s = [Symbol::Zero; 60];
    for m in MARKERS {
        s[m] = Symbol::Marker;
    }
    let (year, _, _) = civil_from_days(utc.day);
    let day_of_year = (utc.day - days_from_civil(year, 1, 1) + 1) as u32;
    let mut put = |at: &[usize], weights: &[u32], value: u32| {
        let bits = bcd_bits(value, weights);
        for (i, &k) in at.iter().enumerate() {
            if bits >> i & 1 == 1 {
                s[k] = Symbol::One;
            }
        }
    };
    put(&MINUTE.0, &MINUTE.1, utc.second / 60 % 60);
    put(&HOUR.0, &HOUR.1, utc.second / 3600);
    put(&DAY.0, &DAY.1, day_of_year);
    put(&YEAR.0, &YEAR.1, (year % 100) as u32);
    let mut set = |i: usize, on: bool| {
        if on {
            s[i] = Symbol::One;
        }
    };
    set(LEAP_YEAR, year % 4 == 0);
    set(LEAP_WARNING, flags.leap_warning);
    set(DST_START_OF_DAY, flags.dst[0]);
    set(DST_END_OF_DAY, flags.dst[1]);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: Flags = Flags {
        dst: [false, false],
        leap_warning: false,
    };

    fn known(s: [Symbol; 60]) -> [Option<Symbol>; 60] {
        s.map(Some)
    }

    #[test]
    fn round_trips_across_the_calendar() {
        for (utc, flags) in [
            (
                UtcTime::from_civil((2026, 11, 22), (3, 16, 0), 0).unwrap(),
                NONE,
            ),
            (
                UtcTime::from_civil((2016, 12, 31), (23, 59, 0), 0).unwrap(),
                Flags {
                    leap_warning: true,
                    ..NONE
                },
            ),
            (
                UtcTime::from_civil((2027, 3, 14), (7, 0, 0), 0).unwrap(),
                Flags {
                    dst: [false, true],
                    leap_warning: false,
                },
            ),
        ] {
            let (minute, read) = decode(&known(encode(utc, flags))).unwrap();
            assert_eq!((minute.utc, read), (utc, flags));
        }
    }

    #[test]
    fn nists_example_frame() {
        // NIST's example: day 66 of 2008, 07:30 UTC, a leap year.
        let utc = UtcTime::from_civil((2008, 3, 6), (7, 30, 0), 0).unwrap();
        let s = encode(utc, NONE);
        let text: String = s[..20]
            .iter()
            .map(|x| match x {
                Symbol::Zero => '0',
                Symbol::One => '1',
                Symbol::Marker => 'M',
            })
            .collect();
        assert_eq!(text, "M01100000M000000111M");
        assert_eq!(s[LEAP_YEAR], Symbol::One);
    }

    #[test]
    fn every_check_rejects_a_broken_frame() {
        let good = encode(
            UtcTime::from_civil((2026, 11, 22), (3, 16, 0), 0).unwrap(),
            NONE,
        );
        let with = |i: usize, x: Symbol| {
            let mut s = known(good);
            s[i] = Some(x);
            decode(&s).map(|m| m.0)
        };
        assert_eq!(with(9, Symbol::Zero), Err(FrameError::Markers));
        assert_eq!(with(10, Symbol::Marker), Err(FrameError::Markers));
        assert_eq!(with(4, Symbol::One), Err(FrameError::Zeros));
        assert_eq!(
            with(5, Symbol::One),
            Err(FrameError::Digits),
            "minute units 8 + 6"
        );
        assert_eq!(
            with(26, Symbol::One),
            Err(FrameError::Calendar),
            "day 366 of 2026"
        );
        assert_eq!(with(LEAP_YEAR, Symbol::One), Err(FrameError::Calendar));
        assert_eq!(with(33, Symbol::One), Ok(good_minute()));
        let mut s = known(good);
        s[40] = None;
        assert_eq!(decode(&s).map(|m| m.0), Err(FrameError::Undecided));
    }

    fn good_minute() -> Minute {
        // Day 327 is 2026-11-23: a valid day, not the one sent.
        Minute {
            utc: UtcTime::from_civil((2026, 11, 23), (3, 16, 0), 0).unwrap(),
            offset_hours: 0,
            dst_announced: false,
            leap_announced: false,
        }
    }
}
