#!/usr/bin/python3
"""The daemon's layers as its #include lines show them, for docs/architecture.md.

Reads every .c and .h under daemon/, maps each quoted include to the folder that holds
that header (daemon's own folders, or config/, policy/ and common/), and prints one row per
folder, highest layer first: its files, and the folders it includes. The order is
derived, not written down: a folder sits above every folder it includes, so a circle
between folders is reported and fails.

  tools/layer-diagram.py            print the diagram
  tools/layer-diagram.py --check F  exit 1 unless F holds the diagram as printed now
                                    (between the layer-diagram markers)
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEGIN = "<!-- layer-diagram: begin (tools/layer-diagram.py) -->"
END = "<!-- layer-diagram: end -->"
SHARED = ("config", "policy", "common")


def folder_of(path):
    rel = os.path.relpath(path, ROOT)
    parts = rel.split(os.sep)
    if parts[0] == "daemon":
        return "daemon" if len(parts) == 2 else "daemon/" + parts[1]
    return parts[0]


def scan():
    headers = {}
    for top in ("daemon",) + SHARED:
        for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
            for f in files:
                if f.endswith(".h"):
                    headers[f] = folder_of(os.path.join(dirpath, f))
    files, uses = {}, {}
    for dirpath, _, names in os.walk(os.path.join(ROOT, "daemon")):
        for f in sorted(names):
            if not f.endswith((".c", ".h")):
                continue
            path = os.path.join(dirpath, f)
            me = folder_of(path)
            files.setdefault(me, set()).add(f)
            uses.setdefault(me, set())
            for line in open(path, encoding="utf-8"):
                m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
                if m and os.path.basename(m.group(1)) in headers:
                    other = headers[os.path.basename(m.group(1))]
                    if other != me:
                        uses[me].add(other)
    return files, uses


def layer_order(uses):
    """Folders, lowest first; raises on a circle."""
    level, visiting = {}, set()

    def depth(folder):
        if folder in level:
            return level[folder]
        if folder in visiting:
            raise SystemExit("layer-diagram: circle through %s" % folder)
        visiting.add(folder)
        level[folder] = 1 + max([depth(o) for o in uses.get(folder, ()) if o.startswith("daemon")] or [0])
        visiting.discard(folder)
        return level[folder]

    for folder in uses:
        depth(folder)
    return sorted(uses, key=lambda f: (level[f], f)), level


def diagram():
    files, uses = scan()
    order, level = layer_order(uses)
    width = max(len(f) for f in order) + 1
    rows = ["The daemon's layers, highest first, as the #include lines show them.",
            "A folder includes only what its row names; meson gives it no other include path.",
            ""]
    for folder in reversed(order):
        below = sorted((o for o in uses[folder] if o.startswith("daemon")), key=lambda o: (-level[o], o))
        shared = sorted(o for o in uses[folder] if not o.startswith("daemon"))
        rows.append("%-*s L%d  %s" % (width, folder + "/", level[folder], " ".join(sorted(files[folder]))))
        rows.append("%-*s     includes: %s" % (width, "", ", ".join(o + "/" for o in below + shared) or "-"))
    return "\n".join(rows) + "\n"


def main():
    text = diagram()
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        doc = open(sys.argv[2], encoding="utf-8").read()
        m = re.search(re.escape(BEGIN) + r"\n```\n(.*?)```\n" + re.escape(END), doc, re.S)
        if not m or m.group(1) != text:
            print("1..1\nnot ok 1 - docs/architecture.md shows the layers the #include lines show")
            sys.stderr.write("%s: the layer diagram is not the one the code shows now; paste this "
                             "between its markers:\n%s" % (sys.argv[2], text))
            return 1
        print("1..1\nok 1 - docs/architecture.md shows the layers the #include lines show")
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
