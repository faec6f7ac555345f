#!/usr/bin/env bash
# test_netshield.sh - the network shield (docs/network-shield.md) with
# unmodified Debian programs in their default configurations: redis-server
# and nginx-light as shielded TLS servers, redis-cli and python3 as plain
# clients under the client shield, mutual TLS, the same through CAS (the
# shield's variables in a session, the identity from a session x509 secret),
# a capture on the loopback interface (no plaintext on the wire), and the
# shield disabled (the same answers in the clear).
#
# Without CAS the runtime reads SCONE_NETWORK_SHIELD* from the host's
# environment: the program is started as `env VARS... LD_PRELOAD=libscone.so
# PROGRAM` (with `timeout` outside: a client that hangs fails its case).
#
# Certificates are made per case with openssl; servers listen on free ports on
# 127.0.0.1 and are stopped by PID. No traffic leaves 127.0.0.1.
set -u
cd "$(dirname "$0")/../.." || exit 1
T_CMD_TIMEOUT=${T_CMD_TIMEOUT:-20}
. tests/integration/lib.sh
. tests/integration/cas_lib.sh
t_init
cas_require
LIB=$PWD/build/lib/libscone.so
REDIS=/usr/bin/redis-server
REDIS_CLI=/usr/bin/redis-cli
NGINX=/usr/sbin/nginx
PY=/usr/bin/python3
if [ ! -f "$LIB" ]; then
	echo "not ok - setup: $LIB not built (run make)"
	exit 1
fi

# ---------------- helpers ----------------

need_redis() {
	if [ ! -x "$REDIS" ] || [ ! -x "$REDIS_CLI" ]; then
		t_skip_case "redis-server/redis-cli not installed (scripts/install-deps.sh)"
	fi
}

# P-256 keys; make_ca NAME: NAME.key NAME.crt, a CA.
make_ca() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=$1 test CA" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
		-keyout "$1.key" -out "$1.crt" >/dev/null 2>&1 || fail "openssl: CA $1"
}

# make_leaf NAME CA server|client: NAME.key NAME.crt signed by CA (a server's names 127.0.0.1).
make_leaf() {
	local name=$1 ca=$2 kind=$3 ext
	if [ "$kind" = server ]; then
		ext="subjectAltName=IP:127.0.0.1
extendedKeyUsage=serverAuth"
	else
		ext="extendedKeyUsage=clientAuth"
	fi
	printf '%s\n' "$ext" >"$name.ext"
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$name" \
		-keyout "$name.key" -out "$name.csr" >/dev/null 2>&1 || fail "openssl: request $name"
	openssl x509 -req -in "$name.csr" -CA "$ca.crt" -CAkey "$ca.key" -CAcreateserial -days 1 \
		-extfile "$name.ext" -out "$name.crt" >/dev/null 2>&1 || fail "openssl: sign $name"
}

# The case's PKI: ca (signs srv, a server, and cli, a client) and other (signs ocli).
make_pki() {
	make_ca ca
	make_ca other
	make_leaf srv ca server
	make_leaf cli ca client
	make_leaf ocli other client
}

# shield_server_env N PORT [IDENTITY_FILES...]: VARS (an array) gets server N's variables.
VARS=()
shield_server_env() {
	local n=$1 port=$2
	shift 2
	VARS+=("SCONE_NETWORK_SHIELD_SERVER_$n=protected" "SCONE_NETWORK_SHIELD_SERVER_${n}_PORT=TCP:$port")
	[ $# -eq 0 ] || VARS+=("SCONE_NETWORK_SHIELD_SERVER_${n}_IDENTITY=$(cat "$@")")
}

# shield_client_env N PORT CA_FILE: VARS gets client N (127.0.0.1:PORT, the server checked against CA_FILE).
shield_client_env() {
	VARS+=("SCONE_NETWORK_SHIELD_CLIENT_$1=protected" "SCONE_NETWORK_SHIELD_CLIENT_$1_DESTINATION=TCP:127.0.0.1:$2"
		"SCONE_NETWORK_SHIELD_CLIENT_$1_SERVER_AUTH=$(cat "$3")")
}

# under_shield CMD...: CMD under the runtime with the variables in VARS (a timeout outside).
under_shield() {
	timeout "$T_CMD_TIMEOUT" env "${VARS[@]}" LD_PRELOAD="$LIB" "$@"
}

# start_redis NAME PORT: redis-server under the runtime with VARS, in the background
# (NAME.out, NAME.err); waits for "Ready to accept connections". Sets SRV_PID.
start_redis() {
	local name=$1 port=$2 i
	env "${VARS[@]}" LD_PRELOAD="$LIB" "$REDIS" --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
		>"$name.out" 2>"$name.err" </dev/null &
	SRV_PID=$!
	case_track_pid "$SRV_PID"
	for ((i = 0; i < 100; i++)); do
		grep -q "Ready to accept connections" "$name.out" 2>/dev/null && return 0
		alive "$SRV_PID" || { cat "$name.out" "$name.err"; fail "redis-server exited during start-up"; }
		sleep 0.1
	done
	cat "$name.out" "$name.err"
	fail "redis-server not ready within 10 s"
}

# stop_pid PID: SIGTERM, then wait (SIGKILL after 10 s: fail).
stop_pid() {
	local i
	kill -TERM "$1" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		alive "$1" || break
		sleep 0.1
	done
	if alive "$1"; then
		kill -9 "$1" 2>/dev/null
		wait "$1" 2>/dev/null
		case_untrack_pid "$1"
		fail "pid $1 did not stop within 10 s of SIGTERM"
	fi
	wait "$1" 2>/dev/null || true
	case_untrack_pid "$1"
}

# rtls PORT ARGS...: redis-cli over TLS, checking the server against ca.crt.
rtls() {
	local port=$1
	shift
	timeout 15 "$REDIS_CLI" -h 127.0.0.1 -p "$port" --tls --cacert ca.crt "$@"
}

# rplain PORT ARGS...: plain redis-cli (no runtime).
rplain() {
	local port=$1
	shift
	timeout 15 "$REDIS_CLI" -h 127.0.0.1 -p "$port" "$@"
}

# expect_refused WHAT CMD...: CMD fails (non-zero, not a timeout) and prints no answer.
expect_refused() {
	local what=$1
	shift
	run_cmd "$@"
	[ "$RC" -ne 0 ] || { show_output; fail "$what: expected a failure, got exit 0"; }
	[ "$RC" -ne 124 ] || { show_output; fail "$what: hung (killed by timeout)"; }
	if grep -aqE '^(OK|PONG|"?v-)' "$OUT"; then
		show_output
		fail "$what: the server answered"
	fi
}

# The commands cases 1 and 8 send, and what a redis-server answers them.
REDIS_SCRIPT='SET k1 v-alpha
GET k1
APPEND k1 -beta
GET k1
INCR counter
INCR counter
DBSIZE
DEL k1
EXISTS k1'
REDIS_ANSWERS='OK
v-alpha
12
v-alpha-beta
1
2
2
1
0'

# ---------------- 1. redis-server shielded, redis-cli --tls ----------------

case_redis_tls() {
	need_redis
	cas_case_begin
	make_pki
	local port pk
	port=$(free_port)
	VARS=(SCONE_VERSION=1 SCONE_NETWORK_SHIELD=protected)
	shield_server_env 1 "$port" srv.key srv.crt
	start_redis srv "$port"
	assert_grep "scone: info: runtime: network shield protected" srv.err
	assert_grep "scone: info: runtime: network shield server 1 \(TCP:$port\): protected" srv.err
	assert_eq "$REDIS_ANSWERS" "$(echo "$REDIS_SCRIPT" | rtls "$port")" "answers over TLS"
	assert_eq OK "$(rtls "$port" SET greeting hello-tls)" "TLS SET"
	assert_eq hello-tls "$(rtls "$port" GET greeting)" "TLS GET"
	# A plain client is refused (the server sees no TLS), then TLS clients are served again.
	expect_refused "plain redis-cli" rplain "$port" GET greeting
	expect_refused "plain redis-cli (ping)" rplain "$port" PING
	assert_eq hello-tls "$(rtls "$port" GET greeting)" "TLS GET after the plain clients"
	assert_grep "network shield: server 1 \(TCP:$port\).*TLS handshake failed" srv.err
	# The identity's key is wiped from the block /proc/PID/environ shows.
	pk=$(sed -n 2p srv.key)
	if grep -qaF -e "$pk" "/proc/$SRV_PID/environ"; then fail "the server's private key is in /proc/$SRV_PID/environ"; fi
	alive "$SRV_PID" || fail "redis-server died"
	stop_pid "$SRV_PID"
}

# ---------------- 2. plain redis-cli under the client shield ----------------

case_redis_client_shield() {
	need_redis
	cas_case_begin
	make_pki
	local port i
	port=$(free_port)
	VARS=(SCONE_NETWORK_SHIELD=protected)
	shield_server_env 1 "$port" srv.key srv.crt
	start_redis srv "$port"
	# The right CA: a plain redis-cli talks TLS without knowing it.
	VARS=(SCONE_VERSION=1 SCONE_NETWORK_SHIELD=protected)
	shield_client_env 1 "$port" ca.crt
	expect_ok under_shield "$REDIS_CLI" -h 127.0.0.1 -p "$port" SET via-client-shield v-client
	assert_eq OK "$(cat "$OUT")" "SET under the client shield"
	assert_grep "network shield client 1 \(TCP:127.0.0.1:$port\): protected" "$ERR"
	expect_ok under_shield "$REDIS_CLI" -h 127.0.0.1 -p "$port" GET via-client-shield
	assert_eq v-client "$(cat "$OUT")" "GET under the client shield"
	# What the client wrote is what a TLS client reads.
	assert_eq v-client "$(rtls "$port" GET via-client-shield)" "the value read with redis-cli --tls"
	# The wrong CA: the handshake fails and redis-cli exits non-zero, without a hang
	# (several tries: whether the failure is seen in send or recv is a race).
	VARS=(SCONE_NETWORK_SHIELD=protected)
	shield_client_env 1 "$port" other.crt
	for i in 1 2 3 4 5 6; do
		T_CMD_TIMEOUT=10 expect_refused "redis-cli under the client shield with a wrong CA (try $i)" \
			under_shield "$REDIS_CLI" -h 127.0.0.1 -p "$port" GET via-client-shield
		assert_grep "network shield: client 1 .*TLS handshake failed.*certificate verify failed" "$ERR"
	done
	# The protected mode refuses a destination no rule names (here: the port + 0 on another rule).
	VARS=(SCONE_NETWORK_SHIELD=protected)
	shield_client_env 1 "$(free_port)" ca.crt
	expect_refused "a destination no rule names" under_shield "$REDIS_CLI" -h 127.0.0.1 -p "$port" PING
	assert_grep "network shield: connection to .*127.0.0.1:$port.* refused" "$ERR"
	# The server still serves others.
	assert_eq v-client "$(rtls "$port" GET via-client-shield)" "the server after the failed clients"
	VARS=(SCONE_NETWORK_SHIELD=protected)
	shield_client_env 1 "$port" ca.crt
	expect_ok under_shield "$REDIS_CLI" -h 127.0.0.1 -p "$port" PING
	assert_eq PONG "$(cat "$OUT")" "PING under the client shield after the failures"
	stop_pid "$SRV_PID"
}

# ---------------- 3. mutual TLS ----------------

case_redis_mtls() {
	need_redis
	cas_case_begin
	make_pki
	local port
	port=$(free_port)
	VARS=(SCONE_NETWORK_SHIELD=protected "SCONE_NETWORK_SHIELD_SERVER_1_CLIENT_AUTH=$(cat ca.crt)")
	shield_server_env 1 "$port" srv.key srv.crt
	start_redis srv "$port"
	assert_eq OK "$(rtls "$port" --cert cli.crt --key cli.key SET m mutual)" "SET with a client certificate from the CA"
	assert_eq mutual "$(rtls "$port" --cert cli.crt --key cli.key GET m)" "GET with a client certificate from the CA"
	expect_refused "redis-cli --tls without a client certificate" rtls "$port" GET m
	expect_refused "redis-cli --tls with a certificate of another CA" rtls "$port" --cert ocli.crt --key ocli.key GET m
	assert_grep "network shield: server 1 .*TLS handshake failed" srv.err
	# The client shield presents its _IDENTITY to a server that requires one.
	VARS=(SCONE_NETWORK_SHIELD=protected "SCONE_NETWORK_SHIELD_CLIENT_1_IDENTITY=$(cat cli.key cli.crt)")
	shield_client_env 1 "$port" ca.crt
	expect_ok under_shield "$REDIS_CLI" -h 127.0.0.1 -p "$port" GET m
	assert_eq mutual "$(cat "$OUT")" "GET under the client shield with a client identity"
	assert_eq mutual "$(rtls "$port" --cert cli.crt --key cli.key GET m)" "the server after the refused clients"
	stop_pid "$SRV_PID"
}

# ---------------- 4. through CAS ----------------

# The session: redis-server with the shield in its environment; its identity is
# the x509 secret "self" (self-signed) or "leaf" (issued by the x509-ca "ca");
# "bad" has a port out of range.
netshield_yaml() { # PORT
	local svc name
	cat <<YAML
name: nsh
version: "0.3"
security:
  attestation:
    mode: las
services:
YAML
	for svc in self:self:$1 leaf:leaf:$1 bad:self:99999; do
		name=${svc%%:*}
		cat <<YAML
  - name: $name
$LAS_ATTEST
    command: redis-server --port $1 --bind 127.0.0.1 --save "" --appendonly no
    environment:
      SCONE_NETWORK_SHIELD: protected
      SCONE_NETWORK_SHIELD_SERVER_1: protected
      SCONE_NETWORK_SHIELD_SERVER_1_PORT: "TCP:${svc##*:}"
      SCONE_NETWORK_SHIELD_SERVER_1_IDENTITY: "\$\$SCONE::$(echo "$svc" | cut -d: -f2):privatekey\$\$\$\$SCONE::$(echo "$svc" | cut -d: -f2):crt\$\$"
YAML
	done
	cat <<YAML
secrets:
  - {name: self, kind: x509, common_name: 127.0.0.1, san: [ip:127.0.0.1], endpoint: server, valid_for: 1 days}
  - {name: ca, kind: x509-ca, common_name: Netshield test CA, valid_for: 1 days}
  - {name: leaf, kind: x509, issuer: ca, common_name: 127.0.0.1, san: [ip:127.0.0.1], endpoint: server, valid_for: 1 days}
YAML
}

# cas_session: a LAS and a CAS for this case, the session nsh created; PORT set.
cas_session() {
	las_start "$CASE_DIR/las" || fail "scone-las did not start"
	case_track_pid "$LAS_PID"
	export SCONE_LAS_ADDR="unix:$LAS_SOCK"
	las_attestation "$REDIS"
	cas_start "$CASE_DIR/cas"
	owner_new "$CASE_DIR/owner"
	PORT=$(free_port)
	netshield_yaml "$PORT" >nsh.yaml
	expect_created nsh.yaml
	expect_ok scone session read nsh --json
	cp "$OUT" session.json
}

# public NAME: the certificate of the session's secret NAME, as CAS exports it
# (`scone session read --json`: the public part of x509 and x509-ca secrets).
public() {
	jget session.json "[s[\"public\"] for s in d[\"secrets\"] if s[\"name\"] == \"$1\"][0]" >"$1.crt"
	grep -q "BEGIN CERTIFICATE" "$1.crt" || { cat "$1.crt"; fail "no certificate for the secret $1 from CAS"; }
}

# cas_redis SERVICE: redis-server of nsh/SERVICE under `scone run`; sets SRV_PID.
cas_redis() {
	local i
	SCONE_VERSION=1 "$SCONE_BIN" run --config-id "nsh/$1" -- "$REDIS" >"$1.out" 2>"$1.err" </dev/null &
	SRV_PID=$!
	case_track_pid "$SRV_PID"
	for ((i = 0; i < 150; i++)); do
		grep -q "Ready to accept connections" "$1.out" 2>/dev/null && break
		alive "$SRV_PID" || { cat "$1.out" "$1.err"; fail "redis-server of nsh/$1 exited during start-up"; }
		sleep 0.1
	done
	grep -q "Ready to accept connections" "$1.out" || { cat "$1.out" "$1.err"; fail "redis-server of nsh/$1 not ready"; }
	assert_grep "network shield server 1 \(TCP:$PORT\): protected" "$1.err"
}

# served_is CERT: the server on PORT presents CERT.
served_is() {
	local got
	got=$(openssl s_client -connect "127.0.0.1:$PORT" </dev/null 2>/dev/null | openssl x509 -outform DER | sha256sum | cut -d' ' -f1)
	assert_eq "$(cert_fp "$1")" "$got" "served certificate (vs the session's secret $1)"
}

case_cas() {
	need_redis
	cas_case_begin
	cas_session
	# A self-signed secret: the client trusts that certificate, exported from CAS.
	public self
	cp self.crt ca.crt
	cas_redis self
	assert_eq OK "$(rtls "$PORT" SET cas-key from-cas)" "TLS SET (server checked against the secret's certificate)"
	assert_eq from-cas "$(rtls "$PORT" GET cas-key)" "TLS GET"
	expect_refused "plain redis-cli to the CAS-configured server" rplain "$PORT" GET cas-key
	assert_eq from-cas "$(rtls "$PORT" GET cas-key)" "TLS GET after a plain client"
	served_is self.crt
	# The shield's variables reach neither the process's environment block nor what
	# the program shows (CONFIG GET *); the private key is nowhere in /proc/PID.
	[ -r "/proc/$SRV_PID/environ" ] || fail "/proc/$SRV_PID/environ not readable"
	if grep -qa "SCONE_NETWORK_SHIELD" "/proc/$SRV_PID/environ"; then fail "SCONE_NETWORK_SHIELD* in /proc/$SRV_PID/environ"; fi
	if grep -qa "PRIVATE KEY" "/proc/$SRV_PID/environ" "/proc/$SRV_PID/cmdline"; then fail "a private key in /proc/$SRV_PID"; fi
	rtls "$PORT" CONFIG GET '*' >config.txt || fail "CONFIG GET *"
	grep -q '^port$' config.txt || { head config.txt; fail "CONFIG GET * answered nothing useful"; }
	if grep -qaE "SCONE_NETWORK_SHIELD|PRIVATE KEY" config.txt; then fail "the shield's variables in CONFIG GET *"; fi
	stop_pid "$SRV_PID"
	# A bad configuration in the session stops the start, naming the variable.
	expect_no_main "SCONE_NETWORK_SHIELD_SERVER_1_PORT" scone run --config-id nsh/bad -- "$REDIS"
	# The same without CAS.
	VARS=(SCONE_NETWORK_SHIELD=protected SCONE_NETWORK_SHIELD_SERVER_1=protected SCONE_NETWORK_SHIELD_SERVER_1_PORT=TCP:99999)
	expect_no_main "SCONE_NETWORK_SHIELD_SERVER_1_PORT" under_shield "$REDIS" --port "$PORT" --bind 127.0.0.1
	VARS=(SCONE_NETWORK_SHIELD=protected SCONE_NETWORK_SHIELD_CLIENT_1=protected "SCONE_NETWORK_SHIELD_CLIENT_1_DESTINATION=TCP:127.0.0.1:$PORT")
	expect_no_main "SCONE_NETWORK_SHIELD_CLIENT_1_SERVER_AUTH" under_shield "$REDIS_CLI" -p "$PORT" PING
}

case_cas_issued() {
	need_redis
	cas_case_begin
	cas_session
	# A certificate issued by the session's x509-ca: the client trusts the CA, exported from CAS.
	public ca
	public leaf
	openssl verify -CAfile ca.crt leaf.crt >verify.out 2>&1 || { cat verify.out; fail "the secret leaf does not chain to the exported CA"; }
	cas_redis leaf
	assert_eq OK "$(rtls "$PORT" SET cas-key issued)" "TLS SET (server checked against the session's CA)"
	assert_eq issued "$(rtls "$PORT" GET cas-key)" "TLS GET"
	expect_refused "plain redis-cli" rplain "$PORT" GET cas-key
	served_is leaf.crt
	stop_pid "$SRV_PID"
}

# ---------------- 5. nginx ----------------

# nginx_conf DIR PORT_PLAIN_ROOT ROOT1 [PORT2 ROOT2]: a minimal nginx.conf in DIR.
nginx_conf() {
	local d=$1 p1=$2 r1=$3 p2=${4:-} r2=${5:-}
	mkdir -p "$d/tmp"
	{
		cat <<CONF
daemon off;
master_process on;
user root;
worker_processes 2;
pid $d/nginx.pid;
error_log $d/error.log info;
events { worker_connections 64; }
http {
  access_log $d/access.log;
  client_body_temp_path $d/tmp/body;
  proxy_temp_path $d/tmp/proxy;
  fastcgi_temp_path $d/tmp/fastcgi;
  uwsgi_temp_path $d/tmp/uwsgi;
  scgi_temp_path $d/tmp/scgi;
  sendfile on;
  server { listen 127.0.0.1:$p1; root $r1; }
CONF
		[ -z "$p2" ] || echo "  server { listen 127.0.0.1:$p2; root $r2; }"
		echo "}"
	} >"$d/nginx.conf"
}

# wait_port PID PORT: PID alive and PORT accepting within 10 s.
wait_port() {
	local i
	for ((i = 0; i < 100; i++)); do
		alive "$1" || { cat ngx.err 2>/dev/null; fail "server (pid $1) exited during start-up"; }
		if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	fail "nothing listens on 127.0.0.1:$2 within 10 s"
}

# start_nginx PORT...: nginx under the runtime with VARS and $CASE_DIR/ngx/nginx.conf; sets SRV_PID.
start_nginx() {
	local p
	env "${VARS[@]}" LD_PRELOAD="$LIB" "$NGINX" -e "$CASE_DIR/ngx/error.log" -p "$CASE_DIR/ngx" \
		-c "$CASE_DIR/ngx/nginx.conf" >ngx.out 2>ngx.err </dev/null &
	SRV_PID=$!
	case_track_pid "$SRV_PID"
	for p in "$@"; do wait_port "$SRV_PID" "$p"; done
}

# site DIR: index.html and a 1 MiB blob.bin.
make_site() {
	mkdir -p "$1"
	printf '<html><body>netshield SCONE-NETSHIELD-PAGE-4c1e</body></html>\n' >"$1/index.html"
	make_file "$1/blob.bin" 1048576 netshield-blob
}

# curl_check PORT FILE: curl --cacert ca.crt fetches FILE byte for byte (sha256).
curl_check() {
	local port=$1 f=$2
	curl -sS --max-time 20 --cacert ca.crt -o "got.$f" "https://127.0.0.1:$port/$f" ||
		{ tail -5 ngx/error.log; fail "curl https://127.0.0.1:$port/$f"; }
	assert_eq "$(sha256sum <"site/$f")" "$(sha256sum <"got.$f")" "sha256 of $f over port $port"
	rm -f "got.$f"
}

# check_served PORT: both files byte for byte over TLS; plain http:// gets no page;
# still serving after that.
check_served() {
	local p=$1 f rc=0
	for f in index.html blob.bin; do curl_check "$p" "$f"; done
	curl -sS --max-time 10 -o plain.out "http://127.0.0.1:$p/index.html" 2>plain.err || rc=$?
	[ "$rc" -ne 0 ] || { cat plain.out; fail "plain http:// on port $p succeeded"; }
	[ "$rc" -ne 28 ] || fail "plain http:// on port $p hung"
	if grep -qa "SCONE-NETSHIELD-PAGE" plain.out; then fail "the page over plain http on port $p"; fi
	curl_check "$p" blob.bin
	curl_check "$p" index.html
}

# stop_nginx: the workers were there; SIGTERM; no alerts in the log.
stop_nginx() {
	ps -o args= --ppid "$SRV_PID" | grep -q '^nginx: worker process' || fail "no nginx workers"
	stop_pid "$SRV_PID"
	if grep -E '\[(alert|crit|emerg)\]' ngx/error.log; then fail "nginx logged alerts"; fi
	grep -q "GET /blob.bin" ngx/access.log || fail "no access log"
}

case_nginx() {
	[ -x "$NGINX" ] || t_skip_case "nginx not installed (scripts/install-deps.sh: nginx-light)"
	cas_case_begin
	make_pki
	make_site site
	local port
	port=$(free_port)
	nginx_conf "$CASE_DIR/ngx" "$port" "$CASE_DIR/site"
	VARS=(SCONE_NETWORK_SHIELD=protected)
	shield_server_env 1 "$port" srv.key srv.crt
	start_nginx "$port"
	check_served "$port"
	stop_nginx
}

# The same files in an encrypted volume (scone fspf, SCONE_FSPF without CAS):
# sendfile goes from the volume to the TLS socket.
case_nginx_volume() {
	[ -x "$NGINX" ] || t_skip_case "nginx not installed (scripts/install-deps.sh: nginx-light)"
	cas_case_begin
	make_pki
	make_site site
	local port line key tag
	port=$(free_port)
	mkdir -p fs
	cp -r site fs/native
	(
		cd fs && "$SCONE_BIN" fspf create volume.fspf >/dev/null &&
			"$SCONE_BIN" fspf addr volume.fspf /scone-netshield-www --encrypted --kernel enc >/dev/null &&
			"$SCONE_BIN" fspf addf volume.fspf /scone-netshield-www native enc >/dev/null
	) || fail "scone fspf"
	line=$(cd fs && "$SCONE_BIN" fspf encrypt volume.fspf) || fail "scone fspf encrypt"
	key=$(echo "$line" | sed 's/.* key: //')
	tag=$(echo "$line" | sed 's/.* tag: \([0-9a-f]*\) .*/\1/')
	rm -rf fs/native
	if grep -rqa "SCONE-NETSHIELD-PAGE" fs; then fail "plaintext in the volume directory"; fi
	[ ! -e /scone-netshield-www ] || fail "/scone-netshield-www exists on the host"
	nginx_conf "$CASE_DIR/ngx" "$port" /scone-netshield-www
	VARS=(SCONE_NETWORK_SHIELD=protected "SCONE_FSPF=$CASE_DIR/fs/volume.fspf" "SCONE_FSPF_KEY=$key" "SCONE_FSPF_TAG=$tag")
	shield_server_env 1 "$port" srv.key srv.crt
	start_nginx "$port"
	check_served "$port"
	stop_nginx
}

# ---------------- 6. python3 as a plain HTTP client under the client shield ----------------

case_python_client() {
	[ -x "$NGINX" ] || t_skip_case "nginx not installed (scripts/install-deps.sh: nginx-light)"
	[ -x "$PY" ] || t_skip_case "$PY not installed"
	cas_case_begin
	make_pki
	make_site site
	local port
	port=$(free_port)
	nginx_conf "$CASE_DIR/ngx" "$port" "$CASE_DIR/site"
	VARS=(SCONE_NETWORK_SHIELD=protected)
	shield_server_env 1 "$port" srv.key srv.crt
	start_nginx "$port"
	cat >get.py <<'PY'
import hashlib, http.client, sys
port = int(sys.argv[1])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
for path in sys.argv[2:]:
    c.request("GET", "/" + path)
    r = c.getresponse()
    body = r.read()
    print(path, r.status, len(body), hashlib.sha256(body).hexdigest())
c.close()
PY
	VARS=(SCONE_NETWORK_SHIELD=protected)
	shield_client_env 1 "$port" ca.crt
	expect_ok under_shield "$PY" get.py "$port" index.html blob.bin index.html
	assert_eq "index.html 200 $(stat -c %s site/index.html) $(sha256sum <site/index.html | cut -d' ' -f1)
blob.bin 200 1048576 $(sha256sum <site/blob.bin | cut -d' ' -f1)
index.html 200 $(stat -c %s site/index.html) $(sha256sum <site/index.html | cut -d' ' -f1)" "$(cat "$OUT")" \
		"python3 http.client through the client shield (one keep-alive connection)"
	# Without the client shield the same python gets nothing from the TLS port.
	run_cmd timeout 20 "$PY" get.py "$port" index.html
	[ "$RC" -ne 0 ] || { show_output; fail "plain python3 got an answer from the shielded nginx"; }
	stop_pid "$SRV_PID"
}

# ---------------- 7. on the wire ----------------

CAP_PID=
# cap_start PORT FILE: capture loopback traffic of PORT into FILE; skips the case if not permitted.
cap_start() {
	local tool i
	tool=$(command -v dumpcap || command -v tshark || true)
	if [ -n "$tool" ]; then
		"$tool" -q -i lo -f "tcp port $1" -w "$2" >cap.log 2>&1 </dev/null &
	elif command -v tcpdump >/dev/null; then
		tool=tcpdump
		tcpdump -i lo -U -w "$2" "tcp port $1" >cap.log 2>&1 </dev/null &
	else
		t_skip_case "no capture tool (tshark, dumpcap or tcpdump; scripts/install-deps.sh installs tshark)"
	fi
	CAP_PID=$!
	case_track_pid "$CAP_PID"
	for ((i = 0; i < 100; i++)); do
		grep -qE "Capturing on|listening on" cap.log 2>/dev/null && { sleep 0.3; return 0; }
		if ! alive "$CAP_PID"; then
			wait "$CAP_PID" 2>/dev/null
			case_untrack_pid "$CAP_PID"
			cat cap.log
			t_skip_case "capturing on lo is not permitted here ($tool: $(head -1 cap.log))"
		fi
		sleep 0.05
	done
	cat cap.log
	fail "$tool did not start capturing within 5 s"
}

cap_stop() {
	sleep 0.3
	kill -INT "$CAP_PID" 2>/dev/null || true
	stop_pid "$CAP_PID"
	[ -s "$1" ] || fail "no capture file $1"
}

case_wire() {
	need_redis
	cas_case_begin
	make_pki
	local port marker control
	port=$(free_port)
	marker="SCONE-WIRE-MARKER-$RANDOM$RANDOM-secret"
	control="SCONE-WIRE-CONTROL-$RANDOM$RANDOM-clear"
	# Shielded: the marker goes through a TLS connection; nowhere in the capture.
	VARS=(SCONE_NETWORK_SHIELD=protected)
	shield_server_env 1 "$port" srv.key srv.crt
	start_redis srv "$port"
	cap_start "$port" tls.pcap
	assert_eq OK "$(rtls "$port" SET wire "$marker")" "SET through the shield"
	assert_eq "$marker" "$(rtls "$port" GET wire)" "GET through the shield"
	cap_stop tls.pcap
	stop_pid "$SRV_PID"
	if grep -qaF "$marker" tls.pcap; then fail "the marker in plaintext on the wire with the shield"; fi
	# Control: the same server with the shield disabled; the capture shows the marker.
	VARS=(SCONE_NETWORK_SHIELD=disabled)
	shield_server_env 1 "$port" srv.key srv.crt
	start_redis ctl "$port"
	cap_start "$port" plain.pcap
	assert_eq OK "$(rplain "$port" SET wire "$control")" "SET with the shield disabled"
	cap_stop plain.pcap
	stop_pid "$SRV_PID"
	grep -qaF "$control" plain.pcap || fail "the control marker is not in the capture: the capture does not work"
	# And the capture holds the shielded connection's traffic (a TLS handshake) at all.
	[ "$(stat -c %s tls.pcap)" -gt 1000 ] || fail "the shielded run's capture is nearly empty ($(stat -c %s tls.pcap) bytes)"
}

# ---------------- 8. the shield disabled ----------------

case_disabled() {
	need_redis
	cas_case_begin
	make_pki
	local port
	port=$(free_port)
	VARS=(SCONE_VERSION=1 SCONE_NETWORK_SHIELD=disabled)
	shield_server_env 1 "$port" srv.key srv.crt
	start_redis srv "$port"
	assert_no_grep "network shield (protected|unprotected)|network shield server" srv.err
	assert_eq "$REDIS_ANSWERS" "$(echo "$REDIS_SCRIPT" | rplain "$port")" "answers in the clear with the shield disabled"
	assert_eq OK "$(rplain "$port" SET greeting hello-plain)" "plain SET"
	assert_eq hello-plain "$(rplain "$port" GET greeting)" "plain GET"
	# A client with the shield disabled also talks in the clear.
	VARS=(SCONE_NETWORK_SHIELD=disabled)
	shield_client_env 1 "$port" ca.crt
	expect_ok under_shield "$REDIS_CLI" -h 127.0.0.1 -p "$port" GET greeting
	assert_eq hello-plain "$(cat "$OUT")" "GET from a client with the shield disabled"
	stop_pid "$SRV_PID"
}

run_case "netshield: redis-server shielded (host environment): redis-cli --tls SET/GET, a plain redis-cli refused, TLS served after it" case_redis_tls
run_case "netshield: a plain redis-cli under the client shield reaches the shielded redis-server; a wrong CA fails cleanly" case_redis_client_shield
run_case "netshield: mutual TLS (_CLIENT_AUTH): a client certificate from the CA works, none or another CA's is refused" case_redis_mtls
run_case "netshield: through CAS: the shield in the session's environment, identity from an x509 secret, variables hidden, a bad one refused" case_cas
run_case "netshield: through CAS: the identity a certificate issued by the session's x509-ca, the client checks the CA" case_cas_issued
run_case "netshield: nginx shielded (sendfile on): curl --cacert gets a small and a 1 MiB file byte for byte, plain http fails" case_nginx
run_case "netshield: nginx shielded serving an encrypted volume (SCONE_FSPF): sendfile from the volume to TLS" case_nginx_volume
run_case "netshield: python3 http.client under the client shield fetches from the shielded nginx" case_python_client
run_case "netshield: on the wire: a marker written through the shielded redis is not in a loopback capture, the disabled control's is" case_wire
run_case "netshield: SCONE_NETWORK_SHIELD=disabled: the same server gives the same answers to a plain client" case_disabled
t_done
