#!/bin/sh
# SPDX-License-Identifier: MIT
#
# run-fuzz.sh BINARY SEED_DIR SECONDS
#
# Runs a libFuzzer target for SECONDS over its seed corpus.  libFuzzer
# writes the inputs it finds into the first corpus directory it is given,
# so that is a temporary directory, removed afterwards: the seeds in the
# source tree are only read.  Crash reproducers still land in the current
# directory.  The exit status is libFuzzer's.

if [ $# -ne 3 ]; then
	echo "usage: run-fuzz.sh BINARY SEED_DIR SECONDS" >&2
	exit 2
fi
binary=$1
seeds=$2
seconds=$3
# Meson names the target relative to the working directory; keep it from
# being looked up in PATH.
case $binary in
*/*) ;;
*) binary=./$binary ;;
esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/batchd-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM HUP

if [ -d "$seeds" ]; then
	"$binary" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 \
	    "$tmp" "$seeds"
else
	echo "run-fuzz.sh: no seed directory $seeds; starting empty" >&2
	"$binary" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 \
	    "$tmp"
fi
status=$?
exit $status
