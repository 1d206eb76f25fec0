//! The discipline told to people: the sources table as `chronyc sources` shows it, and the
//! alarms an operator should know of.

use super::guard::PendingJump;
use super::select::Verdict;
use super::{ClockState, Discipline};
use crate::alarm::{Alarm, AlarmKind, CLOCK};
use crate::config::{LoneJump, SourceKind};
use crate::ntp::control::PeerSelect;
use crate::time::Realtime;

/// How a source stands in the selection, as `chronyc sources` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Standing {
    /// Followed by the clock.
    Selected,
    /// Agrees with the majority; not followed (coarser than the best, or the local clock).
    Candidate,
    /// Disagrees with the majority, or no majority exists.
    Falseticker,
    /// Configured `noselect`, or demoted while its receiver reports spoofing: measured, not
    /// followed.
    Noselect,
    Unreachable,
}

impl Standing {
    /// chronyc's one-character mark.
    pub fn mark(self) -> &'static str {
        match self {
            Standing::Selected => "*",
            Standing::Candidate => "+",
            Standing::Falseticker => "x",
            Standing::Noselect => "-",
            Standing::Unreachable => "?",
        }
    }

    /// ntpd's select code for this standing (peerstats, ntpq's status words).
    pub fn peer_select(self) -> PeerSelect {
        match self {
            Standing::Selected => PeerSelect::SysPeer,
            Standing::Candidate => PeerSelect::Candidate,
            Standing::Falseticker => PeerSelect::Falsetick,
            Standing::Noselect | Standing::Unreachable => PeerSelect::Reject,
        }
    }
}

/// One row of the sources table.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SourceReport {
    pub name: String,
    pub kind: SourceKind,
    pub state: Standing,
    pub reach: u8,
    /// Seconds since the last sample.
    pub last_sample_ago: Option<f64>,
    /// Offset (reference minus served time) and its jitter, seconds.
    pub offset: Option<f64>,
    pub jitter: Option<f64>,
    pub error: Option<f64>,
    pub refid: Option<String>,
    pub stratum: Option<u8>,
    /// Samples refused as outliers since start.
    pub outliers: u64,
}

impl Discipline {
    /// The sources table at `now`.
    pub fn report(&self, now: Realtime) -> Vec<SourceReport> {
        let model = self.model.as_ref();
        let local_selected = !self.following() && self.clock_state(now) != ClockState::Holdover;
        let best_local = self.best_local().map(|(i, _)| i);
        self.sources
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let last = s.filter.last();
                let state = match s.verdict {
                    Some(Verdict::Combined) => Standing::Selected,
                    Some(Verdict::Truechimer) => Standing::Candidate,
                    Some(Verdict::Falseticker | Verdict::NoMajority) => Standing::Falseticker,
                    None if s.local.is_some() && local_selected && best_local == Some(i) => {
                        Standing::Selected
                    }
                    None if s.local.is_some() => Standing::Candidate,
                    None if s.watched() && s.filter.is_fresh(now, s.max_age) => Standing::Noselect,
                    None => Standing::Unreachable,
                };
                let filtered = s.filter.filtered(model);
                SourceReport {
                    name: s.name.clone(),
                    kind: s.kind,
                    state,
                    reach: if s.local.is_some() { u8::MAX } else { s.reach },
                    last_sample_ago: last.map(|l| now.seconds_since(l.local)),
                    offset: filtered.map(|f| f.residual),
                    jitter: filtered.map(|f| f.jitter),
                    error: last.map(|l| l.error),
                    refid: last.map(|l| refid_text(&l.refid, l.stratum.saturating_add(1))),
                    stratum: last.map(|l| l.stratum),
                    outliers: s.filter.outliers,
                }
            })
            .collect()
    }

    /// What an operator should know now: disagreeing sources, a pending jump, holdover.
    pub fn alarms(&self, now: Realtime) -> Vec<Alarm> {
        let mut alarms = Vec::new();
        let mut raise =
            |subject: &str, kind, text: String| alarms.push(Alarm::new(subject, kind, text));
        let model = self.model.as_ref();
        let followed = self.followed().map(|f| f.offset);
        for s in &self.sources {
            let Some(f) = s.filter.filtered(model) else {
                continue;
            };
            let offset = seconds(f.residual);
            match s.verdict {
                Some(Verdict::Falseticker) => raise(
                    &s.name,
                    AlarmKind::Falseticker,
                    format!("disagrees with the majority of the sources (offset {offset})"),
                ),
                Some(Verdict::NoMajority) => raise(
                    &s.name,
                    AlarmKind::NoMajority,
                    format!("no majority of the sources agrees (offset {offset}); holding over"),
                ),
                Some(Verdict::Truechimer) => {
                    if let Some(o) =
                        followed.filter(|o| (f.residual - o).abs() > self.config.disagreement)
                    {
                        raise(
                            &s.name,
                            AlarmKind::Disagreement,
                            format!("{} from the followed time", seconds(f.residual - o)),
                        );
                    }
                }
                _ => {}
            }
        }
        if let Some(PendingJump {
            since,
            offset,
            source,
            ..
        }) = self.current_jump(now)
        {
            let name = &self.sources[source].name;
            let accept = format!("`pitime accept-jump {name}` to follow");
            let not_followed = match self.config.lone_jump {
                LoneJump::Hold => format!("not followed: no second source agrees; {accept}"),
                LoneJump::After(s) => format!(
                    "not followed for another {:.0} s ({accept} now)",
                    (s - now.seconds_since(since)).max(0.0)
                ),
            };
            raise(
                CLOCK,
                AlarmKind::Jump,
                format!("{name} jumped by {}; {not_followed}", seconds(offset)),
            );
        }
        let since = self.last_update.map_or(0.0, |t| now.seconds_since(t));
        let served = self.state(now);
        if !served.synchronised {
            raise(
                CLOCK,
                AlarmKind::Unsynchronised,
                "not synchronised: clients are told to ignore this server".into(),
            );
        }
        match self.clock_state(now) {
            ClockState::Holdover => raise(
                CLOCK,
                AlarmKind::Holdover,
                format!(
                    "holdover: no reference for {since:.0} s, estimated error {}",
                    seconds(served.root_dispersion_at(now))
                ),
            ),
            ClockState::Expired => raise(
                CLOCK,
                AlarmKind::Expired,
                format!("holdover ended after {since:.0} s: served as unsynchronised"),
            ),
            ClockState::Locked | ClockState::Unsynchronised => {}
        }
        alarms
    }
}

/// Seconds with a unit that suits their size.
fn seconds(s: f64) -> String {
    match s.abs() {
        a if a >= 1.0 => format!("{s:.3} s"),
        a if a >= 1e-3 => format!("{:.3} ms", s * 1e3),
        _ => format!("{:.1} us", s * 1e6),
    }
}

/// A refid as text: the letters of a reference clock's code (stratum 1 and 16, RFC 5905), an
/// IPv4 address (or an IPv6 address's hash) above.
pub fn refid_text(refid: &[u8; 4], stratum: u8) -> String {
    if (2..16).contains(&stratum) {
        return std::net::Ipv4Addr::from(*refid).to_string();
    }
    refid
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| b as char)
        .collect()
}
