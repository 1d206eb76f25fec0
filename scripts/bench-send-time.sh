#!/usr/bin/env bash
# Two pitime binaries A/B (docs/benchmarks.md, transmit timestamps, part 3). First the error of
# the user-space transmit timestamp at saturation: each binary (`kernel` timestamps, CPU 0) driven
# in turn by `bench-server --interleaved` from 1024 addresses (CPU 1), which compares it with the
# kernel's. Then as a basic-mode chronyd sees them under load: pitime (`kernel` timestamps,
# CPU 0) in one network namespace, saturated through its loopback by `bench-server` (32 x 32
# requests in flight, CPU 1), and chronyd -x (16 polls a second, basic mode, `log
# measurements`) in another, over a veth pair; the binaries alternate, ROUNDS times, SECS seconds
# each. Prints the median offset (the bias an early transmit timestamp gives), its
# standard deviation and median absolute deviation, and the median delay. Needs root and chrony.
#
#   sudo scripts/bench-send-time.sh BEFORE_BINARY AFTER_BINARY [ROUNDS] [SECS]
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-config.sh
A=$(realpath "$1"); B=$(realpath "$2"); ROUNDS=${3:-3}; SECS=${4:-12}
ns=ab$$
work=$(mktemp -d); chmod 700 $work
cleanup() { kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; ip netns del $ns-s; ip netns del $ns-c; rm -rf $work; }
trap cleanup EXIT
ip netns add $ns-s; ip netns add $ns-c
ip -n $ns-s link set lo up; ip -n $ns-c link set lo up
ip -n $ns-s link add vs type veth peer vc; ip -n $ns-s link set vc netns $ns-c
ip -n $ns-s addr add 10.124.0.1/24 dev vs; ip -n $ns-c addr add 10.124.0.2/24 dev vc
ip -n $ns-s link set vs up; ip -n $ns-c link set vc up
timestamps_config 0.0.0.0:123 kernel > $work/p.toml
for r in $(seq $ROUNDS); do
  for who in before after; do
    bin=$A; [ $who = after ] && bin=$B
    ip netns exec $ns-s taskset -c 0 $bin run -c $work/p.toml --log-level warn & spid=$!
    sleep 1
    echo "$who T3 error: $(ip netns exec $ns-s taskset -c 1 $B bench-server --server 127.0.0.1:123 \
      --warmup 0 --duration $SECS --sources 1024 --window 1 --interleaved | python3 -c \
      'import json, sys; print(json.load(sys.stdin)["t3_error_us"])')"
    kill $spid; wait $spid 2>/dev/null
    ip netns exec $ns-s taskset -c 0 $bin run -c $work/p.toml --log-level warn & spid=$!
    sleep 1
    ip netns exec $ns-s taskset -c 1 $B bench-server --server 127.0.0.1:123 --sources 32 --window 32 --warmup 0 --duration $((SECS + 3)) >/dev/null & lpid=$!
    dir=$work/c-$r-$who; mkdir -m 700 $dir
    ip netns exec $ns-c chronyd -x -d -u root -f /dev/null "server 10.124.0.1 minpoll -4 maxpoll -4" "cmdport 0" \
      "bindcmdaddress $dir/sock" "pidfile $dir/pid" "logdir $dir" "log measurements" 2>$dir/log & cpid=$!
    sleep $((SECS + 1))
    kill $cpid; wait $cpid 2>/dev/null; kill $lpid $spid; wait $lpid $spid 2>/dev/null
    python3 - "$dir/measurements.log" $who <<'PY'
import sys, statistics
o=[]; d=[]
for l in open(sys.argv[1]):
    f=l.split()
    if len(f) > 13 and f[2] == "10.124.0.1":
        o.append(float(f[11])*1e6); d.append(float(f[12])*1e6)
o=o[32:]; d=d[32:]
m=statistics.median(o)
mad=statistics.median(abs(x-m) for x in o)
print(f"{sys.argv[2]:6} n={len(o)} offset median {m:.1f} us, std {statistics.pstdev(o):.1f}, MAD {mad:.1f}; delay median {statistics.median(d):.1f}")
PY
  done
done
