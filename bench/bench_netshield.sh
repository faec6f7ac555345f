#!/usr/bin/env bash
# bench_netshield.sh - what the network shield (TLS 1.3 inside the process,
# configured from the host's SCONE_NETWORK_SHIELD* variables, no CAS) costs
# against the TLS a program or a proxy does itself, on the same machine in
# the same run. Every side uses the same ECDSA P-256 certificate (made here
# with openssl), TLS 1.3 only, no session resumption; the sides alternate
# (the order changes every round) and the medians over BENCH_RUNS rounds
# (default 5) are reported. Servers listen on 127.0.0.1 at free ports.
#
# redis: Debian's redis-server (no persistence) three ways: plain-TCP redis
#   under the shield (server 1 = its port); redis-server's own TLS
#   (--port 0 --tls-port, --tls-auth-clients no, --tls-protocols TLSv1.3);
#   plain redis behind stunnel4 (foreground, TLSv1.3 minimum).
#   `redis-benchmark --tls --cacert cert.pem -t set,get -c 50 -P 1
#   -n BENCH_REDIS_N` (default 40000), and pipelined `-P 16
#   -n BENCH_REDIS_PIPE_N` (default 200000). value = mean of the SET and GET
#   requests/s under the shield. Goals: at least 1.0 against redis's own
#   TLS, at least 1.5 against stunnel (the same goals for -P 16).
#     RESULT netshield.redis_vs_tls value=<req/s> unit=req/s baseline=<own TLS req/s> ratio=<shield/own>
#     RESULT netshield.redis_vs_stunnel value=<req/s> unit=req/s baseline=<stunnel req/s> ratio=<shield/stunnel>
#     RESULT netshield.redis_vs_tls_p16 ...
#     RESULT netshield.redis_vs_stunnel_p16 ...
# nginx: Debian's nginx (master and 1 worker, sendfile on, access log off,
#   no session cache or tickets) serving a 1 MiB file: plain-HTTP nginx under
#   the shield against nginx's own `listen ... ssl` (`ssl_protocols TLSv1.3`,
#   `ssl_conf_command NumTickets 0`: the same handshake messages as the
#   shield's); `wrk -t1 -c8 -d BENCH_WRK_SECONDS` (default 5) over https.
#   value = requests/s = MiB/s of body. Goal: ratio at least 0.95.
#     RESULT netshield.nginx_vs_tls value=<MiB/s> unit=MiB/s baseline=<own TLS MiB/s> ratio=<shield/own>
# handshakes: new TLS connections per second to the same two nginx: each
#   connection a full handshake (X25519, ECDSA P-256) and one HTTP/1.0 GET of
#   a 6-byte file: BENCH_HS_CLIENTS (default 1) `openssl s_time -new -tls1_3
#   -time BENCH_HS_SECONDS` (default 4) at once; connections over the wall
#   time. Goal: ratio at least 0.95.
#     RESULT netshield.handshakes_vs_nginx value=<conn/s> unit=conn/s baseline=<own TLS conn/s> ratio=<shield/own>
#
# Each round's figures go to stderr with the servers' CPU time per request
# (utime + stime of the server processes over the round, from /proc: less
# sensitive than requests/s to other work on the machine). The client and
# the server share the machine's CPUs, so the client's own TLS cost is in
# every figure. BENCH_NETSHIELD_PARTS (default "redis nginx handshakes")
# picks the parts. Every process the script starts is stopped by its PID at
# exit; the temporary directory (under BENCH_DIR, default /var/tmp) is
# removed. A part that fails prints why on stderr and no RESULT line, the
# others go on, and the script exits 1.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
LIB=${BUILD:-build}/lib/libscone.so
case $LIB in /*) ;; *) LIB=$PWD/$LIB ;; esac # LD_PRELOAD wants it absolute
RUNS=${BENCH_RUNS:-5}
PARTS=${BENCH_NETSHIELD_PARTS:-redis nginx handshakes}
REDIS_N=${BENCH_REDIS_N:-40000}
REDIS_PIPE_N=${BENCH_REDIS_PIPE_N:-200000}
WRK_SECONDS=${BENCH_WRK_SECONDS:-5}
HS_SECONDS=${BENCH_HS_SECONDS:-4}
HS_CLIENTS=${BENCH_HS_CLIENTS:-1}
PY=$(command -v /usr/bin/python3 || command -v python3)
HZ=$(getconf CLK_TCK)

log() { echo "bench_netshield: $*" >&2; }
part() { case " $PARTS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/scone-bench-ns.XXXXXX") || exit 1
chmod 755 "$work" # nginx's workers (nobody when started as root) read the files
pids=()
cleanup() {
	local p c
	for p in ${pids[@]+"${pids[@]}"}; do
		for c in $(pgrep -P "$p" 2>/dev/null); do kill -9 "$c" 2>/dev/null; done
		kill -9 "$p" 2>/dev/null
	done
	for p in ${pids[@]+"${pids[@]}"}; do wait "$p" 2>/dev/null; done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ -e "$LIB" ] || { log "$LIB missing (make)"; exit 1; }
need() {
	local f
	for f in "$@"; do command -v "$f" >/dev/null || { log "$f missing (scripts/install-deps.sh)"; return 1; }; done
}
need openssl pgrep || exit 1
part redis && { need /usr/bin/redis-server redis-benchmark /usr/bin/stunnel || exit 1; }
{ part nginx || part handshakes; } && { need /usr/sbin/nginx wrk || exit 1; }

# The one certificate of every side: ECDSA P-256, for 127.0.0.1 and localhost.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
	-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$work/key.pem" -out "$work/cert.pem" \
	>"$work/req.log" 2>&1 || { log "openssl req: $(tail -2 "$work/req.log")"; exit 1; }
CERT=$work/cert.pem
KEY=$work/key.pem

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# shielded PORT PROGRAM ARGS...: the command (array CMD) that runs PROGRAM
# with libscone.so preloaded and PORT shielded (server 1, the certificate
# above); plain PROGRAM ARGS...: the same without the runtime.
shielded() {
	local port=$1
	shift
	CMD=(env SCONE_NETWORK_SHIELD=protected SCONE_NETWORK_SHIELD_SERVER_1=protected
		"SCONE_NETWORK_SHIELD_SERVER_1_PORT=TCP:$port"
		"SCONE_NETWORK_SHIELD_SERVER_1_IDENTITY=$(cat "$KEY" "$CERT")" LD_PRELOAD="$LIB" "$@")
}
plain() { CMD=(env -u LD_PRELOAD "$@"); }

alive() { [ -e "/proc/$1" ] && ! grep -q '^State:.*[ZX]' "/proc/$1/status" 2>/dev/null; }

# tls_ok PORT: a TLS 1.3 handshake with PORT verifies against the certificate.
tls_ok() {
	openssl s_client -connect "127.0.0.1:$1" -tls1_3 -CAfile "$CERT" -verify_return_error </dev/null 2>/dev/null |
		grep -q 'Verify return code: 0'
}
# start LOG PORT [tls|tcp]: "${CMD[@]}" in the background until PORT answers
# (a verified TLS 1.3 handshake, or a TCP connect). Sets SRV_PID.
start() {
	local logf=$1 port=$2 how=${3:-tls} i
	"${CMD[@]}" >"$logf" 2>&1 </dev/null &
	SRV_PID=$!
	pids+=("$SRV_PID")
	for ((i = 0; i < 150; i++)); do
		alive "$SRV_PID" || { log "server exited during start-up: $(tail -3 "$logf")"; return 1; }
		if [ "$how" = tls ]; then
			tls_ok "$port" && return 0
		else
			"$PY" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$port" \
				2>/dev/null && return 0
		fi
		sleep 0.1
	done
	log "server on port $port not ready in 15 s: $(tail -3 "$logf")"
	return 1
}
stop() { # PID: SIGTERM, wait up to 10 s
	local i
	kill -TERM "$1" 2>/dev/null
	for ((i = 0; i < 100; i++)); do alive "$1" || break; sleep 0.1; done
	kill -9 "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}
# mapped PID...: is libscone.so mapped in every one of them?
mapped() {
	local p
	for p in "$@"; do grep -q 'libscone\.so' "/proc/$p/maps" 2>/dev/null || return 1; done
}

# cpu_ticks PID...: utime + stime (all threads) of the processes and their children.
cpu_ticks() {
	local p all=()
	for p in "$@"; do
		all+=("$p")
		mapfile -t -O "${#all[@]}" all < <(pgrep -P "$p" 2>/dev/null)
	done
	for p in "${all[@]}"; do sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null; done |
		awk '{ s += $12 + $13 } END { print s + 0 }'
}
# per_req TICKS0 TICKS1 REQUESTS: µs of server CPU per request.
per_req() { awk -v a="$1" -v b="$2" -v n="$3" -v hz="$HZ" 'BEGIN { printf "%.1f", (n > 0) ? (b - a) / hz * 1e6 / n : 0 }'; }

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0) ? a / b : 0 }'; }
range() { printf '%s\n' "$@" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s-%s", lo, hi }'; }

# result NAME UNIT GOAL "values" "baseline values": the RESULT line of the medians.
result() {
	local name=$1 unit=$2 goal=$3 mv mb r
	# shellcheck disable=SC2086 # lists of numbers
	mv=$(median $4)
	# shellcheck disable=SC2086
	mb=$(median $5)
	r=$(ratio "$mv" "$mb")
	printf 'RESULT %s value=%.0f unit=%s baseline=%.0f ratio=%s\n' "$name" "$mv" "$unit" "$mb" "$r"
	# shellcheck disable=SC2086
	log "$name: rounds $(range $4) against $(range $5)"
	if awk -v r="$r" -v g="$goal" 'BEGIN { exit !(r < g) }'; then
		log "goal missed: $name ratio $r (goal: at least $goal)"
	else
		log "goal met: $name ratio $r (goal: at least $goal)"
	fi
	return 0
}

# order ROUND SIDES...: the sides in this round's order (a rotation, reversed every other round).
order() {
	local i=$1 n k s=()
	shift
	n=$#
	for ((k = 0; k < n; k++)); do s+=("${@:$(((i / 2 + k) % n + 1)):1}"); done
	if [ $((i % 2)) -eq 1 ]; then
		for ((k = n - 1; k >= 0; k--)); do printf '%s ' "${s[$k]}"; done
	else
		printf '%s ' "${s[@]}"
	fi
}

failed=()

# ---------------- redis ----------------

declare -A R_PORT R_PIDS
# redis_once SIDE CLIENTS PIPELINE N: the mean of SET and GET requests/s; logs the server CPU per request.
redis_once() {
	local side=$1 c=$2 p=$3 n=$4 out t0 t1 v
	# shellcheck disable=SC2086 # a list of PIDs
	t0=$(cpu_ticks ${R_PIDS[$side]})
	out=$(redis-benchmark -h 127.0.0.1 -p "${R_PORT[$side]}" --tls --cacert "$CERT" -t set,get \
		-n "$n" -c "$c" -P "$p" -q --csv 2>&1) || { echo "redis-benchmark: $(echo "$out" | tail -2)"; return 1; }
	# shellcheck disable=SC2086
	t1=$(cpu_ticks ${R_PIDS[$side]})
	v=$(echo "$out" | awk -F'"' '$2 == "SET" || $2 == "GET" { s += $4; k++ } END { if (k == 2) printf "%.1f", s / 2 }')
	[ -n "$v" ] || { echo "redis-benchmark: no SET and GET figures: $(echo "$out" | tail -2)"; return 1; }
	echo "$v $(per_req "$t0" "$t1" $((2 * n)))"
}

redis_rounds() { # NAME_SUFFIX CLIENTS PIPELINE N
	local sfx=$1 c=$2 p=$3 n=$4 i side v line
	local -A vals=([shield]='' [own]='' [stunnel]='')
	for ((i = 0; i < RUNS; i++)); do
		line=""
		for side in $(order "$i" shield own stunnel); do
			v=$(redis_once "$side" "$c" "$p" "$n") || { log "redis $side: $v"; return 1; }
			vals[$side]="${vals[$side]} ${v%% *}"
			line="$line, $side ${v%% *} req/s (server CPU ${v##* } µs/req)"
		done
		log "redis -c $c -P $p round $((i + 1))${line}"
	done
	result "netshield.redis_vs_tls$sfx" req/s 1.0 "${vals[shield]}" "${vals[own]}"
	result "netshield.redis_vs_stunnel$sfx" req/s 1.5 "${vals[shield]}" "${vals[stunnel]}"
}

bench_redis() {
	local d=$work/redis back
	mkdir -p "$d"
	local common=(--bind 127.0.0.1 --save '' --appendonly no --daemonize no --logfile '' --dir "$d")
	R_PORT[shield]=$(free_port)
	shielded "${R_PORT[shield]}" /usr/bin/redis-server --port "${R_PORT[shield]}" "${common[@]}"
	start "$d/shield.log" "${R_PORT[shield]}" || return 1
	R_PIDS[shield]=$SRV_PID
	mapped "$SRV_PID" || { log "libscone.so is not mapped in the shielded redis-server"; return 1; }

	R_PORT[own]=$(free_port)
	plain /usr/bin/redis-server --port 0 --tls-port "${R_PORT[own]}" --tls-cert-file "$CERT" --tls-key-file "$KEY" \
		--tls-ca-cert-file "$CERT" --tls-auth-clients no --tls-protocols TLSv1.3 "${common[@]}"
	start "$d/own.log" "${R_PORT[own]}" ||
		{ log "redis-server's own TLS did not start (built without TLS?)"; return 1; }
	R_PIDS[own]=$SRV_PID

	back=$(free_port)
	plain /usr/bin/redis-server --port "$back" "${common[@]}"
	start "$d/back.log" "$back" tcp || return 1
	local back_pid=$SRV_PID
	R_PORT[stunnel]=$(free_port)
	cat >"$d/stunnel.conf" <<CONF
foreground = yes
pid = $d/stunnel.pid
[redis]
accept = 127.0.0.1:${R_PORT[stunnel]}
connect = 127.0.0.1:$back
cert = $CERT
key = $KEY
sslVersionMin = TLSv1.3
CONF
	plain /usr/bin/stunnel "$d/stunnel.conf"
	start "$d/stunnel.log" "${R_PORT[stunnel]}" || return 1
	R_PIDS[stunnel]="$SRV_PID $back_pid"
	log "redis: shield :${R_PORT[shield]}, own TLS :${R_PORT[own]}, stunnel :${R_PORT[stunnel]} -> :$back"

	local side
	for side in shield own stunnel; do # warm-up
		redis_once "$side" 50 1 5000 >/dev/null || { log "redis $side warm-up failed"; return 1; }
	done
	redis_rounds "" 50 1 "$REDIS_N" || return 1
	redis_rounds _p16 50 16 "$REDIS_PIPE_N" || return 1
	local p
	for p in ${R_PIDS[shield]} ${R_PIDS[own]} ${R_PIDS[stunnel]}; do stop "$p"; done
}

# ---------------- nginx (1 MiB file, handshakes) ----------------

declare -A N_PORT N_PID
ngx_conf() { # SIDE LISTEN_LINE
	local d=$work/ngx-$1
	mkdir -p "$d/tmp"
	cat >"$d/nginx.conf" <<CONF
daemon off;
master_process on;
worker_processes 1;
pid $d/nginx.pid;
error_log $d/error.log;
events { worker_connections 1024; }
http {
  sendfile on;
  tcp_nopush on;
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $d/tmp/body;
  proxy_temp_path $d/tmp/proxy;
  fastcgi_temp_path $d/tmp/fastcgi;
  uwsgi_temp_path $d/tmp/uwsgi;
  scgi_temp_path $d/tmp/scgi;
  server {
    $2
    root $work/www;
  }
}
CONF
}

ngx_setup() {
	[ -z "${N_PID[shield]:-}" ] || return 0
	mkdir -p "$work/www"
	head -c 1048576 /dev/urandom >"$work/www/1m.bin"
	printf 'hello\n' >"$work/www/small.txt"
	chmod -R a+rX "$work/www"
	N_PORT[shield]=$(free_port)
	N_PORT[own]=$(free_port)
	ngx_conf shield "listen 127.0.0.1:${N_PORT[shield]};"
	ngx_conf own "listen 127.0.0.1:${N_PORT[own]} ssl;
    ssl_certificate $CERT;
    ssl_certificate_key $KEY;
    ssl_protocols TLSv1.3;
    ssl_session_cache off;
    ssl_session_tickets off;
    ssl_conf_command NumTickets 0;"
	local side
	for side in shield own; do
		if [ "$side" = shield ]; then shielded "${N_PORT[$side]}" /usr/sbin/nginx; else plain /usr/sbin/nginx; fi
		CMD+=(-e "$work/ngx-$side/error.log" -p "$work/ngx-$side" -c "$work/ngx-$side/nginx.conf")
		start "$work/ngx-$side/out.log" "${N_PORT[$side]}" || return 1
		N_PID[$side]=$SRV_PID
		cmp -s "$work/www/1m.bin" <(curl -sf --cacert "$CERT" "https://127.0.0.1:${N_PORT[$side]}/1m.bin") ||
			{ log "nginx ($side) serves different bytes: $(tail -2 "$work/ngx-$side/error.log")"; return 1; }
	done
	# shellcheck disable=SC2046 # PIDs
	mapped "${N_PID[shield]}" $(pgrep -P "${N_PID[shield]}") ||
		{ log "libscone.so is not mapped in the shielded nginx's processes"; return 1; }
	log "nginx: shield :${N_PORT[shield]}, own TLS :${N_PORT[own]}"
}

# ngx_wrk SIDE: requests/s of the 1 MiB file, and the server CPU per request.
ngx_wrk() {
	local side=$1 out t0 t1 v n
	t0=$(cpu_ticks "${N_PID[$side]}")
	out=$(wrk -t1 -c8 -d"$WRK_SECONDS"s "https://127.0.0.1:${N_PORT[$side]}/1m.bin" 2>&1) ||
		{ echo "wrk: $(echo "$out" | tail -2)"; return 1; }
	t1=$(cpu_ticks "${N_PID[$side]}")
	if echo "$out" | grep -q "Non-2xx\|Socket errors"; then echo "wrk: $(echo "$out" | grep "Non-2xx\|Socket errors")"; return 1; fi
	v=$(echo "$out" | sed -n 's/^Requests\/sec: *\([0-9.]*\)/\1/p')
	n=$(echo "$out" | sed -n 's/^ *\([0-9]*\) requests in .*/\1/p')
	if [ -z "$v" ] || [ -z "$n" ]; then echo "wrk: no figures: $(echo "$out" | tail -2)"; return 1; fi
	echo "$v $(per_req "$t0" "$t1" "$n")"
}

# ngx_hs SIDE: new connections per second (HS_CLIENTS s_time at once, over the wall time).
ngx_hs() {
	local side=$1 t0 t1 c0 c1 j n rc=0 s_pids=()
	c0=$(cpu_ticks "${N_PID[$side]}")
	t0=$(date +%s.%N)
	for ((j = 0; j < HS_CLIENTS; j++)); do
		openssl s_time -connect "127.0.0.1:${N_PORT[$side]}" -new -tls1_3 -www /small.txt -time "$HS_SECONDS" \
			>"$work/s_time.$j" 2>&1 &
		s_pids+=($!)
	done
	for j in "${s_pids[@]}"; do wait "$j" || rc=1; done
	t1=$(date +%s.%N)
	c1=$(cpu_ticks "${N_PID[$side]}")
	n=$(cat "$work"/s_time.* | awk '/^[0-9]+ connections in [0-9.]+s;/ { s += $1; k++ } END { if (k) print s }')
	if [ "$rc" -ne 0 ] || [ -z "$n" ]; then echo "s_time: $(tail -2 "$work/s_time.0")"; return 1; fi
	rm -f "$work"/s_time.*
	echo "$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", n / (b - a) }') $(per_req "$c0" "$c1" "$n")"
}

# ab_rounds FUNC NAME UNIT GOAL WHAT: RUNS rounds of FUNC shield / FUNC own (order flipped every round).
ab_rounds() {
	local fn=$1 name=$2 unit=$3 goal=$4 what=$5 i side v line vs='' vo=''
	for ((i = 0; i < RUNS; i++)); do
		line=""
		for side in $(order "$i" shield own); do
			v=$("$fn" "$side") || { log "$fn $side: $v"; return 1; }
			if [ "$side" = shield ]; then vs="$vs ${v%% *}"; else vo="$vo ${v%% *}"; fi
			line="$line, $side ${v%% *} $unit (server CPU ${v##* } µs/$what)"
		done
		log "$fn round $((i + 1))${line}"
	done
	result "$name" "$unit" "$goal" "$vs" "$vo"
}

bench_nginx() {
	ngx_setup || return 1
	if ! ngx_wrk shield >/dev/null || ! ngx_wrk own >/dev/null; then log "wrk warm-up failed"; return 1; fi
	ab_rounds ngx_wrk netshield.nginx_vs_tls MiB/s 0.95 req
}

bench_handshakes() {
	ngx_setup || return 1
	ab_rounds ngx_hs netshield.handshakes_vs_nginx conn/s 0.95 conn
}

log "load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
for p in redis nginx handshakes; do
	part "$p" || continue
	log "== $p"
	"bench_$p" || { log "$p: FAILED (no RESULT)"; failed+=("$p"); }
done
for side in shield own; do [ -z "${N_PID[$side]:-}" ] || stop "${N_PID[$side]}"; done
log "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
[ ${#failed[@]} -eq 0 ] || { log "failed parts: ${failed[*]}"; exit 1; }
exit 0
