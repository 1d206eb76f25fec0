//! The status the page, the JSON API, the metrics and `pitime status` all show: built once a
//! second by the daemon from what the discipline, the receivers and the server publish.

use std::sync::atomic::Ordering;

use serde::Serialize;

use crate::alarm::Alarm;
use crate::discipline::history::{History, Point};
use crate::discipline::snapshot::{ClockSnapshot, Correction};
use crate::discipline::{refid_text, ClockState, Discipline, SourceReport, Standing};
use crate::refclock::alarms;
use crate::refclock::gps::driver::GpsStatus;
use crate::refclock::gps::receiver::Outcome;
use crate::refclock::longwave::decoder::Quality;
use crate::refclock::longwave::driver::LongwaveStatus;
use crate::refclock::longwave::station::StationKind;
use crate::server::stats::ServerStats;
use crate::time::Leap;
use crate::time::{Realtime, UtcTime};
use crate::upstream::driver::NtpStatus;

#[derive(Clone, Debug, Default, Serialize)]
pub struct Status {
    pub version: &'static str,
    pub time: String,
    /// The instant described (system clock), where the charts' time axes end.
    #[serde(skip)]
    pub now: Realtime,
    pub uptime_seconds: f64,
    /// When the daemon started, for `/metrics` (Prometheus wants the start, not the uptime).
    #[serde(skip)]
    pub started: Realtime,
    pub clock: ClockView,
    pub sources: Vec<SourceReport>,
    pub gps: Vec<GpsView>,
    pub longwave: Vec<LongwaveView>,
    pub upstream: Vec<UpstreamView>,
    pub ntp: NtpView,
    /// NTS, when enabled: filled in by the daemon, which owns the keys and certificate.
    pub nts: Option<NtsView>,
    pub alarms: Vec<Alarm>,
    pub history: HistoryView,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ClockView {
    pub synchronised: bool,
    pub state: ClockState,
    pub stratum: u8,
    pub refid: String,
    pub leap: &'static str,
    /// Served time minus the system clock, seconds.
    pub offset_seconds: f64,
    pub frequency_ppm: f64,
    pub root_delay_seconds: f64,
    /// The error bound clients are told, now.
    pub root_dispersion_seconds: f64,
    pub reference_time: Option<String>,
    /// How the served time follows the system clock, for `/metrics` to tell the served time
    /// at the instant of each scrape.
    #[serde(skip)]
    pub correction: Correction,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct SatelliteView {
    pub constellation: &'static str,
    pub prn: u16,
    pub elevation: Option<i16>,
    pub azimuth: Option<u16>,
    pub snr: Option<u8>,
    pub used: bool,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ConstellationView {
    pub name: &'static str,
    pub in_view: usize,
    pub used: usize,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct GpsView {
    pub name: String,
    pub connected: bool,
    pub trusted: bool,
    pub fix: &'static str,
    pub satellites_used: Option<u32>,
    pub constellations: Vec<ConstellationView>,
    pub satellites: Vec<SatelliteView>,
    pub position: Option<[f64; 3]>,
    pub antenna: &'static str,
    pub sentence_delay_seconds: Option<f64>,
    pub last_sentence_ago: Option<f64>,
    pub last_pulse_ago: Option<f64>,
    pub sentences: u64,
    pub bad_frames: u64,
    /// Lines cut off: too long, or never ended (a wrong baud rate, noise).
    pub lines_dropped: u64,
    pub rejected_times: u64,
    pub pps_samples: u64,
    pub nmea_samples: u64,
    pub bad_pulses: u64,
    pub jumps_rejected: u64,
    pub reconnects: u64,
    /// The leap second the receiver announces (`insert` or `delete`) and the midnight it
    /// comes at, passed on to the discipline.
    pub leap_second: Option<GpsLeapView>,
    /// GPS - UTC, seconds, as the receiver says.
    pub gps_utc_offset: Option<i8>,
    /// The receiver's spoofing detection: unknown, none, indicated, multiple.
    pub spoofing: &'static str,
    pub spoof_detected: bool,
    /// What the receiver says of interference (u-blox MON-RF), once it says it.
    pub jamming: Option<JammingView>,
    /// The quantisation error (u-blox TIM-TP) of the last pulse given as a sample, seconds,
    /// and whether it was applied (`apply_qerr`).
    pub pps_qerr_seconds: Option<f64>,
    pub qerr_applied: bool,
    /// What the receiver is (`u-blox NEO-M8T, firmware TIM 1.10, protocol 20.01`, `NMEA only`,
    /// `detecting`), the port's speed, and how each `[source.receiver]` setting went.
    pub receiver: String,
    pub baud: u32,
    pub settings: Vec<SettingView>,
    pub configuration_passes: u64,
    pub survey: Option<SurveyView>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct SettingView {
    pub name: String,
    /// `applied`, `failed` or `pending`.
    pub state: &'static str,
    pub reason: Option<String>,
}

/// A timing receiver's survey-in of its antenna position.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SurveyView {
    pub active: bool,
    pub valid: bool,
    pub seconds: u32,
    pub accuracy_metres: f64,
    pub observations: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct JammingView {
    /// The receiver's verdict: unknown, ok, warning, critical.
    pub state: &'static str,
    /// CW jamming indicator, 0 (none) to 255 (strong).
    pub indicator: u8,
    /// Noise per millisecond, on the receiver's own scale.
    pub noise: u16,
    /// Whether it raises the jamming alarm.
    pub alarm: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct GpsLeapView {
    pub leap: &'static str,
    /// The UTC midnight that ends the day of the leap second.
    pub at: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct LongwaveView {
    pub name: String,
    /// `dcf77`, `msf` or `wwvb`, as `kind` names it.
    pub station: StationKind,
    pub connected: bool,
    /// The decoder's counters and lock, as they are.
    #[serde(flatten)]
    pub quality: Quality,
    /// The current minute's bits so far: `0`, `1`, or `?` for undecided or missing.
    pub current_bits: String,
    pub last_minute: Option<String>,
    pub widths_seconds: [f64; 2],
}

/// An upstream NTP server as its client sees it, like a line of `ntpq -p`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct UpstreamView {
    pub name: String,
    pub address: Option<String>,
    pub reach: u8,
    /// Requests in a row without a reply.
    pub unanswered: u32,
    pub poll_seconds: f64,
    /// The clock filter's choice: server minus local clock, round-trip delay, and jitter.
    pub offset_seconds: Option<f64>,
    pub delay_seconds: Option<f64>,
    pub jitter_seconds: Option<f64>,
    pub dropped: u64,
    pub denied: bool,
    /// Our requests' send times come from the kernel; the server's last reply was interleaved.
    pub kernel_tx: bool,
    pub interleaved: bool,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct NtpView {
    pub requests_per_second: f64,
    /// Distinct client addresses since start (estimated, about 6.5%).
    pub clients_seen: f64,
    /// Replies and drops by outcome since start.
    pub counters: Vec<(&'static str, u64)>,
    /// Replies in interleaved mode since start, and kernel transmit timestamps matched.
    pub interleaved: u64,
    pub transmit_timestamps: u64,
    /// On interfaces with hardware timestamps: requests and replies stamped by the interface,
    /// and those that fell back to the kernel's stamp.
    pub hardware_timestamps: HwCountsView,
    /// Which timestamps each interface of each listening address got.
    pub timestamping: Vec<StampingView>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct StampingView {
    pub address: String,
    pub interface: String,
    pub timestamping: &'static str,
    pub why: String,
    /// With hardware timestamps: the interface's clock and how well it is followed.
    pub clock: Option<HwClockView>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct HwClockView {
    /// /dev/ptpN.
    pub device: String,
    /// The ioctl that reads it against the system clock.
    pub method: &'static str,
    /// Whether its fit is ready: until then the kernel's stamps are used.
    pub ready: bool,
    pub samples: usize,
    /// The last fit's error, in seconds.
    pub fit_error: Option<f64>,
    pub rejected: u64,
    pub resets: u64,
    /// Why the last reading gave no sample, if it did not.
    pub problem: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct NtsView {
    /// Where the NTS-KE server listens (none if it could not start).
    pub ke_listen: Vec<String>,
    pub ke_sessions: u64,
    /// Failed KE connections by reason, since start.
    pub ke_failures: Vec<(&'static str, u64)>,
    pub cookie_keys: usize,
    pub cookie_key_age_seconds: Option<f64>,
    pub certificate_expires: Option<String>,
    /// The same, in Unix seconds, for `/metrics`.
    #[serde(skip)]
    pub certificate_expires_unix: Option<u64>,
    pub certificate_fingerprint: String,
    /// The local CA, when the certificate is pitime's own: what clients must trust.
    pub local_ca: Option<LocalCaView>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct LocalCaView {
    pub fingerprint: String,
    /// The CA certificate, served at `/nts-ca.pem`.
    #[serde(skip)]
    pub pem: String,
    /// What to add to a client's configuration, for chrony and for ntpd-rs.
    pub chrony: String,
    pub ntpd_rs: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct HistoryView {
    pub hour: Vec<Point>,
    pub day: Vec<Point>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct HwCountsView {
    pub receive: u64,
    pub receive_fallback: u64,
    pub transmit: u64,
    pub transmit_fallback: u64,
}

fn stamping_view(stats: &ServerStats) -> Vec<StampingView> {
    let Ok(list) = stats.timestamping.lock() else {
        return Vec::new();
    };
    let clocks = stats.hw_clocks.load();
    list.iter()
        .map(|s| StampingView {
            address: s.address.to_string(),
            interface: s.interface.clone(),
            timestamping: s.timestamping.name(),
            why: s.why.clone(),
            clock: s.index.and_then(|i| clocks.get(i)).map(|c| HwClockView {
                device: format!("/dev/ptp{}", c.phc),
                method: c.method,
                ready: c.conversion.is_some(),
                samples: c.fit.samples,
                fit_error: c.fit.error,
                rejected: c.fit.rejected,
                resets: c.fit.resets,
                problem: c.problem.clone(),
            }),
        })
        .collect()
}

fn hw_counts_view(stats: &ServerStats) -> HwCountsView {
    let n = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    HwCountsView {
        receive: n(&stats.hw.rx),
        receive_fallback: n(&stats.hw.rx_fallback),
        transmit: n(&stats.hw.tx),
        transmit_fallback: n(&stats.hw.tx_fallback),
    }
}

fn leap_name(leap: Leap) -> &'static str {
    match leap {
        Leap::None => "none",
        Leap::Insert => "insert",
        Leap::Delete => "delete",
        Leap::Unsynchronised => "unsynchronised",
    }
}

fn utc_text(t: Realtime) -> String {
    UtcTime::from_realtime(t).to_string()
}

fn ago(now: Realtime, t: Option<Realtime>) -> Option<f64> {
    t.map(|t| now.seconds_since(t))
}

/// Keeps what the status needs between seconds: the start, the history, the last counts.
/// What each source's driver publishes, by source name.
#[derive(Clone, Copy, Debug)]
pub struct DriverStatus<'a> {
    pub gps: &'a [(String, GpsStatus)],
    pub longwave: &'a [(String, LongwaveStatus)],
    pub upstream: &'a [(String, NtpStatus)],
}

pub struct StatusBuilder {
    started: Realtime,
    history: History,
    last_requests: Option<(Realtime, u64)>,
    rate: f64,
    /// The configuration's `[web] notices`.
    pub notices: Vec<String>,
}

impl StatusBuilder {
    pub fn new(started: Realtime) -> Self {
        StatusBuilder {
            started,
            history: History::default(),
            last_requests: None,
            rate: 0.0,
            notices: Vec::new(),
        }
    }

    /// The status at `now` (and at `monotonic`, CLOCK_MONOTONIC nanoseconds, the same instant
    /// on the clock the drivers measure silences on); call once a second (it advances the
    /// history and the rate).
    pub fn build(
        &mut self,
        now: Realtime,
        monotonic: i64,
        clock: &ClockSnapshot,
        discipline: &Discipline,
        drivers: DriverStatus,
        stats: &ServerStats,
    ) -> Status {
        let requests = stats.received();
        if let Some((t, n)) = self.last_requests {
            let dt = now.seconds_since(t);
            if dt > 0.0 {
                self.rate = requests.saturating_sub(n) as f64 / dt;
            }
        }
        self.last_requests = Some((now, requests));
        let sources = discipline.report(now);
        let selected_jitter = sources
            .iter()
            .find(|s| s.state == Standing::Selected)
            .and_then(|s| s.jitter)
            .unwrap_or(0.0);
        let followed = |name: &str| {
            sources
                .iter()
                .any(|s| s.name == name && s.state == Standing::Selected)
        };
        let mut alarms = discipline.alarms(now);
        for (name, g) in drivers.gps {
            alarms.extend(alarms::gps(name, g, monotonic));
        }
        for (name, d) in drivers.longwave {
            alarms.extend(alarms::longwave(name, d, followed(name), monotonic));
        }
        alarms.extend(Alarm::notices(&self.notices));
        let state = discipline.clock_state(now);
        self.history.push(Point {
            t: now.as_nanos().div_euclid(1_000_000_000),
            offset: clock.correction.offset,
            frequency: clock.frequency * 1e6,
            jitter: selected_jitter,
            holdover: matches!(state, ClockState::Holdover | ClockState::Expired),
            alarm: !alarms.is_empty(),
        });
        let gps = drivers
            .gps
            .iter()
            .map(|(name, g)| gps_view(name, g, now))
            .collect();
        let longwave = drivers
            .longwave
            .iter()
            .map(|(n, d)| longwave_view(n, d))
            .collect();
        Status {
            version: env!("CARGO_PKG_VERSION"),
            time: utc_text(now),
            now,
            uptime_seconds: now.seconds_since(self.started),
            started: self.started,
            clock: ClockView {
                synchronised: clock.synchronised,
                state,
                stratum: clock.stratum,
                refid: refid_text(&clock.refid, clock.stratum),
                leap: leap_name(clock.leap),
                offset_seconds: clock.correction.offset,
                frequency_ppm: clock.frequency * 1e6,
                root_delay_seconds: clock.root_delay,
                root_dispersion_seconds: clock.root_dispersion_at(now),
                reference_time: clock.synchronised.then(|| utc_text(clock.reference_time)),
                correction: clock.correction,
            },
            sources,
            gps,
            longwave,
            upstream: drivers
                .upstream
                .iter()
                .map(|(n, u)| upstream_view(n, u))
                .collect(),
            ntp: NtpView {
                requests_per_second: self.rate,
                clients_seen: stats.clients.estimate().round(),
                counters: stats.snapshot(),
                interleaved: stats.interleaved.load(Ordering::Relaxed),
                transmit_timestamps: stats.tx_stamps.load(Ordering::Relaxed),
                timestamping: stamping_view(stats),
                hardware_timestamps: hw_counts_view(stats),
            },
            nts: None,
            alarms,
            history: HistoryView {
                hour: self.history.hour(),
                day: self.history.day(),
            },
        }
    }
}

fn gps_view(name: &str, g: &GpsStatus, now: Realtime) -> GpsView {
    let r = &g.receiver;
    GpsView {
        name: name.to_string(),
        connected: g.connected,
        trusted: g.trusted,
        fix: r.fix.name(),
        satellites_used: r.satellites_used,
        constellations: r
            .per_constellation()
            .into_iter()
            .map(|(c, in_view, used)| ConstellationView {
                name: c.name(),
                in_view,
                used,
            })
            .collect(),
        satellites: r
            .satellites
            .iter()
            .map(|s| SatelliteView {
                constellation: s.constellation.name(),
                prn: s.prn,
                elevation: s.elevation,
                azimuth: s.azimuth,
                snr: s.snr,
                used: s.used,
            })
            .collect(),
        position: r
            .position
            .map(|(lat, lon, alt)| [lat, lon, alt.unwrap_or(f64::NAN)]),
        antenna: r.antenna.name(),
        sentence_delay_seconds: g.sentence_delay.map(|d| d.0),
        last_sentence_ago: ago(now, g.last_sentence),
        last_pulse_ago: ago(now, g.last_pulse),
        sentences: r.counters.sentences,
        bad_frames: r.counters.bad_frames,
        lines_dropped: g.lines_dropped,
        rejected_times: r.counters.rejected,
        pps_samples: g.clock.pps_samples,
        nmea_samples: g.clock.nmea_samples,
        bad_pulses: g.clock.bad_edges,
        jumps_rejected: g.clock.jumps_rejected,
        reconnects: g.reconnects,
        leap_second: r.leap_second.map(|l| GpsLeapView {
            leap: leap_name(l.leap),
            at: utc_text(Realtime::from_timespec((l.day + 1) * 86_400, 0)),
        }),
        gps_utc_offset: r.gps_utc_offset,
        pps_qerr_seconds: g.q_errors.back().map(|q| q.1),
        qerr_applied: g.q_error_applied,
        spoofing: r.spoofing.name(),
        spoof_detected: r.spoofing.is_alarm(),
        jamming: r.jamming.map(|j| JammingView {
            state: j.state.name(),
            indicator: j.indicator,
            noise: j.noise,
            alarm: j.is_alarm(),
        }),
        receiver: g.setup.identity.describe(),
        baud: g.setup.baud,
        settings: g
            .setup
            .settings
            .iter()
            .map(|s| {
                let (state, reason) = match &s.outcome {
                    Outcome::Applied => ("applied", None),
                    Outcome::Pending => ("pending", None),
                    Outcome::Failed(why) => ("failed", Some(why.clone())),
                };
                SettingView {
                    name: s.name.clone(),
                    state,
                    reason,
                }
            })
            .collect(),
        configuration_passes: g.setup.passes,
        survey: g.setup.survey.map(|s| SurveyView {
            active: s.active,
            valid: s.valid,
            seconds: s.seconds,
            accuracy_metres: s.accuracy,
            observations: s.observations,
        }),
    }
}

fn longwave_view(name: &str, d: &LongwaveStatus) -> LongwaveView {
    let q = &d.quality;
    LongwaveView {
        name: name.to_string(),
        station: d.station,
        connected: d.connected,
        quality: q.clone(),
        current_bits: q
            .current_bits
            .iter()
            .map(|b| match b {
                Some(true) => '1',
                Some(false) => '0',
                None => '?',
            })
            .collect(),
        last_minute: q.last_accepted.map(|m| m.utc.to_string()),
        widths_seconds: [q.widths.0, q.widths.1],
    }
}

fn upstream_view(name: &str, u: &NtpStatus) -> UpstreamView {
    UpstreamView {
        name: name.to_string(),
        address: u.address.map(|a| a.to_string()),
        reach: u.reach,
        unanswered: u.unanswered,
        poll_seconds: 2f64.powi(u.poll.into()),
        offset_seconds: u.offset,
        delay_seconds: u.delay,
        jitter_seconds: u.jitter,
        dropped: u.dropped,
        denied: u.denied,
        kernel_tx: u.kernel_tx,
        interleaved: u.interleaved,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON names a longwave source's station as its `kind` does, under `longwave`
    /// whatever the station.
    #[test]
    fn an_msf_source_is_a_longwave_entry_with_its_station() {
        let msf = LongwaveStatus {
            station: StationKind::Msf,
            connected: true,
            ..LongwaveStatus::default()
        };
        let status = Status {
            longwave: vec![longwave_view("anthorn", &msf)],
            ..Status::default()
        };
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["longwave"][0]["name"], "anthorn");
        assert_eq!(json["longwave"][0]["station"], "msf");
        assert_eq!(json["longwave"][0]["connected"], true);
        assert!(json.get("dcf77").is_none(), "{json}");
    }
}
