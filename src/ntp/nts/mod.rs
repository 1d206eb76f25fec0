//! Network Time Security (RFC 8915) on the wire: the NTS-KE records exchanged over TLS
//! (`record`), the NTP extension fields that carry cookies and authenticators (`extension`),
//! and the AEAD algorithms both use (`aead`). Pure.

pub mod aead;
pub mod client;
pub mod extension;
pub mod ke_client;
pub mod record;

/// The TLS exporter label from which both sides derive the NTP keys (RFC 8915 section 5.1).
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-network-time-security";
/// The ALPN protocol name of NTS-KE.
pub const ALPN: &[u8] = b"ntske/1";
/// The NTS-KE port (RFC 8915 section 4).
pub const KE_PORT: u16 = 4460;
/// Next Protocol id of NTPv4.
pub const PROTOCOL_NTPV4: u16 = 0;

/// The exporter context for one direction: NTPv4, the algorithm, 0 client-to-server or 1
/// server-to-client (RFC 8915 section 5.1).
pub fn exporter_context(algorithm: aead::Algorithm, s2c: bool) -> [u8; 5] {
    let [p0, p1] = PROTOCOL_NTPV4.to_be_bytes();
    let [a0, a1] = algorithm.id().to_be_bytes();
    [p0, p1, a0, a1, u8::from(s2c)]
}
