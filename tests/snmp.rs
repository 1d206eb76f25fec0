//! SNMP end to end: a real net-snmp `snmpd` (AgentX master, on loopback, its socket in a
//! temporary directory), pitime as its subagent serving the NTPv4-MIB from the simulated
//! receiver, Debian's `snmpwalk`, `snmpbulkwalk` and `snmpget` asking, and `snmptrapd`
//! receiving the notifications snmpd forwards. No MIB files are installed with Debian's snmp
//! package, so objects are named by number.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const SNMPD: &str = "/usr/sbin/snmpd";
const SNMPTRAPD: &str = "/usr/sbin/snmptrapd";
/// ntpSnmpMIB (RFC 5907).
const MIB: &str = ".1.3.6.1.2.1.197";

/// A net-snmp daemon (snmpd or snmptrapd), killed on drop.
struct NetSnmp(Child);

impl NetSnmp {
    /// `program` in the foreground on `port` of 127.0.0.1, with `options` and only the
    /// configuration `conf`, logging to `dir`/`name`.log, its state in `dir`/`name`-state.
    fn spawn(
        program: &str,
        options: &[&str],
        dir: &TempDir,
        name: &str,
        conf: &str,
        port: u16,
    ) -> NetSnmp {
        let conf = dir.write(&format!("{name}.conf"), conf);
        let child = Command::new(program)
            .args(options)
            .args(["-f", "-C", "-c"])
            .arg(&conf)
            .arg("-Lf")
            .arg(dir.path(&format!("{name}.log")))
            .arg(format!("udp:127.0.0.1:{port}"))
            .env("SNMP_PERSISTENT_DIR", dir.path(&format!("{name}-state")))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}"));
        NetSnmp(child)
    }

    /// snmpd on `port` with its AgentX socket in `dir`, sending traps to `trap_port`.
    fn snmpd(dir: &TempDir, port: u16, trap_port: u16) -> NetSnmp {
        let conf = format!(
            "master agentx\nagentXSocket {}\nagentXPerms 0600 0700\n\
             rocommunity public 127.0.0.1\ntrap2sink 127.0.0.1:{trap_port} public\n",
            dir.path("agentx").display()
        );
        let snmpd = NetSnmp::spawn(SNMPD, &[], dir, "snmpd", &conf, port);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !dir.path("agentx").exists() {
            assert!(Instant::now() < deadline, "snmpd made no AgentX socket");
            std::thread::sleep(Duration::from_millis(50));
        }
        snmpd
    }

    /// snmptrapd on `port`, logging every trap (numeric OIDs) to `dir`/traps.log.
    fn snmptrapd(dir: &TempDir, port: u16) -> NetSnmp {
        let conf = "disableAuthorization yes\n";
        NetSnmp::spawn(SNMPTRAPD, &["-On"], dir, "traps", conf, port)
    }
}

impl Drop for NetSnmp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A snmp tool's output (numeric OIDs), failing the test on an error.
fn ask(tool: &str, port: u16, oid: &str) -> String {
    let out = run(Command::new(tool).args([
        "-v2c",
        "-c",
        "public",
        "-On",
        "-t",
        "2",
        &format!("127.0.0.1:{port}"),
        oid,
    ]));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{tool} {oid}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn snmpwalk_reads_the_ntpv4_mib_through_snmpd() {
    needs!(
        "/usr/sbin/snmpd",
        "/usr/sbin/snmptrapd",
        "snmpwalk",
        "snmpbulkwalk",
        "snmpget"
    );
    let dir = TempDir::new("snmp");
    let free_udp = || {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .unwrap()
            .port()
    };
    let (port, trap_port) = (free_udp(), free_udp());
    let _snmptrapd = NetSnmp::snmptrapd(&dir, trap_port);
    let snmpd = NetSnmp::snmpd(&dir, port, trap_port);
    let web = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap();
    let daemon = Daemon::start(&format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n[web]\nlisten = [\"{web}\"]\n\
         [snmp]\nagentx = \"{}\"\nheartbeat = 2\n\
         [[source]]\nkind = \"gps\"\n[source.simulate]\n[[source]]\nkind = \"local\"\n",
        dir.path("agentx").display()
    ));
    daemon.wait_for_log("serving the NTPv4-MIB through snmpd");

    // Stratum 1 from the simulated receiver's pulse, as ntpEntStatusStratum.0 tells.
    let stratum = format!("{MIB}.1.2.2.0");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ask("snmpget", port, &stratum).contains("Gauge32: 1\n") {
        assert!(Instant::now() < deadline, "{}", daemon.log());
        std::thread::sleep(Duration::from_millis(250));
    }
    let walk = ask("snmpwalk", port, MIB);
    for line in [
        format!("{MIB}.1.1.1.0 = STRING: \"pitime\""),
        format!("{MIB}.1.1.2.0 = STRING: \"{}\"", env!("CARGO_PKG_VERSION")),
        // ntpEntStatusCurrentMode: syncToRefclock(5); the active source: association 1.
        format!("{MIB}.1.2.1.0 = INTEGER: 5"),
        format!("{MIB}.1.2.3.0 = Gauge32: 1"),
        format!("{MIB}.1.2.4.0 = STRING: \"gps\""),
        format!("{MIB}.1.2.6.0 = Gauge32: 2"),
        // The association table: names, and the receiver at ntpd's 127.127.20.0.
        format!("{MIB}.1.3.1.1.2.1 = STRING: \"gps\""),
        format!("{MIB}.1.3.1.1.2.2 = STRING: \"local\""),
        format!("{MIB}.1.3.1.1.5.1 = Hex-STRING: 7F 7F 14 00"),
    ] {
        assert!(walk.contains(&line), "{line} not in\n{walk}");
    }
    assert!(
        walk.contains(&format!("{MIB}.1.2.9.0 = Hex-STRING:")),
        "{walk}"
    );
    // GetBulk walks the same objects (the values of a second later may differ).
    let names = |text: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.split(" = ").next())
            .map(str::to_string)
            .collect()
    };
    assert_eq!(names(&ask("snmpbulkwalk", port, MIB)), names(&walk));
    assert!(ask("snmpget", port, &format!("{MIB}.1.1.99.0")).contains("No Such Object"));

    // Notifications, forwarded by snmpd: the mode, the stratum and the active source changed
    // (the local clock's, then the receiver's) and the heartbeat, every 2 s here.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let traps = std::fs::read_to_string(dir.path("traps.log")).unwrap_or_default();
        if [".0.1", ".0.2", ".0.3", ".0.8"]
            .iter()
            .all(|n| traps.contains(&format!("OID: {MIB}{n}")))
        {
            break;
        }
        assert!(Instant::now() < deadline, "traps:\n{traps}");
        std::thread::sleep(Duration::from_millis(250));
    }

    // snmpd goes away and comes back: said once, then served again.
    drop(snmpd);
    daemon.wait_for_log("cannot serve SNMP through snmpd's AgentX socket");
    let _snmpd = NetSnmp::snmpd(&dir, port, trap_port);
    daemon.wait_for_log_within(
        "serving the NTPv4-MIB through snmpd",
        2,
        Duration::from_secs(30),
    );
    assert!(ask("snmpget", port, &stratum).contains("Gauge32: 1\n"));
    assert_eq!(
        daemon
            .log()
            .matches("cannot serve SNMP through snmpd's AgentX socket")
            .count(),
        1
    );
    assert_eq!(daemon.stop().code(), Some(0));
}
