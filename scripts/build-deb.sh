#!/usr/bin/env bash
# Cross-compiles pitime for the Raspberry Pi (aarch64, Debian bookworm arm64 or Raspberry Pi
# OS 64-bit) and packages it as a .deb in target/aarch64-unknown-linux-gnu/debian/.
# Installs what it needs when missing: the rustup target, Debian's cross gcc, cargo-deb.
#
#   scripts/build-deb.sh            # arm64 (the Pi)
#   scripts/build-deb.sh --native   # this machine's architecture (for a quick look)
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=aarch64-unknown-linux-gnu
if [ "${1:-}" = "--native" ]; then
    TARGET=$(rustc -vV | sed -n 's/^host: //p')
fi
if [ "$TARGET" = aarch64-unknown-linux-gnu ]; then
    rustup target list --installed | grep -qx "$TARGET" || rustup target add "$TARGET"
    if ! command -v aarch64-linux-gnu-gcc >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends gcc-aarch64-linux-gnu libc6-dev-arm64-cross
    fi
    export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
fi
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked
# A small binary for the card: no debug info, symbols stripped.
CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=symbols \
    cargo build --release --locked --target "$TARGET"
# pitime(8) is made from the command line's definitions by `pitime manpage`: this machine's own
# build prints it (the Pi's binary may not run here). Compressed as Debian policy wants.
mkdir -p target/man
cargo run --locked --quiet -- manpage | gzip -9n >target/man/pitime.8.gz
cargo deb --no-build --no-strip --target "$TARGET"
ls -l target/"$TARGET"/debian/*.deb
