#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""
make_archives.py OUTDIR [--seeds]

Writes the archives that tests/unit/test_archive.c unpacks: well-formed
packages in each format (zip, tar.gz, tar.xz, tar.bz2, tar.zst) and a
corpus of hostile ones (zip-slip, absolute paths, symlink and hard-link
escapes, devices, FIFOs, bombs, too many entries, truncated and corrupt
archives).  Nothing big is kept in the tree: the 1 GiB bombs compress to
about a MiB and are made here, at test time.

Zip files are written by hand (zip_write below) rather than with zipfile,
so that a test can give an entry any mode, a symlink, or a size that lies.
tar.zst needs the zstd program; without it that file is not made.

With --seeds, writes instead a few tiny archives of each format for the
fuzz corpus (tests/fuzz/corpus/archive/).
"""

import bz2
import gzip
import io
import lzma
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import zlib

GIB = 1 << 30
MIB = 1 << 20


# --- zip -----------------------------------------------------------------

def zip_write(path, entries):
    """
    Writes a zip of entries, each a dict: name, data (bytes), mode (full
    st_mode, e.g. 0o100644 or 0o120777 for a symlink whose data is the
    target), and optionally deflate (bool), or raw (compressed bytes
    given ready, with crc and size).  Sizes above 4 GiB are not needed.
    """
    out = io.BytesIO()
    central = []
    for e in entries:
        name = e["name"].encode()
        if "raw" in e:
            method, comp = 8, e["raw"]
            crc, size = e["crc"], e["size"]
        else:
            data = e.get("data", b"")
            crc, size = zlib.crc32(data), len(data)
            if e.get("deflate", True) and data:
                c = zlib.compressobj(6, zlib.DEFLATED, -15)
                method, comp = 8, c.compress(data) + c.flush()
            else:
                method, comp = 0, data
        offset = out.tell()
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method,
                              0, 0x21, crc, len(comp), size, len(name), 0))
        out.write(name)
        out.write(comp)
        central.append(struct.pack(
            "<IHHHHHHIIIHHHHHII", 0x02014B50, (3 << 8) | 20, 20, 0, method,
            0, 0x21, crc, len(comp), size, len(name), 0, 0, 0, 0,
            (e.get("mode", 0o100644) << 16) & 0xFFFFFFFF, offset) + name)
    cd_offset = out.tell()
    for c in central:
        out.write(c)
    cd_size = out.tell() - cd_offset
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(central),
                          len(central), cd_size, cd_offset, 0))
    with open(path, "wb") as f:
        f.write(out.getvalue())


def zeros_deflate(n):
    """
    A raw deflate stream of n zero bytes (n a multiple of 1 MiB), made
    from one compressed MiB repeated: after a full flush a deflate
    compressor's output is byte-aligned and refers to nothing before it.
    Returns (stream, crc32).
    """
    mib = bytes(MIB)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    piece = c.compress(mib) + c.flush(zlib.Z_FULL_FLUSH)
    end = zlib.compressobj(9, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)
    crc = 0
    for _ in range(n // MIB):
        crc = zlib.crc32(mib, crc)
    return piece * (n // MIB) + end, crc


# --- cpio ----------------------------------------------------------------

def cpio_newc(path, members):
    """
    Writes a cpio (newc) of members: (name, st_mode, ino, nlink, data).
    Links of one file share ino; cpio puts the data on the last of them.
    """
    out = io.BytesIO()

    def pad(n):
        out.write(bytes(-n % 4))

    for name, mode, ino, nlink, data in members + [
            ("TRAILER!!!", 0, 0, 1, b"")]:
        name = name.encode() + b"\0"
        fields = (ino, mode, 0, 0, nlink, 1700000000, len(data), 0, 0, 0, 0,
                  len(name), 0)
        out.write(b"070701" + b"".join(b"%08X" % f for f in fields) + name)
        pad(110 + len(name))
        out.write(data)
        pad(len(data))
    with open(path, "wb") as f:
        f.write(out.getvalue())


# --- tar -----------------------------------------------------------------

def tar_bytes(members):
    """
    A tar archive (bytes, PAX format) of members, each a dict: name, type
    ("file", "dir", "symlink", "hardlink", "chr", "blk", "fifo"), data,
    mode, target.
    """
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as t:
        for m in members:
            ti = tarfile.TarInfo(m["name"])
            ti.mtime = 1700000000
            kind = m.get("type", "file")
            ti.mode = m.get("mode", 0o755 if kind == "dir" else 0o644)
            data = None
            if kind == "file":
                data = m.get("data", b"")
                ti.size = len(data)
            elif kind == "dir":
                ti.type = tarfile.DIRTYPE
            elif kind == "symlink":
                ti.type = tarfile.SYMTYPE
                ti.linkname = m["target"]
            elif kind == "hardlink":
                ti.type = tarfile.LNKTYPE
                ti.linkname = m["target"]
            elif kind in ("chr", "blk"):
                ti.type = tarfile.CHRTYPE if kind == "chr" else tarfile.BLKTYPE
                ti.devmajor, ti.devminor = 1, 3
            elif kind == "fifo":
                ti.type = tarfile.FIFOTYPE
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def tar_many(n):
    """
    A tar of n empty files f000000, f000001...: one header made by tarfile,
    copied with the name and checksum changed (tarfile itself takes
    seconds for 100,000 entries).
    """
    header = bytearray(tarfile.TarInfo("f000000").tobuf(tarfile.USTAR_FORMAT))
    header[0:100] = bytes(100)
    header[148:156] = b" " * 8
    base = sum(header)
    out = bytearray()
    for i in range(n):
        name = b"f%06d" % i
        header[0:len(name)] = name
        header[148:156] = b"%06o\0 " % (base + sum(name))
        out += header
    return bytes(out + bytes(1024))


def compress(data, kind):
    """data compressed as kind ("gz", "xz", "bz2", "zst"), or None."""
    if kind == "gz":
        return gzip.compress(data, 6, mtime=0)
    if kind == "xz":
        return lzma.compress(data)
    if kind == "bz2":
        return bz2.compress(data)
    if kind == "zst":
        if shutil.which("zstd") is None:
            return None
        return subprocess.run(["zstd", "-q", "-c"], input=data,
                              stdout=subprocess.PIPE, check=True).stdout
    raise ValueError(kind)


def write(path, data):
    if data is not None:
        with open(path, "wb") as f:
            f.write(data)


def tar_zeros_gz(path, n):
    """A tar.gz whose one member "zeros" holds n zero bytes."""
    ti = tarfile.TarInfo("zeros")
    ti.size, ti.mode, ti.mtime = n, 0o644, 1700000000
    header = ti.tobuf(tarfile.USTAR_FORMAT)
    trailer = bytes(1024)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(header) + c.flush(zlib.Z_FULL_FLUSH)
    body, _ = zeros_deflate(n)
    body = body[:-2]  # drop the final empty block: more follows
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    tail = c.compress(trailer) + c.flush(zlib.Z_FINISH)
    crc, mib = zlib.crc32(header), bytes(MIB)
    for _ in range(n // MIB):
        crc = zlib.crc32(mib, crc)
    crc = zlib.crc32(trailer, crc)
    total = len(header) + n + len(trailer)
    with open(path, "wb") as f:
        f.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff")
        f.write(head + body + tail)
        f.write(struct.pack("<II", crc & 0xFFFFFFFF, total & 0xFFFFFFFF))


# --- the corpus ----------------------------------------------------------

def good_members():
    """The well-formed package, the same in every format."""
    return [
        {"name": "app/", "type": "dir", "mode": 0o750},
        {"name": "app/bin/", "type": "dir", "mode": 0o755},
        {"name": "app/bin/run", "data": b"#!/bin/sh\necho hello\n",
         "mode": 0o755},
        {"name": "app/bin/setuid", "data": b"s", "mode": 0o4755},
        {"name": "app/bin/setgid", "data": b"g", "mode": 0o2711},
        {"name": "app/tmp/", "type": "dir", "mode": 0o1777},
        {"name": "app/empty", "data": b"", "mode": 0o600},
        {"name": "app/lib/libx.so.1", "data": b"\x7fELF" * 1000,
         "mode": 0o644},
        {"name": "app/lib/libx.so", "type": "symlink",
         "target": "libx.so.1"},
        {"name": "app/bin/lib", "type": "symlink", "target": "../lib"},
        {"name": "app/top", "type": "symlink", "target": "../app/./bin"},
        {"name": "app/ro/", "type": "dir", "mode": 0o555},
        {"name": "app/ro/file", "data": b"read-only dir\n", "mode": 0o444},
        {"name": "app/shut/", "type": "dir", "mode": 0o600},
        {"name": "app/shut/sub/", "type": "dir", "mode": 0o755},
        {"name": "./app/a/b/c/d/deep.txt", "data": b"deep\n"},
        {"name": "app/big", "data": os.urandom(300 * 1024)},
        {"name": "app/dup", "data": b"first\n"},
        {"name": "app/dup", "data": b"second\n"},
    ]


def zip_entries(members):
    """members as zip_write entries (hard links have no zip form)."""
    out = []
    for m in members:
        kind = m.get("type", "file")
        if kind == "file":
            out.append({"name": m["name"], "data": m.get("data", b""),
                        "mode": 0o100000 | m.get("mode", 0o644)})
        elif kind == "dir":
            out.append({"name": m["name"], "data": b"",
                        "mode": 0o040000 | m.get("mode", 0o755)})
        elif kind == "symlink":
            out.append({"name": m["name"], "data": m["target"].encode(),
                        "mode": 0o120777, "deflate": False})
        else:
            raise ValueError(kind)
    return out


def hostile_tar():
    """name -> members of the hostile tar archives."""
    return {
        "slip": [{"name": "a/../../../evil", "data": b"x"}],
        "absolute": [{"name": "/tmp/batchd-archive-evil", "data": b"x"}],
        "symlink-abs": [{"name": "etc", "type": "symlink",
                         "target": "/etc"}],
        "symlink-up": [{"name": "a/up", "type": "symlink",
                        "target": "../../evil"}],
        "symlink-via-link": [
            {"name": "here", "type": "symlink", "target": "."},
            {"name": "sneak", "type": "symlink", "target": "here/../evil"}],
        "write-through-link": [
            {"name": "real/", "type": "dir"},
            {"name": "link", "type": "symlink", "target": "real"},
            {"name": "link/file", "data": b"x"}],
        "hardlink-out": [{"name": "h", "type": "hardlink",
                          "target": "../../../etc/passwd"}],
        "hardlink-abs": [{"name": "h", "type": "hardlink",
                          "target": "/etc/passwd"}],
        "hardlink-later": [
            {"name": "h", "type": "hardlink", "target": "later"},
            {"name": "later", "data": b"x"}],
        "hardlink-symlink": [
            {"name": "a/b/", "type": "dir"},
            {"name": "a/b/l", "type": "symlink", "target": "../../x"},
            {"name": "top", "type": "hardlink", "target": "a/b/l"}],
        "deep": [{"name": "d/" * 128 + "f", "data": b"x"}],
        "device": [{"name": "null", "type": "chr"}],
        "block": [{"name": "sda", "type": "blk"}],
        "fifo": [{"name": "pipe", "type": "fifo"}],
    }


def make_corpus(out):
    members = good_members()
    tar = tar_bytes(members + [
        {"name": "app/hard", "type": "hardlink", "target": "app/bin/run"}])
    for kind in ("gz", "xz", "bz2", "zst"):
        write(os.path.join(out, "good.tar." + kind), compress(tar, kind))
    zip_write(os.path.join(out, "good.zip"), zip_entries(members))

    # Two links to one file, its data on the second.
    cpio_newc(os.path.join(out, "hardlink-data.cpio"), [
        ("first", 0o100640, 7, 2, b""),
        ("dir/second", 0o100640, 7, 2, b"shared data\n")])

    # Entries that a later entry replaces, through no link.
    write(os.path.join(out, "replace-link.tar.gz"), compress(tar_bytes([
        {"name": "target", "data": b"keep\n"},
        {"name": "l", "type": "symlink", "target": "target"},
        {"name": "l", "data": b"replaced\n"}]), "gz"))

    for name, ms in hostile_tar().items():
        write(os.path.join(out, name + ".tar.gz"),
              compress(tar_bytes(ms), "gz"))
    zip_write(os.path.join(out, "slip.zip"),
              [{"name": "../../evil", "data": b"x"}])
    # Windows tools write a backslash as the separator; libarchive reads
    # it as "/".
    zip_write(os.path.join(out, "slip-backslash.zip"),
              [{"name": "..\\..\\evil", "data": b"x"}])
    zip_write(os.path.join(out, "absolute.zip"),
              [{"name": "/tmp/batchd-archive-evil", "data": b"x"}])
    zip_write(os.path.join(out, "symlink-up.zip"),
              [{"name": "l", "data": b"../evil", "mode": 0o120777,
                "deflate": False}])
    zip_write(os.path.join(out, "fifo.zip"),
              [{"name": "pipe", "data": b"", "mode": 0o010644}])

    # 1 GiB of zeros, a MiB compressed; the zip also in a version whose
    # headers say 1 KiB, so that only the count while writing stops it.
    stream, crc = zeros_deflate(GIB)
    zip_write(os.path.join(out, "bomb.zip"),
              [{"name": "zeros", "raw": stream, "crc": crc, "size": GIB}])
    zip_write(os.path.join(out, "bomb-lies.zip"),
              [{"name": "zeros", "raw": stream, "crc": crc, "size": 1024}])
    tar_zeros_gz(os.path.join(out, "bomb.tar.gz"), GIB)

    write(os.path.join(out, "many.tar.gz"),
          gzip.compress(tar_many(100000), 1, mtime=0))

    # Truncated in the middle of app/big's data, and not an archive.
    for kind, ext in (("gz", "tar.gz"), ("xz", "tar.xz")):
        data = compress(tar, kind)
        write(os.path.join(out, "truncated." + ext), data[:len(data) // 2])
    with open(os.path.join(out, "good.zip"), "rb") as f:
        data = f.read()
    write(os.path.join(out, "truncated.zip"), data[:len(data) // 2])
    write(os.path.join(out, "garbage.bin"), os.urandom(4096))
    write(os.path.join(out, "empty.bin"), b"")


def tar_trim(data):
    """A tar without the padding to tarfile's 10 KiB record."""
    data = data.rstrip(b"\0")
    return data + bytes(-len(data) % 512 + 1024)


def make_seeds(out):
    """A few tiny archives of each format for the fuzzer to start from."""
    members = [
        {"name": "d/", "type": "dir", "mode": 0o755},
        {"name": "d/f", "data": b"hello\n", "mode": 0o4755},
        {"name": "d/l", "type": "symlink", "target": "f"},
        {"name": "d/u", "type": "symlink", "target": "../d/f"},
    ]
    tar = tar_bytes(members + [
        {"name": "h", "type": "hardlink", "target": "d/f"}])
    write(os.path.join(out, "plain.tar"), tar_trim(tar))
    for kind in ("gz", "xz", "bz2", "zst"):
        write(os.path.join(out, "small.tar." + kind), compress(tar, kind))
    zip_write(os.path.join(out, "small.zip"), zip_entries(members))
    cpio_newc(os.path.join(out, "links.cpio"), [
        ("a", 0o100644, 7, 2, b""), ("d/b", 0o100755, 7, 2, b"data\n"),
        ("d/l", 0o120777, 8, 1, b"b")])
    for name in ("slip", "symlink-via-link", "fifo", "hardlink-symlink"):
        write(os.path.join(out, name + ".tar"),
              tar_trim(tar_bytes(hostile_tar()[name])))


def main():
    if len(sys.argv) not in (2, 3) or (len(sys.argv) == 3 and
                                       sys.argv[2] != "--seeds"):
        sys.stderr.write(__doc__)
        return 2
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    if len(sys.argv) == 3:
        make_seeds(out)
    else:
        make_corpus(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
