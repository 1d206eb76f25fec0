//! The `[discipline]` table: how the clock is steered, guarded and held over.

use std::path::PathBuf;

use super::reader::{Errors, Section};
use super::{any, in_range, one_of, positive};

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
    /// A larger offset of the followed sources, once locked, is a jump: followed only after
    /// `jump_confirm` seconds.
    pub jump_limit: f64,
    pub jump_confirm: f64,
    /// Kernel actuator: at start, an offset larger than this is stepped, not slewed.
    pub makestep: f64,
    /// At start, a step backwards larger than this needs two agreeing sources (or one
    /// confirmed for `jump_confirm` seconds).
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
            jump_confirm: 60.0,
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
        jump_confirm: sec.value(errs, "jump_confirm", d.jump_confirm, positive),
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
    sec.finish(errs);
    config
}
