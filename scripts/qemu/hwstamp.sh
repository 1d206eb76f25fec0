# shellcheck shell=bash
# An emulated NIC with hardware timestamps and a PTP hardware clock, for `scripts/qemu-test.sh
# --hwstamp` (sourced by it; uses its base, forward, tmp, guest, fail and the forwarded ports).
#
# QEMU (8.0 and later) emulates Intel's 82576 (`-device igb`) with its IEEE 1588 unit: a SYSTIM
# clock read from QEMU's virtual clock (the guest's igb driver makes it /dev/ptp0), a transmit
# timestamp latched for each frame whose descriptor asks for one (TXSTMPL/H, TSYNCTXCTL), and a
# receive timestamp for PTPv2 frames matched by an EtherType filter (RXSTMPL/H, TSYNCRXCTL) only,
# as on the real chip: an 82576 cannot stamp every received frame, so NTP gets hardware transmit
# timestamps and kernel receive timestamps (the driver offers no receive filter "all"; chrony
# says "Enabled HW timestamping (TX only)"). QEMU's e1000e (an 82574, QEMU_HWSTAMP_NIC=e1000e)
# is the opposite: its driver offers every filter and a PHC, but the emulation latches no
# timestamp the driver gets ("clearing Tx timestamp hang", its PHC runs at the wrong rate): a
# NIC that promises hardware timestamps and never delivers them.
#
# The checks: the NIC's driver answers (ethtool -T), /dev/ptp0 is read against the system clock
# (phc_ctl); the guest's own chronyd serves with `hwtimestamp` and counts the hardware
# timestamps it got (chronyc serverstats) while this machine's chronyd asks it in interleaved
# mode, then serves without, for comparison; pitime, given `timestamping = "hardware"`, says in
# its status and log what the interface got, and a chronyd here gets interleaved answers from it.
#
# Debian 12's QEMU (7.2) has no igb; Debian 13's (10.0) has. It runs from a Debian 13 root made
# with mmdebstrap beside this machine's system (never installed into it), through that root's own
# dynamic loader; a second, arm64 root with ethtool, linuxptp and chrony becomes a read-only disk
# of the guest, whose programs run the same way, so the image needs none of them.
#
# QEMU_TRIXIE_DIR: where the two roots are kept (default target/qemu-trixie; 250 MB for QEMU,
# 160 MB of arm64 tools and their 512 MB disk image; made once in ~5 min, which needs mmdebstrap
# and binfmt_misc for arm64, as scripts/build-image.sh does).
# QEMU_HWSTAMP_NIC: the emulated NIC, igb (default) or e1000e.
# QEMU_HWSTAMP_EXPECT: what pitime's status must say the interface got: "hardware" (default), or
# "kernel" for an image whose pitime does not use hardware timestamps yet (it must then say that
# the interface has them, or has transmit ones and a clock).

TRIXIE_DIR=${QEMU_TRIXIE_DIR:-target/qemu-trixie}
HWSTAMP_EXPECT=${QEMU_HWSTAMP_EXPECT:-hardware}
HWSTAMP_NIC=${QEMU_HWSTAMP_NIC:-igb}
# The guest's own chronyd, with hardware timestamps, serves here (forwarded from the host).
CHRONY_PORT=$((base + 11123))

# Makes the two Debian 13 roots if they are missing; sets qemu_system (the command that runs
# Debian 13's QEMU) and hwstamp_devices (the NIC and the tools disk).
hwstamp_prepare() {
    local host=$TRIXIE_DIR/host guest=$TRIXIE_DIR/guest
    if ! command -v mmdebstrap >/dev/null || ! command -v update-binfmts >/dev/null; then
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mmdebstrap \
            qemu-user-static binfmt-support e2fsprogs
    fi
    if [ ! -x "$host/usr/bin/qemu-system-aarch64" ]; then
        rm -rf "$host"
        mmdebstrap --variant=apt --include=qemu-system-arm trixie "$host" ||
            fail "mmdebstrap of Debian 13's QEMU failed"
    fi
    if [ ! -x "$guest/usr/sbin/chronyd" ]; then
        rm -rf "$guest"
        mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
        update-binfmts --enable qemu-aarch64 2>/dev/null || true
        mmdebstrap --architectures=arm64 --variant=essential --include=chrony,ethtool,linuxptp trixie "$guest" ||
            fail "mmdebstrap of the guest's arm64 tools failed"
    fi
    [ -f "$TRIXIE_DIR/guest-tools.img" ] || mkfs.ext4 -q -L pitime-tools -d "$guest" "$TRIXIE_DIR/guest-tools.img" 512M
    qemu_system=(env "QEMU_MODULE_DIR=$host/usr/lib/x86_64-linux-gnu/qemu"
        "$host/lib64/ld-linux-x86-64.so.2" --library-path "$host/usr/lib/x86_64-linux-gnu"
        "$host/usr/bin/qemu-system-aarch64")
    "${qemu_system[@]}" -M virt -device "$HWSTAMP_NIC,help" >/dev/null 2>&1 || fail "$host's QEMU has no $HWSTAMP_NIC"
    # The igb is a PCI Express device: behind a root port, as on a real board.
    # shellcheck disable=SC2054 # commas within arguments
    hwstamp_devices=(-device pcie-root-port,id=rp0,chassis=1 -device "$HWSTAMP_NIC,netdev=net,bus=rp0,romfile="
        -drive "file=$TRIXIE_DIR/guest-tools.img,if=none,format=raw,readonly=on,id=tools"
        -device virtio-blk-pci,drive=tools)
    forward+=",hostfwd=udp::$CHRONY_PORT-:11123"
}

# A program of the tools disk in the guest, through the disk's own loader and libraries.
tool() {
    guest "T=/run/hwtools; \$T/usr/lib/ld-linux-aarch64.so.1 --library-path \$T/usr/lib/aarch64-linux-gnu \$T/usr/$*"
}

hwstamp_checks() {
    guest 'mkdir -p /run/hwtools && mount -o ro /dev/disk/by-label/pitime-tools /run/hwtools' ||
        fail "the tools disk did not mount"
    # The interface the NIC's driver made, and its clock.
    hw_if=$(guest "basename \"\$(ls -d /sys/bus/pci/drivers/$HWSTAMP_NIC/*/net/* | head -n1)\"") ||
        fail "no $HWSTAMP_NIC interface"
    ts=$(tool sbin/ethtool -T "$hw_if") || fail "ethtool -T $hw_if: $ts"
    for want in hardware-transmit hardware-receive hardware-raw-clock 'provider index: 0'; do
        grep -q "$want" <<<"$ts" || fail "ethtool -T $hw_if lacks $want: $ts"
    done
    echo "ok: $hw_if ($HWSTAMP_NIC) has hardware timestamps and /dev/ptp0: $(tr -s ' \t\n' ' ' <<<"$ts")"

    # The clock runs: read against the system clock twice, 5 s apart.
    phc=$(tool sbin/phc_ctl /dev/ptp0 cmp wait 5 cmp 2>&1) || fail "phc_ctl /dev/ptp0: $phc"
    [ "$(grep -c 'offset from CLOCK_REALTIME is' <<<"$phc")" = 2 ] || fail "phc_ctl /dev/ptp0: $phc"
    echo "ok: /dev/ptp0 read: $(grep -o 'offset from CLOCK_REALTIME is .*' <<<"$phc" | tr '\n' ' ')"

    # The emulation stamps: the guest's own chronyd serves with `hwtimestamp`, a chronyd on this
    # machine asks it in interleaved mode (xleave: each reply carries the previous one's
    # hardware transmit time), and the guest's chronyd counts the hardware transmit timestamps
    # it got. Then the same without `hwtimestamp`, kernel timestamps, for comparison.
    guest "nft insert rule inet pitime input udp dport 11123 accept" || fail "cannot open port 11123"
    hw_chrony hwtimestamp
    hw=$(client_stats "$CHRONY_PORT" -2)
    stats=$(tool bin/chronyc -h /run/hwchrony/chronyd.sock serverstats) || fail "chronyc serverstats: $stats"
    hw_tx=$(sed -n 's/^NTP hardware TX timestamps *: *//p' <<<"$stats")
    hw_rx=$(sed -n 's/^NTP hardware RX timestamps *: *//p' <<<"$stats")
    enabled=$(guest cat /run/hwchrony/log | grep -o "Enabled HW timestamping.* on $hw_if") ||
        fail "chronyd did not enable hardware timestamps: $(guest cat /run/hwchrony/log)"
    served="the guest's chronyd (\"$enabled\") served with $hw_tx hardware transmit and $hw_rx hardware receive timestamps"
    if [ "$HWSTAMP_NIC" = e1000e ]; then
        # QEMU's 82574 has the timesync registers but latches no timestamp the driver gets:
        # it offers them all, and nothing comes ("clearing Tx timestamp hang").
        if [ "${hw_tx:-0}" != 0 ] || [ "${hw_rx:-0}" != 0 ]; then fail "QEMU's e1000e stamps now: $stats"; fi
        echo "ok: as known, QEMU's e1000e offers hardware timestamps and gives none: $served"
    else
        [ "${hw_tx:-0}" -gt 0 ] || fail "the guest's chronyd got no hardware transmit timestamp: $stats $(guest cat /run/hwchrony/log)"
        echo "ok: $served; this machine's chronyd (xleave) saw $hw"
    fi
    hw_chrony kernel
    echo "ok: the same with kernel timestamps: $(client_stats "$CHRONY_PORT" -2)"
    stop_hw_chrony

    # What pitime made of the interface, asked for hardware timestamps: in the status and the log.
    got=$(python3 scripts/qemu/wait-status.py "$WEB_PORT" --value \
        "'; '.join(t['timestamping'] + ': ' + t['why'] for t in s['ntp']['timestamping'] if t['interface'] == '$hw_if')")
    log=$(guest journalctl -u pitime -o cat | grep "timestamps: .*interface=$hw_if" | tail -n1)
    [ -n "$log" ] || fail "pitime's log says nothing of $hw_if's timestamps"
    case $HWSTAMP_EXPECT:$got in
        hardware:hardware:*) ;;
        kernel:"kernel: "*"transmit yes"*"/dev/ptp0"* | kernel:"kernel: "*"does not use yet"*) ;;
        *) fail "pitime's status for $hw_if: \"$got\", not $HWSTAMP_EXPECT timestamps (log: $log)" ;;
    esac
    echo "ok: pitime's status for $hw_if: $got; its log: $log"
    # And a client of pitime through the forwarded port, within its rate limit (one request a
    # second on average): interleaved and sane.
    client=$(client_stats "$NTP_PORT" 1)
    if [ "$HWSTAMP_EXPECT" = hardware ]; then
        # How many requests and replies the interface stamped and how many fell back to the
        # kernel's stamp (on QEMU's e1000e, all of them), and its clock's fit.
        counts=$(python3 scripts/qemu/wait-status.py "$WEB_PORT" --value "s['ntp'].get('hardware_timestamps')")
        clock=$(python3 scripts/qemu/wait-status.py "$WEB_PORT" --value \
            "[t.get('clock') for t in s['ntp']['timestamping'] if t['interface'] == '$hw_if']")
        echo "pitime's hardware timestamps: $counts; $hw_if's clock: $clock"
        python3 -c "import sys, ast; c = ast.literal_eval(sys.argv[1]); sys.exit(0 if c and sum(c.values()) > 0 else 1)" \
            "$counts" || fail "pitime counted no hardware timestamp nor fallback: $counts"
        # The igb stamps what it sends: pitime must have served some of those stamps (converted
        # by the fitted clock), and none it receives (it has no receive filter for NTP).
        if [ "$HWSTAMP_NIC" = igb ]; then
            python3 -c "import sys, ast; c = ast.literal_eval(sys.argv[1]); sys.exit(0 if c['transmit'] > 0 and c['receive'] + c['receive_fallback'] == 0 else 1)" \
                "$counts" || fail "pitime served no hardware transmit timestamp of the igb: $counts; clock: $clock"
        fi
    fi
    [[ $client =~ ^([0-9]+)\ samples\ \(([0-9]+)\ interleaved\),\ offset\ median\ ([-+][0-9]+)\ us ]] ||
        fail "no measurements of pitime: $client"
    samples=${BASH_REMATCH[1]} interleaved=${BASH_REMATCH[2]} offset=${BASH_REMATCH[3]#+}
    if [ "$interleaved" -lt $((samples / 2)) ] || [ "${offset#-}" -gt 5000 ]; then
        fail "pitime's answers: $client $(guest journalctl -u pitime -o cat | grep -i 'hardware\|ptp' | tail -n 5)"
    fi
    echo "ok: this machine's chronyd (xleave) asking pitime saw $client"
}

# Starts (again) the guest's chronyd on port 11123: `hwtimestamp` on the emulated NIC, or not.
hw_chrony() {
    stop_hw_chrony
    guest 'mkdir -p -m 0700 /run/hwchrony'
    {
        printf '%s\n' 'port 11123' 'allow' 'local stratum 8' 'cmdallow' \
            'bindcmdaddress /run/hwchrony/chronyd.sock' 'pidfile /run/hwchrony/chronyd.pid'
        [ "$1" = kernel ] || echo "hwtimestamp $hw_if"
    } | guest 'cat >/run/hwchrony/chrony.conf'
    tool 'sbin/chronyd -x -u root -f /run/hwchrony/chrony.conf -l /run/hwchrony/log' ||
        fail "the guest's chronyd did not start: $(guest cat /run/hwchrony/log)"
}

stop_hw_chrony() {
    # (Expanded in the guest.)
    # shellcheck disable=SC2016
    guest 'f=/run/hwchrony/chronyd.pid; [ ! -f $f ] || { p=$(cat $f); kill $p; while kill -0 $p 2>/dev/null; do sleep 0.2; done; }'
}

# This machine's chronyd (-x: it leaves the clock alone) as an interleaved client of the NTP
# server forwarded from PORT for 60 s, polling every 2^POLL s; prints the median offset and
# the spread of offsets and delays it measured after its first quarter, and how many of those
# samples were interleaved.
client_stats() {
    local dir port=$1 poll=$2
    dir=$(mktemp -d "$tmp/client.XXXX")
    timeout 60 chronyd -x -d -u root -f /dev/null "server 127.0.0.1 port $port xleave minpoll $poll maxpoll $poll" \
        "logdir $dir" "log measurements" "pidfile $dir/pid" "cmdport 0" "port 0" >"$dir/out" 2>&1 || true
    python3 - "$dir/measurements.log" <<'PY' || fail "no measurements from the client: $(tail -n 5 "$dir/out")"
import statistics, sys

rows = [l.split() for l in open(sys.argv[1]) if l[:1].isdigit()]
# The client corrects its own (virtual, -x) clock by the first samples: the rest are the steady
# state.
rows = rows[len(rows) // 4:]
if len(rows) < 10:
    sys.exit(1)
# Offset and peer delay are columns 12 and 13; the last but two says B(asic) or I(nterleaved).
offsets = [float(r[11]) * 1e6 for r in rows]
delays = [float(r[12]) * 1e6 for r in rows]
interleaved = sum(1 for r in rows if r[-3].endswith("I"))
def spread(v):
    q = statistics.quantiles(v, n=20)
    return q[18] - q[0]
print(f"{len(rows)} samples ({interleaved} interleaved), offset median {statistics.median(offsets):+.0f} us, "
      f"spread (p95-p5) {spread(offsets):.0f} us, delay median {statistics.median(delays):.0f} us, spread {spread(delays):.0f} us")
PY
}
