#!/usr/bin/env bash
# test_runtime_coreutils.sh - unmodified Debian coreutils (cp, cat, dd, sort),
# tar and gzip on a session volume mounted at $CASE_DIR/data: a plain input
# tree is copied into the volume with cp, each tool runs inside the volume
# under `scone run` (one tool per run, host arguments as @@N), the results are
# copied out with cp and must be byte-identical to the same tools run plainly
# on plain files; the volume directory holds no plaintext of the inputs.
# The tools run attested by a LAS (mode las).
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
. tests/integration/cas_lib.sh
t_init
cas_require
for tool in cp cat dd sort tar gzip; do
	[ -x "/usr/bin/$tool" ] || [ -x "/bin/$tool" ] || { t_fail "setup: $tool missing"; t_done; exit 1; }
done
# Attestation mode las: each service admits the measurements of these tools.
las_script_start
las_attestation /usr/bin/cp /usr/bin/cat /usr/bin/dd /usr/bin/sort /usr/bin/tar /usr/bin/gzip /usr/bin/stat
MARK="SCONE-COREUTILS-MARKER-4b1e"
TAR_OPTS="--sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --mode=u+rw,go-w --format=gnu"

session_yaml() {
	cat <<YAML
name: cu
version: "0.3"
security:
  attestation:
    mode: las
services:
  - name: cp
$LAS_ATTEST
    image_name: with-data
    command: cp -r @@1 @@2
  - name: cat
$LAS_ATTEST
    image_name: with-data
    command: cat @@1 @@2
  - name: dd
$LAS_ATTEST
    image_name: with-data
    command: dd if=@@1 of=@@2 bs=4096 status=none
  - name: sort
$LAS_ATTEST
    image_name: with-data
    command: sort -o @@2 @@1
  - name: tar
$LAS_ATTEST
    image_name: with-data
    command: tar $TAR_OPTS -cf @@2 -C @@1 .
  - name: gzip
$LAS_ATTEST
    image_name: with-data
    command: gzip -k -n @@1
  - name: cpa
$LAS_ATTEST
    image_name: with-data
    command: cp -a @@1 @@2
  - name: stat
$LAS_ATTEST
    image_name: with-data
    command: stat --format=%n:%a:%Y:%s @@1 @@2
images:
  - name: with-data
    volumes:
      - name: data
        path: $CASE_DIR/data
volumes:
  - name: data
YAML
}

# The input tree: text with the marker, lines to sort, a binary file that is
# not a multiple of the block size, a subdirectory.
make_tree() {
	local d=$1 i
	mkdir -p "$d/sub"
	for i in $(seq 1 2000); do echo "line $(( (i * 7919) % 2003 )) $MARK"; done >"$d/lines.txt"
	head -c 300000 /dev/urandom >"$d/blob.bin"
	printf '%s\n' "$MARK" >>"$d/blob.bin"
	printf 'inner %s\n' "$MARK" >"$d/sub/inner.txt"
}

case_coreutils() {
	cas_case_begin
	cas_start "$CASE_DIR/cas"
	owner_new "$CASE_DIR/owner"
	session_yaml >cu.yaml
	expect_created cu.yaml
	local V="$CASE_DIR/data" P="$CASE_DIR/plain" O="$CASE_DIR/out"
	make_tree "$CASE_DIR/in"
	mkdir -p "$P" "$O"
	# Into the volume (first start creates it), and the same plainly.
	expect_ok scone run --config-id cu/cp -- /usr/bin/cp "$CASE_DIR/in" "$V/in"
	cp -r "$CASE_DIR/in" "$P/in"
	# Each tool inside the volume, and plainly.
	expect_ok scone run --config-id cu/cat -- /usr/bin/cat "$V/in/lines.txt" "$V/in/sub/inner.txt"
	cp "$OUT" "$O/cat.out"
	cat "$P/in/lines.txt" "$P/in/sub/inner.txt" >"$P/cat.out"
	expect_ok scone run --config-id cu/dd -- /usr/bin/dd "$V/in/blob.bin" "$V/blob.dd"
	dd if="$P/in/blob.bin" of="$P/blob.dd" bs=4096 status=none
	expect_ok scone run --config-id cu/sort -- /usr/bin/sort "$V/in/lines.txt" "$V/sorted.txt"
	sort -o "$P/sorted.txt" "$P/in/lines.txt"
	expect_ok scone run --config-id cu/tar -- /usr/bin/tar "$V/in" "$V/tree.tar"
	# shellcheck disable=SC2086
	tar $TAR_OPTS -cf "$P/tree.tar" -C "$P/in" .
	expect_ok scone run --config-id cu/gzip -- /usr/bin/gzip "$V/sorted.txt"
	gzip -k -n "$P/sorted.txt"
	# Out of the volume, then byte for byte.
	local f
	for f in blob.dd sorted.txt tree.tar sorted.txt.gz; do
		expect_ok scone run --config-id cu/cp -- /usr/bin/cp "$V/$f" "$O/$f"
	done
	expect_ok scone run --config-id cu/cp -- /usr/bin/cp "$V/in" "$O/in"
	for f in cat.out blob.dd sorted.txt tree.tar sorted.txt.gz in/lines.txt in/blob.bin in/sub/inner.txt; do
		cmp "$P/$f" "$O/$f" || fail "$f differs from the plain run"
	done
	# On the host: only the fspf and random-named files; no plaintext of the inputs.
	[ ! -e "$V/in" ] && [ ! -e "$V/sorted.txt" ] || fail "plaintext names on the host"
	if grep -rqa "$MARK" "$V"; then fail "input plaintext on disk"; fi
	python3 - "$CASE_DIR/in/blob.bin" "$V" <<'PY' || fail "binary input plaintext on disk"
import os, sys
blob = open(sys.argv[1], "rb").read()
probes = [blob[i:i + 64] for i in range(0, len(blob) - 64, 50000)]
for root, _, names in os.walk(sys.argv[2]):
    for n in names:
        data = open(os.path.join(root, n), "rb").read()
        if any(p in data for p in probes):
            sys.exit(1)
PY
	if LC_ALL=C grep -rqaF "line 1 " "$V"; then fail "sorted plaintext on disk"; fi
	# cp -a keeps modes and modification times (volumes keep both; no xattrs: ENOTSUP, which cp accepts).
	chmod 0640 "$CASE_DIR/in/sub/inner.txt"
	touch -d "2001-02-03 04:05:06" "$CASE_DIR/in/sub/inner.txt"
	expect_ok scone run --config-id cu/cpa -- /usr/bin/cp "$CASE_DIR/in/sub" "$V/kept"
	[ ! -s "$ERR" ] || ! grep -v "running without a TEE" "$ERR" | grep -q . || { show_output; fail "cp -a complained"; }
	expect_ok scone run --config-id cu/stat -- /usr/bin/stat "$V/kept/inner.txt" "$V/kept"
	local want
	want="$V/kept/inner.txt:$(stat --format=%a:%Y:%s "$CASE_DIR/in/sub/inner.txt")"
	grep -qx "$want" "$OUT" || { show_output; fail "cp -a: mode, mtime or size not kept (want $want)"; }
	grep -qx "$V/kept:$(stat --format=%a "$CASE_DIR/in/sub"):$(stat --format=%Y "$CASE_DIR/in/sub"):.*" "$OUT" ||
		{ show_output; fail "cp -a: the directory's mode or mtime not kept"; }
}

run_case "runtime coreutils: cp, cat, dd, sort, tar, gzip on a volume, byte-identical to a plain run; cp -a keeps modes and times" case_coreutils
t_done
