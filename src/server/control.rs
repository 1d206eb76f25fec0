//! Answers to `ntpq` and the monitoring plugins (NTP mode 6, read-only): the association list
//! with status words (READSTAT) and the system's and each association's variables (READVAR),
//! formatted as ntpd formats them. Pure: the clock, the associations and the policy come in.
//!
//! Mode 6 answers are larger than the requests, which made it an amplifier on the internet. So:
//! only sources in `query_allow` get anything at all (a forged request cannot aim a reply at
//! anyone outside it), each client is rate-limited with no leak, a response is at most
//! `MAX_FRAGMENTS` fragments, and nothing can change state: writes and configuration are refused.

use std::fmt::Display;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::ratelimit::{RateLimiter, Verdict};
use super::respond::Policy;
use super::stats::Outcome;
use crate::discipline::refid_text;
use crate::discipline::snapshot::ClockSnapshot;
use crate::discipline::statsfiles::{peer_status_word, PeerSelect};
use crate::ntp::control::{
    self, ErrorCode, Invalid, ReplyTo, Request, Variables, MAX_DATA, MAX_FRAGMENT, OP_READSTAT,
    OP_READVAR,
};
use crate::ntp::keys::Key;
use crate::time::{NtpTimestamp, Realtime};

/// Fragments in the longest response; anything beyond is left out.
pub const MAX_FRAGMENTS: usize = 4;
const MAX_RESPONSE: usize = MAX_FRAGMENTS * MAX_DATA;

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

/// Opcodes that would change state (ntpd's WRITEVAR, WRITECLOCK, SETTRAP, CONFIGURE, UNSETTRAP).
const OP_WRITEVAR: u8 = 3;
const OP_WRITECLOCK: u8 = 5;
const OP_SETTRAP: u8 = 6;
const OP_CONFIGURE: u8 = 8;
const OP_UNSETTRAP: u8 = 31;

/// Whether a datagram is a control message (mode 6), for this module rather than `respond`.
pub fn is_control(datagram: &[u8]) -> bool {
    datagram
        .first()
        .is_some_and(|b| b & 7 == control::MODE_CONTROL)
}

/// What to do with one mode 6 datagram.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// The fragments to send, and what to count.
    Reply(Vec<Vec<u8>>, Outcome),
    Drop(Outcome),
}

/// Decides what to answer to a mode 6 `request` from `peer` at `now`.
pub fn respond(
    request: &[u8],
    peer: IpAddr,
    now: Realtime,
    clock: &ClockSnapshot,
    view: &ControlView,
    policy: &Policy,
    limiter: &mut RateLimiter,
) -> Decision {
    if !policy.query_access.permits(peer) {
        return Decision::Drop(Outcome::DropControlDenied);
    }
    if let Verdict::Limited { .. } = limiter.check(peer, now.as_nanos()) {
        return Decision::Drop(Outcome::DropControlRateLimited);
    }
    let leap = clock.served_leap() as u8;
    let req = match Request::parse(request) {
        Ok(req) => req,
        Err(Invalid::Ignore) => return Decision::Drop(Outcome::DropMalformed),
        Err(Invalid::BadFormat(to)) => return error(&to, leap, ErrorCode::BadFormat, None),
    };
    let sign = match req.mac {
        None => None,
        Some(mac) => {
            let signed = &request[..mac.signed_len];
            let key = policy.keys.get(mac.key_id).filter(|k| {
                policy.trusts(mac.key_id) && k.algorithm.verify(&k.secret, 3, signed, mac.digest)
            });
            match key {
                Some(key) => Some(Signer {
                    key,
                    id: mac.key_id,
                    digest_len: mac.digest.len(),
                }),
                // A request that tries to authenticate and fails is refused, not served as
                // unsigned: its sender expects a signed answer.
                None => return error(&req.reply_to(), leap, ErrorCode::Permission, None),
            }
        }
    };
    let to = req.reply_to();
    let associations = &view.associations[..];
    let find = |id| associations.iter().find(|a| a.id == id);
    let response = match (req.opcode, req.association) {
        (OP_READSTAT, 0) => Ok((
            system_status(clock, associations),
            read_status(associations),
        )),
        (OP_READSTAT | OP_READVAR, id) if id != 0 => match find(id) {
            None => Err(ErrorCode::BadAssociation),
            Some(a) => peer_variables(a, &req).map(|v| (peer_status(a), v)),
        },
        (OP_READVAR, _) => system_variables(clock, view, &req, now)
            .map(|v| (system_status(clock, associations), v)),
        // Writes, configuration, traps: never. ntpd answers a forbidden operation with a
        // permission error, which ntpq shows for what it is.
        (OP_WRITEVAR | OP_WRITECLOCK | OP_SETTRAP | OP_CONFIGURE | OP_UNSETTRAP, _) => {
            Err(ErrorCode::Permission)
        }
        // Clock variables, MRU lists (which would tell who the clients are), nonces: not served.
        _ => Err(ErrorCode::BadOpcode),
    };
    match response {
        Ok((status, data)) => Decision::Reply(
            fragments(&to, leap, status, &data, sign.as_ref()),
            Outcome::ControlAnswered,
        ),
        Err(code) => error(&to, leap, code, sign.as_ref()),
    }
}

/// Signs response fragments with the key (and digest length) the request was signed with.
struct Signer<'a> {
    key: &'a Key,
    id: u32,
    digest_len: usize,
}

/// One datagram, written by `write` into a buffer long enough for any fragment, then signed
/// after its data padded to 8 bytes, as ntpd signs.
fn datagram(write: impl FnOnce(&mut [u8]) -> usize, sign: Option<&Signer>) -> Vec<u8> {
    let mut out = vec![0u8; MAX_FRAGMENT];
    let mut len = write(&mut out);
    if let Some(s) = sign {
        len = s
            .key
            .sign_with_digest(s.id, &mut out, control::signed_len(len), s.digest_len);
    }
    out.truncate(len);
    out
}

fn error(to: &ReplyTo, leap: u8, code: ErrorCode, sign: Option<&Signer>) -> Decision {
    let out = datagram(|out| control::write_error(out, to, leap, code), sign);
    Decision::Reply(vec![out], Outcome::ControlError)
}

/// `data` (at most `MAX_RESPONSE` bytes of it) in fragments of `MAX_DATA`.
fn fragments(
    to: &ReplyTo,
    leap: u8,
    status: u16,
    data: &[u8],
    sign: Option<&Signer>,
) -> Vec<Vec<u8>> {
    let data = &data[..data.len().min(MAX_RESPONSE)];
    let count = data.len().div_ceil(MAX_DATA).max(1);
    (0..count)
        .map(|i| {
            let chunk = &data[i * MAX_DATA..data.len().min((i + 1) * MAX_DATA)];
            let more = i + 1 < count;
            let write = |out: &mut [u8]| {
                control::write_fragment(out, to, leap, status, i * MAX_DATA, chunk, more)
            };
            datagram(write, sign)
        })
        .collect()
}

fn system_peer(associations: &[Association]) -> Option<&Association> {
    associations
        .iter()
        .find(|a| a.selection == PeerSelect::SysPeer)
}

fn system_status(clock: &ClockSnapshot, associations: &[Association]) -> u16 {
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

fn peer_status(a: &Association) -> u16 {
    peer_status_word(a.selection, a.reach != 0)
}

fn read_status(associations: &[Association]) -> Vec<u8> {
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

const SYSTEM_VARIABLES: [&str; 20] = [
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

fn system_variables(
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

fn peer_variables(a: &Association, req: &Request) -> Result<Vec<u8>, ErrorCode> {
    let mut v = Selector::new(req, &PEER_VARIABLES)?;
    let ms = |s: Option<f64>| format!("{:.6}", s.unwrap_or(0.0) * 1e3);
    let unspecified = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
    let (address, local) = match a.origin {
        Origin::Refclock { driver, unit, .. } => (
            SocketAddr::from((Ipv4Addr::new(127, 127, driver, unit), 0)),
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        ),
        Origin::Server(address) => (address.unwrap_or(unspecified), unspecified),
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ntp::keys::KeyStore;
    use crate::server::respond::tests::{clock, policy, KEYS};
    use proptest::prelude::*;

    const NOW: Realtime = Realtime::from_nanos(1_800_000_010_000_000_000);
    const LOOPBACK: &str = "127.0.0.1";

    fn association(id: u16, selection: PeerSelect, origin: Origin) -> Association {
        Association {
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
            last_sample: Some(NOW.add_secs_f64(-1.0)),
        }
    }

    fn view() -> ControlView {
        let pps = Origin::Refclock {
            driver: 20,
            unit: 0,
            source: source::PPS,
        };
        let server = Origin::Server(Some("192.0.2.1:123".parse().unwrap()));
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

    fn request(opcode: u8, association: u16, data: &str) -> Vec<u8> {
        let mut p = vec![2 << 3 | control::MODE_CONTROL, opcode, 0, 9, 0, 0];
        p.extend_from_slice(&association.to_be_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(&(data.len() as u16).to_be_bytes());
        p.extend_from_slice(data.as_bytes());
        p.resize(p.len().next_multiple_of(4), 0);
        p
    }

    fn limiter(policy: &Policy) -> RateLimiter {
        RateLimiter::new(crate::server::ratelimit::Params {
            leak: 0.0,
            ..policy.limits
        })
    }

    fn ask(req: &[u8], from: &str, view: &ControlView) -> Decision {
        let p = policy();
        respond(
            req,
            from.parse().unwrap(),
            NOW,
            &clock(),
            view,
            &p,
            &mut limiter(&p),
        )
    }

    /// The fragments' data put together, and the last fragment's status word.
    fn answer(req: &[u8], view: &ControlView) -> (String, u16, Vec<Vec<u8>>) {
        let Decision::Reply(fragments, Outcome::ControlAnswered) = ask(req, LOOPBACK, view) else {
            panic!("no answer to {req:?}");
        };
        let mut data = Vec::new();
        for f in &fragments {
            let count = u16::from_be_bytes([f[10], f[11]]) as usize;
            data.extend_from_slice(&f[12..12 + count]);
        }
        let last = fragments.last().unwrap();
        let status = u16::from_be_bytes([last[4], last[5]]);
        (
            String::from_utf8_lossy(&data).into_owned(),
            status,
            fragments,
        )
    }

    fn error_code(req: &[u8]) -> u8 {
        match ask(req, LOOPBACK, &view()) {
            Decision::Reply(f, Outcome::ControlError) => {
                assert_eq!((f.len(), f[0].len(), f[0][1] & 0xc0), (1, 12, 0xc0));
                f[0][4]
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_association_list_has_ntpd_status_words() {
        let (_, status, fragments) = answer(&request(OP_READSTAT, 0, ""), &view());
        // Leap indicator 1 (the test clock announces a leap second), clock source PPS, one
        // event, clock_sync.
        assert_eq!(status, 0x4115);
        let f = &fragments[0];
        assert_eq!(f[..4], [0x56, 0x81, 0, 9]);
        assert_eq!(f[12..20], [0, 1, 0x96, 0x00, 0, 2, 0x80, 0x00]);
    }

    #[test]
    fn system_variables_are_formatted_as_ntpd_does() {
        let (text, _, _) = answer(&request(OP_READVAR, 0, ""), &view());
        for item in [
            "version=\"pitime ",
            "leap=1,",
            "stratum=1,",
            "precision=-20,",
            "rootdelay=0.000,",
            // 1 us, and 10 s since the reference time at 15 ppm.
            "rootdisp=0.151,",
            "refid=PPS",
            "reftime=0x",
            "peer=1",
            "offset=-0.012500",
            "frequency=3.250",
            "sys_jitter=0.002000",
            "clk_wander=0.010000",
        ] {
            assert!(text.contains(item), "{item} in {text}");
        }
        assert!(text.ends_with("\r\n"));
        let (text, _, _) = answer(&request(OP_READVAR, 0, "offset,stratum"), &view());
        assert_eq!(text, "stratum=1, offset=-0.012500\r\n");
    }

    #[test]
    fn association_variables_show_refclocks_as_ntpd_does() {
        let (text, status, _) = answer(&request(OP_READVAR, 1, ""), &view());
        assert_eq!(status, 0x9600);
        for item in [
            "srcadr=127.127.20.0, srcport=0, srchost=\"source1(0)\"",
            "stratum=0, refid=PPS",
            "reach=0xff",
            "hmode=3",
            "flash=0x0",
            "offset=-0.012500",
            "jitter=0.002000",
        ] {
            assert!(text.contains(item), "{item} in {text}");
        }
        let (text, status, _) = answer(&request(OP_READVAR, 2, "srcadr,reach,flash"), &view());
        assert_eq!(status, 0x8000);
        assert_eq!(text, "srcadr=192.0.2.1, reach=0x0, flash=0x1000\r\n");
        let (text, _, _) = answer(&request(OP_READSTAT, 1, ""), &view());
        assert!(text.contains("srcadr=127.127.20.0"));
    }

    #[test]
    fn unknown_associations_variables_and_opcodes_are_errors() {
        assert_eq!(error_code(&request(OP_READVAR, 7, "")), 4);
        assert_eq!(error_code(&request(OP_READSTAT, 0xffff, "")), 4);
        assert_eq!(error_code(&request(OP_READVAR, 0, "offset,nonsense")), 5);
        assert_eq!(error_code(&request(OP_READVAR, 1, "\u{ff}")), 5);
        for op in [10, 12, 0, 4, 30] {
            assert_eq!(error_code(&request(op, 0, "")), 3, "opcode {op}");
        }
        let mut lying = request(OP_READVAR, 0, "offset");
        lying[11] = 200;
        assert_eq!(error_code(&lying), 2);
    }

    #[test]
    fn writes_and_configuration_are_refused() {
        for op in [
            OP_WRITEVAR,
            OP_WRITECLOCK,
            OP_SETTRAP,
            OP_CONFIGURE,
            OP_UNSETTRAP,
        ] {
            assert_eq!(error_code(&request(op, 0, "leap=1")), 1, "opcode {op}");
        }
    }

    #[test]
    fn responses_fragments_and_denied_sources_get_nothing() {
        let mut response = request(OP_READSTAT, 0, "");
        response[1] |= 0x80;
        assert_eq!(
            ask(&response, LOOPBACK, &view()),
            Decision::Drop(Outcome::DropMalformed)
        );
        assert_eq!(
            ask(&request(OP_READSTAT, 0, ""), "192.0.2.7", &view()),
            Decision::Drop(Outcome::DropControlDenied)
        );
        // Not even an error for a malformed one.
        assert_eq!(
            ask(&request(OP_CONFIGURE, 0, "x"), "::ffff:10.0.0.1", &view()),
            Decision::Drop(Outcome::DropControlDenied)
        );
    }

    #[test]
    fn clients_over_the_rate_get_nothing() {
        let p = policy();
        let mut limiter = limiter(&p);
        let req = request(OP_READSTAT, 0, "");
        let peer = LOOPBACK.parse().unwrap();
        let mut ask = || respond(&req, peer, NOW, &clock(), &view(), &p, &mut limiter);
        for _ in 0..p.limits.burst {
            assert!(matches!(ask(), Decision::Reply(..)));
        }
        assert_eq!(ask(), Decision::Drop(Outcome::DropControlRateLimited));
    }

    #[test]
    fn long_responses_are_fragmented_and_bounded() {
        let mut v = view();
        let one = v.associations[0].clone();
        v.associations = (1..=1000)
            .map(|id| Association { id, ..one.clone() })
            .collect();
        let (_, _, fragments) = answer(&request(OP_READSTAT, 0, ""), &v);
        assert_eq!(fragments.len(), MAX_FRAGMENTS);
        for (i, f) in fragments.iter().enumerate() {
            let offset = u16::from_be_bytes([f[8], f[9]]) as usize;
            assert_eq!(offset, i * MAX_DATA);
            assert_eq!(f[1] & 0x20 != 0, i + 1 < MAX_FRAGMENTS, "more bit of {i}");
            assert_eq!(f.len(), 12 + MAX_DATA);
        }
        // A long name in every variable list is cut at an item, within the bound.
        v.associations[0].name = "n".repeat(3000);
        let (text, _, fragments) = answer(&request(OP_READVAR, 1, ""), &v);
        assert!(fragments.len() <= MAX_FRAGMENTS && !text.contains("nnnnn"));
    }

    #[test]
    fn signed_requests_get_signed_answers() {
        let keys = KeyStore::parse(KEYS).unwrap();
        let p = Policy {
            keys: keys.clone(),
            ..policy()
        };
        for id in 1..=4 {
            let key = keys.get(id).unwrap();
            let mut req = request(OP_READVAR, 0, "stratum");
            req.resize(req.len().next_multiple_of(8), 0);
            let signed = req.len();
            req.resize(signed + 4 + 64, 0);
            let len = key.sign_with_digest(id, &mut req, signed, key.algorithm.digest_len(3));
            req.truncate(len);
            let peer = LOOPBACK.parse().unwrap();
            let d = respond(&req, peer, NOW, &clock(), &view(), &p, &mut limiter(&p));
            let Decision::Reply(fragments, Outcome::ControlAnswered) = d else {
                panic!("key {id}: {d:?}");
            };
            // "stratum=1\r\n" padded to 8 bytes, then the MAC.
            let f = &fragments[0];
            assert_eq!(f.len(), 24 + 4 + key.algorithm.digest_len(3), "key {id}");
            assert_eq!(f[24..28], id.to_be_bytes());
            assert!(key.algorithm.verify(&key.secret, 3, &f[..24], &f[28..]));
            // A wrong digest is refused, not answered unsigned.
            *req.last_mut().unwrap() ^= 1;
            let d = respond(&req, peer, NOW, &clock(), &view(), &p, &mut limiter(&p));
            let Decision::Reply(f, Outcome::ControlError) = d else {
                panic!("key {id}: {d:?}");
            };
            assert_eq!(f[0][4], ErrorCode::Permission as u8);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]
        #[test]
        fn never_panics_and_stays_bounded(
            data in proptest::collection::vec(any::<u8>(), 0..600),
            head in any::<[u8; 12]>(),
            denied in any::<bool>(),
        ) {
            // Most cases get a plausible header so the deeper paths are reached.
            let mut p = head.to_vec();
            p[0] = p[0] & 0x38 | control::MODE_CONTROL;
            p[1] &= 0x1f;
            p[8] = 0;
            p[9] = 0;
            p.extend_from_slice(&data);
            let from = if denied { "198.51.100.1" } else { LOOPBACK };
            match ask(&p, from, &view()) {
                Decision::Reply(fragments, _) => {
                    prop_assert!(!denied);
                    prop_assert!(fragments.len() <= MAX_FRAGMENTS);
                    prop_assert!(fragments.iter().all(|f| f.len() <= MAX_FRAGMENT));
                }
                Decision::Drop(_) => {}
            }
        }
    }
}
