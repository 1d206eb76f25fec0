#!/bin/bash
# Runs inside the guest for `scripts/qemu-test.sh --rig`: the rig's pulser. It makes a gpio-sim
# chip with two lines (0: PPS, 1: DCF77) and sets their levels from the bytes the host's
# `pitime play-signals` sends on the virtio serial port pitime.pulse (P/p: PPS high/low,
# D/d: DCF77 active/inactive). pitime reads those lines through the GPIO character device with
# the kernel's edge timestamps, the path a Pi's header pins take. /run/pitime-rig/gpiochip links
# to the chip, whose number the test cannot know in advance.
set -eu
modprobe gpio-sim
mountpoint -q /sys/kernel/config || mount -t configfs configfs /sys/kernel/config
sim=/sys/kernel/config/gpio-sim/pitime-rig
if [ ! -d "$sim" ]; then
    mkdir "$sim" "$sim/bank0"
    echo 2 >"$sim/bank0/num_lines"
    mkdir "$sim/bank0/line0" "$sim/bank0/line1"
    echo pps >"$sim/bank0/line0/name"
    echo dcf77 >"$sim/bank0/line1/name"
    echo 1 >"$sim/live"
fi
chip=$(cat "$sim/bank0/chip_name")
lines=/sys/devices/platform/$(cat "$sim/dev_name")/$chip
mkdir -p /run/pitime-rig
ln -sfn "/dev/$chip" /run/pitime-rig/gpiochip
echo "gpio-sim chip $chip: line 0 PPS, line 1 DCF77"
# One byte at a time (read -n1 on a character device does not buffer ahead). The port reads as
# ended while the host side is not connected: then it is opened again.
while true; do
    while IFS= read -r -n1 c; do
        case $c in
            P) echo pull-up >"$lines/sim_gpio0/pull" ;;
            p) echo pull-down >"$lines/sim_gpio0/pull" ;;
            D) echo pull-up >"$lines/sim_gpio1/pull" ;;
            d) echo pull-down >"$lines/sim_gpio1/pull" ;;
        esac
    done </dev/virtio-ports/pitime.pulse
    sleep 0.5
done
