#!/bin/sh
# mmdebstrap --customize-hook for the base system; $1 is the new root.
# The kernel is installed here, after the initramfs and raspi-firmware settings, so that its
# initramfs is built once, under qemu-user, with a short module list (~1.5 min instead of ~13).
set -eu
root=$1

# The initramfs only has to find the root file system: the SD controllers of the Pi 3, Zero 2 W
# (sdhost: bcm2835), Pi 4 (emmc2: sdhci_iproc) and Pi 5 (sdio1: sdhci_brcmstb, with the BCM2712's
# pin controller and the always-on GPIO block that switches its supplies), the card supplies
# (a switched fixed regulator: fixed, and the 1.8 V one: gpio_regulator), ext4, and the virtio
# disk of QEMU's virt machine used by scripts/qemu-test.sh. (Debian's kernel builds mmc_block
# and the Pi's firmware, clock, mailbox and GPIO expander drivers in.)
sed -i 's/^MODULES=.*/MODULES=list/' "$root/etc/initramfs-tools/initramfs.conf"
cat >>"$root/etc/initramfs-tools/modules" <<'MODULES'
sdhci_iproc
bcm2835
sdhci_brcmstb
pinctrl_brcmstb_bcm2712
gpio_brcmstb
fixed
gpio_regulator
ext4
virtio_blk
virtio_pci
virtio_mmio
MODULES

# raspi-firmware's kernel hook writes cmdline.txt: in a chroot it would guess root=/dev/mmcblk0p2
# and "auto" consoles. Root is found by label. The console is the screen only: the header's UART
# (/dev/serial0, docs/hardware.md) belongs to the GNSS receiver, which a kernel console and a
# login prompt on it would garble.
cat >"$root/etc/default/raspi-firmware" <<'DEFAULTS'
ROOTPART=LABEL=RASPIROOT
CONSOLES="tty0"
DEFAULTS

# The kernel from trixie-backports (Linux 7.x), the first with the Pi 5's drivers.
# systemd-resolved comes last: it points /etc/resolv.conf to its own stub in /run, which does not
# exist in the chroot, so that no download could be made after it.
chroot "$root" apt-get install -y --no-install-recommends -t trixie-backports linux-image-arm64
chroot "$root" apt-get install -y --no-install-recommends systemd-resolved
