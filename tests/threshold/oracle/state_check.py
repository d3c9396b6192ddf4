#!/usr/bin/env python3
"""The simulator check of the threshold KMS's state test (tests/threshold/test_state.c).

Given the view of the corrupt servers after key generation and a batch (every scalar
they hold, as written by test_state.c) and a client's own keys u_C and SSK_C, draw a
random z' and KSAK', rebuild the honest servers' polynomials around the view (each honest
dealer's polynomial is the degree-t interpolation through the corrupt servers' shares of
it and a value at 0 chosen so the dealt secret is z', KSAK', rho' or v'), recompute every
scalar of the view from that world and compare. If everything is reproduced, the view is
as consistent with z' as with the real z: it says nothing of z, of KSAK or of another
user's u and SSK. For the client's slot u is pinned at u_C (rho' = u_C / (a_C + z')) and
SSK at SSK_C (v' = (SSK_C - KSAK') / HS_C): the client's keys fix u but not z.

The public commitments are not part of the check: they pin the secrets only through
discrete logarithms (the GJKR simulation argument programs them).

Usage: state_check.py VIEW.json                  exit 0 if consistent with 3 random z'
       state_check.py VIEW.json --negative ZHEX  (a view of t+1 servers) exit 0 if a
                                                 random z' is NOT consistent and the view
                                                 rebuilds z = ZHEX

Adapted from the threshold prototype's Shamir helpers (peval, lag0, interp_coeffs);
variable time, tests only.
"""
import hashlib
import json
import secrets
import sys

# SAKKE's q (RFC 6509) and P-256's group order n
Q_SAKKE = int(
    "265EAEC7C2958FF699718466" "36B4195E905B0338672D2098" "6FA6B8D62CF8068BBD02AAC9"
    "F8BF03C6C8A1CC354C69672C" "39E46CE7FDF222864D5B49FD" "2999A9B4389B1921CC9AD335"
    "144AB173595A07386DABFD2A" "0C614AA0A9F3CF14870F026A" "A7E535ABD5A5C7C7FF38FA08"
    "E2615F6C203177C42B1EB3A1" "D99B601EBFAA17FB", 16)
N_P256 = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
G_P256 = bytes.fromhex(
    "04"
    "6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296"
    "4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5")


def peval(c, x, q):
    r = 0
    for a in reversed(c):
        r = (r * x + a) % q
    return r


def lag0(ids, i, q):
    num = den = 1
    for j in ids:
        if j != i:
            num = num * j % q
            den = den * (j - i) % q
    return num * pow(den, -1, q) % q


def pmul(a, b, q):
    r = [0] * (len(a) + len(b) - 1)
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            r[i + j] = (r[i + j] + x * y) % q
    return r


def padd(a, b, q):
    n = max(len(a), len(b))
    a = a + [0] * (n - len(a))
    b = b + [0] * (n - len(b))
    return [(x + y) % q for x, y in zip(a, b)]


def interp_coeffs(points, q):
    """Coefficients (low to high) of the polynomial through the (x, y) points."""
    res = [0]
    for xi, yi in points:
        basis, den = [1], 1
        for xj, _ in points:
            if xj != xi:
                basis = pmul(basis, [(-xj) % q, 1], q)
                den = den * (xi - xj) % q
        res = padd(res, [c * yi * pow(den, -1, q) % q for c in basis], q)
    return res


class Mismatch(Exception):
    pass


def same(what, got, want):
    if got != want:
        raise Mismatch(what)


def simulate(q, t, corrupt, dealers, own, recv, target):
    """Polynomials of every dealer in a world around the view: a corrupt dealer keeps its
    own polynomial; an honest one gets the interpolation through the first t corrupt
    servers' shares of it and a value at 0, chosen so that the dealers' values at 0 sum
    to `target` (random if None)."""
    honest = [k for k in dealers if k not in corrupt]
    polys = {k: own[k] for k in dealers if k in corrupt}
    zero = {h: secrets.randbelow(q) for h in honest}
    if target is not None:
        rest = sum(zero[h] for h in honest[:-1]) + sum(polys[k][0] for k in polys)
        zero[honest[-1]] = (target - rest) % q
    pts = corrupt[:t]
    for h in honest:
        polys[h] = interp_coeffs([(0, zero[h])] + [(i, recv[i][h]) for i in pts], q)
    # every corrupt server's share from every dealer is reproduced
    for i in corrupt:
        for k in dealers:
            same(f"share of server {i} from dealer {k}", peval(polys[k], i, q), recv[i][k])
    return polys


def hs_of(kpak, ident, pvt):
    return int.from_bytes(hashlib.sha256(G_P256 + kpak + ident + pvt).digest(), "big") % N_P256


def check(view, z_new, ksak_new):
    """Raises Mismatch unless the view is reproduced in a world with z' and KSAK'.
    Returns the world's u' and SSK' of every slot."""
    qs = (Q_SAKKE, N_P256)
    t = view["t"]
    corrupt = view["corrupt"]
    qual, bqual = view["qual"], view["bqual"]
    sv = {int(i): s for i, s in view["servers"].items()}
    h = lambda x: int(x, 16)
    # key generation: z on SAKKE (curve 0), KSAK on P-256 (curve 1)
    zpoly = []
    for c, target in ((0, z_new), (1, ksak_new)):
        q = qs[c]
        own = {i: [h(x) for x in sv[i]["f"][c]] for i in corrupt}
        ownb = {i: [h(x) for x in sv[i]["fb"][c]] for i in corrupt}
        recv = {i: {k: h(sv[i]["sh"][c][k - 1]) for k in qual} for i in corrupt}
        recvb = {i: {k: h(sv[i]["shb"][c][k - 1]) for k in qual} for i in corrupt}
        f = simulate(q, t, corrupt, qual, own, recv, target)
        simulate(q, t, corrupt, qual, ownb, recvb, None)  # Pedersen blinding: free
        joint = [0]
        for k in qual:
            joint = padd(joint, f[k], q)
        same("the dealt secret", joint[0], target)
        for i in corrupt:
            same(f"server {i}'s {'z' if c == 0 else 'KSAK'} share", peval(joint, i, q),
                 h(sv[i]["z" if c == 0 else "ksak"]))
        zpoly.append(joint)
    # the batch, slot by slot
    kpak = bytes.fromhex(view["kpak"])
    members = bqual[:2 * t + 1]
    q, n = qs
    out = []
    for s, ident_hex in enumerate(view["ids"]):
        ident = bytes.fromhex(ident_hex)
        a = int.from_bytes(ident, "big") % q
        hs = hs_of(kpak, ident, bytes.fromhex(view["pvt"][s]))
        rho_t = v_t = None
        if s == view["client"]:
            rho_t = h(view["client_u"]) * pow((a + z_new) % q, -1, q) % q
            v_t = (h(view["client_ssk"]) - ksak_new) * pow(hs, -1, n) % n
        world = {}
        for name, qq, target in (("rho", q, rho_t), ("v", n, v_t), ("vb", n, None)):
            own = {i: [h(x) for x in sv[i][name + "_f"][s]] for i in corrupt}
            recv = {i: {k: h(sv[i][name + "_sh"][k - 1][s]) for k in bqual} for i in corrupt}
            polys = simulate(qq, t, corrupt, bqual, own, recv, target)
            joint = [0]
            for k in bqual:
                joint = padd(joint, polys[k], qq)
            world[name] = joint
        for i in corrupt:
            same(f"server {i}'s joint rho share, slot {s}", peval(world["rho"], i, q),
                 h(sv[i]["rho_me"][s]))
            same(f"server {i}'s joint v share, slot {s}", peval(world["v"], i, n),
                 h(sv[i]["v_me"][s]))
        # the re-sharing of h_k = (a + z_k) rho_k by the members
        g = {}
        for k in members:
            zk, rk = peval(zpoly[0], k, q), peval(world["rho"], k, q)
            if k in corrupt:
                g[k] = [h(x) for x in sv[k]["g_f"][s]]
                same(f"corrupt dealer {k}'s h, slot {s}", g[k][0], (a + zk) * rk % q)
            else:
                pts = [(i, h(sv[i]["g_sh"][k - 1][s])) for i in corrupt[:t]]
                g[k] = interp_coeffs([(0, (a + zk) * rk % q)] + pts, q)
            for i in corrupt:
                same(f"server {i}'s share of dealer {k}'s h, slot {s}", peval(g[k], i, q),
                     h(sv[i]["g_sh"][k - 1][s]))
        lam = {k: lag0(members, k, q) for k in members}
        for i in corrupt:
            ui = sum(lam[k] * peval(g[k], i, q) for k in members) % q
            same(f"server {i}'s u share, slot {s}", ui, h(sv[i]["u"][s]))
            ski = (peval(zpoly[1], i, n) + hs * peval(world["v"], i, n)) % n
            same(f"server {i}'s SSK share, slot {s}", ski, h(sv[i]["ssk"][s]))
        u_new = sum(lam[k] * g[k][0] for k in members) % q
        same(f"u' = (a + z') rho', slot {s}", u_new, (a + z_new) * world["rho"][0] % q)
        ssk_new = (ksak_new + hs * world["v"][0]) % n
        if s == view["client"]:
            same("the client's u", u_new, h(view["client_u"]))
            same("the client's SSK", ssk_new, h(view["client_ssk"]))
        out.append((u_new, ssk_new))
    return out


def main():
    view = json.load(open(sys.argv[1]))
    corrupt = view["corrupt"]
    if len(sys.argv) == 2:
        us = []
        for _ in range(3):
            z_new, ksak_new = secrets.randbelow(Q_SAKKE), secrets.randbelow(N_P256)
            try:
                res = check(view, z_new, ksak_new)
            except Mismatch as e:
                print(f"  oracle: FAILED: a world with a random z' does not reproduce {e}")
                return 1
            us.append(res[view["victim"]][0])
        if len(set(us)) != len(us):
            print("  oracle: FAILED: the victim's u' did not vary with z'")
            return 1
        print(f"  oracle: the view of servers {corrupt} is reproduced by worlds with 3 random "
              f"z' and KSAK' (the victim's u' differs in each; the client's u and SSK fixed)")
        return 0
    if sys.argv[2] != "--negative":
        print("usage: state_check.py VIEW [--negative ZHEX]")
        return 2
    z_true = int(sys.argv[3], 16)
    sv = {int(i): s for i, s in view["servers"].items()}
    rebuilt = sum(lag0(corrupt, i, Q_SAKKE) * int(sv[i]["z"], 16) for i in corrupt) % Q_SAKKE
    if rebuilt != z_true:
        print("  oracle: FAILED: the t+1 shares in the view do not rebuild z")
        return 1
    z_new = secrets.randbelow(Q_SAKKE)
    try:
        check(view, z_new, secrets.randbelow(N_P256))
    except Mismatch as e:
        print(f"  oracle (negative control): the view of servers {corrupt} rebuilds z, and "
              f"a world with a random z' fails to reproduce {e}")
        return 0
    print("  oracle: FAILED: the view of t+1 servers was consistent with a random z'")
    return 1


if __name__ == "__main__":
    sys.exit(main())
