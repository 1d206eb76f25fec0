//! Reading what a u-blox receiver says of its own signal and pulse: spoofing detection
//! (NAV-STATUS), jamming and noise (MON-RF), and the quantisation error of the next time pulse
//! (TIM-TP). Pure; offsets from the u-blox 8 / M8 interface description
//! (UBX-13003221) and the F9 ones, which keep them.

use super::status::{Jamming, JammingState, Spoofing};
use super::ubx::UbxFrame;
use super::ubx_nav::{Payload, Truncated, GPS_EPOCH, WEEK};
use crate::time::Realtime;

/// What TIM-TP says of the next time pulse.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimePulse {
    /// The second the pulse marks, counted from the GPS epoch in GPS time (`utc` false, still
    /// to be made UTC with the leap seconds) or in UTC.
    pub seconds: i64,
    pub utc: bool,
    /// The pulse's quantisation error (its edge minus the ideal second), seconds; `None` when
    /// the receiver flags it invalid.
    pub q_error: Option<f64>,
}

impl TimePulse {
    /// The UTC second the pulse marks, given GPS - UTC when the pulse is in GPS time.
    pub fn label(&self, gps_utc: Option<i8>) -> Option<Realtime> {
        let leap = if self.utc { 0 } else { i64::from(gps_utc?) };
        let s = self.seconds.checked_add(GPS_EPOCH)? - leap;
        s.checked_mul(1_000_000_000).map(Realtime::from_nanos)
    }
}

/// The next pulse in a TIM-TP message; `Ok(None)` for other messages.
pub fn time_pulse(frame: &UbxFrame) -> Result<Option<TimePulse>, Truncated> {
    if (frame.class, frame.id) != (0x0d, 0x01) {
        return Ok(None);
    }
    let p = Payload::new(frame, "TIM-TP", 16)?;
    let flags = p.u8(14);
    let tow_ms = i64::from(p.u32(0));
    Ok(Some(TimePulse {
        seconds: i64::from(p.u16(12)) * WEEK + (tow_ms + 500) / 1000,
        utc: flags & 1 != 0,
        // qErrInvalid (bit 4) is set by receivers that know it; older ones leave it 0.
        q_error: (flags & 0x10 == 0).then(|| f64::from(p.i32(8)) * 1e-12),
    }))
}

/// The spoofing detection state in a NAV-STATUS message (flags2 bits 3-4); `Ok(None)` for
/// other messages.
pub fn spoofing(frame: &UbxFrame) -> Result<Option<Spoofing>, Truncated> {
    if (frame.class, frame.id) != (0x01, 0x03) {
        return Ok(None);
    }
    let p = Payload::new(frame, "NAV-STATUS", 16)?;
    Ok(Some(match (p.u8(7) >> 3) & 0b11 {
        1 => Spoofing::None,
        2 => Spoofing::Indicated,
        3 => Spoofing::Multiple,
        _ => Spoofing::Unknown,
    }))
}

/// The jamming state, CW jamming indicator and noise of the worst RF block in a MON-RF
/// message (one block per band: L1, L2/L5); `Ok(None)` for other messages.
pub fn jamming(frame: &UbxFrame) -> Result<Option<Jamming>, Truncated> {
    if (frame.class, frame.id) != (0x0a, 0x38) {
        return Ok(None);
    }
    let head = Payload::new(frame, "MON-RF", 4)?;
    let blocks = usize::from(head.u8(1));
    // 24-byte blocks, or 20 in the compact form some F9 firmware sends (HPS 1.30, in gpsd's
    // ublox-zed-f9r capture), which drops the last four, unread here.
    let stride = match frame.payload.len() {
        n if n == 4 + blocks * 20 && blocks > 0 => 20,
        _ => 24,
    };
    let p = Payload::new(frame, "MON-RF", 4 + blocks * stride)?;
    let worst = (0..blocks)
        .map(|b| {
            let at = 4 + b * stride;
            Jamming {
                state: match p.u8(at + 1) & 0b11 {
                    1 => JammingState::Ok,
                    2 => JammingState::Warning,
                    3 => JammingState::Critical,
                    _ => JammingState::Unknown,
                },
                indicator: p.u8(at + 16),
                noise: p.u16(at + 12),
            }
        })
        .max_by_key(|j| (j.state, j.indicator));
    Ok(worst)
}

/// Payloads as a receiver sends them, for tests here and in the simulator.
pub mod build {
    /// TIM-TP for the pulse at GPS week `week`, `tow_ms`, in UTC, with `q_error_ps`.
    pub fn tp(week: u16, tow_ms: u32, q_error_ps: i32) -> Vec<u8> {
        let mut p = vec![0u8; 16];
        p[0..4].copy_from_slice(&tow_ms.to_le_bytes());
        p[8..12].copy_from_slice(&q_error_ps.to_le_bytes());
        p[12..14].copy_from_slice(&week.to_le_bytes());
        p[14] = 0b11; // UTC time base, UTC available
        p
    }

    /// NAV-STATUS with a 3D fix and spoofing detection state `state` (0..=3).
    pub fn status(state: u8) -> Vec<u8> {
        let mut p = vec![0u8; 16];
        p[4] = 3;
        p[5] = 0b1101;
        p[7] = (state & 0b11) << 3;
        p
    }

    /// MON-RF with one block: jamming state (0..=3), CW indicator and noise per ms.
    pub fn rf(state: u8, indicator: u8, noise: u16) -> Vec<u8> {
        let mut p = vec![0u8; 4 + 24];
        p[1] = 1;
        p[4 + 1] = state & 0b11;
        p[4 + 2] = 2; // antenna OK
        p[4 + 12..4 + 14].copy_from_slice(&noise.to_le_bytes());
        p[4 + 16] = indicator;
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(class: u8, id: u8, payload: Vec<u8>) -> UbxFrame {
        UbxFrame { class, id, payload }
    }

    #[test]
    fn nav_status_gives_the_spoofing_state() {
        let read = |s| spoofing(&frame(1, 3, build::status(s))).unwrap().unwrap();
        assert_eq!(read(0), Spoofing::Unknown);
        assert_eq!(read(1), Spoofing::None);
        assert_eq!(read(2), Spoofing::Indicated);
        assert_eq!(read(3), Spoofing::Multiple);
        assert!(read(2).is_alarm() && read(3).is_alarm() && !read(1).is_alarm());
        assert!(spoofing(&frame(1, 3, vec![0; 15])).is_err());
        assert_eq!(spoofing(&frame(1, 7, vec![])), Ok(None));
    }

    #[test]
    fn mon_rf_gives_the_worst_block() {
        let j = jamming(&frame(0x0a, 0x38, build::rf(2, 140, 87)))
            .unwrap()
            .unwrap();
        assert_eq!(
            j,
            Jamming {
                state: JammingState::Warning,
                indicator: 140,
                noise: 87
            }
        );
        // Two blocks: L1 fine, L2 critical.
        let mut p = build::rf(1, 3, 80);
        p[1] = 2;
        p.extend(&build::rf(3, 250, 120)[4..]);
        let j = jamming(&frame(0x0a, 0x38, p)).unwrap().unwrap();
        assert_eq!((j.state, j.indicator), (JammingState::Critical, 250));
        // The compact form: 20-byte blocks.
        let mut p = build::rf(2, 33, 69);
        p.truncate(4 + 20);
        let j = jamming(&frame(0x0a, 0x38, p)).unwrap().unwrap();
        assert_eq!(
            (j.state, j.indicator, j.noise),
            (JammingState::Warning, 33, 69)
        );
    }

    #[test]
    fn tim_tp_gives_the_next_pulse_and_its_quantisation_error() {
        // GPS week 1958, Wednesday 08:50:19: 2017-07-19T08:50:01Z with 18 leap seconds.
        let mut p = build::tp(1958, 291_019_000, -4_321);
        p[14] = 0; // GPS time base
        let tp = time_pulse(&frame(0x0d, 1, p.clone())).unwrap().unwrap();
        assert_eq!(tp.q_error, Some(-4.321e-9));
        assert_eq!(tp.label(None), None);
        let label = tp.label(Some(18)).unwrap();
        let utc = crate::time::UtcTime::from_realtime(label);
        assert_eq!(utc.to_string(), "2017-07-19T08:50:01.000Z");
        p[14] = 0x10;
        assert_eq!(
            time_pulse(&frame(0x0d, 1, p)).unwrap().unwrap().q_error,
            None
        );
        assert!(time_pulse(&frame(0x0d, 1, vec![0; 15])).is_err());
        assert_eq!(time_pulse(&frame(0x0d, 2, vec![])), Ok(None));
    }

    #[test]
    fn lying_block_counts_and_short_payloads_are_errors() {
        // Says five blocks, carries one.
        let mut p = build::rf(1, 3, 80);
        p[1] = 5;
        assert!(jamming(&frame(0x0a, 0x38, p)).is_err());
        assert!(jamming(&frame(0x0a, 0x38, vec![0; 3])).is_err());
        // No blocks: nothing to say.
        assert_eq!(jamming(&frame(0x0a, 0x38, vec![0; 4])), Ok(None));
        for len in 0..40 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 91 % 256) as u8).collect();
            let _ = jamming(&frame(0x0a, 0x38, junk.clone()));
            let _ = spoofing(&frame(1, 3, junk));
        }
    }
}
