//! `pitime run`: wires configuration, the discipline tick and the NTP server together, and
//! handles signals (SIGHUP reloads, SIGTERM and SIGINT stop) and the operator's commands
//! (`commands`).

mod clock;
pub mod commands;
mod control;
mod logging;
mod nts;
mod sources;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use arc_swap::ArcSwap;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tracing_subscriber::EnvFilter;

use crate::alarm::{self, Alarm};
use crate::clock::system::{measure_precision, monotonic_now, realtime_now};
use crate::config::{Config, ServerConfig};
use crate::ntp::keys::KeyStore;
use crate::refclock::Sample;
use crate::server::acl::AccessList;
use crate::server::control::ControlView;
use crate::server::respond::Policy;
use crate::server::stats::ServerStats;
use crate::server::{NtpServer, Shared};
use crate::snmp::Subagent;
use crate::systemd;
use crate::web::status::{Status, StatusBuilder};
use crate::web::WebServer;
use clock::DisciplinedClock;
use commands::{Command, CommandSocket, Request};
use logging::{init_logging, LogHandle};
use nts::Nts;
use sources::Sources;

/// How often the discipline republishes the clock state.
const TICK: Duration = Duration::from_secs(1);

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
        nts: None,
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
/// `listen`, when not empty, replaces `server.listen`; commands are taken on `socket`.
pub fn run(
    paths: Vec<PathBuf>,
    log_level: Option<String>,
    listen: Vec<SocketAddr>,
    socket: &std::path::Path,
) -> anyhow::Result<()> {
    let (mut daemon, events) = Daemon::start(paths, log_level, listen)?;
    // Without it the daemon still serves; only `pitime accept-jump` cannot reach it.
    let commands = CommandSocket::start(socket, daemon.events.clone())
        .map_err(|e| tracing::warn!("no command socket, `pitime accept-jump` is off: {e:#}"))
        .ok();
    let mut signals =
        Signals::new([SIGHUP, SIGTERM, SIGINT]).context("installing signal handlers")?;
    let signal_handle = signals.handle();
    std::thread::spawn({
        let tx = daemon.events.clone();
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
            daemon.tick();
            // After a stall, carry on from now rather than catch up in a burst.
            next_tick = (next_tick + TICK).max(Instant::now());
        }
        match events.recv_timeout(next_tick.saturating_duration_since(Instant::now())) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(Event::Sample(generation, index, sample)) => {
                daemon.sample(generation, index, sample)
            }
            Ok(Event::Command(c)) => daemon.command(c),
            Ok(Event::Signal(SIGHUP)) => {
                systemd::notify("RELOADING=1");
                daemon.reload();
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
    drop(commands);
    daemon.stop();
    Ok(())
}

/// Everything `pitime run` keeps running, with one method per event of its loop.
struct Daemon {
    paths: Vec<PathBuf>,
    logs: LogHandle,
    /// A log level given on the command line, which outranks the files' on reload.
    log_level: Option<String>,
    listen_override: Option<Vec<SocketAddr>>,
    config: Config,
    clock: DisciplinedClock,
    /// What the NTP server's threads read: the clock state, the policy, the counters.
    shared: Arc<Shared>,
    server: NtpServer,
    /// Where drivers and the signal thread send their events.
    events: Sender<Event>,
    sources: Sources,
    status: Arc<ArcSwap<Status>>,
    builder: StatusBuilder,
    web_access: Arc<ArcSwap<AccessList>>,
    web: Option<WebServer>,
    snmp: Option<Subagent>,
    nts: Option<Nts>,
}

impl Daemon {
    /// Loads the configuration and starts the clock, the NTP server, the sources and the
    /// status page; returns the daemon and the events it must be given.
    fn start(
        paths: Vec<PathBuf>,
        log_level: Option<String>,
        listen: Vec<SocketAddr>,
    ) -> anyhow::Result<(Daemon, Receiver<Event>)> {
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
        let clock = DisciplinedClock::start(&config, precision)?;
        // The first reply already tells the truth (a local fallback, say), not a placeholder.
        let shared = Arc::new(Shared {
            clock: ArcSwap::from_pointee(clock.discipline.state(realtime_now())),
            policy: ArcSwap::from_pointee(policy(&config.server)?),
            stats: ServerStats::default(),
            control: ArcSwap::from_pointee(ControlView::default()),
        });
        let server = NtpServer::start(
            &config.server.listen,
            config.server.threads,
            config.server.timestamping,
            shared.clone(),
        )?;
        let nts = start_nts(&config, &shared);
        let (events, received) = mpsc::channel();
        let sources = Sources::start(0, &config.sources, &events, &shared);
        let status = Arc::new(ArcSwap::from_pointee(Status::default()));
        let web_access = Arc::new(ArcSwap::from_pointee(web_access_list(&config)));
        let web = start_web(&config.web.listen, &status, &web_access);
        let snmp = start_snmp(&config, &status, &shared);
        let mut builder = StatusBuilder::new(realtime_now());
        builder.notices.clone_from(&config.web.notices);
        let daemon = Daemon {
            paths,
            logs,
            log_level,
            listen_override,
            config,
            clock,
            shared,
            server,
            events,
            sources,
            status,
            builder,
            web_access,
            web,
            snmp,
            nts,
        };
        Ok((daemon, received))
    }

    /// Once a second: the discipline's tick, the published clock state and status, the
    /// statistics files, and the alarms raised or cleared.
    fn tick(&mut self) {
        self.clock.tick();
        self.publish();
        if let Some(nts) = &mut self.nts {
            nts.tick(&self.shared);
        }
        let (now, monotonic) = (realtime_now(), monotonic_now());
        let drivers = self.sources.published();
        let snapshot = self.shared.clock.load();
        let mut status = self.builder.build(
            now,
            monotonic,
            &snapshot,
            &self.clock.discipline,
            drivers.view(),
            &self.shared.stats,
        );
        let view = control::view(&status.sources, drivers.view(), &self.clock.discipline, now);
        self.shared.control.store(Arc::new(view));
        self.clock.write_stats(now, &status.sources, drivers.view());
        if let Some(nts) = &self.nts {
            let (view, alarm) = nts.view(nts::unix_now());
            status.nts = Some(view);
            status.alarms.extend(alarm);
        }
        log_alarms(&self.status.load().alarms, &status.alarms);
        self.status.store(Arc::new(status));
    }

    /// A sample from the source at `index`, of the sources' `generation`: samples queued by
    /// drivers stopped at a reload are dropped.
    fn sample(&mut self, generation: u64, index: usize, sample: Sample) {
        if generation != self.sources.generation {
            return;
        }
        let adjustments = self
            .clock
            .discipline
            .add_sample(index, sample, realtime_now());
        self.clock.apply(adjustments);
        // Publish at once: a sample is news the clients should have now.
        self.publish();
    }

    /// An operator's command from the command socket: done, logged with who asked, and
    /// answered.
    fn command(&mut self, command: Command) {
        let Command {
            request,
            peer,
            reply,
        } = command;
        let (uid, pid) = (peer.uid, peer.pid);
        let answer = match &request {
            Request::AcceptJump(source) => {
                match self.clock.discipline.accept_jump(source, realtime_now()) {
                    Ok(seconds) => {
                        tracing::warn!(
                            %source, seconds, uid, pid,
                            "jump accepted by the operator: followed with the source's next sample"
                        );
                        Ok(format!(
                            "{source}'s jump of {seconds:.3} s accepted: followed with its next sample"
                        ))
                    }
                    Err(why) => {
                        tracing::warn!(%source, uid, pid, "accept-jump refused: {why}");
                        Err(why)
                    }
                }
            }
        };
        let _ = reply.send(answer);
    }

    /// SIGHUP: reads the files again and applies them without closing what stays configured;
    /// an invalid file is reported and the running configuration kept.
    fn reload(&mut self) {
        let new = match self.reread() {
            Ok(new) => new,
            Err(e) => {
                tracing::error!("reload failed, keeping the running configuration: {e:#}");
                return;
            }
        };
        if self.log_level.is_none() {
            let _ = self.logs.modify(|f| *f = EnvFilter::new(&new.log.level));
        }
        self.web_access.store(Arc::new(web_access_list(&new)));
        self.builder.notices.clone_from(&new.web.notices);
        if new.web.listen != self.config.web.listen {
            if let Some(w) = self.web.take() {
                w.stop();
            }
            self.web = start_web(&new.web.listen, &self.status, &self.web_access);
        }
        if new.snmp != self.config.snmp {
            self.snmp = None;
            self.snmp = start_snmp(&new, &self.status, &self.shared);
        }
        if new.sources != self.config.sources {
            let generation = self.sources.generation + 1;
            std::mem::replace(&mut self.sources, Sources::none()).stop();
            self.sources = Sources::start(generation, &new.sources, &self.events, &self.shared);
        }
        self.reload_nts(&new);
        if new.discipline.actuator != self.config.discipline.actuator {
            tracing::warn!("`discipline.actuator` takes effect at the next restart");
        }
        self.clock.configure(&new);
        self.config = new;
        // Publish the state under the new configuration before saying so.
        self.publish();
        tracing::info!("configuration reloaded");
    }

    /// The files read again, with the server's new policy and addresses in place.
    fn reread(&mut self) -> anyhow::Result<Config> {
        let mut new = load(&self.paths)?;
        if let Some(listen) = &self.listen_override {
            new.server.listen.clone_from(listen);
        }
        let mut policy = policy(&new.server)?;
        if let Some(nts) = &self.nts {
            policy = nts.with_keys(policy);
        }
        if new.server.threads != self.config.server.threads {
            tracing::warn!("`server.threads` takes effect at the next restart");
        }
        if new.server.timestamping != self.config.server.timestamping {
            tracing::warn!("`server.timestamping` takes effect at the next restart");
        }
        self.shared.policy.store(Arc::new(policy));
        self.server.listen_on(&new.server.listen);
        Ok(new)
    }

    /// NTS turned on or off, or its certificate and KE server reloaded.
    fn reload_nts(&mut self, new: &Config) {
        match (self.nts.as_mut(), new.nts.enabled) {
            (Some(nts), true) => nts.reload(&new.nts),
            (Some(_), false) => {
                self.nts.take().into_iter().for_each(Nts::stop);
                let mut policy = (**self.shared.policy.load()).clone();
                policy.nts = None;
                self.shared.policy.store(Arc::new(policy));
            }
            (None, true) => self.nts = start_nts(new, &self.shared),
            (None, false) => {}
        }
    }

    /// Publishes the clock state for the NTP server (and everything else that reads it).
    fn publish(&self) {
        let state = self.clock.discipline.state(realtime_now());
        self.shared.clock.store(Arc::new(state));
    }

    /// Stops the page, then the sources, saves what the clock learned, and closes the
    /// server last: clients are answered to the end.
    fn stop(mut self) {
        if let Some(w) = self.web.take() {
            w.stop();
        }
        self.snmp = None;
        self.nts.take().into_iter().for_each(Nts::stop);
        self.sources.stop();
        self.clock.save_drift();
        self.server.stop();
    }
}

/// Starts the SNMP subagent when configured; a failure to start is logged, not fatal.
fn start_snmp(
    config: &Config,
    status: &Arc<ArcSwap<Status>>,
    shared: &Arc<Shared>,
) -> Option<Subagent> {
    let socket = config.snmp.agentx.clone()?;
    Subagent::start(
        socket,
        config.snmp.heartbeat,
        status.clone(),
        shared.clone(),
    )
    .map_err(|e| tracing::error!("cannot start the SNMP subagent: {e}"))
    .ok()
}

/// Starts NTS when enabled; a failure is logged, not fatal: plain NTP is served anyway.
fn start_nts(config: &Config, shared: &Arc<Shared>) -> Option<Nts> {
    Nts::start(&config.nts, shared)
        .map_err(|e| tracing::error!("cannot start NTS: {e:#}"))
        .ok()
        .flatten()
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

enum Event {
    Signal(i32),
    /// An operator's command, from the command socket.
    Command(Command),
    /// A sample from the source at this index of the configuration, of this generation of
    /// the sources (samples queued by drivers stopped at a reload are dropped).
    Sample(u64, usize, Sample),
}
