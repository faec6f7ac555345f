#!/usr/bin/env bash
# bench_cas.sh - CAS configuration-fetch throughput and latency against an
# nginx baseline on the same machine, and fetch throughput with 100,000
# sessions in the store against a store of ~10.
#
# Each fetch is what a starting runtime does: new TCP connection, full TLS
# 1.3 handshake with a client certificate (no resumption), one POST
# /v1/service/config {"config_id":"bench-config/app","evidence":{...}}, the
# whole response, close (build/bench/cas_load; see its header). The baseline is
# nginx with the CAS's own certificate and key, processing the client
# certificate (ssl_verify_client optional_no_ca), no session cache or
# tickets, the same number of workers, answering the same POST with a
# static copy of the CAS's response (same body, same size).
#
# Printed on stdout, one line per figure, each value the median of
# BENCH_RUNS runs; CAS and nginx runs alternate, and which goes first
# alternates from run to run:
#   RESULT cas.fetch_cN value=<req/s> unit=req/s baseline=<nginx req/s> ratio=<cas/nginx>
#   RESULT cas.p50_cN / cas.p99_cN value=<ms> unit=ms baseline=<nginx ms> ratio=<cas/nginx>
#   RESULT cas.fetch_100k_sessions value=<req/s, c16, big store> baseline=<req/s, c16, ~10 sessions>
# Everything else goes to stderr, including each run's figures, the server CPU
# per fetch, and the run-by-run ratios of side-by-side pairs with their
# median (steadier than the ratio of medians when other load comes and
# goes). Goals (checked on stderr, never fatal):
# fetch ratio >= 1.0 and p99 < 20 ms at 128 clients; 100k ratio >= 0.9.
#
# Environment:
#   BENCH_RUNS      runs per figure (default 3)
#   BENCH_SECONDS   measured seconds per run (default 5)
#   BENCH_WARMUP    unmeasured seconds before each run (default 1)
#   BENCH_CLIENTS   client counts (default "1 16 128"; 16 is always measured)
#   BENCH_SESSIONS  sessions in the big store (default 100000; 0 skips it)
#   BENCH_WORKERS   CAS workers = nginx worker processes (default nproc)
#   BENCH_DIR       parent of the temporary directory (default /var/tmp)
#   BUILD           build directory (default build)
#   NGINX           nginx binary (default /usr/sbin/nginx)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

BUILD=${BUILD:-build}
CAS_BIN=$BUILD/bin/scone-cas
CLI_BIN=$BUILD/bin/scone
LOAD=${BENCH_BIN_DIR:-$BUILD/bench}/cas_load
NGINX=${NGINX:-/usr/sbin/nginx}
SESSION_FILE=bench/cas-session.yaml
SERVICE=app
RUNS=${BENCH_RUNS:-3}
SECONDS_PER_RUN=${BENCH_SECONDS:-5}
WARMUP=${BENCH_WARMUP:-1}
CLIENTS=${BENCH_CLIENTS:-"1 16 128"}
BIG_SESSIONS=${BENCH_SESSIONS:-100000}
SMALL_SESSIONS=10
WORKERS=${BENCH_WORKERS:-$(nproc)}
CREATE_CLIENTS=16
CREATE_BATCH=10000
CLK_TCK=$(getconf CLK_TCK)

TMP=
PIDS=()
NGINX_PIDS=()
# Set by start_cas (printf -v) for "small" (~10 sessions) and "big".
CAS_PORT_small='' CAS_FP_small='' CAS_PID_small='' CAS_PORT_big='' CAS_FP_big='' CAS_PID_big=''

log() { echo "bench_cas: $*" >&2; }
die() {
	log "$*"
	exit 1
}

# Stop what we started, by PID: TERM, up to 10 s, then KILL.
cleanup() {
	local pid i
	for pid in ${PIDS[@]+"${PIDS[@]}"}; do
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in ${PIDS[@]+"${PIDS[@]}"}; do
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	[ -z "$TMP" ] || rm -rf "$TMP"
}

check_env() {
	local f
	for f in "$CAS_BIN" "$CLI_BIN" "$LOAD" "$NGINX"; do
		[ -x "$f" ] || die "$f: not built or not installed (run 'make bench')"
	done
	for f in curl openssl python3; do
		command -v "$f" >/dev/null || die "$f: not installed"
	done
	[[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS=$RUNS: expected a positive integer"
	[[ $BIG_SESSIONS =~ ^[0-9]+$ ]] || die "BENCH_SESSIONS=$BIG_SESSIONS: expected an integer"
	[[ $WORKERS =~ ^[1-9][0-9]*$ ]] || die "BENCH_WORKERS=$WORKERS: expected a positive integer"
	[[ " $CLIENTS " == *" 16 "* ]] || CLIENTS="$CLIENTS 16"
}

# A free TCP port on 127.0.0.1 (closed again; a tiny race we accept).
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_https PORT PID NAME: until /healthz (or anything) answers over TLS.
wait_https() {
	local port=$1 pid=$2 name=$3 i
	for ((i = 0; i < 300; i++)); do
		kill -0 "$pid" 2>/dev/null || die "$name exited during start-up (see $TMP/$name.log)"
		curl -sk -o /dev/null --max-time 2 "https://127.0.0.1:$port/healthz" && return 0
		sleep 0.1
	done
	die "$name did not answer on port $port within 30 s"
}

cert_sha256() {
	openssl x509 -in "$1" -outform DER | sha256sum | cut -d' ' -f1
}

# The owner's certificate and key, written by `scone cas keygen` beside the CLI config.
owner_files() {
	local dir=$1 c k
	for c in owner.crt owner-cert.pem cert.pem; do
		for k in owner.key owner-key.pem key.pem; do
			if [ -f "$dir/$c" ] && [ -f "$dir/$k" ]; then
				echo "$dir/$c $dir/$k"
				return 0
			fi
		done
	done
	die "no owner certificate/key found in $dir after 'scone cas keygen'"
}

# start_cas NAME: state in $TMP/NAME; sets CAS_PORT_<NAME>, CAS_PID_<NAME> and CAS_FP_<NAME>
# (certificate SHA-256).
start_cas() {
	local name=$1 dir=$TMP/$1 port pid
	mkdir -p "$dir/cli" || die "mkdir $dir"
	port=$(free_port) || die "no free port"
	SCONE_LOG=${SCONE_LOG:-warn} "$CAS_BIN" --state-dir "$dir/state" --listen "127.0.0.1:$port" \
		--workers "$WORKERS" >"$TMP/$name.log" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	wait_https "$port" "$pid" "$name"
	printf -v "CAS_PORT_$name" '%s' "$port"
	printf -v "CAS_PID_$name" '%s' "$pid"
	printf -v "CAS_FP_$name" '%s' "$(cert_sha256 "$dir/state/cas.crt")"
	log "$name: scone-cas pid $pid on 127.0.0.1:$port, $WORKERS workers"
}

# owner_setup NAME: keygen, trust, upload the bench session with the CLI.
owner_setup() {
	local name=$1 dir=$TMP/$1 port hash p=CAS_PORT_$1 f=CAS_FP_$1
	port=${!p}
	export SCONE_CLI_CONFIG=$dir/cli/config.json
	"$CLI_BIN" cas keygen >"$dir/keygen.log" 2>&1 || die "scone cas keygen failed: $(cat "$dir/keygen.log")"
	"$CLI_BIN" cas trust "127.0.0.1:$port" --fingerprint "${!f}" \
		>"$dir/trust.log" 2>&1 || die "scone cas trust failed: $(cat "$dir/trust.log")"
	hash=$("$CLI_BIN" session create "$SESSION_FILE" --cas "127.0.0.1:$port" 2>"$dir/create.log") ||
		die "scone session create $SESSION_FILE failed: $(cat "$dir/create.log")"
	unset SCONE_CLI_CONFIG
	log "$name: session $SESSION_NAME created ($hash)"
}

# create_sessions NAME COUNT: COUNT more sessions bench-0 .. bench-(COUNT-1), in batches.
create_sessions() {
	local name=$1 count=$2 dir=$TMP/$1 first=0 n out start cert key p=CAS_PORT_$1 f=CAS_FP_$1
	[ "$count" -gt 0 ] || return 0
	read -r cert key <<<"$(owner_files "$dir/cli")"
	start=$(date +%s)
	while [ "$first" -lt "$count" ]; do
		n=$((count - first < CREATE_BATCH ? count - first : CREATE_BATCH))
		out=$("$LOAD" --port "${!p}" --create-sessions "$n" --first-index "$first" \
			--template "$SESSION_FILE" --clients "$CREATE_CLIENTS" --client-cert "$cert" \
			--client-key "$key" --ca-fingerprint "${!f}") ||
			die "creating sessions on $name failed"
		[[ $out == *" errors=0" ]] || die "creating sessions on $name: $out"
		first=$((first + n))
		log "$name: $first / $count extra sessions ($out)"
	done
	log "$name: $count sessions created in $(($(date +%s) - start)) s"
}

# Capture the CAS's answer to the fetch once; nginx serves a copy of it.
capture_response() {
	local port=$CAS_PORT_small code
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=bench \
		-keyout "$TMP/client.key" -out "$TMP/client.crt" 2>/dev/null || die "openssl req failed"
	mkdir -p "$TMP/www/v1/service" || die "mkdir $TMP/www"
	code=$(curl -sk --cert "$TMP/client.crt" --key "$TMP/client.key" -H 'Content-Type: application/json' \
		--data-binary "$FETCH_BODY" -o "$TMP/www/v1/service/config" -w '%{http_code}' \
		"https://127.0.0.1:$port/v1/service/config")
	[ "$code" = 200 ] || die "fetch from CAS gave HTTP $code: $(head -c 300 "$TMP/www/v1/service/config")"
	RESPONSE_SIZE=$(stat -c %s "$TMP/www/v1/service/config")
	log "CAS configuration response: $RESPONSE_SIZE bytes"
}

write_nginx_conf() {
	local d=$TMP/nginx state=$TMP/small/state user=
	[ "$(id -u)" -ne 0 ] || user="user $(id -un) $(id -gn);"
	mkdir -p "$d" || die "mkdir $d"
	cat >"$d/nginx.conf" <<EOF
# Generated by bench/bench_cas.sh: the baseline for the CAS fetch.
$user
worker_processes $WORKERS;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log warn;
events {
	worker_connections 8192;
}
http {
	access_log off;
	client_body_temp_path $d/body;
	proxy_temp_path $d/proxy;
	fastcgi_temp_path $d/fastcgi;
	uwsgi_temp_path $d/uwsgi;
	scgi_temp_path $d/scgi;
	server {
		listen 127.0.0.1:$NGINX_PORT ssl reuseport;
		ssl_certificate $state/cas.crt;
		ssl_certificate_key $state/cas.key;
		ssl_protocols TLSv1.2 TLSv1.3;
		ssl_verify_client optional_no_ca;
		ssl_session_cache off;
		ssl_session_tickets off;
		root $TMP/www;
		location = /v1/service/config {
			default_type application/json;
			# the static module refuses POST (405); answer it with the file
			error_page 405 =200 \$uri;
		}
		location = /healthz {
			return 200 '{"status":"ok"}';
		}
	}
}
EOF
}

start_nginx() {
	local size
	NGINX_PORT=$(free_port) || die "no free port"
	write_nginx_conf
	"$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" >"$TMP/nginx.log" 2>&1 &
	NGINX_PID=$!
	PIDS+=("$NGINX_PID")
	wait_https "$NGINX_PORT" "$NGINX_PID" nginx
	mapfile -t NGINX_PIDS < <(echo "$NGINX_PID"; pgrep -P "$NGINX_PID") # master and workers
	size=$(curl -sk --cert "$TMP/client.crt" --key "$TMP/client.key" -H 'Content-Type: application/json' \
		--data-binary "$FETCH_BODY" -o "$TMP/nginx-response" -w '%{http_code} %{size_download}' \
		"https://127.0.0.1:$NGINX_PORT/v1/service/config")
	[ "$size" = "200 $RESPONSE_SIZE" ] || die "nginx answered '$size', expected '200 $RESPONSE_SIZE'"
	cmp -s "$TMP/nginx-response" "$TMP/www/v1/service/config" || die "nginx's response differs from the CAS's"
	log "nginx: pid $NGINX_PID on 127.0.0.1:$NGINX_PORT, $WORKERS workers, same $RESPONSE_SIZE-byte body"
}

# CPU time (clock ticks, user + system, all threads) used so far by the processes PIDS.
cpu_ticks() {
	local p t=0 f
	for p in "$@"; do
		read -ra f <<<"$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null)" || continue
		[ ${#f[@]} -gt 13 ] && t=$((t + f[11] + f[12]))
	done
	echo "$t"
}

# measure LABEL PORT FINGERPRINT CLIENTS PIDS...: one cas_load run; appends "rps p50 p99" to
# $TMP/samples/LABEL, and logs the server's CPU per fetch (PIDS: the server's processes;
# the warm-up's share of the CPU is taken out assuming the same rate).
measure() {
	local label=$1 port=$2 fp=$3 clients=$4 out rps p50 p99 ok errors t0 t1 cpu
	shift 4
	t0=$(cpu_ticks "$@")
	out=$("$LOAD" --port "$port" --clients "$clients" --seconds "$SECONDS_PER_RUN" --warmup "$WARMUP" \
		--body "$FETCH_BODY" --ca-fingerprint "$fp" --expect-status 200) ||
		die "cas_load against $label failed"
	t1=$(cpu_ticks "$@")
	read -r rps p50 p99 ok errors <<<"$(sed -E 's/[a-z0-9_]+=//g' <<<"$out")"
	[ "${ok:-0}" -gt 0 ] || die "$label: no successful request ($out)"
	[ "$errors" -eq 0 ] || log "WARNING: $label: $errors failed requests"
	echo "$rps $p50 $p99" >>"$TMP/samples/$label"
	cpu=$(awk -v d=$((t1 - t0)) -v hz="$CLK_TCK" -v s="$SECONDS_PER_RUN" -v w="$WARMUP" -v n="$ok" \
		'BEGIN { printf "%.3f", d * 1000 / hz * s / (s + w) / n }')
	log "  $label: $out server_cpu_ms_per_fetch=$cpu"
}

# median LABEL FIELD(1=rps 2=p50 3=p99)
median() {
	awk -v f="$2" '{ print $f }' "$TMP/samples/$1" | sort -g |
		awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# paired LABEL BASELINE_LABEL: the per-run ratios of rps (runs measured side by side) and their median,
# on stderr; less sensitive than the ratio of medians to load that changes from run to run.
paired() {
	local ratios
	ratios=$(paste -d' ' "$TMP/samples/$1" "$TMP/samples/$2" |
		awk '{ printf "%.2f\n", ($4 > 0 ? $1 / $4 : 0) }')
	echo "$(echo "$ratios" | tr '\n' ' ')(median $(echo "$ratios" | sort -g |
		awk '{ v[NR] = $1 } END { printf "%.2f", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'))"
}

result() { # NAME VALUE UNIT BASELINE
	awk -v n="$1" -v v="$2" -v u="$3" -v b="$4" 'BEGIN {
		f = (u == "ms" ? "%.3f" : "%.1f")
		printf "RESULT %s value=" f " unit=%s baseline=" f " ratio=%.2f\n", n, v, u, b, (b > 0 ? v / b : 0) }'
}

# One run: every client count, CAS and nginx alternating which goes first. At
# 16 clients the big store is measured too, always next to the small one:
# odd runs big, CAS, nginx; even runs nginx, CAS, big.
run_once() {
	local r=$1 c big=0
	for c in $CLIENTS; do
		[ "$c" != 16 ] || [ "$BIG_SESSIONS" -eq 0 ] || big=1
		if [ $((r % 2)) -eq 1 ]; then
			[ $big -eq 0 ] || measure big_c16 "$CAS_PORT_big" "$CAS_FP_big" 16 "$CAS_PID_big"
			measure "cas_c$c" "$CAS_PORT_small" "$CAS_FP_small" "$c" "$CAS_PID_small"
			measure "nginx_c$c" "$NGINX_PORT" "$CAS_FP_small" "$c" "${NGINX_PIDS[@]}"
		else
			measure "nginx_c$c" "$NGINX_PORT" "$CAS_FP_small" "$c" "${NGINX_PIDS[@]}"
			measure "cas_c$c" "$CAS_PORT_small" "$CAS_FP_small" "$c" "$CAS_PID_small"
			[ $big -eq 0 ] || measure big_c16 "$CAS_PORT_big" "$CAS_FP_big" 16 "$CAS_PID_big"
		fi
		big=0
	done
}

# goal NAME VALUE BASELINE MIN_RATIO PAIRED: log whether value/baseline >= MIN_RATIO.
goal() {
	if awk -v a="$2" -v b="$3" -v m="$4" 'BEGIN { exit !(b > 0 && a / b >= m) }'; then
		return 0
	fi
	log "goal missed: $1: $2 vs $3 req/s, below $4 x (run by run: $5)"
	return 1
}

report() {
	local c v b big small ok=1 pair_big='' pair_c128=''
	for c in $CLIENTS; do
		v=$(paired "cas_c$c" "nginx_c$c")
		log "cas/nginx req/s at $c clients, run by run: $v"
		[ "$c" != 128 ] || pair_c128=$v
	done
	if [ "$BIG_SESSIONS" -gt 0 ]; then
		pair_big=$(paired big_c16 cas_c16)
		log "big/small store req/s at 16 clients, run by run: $pair_big"
	fi
	for c in $CLIENTS; do
		result "cas.fetch_c$c" "$(median "cas_c$c" 1)" req/s "$(median "nginx_c$c" 1)"
		result "cas.p50_c$c" "$(median "cas_c$c" 2)" ms "$(median "nginx_c$c" 2)"
		result "cas.p99_c$c" "$(median "cas_c$c" 3)" ms "$(median "nginx_c$c" 3)"
	done
	if [ "$BIG_SESSIONS" -gt 0 ]; then
		big=$(median big_c16 1) small=$(median cas_c16 1)
		result cas.fetch_100k_sessions "$big" req/s "$small"
		goal "fetch with $BIG_SESSIONS sessions against ~$SMALL_SESSIONS" "$big" "$small" 0.9 "$pair_big" || ok=0
	fi
	if [ -n "$pair_c128" ]; then
		v=$(median cas_c128 1) b=$(median nginx_c128 1)
		goal "fetch at 128 clients against nginx" "$v" "$b" 1.0 "$pair_c128" || ok=0
		v=$(median cas_c128 3)
		awk -v a="$v" 'BEGIN { exit !(a < 20) }' || { log "goal missed: p99 at 128 clients $v ms >= 20 ms"; ok=0; }
	fi
	[ $ok -eq 0 ] || log "every goal checked was met"
}

main() {
	local r
	check_env
	TMP=$(mktemp -d "${BENCH_DIR:-/var/tmp}/bench_cas.XXXXXX") || die "mktemp failed"
	trap cleanup EXIT
	trap 'exit 130' INT TERM HUP
	mkdir -p "$TMP/samples"
	SESSION_NAME=$(sed -n 's/^name:[[:space:]]*//p' "$SESSION_FILE" | head -1)
	[ -n "$SESSION_NAME" ] || die "$SESSION_FILE: no name"
	FETCH_BODY="{\"config_id\":\"$SESSION_NAME/$SERVICE\",\"evidence\":{\"type\":\"none\"}}"
	log "$(nproc) CPUs, $WORKERS workers, $RUNS runs x ${SECONDS_PER_RUN} s (+${WARMUP} s warm-up), clients: $CLIENTS"

	start_cas small
	owner_setup small
	create_sessions small $((SMALL_SESSIONS - 1))
	capture_response
	start_nginx
	if [ "$BIG_SESSIONS" -gt 0 ]; then
		start_cas big
		owner_setup big
		create_sessions big $((BIG_SESSIONS - 1))
	fi

	for ((r = 1; r <= RUNS; r++)); do
		log "run $r of $RUNS (load average $(cut -d' ' -f1-3 /proc/loadavg))"
		run_once "$r"
	done
	report
}

main "$@"
