#!/usr/bin/env bash
# bench_cas_pg.sh - CAS replicas on PostgreSQL against one CAS on SQLite,
# on the same machine in the same run.
#
# Two scone-cas replicas share one PostgreSQL database (Debian's server,
# started here by tests/pg_server.sh in a temporary directory on a random
# port of 127.0.0.1, connections over TCP with a password file); the
# baseline is one scone-cas on its embedded SQLite store. The one CAS has
# BENCH_WORKERS workers, each replica half as many (BENCH_REPLICA_WORKERS):
# the same number of worker threads on the same cores. Everything (the
# replicas, PostgreSQL, the load generators) shares this machine's CPUs.
#
#   fetch:  what a starting runtime does (build/bench/cas_load, see its
#           header): new TLS connection with a client certificate, POST
#           /v1/service/config, close; 128 clients in two cas_load processes
#           of 64, one per replica (baseline: both against the one CAS).
#   update: session updates (PUT with the predecessor, as `scone session
#           update`) over kept-alive connections, 16 clients each on its own
#           session, 8 per replica (baseline: 16 against the one CAS).
#
# RESULT lines on stdout (medians of BENCH_RUNS runs, PostgreSQL and SQLite
# alternating which goes first):
#   RESULT cas.fetch_c128_pg value=<req/s> unit=req/s baseline=<SQLite req/s> ratio=<pg/sqlite>
#   RESULT cas.update_pg value=<updates/s> unit=req/s baseline=<SQLite updates/s> ratio=<pg/sqlite>
# On stderr: each run, and the CPU time per request of the CAS processes and
# of PostgreSQL (user + system, from /proc), which docs/performance.md turns
# into the start rate N replicas reach on N machines. Goals (stderr only):
# fetch ratio >= 0.9, update ratio >= 0.5.
#
# Environment: BENCH_RUNS (3), BENCH_SECONDS (5), BENCH_WARMUP (1),
# BENCH_WORKERS (nproc), BENCH_REPLICA_WORKERS (BENCH_WORKERS / 2, at least 1),
# BENCH_DIR (/var/tmp), BUILD (build).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

BUILD=${BUILD:-build}
CAS_BIN=$BUILD/bin/scone-cas
CLI_BIN=$BUILD/bin/scone
LOAD=${BENCH_BIN_DIR:-$BUILD/bench}/cas_load
PG_SERVER=tests/pg_server.sh
SESSION_FILE=bench/cas-session.yaml
RUNS=${BENCH_RUNS:-3}
SECS=${BENCH_SECONDS:-5}
WARMUP=${BENCH_WARMUP:-1}
WORKERS=${BENCH_WORKERS:-$(nproc)}
REPLICA_WORKERS=${BENCH_REPLICA_WORKERS:-$((WORKERS / 2 > 0 ? WORKERS / 2 : 1))}
CLK_TCK=$(getconf CLK_TCK)

TMP=
PG_DIR=
PIDS=()

log() { echo "bench_cas_pg: $*" >&2; }
die() {
	log "$*"
	exit 1
}

cleanup() {
	local pid i
	for pid in ${PIDS[@]+"${PIDS[@]}"}; do kill -TERM "$pid" 2>/dev/null; done
	for pid in ${PIDS[@]+"${PIDS[@]}"}; do
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	[ -z "$PG_DIR" ] || { "$PG_SERVER" stop "$PG_DIR" >/dev/null 2>&1; rm -rf "$PG_DIR"; }
	[ -z "$TMP" ] || rm -rf "$TMP"
}

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_https() { # PORT PID NAME
	local i
	for ((i = 0; i < 300; i++)); do
		kill -0 "$2" 2>/dev/null || die "$3 exited during start-up (see $TMP/$3.log)"
		curl -sk -o /dev/null --max-time 2 "https://127.0.0.1:$1/healthz" && return 0
		sleep 0.1
	done
	die "$3 did not answer on port $1"
}

# CPU clock ticks (user + system) used so far by the processes PIDS.
cpu_ticks() {
	local p t=0 f
	for p in "$@"; do
		read -ra f <<<"$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null)" || continue
		[ ${#f[@]} -gt 13 ] && t=$((t + f[11] + f[12]))
	done
	echo "$t"
}

# The PostgreSQL server's processes: the postmaster and its children (backends, walwriter, ...).
pg_pids() {
	local pm
	pm=$("$PG_SERVER" pid "$PG_DIR")
	echo "$pm" $(pgrep -P "$pm")
}

# start_cas NAME STATE WORKERS [ARGS...]: sets PORT_<NAME> PID_<NAME>.
start_cas() {
	local name=$1 state=$2 workers=$3 port pid
	shift 3
	port=$(free_port) || die "no free port"
	SCONE_LOG=warn "$CAS_BIN" --state-dir "$state" --listen "127.0.0.1:$port" --workers "$workers" "$@" \
		>"$TMP/$name.log" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	wait_https "$port" "$pid" "$name"
	printf -v "PORT_$name" '%s' "$port"
	printf -v "PID_$name" '%s' "$pid"
}

# owner NAME PORT FP: an owner identity trusting the CAS at PORT; creates the bench session there.
owner() {
	export SCONE_CLI_CONFIG=$TMP/$1/config.json
	mkdir -p "$TMP/$1"
	[ -f "$TMP/$1/owner.key" ] || "$CLI_BIN" cas keygen >/dev/null 2>&1 || die "keygen"
	"$CLI_BIN" cas trust "127.0.0.1:$2" --fingerprint "$3" >/dev/null 2>&1 || die "trust 127.0.0.1:$2"
	unset SCONE_CLI_CONFIG
}

# sessions OWNER PORT FP PREFIX N: N copies of the bench session named PREFIX0.. (for updates).
sessions() {
	local out
	out=$("$LOAD" --port "$2" --create-sessions "$5" --first-index 0 --name-prefix "$4" --template "$SESSION_FILE" \
		--clients 4 --client-cert "$TMP/$1/owner.crt" --client-key "$TMP/$1/owner.key" --ca-fingerprint "$3") ||
		die "creating $4 sessions failed"
	[[ $out == *" errors=0" ]] || die "creating $4 sessions: $out"
}

setup() {
	local pg_port url
	TMP=$(mktemp -d "${BENCH_DIR:-/var/tmp}/bench_cas_pg.XXXXXX") || die "mktemp"
	PG_DIR=$(mktemp -d /tmp/bench-pg.XXXXXX) || die "mktemp"
	pg_port=$(free_port)
	"$PG_SERVER" start "$PG_DIR" "$pg_port" >"$TMP/pg.log" 2>&1 || die "PostgreSQL did not start: $(tail -3 "$TMP/pg.log")"
	url="postgres://scone@127.0.0.1:$pg_port/scone?passfile=$PG_DIR/passfile"
	"$CAS_BIN" init --state-dir "$TMP/keys" --store "$url" >/dev/null 2>&1 || die "scone-cas init failed"
	for r in r1 r2; do
		mkdir -p "$TMP/$r" && cp "$TMP/keys/"{cas.key,cas.crt,master.key} "$TMP/$r/"
		start_cas "$r" "$TMP/$r" "$REPLICA_WORKERS" --store "$url" --replica "$r"
	done
	start_cas sq "$TMP/sq" "$WORKERS"
	FP_PG=$(openssl x509 -in "$TMP/keys/cas.crt" -outform DER | sha256sum | cut -d' ' -f1)
	FP_SQ=$(openssl x509 -in "$TMP/sq/cas.crt" -outform DER | sha256sum | cut -d' ' -f1)
	owner opg "$PORT_r1" "$FP_PG"
	owner opg "$PORT_r2" "$FP_PG"
	owner osq "$PORT_sq" "$FP_SQ"
	SCONE_CLI_CONFIG=$TMP/opg/config.json "$CLI_BIN" session create "$SESSION_FILE" --cas "127.0.0.1:$PORT_r1" \
		>/dev/null 2>&1 || die "session create on PostgreSQL"
	SCONE_CLI_CONFIG=$TMP/osq/config.json "$CLI_BIN" session create "$SESSION_FILE" --cas "127.0.0.1:$PORT_sq" \
		>/dev/null 2>&1 || die "session create on SQLite"
	sessions opg "$PORT_r1" "$FP_PG" upd-a- 8
	sessions opg "$PORT_r2" "$FP_PG" upd-b- 8
	sessions osq "$PORT_sq" "$FP_SQ" upd-a- 8
	sessions osq "$PORT_sq" "$FP_SQ" upd-b- 8
	FETCH_BODY='{"config_id":"bench-config/app","evidence":{"type":"none"}}'
	mkdir -p "$TMP/samples"
	log "$(nproc) CPUs; SQLite CAS: $WORKERS workers; 2 replicas: $REPLICA_WORKERS each; PostgreSQL on" \
		"127.0.0.1:$pg_port; $RUNS runs x ${SECS} s"
}

# load LABEL KIND(fetch|update) OWNER FP PORT_A PORT_B CLIENTS_EACH CPU_PIDS...: two cas_load processes at
# once (one per port), their rps summed; appends "rps cas_ms pg_ms" (CPU per request) to samples/LABEL.
load() {
	local label=$1 kind=$2 who=$3 fp=$4 pa=$5 pb=$6 n=$7 a b ra rb oka okb t0 t1 p0 p1 args=()
	shift 7
	if [ "$kind" = fetch ]; then
		args=(--body "$FETCH_BODY" --expect-status 200)
	else
		args=(--update --template "$SESSION_FILE" --client-cert "$TMP/$who/owner.crt"
			--client-key "$TMP/$who/owner.key")
	fi
	t0=$(cpu_ticks "$@")
	p0=$(cpu_ticks $(pg_pids))
	"$LOAD" --port "$pa" --clients "$n" --seconds "$SECS" --warmup "$WARMUP" --ca-fingerprint "$fp" \
		${args[@]+"${args[@]}"} $([ "$kind" = update ] && echo --name-prefix upd-a-) >"$TMP/a.out" 2>"$TMP/a.err" &
	a=$!
	"$LOAD" --port "$pb" --clients "$n" --seconds "$SECS" --warmup "$WARMUP" --ca-fingerprint "$fp" \
		${args[@]+"${args[@]}"} $([ "$kind" = update ] && echo --name-prefix upd-b-) >"$TMP/b.out" 2>"$TMP/b.err" &
	b=$!
	wait $a || die "cas_load failed: $(cat "$TMP/a.err")"
	wait $b || die "cas_load failed: $(cat "$TMP/b.err")"
	t1=$(cpu_ticks "$@")
	p1=$(cpu_ticks $(pg_pids))
	ra=$(sed -E 's/^rps=([0-9.]+).*/\1/' "$TMP/a.out") rb=$(sed -E 's/^rps=([0-9.]+).*/\1/' "$TMP/b.out")
	oka=$(sed -E 's/.* ok=([0-9]+).*/\1/' "$TMP/a.out") okb=$(sed -E 's/.* ok=([0-9]+).*/\1/' "$TMP/b.out")
	grep -q ' errors=0' "$TMP/a.out" && grep -q ' errors=0' "$TMP/b.out" ||
		log "WARNING: $label: failed requests: $(cat "$TMP/a.out" "$TMP/b.out" | tr '\n' ' ')"
	awk -v ra="$ra" -v rb="$rb" -v ok=$((oka + okb)) -v c=$((t1 - t0)) -v p=$((p1 - p0)) -v hz="$CLK_TCK" \
		-v s="$SECS" -v w="$WARMUP" 'BEGIN {
		f = s / (s + w); n = (ok > 0 ? ok : 1)
		printf "%.1f %.3f %.3f\n", ra + rb, c * 1000 / hz * f / n, p * 1000 / hz * f / n }' >>"$TMP/samples/$label"
	log "  $label: $(tail -1 "$TMP/samples/$label" | awk '{ printf "%s req/s, CAS %s ms CPU/request, PostgreSQL %s ms", $1, $2, $3 }')"
}

median() { # LABEL FIELD
	awk -v f="$2" '{ print $f }' "$TMP/samples/$1" | sort -g |
		awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

result() { # NAME VALUE BASELINE
	awk -v n="$1" -v v="$2" -v b="$3" 'BEGIN {
		printf "RESULT %s value=%.1f unit=req/s baseline=%.1f ratio=%.2f\n", n, v, b, (b > 0 ? v / b : 0) }'
}

goal() { # NAME VALUE BASELINE MIN
	awk -v a="$2" -v b="$3" -v m="$4" 'BEGIN { exit !(b > 0 && a / b >= m) }' ||
		log "goal missed: $1: $2 vs $3 req/s, below $4 x"
}

run_once() {
	local r=$1 first second
	if [ $((r % 2)) -eq 1 ]; then first=pg second=sq; else first=sq second=pg; fi
	for kind in fetch update; do
		for which in $first $second; do
			if [ "$which" = pg ]; then
				load "${kind}_pg" "$kind" opg "$FP_PG" "$PORT_r1" "$PORT_r2" \
					$([ $kind = fetch ] && echo 64 || echo 8) "$PID_r1" "$PID_r2"
			else
				load "${kind}_sq" "$kind" osq "$FP_SQ" "$PORT_sq" "$PORT_sq" \
					$([ $kind = fetch ] && echo 64 || echo 8) "$PID_sq"
			fi
		done
	done
}

main() {
	local r v b
	for f in "$CAS_BIN" "$CLI_BIN" "$LOAD"; do [ -x "$f" ] || die "$f: not built (make bench)"; done
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || die "PostgreSQL is not installed (scripts/install-deps.sh)"
	trap cleanup EXIT
	trap 'exit 130' INT TERM HUP
	setup
	for ((r = 1; r <= RUNS; r++)); do
		log "run $r of $RUNS (load average $(cut -d' ' -f1-3 /proc/loadavg))"
		run_once "$r"
	done
	v=$(median fetch_pg 1) b=$(median fetch_sq 1)
	result cas.fetch_c128_pg "$v" "$b"
	goal "fetch at 128 clients, 2 replicas on PostgreSQL vs 1 CAS on SQLite" "$v" "$b" 0.9
	v=$(median update_pg 1) b=$(median update_sq 1)
	result cas.update_pg "$v" "$b"
	goal "session updates, 2 replicas on PostgreSQL vs 1 CAS on SQLite" "$v" "$b" 0.5
	log "CPU per fetch (median): CAS replicas $(median fetch_pg 2) ms + PostgreSQL $(median fetch_pg 3) ms;" \
		"CAS on SQLite $(median fetch_sq 2) ms"
	log "CPU per update (median): CAS replicas $(median update_pg 2) ms + PostgreSQL $(median update_pg 3) ms;" \
		"CAS on SQLite $(median update_sq 2) ms"
}

main "$@"
