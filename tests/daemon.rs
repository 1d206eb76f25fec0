//! The command line and the daemon's life cycle: check-config, help, SIGHUP reloads, SIGTERM.

mod common;

use std::process::Command;

use common::*;

fn local(stratum: u8, listen: &str) -> String {
    format!(
        "[server]\nlisten = [\"{listen}\"]\n[[source]]\nkind = \"local\"\nstratum = {stratum}\n"
    )
}

#[test]
fn check_config_reports_every_error_with_its_position() {
    let dir = TempDir::new("check");
    let good = dir.write("good.toml", &local(5, "127.0.0.1:123"));
    let out = run(Command::new(BIN).arg("check-config").arg(&good));
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).trim()
        ),
        (Some(0), "ok")
    );

    let bad = dir.write(
        "bad.toml",
        "[server]\nlisten = 123\nallow = [\"10.0.0.0/8\", \"x\"]\n[wibble]\n",
    );
    let out = run(Command::new(BIN).arg("check-config").arg(&bad));
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let shown = bad.display().to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with(&format!("{shown}:2:10: `server.listen`: expected an array")),
        "{text}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "{shown}:3:24: `server.allow[1]`: `x` is not an IPv4"
        )),
        "{text}"
    );
    assert!(
        lines[2].starts_with(&format!("{shown}:4:2: `wibble`: unknown key")),
        "{text}"
    );

    let out = run(Command::new(BIN)
        .arg("check-config")
        .arg(dir.path("missing.toml")));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("cannot read"));
}

#[test]
fn help_is_there_for_every_command() {
    for args in [
        &["--help"][..],
        &["run", "--help"],
        &["check-config", "--help"],
        &["bench-server", "--help"],
    ] {
        let out = run_ok(Command::new(BIN).args(args));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{args:?}"
        );
    }
}

#[test]
fn bad_config_stops_start_up_with_the_errors() {
    let dir = TempDir::new("badstart");
    let bad = dir.write("bad.toml", "[server]\nthreads = 0\n");
    let out = run(Command::new(BIN).arg("run").arg("--config").arg(&bad));
    assert!(!out.status.success());
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("bad.toml:2:11: `server.threads`: expected an integer from 1 to 64"),
        "{log}"
    );
}

#[test]
fn sighup_applies_a_valid_file_and_keeps_running_on_an_invalid_one() {
    needs!("root");
    private_network();
    let server = "127.0.0.1:123".parse().unwrap();
    let daemon = Daemon::start(&local(7, "127.0.0.1:123"));
    assert_eq!(
        stratum_refid(&exchange(server, &client_request(4, 1)).unwrap()),
        (7, *b"LOCL")
    );

    daemon.reload(&local(9, "127.0.0.1:123"));
    daemon.wait_for_log("configuration reloaded");
    assert_eq!(
        stratum_refid(&exchange(server, &client_request(4, 2)).unwrap()).0,
        9
    );

    daemon.reload(
        "[server]\nlisten = [\"127.0.0.1:123\"]\n[[source]]\nkind = \"local\"\nstratum = 99\n",
    );
    daemon.wait_for_log("reload failed, keeping the running configuration");
    assert!(daemon
        .log()
        .contains("`source[0].stratum`: expected an integer from 1 to 15"));
    assert_eq!(
        stratum_refid(&exchange(server, &client_request(4, 3)).unwrap()).0,
        9
    );

    // A new listen address is opened without touching the old one.
    let both = local(9, "127.0.0.1:123").replace("listen = [", "listen = [\"127.0.0.1:1123\", ");
    daemon.reload(&both);
    daemon.wait_for_log("127.0.0.1:1123");
    assert!(exchange("127.0.0.1:1123".parse().unwrap(), &client_request(4, 4)).is_some());
    assert!(exchange(server, &client_request(4, 5)).is_some());
    assert_eq!(
        daemon
            .log()
            .matches("serving NTP addr=127.0.0.1:123")
            .count(),
        1,
        "{}",
        daemon.log()
    );

    let status = daemon.stop();
    assert!(status.success(), "exit status {status:?}");
}

/// SIGHUP while a file is being written or has just been deleted: the daemon keeps what it
/// runs (its keys included) and says why.
#[test]
fn sighup_keeps_the_running_configuration_when_a_file_is_half_written_or_gone() {
    needs!("root");
    private_network();
    const KEYS: &str = "1 MD5 HEX:0102030405060708090a0b0c0d0e0f10\n";
    let dir = TempDir::new("sighup");
    let keys_path = dir.write("ntp.keys", KEYS);
    file_mode(&keys_path, 0o600);
    let config = format!(
        "[server]\nlisten = [\"127.0.0.1:123\"]\nkeys_file = \"{}\"\nrequire_auth = true\n\
         [[source]]\nkind = \"local\"\nstratum = 7\n",
        keys_path.display()
    );
    let config_path = dir.write("pitime.toml", &config);
    let daemon = Daemon::start_in(dir, config_path.clone(), &[]);
    // Only requests signed with key 1 are answered, and with a MAC.
    let key = pitime::ntp::keys::KeyStore::parse(KEYS).unwrap();
    let signed = || {
        let mut request = client_request(4, 1);
        request.resize(48 + 20, 0);
        let len = key.get(1).unwrap().sign(1, &mut request, 48);
        request.truncate(len);
        let reply = exchange("127.0.0.1:123".parse().unwrap(), &request);
        reply.map(|r| (stratum_refid(&r).0, r.len()))
    };
    assert_eq!(signed(), Some((7, 68)));

    // Each change is refused with its reason logged, and key 1 still works.
    let reload_fails = |write: &dyn Fn(), why: &str| {
        let before = daemon.log();
        write();
        daemon.signal(libc::SIGHUP);
        daemon.wait_for_log_n("reload failed", before.matches("reload failed").count() + 1);
        let logged = daemon.log()[before.len()..].to_string();
        assert!(logged.contains(why), "{why:?} not in:\n{logged}");
        assert_eq!(signed(), Some((7, 68)), "after: {why}");
    };
    // A configuration cut off in the middle of a line.
    reload_fails(
        &|| std::fs::write(&config_path, &config[..config.len() / 2]).unwrap(),
        "invalid basic string",
    );
    std::fs::write(&config_path, &config).unwrap();
    // A keys file cut off in its secret: "HEX:01..." would be the ASCII secret "HE".
    reload_fails(
        &|| std::fs::write(&keys_path, &KEYS[..8]).unwrap(),
        "half-written",
    );
    // The keys file gone, then the configuration gone.
    reload_fails(
        &|| std::fs::remove_file(&keys_path).unwrap(),
        "ntp.keys: No such file",
    );
    reload_fails(
        &|| std::fs::remove_file(&config_path).unwrap(),
        "pitime.toml: cannot read: No such file",
    );
    assert!(daemon.stop().success());
}

#[test]
fn no_source_means_unsynchronised_replies() {
    needs!("root");
    private_network();
    let _daemon = Daemon::start("[server]\nlisten = [\"[::1]:123\"]\n");
    let reply = exchange("[::1]:123".parse().unwrap(), &client_request(3, 1)).unwrap();
    assert_eq!(reply[0] >> 6, 3, "leap indicator");
    assert_eq!(reply[1], 16, "stratum");
    assert_eq!((reply[0] >> 3) & 7, 3, "version echoed");
}

#[test]
fn tells_systemd_it_is_ready_feeds_the_watchdog_and_says_when_it_stops() {
    use std::os::unix::net::UnixDatagram;
    use std::time::{Duration, Instant};
    needs!("root");
    private_network();
    let dir = TempDir::new("notify");
    let socket_path = dir.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let config = dir.write("pitime.toml", &local(7, "127.0.0.1:123"));
    let mut child = Command::new(BIN)
        .arg("run")
        .arg("--config")
        .arg(&config)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "1000000")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Waits for a message, skipping watchdog pings unless one is what is awaited.
    let expect = |wanted: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 256];
        loop {
            assert!(Instant::now() < deadline, "no {wanted:?}");
            let n = socket.recv(&mut buf).expect("a notification");
            if String::from_utf8_lossy(&buf[..n]).starts_with(wanted) {
                return;
            }
        }
    };
    expect("READY=1");
    // Pinged again and again (every half timeout: how often is `systemd::watchdog_interval`'s).
    expect("WATCHDOG=1");
    expect("WATCHDOG=1");
    let pid = child.id() as i32;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGHUP) };
    expect("RELOADING=1");
    expect("READY=1");
    unsafe { libc::kill(pid, libc::SIGTERM) };
    expect("STOPPING=1");
    assert!(child.wait().unwrap().success());
}

#[test]
fn statistics_and_the_drift_file_are_written_where_configured() {
    let state = TempDir::new("state");
    // This test runs without a network namespace of its own: a port nobody uses for the page.
    let web = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .to_string();
    let daemon = Daemon::start(&format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n[web]\nlisten = [\"{web}\"]\n\
         [discipline]\ndrift_file = \"{}\"\nstats_dir = \"{}\"\n\
         [[source]]\nkind = \"gps\"\n[source.simulate]\nclock_offset = 0.2\n",
        state.path("drift").display(),
        state.path("stats").display()
    ));
    let read = |kind: &str| -> String {
        std::fs::read_dir(state.path("stats"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("{kind}."))
            })
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect()
    };
    // Written every 16 s; the receiver is trusted after a few seconds.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(45);
    while read("loopstats").is_empty() || read("clockstats").is_empty() {
        assert!(std::time::Instant::now() < deadline, "{}", daemon.log());
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    // ntpd's formats: MJD, seconds of the day, then the figures.
    let loops = read("loopstats");
    let fields: Vec<&str> = loops.lines().next().unwrap().split(' ').collect();
    assert_eq!(fields.len(), 7, "{loops}");
    assert!(fields[0].parse::<u32>().unwrap() > 60_000, "{loops}");
    let peers = read("peerstats");
    assert!(
        peers.lines().any(|l| l.split(' ').nth(2) == Some("gps")),
        "{peers}"
    );
    assert!(read("clockstats").contains("gps fix="));
    // The learned frequency is saved at exit, in ppm: what the status said just before.
    let out = run_ok(Command::new(BIN).args(["status", "--address", &web]));
    let status = String::from_utf8_lossy(&out.stdout).to_string();
    let shown: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("Frequency       : "))
        .and_then(|f| f.trim_end_matches(" ppm").parse().ok())
        .unwrap_or_else(|| panic!("{status}"));
    assert_eq!(daemon.stop().code(), Some(0));
    let drift = std::fs::read_to_string(state.path("drift")).unwrap();
    let ppm: f64 = drift.trim().parse().unwrap();
    assert!(
        (ppm - shown).abs() < 0.05,
        "drift file {drift}, status {shown} ppm"
    );
}
