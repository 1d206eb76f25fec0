#!/usr/bin/env bash
# Resident memory of an NTS-serving pitime as clients come: NTS requests from 100 and then from
# 10,000 client sockets (each its own address and port, every reply a fresh cookie), twice, and
# then 100 and 10,000 key exchanges (eight cookies each). The server keeps no state per NTS
# client, so its memory should not follow their number. pitime on CPU 0, the load on CPU 1.
#
#   scripts/bench-nts-memory.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-config.sh
SECONDS_PER_RUN=${1:-3}
cargo build --release --quiet
BIN=$PWD/target/release/pitime
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
bench_config 11133 14470 "$work/nts" >"$work/pitime.toml"
taskset -c 0 "$BIN" run -c "$work/pitime.toml" --log-level error &
pid=$!
while [ ! -s "$work/nts/nts-ca.pem" ]; do sleep 0.1; done
sleep 1
nts=(--nts-ke 127.0.0.1:14470 --nts-ca "$work/nts/nts-ca.pem")
report() {
  printf '| %s | %s | %s | %s |\n' "$1" "$2" \
    "$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")" "$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")"
}
echo "| after | answered | RSS KiB | peak RSS KiB |"
echo "|---|---|---|---|"
report "start" "-"
for clients in 100 10000 100 10000; do
  result=$(taskset -c 1 "$BIN" bench-server --server 127.0.0.1:11133 --duration "$SECONDS_PER_RUN" \
    --sources "$clients" --window 1 "${nts[@]}")
  report "NTS requests from $clients clients" \
    "$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["replies"])' "$result")"
done
for sessions in 100 10000 10000; do
  result=$(taskset -c 1 "$BIN" bench-server "${nts[@]}" --ke-handshakes "$sessions")
  report "$sessions key exchanges" \
    "$(python3 -c 'import json, sys; r = json.loads(sys.argv[1]); print(r["handshakes"] - r["failed"])' "$result")"
done
