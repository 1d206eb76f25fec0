//! Reading a PTP hardware clock (/dev/ptpN) against the system clock, for `phc_fit`. The best
//! ioctl the driver has, as chrony does: PTP_SYS_OFFSET_PRECISE (a cross-timestamp the
//! hardware takes of both clocks at once), else PTP_SYS_OFFSET_EXTENDED (the system clock
//! read just before and after each read of the PHC, in the driver), else PTP_SYS_OFFSET
//! (the same, less tightly). The structs are the libc crate's, of linux/ptp_clock.h.

use std::fs::File;
use std::io;
use std::mem::zeroed;
use std::os::fd::AsRawFd;

use super::phc_fit::Reading;

/// Readings asked of the driver per poll (the kernel allows up to PTP_MAX_SAMPLES, 25).
const READINGS: usize = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Precise,
    Extended,
    Basic,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Precise => "PTP_SYS_OFFSET_PRECISE",
            Method::Extended => "PTP_SYS_OFFSET_EXTENDED",
            Method::Basic => "PTP_SYS_OFFSET",
        }
    }
}

pub struct Phc {
    file: File,
    method: Method,
    /// `method` has worked once: from then on it is kept, whatever a reading's error.
    settled: bool,
}

impl Phc {
    /// Opens /dev/ptp`index` read-only: reading the clock needs nothing more.
    pub fn open(index: u32) -> io::Result<Phc> {
        Phc::open_path(&format!("/dev/ptp{index}"))
    }

    pub(crate) fn open_path(path: &str) -> io::Result<Phc> {
        let file =
            File::open(path).map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))?;
        Ok(Phc {
            file,
            method: Method::Precise,
            settled: false,
        })
    }

    /// The ioctl the last reading used.
    pub fn method(&self) -> Method {
        self.method
    }

    /// Reads both clocks, into `out` (emptied first). Until one ioctl has worked, one that
    /// fails moves to the next, for good (as chrony settles on one: a driver may have
    /// PTP_SYS_OFFSET_PRECISE and still fail it on this hardware).
    pub fn read(&mut self, out: &mut Vec<Reading>) -> io::Result<()> {
        out.clear();
        loop {
            let result = match self.method {
                Method::Precise => self.precise(out),
                Method::Extended => self.extended(out),
                Method::Basic => self.basic(out),
            };
            self.settled |= result.is_ok();
            let next = result.is_err() && !self.settled;
            self.method = match (next, self.method) {
                (true, Method::Precise) => Method::Extended,
                (true, Method::Extended) => Method::Basic,
                (true, Method::Basic) => {
                    // None has worked yet: all three again at the next reading.
                    self.method = Method::Precise;
                    return result;
                }
                _ => return result,
            };
        }
    }

    fn ioctl<T>(&self, request: libc::Ioctl, arg: &mut T) -> io::Result<()> {
        // SAFETY: each caller passes the struct its request reads and writes, alive across the
        // call; the descriptor is open.
        let rc = unsafe { libc::ioctl(self.file.as_raw_fd(), request, arg as *mut T) };
        match rc {
            0 => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    }

    fn precise(&self, out: &mut Vec<Reading>) -> io::Result<()> {
        // SAFETY: all-zero is a valid ptp_sys_offset_precise.
        let mut p: libc::ptp_sys_offset_precise = unsafe { zeroed() };
        self.ioctl(libc::PTP_SYS_OFFSET_PRECISE, &mut p)?;
        out.extend(precise_reading(&p));
        Ok(())
    }

    fn extended(&self, out: &mut Vec<Reading>) -> io::Result<()> {
        // SAFETY: all-zero is a valid ptp_sys_offset_extended; its clock id 0 is
        // CLOCK_REALTIME, and kernels before that field (6.10) read it as reserved zero.
        let mut p: libc::ptp_sys_offset_extended = unsafe { zeroed() };
        p.n_samples = READINGS as u32;
        self.ioctl(libc::PTP_SYS_OFFSET_EXTENDED, &mut p)?;
        out.extend(extended_readings(&p));
        Ok(())
    }

    fn basic(&self, out: &mut Vec<Reading>) -> io::Result<()> {
        // SAFETY: all-zero is a valid ptp_sys_offset.
        let mut p: libc::ptp_sys_offset = unsafe { zeroed() };
        p.n_samples = READINGS as u32;
        self.ioctl(libc::PTP_SYS_OFFSET, &mut p)?;
        out.extend(basic_readings(&p));
        Ok(())
    }
}

fn nanos(t: &libc::ptp_clock_time) -> Option<i64> {
    t.sec
        .checked_mul(1_000_000_000)?
        .checked_add(i64::from(t.nsec))
}

fn reading(
    before: &libc::ptp_clock_time,
    phc: &libc::ptp_clock_time,
    after: &libc::ptp_clock_time,
) -> Option<Reading> {
    Some(Reading {
        sys_before: nanos(before)?,
        phc: nanos(phc)?,
        sys_after: nanos(after)?,
    })
}

fn precise_reading(p: &libc::ptp_sys_offset_precise) -> Option<Reading> {
    reading(&p.sys_realtime, &p.device, &p.sys_realtime)
}

fn extended_readings(p: &libc::ptp_sys_offset_extended) -> impl Iterator<Item = Reading> + '_ {
    let n = (p.n_samples as usize).min(p.ts.len());
    p.ts[..n]
        .iter()
        .filter_map(|[b, phc, a]| reading(b, phc, a))
}

/// PTP_SYS_OFFSET's array: system, PHC, system, PHC, ..., system.
fn basic_readings(p: &libc::ptp_sys_offset) -> impl Iterator<Item = Reading> + '_ {
    let n = (p.n_samples as usize).min((p.ts.len() - 1) / 2);
    (0..n).filter_map(|i| reading(&p.ts[2 * i], &p.ts[2 * i + 1], &p.ts[2 * i + 2]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(sec: i64, nsec: u32) -> libc::ptp_clock_time {
        libc::ptp_clock_time {
            sec,
            nsec,
            reserved: 0,
        }
    }

    #[test]
    fn each_ioctls_answer_becomes_readings() {
        // SAFETY: all-zero is valid for these plain C structs.
        let (mut b, mut e, mut p): (
            libc::ptp_sys_offset,
            libc::ptp_sys_offset_extended,
            libc::ptp_sys_offset_precise,
        ) = unsafe { (zeroed(), zeroed(), zeroed()) };
        b.n_samples = 2;
        b.ts[..5].copy_from_slice(&[t(100, 0), t(37, 5), t(100, 90), t(37, 95), t(100, 200)]);
        let got: Vec<Reading> = basic_readings(&b).collect();
        assert_eq!(
            got[1],
            Reading {
                sys_before: 100_000_000_090,
                phc: 37_000_000_095,
                sys_after: 100_000_000_200
            }
        );
        e.n_samples = 1;
        e.ts[0] = [t(100, 0), t(37, 5), t(100, 40)];
        assert_eq!(extended_readings(&e).count(), 1);
        p.device = t(37, 5);
        p.sys_realtime = t(100, 20);
        let r = precise_reading(&p).unwrap();
        assert_eq!(
            (r.sys_before, r.sys_after, r.phc),
            (100_000_000_020, 100_000_000_020, 37_000_000_005)
        );
        // A driver's nonsense (more samples than the array, seconds out of range) is cut off.
        b.n_samples = 1000;
        assert_eq!(basic_readings(&b).count(), 25);
        e.ts[0][1] = t(i64::MAX, 0);
        assert_eq!(extended_readings(&e).count(), 0);
    }

    #[test]
    fn a_device_that_is_no_clock_fails_each_ioctl_and_is_tried_afresh_next_time() {
        let mut phc = Phc::open_path("/dev/null").unwrap();
        let mut out = vec![Reading {
            sys_before: 1,
            phc: 2,
            sys_after: 3,
        }];
        let e = phc.read(&mut out).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOTTY), "{e}");
        assert_eq!(phc.method(), Method::Precise);
        assert!(out.is_empty());
    }

    #[test]
    fn a_missing_clock_is_an_error_naming_it() {
        let e = Phc::open(4000).err().expect("no /dev/ptp4000");
        assert!(e.to_string().contains("/dev/ptp4000"), "{e}");
    }
}
