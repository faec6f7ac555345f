#!/usr/bin/env bash
# test_cas.sh - scone-cas and the `scone cas|session` CLI end to end:
# first start and restart (identity, master key, store, JSON logs, health,
# metrics), owner keys and certificate pinning, offline check/hash,
# create/read/update/delete/list, the access-control matrix (curl and CLI),
# concurrent updates of one predecessor, the service configuration a
# runtime fetches (secrets, files, x509, volumes), volume tags, secret
# export/import, and finally that no secret value reached the store's
# files or the log.
#
# Cases from "shared" on use one CAS (started by the setup case) with two
# owners A and B; their secret values are collected in $SHARED/needles for
# the leak check at the end.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
. tests/integration/cas_lib.sh
t_init
cas_require

SHARED=$T_TMP/shared
A=$SHARED/A
B=$SHARED/B
ANON=$SHARED/anon
NEEDLES=$SHARED/needles
EXPLICIT_VALUE=EXPLICIT-secret-text-4c1d9e7a

# ---------------- session documents ----------------

# basic_session NAME [ENV_VALUE [PREDECESSOR]]: a small valid session (attestation mode none).
basic_session() {
	echo "name: $1"
	echo 'version: "0.3"'
	[ -z "${3:-}" ] || echo "predecessor: $3"
	cat <<EOF
security:
  attestation:
    mode: none
services:
  - name: web
    command: /bin/web --port 8080
    environment:
      GREETING: ${2:-hello}
EOF
}

# remember KIND VALUE: a secret value that must never appear in the store or the log.
remember() {
	[ -n "$2" ] || fail "remember: empty $1 value"
	printf '%s:%s\n' "$1" "$2" >>"$NEEDLES"
}

# use_shared: point CAS_* at the shared CAS.
use_shared() {
	[ -f "$SHARED/ready" ] || fail "the shared CAS was not set up"
	read -r CAS_PID CAS_PORT <"$SHARED/cas.pid"
	CAS_ADDR=127.0.0.1:$CAS_PORT CAS_DIR=$SHARED/state CAS_LOG=$SHARED/state.log
	alive "$CAS_PID" || { tail -20 "$CAS_LOG"; fail "the shared CAS (pid $CAS_PID) is not running"; }
}

# check_json_log FILE: every line is one JSON object; prints the number of lines.
check_json_log() {
	"$PYTHON" - "$1" <<'EOF' || fail "$1: not JSON lines"
import json, sys
n = 0
with open(sys.argv[1], encoding="utf-8") as f:
    for i, line in enumerate(f, 1):
        if not line.strip():
            continue
        try:
            o = json.loads(line)
        except ValueError as e:
            sys.exit("line %d is not JSON (%s): %r" % (i, e, line[:200]))
        if not isinstance(o, dict):
            sys.exit("line %d is not a JSON object: %r" % (i, line[:200]))
        n += 1
if n == 0:
    sys.exit("no log lines")
print(n)
EOF
}

# check_prometheus FILE: Prometheus text format; every scone_cas_ metric has a TYPE.
check_prometheus() {
	"$PYTHON" - "$1" <<'EOF' || fail "/metrics is not in Prometheus text format"
import re, sys
types, samples = {}, []
name_re = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
for i, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    line = line.rstrip("\n")
    if not line:
        continue
    if line.startswith("# TYPE "):
        m = re.fullmatch(r"# TYPE (%s) (counter|gauge|histogram|summary|untyped)" % name_re, line)
        if not m:
            sys.exit("line %d: bad TYPE line %r" % (i, line))
        types[m.group(1)] = m.group(2)
        continue
    if line.startswith("# HELP "):
        if not re.fullmatch(r"# HELP %s .*" % name_re, line):
            sys.exit("line %d: bad HELP line %r" % (i, line))
        continue
    if line.startswith("#"):
        continue
    m = re.fullmatch(r'(%s)(\{(%s="(?:[^"\\]|\\.)*",?)*\})? (\S+)( -?\d+)?' % (name_re, name_re), line)
    if not m:
        sys.exit("line %d: not a sample: %r" % (i, line))
    v = m.group(4)
    if v not in ("+Inf", "-Inf", "NaN"):
        float(v)
    samples.append(m.group(1))
ours = [s for s in samples if s.startswith("scone_cas_")]
if not ours:
    sys.exit("no scone_cas_ samples")
for s in ours:
    base = re.sub(r"_(bucket|sum|count)$", "", s)
    if s not in types and base not in types:
        sys.exit("sample %s has no TYPE line" % s)
EOF
}

# metric NAME: the value of an unlabelled sample in the last /metrics body.
metric_value() {
	sed -n "s/^$1 \([0-9.e+]*\)\$/\1/p" "$BODY" | head -1
}

# ---------------- first start, restart ----------------

case_first_start() {
	local fp mk n served f
	cas_case_begin
	cas_start "$CASE_DIR/state"
	for f in cas.key cas.crt master.key cas.db; do
		[ -f "state/$f" ] || fail "state/$f was not created at first start"
	done
	assert_eq 600 "$(stat -c %a state/cas.key)" "mode of cas.key"
	assert_eq 600 "$(stat -c %a state/master.key)" "mode of master.key"
	openssl x509 -in state/cas.crt -noout -text >x509.txt || fail "cas.crt is not a certificate"
	assert_grep 'prime256v1|P-256' x509.txt
	fp=$(cert_fp state/cas.crt)
	assert_grep "$fp" "$CAS_LOG"
	n=$(check_json_log "$CAS_LOG")
	echo "first start: $n log lines"
	# The served certificate is cas.crt.
	served=$(openssl s_client -connect "$CAS_ADDR" </dev/null 2>/dev/null | openssl x509 -outform DER | sha256sum | cut -d' ' -f1)
	assert_eq "$fp" "$served" "fingerprint of the certificate CAS serves"
	expect_http 200 anon GET /healthz
	assert_eq ok "$(jget "$BODY" 'd["status"]')" "healthz status"
	expect_http 200 anon GET /metrics
	check_prometheus "$BODY"
	assert_eq 0 "$(metric_value scone_cas_sessions)" "scone_cas_sessions on an empty store"
	assert_eq 0 "$(metric_value scone_cas_sessions_created_total)" "scone_cas_sessions_created_total"
	assert_grep '^scone_cas_[a-z_]*request[a-z_]*(\{[^}]*\})? [0-9]' "$BODY"
	expect_http 404 NOT_FOUND anon GET /no/such/endpoint
	expect_http 405 METHOD anon DELETE /healthz
	mk=$(sha256sum <state/master.key)
	cas_stop
	check_json_log "$CAS_LOG" >/dev/null
	# Restart: the same identity and master key, the fingerprint logged again.
	cas_start "$CASE_DIR/state" "$CAS_PORT"
	assert_eq "$fp" "$(cert_fp state/cas.crt)" "fingerprint after restart"
	assert_eq "$mk" "$(sha256sum <state/master.key)" "master.key after restart"
	[ "$(grep -c "$fp" "$CAS_LOG")" -ge 2 ] || fail "the restart did not log the fingerprint"
	served=$(openssl s_client -connect "$CAS_ADDR" </dev/null 2>/dev/null | openssl x509 -outform DER | sha256sum | cut -d' ' -f1)
	assert_eq "$fp" "$served" "served certificate after restart"
	cas_stop
	check_json_log "$CAS_LOG" >/dev/null
}

# ---------------- keys and pinning ----------------

case_help() {
	local c
	use_id "$CASE_DIR/nowhere"
	expect_ok "$SCONE_CAS_BIN" --help
	assert_grep_i 'usage' "$OUT"
	expect_ok scone cas --help
	expect_ok scone session --help
	for c in keygen trust id; do
		expect_ok scone cas "$c" --help
		assert_grep "scone cas $c" "$OUT"
		assert_empty "$ERR" "stderr of cas $c --help"
	done
	for c in create update read delete list check hash; do
		expect_ok scone session "$c" --help
		assert_grep "scone session $c" "$OUT"
		assert_empty "$ERR" "stderr of session $c --help"
	done
	assert_absent "$CASE_DIR/nowhere"
	# Usage errors: exit 2, nothing on stdout.
	expect_usage_error scone session read
	expect_usage_error scone session create
	expect_usage_error scone cas trust 127.0.0.1:1
	expect_usage_error scone session frobnicate
	assert_absent "$CASE_DIR/nowhere"
}

case_trust_pinning() {
	local fp1 fp2 wrong port o=$CASE_DIR/o
	cas_case_begin
	cas_start "$CASE_DIR/cas1"
	port=$CAS_PORT
	fp1=$(cert_fp cas1/cas.crt)
	mkdir -p "$o"
	use_id "$o"
	expect_ok scone cas keygen
	assert_eq 600 "$(stat -c %a "$o/owner.key")" "mode of owner.key"
	assert_grep "^owner key hash: $(key_hash "$o/owner.crt")\$" "$OUT"
	expect_ok scone cas id
	assert_grep "^owner key hash: $(key_hash "$o/owner.crt")\$" "$OUT"
	cp "$o/owner.key" key.before
	run_cmd scone cas keygen
	[ "$RC" -ne 0 ] || fail "a second keygen without --force succeeded"
	assert_same_file key.before "$o/owner.key"
	# A wrong fingerprint: refused, naming the one presented; nothing stored.
	wrong=$(printf '%s' "$fp1" | sha256sum | cut -d' ' -f1)
	expect_fail_with "$fp1" scone cas trust "$CAS_ADDR" --fingerprint "$wrong"
	[ ! -e "$o/config.json" ] || assert_no_grep "$port|$wrong" "$o/config.json"
	expect_fail_with 'UNTRUSTED|not trusted' scone session list
	expect_exit_with 1 'fingerprint' scone cas trust "$CAS_ADDR" --fingerprint 1234
	# The right one.
	expect_ok scone cas trust "$CAS_ADDR" --fingerprint "$fp1"
	assert_grep "$fp1" "$o/config.json"
	expect_ok scone session list
	assert_empty "$OUT" "session list on a new CAS"
	basic_session pin/app >s.yaml
	expect_created s.yaml
	expect_ok scone session read pin/app
	assert_same_file s.yaml "$OUT"
	cas_stop
	# Another CAS, with its own identity, at the same address: refused.
	cas_start "$CASE_DIR/cas2" "$port"
	fp2=$(cert_fp cas2/cas.crt)
	assert_ne "$fp1" "$fp2" "fingerprints of two CAS instances"
	expect_fail_with 'UNTRUSTED' scone session read pin/app
	expect_fail_with 'UNTRUSTED' scone session list
	expect_fail_with 'UNTRUSTED' scone session create s.yaml
	expect_fail_with 'UNTRUSTED' scone session delete pin/app
	# Refused before a request was sent: the impostor saw none.
	assert_no_grep '/v1/sessions' "$CAS_LOG"
	# Changing a pin needs --replace.
	expect_fail_with "$fp1" scone cas trust "$CAS_ADDR" --fingerprint "$fp2"
	assert_grep "$fp1" "$o/config.json"
	expect_ok scone cas trust "$CAS_ADDR" --fingerprint "$fp2" --replace
	assert_grep "$fp2" "$o/config.json"
	assert_no_grep "$fp1" "$o/config.json"
	expect_fail_with 'NOT_FOUND' scone session read pin/app
	cas_stop
}

# ---------------- the shared CAS ----------------

setup_shared() {
	mkdir -p "$SHARED"
	: >"$NEEDLES"
	cas_start "$SHARED/state"
	echo "$CAS_PID $CAS_PORT" >"$SHARED/cas.pid"
	owner_new "$A"
	owner_new "$B"
	anon_new "$ANON"
	assert_ne "$(cat "$A/keyhash")" "$(cat "$B/keyhash")" "key hashes of two owners"
	touch "$SHARED/ready"
}

# ---------------- offline check and hash ----------------

write_check_files() {
	basic_session check/good >good.yaml
	cat >bad.yaml <<'EOF'
name: check/bad
version: "0.3"
security:
  attestation:
    mode: none
services:
  - name: web
    command: /bin/web
    colour: blue
secrets:
  - name: pw
    kind: ascii
    size: lots
EOF
	cat >hash1.yaml <<'EOF'
name: check/hash
version: "0.3"
security:
  attestation:
    mode: none
services:
  - name: web
    command: /bin/web --port 8080
    environment:
      A: one
      B: two
secrets:
  - name: pw
    kind: ascii
    size: 16
EOF
	# The same session: comments, key order, indentation and flow style differ.
	cat >hash2.yaml <<'EOF'
# The same session as hash1.yaml, written differently.
secrets:
    -   kind: ascii     # generated by CAS
        size: 16
        name: pw

services:
    - environment: {B: two, A: one}
      name: web
      command: /bin/web --port 8080
security: {attestation: {mode: none}}
version: "0.3"   # policy language
name: check/hash
EOF
	sed 's/A: one/A: three/' hash1.yaml >hash3.yaml
}

case_check_and_hash() {
	local h1
	write_check_files
	expect_ok scone session check good.yaml
	assert_grep '^good.yaml: ok' "$OUT"
	expect_fail_with 'bad.yaml' scone session check bad.yaml
	# Every error, FILE:LINE:COL: PATH: MESSAGE.
	assert_grep '^bad.yaml:9:5: services\[0\](\.colour)?: .*colour' "$ERR"
	assert_grep '^bad.yaml:13:11: secrets\[0\]\.size: ' "$ERR"
	[ "$(grep -c '^bad.yaml:[0-9]*:[0-9]*: ' "$ERR")" -eq 2 ] || { show_output; fail "expected exactly 2 errors"; }
	assert_empty "$OUT" "stdout of check of an invalid file"
	# Several files: the good one ok, status 1 for the bad one.
	expect_exit 1 scone session check good.yaml bad.yaml
	assert_grep '^good.yaml: ok' "$OUT"
	assert_grep '^bad.yaml:9:5: ' "$ERR"
	expect_fail_with 'missing.yaml' scone session check missing.yaml
	expect_exit 1 scone session hash bad.yaml
	assert_empty "$OUT" "stdout of session hash of an invalid file"
	# The hash ignores formatting, not content.
	session_hash_of hash1.yaml
	h1=$HASH
	session_hash_of hash2.yaml
	assert_eq "$h1" "$HASH" "hash of the reformatted session"
	session_hash_of hash3.yaml
	assert_ne "$h1" "$HASH" "hash of a changed session"
	expect_ok scone session check hash2.yaml
	assert_grep "$h1" "$OUT"
	# The hash session create prints is the same.
	use_shared
	use_id "$A"
	expect_ok scone session create hash2.yaml
	assert_eq "$h1" "$(cat "$OUT")" "hash printed by session create"
	stored_hash check/hash
	assert_eq "$h1" "$HASH" "hash stored by CAS"
	# CAS refuses the invalid document with every error, positions included.
	expect_http 400 POLICY "$A" POST /v1/sessions bad.yaml
	[ "$(jget "$BODY" 'len(d["errors"])')" -eq 2 ] || fail "expected 2 errors in the 400 body"
	assert_eq 9 "$(jget "$BODY" 'd["errors"][0]["line"]')" "line of the first error"
	assert_eq 5 "$(jget "$BODY" 'd["errors"][0]["column"]')" "column of the first error"
	assert_eq secrets[0].size "$(jget "$BODY" 'd["errors"][1]["path"]')" "path of the second error"
	expect_fail_with 'bad.yaml:13:11: secrets\[0\]\.size' scone session create bad.yaml
}

# ---------------- create, read, update, delete, list ----------------

# crud_session [ENV_VALUE [PREDECESSOR]]
crud_session() {
	echo "name: crud/app"
	echo 'version: "0.3"'
	[ -z "${2:-}" ] || echo "predecessor: $2"
	cat <<EOF
security:
  attestation:
    mode: none
services:
  - name: web
    command: /bin/web
    environment:
      PW: \$\$SCONE::pw\$\$
      EXPL: \$\$SCONE::explicit\$\$
      GREETING: ${1:-hello}
secrets:
  - name: pw
    kind: ascii
    size: 20
  - name: explicit
    kind: ascii
    value: $EXPLICIT_VALUE
  - name: tls
    kind: x509
    common_name: crud.example
EOF
}

case_crud() {
	local h1 h2 pw pw2 rt=$CASE_DIR/rt
	use_shared
	use_id "$A"
	runtime_new "$rt"
	crud_session one >v1.yaml
	expect_created v1.yaml
	h1=$HASH
	# The name is taken.
	expect_fail_with 'EXISTS' scone session create v1.yaml
	assert_grep '409' "$ERR"
	expect_http 409 EXISTS "$A" POST /v1/sessions v1.yaml
	# read prints the document as uploaded.
	expect_ok scone session read crud/app
	assert_same_file v1.yaml "$OUT"
	cp "$OUT" read.yaml
	expect_ok scone session read crud/app --json
	cp "$OUT" read.json
	assert_eq crud/app "$(jget read.json 'd["name"]')" "name"
	assert_eq "$h1" "$(jget read.json 'd["hash"]')" "hash"
	assert_eq "$(cat "$A/keyhash")" "$(jget read.json 'd["creator"]')" "creator"
	assert_eq "$(cat read.yaml)" "$(jget read.json 'd["session"]')" "session text in --json"
	assert_eq '["explicit", "pw", "tls"]' "$(jget read.json 'sorted(s["name"] for s in d["secrets"])')" "secret names"
	assert_eq ascii "$(jget read.json '[s for s in d["secrets"] if s["name"] == "pw"][0]["kind"]')" "kind of pw"
	assert_eq x509 "$(jget read.json '[s for s in d["secrets"] if s["name"] == "tls"][0]["kind"]')" "kind of tls"
	assert_eq false "$(jget read.json 'any(s["imported"] for s in d["secrets"])')" "imported flags"
	assert_eq '[]' "$(jget read.json 'sorted(k for s in d["secrets"] for k in s if k not in ("name", "kind", "imported", "public"))')" \
		"secret fields beyond name/kind/imported/public"
	assert_eq false "$(jget read.json '"public" in [s for s in d["secrets"] if s["name"] == "pw"][0]')" "public part of an ascii secret"
	jget read.json '[s for s in d["secrets"] if s["name"] == "tls"][0]["public"]' >tls-public.pem
	openssl x509 -in tls-public.pem -noout -subject >subject.txt || fail "public part of tls is not a certificate"
	assert_grep 'crud.example' subject.txt
	assert_no_grep 'PRIVATE KEY' read.json
	# The generated value, as a runtime sees it, is in neither read output.
	printf '{"config_id": "crud/app/web"}\n' >req.json
	expect_http 200 "$rt" POST /v1/service/config req.json application/json
	pw=$(jget "$BODY" 'd["environment"]["PW"]')
	assert_eq 20 "${#pw}" "length of the generated ascii secret (size 20)"
	assert_eq "$EXPLICIT_VALUE" "$(jget "$BODY" 'd["environment"]["EXPL"]')" "explicit value"
	remember ascii "$pw"
	remember ascii "$EXPLICIT_VALUE"
	if grep -qF -- "$pw" read.yaml read.json; then fail "the generated secret appears in session read output"; fi
	# update: the predecessor is required and must be current.
	crud_session two >nopred.yaml
	expect_fail_with 'predecessor' scone session update nopred.yaml
	crud_session two "$(printf 'stale' | sha256sum | cut -d' ' -f1)" >stale.yaml
	expect_fail_with 'CONFLICT' scone session update stale.yaml
	assert_grep '409' "$ERR"
	stored_hash crud/app
	assert_eq "$h1" "$HASH" "hash after refused updates"
	crud_session two "$h1" >v2.yaml
	expect_updated v2.yaml
	h2=$HASH
	assert_ne "$h1" "$h2" "hash after the update"
	expect_ok scone session read crud/app
	assert_same_file v2.yaml "$OUT"
	expect_ok scone session read crud/app --json
	assert_eq "$(cat "$A/keyhash")" "$(jget "$OUT" 'd["creator"]')" "creator after the update"
	# The ascii secret's definition did not change: its value is kept.
	expect_http 200 "$rt" POST /v1/service/config req.json application/json
	pw2=$(jget "$BODY" 'd["environment"]["PW"]')
	assert_eq "$pw" "$pw2" "ascii secret across an update"
	assert_eq two "$(jget "$BODY" 'd["environment"]["GREETING"]')" "environment after the update"
	# list: own sessions only.
	expect_ok scone session list
	assert_grep "^crud/app $h2\$" "$OUT"
	use_id "$B"
	basic_session crud/bee >bee.yaml
	expect_created bee.yaml
	expect_ok scone session list
	assert_grep "^crud/bee $HASH\$" "$OUT"
	assert_eq 1 "$(wc -l <"$OUT")" "sessions listed for B (B created one)"
	expect_fail_with 'PERMISSION|403' scone session read crud/app
	use_id "$A"
	expect_ok scone session list
	assert_no_grep '^crud/bee ' "$OUT"
	expect_http 401 anon GET /v1/sessions
	expect_http 401 anon POST /v1/sessions bee.yaml
	expect_http 200 "$A" GET /v1/sessions
	assert_eq true "$(jget "$BODY" '{"name": "crud/app", "hash": "'"$h2"'"} in d["sessions"]')" "crud/app in the list"
	# delete prints the last hash; then it is gone.
	expect_ok scone session delete crud/app
	assert_eq "$h2" "$(cat "$OUT")" "hash printed by delete"
	expect_fail_with 'NOT_FOUND' scone session read crud/app
	assert_grep '404' "$ERR"
	expect_fail_with 'NOT_FOUND' scone session delete crud/app
	expect_http 404 NOT_FOUND "$rt" POST /v1/service/config req.json application/json
	expect_ok scone session list
	assert_no_grep '^crud/app ' "$OUT"
	# The name is free again.
	expect_created v1.yaml
	expect_ok scone session delete crud/app
}

# ---------------- access-control matrix ----------------

# acl_session NAME POLICY_LINES ENV_VALUE [PREDECESSOR]
acl_session() {
	echo "name: $1"
	echo 'version: "0.3"'
	[ -z "${4:-}" ] || echo "predecessor: $4"
	[ -z "$2" ] || printf 'access_policy:\n%s\n' "$2"
	cat <<EOF
security:
  attestation:
    mode: none
services:
  - name: web
    command: /bin/web
    environment:
      V: $3
EOF
}

# The identity directory for curl ("anon": none) and for the CLI.
curl_who() { case $1 in A) echo "$A" ;; B) echo "$B" ;; *) echo anon ;; esac; }
cli_who() { case $1 in A) echo "$A" ;; B) echo "$B" ;; *) echo "$ANON" ;; esac; }

# cli_expect STATUS WHO: exit 0 for 200, else 1 naming the status (an anonymous
# update is refused by the CLI itself: no owner identity).
cli_expect() {
	if [ "$1" = 200 ]; then
		[ "$RC" -eq 0 ] || { show_output; fail "CLI as $2: expected success (HTTP 200), got exit $RC"; }
	else
		[ "$RC" -eq 1 ] || { show_output; fail "CLI as $2: expected exit 1 (HTTP $1), got exit $RC"; }
		[ "$3" = update ] && [ "$2" = anon ] && return 0
		grep -q "HTTP $1" "$ERR" || { show_output; fail "CLI as $2: expected HTTP $1 in the message"; }
	fi
}

# acl_matrix NAME POLICY_LINES OP:WHO=STATUS...: every cell via curl and via the CLI.
acl_matrix() {
	local name=$1 policy=$2 kv who w h n=0 pass
	local -A want
	shift 2
	for kv in "$@"; do want[${kv%=*}]=${kv#*=}; done
	use_id "$A"
	acl_session "$name" "$policy" v0 >create.yaml
	expect_created create.yaml
	h=$HASH
	for who in A B anon; do
		w=${want[read:$who]}
		echo "cell $name read $who: $w"
		expect_http "$w" "$(curl_who $who)" GET "/v1/sessions/$name"
		[ "$w" != 200 ] || assert_eq "$h" "$(jget "$BODY" 'd["hash"]')" "hash read by $who"
		use_id "$(cli_who $who)"
		run_cmd scone session read "$name"
		cli_expect "$w" "$who" read
		[ "$w" != 200 ] || assert_same_file create.yaml "$OUT"
	done
	for pass in deny allow; do
		for who in A B anon; do
			w=${want[update:$who]}
			if [ "$pass" = deny ] && [ "$w" = 200 ]; then continue; fi
			if [ "$pass" = allow ] && [ "$w" != 200 ]; then continue; fi
			echo "cell $name update $who: $w"
			n=$((n + 1))
			acl_session "$name" "$policy" "v$n" "$h" >upd.yaml
			expect_http "$w" "$(curl_who $who)" PUT "/v1/sessions/$name" upd.yaml
			[ "$w" != 200 ] || h=$(jget "$BODY" 'd["hash"]')
			n=$((n + 1))
			acl_session "$name" "$policy" "v$n" "$h" >upd.yaml
			use_id "$(cli_who $who)"
			run_cmd scone session update upd.yaml
			cli_expect "$w" "$who" update
			[ "$w" != 200 ] || h=$(cat "$OUT")
			use_id "$A"
			stored_hash "$name"
			assert_eq "$h" "$HASH" "hash of $name after update as $who"
		done
	done
	for pass in deny allow; do
		for who in A B anon; do
			w=${want[delete:$who]}
			if [ "$pass" = deny ] && [ "$w" = 200 ]; then continue; fi
			if [ "$pass" = allow ] && [ "$w" != 200 ]; then continue; fi
			echo "cell $name delete $who: $w"
			expect_http "$w" "$(curl_who $who)" DELETE "/v1/sessions/$name"
			if [ "$w" = 200 ]; then
				assert_eq "$h" "$(jget "$BODY" 'd["hash"]')" "hash returned by DELETE"
				use_id "$A"
				expect_fail_with NOT_FOUND scone session read "$name"
				expect_created create.yaml
				h=$HASH
			fi
			use_id "$(cli_who $who)"
			run_cmd scone session delete "$name"
			cli_expect "$w" "$who" delete
			use_id "$A"
			if [ "$w" = 200 ]; then
				expect_fail_with NOT_FOUND scone session read "$name"
				expect_created create.yaml
				h=$HASH
			else
				stored_hash "$name"
				assert_eq "$h" "$HASH" "$name after a refused delete by $who"
			fi
		done
	done
}

case_acl_default() {
	use_shared
	acl_matrix acl/default "" \
		read:A=200 read:B=403 read:anon=403 \
		update:A=200 update:B=403 update:anon=403 \
		delete:A=200 delete:B=403 delete:anon=403
}

case_acl_any_none() {
	use_shared
	acl_matrix acl/open "$(printf '  read: [ANY]\n  update: [NONE]')" \
		read:A=200 read:B=200 read:anon=200 \
		update:A=403 update:B=403 update:anon=403 \
		delete:A=403 delete:B=403 delete:anon=403
}

case_acl_key() {
	use_shared
	acl_matrix acl/bkey "$(printf '  update: [%s]' "$(cat "$B/keyhash")")" \
		read:A=200 read:B=403 read:anon=403 \
		update:A=403 update:B=200 update:anon=403 \
		delete:A=403 delete:B=200 delete:anon=403
}

# ---------------- concurrent updates ----------------

case_race() {
	local h round i n winner wins pids rc
	use_shared
	use_id "$A"
	basic_session race/app start >s0.yaml
	expect_created s0.yaml
	h=$HASH
	for round in 1 2 3; do
		n=8 wins=0 winner='' pids=()
		rm -f go
		for ((i = 1; i <= n; i++)); do
			basic_session race/app "round$round-writer$i" "$h" >"u$i.yaml"
			(
				while [ ! -e go ]; do sleep 0.01; done
				rc=0
				timeout 60 "$SCONE_BIN" session update "u$i.yaml" >"o$i" 2>"e$i" </dev/null || rc=$?
				echo "$rc" >"rc$i"
			) &
			pids+=($!)
		done
		touch go
		for i in "${pids[@]}"; do wait "$i" || true; done
		for ((i = 1; i <= n; i++)); do
			rc=$(cat "rc$i")
			if [ "$rc" -eq 0 ]; then
				wins=$((wins + 1)) winner=$i
			else
				[ "$rc" -eq 1 ] || { cat "e$i"; fail "round $round writer $i: exit $rc"; }
				grep -q 'CONFLICT' "e$i" || { cat "e$i"; fail "round $round writer $i: failed without CONFLICT"; }
				grep -q '409' "e$i" || { cat "e$i"; fail "round $round writer $i: no HTTP 409"; }
			fi
		done
		assert_eq 1 "$wins" "updates that succeeded in round $round"
		session_hash_of "u$winner.yaml"
		assert_eq "$HASH" "$(cat "o$winner")" "hash printed by the winner"
		h=$HASH
		expect_ok scone session read race/app
		assert_same_file "u$winner.yaml" "$OUT"
		stored_hash race/app
		assert_eq "$h" "$HASH" "stored hash after round $round"
	done
	expect_http 200 anon GET /metrics
	[ "$(metric_value scone_cas_update_conflicts_total)" -ge 21 ] || fail "update conflicts counter below 21"
}

# ---------------- the service configuration ----------------

svc_session() {
	cat <<'EOF'
name: team/svc
version: "0.3"
security:
  attestation:
    mode: none
services:
  - name: web
    image_name: web_image
    command: /bin/web --name "hello world" 'single quoted' @@1 --pw=$$SCONE::pw$$
    pwd: /srv/web
    environment:
      PW: $$SCONE::pw$$
      BIN_HEX: $$SCONE::bin:hex$$
      PLAIN: plain value
images:
  - name: web_image
    injection_files:
      - path: /etc/web/web.conf
        content: |
          password = $$SCONE::pw$$
          key = $$SCONE::bin:hex$$
      - path: /etc/web/raw.bin
        content: $$SCONE::bin$$
      - path: /etc/web/ca.crt
        content: $$SCONE::ca$$
      - path: /etc/web/server.crt
        content: $$SCONE::server$$
      - path: /etc/web/server.key
        content: $$SCONE::server:privatekey$$
      - path: /etc/web/pk.pem
        content: $$SCONE::pk$$
    volumes:
      - name: data
        path: /data
volumes:
  - name: data
secrets:
  - name: pw
    kind: ascii
    size: 24
  - name: bin
    kind: binary
    size: 32
  - name: ca
    kind: x509-ca
    common_name: Test CA
  - name: server
    kind: x509
    issuer: ca
    common_name: web.example
    dns:
      - web.example
  - name: pk
    kind: private-key
EOF
}

hw_session() {
	cat <<EOF
name: team/hw
version: "0.3"
services:
  - name: web
    command: /bin/web
    mrenclaves: [$(printf 'enclave' | sha256sum | cut -d' ' -f1)]
EOF
}

# unpack_config FILE DIR: the configuration's files and values into DIR.
unpack_config() {
	"$PYTHON" - "$1" "$2" <<'EOF' || fail "configuration does not unpack"
import base64, json, os, sys
d = json.load(open(sys.argv[1]))
out = sys.argv[2]
os.makedirs(out, exist_ok=True)
for f in d["injection_files"]:
    with open(os.path.join(out, os.path.basename(f["path"])), "wb") as o:
        o.write(base64.b64decode(f["content_base64"], validate=True))
with open(os.path.join(out, "pw"), "w") as o:
    o.write(d["environment"]["PW"])
with open(os.path.join(out, "bin_hex"), "w") as o:
    o.write(d["environment"]["BIN_HEX"])
with open(os.path.join(out, "command"), "w") as o:
    o.write(json.dumps(d["command"]))
EOF
}

case_service_config() {
	local r1=$CASE_DIR/r1 r2=$CASE_DIR/r2 pw binhex t1 t2 k h f
	use_shared
	use_id "$A"
	runtime_new "$r1"
	runtime_new "$r2"
	svc_session >svc.yaml
	expect_created svc.yaml
	h=$HASH
	hw_session >hw.yaml
	expect_created hw.yaml
	fetch_config "$r1" team/svc/web
	[ "$STATUS" = 200 ] || { show_file "$BODY"; fail "fetch: HTTP $STATUS"; }
	cp "$BODY" c1.json
	unpack_config c1.json c1
	assert_eq team/svc/web "$(jget c1.json 'd["config_id"]')" "config_id"
	assert_eq "$h" "$(jget c1.json 'd["session_hash"]')" "session_hash"
	assert_eq /srv/web "$(jget c1.json 'd["pwd"]')" "pwd"
	pw=$(cat c1/pw)
	binhex=$(cat c1/bin_hex)
	[[ $pw =~ ^[[:print:]]{24}$ ]] || fail "PW is not 24 printable characters: '$pw'"
	[[ $binhex =~ ^[0-9a-f]{64}$ ]] || fail "BIN_HEX is not 64 hex digits: '$binhex'"
	remember ascii "$pw"
	remember hex "$binhex"
	assert_eq "plain value" "$(jget c1.json 'd["environment"]["PLAIN"]')" "PLAIN"
	assert_eq "$(jget c1.json 'json.dumps(["/bin/web", "--name", "hello world", "single quoted", "@@1", "--pw=" + d["environment"]["PW"]])')" \
		"$(cat c1/command)" "command"
	printf 'password = %s\nkey = %s\n' "$pw" "$binhex" >web.conf.want
	assert_same_file web.conf.want c1/web.conf
	assert_eq "$binhex" "$(od -An -tx1 -v c1/raw.bin | tr -d ' \n')" "raw binary file vs :hex"
	assert_eq 448 "$(jget c1.json '[f for f in d["injection_files"] if f["path"] == "/etc/web/web.conf"][0]["mode"]')" \
		"default injection file mode (SCONE's 0700)"
	# x509 issued by the CA, with its key.
	openssl verify -CAfile c1/ca.crt c1/server.crt >verify.txt 2>&1 || { cat verify.txt; fail "server.crt does not verify against ca.crt"; }
	openssl x509 -in c1/server.crt -noout -subject -ext subjectAltName >server.txt 2>&1 || true
	assert_grep 'web.example' server.txt
	openssl x509 -in c1/server.crt -pubkey -noout >cert.pub
	openssl pkey -in c1/server.key -pubout >key.pub || fail "server.key is not a private key"
	assert_same_file cert.pub key.pub
	openssl pkey -in c1/pk.pem -noout || fail "pk.pem is not a private key"
	remember pem "$(sed -n 2p c1/pk.pem)"
	remember pem "$(sed -n 2p c1/server.key)"
	# The volume: a 64-hex key, no tag yet.
	assert_eq 1 "$(jget c1.json 'len(d["volumes"])')" "volumes"
	assert_eq data "$(jget c1.json 'd["volumes"][0]["name"]')" "volume name"
	assert_eq /data "$(jget c1.json 'd["volumes"][0]["path"]')" "volume path"
	k=$(jget c1.json 'd["volumes"][0]["key"]')
	[[ $k =~ ^[0-9a-f]{64}$ ]] || fail "volume key is not 64 hex digits: '$k'"
	assert_eq "" "$(jget c1.json 'd["volumes"][0]["tag"]')" "tag of a new volume"
	assert_eq true "$(jget c1.json 'd["volumes"][0]["tag_tracked"]')" "tag_tracked"
	remember hex "$k"
	t1=$(jget c1.json 'd["instance_token"]')
	[[ $t1 =~ ^[0-9a-f]{64}$ ]] || fail "instance_token is not 64 hex digits"
	# read --json shows the public parts only.
	expect_ok scone session read team/svc --json
	jget "$OUT" '[s for s in d["secrets"] if s["name"] == "server"][0]["public"]' >pub-server.crt
	assert_eq "$(cert_fp c1/server.crt)" "$(cert_fp pub-server.crt)" "public part of server"
	jget "$OUT" '[s for s in d["secrets"] if s["name"] == "pk"][0]["public"]' >pub-pk.pem
	openssl pkey -in c1/pk.pem -pubout >pk.pub
	openssl pkey -pubin -in pub-pk.pem -pubout >pub-pk.norm || fail "public part of pk is not a public key"
	assert_same_file pk.pub pub-pk.norm
	if grep -qF -- "$pw" "$OUT"; then fail "the ascii secret appears in read --json"; fi
	assert_no_grep 'PRIVATE KEY' "$OUT"
	# A second fetch (another runtime key): the same secrets, another token.
	fetch_config "$r2" team/svc/web
	[ "$STATUS" = 200 ] || { show_file "$BODY"; fail "second fetch: HTTP $STATUS"; }
	cp "$BODY" c2.json
	unpack_config c2.json c2
	for f in pw bin_hex web.conf raw.bin ca.crt server.crt server.key pk.pem; do
		assert_same_file "c1/$f" "c2/$f"
	done
	assert_eq "$k" "$(jget c2.json 'd["volumes"][0]["key"]')" "volume key in the second fetch"
	t2=$(jget c2.json 'd["instance_token"]')
	assert_ne "$t1" "$t2" "instance tokens of two runtime keys"
	# Refusals.
	fetch_config anon team/svc/web
	assert_eq 400 "$STATUS" "fetch without a client certificate"
	jget "$BODY" 'd["code"]' >/dev/null || fail "no JSON error body"
	if grep -qF -- "$pw" "$BODY"; then fail "a refused fetch returned the secret"; fi
	fetch_config "$r1" team/svc/nope
	assert_eq 404 "$STATUS" "fetch of an unknown service"
	assert_eq NOT_FOUND "$(jget "$BODY" 'd["code"]')" "error code"
	fetch_config "$r1" team/nope/web
	assert_eq 404 "$STATUS" "fetch from an unknown session"
	fetch_config "$r1" team/hw/web
	assert_eq 403 "$STATUS" "fetch from a session that requires attestation"
	assert_eq ATTESTATION "$(jget "$BODY" 'd["code"]')" "error code"
	expect_http 200 anon GET /metrics
	[ "$(metric_value scone_cas_config_fetches_total)" -ge 2 ] || fail "config fetches counter below 2"
	[ "$(metric_value scone_cas_config_denied_total)" -ge 1 ] || fail "config denied counter below 1"
}

# ---------------- volume tags ----------------

tag_session() {
	cat <<'EOF'
name: team/tags
version: "0.3"
security:
  attestation:
    mode: none
services:
  - name: web
    image_name: img
    command: /bin/web
images:
  - name: img
    volumes:
      - name: data
        path: /data
volumes:
  - name: data
  - name: other
EOF
}

case_volume_tags() {
	local k1=$CASE_DIR/k1 k2=$CASE_DIR/k2 tok t1 t2 t3
	use_shared
	use_id "$A"
	runtime_new "$k1"
	runtime_new "$k2"
	tag_session >tags.yaml
	expect_created tags.yaml
	fetch_config "$k1" team/tags/web
	[ "$STATUS" = 200 ] || { show_file "$BODY"; fail "fetch: HTTP $STATUS"; }
	tok=$(jget "$BODY" 'd["instance_token"]')
	remember hex "$(jget "$BODY" 'd["volumes"][0]["key"]')"
	assert_eq "" "$(jget "$BODY" 'd["volumes"][0]["tag"]')" "initial tag"
	t1=$(printf 't1' | md5sum | cut -d' ' -f1)
	t2=$(printf 't2' | md5sum | cut -d' ' -f1)
	t3=$(printf 't3' | md5sum | cut -d' ' -f1)
	tag_update "$k1" team/tags/web data "" "$t1" "$tok"
	assert_eq 200 "$STATUS" "first tag update ($(cat "$BODY"))"
	assert_eq "$t1" "$(jget "$BODY" 'd["tag"]')" "tag in the answer"
	# The same report again (its answer was lost): done already, not a conflict.
	tag_update "$k1" team/tags/web data "" "$t1" "$tok"
	assert_eq 200 "$STATUS" "a report sent again ($(cat "$BODY"))"
	# A stale previous tag: someone else moved it first.
	tag_update "$k1" team/tags/web data "" "$t2" "$tok"
	assert_eq 409 "$STATUS" "tag update with a stale previous tag ($(cat "$BODY"))"
	assert_eq CONFLICT "$(jget "$BODY" 'd["code"]')" "code"
	# The same token over another TLS key.
	tag_update "$k2" team/tags/web data "$t1" "$t2" "$tok"
	assert_eq 403 "$STATUS" "token replayed over another key ($(cat "$BODY"))"
	tag_update anon team/tags/web data "$t1" "$t2" "$tok"
	[ "$STATUS" = 403 ] || [ "$STATUS" = 400 ] || fail "token without a client certificate: HTTP $STATUS"
	# A volume the service does not mount, and a forged token.
	tag_update "$k1" team/tags/web other "" "$t2" "$tok"
	assert_eq 403 "$STATUS" "tag update of a volume not mounted ($(cat "$BODY"))"
	tag_update "$k1" team/tags/web data "$t1" "$t2" "$(printf 'forged' | sha256sum | cut -d' ' -f1)"
	assert_eq 403 "$STATUS" "forged token"
	# The next fetch shows T1; with the right previous tag it moves on.
	fetch_config "$k2" team/tags/web
	assert_eq 200 "$STATUS" "second fetch"
	assert_eq "$t1" "$(jget "$BODY" 'd["volumes"][0]["tag"]')" "tag in the next fetch"
	tok=$(jget "$BODY" 'd["instance_token"]')
	tag_update "$k2" team/tags/web data "$t1" "$t3" "$tok"
	assert_eq 200 "$STATUS" "tag update from the second instance"
	fetch_config "$k1" team/tags/web
	assert_eq "$t3" "$(jget "$BODY" 'd["volumes"][0]["tag"]')" "tag after the second update"
	expect_http 200 anon GET /metrics
	[ "$(metric_value scone_cas_volume_tag_updates_total)" -ge 2 ] || fail "tag updates counter below 2"
	[ "$(metric_value scone_cas_volume_tag_conflicts_total)" -ge 1 ] || fail "tag conflicts counter below 1"
}

# ---------------- export / import ----------------

exp_session() { # NAME EXPORT_TO [SESSION_HASH]
	cat <<EOF
name: $1
version: "0.3"
security:
  attestation:
    mode: none
services:
  - name: app
    command: /bin/app
    environment:
      SHARED: \$\$SCONE::shared\$\$
secrets:
  - name: shared
    kind: ascii
    size: 18
    export:
      - session: $2
EOF
	[ -z "${3:-}" ] || echo "        session_hash: $3"
}

imp_session() { # NAME FROM
	cat <<EOF
name: $1
version: "0.3"
security:
  attestation:
    mode: none
services:
  - name: app
    command: /bin/app
    environment:
      FROM_A: \$\$SCONE::from_a\$\$
secrets:
  - name: from_a
    import:
      session: $2
      secret: shared
EOF
}

# A exports to B's session xb: by name alone that reaches only A's own
# sessions (or a namespace both live in), so A pins the hash of B's document.
case_export_import() {
	local rt=$CASE_DIR/rt va vb
	use_shared
	runtime_new "$rt"
	use_id "$B"
	imp_session xb xa >xb.yaml
	session_hash_of xb.yaml
	use_id "$A"
	exp_session xa xb "$HASH" >xa.yaml
	expect_created xa.yaml
	use_id "$B"
	expect_created xb.yaml
	imp_session xc xa >xc.yaml
	expect_created xc.yaml
	fetch_config "$rt" xa/app
	[ "$STATUS" = 200 ] || { show_file "$BODY"; fail "fetch xa/app: HTTP $STATUS"; }
	va=$(jget "$BODY" 'd["environment"]["SHARED"]')
	assert_eq 18 "${#va}" "length of the exported secret"
	remember ascii "$va"
	fetch_config "$rt" xb/app
	[ "$STATUS" = 200 ] || { show_file "$BODY"; fail "fetch xb/app: HTTP $STATUS"; }
	vb=$(jget "$BODY" 'd["environment"]["FROM_A"]')
	assert_eq "$va" "$vb" "imported value"
	expect_ok scone session read xb --json
	assert_eq true "$(jget "$OUT" '[s for s in d["secrets"] if s["name"] == "from_a"][0]["imported"]')" "imported flag"
	if grep -qF -- "$va" "$OUT"; then fail "the imported value appears in read --json"; fi
	# xc is not in the export list.
	fetch_config "$rt" xc/app
	assert_eq 403 "$STATUS" "fetch of a session importing a secret not exported to it ($(cat "$BODY"))"
	if grep -qF -- "$va" "$BODY"; then fail "the refusal carries the secret"; fi
}

# Namespaces: create_sessions of the parent session decides who creates
# "parent/child"; an export to a namespace admits the sessions below it.
case_namespaces() {
	local rt=$CASE_DIR/rt v1 v2
	use_shared
	use_id "$A"
	runtime_new "$rt"
	exp_session nsa nsb >nsa.yaml
	expect_created nsa.yaml
	# B may not create below A's session (default create_sessions = update = [CREATOR]) ...
	use_id "$B"
	imp_session nsa/intruder nsa >intruder.yaml
	expect_fail_with "create_sessions|PERMISSION" scone session create intruder.yaml
	# ... A may.
	use_id "$A"
	imp_session nsa/child nsa >child.yaml
	expect_created child.yaml
	# An export to the namespace "team" admits team/x but neither "team" nor "teamx/y".
	exp_session team-src team >src.yaml
	sed -i 's/      - session: team$/      - namespace: team/' src.yaml
	expect_created src.yaml
	imp_session team/x team-src >tx.yaml
	sed -i 's/session: nsa$/session: team-src/' tx.yaml
	expect_created tx.yaml
	imp_session teamx/y team-src >ty.yaml
	expect_created ty.yaml
	fetch_config "$rt" team-src/app
	[ "$STATUS" = 200 ] || { show_file "$BODY"; fail "fetch team-src/app: HTTP $STATUS"; }
	v1=$(jget "$BODY" 'd["environment"]["SHARED"]')
	remember ascii "$v1"
	fetch_config "$rt" team/x/app
	[ "$STATUS" = 200 ] || { show_file "$BODY"; fail "fetch team/x/app: HTTP $STATUS"; }
	v2=$(jget "$BODY" 'd["environment"]["FROM_A"]')
	assert_eq "$v1" "$v2" "value imported through a namespace export"
	fetch_config "$rt" teamx/y/app
	assert_eq 403 "$STATUS" "a session outside the exported namespace"
}

# ---------------- namespaces and exports by name: what another owner can try ----------------

# holder_session NAME SECRET_EXPORTS [VOLUME_EXPORTS [MORE_YAML]]: a session with secret
# "held" (ascii) and volume "vol", exported as given (YAML list items indented 6).
holder_session() {
	cat <<EOF
name: $1
version: "0.3"
security:
  attestation:
    mode: none
services:
  - name: app
    command: /bin/app
    environment:
      HELD: \$\$SCONE::held\$\$
secrets:
  - name: held
    kind: ascii
    size: 22
    export:
$2
volumes:
  - name: vol
EOF
	[ -z "${3:-}" ] || printf '    export:\n%s\n' "$3"
	[ -z "${4:-}" ] || printf '%s\n' "$4"
}

# taker_session NAME FROM [WITH_VOLUME]: imports secret "held" (and volume "vol") of FROM.
taker_session() {
	cat <<EOF
name: $1
version: "0.3"
security:
  attestation:
    mode: none
services:
  - name: app
    command: /bin/app
    environment:
      GOT: \$\$SCONE::got\$\$
EOF
	if [ -n "${3:-}" ]; then
		cat <<EOF
    image_name: img
images:
  - name: img
    volumes:
      - name: vol
        path: /vol
volumes:
  - name: vol
    import: {session: $2, volume: vol}
EOF
	fi
	cat <<EOF
secrets:
  - name: got
    import: {session: $2, secret: held}
EOF
}

# expect_no_secret RT CONFIG_ID: the fetch is refused (403), says why, and carries no value.
expect_no_secret() {
	fetch_config "$1" "$2"
	[ "$STATUS" = 403 ] || { show_file "$BODY"; fail "fetch $2: HTTP $STATUS, expected 403"; }
	if grep -q '"GOT"\|"key"' "$BODY"; then
		show_file "$BODY"
		fail "fetch $2: the refusal carries a value"
	fi
	jget "$BODY" 'd["error"]' | grep -q "export" || { show_file "$BODY"; fail "fetch $2: the refusal does not say why"; }
}

# Owner B below A's namespace: acme (A, create_sessions [CREATOR, C]) exports to
# the namespace acme. B cannot create acme/x/evil (acme/x does not exist: acme
# decides); C, admitted by acme, can create acme/team/app and receives the secret.
case_namespace_creation() {
	local rt=$CASE_DIR/rt C=$CASE_DIR/C v
	use_shared
	owner_new "$C"
	runtime_new "$rt"
	use_id "$A"
	holder_session acme '      - namespace: acme' '' "access_policy:
  create_sessions: [CREATOR, \"sha256:$(cat "$C/keyhash")\"]" >acme.yaml
	expect_created acme.yaml
	fetch_config "$rt" acme/app
	[ "$STATUS" = 200 ] || { show_file "$BODY"; fail "fetch acme/app: HTTP $STATUS"; }
	v=$(jget "$BODY" 'd["environment"]["HELD"]')
	remember ascii "$v"
	use_id "$B"
	taker_session acme/x/evil acme >evil.yaml
	expect_fail_with "create_sessions of acme \\(the nearest" scone session create evil.yaml
	taker_session acme/evil acme >evil2.yaml
	expect_fail_with "create_sessions of acme \\(the nearest" scone session create evil2.yaml
	fetch_config "$rt" acme/x/evil/app
	assert_eq 404 "$STATUS" "fetch of the refused session"
	# C is admitted by acme's create_sessions, also two levels down.
	use_id "$C"
	taker_session acme/team/app acme >capp.yaml
	expect_created capp.yaml
	fetch_config "$rt" acme/team/app/app
	[ "$STATUS" = 200 ] || { show_file "$BODY"; fail "fetch acme/team/app/app: HTTP $STATUS"; }
	assert_eq "$v" "$(jget "$BODY" 'd["environment"]["GOT"]')" "value C's session imported"
	# A below its own namespace; not below C's session acme/team (its create_sessions: only C).
	use_id "$A"
	taker_session acme/x/mine acme >mine.yaml
	expect_created mine.yaml
	use_id "$C"
	basic_session acme/team >team.yaml
	expect_created team.yaml
	use_id "$A"
	taker_session acme/team/a2 acme >a2.yaml
	expect_fail_with "create_sessions of acme/team \\(the nearest" scone session create a2.yaml
}

# Owner B takes names that A exports to by name without session_hash: the
# name "backup" nobody had, and "org/api" below a namespace session A deleted.
# B's sessions are created but receive neither A's secret nor A's volume key.
case_export_squatting() {
	local rt=$CASE_DIR/rt h v
	use_shared
	runtime_new "$rt"
	use_id "$B"
	taker_session bpinned vault x >bpinned.yaml
	session_hash_of bpinned.yaml
	h=$HASH
	use_id "$A"
	holder_session vault "      - session: backup
      - session: mine
      - session: bpinned
        session_hash: $h" "      - session: backup
      - session: bpinned
        session_hash: $h" >vault.yaml
	expect_created vault.yaml
	fetch_config "$rt" vault/app
	[ "$STATUS" = 200 ] || { show_file "$BODY"; fail "fetch vault/app: HTTP $STATUS"; }
	v=$(jget "$BODY" 'd["environment"]["HELD"]')
	remember ascii "$v"
	use_id "$B"
	taker_session backup vault x >backup.yaml
	expect_created backup.yaml
	expect_no_secret "$rt" backup/app
	# Pinned by hash, another owner's session is reached (the owner chose that document).
	expect_created bpinned.yaml
	fetch_config "$rt" bpinned/app
	[ "$STATUS" = 200 ] || { show_file "$BODY"; fail "fetch bpinned/app: HTTP $STATUS"; }
	assert_eq "$v" "$(jget "$BODY" 'd["environment"]["GOT"]')" "value through a pinned export"
	remember hex "$(jget "$BODY" 'd["volumes"][0]["key"]')"
	# The exporter's own session by name.
	use_id "$A"
	taker_session mine vault >mine.yaml
	expect_created mine.yaml
	fetch_config "$rt" mine/app
	[ "$STATUS" = 200 ] || { show_file "$BODY"; fail "fetch mine/app: HTTP $STATUS"; }
	assert_eq "$v" "$(jget "$BODY" 'd["environment"]["GOT"]')" "value in the exporter's own session"
	# A namespace session deleted and created again by someone else.
	basic_session org >org.yaml
	expect_created org.yaml
	holder_session org/db '      - namespace: org
      - session: org/api' >orgdb.yaml
	expect_created orgdb.yaml
	taker_session org/own org/db >orgown.yaml
	expect_created orgown.yaml
	expect_ok scone session delete org
	use_id "$B"
	basic_session org >borg.yaml
	expect_created borg.yaml
	taker_session org/api org/db >api.yaml
	expect_created api.yaml
	taker_session org/evil org/db >oevil.yaml
	expect_created oevil.yaml
	expect_no_secret "$rt" org/api/app
	expect_no_secret "$rt" org/evil/app
	# A's own session below still is served.
	fetch_config "$rt" org/own/app
	[ "$STATUS" = 200 ] || { show_file "$BODY"; fail "fetch org/own/app: HTTP $STATUS"; }
}

# ---------------- export_public: values for everyone, but never a private key ----------------

pub_session() {
	cat <<'EOF'
name: pubca
version: "0.3"
security:
  attestation:
    mode: none
services:
  - name: app
    command: /bin/app
    environment:
      CA_KEY: $$SCONE::aca:key$$
secrets:
  - name: aca
    kind: x509-ca
    common_name: A's CA
    export_public: true
  - name: akey
    kind: private-key
    export_public: true
  - name: acert
    kind: x509
    issuer: aca
    common_name: a.example
    export_public: true
  - name: aval
    kind: ascii
    size: 16
    export_public: true
EOF
}

# usepub_session NAME: B's session with one service per way of using A's public secrets.
usepub_session() {
	cat <<EOF
name: $1
version: "0.3"
security:
  attestation:
    mode: none
services:
  - name: public
    command: /bin/app
    environment:
      CA: \$\$SCONE::ca:crt\$\$
      CHAIN: \$\$SCONE::cert:chain\$\$
      PUB: \$\$SCONE::key:publickey\$\$
      VAL: \$\$SCONE::val\$\$
  - name: cakey
    command: /bin/app
    environment:
      K: \$\$SCONE::ca:key\$\$
  - name: certkey
    command: /bin/app
    environment:
      K: \$\$SCONE::cert:privatekey\$\$
  - name: rawkey
    command: /bin/app
    environment:
      K: \$\$SCONE::key\$\$
  - name: derkey
    command: /bin/app
    environment:
      K: \$\$SCONE::key:der\$\$
secrets:
  - {name: ca, import: {session: pubca, secret: aca}}
  - {name: cert, import: {session: pubca, secret: acert}}
  - {name: key, import: {session: pubca, secret: akey}}
  - {name: val, import: {session: pubca, secret: aval}}
EOF
}

# signpub_session NAME ROLE: B's certificate using A's public CA as issuer, or A's public key as its key.
signpub_session() {
	cat <<EOF
name: $1
version: "0.3"
security:
  attestation:
    mode: none
services:
  - name: app
    command: /bin/app
secrets:
  - {name: ca, import: {session: pubca, secret: aca}}
  - {name: key, import: {session: pubca, secret: akey}}
  - name: mine
    kind: x509
    common_name: b.example
EOF
	if [ "$2" = issuer ]; then echo "    issuer: ca"; else echo "    private_key: key"; fi
}

# A publishes a CA, a key, a certificate and a value with export_public: B may
# render the certificates, the public key and the value, but neither the
# private keys (:key, :privatekey, a private-key's own PEM or DER) nor sign
# with the CA or certify with A's key; each refusal says why.
case_export_public() {
	local rt=$CASE_DIR/rt cakey svc
	use_shared
	runtime_new "$rt"
	use_id "$A"
	pub_session >pubca.yaml
	expect_created pubca.yaml
	fetch_config "$rt" pubca/app
	[ "$STATUS" = 200 ] || { show_file "$BODY"; fail "fetch pubca/app: HTTP $STATUS"; }
	cakey=$(jget "$BODY" 'd["environment"]["CA_KEY"]')
	assert_grep "BEGIN PRIVATE KEY" <(echo "$cakey")
	use_id "$B"
	usepub_session usepub >usepub.yaml
	expect_created usepub.yaml
	fetch_config "$rt" usepub/public
	[ "$STATUS" = 200 ] || { show_file "$BODY"; fail "fetch usepub/public: HTTP $STATUS"; }
	jget "$BODY" 'd["environment"]["CA"]' | grep -q "BEGIN CERTIFICATE" || fail "the public CA certificate"
	[ "$(jget "$BODY" 'd["environment"]["CHAIN"]' | grep -c "BEGIN CERTIFICATE")" = 2 ] || fail "the chain"
	jget "$BODY" 'd["environment"]["PUB"]' | grep -q "BEGIN PUBLIC KEY" || fail "the public key"
	assert_eq 16 "$(jget "$BODY" 'len(d["environment"]["VAL"])')" "the public value"
	if grep -q "PRIVATE KEY" "$BODY"; then fail "a private key in the public service's configuration"; fi
	for svc in cakey certkey rawkey derkey; do
		fetch_config "$rt" "usepub/$svc"
		[ "$STATUS" = 403 ] || { show_file "$BODY"; fail "fetch usepub/$svc: HTTP $STATUS, expected 403"; }
		jget "$BODY" 'd["error"]' | grep -q "export_public.*never its private key" ||
			{ show_file "$BODY"; fail "usepub/$svc: the refusal does not say why"; }
		if grep -q "PRIVATE KEY\|$(echo "$cakey" | sed -n 2p)" "$BODY"; then fail "usepub/$svc: key material in the refusal"; fi
	done
	# Signing with A's public CA, or certifying A's public key, is refused at creation.
	signpub_session signpub issuer >s1.yaml
	expect_fail_with "export_public.*cannot sign" scone session create s1.yaml
	signpub_session keypub key >s2.yaml
	expect_fail_with "export_public.*cannot sign" scone session create s2.yaml
	expect_fail_with NOT_FOUND scone session read signpub
}

# The parsed-session cache of each worker must never serve a stale session:
# a session deleted and created again from the same text (same hash) has new
# secrets, and an update is seen at once by every worker.
case_cache_fresh() {
	local rt=$CASE_DIR/rt v1 v2 v3 i
	use_shared
	use_id "$A"
	runtime_new "$rt"
	exp_session cachefresh nobody >c.yaml
	expect_created c.yaml
	for i in 1 2 3 4; do # several connections, so both workers cache it
		fetch_config "$rt" cachefresh/app
		[ "$STATUS" = 200 ] || fail "fetch: HTTP $STATUS"
	done
	v1=$(jget "$BODY" 'd["environment"]["SHARED"]')
	remember ascii "$v1"
	expect_ok scone session delete cachefresh
	expect_created c.yaml
	for i in 1 2 3 4; do
		fetch_config "$rt" cachefresh/app
		v2=$(jget "$BODY" 'd["environment"]["SHARED"]')
		remember ascii "$v2"
		assert_ne "$v1" "$v2" "secret after delete and re-create (fetch $i)"
	done
	session_hash_of c.yaml
	sed -i "s/^version: \"0.3\"/version: \"0.3\"\npredecessor: $HASH/; s/size: 18/size: 19/" c.yaml
	expect_updated c.yaml
	for i in 1 2 3 4; do
		fetch_config "$rt" cachefresh/app
		v3=$(jget "$BODY" 'd["environment"]["SHARED"]')
		remember ascii "$v3"
		assert_eq 19 "${#v3}" "secret size after the update (fetch $i)"
	done
}

# ---------------- no secret on disk or in the log ----------------

# find_needles FILE...: print each remembered value found in one of the files.
find_needles() {
	"$PYTHON" - "$NEEDLES" "$@" <<'EOF'
import sys
needles = []
for line in open(sys.argv[1], encoding="utf-8"):
    kind, _, value = line.rstrip("\n").partition(":")
    forms = [value.encode()]
    if kind == "hex":
        forms.append(bytes.fromhex(value))
    needles.append((kind, value, forms))
for path in sys.argv[2:]:
    try:
        data = open(path, "rb").read()
    except FileNotFoundError:
        continue
    for kind, value, forms in needles:
        for form in forms:
            if form in data:
                print("%s: %s secret %s...%s found" % (path, kind, value[:4], value[-2:]))
EOF
}

case_no_leaks() {
	local files n
	use_shared
	n=$(wc -l <"$NEEDLES")
	[ "$n" -ge 8 ] || fail "only $n secret values were collected (earlier cases failed)"
	grep -q "ascii:$EXPLICIT_VALUE" "$NEEDLES" || fail "the explicit value was not collected"
	ls -la "$CAS_DIR"
	files=("$CAS_DIR"/* "$CAS_LOG")
	# Positive control: names are stored in the clear, in these very files.
	grep -qa 'team/svc' "$CAS_DIR"/cas.db* || fail "session names not found in the store files (wrong files?)"
	find_needles "${files[@]}" >found.txt
	assert_empty found.txt "secret values found in the state directory or the log"
	check_json_log "$CAS_LOG" >/dev/null
	# Stopped (WAL checkpointed): still nothing.
	cas_stop
	files=("$CAS_DIR"/* "$CAS_LOG")
	find_needles "${files[@]}" >found.txt
	assert_empty found.txt "secret values found after shutdown"
	grep -qa 'team/svc' "$CAS_DIR"/cas.db* || fail "session names not found in the store after shutdown"
}

# ---------------- run ----------------

# scone cas attest: a CAS without a TEE says so (GET /v1/cas/evidence: type none); it is
# pinned only by a fingerprint given on the command line, never on its own word.
case_cas_attest() {
	local fp wrong
	cas_case_begin
	cas_start "$CASE_DIR/cas"
	fp=$(cert_fp cas/cas.crt)
	mkdir -p "$CASE_DIR/b"
	use_id "$CASE_DIR/b"
	expect_http 200 anon GET /v1/cas/evidence
	assert_eq none "$(jget "$BODY" 'd["type"]')" "CAS's evidence type without a TEE"
	expect_fail_with "has no TEE evidence .*cannot prove what it is.*$fp" scone cas attest "$CAS_ADDR"
	[ ! -e "$CASE_DIR/b/config.json" ] || assert_no_grep "$fp" "$CASE_DIR/b/config.json"
	wrong=$(printf '%s' "$fp" | sha256sum | cut -d' ' -f1)
	expect_fail_with "presents certificate $fp, not $wrong" scone cas attest "$CAS_ADDR" --fingerprint "$wrong"
	expect_ok scone cas attest "$CAS_ADDR" --fingerprint "$fp"
	assert_grep "proved nothing about its code; trusted by its fingerprint $fp" "$OUT"
	assert_grep "$fp" "$CASE_DIR/b/config.json"
	expect_ok scone cas keygen
	expect_ok scone session list
	expect_usage_error scone cas attest
	expect_ok scone cas attest --help
	cas_stop
}

run_case "cas: first start creates identity, master key, store; JSON log; healthz; metrics; restart keeps identity" case_first_start
run_case "cas: --help of every command, usage errors" case_help
run_case "cas: keygen, trust with wrong/right fingerprint, another CAS at the pinned address is UNTRUSTED" case_trust_pinning
run_case "cas: cas attest: a CAS without a TEE says so and is pinned only by a given fingerprint" case_cas_attest
run_case "cas: shared CAS with owners A and B" setup_shared
[ ! -f "$SHARED/cas.pid" ] || t_track_pid "$(cut -d' ' -f1 "$SHARED/cas.pid")"
run_case "cas: session check reports every error with FILE:LINE:COL: PATH; hash ignores formatting" case_check_and_hash
run_case "cas: create, EXISTS, read, read --json without values, update with predecessor, list, delete" case_crud
run_case "cas: access matrix, default policy (creator only)" case_acl_default
run_case "cas: access matrix, read [ANY] update [NONE]" case_acl_any_none
run_case "cas: access matrix, update by another owner's key hash" case_acl_key
run_case "cas: 8 concurrent updates of one predecessor: exactly one wins (3 rounds)" case_race
run_case "cas: service configuration: env, files, binary, x509 with CA, keys, volume, refusals" case_service_config
run_case "cas: volume tags: compare-and-swap, bound to the TLS key and the mounted volumes" case_volume_tags
run_case "cas: export/import of a secret between sessions" case_export_import
run_case "cas: namespaces: create_sessions and exports to a namespace" case_namespaces
run_case "cas: namespaces: the nearest existing session decides who creates below it (another owner refused)" case_namespace_creation
run_case "cas: exports by name reach no other owner's session at that name (free, or re-created namespace)" case_export_squatting
run_case "cas: export_public releases certificates, public keys and values, never a private key or signing" case_export_public
run_case "cas: no stale session from the per-worker cache (re-create, update)" case_cache_fresh
run_case "cas: no secret value in the state directory or the log" case_no_leaks
t_done
