//! An upstream NTP server as a source, end to end: a real chronyd (`-x`: never touches the
//! clock) serving its local clock at stratum 3, and pitime polling it, in a private network
//! namespace.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::*;
use pitime::clock::system::realtime_now;
use pitime::ntp::packet::{Header, HEADER_LEN, MODE_SERVER};
use pitime::time::Leap;
use pitime::time::{NtpShort, NtpTimestamp};
use pitime::web::client::{get, status};

const CHRONYD_PORT: u16 = 10123;
const WEB: &str = "127.0.0.1:8123";

/// The keys file chronyd and pitime share in the authenticated test.
const KEYS: &str = "2 SHA1 HEX:0102030405060708090a0b0c0d0e0f1011121314\n";

/// chronyd serving on 127.0.0.1, killed on drop.
/// chronyd serving at stratum 3 on 127.0.0.1, port `CHRONYD_PORT`, with `extra` lines.
fn chronyd(extra: &str) -> Chronyd {
    Chronyd::start(&format!(
        "local stratum 3\nallow 127.0.0.1\nport {CHRONYD_PORT}\nbindaddress 127.0.0.1\n{extra}"
    ))
}

/// pitime polling chronyd, with `server` added to its `[server]` table and `source` to its
/// source table.
fn pitime(server: &str, source: &str) -> Daemon {
    Daemon::start(&format!(
        "[server]\nlisten = [\"127.0.0.1:11123\"]\n{server}\n[web]\nlisten = [\"{WEB}\"]\n\n\
         [[source]]\nkind = \"ntp\"\nname = \"chronyd\"\nserver = \"127.0.0.1\"\n\
         port = {CHRONYD_PORT}\n{source}"
    ))
}

/// Waits (up to 25 s) for the ntp source's row in the sources table with a sample.
fn wait_for_sample(daemon: &Daemon, server_log: &dyn Fn() -> String) -> serde_json::Value {
    let web: SocketAddr = WEB.parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(25);
    loop {
        let row = status(web).ok().and_then(|s| {
            s["sources"]
                .as_array()
                .and_then(|rows| rows.iter().find(|r| r["name"] == "chronyd").cloned())
        });
        if let Some(row) = row.filter(|r| r["reach"].as_u64() > Some(0) && r["offset"].is_f64()) {
            return row;
        }
        assert!(
            Instant::now() < deadline,
            "no sample from chronyd within 25 s; pitime log:\n{}\nserver log:\n{}",
            daemon.log(),
            server_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits (up to 30 s) until `count` requests in a row went unanswered; returns the upstream's
/// status then.
fn wait_for_unanswered(daemon: &Daemon, count: u64) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = status(WEB.parse().unwrap()).unwrap_or_default();
        if s["upstream"][0]["unanswered"].as_u64() >= Some(count) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "not {count} unanswered requests within 30 s: {s}\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn pitime_measures_a_chronyd_upstream() {
    needs!("root", "chronyd");
    private_network();
    let chronyd = chronyd("");
    let daemon = pitime("", "");
    // The iburst's four requests go out within 6 s; chronyd answers from the start.
    let source = wait_for_sample(&daemon, &|| chronyd.log());
    assert_eq!(source["kind"], "ntp");
    let offset = source["offset"].as_f64().unwrap();
    assert!(
        offset.abs() < 0.01,
        "offset {offset} s from a server on this clock"
    );
    // The driver's own view: chronyd's address, reached, the filter's offset and delay.
    let web: SocketAddr = WEB.parse().unwrap();
    let s = status(web).unwrap();
    let up = &s["upstream"][0];
    assert_eq!(up["address"], format!("127.0.0.1:{CHRONYD_PORT}"));
    assert!(up["reach"].as_u64() > Some(0), "{up}");
    assert!(up["offset_seconds"].as_f64().unwrap().abs() < 0.01, "{up}");
    assert!(up["delay_seconds"].as_f64().unwrap() < 0.01, "{up}");
    assert_eq!(
        (up["dropped"].as_u64(), up["denied"].as_bool()),
        (Some(0), Some(false))
    );
    let page = get(web, "/").unwrap();
    assert!(page.contains(r#"<table id="upstream">"#));
    let metrics = get(web, "/metrics").unwrap();
    assert!(
        metrics.contains(r#"pitime_upstream_reach{source="chronyd"}"#),
        "{metrics}"
    );
    assert!(daemon.stop().success());
}

#[test]
fn an_upstream_that_starts_late_is_found() {
    needs!("root", "chronyd");
    private_network();
    // Polls every 2 s, refused (ICMP port unreachable) until chronyd runs; after four the
    // name is resolved again.
    let daemon = pitime("", "minpoll = 1\n");
    // Past the first lookup again (after four), so the server is found by a later poll.
    wait_for_unanswered(&daemon, 5);
    let chronyd = chronyd("");
    let source = wait_for_sample(&daemon, &|| chronyd.log());
    assert!(source["offset"].as_f64().unwrap().abs() < 0.01, "{source}");
    assert!(daemon.stop().success());
}

#[test]
fn a_keyed_upstream_is_measured_and_a_wrong_key_is_not() {
    needs!("root", "chronyd");
    private_network();
    let dir = TempDir::new("chronyd");
    let keys = dir.write("ntp.keys", KEYS);
    file_mode(&keys, 0o600);
    let chronyd = chronyd(&format!("keyfile {}", keys.display()));
    let server = format!("keys_file = \"{}\"\n", keys.display());
    let daemon = pitime(&server, "key = 2\nminpoll = 1\n");
    let source = wait_for_sample(&daemon, &|| chronyd.log());
    assert!(source["offset"].as_f64().unwrap().abs() < 0.01, "{source}");
    assert!(daemon.stop().success());

    // Same key id, another secret: chronyd does not answer requests it cannot verify.
    let other = dir.write("other.keys", &KEYS.replace("0102", "ffff"));
    file_mode(&other, 0o600);
    let server = format!("keys_file = \"{}\"\n", other.display());
    let daemon = pitime(&server, "key = 2\nminpoll = 1\n");
    // Three requests chronyd has seen and not answered.
    let s = wait_for_unanswered(&daemon, 3);
    let up = &s["upstream"][0];
    assert_eq!(up["reach"], 0, "{up}");
    assert!(up["offset_seconds"].is_null(), "{up}");
    assert!(s["sources"][0]["offset"].is_null(), "{s}");
    assert!(daemon.stop().success());
}

/// A server on this clock's time answering `request` (stratum 2), echoing `origin`.
fn reply(request: &[u8], origin: NtpTimestamp) -> [u8; HEADER_LEN] {
    let now = realtime_now().to_ntp();
    let mut out = [0; HEADER_LEN];
    Header {
        leap: Leap::None,
        version: 4,
        mode: MODE_SERVER,
        stratum: 2,
        poll: request[2] as i8,
        precision: -20,
        root_delay: NtpShort(64),
        root_dispersion: NtpShort(64),
        refid: [192, 0, 2, 1],
        reference: now,
        origin,
        receive: now,
        transmit: now,
    }
    .write(&mut out);
    out
}

#[test]
fn garbage_forgeries_and_replays_are_counted_drops() {
    needs!("root");
    private_network();
    let server = UdpSocket::bind(("127.0.0.1", CHRONYD_PORT)).unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    // Each request gets a short datagram, a reply with another origin, a reply from another
    // port, then the genuine reply, twice.
    let answering = std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        let mut answered = 0;
        while let Ok((n, client)) = server.recv_from(&mut buf) {
            let request = &buf[..n];
            let cookie = NtpTimestamp::from_be_bytes(request[40..48].try_into().unwrap());
            let genuine = reply(request, cookie);
            server.send_to(&[0x24; 10], client).unwrap();
            server
                .send_to(&reply(request, NtpTimestamp(cookie.0 ^ 1)), client)
                .unwrap();
            stranger.send_to(&genuine, client).unwrap();
            server.send_to(&genuine, client).unwrap();
            server.send_to(&genuine, client).unwrap();
            answered += 1;
            if answered == 2 {
                return;
            }
        }
    });
    let daemon = pitime("", "");
    wait_for_sample(&daemon, &String::new);
    answering.join().unwrap();
    // Short, wrong origin and replay from each exchange; the stranger never gets through.
    let deadline = Instant::now() + Duration::from_secs(5);
    let up = loop {
        let s = status(WEB.parse().unwrap()).unwrap();
        let up = s["upstream"][0].clone();
        if up["dropped"].as_u64() >= Some(6) || Instant::now() > deadline {
            break up;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(up["dropped"], 6, "{up}");
    assert!(up["offset_seconds"].as_f64().unwrap().abs() < 0.01, "{up}");
    assert!(daemon.stop().success());
}

/// Three independent sources, as the seeds advise: two receivers agree that true time is
/// 0.3 s ahead of the system clock, the upstream serves the system clock. The upstream is the
/// falseticker: flagged, alarmed, and not followed.
#[test]
fn the_source_that_disagrees_with_two_others_is_a_falseticker() {
    needs!("root", "chronyd");
    private_network();
    let _chronyd = chronyd("");
    let receiver = |name: &str, seed: u32| {
        format!(
            "[[source]]\nkind = \"gps\"\nname = \"{name}\"\n\
             [source.simulate]\nclock_offset = 0.3\nseed = {seed}\n"
        )
    };
    let daemon = pitime("", &(receiver("gps-a", 1) + &receiver("gps-b", 2)));
    let web: SocketAddr = WEB.parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let state = |s: &serde_json::Value, name: &str| {
        s["sources"]
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["name"] == name))
            .map(|r| r["state"].as_str().unwrap_or_default().to_string())
    };
    loop {
        let s = status(web).unwrap_or_default();
        if state(&s, "chronyd").as_deref() == Some("falseticker")
            && state(&s, "gps-a").as_deref() == Some("selected")
        {
            let alarms = s["alarms"].to_string();
            assert!(alarms.contains("chronyd: disagrees"), "{alarms}");
            assert_eq!(s["clock"]["stratum"], 1);
            let offset = s["clock"]["offset_seconds"].as_f64().unwrap();
            assert!((offset - 0.3).abs() < 0.01, "served {offset}");
            let metrics = get(web, "/metrics").unwrap();
            assert!(
                metrics.contains(r#"pitime_source_state{source="chronyd",state="falseticker"} 1"#),
                "{metrics}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{s}\n{}", daemon.log());
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        daemon.log().contains("chronyd: disagrees"),
        "{}",
        daemon.log()
    );
    assert!(daemon.stop().success());
}
