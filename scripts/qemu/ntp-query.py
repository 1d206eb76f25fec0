"""NTP through a forwarded port, for scripts/qemu-test.sh: one client request (mode 3) every 2 s
until the reply says synchronised (and, when given, has the expected refid), or the timeout.

    python3 ntp-query.py PORT TIMEOUT [REFID]

Prints each reply with its offset from this machine's clock; exits 1 at the timeout."""
import socket
import struct
import sys
import time

port, timeout = int(sys.argv[1]), float(sys.argv[2])
want_refid = sys.argv[3] if len(sys.argv) > 3 else None
deadline = time.monotonic() + timeout
NTP_EPOCH = 2208988800
while True:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    now = time.time()
    xmt = struct.pack("!II", int(now) + NTP_EPOCH, int((now % 1) * 2**32))
    s.sendto(b"\x23" + bytes(39) + xmt, ("127.0.0.1", port))  # LI 0, version 4, mode 3
    try:
        data = s.recv(512)
    except socket.timeout:
        data = b""
    if len(data) >= 48:
        li, mode, stratum = data[0] >> 6, data[0] & 7, data[1]
        refid = data[12:16]
        secs, frac = struct.unpack("!II", data[40:48])
        refid_text = refid.decode("ascii", "replace").strip("\0") if stratum == 1 else ".".join(map(str, refid))
        ok = mode == 4 and data[24:32] == xmt and li != 3 and 1 <= stratum < 16
        # (A local clock's refid, LOCL, is text at stratum 10 too.)
        ok = ok and want_refid in (None, refid_text, refid.decode("ascii", "replace").strip("\0"))
        # The reply's transmit time against the middle of the exchange on this machine's clock.
        offset = secs - NTP_EPOCH + frac / 2**32 - (now + time.time()) / 2
        print(f"{'ok' if ok else 'not yet'}: NTP reply: stratum {stratum}, refid {refid_text}, leap {li}, offset {offset:+.4f} s")
        if ok:
            sys.exit(0)
    if time.monotonic() > deadline:
        sys.exit(1)
    time.sleep(2)
