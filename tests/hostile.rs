//! Hostile and unwanted datagrams over real sockets: no reply, no crash, and the server keeps
//! answering good requests afterwards.

mod common;

use std::net::SocketAddr;

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
