//! `[source.receiver]`: what pitime sets on a u-blox or MediaTek receiver it detects.
//! Absent, the receiver is only detected and nothing on it is changed.

use super::reader::{Errors, Section};
use super::{any, in_range, one_of};

#[derive(Clone, Debug, PartialEq)]
pub struct ReceiverConfig {
    /// The serial speed to move the receiver to; `None` leaves it.
    pub baud: Option<u32>,
    /// Navigation solutions a second.
    pub rate: u32,
    pub sentences: Sentences,
    /// The stationary navigation model (for a fixed antenna).
    pub stationary: bool,
    pub timepulse: Option<Timepulse>,
    pub timing: TimingMode,
    /// The satellite systems to use; `None` leaves them.
    pub constellations: Option<Vec<Gnss>>,
}

/// Which NMEA sentences the receiver sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sentences {
    /// RMC, GGA, GSA, GSV and ZDA: the time, the fix and the satellites of the status page;
    /// GLL, VTG, GNS, GST and GRS off.
    Needed,
    /// RMC, GGA and ZDA only: less to wait for each second, no satellite view.
    Time,
    Unchanged,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timepulse {
    /// Seconds the pulse is high.
    pub length: f64,
    /// No pulse at all without a fix (rather than one from the free-running clock).
    pub fix_only: bool,
    /// Antenna cable delay and a user delay, seconds, that the receiver compensates.
    pub cable_delay: f64,
    pub user_delay: f64,
}

impl Default for Timepulse {
    /// A 100 ms pulse, only with a fix, no delays: the table's defaults.
    fn default() -> Self {
        Timepulse {
            length: 0.1,
            fix_only: true,
            cable_delay: 0.0,
            user_delay: 0.0,
        }
    }
}

/// The timing mode of a timing receiver (NEO-M8T, ZED-F9T).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TimingMode {
    Unchanged,
    Disabled,
    /// Survey the position for at least `seconds` and until it is known to `accuracy` metres.
    SurveyIn {
        seconds: u32,
        accuracy: f64,
    },
    /// Latitude and longitude in degrees, height in metres (above the ellipsoid).
    Fixed {
        position: [f64; 3],
        accuracy: f64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gnss {
    Gps,
    Glonass,
    Galileo,
    Beidou,
    Qzss,
    Sbas,
}

impl Gnss {
    pub const ALL: [Gnss; 6] = [
        Gnss::Gps,
        Gnss::Glonass,
        Gnss::Galileo,
        Gnss::Beidou,
        Gnss::Qzss,
        Gnss::Sbas,
    ];
    const NAMES: [&str; 6] = ["gps", "glonass", "galileo", "beidou", "qzss", "sbas"];

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

const BAUD_RATES: [i64; 3] = [9600, 38400, 115200];

pub(super) fn read_receiver(sec: &mut Section, errs: &mut Errors) -> ReceiverConfig {
    let baud = sec
        .optional(errs, "baud", |b: &i64| match BAUD_RATES.contains(b) {
            true => Ok(()),
            false => Err(format!("expected one of {BAUD_RATES:?}")),
        })
        .map(|b| b as u32);
    let sentences = match sec
        .value(
            errs,
            "sentences",
            "needed".to_string(),
            one_of(&["needed", "time", "unchanged"]),
        )
        .as_str()
    {
        "time" => Sentences::Time,
        "unchanged" => Sentences::Unchanged,
        _ => Sentences::Needed,
    };
    let stationary = sec.value(
        errs,
        "nav_model",
        "stationary".to_string(),
        one_of(&["stationary", "unchanged"]),
    ) == "stationary";
    let delay = |d: &f64| match d.abs() <= 1e-3 {
        true => Ok(()),
        false => Err("expected seconds from -0.001 to 0.001".to_string()),
    };
    let d = Timepulse::default();
    let timepulse = Timepulse {
        length: sec.value(errs, "pulse_length", d.length, |l: &f64| {
            match *l > 0.0 && *l < 1.0 {
                true => Ok(()),
                false => Err("expected seconds between 0 and 1".to_string()),
            }
        }),
        fix_only: sec.value(errs, "pulse_fix_only", d.fix_only, any),
        cable_delay: sec.value(errs, "cable_delay", d.cable_delay, delay),
        user_delay: sec.value(errs, "user_delay", d.user_delay, delay),
    };
    let timepulse = sec.value(errs, "timepulse", true, any).then_some(timepulse);
    let accuracy = |a: &f64| match *a > 0.0 && *a <= 100.0 {
        true => Ok(()),
        false => Err("expected metres above 0, at most 100".to_string()),
    };
    let survey_seconds = sec.value(errs, "survey_seconds", 3600, in_range(1u32, 604_800));
    let survey_accuracy = sec.value(errs, "survey_accuracy", 2.0, accuracy);
    let fixed_accuracy = sec.value(errs, "fixed_accuracy", 1.0, accuracy);
    let fixed_position = sec.array(errs, "fixed_position", |v| {
        super::reader::FromToml::from_toml(v)
            .filter(|x: &f64| x.is_finite())
            .ok_or_else(|| "expected a number".to_string())
    });
    let mode = sec.value(
        errs,
        "timing_mode",
        "unchanged".to_string(),
        one_of(&["unchanged", "disabled", "survey-in", "fixed"]),
    );
    let timing = match mode.as_str() {
        "disabled" => TimingMode::Disabled,
        "survey-in" => TimingMode::SurveyIn {
            seconds: survey_seconds as u32,
            accuracy: survey_accuracy,
        },
        "fixed" => match fixed_position.as_deref() {
            Some(&[lat, lon, height])
                if lat.abs() <= 90.0 && lon.abs() <= 180.0 && height.abs() < 1e5 =>
            {
                TimingMode::Fixed {
                    position: [lat, lon, height],
                    accuracy: fixed_accuracy,
                }
            }
            _ => {
                let span = sec.span_of("timing_mode").unwrap_or_default();
                errs.push(
                    span,
                    &sec.key_path("fixed_position"),
                    "timing_mode = \"fixed\" needs fixed_position = [latitude, longitude, height] \
                     (degrees, degrees, metres)",
                );
                TimingMode::Unchanged
            }
        },
        _ => TimingMode::Unchanged,
    };
    let constellations = sec.array(errs, "constellations", |v| {
        let name = v.as_str().unwrap_or_default();
        Gnss::ALL
            .into_iter()
            .find(|g| g.name() == name)
            .ok_or_else(|| format!("expected one of: {}", Gnss::NAMES.join(", ")))
    });
    if constellations
        .as_ref()
        .is_some_and(|c| !c.contains(&Gnss::Gps))
    {
        let span = sec.span_of("constellations").unwrap_or_default();
        errs.push(
            span,
            &sec.key_path("constellations"),
            "expected a list that includes \"gps\"",
        );
    }
    ReceiverConfig {
        baud,
        rate: sec.value(errs, "rate", 1, in_range(1u32, 10)) as u32,
        sentences,
        stationary,
        timepulse,
        timing,
        constellations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::sources::parse_text as parse;
    use crate::config::SourceConfig;

    fn receiver(keys: &str) -> Result<Option<ReceiverConfig>, Vec<String>> {
        let c = parse(&format!(
            "[[source]]\nkind = \"gps\"\n[source.receiver]\n{keys}"
        ))?;
        let SourceConfig::Gps(g) = &c.sources[0] else {
            panic!("a gps source")
        };
        Ok(g.receiver.clone())
    }

    #[test]
    fn an_empty_table_sets_the_defaults_and_no_table_sets_nothing() {
        let r = receiver("").unwrap().unwrap();
        assert_eq!(r.baud, None);
        assert_eq!(r.sentences, Sentences::Needed);
        assert!(r.stationary);
        assert_eq!(r.timepulse.unwrap().length, 0.1);
        assert_eq!(r.timing, TimingMode::Unchanged);
        let c = parse("[[source]]\nkind = \"gps\"\n").unwrap();
        let SourceConfig::Gps(g) = &c.sources[0] else {
            panic!()
        };
        assert_eq!(g.receiver, None);
    }

    #[test]
    fn every_key_is_read() {
        let r = receiver(
            "baud = 115200\nrate = 1\nsentences = \"time\"\nnav_model = \"unchanged\"\n\
             pulse_length = 0.2\npulse_fix_only = false\ncable_delay = 50e-9\nuser_delay = -1e-8\n\
             timing_mode = \"fixed\"\nfixed_position = [52.5, 13.4, 80.0]\nfixed_accuracy = 0.5\n\
             constellations = [\"gps\", \"galileo\"]\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.baud, Some(115200));
        assert_eq!(r.sentences, Sentences::Time);
        assert!(!r.stationary);
        let tp = r.timepulse.unwrap();
        assert_eq!((tp.length, tp.fix_only), (0.2, false));
        assert_eq!((tp.cable_delay, tp.user_delay), (50e-9, -1e-8));
        assert_eq!(
            r.timing,
            TimingMode::Fixed {
                position: [52.5, 13.4, 80.0],
                accuracy: 0.5
            }
        );
        assert_eq!(r.constellations, Some(vec![Gnss::Gps, Gnss::Galileo]));
        let r = receiver("timing_mode = \"survey-in\"\nsurvey_seconds = 600\ntimepulse = false\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            r.timing,
            TimingMode::SurveyIn {
                seconds: 600,
                accuracy: 2.0
            }
        );
        assert_eq!(r.timepulse, None);
    }

    #[test]
    fn bad_values_are_named() {
        let errors = receiver(
            "baud = 4800\nsentences = \"all\"\npulse_length = 1.5\ncable_delay = 0.1\n\
             timing_mode = \"fixed\"\nconstellations = [\"glonass\", \"mars\"]\nsurvey_seconds = 0\n\
             bogus = 1\n",
        )
        .unwrap_err();
        let all = errors.join("\n");
        for expected in [
            "`source[0].receiver.baud`: expected one of [9600, 38400, 115200]",
            "`source[0].receiver.sentences`: expected one of: needed, time, unchanged",
            "`source[0].receiver.pulse_length`: expected seconds between 0 and 1",
            "`source[0].receiver.cable_delay`: expected seconds from -0.001 to 0.001",
            "`source[0].receiver.fixed_position`: timing_mode = \"fixed\" needs fixed_position",
            "`source[0].receiver.constellations[1]`: expected one of: gps, glonass",
            "`source[0].receiver.constellations`: expected a list that includes \"gps\"",
            "`source[0].receiver.survey_seconds`",
            "`source[0].receiver.bogus`: unknown key",
        ] {
            assert!(all.contains(expected), "{expected}\nin\n{all}");
        }
    }

    #[test]
    fn the_simulated_receivers_answers_need_a_model() {
        let errors =
            parse("[[source]]\nkind = \"gps\"\n[source.simulate]\ndeaf = true\nreset_after = 0\n")
                .unwrap_err()
                .join("\n");
        assert!(
            errors.contains("`source[0].simulate.deaf`: needs a `model`"),
            "{errors}"
        );
        assert!(
            errors.contains("`source[0].simulate.reset_after`"),
            "{errors}"
        );
        let errors = parse("[[source]]\nkind = \"gps\"\n[source.simulate]\nmodel = \"NEO-6M\"\n")
            .unwrap_err()
            .join("\n");
        assert!(
            errors.contains("`source[0].simulate.model`: expected one of: NEO-M8N, NEO-M8T"),
            "{errors}"
        );
        let c = parse(
            "[[source]]\nkind = \"gps\"\n[source.simulate]\nmodel = \"MT3339\"\nnak_all = true\n",
        )
        .unwrap();
        let SourceConfig::Gps(g) = &c.sources[0] else {
            panic!()
        };
        let sim = g.simulate.as_ref().unwrap();
        assert_eq!((sim.model.as_deref(), sim.nak_all), (Some("MT3339"), true));
    }
}
