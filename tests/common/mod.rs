//! Shared harness for the end-to-end tests: the real `pitime` binary, real sockets, each test in
//! a private network namespace so it can use port 123 (which ntpdig insists on) without
//! colliding with other tests or with a time server on the machine.

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::io::Read;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_pitime");

/// Skips the calling test, with the reason, unless this machine has what it needs: `"root"`
/// (a private network namespace) or commands (the Debian peers), on PATH or by absolute path. `cargo test` as any user runs
/// the rest; `scripts/test.sh` installs the peers, runs as root and sets `PITIME_TEST_ALL`, under
/// which a missing need fails the test instead of skipping it.
#[macro_export]
macro_rules! needs {
    ($($need:literal),+) => {
        if let Some(why) = common::missing(&[$($need),+]) {
            if std::env::var_os("PITIME_TEST_ALL").is_some() {
                panic!("needs {why}");
            }
            // Straight to stderr: the test harness would hide an eprintln! of a passing test.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "skipped: needs {why} (scripts/test.sh runs every test, as root)"
            );
            return;
        }
    };
}

/// What of `needs` this machine lacks, if anything.
pub fn missing(needs: &[&str]) -> Option<String> {
    let lacking: Vec<String> = needs
        .iter()
        .filter(|need| match **need {
            // SAFETY: geteuid has no side effects.
            "root" => (unsafe { libc::geteuid() }) != 0,
            // A tool off PATH, such as ntpq unpacked into /opt/ntpsec.
            path if path.starts_with('/') => !Path::new(path).is_file(),
            command => !on_path(command),
        })
        .map(|need| match *need {
            "root" => "root, for a private network namespace".to_string(),
            command => format!("`{command}` (Debian packages: see scripts/test.sh)"),
        })
        .collect();
    (!lacking.is_empty()).then(|| lacking.join(" and "))
}

fn on_path(command: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(command).is_file()))
}

/// Moves the calling test thread (and the processes it starts) into a new network namespace
/// with only a loopback interface. Needs root: call `needs!("root")` first.
pub fn private_network() {
    // SAFETY: unshare only changes this thread's namespace membership.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(
        rc,
        0,
        "unshare(CLONE_NEWNET) failed ({})",
        std::io::Error::last_os_error()
    );
    run_ok(Command::new("ip").args(["link", "set", "lo", "up"]));
}

/// Runs a command to completion, panicking with its output if it fails to start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (install it: see .ci/run)"))
}

pub fn run_ok(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir = std::env::temp_dir().join(format!("pitime-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running daemon, stopped with SIGTERM on drop.
pub struct Daemon {
    child: Option<Child>,
    pub dir: TempDir,
    pub config: PathBuf,
    log: PathBuf,
}

impl Daemon {
    /// Starts `pitime run` with `config` and waits until it serves `ready_addrs` NTP addresses.
    pub fn start(config: &str) -> Daemon {
        let dir = TempDir::new("daemon");
        let config_path = dir.write("pitime.toml", config);
        Self::start_in(dir, config_path, &[])
    }

    pub fn start_in(dir: TempDir, config: PathBuf, extra_args: &[&str]) -> Daemon {
        let log = dir.path("pitime.log");
        let child = Command::new(BIN)
            .arg("run")
            .arg("--config")
            .arg(&config)
            .args(extra_args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start pitime");
        let daemon = Daemon {
            child: Some(child),
            dir,
            config,
            log,
        };
        daemon.wait_for_log("serving NTP");
        daemon
    }

    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// Waits (up to 10 s) until the log has `needle` `count` times.
    pub fn wait_for_log_n(&self, needle: &str, count: usize) {
        self.wait_for_log_within(needle, count, Duration::from_secs(10));
    }

    pub fn wait_for_log_within(&self, needle: &str, count: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.log().matches(needle).count() < count {
            if Instant::now() > deadline {
                panic!("`{needle}` not logged {count} times; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn wait_for_log(&self, needle: &str) {
        self.wait_for_log_n(needle, 1);
    }

    /// The address logged with `message` (`serving NTP`, say), as bound: a port 0 asked for
    /// is the port the kernel picked.
    pub fn logged_addr(&self, message: &str) -> SocketAddr {
        self.wait_for_log(message);
        let log = self.log();
        let line = log.lines().find(|l| l.contains(message)).unwrap();
        let addr = line.split("addr=").nth(1).unwrap_or_default();
        addr.trim()
            .parse()
            .unwrap_or_else(|_| panic!("no address in `{line}`"))
    }

    pub fn signal(&self, sig: i32) {
        let pid = self.child.as_ref().unwrap().id() as i32;
        // SAFETY: sends a signal to our own child.
        unsafe { libc::kill(pid, sig) };
    }

    /// Rewrites the configuration and sends SIGHUP; waits for the daemon to say how it went.
    pub fn reload(&self, config: &str) {
        let before = self.log().matches("reload").count();
        std::fs::write(&self.config, config).unwrap();
        self.signal(libc::SIGHUP);
        // A reload restarts the sources: generous on a loaded machine.
        self.wait_for_log_within("reload", before + 1, Duration::from_secs(30));
    }

    /// Sends SIGTERM and returns the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.signal(libc::SIGTERM);
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("pitime did not stop within 5 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A minimal NTPv4 client request with `transmit` as its transmit timestamp.
/// Parses one line of `ntpdig -j` output into (stratum, offset).
pub fn ntpdig_json(client: &str, host: &str) -> (u64, f64) {
    let out = run_ok(Command::new(client).args(["-j", "-t", "2", host]));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let field = |name: &str| -> String {
        let start = text
            .find(&format!("\"{name}\":"))
            .unwrap_or_else(|| panic!("no {name} in {text}"));
        text[start + name.len() + 3..]
            .split([',', '}'])
            .next()
            .unwrap()
            .trim()
            .to_string()
    };
    (
        field("stratum").parse().unwrap(),
        field("offset").parse().unwrap(),
    )
}

pub fn client_request(version: u8, transmit: u64) -> Vec<u8> {
    let mut p = vec![0u8; 48];
    p[0] = version << 3 | 3;
    p[40..48].copy_from_slice(&transmit.to_be_bytes());
    p
}

/// Sends `request` to `server` from `from` and returns the reply, or None after 300 ms.
pub fn exchange_from(from: &str, server: SocketAddr, request: &[u8]) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind(from).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    socket.send_to(request, server).unwrap();
    let mut buf = [0u8; 2048];
    match socket.recv_from(&mut buf) {
        Ok((n, _)) => Some(buf[..n].to_vec()),
        Err(_) => None,
    }
}

pub fn exchange(server: SocketAddr, request: &[u8]) -> Option<Vec<u8>> {
    let from = if server.is_ipv4() {
        "127.0.0.1:0"
    } else {
        "[::1]:0"
    };
    exchange_from(from, server, request)
}

/// Waits up to `limit` until `server` answers stratum 1 with refid PPS; fails with `context`
/// (the daemon's log, say) if it does not.
pub fn wait_for_stratum_1_pps(server: SocketAddr, limit: Duration, context: impl Fn() -> String) {
    let deadline = Instant::now() + limit;
    while exchange(server, &client_request(4, 0)).map(|r| stratum_refid(&r)) != Some((1, *b"PPS\0"))
    {
        assert!(
            Instant::now() < deadline,
            "no stratum 1 PPS within {limit:?}:\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Stratum and refid of a reply.
pub fn stratum_refid(reply: &[u8]) -> (u8, [u8; 4]) {
    (reply[1], reply[12..16].try_into().unwrap())
}

pub fn file_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The body of `GET path` from `addr`, or an empty string if nothing answers there (yet).
pub fn http_get(addr: &str, path: &str) -> String {
    use std::io::Write;
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut answer = String::new();
    if s.write_all(request.as_bytes()).is_ok() {
        let _ = s.read_to_string(&mut answer);
    }
    answer
        .split_once("\r\n\r\n")
        .map_or("", |x| x.1)
        .to_string()
}

/// Two network namespaces joined by a veth pair: the server's at `SERVER_IP`, the client's at
/// `CLIENT_IP`. Named uniquely per run; deleted (with the pair) on drop. Needs root.
pub struct VethPair {
    pub server: String,
    pub client: String,
}

impl VethPair {
    pub const SERVER_IP: &'static str = "10.123.0.1";
    pub const CLIENT_IP: &'static str = "10.123.0.2";

    pub fn new(tag: &str) -> VethPair {
        static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("{tag}{}-{n}", std::process::id());
        let pair = VethPair {
            server: format!("pt-{id}-s"),
            client: format!("pt-{id}-c"),
        };
        let ip = |args: &[&str]| run_ok(Command::new("ip").args(args));
        for (ns, end, addr) in [
            (&pair.server, "vs", Self::SERVER_IP),
            (&pair.client, "vc", Self::CLIENT_IP),
        ] {
            ip(&["netns", "add", ns]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
            if end == "vs" {
                ip(&["-n", ns, "link", "add", "vs", "type", "veth", "peer", "vc"]);
            } else {
                ip(&["-n", &pair.server, "link", "set", "vc", "netns", ns]);
            }
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", end]);
        }
        for (ns, end) in [(&pair.server, "vs"), (&pair.client, "vc")] {
            ip(&["-n", ns, "link", "set", end, "up"]);
        }
        pair
    }

    /// Moves the calling thread (and what it starts from now on) into namespace `ns`.
    pub fn enter(ns: &str) {
        let f = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
        use std::os::fd::AsRawFd;
        // SAFETY: setns only changes this thread's namespace membership.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {ns}: {}", std::io::Error::last_os_error());
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        for ns in [&self.server, &self.client] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// chronyd that never touches the clock (`-x`), in the calling thread's network namespace,
/// configured by `lines` (its sources, or what it serves); driven by chronyc over its own
/// socket, logging its measurements.
pub struct Chronyd {
    child: Child,
    pub dir: TempDir,
}

impl Chronyd {
    pub fn start(lines: &str) -> Chronyd {
        let dir = TempDir::new("chronyd");
        // chronyd opens its command socket only in a directory no one else may enter.
        file_mode(&dir.0, 0o700);
        let conf = format!(
            "{lines}\ncmdport 0\nbindcmdaddress {}\npidfile {}\nlogdir {}\nlog measurements\n",
            dir.path("chronyd.sock").display(),
            dir.path("chronyd.pid").display(),
            dir.0.display(),
        );
        let conf = dir.write("chrony.conf", &conf);
        let log = std::fs::File::create(dir.path("chronyd.log")).unwrap();
        let child = Command::new("chronyd")
            .args(["-x", "-d", "-u", "root", "-f"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start chronyd");
        Chronyd { child, dir }
    }

    /// chronyc's answer to `command` (`-n`: addresses, not names), or what it said went wrong.
    pub fn chronyc(&self, command: &str) -> String {
        let out = run(Command::new("chronyc")
            .arg("-n")
            .arg("-h")
            .arg(self.dir.path("chronyd.sock"))
            .arg(command));
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
    }

    /// Waits (up to `limit`) until chronyc's answer to `command` satisfies `ok`; returns it.
    pub fn wait_for(&self, command: &str, limit: Duration, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let said = self.chronyc(command);
            if ok(&said) {
                return said;
            }
            if Instant::now() > deadline {
                let log = self.log();
                panic!("chronyc {command} never as expected:\n{said}\nchronyd log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What chronyd said on stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path("chronyd.log")).unwrap_or_default()
    }
}

impl Drop for Chronyd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `.log` captures in `dir` (relative to the crate), sorted by name.
pub fn capture_logs(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut logs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    logs
}
