//! The `[[source]]` tables: one per reference clock.

use std::path::PathBuf;

use super::reader::{Errors, Section};
use super::receiver::{read_receiver, ReceiverConfig};
use super::{any, in_range, one_of};
use crate::ntp::keys::KeyStore;
use crate::refclock::longwave::station::StationKind;

#[derive(Clone, Debug, PartialEq)]
pub enum SourceConfig {
    Local(LocalSourceConfig),
    Gps(Box<GpsSourceConfig>),
    /// DCF77, MSF or WWVB.
    Longwave(Box<LongwaveSourceConfig>),
    Ntp(Box<NtpSourceConfig>),
}

/// What kind of clock a source is: the `kind` key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Local,
    Gps,
    Dcf77,
    Msf,
    Wwvb,
    Ntp,
}

impl SourceKind {
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Local => "local",
            SourceKind::Gps => "gps",
            SourceKind::Dcf77 => "dcf77",
            SourceKind::Msf => "msf",
            SourceKind::Wwvb => "wwvb",
            SourceKind::Ntp => "ntp",
        }
    }
}

impl std::fmt::Display for SourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl SourceConfig {
    pub fn kind(&self) -> SourceKind {
        match self {
            SourceConfig::Local(_) => SourceKind::Local,
            SourceConfig::Gps(_) => SourceKind::Gps,
            SourceConfig::Longwave(l) => match l.station {
                StationKind::Dcf77 => SourceKind::Dcf77,
                StationKind::Msf => SourceKind::Msf,
                StationKind::Wwvb => SourceKind::Wwvb,
            },
            SourceConfig::Ntp(_) => SourceKind::Ntp,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            SourceConfig::Local(l) => &l.name,
            SourceConfig::Gps(g) => &g.name,
            SourceConfig::Longwave(d) => &d.name,
            SourceConfig::Ntp(n) => &n.name,
        }
    }

    pub fn select(&self) -> Select {
        match self {
            SourceConfig::Local(l) => l.select,
            SourceConfig::Gps(g) => g.select,
            SourceConfig::Longwave(d) => d.select,
            SourceConfig::Ntp(n) => n.select,
        }
    }
}

/// How the selection treats a source, like chrony's `prefer` and `noselect`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Select {
    /// Followed alone whenever it is among the truechimers.
    pub prefer: bool,
    /// Measured and shown, never followed.
    pub noselect: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LocalSourceConfig {
    pub name: String,
    pub select: Select,
    pub stratum: u8,
}

/// Where the PPS pulse comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PpsInput {
    None,
    /// A kernel PPS device (`/dev/ppsN`, RFC 2783).
    Kernel(PathBuf),
    /// A GPIO line's edge events (gpio character device), where no pps-gpio overlay is loaded.
    Gpio {
        chip: PathBuf,
        line: u32,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PpsEdge {
    Assert,
    Clear,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GpsSourceConfig {
    pub name: String,
    pub select: Select,
    pub device: PathBuf,
    pub baud: u32,
    pub pps: PpsInput,
    pub pps_edge: PpsEdge,
    /// Seconds from the pulse to the sentence that labels it; `None` learns it.
    pub sentence_delay: Option<f64>,
    pub require_fix: bool,
    pub hide_position: bool,
    /// Correct each pulse by the quantisation error u-blox TIM-TP gives for it (only worth it
    /// where pulses are timestamped to better than 100 ns; always recorded).
    pub apply_qerr: bool,
    /// Runs a simulated receiver instead of opening `device` and `pps`.
    pub simulate: Option<GpsSimConfig>,
    /// What to set on the receiver; `None` detects it and changes nothing.
    pub receiver: Option<ReceiverConfig>,
}

/// The simulated receiver (`sim::gps`): its timing, and faults at set times since start.
#[derive(Clone, Debug, PartialEq)]
pub struct GpsSimConfig {
    /// True time minus the system clock, seconds: what pitime must find and correct.
    pub clock_offset: f64,
    /// Fixes per second.
    pub rate: u32,
    pub sentence_delay: f64,
    pub sentence_jitter: f64,
    pub pps_jitter: f64,
    /// Share of bursts followed by random bytes.
    pub garbage: f64,
    pub seed: u64,
    pub fix_loss: Option<(f64, f64)>,
    /// The receiver keeps its fix but no pulse arrives (a loose PPS wire).
    pub pps_loss: Option<(f64, f64)>,
    pub antenna_fault: Option<(f64, f64)>,
    /// The serial device disappears (a USB receiver unplugged).
    pub unplug: Option<(f64, f64)>,
    /// The receiver reports a time `jump_seconds` off (a spoofer).
    pub jump: Option<(f64, f64)>,
    pub jump_seconds: f64,
    /// Which u-blox UBX messages it sends besides (or instead of) NMEA.
    pub ubx: SimUbx,
    /// NAV-TIMELS announces a leap second inserted at the next UTC midnight.
    pub leap_announce: Option<(f64, f64)>,
    /// NAV-STATUS reports spoofing.
    pub spoofing: Option<(f64, f64)>,
    /// MON-RF reports critical jamming.
    pub jamming: Option<(f64, f64)>,
    /// The receiver it plays (`NEO-M8T`, `MT3339`, ...), which answers detection and
    /// configuration; `None` sends NMEA and answers nothing.
    pub model: Option<String>,
    /// Answers every configuration command with a refusal (UBX-ACK-NAK, PMTK001 flag 1).
    pub nak_all: bool,
    /// Hears nothing that is sent to it.
    pub deaf: bool,
    /// Resets (back to 9600 baud and its defaults, with a boot banner) after acknowledging
    /// this many configuration commands, once.
    pub reset_after: Option<u32>,
}

/// The simulated receiver of a bare `[source.simulate]`: a good receiver, no faults.
impl Default for GpsSimConfig {
    fn default() -> Self {
        GpsSimConfig {
            clock_offset: 0.0,
            rate: 1,
            sentence_delay: 0.12,
            sentence_jitter: 0.01,
            pps_jitter: 2e-6,
            garbage: 0.0,
            seed: 1,
            fix_loss: None,
            pps_loss: None,
            antenna_fault: None,
            unplug: None,
            jump: None,
            jump_seconds: 86_400.0,
            ubx: SimUbx::Off,
            leap_announce: None,
            spoofing: None,
            jamming: None,
            model: None,
            nak_all: false,
            deaf: false,
            reset_after: None,
        }
    }
}

/// What the simulated receiver sends: NMEA only, NMEA and UBX, or UBX only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimUbx {
    Off,
    Also,
    Only,
}

/// A GPIO line's bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bias {
    AsIs,
    PullUp,
    PullDown,
    Disabled,
}

impl Bias {
    /// As the configuration and the command line spell them, in the order of the variants.
    pub const NAMES: [&str; 4] = ["as-is", "pull-up", "pull-down", "disabled"];

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    pub fn from_name(name: &str) -> Option<Bias> {
        let all = [Bias::AsIs, Bias::PullUp, Bias::PullDown, Bias::Disabled];
        Some(all[Self::NAMES.iter().position(|&n| n == name)?])
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct LongwaveSourceConfig {
    /// The `kind`: which station's time code the module receives.
    pub station: StationKind,
    pub name: String,
    pub select: Select,
    pub chip: PathBuf,
    pub line: u32,
    /// The module's output is low while the carrier is reduced.
    pub active_low: bool,
    pub bias: Bias,
    /// Kernel debounce period, seconds (0: none).
    pub debounce: f64,
    /// A line driven to `pon_level` to power the receiver on.
    pub pon_line: Option<u32>,
    pub pon_level: bool,
    /// From the true second to the pulse's start at the GPIO pin, seconds; `None` when not
    /// set (taken as 0, and an alarm while the source is followed).
    pub receiver_delay: Option<f64>,
    /// Minutes of evidence before the first second is labelled.
    pub confirm: usize,
    pub simulate: Option<LongwaveSimConfig>,
}

/// The simulated longwave receiver (`sim::longwave`), played in real time.
#[derive(Clone, Debug, PartialEq)]
pub struct LongwaveSimConfig {
    /// True time minus the system clock, seconds.
    pub clock_offset: f64,
    pub jitter: f64,
    pub glitch_rate: f64,
    pub wrong_width_rate: f64,
    pub missing_rate: f64,
    pub seed: u64,
}

/// An upstream NTP server polled in client mode (`upstream::client`).
#[derive(Clone, Debug, PartialEq)]
pub struct NtpSourceConfig {
    pub name: String,
    pub select: Select,
    /// Host name or address, resolved at start and again after unanswered polls.
    pub server: String,
    pub port: u16,
    /// Four requests 2 s apart at start and whenever the server is unreachable.
    pub iburst: bool,
    /// Bounds of the poll interval, log2 seconds.
    pub minpoll: i8,
    pub maxpoll: i8,
    /// Symmetric key (an id in `server.keys_file`) that signs requests and must sign replies.
    pub key: Option<u32>,
}

/// The receivers `sim::gps` can play.
pub const SIMULATED_MODELS: [&str; 5] = ["NEO-M8N", "NEO-M8T", "NEO-M9N", "ZED-F9T", "MT3339"];
const SOURCE_KINDS: [&str; 6] = ["local", "gps", "dcf77", "msf", "wwvb", "ntp"];
const BAUD_RATES: [i64; 8] = [4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800];

pub(super) fn read_source(
    mut sec: Section,
    span: std::ops::Range<usize>,
    errs: &mut Errors,
    keys: Option<&KeyStore>,
) -> Option<SourceConfig> {
    if !sec.has("kind") {
        // An unknown profile has been reported already.
        if !sec.has("profile") {
            let kinds = SOURCE_KINDS.join(", ");
            let why = format!("missing, expected one of: {kinds} (or a `profile`)");
            errs.push(span, &sec.key_path("kind"), why);
        }
        return None;
    }
    // Other keys are only checked once the kind is known.
    let kind = sec.optional(errs, "kind", one_of(&SOURCE_KINDS))?;
    let select = Select {
        prefer: sec.value(errs, "prefer", false, any),
        noselect: sec.value(errs, "noselect", false, any),
    };
    let source = match kind.as_str() {
        "local" => Some(SourceConfig::Local(LocalSourceConfig {
            name: sec.value(errs, "name", "local".to_string(), any),
            select,
            stratum: sec.value(errs, "stratum", 10i64, in_range(1u8, 15)) as u8,
        })),
        "gps" => Some(SourceConfig::Gps(Box::new(read_gps(
            &mut sec, errs, select,
        )))),
        name @ ("dcf77" | "msf" | "wwvb") => {
            let station = StationKind::from_name(name).unwrap_or_default();
            let config = read_longwave(&mut sec, errs, select, station);
            Some(SourceConfig::Longwave(Box::new(config)))
        }
        "ntp" => {
            read_ntp(&mut sec, span, errs, select, keys).map(|n| SourceConfig::Ntp(Box::new(n)))
        }
        _ => None,
    };
    sec.finish(errs);
    source
}

fn read_gps(sec: &mut Section, errs: &mut Errors, select: Select) -> GpsSourceConfig {
    let baud_ok = |b: &i64| match BAUD_RATES.contains(b) {
        true => Ok(()),
        false => Err(format!("expected a serial speed: {BAUD_RATES:?}")),
    };
    let delay_ok = |d: &f64| match (-1.0..=2.0).contains(d) {
        true => Ok(()),
        false => Err("expected seconds from -1 to 2".into()),
    };
    sec.replaced(errs, "receiver_jump_confirm", "`discipline.lone_jump`");
    let receiver = sec.has("receiver").then(|| {
        let mut r = sec.table(errs, "receiver");
        let config = read_receiver(&mut r, errs);
        r.finish(errs);
        config
    });
    let simulate = sec.has("simulate").then(|| {
        let mut sim = sec.table(errs, "simulate");
        let config = read_gps_sim(&mut sim, errs);
        sim.finish(errs);
        config
    });
    GpsSourceConfig {
        name: sec.value(errs, "name", "gps".to_string(), any),
        select,
        device: sec
            .value(errs, "device", "/dev/serial0".to_string(), any)
            .into(),
        baud: sec.value(errs, "baud", 9600, baud_ok) as u32,
        pps: pps_input(
            &sec.value(errs, "pps", "/dev/pps0".to_string(), |p: &String| {
                pps_check(p)
            }),
        ),
        pps_edge: match sec
            .value(
                errs,
                "pps_edge",
                "assert".to_string(),
                one_of(&["assert", "clear"]),
            )
            .as_str()
        {
            "clear" => PpsEdge::Clear,
            _ => PpsEdge::Assert,
        },
        sentence_delay: sec.optional(errs, "sentence_delay", delay_ok),
        require_fix: sec.value(errs, "require_fix", true, any),
        hide_position: sec.value(errs, "hide_position", true, any),
        apply_qerr: sec.value(errs, "apply_qerr", false, any),
        simulate,
        receiver,
    }
}

/// `""` (no PPS), `/dev/ppsN`, or `/dev/gpiochipN:LINE`.
fn pps_check(p: &str) -> Result<(), String> {
    match p.split_once(':') {
        Some((_, line)) if line.parse::<u32>().is_err() => {
            Err("expected \"\", a PPS device or CHIP:LINE with a line number".into())
        }
        _ => Ok(()),
    }
}

fn pps_input(p: &str) -> PpsInput {
    match p.rsplit_once(':') {
        _ if p.is_empty() => PpsInput::None,
        Some((chip, line)) => PpsInput::Gpio {
            chip: chip.into(),
            line: line.parse().unwrap_or(0),
        },
        None => PpsInput::Kernel(p.into()),
    }
}

fn non_negative(v: &f64) -> Result<(), String> {
    match v.is_finite() && *v >= 0.0 {
        true => Ok(()),
        false => Err("expected a number >= 0".to_string()),
    }
}

fn share(v: &f64) -> Result<(), String> {
    match (0.0..=1.0).contains(v) {
        true => Ok(()),
        false => Err("expected a share from 0 to 1".to_string()),
    }
}

fn seconds(v: &f64) -> Result<(), String> {
    match v.abs() < 1e6 {
        true => Ok(()),
        false => Err("expected seconds".to_string()),
    }
}

fn read_longwave(
    sec: &mut Section,
    errs: &mut Errors,
    select: Select,
    station: StationKind,
) -> LongwaveSourceConfig {
    let simulate = sec.has("simulate").then(|| {
        let mut sim = sec.table(errs, "simulate");
        let config = LongwaveSimConfig {
            clock_offset: sim.value(errs, "clock_offset", 0.0, seconds),
            jitter: sim.value(errs, "jitter", 0.003, non_negative),
            glitch_rate: sim.value(errs, "glitch_rate", 0.0, non_negative),
            wrong_width_rate: sim.value(errs, "wrong_width_rate", 0.0, share),
            missing_rate: sim.value(errs, "missing_rate", 0.0, share),
            seed: sim.value(errs, "seed", 1i64, in_range(0u64, u64::MAX)) as u64,
        };
        sim.finish(errs);
        config
    });
    LongwaveSourceConfig {
        station,
        name: sec.value(errs, "name", station.name().to_string(), any),
        select,
        chip: sec
            .value(errs, "chip", "/dev/gpiochip-header".to_string(), any)
            .into(),
        line: sec.value(errs, "line", 17i64, in_range(0u32, 511)) as u32,
        active_low: sec.value(errs, "active_low", false, any),
        bias: Bias::from_name(&sec.value(
            errs,
            "bias",
            "pull-up".to_string(),
            one_of(&Bias::NAMES),
        ))
        .unwrap_or(Bias::PullUp),
        debounce: sec.value(errs, "debounce", 0.0, |v: &f64| {
            match (0.0..=0.03).contains(v) {
                true => Ok(()),
                false => Err("expected seconds from 0 to 0.03".to_string()),
            }
        }),
        pon_line: sec
            .optional(errs, "pon_line", in_range(0u32, 511))
            .map(|l: i64| l as u32),
        pon_level: sec.value(errs, "pon_level", 0i64, in_range(0u8, 1)) == 1,
        receiver_delay: sec.optional(errs, "receiver_delay", |v: &f64| {
            match (0.0..0.5).contains(v) {
                true => Ok(()),
                false => Err("expected seconds from 0 to 0.5".to_string()),
            }
        }),
        confirm: sec.value(errs, "confirm", 2i64, in_range(1usize, 10)) as usize,
        simulate,
    }
}

fn read_ntp(
    sec: &mut Section,
    span: std::ops::Range<usize>,
    errs: &mut Errors,
    select: Select,
    keys: Option<&KeyStore>,
) -> Option<NtpSourceConfig> {
    let name: Option<String> = sec.optional(errs, "name", any);
    let server = sec.optional(errs, "server", |s: &String| match s.trim().is_empty() {
        true => Err("expected a host name or address".to_string()),
        false => Ok(()),
    });
    let port = sec.value(errs, "port", 123i64, in_range(1u16, 65535)) as u16;
    let iburst = sec.value(errs, "iburst", true, any);
    let minpoll = sec.value(errs, "minpoll", 6i64, in_range(0i8, 17)) as i8;
    let maxpoll = sec.value(errs, "maxpoll", 10i64, |p: &i64| {
        in_range(0i8, 17)(p)?;
        match *p >= minpoll as i64 {
            true => Ok(()),
            false => Err(format!("expected at least minpoll ({minpoll})")),
        }
    }) as i8;
    let key = sec
        .optional(errs, "key", |id: &i64| {
            in_range(1u32, u32::MAX)(id)?;
            match keys {
                None => Err("requires `server.keys_file`".to_string()),
                Some(k) if !k.contains(*id as u32) => {
                    Err(format!("key {id} is not in `server.keys_file`"))
                }
                Some(_) => Ok(()),
            }
        })
        .map(|k: i64| k as u32);
    let Some(server) = server else {
        if !sec.has("server") {
            let why = "missing, expected the upstream server's host name or address";
            errs.push(span, &sec.key_path("server"), why);
        }
        return None;
    };
    Some(NtpSourceConfig {
        name: name.unwrap_or_else(|| server.clone()),
        select,
        server,
        port,
        iburst,
        minpoll,
        maxpoll: maxpoll.max(minpoll),
        key,
    })
}

fn read_gps_sim(sec: &mut Section, errs: &mut Errors) -> GpsSimConfig {
    let d = GpsSimConfig::default();
    let mut window = |key: &str| {
        sec.optional(errs, key, |&(start, end): &(f64, f64)| match start < end {
            true => Ok(()),
            false => Err("expected [start, end] with start before end".to_string()),
        })
    };
    let fix_loss = window("fix_loss");
    let pps_loss = window("pps_loss");
    let antenna_fault = window("antenna_fault");
    let unplug = window("unplug");
    let jump = window("jump");
    let leap_announce = window("leap_announce");
    let spoofing = window("spoofing");
    let jamming = window("jamming");
    let model = sec.optional(errs, "model", one_of(&SIMULATED_MODELS));
    let nak_all = sec.value(errs, "nak_all", false, any);
    let deaf = sec.value(errs, "deaf", false, any);
    let reset_after = sec
        .optional(errs, "reset_after", in_range(1u32, 1000))
        .map(|n| n as u32);
    // Answering commands is the model's: without one these have nothing to change.
    for key in ["nak_all", "deaf", "reset_after"] {
        if model.is_none() && sec.has(key) {
            let span = sec.span_of(key).unwrap_or_default();
            errs.push(
                span,
                &sec.key_path(key),
                "needs a `model` to answer commands",
            );
        }
    }
    GpsSimConfig {
        clock_offset: sec.value(errs, "clock_offset", d.clock_offset, seconds),
        rate: sec.value(errs, "rate", i64::from(d.rate), in_range(1u32, 10)) as u32,
        sentence_delay: sec.value(errs, "sentence_delay", d.sentence_delay, non_negative),
        sentence_jitter: sec.value(errs, "sentence_jitter", d.sentence_jitter, non_negative),
        pps_jitter: sec.value(errs, "pps_jitter", d.pps_jitter, non_negative),
        garbage: sec.value(errs, "garbage", d.garbage, share),
        seed: sec.value(errs, "seed", d.seed as i64, in_range(0u64, u64::MAX)) as u64,
        fix_loss,
        pps_loss,
        antenna_fault,
        unplug,
        jump,
        jump_seconds: sec.value(errs, "jump_seconds", d.jump_seconds, any),
        ubx: match sec
            .value(
                errs,
                "ubx",
                "off".to_string(),
                one_of(&["off", "also", "only"]),
            )
            .as_str()
        {
            "also" => SimUbx::Also,
            "only" => SimUbx::Only,
            _ => SimUbx::Off,
        },
        leap_announce,
        spoofing,
        jamming,
        model,
        nak_all,
        deaf,
        reset_after,
    }
}

/// A configuration text read as if it were /etc/pitime/t.toml, its errors as printed.
#[cfg(test)]
pub(crate) fn parse_text(text: &str) -> Result<crate::config::Config, Vec<String>> {
    crate::config::Config::parse("t.toml", text, std::path::Path::new("/etc/pitime"))
        .map_err(|e| e.iter().map(ToString::to_string).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    use super::parse_text as parse;

    #[test]
    fn a_gps_source_takes_defaults_and_its_pps_forms() {
        let c = parse("[[source]]\nkind = \"gps\"\n").unwrap();
        let SourceConfig::Gps(g) = &c.sources[0] else {
            panic!()
        };
        assert_eq!(g.device, Path::new("/dev/serial0"));
        assert_eq!((g.baud, g.pps_edge), (9600, PpsEdge::Assert));
        assert_eq!(g.pps, PpsInput::Kernel("/dev/pps0".into()));
        assert_eq!((g.sentence_delay, g.simulate.is_none()), (None, true));
        for (text, pps) in [
            ("\"\"", PpsInput::None),
            (
                "\"/dev/gpiochip0:18\"",
                PpsInput::Gpio {
                    chip: "/dev/gpiochip0".into(),
                    line: 18,
                },
            ),
        ] {
            let c = parse(&format!("[[source]]\nkind = \"gps\"\npps = {text}\n")).unwrap();
            let SourceConfig::Gps(g) = &c.sources[0] else {
                panic!()
            };
            assert_eq!(g.pps, pps);
        }
    }

    #[test]
    fn the_longwave_kinds_share_their_keys_and_name_their_station() {
        let text = "[[source]]\nkind = \"dcf77\"\n[[source]]\nkind = \"msf\"\n\
                    [[source]]\nkind = \"wwvb\"\nactive_low = true\n[source.simulate]\n";
        let c = parse(text).unwrap();
        let kinds = [SourceKind::Dcf77, SourceKind::Msf, SourceKind::Wwvb];
        for (source, (kind, station)) in c.sources.iter().zip(kinds.iter().zip(StationKind::ALL)) {
            let SourceConfig::Longwave(l) = source else {
                panic!()
            };
            assert_eq!((source.kind(), l.station), (*kind, station));
            assert_eq!(l.name, station.name());
        }
        let SourceConfig::Longwave(w) = &c.sources[2] else {
            panic!()
        };
        assert!(w.active_low && w.simulate.is_some());
        assert_eq!(
            parse("[[source]]\nkind = \"wwvb\"\nline = 600\n").unwrap_err(),
            ["t.toml:3:8: `source[0].line`: expected an integer from 0 to 511"]
        );
    }

    #[test]
    fn an_ntp_source_takes_defaults_and_is_named_after_its_server() {
        let c = parse("[[source]]\nkind = \"ntp\"\nserver = \"ptbtime1.ptb.de\"\n").unwrap();
        let SourceConfig::Ntp(n) = &c.sources[0] else {
            panic!()
        };
        assert_eq!(
            (n.name.as_str(), n.server.as_str()),
            ("ptbtime1.ptb.de", "ptbtime1.ptb.de")
        );
        assert_eq!((n.port, n.iburst, n.minpoll, n.maxpoll), (123, true, 6, 10));
        assert_eq!(n.key, None);
        assert_eq!(c.sources[0].kind(), SourceKind::Ntp);
        // A minpoll above the default maxpoll raises it.
        let c = parse("[[source]]\nkind = \"ntp\"\nserver = \"::1\"\nminpoll = 12\n").unwrap();
        let SourceConfig::Ntp(n) = &c.sources[0] else {
            panic!()
        };
        assert_eq!((n.minpoll, n.maxpoll), (12, 12));
    }

    #[test]
    fn ntp_errors_name_the_key() {
        assert_eq!(
            parse("[[source]]\nkind = \"ntp\"\nport = 0\n").unwrap_err(),
            [
                "t.toml:1:1: `source[0].server`: missing, expected the upstream server's host \
                 name or address",
                "t.toml:3:8: `source[0].port`: expected an integer from 1 to 65535"
            ]
        );
        let text = "[[source]]\nkind = \"ntp\"\nserver = \"\"\nminpoll = 18\n\
                    [[source]]\nkind = \"ntp\"\nserver = \"a\"\nminpoll = 8\nmaxpoll = 7\n";
        let errors = parse(text).unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].contains("`source[0].server`: expected a host name or address"));
        assert!(errors[1].contains("`source[0].minpoll`: expected an integer from 0 to 17"));
        assert!(errors[2].contains("`source[1].maxpoll`: expected at least minpoll (8)"));
    }

    #[test]
    fn an_ntp_key_must_be_in_the_keys_file() {
        let dir = std::env::temp_dir().join(format!("pitime-ntp-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let keys = dir.join("ntp.keys");
        std::fs::write(
            &keys,
            "3 SHA1 HEX:0102030405060708090a0b0c0d0e0f1011121314\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();
        let source = "[[source]]\nkind = \"ntp\"\nserver = \"a\"\n";
        let with_keys = format!("[server]\nkeys_file = \"{}\"\n{source}", keys.display());
        let c = parse(&format!("{with_keys}key = 3\n")).unwrap();
        let SourceConfig::Ntp(n) = &c.sources[0] else {
            panic!()
        };
        assert_eq!(n.key, Some(3));
        let errors = parse(&format!("{with_keys}key = 4\n")).unwrap_err();
        assert_eq!(
            errors,
            ["t.toml:6:7: `source[0].key`: key 4 is not in `server.keys_file`"]
        );
        let errors = parse(&format!("{source}key = 3\n")).unwrap_err();
        assert_eq!(
            errors,
            ["t.toml:4:7: `source[0].key`: requires `server.keys_file`"]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn source_names_must_differ() {
        let errors = parse("[[source]]\nkind = \"gps\"\n[[source]]\nkind = \"gps\"\n").unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("`source[1].name`: `gps` is the name of another source"));
    }

    #[test]
    fn gps_errors_name_the_key() {
        let text = "[[source]]\nkind = \"gps\"\nbaud = 1234\npps = \"/dev/gpiochip0:x\"\n\
                    sentence_delay = 5\n[source.simulate]\nfix_loss = [5, 1]\nunplug = 3\nrate = 0\n";
        let errors = parse(text).unwrap_err();
        let keys: Vec<&str> = errors
            .iter()
            .map(|e| e.split('`').nth(1).unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "source[0].baud",
                "source[0].pps",
                "source[0].sentence_delay",
                "source[0].simulate.fix_loss",
                "source[0].simulate.unplug",
                "source[0].simulate.rate"
            ],
            "{errors:?}"
        );
    }
}
