//! Detecting and configuring the receiver on one serial connection: a pure state machine fed
//! with what arrives and the monotonic time in seconds, which says what to send and judges the
//! answers. It never holds up the NMEA: sentences are used throughout, whatever happens here.

use std::collections::VecDeque;

use super::plan::{self, Expect, Step};
use super::pmtk::{self, Flag, Reply};
use super::ubx_cfg::{self, Answer, Survey, UbloxVersion};
use crate::config::ReceiverConfig;
use crate::refclock::gps::ubx::UbxFrame;

/// Between detection queries, and how many at one speed before giving up on it.
const DETECT_EVERY: f64 = 2.0;
const DETECT_TRIES: u32 = 3;
/// How long a command waits for its answer, and how often it is sent before it failed.
const ANSWER_WITHIN: f64 = 2.0;
const SENDS: u32 = 2;
/// A command without an answer (PMTK251) is given this long to be read and taken.
const UNANSWERED_TAKES: f64 = 1.0;
/// After a speed change, how long the receiver has to be heard at the new speed.
const SWITCH_WITHIN: f64 = 4.0;
/// Bytes read at the old speed may still be queued just after a change: what is heard this
/// soon after it does not count.
const SWITCH_SETTLE: f64 = 0.5;
/// Nothing good heard this long after it was: the receiver reset or changed speed; detect
/// (and configure) it again.
const LOST_AFTER: f64 = 6.0;
/// The speeds receivers use, tried in turn when the receiver is not heard at the port's.
const USUAL_RATES: [u32; 3] = [9600, 38400, 115200];

/// What the receiver is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Identity {
    /// Not asked yet, or asking.
    #[default]
    Unknown,
    /// Answered neither UBX-MON-VER nor PMTK605.
    NmeaOnly,
    Ublox(UbloxVersion),
    MediaTek {
        release: String,
        module: Option<String>,
    },
}

impl Identity {
    /// As the status page and `pitime status` say it.
    pub fn describe(&self) -> String {
        match self {
            Identity::Unknown => "detecting".into(),
            Identity::NmeaOnly => "NMEA only (no answer to UBX-MON-VER or PMTK605)".into(),
            Identity::Ublox(v) => {
                let protocol = v
                    .protocol
                    .map(|(a, b)| format!(", protocol {a}.{b:02}"))
                    .unwrap_or_default();
                format!("u-blox {}, firmware {}{protocol}", v.model, v.firmware)
            }
            Identity::MediaTek { release, module } => match module {
                Some(m) => format!("MediaTek {m}, release {release}"),
                None => format!("MediaTek, release {release}"),
            },
        }
    }
}

/// How a setting went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Pending,
    Applied,
    Failed(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    pub name: String,
    pub outcome: Outcome,
}

/// What the status page shows of the receiver's detection and configuration.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReceiverState {
    pub identity: Identity,
    /// The port's speed now.
    pub baud: u32,
    /// The settings of the last (or current) configuration pass.
    pub settings: Vec<Setting>,
    /// Configuration passes finished since start.
    pub passes: u64,
    pub survey: Option<Survey>,
}

/// What the driver is to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Send(Vec<u8>),
    /// Set the port to this speed (and drop what was read at the old one).
    SetBaud(u32),
    Info(String),
    Warn(String),
}

#[derive(Debug)]
enum Phase {
    /// Not connected.
    Closed,
    /// Asking what the receiver is: the queries sent at this speed, when the next is due, and
    /// the speeds still to try.
    Detecting {
        sent: u32,
        next: f64,
        untried: Vec<u32>,
    },
    /// A command sent, waiting for its answer.
    Waiting {
        step: Step,
        sent_at: f64,
        sends: u32,
    },
    /// The port moved to `to`; waiting to hear the receiver there.
    Switching { step: Step, from: u32, since: f64 },
    /// Nothing to do until the connection or the receiver changes.
    Idle,
}

pub struct Session {
    config: Option<ReceiverConfig>,
    phase: Phase,
    queue: VecDeque<Step>,
    /// A good sentence or frame was last heard at the current speed.
    heard: Option<f64>,
    /// The port's speed when it opened: where a search that finds nothing leaves it.
    home: u32,
    pub state: ReceiverState,
}

impl Session {
    /// `config` is `[source.receiver]`: `None` detects and changes nothing.
    pub fn new(config: Option<ReceiverConfig>) -> Self {
        Session {
            config,
            phase: Phase::Closed,
            queue: VecDeque::new(),
            heard: None,
            home: 0,
            state: ReceiverState::default(),
        }
    }

    /// The port opened at `baud`: detect the receiver again.
    pub fn connected(&mut self, baud: u32, now: f64) {
        self.state.baud = baud;
        self.home = baud;
        self.restart(now);
    }

    pub fn disconnected(&mut self) {
        self.phase = Phase::Closed;
        self.queue.clear();
    }

    fn restart(&mut self, now: f64) {
        self.heard = None;
        self.queue.clear();
        self.state.identity = Identity::Unknown;
        // Hunting for the receiver's speed is part of configuring it.
        let untried = match self.config {
            Some(_) => USUAL_RATES
                .into_iter()
                .filter(|&r| r != self.state.baud)
                .collect(),
            None => Vec::new(),
        };
        self.phase = Phase::Detecting {
            sent: 0,
            next: now,
            untried,
        };
    }

    /// A sentence with a good checksum, or a good UBX frame, arrived.
    pub fn heard(&mut self, now: f64) {
        self.heard = Some(now);
    }

    /// A UBX frame arrived.
    pub fn ubx(&mut self, f: &UbxFrame, now: f64) -> Vec<Action> {
        if let Some(survey) = Survey::read(f) {
            self.state.survey = Some(survey);
        }
        if let Some(v) = UbloxVersion::from_mon_ver(f) {
            if matches!(self.phase, Phase::Detecting { .. }) {
                return self.identified(Identity::Ublox(v), now);
            }
        }
        let Some((answer, class, id)) = ubx_cfg::ack(f) else {
            return Vec::new();
        };
        match &self.phase {
            Phase::Waiting { step, .. } if step.expect == Expect::Ubx(class, id) => {
                let result = match answer {
                    Answer::Ack => Ok(()),
                    Answer::Nak => Err("refused (UBX-ACK-NAK)".to_string()),
                };
                self.answered(result, now)
            }
            _ => Vec::new(),
        }
    }

    /// A sentence with a good checksum arrived (any talker: PMTK answers are read here, and
    /// a u-blox boot banner says the receiver reset).
    pub fn sentence(&mut self, line: &[u8], now: f64) -> Vec<Action> {
        if is_ublox_banner(line) && !matches!(self.phase, Phase::Detecting { .. }) {
            return self.reset_seen(now);
        }
        match pmtk::reply(line) {
            Some(Reply::Release(release, module)) => match self.phase {
                Phase::Detecting { .. } => {
                    self.identified(Identity::MediaTek { release, module }, now)
                }
                _ => Vec::new(),
            },
            Some(Reply::Startup) if !matches!(self.phase, Phase::Detecting { .. }) => {
                self.reset_seen(now)
            }
            Some(Reply::Ack(command, flag)) => match &self.phase {
                Phase::Waiting { step, .. } if step.expect == Expect::Pmtk(command) => {
                    let result = match flag {
                        Flag::Succeeded => Ok(()),
                        Flag::Invalid => Err("invalid command (PMTK001 flag 0)".to_string()),
                        Flag::Unsupported => Err("not supported (PMTK001 flag 1)".to_string()),
                        Flag::Failed => Err("failed (PMTK001 flag 2)".to_string()),
                    };
                    self.answered(result, now)
                }
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    fn reset_seen(&mut self, now: f64) -> Vec<Action> {
        self.restart(now);
        let mut out = vec![Action::Warn(
            "receiver restarted: detecting and configuring it again".into(),
        )];
        out.extend(self.poll(now));
        out
    }

    /// What is due at `now`: call it often (at least every half second) and after each input.
    pub fn poll(&mut self, now: f64) -> Vec<Action> {
        let mut out = Vec::new();
        // Heard once and silent since, while configuring or after: it reset or changed speed.
        let lost = self.heard.is_some_and(|h| now - h > LOST_AFTER);
        if lost
            && self.config.is_some()
            && matches!(self.phase, Phase::Waiting { .. } | Phase::Idle)
        {
            out.push(Action::Warn(
                "receiver silent: detecting and configuring it again".into(),
            ));
            self.restart(now);
            out.extend(self.poll(now));
            return out;
        }
        match &mut self.phase {
            Phase::Detecting {
                sent,
                next,
                untried,
            } => {
                if now < *next {
                    return out;
                }
                if *sent < DETECT_TRIES {
                    *sent += 1;
                    *next = now + DETECT_EVERY;
                    out.push(Action::Send(ubx_cfg::poll_mon_ver()));
                    out.push(Action::Send(pmtk::query_release()));
                    return out;
                }
                let heard_here = self.heard.is_some();
                if !heard_here {
                    if let Some(rate) = (!untried.is_empty()).then(|| untried.remove(0)) {
                        let from = self.state.baud;
                        out.push(Action::Info(format!(
                            "receiver not heard at {from} baud: trying {rate}"
                        )));
                        (*sent, *next) = (0, now);
                        self.state.baud = rate;
                        self.heard = None;
                        out.push(Action::SetBaud(rate));
                        return out;
                    }
                }
                self.state.identity = Identity::NmeaOnly;
                self.phase = Phase::Idle;
                out.push(Action::Warn(match heard_here {
                    true => "receiver answered neither UBX-MON-VER nor PMTK605: NMEA only, \
                             nothing configured"
                        .into(),
                    false => "receiver not heard and not answering detection: NMEA only".into(),
                }));
                if self.state.baud != self.home {
                    self.state.baud = self.home;
                    out.push(Action::SetBaud(self.home));
                }
            }
            Phase::Waiting {
                step,
                sent_at,
                sends,
            } => {
                let within = match step.expect {
                    Expect::Nothing => UNANSWERED_TAKES,
                    _ => ANSWER_WITHIN,
                };
                if now - *sent_at < within {
                    return out;
                }
                if *sends < SENDS {
                    *sends += 1;
                    *sent_at = now;
                    out.push(Action::Send(step.bytes.clone()));
                    return out;
                }
                // A speed change may be answered at the new speed, or not at all: listen there.
                if let Some(to) = step.baud {
                    return self.switch(to, now);
                }
                return self.answered(Err("no answer".into()), now);
            }
            Phase::Switching { step, from, since } => {
                let to = step.baud.unwrap_or(*from);
                if self.heard.is_some_and(|h| h >= *since + SWITCH_SETTLE) {
                    return self.finish_switch(Ok(()), now);
                }
                if now - *since >= SWITCH_WITHIN {
                    let from = *from;
                    self.state.baud = from;
                    self.heard = None;
                    out.push(Action::SetBaud(from));
                    out.extend(self.finish_switch(
                        Err(format!("not heard at {to} baud; back to {from}")),
                        now,
                    ));
                }
            }
            Phase::Closed | Phase::Idle => {}
        }
        out
    }

    fn identified(&mut self, identity: Identity, now: f64) -> Vec<Action> {
        let mut out = vec![Action::Info(format!(
            "receiver detected: {}",
            identity.describe()
        ))];
        let (steps, skipped) = match (&self.config, &identity) {
            (Some(c), Identity::Ublox(v)) => plan::ublox(c, v, self.state.baud),
            (Some(c), Identity::MediaTek { .. }) => plan::mediatek(c, self.state.baud),
            _ => Default::default(),
        };
        self.state.identity = identity;
        self.phase = Phase::Idle;
        if self.config.is_none() {
            return out;
        }
        self.state.settings.clear();
        for s in &steps {
            self.setting(&s.setting, Outcome::Pending);
        }
        for s in skipped {
            out.push(Action::Warn(format!(
                "receiver setting {} not made: {}",
                s.setting, s.why
            )));
            self.setting(&s.setting, Outcome::Failed(s.why));
        }
        self.queue = steps.into();
        out.extend(self.next(now));
        out
    }

    /// Records a setting's outcome: a failure sticks for the pass; applied waits until all the
    /// setting's commands are.
    fn setting(&mut self, name: &str, outcome: Outcome) {
        let settings = &mut self.state.settings;
        match settings.iter_mut().find(|s| s.name == name) {
            None => settings.push(Setting {
                name: name.to_string(),
                outcome,
            }),
            Some(s) if matches!(s.outcome, Outcome::Failed(_)) => {}
            Some(s) => s.outcome = outcome,
        }
    }

    /// Sends the next command, or ends the pass.
    fn next(&mut self, now: f64) -> Vec<Action> {
        let Some(step) = self.queue.pop_front() else {
            self.phase = Phase::Idle;
            self.state.passes += 1;
            let failed = self
                .state
                .settings
                .iter()
                .filter(|s| matches!(s.outcome, Outcome::Failed(_)))
                .count();
            return vec![match failed {
                0 => Action::Info("receiver configured".into()),
                n => Action::Warn(format!("receiver configured with {n} settings failed")),
            }];
        };
        let out = vec![Action::Send(step.bytes.clone())];
        // Sent once: a command without an answer (PMTK251) would be taken twice.
        let sends = match step.expect {
            Expect::Nothing => SENDS,
            _ => 1,
        };
        self.phase = Phase::Waiting {
            step,
            sent_at: now,
            sends,
        };
        out
    }

    fn switch(&mut self, to: u32, now: f64) -> Vec<Action> {
        let Phase::Waiting { step, .. } = std::mem::replace(&mut self.phase, Phase::Idle) else {
            return Vec::new();
        };
        let from = self.state.baud;
        self.state.baud = to;
        self.heard = None;
        self.phase = Phase::Switching {
            step,
            from,
            since: now,
        };
        vec![Action::SetBaud(to)]
    }

    fn finish_switch(&mut self, result: Result<(), String>, now: f64) -> Vec<Action> {
        let Phase::Switching { step, .. } = std::mem::replace(&mut self.phase, Phase::Idle) else {
            return Vec::new();
        };
        self.phase = Phase::Waiting {
            step,
            sent_at: now,
            sends: SENDS,
        };
        self.answered(result, now)
    }

    /// The command being waited on succeeded or failed: record it and go on.
    fn answered(&mut self, result: Result<(), String>, now: f64) -> Vec<Action> {
        let Phase::Waiting { step, .. } = std::mem::replace(&mut self.phase, Phase::Idle) else {
            return Vec::new();
        };
        if let (Ok(()), Some(to)) = (&result, step.baud) {
            if to != self.state.baud {
                // Acknowledged at the old speed: move the port, then hear it there.
                self.phase = Phase::Waiting {
                    step,
                    sent_at: now,
                    sends: SENDS,
                };
                return self.switch(to, now);
            }
        }
        let mut out = Vec::new();
        match result {
            Ok(()) => self.setting(&step.setting, Outcome::Applied),
            Err(why) => {
                out.push(Action::Warn(format!(
                    "receiver setting {} failed: {why}",
                    step.setting
                )));
                self.setting(&step.setting, Outcome::Failed(why));
            }
        }
        out.extend(self.next(now));
        out
    }
}

/// The first line a u-blox receiver sends after a reset (`$GNTXT,01,01,02,u-blox AG -
/// www.u-blox.com*4E`; older ones write `u-blox ag`).
fn is_ublox_banner(line: &[u8]) -> bool {
    line.get(3..6) == Some(b"TXT")
        && line
            .to_ascii_lowercase()
            .windows(26)
            .any(|w| w == b"u-blox ag - www.u-blox.com")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Sentences, Timepulse, TimingMode};
    use crate::refclock::gps::nmea::sentence;
    use crate::refclock::gps::ubx::{frame, mon_ver};

    fn config() -> ReceiverConfig {
        ReceiverConfig {
            baud: None,
            rate: 1,
            sentences: Sentences::Unchanged,
            stationary: true,
            timepulse: Some(Timepulse::default()),
            timing: TimingMode::Unchanged,
            constellations: None,
        }
    }

    fn m8t() -> UbxFrame {
        UbxFrame {
            class: 0x0a,
            id: 0x04,
            payload: mon_ver(&["FWVER=TIM 1.10", "PROTVER=20.01", "MOD=NEO-M8T"]),
        }
    }

    fn ack(class: u8, id: u8, ok: bool) -> UbxFrame {
        UbxFrame {
            class: 0x05,
            id: u8::from(ok),
            payload: vec![class, id],
        }
    }

    fn sent(actions: &[Action]) -> Vec<Vec<u8>> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send(b) => Some(b.clone()),
                _ => None,
            })
            .collect()
    }

    fn outcomes(s: &Session) -> Vec<(String, Outcome)> {
        s.state
            .settings
            .iter()
            .map(|s| (s.name.clone(), s.outcome.clone()))
            .collect()
    }

    /// Answers whatever was last sent as the simulated receiver would, ACK or NAK.
    fn answer(s: &mut Session, last: &[u8], ok: bool, now: f64) -> Vec<Action> {
        s.ubx(&ack(last[2], last[3], ok), now)
    }

    #[test]
    fn detection_without_a_table_only_names_the_receiver() {
        let mut s = Session::new(None);
        s.connected(9600, 0.0);
        let out = s.poll(0.0);
        assert_eq!(sent(&out), [ubx_cfg::poll_mon_ver(), pmtk::query_release()]);
        let out = s.ubx(&frame_of(&m8t()), 0.3);
        assert_eq!(
            out,
            [Action::Info(
                "receiver detected: u-blox NEO-M8T, firmware TIM 1.10, protocol 20.01".into()
            )]
        );
        assert!(s.state.settings.is_empty());
        assert!(sent(&s.poll(10.0)).is_empty());
    }

    fn frame_of(f: &UbxFrame) -> UbxFrame {
        // Through the wire format and back, so the test uses what the reader would give.
        let bytes = frame(f.class, f.id, &f.payload);
        let mut got = Vec::new();
        crate::refclock::gps::ubx::FrameReader::default().push(&bytes, |f| got.push(f));
        got.remove(0)
    }

    #[test]
    fn every_command_waits_for_its_ack_and_a_nak_is_listed_not_fatal() {
        let mut s = Session::new(Some(config()));
        s.connected(9600, 0.0);
        s.poll(0.0);
        let out = s.ubx(&m8t(), 0.5);
        let first = sent(&out);
        assert_eq!(first.len(), 1);
        // An ACK for another message is not this one's.
        assert!(s.ubx(&ack(0x06, 0x99, true), 0.6).is_empty());
        let out = answer(&mut s, &first[0], true, 0.7);
        let second = sent(&out);
        let out = answer(&mut s, &second[0], false, 0.8);
        let third = sent(&out);
        assert!(out.contains(&Action::Warn(
            "receiver setting navigation model stationary failed: refused (UBX-ACK-NAK)".into()
        )));
        let out = answer(&mut s, &third[0], true, 0.9);
        assert!(out.contains(&Action::Warn(
            "receiver configured with 1 settings failed".into()
        )));
        assert_eq!(
            outcomes(&s),
            [
                ("rate 1 Hz".into(), Outcome::Applied),
                (
                    "navigation model stationary".into(),
                    Outcome::Failed("refused (UBX-ACK-NAK)".into())
                ),
                ("timepulse".into(), Outcome::Applied)
            ]
        );
        assert_eq!(s.state.passes, 1);
    }

    #[test]
    fn silence_is_retried_then_failed_and_detection_gives_up() {
        let mut s = Session::new(Some(config()));
        s.connected(9600, 0.0);
        s.poll(0.0);
        s.ubx(&m8t(), 0.5);
        // Unanswered: sent again after 2 s, failed after 4 s, and the next goes out.
        assert_eq!(sent(&s.poll(2.4)).len(), 0);
        assert_eq!(sent(&s.poll(2.5)).len(), 1);
        let out = s.poll(4.5);
        assert!(out.contains(&Action::Warn(
            "receiver setting rate 1 Hz failed: no answer".into()
        )));
        assert_eq!(sent(&out).len(), 1);

        // A receiver heard but answering nothing: NMEA only, no hunting for speeds.
        let mut s = Session::new(Some(config()));
        s.connected(9600, 0.0);
        let mut actions = Vec::new();
        for t in 0..20 {
            s.heard(f64::from(t) * 0.5);
            actions.extend(s.poll(f64::from(t) * 0.5));
        }
        assert_eq!(s.state.identity, Identity::NmeaOnly);
        assert_eq!(sent(&actions).len(), 2 * DETECT_TRIES as usize);
        assert!(!actions.iter().any(|a| matches!(a, Action::SetBaud(_))));
    }

    #[test]
    fn a_receiver_at_another_speed_is_found_and_moved() {
        let mut s = Session::new(Some(ReceiverConfig {
            baud: Some(115_200),
            ..config()
        }));
        s.connected(9600, 0.0);
        let mut t = 0.0;
        let mut bauds = Vec::new();
        while s.state.baud != 38400 {
            for a in s.poll(t) {
                if let Action::SetBaud(b) = a {
                    bauds.push(b);
                }
            }
            t += 0.5;
            assert!(t < 30.0);
        }
        assert_eq!(bauds, [38400]);
        // Heard nowhere: the search ends where it began.
        let mut lost = Session::new(Some(config()));
        lost.connected(9600, 0.0);
        let mut bauds = Vec::new();
        for t in 0..60 {
            for a in lost.poll(f64::from(t) * 0.5) {
                if let Action::SetBaud(b) = a {
                    bauds.push(b);
                }
            }
        }
        assert_eq!(bauds, [38400, 115_200, 9600]);
        assert_eq!(lost.state.identity, Identity::NmeaOnly);
        // Found at 38400: the first command moves it to 115200.
        s.poll(t);
        s.heard(t);
        let out = s.ubx(&m8t(), t);
        let prt = sent(&out).remove(0);
        assert_eq!((prt[2], prt[3]), (0x06, 0x00));
        let out = answer(&mut s, &prt, true, t + 0.1);
        assert_eq!(out, [Action::SetBaud(115_200)]);
        // Bytes of the old speed, queued: not proof.
        s.heard(t + 0.2);
        assert!(s.poll(t + 0.3).is_empty());
        s.heard(t + 1.0);
        let out = s.poll(t + 1.0);
        assert_eq!(sent(&out).len(), 1);
        assert_eq!(outcomes(&s)[0], ("baud 115200".into(), Outcome::Applied));
        assert_eq!(s.state.baud, 115_200);
    }

    #[test]
    fn a_speed_change_never_heard_goes_back() {
        let mut s = Session::new(Some(ReceiverConfig {
            baud: Some(38400),
            ..config()
        }));
        s.connected(9600, 0.0);
        s.poll(0.0);
        let prt = sent(&s.ubx(&m8t(), 0.1)).remove(0);
        // No ACK at all: after the retries the port tries the new speed anyway...
        s.poll(2.1);
        assert_eq!(s.poll(4.2), [Action::SetBaud(38400)]);
        // ...hears nothing there, and goes back.
        let out = s.poll(8.5);
        assert_eq!(out[0], Action::SetBaud(9600));
        assert!(out.contains(&Action::Warn(
            "receiver setting baud 38400 failed: not heard at 38400 baud; back to 9600".into()
        )));
        assert_eq!(s.state.baud, 9600);
        assert_eq!((prt[2], prt[3]), (0x06, 0x00));
    }

    #[test]
    fn a_reset_mid_configuration_starts_a_new_pass() {
        let mut s = Session::new(Some(config()));
        s.connected(9600, 0.0);
        s.poll(0.0);
        let first = sent(&s.ubx(&m8t(), 0.1)).remove(0);
        answer(&mut s, &first, true, 0.2);
        let banner = sentence("GNTXT,01,01,02,u-blox AG - www.u-blox.com");
        let out = s.sentence(banner.trim_end().as_bytes(), 0.3);
        assert_eq!(sent(&out), [ubx_cfg::poll_mon_ver(), pmtk::query_release()]);
        assert_eq!(s.state.identity, Identity::Unknown);
        // The next pass runs to the end.
        let mut out = s.ubx(&m8t(), 0.5);
        let mut t = 0.6;
        while let Some(last) = sent(&out).pop() {
            out = answer(&mut s, &last, true, t);
            t += 0.1;
        }
        assert_eq!(s.state.passes, 1);
        assert!(outcomes(&s).iter().all(|(_, o)| *o == Outcome::Applied));
    }

    #[test]
    fn a_silent_receiver_after_configuration_is_detected_again() {
        let mut s = Session::new(Some(config()));
        s.connected(9600, 0.0);
        s.poll(0.0);
        s.heard(0.0);
        let mut out = s.ubx(&m8t(), 0.1);
        while let Some(last) = sent(&out).pop() {
            out = answer(&mut s, &last, true, 0.2);
        }
        assert!(s.poll(5.0).is_empty());
        let out = s.poll(6.5);
        assert_eq!(
            out[0],
            Action::Warn("receiver silent: detecting and configuring it again".into())
        );
        // Not again and again while it stays silent.
        for t in 7..60 {
            for a in s.poll(f64::from(t)) {
                assert!(!matches!(a, Action::Warn(w) if w.contains("silent")));
            }
        }
    }

    #[test]
    fn mediatek_answers_by_pmtk001() {
        let mut s = Session::new(Some(ReceiverConfig {
            baud: Some(38400),
            ..config()
        }));
        s.connected(9600, 0.0);
        s.poll(0.0);
        let release = sentence("PMTK705,AXN_2.31_3339_13101700,5632,PA6H,1.0");
        let out = s.sentence(release.trim_end().as_bytes(), 0.2);
        // PMTK251 is not answered: sent, and the port follows once it has been taken.
        assert_eq!(sent(&out), [pmtk::set_baud(38400)]);
        assert!(s.poll(1.1).is_empty());
        assert_eq!(s.poll(1.2), [Action::SetBaud(38400)]);
        s.heard(2.0);
        let out = s.poll(2.0);
        assert_eq!(sent(&out), [pmtk::set_rate(1)]);
        let out = s.sentence(sentence("PMTK001,220,3").trim_end().as_bytes(), 2.1);
        assert_eq!(sent(&out), [pmtk::set_pps(0.1, true)]);
        // An answer for another command changes nothing; this one's refusal is listed.
        assert!(s
            .sentence(sentence("PMTK001,220,3").trim_end().as_bytes(), 2.2)
            .is_empty());
        s.sentence(sentence("PMTK001,285,1").trim_end().as_bytes(), 2.3);
        assert_eq!(
            outcomes(&s),
            [
                ("baud 38400".into(), Outcome::Applied),
                ("rate 1 Hz".into(), Outcome::Applied),
                (
                    "timepulse".into(),
                    Outcome::Failed("not supported (PMTK001 flag 1)".into())
                ),
                (
                    "navigation model stationary".into(),
                    Outcome::Failed("MediaTek receivers have none".into())
                ),
            ]
        );
        assert_eq!(
            s.state.identity.describe(),
            "MediaTek PA6H, release AXN_2.31_3339_13101700"
        );
    }

    #[test]
    fn garbage_and_lying_frames_change_nothing() {
        let mut s = Session::new(Some(config()));
        s.connected(9600, 0.0);
        s.poll(0.0);
        let mut x = 0x9e37_79b9u32;
        for i in 0..2000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let payload: Vec<u8> = (0..(x % 64)).map(|k| (x >> (k % 24)) as u8).collect();
            // Classes that matter here (ACK, MON, TIM, NAV) with payloads of any length.
            let class = [0x05, 0x0a, 0x0d, 0x01][i % 4];
            let f = UbxFrame {
                class,
                id: (x >> 8) as u8 % 6,
                payload,
            };
            let _ = s.ubx(&f, 0.1);
            let _ = s.sentence(&payload_line(x), 0.1);
        }
        // Still detecting (a MON-VER of 40 bytes or more could have named it: then configuring).
        assert!(matches!(
            s.phase,
            Phase::Detecting { .. } | Phase::Waiting { .. } | Phase::Idle
        ));
    }

    fn payload_line(x: u32) -> Vec<u8> {
        format!("$PMTK001,{},{}*{:02X}", x % 400, x % 5, x as u8).into_bytes()
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::refclock::gps::nmea::sentence;
    use crate::refclock::gps::ubx::mon_ver;
    use proptest::prelude::*;

    /// What may arrive: noise frames, acknowledgements of any CFG message, identities,
    /// PMTK answers, reset banners, or silence.
    #[derive(Clone, Debug)]
    enum Event {
        Frame(u8, u8, Vec<u8>),
        Ack(bool, u8),
        MonVer(u8),
        Pmtk(u16, u8),
        Release,
        Banner,
        Heard,
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            (
                any::<u8>(),
                any::<u8>(),
                proptest::collection::vec(any::<u8>(), 0..80)
            )
                .prop_map(|(c, i, p)| Event::Frame(c, i, p)),
            (any::<bool>(), any::<u8>()).prop_map(|(ok, id)| Event::Ack(ok, id)),
            (15u8..40).prop_map(Event::MonVer),
            (200u16..400, 0u8..6).prop_map(|(c, f)| Event::Pmtk(c, f)),
            Just(Event::Release),
            Just(Event::Banner),
            Just(Event::Heard),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]
        /// Whatever arrives, when: the port's speed is one a receiver uses, and once the
        /// receiver falls silent the session comes to rest (never a hung source).
        #[test]
        fn any_conversation_ends_at_rest(
            events in proptest::collection::vec((event(), 0.0f64..3.0), 0..60),
        ) {
            let mut s = Session::new(Some(super::plan::everything()));
            s.connected(9600, 0.0);
            let mut t = 0.0;
            let line = |body: &str| sentence(body).trim_end().as_bytes().to_vec();
            for (e, dt) in events {
                t += dt;
                let _ = match e {
                    Event::Frame(class, id, payload) => s.ubx(&UbxFrame { class, id, payload }, t),
                    Event::Ack(ok, id) => s.ubx(&UbxFrame {
                        class: 0x05,
                        id: u8::from(ok),
                        payload: vec![0x06, id],
                    }, t),
                    Event::MonVer(protocol) => s.ubx(&UbxFrame {
                        class: 0x0a,
                        id: 0x04,
                        payload: mon_ver(&[&format!("PROTVER={protocol}.00"), "MOD=NEO-M8T"]),
                    }, t),
                    Event::Pmtk(command, flag) => {
                        s.sentence(&line(&format!("PMTK001,{command},{flag}")), t)
                    }
                    Event::Release => s.sentence(&line("PMTK705,AXN_2.31_3339_13101700"), t),
                    Event::Banner => s.sentence(&line("GNTXT,01,01,02,u-blox AG - www.u-blox.com"), t),
                    Event::Heard => {
                        s.heard(t);
                        Vec::new()
                    }
                };
                let _ = s.poll(t);
                prop_assert!(USUAL_RATES.contains(&s.state.baud), "{}", s.state.baud);
            }
            for _ in 0..1200 {
                t += 0.5;
                let _ = s.poll(t);
            }
            prop_assert!(matches!(s.phase, Phase::Idle), "{:?}", s.phase);
        }
    }
}
