#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Build batchd's Debian package from this source tree.
#
#   bash packaging/build-deb.sh [OUTDIR]     (default OUTDIR: build/packages)
#
# The project's layout has no top-level debian/, so the tree is copied to
# a temporary directory (without .git, build trees and node_modules),
# packaging/debian is put there as debian/, and dpkg-buildpackage builds
# the binary package unsigned.  Then lintian checks it: errors fail the
# build, warnings are printed.  Prints the path of the .deb as its last
# line.  Needs dpkg-dev, debhelper, the Build-Depends of
# packaging/debian/control, and lintian (skipped with a note when absent).

set -eu

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-$SRC/build/packages}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d /tmp/batchd-deb.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

VERSION=$(dpkg-parsechangelog -l "$SRC/packaging/debian/changelog" -S Version)
TREE=$WORK/batchd-$VERSION
mkdir -p "$TREE"
tar -C "$SRC" --exclude-vcs --exclude='./build*' --exclude='./packaging/debian' \
    --exclude=node_modules --exclude=__pycache__ -cf - . | tar -C "$TREE" -xf -
cp -a "$SRC/packaging/debian" "$TREE/debian"

echo "build-deb: building in $TREE" >&2
(cd "$TREE" && dpkg-buildpackage -us -uc -b) >"$WORK/build.log" 2>&1 || {
	tail -n 60 "$WORK/build.log" >&2
	echo "build-deb: dpkg-buildpackage failed" >&2
	exit 1
}
ARCH=$(dpkg --print-architecture)
DEB=batchd_${VERSION}_${ARCH}.deb
cp "$WORK/$DEB" "$OUT/"

if command -v lintian >/dev/null; then
	# --fail-on error: warnings are reported, not fatal.
	lintian --fail-on error --tag-display-limit 0 "$OUT/$DEB" >&2 || {
		echo "build-deb: lintian found errors" >&2
		exit 1
	}
else
	echo "build-deb: lintian not installed: not checked" >&2
fi
echo "$OUT/$DEB"
