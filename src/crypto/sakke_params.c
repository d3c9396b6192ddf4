/*
 * Constants of SAKKE parameter set 1 (RFC 6509 Appendix A) in the form the arithmetic
 * wants: little-endian 64-bit limbs, with the Montgomery constants for R = 2^1024
 * precomputed (m0inv = -m^-1 mod 2^64, one = R mod m, r2 = R^2 mod m).
 * Generated from the RFC values; tests/crypto/test_mont.c checks them against the RFC.
 */
#include "mont.h"

/* p, the 1024-bit field prime */
const ms_mont ms_mont_p = {
    .m = {
        0x666d807afea85febull, 0x80c5df10ac7ace87ull, 0xfce3e82389857db0ull, 0x9f94d6af56971f1full,
        0xa7cf3c521c3c09aaull, 0xb6aff4a831852a82ull, 0x512ac5cd65681ce1ull, 0xe26c6487326b4cd4ull,
        0x356d27f4a666a6d0ull, 0xe791b39ff7c88a19ull, 0x228730d531a59cb0ull, 0xf40aab27e2fc0f1bull,
        0xbe9ae358b3e01a2eull, 0x416c0ce19cb48261ull, 0x65c61198dad0657aull, 0x997abb1f0a563fdaull},
    .m0inv = 0x290420077c8f2f3dull,
    .one = {
        0x99927f850157a015ull, 0x7f3a20ef53853178ull, 0x031c17dc767a824full, 0x606b2950a968e0e0ull,
        0x5830c3ade3c3f655ull, 0x49500b57ce7ad57dull, 0xaed53a329a97e31eull, 0x1d939b78cd94b32bull,
        0xca92d80b5999592full, 0x186e4c60083775e6ull, 0xdd78cf2ace5a634full, 0x0bf554d81d03f0e4ull,
        0x41651ca74c1fe5d1ull, 0xbe93f31e634b7d9eull, 0x9a39ee67252f9a85ull, 0x668544e0f5a9c025ull},
    .r2 = {
        0xe199c8ceed17b0a1ull, 0x7ffd8b4be3620f7full, 0xca865d5f4f76e245ull, 0x623ff8dc27ecf5cbull,
        0x229900e1d19bb697ull, 0xed6aef26ea40c71full, 0xa3aed42cc906365cull, 0x17d461b69eab6451ull,
        0x2009367d7d666da9ull, 0x8bcad1dcb63c1d56ull, 0x5a126231c31a92dcull, 0x5fb41b0eb8d94c5bull,
        0xc113d394843f623cull, 0x5d8d8e74f159f1ebull, 0xae4ba7edb5d48c14ull, 0x191640b9698af16aull},
};

/* q = (p + 1) / 4, the prime order of P */
const ms_mont ms_mont_q = {
    .m = {
        0xd99b601ebfaa17fbull, 0x203177c42b1eb3a1ull, 0xff38fa08e2615f6cull, 0xa7e535abd5a5c7c7ull,
        0xa9f3cf14870f026aull, 0x6dabfd2a0c614aa0ull, 0x144ab173595a0738ull, 0x389b1921cc9ad335ull,
        0x4d5b49fd2999a9b4ull, 0x39e46ce7fdf22286ull, 0xc8a1cc354c69672cull, 0xbd02aac9f8bf03c6ull,
        0x6fa6b8d62cf8068bull, 0x905b0338672d2098ull, 0x9971846636b4195eull, 0x265eaec7c2958ff6ull},
    .m0inv = 0xb8a1d17d46eaa4cdull,
    .one = {
        0xe65bbf478203701eull, 0x3ed73166fd47ca34ull, 0x04aa23cab1b7c377ull, 0x10a0bdf8fe1d5150ull,
        0x04492584d5a5f180ull, 0x6df81103b5b8403cull, 0x863fd74be7e3d4adull, 0xac5d6935345f0cc1ull,
        0x2fdc4411066605c6ull, 0xa4a572900c5330daull, 0x4c3536c0358794f6ull, 0x91efff442b85e957ull,
        0x6217aafaf22fd8b9ull, 0x9dddecad94f13c6dull, 0x6756e59ab7c767c8ull, 0x19c7e751707ea038ull},
    .r2 = {
        0xda18351aab65130dull, 0x53d2a86ff2ea3168ull, 0x9cf2730004b7e984ull, 0x7df33bab26caacf6ull,
        0xbd9ffef9a4e7d523ull, 0xe4baf1d588717ce0ull, 0x24b1bbc4bc93533aull, 0x9ad2dc261db57a34ull,
        0x422970b3838d8f48ull, 0x890491f5401df1e3ull, 0xf3d2a16bbcb013beull, 0x9b9de76d5595e10bull,
        0x58d7c6f9f724bb45ull, 0xb2074f8f97cac807ull, 0x76271e07c569cadcull, 0x14274810a10f335full},
};

/* P, generator of E(F_p)[q], affine x, Montgomery form. */
const uint64_t ms_sakke_px_mont[16] = {
        0xbf9c7ec6e0162bc2ull, 0xddecc6e310a89289ull, 0x5d599df09e499d81ull, 0x9a96ea286d358218ull,
        0x01aec7d370c5f8dbull, 0xe72e49958cf5d066ull, 0xc2e7297d3e91d7f8ull, 0x8621db92da9f2f5aull,
        0x4b26c8675a5679edull, 0x233385df2c56aac1ull, 0xb88e74d4c6a13f99ull, 0x1214b173ffa8ec11ull,
        0xa0386a271f3f9fefull, 0xbd9b1b4ec0e7b44eull, 0xafe528dceecd3496ull, 0x8dfff96a1c49f80bull};
/* P, affine y, Montgomery form. */
const uint64_t ms_sakke_py_mont[16] = {
        0xb4a4753ac03c0c83ull, 0x68e69d18abcdcd75ull, 0xe3839b88f775b649ull, 0x803f949abf58f352ull,
        0x5f702679bd0bc15cull, 0x85bf5d168ff298c2ull, 0x3f6ebd98c6c7976eull, 0x20618af445e3e1b4ull,
        0x67d5598e54e64093ull, 0xb047283b504fed9eull, 0x450cabfd70d87517ull, 0x47d628bf3f5addbeull,
        0x0037ef3078cb4ccaull, 0x4e148d3c6b1c4908ull, 0xe256d3294fcfd837ull, 0x2aa1207bde3c01f3ull};
/* g = <P, P> as its PF_p representative, Montgomery form. */
const uint64_t ms_sakke_g_mont[16] = {
        0x170a46d2335c1685ull, 0xeac9e971e1007a58ull, 0x40e8f3df43ca4a73ull, 0x2646f81582642475ull,
        0x3af49bb4b36576d1ull, 0xd89e2d1472bf1afbull, 0x27be882c2fd151e6ull, 0xaddedc858f88717cull,
        0xd6d859bf16ac6c6full, 0x0e741a1b2d8eae58ull, 0x6faf7a0061c1f30dull, 0x66dbd09a9b67e096ull,
        0x21f11c067d3b4f7dull, 0x6152ba02c727c98eull, 0xafd58891e86cb221ull, 0x59e93c6a6bd3baf4ull};
