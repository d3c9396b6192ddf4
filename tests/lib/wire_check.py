#!/usr/bin/env python3
"""What an eavesdropper on the provider's wire sees of a call: reads a capture (pcap from
tcpdump -i lo or -i any) and checks that every media datagram (UDP to or from a port that
an SDP in the capture's signalling names in m=audio) is SRTP or SRTCP carrying the MKI
(the PCK-ID), and that no Opus packet of the call's input appears anywhere in the
capture. Other UDP on the machine (other tests) is left out.
Usage: wire_check.py [--ignore-port N] CAPTURE SIP_PORT PCK_ID_HEX PACKETS.hex [...]
(PACKETS.hex: the Opus packets of what was sent, one per line, from opus_roundtrip)."""
import re
import struct
import sys


def packets(path):
    data = open(path, "rb").read()
    magic = data[:4]
    if magic == b"\xd4\xc3\xb2\xa1":
        end = "<"
    elif magic == b"\xa1\xb2\xc3\xd4":
        end = ">"
    else:
        raise SystemExit("wire_check: %s is not a classic pcap file" % path)
    linktype = struct.unpack(end + "I", data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(end + "IIII", data[off:off + 16])
        yield linktype, data[off + 16:off + 16 + incl]
        off += 16 + incl


def udp_of(linktype, frame):
    if linktype == 1:        # Ethernet
        etype, ip = struct.unpack(">H", frame[12:14])[0], frame[14:]
    elif linktype == 113:    # Linux cooked
        etype, ip = struct.unpack(">H", frame[14:16])[0], frame[16:]
    elif linktype == 276:    # Linux cooked v2
        etype, ip = struct.unpack(">H", frame[0:2])[0], frame[20:]
    else:
        return None
    if etype != 0x0800 or len(ip) < 20 or ip[9] != 17:
        return None
    ihl = (ip[0] & 15) * 4
    udp = ip[ihl:]
    sport, dport, ulen = struct.unpack(">HHH", udp[:6])
    return sport, dport, udp[8:ulen]


def main():
    args = sys.argv[1:]
    ignore = set()
    while args and args[0] == "--ignore-port":
        ignore.add(int(args[1]))
        args = args[2:]
    cap, sip_port, mki = args[0], int(args[1]), bytes.fromhex(args[2])
    opus = set()
    for f in args[3:]:
        for line in open(f):
            p = bytes.fromhex(line.strip())
            if len(p) >= 12:
                opus.add(p[:24])
    whole = open(cap, "rb").read()
    media_ports = {int(p) for p in re.findall(rb"m=audio (\d+) ", whole)} - ignore
    bad = 0
    rtp = rtcp = 0
    for linktype, frame in packets(cap):
        u = udp_of(linktype, frame)
        if u is None or sip_port in (u[0], u[1]) or ignore & {u[0], u[1]}:
            continue
        if not media_ports & {u[0], u[1]}:
            continue
        payload = u[2]
        if len(payload) < 12 or payload[0] >> 6 != 2:
            print("wire_check: a datagram %d->%d is not RTP version 2" % (u[0], u[1]))
            bad += 1
            continue
        if 200 <= payload[1] <= 204:
            rtcp += 1
            if mki not in payload[-30:]:
                print("wire_check: an SRTCP packet without the MKI")
                bad += 1
        else:
            rtp += 1
            # GCM: header, ciphertext with its 16-octet tag, then the MKI
            if payload[-len(mki):] != mki or len(payload) < 12 + 16 + len(mki) + 1:
                print("wire_check: an SRTP packet without the MKI at its end")
                bad += 1
    for p in opus:
        if p in whole:
            print("wire_check: an Opus packet of the input appears in clear")
            bad += 1
            break
    print("wire_check: %d SRTP, %d SRTCP, %d Opus packets looked for, %d problems"
          % (rtp, rtcp, len(opus), bad))
    return 0 if bad == 0 and rtp > 0 and rtcp > 0 and opus else 1


if __name__ == "__main__":
    sys.exit(main())
