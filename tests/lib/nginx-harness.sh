#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# A throw-away nginx on 127.0.0.1 for the HTTP tests.
#
#   nginx-harness.sh start DIR [PORT]   configure and start; prints the port
#   nginx-harness.sh stop DIR           stop it (TERM, then KILL)
#   nginx-harness.sh kill DIR           SIGKILL the master and its workers
#
# Everything lives under DIR: nginx.conf, nginx.pid, logs/, tmp/ and the
# document root www/.  The server offers:
#
#   /...          files under DIR/www, with range requests
#   /upload/...   also PUT and DELETE (dav), creating missing directories
#   /slow/...     the same files as /, at most 50 MB/s per connection
#   /norange/...  the same files as /, ignoring Range (always 200)
#   /liar/...     the same, but saying Accept-Ranges: bytes all the same
#   /weak/...     as /slow/, with a weak ETag (W/"weak") instead of nginx's
#   /noetag/...   as /slow/, without an ETag (Last-Modified only)
#   /novalidator/... as /slow/, with neither ETag nor Last-Modified
#   /status/NNN[/...] answers with status NNN (404 with x-ms-error-code
#                 BlobNotFound, 429 with Retry-After: 1)
#
# Without PORT a free port is chosen; with PORT (to restart a killed server
# on the same port) only that one is tried.  Exits 77 (meson's "skip") when
# nginx is not installed, 1 on any other failure, with the error log on
# stderr.  Works as root (workers then run as root too, so they can write
# DIR) and as a normal user.

set -u

NGINX=${NGINX:-/usr/sbin/nginx}
STATUSES="200 201 204 400 403 404 408 409 412 416 429 500 502 503 504"

die() {
	echo "nginx-harness: $*" >&2
	exit 1
}

# Succeeds when something accepts connections on 127.0.0.1:$1.
listening() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Succeeds when our nginx answers GET /status/200 on port $1.
answers() {
	local line
	line=$( (
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf 'GET /status/200 HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
		IFS= read -r -t 2 l <&3 && printf '%s' "$l"
	) 2>/dev/null)
	case $line in
	"HTTP/1.1 200"*) return 0 ;;
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

# Prints the pids whose parent is $1.
children() {
	local parent=$1 f st rest p
	for f in /proc/[0-9]*/stat; do
		IFS= read -r st 2>/dev/null <"$f" || continue
		rest=${st##*) }
		set -- $rest
		p=${f#/proc/}
		[ "${2:-}" = "$parent" ] && echo "${p%/stat}"
	done
	return 0
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

master_pid() {
	local pid
	[ -r "$1/nginx.pid" ] || return 1
	IFS= read -r pid <"$1/nginx.pid" || return 1
	case $pid in
	'' | *[!0-9]*) return 1 ;;
	esac
	echo "$pid"
}

write_conf() {
	local dir=$1 port=$2 user="" code extra body
	if [ "$(id -u)" = 0 ]; then
		user="user $(id -un) $(id -gn);"
	fi
	{
		cat <<EOF
$user
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;

events {
	worker_connections 512;
}

http {
	default_type application/octet-stream;
	log_format harness '\$connection \$connection_requests \$status "\$request" '
	    'range="\$http_range" ua="\$http_user_agent" sent=\$body_bytes_sent '
	    'ifr="\$http_if_range" expect="\$http_expect"';
	access_log $dir/logs/access.log harness;
	client_body_temp_path $dir/tmp/body;
	proxy_temp_path $dir/tmp/proxy;
	fastcgi_temp_path $dir/tmp/fastcgi;
	uwsgi_temp_path $dir/tmp/uwsgi;
	scgi_temp_path $dir/tmp/scgi;
	sendfile on;
	keepalive_timeout 60s;
	keepalive_requests 100000;
	client_max_body_size 0;

	server {
		listen 127.0.0.1:$port;
		server_name localhost;
		root $dir/www;

		location / {
		}

		location /upload/ {
			dav_methods PUT DELETE;
			create_full_put_path on;
			dav_access user:rw group:r all:r;
		}

		location /slow/ {
			alias $dir/www/;
			limit_rate 50m;
		}

		location /norange/ {
			alias $dir/www/;
			max_ranges 0;
		}
		location /liar/ {
			alias $dir/www/;
			max_ranges 0;
			add_header Accept-Ranges bytes;
		}

		location /weak/ {
			alias $dir/www/;
			limit_rate 50m;
			etag off;
			add_header ETag 'W/"weak"';
		}
		location /noetag/ {
			alias $dir/www/;
			limit_rate 50m;
			etag off;
		}
		location /novalidator/ {
			alias $dir/www/;
			limit_rate 50m;
			etag off;
			add_header Last-Modified "";
		}
EOF
		for code in $STATUSES; do
			extra=""
			body=""
			case $code in
			404) extra="add_header x-ms-error-code BlobNotFound always;" ;;
			429) extra="add_header Retry-After 1 always;" ;;
			esac
			case $code in
			4* | 5*) body=" \"status $code\\n\"" ;;
			esac
			printf '\n\t\tlocation ^~ /status/%s {\n' "$code"
			[ -n "$extra" ] && printf '\t\t\t%s\n' "$extra"
			printf '\t\t\treturn %s%s;\n\t\t}\n' "$code" "$body"
		done
		printf '\t}\n}\n'
	} >"$dir/nginx.conf"
}

# Starts nginx on port $2; succeeds once it answers.
try_start() {
	local dir=$1 port=$2 pid i
	write_conf "$dir" "$port"
	: >"$dir/logs/error.log"
	"$NGINX" -p "$dir/" -c "$dir/nginx.conf" -e "$dir/logs/error.log" \
	    </dev/null >>"$dir/logs/stdout.log" 2>&1 &
	pid=$!
	for i in $(seq 1 100); do
		if ! alive "$pid"; then
			wait "$pid" 2>/dev/null
			return 1
		fi
		if answers "$port"; then
			echo "$port" >"$dir/port"
			return 0
		fi
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null
	return 1
}

cmd_start() {
	local dir=$1 want=${2:-} port tries
	[ -x "$NGINX" ] || {
		echo "nginx-harness: $NGINX not installed" >&2
		exit 77
	}
	mkdir -p "$dir" || die "cannot create $dir"
	dir=$(cd "$dir" && pwd) || die "cannot enter $dir"
	mkdir -p "$dir/www/upload" "$dir/logs" "$dir/tmp/body" \
	    "$dir/tmp/proxy" "$dir/tmp/fastcgi" "$dir/tmp/uwsgi" \
	    "$dir/tmp/scgi" || die "cannot create directories in $dir"
	if pid=$(master_pid "$dir") && alive "$pid"; then
		die "nginx already running in $dir (pid $pid)"
	fi
	if [ -n "$want" ]; then
		case $want in
		'' | *[!0-9]*) die "bad port $want" ;;
		esac
		for tries in $(seq 1 50); do
			try_start "$dir" "$want" && {
				echo "$want"
				return 0
			}
			# A killed server's port can take a moment to free.
			grep -q "Address already in use" "$dir/logs/error.log" \
			    "$dir/logs/stdout.log" 2>/dev/null || break
			sleep 0.1
		done
		cat "$dir/logs/error.log" "$dir/logs/stdout.log" >&2 2>/dev/null
		die "nginx did not start on port $want"
	fi
	for tries in $(seq 1 30); do
		port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
		listening "$port" && continue
		try_start "$dir" "$port" && {
			echo "$port"
			return 0
		}
		grep -q "Address already in use" "$dir/logs/error.log" \
		    "$dir/logs/stdout.log" 2>/dev/null || break
	done
	cat "$dir/logs/error.log" "$dir/logs/stdout.log" >&2 2>/dev/null
	die "nginx did not start"
}

cmd_kill() {
	local dir=$1 pid kids k
	pid=$(master_pid "$dir") || die "no pid file in $dir"
	alive "$pid" || return 0
	kids=$(children "$pid")
	# The master first, or it would respawn the workers we kill.
	kill -KILL "$pid" 2>/dev/null
	for k in $kids; do
		kill -KILL "$k" 2>/dev/null
	done
	wait_gone "$pid" 50 || die "nginx $pid did not die"
	for k in $kids; do
		wait_gone "$k" 50 || die "nginx worker $k did not die"
	done
	rm -f "$dir/nginx.pid"
}

cmd_stop() {
	local dir=$1 pid
	pid=$(master_pid "$dir") || return 0
	if alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null
		wait_gone "$pid" 50 || cmd_kill "$dir"
	fi
	rm -f "$dir/nginx.pid"
}

case ${1:-} in
start)
	[ $# -ge 2 ] || die "usage: $0 start DIR [PORT]"
	cmd_start "$2" "${3:-}"
	;;
stop)
	[ $# -eq 2 ] || die "usage: $0 stop DIR"
	cmd_stop "$2"
	;;
kill)
	[ $# -eq 2 ] || die "usage: $0 kill DIR"
	cmd_kill "$2"
	;;
*)
	die "usage: $0 start DIR [PORT] | stop DIR | kill DIR"
	;;
esac
