//! Mode 6 with the real tools: NTPsec's `ntpq` and the monitoring plugins' `check_ntp_peer`
//! against the demo's sources, in a private network namespace (ntpq only speaks to port 123).
//! `scripts/test.sh` unpacks NTPsec's ntpq into /opt/ntpsec (the ntpsec package conflicts with
//! chrony, which other tests need) and installs monitoring-plugins-standard.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const NTPQ: &str = "/opt/ntpsec/usr/bin/ntpq";
const NTPQ_PYTHONPATH: &str = "/opt/ntpsec/usr/lib/python3/dist-packages";
const CHECK_NTP_PEER: &str = "/usr/lib/nagios/plugins/check_ntp_peer";

/// The demo configuration, on port 123.
fn demo() -> String {
    include_str!("../config/demo.toml").replace(
        "[\"127.0.0.1:11123\", \"[::1]:11123\"]",
        "[\"127.0.0.1:123\", \"[::1]:123\"]",
    )
}

/// `ntpq -c COMMAND HOST`'s output (stdout and stderr).
fn ntpq(command: &str, host: &str) -> String {
    let out = run(Command::new(NTPQ)
        .env("PYTHONPATH", NTPQ_PYTHONPATH)
        .args(["-n", "-c", command, host]));
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// check_ntp_peer's exit code (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN) and its line.
fn check_ntp_peer() -> (i32, String) {
    // Offset in seconds; jitter in milliseconds, as ntpd reports it; stratum of the sync peer.
    let out = run(Command::new(CHECK_NTP_PEER).args([
        "-H",
        "127.0.0.1",
        "-w",
        "0.01",
        "-c",
        "0.1",
        "-j",
        "10",
        "-k",
        "100",
        "-W",
        "1",
        "-C",
        "2",
    ]));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), text)
}

/// Polls `check` until it gives a value or `limit` passes (the state the tools show changes
/// once a second, when the daemon publishes it).
fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match check() {
            Ok(v) => return v,
            Err(last) if Instant::now() > deadline => panic!("{what}: last saw\n{last}"),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

#[test]
fn ntpq_shows_the_demo_as_ntpd_would() {
    needs!("root", "/opt/ntpsec/usr/bin/ntpq");
    private_network();
    // The demo, and an upstream NTP server beside its receivers.
    let _upstream = Daemon::start(
        "[server]\nlisten = [\"127.0.0.1:1123\"]\n[web]\nlisten = []\n\
         [[source]]\nkind = \"local\"\n",
    );
    let daemon = Daemon::start(&format!(
        "{}\n[[source]]\nkind = \"ntp\"\nname = \"upstream\"\nserver = \"127.0.0.1\"\n\
         port = 1123\niburst = true\n",
        demo()
    ));
    // The GPS's pulses are followed after a few seconds: ntpq marks it the system peer. The
    // upstream server answers its first polls.
    let selected = |out: &str| out.lines().any(|l| l.starts_with("*gps(0)"));
    let polled = |out: &str| {
        out.lines()
            .any(|l| l.get(1..).is_some_and(|r| r.starts_with("127.0.0.1")) && l.contains(" u "))
    };
    let peers = wait_for(
        "ntpq -p shows the GPS selected",
        Duration::from_secs(30),
        || {
            let out = ntpq("peers", "127.0.0.1");
            match selected(&out) && polled(&out) {
                true => Ok(out),
                false => Err(out),
            }
        },
    );
    let row = |name: &str| {
        peers
            .lines()
            .find(|l| l.get(1..).is_some_and(|r| r.starts_with(name)))
            .unwrap_or_else(|| panic!("no {name} in\n{peers}"))
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    // remote, refid, stratum 0, type l (a local reference clock).
    assert_eq!(row("gps(0)")[1..4], [".PPS.", "0", "l"], "{peers}");
    assert_eq!(row("dcf77(0)")[1..4], [".DCF.", "0", "l"], "{peers}");
    assert_eq!(row("local(0)")[1..4], [".LOCL.", "0", "l"], "{peers}");
    // A server: its address, its own refid (at stratum 10, the local clock's as an address,
    // as ntpd shows it), its stratum, type u (unicast), answering.
    let upstream = row("127.0.0.1");
    assert_eq!(upstream[1..4], ["76.79.67.76", "10", "u"], "{peers}");
    assert_ne!(upstream[6], "0", "reach: {peers}");

    let rv = ntpq("rv", "127.0.0.1");
    for item in [
        "status=0115 leap_none, sync_pps, 1 event, clock_sync",
        "version=\"pitime ",
        "stratum=1,",
        "refid=PPS,",
        "peer=1,",
        "sys_jitter=",
        "clk_wander=",
    ] {
        assert!(rv.contains(item), "{item} not in\n{rv}");
    }
    // Over IPv6 too, where the association list with its status words is asked for.
    let associations = ntpq("associations", "::1");
    let sys_peer = associations
        .lines()
        .find(|l| l.contains("sys.peer"))
        .unwrap_or_else(|| panic!("no system peer in\n{associations}"));
    assert_eq!(
        sys_peer.split_whitespace().collect::<Vec<_>>()[..6],
        ["1", "1", "9600", "yes", "yes", "none"],
        "{associations}"
    );
    let offset = ntpq("rv 0 offset", "127.0.0.1");
    let ms: f64 = offset
        .trim()
        .strip_prefix("offset=")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("not one offset: {offset}"));
    assert!(ms.abs() < 10.0, "{offset}");
    // ntpq's system summary asks for the system peer's address and mode by name.
    let sysinfo = ntpq("sysinfo", "127.0.0.1");
    assert!(
        sysinfo.contains("127.127.20.0:0") && !sysinfo.contains("Traceback"),
        "{sysinfo}"
    );
    // Read-only: ntpq's write is refused, and the configuration is not for ntpq to change.
    let write = ntpq(":config server 192.0.2.1", "127.0.0.1");
    assert!(!write.contains("Config Succeeded"), "{write}");
    assert!(daemon.log().matches("serving NTP").count() >= 1);
}

#[test]
fn check_ntp_peer_is_ok_until_the_receiver_fails() {
    needs!("root", "/usr/lib/nagios/plugins/check_ntp_peer");
    private_network();
    // One receiver, unplugged after 20 s: nothing else to follow. The test asks more often
    // than a monitoring system would, so its rate limit is raised.
    let _daemon = Daemon::start(
        "[server]\nlisten = [\"127.0.0.1:123\"]\n[server.rate_limit]\nburst = 10000\n\
         [web]\nlisten = []\n\
         [[source]]\nkind = \"gps\"\n[source.simulate]\nunplug = [20, 100000]\n",
    );
    let ok = wait_for("check_ntp_peer OK", Duration::from_secs(20), || {
        let (code, text) = check_ntp_peer();
        match code {
            0 => Ok(text),
            _ => Err(text),
        }
    });
    assert!(ok.starts_with("NTP OK: Offset"), "{ok}");
    assert!(ok.contains("stratum=0"), "{ok}");
    wait_for(
        "check_ntp_peer WARNING or CRITICAL",
        Duration::from_secs(60),
        || {
            let (code, text) = check_ntp_peer();
            let answered = text.starts_with("NTP WARNING") || text.starts_with("NTP CRITICAL");
            match (code, answered) {
                (1 | 2, true) => Ok(text),
                _ => Err(text),
            }
        },
    );
}

#[test]
fn ntpq_requests_signed_with_a_configured_key_get_signed_answers() {
    needs!("root", "/opt/ntpsec/usr/bin/ntpq");
    private_network();
    let dir = TempDir::new("ntpq-keys");
    let keys = "1 MD5 md5secret\n2 SHA1 0102030405060708090a0b0c0d0e0f1011121314\n";
    let server_keys = dir.write("server.keys", keys);
    file_mode(&server_keys, 0o600);
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:123\"]\nkeys_file = \"{}\"\n[web]\nlisten = []\n\
         [[source]]\nkind = \"local\"\n",
        server_keys.display()
    );
    let _daemon = Daemon::start(&config);
    let signed = |keys_file: &std::path::Path, key: &str| {
        let out = run(Command::new(NTPQ)
            .env("PYTHONPATH", NTPQ_PYTHONPATH)
            .arg("-k")
            .arg(keys_file)
            .args(["-a", key, "-c", "passwd", "-c", "authenticate yes"])
            .args(["-c", "rv 0 stratum", "127.0.0.1"]));
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    // ntpq checks the answer's MAC and says "AUTH: Content untrusted" when it fails.
    let client_keys = dir.write("client.keys", keys);
    for key in ["1", "2"] {
        let out = signed(&client_keys, key);
        assert!(out.contains("stratum=10"), "key {key}: {out}");
        assert!(!out.contains("AUTH"), "key {key}: {out}");
    }
    // A request signed with a wrong secret is refused, not answered unsigned.
    let wrong = dir.write("wrong.keys", "1 MD5 notthesecret\n");
    let out = signed(&wrong, "1");
    assert!(out.contains("PERMISSION"), "{out}");
}
