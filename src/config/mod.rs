//! The one configuration file: its schema, defaults and validation.
//!
//! Every key has a default; `config/pitime.toml` documents them all and `docs/configuration.md`
//! is the reference. Reading collects every error (file:line:column, key, what was expected)
//! instead of stopping at the first.

mod discipline;
mod effective;
mod layers;
mod nts;
mod profiles;
mod reader;
mod receiver;
mod sources;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

pub use discipline::{ActuatorKind, DisciplineConfig, LoneJump};
use layers::{Document, Text};
pub use nts::NtsConfig;
pub use profiles::PROFILES;
pub use reader::ConfigError;
use reader::{Errors, FromToml, Section, Setting};
pub use receiver::{Gnss, ReceiverConfig, Sentences, Timepulse, TimingMode};
pub use sources::*;

use crate::ntp::keys::KeyStore;
use crate::ntp::txstamp::Timestamping;
use crate::server::acl::{AccessList, Cidr};
use crate::server::interleave::Interleave;
use crate::server::ratelimit;
use crate::server::respond::Refusal;

#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub log: LogConfig,
    pub server: ServerConfig,
    pub web: WebConfig,
    pub snmp: SnmpConfig,
    pub nts: NtsConfig,
    pub discipline: DisciplineConfig,
    pub sources: Vec<SourceConfig>,
}

/// SNMP through the system's snmpd.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SnmpConfig {
    /// snmpd's AgentX socket; `None`: no SNMP.
    pub agentx: Option<PathBuf>,
    /// Seconds between heartbeat notifications.
    pub heartbeat: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LogConfig {
    pub level: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    pub listen: Vec<SocketAddr>,
    pub access: AccessList,
    pub deny_action: Refusal,
    /// Who may ask mode 6 (ntpq, check_ntp_peer) questions.
    pub query_allow: Vec<Cidr>,
    pub rate_limit: RateLimitConfig,
    pub keys_file: Option<PathBuf>,
    /// Key ids accepted from clients; `None` trusts every key in the keys file.
    pub trusted_keys: Option<Vec<u32>>,
    pub require_auth: bool,
    pub threads: usize,
    /// Where the timestamps of requests and replies come from.
    pub timestamping: Timestamping,
}

/// The status page, JSON API and metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct WebConfig {
    pub listen: Vec<SocketAddr>,
    /// Who may ask; `None` uses the NTP server's allow/deny lists.
    pub access: Option<AccessList>,
    /// Warnings from whoever set the machine up (the image's boot-config: files it ignored),
    /// shown as alarms.
    pub notices: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RateLimitConfig {
    pub enabled: bool,
    pub action: Refusal,
    pub limits: ratelimit::Params,
}

pub const LOG_LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

impl Config {
    /// Reads and validates a configuration file, including the keys file it names.
    pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
        Config::load_layers(&[path.to_path_buf()])
    }

    /// Reads configuration files, each laid over the ones before it (`layers`).
    pub fn load_layers(paths: &[PathBuf]) -> Result<Config, Vec<ConfigError>> {
        let doc = Document::new(read_files(paths)?, profile_texts());
        read(&doc).0
    }

    /// The configuration the files give, every key with its value and where it was set, as a
    /// TOML file (`check-config --effective`).
    pub fn effective(paths: &[PathBuf]) -> Result<String, Vec<ConfigError>> {
        let doc = Document::new(read_files(paths)?, profile_texts());
        let (result, settings) = read(&doc);
        result.map(|_| effective::render(doc.file_names(), &settings))
    }

    /// Parses configuration text; `base` resolves relative paths (the file's directory).
    pub fn parse(file: &str, text: &str, base: &Path) -> Result<Config, Vec<ConfigError>> {
        let text = Text {
            name: file.to_string(),
            text: text.to_string(),
            dir: Some(base.to_path_buf()),
        };
        read(&Document::new(vec![text], profile_texts())).0
    }
}

fn profile_texts() -> impl Iterator<Item = (&'static str, &'static str)> {
    PROFILES.iter().map(|p| (p.name, p.settings))
}

fn read_files(paths: &[PathBuf]) -> Result<Vec<Text>, Vec<ConfigError>> {
    let mut texts = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        match std::fs::read_to_string(path) {
            Ok(text) => texts.push(Text::file(path, text)),
            Err(e) => errors.push(ConfigError {
                file: path.display().to_string(),
                line: 0,
                column: 0,
                key: String::new(),
                message: format!("cannot read: {e}"),
            }),
        }
    }
    match errors.is_empty() {
        true => Ok(texts),
        false => Err(errors),
    }
}

/// Reads the document: the configuration or every error, and the settings read.
fn read(doc: &Document) -> (Result<Config, Vec<ConfigError>>, Vec<Setting>) {
    let mut errs = Errors::new(doc);
    let parsed = doc.parse();
    for (span, message) in parsed.errors {
        errs.push(span, "", message);
    }
    let mut root = Section::new(Some(&parsed.root), "");
    let log = read_log(root.table(&mut errs, "log"), &mut errs);
    let (server, keys) = read_server(root.table(&mut errs, "server"), &mut errs);
    let web = read_web(root.table(&mut errs, "web"), &mut errs);
    let snmp = read_snmp(root.table(&mut errs, "snmp"), &mut errs);
    let nts = nts::read_nts(root.table(&mut errs, "nts"), &mut errs);
    let config = Config {
        log,
        server,
        web,
        snmp,
        nts,
        discipline: discipline::read_discipline(root.table(&mut errs, "discipline"), &mut errs),
        // Upstream sources name keys from the server's keys file.
        sources: read_sources(&mut root, &mut errs, keys.as_ref(), &parsed.profiles),
    };
    root.finish(&mut errs);
    let (list, settings) = errs.into_sorted();
    match list.is_empty() {
        true => (Ok(config), settings),
        false => (Err(list), settings),
    }
}

pub(crate) fn one_of<'a>(choices: &'a [&'a str]) -> impl Fn(&String) -> Result<(), String> + 'a {
    move |v| {
        if choices.contains(&v.as_str()) {
            Ok(())
        } else {
            Err(format!("expected one of: {}", choices.join(", ")))
        }
    }
}

pub(crate) fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
    lo: T,
    hi: T,
) -> impl Fn(&i64) -> Result<(), String>
where
    i64: TryInto<T>,
{
    move |v| match (*v).try_into() {
        Ok(x) if x >= lo && x <= hi => Ok(()),
        _ => Err(format!("expected an integer from {lo} to {hi}")),
    }
}

pub(crate) fn positive(v: &f64) -> Result<(), String> {
    if v.is_finite() && *v > 0.0 {
        Ok(())
    } else {
        Err("expected a positive number".into())
    }
}

pub(crate) fn any<T>(_: &T) -> Result<(), String> {
    Ok(())
}

fn read_log(mut sec: Section, errs: &mut Errors) -> LogConfig {
    let level = sec.value(errs, "level", "info".to_string(), one_of(&LOG_LEVELS));
    sec.finish(errs);
    LogConfig { level }
}

fn refusal(sec: &mut Section, errs: &mut Errors, key: &str, default: Refusal) -> Refusal {
    let default_name = if default == Refusal::Ignore {
        "ignore"
    } else {
        "kod"
    };
    match sec
        .value(
            errs,
            key,
            default_name.to_string(),
            one_of(&["ignore", "kod"]),
        )
        .as_str()
    {
        "kod" => Refusal::Kiss,
        _ => Refusal::Ignore,
    }
}

fn cidr(v: &DeValue) -> Result<Cidr, String> {
    v.as_str()
        .ok_or("expected a network as a string, e.g. \"192.168.0.0/16\"")?
        .parse()
}

/// A notice is one line of a page: long enough for a file name and a reason.
fn notice(v: &DeValue) -> Result<String, String> {
    const MAX: usize = 500;
    match v.as_str() {
        Some(s) if s.len() <= MAX && !s.contains(char::is_control) => Ok(s.to_string()),
        _ => Err(format!(
            "expected one line of text (at most {MAX} bytes) as a string"
        )),
    }
}

fn socket_addr(v: &DeValue) -> Result<SocketAddr, String> {
    v.as_str()
        .and_then(|s| s.parse::<SocketAddr>().ok())
        .ok_or_else(|| {
            "expected an address and port, e.g. \"0.0.0.0:123\" or \"[::]:123\"".to_string()
        })
}

/// The `[[source]]` tables; names must differ (they label logs, the status and metrics).
fn read_sources(
    root: &mut Section,
    errs: &mut Errors,
    keys: Option<&KeyStore>,
    profiles: &[(String, DeTable)],
) -> Vec<SourceConfig> {
    let mut list: Vec<SourceConfig> = Vec::new();
    for (mut sec, span) in root.tables(errs, "source") {
        let key = sec.key_path("name");
        let profile = sec.optional(errs, "profile", one_of(&profiles::names()));
        if let Some((name, table)) = profile.and_then(|p| profiles.iter().find(|(n, _)| *n == p)) {
            sec = sec.with_profile(errs, name, table);
        }
        if let Some(source) = sources::read_source(sec, span.clone(), errs, keys) {
            if list.iter().any(|s| s.name() == source.name()) {
                let why = format!(
                    "`{}` is the name of another source; give each its own",
                    source.name()
                );
                errs.push(span, &key, why);
            }
            list.push(source);
        }
    }
    list
}

/// The most memory the rate limiter's client tables may take, together.
const MAX_CLIENT_TABLES: usize = 256 << 20;

/// Who may ask by default: the local networks (private, link-local, unique local, loopback),
/// as the image's firewall; a public server lists its clients (or 0.0.0.0/0 and ::/0) itself.
const LOCAL_NETWORKS: &str = r#"["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "127.0.0.0/8", "fc00::/7", "fe80::/10", "::1/128"]"#;

fn local_networks() -> Vec<Cidr> {
    reader::parse_default(LOCAL_NETWORKS, cidr)
}

fn read_web(mut sec: Section, errs: &mut Errors) -> WebConfig {
    let listen = sec.array_or(errs, "listen", r#"["0.0.0.0:80", "[::]:80"]"#, socket_addr);
    let allow = sec.array(errs, "allow", cidr);
    let deny = sec.array(errs, "deny", cidr);
    let access = (allow.is_some() || deny.is_some()).then(|| AccessList {
        allow: allow.unwrap_or_else(local_networks),
        deny: deny.unwrap_or_default(),
    });
    let notices = sec.array_or(errs, "notices", "[]", notice);
    sec.finish(errs);
    WebConfig {
        listen,
        access,
        notices,
    }
}

fn read_snmp(mut sec: Section, errs: &mut Errors) -> SnmpConfig {
    let agentx = sec.path(errs, "agentx", |_| Ok(()));
    let heartbeat = sec.value(errs, "heartbeat", 60i64, in_range(1u32, 86_400)) as u32;
    sec.finish(errs);
    SnmpConfig { agentx, heartbeat }
}

/// The server's table, and its keys file's keys when it names a good one.
fn read_server(mut sec: Section, errs: &mut Errors) -> (ServerConfig, Option<KeyStore>) {
    let listen = sec.array_or(
        errs,
        "listen",
        r#"["0.0.0.0:123", "[::]:123"]"#,
        socket_addr,
    );
    let allow = sec.array_or(errs, "allow", LOCAL_NETWORKS, cidr);
    let deny = sec.array_or(errs, "deny", "[]", cidr);
    let deny_action = refusal(&mut sec, errs, "deny_action", Refusal::Ignore);
    let query_allow = sec.array_or(errs, "query_allow", r#"["127.0.0.0/8", "::1/128"]"#, cidr);
    let rate_limit = read_rate_limit(sec.table(errs, "rate_limit"), errs);
    let mut keys = None;
    let keys_file = sec.path(errs, "keys_file", |p| {
        keys = Some(KeyStore::load(p).map_err(|e| e.to_string())?);
        Ok(())
    });
    let trusted_keys = sec.array(errs, "trusted_keys", |v| {
        i64::from_toml(v)
            .and_then(|id| u32::try_from(id).ok())
            .filter(|id| *id > 0)
            .ok_or_else(|| "expected a key id from 1 to 4294967295".to_string())
    });
    let have_keys = keys_file.is_some();
    let require_auth = sec.value(errs, "require_auth", false, |required| {
        if *required && !have_keys {
            Err("requires `keys_file`".into())
        } else {
            Ok(())
        }
    });
    let threads = sec.value(errs, "threads", 1i64, in_range(1usize, 64)) as usize;
    let timestamping = sec.value(
        errs,
        "timestamping",
        "auto".to_string(),
        one_of(&Timestamping::NAMES),
    );
    let timestamping = Timestamping::parse(&timestamping).unwrap_or(Timestamping::Auto);
    // Every thread of every address has its own client table, allocated at start.
    let tables = threads * listen.len();
    // Each has an interleaved table of the same size too.
    let max_clients = rate_limit.limits.max_clients;
    let bytes = tables
        * (ratelimit::RateLimiter::bytes_for(max_clients) + Interleave::bytes_for(max_clients));
    if bytes > MAX_CLIENT_TABLES {
        let span = sec.span_of("rate_limit").unwrap_or(0..0);
        let why = format!(
            "`rate_limit.max_clients` with {tables} thread(s) and address(es) would take {} MiB; \
             at most {} MiB",
            bytes >> 20,
            MAX_CLIENT_TABLES >> 20
        );
        errs.push(span, &sec.key_path("rate_limit.max_clients"), why);
    }
    let server = ServerConfig {
        listen,
        access: AccessList { allow, deny },
        deny_action,
        query_allow,
        rate_limit,
        keys_file,
        trusted_keys,
        require_auth,
        threads,
        timestamping,
    };
    sec.finish(errs);
    (server, keys)
}

fn read_rate_limit(mut sec: Section, errs: &mut Errors) -> RateLimitConfig {
    // Read in the order the keys are documented, which is the order unknown-key errors list.
    let enabled = sec.value(errs, "enabled", true, any);
    let interval = sec.value(errs, "interval", 1.0, positive);
    let burst = sec.value(errs, "burst", 16i64, in_range(1u32, 1 << 20)) as u32;
    let action = refusal(&mut sec, errs, "action", Refusal::Kiss);
    let limits = ratelimit::Params {
        interval,
        burst,
        ipv4_prefix: sec.value(errs, "ipv4_prefix", 32i64, in_range(0u8, 32)) as u8,
        ipv6_prefix: sec.value(errs, "ipv6_prefix", 64i64, in_range(0u8, 128)) as u8,
        max_clients: sec.value(errs, "max_clients", 16384i64, in_range(16usize, 1 << 24)) as usize,
        leak: sec.value(errs, "leak", 0.25, |v: &f64| {
            match (0.0..=1.0).contains(v) {
                true => Ok(()),
                false => Err("expected a share from 0 to 1".to_string()),
            }
        }),
    };
    let config = RateLimitConfig {
        enabled,
        action,
        limits,
    };
    sec.finish(errs);
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, Vec<ConfigError>> {
        Config::parse("t.toml", text, Path::new("/etc/pitime"))
    }

    fn errors(text: &str) -> Vec<String> {
        parse(text)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn empty_file_takes_every_default() {
        let c = parse("").unwrap();
        assert_eq!(c.server.listen.len(), 2);
        assert_eq!(c.server.deny_action, Refusal::Ignore);
        assert!(c.server.rate_limit.enabled);
        assert_eq!(c.server.rate_limit.action, Refusal::Kiss);
        assert_eq!(c.server.rate_limit.limits.ipv6_prefix, 64);
        assert_eq!(c.log.level, "info");
        assert!(c.sources.is_empty());
    }

    #[test]
    fn query_allow_is_loopback_by_default_and_its_errors_are_positioned() {
        let c = parse("").unwrap();
        let shown: Vec<String> = c.server.query_allow.iter().map(|c| c.to_string()).collect();
        assert_eq!(shown, ["127.0.0.0/8", "::1/128"]);
        let c = parse("[server]\nquery_allow = [\"192.0.2.7\"]\n").unwrap();
        assert_eq!(c.server.query_allow[0].to_string(), "192.0.2.7/32");
        assert_eq!(
            errors("[server]\nquery_allow = [\"::1\", \"10.0.0.0/33\"]\n"),
            ["t.toml:2:23: `server.query_allow[1]`: prefix length `33` is not a number from 0 to 32"]
        );
    }

    #[test]
    fn notices_are_single_lines() {
        let c = parse("[web]\nnotices = [\"ignoring wifi.txt: no ssid= line\"]\n").unwrap();
        assert_eq!(c.web.notices, ["ignoring wifi.txt: no ssid= line"]);
        let long = "x".repeat(501);
        for bad in ["\"two\\nlines\"", "7", &format!("\"{long}\"")] {
            let e = errors(&format!("[web]\nnotices = [{bad}]\n"));
            assert!(
                e[0].contains("`web.notices[0]`: expected one line"),
                "{e:?}"
            );
        }
    }

    #[test]
    fn a_file_naming_only_a_source_works() {
        let c = parse("[[source]]\nkind = \"local\"\n").unwrap();
        assert_eq!(
            c.sources,
            vec![SourceConfig::Local(LocalSourceConfig {
                select: Default::default(),
                name: "local".into(),
                stratum: 10
            })]
        );
    }

    #[test]
    fn every_error_is_reported_with_position_and_key() {
        let text = "\
[server]
listen = [\"127.0.0.1:123\", \"nonsense\"]
allow = \"10.0.0.0/8\"
deny = [\"10.0.0.0/40\"]
colour = \"blue\"

[server.rate_limit]
burst = 0
interval = \"fast\"

[[source]]
kind = \"local\"
stratum = 16

[[source]]
stratum = 1

[log]
level = \"loud\"
verbose = true
";
        assert_eq!(
            errors(text),
            vec![
                "t.toml:2:28: `server.listen[1]`: expected an address and port, e.g. \"0.0.0.0:123\" or \"[::]:123\"",
                "t.toml:3:9: `server.allow`: expected an array, found string",
                "t.toml:4:9: `server.deny[0]`: prefix length `40` is not a number from 0 to 32",
                "t.toml:5:1: `server.colour`: unknown key, expected one of: listen, allow, deny, deny_action, \
                 query_allow, rate_limit, keys_file, trusted_keys, require_auth, threads, timestamping",
                "t.toml:8:9: `server.rate_limit.burst`: expected an integer from 1 to 1048576",
                "t.toml:9:12: `server.rate_limit.interval`: expected a number, found string",
                "t.toml:13:11: `source[0].stratum`: expected an integer from 1 to 15",
                "t.toml:15:1: `source[1].kind`: missing, expected one of: local, gps, dcf77, msf, wwvb, ntp (or a `profile`)",
                "t.toml:19:9: `log.level`: expected one of: error, warn, info, debug, trace",
                "t.toml:20:1: `log.verbose`: unknown key, expected one of: level",
            ]
        );
    }

    #[test]
    fn syntax_errors_have_positions_too() {
        let errs = parse("[server]\nlisten = [\n").unwrap_err();
        assert_eq!((errs[0].line, errs[0].file.as_str()), (2, "t.toml"));
        let errs = parse("a = 1\na = 2\n").unwrap_err();
        assert!(errs.iter().any(|e| e.line == 2), "{errs:?}");
    }

    #[test]
    fn unknown_source_kind_is_named() {
        assert_eq!(
            errors("[[source]]\nkind = \"sundial\"\n"),
            vec![
                "t.toml:2:8: `source[0].kind`: expected one of: local, gps, dcf77, msf, wwvb, ntp"
            ]
        );
    }

    #[test]
    fn authentication_needs_a_readable_private_keys_file() {
        let errs = errors("[server]\nrequire_auth = true\nkeys_file = \"/nonexistent/ntp.keys\"\n");
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].starts_with("t.toml:2:16: `server.require_auth`: requires `keys_file`"));
        assert!(errs[1].starts_with("t.toml:3:13: `server.keys_file`: /nonexistent/ntp.keys:"));
    }

    fn shipped(name: &str) -> Config {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("config")
            .join(name);
        Config::load(&path).unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn shipped_default_file_states_the_defaults() {
        // Except the appliance's discipline settings and NTS, which its header names.
        let mut shipped = shipped("pitime.toml");
        let d = &mut shipped.discipline;
        assert_eq!(d.actuator, ActuatorKind::Kernel);
        assert!(d.drift_file.is_some() && d.leap_file.is_some() && d.stats_dir.is_some());
        *d = DisciplineConfig::default();
        assert!(shipped.nts.enabled);
        shipped.nts.enabled = false;
        assert_eq!(shipped, parse("").unwrap());
    }

    #[test]
    fn an_integer_too_long_is_out_of_range_not_of_the_wrong_type() {
        let e = parse("[server]\nthreads = 123456789012345678901234567890\n").unwrap_err();
        assert_eq!(
            e[0].to_string(),
            "t.toml:2:11: `server.threads`: expected an integer, and this one is out of range"
        );
    }

    #[test]
    fn a_flood_of_errors_is_cut_short() {
        let text: String = (0..40_000).map(|i| format!("key{i} = 1\n")).collect();
        let e = parse(&text).unwrap_err();
        assert_eq!(e.len(), 101);
        assert_eq!(e[100].message, "and 39900 more errors");
    }

    #[test]
    fn client_tables_are_bounded_in_memory() {
        let text = "[server]\nthreads = 4\n[server.rate_limit]\nmax_clients = 16777216\n";
        let e = parse(text).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].to_string()
                .contains("would take 12288 MiB; at most 256 MiB"),
            "{e:?}"
        );
        assert!(parse("[server.rate_limit]\nmax_clients = 1048576\n").is_ok());
    }

    #[test]
    fn demo_file_is_valid() {
        assert!(!shipped("demo.toml").sources.is_empty());
    }

    #[test]
    fn every_key_of_the_default_file_is_documented() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let reference = std::fs::read_to_string(root.join("docs/configuration.md")).unwrap();
        let default = std::fs::read_to_string(root.join("config/pitime.toml")).unwrap();
        for line in default.lines() {
            let line = line.trim_start_matches("# ").trim();
            let Some((key, _)) = line.split_once(" = ") else {
                continue;
            };
            if key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                assert!(
                    reference.contains(&format!("`{key}`")),
                    "`{key}` is not in docs/configuration.md"
                );
            }
        }
    }
}

/// The shipped file's commented examples, as install.md tells users to use them.
#[cfg(test)]
mod example_blocks {
    use super::*;

    /// A commented line that is TOML: a table header or `key = value`.
    fn commented_toml(line: &str) -> Option<&str> {
        let toml = line.strip_prefix("# ")?;
        let key = toml.split(" = ").next().unwrap_or("");
        let header = toml.starts_with('[') && toml.trim_end().ends_with(']');
        let assignment = toml.contains(" = ")
            && !key.is_empty()
            && key.chars().all(|c| c.is_ascii_lowercase() || c == '_');
        (header || assignment).then_some(toml)
    }

    /// Each run of commented TOML lines, uncommented alone in an otherwise unchanged file.
    fn variants(text: &str) -> Vec<(usize, String)> {
        let lines: Vec<&str> = text.lines().collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < lines.len() {
            if commented_toml(lines[i]).is_none() {
                i += 1;
                continue;
            }
            let start = i;
            while i < lines.len() && commented_toml(lines[i]).is_some() {
                i += 1;
            }
            let mut edited = lines.clone();
            for line in &mut edited[start..i] {
                *line = commented_toml(line).unwrap();
            }
            out.push((start + 1, edited.join("\n")));
        }
        out
    }

    #[test]
    fn every_commented_block_of_the_shipped_file_passes_alone() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(root.join("config/pitime.toml")).unwrap();
        // Beside it, the keys file the server block names, as a user would have made it.
        let dir = std::env::temp_dir().join(format!("pitime-blocks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let keys = dir.join("ntp.keys");
        std::fs::write(&keys, "1 SHA256 HEX:00112233445566778899aabbccddeeff\n").unwrap();
        std::fs::set_permissions(&keys, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let blocks = variants(&text);
        assert!(blocks.len() >= 6, "found only {} blocks", blocks.len());
        for (line, variant) in blocks {
            let path = dir.join("pitime.toml");
            std::fs::write(&path, variant).unwrap();
            if let Err(e) = Config::load(&path) {
                panic!("the block at config/pitime.toml:{line}, uncommented alone: {e:?}");
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
