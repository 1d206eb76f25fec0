#!/usr/bin/env bash
# Builds the SD card image for the Raspberry Pi 3, 3A+/3B+, Zero 2 W, 4B, 400, CM4, 5, 500 and
# CM5: target/image/pitime-VERSION-arm64.img.xz (and the uncompressed .img next to it).
# A minimal Debian trixie arm64 system with the kernel from trixie-backports (Linux 7.x: the
# Pi 5's RP1 drivers, pps-gpio, gpio-sim), raspi-firmware, OpenSSH, avahi and nftables, with the
# pitime .deb from scripts/build-deb.sh, which this script runs first, and pitime's device-tree
# overlays (overlays/*.dts: the header UART and kernel PPS) compiled into /boot/firmware/overlays.
#
#   sudo scripts/build-image.sh             # the release image
#   sudo scripts/build-image.sh --no-xz     # skip the ~4 min compression (for scripts/qemu-test.sh)
#
# Needs root (chroot, binfmt) but no loop mounts: the card image is assembled by genimage from
# directories. Installs its Debian build dependencies when missing.
#
# The base system (everything but pitime, image/base.packages and image/base-customize.sh) is
# cached in target/image/base-HASH.tar, keyed by a hash of its recipe; a rebuild after a code
# change unpacks that tar, installs the new .deb and the files of image/rootfs/, and assembles
# the card: a few minutes instead of ~5 for mmdebstrap. The cache does not follow Debian's
# updates: for a release, `rm target/image/base-*.tar` first to get the latest security fixes.
#
# Layout of the card (see docs/install.md and docs/operations.md):
#   1 FAT32 RASPIFIRM     256 MiB  /boot/firmware  firmware, kernel, and the user's settings files
#   2 ext4  RASPIROOT              /               read-only
#   3 ext4  PITIMESTATE    64 MiB  /var/lib/pitime-state  writable state; grows to fill the card
set -euo pipefail
cd "$(dirname "$0")/.."

COMPRESS=yes
case "${1:-}" in
    --no-xz) COMPRESS=no ;;
    "") ;;
    *) echo "usage: $0 [--no-xz]" >&2; exit 2 ;;
esac
[ "$(id -u)" = 0 ] || { echo "$0: run as root (chroot, binfmt_misc)" >&2; exit 1; }

OUT=target/image
WORK=$OUT/work
mkdir -p "$OUT"

# Build dependencies, from Debian. qemu-user-static runs the arm64 maintainer scripts.
deps=(mmdebstrap qemu-user-static binfmt-support arch-test genimage mtools dosfstools fdisk e2fsprogs xz-utils
    device-tree-compiler)
missing=()
for p in "${deps[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# binfmt_misc is not mounted on a fresh machine (no systemd to do it), so arm64 binaries would
# not run in the chroot.
mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
update-binfmts --enable qemu-aarch64 2>/dev/null || true
[ "$(arch-test arm64)" = "arm64: ok" ] || { echo "$0: cannot run arm64 binaries (binfmt)" >&2; exit 1; }

# --- The base system, cached by the hash of its recipe ------------------------------------------
mirror=http://deb.debian.org/debian
# The commas are mmdebstrap's; "$1" is expanded by mmdebstrap (the new root), not here.
# shellcheck disable=SC2054,SC2016
mmdebstrap_args=(
    --mode=root --variant=apt --architectures=arm64 --components=main,non-free-firmware
    --aptopt='APT::Install-Recommends "false"'
    --include="$(grep -v '^#' image/base.packages | xargs | tr ' ' ,)"
    --customize-hook='image/base-customize.sh "$1"'
    trixie
)
# The kernel comes from trixie-backports (base-customize.sh): Linux 7.x, the first Debian kernel
# with the Pi 5's RP1 drivers and device trees, pps-gpio and gpio-sim.
sources=(
    "deb $mirror trixie main non-free-firmware"
    "deb $mirror trixie-updates main non-free-firmware"
    "deb $mirror trixie-backports main non-free-firmware"
    "deb http://deb.debian.org/debian-security trixie-security main non-free-firmware"
)
key=$( { printf '%s\n' "${mmdebstrap_args[@]}" "${sources[@]}"; cat image/base.packages image/base-customize.sh; } \
    | sha256sum | cut -c1-16)
base=$OUT/base-$key.tar
if [ ! -f "$base" ]; then
    echo "Building the base system $base (~5 min)"
    start=$(date +%s)
    mmdebstrap "${mmdebstrap_args[@]}" "$base.tmp.tar" "${sources[@]}"
    mv "$base.tmp.tar" "$base"
    echo "Base system built in $(( $(date +%s) - start )) s"
    # Older bases are useless now.
    find "$OUT" -maxdepth 1 -name 'base-*.tar' ! -name "base-$key.tar" -delete
fi

# pitime itself, cross-compiled (a few minutes after a code change).
scripts/build-deb.sh
# shellcheck disable=SC2012 # our own file names
deb=$(ls -t target/aarch64-unknown-linux-gnu/debian/pitime_*_arm64.deb | head -n1)
version=$(dpkg-deb -f "$deb" Version)
name=pitime-$version-arm64

# --- The image's root: a copy of the base, the .deb, image/rootfs --------------------------------
start=$(date +%s)
rm -rf "$WORK"
root=$WORK/root
mkdir -p "$root"
tar -xpf "$base" -C "$root" --numeric-owner --xattrs --xattrs-include='*'
cp -r --preserve=mode image/rootfs/. "$root/"

cleanup() {
    umount "$root/proc" 2>/dev/null || true
    rm -f "$root/usr/sbin/policy-rc.d"
}
trap cleanup EXIT
mount -t proc proc "$root/proc"
# No service may start inside the chroot.
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
cp "$deb" "$root/tmp/pitime.deb"
chroot "$root" dpkg -i /tmp/pitime.deb
rm "$root/tmp/pitime.deb"
chroot "$root" /usr/lib/pitime-image/configure-image
# raspi-firmware's hook rewrites config.txt and cmdline.txt from /etc/default/raspi-*, which
# image/rootfs changes (it needs /proc to see that it runs in a chroot); z51-pitime-dtbs, from
# image/rootfs, copies the device trees from where Linux 7.x keeps them.
kernel_version=$(basename "$(ls -d "$root"/usr/lib/modules/*/ | sort -V | tail -n1)")
chroot "$root" env DEB_MAINT_PARAMS=configure /etc/kernel/postinst.d/z50-raspi-firmware
chroot "$root" /etc/kernel/postinst.d/z51-pitime-dtbs "$kernel_version"
cleanup
trap - EXIT
# pitime's overlays, for the firmware's dtoverlay= lines (config.txt and usercfg.txt), with the
# symbols (-@) that let the firmware resolve their references into the board's device tree.
mkdir -p "$root/boot/firmware/overlays"
for dts in overlays/*.dts; do
    dtc -@ -q -I dts -O dtb -o "$root/boot/firmware/overlays/$(basename "${dts%.dts}").dtbo" "$dts"
done
# Every board's device tree must be there (a Pi without its tree does not boot), and take the
# overlays its config.txt and usercfg.txt sections load: the firmware applies them at boot, where
# a failure would silently cost the receiver its UART or its pulse.
fw=$root/boot/firmware
for dtb in bcm2837-rpi-3-b bcm2837-rpi-3-b-plus bcm2837-rpi-3-a-plus bcm2837-rpi-zero-2-w \
    bcm2711-rpi-4-b bcm2711-rpi-400 bcm2711-rpi-cm4-io bcm2712-rpi-5-b bcm2712d0-rpi-5-b; do
    case $dtb in bcm2712*) overlays="pitime-uart-pi5 pitime-pps-pi5" ;; *) overlays="pitime-uart pitime-pps" ;; esac
    [ -f "$fw/$dtb.dtb" ] || { echo "$0: $dtb.dtb missing from the boot partition" >&2; exit 1; }
    # shellcheck disable=SC2086 # the overlay names are words
    fdtoverlay -i "$fw/$dtb.dtb" -o "$WORK/check.dtb" $(printf "$fw/overlays/%s.dtbo " $overlays) ||
        { echo "$0: $overlays do not apply to $dtb.dtb" >&2; exit 1; }
done
rm -f "$WORK/check.dtb"
# The kernel's drivers the boards need, checked rather than trusted: the Pi 5's RP1 (PCIe link,
# clocks, pins, Ethernet) and SD card, kernel PPS and the rig's gpio-sim; and the SD drivers in
# the initramfs, without which a Pi does not find its root.
for module in rp1_pci clk-rp1 pinctrl-rp1 macb sdhci-brcmstb sdhci-iproc pps-gpio gpio-sim ftdi_sio; do
    [ -n "$(find "$root/usr/lib/modules/$kernel_version" -name "$module.ko*" | head -n1)" ] ||
        { echo "$0: the kernel $kernel_version has no $module" >&2; exit 1; }
done
initramfs=$(chroot "$root" lsinitramfs "/boot/initrd.img-$kernel_version")
for module in sdhci-brcmstb sdhci-iproc bcm2835 gpio-regulator pinctrl-brcmstb-bcm2712 gpio-brcmstb ext4; do
    grep -q "/$module.ko" <<<"$initramfs" || { echo "$0: $module is not in the initramfs" >&2; exit 1; }
done
# What the user reads and edits on the boot partition from any computer (docs/install.md).
cp image/boot-files/* "$root/boot/firmware/"
cp config/pitime.toml "$root/boot/firmware/pitime.toml.example"

# The writable state partition starts with the directories the bind mounts in /etc/fstab need,
# moved out of the root with their contents and owners.
state=$root/var/lib/pitime-state
mkdir -p "$state"
for d in pitime systemd; do
    mkdir -p "$root/var/lib/$d"
    mv "$root/var/lib/$d" "$state/$d"
    mkdir "$root/var/lib/$d"
done
mkdir -m 0755 "$state/ssh"

# --- The card --------------------------------------------------------------------------------
# The root file system gets 512 MiB of headroom for updates (a new kernel and its modules sit
# next to the old ones until the old package is removed).
used_mib=$(du -sxm --exclude="$root/boot/firmware" --exclude="$state" "$root" | cut -f1)
root_mib=$(( (used_mib + 512 + 63) / 64 * 64 ))
cat >"$WORK/genimage.cfg" <<EOF
image boot.vfat {
    vfat {
        label = "RASPIFIRM"
        extraargs = "-F 32"
    }
    mountpoint = "/boot/firmware"
    size = 256M
}
image state.ext4 {
    ext4 {
        label = "PITIMESTATE"
        use-mke2fs = true
    }
    mountpoint = "/var/lib/pitime-state"
    size = 64M
}
image root.ext4 {
    ext4 {
        label = "RASPIROOT"
        use-mke2fs = true
    }
    size = ${root_mib}M
}
image $name.img {
    hdimage {
        partition-table-type = "mbr"
    }
    partition boot {
        partition-type = 0xC
        bootable = true
        offset = 4M
        image = "boot.vfat"
    }
    partition root {
        partition-type = 0x83
        image = "root.ext4"
    }
    partition state {
        partition-type = 0x83
        image = "state.ext4"
    }
}
EOF
rm -f "$OUT/$name.img" "$OUT/$name.img.xz"
genimage --config "$WORK/genimage.cfg" --rootpath "$root" --tmppath "$WORK/genimage-tmp" \
    --inputpath "$WORK" --outputpath "$OUT"
rm -f "$OUT/boot.vfat" "$OUT/root.ext4" "$OUT/state.ext4"
rm -rf "$WORK"
echo "Image assembled in $(( $(date +%s) - start )) s: $OUT/$name.img"

if [ "$COMPRESS" = yes ]; then
    start=$(date +%s)
    xz -T0 -6 -k -f "$OUT/$name.img"
    echo "Compressed in $(( $(date +%s) - start )) s"
fi
ls -l "$OUT/$name".img*
