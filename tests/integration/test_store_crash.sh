#!/usr/bin/env bash
# test_store_crash.sh - durability of the CAS store under SIGKILL.
#
# tests/tools/store_torture writes sessions (creates and compare-and-swap
# updates) to a store and prints "ACK name hash" after each write the store
# acknowledged; each round kills it with SIGKILL after a random 50-600 ms,
# then `store_torture --verify` checks that the store opens and holds every
# acknowledged write (or the one after it, written but not yet reported).
# Two writers run at once in the last rounds, sharing the store like two CAS
# processes. STORE_CRASH_ROUNDS (default 8) and STORE_CRASH_SEED can be set.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
t_init

TORTURE=$PWD/build/tools/store_torture
ROUNDS=${STORE_CRASH_ROUNDS:-8}
RANDOM=${STORE_CRASH_SEED:-4242}
KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')

if [ ! -x "$TORTURE" ]; then
	t_fail "store crash: build tests/tools/store_torture (make tools)"
	t_done
	exit 1
fi

# A write is in flight per writer at a kill; one left by an earlier round
# stays ahead until a later round writes that session again.
case_kill_rounds() {
	local r pid pid2 delay writers ahead=0
	for r in $(seq 1 "$ROUNDS"); do
		writers=1
		delay=$((50 + RANDOM % 550))
		"$TORTURE" --sessions 12 store.db "$KEY" 0 >>acks 2>>torture.err &
		pid=$!
		pid2=
		if [ "$r" -gt $((ROUNDS / 2)) ]; then
			"$TORTURE" --sessions 12 store.db "$KEY" 0 >>acks 2>>torture.err &
			pid2=$!
			writers=2
		fi
		sleep "$(printf '0.%03d' "$delay")"
		kill -9 "$pid" ${pid2:+"$pid2"} 2>/dev/null || true
		wait "$pid" ${pid2:+"$pid2"} 2>/dev/null || true
		expect_ok "$TORTURE" --verify --max-ahead $((writers + ahead)) store.db "$KEY" acks
		grep -q '^VERIFY OK' "$OUT" || { show_output; fail "round $r: $(cat "$OUT")"; }
		ahead=$(sed -n 's/.* ahead=\([0-9]*\).*/\1/p' "$OUT")
		echo "round $r after ${delay} ms: $(cat "$OUT")"
	done
	[ "$(grep -c '^ACK ' acks)" -ge 20 ] || fail "too few acknowledged writes: $(grep -c '^ACK ' acks)"
}

case_wrong_key_refused() {
	"$TORTURE" --sessions 2 store.db "$KEY" 5 >acks
	expect_exit 1 "$TORTURE" --verify store.db "$(printf '%064d' 0)" acks
	grep -q 'VERIFY FAIL' "$OUT" || { show_output; fail "a wrong master key was not refused"; }
}

run_case "store crash: SIGKILL during creates and updates ($ROUNDS rounds), every ACK survives" case_kill_rounds
run_case "store crash: a wrong master key is refused" case_wrong_key_refused
t_done
