//! One entry point per parser of outside input, taking arbitrary bytes: the fuzz targets in
//! `fuzz/` (cargo-fuzz) call them, and `tests/fuzz_corpus.rs` replays every saved input through
//! them on the stable compiler. Each checks the promise its parser makes beyond not panicking.

use std::net::IpAddr;

use crate::clock::change::ClockChange;
use crate::config::Config;
use crate::discipline::snapshot::ClockSnapshot;
use crate::discipline::{driftfile, leapfile};
use crate::ntp::control::MAX_FRAGMENT;
use crate::ntp::keys::KeyStore;
use crate::ntp::nts::aead::{Algorithm, SessionKeys};
use crate::ntp::nts::record;
use crate::ntp::packet::HEADER_LEN;
use crate::ntp::packet::MAX_REPLY_LEN;
use crate::refclock::gps::clock::{ClockOptions, GpsClock};
use crate::refclock::gps::decoder::{build_date, DecoderOptions, NmeaDecoder};
use crate::refclock::gps::nmea::LineReader;
use crate::refclock::gps::ubx::{self, FrameReader, Message, Piece, ReceiverStream};
use crate::refclock::longwave::decoder::decode;
use crate::refclock::longwave::station::StationKind;
use crate::server::acl::AccessList;
use crate::server::control::{self, ControlView};
use crate::server::interleave::{self, Interleave};
use crate::server::nts::cookie::{CookieKeys, MasterKey, MAX_COOKIE_LEN, NONCE_LEN};
use crate::server::nts::exchange::{negotiate, Negotiation};
use crate::server::ratelimit::{self, RateLimiter};
use crate::server::respond::{finish, respond, Decision, Policy, Refusal};
use crate::server::stats::ServerStats;
use crate::time::{NtpTimestamp, Realtime};

/// Keys of every algorithm, so that signed requests reach the MAC checks.
const KEYS: &str = "1 MD5 md5secret\n2 SHA1 HEX:0102030405060708090a0b0c0d0e0f1011121314\n\
                    3 AES128 HEX:000102030405060708090a0b0c0d0e0f\n4 SHA256 sha256secret\n";

/// Who may ask: everyone but 192.0.2.128/25 for time, 192.0.2.0/26 for mode 6; every MAC
/// algorithm; rate limits that the second of two requests meets.
fn policy() -> Policy {
    let cidr = |text: &str| text.parse().expect("a network");
    Policy {
        access: AccessList {
            allow: vec![cidr("0.0.0.0/0")],
            deny: vec![cidr("192.0.2.128/25")],
        },
        deny_action: Refusal::Kiss,
        limits: ratelimit::Params {
            interval: 8.0,
            burst: 1,
            ipv4_prefix: 32,
            ipv6_prefix: 64,
            max_clients: 16,
            leak: 0.5,
        },
        rate_limit: true,
        rate_action: Refusal::Kiss,
        keys: KeyStore::parse(KEYS).expect("the fuzz keys parse"),
        trusted_keys: None,
        require_auth: false,
        query_access: AccessList {
            allow: vec![cidr("192.0.2.0/26")],
            deny: Vec::new(),
        },
        nts: Some(std::sync::Arc::new(nts_keys())),
    }
}

/// The fuzz policy's NTS cookie keys: one master key, fixed, so requests can carry cookies.
fn nts_keys() -> CookieKeys {
    CookieKeys::new(vec![MasterKey {
        id: 1,
        created: 0,
        key: [7; 32],
    }])
}

const RX: Realtime = Realtime::from_nanos(1_800_000_010_000_000_000);

/// The client a datagram comes from: its first byte picks the last of 192.0.2.x, allowed to ask
/// for time or not, for mode 6 or not.
fn peer(data: &[u8]) -> IpAddr {
    [192, 0, 2, data.first().copied().unwrap_or(0)].into()
}

/// An NTP request through the responder, twice from one address (the second meets the rate
/// limiter, and may be interleaved): never a reply larger than the request (no amplification).
pub fn ntp_request(data: &[u8]) {
    let (policy, clock) = (policy(), ClockSnapshot::example());
    let mut limiter = RateLimiter::new(policy.limits);
    // The second request may be interleaved: the first reply's transmit time is known then.
    let (mut table, stats) = (Interleave::new(16), ServerStats::default());
    for _ in 0..2 {
        let mut out = [0u8; MAX_REPLY_LEN];
        let decision = respond(
            data,
            peer(data),
            RX,
            &clock,
            &policy,
            Some(&mut limiter),
            &mut out,
        );
        if let Decision::Reply(mut reply) = decision {
            let stamp = table.reply(&mut reply, peer(data), data, &mut out, &stats);
            let len = finish(&reply, &mut out, RX, &clock, &policy);
            assert!(
                len <= data.len(),
                "{len}-byte reply to {} bytes",
                data.len()
            );
            if let (true, Some(rx)) = (stamp, interleave::sent_receive(&out)) {
                // Stamped in software, then (for odd first bytes) in hardware too.
                table.transmitted(peer(data), rx, NtpTimestamp(rx.0 + 2), false);
                let hardware = data.first().is_some_and(|b| b & 1 == 1);
                table.transmitted(peer(data), rx, NtpTimestamp(rx.0 + 1), hardware);
            }
        }
    }
}

/// An NTS request: a header, a unique identifier and a cookie that opens, then the input (more
/// fields, an authenticator, garbage) through the responder as `ntp_request`: the deeper NTS
/// paths are reached without the fuzzer having to forge a cookie.
pub fn nts_request(data: &[u8]) {
    let keys = nts_keys();
    let Some(session) = SessionKeys::new(Algorithm::AesSivCmac256, &[1; 32], &[2; 32]) else {
        return;
    };
    let mut packet = vec![0x23; HEADER_LEN];
    packet.extend_from_slice(&[0x01, 0x04, 0, 36]);
    packet.extend_from_slice(&[0x42; 32]);
    let mut cookie = [0u8; MAX_COOKIE_LEN];
    let Some(len) = keys.seal(&session, &[3; NONCE_LEN], &mut cookie) else {
        return;
    };
    packet.extend_from_slice(&[0x02, 0x04, 0, 4 + len as u8]);
    packet.extend_from_slice(&cookie[..len]);
    packet.extend_from_slice(data);
    ntp_request(&packet);
}

/// An NTS-KE request through the record parser and the negotiation: a refusal is always a
/// complete message, an agreement one of the algorithms pitime speaks.
pub fn nts_ke_request(data: &[u8]) {
    let Ok(Some(records)) = record::parse_message(data) else {
        return;
    };
    if let Negotiation::Refused(answer, _) = negotiate(&records) {
        assert!(matches!(record::parse_message(&answer), Ok(Some(_))));
    }
}

/// A mode 6 (ntpq) request through the control responder, twice from one address, with a
/// reference clock and an unreachable server to tell of: nothing to an address outside
/// `query_allow`, never more than the bounded fragments.
pub fn ntp_control(data: &[u8]) {
    let (policy, clock) = (policy(), ClockSnapshot::example());
    let view = ControlView::example(RX);
    let mut limiter = RateLimiter::new(policy.limits);
    let peer = peer(data);
    for _ in 0..2 {
        let decision = control::respond(data, peer, RX, &clock, &view, &policy, &mut limiter);
        if let control::Decision::Reply(fragments, _) = decision {
            assert!(policy.query_access.permits(peer), "an answer to {peer}");
            assert!(fragments.len() <= control::MAX_FRAGMENTS);
            assert!(fragments.iter().all(|f| f.len() <= MAX_FRAGMENT));
        }
    }
}

/// A serial stream of NMEA text into the line reader, the decoder and the GPS clock, a line a
/// second with a pulse before each: whatever it says, nothing panics.
pub fn nmea(data: &[u8]) {
    let mut lines = LineReader::default();
    let mut decoder = NmeaDecoder::new(DecoderOptions {
        not_before: build_date(),
        require_fix: true,
    });
    let mut clock = GpsClock::new(ClockOptions {
        pps: true,
        sentence_delay: None,
    });
    let mut second = 1_800_000_000;
    lines.push(data, (), |line, ()| {
        second += 1;
        let _ = clock.on_pps(Realtime::from_timespec(second, 0), None);
        if let Some(report) = decoder.line(line) {
            let _ = clock.on_time(&report, Realtime::from_timespec(second, 100_000_000));
        }
    });
    // The clock stepped in the middle of it all.
    clock.clock_changed(&ClockChange {
        step: -1.5,
        frequency: 0.0,
        at: Realtime::from_timespec(second, 0),
    });
}

/// A serial stream mixing UBX frames with anything: every frame cut out is whole and its
/// fields readable, the text around the frames is handed on in order with nothing lost (what
/// is held back is at most one frame's worth), and the decoder reads every frame and line.
pub fn ubx(data: &[u8]) {
    let mut frames = FrameReader::default();
    let mut out = Vec::new();
    for (at, piece) in data.chunks(97).enumerate() {
        frames.push_at(piece, at, |p| match p {
            Piece::Text(text, _) => out.extend_from_slice(text),
            Piece::Frame(f, _) => out.extend(ubx::frame(f.class, f.id, &f.payload)),
        });
    }
    assert!(data.starts_with(&out), "text or frames out of order");
    assert!(
        data.len() - out.len() <= 8 + 1024,
        "more than a frame held back"
    );
    let mut stream = ReceiverStream::default();
    let mut decoder = NmeaDecoder::new(DecoderOptions {
        not_before: build_date(),
        require_fix: true,
    });
    // In two pieces, as reads split a stream anywhere.
    let (a, b) = data.split_at(data.len() / 2);
    for piece in [a, b] {
        stream.push(piece, (), |message, ()| {
            if let Message::Frame(frame) = &message {
                let _ = (frame.name(), frame.fix(), frame.version());
            }
            let _ = decoder.message(&message);
        });
    }
}

/// GPIO edges into the longwave decoders (DCF77, MSF, WWVB): each pair of input bytes is the
/// milliseconds since the last edge (the low 15 bits) and the level (the top bit). Whatever
/// the edges, nothing panics.
pub fn dcf77_edges(data: &[u8]) {
    let mut t = 0.0;
    let edges: Vec<(f64, bool)> = data
        .chunks_exact(2)
        .map(|pair| {
            let word = u16::from_be_bytes([pair[0], pair[1]]);
            t += f64::from(word & 0x7fff) / 1000.0;
            (t, word & 0x8000 != 0)
        })
        .collect();
    for station in StationKind::ALL {
        let _ = decode(station, &edges, false, 2);
    }
}

/// A configuration file: errors, never a panic.
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = Config::parse("fuzz.toml", &text, std::path::Path::new("/nonexistent"));
}

/// A keys file (ntpd's and chrony's format): an error, never a panic.
pub fn keys_file(data: &[u8]) {
    let _ = KeyStore::parse(&String::from_utf8_lossy(data));
}

/// A leap-seconds.list: a table whose announcements can be asked, or an error.
pub fn leap_file(data: &[u8]) {
    if let Ok(table) = leapfile::parse(&String::from_utf8_lossy(data)) {
        let at = table.expires();
        let _ = (table.announcement(at), table.tai_offset(at));
    }
}

/// A drift file: a frequency within the bounds, or an error.
pub fn drift_file(data: &[u8]) {
    if let Ok(ppm) = driftfile::parse(&String::from_utf8_lossy(data)) {
        assert!(ppm.is_finite() && ppm.abs() <= driftfile::MAX_PPM, "{ppm}");
    }
}

/// A target's name (its corpus folder's) and entry point.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, for the corpus regression test.
pub const TARGETS: [Target; 11] = [
    ("ntp_request", ntp_request),
    ("nts_request", nts_request),
    ("nts_ke_request", nts_ke_request),
    ("ntp_control", ntp_control),
    ("nmea", nmea),
    ("ubx", ubx),
    ("dcf77_edges", dcf77_edges),
    ("config", config),
    ("keys_file", keys_file),
    ("leap_file", leap_file),
    ("drift_file", drift_file),
];
