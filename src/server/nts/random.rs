//! Random bytes for nonces, drawn from the kernel a page at a time per thread: a `getrandom`
//! for each reply cost a system call and the kernel generator's setup each time (2.7% of a
//! saturated NTS server's time). Nonces go out in the clear, so keeping the page is no secret.

use std::cell::RefCell;

const PAGE: usize = 4096;

struct Pool {
    bytes: [u8; PAGE],
    used: usize,
}

thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool {
            bytes: [0; PAGE],
            used: PAGE,
        })
    };
}

/// Fills `out` with random bytes; `false` if the system has none to give.
pub fn fill(out: &mut [u8]) -> bool {
    if out.len() > PAGE {
        return getrandom::fill(out).is_ok();
    }
    POOL.with_borrow_mut(|pool| {
        if PAGE - pool.used < out.len() {
            if getrandom::fill(&mut pool.bytes).is_err() {
                return false;
            }
            pool.used = 0;
        }
        out.copy_from_slice(&pool.bytes[pool.used..pool.used + out.len()]);
        pool.used += out.len();
        true
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_never_repeat_across_refills() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..3 * PAGE / 16 {
            let mut nonce = [0u8; 16];
            assert!(fill(&mut nonce));
            assert!(seen.insert(nonce));
        }
        let mut big = vec![0u8; PAGE + 1];
        assert!(fill(&mut big));
        assert!(big.iter().any(|&b| b != 0));
    }
}
