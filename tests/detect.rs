//! The first-hour tools end to end through the real binary: `pitime detect` finding the
//! simulated receiver on a pseudo-terminal, `pitime replay dcf77` on an inverted capture, and
//! the manual page. GPIO lines are left out (`--chip none`): this machine has no gpio-sim, so
//! the classifier of their edges is tested on its own (src/detect/pulses.rs).

mod common;

use std::process::Command;

use common::{run, run_ok, TempDir, BIN};
use pitime::config::GpsSimConfig;
use pitime::replay::format_dcf77_edges;
use pitime::sim::gps_runner::SimulatedGps;
use pitime::sim::longwave::LongwaveSignal;

fn receiver() -> GpsSimConfig {
    GpsSimConfig {
        sentence_delay: 0.1,
        sentence_jitter: 0.005,
        pps_jitter: 1e-6,
        jump_seconds: 0.0,
        ..GpsSimConfig::default()
    }
}

#[test]
fn detect_finds_the_simulated_receiver_and_writes_a_configuration_that_checks() {
    let (sim, _pulses) = SimulatedGps::start(receiver(), "detect").unwrap();
    let device = sim.device.to_str().unwrap();
    let dir = TempDir::new("detect");
    let file = dir.path("sources.toml");
    let out = run_ok(
        Command::new(BIN)
            .args(["detect", "--serial", device])
            .args([
                "--chip",
                "none",
                "--pps",
                "none",
                "--json",
                "--write",
                file.to_str().unwrap(),
            ]),
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let port = &report["serial"][0];
    assert_eq!(port["device"], device, "{report:#}");
    assert_eq!(port["baud"], 9600, "{report:#}");
    assert_eq!(port["stream"]["fix"], true, "{report:#}");
    let types = port["stream"]["sentence_types"].as_array().unwrap();
    assert!(types.contains(&"GPRMC".into()), "{types:?}");
    let suggestion = report["suggestion"].as_str().unwrap();
    assert!(
        suggestion.contains(&format!("device = \"{device}\"\nbaud = 9600\n")),
        "{suggestion}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), suggestion);
    let check = run_ok(Command::new(BIN).arg("check-config").arg(&file));
    assert_eq!(String::from_utf8_lossy(&check.stdout), "ok\n");

    // An existing file is kept unless --force, and refused before any listening.
    let again = |force: &[&str]| {
        run(Command::new(BIN)
            .args([
                "detect", "--serial", "none", "--chip", "none", "--pps", "none",
            ])
            .arg("--write")
            .arg(&file)
            .args(force))
    };
    let refused = again(&[]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), suggestion);
    assert!(again(&["--force"]).status.success());
    assert!(std::fs::read_to_string(&file)
        .unwrap()
        .contains("Nothing found"));
}

#[test]
fn an_inverted_dcf77_capture_says_to_add_active_low() {
    let signal = LongwaveSignal {
        duration: 200.0,
        jitter: 0.003,
        active_low: true,
        ..LongwaveSignal::default()
    };
    let dir = TempDir::new("inverted");
    let file = dir.write("edges.txt", &format_dcf77_edges(&signal.generate().edges));
    let replay = |args: &[&str]| {
        run(Command::new(BIN)
            .args(["replay", "dcf77"])
            .arg(&file)
            .args(args))
    };
    let as_given = replay(&[]);
    let stderr = String::from_utf8_lossy(&as_given.stderr);
    assert!(!as_given.status.success(), "{stderr}");
    assert!(as_given.stdout.is_empty());
    assert!(
        stderr.contains("look inverted") && stderr.contains("--active-low"),
        "{stderr}"
    );
    assert!(stderr.contains("no minute decoded"), "{stderr}");
    let right = replay(&["--active-low"]);
    assert!(right.status.success());
    assert!(
        right.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&right.stderr)
    );
    assert!(!right.stdout.is_empty());
}

#[test]
fn the_manual_page_has_every_command() {
    let help = run_ok(Command::new(BIN).arg("--help"));
    let help = String::from_utf8_lossy(&help.stdout);
    let commands: Vec<&str> = help
        .split("Commands:")
        .nth(1)
        .unwrap()
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|&c| c != "help")
        .collect();
    assert!(commands.contains(&"detect") && commands.contains(&"capture"));
    let page = run_ok(Command::new(BIN).arg("manpage"));
    let page = String::from_utf8_lossy(&page.stdout).replace("\\-", "-");
    assert!(page.starts_with(".ie") && page.contains(".TH pitime 8"));
    for c in commands {
        assert!(page.contains(&format!(".SS \"pitime {c}")), "{c} missing");
    }
    assert!(!page.contains("pitime manpage"));
}
