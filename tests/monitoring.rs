//! monitoring/: the metrics, the alerting rules and the dashboard, checked by Prometheus' own
//! tools: `promtool` on the metrics text and the rules (with their unit tests).

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use pitime::config::SourceKind;
use pitime::discipline::{SourceReport, Standing};
use pitime::time::Realtime;
use pitime::web::status::Status;

const MONITORING: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/monitoring");

/// Runs promtool with `args`, `input` on its stdin; panics with its output unless it succeeds.
fn promtool(args: &[&str], input: &str) -> String {
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(MONITORING)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

/// Whatever users name their sources, `/metrics` is valid text and passes promtool's lint
/// (names, units, `_total` on counters, help on every family).
#[test]
fn metrics_with_hostile_source_names_pass_promtool() {
    needs!("promtool");
    let names = [
        "quote\" } x=\"1",
        "back\\slash\\",
        "new\nline pitime_stratum 0",
        "Frankfurt {Mainflingen} # 77.5 kHz",
        "\u{e9}t\u{e9}\t\u{1F6F0}",
    ];
    let status = Status {
        sources: names
            .iter()
            .map(|name| SourceReport {
                name: name.to_string(),
                kind: SourceKind::Gps,
                state: Standing::Falseticker,
                reach: 255,
                last_sample_ago: None,
                offset: Some(-0.25),
                jitter: Some(f64::INFINITY),
                error: None,
                refid: None,
                stratum: None,
                outliers: 0,
            })
            .collect(),
        ..Status::default()
    };
    let text =
        pitime::web::metrics::render(&status, Realtime::from_nanos(1_700_000_000_000_000_000));
    promtool(&["check", "metrics"], &text);
}

#[test]
fn alerting_rules_pass_promtool_and_their_unit_tests() {
    needs!("promtool");
    assert!(Path::new(MONITORING).join("pitime-alerts.yml").is_file());
    promtool(&["check", "rules", "pitime-alerts.yml"], "");
    promtool(&["test", "rules", "pitime-alerts.test.yml"], "");
}

/// A `prometheus` started by a test, killed on drop.
struct Prometheus(std::process::Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const PROMETHEUS: &str = "127.0.0.1:19090";

/// GET `path` from Prometheus: the body.
fn prometheus_get(path: &str) -> Option<String> {
    http_get(PROMETHEUS, path)
}

/// GET `path` from `server`: the body of a 200 answer. HTTP/1.0, so it is never chunked.
fn http_get(server: &str, path: &str) -> Option<String> {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(server).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    answer.starts_with("HTTP/1.0 200").then_some(())?;
    Some(answer.split_once("\r\n\r\n")?.1.to_string())
}

/// The result of an instant query (`data.result`), failing the test on an error.
fn query(promql: &str) -> Vec<serde_json::Value> {
    let encoded: String = promql
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect();
    let body = prometheus_get(&format!("/api/v1/query?query={encoded}"))
        .unwrap_or_else(|| panic!("query failed: {promql}"));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "success", "{promql}: {body}");
    v["data"]["result"].as_array().unwrap().clone()
}

/// (instance, alertname) of every alert firing now.
fn firing() -> Vec<(String, String)> {
    let body = prometheus_get("/api/v1/alerts").expect("/api/v1/alerts");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut alerts: Vec<(String, String)> = v["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["state"] == "firing")
        .map(|a| {
            let l = &a["labels"];
            let text = |k: &str| l[k].as_str().unwrap_or_default().to_string();
            (text("instance"), text("alertname"))
        })
        .collect();
    alerts.sort();
    alerts.dedup();
    alerts
}

/// /metrics is made from the sources configured now: one renamed or removed on reload leaves
/// no series behind (Prometheus would otherwise keep alerting on a source that is gone).
#[test]
fn a_source_removed_on_reload_leaves_no_series_behind() {
    // No network namespace of its own: ports nobody uses.
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .to_string()
    };
    let (ntp, web) = (free(), free());
    let config = |gps: &str| {
        format!(
            "[server]\nlisten = [\"{ntp}\"]\n[web]\nlisten = [\"{web}\"]\n\
             [[source]]\nkind = \"gps\"\nname = \"{gps}\"\n[source.simulate]\n\
             [[source]]\nkind = \"local\"\n"
        )
    };
    let daemon = Daemon::start(&config("roof"));
    let metrics_once = |has: &str| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = http_get(&web, "/metrics").unwrap_or_default();
            if text.contains(has) {
                return text;
            }
            assert!(Instant::now() < deadline, "no {has} in /metrics:\n{text}");
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let before = metrics_once(r#"pitime_gps_satellites{source="roof""#);
    assert!(before.contains(r#"pitime_source_state{source="roof",state="candidate"}"#));
    daemon.reload(&config("mast"));
    let after = metrics_once(r#"pitime_gps_satellites{source="mast""#);
    assert!(
        !after.contains("roof"),
        "a series of the removed source:\n{after}"
    );
    assert_eq!(daemon.stop().code(), Some(0));
}

fn pitime_config(n: u16, sources: &str) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:1100{n}\"]\n\n[web]\nlisten = [\"127.0.0.1:1800{n}\"]\n\n\
         {sources}\n[[source]]\nkind = \"local\"\n"
    )
}

/// Three demo servers scraped by a real Prometheus with the shipped rules: a healthy one; one
/// set 250 ms off by its receiver, which is then unplugged (holdover keeps the error); and one
/// whose receiver loses its pulse and antenna, with a DCF77 receiver that hears nothing and the
/// healthy server as an upstream NTP source; and a fourth target where nothing listens. Each alert expected fires for its server, none for the healthy one, and
/// every query of the dashboard returns data.
#[test]
fn a_fleet_scraped_by_prometheus_raises_the_expected_alerts_and_fills_the_dashboard() {
    needs!("root", "prometheus");
    private_network();
    // A source name with everything that needs escaping, read back through Prometheus.
    let hostile = "GPS \"rooftop\" \\ Zürich {1}";
    let healthy = Daemon::start(&pitime_config(
        1,
        &format!(
            "[[source]]\nkind = \"gps\"\nname = {}\n[source.simulate]\n\n\
             [[source]]\nkind = \"dcf77\"\nreceiver_delay = 0.04\n[source.simulate]\n",
            serde_json::to_string(hostile).unwrap()
        ),
    ));
    let shifted = Daemon::start(&pitime_config(
        2,
        "[[source]]\nkind = \"gps\"\n[source.simulate]\nclock_offset = 0.25\n\
         unplug = [20, 100000]\n",
    ));
    let faulty = Daemon::start(&pitime_config(
        3,
        "[[source]]\nkind = \"gps\"\n[source.simulate]\n\
         pps_loss = [15, 100000]\nantenna_fault = [15, 100000]\n\n\
         [[source]]\nkind = \"dcf77\"\n[source.simulate]\nmissing_rate = 1.0\n\n\
         [[source]]\nkind = \"ntp\"\nname = \"fleet\"\nserver = \"127.0.0.1\"\nport = 11001\n",
    ));

    // The shipped rules with every `for` cut to two seconds: the test cannot wait minutes.
    let dir = TempDir::new("prometheus");
    let rules: String = std::fs::read_to_string(Path::new(MONITORING).join("pitime-alerts.yml"))
        .unwrap()
        .lines()
        .map(|l| match l.trim_start().starts_with("for: ") {
            true => format!("{}for: 2s\n", &l[..l.len() - l.trim_start().len()]),
            false => format!("{l}\n"),
        })
        .collect();
    let rules = dir.write("rules.yml", &rules);
    let config = dir.write(
        "prometheus.yml",
        &format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files: [{}]\n\
             scrape_configs:\n  - job_name: pitime\n    static_configs:\n      - targets: \
             ['127.0.0.1:18001', '127.0.0.1:18002', '127.0.0.1:18003', '127.0.0.1:18004']\n",
            rules.display()
        ),
    );
    let _prometheus = Prometheus(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path("data").display()
            ))
            .arg(format!("--web.listen-address={PROMETHEUS}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path("prometheus.log")).unwrap())
            .spawn()
            .expect("start prometheus"),
    );

    let ready = Instant::now() + Duration::from_secs(30);
    while prometheus_get("/-/ready").is_none() {
        assert!(Instant::now() < ready, "prometheus not ready after 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }

    let expected: Vec<(String, String)> = [
        (2, "PitimeOffsetFromFleet"),
        (2, "PitimeGpsReceiverLost"),
        (2, "PitimeHoldover"),
        (3, "PitimeNoPps"),
        (3, "PitimeGpsAntennaFault"),
        (3, "PitimeLongwaveSignalLost"),
        (4, "PitimeTargetDown"),
    ]
    .iter()
    .map(|(n, a)| (format!("127.0.0.1:1800{n}"), a.to_string()))
    .collect();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let now = firing();
        let missing: Vec<_> = expected.iter().filter(|e| !now.contains(e)).collect();
        let healthy_alerts: Vec<_> = now.iter().filter(|(i, _)| i.ends_with(":18001")).collect();
        if missing.is_empty() && healthy_alerts.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after 180 s, not firing: {missing:?}; firing for the healthy server: \
             {healthy_alerts:?}; all: {now:?}\nprometheus log:\n{}",
            std::fs::read_to_string(dir.path("prometheus.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_secs(1));
    }

    // Every query of the dashboard has data, for the fleet and for the healthy server alone.
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(MONITORING).join("pitime-dashboard.json")).unwrap(),
    )
    .unwrap();
    let exprs: Vec<&str> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .map(|t| t["expr"].as_str().unwrap())
        .collect();
    assert!(exprs.len() > 20);
    for expr in exprs {
        let fleet = expr
            .replace("$instance", ".*")
            .replace("$__rate_interval", "10s");
        assert!(!query(&fleet).is_empty(), "no data for {fleet}");
    }
    let one = query(r#"pitime_stratum{instance="127.0.0.1:18001"}"#);
    assert_eq!(one[0]["value"][1], "1");

    // The hostile name reads back unchanged.
    let names: Vec<String> = query(r#"pitime_source_reach{instance="127.0.0.1:18001"}"#)
        .iter()
        .map(|s| s["metric"]["source"].as_str().unwrap().to_string())
        .collect();
    assert!(names.iter().any(|n| n == hostile), "{names:?}");

    for daemon in [healthy, shifted, faulty] {
        assert_eq!(daemon.stop().code(), Some(0));
    }
}
