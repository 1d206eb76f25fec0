//! Real NTP clients from Debian against the real daemon: ntpdig and sntp (ntpsec), and chronyd
//! as a one-shot client with symmetric keys. Each test runs in its own network namespace, where
//! the daemon serves port 123 on loopback.

mod common;

use std::process::Command;

use common::*;

const LOCAL_STRATUM_10: &str =
    "[server]\nlisten = [\"127.0.0.1:123\", \"[::1]:123\"]\n\n[[source]]\nkind = \"local\"\n";

#[test]
fn ntpdig_and_sntp_see_the_local_stratum_and_no_offset() {
    needs!("root", "ntpdig", "sntp");
    private_network();
    let daemon = Daemon::start(LOCAL_STRATUM_10);
    for (client, host) in [
        ("ntpdig", "127.0.0.1"),
        ("ntpdig", "::1"),
        ("sntp", "127.0.0.1"),
    ] {
        let (stratum, offset) = ntpdig_json(client, host);
        assert_eq!(stratum, 10, "{client} {host}");
        // Same machine, same clock: only the client's own processing time shows.
        assert!(offset.abs() < 0.05, "{client} {host}: offset {offset}");
    }
    assert!(daemon.stop().success());
}

#[test]
fn ntpdig_refuses_an_unsynchronised_server() {
    needs!("root", "ntpdig");
    private_network();
    let _daemon = Daemon::start("[server]\nlisten = [\"127.0.0.1:123\"]\n");
    let out = run(Command::new("ntpdig").args(["-t", "2", "127.0.0.1"]));
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "ntpdig accepted an unsynchronised server: {said}"
    );
}

const KEYS: &str = "\
1 MD5 HEX:0102030405060708090a0b0c0d0e0f10
2 SHA1 HEX:0102030405060708090a0b0c0d0e0f1011121314
3 AES128 HEX:000102030405060708090a0b0c0d0e0f
4 SHA256 HEX:0102030405060708090a0b0c0d0e0f1011121314
5 SHA512 ASCII:pitime-sha512-key
";

/// Runs `chronyd -Q` (measure once, never touch the clock) against 127.0.0.1:123 with `key`,
/// using `keys` as its keys file. True when chronyd accepted a measurement.
fn chronyd_accepts(dir: &TempDir, keys: &str, key: u32) -> bool {
    let keyfile = dir.write(&format!("chrony-{key}.keys"), keys);
    file_mode(&keyfile, 0o600);
    let out = run(Command::new("chronyd").args([
        "-Q",
        "-t",
        "6",
        "-u",
        "root",
        "-f",
        "/dev/null",
        &format!("keyfile {}", keyfile.display()),
        &format!("pidfile {}", dir.path("chronyd.pid").display()),
        "cmdport 0",
        &format!("server 127.0.0.1 iburst key {key}"),
    ]));
    let log = String::from_utf8_lossy(&out.stderr).to_string();
    let accepted = log.contains("System clock wrong by");
    assert_eq!(accepted, out.status.success(), "{log}");
    accepted
}

/// A daemon with the test keys, in `dir`, stratum 10.
fn daemon_with_keys(dir: &TempDir, extra: &str) -> Daemon {
    let keys = dir.write("ntp.keys", KEYS);
    file_mode(&keys, 0o640);
    let server = format!("[server]\nkeys_file = \"{}\"\n{extra}", keys.display());
    Daemon::start(&LOCAL_STRATUM_10.replace("[server]\n", &server))
}

#[test]
fn chronyd_accepts_replies_signed_with_each_key_type() {
    needs!("root", "chronyd");
    private_network();
    let dir = TempDir::new("auth");
    let daemon = daemon_with_keys(&dir, "require_auth = true\n");
    for key in 1..=5 {
        let accepted = chronyd_accepts(&dir, KEYS, key);
        assert!(accepted, "key {key} refused; daemon log:\n{}", daemon.log());
    }
}

#[test]
fn chronyd_rejects_a_server_with_another_key() {
    needs!("root", "chronyd");
    private_network();
    let dir = TempDir::new("badkey");
    let _daemon = daemon_with_keys(&dir, "");
    // Same key ids, other secrets: every reply fails chronyd's check (pitime answers crypto-NAK).
    let other = KEYS
        .replace("0102", "ffee")
        .replace("0001", "ffee")
        .replace("pitime", "другой");
    for key in [1, 3] {
        assert!(
            !chronyd_accepts(&dir, &other, key),
            "key {key} accepted with the wrong secret"
        );
    }
}

#[test]
fn ntpdig_signs_with_whole_sha2_digests_and_is_answered() {
    needs!("root", "ntpdig");
    private_network();
    let dir = TempDir::new("ntpdig-sha2");
    let _daemon = daemon_with_keys(&dir, "require_auth = true\n");
    // NTPsec's format: a key of more than 20 hex digits is hex. ntpdig sends the whole 32-byte
    // digest, where chrony and ntpd truncate it to 20.
    let keys = dir.write(
        "ntpdig.keys",
        "2 SHA1 0102030405060708090a0b0c0d0e0f1011121314\n\
         4 SHA256 0102030405060708090a0b0c0d0e0f1011121314\n",
    );
    file_mode(&keys, 0o600);
    for key in ["2", "4"] {
        let out = run(Command::new("ntpdig")
            .args(["-t", "3", "-j", "-k"])
            .arg(&keys)
            .args(["-a", key, "127.0.0.1"]));
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && said.contains("\"stratum\":10"),
            "key {key}: {said}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
