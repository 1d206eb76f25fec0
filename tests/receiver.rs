//! Detecting and configuring the receiver end to end: the real daemon against the simulated
//! u-blox and MediaTek receivers on a pseudo-terminal, whose speed follows the port's termios
//! (at another speed it hears nothing and sends noise). No root needed: loopback, free ports.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// A daemon with one simulated GPS source and a local fallback, NTP and the status page on
/// ports the kernel picks.
struct Setup {
    daemon: Daemon,
    web: SocketAddr,
    ntp: SocketAddr,
}

fn start(simulate: &str, receiver: &str) -> Setup {
    let daemon = Daemon::start(&format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nrate_limit.enabled = false\n\
         [web]\nlisten = [\"127.0.0.1:0\"]\n\
         [[source]]\nkind = \"gps\"\n[source.simulate]\n{simulate}\n{receiver}\n\
         [[source]]\nkind = \"local\"\n"
    ));
    let web = daemon.logged_addr("serving the status page");
    let ntp = daemon.logged_addr("serving NTP");
    Setup { daemon, web, ntp }
}

impl Setup {
    fn gps(&self) -> Value {
        pitime::web::client::status(self.web).unwrap_or_default()["gps"][0].clone()
    }

    /// Waits until the GPS status satisfies `ok`.
    fn wait(&self, what: &str, limit: Duration, ok: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let g = self.gps();
            if ok(&g) {
                return g;
            }
            assert!(
                Instant::now() < deadline,
                "{what} not within {limit:?}: {g:#}\n{}",
                self.daemon.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stratum 1 from the pulse: the receiver's time is served.
    fn wait_for_pps(&self) {
        wait_for_stratum_1_pps(self.ntp, Duration::from_secs(30), || {
            format!("{:#}\n{}", self.gps(), self.daemon.log())
        });
    }
}

fn states(g: &Value) -> Vec<(String, String)> {
    g["settings"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or("").to_string(),
                s["state"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn all_applied(g: &Value) -> bool {
    let s = states(g);
    !s.is_empty() && s.iter().all(|(_, state)| state == "applied")
}

#[test]
fn without_a_receiver_table_the_receiver_is_only_detected() {
    let s = start("model = \"NEO-M8T\"", "");
    let g = s.wait("detection", Duration::from_secs(20), |g| {
        g["receiver"] != "detecting" && g["receiver"].is_string()
    });
    assert_eq!(
        g["receiver"], "u-blox NEO-M8T, firmware TIM 1.10, protocol 20.01",
        "{g:#}"
    );
    assert_eq!(g["settings"], Value::Array(vec![]));
    assert_eq!(g["baud"], 9600);
    let page = http_get(&s.web.to_string(), "/");
    assert!(page.contains("u-blox NEO-M8T, firmware TIM 1.10"), "{page}");
    let status =
        run_ok(std::process::Command::new(BIN).args(["status", "--address", &s.web.to_string()]));
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(
        text.contains("Receiver        : u-blox NEO-M8T, firmware TIM 1.10, protocol 20.01 (gps)"),
        "{text}"
    );
    assert_eq!(s.daemon.stop().code(), Some(0));
}

#[test]
fn configuration_is_applied_at_start_and_again_after_an_unplug() {
    let s = start(
        "model = \"NEO-M8T\"\nunplug = [25, 28]",
        "[source.receiver]\nbaud = 115200\ntiming_mode = \"survey-in\"\nsurvey_seconds = 4\n\
         survey_accuracy = 10.0\n",
    );
    let g = s.wait("configuration", Duration::from_secs(24), |g| {
        all_applied(g) && g["configuration_passes"] == 1
    });
    assert_eq!(g["baud"], 115_200, "{g:#}");
    let names: Vec<String> = states(&g).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "baud 115200",
            "rate 1 Hz",
            "sentences GGA GSA GSV RMC ZDA",
            "navigation model stationary",
            "timepulse",
            "timing mode"
        ]
    );
    // The survey-in runs to its end on the status page.
    s.wait("survey-in", Duration::from_secs(20), |g| {
        g["survey"]["valid"] == true
    });
    s.wait_for_pps();
    // Unplugged (and so powered off) and back: at 9600 baud with its defaults, found and
    // configured again.
    s.daemon
        .wait_for_log_within("receiver disconnected", 1, Duration::from_secs(40));
    let g = s.wait("second pass", Duration::from_secs(40), |g| {
        g["configuration_passes"] == 2 && all_applied(g)
    });
    assert_eq!(g["baud"], 115_200);
    assert_eq!(s.daemon.log().matches("receiver configured").count(), 2);
    s.wait_for_pps();
    assert_eq!(s.daemon.stop().code(), Some(0));
}

#[test]
fn a_mediatek_receiver_is_configured_by_pmtk() {
    let s = start(
        "model = \"MT3339\"",
        "[source.receiver]\nbaud = 38400\nsentences = \"time\"\nnav_model = \"unchanged\"\n",
    );
    let g = s.wait("configuration", Duration::from_secs(24), all_applied);
    assert_eq!(
        g["receiver"], "MediaTek PA6H, release AXN_2.31_3339_13101700",
        "{g:#}"
    );
    assert_eq!(g["baud"], 38400);
    // GSA and GSV are off: three sentences a second (RMC, GGA, ZDA) where there were nine.
    let count = || s.gps()["sentences"].as_u64().unwrap();
    let before = count();
    // A measuring window, not a wait for an event.
    std::thread::sleep(Duration::from_secs(4));
    let per_second = (count() - before) as f64 / 4.0;
    assert!(
        (2.0..=4.5).contains(&per_second),
        "{per_second} sentences a second"
    );
    s.wait_for_pps();
    assert_eq!(s.daemon.stop().code(), Some(0));
}

#[test]
fn a_receiver_that_refuses_everything_still_serves_time() {
    let s = start(
        "model = \"NEO-M8N\"\nnak_all = true",
        "[source.receiver]\nbaud = 115200\ntiming_mode = \"survey-in\"\n",
    );
    let g = s.wait("failures", Duration::from_secs(24), |g| {
        g["configuration_passes"] == 1
    });
    let states = states(&g);
    assert!(
        states.iter().all(|(_, state)| state == "failed"),
        "{states:?}"
    );
    let timing = &g["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "timing mode")
        .unwrap()["reason"];
    assert_eq!(timing, "NEO-M8N is not a timing receiver");
    assert_eq!(g["baud"], 9600);
    let log = s.daemon.log();
    assert!(
        log.contains("receiver setting baud 115200 failed: refused (UBX-ACK-NAK)"),
        "{log}"
    );
    let page = http_get(&s.web.to_string(), "/");
    assert!(
        page.contains(r#"<td class="bad">failed: refused (UBX-ACK-NAK)</td>"#),
        "{page}"
    );
    s.wait_for_pps();
    assert_eq!(s.daemon.stop().code(), Some(0));
}

#[test]
fn a_receiver_that_never_answers_is_used_as_nmea_only() {
    let s = start(
        "model = \"NEO-M8N\"\ndeaf = true",
        "[source.receiver]\nbaud = 115200\n",
    );
    s.daemon.wait_for_log_within(
        "receiver answered neither UBX-MON-VER nor PMTK605: NMEA only",
        1,
        Duration::from_secs(20),
    );
    s.wait("NMEA only", Duration::from_secs(5), |g| {
        g["receiver"] == "NMEA only (no answer to UBX-MON-VER or PMTK605)"
    });
    s.wait_for_pps();
    assert_eq!(s.daemon.stop().code(), Some(0));
}

#[test]
fn a_receiver_that_resets_mid_configuration_is_configured_on_the_next_pass() {
    let s = start(
        "model = \"NEO-M8T\"\nreset_after = 4",
        "[source.receiver]\nbaud = 115200\n",
    );
    // Reset after four commands: back at 9600 baud with its defaults, the port at 115200
    // hears nothing; it is found at 9600 and configured from the start.
    s.daemon
        .wait_for_log_within("receiver silent", 1, Duration::from_secs(40));
    let g = s.wait("configured after the reset", Duration::from_secs(60), |g| {
        all_applied(g) && g["baud"] == 115_200
    });
    assert!(g["configuration_passes"].as_u64() >= Some(1), "{g:#}");
    s.wait_for_pps();
    assert_eq!(s.daemon.stop().code(), Some(0));
}

#[test]
fn a_generation_9_timing_receiver_is_configured_by_keys() {
    let s = start(
        "model = \"ZED-F9T\"",
        "[source.receiver]\nbaud = 38400\ntiming_mode = \"survey-in\"\nsurvey_seconds = 3\n\
         survey_accuracy = 10.0\nconstellations = [\"gps\", \"galileo\"]\n",
    );
    let g = s.wait("configuration", Duration::from_secs(24), all_applied);
    assert_eq!(
        g["receiver"], "u-blox ZED-F9T, firmware TIM 2.20, protocol 29.00",
        "{g:#}"
    );
    assert_eq!(g["baud"], 38400);
    assert_eq!(states(&g).len(), 7, "{g:#}");
    // NAV-SVIN, turned on with the timing mode, reports the survey to its end.
    s.wait("survey-in", Duration::from_secs(20), |g| {
        g["survey"]["valid"] == true
    });
    let page = http_get(&s.web.to_string(), "/");
    assert!(page.contains("done: "), "{page}");
    assert!(page.contains("receiver setting (38400 baud)"), "{page}");
    s.wait_for_pps();
    assert_eq!(s.daemon.stop().code(), Some(0));
}
