#!/usr/bin/env bash
# Boots the Pi image under QEMU and checks it from this machine, as a user would on first boot:
# SSH with a key from the boot partition (and no password login), pitime.service active, NTP
# answered, the status page served, the settings files applied (SNMP from snmp.txt, the journal
# forwarded by syslog.txt), the boot partition readable by root alone, no failed unit, pitime
# refused without the firewall; then a power cut (QEMU killed while the state partition is being
# written) and a second boot with the same SSH host keys, a clean state partition and drift file.
#
#   scripts/qemu-test.sh [--raspi3b | --rig | --hwstamp] [IMAGE]
#
# IMAGE is a .img or .img.xz (default: the newest target/image/pitime-*-arm64.img from
# `scripts/build-image.sh --no-xz`); it is not modified: the test works on a copy whose boot
# partition gets (with mcopy) a throwaway SSH key, a host name, a throwaway NTP key (ntp.keys), a
# static address (network.txt: the one QEMU's user network gives by DHCP) and a short pitime.toml
# with a simulated GNSS receiver, the keys file, NTP on 0.0.0.0:123 and the status page on
# 0.0.0.0:80, which leaves [discipline] to the image's /etc/pitime/pitime.toml (the kernel
# actuator and the drift file), over which it is laid. It checks that each of these applied, that
# an edited pitime.toml (require_auth) applies without a reboot, and that invalid files (a host
# name "-x", a network.txt of garbage) are ignored while the others still apply, at once and at
# the next boot, and that the ignored files are shown as alarms on the status page.
#
# The default machine is QEMU's `virt` with the image's own kernel and initrd, taken out of the
# image with mcopy (~1 min to a login on 2 cores); --raspi3b boots the emulated Raspberry Pi 3 with
# the image's Pi 3 device tree and the overlays its config.txt and usercfg.txt load for a Pi 3,
# applied here with fdtoverlay as the firmware would (~2 min, its network is USB: usb0); it checks
# that /dev/pps0 (pps-gpio) and /dev/serial0 appear. QEMU cannot run the Pi's boot firmware nor
# emulate a Pi 4 or 5: those are proven on hardware only (docs/hardware.md).
#
# --rig boots `virt` as the emulated hardware rig: real kernel drivers between the simulated
# signals and pitime. The host's `pitime play-signals` plays a GNSS receiver's NMEA into QEMU's
# emulated USB serial adapter (an FTDI chip: ftdi_sio, /dev/ttyUSB0 in the guest) and the PPS and
# DCF77 edges into a virtio serial port, from which a pulser in the guest (scripts/qemu/
# gpio-pulser.sh) drives the lines of a gpio-sim chip that pitime reads through the GPIO
# character device. It checks GPS with PPS (stratum 1, the guest's clock stepped and steered by
# the kernel actuator, the drift file), the USB adapter unplugged and plugged back through QEMU's
# monitor, DCF77 alone stepping the clock and decoding on, and a reboot. ~15 min.
#
# --hwstamp boots `virt` with an emulated Intel 82576 (QEMU's igb, from a Debian 13 root kept
# beside this machine's system: Debian 12's QEMU has none) in place of virtio, whose driver gives
# hardware transmit timestamps and a PTP hardware clock; pitime.toml asks for `timestamping =
# "hardware"`. It checks the driver's answer, the clock, that the emulation really stamps (the
# guest's own chronyd with `hwtimestamp`, asked from here), and what pitime says the interface got
# (scripts/qemu/hwstamp.sh says what, and its settings). ~6 min, after ~5 min the first time.
#
# Not run by CI (.ci/run): it needs a built image (~12 min from nothing, as root, with
# binfmt_misc; docs/operations.md). Run it before each release and after every change to image/,
# systemd/, debian/ or scripts/build-image.sh.
#
# Host ports forwarded to the guest's 123/udp, 80/tcp, 22/tcp, 161/udp and 4460/tcp:
# QEMU_TEST_PORT_BASE (default 10000) plus 123, 8080, 8022, 161 and 4461 (not 4460: the demo's
# NTS port); the guest's journal is forwarded to a listener on the host's port
# QEMU_TEST_PORT_BASE + 514 (UDP). QEMU_TEST_BOOT_TIMEOUT: seconds to wait for a boot (default
# 300, 600 for --raspi3b), for a busy machine.
set -euo pipefail
cd "$(dirname "$0")/.."

MACHINE=virt
RIG=no
HWSTAMP=no
case "${1:-}" in
    --raspi3b) MACHINE=raspi3b; shift ;;
    --rig) RIG=yes; shift ;;
    --hwstamp) HWSTAMP=yes; shift ;;
esac
# shellcheck disable=SC2012 # our own file names
IMAGE=${1:-$(ls -t target/image/pitime-*-arm64.img 2>/dev/null | head -n1)}
[ -f "$IMAGE" ] || { echo "usage: $0 [--raspi3b | --rig | --hwstamp] [IMAGE]; build one with: sudo scripts/build-image.sh --no-xz" >&2; exit 2; }
base=${QEMU_TEST_PORT_BASE:-10000}
NTP_PORT=$((base + 123)) WEB_PORT=$((base + 8080)) SSH_PORT=$((base + 8022))
SNMP_PORT=$((base + 161)) SYSLOG_PORT=$((base + 514)) NTS_PORT=$((base + 4461))
# Bounds for each wait, in seconds: software emulation is slow, the raspi3b machine more so.
BOOT_TIMEOUT=${QEMU_TEST_BOOT_TIMEOUT:-$([ "$MACHINE" = virt ] && echo 300 || echo 600)}
SYNC_TIMEOUT=120

missing=()
for tool in qemu-system-aarch64:qemu-system-arm mcopy:mtools fdtoverlay:device-tree-compiler partx:util-linux ssh:openssh-client \
    ssh-keygen:openssh-client python3:python3 xz:xz-utils snmpget:snmp chronyd:chrony; do
    command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

started=$(date +%s)
elapsed() { echo "$(( $(date +%s) - started )) s"; }
tmp=$(mktemp -d)
qemu_pid=
player_pid=
syslog_pid=
finish() {
    [ -z "$qemu_pid" ] || kill "$qemu_pid" 2>/dev/null || true
    [ -z "$player_pid" ] || kill "$player_pid" 2>/dev/null || true
    [ -z "$syslog_pid" ] || kill "$syslog_pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap finish EXIT
fail() {
    echo "FAIL: $*" >&2
    echo "--- last lines of the guest's console ---" >&2
    tail -n 40 "$tmp/console.log" >&2 || true
    echo "--- QEMU's messages ---" >&2
    tail -n 10 "$tmp/qemu.log" >&2 || true
    exit 1
}

# A copy of the image, as a 4 GiB card: bigger, so that the state partition has room to grow;
# a power of two, which the emulated Pi's SD card must be.
img=$tmp/card.img
case $IMAGE in
    *.xz) xz -dc "$IMAGE" >"$img" ;;
    *) cp --sparse=always "$IMAGE" "$img" ;;
esac
truncate -s 4G "$img"
boot="$img@@$(( $(partx -g -o START -n 1 "$img") * 512 ))"

# What a user puts on the boot partition (docs/install.md).
ssh-keygen -q -t ed25519 -N '' -C qemu-test -f "$tmp/key"
cp "$tmp/key.pub" "$tmp/ssh_authorized_keys"
echo pitime-test >"$tmp/hostname"
printf '%s\n' '# QEMU user networking: the host appears as 10.0.2.2' 10.0.2.0/24 fd00::/8 >"$tmp/local-networks.txt"
# A throwaway SHA1 key; the keys file must not be readable by others, here as on the Pi.
printf '7 SHA1 %s\n' "$(od -A n -N 20 -t x1 /dev/urandom | tr -d ' \n')" >"$tmp/ntp.keys"
chmod 0600 "$tmp/ntp.keys"
# QEMU's user network, as static settings: the address its DHCP server gives, its gateway and
# DNS server. The emulated Pi's network is USB (usb0), which is not a wired name (eth*, en*).
{
    echo "# scripts/qemu-test.sh: what QEMU's DHCP would give, set statically"
    [ "$MACHINE" = virt ] || echo "interface=usb0"
    printf '%s\n' address=10.0.2.15/24 gateway=10.0.2.2 dns=10.0.2.3
} >"$tmp/network.txt"
# What every test's pitime.toml has: NTP and the status page on all addresses (the forwarded
# ports) and the boot partition's keys file; any arguments are more lines of [server]. The kernel
# actuator and the drift file come from the image's /etc/pitime/pitime.toml.
config_common() {
    printf '%s\n' '[server]' 'listen = ["0.0.0.0:123"]' 'keys_file = "ntp.keys"' "$@"
    printf '\n%s\n' '[web]' 'listen = ["0.0.0.0:80"]'
    # NTS key exchange tells clients the NTP port: here the one forwarded to the guest's.
    printf '\n%s\n' '[nts]' "ntp_port = $NTP_PORT"
}
# The rig's pitime.toml: the receivers (gps, dcf77 or both) on the guest's real devices.
rig_config() {
    echo "# scripts/qemu-test.sh --rig: receivers through the guest's kernel drivers."
    config_common
    case $1 in *gps*) cat <<EOF

[[source]]
kind = "gps"
device = "/dev/ttyUSB0"
pps = "/run/pitime-rig/gpiochip:0"
EOF
    esac
    case $1 in *dcf77*) cat <<EOF

[[source]]
kind = "dcf77"
chip = "/run/pitime-rig/gpiochip"
line = 1
bias = "as-is"
EOF
    esac
    printf '\n[[source]]\nkind = "local"\n'
}
test_config() {
    echo "# scripts/qemu-test.sh: a simulated GNSS receiver (stratum 1 after a few seconds), the system"
    echo "# clock at stratum 10 until then. The receiver's time is 0.3 s ahead of the guest's clock, and"
    echo "# the kernel actuator steps and then steers the guest's clock to it."
    config_common "$@"
    cat <<'EOF'

[[source]]
kind = "gps"
name = "gps"

[source.simulate]
clock_offset = 0.3

[[source]]
kind = "local"
EOF
}
test_config >"$tmp/pitime.toml"
[ "$RIG" = no ] || rig_config gps >"$tmp/pitime.toml"
[ "$HWSTAMP" = no ] || test_config 'timestamping = "hardware"' >"$tmp/pitime.toml"
# SNMP for QEMU's network (the host is 10.0.2.2): an SNMPv3 user and a v2c community.
SNMP_PASSWORD=qemu-test-$(od -A n -N 6 -t x1 /dev/urandom | tr -d ' \n')
printf '%s\n' user=monitor "auth_password=$SNMP_PASSWORD" community=qemu-test allow=10.0.2.0/24 \
    'location=QEMU' >"$tmp/snmp.txt"
# The journal to this machine (QEMU's user network: 10.0.2.2 is the host's loopback).
printf '%s\n' server=10.0.2.2 "port=$SYSLOG_PORT" protocol=udp >"$tmp/syslog.txt"
mcopy -o -i "$boot" "$tmp/ssh_authorized_keys" "$tmp/hostname" "$tmp/local-networks.txt" "$tmp/ntp.keys" \
    "$tmp/network.txt" "$tmp/pitime.toml" "$tmp/snmp.txt" "$tmp/syslog.txt" ::
# The syslog server: every datagram, one a line.
python3 - "$SYSLOG_PORT" "$tmp/syslog.log" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
with open(sys.argv[2], "ab", buffering=0) as log:
    while True:
        log.write(s.recv(65536).rstrip(b"\n") + b"\n")
PY
syslog_pid=$!

# The image's own kernel, initrd, device tree and command line.
kernel=$(mdir -b -i "$boot" :: | grep -o 'vmlinuz-[^ ]*' | sort -V | tail -n1)
mcopy -i "$boot" "::$kernel" "$tmp/vmlinuz"
mcopy -i "$boot" "::${kernel/vmlinuz/initrd.img}" "$tmp/initrd.img"
mcopy -i "$boot" ::cmdline.txt "$tmp/cmdline.txt"
forward="hostfwd=udp::$NTP_PORT-:123,hostfwd=tcp::$WEB_PORT-:80,hostfwd=tcp::$SSH_PORT-:22,hostfwd=udp::$SNMP_PORT-:161,hostfwd=tcp::$NTS_PORT-:4460"
# The NIC: virtio, or for --hwstamp an emulated Intel 82576 from Debian 13's QEMU.
qemu_system=(qemu-system-aarch64)
# shellcheck disable=SC2054 # commas within arguments
nic_devices=(-device virtio-net-pci,netdev=net,romfile=)
if [ "$HWSTAMP" = yes ]; then
    # shellcheck source=scripts/qemu/hwstamp.sh
    . scripts/qemu/hwstamp.sh
    hwstamp_prepare
    nic_devices=("${hwstamp_devices[@]}")
fi
if [ "$MACHINE" = raspi3b ]; then
    # What the firmware does on a Pi 3: its device tree with the overlays of the [pi3] sections
    # (pitime-uart from config.txt, pitime-pps from usercfg.txt; their default parameters).
    mcopy -i "$boot" ::bcm2837-rpi-3-b.dtb ::overlays/pitime-uart.dtbo ::overlays/pitime-pps.dtbo "$tmp/"
    mcopy -i "$boot" ::config.txt ::usercfg.txt "$tmp/"
    for overlay in pitime-uart pitime-pps; do
        grep -q "^dtoverlay=$overlay\b" "$tmp/config.txt" "$tmp/usercfg.txt" || fail "no dtoverlay=$overlay for the Pi 3"
    done
    fdtoverlay -i "$tmp/bcm2837-rpi-3-b.dtb" -o "$tmp/pi3.dtb" "$tmp/pitime-uart.dtbo" "$tmp/pitime-pps.dtbo"
fi
# The rig's devices: the USB serial adapter on an XHCI controller, its data from a socket; the
# virtio serial port for the pulse edges; QEMU's monitor on a socket (device_del, device_add).
# The guest's clock starts a day behind, so that pitime must step it.
rig_devices=(-monitor none)
if [ "$RIG" = yes ]; then
    rig_devices=(-device qemu-xhci,id=xhci
        -chardev "socket,id=gnss,path=$tmp/gnss.sock,server=on,wait=off"
        -device usb-serial,id=gnss-adapter,chardev=gnss,bus=xhci.0
        -device virtio-serial-pci
        -chardev "socket,id=pulse,path=$tmp/pulse.sock,server=on,wait=off"
        -device virtserialport,chardev=pulse,name=pitime.pulse
        -monitor "unix:$tmp/monitor.sock,server=on,wait=off"
        -rtc "base=$(date -u -d '-1 day' +%Y-%m-%dT%H:%M:%S)")
fi
# Software emulation on a busy machine can be several times slower than usual: systemd's 90 s for
# the card's partitions to appear (before the boot drops to emergency mode) is made 10 min.
slow_machine=systemd.default_device_timeout_sec=600
boot() {
    if [ "$MACHINE" = virt ]; then
        # The Pi's command line, with the virt machine's serial port as the console.
        cmdline="$(sed -e 's/console=[^ ]*//g' "$tmp/cmdline.txt") console=ttyAMA0 $slow_machine"
        "${qemu_system[@]}" -M virt -cpu cortex-a53 -smp 2 -m 1G "${rig_devices[@]}" \
            -kernel "$tmp/vmlinuz" -initrd "$tmp/initrd.img" -append "$cmdline" \
            -drive "file=$img,if=none,format=raw,id=disk" -device virtio-blk-pci,drive=disk \
            -netdev "user,id=net,$forward" "${nic_devices[@]}" \
            -display none -serial "file:$tmp/console.log" >"$tmp/qemu.log" 2>&1 &
    else
        # The image leaves the header UART (the PL011, ttyAMA0, QEMU's first serial port) to the
        # receiver; here it is the console, for the log.
        qemu-system-aarch64 -M raspi3b -m 1G -dtb "$tmp/pi3.dtb" \
            -kernel "$tmp/vmlinuz" -initrd "$tmp/initrd.img" \
            -append "$(cat "$tmp/cmdline.txt") console=ttyAMA0,115200 $slow_machine" \
            -drive "file=$img,if=sd,format=raw" \
            -netdev "user,id=net,$forward" -device usb-net,netdev=net \
            -display none -serial "file:$tmp/console.log" -serial null -monitor none >"$tmp/qemu.log" 2>&1 &
    fi
    qemu_pid=$!
    echo "QEMU ($MACHINE) started; console log: $tmp/console.log"
}

# The host key is remembered at the first login and must not change after that.
ssh_opts=(-i "$tmp/key" -p "$SSH_PORT" -o BatchMode=yes -o ConnectTimeout=10
    -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile="$tmp/known_hosts" -o LogLevel=ERROR)
# A command in the guest, for at most guest_timeout seconds (default 60).
guest() { timeout "${guest_timeout:-60}" ssh "${ssh_opts[@]}" root@127.0.0.1 "$@"; }

wait_for_login() {
    local deadline=$(( $(date +%s) + BOOT_TIMEOUT ))
    until guest true 2>/dev/null; do
        kill -0 "$qemu_pid" 2>/dev/null || fail "QEMU exited"
        [ "$(date +%s)" -lt "$deadline" ] ||
            fail "no SSH login with the boot partition's key within $BOOT_TIMEOUT s: $(guest true 2>&1)"
        sleep 5
    done
}

# The emulated Pi's USB controller (QEMU's dwc2) sometimes fails to bring up the USB network
# adapter (about one boot in eight); the guest itself is fine, so that boot is cut short and
# the machine booted again, up to three times.
usb_flake() { grep -aq 'attempt power cycle\|unable to enumerate USB' "$tmp/console.log" 2>/dev/null; }
boot_and_login() {
    local try
    for try in 1 2 3; do
        boot
        if [ "$MACHINE" = raspi3b ]; then
            local deadline=$(( $(date +%s) + BOOT_TIMEOUT ))
            until guest true 2>/dev/null || usb_flake || [ "$(date +%s)" -ge "$deadline" ]; do
                sleep 5
            done
            if usb_flake; then
                echo "note: QEMU's emulated USB did not bring up the network adapter (boot $try): booting again"
                kill -KILL "$qemu_pid"
                wait "$qemu_pid" 2>/dev/null || true
                : >"$tmp/console.log"
                continue
            fi
        fi
        wait_for_login
        return
    done
    fail "QEMU's emulated USB failed three boots in a row"
}

# Boot finished: every unit started (or failed), so the checks see the final state.
wait_for_boot() {
    local deadline=$(( $(date +%s) + BOOT_TIMEOUT )) state
    until state=$(guest systemctl is-system-running 2>/dev/null) || [ "$state" = degraded ]; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "boot not finished within $BOOT_TIMEOUT s: $state"
        sleep 5
    done
    # (The unit names are expanded in the guest.)
    # shellcheck disable=SC2016
    [ "$state" = running ] ||
        fail "system $state: $(guest 'for unit in $(systemctl --failed --no-legend --plain | cut -d" " -f1); do
            journalctl -b --no-pager -u "$unit" | tail -n 15; done')"
}

boot_and_login
echo "ok: SSH login as root with the key from the boot partition ($(elapsed))"

# A password must not even be offered: the server lists the methods it accepts.
answer=$(timeout 60 ssh -p "$SSH_PORT" -o BatchMode=yes -o PubkeyAuthentication=no \
    -o PreferredAuthentications=password,keyboard-interactive -o StrictHostKeyChecking=no \
    -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR root@127.0.0.1 true 2>&1 || true)
case $answer in
    *"Permission denied (publickey)"*) echo "ok: password login refused: $answer" ;;
    *) fail "password login not refused as expected: $answer" ;;
esac

wait_for_boot
echo "ok: system running, no failed unit ($(elapsed))"

[ "$(guest systemctl is-active pitime)" = active ] || fail "pitime.service: $(guest systemctl status pitime)"
echo "ok: pitime.service active"

# The board in the journal: the emulated Pi 3 by name; virt is a board the image was not made
# for, which boots with the defaults and says so.
board=$(guest journalctl -b -u pitime-boot-config -o cat | grep -m1 '^board: ') || fail "no board in pitime-boot-config's log"
case $MACHINE:$board in
    raspi3b:"board: Raspberry Pi 3 Model B"*) ;;
    virt:*"not a board this image was made for"*) ;;
    *) fail "pitime-boot-config's board line on $MACHINE: $board" ;;
esac
echo "ok: $board"

if [ "$MACHINE" = raspi3b ]; then
    # The overlays: pps-gpio's /dev/pps0 on GPIO 18, the header UART as /dev/serial0; the
    # header's GPIO chip as /dev/gpiochip-header.
    pps=$(guest cat /sys/class/pps/pps0/name 2>&1) || fail "no /dev/pps0 from the pitime-pps overlay: $pps"
    serial0=$(guest readlink -f /dev/serial0 2>&1) || fail "no /dev/serial0: $serial0"
    [ "$serial0" = /dev/ttyAMA0 ] || fail "/dev/serial0 is $serial0, not the header's PL011 (ttyAMA0)"
    chip=$(guest readlink -f /dev/gpiochip-header 2>&1) || fail "no /dev/gpiochip-header: $chip"
    echo "ok: /dev/pps0 from pps-gpio ($pps), /dev/serial0 -> $serial0, /dev/gpiochip-header -> $chip"
    # The emulated Pi has no RTC: its clock starts at systemd's build time, before pitime's
    # build day, and the simulated receiver, whose true time is the guest's clock, reports a date
    # pitime rightly refuses. A real receiver knows the date: the guest's clock is set to ours.
    guest "date -s @$(date +%s) >/dev/null && systemctl restart pitime"
fi

if [ "$HWSTAMP" = yes ]; then
    hwstamp_checks
    echo "PASS: hwstamp, $(elapsed)"
    exit 0
fi

if [ "$RIG" = yes ]; then
    # shellcheck source=scripts/qemu/rig.sh
    . scripts/qemu/rig.sh
    echo "PASS: rig, $(elapsed)"
    exit 0
fi

checks=$(guest 'hostname; findmnt -n -o OPTIONS /; df -m --output=size /var/lib/pitime-state | tail -n1;
    grep -c simulate /run/pitime-boot/pitime.toml; ls /var/lib/pitime-state/ssh/ | grep -c "_key$";
    journalctl -b -u avahi-daemon | grep -o "Host name is [^ ]*" | tail -n1 | cut -d" " -f4; passwd -S root')
read -r -d '' name root_options state_mib simulated host_keys mdns_name _ root_password _ <<<"$checks" || true
[ "$name" = pitime-test ] || fail "host name from the boot partition not applied: $name"
case ,$root_options, in *,ro,*) ;; *) fail "root not read-only: $root_options" ;; esac
[ "$state_mib" -gt 1024 ] || fail "state partition not grown: $state_mib MiB"
[ "$simulated" -ge 1 ] || fail "pitime.toml from the boot partition not in use"
[ "$host_keys" = 3 ] || fail "SSH host keys not made: $host_keys"
[ "$mdns_name" = pitime-test.local. ] || fail "avahi does not announce pitime-test.local: $mdns_name"
[ "$root_password" = L ] || fail "root's password is not locked: $root_password"
echo "ok: host name $name (avahi: $mdns_name), root mounted $root_options, state partition $state_mib MiB, pitime.toml from the boot partition, 3 SSH host keys made, root password locked"

# The boot partition's pitime.toml is laid over the image's: what it leaves out ([discipline])
# keeps the image's values, as `pitime check-config --effective` shows with each key's file.
effective=$(guest pitime check-config --effective /etc/pitime/pitime.toml /run/pitime-boot/pitime.toml) ||
    fail "pitime check-config --effective: $effective"
for key in actuator drift_file leap_file; do
    line=$(grep -m1 "^$key = " <<<"$effective") || fail "no $key in the effective configuration: $effective"
    case $key:$line in
        actuator:*'"kernel"'*'# /etc/pitime/pitime.toml'* | leap_file:*'# /etc/pitime/pitime.toml'* | \
            drift_file:*/var/lib/pitime/drift*'# /etc/pitime/pitime.toml'*) ;;
        *) fail "$key is not the image's: $line" ;;
    esac
done
grep -q '^listen = \["0.0.0.0:123"\] *# /run/pitime-boot/pitime.toml' <<<"$effective" ||
    fail "server.listen is not the boot partition's: $effective"
[ "$(guest systemctl show -p ExecStart --value pitime | grep -o -- '--config [^ ;]*' | tr '\n' ' ')" = \
    "--config /etc/pitime/pitime.toml --config /run/pitime-boot/pitime.toml --config /run/pitime-boot/image.toml " ] ||
    fail "pitime.service does not read the three files: $(guest systemctl show -p ExecStart --value pitime)"
echo "ok: pitime runs with /etc/pitime/pitime.toml and the boot partition's over it; the image's kernel actuator, drift file and leap file kept"

# ntp.keys: installed for pitime alone (it refuses a keys file others can read), and found by
# keys_file = "ntp.keys", relative to the boot partition's pitime.toml in /run/pitime-boot.
keys=$(guest stat -c "'%U %G %a'" /run/pitime-boot/ntp.keys) || fail "ntp.keys not installed"
[ "$keys" = "root pitime 640" ] || fail "/run/pitime-boot/ntp.keys: owner, group and mode $keys"
python3 scripts/qemu/ntp-query.py --keys "$tmp/ntp.keys" --key 7 "$NTP_PORT" "$SYNC_TIMEOUT" ||
    fail "no NTP reply signed with the boot partition's key"
echo "ok: ntp.keys installed as root:pitime 0640; a request signed with its key gets a signed reply"

# network.txt: the static settings are the ones applied (no DHCP lease: no "dynamic" address).
if [ "$MACHINE" = virt ]; then
    # (Expanded in the guest.)
    # shellcheck disable=SC2016
    network=$(guest 'ip -4 -o addr show scope global; ip -4 route show default;
        networkctl status $(ip -4 route show default | grep -o "dev [^ ]*" | cut -d" " -f2)')
    grep -q 'inet 10.0.2.15/24 .*scope global' <<<"$network" || fail "no 10.0.2.15/24: $network"
    ! grep -q 'inet 10.0.2.15/24 .*dynamic' <<<"$network" || fail "10.0.2.15 from DHCP, not network.txt: $network"
    grep -q '^default via 10.0.2.2 ' <<<"$network" || fail "no default route via 10.0.2.2: $network"
    grep -q 'Network File: /run/systemd/network/10-pitime-network-txt.network' <<<"$network" ||
        fail "network.txt's file not the one applied: $network"
    grep -q 'DNS: 10.0.2.3' <<<"$network" || fail "no DNS server 10.0.2.3: $network"
    echo "ok: network.txt applied: static 10.0.2.15/24, default route via 10.0.2.2, DNS 10.0.2.3"
fi

# NTP through the forwarded port, until the reply says synchronised.
python3 scripts/qemu/ntp-query.py "$NTP_PORT" "$SYNC_TIMEOUT" || fail "no synchronised NTP reply"

python3 - "$WEB_PORT" <<'EOF' || fail "status page not served"
import json, sys, urllib.request

base = f"http://127.0.0.1:{sys.argv[1]}"
page = urllib.request.urlopen(base + "/", timeout=30).read().decode()
assert "pitime" in page, "no pitime in the page"
status = json.load(urllib.request.urlopen(base + "/api/v1/status", timeout=30))
print(f"ok: status page served ({len(page)} bytes), /api/v1/status has {', '.join(sorted(status))}")
EOF

guest pitime status

# NTS, on by default: the local CA from the status page, then chronyd as an NTS client through
# the forwarded key-exchange port (its -Q only measures; the host's clock is left alone). The
# certificate names the guest's host names and addresses, localhost among them: -4 makes that
# 127.0.0.1, where QEMU forwards.
python3 -c "import sys, urllib.request; sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1], timeout=30).read())" \
    "http://127.0.0.1:$WEB_PORT/nts-ca.pem" >"$tmp/nts-ca.pem" || fail "no /nts-ca.pem on the status page"
nts=$(timeout 120 chronyd -4 -Q -t 60 -u root -f /dev/null "ntstrustedcerts $tmp/nts-ca.pem" "ntsdumpdir $tmp" \
    "pidfile $tmp/chronyd.pid" "cmdport 0" "server localhost port $NTP_PORT nts ntsport $NTS_PORT iburst" 2>&1) || true
grep -q 'System clock wrong by' <<<"$nts" || fail "chronyd measured nothing over NTS: $nts"
echo "ok: NTS with the image's own CA (from /nts-ca.pem): chronyd $(grep -o 'System clock wrong by.*' <<<"$nts")"

# The kernel actuator: the receiver is 0.3 s ahead of the guest's clock at start; pitime steps
# the guest's clock and steers it, so the time it serves is the system clock's (the virtual
# actuator would serve it 0.3 s apart). At exit it saves the learned frequency.
python3 - "$WEB_PORT" "$SYNC_TIMEOUT" <<'EOF' || fail "the kernel actuator did not steer the guest's clock"
import json, sys, time, urllib.request

deadline = time.monotonic() + float(sys.argv[2])
while True:
    url = f"http://127.0.0.1:{sys.argv[1]}/api/v1/status"
    c = json.load(urllib.request.urlopen(url, timeout=30))["clock"]
    if c["stratum"] == 1 and abs(c["offset_seconds"]) < 0.005:
        print(f"ok: kernel actuator: stratum 1, served minus system clock "
              f"{c['offset_seconds'] * 1e6:+.1f} us, frequency {c['frequency_ppm']:+.3f} ppm")
        sys.exit(0)
    if time.monotonic() > deadline:
        print(f"clock: {c}")
        sys.exit(1)
    time.sleep(2)
EOF
# Under the unit's sandbox pitime still lists the interfaces and says what each one's
# timestamps are (issue 15's timestamping).
stamps=$(guest journalctl -u pitime -o cat | grep -m1 "timestamps: " || true)
[ -n "$stamps" ] || fail "pitime did not say which timestamps the interfaces got: $(guest journalctl -u pitime -p warning -o cat | tail -n 5)"
echo "ok: $stamps"
# The operator's command socket (/run/pitime/pitime.sock) under the unit's sandbox: root
# reaches the daemon, which, with no jump pending, refuses by name.
accept=$(guest pitime accept-jump gps 2>&1 || true)
grep -q "refused: .* no pending jump\|refused: no source is named" <<<"$accept" ||
    fail "pitime accept-jump did not reach the daemon: $accept"
echo "ok: the command socket answers: $accept"
step=$(guest journalctl -u pitime -o cat | grep -m1 "stepping the clock" || true)
[ -n "$step" ] || fail "pitime never stepped the guest's clock"
echo "ok: $step"
guest systemctl restart pitime
drift=$(guest cat /var/lib/pitime/drift) || fail "no drift file after a restart"
echo "ok: drift file written at exit: $drift ppm"

# The firewall: local-networks.txt from the boot partition made the sets, and without QEMU's
# network (10.0.2.0/24) in them, neither NTP nor the status page answers.
[ "$(guest nft list set inet pitime local4 | grep -c '10.0.2.0/24')" = 1 ] ||
    fail "local-networks.txt not applied: $(guest nft list set inet pitime local4)"
guest nft flush set inet pitime local4
! python3 scripts/qemu/ntp-query.py "$NTP_PORT" 4 >/dev/null || fail "NTP answered a network not listed"
! timeout 10 python3 -c "import urllib.request, sys; urllib.request.urlopen(sys.argv[1], timeout=5)" \
    "http://127.0.0.1:$WEB_PORT/" 2>/dev/null || fail "status page served to a network not listed"
echo "ok: firewall: local-networks.txt applied; NTP and the status page closed to other networks"

# Applying changed settings without a reboot, as docs/operations.md says: the sets come back.
guest systemctl restart pitime-boot-config pitime
python3 scripts/qemu/ntp-query.py "$NTP_PORT" "$SYNC_TIMEOUT" >/dev/null || fail "no NTP after restarting pitime-boot-config"
! guest findmnt -n --mountpoint /etc/pitime/pitime.toml >/dev/null || fail "something is mounted on /etc/pitime/pitime.toml"
echo "ok: systemctl restart pitime-boot-config pitime: settings applied again, NTP answered"

# An edited pitime.toml on the boot partition, without a reboot nor a restart of pitime, as
# docs/install.md says: pitime-boot-config checks and installs it, SIGHUP rereads both files.
# require_auth: unsigned requests go unanswered, signed ones are answered; then back.
to_boot_partition() {
    guest "mount -o remount,rw /boot/firmware && cat >/boot/firmware/$1 && mount -o remount,ro /boot/firmware" <"$2"
}
reloads() { guest journalctl -u pitime -o cat | grep -c 'configuration reloaded' || true; }
apply_edited_config() {
    local before deadline
    before=$(reloads)
    to_boot_partition pitime.toml "$1"
    guest 'systemctl restart pitime-boot-config && systemctl reload pitime'
    deadline=$(( $(date +%s) + 60 ))
    until [ "$(reloads)" -gt "$before" ]; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "pitime did not reload: $(guest journalctl -u pitime -n 5 -o cat)"
        sleep 2
    done
}
test_config "require_auth = true" >"$tmp/pitime-auth.toml"
apply_edited_config "$tmp/pitime-auth.toml"
! python3 scripts/qemu/ntp-query.py "$NTP_PORT" 4 >/dev/null || fail "require_auth from the edited pitime.toml not applied"
python3 scripts/qemu/ntp-query.py --keys "$tmp/ntp.keys" --key 7 "$NTP_PORT" 30 >/dev/null ||
    fail "no reply to a signed request with require_auth"
apply_edited_config "$tmp/pitime.toml"
python3 scripts/qemu/ntp-query.py "$NTP_PORT" 30 >/dev/null || fail "require_auth still on after the first pitime.toml was back"
echo "ok: an edited pitime.toml applied by systemctl restart pitime-boot-config && systemctl reload pitime (require_auth on, then off)"

# Invalid files on the boot partition spoil only their own setting (issue 17: a host name "-x"
# became an option to hostname(1), which failed and stopped the script before the SSH keys).
printf '%s\n' -x >"$tmp/hostname.bad"
printf '%s\n' 'address=10.0.2.15' 'gateway=10.0.2.2' 'garbage' >"$tmp/network.txt.bad"
to_boot_partition hostname "$tmp/hostname.bad"
to_boot_partition network.txt "$tmp/network.txt.bad"
guest systemctl restart pitime-boot-config ||
    fail "pitime-boot-config failed with invalid files: $(guest journalctl -u pitime-boot-config -n 20 -o cat)"
# (Expanded in the guest.)
# shellcheck disable=SC2016
checks=$(guest 'hostname; wc -l </run/pitime-boot/authorized_keys/root; grep -c simulate /run/pitime-boot/pitime.toml;
    stat -c %a /run/pitime-boot/ntp.keys; ls /run/systemd/network/ | grep -c pitime;
    nft list set inet pitime local4 | grep -c 10.0.2.0/24;
    journalctl -u pitime-boot-config -p warning -o cat --since -2min | grep -c "^ignoring /boot/firmware/\(hostname\|network.txt\)"')
read -r -d '' name authorized toml keys network_files local4 ignored _ <<<"$checks" || true
[ "$name" = pitime-test ] || fail "host name changed by an invalid hostname file: $name"
[ "$authorized" = 1 ] && [ "$toml" -ge 1 ] && [ "$keys" = 640 ] && [ "$local4" = 1 ] ||
    fail "settings lost with an invalid hostname (authorized keys $authorized, pitime.toml $toml, ntp.keys $keys, local networks $local4)"
[ "$network_files" = 0 ] || fail "network.txt's file kept though network.txt is invalid"
[ "$ignored" -ge 2 ] || fail "the invalid files not named in the journal: $(guest journalctl -u pitime-boot-config -n 20 -o cat)"
python3 scripts/qemu/ntp-query.py --keys "$tmp/ntp.keys" --key 7 "$NTP_PORT" "$SYNC_TIMEOUT" >/dev/null ||
    fail "no signed NTP reply after the invalid files"
echo "ok: hostname \"-x\" and a network.txt of garbage ignored (the journal says so); SSH keys, pitime.toml, ntp.keys, firewall still applied"

# The ignored files are alarms on the status page (notices in boot-config's image.toml), once
# pitime rereads its files.
guest systemctl reload pitime
python3 - "$WEB_PORT" "$SYNC_TIMEOUT" <<'PY' || fail "the ignored files are not alarms on the status page"
import json, sys, time, urllib.request

deadline = time.monotonic() + float(sys.argv[2])
while True:
    url = f"http://127.0.0.1:{sys.argv[1]}/api/v1/status"
    alarms = json.load(urllib.request.urlopen(url, timeout=30))["alarms"]
    ignored = [a for a in alarms if a.startswith("ignoring /boot/firmware/")]
    if len(ignored) >= 2:
        print("ok: on the status page: " + "; ".join(ignored))
        sys.exit(0)
    if time.monotonic() > deadline:
        print(f"alarms: {alarms}")
        sys.exit(1)
    time.sleep(2)
PY

# The boot partition holds secrets (ntp.keys, wifi.txt, snmp.txt): root's alone.
# (Expanded in the guest.)
# shellcheck disable=SC2016
perms=$(guest 'stat -c %a /boot/firmware /boot/firmware/snmp.txt;
    setpriv --reuid=pitime --regid=pitime --init-groups cat /boot/firmware/snmp.txt 2>&1 >/dev/null || true')
read -r -d '' dir_mode file_mode _ <<<"$perms" || true
[ "$dir_mode" = 700 ] && [ "$file_mode" = 600 ] && grep -q 'Permission denied' <<<"$perms" ||
    fail "the boot partition is readable by others: $perms"
echo "ok: boot partition root's alone (directory 700, files 600; the pitime user is refused)"

# The boot partition's pitime.toml is checked as the pitime user: a keys file only root can read
# is refused (root would have accepted it), and becomes a notice.
guest "install -m 0600 /run/pitime-boot/ntp.keys /run/root-only.keys"
test_config 'keys_file = "/run/root-only.keys"' | grep -v '^keys_file = "ntp.keys"' >"$tmp/pitime-root-only.toml"
to_boot_partition pitime.toml "$tmp/pitime-root-only.toml"
guest systemctl restart pitime-boot-config
refused=$(guest journalctl -u pitime-boot-config -p warning -o cat --since -1min) || true
grep -q '/run/root-only.keys.*[Pp]ermission denied' <<<"$refused" &&
    grep -q '^ignoring /boot/firmware/pitime.toml' <<<"$refused" ||
    fail "a keys file only root can read was not refused: $refused"
guest grep -q "'ignoring /boot/firmware/pitime.toml'" /run/pitime-boot/image.toml ||
    fail "the refused pitime.toml is not a notice: $(guest cat /run/pitime-boot/image.toml)"
to_boot_partition pitime.toml "$tmp/pitime.toml"
guest 'rm /run/root-only.keys && systemctl restart pitime-boot-config && systemctl reload pitime'
echo "ok: the boot partition's pitime.toml checked as the pitime user (a root-only keys file refused)"

# SNMP from snmp.txt: snmpd with pitime's NTPv4-MIB (ntpEntSoftwareName), SNMPv3 and the v2c
# community from QEMU's network; a wrong community gets nothing.
ntp_software=.1.3.6.1.2.1.197.1.1.1.0
snmp_answer=
for _ in $(seq 1 30); do
    if snmp_answer=$(snmpget -v3 -l authPriv -u monitor -a SHA-256 -A "$SNMP_PASSWORD" -x AES \
        -X "$SNMP_PASSWORD" -t 2 -r 1 "udp:127.0.0.1:$SNMP_PORT" "$ntp_software" 2>&1) &&
        grep -q pitime <<<"$snmp_answer"; then
        break
    fi
    sleep 2
done
grep -q pitime <<<"$snmp_answer" ||
    fail "no NTPv4-MIB over SNMPv3: $snmp_answer $(guest journalctl -b -u snmpd -u pitime-boot-config -n 20 -o cat)"
v2c=$(snmpget -v2c -c qemu-test -t 2 -r 1 "udp:127.0.0.1:$SNMP_PORT" "$ntp_software" 2>&1) ||
    fail "no answer to SNMPv2c: $v2c"
! snmpget -v2c -c wrong -t 1 -r 0 "udp:127.0.0.1:$SNMP_PORT" "$ntp_software" >/dev/null 2>&1 ||
    fail "a wrong community was answered"
echo "ok: snmp.txt: NTPv4-MIB over SNMPv3 (authPriv) and v2c: $snmp_answer"

# The journal on the syslog server, pitime's warnings at warning priority (facility daemon: 28).
# RFC 5424: <PRI>1 TIME HOST APP PID ...
from_pitime='^<28>1 [^ ]+ [^ ]+ pitime [0-9]+ '
grep -aEq "$from_pitime" "$tmp/syslog.log" 2>/dev/null ||
    fail "no warning from pitime forwarded by syslog.txt: $(tail -n 5 "$tmp/syslog.log" 2>&1) $(guest journalctl -b -u systemd-netlogd -n 10 -o cat)"
echo "ok: syslog.txt: the journal forwarded ($(wc -l <"$tmp/syslog.log") lines), e.g. $(grep -aE -m1 "$from_pitime" "$tmp/syslog.log" | cut -c1-160)"

# Without its firewall the image serves nothing but SSH: nftables failing stops pitime, avahi
# and snmpd, which come back with it.
# shellcheck disable=SC2016
guest 'mkdir -p /run/systemd/system/nftables.service.d &&
    printf "[Service]\nExecStart=\nExecStart=/bin/false\n" >/run/systemd/system/nftables.service.d/broken.conf &&
    systemctl daemon-reload && ! systemctl restart nftables 2>/dev/null' || fail "the broken firewall started"
units=$(guest systemctl is-active pitime avahi-daemon snmpd || true)
[ "$(grep -c '^active$' <<<"$units")" = 0 ] || fail "services running without the firewall: $units"
! python3 scripts/qemu/ntp-query.py "$NTP_PORT" 4 >/dev/null || fail "NTP answered without the firewall"
guest 'rm -r /run/systemd/system/nftables.service.d && systemctl daemon-reload && systemctl restart nftables &&
    systemctl restart pitime-boot-config && systemctl start pitime avahi-daemon'
python3 scripts/qemu/ntp-query.py --keys "$tmp/ntp.keys" --key 7 "$NTP_PORT" "$SYNC_TIMEOUT" >/dev/null ||
    fail "no NTP after the firewall came back"
echo "ok: with the firewall failed, pitime, avahi and snmpd stopped and NTP unanswered; back with it"

# Updating pitime alone, as docs/operations.md says (when a .deb from scripts/build-deb.sh is
# here): the root made writable, the package reinstalled, the root read-only again.
# shellcheck disable=SC2012 # our own file names
deb=$(ls -t target/aarch64-unknown-linux-gnu/debian/pitime_*_arm64.deb 2>/dev/null | head -n1)
if [ -n "$deb" ]; then
    guest 'cat >/tmp/pitime.deb' <"$deb"
    # (About 50 s on the emulated Pi 3 of a busy machine: two systemd reloads and a restart.)
    guest_timeout=300 guest 'mount -o remount,rw / && apt-get install -q -y --reinstall /tmp/pitime.deb && mount -o remount,ro /' \
        >"$tmp/update.log" 2>&1 || fail "update of the package failed: $(tail -n 20 "$tmp/update.log")"
    [ "$(guest systemctl is-active pitime)" = active ] || fail "pitime.service after the update"
    guest findmnt -n -o OPTIONS / | grep -q '^ro,' || fail "root not read-only after the update"
    echo "ok: $(basename "$deb") reinstalled on the remounted root, pitime active, root read-only again"
else
    echo "skipped: no .deb in target/aarch64-unknown-linux-gnu/debian/ to test an update with"
fi

# A power cut (QEMU killed, nothing flushed) while the state partition is being written (pitime
# restarted again and again, so its drift file is rewritten, beside a stream of synced writes),
# and the second boot: the same host keys (ssh checks them against known_hosts), the state
# partition clean after its journal's replay, the drift file read, every unit started.
# The invalid hostname and network.txt are still on the card: the login with the boot partition's
# key shows that the SSH keys were installed all the same, and pitime signs with its keys.
guest 'nohup sh -c "while :; do dd if=/dev/urandom of=/var/lib/pitime-state/scratch bs=64k count=64 conv=fsync; done" >/dev/null 2>&1 &
    nohup sh -c "while :; do systemctl restart pitime; done" >/dev/null 2>&1 &'
sleep 10
kill -KILL "$qemu_pid"
wait "$qemu_pid" 2>/dev/null || true
boot_and_login
wait_for_boot
[ "$(guest systemctl is-active pitime)" = active ] || fail "pitime.service after the power cut"
[ "$(guest hostname)" = pitime ] || fail "host name at a boot with an invalid hostname file: $(guest hostname)"
python3 scripts/qemu/ntp-query.py --keys "$tmp/ntp.keys" --key 7 "$NTP_PORT" "$SYNC_TIMEOUT" >/dev/null ||
    fail "no signed NTP reply at the second boot"
# shellcheck disable=SC2016
state=$(guest 'tune2fs -l "$(findmnt -n -o SOURCE /var/lib/pitime-state)" | sed -n "s/^Filesystem state: *//p";
    cat /var/lib/pitime/drift; journalctl -b -u pitime -o cat | grep -c "ignoring the drift file";
    rm -f /var/lib/pitime-state/scratch')
read -r -d '' fs_state drift_ppm drift_ignored _ <<<"$state" || true
[ "$fs_state" = clean ] && [ "$drift_ignored" = 0 ] || fail "after the power cut: state partition $fs_state, drift file: $state"
echo "ok: power cut during writes: state partition $fs_state, drift file read ($drift_ppm ppm)"
echo "ok: after a power cut, with the invalid hostname and network.txt on the card: booted, same SSH host key, no failed unit, host name pitime, pitime active and signing ($(elapsed))"

echo "PASS: $MACHINE, $(elapsed)"
