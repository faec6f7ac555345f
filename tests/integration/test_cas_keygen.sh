#!/usr/bin/env bash
# test_cas_keygen.sh - one owner cannot freeze CAS with key generation.
# Session creates and updates run in the slow lane; their RSA keys cost
# units (RSA-3072 4, RSA-2048 1), bounded per create/update and per client
# key per minute. Checked: a session asking for 100 RSA-3072 keys is refused
# at once with a 400 that says why; an owner over its budget gets 429 with
# Retry-After; kept keys cost nothing; and while four owners generate RSA
# keys at the same time, /healthz and service configurations keep answering
# within 100 ms, measured on keep-alive and on new connections.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
. tests/integration/cas_lib.sh
t_init
cas_require

# rsa_session NAME N [PREDECESSOR]: N RSA-3072 keys (migrate: true, so an update keeps them).
rsa_session() {
	echo "name: $1"
	echo 'version: "0.3"'
	[ -z "${3:-}" ] || echo "predecessor: $3"
	cat <<EOF
security:
  attestation:
    mode: none
services:
  - name: app
    command: /bin/app
secrets:
EOF
	for ((i = 0; i < $2; i++)); do
		echo "  - {name: k$i, kind: private-key, key_type: RSA-3072, migrate: true}"
	done
}

# http_head WHO METHOD PATH FILE: like http, with the response head in $CASE_DIR/.head.
http_head() {
	local args=(-sk -o "$CASE_DIR/.body" -D "$CASE_DIR/.head" -w '%{http_code}' --max-time 60 -X "$2"
		-H 'Expect:' --cert "$1/owner.crt" --key "$1/owner.key" -H 'Content-Type: application/yaml'
		--data-binary "@$4")
	BODY=$CASE_DIR/.body
	STATUS=$(curl "${args[@]}" "https://$CAS_ADDR$3" 2>/dev/null) || true
}

case_limits() {
	local a=$CASE_DIR/a t0 ms h
	cas_case_begin
	# With the defaults: 100 RSA-3072 keys are refused before any is made, saying what it costs.
	cas_start "$CASE_DIR/state0"
	owner_new "$a"
	rsa_session big 100 >big.yaml
	t0=$(date +%s%N)
	expect_http 400 LIMIT "$a" POST /v1/sessions big.yaml
	ms=$((($(date +%s%N) - t0) / 1000000))
	echo "100 RSA-3072 keys refused after $ms ms: $(jget "$BODY" 'd["error"]')"
	[ "$ms" -lt 3000 ] || fail "the refusal took $ms ms"
	jget "$BODY" 'd["error"]' | grep -q "cost 400 units.*at most 32.*RSA-3072 key counts 4" ||
		fail "the refusal does not say what it costs"
	expect_fail_with NOT_FOUND scone session read big
	cas_stop
	# Smaller budgets, to reach them quickly.
	cas_start "$CASE_DIR/state" -- --keygen-per-session 8 --keygen-per-minute 16
	a=$CASE_DIR/a2
	owner_new "$a"
	# Two sessions of two RSA-3072 keys (8 units each): the budget of 16 per minute.
	rsa_session r1 2 >r1.yaml
	expect_created r1.yaml
	h=$HASH
	rsa_session r2 2 >r2.yaml
	expect_created r2.yaml
	rsa_session r3 2 >r3.yaml
	http_head "$a" POST /v1/sessions r3.yaml
	[ "$STATUS" = 429 ] || { show_file "$BODY"; fail "third session: HTTP $STATUS, expected 429"; }
	assert_eq LIMIT "$(jget "$BODY" 'd["code"]')" "code"
	jget "$BODY" 'd["error"]' | grep -q "key-generation budget.*needs 8; retry in [0-9]* s" ||
		{ show_file "$BODY"; fail "the 429 does not say why"; }
	grep -qi '^Retry-After: [1-9][0-9]*' "$CASE_DIR/.head" || { cat "$CASE_DIR/.head"; fail "no Retry-After header"; }
	expect_fail_with NOT_FOUND scone session read r3
	# An update that keeps its keys (migrate) costs nothing: allowed with the budget used up.
	rsa_session r1 2 "$h" >r1u.yaml
	expect_updated r1u.yaml
	expect_http 200 anon GET /metrics
	assert_grep '^scone_cas_slow_calls 0$' "$BODY"
	cas_stop
}

# probe PORT RT SECONDS CONFIG_ID: latencies of /healthz and configuration fetches
# (four keep-alive connections and a new connection every tenth request) for
# SECONDS; prints the count, the median and the worst of each, in ms.
probe() {
	"$PYTHON" - "$@" <<'EOF'
import json, socket, ssl, sys, time
port, rt, seconds, cid = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.load_cert_chain(rt + "/owner.crt", rt + "/owner.key")
body = json.dumps({"config_id": cid, "evidence": {"type": "none"}}).encode()
reqs = {
    "healthz": b"GET /healthz HTTP/1.1\r\nHost: cas\r\n\r\n",
    "config": b"POST /v1/service/config HTTP/1.1\r\nHost: cas\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (len(body), body),
}

def connect():
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    # The client's own Nagle delay (its handshake flights) is not the server's latency.
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return ctx.wrap_socket(s)

def more(s):
    b = s.recv(65536)
    if not b:
        sys.exit("probe: the server closed a connection")
    return b

def exchange(s, raw):
    s.sendall(raw)
    data = b""
    while b"\r\n\r\n" not in data:
        data += more(s)
    head, rest = data.split(b"\r\n\r\n", 1)
    n = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0])
    while len(rest) < n:
        rest += more(s)
    status = int(head.split()[1])
    if status != 200:
        sys.exit("probe: HTTP %d: %r" % (status, rest[:200]))

conns = [connect() for _ in range(4)]
lat = {"healthz": [], "config": []}
end, i = time.time() + seconds, 0
while time.time() < end:
    kind = "healthz" if i % 2 == 0 else "config"
    fresh = i % 10 == 9
    t0 = time.perf_counter()
    s = connect() if fresh else conns[i % 4]
    exchange(s, reqs[kind])
    lat[kind].append((time.perf_counter() - t0) * 1000)
    if fresh:
        lat.setdefault(kind + "-new", []).append(lat[kind][-1])
    if fresh:
        s.close()
    i += 1
    time.sleep(0.02)
for kind, v in lat.items():
    v.sort()
    print("%s n=%d p50=%.1f top=%s second=%.1f max=%.1f" % (kind, len(v), v[len(v) // 2], ["%.1f" % x for x in v[-4:]],
                                                          v[-2] if len(v) > 1 else v[-1], v[-1]))
EOF
}

case_load() {
	local rt=$CASE_DIR/rt o i pids=() max_h max_c n
	cas_case_begin
	cas_start "$CASE_DIR/state"
	runtime_new "$rt"
	owner_new "$CASE_DIR/o0"
	basic() {
		cat <<EOF
name: plain
version: "0.3"
security:
  attestation:
    mode: none
services:
  - name: app
    command: /bin/app
    environment:
      PW: \$\$SCONE::pw\$\$
secrets:
  - {name: pw, kind: ascii, size: 20}
EOF
	}
	basic >plain.yaml
	expect_created plain.yaml
	# The same probe without key generation first: what this machine gives at all.
	probe "$CAS_PORT" "$rt" 3 plain/app >base.out || { cat base.out; fail "the probe failed"; }
	echo "without key generation:"
	cat base.out
	for i in 1 2 3 4; do
		owner_new "$CASE_DIR/o$i"
		rsa_session "load$i" 8 >"load$i.yaml"
	done
	# Four owners, 8 RSA-3072 keys each (32 units: the most one create may spend), all at once.
	for i in 1 2 3 4; do
		curl -sk -o "$CASE_DIR/load$i.out" -w '%{http_code}' --max-time 300 -H 'Expect:' \
			--cert "$CASE_DIR/o$i/owner.crt" --key "$CASE_DIR/o$i/owner.key" \
			-H 'Content-Type: application/yaml' --data-binary "@load$i.yaml" \
			"https://$CAS_ADDR/v1/sessions" >"$CASE_DIR/load$i.code" 2>/dev/null &
		pids+=($!)
	done
	sleep 0.5
	probe "$CAS_PORT" "$rt" 6 plain/app >probe.out || { cat probe.out; fail "the probe failed"; }
	echo "while four owners generate RSA keys:"
	cat probe.out
	expect_http 200 anon GET /metrics
	n=$(sed -n 's/^scone_cas_slow_calls \([0-9]*\)$/\1/p' "$BODY")
	echo "slow-lane calls still busy after the probe: $n"
	[ "${n:-0}" -ge 1 ] || fail "the key generation was over before the probe ended: no load was measured"
	for p in "${pids[@]}"; do wait "$p" || true; done
	for i in 1 2 3 4; do
		assert_eq 201 "$(cat "$CASE_DIR/load$i.code")" "create load$i ($(cat "$CASE_DIR/load$i.out"))"
	done
	# One request in over a hundred may meet the scheduler's worst moment on a busy
	# machine: the second-worst of each kind must be under 100 ms (a blocked event loop
	# delays dozens of them by the seconds an RSA key takes).
	max_h=$(sed -n 's/^healthz .*second=\([0-9.]*\) max=.*$/\1/p' probe.out)
	max_c=$(sed -n 's/^config .*second=\([0-9.]*\) max=.*$/\1/p' probe.out)
	if ! awk -v h="$max_h" -v c="$max_c" 'BEGIN { exit !(h < 100 && c < 100) }'; then
		# Other jobs on this machine, not key generation, can be what is slow: then it cannot tell.
		awk -v b="$(sed -n 's/^config .*second=\([0-9.]*\) max=.*$/\1/p' base.out)" 'BEGIN { exit !(b >= 100) }' &&
			t_skip_case "this machine answers in over 100 ms without key generation too (load $(cut -d' ' -f1 /proc/loadavg))"
		fail "while keys were generated: /healthz second-worst $max_h ms, configuration second-worst $max_c ms (limit 100)"
	fi
	cas_stop
}

run_case "cas keygen: 100 RSA keys refused at once (400), budget per client (429 + Retry-After), kept keys free" case_limits
run_case "cas keygen: /healthz and configurations within 100 ms while four owners generate RSA keys" case_load
t_done
