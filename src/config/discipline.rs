//! The `[discipline]` table: how the clock is steered, guarded and held over.

use std::path::PathBuf;

use super::reader::{Errors, FromToml, Section};
use super::{any, in_range, one_of, positive};

/// What the discipline does when a lone source (no second one agreeing) jumps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LoneJump {
    /// Never follow it on its own word: hold over, raise an alarm, and follow only when a
    /// second source agrees or the operator accepts the jump (`pitime accept-jump`).
    Hold,
    /// Follow it once it has insisted this many seconds without a break. A spoofer only
    /// needs to hold its time that long.
    After(f64),
}

impl FromToml for LoneJump {
    const EXPECTED: &'static str = "\"hold\" or a number of seconds";
    fn from_toml(value: &toml::de::DeValue<'_>) -> Option<Self> {
        match value.as_str() {
            Some("hold") => Some(LoneJump::Hold),
            Some(_) => None,
            None => f64::from_toml(value).map(LoneJump::After),
        }
    }
    fn to_toml(&self) -> String {
        match self {
            LoneJump::Hold => "\"hold\"".into(),
            LoneJump::After(s) => s.to_toml(),
        }
    }
}

/// Where corrections go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActuatorKind {
    /// Only the served time is corrected; the system clock is left alone (no privileges).
    Virtual,
    /// The system clock is steered with adjtimex (needs CAP_SYS_TIME).
    Kernel,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DisciplineConfig {
    pub actuator: ActuatorKind,
    /// The learned frequency, read at start and rewritten hourly (ntpd's format).
    pub drift_file: Option<PathBuf>,
    /// Seconds without a reference after which the clock is served as unsynchronised.
    pub holdover: f64,
    /// A larger offset of the followed sources, once locked, is a jump: followed at once when
    /// two or more sources agree, else as `lone_jump` says.
    pub jump_limit: f64,
    pub lone_jump: LoneJump,
    /// Kernel actuator: at start, an offset larger than this is stepped, not slewed.
    pub makestep: f64,
    /// At start, a step backwards larger than this needs two agreeing sources (or a lone one
    /// let through by `lone_jump`).
    pub backward_limit: f64,
    /// A source this far from the followed time raises an alarm, seconds.
    pub disagreement: f64,
    /// IERS/NIST leap-seconds.list, for leap seconds no source announces.
    pub leap_file: Option<PathBuf>,
    /// Spread a leap second over 24 hours in the served time (not standard NTP).
    pub leap_smear: bool,
    /// Directory for loopstats, peerstats and clockstats (ntpd's formats).
    pub stats_dir: Option<PathBuf>,
    /// Days of statistics files kept, today's included; older ones are deleted.
    pub stats_days: u32,
}

impl Default for DisciplineConfig {
    fn default() -> Self {
        DisciplineConfig {
            actuator: ActuatorKind::Virtual,
            drift_file: None,
            holdover: 14400.0,
            jump_limit: 0.1,
            lone_jump: LoneJump::Hold,
            makestep: 0.1,
            backward_limit: 1.0,
            disagreement: 0.01,
            leap_file: None,
            leap_smear: false,
            stats_dir: None,
            stats_days: 7,
        }
    }
}

pub(super) fn read_discipline(mut sec: Section, errs: &mut Errors) -> DisciplineConfig {
    let d = DisciplineConfig::default();
    let path = |sec: &mut Section, errs: &mut Errors, key: &str| sec.path(errs, key, |_| Ok(()));
    let config = DisciplineConfig {
        actuator: match sec
            .value(
                errs,
                "actuator",
                "virtual".to_string(),
                one_of(&["virtual", "kernel"]),
            )
            .as_str()
        {
            "kernel" => ActuatorKind::Kernel,
            _ => ActuatorKind::Virtual,
        },
        drift_file: path(&mut sec, errs, "drift_file"),
        holdover: sec.value(errs, "holdover", d.holdover, positive),
        jump_limit: sec.value(errs, "jump_limit", d.jump_limit, positive),
        lone_jump: sec.value(errs, "lone_jump", d.lone_jump, |j: &LoneJump| match j {
            LoneJump::After(s) => positive(s),
            LoneJump::Hold => Ok(()),
        }),
        makestep: sec.value(errs, "makestep", d.makestep, positive),
        backward_limit: sec.value(errs, "backward_limit", d.backward_limit, positive),
        disagreement: sec.value(errs, "disagreement", d.disagreement, positive),
        leap_file: path(&mut sec, errs, "leap_file"),
        leap_smear: sec.value(errs, "leap_smear", false, any),
        stats_dir: path(&mut sec, errs, "stats_dir"),
        stats_days: sec.value(
            errs,
            "stats_days",
            d.stats_days as i64,
            in_range(1u32, 3660),
        ) as u32,
    };
    sec.replaced(errs, "jump_confirm", "`discipline.lone_jump`");
    sec.finish(errs);
    config
}

#[cfg(test)]
mod tests {
    use super::super::sources::parse_text as parse;
    use super::LoneJump;

    #[test]
    fn lone_jump_holds_by_default_or_follows_after_seconds() {
        let lone = |text: &str| parse(text).map(|c| c.discipline.lone_jump);
        assert_eq!(lone(""), Ok(LoneJump::Hold));
        assert_eq!(
            lone("[discipline]\nlone_jump = \"hold\"\n"),
            Ok(LoneJump::Hold)
        );
        assert_eq!(
            lone("[discipline]\nlone_jump = 300\n"),
            Ok(LoneJump::After(300.0))
        );
        assert_eq!(
            lone("[discipline]\nlone_jump = \"never\"\n"),
            Err(vec![
                "t.toml:2:13: `discipline.lone_jump`: expected \"hold\" or a number of seconds, \
                 found string"
                    .to_string()
            ])
        );
        assert!(lone("[discipline]\nlone_jump = -1\n").is_err());
    }

    #[test]
    fn the_two_old_confirmation_keys_say_what_replaced_them() {
        let replaced =
            "no longer read: replaced by `discipline.lone_jump` (see docs/configuration.md)";
        assert_eq!(
            parse("[discipline]\njump_confirm = 60\n").unwrap_err(),
            [format!(
                "t.toml:2:16: `discipline.jump_confirm`: {replaced}"
            )]
        );
        assert_eq!(
            parse("[[source]]\nkind = \"gps\"\nreceiver_jump_confirm = 300\n").unwrap_err(),
            [format!(
                "t.toml:3:25: `source[0].receiver_jump_confirm`: {replaced}"
            )]
        );
    }
}
