#!/usr/bin/env bash
# bench_las.sh - what attestation with the Local Attestation Service costs
# (docs/performance.md), each figure against a baseline of the same run:
#
# startup_added: a small program (/usr/bin/true) started under the runtime
#   in a las-mode session (report from scone-las, verified by CAS) against
#   the same in a none-mode session without a LAS; starts alternate, timed by
#   a Python driver around fork+exec+wait. Median over BENCH_RUNS (default 5)
#   rounds of BENCH_STARTS (default 200). Goal: at most 2 ms added.
#     RESULT las.startup_added value=<ms> unit=ms baseline=<none-mode p50 ms> ratio=<las p50 / none p50>
#
# reports: reports per second from one scone-las (its default workers, the
#   file-hash cache warm) to 16 concurrent caller processes (connect,
#   request, report, close), against the same callers' requests refused at
#   the header (the connections without measuring or signing). Median of
#   BENCH_RUNS rounds of BENCH_LAS_SECONDS (default 3). Goal: at least 5000/s.
#     RESULT las.reports value=<reports/s> unit=reports/s baseline=<refusals/s> ratio=<reports/refusals>
#
# measure_cold: a caller that maps a 30 MB file executable asks for a
#   report right after the file's change time moved (the LAS's cache
#   misses, the file is hashed again; its pages are in the page cache),
#   against `sha256sum` of the same file. Medians of BENCH_RUNS. Goal:
#   ratio at most 1.2.
#     RESULT las.measure_cold value=<ms> unit=ms baseline=<sha256sum ms> ratio=<las/sha256sum>
#
# Needs root (scone-las reads other processes' mappings). Every process is
# stopped by PID at exit; the temporary directory is removed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${BUILD:-build}/bin
RUNS=${BENCH_RUNS:-5}
STARTS=${BENCH_STARTS:-200}
SECONDS_PER_RUN=${BENCH_LAS_SECONDS:-3}
PY=$(command -v /usr/bin/python3 || command -v python3)
LOAD=${BENCH_BIN_DIR:-${BUILD:-build}/bench}/las_load
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/scone-bench-las.XXXXXX")
cas_pid='' las_pid=''
cleanup() {
	for p in $cas_pid $las_pid; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for f in "$BIN/scone" "$BIN/scone-cas" "$BIN/scone-las" "${BUILD:-build}/lib/libscone.so" "$LOAD"; do
	[ -e "$f" ] || { echo "bench_las: $f missing (make bench)" >&2; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "bench_las: scone-las needs root" >&2; exit 1; }
"$BIN/scone-las" --listen "unix:$work/las.sock" --state-dir "$work/las" 2>"$work/las.log" &
las_pid=$!
port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BIN/scone-cas" --state-dir "$work/cas" --listen "127.0.0.1:$port" 2>"$work/cas.log" &
cas_pid=$!
for _ in $(seq 100); do curl -sfk "https://127.0.0.1:$port/healthz" >/dev/null 2>&1 && [ -S "$work/las.sock" ] && break; sleep 0.1; done
export SCONE_CLI_CONFIG=$work/owner/config.json
"$BIN/scone" cas keygen >/dev/null
fp=$(openssl x509 -in "$work/cas/cas.crt" -outform DER | sha256sum | cut -d' ' -f1)
"$BIN/scone" cas trust "127.0.0.1:$port" --fingerprint "$fp" >/dev/null
platform=$("$BIN/scone-las" --print-identity --state-dir "$work/las")
m=$("$BIN/scone" measure /usr/bin/true)
for mode in las none; do
	cat >"$work/$mode.yaml" <<YAML
name: bench-$mode
version: "0.3"
security:
  attestation:
    mode: $mode
services:
  - name: true
    command: true
    mrenclaves: [$m]
    platforms: [$platform]
    environment:
      TOKEN: \$\$SCONE::token\$\$
secrets:
  - name: token
    kind: ascii
YAML
	"$BIN/scone" session create "$work/$mode.yaml" >/dev/null
done

"$PY" - "$RUNS" "$STARTS" "$port" "$fp" "$ROOT/${BUILD:-build}/lib/libscone.so" "unix:$work/las.sock" <<'PY'
import os, statistics, subprocess, sys, time
runs, starts, port, fp, lib, las = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
base = {"PATH": "/usr/bin:/bin", "LD_PRELOAD": lib, "SCONE_CAS_ADDR": "127.0.0.1:" + port, "SCONE_CAS_FINGERPRINT": fp}
none_env = dict(base, SCONE_CONFIG_ID="bench-none/true", SCONE_LAS_ADDR="unix:/nonexistent/las.sock")
none_env.pop("SCONE_LAS_ADDR")  # no LAS for mode none: the default socket path, absent unless a host LAS runs
las_env = dict(base, SCONE_CONFIG_ID="bench-las/true", SCONE_LAS_ADDR=las)
def once(env):
    t = time.perf_counter()
    r = subprocess.run(["/usr/bin/true"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    d = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit("bench_las: a start failed: %s" % r.stderr.decode(errors="replace").strip())
    return d * 1000
for _ in range(20):
    once(none_env); once(las_env)
added, p_las, p_none = [], [], []
for r in range(runs):
    a, b = [], []
    for _ in range(starts):
        a.append(once(none_env)); b.append(once(las_env))
    pa, pb = statistics.median(a), statistics.median(b)
    p_none.append(pa); p_las.append(pb); added.append(pb - pa)
    print("bench_las: run %d: none p50 %.3f ms, las p50 %.3f ms, added %.3f ms" % (r + 1, pa, pb, pb - pa), file=sys.stderr)
mn, ml, ma = statistics.median(p_none), statistics.median(p_las), statistics.median(added)
print("RESULT las.startup_added value=%.3f unit=ms baseline=%.3f ratio=%.2f" % (ma, mn, ml / mn))
PY

median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
reports=() refusals=()
"$LOAD" rate "$work/las.sock" 16 1 >/dev/null # warm the cache
for ((r = 1; r <= RUNS; r++)); do
	a=$("$LOAD" rate "$work/las.sock" 16 "$SECONDS_PER_RUN" | sed -n 's/^RATE //p')
	b=$("$LOAD" rate "$work/las.sock" 16 "$SECONDS_PER_RUN" refused | sed -n 's/^RATE //p')
	echo "bench_las: run $r: $a reports/s, $b refusals/s" >&2
	reports+=("$a") refusals+=("$b")
done
rv=$(printf '%s\n' "${reports[@]}" | median)
bv=$(printf '%s\n' "${refusals[@]}" | median)
echo "RESULT las.reports value=$rv unit=reports/s baseline=$bv ratio=$(awk -v a="$rv" -v b="$bv" 'BEGIN { printf "%.2f", a / b }')"

head -c $((30 * 1024 * 1024)) /dev/urandom >"$work/big.bin"
cat "$work/big.bin" >/dev/null # in the page cache, for both sides
sums=()
for ((r = 1; r <= RUNS; r++)); do
	t0=$(date +%s%N)
	sha256sum "$work/big.bin" >/dev/null
	sums+=("$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.3f", (b - a) / 1e6 }')")
done
sv=$(printf '%s\n' "${sums[@]}" | median)
read -r _ cv _ wv < <("$LOAD" cold "$work/las.sock" "$work/big.bin" "$RUNS")
echo "bench_las: 30 MB: cold report $cv ms, warm report $wv ms, sha256sum $sv ms" >&2
echo "RESULT las.measure_cold value=$cv unit=ms baseline=$sv ratio=$(awk -v a="$cv" -v b="$sv" 'BEGIN { printf "%.2f", a / b }')"
