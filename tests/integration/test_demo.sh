#!/usr/bin/env bash
# `make demo` must keep working: run examples/demo.sh against this build.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=$(SCONE_BIN="${SCONE_BIN:-$PWD/build/bin/scone}" bash examples/demo.sh 2>&1)
rc=$?
if [ $rc -eq 0 ] && grep -q "Demo complete" <<<"$out" && grep -q "(TAMPERED)" <<<"$out" &&
	grep -q "(ROLLBACK)" <<<"$out"; then
	echo "ok - demo: protects, reads back, catches tampering and rollback"
else
	echo "not ok - demo exited $rc"
	tail -30 <<<"$out" | sed 's/^/#   /'
fi
