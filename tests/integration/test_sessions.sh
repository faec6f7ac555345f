#!/usr/bin/env bash
# The session corpus (tests/sessions/, described in its README.md): SCONE
# sessions written from SCONE's documented language, each checked with
# `scone session check --compat --model` and compared with its expected
# result NAME.out (the exit status, the model scone reads, every warning,
# difference and error). Then the check that nothing is accepted and
# silently ignored (tests/sessions/ignored.py): removing any key or list
# item from an accepted session must change what scone reads, or be listed
# in tests/sessions/no-effect.txt with the reason.
#
# SCONE_SESSIONS_UPDATE=1 rewrites the .out files from scone's current
# answers (review the diff before committing it).
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
SCONE=${SCONE_BIN:-$ROOT/build/bin/scone}
PYTHON=${PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}
DIR=tests/sessions
work=$(mktemp -d /tmp/scone-sessions.XXXXXX)
trap 'rm -rf "$work"' EXIT

# The arguments of case NAME: NAME.args, one per line, then the file.
case_args() {
	local name=$1
	if [ -f "$DIR/$name.args" ]; then
		grep -v '^#' "$DIR/$name.args" | sed '/^$/d'
	fi
}

# Run case NAME in a clean environment (plus NAME.env, VAR=VALUE lines) and
# print its result in the .out format.
run_case() {
	local name=$1 out=$work/run.out err=$work/run.err rc
	local -a args env
	mapfile -t args < <(case_args "$name")
	env=(PATH=/usr/bin:/bin HOME=/nonexistent LC_ALL=C)
	if [ -f "$DIR/$name.env" ]; then
		mapfile -t -O 3 env < <(grep -v '^#' "$DIR/$name.env" | sed '/^$/d')
	fi
	(cd "$DIR" && env -i "${env[@]}" "$SCONE" session check --compat --model "${args[@]}" "$name.yaml") \
		>"$out" 2>"$err"
	rc=$?
	printf 'exit %d\n--- stdout\n' "$rc"
	cat "$out"
	printf -- '--- stderr\n'
	cat "$err"
}

total=0
for yaml in "$DIR"/*.yaml; do
	name=$(basename "$yaml" .yaml)
	total=$((total + 1))
	run_case "$name" >"$work/$name.out"
	if [ "${SCONE_SESSIONS_UPDATE:-}" = 1 ]; then
		cp "$work/$name.out" "$DIR/$name.out"
	fi
	if [ ! -f "$DIR/$name.out" ]; then
		echo "not ok - sessions: $name (no expected result $DIR/$name.out)"
		sed 's/^/#   /' "$work/$name.out" | head -40
	elif diff -u "$DIR/$name.out" "$work/$name.out" >"$work/diff"; then
		echo "ok - sessions: $name ($(head -1 "$DIR/$name.out"))"
	else
		echo "not ok - sessions: $name differs from its expected result"
		sed 's/^/#   /' "$work/diff" | head -60
	fi
done

# A message that did not fit is cut with "..." at its end: none may be.
if grep -n '\.\.\.$' "$DIR"/*.out >"$work/cut"; then
	echo "not ok - sessions: messages cut short:"
	sed 's/^/#   /' "$work/cut" | head -20
else
	echo "ok - sessions: every message is whole"
fi

# A file over the size limit is named once, with the limit.
head -c $((1024 * 1024 + 1)) /dev/zero | tr '\0' '#' >"$work/big.yaml"
msg=$("$SCONE" session check "$work/big.yaml" 2>&1)
if [ "$msg" = "scone: $work/big.yaml: larger than the limit of 1048576 bytes (TOO_LARGE)" ]; then
	echo "ok - sessions: a file over the size limit is named once"
else
	echo "not ok - sessions: a file over the size limit: $msg"
fi

# Every .out, .args and .env belongs to a session file.
orphans=""
for f in "$DIR"/*.out "$DIR"/*.args "$DIR"/*.env; do
	[ -e "$f" ] || continue
	base=${f%.*}
	[ -f "$base.yaml" ] || orphans="$orphans $(basename "$f")"
done
if [ -z "$orphans" ]; then
	echo "ok - sessions: every expected result belongs to a session ($total sessions)"
else
	echo "not ok - sessions: files without a session:$orphans"
fi

# Nothing accepted is ignored: no key was accepted without being read (the
# parser's own check, which refuses such a session), and removing any key
# or list item of an accepted session changes the model or is listed.
if grep -l 'accepted but not read' "$DIR"/*.out >"$work/unread"; then
	echo "not ok - sessions: keys accepted but not read in: $(tr '\n' ' ' <"$work/unread")"
else
	echo "ok - sessions: no key accepted without being read"
fi
SCONE="$SCONE" DIR="$DIR" "$PYTHON" "$DIR/ignored.py"
