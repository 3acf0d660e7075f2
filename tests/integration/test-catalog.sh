#!/usr/bin/env bash
# Integration: every kind of event rma-brokerd logs has a MESSAGE_ID made with
# `systemd-id128 new` and an entry in the journal's catalog (catalog/rma-broker.catalog),
# and journalctl, given the catalog where `meson install` puts it, knows every one of
# them. Into a temporary root (journalctl --root): the host's catalog is untouched.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../lib/tap.sh"
require_commands journalctl python3

D=$(mktemp -d /tmp/rma-catalog.XXXXXX)
trap 'rm -rf "$D"' EXIT
CATALOG=$SOURCE_DIR/catalog/rma-broker.catalog

# The ids as common/log.h defines them: NAME ID per line.
defined=$(sed -n 's/^#define \(RMA_MESSAGE_[A-Z_]*\) *"\([^"]*\)".*/\1 \2/p' "$SOURCE_DIR/common/log.h")
ids=$(cut -d' ' -f2 <<<"$defined" | sort)
check "common/log.h defines the ids (at least the 6 of 0.2.0 and Reload's, ForgetRegion's, re-adoption's, pinning's)" \
    test "$(wc -l <<<"$ids")" -ge 10
check_eq "every id is 32 lowercase hex digits" "" "$(grep -vxE '[0-9a-f]{32}' <<<"$ids")"
check_eq "no two kinds share an id" "" "$(uniq -d <<<"$ids")"
check_eq "no two names share one" "" "$(cut -d' ' -f1 <<<"$defined" | sort | uniq -d)"
# systemd-id128 new makes a random (version 4, variant 1) UUID; a hand-made series does
# not look like that, and random ids share no 6-digit prefix or suffix (odds ~1e-5).
check_eq "each looks made by systemd-id128 new (UUID v4: digit 13 is 4, digit 17 one of 89ab)" "" \
    "$(grep -vxE '[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}' <<<"$ids")"
check_eq "none is hand-numbered (no shared 6-digit prefix or suffix)" "" \
    "$(cut -c1-6 <<<"$ids" | sort | uniq -d; rev <<<"$ids" | cut -c1-6 | sort | uniq -d)"

# What the code logs: every RMA_MESSAGE_* it names is defined, every defined one is logged
# somewhere, and no MESSAGE_ID is written out by hand in the sources.
sources=$(cd "$SOURCE_DIR" && git ls-files 2>/dev/null | grep -E '^(common|daemon|client|libvirt-plugin|rmactl|openstack)/.*\.(c|h|py)$' ||
    find common daemon client libvirt-plugin rmactl openstack -name '*.[ch]' -o -name '*.py')
used=$(cd "$SOURCE_DIR" && grep -ohE 'RMA_MESSAGE_[A-Z_]+' $sources | sort -u)
check_eq "every RMA_MESSAGE_* the code uses is defined" "" \
    "$(comm -23 <(echo "$used") <(cut -d' ' -f1 <<<"$defined" | sort))"
logged=$(cd "$SOURCE_DIR" && grep -ohE 'RMA_MESSAGE_[A-Z_]+' $(grep -v '^common/log\.h$' <<<"$sources") | sort -u)
check_eq "every defined id is logged by some code" "" \
    "$(comm -23 <(cut -d' ' -f1 <<<"$defined" | sort) <(echo "$logged"))"
check_eq "no MESSAGE_ID is written out by hand elsewhere" "" \
    "$(cd "$SOURCE_DIR" && grep -nE 'MESSAGE_ID=[0-9a-f]{6}|"[0-9a-f]{32}"' $sources | grep -v '^common/log\.h:')"

# The catalog: one entry per id, none for an id the code does not have, each with a
# subject, the project's name and a text that says what to do.
entries=$(sed -n 's/^-- \([0-9a-f]*\)$/\1/p' "$CATALOG" | sort)
check_eq "the catalog has an entry for every id, and for no other" "$ids" "$entries"
check_eq "every entry has a Subject:, Defined-By: rma-broker and a text" "" "$(python3 - "$CATALOG" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
for block in re.split(r"^-- ", text, flags=re.M)[1:]:
    head, _, body = block.partition("\n\n")
    mid = head.split("\n", 1)[0]
    if not re.search(r"^Subject: \S", head, re.M) or "\nDefined-By: rma-broker" not in head or len(body.strip()) < 80:
        print(mid)
PY
)"

# As installed: where meson puts the file, journalctl --update-catalog builds its database
# from it, and journalctl --list-catalog / --dump-catalog know every id.
dest=$(meson introspect "$BUILD_DIR" --installed | python3 -c '
import json, sys
print("\n".join(d for s, d in json.load(sys.stdin).items() if s.endswith("/rma-broker.catalog")))')
check_match "meson installs it to PREFIX/lib/systemd/catalog (where journalctl looks)" \
    "^(/usr|/usr/local)/lib/systemd/catalog/rma-broker\.catalog$" "$dest"
mkdir -p "$D/root$(dirname "${dest:-/usr/lib/systemd/catalog/x}")"
cp "$CATALOG" "$D/root${dest:-/usr/lib/systemd/catalog/rma-broker.catalog}"
out=$(journalctl --root="$D/root" --update-catalog 2>&1)
check "journalctl --update-catalog reads it without a complaint" test $? -eq 0 -a -z "$out"
[ -z "$out" ] || diag "$out"
listed=$(journalctl --root="$D/root" --list-catalog 2>&1)
check_eq "journalctl --list-catalog lists every id, each as rma-broker's" "$ids" \
    "$(sed -n 's/^\([0-9a-f]\{32\}\) rma-broker: .*/\1/p' <<<"$listed" | sort)"
missing=
for id in $ids; do
    journalctl --root="$D/root" --dump-catalog "$id" 2>/dev/null | grep -q "^Subject: " || missing+="$id "
done
check_eq "journalctl --dump-catalog ID shows each entry" "" "$missing"
tap_done
