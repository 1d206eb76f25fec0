//! MediaTek PMTK sentences (MT3329, MT3339: the Adafruit Ultimate GPS and its kin), as the
//! PMTK command packet manual describes them, and the PMTK001 and PMTK705 answers.

use crate::config::{Gnss, Sentences};
use crate::refclock::gps::nmea::{sentence, Frame};

/// PMTK_Q_RELEASE: the receiver answers with PMTK705 and its firmware release.
pub fn query_release() -> Vec<u8> {
    sentence("PMTK605").into_bytes()
}

/// PMTK251: the serial speed. The receiver changes speed at once and sends no PMTK001.
pub fn set_baud(baud: u32) -> Vec<u8> {
    sentence(&format!("PMTK251,{baud}")).into_bytes()
}

/// PMTK220: milliseconds between fixes.
pub fn set_rate(hz: u32) -> Vec<u8> {
    sentence(&format!("PMTK220,{}", 1000 / hz.max(1))).into_bytes()
}

/// PMTK314: each sentence's rate, in fixes, by position: GLL, RMC, VTG, GGA, GSA, GSV, then
/// unused fields up to ZDA at 17 and MCHN at 18.
pub fn set_output(sentences: Sentences) -> Option<Vec<u8>> {
    let on: &[usize] = match sentences {
        Sentences::Unchanged => return None,
        Sentences::Needed => &[1, 3, 4, 5, 17],
        Sentences::Time => &[1, 3, 17],
    };
    let fields: Vec<&str> = (0..19)
        .map(|i| if on.contains(&i) { "1" } else { "0" })
        .collect();
    Some(sentence(&format!("PMTK314,{}", fields.join(","))).into_bytes())
}

/// PMTK285: the PPS output, the pulse `length` seconds long, only with a 3D fix (mode 2) or
/// always (4). Only firmware with a PPS pin (MT3339) knows it; others answer flag 1.
pub fn set_pps(length: f64, fix_only: bool) -> Vec<u8> {
    let ms = (length * 1e3).round().clamp(1.0, 998.0) as u32;
    let mode = if fix_only { 2 } else { 4 };
    sentence(&format!("PMTK285,{mode},{ms}")).into_bytes()
}

/// PMTK353: GPS, GLONASS, Galileo, Galileo full and BeiDou searched or not.
pub fn set_constellations(on: &[Gnss]) -> Vec<u8> {
    let f = |g| u8::from(on.contains(&g));
    let galileo = f(Gnss::Galileo);
    sentence(&format!(
        "PMTK353,{},{},{galileo},{galileo},{}",
        f(Gnss::Gps),
        f(Gnss::Glonass),
        f(Gnss::Beidou)
    ))
    .into_bytes()
}

/// The command number a sentence carries (`PMTK220,...` is 220).
pub fn command(bytes: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(bytes).ok()?.strip_prefix("$PMTK")?;
    text.get(..3)?.parse().ok()
}

/// What PMTK001 says of a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flag {
    Invalid,
    Unsupported,
    Failed,
    Succeeded,
}

/// A MediaTek answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// PMTK001: the command number and how it went.
    Ack(u16, Flag),
    /// PMTK705: the release string (`AXN_2.31_3339_13101700`) and the module name when given.
    Release(String, Option<String>),
    /// PMTK010,001: the receiver (re)started.
    Startup,
}

/// Reads a line with a good checksum as a MediaTek answer.
pub fn reply(line: &[u8]) -> Option<Reply> {
    let f = Frame::parse(line).ok()?;
    if f.talker != "P" {
        return None;
    }
    match f.kind {
        "MTK001" => {
            let flag = match f.field(1) {
                "0" => Flag::Invalid,
                "1" => Flag::Unsupported,
                "2" => Flag::Failed,
                "3" => Flag::Succeeded,
                _ => return None,
            };
            Some(Reply::Ack(f.field(0).parse().ok()?, flag))
        }
        "MTK705" if !f.field(0).is_empty() => {
            let module = Some(f.field(2)).filter(|m| !m.is_empty());
            Some(Reply::Release(
                f.field(0).to_string(),
                module.map(str::to_string),
            ))
        }
        "MTK010" if f.field(0) == "001" => Some(Reply::Startup),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(b: Vec<u8>) -> String {
        String::from_utf8(b).unwrap()
    }

    /// The sentences as the PMTK manual and Adafruit's library print them.
    #[test]
    fn commands_match_the_manual() {
        assert_eq!(text(query_release()), "$PMTK605*31\r\n");
        assert_eq!(text(set_baud(115_200)), "$PMTK251,115200*1F\r\n");
        assert_eq!(text(set_baud(38400)), "$PMTK251,38400*27\r\n");
        assert_eq!(text(set_rate(1)), "$PMTK220,1000*1F\r\n");
        // Adafruit's PMTK_SET_NMEA_OUTPUT_RMCGGA, then ours: RMC, GGA and ZDA.
        assert_eq!(
            sentence("PMTK314,0,1,0,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0"),
            "$PMTK314,0,1,0,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0*28\r\n"
        );
        assert_eq!(
            text(set_output(Sentences::Time).unwrap()),
            sentence("PMTK314,0,1,0,1,0,0,0,0,0,0,0,0,0,0,0,0,0,1,0")
        );
        assert_eq!(
            text(set_output(Sentences::Needed).unwrap()),
            sentence("PMTK314,0,1,0,1,1,1,0,0,0,0,0,0,0,0,0,0,0,1,0")
        );
        assert_eq!(set_output(Sentences::Unchanged), None);
        assert_eq!(text(set_pps(0.1, true)), sentence("PMTK285,2,100"));
        assert_eq!(text(set_pps(0.2, false)), sentence("PMTK285,4,200"));
        assert_eq!(command(&set_pps(0.1, true)), Some(285));
        assert_eq!(
            text(set_constellations(&[Gnss::Gps, Gnss::Glonass])),
            "$PMTK353,1,1,0,0,0*2B\r\n"
        );
        assert_eq!(command(b"$PMTK"), None);
        assert_eq!(command(b"$GPRMC,1"), None);
    }

    #[test]
    fn answers_are_read_and_bad_ones_are_not() {
        assert_eq!(
            reply(b"$PMTK001,220,3*30"),
            Some(Reply::Ack(220, Flag::Succeeded))
        );
        assert_eq!(
            reply(sentence("PMTK001,285,1").trim_end().as_bytes()),
            Some(Reply::Ack(285, Flag::Unsupported))
        );
        assert_eq!(
            reply(b"$PMTK705,AXN_2.31_3339_13101700,5632,PA6H,1.0*6B"),
            Some(Reply::Release(
                "AXN_2.31_3339_13101700".into(),
                Some("PA6H".into())
            ))
        );
        assert_eq!(reply(b"$PMTK010,001*2E"), Some(Reply::Startup));
        // A wrong checksum, a flag out of range, a number that is not one, another talker.
        assert_eq!(reply(b"$PMTK001,220,3*31"), None);
        assert_eq!(reply(sentence("PMTK001,220,7").trim_end().as_bytes()), None);
        assert_eq!(reply(sentence("PMTK001,x,3").trim_end().as_bytes()), None);
        assert_eq!(reply(sentence("PMTK705,").trim_end().as_bytes()), None);
        assert_eq!(reply(b"$GPZDA,193223.00,23,12,2007,00,00*69"), None);
    }
}
