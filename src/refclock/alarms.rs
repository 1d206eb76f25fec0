//! What the receivers' published status says is wrong, as alarms with a hint at the fix: the
//! hardware traps that otherwise leave a server answering at the wrong accuracy without saying
//! why. Pure: silences run from the status's CLOCK_MONOTONIC stamps to `now`, on that clock.

use crate::alarm::{Alarm, AlarmKind};
use crate::refclock::gps::clock::JumpEvent;
use crate::refclock::gps::driver::GpsStatus;
use crate::refclock::gps::status::FixType;
use crate::refclock::longwave::driver::LongwaveStatus;

/// A receiver sends every second: this long without data, or without a good sentence, is a
/// fault, not a hiccup.
pub const SERIAL_QUIET: f64 = 10.0;
/// Many receivers start pulsing only some seconds after their fix.
pub const PPS_QUIET: f64 = 15.0;
/// A longwave module needs two or three minutes for a first minute from a clean signal (WWVB,
/// without parities, a minute more).
pub const LONGWAVE_QUIET: f64 = 600.0;

/// Seconds from `since` to `now`, CLOCK_MONOTONIC nanoseconds.
fn seconds(now: i64, since: i64) -> f64 {
    (now - since) as f64 / 1e9
}

pub fn gps(name: &str, g: &GpsStatus, now: i64) -> Vec<Alarm> {
    let mut alarms = Vec::new();
    let mut raise = |kind, text: String| alarms.push(Alarm::new(name, kind, text));
    if g.receiver.antenna.is_fault() {
        let state = g.receiver.antenna.name();
        raise(AlarmKind::AntennaFault, format!("antenna {state}"));
    }
    if g.receiver.spoofing.is_alarm() {
        let state = g.receiver.spoofing.name();
        raise(
            AlarmKind::Spoofing,
            format!("receiver reports spoofing ({state}): its time is watched, not followed"),
        );
    }
    if let Some(j) = g.receiver.jamming.filter(|j| j.is_alarm()) {
        let (state, indicator, noise) = (j.state.name(), j.indicator, j.noise);
        raise(
            AlarmKind::Jamming,
            format!(
                "receiver reports jamming: state {state}, CW indicator {indicator}/255, noise \
                 {noise}: look for a transmitter or a noisy device near the antenna"
            ),
        );
    }
    if let Some(JumpEvent::JumpRejected { seconds }) = g.alarm {
        let text = format!("time jumped by {seconds:.0} s, not followed");
        raise(AlarmKind::ReceiverJump, text);
    }
    let device = &g.device;
    if let Some(why) = &g.device_error {
        raise(
            AlarmKind::DeviceMissing,
            format!(
                "cannot open {device} ({why}): check that the receiver is plugged in and \
                 `device`; `pitime detect` finds it"
            ),
        );
    }
    // Silences count from the opening: a receiver is not silent before it could be heard.
    let Some(opened) = g.heard.opened else {
        return alarms;
    };
    let quiet = |t: Option<i64>| seconds(now, t.map_or(opened, |t| t.max(opened)));
    let pps_quiet = |fix: i64| seconds(now, g.heard.pulse.map_or(fix, |p| p.max(fix)));
    if quiet(g.heard.bytes) > SERIAL_QUIET {
        raise(
            AlarmKind::SerialSilent,
            format!(
                "no data from {device}: check the wiring (the receiver's TX to the Pi's RX), the \
                 baud rate, and that no serial console uses the port; `pitime detect` finds the \
                 port and its speed"
            ),
        );
    } else if quiet(g.heard.sentence) > SERIAL_QUIET {
        raise(
            AlarmKind::SerialGarbage,
            format!(
                "no valid sentence from {device}, only unreadable bytes: check the baud rate \
                 (`baud`) and the wiring; `pitime detect` finds the speed"
            ),
        );
    } else if let (Some(pps), Some(fix)) = (&g.pps, g.heard.fix) {
        if g.receiver.fix != FixType::None && pps_quiet(fix) > PPS_QUIET {
            let why = g
                .pps_error
                .as_ref()
                .map_or(String::new(), |e| format!(" (cannot open it: {e})"));
            raise(
                AlarmKind::PpsSilent,
                format!(
                    "no PPS pulses on {pps}{why} while the receiver has a fix, so its time is \
                     only as good as NMEA (milliseconds, not microseconds): check the PPS wire \
                     and its GPIO pin (the Adafruit HAT uses GPIO 4, most others 18; `pitime \
                     detect` finds it)"
                ),
            );
        }
    }
    alarms
}

/// A DCF77, MSF or WWVB receiver's alarms, naming its station. `followed`: the discipline
/// follows this source now.
pub fn longwave(name: &str, d: &LongwaveStatus, followed: bool, now: i64) -> Vec<Alarm> {
    let mut alarms = Vec::new();
    let (station, kind) = (d.station.label(), d.station.name());
    let mut raise = |kind, text: String| alarms.push(Alarm::new(name, kind, text));
    if let Some(why) = &d.line_error {
        raise(
            AlarmKind::LongwaveLineMissing,
            format!(
                "cannot open the {station} {why}: check `chip` and `line` and that no other \
                 program holds the line; `pitime detect` finds it"
            ),
        );
    } else if let Some(opened) = d.opened {
        let since = d.last_minute.map_or(opened, |m| m.max(opened));
        if seconds(now, since) > LONGWAVE_QUIET {
            raise(
                AlarmKind::LongwaveNoMinute,
                format!(
                    "no minute decoded for {:.0} minutes: put the antenna a metre or more from \
                     the Pi, its power supply and screens, broadside to the transmitter; try \
                     `active_low = true` if the module's output is inverted; `pitime capture \
                     dcf77` records the signal and `pitime replay {kind}` decodes it",
                    LONGWAVE_QUIET / 60.0
                ),
            );
        }
    }
    if followed && d.receiver_delay.is_none() {
        raise(
            AlarmKind::LongwaveNoDelay,
            format!(
                "followed without `receiver_delay`: {station} modules are tens of milliseconds \
                 late, and so is the time served; measure the delay (docs/operations.md) and \
                 set it"
            ),
        );
    }
    alarms
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::refclock::gps::driver::Heard;

    const S: i64 = 1_000_000_000;

    fn kinds(alarms: &[Alarm]) -> Vec<AlarmKind> {
        alarms.iter().map(|a| a.kind).collect()
    }

    /// A receiver opened at 100 s, sending good sentences with a 3D fix since 105 s, and
    /// pulses on /dev/pps0 until `last_pulse`.
    fn receiver(last_pulse: Option<i64>) -> GpsStatus {
        let mut g = GpsStatus {
            device: "/dev/serial0".into(),
            pps: Some("/dev/pps0".into()),
            heard: Heard {
                opened: Some(100 * S),
                bytes: Some(200 * S),
                sentence: Some(200 * S),
                pulse: last_pulse,
                fix: Some(105 * S),
            },
            ..GpsStatus::default()
        };
        g.receiver.fix = FixType::ThreeD;
        g
    }

    #[test]
    fn a_missing_pps_is_raised_some_seconds_after_the_fix_and_says_what_it_costs() {
        // Never a pulse: raised once the fix is PPS_QUIET old.
        let g = receiver(None);
        assert!(gps("gps", &g, 119 * S).is_empty());
        let alarms = gps("gps", &g, 121 * S);
        assert_eq!(kinds(&alarms), [AlarmKind::PpsSilent]);
        let text = &alarms[0].text;
        assert!(
            text.starts_with("gps: no PPS pulses on /dev/pps0 while"),
            "{text}"
        );
        assert!(text.contains("only as good as NMEA") && text.contains("GPIO 4"));
        // Pulses that stop: raised PPS_QUIET after the last.
        let g = receiver(Some(190 * S));
        assert!(gps("gps", &g, 200 * S).is_empty());
        assert_eq!(kinds(&gps("gps", &g, 206 * S)), [AlarmKind::PpsSilent]);
        // Why it cannot be opened, when it cannot.
        let mut g = receiver(None);
        g.pps_error = Some("No such file or directory".into());
        let text = &gps("gps", &g, 121 * S)[0].text;
        assert!(text.contains("/dev/pps0 (cannot open it: No such file or directory) while"));
    }

    #[test]
    fn spoofing_and_jamming_reported_by_the_receiver_are_alarms() {
        use crate::refclock::gps::status::{Jamming, JammingState, Spoofing};
        let mut g = receiver(Some(119 * S));
        g.receiver.spoofing = Spoofing::None;
        g.receiver.jamming = Some(Jamming {
            state: JammingState::Ok,
            indicator: 12,
            noise: 80,
        });
        assert!(gps("gps", &g, 120 * S).is_empty());
        g.receiver.spoofing = Spoofing::Indicated;
        // A strong CW indicator is an alarm whatever the receiver's own state says.
        g.receiver.jamming = Some(Jamming {
            state: JammingState::Ok,
            indicator: 230,
            noise: 140,
        });
        let alarms = gps("gps", &g, 120 * S);
        assert_eq!(kinds(&alarms), [AlarmKind::Spoofing, AlarmKind::Jamming]);
        assert!(alarms[0].text.contains("watched, not followed"));
        assert!(alarms[1].text.contains("CW indicator 230/255, noise 140"));
    }

    #[test]
    fn no_pps_alarm_without_a_fix_or_a_configured_pps() {
        // Many modules pulse only with a fix.
        let mut g = receiver(None);
        g.receiver.fix = FixType::None;
        g.heard.fix = None;
        assert!(gps("gps", &g, 200 * S).is_empty());
        let mut g = receiver(None);
        g.pps = None;
        assert!(gps("gps", &g, 200 * S).is_empty());
    }

    #[test]
    fn a_silent_or_garbled_serial_port_is_raised_after_serial_quiet() {
        let mut g = receiver(Some(200 * S));
        g.heard.bytes = None;
        g.heard.sentence = None;
        // Counted from the opening.
        assert!(gps("gps", &g, 109 * S).is_empty());
        let alarms = gps("gps", &g, 111 * S);
        assert_eq!(kinds(&alarms), [AlarmKind::SerialSilent]);
        assert!(alarms[0]
            .text
            .starts_with("gps: no data from /dev/serial0: "));
        // Bytes, but none a good sentence: a wrong baud rate.
        g.heard.bytes = Some(110 * S);
        let alarms = gps("gps", &g, 111 * S);
        assert_eq!(kinds(&alarms), [AlarmKind::SerialGarbage]);
        assert!(alarms[0].text.contains("check the baud rate"));
        // Sentences from before a reopening do not count against the new port.
        g.heard.sentence = Some(50 * S);
        assert!(gps("gps", &g, 105 * S).is_empty());
    }

    #[test]
    fn a_device_that_cannot_be_opened_is_raised_at_once() {
        let g = GpsStatus {
            device: "/dev/ttyACM0".into(),
            device_error: Some("No such file or directory (os error 2)".into()),
            ..GpsStatus::default()
        };
        let alarms = gps("gps", &g, 0);
        assert_eq!(kinds(&alarms), [AlarmKind::DeviceMissing]);
        assert!(alarms[0]
            .text
            .starts_with("gps: cannot open /dev/ttyACM0 (No such file or directory (os error 2))"));
    }

    #[test]
    fn dcf77_without_a_minute_for_ten_minutes_and_without_a_delay_when_followed() {
        let d = LongwaveStatus {
            opened: Some(0),
            ..LongwaveStatus::default()
        };
        assert!(longwave("dcf77", &d, false, 600 * S).is_empty());
        let alarms = longwave("dcf77", &d, false, 601 * S);
        assert_eq!(kinds(&alarms), [AlarmKind::LongwaveNoMinute]);
        assert!(alarms[0].text.contains("no minute decoded for 10 minutes"));
        assert!(alarms[0].text.contains("active_low") && alarms[0].text.contains("capture"));
        // A minute accepted since: quiet again for ten minutes.
        let d = LongwaveStatus {
            last_minute: Some(300 * S),
            ..d
        };
        assert!(longwave("dcf77", &d, false, 900 * S).is_empty());
        // Followed without a measured delay; a delay of 0 measured is fine.
        let alarms = longwave("dcf77", &d, true, 900 * S);
        assert_eq!(kinds(&alarms), [AlarmKind::LongwaveNoDelay]);
        assert!(alarms[0].text.contains("docs/operations.md"));
        let measured = LongwaveStatus {
            receiver_delay: Some(0.0),
            ..d
        };
        assert!(longwave("dcf77", &measured, true, 900 * S).is_empty());
        let missing = LongwaveStatus {
            line_error: Some("line 17 of /dev/gpiochip0: busy".into()),
            ..LongwaveStatus::default()
        };
        let text = &longwave("dcf77", &missing, false, 900 * S)[0].text;
        assert!(text.starts_with("dcf77: cannot open the DCF77 line 17 of /dev/gpiochip0: busy"));
    }

    #[test]
    fn an_msf_receivers_alarms_name_msf_not_dcf77() {
        use crate::refclock::longwave::station::StationKind;
        let d = LongwaveStatus {
            station: StationKind::Msf,
            opened: Some(0),
            ..LongwaveStatus::default()
        };
        let alarms = longwave("anthorn", &d, true, 601 * S);
        assert_eq!(
            kinds(&alarms),
            [AlarmKind::LongwaveNoMinute, AlarmKind::LongwaveNoDelay]
        );
        assert!(alarms[0].text.contains("`pitime replay msf`"));
        assert!(alarms[1].text.contains("MSF modules are"));
        let missing = LongwaveStatus {
            line_error: Some("line 17 of /dev/gpiochip0: busy".into()),
            ..d
        };
        let text = &longwave("anthorn", &missing, false, 0)[0].text;
        assert!(
            text.starts_with("anthorn: cannot open the MSF line 17"),
            "{text}"
        );
        assert!(alarms.iter().all(|a| !a.text.contains("DCF77")));
    }
}
