#!/usr/bin/env bash
# test_cas_memory.sh - what scone-cas's memory gives away on its host: it
# is not dumpable (a process of the same uid can neither read its
# /proc/PID/environ nor own its /proc files; a control process of that uid
# can), a crash writes no core file (a control process's crash does), and
# a full memory image taken by root (gcore, which root may still take) holds
# neither the master, sealing or token key nor any generated secret value
# that configurations carried - while positive controls (plain session text)
# are found in the same image.
#
# scone-cas runs as the unprivileged user nobody here (setpriv), so that
# "the same uid" means something. Cases skip when the environment cannot
# show the effect (no core files written at all, no gcore).
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
. tests/integration/cas_lib.sh
t_init
cas_require

NOBODY_UID=65534
NOBODY_GID=65534
AS_NOBODY=(setpriv --reuid="$NOBODY_UID" --regid="$NOBODY_GID" --clear-groups)
PLAIN_MARKER=plain-marker-7d1e44b9c2

mem_session() {
	cat <<EOF
name: memscan
version: "0.3"
security:
  attestation:
    mode: none
services:
  - name: app
    command: /bin/app
    environment:
      PW: \$\$SCONE::pw\$\$
      BIN: \$\$SCONE::bin:hex\$\$
      KEY: \$\$SCONE::k\$\$
      PLAIN: $PLAIN_MARKER
secrets:
  - {name: pw, kind: ascii, size: 32}
  - {name: bin, kind: binary, size: 32}
  - {name: k, kind: private-key, key_type: P-384}
EOF
}

# nobody_dir: a directory the user nobody may write (the case's own is root's, mode 700).
nobody_dir() {
	chmod 711 "$T_TMP" "$CASE_DIR"
	mkdir -p "$CASE_DIR/nb"
	chown "$NOBODY_UID:$NOBODY_GID" "$CASE_DIR/nb"
	echo "$CASE_DIR/nb"
}

# start_as_nobody DIR: scone-cas as nobody with DIR as its working directory and state parent.
start_as_nobody() {
	CAS_WRAP=(env -C "$1" "${AS_NOBODY[@]}")
	cas_start "$1/state"
	CAS_WRAP=()
}

case_not_dumpable() {
	local nb ctl
	cas_case_begin
	nb=$(nobody_dir)
	start_as_nobody "$nb"
	# A control process of the same uid: its /proc files are its own, its environ readable.
	env -C "$nb" "${AS_NOBODY[@]}" sleep 60 &
	ctl=$!
	case_track_pid "$ctl"
	sleep 0.2
	assert_eq "$NOBODY_UID" "$(stat -c %u "/proc/$ctl/status")" "owner of the control process's /proc files"
	"${AS_NOBODY[@]}" cat "/proc/$ctl/environ" >/dev/null || fail "the control process's environ is not readable by its uid"
	# scone-cas: owned by root, unreadable to its own uid.
	assert_eq 0 "$(stat -c %u "/proc/$CAS_PID/status")" "owner of scone-cas's /proc files (non-dumpable)"
	if "${AS_NOBODY[@]}" cat "/proc/$CAS_PID/environ" >/dev/null 2>&1; then
		fail "the same uid reads scone-cas's /proc/PID/environ"
	fi
	if "${AS_NOBODY[@]}" cat "/proc/$CAS_PID/mem" >/dev/null 2>&1; then
		fail "the same uid opens scone-cas's /proc/PID/mem"
	fi
	grep -q '^Core dumping\|^CoreDumping' "/proc/$CAS_PID/status" || true
	kill "$ctl"
	cas_stop
}

case_no_core() {
	local nb ctl i
	cas_case_begin
	ulimit -c unlimited 2>/dev/null || t_skip_case "cannot raise the core size limit"
	nb=$(nobody_dir)
	# Control: the same user, the same directory and limit: a crash leaves a core file.
	env -C "$nb" "${AS_NOBODY[@]}" sleep 60 &
	ctl=$!
	sleep 0.2
	kill -SEGV "$ctl"
	wait "$ctl" 2>/dev/null || true
	for ((i = 0; i < 20; i++)); do
		compgen -G "$nb/core*" >/dev/null && break
		sleep 0.1
	done
	compgen -G "$nb/core*" >/dev/null ||
		t_skip_case "no core file from a crashing control process (core_pattern $(cat /proc/sys/kernel/core_pattern))"
	rm -f "$nb"/core*
	start_as_nobody "$nb"
	kill -SEGV "$CAS_PID"
	wait "$CAS_PID" 2>/dev/null || true
	case_untrack_pid "$CAS_PID"
	sleep 0.5
	ls -la "$nb"
	if compgen -G "$nb/core*" >/dev/null; then
		fail "scone-cas left a core file when it crashed"
	fi
}

# memory_needles STATE_DIR CONFIG_JSON: one line per secret form to look for (label:hex of the bytes).
memory_needles() {
	"$PYTHON" - "$1" "$2" <<'EOF'
import base64, hashlib, hmac, json, sys
state, cfg = sys.argv[1], json.load(open(sys.argv[2]))

def hkdf(ikm, info):
    prk = hmac.new(b"\0" * 32, ikm, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()

def out(label, b):
    print("%s:%s" % (label, b.hex()))

master_hex = open(state + "/master.key").read().strip()
master = bytes.fromhex(master_hex)
out("master key", master)
out("master key (hex)", master_hex.encode())
out("sealing key", hkdf(master, b"scone-cas store seal v1"))
out("token key", hkdf(master, b"scone-cas instance token v1"))
env = cfg["environment"]
out("ascii secret", env["PW"].encode())
out("binary secret", bytes.fromhex(env["BIN"]))
out("binary secret (hex)", env["BIN"].encode())
pem = env["KEY"]
der = base64.b64decode("".join(l for l in pem.splitlines() if not l.startswith("-----")))
out("private key (DER)", der)
for i, line in enumerate(l for l in pem.splitlines() if not l.startswith("-----")):
    out("private key (PEM line %d)" % i, line.encode())
EOF
}

case_gcore() {
	local nb rt=$CASE_DIR/rt o=$CASE_DIR/o i
	cas_case_begin
	command -v gcore >/dev/null || t_skip_case "gcore (gdb) is not installed"
	nb=$(nobody_dir)
	start_as_nobody "$nb"
	owner_new "$o"
	runtime_new "$rt"
	mem_session >mem.yaml
	expect_created mem.yaml
	# Several fetches, over several connections: the values pass through JSON, TLS and the cache.
	for i in 1 2 3 4 5 6; do
		fetch_config "$rt" memscan/app
		[ "$STATUS" = 200 ] || { show_file "$BODY"; fail "fetch: HTTP $STATUS"; }
	done
	cp "$BODY" config.json
	memory_needles "$nb/state" config.json >needles.txt
	timeout 120 gcore -o "$CASE_DIR/image" "$CAS_PID" >gcore.log 2>&1 || { cat gcore.log; fail "gcore failed"; }
	ls -la "$CASE_DIR"/image.*
	"$PYTHON" - "$CASE_DIR/image.$CAS_PID" needles.txt "$PLAIN_MARKER" memscan <<'EOF' || fail "secrets in scone-cas's memory image"
import struct, sys
core = open(sys.argv[1], "rb").read()
# The process's memory: the PT_LOAD segments of the ELF core (not its notes, which
# hold thread registers; vector registers may still carry the last bytes a thread
# copied, and whoever can take this image can read registers anyway).
phoff, = struct.unpack_from("<Q", core, 0x20)
phentsize, phnum = struct.unpack_from("<HH", core, 0x36)
parts = []
for i in range(phnum):
    p_type, _, off, _, _, filesz, _, _ = struct.unpack_from("<IIQQQQQQ", core, phoff + i * phentsize)
    if p_type == 1:
        parts.append(core[off:off + filesz])
image = b"\0".join(parts)
found = 0
for line in open(sys.argv[2]):
    label, _, h = line.strip().partition(":")
    if bytes.fromhex(h) in image:
        print("FOUND %s in the memory image" % label)
        found += 1
for control in sys.argv[3:]:
    if control.encode() not in image:
        sys.exit("positive control %r is not in the image: the image is not the heap" % control)
print("%d bytes of memory in %d segments, controls found, %d secret forms found" % (len(image), len(parts), found))
sys.exit(1 if found else 0)
EOF
	rm -f "$CASE_DIR"/image.*
	cas_stop
}

run_case "cas memory: not dumpable (its /proc files are root's; the same uid cannot read environ or mem)" case_not_dumpable
run_case "cas memory: a crash leaves no core file (a control process's crash does)" case_no_core
run_case "cas memory: a root gcore image holds no key and no generated secret value (controls found)" case_gcore
t_done
