#!/usr/bin/env bash
# Runs `pitime simulate` over seeds and conditions and prints a Markdown table of medians: time
# to lock after the first PPS sample, RMS and maximum error after lock, and the error after
# one hour without references. docs/benchmarks.md quotes its output.
#
#   scripts/bench-discipline.sh [SEEDS]
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${1:-9}
cargo build --release --quiet
PITIME=target/release/pitime

# The value of a numeric JSON field, from one line of output.
field() { grep -o "\"$1\":[-0-9.eE+]*" | head -1 | cut -d: -f2; }
# The median of the numbers on standard input.
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

echo "| condition | actuator | lock after first PPS (s) | RMS after lock (us) | max after lock (us) | error after 1 h holdover (us) |"
echo "|---|---|---|---|---|---|"
row() {
    local name=$1 actuator=$2; shift 2
    local lock=() rms=() max=() hold=()
    for seed in $(seq 1 "$SEEDS"); do
        out=$($PITIME simulate --duration 7200 --outage 3600:7200 --seed "$seed" --actuator "$actuator" "$@")
        lock+=("$(field lock_after_first_pps_s <<<"$out")")
        rms+=("$(field rms_error_s <<<"$out")")
        max+=("$(field max_error_s <<<"$out")")
        # The size of the error: `tr -d -` would also drop an exponent's sign (7.8e-6).
        hold+=("$(field error_at_end_s <<<"$out" | awk '{print ($1 < 0 ? -$1 : $1)}')")
    done
    us() { awk '{printf "%.3f", $1 * 1e6}'; }
    printf '| %s | %s | %s | %s | %s | %s |\n' "$name" "$actuator" \
        "$(printf '%s\n' "${lock[@]}" | median)" \
        "$(printf '%s\n' "${rms[@]}" | median | us)" \
        "$(printf '%s\n' "${max[@]}" | median | us)" \
        "$(printf '%s\n' "${hold[@]}" | median | us)"
}
for actuator in virtual kernel; do
    row "1 us PPS jitter, 30 ppm, 0.01 ppm/h wander" "$actuator"
done
row "5 us PPS jitter" virtual --pps-jitter-ns 5000
row "20 us PPS jitter" virtual --pps-jitter-ns 20000
row "0.1 ppm/h wander" virtual --wander-ppm 0.1
row "1 ppm daily temperature swing" virtual --temperature-ppm 1
row "-200 ppm, clock 5 s behind" kernel --freq-offset-ppm -200 --clock-offset -5
row "drift file known" virtual --drift-ppm -30
row "drift file 110 ppm wrong" virtual --drift-ppm 80
row "clock 50 ms off (slewed)" kernel --clock-offset 0.05
