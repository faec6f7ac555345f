#!/usr/bin/env bash
# test_runtime_start.sh - the runtime's start-up: `scone run` (libscone.so
# preloaded) fetches a configuration from a real CAS before an unmodified
# program's main runs, and gives it the session's argv (@@N from the host),
# environment and working directory. Secrets must not appear in
# /proc/PID/environ or /proc/PID/cmdline; any failure keeps main from running.
# The program is Debian's python3, unmodified, attested by a LAS (mode las).
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
. tests/integration/cas_lib.sh
t_init
cas_require
PY=/usr/bin/python3
RUNTIME_LIB=$PWD/build/lib/libscone.so
RUNTIME_MAP=$PWD/src/runtime/libscone.map
[ -x "$PY" ] || { t_fail "setup: /usr/bin/python3 missing (scripts/install-deps.sh)"; t_done; exit 1; }
# Attestation mode las: the programs started (entry scripts start under sh or env).
las_script_start
las_attestation "$PY" /bin/cat /bin/sh /usr/bin/env

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
    mode: las
services:
  - name: py
$LAS_ATTEST
    command: python3 $CASE_DIR/show.py --port @@1 "two words"
    pwd: $2
    environment:
      SECRET: \$\$SCONE::pw\$\$
      PLAIN: hello
      SCONE_TEST_OUT: $CASE_DIR
  - name: script
$LAS_ATTEST
    command: entry --port @@1 "two words"
    environment:
      SECRET: \$\$SCONE::pw\$\$
  - name: shim
$LAS_ATTEST
    command: python3 -c "import os, sys; print('SHIM', sys.argv[1:], len(os.environ['SECRET']))" @@1
    environment:
      SECRET: \$\$SCONE::pw\$\$
  - name: files
$LAS_ATTEST
    image_name: with-files
    command: python3 $CASE_DIR/files.py
  - name: cat
$LAS_ATTEST
    image_name: with-files
    command: cat /etc/scone-test/app.conf
  - name: vol
$LAS_ATTEST
    image_name: with-volume
    command: python3 -c pass
  - name: go
$LAS_ATTEST
    command: $CASE_DIR/goprog --flag @@1 "two words"
    environment:
      GREETING: hello-from-cas
      SECRET: \$\$SCONE::pw\$\$
  - name: exec
$LAS_ATTEST
    image_name: with-both
    command: python3 $CASE_DIR/exec.py
    environment:
      SECRET: \$\$SCONE::pw\$\$
      PLAIN: hello
images:
  - name: with-both
    injection_files:
      - path: /etc/scone-test/app.conf
        content: |
          password = \$\$SCONE::pw\$\$
    volumes:
      - name: edata
        path: $CASE_DIR/edata
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
  - name: edata
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
	env -i PATH=/usr/bin:/bin "SCONE_LAS_ADDR=$SCONE_LAS_ADDR" "${vars[@]}" /bin/sh -c 'LD_PRELOAD=$0 exec "$@"' "$RUNTIME_LIB" "$PY" "$@"
}

case_refusals() {
	start
	expect_no_main "NOT_FOUND" scone run --config-id rt/nope -- "$PY" 1
	expect_no_main "UNTRUSTED" scone run --config-id rt/py --cas-fingerprint "$(printf '%064d' 0)" -- "$PY" 1
	expect_no_main "@@1" scone run --config-id rt/py -- "$PY"
	expect_no_main "volumes: .*afile" scone run --config-id rt/vol -- "$PY"
	expect_no_main "SCONE_CAS_FINGERPRINT" preloaded SCONE_CONFIG_ID=rt/py "SCONE_CAS_ADDR=$CAS_ADDR" -- 1
	# SCONE_MODE=HW on a host without a TEE interface (no configfs-tsm, no /dev/attestation).
	if [ ! -d /sys/kernel/config/tsm/report ] && [ ! -e /dev/attestation ]; then
		SCONE_MODE=HW expect_no_main "SCONE_MODE=HW: .*no TEE interface here: neither configfs-tsm" \
			scone run --config-id rt/py -- "$PY" 1
	fi
	SCONE_MODE=TEE expect_no_main "SCONE_MODE: .*expected HW, SIM or AUTO" scone run --config-id rt/py -- "$PY" 1
	# A static program would run without the runtime (ld.so ignores LD_PRELOAD): refused.
	printf 'int main(void) { return 0; }\n' >static.c
	if "${CC:-cc}" -static -o static static.c 2>/dev/null; then
		expect_fail_with "statically linked: the runtime cannot be preloaded" scone run --config-id rt/py -- ./static
	fi
	cas_stop
	expect_no_main "NETWORK" scone run --config-id rt/py -- "$PY" 1
}

case_out_of_the_way() {
	# What enters every program: libscone.so needs libc only (OpenSSL is linked
	# in) and exports nothing but its interposers (src/runtime/libscone.map).
	local needed exported
	needed=$(readelf -d "$RUNTIME_LIB" | sed -n 's/.*NEEDED.*\[\(.*\)\]/\1/p' | grep -vxE 'libc\.so\.6|ld-linux-x86-64\.so\.2' || true)
	[ -z "$needed" ] || fail "libscone.so needs more than libc: $needed"
	exported=$(nm -D --defined-only "$RUNTIME_LIB" | awk '{print $3}' | sed 's/@.*//' | sort -u)
	for sym in $exported; do
		grep -qE "(^|[[:space:];])$sym;" "$RUNTIME_MAP" || fail "libscone.so exports $sym, which is not an interposer"
	done
	start
	HOSTVAR=kept expect_ok scone run -- "$PY" -c 'import os, sys; print(sys.argv[1:], os.environ["HOSTVAR"])' a b
	assert_eq "['a', 'b'] kept" "$(cat "$OUT")" "a program without SCONE_CONFIG_ID"
	[ ! -s "$ERR" ] || { show_output; fail "the runtime printed something without a configuration"; }
	SCONE_VERSION=1 expect_ok scone run --config-id rt/py -- "$PY" 1
	grep -q "scone: info: runtime: config_id rt/py" "$ERR" || { show_output; fail "SCONE_VERSION=1 printed no view"; }
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

# exec.py: the programs a program under the runtime starts (every way a
# program can start one) get the session's variables and injection files and
# the volume, through the handover, never through their /proc/PID/environ.
write_exec_py() {
	cat >"$CASE_DIR/exec.py" <<'PY'
import ctypes, os, subprocess, sys
d = os.path.dirname(os.path.abspath(__file__))
secret = os.environ["SECRET"]
child = d + "/child.py"
open(child, "w").write("""
import os, sys
s = os.environ.get("SECRET", "")
env = open("/proc/self/environ", "rb").read()
conf = open("/etc/scone-test/app.conf").read()
vol = sys.argv[2] if len(sys.argv) > 2 else ""
if vol:
    with open(vol, "a") as f:
        f.write(sys.argv[1] + "\\n")
print("%s len=%d proc=%s conf=%s plain=%s" % (sys.argv[1], len(s), s.encode() in env if s else "-",
      conf == "password = " + s + "\\n", os.environ.get("PLAIN")), flush=True)
""")
log = d + "/edata/log.txt"
open(log, "w").write("parent\n")
py = "/usr/bin/python3"
print(subprocess.run([py, child, "subprocess", log], capture_output=True, text=True).stdout.strip())
print(subprocess.run(["/bin/sh", "-c", "exec %s %s sh-exec %s" % (py, child, log)], capture_output=True, text=True).stdout.strip())
print(subprocess.run(["/bin/sh", "-c", "%s %s sh-child %s; echo shell-sees=${#SECRET}" % (py, child, log)],
                     capture_output=True, text=True).stdout.strip().replace("\n", " | "))
sys.stdout.flush()
os.system("%s %s system %s" % (py, child, log))
libc = ctypes.CDLL(None)
libc.popen.restype = ctypes.c_void_p
libc.popen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.pclose.argtypes = [ctypes.c_void_p]
libc.fgets.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p]
f = libc.popen(("%s %s popen" % (py, child)).encode(), b"r")
buf = ctypes.create_string_buffer(512)
libc.fgets(buf, 512, f)
print(buf.value.decode().strip())
print("pclose=%d" % libc.pclose(f))
# An fd on the volume handed to the child: it keeps writing where the parent was.
fd = os.open(d + "/edata/fdlog.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
os.write(fd, b"from parent;")
subprocess.run([py, "-c", "import os, sys; os.write(int(sys.argv[1]), b'from child;')", str(fd)], pass_fds=[fd])
os.write(fd, b"parent again")
os.close(fd)
print("FDLOG=" + open(d + "/edata/fdlog.txt").read())
pid = os.fork()
if pid == 0:
    os.execv(py, [py, child, "fork-exec", log])
os.waitpid(pid, 0)
print("LOG=" + ",".join(open(log).read().split()))
PY
}

case_exec() {
	start
	write_exec_py
	expect_ok scone run --config-id rt/exec -- "$PY"
	local how
	for how in subprocess sh-exec sh-child system popen fork-exec; do
		grep -q "^$how len=30 proc=False conf=True plain=hello" "$OUT" ||
			{ show_output; fail "$how: the child did not get the secret from the handover (or it is in its /proc/PID/environ)"; }
	done
	grep -q "shell-sees=30" "$OUT" || { show_output; fail "the shell did not get the session's variable"; }
	grep -qx "pclose=0" "$OUT" || { show_output; fail "pclose status"; }
	grep -qx "FDLOG=from parent;from child;parent again" "$OUT" || { show_output; fail "an inherited volume fd"; }
	grep -qx "LOG=parent,subprocess,sh-exec,sh-child,system,fork-exec" "$OUT" || { show_output; fail "children writing to the volume"; }
	ls "$CASE_DIR/edata" | grep -v '^volume\.fspf' | grep -qvE '^[0-9a-f]{32}$' && { ls -la "$CASE_DIR/edata"; fail "plaintext names on the volume"; }
	if grep -rqa -e "from child" -e "sh-exec" "$CASE_DIR/edata"; then fail "a child's plaintext is on disk"; fi
	[ ! -e /etc/scone-test ] || fail "/etc/scone-test exists on the host disk"
}

# Entrypoints that are scripts: the kernel puts the interpreter (and its argument) in front of the
# script's path; those stay, the session's command applies to the script's own arguments.
case_scripts() {
	start
	local kind
	for kind in sh envbash envS; do
		case $kind in
		sh) printf '#!/bin/sh\n' >entry ;;
		envbash) printf '#!/usr/bin/env bash\n' >entry ;;
		envS) printf '#!/usr/bin/env -S bash -e\n' >entry ;;
		esac
		cat >>entry <<'SH'
printf 'ARGS='; printf '%s|' "$@"; echo
echo "ZERO=$(basename "$0") SECRET_LEN=${#SECRET}"
SH
		chmod +x entry
		expect_ok scone run --config-id rt/script -- ./entry 8080
		grep -qx "ARGS=--port|8080|two words|" "$OUT" || { show_output; fail "$kind: the script's arguments"; }
		grep -qx "ZERO=entry SECRET_LEN=30" "$OUT" || { show_output; fail "$kind: \$0 or the environment"; }
	done
	# A wrapper that is a bash script in front of the real program (as version managers install).
	mkdir -p shimbin
	printf '#!/usr/bin/env bash\nexec /usr/bin/python3 "$@"\n' >shimbin/python3
	chmod +x shimbin/python3
	PATH="$CASE_DIR/shimbin:$PATH" expect_ok scone run --config-id rt/shim -- python3 arg1
	grep -qx "SHIM \['arg1'\] 30" "$OUT" || { show_output; fail "a #!/usr/bin/env bash shim in front of python3"; }
}

# A cgo Go program reads argv, the environment and the auxiliary vector as one
# block from main's pointer (the page size comes from auxv after the
# environment's NULL): main must get a well-formed block in both start paths.
write_go() {
	cat >"$CASE_DIR/main.go" <<'GO'
package main

/*
#include <unistd.h>
static long page(void) { return sysconf(_SC_PAGESIZE); }
*/
import "C"

import (
	"fmt"
	"os"
)

func main() {
	fmt.Printf("ARGS=%q\n", os.Args[1:])
	fmt.Printf("GREETING=%s\n", os.Getenv("GREETING"))
	fmt.Printf("SECRET_LEN=%d\n", len(os.Getenv("SECRET")))
	fmt.Printf("FSPF_VARS=%q\n", os.Getenv("SCONE_FSPF")+os.Getenv("SCONE_FSPF_KEY")+os.Getenv("SCONE_FSPF_TAG"))
	fmt.Printf("PAGESIZE=%d C=%d\n", os.Getpagesize(), int(C.page()))
}
GO
	(cd "$CASE_DIR" && HOME="$CASE_DIR" GOCACHE="$CASE_DIR/gocache" GOPATH="$CASE_DIR/gopath" CGO_ENABLED=1 \
		GOFLAGS=-mod=mod GOTOOLCHAIN=local GOPROXY=off /usr/bin/go build -o goprog main.go) >"$CASE_DIR/go.log" 2>&1 ||
		{ cat "$CASE_DIR/go.log"; fail "go build (golang-go: scripts/install-deps.sh)"; }
}

case_go() {
	local line key tag page
	write_go
	las_attestation "$PY" /bin/cat /bin/sh /usr/bin/env "$CASE_DIR/goprog" # the program is built here
	start
	page=$(getconf PAGESIZE)
	# The CAS path: the session's argv (a heap array before) and environment.
	expect_ok scone run --config-id rt/go -- "$CASE_DIR/goprog" 42
	grep -qx 'ARGS=\["--flag" "42" "two words"\]' "$OUT" || { show_output; fail "CAS path: argv"; }
	grep -qx "GREETING=hello-from-cas" "$OUT" || { show_output; fail "CAS path: environment"; }
	grep -qx "SECRET_LEN=30" "$OUT" || { show_output; fail "CAS path: secret"; }
	grep -qx "PAGESIZE=$page C=$page" "$OUT" || { show_output; fail "CAS path: auxv (page size)"; }
	# The SCONE_FSPF path: its variables leave the environment without shrinking it in place.
	mkdir -p "$CASE_DIR/fs/native"
	(cd "$CASE_DIR/fs" && scone fspf create volume.fspf >/dev/null &&
		scone fspf addr volume.fspf "$CASE_DIR/fsmnt" --encrypted --kernel enc >/dev/null &&
		scone fspf addf volume.fspf "$CASE_DIR/fsmnt" native enc >/dev/null) || fail "scone fspf"
	line=$(cd "$CASE_DIR/fs" && scone fspf encrypt volume.fspf) || fail "scone fspf encrypt"
	key=${line##*key: }
	tag=${line##*tag: }
	tag=${tag%% *}
	run_cmd env -i PATH=/usr/bin:/bin GREETING=host SCONE_FSPF="$CASE_DIR/fs/volume.fspf" SCONE_FSPF_KEY="$key" \
		SCONE_FSPF_TAG="$tag" /bin/sh -c 'LD_PRELOAD=$0 exec "$@"' "$RUNTIME_LIB" "$CASE_DIR/goprog" a "b c"
	[ "$RC" = 0 ] || { show_output; fail "SCONE_FSPF path: exit $RC"; }
	grep -qx 'ARGS=\["a" "b c"\]' "$OUT" || { show_output; fail "SCONE_FSPF path: argv"; }
	grep -qx "GREETING=host" "$OUT" || { show_output; fail "SCONE_FSPF path: environment"; }
	grep -qx 'FSPF_VARS=""' "$OUT" || { show_output; fail "SCONE_FSPF path: its variables reached the program"; }
	grep -qx "PAGESIZE=$page C=$page" "$OUT" || { show_output; fail "SCONE_FSPF path: auxv (page size)"; }
}

run_case "runtime: argv, environment and pwd from CAS; no secret in /proc or on disk" case_injects
run_case "runtime: injection files served from memory (open, stat, access, pread, cat); writes refused" case_injection_files
run_case "runtime: exec'd and spawned programs get the session's variables, files and volumes through the handover, not /proc" case_exec
run_case "runtime: script entrypoints (#!/bin/sh, #!/usr/bin/env bash, #!/usr/bin/env -S) keep their interpreter; the command applies to the script" case_scripts
run_case "runtime: a cgo Go program gets a well-formed argv/environment/auxv block (CAS and SCONE_FSPF paths)" case_go
run_case "runtime: every failure keeps main from running, with one clear line" case_refusals
run_case "runtime: without a configuration it stays out of the way; SCONE_VERSION=1" case_out_of_the_way
t_done
