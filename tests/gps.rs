//! The GPS reference clock end to end: the simulated receiver on a pseudo-terminal with
//! simulated PPS, the real daemon reading it through its serial and PPS drivers, and real NTP
//! clients. Each test runs in its own network namespace.

mod common;

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::*;

/// The simulated receiver's time is this far ahead of the system clock: a client sees it only
/// if pitime serves the receiver's time.
const CLOCK_OFFSET: f64 = 0.5;

/// The tests query several times a second: no rate limit.
fn config(listen: &str, simulate: &str) -> String {
    format!(
        "[server]\nlisten = [\"{listen}\"]\nrate_limit.enabled = false\n\n[[source]]\nkind = \"gps\"\n\n\
         [source.simulate]\nclock_offset = {CLOCK_OFFSET}\n{simulate}\n\n\
         [[source]]\nkind = \"local\"\n"
    )
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn ntp_seconds(b: &[u8]) -> f64 {
    let raw = u64::from_be_bytes(b.try_into().unwrap());
    (raw >> 32) as f64 - 2_208_988_800.0 + (raw & 0xffff_ffff) as f64 / 4_294_967_296.0
}

/// One query: stratum, refid and the offset of the served time from the system clock.
fn query(server: SocketAddr) -> Option<(u8, [u8; 4], f64)> {
    let t1 = now();
    let reply = exchange(server, &client_request(4, 0))?;
    let t4 = now();
    let offset = ((ntp_seconds(&reply[32..40]) - t1) + (ntp_seconds(&reply[40..48]) - t4)) / 2.0;
    let (stratum, refid) = stratum_refid(&reply);
    Some((stratum, refid, offset))
}

#[test]
fn ntpdig_sees_stratum_1_pps_and_the_receivers_time() {
    needs!("root", "ntpdig");
    private_network();
    let daemon = Daemon::start(&config("127.0.0.1:123", ""));
    let server: SocketAddr = "127.0.0.1:123".parse().unwrap();
    wait_for_stratum_1_pps(server, Duration::from_secs(15), || daemon.log());
    let (stratum, offset) = ntpdig_json("ntpdig", "127.0.0.1");
    assert_eq!(stratum, 1);
    // The simulation's error is microseconds; ntpdig's own on loopback is well under 1 ms.
    assert!(
        (offset - CLOCK_OFFSET).abs() < 0.002,
        "ntpdig offset {offset}"
    );
    let (_, _, ours) = query(server).unwrap();
    assert!((ours - CLOCK_OFFSET).abs() < 0.002, "offset {ours}");
    assert!(daemon.log().contains("receiver time trusted"));
    assert_eq!(daemon.stop().code(), Some(0));
}

#[test]
fn faults_never_reach_the_clients() {
    needs!("root");
    private_network();
    let daemon = Daemon::start(&config(
        "127.0.0.1:123",
        "garbage = 0.3\nantenna_fault = [2, 4]\nunplug = [8, 11]\njump = [16, 22]\n\
         fix_loss = [27, 50]",
    ));
    let server: SocketAddr = "127.0.0.1:123".parse().unwrap();
    let start = Instant::now();
    let mut seen = Vec::new();
    while start.elapsed() < Duration::from_secs(42) {
        if let Some(q) = query(server) {
            seen.push((start.elapsed().as_secs_f64(), q));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = daemon.log();
    let during = |from: f64, to: f64| seen.iter().filter(move |(t, _)| *t >= from && *t < to);
    let pps = |q: &(u8, [u8; 4], f64)| q.0 == 1 && &q.1 == b"PPS\0";
    // Served either the receiver's time or, as the fallback, the system clock's: never the
    // spoofed day, never anything between.
    for (t, (stratum, refid, offset)) in &seen {
        let receiver = (offset - CLOCK_OFFSET).abs() < 0.005;
        let local = offset.abs() < 0.005 && (*stratum, refid) == (10, b"LOCL");
        assert!(
            receiver || local,
            "at {t:.1} s: stratum {stratum} offset {offset}\n{log}"
        );
    }
    // Through garbage, an antenna fault and before the unplug: stratum 1 from PPS.
    assert!(during(6.0, 8.0).any(|(_, q)| pps(q)), "{seen:?}\n{log}");
    assert!(log.contains("antenna fault"), "{log}");
    // Unplugged and back: reconnected by itself, PPS again.
    assert!(log.contains("receiver disconnected"), "{log}");
    assert_eq!(log.matches("receiver connected").count(), 2, "{log}");
    assert!(during(13.0, 16.0).any(|(_, q)| pps(q)), "{seen:?}\n{log}");
    // A day's jump: rejected and flagged, not followed; trusted again when it ends.
    assert!(log.contains("receiver time jumped: not followed"), "{log}");
    assert!(during(23.0, 27.0).any(|(_, q)| pps(q)), "{seen:?}\n{log}");
    // Fix lost: the source stops being selectable and the clock holds over on what it
    // learned, still at the receiver's time, rather than falling back to the local clock.
    assert!(log.contains("receiver lost its fix"), "{log}");
    assert!(log.contains("holdover: no reference"), "{log}");
    assert!(
        during(38.0, 42.0).all(|(_, q)| q.0 == 1 && (q.2 - CLOCK_OFFSET).abs() < 0.005),
        "{seen:?}\n{log}"
    );
    assert_eq!(daemon.stop().code(), Some(0));
}

#[test]
fn replay_prints_each_verdict_as_json() {
    let dir = TempDir::new("replay");
    let capture = dir.write(
        "capture.log",
        "# a comment line\n\
         $GPGGA,085000.00,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*69\r\n\
         \x00\x7f garbage\r\n\
         $GPRMC,085001.00,A,4807.038,N,01131.000,E,0.0,0.0,190726,,,A*5B\r\n\
         $GPRMC,085002.00,A,4807.038,N,01131.000,E,0.0,0.0,190726,,,A*6F\r\n",
        // (the last checksum is wrong: 58 is right)
    );
    let out = run_ok(Command::new(env!("CARGO_BIN_EXE_pitime")).args([
        "replay",
        "nmea",
        capture.to_str().unwrap(),
        "--not-before",
        "2020-01-01",
    ]));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"sentence\":\"GGA\",\"valid\":false,\"reason\":\"no date known yet\"}\n\
         {\"sentence\":\"RMC\",\"time\":\"2026-07-19T08:50:01.000Z\",\"valid\":true}\n\
         {\"sentence\":\"RMC\",\"valid\":false,\"reason\":\"bad checksum\"}\n"
    );
}

/// A receiver of our own on a pseudo-terminal: a megabyte without a newline, NUL bytes and
/// line noise (a wrong baud rate) before good sentences are counted and then the time is
/// trusted; when the terminal vanishes the port is reopened quietly, the failure logged once.
/// Needs no root: free ports, no network namespace.
#[test]
fn serial_garbage_is_counted_and_a_vanished_tty_is_reopened_quietly() {
    let (mut master, slave) = pitime::sim::gps_runner::pseudo_terminal().unwrap();
    let tty = std::fs::read_link(format!("/proc/self/fd/{}", slave.as_raw_fd())).unwrap();
    drop(slave);
    // The device by a name of its own, as udev names a USB receiver: the name goes with it.
    let dir = TempDir::new("tty");
    let device = dir.path("gps");
    std::os::unix::fs::symlink(&tty, &device).unwrap();
    let device = device.display();
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .to_string()
    };
    let web = free();
    let daemon = Daemon::start(&format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n[web]\nlisten = [\"{web}\"]\n\
         [[source]]\nkind = \"gps\"\ndevice = \"{device}\"\npps = \"\"\n"
    ));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = std::thread::spawn({
        let stop = stop.clone();
        move || {
            use std::io::Write;
            let mut noise: Vec<u8> = vec![b'x'; 1 << 20];
            noise.extend([0u8; 4096]);
            let mut x = 0x2545_f491_4f6c_dd1du64;
            noise.extend((0..4096).map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            }));
            noise.extend(b"\r\n");
            master.write_all(&noise).unwrap();
            // Then a good RMC at the start of every second.
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t = now();
                std::thread::sleep(Duration::from_secs_f64(t.ceil() - t));
                let s = t.ceil() as i64;
                let (y, mo, d) = pitime::time::civil_from_days(s.div_euclid(86400));
                let body = format!(
                    "GPRMC,{:02}{:02}{:02}.00,A,4807.038,N,01131.000,E,0.0,0.0,{d:02}{mo:02}{:02},,,A",
                    s.rem_euclid(86400) / 3600,
                    s.rem_euclid(3600) / 60,
                    s.rem_euclid(60),
                    y % 100
                );
                let line = pitime::refclock::gps::nmea::sentence(&body);
                if master.write_all(line.as_bytes()).is_err() {
                    break;
                }
            }
            master
        }
    });
    let gps =
        || pitime::web::client::status(web.parse().unwrap()).unwrap_or_default()["gps"][0].clone();
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let g = gps();
        if g["lines_dropped"].as_u64() >= Some(1)
            && g["bad_frames"].as_u64() >= Some(1)
            && g["trusted"] == true
        {
            break;
        }
        assert!(Instant::now() < deadline, "{g}\n{}", daemon.log());
        std::thread::sleep(Duration::from_millis(200));
    }

    // The terminal vanishes: the port is retried every second, the failure logged once.
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    drop(writer.join().unwrap());
    std::fs::remove_file(dir.path("gps")).unwrap();
    // A hung-up terminal reads as silence: the port is opened again after 10 s of it.
    daemon.wait_for_log_within("cannot open the receiver", 1, Duration::from_secs(20));
    // A bounded window for something that must not happen: three more tries.
    std::thread::sleep(Duration::from_millis(3500));
    assert_eq!(
        daemon.log().matches("cannot open the receiver").count(),
        1,
        "{}",
        daemon.log()
    );
    assert_eq!(daemon.stop().code(), Some(0));
}

/// The daemon started with `config` and its command socket in its own directory: the
/// daemon, the socket's path and the address it serves NTP on. Needs no root: loopback, a
/// port the kernel picks.
fn with_socket(config: &str) -> (Daemon, std::path::PathBuf, SocketAddr) {
    let dir = TempDir::new("jump");
    let socket = dir.path("pitime.sock");
    let path = dir.write("pitime.toml", config);
    let daemon = Daemon::start_in(dir, path, &["--socket", socket.to_str().unwrap()]);
    let server = daemon.logged_addr("serving NTP");
    (daemon, socket, server)
}

/// Waits up to `limit` for the served time to be `offset` from the system clock.
fn wait_for_offset(server: SocketAddr, offset: f64, limit: Duration, log: impl Fn() -> String) {
    let deadline = Instant::now() + limit;
    while query(server).is_none_or(|(_, _, o)| (o - offset).abs() > 0.005) {
        assert!(
            Instant::now() < deadline,
            "not serving {offset} s within {limit:?}: {:?}\n{}",
            query(server),
            log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The receiver's time jumps by a second at 20 s and stays there.
const JUMP: &str = "jump = [20, 3600]\njump_seconds = 1";
/// The alarm's last words.
const HELD: &str = "`pitime accept-jump gps` to follow";

#[test]
fn a_lone_jump_is_held_over_until_the_operator_accepts_it() {
    let (daemon, socket, server) = with_socket(&config("127.0.0.1:0", JUMP));
    wait_for_stratum_1_pps(server, Duration::from_secs(15), || daemon.log());
    daemon.wait_for_log_within(HELD, 1, Duration::from_secs(60));
    let (stratum, _, offset) = query(server).unwrap();
    assert!(
        stratum == 1 && (offset - CLOCK_OFFSET).abs() < 0.005,
        "stratum {stratum}, offset {offset}\n{}",
        daemon.log()
    );
    assert!(daemon.log().contains("holdover: no reference"));
    let accept = |source: &str| {
        run(Command::new(BIN)
            .args(["accept-jump", source, "--socket"])
            .arg(&socket))
    };
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let unknown = accept("dcf77");
    assert!(!unknown.status.success());
    assert_eq!(
        text(&unknown.stderr),
        "pitime: refused: no source is named `dcf77`\n"
    );
    let accepted = accept("gps");
    assert!(accepted.status.success(), "{}", text(&accepted.stderr));
    assert!(
        text(&accepted.stdout).starts_with("gps's jump of 1.0"),
        "{}",
        text(&accepted.stdout)
    );
    wait_for_offset(server, CLOCK_OFFSET + 1.0, Duration::from_secs(5), || {
        daemon.log()
    });
    // Logged with who asked; nothing is pending any more.
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let log = daemon.log();
    let line = log
        .lines()
        .find(|l| l.contains("jump accepted by the operator"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains(&format!("uid={uid}")), "{line}");
    let again = accept("gps");
    assert_eq!(
        text(&again.stderr),
        "pitime: refused: `gps` has no pending jump\n"
    );
    assert_eq!(daemon.stop().code(), Some(0));
    assert!(!socket.exists(), "the socket outlived the daemon");
}

#[test]
fn a_lone_jump_is_followed_at_once_when_an_upstream_server_agrees() {
    // An upstream server that answers only after the jump, with the new time: a second
    // pitime whose own simulated receiver is a second ahead.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .unwrap()
        .port();
    let upstream = format!(
        "\n[[source]]\nkind = \"ntp\"\nserver = \"127.0.0.1\"\nport = {port}\nminpoll = 0\n\
         maxpoll = 0\n"
    );
    let (daemon, socket, server) = with_socket(&(config("127.0.0.1:0", JUMP) + &upstream));
    wait_for_stratum_1_pps(server, Duration::from_secs(15), || daemon.log());
    daemon.wait_for_log_within(HELD, 1, Duration::from_secs(60));
    let (_, _, offset) = query(server).unwrap();
    assert!((offset - CLOCK_OFFSET).abs() < 0.005, "followed alone");
    let agreeing = Daemon::start(&format!(
        "[server]\nlisten = [\"127.0.0.1:{port}\"]\nrate_limit.enabled = false\n\n\
         [[source]]\nkind = \"gps\"\n[source.simulate]\nclock_offset = {}\n",
        CLOCK_OFFSET + 1.0
    ));
    wait_for_offset(server, CLOCK_OFFSET + 1.0, Duration::from_secs(60), || {
        daemon.log() + &agreeing.log()
    });
    let log = daemon.log();
    let followed = log
        .lines()
        .find(|l| l.contains("the followed sources jumped; following"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(followed.contains("sources=2"), "{followed}");
    assert!(!log.contains("jump accepted"), "{log}");
    assert_eq!(agreeing.stop().code(), Some(0));
    assert_eq!(daemon.stop().code(), Some(0));
    assert!(!socket.exists());
}

#[test]
fn a_held_jump_ends_unsynchronised_when_holdover_runs_out() {
    // No local fallback: after holdover clients are told to ignore the server.
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nrate_limit.enabled = false\n\
         [discipline]\nholdover = 15\n\n[[source]]\nkind = \"gps\"\n\n\
         [source.simulate]\nclock_offset = {CLOCK_OFFSET}\n{JUMP}\n"
    );
    let (daemon, _socket, server) = with_socket(&config);
    wait_for_stratum_1_pps(server, Duration::from_secs(15), || daemon.log());
    daemon.wait_for_log_within(HELD, 1, Duration::from_secs(60));
    daemon.wait_for_log_within("served as unsynchronised", 1, Duration::from_secs(30));
    let reply = exchange(server, &client_request(4, 0)).unwrap();
    // Leap indicator 3 (alarm), stratum 16: never the receiver's new time as if it were good.
    assert_eq!((reply[0] >> 6, reply[1]), (3, 16), "{}", daemon.log());
    assert_eq!(daemon.stop().code(), Some(0));
}
