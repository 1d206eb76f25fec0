//! What one longwave time station's signal and time code are, for the shared decoder: the
//! shapes of its seconds, where in the minute each kind of second belongs, how its frames name
//! the time and the date, and how a minute that may hold a leap second ends.

use super::evidence::{DateTable, Frame};
use super::level::{Level, Observation};
use crate::time::UtcTime;

/// The stations there are, as the configuration names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StationKind {
    #[default]
    Dcf77,
    Msf,
    Wwvb,
}

impl StationKind {
    pub const ALL: [StationKind; 3] = [StationKind::Dcf77, StationKind::Msf, StationKind::Wwvb];

    /// As `kind` and the commands spell it.
    pub fn name(self) -> &'static str {
        match self {
            StationKind::Dcf77 => "dcf77",
            StationKind::Msf => "msf",
            StationKind::Wwvb => "wwvb",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// As logs and the status page show it.
    pub fn label(self) -> &'static str {
        match self {
            StationKind::Dcf77 => "DCF77",
            StationKind::Msf => "MSF",
            StationKind::Wwvb => "WWVB",
        }
    }

    /// The reference identifier of its samples (RFC 5905 section 7.3).
    pub fn refid(self) -> [u8; 4] {
        match self {
            StationKind::Dcf77 => *b"DCF\0",
            StationKind::Msf => *b"MSF\0",
            StationKind::Wwvb => *b"WWVB",
        }
    }
}

/// The status and the metrics name a station as `kind` does.
impl serde::Serialize for StationKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// What a frame says about the minute that starts at its end (DCF77 and MSF send the next
/// minute's time; WWVB's frame names its own minute, and its station says so).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Minute {
    /// The start of that minute in UTC.
    pub utc: UtcTime,
    /// Hours ahead of UTC of the civil time sent (DCF77: 1 or 2; MSF: 0 or 1; WWVB: 0).
    pub offset_hours: i64,
    /// A change of summer time announced (DCF77 A1, MSF 53B) or happening today (WWVB).
    pub dst_announced: bool,
    pub leap_announced: bool,
}

/// How the minute in progress ends, once its second 59 (and perhaps one or two after) is seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The next second must tell.
    Wait,
    /// At 59, as always; `unsure` when second 59 did not show what it should.
    Here { unsure: bool },
    /// At 59: the seconds seen after it are the next minute's first.
    Next,
    /// At 60, a leap second: the seconds seen after it are the next minute's first.
    Leap,
    /// The minute is not where the count puts it.
    Lost,
}

/// How a plain decoder would have done on one frame, for the status page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    Good,
    Parity,
    Bad,
}

/// A longwave time station. Frame positions count from the minute's second 0; a second's
/// soft bits go to `Frame[position]` and (MSF's B bits) `Frame[60 + position]`.
pub trait Station: Clone + std::fmt::Debug + Default + Send + 'static {
    const KIND: StationKind;
    /// The 0-bit and 1-bit pulse widths of a clean signal, seconds, and the longest pulse.
    const WIDTHS: (f64, f64);
    const MAX_WIDTH: f64;
    /// Bins from the marker that every second fills, and that every second leaves quiet.
    const PULSE: (usize, usize);
    const QUIET: (usize, usize);
    /// From this frame position on, the bits of the minute in progress may tell its time.
    const PREVIEW_FROM: i64;
    /// From this frame position on, they may tell its date too: once the date's parities are
    /// in (a frame cut short before them lacks the check that keeps a misread date out).
    const DATE_PREVIEW_FROM: i64;
    /// In a minute with a leap second, bits from this position on come one second late.
    const LEAP_AT: usize;
    /// Frames kept for the date until the time of day is known (at most 8): WWVB, whose
    /// frames have no parity, takes longer to know the time, and its date then counts them.
    const BACKLOG: usize;

    /// Reads the second whose marker is bin `marker` (its first `READ_BINS` are complete).
    fn observe(level: &Level, marker: i64) -> Observation;
    /// How well `seen` fits frame position `position`: positive for a fit, negative against,
    /// 0 when it tells nothing. The minute mark is the alignment all seconds fit best.
    fn fit(position: usize, seen: Observation) -> f32;
    /// How the minute ends: `tail` holds second 59 and what followed it so far; `leap_minute`
    /// when this minute may hold a leap second.
    fn end(tail: &[Observation], leap_minute: bool) -> End;
    /// Second 0 shows what only the minute's last second should: after an unsure end, the
    /// minute mark has moved.
    fn misplaced_start(seen: Observation) -> bool;
    /// Moves the time-of-day scores on a minute (`score[u]` for UTC minute of day `u` of the
    /// minute starting at the frame's end): each times `decay`, plus this frame's score.
    /// Returns the most a candidate could gain, and whether the frame carried a time bit.
    fn add_time_of_day(frame: &Frame, score: &mut [f32], decay: f32) -> (f32, bool);
    /// The date fields and their patterns for each day of 2000-2099.
    fn date_table() -> &'static DateTable;
    /// Days between the UTC date of the minute starting at the frame's end (UTC minute of day
    /// `of_day`) and the date its frame sends.
    fn date_carry(frame: &Frame, of_day: usize) -> i64;
    /// The frame's leap-second announcement, softly (0 where the station has none).
    fn leap_bit(frame: &Frame) -> f32;
    /// Whether the minute starting at `utc` may hold a leap second: `announced` is the soft
    /// announcement, summed over recent frames.
    fn leap_minute(announced: f32, utc: UtcTime) -> bool;
    /// What a plain decoder would make of the frame.
    fn check(frame: &Frame) -> Check;
    /// The minute starting at `utc`, its details from its frame.
    fn minute(frame: &Frame, utc: UtcTime) -> Minute;
}

/// Whether UTC minute `utc` is the last of a day (DCF77 and WWVB announce leap seconds for
/// it) or of a month (where leap seconds go).
pub fn last_minute_of_day(utc: UtcTime) -> bool {
    utc.second / 60 == 1439
}

pub fn last_minute_of_month(utc: UtcTime) -> bool {
    last_minute_of_day(utc) && crate::time::civil_from_days(utc.day + 1).2 == 1
}
