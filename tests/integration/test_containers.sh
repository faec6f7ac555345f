#!/usr/bin/env bash
# Secure containers on a real engine: a private dockerd (ctr_lib.sh) builds
# scone's images from deploy/ without any registry, `scone image sconify`
# turns a Python web app image into one whose code is encrypted, and the
# compose file and the swarm stack run CAS and redis-server under the
# runtime with an encrypted volume. Each case checks what an operator of the
# engine can see (images, `docker inspect`, volumes on the host, /proc) and
# kills containers and tasks to see them come back with their configuration.
# Skipped, with the reason, where no engine can start.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
. tests/integration/lib.sh
. tests/integration/cas_lib.sh
. tests/integration/ctr_lib.sh
t_init
cas_require
T_CMD_TIMEOUT=300

# Where no engine can start, every case that needs one says so by name (kube-validate needs none).
ENGINE_CASES=(images sconify compose compose-postgres swarm kube-podman)
skip_engine_cases() {
	local c
	for c in "${ENGINE_CASES[@]}"; do t_skip "$c" "$1"; done
	run_case kube-validate case_kube_validate
	t_done
	exit
}
reason=$(ctr_engine_reason)
trap 'ctr_stop; t_cleanup' EXIT
if [ -z "$reason" ] && ! ctr_start 2>"$T_TMP/ctr_start.err"; then
	reason="dockerd cannot start here: $(grep -v '^[[:space:]]*$' "$T_TMP/ctr_start.err" | tail -1)"
	ctr_stop
fi

# ---------------- images ----------------

case_images() {
	T_CMD_TIMEOUT=900 expect_ok "$ROOT/deploy/build-images.sh" # debootstrap, the first time on a machine
	for i in scone/debian:bookworm scone/runtime:latest scone/cas:latest scone-example/pyweb:native; do
		dk image inspect "$i" >/dev/null || fail "image $i was not built"
	done
	if las_available; then dk image inspect scone/las:latest >/dev/null || fail "scone/las was not built"; fi
	# The runtime layer: scone run is the entrypoint, and scone finds its libraries beside it.
	assert_eq '["/opt/scone/bin/scone","run","--"]' "$(dk image inspect -f '{{json .Config.Entrypoint}}' scone/runtime:latest)" \
		"scone/runtime's entrypoint"
	expect_ok dk run --rm --network none --entrypoint /opt/scone/bin/scone scone/runtime:latest version
	# Nothing was pulled: every image comes from the imported root file system.
	assert_no_grep 'pull' "$CTR_DIR/dockerd.log"
	assert_eq "" "$(dk image ls --format '{{.Repository}}' | grep -vE '^(scone|scone-example)/' || true)" "images not built here"
}

# ---------------- sconify ----------------

WEB_LAS=() # -v of the LAS socket's directory, when the LAS runs
web_start() { # NAME FINGERPRINT [IMAGE]
	dk run -d --name "$1" --network sct-net -p 127.0.0.1::8080 -e SCONE_CAS_ADDR=sct-cas:8081 \
		-e SCONE_CAS_FINGERPRINT="$2" -v sct-webdata:/data "${WEB_LAS[@]}" ${3:-scone-example/pyweb:secure} >/dev/null
}

web_port() { dk port "$1" 8080/tcp | head -1 | sed 's/.*://'; }

sconify_cleanup() {
	dk rm -f sct-web sct-web2 sct-web3 sct-cas sct-las >/dev/null 2>&1
	dk volume rm -f sct-webdata sct-cas-state sct-las-state >/dev/null 2>&1
	dk network rm sct-net >/dev/null 2>&1
}

case_sconify() {
	local fp port token=tok-$RANDOM$RANDOM las_args=() cid
	CASE_CLEANUP_HOOK=sconify_cleanup
	cas_case_begin
	# The owner's inputs are wrong: usage errors, nothing made.
	expect_usage_error scone image sconify --session s --dir /app --dir /app/lib scone-example/pyweb:native x:1
	expect_usage_error scone image sconify --session s --dir / scone-example/pyweb:native x:1
	expect_usage_error scone image sconify --session s --mode las scone-example/pyweb:native x:1
	expect_fail_with 'image inspect' scone image sconify --session s --dir /app no-such/image:1 x:1
	if las_available; then
		dk volume create sct-las-state >/dev/null
		las_args=(--platform "$(dk run --rm -v sct-las-state:/var/lib/scone-las --entrypoint scone-las scone/las:latest \
			--print-identity --state-dir /var/lib/scone-las)")
		# The host's LAS with that key, its socket shared with the app's containers.
		mkdir -p "$CASE_DIR/las-run"
		dk run -d --name sct-las --pid host "${LAS_CAPS[@]}" -v sct-las-state:/var/lib/scone-las \
			-v "$CASE_DIR/las-run:/run/scone" scone/las:latest >/dev/null
		wait_until 20 test -S "$CASE_DIR/las-run/las.sock" || { dk logs sct-las; fail "the LAS made no socket"; }
		WEB_LAS=(-v "$CASE_DIR/las-run:/run/scone")
	fi
	expect_ok scone image sconify --session demo/pyweb --service web --dir /app --volume data:/data \
		--secret API_TOKEN "${las_args[@]}" --session-out web.yaml scone-example/pyweb:native scone-example/pyweb:secure
	assert_eq 600 "$(stat -c %a web.yaml)" "mode of the session file (it holds the code volume's key)"
	assert_grep 'fspf_key: [0-9a-f]{64}' web.yaml
	assert_grep 'API_TOKEN: \$\$SCONE::api_token\$\$' web.yaml
	# The code is in the native image, and in no layer of the new one.
	image_holds scone-example/pyweb:native guestbook-code-marker || fail "the marker is not found in the native image (check broken)"
	if image_holds scone-example/pyweb:secure guestbook-code-marker; then fail "plaintext of the code in a layer of the new image"; fi
	if image_holds scone-example/pyweb:secure "def do_POST"; then fail "plaintext of the code in a layer of the new image"; fi
	dk run --rm --network none --entrypoint /bin/ls scone-example/pyweb:secure /app >ls.out
	assert_eq "" "$(grep -vxE '[0-9a-f]{32}|volume\.fspf' ls.out || true)" "file names in /app (hex ids only)"
	# CAS in a container; the owner uploads the session with a token of its own.
	dk network create sct-net >/dev/null
	dk run -d --name sct-cas --network sct-net -v sct-cas-state:/var/lib/scone-cas -p 127.0.0.1::8081 scone/cas:latest >/dev/null
	wait_until 20 dk exec sct-cas test -s /var/lib/scone-cas/cas.crt || fail "CAS made no certificate"
	fp=$(cas_fp_of sct-cas)
	owner_for "127.0.0.1:$(dk port sct-cas 8081/tcp | head -1 | sed 's/.*://')" "$fp"
	sed "s/    size: 32/    value: \"$token\"/" web.yaml >upload.yaml
	expect_ok scone session create upload.yaml
	# The sconified app runs: its code decrypted inside, its token from CAS, its database encrypted.
	web_start sct-web "$fp"
	port=$(web_port sct-web)
	wait_until 30 curl -sf "http://127.0.0.1:$port/healthz" || { dk logs sct-web; fail "the web app did not come up"; }
	assert_eq 403 "$(curl -s -o /dev/null -w '%{http_code}' -X POST --data nope "http://127.0.0.1:$port/entries")" "POST without the token"
	assert_eq 201 "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $token" \
		--data guestbook-entry-marker-31 "http://127.0.0.1:$port/entries")" "POST with the token from CAS"
	curl -s "http://127.0.0.1:$port/entries" | grep -q guestbook-entry-marker-31 || fail "the entry is not listed"
	dk inspect sct-web >inspect.json
	assert_no_grep "$token" inspect.json
	assert_no_grep "$token" "/proc/$(dk inspect -f '{{.State.Pid}}' sct-web)/environ"
	assert_no_grep "$token" "/proc/$(dk inspect -f '{{.State.Pid}}' sct-web)/cmdline"
	dk stop -t 5 sct-web >/dev/null # its last commit and tag report
	mp=$(dk volume inspect -f '{{.Mountpoint}}' sct-webdata)
	[ -s "$mp/volume.fspf" ] || fail "the data volume has no protection file"
	if grep -raqF -e guestbook-entry-marker-31 -e "CREATE TABLE" "$mp"; then fail "plaintext in the data volume on the host"; fi
	# It starts again from the same volume (CAS tracks its tag).
	dk rm sct-web >/dev/null
	web_start sct-web2 "$fp"
	port=$(web_port sct-web2)
	wait_until 30 curl -sf "http://127.0.0.1:$port/healthz" || { dk logs sct-web2; fail "the second start did not come up"; }
	curl -s "http://127.0.0.1:$port/entries" | grep -q guestbook-entry-marker-31 || fail "the entry did not survive a restart"
	dk rm -f sct-web2 >/dev/null
	# Someone who can change the image (a registry, a layer on top) changes a code file: it does not run.
	cid=$(dk create --name sct-web3 --network sct-net -e SCONE_CAS_ADDR=sct-cas:8081 -e SCONE_CAS_FINGERPRINT="$fp" \
		-v sct-webdata:/data "${WEB_LAS[@]}" scone-example/pyweb:secure)
	for f in $(grep -vx volume.fspf ls.out); do
		dk cp "$cid:/app/$f" victim
		# both slots of the first integrity node and of the first data chunk
		for b in $(node_block 0 0) $(node_block 0 1) $(data_block 0 0) $(data_block 0 1); do
			flip_byte victim $((b * VOL_BLOCK + 100))
		done
		dk cp victim "$cid:/app/$f"
	done
	timeout 60 "$DOCKER" start -a sct-web3 >web3.out 2>&1 || true
	cat web3.out
	# The changed code never runs. (python3 is seen to exit 0 here without a word: the
	# read of a tampered file should fail with EIO; followed up in the runtime.)
	assert_no_grep 'guestbook listening' web3.out
	assert_eq exited "$(dk inspect -f '{{.State.Status}}' sct-web3)" "state of the container with changed code files"
	# ... or changes the protection file: the runtime refuses before main.
	dk rm -f sct-web3 >/dev/null
	cid=$(dk create --name sct-web3 --network sct-net -e SCONE_CAS_ADDR=sct-cas:8081 -e SCONE_CAS_FINGERPRINT="$fp" \
		-v sct-webdata:/data "${WEB_LAS[@]}" scone-example/pyweb:secure)
	dk cp "$cid:/app/volume.fspf" victim
	flip_byte victim 100
	dk cp victim "$cid:/app/volume.fspf"
	dk start -a sct-web3 >web3.out 2>&1 || true
	cat web3.out
	assert_eq 1 "$(dk inspect -f '{{.State.ExitCode}}' sct-web3)" "exit status with a changed protection file"
	assert_grep 'scone: error: cannot start: volumes: .*volume app at /app' web3.out
	assert_no_grep 'guestbook listening' web3.out
	dk rm -f sct-web3 >/dev/null
	# The wrong CAS (another fingerprint): nothing starts.
	web_start sct-web3 "$(printf '%064d' 0)"
	wait_until 60 test "$(dk inspect -f '{{.State.Status}}' sct-web3)" = exited || fail "a start with a wrong CAS pin kept running"
	dk logs sct-web3 2>&1 | grep -q 'cannot start' || fail "no clear message for the wrong CAS"
}

# ---------------- compose ----------------

compose() { "$COMPOSE" -f "$ROOT/deploy/compose/docker-compose.yml" -p sctc "$@"; }

client() { # redis commands on stdin
	compose run --rm -T client 2>/dev/null
}

compose_cleanup() {
	"$COMPOSE" -f "$ROOT/deploy/compose/docker-compose.yml" -p sctc --profile las --profile client down -v \
		--remove-orphans >/dev/null 2>&1
}

# The session, in mode las when the LAS is there (measurements taken in the image, the LAS's platform id).
compose_session() {
	local plat mr mc
	if ! las_available; then
		cp "$ROOT/deploy/compose/redis-session.yaml" session.yaml
		return
	fi
	plat=$(compose exec -T las scone-las --print-identity --state-dir /var/lib/scone-las | tr -d '\r')
	mr=$(measure_in scone/runtime:latest redis-server)
	mc=$(measure_in scone/runtime:latest redis-cli)
	sed -e 's/^    mode: none/    mode: las/' \
		-e "s|^    pwd: /data|    pwd: /data\n    attestation: {mrenclave: [$mr], platforms: [$plat]}|" \
		-e "s|^    command: redis-cli \(.*\)|    command: redis-cli \1\n    attestation: {mrenclave: [$mc], platforms: [$plat]}|" \
		"$ROOT/deploy/compose/redis-session.yaml" >session.yaml
}

# ctr_redis_cli ARGS...: Debian's redis-cli in a container of the compose network, not under the
# runtime (no shield); stdin goes to it, /tmp/ca.crt holds $CA_PEM (a public certificate).
ctr_redis_cli() {
	dk run --rm -i --network sctc_scone -e CA_PEM="${CA_PEM:-}" --entrypoint /bin/sh scone/runtime:latest -c \
		'printf "%s\n" "$CA_PEM" >/tmp/ca.crt && exec timeout 20 redis-cli "$@"' sh "$@"
}

# compose_shield PASSWORD: redis answers TLS only, with the session's certificate, and the attested
# client reaches it through its network shield.
compose_shield() {
	local pw=$1
	# The client's runtime shields its connection to redis (SCONE_VERSION=1: the shield's view at start).
	echo PING | compose run --rm -T -e SCONE_VERSION=1 client >shielded.out 2>shielded.err || true
	assert_eq PONG "$(tr -d '\r' <shielded.out)" "PING through the shielded client"
	assert_grep 'network shield protected' shielded.err
	assert_grep 'network shield client 1 \(TCP:redis:6379\): protected' shielded.err
	# A plain redis-cli on the network, even with the password (sent on stdin), is refused:
	# the server speaks TLS only, and its runtime says why it dropped the connection.
	printf 'AUTH %s\nGET greeting\nPING\n' "$pw" | ctr_redis_cli -h redis >plain.out 2>&1 || true
	cat plain.out
	assert_no_grep 'compose-value-marker-77|PONG|^OK' plain.out
	wait_until 10 sh -c "$COMPOSE -f $ROOT/deploy/compose/docker-compose.yml -p sctc logs redis 2>&1 | grep -q 'network shield: .*TLS .*failed'" ||
		{ compose logs redis | tail -20; fail "redis's runtime did not report the refused plain client"; }
	# A standard TLS client that trusts the certificate CAS exports for the secret redis_tls gets in;
	# one that trusts another certificate (CAS's own) does not.
	expect_ok scone session read demo/redis --json
	jget "$OUT" '[s["public"] for s in d["secrets"] if s["name"] == "redis_tls"][0]' >redis_tls.crt
	grep -q 'BEGIN CERTIFICATE' redis_tls.crt || fail "no certificate for the secret redis_tls from CAS"
	printf 'AUTH %s\nGET greeting\n' "$pw" | CA_PEM=$(cat redis_tls.crt) ctr_redis_cli --tls --cacert /tmp/ca.crt --sni redis \
		-h redis >tls.out 2>&1 || true
	grep -q compose-value-marker-77 tls.out || { cat tls.out; fail "redis-cli --tls with the session's certificate got no answer"; }
	printf 'AUTH %s\nGET greeting\n' "$pw" | CA_PEM=$(dk exec sctc_cas_1 cat /var/lib/scone-cas/cas.crt) \
		ctr_redis_cli --tls --cacert /tmp/ca.crt --sni redis -h redis >tls-other.out 2>&1 || true
	cat tls-other.out
	assert_no_grep 'compose-value-marker-77|^OK' tls-other.out
	# The answers above came from the shielded server after the refused clients.
	assert_eq compose-value-marker-77 "$(echo 'GET greeting' | client | tr -d '\r')" "GET through the shielded client after the refused ones"
}

case_compose() {
	local port pw pid mp c
	CASE_CLEANUP_HOOK=compose_cleanup
	cas_case_begin
	port=$(free_port)
	export SCONE_CAS_PORT=$port
	compose up -d cas >/dev/null 2>&1 || fail "compose up cas"
	wait_until 20 dk exec sctc_cas_1 test -s /var/lib/scone-cas/cas.crt || fail "CAS made no certificate"
	SCONE_CAS_FINGERPRINT=$(cas_fp_of sctc_cas_1)
	export SCONE_CAS_FINGERPRINT
	if las_available; then
		compose --profile las up -d las >/dev/null 2>&1 || fail "compose up las"
		wait_until 20 compose exec -T las test -S /run/scone/las.sock || fail "the LAS made no socket"
	fi
	owner_for "127.0.0.1:$port" "$SCONE_CAS_FINGERPRINT"
	compose_session
	expect_ok scone session create session.yaml
	compose up -d redis >/dev/null 2>&1 || fail "compose up redis"
	wait_until 30 sh -c "echo PING | $COMPOSE -f $ROOT/deploy/compose/docker-compose.yml -p sctc run --rm -T client 2>/dev/null | grep -q PONG" ||
		{ compose logs redis | tail -20; fail "redis and its client did not get their configuration"; }
	assert_eq OK "$(echo 'SET greeting compose-value-marker-77' | client)" "SET through the attested client"
	pw=$(echo 'CONFIG GET requirepass' | client | sed -n 2p)
	[ ${#pw} -eq 32 ] || fail "the password CAS generated is not there (got '${#pw}' characters)"
	compose_shield "$pw"
	# Nothing secret where the engine's operator looks (the password, the shield's key and variables).
	compose config >config.txt 2>&1
	for c in $(dk ps -aq); do dk inspect "$c"; done >inspect.json
	dk image inspect scone/runtime:latest scone/cas:latest >images.json
	assert_no_grep "$pw" "$ROOT/deploy/compose/docker-compose.yml" config.txt inspect.json images.json
	assert_no_grep 'SCONE_NETWORK_SHIELD|PRIVATE KEY' "$ROOT/deploy/compose/docker-compose.yml" config.txt inspect.json images.json
	if image_holds scone/runtime:latest "$pw"; then fail "the password is in a layer of scone/runtime"; fi
	pid=$(dk inspect -f '{{.State.Pid}}' sctc_redis_1)
	assert_no_grep "$pw" "/proc/$pid/cmdline" "/proc/$pid/environ"
	assert_no_grep 'SCONE_NETWORK_SHIELD|PRIVATE KEY' "/proc/$pid/cmdline" "/proc/$pid/environ"
	mp=$(dk volume inspect -f '{{.Mountpoint}}' sctc_redis-data)
	[ -s "$mp/volume.fspf" ] || fail "the redis volume has no protection file"
	if grep -raqF -e compose-value-marker-77 -e "$pw" -e REDIS "$mp"; then fail "plaintext in redis's volume on the host"; fi
	# A killed redis is restarted by the engine and gets its configuration again.
	kill -9 "$pid"
	wait_until 30 test "$(dk inspect -f '{{.RestartCount}}' sctc_redis_1)" -ge 1 || fail "redis was not restarted"
	wait_until 30 sh -c "echo GET greeting | $COMPOSE -f $ROOT/deploy/compose/docker-compose.yml -p sctc run --rm -T client 2>/dev/null | grep -q compose-value-marker-77" ||
		{ compose logs redis | tail -20; fail "the restarted redis lost its data or its configuration"; }
	assert_ne "$pid" "$(dk inspect -f '{{.State.Pid}}' sctc_redis_1)" "redis's pid after the restart"
	# down and up: named volumes keep CAS's state and redis's data.
	compose down >/dev/null 2>&1 || fail "compose down"
	if las_available; then
		compose --profile las up -d las >/dev/null 2>&1 || fail "compose up las after down"
		wait_until 20 compose exec -T las test -S /run/scone/las.sock || fail "the LAS made no socket after down/up"
	fi
	compose up -d redis >/dev/null 2>&1 || fail "compose up after down"
	assert_eq "$SCONE_CAS_FINGERPRINT" "$(cas_fp_of sctc_cas_1)" "CAS's identity after down/up"
	wait_until 30 sh -c "echo GET greeting | $COMPOSE -f $ROOT/deploy/compose/docker-compose.yml -p sctc run --rm -T client 2>/dev/null | grep -q compose-value-marker-77" ||
		{ compose logs redis | tail -20; fail "the data did not survive down/up"; }
	# A client without the session's configuration (no CAS pin) learns nothing.
	echo PING | compose run --rm -T -e SCONE_CAS_FINGERPRINT="$(printf '%064d' 0)" client >wrong.out 2>&1 || true
	assert_no_grep PONG wrong.out
	assert_grep 'cannot start' wrong.out
}

# ---------------- compose: CAS replicas on PostgreSQL ----------------

PGC_FILE=$ROOT/deploy/compose/docker-compose.postgres.yml
PG_FP=
compose_pg() { "$COMPOSE" -f "$PGC_FILE" -p sctp "$@"; }

compose_pg_cleanup() { compose_pg down -v --remove-orphans >/dev/null 2>&1; }

# pg_sql SQL: one value from CAS's database, as PostgreSQL's superuser inside its container.
pg_sql() {
	dk exec sctp_pg_1 setpriv --reuid=postgres --regid=postgres --init-groups -- psql -h /tmp -d scone -XAqt -c "$1"
}

# pg_app ADDR: the session's app started by the runtime in a container, its configuration from the
# CAS at ADDR (a name in the compose network); prints what the app prints (MARK, then PW), its
# stderr in pg_app.err.
pg_app() {
	dk run --rm --network sctp_scone -e SCONE_CAS_ADDR="$1" -e SCONE_CAS_FINGERPRINT="$PG_FP" \
		-e SCONE_CONFIG_ID=demo/pgcas/app scone/runtime:latest printenv 2>pg_app.err
}

pg_session() { # FILE MARK
	cat >"$1" <<EOF
name: demo/pgcas
version: "0.3"
security:
  attestation:
    mode: none
services:
  - name: app
    command: printenv MARK PW
    environment:
      MARK: $2
      PW: \$\$SCONE::pw\$\$
secrets:
  - name: pw
    kind: ascii
    size: 24
EOF
}

# The compose file's PostgreSQL variant: PostgreSQL from Debian's package, key material from
# scone-cas init, two replicas; one session through both, one replica killed.
case_compose_pg() {
	local p1 p2 pw dbpw mk mp c pid out1 out2 mark=pg-replica-marker-$RANDOM$RANDOM
	CASE_CLEANUP_HOOK=compose_pg_cleanup
	cas_case_begin
	T_CMD_TIMEOUT=900 expect_ok "$ROOT/deploy/build-images.sh" postgres
	assert_no_grep 'pull' "$CTR_DIR/dockerd.log"
	p1=$(free_port)
	p2=$(free_port)
	export SCONE_CAS_PORT=$p1 SCONE_CAS2_PORT=$p2
	compose_pg up -d >up.log 2>&1 || { cat up.log; compose_pg logs | tail -40; fail "compose up of the PostgreSQL variant"; }
	wait_until 90 curl -skf "https://127.0.0.1:$p1/healthz" || { compose_pg logs | tail -40; fail "replica cas-1 does not answer"; }
	wait_until 30 curl -skf "https://127.0.0.1:$p2/healthz" || { compose_pg logs | tail -40; fail "replica cas-2 does not answer"; }
	assert_eq 0 "$(dk inspect -f '{{.State.ExitCode}}' sctp_cas-init_1)" "exit status of cas-init"
	# One identity: the pin made against one replica fits the other.
	PG_FP=$(cas_fp_of sctp_cas-1_1)
	assert_eq "$PG_FP" "$(cas_fp_of sctp_cas-2_1)" "the replicas' certificates"
	owner_for "127.0.0.1:$p1" "$PG_FP"
	expect_ok scone cas trust "127.0.0.1:$p2" --fingerprint "$PG_FP"
	# Upload through cas-1, read through cas-2, the configuration from each.
	pg_session s.yaml "$mark"
	expect_ok scone session create s.yaml --cas "127.0.0.1:$p1"
	expect_ok scone session read demo/pgcas --cas "127.0.0.1:$p2"
	assert_grep "$mark" "$OUT"
	out2=$(pg_app cas-2:8081)
	echo "$out2" | grep -qx "$mark" || { echo "$out2"; cat pg_app.err; fail "no configuration from cas-2"; }
	pw=$(echo "$out2" | sed -n 2p)
	[ ${#pw} -eq 24 ] || { echo "$out2"; cat pg_app.err; fail "the generated secret did not come from cas-2"; }
	out1=$(pg_app cas-1:8081)
	assert_eq "$out2" "$out1" "configurations from cas-1 and cas-2 (one generated secret)"
	assert_eq "$out2" "$(pg_app cas:8081)" "configuration through the name both replicas answer to"
	# Each replica logged its own release in the shared audit log.
	for c in cas-1 cas-2; do
		[ "$(pg_sql "SELECT count(*) FROM scone_audit WHERE line LIKE '%\"replica\":\"$c\"%\"event\":\"release\"%'")" -ge 1 ] ||
			fail "no release by $c in the audit log"
	done
	# The database password: a passfile of mode 0600 for uid 10001, nowhere else in sight.
	mp=$(dk volume inspect -f '{{.Mountpoint}}' sctp_cas-db-pass)
	assert_eq "600 10001" "$(stat -c '%a %u' "$mp/pgpass")" "mode and owner of the replicas' passfile"
	dbpw=$(cut -d: -f5 "$mp/pgpass")
	[ ${#dbpw} -ge 32 ] || fail "no password in the passfile"
	compose_pg config >config.txt 2>&1
	for c in $(dk ps -aq); do dk inspect "$c"; done >inspect.json
	ps -eo args >ps.txt
	: >proc.txt
	for c in sctp_pg_1 sctp_cas-1_1 sctp_cas-2_1; do
		pid=$(dk inspect -f '{{.State.Pid}}' "$c")
		cat "/proc/$pid/cmdline" "/proc/$pid/environ" >>proc.txt
	done
	dk logs sctp_pg_1 >pg.log 2>&1
	assert_no_grep "$dbpw" "$PGC_FILE" config.txt inspect.json ps.txt proc.txt pg.log
	# The master key and the session's plaintext never reach the database's volume.
	mk=$(cat "$(dk volume inspect -f '{{.Mountpoint}}' sctp_cas-keys)/master.key")
	[ ${#mk} -ge 64 ] || fail "no master key in the cas-keys volume"
	mp=$(dk volume inspect -f '{{.Mountpoint}}' sctp_pg-data)
	pg_sql CHECKPOINT >/dev/null || fail "CHECKPOINT"
	if grep -raqF -e "$mark" -e "$pw" -e "$mk" "$mp"; then fail "plaintext or the master key in PostgreSQL's volume"; fi
	# Another client of the network cannot use the database: only scone_cas, only with its password.
	out1=$(dk run --rm --network sctp_scone --entrypoint /bin/sh scone/postgres:latest -c \
		'psql "postgres://postgres@pg:5432/postgres?connect_timeout=5" -c "select 1" </dev/null' 2>&1 || true)
	echo "$out1" | grep -qE 'password|no pg_hba.conf entry' || { echo "$out1"; fail "PostgreSQL let a client in without CAS's password"; }
	out1=$(dk run --rm --network sctp_scone --entrypoint /bin/sh scone/postgres:latest -c \
		'psql "postgres://scone_cas@pg:5432/scone?connect_timeout=5" -c "select 1" </dev/null' 2>&1 || true)
	echo "$out1" | grep -q 'password' || { echo "$out1"; fail "PostgreSQL let CAS's role in without its password"; }
	# cas-1 killed: cas-2 alone serves reads, updates and configurations.
	dk update --restart=no sctp_cas-1_1 >/dev/null
	kill -9 "$(dk inspect -f '{{.State.Pid}}' sctp_cas-1_1)"
	wait_until 20 test "$(dk inspect -f '{{.State.Running}}' sctp_cas-1_1)" = false || fail "cas-1 still runs"
	if curl -sk -m 5 "https://127.0.0.1:$p1/healthz" >/dev/null; then fail "cas-1 answers after kill -9"; fi
	expect_ok scone session read demo/pgcas --json --cas "127.0.0.1:$p2"
	pg_session u.yaml "$mark-2"
	echo "predecessor: $(jget "$OUT" 'd["hash"]')" >>u.yaml
	expect_ok scone session update u.yaml --cas "127.0.0.1:$p2"
	out2=$(pg_app cas-2:8081)
	echo "$out2" | grep -qx "$mark-2" || { echo "$out2"; cat pg_app.err; fail "cas-2 alone does not serve the update"; }
	assert_eq "$pw" "$(echo "$out2" | sed -n 2p)" "the generated secret after the update"
	out1=$(pg_app cas:8081)
	echo "$out1" | grep -qx "$mark-2" || { echo "$out1"; cat pg_app.err; fail "the shared name does not lead to the surviving replica"; }
	# cas-1 back: it serves what cas-2 wrote meanwhile, with the same identity.
	compose_pg up -d cas-1 >/dev/null 2>&1 || fail "compose up cas-1"
	wait_until 30 curl -skf "https://127.0.0.1:$p1/healthz" || { compose_pg logs cas-1 | tail -20; fail "cas-1 did not come back"; }
	assert_eq "$PG_FP" "$(cas_fp_of sctp_cas-1_1)" "cas-1's identity after its restart"
	out1=$(pg_app cas-1:8081)
	echo "$out1" | grep -qx "$mark-2" || { echo "$out1"; cat pg_app.err; fail "cas-1 does not serve the update made through cas-2"; }
	# down and up: cas-init leaves the key material alone, the store keeps the session.
	compose_pg down >/dev/null 2>&1 || fail "compose down"
	compose_pg up -d >/dev/null 2>&1 || fail "compose up after down"
	wait_until 60 curl -skf "https://127.0.0.1:$p2/healthz" || fail "cas-2 did not come back after down/up"
	assert_eq "$PG_FP" "$(cas_fp_of sctp_cas-2_1)" "the identity after down/up"
	expect_ok scone session read demo/pgcas --cas "127.0.0.1:$p2"
	assert_grep "$mark-2" "$OUT"
}

# ---------------- swarm ----------------

stack() { dk stack "$@"; }

task_of() { dk ps -q -f "label=com.docker.swarm.service.name=scts_$1" | head -1; }

swarm_client() { # redis commands on stdin
	dk run --rm -i --network scts_default -e SCONE_CAS_ADDR=cas:8081 -e SCONE_CAS_FINGERPRINT="$SCONE_CAS_FINGERPRINT" \
		-e SCONE_CONFIG_ID=demo/redis/client -v "$SCONE_LAS_DIR:/run/scone" scone/runtime:latest redis-cli 2>/dev/null
}

swarm_get() { echo "GET greeting" | swarm_client | grep -q swarm-value-marker-5; }

swarm_cleanup() {
	dk stack rm scts >/dev/null 2>&1
	dk rm -f sct-las >/dev/null 2>&1
	sleep 2
	dk swarm leave --force >/dev/null 2>&1
	dk ps -aq | xargs -r "$DOCKER" rm -f >/dev/null 2>&1
	dk volume ls -q | xargs -r "$DOCKER" volume rm -f >/dev/null 2>&1
	dk network prune -f >/dev/null 2>&1
}

case_swarm() {
	local port cas_task r old
	CASE_CLEANUP_HOOK=swarm_cleanup
	cas_case_begin
	port=$(free_port)
	export SCONE_CAS_PORT=$port SCONE_LAS_DIR=$CASE_DIR/las-run SCONE_CAS_FINGERPRINT=
	mkdir -p "$SCONE_LAS_DIR"
	dk swarm init --advertise-addr 127.0.0.1 --listen-addr "127.0.0.1:$(free_port)" >/dev/null || fail "swarm init"
	if las_available; then
		dk run -d --name sct-las --pid host "${LAS_CAPS[@]}" -v "$SCONE_LAS_DIR:/run/scone" scone/las:latest >/dev/null
		wait_until 20 test -S "$SCONE_LAS_DIR/las.sock" || fail "the LAS made no socket"
	fi
	expect_ok stack deploy -c "$ROOT/deploy/swarm/stack.yml" scts
	wait_until 60 sh -c "[ -n \"\$($DOCKER ps -q -f label=com.docker.swarm.service.name=scts_cas)\" ]" || fail "no CAS task"
	cas_task=$(task_of cas)
	wait_until 20 dk exec "$cas_task" test -s /var/lib/scone-cas/cas.crt || fail "CAS made no certificate"
	SCONE_CAS_FINGERPRINT=$(cas_fp_of "$cas_task")
	owner_for "127.0.0.1:$port" "$SCONE_CAS_FINGERPRINT"
	if las_available; then
		SCONE_LAS_PLATFORM=$(dk exec sct-las scone-las --print-identity --state-dir /var/lib/scone-las)
		sed -e 's/^    mode: none/    mode: las/' \
			-e "s|^    pwd: /data|    pwd: /data\n    attestation: {mrenclave: [$(measure_in scone/runtime:latest redis-server)], platforms: [$SCONE_LAS_PLATFORM]}|" \
			-e "s|^    command: redis-cli \(.*\)|    command: redis-cli \1\n    attestation: {mrenclave: [$(measure_in scone/runtime:latest redis-cli)], platforms: [$SCONE_LAS_PLATFORM]}|" \
			"$ROOT/deploy/compose/redis-session.yaml" >session.yaml
	else
		cp "$ROOT/deploy/compose/redis-session.yaml" session.yaml
	fi
	expect_ok scone session create session.yaml
	# The fingerprint is known now: the stack is deployed again with it (an update of redis).
	expect_ok stack deploy -c "$ROOT/deploy/swarm/stack.yml" scts
	wait_until 90 sh -c "echo PING | $DOCKER run --rm -i --network scts_default -e SCONE_CAS_ADDR=cas:8081 -e SCONE_CAS_FINGERPRINT=$SCONE_CAS_FINGERPRINT -e SCONE_CONFIG_ID=demo/redis/client -v $SCONE_LAS_DIR:/run/scone scone/runtime:latest redis-cli 2>/dev/null | grep -q PONG" ||
		{ dk service logs scts_redis 2>&1 | tail -20; fail "redis in the stack did not get its configuration"; }
	assert_eq OK "$(echo 'SET greeting swarm-value-marker-5' | swarm_client)" "SET in the stack"
	# docker kill of the redis task: the swarm starts a new one, which attests again.
	r=$(task_of redis)
	dk kill "$r" >/dev/null
	wait_until 60 sh -c "t=\$($DOCKER ps -q -f label=com.docker.swarm.service.name=scts_redis | head -1); [ -n \"\$t\" ] && [ \"\$t\" != $r ]" ||
		fail "the swarm did not replace the killed redis task"
	wait_until 60 swarm_get || { dk service logs scts_redis 2>&1 | tail -20; fail "the new redis task lost its data or configuration"; }
	# docker kill of the CAS task: the new task has the same identity and the session.
	old=$cas_task
	dk kill "$old" >/dev/null
	wait_until 60 sh -c "t=\$($DOCKER ps -q -f label=com.docker.swarm.service.name=scts_cas | head -1); [ -n \"\$t\" ] && [ \"\$t\" != $old ]" ||
		fail "the swarm did not replace the killed CAS task"
	cas_task=$(task_of cas)
	wait_until 30 curl -skf "https://127.0.0.1:$port/healthz" || fail "the new CAS task does not answer"
	assert_eq "$SCONE_CAS_FINGERPRINT" "$(cas_fp_of "$cas_task")" "CAS's identity after its task was replaced"
	expect_ok scone session read demo/redis
	# redis restarted once more must fetch from the new CAS task.
	r=$(task_of redis)
	dk kill "$r" >/dev/null
	wait_until 60 swarm_get || { dk service logs scts_redis 2>&1 | tail -20; fail "redis did not come back from the new CAS task"; }
}

# ---------------- Kubernetes manifests ----------------

PODMAN_DIR=
pm() { podman --root "$PODMAN_DIR/root" --runroot "$PODMAN_DIR/run" "$@"; }

kube_cleanup() {
	[ -n "$PODMAN_DIR" ] || return 0
	pm pod rm -f -a >/dev/null 2>&1
	pm rm -f -a >/dev/null 2>&1
	pm volume rm -f -a >/dev/null 2>&1
	pm system reset -f >/dev/null 2>&1
	awk -v d="$PODMAN_DIR" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r m; do
		umount -l "$m" 2>/dev/null
	done
	rm -rf "$PODMAN_DIR"
}

# The manifests validate offline against the Kubernetes schemas (kubernetes-models from npm).
case_kube_validate() {
	local v=$ROOT/deploy/k8s/validate
	command -v node >/dev/null && command -v npm >/dev/null || t_skip_case "node and npm are not installed"
	if [ ! -d "$v/node_modules/kubernetes-models" ]; then
		(cd "$v" && timeout 300 npm ci --no-audit --no-fund --silent) >npm.log 2>&1 ||
			t_skip_case "npm could not install kubernetes-models: $(tail -1 npm.log)"
	fi
	expect_ok node "$v/validate.mjs" "$ROOT"/deploy/k8s/*.yaml
	[ "$(grep -c '^valid: ' "$OUT")" -ge 13 ] || { show_output; fail "fewer documents validated than the manifests hold"; }
	# The check has teeth: a wrong type and a misspelt required field are refused.
	sed -e 's/replicas: 1   # one per/replicas: "one"   # one per/' -e 's/containerPort: 8081/containerPrt: 8081/' \
		"$ROOT/deploy/k8s/cas.yaml" >bad.yaml
	expect_fail_with 'must be integer' node "$v/validate.mjs" bad.yaml
	assert_grep 'containerPort' "$OUT"
	# The PostgreSQL variant: every document valid, two or more replicas behind the Service, the
	# database password in no argument; and the checks across documents have teeth too.
	expect_ok node "$v/validate.mjs" "$ROOT/deploy/k8s/cas-postgres.yaml"
	assert_eq 6 "$(grep -c '^valid: ' "$OUT")" "valid documents in cas-postgres.yaml"
	"$PYTHON" - "$ROOT/deploy/k8s/cas-postgres.yaml" <<'PY' || fail "cas-postgres.yaml: not two replicas on the PostgreSQL store"
import sys, yaml
docs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(open(sys.argv[1])) if d}
dep = docs[("Deployment", "scone-cas")]
args = " ".join(dep["spec"]["template"]["spec"]["containers"][0]["args"])
assert dep["spec"]["replicas"] >= 2, "replicas"
assert "--store postgres://scone_cas@scone-cas-postgres:5432/" in args and "passfile=" in args, args
assert docs[("Service", "scone-cas")]["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
assert ("StatefulSet", "scone-cas-postgres") in docs and not any(k == "Secret" for k, _ in docs)
PY
	sed -e 's|scone_cas@scone-cas-postgres|scone_cas:hunter2@scone-cas-postgres|' \
		-e 's|selector: {app.kubernetes.io/name: scone-cas-postgres}|selector: {app.kubernetes.io/name: scone-cas-postgre}|' \
		"$ROOT/deploy/k8s/cas-postgres.yaml" >bad-pg.yaml
	printf -- '---\napiVersion: v1\nkind: Secret\nmetadata: {name: leak}\nstringData: {pgpass: "*:*:scone:scone_cas:x"}\n' >>bad-pg.yaml
	expect_fail_with 'a database URL with a password' node "$v/validate.mjs" bad-pg.yaml
	assert_grep 'Service/scone-cas-postgres: selector .* matches no workload' "$OUT"
	assert_grep 'Secret/leak: a Secret with data' "$OUT"
}

# podman play kube runs the manifests' pods (podman-pods.py: one host, no cluster network).
case_kube_podman() {
	local cas_port rp fp pw mp
	command -v podman >/dev/null || t_skip_case "podman is not installed (scripts/install-deps.sh)"
	command -v catatonit >/dev/null || [ -x /usr/libexec/podman/catatonit ] || t_skip_case "catatonit is not installed"
	CASE_CLEANUP_HOOK=kube_cleanup
	cas_case_begin
	PODMAN_DIR=$(mktemp -d /tmp/spod.XXXXXX)
	printf '[containers]\ndefault_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]\n[engine]\nruntime = "runc"\n' \
		>"$PODMAN_DIR/containers.conf"
	export CONTAINERS_CONF=$PODMAN_DIR/containers.conf
	local images=(scone/cas:latest scone/runtime:latest)
	if las_available; then images+=(scone/las:latest); fi
	dk save "${images[@]}" | pm load -q >/dev/null || fail "podman could not load the images"
	cas_port=$(free_port)
	rp=$(free_port)
	local conv=("$PYTHON" "$ROOT/deploy/k8s/podman-pods.py" --port "8081=$cas_port" --host-path "/run/scone=$CASE_DIR/las-run"
		--host-path "/var/lib/scone-las=$CASE_DIR/las-state")
	mkdir -p "$CASE_DIR/las-run" "$CASE_DIR/las-state"
	"${conv[@]}" "$ROOT/deploy/k8s/cas.yaml" >cas-pods.yaml
	expect_ok pm play kube cas-pods.yaml
	wait_until 30 curl -skf "https://127.0.0.1:$cas_port/healthz" || { pm logs scone-cas-0-cas; fail "CAS's pod does not answer"; }
	fp=$(pm exec scone-cas-0-cas cat /var/lib/scone-cas/cas.crt | openssl x509 -outform DER | sha256sum | cut -d' ' -f1)
	owner_for "127.0.0.1:$cas_port" "$fp"
	if las_available; then
		"${conv[@]}" "$ROOT/deploy/k8s/las.yaml" >las-pods.yaml
		expect_ok pm play kube las-pods.yaml
		wait_until 20 test -S "$CASE_DIR/las-run/las.sock" || { pm logs scone-las-las; fail "the LAS pod made no socket"; }
	fi
	# The example's session, on the host's network: a port of its own, on loopback.
	sed -e "s/^          port 6379/          port $rp/" -e 's/^          bind 0.0.0.0/          bind 127.0.0.1/' \
		-e "s/redis-cli -h redis /redis-cli -h 127.0.0.1 -p $rp /" -e "s/\"TCP:6379\"/\"TCP:$rp\"/" \
		-e "s/\"TCP:redis:6379\"/\"TCP:127.0.0.1:$rp\"/" "$ROOT/deploy/compose/redis-session.yaml" >session.yaml
	grep -c "TCP:.*$rp" session.yaml | grep -qx 2 || fail "the network shield's ports were not moved to $rp"
	expect_ok scone session create session.yaml
	"${conv[@]}" --set "scone-cas-pin/fingerprint=$fp" "$ROOT/deploy/k8s/app.yaml" >app-pods.yaml
	expect_ok pm play kube app-pods.yaml
	kube_client() {
		pm run --rm -i --network host -e SCONE_CAS_ADDR="127.0.0.1:$cas_port" \
			-e SCONE_CAS_FINGERPRINT="$fp" -e SCONE_CONFIG_ID=demo/redis/client scone/runtime:latest redis-cli 2>/dev/null
	}
	wait_until 60 sh -c "echo PING | podman --root $PODMAN_DIR/root --runroot $PODMAN_DIR/run run --rm -i --network host -e SCONE_CAS_ADDR=127.0.0.1:$cas_port -e SCONE_CAS_FINGERPRINT=$fp -e SCONE_CONFIG_ID=demo/redis/client scone/runtime:latest redis-cli 2>/dev/null | grep -q PONG" ||
		{ pm logs redis-redis 2>&1 | tail -20; fail "the redis pod did not get its configuration"; }
	assert_eq OK "$(echo 'SET greeting kube-value-marker-9' | kube_client)" "SET in the redis pod"
	pw=$(echo 'CONFIG GET requirepass' | kube_client | sed -n 2p)
	[ ${#pw} -eq 32 ] || fail "no generated password"
	pm pod inspect redis >inspect.json
	pm inspect redis-redis >>inspect.json
	assert_no_grep "$pw" inspect.json app-pods.yaml "$ROOT/deploy/k8s/app.yaml"
	mp=$(pm volume inspect -f '{{.Mountpoint}}' redis-data)
	[ -s "$mp/volume.fspf" ] || fail "the claim holds no volume"
	if grep -raqF -e kube-value-marker-9 -e "$pw" "$mp"; then fail "plaintext in the redis claim on the host"; fi
	# The pods go and come back: the claims keep CAS's state and redis's data.
	expect_ok pm play kube --down app-pods.yaml
	expect_ok pm play kube --down cas-pods.yaml
	"${conv[@]}" --pods-only "$ROOT/deploy/k8s/cas.yaml" >cas-pods.yaml
	"${conv[@]}" --pods-only --set "scone-cas-pin/fingerprint=$fp" "$ROOT/deploy/k8s/app.yaml" >app-pods.yaml
	expect_ok pm play kube cas-pods.yaml
	wait_until 30 curl -skf "https://127.0.0.1:$cas_port/healthz" || fail "CAS's pod did not come back"
	expect_ok pm play kube app-pods.yaml
	wait_until 60 sh -c "echo GET greeting | podman --root $PODMAN_DIR/root --runroot $PODMAN_DIR/run run --rm -i --network host -e SCONE_CAS_ADDR=127.0.0.1:$cas_port -e SCONE_CAS_FINGERPRINT=$fp -e SCONE_CONFIG_ID=demo/redis/client scone/runtime:latest redis-cli 2>/dev/null | grep -q kube-value-marker-9" ||
		{ pm logs redis-redis 2>&1 | tail -20; fail "the data did not survive the pods' restart"; }
}

[ -z "$reason" ] || skip_engine_cases "$reason"
run_case images case_images
if dk image inspect scone/runtime:latest >/dev/null 2>&1; then
	run_case sconify case_sconify
	run_case compose case_compose
	run_case compose-postgres case_compose_pg
	run_case swarm case_swarm
	run_case kube-validate case_kube_validate
	run_case kube-podman case_kube_podman
else
	t_skip sconify "the images were not built"
	t_skip compose "the images were not built"
	t_skip compose-postgres "the images were not built"
	t_skip swarm "the images were not built"
	t_skip kube-podman "the images were not built"
	run_case kube-validate case_kube_validate
fi
t_done
