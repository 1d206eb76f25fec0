//! A u-blox receiver speaking UBX, end to end: the simulated receiver (`ubx = "only"` or
//! `"also"`) on a pseudo-terminal with simulated PPS, the real daemon reading it, and what it
//! serves and shows. Each test runs in its own network namespace.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use pitime::clock::system::realtime_now;
use pitime::time::{NtpTimestamp, Realtime};
use pitime::web::client;
use serde_json::Value;

const WEB: &str = "127.0.0.1:8123";

fn config(simulate: &str) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:123\"]\nrate_limit.enabled = false\n\
         [web]\nlisten = [\"{WEB}\"]\n\n\
         [[source]]\nkind = \"gps\"\n[source.simulate]\n{simulate}\n"
    )
}

/// The daemon's NTP address, as `config` has it.
fn server() -> SocketAddr {
    "127.0.0.1:123".parse().unwrap()
}

/// Polls the status API until `done` holds for it, up to `limit`.
fn wait_for_status(daemon: &Daemon, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let web: SocketAddr = WEB.parse().unwrap();
    let deadline = Instant::now() + limit;
    let mut last = Value::Null;
    while Instant::now() < deadline {
        if let Ok(status) = client::status(web) {
            if done(&status) {
                return status;
            }
            last = status;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("status now: {last:#}\nlog:\n{}", daemon.log());
}

#[test]
fn a_receiver_sending_only_ubx_serves_stratum_1() {
    needs!("root");
    private_network();
    let stats = TempDir::new("ubx-stats");
    let daemon = Daemon::start(&format!(
        "[discipline]\nstats_dir = \"{}\"\n{}",
        stats.path("stats").display(),
        config("ubx = \"only\"\n")
    ));
    wait_for_stratum_1_pps(server(), Duration::from_secs(20), || daemon.log());
    let status = wait_for_status(&daemon, Duration::from_secs(5), |s| {
        s["gps"][0]["pps_samples"].as_u64() > Some(2)
    });
    let gps = &status["gps"][0];
    // Its fix from NAV-PVT, its qErr from TIM-TP, no NMEA at all.
    assert_eq!(gps["fix"], "3D", "{gps:#}");
    assert_eq!(gps["bad_frames"], 0, "{gps:#}");
    assert!(
        gps["pps_qerr_seconds"].as_f64().unwrap().abs() <= 4e-9,
        "{gps:#}"
    );
    assert_eq!(gps["qerr_applied"], false);
    assert_eq!(gps["spoofing"], "none");
    assert_eq!(gps["jamming"]["state"], "ok");
    assert_eq!(gps["gps_utc_offset"], 18);
    let metrics = http_get(WEB, "/metrics");
    for line in [
        "pitime_gps_spoof_detected{source=\"gps\"} 0",
        "pitime_gps_jamming{source=\"gps\"} 0",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    assert!(metrics.contains("pitime_gps_pps_qerr_seconds{source=\"gps\"}"));
    // Each pulse's quantisation error in clockstats, at the pulse's second (written every
    // 16 s): `MJD SECONDS gps pps qerr=... applied=false`.
    let qerr_lines = || -> Vec<String> {
        let dir = std::fs::read_dir(stats.path("stats"))
            .into_iter()
            .flatten()
            .flatten();
        dir.filter(|e| e.file_name().to_string_lossy().starts_with("clockstats."))
            .flat_map(|e| {
                std::fs::read_to_string(e.path())
                    .unwrap_or_default()
                    .lines()
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .filter(|l| l.contains(" gps pps qerr="))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(40);
    while qerr_lines().len() < 3 {
        assert!(
            Instant::now() < deadline,
            "{:?}\n{}",
            qerr_lines(),
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let lines = qerr_lines();
    let seconds: Vec<&str> = lines.iter().map(|l| l.split(' ').nth(1).unwrap()).collect();
    assert!(
        seconds.windows(2).all(|w| w[0] != w[1]),
        "one line a pulse: {lines:?}"
    );
    assert!(
        lines.iter().all(|l| l.ends_with(" applied=false")),
        "{lines:?}"
    );
    assert_eq!(daemon.stop().code(), Some(0));
}

/// The time served now, as (leap indicator, stratum, transmit time).
fn served(server: SocketAddr) -> Option<(u8, u8, Realtime)> {
    let reply = exchange(server, &client_request(4, 0))?;
    let transmit = NtpTimestamp::from_be_bytes(reply.get(40..48)?.try_into().ok()?);
    Some((
        reply[0] >> 6,
        reply[1],
        transmit.to_realtime_near(realtime_now()),
    ))
}

#[test]
fn a_leap_second_announced_by_nav_timels_is_inserted_at_midnight() {
    needs!("root");
    private_network();
    // The simulated receiver's time is 40 s before a UTC midnight, for which it announces an
    // inserted second: pitime (virtual actuator) steps its served time there at start.
    let now = realtime_now();
    let secs = now.as_nanos().div_euclid(1_000_000_000);
    let midnight = (secs.div_euclid(86_400) + 1) * 86_400;
    let offset = (midnight - secs - 40) as f64;
    let daemon = Daemon::start(&config(&format!(
        "clock_offset = {offset}
ubx = \"also\"
leap_announce = [0, 100000]
"
    )));
    let status = wait_for_status(&daemon, Duration::from_secs(30), |s| {
        s["clock"]["leap"] == "insert" && s["clock"]["stratum"] == 1
    });
    let at = status["gps"][0]["leap_second"]["at"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(at.ends_with("T00:00:00.000Z"), "{at}");
    let server = server();
    // The receiver's UTC now: true time, less the inserted second once past midnight.
    let truth = |system: Realtime| {
        let t = system.add_secs_f64(offset);
        let past = t.as_nanos() >= midnight * 1_000_000_000;
        t.add_secs_f64(if past { -1.0 } else { 0.0 })
    };
    let (li, stratum, _) = served(server).unwrap();
    assert_eq!(
        (li, stratum),
        (1, 1),
        "announced to clients before midnight"
    );
    // Until twenty seconds past midnight (long enough for the filters to see a receiver a
    // second off): every reply within 50 ms of the receiver's UTC (a missed or doubled leap
    // second is a whole second off).
    let end = midnight * 1_000_000_000 + 20_000_000_000;
    let mut after = None;
    while truth(realtime_now()).as_nanos() < end {
        let sent = realtime_now();
        let Some((li, stratum, time)) = served(server) else {
            continue;
        };
        let error = time.seconds_since(truth(sent));
        assert!(
            error.abs() < 0.05,
            "served {error:+.3} s off the receiver's UTC:\n{}",
            daemon.log()
        );
        after = Some((li, stratum));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        after,
        Some((0, 1)),
        "after the leap: no leap, still stratum 1"
    );
    // And the receiver, a second behind true time from then on, is still followed: its time
    // agrees with the clock's after the leap, so no jump, neither in the discipline nor in the
    // GPS clock (which saw the receiver's 23:59:60).
    let status = wait_for_status(&daemon, Duration::from_secs(5), |_| true);
    assert_eq!(status["clock"]["refid"], "PPS", "{status:#}");
    assert_eq!(status["clock"]["state"], "locked", "{status:#}");
    let alarms = status["alarms"].to_string();
    assert!(!alarms.contains("jump"), "{alarms}\n{}", daemon.log());
    assert_eq!(status["gps"][0]["jumps_rejected"], 0, "{}", daemon.log());
    assert!(daemon.log().contains("leap second"), "{}", daemon.log());
    assert_eq!(daemon.stop().code(), Some(0));
}

#[test]
fn spoofing_reported_by_the_receiver_raises_the_alarm_and_demotes_the_source() {
    needs!("root");
    private_network();
    let daemon = Daemon::start(&config("ubx = \"only\"\nspoofing = [12, 100000]\n"));
    // Followed before the spoofing starts.
    wait_for_stratum_1_pps(server(), Duration::from_secs(12), || daemon.log());
    let status = wait_for_status(&daemon, Duration::from_secs(30), |s| {
        s["sources"][0]["state"] == "noselect"
    });
    let alarms: Vec<String> = serde_json::from_value(status["alarms"].clone()).unwrap();
    assert!(
        alarms
            .iter()
            .any(|a| a.starts_with("gps: receiver reports spoofing (indicated)")),
        "{alarms:?}"
    );
    assert_eq!(status["gps"][0]["spoof_detected"], true);
    // No longer followed: holding over (still stratum 1 for a while), not from PPS samples.
    assert_ne!(status["clock"]["state"], "locked", "{status:#}");
    let metrics = http_get(WEB, "/metrics");
    assert!(
        metrics.contains("pitime_gps_spoof_detected{source=\"gps\"} 1"),
        "{metrics}"
    );
    assert!(daemon
        .log()
        .contains("receiver reports spoofing: source demoted"));
    assert_eq!(daemon.stop().code(), Some(0));
}
