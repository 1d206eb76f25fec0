//! A simulated GNSS receiver: what it sends for each second of true time, with its timing:
//! NMEA, u-blox UBX, or both. Pure; `gps_runner` plays it in real time on a pseudo-terminal.

use crate::config::{GpsSimConfig, SimUbx};
use crate::refclock::gps::nmea::sentence;
use crate::refclock::gps::ubx::frame;
use crate::refclock::gps::{ubx_nav, ubx_receiver};
use crate::sim::rng::Rng;
use crate::time::{civil_from_days, Realtime, UtcTime};

/// GPS time began at 1980-01-06: Unix seconds.
const GPS_EPOCH: i64 = 315_964_800;

/// What the receiver does in one second.
#[derive(Debug, PartialEq)]
pub struct Second {
    /// The pulse's error: seconds after the true top of the second; `None` when it is lost.
    pub pulse: Option<f64>,
    /// Sentences, each with its start in seconds after the true top of the second.
    pub sentences: Vec<(f64, Vec<u8>)>,
    /// Whether the serial device is unplugged in this second.
    pub unplugged: bool,
}

/// Satellites in view: (talker, number, elevation, azimuth, mean SNR).
const SKY: [(&str, u16, i16, u16, f64); 12] = [
    ("GP", 2, 67, 110, 44.0),
    ("GP", 5, 41, 250, 40.0),
    ("GP", 12, 25, 45, 36.0),
    ("GP", 15, 55, 300, 42.0),
    ("GP", 18, 12, 190, 30.0),
    ("GP", 24, 33, 80, 38.0),
    ("GP", 25, 8, 330, 25.0),
    ("GP", 29, 72, 200, 45.0),
    ("GL", 66, 48, 150, 39.0),
    ("GL", 67, 20, 230, 33.0),
    ("GL", 76, 61, 20, 41.0),
    ("GL", 77, 15, 100, 28.0),
];
/// 9600 baud, 10 bits a character.
const SECONDS_PER_BYTE: f64 = 10.0 / 9600.0;

pub struct GpsSimulator {
    config: GpsSimConfig,
    rng: Rng,
    /// The midnight (Unix seconds of true time) before which the receiver inserted a leap
    /// second, once it has.
    leapt_at: Option<i64>,
}

impl GpsSimulator {
    pub fn new(config: GpsSimConfig) -> Self {
        let rng = Rng::new(config.seed);
        GpsSimulator {
            config,
            rng,
            leapt_at: None,
        }
    }

    fn during(window: Option<(f64, f64)>, elapsed: f64) -> bool {
        window.is_some_and(|(start, end)| elapsed >= start && elapsed < end)
    }

    /// The receiver's UTC for the second that starts at true time `second` (Unix seconds). A
    /// leap second announced for a midnight is inserted there: that second is 23:59:60, and
    /// every later one is labelled a second behind true time (which, on the Unix timescale
    /// here, runs on without it).
    fn label(&mut self, second: i64, elapsed: f64) -> UtcTime {
        let midnight = second.rem_euclid(86_400) == 0;
        if midnight && self.leapt_at.is_none() && Self::during(self.config.leap_announce, elapsed) {
            self.leapt_at = Some(second);
        }
        match self.leapt_at {
            Some(at) if second == at => UtcTime {
                day: at.div_euclid(86_400) - 1,
                second: 86_400,
                nanos: 0,
            },
            Some(at) if second > at => {
                UtcTime::from_realtime(Realtime::from_timespec(second - 1, 0))
            }
            _ => UtcTime::from_realtime(Realtime::from_timespec(second, 0)),
        }
    }

    /// The second that starts at true time `utc_second` (Unix seconds), `elapsed` seconds
    /// after the simulation started.
    pub fn second(&mut self, utc_second: i64, elapsed: f64) -> Second {
        let shift = if Self::during(self.config.jump, elapsed) {
            self.config.jump_seconds.round() as i64
        } else {
            0
        };
        let t = self.label(utc_second + shift, elapsed);
        let c = &self.config;
        let fix = !Self::during(c.fix_loss, elapsed);
        let antenna_ok = !Self::during(c.antenna_fault, elapsed);
        let pulse = self.rng.normal(c.pps_jitter);
        let pulse = (!Self::during(c.pps_loss, elapsed)).then_some(pulse);
        let delay = (c.sentence_delay + self.rng.normal(c.sentence_jitter)).max(0.001);
        let mut at = delay;
        let mut sentences = Vec::new();
        let rate = c.rate.max(1);
        let nmea = c.ubx != SimUbx::Only;
        for epoch in 0..rate {
            let ms = 1000 * epoch / rate;
            let mut burst = match epoch {
                0 => self.ubx_messages(t, fix, elapsed),
                _ => Vec::new(),
            };
            if nmea {
                burst.extend(self.fix_sentences(t, ms, fix));
            }
            if epoch == 0 && nmea {
                burst.push(Self::zda(t).into_bytes());
                if utc_second % 10 == 0 || !antenna_ok {
                    let state = if antenna_ok { "OK" } else { "OPEN" };
                    let txt = sentence(&format!("GPTXT,01,01,02,ANTSTATUS={state}"));
                    burst.push(txt.into_bytes());
                }
            }
            at = at.max(f64::from(epoch) / f64::from(rate) + delay);
            for s in burst {
                let len = s.len() as f64;
                sentences.push((at, s));
                at += len * SECONDS_PER_BYTE;
            }
        }
        if self.rng.uniform() < self.config.garbage {
            let n = 20 + (self.rng.next_u64() % 80) as usize;
            let junk: Vec<u8> = (0..n).map(|_| self.rng.next_u64() as u8).collect();
            sentences.push((at, junk));
        }
        Second {
            pulse,
            sentences,
            unplugged: Self::during(self.config.unplug, elapsed),
        }
    }

    /// The UBX messages of one second, before its NMEA: as a u-blox timing receiver set up
    /// for pitime sends them (the time of the solution, then what it says of its signal and
    /// of the next pulse).
    fn ubx_messages(&mut self, t: UtcTime, fix: bool, elapsed: f64) -> Vec<Vec<u8>> {
        let c = &self.config;
        if c.ubx == SimUbx::Off {
            return Vec::new();
        }
        let t_acc = 20; // ns
        let mut out = vec![
            frame(0x01, 0x07, &ubx_nav::build::pvt(t, fix, t_acc)),
            frame(0x01, 0x21, &ubx_nav::build::timeutc(t, fix, t_acc)),
        ];
        // Insert a second at the next UTC midnight, while announced; once inserted, the event
        // is in the past and GPS - UTC one more.
        let utc_second = t.day * 86_400 + i64::from(t.second);
        let (current, change, to_event) = match self.leapt_at {
            Some(at) => (19, 1, (at - utc_second - 1) as i32),
            None if Self::during(c.leap_announce, elapsed) => {
                (18, 1, (86_400 - utc_second.rem_euclid(86_400)) as i32)
            }
            None => (18, 0, -300_000_000),
        };
        out.push(frame(
            0x01,
            0x26,
            &ubx_nav::build::timels(current, change, to_event),
        ));
        let spoofed = Self::during(c.spoofing, elapsed);
        out.push(frame(
            0x01,
            0x03,
            &ubx_receiver::build::status(1 + u8::from(spoofed)),
        ));
        let rf = match Self::during(c.jamming, elapsed) {
            true => ubx_receiver::build::rf(3, 230, 140),
            false => ubx_receiver::build::rf(1, 10 + (self.rng.next_u64() % 10) as u8, 80),
        };
        out.push(frame(0x0a, 0x38, &rf));
        // The next pulse, in UTC, with its quantisation error (a sawtooth of a few ns).
        let next = utc_second + 1 - GPS_EPOCH;
        let (week, tow_ms) = (next / (7 * 86_400), next % (7 * 86_400) * 1000);
        let q_error_ps = (self.rng.uniform() * 8000.0 - 4000.0) as i32;
        out.push(frame(
            0x0d,
            0x01,
            &ubx_receiver::build::tp(week as u16, tow_ms as u32, q_error_ps),
        ));
        out
    }

    fn fix_sentences(&mut self, t: UtcTime, ms: u32, fix: bool) -> Vec<Vec<u8>> {
        let (y, mo, d) = civil_from_days(t.day);
        let (h, m, s) = t.hms();
        let hms = format!("{h:02}{m:02}{s:02}.{:02}", ms / 10);
        let date = format!("{d:02}{mo:02}{:02}", y % 100);
        let (status, mode, quality, used) = match fix {
            true => ("A", "A", 1, 8),
            false => ("V", "N", 0, 0),
        };
        let pos = if fix { "5231.200,N,01324.300,E" } else { ",,," };
        let mut out = vec![
            sentence(&format!(
                "GPRMC,{hms},{status},{pos},0.0,0.0,{date},,,{mode}"
            )),
            sentence(&format!(
                "GPGGA,{hms},{pos},{quality},{used:02},0.9,45.0,M,44.0,M,,"
            )),
        ];
        let gsa_used = |talker: &str| -> String {
            let prns: Vec<String> = SKY
                .iter()
                .filter(|s| fix && s.0 == talker && s.4 > 32.0)
                .map(|s| s.1.to_string())
                .collect();
            let mut fields = prns.clone();
            fields.resize(12, String::new());
            fields.join(",")
        };
        let fix_type = if fix { 3 } else { 1 };
        for talker in ["GP", "GL"] {
            out.push(sentence(&format!(
                "{talker}GSA,A,{fix_type},{},1.5,0.9,1.2",
                gsa_used(talker)
            )));
            let sats: Vec<_> = SKY.iter().filter(|s| s.0 == talker).collect();
            let pages = sats.len().div_ceil(4);
            for (page, group) in sats.chunks(4).enumerate() {
                let mut body = format!("{talker}GSV,{pages},{},{}", page + 1, sats.len());
                for s in group {
                    let snr = (s.4 + self.rng.normal(1.5)).clamp(10.0, 55.0) as u8;
                    body.push_str(&format!(",{:02},{:02},{:03},{snr:02}", s.1, s.2, s.3));
                }
                out.push(sentence(&body));
            }
        }
        out.into_iter().map(String::into_bytes).collect()
    }

    fn zda(t: UtcTime) -> String {
        let (y, mo, d) = civil_from_days(t.day);
        let (h, m, s) = t.hms();
        sentence(&format!(
            "GPZDA,{h:02}{m:02}{s:02}.00,{d:02},{mo:02},{y},00,00"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refclock::gps::decoder::{parse_date, DecoderOptions, NmeaDecoder};
    use crate::refclock::gps::status::{JammingState, Spoofing};
    use crate::refclock::gps::ubx::ReceiverStream;
    use crate::time::Leap;

    fn config() -> GpsSimConfig {
        GpsSimConfig {
            seed: 3,
            fix_loss: Some((10.0, 20.0)),
            pps_loss: Some((20.0, 30.0)),
            jump: Some((30.0, 40.0)),
            ..GpsSimConfig::default()
        }
    }

    fn decoder() -> NmeaDecoder {
        NmeaDecoder::new(DecoderOptions {
            not_before: parse_date("2020-01-01").unwrap(),
            require_fix: true,
        })
    }

    /// The times `d` accepts from one simulated second: (sentence, time).
    fn decode_with(d: &mut NmeaDecoder, second: &Second) -> Vec<(&'static str, String)> {
        let mut r = ReceiverStream::default();
        let mut out = Vec::new();
        for (_, bytes) in &second.sentences {
            r.push(bytes, (), |message, ()| {
                if let Some(rep) = d.message(&message) {
                    if rep.verdict.is_ok() {
                        out.push((rep.sentence, rep.time.unwrap().to_string()));
                    }
                }
            });
        }
        assert_eq!(d.status.counters.bad_frames, 0);
        assert_eq!(d.status.counters.malformed, 0);
        out
    }

    fn decode(second: &Second) -> Vec<String> {
        let times = decode_with(&mut decoder(), second);
        times.into_iter().map(|t| t.1).collect()
    }

    #[test]
    fn sends_the_true_time_after_the_pulse_and_its_faults_when_due() {
        let mut sim = GpsSimulator::new(config());
        let t = 1_784_451_001; // 2026-07-19T08:50:01Z
        let s = sim.second(t, 0.0);
        assert!(s.pulse.is_some_and(|p| p.abs() < 1e-4));
        let first = s.sentences[0].0;
        assert!(first > 0.05 && first < 0.2, "{first}");
        assert!(s.sentences.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(decode(&s)[0], "2026-07-19T08:50:01.000Z");
        // No fix: nothing acceptable.
        assert!(decode(&sim.second(t + 15, 15.0)).is_empty());
        // The pulse lost, the fix kept.
        let s = sim.second(t + 25, 25.0);
        assert!(s.pulse.is_none() && !decode(&s).is_empty());
        // The jump: a day on.
        assert_eq!(
            decode(&sim.second(t + 35, 35.0))[0],
            "2026-07-20T08:50:36.000Z"
        );
    }

    #[test]
    fn an_announced_leap_second_is_inserted_at_midnight_and_the_labels_fall_a_second_behind() {
        let mut sim = GpsSimulator::new(GpsSimConfig {
            ubx: SimUbx::Also,
            leap_announce: Some((0.0, 100.0)),
            ..config()
        });
        let midnight = 1_798_761_600; // 2027-01-01T00:00:00Z
        let mut d = decoder();
        let labels: Vec<Vec<String>> = (-1..=1)
            .map(|k| {
                let second = sim.second(midnight + k, 5.0 + k as f64);
                let mut times: Vec<String> = decode_with(&mut d, &second)
                    .into_iter()
                    .map(|t| t.1)
                    .collect();
                times.dedup();
                times
            })
            .collect();
        assert_eq!(
            labels,
            [
                ["2026-12-31T23:59:59.000Z"],
                ["2026-12-31T23:59:60.000Z"],
                ["2027-01-01T00:00:00.000Z"]
            ]
        );
        // Once inserted, no second announcement for the next midnight.
        decode_with(&mut d, &sim.second(midnight + 2, 7.0));
        assert_eq!(
            d.leap_at(Realtime::from_timespec(midnight + 86_400, 0)),
            Leap::None
        );
    }

    #[test]
    fn a_ubx_only_receiver_sends_its_time_leap_second_spoofing_and_jamming() {
        let mut sim = GpsSimulator::new(GpsSimConfig {
            ubx: SimUbx::Only,
            leap_announce: Some((5.0, 10.0)),
            spoofing: Some((10.0, 15.0)),
            jamming: Some((15.0, 20.0)),
            ..config()
        });
        let t = 1_798_761_590; // 2026-12-31T23:59:50Z
        let mut d = decoder();
        let times = decode_with(&mut d, &sim.second(t, 0.0));
        let at = "2026-12-31T23:59:50.000Z".to_string();
        assert_eq!(times, [("NAV-PVT", at.clone()), ("NAV-TIMEUTC", at)]);
        assert_eq!(d.status.counters.ignored, 0, "every message is read");
        assert_eq!(
            (d.status.leap_second, d.status.spoofing),
            (None, Spoofing::None)
        );
        let q = d.q_error(Realtime::from_timespec(t + 1, 0)).unwrap();
        assert!(q.abs() <= 4e-9, "{q}");
        decode_with(&mut d, &sim.second(t + 6, 6.0));
        assert_eq!(d.leap_at(Realtime::from_timespec(t + 6, 0)), Leap::Insert);
        decode_with(&mut d, &sim.second(t + 11, 11.0));
        assert_eq!(d.status.spoofing, Spoofing::Indicated);
        decode_with(&mut d, &sim.second(t + 16, 16.0));
        assert_eq!(d.status.jamming.unwrap().state, JammingState::Critical);
        assert_eq!(d.status.spoofing, Spoofing::None);
    }

    #[test]
    fn ubx_beside_nmea_comes_first_and_the_burst_fits_its_second_at_9600_baud() {
        let mut sim = GpsSimulator::new(GpsSimConfig {
            ubx: SimUbx::Also,
            ..config()
        });
        let s = sim.second(1_784_451_001, 0.0);
        let (last, bytes) = s.sentences.last().unwrap();
        let end = last + bytes.len() as f64 * SECONDS_PER_BYTE;
        assert!(end < 0.95, "{end}");
        let times = decode_with(&mut decoder(), &s);
        let kinds: Vec<&str> = times.iter().map(|t| t.0).collect();
        assert_eq!(kinds, ["NAV-PVT", "NAV-TIMEUTC", "RMC", "GGA", "ZDA"]);
    }
}
