//! NTS (RFC 8915) through the real daemon: chronyd as an NTS client with the local CA, a wrong
//! CA refused, and, at the protocol level with pitime's own KE client, cookies that outlive a
//! restart and cookies of a forgotten key answered with NTSN; NTPsec's ntpd as an NTS client.

mod common;

use std::net::SocketAddr;
use std::process::Command;

use common::*;
use pitime::ntp::nts::aead::Algorithm;
use pitime::ntp::nts::client::{read_reply, write_request, ReplyError};
use pitime::ntp::nts::ke_client::{self, Exchanged};
use pitime::ntp::packet::Header;
use pitime::time::NtpTimestamp;

/// A daemon serving NTP and NTS-KE on loopback with the local CA in `state`.
fn config(state: &TempDir, ntp: &str, ke: &str, extra: &str) -> String {
    format!(
        "[server]\nlisten = [\"{ntp}\"]\n[web]\nlisten = [\"127.0.0.1:0\"]\n\n[nts]\nenabled = true\nlisten = [\"{ke}\"]\n\
         state_dir = \"{}\"\n{extra}\n[[source]]\nkind = \"local\"\n",
        state.0.display()
    )
}

/// Starts the daemon and returns it with its NTP and KE addresses.
fn start(config: &str) -> (Daemon, SocketAddr, SocketAddr) {
    let daemon = Daemon::start(config);
    let ke = daemon.logged_addr("serving NTS-KE");
    let ntp = daemon.logged_addr("serving NTP");
    (daemon, ntp, ke)
}

/// A daemon for an NTS client in this test's own network namespace: KE on the standard port
/// 4460, NTP on a port of its own, which the KE answer tells the client (port negotiation).
fn start_for_a_client(tag: &str) -> (TempDir, Daemon) {
    private_network();
    let state = TempDir::new(tag);
    let text = config(
        &state,
        "127.0.0.1:11123",
        "127.0.0.1:4460",
        "ntp_port = 11123\n",
    );
    let (daemon, _, _) = start(&text);
    (state, daemon)
}

/// Waits (10 s at most) until the metrics have `line`.
fn wait_for_metric(web: &str, line: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let metrics = http_get(web, "/metrics");
        if metrics.lines().any(|l| l == line) {
            return metrics;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no `{line}` in\n{metrics}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn key_exchange(ke: SocketAddr, state: &TempDir) -> Exchanged {
    let ca = std::fs::read(state.path("nts-ca.pem")).unwrap();
    let tls = ke_client::tls_client(&ca).unwrap();
    ke_client::exchange(ke, "127.0.0.1", tls, &[Algorithm::AesSivCmac256]).unwrap()
}

/// One NTS request with `cookie` and a placeholder; the reply's cookies or why there are none.
fn nts_time(ntp: SocketAddr, x: &Exchanged, cookie: &[u8]) -> Result<Vec<Vec<u8>>, ReplyError> {
    let uid = [0x42; 32];
    let mut req = vec![0u8; 1200];
    let header = Header::client_request(6, NtpTimestamp(0x0102_0304_0506_0708));
    let nonce = [7u8; 16];
    let len = write_request(&mut req, &header, &uid, cookie, 1, &x.session, &nonce);
    let reply = exchange(ntp, &req[..len]).expect("a reply");
    assert!(
        reply.len() <= len,
        "{} bytes answered with {}",
        len,
        reply.len()
    );
    read_reply(&reply, &uid, &x.session)
}

#[test]
fn cookies_outlive_a_restart_and_die_with_their_key() {
    let state = TempDir::new("nts-state");
    let text = config(&state, "127.0.0.1:0", "127.0.0.1:0", "");
    let (daemon, ntp, ke) = start(&text);
    let x = key_exchange(ke, &state);
    assert_eq!(x.cookies.len(), 8);
    let fresh = nts_time(ntp, &x, &x.cookies[0]).unwrap();
    assert_eq!(
        fresh.len(),
        2,
        "one cookie for the one used, one for the placeholder"
    );

    // The page offers the CA and the client lines; the metrics count what happened.
    let web = daemon.logged_addr("serving the status page").to_string();
    wait_for_metric(&web, "pitime_nts_ke_sessions_total 1");
    wait_for_metric(&web, "pitime_nts_requests_total{result=\"served\"} 1");
    let ca = std::fs::read_to_string(state.path("nts-ca.pem")).unwrap();
    assert_eq!(http_get(&web, "/nts-ca.pem"), ca);
    let page = http_get(&web, "/");
    assert!(
        page.contains("ntstrustedcerts") && page.contains("certificate-authority"),
        "{page}"
    );
    let status = run_ok(Command::new(BIN).args(["status", "--address", &web]));
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.contains(&format!("NTS             : KE on {ke}, 1 sessions")),
        "{status}"
    );
    assert!(daemon.stop().success());

    // The keys file is read again: the cookies from before the restart still work.
    let (daemon, ntp, _) = start(&text);
    for cookie in x.cookies[1..].iter().chain(&fresh) {
        assert_eq!(nts_time(ntp, &x, cookie).map(|c| c.len()), Ok(2));
    }
    // Counted (which also says the daemon's loop runs, and SIGTERM will be handled).
    let web = daemon.logged_addr("serving the status page").to_string();
    wait_for_metric(&web, "pitime_nts_requests_total{result=\"served\"} 9");
    assert!(daemon.stop().success());

    // A key gone from the file (rotated out): its cookies get NTSN.
    let keys = state.path("nts-keys");
    let text_keys = std::fs::read_to_string(&keys).unwrap();
    let replaced = text_keys
        .lines()
        .map(|l| match l.starts_with('#') {
            true => l.to_string(),
            false => {
                let mut w: Vec<&str> = l.split(' ').collect();
                let id = w[0].parse::<u32>().unwrap() + 1000;
                let id = id.to_string();
                w[0] = &id;
                w.join(" ")
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&keys, replaced).unwrap();
    let (daemon, ntp, ke) = start(&text);
    assert_eq!(nts_time(ntp, &x, &x.cookies[2]), Err(ReplyError::Nak));
    let web = daemon.logged_addr("serving the status page").to_string();
    wait_for_metric(&web, "pitime_nts_requests_total{result=\"nak\"} 1");
    // ...and the client gets going again with a new key exchange.
    let again = key_exchange(ke, &state);
    assert!(nts_time(ntp, &again, &again.cookies[0]).is_ok());
    assert!(daemon.stop().success());
}

/// Runs `chronyd -Q` with NTS against the daemon, trusting `ca`; true if it measured.
fn chronyd_measures(dir: &TempDir, ca: &std::path::Path, server: &str) -> (bool, String) {
    let out = run(Command::new("chronyd").args([
        "-Q",
        "-t",
        "10",
        "-u",
        "root",
        "-f",
        "/dev/null",
        &format!("ntstrustedcerts {}", ca.display()),
        &format!("ntsdumpdir {}", dir.0.display()),
        &format!("pidfile {}", dir.path("chronyd.pid").display()),
        "cmdport 0",
        &format!("server {server} nts iburst"),
    ]));
    let log = String::from_utf8_lossy(&out.stderr).to_string();
    (log.contains("System clock wrong by"), log)
}

#[test]
fn chronyd_synchronises_over_nts_and_refuses_another_ca() {
    needs!("root", "chronyd");
    let (state, daemon) = start_for_a_client("nts-chrony");
    let (measured, log) = chronyd_measures(&state, &state.path("nts-ca.pem"), "127.0.0.1");
    assert!(
        measured,
        "chronyd log:\n{log}\ndaemon log:\n{}",
        daemon.log()
    );

    // Another pitime's CA: chronyd refuses the certificate and measures nothing.
    let other = TempDir::new("nts-other-ca");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    pitime::server::nts::certs::local(&other.0, &["127.0.0.1".to_string()], now).unwrap();
    let (measured, log) = chronyd_measures(&other, &other.path("nts-ca.pem"), "127.0.0.1");
    assert!(!measured, "chronyd trusted another CA:\n{log}");
    assert!(daemon.stop().success());
}

#[test]
fn a_renewed_certificate_is_served_after_sighup() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // Two certificates for 127.0.0.1 from two CAs, as an ACME client would renew one.
    let (first, second) = (TempDir::new("nts-ca-1"), TempDir::new("nts-ca-2"));
    for ca in [&first, &second] {
        pitime::server::nts::certs::local(&ca.0, &["127.0.0.1".to_string()], now).unwrap();
    }
    let state = TempDir::new("nts-sighup");
    let install = |from: &TempDir| {
        std::fs::copy(from.path("nts-cert.pem"), state.path("cert.pem")).unwrap();
        std::fs::copy(from.path("nts-cert.key"), state.path("key.pem")).unwrap();
    };
    install(&first);
    let extra = format!(
        "certificate = \"{}\"\nprivate_key = \"{}\"\n",
        state.path("cert.pem").display(),
        state.path("key.pem").display()
    );
    let text = config(&state, "127.0.0.1:0", "127.0.0.1:0", &extra);
    let (daemon, ntp, ke) = start(&text);
    let trusts = |ca: &TempDir| {
        let tls = ke_client::tls_client(&std::fs::read(ca.path("nts-ca.pem")).unwrap()).unwrap();
        ke_client::exchange(ke, "127.0.0.1", tls, &[Algorithm::AesSivCmac256]).is_ok()
    };
    assert!(trusts(&first) && !trusts(&second));
    // No local CA was made, and none is offered.
    assert!(!state.path("nts-ca.pem").exists());

    install(&second);
    daemon.reload(&text);
    assert!(trusts(&second) && !trusts(&first));
    assert!(exchange(ntp, &client_request(4, 5)).is_some());
    let web = daemon.logged_addr("serving the status page").to_string();
    wait_for_metric(&web, "pitime_nts_ke_sessions_total 2");
    assert!(http_get(&web, "/nts-ca.pem").starts_with("not found"));
    assert!(daemon.stop().success());
}

/// NTPsec's ntpd as an NTS client. It runs without CAP_SYS_TIME (dropped from its bounding set)
/// and with `disable ntp`: it measures and selects, and cannot touch this machine's clock.
#[test]
fn ntpsec_ntpd_selects_pitime_as_an_authentic_nts_server() {
    needs!("root", "/opt/ntpsec/usr/sbin/ntpd", "setpriv");
    // ntpd takes port 123 itself: pitime's NTP is on another, told through the KE answer.
    let (state, daemon) = start_for_a_client("nts-ntpsec");
    let conf = state.write(
        "ntp.conf",
        &format!(
            "server 127.0.0.1 nts ca {} iburst minpoll 3 maxpoll 3\ndisable ntp\n\
             driftfile {}\nstatsdir {}/\nstatistics peerstats\n\
             filegen peerstats file peerstats type none enable\n",
            state.path("nts-ca.pem").display(),
            state.path("ntp.drift").display(),
            state.0.display()
        ),
    );
    let mut ntpd = Command::new("setpriv")
        .args(["--bounding-set", "-sys_time", "--inh-caps", "-sys_time"])
        .args(["/opt/ntpsec/usr/sbin/ntpd", "-n", "-c"])
        .arg(&conf)
        .arg("-l")
        .arg(state.path("ntpd.log"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start ntpd");
    // peerstats: MJD, seconds, address, status word, offset, delay, dispersion, jitter. The
    // status word's high byte: 0x20 authentic (NTS verified the reply), 0x10 reachable, and
    // select code 6 (0x06), the system peer.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let selected = loop {
        let stats = std::fs::read_to_string(state.path("peerstats")).unwrap_or_default();
        let selected: Vec<f64> = stats
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let status = u16::from_str_radix(f.get(3)?, 16).ok()?;
                (f[2] == "127.0.0.1" && status >> 8 & 0x37 == 0x36).then(|| f[4].parse().ok())?
            })
            .collect();
        if selected.len() >= 3 || std::time::Instant::now() > deadline {
            break selected;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let _ = ntpd.kill();
    let _ = ntpd.wait();
    let log = std::fs::read_to_string(state.path("ntpd.log")).unwrap_or_default();
    assert!(
        selected.len() >= 3,
        "ntpd log:\n{log}\ndaemon log:\n{}",
        daemon.log()
    );
    // Same clock on both sides: the offsets are the loopback's noise.
    assert!(selected.iter().all(|o| o.abs() < 1e-3), "{selected:?}");
    assert!(log.contains("Got 8 cookies"), "{log}");
    // The replies came through pitime's NTS path.
    let web = daemon.logged_addr("serving the status page").to_string();
    let metrics = http_get(&web, "/metrics");
    let served = metrics
        .lines()
        .find_map(|l| l.strip_prefix("pitime_nts_requests_total{result=\"served\"} "))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    assert!(served >= 3, "{metrics}");
    assert!(daemon.stop().success());
}

/// ntpd-rs as an NTS client. It will not run without control of the clock, so it runs with
/// tests/support/noclock.rs preloaded (every clock change becomes a read) and without
/// CAP_SYS_TIME, which would refuse any change the shim missed.
#[test]
fn ntpd_rs_measures_pitime_over_nts() {
    needs!("root", "ntp-daemon", "ntp-ctl", "rustc", "setpriv");
    let (state, daemon) = start_for_a_client("nts-ntpd-rs");
    let shim = state.path("libnoclock.so");
    run_ok(
        Command::new("rustc")
            .args(["--edition", "2021", "--crate-type", "cdylib", "-O", "-o"])
            .arg(&shim)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/support/noclock.rs"
            )),
    );
    let conf = state.write(
        "ntp.toml",
        &format!(
            "[observability]\nobservation-path = \"{}\"\n\n[[source]]\nmode = \"nts\"\n\
             address = \"127.0.0.1:4460\"\ncertificate-authority = \"{}\"\n",
            state.path("observe").display(),
            state.path("nts-ca.pem").display()
        ),
    );
    let mut ntpd = Command::new("setpriv")
        .args([
            "--bounding-set",
            "-sys_time",
            "--inh-caps",
            "-sys_time",
            "ntp-daemon",
            "-c",
        ])
        .arg(&conf)
        .env("LD_PRELOAD", &shim)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(state.path("ntpd.log")).unwrap())
        .spawn()
        .expect("start ntp-daemon");
    // `ntp-ctl status` lists the source as `KE-ADDRESS NTP-ADDRESS [NTS]`, then its offset.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let (offset, status) = loop {
        let out = run(Command::new("ntp-ctl").arg("-c").arg(&conf).arg("status"));
        let status = String::from_utf8_lossy(&out.stdout).to_string();
        let offset = status
            .split_once("127.0.0.1:4460 127.0.0.1:11123 [NTS]")
            .and_then(|(_, source)| source.split_once("Offset:"))
            .and_then(|(_, rest)| rest.split_whitespace().next()?.parse::<f64>().ok());
        if offset.is_some() || std::time::Instant::now() > deadline {
            break (offset, status);
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let _ = ntpd.kill();
    let _ = ntpd.wait();
    let log = std::fs::read_to_string(state.path("ntpd.log")).unwrap_or_default();
    let offset = offset.unwrap_or_else(|| {
        panic!(
            "no NTS measurement:\n{status}\nntpd-rs log:\n{log}\ndaemon log:\n{}",
            daemon.log()
        )
    });
    // Same clock on both sides.
    assert!(offset.abs() < 1e-3, "{status}");
    assert!(status.contains("NTS cookies:\t\t8/8"), "{status}");
    assert!(daemon.stop().success());
}
