//! Every input the fuzzers kept (`fuzz/corpus/TARGET/`, seeds and what `scripts/fuzz.sh`
//! found covering new paths) replayed through the same entry points on the stable compiler: a
//! parser change that panics on any of them, or breaks a promise a target checks (no reply
//! larger than its request, a drift within bounds), fails here.

use std::path::Path;

#[test]
fn every_saved_fuzz_input_is_handled() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for (name, target) in pitime::fuzz::TARGETS {
        let dir = corpus.join(name);
        let inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.unwrap().path())
            .collect();
        assert!(!inputs.is_empty(), "no saved inputs for {name}");
        for input in inputs {
            let data = std::fs::read(&input).unwrap();
            // A panic names the input that caused it.
            let result = std::panic::catch_unwind(|| target(&data));
            assert!(result.is_ok(), "{name} panicked on {}", input.display());
        }
    }
}
