//! From NMEA sentences and u-blox UBX messages to time reports and receiver status: the time
//! policy. A report is accepted only when the sentence says the receiver has a fix (for UBX:
//! when its validity flags vouch for the time), unless configured otherwise, a full date is
//! known, and the date is not before the floor (the build date, by default), which
//! catches two-digit-year and GPS week-number rollover errors.

use std::collections::VecDeque;

use super::nmea::{self, Constellation, Frame};
use super::status::{Antenna, FixType, LeapSecond, ReceiverStatus, Satellite};
use super::ubx::{Message, UbxFrame};
use super::{ubx_nav, ubx_receiver};
use crate::time::{civil_from_days, Leap, Realtime, UtcTime};

/// What one time-bearing sentence (or UBX message) said, and whether pitime believes it.
#[derive(Clone, Debug, PartialEq)]
pub struct TimeReport {
    /// `RMC`, `ZDA`, ... or `NAV-PVT`, `NAV-TIMEUTC`, `NAV-TIMEGPS`.
    pub sentence: &'static str,
    /// The time it labels, when the fields could be read (even if rejected).
    pub time: Option<UtcTime>,
    pub verdict: Result<(), Rejection>,
    /// The receiver's latest estimate of its time error (UBX tAcc), seconds: it widens the
    /// sample's error bound.
    pub accuracy: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    Frame(nmea::FrameError),
    BadField(&'static str),
    NoFix,
    NoDate,
    BeforeFloor(UtcTime),
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::Frame(e) => write!(f, "{e}"),
            Rejection::BadField(name) => write!(f, "bad {name} field"),
            Rejection::NoFix => f.write_str("receiver reports no fix"),
            Rejection::NoDate => f.write_str("no date known yet"),
            Rejection::BeforeFloor(floor) => {
                let day = floor.to_string();
                write!(f, "before {}, the earliest plausible date", &day[..10])
            }
        }
    }
}

/// The time-bearing sentence types.
const TIME_SENTENCES: [&str; 5] = ["RMC", "ZDA", "GGA", "GNS", "GLL"];

#[derive(Clone, Debug)]
pub struct DecoderOptions {
    /// Times before this are rejected (a receiver cannot report a time before pitime was built).
    pub not_before: UtcTime,
    /// Accept times from a receiver that says it has no fix (some keep good time from an
    /// earlier fix; most do not).
    pub require_fix: bool,
}

#[derive(Debug)]
pub struct NmeaDecoder {
    options: DecoderOptions,
    /// The last accepted (day, second of day), to date sentences that carry only a time.
    date: Option<(i64, u32)>,
    /// The fix status the most recent sentence that carries one reported.
    has_fix: Option<bool>,
    pub status: ReceiverStatus,
    /// GSV messages of a sequence not yet complete, per system.
    gsv_pending: Vec<(Constellation, Vec<Satellite>)>,
    /// The time accuracy the last valid UBX time message gave, seconds.
    accuracy: Option<f64>,
    /// The quantisation errors TIM-TP announced for the next pulses: (UTC second, seconds).
    q_errors: VecDeque<(Realtime, f64)>,
}

impl NmeaDecoder {
    pub fn new(options: DecoderOptions) -> Self {
        NmeaDecoder {
            options,
            date: None,
            has_fix: None,
            status: ReceiverStatus::default(),
            gsv_pending: Vec::new(),
            accuracy: None,
            q_errors: VecDeque::new(),
        }
    }

    /// The fix status the most recent sentence that carries one reported; `None` before any.
    pub fn has_fix(&self) -> Option<bool> {
        self.has_fix
    }

    /// Takes one line from `LineReader`. Returns a report for time-bearing sentences and for
    /// lines that fail their checksum; updates `status` for the rest.
    pub fn line(&mut self, line: &[u8]) -> Option<TimeReport> {
        let frame = match Frame::parse(line) {
            Ok(f) => f,
            Err(e) => {
                self.status.counters.bad_frames += 1;
                // A time sentence's type is readable even when its checksum is not.
                let kind = line
                    .get(3..6)
                    .and_then(|k| TIME_SENTENCES.iter().find(|s| s.as_bytes() == k).copied())?;
                return Some(TimeReport {
                    sentence: kind,
                    time: None,
                    verdict: Err(Rejection::Frame(e)),
                    accuracy: self.accuracy,
                });
            }
        };
        if !nmea::is_gnss_talker(frame.talker) {
            self.status.counters.ignored += 1;
            return None;
        }
        self.status.counters.sentences += 1;
        let report = match frame.kind {
            "RMC" => self.rmc(&frame),
            "ZDA" => self.zda(&frame),
            "GGA" => self.gga(&frame),
            "GNS" => self.gns(&frame),
            "GLL" => self.gll(&frame),
            "GSA" => {
                self.gsa(&frame);
                return None;
            }
            "GSV" => {
                self.gsv(&frame);
                return None;
            }
            "TXT" => {
                self.txt(&frame);
                return None;
            }
            _ => {
                self.status.counters.ignored += 1;
                return None;
            }
        };
        if report.verdict.is_err() {
            self.status.counters.rejected += 1;
        }
        Some(report)
    }

    /// Takes one line or frame from `ReceiverStream`.
    pub fn message(&mut self, message: &Message) -> Option<TimeReport> {
        match message {
            Message::Line(line) => self.line(line),
            Message::Frame(frame) => self.frame(frame),
        }
    }

    /// Takes one frame from `FrameReader`. Returns a report for the time-bearing messages
    /// (NAV-PVT, NAV-TIMEUTC, NAV-TIMEGPS), whose validity flags stand for NMEA's fix flag;
    /// updates `status` for the rest. A payload too short for its message is a counted drop.
    pub fn frame(&mut self, frame: &UbxFrame) -> Option<TimeReport> {
        self.status.counters.sentences += 1;
        match self.read_frame(frame) {
            Ok(report) => report,
            Err(_) => {
                self.status.counters.malformed += 1;
                None
            }
        }
    }

    fn read_frame(&mut self, frame: &UbxFrame) -> Result<Option<TimeReport>, ubx_nav::Truncated> {
        if let Some(fix) = ubx_nav::pvt_fix(frame)? {
            self.pvt(&fix);
        }
        if let Some(leap) = ubx_nav::timels(frame)? {
            self.leap_seconds(&leap);
            return Ok(None);
        }
        if let Some(spoofing) = ubx_receiver::spoofing(frame)? {
            self.status.spoofing = spoofing;
            return Ok(None);
        }
        if let Some(jamming) = ubx_receiver::jamming(frame)? {
            self.status.jamming = Some(jamming);
            return Ok(None);
        }
        if let Some(pulse) = ubx_receiver::time_pulse(frame)? {
            let label = pulse.label(self.status.gps_utc_offset);
            if let (Some(label), Some(q)) = (label, pulse.q_error) {
                self.q_errors.push_back((label, q));
                if self.q_errors.len() > 4 {
                    self.q_errors.pop_front();
                }
            }
            return Ok(None);
        }
        let Some(t) = ubx_nav::time(frame)? else {
            self.status.counters.ignored += 1;
            return Ok(None);
        };
        if t.valid {
            self.accuracy = Some(t.accuracy);
        }
        if let Some(offset) = t.leap_seconds {
            self.status.gps_utc_offset = Some(offset);
        }
        let report = self.judge(t.message, t.time, "date", t.valid);
        if report.verdict.is_err() {
            self.status.counters.rejected += 1;
        }
        Ok(Some(report))
    }

    /// NAV-TIMELS: the leap second announced, placed at the midnight nearest to the instant
    /// it gives (counted from the last accepted time: TIMELS follows its epoch's PVT).
    fn leap_seconds(&mut self, ls: &ubx_nav::LeapSeconds) {
        if let Some(current) = ls.current {
            self.status.gps_utc_offset = Some(current);
        }
        let (Some(to_event), Some((day, second))) = (ls.to_event, self.date) else {
            return;
        };
        let leap = match ls.change {
            1 => Leap::Insert,
            -1 => Leap::Delete,
            _ => Leap::None,
        };
        let at = day * 86_400 + i64::from(second) + i64::from(to_event);
        let midnight = (at + 43_200).div_euclid(86_400);
        self.status.leap_second = (leap != Leap::None && to_event > 0).then_some(LeapSecond {
            leap,
            day: midnight - 1,
        });
    }

    /// The quantisation error TIM-TP announced for the pulse of UTC second `label`.
    pub fn q_error(&self, label: Realtime) -> Option<f64> {
        self.q_errors.iter().find(|q| q.0 == label).map(|q| q.1)
    }

    /// The leap second the receiver announces for the end of the UTC day of `t`.
    pub fn leap_at(&self, t: Realtime) -> Leap {
        match self.status.leap_second {
            Some(l) if t.as_nanos().div_euclid(86_400_000_000_000) == l.day => l.leap,
            _ => Leap::None,
        }
    }

    fn pvt(&mut self, fix: &ubx_nav::PvtFix) {
        self.note_fix(fix.ok);
        self.status.satellites_used = Some(u32::from(fix.satellites));
        if fix.ok {
            self.status.fix = match fix.kind {
                2 => FixType::TwoD,
                3 | 4 => FixType::ThreeD,
                _ => FixType::Unknown,
            };
            let (lat, lon, alt) = fix.position;
            self.status.position = Some((lat, lon, Some(alt)));
        }
    }

    fn rmc(&mut self, f: &Frame) -> TimeReport {
        let fix = f.field(1) == "A" && !matches!(f.field(11), "N" | "E");
        self.note_fix(fix);
        if fix {
            self.note_position(f.field(2), f.field(3), f.field(4), f.field(5), None);
        }
        let time = nmea::parse_time(f.field(0));
        let date = nmea::parse_ddmmyy(f.field(8)).map(|(yy, m, d)| {
            // RMC's two-digit year: 80..99 are 1980..1999 (GPS began in 1980).
            (if yy >= 80 { 1900 + yy } else { 2000 + yy } as i64, m, d)
        });
        let utc = match (date, time) {
            (Some(date), Some((hms, ns))) => UtcTime::from_civil(date, hms, ns),
            _ => None,
        };
        let bad = if time.is_some() { "date" } else { "time" };
        self.judge("RMC", utc, bad, fix)
    }

    fn zda(&mut self, f: &Frame) -> TimeReport {
        let time = nmea::parse_time(f.field(0));
        let num = |i| f.field(i).parse::<u32>().ok();
        let date = match (num(1), num(2), f.field(3).parse::<i64>().ok()) {
            (Some(d), Some(m), Some(y)) if f.field(3).len() == 4 => Some((y, m, d)),
            _ => None,
        };
        let utc = match (date, time) {
            (Some(date), Some((hms, ns))) => UtcTime::from_civil(date, hms, ns),
            _ => None,
        };
        // ZDA carries no validity flag: receivers send it from their RTC before any fix, so it
        // is trusted only while the other sentences report a fix.
        let fix = self.has_fix == Some(true);
        let bad = if time.is_some() { "date" } else { "time" };
        self.judge("ZDA", utc, bad, fix)
    }

    fn gga(&mut self, f: &Frame) -> TimeReport {
        // Quality 1..5: GPS, DGPS, PPS, RTK, float RTK. 0 is none, 6 dead reckoning, 7 manual
        // input, 8 simulation: none of those is time from the sky.
        let fix = matches!(f.field(5), "1" | "2" | "3" | "4" | "5");
        self.fix_with_position("GGA", f, fix)
    }

    fn gns(&mut self, f: &Frame) -> TimeReport {
        // One mode letter per system; any of A, D, P, R, F is a fix.
        let fix = f.field(5).chars().any(|c| "ADPRF".contains(c));
        self.fix_with_position("GNS", f, fix)
    }

    /// GGA and GNS share their first fields: time, position, fix, satellites used, HDOP,
    /// altitude.
    fn fix_with_position(&mut self, sentence: &'static str, f: &Frame, fix: bool) -> TimeReport {
        self.note_fix(fix);
        if fix {
            let alt = f.field(8).parse().ok();
            self.note_position(f.field(1), f.field(2), f.field(3), f.field(4), alt);
        }
        self.status.satellites_used = f.field(6).parse().ok();
        self.judge_undated(sentence, f.field(0), fix)
    }

    fn gll(&mut self, f: &Frame) -> TimeReport {
        let fix = f.field(5) == "A" && !matches!(f.field(6), "N" | "E");
        self.note_fix(fix);
        self.judge_undated("GLL", f.field(4), fix)
    }

    fn gsa(&mut self, f: &Frame) {
        let fix_type = match f.field(1) {
            "2" => FixType::TwoD,
            "3" => FixType::ThreeD,
            _ => FixType::None,
        };
        self.status.fix = fix_type;
        let system = Constellation::from_system_id(f.field(17))
            .or_else(|| Constellation::from_talker(f.talker));
        let used: Vec<(Constellation, u16)> = (2..14)
            .filter_map(|i| f.field(i).parse().ok())
            .map(|prn| (system.unwrap_or(Constellation::from_prn(prn)), prn))
            .collect();
        // One GSA per system: replace that system's list (under GN without a system id, the
        // systems its numbers belong to).
        let systems: Vec<Constellation> = match system {
            Some(c) => vec![c],
            None => used.iter().map(|u| u.0).collect(),
        };
        self.status.used_prns.retain(|(c, _)| !systems.contains(c));
        self.status.used_prns.extend(used);
        self.status.mark_used();
    }

    fn gsv(&mut self, f: &Frame) {
        let (Ok(total), Ok(number)) = (f.field(0).parse::<u8>(), f.field(1).parse::<u8>()) else {
            self.status.counters.malformed += 1;
            return;
        };
        let groups = (f.fields.len().saturating_sub(3)) / 4;
        // NMEA 4.10 appends a signal id after the groups; it does not change the system.
        let system = match Constellation::from_talker(f.talker) {
            Some(c) => c,
            None => {
                let Some(first) = f.field(3).parse::<u16>().ok() else {
                    return;
                };
                Constellation::from_prn(first)
            }
        };
        let pending = match self.gsv_pending.iter().position(|(c, _)| *c == system) {
            Some(i) => i,
            None => {
                self.gsv_pending.push((system, Vec::new()));
                self.gsv_pending.len() - 1
            }
        };
        if number == 1 {
            self.gsv_pending[pending].1.clear();
        }
        for g in 0..groups {
            let at = 3 + g * 4;
            let Ok(prn) = f.field(at).parse::<u16>() else {
                continue;
            };
            let sat = Satellite {
                constellation: system,
                prn,
                elevation: f.field(at + 1).parse().ok(),
                azimuth: f.field(at + 2).parse().ok(),
                snr: f.field(at + 3).parse().ok(),
                used: false,
            };
            let list = &mut self.gsv_pending[pending].1;
            // Multi-signal receivers repeat a satellite once per signal: keep the strongest.
            match list.iter().position(|s| s.prn == prn) {
                Some(i) if list[i].snr < sat.snr => list[i] = sat,
                Some(_) => {}
                None if list.len() < 64 => list.push(sat),
                None => {}
            }
        }
        if number >= total {
            let done = std::mem::take(&mut self.gsv_pending[pending].1);
            let sats = &mut self.status.satellites;
            sats.retain(|s| s.constellation != system);
            sats.extend(done);
            self.status.mark_used();
        }
    }

    fn txt(&mut self, f: &Frame) {
        // u-blox, MediaTek and Quectel report the antenna supervisor as `ANTSTATUS=...`.
        let text = f.field(3);
        if let Some(state) = text.split("ANTSTATUS=").nth(1) {
            self.status.antenna = match state.trim() {
                "OK" => Antenna::Ok,
                "OPEN" => Antenna::Open,
                "SHORT" => Antenna::Short,
                _ => Antenna::Unknown,
            };
        }
    }

    fn note_fix(&mut self, fix: bool) {
        self.has_fix = Some(fix);
        if !fix {
            self.status.fix = FixType::None;
        } else if self.status.fix == FixType::None {
            self.status.fix = FixType::Unknown;
        }
    }

    fn note_position(&mut self, lat: &str, ns: &str, lon: &str, ew: &str, alt: Option<f64>) {
        if let (Some(lat), Some(lon)) = (
            nmea::parse_coordinate(lat, ns),
            nmea::parse_coordinate(lon, ew),
        ) {
            self.status.position = Some((lat, lon, alt.or(self.status.position.and_then(|p| p.2))));
        }
    }

    /// GGA, GNS and GLL carry a time of day only; the date comes from the last dated
    /// sentence, moved on a day when the time of day wrapped past midnight since.
    fn judge_undated(&mut self, sentence: &'static str, field: &str, fix: bool) -> TimeReport {
        let Some(((h, m, s), nanos)) = nmea::parse_time(field) else {
            return self.judge(sentence, None, "time", fix);
        };
        let Some((day, second)) = self.date else {
            let why = match fix || !self.options.require_fix {
                true => Rejection::NoDate,
                false => Rejection::NoFix,
            };
            return TimeReport {
                sentence,
                time: None,
                verdict: Err(why),
                accuracy: self.accuracy,
            };
        };
        let tod = h * 3600 + m * 60 + s;
        let day = match (tod as i64) - (second as i64) {
            d if d < -43_200 => day + 1,
            d if d > 43_200 => day - 1,
            _ => day,
        };
        let (y, mo, d) = civil_from_days(day);
        let utc = UtcTime::from_civil((y, mo, d), (h, m, s), nanos);
        self.judge(sentence, utc, "time", fix)
    }

    /// The verdict on a sentence's time (`None`: its `bad` field did not read); an accepted
    /// time dates the undated sentences that follow.
    fn judge(
        &mut self,
        sentence: &'static str,
        time: Option<UtcTime>,
        bad: &'static str,
        fix: bool,
    ) -> TimeReport {
        let verdict = match time {
            None => Err(Rejection::BadField(bad)),
            Some(_) if !fix && self.options.require_fix => Err(Rejection::NoFix),
            Some(t) if t < self.options.not_before => {
                Err(Rejection::BeforeFloor(self.options.not_before))
            }
            Some(t) => {
                self.date = Some((t.day, t.second));
                Ok(())
            }
        };
        TimeReport {
            sentence,
            time,
            verdict,
            accuracy: self.accuracy,
        }
    }
}

/// The default floor: the day this binary was built (see build.rs).
pub fn build_date() -> UtcTime {
    let days: i64 = env!("PITIME_BUILD_DAY").parse().unwrap_or(0);
    UtcTime {
        day: days,
        second: 0,
        nanos: 0,
    }
}

/// A floor given as `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Option<UtcTime> {
    let mut parts = text.splitn(3, '-');
    let y = parts.next()?.parse().ok()?;
    let m = parts.next()?.parse().ok()?;
    let d = parts.next()?.parse().ok()?;
    UtcTime::from_civil((y, m, d), (0, 0, 0), 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refclock::gps::nmea::sentence;

    fn decoder() -> NmeaDecoder {
        NmeaDecoder::new(DecoderOptions {
            not_before: parse_date("2020-01-01").unwrap(),
            require_fix: true,
        })
    }

    fn feed(d: &mut NmeaDecoder, body: &str) -> Option<TimeReport> {
        let line = sentence(body);
        d.line(line.trim_end().as_bytes())
    }

    fn accepted(d: &mut NmeaDecoder, body: &str) -> String {
        let r = feed(d, body).unwrap();
        assert_eq!(r.verdict, Ok(()), "{body}");
        r.time.unwrap().to_string()
    }

    fn rejected(d: &mut NmeaDecoder, body: &str) -> String {
        feed(d, body).unwrap().verdict.unwrap_err().to_string()
    }

    const RMC: &str = "GPRMC,085001.00,A,4807.038,N,01131.000,E,0.0,0.0,190726,,,A";

    #[test]
    fn rmc_with_a_fix_gives_its_time() {
        let mut d = decoder();
        assert_eq!(accepted(&mut d, RMC), "2026-07-19T08:50:01.000Z");
        let (lat, lon, _) = d.status.position.unwrap();
        assert!((lat - 48.1173).abs() < 1e-4 && (lon - 11.5167).abs() < 1e-4);
    }

    #[test]
    fn bad_checksums_are_counted_drops() {
        let mut d = decoder();
        let r = d.line(b"$GPRMC,085001.00,A,,,,,,,190726,,,A*00").unwrap();
        assert_eq!(
            r.verdict,
            Err(Rejection::Frame(nmea::FrameError::BadChecksum))
        );
        assert_eq!(d.status.counters.bad_frames, 1);
        assert_eq!(d.line(b"$GPGSV,garbage*00"), None);
        assert_eq!(d.status.counters.bad_frames, 2);
    }

    #[test]
    fn no_fix_means_no_time_unless_configured() {
        let mut d = decoder();
        let void = "GPRMC,085001.00,V,,,,,,,190726,,,N";
        assert_eq!(rejected(&mut d, void), "receiver reports no fix");
        assert_eq!(
            rejected(&mut d, "GPGGA,085002.00,,,,,0,00,99.9,,,,,,"),
            "receiver reports no fix"
        );
        // Mode N (not valid) overrides status A, as NMEA 2.3 says.
        assert_eq!(
            rejected(&mut d, "GPRMC,085001.00,A,,,,,,,190726,,,N"),
            "receiver reports no fix"
        );
        let mut lax = NmeaDecoder::new(DecoderOptions {
            require_fix: false,
            ..d.options.clone()
        });
        assert_eq!(accepted(&mut lax, void), "2026-07-19T08:50:01.000Z");
    }

    #[test]
    fn zda_is_trusted_only_while_a_fix_is_reported() {
        let mut d = decoder();
        let zda = "GPZDA,085001.00,19,07,2026,00,00";
        assert_eq!(rejected(&mut d, zda), "receiver reports no fix");
        feed(
            &mut d,
            "GPGGA,085001.00,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,",
        );
        assert_eq!(accepted(&mut d, zda), "2026-07-19T08:50:01.000Z");
        feed(&mut d, "GPGGA,085002.00,,,,,0,00,99.9,,,,,,");
        assert_eq!(rejected(&mut d, zda), "receiver reports no fix");
    }

    #[test]
    fn time_only_sentences_take_the_last_date_and_cross_midnight() {
        let mut d = decoder();
        let gga = |t: &str| format!("GNGGA,{t},4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,");
        assert_eq!(rejected(&mut d, &gga("235959.00")), "no date known yet");
        accepted(
            &mut d,
            "GPRMC,235959.00,A,4807.038,N,01131.000,E,0.0,0.0,190726,,,A",
        );
        assert_eq!(
            accepted(&mut d, &gga("000000.00")),
            "2026-07-20T00:00:00.000Z"
        );
        assert_eq!(
            accepted(&mut d, &gga("000001.00")),
            "2026-07-20T00:00:01.000Z"
        );
        let gns = "GNGNS,000002.00,4807.038,N,01131.000,E,NAN,08,0.9,545.4,46.9,,,V";
        assert_eq!(accepted(&mut d, gns), "2026-07-20T00:00:02.000Z");
        assert_eq!(
            rejected(&mut d, "GNGNS,000003.00,,,,,NNN,00,,,,,,V"),
            "receiver reports no fix"
        );
    }

    #[test]
    fn rollover_and_two_digit_years_below_the_floor_are_rejected() {
        let mut d = decoder();
        // A receiver with the 2019 week-number rollover bug reports 1024 weeks back.
        let rolled = "GPRMC,085001.00,A,4807.038,N,01131.000,E,0.0,0.0,031206,,,A";
        assert_eq!(
            rejected(&mut d, rolled),
            "before 2020-01-01, the earliest plausible date"
        );
        // 99 is 1999, never 2099.
        let y99 = "GPRMC,085001.00,A,4807.038,N,01131.000,E,0.0,0.0,010199,,,A";
        assert_eq!(
            feed(&mut d, y99).unwrap().time.unwrap().to_string()[..4],
            *"1999"
        );
        // Nor does a rejected time date the sentences after it.
        assert_eq!(
            rejected(&mut d, "GPGLL,4807.038,N,01131.000,E,085002.00,A,A"),
            "no date known yet"
        );
    }

    #[test]
    fn impossible_fields_are_rejected_not_guessed() {
        let mut d = decoder();
        for bad in [
            "GPRMC,256001.00,A,,,,,,,190726,,,A",
            "GPRMC,085001.00,A,,,,,,,320726,,,A",
            "GPRMC,085061.00,A,,,,,,,190726,,,A",
            "GPRMC,,A,,,,,,,190726,,,A",
        ] {
            assert!(rejected(&mut d, bad).starts_with("bad "), "{bad}");
        }
        // The leap second is a real time, at 23:59 only.
        let leap = "GPRMC,235960.00,A,4807.038,N,01131.000,E,0.0,0.0,311226,,,A";
        assert_eq!(accepted(&mut d, leap), "2026-12-31T23:59:60.000Z");
    }

    #[test]
    fn proprietary_and_foreign_talkers_are_ignored() {
        let mut d = decoder();
        assert_eq!(feed(&mut d, "PUBX,04,085001.00,190726,1,2,3"), None);
        assert_eq!(
            feed(&mut d, "AIVDM,1,1,,A,13aG?P0P00PD;88MD5MTDww@2<0L,0"),
            None
        );
        assert_eq!(feed(&mut d, "IIRMC,085001.00,A,,,,,,,190726,,,A"), None);
        assert_eq!(d.status.counters.ignored, 3);
    }

    fn ubx(d: &mut NmeaDecoder, id: u8, payload: Vec<u8>) -> Option<TimeReport> {
        d.frame(&UbxFrame {
            class: 0x01,
            id,
            payload,
        })
    }

    #[test]
    fn ubx_times_are_judged_by_their_validity_flags_and_carry_the_accuracy() {
        use crate::refclock::gps::ubx_nav::build;
        let mut d = decoder();
        let t = parse_date("2026-07-19").unwrap();
        let r = ubx(&mut d, 0x21, build::timeutc(t, false, 4_000_000_000)).unwrap();
        assert_eq!(r.verdict, Err(Rejection::NoFix));
        assert_eq!(r.accuracy, None);
        let r = ubx(&mut d, 0x07, build::pvt(t, true, 20)).unwrap();
        assert_eq!(
            (r.sentence, r.verdict, r.accuracy),
            ("NAV-PVT", Ok(()), Some(20e-9))
        );
        assert_eq!(
            (d.status.fix, d.status.satellites_used),
            (FixType::ThreeD, Some(9))
        );
        // The accuracy stays with the NMEA sentences that follow, and dates them.
        let gga = "GPGGA,000001.00,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,";
        let r = feed(&mut d, gga).unwrap();
        assert_eq!(r.accuracy, Some(20e-9));
        assert_eq!(r.time.unwrap().to_string(), "2026-07-19T00:00:01.000Z");
        // Before the floor: rejected like an NMEA time.
        let old = parse_date("2019-01-01").unwrap();
        let r = ubx(&mut d, 0x21, build::timeutc(old, true, 20)).unwrap();
        assert!(matches!(r.verdict, Err(Rejection::BeforeFloor(_))));
        assert_eq!(d.status.counters.rejected, 2);
    }

    #[test]
    fn nav_timels_announces_the_leap_second_for_its_day() {
        use crate::refclock::gps::ubx_nav::build;
        let mut d = decoder();
        // Before any time is known, an announcement has nothing to count from.
        ubx(&mut d, 0x26, build::timels(18, 1, 3_600));
        assert_eq!(d.status.leap_second, None);
        let t = UtcTime {
            second: 86_400 - 3_600,
            ..parse_date("2026-12-31").unwrap()
        };
        ubx(&mut d, 0x07, build::pvt(t, true, 20));
        ubx(&mut d, 0x26, build::timels(18, 1, 3_600));
        let day = t.day;
        assert_eq!(
            d.status.leap_second,
            Some(LeapSecond {
                leap: Leap::Insert,
                day
            })
        );
        assert_eq!(d.status.gps_utc_offset, Some(18));
        let noon = |day: i64| Realtime::from_timespec(day * 86_400 + 43_200, 0);
        assert_eq!(d.leap_at(noon(day)), Leap::Insert);
        assert_eq!(d.leap_at(noon(day - 1)), Leap::None);
        assert_eq!(d.leap_at(noon(day + 1)), Leap::None);
        // Once passed (or withdrawn), no change is announced.
        ubx(&mut d, 0x26, build::timels(19, 0, -10));
        assert_eq!(d.status.leap_second, None);
        assert_eq!(d.status.gps_utc_offset, Some(19));
        assert_eq!(ubx(&mut d, 0x26, vec![0; 12]), None);
        assert_eq!(d.status.counters.malformed, 1);
    }

    #[test]
    fn nav_status_and_mon_rf_give_spoofing_and_jamming() {
        use crate::refclock::gps::status::{JammingState, Spoofing};
        use crate::refclock::gps::ubx_receiver::build;
        let mut d = decoder();
        assert_eq!(ubx(&mut d, 0x03, build::status(2)), None);
        assert_eq!(d.status.spoofing, Spoofing::Indicated);
        let rf = UbxFrame {
            class: 0x0a,
            id: 0x38,
            payload: build::rf(3, 90, 100),
        };
        assert_eq!(d.frame(&rf), None);
        let j = d.status.jamming.unwrap();
        assert_eq!(
            (j.state, j.indicator, j.noise),
            (JammingState::Critical, 90, 100)
        );
        assert_eq!(d.status.counters.malformed, 0);
        assert_eq!(d.status.counters.ignored, 0);
    }

    #[test]
    fn tim_tp_quantisation_errors_are_kept_for_their_pulses() {
        use crate::refclock::gps::ubx_receiver::build;
        let mut d = decoder();
        let tp = |d: &mut NmeaDecoder, tow_ms, q| {
            d.frame(&UbxFrame {
                class: 0x0d,
                id: 0x01,
                payload: build::tp(1958, tow_ms, q),
            })
        };
        for s in 0..6 {
            assert_eq!(tp(&mut d, 291_019_000 + s * 1000, 1000 + s as i32), None);
        }
        let second = |s: i64| Realtime::from_timespec(1_500_454_219 + s, 0);
        // The last four are kept.
        assert_eq!(d.q_error(second(1)), None);
        assert_eq!(d.q_error(second(2)), Some(1.002e-9));
        assert_eq!(d.q_error(second(5)), Some(1.005e-9));
        assert_eq!(d.q_error(second(6)), None);
    }

    #[test]
    fn short_ubx_payloads_are_counted_drops_and_other_messages_ignored() {
        let mut d = decoder();
        assert_eq!(ubx(&mut d, 0x07, vec![0; 40]), None);
        assert_eq!(ubx(&mut d, 0x21, vec![1, 2, 3]), None);
        assert_eq!(d.status.counters.malformed, 2);
        assert_eq!(ubx(&mut d, 0x35, vec![0; 8]), None);
        assert_eq!(d.status.counters.ignored, 1);
        assert_eq!(d.status.counters.sentences, 3);
    }

    #[test]
    fn satellites_antenna_and_fix_are_tracked() {
        let mut d = decoder();
        feed(
            &mut d,
            "GPGSV,2,1,05,01,40,083,46,02,17,308,41,12,07,344,39,14,22,228,45",
        );
        feed(&mut d, "GPGSV,2,2,05,15,05,110,");
        feed(&mut d, "GLGSV,1,1,01,65,30,100,33");
        feed(&mut d, "GPGSA,A,3,01,02,14,,,,,,,,,,1.9,1.0,1.6");
        feed(&mut d, "GPTXT,01,01,02,ANTSTATUS=OPEN");
        let s = &d.status;
        assert_eq!(s.fix, FixType::ThreeD);
        assert_eq!(s.antenna, Antenna::Open);
        assert_eq!(
            s.per_constellation(),
            vec![(Constellation::Gps, 5, 3), (Constellation::Glonass, 1, 0)]
        );
        let s15 = s.satellites.iter().find(|s| s.prn == 15).unwrap();
        assert_eq!((s15.elevation, s15.snr, s15.used), (Some(5), None, false));
    }
}
