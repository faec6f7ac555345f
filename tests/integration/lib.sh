# shellcheck shell=bash
# lib.sh - tiny helpers for the integration tests (sourced, not run).
#
# A test script sources this file, calls t_init, defines one function per
# case and runs each with `run_case NAME FUNCTION`, then ends with t_done.
# tests/run.sh counts the lines "ok - NAME", "not ok - NAME", "skip - NAME".
#
# A case runs in a subshell with `set -e` and its own scratch directory
# ($CASE_DIR, also its working directory); an assertion that fails prints
# why and exits the subshell, so the case stops at the first failure. Its
# output is kept and shown (prefixed "# ") only when it fails.

SCONE_BIN=${SCONE_BIN:-$PWD/build/bin/scone}
T_CMD_TIMEOUT=${T_CMD_TIMEOUT:-60}
T_PASSED=0
T_FAILED=0
T_SKIPPED=0
T_TMP=
T_PIDS=()

t_ok() { echo "ok - $1"; T_PASSED=$((T_PASSED + 1)); }

t_fail() {
	echo "not ok - $1"
	shift
	[ $# -eq 0 ] || printf '#   %s\n' "$@"
	T_FAILED=$((T_FAILED + 1))
}

t_skip() { echo "skip - $1${2:+ # $2}"; T_SKIPPED=$((T_SKIPPED + 1)); }

# Remember a background process so that the exit trap stops it; forget it
# once it has been waited for (its PID may be reused afterwards).
t_track_pid() { T_PIDS+=("$1"); }
t_untrack_pid() {
	local p keep=()
	for p in ${T_PIDS[@]+"${T_PIDS[@]}"}; do [ "$p" = "$1" ] || keep+=("$p"); done
	T_PIDS=(${keep[@]+"${keep[@]}"})
}

t_cleanup() {
	local pid
	for pid in ${T_PIDS[@]+"${T_PIDS[@]}"}; do
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	[ -z "$T_TMP" ] || rm -rf "$T_TMP"
}

t_init() {
	T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/scone-integ.XXXXXX") || exit 1
	trap t_cleanup EXIT
	trap 'exit 130' INT TERM
	if [ ! -x "$SCONE_BIN" ]; then
		echo "not ok - setup: $SCONE_BIN not built (run make)"
		exit 1
	fi
}

# Summary line; exit status 1 when a case failed.
t_done() {
	echo "# $T_PASSED passed, $T_FAILED failed, $T_SKIPPED skipped"
	[ "$T_FAILED" -eq 0 ]
}

# run_case NAME FUNCTION [ARGS...]: a case passes when FUNCTION returns 0.
# FUNCTION may call t_skip_case REASON to skip.
# T_CASE=PATTERN runs only the cases whose name matches (grep -E), for iterating.
run_case() {
	local name=$1 fn=$2 log rc
	shift 2
	if [ -n "${T_CASE:-}" ] && ! echo "$name" | grep -qE -- "$T_CASE"; then return 0; fi
	CASE_DIR=$(mktemp -d "$T_TMP/case.XXXXXX")
	log="$CASE_DIR.log"
	(
		set -e
		cd "$CASE_DIR"
		"$fn" "$@"
	) >"$log" 2>&1 </dev/null
	rc=$?
	if [ $rc -eq 0 ]; then
		t_ok "$name"
	elif [ $rc -eq 77 ]; then
		t_skip "$name" "$(sed -n 's/^SKIP: //p' "$log" | tail -1)"
	else
		echo "not ok - $name"
		sed 's/^/#   /' "$log" | tail -40
		T_FAILED=$((T_FAILED + 1))
	fi
	rm -rf "$CASE_DIR" "$log"
}

# Inside a case: stop it as failed / skipped.
fail() {
	echo "FAIL: $*"
	exit 1
}
t_skip_case() {
	echo "SKIP: $*"
	exit 77
}

# ---------------- running commands ----------------
#
# Every run_* helper runs CMD... with stdin from /dev/null and a timeout,
# leaving its exit status in $RC, stdout in the file $OUT and stderr in the
# file $ERR (inside the case directory).

OUT=
ERR=
RC=0

run_cmd() {
	OUT=${CASE_DIR:-$T_TMP}/.out ERR=${CASE_DIR:-$T_TMP}/.err
	RC=0
	if [ "$1" = scone ]; then
		set -- "$SCONE_BIN" "${@:2}"
	fi
	if [ "$(type -t "$1")" = function ]; then
		"$@" >"$OUT" 2>"$ERR" </dev/null || RC=$?
	else
		timeout "$T_CMD_TIMEOUT" "$@" >"$OUT" 2>"$ERR" </dev/null || RC=$?
	fi
	if [ "$RC" -eq 124 ]; then
		show_output
		fail "timed out after ${T_CMD_TIMEOUT}s: $*"
	fi
	return 0
}

# The scone CLI.
scone() { "$SCONE_BIN" "$@"; }

# show_file FILE: its text (the start of it), or its size when it is binary.
show_file() {
	if LC_ALL=C grep -q '[^[:print:][:space:]]' "$1" 2>/dev/null; then
		echo "($(stat -c %s "$1") bytes of binary data)"
	else
		head -c 2000 "$1"
	fi
}

show_output() {
	echo "--- stdout:"
	show_file "$OUT"
	echo "--- stderr:"
	show_file "$ERR"
	echo "---"
}

# expect_ok CMD...: exit status 0.
expect_ok() {
	run_cmd "$@"
	if [ "$RC" -ne 0 ]; then
		show_output
		fail "expected success (exit 0), got exit $RC: $*"
	fi
}

# expect_exit CODE CMD...: exactly that exit status.
expect_exit() {
	local code=$1
	shift
	run_cmd "$@"
	if [ "$RC" -ne "$code" ]; then
		show_output
		fail "expected exit $code, got exit $RC: $*"
	fi
}

# expect_exit_with CODE PATTERN CMD...: that status, and PATTERN (grep -E)
# somewhere in stderr or stdout.
expect_exit_with() {
	local code=$1 pattern=$2
	shift 2
	expect_exit "$code" "$@"
	if ! cat "$ERR" "$OUT" | grep -aEq -- "$pattern"; then
		show_output
		fail "expected output matching /$pattern/: $*"
	fi
}

# expect_fail_with PATTERN CMD...: exit status 1 with PATTERN in the output.
expect_fail_with() { expect_exit_with 1 "$@"; }

# expect_usage_error CMD...: exit status 2, a message on stderr, nothing on stdout.
expect_usage_error() {
	expect_exit 2 "$@"
	[ -s "$ERR" ] || fail "usage error without a message on stderr: $*"
	[ ! -s "$OUT" ] || { show_output; fail "usage error printed to stdout: $*"; }
}

# ---------------- assertions ----------------

assert_eq() { # EXPECTED ACTUAL [WHAT]
	[ "$1" = "$2" ] || fail "${3:-value}: expected '$1', got '$2'"
}

assert_ne() { # A B [WHAT]
	[ "$1" != "$2" ] || fail "${3:-value}: expected something other than '$1'"
}

assert_same_file() { # EXPECTED ACTUAL
	[ -f "$2" ] || fail "missing file $2"
	cmp -s -- "$1" "$2" || fail "$2 differs from $1 ($(cmp -- "$1" "$2" 2>&1 | head -1))"
}

assert_empty() { # FILE [WHAT]
	[ ! -s "$1" ] || { echo "--- $1:"; show_file "$1"; fail "${2:-$1} is not empty"; }
}

assert_grep() { # PATTERN FILE... (grep -E)
	local p=$1
	shift
	grep -aEq -- "$p" "$@" || fail "no match for /$p/ in $*"
}

assert_no_grep() { # PATTERN FILE...
	local p=$1
	shift
	if grep -aEq -- "$p" "$@"; then fail "unexpected match for /$p/ in $*"; fi
}

assert_absent() { # PATH
	[ ! -e "$1" ] || fail "$1 exists but should not"
}

# ---------------- bytes on disk ----------------

# A deterministic pseudo-random file: make_file PATH SIZE SEED.
make_file() {
	local path=$1 size=$2 seed=$3 key
	key=$(printf '%s' "$seed" | sha256sum | cut -c1-32)
	if [ "$size" -eq 0 ]; then
		: >"$path"
	elif command -v openssl >/dev/null 2>&1; then
		head -c "$size" /dev/zero |
			openssl enc -aes-128-ctr -nosalt -K "$key" -iv 00000000000000000000000000000000 2>/dev/null |
			head -c "$size" >"$path"
	else
		head -c "$size" /dev/urandom >"$path"
	fi
	[ "$(stat -c %s "$path")" -eq "$size" ] || fail "make_file $path: wrong size"
}

# flip_byte FILE OFFSET: invert every bit of one byte in place.
flip_byte() {
	local f=$1 off=$2 b
	b=$(od -An -tu1 -j "$off" -N1 "$f" | tr -d ' ')
	[ -n "$b" ] || fail "flip_byte: offset $off beyond end of $f"
	printf "\\$(printf '%03o' $((255 - b)))" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
}

# copy_block FILE FROM TO: copy 4096-byte block FROM over block TO.
copy_block() {
	dd if="$1" of="$1" bs=4096 skip="$2" seek="$3" count=1 conv=notrunc status=none
}

# Protected-file layout: block 0 header; group k at block 1+130k: node
# slot A, node slot B, 64 data blocks slot A, 64 slot B.
VOL_BLOCK=4096
data_block() { # CHUNK [SLOT]: block number of a data chunk (slot A by default)
	local c=$1 s=${2:-0}
	echo $((1 + 130 * (c / 64) + 2 + s * 64 + c % 64))
}
node_block() { # NODE [SLOT]
	echo $((1 + 130 * $1 + ${2:-0}))
}
