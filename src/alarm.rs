//! Alarms: what is wrong now and what to do about it, one line each, for the log, the status
//! page, the metrics and `pitime status`. Pure checks raise them from the state at a given time
//! (the discipline's, the receivers' published status); the daemon logs each once when it is
//! raised and once when it clears.

use serde::{Serialize, Serializer};

/// The subject of alarms about the clock itself.
pub const CLOCK: &str = "clock";

#[derive(Clone, Debug, PartialEq)]
pub struct Alarm {
    /// The source's name, or `CLOCK`.
    pub subject: String,
    pub kind: AlarmKind,
    pub text: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AlarmKind {
    Falseticker,
    NoMajority,
    Disagreement,
    Jump,
    Holdover,
    Expired,
    Unsynchronised,
    AntennaFault,
    Spoofing,
    Jamming,
    ReceiverJump,
    DeviceMissing,
    SerialSilent,
    SerialGarbage,
    PpsSilent,
    LongwaveLineMissing,
    LongwaveNoMinute,
    LongwaveNoDelay,
    NtsCertificateExpiring,
    Notice,
}

impl AlarmKind {
    /// Its name in `/metrics` (a label value that stays put while the text changes).
    pub fn name(self) -> &'static str {
        match self {
            AlarmKind::Falseticker => "falseticker",
            AlarmKind::NoMajority => "no_majority",
            AlarmKind::Disagreement => "disagreement",
            AlarmKind::Jump => "jump",
            AlarmKind::Holdover => "holdover",
            AlarmKind::Expired => "expired",
            AlarmKind::Unsynchronised => "unsynchronised",
            AlarmKind::AntennaFault => "antenna_fault",
            AlarmKind::Spoofing => "spoofing",
            AlarmKind::Jamming => "jamming",
            AlarmKind::ReceiverJump => "receiver_jump",
            AlarmKind::DeviceMissing => "device_missing",
            AlarmKind::SerialSilent => "serial_silent",
            AlarmKind::SerialGarbage => "serial_garbage",
            AlarmKind::PpsSilent => "pps_silent",
            AlarmKind::LongwaveLineMissing => "longwave_line_missing",
            AlarmKind::LongwaveNoMinute => "longwave_no_minute",
            AlarmKind::LongwaveNoDelay => "longwave_no_delay",
            AlarmKind::NtsCertificateExpiring => "nts_certificate_expiring",
            AlarmKind::Notice => "notice",
        }
    }
}

impl Alarm {
    /// An alarm whose text names its subject (unless it is the clock).
    pub fn new(subject: &str, kind: AlarmKind, text: impl Into<String>) -> Self {
        let text = text.into();
        Alarm {
            subject: subject.to_string(),
            kind,
            text: match subject {
                CLOCK => text,
                _ => format!("{subject}: {text}"),
            },
        }
    }

    /// The configuration's notices (`[web] notices`), each an alarm of its own, raised while
    /// the notice is there.
    pub fn notices(notices: &[String]) -> impl Iterator<Item = Alarm> + '_ {
        notices.iter().enumerate().map(|(i, text)| Alarm {
            subject: format!("notice {}", i + 1),
            kind: AlarmKind::Notice,
            text: text.clone(),
        })
    }

    /// The same alarm still raised: its text may change as it goes on (seconds counted).
    fn same(&self, other: &Alarm) -> bool {
        self.subject == other.subject && self.kind == other.kind
    }
}

/// The API shows an alarm as its text.
impl Serialize for Alarm {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// The alarms in `now` that were not in `before` (raised), and those of `before` no longer in
/// `now` (cleared).
pub fn changes<'a>(before: &'a [Alarm], now: &'a [Alarm]) -> (Vec<&'a Alarm>, Vec<&'a Alarm>) {
    let missing_from = |these: &'a [Alarm], those: &'a [Alarm]| {
        these
            .iter()
            .filter(|a| !those.iter().any(|b| a.same(b)))
            .collect()
    };
    (missing_from(now, before), missing_from(before, now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_by_subject_and_kind_not_text() {
        let holdover = |s: u32| Alarm::new(CLOCK, AlarmKind::Holdover, format!("holdover {s} s"));
        let pps = Alarm::new("gps", AlarmKind::PpsSilent, "no PPS");
        assert_eq!(pps.text, "gps: no PPS");
        let before = [holdover(1), pps.clone()];
        let now = [
            holdover(2),
            Alarm::new("gps", AlarmKind::SerialSilent, "no data"),
        ];
        let (raised, cleared) = changes(&before, &now);
        assert_eq!(raised, [&now[1]]);
        assert_eq!(cleared, [&pps]);
        assert_eq!(changes(&now, &now), (vec![], vec![]));
        assert_eq!(serde_json::to_string(&now[0]).unwrap(), "\"holdover 2 s\"");
    }
}
