#!/usr/bin/env bash
# Retakes the README's pictures, in docs/images/:
# - status-page.png: the demo's configuration with the GPS receiver unplugged from minute 4 to
#   minute 7, so that the charts show holdover and an alarm and DCF77 takes over;
# - fleet-offsets.png: Prometheus' own graph page (Grafana is not in Debian) plotting the
#   dashboard's first panel, each server's offset from the fleet's median, for three demos
#   scraped by a real Prometheus with the shipped alerting rules; the third demo's receiver is
#   2 ms late (an antenna cable delay left uncorrected).
# Both photographed by headless chromium after MINUTES (default 10). Needs chromium and
# prometheus; leaves the system clock alone (the demos' virtual clocks).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-10}
dir=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$dir"' EXIT

# Member N of the fleet: the demo's file on NTP port 1112N and web port 812N.
member() { sed "s/11123/1112$1/g; s/8123/812$1/g" config/demo.toml > "$dir/pitime-$1.toml"; }
member 3
member 4
member 5
# The first simulated receiver in the demo's file is the GPS.
sed -i '0,/^clock_offset = .*/s//&\nunplug = [240, 420]/' "$dir/pitime-3.toml"
# Both of the third demo's receivers 2 ms late, so that they agree with each other.
sed -i 's/^clock_offset = 0.0$/clock_offset = -0.002/' "$dir/pitime-5.toml"

cat > "$dir/prometheus.yml" <<YML
global:
  scrape_interval: 5s
  evaluation_interval: 5s
rule_files: ["$PWD/monitoring/pitime-alerts.yml"]
scrape_configs:
  - job_name: pitime
    static_configs:
      - targets: ["127.0.0.1:8123", "127.0.0.1:8124", "127.0.0.1:8125"]
YML

cargo build --release --quiet
for n in 3 4 5; do
  target/release/pitime run --config "$dir/pitime-$n.toml" 2> "$dir/pitime-$n.log" &
  pids+=($!)
done
prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
  --web.listen-address=127.0.0.1:19091 2> "$dir/prometheus.log" &
pids+=($!)
sleep $((minutes * 60))

# shoot FILE WIDTH,HEIGHT URL [CHROMIUM-OPTION...]
shoot() {
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --user-data-dir="$dir/profile" "--window-size=$2" "${@:4}" \
    --screenshot="$PWD/docs/images/$1" "$3" 2> /dev/null
}
# The page is drawn by the server: no script to wait for.
shoot status-page.png 1000,2600 http://127.0.0.1:8123/
query='(pitime_time_seconds - timestamp(pitime_time_seconds)) - on(job) group_left quantile by (job) (0.5, pitime_time_seconds - timestamp(pitime_time_seconds))'
encoded=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$query")
# Prometheus' page draws with script: give it time to fetch and render.
shoot fleet-offsets.png 1200,800 \
  "http://127.0.0.1:19091/graph?g0.expr=$encoded&g0.tab=0&g0.range_input=${minutes}m" \
  --virtual-time-budget=10000
