//! SNMP: pitime as an AgentX subagent (RFC 2741) of the system's net-snmp `snmpd`, serving
//! the NTPv4-MIB (RFC 5907) read-only. snmpd does the SNMP itself (communities, SNMPv3 users,
//! who may ask); pitime connects to its AgentX socket, registers the MIB's subtree and answers
//! Get, GetNext and GetBulk from the status it publishes every second, and sends the MIB's
//! notifications (mode, stratum and active source changes, a heartbeat), which snmpd forwards
//! to its trap sinks. When snmpd is absent or goes away, pitime says so once and keeps retrying
//! quietly.

pub mod agentx;
pub mod mib;

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use crate::clock::system::realtime_now;
use crate::server::Shared;
use crate::web::status::Status;
use crate::worker::{pause, Retry, Workers};
use agentx::{Header, Oid, Request, SearchRange, Value, HEADER_LEN};

/// How long snmpd waits for an answer, seconds.
const TIMEOUT: u8 = 5;
/// Between tries to reach snmpd.
const RETRY: Duration = Duration::from_secs(10);
/// The longest wait for a request: how soon a stop is noticed.
const STEP: Duration = Duration::from_millis(500);
/// How often the notifications are decided: the status changes once a second.
const NOTIFY_EVERY: Duration = Duration::from_secs(1);
/// A GetBulk answers at most this many bindings.
const MAX_BINDINGS: usize = 1000;

/// The running subagent; stops when dropped.
pub struct Subagent {
    _workers: Workers,
}

impl Subagent {
    /// Serves the MIB through the AgentX socket at `socket`, from `status` and `shared`, with
    /// a heartbeat every `heartbeat` seconds.
    pub fn start(
        socket: PathBuf,
        heartbeat: u32,
        status: Arc<ArcSwap<Status>>,
        shared: Arc<Shared>,
    ) -> io::Result<Subagent> {
        let mut workers = Workers::default();
        workers.spawn("snmp", move |stop| {
            let mut retry = Retry::default();
            let source = Source {
                status,
                shared,
                heartbeat,
            };
            while !stop.load(Ordering::Relaxed) {
                match session(&socket, &source, stop, &mut retry) {
                    Ok(()) => {}
                    Err(e) if !stop.load(Ordering::Relaxed) && retry.failed() => tracing::warn!(
                        socket = %socket.display(),
                        "cannot serve SNMP through snmpd's AgentX socket: {e}; retrying quietly"
                    ),
                    Err(_) => {}
                }
                pause(RETRY, stop);
            }
        })?;
        Ok(Subagent { _workers: workers })
    }
}

/// Where the MIB's objects come from.
struct Source {
    status: Arc<ArcSwap<Status>>,
    shared: Arc<Shared>,
    heartbeat: u32,
}

impl Source {
    fn objects(&self) -> Vec<(Oid, Value)> {
        let shared = &self.shared;
        mib::objects(
            &self.status.load(),
            &shared.control.load(),
            &shared.clock.load(),
            &shared.stats,
            self.heartbeat,
            realtime_now(),
        )
    }
}

/// One AgentX session: open, register, answer and notify until snmpd closes it or pitime
/// stops.
fn session(socket: &Path, source: &Source, stop: &AtomicBool, retry: &mut Retry) -> io::Result<()> {
    let mut stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(STEP))?;
    let mut pdus = PduReader::default();
    stream.write_all(&agentx::open(1, TIMEOUT, &mib::root(), "pitime NTP server"))?;
    let (h, payload) = pdus.wait(&mut stream, stop)?;
    check(agentx::response_error(&h, &payload))?;
    let session = h.session;
    stream.write_all(&agentx::register(session, 2, &mib::root()))?;
    let (h, payload) = pdus.wait(&mut stream, stop)?;
    check(agentx::response_error(&h, &payload))?;
    tracing::info!(socket = %socket.display(), "serving the NTPv4-MIB through snmpd");
    retry.succeeded();
    let started = Instant::now();
    let mut notifier = mib::Notifier::new(source.heartbeat, 0.0);
    let mut decided = started;
    let mut packet = 2;
    loop {
        if decided.elapsed() >= NOTIFY_EVERY {
            decided = Instant::now();
            let now = started.elapsed().as_secs_f64();
            for bindings in notifier.due(&source.objects(), now) {
                packet += 1;
                stream.write_all(&agentx::notify(session, packet, &bindings))?;
            }
        }
        let Some((h, payload)) = pdus.next(&mut stream, stop)? else {
            continue;
        };
        let request = match agentx::parse_request(&h, &payload) {
            Ok(r) => r,
            Err(why) => {
                tracing::debug!("AgentX request dropped: {why}");
                stream.write_all(&agentx::response(&h, agentx::GEN_ERR, 0, &[]))?;
                continue;
            }
        };
        let bindings = match request {
            Request::Get(ranges) => {
                let objects = source.objects();
                ranges
                    .into_iter()
                    .map(|r| {
                        let value = mib::get(&objects, &r.start);
                        (r.start, value)
                    })
                    .collect()
            }
            Request::GetNext(ranges) => {
                let objects = source.objects();
                ranges.iter().map(|r| mib::next(&objects, r)).collect()
            }
            Request::GetBulk {
                non_repeaters,
                max_repetitions,
                ranges,
            } => bulk(&source.objects(), non_repeaters, max_repetitions, &ranges),
            Request::Close => return Ok(()),
            // A set: nothing here is writable. Responses (to notifications) need nothing.
            Request::Other(8) => {
                stream.write_all(&agentx::response(&h, agentx::NOT_WRITABLE, 1, &[]))?;
                continue;
            }
            Request::Other(9..=11) => {
                stream.write_all(&agentx::response(&h, agentx::GEN_ERR, 0, &[]))?;
                continue;
            }
            Request::Other(_) => continue,
        };
        stream.write_all(&agentx::response(&h, agentx::NO_ERROR, 0, &bindings))?;
    }
}

fn check(error: Result<u16, &'static str>) -> io::Result<()> {
    match error {
        Ok(0) => Ok(()),
        Ok(code) => Err(io::Error::other(format!(
            "snmpd refused: AgentX error {code}"
        ))),
        Err(why) => Err(io::Error::new(io::ErrorKind::InvalidData, why)),
    }
}

/// GetBulk (RFC 2741 section 7.2.3.3): the first `non_repeaters` ranges once, the others
/// `max_repetitions` times, each repetition going on from where the last ended.
fn bulk(
    objects: &[(Oid, Value)],
    non_repeaters: usize,
    max_repetitions: usize,
    ranges: &[SearchRange],
) -> Vec<(Oid, Value)> {
    let split = non_repeaters.min(ranges.len());
    let mut out: Vec<(Oid, Value)> = ranges[..split]
        .iter()
        .map(|r| mib::next(objects, r))
        .collect();
    let mut repeaters: Vec<SearchRange> = ranges[split..].to_vec();
    for _ in 0..max_repetitions {
        if repeaters.is_empty() || out.len() + repeaters.len() > MAX_BINDINGS {
            break;
        }
        for r in &mut repeaters {
            let (name, value) = mib::next(objects, r);
            r.start = name.clone();
            r.include = false;
            out.push((name, value));
        }
    }
    out
}

/// Cuts whole PDUs out of the stream.
#[derive(Default)]
struct PduReader {
    buf: Vec<u8>,
}

impl PduReader {
    /// The next PDU, waiting for it as long as it takes.
    fn wait(
        &mut self,
        stream: &mut UnixStream,
        stop: &AtomicBool,
    ) -> io::Result<(Header, Vec<u8>)> {
        loop {
            if let Some(pdu) = self.next(stream, stop)? {
                return Ok(pdu);
            }
        }
    }

    /// The next PDU, or `None` when none came within one read's timeout.
    fn next(
        &mut self,
        stream: &mut UnixStream,
        stop: &AtomicBool,
    ) -> io::Result<Option<(Header, Vec<u8>)>> {
        loop {
            if self.buf.len() >= HEADER_LEN {
                let h = Header::parse(&self.buf)
                    .map_err(|why| io::Error::new(io::ErrorKind::InvalidData, why))?;
                let end = HEADER_LEN + h.payload_len;
                if self.buf.len() >= end {
                    let payload = self.buf[HEADER_LEN..end].to_vec();
                    self.buf.drain(..end);
                    return Ok(Some((h, payload)));
                }
            }
            if stop.load(Ordering::Relaxed) {
                return Err(io::Error::other("stopping"));
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk) {
                Ok(0) => return Err(io::Error::other("snmpd closed the session")),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None)
                }
                Err(e) => return Err(e),
            }
        }
    }
}
