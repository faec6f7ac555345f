#!/usr/bin/env bash
# test_runtime_fs_suite.sh - the file-system test suite (tests/fs/fs_suite.c)
# run twice with the same expected results: plainly on a host directory and
# under the runtime (`scone run`) on a session volume mounted at
# $CASE_DIR/vol. The suite is compiled at test time with ${CC:-cc} -Werror;
# the plain run must pass every check, the runtime run must print exactly the
# same lines, a second runtime run (the suite uses a fresh runN subdirectory
# each time, on the volume state the first run left) too, and the volume's
# host directory holds neither the suite's marker nor its file names.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
. tests/integration/cas_lib.sh
t_init
cas_require
SUITE_SRC=$PWD/tests/fs/fs_suite.c
SUITE_CC=${CC:-cc}
MARK="SCONE-FS-SUITE-MARKER-5e21"
T_CMD_TIMEOUT=${FS_SUITE_TIMEOUT:-180}
command -v "$SUITE_CC" >/dev/null 2>&1 || { t_fail "setup: compiler $SUITE_CC missing"; t_done; exit 1; }
[ -f "$SUITE_SRC" ] || { t_fail "setup: $SUITE_SRC missing"; t_done; exit 1; }
las_script_start # the suite runs attested by a LAS (mode las)

session_yaml() {
	cat <<YAML
name: fs
version: "0.3"
security:
  attestation:
    mode: las
services:
  - name: suite
$LAS_ATTEST
    image_name: with-vol
    command: fs_suite @@1
images:
  - name: with-vol
    volumes:
      - name: vol
        path: $CASE_DIR/vol
volumes:
  - name: vol
YAML
}

# build_suite: $CASE_DIR/fs_suite from the source, warnings are errors.
build_suite() {
	expect_ok "$SUITE_CC" -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -O1 -pthread \
		-o "$CASE_DIR/fs_suite" "$SUITE_SRC"
}

# plain_run: the suite on $CASE_DIR/plain; every check ok, exit 0; lines in plain.out.
plain_run() {
	run_cmd "$CASE_DIR/fs_suite" "$CASE_DIR/plain"
	cp "$OUT" "$CASE_DIR/plain.out"
	[ -s "$CASE_DIR/plain.out" ] || { show_output; fail "the plain run printed nothing"; }
	if grep -v '^ok ' "$CASE_DIR/plain.out"; then
		fail "the plain run has failing checks (above)"
	fi
	[ "$RC" -eq 0 ] || { show_output; fail "the plain run exited $RC with every check ok"; }
	[ -z "$(find "$CASE_DIR/plain" -name volume.fspf)" ] || fail "plain run wrote a volume.fspf"
}

# runtime_run N: the suite under the runtime on the volume; its lines in rtN.out
# must be exactly the plain run's (the differing lines are shown).
runtime_run() {
	local n=$1
	SCONE_VERSION=1 run_cmd scone run --config-id fs/suite -- "$CASE_DIR/fs_suite" "$CASE_DIR/vol"
	cp "$OUT" "$CASE_DIR/rt$n.out"
	cp "$ERR" "$CASE_DIR/rt$n.err"
	grep -q "file-system shield on (1 volumes mounted)" "$ERR" ||
		{ show_output; fail "runtime run $n: the shield is not on"; }
	if ! diff -u --label plain --label "runtime$n" "$CASE_DIR/plain.out" "$CASE_DIR/rt$n.out" >"$CASE_DIR/rt$n.diff"; then
		echo "--- lines that differ (plain vs runtime run $n):"
		paste -d '\t' "$CASE_DIR/plain.out" "$CASE_DIR/rt$n.out" |
			awk -F '\t' '$1 != $2 { print "plain:   " $1; print "runtime: " $2 }'
		echo "--- runtime stderr (tail):"
		tail -5 "$ERR"
		fail "runtime run $n: output differs from the plain run (exit $RC)"
	fi
	[ "$RC" -eq 0 ] || { show_output; fail "runtime run $n: same lines as the plain run but exit $RC"; }
}

# no_plaintext: the volume's host directory holds volume.fspf and hex-named
# files only, no marker and no name the suite used.
no_plaintext() {
	local names
	[ -f "$CASE_DIR/vol/volume.fspf" ] || fail "no volume.fspf on the host"
	if grep -rqa -e "$MARK" -e "alpha-BETA" -e "through symlink" "$CASE_DIR/vol"; then
		grep -rla -e "$MARK" -e "alpha-BETA" -e "through symlink" "$CASE_DIR/vol" | sed "s|$CASE_DIR/||"
		fail "plaintext of the suite's files is on disk"
	fi
	names=$(find "$CASE_DIR/vol" -mindepth 1 -printf '%f\n' | grep -vxE 'volume\.fspf(\.lock|\.new)?|[0-9a-f]{32}' || true)
	[ -z "$names" ] || { echo "$names" | head -20; fail "plaintext file names on the host (above)"; }
	[ ! -e "$CASE_DIR/vol/run1" ] || fail "run1 exists in plaintext on the host"
}

start() {
	cas_case_begin
	build_suite
	las_attestation "$CASE_DIR/fs_suite"
	plain_run
	cas_start "$CASE_DIR/cas"
	owner_new "$CASE_DIR/owner"
	session_yaml >fs.yaml
	expect_created fs.yaml
}

case_plain() {
	build_suite
	plain_run
	# Twice on the same root: a fresh run2 subdirectory, the same lines.
	cp "$CASE_DIR/plain.out" "$CASE_DIR/plain1.out"
	plain_run
	[ -d "$CASE_DIR/plain/run2" ] || fail "the second plain run did not use run2"
	diff -u "$CASE_DIR/plain1.out" "$CASE_DIR/plain.out" || fail "two plain runs differ"
}

case_runtime() {
	start
	runtime_run 1
	no_plaintext
}

case_runtime_twice() {
	start
	runtime_run 1
	runtime_run 2
	no_plaintext
}

run_case "fs suite: the plain run passes every check, twice" case_plain
run_case "fs suite under the runtime: the same lines as the plain run; no plaintext on the volume" case_runtime
run_case "fs suite under the runtime, a second run on the volume the first left: the same lines" case_runtime_twice
t_done
