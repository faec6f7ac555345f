# shellcheck shell=bash
# cas_lib.sh - helpers for the CAS integration tests (sourced after lib.sh).
#
# A CAS runs on 127.0.0.1 at a free port with its state in a temporary
# directory; its stderr (JSON log lines) is appended to STATE_DIR.log. A CAS
# started inside a case is stopped by PID when the case's subshell exits
# (cas_case_begin installs that trap), whatever the case's outcome.
#
# Identities are directories: an owner's holds config.json (SCONE_CLI_CONFIG)
# and the owner.key/owner.crt that `scone cas keygen` writes beside it; a
# runtime's holds a fresh self-signed owner.crt/owner.key made with openssl;
# "anon" means no client certificate.

SCONE_CAS_BIN=${SCONE_CAS_BIN:-$(dirname "$SCONE_BIN")/scone-cas}
CAS_WORKERS=${CAS_WORKERS:-2}
CAS_START_TIMEOUT=${CAS_START_TIMEOUT:-20} # seconds
# Debian's python3 (scripts/install-deps.sh) first: a version-manager shim costs 0.3 s a call.
PYTHON=${PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}
unset SCONE_CAS_ADDR SCONE_CLI_CONFIG

CAS_PID=
CAS_WRAP=() # a command that execs scone-cas, e.g. (setpriv --reuid=...): the PID stays scone-cas's
CAS_PORT=
CAS_ADDR=
CAS_DIR=
CAS_LOG=
CASE_PIDS=()
CASE_CLEANUP_HOOK=
STATUS=
HTTP_MS=
BODY=

# Check the binaries and the tools the CAS tests use; fail the script early.
cas_require() {
	local t
	if [ ! -x "$SCONE_CAS_BIN" ]; then
		echo "not ok - setup: $SCONE_CAS_BIN not built (run make)"
		exit 1
	fi
	for t in curl openssl "$PYTHON"; do
		if ! command -v "$t" >/dev/null 2>&1; then
			echo "not ok - setup: $t not installed (scripts/install-deps.sh)"
			exit 1
		fi
	done
}

# ---------------- processes ----------------

# Inside a case: stop every CAS this case started when its subshell exits,
# then run $CASE_CLEANUP_HOOK (e.g. unmount).
cas_case_begin() {
	trap cas_case_cleanup EXIT
}

# Runs as the EXIT trap under set -e: errexit off, and the case's own exit
# status (1 failed, 77 skipped) kept.
cas_case_cleanup() {
	local rc=$? pid
	set +e
	for pid in ${CASE_PIDS[@]+"${CASE_PIDS[@]}"}; do
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	CASE_PIDS=()
	[ -z "$CASE_CLEANUP_HOOK" ] || $CASE_CLEANUP_HOOK
	exit "$rc"
}

case_track_pid() { CASE_PIDS+=("$1"); }
case_untrack_pid() {
	local p keep=()
	for p in ${CASE_PIDS[@]+"${CASE_PIDS[@]}"}; do [ "$p" = "$1" ] || keep+=("$p"); done
	CASE_PIDS=(${keep[@]+"${keep[@]}"})
}

# alive PID: running (a zombie that was not waited for yet counts as dead).
alive() {
	local st
	[ -r "/proc/$1/stat" ] || return 1
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# A free TCP port on 127.0.0.1 (closed again; the small race is accepted,
# cas_start retries with another port if the bind fails).
free_port() {
	"$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# health_status: the HTTP status of GET /healthz on the current CAS ("000": no answer).
health_status() {
	curl -sk -o /dev/null -w '%{http_code}' --max-time 3 "https://$CAS_ADDR/healthz" 2>/dev/null || true
}

# shellcheck disable=SC2034 # CAS_* are read by the scripts that source this
# cas_start STATE_DIR [PORT] [-- ARGS...]: start scone-cas and wait until
# /healthz answers 200. Sets CAS_PID CAS_PORT CAS_ADDR CAS_DIR CAS_LOG.
# Without PORT a free one is picked (and another one tried if it was taken).
cas_start() {
	local dir=$1 port='' fixed=0 try i code
	shift
	if [ $# -gt 0 ] && [ "$1" != -- ]; then
		port=$1 fixed=1
		shift
	fi
	[ $# -eq 0 ] || shift # --
	CAS_DIR=$dir CAS_LOG=$dir.log
	for try in 1 2 3; do
		[ "$fixed" -eq 1 ] || port=$(free_port)
		CAS_PORT=$port CAS_ADDR=127.0.0.1:$port
		echo "# scone-cas --state-dir $dir --listen $CAS_ADDR $*" >>"$CAS_LOG.cmd"
		${CAS_WRAP[@]+"${CAS_WRAP[@]}"} "$SCONE_CAS_BIN" --state-dir "$dir" --listen "$CAS_ADDR" \
			--workers "$CAS_WORKERS" "$@" \
			>>"$CAS_LOG" 2>&1 </dev/null &
		CAS_PID=$!
		case_track_pid "$CAS_PID"
		for ((i = 0; i < CAS_START_TIMEOUT * 10; i++)); do
			if ! alive "$CAS_PID"; then
				code=0
				wait "$CAS_PID" || code=$?
				case_untrack_pid "$CAS_PID"
				if [ "$fixed" -eq 0 ] && [ "$try" -lt 3 ] && tail -3 "$CAS_LOG" | grep -qi 'in use'; then
					continue 2
				fi
				echo "--- $CAS_LOG:"
				tail -20 "$CAS_LOG"
				fail "scone-cas exited with status $code during start-up ($dir on $CAS_ADDR)"
			fi
			code=$(health_status)
			[ "$code" != 200 ] || return 0
			sleep 0.1
		done
		echo "--- $CAS_LOG:"
		tail -20 "$CAS_LOG"
		fail "scone-cas did not answer /healthz with 200 within ${CAS_START_TIMEOUT}s (last: $code)"
	done
}

# cas_stop: SIGTERM; the CAS must exit with status 0 within 10 s.
cas_stop() {
	local i rc=0
	kill -TERM "$CAS_PID" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		alive "$CAS_PID" || break
		sleep 0.1
	done
	if alive "$CAS_PID"; then
		kill -9 "$CAS_PID" 2>/dev/null
		wait "$CAS_PID" 2>/dev/null || true
		case_untrack_pid "$CAS_PID"
		fail "scone-cas (pid $CAS_PID) did not stop within 10 s of SIGTERM"
	fi
	wait "$CAS_PID" 2>/dev/null || rc=$?
	case_untrack_pid "$CAS_PID"
	# 127: not our child (started by another case); its status is not known here.
	[ "$rc" -eq 0 ] || [ "$rc" -eq 127 ] || fail "scone-cas exited with status $rc after SIGTERM"
}

# cas_kill9: SIGKILL, no grace.
cas_kill9() {
	kill -9 "$CAS_PID" 2>/dev/null || true
	wait "$CAS_PID" 2>/dev/null || true
	case_untrack_pid "$CAS_PID"
}

# cas_refuses STATE_DIR: scone-cas must exit non-zero by itself within 20 s
# without serving; its output is left in $OUT/$ERR (run_cmd style).
cas_refuses() {
	local port
	port=$(free_port)
	T_CMD_TIMEOUT=20 run_cmd "$SCONE_CAS_BIN" --state-dir "$1" --listen "127.0.0.1:$port" --workers 1
	if [ "$RC" -eq 0 ]; then
		show_output
		fail "scone-cas started on $1 and exited 0; expected a refusal"
	fi
}

# cert_fp FILE.crt: SHA-256 of the certificate (DER), lowercase hex.
cert_fp() {
	openssl x509 -in "$1" -outform DER | sha256sum | cut -d' ' -f1
}

# key_hash CERT: SHA-256 of the DER SubjectPublicKeyInfo (how CAS knows a client).
key_hash() {
	openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1
}

# assert_grep_i PATTERN FILE...: like assert_grep, ignoring case.
assert_grep_i() {
	local p=$1
	shift
	grep -aEiq -- "$p" "$@" || fail "no match for /$p/ (any case) in $*"
}

# ---------------- identities ----------------

# use_id DIR: later `scone ...` commands run as that identity.
use_id() {
	export SCONE_CLI_CONFIG=$1/config.json
}

# owner_new DIR: keygen + trust of the current CAS; DIR/keyhash holds the key hash.
owner_new() {
	local d=$1 h
	mkdir -p "$d"
	use_id "$d"
	expect_ok scone cas keygen
	h=$(sed -n 's/^owner key hash: \([0-9a-f]\{64\}\)$/\1/p' "$OUT")
	[ -n "$h" ] || { show_output; fail "keygen printed no owner key hash"; }
	if [ ! -f "$d/owner.key" ] || [ ! -f "$d/owner.crt" ]; then fail "keygen wrote no owner.key/owner.crt in $d"; fi
	assert_eq "$(key_hash "$d/owner.crt")" "$h" "owner key hash printed by keygen (vs openssl)"
	echo "$h" >"$d/keyhash"
	expect_ok scone cas trust "$CAS_ADDR" --fingerprint "$(cert_fp "$CAS_DIR/cas.crt")"
}

# anon_new DIR: trusts the current CAS, has no owner identity.
anon_new() {
	mkdir -p "$1"
	use_id "$1"
	expect_ok scone cas trust "$CAS_ADDR" --fingerprint "$(cert_fp "$CAS_DIR/cas.crt")"
	assert_absent "$1/owner.key"
}

# runtime_new DIR: a fresh self-signed client certificate, as a starting runtime has.
runtime_new() {
	mkdir -p "$1"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=rt \
		-keyout "$1/owner.key" -out "$1/owner.crt" >/dev/null 2>&1 || fail "openssl req failed for $1"
}

# ---------------- HTTP ----------------

# shellcheck disable=SC2034 # HTTP_MS is read by the scripts that source this
# http WHO METHOD PATH [DATA_FILE [CONTENT_TYPE]]: one request with curl as
# WHO (identity directory or "anon"). Sets STATUS ("000": no HTTP answer)
# and HTTP_MS (the time curl took); the body is in $BODY.
http() {
	local who=$1 method=$2 path=$3 data=${4:-} ct=${5:-application/yaml}
	local args=(-sk -o "$CASE_DIR/.body" -w '%{http_code} %{time_total}' --max-time 30 -X "$method" -H 'Expect:')
	local w
	BODY=$CASE_DIR/.body
	: >"$BODY"
	[ "$who" = anon ] || args+=(--cert "$who/owner.crt" --key "$who/owner.key")
	[ -z "$data" ] || args+=(-H "Content-Type: $ct" --data-binary "@$data")
	w=$(curl "${args[@]}" "https://$CAS_ADDR$path" 2>/dev/null) || true
	STATUS=${w%% *}
	STATUS=${STATUS:-000}
	HTTP_MS=$(awk -v t="${w#* }" 'BEGIN { printf "%d", t * 1000 }')
}

# expect_http STATUS [CODE] WHO METHOD PATH [DATA_FILE [CT]]: the status, and for
# an error the JSON body's "code" when CODE is given (a word in capitals).
expect_http() {
	local want=$1 code=
	shift
	if [[ $1 =~ ^[A-Z_]+$ ]]; then
		code=$1
		shift
	fi
	http "$@"
	if [ "$STATUS" != "$want" ]; then
		echo "--- body:"
		show_file "$BODY"
		fail "expected HTTP $want, got $STATUS: $2 $3 as $(basename "$1")"
	fi
	if [ -n "$code" ]; then
		local got
		got=$(jget "$BODY" 'd["code"]' 2>/dev/null) || true
		[ "$got" = "$code" ] || { show_file "$BODY"; fail "expected error code $code, got '$got': $2 $3"; }
		jget "$BODY" 'd["error"]' >/dev/null || fail "error body without an \"error\" message: $2 $3"
	fi
}

# jget FILE EXPR: evaluate a Python expression over the JSON document d;
# strings print raw, everything else as JSON. Fails on invalid JSON.
jget() {
	"$PYTHON" - "$1" "$2" <<'EOF'
import json, sys
with open(sys.argv[1], "rb") as f:
    d = json.loads(f.read())
v = eval(sys.argv[2])
print(v if isinstance(v, str) else json.dumps(v, sort_keys=True))
EOF
}

# fetch_config RT CONFIG_ID [EVIDENCE_JSON]: POST /v1/service/config as runtime RT.
fetch_config() {
	local req=$CASE_DIR/.fetch.json ev=${3:-}
	[ -n "$ev" ] || ev='{"type": "none"}'
	printf '{"config_id": "%s", "evidence": %s}\n' "$2" "$ev" >"$req"
	http "$1" POST /v1/service/config "$req" application/json
}

# tag_update RT CONFIG_ID VOLUME PREVIOUS TAG TOKEN: POST /v1/volumes/tag as RT.
tag_update() {
	local req=$CASE_DIR/.tag.json
	printf '{"config_id": "%s", "volume": "%s", "previous_tag": "%s", "tag": "%s", "instance_token": "%s"}\n' \
		"$2" "$3" "$4" "$5" "$6" >"$req"
	http "$1" POST /v1/volumes/tag "$req" application/json
}

# session_hash_of FILE: HASH = what `scone session hash FILE` prints.
session_hash_of() {
	expect_ok scone session hash "$1"
	HASH=$(cat "$OUT")
	[[ $HASH =~ ^[0-9a-f]{64}$ ]] || { show_output; fail "session hash $1: not 64 hex digits"; }
}

# stored_hash NAME: HASH = the hash the CAS holds for NAME (read as the current identity).
stored_hash() {
	expect_ok scone session read "$1" --json
	HASH=$(jget "$OUT" 'd["hash"]') || { show_output; fail "read --json $1: not JSON"; }
	[[ $HASH =~ ^[0-9a-f]{64}$ ]] || { show_output; fail "read --json $1: hash '$HASH'"; }
}

# expect_created FILE: `scone session create FILE` prints a hash equal to
# `scone session hash FILE`; sets HASH.
expect_created() {
	local want
	session_hash_of "$1"
	want=$HASH
	expect_ok scone session create "$1"
	HASH=$(cat "$OUT")
	assert_eq "$want" "$HASH" "hash printed by session create $1"
}

# expect_updated FILE: update succeeds and prints the file's hash; sets HASH.
expect_updated() {
	local want
	session_hash_of "$1"
	want=$HASH
	expect_ok scone session update "$1"
	HASH=$(cat "$OUT")
	assert_eq "$want" "$HASH" "hash printed by session update $1"
}

# ---------------- the runtime ----------------

# expect_no_main PATTERN CMD...: exit 1, one "scone: error: cannot start" line matching, and main never ran.
expect_no_main() {
	local pattern=$1
	shift
	expect_exit 1 "$@"
	[ ! -s "$OUT" ] || { show_output; fail "main ran: $*"; }
	grep -q "scone: error: cannot start: .*$pattern" "$ERR" || { show_output; fail "no clear error /$pattern/: $*"; }
	[ "$(grep -c 'cannot start' "$ERR")" -eq 1 ] || { show_output; fail "more than one error line"; }
}

# ---------------- the LAS ----------------
#
# A script that runs programs in attestation mode las starts one scone-las
# for all its cases (las_script_start, before its first case), then puts
# $LAS_ATTEST under each service of its sessions (las_attestation lists the
# programs the services start).

SCONE_LAS_BIN=${SCONE_LAS_BIN:-$(dirname "$SCONE_BIN")/scone-las}
LAS_PID=
LAS_SOCK=
LAS_DIR=
LAS_PLATFORM=
LAS_ATTEST=

# las_start DIR [ARGS...]: a scone-las with its socket and state in DIR; sets
# LAS_PID LAS_SOCK LAS_DIR LAS_PLATFORM (not exported: see las_script_start).
las_start() {
	local dir=$1 i
	shift
	mkdir -p "$dir"
	LAS_DIR=$dir LAS_SOCK=$dir/las.sock
	"$SCONE_LAS_BIN" --listen "unix:$LAS_SOCK" --state-dir "$dir/state" --workers 2 "$@" >>"$dir.log" 2>&1 </dev/null &
	LAS_PID=$!
	for ((i = 0; i < 100; i++)); do
		[ -S "$LAS_SOCK" ] && grep -q listening "$dir.log" && break
		alive "$LAS_PID" || { cat "$dir.log"; return 1; }
		sleep 0.05
	done
	[ -S "$LAS_SOCK" ] || { cat "$dir.log"; return 1; }
	LAS_PLATFORM=$("$SCONE_LAS_BIN" --print-identity --state-dir "$dir/state")
}

# las_script_start: the script's LAS, stopped when the script exits; every
# runtime started later finds it through SCONE_LAS_ADDR.
las_script_start() {
	if [ ! -x "$SCONE_LAS_BIN" ]; then
		echo "not ok - setup: $SCONE_LAS_BIN not built (run make)"
		exit 1
	fi
	if ! las_start "$T_TMP/las"; then
		echo "not ok - setup: scone-las did not start"
		exit 1
	fi
	t_track_pid "$LAS_PID"
	export SCONE_LAS_ADDR="unix:$LAS_SOCK"
}

# las_attestation PROGRAM...: LAS_ATTEST = a service's attestation lines
# (indented for "  - name: ..." entries): the measurements `scone measure`
# gives for each PROGRAM (one not installed is left out: its case skips),
# and this LAS as the platform.
# "probe" stands for the las_client test tool, which asks the LAS itself
# (las_evidence) to look at what CAS hands out.
las_attestation() {
	local p m list=
	for p in "$@"; do
		if [ "$p" = probe ]; then
			m=$("$LAS_CLIENT" report "$LAS_SOCK" | sed -n 's/^REPORT //p')
			[ -n "$m" ] || { echo "not ok - setup: las_client report failed"; exit 1; }
			list="$list${list:+, }$m"
			continue
		fi
		[ -x "$p" ] || continue
		m=$("$SCONE_BIN" measure "$p") || { echo "not ok - setup: scone measure $p failed"; exit 1; }
		list="$list${list:+, }$m"
	done
	LAS_ATTEST="    mrenclaves: [$list]
    platforms: [$LAS_PLATFORM]"
}

LAS_CLIENT=${LAS_CLIENT:-$(dirname "$SCONE_BIN")/../tools/las_client}

# las_evidence RTDIR: EVIDENCE = the "evidence" JSON of a las report (made
# for the las_client tool) bound to the key of RTDIR (runtime_new).
las_evidence() {
	local rd
	rd=$(key_hash "$1/owner.crt")0000000000000000000000000000000000000000000000000000000000000000
	"$LAS_CLIENT" report "$LAS_SOCK" "$rd" "$1/evidence.bin" | grep -q '^REPORT ' || fail "no LAS report for $1"
	EVIDENCE="{\"type\": \"las\", \"data\": \"$(base64 -w0 "$1/evidence.bin")\"}"
}
