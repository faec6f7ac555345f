#!/usr/bin/env bash
# Run the benchmarks: every build/bench/bench_* binary, or only bench_NAME
# for each NAME given (e.g. `bench/run.sh volume`). The environment is
# passed through (BENCH_SIZE_MB, BENCH_RUNS, BENCH_DIR, ...). RESULT lines
# go to stdout, progress to stderr. Exits non-zero if any benchmark fails
# or a named one does not exist; performance goals never fail the run.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
BENCH_BIN_DIR=${BENCH_BIN_DIR:-${BUILD:-build}/bench}

benches=()
if [ $# -gt 0 ]; then
	for name in "$@"; do
		benches+=("$BENCH_BIN_DIR/bench_${name#bench_}")
	done
else
	for b in "$BENCH_BIN_DIR"/bench_*; do
		[ -f "$b" ] && [ -x "$b" ] && benches+=("$b")
	done
	if [ ${#benches[@]} -eq 0 ]; then
		echo "bench/run.sh: no benchmarks in $BENCH_BIN_DIR (run 'make bench')" >&2
		exit 1
	fi
fi

failed=()
for b in "${benches[@]}"; do
	name=$(basename "$b")
	if [ ! -x "$b" ]; then
		echo "bench/run.sh: $b: no such benchmark (build it with 'make bench')" >&2
		failed+=("$name")
		continue
	fi
	echo "== $name" >&2
	start=$(date +%s)
	"$b"
	rc=$?
	echo "== $name: exit $rc after $(($(date +%s) - start)) s" >&2
	[ $rc -eq 0 ] || failed+=("$name")
done

if [ ${#failed[@]} -ne 0 ]; then
	echo "bench/run.sh: FAILED: ${failed[*]}" >&2
	exit 1
fi
exit 0
