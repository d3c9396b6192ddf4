#!/usr/bin/env python3
"""TEST-ONLY stand-in for the group management server until `mikeysakke group` exists:
writes a group key file (call/group_keys_stub.h's format, mode 0600) with a random GMK,
a GMK-ID with the GMK purpose tag (0) and a random RAND, and prints the GMK in hex.
Usage: make_group_key.py OUT GROUP_URI"""
import os
import secrets
import sys

out, group = sys.argv[1], sys.argv[2]
gmk = secrets.token_bytes(16)
gmk_id = secrets.randbits(28)  # top 4 bits 0: the GMK purpose tag
rand = secrets.token_bytes(16)
text = "group %s\ngmk %s\ngmk-id %08x\nrand %s\n" % (group, gmk.hex(), gmk_id, rand.hex())
fd = os.open(out + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(fd, "w") as f:
    f.write(text)
os.rename(out + ".tmp", out)
print(gmk.hex())
