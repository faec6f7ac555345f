#!/usr/bin/env bash
# bench_databases.sh - what an encrypted volume under the runtime costs real
# databases and a web server (issue 10), each against the same program run
# plainly on the same machine in the same run (the two sides alternate, the
# order flipped every round; medians over BENCH_RUNS rounds, default 3).
# Debian's programs with their default configurations, on 127.0.0.1 at free
# ports; the runtime side has its data on a session volume of a local CAS.
#
# pgbench: PostgreSQL 15, one cluster initialised under the runtime with
#   PGDATA on a volume and one plain cluster (initdb as the database user),
#   both `pgbench -i -s BENCH_PG_SCALE` (default 10).
#     TPC-B: `pgbench -n -c 8 -j 2 -T BENCH_PG_SECONDS` (default 60). Goal: ratio >= 0.5.
#       RESULT db.pgbench_tpcb_c8 value=<tps> unit=tps baseline=<plain tps> ratio=<runtime/plain>
#     select-only: `pgbench -n -S -c 8 -j 2 -T BENCH_PG_SELECT_SECONDS` (default 20). Goal: >= 0.9.
#       RESULT db.pgbench_select value=<tps> unit=tps baseline=<plain tps> ratio=<runtime/plain>
# mysqlslap: MariaDB 10.11, a data directory made by mariadb-install-db under
#   the runtime on a volume and a plain one; `mysqlslap --concurrency=4
#   --number-of-queries=BENCH_MY_QUERIES (default 4000) --auto-generate-sql
#   --auto-generate-sql-load-type=write --auto-generate-sql-add-autoincrement
#   --engine=InnoDB` (autocommit inserts). value = queries per second.
#   Goal: ratio >= 0.5.
#     RESULT db.mysqlslap_insert_c4 value=<q/s> unit=q/s baseline=<plain q/s> ratio=<runtime/plain>
# nginx: 100 files of 4 KiB copied onto a volume (cp under the runtime) and
#   into a plain directory; nginx (Debian's defaults: sendfile on,
#   tcp_nopush on, two workers; access log off on both sides) under the
#   runtime serving the volume, and plainly serving the plain directory; `wrk -t2 -c32 -d BENCH_WRK_SECONDS` (default 10) over
#   the 100 paths. Goal: ratio >= 0.8.
#     RESULT db.nginx_static_4k value=<req/s> unit=req/s baseline=<plain req/s> ratio=<runtime/plain>
#
# BENCH_READ_CACHE_MB sets the runtime's shared read cache (default: the runtime's own,
# docs/runtime.md, "The shared read cache").
# BENCH_DB_PARTS (default "pgbench mysqlslap nginx") picks the parts. The
# databases run as the invoking user, or as the system user scone-test when
# that is root (created if absent): postgres refuses root. A part whose
# runtime side fails prints why on stderr and no RESULT line, the others go
# on, and the script exits 1. Every process it starts is stopped by its PID
# at exit; the temporary directory (under BENCH_DIR, default /var/tmp) is
# removed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
BIN=${BUILD:-build}/bin
LIB=${BUILD:-build}/lib/libscone.so
RUNS=${BENCH_RUNS:-3}
PARTS=${BENCH_DB_PARTS:-pgbench mysqlslap nginx}
PG_SCALE=${BENCH_PG_SCALE:-10}
PG_SECONDS=${BENCH_PG_SECONDS:-60}
PG_SELECT_SECONDS=${BENCH_PG_SELECT_SECONDS:-20}
MY_QUERIES=${BENCH_MY_QUERIES:-4000}
WRK_SECONDS=${BENCH_WRK_SECONDS:-10}
# PostgreSQL 15 (Debian 12's); another major version when 15 is not installed.
PG_BIN=/usr/lib/postgresql/15/bin
[ -x "$PG_BIN/postgres" ] || PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
PY=$(command -v /usr/bin/python3 || command -v python3)
PG_PW="bench-pg-pw-6f1d"
MY_PW="bench-my-pw-2c7e"

log() { echo "bench_databases: $*" >&2; }
part() { case " $PARTS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/scone-bench-db.XXXXXX") || exit 1
chmod 711 "$work"
pids=()
cleanup() {
	local p
	for p in ${pids[@]+"${pids[@]}"}; do kill -9 "$p" 2>/dev/null; done
	for p in ${pids[@]+"${pids[@]}"}; do wait "$p" 2>/dev/null; done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
track() { pids+=("$1"); }

for f in "$BIN/scone" "$BIN/scone-cas" "$LIB"; do
	[ -e "$f" ] || { log "$f missing (make)"; exit 1; }
done
need() {
	local f
	for f in "$@"; do command -v "$f" >/dev/null || { log "$f missing (scripts/install-deps.sh)"; return 1; }; done
}
part pgbench && { need "$PG_BIN/initdb" "$PG_BIN/postgres" pgbench psql || exit 1; }
part mysqlslap && { need mariadb-install-db /usr/sbin/mariadbd mariadb mysqlslap || exit 1; }
part nginx && { need /usr/sbin/nginx wrk || exit 1; }

# ---------------- the database user, CAS, sessions ----------------

AS_DB=()
DB_USER=$(id -un)
if [ "$(id -u)" -eq 0 ]; then
	DB_USER=scone-test
	id -u "$DB_USER" >/dev/null 2>&1 ||
		useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$DB_USER" ||
		id -u "$DB_USER" >/dev/null 2>&1 || { log "cannot create the user $DB_USER"; exit 1; }
	AS_DB=(setpriv --reuid="$DB_USER" --regid="$(id -gn "$DB_USER")" --init-groups --)
fi
db_dir() {
	mkdir -p "$@" && chown "$DB_USER:$(id -gn "$DB_USER")" "$@" && chmod 700 "$@"
}
mkdir -p "$work/rt/bin" "$work/rt/lib"
cp "$BIN/scone" "$work/rt/bin/" && cp "$LIB" "$work/rt/lib/" && chmod -R a+rX "$work/rt" || exit 1

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
cas_port=$(free_port)
"$BIN/scone-cas" --state-dir "$work/cas" --listen "127.0.0.1:$cas_port" 2>"$work/cas.log" &
track $!
for _ in $(seq 100); do curl -sfk "https://127.0.0.1:$cas_port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
export SCONE_CLI_CONFIG=$work/owner/config.json
"$BIN/scone" cas keygen >/dev/null || exit 1
fp=$(openssl x509 -in "$work/cas/cas.crt" -outform DER | sha256sum | cut -d' ' -f1)
"$BIN/scone" cas trust "127.0.0.1:$cas_port" --fingerprint "$fp" >/dev/null || exit 1
# BENCH_READ_CACHE_MB: the runtime's shared read cache for every service (SCONE_READ_CACHE_MB).
CACHE_ENV=
[ -n "${BENCH_READ_CACHE_MB:-}" ] && CACHE_ENV=$'\n    environment:\n      SCONE_READ_CACHE_MB: "'"$BENCH_READ_CACHE_MB"'"'
cat >"$work/db.yaml" <<YAML
name: bench-db
version: "0.3"
security:
  attestation:
    mode: none
services:
  - name: pg
    image_name: pg$CACHE_ENV
  - name: my
    image_name: my$CACHE_ENV
  - name: web
    image_name: web$CACHE_ENV
images:
  - name: pg
    injection_files:
      - path: $work/secrets/pg-pw
        content: \$\$SCONE::pg_pw\$\$
    volumes:
      - {name: pgdata, path: $work/pg-rt/data}
  - name: my
    injection_files:
      - path: $work/secrets/my-init.sql
        content: |
          ALTER USER root@localhost IDENTIFIED VIA mysql_native_password USING PASSWORD('\$\$SCONE::my_pw\$\$') OR unix_socket;
    volumes:
      - {name: mydata, path: $work/my-rt/data}
  - name: web
    volumes:
      - {name: www, path: $work/web/www}
volumes:
  - name: pgdata
  - name: mydata
  - name: www
secrets:
  - {name: pg_pw, kind: ascii, value: "$PG_PW"}
  - {name: my_pw, kind: ascii, value: "$MY_PW"}
YAML
"$BIN/scone" session create "$work/db.yaml" >/dev/null || exit 1

# rt SERVICE PROGRAM ARGS...: the command (array RT) that runs PROGRAM as the
# database user under the runtime; plain PROGRAM ARGS...: the same, plainly
# (both with an empty environment, as the runtime gives the program).
rt() {
	local svc=$1
	shift
	RT=(${AS_DB[@]+"${AS_DB[@]}"} env -i "$work/rt/bin/scone" run --cas "127.0.0.1:$cas_port" --cas-fingerprint "$fp"
		--config-id "bench-db/$svc" -- "$@")
}
plain() { RT=(${AS_DB[@]+"${AS_DB[@]}"} env -i "$@"); }

alive() { [ -e "/proc/$1" ] && ! grep -q '^State:.*[ZX]' "/proc/$1/status" 2>/dev/null; }

# start LOG READY_CMD...: "${RT[@]}" in the background; waits (180 s) until
# READY_CMD succeeds. Sets SRV_PID.
start() {
	local logf=$1 i
	shift
	"${RT[@]}" >"$logf" 2>&1 </dev/null &
	SRV_PID=$!
	track "$SRV_PID"
	for ((i = 0; i < 1800; i++)); do
		alive "$SRV_PID" || { log "server exited during start-up: $(grep -v '^scone: warning' "$logf" | tail -3)"; return 1; }
		[ $((i % 5)) -ne 0 ] || ! "$@" >/dev/null 2>&1 || return 0
		sleep 0.1
	done
	log "server did not get ready in 180 s: $(tail -3 "$logf")"
	return 1
}
stop() { # PID: SIGTERM, wait up to 180 s
	local i
	kill -TERM "$1" 2>/dev/null
	for ((i = 0; i < 1800; i++)); do alive "$1" || break; sleep 0.1; done
	kill -9 "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0) ? a / b : 0 }'; }

# result NAME UNIT GOAL "RT values" "PLAIN values": the RESULT line of the medians.
result() {
	local name=$1 unit=$2 goal=$3 mr mp r
	# shellcheck disable=SC2086 # lists of numbers
	mr=$(median $4)
	# shellcheck disable=SC2086
	mp=$(median $5)
	r=$(ratio "$mr" "$mp")
	printf 'RESULT %s value=%.0f unit=%s baseline=%.0f ratio=%s\n' "$name" "$mr" "$unit" "$mp" "$r"
	awk -v r="$r" -v g="$goal" 'BEGIN { exit !(r < g) }' && log "goal missed: $name ratio $r (goal: at least $goal)"
	return 0
}

# alternate FUNC: RUNS rounds of FUNC rt / FUNC plain (order flipped each
# round); FUNC prints one number. Sets V_RT and V_PLAIN (lists).
alternate() {
	local fn=$1 i side v
	V_RT='' V_PLAIN=''
	for ((i = 0; i < RUNS; i++)); do
		for side in $([ $((i % 2)) -eq 0 ] && echo "plain rt" || echo "rt plain"); do
			v=$("$fn" "$side") || { log "$fn $side failed: $v"; return 1; }
			if [ "$side" = rt ]; then V_RT="$V_RT $v"; else V_PLAIN="$V_PLAIN $v"; fi
		done
		log "$fn run $((i + 1)): plain $(echo "$V_PLAIN" | awk '{ print $NF }'), runtime $(echo "$V_RT" | awk '{ print $NF }')"
	done
}

failed=()

# ---------------- PostgreSQL ----------------

declare -A PG_PORT
pg_q() { # SIDE SQL
	PGPASSWORD=$PG_PW PGCONNECT_TIMEOUT=10 psql -X -q -h 127.0.0.1 -p "${PG_PORT[$1]}" -U postgres -d postgres -Atc "$2"
}
pg_setup() { # SIDE: initdb, start, pgbench -i
	local side=$1 dir=$work/pg-$1 t
	db_dir "$dir" "$dir/run"
	if [ "$side" = rt ]; then
		rt pg "$PG_BIN/initdb" -D "$dir/data" -U postgres --pwfile="$work/secrets/pg-pw" --auth=scram-sha-256
	else
		db_dir "$work/plain-secrets"
		printf '%s' "$PG_PW" >"$work/plain-secrets/pg-pw"
		chown "$DB_USER" "$work/plain-secrets/pg-pw"
		plain "$PG_BIN/initdb" -D "$dir/data" -U postgres --pwfile="$work/plain-secrets/pg-pw" --auth=scram-sha-256
	fi
	t=$(date +%s.%N)
	"${RT[@]}" >"$dir/initdb.log" 2>&1 || { log "initdb ($side): $(tail -3 "$dir/initdb.log")"; return 1; }
	log "initdb ($side): $(awk -v t="$t" -v n="$(date +%s.%N)" 'BEGIN { printf "%.1f", n - t }') s"
	PG_PORT[$side]=$(free_port)
	if [ "$side" = rt ]; then rt pg "$PG_BIN/postgres" -D "$dir/data" -p "${PG_PORT[$side]}" -h 127.0.0.1 -k "$dir/run"
	else plain "$PG_BIN/postgres" -D "$dir/data" -p "${PG_PORT[$side]}" -h 127.0.0.1 -k "$dir/run"; fi
	start "$dir/server.log" pg_q "$side" "select 1" || return 1
	PG_PID[$side]=$SRV_PID
	t=$(date +%s.%N)
	PGPASSWORD=$PG_PW pgbench -h 127.0.0.1 -p "${PG_PORT[$side]}" -U postgres -i -q -s "$PG_SCALE" postgres \
		>"$dir/init.log" 2>&1 || { log "pgbench -i ($side): $(tail -3 "$dir/init.log") $(grep '^scone:' "$dir/server.log" | tail -2)"; return 1; }
	log "pgbench -i -s $PG_SCALE ($side): $(awk -v t="$t" -v n="$(date +%s.%N)" 'BEGIN { printf "%.1f", n - t }') s"
}
declare -A PG_PID
# pg_run SIDE ARGS...: pgbench's tps (without initial connection time), no error allowed.
pg_run() {
	local side=$1 out
	shift
	out=$(PGPASSWORD=$PG_PW pgbench -n -h 127.0.0.1 -p "${PG_PORT[$side]}" -U postgres -c 8 -j 2 "$@" postgres 2>&1) ||
		{ echo "pgbench exited non-zero: $(echo "$out" | grep -i error | head -2)"; return 1; }
	if echo "$out" | grep -qi error; then echo "pgbench: $(echo "$out" | grep -i error | head -2)"; return 1; fi
	echo "$out" | sed -n 's/^tps = \([0-9.]*\) (without initial connection time)/\1/p'
}
pg_tpcb() { pg_run "$1" -T "$PG_SECONDS"; }
pg_select() { pg_run "$1" -S -T "$PG_SELECT_SECONDS"; }

bench_pgbench() {
	pg_setup plain || return 1
	pg_setup rt || return 1
	# A short warm-up of each side (page cache, buffers).
	pg_run plain -S -T 3 >/dev/null && pg_run rt -S -T 3 >/dev/null || { log "warm-up failed"; return 1; }
	alternate pg_tpcb || return 1
	result db.pgbench_tpcb_c8 tps 0.5 "$V_RT" "$V_PLAIN"
	alternate pg_select || return 1
	result db.pgbench_select tps 0.9 "$V_RT" "$V_PLAIN"
	stop "${PG_PID[rt]}"
	stop "${PG_PID[plain]}"
}

# ---------------- MariaDB ----------------

declare -A MY_PORT MY_PID
my_setup() { # SIDE
	local side=$1 dir=$work/my-$1 init
	db_dir "$dir" "$dir/run"
	if [ "$side" = rt ]; then
		init=$work/secrets/my-init.sql
		rt my /usr/bin/mariadb-install-db --datadir="$dir/data"
	else
		db_dir "$work/plain-secrets"
		init=$work/plain-secrets/my-init.sql
		printf "ALTER USER root@localhost IDENTIFIED VIA mysql_native_password USING PASSWORD('%s') OR unix_socket;\n" \
			"$MY_PW" >"$init"
		chown "$DB_USER" "$init"
		plain /usr/bin/mariadb-install-db --datadir="$dir/data"
	fi
	"${RT[@]}" >"$dir/install.log" 2>&1 || { log "mariadb-install-db ($side): $(grep -E 'ERROR|^scone' "$dir/install.log" | grep -v TEE | head -3)"; return 1; }
	MY_PORT[$side]=$(free_port)
	local args=(/usr/sbin/mariadbd --datadir="$dir/data" --port="${MY_PORT[$side]}" --socket="$dir/run/mysqld.sock"
		--pid-file="$dir/run/mysqld.pid" --init-file="$init")
	if [ "$side" = rt ]; then rt my "${args[@]}"; else plain "${args[@]}"; fi
	start "$dir/server.log" my_q "$side" "select 1" || return 1
	MY_PID[$side]=$SRV_PID
}
my_q() { MYSQL_PWD=$MY_PW mariadb --connect-timeout=10 -h 127.0.0.1 -P "${MY_PORT[$1]}" -u root -N -B -e "$2"; }
my_slap() { # SIDE: queries per second
	local out s
	out=$(MYSQL_PWD=$MY_PW mysqlslap -h 127.0.0.1 -P "${MY_PORT[$1]}" -u root --concurrency=4 --iterations=1 \
		--number-of-queries="$MY_QUERIES" --auto-generate-sql --auto-generate-sql-load-type=write \
		--auto-generate-sql-add-autoincrement --engine=InnoDB 2>&1) || { echo "mysqlslap: $(echo "$out" | tail -2)"; return 1; }
	s=$(echo "$out" | sed -n 's/.*Average number of seconds to run all queries: \([0-9.]*\) seconds.*/\1/p')
	[ -n "$s" ] || { echo "mysqlslap: no timing in its output"; return 1; }
	awk -v n="$MY_QUERIES" -v s="$s" 'BEGIN { printf "%.1f", n / s }'
}

bench_mysqlslap() {
	my_setup plain || return 1
	my_setup rt || return 1
	alternate my_slap || return 1
	result db.mysqlslap_insert_c4 q/s 0.5 "$V_RT" "$V_PLAIN"
	stop "${MY_PID[rt]}"
	stop "${MY_PID[plain]}"
}

# ---------------- nginx ----------------

declare -A WEB_PORT
web_conf() { # SIDE ROOT PORT
	local d=$work/ngx-$1
	db_dir "$d" "$d/tmp"
	{
		cat <<CONF
daemon off;
worker_processes 2;
pid $d/nginx.pid;
error_log $d/error.log;
events { worker_connections 768; }
http {
  sendfile on;
  tcp_nopush on;
  access_log off;
  client_body_temp_path $d/tmp/body;
  proxy_temp_path $d/tmp/proxy;
  fastcgi_temp_path $d/tmp/fastcgi;
  uwsgi_temp_path $d/tmp/uwsgi;
  scgi_temp_path $d/tmp/scgi;
  server { listen 127.0.0.1:$3; root $2; }
}
CONF
	} >"$d/nginx.conf"
}
web_wrk() { # SIDE: requests per second
	local out
	out=$(wrk -t2 -c32 -d"$WRK_SECONDS"s -s "$work/paths.lua" "http://127.0.0.1:${WEB_PORT[$1]}/" 2>&1) ||
		{ echo "wrk: $(echo "$out" | tail -2)"; return 1; }
	if echo "$out" | grep -q "Non-2xx"; then echo "wrk: $(echo "$out" | grep Non-2xx)"; return 1; fi
	echo "$out" | sed -n 's/^Requests\/sec: *\([0-9.]*\)/\1/p'
}

bench_nginx() {
	local i
	mkdir -p "$work/site"
	for ((i = 0; i < 100; i++)); do head -c 4096 /dev/urandom >"$work/site/f$i.bin"; done
	cat >"$work/paths.lua" <<'LUA'
request = function()
  return wrk.format("GET", "/f" .. math.random(0, 99) .. ".bin")
end
LUA
	chmod -R a+rX "$work/site"
	db_dir "$work/web"
	plain /usr/bin/cp -r "$work/site" "$work/web/plain"
	"${RT[@]}" || { log "cp to the plain directory failed"; return 1; }
	rt web /usr/bin/cp -r "$work/site" "$work/web/www/site"
	"${RT[@]}" >"$work/cp.log" 2>&1 || { log "cp onto the volume: $(tail -2 "$work/cp.log")"; return 1; }
	WEB_PORT[plain]=$(free_port)
	WEB_PORT[rt]=$(free_port)
	web_conf plain "$work/web/plain" "${WEB_PORT[plain]}"
	web_conf rt "$work/web/www/site" "${WEB_PORT[rt]}"
	plain /usr/sbin/nginx -e "$work/ngx-plain/error.log" -p "$work/ngx-plain" -c "$work/ngx-plain/nginx.conf"
	start "$work/ngx-plain/out.log" curl -sf -o /dev/null "http://127.0.0.1:${WEB_PORT[plain]}/f1.bin" || return 1
	local plain_pid=$SRV_PID
	rt web /usr/sbin/nginx -e "$work/ngx-rt/error.log" -p "$work/ngx-rt" -c "$work/ngx-rt/nginx.conf"
	start "$work/ngx-rt/out.log" curl -sf -o /dev/null "http://127.0.0.1:${WEB_PORT[rt]}/f1.bin" || return 1
	local rt_pid=$SRV_PID
	cmp -s "$work/site/f7.bin" <(curl -sf "http://127.0.0.1:${WEB_PORT[rt]}/f7.bin") ||
		{ log "nginx under the runtime serves different bytes"; return 1; }
	alternate web_wrk || return 1
	result db.nginx_static_4k req/s 0.8 "$V_RT" "$V_PLAIN"
	stop "$rt_pid"
	stop "$plain_pid"
}

for p in pgbench mysqlslap nginx; do
	part "$p" || continue
	log "== $p"
	"bench_$p" || { log "$p: FAILED (no RESULT)"; failed+=("$p"); }
done
[ ${#failed[@]} -eq 0 ] || { log "failed parts: ${failed[*]}"; exit 1; }
exit 0
