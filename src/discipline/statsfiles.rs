//! ntpd's statistics files, so ntpviz, ntpd's `scripts/stats` and people's own awk keep working
//! on a Pi that moved from ntpd to pitime.
//!
//! Formats as ntpd 4.2.8 writes them (`record_loop_stats`, `record_peer_stats` and
//! `record_clock_stats` in `ntpd/ntp_util.c`; the `statistics` entries of the monitoring options
//! page, `monopt.html`), one file per UTC day named `<kind>.YYYYMMDD` as `filegen <kind> type
//! day` names them, appended line by line:
//!
//! - loopstats: `MJD SECONDS offset freq_ppm jitter wander_ppm time_constant`
//!   (`%.9f %.3f %.9f %.6f %d`);
//! - peerstats: `MJD SECONDS source status offset delay dispersion jitter` (status `%x`, then
//!   four `%.9f`);
//! - clockstats: `MJD SECONDS source text`.
//!
//! SECONDS is the time of UTC day with three decimals. ntpd names a source by its address
//! (`127.127.t.u` for a reference clock); pitime uses the source's configured name, with
//! whitespace replaced by `_` because readers split lines on whitespace. ntpd's `link` option
//! (a link named plain `loopstats` to the current file) is not reproduced.
//!
//! Formatting is pure; `StatsFiles` only appends the lines. Errors are returned for the caller
//! to log (and rate-limit): statistics must never stop the clock.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::time::{civil_from_days, days_from_civil, Realtime, UtcTime};

/// The Modified Julian Day of 1970-01-01.
const MJD_UNIX_EPOCH: i64 = 40_587;
const NANOS_PER_SEC: i64 = 1_000_000_000;

/// The Modified Julian Day and the seconds (with fraction) into that UTC day.
pub fn mjd_and_seconds(at: Realtime) -> (i64, f64) {
    let t = UtcTime::from_realtime(at);
    let seconds = t.second as f64 + t.nanos as f64 / NANOS_PER_SEC as f64;
    (t.day + MJD_UNIX_EPOCH, seconds)
}

/// `MJD SECONDS` as ntpd prints them. The milliseconds are truncated, not rounded, so the last
/// line of a day never reads 86400.000 and always agrees with its file's date.
fn stamp(at: Realtime) -> String {
    let t = UtcTime::from_realtime(at);
    let millis = t.nanos / 1_000_000;
    format!("{} {}.{millis:03}", t.day + MJD_UNIX_EPOCH, t.second)
}

/// A source name as one whitespace-free field.
fn field(name: &str) -> String {
    if name.is_empty() {
        return "-".to_string();
    }
    name.chars()
        .map(|c| {
            if c.is_whitespace() || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// A loopstats line (with its newline).
pub fn loop_line(
    at: Realtime,
    offset: f64,
    freq_ppm: f64,
    jitter: f64,
    wander_ppm: f64,
    time_constant: u32,
) -> String {
    format!(
        "{} {offset:.9} {freq_ppm:.3} {jitter:.9} {wander_ppm:.6} {time_constant}\n",
        stamp(at)
    )
}

/// A peerstats line (with its newline). ntpd prints the status with `%x`; a word with the
/// configured bit set (see [`peer_status_word`](crate::ntp::control::peer_status_word)) has four digits either way.
pub fn peer_line(
    at: Realtime,
    source: &str,
    status: u16,
    offset: f64,
    delay: f64,
    dispersion: f64,
    jitter: f64,
) -> String {
    format!(
        "{} {} {status:04x} {offset:.9} {delay:.9} {dispersion:.9} {jitter:.9}\n",
        stamp(at),
        field(source)
    )
}

/// A clockstats line (with its newline). Line breaks and other control characters in `text`
/// become spaces so that one record stays one line.
pub fn clock_line(at: Realtime, source: &str, text: &str) -> String {
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    format!("{} {} {text}\n", stamp(at), field(source))
}

/// The day of a statistics file named `<kind>.YYYYMMDD`, days since 1970.
fn file_day(name: &str, kind: &str) -> Option<i64> {
    let date = name.strip_prefix(kind)?.strip_prefix('.')?;
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (year, month, day) = (
        date[..4].parse().ok()?,
        date[4..6].parse().ok()?,
        date[6..].parse().ok()?,
    );
    ((1..=12).contains(&month) && (1..=31).contains(&day))
        .then(|| days_from_civil(year, month, day))
}

/// The files of `kind` among `names` that are `keep` days old or more on `today`.
fn expired<'n>(
    names: impl Iterator<Item = &'n str>,
    kind: &str,
    today: i64,
    keep: u32,
) -> Vec<&'n str> {
    names
        .filter(|n| file_day(n, kind).is_some_and(|day| today - day >= i64::from(keep)))
        .collect()
}

/// The open file of one kind of statistics, for the UTC day it belongs to.
#[derive(Debug)]
struct DayFile {
    kind: &'static str,
    open: Option<(i64, File)>,
}

impl DayFile {
    fn new(kind: &'static str) -> Self {
        DayFile { kind, open: None }
    }

    /// Appends `line` to the file of the UTC day of `at`, switching files at midnight and then
    /// deleting those `keep` days old: on the image /var/log is a small RAM disk.
    fn append(&mut self, dir: &Path, keep: u32, at: Realtime, line: &str) -> io::Result<()> {
        let day = UtcTime::from_realtime(at).day;
        let file = match self.open.take() {
            Some((open_day, file)) if open_day == day => file,
            _ => {
                fs::create_dir_all(dir)?;
                let (y, m, d) = civil_from_days(day);
                let name = format!("{}.{y:04}{m:02}{d:02}", self.kind);
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join(name))?;
                self.prune(dir, day, keep)?;
                file
            }
        };
        // One write per line: with O_APPEND, a concurrent reader never sees half a record.
        (&file).write_all(line.as_bytes())?;
        // Kept only after a good write: after an error (disk full, remounted read-only) the
        // next line opens the file afresh instead of trusting a handle that failed.
        self.open = Some((day, file));
        Ok(())
    }

    fn prune(&self, dir: &Path, today: i64, keep: u32) -> io::Result<()> {
        let names: Vec<String> = fs::read_dir(dir)?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        for name in expired(names.iter().map(String::as_str), self.kind, today, keep) {
            fs::remove_file(dir.join(name))?;
        }
        Ok(())
    }
}

/// loopstats, peerstats and clockstats files in one directory, created on the first write.
#[derive(Debug)]
pub struct StatsFiles {
    dir: PathBuf,
    /// Days of files kept, today's included.
    keep: u32,
    loops: DayFile,
    peers: DayFile,
    clocks: DayFile,
}

impl StatsFiles {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn keep(&self) -> u32 {
        self.keep
    }

    pub fn new(dir: PathBuf, keep: u32) -> Self {
        StatsFiles {
            dir,
            keep,
            loops: DayFile::new("loopstats"),
            peers: DayFile::new("peerstats"),
            clocks: DayFile::new("clockstats"),
        }
    }

    /// One clock update: offset and jitter in seconds, frequency and wander in ppm, and the
    /// loop's time constant (log2 seconds, as ntpd's poll exponent).
    pub fn loop_stats(
        &mut self,
        at: Realtime,
        offset: f64,
        freq_ppm: f64,
        jitter: f64,
        wander_ppm: f64,
        time_constant: u32,
    ) -> io::Result<()> {
        let line = loop_line(at, offset, freq_ppm, jitter, wander_ppm, time_constant);
        self.loops.append(&self.dir, self.keep, at, &line)
    }

    /// One sample of a source, all in seconds; `status` as from [`peer_status_word`](crate::ntp::control::peer_status_word).
    #[allow(clippy::too_many_arguments)] // ntpd's record, field for field
    pub fn peer_stats(
        &mut self,
        at: Realtime,
        source: &str,
        status: u16,
        offset: f64,
        delay: f64,
        dispersion: f64,
        jitter: f64,
    ) -> io::Result<()> {
        let line = peer_line(at, source, status, offset, delay, dispersion, jitter);
        self.peers.append(&self.dir, self.keep, at, &line)
    }

    /// A reference clock's own report, e.g. its last NMEA sentence or DCF77 minute.
    pub fn clock_stats(&mut self, at: Realtime, source: &str, text: &str) -> io::Result<()> {
        let line = clock_line(at, source, text);
        self.clocks.append(&self.dir, self.keep, at, &line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ntp::control::{peer_status_word, PeerSelect};

    fn utc(date: (i64, u32, u32), time: (u32, u32, u32), nanos: u32) -> Realtime {
        UtcTime::from_civil(date, time, nanos)
            .and_then(|t| t.to_realtime())
            .unwrap()
    }

    /// 2023-02-25 is MJD 60000.
    const MJD_60000: (i64, u32, u32) = (2023, 2, 25);

    /// A fresh directory path under the system temp dir (not created), removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let name = format!("pitime-statsfiles-{tag}-{}", std::process::id());
            let dir = std::env::temp_dir().join(name);
            let _ = fs::remove_dir_all(&dir);
            Scratch(dir)
        }

        fn read(&self, name: &str) -> String {
            fs::read_to_string(self.0.join(name)).unwrap()
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn modified_julian_days_and_seconds() {
        assert_eq!(mjd_and_seconds(Realtime::from_nanos(0)), (40_587, 0.0));
        assert_eq!(
            mjd_and_seconds(utc((2000, 1, 1), (0, 0, 0), 0)),
            (51_544, 0.0)
        );
        let (mjd, seconds) = mjd_and_seconds(utc(MJD_60000, (1, 0, 0), 123_456_789));
        assert_eq!(mjd, 60_000);
        assert!((seconds - 3_600.123_456_789).abs() < 1e-9);
        assert_eq!(mjd_and_seconds(Realtime::from_nanos(-1)).0, 40_586);
    }

    #[test]
    fn stamps_truncate_to_milliseconds() {
        assert_eq!(
            stamp(utc(MJD_60000, (1, 0, 0), 123_999_999)),
            "60000 3600.123"
        );
        assert_eq!(stamp(utc(MJD_60000, (0, 0, 7), 0)), "60000 7.000");
        let last = utc(MJD_60000, (23, 59, 59), 999_999_999);
        assert_eq!(stamp(last), "60000 86399.999");
    }

    #[test]
    fn loop_line_matches_ntpd() {
        let at = utc(MJD_60000, (1, 0, 0), 123_000_000);
        assert_eq!(
            loop_line(at, 0.000_001_234, -12.345, 0.000_000_456, 0.001, 4),
            "60000 3600.123 0.000001234 -12.345 0.000000456 0.001000 4\n"
        );
        // ntpd's own example (monopt.html), fields rounded to its precisions.
        let at = Realtime::from_timespec((50_935 - MJD_UNIX_EPOCH) * 86_400 + 75_440, 31_000_000);
        assert_eq!(
            loop_line(at, 0.000_006_019, 13.778_190, 0.000_351_733, 0.013_380, 6),
            "50935 75440.031 0.000006019 13.778 0.000351733 0.013380 6\n"
        );
    }

    #[test]
    fn peer_line_matches_ntpd() {
        let at = utc(MJD_60000, (1, 0, 0), 123_000_000);
        let status = peer_status_word(PeerSelect::PpsPeer, true);
        assert_eq!(
            peer_line(
                at,
                "127.127.22.0",
                status,
                -1.5e-6,
                0.0,
                0.000_000_954,
                2e-7
            ),
            "60000 3600.123 127.127.22.0 9700 -0.000001500 0.000000000 0.000000954 0.000000200\n"
        );
        assert_eq!(
            peer_line(at, "GPS PPS\t1", 0x8000, 0.25, 0.125, 1.0, 0.5),
            "60000 3600.123 GPS_PPS_1 8000 0.250000000 0.125000000 1.000000000 0.500000000\n"
        );
        assert!(peer_line(at, "", 0x8000, 0.0, 0.0, 0.0, 0.0).starts_with("60000 3600.123 - "));
    }

    #[test]
    fn clock_line_stays_one_line() {
        let at = utc(MJD_60000, (0, 0, 1), 0);
        assert_eq!(
            clock_line(at, "dcf77", "minute 2023-02-25 00:01 CET"),
            "60000 1.000 dcf77 minute 2023-02-25 00:01 CET\n"
        );
        assert_eq!(
            clock_line(at, "gps", "$GPRMC,000001.00,A*6F\r\n"),
            "60000 1.000 gps $GPRMC,000001.00,A*6F  \n"
        );
    }

    #[test]
    fn files_follow_the_utc_day_of_the_record() {
        let scratch = Scratch::new("days");
        let mut stats = StatsFiles::new(scratch.0.clone(), 7);
        let before = utc(MJD_60000, (23, 59, 59), 500_000_000);
        let after = utc((2023, 2, 26), (0, 0, 0), 250_000_000);
        assert!(!scratch.0.exists(), "created before the first record");
        stats
            .loop_stats(before, 1e-6, -12.0, 2e-7, 0.001, 4)
            .unwrap();
        stats
            .loop_stats(after, 2e-6, -12.5, 3e-7, 0.002, 5)
            .unwrap();
        stats
            .peer_stats(after, "gps", 0x9600, 1e-6, 0.0, 1e-6, 1e-7)
            .unwrap();
        stats.clock_stats(before, "gps", "$GPGGA").unwrap();
        stats.clock_stats(after, "gps", "$GPZDA").unwrap();
        // The file follows the record's time, not the order of writing.
        stats.clock_stats(before, "gps", "$GPRMC").unwrap();

        let dir = &scratch;
        assert_eq!(
            dir.read("loopstats.20230225"),
            "60000 86399.500 0.000001000 -12.000 0.000000200 0.001000 4\n"
        );
        assert_eq!(
            dir.read("loopstats.20230226"),
            "60001 0.250 0.000002000 -12.500 0.000000300 0.002000 5\n"
        );
        assert_eq!(
            dir.read("peerstats.20230226"),
            "60001 0.250 gps 9600 0.000001000 0.000000000 0.000001000 0.000000100\n"
        );
        assert_eq!(
            dir.read("clockstats.20230225"),
            "60000 86399.500 gps $GPGGA\n60000 86399.500 gps $GPRMC\n"
        );
        assert_eq!(dir.read("clockstats.20230226"), "60001 0.250 gps $GPZDA\n");
        let mut names: Vec<_> = fs::read_dir(&dir.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names.len(), 5, "{names:?}");
    }

    #[test]
    fn appends_to_what_is_there() {
        let scratch = Scratch::new("append");
        let at = utc(MJD_60000, (12, 0, 0), 0);
        StatsFiles::new(scratch.0.clone(), 7)
            .clock_stats(at, "a", "first")
            .unwrap();
        StatsFiles::new(scratch.0.clone(), 7)
            .clock_stats(at, "a", "second")
            .unwrap();
        assert_eq!(
            scratch.read("clockstats.20230225"),
            "60000 43200.000 a first\n60000 43200.000 a second\n"
        );
    }

    #[test]
    fn errors_are_returned_and_recovered_from() {
        let scratch = Scratch::new("errors");
        // A file where the directory should be.
        fs::write(&scratch.0, "not a directory").unwrap();
        let mut stats = StatsFiles::new(scratch.0.clone(), 7);
        let at = utc(MJD_60000, (12, 0, 0), 0);
        assert!(stats.loop_stats(at, 0.0, 0.0, 0.0, 0.0, 4).is_err());
        fs::remove_file(&scratch.0).unwrap();
        stats.loop_stats(at, 0.0, 0.0, 0.0, 0.0, 5).unwrap();
        assert!(scratch.read("loopstats.20230225").ends_with(" 5\n"));
    }

    #[test]
    fn old_days_are_deleted_when_a_day_begins() {
        let scratch = Scratch::new("prune");
        let mut stats = StatsFiles::new(scratch.0.clone(), 3);
        for day in 1..=5 {
            let at = utc((2026, 12, day), (12, 0, 0), 0);
            stats.clock_stats(at, "gps", "x").unwrap();
            stats.loop_stats(at, 0.0, 0.0, 0.0, 0.0, 4).unwrap();
        }
        // Another program's file and a file of no day are left alone.
        fs::write(scratch.0.join("clockstats.notes"), "").unwrap();
        stats
            .clock_stats(utc((2026, 12, 6), (0, 0, 1), 0), "gps", "x")
            .unwrap();
        let mut names: Vec<String> = fs::read_dir(&scratch.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "clockstats.20261204",
                "clockstats.20261205",
                "clockstats.20261206",
                "clockstats.notes",
                "loopstats.20261203",
                "loopstats.20261204",
                "loopstats.20261205",
            ]
        );
    }

    #[test]
    fn only_well_formed_day_files_of_the_kind_expire() {
        let today = days_from_civil(2026, 12, 10);
        let names = [
            "loopstats.20261201",
            "loopstats.20261209",
            "peerstats.20261201",
            "loopstats.2026120",
            "loopstats.20261301",
            "loopstats.x0261201",
        ];
        assert_eq!(
            expired(names.into_iter(), "loopstats", today, 7),
            ["loopstats.20261201"]
        );
    }
}
