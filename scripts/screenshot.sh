#!/usr/bin/env bash
# Regenerates docs/images/status-page.png, the README's picture of the status page: the demo's
# configuration with the GPS receiver unplugged from minute 4 to minute 7, so that the charts
# show holdover and an alarm and the DCF77 receiver takes over, photographed by headless
# chromium at minute 10. Needs chromium; leaves the system clock alone (the demo's virtual clock).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-10}
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
# The first simulated receiver in the demo's file is the GPS.
awk '{print} /^clock_offset = / && !done {print "unplug = [240, 420]"; done = 1}' \
  config/demo.toml > "$dir/pitime.toml"
cargo build --release --quiet
target/release/pitime run --config "$dir/pitime.toml" 2> "$dir/pitime.log" &
pid=$!
sleep $((minutes * 60))
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$dir/profile" \
  --window-size=1000,2600 --screenshot="$PWD/docs/images/status-page.png" http://127.0.0.1:8123/
