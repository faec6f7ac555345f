#!/usr/bin/env bash
# test_runtime_servers.sh - unmodified Debian servers under the runtime with
# their secrets from CAS (and the volume working directory redis needs):
# redis-server (config file an injection file with the password, RDB and AOF
# on an encrypted volume written by redis's forked background children
# (BGREWRITEAOF, BGSAVE), the data back after a restart) and nginx (TLS key, certificate and nginx.conf injection files from
# an x509 secret CAS generates, static files served from an encrypted volume
# with sendfile on and off). Each case starts its own CAS; servers listen on
# free ports on 127.0.0.1 and are stopped by PID. Every program runs attested
# by a LAS (mode las).
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
. tests/integration/cas_lib.sh
t_init
cas_require
REDIS=/usr/bin/redis-server
REDIS_CLI=/usr/bin/redis-cli
NGINX=/usr/sbin/nginx
REDIS_PW="pw-Redis-Secret-91c4e7"
# Attestation mode las: every service admits these programs' measurements.
las_script_start
las_attestation "$REDIS" "$NGINX" /usr/bin/cp /usr/bin/python3 probe

# wait_port PID PORT: PID alive and PORT on 127.0.0.1 accepting within 10 s.
wait_port() {
	local i
	for ((i = 0; i < 100; i++)); do
		alive "$1" || { show_output; fail "server (pid $1) exited during start-up"; }
		if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	show_output
	fail "nothing listens on 127.0.0.1:$2 within 10 s"
}

# wait_exit PID: the server exits by itself within 10 s (then it is killed: fail).
wait_exit() {
	local i rc=0
	for ((i = 0; i < 100; i++)); do
		alive "$1" || break
		sleep 0.1
	done
	if alive "$1"; then
		kill -9 "$1" 2>/dev/null
		fail "server (pid $1) did not exit within 10 s"
	fi
	wait "$1" 2>/dev/null || rc=$?
	case_untrack_pid "$1"
	[ "$rc" -eq 0 ] || { show_output; fail "server (pid $1) exited with status $rc"; }
}

# serve NAME CONFIG_ID PROGRAM ARGS...: start a server under scone in the
# background (stdout/stderr in NAME.out/NAME.err); sets SRV_PID.
serve() {
	local name=$1 cid=$2
	shift 2
	OUT=$CASE_DIR/$name.out ERR=$CASE_DIR/$name.err
	"$SCONE_BIN" run --config-id "$cid" -- "$@" >"$OUT" 2>"$ERR" </dev/null &
	SRV_PID=$!
	case_track_pid "$SRV_PID"
}

# no_secret_in_proc PID SECRET: neither /proc/PID/environ nor cmdline holds it.
no_secret_in_proc() {
	local f
	for f in environ cmdline; do
		[ -r "/proc/$1/$f" ] || fail "/proc/$1/$f not readable"
		if grep -qaF -e "$2" "/proc/$1/$f"; then fail "the secret is in /proc/$1/$f"; fi
	done
}

# only_ciphertext DIR: the volume dir holds volume.fspf (and its journal) and 32-hex names only.
only_ciphertext() {
	[ -f "$1/volume.fspf" ] || fail "no volume.fspf in $1"
	local f
	for f in "$1"/* "$1"/.[!.]*; do
		[ -e "$f" ] || continue
		f=${f##*/}
		[[ $f == volume.fspf* ]] || [[ $f =~ ^[0-9a-f]{32}$ ]] || { ls -la "$1"; fail "unexpected host file name $1/$f"; }
	done
}

# ---------------- redis ----------------

redis_yaml() { # PORT
	cat <<YAML
name: rds
version: "0.3"
security:
  attestation:
    mode: las
services:
  - name: redis
$LAS_ATTEST
    image_name: redis
    command: redis-server @@1
  - name: redis-rdb
$LAS_ATTEST
    image_name: redis
    command: redis-server @@1 --appendonly no
images:
  - name: redis
    injection_files:
      - path: /etc/scone-redis/redis.conf
        content: |
          port $1
          bind 127.0.0.1
          dir $CASE_DIR/data
          appendonly yes
          appendfsync always
          requirepass \$\$SCONE::redis_pw\$\$
          save ""
          daemonize no
          logfile ""
          pidfile ""
    volumes:
      - name: data
        path: $CASE_DIR/data
volumes:
  - name: data
secrets:
  - {name: redis_pw, kind: ascii, value: "$REDIS_PW"}
YAML
}

rcli() { "$REDIS_CLI" -h 127.0.0.1 -p "$RPORT" -a "$REDIS_PW" --no-auth-warning "$@"; }

# redis_check N: the keys are all there with their values.
redis_check() {
	assert_eq 1000 "$(rcli DBSIZE)" "DBSIZE after restart ($1)"
	assert_eq "redis-value-marker-1" "$(rcli GET key:1)" "key:1 ($1)"
	assert_eq "redis-value-marker-777" "$(rcli GET key:777)" "key:777 ($1)"
	assert_eq "redis-value-marker-1000" "$(rcli GET key:1000)" "key:1000 ($1)"
}

# redis_wait_persisted IN_PROGRESS STATUS: the background child finished, successfully.
redis_wait_persisted() {
	local info i
	for i in $(seq 200); do
		info=$(rcli INFO persistence | tr -d '\r')
		echo "$info" | grep -qx "$1:0" && break
		sleep 0.05
	done
	echo "$info" | grep -qx "$1:0" || { show_output; fail "$1 still set"; }
	echo "$info" | grep -qx "$2:ok" || { echo "$info"; show_output; fail "$2 is not ok"; }
}

case_redis() {
	if [ ! -x "$REDIS" ] || [ ! -x "$REDIS_CLI" ]; then t_skip_case "redis-server/redis-cli not installed (scripts/install-deps.sh)"; fi
	cas_case_begin
	cas_start "$CASE_DIR/cas"
	owner_new "$CASE_DIR/owner"
	RPORT=$(free_port)
	redis_yaml "$RPORT" >rds.yaml
	expect_created rds.yaml
	local conf=/etc/scone-redis/redis.conf i
	serve r1 rds/redis "$REDIS" "$conf"
	wait_port "$SRV_PID" "$RPORT"
	no_secret_in_proc "$SRV_PID" "$REDIS_PW"
	assert_eq "NOAUTH" "$("$REDIS_CLI" -h 127.0.0.1 -p "$RPORT" GET key:1 2>&1 | cut -c1-6)" "requirepass from CAS"
	# Background persistence forks: the child writes the new AOF base or the RDB
	# on the volume while the parent keeps appending to the AOF.
	for i in $(seq 1 900); do echo "SET key:$i redis-value-marker-$i"; done | rcli >/dev/null
	rcli BGREWRITEAOF >/dev/null
	redis_wait_persisted aof_rewrite_in_progress aof_last_bgrewrite_status
	for i in $(seq 901 1000); do echo "SET key:$i redis-value-marker-$i"; done | rcli >/dev/null
	assert_eq 1000 "$(rcli DBSIZE)" "DBSIZE"
	rcli BGSAVE >/dev/null
	redis_wait_persisted rdb_bgsave_in_progress rdb_last_bgsave_status
	rcli SHUTDOWN NOSAVE >/dev/null 2>&1 || true
	wait_exit "$SRV_PID"
	only_ciphertext "$CASE_DIR/data"
	# Restart: the keys are back from the AOF; then without the AOF: from the RDB.
	serve r2 rds/redis "$REDIS" "$conf"
	wait_port "$SRV_PID" "$RPORT"
	grep -q "DB loaded from append only file" "$OUT" || { show_output; fail "restart did not load the AOF"; }
	redis_check AOF
	rcli SHUTDOWN NOSAVE >/dev/null 2>&1 || true
	wait_exit "$SRV_PID"
	serve r3 rds/redis-rdb "$REDIS" "$conf"
	wait_port "$SRV_PID" "$RPORT"
	grep -q "DB loaded from disk" "$OUT" || { show_output; fail "restart without the AOF did not load the RDB"; }
	redis_check RDB
	no_secret_in_proc "$SRV_PID" "$REDIS_PW"
	rcli SHUTDOWN NOSAVE >/dev/null 2>&1 || true
	wait_exit "$SRV_PID"
	# On the host: ciphertext only, no config file, no values, no RDB magic, no password.
	only_ciphertext "$CASE_DIR/data"
	[ ! -e "$conf" ] || fail "$conf exists on the host"
	if grep -rqa -e "redis-value-marker" -e "REDIS" -e "$REDIS_PW" "$CASE_DIR/data"; then
		fail "plaintext (values, RDB magic or the password) in the volume directory"
	fi
	if grep -rqaF -e "$REDIS_PW" "$CASE_DIR"/r?.out "$CASE_DIR"/r?.err "$CASE_DIR/cas"; then
		fail "the password is in the server's output or the CAS store"
	fi
}

# ---------------- nginx ----------------

nginx_yaml() { # PORT_SENDFILE PORT_NOSENDFILE
	local n=$CASE_DIR/ngx
	cat <<YAML
name: web
version: "0.3"
security:
  attestation:
    mode: las
services:
  - name: cp
$LAS_ATTEST
    image_name: site
    command: cp -r @@1 @@2
  - name: nginx
$LAS_ATTEST
    image_name: nginx
    command: nginx -e $n/error.log -p $n -c /etc/scone-nginx/nginx.conf
images:
  - name: site
    volumes:
      - name: www
        path: $CASE_DIR/www
  - name: nginx
    volumes:
      - name: www
        path: $CASE_DIR/www
    injection_files:
      - path: /etc/scone-nginx/tls.crt
        content: \$\$SCONE::cert:crt\$\$
      - path: /etc/scone-nginx/tls.key
        content: \$\$SCONE::cert:privatekey\$\$
        permission: "0600"
      - path: /etc/scone-nginx/nginx.conf
        content: |
          daemon off;
          master_process on;
          user root;
          worker_processes 2;
          pid $n/nginx.pid;
          error_log $n/error.log info;
          events { worker_connections 64; }
          http {
            access_log $n/access.log;
            client_body_temp_path $n/tmp/body;
            proxy_temp_path $n/tmp/proxy;
            fastcgi_temp_path $n/tmp/fastcgi;
            uwsgi_temp_path $n/tmp/uwsgi;
            scgi_temp_path $n/tmp/scgi;
            ssl_certificate /etc/scone-nginx/tls.crt;
            ssl_certificate_key /etc/scone-nginx/tls.key;
            root $CASE_DIR/www/site;
            server { listen 127.0.0.1:$1 ssl; sendfile on; }
            server { listen 127.0.0.1:$2 ssl; sendfile off; }
          }
volumes:
  - name: www
secrets:
  - {name: cert, kind: x509, common_name: 127.0.0.1, san: [127.0.0.1], endpoint: server, valid_for: 1 days}
YAML
}

# key_line: a line from the middle of the PEM body of the private key CAS
# renders into the nginx service's tls.key (fetched as a runtime; kept in a
# variable only, never written to a file).
key_line() {
	runtime_new "$CASE_DIR/rt"
	las_evidence "$CASE_DIR/rt"
	curl -sk --max-time 30 --cert "$CASE_DIR/rt/owner.crt" --key "$CASE_DIR/rt/owner.key" \
		-H 'Content-Type: application/json' --data-binary "{\"config_id\": \"web/nginx\", \"evidence\": $EVIDENCE}" \
		"https://$CAS_ADDR/v1/service/config" | "$PYTHON" -c '
import base64, json, sys
d = json.load(sys.stdin)
for f in d["injection_files"]:
    if f["path"].endswith("tls.key"):
        lines = base64.b64decode(f["content_base64"]).decode().splitlines()
        body = [l for l in lines if l and not l.startswith("-----")]
        print(body[len(body) // 2])
'
}

case_nginx() {
	[ -x "$NGINX" ] || t_skip_case "nginx not installed (scripts/install-deps.sh: nginx-light)"
	cas_case_begin
	cas_start "$CASE_DIR/cas"
	owner_new "$CASE_DIR/owner"
	local p1 p2 n=$CASE_DIR/ngx kl want got
	p1=$(free_port)
	p2=$(free_port)
	[ "$p1" != "$p2" ] || p2=$(free_port)
	mkdir -p "$n/tmp" "$CASE_DIR/site"
	printf '<html><body>served from an encrypted volume SCONE-NGINX-MARKER-5d2</body></html>\n' >"$CASE_DIR/site/index.html"
	head -c 1048576 /dev/urandom >"$CASE_DIR/site/blob.bin"
	nginx_yaml "$p1" "$p2" >web.yaml
	expect_created web.yaml
	# The site goes into the volume with cp under the runtime.
	expect_ok scone run --config-id web/cp -- /usr/bin/cp "$CASE_DIR/site" "$CASE_DIR/www/site"
	only_ciphertext "$CASE_DIR/www"
	if grep -rqa "SCONE-NGINX-MARKER" "$CASE_DIR/www"; then fail "index.html in plaintext in the volume"; fi
	serve ngx web/nginx "$NGINX"
	wait_port "$SRV_PID" "$p1"
	wait_port "$SRV_PID" "$p2"
	local port f
	for port in "$p1" "$p2"; do
		for f in index.html blob.bin; do
			curl -sk --max-time 20 -o "$CASE_DIR/got.$f" "https://127.0.0.1:$port/$f" || fail "curl $f on port $port"
			cmp -s "$CASE_DIR/site/$f" "$CASE_DIR/got.$f" || { ls -la "$CASE_DIR/got.$f"; head -c 300 "$CASE_DIR/got.$f"; tail -20 "$CASE_DIR/ngx/error.log"; fail "$f over port $port is not byte-identical"; }
			rm -f "$CASE_DIR/got.$f"
		done
	done
	curl -sk --max-time 20 -o "$CASE_DIR/got.root" "https://127.0.0.1:$p1/" || fail "curl /"
	cmp -s "$CASE_DIR/site/index.html" "$CASE_DIR/got.root" || fail "/ is not index.html"
	# The served certificate is the one CAS generated.
	got=$(openssl s_client -connect "127.0.0.1:$p1" -servername 127.0.0.1 </dev/null 2>/dev/null |
		openssl x509 -outform DER | sha256sum | cut -d' ' -f1)
	expect_ok scone session read web --json
	jget "$OUT" '[s["public"] for s in d["secrets"] if s["name"] == "cert"][0]' >"$CASE_DIR/cas-cert.pem"
	want=$(cert_fp "$CASE_DIR/cas-cert.pem")
	assert_eq "$want" "$got" "served certificate fingerprint vs CAS's"
	no_secret_in_proc "$SRV_PID" "PRIVATE KEY"
	# Process titles show as without the runtime (the command holds no secret).
	ps -o args= --ppid "$SRV_PID" | grep -q '^nginx: worker process' || { ps -o pid,args --ppid "$SRV_PID"; fail "workers' process title"; }
	ps -o args= -p "$SRV_PID" | grep -q '^nginx: master process' || { ps -o args= -p "$SRV_PID"; fail "master's process title"; }
	kill -TERM "$SRV_PID"
	wait_exit "$SRV_PID"
	# The key is nowhere on disk: not under the case dir, not in /tmp.
	kl=$(key_line)
	[ ${#kl} -ge 40 ] || fail "could not fetch the key's PEM body for the check (got '${kl}')"
	if [ -e /etc/scone-nginx/tls.key ] || [ -e /etc/scone-nginx/nginx.conf ]; then fail "injection files on the host"; fi
	if grep -rqaF -e "$kl" "$CASE_DIR" /tmp 2>/dev/null; then fail "the private key is on disk"; fi
	grep -q "GET /blob.bin" "$n/access.log" || fail "no access log under the case dir"
	if grep -E '\[(alert|crit|emerg|error)\]' "$n/error.log"; then fail "nginx logged errors"; fi
	only_ciphertext "$CASE_DIR/www"
}

# ---------------- the working directory (what redis's `dir` needs) ----------------

case_cwd() {
	cas_case_begin
	cas_start "$CASE_DIR/cas"
	owner_new "$CASE_DIR/owner"
	cat >"$CASE_DIR/cwd.py" <<'PY'
import errno, os, sys
d = sys.argv[1]
os.chdir(d)
print("CWD=%s" % (os.getcwd() == d))
open("rel.txt", "w").write("relative SCONE-CWD-MARKER-8e1\n")
os.mkdir("sub")
os.rename("rel.txt", "sub/moved.txt")
print("READ=%r" % open(d + "/sub/moved.txt").read())
print("LIST=%s" % ",".join(sorted(os.listdir("."))))
os.chdir("sub")
print("SUB=%s,%r" % (os.getcwd() == d + "/sub", open("moved.txt").read()))
os.chdir("..")
print("BACK=%s" % (os.getcwd() == d))
try:
    os.chdir("")
except OSError as e:
    print("EMPTY=" + errno.errorcode[e.errno])
os.chdir("..")
print("UP=%s" % (os.getcwd() == os.path.dirname(d)))
os.chdir(".")
print("DOT=%s" % (os.getcwd() == os.path.dirname(d)))
open("host.txt", "w").write("on the host\n")
os.chdir(d)
fd = os.open(".", os.O_RDONLY)
os.fsync(fd)
os.close(fd)
print("STAT=%d" % os.stat("sub/moved.txt").st_size)
PY
	cat >cwd.yaml <<YAML
name: cwd
version: "0.3"
security:
  attestation:
    mode: las
services:
  - name: py
$LAS_ATTEST
    image_name: vol
    command: python3 $CASE_DIR/cwd.py @@1
images:
  - name: vol
    volumes:
      - name: data
        path: $CASE_DIR/data
volumes:
  - name: data
YAML
	expect_created cwd.yaml
	expect_ok scone run --config-id cwd/py -- /usr/bin/python3 "$CASE_DIR/data"
	assert_eq "CWD=True
READ='relative SCONE-CWD-MARKER-8e1\\n'
LIST=sub
SUB=True,'relative SCONE-CWD-MARKER-8e1\\n'
BACK=True
EMPTY=ENOENT
UP=True
DOT=True
STAT=30" "$(cat "$OUT")" "chdir/getcwd/relative paths in a volume"
	assert_eq "on the host" "$(cat "$CASE_DIR/host.txt")" "relative path after chdir out of the volume"
	only_ciphertext "$CASE_DIR/data"
	if grep -rqa "SCONE-CWD-MARKER" "$CASE_DIR/data"; then fail "plaintext in the volume directory"; fi
}

run_case "runtime servers: a volume's directories as the working directory (chdir, getcwd, relative paths)" case_cwd
run_case "runtime servers: redis-server with an injected config, AOF and RDB on an encrypted volume, data back after restarts" case_redis
run_case "runtime servers: nginx with an injected TLS key from CAS, static files from an encrypted volume (sendfile on/off)" case_nginx
t_done
