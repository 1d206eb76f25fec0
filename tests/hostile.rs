//! Hostile and unwanted datagrams over real sockets: no reply, no crash, and the server keeps
//! answering good requests afterwards.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::*;

const SERVER: &str = "127.0.0.1:123";

fn server() -> SocketAddr {
    SERVER.parse().unwrap()
}

fn assert_still_serving() {
    let reply = exchange(server(), &client_request(4, 7)).expect("no reply to a good request");
    assert_eq!(reply.len(), 48);
}

#[test]
fn bad_datagrams_get_no_reply() {
    needs!("root");
    private_network();
    let _daemon =
        Daemon::start("[server]\nlisten = [\"127.0.0.1:123\"]\n[[source]]\nkind = \"local\"\n");
    assert_still_serving();
    let good = client_request(4, 1);
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("truncated", good[..47].to_vec()),
        ("oversized", {
            let mut p = good.clone();
            p.resize(4000, 0xaa);
            p
        }),
        ("garbage extension field", {
            let mut p = good.clone();
            p.extend_from_slice(&[
                0, 1, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
            ]);
            p
        }),
        ("MAC with an unknown key id, no keys configured", {
            let mut p = good.clone();
            p.extend_from_slice(&[0, 0, 0, 42]);
            p.extend_from_slice(&[0x55; 16]);
            p
        }),
    ];
    for version in [0, 5, 6, 7] {
        cases.push(("bad version", client_request(version, 1)));
    }
    // Mode 6 (ntpq) from loopback is answered: see the control tests below.
    for mode in [0, 1, 2, 4, 5, 7] {
        let mut p = good.clone();
        p[0] = 4 << 3 | mode;
        cases.push(("wrong mode", p));
    }
    for (what, packet) in cases {
        match exchange(server(), &packet) {
            // An unknown key id is answered with a crypto-NAK: header plus a zero key id.
            Some(reply) if what.starts_with("MAC") => {
                assert_eq!(reply.len(), 52, "{what}");
                assert_eq!(reply[48..], [0, 0, 0, 0]);
            }
            Some(reply) => panic!("{what}: got a {}-byte reply", reply.len()),
            None => assert!(!what.starts_with("MAC"), "{what}: expected a crypto-NAK"),
        }
    }
    assert_still_serving();
}

#[test]
fn denied_addresses_are_ignored_or_kissed() {
    needs!("root");
    private_network();
    let config = "[server]\nlisten = [\"127.0.0.1:123\"]\ndeny = [\"127.0.0.2\"]\n[[source]]\nkind = \"local\"\n";
    let daemon = Daemon::start(config);
    assert!(exchange_from("127.0.0.2:0", server(), &client_request(4, 1)).is_none());
    assert!(exchange_from("127.0.0.3:0", server(), &client_request(4, 1)).is_some());
    daemon.reload(&config.replace("deny = ", "deny_action = \"kod\"\ndeny = "));
    let kiss = exchange_from("127.0.0.2:0", server(), &client_request(4, 1)).expect("DENY kiss");
    assert_eq!(stratum_refid(&kiss), (0, *b"DENY"));
    assert_eq!(kiss[0] >> 6, 3, "leap indicator of a kiss");
}

#[test]
fn rate_limited_addresses_get_a_kiss_then_nothing() {
    needs!("root");
    private_network();
    let config =
        "[server]\nlisten = [\"127.0.0.1:123\"]\n[server.rate_limit]\ninterval = 60\nburst = 3\n\
                  leak = 0.0\n[[source]]\nkind = \"local\"\n";
    let _daemon = Daemon::start(config);
    let ask = |from| exchange_from(from, server(), &client_request(4, 1));
    for _ in 0..3 {
        assert_eq!(stratum_refid(&ask("127.0.0.4:0").unwrap()).0, 10);
    }
    assert_eq!(
        stratum_refid(&ask("127.0.0.4:0").expect("RATE kiss")),
        (0, *b"RATE")
    );
    // The kisses are limited too.
    assert!(ask("127.0.0.4:0").is_none());
    // Other clients are unaffected.
    assert_eq!(stratum_refid(&ask("127.0.0.5:0").unwrap()).0, 10);
}

#[test]
fn one_address_gets_its_limit_once_however_many_threads_and_ports() {
    needs!("root");
    private_network();
    let config = "[server]\nlisten = [\"127.0.0.1:123\", \"[::1]:123\"]\nthreads = 4\n\
                  [server.rate_limit]\ninterval = 60\nburst = 8\nleak = 0.0\n\
                  [[source]]\nkind = \"local\"\n";
    let _daemon = Daemon::start(config);
    for (from, to) in [
        ("127.0.0.9:0", server()),
        ("[::1]:0", "[::1]:123".parse().unwrap()),
    ] {
        // Each request from a new source port: the kernel's port hash would spread them over
        // the four threads, each with a table of its own.
        let answered = (0..24)
            .filter_map(|_| exchange_from(from, to, &client_request(4, 1)))
            .filter(|reply| stratum_refid(reply).0 != 0)
            .count();
        assert_eq!(answered, 8, "{from}: {answered} answered, burst 8");
    }
}

/// A mode 6 (ntpq) request, as ntpq builds it: header, data, zero padding to 4 bytes.
fn control(opcode: u8, association: u16, data: &[u8]) -> Vec<u8> {
    let mut p = vec![2 << 3 | 6, opcode, 0, 1, 0, 0];
    p.extend_from_slice(&association.to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&(data.len() as u16).to_be_bytes());
    p.extend_from_slice(data);
    p.resize(p.len().next_multiple_of(4), 0);
    p
}

/// Every datagram that arrives at `socket` within 300 ms of the last.
fn replies(socket: &UdpSocket) -> Vec<Vec<u8>> {
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 2048];
    std::iter::from_fn(|| socket.recv(&mut buf).ok().map(|n| buf[..n].to_vec())).collect()
}

/// The error code of a single error response, or None for no answer.
fn control_error(request: &[u8]) -> Option<u8> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.send_to(request, server()).unwrap();
    let got = replies(&socket);
    match &got[..] {
        [] => None,
        [reply] if reply.len() == 12 && reply[1] & 0xc0 == 0xc0 => Some(reply[4]),
        other => panic!("expected one error response, got {other:?}"),
    }
}

#[test]
fn hostile_control_messages_get_an_error_or_nothing() {
    needs!("root");
    private_network();
    let _daemon = Daemon::start(
        "[server]\nlisten = [\"127.0.0.1:123\"]\n[server.rate_limit]\nburst = 100000\n\
         [[source]]\nkind = \"local\"\n",
    );
    let good = control(2, 0, b"stratum");
    let with = |at: usize, value: u8| {
        let mut p = good.clone();
        p[at] = value;
        p
    };
    // Format errors (ntpd's code 2): a count beyond the data, or beyond a fragment.
    assert_eq!(control_error(&with(11, 200)), Some(2), "count past the end");
    assert_eq!(control_error(&with(10, 0xff)), Some(2), "count of 65 kB");
    let mut unpadded = good.clone();
    unpadded.push(0);
    assert_eq!(control_error(&unpadded), Some(2), "not padded to 4 bytes");
    // Unknown associations (code 4) and variables (5), writes and configuration (1), and
    // operations not served (3).
    assert_eq!(control_error(&control(2, 0x1234, b"")), Some(4));
    assert_eq!(control_error(&control(1, 0xffff, b"")), Some(4));
    assert_eq!(control_error(&control(2, 0, &[b'x'; 400])), Some(5));
    assert_eq!(control_error(&control(2, 0, &[0xff; 40])), Some(5));
    for op in [3, 5, 6, 8, 31] {
        assert_eq!(
            control_error(&control(op, 0, b"leap=3")),
            Some(1),
            "opcode {op}"
        );
    }
    for op in [0, 4, 10, 12] {
        assert_eq!(control_error(&control(op, 0, b"")), Some(3), "opcode {op}");
    }
    // No answer at all: fragments out of range, responses (which could start a loop between
    // two servers), errors, bad versions, a truncated header, mode 7.
    for (what, p) in [
        ("offset", with(9, 4)),
        ("offset past the data", with(8, 0x40)),
        ("response", with(1, 0x82)),
        ("more", with(1, 0x22)),
        ("error", with(1, 0x42)),
        ("version 0", with(0, 6)),
        ("version 7", with(0, 7 << 3 | 6)),
        ("truncated", good[..11].to_vec()),
        ("mode 7", with(0, 2 << 3 | 7)),
    ] {
        assert_eq!(control_error(&p), None, "{what}");
    }
    // The variables asked for, once each.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .send_to(&control(2, 0, b"stratum,stratum,refid"), server())
        .unwrap();
    let got = replies(&socket);
    assert_eq!(got.len(), 1);
    // At stratum 10 the refid is an address, as ntpd shows it.
    assert_eq!(&got[0][12..42], b"stratum=10, refid=76.79.67.76\r");
    assert_still_serving();
}

#[test]
fn control_floods_and_denied_sources_get_nothing_and_are_counted() {
    needs!("root");
    private_network();
    // Mode 6 for 127.0.0.1 only; time for everyone local.
    let _daemon = Daemon::start(
        "[server]\nlisten = [\"127.0.0.1:123\"]\nquery_allow = [\"127.0.0.1\"]\n\
         [web]\nlisten = [\"127.0.0.1:80\"]\n[[source]]\nkind = \"local\"\n",
    );
    let readstat = control(1, 0, b"");
    // A denied source gets nothing, even for a request that would be an error: a forged
    // request cannot aim an answer at an address outside query_allow.
    let denied = UdpSocket::bind("127.0.0.2:0").unwrap();
    for request in [readstat.clone(), control(8, 0, b"x"), control(2, 9, b"")] {
        for _ in 0..100 {
            denied.send_to(&request, server()).unwrap();
        }
    }
    assert!(replies(&denied).is_empty());
    // A flood from an allowed source is answered up to its burst (16), then not at all.
    let allowed = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..100 {
        allowed.send_to(&readstat, server()).unwrap();
    }
    let answered = replies(&allowed);
    assert!(
        (16..=20).contains(&answered.len()),
        "{} answers to 100 requests",
        answered.len()
    );
    assert!(answered.iter().all(|a| a.len() <= 480));
    // Time keeps being served, to both.
    assert_still_serving();
    assert!(exchange_from("127.0.0.2:0", server(), &client_request(4, 1)).is_some());
    // The drops are counted in the metrics (some of a flood may be lost before the server
    // sees it, so not all).
    let metric = |outcome: &str| {
        let text = http_get("127.0.0.1:80", "/metrics");
        let needle = format!("outcome=\"{outcome}\"}} ");
        text.lines()
            .find_map(|l| l.split_once(&needle).map(|(_, n)| n.trim().parse::<u64>()))
            .and_then(Result::ok)
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric("control_denied") < 100 || metric("control_rate_limited") < 50 {
        assert!(
            Instant::now() < deadline,
            "drops not counted in the metrics:\n{}",
            http_get("127.0.0.1:80", "/metrics")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(metric("control_answered") >= 16);
}

/// A request in interleaved form: `origin` names our receive time of the client's last
/// request, `receive` is the client's cookie an interleaved reply echoes as its origin.
fn interleaved_request(origin: u64, receive: u64, transmit: u64) -> Vec<u8> {
    let mut p = client_request(4, transmit);
    p[24..32].copy_from_slice(&origin.to_be_bytes());
    p[32..40].copy_from_slice(&receive.to_be_bytes());
    p
}

fn timestamp(reply: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(reply[at..at + 8].try_into().unwrap())
}

/// (origin, receive, transmit) of a reply.
fn stamps(reply: &[u8]) -> (u64, u64, u64) {
    (
        timestamp(reply, 24),
        timestamp(reply, 32),
        timestamp(reply, 40),
    )
}

#[test]
fn interleaved_requests_get_only_their_own_timestamps() {
    needs!("root");
    private_network();
    let config = "[server]\nlisten = [\"127.0.0.1:123\"]\ntimestamping = \"kernel\"\n\
                  [server.rate_limit]\ninterval = 60\nburst = 12\nleak = 0.0\nmax_clients = 16\n\
                  [[source]]\nkind = \"local\"\n";
    let _daemon = Daemon::start(config);
    let socket = UdpSocket::bind("127.0.0.7:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let ask = |request: &[u8]| {
        socket.send_to(request, server()).unwrap();
        let mut buf = [0u8; 512];
        let (n, _) = socket.recv_from(&mut buf).ok()?;
        assert!(
            n <= request.len(),
            "{n}-byte reply to {} bytes",
            request.len()
        );
        Some(buf[..n].to_vec())
    };
    // Basic first; then naming its receive time is answered in basic mode still (that reply
    // was not stamped: the client had not asked yet), and the next, naming the second, gets
    // the second's true transmit time, a little after the user-space one it carried.
    let first = ask(&client_request(4, 11)).unwrap();
    let second = ask(&interleaved_request(stamps(&first).1, 22, 33)).unwrap();
    let (origin, rx2, user_tx2) = stamps(&second);
    assert_eq!(origin, 33);
    let third = ask(&interleaved_request(rx2, 44, 55)).unwrap();
    let (origin, rx3, kernel_tx2) = stamps(&third);
    assert_eq!(origin, 44, "not interleaved");
    assert!(
        kernel_tx2 >= user_tx2 && kernel_tx2 - user_tx2 < (1 << 32) / 100,
        "{kernel_tx2} vs {user_tx2}"
    );
    assert!(rx3 > kernel_tx2);
    // A forged or stale origin gets a basic reply (its transmit field echoed).
    for stale in [rx2, rx3 + 1, 0] {
        let reply = ask(&interleaved_request(stale, 66, 77)).unwrap();
        assert_eq!(stamps(&reply).0, 77, "origin {stale}");
    }
    // Another address naming this client's receive time gets nothing of this client's.
    let last = ask(&client_request(4, 66)).unwrap();
    let other = exchange_from(
        "127.0.0.8:0",
        server(),
        &interleaved_request(stamps(&last).1, 77, 88),
    );
    assert_eq!(stamps(&other.unwrap()).0, 88);
    // Interleaved or not, the rate limit holds: 12 a minute, then a kiss, then nothing.
    let (mut answered, mut prev) = (7, stamps(&last).1);
    while let Some(reply) = ask(&interleaved_request(prev, 1, 2)) {
        if stratum_refid(&reply) == (0, *b"RATE") {
            break;
        }
        answered += 1;
        prev = stamps(&reply).1;
    }
    assert_eq!(answered, 12);
    assert!(ask(&client_request(4, 3)).is_none());
    // A flood of addresses through the 16-client table evicts this client: its next request
    // is answered in basic mode (its rate state went too).
    for i in 0..1000u32 {
        let from = std::net::Ipv4Addr::from(0x7f10_0000 + i);
        let s = UdpSocket::bind((from, 0)).unwrap();
        s.send_to(&client_request(4, 1), server()).unwrap();
    }
    let after = ask(&interleaved_request(prev, 111, 222)).expect("served after the flood");
    assert_eq!(stamps(&after).0, 222);
    assert_still_serving();
}
