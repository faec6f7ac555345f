#!/usr/bin/env bash
# test_runtime_faults.sh - the runtime's promises when its real calls fail.
#
# libscone-fault.so (tests/tools/fault/fault.c), preloaded after
# libscone.so, receives every real call the runtime and the volume library
# make, and fails the Nth call of a family on the volume's host files as
# SCONE_FAULT says: EINTR, a short transfer, EIO, ENOSPC, or a SIGKILL at
# that point (docs/testing.md). The program is tests/tools/fault/fault_workload:
# it appends records, replaces a state file by rename, fsyncs, and prints
# "ACK SEQ" after each successful fsync (and after its final close).
#
# First a clean run counts the calls per family (count=); then injection
# points are sampled in each family for each fault: every call when there
# are few, else FAULT_POINTS spread over the calls with a random offset
# (FAULT_SEED, printed). After each fault run, a clean run reads everything
# back and checks:
#  - the volume opens again (never unopenable);
#  - every ACKed record is there, in order, intact; nothing is there that
#    was never written (no record past the last one written, none whose
#    write returned an error); the state file names an ACKed record or a
#    later one, and no record that is not there;
#  - eintr and short are invisible: the program succeeds, every record is
#    there, and the runtime prints no error;
#  - eio and enospc surface (the program's write, fsync or close fails, or
#    the start is refused with one line) or are absorbed (the program
#    succeeds and every record is there); never a success that is lost;
#  - crash: what was ACKed before the SIGKILL is there;
#  - the record marker never appears on the host.
#
# Two volumes: an fspf given by SCONE_FSPF (every point starts from the
# same copy, so the counts are exact), and a session volume from a real
# scone-cas (one volume through all points: each point's file must read the
# same at every later check, and the disk may be one commit ahead of CAS
# after a crash, which the next start accepts). python3 (a real program)
# runs some points on the session volume too.
#
# FAULT_POINTS (default 3), FAULT_CAS_POINTS (default 1), FAULT_SEED.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
. tests/integration/cas_lib.sh
t_init
cas_require

ROOT=$PWD
LIB=$ROOT/build/lib/libscone.so
FAULT_SO=$ROOT/build/tools/libscone-fault.so
WORKLOAD=$ROOT/build/tools/fault_workload
PY=/usr/bin/python3
POINTS=${FAULT_POINTS:-3}
CAS_POINTS=${FAULT_CAS_POINTS:-1}
SEED=${FAULT_SEED:-$(date +%s)}
COUNT=40 # records per run
EVERY=8  # records between fsyncs (COUNT is a multiple)
MARK=FAULTREC-5d1e
T_CMD_TIMEOUT=60

if [ ! -x "$WORKLOAD" ] || [ ! -f "$FAULT_SO" ] || [ -n "$(find tests/tools/fault -newer "$FAULT_SO" -o -newer "$WORKLOAD" | head -1)" ]; then
	make -s tools >"$T_TMP/make.log" 2>&1 || true
fi
if [ ! -x "$WORKLOAD" ] || [ ! -f "$FAULT_SO" ] || [ ! -f "$LIB" ] || [ ! -x "$PY" ]; then
	t_fail "faults: libscone.so, libscone-fault.so, fault_workload (make all tools) and $PY" "$(tail -5 "$T_TMP/make.log" 2>/dev/null)"
	t_done
	exit 1
fi

# The volumes live in memory when they can: a point is two runs, and an fsync on disk costs more than both.
if W=$(mktemp -d /dev/shm/scone-faults.XXXXXX 2>/dev/null); then
	trap 'for p in ${CASE_PIDS[@]+"${CASE_PIDS[@]}"}; do kill -9 "$p" 2>/dev/null; done; rm -rf "$W"; t_cleanup' EXIT
else
	W=$T_TMP/w
	mkdir -p "$W"
fi
echo "# seed $SEED (FAULT_SEED), $POINTS points per family and fault (FAULT_POINTS), work dir $W"
RANDOM=$SEED
INJ=$W/injected.log
declare -A TRIED   # "family fault" -> points tried
declare -A OUTCOME # "fault outcome" -> points
SHORT_WRITES=0     # points where a failed host write reached the program as a short write
TOTAL=0

# ---------------- reading what a run left (bash builtins: a point spawns few processes) ----------------

# counts_read FILE: COUNTS[family] from a count file; FAMILIES lists those with calls.
declare -A COUNTS
counts_read() {
	local f c
	COUNTS=() FAMILIES=
	while read -r f c; do
		[ "$f" = '*' ] || [ "${c:-0}" -eq 0 ] || { COUNTS[$f]=$c; FAMILIES="$FAMILIES $f"; }
	done <"$1"
}

counts_show() {
	local f
	for f in $FAMILIES; do printf '%s %s ' "$f" "${COUNTS[$f]}"; done
}

# out_read FILE: ACKED (last ACK, -1: none), DONE (0/1), ERRS (the ERR lines), ERR_WRITE (its record or "").
out_read() {
	local a b c d
	ACKED=-1 DONE=0 ERRS= ERR_WRITE=
	while read -r a b c d; do
		case $a in
		ACK) ACKED=$b ;;
		DONE) DONE=1 ;;
		ERR)
			ERRS="$ERRS$a $b $c $d; "
			[ "$b" != write ] || ERR_WRITE=${ERR_WRITE:-$c}
			;;
		esac
	done <"$1"
}

# check_read FILE: CHK_REC[name], CHK_STATE[name], CHK_TORN[name] (the record a file ends in the start
# of) from a check's output; CHK_BAD: its BAD lines.
declare -A CHK_REC CHK_STATE CHK_TORN
check_read() {
	local a b c
	CHK_REC=() CHK_STATE=() CHK_TORN=() CHK_BAD=
	while read -r a b c; do
		case $a in
		RECORDS) CHK_REC[$b]=$c ;;
		STATE) CHK_STATE[$b]=$c ;;
		TORN) CHK_TORN[$b]=${c%% *} ;;
		BAD | scone:) CHK_BAD="$CHK_BAD$a $b $c; " ;;
		esac
	done <"$1"
}

# err_read FILE: NEW_TAG (an fspf's "new tag" at exit), COMPLAINTS (the runtime's errors; warnings and
# information are not), STARTS (refusals to start). The runtime's lines: "scone: error|warn|info: ...".
err_read() {
	local line
	NEW_TAG= COMPLAINTS= STARTS=0
	while IFS= read -r line; do
		case $line in
		"scone: warn: fspf "*": new tag "*) NEW_TAG=${line##*: new tag } NEW_TAG=${NEW_TAG%% *} ;;
		"scone: warn:"* | "scone: info:"*) ;;
		"scone: error: cannot start:"*) STARTS=$((STARTS + 1)) COMPLAINTS="$COMPLAINTS$line; " ;;
		scone:*) COMPLAINTS="$COMPLAINTS$line; " ;;
		esac
	done <"$1"
}

# injected FAMILY NTH: the injector's log says it failed that call.
injected() {
	local line
	while IFS= read -r line; do
		case $line in *" call=$1 n=$2 "*) return 0 ;; esac
	done <"$INJ"
	return 1
}

# ---------------- choosing points, judging one ----------------

# sample COUNT PER: SAMPLE = the injection points of a family with COUNT calls (PER of them at most).
sample() {
	local c=$1 per=$2 j stride
	SAMPLE=
	if [ "$c" -le "$per" ]; then
		for ((j = 1; j <= c; j++)); do SAMPLE="$SAMPLE $j"; done
		return
	fi
	stride=$((c / per))
	for ((j = 0; j < per; j++)); do SAMPLE="$SAMPLE $((1 + j * stride + RANDOM % stride))"; done
}

# kinds FAMILY: KINDS = the faults that apply to it.
kinds() {
	case $1 in
	read | write | pread | pwrite) KINDS="eintr short eio enospc crash" ;;
	*) KINDS="eintr eio enospc crash" ;;
	esac
}

# spec FAMILY NTH KIND PREFIX: SPEC = the SCONE_FAULT rule (eio-all: every call from the Nth on fails).
spec() {
	local k=$3 times=1
	[ "$k" != eio-all ] || k=eio times=0
	SPEC="call=$1,nth=$2,times=$times,fault=$k,path=$4,log=$INJ"
}

# judge KIND RC CHECK_RC NAME, after out_read, err_read (the fault run) and
# check_read (the check): WHY = "" when the run kept every promise (above),
# else what broke; OUTCOME_OF = clean, absorbed, surfaced, refused or crashed.
# KIND "none": the fault was not reached, the run must be clean.
judge() {
	local kind=$1 rc=$2 crc=$3 name=$4 n state
	OUTCOME_OF= WHY=
	if [ "$crc" -ne 0 ] || [ -n "$CHK_BAD" ]; then
		WHY="the volume does not open again or reads wrong (exit $crc): $CHK_BAD"
		return
	fi
	n=${CHK_REC[$name]:-} state=${CHK_STATE[$name]:-}
	[ -n "$n" ] && [ -n "$state" ] || { WHY="the check printed nothing for $name"; return; }
	[ "$n" -ge $((ACKED + 1)) ] || { WHY="acknowledged records lost: ACK $ACKED, but $n records"; return; }
	[ "$n" -le "$COUNT" ] || { WHY="$n records, only $COUNT were written"; return; }
	if [ -n "$ERR_WRITE" ] && [ "$n" -gt "$ERR_WRITE" ]; then WHY="record $ERR_WRITE is there, but its write failed"; return; fi
	# A file may end in the start of a record only when the program's write of it was short (write(2)'s
	# partial transfer: the runtime returns the bytes that are in the file).
	if [ -n "${CHK_TORN[$name]:-}" ]; then
		case "$ERRS" in
		*"ERR write ${CHK_TORN[$name]} short;"*) SHORT_WRITES=$((SHORT_WRITES + 1)) ;;
		*) WHY="the file ends in part of record ${CHK_TORN[$name]}, but no write of it was short: $ERRS"; return ;;
		esac
	fi
	[ "$state" -ge "$ACKED" ] || { WHY="the state file names record $state, the last ACK was $ACKED"; return; }
	[ "$state" -lt "$n" ] || { WHY="the state file names record $state, past the $n records"; return; }
	if grep -rqa "$MARK" "$VOL_DIR"; then WHY="plaintext on the host (the record marker in $VOL_DIR)"; return; fi
	case $kind in
	eintr | short | none)
		OUTCOME_OF=clean
		[ "$rc" -eq 0 ] && [ "$DONE" -eq 1 ] && [ -z "$ERRS" ] ||
			{ WHY="the program saw it (exit $rc): $ERRS$COMPLAINTS"; return; }
		[ "$n" -eq "$COUNT" ] || { WHY="the program succeeded, but $n of $COUNT records are there"; return; }
		[ -z "$COMPLAINTS" ] || { WHY="the runtime complained: $COMPLAINTS"; return; }
		;;
	eio | eio-all | enospc)
		if [ "$rc" -eq 0 ] && [ "$DONE" -eq 1 ]; then
			[ "$n" -eq "$COUNT" ] || { WHY="silent loss: the program succeeded, $n of $COUNT records are there"; return; }
			OUTCOME_OF=absorbed
			[ -z "$ERRS" ] || OUTCOME_OF=surfaced
		elif [ "$rc" -eq 3 ] && [ -n "$ERRS" ]; then
			OUTCOME_OF=surfaced
		elif [ "$rc" -eq 1 ] && [ "$ACKED" -eq -1 ] && [ "$STARTS" -eq 1 ]; then
			OUTCOME_OF=refused
		else
			WHY="exit $rc without a clear error: $ERRS$COMPLAINTS"
		fi
		;;
	crash)
		OUTCOME_OF=crashed
		[ "$rc" -eq 137 ] || WHY="the crash did not happen (exit $rc)"
		;;
	esac
}

# One group of points (a family and a fault) through POINT_FN, which sets WHY; one ok line.
# group NAME POINT_FN FAMILY KIND NTH...
group() {
	local name=$1 fn=$2 fam=$3 kind=$4 nth bad= list=
	shift 4
	for nth in "$@"; do
		WHY= OUTCOME_OF=
		"$fn" "$fam" "$kind" "$nth"
		TOTAL=$((TOTAL + 1))
		TRIED["$fam $kind"]=$((${TRIED["$fam $kind"]:-0} + 1))
		OUTCOME["$kind ${OUTCOME_OF:-?}"]=$((${OUTCOME["$kind ${OUTCOME_OF:-?}"]:-0} + 1))
		list="$list $nth"
		if [ -n "$WHY" ] && [ -z "$bad" ]; then bad="at call $nth: $WHY"; fi
	done
	if [ -z "$bad" ]; then
		t_ok "$name: $fam $kind at call$list"
	else
		t_fail "$name: $fam $kind at call$list" "$bad" "(FAULT_SEED=$SEED)"
	fi
}

# sweep NAME POINT_FN PER: every family counted (COUNTS), every fault that applies, PER points each.
sweep() {
	local fam kind
	for fam in $FAMILIES; do
		kinds "$fam"
		for kind in $KINDS; do
			sample "${COUNTS[$fam]}" "$3"
			# shellcheck disable=SC2086
			group "$1" "$2" "$fam" "$kind" $SAMPLE
		done
	done
}

# ---------------- an fspf given by SCONE_FSPF: every point from the same copy ----------------

FS=$W/fs
BASE=$W/fs.base
VOL_DIR=$FS

# fspf_run OUT SPEC TAG ARGS...: the workload under the runtime (and the injector when SPEC is set).
fspf_run() {
	local out=$1 spec=$2 tag=$3 pre=$LIB
	shift 3
	[ -z "$spec" ] || pre="$LIB $FAULT_SO"
	RC=0
	{ # (the braces keep bash's "Killed" notice of a crash point out of the log)
		timeout "$T_CMD_TIMEOUT" env -i PATH=/usr/bin:/bin SCONE_FSPF="$FS/volume.fspf" SCONE_FSPF_KEY="$KEY" \
			${tag:+SCONE_FSPF_TAG=$tag} ${spec:+SCONE_FAULT=$spec} LD_PRELOAD="$pre" \
			"$WORKLOAD" "$@" >"$out.out" 2>"$out.err" </dev/null
	} 2>/dev/null || RC=$?
}

fspf_setup() {
	local line
	mkdir -p "$BASE" && cd "$BASE" || return 1
	"$SCONE_BIN" fspf create volume.fspf >/dev/null &&
		"$SCONE_BIN" fspf addr volume.fspf /scone-faults --encrypted --kernel enc >/dev/null &&
		line=$("$SCONE_BIN" fspf encrypt volume.fspf) || return 1
	cd "$ROOT" || return 1
	KEY=${line##* key: }
	TAG0=${line##* tag: } TAG0=${TAG0%% *}
	# One run first: the base holds a file and a history, as a volume in use does.
	cp -a "$BASE" "$FS"
	fspf_run "$W/prep" "" "$TAG0" write /scone-faults r0 "$COUNT" "$EVERY"
	[ "$RC" -eq 0 ] || { cat "$W/prep.out" "$W/prep.err"; return 1; }
	err_read "$W/prep.err"
	[ -n "$NEW_TAG" ] || return 1
	TAG0=$NEW_TAG
	rm -rf "$BASE" && mv "$FS" "$BASE"
}

# fspf_point FAMILY KIND NTH: one fault run from the base copy, then its check; sets WHY.
fspf_point() {
	local fam=$1 kind=$2 nth=$3 r=$W/pt rc
	rm -rf "$FS" && cp -a "$BASE" "$FS"
	: >"$INJ"
	spec "$fam" "$nth" "$kind" "$FS"
	fspf_run "$r" "$SPEC" "$TAG0" write /scone-faults r1 "$COUNT" "$P_EVERY"
	rc=$RC
	injected "$fam" "$nth" || { WHY="not injected (the call did not happen): exit $rc"; return; }
	out_read "$r.out"
	err_read "$r.err"
	# The check opens with the tag the run printed at exit; after a crash, without one (freshness unchecked).
	[ "$rc" -ne 1 ] || NEW_TAG=$TAG0
	fspf_run "$r.chk" "" "$NEW_TAG" check /scone-faults r0,r1
	check_read "$r.chk.out"
	judge "$kind" "$rc" "$RC" r1
	# r0, from the base, is untouched.
	[ -n "$WHY" ] || [ "${CHK_REC[r0]:-}" = "$COUNT" ] || WHY="the earlier file r0 changed: ${CHK_REC[r0]:-} records"
}

SECONDS=0
if ! fspf_setup >"$W/setup.log" 2>&1; then
	t_fail "faults: set up an fspf volume" "$(tail -5 "$W/setup.log")"
	t_done
	exit 1
fi

# The clean run: the calls per family on the volume's host files.
P_EVERY=$EVERY # records between fsyncs at the points
rm -rf "$FS" && cp -a "$BASE" "$FS"
fspf_run "$W/count" "path=$FS,count=$W/fspf.counts" "$TAG0" write /scone-faults r1 "$COUNT" "$EVERY"
counts_read "$W/fspf.counts"
if [ "$RC" -eq 0 ] && [ -n "${COUNTS[pwrite]:-}" ] && [ -n "${COUNTS[fdatasync]:-}" ] && [ -n "${COUNTS[open]:-}" ] &&
	[ -n "${COUNTS[pread]:-}" ]; then
	t_ok "faults: the runtime's real calls on the volume go through the injector ($(counts_show))"
else
	t_fail "faults: the runtime's real calls on the volume go through the injector" "exit $RC" "$(cat "$W/fspf.counts" "$W/count.err")"
fi
sweep "faults fspf" fspf_point "$POINTS"
# The first call of each family is the start's (the volume's open, its first read): always tried.
for fam in $FAMILIES; do group "faults fspf start" fspf_point "$fam" eintr 1; done
for fam in pwrite fdatasync; do
	[ -n "${COUNTS[$fam]:-}" ] || continue
	sample "${COUNTS[$fam]}" 3
	# shellcheck disable=SC2086
	group "faults fspf" fspf_point "$fam" eio-all $SAMPLE
done

# A write split across two chunks whose second host write fails must reach the program as a short
# write (the first part is in the file), never as -1 with that part kept. Record 35 of 40 crosses the
# first chunk's end: going down from the last pwrite, the first point that leaves a record's start.
short_write_point() {
	local nth before=$SHORT_WRITES
	for ((nth = ${COUNTS[pwrite]:-0}; nth > 0 && nth > ${COUNTS[pwrite]:-0} - 40; nth--)); do
		WHY= OUTCOME_OF=
		fspf_point pwrite eio "$nth"
		TOTAL=$((TOTAL + 1))
		[ -z "$WHY" ] || { SW_WHY="at call $nth: $WHY"; return 1; }
		[ "$SHORT_WRITES" -eq "$before" ] || { SW_AT=$nth; return 0; }
	done
	SW_WHY="no pwrite from the last down to call $nth split a program's write: the workload's records no longer cross a chunk?"
	return 1
}
if short_write_point; then
	t_ok "faults fspf: a write whose second chunk fails is a short write (pwrite eio at call $SW_AT)"
else
	t_fail "faults fspf: a write whose second chunk fails is a short write" "$SW_WHY" "(FAULT_SEED=$SEED)"
fi

# The fspf log compacts (a new file, a rename, the directory's fsync) once it is full:
# commits on the base until a run with a commit per record compacts, then those calls.
compact_base() {
	local i
	for ((i = 1; i <= 10; i++)); do
		rm -rf "$FS" && cp -a "$BASE" "$FS"
		fspf_run "$W/count" "path=$FS,count=$W/compact.counts" "$TAG0" write /scone-faults r1 "$COUNT" 1
		counts_read "$W/compact.counts"
		[ "$RC" -ne 0 ] || [ -z "${COUNTS[rename]:-}" ] || return 0
		rm -rf "$FS" && cp -a "$BASE" "$FS"
		fspf_run "$W/prep" "" "$TAG0" write /scone-faults "p$i" "$COUNT" 1 # a commit per record
		err_read "$W/prep.err"
		[ "$RC" -eq 0 ] && [ -n "$NEW_TAG" ] || return 1
		TAG0=$NEW_TAG
		rm -rf "$BASE" && mv "$FS" "$BASE"
	done
	return 1
}
P_EVERY=1
if compact_base; then
	t_ok "faults: the fspf log compacts in a run ($(counts_show))"
	for fam in rename fsync; do
		[ -n "${COUNTS[$fam]:-}" ] || continue
		kinds "$fam"
		for kind in $KINDS; do
			sample "${COUNTS[$fam]}" "$POINTS"
			# shellcheck disable=SC2086
			group "faults fspf compaction" fspf_point "$fam" "$kind" $SAMPLE
		done
	done
else
	t_fail "faults: the fspf log compacts in a run" "exit $RC; $(counts_show)" "$(cat "$W/prep.err" "$W/count.err")"
fi
FSPF_TOTAL=$TOTAL FSPF_SECONDS=$SECONDS

# ---------------- a session volume from scone-cas: one volume through every point ----------------

CVOL=$W/cvol
VOL_DIR=$CVOL
CASE_DIR=$W/cas-case # where cas_lib.sh's helpers keep their files
mkdir -p "$CASE_DIR"
declare -A RECS STATES # run name -> its records and state, as first checked
NAMES=
RUN_NO=0
NOT_REACHED=0

write_py() {
	cat >"$W/wl.py" <<'PY'
# fault_workload's write in Python: the same records, the same output.
import errno, os, sys

def record(name, seq):
    m = (1 << 64) - 1
    h = 1469598103934665603
    for c in name.encode():
        h = ((h ^ c) * 1099511628211) & m
    h = ((h ^ seq) * 1099511628211) & m
    out = []
    for _ in range(96):
        h ^= h >> 29
        h = (h * 0xbf58476d1ce4e5b9) & m
        out.append(chr(97 + (h >> 40) % 26))
    return ("FAULTREC-5d1e %s %d %s\n" % (name, seq, "".join(out))).encode()

def say(line):
    print(line, flush=True)

def err(op, seq, e):
    say("ERR %s %d %s" % (op, seq, errno.errorcode.get(e.errno, "other")))
    sys.exit(3)

d, name, count, every = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
try:
    fd = os.open("%s/%s" % (d, name), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
except OSError as e:
    err("open", 0, e)
for seq in range(count):
    rec = record(name, seq)
    try:
        if os.write(fd, rec) != len(rec):
            say("ERR write %d short" % seq)
            sys.exit(3)
    except OSError as e:
        err("write", seq, e)
    if (seq + 1) % every:
        continue
    try:
        with open("%s/%s.state.tmp" % (d, name), "w") as f:
            f.write("%d\n" % seq)
        os.rename("%s/%s.state.tmp" % (d, name), "%s/%s.state" % (d, name))
    except OSError as e:
        err("state", seq, e)
    try:
        os.fsync(fd)
    except OSError as e:
        say("ERR fsync %d %s" % (seq, errno.errorcode.get(e.errno, "other")))
        try:
            os.fsync(fd)
        except OSError as e2:
            err("fsync", seq, e2)
    say("ACK %d" % seq)
try:
    os.close(fd)
except OSError as e:
    err("close", count - 1, e)
say("ACK %d\nDONE" % (count - 1))
PY
}

session_yaml() {
	cat <<YAML
name: faults
version: "0.3"
security:
  attestation:
    mode: none
services:
  - name: w
    image_name: img
    command: $WORKLOAD write $CVOL @@1 $COUNT $EVERY
  - name: c
    image_name: img
    command: $WORKLOAD check $CVOL @@1
  - name: py
    image_name: img
    command: $PY $W/wl.py $CVOL @@1 $COUNT $EVERY
images:
  - name: img
    volumes:
      - name: data
        path: $CVOL
volumes:
  - name: data
YAML
}

# cas_run OUT SPEC SERVICE PROGRAM ARG: scone run of a service of the session (with the injector when SPEC is set).
cas_run() {
	local out=$1 spec=$2 svc=$3
	shift 3
	RC=0
	{
		if [ -n "$spec" ]; then
			timeout "$T_CMD_TIMEOUT" env LD_PRELOAD="$FAULT_SO" SCONE_FAULT="$spec" "$SCONE_BIN" run \
				--config-id "faults/$svc" -- "$@" >"$out.out" 2>"$out.err" </dev/null
		else
			timeout "$T_CMD_TIMEOUT" "$SCONE_BIN" run --config-id "faults/$svc" -- "$@" >"$out.out" 2>"$out.err" </dev/null
		fi
	} 2>/dev/null || RC=$?
}

# new_file: NAME = the file of the next run, remembered for every later check.
new_file() {
	RUN_NO=$((RUN_NO + 1))
	NAME=c$RUN_NO
	NAMES=${NAMES:+$NAMES,}$NAME
}

# cas_point_with SERVICE PROGRAM FAMILY KIND NTH: a fault run writing a new file, then a
# check of every file so far; sets WHY.
cas_point_with() {
	local svc=$1 prog=$2 fam=$3 kind=$4 nth=$5 r=$W/cpt n rc
	new_file
	: >"$INJ"
	spec "$fam" "$nth" "$kind" "$CVOL"
	cas_run "$r" "$SPEC" "$svc" "$prog" "$NAME"
	rc=$RC
	# The calls of a run vary a little as the volume grows: a point not reached is a clean run.
	injected "$fam" "$nth" || { NOT_REACHED=$((NOT_REACHED + 1)) kind=none; }
	out_read "$r.out"
	err_read "$r.err"
	cas_run "$r.chk" "" c "$WORKLOAD" "$NAMES"
	check_read "$r.chk.out"
	judge "$kind" "$rc" "$RC" "$NAME"
	# Every earlier point's file reads as it did when first read (a file no check could read yet, as
	# after a failed point, is remembered from the first check that reads it: one failure, not a cascade).
	for n in ${NAMES//,/ }; do
		[ -n "${RECS[$n]:-}" ] || { RECS[$n]=${CHK_REC[$n]:-} STATES[$n]=${CHK_STATE[$n]:-}; continue; }
		[ -z "$WHY" ] || continue
		if [ "${CHK_REC[$n]:-}" != "${RECS[$n]}" ] || [ "${CHK_STATE[$n]:-}" != "${STATES[$n]}" ]; then
			WHY="the file of an earlier point changed: $n had ${RECS[$n]} records and state ${STATES[$n]}"
			WHY="$WHY, now ${CHK_REC[$n]:-?} and ${CHK_STATE[$n]:-?}"
		fi
	done
}

cas_point() { cas_point_with w "$WORKLOAD" "$@"; }
py_point() { cas_point_with py "$PY" "$@"; }

# cas_count SERVICE PROGRAM COUNTS: a clean counting run (its file is checked later like any other).
cas_count() {
	new_file
	cas_run "$W/count" "path=$CVOL,count=$3" "$1" "$2" "$NAME"
	RECS[$NAME]=$COUNT STATES[$NAME]=$((COUNT - 1))
	out_read "$W/count.out"
	counts_read "$3"
}

cas_setup() {
	cas_start "$W/cas"
	t_track_pid "$CAS_PID"
	owner_new "$W/owner"
	write_py
	session_yaml >"$W/faults.yaml"
	expect_created "$W/faults.yaml"
	# The first start creates the volume.
	new_file
	cas_run "$W/c0" "" w "$WORKLOAD" "$NAME"
	[ "$RC" -eq 0 ] || { cat "$W/c0.out" "$W/c0.err"; return 1; }
	RECS[$NAME]=$COUNT STATES[$NAME]=$((COUNT - 1))
}

SECONDS=0
if ! cas_setup >"$W/cas-setup.log" 2>&1; then
	t_fail "faults: set up scone-cas, a session and its volume" "$(tail -5 "$W/cas-setup.log")"
	t_done
	exit 1
fi
TOTAL=0
cas_count w "$WORKLOAD" "$W/cas.counts"
if [ "$RC" -eq 0 ] && [ "$DONE" -eq 1 ] && [ -n "${COUNTS[pwrite]:-}" ] && [ -n "${COUNTS[fdatasync]:-}" ]; then
	t_ok "faults: under scone run with a CAS session, the runtime's calls go through the injector ($(counts_show))"
else
	t_fail "faults: under scone run with a CAS session, the runtime's calls go through the injector" "exit $RC" \
		"$(cat "$W/cas.counts" "$W/count.err")"
fi
sweep "faults cas" cas_point "$CAS_POINTS"
# The first call of each family is the start's (the mount point's mkdir, the volume's open): always tried.
for fam in $FAMILIES; do group "faults cas start" cas_point "$fam" eintr 1; done
CAS_TOTAL=$TOTAL

# python3: its EINTR handling is its own (PEP 475), so EIO, ENOSPC and crashes.
cas_count py "$PY" "$W/py.counts"
if [ "$RC" -eq 0 ] && [ "$DONE" -eq 1 ] && [ -n "${COUNTS[pwrite]:-}" ]; then
	t_ok "faults: python3 under scone run, its volume's calls go through the injector ($(counts_show))"
else
	t_fail "faults: python3 under scone run, its volume's calls go through the injector" "exit $RC" \
		"$(cat "$W/count.out" "$W/count.err" | tail -5)"
fi
for fam in pwrite fdatasync open; do
	[ -n "${COUNTS[$fam]:-}" ] || continue
	for kind in eio enospc crash; do
		sample "${COUNTS[$fam]}" 1
		# shellcheck disable=SC2086
		group "faults python3" py_point "$fam" "$kind" $SAMPLE
	done
done

kill -TERM "$CAS_PID" 2>/dev/null && wait "$CAS_PID" 2>/dev/null
t_untrack_pid "$CAS_PID"
echo "# fspf volume: $FSPF_TOTAL points in ${FSPF_SECONDS}s; session volume: $CAS_TOTAL points with fault_workload," \
	"$((TOTAL - CAS_TOTAL)) with python3 in ${SECONDS}s ($NOT_REACHED not reached: the calls vary as the volume grows)"
echo "# points per family and fault: $(for k in "${!TRIED[@]}"; do echo "$k=${TRIED[$k]}"; done | sort | tr '\n' ' ')"
echo "# outcomes: $(for k in "${!OUTCOME[@]}"; do echo "$k=${OUTCOME[$k]}"; done | sort | tr '\n' ' ')"
echo "# $SHORT_WRITES points left the start of a record whose write the program saw short"
t_done
