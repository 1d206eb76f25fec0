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

use crate::clock::system::{measure_precision, realtime_now};
use crate::config::{Config, ServerConfig, SourceConfig};
use crate::discipline::snapshot::ClockSnapshot;
use crate::discipline::Discipline;
use crate::refclock::dcf77::driver::Dcf77Driver;
use crate::refclock::gps::driver::GpsDriver;
use crate::refclock::Sample;
use crate::server::acl::AccessList;
use crate::server::keys::KeyStore;
use crate::server::respond::Policy;
use crate::server::stats::ServerStats;
use crate::server::{NtpServer, Shared};
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
        rate_limit: r.enabled.then_some(r.limits),
        rate_action: r.action,
        keys,
        trusted_keys: config.trusted_keys.clone(),
        require_auth: config.require_auth,
    })
}

fn load(path: &Path) -> anyhow::Result<Config> {
    Config::load(path).map_err(|errors| {
        for e in &errors {
            tracing::error!("{e}");
        }
        anyhow::anyhow!("{} has {} error(s)", path.display(), errors.len())
    })
}

/// Runs until SIGTERM or SIGINT. `listen`, when not empty, replaces `server.listen`.
pub fn run(
    path: PathBuf,
    log_level: Option<String>,
    listen: Vec<SocketAddr>,
) -> anyhow::Result<()> {
    let logs = init_logging(log_level.as_deref().unwrap_or("info"));
    let listen_override = (!listen.is_empty()).then_some(listen);
    let mut config = load(&path)?;
    if let Some(listen) = &listen_override {
        config.server.listen.clone_from(listen);
    }
    if log_level.is_none() {
        let _ = logs.modify(|f| *f = EnvFilter::new(&config.log.level));
    }
    let precision = measure_precision();
    tracing::info!(config = %path.display(), precision, version = env!("CARGO_PKG_VERSION"), "starting");
    let shared = Arc::new(Shared {
        clock: ArcSwap::from_pointee(ClockSnapshot::unsynchronised(precision)),
        policy: ArcSwap::from_pointee(policy(&config.server)?),
        stats: ServerStats::default(),
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
            sources.discipline.tick();
            publish(&sources.discipline, &shared, precision);
            status.store(Arc::new(sources.status(&mut builder, &shared)));
            // After a stall, carry on from now rather than catch up in a burst.
            next_tick = (next_tick + TICK).max(Instant::now());
        }
        match events.recv_timeout(next_tick.saturating_duration_since(Instant::now())) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(Event::Sample(generation, _, _)) if generation != sources.generation => {}
            Ok(Event::Sample(_, index, sample)) => {
                sources.discipline.add_sample(index, sample);
                // Publish at once: a sample is news the clients should have now.
                publish(&sources.discipline, &shared, precision);
            }
            Ok(Event::Signal(SIGHUP)) => {
                systemd::notify("RELOADING=1");
                let reloaded = reload(
                    &path,
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
                        config = new;
                        // Publish the state under the new configuration before saying so.
                        publish(&sources.discipline, &shared, precision);
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

/// The running reference clocks and the discipline their samples feed.
struct Sources {
    generation: u64,
    discipline: Discipline,
    gps: Vec<GpsDriver>,
    dcf77: Vec<Dcf77Driver>,
    ntp: Vec<NtpDriver>,
}

impl Sources {
    fn none() -> Self {
        Sources {
            generation: 0,
            discipline: Discipline::new(&[]),
            gps: Vec::new(),
            dcf77: Vec::new(),
            ntp: Vec::new(),
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
                    let numbering = Box::new(move |at| shared.clock.load().numbering_offset(at));
                    GpsDriver::start(g, sample, numbering).map(|d| sources.gps.push(d))
                }
                SourceConfig::Dcf77(d) => {
                    Dcf77Driver::start(d, sample).map(|d| sources.dcf77.push(d))
                }
                SourceConfig::Ntp(n) => NtpDriver::start(n, &shared.policy.load().keys, sample)
                    .map(|d| sources.ntp.push(d)),
            };
            if let Err(e) = started {
                tracing::error!(source = %config.name(), "cannot start: {e}");
            }
        }
        sources.discipline = Discipline::new(configs);
        sources
    }

    /// The status of everything, for the page, the API and the metrics.
    fn status(&self, builder: &mut StatusBuilder, shared: &Shared) -> Status {
        let now = realtime_now();
        let gps: Vec<_> = self
            .gps
            .iter()
            .map(|d| (d.name.clone(), (**d.status.load()).clone()))
            .collect();
        let dcf77: Vec<_> = self
            .dcf77
            .iter()
            .map(|d| (d.name.clone(), (**d.status.load()).clone()))
            .collect();
        let ntp: Vec<_> = self
            .ntp
            .iter()
            .map(|d| (d.name.clone(), (**d.status.load()).clone()))
            .collect();
        let clock = shared.clock.load();
        let report = self.discipline.report(now);
        let drivers = DriverStatus {
            gps: &gps,
            dcf77: &dcf77,
            upstream: &ntp,
        };
        builder.build(now, &clock, report, drivers, &shared.stats)
    }

    fn stop(self) {
        self.gps.into_iter().for_each(GpsDriver::stop);
        self.dcf77.into_iter().for_each(Dcf77Driver::stop);
        self.ntp.into_iter().for_each(NtpDriver::stop);
    }
}

/// Reads the file again and applies it without closing the sockets that stay configured.
fn reload(
    path: &Path,
    running: &Config,
    listen_override: Option<&[SocketAddr]>,
    shared: &Shared,
    server: &mut NtpServer,
) -> anyhow::Result<Config> {
    let mut new = load(path)?;
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
