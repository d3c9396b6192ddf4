#!/usr/bin/env python3
"""Cross-check vectors for tests/threshold/test_vectors.c, computed with the Python
prototype of the design note (the oracle, variable-time, tests only).

Usage: python3 gen_tkms_vectors.py ORACLE_DIR N T > tkms_N_T.txt
ORACLE_DIR holds tkms.py, sakke.py and eccsi.py. Every server's random draws are fixed
(from a seeded generator) and written out as the byte stream the C code reads from its
ms_rng, in the order it draws: key generation (per curve, SAKKE then P-256, for
k = 0..t: f_k then f'_k), the batch per slot (for k = 0..t: rho_k, v_k, v'_k), the random
multipliers (16 octets per slot), and for a re-sharing server per slot g_1..g_t. The
expected public outputs come from the oracle's curve arithmetic and Shamir helpers.
"""
import contextlib
import hashlib
import io
import random
import sys

sys.path.insert(0, sys.argv[1])
with contextlib.redirect_stdout(io.StringIO()):
    import tkms as T
S, E, SAK, ECC = T.S, T.E, T.SAK, T.ECC
q, n_ord = S.q, E.q

N_SERVERS, THRESH = int(sys.argv[2]), int(sys.argv[3])
IDS = [b'2026-12\x00tel:+447700900123\x00', b'2026-12\x00sip:alice@org.example\x00']
rng = random.Random(20261207 + 100 * N_SERVERS + THRESH)
out = []


def put(name, data):
    out.append(f'{name} = {data.hex().upper()}')


def enc_s(P):
    return b'\x00' * 257 if P is None else b'\x04' + P[0].to_bytes(128, 'big') + P[1].to_bytes(128, 'big')


def enc_e(P):
    return b'\x00' * 65 if P is None else E.enc(P)


def rnd(m):
    return rng.randrange(1, m)


def sqrt_p3(a, p):
    r = pow(a, (p + 1) // 4, p)
    return r if r * r % p == a else None


def second_gen(dst, p, b, fl, cofactor):
    for ctr in range(1000):
        if fl == 128:
            x = b''.join(hashlib.sha256(dst + ctr.to_bytes(4, 'big') + bytes([i])).digest()
                         for i in range(4))
        else:
            x = hashlib.sha256(dst + ctr.to_bytes(4, 'big')).digest()
        x = int.from_bytes(x, 'big')
        if x >= p:
            continue
        rhs = (x ** 3 - 3 * x + b) % p
        if rhs == 0:
            continue
        y = sqrt_p3(rhs, p)
        if y is None:
            continue
        y = min(y, p - y)
        return (x, y) if cofactor == 1 else S.mul(cofactor, (x, y))
    raise SystemExit('no point')


Hs = second_gen(b'MIKEY-SAKKE TKMS H_s', S.p, 0, 128, 4)
He = second_gen(b'MIKEY-SAKKE TKMS H_e', E.p, E.B, 32, 1)
put('H_s', enc_s(Hs))
put('H_e', enc_e(He))

ids = list(range(1, N_SERVERS + 1))
stream = {i: b'' for i in ids}
t = THRESH

# key generation: f, f' on both curves
F = {}
for i in ids:
    F[i] = {}
    for c, (m, L) in enumerate(((q, 128), (n_ord, 32))):
        f, fb = [], []
        for k in range(t + 1):
            f.append(rnd(m)); fb.append(rnd(m))
            stream[i] += f[-1].to_bytes(L, 'big') + fb[-1].to_bytes(L, 'big')
        F[i][c] = f
z_sh = {j: sum(T.peval(F[i][0], j, q) for i in ids) % q for j in ids}
k_sh = {j: sum(T.peval(F[i][1], j, n_ord) for i in ids) % n_ord for j in ids}
Z = SAK.sum(SAK.mul(F[i][0][0], S.P) for i in ids)
KPAK = ECC.sum(ECC.mul(F[i][1][0], E.G) for i in ids)
put('Z', enc_s(Z))
put('KPAK', enc_e(KPAK))
for j in ids:
    put(f'Z_{j}', enc_s(SAK.mul(z_sh[j], S.P)))
    put(f'KPAK_{j}', enc_e(ECC.mul(k_sh[j], E.G)))

# the batch: rho (Feldman), v, v' (Pedersen)
rho, v = {}, {}
for i in ids:
    rho[i], v[i] = [], []
    for s in range(len(IDS)):
        r_, v_ = [], []
        for k in range(t + 1):
            r_.append(rnd(q)); v_.append(rnd(n_ord)); vb = rnd(n_ord)
            stream[i] += r_[-1].to_bytes(128, 'big') + v_[-1].to_bytes(32, 'big') + vb.to_bytes(32, 'big')
        rho[i].append(r_); v[i].append(v_)
for i in ids:
    stream[i] += bytes(rng.randrange(256) for _ in range(16 * len(IDS)))
M = ids[:2 * t + 1]
lam = {i: T.lag0(M, i, q) for i in M}
# d: the least common multiple of the denominators of the Lagrange coefficients
from math import gcd
d = 1
for i in M:
    den = 1
    for m in M:
        if m != i:
            den *= (m - i)
    d = d * abs(den) // gcd(d, abs(den))
put('d', d.to_bytes(8, 'big'))
for s, ID in enumerate(IDS):
    a = T.id_int(ID)
    rho_j = {j: sum(T.peval(rho[i][s], j, q) for i in ids) % q for j in ids}
    v_j = {j: sum(T.peval(v[i][s], j, n_ord) for i in ids) % n_ord for j in ids}
    g = {}
    for i in M:
        g[i] = [(a + z_sh[i]) * rho_j[i] % q] + [rnd(q) for _ in range(t)]
        stream[i] += b''.join(c.to_bytes(128, 'big') for c in g[i][1:])
    u = {j: sum(lam[i] * T.peval(g[i], j, q) for i in M) % q for j in ids}
    R0 = SAK.sum(SAK.mul(rho[i][s][0], S.P) for i in ids)
    PVT = ECC.sum(ECC.mul(v[i][s][0], E.G) for i in ids)
    HS = T.hs_of(KPAK, ID, PVT)
    ssk = {j: (k_sh[j] + HS * v_j[j]) % n_ord for j in ids}
    uc = [SAK.sum(SAK.mul(d * lam[i] % q, SAK.mul(g[i][k], S.P)) for i in M) for k in range(t + 1)]
    vc = [ECC.sum(ECC.mul(v[i][s][k], E.G) for i in ids) for k in range(t + 1)]
    put(f's{s}_R0', enc_s(R0))
    put(f's{s}_PVT', enc_e(PVT))
    for k in range(t + 1):
        put(f's{s}_uc{k}', enc_s(uc[k]))
        put(f's{s}_vc{k}', enc_e(vc[k]))
    for j in ids:
        put(f's{s}_u_{j}', u[j].to_bytes(128, 'big'))
        put(f's{s}_ssk_{j}', ssk[j].to_bytes(32, 'big'))
    # the device: any t+1 shares
    Sset = ids[-(t + 1):]
    uu = T.interp0({j: u[j] for j in Sset}, q)
    RSK = SAK.mul(pow(uu, -1, q), R0)
    SSK = T.interp0({j: ssk[j] for j in Sset}, n_ord)
    z = T.interp0(z_sh, q)
    assert RSK == T.rsk_direct_test_only(z, ID) and T.rsk_valid(Z, ID, RSK)
    assert T.ssk_valid(KPAK, ID, SSK, PVT)
    put(f's{s}_RSK', enc_s(RSK))
    put(f's{s}_SSK', SSK.to_bytes(32, 'big'))
for i in ids:
    # lines of at most 1,500 octets (the test's reader takes lines of 4,096 characters)
    parts = [stream[i][x:x + 1500] for x in range(0, len(stream[i]), 1500)]
    put(f'rng_{i}_parts', bytes([len(parts)]))
    for x, part in enumerate(parts):
        put(f'rng_{i}_{x}', part)
print(f'# Threshold KMS cross-check, (n, t) = ({N_SERVERS}, {THRESH}): generated by gen_tkms_vectors.py from')
print('# the Python prototype (the oracle). IDs: ' + ', '.join(repr(x) for x in IDS))
print('\n'.join(out))
