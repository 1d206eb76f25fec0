#!/usr/bin/env bash
# Transmit timestamps and interleaved mode, measured in one sitting (docs/benchmarks.md). Needs
# root (it runs in network namespaces of its own), chrony and util-linux.
#
#   scripts/bench-timestamps.sh [ROUNDS] [SECONDS]
#
# Part 1, on loopback: pitime with `timestamping = "user"` (no transmit timestamps, no
# interleaved state), pitime with "kernel", and `chronyd -x` (which serves interleaved mode when
# it has kernel transmit timestamps), each pinned to CPU 0, driven in turn by
# `pitime bench-server` pinned to CPU 1 with basic requests and with alternating
# basic/interleaved requests (--interleaved: the error of the user-space T3 against the kernel's),
# at light load (1 client, 1 request in flight) and at saturation (1024 client addresses, one
# request in flight each, since interleaving is per address). Besides replies per second, the
# server's CPU time per reply (utime + stime from /proc over the run): on a machine shared with
# other work, throughput swings with the neighbours, CPU per reply much less.
#
# Part 2, over a veth pair: chronyd as a client (16 polls a second, `log measurements`) of pitime
# in another namespace, basic and `xleave`, with the server idle and with the server saturated by
# bench-server on its loopback; the jitter (standard deviation) of the offsets and delays chronyd
# measured.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
SECONDS_PER_RUN=${2:-5}
if [ -z "${PITIME_BENCH_NS:-}" ]; then
  cargo build --release --quiet
  exec unshare --net env PITIME_BENCH_NS=1 "$0" "$@"
fi
ip link set lo up
BIN=$PWD/target/release/pitime
work=$(mktemp -d)
chmod 700 "$work"
ns=ptb$$
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  wait 2>/dev/null || true
  ip netns del "$ns-s" 2>/dev/null || true
  ip netns del "$ns-c" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

. scripts/bench-config.sh
pitime_conf() { timestamps_config "$2" "$3" > "$1"; } # FILE LISTEN TIMESTAMPING

echo "== part 1: loopback" >&2
pitime_conf "$work/user.toml" 127.0.0.1:11126 user
pitime_conf "$work/kernel.toml" 127.0.0.1:11123 kernel
taskset -c 0 "$BIN" run -c "$work/user.toml" --log-level warn &
user_pid=$!
taskset -c 0 "$BIN" run -c "$work/kernel.toml" --log-level warn &
kernel_pid=$!
taskset -c 0 chronyd -x -d -f /dev/null "local stratum 1" "allow" "port 11124" "cmdport 0" \
  "pidfile $work/chronyd.pid" "driftfile $work/chrony.drift" 2>"$work/chronyd.log" &
sleep 2
declare -A pid=([pitime-user]=$user_pid [pitime-kernel]=$kernel_pid [chrony]=$(cat "$work/chronyd.pid"))
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
for load in "light 1" "saturated 1024"; do
  set -- $load
  for round in $(seq "$ROUNDS"); do
    for kind in basic interleaved; do
      flag=$([ $kind = interleaved ] && echo --interleaved || true)
      for server in pitime-user:11126 pitime-kernel:11123 chrony:11124; do
        name=${server%%:*}
        before=$(ticks "${pid[$name]}")
        result=$(taskset -c 1 "$BIN" bench-server --server "127.0.0.1:${server#*:}" \
          --warmup 0 --duration "$SECONDS_PER_RUN" --sources "$2" --window 1 $flag)
        cpu=$(( $(ticks "${pid[$name]}") - before ))
        echo "$1 $kind $name $cpu $result" | tee -a "$work/results" >&2
      done
    done
  done
done
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
echo "resident memory after the runs: pitime-user $(rss $user_pid) KiB, pitime-kernel $(rss $kernel_pid) KiB"

python3 - "$work/results" <<'PY'
import json, os, statistics, sys
rows = {}
tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
for line in open(sys.argv[1]):
    load, kind, server, ticks, js = line.split(" ", 4)
    r = json.loads(js)
    r["cpu_us"] = int(ticks) * tick_us / max(r["replies"], 1)
    rows.setdefault((load, kind, server), []).append(r)
print()
print("| load | requests | server | replies/s (median) | CPU us/reply (median) | CPU vs pitime-user | T3 samples | T3 error p50 us | p99 us | max us |")
print("|---|---|---|---|---|---|---|---|---|---|")
for load in ("light", "saturated"):
    for kind in ("basic", "interleaved"):
        med = lambda server, f: statistics.median(f(r) for r in rows[(load, kind, server)])
        base = med("pitime-user", lambda r: r["cpu_us"])
        for server in ("pitime-user", "pitime-kernel", "chrony"):
            rps = med(server, lambda r: r["replies_per_second"])
            cpu = med(server, lambda r: r["cpu_us"])
            cells = ["", "", "", ""]
            if kind == "interleaved":
                samples = sum(r["t3_samples"] for r in rows[(load, kind, server)])
                cells = [f"{samples}"] + [
                    f"{med(server, lambda r, k=k: r['t3_error_us'][k]):.1f}" if samples else "-"
                    for k in ("p50", "p99", "max")]
            print(f"| {load} | {kind} | {server} | {rps:,.0f} | {cpu:.2f} | {cpu / base:.2f} | " + " | ".join(cells) + " |")
PY
kill $user_pid $kernel_pid "$(cat "$work/chronyd.pid")"
wait 2>/dev/null || true

echo "== part 2: chronyd over a veth pair" >&2
ip netns add "$ns-s"
ip netns add "$ns-c"
ip -n "$ns-s" link set lo up
ip -n "$ns-c" link set lo up
ip -n "$ns-s" link add vs type veth peer vc
ip -n "$ns-s" link set vc netns "$ns-c"
ip -n "$ns-s" addr add 10.123.0.1/24 dev vs
ip -n "$ns-c" addr add 10.123.0.2/24 dev vc
ip -n "$ns-s" link set vs up
ip -n "$ns-c" link set vc up
pitime_conf "$work/veth.toml" 0.0.0.0:123 kernel
ip netns exec "$ns-s" taskset -c 0 "$BIN" run -c "$work/veth.toml" --log-level warn &
sleep 1
for load in idle loaded; do
  for mode in basic xleave; do
    dir=$work/chrony-$load-$mode
    mkdir -m 700 "$dir"
    option=$([ $mode = xleave ] && echo xleave || true)
    if [ $load = loaded ]; then
      ip netns exec "$ns-s" taskset -c 1 "$BIN" bench-server --server 127.0.0.1:123 \
        --sources 32 --window 32 --warmup 0 --duration $((SECONDS_PER_RUN * 4 + 4)) >/dev/null &
      load_pid=$!
    fi
    ip netns exec "$ns-c" chronyd -x -d -u root -f /dev/null \
      "server 10.123.0.1 minpoll -4 maxpoll -4 $option" "cmdport 0" \
      "bindcmdaddress $dir/sock" "pidfile $dir/pid" "logdir $dir" "log measurements" \
      2>"$dir/chronyd.log" &
    chrony_pid=$!
    sleep $((SECONDS_PER_RUN * 4 + 2))
    kill $chrony_pid
    wait $chrony_pid 2>/dev/null || true
    [ $load = loaded ] && { kill $load_pid 2>/dev/null || true; wait $load_pid 2>/dev/null || true; }
    # Samples after the first two seconds: offset ($12) and delay ($13); the mode column
    # (4B basic, 4I interleaved) and the timestamp sources are the last three.
    awk -v load=$load -v mode=$mode '
      $3 == "10.123.0.1" { n++; if (n > 32) { k++; o[k] = $12; d[k] = $13; m[$(NF-2)]++ } }
      END {
        for (i = 1; i <= k; i++) { so += o[i]; sd += d[i] }
        mo = so / k; md = sd / k
        for (i = 1; i <= k; i++) { vo += (o[i] - mo) ^ 2; vd += (d[i] - md) ^ 2 }
        modes = ""; for (x in m) modes = modes x ":" m[x] " "
        printf "| %s | %s | %d | %s| %.2f | %.2f | %.2f |\n", load, mode, k, modes,
          sqrt(vo / k) * 1e6, md * 1e6, sqrt(vd / k) * 1e6
      }' "$dir/measurements.log" >> "$work/jitter"
  done
done
echo
echo "| server | chronyd | samples | packet modes | offset jitter us | mean delay us | delay jitter us |"
echo "|---|---|---|---|---|---|---|"
cat "$work/jitter"
