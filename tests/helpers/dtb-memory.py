#!/usr/bin/env python3
"""Print the memory nodes of a flattened device tree (what QEMU's HMP dumpdtb writes):
one line per top-level memory@ node, "memory@ADDR START SIZE NODE" in hex (NODE is the
last cell of ibm,associativity, or -). The suite's own reader: no dtc needed."""
import struct
import sys

FDT_BEGIN_NODE, FDT_END_NODE, FDT_PROP, FDT_NOP, FDT_END = 1, 2, 3, 4, 9


def memory_nodes(blob):
    magic, _total, off_struct, off_strings = struct.unpack_from(">IIII", blob, 0)
    if magic != 0xD00DFEED:
        raise ValueError("not a flattened device tree")
    pos, path, props, found = off_struct, [], {}, []
    while True:
        (token,) = struct.unpack_from(">I", blob, pos)
        pos += 4
        if token == FDT_BEGIN_NODE:
            end = blob.index(b"\0", pos)
            path.append(blob[pos:end].decode())
            pos = (end + 4) & ~3
            props = {}
        elif token == FDT_PROP:
            length, nameoff = struct.unpack_from(">II", blob, pos)
            pos += 8
            name = blob[off_strings + nameoff:blob.index(b"\0", off_strings + nameoff)].decode()
            props[name] = blob[pos:pos + length]
            pos = (pos + length + 3) & ~3
        elif token == FDT_END_NODE:
            if len(path) == 2 and path[1].startswith("memory@") and "reg" in props:
                start, size = struct.unpack(">QQ", props["reg"][:16])
                assoc = props.get("ibm,associativity", b"")
                node = "%x" % struct.unpack(">I", assoc[-4:])[0] if len(assoc) >= 8 else "-"
                found.append((path[1], start, size, node))
            path.pop()
            props = {}
        elif token == FDT_NOP:
            continue
        elif token == FDT_END:
            return found
        else:
            raise ValueError("bad token %d" % token)


def main():
    with open(sys.argv[1], "rb") as f:
        blob = f.read()
    for name, start, size, node in memory_nodes(blob):
        print("%s 0x%x 0x%x %s" % (name, start, size, node))


if __name__ == "__main__":
    main()
