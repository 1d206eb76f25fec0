//! `pitime run`: wires configuration, the discipline tick and the NTP server together, and
//! handles signals (SIGHUP reloads, SIGTERM and SIGINT stop).

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use arc_swap::ArcSwap;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tracing_subscriber::{reload, EnvFilter};

use crate::alarm::{self, Alarm};
use crate::clock::kernel::KernelClock;
use crate::clock::system::{measure_precision, monotonic_now, realtime_now};
use crate::clock::{Actuator, Adjustment};
use crate::config::{
    ActuatorKind, Config, Dcf77SourceConfig, GpsSourceConfig, ServerConfig, SourceConfig,
};
use crate::discipline::leapfile::{self, LeapTable};
use crate::discipline::statsfiles::{peer_status_word, StatsFiles};
use crate::discipline::Discipline;
use crate::discipline::{driftfile, refid_text};
use crate::ntp::keys::KeyStore;
use crate::refclock::dcf77::driver::Dcf77Driver;
use crate::refclock::gps::driver::{ClockFeedback, GpsDriver, Injected};
use crate::refclock::Sample;
use crate::server::acl::AccessList;
use crate::server::control::{self, Association, ControlView, LoopView, Origin};
use crate::server::respond::Policy;
use crate::server::stats::ServerStats;
use crate::server::{NtpServer, Shared};
use crate::sim::dcf77_runner::SimulatedDcf77;
use crate::sim::gps_runner::SimulatedGps;
use crate::systemd;
use crate::upstream::driver::NtpDriver;
use crate::web::status::{DriverStatus, Status, StatusBuilder};
use crate::web::WebServer;

/// How often the discipline republishes the clock state.
const TICK: Duration = Duration::from_secs(1);

type LogHandle = reload::Handle<EnvFilter, tracing_subscriber::Registry>;

/// Installs the tracing subscriber; the returned handle changes the level on reload.
pub fn init_logging(level: &str) -> LogHandle {
    use tracing_subscriber::prelude::*;
    let (filter, handle) = reload::Layer::new(EnvFilter::new(level));
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                // Colours only on a terminal, never in the journal or a log file.
                .with_ansi(std::io::stderr().is_terminal())
                .with_target(false),
        )
        .init();
    handle
}

/// Builds the server's policy (loading the keys file) from its configuration.
pub fn policy(config: &ServerConfig) -> anyhow::Result<Policy> {
    let keys = match &config.keys_file {
        Some(path) => KeyStore::load(path)?,
        None => KeyStore::default(),
    };
    if let Some(ids) = &config.trusted_keys {
        for id in ids.iter().filter(|id| !keys.contains(**id)) {
            tracing::warn!(key = id, "trusted key is not in the keys file");
        }
    }
    let r = &config.rate_limit;
    Ok(Policy {
        access: config.access.clone(),
        deny_action: config.deny_action,
        limits: r.limits,
        rate_limit: r.enabled,
        rate_action: r.action,
        keys,
        trusted_keys: config.trusted_keys.clone(),
        require_auth: config.require_auth,
        query_access: AccessList {
            allow: config.query_allow.clone(),
            deny: Vec::new(),
        },
    })
}

fn load(paths: &[PathBuf]) -> anyhow::Result<Config> {
    Config::load_layers(paths).map_err(|errors| {
        for e in &errors {
            tracing::error!("{e}");
        }
        anyhow::anyhow!("{} has {} error(s)", shown(paths), errors.len())
    })
}

/// The configuration files as the log names them.
fn shown(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    names.join(" + ")
}

/// Runs until SIGTERM or SIGINT, configured by `paths`, each file laid over the ones before it.
/// `listen`, when not empty, replaces `server.listen`.
pub fn run(
    paths: Vec<PathBuf>,
    log_level: Option<String>,
    listen: Vec<SocketAddr>,
) -> anyhow::Result<()> {
    let logs = init_logging(log_level.as_deref().unwrap_or("info"));
    let listen_override = (!listen.is_empty()).then_some(listen);
    let mut config = load(&paths)?;
    if let Some(listen) = &listen_override {
        config.server.listen.clone_from(listen);
    }
    if log_level.is_none() {
        let _ = logs.modify(|f| *f = EnvFilter::new(&config.log.level));
    }
    let precision = measure_precision();
    tracing::info!(config = %shown(&paths), precision, version = env!("CARGO_PKG_VERSION"), "starting");
    let mut clock = DisciplinedClock::start(&config)?;
    // The first reply already tells the truth (a local fallback, say), not a placeholder.
    let shared = Arc::new(Shared {
        clock: ArcSwap::from_pointee(clock.discipline.state(realtime_now(), precision)),
        policy: ArcSwap::from_pointee(policy(&config.server)?),
        stats: ServerStats::default(),
        control: ArcSwap::from_pointee(ControlView::default()),
    });
    let mut server =
        NtpServer::start(&config.server.listen, config.server.threads, shared.clone())?;

    let (tx, events) = mpsc::channel();
    let mut sources = Sources::start(0, &config.sources, &tx, &shared);
    let status = Arc::new(ArcSwap::from_pointee(Status::default()));
    let web_access = Arc::new(ArcSwap::from_pointee(web_access_list(&config)));
    let mut web = start_web(&config.web.listen, &status, &web_access);
    let mut builder = StatusBuilder::new(realtime_now());
    let mut signals =
        Signals::new([SIGHUP, SIGTERM, SIGINT]).context("installing signal handlers")?;
    let signal_handle = signals.handle();
    std::thread::spawn({
        let tx = tx.clone();
        move || {
            for sig in signals.forever() {
                if tx.send(Event::Signal(sig)).is_err() {
                    break;
                }
            }
        }
    });

    systemd::notify("READY=1\nSTATUS=serving NTP");
    let watchdog = systemd::watchdog_interval();
    let mut last_ping = Instant::now();
    let mut next_tick = Instant::now();
    loop {
        // The watchdog is fed from this loop: if it hangs, systemd restarts pitime.
        if watchdog.is_some_and(|every| last_ping.elapsed() >= every) {
            systemd::notify("WATCHDOG=1");
            last_ping = Instant::now();
        }
        if Instant::now() >= next_tick {
            clock.tick();
            publish(&clock.discipline, &shared, precision);
            let now = Arc::new(sources.status(&clock, &mut builder, &shared));
            let view = sources.control_view(&now, &clock.discipline);
            shared.control.store(Arc::new(view));
            clock.write_stats(&now);
            log_alarms(&status.load().alarms, &now.alarms);
            status.store(now);
            // After a stall, carry on from now rather than catch up in a burst.
            next_tick = (next_tick + TICK).max(Instant::now());
        }
        match events.recv_timeout(next_tick.saturating_duration_since(Instant::now())) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(Event::Sample(generation, _, _)) if generation != sources.generation => {}
            Ok(Event::Sample(_, index, sample)) => {
                let adjustments = clock.discipline.add_sample(index, sample, realtime_now());
                clock.apply(adjustments);
                // Publish at once: a sample is news the clients should have now.
                publish(&clock.discipline, &shared, precision);
            }
            Ok(Event::Signal(SIGHUP)) => {
                systemd::notify("RELOADING=1");
                let reloaded = reload(
                    &paths,
                    &config,
                    listen_override.as_deref(),
                    &shared,
                    &mut server,
                );
                match reloaded {
                    Ok(new) => {
                        if log_level.is_none() {
                            let _ = logs.modify(|f| *f = EnvFilter::new(&new.log.level));
                        }
                        web_access.store(Arc::new(web_access_list(&new)));
                        if new.web.listen != config.web.listen {
                            if let Some(w) = web.take() {
                                w.stop();
                            }
                            web = start_web(&new.web.listen, &status, &web_access);
                        }
                        if new.sources != config.sources {
                            let generation = sources.generation + 1;
                            std::mem::replace(&mut sources, Sources::none()).stop();
                            sources = Sources::start(generation, &new.sources, &tx, &shared);
                        }
                        if new.discipline.actuator != config.discipline.actuator {
                            tracing::warn!(
                                "`discipline.actuator` takes effect at the next restart"
                            );
                        }
                        clock.configure(&new);
                        config = new;
                        // Publish the state under the new configuration before saying so.
                        publish(&clock.discipline, &shared, precision);
                        tracing::info!("configuration reloaded");
                    }
                    Err(e) => {
                        tracing::error!("reload failed, keeping the running configuration: {e:#}")
                    }
                }
                systemd::notify("READY=1");
            }
            Ok(Event::Signal(sig)) => {
                tracing::info!(signal = sig, "stopping");
                systemd::notify("STOPPING=1");
                break;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    signal_handle.close();
    if let Some(w) = web {
        w.stop();
    }
    sources.stop();
    clock.save_drift();
    server.stop();
    Ok(())
}

/// Who may see the status page: its own lists, or the NTP server's.
fn web_access_list(config: &Config) -> AccessList {
    config
        .web
        .access
        .clone()
        .unwrap_or_else(|| config.server.access.clone())
}

/// Starts the status page; a failure is logged, not fatal: time service matters more.
fn start_web(
    listen: &[SocketAddr],
    status: &Arc<ArcSwap<Status>>,
    access: &Arc<ArcSwap<AccessList>>,
) -> Option<WebServer> {
    if listen.is_empty() {
        return None;
    }
    WebServer::start(listen, status.clone(), access.clone())
        .map_err(|e| tracing::error!("cannot serve the status page on {listen:?}: {e}"))
        .ok()
}

/// Each alarm once when raised and once when cleared, not every second it stays.
fn log_alarms(before: &[Alarm], now: &[Alarm]) {
    let (raised, cleared) = alarm::changes(before, now);
    for a in raised {
        tracing::warn!(subject = %a.subject, "{}", a.text);
    }
    for a in cleared {
        tracing::info!(subject = %a.subject, "cleared: {}", a.text);
    }
}

/// Publishes the clock state for the NTP server (and everything else that reads it).
fn publish(discipline: &Discipline, shared: &Shared, precision: i8) {
    let state = discipline.state(realtime_now(), precision);
    shared.clock.store(Arc::new(state));
}

enum Event {
    Signal(i32),
    /// A sample from the source at this index of the configuration, of this generation of
    /// the sources (samples queued by drivers stopped at a reload are dropped).
    Sample(u64, usize, Sample),
}

/// How often the learned frequency is saved (ntpd writes its drift file hourly).
const DRIFT_SAVE: Duration = Duration::from_secs(3600);

/// Statistics are written every this many ticks (ntpd's 16 s minimum poll).
const STATS_EVERY: u64 = 16;

/// The discipline, and the kernel clock when it steers it.
struct DisciplinedClock {
    discipline: Discipline,
    kernel: Option<KernelClock>,
    drift_file: Option<PathBuf>,
    last_save: Instant,
    stats: Option<StatsFiles>,
    ticks: u64,
}

impl DisciplinedClock {
    fn start(config: &Config) -> anyhow::Result<Self> {
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
            discipline: Discipline::new(&config.sources, d, drift),
            kernel,
            drift_file: None,
            last_save: Instant::now(),
            stats: None,
            ticks: 0,
        };
        clock.configure(config);
        let initial = clock.discipline.initial_adjustments();
        clock.apply(initial);
        Ok(clock)
    }

    fn apply(&mut self, adjustments: Vec<Adjustment>) {
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
    fn configure(&mut self, config: &Config) {
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

    fn tick(&mut self) {
        let adjustments = self.discipline.tick(realtime_now());
        self.apply(adjustments);
        if self.last_save.elapsed() >= DRIFT_SAVE {
            self.save_drift();
        }
    }

    /// loopstats, peerstats and clockstats in ntpd's formats, every `STATS_EVERY` ticks; a
    /// failure is logged once, not every time.
    fn write_stats(&mut self, status: &Status) {
        self.ticks += 1;
        let Some(stats) = self
            .stats
            .as_mut()
            .filter(|_| self.ticks % STATS_EVERY == 0)
        else {
            return;
        };
        let now = realtime_now();
        let mut written = Ok(());
        if let Some((offset, freq, jitter, wander)) = self.discipline.loop_stats() {
            written = stats.loop_stats(now, offset, freq, jitter, wander, 4);
        }
        for r in &status.sources {
            let (Some(offset), Some(jitter)) = (r.offset, r.jitter) else {
                continue;
            };
            let status = peer_status_word(r.state.peer_select(), r.reach != 0);
            let dispersion = r.error.unwrap_or(0.0);
            written = written
                .and(stats.peer_stats(now, &r.name, status, offset, 0.0, dispersion, jitter));
        }
        // What the receivers say, as ntpd writes its reference clocks' timecodes.
        for g in &status.gps {
            let text = format!(
                "fix={} used={} trusted={} antenna={} pps_samples={} nmea_samples={} \
                 bad_pulses={} jumps_rejected={}",
                g.fix,
                g.satellites_used.unwrap_or(0),
                g.trusted,
                g.antenna,
                g.pps_samples,
                g.nmea_samples,
                g.bad_pulses,
                g.jumps_rejected
            );
            written = written.and(stats.clock_stats(now, &g.name, &text));
        }
        for d in &status.dcf77 {
            let text = format!(
                "connected={} last_minute={}",
                d.connected,
                d.last_minute.as_deref().unwrap_or("-")
            );
            written = written.and(stats.clock_stats(now, &d.name, &text));
        }
        if let Err(e) = written {
            tracing::warn!("cannot write statistics to {}: {e}", stats.dir().display());
            self.stats = None;
        }
    }

    fn save_drift(&mut self) {
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

/// The running reference clocks.
/// The simulated receiver a GPS source asks for, started, and the inputs it gives its driver.
fn simulated_gps(
    g: &GpsSourceConfig,
    simulators: &mut Vec<Box<dyn Send>>,
) -> std::io::Result<Option<Injected>> {
    let Some(config) = &g.simulate else {
        return Ok(None);
    };
    let (simulator, pulses) = SimulatedGps::start(config.clone(), &g.name)?;
    let device = simulator.device.clone();
    simulators.push(Box::new(simulator));
    Ok(Some(Injected {
        device,
        pulses,
        pps_name: "the simulated PPS".into(),
    }))
}

/// The simulated DCF77 receiver a source asks for, started, and its edges.
fn simulated_dcf77(
    d: &Dcf77SourceConfig,
    simulators: &mut Vec<Box<dyn Send>>,
) -> std::io::Result<Option<mpsc::Receiver<(crate::time::Realtime, bool)>>> {
    let Some(config) = &d.simulate else {
        return Ok(None);
    };
    let (simulator, edges) =
        SimulatedDcf77::start(config.clone(), d.receiver_delay.unwrap_or(0.0))?;
    simulators.push(Box::new(simulator));
    Ok(Some(edges))
}

struct Sources {
    generation: u64,
    gps: Vec<GpsDriver>,
    dcf77: Vec<Dcf77Driver>,
    ntp: Vec<NtpDriver>,
    /// The simulated receivers (`[source.simulate]`) whose signals the drivers read: dropped
    /// after them (fields drop in order), so no driver sees its input vanish.
    simulators: Vec<Box<dyn Send>>,
}

impl Sources {
    fn none() -> Self {
        Sources {
            generation: 0,
            gps: Vec::new(),
            dcf77: Vec::new(),
            ntp: Vec::new(),
            simulators: Vec::new(),
        }
    }

    /// Starts a driver for each configured reference clock. One that fails to start is
    /// logged and left out; the others run.
    fn start(
        generation: u64,
        configs: &[SourceConfig],
        events: &Sender<Event>,
        shared: &Arc<Shared>,
    ) -> Self {
        let mut sources = Sources {
            generation,
            ..Sources::none()
        };
        for (index, config) in configs.iter().enumerate() {
            let events = events.clone();
            let sample = Box::new(move |s| {
                let _ = events.send(Event::Sample(generation, index, s));
            });
            let started = match config {
                SourceConfig::Local(_) => continue,
                SourceConfig::Gps(g) => {
                    let shared = shared.clone();
                    let feedback = Box::new(move |at| {
                        let clock = shared.clock.load();
                        ClockFeedback {
                            numbering: clock.numbering_offset(at),
                            changes: clock.changes,
                        }
                    });
                    simulated_gps(g, &mut sources.simulators)
                        .and_then(|injected| GpsDriver::start(g, injected, sample, feedback))
                        .map(|d| sources.gps.push(d))
                }
                SourceConfig::Dcf77(d) => simulated_dcf77(d, &mut sources.simulators)
                    .and_then(|injected| Dcf77Driver::start(d, injected, sample))
                    .map(|d| sources.dcf77.push(d)),
                SourceConfig::Ntp(n) => {
                    let shared_clock = shared.clone();
                    let changes = Box::new(move || shared_clock.clock.load().changes);
                    NtpDriver::start(n, &shared.policy.load().keys, sample, changes)
                        .map(|d| sources.ntp.push(d))
                }
            };
            if let Err(e) = started {
                tracing::error!(source = %config.name(), "cannot start: {e}");
            }
        }
        sources
    }

    /// The status of everything, for the page, the API and the metrics.
    fn status(
        &self,
        clock: &DisciplinedClock,
        builder: &mut StatusBuilder,
        shared: &Shared,
    ) -> Status {
        let (now, monotonic) = (realtime_now(), monotonic_now());
        let gps = published(&self.gps, |d| (&d.name, &*d.status));
        let dcf77 = published(&self.dcf77, |d| (&d.name, &*d.status));
        let ntp = published(&self.ntp, |d| (&d.name, &*d.status));
        let drivers = DriverStatus {
            gps: &gps,
            dcf77: &dcf77,
            upstream: &ntp,
        };
        let snapshot = shared.clock.load();
        builder.build(
            now,
            monotonic,
            &snapshot,
            &clock.discipline,
            drivers,
            &shared.stats,
        )
    }

    /// The sources as ntpq sees them: association ids from 1 in configuration order, reference
    /// clocks at ntpd's pseudo-addresses (127.127.TYPE.UNIT, with ntpd's driver types: NMEA 20,
    /// the DCF77 parse driver 8, LOCAL 1), NTP servers at their addresses.
    fn control_view(&self, status: &Status, discipline: &Discipline) -> ControlView {
        let now = realtime_now();
        let mut units = [0u8; 3];
        let associations = status
            .sources
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let server = self.ntp.iter().find(|d| d.name == r.name);
                let upstream = server.map(|d| d.status.load_full());
                let upstream = upstream.as_deref();
                let mut refclock = |kind: usize, driver, source| {
                    let unit = units[kind];
                    units[kind] = unit.saturating_add(1);
                    Origin::Refclock {
                        driver,
                        unit,
                        source,
                    }
                };
                let (origin, refid) = match r.kind {
                    "gps" if r.refid.as_deref() == Some("PPS") => {
                        (refclock(0, 20, control::source::PPS), "PPS")
                    }
                    "gps" => (refclock(0, 20, control::source::UHF_RADIO), "GPS"),
                    "dcf77" => (refclock(1, 8, control::source::LF_RADIO), "DCF"),
                    "local" => (refclock(2, 1, control::source::LOCAL), "LOCL"),
                    _ => (Origin::Server(upstream.and_then(|u| u.address)), "INIT"),
                };
                let is_clock = matches!(origin, Origin::Refclock { .. });
                Association {
                    id: u16::try_from(i + 1).unwrap_or(u16::MAX),
                    name: r.name.clone(),
                    origin,
                    selection: r.state.peer_select(),
                    // An NTP server's own reach register: one bit per poll, as ntpd shows it.
                    reach: upstream.map_or(r.reach, |u| u.reach),
                    stratum: r.stratum.unwrap_or(if is_clock { 0 } else { 16 }),
                    // A server's own refid, as ntpd shows it; pitime's samples carry its address.
                    refid: match upstream.and_then(|u| u.server_refid) {
                        Some(id) => refid_text(&id, r.stratum.unwrap_or(16)),
                        None => r.refid.clone().unwrap_or_else(|| refid.to_string()),
                    },
                    poll: upstream.map_or(0, |u| u.poll),
                    offset: r.offset,
                    jitter: r.jitter,
                    delay: upstream.and_then(|u| u.delay),
                    dispersion: r.error,
                    last_sample: r.last_sample_ago.map(|ago| now.add_secs_f64(-ago)),
                }
            })
            .collect();
        let loop_view =
            discipline
                .loop_stats()
                .map(|(offset, frequency_ppm, jitter, wander_ppm)| LoopView {
                    offset,
                    jitter,
                    frequency_ppm,
                    wander_ppm,
                });
        ControlView {
            associations,
            loop_view,
        }
    }

    /// Stops every driver (each stops its threads when dropped).
    fn stop(self) {
        drop(self);
    }
}

/// Each driver's name and the status it last published.
fn published<D, S: Clone>(
    drivers: &[D],
    of: impl Fn(&D) -> (&String, &ArcSwap<S>),
) -> Vec<(String, S)> {
    drivers
        .iter()
        .map(|d| {
            let (name, status) = of(d);
            (name.clone(), (**status.load()).clone())
        })
        .collect()
}

/// Reads the files again and applies them without closing the sockets that stay configured.
fn reload(
    paths: &[PathBuf],
    running: &Config,
    listen_override: Option<&[SocketAddr]>,
    shared: &Shared,
    server: &mut NtpServer,
) -> anyhow::Result<Config> {
    let mut new = load(paths)?;
    if let Some(listen) = listen_override {
        new.server.listen = listen.to_vec();
    }
    let policy = policy(&new.server)?;
    if new.server.threads != running.server.threads {
        tracing::warn!("`server.threads` takes effect at the next restart");
    }
    shared.policy.store(Arc::new(policy));
    server.listen_on(&new.server.listen);
    Ok(new)
}
