# The emulated hardware rig's checks, sourced by `scripts/qemu-test.sh --rig` once the guest has
# booted with rig_config's GPS configuration (it uses that script's guest, fail, elapsed, boot,
# wait_for_login, wait_for_boot, rig_config and the forwarded ports).

# The host side of the signals, built for this machine.
cargo build --release --locked -q
cat >"$tmp/signals.toml" <<'EOF'
# The signals the host plays into the guest (`pitime play-signals`): true time is this machine's.
[[source]]
kind = "gps"
[source.simulate]

[[source]]
kind = "dcf77"
[source.simulate]
EOF

# A command to QEMU's monitor; prints its answer.
monitor() {
    python3 - "$tmp/monitor.sock" "$1" <<'EOF'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
time.sleep(1)
print(s.recv(65536).decode(errors="replace").splitlines()[-2:])
EOF
}
status() { python3 scripts/qemu/wait-status.py "$WEB_PORT" "$@"; }
pitime_log() { guest journalctl -u pitime -o cat -n 25; }
journal_after() { guest "journalctl -u pitime -o cat --since '@$1'"; }

# The pulser in the guest: a gpio-sim chip whose lines follow the host's edges. The guest
# forgets the chip at a reboot, so it is started again after one.
start_pulser() {
    guest 'cat >/run/gpio-pulser.sh' <scripts/qemu/gpio-pulser.sh
    guest 'systemctl stop pitime-rig-pulser 2>/dev/null; systemctl reset-failed pitime-rig-pulser 2>/dev/null;
        systemd-run --quiet --unit pitime-rig-pulser bash /run/gpio-pulser.sh'
    local i
    for i in $(seq 30); do
        guest test -e /run/pitime-rig/gpiochip && break
        sleep 1
    done
    guest test -e /run/pitime-rig/gpiochip || fail "the pulser made no gpio-sim chip: $(guest journalctl -u pitime-rig-pulser -o cat)"
    echo "ok: $(guest journalctl -u pitime-rig-pulser -o cat | grep gpio-sim | tail -n1)"
}

# A new pitime.toml on the boot partition, applied as docs/operations.md says.
use_config() {
    rig_config "$1" | guest 'mount -o remount,rw /boot/firmware && cat >/boot/firmware/pitime.toml &&
        mount -o remount,ro /boot/firmware && systemctl restart pitime-boot-config pitime'
}

echo "--- rig 1: GPS on the USB serial adapter, PPS on a gpio-sim line"
start_pulser
# No signal yet: the pulse line silent, no receiver on USB. pitime must not claim a reference.
python3 scripts/qemu/ntp-query.py "$NTP_PORT" 20 LOCL >/dev/null ||
    fail "without signals pitime does not serve its local fallback (stratum 10): $(status --value c)"
echo "ok: no signal on the lines: pitime serves its local fallback, $(status --value '(c["stratum"], c["refid"])')"
# The guest's clock came from an RTC a day behind; pitime, running since boot without references,
# finds the receiver plugged in by itself.
since=$(guest date +%s)
echo "guest's clock before: $(( since - $(date +%s) )) s from this machine's"
target/release/pitime play-signals -c "$tmp/signals.toml" --serial "$tmp/gnss.sock" \
    --pulses "$tmp/pulse.sock" --duration 3600 >"$tmp/player.log" 2>&1 &
player_pid=$!
# QEMU attaches the USB serial adapter once its socket has a peer: the player plugs it in.
for _ in $(seq 30); do
    guest test -e /dev/ttyUSB0 && break
    sleep 1
done
driver=$(guest 'basename "$(readlink /sys/class/tty/ttyUSB0/device/driver)"') || true
[ "$driver" = ftdi_sio ] || fail "no /dev/ttyUSB0 from ftdi_sio: $driver; $(guest 'ls /sys/class/tty/ | tr "\n" " "')"
echo "ok: the emulated USB serial adapter is /dev/ttyUSB0 in the guest (driver $driver)"
status 180 'c["stratum"] == 1 and c["refid"] == "PPS" and abs(c["offset_seconds"]) < 0.005' ||
    fail "GPS with PPS: not stratum 1 from PPS, with the clock steered: $(pitime_log)"
echo "ok: GPS with PPS at stratum 1 ($(elapsed))"
step=$(journal_after "$since" | grep -m1 "stepping the clock") || fail "pitime never stepped the guest's clock"
echo "ok: $step"
echo "guest's clock now: $(( $(guest date +%s) - $(date +%s) )) s from this machine's (whole seconds)"
python3 scripts/qemu/ntp-query.py "$NTP_PORT" 60 PPS || fail "no NTP reply with refid PPS on the forwarded port"
guest systemctl restart pitime
drift=$(guest cat /var/lib/pitime/drift) || fail "no drift file after a restart"
echo "ok: drift file written at exit: $drift ppm"
status 120 'c["stratum"] == 1 and c["refid"] == "PPS"' || fail "no PPS after pitime's restart: $(pitime_log)"

echo "--- rig 2: the USB serial adapter unplugged and plugged back"
reconnects=$(status --value 'gps["reconnects"]')
monitor "device_del gnss-adapter"
status 60 'not gps.get("connected", True)' >/dev/null ||
    fail "unplugged adapter not seen: the gps source still connected: $(pitime_log)"
echo "ok: unplugged: the gps source shows disconnected"
monitor "device_add usb-serial,id=gnss-adapter,chardev=gnss,bus=xhci.0"
status 120 "gps.get('connected') and gps['reconnects'] > $reconnects and c['stratum'] == 1 and c['refid'] == 'PPS'" ||
    fail "the gps source did not come back after the adapter was plugged in again: $(pitime_log)"
echo "ok: plugged back: the gps source reconnected without a restart ($(elapsed))"

echo "--- rig 3: DCF77 alone, the guest's clock a day behind"
# Only the DCF77 line: the clock set back a day by hand, pitime restarted on the new file.
guest 'systemctl stop pitime && date -s "@$(( $(date +%s) - 86400 ))" >/dev/null'
since=$(guest date +%s)
use_config dcf77
started_dcf=$(date +%s)
status 420 'c["stratum"] == 1 and c["refid"] == "DCF" and abs(c["offset_seconds"]) < 0.01' ||
    fail "DCF77 alone: not stratum 1 from DCF within 7 min: $(journal_after "$since" | tail -n 20)"
echo "ok: DCF77 alone at stratum 1, $(( $(date +%s) - started_dcf )) s after pitime's start"
step=$(journal_after "$since" | grep -m1 "stepping the clock") || fail "DCF77 did not step the guest's clock"
echo "ok: $step"
# Decoding goes on after the step: another minute accepted after it.
accepted=$(status --value 'longwave["minutes_accepted"]')
status 150 "longwave['station'] == 'dcf77' and longwave['minutes_accepted'] > $accepted and c['refid'] == 'DCF'" >/dev/null ||
    fail "DCF77 stopped decoding after the step: $(journal_after "$since" | tail -n 20)"
echo "ok: DCF77 decodes on after the step: $(journal_after "$since" | grep -c 'DCF77 minute accepted') minutes accepted"
python3 scripts/qemu/ntp-query.py "$NTP_PORT" 60 DCF || fail "no NTP reply with refid DCF on the forwarded port"

echo "--- rig 4: a reboot, with both receivers"
use_config gps+dcf77
guest 'systemctl reboot' || true
# Wait for the old system to go before waiting for the new one.
sleep 15
wait_for_login
wait_for_boot
[ "$(guest cat /var/lib/pitime/drift)" != "" ] || fail "the drift file did not survive the reboot"
echo "ok: after the reboot: the drift file holds $(guest cat /var/lib/pitime/drift) ppm ($(elapsed))"
start_pulser
status 180 'c["stratum"] == 1 and c["refid"] == "PPS"' || fail "not serving from PPS after the reboot: $(pitime_log)"
python3 scripts/qemu/ntp-query.py "$NTP_PORT" 60 PPS || fail "no NTP after the reboot"
guest pitime sources
