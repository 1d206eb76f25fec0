//! What a GNSS receiver says about itself, for the status page and metrics.

use super::nmea::Constellation;
use crate::time::Leap;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FixType {
    #[default]
    None,
    /// A fix, dimension not (yet) reported by GSA.
    Unknown,
    TwoD,
    ThreeD,
}

impl FixType {
    pub fn name(self) -> &'static str {
        match self {
            FixType::None => "none",
            FixType::Unknown => "fix",
            FixType::TwoD => "2D",
            FixType::ThreeD => "3D",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Antenna {
    #[default]
    Unknown,
    Ok,
    Open,
    Short,
}

impl Antenna {
    pub fn name(self) -> &'static str {
        match self {
            Antenna::Unknown => "unknown",
            Antenna::Ok => "ok",
            Antenna::Open => "open",
            Antenna::Short => "short",
        }
    }

    pub fn is_fault(self) -> bool {
        matches!(self, Antenna::Open | Antenna::Short)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Satellite {
    pub constellation: Constellation,
    pub prn: u16,
    /// Degrees above the horizon.
    pub elevation: Option<i16>,
    /// Degrees from true north.
    pub azimuth: Option<u16>,
    /// Carrier-to-noise density, dB-Hz.
    pub snr: Option<u8>,
    pub used: bool,
}

/// Counts of what arrived on the serial line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Sentences with a good checksum from a GNSS talker, and good UBX frames.
    pub sentences: u64,
    /// Lines that failed framing (checksum, non-ASCII bytes, bad address), and UBX frames
    /// whose checksum failed.
    pub bad_frames: u64,
    /// Time sentences (and UBX time messages) whose time was not accepted.
    pub rejected: u64,
    /// Good sentences of types or talkers pitime does not use.
    pub ignored: u64,
    /// Sentences with unreadable fields, and UBX payloads too short for their message.
    pub malformed: u64,
}

/// The receiver's spoofing detection (u-blox NAV-STATUS): while it indicates spoofing, the
/// source is only watched, never followed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Spoofing {
    /// Not reported, or detection off.
    #[default]
    Unknown,
    None,
    Indicated,
    /// Several indications.
    Multiple,
}

impl Spoofing {
    pub fn name(self) -> &'static str {
        match self {
            Spoofing::Unknown => "unknown",
            Spoofing::None => "none",
            Spoofing::Indicated => "indicated",
            Spoofing::Multiple => "multiple",
        }
    }

    pub fn is_alarm(self) -> bool {
        matches!(self, Spoofing::Indicated | Spoofing::Multiple)
    }
}

/// The receiver's own verdict on interference (u-blox MON-RF jammingState).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum JammingState {
    #[default]
    Unknown,
    Ok,
    Warning,
    Critical,
}

/// Jamming above this CW indicator (0 none .. 255 strong) is an alarm even when the receiver's
/// own state says nothing (its jamming monitor may be off).
pub const JAM_INDICATOR_ALARM: u8 = 200;

/// What MON-RF says of the worst RF band.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Jamming {
    pub state: JammingState,
    /// CW jamming indicator: 0 none, 255 strong.
    pub indicator: u8,
    /// Noise level the receiver measures, per millisecond (its own scale).
    pub noise: u16,
}

impl JammingState {
    pub fn name(self) -> &'static str {
        match self {
            JammingState::Unknown => "unknown",
            JammingState::Ok => "ok",
            JammingState::Warning => "warning",
            JammingState::Critical => "critical",
        }
    }
}

impl Jamming {
    pub fn is_alarm(&self) -> bool {
        self.state >= JammingState::Warning || self.indicator >= JAM_INDICATOR_ALARM
    }
}

/// A leap second the receiver announces (u-blox NAV-TIMELS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeapSecond {
    pub leap: Leap,
    /// The UTC day (days since 1970-01-01) at whose end it comes.
    pub day: i64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReceiverStatus {
    pub fix: FixType,
    pub satellites_used: Option<u32>,
    pub satellites: Vec<Satellite>,
    /// (system, number) of the satellites the last GSA sentences said are used.
    pub used_prns: Vec<(Constellation, u16)>,
    /// Latitude and longitude in degrees, altitude in metres.
    pub position: Option<(f64, f64, Option<f64>)>,
    pub antenna: Antenna,
    pub counters: Counters,
    /// The next leap second, while the receiver announces one.
    pub leap_second: Option<LeapSecond>,
    /// GPS - UTC, seconds, as the receiver last said (NAV-TIMEGPS, NAV-TIMELS).
    pub gps_utc_offset: Option<i8>,
    pub spoofing: Spoofing,
    /// From MON-RF, once the receiver sends it.
    pub jamming: Option<Jamming>,
}

impl ReceiverStatus {
    pub fn mark_used(&mut self) {
        for s in &mut self.satellites {
            s.used = self.used_prns.contains(&(s.constellation, s.prn));
        }
    }

    /// (system, in view, used) for each system with a satellite in view.
    pub fn per_constellation(&self) -> Vec<(Constellation, usize, usize)> {
        Constellation::ALL
            .iter()
            .map(|&c| {
                let sats = self.satellites.iter().filter(|s| s.constellation == c);
                let used = sats.clone().filter(|s| s.used).count();
                (c, sats.count(), used)
            })
            .filter(|&(_, seen, _)| seen > 0)
            .collect()
    }
}
