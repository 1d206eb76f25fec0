# Sourced by the server benchmarks.
#
# `bench_config NTP_PORT NTS_KE_PORT STATE_DIR` prints a
# pitime configuration serving NTP and NTS on loopback from a local clock, rate limiting off.
bench_config() {
  cat <<TOML
[server]
listen = ["127.0.0.1:$1"]
[server.rate_limit]
enabled = false
[web]
listen = []
[nts]
enabled = true
listen = ["127.0.0.1:$2"]
state_dir = "$3"
[[source]]
kind = "local"
stratum = 1
TOML
}

# `timestamps_config LISTEN TIMESTAMPING` prints a pitime configuration serving NTP on LISTEN with
# the given timestamping from a local clock, rate limiting off, room for 16,384 clients.
timestamps_config() {
  cat <<TOML
[server]
listen = ["$1"]
timestamping = "$2"
[server.rate_limit]
enabled = false
max_clients = 16384
[web]
listen = []
[[source]]
kind = "local"
stratum = 1
TOML
}
