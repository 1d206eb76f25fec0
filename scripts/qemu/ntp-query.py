"""NTP through a forwarded port, for scripts/qemu-test.sh: one client request (mode 3) every 2 s
until the reply says synchronised (and, when given, has the expected refid), or the timeout.

    python3 ntp-query.py [--keys FILE --key ID] PORT TIMEOUT [REFID]

With --keys and --key, each request is signed with that key of an ntpd/chrony keys file (MD5,
SHA1 or SHA-2: the RFC 5905 MAC, the digest of key then packet, 20 bytes at most in NTPv4), and a
reply counts only when it carries a MAC with the same key id that checks.

Prints each reply with its offset from this machine's clock; exits 1 at the timeout."""
import argparse
import hashlib
import hmac
import socket
import struct
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--keys", help="keys file (ID TYPE KEY a line)")
parser.add_argument("--key", type=int, help="id of the key in --keys that signs")
parser.add_argument("port", type=int)
parser.add_argument("timeout", type=float)
parser.add_argument("refid", nargs="?")
args = parser.parse_args()
if (args.keys is None) != (args.key is None):
    parser.error("--keys and --key go together")


def load_key(path, wanted):
    """The digest name and secret of key `wanted`, as pitime reads a keys file."""
    for line in open(path):
        fields = line.split("#")[0].split()
        if len(fields) != 3 or int(fields[0]) != wanted:
            continue
        kind, text = fields[1].upper().replace("-", ""), fields[2]
        digest = {"M": "md5", "MD5": "md5", "SHA1": "sha1", "SHA256": "sha256",
                  "SHA384": "sha384", "SHA512": "sha512"}[kind]
        if text.startswith("HEX:"):
            secret = bytes.fromhex(text[4:])
        elif text.startswith("ASCII:"):
            secret = text[6:].encode()
        elif len(text) > 20 and all(c in "0123456789abcdefABCDEF" for c in text):
            secret = bytes.fromhex(text)
        else:
            secret = text.encode()
        return digest, secret
    sys.exit(f"key {wanted} is not in {path}")


def mac(key, data):
    digest, secret = key
    return hashlib.new(digest, secret + data).digest()[:20]


key = load_key(args.keys, args.key) if args.keys else None
deadline = time.monotonic() + args.timeout
NTP_EPOCH = 2208988800
while True:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    now = time.time()
    xmt = struct.pack("!II", int(now) + NTP_EPOCH, int((now % 1) * 2**32))
    request = b"\x23" + bytes(39) + xmt  # LI 0, version 4, mode 3
    if key:
        request += struct.pack("!I", args.key) + mac(key, request)
    s.sendto(request, ("127.0.0.1", args.port))
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
        ok = ok and args.refid in (None, refid_text, refid.decode("ascii", "replace").strip("\0"))
        signed = ""
        if key:
            good = (len(data) > 52 and struct.unpack("!I", data[48:52])[0] == args.key
                    and hmac.compare_digest(data[52:], mac(key, data[:48])))
            signed = f", MAC with key {args.key} {'good' if good else 'missing or bad'}"
            ok = ok and good
        # The reply's transmit time against the middle of the exchange on this machine's clock.
        offset = secs - NTP_EPOCH + frac / 2**32 - (now + time.time()) / 2
        print(f"{'ok' if ok else 'not yet'}: NTP reply: stratum {stratum}, refid {refid_text}, "
              f"leap {li}, offset {offset:+.4f} s{signed}")
        if ok:
            sys.exit(0)
    if time.monotonic() > deadline:
        sys.exit(1)
    time.sleep(2)
