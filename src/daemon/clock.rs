//! The discipline as the daemon runs it: the kernel clock it steers (or not), the drift file,
//! the leap-seconds file and ntpd's statistics files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::clock::kernel::KernelClock;
use crate::clock::system::realtime_now;
use crate::clock::{Actuator, Adjustment};
use crate::config::{ActuatorKind, Config};
use crate::discipline::leapfile::{self, LeapTable};
use crate::discipline::statsfiles::StatsFiles;
use crate::discipline::{driftfile, Discipline, SourceReport};
use crate::ntp::control::peer_status_word;
use crate::time::Realtime;
use crate::web::status::DriverStatus;

/// How often the learned frequency is saved (ntpd writes its drift file hourly).
const DRIFT_SAVE: Duration = Duration::from_secs(3600);

/// Statistics are written every this many ticks (ntpd's 16 s minimum poll).
const STATS_EVERY: u64 = 16;

/// The discipline, and the kernel clock when it steers it.
pub(super) struct DisciplinedClock {
    pub(super) discipline: Discipline,
    kernel: Option<KernelClock>,
    drift_file: Option<PathBuf>,
    last_save: Instant,
    stats: Option<StatsFiles>,
    ticks: u64,
    /// The last pulse whose quantisation error was written, per GPS source.
    q_errors_written: HashMap<String, Realtime>,
}

impl DisciplinedClock {
    pub(super) fn start(config: &Config, precision: i8) -> anyhow::Result<Self> {
        let d = &config.discipline;
        let kernel = match d.actuator {
            ActuatorKind::Kernel => Some(KernelClock::open().context(
                "the kernel actuator needs CAP_SYS_TIME (or set discipline.actuator = \"virtual\")",
            )?),
            ActuatorKind::Virtual => None,
        };
        let drift = d.drift_file.as_deref().and_then(|path| {
            driftfile::read(path)
                .map_err(|e| tracing::warn!("ignoring the drift file: {e}"))
                .ok()
                .flatten()
                .map(|ppm| ppm * 1e-6)
        });
        let mut clock = DisciplinedClock {
            discipline: Discipline::new(&config.sources, d, drift, precision),
            kernel,
            drift_file: None,
            last_save: Instant::now(),
            stats: None,
            ticks: 0,
            q_errors_written: HashMap::new(),
        };
        clock.configure(config);
        let initial = clock.discipline.initial_adjustments();
        clock.apply(initial);
        Ok(clock)
    }

    pub(super) fn apply(&mut self, adjustments: Vec<Adjustment>) {
        let Some(kernel) = &mut self.kernel else {
            return;
        };
        for a in adjustments {
            if let Err(e) = kernel.apply(a) {
                tracing::error!("cannot adjust the system clock ({a:?}): {e}");
            }
        }
    }

    /// Takes the file settings of a (re)loaded configuration.
    pub(super) fn configure(&mut self, config: &Config) {
        let d = &config.discipline;
        self.discipline.reconfigure(&config.sources, d);
        self.discipline
            .set_leap_table(d.leap_file.as_deref().and_then(load_leap_table));
        self.drift_file.clone_from(&d.drift_file);
        let stats = self.stats.as_ref().map(|s| (s.dir(), s.keep()));
        if stats != d.stats_dir.as_deref().map(|dir| (dir, d.stats_days)) {
            self.stats = d
                .stats_dir
                .clone()
                .map(|dir| StatsFiles::new(dir, d.stats_days));
        }
    }

    pub(super) fn tick(&mut self) {
        let adjustments = self.discipline.tick(realtime_now());
        self.apply(adjustments);
        if self.last_save.elapsed() >= DRIFT_SAVE {
            self.save_drift();
        }
    }

    /// loopstats, peerstats and clockstats in ntpd's formats, every `STATS_EVERY` ticks,
    /// from the discipline and what the drivers published; a failure is logged once, not
    /// every time.
    pub(super) fn write_stats(
        &mut self,
        now: Realtime,
        sources: &[SourceReport],
        drivers: DriverStatus,
    ) {
        self.ticks += 1;
        let Some(stats) = self
            .stats
            .as_mut()
            .filter(|_| self.ticks % STATS_EVERY == 0)
        else {
            return;
        };
        let mut written = Ok(());
        if let Some((offset, freq, jitter, wander)) = self.discipline.loop_stats() {
            written = stats.loop_stats(now, offset, freq, jitter, wander, 4);
        }
        for r in sources {
            let (Some(offset), Some(jitter)) = (r.offset, r.jitter) else {
                continue;
            };
            let status = peer_status_word(r.state.peer_select(), r.reach != 0);
            let dispersion = r.error.unwrap_or(0.0);
            written = written
                .and(stats.peer_stats(now, &r.name, status, offset, 0.0, dispersion, jitter));
        }
        // What the receivers say, as ntpd writes its reference clocks' timecodes.
        for (name, g) in drivers.gps {
            let text = format!(
                "fix={} used={} trusted={} antenna={} pps_samples={} nmea_samples={} \
                 bad_pulses={} jumps_rejected={}",
                g.receiver.fix.name(),
                g.receiver.satellites_used.unwrap_or(0),
                g.trusted,
                g.receiver.antenna.name(),
                g.clock.pps_samples,
                g.clock.nmea_samples,
                g.clock.bad_edges,
                g.clock.jumps_rejected
            );
            written = written.and(stats.clock_stats(now, name, &text));
            // One line per pulse for its quantisation error, at the pulse's second.
            let done = self.q_errors_written.get(name).copied();
            for &(pulse, q) in g.q_errors.iter().filter(|q| Some(q.0) > done) {
                let text = format!("pps qerr={q:.3e} applied={}", g.q_error_applied);
                written = written.and(stats.clock_stats(pulse, name, &text));
                self.q_errors_written.insert(name.clone(), pulse);
            }
        }
        for (name, d) in drivers.longwave {
            let last = d.quality.last_accepted.map(|m| m.utc.to_string());
            let text = format!(
                "connected={} last_minute={}",
                d.connected,
                last.as_deref().unwrap_or("-")
            );
            written = written.and(stats.clock_stats(now, name, &text));
        }
        if let Err(e) = written {
            tracing::warn!("cannot write statistics to {}: {e}", stats.dir().display());
            self.stats = None;
        }
    }

    pub(super) fn save_drift(&mut self) {
        self.last_save = Instant::now();
        let (Some(path), Some(freq)) = (&self.drift_file, self.discipline.frequency()) else {
            return;
        };
        if let Err(e) = driftfile::write(path, freq * 1e6) {
            tracing::warn!("cannot write the drift file {}: {e}", path.display());
        }
    }
}

/// Reads the leap-seconds.list; a bad or expired file is logged and not used.
fn load_leap_table(path: &Path) -> Option<LeapTable> {
    match leapfile::load(path) {
        Ok(table) if table.expires() < realtime_now() => {
            tracing::warn!(
                "{} expired; update tzdata (leap seconds now come only from the sources)",
                path.display()
            );
            None
        }
        Ok(table) => Some(table),
        Err(e) => {
            tracing::warn!("ignoring the leap-seconds file: {e}");
            None
        }
    }
}
