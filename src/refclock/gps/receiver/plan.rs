//! What to send a detected receiver for a `[source.receiver]` table: the commands, in order,
//! each with the setting it belongs to and the answer that confirms it.

use super::pmtk;
use super::ubx_cfg::{self, keys, UbloxVersion, NMEA, NMEA_MESSAGES};
use crate::config::{ReceiverConfig, Sentences, TimingMode};

/// The answer that confirms a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// UBX-ACK-ACK naming this class and id (ACK-NAK refuses it).
    Ubx(u8, u8),
    /// PMTK001 naming this command.
    Pmtk(u16),
    /// Nothing: the receiver changes speed at once (PMTK251); hearing it at the new speed
    /// confirms it.
    Nothing,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The setting, as the status page lists it (several commands may make one setting).
    pub setting: String,
    pub bytes: Vec<u8>,
    pub expect: Expect,
    /// The port's speed to move to once the command is taken.
    pub baud: Option<u32>,
}

/// A setting that cannot be made on this receiver, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub setting: String,
    pub why: String,
}

fn ubx(setting: &str, bytes: Vec<u8>) -> Step {
    let expect = Expect::Ubx(bytes[2], bytes[3]);
    Step {
        setting: setting.to_string(),
        bytes,
        expect,
        baud: None,
    }
}

fn pmtk(setting: &str, bytes: Vec<u8>) -> Step {
    let expect = pmtk::command(&bytes).map_or(Expect::Nothing, Expect::Pmtk);
    Step {
        setting: setting.to_string(),
        bytes,
        expect,
        baud: None,
    }
}

/// The sentences on, for a choice; the others in `NMEA_MESSAGES` go off.
fn sentences_on(s: Sentences) -> &'static [&'static str] {
    match s {
        Sentences::Needed => &["GGA", "GSA", "GSV", "RMC", "ZDA"],
        Sentences::Time => &["GGA", "RMC", "ZDA"],
        Sentences::Unchanged => &[],
    }
}

fn baud_setting(baud: u32) -> String {
    format!("baud {baud}")
}

/// The commands for a u-blox receiver now at `port_baud`.
pub fn ublox(c: &ReceiverConfig, v: &UbloxVersion, port_baud: u32) -> (Vec<Step>, Vec<Skipped>) {
    let keys = v.uses_keys();
    let mut steps = Vec::new();
    let mut skipped = Vec::new();
    if let Some(baud) = c.baud.filter(|&b| b != port_baud) {
        let bytes = match keys {
            true => ubx_cfg::valset(&[(keys::UART1_BAUDRATE, i64::from(baud))]),
            false => ubx_cfg::cfg_prt(baud),
        };
        steps.push(Step {
            baud: Some(baud),
            ..ubx(&baud_setting(baud), bytes)
        });
    }
    let rate = format!("rate {} Hz", c.rate);
    steps.push(match keys {
        true => ubx(
            &rate,
            ubx_cfg::valset(&[
                (keys::RATE_MEAS, i64::from(1000 / c.rate)),
                (keys::RATE_NAV, 1),
            ]),
        ),
        false => ubx(&rate, ubx_cfg::cfg_rate(c.rate)),
    });
    if c.sentences != Sentences::Unchanged {
        let on = sentences_on(c.sentences);
        let setting = format!("sentences {}", on.join(" "));
        let rate = |name| u8::from(on.contains(&name));
        match keys {
            true => {
                let items: Vec<_> = NMEA_MESSAGES
                    .iter()
                    .map(|&(name, _, key)| (key, i64::from(rate(name))))
                    .collect();
                steps.push(ubx(&setting, ubx_cfg::valset(&items)));
            }
            false => steps.extend(
                NMEA_MESSAGES
                    .iter()
                    .map(|&(name, id, _)| ubx(&setting, ubx_cfg::cfg_msg(NMEA, id, rate(name)))),
            ),
        }
    }
    if c.stationary {
        steps.push(match keys {
            true => ubx(
                "navigation model stationary",
                ubx_cfg::valset(&[(keys::NAVSPG_DYNMODEL, 2)]),
            ),
            false => ubx(
                "navigation model stationary",
                ubx_cfg::cfg_nav5_stationary(),
            ),
        });
    }
    if let Some(tp) = &c.timepulse {
        let bytes = match keys {
            true => ubx_cfg::valset(&ubx_cfg::timepulse_keys(tp)),
            false => ubx_cfg::cfg_tp5(tp),
        };
        steps.push(ubx("timepulse", bytes));
    }
    if c.timing != TimingMode::Unchanged {
        let setting = "timing mode";
        if !v.is_timing() {
            skipped.push(Skipped {
                setting: setting.into(),
                why: format!("{} is not a timing receiver", v.model),
            });
        } else if keys {
            let mut items = ubx_cfg::timing_keys(&c.timing);
            items.push((keys::MSGOUT_NAV_SVIN_UART1, 1));
            steps.push(ubx(setting, ubx_cfg::valset(&items)));
        } else {
            steps.push(ubx(setting, ubx_cfg::cfg_tmode2(&c.timing)));
            steps.push(ubx(setting, ubx_cfg::cfg_msg(0x0d, 0x04, 1)));
        }
    }
    if let Some(on) = &c.constellations {
        let bytes = match keys {
            true => ubx_cfg::valset(&ubx_cfg::constellation_keys(on)),
            false => ubx_cfg::cfg_gnss(on),
        };
        steps.push(ubx("constellations", bytes));
    }
    (steps, skipped)
}

/// The commands for a MediaTek receiver now at `port_baud`.
pub fn mediatek(c: &ReceiverConfig, port_baud: u32) -> (Vec<Step>, Vec<Skipped>) {
    let mut steps = Vec::new();
    let mut skipped = Vec::new();
    if let Some(baud) = c.baud.filter(|&b| b != port_baud) {
        steps.push(Step {
            baud: Some(baud),
            expect: Expect::Nothing,
            ..pmtk(&baud_setting(baud), pmtk::set_baud(baud))
        });
    }
    steps.push(pmtk(&format!("rate {} Hz", c.rate), pmtk::set_rate(c.rate)));
    if let Some(bytes) = pmtk::set_output(c.sentences) {
        let setting = format!("sentences {}", sentences_on(c.sentences).join(" "));
        steps.push(pmtk(&setting, bytes));
    }
    if let Some(tp) = &c.timepulse {
        steps.push(pmtk("timepulse", pmtk::set_pps(tp.length, tp.fix_only)));
    }
    if let Some(on) = &c.constellations {
        steps.push(pmtk("constellations", pmtk::set_constellations(on)));
    }
    let why = "MediaTek receivers have none";
    if c.stationary {
        skipped.push(Skipped {
            setting: "navigation model stationary".into(),
            why: why.into(),
        });
    }
    if c.timing != TimingMode::Unchanged {
        skipped.push(Skipped {
            setting: "timing mode".into(),
            why: why.into(),
        });
    }
    (steps, skipped)
}

/// Every setting asked for: the tests' configuration.
#[cfg(test)]
pub(crate) fn everything() -> ReceiverConfig {
    use crate::config::{Gnss, Timepulse};
    ReceiverConfig {
        baud: Some(115_200),
        rate: 1,
        sentences: Sentences::Needed,
        stationary: true,
        timepulse: Some(Timepulse::default()),
        timing: TimingMode::SurveyIn {
            seconds: 300,
            accuracy: 2.0,
        },
        constellations: Some(vec![Gnss::Gps, Gnss::Galileo]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(model: &str, protocol: u8) -> UbloxVersion {
        UbloxVersion {
            model: model.into(),
            firmware: "x".into(),
            protocol: Some((protocol, 0)),
        }
    }

    fn settings(steps: &[Step]) -> Vec<&str> {
        let mut names: Vec<&str> = steps.iter().map(|s| s.setting.as_str()).collect();
        names.dedup();
        names
    }

    #[test]
    fn generation_8_takes_cfg_messages_and_9_takes_keys() {
        let (m8, skipped) = ublox(&everything(), &version("NEO-M8T", 20), 9600);
        assert!(skipped.is_empty());
        assert_eq!(
            settings(&m8),
            [
                "baud 115200",
                "rate 1 Hz",
                "sentences GGA GSA GSV RMC ZDA",
                "navigation model stationary",
                "timepulse",
                "timing mode",
                "constellations"
            ]
        );
        let ids: Vec<(u8, u8)> = m8.iter().map(|s| (s.bytes[2], s.bytes[3])).collect();
        assert_eq!(ids[0], (0x06, 0x00));
        assert_eq!(m8[0].baud, Some(115_200));
        // One CFG-MSG per sentence, each acknowledged.
        assert_eq!(ids.iter().filter(|&&i| i == (0x06, 0x01)).count(), 10);
        assert!(ids.contains(&(0x06, 0x31)) && ids.contains(&(0x06, 0x3d)));
        assert!(m8
            .iter()
            .all(|s| s.expect == Expect::Ubx(s.bytes[2], s.bytes[3])));
        let (f9, _) = ublox(&everything(), &version("ZED-F9T", 29), 115_200);
        // Already at the speed: no baud step; every other setting one VALSET.
        assert_eq!(f9.len(), 6);
        assert!(f9.iter().all(|s| (s.bytes[2], s.bytes[3]) == (0x06, 0x8a)));
    }

    #[test]
    fn what_a_receiver_cannot_do_is_skipped_with_a_reason() {
        let (steps, skipped) = ublox(&everything(), &version("NEO-M8N", 18), 9600);
        assert!(!settings(&steps).contains(&"timing mode"));
        assert_eq!(skipped[0].why, "NEO-M8N is not a timing receiver");
        let (steps, skipped) = mediatek(&everything(), 9600);
        assert_eq!(
            settings(&steps),
            [
                "baud 115200",
                "rate 1 Hz",
                "sentences GGA GSA GSV RMC ZDA",
                "timepulse",
                "constellations"
            ]
        );
        assert_eq!(steps[0].expect, Expect::Nothing);
        assert_eq!(steps[1].expect, Expect::Pmtk(220));
        assert_eq!(skipped.len(), 2);
    }
}
