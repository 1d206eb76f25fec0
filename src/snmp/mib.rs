//! The NTPv4-MIB (RFC 5907) as pitime fills it: the entity's identity, its status and the
//! association table, built from the status the daemon publishes every second. Pure: a sorted
//! list of objects, looked up by exact name (Get) or by successor (GetNext).

use super::agentx::{in_range, Oid, SearchRange, Value};
use crate::discipline::snapshot::ClockSnapshot;
use crate::ntp::control::PeerSelect;
use crate::server::control::{self, Association, ControlView, Origin};
use crate::server::stats::{Outcome, ServerStats};
use crate::time::{Leap, Realtime};
use crate::web::status::Status;

/// ntpSnmpMIB: 1.3.6.1.2.1.197.
pub fn root() -> Oid {
    Oid(vec![1, 3, 6, 1, 2, 1, 197])
}

/// ntpEntStatusCurrentMode's values.
const NOT_SYNCHRONIZED: i32 = 2;
const NONE_CONFIGURED: i32 = 3;
const SYNC_TO_LOCAL: i32 = 4;
const SYNC_TO_REFCLOCK: i32 = 5;
const SYNC_TO_REMOTE_SERVER: i32 = 6;

/// Every object pitime serves, sorted by name: from the published status, the sources as ntpq
/// sees them, the clock state and the server's counters.
pub fn objects(
    status: &Status,
    view: &ControlView,
    clock: &ClockSnapshot,
    stats: &ServerStats,
    heartbeat: u32,
    now: Realtime,
) -> Vec<(Oid, Value)> {
    let precision = clock.precision;
    let text = |s: &str| Value::OctetString(s.as_bytes().to_vec());
    let ms = |s: f64| text(&format!("{:.3} ms", s * 1e3));
    let c = &status.clock;
    let info = root().child(&[1, 1]);
    let mut o = vec![
        (info.child(&[1, 0]), text("pitime")),
        (info.child(&[2, 0]), text(status.version)),
        (info.child(&[3, 0]), text("pitime")),
        (
            info.child(&[4, 0]),
            text(&format!(
                "{} {}",
                std::env::consts::OS,
                std::env::consts::ARCH
            )),
        ),
        // The resolution as a divider of the second, and the precision as its log2.
        (
            info.child(&[5, 0]),
            Value::Gauge32(2f64.powi(-i32::from(precision)).min(f64::from(u32::MAX)) as u32),
        ),
        (info.child(&[6, 0]), Value::Integer(precision.into())),
        (
            info.child(&[7, 0]),
            ms(c.root_dispersion_seconds + c.root_delay_seconds / 2.0),
        ),
    ];
    let peer = view
        .associations
        .iter()
        .find(|a| a.selection == PeerSelect::SysPeer);
    let mode = match (c.synchronised, peer.map(|p| &p.origin)) {
        _ if view.associations.is_empty() => NONE_CONFIGURED,
        (false, _) => NOT_SYNCHRONIZED,
        (true, Some(Origin::Server(_))) => SYNC_TO_REMOTE_SERVER,
        (true, Some(Origin::Refclock { source, .. })) if *source != control::source::LOCAL => {
            SYNC_TO_REFCLOCK
        }
        // The local clock, or holdover with no source followed.
        (true, _) => SYNC_TO_LOCAL,
    };
    // Counter32 wraps, as SNMP counters do.
    let count = |outcomes: &[Outcome]| -> u32 {
        outcomes.iter().map(|o| stats.get(*o)).sum::<u64>() as u32
    };
    let received = stats.received() as u32;
    let answered = count(&[
        Outcome::Served,
        Outcome::ServedAuthenticated,
        Outcome::CryptoNak,
        Outcome::KissRate,
        Outcome::KissDeny,
        Outcome::ControlAnswered,
        Outcome::ControlError,
    ]);
    let leap = match clock.leap {
        Leap::Insert => 1,
        Leap::Delete => -1,
        Leap::None | Leap::Unsynchronised => 0,
    };
    let served = c.correction.apply(now);
    // The leap second comes at the end of the UTC day it is announced in.
    let leap_at = match leap {
        0 => Vec::new(),
        _ => ntp_date(Realtime::from_timespec(
            (served.as_nanos().div_euclid(86_400_000_000_000) + 1) * 86_400,
            0,
        )),
    };
    let st = root().child(&[1, 2]);
    o.extend([
        (st.child(&[1, 0]), Value::Integer(mode)),
        (st.child(&[2, 0]), Value::Gauge32(c.stratum.into())),
        (
            st.child(&[3, 0]),
            Value::Gauge32(peer.map_or(0, |p| p.id.into())),
        ),
        (st.child(&[4, 0]), text(peer.map_or("", |p| &p.name))),
        (st.child(&[5, 0]), ms(c.offset_seconds)),
        (
            st.child(&[6, 0]),
            Value::Gauge32(view.associations.len() as u32),
        ),
        (st.child(&[7, 0]), ms(c.root_dispersion_seconds)),
        (
            st.child(&[8, 0]),
            Value::TimeTicks((status.uptime_seconds * 100.0) as u32),
        ),
        (st.child(&[9, 0]), Value::OctetString(ntp_date(served))),
        (st.child(&[10, 0]), Value::OctetString(leap_at)),
        (st.child(&[11, 0]), Value::Integer(leap)),
        (st.child(&[12, 0]), Value::Counter32(received)),
        (st.child(&[13, 0]), Value::Counter32(answered)),
        (
            st.child(&[14, 0]),
            Value::Counter32(count(&[Outcome::DropBadVersion])),
        ),
        (
            st.child(&[15, 0]),
            Value::Counter32(count(&[
                Outcome::DropTooShort,
                Outcome::DropOversized,
                Outcome::DropBadMode,
                Outcome::DropMalformed,
            ])),
        ),
    ]);
    // ntpEntControl: the heartbeat's interval, and the notifications sent (a BITS value:
    // modeChange, stratumChange, syspeerChanged, leapSecondAnnounced and heartbeat).
    let control = root().child(&[1, 4]);
    o.extend([
        (control.child(&[1, 0]), Value::Gauge32(heartbeat)),
        (control.child(&[2, 0]), Value::OctetString(vec![0x71, 0x80])),
    ]);
    // The association table, column by column (the order GetNext walks it in).
    let entry = root().child(&[1, 3, 1, 1]);
    type Column = (u32, fn(&Association) -> Value);
    let columns: [Column; 9] = [
        (2, |a| Value::OctetString(a.name.as_bytes().to_vec())),
        (3, |a| Value::OctetString(a.refid.as_bytes().to_vec())),
        (4, |a| {
            Value::Integer(address(a).map_or(0, |b| if b.len() == 4 { 1 } else { 2 }))
        }),
        (5, |a| Value::OctetString(address(a).unwrap_or_default())),
        (6, |a| optional_ms(a.offset)),
        (7, |a| Value::Gauge32(a.stratum.into())),
        (8, |a| optional_ms(a.jitter)),
        (9, |a| optional_ms(a.delay)),
        (10, |a| optional_ms(a.dispersion)),
    ];
    for (column, value) in columns {
        for a in &view.associations {
            o.push((entry.child(&[column, a.id.into()]), value(a)));
        }
    }
    o.sort_by(|a, b| a.0.cmp(&b.0));
    o
}

fn optional_ms(s: Option<f64>) -> Value {
    let text = s.map_or("-".into(), |s| format!("{:.3} ms", s * 1e3));
    Value::OctetString(text.into_bytes())
}

/// An association's address: a server's, or ntpd's 127.127.TYPE.UNIT for a reference clock.
fn address(a: &Association) -> Option<Vec<u8>> {
    match a.origin {
        Origin::Refclock { driver, unit, .. } => Some(vec![127, 127, driver, unit]),
        Origin::Server(Some(addr)) => Some(match addr.ip() {
            std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
            std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
        }),
        Origin::Server(None) => None,
    }
}

/// NtpDateTime: the era, the seconds of the era and the 64-bit fraction (RFC 5905's date).
fn ntp_date(t: Realtime) -> Vec<u8> {
    let nanos = i128::from(t.as_nanos()) + 2_208_988_800 * 1_000_000_000;
    let seconds = nanos.div_euclid(1_000_000_000);
    let fraction = ((nanos.rem_euclid(1_000_000_000) as u128) << 64) / 1_000_000_000;
    let mut out = Vec::with_capacity(16);
    out.extend(((seconds >> 32) as i32).to_be_bytes());
    out.extend((seconds as u32).to_be_bytes());
    out.extend((fraction as u64).to_be_bytes());
    out
}

/// The value of exactly `name` (Get).
pub fn get(objects: &[(Oid, Value)], name: &Oid) -> Value {
    objects
        .binary_search_by(|(o, _)| o.cmp(name))
        .map_or(Value::NoSuchObject, |i| objects[i].1.clone())
}

/// The first object in `range` (GetNext), or the end of the view.
pub fn next(objects: &[(Oid, Value)], range: &SearchRange) -> (Oid, Value) {
    let from = objects.partition_point(|(o, _)| *o < range.start);
    objects[from..]
        .iter()
        .find(|(o, _)| in_range(o, range))
        .cloned()
        .unwrap_or_else(|| (range.start.clone(), Value::EndOfMibView))
}

/// What the notifications watch: the mode, the stratum and the active source.
#[derive(Clone, Debug, PartialEq)]
struct Watched {
    mode: Value,
    stratum: Value,
    peer: Value,
    leap: Value,
}

/// Decides the NTPv4-MIB's notifications from one set of objects to the next: a change of mode
/// (ntpEntNotifModeChange), of stratum (ntpEntNotifStratumChange), of the active source
/// (ntpEntNotifSyspeerChanged), a leap second announced (ntpEntNotifLeapSecondAnnounced), and
/// a heartbeat every `interval` seconds.
pub struct Notifier {
    last: Option<Watched>,
    interval: f64,
    next_heartbeat: f64,
}

impl Notifier {
    /// Watching from `now` (seconds on any steady clock).
    pub fn new(interval: u32, now: f64) -> Self {
        let interval = f64::from(interval.max(1));
        Notifier {
            last: None,
            interval,
            next_heartbeat: now + interval,
        }
    }

    /// The notifications due at `now`, each as its variable bindings.
    pub fn due(&mut self, objects: &[(Oid, Value)], now: f64) -> Vec<Vec<(Oid, Value)>> {
        let status = root().child(&[1, 2]);
        let at = |ids: &[u32]| status.child(ids);
        let watched = Watched {
            mode: get(objects, &at(&[1, 0])),
            stratum: get(objects, &at(&[2, 0])),
            peer: get(objects, &at(&[3, 0])),
            leap: get(objects, &at(&[11, 0])),
        };
        // sysUpTime.0 and snmpTrapOID.0 first, then the notification's objects and message.
        let notification = |number: u32, message: &str, fields: &[Oid]| {
            let mut b = vec![
                (
                    Oid(vec![1, 3, 6, 1, 2, 1, 1, 3, 0]),
                    get(objects, &at(&[8, 0])),
                ),
                (
                    Oid(vec![1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0]),
                    Value::ObjectIdentifier(root().child(&[0, number])),
                ),
            ];
            b.extend(fields.iter().map(|f| (f.clone(), get(objects, f))));
            b.push((
                root().child(&[1, 5, 1, 0]),
                Value::OctetString(message.as_bytes().to_vec()),
            ));
            b
        };
        let date = at(&[9, 0]);
        let mut due = Vec::new();
        if let Some(last) = &self.last {
            if last.mode != watched.mode {
                due.push(notification(1, "mode changed", &[at(&[1, 0])]));
            }
            if last.stratum != watched.stratum {
                due.push(notification(
                    2,
                    "stratum changed",
                    &[date.clone(), at(&[2, 0])],
                ));
            }
            if last.peer != watched.peer {
                let fields = [date.clone(), at(&[3, 0])];
                due.push(notification(3, "active source changed", &fields));
            }
            if last.leap != watched.leap && watched.leap != Value::Integer(0) {
                let fields = [date.clone()];
                due.push(notification(7, "leap second announced", &fields));
            }
        }
        if now >= self.next_heartbeat {
            self.next_heartbeat = now + self.interval;
            let interval = root().child(&[1, 4, 1, 0]);
            due.push(notification(8, "heartbeat", &[date, at(&[1, 0]), interval]));
        }
        self.last = Some(watched);
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::control::source;

    fn view() -> ControlView {
        ControlView::example(Realtime::from_timespec(1_800_000_000, 0))
    }

    /// The objects with a clock announcing `leap` and no requests counted.
    fn with(status: &Status, view: &ControlView, leap: Leap, now: Realtime) -> Vec<(Oid, Value)> {
        let clock = ClockSnapshot {
            leap,
            ..ClockSnapshot::unsynchronised(-20)
        };
        objects(status, view, &clock, &ServerStats::default(), 60, now)
    }

    #[test]
    fn objects_are_sorted_and_walk_from_the_root_to_the_end() {
        let mut status = Status::default();
        status.clock.synchronised = true;
        status.clock.stratum = 1;
        let t = Realtime::from_timespec(1_800_000_000, 0);
        let objects = with(&status, &view(), Leap::None, t);
        assert!(objects.windows(2).all(|w| w[0].0 < w[1].0));
        let walk = |start: Oid| {
            next(
                &objects,
                &SearchRange {
                    start,
                    include: false,
                    end: Oid(vec![]),
                },
            )
        };
        let (first, value) = walk(root());
        assert_eq!(first, root().child(&[1, 1, 1, 0]));
        assert_eq!(value, Value::OctetString(b"pitime".to_vec()));
        let mode = root().child(&[1, 2, 1, 0]);
        assert_eq!(get(&objects, &mode), Value::Integer(SYNC_TO_REFCLOCK));
        // The table: the name column for both rows, then the refid column.
        let name = root().child(&[1, 3, 1, 1, 2]);
        assert_eq!(walk(name.clone()).0, name.child(&[1]));
        assert_eq!(walk(name.child(&[1])).0, name.child(&[2]));
        let address = root().child(&[1, 3, 1, 1, 5, 1]);
        assert_eq!(
            get(&objects, &address),
            Value::OctetString(vec![127, 127, 20, 0])
        );
        let (last, _) = objects.last().unwrap().clone();
        assert_eq!(walk(last.clone()), (last, Value::EndOfMibView));
        assert_eq!(get(&objects, &root()), Value::NoSuchObject);
    }

    #[test]
    fn notifications_follow_changes_and_the_heartbeat() {
        let mut status = Status::default();
        status.clock.stratum = 10;
        status.clock.synchronised = true;
        let t = Realtime::from_timespec(1_800_000_000, 0);
        let mut notifier = Notifier::new(60, 0.0);
        let traps = |due: &[Vec<(Oid, Value)>]| -> Vec<u32> {
            due.iter()
                .map(|n| match &n[1].1 {
                    Value::ObjectIdentifier(oid) => *oid.0.last().unwrap(),
                    other => panic!("{other:?}"),
                })
                .collect()
        };
        // The local clock followed at first: the first look only learns, nothing changes;
        // then the receiver locks.
        let mut local = view();
        local.associations[0].selection = PeerSelect::Reject;
        local.associations[1].selection = PeerSelect::SysPeer;
        local.associations[1].origin = Origin::Refclock {
            driver: 1,
            unit: 0,
            source: source::LOCAL,
        };
        let before = with(&status, &local, Leap::None, t);
        let mode = root().child(&[1, 2, 1, 0]);
        assert_eq!(get(&before, &mode), Value::Integer(SYNC_TO_LOCAL));
        assert!(notifier.due(&before, 1.0).is_empty());
        assert!(notifier.due(&before, 2.0).is_empty());
        status.clock.stratum = 1;
        let due = notifier.due(&with(&status, &view(), Leap::None, t), 3.0);
        assert_eq!(traps(&due), [1, 2, 3]);
        assert_eq!(due[1][3], (root().child(&[1, 2, 2, 0]), Value::Gauge32(1)));
        // A leap second announced: said, and its date is the end of the UTC day.
        let with_leap = with(&status, &view(), Leap::Insert, t);
        assert_eq!(traps(&notifier.due(&with_leap, 4.0)), [7]);
        let midnight = ntp_date(Realtime::from_timespec(1_800_057_600, 0));
        let leap_at = root().child(&[1, 2, 10, 0]);
        assert_eq!(get(&with_leap, &leap_at), Value::OctetString(midnight));
        let due = notifier.due(&with(&status, &view(), Leap::Insert, t), 60.0);
        assert_eq!(traps(&due), [8]);
    }

    #[test]
    fn ntp_dates_count_from_1900() {
        let date = ntp_date(Realtime::from_timespec(0, 500_000_000));
        assert_eq!(date[..8], [0, 0, 0, 0, 0x83, 0xaa, 0x7e, 0x80]);
        assert_eq!(date[8], 0x80);
    }
}
