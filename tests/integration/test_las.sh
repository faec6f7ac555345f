#!/usr/bin/env bash
# test_las.sh - attestation with the Local Attestation Service: scone-las
# measures the calling process from the kernel's view and signs a report;
# CAS hands out a session's secrets in mode las only for a report of a
# listed LAS host with a listed measurement, bound to the connection's TLS
# key and fresh. Everything real: scone-las, scone-cas, the runtime, Debian's
# python3, sqlite3, redis-server and nginx, an attacker tool (las_client)
# that forges, replays, hands sockets around, execs and reuses pids.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
. tests/integration/cas_lib.sh
t_init
cas_require
PY=/usr/bin/python3
ZEROS=0000000000000000000000000000000000000000000000000000000000000000
las_script_start
SCRIPT_LAS_SOCK=$LAS_SOCK
SCRIPT_PLATFORM=$LAS_PLATFORM
PY_M=$("$SCONE_BIN" measure "$PY")
PROBE_M=$("$LAS_CLIENT" report "$LAS_SOCK" | sed -n 's/^REPORT //p')
[ -n "$PY_M" ] && [ -n "$PROBE_M" ] || { t_fail "setup: no measurement of python3 or of the probe"; t_done; exit 1; }

# session NAME MODE [PLATFORM]: services py (python3), probe (las_client) and
# otp/otpgen (one-time passwords, a base32 literal and a generated secret).
session() {
	local p=${3:-$SCRIPT_PLATFORM}
	cat <<YAML
name: $1
version: "0.3"
security:
  attestation:
    mode: $2
services:
  - name: py
    command: python3 -c "import os; print('MAIN RAN', len(os.environ['PW']))"
    environment:
      PW: \$\$SCONE::pw\$\$
    mrenclaves: [$PY_M]
    platforms: [$p]
  - name: probe
    mrenclaves: [$PROBE_M]
    platforms: [$p]
    environment:
      PW: \$\$SCONE::pw\$\$
  - name: otp
    command: python3 -c "print('MAIN RAN')"
    mrenclaves: [$PY_M]
    platforms: [$p]
    one_time_password_shared_secret: GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ
  - name: otpgen
    command: python3 -c "print('MAIN RAN')"
    mrenclaves: [$PY_M]
    platforms: [$p]
    one_time_password_shared_secret: \$\$SCONE::otp:base32nopad\$\$
secrets:
  - name: pw
    kind: ascii
    size: 24
  - name: otp
    kind: binary
    size: 20
YAML
}

start() { # [MODE] [CAS ARGS...]
	local mode=${1:-las}
	[ $# -eq 0 ] || shift
	cas_case_begin
	cas_start "$CASE_DIR/cas" -- "$@"
	owner_new "$CASE_DIR/owner"
	session s "$mode" >s.yaml
	expect_created s.yaml
}

# fetch_with RT EVIDENCE_JSON: POST /v1/service/config for s/probe as runtime RT.
fetch_with() {
	fetch_config "$1" s/probe "$2"
}

# A refusal: 403 ATTESTATION naming PATTERN.
expect_refused() { # PATTERN
	[ "$STATUS" = 403 ] || { show_file "$BODY"; fail "expected 403, got $STATUS"; }
	assert_grep '"code": *"ATTESTATION"' "$BODY"
	grep -qE -- "$1" "$BODY" || { show_file "$BODY"; fail "the refusal does not name /$1/"; }
}

case_identity() {
	local d=$CASE_DIR/las id1 id2
	cas_case_begin # stops the LAS processes this case starts, whatever happens
	las_start "$d" || fail "scone-las did not start"
	case_track_pid "$LAS_PID"
	assert_eq 666 "$(stat -c %a "$d/las.sock")" "socket mode"
	assert_eq 600 "$(stat -c %a "$d/state/las.key")" "host key mode"
	assert_eq 700 "$(stat -c %a "$d/state")" "state directory mode"
	id1=$LAS_PLATFORM
	assert_grep "platform id $id1" "$d.log"
	kill -TERM "$LAS_PID"
	wait "$LAS_PID" || fail "scone-las did not exit 0 on SIGTERM"
	assert_absent "$d/las.sock"
	las_start "$d" || fail "scone-las did not start again"
	case_track_pid "$LAS_PID"
	id2=$LAS_PLATFORM
	assert_eq "$id1" "$id2" "platform id after a restart"
	# The restarted LAS's reports verify as the same platform.
	"$LAS_CLIENT" report "$LAS_SOCK" - "$CASE_DIR/r.bin" >/dev/null
	"$LAS_CLIENT" verify "$CASE_DIR/r.bin" >"$CASE_DIR/claims.json"
	assert_eq "$id1" "$(jget "$CASE_DIR/claims.json" 'd["platform_id"]')" "platform id in a report"
	kill -TERM "$LAS_PID" && wait "$LAS_PID"
	# A key others may read, a TCP address, a second LAS on a used socket: refused.
	las_start "$d" && case_track_pid "$LAS_PID"
	expect_fail_with "another scone-las listens" "$SCONE_LAS_BIN" --listen "unix:$d/las.sock" --state-dir "$d/state"
	kill -TERM "$LAS_PID" && wait "$LAS_PID"
	chmod 644 "$d/state/las.key"
	expect_fail_with "readable by others" "$SCONE_LAS_BIN" --print-identity --state-dir "$d/state"
	expect_fail_with "no TCP listener" "$SCONE_LAS_BIN" --listen 127.0.0.1:9 --state-dir "$d/other"
	expect_ok "$SCONE_LAS_BIN" --help
	assert_grep "print-identity" "$OUT"
}

case_runs_in_las_mode() {
	start
	SCONE_VERSION=1 expect_ok scone run --config-id s/py -- "$PY"
	assert_grep "^MAIN RAN 24$" "$OUT"
	assert_grep "attestation las" "$ERR"
	assert_no_grep "refused" "$CAS_LOG"
}

# scone measure gives what the LAS reports for real runs: each program's
# service lists only that program's measurement, and each runs.
case_measure_equals_las() {
	local prog m svc yaml=$CASE_DIR/m.yaml
	cas_case_begin
	cas_start "$CASE_DIR/cas"
	owner_new "$CASE_DIR/owner"
	printf 'name: m\nversion: "0.3"\nsecurity: {attestation: {mode: las}}\nservices:\n' >"$yaml"
	for prog in /usr/bin/python3:'-c pass' /usr/bin/sqlite3:-version /usr/bin/redis-server:--version /usr/sbin/nginx:-v; do
		[ -x "${prog%%:*}" ] || t_skip_case "${prog%%:*} not installed (scripts/install-deps.sh)"
		m=$("$SCONE_BIN" measure "${prog%%:*}")
		[[ $m =~ ^[0-9a-f]{64}$ ]] || fail "scone measure ${prog%%:*}: '$m'"
		svc=$(basename "${prog%%:*}")
		printf '  - name: %s\n    command: %s %s\n    mrenclaves: [%s]\n    platforms: [%s]\n' "$svc" "$svc" \
			"${prog#*:}" "$m" "$SCRIPT_PLATFORM" >>"$yaml"
	done
	expect_created "$yaml"
	for prog in /usr/bin/python3 /usr/bin/sqlite3 /usr/bin/redis-server /usr/sbin/nginx; do
		expect_ok scone run --config-id "m/$(basename "$prog")" -- "$prog"
	done
	# python3 is not sqlite3: its report does not open sqlite3's service.
	expect_no_main "measurement mismatch: the program measures $PY_M" scone run --config-id m/sqlite3 -- "$PY"
}

case_one_byte_different() {
	start
	cp "$(readlink -f "$PY")" "$CASE_DIR/python3"
	"$PYTHON" -c 'import sys; f = open(sys.argv[1], "r+b"); f.seek(-1, 2); b = f.read(1); f.seek(-1, 2); f.write(bytes([b[0] ^ 1]))' \
		"$CASE_DIR/python3"
	cmp -s "$CASE_DIR/python3" "$PY" && fail "the copy does not differ"
	expect_no_main "measurement mismatch: the program measures [0-9a-f]*, service py expects $PY_M" \
		scone run --config-id s/py -- "$CASE_DIR/python3"
	assert_grep "configuration s/py refused to .*measurement mismatch" "$CAS_LOG"
}

case_extra_preload() {
	local lib=/usr/lib/x86_64-linux-gnu/libsqlite3.so.0
	[ -e "$lib" ] || t_skip_case "$lib missing"
	start
	LD_PRELOAD=$lib expect_no_main "measurement mismatch" scone run --config-id s/py -- "$PY"
}

case_forged_reports() {
	start
	runtime_new "$CASE_DIR/rt"
	las_evidence "$CASE_DIR/rt"
	fetch_with "$CASE_DIR/rt" "$EVIDENCE"
	[ "$STATUS" = 200 ] || { show_file "$BODY"; fail "the genuine report was refused ($STATUS)"; }
	"$LAS_CLIENT" forge-sig "$CASE_DIR/rt/evidence.bin" "$CASE_DIR/sig.bin"
	fetch_with "$CASE_DIR/rt" "{\"type\": \"las\", \"data\": \"$(base64 -w0 "$CASE_DIR/sig.bin")\"}"
	expect_refused "forged or altered"
	"$LAS_CLIENT" forge-key "$CASE_DIR/rt/evidence.bin" "$CASE_DIR/key.bin"
	fetch_with "$CASE_DIR/rt" "{\"type\": \"las\", \"data\": \"$(base64 -w0 "$CASE_DIR/key.bin")\"}"
	expect_refused "unknown platform [0-9a-f]{64}"
	fetch_with "$CASE_DIR/rt" '{"type": "none"}'
	expect_refused "requires las evidence, the runtime presented none"
	fetch_with "$CASE_DIR/rt" '{"type": "sgx", "data": "AAAA"}'
	expect_refused "requires las evidence, the runtime presented sgx"
	assert_grep "configuration s/probe refused to .*forged or altered" "$CAS_LOG"
}

case_replay() {
	start 'las' --evidence-max-age 2
	runtime_new "$CASE_DIR/rt1"
	runtime_new "$CASE_DIR/rt2"
	las_evidence "$CASE_DIR/rt1"
	fetch_with "$CASE_DIR/rt1" "$EVIDENCE"
	[ "$STATUS" = 200 ] || { show_file "$BODY"; fail "the genuine report was refused ($STATUS)"; }
	# The same report over a new connection with another key (copied evidence).
	fetch_with "$CASE_DIR/rt2" "$EVIDENCE"
	expect_refused "wrong report data: the evidence binds another TLS key"
	# A report made for rt2's key, presented by rt1 (evidence for another key).
	cp -r "$CASE_DIR/rt2" "$CASE_DIR/rt2b"
	las_evidence "$CASE_DIR/rt2b"
	fetch_with "$CASE_DIR/rt1" "$EVIDENCE"
	expect_refused "wrong report data"
	# The first report again over a new connection of its own key, after its window.
	las_evidence "$CASE_DIR/rt1"
	sleep 3.2
	fetch_with "$CASE_DIR/rt1" "$EVIDENCE"
	expect_refused "stale LAS report: made [0-9]+ s ago, accepted for 2 s"
}

case_unlisted_host() {
	start
	las_start "$CASE_DIR/las2" || fail "the second LAS did not start"
	case_track_pid "$LAS_PID"
	[ "$LAS_PLATFORM" != "$SCRIPT_PLATFORM" ] || fail "two LAS hosts with one identity"
	SCONE_LAS_ADDR="unix:$LAS_SOCK" expect_no_main "unknown platform $LAS_PLATFORM" \
		scone run --config-id s/py -- "$PY"
}

case_las_restart() {
	local d=$CASE_DIR/las3
	las_start "$d" || fail "scone-las did not start"
	case_track_pid "$LAS_PID"
	cas_case_begin
	cas_start "$CASE_DIR/cas"
	owner_new "$CASE_DIR/owner"
	session s las "$LAS_PLATFORM" >s.yaml
	expect_created s.yaml
	SCONE_LAS_ADDR="unix:$LAS_SOCK" expect_ok scone run --config-id s/py -- "$PY"
	kill -TERM "$LAS_PID" && wait "$LAS_PID"
	SCONE_LAS_ADDR="unix:$LAS_SOCK" expect_no_main "no socket" scone run --config-id s/py -- "$PY"
	las_start "$d" || fail "scone-las did not start again"
	case_track_pid "$LAS_PID"
	SCONE_LAS_ADDR="unix:$LAS_SOCK" expect_ok scone run --config-id s/py -- "$PY"
	assert_grep "^MAIN RAN 24$" "$OUT"
}

# A killed caller's pid taken by another process: the LAS must not measure
# the newcomer for the old caller's request (both ways of identifying callers).
case_pid_reuse() {
	local mode
	for mode in pidfd peercred; do
		T_CMD_TIMEOUT=30 run_cmd unshare --pid --fork --mount-proc bash -c '
			"$0" --listen "unix:$1/ns.sock" --state-dir "$1/nsstate" --workers 1 --peer-check "$2" 2>"$1/ns.log" &
			L=$!
			for i in $(seq 100); do [ -S "$1/ns.sock" ] && break; sleep 0.05; done
			"$3" pidreuse "$1/ns.sock" "$L"
			kill $L; wait $L' "$SCONE_LAS_BIN" "$CASE_DIR" "$mode" "$LAS_CLIENT"
		[ "$RC" -eq 0 ] || { show_output; t_skip_case "unshare --pid failed (no pid namespaces here?)"; }
		grep -q '^REUSED ' "$OUT" || { show_output; t_skip_case "the pid was not reused in the namespace"; }
		grep -q '^REFUSED ATTESTATION: .*\(has exited\|does not hold the connecting socket\)' "$OUT" ||
			{ show_output; cat "$CASE_DIR/ns.log"; fail "$mode: the reused pid got a report"; }
		rm -f "$CASE_DIR/ns.sock"
	done
}

case_handoff_and_exec() {
	cas_case_begin
	las_start "$CASE_DIR/las4" || fail "scone-las did not start"
	case_track_pid "$LAS_PID"
	expect_ok "$LAS_CLIENT" handoff "$LAS_SOCK"
	assert_grep "^REFUSED PERMISSION: the request was written by process [0-9]+, not by the process that connected" "$OUT"
	# Ask, then exec another program before the LAS looks (the LAS is stopped meanwhile).
	kill -STOP "$LAS_PID"
	"$LAS_CLIENT" exec "$LAS_SOCK" sleep 2 >"$CASE_DIR/exec.out" 2>&1 &
	local client=$!
	sleep 0.5
	kill -CONT "$LAS_PID"
	wait "$client"
	for _ in $(seq 50); do grep -q . "$CASE_DIR/exec.out" && break; sleep 0.1; done # the reader's answer
	assert_grep "^REFUSED ATTESTATION: the program running in the calling process is not the one that asked" \
		"$CASE_DIR/exec.out"
}

case_traced() {
	command -v strace >/dev/null || t_skip_case "strace not installed (scripts/install-deps.sh)"
	start
	expect_no_main "the process is being traced .TracerPid [0-9]*)" \
		strace -f -o /dev/null "$SCONE_BIN" run --config-id s/py -- "$PY"
	assert_grep "refused to .*traced" "$CAS_LOG"
}

case_modes() {
	start
	# las mode without a LAS (the default socket is absent here)
	SCONE_LAS_ADDR= expect_no_main "requires las evidence, the runtime presented none .the runtime says: no LAS at" \
		scone run --config-id s/py -- "$PY"
	SCONE_LAS_ADDR=unix:$CASE_DIR/nothing.sock expect_no_main "SCONE_LAS_ADDR: no socket" \
		scone run --config-id s/py -- "$PY"
	# mode none works only when the session says so, with a warning in CAS's log at each start
	session n none >n.yaml
	expect_created n.yaml
	SCONE_LAS_ADDR= expect_ok scone run --config-id n/py -- "$PY"
	assert_grep "^MAIN RAN 24$" "$OUT"
	assert_grep "service n/py started without attestation" "$CAS_LOG"
	# no mode: hardware; on a host without a TEE the runtime presents las evidence: refused, with what to do
	session h none | sed '/^security:/,/mode:/d' >h.yaml
	expect_created h.yaml
	expect_no_main "requires hardware (sgx, tdx or snp) evidence, the runtime presented las.*use mode las" \
		scone run --config-id h/py -- "$PY"
	# a session in las mode must say what it admits, with line and column
	printf 'name: v\nversion: "0.3"\nsecurity: {attestation: {mode: las}}\nservices:\n  - name: a\n    command: x\n' >v.yaml
	expect_fail_with "v.yaml:5:5: services\[0\]: the service has no attestation" scone session check v.yaml
	printf 'name: v\nversion: "0.3"\nsecurity: {attestation: {mode: las}}\nservices:\n  - name: a\n    mrenclaves: [%s]\n' \
		"$PY_M" >v.yaml
	expect_fail_with "v.yaml:6:17: .*in las mode a variant needs platforms" scone session check v.yaml
}

# totp SECRET_BASE32 [STEP_OFFSET]: the current RFC 6238 code.
totp() {
	"$PYTHON" -c 'import base64, hashlib, hmac, struct, sys, time
s = sys.argv[1].upper(); k = base64.b32decode(s + "=" * (-len(s) % 8))
h = hmac.new(k, struct.pack(">Q", int(time.time()) // 30 + int(sys.argv[2])), hashlib.sha1).digest()
o = h[19] & 15
print("%06d" % ((struct.unpack(">I", h[o:o + 4])[0] & 0x7fffffff) % 1000000))' "$1" "${2:-0}"
}

otp_cases() { # SESSION SERVICE SECRET
	local code wrong
	code=$(totp "$3")
	expect_no_main "one-time password missing" scone run --config-id "$1/$2" -- "$PY"
	wrong=$(printf '%06d' $(((10#$code + 500000) % 1000000)))
	expect_no_main "one-time password is wrong" scone run --config-id "$1/$2@$wrong" -- "$PY"
	assert_no_grep "$wrong" "$ERR" # a code is never printed (an unused one stays valid for its window)
	expect_no_main "config_id: the one-time password after '@' must be 6 digits" scone run --config-id "$1/$2@12345" -- "$PY"
	expect_ok scone run --config-id "$1/$2@$code" -- "$PY"
	assert_grep "^MAIN RAN$" "$OUT"
	expect_no_main "one-time password already used" scone run --config-id "$1/$2@$code" -- "$PY"
	if grep -q "$code" "$CAS_LOG"; then fail "a one-time password is in CAS's log"; fi
}

case_otp() {
	local uri secret
	start
	otp_cases s otp GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ
	# The generated secret: the owner provisions an authenticator from scone session otp.
	expect_ok scone session otp s --service otpgen --no-qr
	uri=$(head -1 "$OUT")
	[[ $uri =~ ^otpauth://totp/scone:s%2Fotpgen\?secret=([A-Z2-7]{32})\&issuer=scone\&algorithm=SHA1\&digits=6\&period=30$ ]] ||
		fail "not an otpauth URI: $uri"
	secret=${BASH_REMATCH[1]}
	otp_cases s otpgen "$secret"
	expect_ok scone session otp s --service otp --no-qr
	assert_grep "secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" "$OUT"
	expect_exit 1 scone session otp s --service py --no-qr
	assert_grep "has no one_time_password_shared_secret" "$ERR"
	# Another owner may not read the secret.
	owner_new "$CASE_DIR/other"
	expect_exit 1 scone session otp s --service otp --no-qr
	assert_grep "access_policy.read" "$ERR"
	# A second factor in mode none too.
	use_id "$CASE_DIR/owner"
	session n none >n.yaml
	expect_created n.yaml
	otp_cases n otp GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ
	# With a service access token too: both factors, the token's proofs name the service without @CODE.
	cat >t.yaml <<'YAML'
name: t
version: "0.3"
security: {attestation: {mode: none}, service_access_token: tok-3f9a1c}
services:
  - name: app
    command: python3 -c "print('MAIN RAN')"
    one_time_password_shared_secret: GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ
YAML
	expect_created t.yaml
	SCONE_SERVICE_ACCESS_TOKEN=wrong expect_no_main "service access token" \
		scone run --config-id "t/app@$(totp GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ)" -- "$PY"
	SCONE_SERVICE_ACCESS_TOKEN=tok-3f9a1c otp_cases t app GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ
	# A secret imported from another session, rendered :base32nopad.
	cat >exp.yaml <<'YAML'
name: exp
version: "0.3"
security: {attestation: {mode: none}}
secrets:
  - {name: shared, kind: binary, size: 20, export: [imp, imp2]}
YAML
	cat >imp.yaml <<YAML
name: imp
version: "0.3"
security: {attestation: {mode: none}}
services:
  - name: app
    command: python3 -c "print('MAIN RAN')"
    one_time_password_shared_secret: \$\$SCONE::shared:base32nopad\$\$
secrets:
  - {name: shared, import: {session: exp, secret: shared}}
YAML
	expect_created exp.yaml
	expect_created imp.yaml
	expect_ok scone session otp imp --service app --no-qr
	secret=$(sed -n 's/.*secret=\([A-Z2-7]*\)&.*/\1/p' "$OUT")
	[ ${#secret} -eq 32 ] || { show_output; fail "no secret in the imported OTP's URI"; }
	otp_cases imp app "$secret"
	# Another owner who takes a name the export lists gets neither the secret nor its URI.
	use_id "$CASE_DIR/other"
	sed 's/^name: imp$/name: imp2/' imp.yaml >imp2.yaml
	expect_created imp2.yaml
	expect_exit 1 scone session otp imp2 --service app --no-qr
	assert_grep "does not export secret shared to session imp2" "$ERR"
	assert_no_grep "$secret" "$OUT"
}

run_case "las: the host key (0600) gives the same platform id after a restart; a readable key, TCP, a taken socket refused" case_identity
run_case "las: python3 gets its secrets in mode las" case_runs_in_las_mode
run_case "las: scone measure equals what the LAS reports for python3, sqlite3, redis-server and nginx" case_measure_equals_las
run_case "las: a binary one byte different gets nothing (both measurements named)" case_one_byte_different
run_case "las: the right binary with an extra LD_PRELOAD library gets nothing" case_extra_preload
run_case "las: a forged report (altered, or signed by a key of one's own) gets nothing" case_forged_reports
run_case "las: a report replayed over a new connection, for another key, or too late gets nothing" case_replay
run_case "las: an unlisted LAS host gets nothing" case_unlisted_host
run_case "las: a LAS restart keeps its identity, and its reports are accepted again" case_las_restart
run_case "las: a killed-and-reused pid cannot take over another process's report (pidfd and peercred)" case_pid_reuse
run_case "las: a request written by another process, or by a program that exec'd away, is refused" case_handoff_and_exec
run_case "las: a traced process gets nothing (the program never reaches main)" case_traced
run_case "las: mode none only where the session says so; hardware refused clearly; las sessions validated" case_modes
run_case "las: one-time passwords: right code once, reused, wrong, missing; scone session otp; in mode none; an imported secret" case_otp
t_done
