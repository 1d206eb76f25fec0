#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ (cargo-fuzz, libFuzzer) for SECONDS each (default 600), two
# at a time, then minimises each corpus into fuzz/corpus/TARGET. A crash stops with the input
# saved under fuzz/artifacts/TARGET. cargo-fuzz needs nightly compiler flags (-Z); this runs
# them on the machine's stable toolchain with RUSTC_BOOTSTRAP=1, which unlocks them.
# The ordinary test run replays the committed corpora without libFuzzer (tests/fuzz_corpus.rs).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-600}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O
targets=$(cargo fuzz list)
run() {
  mkdir -p "corpus/$1"
  cargo fuzz run -O "$1" "corpus/$1" -- -max_total_time="$seconds" -rss_limit_mb=2048 \
    -print_final_stats=1 > "artifacts-$1.log" 2>&1 ||
    { echo "fuzz: $1 failed, see fuzz/artifacts-$1.log" >&2; return 1; }
  grep -E "stat::number_of_executed_units|stat::new_units_added" "artifacts-$1.log" |
    sed "s/^/$1: /"
}
set -- $targets
while [ $# -gt 0 ]; do
  run "$1" & first=$!
  [ $# -gt 1 ] && { run "$2" || exit 1; shift; }
  wait "$first"
  shift
done
for t in $targets; do
  cargo fuzz cmin -O "$t" "corpus/$t" > /dev/null 2>&1
done
rm -f artifacts-*.log
