#!/usr/bin/env bash
# Run every test: unit binaries (ASan+UBSan build), integration scripts,
# fuzzers briefly on their corpora. Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export SCONE_BIN="$ROOT/build/bin/scone"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
FUZZ_SECONDS=${FUZZ_SECONDS:-10}
# --only GLOB: only the integration scripts whose name matches (no unit tests, no fuzzers).
ONLY=
if [ "${1:-}" = --only ]; then ONLY=${2:?--only needs a pattern}; fi
passed=0 failed=0 skipped=0
failures=()
log_dir=$(mktemp -d /tmp/scone-test.XXXXXX)

# Unit tests: cmocka prints "[  PASSED  ] N test(s)." / "[  FAILED  ] N test(s)".
for t in build/asan/tests/test_*; do
	[ -x "$t" ] && [ -z "$ONLY" ] || continue
	name=$(basename "$t")
	out="$log_dir/$name.log"
	CMOCKA_MESSAGE_OUTPUT=stdout "$t" >"$out" 2>&1
	rc=$?
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$out" | tail -1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$out" | tail -1)
	p=${p:-0} f=${f:-0}
	if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi # crash, leak or sanitizer report
	passed=$((passed + p)) failed=$((failed + f))
	echo "unit  $name: $p passed, $f failed"
	if [ "$f" -ne 0 ]; then failures+=("$name"); sed 's/^/    /' "$out" | tail -40; fi
done

# Integration tests: scripts print "ok - NAME", "not ok - NAME", "skip - NAME".
for t in tests/integration/test_*.sh; do
	[ -f "$t" ] || continue
	name=$(basename "$t" .sh)
	# shellcheck disable=SC2053 # a glob on purpose
	[ -z "$ONLY" ] || [[ $name == $ONLY ]] || continue
	out="$log_dir/$name.log"
	bash "$t" >"$out" 2>&1
	rc=$?
	p=$(grep -c '^ok - ' "$out")
	f=$(grep -c '^not ok - ' "$out")
	s=$(grep -c '^skip - ' "$out")
	if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "not ok - $name exited $rc" >>"$out"; fi
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	echo "integ $name: $p passed, $f failed, $s skipped"
	if [ "$f" -ne 0 ]; then failures+=("$name"); grep -B5 -A40 '^not ok' "$out" | sed 's/^/    /' | tail -80; fi
done

# Fuzzers: a short run over each corpus; any crash, leak or timeout fails.
for fz in build/fuzz/fuzz_*; do
	[ -x "$fz" ] && [ -z "$ONLY" ] || continue
	name=$(basename "$fz")
	corpus="fuzz/corpus/${name#fuzz_}"
	work=$(mktemp -d "$log_dir/$name.XXXX")
	[ -d "$corpus" ] && cp -r "$corpus/." "$work/"
	if "$fz" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
		-artifact_prefix="$log_dir/$name-" "$work" >"$log_dir/$name.log" 2>&1; then
		passed=$((passed + 1)); echo "fuzz  $name: ok"
	else
		failed=$((failed + 1)); failures+=("$name"); echo "fuzz  $name: FAILED"
		tail -40 "$log_dir/$name.log" | sed 's/^/    /'
	fi
done

if [ ${#failures[@]} -ne 0 ]; then echo "failing: ${failures[*]} (logs in $log_dir)"; fi
if [ "$skipped" -ne 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
