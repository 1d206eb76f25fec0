//! u-blox configuration messages, as the u-blox 8 and 9 interface descriptions lay them out,
//! and the acknowledgements that answer them. Generation 8 and before take one CFG message per
//! subject (CFG-PRT, CFG-TP5, ...); generation 9 and later (protocol 27 and up) take
//! CFG-VALSET with key ids. Everything is set in RAM only: pitime applies it again after every
//! reconnect, and a receiver that lost power comes back as its owner left it.

use crate::config::{Gnss, Timepulse, TimingMode};
use crate::refclock::gps::ubx::{frame, UbxFrame};

const CFG: u8 = 0x06;
const ACK: u8 = 0x05;
/// NMEA standard messages' class in CFG-MSG.
pub const NMEA: u8 = 0xf0;

/// UBX-MON-VER poll: the receiver answers with its software, hardware and extensions.
pub fn poll_mon_ver() -> Vec<u8> {
    frame(0x0a, 0x04, &[])
}

/// What a receiver said of a CFG message, with the class and id it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Ack,
    Nak,
}

/// An UBX-ACK-ACK or ACK-NAK: the answer and the (class, id) it acknowledges.
pub fn ack(f: &UbxFrame) -> Option<(Answer, u8, u8)> {
    let answer = match (f.class, f.id) {
        (ACK, 0x01) => Answer::Ack,
        (ACK, 0x00) => Answer::Nak,
        _ => return None,
    };
    match f.payload[..] {
        [class, id] => Some((answer, class, id)),
        _ => None,
    }
}

/// The receiver that answered MON-VER.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UbloxVersion {
    /// `NEO-M8T`, from the MOD extension; else `hardware 00080000`.
    pub model: String,
    /// The FWVER extension (`TIM 1.10`), else the software version.
    pub firmware: String,
    /// PROTVER, as (major, minor).
    pub protocol: Option<(u8, u8)>,
}

impl UbloxVersion {
    pub fn from_mon_ver(f: &UbxFrame) -> Option<UbloxVersion> {
        let (model, software) = f.version()?;
        let extensions: Vec<String> = f.payload[40..]
            .chunks(30)
            .map(|e| {
                let text = e.split(|&c| c == 0).next().unwrap_or_default();
                String::from_utf8_lossy(text).trim().to_string()
            })
            .collect();
        // "PROTVER=18.00" on u-blox 8 and later, "PROTVER 14.00" before.
        let find = |key: &str| {
            extensions.iter().find_map(|e| {
                e.strip_prefix(key)
                    .and_then(|v| v.strip_prefix(['=', ' ']))
                    .map(str::trim)
            })
        };
        let protocol = find("PROTVER").and_then(|v| {
            let (major, minor) = v.split_once('.')?;
            Some((major.parse().ok()?, minor.parse().ok()?))
        });
        Some(UbloxVersion {
            model,
            firmware: find("FWVER").map_or(software, str::to_string),
            protocol,
        })
    }

    /// Generation 9 and later: configured with CFG-VALSET keys, not CFG messages. u-blox 8's
    /// protocols end at 23.01; the F9 platform's begin at 27.
    pub fn uses_keys(&self) -> bool {
        self.protocol.is_some_and(|(major, _)| major >= 24)
    }

    /// A timing receiver (NEO-M8T, LEA-M8T, ZED-F9T): it has a timing mode.
    pub fn is_timing(&self) -> bool {
        self.model.ends_with('T') || self.firmware.starts_with("TIM")
    }
}

/// CFG-PRT for UART1: 8N1 at `baud`, UBX and NMEA in and out.
pub fn cfg_prt(baud: u32) -> Vec<u8> {
    let mut p = vec![1, 0, 0, 0];
    p.extend(0x0000_08d0u32.to_le_bytes());
    p.extend(baud.to_le_bytes());
    p.extend(3u16.to_le_bytes());
    p.extend(3u16.to_le_bytes());
    p.extend([0; 4]);
    frame(CFG, 0x00, &p)
}

/// CFG-RATE: a measurement every 1/`hz` seconds, a solution each, aligned to GPS time.
pub fn cfg_rate(hz: u32) -> Vec<u8> {
    let ms = (1000 / hz.max(1)) as u16;
    let mut p = ms.to_le_bytes().to_vec();
    p.extend(1u16.to_le_bytes());
    p.extend(1u16.to_le_bytes());
    frame(CFG, 0x08, &p)
}

/// The NMEA sentences whose output rate pitime sets, with their CFG-MSG ids and the
/// CFG-MSGOUT-NMEA_ID_*_UART1 keys.
pub const NMEA_MESSAGES: [(&str, u8, u32); 9] = [
    ("GGA", 0x00, 0x2091_00bb),
    ("GLL", 0x01, 0x2091_00ca),
    ("GSA", 0x02, 0x2091_00c0),
    ("GSV", 0x03, 0x2091_00c5),
    ("RMC", 0x04, 0x2091_00ac),
    ("VTG", 0x05, 0x2091_00b1),
    ("GRS", 0x06, 0x2091_00cf),
    ("GST", 0x07, 0x2091_00d4),
    ("ZDA", 0x08, 0x2091_00d9),
];

/// CFG-MSG, short form: message (`class`, `id`) once per `rate` solutions on this port (0: off).
pub fn cfg_msg(class: u8, id: u8, rate: u8) -> Vec<u8> {
    frame(CFG, 0x01, &[class, id, rate])
}

/// CFG-GNSS (u-blox 8): each system on or off on its L1 signal, with u-blox's default
/// channel counts. The receiver refuses combinations it cannot track at once.
pub fn cfg_gnss(on: &[Gnss]) -> Vec<u8> {
    // (system, gnssId, reserved and maximum channels)
    const BLOCKS: [(Gnss, u8, u8, u8); 6] = [
        (Gnss::Gps, 0, 8, 16),
        (Gnss::Sbas, 1, 1, 3),
        (Gnss::Galileo, 2, 4, 8),
        (Gnss::Beidou, 3, 8, 16),
        (Gnss::Qzss, 5, 0, 3),
        (Gnss::Glonass, 6, 8, 14),
    ];
    let mut p = vec![0, 0, 0xff, BLOCKS.len() as u8];
    for (g, id, reserved, max) in BLOCKS {
        p.extend([id, reserved, max, 0]);
        p.extend((0x0001_0000u32 | u32::from(on.contains(&g))).to_le_bytes());
    }
    frame(CFG, 0x3e, &p)
}

/// How a survey-in is going: from TIM-SVIN (u-blox 8) or NAV-SVIN (9 and later).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Survey {
    pub active: bool,
    pub valid: bool,
    pub seconds: u32,
    /// The mean position's accuracy, metres.
    pub accuracy: f64,
    pub observations: u32,
}

impl Survey {
    pub fn read(f: &UbxFrame) -> Option<Survey> {
        let p = &f.payload;
        let u32_at = |i: usize| Some(u32::from_le_bytes(p.get(i..i + 4)?.try_into().ok()?));
        match (f.class, f.id, p.len()) {
            (0x0d, 0x04, 28) => Some(Survey {
                seconds: u32_at(0)?,
                // The variance of the mean, mm².
                accuracy: f64::from(u32_at(16)?).sqrt() / 1e3,
                observations: u32_at(20)?,
                valid: p[24] == 1,
                active: p[25] == 1,
            }),
            (0x01, 0x3b, 40) => Some(Survey {
                seconds: u32_at(8)?,
                accuracy: f64::from(u32_at(28)?) / 1e4,
                observations: u32_at(32)?,
                valid: p[36] == 1,
                active: p[37] == 1,
            }),
            _ => None,
        }
    }
}

/// CFG-NAV5 changing only the dynamic model, to stationary (2).
pub fn cfg_nav5_stationary() -> Vec<u8> {
    let mut p = vec![0u8; 36];
    p[0] = 0x01;
    p[2] = 2;
    frame(CFG, 0x24, &p)
}

/// Microseconds and nanoseconds, as the timepulse fields take them.
fn micros(seconds: f64) -> u32 {
    (seconds * 1e6).round().clamp(0.0, 1e6) as u32
}

fn nanos(seconds: f64) -> i64 {
    (seconds * 1e9).round() as i64
}

/// CFG-TP5 (version 1) for TIMEPULSE: period 1 s aligned to the UTC second, rising edge on
/// time, the configured length once locked to GNSS time, and before that the same pulse or,
/// with `fix_only`, none (length 0).
pub fn cfg_tp5(tp: &Timepulse) -> Vec<u8> {
    let len = micros(tp.length);
    let mut p = vec![0, 1, 0, 0];
    p.extend((nanos(tp.cable_delay) as i16).to_le_bytes());
    p.extend(0i16.to_le_bytes());
    p.extend(1_000_000u32.to_le_bytes());
    p.extend(1_000_000u32.to_le_bytes());
    p.extend((if tp.fix_only { 0 } else { len }).to_le_bytes());
    p.extend(len.to_le_bytes());
    p.extend((nanos(tp.user_delay) as i32).to_le_bytes());
    // active, lockGnssFreq, lockedOtherSet, isLength, alignToTow, polarity rising; UTC grid.
    p.extend(0x77u32.to_le_bytes());
    frame(CFG, 0x31, &p)
}

/// CFG-TMODE2 (u-blox 8 timing receivers): disabled, survey-in, or a fixed position given as
/// latitude, longitude and height.
pub fn cfg_tmode2(mode: &TimingMode) -> Vec<u8> {
    let mut p = vec![0u8; 28];
    match *mode {
        TimingMode::Unchanged | TimingMode::Disabled => {}
        TimingMode::SurveyIn { seconds, accuracy } => {
            p[0] = 1;
            p[20..24].copy_from_slice(&seconds.to_le_bytes());
            p[24..28].copy_from_slice(&((accuracy * 1e3).round() as u32).to_le_bytes());
        }
        TimingMode::Fixed { position, accuracy } => {
            p[0] = 2;
            p[2] = 1; // lla
            let [lat, lon, height] = position;
            p[4..8].copy_from_slice(&((lat * 1e7).round() as i32).to_le_bytes());
            p[8..12].copy_from_slice(&((lon * 1e7).round() as i32).to_le_bytes());
            p[12..16].copy_from_slice(&((height * 100.0).round() as i32).to_le_bytes());
            p[16..20].copy_from_slice(&((accuracy * 1e3).round() as u32).to_le_bytes());
        }
    }
    frame(CFG, 0x3d, &p)
}

/// A configuration key and its value; the key's size bits (28-30) say how many bytes it takes.
pub type KeyValue = (u32, i64);

/// CFG-VALSET (version 0) of `items` in the RAM layer.
pub fn valset(items: &[KeyValue]) -> Vec<u8> {
    let mut p = vec![0, 0x01, 0, 0];
    for &(key, value) in items {
        let size = match (key >> 28) & 0x7 {
            1 | 2 => 1,
            3 => 2,
            4 => 4,
            _ => 8,
        };
        p.extend(key.to_le_bytes());
        p.extend(&value.to_le_bytes()[..size]);
    }
    frame(CFG, 0x8a, &p)
}

/// The key for one sentence's output rate on UART1.
pub fn nmea_key(name: &str) -> Option<u32> {
    NMEA_MESSAGES
        .iter()
        .find(|m| m.0 == name)
        .map(|&(_, _, key)| key)
}

pub mod keys {
    pub const MSGOUT_NAV_SVIN_UART1: u32 = 0x2091_0089;
    pub const UART1_BAUDRATE: u32 = 0x4052_0001;
    pub const RATE_MEAS: u32 = 0x3021_0001;
    pub const RATE_NAV: u32 = 0x3021_0002;
    pub const NAVSPG_DYNMODEL: u32 = 0x2011_0021;
    pub const TP_PULSE_DEF: u32 = 0x2005_0023;
    pub const TP_PULSE_LENGTH_DEF: u32 = 0x2005_0030;
    pub const TP_ANT_CABLEDELAY: u32 = 0x3005_0001;
    pub const TP_PERIOD_TP1: u32 = 0x4005_0002;
    pub const TP_PERIOD_LOCK_TP1: u32 = 0x4005_0003;
    pub const TP_LEN_TP1: u32 = 0x4005_0004;
    pub const TP_LEN_LOCK_TP1: u32 = 0x4005_0005;
    pub const TP_USER_DELAY_TP1: u32 = 0x4005_0006;
    pub const TP_TP1_ENA: u32 = 0x1005_0007;
    pub const TP_SYNC_GNSS_TP1: u32 = 0x1005_0008;
    pub const TP_USE_LOCKED_TP1: u32 = 0x1005_0009;
    pub const TP_ALIGN_TO_TOW_TP1: u32 = 0x1005_000a;
    pub const TP_POL_TP1: u32 = 0x1005_000b;
    pub const TP_TIMEGRID_TP1: u32 = 0x2005_000c;
    pub const TMODE_MODE: u32 = 0x2003_0001;
    pub const TMODE_POS_TYPE: u32 = 0x2003_0002;
    pub const TMODE_LAT: u32 = 0x4003_0009;
    pub const TMODE_LON: u32 = 0x4003_000a;
    pub const TMODE_HEIGHT: u32 = 0x4003_000b;
    pub const TMODE_FIXED_POS_ACC: u32 = 0x4003_000f;
    pub const TMODE_SVIN_MIN_DUR: u32 = 0x4003_0010;
    pub const TMODE_SVIN_ACC_LIMIT: u32 = 0x4003_0011;
    /// CFG-SIGNAL-*_ENA, in the order of `Gnss::ALL`.
    pub const SIGNAL_ENA: [u32; 6] = [
        0x1031_001f,
        0x1031_0025,
        0x1031_0021,
        0x1031_0022,
        0x1031_0024,
        0x1031_0020,
    ];
}

/// The CFG-TP-* keys for the same pulse as `cfg_tp5`.
pub fn timepulse_keys(tp: &Timepulse) -> Vec<KeyValue> {
    use keys::*;
    let len = i64::from(micros(tp.length));
    vec![
        (TP_PULSE_DEF, 0),
        (TP_PULSE_LENGTH_DEF, 1),
        (TP_ANT_CABLEDELAY, nanos(tp.cable_delay)),
        (TP_PERIOD_TP1, 1_000_000),
        (TP_PERIOD_LOCK_TP1, 1_000_000),
        (TP_LEN_TP1, if tp.fix_only { 0 } else { len }),
        (TP_LEN_LOCK_TP1, len),
        (TP_USER_DELAY_TP1, nanos(tp.user_delay)),
        (TP_TP1_ENA, 1),
        (TP_SYNC_GNSS_TP1, 1),
        (TP_USE_LOCKED_TP1, 1),
        (TP_ALIGN_TO_TOW_TP1, 1),
        (TP_POL_TP1, 1),
        (TP_TIMEGRID_TP1, 0),
    ]
}

/// The CFG-TMODE-* keys for a timing mode.
pub fn timing_keys(mode: &TimingMode) -> Vec<KeyValue> {
    use keys::*;
    match *mode {
        TimingMode::Unchanged | TimingMode::Disabled => vec![(TMODE_MODE, 0)],
        TimingMode::SurveyIn { seconds, accuracy } => vec![
            (TMODE_MODE, 1),
            (TMODE_SVIN_MIN_DUR, i64::from(seconds)),
            // 0.1 mm.
            (TMODE_SVIN_ACC_LIMIT, (accuracy * 1e4).round() as i64),
        ],
        TimingMode::Fixed { position, accuracy } => vec![
            (TMODE_MODE, 2),
            (TMODE_POS_TYPE, 1),
            (TMODE_LAT, (position[0] * 1e7).round() as i64),
            (TMODE_LON, (position[1] * 1e7).round() as i64),
            (TMODE_HEIGHT, (position[2] * 100.0).round() as i64),
            (TMODE_FIXED_POS_ACC, (accuracy * 1e4).round() as i64),
        ],
    }
}

/// CFG-SIGNAL-*_ENA for each system: on when listed.
pub fn constellation_keys(on: &[Gnss]) -> Vec<KeyValue> {
    Gnss::ALL
        .iter()
        .zip(keys::SIGNAL_ENA)
        .map(|(g, key)| (key, i64::from(on.contains(g))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refclock::gps::ubx::{mon_ver, FrameReader};

    fn hex(bytes: &[u8]) -> String {
        bytes
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn read_back(bytes: &[u8]) -> UbxFrame {
        let mut frames = Vec::new();
        FrameReader::default().push(bytes, |f| frames.push(f));
        assert_eq!(frames.len(), 1, "{}", hex(bytes));
        frames.remove(0)
    }

    /// Frames whose bytes are printed in u-blox's documents and in u-center's message view.
    #[test]
    fn builders_match_published_frames() {
        assert_eq!(hex(&poll_mon_ver()), "B5 62 0A 04 00 00 0E 34");
        // CFG-RATE 1000 ms, 1 cycle, GPS time: the frame every u-blox guide quotes.
        assert_eq!(
            hex(&cfg_rate(1)),
            "B5 62 06 08 06 00 E8 03 01 00 01 00 01 39"
        );
        // GSV off on the current port (CFG-MSG F0 03 00).
        assert_eq!(
            hex(&cfg_msg(NMEA, 0x03, 0)),
            "B5 62 06 01 03 00 F0 03 00 FD 15"
        );
        // UART1 at 115200 baud, UBX+NMEA in and out.
        assert_eq!(
            hex(&cfg_prt(115_200)),
            "B5 62 06 00 14 00 01 00 00 00 D0 08 00 00 00 C2 01 00 03 00 03 00 00 00 00 00 BC 5E"
        );
    }

    #[test]
    fn timepulse_layouts() {
        let tp = Timepulse {
            length: 0.1,
            fix_only: true,
            cable_delay: 50e-9,
            user_delay: -20e-9,
        };
        let f = read_back(&cfg_tp5(&tp));
        assert_eq!((f.class, f.id, f.payload.len()), (0x06, 0x31, 32));
        let u32_at = |i: usize| u32::from_le_bytes(f.payload[i..i + 4].try_into().unwrap());
        assert_eq!(i16::from_le_bytes([f.payload[4], f.payload[5]]), 50);
        assert_eq!((u32_at(8), u32_at(12)), (1_000_000, 1_000_000));
        // No pulse before the fix, 100 ms after.
        assert_eq!((u32_at(16), u32_at(20)), (0, 100_000));
        assert_eq!(u32_at(24) as i32, -20);
        assert_eq!(u32_at(28), 0x77);
        let keys = timepulse_keys(&Timepulse {
            fix_only: false,
            ..tp
        });
        assert!(keys.contains(&(keys::TP_LEN_TP1, 100_000)));
        assert!(keys.contains(&(keys::TP_ANT_CABLEDELAY, 50)));
    }

    #[test]
    fn valset_sizes_follow_the_key() {
        let f = read_back(&valset(&[
            (keys::TP_TP1_ENA, 1),
            (keys::TP_ANT_CABLEDELAY, -5),
            (keys::UART1_BAUDRATE, 115_200),
            (keys::NAVSPG_DYNMODEL, 2),
        ]));
        assert_eq!((f.class, f.id), (0x06, 0x8a));
        assert_eq!(
            hex(&f.payload),
            "00 01 00 00 07 00 05 10 01 01 00 05 30 FB FF 01 00 52 40 00 C2 01 00 21 00 11 20 02"
        );
    }

    #[test]
    fn timing_modes() {
        let f = read_back(&cfg_tmode2(&TimingMode::SurveyIn {
            seconds: 600,
            accuracy: 2.0,
        }));
        assert_eq!((f.id, f.payload.len(), f.payload[0]), (0x3d, 28, 1));
        assert_eq!(
            u32::from_le_bytes(f.payload[20..24].try_into().unwrap()),
            600
        );
        assert_eq!(
            u32::from_le_bytes(f.payload[24..28].try_into().unwrap()),
            2000
        );
        let fixed = TimingMode::Fixed {
            position: [52.5, -13.25, 80.5],
            accuracy: 0.5,
        };
        let f = read_back(&cfg_tmode2(&fixed));
        assert_eq!((f.payload[0], f.payload[2]), (2, 1));
        assert_eq!(
            i32::from_le_bytes(f.payload[8..12].try_into().unwrap()),
            -132_500_000
        );
        assert_eq!(
            i32::from_le_bytes(f.payload[12..16].try_into().unwrap()),
            8050
        );
        assert!(timing_keys(&fixed).contains(&(keys::TMODE_FIXED_POS_ACC, 5000)));
        assert_eq!(constellation_keys(&[Gnss::Gps])[0], (0x1031_001f, 1));
        assert_eq!(constellation_keys(&[Gnss::Gps])[1], (0x1031_0025, 0));
        let f = read_back(&cfg_gnss(&[Gnss::Gps, Gnss::Galileo]));
        assert_eq!((f.id, f.payload.len(), f.payload[3]), (0x3e, 4 + 6 * 8, 6));
        // GPS on, SBAS off, Galileo on: L1 signals in each.
        assert_eq!(&f.payload[4..12], &[0, 8, 16, 0, 1, 0, 1, 0]);
        assert_eq!(&f.payload[12..20], &[1, 1, 3, 0, 0, 0, 1, 0]);
        assert_eq!(&f.payload[20..28], &[2, 4, 8, 0, 1, 0, 1, 0]);
    }

    #[test]
    fn survey_progress_from_either_message() {
        let mut tim = vec![0u8; 28];
        tim[0..4].copy_from_slice(&120u32.to_le_bytes());
        tim[16..20].copy_from_slice(&4_000_000u32.to_le_bytes());
        tim[20..24].copy_from_slice(&118u32.to_le_bytes());
        tim[25] = 1;
        let s = Survey::read(&UbxFrame {
            class: 0x0d,
            id: 0x04,
            payload: tim.clone(),
        })
        .unwrap();
        assert_eq!(
            (s.seconds, s.observations, s.active, s.valid),
            (120, 118, true, false)
        );
        assert!((s.accuracy - 2.0).abs() < 1e-9);
        let mut nav = vec![0u8; 40];
        nav[8..12].copy_from_slice(&600u32.to_le_bytes());
        nav[28..32].copy_from_slice(&15_000u32.to_le_bytes());
        nav[36] = 1;
        let s = Survey::read(&UbxFrame {
            class: 0x01,
            id: 0x3b,
            payload: nav,
        })
        .unwrap();
        assert_eq!(
            (s.seconds, s.valid, s.active, s.accuracy),
            (600, true, false, 1.5)
        );
        // A lying length is not a survey.
        tim.pop();
        let short = UbxFrame {
            class: 0x0d,
            id: 0x04,
            payload: tim,
        };
        assert_eq!(Survey::read(&short), None);
    }

    #[test]
    fn acks_name_the_message_and_lying_lengths_are_not_acks() {
        let f = |id, payload: &[u8]| UbxFrame {
            class: 0x05,
            id,
            payload: payload.to_vec(),
        };
        assert_eq!(ack(&f(1, &[6, 0x31])), Some((Answer::Ack, 6, 0x31)));
        assert_eq!(ack(&f(0, &[6, 0x8a])), Some((Answer::Nak, 6, 0x8a)));
        assert_eq!(ack(&f(1, &[6])), None);
        assert_eq!(ack(&f(1, &[6, 1, 2])), None);
        assert_eq!(ack(&f(2, &[6, 1])), None);
    }

    #[test]
    fn mon_ver_says_model_firmware_and_generation() {
        let ver = |ext: &[&str]| {
            UbloxVersion::from_mon_ver(&UbxFrame {
                class: 0x0a,
                id: 0x04,
                payload: mon_ver(ext),
            })
            .unwrap()
        };
        let m8t = ver(&["FWVER=TIM 1.10", "PROTVER=20.01", "MOD=NEO-M8T"]);
        assert_eq!(m8t.model, "NEO-M8T");
        assert_eq!(m8t.firmware, "TIM 1.10");
        assert_eq!(m8t.protocol, Some((20, 1)));
        assert!(m8t.is_timing() && !m8t.uses_keys());
        let f9t = ver(&["FWVER=TIM 2.20", "PROTVER=29.00", "MOD=ZED-F9T"]);
        assert!(f9t.is_timing() && f9t.uses_keys());
        let old = ver(&["PROTVER 14.00"]);
        assert_eq!(old.protocol, Some((14, 0)));
        assert_eq!(old.firmware, "ROM CORE 3.01 (107888)");
        assert!(!old.is_timing() && !old.uses_keys());
        assert_eq!(ver(&["PROTVER=garbage"]).protocol, None);
    }
}
