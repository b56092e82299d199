#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Build batchd's RPM from this source tree with rpmbuild.
#
#   bash packaging/build-rpm.sh [OUTDIR]     (default OUTDIR: build/packages)
#
# Makes batchd-VERSION.tar.gz of the tree (without .git, build trees and
# node_modules), then `rpmbuild -bb` with packaging/rpm/batchd.spec in a
# temporary _topdir.  On Debian (the `rpm` package) the BuildRequires are
# Debian packages rpm cannot see, so they are not checked (--nodeps), and
# no debuginfo package is made (Debian's rpm has no find-debuginfo).
# Prints the path of the .rpm as its last line.

set -eu

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-$SRC/build/packages}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d /tmp/batchd-rpm.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

SPEC=$SRC/packaging/rpm/batchd.spec
VERSION=$(sed -n 's/^Version: *//p' "$SPEC")
mkdir -p "$WORK"/{BUILD,RPMS,SOURCES,SPECS,SRPMS}
tar -C "$SRC" --exclude-vcs --exclude='./build*' --exclude=node_modules \
    --exclude=__pycache__ --transform "s,^\.,batchd-$VERSION," \
    -czf "$WORK/SOURCES/batchd-$VERSION.tar.gz" .

extra=()
if [ -e /etc/debian_version ]; then
	extra=(--nodeps --define 'debug_package %{nil}')
fi
echo "build-rpm: rpmbuild in $WORK" >&2
rpmbuild -bb --define "_topdir $WORK" "${extra[@]}" "$SPEC" \
    >"$WORK/build.log" 2>&1 || {
	tail -n 60 "$WORK/build.log" >&2
	echo "build-rpm: rpmbuild failed" >&2
	exit 1
}
RPM=$(find "$WORK/RPMS" -name "batchd-$VERSION-*.rpm" | head -n 1)
cp "$RPM" "$OUT/"
echo "$OUT/$(basename "$RPM")"
