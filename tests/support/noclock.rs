//! LD_PRELOAD for a time daemon under test: every request to change the system clock succeeds
//! and changes nothing (it is turned into a read of the clock's state), so that a daemon that
//! insists on clock control can run as a client on a machine whose clock is not its own.
use std::ffi::{c_int, c_long, c_void};

extern "C" {
    fn syscall(number: c_long, ...) -> c_long;
}

#[cfg(target_arch = "x86_64")]
const SYS_ADJTIMEX: c_long = 159;
#[cfg(target_arch = "x86_64")]
const SYS_CLOCK_ADJTIME: c_long = 305;
#[cfg(target_arch = "aarch64")]
const SYS_ADJTIMEX: c_long = 171;
#[cfg(target_arch = "aarch64")]
const SYS_CLOCK_ADJTIME: c_long = 266;

/// `struct timex` starts with its `modes`; zero asks for the state and changes nothing.
unsafe fn read_only(tx: *mut c_void) {
    if !tx.is_null() {
        *(tx as *mut u32) = 0;
    }
}

#[no_mangle]
pub unsafe extern "C" fn adjtimex(tx: *mut c_void) -> c_int {
    read_only(tx);
    syscall(SYS_ADJTIMEX, tx) as c_int
}

#[no_mangle]
pub unsafe extern "C" fn ntp_adjtime(tx: *mut c_void) -> c_int {
    adjtimex(tx)
}

#[no_mangle]
pub unsafe extern "C" fn clock_adjtime(clock: c_int, tx: *mut c_void) -> c_int {
    read_only(tx);
    syscall(SYS_CLOCK_ADJTIME, clock as c_long, tx) as c_int
}

#[no_mangle]
pub extern "C" fn clock_settime(_clock: c_int, _ts: *const c_void) -> c_int {
    0
}

#[no_mangle]
pub extern "C" fn settimeofday(_tv: *const c_void, _tz: *const c_void) -> c_int {
    0
}
