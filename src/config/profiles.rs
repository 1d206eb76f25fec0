//! Receiver profiles: the wiring and timing of common hardware, so that `profile = "..."` on a
//! `[[source]]` replaces guessing pins and polarities. A key set in the source overrides the
//! profile's. Each profile is TOML, read exactly like a source's own keys; docs/hardware.md has
//! the table of boards, pins and what the status page shows when each works.
//!
//! Paths name the image's stable devices: /dev/serial0 (the header UART on every Pi),
//! /dev/pps0 (pps-gpio on GPIO 18, from pitime's overlay) and /dev/gpiochip-header (the
//! header's GPIO chip, which on a Pi 5 is not gpiochip0).

pub struct Profile {
    pub name: &'static str,
    /// The hardware, for `check-config` messages and the docs.
    pub hardware: &'static str,
    pub settings: &'static str,
}

pub const PROFILES: &[Profile] = &[
    Profile {
        name: "adafruit-ultimate-gps-hat",
        hardware: "Adafruit Ultimate GPS HAT (MediaTek MT3339): UART on GPIO 14/15, PPS on GPIO 4",
        // The HAT's pulse is on GPIO 4, not the pps-gpio overlay's 18: read it as GPIO edges.
        settings: r#"
kind = "gps"
device = "/dev/serial0"
baud = 9600
pps = "/dev/gpiochip-header:4"
"#,
    },
    Profile {
        name: "uputronics-gps-hat",
        hardware: "Uputronics GPS/RTC HAT V6.0 and later (u-blox M8): UART at 115200 baud, PPS on \
                   GPIO 18 (boards before V6.0 run at 9600: set baud = 9600)",
        settings: r#"
kind = "gps"
device = "/dev/serial0"
baud = 115200
pps = "/dev/pps0"
"#,
    },
    Profile {
        name: "ublox-usb",
        hardware: "u-blox USB receiver (VK-172 and other u-blox 7/8 USB sticks): /dev/ttyACM0, no \
                   pulse, so serial timing only (about a millisecond, stratum 1 with refid NMEA)",
        settings: r#"
kind = "gps"
device = "/dev/ttyACM0"
baud = 9600
pps = ""
"#,
    },
    Profile {
        name: "gps-breakout",
        hardware: "a generic u-blox NEO-6M/NEO-M8N breakout: its TX to GPIO 15 (pin 10), RX to \
                   GPIO 14 (pin 8), PPS to GPIO 18 (pin 12); for another pin, set \
                   pps = \"/dev/gpiochip-header:N\"",
        settings: r#"
kind = "gps"
device = "/dev/serial0"
baud = 9600
pps = "/dev/pps0"
"#,
    },
    Profile {
        name: "pollin-dcf1",
        hardware: "Pollin DCF1 (810054): a weak push-pull output that a pull-up would overpower, \
                   active high; PON must go from high to low after power-up (wire PON to a GPIO \
                   and set pon_line, or to GND)",
        // The delay is a typical figure for such modules, not a measurement of this one
        // (docs/operations.md says how to measure yours).
        settings: r#"
kind = "dcf77"
chip = "/dev/gpiochip-header"
line = 17
active_low = false
bias = "disabled"
pon_level = 0
receiver_delay = 0.04
"#,
    },
    Profile {
        name: "conrad-dcf77",
        hardware: "Conrad DCF77 receiver module (641138): open-collector output that needs the \
                   pull-up; use the non-inverted output",
        // 28 ms is a published measurement of this module's delay (radioclkd2 against GPS).
        settings: r#"
kind = "dcf77"
chip = "/dev/gpiochip-header"
line = 17
active_low = false
bias = "pull-up"
receiver_delay = 0.028
"#,
    },
    Profile {
        name: "elv-dcf77",
        hardware: "ELV DCF-2 and DCF-3 receiver modules: open-collector output that needs the \
                   pull-up; use the non-inverted output",
        settings: r#"
kind = "dcf77"
chip = "/dev/gpiochip-header"
line = 17
active_low = false
bias = "pull-up"
receiver_delay = 0.04
"#,
    },
];

/// The profile names, for error messages.
pub fn names() -> Vec<&'static str> {
    PROFILES.iter().map(|p| p.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::sources::parse_text as parse;
    use crate::config::{PpsInput, SourceConfig};

    #[test]
    fn every_profile_alone_is_a_valid_source() {
        for p in PROFILES {
            let c = parse(&format!("[[source]]\nprofile = \"{}\"\n", p.name))
                .unwrap_or_else(|e| panic!("{}: {e:?}", p.name));
            assert_eq!(c.sources.len(), 1);
        }
    }

    #[test]
    fn a_profile_sets_the_wiring_and_the_source_overrides_it() {
        let c = parse("[[source]]\nprofile = \"adafruit-ultimate-gps-hat\"\n").unwrap();
        let SourceConfig::Gps(g) = &c.sources[0] else {
            panic!("a gps source")
        };
        let line4 = PpsInput::Gpio {
            chip: "/dev/gpiochip-header".into(),
            line: 4,
        };
        assert_eq!((g.pps.clone(), g.baud), (line4, 9600));
        let c =
            parse("[[source]]\nprofile = \"adafruit-ultimate-gps-hat\"\nbaud = 38400\n").unwrap();
        let SourceConfig::Gps(g) = &c.sources[0] else {
            panic!("a gps source")
        };
        assert_eq!(g.baud, 38400);
    }

    #[test]
    fn a_wrong_kind_or_an_unknown_profile_is_an_error() {
        let e = parse("[[source]]\nkind = \"gps\"\nprofile = \"pollin-dcf1\"\n").unwrap_err();
        assert_eq!(
            e,
            ["t.toml:2:8: `source[0].kind`: the profile `pollin-dcf1` is for a `dcf77` source"]
        );
        let e = parse("[[source]]\nprofile = \"adafruit\"\n").unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains("`source[0].profile`: expected one of: adafruit-ultimate-gps-hat"),
            "{e:?}"
        );
    }
}
