"""Waits until pitime's /api/v1/status meets a condition, for scripts/qemu-test.sh.

    python3 wait-status.py PORT TIMEOUT CONDITION
    python3 wait-status.py PORT --value EXPRESSION

CONDITION and EXPRESSION are Python expressions over `s` (the whole status), `c` (s["clock"]),
`gps` and `longwave` (the first GNSS and the first DCF77, MSF or WWVB receiver, or {}). Asks
every 2 s; prints the clock and exits 0 once the condition holds, exits 1 with the last status at
the timeout. With --value, prints the expression's value now."""
import json
import sys
import time
import urllib.request

port, condition = int(sys.argv[1]), sys.argv[3]
if sys.argv[2] == "--value":
    s = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/status", timeout=30))
    c, gps, longwave = s["clock"], (s.get("gps") or [{}])[0], (s.get("longwave") or [{}])[0]
    print(eval(condition))
    sys.exit(0)
timeout = float(sys.argv[2])
deadline = time.monotonic() + timeout
s = None
while True:
    try:
        s = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/status", timeout=30))
        c = s["clock"]
        gps = (s.get("gps") or [{}])[0]
        longwave = (s.get("longwave") or [{}])[0]
        if eval(condition):
            print(f"stratum {c['stratum']}, refid {c['refid']}, served minus system clock "
                  f"{c['offset_seconds'] * 1e6:+.1f} us, frequency {c['frequency_ppm']:+.3f} ppm")
            sys.exit(0)
    except OSError:
        pass  # the service restarting
    if time.monotonic() > deadline:
        print(f"timeout waiting for {condition}; last status: clock {s and s['clock']}, "
              f"gps {s and s.get('gps')}, longwave {s and s.get('longwave')}", file=sys.stderr)
        sys.exit(1)
    time.sleep(2)
