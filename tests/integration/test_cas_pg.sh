#!/usr/bin/env bash
# test_cas_pg.sh - CAS replicas on one PostgreSQL database (Debian's
# postgresql, started here by tests/pg_server.sh in a temporary directory on
# a random port of 127.0.0.1, password in a passfile, stopped by PID), and
# what goes with them: shared keys and pins, read-after-write and
# compare-and-swap across replicas (tests/tools/cas_race), a replica killed
# mid-stream, the database restarted under load, backup during writes and
# restore, a rolled-back database, the audit log.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
t_init
. tests/integration/cas_lib.sh
cas_require

RACE=$PWD/build/tools/cas_race
PG_SERVER=$PWD/tests/pg_server.sh
# Not under $T_TMP (mode 0700): the server runs as its own user and must reach its directory.
PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/scone-pg.XXXXXX") || exit 1
PG_PORT=
PSQL=$(command -v psql || true)
DB_SEQ=0

pg_down() {
	[ -z "$PG_PORT" ] || "$PG_SERVER" stop "$PG_DIR" >/dev/null 2>&1
	rm -rf "$PG_DIR"
}
trap 'pg_down; t_cleanup' EXIT

if [ ! -x "$RACE" ] || [ -z "$PSQL" ] || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
	t_fail "setup: needs build/tools/cas_race (make tools) and PostgreSQL (scripts/install-deps.sh)"
	t_done
	exit 1
fi
PG_PORT=$(free_port)
if ! "$PG_SERVER" start "$PG_DIR" "$PG_PORT" >"$T_TMP/pg_start.log" 2>&1; then
	t_fail "setup: PostgreSQL did not start" "$(tail -5 "$T_TMP/pg_start.log")"
	PG_PORT=
	t_done
	exit 1
fi

# ---------------- helpers ----------------

# sql SQL [DB]: run as the database superuser over the unix socket; rows on stdout.
sql() {
	"$PSQL" -h "$PG_DIR" -p "$PG_PORT" -U scone -d "${2:-postgres}" -XAtq -v ON_ERROR_STOP=1 -c "$1"
}

# new_db: a fresh database; sets DB and URL (TCP, password from the passfile).
new_db() {
	DB_SEQ=$((DB_SEQ + 1))
	DB=c$$_${DB_SEQ}_$RANDOM
	sql "CREATE DATABASE $DB" >/dev/null || fail "CREATE DATABASE $DB"
	URL="postgres://scone@127.0.0.1:$PG_PORT/$DB?passfile=$PG_DIR/passfile"
}

# replicas N URL [ARGS...]: key material made once (scone-cas init), N replicas each with a copy of it,
# each with its audit mirror; sets R_ADDR R_PID R_DIR and FP (their one certificate's SHA-256).
replicas() {
	local n=$1 url=$2 i
	shift 2
	expect_ok "$SCONE_CAS_BIN" init --state-dir "$CASE_DIR/keys" --store "$url"
	R_ADDR=() R_PID=() R_DIR=()
	for ((i = 1; i <= n; i++)); do
		mkdir -p "$CASE_DIR/r$i"
		cp "$CASE_DIR/keys/cas.key" "$CASE_DIR/keys/cas.crt" "$CASE_DIR/keys/master.key" "$CASE_DIR/r$i/"
		cas_start "$CASE_DIR/r$i" -- --store "$url" --replica "r$i" --audit-mirror "$CASE_DIR/r$i.mirror" "$@"
		R_ADDR+=("$CAS_ADDR") R_PID+=("$CAS_PID") R_DIR+=("$CASE_DIR/r$i")
	done
	FP=$(cert_fp "$CASE_DIR/keys/cas.crt")
}

# owner_all: an owner identity that trusts every replica under the one fingerprint.
owner_all() {
	local a
	owner_new "$CASE_DIR/owner"
	for a in "${R_ADDR[@]}"; do expect_ok scone cas trust "$a" --fingerprint "$FP"; done
}

# race MODE ARGS...: cas_race against all replicas as the owner; its line in $OUT.
race() {
	local list
	list=$(IFS=,; echo "${R_ADDR[*]}")
	T_CMD_TIMEOUT=180 run_cmd "$RACE" "$@" --replicas "$list" --fingerprint "$FP" \
		--owner-cert "$CASE_DIR/owner/owner.crt" --owner-key "$CASE_DIR/owner/owner.key"
	cat "$OUT"
	[ "$RC" -eq 0 ] || { show_output; fail "cas_race $1 failed"; }
}

# at I: make replica I the current CAS for cas_lib's http helpers.
at() {
	CAS_ADDR=${R_ADDR[$1]} CAS_PID=${R_PID[$1]} CAS_DIR=${R_DIR[$1]}
}

# A session with one volume, for configuration fetches and tag reports.
session_file() {
	cat >"$1" <<EOF
name: $2
version: "0.3"
security:
  attestation:
    mode: none
services:
  - name: app
    image_name: img
    command: /bin/app
    environment:
      PW: \$\$SCONE::pw\$\$
      MARK: body-marker-$2
images:
  - name: img
    volumes:
      - name: data
        path: /data
volumes:
  - name: data
secrets:
  - name: pw
    kind: ascii
    size: 24
EOF
}

# export_audit DIR FILE: scone-cas audit-export of the store, with DIR's key material.
export_audit() {
	expect_ok "$SCONE_CAS_BIN" audit-export --state-dir "$1" --store "$URL" "$2"
}

# verify FILE [ARGS...]: scone cas verify-audit-log against the replicas' fingerprint.
verify_ok() {
	expect_ok scone cas verify-audit-log "$1" --fingerprint "$FP" "${@:2}"
	cat "$OUT"
}

# ---------------- cases ----------------

# One identity and master key for every replica: the clients' one pin fits all of them; the key
# material never reaches the database; wrong or missing keys, unmade stores and passwords on the
# command line are refused.
case_keys_and_pins() {
	local a= f=
	cas_case_begin
	new_db
	replicas 2 "$URL"
	assert_eq "$(cert_fp "${R_DIR[0]}/cas.crt")" "$(cert_fp "${R_DIR[1]}/cas.crt")" "the replicas' certificates"
	owner_all
	session_file s.yaml keys
	at 0
	expect_created s.yaml
	at 1
	expect_ok scone session read keys --cas "${R_ADDR[1]}"
	# Nothing in the database that is secret: not the body, not the master key.
	sql "SELECT encode(body, 'escape') || encode(secrets, 'escape') FROM scone_sessions" "$DB" >dump.txt
	[ -s dump.txt ] || fail "no rows read from the database"
	assert_no_grep "body-marker-keys" dump.txt
	assert_no_grep "$(cat "$CASE_DIR/keys/master.key")" dump.txt
	"$PSQL" -h "$PG_DIR" -p "$PG_PORT" -U scone -d "$DB" -XAtq -c "SELECT * FROM scone_meta" >meta.txt
	assert_no_grep "$(cat "$CASE_DIR/keys/master.key")" meta.txt
	# Another master key for the same database: refused.
	expect_ok "$SCONE_CAS_BIN" init --state-dir other --store "sqlite:$CASE_DIR/other.db"
	cas_refuses_with other "$URL" "master key does not match"
	# A replica without key material: refused, and it makes none of its own.
	cas_refuses_with empty "$URL" "scone-cas init"
	assert_absent empty/master.key
	# A database nobody initialised: refused (never an empty store made by a replica).
	new_db
	cas_refuses_with "${R_DIR[0]}" "$URL" "never created"
	# A password on the command line (ps shows it): refused before anything.
	expect_exit_with 2 "passfile" "$SCONE_CAS_BIN" --state-dir "${R_DIR[0]}" \
		--store "postgres://scone:s3cr3t@127.0.0.1:$PG_PORT/$DB"
	assert_no_grep "s3cr3t" "$ERR" "$OUT"
	expect_exit_with 2 "passfile" "$SCONE_CAS_BIN" backup --state-dir "${R_DIR[0]}" \
		--store "postgres://127.0.0.1/$DB?password=s3cr3t" out.bin
	assert_no_grep "s3cr3t" "$ERR" "$OUT"
	assert_absent out.bin
	: "$a" "$f"
}

# cas_refuses_with DIR URL PATTERN: scone-cas on that store must exit non-zero naming PATTERN.
cas_refuses_with() {
	local port
	port=$(free_port)
	T_CMD_TIMEOUT=20 run_cmd "$SCONE_CAS_BIN" --state-dir "$1" --store "$2" --listen "127.0.0.1:$port" --workers 1
	[ "$RC" -ne 0 ] || fail "scone-cas started with $1 on $2"
	grep -q -- "$3" "$ERR" || { show_output; fail "refusal does not say '$3'"; }
}

# A write acknowledged by one replica is read, and served from the other replica's parsed-session
# cache, at once; updates alternate between the replicas.
case_read_after_write() {
	local i h
	cas_case_begin
	new_db
	replicas 2 "$URL"
	owner_all
	runtime_new rt
	session_file s.yaml raw
	at 0
	expect_created s.yaml
	for ((i = 0; i < 12; i++)); do
		at $((i % 2))
		fetch_config rt raw/app
		[ "$STATUS" = 200 ] || fail "fetch on replica $((i % 2)): $STATUS"
		h=$(jget "$BODY" 'd["session_hash"]')
		assert_eq "$HASH" "$h" "session hash served by replica $((i % 2)) before update $i"
		at $(((i + 1) % 2))
		{ cat s.yaml; echo "predecessor: $HASH"; } | sed "s|command: /bin/app.*|command: /bin/app $i|" >u.yaml
		expect_ok scone session update u.yaml --cas "$CAS_ADDR"
		HASH=$(cat "$OUT")
	done
	at 0
	fetch_config rt raw/app
	assert_eq "$HASH" "$(jget "$BODY" 'd["session_hash"]')" "final hash on replica 0"
}

# Two replicas, 16 clients: of each round's updates from one predecessor exactly one wins, of the
# creates of one name exactly one; every replica reads and serves the winner right after.
case_race_two() {
	cas_case_begin
	new_db
	replicas 2 "$URL"
	owner_all
	race race --clients 16 --rounds 12 --prefix two
}

# Three replicas under mixed load at once: races, streams of updates, volume tag reports.
case_three_replicas() {
	local p1 p2
	cas_case_begin
	new_db
	replicas 3 "$URL"
	owner_all
	race race --clients 12 --rounds 8 --prefix three
	"$RACE" stream --clients 12 --seconds 5 --prefix mixs --replicas "$(IFS=,; echo "${R_ADDR[*]}")" \
		--fingerprint "$FP" --owner-cert owner/owner.crt --owner-key owner/owner.key >stream.out 2>&1 &
	p1=$!
	"$RACE" tags --clients 8 --seconds 5 --prefix mixt --replicas "$(IFS=,; echo "${R_ADDR[*]}")" \
		--fingerprint "$FP" --owner-cert owner/owner.crt --owner-key owner/owner.key >tags.out 2>&1 &
	p2=$!
	wait $p1 || { cat stream.out; fail "stream failed"; }
	wait $p2 || { cat tags.out; fail "tags failed"; }
	cat stream.out tags.out
	grep -q '^STREAM OK' stream.out || fail "stream: $(cat stream.out)"
	grep -q '^TAGS OK' tags.out || fail "tags: $(cat tags.out)"
}

# A replica killed (SIGKILL) in the middle of a stream: the clients go on with the others, no
# acknowledged write is lost, the survivors serve on; the log shows the chains of all three.
case_kill9_replica() {
	local p
	cas_case_begin
	new_db
	replicas 3 "$URL"
	owner_all
	"$RACE" stream --clients 12 --seconds 8 --prefix kill --replicas "$(IFS=,; echo "${R_ADDR[*]}")" \
		--fingerprint "$FP" --owner-cert owner/owner.crt --owner-key owner/owner.key >stream.out 2>&1 &
	p=$!
	sleep 3
	kill -9 "${R_PID[1]}"
	wait "${R_PID[1]}" 2>/dev/null || true
	case_untrack_pid "${R_PID[1]}"
	wait $p || { cat stream.out; fail "stream failed after replica 2 was killed"; }
	cat stream.out
	grep -Eq '^STREAM OK .*retried=[1-9]' stream.out || fail "no request met the killed replica: $(cat stream.out)"
	at 0
	[ "$(health_status)" = 200 ] || fail "replica 1 stopped serving"
	at 2
	[ "$(health_status)" = 200 ] || fail "replica 3 stopped serving"
	export_audit "$CASE_DIR/keys" audit.log
	verify_ok audit.log
	grep -q '"replica":"r2"' audit.log || fail "no entry of the killed replica in the log"
}

# PostgreSQL restarted under load: requests meanwhile fail with 503 (never a wrong answer), the
# same CAS processes serve again afterwards, no acknowledged write is lost.
case_pg_restart() {
	local p1 p2 i
	cas_case_begin
	new_db
	replicas 2 "$URL"
	owner_all
	"$RACE" stream --clients 8 --seconds 9 --prefix pgr --replicas "$(IFS=,; echo "${R_ADDR[*]}")" \
		--fingerprint "$FP" --owner-cert owner/owner.crt --owner-key owner/owner.key >stream.out 2>&1 &
	p1=$!
	"$RACE" tags --clients 4 --seconds 9 --prefix pgt --replicas "$(IFS=,; echo "${R_ADDR[*]}")" \
		--fingerprint "$FP" --owner-cert owner/owner.crt --owner-key owner/owner.key >tags.out 2>&1 &
	p2=$!
	sleep 2.5
	"$PG_SERVER" restart "$PG_DIR" >restart.log 2>&1 || { cat restart.log; fail "PostgreSQL restart failed"; }
	wait $p1 || { cat stream.out; fail "stream failed across the restart"; }
	wait $p2 || { cat tags.out; fail "tags failed across the restart"; }
	cat stream.out tags.out
	grep -Eq '^STREAM OK .*retried=[1-9]' stream.out || fail "no request met the restart: $(cat stream.out)"
	for i in 0 1; do
		alive "${R_PID[$i]}" || fail "replica $((i + 1)) died"
		at $i
		[ "$(health_status)" = 200 ] || fail "replica $((i + 1)) does not serve after the restart"
	done
	grep -q 'connection to the database lost\|cannot reach the database' "$CASE_DIR"/r*.log ||
		fail "no replica noticed the restart"
}

# PostgreSQL killed (SIGKILL, a crash: the last transactions committed without waiting for the
# disk may be lost) under load: after its recovery the same CAS processes serve, nothing
# acknowledged is lost, and entries lost from the tail of a chain are told from a rollback (the
# writer goes on in a new chain that names the loss; no replica stops serving).
case_pg_crash() {
	local p1 p2 i
	cas_case_begin
	new_db
	replicas 2 "$URL"
	owner_all
	"$RACE" stream --clients 8 --seconds 9 --prefix crs --replicas "$(IFS=,; echo "${R_ADDR[*]}")" \
		--fingerprint "$FP" --owner-cert owner/owner.crt --owner-key owner/owner.key >stream.out 2>&1 &
	p1=$!
	"$RACE" tags --clients 4 --seconds 9 --prefix crt --replicas "$(IFS=,; echo "${R_ADDR[*]}")" \
		--fingerprint "$FP" --owner-cert owner/owner.crt --owner-key owner/owner.key >tags.out 2>&1 &
	p2=$!
	sleep 2.5
	"$PG_SERVER" kill "$PG_DIR"
	sleep 1
	for ((i = 0; i < 40; i++)); do
		"$PG_SERVER" start "$PG_DIR" >>start.log 2>&1 && break
		sleep 0.5
	done
	[ "$i" -lt 40 ] || { cat start.log; fail "PostgreSQL did not come back after the crash"; }
	wait $p1 || { cat stream.out; fail "stream failed across the crash"; }
	wait $p2 || { cat tags.out; fail "tags failed across the crash"; }
	cat stream.out tags.out
	for i in 0 1; do
		alive "${R_PID[$i]}" || fail "replica $((i + 1)) died"
		at $i
		[ "$(health_status)" = 200 ] || { tail -5 "${R_DIR[$i]}.log"; fail "replica $((i + 1)) does not serve after the crash"; }
	done
	export_audit "$CASE_DIR/keys" audit.log
	verify_ok audit.log
	grep -h 'the database lost' "$CASE_DIR"/r*.log | head -3 || true
}

# A backup taken while two replicas take writes restores (into PostgreSQL and into SQLite) into
# what the source held at that moment, brought forward by the audit log since; a quiet backup
# restores into exactly the source's rows.
case_backup_restore() {
	local p name hash
	cas_case_begin
	new_db
	local src_url=$URL src_db=$DB
	replicas 2 "$URL"
	owner_all
	runtime_new rt
	session_file s.yaml tagged
	at 0
	expect_created s.yaml
	"$RACE" stream --clients 8 --seconds 6 --prefix bk --replicas "$(IFS=,; echo "${R_ADDR[*]}")" \
		--fingerprint "$FP" --owner-cert owner/owner.crt --owner-key owner/owner.key >stream.out 2>&1 &
	p=$!
	sleep 2
	expect_ok "$SCONE_CAS_BIN" backup --state-dir "$CASE_DIR/keys" --store "$src_url" during.bin
	cat "$OUT"
	wait $p || { cat stream.out; fail "stream failed"; }
	export_audit "$CASE_DIR/keys" after.log
	# Into a new database, with the log since: everything the log says changed is reported or redone.
	new_db
	expect_ok "$SCONE_CAS_BIN" restore --state-dir "$CASE_DIR/keys" --store "$URL" --audit-log after.log during.bin
	cat "$OUT"
	grep -q '^restored ' "$OUT" || fail "restore printed no summary"
	# Every session the source holds now is either the same in the copy, or reported as changed.
	sql "SELECT name || ' ' || encode(hash, 'hex') FROM scone_sessions ORDER BY name" "$src_db" >src.txt
	sql "SELECT name || ' ' || encode(hash, 'hex') FROM scone_sessions ORDER BY name" "$DB" >copy.txt
	while read -r name hash; do
		grep -qx "$name $hash" copy.txt || grep -q "^session $name: \(updated\|created\) after the backup" "$OUT" ||
			fail "session $name: neither restored as it is nor reported"
	done <src.txt
	# The restored store's log extends the source's.
	export_audit "$CASE_DIR/keys" restored.log
	verify_ok restored.log --previous after.log
	# A quiet backup: the copy's sessions and tags are the source's, byte for byte.
	expect_ok "$SCONE_CAS_BIN" backup --state-dir "$CASE_DIR/keys" --store "$src_url" quiet.bin
	new_db
	expect_ok "$SCONE_CAS_BIN" restore --state-dir "$CASE_DIR/keys" --store "$URL" --audit-log after.log quiet.bin
	rows "$src_db" >a.txt
	rows "$DB" >b.txt
	assert_same_file a.txt b.txt
	[ "$(wc -l <a.txt)" -gt 8 ] || fail "too few rows compared"
	# The same backup into SQLite, then served by a CAS on it.
	expect_ok "$SCONE_CAS_BIN" restore --state-dir "$CASE_DIR/keys" --store "sqlite:$CASE_DIR/copy.db" \
		--audit-log after.log quiet.bin
	mkdir -p sq && cp "$CASE_DIR/keys/"{cas.key,cas.crt,master.key} sq/
	cas_start "$CASE_DIR/sq" -- --store "sqlite:$CASE_DIR/copy.db"
	fetch_config rt tagged/app
	[ "$STATUS" = 200 ] || { show_file "$BODY"; fail "the restored SQLite store does not serve: $STATUS"; }
}

# rows DB: sessions and tags as stored (sealed blobs included), in order.
rows() {
	sql "SELECT name || ' ' || encode(hash, 'hex') || ' ' || encode(creator, 'hex') || ' ' || md5(body) || ' ' ||
	            md5(secrets) || ' ' || created || ' ' || updated FROM scone_sessions ORDER BY name" "$1"
	sql "SELECT session || ' ' || volume || ' ' || md5(tag) FROM scone_volume_tags ORDER BY session, volume" "$1"
}

# tag_report RT ID PREV NEW: as a runtime would, with the token of its last fetch ($TOKEN).
tag_report() {
	tag_update "$1" "$2" data "$3" "$4" "$TOKEN"
}

# A database rolled back beneath running replicas (its tables and its version sequence put back
# as they were, as a restore of an older copy does): each replica that saw the later state notices
# at its next entry and refuses everything (503) until restarted; an auditor's later export does
# not extend the earlier one.
case_rollback_detected() {
	local i t
	cas_case_begin
	new_db
	replicas 2 "$URL" --workers 1
	owner_all
	runtime_new rt
	session_file s.yaml rb
	at 0
	expect_created s.yaml
	for i in 0 1; do
		at $i
		fetch_config rt rb/app
		[ "$STATUS" = 200 ] || fail "fetch on replica $((i + 1)): $STATUS"
	done
	TOKEN=$(jget "$BODY" 'd["instance_token"]')
	sql "CREATE TABLE snap_s AS SELECT * FROM scone_sessions; CREATE TABLE snap_t AS SELECT * FROM scone_volume_tags;
	     CREATE TABLE snap_a AS SELECT * FROM scone_audit" "$DB"
	local snap_v
	snap_v=$(sql "SELECT last_value FROM scone_version" "$DB")
	t=$(printf 'a%.0s' {1..32})
	tag_report rt rb/app "" "$t"
	[ "$STATUS" = 200 ] || fail "tag report: $STATUS"
	for i in 0 1; do
		at $i
		fetch_config rt rb/app
		[ "$STATUS" = 200 ] || fail "fetch on replica $((i + 1)) before the rollback: $STATUS"
	done
	export_audit "$CASE_DIR/keys" before.log
	# The rollback: every table as it was at the snapshot.
	sql "BEGIN; DELETE FROM scone_volume_tags; DELETE FROM scone_audit; DELETE FROM scone_sessions;
	     INSERT INTO scone_sessions SELECT * FROM snap_s; INSERT INTO scone_volume_tags SELECT * FROM snap_t;
	     INSERT INTO scone_audit SELECT * FROM snap_a; SELECT setval('scone_version', $snap_v); COMMIT" "$DB" >/dev/null
	for i in 0 1; do
		at $i
		fetch_config rt rb/app
		[ "$STATUS" = 503 ] || { show_file "$BODY"; fail "replica $((i + 1)) served from a rolled-back store: $STATUS"; }
		expect_http 503 ROLLBACK anon GET /healthz
		grep -q 'rolled back' "${R_DIR[$i]}.log" || fail "replica $((i + 1)) did not log the rollback"
	done
	export_audit "$CASE_DIR/keys" after.log
	expect_exit_with 1 "rolled back or cut" scone cas verify-audit-log after.log --fingerprint "$FP" --previous before.log
	# An operator who accepts the store as it is restarts the replica: it serves again.
	at 0
	cas_stop
	cas_start "${R_DIR[0]}" -- --store "$URL" --workers 1
	fetch_config rt rb/app
	[ "$STATUS" = 200 ] || fail "the restarted replica does not serve: $STATUS"
}

# After the database is lost, a restore from an older backup with the replicas' audit mirrors
# knows the volume's newest tag: the backup's tag is refused, the newest accepted. Without any
# log the restore refuses unless the loss is accepted explicitly.
case_restore_refuses_old_tags() {
	local t1 t2 t3 t4 i
	cas_case_begin
	new_db
	replicas 2 "$URL"
	owner_all
	runtime_new rt
	session_file s.yaml vol
	at 0
	expect_created s.yaml
	fetch_config rt vol/app
	TOKEN=$(jget "$BODY" 'd["instance_token"]')
	t1=$(printf '1%.0s' {1..32}) t2=$(printf '2%.0s' {1..32}) t3=$(printf '3%.0s' {1..32}) t4=$(printf '4%.0s' {1..32})
	tag_report rt vol/app "" "$t1"
	[ "$STATUS" = 200 ] || fail "first tag: $STATUS"
	expect_ok "$SCONE_CAS_BIN" backup --state-dir "$CASE_DIR/keys" --store "$URL" b.bin
	at 1
	tag_report rt vol/app "$t1" "$t2"
	[ "$STATUS" = 200 ] || fail "tag 2: $STATUS"
	at 0
	tag_report rt vol/app "$t2" "$t3"
	[ "$STATUS" = 200 ] || fail "tag 3: $STATUS"
	# The database is lost; the replicas are stopped.
	for i in 0 1; do
		at $i
		cas_stop
	done
	sql "DROP DATABASE $DB WITH (FORCE)"
	new_db
	expect_exit_with 1 "accept-tag-rollback" "$SCONE_CAS_BIN" restore --state-dir "$CASE_DIR/keys" --store "$URL" b.bin
	expect_ok "$SCONE_CAS_BIN" restore --state-dir "$CASE_DIR/keys" --store "$URL" \
		--audit-log "${R_DIR[0]}.mirror" --audit-log "${R_DIR[1]}.mirror" b.bin
	cat "$OUT"
	grep -q "volume vol/data: tag brought forward over 2 change(s) to $t3" "$OUT" || fail "tag not brought forward"
	cas_start "${R_DIR[0]}" -- --store "$URL"
	fetch_config rt vol/app
	assert_eq "$t3" "$(jget "$BODY" 'd["volumes"][0]["tag"]')" "tag after the restore"
	TOKEN=$(jget "$BODY" 'd["instance_token"]')
	tag_report rt vol/app "$t1" "$t4"
	[ "$STATUS" = 409 ] || fail "a report from the backup's tag was not refused: $STATUS"
	tag_report rt vol/app "$t3" "$t4"
	[ "$STATUS" = 200 ] || fail "a report from the newest tag was refused: $STATUS"
}

# The audit log: every create, update, delete, release and refusal, signed and chained; no
# secret in it; a changed byte is found and its entry named.
case_audit_log() {
	local pw n line e
	cas_case_begin
	new_db
	replicas 2 "$URL"
	owner_all
	runtime_new rt
	anon_new anon
	use_id "$CASE_DIR/owner"
	session_file s.yaml aud
	at 0
	expect_created s.yaml
	at 1
	fetch_config rt aud/app
	pw=$(jget "$BODY" 'd["environment"]["PW"]')
	[ ${#pw} -ge 16 ] || fail "no secret in the configuration"
	fetch_config rt aud/nope
	expect_http 403 anon DELETE /v1/sessions/aud
	use_id "$CASE_DIR/owner"
	expect_ok scone session delete aud --cas "${R_ADDR[0]}"
	export_audit "$CASE_DIR/keys" audit.log
	verify_ok audit.log
	for e in create release refuse delete; do
		grep -q "\"event\":\"$e\",\"session\":\"aud\"" audit.log || fail "no $e entry for aud"
	done
	grep -q '"code":"PERMISSION"' audit.log || fail "the refused delete is not in the log"
	assert_no_grep "$pw" audit.log "${R_DIR[0]}.mirror" "${R_DIR[1]}.mirror"
	assert_no_grep "body-marker" audit.log
	# Both replicas' mirrors verify too.
	verify_ok "${R_DIR[0]}.mirror"
	verify_ok "${R_DIR[1]}.mirror"
	# One byte changed in the fourth entry: named, exit 1.
	n=$(grep -n '"event":"release"' audit.log | head -1 | cut -d: -f1)
	line=$(sed -n "${n}p" audit.log)
	sed -i "${n}s/\"service\":\"app\"/\"service\":\"apq\"/" audit.log
	[ "$(sed -n "${n}p" audit.log)" != "$line" ] || fail "the test did not change the line"
	expect_exit_with 1 "first broken entry: .*audit.log line $n " scone cas verify-audit-log audit.log --fingerprint "$FP"
	# Another CAS's fingerprint: refused.
	expect_exit_with 1 "not the one with the given fingerprint" scone cas verify-audit-log "${R_DIR[0]}.mirror" \
		--fingerprint "$(printf '0%.0s' {1..64})"
}

run_case "pg: one identity and master key for all replicas; wrong keys, no keys, passwords refused" case_keys_and_pins
run_case "pg: read-after-write and cache invalidation across two replicas" case_read_after_write
run_case "pg: two replicas, 16 clients: exactly one update and one create win per round" case_race_two
run_case "pg: three replicas: races, update streams and tag reports at once" case_three_replicas
run_case "pg: kill -9 of a replica mid-stream, the others serve, nothing acknowledged lost" case_kill9_replica
run_case "pg: PostgreSQL restarted under load, CAS recovers without a restart" case_pg_restart
run_case "pg: PostgreSQL killed under load: CAS recovers, lost lazy entries are not a rollback" case_pg_crash
run_case "pg: backup during writes, restore (postgres and sqlite), compare" case_backup_restore
run_case "pg: a database rolled back beneath the replicas is detected and refused" case_rollback_detected
run_case "pg: a restored CAS refuses volume tags older than the ones it had" case_restore_refuses_old_tags
run_case "pg: audit log: every event, signed and chained, no secrets, a changed byte named" case_audit_log
t_done
