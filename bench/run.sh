#!/usr/bin/env bash
# Run the benchmarks: every build/bench/bench_* binary and every
# bench/bench_*.sh script, or only bench_NAME (binary, else script) for each
# NAME given (e.g. `bench/run.sh volume cas`). The environment is passed
# through (BENCH_SIZE_MB, BENCH_RUNS, BENCH_DIR, ...). RESULT lines go to
# stdout, progress to stderr. Exits non-zero if any benchmark fails or a
# named one does not exist; performance goals never fail the run.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
BENCH_BIN_DIR=${BENCH_BIN_DIR:-${BUILD:-build}/bench}
export BENCH_BIN_DIR # scripts find their helpers (cas_load) there

benches=()
if [ $# -gt 0 ]; then
	for name in "$@"; do
		name=${name#bench_}
		if [ ! -x "$BENCH_BIN_DIR/bench_$name" ] && [ -f "bench/bench_$name.sh" ]; then
			benches+=("bench/bench_$name.sh")
		else
			benches+=("$BENCH_BIN_DIR/bench_$name")
		fi
	done
else
	for b in "$BENCH_BIN_DIR"/bench_* bench/bench_*.sh; do
		[ -f "$b" ] && [ -x "$b" ] && benches+=("$b")
	done
	if [ ${#benches[@]} -eq 0 ]; then
		echo "bench/run.sh: no benchmarks in $BENCH_BIN_DIR (run 'make bench')" >&2
		exit 1
	fi
fi

failed=()
for b in "${benches[@]}"; do
	name=$(basename "$b" .sh)
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
