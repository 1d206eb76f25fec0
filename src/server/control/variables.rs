//! What ntpq is told: the sources and the loop as the daemon publishes them, rendered as ntpd's
//! status words and system and peer variables (names, units and formats as ntpd's).

use std::fmt::Display;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::MAX_RESPONSE;
use crate::discipline::refid_text;
use crate::discipline::snapshot::ClockSnapshot;
use crate::ntp::control::{peer_status_word, PeerSelect};
use crate::ntp::control::{ErrorCode, Request, Variables};
use crate::time::{NtpTimestamp, Realtime};

/// Where an association's time comes from, as ntpd tells it.
#[derive(Clone, Debug, PartialEq)]
pub enum Origin {
    /// A reference clock: ntpd's driver type (the `127.127.TYPE.UNIT` pseudo-address) and the
    /// clock source code of the system status word.
    Refclock { driver: u8, unit: u8, source: u8 },
    /// An NTP server, when its address is known.
    Server(Option<SocketAddr>),
}

/// One source, as the daemon publishes it for the control responder once a second.
#[derive(Clone, Debug, PartialEq)]
pub struct Association {
    pub id: u16,
    /// The source's name in the configuration.
    pub name: String,
    pub origin: Origin,
    pub selection: PeerSelect,
    pub reach: u8,
    pub stratum: u8,
    pub refid: String,
    /// log2 of the interval between samples, seconds.
    pub poll: i8,
    /// Reference minus served time, its jitter, round-trip delay and error bound: seconds.
    pub offset: Option<f64>,
    pub jitter: Option<f64>,
    pub delay: Option<f64>,
    pub dispersion: Option<f64>,
    /// When its last sample came.
    pub last_sample: Option<Realtime>,
}

/// What the clock's loop says, as ntpd's loopstats records it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LoopView {
    /// Offset of the followed sources from the loop and their jitter, seconds.
    pub offset: f64,
    pub jitter: f64,
    /// The learned frequency and its uncertainty, ppm.
    pub frequency_ppm: f64,
    pub wander_ppm: f64,
}

/// What the daemon publishes for the control responder once a second.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ControlView {
    pub associations: Vec<Association>,
    /// `None` until the loop has a frequency.
    pub loop_view: Option<LoopView>,
}

impl ControlView {
    /// A receiver followed through its pulse (association 1) and an unreachable NTP server
    /// (association 2), as of `now`: for tests and fuzzing.
    #[doc(hidden)]
    pub fn example(now: Realtime) -> ControlView {
        let association = |id: u16, selection, origin| Association {
            id,
            name: format!("source{id}"),
            origin,
            selection,
            reach: 0o377,
            stratum: 0,
            refid: "PPS".into(),
            poll: 0,
            offset: Some(-12.5e-6),
            jitter: Some(2e-6),
            delay: None,
            dispersion: Some(1e-6),
            last_sample: Some(now.add_secs_f64(-1.0)),
        };
        let pps = Origin::Refclock {
            driver: 20,
            unit: 0,
            source: source::PPS,
        };
        let server = Origin::Server(Some(([192, 0, 2, 1], 123).into()));
        let mut unreachable = association(2, PeerSelect::Reject, server);
        unreachable.reach = 0;
        ControlView {
            associations: vec![association(1, PeerSelect::SysPeer, pps), unreachable],
            loop_view: Some(LoopView {
                offset: -12.5e-6,
                jitter: 2e-6,
                frequency_ppm: 3.25,
                wander_ppm: 0.01,
            }),
        }
    }
}

/// ntpd's clock source codes (system status word) for the sources pitime has.
pub mod source {
    pub const PPS: u8 = 1;
    pub const LF_RADIO: u8 = 2;
    pub const UHF_RADIO: u8 = 4;
    pub const LOCAL: u8 = 5;
    pub const NTP: u8 = 6;
}

/// ntpd's system event codes: the clock is synchronised, or has no source.
const EVENT_CLOCK_SYNC: u16 = 5;
const EVENT_NO_SYS_PEER: u16 = 8;
/// The flash bit ntpd sets on an unreachable peer.
const FLASH_UNREACHABLE: u16 = 0x1000;
/// ntpd's host mode for a client association.
const MODE_CLIENT: u8 = 3;

fn system_peer(associations: &[Association]) -> Option<&Association> {
    associations
        .iter()
        .find(|a| a.selection == PeerSelect::SysPeer)
}

pub(super) fn system_status(clock: &ClockSnapshot, associations: &[Association]) -> u16 {
    let peer = system_peer(associations).filter(|_| clock.synchronised);
    let source = peer.map_or(0, |p| match p.origin {
        Origin::Refclock { source, .. } => source,
        Origin::Server(_) => source::NTP,
    });
    let event = if peer.is_some() {
        EVENT_CLOCK_SYNC
    } else {
        EVENT_NO_SYS_PEER
    };
    (clock.served_leap() as u16) << 14 | u16::from(source & 0x3f) << 8 | 1 << 4 | event
}

pub(super) fn peer_status(a: &Association) -> u16 {
    peer_status_word(a.selection, a.reach != 0)
}

pub(super) fn read_status(associations: &[Association]) -> Vec<u8> {
    associations
        .iter()
        .take(MAX_RESPONSE / 4)
        .flat_map(|a| {
            let [i0, i1] = a.id.to_be_bytes();
            let [s0, s1] = peer_status(a).to_be_bytes();
            [i0, i1, s0, s1]
        })
        .collect()
}

/// The variables asked for by name, or all of them: unknown names are an error, as in ntpd.
struct Selector<'a> {
    wanted: Option<Vec<&'a str>>,
    out: Variables,
}

impl<'a> Selector<'a> {
    fn new(req: &Request<'a>, known: &[&str]) -> Result<Self, ErrorCode> {
        let wanted = req.variable_names().ok_or(ErrorCode::UnknownVariable)?;
        if wanted.iter().any(|n| !known.contains(n)) {
            return Err(ErrorCode::UnknownVariable);
        }
        Ok(Selector {
            wanted: (!wanted.is_empty()).then_some(wanted),
            out: Variables::new(MAX_RESPONSE),
        })
    }

    fn put(&mut self, name: &str, value: impl Display) {
        let wanted = self.wanted.as_ref().is_none_or(|w| w.contains(&name));
        if wanted {
            self.out.push(name, format_args!("{value}"));
        }
    }
}

const SYSTEM_VARIABLES: [&str; 22] = [
    "version",
    "processor",
    "system",
    "leap",
    "stratum",
    "precision",
    "rootdelay",
    "rootdisp",
    "refid",
    "reftime",
    "clock",
    "peer",
    "peeradr",
    "peermode",
    "tc",
    "mintc",
    "offset",
    "frequency",
    "sys_jitter",
    "clk_jitter",
    "clk_wander",
    "rootdist",
];

fn ntp_time(t: NtpTimestamp) -> String {
    format!("0x{:08x}.{:08x}", t.0 >> 32, t.0 & 0xffff_ffff)
}

pub(super) fn system_variables(
    clock: &ClockSnapshot,
    view: &ControlView,
    req: &Request,
    now: Realtime,
) -> Result<Vec<u8>, ErrorCode> {
    let mut v = Selector::new(req, &SYSTEM_VARIABLES)?;
    let served = clock.correction.apply(now);
    let stratum = clock.served_stratum();
    let peer = system_peer(&view.associations);
    let ms = |s: f64| s * 1e3;
    let root_dispersion = clock.root_dispersion_at(served);
    v.put(
        "version",
        format_args!("\"pitime {}\"", env!("CARGO_PKG_VERSION")),
    );
    v.put("processor", format_args!("\"{}\"", std::env::consts::ARCH));
    v.put("system", format_args!("\"{}\"", std::env::consts::OS));
    v.put("leap", clock.served_leap() as u8);
    v.put("stratum", stratum);
    v.put("precision", clock.precision);
    v.put("rootdelay", format_args!("{:.3}", ms(clock.root_delay)));
    v.put("rootdisp", format_args!("{:.3}", ms(root_dispersion)));
    v.put(
        "rootdist",
        format_args!("{:.3}", ms(clock.root_delay / 2.0 + root_dispersion)),
    );
    v.put("refid", refid_text(&clock.refid, stratum));
    v.put("reftime", ntp_time(clock.served_reference()));
    v.put("clock", ntp_time(served.to_ntp()));
    v.put("peer", peer.map_or(0, |p| p.id));
    let peer_address = peer.map_or(UNSPECIFIED, |p| addresses(p).0);
    v.put("peeradr", format_args!("\"{peer_address}\""));
    v.put("peermode", if peer.is_some() { MODE_CLIENT } else { 0 });
    let poll = peer.map_or(0, |p| p.poll.max(0));
    v.put("tc", poll);
    v.put("mintc", 0);
    let l = view.loop_view.unwrap_or_default();
    v.put("offset", format_args!("{:.6}", ms(l.offset)));
    v.put("frequency", format_args!("{:.3}", l.frequency_ppm));
    v.put("sys_jitter", format_args!("{:.6}", ms(l.jitter)));
    v.put("clk_jitter", format_args!("{:.6}", ms(l.jitter)));
    v.put("clk_wander", format_args!("{:.6}", l.wander_ppm));
    Ok(v.out.finish())
}

const PEER_VARIABLES: [&str; 19] = [
    "srcadr",
    "srcport",
    "srchost",
    "dstadr",
    "dstport",
    "leap",
    "stratum",
    "refid",
    "rec",
    "reach",
    "hmode",
    "hpoll",
    "ppoll",
    "flash",
    "offset",
    "delay",
    "dispersion",
    "jitter",
    "name",
];

const UNSPECIFIED: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);

/// An association's address and the local one it is reached from, as ntpd gives them: a
/// reference clock's pseudo-address from loopback; a server's, from an unknown local address.
fn addresses(a: &Association) -> (SocketAddr, SocketAddr) {
    match a.origin {
        Origin::Refclock { driver, unit, .. } => (
            SocketAddr::from((Ipv4Addr::new(127, 127, driver, unit), 0)),
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        ),
        Origin::Server(address) => (address.unwrap_or(UNSPECIFIED), UNSPECIFIED),
    }
}

pub(super) fn peer_variables(a: &Association, req: &Request) -> Result<Vec<u8>, ErrorCode> {
    let mut v = Selector::new(req, &PEER_VARIABLES)?;
    let ms = |s: Option<f64>| format!("{:.6}", s.unwrap_or(0.0) * 1e3);
    let (address, local) = addresses(a);
    v.put("srcadr", address.ip());
    v.put("srcport", address.port());
    if let Origin::Refclock { unit, .. } = a.origin {
        // ntpq takes a `srchost` with parentheses for a reference clock.
        v.put("srchost", format_args!("\"{}({unit})\"", quoted(&a.name)));
    }
    v.put("dstadr", local.ip());
    v.put("dstport", local.port());
    v.put("leap", if a.reach == 0 { 3 } else { 0 });
    v.put("stratum", a.stratum);
    v.put("refid", &a.refid);
    if let Some(t) = a.last_sample {
        v.put("rec", ntp_time(t.to_ntp()));
    }
    v.put("reach", format_args!("{:#x}", a.reach));
    v.put("hmode", MODE_CLIENT);
    v.put("hpoll", a.poll);
    v.put("ppoll", a.poll);
    let flash = if a.reach == 0 { FLASH_UNREACHABLE } else { 0 };
    v.put("flash", format_args!("{flash:#x}"));
    v.put("offset", ms(a.offset));
    v.put("delay", ms(a.delay));
    v.put("dispersion", ms(a.dispersion));
    v.put("jitter", ms(a.jitter));
    v.put("name", format_args!("\"{}\"", quoted(&a.name)));
    Ok(v.out.finish())
}

/// A name made safe inside ntpd's quoted values (no quotes, commas or control characters).
fn quoted(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '"' | ',' | '=' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect()
}
