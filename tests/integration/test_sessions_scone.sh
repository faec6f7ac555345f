#!/usr/bin/env bash
# test_sessions_scone.sh - SCONE sessions end to end (issue 12): what the
# session language 0.3.x means once CAS stores a session and the runtime
# starts a program with it. Host environment variables (\@\@NAME),
# security.service_access_token both ways, an image's own injection file
# filled at start (provide_secrets), x509 san with dns:/ip:, pgp-key
# renderings gpg accepts, config-fragments CAS resolves in access_policy,
# volume exports with volume_alias, `scone session create -e/--use-env`,
# CAS's warnings for the old reference forms, and the read-back keys
# (creator, namespace_hash) another owner could try to abuse. The program is Debian's
# python3, unmodified.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
. tests/integration/cas_lib.sh
t_init
cas_require
PY=/usr/bin/python3
[ -x "$PY" ] || { t_fail "setup: /usr/bin/python3 missing (scripts/install-deps.sh)"; t_done; exit 1; }

start_cas() {
	cas_case_begin
	cas_start "$CASE_DIR/cas"
	owner_new "$CASE_DIR/owner"
}

# env.py prints the variables named on its command line ("<absent>" when unset).
write_env_py() {
	cat >"$CASE_DIR/env.py" <<'PY'
import os, sys
for name in sys.argv[1:]:
    print("%s=%s" % (name, os.environ.get(name, "<absent>")))
environ = open("/proc/self/environ", "rb").read()
print("TOKEN_IN_PROC=%s" % (b"SCONE_SERVICE_ACCESS_TOKEN=" in environ and b"s3cr3t-token" in environ))
PY
}

case_host_env() {
	start_cas
	write_env_py
	cat >host.yaml <<YAML
name: hostenv
version: "0.3.8"
security:
  attestation:
    mode: none
services:
  - name: py
    command: python3 $CASE_DIR/env.py FROM_HOST UNSET_ON_HOST SESSION_VAR NOT_LISTED
    environment:
      SESSION_VAR: from-the-session
      \@\@FROM_HOST: "this value is ignored"
      \@\@UNSET_ON_HOST: ""
YAML
	expect_created host.yaml
	grep -q "the value of .*FROM_HOST is ignored" "$ERR" || { show_output; fail "create printed no warning for the ignored value"; }
	# The host's value, taken as it is: a secret reference in it is not expanded.
	FROM_HOST='host $$SCONE::pw$$ value' NOT_LISTED=leak expect_ok scone run --config-id hostenv/py -- "$PY"
	assert_grep '^FROM_HOST=host \$\$SCONE::pw\$\$ value$' "$OUT"
	assert_grep '^UNSET_ON_HOST=$' "$OUT"
	assert_grep '^SESSION_VAR=from-the-session$' "$OUT"
	assert_grep '^NOT_LISTED=<absent>$' "$OUT"
	expect_ok scone run --config-id hostenv/py -- "$PY"
	assert_grep '^FROM_HOST=$' "$OUT"
	# Never a variable literally named \@\@FROM_HOST.
	cat >names.py <<'PY'
import os
print("\n".join(k for k in os.environ if "@" in k), end="")
PY
	sed -i "s|env.py FROM_HOST UNSET_ON_HOST SESSION_VAR NOT_LISTED|names.py|" host.yaml
	stored_hash hostenv
	printf 'predecessor: %s\n' "$HASH" >>host.yaml
	expect_updated host.yaml
	FROM_HOST=x expect_ok scone run --config-id hostenv/py -- "$PY"
	assert_empty "$OUT" "variables with @ in their names"
}

case_access_token() {
	start_cas
	write_env_py
	cat >token.yaml <<YAML
name: tokened
version: "0.3.10"
security:
  attestation:
    mode: none
  service_access_token: s3cr3t-token
services:
  - name: py
    command: python3 $CASE_DIR/env.py SCONE_SERVICE_ACCESS_TOKEN
YAML
	expect_created token.yaml
	expect_no_main "requires a service access token" scone run --config-id tokened/py -- "$PY"
	SCONE_SERVICE_ACCESS_TOKEN=wrong expect_no_main "requires a service access token" \
		scone run --config-id tokened/py -- "$PY"
	SCONE_SERVICE_ACCESS_TOKEN=s3cr3t-token expect_ok scone run --config-id tokened/py -- "$PY"
	assert_grep '^SCONE_SERVICE_ACCESS_TOKEN=<absent>$' "$OUT"
	assert_grep '^TOKEN_IN_PROC=False$' "$OUT"
	if grep -rqa "s3cr3t-token" "$CASE_DIR/cas.log"; then fail "the token is in the CAS log"; fi
	# The other way: a runtime holding a token refuses a CAS that cannot prove it
	# holds the same one (here: a session without a token).
	cat >plain.yaml <<YAML
name: plain
version: "0.3.10"
security:
  attestation:
    mode: none
services:
  - name: py
    command: python3 $CASE_DIR/env.py
YAML
	expect_created plain.yaml
	SCONE_SERVICE_ACCESS_TOKEN=s3cr3t-token expect_no_main "did not prove" scone run --config-id plain/py -- "$PY"
	expect_ok scone run --config-id plain/py -- "$PY"
}

case_image_file() {
	start_cas
	mkdir -p app
	cat >app/app.conf <<'CONF'
# written by the image, filled by the runtime at start
password = $$SCONE::db_password$$
key = $$SCONE::api_key:hex$$
json = {"pw": "$$SCONE::db_password|escape(json)$$"}
CONF
	cp app/app.conf app.conf.orig
	cat >read.py <<'PY'
import os, subprocess, sys
print(open(sys.argv[1]).read(), end="")
child = subprocess.run(["/usr/bin/python3", "-c", "import sys; print(open(sys.argv[1]).read(), end='')", sys.argv[1]],
                       capture_output=True, text=True).stdout
print("CHILD_SAME=%s" % (child == open(sys.argv[1]).read()))
PY
	cat >img.yaml <<YAML
name: imgfile
version: "0.3.12"
security:
  attestation:
    mode: none
services:
  - name: py
    image_name: app_image
    command: python3 $CASE_DIR/read.py $CASE_DIR/app/app.conf
  - name: greedy
    image_name: narrow_image
    command: python3 $CASE_DIR/read.py $CASE_DIR/app/app.conf
images:
  - name: app_image
    injection_files:
      - path: $CASE_DIR/app/app.conf
    provide_secrets: [db_password, api_key]
  - name: narrow_image
    injection_files:
      - path: $CASE_DIR/app/app.conf
    provide_secrets: [db_password]
secrets:
  - name: db_password
    kind: ascii
    value: 'pa"ss'
  - name: api_key
    kind: binary
    value: 00112233445566778899aabbccddeeff
YAML
	expect_created img.yaml
	expect_ok scone run --config-id imgfile/py -- "$PY"
	assert_grep '^password = pa"ss$' "$OUT"
	assert_grep '^key = 00112233445566778899aabbccddeeff$' "$OUT"
	assert_grep '^json = \{"pw": "pa\\"ss"\}$' "$OUT"
	assert_grep '^CHILD_SAME=True$' "$OUT"
	assert_same_file app.conf.orig app/app.conf
	# A reference to a secret the image may not use: the program does not start.
	expect_no_main "api_key" scone run --config-id imgfile/greedy -- "$PY"
	# The file is the host's: a reference added there is still held to provide_secrets,
	# and one to a secret the session does not have is refused.
	printf 'x = $$SCONE::nope$$\n' >app/app.conf
	expect_no_main "nope" scone run --config-id imgfile/py -- "$PY"
	# Another client (not the runtime CAS configured) cannot ask for the values.
	runtime_new "$CASE_DIR/rt"
	printf '{"config_id": "imgfile/py", "instance_token": "%064d", "path": "%s", "refs": [{"name": "db_password"}]}\n' \
		0 "$CASE_DIR/app/app.conf" >values.json
	http "$CASE_DIR/rt" POST /v1/service/values values.json application/json
	[ "$STATUS" != 200 ] || { show_file "$BODY"; fail "values given to a client with no configuration"; }
	if grep -q 'pa' "$BODY"; then fail "a secret in the refusal"; fi
	http anon POST /v1/service/values values.json application/json
	[ "$STATUS" != 200 ] || fail "values given without a client certificate"
}

case_x509_san() {
	start_cas
	cat >x509.yaml <<YAML
name: certs
version: "0.3.10"
security:
  attestation:
    mode: none
services:
  - name: cat
    image_name: certs_image
    command: cat /certs/server.crt
images:
  - name: certs_image
    injection_files:
      - path: /certs/server.crt
        content: \$\$SCONE::server:crt\$\$
secrets:
  - name: ca
    kind: x509-ca
  - name: server
    kind: x509
    issuer: ca
    common_name: web.example.com
    san: [dns:web.example.com, "dns:*.web.example.com", ip:10.0.0.1, ip:fd00::1]
    endpoint: server
    valid_for: 30 days
YAML
	expect_created x509.yaml
	expect_ok scone run --config-id certs/cat -- /usr/bin/cat
	openssl x509 -in "$OUT" -noout -ext subjectAltName,extendedKeyUsage >san.txt 2>&1 || { cat san.txt; fail "not a certificate"; }
	assert_grep 'DNS:web.example.com' san.txt
	assert_grep 'DNS:\*\.web\.example\.com' san.txt
	assert_grep 'IP Address:10.0.0.1' san.txt
	assert_grep 'IP Address:FD00:0:0:0:0:0:0:1' san.txt
	assert_grep 'TLS Web Server Authentication' san.txt
	openssl x509 -in "$OUT" -noout -checkend $((29 * 86400)) >/dev/null || fail "valid_for: 30 days not honoured"
	if openssl x509 -in "$OUT" -noout -checkend $((31 * 86400)) >/dev/null; then fail "valid for more than 30 days"; fi
}

case_pgp() {
	command -v gpg >/dev/null || t_skip_case "gpg not installed (scripts/install-deps.sh)"
	start_cas
	cat >pgp.yaml <<YAML
name: pgp
version: "0.3.10"
security:
  attestation:
    mode: none
services:
  - name: cat
    image_name: pgp_image
    command: cat /pgp/public.asc /pgp/private.asc
images:
  - name: pgp_image
    injection_files:
      - path: /pgp/public.asc
        content: \$\$SCONE::signer:publickey:asciiarmored\$\$
      - path: /pgp/private.asc
        content: \$\$SCONE::signer:privatekey:asciiarmored\$\$
secrets:
  - name: signer
    kind: pgp-key
YAML
	expect_created pgp.yaml
	expect_ok scone run --config-id pgp/cat -- /usr/bin/cat
	awk '/BEGIN PGP PUBLIC KEY BLOCK/,/END PGP PUBLIC KEY BLOCK/' "$OUT" >public.asc
	awk '/BEGIN PGP PRIVATE KEY BLOCK/,/END PGP PRIVATE KEY BLOCK/' "$OUT" >private.asc
	[ -s public.asc ] && [ -s private.asc ] || { show_output; fail "no armored keys"; }
	export GNUPGHOME=$CASE_DIR/gnupg
	mkdir -m 700 "$GNUPGHOME"
	gpg --batch --import public.asc >gpg.log 2>&1 || { cat gpg.log; fail "gpg refused the public key"; }
	gpg --batch --import private.asc >>gpg.log 2>&1 || { cat gpg.log; fail "gpg refused the private key"; }
	local fpr
	fpr=$(gpg --batch --with-colons --list-secret-keys | awk -F: '/^fpr:/ {print $10; exit}')
	[ -n "$fpr" ] || { cat gpg.log; fail "no secret key after import"; }
	echo "attack at dawn" >msg.txt
	gpg --batch --yes --trust-model always -r "$fpr" -o msg.gpg -e msg.txt >>gpg.log 2>&1 || { cat gpg.log; fail "encrypt"; }
	gpg --batch --yes -o msg.out -d msg.gpg >>gpg.log 2>&1 || { cat gpg.log; fail "decrypt"; }
	assert_same_file msg.txt msg.out
	gpg --batch --yes -u "$fpr" -o msg.sig --detach-sign msg.txt >>gpg.log 2>&1 || { cat gpg.log; fail "sign"; }
	gpg --batch --verify msg.sig msg.txt >>gpg.log 2>&1 || { cat gpg.log; fail "verify"; }
	# The same key at every start (rendered from what CAS stored).
	expect_ok scone run --config-id pgp/cat -- /usr/bin/cat
	awk '/BEGIN PGP PUBLIC KEY BLOCK/,/END PGP PUBLIC KEY BLOCK/' "$OUT" >public2.asc
	assert_same_file public.asc public2.asc
}

case_fragment_access() {
	start_cas
	local owner_hash other_hash
	owner_hash=$(cat "$CASE_DIR/owner/keyhash")
	owner_new "$CASE_DIR/other"
	other_hash=$(cat "$CASE_DIR/other/keyhash")
	use_id "$CASE_DIR/owner"
	cat >gov.yaml <<YAML
name: gov
version: "0.3.10"
security:
  attestation:
    mode: none
secrets:
  - name: readers
    kind: config-fragment
    value: [$other_hash]
    export: [app]
YAML
	expect_created gov.yaml
	cat >app.yaml <<YAML
name: app
version: "0.3.10"
access_policy:
  read:
    - CREATOR
    - \$\$SCONE::readers\$\$
  update: [CREATOR]
security:
  attestation:
    mode: none
services:
  - name: py
    command: python3 -c pass
secrets:
  - name: readers
    kind: config-fragment
    import:
      session: gov
YAML
	expect_created app.yaml
	use_id "$CASE_DIR/other"
	expect_ok scone session read app
	assert_grep 'name: app' "$OUT"
	# The fragment changes: the permission follows at the next check.
	use_id "$CASE_DIR/owner"
	stored_hash gov
	sed -i "s/value: \[$other_hash\]/value: [$owner_hash]/" gov.yaml
	printf 'predecessor: %s\n' "$HASH" >>gov.yaml
	expect_updated gov.yaml
	use_id "$CASE_DIR/other"
	expect_fail_with "" scone session read app
	# An unavailable fragment entry is ignored, as SCONE does: the creator still reads.
	use_id "$CASE_DIR/owner"
	expect_ok scone session delete gov
	expect_ok scone session read app
}

case_volume_alias() {
	start_cas
	cat >producer.yaml <<YAML
name: producer
version: "0.3.10"
security:
  attestation:
    mode: none
services:
  - name: py
    image_name: img
    command: python3 -c pass
images:
  - name: img
    volumes:
      - name: data
        path: $CASE_DIR/pdata
volumes:
  - name: data
    export:
      - to:
          session: consumer
        volume_alias: shared
        update_policy: ephemeral
YAML
	expect_created producer.yaml
	cat >consumer.yaml <<YAML
name: consumer
version: "0.3.10"
security:
  attestation:
    mode: none
services:
  - name: py
    image_name: img
    command: python3 -c pass
images:
  - name: img
    volumes:
      - name: mine
        path: $CASE_DIR/cdata
        update_policy: ephemeral
volumes:
  - name: mine
    import:
      session: producer
      volume: shared
YAML
	expect_created consumer.yaml
	mkdir -p pdata cdata
	expect_ok scone run --config-id producer/py -- "$PY" # initialises the volume
	runtime_new "$CASE_DIR/rt"
	fetch_config "$CASE_DIR/rt" producer/py
	[ "$STATUS" = 200 ] || { show_file "$BODY"; fail "producer config: $STATUS"; }
	cp "$BODY" producer.json
	fetch_config "$CASE_DIR/rt" consumer/py
	[ "$STATUS" = 200 ] || { show_file "$BODY"; fail "consumer config: $STATUS"; }
	cp "$BODY" consumer.json
	assert_eq "$(jget producer.json 'd["volumes"][0]["key"]')" "$(jget consumer.json 'd["volumes"][0]["key"]')" \
		"the consumer's volume key is the producer's"
	# The volume's own name is not what was exported: importing it by that name is refused.
	sed -i 's/volume: shared/volume: data/' consumer.yaml
	stored_hash consumer
	printf 'predecessor: %s\n' "$HASH" >>consumer.yaml
	expect_ok scone session update consumer.yaml
	fetch_config "$CASE_DIR/rt" consumer/py
	[ "$STATUS" != 200 ] || fail "a volume imported by its own name, not the alias it was exported as"
}

case_templates() {
	start_cas
	cat >tmpl.yaml <<'YAML'
name: $APP_NAME
version: "0.3.10"
security:
  attestation:
    mode: none
services:
  - name: py
    command: python3 -c "print('${GREETING}')" --token $$SCONE::t:hex$$
secrets:
  - name: t
    kind: binary
YAML
	expect_fail_with 'Value for variable \$APP_NAME is missing at line 1 column 7' \
		scone session create -e GREETING=hi tmpl.yaml
	expect_fail_with 'Value for variable \$GREETING is missing at line 8 column' \
		scone session create -e APP_NAME=templated tmpl.yaml
	APP_NAME=from-env GREETING=hi expect_ok scone session create --use-env -e APP_NAME=templated tmpl.yaml
	expect_ok scone session read templated
	assert_grep "print\('hi'\)" "$OUT"
	assert_grep '\$\$SCONE::t:hex\$\$' "$OUT"
	expect_ok scone session hash -e APP_NAME=templated -e GREETING=hi tmpl.yaml
	local filled
	filled=$(cat "$OUT")
	stored_hash templated
	assert_eq "$HASH" "$filled" "hash of the filled template"
	expect_fail_with "session read: no such session|NOT_FOUND|not found" scone session read from-env
}

case_warnings() {
	start_cas
	cat >old.yaml <<'YAML'
name: old-forms
version: "0.3"
security:
  attestation:
    mode: none
services:
  - name: py
    command: python3 -c pass
    environment:
      CERT: $$SCONE::server.crt$$
secrets:
  - name: server
    kind: x509
YAML
	expect_ok scone session create old.yaml
	assert_grep "warning: .*\\\$\\\$SCONE::server.crt\\\$\\\$ is SCONE's form from before 5.2" "$ERR"
	expect_ok scone session check --compat old.yaml
	assert_grep "warning: 10:13: services\[0\].environment.CERT" "$ERR"
}

case_readback() {
	start_cas
	owner_new "$CASE_DIR/other"
	use_id "$CASE_DIR/owner"
	cat >team.yaml <<YAML
name: team
version: "0.3.12"
YAML
	expect_created team.yaml
	local team_hash=$HASH
	# creator: SCONE's read-back key, re-uploaded: only the uploader's own certificate
	{
		printf 'name: team/app\nversion: "0.3.12"\ncreator: |\n'
		sed 's/^/  /' "$CASE_DIR/other/owner.crt"
	} >forged.yaml
	expect_fail_with "creator names another key" scone session create forged.yaml
	{
		printf 'name: team/app\nversion: "0.3.12"\nnamespace_hash: %s\ncreator: |\n' "$team_hash"
		sed 's/^/  /' "$CASE_DIR/owner/owner.crt"
	} >own.yaml
	expect_ok scone session create own.yaml
	assert_grep "warning: .*creator is set by CAS" "$ERR"
	# namespace_hash: the parent must still have that hash; its hash is not told
	printf 'name: team/late\nversion: "0.3.12"\nnamespace_hash: %064d\n' 0 >late.yaml
	expect_fail_with "does not have the namespace_hash given" scone session create late.yaml
	if grep -q "$team_hash" "$ERR"; then fail "the namespace's hash was told"; fi
	# another owner may not claim to be the creator in an update either
	stored_hash team/app
	{
		printf 'name: team/app\nversion: "0.3.12"\npredecessor: %s\ncreator: |\n' "$HASH"
		sed 's/^/  /' "$CASE_DIR/other/owner.crt"
	} >update.yaml
	expect_fail_with "creator names another key" scone session update update.yaml
}

run_case "sessions: \\@\\@NAME takes NAME from the host (empty when unset, never expanded, never a variable named \\@\\@NAME)" case_host_env
run_case "sessions: service_access_token - no, a wrong or another token keeps main from running, both ways; the program never sees it" case_access_token
run_case "sessions: an image's own injection file is filled at start within provide_secrets; the host file is unchanged" case_image_file
run_case "sessions: x509 san dns:/ip: entries, endpoint and valid_for in the issued certificate" case_x509_san
run_case "sessions: pgp-key renders keys gpg imports, encrypts, decrypts and signs with" case_pgp
run_case "sessions: access_policy from an imported config-fragment, re-evaluated when it changes or goes" case_fragment_access
run_case "sessions: a volume exported with volume_alias is imported under the alias only" case_volume_alias
run_case "sessions: session templates with -e and --use-env; SCONE's missing-variable message" case_templates
run_case "sessions: CAS and check print warnings for SCONE's old reference forms" case_warnings
run_case "sessions: creator (read back) only as the uploader's own key; namespace_hash checked without telling the hash" case_readback
t_done
