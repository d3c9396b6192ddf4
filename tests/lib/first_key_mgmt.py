#!/usr/bin/env python3
"""Prints the a=key-mgmt line of the first INVITE in a capture (pcap from tcpdump -i lo),
reassembling each TCP direction by sequence number first, so a line split across
segments is found whole. Usage: first_key_mgmt.py CAPTURE OUT_FILE"""
import re
import struct
import sys


def frames(path):
    data = open(path, "rb").read()
    end = "<" if data[:4] == b"\xd4\xc3\xb2\xa1" else ">"
    off = 24
    while off + 16 <= len(data):
        ts, _, incl, _ = struct.unpack(end + "IIII", data[off:off + 16])
        yield ts, data[off + 16:off + 16 + incl]
        off += 16 + incl


def main():
    streams = {}  # (src, sport, dst, dport) -> {seq: payload}, first time
    order = []
    for ts, f in frames(sys.argv[1]):
        if f[12:14] != b"\x08\x00":
            continue
        ip = f[14:]
        if len(ip) < 20 or ip[9] != 6:
            continue
        ihl = (ip[0] & 15) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        tcp = ip[ihl:total]
        sport, dport, seq = struct.unpack(">HHI", tcp[:8])
        doff = (tcp[12] >> 4) * 4
        payload = tcp[doff:]
        if not payload:
            continue
        key = (ip[12:16], sport, ip[16:20], dport)
        if key not in streams:
            streams[key] = {}
            order.append(key)
        streams[key].setdefault(seq, payload)
    for key in order:
        segs = streams[key]
        data = b"".join(segs[s] for s in sorted(segs))
        m = re.search(rb"INVITE [^\r\n]*\r\n(?:.*?\r\n)*?\r\n", data, re.S)
        if not m:
            continue
        km = re.search(rb"a=key-mgmt:mikey [A-Za-z0-9+/=]+", data[m.start():])
        if km:
            open(sys.argv[2], "wb").write(km.group(0))
            return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
