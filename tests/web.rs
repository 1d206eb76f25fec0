//! The status page, JSON API, metrics and status commands against the daemon running the
//! simulated receivers, and the HTTP side under bad input. Each test in its own network
//! namespace.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const WEB: &str = "127.0.0.1:8123";

/// The simulated receiver's antenna is open throughout: an alarm to show, time unharmed. The
/// longwave receiver is MSF's, which the status must not call DCF77.
fn config(web_extra: &str) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:123\"]\n\n[web]\nlisten = [\"{WEB}\"]\n{web_extra}\n\n\
         [[source]]\nkind = \"gps\"\n[source.simulate]\nclock_offset = 0.0\nantenna_fault = [0, 3600]\n\n\
         [[source]]\nkind = \"msf\"\n[source.simulate]\n\n[[source]]\nkind = \"local\"\n"
    )
}

/// One raw HTTP exchange: the whole answer (the server closes or we time out).
fn http(request: &[u8]) -> String {
    let mut s = TcpStream::connect(WEB).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// A TCP connection from a chosen loopback address.
fn connect_from(local: &str, to: &str) -> Option<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).ok()?;
    let local: SocketAddr = format!("{local}:0").parse().unwrap();
    socket.bind(&local.into()).ok()?;
    socket
        .connect(&to.parse::<SocketAddr>().unwrap().into())
        .ok()?;
    Some(socket.into())
}

fn get(path: &str) -> (u16, String) {
    let answer =
        http(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes());
    let code = answer.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |x| x.1)
        .to_string();
    (code, body)
}

fn status() -> serde_json::Value {
    let (code, body) = get("/api/v1/status");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Waits (up to 10 s) until the status page accepts connections.
fn wait_for_web() {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(WEB).is_err() {
        assert!(Instant::now() < deadline, "no status page on {WEB}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the clock follows the pulse. Generous: under a loaded CI machine the daemon
/// takes longer to start, and a failure shows the daemon's log and the last status.
fn wait_for_pps(daemon: &Daemon) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = serde_json::Value::Null;
    loop {
        if TcpStream::connect(WEB).is_ok() {
            last = status();
            if last["clock"]["refid"] == "PPS" {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no PPS within 60 s; status:\n{last:#}\nlog:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn api_metrics_page_and_commands_show_the_simulated_receivers() {
    needs!("root", "chromium");
    private_network();
    let daemon = Daemon::start(&config(""));
    wait_for_pps(&daemon);
    assert!(exchange(
        "127.0.0.1:123".parse::<SocketAddr>().unwrap(),
        &client_request(4, 1)
    )
    .is_some());
    // Two ten-second points make the hour's charts, and the MSF panel needs some pulses:
    // wait for both.
    let deadline = Instant::now() + Duration::from_secs(60);
    while status()["history"]["hour"].as_array().map_or(0, Vec::len) < 2
        || status()["longwave"][0]["pulses"].as_u64().unwrap_or(0) <= 10
    {
        assert!(
            Instant::now() < deadline,
            "no chart points or pulses after 60 s"
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    let s = status();
    assert_eq!(s["clock"]["stratum"], 1);
    assert_eq!(s["clock"]["synchronised"], true);
    let sources = s["sources"].as_array().unwrap();
    let names: Vec<(&str, &str)> = sources
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["state"].as_str().unwrap()))
        .collect();
    assert_eq!(names[0], ("gps", "selected"));
    assert_eq!(names[2], ("local", "candidate"));
    assert!(sources[0]["reach"].as_u64().unwrap() > 0);
    let gps = &s["gps"][0];
    assert_eq!(gps["fix"], "3D");
    assert_eq!(gps["antenna"], "open");
    assert_eq!(gps["constellations"][0]["name"], "GPS");
    assert_eq!(gps["constellations"][0]["in_view"], 8);
    assert!(s["longwave"][0]["pulses"].as_u64().unwrap() > 10);
    assert_eq!(s["longwave"][0]["station"], "msf");
    assert!(s["history"]["hour"].as_array().unwrap().len() >= 2);
    assert_eq!(s["ntp"]["clients_seen"], 1.0);
    assert!(s["ntp"]["counters"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c[0] == "served" && c[1] == 1));
    // `timestamping = "auto"` (the default) on the loopback, which has no hardware timestamps.
    assert_eq!(
        s["ntp"]["timestamping"][0],
        serde_json::json!({"address": "127.0.0.1:123", "interface": "lo", "timestamping": "kernel",
            "why": "no hardware timestamps", "clock": null}),
    );

    // /metrics through a Prometheus text-format parser.
    let (code, text) = get("/metrics");
    assert_eq!(code, 200);
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        let sample = scrape
            .samples
            .iter()
            .find(|x| x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(v)))
            .unwrap_or_else(|| panic!("no {name} {labels:?} in\n{text}"));
        match sample.value {
            prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => panic!("{name}: not a number"),
        }
    };
    assert_eq!(value("pitime_stratum", &[]), 1.0);
    assert_eq!(value("pitime_synchronised", &[]), 1.0);
    assert_eq!(value("pitime_clock_state", &[("state", "locked")]), 1.0);
    let gps = ("source", "gps");
    assert_eq!(
        value("pitime_source_state", &[gps, ("state", "selected")]),
        1.0
    );
    assert_eq!(
        value("pitime_source_state", &[gps, ("state", "falseticker")]),
        0.0
    );
    assert!(value("pitime_source_jitter_seconds", &[gps]) < 1e-3);
    assert_eq!(value("pitime_gps_satellites", &[("state", "in_view")]), 8.0);
    assert!(value("pitime_gps_snr_dbhz", &[("prn", "29")]) > 20.0);
    let msf = [("source", "msf"), ("station", "msf"), ("kind", "pulse")];
    assert!(value("pitime_longwave_events_total", &msf) > 10.0);
    assert!(value("process_resident_memory_bytes", &[]) > 1e6);
    assert_eq!(value("pitime_ntp_clients", &[]), 1.0);
    assert!(scrape
        .samples
        .iter()
        .any(|x| x.metric == "pitime_ntp_requests_total"));
    let hardware = [("direction", "receive"), ("result", "fell_back")];
    assert_eq!(
        value("pitime_ntp_hardware_timestamps_total", &hardware),
        0.0
    );

    // The commands, like chronyc's.
    let bin = env!("CARGO_BIN_EXE_pitime");
    let tracking = run_ok(Command::new(bin).args(["status", "--address", WEB]));
    let tracking = String::from_utf8_lossy(&tracking.stdout);
    assert!(
        tracking.contains("Reference ID    : PPS") && tracking.contains("Stratum         : 1"),
        "{tracking}"
    );
    assert!(tracking.contains("MSF             : msf, "), "{tracking}");
    let table = run_ok(Command::new(bin).args(["sources", "-c", daemon.config.to_str().unwrap()]));
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.lines().nth(1).unwrap().starts_with("*  gps"),
        "{table}"
    );

    // The page in a real browser: headline, sources table and a chart are drawn.
    let dir = TempDir::new("chromium");
    let chromium = |args: &[&str]| {
        let profile = format!("--user-data-dir={}", dir.path("profile").display());
        run_ok(
            Command::new("chromium")
                .args(["--headless", "--no-sandbox", "--disable-gpu", &profile])
                .args(args),
        )
    };
    let dom = chromium(&["--dump-dom", &format!("http://{WEB}/")]);
    let dom = String::from_utf8_lossy(&dom.stdout);
    for needle in [
        r#"id="headline""#,
        "synchronised",
        r#"id="sources""#,
        r#"id="chart-offset-hour""#,
        "<polyline",
        // The charts' time axis, value grid and latest value; the antenna alarm is marked on
        // the offset chart.
        "time (UTC)",
        r#"class="grid""#,
        r#"<tspan class="latest">"#,
        r#"class="band alarm""#,
        r#"id="sky""#,
        "<h2>MSF: msf</h2>",
        r#"id="longwave-bits""#,
    ] {
        assert!(dom.contains(needle), "{needle} not in the page:\n{dom}");
    }
    let shot = dir.path("page.png");
    chromium(&[
        "--window-size=1000,2200",
        &format!("--screenshot={}", shot.display()),
        &format!("http://{WEB}/"),
    ]);
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 20_000);
    assert_eq!(daemon.stop().code(), Some(0));
}

#[test]
fn bad_http_gets_4xx_and_bounded_resources() {
    needs!("root");
    private_network();
    let daemon = Daemon::start(&config(""));
    wait_for_web();
    assert_eq!(get("/no/such/page").0, 404);
    assert!(
        http(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            .starts_with("HTTP/1.1 405")
    );
    assert!(http(b"\x00\x01garbage\r\n\r\n").starts_with("HTTP/1.1 400"));
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    assert!(http(huge.as_bytes()).starts_with("HTTP/1.1 431"));

    // A slow client that never finishes its head is cut off.
    let mut slow = TcpStream::connect(WEB).unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost:").unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    // Closed by the server (5 s), not by our 15 s read timeout.
    let mut buf = Vec::new();
    assert!(slow.read_to_end(&mut buf).is_ok(), "slow client kept");

    // Hundreds of idle connections from one address: it keeps only its share of the slots, the
    // page is still served to others at once, and memory stays bounded.
    let idle: Vec<TcpStream> = (0..300)
        .filter_map(|_| connect_from("127.0.0.2", WEB))
        .collect();
    assert!(idle.len() >= 100);
    // Past its share, the server closes them at once.
    let mut extra = &idle[idle.len() - 1];
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(extra.read(&mut [0u8; 16]).ok(), Some(0), "connection kept");
    assert_eq!(get("/api/v1/status").0, 200);
    drop(idle);
    // Through all of it: NTP and the daemon are fine.
    assert!(exchange(
        "127.0.0.1:123".parse::<SocketAddr>().unwrap(),
        &client_request(4, 1)
    )
    .is_some());
    assert!(!daemon.log().contains("panicked"));
    assert_eq!(daemon.stop().code(), Some(0));
}

#[test]
fn only_allowed_networks_are_answered_and_this_machine_always() {
    needs!("root");
    private_network();
    // An address of this machine outside 127/8 and outside the allowed network.
    run_ok(Command::new("ip").args(["addr", "add", "192.0.2.1/32", "dev", "lo"]));
    let text = config("allow = [\"10.0.0.0/8\"]").replace(WEB, "0.0.0.0:8123");
    let daemon = Daemon::start(&text);
    wait_for_web();
    // From the LAN address: connected, then closed without an answer.
    let mut lan = TcpStream::connect("192.0.2.1:8123").unwrap();
    lan.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = lan.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut answer = Vec::new();
    let _ = lan.read_to_end(&mut answer);
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    // `pitime status` on the machine itself, from the configuration, as on the Pi.
    let out = run_ok(
        Command::new(BIN)
            .args(["status", "--config"])
            .arg(&daemon.config),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Reference ID"), "{text}");
    assert_eq!(daemon.stop().code(), Some(0));
}
