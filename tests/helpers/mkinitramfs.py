#!/usr/bin/env python3
"""mkinitramfs.py ROOT OUT.gz: a gzip'd newc cpio of the files under ROOT (modes kept,
owner root), the initramfs format Linux unpacks. The suite's own: no cpio needed."""
import gzip
import os
import stat
import sys


def main():
    root, out_path = sys.argv[1], sys.argv[2]
    ino = 1
    with gzip.open(out_path, "wb") as out:
        def entry(name, mode, nlink, data=b""):
            nonlocal ino
            header = "070701" + "".join("%08x" % v for v in (
                ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0))
            ino += 1
            blob = header.encode() + name.encode() + b"\0"
            blob += b"\0" * (-len(blob) % 4)
            out.write(blob + data + b"\0" * (-len(data) % 4))

        for directory, _dirs, files in sorted(os.walk(root)):
            rel = os.path.relpath(directory, root)
            if rel != ".":
                entry(rel, stat.S_IFDIR | 0o755, 2)
            for name in sorted(files):
                path = os.path.join(directory, name)
                with open(path, "rb") as f:
                    entry(os.path.relpath(path, root), stat.S_IFREG | (os.stat(path).st_mode & 0o777), 1, f.read())
        entry("TRAILER!!!", 0, 1)


if __name__ == "__main__":
    main()
