#!/usr/bin/env bash
# test_netshield_io.sh - the network shield (libscone.so preloaded, its
# configuration from the host's SCONE_NETWORK_SHIELD* variables, no CAS)
# under programs that use the socket API the way real servers and clients
# do: tests/integration/netshield/nsio.c (plain POSIX, compiled here; it
# knows nothing of TLS) with one end shielded and the other a standard TLS
# peer (tests/integration/netshield/peer.py: Python's ssl module, openssl
# s_server), or both ends shielded. Every case checks that the bytes
# received are the bytes sent (sha256 of random payloads).
#
#  - epoll edge-triggered echo server, 50 clients x 1 MiB at once
#  - level-triggered epoll reading 7 bytes per wake-up (bytes decrypted
#    inside the TLS layer must be reported readable, else it hangs)
#  - poll/select servers, blocking and non-blocking sockets, tiny reads;
#    ppoll/pselect with a signal mask (a signal interrupts the wait);
#    EPOLLONESHOT re-armed after every wake-up
#  - shielded clients: non-blocking connect (EINPROGRESS, POLLOUT,
#    SO_ERROR) and blocking, to openssl s_server -www, a Python TLS echo
#    server, and a shielded server
#  - recv/send flags, recvmsg/sendmsg, recvmmsg/sendmmsg, readv/writev, SCM_RIGHTS refused,
#    shutdown(SHUT_WR), EPIPE with MSG_NOSIGNAL, death by SIGPIPE without
#  - sendfile from a file to a shielded socket
#  - fork: the parent closes its copy, the child serves; a connection used
#    by two processes: one gets EBADF
#  - soak: 3000 short connections; fds and RSS back to the baseline; long-
#    lived connections kept open during it still work
#  - plain-TCP and wrong-CA clients refused while good clients are served
#
# Processes are stopped by PID.
# T_CASE=PATTERN runs only the matching cases.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
t_init
ROOT=$PWD
LIB=${SCONE_RUNTIME_LIB:-$ROOT/build/lib/libscone.so}
PY=$(command -v /usr/bin/python3 || command -v python3)
PEER=$ROOT/tests/integration/netshield/peer.py
NSIO=$T_TMP/nsio
for t in cc openssl "$PY"; do
	command -v "$t" >/dev/null 2>&1 || {
		echo "not ok - setup: $t not installed"
		exit 1
	}
done
[ -f "$LIB" ] || {
	echo "not ok - setup: $LIB not built (run make)"
	exit 1
}
cc -O2 -Wall -o "$NSIO" tests/integration/netshield/nsio.c -lpthread || {
	echo "not ok - setup: nsio.c does not compile"
	exit 1
}
# One CA-less identity for every shielded server, and one the wrong clients trust.
(
	cd "$T_TMP" &&
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem -out cert.pem \
			-days 2 -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" &&
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout wrong-key.pem \
			-out wrong.pem -days 2 -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1"
) >/dev/null 2>&1 || {
	echo "not ok - setup: openssl cannot make certificates"
	exit 1
}
CERT=$T_TMP/cert.pem
KEY=$T_TMP/key.pem
IDENTITY=$(cat "$KEY" "$CERT")

# ---------------- helpers ----------------

NS_PIDS=()
ns_case_begin() { trap ns_case_cleanup EXIT; }
ns_case_cleanup() {
	local rc=$? pid
	set +e
	for pid in ${NS_PIDS[@]+"${NS_PIDS[@]}"}; do
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	exit "$rc"
}

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

alive() {
	local st
	[ -r "/proc/$1/stat" ] || return 1
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# The shield's variables for a shielded server on PORT / a client of 127.0.0.1:PORT trusting CAFILE.
server_env() {
	NSENV=(SCONE_NETWORK_SHIELD=protected SCONE_NETWORK_SHIELD_SERVER_1=protected
		"SCONE_NETWORK_SHIELD_SERVER_1_PORT=TCP:$1" "SCONE_NETWORK_SHIELD_SERVER_1_IDENTITY=$IDENTITY"
		"LD_PRELOAD=$LIB")
}
client_env() {
	NSENV=(SCONE_NETWORK_SHIELD=unprotected SCONE_NETWORK_SHIELD_CLIENT_1=protected
		"SCONE_NETWORK_SHIELD_CLIENT_1_DESTINATION=TCP:127.0.0.1:$1"
		"SCONE_NETWORK_SHIELD_CLIENT_1_SERVER_AUTH=$(cat "${2:-$CERT}")" "LD_PRELOAD=$LIB")
}

# start NAME CMD...: in the background (NAME.out, NAME.err in the case dir), wait for
# "ready" on its stdout; sets PID (env execs: the PID is the program's).
start() {
	local name=$1 i
	shift
	"$@" >"$CASE_DIR/$name.out" 2>"$CASE_DIR/$name.err" </dev/null &
	PID=$!
	NS_PIDS+=("$PID")
	for ((i = 0; i < 100; i++)); do
		grep -q '^ready' "$CASE_DIR/$name.out" 2>/dev/null && return 0
		alive "$PID" || break
		sleep 0.05
	done
	echo "--- $name.out:"
	head -c 2000 "$CASE_DIR/$name.out"
	echo "--- $name.err:"
	head -c 2000 "$CASE_DIR/$name.err"
	fail "$name did not start: $*"
}

# shielded_server NAME PORT ARGS...: nsio under the shield as a server on PORT.
shielded_server() {
	local name=$1 port=$2
	shift 2
	server_env "$port"
	start "$name" env "${NSENV[@]}" "$NSIO" "$@"
}

# stop PID: SIGTERM, reaped.
stop() {
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# still_up PID NAME: the server did not die.
still_up() {
	alive "$1" || {
		echo "--- $2.err:"
		tail -c 2000 "$CASE_DIR/$2.err"
		fail "$2 (pid $1) died"
	}
}

# clients PORT N SIZE CONC [TIMEOUT]: python TLS echo clients, all must succeed.
clients() {
	T_CMD_TIMEOUT=${5:-60} expect_ok "$PY" "$PEER" clients "$1" "$CERT" "$2" "$3" "$4"
	cat "$OUT"
}

fd_count() { ls "/proc/$1/fd" | wc -l; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# no_runtime_errors NAME: the shielded program's stderr holds no error or warning of the runtime.
no_runtime_errors() {
	if grep -aE 'scone: (error|warn)' "$CASE_DIR/$1.err"; then fail "$1: the runtime complained"; fi
}

# ---------------- 1. edge-triggered epoll ----------------

case_epoll_et() {
	ns_case_begin
	local port
	port=$(free_port)
	shielded_server srv "$port" server et "$port"
	clients "$port" 50 1048576 50
	assert_grep '^clients: 50 ok' "$OUT"
	# and many small ones at once
	clients "$port" 200 1000 50
	still_up "$PID" srv
	no_runtime_errors srv
	stop "$PID"
}

# ---------------- 2. level-triggered epoll, 7 bytes per wake-up ----------------

case_epoll_lt_tiny() {
	ns_case_begin
	local port
	port=$(free_port)
	shielded_server srv "$port" server lt "$port" --chunk 7
	clients "$port" 3 131072 3 30
	port=$(free_port)
	shielded_server srv2 "$port" server lt "$port" --chunk 7 --block
	clients "$port" 2 65536 2 30
	no_runtime_errors srv
	no_runtime_errors srv2
}

# ---------------- 3. poll, select, ppoll/pselect, EPOLLONESHOT ----------------

case_poll_select() {
	ns_case_begin
	local port mode opt
	for mode in poll select; do
		for opt in "" --block; do
			port=$(free_port)
			# shellcheck disable=SC2086 # an option or none
			shielded_server "$mode$opt" "$port" server "$mode" "$port" $opt
			clients "$port" 8 262144 8
			# tiny reads: decrypted bytes waiting in the TLS layer are readable
			port=$(free_port)
			# shellcheck disable=SC2086
			shielded_server "$mode$opt-tiny" "$port" server "$mode" "$port" --chunk 7 $opt
			clients "$port" 2 32768 2 30
			no_runtime_errors "$mode$opt"
		done
	done
}

case_ppoll_pselect_sigmask() {
	ns_case_begin
	local port mode i
	for mode in ppoll pselect; do
		port=$(free_port)
		shielded_server "$mode" "$port" server "$mode" "$port" --chunk 7
		clients "$port" 2 32768 2 30
		# SIGUSR1 is blocked except during the wait: it interrupts the wait (EINTR)
		kill -USR1 "$PID"
		for ((i = 0; i < 50; i++)); do
			grep -q '^signal 1' "$CASE_DIR/$mode.out" && break
			sleep 0.05
		done
		assert_grep '^signal 1' "$CASE_DIR/$mode.out"
		clients "$port" 4 262144 4
		still_up "$PID" "$mode"
		no_runtime_errors "$mode"
	done
}

case_epoll_oneshot() {
	ns_case_begin
	local port
	port=$(free_port)
	shielded_server srv "$port" server oneshot "$port"
	clients "$port" 8 262144 8
	no_runtime_errors srv
}

# EPOLLONESHOT re-armed (EPOLL_CTL_MOD) while decrypted bytes wait in the TLS layer and the
# kernel has nothing: reported at once, as plain TCP does (it used to hang).
case_epoll_oneshot_partial() {
	ns_case_begin
	local port
	port=$(free_port)
	shielded_server srv "$port" server oneshot "$port" --chunk 100
	clients "$port" 2 32768 2 10
}

# ---------------- 4. shielded clients ----------------

case_client_nonblocking_and_blocking() {
	ns_case_begin
	local port mode
	make_file payload.bin 1048576 nsio-client
	# openssl s_server -www: an HTTP answer describing the TLS session
	port=$(free_port)
	openssl s_server -www -accept "127.0.0.1:$port" -cert "$CERT" -key "$KEY" -quiet \
		>s_server.out 2>s_server.err </dev/null &
	NS_PIDS+=("$!")
	for ((i = 0; i < 100; i++)); do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
		sleep 0.05
	done
	client_env "$port"
	for mode in nb block; do
		expect_ok env "${NSENV[@]}" "$NSIO" client 127.0.0.1 "$port" "$mode" http
		assert_grep '^HTTP/1.0 200 ok' "$OUT"
		assert_grep 'TLSv1.3' "$OUT"
		[ "$mode" = block ] || assert_grep 'EINPROGRESS' "$ERR"
		no_runtime_errors_in "$ERR"
	done
	# a Python TLS echo server: 1 MiB there and back
	port=$(free_port)
	start pyecho "$PY" "$PEER" echo-server "$port" "$CERT" "$KEY"
	client_env "$port"
	for mode in nb block; do
		expect_ok env "${NSENV[@]}" "$NSIO" client 127.0.0.1 "$port" "$mode" echo payload.bin
		assert_same_file payload.bin "$OUT"
		no_runtime_errors_in "$ERR"
	done
	# both ends shielded
	port=$(free_port)
	shielded_server srv "$port" server et "$port"
	client_env "$port"
	for mode in nb block; do
		expect_ok env "${NSENV[@]}" "$NSIO" client 127.0.0.1 "$port" "$mode" echo payload.bin
		assert_same_file payload.bin "$OUT"
		no_runtime_errors_in "$ERR"
	done
	# a blocking socket's SO_RCVTIMEO bounds the wait for the peer, as on a kernel socket
	expect_ok env "${NSENV[@]}" "$PY" -c '
import socket, struct, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 300000))
s.sendall(b"ping")
got = b""
while len(got) < 4:
    got += s.recv(4 - len(got))
t = time.time()
try:
    s.recv(10)
    print("no timeout")
except OSError as e:
    print("echo %s, then errno %d after %.1f s" % (got.decode(), e.errno, time.time() - t))
' "$port"
	assert_grep '^echo ping, then errno 11 after 0\.[34] s$' "$OUT"
	no_runtime_errors srv
}

no_runtime_errors_in() {
	if grep -aE 'scone: (error|warn)' "$1"; then fail "the runtime complained"; fi
}

# ---------------- 5. flags ----------------

case_flags() {
	ns_case_begin
	local port
	# the shielded end listens, Python connects
	port=$(free_port)
	server_env "$port"
	start nsio env "${NSENV[@]}" timeout 30 "$NSIO" flags listen "$port"
	expect_ok "$PY" "$PEER" flags-peer listen "$port" "$CERT" "$KEY" "$CERT"
	wait "$PID" || fail "nsio flags listen: exit $?: $(cat nsio.out nsio.err)"
	assert_grep '^flags: all ok' nsio.out
	cat nsio.out
	# the shielded end connects, Python listens
	port=$(free_port)
	start pypeer "$PY" "$PEER" flags-peer connect "$port" "$CERT" "$KEY" "$CERT"
	client_env "$port"
	expect_ok env "${NSENV[@]}" "$NSIO" flags connect "$port"
	assert_grep '^flags: all ok' "$OUT"
	wait "$PID" || fail "peer.py flags-peer: exit $?: $(cat pypeer.out pypeer.err)"
	# only the refused sendmsg with SCM_RIGHTS is complained about
	if grep -av 'ancillary data on a TLS connection refused' "$ERR" | grep -aE 'scone: (error|warn)'; then
		fail "unexpected complaints"
	fi
	# writing without MSG_NOSIGNAL after the peer closed: death by SIGPIPE, as with plain TCP
	port=$(free_port)
	server_env "$port"
	start sigpipe env "${NSENV[@]}" timeout 30 "$NSIO" flags listen "$port" --sigpipe
	expect_ok "$PY" -c '
import sys, time
sys.path.insert(0, sys.argv[1])
import peer
ctx = peer.client_ctx(sys.argv[3])
s = peer.connect(int(sys.argv[2]), ctx)
assert peer.recv_line(s) == b"HELLO2\n"
s.close()' "$(dirname "$PEER")" "$port" "$CERT"
	local rc=0
	wait "$PID" || rc=$?
	assert_eq 141 "$rc" "exit status of a write after the peer closed without MSG_NOSIGNAL (128+SIGPIPE)"
}

# ---------------- 6. sendfile ----------------

case_sendfile() {
	ns_case_begin
	local port
	make_file big.bin 1048576 nsio-sendfile
	port=$(free_port)
	shielded_server srv "$port" sendfile "$port" "$CASE_DIR/big.bin"
	expect_ok "$PY" "$PEER" fetch "$port" "$CERT" got1.bin
	expect_ok "$PY" "$PEER" fetch "$port" "$CERT" got2.bin
	expect_ok "$PY" "$PEER" fetch "$port" "$CERT" got3.bin
	assert_same_file big.bin got1.bin
	assert_same_file big.bin got2.bin
	assert_same_file big.bin got3.bin
	wait "$PID" || fail "nsio sendfile: exit $?: $(cat srv.err)"
	assert_eq 3 "$(grep -c '^sent 1048576$' srv.out)" "sendfile and splice runs"
	no_runtime_errors srv
}

# ---------------- 7. fork ----------------

# One connection, a line read, fork; child, parent, child write a line each in turn, then
# the child closes and exits and the parent writes again: exactly one of the two processes
# writes (whichever used the connection first after the fork), every write of the other
# gets EBADF with a message; the peer receives exactly the winner's lines, then the end,
# never a broken record.
case_fork_both_write() {
	ns_case_begin
	local port want
	port=$(free_port)
	shielded_server srv "$port" forkboth "$port"
	expect_ok "$PY" "$PEER" lines "$port" "$CERT"
	wait "$PID" || fail "nsio forkboth: exit $?: $(cat srv.err)"
	cat srv.out "$OUT"
	if grep -q '^child write 1: ok$' srv.out; then
		assert_grep '^child write 2: ok$' srv.out
		assert_grep '^parent write 1: EBADF$' srv.out
		assert_grep '^parent write 2: EBADF$' srv.out
		want="received 'child-1\\nchild-2\\n'"
	else
		assert_grep '^child write 1: EBADF$' srv.out
		assert_grep '^child write 2: EBADF$' srv.out
		assert_grep '^parent write 1: ok$' srv.out
		assert_grep '^parent write 2: ok$' srv.out
		want="received 'parent-1\\nparent-2\\n'"
	fi
	assert_eq "$want" "$(sed -n 1p "$OUT")" "what the peer received"
	assert_eq "ended: end" "$(sed -n 2p "$OUT")" "how the connection ended"
	assert_grep 'network shield: fd [0-9]+: this TLS connection (is in use by process [0-9]+|went on in another process)' srv.err
}

# A fork server whose parent reads the request (the handshake is over), forks, and closes
# its copy at once; the child answers 50 ms later (the parent has closed by then) and echoes.
case_fork_parent_closes() {
	ns_case_begin
	local port
	port=$(free_port)
	shielded_server srv "$port" forkserver "$port" --read-first
	expect_ok "$PY" "$PEER" hello-echo "$port" "$CERT" 10
	assert_grep '^hello-echo: 10 ok' "$OUT"
	no_runtime_errors srv
}

# The classic fork server: accept, fork, the child serves, the parent closes its copy, at
# once or 200 ms later: the child uses the connection first and owns it (it used to get
# EBADF while the parent had not closed its copy yet).
case_fork_server() {
	ns_case_begin
	local port delay
	for delay in 0 200; do
		port=$(free_port)
		shielded_server "srv$delay" "$port" forkserver "$port" --parent-delay "$delay"
		clients "$port" 20 65536 4
		no_runtime_errors "srv$delay"
	done
}

# The parent writes after the fork and exits without closing; the child then writes: its
# copy of the TLS state is stale, it must get EBADF (it used to take the connection over
# and encrypt a second record with the parent's record number: AES-GCM nonce reuse, "bad
# record mac" at the peer).
case_fork_dead_owner() {
	ns_case_begin
	local port
	port=$(free_port)
	shielded_server srv "$port" forkafter "$port"
	expect_ok "$PY" "$PEER" lines "$port" "$CERT"
	cat "$OUT" srv.out
	sleep 0.5
	assert_eq "ended: end" "$(sed -n 2p "$OUT")" "how the connection ended"
	assert_grep '^child write: EBADF' srv.out
}

# ---------------- 8. soak ----------------

case_soak() {
	ns_case_begin
	local port fd0 fd1 rss0 rss1 hold i t0
	t0=$(date +%s)
	port=$(free_port)
	shielded_server srv "$port" server et "$port"
	# long-lived connections, open during the soak
	"$PY" "$PEER" hold "$port" "$CERT" 3 "$CASE_DIR/go" >hold.out 2>&1 &
	hold=$!
	NS_PIDS+=("$hold")
	for ((i = 0; i < 100; i++)); do
		grep -q '^held 3' hold.out && break
		sleep 0.05
	done
	assert_grep '^held 3' hold.out
	clients "$port" 200 100 10 # warm-up
	fd0=$(fd_count "$PID")
	rss0=$(rss_kb "$PID")
	clients "$port" 3000 100 10 90
	assert_grep '^clients: 3000 ok' "$OUT"
	# the server closes each connection when it reads its end: back to the baseline
	for ((i = 0; i < 50; i++)); do
		fd1=$(fd_count "$PID")
		[ "$fd1" -le "$fd0" ] && break
		sleep 0.1
	done
	rss1=$(rss_kb "$PID")
	echo "fds $fd0 -> $fd1, RSS $rss0 kB -> $rss1 kB, $(($(date +%s) - t0)) s"
	[ "$fd1" -le "$fd0" ] || {
		ls -l "/proc/$PID/fd"
		fail "fds: $fd0 before, $fd1 after 3000 connections"
	}
	[ $((rss1 - rss0)) -lt 4096 ] || fail "RSS grew by $((rss1 - rss0)) kB over 3000 connections"
	touch go
	wait "$hold" || {
		cat hold.out
		fail "the long-lived connections failed after the soak"
	}
	cat hold.out
	still_up "$PID" srv
	no_runtime_errors srv
	[ $(($(date +%s) - t0)) -lt 60 ] || fail "the soak took more than 60 s"
}

# ---------------- 9. refused clients ----------------

case_refused_clients() {
	ns_case_begin
	local port good fd0 fd1 i
	port=$(free_port)
	shielded_server srv "$port" server et "$port"
	fd0=$(fd_count "$PID")
	# good clients all along
	"$PY" "$PEER" clients "$port" "$CERT" 60 262144 4 >good.out 2>&1 &
	good=$!
	NS_PIDS+=("$good")
	expect_ok "$PY" "$PEER" bad "$port" "$CERT" "$T_TMP/wrong.pem" 20
	cat "$OUT"
	wait "$good" || {
		cat good.out
		fail "good clients failed while bad ones were refused"
	}
	cat good.out
	still_up "$PID" srv
	# a shielded client trusting the wrong CA: connect fails
	client_env "$port" "$T_TMP/wrong.pem"
	make_file p.bin 1000 refused
	expect_exit 1 env "${NSENV[@]}" "$NSIO" client 127.0.0.1 "$port" block echo p.bin
	assert_grep 'connect: Connection refused' "$ERR"
	assert_grep 'certificate verify failed' "$ERR"
	[ ! -s "$OUT" ] || fail "the wrong-CA client received bytes"
	for ((i = 0; i < 50; i++)); do
		fd1=$(fd_count "$PID")
		[ "$fd1" -le "$fd0" ] && break
		sleep 0.1
	done
	[ "$fd1" -le "$fd0" ] || fail "fds: $fd0 before, $fd1 after the refused clients"
	clients "$port" 4 65536 4
}

run_case "epoll edge-triggered: 50 clients x 1 MiB at once" case_epoll_et
run_case "epoll level-triggered: 7-byte reads per wake-up" case_epoll_lt_tiny
run_case "poll and select: blocking and non-blocking sockets, tiny reads" case_poll_select
run_case "ppoll and pselect with a signal mask" case_ppoll_pselect_sigmask
run_case "epoll EPOLLONESHOT re-armed after every wake-up" case_epoll_oneshot
run_case "epoll EPOLLONESHOT re-armed with bytes left in the TLS layer" case_epoll_oneshot_partial
run_case "shielded clients: non-blocking and blocking connect, SO_RCVTIMEO" case_client_nonblocking_and_blocking
run_case "recv/send flags, msg, iovecs, SCM_RIGHTS, SHUT_WR, EPIPE, SIGPIPE" case_flags
run_case "sendfile and splice (through a pipe) to a shielded socket" case_sendfile
run_case "fork: parent and child both write, one gets EBADF" case_fork_both_write
run_case "fork: the parent reads, forks and closes its copy, the child serves" case_fork_parent_closes
run_case "fork: accept, fork, the parent closes its copy" case_fork_server
run_case "fork: the child writes after the parent wrote and exited" case_fork_dead_owner
run_case "soak: 3000 connections, fds and RSS back, long-lived ones still work" case_soak
run_case "plain and wrong-CA clients refused while good ones are served" case_refused_clients
t_done
