//! NMEA 0183: finding sentences in a byte stream, checking them and splitting them into typed
//! fields. No time policy here (that is `decoder`); only syntax.

use std::fmt;

/// Longest line kept. NMEA allows 82 characters; receivers send longer proprietary sentences,
/// so be generous, but never let garbage grow the buffer without bound.
pub const MAX_LINE: usize = 256;

/// Splits a byte stream into candidate sentences (`$` to end of line), each tagged with the
/// timestamp of the read that delivered its `$`: the start of a sentence is what carries timing.
#[derive(Debug)]
pub struct LineReader<T> {
    line: Vec<u8>,
    started: Option<T>,
    /// Lines dropped for exceeding MAX_LINE, or cut short by a new `$`.
    pub dropped: u64,
}

impl<T: Copy> Default for LineReader<T> {
    fn default() -> Self {
        LineReader {
            line: Vec::with_capacity(MAX_LINE),
            started: None,
            dropped: 0,
        }
    }
}

impl<T: Copy> LineReader<T> {
    /// Feeds bytes read at `at`; calls `line` for each complete candidate, `$` included.
    pub fn push(&mut self, bytes: &[u8], at: T, mut line: impl FnMut(&[u8], T)) {
        for &b in bytes {
            match (b, self.started) {
                (b'$', started) => {
                    if started.is_some() {
                        self.dropped += 1;
                    }
                    self.line.clear();
                    self.line.push(b);
                    self.started = Some(at);
                }
                (b'\r' | b'\n', Some(t)) => {
                    line(&self.line, t);
                    self.started = None;
                }
                (_, None) => {} // noise between sentences
                (_, Some(_)) if self.line.len() >= MAX_LINE => {
                    self.dropped += 1;
                    self.started = None;
                }
                (_, Some(_)) => self.line.push(b),
            }
        }
    }

    /// Forgets a partial line (after a disconnect, its rest never comes).
    pub fn reset(&mut self) {
        self.started = None;
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    NotAscii,
    NoChecksum,
    BadChecksum,
    BadAddress,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FrameError::NotAscii => "not printable ASCII",
            FrameError::NoChecksum => "no checksum",
            FrameError::BadChecksum => "bad checksum",
            FrameError::BadAddress => "bad address field",
        })
    }
}

/// A sentence whose checksum is good: its address and its fields.
#[derive(Debug)]
pub struct Frame<'a> {
    /// `GP`, `GN`, ... or `P` for proprietary sentences.
    pub talker: &'a str,
    /// `RMC`, `GGA`, ... (for proprietary sentences, the rest of the address).
    pub kind: &'a str,
    pub fields: Vec<&'a str>,
}

impl<'a> Frame<'a> {
    /// Checks a line from `LineReader` (`$ADDR,f1,...*hh`). The checksum is mandatory: a time
    /// source must not trust a line that noise could have produced.
    pub fn parse(line: &'a [u8]) -> Result<Frame<'a>, FrameError> {
        let text = std::str::from_utf8(line).map_err(|_| FrameError::NotAscii)?;
        if !text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(FrameError::NotAscii);
        }
        let body = text.strip_prefix('$').ok_or(FrameError::BadAddress)?;
        let (body, sum) = body.rsplit_once('*').ok_or(FrameError::NoChecksum)?;
        let sum = u8::from_str_radix(sum.trim_end(), 16).map_err(|_| FrameError::BadChecksum)?;
        if body.bytes().fold(0, |acc, b| acc ^ b) != sum {
            return Err(FrameError::BadChecksum);
        }
        let mut fields = body.split(',');
        let address = fields.next().unwrap_or_default();
        if address.len() < 2 || !address.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(FrameError::BadAddress);
        }
        let (talker, kind) = if address.starts_with('P') {
            address.split_at(1)
        } else if address.len() == 5 {
            address.split_at(2)
        } else {
            return Err(FrameError::BadAddress);
        };
        Ok(Frame {
            talker,
            kind,
            fields: fields.collect(),
        })
    }

    /// Field `i` (0 is the first after the address); missing trailing fields read as empty.
    pub fn field(&self, i: usize) -> &'a str {
        self.fields.get(i).copied().unwrap_or("")
    }
}

/// `$BODY*hh\r\n`: a sentence as a receiver sends it.
pub fn sentence(body: &str) -> String {
    let sum = body.bytes().fold(0, |acc, b| acc ^ b);
    format!("${body}*{sum:02X}\r\n")
}

/// The satellite systems that talker ids (and NMEA 4.10 system ids) name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Constellation {
    Gps,
    Glonass,
    Galileo,
    Beidou,
    Qzss,
    Navic,
    Sbas,
}

impl Constellation {
    pub const ALL: [Constellation; 7] = [
        Constellation::Gps,
        Constellation::Glonass,
        Constellation::Galileo,
        Constellation::Beidou,
        Constellation::Qzss,
        Constellation::Navic,
        Constellation::Sbas,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Constellation::Gps => "GPS",
            Constellation::Glonass => "GLONASS",
            Constellation::Galileo => "Galileo",
            Constellation::Beidou => "BeiDou",
            Constellation::Qzss => "QZSS",
            Constellation::Navic => "NavIC",
            Constellation::Sbas => "SBAS",
        }
    }

    /// The system a talker id stands for; `None` for `GN` (combined) and non-GNSS talkers.
    pub fn from_talker(talker: &str) -> Option<Self> {
        Some(match talker {
            "GP" => Constellation::Gps,
            "GL" => Constellation::Glonass,
            "GA" => Constellation::Galileo,
            "GB" | "BD" => Constellation::Beidou,
            "GQ" | "QZ" => Constellation::Qzss,
            "GI" => Constellation::Navic,
            _ => return None,
        })
    }

    /// NMEA 4.10 system id (GSA field 18, GSV last field).
    pub fn from_system_id(id: &str) -> Option<Self> {
        Some(match id {
            "1" => Constellation::Gps,
            "2" => Constellation::Glonass,
            "3" => Constellation::Galileo,
            "4" => Constellation::Beidou,
            "5" => Constellation::Qzss,
            "6" => Constellation::Navic,
            _ => return None,
        })
    }

    /// The system of a satellite number in the NMEA ranges receivers use under `GN`.
    pub fn from_prn(prn: u16) -> Self {
        match prn {
            33..=64 | 120..=158 => Constellation::Sbas,
            65..=96 => Constellation::Glonass,
            193..=202 => Constellation::Qzss,
            201..=264 | 401..=437 => Constellation::Beidou,
            301..=336 => Constellation::Galileo,
            _ => Constellation::Gps,
        }
    }
}

/// Whether a talker is a GNSS receiver at all (`GN` included); others (AIS, depth sounders on
/// the same bus) are ignored.
pub fn is_gnss_talker(talker: &str) -> bool {
    talker == "GN" || Constellation::from_talker(talker).is_some()
}

/// `hhmmss[.fff]`: (hours, minutes, seconds) and nanoseconds.
pub fn parse_time(field: &str) -> Option<((u32, u32, u32), u32)> {
    let (whole, frac) = field.split_once('.').unwrap_or((field, ""));
    if whole.len() != 6 || frac.len() > 9 || !field.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    {
        return None;
    }
    let num = |s: &str| s.parse::<u32>().ok();
    let nanos = if frac.is_empty() {
        0
    } else {
        num(frac)? * 10u32.pow(9 - frac.len() as u32)
    };
    Some((
        (num(&whole[..2])?, num(&whole[2..4])?, num(&whole[4..])?),
        nanos,
    ))
}

/// `ddmmyy` as (two-digit year, month, day).
pub fn parse_ddmmyy(field: &str) -> Option<(u32, u32, u32)> {
    if field.len() != 6 || !field.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| field[r].parse::<u32>().ok();
    Some((num(4..6)?, num(2..4)?, num(0..2)?))
}

/// `ddmm.mmmm` / `dddmm.mmmm` with its hemisphere letter, in signed degrees.
pub fn parse_coordinate(value: &str, hemisphere: &str) -> Option<f64> {
    let raw: f64 = value.parse().ok()?;
    let degrees = (raw / 100.0).trunc();
    let minutes = raw - degrees * 100.0;
    if !(0.0..60.0).contains(&minutes) {
        return None;
    }
    let v = degrees + minutes / 60.0;
    match hemisphere {
        "N" | "E" if v <= 180.0 => Some(v),
        "S" | "W" if v <= 180.0 => Some(-v),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_at_dollar_and_line_end() {
        let mut r = LineReader::default();
        let mut got = Vec::new();
        r.push(b"junk$GPA,1*0\r\n\xff$GPB,2", 1, |l, t| {
            got.push((l.to_vec(), t))
        });
        r.push(b"*0\r\n$GPC$GPD*0\n", 2, |l, t| got.push((l.to_vec(), t)));
        assert_eq!(
            got,
            vec![
                (b"$GPA,1*0".to_vec(), 1),
                (b"$GPB,2*0".to_vec(), 1),
                (b"$GPD*0".to_vec(), 2)
            ]
        );
        assert_eq!(r.dropped, 1);
    }

    #[test]
    fn overlong_lines_are_dropped_not_kept() {
        let mut r = LineReader::default();
        let mut n = 0;
        let long = [b'A'; 10_000];
        r.push(b"$", 0, |_, _| n += 1);
        r.push(&long, 0, |_, _| n += 1);
        r.push(b"\n$GPX*58\n", 0, |_, _| n += 1);
        assert_eq!((n, r.dropped), (1, 1));
        assert!(r.line.capacity() <= 2 * MAX_LINE);
    }

    #[test]
    fn checksums_are_mandatory_and_checked() {
        let good = b"$GPZDA,193223.00,23,12,2007,00,00*69";
        assert_eq!(
            sentence("GPZDA,193223.00,23,12,2007,00,00").as_bytes(),
            [&good[..], b"\r\n"].concat()
        );
        let f = Frame::parse(good).unwrap();
        assert_eq!(
            (f.talker, f.kind, f.field(3), f.field(99)),
            ("GP", "ZDA", "2007", "")
        );
        assert_eq!(
            Frame::parse(b"$GPZDA,193223.00,23,12,2008,00,00*69").unwrap_err(),
            FrameError::BadChecksum
        );
        assert_eq!(
            Frame::parse(b"$GPZDA,193223.00,23,12,2007,00,00").unwrap_err(),
            FrameError::NoChecksum
        );
        assert_eq!(
            Frame::parse(b"$GP\xc3\xa9*00").unwrap_err(),
            FrameError::NotAscii
        );
        let p = Frame::parse(b"$PUBX,00*33").unwrap();
        assert_eq!((p.talker, p.kind), ("P", "UBX"));
    }

    #[test]
    fn fields_parse_strictly() {
        assert_eq!(parse_time("085001.25"), Some(((8, 50, 1), 250_000_000)));
        assert_eq!(parse_time("085001"), Some(((8, 50, 1), 0)));
        assert_eq!(parse_time("85001.0"), None);
        assert_eq!(parse_time("0850-1.0"), None);
        assert_eq!(parse_ddmmyy("190717"), Some((17, 7, 19)));
        assert_eq!(parse_ddmmyy("1907"), None);
        let lat = parse_coordinate("4807.038", "S").unwrap();
        assert!((lat + 48.1173).abs() < 1e-4);
        assert_eq!(parse_coordinate("4860.0", "N"), None);
        assert_eq!(parse_coordinate("4807.038", "X"), None);
    }

    #[test]
    fn constellations_from_talkers_ids_and_numbers() {
        assert_eq!(
            Constellation::from_talker("BD"),
            Some(Constellation::Beidou)
        );
        assert_eq!(Constellation::from_talker("GN"), None);
        assert!(is_gnss_talker("GN") && !is_gnss_talker("AI"));
        assert_eq!(
            Constellation::from_system_id("3"),
            Some(Constellation::Galileo)
        );
        assert_eq!(Constellation::from_prn(70), Constellation::Glonass);
        assert_eq!(Constellation::from_prn(12), Constellation::Gps);
    }
}
