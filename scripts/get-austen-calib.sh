#!/bin/sh
# Calibration text for the bytelm-austen models: the beginning of Pride and Prejudice, cut from
# Debian's r-cran-janeaustenr (the package the models' training text and the held-out Emma tail
# ../shared/corpora/austen-emma-valid.txt come from). A different novel than the eval text, so
# calibration never sees evaluation text.
#
# usage: scripts/get-austen-calib.sh OUT.txt [BYTES]   (default 65536 bytes, cut at a line end)
#
# Needs only Debian packages: apt (apt-get download; run `apt-get update` once on a fresh
# system), dpkg (dpkg-deb -x) and python3 (standard library only). No R: the package ships the
# novels as R lazy-load data (data/Rdata.rdb, one zlib-compressed R serialization per novel,
# indexed by the gzip'd Rdata.rdx); the small reader below parses the XDR serialization of a
# character vector (one string per line). Lines are joined with "\n", exactly as the Emma tail.
set -eu
out=${1:?usage: get-austen-calib.sh OUT.txt [BYTES]}
bytes=${2:-65536}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download r-cran-janeaustenr >/dev/null)
dpkg-deb -x "$tmp"/r-cran-janeaustenr_*_all.deb "$tmp/x"
data="$tmp/x/usr/lib/R/site-library/janeaustenr/data"
outdir=$(dirname "$out")
python3 - "$data" "$out" "$bytes" "$outdir" <<'PY'
import gzip, os, struct, sys, tempfile, zlib

class RReader:
    """Reads R's XDR serialization (format 2 or 3): the types a data package uses."""
    def __init__(self, b):
        self.b, self.p, self.refs = b, 0, []
    def int(self):
        v = struct.unpack('>i', self.b[self.p:self.p + 4])[0]
        self.p += 4
        return v
    def item(self):
        f = self.int()
        t, attr, tag = f & 0xFF, f & (1 << 9), f & (1 << 10)
        if t in (254, 253, 242, 241, 251, 252):  # NULL, environments, missing, unbound
            return None
        if t == 255:  # reference to an earlier symbol
            k = f >> 8
            return self.refs[(k if k else self.int()) - 1]
        if t == 1:  # symbol
            v = self.item()
            self.refs.append(v)
            return v
        if t in (2, 6, 17):  # pairlist: {tag: value}
            out = {}
            while True:
                if attr:
                    self.item()
                k = self.item() if tag else None
                out[k] = self.item()
                f = self.int()
                t, attr, tag = f & 0xFF, f & (1 << 9), f & (1 << 10)
                if t == 254:
                    return out
                if t not in (2, 6, 17):
                    raise ValueError('unexpected pairlist tail type %d' % t)
        if t == 9:  # CHARSXP
            n = self.int()
            if n == -1:
                return None
            v = self.b[self.p:self.p + n].decode('utf-8')
            self.p += n
            return v
        if t in (10, 13):
            n = self.int()
            v = list(struct.unpack('>%di' % n, self.b[self.p:self.p + 4 * n]))
            self.p += 4 * n
        elif t == 14:
            n = self.int()
            v = list(struct.unpack('>%dd' % n, self.b[self.p:self.p + 8 * n]))
            self.p += 8 * n
        elif t in (16, 19, 20):
            v = [self.item() for _ in range(self.int())]
        else:
            raise ValueError('unsupported R type %d' % t)
        if attr:
            a = self.item()
            if t == 19 and isinstance(a, dict) and 'names' in a:
                v = dict(zip(a['names'], v))
        return v
    def top(self):
        if self.b[:2] != b'X\n':
            raise ValueError('not an XDR R serialization')
        self.p = 2
        version = self.int()
        self.int(); self.int()
        if version == 3:
            n = self.int()  # native encoding name
            self.p += n
        return self.item()

data, out, limit, outdir = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
index = RReader(gzip.open(os.path.join(data, 'Rdata.rdx')).read()).top()
off, length = index['variables']['prideprejudice']
with open(os.path.join(data, 'Rdata.rdb'), 'rb') as f:
    f.seek(off)
    blob = f.read(length)
lines = RReader(zlib.decompress(blob[4:])).top()  # 4-byte length, then a zlib stream
text, n = [], 0
for line in lines:
    line = line or ''
    if n + len(line.encode('utf-8')) + 1 > limit:
        break
    text.append(line)
    n += len(line.encode('utf-8')) + 1
fd, tmp = tempfile.mkstemp(dir=outdir or '.', prefix='.austen-calib.')
with os.fdopen(fd, 'w', encoding='utf-8') as f:
    f.write('\n'.join(text) + '\n')
os.replace(tmp, out)
print('%s: %d lines, %d bytes of Pride and Prejudice' % (out, len(text), n))
PY
