#!/usr/bin/env bash
# bench_runtime.sh - what the runtime adds to a program's start: the time
# from exec to the end of a small program (/usr/bin/true) under the runtime
# with a local CAS (fresh key, TLS handshake with the pinned CAS, configuration
# fetch, argv/environment set up) against the same program started plainly.
# Each start is timed by a Python driver around fork+exec+wait (the same
# overhead on both sides); runs of the two alternate.
#
#   RESULT runtime.startup_added value=<ms> unit=ms baseline=<plain p50 ms> ratio=<runtime p50 / plain p50>
#   RESULT runtime.startup_p50 value=<ms> unit=ms baseline=<plain p50 ms> ratio=...
#
# value of startup_added is p50(runtime) - p50(plain), the median over
# BENCH_RUNS (default 5) rounds of BENCH_STARTS (default 200) starts each.
# Goal: at most 5 ms added.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${BUILD:-build}/bin
RUNS=${BENCH_RUNS:-5}
STARTS=${BENCH_STARTS:-200}
PY=$(command -v /usr/bin/python3 || command -v python3)
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/scone-bench-runtime.XXXXXX")
cas_pid=
cleanup() {
	[ -z "$cas_pid" ] || kill "$cas_pid" 2>/dev/null || true
	[ -z "$cas_pid" ] || wait "$cas_pid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for f in "$BIN/scone" "$BIN/scone-cas" "${BUILD:-build}/lib/libscone.so"; do
	[ -e "$f" ] || { echo "bench_runtime: $f missing (make)" >&2; exit 1; }
done
port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BIN/scone-cas" --state-dir "$work/cas" --listen "127.0.0.1:$port" 2>"$work/cas.log" &
cas_pid=$!
for _ in $(seq 100); do curl -sfk "https://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
export SCONE_CLI_CONFIG=$work/owner/config.json
"$BIN/scone" cas keygen >/dev/null
fp=$(openssl x509 -in "$work/cas/cas.crt" -outform DER | sha256sum | cut -d' ' -f1)
"$BIN/scone" cas trust "127.0.0.1:$port" --fingerprint "$fp" >/dev/null
cat >"$work/s.yaml" <<'YAML'
name: bench-start
version: "0.3"
security:
  attestation:
    mode: none
services:
  - name: true
    command: true
    environment:
      TOKEN: $$SCONE::token$$
secrets:
  - name: token
    kind: ascii
YAML
"$BIN/scone" session create "$work/s.yaml" >/dev/null

"$PY" - "$RUNS" "$STARTS" "$port" "$fp" "$ROOT/${BUILD:-build}/lib/libscone.so" <<'PY'
import os, statistics, subprocess, sys, time
runs, starts, port, fp, lib = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
plain_env = {"PATH": "/usr/bin:/bin"}
rt_env = dict(plain_env, LD_PRELOAD=lib, SCONE_CONFIG_ID="bench-start/true",
              SCONE_CAS_ADDR="127.0.0.1:" + port, SCONE_CAS_FINGERPRINT=fp)
def once(env):
    t = time.perf_counter()
    r = subprocess.run(["/usr/bin/true"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    d = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit("bench_runtime: a start failed (exit %d)" % r.returncode)
    return d * 1000
for _ in range(20):  # warm-up
    once(plain_env); once(rt_env)
added, p_rt, p_plain = [], [], []
for r in range(runs):
    a, b = [], []
    for _ in range(starts):
        a.append(once(plain_env)); b.append(once(rt_env))
    pa, pb = statistics.median(a), statistics.median(b)
    p_plain.append(pa); p_rt.append(pb); added.append(pb - pa)
    print("bench_runtime: run %d: plain p50 %.3f ms, runtime p50 %.3f ms, added %.3f ms" % (r + 1, pa, pb, pb - pa),
          file=sys.stderr)
m_plain, m_rt, m_added = statistics.median(p_plain), statistics.median(p_rt), statistics.median(added)
print("RESULT runtime.startup_added value=%.3f unit=ms baseline=%.3f ratio=%.2f" % (m_added, m_plain, m_rt / m_plain))
print("RESULT runtime.startup_p50 value=%.3f unit=ms baseline=%.3f ratio=%.2f" % (m_rt, m_plain, m_rt / m_plain))
if m_added > 5:
    print("bench_runtime: goal missed: %.3f ms added (goal: at most 5 ms)" % m_added, file=sys.stderr)
PY
