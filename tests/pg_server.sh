#!/usr/bin/env bash
# pg_server.sh - a throwaway PostgreSQL server for the tests (Debian's
# postgresql package), stopped by PID.
#
#   tests/pg_server.sh start DIR [PORT]   initdb in DIR/data, start the server; listens on a
#                                         unix socket in DIR and, with PORT, on 127.0.0.1:PORT.
#                                         Prints the connection URL (unix socket, superuser
#                                         "scone", database "scone", trust) on stdout.
#   tests/pg_server.sh stop DIR           stop it (fast shutdown) by the PID in postmaster.pid
#   tests/pg_server.sh restart DIR        stop, then start again on the same port(s)
#   tests/pg_server.sh kill DIR           SIGKILL the postmaster (crash; recovery at the next start)
#   tests/pg_server.sh pid DIR            the postmaster's PID
#
# TCP on 127.0.0.1 asks for a password (scram-sha-256): user scone's is in
# DIR/password, and DIR/passfile is a libpq password file for it (mode 0600),
# so a URL postgres://scone@127.0.0.1:PORT/scone?passfile=DIR/passfile works
# without the password on any command line. Unix socket connections are
# trusted (only this machine's users who can reach DIR).
#
# PostgreSQL refuses to run as root: as root, the server runs as the system
# user scone-pg (created here when missing) and DIR is given to it.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || {
	echo "usage: $0 start|stop|restart|kill|pid DIR [PORT]" >&2
	exit 2
}
PG_USER=scone-pg

bin_dir() {
	local d
	for d in /usr/lib/postgresql/*/bin; do
		[ -x "$d/initdb" ] && { echo "$d"; return 0; }
	done
	echo "pg_server.sh: no PostgreSQL server installed (apt-get install postgresql)" >&2
	return 1
}

# as_pg CMD...: run as the server's user (root: $PG_USER; else ourselves).
as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		setpriv --reuid="$PG_USER" --regid="$PG_USER" --init-groups -- "$@"
	else
		"$@"
	fi
}

ensure_user() {
	[ "$(id -u)" -eq 0 ] || return 0
	id -u "$PG_USER" >/dev/null 2>&1 && return 0
	useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$PG_USER" 2>/dev/null ||
		id -u "$PG_USER" >/dev/null 2>&1 # another test may have made it meanwhile
}

pid_of() {
	[ -f "$dir/data/postmaster.pid" ] && head -1 "$dir/data/postmaster.pid"
}

start() {
	local bin port=${1:-} listen="''" i
	bin=$(bin_dir)
	mkdir -p "$dir"
	if [ ! -d "$dir/data" ]; then
		ensure_user
		[ "$(id -u)" -ne 0 ] || chown "$PG_USER:$PG_USER" "$dir"
		chmod 0700 "$dir"
		head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/password"
		as_pg "$bin/initdb" -D "$dir/data" -U scone --auth-local=trust --auth-host=scram-sha-256 \
			--pwfile="$dir/password" -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 ||
			{ cat "$dir/initdb.log" >&2; exit 1; }
		printf '127.0.0.1:*:*:scone:%s\n' "$(cat "$dir/password")" >"$dir/passfile"
		chmod 0600 "$dir/password" "$dir/passfile"
	fi
	[ -z "$port" ] || echo "$port" >"$dir/port"
	[ -z "$port" ] && [ -f "$dir/port" ] && port=$(cat "$dir/port")
	[ -z "$port" ] || listen=127.0.0.1
	as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start \
		-o "-c listen_addresses=$listen -p ${port:-5432} -k $dir -c max_connections=200 -c shared_buffers=64MB" \
		>>"$dir/pg_ctl.log" 2>&1 || { tail -20 "$dir/server.log" >&2; exit 1; }
	for ((i = 0; i < 100; i++)); do
		as_pg "$bin/psql" -h "$dir" -p "${port:-5432}" -U scone -d postgres -Atqc \
			"SELECT 1 FROM pg_database WHERE datname = 'scone'" 2>/dev/null | grep -q 1 && break
		as_pg "$bin/psql" -h "$dir" -p "${port:-5432}" -U scone -d postgres -qc 'CREATE DATABASE scone' \
			>/dev/null 2>&1 && break
		sleep 0.1
	done
	echo "postgresql:///scone?host=$dir&port=${port:-5432}&user=scone"
}

stop() {
	local pid i
	pid=$(pid_of) || return 0
	[ -n "$pid" ] || return 0
	kill -INT "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 300; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}

case "$cmd" in
start) start "${3:-}" ;;
stop) stop ;;
restart)
	stop
	start
	;;
kill)
	pid=$(pid_of) && [ -n "$pid" ] && kill -KILL "$pid"
	;;
pid) pid_of ;;
*)
	echo "usage: $0 start|stop|restart|kill|pid DIR [PORT]" >&2
	exit 2
	;;
esac
