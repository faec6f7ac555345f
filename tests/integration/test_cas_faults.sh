#!/usr/bin/env bash
# test_cas_faults.sh - scone-cas under faults: SIGKILL in the middle of
# writes (every acknowledged create/update survives), a full disk (a clean
# 507, nothing half-written, service goes on), a damaged store or master key
# (a refusal that names the problem and changes nothing), and hostile
# clients (oversized bodies and headers, garbage instead of TLS, malformed
# JSON, YAML bombs, slow and idle clients, request floods).
#
# CAS_CRASH_ROUNDS (default 5) and CAS_CRASH_SEED (kill delays) can be set.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
. tests/integration/cas_lib.sh
t_init
cas_require

CRASH_ROUNDS=${CAS_CRASH_ROUNDS:-5}
CRASH_SEED=${CAS_CRASH_SEED:-$(date +%s)}

# fault_session NAME [ENV_VALUE [PREDECESSOR]]
fault_session() {
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
      VALUE: ${2:-hello}
secrets:
  - name: pw
    kind: ascii
    size: 16
EOF
}

# expect_listed FILE: every "NAME HASH" line of FILE is in `scone session list`.
expect_listed() {
	local missing
	expect_ok scone session list
	sort "$OUT" >listed.txt
	missing=$(sort "$1" | comm -23 - listed.txt)
	[ -z "$missing" ] || { echo "$missing" | head -20; fail "acknowledged sessions missing or with another hash: $(echo "$missing" | wc -l)"; }
}

# ---------------- kill -9 during writes ----------------

# crash_writer DIR ROUND: until DIR/stop exists, create crash/rROUND-N and
# update crash/chain (predecessor in DIR/chain.cur). Every acknowledged
# create goes to DIR/acked as "NAME HASH", an acknowledged update's hash to
# DIR/chain.cur; the hash of each chain update is appended to DIR/chain.tries
# before it is sent (emptied when one is acknowledged): one of them may have
# been committed without an answer.
crash_writer() {
	local d=$1 r=$2 i=0
	while [ ! -e "$d/stop" ]; do
		i=$((i + 1))
		fault_session "crash/r$r-$i" "create-$r-$i" >"$d/c.yaml"
		if timeout 10 "$SCONE_BIN" session create "$d/c.yaml" >"$d/c.out" 2>>"$d/writer.err" </dev/null; then
			echo "crash/r$r-$i $(cat "$d/c.out")" >>"$d/acked"
		fi
		fault_session crash/chain "update-$r-$i" "$(cat "$d/chain.cur")" >"$d/u.yaml"
		"$SCONE_BIN" session hash "$d/u.yaml" >>"$d/chain.tries" 2>>"$d/writer.err" </dev/null
		if timeout 10 "$SCONE_BIN" session update "$d/u.yaml" >"$d/u.out" 2>>"$d/writer.err" </dev/null; then
			cp "$d/u.out" "$d/chain.cur"
			: >"$d/chain.tries"
			echo "update $(cat "$d/u.out")" >>"$d/chain.acked"
		fi
	done
}

case_kill9() {
	local round ms wpid cur n total=0 before
	cas_case_begin
	RANDOM=$CRASH_SEED
	echo "CAS_CRASH_SEED=$CRASH_SEED"
	cas_start "$CASE_DIR/state"
	owner_new "$CASE_DIR/o"
	fault_session crash/chain start >chain0.yaml
	expect_created chain0.yaml
	echo "$HASH" >chain.cur
	: >acked
	: >chain.tries
	for ((round = 1; round <= CRASH_ROUNDS; round++)); do
		rm -f stop
		before=$(wc -l <acked)
		crash_writer "$CASE_DIR" "$round" &
		wpid=$!
		ms=$((400 + RANDOM % 1200))
		sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
		cas_kill9
		touch stop
		wait "$wpid" || true
		n=$(($(wc -l <acked) - before))
		total=$((total + n))
		echo "round $round: killed after $ms ms, $n creates acknowledged"
		# Same state directory, same address: starts, and nothing acknowledged is lost.
		cas_start "$CASE_DIR/state" "$CAS_PORT"
		[ "$(grep -c 'opened: [0-9]* sessions' "$CAS_LOG")" -eq $((round + 1)) ] ||
			{ tail -5 "$CAS_LOG"; fail "restart $round did not report the store it opened"; }
		expect_listed acked
		# The chain: the last acknowledged update, or one sent after it (committed, unacknowledged).
		stored_hash crash/chain
		cur=$HASH
		if [ "$cur" != "$(cat chain.cur)" ] && ! grep -qx "$cur" chain.tries; then
			fail "crash/chain is at $cur: neither the last acknowledged $(cat chain.cur) nor one sent after it"
		fi
		[ "$cur" = "$(cat chain.cur)" ] || echo "round $round: the update in flight was committed"
		echo "$cur" >chain.cur
		: >chain.tries
		# Sample: read --json of the last acknowledged create has its hash.
		if [ "$n" -gt 0 ]; then
			read -r name hash < <(tail -1 acked)
			stored_hash "$name"
			assert_eq "$hash" "$HASH" "hash of $name after the crash"
		fi
	done
	[ "$total" -ge 5 ] || fail "only $total creates were acknowledged in $CRASH_ROUNDS rounds (too slow to test anything)"
	[ -s chain.acked ] || fail "no chain update was acknowledged"
	# The store's count agrees with what the owner lists.
	expect_ok scone session list
	n=$(wc -l <"$OUT")
	expect_http 200 anon GET /metrics
	assert_eq "$n" "$(sed -n 's/^scone_cas_sessions \([0-9]*\)$/\1/p' "$BODY")" "scone_cas_sessions vs session list"
	# New writes work after the last crash.
	fault_session crash/after >after.yaml
	expect_created after.yaml
	cas_stop
}

# ---------------- full disk ----------------

FULL_MNT=
unmount_full() {
	[ -n "$FULL_MNT" ] || return 0
	umount "$FULL_MNT" 2>/dev/null || umount -l "$FULL_MNT" 2>/dev/null || true
	FULL_MNT=
}

case_full_disk() {
	local i failed='' name
	cas_case_begin
	mkdir state
	if [ "$(id -u)" -ne 0 ]; then t_skip_case "mounting a 3 MB tmpfs needs root"; fi
	if ! mount -t tmpfs -o size=3m,mode=0700 scone-cas-full "$CASE_DIR/state" 2>mount.err; then
		t_skip_case "cannot mount a tmpfs: $(head -1 mount.err)"
	fi
	FULL_MNT=$CASE_DIR/state
	CASE_CLEANUP_HOOK=unmount_full
	cas_start "$CASE_DIR/state"
	owner_new "$CASE_DIR/o"
	: >acked
	for i in 1 2 3; do
		fault_session "full/early$i" "$(head -c 1500 /dev/zero | tr '\0' e)" >s.yaml
		expect_created s.yaml
		echo "full/early$i $HASH" >>acked
	done
	# Fill the file system, then give a little back.
	dd if=/dev/zero of=state/filler bs=64k status=none 2>/dev/null || true
	truncate -s -160K state/filler
	df -k state
	for ((i = 1; i <= 300; i++)); do
		fault_session "full/s$i" "$(head -c 1500 /dev/zero | tr '\0' f)" >s.yaml
		run_cmd scone session create s.yaml
		if [ "$RC" -ne 0 ]; then
			failed=full/s$i
			break
		fi
		echo "full/s$i $(cat "$OUT")" >>acked
	done
	[ -n "$failed" ] || fail "300 sessions fit into 160 KB: the disk never got full"
	echo "create $failed failed after $((i - 1)) creates"
	assert_eq 1 "$RC" "exit status of the failed create"
	assert_grep 'HTTP 507' "$ERR"
	assert_grep 'NO_SPACE' "$ERR"
	cp s.yaml failed.yaml
	# CAS keeps serving; what was acknowledged reads back; the failure left nothing.
	alive "$CAS_PID" || fail "scone-cas died on a full disk"
	assert_eq 200 "$(health_status)" "healthz on a full disk"
	expect_listed acked
	read -r name _ < <(head -1 acked)
	expect_ok scone session read "$name"
	expect_fail_with 'NOT_FOUND' scone session read "$failed"
	# Space again: the same create works.
	rm -f state/filler
	expect_created failed.yaml
	echo "$failed $HASH" >>acked
	fault_session full/later >s.yaml
	expect_created s.yaml
	echo "full/later $HASH" >>acked
	cas_stop
	# And all of it survives a restart.
	cas_start "$CASE_DIR/state" "$CAS_PORT"
	expect_listed acked
	cas_stop
	unmount_full
}

# ---------------- damaged store and master key ----------------

# damaged COPY: a fresh copy of the pristine state directory.
damaged() {
	rm -rf "$1"
	cp -a pristine "$1"
}

# expect_refusal DIR PATTERN: CAS refuses to start on DIR, naming PATTERN;
# cas.db is unchanged by the attempt.
expect_refusal() {
	local dir=$1 pattern=$2 before after
	before=$(sha256sum <"$dir/cas.db")
	cas_refuses "$dir"
	if ! cat "$ERR" "$OUT" | grep -aEiq -- "$pattern"; then
		show_output
		fail "refusal without a message matching /$pattern/"
	fi
	after=$(sha256sum <"$dir/cas.db")
	assert_eq "$before" "$after" "sha256 of $dir/cas.db before and after the refused start"
}

case_corrupt_store() {
	local i size pages
	cas_case_begin
	cas_start "$CASE_DIR/state"
	owner_new "$CASE_DIR/o"
	for ((i = 1; i <= 40; i++)); do
		fault_session "store/s$i" "value-$i" >s.yaml
		expect_ok scone session create s.yaml
	done
	expect_ok scone session list
	sort "$OUT" >list.before
	cas_stop
	if [ -s state/cas.db-wal ] && command -v sqlite3 >/dev/null 2>&1; then
		sqlite3 state/cas.db 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null
	fi
	cp -a state pristine
	size=$(stat -c %s pristine/cas.db)
	pages=$((size / 4096))
	[ "$pages" -ge 8 ] || fail "cas.db has only $pages pages; expected a bigger store"
	# Bytes overwritten in the middle.
	damaged mid
	make_file junk 12288 corrupt-mid
	dd if=junk of=mid/cas.db bs=4096 seek=$((pages / 2 - 1)) count=3 conv=notrunc status=none
	expect_refusal mid 'cas\.db'
	assert_grep_i 'corrupt|integrity|malformed' "$ERR"
	# Truncated.
	damaged short
	truncate -s $((size / 2)) short/cas.db
	expect_refusal short 'cas\.db'
	assert_grep_i 'corrupt|integrity|malformed|truncat|short' "$ERR"
	# Another master key.
	damaged wrongkey
	printf '%s\n' "$(printf 'another key' | sha256sum | cut -d' ' -f1)" >wrongkey/master.key
	chmod 600 wrongkey/master.key
	expect_refusal wrongkey 'master[ ._]key'
	# The master key readable by others.
	damaged loose
	chmod 644 loose/master.key
	expect_refusal loose 'master\.key'
	assert_grep_i '644|readable|permission|mode' "$ERR"
	# No master key next to an existing store: no new key is made.
	damaged nokey
	rm nokey/master.key
	expect_refusal nokey 'master\.key'
	assert_absent nokey/master.key
	# The undamaged copy serves every session.
	cas_start "$CASE_DIR/pristine" "$CAS_PORT"
	expect_ok scone session list
	sort "$OUT" >list.after
	assert_same_file list.before list.after
	cas_stop
}

# ---------------- hostile requests ----------------

# tls_probe MODE PORT: garbage | idle | slow | flood (see the Python below). Prints what happened.
tls_probe() {
	"$PYTHON" - "$1" "$2" <<'EOF'
import socket, ssl, sys, time
mode, port = sys.argv[1], int(sys.argv[2])
start = time.time()

def closed(how):
    print("%s: closed by the server after %.1f s (%s)" % (mode, time.time() - start, how))
    sys.exit(0)

s = socket.create_connection(("127.0.0.1", port), timeout=5)
if mode == "garbage":
    s.sendall(b"GARBAGE\x00\xff not a TLS client hello \r\n\r\n" * 64)
    s.settimeout(10)
    try:
        while True:
            data = s.recv(4096)
            if not data:
                closed("EOF")
    except ConnectionResetError:
        closed("reset")
    except socket.timeout:
        sys.exit("garbage: connection still open after 10 s")
if mode == "idle":
    s.settimeout(15)
    try:
        if s.recv(1) == b"":
            closed("EOF")
        sys.exit("idle: the server sent data to a client that said nothing")
    except ConnectionResetError:
        closed("reset")
    except socket.timeout:
        sys.exit("idle: connection without a TLS handshake still open after 15 s")
if mode == "slow":
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    t = ctx.wrap_socket(s)
    start = time.time()
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"s" * 60 + b"\r\n\r\n"
    t.settimeout(1.0)
    for b in head:
        try:
            t.send(bytes([b]))
        except (OSError, ssl.SSLError) as e:
            closed("send: %s" % e.__class__.__name__)
        try:
            data = t.recv(4096)
            if not data:
                closed("EOF")
            if data.startswith(b"HTTP/1.1 408") or data.startswith(b"HTTP/1.0 408"):
                closed("408 then close")
            sys.exit("slow: unexpected answer %r" % data[:80])
        except socket.timeout:
            pass
        except (OSError, ssl.SSLError) as e:
            closed(e.__class__.__name__)
        if time.time() - start > 12:
            sys.exit("slow: still connected after %.1f s of one byte per second" % (time.time() - start))
    sys.exit("slow: the whole request head was sent without being cut off")
if mode == "flood":
    import re
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    t = ctx.wrap_socket(s)
    t.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 600)
    data, how = b"", "EOF"
    t.settimeout(10)
    try:
        while True:
            chunk = t.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        sys.exit("flood: connection still open 10 s after the last answer")
    except (OSError, ssl.SSLError) as e:
        how = e.__class__.__name__
    codes = [c.decode() for c in re.findall(rb"HTTP/1\.[01] (\d{3}) ", data)]
    n200 = codes.count("200")
    print("flood: 600 pipelined requests: %d x 200, then %s; closed (%s)" % (n200, codes[n200:], how))
    if "429" not in codes:
        sys.exit("flood: no 429")
    if codes[n200:] != ["429"]:
        sys.exit("flood: expected 200s, one 429 and the end of the connection, got %s" % codes)
    if not 1 <= n200 <= 400:
        sys.exit("flood: %d requests served before the 429 (limit 200 per second)" % n200)
    body = data[data.rindex(b"HTTP/1."):].split(b"\r\n\r\n", 1)[1]
    if b'"code"' not in body:
        sys.exit("flood: the 429 has no JSON error body: %r" % body[:200])
    sys.exit(0)
EOF
}

case_hostile() {
	local rt=$CASE_DIR/rt pid t n
	cas_case_begin
	cas_start "$CASE_DIR/state" -- --timeout 2 --rate-limit 200
	pid=$CAS_PID
	owner_new "$CASE_DIR/o"
	runtime_new "$rt"
	fault_session hostile/keep >keep.yaml
	expect_created keep.yaml
	expect_ok scone session list
	cp "$OUT" list.before
	expect_ok scone session read hostile/keep --json
	jget "$OUT" 'd["hash"]' >hash.before
	# A body over the limit (2 MiB): 413, or the connection is closed.
	"$PYTHON" -c 'import sys; sys.stdout.write("name: hostile/big\nversion: \"0.3\"\nx: " + "a" * (2 << 20) + "\n")' >big.yaml
	http "$CASE_DIR/o" POST /v1/sessions big.yaml
	[ "$STATUS" = 413 ] || [ "$STATUS" = 000 ] || fail "2 MiB body: HTTP $STATUS, expected 413 or a closed connection"
	# A session just over 1 MiB (within the body limit): 413 TOO_LARGE.
	"$PYTHON" -c 'import sys; sys.stdout.write("name: hostile/big\nversion: \"0.3\"\nx: " + "a" * ((1 << 20) + 1000) + "\n")' >big1.yaml
	expect_http 413 TOO_LARGE "$CASE_DIR/o" POST /v1/sessions big1.yaml
	# 100 KB of headers: refused before the handler, as 431, as libevent 2.1's own
	# 400 (it has no hook for a JSON 431), or by closing the connection.
	STATUS=$(curl -sk -o "$CASE_DIR/.body" -w '%{http_code}' --max-time 20 \
		-H "X-Big: $(head -c 100000 /dev/zero | tr '\0' h)" "https://$CAS_ADDR/healthz" 2>/dev/null) || true
	case "$STATUS" in 431 | 400 | 000) ;; *) fail "100 KB of headers: HTTP $STATUS, expected 431, 400 or a closed connection" ;; esac
	# Garbage instead of TLS; a connection that never starts a handshake; a slow client.
	run_cmd tls_probe garbage "$CAS_PORT"
	[ "$RC" -eq 0 ] || { show_output; fail "garbage bytes"; }
	cat "$OUT"
	assert_eq 200 "$(health_status)" "healthz after garbage"
	run_cmd tls_probe idle "$CAS_PORT"
	[ "$RC" -eq 0 ] || { show_output; fail "idle connection"; }
	cat "$OUT"
	run_cmd tls_probe slow "$CAS_PORT"
	[ "$RC" -eq 0 ] || { show_output; fail "slow client"; }
	cat "$OUT"
	# Malformed JSON to the service endpoint: 400 with a JSON error.
	printf '{"config_id": "hostile/keep/web", ' >bad.json
	expect_http 400 MALFORMED "$rt" POST /v1/service/config bad.json application/json
	printf '[1, 2, 3]' >bad.json
	expect_http 400 MALFORMED "$rt" POST /v1/service/config bad.json application/json
	printf '{"config_id": "hostile/keep/web", "config_id": "x/y"}' >bad.json
	expect_http 400 "$rt" POST /v1/service/config bad.json application/json
	printf '{"config_id": "hostile/keep/web", "evil": 1}' >bad.json
	expect_http 400 INVALID "$rt" POST /v1/service/config bad.json application/json
	# 10,000 nested lists and a YAML alias bomb: 400, quickly.
	"$PYTHON" -c 'import sys; sys.stdout.write("name: hostile/deep\nversion: \"0.3\"\nx: " + "[" * 10000 + "]" * 10000 + "\n")' >deep.yaml
	"$PYTHON" - >bomb.yaml <<'EOF'
print('name: hostile/bomb\nversion: "0.3"')
print('a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]')
prev = "a"
for n in "bcdefghij":
    print("%s: &%s [%s]" % (n, n, ", ".join(["*" + prev] * 9)))
    prev = n
EOF
	for f in deep.yaml bomb.yaml; do
		expect_http 400 POLICY "$CASE_DIR/o" POST /v1/sessions "$f"
		echo "$f: 400 after $HTTP_MS ms"
		[ "$HTTP_MS" -lt 2000 ] || fail "$f took $HTTP_MS ms to refuse"
		t=$(date +%s%N)
		expect_exit 1 scone session check "$f"
		t=$((($(date +%s%N) - t) / 1000000))
		[ "$t" -lt 2000 ] || fail "session check $f took $t ms"
	done
	# Too many requests on one connection: 600 pipelined requests; at most
	# 200 per second are served, then 429 and the connection closes.
	run_cmd tls_probe flood "$CAS_PORT"
	[ "$RC" -eq 0 ] || { show_output; fail "request flood on one connection"; }
	cat "$OUT"
	# After all of it: the same process, healthy, the store unchanged.
	alive "$pid" || fail "scone-cas died"
	assert_eq "$pid" "$CAS_PID" "pid"
	assert_eq 200 "$(health_status)" "healthz at the end"
	expect_ok scone session list
	assert_same_file list.before "$OUT"
	stored_hash hostile/keep
	assert_eq "$(cat hash.before)" "$HASH" "hash of hostile/keep"
	for n in hostile/big hostile/deep hostile/bomb; do
		expect_fail_with NOT_FOUND scone session read "$n"
	done
	expect_http 200 anon GET /metrics
	assert_grep '^scone_cas_[a-z_]*handshake[a-z_]*(\{[^}]*\})? [1-9]' "$BODY"
	cas_stop
}

# partial_bodies PORT PID N: N connections each send a request head
# announcing 1,000,000 bytes and then 900 KB of it, and stay. Prints how many
# the server closed and how much its resident memory grew while they held.
partial_bodies() {
	"$PYTHON" - "$1" "$2" "$3" <<'EOF'
import socket, ssl, sys, time
port, pid, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])

def rss_kb():
    for line in open("/proc/%s/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
head = b"POST /v1/sessions HTTP/1.1\r\nHost: cas\r\nContent-Type: application/yaml\r\nContent-Length: 1000000\r\n\r\n"
part = b"x" * 900000
before = rss_kb()
conns, closed = [], 0
for i in range(n):
    t = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10))
    try:
        t.sendall(head)
        t.sendall(part)
        conns.append(t)
    except (OSError, ssl.SSLError):
        closed += 1
        t.close()
time.sleep(1.0)
still = []
for t in conns:
    t.setblocking(False)
    try:
        if t.recv(1) == b"":
            closed += 1
            continue
    except ssl.SSLWantReadError:
        pass
    except (OSError, ssl.SSLError):
        closed += 1
        continue
    still.append(t)
grown = rss_kb() - before
print("partial bodies: %d connections, %d closed by the server, %d still held; RSS grew by %d KiB" %
      (n, closed, len(still), grown))
print("GROWN_KB=%d CLOSED=%d" % (grown, closed))
time.sleep(0.5)
for t in still:
    t.close()
EOF
}

# 40 connections each holding 900 KB of an unfinished body: with
# --max-pending-mb 8 the server keeps at most 8 MiB (+16 KiB each) of them
# and closes the rest; it answers /healthz meanwhile.
case_partial_bodies() {
	local pid grown closed probe
	cas_case_begin
	cas_start "$CASE_DIR/state" -- --timeout 20 --max-pending-mb 8
	pid=$CAS_PID
	partial_bodies "$CAS_PORT" "$pid" 40 >pb.out &
	probe=$!
	sleep 1.5
	assert_eq 200 "$(health_status)" "healthz while 40 partial bodies are held"
	wait "$probe" || { cat pb.out; fail "partial_bodies failed"; }
	cat pb.out
	grown=$(sed -n 's/.*GROWN_KB=\([0-9-]*\).*/\1/p' pb.out)
	closed=$(sed -n 's/.*CLOSED=\([0-9]*\).*/\1/p' pb.out)
	[ -n "$grown" ] && [ -n "$closed" ] || fail "no figures from partial_bodies"
	# 8 MiB of budget, 40 x 16 KiB free, TLS and buffer overhead: far below the 36 MB sent.
	[ "$grown" -lt 20000 ] || fail "RSS grew by $grown KiB while 40 x 900 KB partial bodies were sent"
	[ "$closed" -ge 28 ] || fail "only $closed of 40 connections were closed by the byte budget"
	expect_http 200 anon GET /metrics
	assert_grep '^scone_cas_limit_rejections_total\{reason="memory"\} [1-9]' "$BODY"
	# Once the clients are gone, nothing stays charged.
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		grep -q '^scone_cas_request_bytes_charged 0$' "$BODY" && break
		sleep 0.3
		expect_http 200 anon GET /metrics
	done
	assert_grep '^scone_cas_request_bytes_charged 0$' "$BODY"
	alive "$pid" || fail "scone-cas died"
	cas_stop
}

# ---------------- run ----------------

run_case "cas faults: kill -9 during creates and updates ($CRASH_ROUNDS rounds): every acknowledged write survives" case_kill9
run_case "cas faults: full disk gives 507 NO_SPACE, CAS keeps serving, writes resume with space" case_full_disk
run_case "cas faults: damaged store, wrong/loose/missing master key: refusal, nothing changed" case_corrupt_store
run_case "cas faults: hostile requests (limits, garbage, bombs, slow clients, floods) change nothing" case_hostile
run_case "cas faults: partial bodies of 40 connections are held within --max-pending-mb, the rest closed" case_partial_bodies
t_done
