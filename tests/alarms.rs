//! Alarms end to end: a hardware fault of the simulated receiver shows in the status API, in
//! `pitime status` and in the log, once, and clears when the fault ends. In its own network
//! namespace.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use pitime::web::client;

const WEB: &str = "127.0.0.1:8123";

/// Polls the status API until `done` says yes about its alarms, up to `limit`.
fn wait_for_alarms(daemon: &Daemon, limit: Duration, done: impl Fn(&[String]) -> bool) {
    let web: SocketAddr = WEB.parse().unwrap();
    let deadline = Instant::now() + limit;
    let mut last = Vec::new();
    while Instant::now() < deadline {
        if let Ok(status) = client::status(web) {
            last = serde_json::from_value(status["alarms"].clone()).unwrap();
            if done(&last) {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("alarms now: {last:?}\nlog:\n{}", daemon.log());
}

#[test]
fn pulses_missing_while_the_receiver_has_a_fix_raise_an_alarm_until_they_return() {
    needs!("root");
    private_network();
    // The receiver has its fix from the start; its pulses come only after 30 s.
    let daemon = Daemon::start(&format!(
        "[server]\nlisten = [\"127.0.0.1:123\"]\n[web]\nlisten = [\"{WEB}\"]\n\n\
         [[source]]\nkind = \"gps\"\n[source.simulate]\npps_loss = [0, 30]\n"
    ));
    let pps = |a: &[String]| {
        a.iter()
            .any(|a| a.starts_with("gps: no PPS pulses on the simulated PPS while"))
    };
    wait_for_alarms(&daemon, Duration::from_secs(30), pps);
    let shown = run_ok(Command::new(BIN).args(["status", "--address", WEB]));
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("Alarm           : gps: no PPS pulses") && shown.contains("NMEA"),
        "{shown}"
    );
    wait_for_alarms(&daemon, Duration::from_secs(30), |a| !pps(a));
    daemon.wait_for_log("cleared: gps: no PPS pulses");
    let log = daemon.log();
    assert_eq!(log.matches("gps: no PPS pulses").count(), 2, "{log}");
    assert_eq!(daemon.stop().code(), Some(0));
}

#[test]
fn notices_from_the_configuration_are_alarms_until_removed() {
    // Unprivileged ports of its own, so that it runs as any user.
    let web = "127.0.0.1:18124";
    let config = |notices: &str| {
        format!(
            "[server]\nlisten = [\"127.0.0.1:18123\"]\n\
             [web]\nlisten = [\"{web}\"]\nnotices = {notices}\n\
             [[source]]\nkind = \"local\"\n"
        )
    };
    let daemon = Daemon::start(&config(
        r#"["ignoring /boot/firmware/hostname: \"-x\" is not a host name"]"#,
    ));
    daemon.wait_for_log("ignoring /boot/firmware/hostname");
    let status = client::status(web.parse().unwrap()).unwrap();
    assert!(
        status["alarms"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "ignoring /boot/firmware/hostname: \"-x\" is not a host name"),
        "{status}"
    );
    let metrics = http_get(web, "/metrics");
    assert!(
        metrics.contains(r#"pitime_alarm_active{subject="notice 1",kind="notice"} 1"#),
        "{metrics}"
    );
    daemon.reload(&config("[]"));
    daemon.wait_for_log("cleared: ignoring /boot/firmware/hostname");
    assert_eq!(daemon.stop().code(), Some(0));
}
