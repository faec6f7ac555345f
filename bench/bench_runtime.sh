#!/usr/bin/env bash
# bench_runtime.sh - what the runtime costs a program, against the same
# program run plainly on the same machine in the same run (runs alternate):
#
# startup: the time from exec to the end of a small program (/usr/bin/true)
#   under the runtime with a local CAS (fresh key, TLS handshake with the
#   pinned CAS, configuration fetch, argv/environment set up) against a plain
#   start. Each start is timed by a Python driver around fork+exec+wait (the
#   same overhead on both sides). Median over BENCH_RUNS (default 5) rounds
#   of BENCH_STARTS (default 200) starts each. Goal: at most 5 ms added.
#     RESULT runtime.startup_added value=<ms> unit=ms baseline=<plain p50 ms> ratio=<runtime p50 / plain p50>
#     RESULT runtime.startup_p50 value=<ms> unit=ms baseline=<plain p50 ms> ratio=...
#
# redis: `redis-benchmark -t set,get -n BENCH_REDIS_N (100000) -c 50 -P 1`
#   against Debian's redis-server (127.0.0.1, a free port, no persistence)
#   started under the runtime from a mode-none session with no volume, no
#   injection and no secret (pure interposition cost), against a plain
#   redis-server. value = mean of SET and GET requests/s under the runtime,
#   baseline = plain, ratio = runtime / plain; medians over BENCH_RUNS
#   (default 3) rounds. Goal: ratio at least 0.97.
#     RESULT runtime.redis_passthrough value=<req/s> unit=req/s baseline=<plain req/s> ratio=<runtime/plain>
#
# sqlite: one SQL script run by the sqlite3 CLI on a fresh database: create a
#   table, insert 20,000 rows in 20 transactions of 1000, four SELECTs with
#   aggregation. Timed end to end (fork+exec+wait, so the runtime's start and
#   volume mount are in it) under the runtime with the database on an
#   encrypted session volume, against plain sqlite3 with the database in a
#   plain directory on the same disk. value = ms per run under the runtime,
#   baseline = plain ms per run, ratio = plain time / runtime time (higher is
#   better); medians over BENCH_SQLITE_RUNS rounds (default BENCH_RUNS, else 9:
#   a round takes under half a second, and the plain side's time alone moves
#   by a third from round to round on a small VM). Goal: at least 0.7.
#     RESULT runtime.sqlite_volume value=<ms> unit=ms baseline=<plain ms> ratio=<plain/runtime>
#
# sqlite_wal: the sqlite3 CLI in WAL mode (its -shm index is a shared
#   writable mapping: a window, docs/runtime.md) on a fresh database: 500
#   inserts, each its own transaction (a sync and, under the runtime, a
#   volume commit and a tag report each), then a count. Timed and reported
#   as sqlite, same rounds; no goal (WAL mode on a volume is new, 2026-12-06).
#     RESULT runtime.sqlite_wal value=<ms> unit=ms baseline=<plain ms> ratio=<plain/runtime>
# sqlite_wal_procs: a shell script starts four sqlite3 shells at once on one
#   fresh WAL database, 100 one-insert transactions each, then counts: every
#   process maps the holder's window of the -shm index (the shell holds the
#   volumes), and their commits queue on one volume. No goal (2026-12-06).
#     RESULT runtime.sqlite_wal_procs value=<ms> unit=ms baseline=<plain ms> ratio=<plain/runtime>
#
# BENCH_RUNTIME_PARTS (default "startup redis sqlite sqlite_wal sqlite_wal_procs") picks the parts.
# Every process the script starts is stopped by its PID at exit; the
# temporary directory (under BENCH_DIR, default /var/tmp) is removed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${BUILD:-build}/bin
RUNS=${BENCH_RUNS:-5}
IO_RUNS=${BENCH_RUNS:-3}
SQLITE_RUNS=${BENCH_SQLITE_RUNS:-${BENCH_RUNS:-9}}
PARTS=${BENCH_RUNTIME_PARTS:-startup redis sqlite sqlite_wal sqlite_wal_procs}
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
part() { case " $PARTS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
for f in /usr/bin/redis-server /usr/bin/redis-benchmark /usr/bin/redis-cli /usr/bin/sqlite3; do
	part redis || case $f in *redis*) continue ;; esac
	part sqlite || part sqlite_wal || part sqlite_wal_procs || case $f in *sqlite*) continue ;; esac
	[ -x "$f" ] || { echo "bench_runtime: $f missing (scripts/install-deps.sh)" >&2; exit 1; }
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
# The I/O session: redis with nothing shielded (no volume, no injection, no
# secret: every call only passes through the runtime's wrappers), and sqlite3
# with its database on an encrypted volume.
cat >"$work/io.yaml" <<YAML
name: bench-io
version: "0.3"
security:
  attestation:
    mode: none
services:
  - name: redis
    command: redis-server --bind 127.0.0.1 --port @@1 --save "" --appendonly no --daemonize no --logfile ""
  - name: sql
    image_name: with-vol
    command: sqlite3 @@1 @@2
  - name: procs
    image_name: with-vol
    command: /bin/sh @@1 @@2
images:
  - name: with-vol
    volumes:
      - name: data
        path: $work/vol
volumes:
  - name: data
YAML
"$BIN/scone" session create "$work/io.yaml" >/dev/null
mkdir -p "$work/plain"

part startup && "$PY" - "$RUNS" "$STARTS" "$port" "$fp" "$ROOT/${BUILD:-build}/lib/libscone.so" <<'PY'
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

part redis || part sqlite || part sqlite_wal || part sqlite_wal_procs || exit 0
"$PY" - "$IO_RUNS" "$port" "$fp" "$ROOT/${BUILD:-build}/lib/libscone.so" "$work" "$PARTS" \
	"${BENCH_REDIS_N:-100000}" "$SQLITE_RUNS" <<'PY'
import csv, io, os, signal, socket, statistics, subprocess, sys, time
runs, port, fp, lib, work = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
parts, redis_n, sqlite_runs = sys.argv[6].split(), int(sys.argv[7]), int(sys.argv[8])
plain_env = {"PATH": "/usr/bin:/bin"}
def rt_env(service):
    return dict(plain_env, LD_PRELOAD=lib, SCONE_CONFIG_ID="bench-io/" + service,
                SCONE_CAS_ADDR="127.0.0.1:" + port, SCONE_CAS_FINGERPRINT=fp)
def log(msg):
    print("bench_runtime: " + msg, file=sys.stderr, flush=True)
children = []
def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if p in children:
        children.remove(p)
def on_term(signum, frame):
    sys.exit(128 + signum)
signal.signal(signal.SIGTERM, on_term)

# ---- redis ----------------------------------------------------------------
def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    n = s.getsockname()[1]
    s.close()
    return n
def redis_round(runtime):
    rport = free_port()
    if runtime:  # the session's command: redis-server --port @@1 ...
        argv, env = ["/usr/bin/redis-server", str(rport)], rt_env("redis")
    else:
        argv = ["/usr/bin/redis-server", "--bind", "127.0.0.1", "--port", str(rport), "--save", "",
                "--appendonly", "no", "--daemonize", "no", "--logfile", ""]
        env = plain_env
    errf = open(os.path.join(work, "redis-%s.log" % ("rt" if runtime else "plain")), "w")
    p = subprocess.Popen(argv, env=env, cwd=work, stdout=errf, stderr=errf)
    errf.close()
    children.append(p)
    try:
        for _ in range(200):
            if p.poll() is not None:
                sys.exit("bench_runtime: redis-server%s exited %d (see %s)" %
                         (" under the runtime" if runtime else "", p.returncode, errf.name))
            r = subprocess.run(["/usr/bin/redis-cli", "-p", str(rport), "ping"], env=plain_env,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            if r.stdout.strip() == b"PONG":
                break
            time.sleep(0.05)
        else:
            sys.exit("bench_runtime: redis-server did not answer on port %d" % rport)
        maps = open("/proc/%d/maps" % p.pid).read()
        if runtime != ("libscone.so" in maps):
            sys.exit("bench_runtime: redis-server%s has %slibscone.so mapped" %
                     (" under the runtime" if runtime else "", "no " if runtime else ""))
        r = subprocess.run(["/usr/bin/redis-benchmark", "-h", "127.0.0.1", "-p", str(rport), "-t", "set,get",
                            "-n", str(redis_n), "-c", "50", "-P", "1", "--csv"],
                           env=plain_env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True)
    finally:
        stop(p)
    rps = {}
    for row in csv.reader(io.StringIO(r.stdout.decode())):
        if row and row[0] in ("SET", "GET"):
            rps[row[0]] = float(row[1])
    if len(rps) != 2:
        sys.exit("bench_runtime: cannot parse redis-benchmark output: %r" % r.stdout[:200])
    return (rps["SET"] + rps["GET"]) / 2, rps

# ---- sqlite ---------------------------------------------------------------
def write_sql():
    path = os.path.join(work, "workload.sql")
    with open(path, "w") as f:
        f.write("CREATE TABLE t(id INTEGER PRIMARY KEY, grp INTEGER, qty INTEGER, name TEXT);\n")
        for tx in range(20):
            f.write("BEGIN;\n")
            for i in range(tx * 1000, tx * 1000 + 1000):
                f.write("INSERT INTO t(grp, qty, name) VALUES(%d, %d, 'name-%06d-%s');\n"
                        % (i % 37, (i * 7919) % 1000, i, "x" * (i % 50)))
            f.write("COMMIT;\n")
        f.write("SELECT count(*), sum(qty), max(length(name)) FROM t;\n")
        f.write("SELECT grp, count(*), avg(qty) FROM t GROUP BY grp ORDER BY grp LIMIT 5;\n")
        f.write("SELECT count(DISTINCT qty) FROM t WHERE name LIKE 'name-01%';\n")
        f.write("SELECT grp, sum(qty) AS s FROM t WHERE qty > 500 GROUP BY grp ORDER BY s DESC LIMIT 3;\n")
    return path
def write_sql_wal():
    path = os.path.join(work, "workload-wal.sql")
    with open(path, "w") as f:
        f.write("PRAGMA journal_mode=WAL;\nCREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT);\n")
        for i in range(500):
            f.write("INSERT INTO t(name) VALUES('name-%06d');\n" % i)
        f.write("SELECT count(*) FROM t;\n")
    return path
def write_procs():
    path = os.path.join(work, "procs.sh")
    with open(path, "w") as f:
        f.write('db=$1\n/usr/bin/sqlite3 "$db" "PRAGMA journal_mode=WAL; CREATE TABLE t(w, i);" >/dev/null\n'
                'for w in 1 2 3 4; do\n'
                '  (i=0; while [ $i -lt 100 ]; do i=$((i+1)); echo "INSERT INTO t VALUES($w, $i);"; done |'
                ' /usr/bin/sqlite3 -cmd ".timeout 60000" "$db") &\n'
                'done\nwait\n/usr/bin/sqlite3 "$db" "SELECT count(*), count(DISTINCT w) FROM t;"\n')
    return path
seq = [0]
def sqlite_once(runtime, sql):
    seq[0] += 1
    db = os.path.join(work, "vol" if runtime else "plain", "db-%d.sqlite" % seq[0])
    argv = ["/usr/bin/sqlite3", db, ".read " + sql]
    env = rt_env("sql") if runtime else plain_env
    if sql.endswith(".sh"):
        argv = ["/bin/sh", sql, db]
        env = rt_env("procs") if runtime else plain_env
    t = time.perf_counter()
    r = subprocess.run(argv, env=env, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    d = (time.perf_counter() - t) * 1000
    if r.returncode != 0:
        sys.exit("bench_runtime: sqlite3%s failed (exit %d): %s" % (" under the runtime" if runtime else "",
                 r.returncode, r.stderr.decode(errors="replace").strip()[:300]))
    if not runtime:
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.unlink(db + suffix)  # the runtime's files stay in the volume (the fspf only grows)
    return d, r.stdout

try:
    if "redis" in parts:
        redis_round(False); redis_round(True)  # warm-up
        plain, rt = [], []
        for i in range(runs):
            order = (False, True) if i % 2 == 0 else (True, False)
            got = {}
            for runtime in order:
                got[runtime] = redis_round(runtime)
            plain.append(got[False][0]); rt.append(got[True][0])
            log("redis run %d: plain SET %.0f GET %.0f, runtime SET %.0f GET %.0f req/s, ratio %.3f" %
                (i + 1, got[False][1]["SET"], got[False][1]["GET"], got[True][1]["SET"], got[True][1]["GET"],
                 rt[-1] / plain[-1]))
        mp, mr = statistics.median(plain), statistics.median(rt)
        print("RESULT runtime.redis_passthrough value=%.0f unit=req/s baseline=%.0f ratio=%.3f" % (mr, mp, mr / mp),
              flush=True)
        if mr / mp < 0.97:
            log("goal missed: redis ratio %.3f (goal: at least 0.97)" % (mr / mp))
    for name in ("sqlite", "sqlite_wal", "sqlite_wal_procs"):
        if name not in parts:
            continue
        sql = {"sqlite": write_sql, "sqlite_wal": write_sql_wal, "sqlite_wal_procs": write_procs}[name]()
        want = sqlite_once(False, sql)[1]
        if sqlite_once(True, sql)[1] != want:
            sys.exit("bench_runtime: sqlite3 under the runtime printed different results")
        plain, rt = [], []
        for i in range(sqlite_runs):
            order = (False, True) if i % 2 == 0 else (True, False)
            got = {}
            for runtime in order:
                got[runtime], out = sqlite_once(runtime, sql)
                if out != want:
                    sys.exit("bench_runtime: sqlite3 printed different results")
            plain.append(got[False]); rt.append(got[True])
            log("%s run %d: plain %.1f ms, runtime on an encrypted volume %.1f ms, ratio %.3f" %
                (name, i + 1, got[False], got[True], got[False] / got[True]))
        mp, mr = statistics.median(plain), statistics.median(rt)
        print("RESULT runtime.%s value=%.1f unit=ms baseline=%.1f ratio=%.3f" %
              ("sqlite_volume" if name == "sqlite" else name, mr, mp, mp / mr), flush=True)
        # (the plain side's time moves by a third from round to round here: the ratios of the
        # side-by-side pairs, steadier than the ratio of the medians, for comparison)
        log("%s: median of the rounds' ratios %.3f" % (name, statistics.median(p / r for p, r in zip(plain, rt))))
        if name == "sqlite" and mp / mr < 0.7:
            log("goal missed: sqlite ratio %.3f (goal: at least 0.7)" % (mp / mr))
finally:
    for p in list(children):
        stop(p)
PY
