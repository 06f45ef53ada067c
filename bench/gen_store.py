#!/usr/bin/env python3
"""Writes a package store shaped like pnpm's: one gzipped tarball per package, each holding
many small, compressible text files (JavaScript-like lines), for bench/build_cache.sh.

usage: gen_store.py DIR [PACKAGES] [TOTAL_MIB] [SEED]

PACKAGES tarballs (default 1500) with TOTAL_MIB MiB (default 256) of files in all, 5 to 45
files each (about 25 on average, so about 37,000 files), sizes spread around 7 KiB. The
same SEED gives the same store. Prints a one-line summary.
"""
import io
import os
import random
import sys
import tarfile

out = sys.argv[1]
packages = int(sys.argv[2]) if len(sys.argv) > 2 else 1500
total = (int(sys.argv[3]) if len(sys.argv) > 3 else 256) * 1048576
rng = random.Random(int(sys.argv[4]) if len(sys.argv) > 4 else 27)

# A pool of JavaScript-like text: identifiers from a vocabulary, a few line templates. It
# compresses about as well as real package code (gzip: 3-4x); each file is a slice of it.
letters = "abcdefghijklmnopqrstuvwxyz"
vocab = ["".join(rng.choice(letters) for _ in range(rng.randint(3, 12))) for _ in range(4000)]
templates = [
    "  const {} = require('{}');\n",
    "  function {}({}, {}) {{ return {}.{}({}); }}\n",
    "  if ({} === {}) {{ {}.{} = {}; }}\n",
    "  exports.{} = {}.{}({}, '{}');\n",
    "  // {} {} {} {} {}\n",
    "  {}.prototype.{} = function ({}) {{ return this.{}; }};\n",
]
lines = []
size = 0
while size < 8 * 1048576:
    t = rng.choice(templates)
    line = t.format(*(rng.choice(vocab) for _ in range(t.count("{}"))))
    lines.append(line)
    size += len(line)
pool = "".join(lines).encode()

os.makedirs(out, exist_ok=True)
counts = [rng.randint(5, 45) for _ in range(packages)]
nfiles = sum(counts)
mean = total / nfiles
written = files = 0
for p, count in enumerate(counts):
    name = f"{rng.choice(vocab)}-{p}"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=6) as tar:
        for f in range(count):
            n = max(64, min(int(rng.lognormvariate(0, 1.0) * mean / 1.65), 2 * 1048576))
            off = rng.randrange(0, len(pool) - n)
            data = f"/* {name} file {f} */\n".encode() + pool[off:off + n]
            info = tarfile.TarInfo(f"package/{'lib/' if f % 3 else ''}{rng.choice(vocab)}-{f}.js")
            info.size = len(data)
            info.mtime = 499162500  # fixed, as npm tarballs have
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
            written += len(data)
            files += 1
    with open(os.path.join(out, f"{name}.tgz"), "wb") as fh:
        fh.write(buf.getvalue())
compressed = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
print(f"{packages} tarballs, {files} files, {written / 1048576:.1f} MiB unpacked, {compressed / 1048576:.1f} MiB gzipped")
