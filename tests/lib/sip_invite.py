#!/usr/bin/env python3
"""A deliberately simple SIP caller for the refusal tests: sends one INVITE with a given
SDP body through a proxy over TCP, waits for the final answer and prints
"STATUS<TAB>WARNING-TEXT". A 2xx is acknowledged and hung up at once (BYE), so a valid
offer can be sent and then replayed. No authentication (the test provider does not
challenge INVITEs).

Usage: sip_invite.py PROXY_HOST PROXY_PORT FROM_URI TO_URI SDP_FILE [TIMEOUT_S]"""
import random
import re
import socket
import sys
import time


def read_message(sock, buf):
    """Returns (start_line, headers(list of (name, value)), body, rest_of_buffer)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("utf-8", "replace").split("\r\n")
    while lines and lines[0] == "":
        lines.pop(0)
    headers = []
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers.append((name.strip().lower(), value.strip()))
    length = 0
    for name, value in headers:
        if name in ("content-length", "l"):
            length = int(value)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed in a body")
        rest += chunk
    return lines[0], headers, rest[:length], rest[length:]


def header(headers, name):
    return [v for n, v in headers if n == name]


def main():
    host, port, from_uri, to_uri, sdp_file = sys.argv[1:6]
    timeout = float(sys.argv[6]) if len(sys.argv) > 6 else 15.0
    body = open(sdp_file, "rb").read()
    sock = socket.create_connection((host, int(port)), timeout=timeout)
    local = "%s:%d" % sock.getsockname()
    tag = "%08x" % random.getrandbits(32)
    call_id = "%016x@refusal.test" % random.getrandbits(64)
    branch = "z9hG4bK%012x" % random.getrandbits(48)

    def request(method, uri, cseq, routes, to_hdr, body=b"", br=None):
        lines = [
            "%s %s SIP/2.0" % (method, uri),
            "Via: SIP/2.0/TCP %s;branch=%s" % (local, br or "z9hG4bK%012x" % random.getrandbits(48)),
            "Max-Forwards: 70",
        ]
        lines += ["Route: %s" % r for r in routes]
        lines += [
            "From: <%s>;tag=%s" % (from_uri, tag),
            "To: %s" % to_hdr,
            "Call-ID: %s" % call_id,
            "CSeq: %d %s" % (cseq, method),
            "Contact: <sip:refusal@%s;transport=tcp>" % local,
        ]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append("Content-Length: %d" % len(body))
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    request("INVITE", to_uri, 1, [], "<%s>" % to_uri, body, branch)
    buf = b""
    deadline = time.time() + timeout
    while time.time() < deadline:
        start, headers, _, buf = read_message(sock, buf)
        m = re.match(r"SIP/2\.0 (\d{3})", start)
        if not m:
            continue
        status = int(m.group(1))
        if status < 200:
            continue
        warning = ""
        for w in header(headers, "warning"):
            q = re.search(r'"(.*)"', w)
            warning = q.group(1) if q else w
        to_hdr = header(headers, "to")[0]
        if status >= 300:
            # ACK of a negative final answer: same branch, hop by hop
            request("ACK", to_uri, 1, [], to_hdr, b"", branch)
        else:
            routes = [r.strip() for rr in header(headers, "record-route") for r in rr.split(",")]
            routes.reverse()
            contact = re.search(r"<([^>]*)>", header(headers, "contact")[0]).group(1)
            request("ACK", contact, 1, routes, to_hdr)
            time.sleep(0.2)
            request("BYE", contact, 2, routes, to_hdr)
            try:
                sock.settimeout(5)
                read_message(sock, buf)
            except (EOFError, socket.timeout):
                pass
        print("%d\t%s" % (status, warning))
        return 0
    print("0\ttimeout")
    return 1


if __name__ == "__main__":
    sys.exit(main())
