//! NTS in the daemon: the cookie keys (read at start, rotated, written, shared through the
//! file), the certificate (configured or from the local CA, renewed, reloaded on SIGHUP), and
//! the NTS-KE server.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use arc_swap::ArcSwap;

use crate::alarm::Alarm;
use crate::config::NtsConfig;
use crate::ntp::nts::KE_PORT;
use crate::server::nts::certs::{self, Identity};
use crate::server::nts::cookie::{CookieKeys, MASTER_KEY_LEN};
use crate::server::nts::exchange::Referral;
use crate::server::nts::ke::{KeServer, KeShared, KeStats, Limits};
use crate::server::nts::keyfile;
use crate::server::respond::Policy;
use crate::server::Shared;
use crate::time::{Realtime, UtcTime};
use crate::web::status::{LocalCaView, NtsView};

/// How often the keys file and the certificate are looked at.
const CHECK_EVERY: Duration = Duration::from_secs(60);
const KEYS_FILE: &str = "nts-keys";

pub struct Nts {
    config: NtsConfig,
    keys_path: PathBuf,
    /// The keys file's modification time when last read or written: another server sharing
    /// the file may rotate it.
    seen: Option<SystemTime>,
    keys: Arc<CookieKeys>,
    pub ke_shared: Arc<KeShared>,
    ke: Option<KeServer>,
    last_check: Instant,
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn random_key() -> anyhow::Result<([u8; MASTER_KEY_LEN], u32)> {
    let mut key = [0u8; MASTER_KEY_LEN];
    let mut id = [0u8; 4];
    getrandom::fill(&mut key)
        .and_then(|()| getrandom::fill(&mut id))
        .map_err(|e| anyhow::anyhow!("no random numbers for an NTS key: {e}"))?;
    Ok((key, u32::from_be_bytes(id)))
}

fn modified(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The certificate the configuration names, or the local CA's.
fn identity(config: &NtsConfig) -> anyhow::Result<Identity> {
    Ok(match &config.certificate {
        Some((cert, key)) => certs::load(cert, key)?,
        None => certs::local(&config.state_dir, &local_names(), unix_now())?,
    })
}

fn referral(config: &NtsConfig) -> Referral {
    Referral {
        server: config.ntp_server.clone(),
        port: config.ntp_port,
    }
}

impl Nts {
    /// Reads (or makes) the keys and the certificate and starts the KE server; `None` when
    /// NTS is off.
    pub fn start(config: &NtsConfig, ntp: &Arc<Shared>) -> anyhow::Result<Option<Nts>> {
        if !config.enabled {
            return Ok(None);
        }
        std::fs::create_dir_all(&config.state_dir)
            .with_context(|| format!("creating {}", config.state_dir.display()))?;
        let keys_path = config.state_dir.join(KEYS_FILE);
        let keys = keyfile::load(&keys_path)?;
        let identity = identity(config)?;
        let ke_shared = Arc::new(KeShared {
            ntp: ntp.clone(),
            identity: ArcSwap::from_pointee(identity),
            referral: ArcSwap::from_pointee(referral(config)),
            stats: KeStats::default(),
        });
        let mut nts = Nts {
            config: config.clone(),
            seen: modified(&keys_path),
            keys_path,
            keys: Arc::new(keys),
            ke_shared,
            ke: None,
            last_check: Instant::now(),
        };
        nts.rotate()?;
        ntp.policy
            .store(Arc::new(nts.with_keys((**ntp.policy.load()).clone())));
        // Without its KE server (its port taken, say), NTS still answers clients holding cookies.
        nts.ke = nts.start_ke().map_err(|e| tracing::error!("{e:#}")).ok();
        Ok(Some(nts))
    }

    fn start_ke(&self) -> anyhow::Result<KeServer> {
        let limits = Limits {
            max_connections: self.config.max_connections,
            timeout: self.config.timeout,
        };
        KeServer::start(&self.config.listen, limits, self.ke_shared.clone())
            .with_context(|| format!("cannot serve NTS-KE on {:?}", self.config.listen))
    }

    /// The policy with the current cookie keys.
    pub fn with_keys(&self, mut policy: Policy) -> Policy {
        policy.nts = Some(self.keys.clone());
        policy
    }

    /// Rotates the keys if due and writes them; `true` if they changed.
    fn rotate(&mut self) -> anyhow::Result<bool> {
        let (fresh, id) = random_key()?;
        let Some(rotated) = self
            .keys
            .rotated(unix_now(), self.config.rotation, fresh, id)
        else {
            return Ok(false);
        };
        keyfile::save(&self.keys_path, &rotated)?;
        self.seen = modified(&self.keys_path);
        self.keys = Arc::new(rotated);
        tracing::info!(
            key = self.keys.newest().map_or(0, |k| k.id),
            "new NTS cookie key"
        );
        Ok(true)
    }

    /// Once a minute: the keys file read again if another server changed it, the keys rotated
    /// when due, the local certificate renewed when due; the server's policy updated.
    pub fn tick(&mut self, ntp: &Shared) {
        if self.last_check.elapsed() < CHECK_EVERY {
            return;
        }
        self.last_check = Instant::now();
        let mut changed = false;
        let on_disk = modified(&self.keys_path);
        if on_disk != self.seen {
            match keyfile::load(&self.keys_path) {
                Ok(keys) => {
                    changed = *self.keys != keys;
                    self.keys = Arc::new(keys);
                    self.seen = on_disk;
                }
                Err(e) => tracing::error!("{e}; keeping the NTS keys in use"),
            }
        }
        match self.rotate() {
            Ok(rotated) => changed |= rotated,
            Err(e) => tracing::error!("NTS key rotation: {e:#}"),
        }
        if changed {
            ntp.policy
                .store(Arc::new(self.with_keys((**ntp.policy.load()).clone())));
        }
        let identity = self.ke_shared.identity.load();
        let due = identity
            .expires
            .is_some_and(|t| t <= unix_now() + certs::RENEW_BEFORE);
        if identity.local_ca.is_some() && due {
            self.reload_identity();
        }
    }

    fn reload_identity(&self) {
        match identity(&self.config) {
            Ok(id) => self.ke_shared.identity.store(Arc::new(id)),
            Err(e) => tracing::error!("NTS certificate: {e:#}; keeping the one in use"),
        }
    }

    /// SIGHUP: the certificate read again (renewed by an ACME client, say), the KE server
    /// restarted if its address or limits changed. Turning NTS on or off is `Daemon`'s.
    pub fn reload(&mut self, config: &NtsConfig) {
        let restart = config.listen != self.config.listen
            || config.max_connections != self.config.max_connections
            || config.timeout != self.config.timeout;
        if config.state_dir != self.config.state_dir {
            tracing::warn!("`nts.state_dir` takes effect at the next restart");
        }
        let state_dir = self.config.state_dir.clone();
        self.config = NtsConfig {
            state_dir,
            ..config.clone()
        };
        self.reload_identity();
        self.ke_shared.referral.store(Arc::new(referral(config)));
        if restart {
            if let Some(ke) = self.ke.take() {
                ke.stop();
            }
            self.ke = self.start_ke().map_err(|e| tracing::error!("{e:#}")).ok();
        }
    }

    /// What the status page shows at `now` (Unix seconds), and its alarm if the certificate
    /// nears its expiry.
    pub fn view(&self, now: u64) -> (NtsView, Option<Alarm>) {
        let identity = self.ke_shared.identity.load();
        let stats = &self.ke_shared.stats;
        let local_ca = identity.local_ca.as_ref().map(|ca| {
            let host = self.host();
            let port = self.ke.as_ref().and_then(|k| k.local.first()).map(|a| a.port());
            let ntsport = port.filter(|p| *p != KE_PORT).map_or(String::new(), |p| format!(" ntsport {p}"));
            let address = port.filter(|p| *p != KE_PORT).map_or(host.clone(), |p| format!("{host}:{p}"));
            LocalCaView {
                fingerprint: ca.fingerprint.clone(),
                pem: ca.pem.clone(),
                chrony: format!(
                    "server {host} iburst nts{ntsport}\nntstrustedcerts /etc/chrony/pitime-ca.pem"
                ),
                ntpd_rs: format!(
                    "[[source]]\nmode = \"nts\"\naddress = \"{address}\"\ncertificate-authority = \"/etc/ntpd-rs/pitime-ca.pem\""
                ),
            }
        });
        let view = NtsView {
            ke_listen: self
                .ke
                .iter()
                .flat_map(|k| k.local.iter().map(ToString::to_string))
                .collect(),
            ke_sessions: stats.sessions(),
            ke_failures: stats.failures(),
            cookie_keys: self.keys.keys().len(),
            cookie_key_age_seconds: self
                .keys
                .newest()
                .map(|k| now.saturating_sub(k.created) as f64),
            certificate_expires: identity.expires.map(|t| {
                UtcTime::from_realtime(Realtime::from_nanos(t as i64 * 1_000_000_000)).to_string()
            }),
            certificate_expires_unix: identity.expires,
            certificate_fingerprint: identity.fingerprint.clone(),
            local_ca,
        };
        (view, certs::expiry_alarm(identity.expires, now))
    }

    /// The name clients should use for this server: its mDNS name if it has one.
    fn host(&self) -> String {
        let names = local_names();
        names
            .iter()
            .find(|n| n.ends_with(".local"))
            .or(names.first())
            .cloned()
            .unwrap_or_else(|| "localhost".to_string())
    }

    pub fn stop(mut self) {
        if let Some(ke) = self.ke.take() {
            ke.stop();
        }
    }
}

/// This machine's host name and addresses, for the local certificate.
fn local_names() -> Vec<String> {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    certs::machine_names(&host, &addresses())
}

/// The addresses of the machine's interfaces (not link-local IPv6, which needs a zone).
fn addresses() -> Vec<IpAddr> {
    let mut list = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list that freeifaddrs releases; each entry's
    // address is read only when present and of the family it says.
    unsafe {
        if libc::getifaddrs(&mut head) != 0 {
            return list;
        }
        let mut entry = head;
        while !entry.is_null() {
            let addr = (*entry).ifa_addr;
            if !addr.is_null() {
                match i32::from((*addr).sa_family) {
                    libc::AF_INET => {
                        let a = &*(addr as *const libc::sockaddr_in);
                        list.push(IpAddr::from(u32::from_be(a.sin_addr.s_addr).to_be_bytes()));
                    }
                    libc::AF_INET6 => {
                        let a = &*(addr as *const libc::sockaddr_in6);
                        let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
                        if ip.segments()[0] & 0xffc0 != 0xfe80 {
                            list.push(IpAddr::V6(ip));
                        }
                    }
                    _ => {}
                }
            }
            entry = (*entry).ifa_next;
        }
        libc::freeifaddrs(head);
    }
    list.sort();
    list.dedup();
    list
}
