//! The drift file: the frequency correction learned by the loop, kept across restarts so the
//! clock does not have to relearn it (minutes to hours of larger offsets after every boot).
//!
//! Format as ntpd writes it (ntpd docs, `driftfile` in the miscellaneous options): one line
//! with the frequency in ppm, e.g. `-12.345\n`. chrony's drift file (`freq_ppm skew_ppm`) is
//! read too, so a Pi moving from chrony keeps what it learned.
//!
//! Sign convention: the value is the frequency correction applied to the local clock, as ntpd
//! and the kernel's `timex.freq` have it: positive means the clock is sped up. chrony stores
//! the opposite sign (its `sys_timex.c` sets `timex.freq = -freq_ppm`), so its number is negated.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Larger corrections are not a crystal's error but a broken file or loop (ntpd's limit too).
pub const MAX_PPM: f64 = 500.0;

#[derive(Debug, thiserror::Error)]
pub enum DriftError {
    #[error("drift file {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("drift file {}: expected a frequency in ppm, found {text:?}", path.display())]
    Garbage { path: PathBuf, text: String },
    #[error("drift file {}: {ppm} ppm is outside ±{MAX_PPM} ppm", path.display())]
    OutOfRange { path: PathBuf, ppm: f64 },
}

/// Why a drift file's text was refused, before the path is attached.
#[derive(Debug, PartialEq)]
pub(crate) enum Refusal {
    Garbage,
    OutOfRange(f64),
}

/// The frequency in ntpd's sign convention from the text of an ntpd or chrony drift file.
pub(crate) fn parse(text: &str) -> Result<f64, Refusal> {
    let numbers: Vec<f64> = text
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| Refusal::Garbage)?;
    let ppm = match numbers[..] {
        [ntpd] => ntpd,
        [chrony, _skew] => -chrony,
        _ => return Err(Refusal::Garbage),
    };
    if !ppm.is_finite() {
        return Err(Refusal::Garbage);
    }
    if ppm.abs() > MAX_PPM {
        return Err(Refusal::OutOfRange(ppm));
    }
    Ok(ppm)
}

/// The stored frequency in ppm; `Ok(None)` when there is no drift file yet (first start).
pub fn read(path: &Path) -> Result<Option<f64>, DriftError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            let path = path.to_path_buf();
            return Err(DriftError::Io { path, source });
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    match parse(&text) {
        Ok(ppm) => Ok(Some(ppm)),
        Err(Refusal::Garbage) => Err(DriftError::Garbage {
            path: path.to_path_buf(),
            // Enough to recognise the file in a log line, not a dump of a large one.
            text: text.chars().take(40).collect(),
        }),
        Err(Refusal::OutOfRange(ppm)) => Err(DriftError::OutOfRange {
            path: path.to_path_buf(),
            ppm,
        }),
    }
}

/// Replaces the drift file with `ppm` in ntpd's format, atomically (`atomic_file`).
pub fn write(path: &Path, ppm: f64) -> io::Result<()> {
    // Refuse what `read` would refuse, so a bad loop state cannot poison the next start.
    if !ppm.is_finite() || ppm.abs() > MAX_PPM {
        let msg = format!("drift {ppm} ppm is not a frequency within ±{MAX_PPM} ppm");
        return Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
    }
    // ntpd's precision: a thousandth of a ppm is far below what the loop can resolve.
    crate::atomic_file::write(path, format!("{ppm:.3}\n").as_bytes(), 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system temp dir, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!(
                "pitime-driftfile-{tag}-{}-{:?}",
                std::process::id(),
                std::time::SystemTime::now()
            ));
            fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn parses_ntpd_and_chrony_formats() {
        assert_eq!(parse("-12.345\n"), Ok(-12.345));
        assert_eq!(parse("  7.5  \r\n"), Ok(7.5));
        assert_eq!(parse("0"), Ok(0.0));
        assert_eq!(parse("500.000\n"), Ok(500.0));
        // chrony: frequency and skew, padded to 20 columns, opposite sign.
        assert_eq!(
            parse("           -3.250000            0.012345\n"),
            Ok(3.25)
        );
    }

    #[test]
    fn refuses_garbage_and_wild_values() {
        for text in [
            "", "\n", "abc", "1.2.3", "12 ppm", "1 2 3", "nan", "inf", "-inf", "0x10",
        ] {
            assert_eq!(parse(text), Err(Refusal::Garbage), "{text:?}");
        }
        assert_eq!(parse("500.001"), Err(Refusal::OutOfRange(500.001)));
        assert_eq!(parse("-1e9"), Err(Refusal::OutOfRange(-1e9)));
    }

    #[test]
    fn missing_file_is_no_drift_yet() {
        let dir = Scratch::new("missing");
        assert!(matches!(read(&dir.0.join("drift")), Ok(None)));
    }

    #[test]
    fn errors_name_the_file() {
        let dir = Scratch::new("errors");
        let path = dir.0.join("drift");
        fs::write(&path, b"\xff\xfegarbage").unwrap();
        let err = read(&path).unwrap_err();
        assert!(matches!(err, DriftError::Garbage { .. }));
        assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
        fs::write(&path, "612.5\n").unwrap();
        let err = read(&path).unwrap_err();
        assert!(matches!(err, DriftError::OutOfRange { ppm, .. } if ppm == 612.5));
        assert!(err.to_string().contains("612.5 ppm"), "{err}");
        // A directory where the file should be is an I/O error, not "no drift yet".
        let err = read(&dir.0).unwrap_err();
        assert!(matches!(err, DriftError::Io { .. }), "{err}");
    }

    #[test]
    fn write_replaces_atomically_and_reads_back() {
        let dir = Scratch::new("write");
        let path = dir.0.join("pitime.drift");
        write(&path, -12.3456).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "-12.346\n");
        write(&path, 3.0).unwrap();
        assert_eq!(read(&path).unwrap(), Some(3.0));
        // Only the drift file remains: the temporary was renamed away.
        let names: Vec<_> = fs::read_dir(&dir.0)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["pitime.drift"]);
    }

    #[test]
    fn write_refuses_what_read_would_refuse() {
        let dir = Scratch::new("refuse");
        let path = dir.0.join("drift");
        write(&path, 1.0).unwrap();
        for bad in [f64::NAN, f64::INFINITY, 501.0, -501.0] {
            let err = write(&path, bad).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        }
        assert_eq!(read(&path).unwrap(), Some(1.0));
    }

    #[test]
    fn failed_write_leaves_no_temporary() {
        let dir = Scratch::new("fail");
        // Renaming a file over a non-empty directory fails after the temporary was written.
        let path = dir.0.join("drift");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("keep"), "x").unwrap();
        assert!(write(&path, 1.0).is_err());
        assert!(!dir.0.join("drift.tmp").exists());
    }
}
