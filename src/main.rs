//! The `pitime` command line.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{CommandFactory, Parser, Subcommand};
use signal_hook::consts::{SIGINT, SIGTERM};

use pitime::capture;
use pitime::config::{ActuatorKind, Bias, Config, ConfigError, LoneJump, LOG_LEVELS};
use pitime::daemon::commands;
use pitime::detect::{self, pulses::classify, Devices};
use pitime::loadgen::{self, LoadOptions};
use pitime::ntp::keys::KeyStore;
use pitime::ntp::nts::aead::{Algorithm, SessionKeys};
use pitime::refclock::gps::decoder::{self, DecoderOptions};
use pitime::refclock::longwave::decoder::decode;
use pitime::refclock::longwave::station::StationKind;
use pitime::replay;
use pitime::sim::longwave_bench::{self, Score};
use pitime::sim::oscillator::OscillatorParams;
use pitime::sim::scenario::{self, Scenario};
use pitime::time::UtcTime;
use pitime::web::client;

/// The effective configuration, or `ok`.
fn check_config(files: &[PathBuf], effective: bool) -> Result<String, Vec<ConfigError>> {
    match effective {
        true => Config::effective(files),
        false => Config::load_layers(files).map(|_| "ok\n".to_string()),
    }
}

/// Where the Debian package and the image keep the configuration.
const DEFAULT_CONFIG: &str = "/etc/pitime/pitime.toml";
/// The image's second layer, from the boot partition (image/rootfs, pitime.service.d).
const IMAGE_LAYER: &str = "/run/pitime-boot/pitime.toml";

#[derive(Parser)]
#[command(
    name = "pitime",
    version,
    about = "A stratum-1 NTP server for GNSS and DCF77 receivers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon.
    Run {
        /// Configuration file; repeat to lay each file over the ones before it (tables merge
        /// key by key, a later key wins, arrays and `[[source]]` lists are replaced whole).
        #[arg(long, short, default_value = DEFAULT_CONFIG)]
        config: Vec<PathBuf>,
        /// Log level, overriding `log.level` in the file.
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(LOG_LEVELS))]
        log_level: Option<String>,
        /// Address to serve NTP on, overriding `server.listen` (repeat for several).
        #[arg(long)]
        listen: Vec<SocketAddr>,
        /// The command socket `pitime accept-jump` talks to (root and the daemon's user only);
        /// by default /run/pitime/pitime.sock, else $XDG_RUNTIME_DIR/pitime.sock.
        #[arg(long)]
        socket: Option<PathBuf>,
    },
    /// Follow the pending time jump of SOURCE (as named in the configuration), which the
    /// running daemon holds over because no second source agrees with it. Logged with who
    /// asked; refused when that source has no pending jump.
    AcceptJump {
        /// The source's name, e.g. gps.
        source: String,
        /// The running daemon's command socket (`run --socket`).
        #[arg(long)]
        socket: Option<PathBuf>,
    },
    /// Validate configuration files, each laid over the ones before it as `run --config` does:
    /// prints every error, or `ok`.
    CheckConfig {
        /// Configuration files, lowest first.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print the effective configuration instead of `ok`: every key, its value, and the
        /// file, profile or default it comes from.
        #[arg(long)]
        effective: bool,
    },
    /// The running daemon's clock, like `chronyc tracking`.
    Status(Ask),
    /// The running daemon's sources, like `chronyc sources`.
    Sources(Ask),
    /// Decode a receiver capture and print each time accepted or rejected, as JSON lines.
    #[command(subcommand)]
    Replay(Replay),
    /// Run the longwave decoder over generated signals of a station, one scenario of noise at
    /// a time: seconds labelled, labels and minutes wrong, decoding time, as JSON lines.
    #[command(alias = "bench-dcf77")]
    BenchLongwave {
        /// The station: dcf77, msf or wwvb.
        #[arg(long, default_value = "dcf77", value_parser = parse_station)]
        station: StationKind,
        /// Minutes of signal per run.
        #[arg(long, default_value_t = 60)]
        minutes: usize,
        /// Runs (seeds) per noise level.
        #[arg(long, default_value_t = 5)]
        seeds: u64,
        /// Only the scenario of this name (as the output names them).
        #[arg(long)]
        scenario: Option<String>,
    },
    /// Run the discipline against a simulated oscillator and GPS receiver, faster than real
    /// time, and print a JSON summary of the served time's error.
    Simulate(Simulate),
    /// Play the simulated receivers (`[source.simulate]`) of a configuration file to outside
    /// devices, for the emulated hardware rig (scripts/qemu-test.sh --rig): the GNSS receiver's
    /// NMEA to a serial port's Unix socket, and the PPS and DCF77 edges as bytes (P/p, D/d) to
    /// another, which a relay in the guest turns into gpio-sim line levels.
    PlaySignals {
        /// Configuration file whose first simulated gps and dcf77 sources are played.
        #[arg(long, short)]
        config: PathBuf,
        /// Unix socket of the serial port (QEMU's chardev server).
        #[arg(long)]
        serial: PathBuf,
        /// Unix socket for the pulse edges.
        #[arg(long)]
        pulses: PathBuf,
        /// Seconds to play before stopping.
        #[arg(long, default_value_t = 3600)]
        duration: u64,
    },
    /// Look for receivers and pulses, and suggest pitime.toml `[[source]]` sections.
    ///
    /// Listens to serial ports for NMEA or UBX, watches GPIO lines for a PPS or a DCF77
    /// receiver's pulses, and kernel PPS devices for pulses. Sends nothing to the devices and
    /// changes no file unless asked to write one. Stop pitime first: it holds what it uses.
    Detect(Detect),
    /// Record a receiver's signal to a file that `pitime replay` reads, for bug reports.
    #[command(subcommand)]
    Capture(Capture),
    /// Print this manual page (roff), made from the command line's own definitions.
    #[command(hide = true)]
    Manpage,
    /// Load-test an NTP server from many loopback source addresses.
    BenchServer {
        /// Server address.
        #[arg(long, default_value = "127.0.0.1:11123")]
        server: SocketAddr,
        /// Seconds to measure, after the warm-up.
        #[arg(long, default_value = "10", value_parser = parse_seconds)]
        duration: Duration,
        /// Seconds of load before measuring.
        #[arg(long, default_value = "1", value_parser = parse_seconds)]
        warmup: Duration,
        /// Client sockets (each its own 127.1.x.y address for an IPv4 loopback server).
        #[arg(long, default_value_t = 256)]
        sources: usize,
        /// Requests in flight per socket.
        #[arg(long, default_value_t = 4)]
        window: usize,
        /// Milliseconds before an unanswered request counts as lost.
        #[arg(long, default_value_t = 500)]
        timeout_ms: u64,
        /// Keys file for signed requests (with --key-id).
        #[arg(long, requires = "key_id")]
        keys_file: Option<PathBuf>,
        #[arg(long, requires = "keys_file")]
        key_id: Option<u32>,
        /// Alternate basic and interleaved requests and report the error of the server's
        /// user-space transmit timestamps against its kernel's.
        #[arg(long)]
        interleaved: bool,
        /// NTS: run a key exchange with this NTS-KE server first, then send NTS requests.
        #[arg(long, requires = "nts_ca")]
        nts_ke: Option<SocketAddr>,
        /// NTS: the CA file (PEM) that vouches for the KE server's certificate.
        #[arg(long, requires = "nts_ke")]
        nts_ca: Option<PathBuf>,
        /// NTS: the name the KE server's certificate must have.
        #[arg(long, default_value = "127.0.0.1")]
        nts_name: String,
        /// NTS: time this many key exchanges (from 4 threads) instead of NTP requests.
        #[arg(long, requires = "nts_ke")]
        ke_handshakes: Option<usize>,
    },
}

/// How to reach the running daemon: its status page address, given or from its configuration.
#[derive(clap::Args)]
struct Ask {
    /// Configuration files whose `web.listen` to ask (as given to `run`). Default:
    /// /etc/pitime/pitime.toml, and on the image the boot partition's layer over it.
    #[arg(long, short)]
    config: Vec<PathBuf>,
    /// Status page address (overrides the configuration), e.g. 127.0.0.1:8123.
    #[arg(long)]
    address: Option<SocketAddr>,
}

impl Ask {
    fn address(&self) -> Result<SocketAddr, String> {
        if let Some(a) = self.address {
            return Ok(a);
        }
        let files = match self.config.is_empty() {
            false => self.config.clone(),
            true => [DEFAULT_CONFIG, IMAGE_LAYER]
                .iter()
                .map(PathBuf::from)
                .filter(|p| p == Path::new(DEFAULT_CONFIG) || p.exists())
                .collect(),
        };
        let config = Config::load_layers(&files).map_err(|errors| {
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        })?;
        config
            .web
            .listen
            .first()
            .map(|&a| client::local_address(a))
            .ok_or_else(|| "`web.listen` is empty".to_string())
    }

    /// Fetches the status and prints it with `format`.
    fn print(&self, format: fn(&serde_json::Value) -> String) -> ExitCode {
        match self.address().and_then(client::status) {
            Ok(status) => {
                print!("{}", format(&status));
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        }
    }
}

#[derive(clap::Args)]
struct Simulate {
    /// Simulated seconds.
    #[arg(long, default_value_t = 7200)]
    duration: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// PPS timestamp jitter (RMS), nanoseconds.
    #[arg(long, default_value_t = 1000.0)]
    pps_jitter_ns: f64,
    /// The oscillator's initial frequency error, ppm.
    #[arg(long, default_value_t = 30.0, allow_negative_numbers = true)]
    freq_offset_ppm: f64,
    /// Random-walk wander: RMS frequency change per hour, ppm (0.01: a Pi at steady temperature).
    #[arg(long, default_value_t = 0.01)]
    wander_ppm: f64,
    /// Amplitude of a daily temperature-driven frequency swing, ppm.
    #[arg(long, default_value_t = 0.0)]
    temperature_ppm: f64,
    /// The system clock's error at start, seconds.
    #[arg(long, default_value_t = 0.4, allow_negative_numbers = true)]
    clock_offset: f64,
    /// From the pulse to the sentence, seconds.
    #[arg(long, default_value_t = 0.15)]
    sentence_delay: f64,
    /// The receiver is silent from START to END seconds (repeat for several).
    #[arg(long, value_parser = parse_window)]
    outage: Vec<(u64, u64)>,
    /// The receiver reports a time off by SECONDS from START to END: START:END:SECONDS.
    #[arg(long, value_parser = parse_jump)]
    jump: Option<(u64, u64, f64)>,
    /// What the discipline does with that lone receiver's jump, as `discipline.lone_jump`:
    /// "hold" (hold over; never follow it on its own word) or SECONDS (follow once it has
    /// insisted that long).
    #[arg(long, default_value = "hold", value_parser = parse_lone_jump)]
    lone_jump: LoneJump,
    /// Where corrections go: "virtual" (served time) or "kernel" (the simulated clock).
    #[arg(long, default_value = "virtual", value_parser = ["virtual", "kernel"])]
    actuator: String,
    /// Start from this drift-file frequency, ppm.
    #[arg(long, allow_negative_numbers = true)]
    drift_ppm: Option<f64>,
}

/// Seconds, as a duration: finite and not negative (NaN would panic later).
fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.parse().map_err(|e| format!("{e}"))?;
    Duration::try_from_secs_f64(secs).map_err(|_| "expected a number of seconds, 0 or more".into())
}

fn parse_window(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s.split_once(':').ok_or("expected START:END")?;
    let (a, b) = (
        a.parse().map_err(|e| format!("{e}"))?,
        b.parse().map_err(|e| format!("{e}"))?,
    );
    if a >= b {
        return Err("START must be before END".into());
    }
    Ok((a, b))
}

fn parse_jump(s: &str) -> Result<(u64, u64, f64), String> {
    let (window, seconds) = s.rsplit_once(':').ok_or("expected START:END:SECONDS")?;
    let (a, b) = parse_window(window)?;
    Ok((a, b, seconds.parse().map_err(|e| format!("{e}"))?))
}

fn parse_lone_jump(s: &str) -> Result<LoneJump, String> {
    match s {
        "hold" => Ok(LoneJump::Hold),
        _ => match s.parse::<f64>() {
            Ok(secs) if secs > 0.0 && secs.is_finite() => Ok(LoneJump::After(secs)),
            _ => Err("expected \"hold\" or a positive number of seconds".into()),
        },
    }
}

#[derive(clap::Args)]
struct Detect {
    /// A serial device to listen to (repeat for several; `none` for none). Default: every
    /// /dev/serial0, /dev/ttyAMA*, /dev/ttyS*, /dev/ttyUSB* and /dev/ttyACM*, at 9600, 38400,
    /// 115200, 4800, 57600 and 230400 baud, 2.5 s each, until NMEA or UBX is heard.
    #[arg(long, value_name = "DEV")]
    serial: Vec<PathBuf>,
    /// The GPIO chip whose lines to watch (`none` for none). Default: /dev/gpiochip-header if
    /// it exists, else /dev/gpiochip0.
    #[arg(long)]
    chip: Option<PathBuf>,
    /// The lines to watch, e.g. 17,18. Default: on a Pi the header's GPIO 2 to 27 that no
    /// device has taken; on another chip, all.
    #[arg(long, value_delimiter = ',')]
    lines: Option<Vec<u32>>,
    /// A kernel PPS device to listen to (repeat; `none` for none). Default: every /dev/ppsN.
    #[arg(long, value_name = "DEV")]
    pps: Vec<PathBuf>,
    /// Seconds to watch the GPIO lines and PPS devices.
    #[arg(long, default_value = "10", value_parser = parse_seconds)]
    seconds: Duration,
    /// Print the findings and the suggestion as JSON.
    #[arg(long)]
    json: bool,
    /// Also write the suggested sources to FILE (refused if it exists, unless --force).
    #[arg(long, value_name = "FILE")]
    write: Option<PathBuf>,
    /// Overwrite the file of --write if it exists.
    #[arg(long, requires = "write")]
    force: bool,
}

#[derive(Subcommand)]
enum Capture {
    /// A DCF77 receiver's GPIO line: one `<seconds> <level>` line per edge, levels as at the pin.
    Dcf77 {
        /// The GPIO chip.
        #[arg(long, default_value = "/dev/gpiochip-header")]
        chip: PathBuf,
        /// The line's offset on the chip (the BCM GPIO number on a Pi).
        #[arg(long)]
        line: u32,
        /// Seconds to record; Ctrl-C stops sooner, keeping what was recorded.
        #[arg(long, default_value = "600", value_parser = parse_seconds)]
        seconds: Duration,
        /// The line's bias, as the source's `bias`.
        #[arg(long, default_value = "pull-up",
              value_parser = clap::builder::PossibleValuesParser::new(Bias::NAMES))]
        bias: String,
        /// Kernel debounce period, seconds, as the source's `debounce`.
        #[arg(long, default_value_t = 0.0)]
        debounce: f64,
        /// The file to write.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum Replay {
    /// A receiver capture, NMEA or u-blox UBX or both: `#` text lines are comments, the rest
    /// the bytes the receiver sent.
    Nmea {
        file: PathBuf,
        /// Reject times before this day (YYYY-MM-DD); default: the day pitime was built.
        #[arg(long, value_parser = parse_day)]
        not_before: Option<UtcTime>,
        /// Accept times from sentences that report no fix.
        #[arg(long)]
        allow_no_fix: bool,
    },
    /// A DCF77 capture: one `<seconds since start> <level 0|1>` line per edge.
    Dcf77(LongwaveReplay),
    /// An MSF capture, as for DCF77.
    Msf(LongwaveReplay),
    /// A WWVB capture, as for DCF77.
    Wwvb(LongwaveReplay),
}

#[derive(clap::Args)]
struct LongwaveReplay {
    file: PathBuf,
    /// Level 0 means carrier reduced (the pulse).
    #[arg(long)]
    active_low: bool,
    /// Minutes of evidence before the first second is labelled.
    #[arg(long, default_value_t = 2)]
    confirm: usize,
    /// Print each labelled second (its marker's time and UTC) instead of each minute.
    #[arg(long)]
    seconds: bool,
}

fn parse_station(text: &str) -> Result<StationKind, String> {
    StationKind::from_name(text).ok_or_else(|| format!("`{text}` is not dcf77, msf or wwvb"))
}

/// `pitime replay dcf77|msf|wwvb`.
fn replay_longwave(station: StationKind, r: LongwaveReplay) -> ExitCode {
    let text = match std::fs::read(&r.file) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => return fail(format!("{}: {e}", r.file.display())),
    };
    let (edges, errors) = replay::dcf77_edges(&text);
    for e in &errors {
        eprintln!("pitime: {}: {e}", r.file.display());
    }
    if let Some(hint) = replay::polarity_hint(station, &edges, r.active_low) {
        eprintln!("pitime: {}: {hint}", r.file.display());
    }
    let (lines, what) = match r.seconds {
        true => (
            replay::longwave_seconds(station, &edges, r.active_low, r.confirm),
            "second",
        ),
        false => (
            replay::longwave_minutes(station, &edges, r.active_low, r.confirm),
            "minute",
        ),
    };
    if lines.is_empty() {
        return fail(format!("{}: no {what} decoded", r.file.display()));
    }
    print_lines(lines)
}

fn parse_day(text: &str) -> Result<UtcTime, String> {
    decoder::parse_date(text).ok_or_else(|| format!("`{text}` is not a date (YYYY-MM-DD)"))
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run {
            config,
            log_level,
            listen,
            socket,
        } => match pitime::daemon::run(
            config,
            log_level,
            listen,
            socket.or_else(commands::default_socket),
        ) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("pitime: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::CheckConfig { files, effective } => match check_config(&files, effective) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(errors) => {
                for e in errors {
                    println!("{e}");
                }
                ExitCode::FAILURE
            }
        },
        Command::AcceptJump { source, socket } => {
            let Some(socket) = socket.or_else(commands::default_socket) else {
                return fail(
                    "no command socket: neither /run/pitime nor $XDG_RUNTIME_DIR exists \
                     (give the daemon's `--socket`)"
                        .to_string(),
                );
            };
            match commands::send(&socket, &commands::Request::AcceptJump(source)) {
                Ok(Ok(text)) => {
                    println!("{text}");
                    ExitCode::SUCCESS
                }
                Ok(Err(why)) => fail(format!("refused: {why}")),
                Err(e) => fail(format!("{e:#}")),
            }
        }
        Command::Status(ask) => ask.print(client::tracking),
        Command::Sources(ask) => ask.print(client::sources),
        Command::Replay(Replay::Nmea {
            file,
            not_before,
            allow_no_fix,
        }) => {
            let bytes = match std::fs::read(&file) {
                Ok(b) => b,
                Err(e) => return fail(format!("{}: {e}", file.display())),
            };
            let options = DecoderOptions {
                not_before: not_before.unwrap_or_else(decoder::build_date),
                require_fix: !allow_no_fix,
            };
            print_lines(replay::nmea_lines(&bytes, options))
        }
        Command::Replay(Replay::Dcf77(r)) => replay_longwave(StationKind::Dcf77, r),
        Command::Replay(Replay::Msf(r)) => replay_longwave(StationKind::Msf, r),
        Command::Replay(Replay::Wwvb(r)) => replay_longwave(StationKind::Wwvb, r),
        Command::Detect(d) => detect(d),
        Command::Capture(Capture::Dcf77 {
            chip,
            line,
            seconds,
            bias,
            debounce,
            file,
        }) => capture_dcf77(&chip, line, seconds.as_secs_f64(), &bias, debounce, &file),
        Command::Manpage => {
            let page = pitime::manpage::render(Cli::command())
                .and_then(|page| std::io::stdout().lock().write_all(&page));
            match page {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    fail(format!("manpage: {e}"))
                }
                _ => ExitCode::SUCCESS,
            }
        }
        Command::Simulate(a) => {
            let scenario = Scenario {
                duration: a.duration,
                seed: a.seed,
                oscillator: OscillatorParams {
                    freq: a.freq_offset_ppm * 1e-6,
                    wander: a.wander_ppm * 1e-6,
                    temperature: a.temperature_ppm * 1e-6,
                    offset: a.clock_offset,
                },
                pps_jitter: a.pps_jitter_ns * 1e-9,
                sentence_delay: a.sentence_delay,
                sentence_jitter: 0.005,
                outages: a.outage,
                jump: a.jump,
                lone_jump: a.lone_jump,
                actuator: match a.actuator.as_str() {
                    "kernel" => ActuatorKind::Kernel,
                    _ => ActuatorKind::Virtual,
                },
                drift: a.drift_ppm.map(|p| p * 1e-6),
            };
            println!("{}", serde_json::json!(scenario::run(&scenario)));
            ExitCode::SUCCESS
        }
        Command::PlaySignals {
            config,
            serial,
            pulses,
            duration,
        } => {
            let config = match Config::load(&config) {
                Ok(c) => c,
                Err(errors) => return fail(errors.iter().map(|e| format!("{e}\n")).collect()),
            };
            match pitime::sim::player::Signals::start(&config, &serial, &pulses) {
                Ok(_signals) => {
                    std::thread::sleep(Duration::from_secs(duration));
                    ExitCode::SUCCESS
                }
                Err(e) => fail(format!("play-signals: {e}")),
            }
        }
        Command::BenchLongwave {
            station,
            minutes,
            seeds,
            scenario: only,
        } => {
            let confirm = 2;
            let all = longwave_bench::scenarios(station, minutes);
            let chosen = all
                .iter()
                .filter(|s| only.as_ref().is_none_or(|o| o == s.name));
            for scenario in chosen {
                let (mut total, mut decoding, mut hours) = (Score::default(), 0.0, 0.0);
                let mut labels_after_loss: f64 = 0.0;
                // Seeds with a wrong label or minute, to reproduce them.
                let mut wrong_seeds = Vec::new();
                for seed in 1..=seeds {
                    let signal = scenario.seeded(seed);
                    let generated = signal.generate();
                    let started = Instant::now();
                    let events = decode(station, &generated.edges, signal.active_low, confirm);
                    decoding += started.elapsed().as_secs_f64();
                    hours += signal.duration / 3600.0;
                    let score = longwave_bench::score(&signal, &generated, &events);
                    if let (Some(lost), Some(last)) = (signal.lost_from, score.last_label) {
                        labels_after_loss = labels_after_loss.max(last - lost);
                    }
                    if score.wrong_labels + score.wrong > 0 {
                        wrong_seeds.push(seed);
                    }
                    total.add(&score);
                }
                let mut row = serde_json::json!({"scenario": scenario.name,
                    "target": scenario.target,
                    "seconds_after_3_min": total.seconds, "labelled": total.labelled,
                    "labelled_share": (total.labelled_share() * 1000.0).round() / 1000.0,
                    "wrong_labels": total.wrong_labels, "minutes": total.minutes,
                    "minutes_accepted": total.accepted, "wrong_minutes": total.wrong,
                    "wrong_seeds": wrong_seeds,
                    "decode_ms_per_hour": (decoding / hours.max(1e-9) * 1e4).round() / 10.0});
                if scenario.signal.lost_from.is_some() {
                    row["last_label_after_loss_seconds"] = serde_json::json!(labels_after_loss);
                }
                println!("{row}");
            }
            let firsts = longwave_bench::first_labels(station, confirm);
            let mut first: Vec<f64> = firsts.iter().flatten().copied().collect();
            first.sort_by(f64::total_cmp);
            println!(
                "{}",
                serde_json::json!({"clean_first_label_seconds": {"starts": firsts.len(),
                    "labelled": first.len(), "min": first.first(),
                    "median": first.get(first.len() / 2), "max": first.last()}})
            );
            ExitCode::SUCCESS
        }
        Command::BenchServer {
            server,
            duration,
            warmup,
            sources,
            window,
            timeout_ms,
            keys_file,
            key_id,
            interleaved,
            nts_ke,
            nts_ca,
            nts_name,
            ke_handshakes,
        } => {
            if let (Some(n), Some(ke), Some(ca)) = (ke_handshakes, nts_ke, &nts_ca) {
                return match bench_handshakes(ke, ca, &nts_name, n) {
                    Ok(json) => {
                        println!("{json}");
                        ExitCode::SUCCESS
                    }
                    Err(e) => fail(e),
                };
            }
            let key = match (keys_file, key_id) {
                (Some(path), Some(id)) => match KeyStore::load(&path).map(|k| k.get(id).cloned()) {
                    Ok(Some(key)) => Some((id, key)),
                    Ok(None) => return fail(format!("key {id} is not in {}", path.display())),
                    Err(e) => return fail(e.to_string()),
                },
                _ => None,
            };
            let opts = LoadOptions {
                server,
                duration,
                warmup,
                sources,
                window,
                timeout: Duration::from_millis(timeout_ms),
                key,
                interleaved,
                nts: match (nts_ke, nts_ca) {
                    (Some(ke), Some(ca)) => match bench_key_exchange(ke, &ca, &nts_name) {
                        Ok(x) => Some(x),
                        Err(e) => return fail(e),
                    },
                    _ => None,
                },
            };
            match loadgen::run(&opts) {
                Ok(report) => {
                    println!("{}", report.to_json());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e.to_string()),
            }
        }
    }
}

/// One key exchange for `bench-server`: its keys and first cookie.
fn bench_key_exchange(
    ke: SocketAddr,
    ca: &std::path::Path,
    name: &str,
) -> Result<(SessionKeys, Vec<u8>), String> {
    use pitime::ntp::nts::ke_client;
    let pem = std::fs::read(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
    let tls = ke_client::tls_client(&pem).map_err(|e| e.to_string())?;
    let x = ke_client::exchange(ke, name, tls, &Algorithm::ALL)
        .map_err(|e| format!("NTS-KE with {ke}: {e}"))?;
    let cookie = x
        .cookies
        .into_iter()
        .next()
        .ok_or("the KE server gave no cookie")?;
    Ok((x.session, cookie))
}

/// `count` key exchanges with `ke`, four at a time: their rate, as JSON.
fn bench_handshakes(
    ke: SocketAddr,
    ca: &std::path::Path,
    name: &str,
    count: usize,
) -> Result<String, String> {
    use pitime::ntp::nts::ke_client;
    const THREADS: usize = 4;
    let pem = std::fs::read(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
    let tls = ke_client::tls_client(&pem).map_err(|e| e.to_string())?;
    let start = std::time::Instant::now();
    let failed: usize = std::thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|i| {
                let tls = tls.clone();
                s.spawn(move || {
                    (i..count)
                        .step_by(THREADS)
                        .filter(|_| {
                            ke_client::exchange(ke, name, tls.clone(), &Algorithm::ALL).is_err()
                        })
                        .count()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or(count)).sum()
    });
    let seconds = start.elapsed().as_secs_f64();
    Ok(format!(
        "{{\"handshakes\":{count},\"failed\":{failed},\"seconds\":{seconds:.3},\"handshakes_per_second\":{:.0}}}",
        (count - failed.min(count)) as f64 / seconds
    ))
}

fn detect(d: Detect) -> ExitCode {
    if let Some(path) = d.write.as_ref().filter(|p| !d.force && p.exists()) {
        return fail(format!(
            "{} exists: pass --force to overwrite it",
            path.display()
        ));
    }
    let report = pitime::detect::run(detect::Options {
        serial: Devices::from_args(d.serial),
        chip: Devices::from_args(d.chip.into_iter().collect()),
        lines: d.lines,
        pps: Devices::from_args(d.pps),
        seconds: d.seconds.as_secs_f64(),
    });
    let suggestion = report.suggestion();
    if d.json {
        let mut json = serde_json::json!(report);
        json["suggestion"] = serde_json::json!(suggestion);
        println!("{json:#}");
    } else {
        print!("{}", report.text());
    }
    if let Some(path) = &d.write {
        let mut options = std::fs::OpenOptions::new();
        options.write(true);
        match d.force {
            true => options.create(true).truncate(true),
            false => options.create_new(true),
        };
        let written = options
            .open(path)
            .and_then(|mut f| f.write_all(suggestion.as_bytes()));
        if let Err(e) = written {
            return fail(format!("{}: {e}", path.display()));
        }
        eprintln!("pitime: suggestion written to {}", path.display());
    }
    ExitCode::SUCCESS
}

fn capture_dcf77(
    chip: &Path,
    line: u32,
    seconds: f64,
    bias: &str,
    debounce: f64,
    file: &Path,
) -> ExitCode {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, stop.clone()) {
            return fail(format!("capture: {e}"));
        }
    }
    let mut out = match std::fs::File::create(file) {
        Ok(f) => std::io::BufWriter::new(f),
        Err(e) => return fail(format!("{}: {e}", file.display())),
    };
    let bias = Bias::from_name(bias).unwrap_or(Bias::PullUp);
    eprintln!(
        "pitime: recording {} line {line} to {} for {seconds} s (Ctrl-C stops)",
        chip.display(),
        file.display()
    );
    match capture::dcf77(chip, line, bias, debounce, seconds, &mut out, &stop) {
        Ok(edges) => {
            let span = edges.last().map_or(0.0, |e| e.0);
            eprintln!(
                "pitime: {} edges in {span:.0} s; they look like: {}",
                edges.len(),
                serde_json::json!(classify(&edges, span.max(1.0)))
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("capture: {e}")),
    }
}

/// Prints one item a line; a closed pipe (`| head`) ends the output quietly.
fn print_lines(items: impl IntoIterator<Item = impl std::fmt::Display>) -> ExitCode {
    let mut out = std::io::stdout().lock();
    for item in items {
        if writeln!(out, "{item}").is_err() {
            break;
        }
    }
    ExitCode::SUCCESS
}

fn fail(message: String) -> ExitCode {
    eprintln!("pitime: {message}");
    ExitCode::FAILURE
}
