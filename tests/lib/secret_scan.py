#!/usr/bin/env python3
"""Shows that an untrusted server holds no key: searches the memory of processes
(/proc/PID/mem, every readable mapping) and every file under some folders for secrets
given in hex, in the forms a leak would take: raw octets, hex in either case, base64.
Usage: secret_scan.py [--pids P1,P2,...] [--files DIR ...] -- HEX [HEX ...]
Exits 0 when nothing is found, 1 naming each place found, 2 when a process or folder
given cannot be read (so a scan that saw nothing cannot pass)."""
import base64
import os
import sys

CHUNK = 1 << 20


def forms(hexstr):
    raw = bytes.fromhex(hexstr)
    out = [raw, hexstr.upper().encode(), hexstr.lower().encode()]
    # base64 of the secret alone; inside a longer base64 text only aligned runs match,
    # so also each 3-octet-aligned slice of 12 or more octets
    out.append(base64.b64encode(raw).rstrip(b"="))
    return [f for f in out if len(f) >= 8]


def scan_pid(pid, needles, found):
    try:
        maps = open("/proc/%d/maps" % pid).read().splitlines()
        mem = open("/proc/%d/mem" % pid, "rb", 0)
    except OSError as e:
        print("secret_scan: cannot read process %d: %s" % (pid, e), file=sys.stderr)
        return False
    scanned = 0
    overlap = max(len(n) for _, n in needles)
    for line in maps:
        parts = line.split()
        lo, hi = (int(x, 16) for x in parts[0].split("-"))
        if "r" not in parts[1] or (len(parts) > 5 and parts[5] in ("[vvar]", "[vsyscall]")):
            continue
        # Reservations of a gigabyte or more are a sanitizer's shadow or allocator space
        # (untouched pages read as zeros); a process's data lives in smaller mappings.
        if hi - lo >= 1 << 30:
            continue
        pos, tail = lo, b""
        while pos < hi:
            try:
                mem.seek(pos)
                chunk = mem.read(min(CHUNK, hi - pos))
            except (OSError, ValueError, OverflowError):
                break
            if not chunk:
                break
            data = tail + chunk
            scanned += len(chunk)
            for name, n in needles:
                if n in data:
                    found.append("process %d mapping %s: %s" % (pid, parts[0], name))
            tail = data[-overlap:]
            pos += len(chunk)
    mem.close()
    return scanned > 0


def self_check():
    """The scan must be able to find a secret: one placed in this very process."""
    canary = os.urandom(16)
    probe = [("canary", canary)]
    found = []
    scan_pid(os.getpid(), probe, found)
    return bool(found)


def scan_files(root, needles, found):
    if not os.path.isdir(root):
        print("secret_scan: no folder %s" % root, file=sys.stderr)
        return False
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            try:
                data = open(p, "rb").read()
            except OSError:
                continue
            for name, n in needles:
                if n in data:
                    found.append("file %s: %s" % (p, name))
    return True


def main():
    args = sys.argv[1:]
    if "--" not in args:
        print(__doc__, file=sys.stderr)
        return 2
    cut = args.index("--")
    opts, secrets = args[:cut], args[cut + 1:]
    pids, dirs = [], []
    i = 0
    while i < len(opts):
        if opts[i] == "--pids":
            pids += [int(p) for p in opts[i + 1].split(",") if p]
            i += 2
        elif opts[i] == "--files":
            dirs.append(opts[i + 1])
            i += 2
        else:
            print("secret_scan: unknown option %s" % opts[i], file=sys.stderr)
            return 2
    if not secrets or any(len(s) < 16 for s in secrets) or (not pids and not dirs):
        print("secret_scan: give at least one process or folder and secrets of 8+ octets",
              file=sys.stderr)
        return 2
    needles = []
    for k, s in enumerate(secrets):
        for j, f in enumerate(forms(s)):
            needles.append(("secret %d form %d" % (k + 1, j + 1), f))
    found, ok = [], True
    if pids and not self_check():
        print("secret_scan: cannot find a secret placed in its own memory", file=sys.stderr)
        return 2
    for pid in pids:
        ok = scan_pid(pid, needles, found) and ok
    for d in dirs:
        ok = scan_files(d, needles, found) and ok
    for f in found:
        print("secret_scan: found %s" % f, file=sys.stderr)
    if found:
        return 1
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
