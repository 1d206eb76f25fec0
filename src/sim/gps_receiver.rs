//! The simulated receiver's command side: what a u-blox or MediaTek receiver answers to what
//! it is sent (MON-VER, CFG messages, PMTK sentences), its serial speed, the sentences it has
//! been told to send, and a survey-in. Pure; `gps_runner` wires it to the pseudo-terminal.

use crate::refclock::gps::nmea::{sentence, Frame, LineReader};
use crate::refclock::gps::receiver::ubx_cfg::keys;
use crate::refclock::gps::ubx::{frame, FrameReader, UbxFrame};

/// What the receiver does, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Bytes(Vec<u8>),
    /// Its UART moves to this speed.
    Baud(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chip {
    /// Model, firmware, protocol version.
    Ublox(&'static str, &'static str, &'static str),
    MediaTek,
}

/// A survey-in under way: started at, minimum seconds, accuracy limit (metres).
#[derive(Clone, Copy, Debug)]
struct SurveyIn {
    start: f64,
    seconds: u32,
    limit: f64,
}

pub struct SimReceiver {
    chip: Chip,
    nak_all: bool,
    deaf: bool,
    reset_after: Option<u32>,
    /// Configuration commands acknowledged since start.
    acked: u32,
    pub baud: u32,
    /// NMEA sentence types turned off.
    off: Vec<String>,
    survey: Option<SurveyIn>,
    frames: FrameReader,
    lines: LineReader<()>,
}

const DEFAULT_BAUD: u32 = 9600;

impl SimReceiver {
    /// `model` is one of `config::SIMULATED_MODELS`.
    pub fn new(model: &str, nak_all: bool, deaf: bool, reset_after: Option<u32>) -> Self {
        let chip = match model {
            "NEO-M8T" => Chip::Ublox("NEO-M8T", "TIM 1.10", "20.01"),
            "NEO-M9N" => Chip::Ublox("NEO-M9N", "SPG 4.04", "32.00"),
            "ZED-F9T" => Chip::Ublox("ZED-F9T", "TIM 2.20", "29.00"),
            "MT3339" => Chip::MediaTek,
            _ => Chip::Ublox("NEO-M8N", "SPG 3.01", "18.00"),
        };
        SimReceiver {
            chip,
            nak_all,
            deaf,
            reset_after,
            acked: 0,
            baud: DEFAULT_BAUD,
            off: Vec::new(),
            survey: None,
            frames: FrameReader::default(),
            lines: LineReader::default(),
        }
    }

    /// Power lost (unplugged): back to the defaults, as nothing was saved to flash.
    pub fn power_cycle(&mut self) {
        self.baud = DEFAULT_BAUD;
        self.off.clear();
        self.survey = None;
        self.frames = FrameReader::default();
        self.lines = LineReader::default();
    }

    /// Whether it sends a sentence (`$GPGSV,...`) now.
    pub fn sends(&self, sentence: &[u8]) -> bool {
        let kind = sentence.get(3..6).map(String::from_utf8_lossy);
        !kind.is_some_and(|k| self.off.iter().any(|o| *o == k))
    }

    /// What it answers to bytes it received (at its own speed), `elapsed` seconds after start.
    pub fn input(&mut self, bytes: &[u8], elapsed: f64) -> Vec<Output> {
        if self.deaf {
            return Vec::new();
        }
        let mut frames = Vec::new();
        let mut lines = Vec::new();
        self.frames.push(bytes, |f| frames.push(f));
        self.lines.push(bytes, (), |l, ()| lines.push(l.to_vec()));
        let mut out = Vec::new();
        for f in frames {
            out.extend(self.ubx(&f, elapsed));
        }
        for l in lines {
            out.extend(self.pmtk(&l));
        }
        out
    }

    fn ubx(&mut self, f: &UbxFrame, elapsed: f64) -> Vec<Output> {
        let Chip::Ublox(model, firmware, protocol) = self.chip else {
            return Vec::new();
        };
        match (f.class, f.id) {
            (0x0a, 0x04) if f.payload.is_empty() => {
                vec![Output::Bytes(frame(
                    0x0a,
                    0x04,
                    &mon_ver(model, firmware, protocol),
                ))]
            }
            (0x06, id) => {
                let timing = model.ends_with('T');
                // Only timing receivers have a timing mode.
                let refuse = self.nak_all || (id == 0x3d && !timing);
                let ack = frame(0x05, u8::from(!refuse), &[0x06, id]);
                let mut out = vec![Output::Bytes(ack)];
                if !refuse {
                    out.extend(self.apply_ubx(id, &f.payload, elapsed));
                    out.extend(self.count_ack());
                }
                out
            }
            _ => Vec::new(),
        }
    }

    fn apply_ubx(&mut self, id: u8, p: &[u8], elapsed: f64) -> Vec<Output> {
        const NMEA_IDS: [&str; 9] = [
            "GGA", "GLL", "GSA", "GSV", "RMC", "VTG", "GRS", "GST", "ZDA",
        ];
        let u32_at = |i: usize| {
            p.get(i..i + 4)
                .map_or(0, |b| u32::from_le_bytes(b.try_into().unwrap_or_default()))
        };
        match (id, p.len()) {
            (0x00, 20) => return vec![Output::Baud(u32_at(8))],
            (0x01, 3) if p[0] == 0xf0 => {
                if let Some(name) = NMEA_IDS.get(usize::from(p[1])) {
                    self.output(name, p[2] > 0);
                }
            }
            (0x3d, 28) => self.timing_mode(p[0], u32_at(20), f64::from(u32_at(24)) / 1e3, elapsed),
            (0x8a, _) => {
                let mut out = Vec::new();
                let (mut mode, mut seconds, mut limit) = (None, 0, 0.0);
                let mut at = 4;
                while let Some(key) = p.get(at..at + 4) {
                    let key = u32::from_le_bytes(key.try_into().unwrap_or_default());
                    let size = match (key >> 28) & 7 {
                        1 | 2 => 1,
                        3 => 2,
                        4 => 4,
                        _ => 8,
                    };
                    let mut value = [0u8; 8];
                    let Some(v) = p.get(at + 4..at + 4 + size) else {
                        break;
                    };
                    value[..size].copy_from_slice(v);
                    let value = u64::from_le_bytes(value);
                    at += 4 + size;
                    match key {
                        keys::UART1_BAUDRATE => out.push(Output::Baud(value as u32)),
                        keys::TMODE_MODE => mode = Some(value as u8),
                        keys::TMODE_SVIN_MIN_DUR => seconds = value as u32,
                        keys::TMODE_SVIN_ACC_LIMIT => limit = value as f64 / 1e4,
                        _ => {
                            let nmea = crate::refclock::gps::receiver::ubx_cfg::NMEA_MESSAGES;
                            if let Some(m) = nmea.iter().find(|m| m.2 == key) {
                                self.output(m.0, value > 0);
                            }
                        }
                    }
                }
                if let Some(mode) = mode {
                    self.timing_mode(mode, seconds, limit, elapsed);
                }
                return out;
            }
            _ => {}
        }
        Vec::new()
    }

    fn output(&mut self, name: &str, on: bool) {
        self.off.retain(|o| o != name);
        if !on {
            self.off.push(name.to_string());
        }
    }

    fn timing_mode(&mut self, mode: u8, seconds: u32, limit: f64, elapsed: f64) {
        self.survey = (mode == 1).then_some(SurveyIn {
            start: elapsed,
            seconds,
            limit,
        });
    }

    /// Counts an acknowledged command; resets once after `reset_after` of them.
    fn count_ack(&mut self) -> Vec<Output> {
        self.acked += 1;
        if self.reset_after != Some(self.acked) {
            return Vec::new();
        }
        self.power_cycle();
        let banner = match self.chip {
            Chip::Ublox(..) => sentence("GNTXT,01,01,02,u-blox AG - www.u-blox.com"),
            Chip::MediaTek => sentence("PMTK011,MTKGPS") + &sentence("PMTK010,001"),
        };
        vec![
            Output::Baud(DEFAULT_BAUD),
            Output::Bytes(banner.into_bytes()),
        ]
    }

    fn pmtk(&mut self, line: &[u8]) -> Vec<Output> {
        if self.chip != Chip::MediaTek {
            return Vec::new();
        }
        let Ok(f) = Frame::parse(line) else {
            return Vec::new();
        };
        let Some(command) = f.kind.strip_prefix("MTK") else {
            return Vec::new();
        };
        let ack =
            |flag: u8| Output::Bytes(sentence(&format!("PMTK001,{command},{flag}")).into_bytes());
        match command {
            "605" => vec![Output::Bytes(
                sentence("PMTK705,AXN_2.31_3339_13101700,5632,PA6H,1.0").into_bytes(),
            )],
            _ if self.nak_all => vec![ack(1)],
            "251" => match f.field(0).parse() {
                Ok(baud) => vec![Output::Baud(baud)],
                Err(_) => Vec::new(),
            },
            "314" => {
                const FIELDS: [&str; 6] = ["GLL", "RMC", "VTG", "GGA", "GSA", "GSV"];
                for (i, name) in FIELDS.iter().enumerate() {
                    self.output(name, f.field(i) != "0");
                }
                self.output("ZDA", f.field(17) != "0");
                let mut out = vec![ack(3)];
                out.extend(self.count_ack());
                out
            }
            "220" | "285" | "353" => {
                let mut out = vec![ack(3)];
                out.extend(self.count_ack());
                out
            }
            _ => vec![ack(0)],
        }
    }

    /// The survey-in message of a second, while one was asked for: TIM-SVIN on u-blox 8,
    /// NAV-SVIN on later ones. The accuracy improves as the square root of the time.
    pub fn survey_message(&self, elapsed: f64) -> Option<Vec<u8>> {
        let Chip::Ublox(_, _, protocol) = self.chip else {
            return None;
        };
        let s = self.survey?;
        let seconds = (elapsed - s.start).max(0.0) as u32;
        let accuracy = 20.0 / f64::from(seconds + 1).sqrt();
        let valid = seconds >= s.seconds && accuracy <= s.limit;
        // u-blox 8's protocols end at 23.01.
        let major: u8 = protocol
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        let generation_9 = major >= 24;
        let mut p = vec![0u8; if generation_9 { 40 } else { 28 }];
        let put =
            |p: &mut Vec<u8>, at: usize, v: u32| p[at..at + 4].copy_from_slice(&v.to_le_bytes());
        if generation_9 {
            put(&mut p, 8, seconds);
            put(&mut p, 28, (accuracy * 1e4) as u32);
            put(&mut p, 32, seconds);
            (p[36], p[37]) = (u8::from(valid), u8::from(!valid));
            Some(frame(0x01, 0x3b, &p))
        } else {
            put(&mut p, 0, seconds);
            put(&mut p, 16, (accuracy * 1e3).powi(2) as u32);
            put(&mut p, 20, seconds);
            (p[24], p[25]) = (u8::from(valid), u8::from(!valid));
            Some(frame(0x0d, 0x04, &p))
        }
    }
}

fn mon_ver(model: &str, firmware: &str, protocol: &str) -> Vec<u8> {
    let field = |s: &str, n: usize| {
        let mut v = s.as_bytes().to_vec();
        v.resize(n, 0);
        v
    };
    let mut p = field("ROM CORE 3.01 (107888)", 30);
    p.extend(field("00080000", 10));
    for e in [
        format!("FWVER={firmware}"),
        format!("PROTVER={protocol}"),
        format!("MOD={model}"),
    ] {
        p.extend(field(&e, 30));
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ReceiverConfig, Sentences, Timepulse, TimingMode};
    use crate::refclock::gps::receiver::session::{Action, Session};
    use crate::refclock::gps::receiver::{Identity, Outcome};

    /// The driver's session against the simulated receiver, over a perfect wire at matching
    /// speeds, until nothing more is said.
    fn converse(rx: &mut SimReceiver, config: ReceiverConfig) -> Session {
        let mut s = Session::new(Some(config));
        s.connected(9600, 0.0);
        // The port's speed, as the actions set it in order.
        let mut port = 9600;
        let mut t = 0.0;
        let mut pending = s.poll(t);
        while t < 60.0 {
            let mut replies = Vec::new();
            for a in pending.drain(..) {
                match a {
                    Action::Send(bytes) if port == rx.baud => replies.extend(rx.input(&bytes, t)),
                    Action::SetBaud(b) => port = b,
                    _ => {}
                }
            }
            t += 0.25;
            for r in replies {
                match r {
                    Output::Bytes(b) if port == rx.baud => {
                        let mut frames = Vec::new();
                        FrameReader::default().push(&b, |f| frames.push(f));
                        for f in frames {
                            pending.extend(s.ubx(&f, t));
                        }
                        for line in b.split(|&c| c == b'\n') {
                            let line = line.strip_suffix(b"\r").unwrap_or(line);
                            if line.starts_with(b"$") {
                                s.heard(t);
                                pending.extend(s.sentence(line, t));
                            }
                        }
                    }
                    Output::Baud(b) => rx.baud = b,
                    Output::Bytes(_) => {}
                }
            }
            if port == rx.baud {
                s.heard(t);
            }
            pending.extend(s.poll(t));
        }
        s
    }

    fn config() -> ReceiverConfig {
        ReceiverConfig {
            baud: Some(115_200),
            rate: 1,
            sentences: Sentences::Time,
            stationary: true,
            timepulse: Some(Timepulse::default()),
            timing: TimingMode::SurveyIn {
                seconds: 30,
                accuracy: 5.0,
            },
            constellations: None,
        }
    }

    #[test]
    fn each_model_is_detected_and_configured() {
        for model in ["NEO-M8T", "ZED-F9T", "MT3339"] {
            let mut rx = SimReceiver::new(model, false, false, None);
            let s = converse(&mut rx, config());
            assert!(
                !matches!(s.state.identity, Identity::Unknown | Identity::NmeaOnly),
                "{model}"
            );
            assert_eq!((rx.baud, s.state.baud), (115_200, 115_200), "{model}");
            assert!(!rx.sends(b"$GPGSV,1") && rx.sends(b"$GPRMC,1"), "{model}");
            let failed: Vec<_> = s
                .state
                .settings
                .iter()
                .filter(|x| x.outcome != Outcome::Applied)
                .collect();
            match model {
                // MediaTek has no navigation model or timing mode: those two, skipped.
                "MT3339" => assert_eq!(failed.len(), 2, "{failed:?}"),
                _ => assert!(failed.is_empty(), "{model}: {failed:?}"),
            }
        }
    }

    #[test]
    fn the_survey_in_progresses_to_valid() {
        let mut rx = SimReceiver::new("NEO-M8T", false, false, None);
        converse(&mut rx, config());
        let read = |b: Vec<u8>| {
            let mut frames = Vec::new();
            FrameReader::default().push(&b, |f| frames.push(f));
            crate::refclock::gps::receiver::ubx_cfg::Survey::read(&frames[0]).unwrap()
        };
        let early = read(rx.survey_message(10.0).unwrap());
        assert!(early.active && !early.valid);
        let done = read(rx.survey_message(200.0).unwrap());
        assert!(done.valid && !done.active && done.accuracy <= 5.0);
    }

    #[test]
    fn nak_all_deaf_and_reset() {
        let mut rx = SimReceiver::new("NEO-M8N", true, false, None);
        let s = converse(&mut rx, config());
        assert!(s
            .state
            .settings
            .iter()
            .all(|x| matches!(x.outcome, Outcome::Failed(_))));
        assert_eq!(rx.baud, 9600);

        let mut rx = SimReceiver::new("NEO-M8N", false, true, None);
        let s = converse(&mut rx, config());
        assert_eq!(s.state.identity, Identity::NmeaOnly);

        // Reset after the third command: the session starts again and finishes.
        let mut rx = SimReceiver::new("NEO-M8T", false, false, Some(3));
        let s = converse(&mut rx, config());
        assert_eq!(rx.baud, 115_200);
        assert!(s.state.passes >= 1);
        assert!(s
            .state
            .settings
            .iter()
            .all(|x| x.outcome == Outcome::Applied));
    }
}
