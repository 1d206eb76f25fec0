//! What a serial byte stream carries: checksummed NMEA sentences and UBX frames, which sentence
//! types, whether the receiver reports a fix, and which u-blox module it is when it says so.
//! Pure: `pitime detect` feeds it what it reads at each speed.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::refclock::gps::decoder::{self, DecoderOptions, NmeaDecoder};
use crate::refclock::gps::nmea::{Frame, LineReader};
use crate::refclock::gps::ubx::FrameReader;

/// Good sentences needed before a stream counts as NMEA: at a wrong speed, noise passes a
/// one-byte checksum now and then, but not twice with a well-formed address.
const MIN_SENTENCES: u64 = 2;

/// What was seen, for the report.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StreamSummary {
    pub bytes: u64,
    /// NMEA sentences with a good checksum.
    pub sentences: u64,
    /// Lines that looked like sentences but failed their checksum or syntax.
    pub bad_lines: u64,
    /// Talker and type of each kind of sentence seen: `GPRMC`, `GNGGA`, `PUBX`.
    pub sentence_types: BTreeSet<String>,
    pub ubx_frames: u64,
    pub ubx_bad: u64,
    pub ubx_messages: BTreeSet<String>,
    /// Whether the receiver reports a fix (its latest word on it); `None` when it never said.
    pub fix: Option<bool>,
    /// The module (u-blox MON-VER, or a `MOD` text sentence) and its firmware.
    pub module: Option<String>,
    pub firmware: Option<String>,
}

impl StreamSummary {
    /// Whether the stream is a GNSS receiver speaking NMEA or UBX at this speed.
    pub fn speaks(&self) -> bool {
        self.sentences >= MIN_SENTENCES || self.ubx_frames > 0
    }
}

pub struct StreamSurvey {
    lines: LineReader<()>,
    nmea: NmeaDecoder,
    ubx: FrameReader,
    ubx_fix: Option<bool>,
    summary: StreamSummary,
}

impl Default for StreamSurvey {
    fn default() -> Self {
        StreamSurvey {
            lines: LineReader::default(),
            // Only its fix status is read: the time policy does not matter here.
            nmea: NmeaDecoder::new(DecoderOptions {
                not_before: decoder::build_date(),
                require_fix: true,
            }),
            ubx: FrameReader::default(),
            ubx_fix: None,
            summary: StreamSummary::default(),
        }
    }
}

impl StreamSurvey {
    pub fn push(&mut self, bytes: &[u8]) {
        let s = &mut self.summary;
        s.bytes += bytes.len() as u64;
        let nmea = &mut self.nmea;
        self.lines.push(bytes, (), |line, ()| {
            match Frame::parse(line) {
                Ok(f) => {
                    s.sentences += 1;
                    s.sentence_types.insert(format!("{}{}", f.talker, f.kind));
                    // u-blox receivers name themselves at start-up: `$GPTXT,01,01,02,MOD LEA-5H-0`.
                    if let Some(m) = (f.kind == "TXT")
                        .then(|| f.field(3))
                        .and_then(|t| t.strip_prefix("MOD "))
                    {
                        s.module = Some(m.trim().to_string());
                    }
                }
                Err(_) => s.bad_lines += 1,
            }
            nmea.line(line);
        });
        let ubx_fix = &mut self.ubx_fix;
        self.ubx.push(bytes, |frame| {
            s.ubx_frames += 1;
            s.ubx_messages.insert(frame.name());
            if let Some(fix) = frame.fix() {
                *ubx_fix = Some(fix);
            }
            if let Some((module, firmware)) = frame.version() {
                s.module = Some(module);
                s.firmware = Some(firmware);
            }
        });
        s.ubx_bad = self.ubx.bad;
        s.fix = self.nmea.has_fix().or(self.ubx_fix);
    }

    pub fn summary(&self) -> &StreamSummary {
        &self.summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GpsSimConfig;
    use crate::refclock::gps::ubx;
    use crate::sim::gps::GpsSimulator;
    use crate::sim::rng::Rng;

    fn survey(chunks: impl IntoIterator<Item = Vec<u8>>) -> StreamSummary {
        let mut s = StreamSurvey::default();
        for c in chunks {
            s.push(&c);
        }
        s.summary().clone()
    }

    /// `seconds` of the simulated receiver's output, a write at a time.
    fn simulated(seconds: i64, fix_loss: Option<(f64, f64)>, garbage: f64) -> Vec<Vec<u8>> {
        let mut sim = GpsSimulator::new(GpsSimConfig {
            sentence_delay: 0.1,
            sentence_jitter: 0.0,
            pps_jitter: 0.0,
            garbage,
            seed: 5,
            fix_loss,
            jump_seconds: 0.0,
            ..GpsSimConfig::default()
        });
        (0..seconds)
            .flat_map(|i| sim.second(1_784_451_000 + i, i as f64).sentences)
            .map(|(_, bytes)| bytes)
            .collect()
    }

    #[test]
    fn the_simulated_receiver_speaks_nmea_with_a_fix() {
        let s = survey(simulated(3, None, 0.5));
        assert!(s.speaks(), "{s:?}");
        let types: Vec<&str> = s.sentence_types.iter().map(String::as_str).collect();
        for t in ["GPRMC", "GPGGA", "GPGSA", "GLGSV", "GPZDA", "GPTXT"] {
            assert!(types.contains(&t), "{types:?}");
        }
        assert_eq!(
            (s.fix, s.ubx_frames, s.module.as_deref()),
            (Some(true), 0, None)
        );
    }

    #[test]
    fn a_receiver_without_a_fix_says_so() {
        let s = survey(simulated(2, Some((0.0, 10.0)), 0.0));
        assert!(s.speaks());
        assert_eq!(s.fix, Some(false));
    }

    #[test]
    fn noise_at_a_wrong_speed_is_not_nmea() {
        let mut rng = Rng::new(9);
        // What a 9600-baud line read at 115200 looks like: bytes, some `$` and line ends.
        let noise: Vec<Vec<u8>> = (0..50)
            .map(|_| {
                (0..200)
                    .map(|_| match rng.next_u64() % 40 {
                        0 => b'$',
                        1 => b'\n',
                        2 => b'*',
                        _ => rng.next_u64() as u8,
                    })
                    .collect()
            })
            .collect();
        let s = survey(noise);
        assert!(!s.speaks(), "{s:?}");
        assert_eq!(s.fix, None);
    }

    #[test]
    fn a_u_blox_in_ubx_names_its_module_and_fix() {
        let mut pvt = vec![0u8; 92];
        pvt[21] = 1;
        let s = survey([
            ubx::frame(0x01, 0x07, &pvt),
            ubx::frame(0x0a, 0x04, &ubx::mon_ver(&["PROTVER=18.00", "MOD=NEO-M8T"])),
        ]);
        assert!(s.speaks());
        assert_eq!(s.sentences, 0);
        assert_eq!(
            s.ubx_messages.iter().collect::<Vec<_>>(),
            ["MON-VER", "NAV-PVT"]
        );
        assert_eq!((s.fix, s.module.as_deref()), (Some(true), Some("NEO-M8T")));
    }

    #[test]
    fn real_captures_are_recognized() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/nmea/gpsd/");
        let read = |name: &str| {
            let file = std::fs::read(format!("{dir}{name}")).unwrap();
            survey([crate::replay::capture_bytes(&file)])
        };
        let lea = read("ublox-lea-5h.log");
        assert!(lea.speaks());
        assert_eq!(lea.module.as_deref(), Some("LEA-5H-0"));
        assert!(lea.sentence_types.contains("GPRMC"));
        let m9n = read("ublox-neo-m9n-nmea.log");
        assert!(
            m9n.speaks() && m9n.sentence_types.contains("GNRMC"),
            "{m9n:?}"
        );
    }
}
