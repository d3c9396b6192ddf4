#!/usr/bin/env python3
"""Generates src/crypto/fp_backend_x86_64_adx.S: 1024-bit Montgomery multiplication and
squaring for x86-64 with BMI2 (mulx) and ADX (adcx/adox).

The build does not run this script; its output is committed. Regenerate with
    python3 scripts/gen_fp_adx.py > src/crypto/fp_backend_x86_64_adx.S

Method. All the work is done in 8x8-limb blocks whose running sum lives in registers:
a "window" of 8 registers holds 8 consecutive columns of the sum. One step multiplies
an 8-limb operand X (memory) by one limb y (in rdx) and adds it to the window with two
carry chains at once (adcx adds the low halves, adox the high halves); the high half of
the last product becomes a new top column, and the lowest column, now final, leaves the
window (to memory, or dropped when it is known to be zero). Memory is touched once per
column instead of once per limb product, which is what makes this fast.

  product  a*b = (a_lo + a_hi 2^512)(b_lo + b_hi 2^512): blocks a_lo*b_lo, b_lo*a_hi,
           a_lo*b_hi, a_hi*b_hi, each continuing the window of the previous one;
  square   a^2: the cross products a_i a_j (i < j) as a triangle, a rectangle and a
           triangle (120 products), then doubled with the squares a_i^2 added;
  reduce   (Montgomery, R = 2^1024) in two halves: u_0..u_7 are derived one per step
           from the window's lowest column (u*m_lo), then U_lo*m_hi is added as a block;
           the same for u_8..u_15; then t[16..31] plus the pieces left aside, and one
           masked subtraction of m.

There are no conditional branches and no data-dependent addresses. The 8-step blocks (window += X * 8 limbs of Y, and the u-deriving half-reduction) are two
local functions called 4 + 2 times and 2 times; mul and sqr are glue around them, which
keeps the code near 9 KB, small enough to stay in the decoded-op cache even when mul and
sqr alternate (fully unrolled, 18 KB, it lost 5-10% that way, and depended on layout).

Speed (AMD EPYC Zen 3, TSC 2.45 GHz, best runs): mul ~540 TSC cycles (0.22 us), sqr ~445
(0.18 us). A step of 8 limb products (8 mov, 8 mulx, 8 adcx, 7 adox, 2 carry absorptions)
takes about 9 core cycles, bound by the integer ALUs rather than by latency. Tried and
dropped: mulx with a memory operand (15% slower per step than mov + mulx), copying a, b
and m into the frame first, software-pipelining the mulx one limb ahead, loading the
operands of the final additions into registers first (no gain).
"""

import sys

N = 16
out = []


def emit(s=""):
    out.append(s)


def ins(op, *args):
    emit("\t%s\t%s" % (op, ", ".join(args)))


def comment(s):
    emit("\t/* %s */" % s)


def mem(reg, k):
    return "%d(%s)" % (8 * k, reg) if k else "(%s)" % reg


# ---- frame layout (offsets from rsp) -------------------------------------------------
OFF_T = 0          # 32 limbs: the product, then pieces of the reduction
OFF_S = 256        # 8 limbs: a window put aside
OFF_U = 320        # 16 limbs: the Montgomery factors u_i, later the difference res - m
OFF_R = 448        # saved r pointer
OFF_M = 456        # saved m pointer
OFF_M0 = 464       # saved m0inv
OFF_C0 = 472       # a carry bit put aside
OFF_C1 = 480       # another
OFF_DP = 488       # where the block subroutine stores the columns leaving the window
OFF_UP = 496       # where the u subroutine stores the u_i
OFF_TP = 504       # ms_mont_redc_adx: the caller's t
FRAME_USED = 512
SAVED = ["%rbx", "%rbp", "%r12", "%r13", "%r14", "%r15"]
# entry rsp is 8 mod 16; after the pushes it is 8 + 8*len(SAVED) mod 16
FRAME = (FRAME_USED + 15) // 16 * 16 + (8 if (8 + 8 * len(SAVED)) % 16 else 0)
WIPE = [(OFF_T, 32), (OFF_S, 8), (OFF_U, 16)]


BIAS = 0  # 8 while generating the shared reduction: its rsp is 8 below the frame's


def slot(off):
    off += BIAS
    return "%d(%%rsp)" % off if off else "(%rsp)"


# EXT_T: None while the product lives in the frame; else the frame slot holding a pointer
# to the caller's 32-limb buffer, which then serves as t (wide product out, or wide
# input to reduce in place). Its uses go through r15 (HI, free between steps), loaded
# by tbase() before each group of uses.
EXT_T = None


def T(k):
    if EXT_T is not None:
        return mem(HI, k)
    return slot(OFF_T + 8 * k)


def tbase():
    if EXT_T is not None:
        ins("mov", slot(EXT_T), HI)


def S(k):
    return slot(OFF_S + 8 * k)


def U(k):
    return slot(OFF_U + 8 * k)


# a and m are read where the caller keeps them (rsi). (Copying them into the frame first
# was measured slower.)
def A(k):
    return mem("%rsi", k)


def MC(k):
    return mem("%rsi", k)


# ---- registers --------------------------------------------------------------------------
ZERO = "%rax"   # zeroed by every `xor %eax,%eax`, which also clears CF and OF
LO = "%r14"     # low half of a limb product
HI = "%r15"     # high half
POOL = ["%rbx", "%rcx", "%rdi", "%r8", "%r9", "%r10", "%r11", "%r12", "%r13"]


class Win:
    """The window: regs[k] holds column base+k; spare is the register for the next top."""

    def __init__(self, regs, spare, base):
        self.regs = list(regs)
        self.spare = list(spare)
        self.base = base


def step(win, y, xs, s, dst, note=None):
    """Adds y * X to the window, X = xs (memory operands) starting at window column s,
    with s + len(xs) == len(window); the high half of the last product opens a new top
    column. Then the lowest column leaves: stored to dst, or dropped if dst is None.
    y: operand loaded into rdx, or None when rdx is already set."""
    regs = win.regs
    n = len(xs)
    assert s + n == len(regs), (s, n, len(regs))
    top = win.spare.pop(0)
    if note is None:
        note = "window (columns %d..%d) += rdx * %d limbs; column %d %s" % (
            win.base, win.base + len(regs) - 1, n, win.base,
            "leaves" if dst is not None else "is zero, dropped")
    comment(note)
    if y is not None:
        ins("mov", y, "%rdx")
    ins("xor", "%eax", "%eax")
    for j in range(n):
        last = j == n - 1
        # X[j] is loaded into a register first: on Zen 3 mulx with a memory operand
        # costs about 15% more per step. The loads go to the new top's register, still
        # free, and for the last limb (whose high half goes to the top) to HI.
        xr = HI if last else top
        ins("mov", xs[j], xr)
        ins("mulx", xr, LO, top if last else HI)
        ins("adcx", LO, regs[s + j])
        if not last:
            ins("adox", HI, regs[s + j + 1])
    # the window plus y*X fits in one more column, so these cannot carry out
    ins("adcx", ZERO, top)
    ins("adox", ZERO, top)
    low = regs[0]
    if isinstance(dst, int):
        # column k of the block goes to 8k(pointer in the frame slot OFF_DP)
        ins("mov", slot(OFF_DP), LO)
        ins("mov", low, mem(LO, dst))
    elif dst is not None:
        ins("mov", low, dst)
    win.regs = regs[1:] + [top]
    win.spare.append(low)
    win.base += 1


def load_window(dsts_src):
    for reg, src in dsts_src:
        ins("mov", src, reg)


def add_to_window(win, srcs, carry_slot, what):
    """window += srcs (8 memory limbs); the carry out goes to carry_slot (0 or 1)."""
    comment(what)
    for k, src in enumerate(srcs):
        ins("add" if k == 0 else "adc", src, win.regs[k])
    ins("mov", "$0", "%edx")
    ins("adc", "$0", "%edx")
    ins("mov", "%rdx", carry_slot)


def canonicalize(win):
    """Moves the window back to POOL[0..7] (spare POOL[8]) with register moves; the
    spare holds nothing, so the moves form chains, never cycles."""
    target = POOL[:8]
    pending = {t: c for t, c in zip(target, win.regs) if t != c}
    while pending:
        sources = set(pending.values())
        dst = next(d for d in pending if d not in sources)
        ins("mov", pending.pop(dst), dst)
    win.regs = list(POOL[:8])
    win.spare = [POOL[8]]


STEP8 = "ms_mont_block8_adx_internal"
USTEP8 = "ms_mont_ublock8_adx_internal"


def gen_subroutines():
    """The two 8-step blocks everything is made of, as local functions (called one level
    deep, so their frame offsets are 8 higher). Keeping them out of line keeps the code
    small enough to stay in the decoded-op cache."""
    global BIAS
    BIAS = 8
    emit()
    emit("\t.p2align 6")
    emit("\t.type\t%s, @function" % STEP8)
    emit(STEP8 + ":")
    emit("\t.cfi_startproc")
    comment("window (rbx rcx rdi r8..r12) += X * Y, X = 8 limbs at rsi, Y = 8 limbs at")
    comment("rbp; column k of the block leaves the window to 8k(the pointer in OFF_DP)")
    win = Win(POOL[:8], POOL[8:], 0)
    xs = [mem("%rsi", j) for j in range(8)]
    for k in range(8):
        step(win, mem("%rbp", k), xs, 0, k,
             note="y = Y[%d]: window += y * X, lowest column out" % k)
    comment("the window has rotated by one register: move it back")
    canonicalize(win)
    ins("ret")
    emit("\t.cfi_endproc")
    emit("\t.size\t%s, .-%s" % (STEP8, STEP8))

    emit()
    emit("\t.p2align 6")
    emit("\t.type\t%s, @function" % USTEP8)
    emit(USTEP8 + ":")
    emit("\t.cfi_startproc")
    comment("Montgomery half-reduction of the window (rbx rcx rdi r8..r12): 8 times")
    comment("u = lowest column * m0inv (rbp), window += u * m_lo (rsi), drop the column")
    comment("(now zero); u_k goes to 8k(the pointer in OFF_UP)")
    win = Win(POOL[:8], POOL[8:], 0)
    xs = [mem("%rsi", j) for j in range(8)]
    for k in range(8):
        # imul clobbers the flags, so it comes before the step's xor; it needs only the
        # column made final early in the previous step, so it starts early
        comment("u_%d = lowest column * m0inv" % k)
        ins("mov", win.regs[0], "%rdx")
        ins("imul", "%rbp", "%rdx")
        ins("mov", slot(OFF_UP), LO)
        ins("mov", "%rdx", mem(LO, k))
        step(win, None, xs, 0, None, note="window += u_%d * m_lo; lowest column is 0" % k)
    comment("the window has rotated by one register: move it back")
    canonicalize(win)
    ins("ret")
    emit("\t.cfi_endproc")
    emit("\t.size\t%s, .-%s" % (USTEP8, USTEP8))
    BIAS = 0


def call_block(dst_off, what):
    comment(what)
    if EXT_T is not None and OFF_T <= dst_off < OFF_T + 256:
        ins("mov", slot(EXT_T), LO)
        if dst_off != OFF_T:
            ins("lea", "%d(%s)" % (dst_off - OFF_T, LO), LO)
    else:
        ins("lea", slot(dst_off), LO)
    ins("mov", LO, slot(OFF_DP))
    ins("call", STEP8)


# ---- the product a*b ----------------------------------------------------------------------

def zero_reg(r):
    """xor of the 32-bit name: zeroes the whole register."""
    r32 = "%e" + r[2:] if r in ("%rbx", "%rcx", "%rdi") else r + "d"
    ins("xor", r32, r32)


def gen_product_mul():
    """rsi = a, rbp = b."""
    win = Win(POOL[:8], POOL[8:], 0)
    comment("window = columns 0..7 of a*b, starting from zero")
    for r in win.regs:
        zero_reg(r)
    call_block(OFF_T, "a_lo * b_lo: columns 0..7 are final; window = columns 8..15")
    comment("+ b_lo * a_hi: the block takes X at rsi, Y at rbp, so swap them")
    ins("xchg", "%rsi", "%rbp")
    ins("lea", "64(%rbp)", "%rbp")
    call_block(OFF_T + 64, "columns 8..15 to t; window = columns 16..23, set aside")
    ins("lea", "-64(%rbp)", "%rbp")
    ins("xchg", "%rsi", "%rbp")
    for k in range(8):
        ins("mov", win.regs[k], S(k))
    comment("a_lo * b_hi adds to columns 8..23 again: restart the window at column 8")
    tbase()
    load_window(zip(win.regs, [T(8 + k) for k in range(8)]))
    ins("lea", "64(%rbp)", "%rbp")
    call_block(OFF_T + 64, "+ a_lo * b_hi: columns 8..15 are final; window = columns 16..23")
    add_to_window(win, [S(k) for k in range(8)], slot(OFF_C0),
                  "+ the columns 16..23 set aside; the carry belongs to column 24")
    ins("lea", "64(%rsi)", "%rsi")
    call_block(OFF_T + 128, "+ a_hi * b_hi: columns 16..23 are final; window = columns 24..31")
    comment("+ the carry set aside at column 24; a*b < 2^2048, so nothing carries out")
    ins("add", slot(OFF_C0), win.regs[0])
    for k in range(1, 8):
        ins("adc", "$0", win.regs[k])
    tbase()
    for k in range(8):
        ins("mov", win.regs[k], T(24 + k))
    return win


# ---- the square a^2 -----------------------------------------------------------------------

def gen_product_sqr():
    AA = [A(j) for j in range(N)]
    # cross products: triangle within a_lo, window of 7 columns starting at column 1
    win = Win(POOL[:7], POOL[7:], 1)
    comment("cross products a_i a_j (i < j): the triangle within a_lo, rows of 7..1")
    comment("products; window = columns i+1..i+7 for row i, column i+1 is then final")
    for r in win.regs:
        zero_reg(r)
    for i in range(7):
        step(win, AA[i], AA[i + 1:8], i, T(i + 1))
    comment("rectangle a_lo * a_hi: window = columns 8..15 (column 15 still empty)")
    top = win.spare.pop(0)
    zero_reg(top)
    win.regs.append(top)
    canonicalize(win)
    ins("mov", "%rsi", "%rbp")
    ins("lea", "64(%rsi)", "%rsi")
    call_block(OFF_T + 64, "X = a_hi, Y = a_lo: columns 8..15 final; window = 16..23")
    ins("lea", "-64(%rsi)", "%rsi")
    comment("column 16 is final; the triangle within a_hi: row i (8..14) has window")
    comment("columns i+9..i+15")
    low = win.regs.pop(0)
    ins("mov", low, T(16))
    win.spare.append(low)
    win.base += 1
    for i in range(8, 15):
        step(win, AA[i], AA[i + 1:16], i - 8, T(i + 9))
    # window = columns 24..30; column 0 and 31 are zero
    comment("t = 2 * cross + squares: adcx doubles (x + x + carry), adox adds a_i^2;")
    comment("columns 24..30 are still in the window")
    ins("xor", "%eax", "%eax")
    cols = {24 + k: win.regs[k] for k in range(7)}
    x = win.spare[0]
    for i in range(N):
        ins("mov", AA[i], "%rdx")
        ins("mulx", "%rdx", LO, HI)
        for k, sq in ((2 * i, LO), (2 * i + 1, HI)):
            if k == 0:
                ins("mov", LO, T(0))    # column 0: no cross product, no carry in
                continue
            if k in cols:
                r = cols[k]
            elif k == 2 * N - 1:
                r = x
                ins("mov", "$0", r)
            else:
                r = x
                ins("mov", T(k), r)
            ins("adcx", r, r)
            ins("adox", sq, r)
            ins("mov", r, T(k))


def copy_product_out():
    """The 32 limbs of the product, from the frame to the pointer saved in OFF_R."""
    comment("t = the 32 columns of the product")
    ins("mov", slot(OFF_R), "%rdi")
    for k in range(2 * N):
        ins("mov", T(k), LO)
        ins("mov", LO, mem("%rdi", k))


# ---- Montgomery reduction -------------------------------------------------------------------

def gen_reduce():
    """t[0..31] on the stack -> r = t * 2^-1024 mod m. rsi = m on entry."""
    M = [MC(j) for j in range(N)]

    win = Win(POOL[:8], POOL[8:], 0)
    comment("reduction, first half: window = t[0..7], rsi = m, rbp = m0inv; u_0..u_7")
    tbase()
    load_window(zip(win.regs, [T(k) for k in range(8)]))
    ins("mov", slot(OFF_M0), "%rbp")
    ins("lea", U(0), LO)
    ins("mov", LO, slot(OFF_UP))
    ins("call", USTEP8)
    tbase()
    add_to_window(win, [T(8 + k) for k in range(8)], slot(OFF_C1),
                  "window = columns 8..15: + t[8..15], carry set aside (column 16)")
    ins("lea", "64(%rsi)", "%rsi")
    ins("lea", U(0), "%rbp")
    call_block(OFF_T + 64, "+ (u_0..u_7) * m_hi: columns 8..15 are final, window = 16..23")
    for k in range(8):
        ins("mov", win.regs[k], S(k))
    comment("reduction, second half: window = columns 8..15 again; u_8..u_15")
    tbase()
    load_window(zip(win.regs, [T(8 + k) for k in range(8)]))
    ins("lea", "-64(%rsi)", "%rsi")
    ins("mov", slot(OFF_M0), "%rbp")
    ins("lea", U(8), LO)
    ins("mov", LO, slot(OFF_UP))
    ins("call", USTEP8)
    ins("lea", "64(%rsi)", "%rsi")
    ins("lea", U(8), "%rbp")
    call_block(OFF_T, "+ (u_8..u_15) * m_hi: columns 16..23 to t[0..7]; window = 24..31")
    ins("lea", "-64(%rsi)", "%rsi")

    comment("result = columns 16..31 = (t[0..7], window) + t[16..31] + the columns 16..23")
    comment("set aside + the carry set aside at column 16. Two chains: adcx adds t,")
    comment("adox the columns set aside; CF starts as that carry. Low half goes to r.")
    RP = "%rbp"
    ins("mov", slot(OFF_R), RP)
    ins("mov", slot(OFF_C1), "%rdx")
    ins("xor", "%eax", "%eax")
    ins("add", "$-1", "%rdx")   # CF = carry (0 or 1), OF = 0
    tbase()                      # a mov: the flags survive
    for k in range(8):
        ins("mov", T(k), LO)
        ins("adcx", T(16 + k), LO)
        ins("adox", S(k), LO)
        ins("mov", LO, mem(RP, k))
    for k in range(8):
        ins("adcx", T(24 + k), win.regs[k])
        ins("adox", ZERO, win.regs[k])
    top = win.spare[0]
    ins("mov", "$0", top)
    ins("adcx", ZERO, top)
    ins("adox", ZERO, top)
    comment("the value (top:result) is below 2m: d = result - m to the scratch area;")
    comment("keep the result only when top = 0 and the subtraction borrowed, i.e. when")
    comment("top - borrow is not zero (cmov from memory always loads: constant time)")
    for k in range(N):
        src = mem(RP, k) if k < 8 else win.regs[k - 8]
        ins("mov", src, LO)
        ins("sub" if k == 0 else "sbb", M[k], LO)
        ins("mov", LO, U(k))
    ins("sbb", "$0", top)   # ZF set: take d
    for k in range(N):
        if k < 8:
            ins("mov", mem(RP, k), LO)
            x = LO
        else:
            x = win.regs[k - 8]
        ins("cmovz", U(k), x)
        ins("mov", x, mem(RP, k))


# ---- functions ------------------------------------------------------------------------------

def prologue(name):
    emit()
    emit("\t.p2align 6")
    emit("\t.globl\t" + name)
    emit("\t.hidden\t" + name)
    emit("\t.type\t%s, @function" % name)
    emit(name + ":")
    emit("\t.cfi_startproc")
    for r in SAVED:
        ins("push", r)
        emit("\t.cfi_adjust_cfa_offset 8")
        emit("\t.cfi_rel_offset %s, 0" % r)
    ins("sub", "$%d" % FRAME, "%rsp")
    emit("\t.cfi_adjust_cfa_offset %d" % FRAME)


def epilogue(name, wipe=None):
    comment("wipe the intermediate values from the stack (the frame is 16-byte aligned)")
    ins("xorps", "%xmm0", "%xmm0")
    for off, n in (WIPE if wipe is None else wipe):
        for k in range(0, n, 2):
            ins("movaps", "%xmm0", slot(off + 8 * k))
    ins("add", "$%d" % FRAME, "%rsp")
    emit("\t.cfi_adjust_cfa_offset -%d" % FRAME)
    for r in reversed(SAVED):
        ins("pop", r)
        emit("\t.cfi_adjust_cfa_offset -8")
        emit("\t.cfi_restore %s" % r)
    ins("ret")
    emit("\t.cfi_endproc")
    emit("\t.size\t%s, .-%s" % (name, name))


def main():
    emit("/*")
    emit(" * GENERATED by scripts/gen_fp_adx.py; edit that script, not this file.")
    emit(" *")
    emit(" * 1024-bit Montgomery multiplication and squaring, x86-64 with BMI2 and ADX:")
    emit(" *   void ms_mont_mul_adx(uint64_t r[16], const uint64_t a[16], const uint64_t b[16],")
    emit(" *                        const uint64_t m[16], uint64_t m0inv);")
    emit(" *   void ms_mont_sqr_adx(uint64_t r[16], const uint64_t a[16],")
    emit(" *                        const uint64_t m[16], uint64_t m0inv);")
    emit(" * r = a*b*2^-1024 mod m for odd m < 2^1024, a, b < m; r may alias a or b.")
    emit(" *")
    emit(" * The two halves separately, for lazy reduction (sums of products reduced once):")
    emit(" *   void ms_mont_mulwide_adx(uint64_t t[32], const uint64_t a[16], const uint64_t b[16]);")
    emit(" *   void ms_mont_sqrwide_adx(uint64_t t[32], const uint64_t a[16]);")
    emit(" *   void ms_mont_redc_adx(uint64_t r[16], const uint64_t t[32],")
    emit(" *                         const uint64_t m[16], uint64_t m0inv);")
    emit(" * t = a*b (or a^2) exactly (t must not overlap a or b); r = t*2^-1024 mod m for")
    emit(" * t < m*2^1024, reducing t in place (t is clobbered; r may be t itself).")
    emit(" *")
    emit(" * All the arithmetic is done in 8x8-limb blocks whose running sum is a window of")
    emit(" * 8 registers (8 consecutive columns). A step multiplies 8 limbs by the limb in")
    emit(" * rdx with mulx and adds the products to the window on two carry chains at")
    emit(" * once: adcx the low halves, adox the high halves. The high half of the last")
    emit(" * product opens a new top column and the lowest column, now final, leaves the")
    emit(" * window. The product goes to a 32-limb accumulator on the stack, then the")
    emit(" * Montgomery reduction runs in two halves of 8 rows, then one masked")
    emit(" * subtraction of m. The 8-step blocks are two local functions that mul and sqr")
    emit(" * call, to keep the code small. No conditional branches: the running time and")
    emit(" * the memory addresses do not depend on the data. The stack frame is wiped on")
    emit(" * return.")
    emit(" */")
    emit()
    emit("\t.text")

    gen_subroutines()

    name = "ms_mont_mul_adx"
    prologue(name)
    comment("rdi = r, rsi = a, rdx = b, rcx = m, r8 = m0inv: keep r, m, m0inv in the frame")
    ins("mov", "%rdi", slot(OFF_R))
    ins("mov", "%rcx", slot(OFF_M))
    ins("mov", "%r8", slot(OFF_M0))
    ins("mov", "%rdx", "%rbp")
    gen_product_mul()
    emit()
    ins("mov", slot(OFF_M), "%rsi")
    gen_reduce()
    epilogue(name)

    name = "ms_mont_sqr_adx"
    prologue(name)
    comment("rdi = r, rsi = a, rdx = m, rcx = m0inv: keep r, m, m0inv in the frame")
    ins("mov", "%rdi", slot(OFF_R))
    ins("mov", "%rdx", slot(OFF_M))
    ins("mov", "%rcx", slot(OFF_M0))
    gen_product_sqr()
    emit()
    ins("mov", slot(OFF_M), "%rsi")
    gen_reduce()
    epilogue(name)

    global EXT_T
    name = "ms_mont_mulwide_adx"
    prologue(name)
    comment("rdi = t, rsi = a, rdx = b: the columns go straight to t")
    ins("mov", "%rdi", slot(OFF_R))
    ins("mov", "%rdx", "%rbp")
    EXT_T = OFF_R
    gen_product_mul()
    EXT_T = None
    epilogue(name, wipe=[(OFF_S, 8)])

    name = "ms_mont_sqrwide_adx"
    prologue(name)
    comment("rdi = t, rsi = a: the square goes to the frame, then to t")
    ins("mov", "%rdi", slot(OFF_R))
    gen_product_sqr()
    copy_product_out()
    epilogue(name)

    name = "ms_mont_redc_adx"
    prologue(name)
    comment("rdi = r, rsi = t, rdx = m, rcx = m0inv: t is reduced in place (clobbered);")
    comment("r may be t itself")
    ins("mov", "%rdi", slot(OFF_R))
    ins("mov", "%rsi", slot(OFF_TP))
    ins("mov", "%rdx", slot(OFF_M))
    ins("mov", "%rcx", slot(OFF_M0))
    ins("mov", slot(OFF_M), "%rsi")
    EXT_T = OFF_TP
    gen_reduce()
    EXT_T = None
    epilogue(name, wipe=[(OFF_S, 8), (OFF_U, 16)])

    emit()
    emit('\t.section .note.GNU-stack,"",@progbits')
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
