//! The leap second table, read from `leap-seconds.list`.
//!
//! Format: the IERS/NIST `leap-seconds.list` (IERS Earth Orientation Center,
//! <https://hpiers.obspm.fr/iers/bul/bulc/ntp/leap-seconds.list>, shipped by tzdata as
//! `/usr/share/zoneinfo/leap-seconds.list`; its header comments and the IERS `sources/README`
//! describe it). Times are NTP seconds (since 1900-01-01 UTC):
//!
//! - `#$ NTPSECONDS`: when the file was last updated;
//! - `#@ NTPSECONDS`: when it expires (IERS announces leaps at most about six months ahead);
//! - `NTPSECONDS TAI-UTC # comment`: from that instant on, TAI-UTC is that many seconds;
//! - `#h W1 W2 W3 W4 W5`: the SHA-1, as five 32-bit hex words, of the digits of the update,
//!   expiry and data fields in that order, with whitespace and comments left out;
//! - any other line starting with `#` is a comment.
//!
//! A file whose hash is missing or wrong is refused: a truncated download loses its last
//! entries and its hash line together, and a silently shorter table would miss a leap.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use sha1::{Digest, Sha1};

use crate::time::Leap;
use crate::time::{Realtime, UtcTime, NTP_UNIX_OFFSET};

const SECONDS_PER_DAY: i64 = 86_400;
/// NTP seconds up to 9_999_999_999 (year 2216) fit `Realtime` without saturating.
const MAX_TIMESTAMP_DIGITS: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum LeapFileError {
    #[error("leap second file {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("leap second file {}: {error}", path.display())]
    InFile {
        path: PathBuf,
        error: Box<LeapFileError>,
    },
    #[error("line {line}: {reason}")]
    Line { line: usize, reason: &'static str },
    #[error("no {0}")]
    Missing(&'static str),
    #[error("the #h line says {stated} but the contents hash to {computed}: damaged or edited")]
    HashMismatch { stated: String, computed: String },
}

/// A validated leap second table.
#[derive(Clone, Debug, PartialEq)]
pub struct LeapTable {
    /// From each instant on, TAI-UTC is the given number of seconds. Strictly ascending, each
    /// at a UTC midnight, consecutive offsets one second apart.
    entries: Vec<(Realtime, i32)>,
    expires: Realtime,
}

impl LeapTable {
    /// When the table stops vouching for the future: a leap decided later is not in it.
    pub fn expires(&self) -> Realtime {
        self.expires
    }

    /// TAI-UTC in seconds at `at`; `None` before the table's first entry (1972) and once the
    /// table has expired, when a leap it does not list may already have happened.
    pub fn tai_offset(&self, at: Realtime) -> Option<i32> {
        if at >= self.expires {
            return None;
        }
        let passed = self.entries.partition_point(|&(from, _)| from <= at);
        passed.checked_sub(1).map(|i| self.entries[i].1)
    }

    /// The leap indicator to serve at `now`: `Insert` (or `Delete`) when the UTC day containing
    /// `now` ends with a leap second, `None` otherwise. RFC 5905 servers announce a leap during
    /// the whole day it ends (ntpd and chrony do the same).
    ///
    /// An expired table answers `None`: it cannot know of leaps decided after it was written,
    /// and a stale table must not invent one either, so the leap indicator is left to the
    /// reference clocks (GNSS and DCF77 broadcast their own announcements).
    pub fn announcement(&self, now: Realtime) -> Leap {
        if now >= self.expires {
            return Leap::None;
        }
        let day = UtcTime::from_realtime(now).day;
        let midnight = Realtime::from_timespec((day + 1) * SECONDS_PER_DAY, 0);
        let step = self
            .entries
            .windows(2)
            .find(|pair| pair[1].0 == midnight)
            .map(|pair| pair[1].1 - pair[0].1);
        match step {
            Some(1) => Leap::Insert,
            Some(-1) => Leap::Delete,
            _ => Leap::None,
        }
    }
}

/// Reads and validates a `leap-seconds.list`; errors name the file.
pub fn load(path: &Path) -> Result<LeapTable, LeapFileError> {
    let bytes = fs::read(path).map_err(|source| LeapFileError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    // Non-ASCII bytes only ever sit in comments or make a line fail below.
    parse(&String::from_utf8_lossy(&bytes)).map_err(|error| LeapFileError::InFile {
        path: path.to_path_buf(),
        error: Box::new(error),
    })
}

/// Parses and validates the text of a `leap-seconds.list`, hash included.
pub fn parse(text: &str) -> Result<LeapTable, LeapFileError> {
    let mut updated: Option<&str> = None;
    let mut expires: Option<(&str, Realtime)> = None;
    let mut stated_hash: Option<[u32; 5]> = None;
    let mut entries: Vec<(Realtime, i32)> = Vec::new();
    // The digits of the data lines, in file order, for the hash.
    let mut data_digits = String::new();

    for (index, raw) in text.lines().enumerate() {
        let fail = |reason| LeapFileError::Line {
            line: index + 1,
            reason,
        };
        let line = raw.trim();
        if let Some(rest) = line.strip_prefix("#$") {
            let field = single_field(rest).ok_or(fail("#$ needs one number of NTP seconds"))?;
            timestamp(field).ok_or(fail("#$ last update is not NTP seconds"))?;
            if updated.replace(field).is_some() {
                return Err(fail("a second #$ line"));
            }
        } else if let Some(rest) = line.strip_prefix("#@") {
            let field = single_field(rest).ok_or(fail("#@ needs one number of NTP seconds"))?;
            let at = timestamp(field).ok_or(fail("#@ expiry is not NTP seconds"))?;
            if expires.replace((field, at)).is_some() {
                return Err(fail("a second #@ line"));
            }
        } else if let Some(rest) = line.strip_prefix("#h") {
            let words = hash_words(rest).ok_or(fail("#h needs five hexadecimal words"))?;
            if stated_hash.replace(words).is_some() {
                return Err(fail("a second #h line"));
            }
        } else if !line.is_empty() && !line.starts_with('#') {
            let data = line.split('#').next().unwrap_or_default();
            let mut fields = data.split_whitespace();
            let (Some(time), Some(offset_field), None) =
                (fields.next(), fields.next(), fields.next())
            else {
                return Err(fail("expected NTP seconds and TAI-UTC"));
            };
            let at = timestamp(time).ok_or(fail("leap time is not NTP seconds"))?;
            let offset: i32 = offset_field
                .parse()
                .map_err(|_| fail("TAI-UTC is not a whole number of seconds"))?;
            if at.as_nanos().rem_euclid(SECONDS_PER_DAY * 1_000_000_000) != 0 {
                return Err(fail("leap time is not a UTC midnight"));
            }
            if let Some(&(previous_at, previous_offset)) = entries.last() {
                if at <= previous_at {
                    return Err(fail("entry not after the one before"));
                }
                if offset.abs_diff(previous_offset) != 1 {
                    return Err(fail("TAI-UTC changes by other than one second"));
                }
            }
            entries.push((at, offset));
            data_digits.push_str(time);
            data_digits.extend(offset_field.chars().filter(char::is_ascii_digit));
        }
    }

    let updated = updated.ok_or(LeapFileError::Missing("#$ last update line"))?;
    let (expires_field, expires) = expires.ok_or(LeapFileError::Missing("#@ expiry line"))?;
    let stated = stated_hash.ok_or(LeapFileError::Missing("#h hash line"))?;
    if entries.is_empty() {
        return Err(LeapFileError::Missing("leap second entries"));
    }
    let mut sha = Sha1::new();
    sha.update(updated);
    sha.update(expires_field);
    sha.update(&data_digits);
    let digest = sha.finalize();
    let computed: Vec<u32> = digest
        .chunks_exact(4)
        .map(|word| u32::from_be_bytes([word[0], word[1], word[2], word[3]]))
        .collect();
    if computed != stated {
        let hex = |words: &[u32]| {
            let words: Vec<String> = words.iter().map(|w| format!("{w:08x}")).collect();
            words.join(" ")
        };
        return Err(LeapFileError::HashMismatch {
            stated: hex(&stated),
            computed: hex(&computed),
        });
    }
    Ok(LeapTable { entries, expires })
}

/// The only whitespace-separated field of `text`.
fn single_field(text: &str) -> Option<&str> {
    let mut fields = text.split_whitespace();
    fields.next().filter(|_| fields.next().is_none())
}

/// NTP seconds (plain digits, as the hash covers them) as an instant.
fn timestamp(field: &str) -> Option<Realtime> {
    let digits_only = !field.is_empty() && field.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || field.len() > MAX_TIMESTAMP_DIGITS {
        return None;
    }
    let ntp_seconds: i64 = field.parse().ok()?;
    Some(Realtime::from_timespec(ntp_seconds - NTP_UNIX_OFFSET, 0))
}

/// The five words of a `#h` line. NIST's files drop leading zeros within a word, so a word
/// has one to eight hex digits and is compared as a number.
fn hash_words(text: &str) -> Option<[u32; 5]> {
    let mut words = [0; 5];
    let mut fields = text.split_whitespace();
    for word in &mut words {
        let field = fields.next()?;
        let hex = field.len() <= 8 && field.bytes().all(|b| b.is_ascii_hexdigit());
        *word = u32::from_str_radix(field, 16).ok().filter(|_| hex)?;
    }
    fields.next().is_none().then_some(words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const IERS: &str = include_str!("../../tests/data/leap/leap-seconds.list");

    fn utc(date: (i64, u32, u32), time: (u32, u32, u32)) -> Realtime {
        UtcTime::from_civil(date, time, 0)
            .and_then(|t| t.to_realtime())
            .unwrap()
    }

    fn ntp(at: Realtime) -> i64 {
        at.as_nanos() / 1_000_000_000 + NTP_UNIX_OFFSET
    }

    /// A table file with a correct hash, from update and expiry instants and data entries.
    fn table_text(updated: Realtime, expires: Realtime, entries: &[(Realtime, i32)]) -> String {
        let (updated, expires) = (ntp(updated), ntp(expires));
        let mut digits = format!("{updated}{expires}");
        let mut text = format!("# test table\n#$\t{updated}\n#@\t{expires}\n#\n");
        for &(at, offset) in entries {
            digits.push_str(&format!("{}{offset}", ntp(at)));
            text.push_str(&format!("{}\t{offset}\t# comment\n", ntp(at)));
        }
        let digest = Sha1::digest(digits.as_bytes());
        let words: Vec<String> = digest
            .chunks_exact(4)
            .map(|w| format!("{:x}", u32::from_be_bytes([w[0], w[1], w[2], w[3]])))
            .collect();
        text.push_str(&format!("#h\t{}\n", words.join(" ")));
        text
    }

    #[test]
    fn reads_the_iers_file() {
        let table = parse(IERS).unwrap();
        assert_eq!(table.entries.len(), 28);
        assert_eq!(table.expires(), utc((2026, 6, 28), (0, 0, 0)));
        assert_eq!(table.tai_offset(utc((1971, 12, 31), (23, 59, 59))), None);
        assert_eq!(table.tai_offset(utc((1972, 1, 1), (0, 0, 0))), Some(10));
        assert_eq!(
            table.tai_offset(utc((2016, 12, 31), (23, 59, 59))),
            Some(36)
        );
        assert_eq!(table.tai_offset(utc((2017, 1, 1), (0, 0, 0))), Some(37));
        assert_eq!(table.tai_offset(utc((2026, 6, 27), (23, 59, 59))), Some(37));
        assert_eq!(table.tai_offset(utc((2026, 6, 28), (0, 0, 0))), None);
    }

    #[test]
    fn reads_a_whole_file_as_distributed() {
        // IANA's copy, as tzdata installs it in /usr/share/zoneinfo (kept in the repository, so
        // that the test runs everywhere).
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/leap/leap-seconds.list");
        let table = load(&path).unwrap();
        assert_eq!(table.tai_offset(utc((2016, 12, 31), (0, 0, 0))), Some(36));
        assert_eq!(table.tai_offset(utc((2017, 1, 1), (0, 0, 0))), Some(37));
    }

    #[test]
    fn announces_during_the_day_the_leap_ends() {
        let table = parse(IERS).unwrap();
        let day = (2016, 12, 31);
        assert_eq!(table.announcement(utc(day, (0, 0, 0))), Leap::Insert);
        assert_eq!(
            table.announcement(utc(day, (23, 59, 59)).add_secs_f64(0.999)),
            Leap::Insert
        );
        assert_eq!(
            table.announcement(utc((2016, 12, 30), (23, 59, 59))),
            Leap::None
        );
        assert_eq!(table.announcement(utc((2017, 1, 1), (0, 0, 0))), Leap::None);
        assert_eq!(
            table.announcement(utc((2016, 6, 30), (12, 0, 0))),
            Leap::None
        );
        // The first entry starts the table (TAI-UTC = 10 in 1972); it is not a leap.
        assert_eq!(
            table.announcement(utc((1971, 12, 31), (12, 0, 0))),
            Leap::None
        );
    }

    #[test]
    fn announces_deletions_and_stays_quiet_once_expired() {
        let leap = utc((2027, 1, 1), (0, 0, 0));
        let expiry = utc((2026, 12, 31), (18, 0, 0));
        let entries = [(utc((2017, 1, 1), (0, 0, 0)), 37), (leap, 36)];
        let table = parse(&table_text(utc((2026, 7, 1), (0, 0, 0)), expiry, &entries)).unwrap();
        assert_eq!(
            table.announcement(utc((2026, 12, 31), (17, 59, 59))),
            Leap::Delete
        );
        assert_eq!(table.tai_offset(utc((2026, 12, 31), (17, 0, 0))), Some(37));
        // Past the expiry the table is stale, even about a leap it lists.
        assert_eq!(table.announcement(expiry), Leap::None);
        assert_eq!(table.tai_offset(expiry), None);
    }

    #[test]
    fn accepts_hash_words_without_leading_zeros() {
        // NIST's files print each word with %x; the IERS pads to eight digits.
        assert_eq!(
            hash_words(" 1 ab 0 FFFFFFFF\t00000001 "),
            Some([1, 0xab, 0, u32::MAX, 1])
        );
        let entries = [(utc((1972, 1, 1), (0, 0, 0)), 10)];
        let text = table_text(
            utc((2026, 1, 1), (0, 0, 0)),
            utc((2026, 7, 1), (0, 0, 0)),
            &entries,
        );
        let (start, words) = text.split_at(text.find("#h").unwrap());
        let words = hash_words(&words[2..]).unwrap().map(|w| format!("{w:08x}"));
        let padded = format!("{start}#h {}\n", words.join(" "));
        assert_eq!(parse(&text).unwrap(), parse(&padded).unwrap());
    }

    #[test]
    fn refuses_a_damaged_or_unhashed_file() {
        // A later expiry, as someone stretching a stale table might write.
        let edited = IERS.replace("3991593600", "4007404800");
        let err = parse(&edited).unwrap_err();
        assert!(matches!(err, LeapFileError::HashMismatch { .. }), "{err}");
        // Losing the tail of a download loses the hash line with it.
        let cut = &IERS[..IERS.find("3550089600").unwrap()];
        let err = parse(cut).unwrap_err();
        assert!(matches!(err, LeapFileError::Missing(_)), "{err}");
        assert_eq!(err.to_string(), "no #h hash line");
        let no_expiry = IERS.replace("#@", "# ");
        assert_eq!(
            parse(&no_expiry).unwrap_err().to_string(),
            "no #@ expiry line"
        );
    }

    #[test]
    fn errors_carry_line_numbers() {
        let cases = [
            ("#$ 12x", 1, "#$ last update is not NTP seconds"),
            ("#@", 1, "#@ needs one number of NTP seconds"),
            ("\n#h 1 2 3 4", 2, "#h needs five hexadecimal words"),
            ("#h 1 2 3 4 123456789", 1, "#h needs five hexadecimal words"),
            ("#h 1 2 3 4 +5", 1, "#h needs five hexadecimal words"),
            ("\n\n2272060800", 3, "expected NTP seconds and TAI-UTC"),
            ("2272060800 10 11", 1, "expected NTP seconds and TAI-UTC"),
            ("-2272060800 10", 1, "leap time is not NTP seconds"),
            ("99999999999 10", 1, "leap time is not NTP seconds"),
            (
                "2272060800 ten",
                1,
                "TAI-UTC is not a whole number of seconds",
            ),
            ("2272060801 10", 1, "leap time is not a UTC midnight"),
            (
                "2287785600 11\n2272060800 10",
                2,
                "entry not after the one before",
            ),
            (
                "2272060800 10\n2287785600 12",
                2,
                "TAI-UTC changes by other than one second",
            ),
            ("#@ 1\n#@ 2", 2, "a second #@ line"),
            (
                "2272060800 -2147483648\n2287785600 2147483647",
                2,
                "TAI-UTC changes by other than one second",
            ),
        ];
        for (text, line, reason) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("line {line}: {reason}"),
                "{text:?}"
            );
        }
    }

    #[test]
    fn load_names_the_file() {
        let path = std::env::temp_dir().join(format!("pitime-leapfile-{}", std::process::id()));
        fs::write(&path, "garbage\n").unwrap();
        let err = load(&path).unwrap_err();
        fs::remove_file(&path).unwrap();
        assert_eq!(
            err.to_string(),
            format!(
                "leap second file {}: line 1: expected NTP seconds and TAI-UTC",
                path.display()
            )
        );
        let err = load(&path).unwrap_err();
        assert!(matches!(err, LeapFileError::Io { .. }), "{err}");
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
            let _ = parse(&text);
        }

        #[test]
        fn file_shaped_text_never_panics(text in "((#[$@h#])?[ \t]*[-0-9a-f \t]{0,40}\n){0,8}") {
            let _ = parse(&text);
        }

        #[test]
        fn damaged_real_file_never_panics(at in 0..IERS.len(), byte in any::<u8>()) {
            let mut bytes = IERS.as_bytes().to_vec();
            bytes[at] = byte;
            let _ = parse(&String::from_utf8_lossy(&bytes));
        }
    }
}
