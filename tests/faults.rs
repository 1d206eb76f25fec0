//! The files pitime writes, with the writer killed (SIGKILL) at random moments a thousand
//! times: the drift file and the NTS cookie keys are always a complete old or new version, the
//! statistics files only ever hold whole lines.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::TempDir;
use pitime::clock::system::realtime_now;
use pitime::discipline::driftfile;
use pitime::discipline::statsfiles::StatsFiles;
use pitime::server::nts::cookie::{CookieKeys, MasterKey};
use pitime::server::nts::keyfile;

/// The directory the writer child writes in.
const WRITER_DIR: &str = "PITIME_FAULT_DIR";
const KILLS: u32 = 1000;

/// Run in a child process by the test below, never on its own: writes drift files, NTS cookie
/// keys and statistics lines as fast as it can, saying when the first is written, until killed.
#[test]
#[ignore = "the child process of files_survive_sigkill_at_any_moment"]
fn writer_until_killed() {
    let dir = std::path::PathBuf::from(std::env::var(WRITER_DIR).expect("run by the fault test"));
    let mut stats = StatsFiles::new(dir.join("stats"), 7);
    for i in 0u64.. {
        // Every value written is a whole number of thousandths below 100 ppm.
        let ppm = (i % 100_000) as f64 / 1000.0;
        driftfile::write(&dir.join("drift"), ppm).unwrap();
        keyfile::save(&dir.join("nts-keys"), &keys(i)).unwrap();
        stats
            .loop_stats(realtime_now(), ppm * 1e-6, ppm, 1e-6, 0.01, 4)
            .unwrap();
        if i == 0 {
            println!("ready");
        }
    }
}

#[test]
fn files_survive_sigkill_at_any_moment() {
    let dir = TempDir::new("faults");
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..KILLS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "writer_until_killed", "--ignored", "--nocapture"])
            .args(["--test-threads", "1", "-q"])
            .env(WRITER_DIR, &dir.0)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait for the first complete write, then kill somewhere in the next 3 ms.
        let mut ready = String::new();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        while !ready.contains("ready") {
            ready.clear();
            assert_ne!(out.read_line(&mut ready).unwrap(), 0, "the writer ended");
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_micros(rng % 3000));
        child.kill().unwrap();
        child.wait().unwrap();

        let ppm = driftfile::read(&dir.path("drift"))
            .unwrap_or_else(|e| panic!("a torn drift file: {e}"))
            .expect("a drift file");
        assert!((0.0..100.0).contains(&ppm) && (ppm * 1000.0).fract().abs() < 1e-6);
        whole_lines(&dir.path("stats"));
        let saved = keyfile::load(&dir.path("nts-keys"))
            .unwrap_or_else(|e| panic!("a torn NTS keys file: {e}"));
        let newest = saved.newest().expect("a key").id;
        assert_eq!(saved, keys(u64::from(newest)));
    }
}

/// The writer's `i`th set of cookie keys: a week of daily keys ending with key `i`, each key's
/// bytes made from its id, so a reader can tell a complete set from a mix.
fn keys(i: u64) -> CookieKeys {
    let id = i as u32;
    let keys = (id.saturating_sub(6)..=id)
        .map(|id| MasterKey {
            id,
            created: u64::from(id) * 86_400,
            key: [id as u8; 32],
        })
        .collect();
    CookieKeys::new(keys)
}

/// Every line of every statistics file is a complete loopstats record.
fn whole_lines(dir: &Path) {
    for file in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
        assert!(text.ends_with('\n'), "a torn last line");
        for line in text.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            assert_eq!(fields.len(), 7, "{line:?}");
            assert!(fields.iter().all(|f| f.parse::<f64>().is_ok()), "{line:?}");
        }
    }
}
