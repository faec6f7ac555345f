#!/usr/bin/env bash
# test_runtime_start.sh - the runtime's start-up: `scone run` (libscone.so
# preloaded) fetches a configuration from a real CAS before an unmodified
# program's main runs, and gives it the session's argv (@@N from the host),
# environment and working directory. Secrets must not appear in
# /proc/PID/environ or /proc/PID/cmdline; any failure keeps main from running.
# The program is Debian's python3, unmodified.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
. tests/integration/cas_lib.sh
t_init
cas_require
PY=/usr/bin/python3
RUNTIME_LIB=$PWD/build/lib/libscone.so
[ -x "$PY" ] || { t_fail "setup: /usr/bin/python3 missing (scripts/install-deps.sh)"; t_done; exit 1; }

# show.py prints what main sees, and whether the secret shows in /proc.
write_show() {
	cat >"$CASE_DIR/show.py" <<'PY'
import os, sys
secret = os.environ.get("SECRET", "")
print("ARGV=" + repr(sys.argv[1:]))
print("CWD=" + os.getcwd())
print("SECRET_LEN=%d" % len(secret))
print("HOSTVAR=" + os.environ.get("HOSTVAR", "<absent>"))
print("PLAIN=" + os.environ.get("PLAIN", "<absent>"))
import subprocess
child = subprocess.run(["/usr/bin/python3", "-c", "import sys; print(sys.argv[1:])", "child-arg"],
                       capture_output=True, text=True).stdout.strip()
print("CHILD=" + child)
for f in ("environ", "cmdline"):
    data = open("/proc/self/" + f, "rb").read()
    print("IN_PROC_%s=%s" % (f.upper(), bool(secret) and secret.encode() in data))
open(os.environ["SCONE_TEST_OUT"] + "/secret", "w").write(secret)
PY
}

session_yaml() { # NAME PWD
	cat <<YAML
name: $1
version: "0.3"
security:
  attestation:
    mode: none
services:
  - name: py
    command: python3 $CASE_DIR/show.py --port @@1 "two words"
    pwd: $2
    environment:
      SECRET: \$\$SCONE::pw\$\$
      PLAIN: hello
      SCONE_TEST_OUT: $CASE_DIR
  - name: files
    image_name: with-files
    command: python3 $CASE_DIR/files.py
  - name: cat
    image_name: with-files
    command: cat /etc/scone-test/app.conf
  - name: vol
    image_name: with-volume
    command: python3 -c pass
images:
  - name: with-files
    injection_files:
      - path: /etc/scone-test/app.conf
        content: |
          password = \$\$SCONE::pw\$\$
        permission: "0640"
  - name: with-volume
    volumes:
      - name: data
        path: $CASE_DIR/afile/data
volumes:
  - name: data
secrets:
  - name: pw
    kind: ascii
    size: 30
YAML
}

start() {
	cas_case_begin
	cas_start "$CASE_DIR/cas"
	owner_new "$CASE_DIR/owner"
	write_show
	mkdir -p "$CASE_DIR/wd"
	: >"$CASE_DIR/afile" # a volume mount point under a regular file cannot be created
	session_yaml rt "$CASE_DIR/wd" >rt.yaml
	expect_created rt.yaml
}

case_injects() {
	start
	HOSTVAR=leak expect_ok scone run --config-id rt/py -- "$PY" 8080
	grep -qx "ARGV=\['--port', '8080', 'two words'\]" "$OUT" || { show_output; fail "argv not the session's"; }
	grep -qx "CWD=$CASE_DIR/wd" "$OUT" || { show_output; fail "working directory not the session's pwd"; }
	grep -qx "SECRET_LEN=30" "$OUT" || { show_output; fail "secret not injected"; }
	grep -qx "PLAIN=hello" "$OUT" || { show_output; fail "plain variable not injected"; }
	grep -qx "CHILD=\['child-arg'\]" "$OUT" || { show_output; fail "a child process did not keep its own argv"; }
	grep -qx "HOSTVAR=<absent>" "$OUT" || { show_output; fail "a host variable reached the program"; }
	grep -qx "IN_PROC_ENVIRON=False" "$OUT" || { show_output; fail "secret visible in /proc/PID/environ"; }
	grep -qx "IN_PROC_CMDLINE=False" "$OUT" || { show_output; fail "secret visible in /proc/PID/cmdline"; }
	grep -q "running without a TEE" "$ERR" || { show_output; fail "no warning about running without a TEE"; }
	if grep -rqF -f "$CASE_DIR/secret" "$CASE_DIR/cas" "$CASE_DIR/cas.log" "$ERR"; then
		fail "the secret is on disk, in the CAS log or on stderr"
	fi
	# The same through LD_PRELOAD and the SCONE_* variables directly.
	expect_ok preloaded SCONE_CONFIG_ID=rt/py "SCONE_CAS_ADDR=$CAS_ADDR" \
		"SCONE_CAS_FINGERPRINT=$(cert_fp "$CAS_DIR/cas.crt")" -- 9
	grep -qx "ARGV=\['--port', '9', 'two words'\]" "$OUT" || { show_output; fail "LD_PRELOAD start: argv"; }
}

# preloaded ENV... -- ARGS: python3 started directly with libscone.so preloaded and the
# SCONE_* variables given (a function, so that no `timeout` is preloaded in between).
preloaded() {
	local vars=()
	while [ "$1" != -- ]; do
		vars+=("$1")
		shift
	done
	shift
	env -i PATH=/usr/bin:/bin "${vars[@]}" /bin/sh -c 'LD_PRELOAD=$0 exec "$@"' "$RUNTIME_LIB" "$PY" "$@"
}

case_refusals() {
	start
	expect_no_main "NOT_FOUND" scone run --config-id rt/nope -- "$PY" 1
	expect_no_main "UNTRUSTED" scone run --config-id rt/py --cas-fingerprint "$(printf '%064d' 0)" -- "$PY" 1
	expect_no_main "@@1" scone run --config-id rt/py -- "$PY"
	expect_no_main "volumes: .*afile" scone run --config-id rt/vol -- "$PY"
	expect_no_main "SCONE_CAS_FINGERPRINT" preloaded SCONE_CONFIG_ID=rt/py "SCONE_CAS_ADDR=$CAS_ADDR" -- 1
	cas_stop
	expect_no_main "NETWORK" scone run --config-id rt/py -- "$PY" 1
}

case_out_of_the_way() {
	start
	HOSTVAR=kept expect_ok scone run -- "$PY" -c 'import os, sys; print(sys.argv[1:], os.environ["HOSTVAR"])' a b
	assert_eq "['a', 'b'] kept" "$(cat "$OUT")" "a program without SCONE_CONFIG_ID"
	[ ! -s "$ERR" ] || { show_output; fail "the runtime printed something without a configuration"; }
	SCONE_VERSION=1 expect_ok scone run --config-id rt/py -- "$PY" 1
	grep -q "scone runtime: config_id rt/py" "$ERR" || { show_output; fail "SCONE_VERSION=1 printed no view"; }
	if grep -qF -f "$CASE_DIR/secret" "$ERR"; then fail "SCONE_VERSION=1 printed the secret"; fi
}

# files.py: the injected file through open, stdio-like reads, stat, access; writes refused.
write_files_py() {
	cat >"$CASE_DIR/files.py" <<'PY'
import errno, os
p = "/etc/scone-test/app.conf"
text = open(p).read()
st = os.stat(p)
print("TEXT_OK=%s" % text.startswith("password = "))
print("SIZE_OK=%s" % (st.st_size == len(text.encode())))
print("MODE=%o" % (st.st_mode & 0o7777))
print("READABLE=%s" % os.access(p, os.R_OK))
fd = os.open(p, os.O_RDONLY)
print("PREAD_OK=%s" % (os.pread(fd, 8, 11) == text.encode()[11:19]))
os.close(fd)
try:
    open(p, "w")
    print("WRITE=allowed")
except OSError as e:
    print("WRITE=%s" % errno.errorcode[e.errno])
PY
}

case_injection_files() {
	start
	write_files_py
	expect_ok scone run --config-id rt/files -- "$PY"
	for want in TEXT_OK=True SIZE_OK=True MODE=640 READABLE=True PREAD_OK=True WRITE=EROFS; do
		grep -qx "$want" "$OUT" || { show_output; fail "injection file through python: expected $want"; }
	done
	[ ! -e /etc/scone-test ] || fail "/etc/scone-test exists on the host disk"
	expect_ok scone run --config-id rt/cat -- /usr/bin/cat
	grep -q '^password = ' "$OUT" || { show_output; fail "cat did not read the injected file"; }
	sed -n 's/^password = //p' "$OUT" >pw
	[ -s pw ] || fail "no password rendered"
	if grep -rqF -f pw "$CASE_DIR/cas" "$CASE_DIR/cas.log" /etc 2>/dev/null; then
		fail "the injected secret is on disk"
	fi
	# Outside the runtime the path does not exist.
	[ ! -e /etc/scone-test/app.conf ] || fail "the injected file is visible to other processes"
}

run_case "runtime: argv, environment and pwd from CAS; no secret in /proc or on disk" case_injects
run_case "runtime: injection files served from memory (open, stat, access, pread, cat); writes refused" case_injection_files
run_case "runtime: every failure keeps main from running, with one clear line" case_refusals
run_case "runtime: without a configuration it stays out of the way; SCONE_VERSION=1" case_out_of_the_way
t_done
