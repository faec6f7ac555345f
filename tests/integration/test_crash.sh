#!/usr/bin/env bash
# test_crash.sh - crash consistency of protected volumes.
#
# First, deterministic crash points driven by tests/tools/vol_writer: a
# commit never reported (--unreported), an iteration abandoned just before
# its commit (--abandon), and a clean close right after a sync.
#
# Then SIGKILL rounds. Each round starts tests/tools/vol_writer on a sealed volume, kills it with
# SIGKILL after a random 10-300 ms, and then checks what it left:
#  - the volume opens with the last tag the writer printed (an OPENED or
#    SYNCED line) and holds exactly that iteration's content, or the next
#    one (killed after a commit, before printing its tag);
#  - `scone fspf verify` passes with that tag;
#  - the tag before it is accepted exactly when the disk is at the last
#    printed iteration (one commit behind), and is a ROLLBACK otherwise.
# The next round resumes writing from that state. At the end a clean run
# closes the volume, and `scone fspf extract` must equal the expected tree.
#
# CRASH_ROUNDS (default 25) and CRASH_SEED (the kill delays) can be set.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
t_init

WRITER=${VOL_WRITER:-$PWD/build/tools/vol_writer}
ROUNDS=${CRASH_ROUNDS:-25}
SEED=${CRASH_SEED:-20161102}

if [ ! -x "$WRITER" ] || [ tests/tools/vol_writer.c -nt "$WRITER" ]; then
	make -s tools >"$T_TMP/make.log" 2>&1 || true
fi
if [ ! -x "$WRITER" ]; then
	t_fail "crash: build tests/tools/vol_writer (make tools)" "$(tail -5 "$T_TMP/make.log")"
	t_done
	exit 1
fi

# ---------------- deterministic crash points ----------------

# new_volume DIR: a sealed volume with one encrypted region; sets K and T0.
new_volume() {
	mkdir -p "$1" && cd "$1" || return 1
	expect_ok scone fspf create vol.fspf
	expect_ok scone fspf addr vol.fspf /data --encrypted --kernel data
	expect_ok scone fspf encrypt vol.fspf
	K=$(sed -E 's/.* key: ([0-9a-f]{64})$/\1/' "$OUT")
	T0=$(sed -E 's/.* tag: ([0-9a-f]{32}) key: .*/\1/' "$OUT")
}

# run_writer ARGS...: vol_writer must succeed; sets W_IT and W_TAG from its last line.
run_writer() {
	expect_ok "$WRITER" "$@"
	assert_empty "$ERR" "writer stderr"
	read -r _ W_IT W_TAG < <(tail -1 "$OUT")
}

host_files() { find data -type f | wc -l; }

# A writer stopped after creating a file, before the commit: the state
# before stays valid and verifies; the next writer's commits must not leave
# the orphaned host file behind (verify would report UNKNOWN_FILE forever).
case_abandoned_new_file() {
	local t4 n
	new_volume vol
	run_writer --iterations 4 vol.fspf "$K" "$T0" # iteration 5 creates a file
	t4=$W_TAG
	expect_ok "$WRITER" --abandon vol.fspf "$K" "$t4"
	assert_grep '^ABANDONED 5$' "$OUT"
	expect_ok "$WRITER" --check 4 vol.fspf "$K" "$t4"
	assert_grep '\(same\)' "$OUT"
	expect_ok scone fspf verify vol.fspf --key "$K" --tag "$t4"
	run_writer --iterations 1 vol.fspf "$K" "$t4"
	assert_eq 5 "$W_IT" "iteration after resuming"
	expect_ok "$WRITER" --check 5 vol.fspf "$K" "$W_TAG"
	n=$(sed -nE 's/.* files=([0-9]+) .*/\1/p' "$OUT")
	[ "$(host_files)" -eq $((n + 1)) ] || { ls -l data; fail "$(host_files) host files for $((n + 1)) protected files"; }
	expect_ok scone fspf verify vol.fspf --key "$K" --tag "$W_TAG"
}

# Unlinks put host files on the garbage list, removed after the commit. A
# close right after a sync has nothing left to commit: its tag is the sync's.
# One writer per iteration, so that some of them end with an unlink.
case_close_after_sync() {
	local i synced tag
	new_volume vol
	tag=$T0
	for ((i = 1; i <= 40; i++)); do
		run_writer --iterations 1 vol.fspf "$K" "$tag"
		synced=$(grep "^SYNCED $i " "$OUT" | cut -d' ' -f3)
		[ -n "$synced" ] || fail "no SYNCED $i line"
		assert_eq "$synced" "$W_TAG" "tag returned by close right after the sync of iteration $i"
		tag=$W_TAG
	done
}

# A writer abandoned in the middle of an iteration with every kind of change
# (appends, overwrites, truncates, renames, unlinks): the previous state is intact.
case_abandon_each_iteration() {
	local i tag
	new_volume vol
	tag=$T0
	for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30; do
		expect_ok "$WRITER" --abandon vol.fspf "$K" "$tag"
		assert_grep "^ABANDONED $i\$" "$OUT"
		expect_ok "$WRITER" --check $((i - 1)) vol.fspf "$K" "$tag"
		assert_grep '\(same\)' "$OUT"
		run_writer --iterations 1 vol.fspf "$K" "$tag"
		assert_eq "$i" "$W_IT" "iteration"
		tag=$W_TAG
	done
	expect_ok "$WRITER" --check 30 vol.fspf "$K" "$tag"
	expect_ok scone fspf verify vol.fspf --key "$K" --tag "$tag"
}

# A writer that committed and died before reporting the tag: the previous
# tag opens the newer state (read-only and read-write); two behind is refused.
case_unreported_commit() {
	local t3 t4
	new_volume vol
	run_writer --iterations 3 vol.fspf "$K" "$T0"
	t3=$W_TAG
	expect_ok "$WRITER" --iterations 2 --unreported vol.fspf "$K" "$t3"
	assert_eq "SYNCED 4" "$(tail -1 "$OUT" | cut -d' ' -f1-2)" "last line printed"
	t4=$(tail -1 "$OUT" | cut -d' ' -f3)
	expect_ok "$WRITER" --check 4 vol.fspf "$K" "$t4"
	assert_grep 'CHECK OK iteration=5 expected=4 \(one ahead\)' "$OUT"
	expect_ok scone fspf verify vol.fspf --key "$K" --tag "$t4"
	expect_ok scone fspf cat vol.fspf --key "$K" --tag "$t4" /data/state
	assert_eq "iteration 5" "$(cat "$OUT")" "state file"
	expect_fail_with 'ROLLBACK' "$WRITER" --check 3 vol.fspf "$K" "$t3"
	expect_fail_with 'ROLLBACK|rollback' scone fspf verify vol.fspf --key "$K" --tag "$t3"
	# A writer resumes from the one-behind tag and goes on.
	run_writer --iterations 2 vol.fspf "$K" "$t4"
	assert_grep '^OPENED 5 ' "$OUT"
	assert_eq 7 "$W_IT" "iteration"
	expect_ok "$WRITER" --check 7 vol.fspf "$K" "$W_TAG"
	expect_ok scone fspf verify vol.fspf --key "$K" --tag "$W_TAG"
	expect_fail_with 'ROLLBACK' "$WRITER" --check 4 vol.fspf "$K" "$t4"
}

run_case "crash: a commit never reported is one ahead of the last tag" case_unreported_commit
run_case "crash: abandoned iterations leave the previous state intact (30 iterations)" case_abandon_each_iteration
run_case "crash: an abandoned new file leaves no orphan once the writer resumes" case_abandoned_new_file
run_case "crash: close right after a sync adds no commit" case_close_after_sync

# ---------------- random SIGKILL rounds ----------------

VOL=$T_TMP/vol
FSPF=$VOL/vol.fspf
declare -A TAGS # iteration -> tag of that committed state
LAST=0          # highest iteration whose tag we know
KEY=

# remember ITERATION TAG
remember() {
	if [ -n "${TAGS[$1]:-}" ] && [ "${TAGS[$1]}" != "$2" ]; then
		echo "iteration $1 seen with two tags: ${TAGS[$1]} and $2"
		return 1
	fi
	TAGS[$1]=$2
	[ "$1" -le "$LAST" ] || LAST=$1
}

setup() {
	local out
	mkdir -p "$VOL" && cd "$VOL" || return 1
	"$SCONE_BIN" fspf create vol.fspf >/dev/null &&
		"$SCONE_BIN" fspf addr vol.fspf /data --encrypted --kernel data &&
		out=$("$SCONE_BIN" fspf encrypt vol.fspf) || return 1
	KEY=$(sed -E 's/.* key: ([0-9a-f]{64})$/\1/' <<<"$out")
	remember 0 "$(sed -E 's/.* tag: ([0-9a-f]{32}) key: .*/\1/' <<<"$out")"
	cd - >/dev/null
}

if ! setup; then
	t_fail "crash: set up a sealed volume"
	t_done
	exit 1
fi
t_ok "crash: set up a sealed volume"
echo "# seed $SEED, $ROUNDS rounds, volume $VOL"

RANDOM=$SEED
ahead_rounds=0
nosync_rounds=0
prev_checked=0
round_log=$T_TMP/round.log

# One round. Prints what happened; returns non-zero (after every check has
# run) when something is wrong.
crash_round() {
	local r=$1 ms=$((10 + RANDOM % 291)) pid rc it tag start_last=$LAST disk out prev bad=0
	local wout=$T_TMP/writer.$r.out werr=$T_TMP/writer.$r.err
	"$WRITER" "$FSPF" "$KEY" "${TAGS[$LAST]}" >"$wout" 2>"$werr" &
	pid=$!
	t_track_pid "$pid"
	sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	rc=$?
	t_untrack_pid "$pid"
	if [ "$rc" -ne 137 ] || [ -s "$werr" ]; then
		echo "writer exited with status $rc (137 = killed) after ${ms} ms; its stderr:"
		head -5 "$werr"
		[ "$rc" -eq 137 ] || return 1
		bad=1
	fi
	# Every complete line is a committed state (a partial last line is ignored).
	while read -r _ it tag; do
		remember "$it" "$tag" || return 1
	done < <(grep -E '^(OPENED|SYNCED) [0-9]+ [0-9a-f]{32}$' "$wout")
	grep -q '^SYNCED ' "$wout" || nosync_rounds=$((nosync_rounds + 1))

	# The last printed tag: the disk is at that iteration or one past it.
	if ! out=$("$WRITER" --check "$LAST" "$FSPF" "$KEY" "${TAGS[$LAST]}" 2>&1); then
		echo "check with the last printed tag (iteration $LAST) failed:"
		echo "$out" | head -10
		return 1 # nothing below makes sense without it
	fi
	disk=$(sed -nE 's/^CHECK OK iteration=([0-9]+) .*/\1/p' <<<"$out")
	[ -n "$disk" ] || { echo "unexpected check output: $out"; return 1; }
	if [ "$disk" -ne "$LAST" ]; then
		# Killed between the commit and printing it: learn the new tag from the
		# volume (the next writer's OPENED line must agree). The next writer
		# still starts from the last printed tag, one commit behind the disk.
		ahead_rounds=$((ahead_rounds + 1))
		TAGS[$disk]=$(sed -nE 's/.* tag=([0-9a-f]{32}) .*/\1/p' <<<"$out")
	fi
	if ! "$SCONE_BIN" fspf verify "$FSPF" --key "$KEY" --tag "${TAGS[$LAST]}" >"$round_log" 2>&1; then
		echo "scone fspf verify with the last printed tag (iteration $LAST, disk at $disk) failed:"
		head -4 "$round_log"
		bad=1
	fi

	# The tag before it: accepted when the disk is one commit past it, a rollback when two.
	prev=$((LAST - 1))
	if [ "$prev" -ge 0 ] && [ -n "${TAGS[$prev]:-}" ]; then
		prev_checked=$((prev_checked + 1))
		if [ "$disk" -eq "$LAST" ]; then
			if ! out=$("$WRITER" --check "$prev" "$FSPF" "$KEY" "${TAGS[$prev]}" 2>&1); then
				echo "the tag one commit behind the disk (iteration $prev) was refused:"
				echo "$out" | head -5
				bad=1
			fi
		elif out=$("$WRITER" --check "$prev" "$FSPF" "$KEY" "${TAGS[$prev]}" 2>&1); then
			echo "the tag two commits behind the disk (iteration $prev, disk at $disk) was accepted: $out"
			bad=1
		elif ! grep -q ROLLBACK <<<"$out"; then
			echo "expected ROLLBACK for a tag two commits behind, got: $out"
			bad=1
		elif "$SCONE_BIN" fspf verify "$FSPF" --key "$KEY" --tag "${TAGS[$prev]}" >"$round_log" 2>&1; then
			echo "scone fspf verify accepted a tag two commits behind the disk"
			bad=1
		fi
	fi
	echo "killed after ${ms} ms; printed up to iteration $start_last -> $LAST; disk at $disk"
	return $bad
}

msg_file=$T_TMP/round.msg
for ((r = 1; r <= ROUNDS; r++)); do
	crash_round "$r" >"$msg_file" 2>&1 # in this shell: it keeps TAGS and LAST
	rc=$?
	if [ $rc -eq 0 ]; then
		t_ok "crash round $r: $(tail -1 "$msg_file")"
	else
		echo "not ok - crash round $r: $(tail -1 "$msg_file")"
		sed '$d; s/^/#   /' "$msg_file" | head -40
		T_FAILED=$((T_FAILED + 1))
	fi
done
echo "# $LAST iterations committed; $ahead_rounds rounds with the disk one commit past the last printed tag;" \
	"$nosync_rounds rounds killed before a sync; $prev_checked previous-tag checks"

# The writer made progress at all (it is not always killed during start-up).
if [ "$LAST" -ge "$ROUNDS" ]; then
	t_ok "crash: the writer made progress ($LAST iterations)"
else
	t_fail "crash: the writer made progress" "only $LAST iterations in $ROUNDS rounds"
fi

# A clean run from the final state, then the CLI's view equals the expected tree.
case_clean_finish() {
	local last_line it tag
	expect_ok "$WRITER" --iterations 5 "$FSPF" "$KEY" "${TAGS[$LAST]}"
	assert_empty "$ERR" "writer stderr"
	last_line=$(tail -1 "$OUT")
	read -r _ it tag <<<"$last_line"
	[[ $last_line =~ ^CLOSED\ [0-9]+\ [0-9a-f]{32}$ ]] || fail "last line of the writer: $last_line"
	expect_ok "$WRITER" --check "$it" "$FSPF" "$KEY" "$tag"
	assert_grep "CHECK OK iteration=$it expected=$it \(same\)" "$OUT"
	expect_ok scone fspf verify "$FSPF" --key "$KEY" --tag "$tag"
	expect_ok scone fspf extract "$FSPF" --key "$KEY" --tag "$tag" "$CASE_DIR/out"
	expect_ok "$WRITER" --model "$it" "$CASE_DIR/model"
	diff -r "$CASE_DIR/model" "$CASE_DIR/out" || fail "extracted volume differs from iteration $it"
	# No plaintext left over from the writer's content in the host directory.
	[ "$(find "$VOL/data" -type f | grep -cvE '/[0-9a-f]{32}$')" -eq 0 ] || fail "stray host files: $(ls "$VOL/data")"
	# The tag the writer started from is five commits behind now: refused.
	expect_fail_with 'ROLLBACK' "$WRITER" --check "$LAST" "$FSPF" "$KEY" "${TAGS[$LAST]}"
}
run_case "crash: clean finish; extract equals the expected tree" case_clean_finish
t_done
