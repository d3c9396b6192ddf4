#!/usr/bin/env python3
"""An independent SRTP/SRTCP decryptor, for cross-checking ms_srtp and the auditor.

Written from the RFCs alone (python3-cryptography for AES, AES-GCM and HMAC-SHA1), sharing
no code with libsrtp or the project:
  - RFC 3711 4.3: session keys from the master key and salt with the AES-CM PRF, labels
    0..2 (SRTP) and 3..5 (SRTCP), key derivation rate 0;
  - RFC 3711 3.1, 3.4, 4.1.1, 4.2.1: AES_CM_128_HMAC_SHA1_80 (MKI before the 10-octet tag);
  - RFC 7714 8, 9: AEAD_AES_128_GCM (16-octet tag inside the cipher, MKI after it);
  - RFC 3711 Appendix A: the rollover counter of each SSRC is estimated from the sequence
    numbers as packets arrive (initial ROC 0, or --roc).

GCM's 12-octet master salt meets a PRF built for 14: like libsrtp and the WebRTC stacks,
the salt is zero-padded on the right (--gcm-kdf-salt left, the default); "right" pads on
the left, the other reading of RFC 3711's right-alignment (libsrtp issue 179).

usage: srtp_ref.py --suite SUITE --key-file F [--mki-len N] [--kind auto|rtp|rtcp]
                   [--output payload|packet|long] [--roc N] [--gcm-kdf-salt left|right]
                   PACKETS
       srtp_ref.py --selftest

--key-file holds the master key then the master salt in hex (whitespace ignored; "-" reads
stdin): keys never go on a command line. PACKETS has one SRTP or SRTCP packet in hex per
line (blank lines and lines starting with # are skipped). One output line per packet, in
order: the decrypted RTP payload (or, for RTCP, the decrypted RTCP compound packet), or
with --output packet the whole decrypted packet without SRTP trailer, or with --output long
"rtp ssrc=.. roc=.. seq=.. mki=.. payload=.."; a packet that fails prints "FAIL <why>".
Exit status 0 if every packet decrypted, 1 if any failed, 2 on usage errors.
"""

import argparse
import hashlib
import hmac
import sys

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

GCM = "AEAD_AES_128_GCM"
CM = "AES_CM_128_HMAC_SHA1_80"
SUITES = {
    # name: (master key, master salt, session salt, tag)
    GCM: (16, 12, 12, 16),
    CM: (16, 14, 14, 10),
}
CM_AUTH_KEY = 20  # HMAC-SHA1 session key (RFC 3711 5.2)


def xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


def aes_ctr(key, iv16, data):
    """AES in counter mode from the 16-octet initial counter block (RFC 3711 4.1.1)."""
    enc = Cipher(algorithms.AES(key), modes.CTR(iv16)).encryptor()
    return enc.update(data) + enc.finalize()


def prf_input(master_salt, label, gcm_kdf_salt):
    """x = (label || r) XOR master_salt, right-aligned in 112 bits, r = 0 (kdr 0)."""
    if len(master_salt) == 14:
        salt14 = master_salt
    elif gcm_kdf_salt == "left":
        salt14 = master_salt + bytes(14 - len(master_salt))
    else:
        salt14 = bytes(14 - len(master_salt)) + master_salt
    key_id = bytes(14 - 7) + bytes([label]) + bytes(6)
    return xor(salt14, key_id)


def derive(master_key, master_salt, label, n, gcm_kdf_salt="left"):
    """PRF_n(k_master, x): AES-CM keystream from IV = x * 2^16 (RFC 3711 4.3.3)."""
    x = prf_input(master_salt, label, gcm_kdf_salt)
    return aes_ctr(master_key, x + bytes(2), bytes(n))


class SessionKeys:
    def __init__(self, enc, auth, salt):
        self.enc, self.auth, self.salt = enc, auth, salt


def session_keys(suite, master_key, master_salt, rtcp, gcm_kdf_salt="left"):
    _, _, salt_len, _ = SUITES[suite]
    base = 3 if rtcp else 0
    enc = derive(master_key, master_salt, base + 0, 16, gcm_kdf_salt)
    auth = derive(master_key, master_salt, base + 1, CM_AUTH_KEY, gcm_kdf_salt) if suite == CM else b""
    salt = derive(master_key, master_salt, base + 2, salt_len, gcm_kdf_salt)
    return SessionKeys(enc, auth, salt)


class Failure(Exception):
    pass


def rtp_header_len(pkt, end):
    if end < 12 or pkt[0] >> 6 != 2:
        raise Failure("not RTP version 2")
    hl = 12 + 4 * (pkt[0] & 0x0F)
    if pkt[0] & 0x10:
        if hl + 4 > end:
            raise Failure("truncated header extension")
        hl += 4 + 4 * int.from_bytes(pkt[hl + 2:hl + 4], "big")
    if hl > end:
        raise Failure("truncated header")
    return hl


def is_rtcp(pkt):
    """RFC 5761 4: the second octet is an RTCP packet type (192-223)."""
    return len(pkt) >= 2 and 192 <= pkt[1] <= 223


class RocTracker:
    """RFC 3711 Appendix A: per-SSRC rollover counter and highest sequence number."""

    def __init__(self, initial_roc):
        self.initial_roc = initial_roc
        self.state = {}

    def estimate(self, ssrc, seq):
        if ssrc not in self.state:
            return self.initial_roc
        roc, s_l = self.state[ssrc]
        if s_l < 32768:
            return (roc - 1) % 2**32 if seq - s_l > 32768 else roc
        return (roc + 1) % 2**32 if s_l - 32768 > seq else roc

    def update(self, ssrc, seq, v):
        if ssrc not in self.state:
            self.state[ssrc] = (v, seq)
            return
        roc, s_l = self.state[ssrc]
        if v == roc and seq > s_l:
            self.state[ssrc] = (roc, seq)
        elif v == (roc + 1) % 2**32:
            self.state[ssrc] = (v, seq)


def unprotect_rtp(suite, keys, pkt, mki_len, rocs):
    """Returns (header, payload, info) or raises Failure."""
    _, _, _, tag_len = SUITES[suite]
    if len(pkt) < 12 + tag_len + mki_len:
        raise Failure("too short")
    ssrc = int.from_bytes(pkt[8:12], "big")
    seq = int.from_bytes(pkt[2:4], "big")
    roc = rocs.estimate(ssrc, seq)
    if suite == GCM:
        # header | cipher (payload + 16-octet tag) | MKI   (RFC 7714 8.2)
        end = len(pkt) - mki_len
        mki = pkt[end:]
        hl = rtp_header_len(pkt, end - tag_len)
        iv = xor(bytes(2) + pkt[8:12] + roc.to_bytes(4, "big") + pkt[2:4], keys.salt)
        try:
            plain = AESGCM(keys.enc).decrypt(iv, bytes(pkt[hl:end]), bytes(pkt[:hl]))
        except InvalidTag:
            raise Failure("authentication")
    else:
        # header | encrypted payload | MKI | 10-octet tag   (RFC 3711 3.1)
        tag_at = len(pkt) - tag_len
        end = tag_at - mki_len
        mki = pkt[end:tag_at]
        hl = rtp_header_len(pkt, end)
        want = hmac.new(keys.auth, bytes(pkt[:end]) + roc.to_bytes(4, "big"), hashlib.sha1).digest()
        if not hmac.compare_digest(want[:tag_len], bytes(pkt[tag_at:])):
            raise Failure("authentication")
        index = (roc << 16) | seq
        iv = bytearray(keys.salt + bytes(2))
        iv[4:8] = xor(iv[4:8], pkt[8:12])
        iv[8:14] = xor(iv[8:14], index.to_bytes(6, "big"))
        plain = aes_ctr(keys.enc, bytes(iv), bytes(pkt[hl:end]))
    rocs.update(ssrc, seq, roc)
    info = "rtp ssrc=%08x roc=%d seq=%d mki=%s" % (ssrc, roc, seq, bytes(mki).hex())
    return bytes(pkt[:hl]), plain, info


def unprotect_rtcp(suite, keys, pkt, mki_len):
    _, _, _, tag_len = SUITES[suite]
    if len(pkt) < 8 + 4 + tag_len + mki_len:
        raise Failure("too short")
    if pkt[0] >> 6 != 2:
        raise Failure("not RTCP version 2")
    ssrc = pkt[4:8]
    if suite == GCM:
        # header(8) | cipher (+ tag) | E || index | MKI   (RFC 7714 9.2, 17)
        end = len(pkt) - mki_len
        mki = pkt[end:]
        eindex = bytes(pkt[end - 4:end])
        encrypted = eindex[0] & 0x80 != 0
        index = int.from_bytes(eindex, "big") & 0x7FFFFFFF
        iv = xor(bytes(2) + ssrc + bytes(2) + index.to_bytes(4, "big"), keys.salt)
        body_end = end - 4
        try:
            if encrypted:
                plain = bytes(pkt[:8]) + AESGCM(keys.enc).decrypt(
                    iv, bytes(pkt[8:body_end]), bytes(pkt[:8]) + eindex)
            else:
                tag_at = body_end - tag_len
                AESGCM(keys.enc).decrypt(iv, bytes(pkt[tag_at:body_end]),
                                         bytes(pkt[:tag_at]) + eindex)
                plain = bytes(pkt[:tag_at])
        except InvalidTag:
            raise Failure("authentication")
    else:
        # header(8) | encrypted part | E || index | MKI | 10-octet tag   (RFC 3711 3.4)
        tag_at = len(pkt) - tag_len
        end = tag_at - mki_len
        mki = pkt[end:tag_at]
        want = hmac.new(keys.auth, bytes(pkt[:end]), hashlib.sha1).digest()
        if not hmac.compare_digest(want[:tag_len], bytes(pkt[tag_at:])):
            raise Failure("authentication")
        eindex = bytes(pkt[end - 4:end])
        encrypted = eindex[0] & 0x80 != 0
        index = int.from_bytes(eindex, "big") & 0x7FFFFFFF
        body = bytes(pkt[8:end - 4])
        if encrypted:
            iv = bytearray(keys.salt + bytes(2))
            iv[4:8] = xor(iv[4:8], ssrc)
            iv[10:14] = xor(iv[10:14], index.to_bytes(4, "big"))
            body = aes_ctr(keys.enc, bytes(iv), body)
        plain = bytes(pkt[:8]) + body
    info = "rtcp ssrc=%s index=%d encrypted=%d mki=%s" % (bytes(ssrc).hex(), index,
                                                         int(encrypted), bytes(mki).hex())
    return plain, info


def read_key_file(path, suite):
    key_len, salt_len, _, _ = SUITES[suite]
    text = sys.stdin.read() if path == "-" else open(path).read()
    try:
        raw = bytes.fromhex("".join(text.split()))
    except ValueError:
        raise SystemExit("srtp_ref: key file is not hex")
    if len(raw) != key_len + salt_len:
        raise SystemExit("srtp_ref: key file holds %d octets; %s takes %d (key %d + salt %d)"
                         % (len(raw), suite, key_len + salt_len, key_len, salt_len))
    return raw[:key_len], raw[key_len:]


def run(args):
    master_key, master_salt = read_key_file(args.key_file, args.suite)
    rtp_keys = session_keys(args.suite, master_key, master_salt, False, args.gcm_kdf_salt)
    rtcp_keys = session_keys(args.suite, master_key, master_salt, True, args.gcm_kdf_salt)
    rocs = RocTracker(args.roc)
    failed = 0
    with open(args.packets) as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                pkt = bytes.fromhex(line)
            except ValueError:
                print("FAIL line %d is not hex" % lineno)
                failed += 1
                continue
            rtcp = is_rtcp(pkt) if args.kind == "auto" else args.kind == "rtcp"
            try:
                if rtcp:
                    # an RTCP packet's payload is the compound packet itself
                    plain, info = unprotect_rtcp(args.suite, rtcp_keys, pkt, args.mki_len)
                    if args.output == "long":
                        print("%s packet=%s" % (info, plain.hex()))
                    else:
                        print(plain.hex())
                else:
                    hdr, payload, info = unprotect_rtp(args.suite, rtp_keys, pkt, args.mki_len,
                                                       rocs)
                    if args.output == "long":
                        print("%s payload=%s" % (info, payload.hex()))
                    elif args.output == "packet":
                        print((hdr + payload).hex())
                    else:
                        print(payload.hex())
            except Failure as e:
                print("FAIL %s" % e)
                failed += 1
    return 1 if failed else 0


# ---- self-test against the RFCs' own vectors -------------------------------------------

def selftest():
    ok = True

    def check(name, got, want):
        nonlocal ok
        if got != want:
            ok = False
            print("selftest %s: got %s want %s" % (name, got.hex(), want.hex()))

    h = bytes.fromhex
    # RFC 3711 B.3
    mk, ms = h("E1F97A0D3E018BE0D64FA32C06DE4139"), h("0EC675AD498AFEEBB6960B3AABE6")
    check("B.3 cipher key", derive(mk, ms, 0, 16), h("C61E7A93744F39EE10734AFE3FF7A087"))
    check("B.3 cipher salt", derive(mk, ms, 2, 14), h("30CBBC08863D8C85D49DB34A9AE1"))
    check("B.3 auth key", derive(mk, ms, 1, 94), h(
        "CEBE321F6FF7716B6FD4AB49AF256A15" "6D38BAA48F0A0ACF3C34E2359E6CDBCE"
        "E049646C43D9327AD175578EF7227098" "6371C10C9A369AC2F94A8C5FBCDDDC25"
        "6D6E919A48B610EF17C2041E47403576" "6B68642C59BBFC2F34DB60DBDFB2"))
    # RFC 3711 B.2: the AES-CM keystream from a session key and an already shifted salt
    ks = aes_ctr(h("2B7E151628AED2A6ABF7158809CF4F3C"), h("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000"),
                 bytes(48))
    check("B.2 keystream", ks, h("E03EAD0935C95E80E166B16DD92B4EB4"
                                 "D23513162B02D0F72A43A2FE4A5F97AB"
                                 "41E95B3BB0A2E8DD477901E4FCA894C0"))
    # RFC 7714 16.1.2: SRTP GCM decryption with the session key and salt given
    keys = SessionKeys(h("000102030405060708090a0b0c0d0e0f"), b"", h("517569642070726f2071756f"))
    pkt = h("8040f17b8041f8d35501a0b2f24de3a3fb34de6cacba861c9d7e4bcabe633bd5"
            "0d294e6f42a5f47a51c7d19b36de3adf8833899d7f27beb16a9152cf765ee4390cce")
    _, payload, _ = unprotect_rtp(GCM, keys, pkt, 0, RocTracker(0))
    check("7714 16.1.2", payload, b"Gallia est omnis divisa in partes tres")
    # with a 4-octet MKI appended after the tag (RFC 7714 Figure 3)
    _, payload, _ = unprotect_rtp(GCM, keys, pkt + h("01020304"), 4, RocTracker(0))
    check("7714 16.1.2 + MKI", payload, b"Gallia est omnis divisa in partes tres")
    # RFC 7714 17.1: SRTCP GCM
    rtcp = h("81c8000d4d61727363e94885dcdab67ca727d7662f6b7e997ff5c0f76c06f32d"
             "c676a5f1730d6fda4ce09b4686303ded0bb9275bc84aa45896cf4d2fc5abf872"
             "45d9eade800005d4")
    plain, _ = unprotect_rtcp(GCM, keys, rtcp, 0)
    check("7714 17.1", plain, h("81c8000d4d6172734e5450314e5450325254502000000"
                                "42a0000e9304c756e61deadbeefdeadbeefdeadbeefdeadbeefdeadbeef"))
    # a flipped octet fails
    bad = bytearray(pkt)
    bad[20] ^= 1
    try:
        unprotect_rtp(GCM, keys, bytes(bad), 0, RocTracker(0))
        ok = False
        print("selftest: tampered packet accepted")
    except Failure:
        pass
    # Appendix A: the ROC follows a sequence number wrap
    r = RocTracker(0)
    for seq in (65534, 65535, 0, 1):
        v = r.estimate(7, seq)
        r.update(7, seq, v)
    if r.state[7] != (1, 1) or r.estimate(7, 65535) != 0:
        ok = False
        print("selftest: rollover estimate wrong: %s" % (r.state[7],))
    print("selftest %s" % ("passed" if ok else "FAILED"))
    return 0 if ok else 1


def main():
    p = argparse.ArgumentParser(description="Independent SRTP/SRTCP decryptor (RFC 3711, RFC 7714)")
    p.add_argument("--selftest", action="store_true")
    p.add_argument("--suite", choices=sorted(SUITES))
    p.add_argument("--key-file")
    p.add_argument("--mki-len", type=int, default=0)
    p.add_argument("--kind", choices=["auto", "rtp", "rtcp"], default="auto")
    p.add_argument("--output", choices=["payload", "packet", "long"], default="payload")
    p.add_argument("--roc", type=int, default=0)
    p.add_argument("--gcm-kdf-salt", choices=["left", "right"], default="left")
    p.add_argument("packets", nargs="?")
    args = p.parse_args()
    if args.selftest:
        return selftest()
    if not args.suite or not args.key_file or not args.packets or not 0 <= args.mki_len <= 128:
        p.print_usage(sys.stderr)
        return 2
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
