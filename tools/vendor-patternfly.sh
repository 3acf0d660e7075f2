#!/usr/bin/env bash
# Build cockpit/vendor/patternfly.css from PatternFly 4 (the major version Cockpit 287's
# own pages use), fetched from the npm registry at a pinned version and checked against
# the registry's published integrity. Kept in the tree, so that building rma-broker needs
# no network; run this again only to change the version.
#
# What goes in: the base (variables, the dark theme's .pf-theme-dark) without its
# @font-face rules, since the page uses the Red Hat fonts that cockpit ships under
# /cockpit/static/fonts (as cockpit's own pages do); then the components and layouts
# that the page uses.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=4.224.5
INTEGRITY=sha512-io0huj+LCP5FgDZJDaLv1snxktTYs8iCFz/W1VDRneYoebNHLmGfQdF7Yn8bS6PF7qmN6oJKEBlq3AjmmE8vdA==
PARTS=(
    components/Alert/alert.css components/Button/button.css components/Card/card.css
    components/DescriptionList/description-list.css components/EmptyState/empty-state.css
    components/Label/label.css components/Table/table.css components/Title/title.css
    components/Page/page.css components/Content/content.css
    layouts/Flex/flex.css layouts/Gallery/gallery.css layouts/Stack/stack.css
)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
curl -fsS -o "$work/pf.tgz" "https://registry.npmjs.org/@patternfly/patternfly/-/patternfly-$VERSION.tgz"
got="sha512-$(openssl dgst -sha512 -binary "$work/pf.tgz" | base64 -w0)"
if [ "$got" != "$INTEGRITY" ]; then
    echo "vendor-patternfly: the tarball's integrity is $got, not the pinned $INTEGRITY" >&2
    exit 1
fi
tar -xzf "$work/pf.tgz" -C "$work"
out=cockpit/vendor/patternfly.css
{
    printf '/* PatternFly %s (MIT, https://github.com/patternfly/patternfly), from the npm registry,\n' "$VERSION"
    printf ' * %s; built by tools/vendor-patternfly.sh: patternfly-base.css without its\n' "$INTEGRITY"
    printf ' * @font-face rules, then: %s */\n' "${PARTS[*]}"
    # @font-face blocks are one rule each, "{ ... }" over several lines.
    awk '/^@font-face/ {skip = 1} !skip {print} skip && /^}/ {skip = 0}' "$work/package/patternfly-base.css"
    for p in "${PARTS[@]}"; do
        cat "$work/package/$p"
    done
} >"$out"
echo "vendor-patternfly: wrote $out ($(wc -c <"$out") bytes) from PatternFly $VERSION"
