#!/usr/bin/env bash
# The scone demo (make demo): protect a directory of files into an encrypted
# volume, show that the disk holds only ciphertext, read the files back
# verified, then tamper with one byte and watch it being caught; then keep
# secrets in a local CAS and see what a starting service receives.
set -euo pipefail
cd "$(dirname "$0")/.."
SCONE=${SCONE_BIN:-$PWD/build/bin/scone}
work=$(mktemp -d /tmp/scone-demo.XXXXXX)
cas_pid=
trap '[ -z "$cas_pid" ] || kill "$cas_pid" 2>/dev/null; rm -rf "$work"' EXIT
CAS_BIN=${SCONE_CAS_BIN:-$(dirname "$SCONE")/scone-cas}
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
export SCONE_NO_PROGRESS=1

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

step "7. Start a local CAS on its embedded store, make an owner identity, pin the CAS"
export SCONE_CLI_CONFIG=$work/owner/config.json
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$CAS_BIN" --state-dir "$work/cas" --listen "127.0.0.1:$port" 2>"$work/cas.log" &
cas_pid=$!
for _ in $(seq 50); do curl -sfk "https://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
grep -o '"msg":"CAS certificate[^(]*' "$work/cas.log" | sed 's/"msg":"//'
"$SCONE" cas keygen
fp=$(openssl x509 -in "$work/cas/cas.crt" -outform DER | sha256sum | cut -d' ' -f1)
"$SCONE" cas trust "127.0.0.1:$port" --fingerprint "$fp"

step "8. Upload a session: a generated password, an injected config file, a volume"
cat >session.yaml <<'YAML'
name: demo
version: "0.3"
security:
  attestation:
    mode: none             # no TEE here: the start is logged as unattested
services:
  - name: app
    image_name: app
    command: python3 /app/server.py --port @@1
    environment:
      DB_PASSWORD: $$SCONE::db_password$$
images:
  - name: app
    injection_files:
      - path: /etc/app.conf
        content: |
          password = $$SCONE::db_password$$
    volumes:
      - name: data
        path: /data
volumes:
  - name: data
secrets:
  - name: db_password
    kind: ascii
    size: 24
YAML
"$SCONE" session check session.yaml
"$SCONE" session create session.yaml
echo "what an owner reads back (no generated value):"
"$SCONE" session read demo --json | python3 -c 'import json, sys; d = json.load(sys.stdin); print(json.dumps({k: d[k] for k in ("name", "hash", "secrets")}))'

step "9. What a starting service receives (the runtime does this before main; here with curl)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=runtime -days 1 \
	-keyout rt.key -out rt.crt 2>/dev/null
curl -sk --cert rt.crt --key rt.key -d '{"config_id":"demo/app"}' "https://127.0.0.1:$port/v1/service/config" >config.json
python3 - <<'PY'
import base64, json
c = json.load(open("config.json"))
pw = c["environment"]["DB_PASSWORD"]
print("argv:", c["command"])
print("DB_PASSWORD:", pw[:3] + "..." + " (%d characters, generated by CAS)" % len(pw))
f = c["injection_files"][0]
print(f["path"] + ":", base64.b64decode(f["content_base64"]).decode().replace(pw, pw[:3] + "...").strip())
v = c["volumes"][0]
print("volume", v["name"], "at", v["path"], "key", v["key"][:6] + "...", "tag", repr(v["tag"]), "(new volume)")
open("pw", "w").write(pw)
PY
if grep -rqF -f pw "$work/cas" "$work/cas.log"; then
	echo "FAIL: the generated password is on disk or in the CAS log" >&2
	exit 1
fi
echo "grep for the password in the CAS state directory (store, WAL) and its log: no match"
rm -f pw config.json

printf '\n\033[1mDemo complete.\033[0m\n'
