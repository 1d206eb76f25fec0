//! Hostile and unwanted datagrams over real sockets, and hostile NTS-KE clients (malformed
//! records, no ALPN, TLS 1.2, slow and idle connections): no reply or a refusal, no crash, each
//! counted, and the server keeps answering good requests meanwhile and afterwards.

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
    // The flood may still fill the server's socket queue, where the kernel drops what comes
    // next: ask again until there is room.
    let after = (0..10)
        .find_map(|_| ask(&interleaved_request(prev, 111, 222)))
        .expect("served after the flood");
    assert_eq!(stamps(&after).0, 222);
    assert_still_serving();
}

/// A daemon serving NTP and NTS-KE on loopback ports of the kernel's choice, with a KE limit
/// of 4 connections and a 1 s deadline; its state (local CA) in `state`.
fn nts_daemon(state: &TempDir) -> (Daemon, SocketAddr, SocketAddr, String) {
    let daemon = Daemon::start(&format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n[web]\nlisten = [\"127.0.0.1:0\"]\n\
         [nts]\nenabled = true\nlisten = [\"127.0.0.1:0\"]\nstate_dir = \"{}\"\n\
         max_connections = 4\ntimeout = 1.0\n[[source]]\nkind = \"local\"\n",
        state.0.display()
    ));
    let ke = daemon.logged_addr("serving NTS-KE");
    let ntp = daemon.logged_addr("serving NTP");
    let web = daemon.logged_addr("serving the status page").to_string();
    (daemon, ntp, ke, web)
}

/// Sends `bytes` over TLS with `tls` and reads until the server closes: its answer, or the
/// TLS error that ended the connection.
fn ke_raw(
    ke: SocketAddr,
    tls: std::sync::Arc<rustls::ClientConfig>,
    bytes: &[u8],
) -> Result<Vec<u8>, String> {
    use std::io::{Read, Write};
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut conn = rustls::ClientConnection::new(tls, name).unwrap();
    let mut sock = std::net::TcpStream::connect(ke).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut stream = rustls::Stream::new(&mut conn, &mut sock);
    stream.write_all(bytes).map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) => Ok(answer),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(answer),
        Err(e) => Err(e.to_string()),
    }
}

/// The error code of a KE answer that is one Error record and End of Message.
fn ke_error(answer: &[u8]) -> Option<u16> {
    let records = pitime::ntp::nts::record::parse_message(answer).ok()??;
    let r = records
        .first()
        .filter(|r| r.kind == 2 && records.len() == 1)?;
    Some(u16::from_be_bytes(r.body.try_into().ok()?))
}

/// A connection the server closed without answering (a reset, if it left unread bytes).
fn no_answer(answer: &Result<Vec<u8>, String>) -> bool {
    match answer {
        Ok(a) => a.is_empty(),
        Err(e) => e.contains("reset by peer"),
    }
}

/// Waits until the server closes a raw TCP connection (it must within its deadline).
fn closed_by_server(mut sock: std::net::TcpStream) -> bool {
    use std::io::Read;
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match sock.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) => return e.kind() == std::io::ErrorKind::ConnectionReset,
        }
    }
}

fn plain_ntp_answers(ntp: SocketAddr) {
    let reply = exchange(ntp, &client_request(4, 9)).expect("plain NTP stopped answering");
    assert_eq!(reply.len(), 48);
}

#[test]
fn hostile_key_exchange_clients_are_refused_and_counted_while_ntp_answers() {
    use pitime::ntp::nts::record;
    let state = TempDir::new("hostile-nts");
    let (_daemon, ntp, ke, web) = nts_daemon(&state);
    let ca = std::fs::read(state.path("nts-ca.pem")).unwrap();
    let tls = pitime::ntp::nts::ke_client::tls_client(&ca).unwrap();

    // Malformed records over good TLS: each gets the RFC's error record, then the close.
    let with = |records: &[(bool, u16, Vec<u8>)], end: bool| {
        let mut m = Vec::new();
        for (critical, kind, body) in records {
            record::push(&mut m, *critical, *kind, body);
        }
        if end {
            record::push_end(&mut m);
        }
        m
    };
    let np = (true, record::NEXT_PROTOCOL, vec![0, 0]);
    let aead = (true, record::AEAD_ALGORITHM, vec![0, 15]);
    let cases: Vec<(&str, Vec<u8>, Option<u16>)> = vec![
        (
            "odd length",
            with(&[(true, 1, vec![0]), aead.clone()], true),
            Some(1),
        ),
        (
            "unknown critical",
            with(&[np.clone(), (true, 0x2345, vec![]), aead.clone()], true),
            Some(0),
        ),
        (
            "no next protocol",
            with(std::slice::from_ref(&aead), true),
            Some(1),
        ),
        (
            "a cookie from the client",
            with(&[np.clone(), (false, 5, vec![1; 8]), aead.clone()], true),
            Some(1),
        ),
        (
            "end with a body",
            {
                let mut m = with(&[np.clone(), aead.clone()], false);
                m.extend_from_slice(&[0x80, 0, 0, 1, 0]);
                m
            },
            Some(1),
        ),
    ];
    for (what, bytes, code) in cases {
        let answer = ke_raw(ke, tls.clone(), &bytes);
        let answer = answer.unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(ke_error(&answer), code, "{what}: {answer:?}");
    }
    // Past the size cap the server answers and closes while the client is still writing: the
    // client sees the error record or its write refused.
    let too_large = [
        with(&vec![(false, 0x4000, vec![]); 1_000_000], true),
        with(&[np.clone(), (false, 0x4000, vec![0; 4000])], true),
    ];
    for bytes in too_large {
        let answer = ke_raw(ke, tls.clone(), &bytes);
        assert!(
            answer.as_ref().map_or(true, |a| ke_error(a) == Some(1)),
            "{answer:?}"
        );
    }
    // No end of message, then silence: closed at the deadline without an answer.
    let answer = ke_raw(ke, tls.clone(), &with(&[np.clone(), aead.clone()], false));
    assert!(no_answer(&answer), "{answer:?}");
    // Nothing at all, over TLS.
    let answer = ke_raw(ke, tls.clone(), &[]);
    assert!(no_answer(&answer), "{answer:?}");

    // TLS without the ALPN protocol: no answer.
    let mut no_alpn = (*tls).clone();
    no_alpn.alpn_protocols.clear();
    let answer = ke_raw(
        ke,
        std::sync::Arc::new(no_alpn),
        &with(&[np.clone(), aead.clone()], true),
    );
    assert!(no_answer(&answer), "{answer:?}");
    // Not TLS at all, and a handshake that stops after one byte.
    let mut sock = std::net::TcpStream::connect(ke).unwrap();
    std::io::Write::write_all(&mut sock, b"GET / HTTP/1.0\r\n\r\n").unwrap();
    assert!(closed_by_server(sock));
    let mut slow = std::net::TcpStream::connect(ke).unwrap();
    std::io::Write::write_all(&mut slow, &[0x16]).unwrap();
    plain_ntp_answers(ntp);
    assert!(closed_by_server(slow));

    // Idle connections fill the four places: a fifth is closed at once, counted as busy; NTP
    // answers meanwhile; when the deadline has closed them, key exchange works again.
    let idle: Vec<_> = (0..4)
        .map(|_| std::net::TcpStream::connect(ke).unwrap())
        .collect();
    let busy = std::net::TcpStream::connect(ke).unwrap();
    plain_ntp_answers(ntp);
    assert!(closed_by_server(busy));
    for sock in idle {
        assert!(closed_by_server(sock));
    }
    let good = pitime::ntp::nts::ke_client::exchange(
        ke,
        "127.0.0.1",
        tls,
        &[pitime::ntp::nts::aead::Algorithm::AesSivCmac256],
    );
    assert_eq!(good.map(|x| x.cookies.len()).ok(), Some(8));

    // Every refusal was counted by its reason.
    let deadline = Instant::now() + Duration::from_secs(10);
    let expected = [
        "{reason=\"bad_request\"} 3",
        "{reason=\"malformed\"} 1",
        "{reason=\"unrecognized_critical\"} 1",
        "{reason=\"too_large\"} 2",
        "{reason=\"no_alpn\"} 1",
        "{reason=\"tls_handshake\"} 1",
        "{reason=\"busy\"} 1",
    ];
    loop {
        let metrics = http_get(&web, "/metrics");
        let missing: Vec<&&str> = expected
            .iter()
            .filter(|e| !metrics.contains(&format!("pitime_nts_ke_failures_total{e}")))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "{missing:?} not in\n{metrics}");
        std::thread::sleep(Duration::from_millis(100));
    }
    plain_ntp_answers(ntp);
}

#[test]
fn tls_1_2_is_refused() {
    needs!("openssl");
    let state = TempDir::new("hostile-tls12");
    let (_daemon, ntp, ke, _) = nts_daemon(&state);
    let out = std::process::Command::new("openssl")
        .args([
            "s_client",
            "-tls1_2",
            "-alpn",
            "ntske/1",
            "-connect",
            &ke.to_string(),
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "TLS 1.2 accepted: {said}");
    assert!(
        said.contains("alert protocol version")
            || said.contains("no protocols available")
            || said.contains("wrong version"),
        "{said}"
    );
    plain_ntp_answers(ntp);
}
