//! Interleaved mode with a real client: chronyd (`xleave`) in one network namespace, the real
//! daemon in another, joined by a veth pair, so that the replies cross a real (virtual) network
//! device with kernel transmit timestamps, as on a Pi's Ethernet.

mod common;

use std::time::Duration;

use common::*;

/// The daemon, stratum 10 from its local clock, serving the server end of `net`; its rate
/// limit lets a client poll 30 times a second.
fn daemon(net: &VethPair, timestamping: &str) -> Daemon {
    daemon_with(net, timestamping, "")
}

/// The same, with `server` lines added to its `[server]` table.
fn daemon_with(net: &VethPair, timestamping: &str, server: &str) -> Daemon {
    VethPair::enter(&net.server);
    Daemon::start(&format!(
        "[server]\n{server}listen = [\"{}:123\"]\ntimestamping = \"{timestamping}\"\n\
         [server.rate_limit]\ninterval = 0.03\n[web]\nlisten = [\"{}:8123\"]\n\n[[source]]\nkind = \"local\"\n",
        VethPair::SERVER_IP,
        VethPair::SERVER_IP
    ))
}

/// The status of the daemon at `ip`, once `ok` holds of it (it is rebuilt once a second), or
/// as it is after 30 s.
fn status_once(ip: &str, ok: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let body = http_get(&format!("{ip}:8123"), "/api/v1/status");
        let status = serde_json::from_str(&body).unwrap_or_default();
        if ok(&status) || std::time::Instant::now() > deadline {
            return status;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// chronyd in the client namespace polling the daemon 16 times a second.
fn chronyd(net: &VethPair, options: &str) -> Chronyd {
    VethPair::enter(&net.client);
    Chronyd::start(&format!(
        "server {} iburst minpoll -4 maxpoll -4 {options}",
        VethPair::SERVER_IP
    ))
}

/// Waits until chronyd has selected the daemon (`^*` in `sources`): it synchronised.
fn synchronised(chrony: &Chronyd) {
    chrony.wait_for("sources", Duration::from_secs(30), |s| {
        s.lines()
            .any(|l| l.starts_with("^*") && l.contains(VethPair::SERVER_IP))
    });
}

fn field<'a>(ntpdata: &'a str, name: &str) -> &'a str {
    ntpdata
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_once(':'))
        .map_or("", |(_, v)| v.trim())
}

#[test]
fn chronyd_with_xleave_gets_interleaved_replies_and_synchronises() {
    needs!("root", "chronyd", "chronyc", "ip");
    let net = VethPair::new("xl");
    // Hardware timestamps asked for on a veth, which has none: kernel ones, saying why.
    let pitime = daemon(&net, "hardware");
    let chrony = chronyd(&net, "xleave");
    let ntpdata = chrony.wait_for("ntpdata", Duration::from_secs(30), |s| {
        field(s, "Interleaved") == "Yes"
            && field(s, "Total valid RX")
                .parse::<u32>()
                .is_ok_and(|n| n >= 8)
    });
    assert_eq!(field(&ntpdata, "TX timestamping"), "Kernel", "{ntpdata}");
    assert_eq!(field(&ntpdata, "RX timestamping"), "Kernel", "{ntpdata}");
    synchronised(&chrony);
    // Every reply after the first few is interleaved, and none was refused.
    let ntpdata = chrony.chronyc("ntpdata");
    assert_eq!(field(&ntpdata, "Interleaved"), "Yes", "{ntpdata}");
    // The status says so too: the veth end got kernel timestamps (and why not hardware ones),
    // and replies were interleaved; nothing counts as a fallen-back hardware timestamp.
    let interleaved = |s: &serde_json::Value| s["ntp"]["interleaved"].as_u64() > Some(4);
    let ntp = &status_once(VethPair::SERVER_IP, interleaved)["ntp"];
    assert!(ntp["interleaved"].as_u64() > Some(4), "{ntp}");
    let vs = ntp["timestamping"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["interface"] == "vs");
    assert_eq!(
        vs.map(|t| (&t["timestamping"], &t["why"], &t["clock"])),
        Some((
            &"kernel".into(),
            &"no hardware timestamps (transmit no, receive no, clock none)".into(),
            &serde_json::Value::Null
        )),
        "{ntp}"
    );
    let hw = &ntp["hardware_timestamps"];
    assert_eq!(
        hw["receive"].as_u64().zip(hw["receive_fallback"].as_u64()),
        Some((0, 0)),
        "{ntp}"
    );
    assert!(
        pitime
            .log()
            .contains("timestamps: no hardware timestamps (transmit no"),
        "{}",
        pitime.log()
    );
    drop(chrony);
    assert!(pitime.stop().success());
}

#[test]
fn signed_requests_get_signed_interleaved_replies() {
    needs!("root", "chronyd", "chronyc", "ip");
    let net = VethPair::new("auth");
    let dir = TempDir::new("xleave-keys");
    let keys = dir.write(
        "ntp.keys",
        "1 SHA1 HEX:0102030405060708090a0b0c0d0e0f1011121314\n",
    );
    file_mode(&keys, 0o600);
    let server = format!("keys_file = \"{}\"\nrequire_auth = true\n", keys.display());
    let _pitime = daemon_with(&net, "kernel", &server);
    let chrony = chronyd(&net, &format!("xleave key 1\nkeyfile {}", keys.display()));
    let ntpdata = chrony.wait_for("ntpdata", Duration::from_secs(30), |s| {
        field(s, "Interleaved") == "Yes" && field(s, "Authenticated") == "Yes"
    });
    synchronised(&chrony);
    assert_eq!(
        field(&ntpdata, "Total valid RX"),
        field(&ntpdata, "Total RX"),
        "{ntpdata}"
    );
}

#[test]
fn chronyd_without_xleave_and_ntpdig_get_basic_mode() {
    needs!("root", "chronyd", "chronyc", "ip", "ntpdig", "sntp");
    let net = VethPair::new("basic");
    let _pitime = daemon(&net, "kernel");
    let chrony = chronyd(&net, "");
    synchronised(&chrony);
    let ntpdata = chrony.chronyc("ntpdata");
    assert_eq!(field(&ntpdata, "Interleaved"), "No", "{ntpdata}");
    // ntpdig and sntp know only basic mode: they accept only a reply echoing their transmit
    // timestamp, which an interleaved reply would not.
    for client in ["ntpdig", "sntp"] {
        let (stratum, offset) = ntpdig_json(client, VethPair::SERVER_IP);
        assert_eq!(stratum, 10, "{client}");
        assert!(offset.abs() < 0.05, "{client}: offset {offset}");
    }
}

#[test]
fn user_space_timestamps_give_chronyd_basic_mode() {
    needs!("root", "chronyd", "chronyc", "ip");
    let net = VethPair::new("user");
    let _pitime = daemon(&net, "user");
    let chrony = chronyd(&net, "xleave");
    synchronised(&chrony);
    let ntpdata = chrony.chronyc("ntpdata");
    assert_eq!(field(&ntpdata, "Interleaved"), "No", "{ntpdata}");
}

#[test]
fn pitime_as_a_client_measures_another_pitime_in_interleaved_mode() {
    needs!("root", "ip");
    let net = VethPair::new("up");
    let _server = daemon(&net, "kernel");
    VethPair::enter(&net.client);
    let client = Daemon::start(&format!(
        "[server]\nlisten = [\"127.0.0.1:123\"]\n[web]\nlisten = [\"{}:8123\"]\n\n\
         [[source]]\nkind = \"ntp\"\nserver = \"{}\"\nminpoll = 0\nmaxpoll = 0\n",
        VethPair::CLIENT_IP,
        VethPair::SERVER_IP
    ));
    let interleaved = |s: &serde_json::Value| s["upstream"][0]["interleaved"] == true;
    let upstream = &status_once(VethPair::CLIENT_IP, interleaved)["upstream"][0];
    assert_eq!(
        upstream["interleaved"],
        true,
        "{upstream}\n{}",
        client.log()
    );
    assert_eq!(upstream["kernel_tx"], true, "{upstream}");
    // Same machine, same clock: the offset is what the timestamps get wrong, microseconds.
    let offset = upstream["offset_seconds"].as_f64().unwrap();
    assert!(offset.abs() < 1e-3, "{upstream}");
}
