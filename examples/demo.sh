#!/usr/bin/env bash
# The scone demo (make demo): protect a directory of files into an encrypted
# volume, show that the disk holds only ciphertext, read the files back
# verified, then tamper with one byte and watch it being caught; then keep
# secrets in a local CAS and run an unmodified program (Debian's python3)
# under the runtime, attested by a local LAS (mode las: CAS releases nothing
# to a client without a report of python3's measurement from a listed host;
# the LAS needs root): it gets a generated password in its environment and in
# an injected file (neither in /proc/PID/environ or cmdline), writes notes to
# an encrypted session volume (ciphertext only on disk), reads them back in a
# second run, and an older copy of the volume is refused. Any failed check
# prints a FAIL line and exits non-zero. Needs no stdin; cleans up after itself.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SCONE=${SCONE_BIN:-$PWD/build/bin/scone}
CAS_BIN=${SCONE_CAS_BIN:-$(dirname "$SCONE")/scone-cas}
LAS_BIN=${SCONE_LAS_BIN:-$(dirname "$SCONE")/scone-las}
# Debian's python3, never a version-manager shim from PATH (it breaks under LD_PRELOAD).
PY=/usr/bin/python3
work=$(mktemp -d /tmp/scone-demo.XXXXXX)
cas_pid='' run_pid='' las_pid=''
cleanup() {
	[ -z "$run_pid" ] || kill "$run_pid" 2>/dev/null || true
	if [ -n "$las_pid" ]; then
		kill "$las_pid" 2>/dev/null || true
		wait "$las_pid" 2>/dev/null || true
	fi
	if [ -n "$cas_pid" ]; then
		kill "$cas_pid" 2>/dev/null || true
		wait "$cas_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
export SCONE_NO_PROGRESS=1
[ -x "$PY" ] || fail "$PY is missing (scripts/install-deps.sh installs it)"
[ "$(id -u)" -eq 0 ] || fail "the demo starts a Local Attestation Service, which reads other processes' mappings: run it as root"

step "1. Some confidential files (plaintext, as an application would have them)"
mkdir -p "$work/native/config"
echo "db_password=correct-horse-battery-staple" >"$work/native/config/app.conf"
seq 1 200000 | sed 's/^/customer record /' >"$work/native/customers.txt"
ls -l "$work/native" "$work/native/config"

step "2. Describe the volume: /data is encrypted, stored on the host under ./enc"
cd "$work"
"$SCONE" fspf create volume.fspf
"$SCONE" fspf addr volume.fspf /data --encrypted --kernel enc
"$SCONE" fspf addf volume.fspf /data native enc
line=$("$SCONE" fspf encrypt volume.fspf)
echo "$line" | sed 's/key: .*/key: <hidden: kept by the owner, later by CAS>/'
KEY=$(echo "$line" | sed 's/.* key: //')
TAG=$(echo "$line" | sed 's/.* tag: \([0-9a-f]*\) .*/\1/')
export SCONE_FSPF_KEY=$KEY SCONE_FSPF_TAG=$TAG # keeps the key off the command line

step "3. What is on disk: random-looking file names and ciphertext only"
ls -l enc
if grep -rq "correct-horse" enc volume.fspf || grep -rq "customer record" enc volume.fspf; then
	echo "FAIL: plaintext found on disk" >&2
	exit 1
fi
echo "grep for 'correct-horse' and 'customer record' in enc/ and volume.fspf: no match"
echo "first bytes of a protected file's data block:"
files=(enc/*)
od -An -tx1 -j $((4096 * 3)) -N 48 "${files[0]}"

step "4. Read back through the volume: every chunk is verified before it is released"
"$SCONE" fspf show volume.fspf
"$SCONE" fspf cat volume.fspf /data/config/app.conf
"$SCONE" fspf verify volume.fspf
"$SCONE" fspf extract volume.fspf restored
cmp restored/data/customers.txt native/customers.txt && echo "extracted customers.txt is byte-identical"

step "5. Tamper: flip one byte of customers.txt on disk"
big=$(basename "$(du -b enc/* | sort -n | tail -n 1 | cut -f2)")
printf '\x42' | dd of="enc/$big" bs=1 seek=$((4096 * 10 + 7)) conv=notrunc 2>/dev/null
if "$SCONE" fspf cat volume.fspf /data/customers.txt >/dev/null; then
	echo "FAIL: tampering not detected" >&2
	exit 1
fi
"$SCONE" fspf verify volume.fspf || echo "(verify exits $? and names the file and byte range)"

step "6. Roll back: restore an older copy of the whole volume"
cp -a enc enc.old && cp volume.fspf volume.fspf.old
printf '\x42' | dd of="enc/$big" bs=1 seek=$((4096 * 10 + 7)) conv=notrunc 2>/dev/null # undo step 5
"$SCONE" fspf encrypt volume.fspf --key-file <(echo "$KEY") | sed 's/key: .*/key: <same key>/'
NEWTAG=$("$SCONE" fspf show volume.fspf | sed -n 's/^tag  //p')
rm -rf enc && mv enc.old enc && mv volume.fspf.old volume.fspf
SCONE_FSPF_TAG=$NEWTAG "$SCONE" fspf verify volume.fspf || echo "(the old copy is refused: its tag is not the current one)"

step "7. Start a local CAS on its embedded store and this host's LAS; make an owner identity, pin the CAS"
export SCONE_CLI_CONFIG=$work/owner/config.json
port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$CAS_BIN" --state-dir "$work/cas" --listen "127.0.0.1:$port" 2>"$work/cas.log" </dev/null &
cas_pid=$!
for _ in $(seq 100); do curl -sfk "https://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sfk "https://127.0.0.1:$port/healthz" >/dev/null 2>&1 || fail "scone-cas did not answer on 127.0.0.1:$port ($(tail -1 "$work/cas.log"))"
grep -o '"msg":"CAS certificate[^(]*' "$work/cas.log" | sed 's/"msg":"//'
"$SCONE" cas keygen
fp=$(openssl x509 -in "$work/cas/cas.crt" -outform DER | sha256sum | cut -d' ' -f1)
"$SCONE" cas trust "127.0.0.1:$port" --fingerprint "$fp"
"$LAS_BIN" --listen "unix:$work/las.sock" --state-dir "$work/las" 2>"$work/las.log" </dev/null &
las_pid=$!
for _ in $(seq 100); do grep -q listening "$work/las.log" 2>/dev/null && break; sleep 0.05; done
[ -S "$work/las.sock" ] || fail "scone-las did not start ($(tail -1 "$work/las.log"))"
export SCONE_LAS_ADDR=unix:$work/las.sock # where the runtime asks for its report
platform=$("$LAS_BIN" --print-identity --state-dir "$work/las")
echo "scone-las listens on $SCONE_LAS_ADDR; this host's platform id: $platform"

step "8. Upload a session: python3's measurement, this host, a generated password, an injected config file, a volume"
echo "\$ scone measure /usr/bin/python3   (every code file python3 maps under the runtime)"
measurement=$("$SCONE" measure "$PY")
echo "$measurement"
echo "examples/sessions/demo.yaml with /DEMO_DIR, DEMO_MEASUREMENT and DEMO_PLATFORM filled in:"
sed -e '/^#/d' -e "s|/DEMO_DIR|$work|g" -e "s|DEMO_MEASUREMENT|$measurement|" -e "s|DEMO_PLATFORM|$platform|" \
	"$ROOT/examples/sessions/demo.yaml" >session.yaml
grep -F -e "$work" -e "$measurement" -e "$platform" -e "mode:" session.yaml
"$SCONE" session check session.yaml
"$SCONE" session create session.yaml
echo "what an owner reads back (no generated value):"
"$SCONE" session read demo --json | "$PY" -c 'import json, sys; d = json.load(sys.stdin); print(json.dumps({k: d[k] for k in ("name", "hash", "secrets")}))'

step "9. A client without attestation gets nothing (the service endpoint, asked with curl)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=runtime -days 1 \
	-keyout rt.key -out rt.crt 2>/dev/null
status=$(curl -sk -o refusal.json -w '%{http_code}' --cert rt.crt --key rt.key -d '{"config_id":"demo/app"}' \
	"https://127.0.0.1:$port/v1/service/config")
echo "HTTP $status: $(cat refusal.json)"
[ "$status" = 403 ] && grep -q '"ATTESTATION"' refusal.json || fail "CAS answered a client without evidence ($status)"
rm -f refusal.json rt.key rt.crt

step "10. Run an unmodified program under the runtime: /usr/bin/python3, secrets injected before main"
mkdir -p app
cat >app/app.py <<'PY'
# The demo's program: plain Python, nothing scone-specific in it.
import os, sys, time
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
notes = root + "/data/notes.txt"
pw = os.environ.get("DB_PASSWORD", "")
print("main sees argv:", sys.argv, flush=True)
print("GREETING:", os.environ.get("GREETING"), flush=True)
print("DB_PASSWORD: %s... (%d characters)" % (pw[:3], len(pw)), flush=True)
conf = open(root + "/etc/app.conf").read()
same = "same password as DB_PASSWORD" if pw and conf == "password = %s\n" % pw else "DIFFERENT"
print("etc/app.conf: password = %s... (%s)" % (conf[11:14], same), flush=True)
import stat
try:  # fd 9, if the demo opened it: its check channel (a pipe), to look for the password where it must not be
    if stat.S_ISFIFO(os.fstat(9).st_mode):
        os.write(9, (pw + "\n").encode())
        os.close(9)
except OSError:
    pass
if sys.argv[1] == "write":
    # Tell the demo our PID, then wait until it has looked at /proc/PID.
    with open(root + "/app/ready.tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(root + "/app/ready.tmp", root + "/app/ready")
    for _ in range(600):
        if os.path.exists(root + "/app/go"):
            break
        time.sleep(0.1)
    with open(notes, "w") as f:
        f.write("run 1: the vault code is DEMO-NOTE-4711\n")
    print("wrote data/notes.txt:", repr(open(notes).read()), flush=True)
else:
    print("read back data/notes.txt:", repr(open(notes).read()), flush=True)
    with open(notes, "a") as f:
        f.write("run 2: moved to shelf B\n")
    print("appended; data/notes.txt now has %d lines" % len(open(notes).readlines()), flush=True)
PY
echo "\$ scone run --cas 127.0.0.1:$port --config-id demo/app -- /usr/bin/python3 write"
mkfifo pw.pipe # a pipe: the password the program got comes back to the demo here, never through a file
"$SCONE" run --cas "127.0.0.1:$port" --config-id demo/app -- "$PY" write >run1.out 2>run1.err </dev/null 9>pw.pipe &
run_pid=$!
pw=
read -r -t 60 pw <pw.pipe || true
rm -f pw.pipe
# The demo keeps the password in a shell variable only, to look for it below;
# has_pw greps for it without putting it on a command line.
[ ${#pw} -eq 24 ] || { cat run1.err >&2; fail "the program received no 24-character DB_PASSWORD"; }
echo "the program received DB_PASSWORD: ${pw:0:3}... (24 characters, generated by CAS)"
has_pw() { grep -aqF -f <(printf '%s\n' "$pw") "$@"; }
if has_pw -r "$work/cas" "$work/cas.log" "$work/las" "$work/las.log"; then
	fail "the generated password is on disk or in the CAS or LAS log"
fi
echo "grep for the password in the CAS state directory (store, WAL), the LAS's and their logs: no match"
for _ in $(seq 300); do
	[ ! -s app/ready ] || break
	kill -0 "$run_pid" 2>/dev/null || break
	sleep 0.1
done
if [ ! -s app/ready ]; then
	cat run1.out run1.err >&2
	fail "the program did not start under the runtime"
fi
pid=$(cat app/ready)
[ -r "/proc/$pid/environ" ] && kill -0 "$pid" 2>/dev/null || fail "the program (pid $pid) is not running"
sed 's/^/  /' run1.err run1.out
echo "while it runs (pid $pid), what ps and /proc show:"
echo "  /proc/$pid/cmdline: $(tr '\0' ' ' <"/proc/$pid/cmdline" | sed 's/ $//') (the session's command: it holds no secret, so it shows as the program's own)"
echo "  /proc/$pid/environ: $(tr '\0' '\n' <"/proc/$pid/environ" | grep -c .) variables from the host, e.g. $(tr '\0' '\n' <"/proc/$pid/environ" | grep -o '^\(SCONE_CONFIG_ID\|LD_PRELOAD\)=.*' | tr '\n' ' ')"
if has_pw "/proc/$pid/environ" "/proc/$pid/cmdline"; then
	fail "the password is in /proc/$pid/environ or /proc/$pid/cmdline"
fi
if tr '\0' '\n' <"/proc/$pid/environ" | grep -q '^DB_PASSWORD='; then
	fail "DB_PASSWORD is in /proc/$pid/environ"
fi
echo "grep for the password in /proc/$pid/environ and /proc/$pid/cmdline: no match"
touch app/go
rc=0
wait "$run_pid" || rc=$?
run_pid=
[ $rc -eq 0 ] || { cat run1.err >&2; fail "the program exited $rc"; }
grep -F "wrote data/notes.txt" run1.out
grep -qx "DB_PASSWORD: ${pw:0:3}... (24 characters)" run1.out || fail "the program did not receive DB_PASSWORD"
grep -q "(same password as DB_PASSWORD)" run1.out || fail "the injected etc/app.conf does not hold the password"
if has_pw run1.out run1.err; then
	fail "the full password is in the program's output"
fi

step "11. What the program left on disk: ciphertext under random names, no injected file"
ls -l data
if [ -e data/notes.txt ] || [ -n "$(find data -name 'notes*')" ]; then
	fail "a file named notes.txt is on disk"
fi
if grep -raq "DEMO-NOTE" data; then
	fail "the program's plaintext is on disk"
fi
if has_pw -r data; then
	fail "the password is on disk"
fi
echo "find data -name 'notes*': nothing; grep for the note's text 'DEMO-NOTE' and the password in data/: no match"
hostfile=
for f in data/*; do
	[[ $(basename "$f") =~ ^[0-9a-f]{32}$ ]] && hostfile=$f && break
done
[ -n "$hostfile" ] || fail "no encrypted file in data/"
echo "first bytes of a data block in $hostfile (notes.txt, encrypted):"
od -An -tx1 -j $((4096 * 3)) -N 48 "$hostfile"
if [ -e etc/app.conf ]; then
	fail "the injected file etc/app.conf is on disk"
fi
echo "ls etc/app.conf: no such file (the runtime served it from memory)"
cp -a data data.run1

step "12. Run it again: the volume is fresh (CAS knows its tag), the notes are back"
echo "\$ scone run --cas 127.0.0.1:$port --config-id demo/app -- /usr/bin/python3 read"
rc=0
"$SCONE" run --cas "127.0.0.1:$port" --config-id demo/app -- "$PY" read >run2.out 2>run2.err </dev/null || rc=$?
[ $rc -eq 0 ] || { cat run2.err >&2; fail "the second run exited $rc"; }
grep -v '^main sees\|^GREETING' run2.out
grep -qxF "read back data/notes.txt: 'run 1: the vault code is DEMO-NOTE-4711\\n'" run2.out ||
	fail "the second run did not read back what the first wrote"
grep -qx "appended; data/notes.txt now has 2 lines" run2.out || fail "the second run could not append"

step "13. Roll back: put the copy of data/ from after run 1 back, and start again"
rm -rf data && mv data.run1 data
rc=0
"$SCONE" run --cas "127.0.0.1:$port" --config-id demo/app -- "$PY" read >run3.out 2>run3.err </dev/null || rc=$?
if [ $rc -eq 0 ] || [ -s run3.out ]; then
	fail "the program started on a rolled-back volume"
fi
grep -q "cannot start: .*ROLLBACK" run3.err || { cat run3.err >&2; fail "no ROLLBACK error for an older copy of the volume"; }
grep "cannot start" run3.err
echo "(exit $rc: main never ran; CAS's tag for the volume is newer than the copy on disk)"
if has_pw -r "$work/cas" "$work/cas.log"; then
	fail "the generated password is on disk or in the CAS log"
fi

printf '\n\033[1mDemo complete.\033[0m\n'
