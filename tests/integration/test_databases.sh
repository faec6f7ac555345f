#!/usr/bin/env bash
# test_databases.sh - real databases and a signal-heavy writer on encrypted
# volumes under the runtime (issue 10), each started by the test with its
# Debian default configuration (only the data directory, a port, a socket
# directory and a pid file are passed), on 127.0.0.1 at free ports, stopped
# by PID:
#
# - PostgreSQL 15: initdb with the superuser password from an injection file
#   (--pwfile), PGDATA on a volume; pgbench TPC-B, 8 clients, 60 s, without
#   an error; the TPC-B balance sums agree (accounts = branches = tellers =
#   history deltas) and every acknowledged transaction is in pgbench_history,
#   after a clean restart and after a kill -9 of the postmaster during a run;
#   process titles (postgres: checkpointer) show in ps.
# - MariaDB 10.11: mariadb-install-db, the root password from an injection
#   file (an --init-file), InnoDB and Aria tables, mysqlslap for a fixed
#   number of queries, a clean stop by SIGTERM, restart and read back; a
#   kill -9 during autocommit inserts: every insert the client saw
#   acknowledged is back after the restart. mariadb-install-db (a #!/bin/sh
#   script) as the session's command.
# - sync_writer (tests/tools/sync_writer.c): pwrite + fsync on a volume with
#   SIGALRM every 500 us (one process; three forked processes killed -9);
#   CAS stopped for 5 s and restarted during the writes (the writer waits
#   without spinning); CAS gone for good (a sync fails after
#   SCONE_TAG_REPORT_TIMEOUT, later ones and the exit after 1 s); CAS answering
#   slowly (a TCP proxy that delays every chunk; scone-cas stopped by
#   SIGSTOP for 300 ms at a time); a program a shell execs after its
#   sibling in a pipeline committed (mariadb-install-db's pattern). The
#   volume opens afterwards with every record whose fsync returned 0.
#   CAS's audit log under that writer: one entry a span of tag reports.
# - Node.js: a script writing to volume files and host files while it
#   accepts TCP connections (libuv closes files with syscall(SYS_close)):
#   every byte in the file it was meant for; fs.readdir of a volume
#   directory lists the plaintext names.
#
# On disk, in every case: the volume's host directory holds only
# volume.fspf* and 32-hex names, and none of: a row marker, the password,
# PostgreSQL's "pg_control"/"pg_catalog"/config text/SCRAM verifier,
# "InnoDB", "mysql_native_password", "SQLite format". The "plain reference"
# cases show that those strings are in a plain data directory, so their
# absence means something.
#
# The databases run as an unprivileged user (postgres refuses root and
# mariadbd runs as root only when told to): the invoking user, or when that
# is root, the system user `scone-test` (created here if absent). The
# runtime creates the volume directory as that user, so its parent belongs
# to it. Clients (psql, pgbench, mariadb, mysqlslap) run without the
# runtime and take the password from PGPASSWORD / MYSQL_PWD.
#
# DB_PLAIN=1 runs the same cases without the runtime (plain directories):
# the harness's own check; the CAS cases are skipped there and the on-disk
# check is reversed (the markers must be found). DB_PGBENCH_SECONDS
# (default 60) sets the length of the TPC-B run. T_CASE=PATTERN runs only
# the matching cases (the postgres and mariadb steps build on their first
# step).
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
. tests/integration/cas_lib.sh
t_init
cas_require
DB_PLAIN=${DB_PLAIN:-0}
PGBENCH_SECONDS=${DB_PGBENCH_SECONDS:-60}
# PostgreSQL 15 (Debian 12's); another major version when 15 is not installed.
PG_BIN=/usr/lib/postgresql/15/bin
[ -x "$PG_BIN/postgres" ] || PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
NODE=/usr/bin/node
WRITER=$(dirname "$SCONE_BIN")/../tools/sync_writer
PG_PW="pw-Pg-Secret-3b8e41c7"
MY_PW="pw-Maria-Secret-9d0a52e6"
PG_MARK="SCONE-ROW-MARKER-pg-5c1"
MY_MARK="SCONE-ROW-MARKER-my-a47"

plain() { [ "$DB_PLAIN" = 1 ]; }

# ---------------- the database user, the runtime, the shared CAS ----------------

DB_ROOT=$T_TMP/db
DB_USER=$(id -un)
DB_GROUP=$(id -gn)
AS_DB=()
mkdir -p "$DB_ROOT"
chmod 711 "$T_TMP" "$DB_ROOT"
db_user_setup() {
	[ "$(id -u)" -eq 0 ] || return 0
	DB_USER=scone-test
	if ! id -u "$DB_USER" >/dev/null 2>&1; then
		useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$DB_USER" ||
			id -u "$DB_USER" >/dev/null 2>&1 || return 1 # a parallel run may have created it
	fi
	DB_GROUP=$(id -gn "$DB_USER")
	AS_DB=(setpriv --reuid="$DB_USER" --regid="$DB_GROUP" --init-groups --)
}
if ! db_user_setup; then
	echo "not ok - setup: cannot create the unprivileged user scone-test (useradd)"
	t_done
	exit 1
fi

# The CLI and the runtime, readable by the database user wherever the
# checkout lives (the exec'd `scone run` finds ../lib/libscone.so).
RT_BIN=$DB_ROOT/rt/bin
mkdir -p "$RT_BIN" "$DB_ROOT/rt/lib"
cp "$SCONE_BIN" "$RT_BIN/scone"
cp "$(dirname "$SCONE_BIN")/../lib/libscone.so" "$DB_ROOT/rt/lib/"
chmod -R a+rX "$DB_ROOT/rt"

# note TEXT: a line for the log of the whole run (figures, what happened),
# whatever the case's outcome.
exec 3>&1
note() { echo "# $*" >&3; }

# show_log FILE [N]: a server's log in short: the runtime's lines counted
# (they repeat), then the last N (12) other lines.
show_log() {
	echo "--- $1:"
	grep -a '^scone:' "$1" | sort | uniq -c | sort -rn | head -6
	grep -av '^scone:' "$1" | grep -av '^[[:space:]]*$' | tail -"${2:-12}"
	echo "---"
}

# show_errors: the [ERROR] lines of $OUT and $ERR (where mariadbd's reasons are).
show_errors() {
	grep -ah -e '\[ERROR\]' -e '^scone:' "$OUT" "$ERR" | grep -v 'running without a TEE' | cut -c1-400 | awk '!seen[$0]++' | head -12 || true
}

# db_case: the servers a case starts are stopped when it ends, whatever
# its outcome (cas_case_begin's trap); the case directory is the working
# directory of the programs the database user runs: it must be able to
# enter it.
db_case() {
	cas_case_begin
	chmod 711 "$CASE_DIR"
}

# A directory of the database user.
db_dir() {
	mkdir -p "$@"
	chown "$DB_USER:$DB_GROUP" "$@"
	chmod 700 "$@"
}

CAS_FP=
db_cas_start() {
	local try i code
	for try in 1 2 3; do
		CAS_PORT=$(free_port)
		CAS_ADDR=127.0.0.1:$CAS_PORT
		CAS_DIR=$DB_ROOT/cas
		CAS_LOG=$DB_ROOT/cas.log
		"$SCONE_CAS_BIN" --state-dir "$CAS_DIR" --listen "$CAS_ADDR" --workers "$CAS_WORKERS" >>"$CAS_LOG" 2>&1 </dev/null &
		CAS_PID=$!
		t_track_pid "$CAS_PID"
		for ((i = 0; i < 200; i++)); do
			alive "$CAS_PID" || break
			code=$(health_status)
			if [ "$code" = 200 ]; then
				CAS_FP=$(cert_fp "$CAS_DIR/cas.crt")
				return 0
			fi
			sleep 0.1
		done
		kill -9 "$CAS_PID" 2>/dev/null
		wait "$CAS_PID" 2>/dev/null
		t_untrack_pid "$CAS_PID"
	done
	return 1
}
if ! plain; then
	if ! db_cas_start; then
		echo "not ok - setup: scone-cas did not start"
		tail -20 "$DB_ROOT/cas.log" | sed 's/^/#   /'
		t_done
		exit 1
	fi
	if ! (owner_new "$DB_ROOT/owner") >"$DB_ROOT/owner.log" 2>&1; then
		echo "not ok - setup: owner identity"
		sed 's/^/#   /' "$DB_ROOT/owner.log"
		t_done
		exit 1
	fi
	export SCONE_CLI_CONFIG=$DB_ROOT/owner/config.json
fi

# rt CONFIG_ID PROGRAM ARGS...: sets RT to the command that runs PROGRAM
# (an absolute path) as the database user under the runtime with the
# configuration CONFIG_ID of the shared CAS; every step execs the next, so
# the PID of "${RT[@]}" is the program's. With DB_PLAIN=1: PROGRAM alone
# with an empty environment, as the runtime gives it.
RT=()
rt() {
	local id=$1
	shift
	if plain; then
		RT=(${AS_DB[@]+"${AS_DB[@]}"} env -i "$@")
	else
		RT=(${AS_DB[@]+"${AS_DB[@]}"} env -i "$RT_BIN/scone" run --cas "$CAS_ADDR" --cas-fingerprint "$CAS_FP"
			--config-id "$id" -- "$@")
	fi
}

# needs STEP / passed STEP: the steps of one database build on each other.
needs() {
	[ -e "$DB_ROOT/passed.$1" ] || fail "not run: it needs the step '$1', which failed or did not run"
}
passed() { touch "$DB_ROOT/passed.$1"; }

# create_session FILE: upload it to the shared CAS (no-op in plain mode).
create_session() {
	plain || expect_created "$1"
}

# plain_inject PATH CONTENT: in plain mode, the injection file at PATH that
# the session would give (a file of the database user); under the runtime
# PATH must not exist on the host.
plain_inject() {
	if plain; then
		db_dir "$(dirname "$1")"
		printf '%s' "$2" >"$1"
		chown "$DB_USER:$DB_GROUP" "$1"
		chmod 400 "$1"
	fi
}
no_injection_on_host() {
	plain || [ ! -e "$1" ] || fail "the injection file $1 exists on the host"
}

# wait_gone SECONDS PID...: every PID has exited (a zombie counts as gone).
wait_gone() {
	local t=$1 p i left
	shift
	for ((i = 0; i < t * 10; i++)); do
		left=
		for p in "$@"; do alive "$p" && left="$left $p"; done
		[ -n "$left" ] || return 0
		sleep 0.1
	done
	ps -o pid=,args= -p "${left# }" || true
	fail "processes still running ${t}s later:$left"
}

# stop_server PID LOG SECONDS: SIGTERM; it must exit with status 0 in time.
stop_server() {
	local pid=$1 log=$2 t=$3 i rc=0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < t * 10; i++)); do
		alive "$pid" || break
		sleep 0.1
	done
	if alive "$pid"; then
		show_log "$log"
		kill -9 "$pid" 2>/dev/null
		fail "server (pid $pid) did not stop within ${t}s of SIGTERM"
	fi
	wait "$pid" 2>/dev/null || rc=$?
	case_untrack_pid "$pid"
	[ "$rc" -eq 0 ] || { show_log "$log"; fail "server (pid $pid) exited with status $rc after SIGTERM"; }
}

# no_secret_in_proc PID SECRET: neither /proc/PID/environ nor cmdline holds it.
no_secret_in_proc() {
	local f
	for f in environ cmdline; do
		[ -r "/proc/$1/$f" ] || fail "/proc/$1/$f not readable"
		if grep -qaF -e "$2" "/proc/$1/$f"; then fail "the secret is in /proc/$1/$f"; fi
	done
}

# on_disk DIR SECRET MARKER...: under the runtime, DIR (a volume's host
# directory) holds only volume.fspf* and 32-hex names, and neither the
# secret, nor any marker, nor SQLite's header. In plain mode every marker
# must be found there instead (the check's own check); the secret never.
on_disk() {
	local dir=$1 secret=$2 m f
	shift 2
	[ -d "$dir" ] || fail "no directory $dir"
	if grep -rqaF -e "$secret" "$dir"; then fail "the password is on disk in $dir ($(grep -rlaF -e "$secret" "$dir" | head -3))"; fi
	if plain; then
		for m in "$@"; do
			grep -rqaF -e "$m" "$dir" || fail "plain run: '$m' not found under $dir: the on-disk check would prove nothing"
		done
		return 0
	fi
	[ -f "$dir/volume.fspf" ] || fail "no volume.fspf in $dir"
	for f in "$dir"/* "$dir"/.[!.]*; do
		[ -e "$f" ] || continue
		f=${f##*/}
		[[ $f == volume.fspf* ]] || [[ $f =~ ^[0-9a-f]{32}$ ]] || { ls -la "$dir" | head -20; fail "unexpected host file name $dir/$f"; }
	done
	for m in "$@" "SQLite format"; do
		if grep -rqaF -e "$m" "$dir"; then fail "'$m' in plaintext under $dir ($(grep -rlaF -e "$m" "$dir" | head -3))"; fi
	done
}

# ================= PostgreSQL 15 =================

PG=$DB_ROOT/pg
PG_MARKERS=("$PG_MARK" "pg_control" "pg_catalog" "PostgreSQL configuration file" "SCRAM-SHA-256")
PG_PORT=
PG_PID=
PG_LOG=

pg_session() {
	cat <<YAML
name: db-pg
version: "0.3"
security:
  attestation:
    mode: none
services:
  - name: initdb
    image_name: pg
  - name: server
    image_name: pg
images:
  - name: pg
    injection_files:
      - path: $PG/secrets/pwfile
        content: \$\$SCONE::pg_password\$\$
    volumes:
      - name: pgdata
        path: $PG/data
volumes:
  - name: pgdata
secrets:
  - {name: pg_password, kind: ascii, value: "$PG_PW"}
YAML
}

# psql_q SQL: one query as the superuser over TCP; its rows on stdout.
psql_q() {
	PGPASSWORD=$PG_PW PGCONNECT_TIMEOUT=10 timeout 120 psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
		-At -v ON_ERROR_STOP=1 -c "$1"
}

# pg_start NAME [CONFIG_ID DATADIR]: the postmaster in the background
# (log in $CASE_DIR/NAME.log), ready for queries (crash recovery included)
# within 180 s. Sets PG_PID, PG_PORT, PG_LOG.
pg_start() {
	local name=$1 id=${2:-db-pg/server} data=${3:-$PG/data} i
	PG_PORT=$(free_port)
	PG_LOG=$CASE_DIR/$name.log
	rt "$id" "$PG_BIN/postgres" -D "$data" -p "$PG_PORT" -h 127.0.0.1 -k "$PG/run"
	"${RT[@]}" >"$PG_LOG" 2>&1 </dev/null &
	PG_PID=$!
	case_track_pid "$PG_PID"
	for ((i = 0; i < 1800; i++)); do
		if ! alive "$PG_PID"; then
			show_log "$PG_LOG"
			fail "postgres exited during start-up"
		fi
		if [ $((i % 5)) -eq 0 ] && psql_q "select 1" >/dev/null 2>&1; then return 0; fi
		sleep 0.1
	done
	show_log "$PG_LOG"
	fail "postgres did not accept queries within 180 s"
}

pg_stop() { stop_server "$PG_PID" "$PG_LOG" 180; }

# pg_balances WHAT: the four TPC-B sums are equal; sets PG_SUM and PG_HIST
# (the sum and the number of pgbench_history rows).
PG_SUM=
PG_HIST=
pg_balances() {
	local row a b t d n
	row=$(psql_q "select (select sum(abalance) from pgbench_accounts), (select sum(bbalance) from pgbench_branches),
		(select sum(tbalance) from pgbench_tellers), (select coalesce(sum(delta), 0) from pgbench_history),
		(select count(*) from pgbench_history)") || fail "$1: the balance query failed"
	IFS='|' read -r a b t d n <<<"$row"
	echo "# $1: accounts $a, branches $b, tellers $t, history $d ($n rows)"
	[ -n "$a" ] && [ "$a" = "$b" ] && [ "$a" = "$t" ] && [ "$a" = "$d" ] ||
		fail "$1: TPC-B sums differ: accounts $a, branches $b, tellers $t, history deltas $d"
	PG_SUM=$a PG_HIST=$n
}

# pgbench_processed FILE: "number of transactions actually processed: N".
pgbench_processed() {
	sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$1" | tail -1
}

case_pg_reference() {
	db_case
	local ref=$DB_ROOT/pgref
	db_dir "$ref" "$ref/run"
	printf '%s' "$PG_PW" >"$ref/pw"
	chown "$DB_USER" "$ref/pw"
	expect_ok ${AS_DB[@]+"${AS_DB[@]}"} env -i "$PG_BIN/initdb" -D "$ref/data" -U postgres --pwfile="$ref/pw" --auth=scram-sha-256 --no-sync
	PG_PORT=$(free_port)
	PG_LOG=$CASE_DIR/ref.log
	${AS_DB[@]+"${AS_DB[@]}"} env -i "$PG_BIN/postgres" -D "$ref/data" -p "$PG_PORT" -h 127.0.0.1 -k "$ref/run" \
		>"$PG_LOG" 2>&1 </dev/null &
	PG_PID=$!
	case_track_pid "$PG_PID"
	local i
	for ((i = 0; i < 300; i++)); do psql_q "select 1" >/dev/null 2>&1 && break; sleep 0.1; done
	psql_q "create table scone_marker(id int primary key, v text);
		insert into scone_marker select i, '$PG_MARK-' || i from generate_series(1, 100) i; checkpoint" >/dev/null ||
		fail "plain postgres: insert"
	pg_stop
	local m
	for m in "${PG_MARKERS[@]}"; do
		grep -rqaF -e "$m" "$ref/data" || fail "'$m' is not in a plain PGDATA: it proves nothing about a volume"
	done
	if grep -rqaF -e "$PG_PW" "$ref/data"; then fail "the password is in plaintext even in a plain PGDATA"; fi
	rm -rf "$ref"
}

case_pg_init() {
	db_case
	[ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/postgres" ] || t_skip_case "postgresql-15 not installed (scripts/install-deps.sh)"
	command -v pgbench >/dev/null && command -v psql >/dev/null || t_skip_case "pgbench/psql not installed (scripts/install-deps.sh)"
	db_dir "$PG" "$PG/run"
	plain_inject "$PG/secrets/pwfile" "$PG_PW"
	pg_session >pg.yaml
	create_session pg.yaml
	rt db-pg/initdb "$PG_BIN/initdb" -D "$PG/data" -U postgres --pwfile="$PG/secrets/pwfile" --auth=scram-sha-256
	T_CMD_TIMEOUT=600 expect_ok "${RT[@]}"
	assert_grep "^Success" "$OUT"
	no_injection_on_host "$PG/secrets/pwfile"
	on_disk "$PG/data" "$PG_PW"
	pg_start init
	no_secret_in_proc "$PG_PID" "$PG_PW"
	# The password is the session's: a wrong one is refused.
	if PGPASSWORD=wrong-password psql -X -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -Atc "select 1" >wrong.out 2>&1; then
		fail "a wrong password was accepted"
	fi
	assert_grep "password authentication failed" wrong.out
	psql_q "create table scone_marker(id int primary key, v text);
		insert into scone_marker select i, '$PG_MARK-' || i from generate_series(1, 1000) i" >/dev/null ||
		{ show_log "$PG_LOG"; fail "create/insert scone_marker"; }
	PGPASSWORD=$PG_PW timeout 600 pgbench -h 127.0.0.1 -p "$PG_PORT" -U postgres -i -s 1 -q postgres >init.out 2>&1 ||
		{ cat init.out; show_log "$PG_LOG"; fail "pgbench -i -s 1"; }
	pg_balances "after pgbench -i"
	assert_eq "0 0" "$PG_SUM $PG_HIST" "balances after pgbench -i"
	pg_stop
	on_disk "$PG/data" "$PG_PW" "${PG_MARKERS[@]}"
	passed pg_init
}

case_pg_titles() {
	db_case
	needs pg_init
	pg_start titles
	local kids want
	kids=$(ps -o args= --ppid "$PG_PID")
	echo "$kids"
	for want in "postgres: checkpointer" "postgres: background writer" "postgres: walwriter"; do
		grep -q "^$want" <<<"$kids" || { pg_stop; fail "no '$want' process title in ps"; }
	done
	pg_stop
}

case_pg_bench() {
	db_case
	needs pg_init
	local n h0 sum h1
	pg_start bench
	pg_balances "before the run"
	h0=$PG_HIST
	PGPASSWORD=$PG_PW timeout $((PGBENCH_SECONDS + 300)) pgbench -n -h 127.0.0.1 -p "$PG_PORT" -U postgres \
		-c 8 -j 2 -T "$PGBENCH_SECONDS" postgres >bench.out 2>&1 ||
		{ cat bench.out; show_log "$PG_LOG"; fail "pgbench TPC-B -c 8 -T $PGBENCH_SECONDS failed"; }
	cat bench.out
	note "pgbench TPC-B -c 8 ${PGBENCH_SECONDS} s: $(grep -E '^(number of transactions actually processed|tps)' bench.out | tr '\n' ' ')"
	if grep -qi "error" bench.out; then fail "pgbench printed an error"; fi
	assert_grep "^number of failed transactions: 0 " bench.out
	n=$(pgbench_processed bench.out)
	[ -n "$n" ] && [ "$n" -gt 0 ] || fail "pgbench processed no transaction"
	pg_balances "after the run"
	sum=$PG_SUM h1=$PG_HIST
	assert_eq "$((h0 + n))" "$h1" "pgbench_history rows: before ($h0) + processed ($n)"
	pg_stop
	# A clean restart: the same state.
	pg_start bench-restart
	pg_balances "after a clean restart"
	assert_eq "$sum $h1" "$PG_SUM $PG_HIST" "balances and history after a clean restart"
	pg_stop
	# (A stop that finds an autovacuum worker at work ends it with a FATAL line, as without the runtime.)
	if grep -E "PANIC|FATAL" "$CASE_DIR"/bench*.log |
		grep -vE "the database system is (starting up|shutting down)|terminating autovacuum process due to administrator command"; then
		fail "postgres logged FATAL or PANIC"
	fi
	on_disk "$PG/data" "$PG_PW" "${PG_MARKERS[@]}"
}

case_pg_crash() {
	# The postmaster serves the volume: killed, the runtime ends every other process of
	# the program (a crash, docs/runtime.md); the restart recovers as after a power cut.
	db_case
	needs pg_init
	local h0 n h1 kids bench i crash_log
	pg_start crash
	pg_balances "before the crash run"
	h0=$PG_HIST
	PGPASSWORD=$PG_PW timeout 300 pgbench -n -h 127.0.0.1 -p "$PG_PORT" -U postgres -c 8 -j 2 -T 60 postgres \
		>crash-bench.out 2>&1 &
	bench=$!
	case_track_pid "$bench"
	# Let it commit for a while (at least 200 transactions or 20 s), then kill the postmaster.
	for ((i = 0; i < 40; i++)); do
		sleep 0.5
		n=$(psql_q "select count(*) from pgbench_history" 2>/dev/null) || n=0
		[ "$n" -lt $((h0 + 200)) ] || break
	done
	alive "$bench" || { cat crash-bench.out; show_log "$PG_LOG"; fail "pgbench ended before the kill"; }
	kids=$(ps -o pid= --ppid "$PG_PID" | tr '\n' ' ')
	crash_log=$PG_LOG
	kill -9 "$PG_PID"
	wait "$PG_PID" 2>/dev/null || true
	case_untrack_pid "$PG_PID"
	wait "$bench" 2>/dev/null || true
	case_untrack_pid "$bench"
	cat crash-bench.out
	# shellcheck disable=SC2086 # a list of PIDs
	wait_gone 60 $kids
	n=$(pgbench_processed crash-bench.out)
	note "pgbench before the kill -9: $n transactions acknowledged, history had $h0 rows"
	grep -a '^scone: \(warn\|error\)' "$crash_log" | grep -v 'without a TEE' | sed 's/pid [0-9]*/pid N/g' | sort | uniq -c |
		while read -r line; do note "runtime after the kill: $line"; done
	[ -n "$n" ] && [ "$n" -gt 0 ] || fail "pgbench reported no processed transaction before the kill"
	# Restart: crash recovery on the volume; every acknowledged transaction is there.
	pg_start crash-restart
	pg_balances "after kill -9 and restart"
	h1=$PG_HIST
	[ "$h1" -ge $((h0 + n)) ] || {
		show_log "$crash_log" 100
		show_log "$PG_LOG" 20
		fail "pgbench_history has $h1 rows: $((h0 + n - h1)) of the $n acknowledged transactions are lost"
	}
	assert_eq "1000" "$(psql_q "select count(*) from scone_marker where v like '$PG_MARK-%'")" "scone_marker rows"
	pg_stop
	on_disk "$PG/data" "$PG_PW" "${PG_MARKERS[@]}"
}

# ================= MariaDB 10.11 =================

MY=$DB_ROOT/my
MY_MARKERS=("$MY_MARK" "InnoDB" "mysql_native_password")
MY_PORT=
MY_PID=
MY_LOG=

my_session() {
	cat <<YAML
name: db-my
version: "0.3"
security:
  attestation:
    mode: none
services:
  - name: install
    image_name: my
  - name: server
    image_name: my
  - name: entry
    image_name: my-entry
    command: /usr/bin/mariadb-install-db --help
images:
  - name: my
    injection_files:
      - path: $MY/secrets/init.sql
        content: |
          ALTER USER root@localhost IDENTIFIED VIA mysql_native_password USING PASSWORD('\$\$SCONE::db_root_password\$\$') OR unix_socket;
    volumes:
      - name: mydata
        path: $MY/data
  - name: my-entry
volumes:
  - name: mydata
secrets:
  - {name: db_root_password, kind: ascii, value: "$MY_PW"}
YAML
}

# my_q SQL: one statement as root over TCP (password from MYSQL_PWD); rows on stdout.
my_q() {
	MYSQL_PWD=$MY_PW timeout 120 mariadb --connect-timeout=10 -h 127.0.0.1 -P "$MY_PORT" -u root -N -B -e "$1"
}

# my_start NAME [DATADIR [CONFIG_ID]]: mariadbd in the background, answering queries within 180 s.
my_start() {
	local name=$1 data=${2:-$MY/data} id=${3:-db-my/server} i
	MY_PORT=$(free_port)
	MY_LOG=$CASE_DIR/$name.log
	rt "$id" /usr/sbin/mariadbd --datadir="$data" --port="$MY_PORT" --socket="$MY/run/mysqld.sock" \
		--pid-file="$MY/run/mysqld.pid" --init-file="$MY/secrets/init.sql"
	"${RT[@]}" >"$MY_LOG" 2>&1 </dev/null &
	MY_PID=$!
	case_track_pid "$MY_PID"
	for ((i = 0; i < 1800; i++)); do
		if ! alive "$MY_PID"; then
			show_log "$MY_LOG"
			fail "mariadbd exited during start-up"
		fi
		if [ $((i % 5)) -eq 0 ] && my_q "select 1" >/dev/null 2>&1; then return 0; fi
		sleep 0.1
	done
	show_log "$MY_LOG"
	fail "mariadbd did not accept queries within 180 s"
}

my_stop() { stop_server "$MY_PID" "$MY_LOG" 180; }

# my_rows ENGINE FROM TO: INSERT ... VALUES for the marker rows FROM..TO.
my_rows() {
	local i sep=
	printf 'INSERT INTO scone.t_%s (id, v) VALUES ' "$1"
	for ((i = $2; i <= $3; i++)); do
		printf "%s(%d, '%s-%s-%d')" "$sep" "$i" "$MY_MARK" "$1" "$i"
		sep=,
	done
	printf ';\n'
}

case_my_reference() {
	db_case
	command -v mariadb-install-db >/dev/null || t_skip_case "mariadb-server not installed (scripts/install-deps.sh)"
	local ref=$DB_ROOT/myref
	db_dir "$ref" "$ref/run"
	printf "ALTER USER root@localhost IDENTIFIED VIA mysql_native_password USING PASSWORD('%s') OR unix_socket;\n" \
		"$MY_PW" >"$ref/init.sql"
	chown "$DB_USER" "$ref/init.sql"
	T_CMD_TIMEOUT=300 expect_ok ${AS_DB[@]+"${AS_DB[@]}"} env -i /usr/bin/mariadb-install-db --datadir="$ref/data"
	MY_PORT=$(free_port)
	MY_LOG=$CASE_DIR/ref.log
	${AS_DB[@]+"${AS_DB[@]}"} env -i /usr/sbin/mariadbd --datadir="$ref/data" --port="$MY_PORT" \
		--socket="$ref/run/mysqld.sock" --pid-file="$ref/run/mysqld.pid" --init-file="$ref/init.sql" \
		>"$MY_LOG" 2>&1 </dev/null &
	MY_PID=$!
	case_track_pid "$MY_PID"
	local i
	for ((i = 0; i < 300; i++)); do my_q "select 1" >/dev/null 2>&1 && break; sleep 0.1; done
	my_q "CREATE DATABASE scone; CREATE TABLE scone.t_innodb (id INT PRIMARY KEY, v VARCHAR(100)) ENGINE=InnoDB;
		CREATE TABLE scone.t_aria (id INT PRIMARY KEY, v VARCHAR(100)) ENGINE=Aria;
		$(my_rows innodb 1 50) $(my_rows aria 1 50)" || { show_log "$MY_LOG"; fail "plain mariadbd: insert"; }
	my_stop
	local m
	for m in "${MY_MARKERS[@]}"; do
		grep -rqaF -e "$m" "$ref/data" || fail "'$m' is not in a plain data directory: it proves nothing about a volume"
	done
	if grep -rqaF -e "$MY_PW" "$ref/data"; then fail "the password is in plaintext even in a plain data directory"; fi
	rm -rf "$ref"
}

case_my_install() {
	db_case
	command -v mariadb-install-db >/dev/null && [ -x /usr/sbin/mariadbd ] ||
		t_skip_case "mariadb-server not installed (scripts/install-deps.sh)"
	command -v mysqlslap >/dev/null && command -v mariadb >/dev/null ||
		t_skip_case "mariadb-client not installed (scripts/install-deps.sh)"
	db_dir "$MY" "$MY/run"
	plain_inject "$MY/secrets/init.sql" \
		"ALTER USER root@localhost IDENTIFIED VIA mysql_native_password USING PASSWORD('$MY_PW') OR unix_socket;"
	[ -e "$DB_ROOT/session.db-my" ] || { my_session >my.yaml; create_session my.yaml; touch "$DB_ROOT/session.db-my"; }
	rt db-my/install /usr/bin/mariadb-install-db --datadir="$MY/data"
	T_CMD_TIMEOUT=600 run_cmd "${RT[@]}"
	# Every program the script runs must have started, and the bootstrap succeeded.
	if [ "$RC" -ne 0 ] || ! grep -qx "OK" "$OUT" || grep -aqE -e "^scone: (error: )?cannot start" -e "\\[ERROR\\]" "$ERR"; then
		show_errors
		fail "mariadb-install-db failed (exit $RC$(grep -qx OK "$OUT" && echo ", its bootstrap said OK"))"
	fi
	on_disk "$MY/data" "$MY_PW"
	passed my_install
}

case_my_server() {
	db_case
	needs my_install
	local sums
	my_start server
	no_secret_in_proc "$MY_PID" "$MY_PW"
	no_injection_on_host "$MY/secrets/init.sql"
	if MYSQL_PWD=wrong-password mariadb -h 127.0.0.1 -P "$MY_PORT" -u root -e "select 1" >wrong.out 2>&1; then
		fail "a wrong root password was accepted"
	fi
	assert_grep "Access denied" wrong.out
	my_q "CREATE DATABASE scone; CREATE TABLE scone.t_innodb (id INT PRIMARY KEY, v VARCHAR(100)) ENGINE=InnoDB;
		CREATE TABLE scone.t_aria (id INT PRIMARY KEY, v VARCHAR(100)) ENGINE=Aria;
		$(my_rows innodb 1 500) $(my_rows aria 1 500)" || { show_log "$MY_LOG"; fail "create and fill the tables"; }
	assert_eq "InnoDB Aria" "$(my_q "SELECT engine FROM information_schema.tables WHERE table_schema = 'scone'
		ORDER BY table_name = 't_aria'" | tr '\n' ' ' | sed 's/ $//')" "engines of the tables"
	assert_eq "mysql scone sys test" "$(my_q "SHOW DATABASES" | grep -vx -e information_schema -e performance_schema |
		sort | tr '\n' ' ' | sed 's/ $//')" "databases (those of mariadb-install-db and scone)"
	sums=$(my_q "CHECKSUM TABLE scone.t_innodb, scone.t_aria")
	# mysqlslap: 2000 queries (mixed reads and autocommit writes) from 4 clients, on each engine.
	MYSQL_PWD=$MY_PW timeout 600 mysqlslap -h 127.0.0.1 -P "$MY_PORT" -u root --concurrency=4 --iterations=1 \
		--number-of-queries=2000 --auto-generate-sql --auto-generate-sql-load-type=mixed \
		--auto-generate-sql-add-autoincrement --engine=InnoDB,Aria >slap.out 2>&1 ||
		{ cat slap.out; show_log "$MY_LOG"; fail "mysqlslap failed"; }
	cat slap.out
	note "mysqlslap 2000 queries, 4 clients: $(grep -E 'Running for engine|Average number' slap.out | sed 's/^[[:space:]]*//' | tr '\n' ' ')"
	[ "$(grep -c "Average number of seconds" slap.out)" -eq 2 ] || fail "mysqlslap did not run on both engines"
	alive "$MY_PID" || { show_log "$MY_LOG"; fail "mariadbd died under mysqlslap"; }
	my_stop
	assert_grep "Shutdown complete" "$MY_LOG"
	# Restart and read back.
	my_start server-restart
	assert_eq "$sums" "$(my_q "CHECKSUM TABLE scone.t_innodb, scone.t_aria")" "table checksums after the restart"
	assert_eq "500 500" "$(my_q "SELECT (SELECT count(*) FROM scone.t_innodb), (SELECT count(*) FROM scone.t_aria)" |
		tr '\t' ' ')" "rows after the restart"
	assert_eq "$MY_MARK-aria-377" "$(my_q "SELECT v FROM scone.t_aria WHERE id = 377")" "an Aria row"
	my_stop
	if grep -E "\[ERROR\]" "$CASE_DIR"/server*.log; then fail "mariadbd logged errors"; fi
	on_disk "$MY/data" "$MY_PW" "${MY_MARKERS[@]}"
}

case_my_crash() {
	db_case
	needs my_install
	local loop i n missing
	my_start crash
	my_q "CREATE DATABASE IF NOT EXISTS scone;
		CREATE TABLE scone.acked (id INT PRIMARY KEY, v VARCHAR(100)) ENGINE=InnoDB" ||
		{ show_log "$MY_LOG"; fail "create scone.acked"; }
	# Autocommit inserts, one client process each; an id goes to `acked` once
	# the server acknowledged it. The loop ends at the first failure after the kill.
	: >acked
	(
		i=0
		while :; do
			i=$((i + 1))
			if MYSQL_PWD=$MY_PW mariadb --connect-timeout=5 -h 127.0.0.1 -P "$MY_PORT" -u root \
				-e "INSERT INTO scone.acked VALUES ($i, '$MY_MARK-ack-$i')" >/dev/null 2>>insert.err; then
				echo "$i" >>acked
			elif [ -e killed ]; then
				break
			fi
		done
	) &
	loop=$!
	case_track_pid "$loop"
	for ((i = 0; i < 300; i++)); do
		[ "$(wc -l <acked)" -lt 150 ] || break
		alive "$MY_PID" || break
		sleep 0.1
	done
	alive "$MY_PID" || { show_log "$MY_LOG"; fail "mariadbd died during the inserts (before the kill)"; }
	kill -9 "$MY_PID"
	wait "$MY_PID" 2>/dev/null || true
	case_untrack_pid "$MY_PID"
	touch killed
	wait_gone 30 "$loop"
	case_untrack_pid "$loop"
	n=$(wc -l <acked)
	note "$n inserts acknowledged before the kill"
	[ "$n" -ge 20 ] || { cat insert.err | tail -5; fail "only $n inserts were acknowledged before the kill"; }
	my_start crash-restart
	my_q "SELECT id FROM scone.acked ORDER BY id" >present || { show_log "$MY_LOG"; fail "read scone.acked"; }
	missing=$(sort -n acked | comm -23 - <(sort -n present) | head -10 | tr '\n' ' ')
	[ -z "$missing" ] || fail "acknowledged inserts lost after kill -9 and restart: ids $missing(of $n)"
	my_stop
	on_disk "$MY/data" "$MY_PW" "${MY_MARKERS[@]}"
}

case_my_entry() {
	db_case
	command -v mariadb-install-db >/dev/null || t_skip_case "mariadb-server not installed (scripts/install-deps.sh)"
	# The program is a #!/bin/sh script; the session's command gives its
	# arguments (a container entrypoint): the shell must still run the script
	# (without it, sh takes --help for its own option and fails).
	db_dir "$MY"
	[ -e "$DB_ROOT/session.db-my" ] || { my_session >my.yaml; create_session my.yaml; touch "$DB_ROOT/session.db-my"; }
	if plain; then
		rt db-my/entry /usr/bin/mariadb-install-db --help
	else
		rt db-my/entry /usr/bin/mariadb-install-db
	fi
	run_cmd "${RT[@]}"
	# What the script itself prints for --help (exit status 1).
	/usr/bin/mariadb-install-db --help >help.plain 2>&1 || true
	grep -q "^Usage: /usr/bin/mariadb-install-db \[OPTIONS\]" "$OUT" && cmp -s help.plain "$OUT" ||
		{ show_output; fail "mariadb-install-db (#!/bin/sh) through the session's command: exit $RC, not the script's usage text"; }
}

# ================= sync_writer: signals and CAS faults =================

SW_MARK="rec 0 1"

sw_start() {
	plain && t_skip_case "plain mode: nothing to check without the runtime and CAS"
	[ -x "$WRITER" ] || fail "$WRITER not built (make tools)"
	cas_case_begin
	cas_start "$CASE_DIR/cas" "$@"
	owner_new "$CASE_DIR/owner"
	cat >sw.yaml <<YAML
name: sw
version: "0.3"
security:
  attestation:
    mode: none
services:
  - name: writer
    image_name: vol${SW_ENV:-}
images:
  - name: vol
    volumes:
      - name: data
        path: $CASE_DIR/data
volumes:
  - name: data
YAML
	expect_created sw.yaml
}

# sw_run OUT ARGS...: sync_writer ARGS under the runtime in the background; sets SW_PID.
sw_run() {
	local out=$1
	shift
	"$SCONE_BIN" run "${SW_CAS[@]}" --config-id sw/writer -- "$WRITER" "$@" "$CASE_DIR/data" \
		>"$out" 2>"$out.err" </dev/null &
	SW_PID=$!
	case_track_pid "$SW_PID"
}
SW_CAS=()

# sw_check OUT PROCS: the volume opens (a new start under the runtime) and
# holds intact every record whose fsync returned 0 in OUT.
sw_check() {
	local out=$1 procs=$2 lost
	"$SCONE_BIN" run --config-id sw/writer -- "$WRITER" --check --procs "$procs" "$CASE_DIR/data" >check.out 2>check.err ||
		{ cat check.out check.err; fail "the volume does not open (or its files cannot be read) after the run"; }
	[ "$(grep -c '^CHECK' check.out)" -eq "$procs" ] || { cat check.out check.err; fail "the check did not cover $procs writers"; }
	lost=$(awk '
		FNR == NR && $1 == "SYNCED" { synced[$2 " " $3] = 1; last[$2] = $3; n[$2]++; next }
		FNR != NR && $1 == "BAD" { bad[$2 " " $3] = 1 }
		FNR != NR && $1 == "CHECK" { slots[$2] = $3 }
		END {
			for (k in n) {
				miss = 0; first = ""
				for (r in synced) {
					split(r, a, " ")
					if (a[1] != k) continue
					if (a[2] + 0 >= slots[k] + 0 || (r in bad)) { miss++; if (first == "" || a[2] + 0 < first + 0) first = a[2] }
				}
				printf "writer %s: %d records synced (last %d), %d slots on the volume, %d synced records missing%s\n",
					k, n[k], last[k], slots[k], miss, miss ? " (first: " first ")" : ""
			}
		}' "$out" check.out)
	echo "$lost" | while read -r line; do note "$line"; done
	if grep -q "[1-9][0-9]* synced records missing" <<<"$lost"; then
		fail "records that fsync acknowledged are not on the volume: $(grep -v ' 0 synced records missing' <<<"$lost" | tr '\n' ';')"
	fi
	on_disk "$CASE_DIR/data" "no-password-here" "$SW_MARK"
}

# sw_failures OUT: the FAILED lines (fsync or write refused), with their errno.
sw_failures() {
	grep -c '^FAILED' "$1" || true
}

sw_wait() { # SECONDS: the writer (SW_PID) exits by itself, status 0
	local rc=0
	wait_gone "$1" "$SW_PID"
	wait "$SW_PID" || rc=$?
	case_untrack_pid "$SW_PID"
	[ "$rc" -eq 0 ] || { tail -5 w.out; sort w.out.err | uniq -c | sort -rn | head -8; fail "sync_writer exited with status $rc"; }
}

case_storm_one() {
	sw_start
	sw_run w.out --signal-us 500 --seconds 6
	sw_wait 60
	local f sig
	f=$(sw_failures w.out)
	sig=$(awk '$1 == "DONE" { print $4 }' w.out)
	note "$(grep -c '^SYNCED' w.out) records synced, $f failed, $sig signals taken"
	[ "${sig:-0}" -ge 500 ] || fail "only ${sig:-0} SIGALRMs were handled in 6 s: no storm"
	[ "$f" -eq 0 ] || { sort w.out.err | uniq -c | sort -rn | head -8; fail "$f writes or fsyncs failed under SIGALRM every 500 us ($(grep -m1 '^FAILED' w.out))"; }
	[ "$(grep -c '^SYNCED' w.out)" -ge 50 ] || fail "fewer than 50 records synced in 6 s"
	sw_check w.out 1
}

# A busy volume's tag reports (one a commit): the audit log gets one entry a span of one
# runtime's reports, not one a report, and CAS's log no line a report; no report meets the
# per-connection rate limit (set to 50 a second here: the writer makes hundreds); the entries' report counts
# add up to CAS's counter; the export and the mirror (a span's versions at most once a second, the
# newest within a second) verify and cover every report.
case_audit_spans() {
	sw_start -- --audit-mirror "$CASE_DIR/mirror.log" --rate-limit 50
	sw_run w.out --seconds 3
	sw_wait 60
	local synced updates tags lines
	synced=$(grep -c '^SYNCED' w.out)
	[ "$synced" -ge 200 ] || fail "only $synced records synced in 3 s"
	expect_http 200 anon GET /metrics
	updates=$(awk '$1 == "scone_cas_volume_tag_updates_total" { print $2 }' "$BODY")
	[ "${updates:-0}" -ge "$synced" ] || fail "CAS counted ${updates:-0} tag updates for $synced synced records"
	expect_ok "$SCONE_CAS_BIN" audit-export --state-dir "$CASE_DIR/cas" "$CASE_DIR/export.log"
	read -r tags lines < <("$PYTHON" - "$CASE_DIR/export.log" <<'PY'
import json, sys
tags = [json.loads(l) for l in open(sys.argv[1]).read().splitlines()[1:]]
tags = [e for e in tags if e["event"] == "tag"]
print(len(tags), sum(e.get("reports", 1) for e in tags))
PY
)
	note "$synced records synced, $updates tag reports, $tags audit entries of tags covering $lines reports"
	[ "$lines" = "$updates" ] || fail "the tag entries cover $lines reports, CAS counted $updates"
	[ "$tags" -le 20 ] || fail "$tags audit entries for $updates tag reports: not spans"
	! grep '"path":"/v1/volumes/tag".*"status":200' "$CAS_LOG" || fail "CAS logged successful tag reports at info level"
	! grep '"path":"/v1/volumes/tag".*"status":429' "$CAS_LOG" || fail "a tag report hit the per-connection rate limit"
	expect_ok "$SCONE_BIN" cas verify-audit-log --cert "$CASE_DIR/cas/cas.crt" "$CASE_DIR/export.log"
	sleep 1.5 # (the mirror takes a span's newest version within a second: CAS's tick)
	expect_ok "$SCONE_BIN" cas verify-audit-log --cert "$CASE_DIR/cas/cas.crt" "$CASE_DIR/mirror.log"
	local mirrored versions
	read -r mirrored versions < <("$PYTHON" - "$CASE_DIR/mirror.log" <<'PY'
import json, sys
last, versions = {}, 0
for l in open(sys.argv[1]).read().splitlines()[1:]:
    e = json.loads(l)
    versions += "supersedes" in e
    last[(e["chain"], e["seq"])] = e
print(sum(e.get("reports", 1) for e in last.values() if e["event"] == "tag"), versions)
PY
)
	note "the mirror: $versions later versions of span entries, its newest ones covering $mirrored reports"
	[ "$mirrored" = "$updates" ] || fail "the mirror's newest versions cover $mirrored reports, CAS counted $updates"
	[ "$versions" -le 20 ] || fail "the mirror took $versions versions in 3 s: not at most one a second"
	sw_check w.out 1
}

# The network shield in protected mode refuses every connection no rule names: not the runtime's
# own tag reports to CAS (it connects again whenever CAS closed the idle connection).
case_netshield_reports() {
	SW_ENV=$'\n    environment:\n      SCONE_NETWORK_SHIELD: "protected"'
	sw_start
	SW_ENV=
	sw_run w.out --seconds 3
	sw_wait 60
	local f
	f=$(sw_failures w.out)
	note "$(grep -c '^SYNCED' w.out) records synced, $f failed"
	[ "$f" -eq 0 ] || { sort w.out.err | uniq -c | sort -rn | head -8; fail "$f writes or fsyncs failed with the network shield protected"; }
	[ "$(grep -c '^SYNCED' w.out)" -ge 20 ] || { head -5 w.out.err; fail "fewer than 20 records synced in 3 s"; }
	sw_check w.out 1
}

case_storm_forked() {
	sw_start
	: >w.out
	sw_run w.out --procs 3 --signal-us 500
	local i pids
	for ((i = 0; i < 100; i++)); do
		[ "$(grep -c '^START' w.out)" -lt 3 ] || break
		sleep 0.1
	done
	sleep 6
	pids=$(awk '$1 == "START" { print $3 }' w.out | tr '\n' ' ')
	[ "$(wc -w <<<"$pids")" -eq 3 ] || { cat w.out.err; fail "the three writers did not start"; }
	# shellcheck disable=SC2086 # a list of PIDs
	kill -9 $pids 2>/dev/null || true
	wait "$SW_PID" 2>/dev/null || true
	case_untrack_pid "$SW_PID"
	# shellcheck disable=SC2086
	wait_gone 20 $pids
	local f
	f=$(sw_failures w.out)
	note "$(grep -c '^SYNCED' w.out) records synced by 3 processes, $f failed"
	[ "$f" -eq 0 ] || { sort w.out.err | uniq -c | sort -rn | head -8; fail "$f writes or fsyncs failed ($(grep -m1 '^FAILED' w.out))"; }
	[ "$(grep -c '^SYNCED' w.out)" -ge 30 ] || fail "fewer than 30 records synced in 6 s"
	sw_check w.out 3
}

# proc_cpu_ms PID: the process's CPU time (user + system, all threads) in ms.
proc_cpu_ms() {
	awk -v hz="$(getconf CLK_TCK)" '{ print int(($14 + $15) * 1000 / hz) }' "/proc/$1/stat"
}

case_cas_restart() {
	sw_start
	local port=$CAS_PORT mark f after
	sw_run w.out --seconds 16
	sleep 3
	local cpu0 cpu1
	cas_stop
	note "CAS stopped at record $(grep -c '^SYNCED' w.out)"
	cpu0=$(proc_cpu_ms "$SW_PID")
	sleep 5
	cpu1=$(proc_cpu_ms "$SW_PID")
	cas_start "$CASE_DIR/cas" "$port"
	note "CAS back at record $(grep -c '^SYNCED' w.out); the writer used $((cpu1 - cpu0)) ms of CPU in the 5 s outage"
	# Waiting for CAS is waiting: reports are sent again with backoff, not in a loop.
	[ $((cpu1 - cpu0)) -lt 1000 ] || fail "the writer used $((cpu1 - cpu0)) ms of CPU while CAS was down (a busy retry loop)"
	sleep 3
	# From here on (3 s after CAS came back) every fsync must succeed again.
	mark=$(wc -l <w.out)
	sw_wait 120
	f=$(sw_failures w.out)
	after=$(tail -n +"$((mark + 1))" w.out | grep -c '^SYNCED' || true)
	note "$(grep -c '^SYNCED' w.out) records synced, $f failed (during the outage), $after synced after the restart"
	if tail -n +"$((mark + 1))" w.out | grep -q '^FAILED'; then
		tail -n +"$((mark + 1))" w.out | grep -m3 '^FAILED'
		fail "fsyncs still fail 3 s after CAS came back"
	fi
	[ "$after" -ge 20 ] || { sort w.out.err | uniq -c | sort -rn | head -8; fail "only $after records synced after CAS came back"; }
	sw_check w.out 1
}

# CAS gone for good while a program writes and syncs: the first sync that
# needs CAS fails (EIO) after SCONE_TAG_REPORT_TIMEOUT (5 s here); once it
# has, each later one tries for 1 s only, and so does the exit: the program
# is not held for the full time at every sync and close. CAS back: the
# volume opens with every synced record.
case_cas_gone() {
	SW_ENV=$'\n    environment:\n      SCONE_TAG_REPORT_TIMEOUT: "5"'
	sw_start
	SW_ENV=
	local port=$CAS_PORT t0 took f
	sw_run w.out --seconds 12
	sleep 2
	cas_stop
	t0=$(date +%s)
	note "CAS stopped for good at record $(grep -c '^SYNCED' w.out)"
	sw_wait 90
	took=$(($(date +%s) - t0))
	f=$(sw_failures w.out)
	note "the writer ended ${took} s after CAS stopped; $f syncs failed"
	[ "$f" -ge 3 ] || { sort w.out.err | uniq -c | sort -rn | head -5; fail "only $f syncs failed in the 10 s CAS was away"; }
	grep -q "gave up after 5 s: SCONE_TAG_REPORT_TIMEOUT" w.out.err || { head -5 w.out.err; fail "no message for the first failure"; }
	grep -q "still: tried for 1 s more" w.out.err || { head -5 w.out.err; fail "later syncs waited the full time again"; }
	# 10 s of writing left, the first failure 5 s in, each later sync and the exit 1.3 s (the
	# retries' backoff): about 13 s; waiting the full 5 s at each would be 20 s or more.
	[ "$took" -le 17 ] || fail "the writer ended ${took} s after CAS stopped (its exit waited for CAS again)"
	cas_start "$CASE_DIR/cas" "$port"
	sw_check w.out 1
}

# PostgreSQL's postmaster killed -9, reduced: six forked writers that
# leave 1 ms between a write and its fsync. Four of them (clients of the
# volume's server) are killed -9 1.2 s apart while the others go on writing
# and syncing; then the first (the process that mounted the volume and
# serves it) is killed while the last writes: the program has crashed, and
# the runtime ends the last writer too (docs/runtime.md). Every record whose fsync returned 0 is on the
# volume, and no call failed.
case_kill_writers() {
	sw_start
	: >w.out
	sw_run w.out --procs 6 --gap-us 1000 --seconds 20
	local i k pid before
	for ((i = 0; i < 100; i++)); do
		[ "$(grep -c '^START' w.out)" -lt 6 ] || break
		sleep 0.1
	done
	[ "$(grep -c '^START' w.out)" -eq 6 ] || { cat w.out.err; fail "the six writers did not start"; }
	for k in 1 2 3 4 0; do
		sleep 1.2
		pid=$(awk -v k="$k" '$1 == "START" && $2 == k { print $3 }' w.out)
		before=$(grep -c "^SYNCED 5 " w.out)
		kill -9 "$pid"
		note "writer $k (pid $pid) killed after $(grep -c '^SYNCED' w.out) synced records"
		[ "$k" -eq 0 ] && break
		sleep 0.5
		[ "$(grep -c "^SYNCED 5 " w.out)" -gt "$before" ] || fail "the last writer stopped syncing after writer $k was killed"
	done
	wait "$SW_PID" 2>/dev/null || true
	case_untrack_pid "$SW_PID"
	# shellcheck disable=SC2046 # a list of PIDs
	wait_gone 30 $(awk '$1 == "START" { print $3 }' w.out)
	note "$(grep -c '^SYNCED' w.out) records synced, $(sw_failures w.out) failed"
	grep -q 'the program has crashed' w.out.err || { sort w.out.err | uniq -c | sort -rn | head -5; fail "no crash after the server was killed"; }
	! grep -q '^DONE 5 ' w.out || fail "the last writer finished after the program crashed"
	[ "$(sw_failures w.out)" -eq 0 ] || { sort w.out.err | uniq -c | sort -rn | head -5; fail "writes or fsyncs failed ($(grep -m1 '^FAILED' w.out))"; }
	sw_check w.out 6
}

# What mariadb-install-db does: a shell pipeline whose left side (a
# subshell forked before the writer started) execs a program after the
# writer on the right has committed many times. That program must start
# (the volume is where its sibling left it, not "rolled back").
case_sibling_exec() {
	sw_start
	printf 'from the host\n' >host.txt
	run_cmd scone run --config-id sw/writer -- /bin/sh -c \
		"(sleep 2; cat $CASE_DIR/host.txt; echo CAT=\$? >&2) | $WRITER --seconds 3 $CASE_DIR/data >$CASE_DIR/w.out; echo WRITER=\$? >&2"
	if grep -qE "^scone: (error: )?cannot start" "$ERR" || ! grep -qx "CAT=0" "$ERR" || ! grep -qx "WRITER=0" "$ERR"; then
		show_output
		fail "a program started by the shell after its sibling committed did not start"
	fi
	[ "$RC" -eq 0 ] || { show_output; fail "sh exited $RC"; }
	sw_check w.out 1
}

# PostgreSQL keys its SysV shared memory by the data directory's inode and
# takes a segment whose header names its directory's (device, inode) for
# its own: two clusters on two volumes of one host must not look like one
# directory, nor must two directories of one volume.
case_volume_identity() {
	plain && t_skip_case "plain mode: nothing to check without the runtime"
	cas_case_begin
	cas_start "$CASE_DIR/cas"
	owner_new "$CASE_DIR/owner"
	cat >two.yaml <<YAML
name: two
version: "0.3"
security:
  attestation:
    mode: none
services:
  - name: py
    image_name: two
images:
  - name: two
    volumes:
      - {name: one, path: $CASE_DIR/one}
      - {name: two, path: $CASE_DIR/two}
volumes:
  - name: one
  - name: two
YAML
	expect_created two.yaml
	expect_ok scone run --config-id two/py -- /usr/bin/python3 -c "
import os
for d in ('one', 'two'):
    os.mkdir('$CASE_DIR/%s/base' % d)
ids = {}
for p in ('one', 'one/base', 'two', 'two/base'):
    st = os.stat('$CASE_DIR/' + p)
    ids.setdefault((st.st_dev, st.st_ino), []).append(p)
same = [v for v in ids.values() if len(v) > 1]
print('SAME=' + ';'.join(','.join(v) for v in same))
"
	grep -qx "SAME=" "$OUT" || { show_output; fail "directories of the volumes share a (st_dev, st_ino): $(sed -n 's/^SAME=//p' "$OUT")"; }
}

# A TCP proxy to CAS that holds every chunk for 0-300 ms (order kept).
SLOW_PROXY='
import asyncio, random, sys
listen, target = int(sys.argv[1]), int(sys.argv[2])
async def pump(r, w):
    try:
        while True:
            d = await r.read(65536)
            if not d:
                break
            await asyncio.sleep(random.uniform(0, 0.3))
            w.write(d)
            await w.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        w.close()
async def conn(cr, cw):
    try:
        sr, sw = await asyncio.open_connection("127.0.0.1", target)
    except OSError:
        cw.close()
        return
    await asyncio.gather(pump(cr, sw), pump(sr, cw))
async def main():
    s = await asyncio.start_server(conn, "127.0.0.1", listen)
    print("LISTENING", flush=True)
    async with s:
        await s.serve_forever()
asyncio.run(main())
'

case_cas_slow_proxy() {
	sw_start
	local pport i f
	pport=$(free_port)
	"$PYTHON" -c "$SLOW_PROXY" "$pport" "$CAS_PORT" >proxy.out 2>&1 &
	case_track_pid $!
	for ((i = 0; i < 100; i++)); do grep -q LISTENING proxy.out && break; sleep 0.1; done
	SW_CAS=(--cas "127.0.0.1:$pport" --cas-fingerprint "$(cert_fp "$CASE_DIR/cas/cas.crt")")
	sw_run w.out --seconds 10
	sw_wait 120
	f=$(sw_failures w.out)
	note "$(grep -c '^SYNCED' w.out) records synced through a CAS that answers in 0-300 ms per chunk, $f failed"
	[ "$f" -eq 0 ] || { sort w.out.err | uniq -c | sort -rn | head -8; fail "$f fsyncs failed with a slow CAS ($(grep -m1 '^FAILED' w.out))"; }
	[ "$(grep -c '^SYNCED' w.out)" -ge 5 ] || fail "fewer than 5 records synced in 10 s"
	SW_CAS=()
	sw_check w.out 1
}

case_cas_sigstop() {
	sw_start
	local i f
	sw_run w.out --seconds 10
	# scone-cas frozen for 300 ms out of every 500 ms.
	for ((i = 0; i < 20; i++)); do
		kill -STOP "$CAS_PID"
		sleep 0.3
		kill -CONT "$CAS_PID"
		sleep 0.2
	done
	sw_wait 120
	f=$(sw_failures w.out)
	note "$(grep -c '^SYNCED' w.out) records synced while CAS was stopped 300 ms in every 500 ms, $f failed"
	[ "$f" -eq 0 ] || { sort w.out.err | uniq -c | sort -rn | head -8; fail "$f fsyncs failed with a CAS that stalls ($(grep -m1 '^FAILED' w.out))"; }
	[ "$(grep -c '^SYNCED' w.out)" -ge 5 ] || fail "fewer than 5 records synced in 10 s"
	sw_check w.out 1
}

# ================= Node.js =================

NODE_MARK="SCONE-NODE-MARKER-4b1e"

# mix.js write VOLDIR HOSTDIR PORT ROUNDS CONNS: a TCP echo server that also
# logs every line it receives to a host file and a volume file, while it
# opens, writes and closes volume and host files in turn (sync and async
# fs calls: libuv closes with syscall(SYS_close), and the kernel reuses the
# numbers for sockets and host files at once). Exits after ROUNDS rounds
# and CONNS lines. mix.js read VOLDIR ROUNDS: the volume files as JSON.
# mix.js list VOLDIR: fs.readdirSync of the volume directory.
write_mix_js() {
	cat >"$CASE_DIR/mix.js" <<'JS'
'use strict';
const fs = require('fs'), net = require('net'), path = require('path');
const [mode, vol, a3, a4, a5, a6] = process.argv.slice(2);
const MARK = 'SCONE-NODE-MARKER-' + '4b1e';
if (mode === 'read') {
  const out = {};
  const names = ['persist.log', 'net.log'];
  for (let r = 0; r < +a3; r++) names.push('v' + r + '.txt', 'a' + r + '.txt');
  for (const n of names) out[n] = fs.readFileSync(path.join(vol, n), 'utf8');
  console.log(JSON.stringify(out));
  process.exit(0);
}
if (mode === 'list') {
  console.log('LIST=' + fs.readdirSync(vol).sort().join(','));
  console.log('LIST_ASYNC=' + fs.readdirSync(vol, { withFileTypes: true }).map((d) => d.name).sort().join(','));
  process.exit(0);
}
const host = a3, port = +a4, rounds = +a5, conns = +a6;
let lines = 0, done = false;
const vlog = fs.openSync(path.join(vol, 'persist.log'), 'a');
const hlog = fs.openSync(path.join(host, 'persist.log'), 'a');
const server = net.createServer((sock) => {
  let buf = '';
  sock.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      fs.appendFileSync(path.join(host, 'net.log'), line + '\n');
      fs.appendFileSync(path.join(vol, 'net.log'), line + ' ' + MARK + '\n');
      sock.write('echo ' + line + '\n');
      lines++;
    }
  });
  sock.on('error', (e) => console.log('SOCKERR ' + e.code));
});
function finish() {
  if (!done || lines < conns) return;
  fs.closeSync(vlog);
  fs.closeSync(hlog);
  server.close();
  console.log('DONE rounds=' + rounds + ' lines=' + lines);
  process.exit(0);
}
async function round(r) {
  let fd = fs.openSync(path.join(vol, 'v' + r + '.txt'), 'w');
  fs.writeSync(fd, 'volume ' + r + ' ' + MARK + '\n');
  fs.closeSync(fd);
  fd = fs.openSync(path.join(host, 'h' + r + '.txt'), 'w');
  fs.writeSync(fd, 'host ' + r + '\n');
  fs.closeSync(fd);
  fs.writeSync(vlog, 'round ' + r + ' ' + MARK + '\n');
  fs.writeSync(hlog, 'round ' + r + '\n');
  await Promise.all([
    fs.promises.writeFile(path.join(vol, 'a' + r + '.txt'), 'async volume ' + r + ' ' + MARK + '\n'),
    fs.promises.writeFile(path.join(host, 'a' + r + '.txt'), 'async host ' + r + '\n'),
  ]);
  const back = fs.readFileSync(path.join(vol, 'v' + r + '.txt'), 'utf8');
  if (back !== 'volume ' + r + ' ' + MARK + '\n') console.log('BADREAD ' + r + ' ' + JSON.stringify(back));
}
server.listen(port, '127.0.0.1', async () => {
  console.log('LISTENING');
  for (let r = 0; r < rounds; r++) {
    await round(r);
    await new Promise((res) => setTimeout(res, 2));
  }
  done = true;
  finish();
  setInterval(finish, 20);
});
JS
}

# client.py PORT N: N connections (4 at a time), each sends "ping i" and
# expects "echo ping i"; prints "ECHOS <correct answers>".
NODE_CLIENT='
import socket, sys, time, concurrent.futures
port, n = int(sys.argv[1]), int(sys.argv[2])
def one(i):
    for _ in range(200):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            break
        except ConnectionRefusedError:
            time.sleep(0.05)
    else:
        return False
    s.sendall(b"ping %d\n" % i)
    got = b""
    while not got.endswith(b"\n"):
        d = s.recv(100)
        if not d:
            break
        got += d
    s.close()
    return got == b"echo ping %d\n" % i
with concurrent.futures.ThreadPoolExecutor(4) as ex:
    print("ECHOS %d" % sum(ex.map(one, range(n))))
'

node_start() {
	[ -x "$NODE" ] || t_skip_case "nodejs not installed (scripts/install-deps.sh)"
	mkdir -p "$CASE_DIR/host"
	write_mix_js
	plain && { mkdir -p "$CASE_DIR/vol"; return 0; }
	cas_case_begin
	cas_start "$CASE_DIR/cas"
	owner_new "$CASE_DIR/owner"
	cat >node.yaml <<YAML
name: node
version: "0.3"
security:
  attestation:
    mode: none
services:
  - name: mix
    image_name: vol
images:
  - name: vol
    volumes:
      - name: data
        path: $CASE_DIR/vol
volumes:
  - name: data
YAML
	expect_created node.yaml
}

# node_rt ARGS...: node under the runtime (or plain), foreground, run_cmd style.
node_rt() {
	if plain; then
		run_cmd "$NODE" "$@"
	else
		run_cmd scone run --config-id node/mix -- "$NODE" "$@"
	fi
}

case_node() {
	node_start
	local port rounds=150 conns=100 node_pid rc=0 r
	port=$(free_port)
	if plain; then
		"$NODE" "$CASE_DIR/mix.js" write "$CASE_DIR/vol" "$CASE_DIR/host" "$port" $rounds $conns >node.out 2>node.err &
	else
		"$SCONE_BIN" run --config-id node/mix -- "$NODE" "$CASE_DIR/mix.js" write "$CASE_DIR/vol" "$CASE_DIR/host" \
			"$port" $rounds $conns >node.out 2>node.err &
	fi
	node_pid=$!
	case_track_pid "$node_pid"
	timeout 120 "$PYTHON" -c "$NODE_CLIENT" "$port" $conns >client.out 2>&1 || true
	wait_gone 60 "$node_pid"
	wait "$node_pid" || rc=$?
	case_untrack_pid "$node_pid"
	[ "$rc" -eq 0 ] || { cat node.out; tail -20 node.err; fail "node exited with status $rc"; }
	assert_eq "ECHOS $conns" "$(cat client.out)" "echo answers over the accepted sockets"
	assert_eq "LISTENING
DONE rounds=$rounds lines=$conns" "$(cat node.out)" "node's own output (no BADREAD, no SOCKERR)"
	# Host files: exactly what was meant for them.
	for ((r = 0; r < rounds; r++)); do
		[ "$(cat "$CASE_DIR/host/h$r.txt")" = "host $r" ] || fail "host/h$r.txt: '$(head -c 200 "$CASE_DIR/host/h$r.txt")'"
		[ "$(cat "$CASE_DIR/host/a$r.txt")" = "async host $r" ] || fail "host/a$r.txt: '$(head -c 200 "$CASE_DIR/host/a$r.txt")'"
	done
	assert_eq "$(seq 0 $((rounds - 1)) | sed 's/^/round /')" "$(cat "$CASE_DIR/host/persist.log")" "host/persist.log"
	assert_eq "$(seq 0 $((conns - 1)) | sed 's/^/ping /' | sort)" "$(sort "$CASE_DIR/host/net.log")" "host/net.log"
	if grep -rqaF "$NODE_MARK" "$CASE_DIR/host"; then fail "volume data landed in a host file: $(grep -rlaF "$NODE_MARK" "$CASE_DIR/host" | head -3)"; fi
	[ "$(ls "$CASE_DIR/host" | wc -l)" -eq $((2 * rounds + 2)) ] || fail "unexpected files in host/: $(ls "$CASE_DIR/host" | wc -l)"
	# Volume files, read back by node in a new run.
	node_rt "$CASE_DIR/mix.js" read "$CASE_DIR/vol" $rounds
	[ "$RC" -eq 0 ] || { show_output; fail "node could not read the volume files back"; }
	"$PYTHON" - "$OUT" "$rounds" "$conns" "$NODE_MARK" <<'PY' || fail "volume files differ from what was written to them"
import json, sys
d = json.load(open(sys.argv[1]))
rounds, conns, mark = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
bad = []
for r in range(rounds):
    if d["v%d.txt" % r] != "volume %d %s\n" % (r, mark): bad.append(("v%d.txt" % r, d["v%d.txt" % r]))
    if d["a%d.txt" % r] != "async volume %d %s\n" % (r, mark): bad.append(("a%d.txt" % r, d["a%d.txt" % r]))
if d["persist.log"] != "".join("round %d %s\n" % (r, mark) for r in range(rounds)): bad.append(("persist.log", d["persist.log"][:200]))
if sorted(d["net.log"].splitlines()) != sorted("ping %d %s" % (i, mark) for i in range(conns)): bad.append(("net.log", d["net.log"][:200]))
for name, got in bad[:5]:
    print("%s: %r" % (name, got))
sys.exit(1 if bad else 0)
PY
	on_disk "$CASE_DIR/vol" "no-password-here" "$NODE_MARK"
}

case_node_readdir() {
	node_start
	node_rt -e "const fs = require('fs'); for (const n of ['b.txt', 'a.txt']) fs.writeFileSync('$CASE_DIR/vol/' + n, n);
		fs.mkdirSync('$CASE_DIR/vol/sub')"
	[ "$RC" -eq 0 ] || { show_output; fail "node could not write to the volume"; }
	node_rt "$CASE_DIR/mix.js" list "$CASE_DIR/vol"
	[ "$RC" -eq 0 ] || { show_output; fail "node mix.js list"; }
	grep -qx "LIST=a.txt,b.txt,sub" "$OUT" && grep -qx "LIST_ASYNC=a.txt,b.txt,sub" "$OUT" ||
		{ show_output; fail "fs.readdirSync (libuv's scandir) of a volume directory: expected a.txt,b.txt,sub"; }
}

# ================= the cases =================

# case NAME FUNCTION: run_case, and the case's time in the log.
case_timed() {
	local t=$SECONDS
	run_case "$@"
	[ -n "${T_CASE:-}" ] && ! echo "$1" | grep -qE -- "$T_CASE" || note "(${1%%:*}: $((SECONDS - t)) s)"
}

case_timed "postgres: plain reference: a row marker, pg_control, pg_catalog, config text and the SCRAM verifier are in a plain PGDATA" case_pg_reference
case_timed "postgres: initdb under the runtime (PGDATA on an encrypted volume, superuser password from an injection file), start, pgbench -i" case_pg_init
case_timed "postgres: process titles (postgres: checkpointer, background writer, walwriter) show in ps" case_pg_titles
case_timed "postgres: pgbench TPC-B, 8 clients, ${PGBENCH_SECONDS} s, no error; balances agree and every transaction is in history, also after a clean restart" case_pg_bench
case_timed "postgres: kill -9 of the postmaster during pgbench; restart recovers; every acknowledged transaction is there and the balances agree" case_pg_crash
case_timed "mariadb: plain reference: a row marker, InnoDB and mysql_native_password are in a plain data directory" case_my_reference
case_timed "mariadb: mariadb-install-db under the runtime with the data directory on an encrypted volume" case_my_install
case_timed "mariadb: root password from an injection file, InnoDB and Aria tables, mysqlslap, clean stop, restart, read back" case_my_server
case_timed "mariadb: kill -9 during autocommit inserts: every acknowledged row is back after a restart" case_my_crash
case_timed "mariadb: mariadb-install-db (a #!/bin/sh script) started with the session's command line (--help)" case_my_entry
case_timed "signal storm: SIGALRM every 500 us during pwrite+fsync on a volume: no fsync fails, every synced record is there" case_storm_one
case_timed "network shield protected (nothing configured): the runtime's tag reports to CAS still pass; every synced record is there" case_netshield_reports
case_timed "signal storm: three forked writers with SIGALRM every 500 us, killed -9: the volume opens with every synced record" case_storm_forked
case_timed "processes: six forked writers, four killed -9 in turn while the others go on, then the volume's server: the program crashes as a whole; every record synced by any is there" case_kill_writers
case_timed "processes: a program a shell execs after its sibling (the writer of a pipeline) committed opens the volume" case_sibling_exec
case_timed "volumes: the root directories of two volumes (and their subdirectories) have distinct (st_dev, st_ino)" case_volume_identity
case_timed "CAS stopped for 5 s and restarted during fsyncs: the writer recovers and the volume opens with every synced record" case_cas_restart
case_timed "CAS's audit log under a busy volume: one entry a span of tag reports, not one a commit; export and mirror verify" case_audit_spans
case_timed "CAS gone for good: a sync fails after SCONE_TAG_REPORT_TIMEOUT, later syncs and the exit after 1 s each, and the volume opens once CAS is back" case_cas_gone
case_timed "CAS answering slowly (a proxy delaying every chunk 0-300 ms): no fsync fails, every synced record is there" case_cas_slow_proxy
case_timed "CAS stalling (SIGSTOP 300 ms in every 500 ms): no fsync fails, every synced record is there" case_cas_sigstop
case_timed "node: volume files and host files written while accepting TCP connections: every byte in its own file" case_node
case_timed "node: fs.readdirSync of a volume directory lists the plaintext names" case_node_readdir
t_done
