#!/usr/bin/env bash
# Compares NTP servers under load, in one sitting: pitime, chronyd (-x: never touches the clock)
# and ntpd-rs (run as nobody, so it cannot touch the clock), each pinned to CPU 0 with rate
# limiting off, and `pitime bench-server` pinned to CPU 1. Rounds alternate between servers so
# that machine noise hits all of them alike; the summary gives medians and ratios to chrony.
# The NTS rounds compare pitime and chronyd serving NTS (RFC 8915) with the same certificate,
# from pitime's local CA: one key exchange, then every request with a cookie and authenticator.
#
# Each run also gives the server's CPU time per reply (user + system, from /proc), which
# depends less than replies/s on what else the machine runs, and its user-space part apart: on
# loopback the kernel's share includes delivering each reply to the generator's socket, which a
# server with a real network interface does not pay. NICE=-5 runs everything at that priority
# (root), for a machine shared with other work.
#
#   [NICE=-5] scripts/bench-server.sh [ROUNDS] [SECONDS]
#
# Needs: chrony (Debian), ntpd-rs (`cargo install ntpd --locked`), util-linux (taskset, setpriv).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-config.sh
ROUNDS=${1:-5}
SECONDS_PER_RUN=${2:-5}
run=(nice -n "${NICE:-0}" taskset)
cargo build --release --quiet
BIN=$PWD/target/release/pitime
NTPD_RS=$(command -v ntp-daemon || echo "$HOME/.cargo/bin/ntp-daemon")
work=$(mktemp -d)
chmod 755 "$work"
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

bench_config 11123 14460 "$work/nts" >"$work/pitime.toml"
cat > "$work/ntpd-rs.toml" <<TOML
[observability]
log-level = "warn"
[[server]]
listen = "127.0.0.1:11125"
[synchronization]
local-stratum = 1
TOML
chmod 644 "$work"/*.toml
cp "$NTPD_RS" "$work/ntp-daemon"

"${run[@]}" -c 0 "$BIN" run -c "$work/pitime.toml" --log-level warn &
echo $! >"$work/pid.pitime"
# chronyd serves NTS with the certificate pitime's local CA issued.
while [ ! -s "$work/nts/nts-cert.key" ]; do sleep 0.1; done
chmod 644 "$work/nts/nts-cert.key"
"${run[@]}" -c 0 chronyd -x -d -f /dev/null "local stratum 1" "allow" "port 11124" "cmdport 0" \
  "ntsserverkey $work/nts/nts-cert.key" "ntsservercert $work/nts/nts-cert.pem" "ntsport 14461" \
  "ntsdumpdir $work" "ntsprocesses 1" \
  "pidfile $work/chronyd.pid" "driftfile $work/chrony.drift" 2>"$work/chronyd.log" &
echo $! >"$work/pid.chrony"
"${run[@]}" -c 0 setpriv --reuid=nobody --regid=nogroup --clear-groups "$work/ntp-daemon" -c "$work/ntpd-rs.toml" \
  >"$work/ntpd-rs.log" 2>&1 &
echo $! >"$work/pid.ntpd-rs"
sleep 2

# Runs one load against a server (its name first) and prints the result with the server's
# CPU time per reply added.
bench() {
  local pid before after result
  pid=$(cat "$work/pid.$1")
  shift
  before=$(awk '{print $14, $15}' "/proc/$pid/stat")
  result=$("${run[@]}" -c 1 "$BIN" bench-server "$@")
  after=$(awk '{print $14, $15}' "/proc/$pid/stat")
  python3 -c 'import json, sys
r = json.loads(sys.argv[1])
user, system = (float(a) - float(b) for a, b in zip(sys.argv[2].split(), sys.argv[3].split()))
per_reply = 1e6 / float(sys.argv[4]) / max(r["replies"], 1)
r["cpu_us_per_reply"] = (user + system) * per_reply
r["user_us_per_reply"] = user * per_reply
print(json.dumps(r))' "$result" "$after" "$before" "$(getconf CLK_TCK)"
}

# Saturation: 32 sockets x 32 requests in flight. Light load: 16 sockets x 1 in flight.
for load in "saturated 32 32" "light 16 1"; do
  set -- $load
  for round in $(seq "$ROUNDS"); do
    for server in pitime:11123 chrony:11124 ntpd-rs:11125; do
      result=$(bench "${server%%:*}" --server "127.0.0.1:${server#*:}" \
        --duration "$SECONDS_PER_RUN" --sources "$2" --window "$3")
      echo "$1 ${server%%:*} $result" | tee -a "$work/results"
    done
  done
done
for round in $(seq "$ROUNDS"); do
  for server in pitime:11123:14460 chrony:11124:14461; do
    IFS=: read -r name port ke <<<"$server"
    result=$(bench "$name" --server "127.0.0.1:$port" \
      --duration "$SECONDS_PER_RUN" --sources 32 --window 32 \
      --nts-ke "127.0.0.1:$ke" --nts-ca "$work/nts/nts-ca.pem")
    echo "nts-saturated $name $result" | tee -a "$work/results"
  done
done
for round in $(seq "$ROUNDS"); do
  for server in pitime:14460 chrony:14461; do
    result=$("${run[@]}" -c 1 "$BIN" bench-server --nts-ke "127.0.0.1:${server#*:}" \
      --nts-ca "$work/nts/nts-ca.pem" --ke-handshakes 400)
    echo "nts-ke ${server%%:*} $result" | tee -a "$work/results"
  done
done

python3 - "$work/results" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    load, server, js = line.split(" ", 2)
    rows.setdefault((load, server), []).append(json.loads(js))
print()
print("| load | server | replies/s (median) | vs chrony | p50 us | p99 us | p99.9 us | lost | CPU us/reply | chrony's / this | user us/reply | chrony's / this |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
ke = {k: v for k, v in rows.items() if k[0] == "nts-ke"}
rows = {k: v for k, v in rows.items() if k[0] != "nts-ke"}
for load in ("saturated", "light", "nts-saturated"):
    med = lambda server, f: statistics.median(f(r) for r in rows[(load, server)])
    base = med("chrony", lambda r: r["replies_per_second"])
    cpu_base = med("chrony", lambda r: r["cpu_us_per_reply"])
    user_base = med("chrony", lambda r: r["user_us_per_reply"])
    for server in ("pitime", "chrony", "ntpd-rs"):
        if (load, server) not in rows:
            continue
        rps = med(server, lambda r: r["replies_per_second"])
        lat = [med(server, lambda r, k=k: r["latency_us"][k]) for k in ("p50", "p99", "p99.9")]
        lost = sum(r["lost"] for r in rows[(load, server)])
        cpu = med(server, lambda r: r["cpu_us_per_reply"])
        user = med(server, lambda r: r["user_us_per_reply"])
        print(f"| {load} | {server} | {rps:,.0f} | {rps / base:.2f} | {lat[0]:.0f} | {lat[1]:.0f} | {lat[2]:.0f} | {lost} | {cpu:.2f} | {cpu_base / cpu:.2f} | {user:.2f} | {user_base / max(user, 1e-9):.2f} |")
if ke:
    print()
    print("| NTS-KE | handshakes/s (median) | vs chrony | failed |")
    print("|---|---|---|---|")
    base = statistics.median(r["handshakes_per_second"] for r in ke[("nts-ke", "chrony")])
    for server in ("pitime", "chrony"):
        rs = ke[("nts-ke", server)]
        rate = statistics.median(r["handshakes_per_second"] for r in rs)
        print(f"| {server} | {rate:,.0f} | {rate / base:.2f} | {sum(r['failed'] for r in rs)} |")
PY
