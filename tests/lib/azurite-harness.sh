#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# A throw-away Azurite (Azure Storage emulator: blob, queue and table
# services) on 127.0.0.1 for the storage tests.
#
#   azurite-harness.sh start DIR     start on free ports; prints
#                                    "BLOB_PORT QUEUE_PORT TABLE_PORT"
#   azurite-harness.sh stop DIR      stop it (TERM, then KILL)
#   azurite-harness.sh kill9 DIR     SIGKILL it, keeping data and ports
#   azurite-harness.sh restart DIR   start again on the same ports with the
#                                    same data (after kill9 or stop)
#   azurite-harness.sh node-dir      print the directory whose node_modules
#                                    holds azurite and @azure/storage-blob
#
# Everything lives under DIR: data/ (Azurite's workspace), debug.log (the
# request debug log), stdout.log, azurite.pid and ports.  The account is
# Azurite's devstoreaccount1 with its well-known key.
#
# The Node.js packages are looked for in $BATCHD_TEST_NODE_DIR, then
# tests/lib/node, then build/node (where .ci/run puts them); when none has
# them they are installed into tests/lib/node with npm.  Exits 77 (meson's
# "skip") when node or npm is missing, 1 on any other failure with the
# server's output on stderr.  With BATCHD_TEST_OWNER_PID set, the server
# is killed when that process ends (see watch_owner).

set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRCDIR=$(cd "$HERE/../.." && pwd)
FLAGS="--skipApiVersionCheck --loose --disableTelemetry"

die() {
	echo "azurite-harness: $*" >&2
	exit 1
}

skip() {
	echo "azurite-harness: $*" >&2
	exit 77
}

# Prints the directory with node_modules/azurite, installing when needed.
node_dir() {
	local d
	command -v node >/dev/null || skip "node is not installed"
	for d in "${BATCHD_TEST_NODE_DIR:-}" "$HERE/node" "$SRCDIR/build/node"; do
		[ -n "$d" ] || continue
		if [ -e "$d/node_modules/azurite/dist/src/azurite.js" ] &&
		    [ -d "$d/node_modules/@azure/storage-blob" ]; then
			echo "$d"
			return 0
		fi
	done
	command -v npm >/dev/null || skip "npm is not installed"
	# One installer at a time: tests may start in parallel.
	(
		flock 9
		if [ ! -e "$HERE/node/node_modules/azurite/dist/src/azurite.js" ]; then
			echo "azurite-harness: installing node packages" >&2
			cd "$HERE/node" &&
			    npm install --no-audit --no-fund --loglevel=error \
			    </dev/null >&2
		fi
	) 9>"${TMPDIR:-/tmp}/batchd-node-install.lock" ||
	    die "npm install failed"
	[ -e "$HERE/node/node_modules/azurite/dist/src/azurite.js" ] ||
	    die "azurite is still missing after npm install"
	echo "$HERE/node"
}

# Succeeds when something accepts connections on 127.0.0.1:$1.
listening() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Succeeds when an HTTP server answers on 127.0.0.1:$1.
answers() {
	local line
	line=$( (
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf 'GET /devstoreaccount1?comp=list HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
		IFS= read -r -t 2 l <&3 && printf '%s' "$l"
	) 2>/dev/null)
	case $line in
	HTTP/1.*) return 0 ;;
	esac
	return 1
}

# Succeeds while process $1 exists and is not a zombie.
alive() {
	local st rest
	[ -r "/proc/$1/stat" ] || return 1
	IFS= read -r st 2>/dev/null <"/proc/$1/stat" || return 1
	rest=${st##*) }
	[ "${rest%% *}" != Z ]
}

# Waits up to $2 tenths of a second for process $1 to go.
wait_gone() {
	local i=0
	while alive "$1"; do
		i=$((i + 1))
		[ "$i" -gt "$2" ] && return 1
		sleep 0.1
	done
	return 0
}

server_pid() {
	local pid
	[ -r "$1/azurite.pid" ] || return 1
	IFS= read -r pid <"$1/azurite.pid" || return 1
	case $pid in
	'' | *[!0-9]*) return 1 ;;
	esac
	echo "$pid"
}

# Starts Azurite on ports $2 $3 $4; succeeds once all three answer.  Sets
# START_FAIL=busy when a port was taken.
try_start() {
	local dir=$1 bp=$2 qp=$3 tp=$4 nd pid i
	START_FAIL=
	nd=$(node_dir) || exit $?
	: >"$dir/stdout.log"
	# setsid: the server must not share the test's process group or
	# terminal, and keeps none of the caller's descriptors.
	setsid node "$nd/node_modules/azurite/dist/src/azurite.js" \
	    --location "$dir/data" --debug "$dir/debug.log" \
	    --blobHost 127.0.0.1 --blobPort "$bp" \
	    --queueHost 127.0.0.1 --queuePort "$qp" \
	    --tableHost 127.0.0.1 --tablePort "$tp" \
	    $FLAGS </dev/null >>"$dir/stdout.log" 2>&1 9>&- &
	pid=$!
	echo "$pid" >"$dir/azurite.pid"
	watch_owner "$pid"
	for i in $(seq 1 300); do
		if ! alive "$pid"; then
			wait "$pid" 2>/dev/null
			rm -f "$dir/azurite.pid"
			grep -q "EADDRINUSE" "$dir/stdout.log" && START_FAIL=busy
			return 1
		fi
		if answers "$bp" && answers "$qp" && answers "$tp"; then
			echo "$bp $qp $tp" >"$dir/ports"
			return 0
		fi
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	rm -f "$dir/azurite.pid"
	return 1
}

# With BATCHD_TEST_OWNER_PID set (the test program's pid), a watchdog
# kills server $1 when that process is gone, so that a test that crashed
# leaves no server behind.
watch_owner() {
	local owner=${BATCHD_TEST_OWNER_PID:-} server=$1
	case $owner in
	'' | *[!0-9]*) return 0 ;;
	esac
	(
		trap '' HUP INT TERM
		while alive "$owner" && alive "$server"; do
			sleep 1
		done
		alive "$server" && ! alive "$owner" &&
		    kill -KILL "$server" 2>/dev/null
	) </dev/null >/dev/null 2>&1 9>&- &
	disown $! 2>/dev/null || true
}

# A random port in 20000..59999 that nothing listens on.
free_port() {
	local p
	while :; do
		p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		listening "$p" || break
	done
	echo "$p"
}

prepare_dir() {
	mkdir -p "$1/data" || die "cannot create $1"
	(cd "$1" && pwd) || die "cannot enter $1"
}

cmd_start() {
	local dir bp qp tp tries pid
	dir=$(prepare_dir "$1") || exit 1
	if pid=$(server_pid "$dir") && alive "$pid"; then
		die "Azurite already running in $dir (pid $pid)"
	fi
	node_dir >/dev/null || exit $?
	for tries in $(seq 1 10); do
		bp=$(free_port)
		qp=$(free_port)
		tp=$(free_port)
		[ "$bp" = "$qp" ] || [ "$bp" = "$tp" ] || [ "$qp" = "$tp" ] &&
		    continue
		if try_start "$dir" "$bp" "$qp" "$tp"; then
			echo "$bp $qp $tp"
			return 0
		fi
		[ "$START_FAIL" = busy ] || break
	done
	cat "$dir/stdout.log" >&2 2>/dev/null
	die "Azurite did not start"
}

cmd_restart() {
	local dir ports bp qp tp tries pid
	dir=$(prepare_dir "$1") || exit 1
	if pid=$(server_pid "$dir") && alive "$pid"; then
		die "Azurite already running in $dir (pid $pid)"
	fi
	read -r bp qp tp <"$dir/ports" 2>/dev/null ||
	    die "no ports recorded in $dir"
	for tries in $(seq 1 50); do
		if try_start "$dir" "$bp" "$qp" "$tp"; then
			echo "$bp $qp $tp"
			return 0
		fi
		# A killed server's port can take a moment to free.
		[ "$START_FAIL" = busy ] || break
		sleep 0.2
	done
	cat "$dir/stdout.log" >&2 2>/dev/null
	die "Azurite did not restart on ports $bp $qp $tp"
}

cmd_kill9() {
	local dir=$1 pid
	pid=$(server_pid "$dir") || die "no pid file in $dir"
	alive "$pid" || { rm -f "$dir/azurite.pid"; return 0; }
	kill -KILL "$pid" 2>/dev/null
	wait_gone "$pid" 50 || die "Azurite $pid did not die"
	rm -f "$dir/azurite.pid"
}

cmd_stop() {
	local dir=$1 pid
	pid=$(server_pid "$dir") || return 0
	if alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null
		wait_gone "$pid" 50 || cmd_kill9 "$dir"
	fi
	rm -f "$dir/azurite.pid"
}

case ${1:-} in
start | restart | stop | kill9)
	[ $# -eq 2 ] || die "usage: $0 $1 DIR"
	"cmd_$1" "$2"
	;;
node-dir)
	node_dir
	;;
*)
	die "usage: $0 start|stop|kill9|restart DIR | node-dir"
	;;
esac
