#!/usr/bin/env bash
# Runs every check pitime has: formatting, lints, unit, property and end-to-end tests.
# The end-to-end tests drive real NTP clients (ntpdig, sntp, chronyd) and monitoring tools
# (NTPsec's ntpq, check_ntp_peer) against the real binary, each inside its own network namespace,
# so they need root; missing Debian packages are installed first (chromium loads the status page
# in a headless browser; prometheus and its promtool check the metrics and the alerting rules and
# scrape a fleet of demos). Plain `cargo test`, as any user, skips those tests and says why.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v ntpdig >/dev/null || need+=(ntpsec-ntpdig)
command -v sntp >/dev/null || need+=(sntp)
command -v chronyd >/dev/null || need+=(chrony)
command -v ip >/dev/null || need+=(iproute2)
command -v chromium >/dev/null || need+=(chromium)
command -v promtool >/dev/null || need+=(prometheus)
command -v python3 >/dev/null || need+=(python3)
command -v openssl >/dev/null || need+=(openssl)
[ -x /usr/lib/nagios/plugins/check_ntp_peer ] || need+=(monitoring-plugins-standard)
[ -x /usr/sbin/snmpd ] || need+=(snmpd)
command -v snmpwalk >/dev/null || need+=(snmp)
[ -x /usr/sbin/snmptrapd ] || need+=(snmptrapd)
# The libraries of NTPsec's ntpd (unpacked below), an NTS client in tests/nts.rs.
for lib in libbsd0 libcap2 libssl3; do
  dpkg-query -W -f '${Status}' "$lib" 2>/dev/null | grep -q "ok installed" || need+=("$lib")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/test.sh: install ${need[*]} (apt-get) or run as root" >&2
    exit 1
  fi
  # Package scripts must not start daemons here: chronyd would try to steer this machine's clock,
  # and a prometheus service would take port 9090.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${need[@]}"
fi
# NTPsec's ntpq and ntpd, unpacked rather than installed: the ntpsec package conflicts with chrony.
if [ ! -x /opt/ntpsec/usr/bin/ntpq ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/test.sh: run as root to unpack NTPsec into /opt/ntpsec" >&2
    exit 1
  fi
  debs=$(mktemp -d)
  chmod 755 "$debs"  # apt downloads as the _apt user
  (cd "$debs" && { apt-get download -q ntpsec python3-ntp ||
    { apt-get update -q && apt-get download -q ntpsec python3-ntp; }; })
  for deb in "$debs"/*.deb; do dpkg-deb -x "$deb" /opt/ntpsec; done
  rm -rf "$debs"
fi
# ntpd-rs, the other NTS client in tests/nts.rs (and a peer in scripts/bench-server.sh).
command -v ntp-daemon >/dev/null || cargo install --locked ntpd@1.9.0
rustup component add rustfmt clippy >/dev/null 2>&1 || true

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
# Every test runs here: one whose needs (root, a Debian peer) are missing fails, not skips.
PITIME_TEST_ALL=1 cargo test --locked
