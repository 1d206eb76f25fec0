//! The sources as ntpq sees them, published once a second for the NTP workers' mode 6 answers.

use crate::config::SourceKind;
use crate::discipline::{refid_text, Discipline, SourceReport};
use crate::server::control::{source, Association, ControlView, LoopView, Origin};
use crate::time::Realtime;
use crate::web::status::DriverStatus;

/// Association ids from 1 in configuration order; reference clocks at ntpd's pseudo-addresses
/// (127.127.TYPE.UNIT, with ntpd's driver types: NMEA 20, the DCF77 parse driver 8, LOCAL 1),
/// NTP servers at their addresses with their own reach register and refid.
pub(super) fn view(
    sources: &[SourceReport],
    drivers: DriverStatus,
    discipline: &Discipline,
    now: Realtime,
) -> ControlView {
    // The next unit of each ntpd driver type.
    let mut units = [0u8; 3];
    let associations = sources
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let upstream = drivers
                .upstream
                .iter()
                .find(|(name, _)| *name == r.name)
                .map(|(_, status)| status);
            let mut refclock = |unit_of: usize, driver, source| {
                let unit = units[unit_of];
                units[unit_of] = unit.saturating_add(1);
                Origin::Refclock {
                    driver,
                    unit,
                    source,
                }
            };
            let (origin, refid) = match r.kind {
                SourceKind::Gps if r.refid.as_deref() == Some("PPS") => {
                    (refclock(0, 20, source::PPS), "PPS")
                }
                SourceKind::Gps => (refclock(0, 20, source::UHF_RADIO), "GPS"),
                SourceKind::Dcf77 => (refclock(1, 8, source::LF_RADIO), "DCF"),
                SourceKind::Msf => (refclock(1, 8, source::LF_RADIO), "MSF"),
                SourceKind::Wwvb => (refclock(1, 8, source::LF_RADIO), "WWVB"),
                SourceKind::Local => (refclock(2, 1, source::LOCAL), "LOCL"),
                SourceKind::Ntp => (Origin::Server(upstream.and_then(|u| u.address)), "INIT"),
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
    let loop_view = discipline
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
