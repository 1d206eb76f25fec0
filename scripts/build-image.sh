#!/usr/bin/env bash
# Builds the SD card image for the Raspberry Pi 3, 4 and Zero 2 W:
#   target/image/pitime-VERSION-arm64.img.xz (and the uncompressed .img next to it)
# A minimal Debian bookworm arm64 system (Debian's kernel and raspi-firmware, OpenSSH, avahi,
# nftables) with the pitime .deb from scripts/build-deb.sh, which this script runs first.
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
deps=(mmdebstrap qemu-user-static binfmt-support arch-test genimage mtools dosfstools fdisk e2fsprogs xz-utils)
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
    bookworm
)
sources=(
    "deb $mirror bookworm main non-free-firmware"
    "deb $mirror bookworm-updates main non-free-firmware"
    "deb http://deb.debian.org/debian-security bookworm-security main non-free-firmware"
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
# image/rootfs changes. (It needs /proc to see that it runs in a chroot.)
chroot "$root" env DEB_MAINT_PARAMS=configure /etc/kernel/postinst.d/z50-raspi-firmware
cleanup
trap - EXIT
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
