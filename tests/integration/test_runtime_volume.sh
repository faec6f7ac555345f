#!/usr/bin/env bash
# test_runtime_volume.sh - the runtime's file-system shield: a session volume
# mounted at $CASE_DIR/data is served through the volume library to
# unmodified programs (Debian's python3 and sqlite3): they see plaintext, the
# disk holds volume.fspf and random-named encrypted files, the data is back
# on the next run (CAS's tag matches), and a rollback of the directory to an
# older copy is refused at start. The fd API: readv/writev/preadv/pwritev,
# dup/dup2/fcntl sharing one offset, sendfile and copy_file_range both ways,
# read-only mmap, fdopen and scandir.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
. tests/integration/cas_lib.sh
t_init
cas_require
PY=/usr/bin/python3
SQLITE=/usr/bin/sqlite3
[ -x "$PY" ] || { t_fail "setup: /usr/bin/python3 missing (scripts/install-deps.sh)"; t_done; exit 1; }
# Attestation mode las: python3 and sqlite3 measured (the async check adds its own program).
las_script_start
las_attestation "$PY" "$SQLITE"

session_yaml() {
	cat <<YAML
name: vol
version: "0.3"
security:
  attestation:
    mode: las
services:
  - name: py
$LAS_ATTEST
    image_name: with-data
    command: python3 $CASE_DIR/vol.py @@1
  - name: sql
$LAS_ATTEST
    image_name: with-data
    command: sqlite3 $CASE_DIR/data/db.sqlite @@1
  - name: async
$LAS_ATTEST
    image_name: with-data
    command: $CASE_DIR/async
images:
  - name: with-data
    volumes:
      - name: data
        path: $CASE_DIR/data
volumes:
  - name: data
YAML
}

write_py() {
	cat >"$CASE_DIR/vol.py" <<'PY'
import errno, os, sys
d = os.path.dirname(os.path.abspath(__file__)) + "/data"
marker = "SCONE-SECRET-MARKER-" + "7f3a9"
def err(f):  # "ok", or the errno name of the OSError f raised
    try:
        f()
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]
def before_after(path, ready, go):  # map path: BEFORE stored and synced, ready told; after go, AFTER and fsync
    import mmap
    fd = os.open(path, os.O_RDWR)
    m = mmap.mmap(fd, 8192, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    m[0:6] = b"BEFORE"
    m.flush()
    os.write(ready, b"x")
    os.read(go, 1)
    m[100:105] = b"AFTER"
    os.fsync(fd)
def new_wal(db, schema):  # a fresh SQLite database in WAL mode with one table, closed
    import sqlite3
    c = sqlite3.connect(db)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute(schema)
    c.commit()
    c.close()
if sys.argv[1] == "write":
    with open(d + "/notes.txt", "w") as f:
        f.write(marker + " line one\n")
    with open(d + "/notes.txt", "a") as f:
        f.write("line two\n")
    print("READ=" + repr(open(d + "/notes.txt").read()))
    open(d + "/other.txt", "w").write("to be deleted " + marker)
    os.mkdir(d + "/sub")
    open(d + "/sub/inner.txt", "wb").write(b"x" * 10000)
    print("SIZE=%d" % os.stat(d + "/sub/inner.txt").st_size)
    print("LIST=" + ",".join(sorted(os.listdir(d))))
    os.rename(d + "/notes.txt", d + "/renamed.txt")
    os.remove(d + "/other.txt")
    print("EXISTS=%s,%s" % (os.path.exists(d + "/other.txt"), os.path.exists(d + "/renamed.txt")))
    print("LIST2=" + ",".join(sorted(os.listdir(d))))
elif sys.argv[1] == "nothing":  # start, mount, exit
    pass
elif sys.argv[1] == "read":
    print("READ=" + repr(open(d + "/renamed.txt").read()))
    print("LIST=" + ",".join(sorted(os.listdir(d))))
    with open(d + "/renamed.txt", "a") as f:
        f.write("line three\n")
    fd = os.open(d + "/sub/inner.txt", os.O_RDWR)
    os.pwrite(fd, b"yy", 5000)
    print("PREAD=" + repr(os.pread(fd, 4, 4999)))
    os.fsync(fd)
    os.close(fd)
elif sys.argv[1] == "edge":
    import ctypes, errno, mmap
    out = []
    out.append(err(lambda: os.open(d + "/missing", os.O_RDONLY)))
    out.append(err(lambda: os.open(d + "/renamed.txt", os.O_WRONLY | os.O_CREAT | os.O_EXCL)))
    out.append(err(lambda: os.open(d + "/renamed.txt", os.O_RDONLY | os.O_DIRECT)))
    out.append(err(lambda: os.rename(d + "/renamed.txt", "/tmp/x")))
    out.append(err(lambda: os.rmdir(d + "/sub")))
    fd = os.open(d + "/renamed.txt", os.O_RDONLY)
    # (a shared writable mapping of a read-only fd: EACCES, as the kernel's)
    out.append(err(lambda: mmap.mmap(fd, 8, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)))
    m = mmap.mmap(fd, 0, mmap.MAP_PRIVATE, mmap.PROT_READ)
    print("MMAP_PRIVATE=" + repr(m[:11]))
    m.close()
    out.append(err(lambda: os.splice(fd, os.open("/dev/null", os.O_WRONLY), 4)))
    out.append(err(lambda: os.chdir(d + "/sub")))
    os.close(fd)
    print("ERRS=" + ",".join(out))
    print("SUBCWD=%s,%d" % (os.getcwd() == d + "/sub", len(open("inner.txt", "rb").read())))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    params = ctypes.create_string_buffer(120)
    r = libc.syscall(425, 8, params)  # io_uring_setup
    print("IO_URING=%d,%s" % (r, errno.errorcode.get(ctypes.get_errno(), "?")))
    r = libc.syscall(206, 8, ctypes.byref(ctypes.c_ulong(0)))  # io_setup
    print("IO_SETUP=%d,%s" % (r, errno.errorcode.get(ctypes.get_errno(), "?")))
    # fallocate reserves by extending with zeros; KEEP_SIZE changes nothing; other modes: EOPNOTSUPP.
    fd = os.open(d + "/falloc.bin", os.O_RDWR | os.O_CREAT, 0o600)
    os.write(fd, b"head")
    os.posix_fallocate(fd, 0, 10000)
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
    libc.fallocate64.argtypes = libc.fallocate.argtypes
    k = libc.fallocate(fd, 1, 0, 50000)  # FALLOC_FL_KEEP_SIZE
    p = libc.fallocate64(fd, 3, 0, 10)  # PUNCH_HOLE | KEEP_SIZE
    pe = errno.errorcode.get(ctypes.get_errno(), "?")
    g = libc.fallocate(fd, 0, 20000, 4096)
    ro = os.open(d + "/falloc.bin", os.O_RDONLY)
    print("FALLOCATE=%d,%d,%d,%s,%d,%r,%s" % (os.fstat(fd).st_size, k, p, pe, g, os.pread(fd, 8, 9998),
                                          err(lambda: os.posix_fallocate(ro, 0, 1))))
    os.close(ro)
    os.close(fd)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.fputs.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    libc.fgets.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    f = libc.fopen((d + "/stdio.txt").encode(), b"w")
    libc.fputs(b"through stdio\n", f)
    libc.fclose(f)
    f = libc.fopen((d + "/stdio.txt").encode(), b"r")
    buf = ctypes.create_string_buffer(64)
    libc.fgets(buf, 64, f)
    libc.fclose(f)
    print("STDIO=" + repr(buf.value))
    print("PLAIN=" + repr(open(d + "/stdio.txt").read()))
    libc.creat.argtypes = [ctypes.c_char_p, ctypes.c_int]
    fd = libc.creat((d + "/creat.txt").encode(), 0o600)
    os.write(fd, b"creat")
    os.close(fd)
    print("CREAT=" + open(d + "/creat.txt").read())
elif sys.argv[1] == "fdapi":
    import mmap
    fd = os.open(d + "/vec.txt", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    print("WRITEV=%d" % os.writev(fd, [b"alpha-", b"", b"beta-", b"gamma\n"]))
    os.lseek(fd, 0, os.SEEK_SET)
    a, b = bytearray(6), bytearray(20)
    print("READV=%d,%r,%r" % (os.readv(fd, [a, b]), bytes(a), bytes(b[:11])))
    os.pwritev(fd, [b"BE", b"TA"], 6)
    print("PREADV=%d,%r" % (os.preadv(fd, [a], 6), bytes(a)))
    # dup shares the offset and flags; closing one copy keeps the other working.
    os.lseek(fd, 0, os.SEEK_SET)
    fd2 = os.dup(fd)
    os.read(fd, 6)
    print("DUP=%r" % os.read(fd2, 4))
    fd3 = os.open("/dev/null", os.O_RDONLY)
    os.dup2(fd, fd3)
    os.close(fd)
    os.close(fd2)
    os.lseek(fd3, 0, os.SEEK_SET)
    print("DUP2=%r" % os.read(fd3, 5))
    os.set_inheritable(fd3, True)
    print("INHERIT=%s" % os.get_inheritable(fd3))
    os.set_blocking(fd3, False)
    print("BLOCKING=%s" % os.get_blocking(fd3))
    os.close(fd3)
    # sendfile and copy_file_range from a shielded file (to the host) and into one.
    src = os.open(d + "/vec.txt", os.O_RDONLY)
    r, w = os.pipe()
    print("SENDFILE=%d" % os.sendfile(w, src, 0, 100))
    print("PIPE=%r" % os.read(r, 100))
    dst = os.open(d + "/copy.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    print("CFR=%d" % os.copy_file_range(src, dst, 100, 0, 0))
    os.close(dst)
    print("COPY=%r" % open(d + "/copy.txt", "rb").read())
    host = os.open(os.path.dirname(d) + "/host.txt", os.O_RDONLY)
    dst = os.open(d + "/in.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    print("SENDIN=%d" % os.sendfile(dst, host, None, 1000))
    os.close(dst)
    os.close(host)
    print("IN=%r" % open(d + "/in.txt", "rb").read())
    m = mmap.mmap(src, 0, access=mmap.ACCESS_READ)
    print("MMAP=%r,%d" % (m[6:10], len(m)))
    m.close()
    os.close(src)
    with os.fdopen(os.open(d + "/fdopen.txt", os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
        f.write("fdopen SCONE-SECRET-MARKER-" + "7f3a9\n")
    print("FDOPEN=%r" % open(d + "/fdopen.txt").read())
    print("SCANDIR=" + ",".join(sorted(e.name for e in os.scandir(d))))
    # shutil.copy2 copies data, mode, times and (where kept) xattrs into the volume.
    import shutil
    src = os.path.dirname(d) + "/host.txt"
    os.utime(src, (1000000000, 1234567890))
    shutil.copy2(src, d + "/copied.txt")
    st = os.stat(d + "/copied.txt")
    print("COPY2=%d,%o,%r" % (st.st_mtime, st.st_mode & 0o777, open(d + "/copied.txt", "rb").read()[:4]))
elif sys.argv[1] == "fork":
    # A forked child keeps working on the parent's fds (shared offsets, as on
    # a kernel file) and on new files; each side sees the other's commits.
    ap = os.open(d + "/log.txt", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    sh = os.open(d + "/shared.txt", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(ap, b"parent-1\n")
    os.write(sh, b"AAA")
    rounds = []
    for i in range(3):
        pid = os.fork()
        if pid == 0:
            os.write(ap, b"child-%d\n" % i)
            os.write(sh, b"B%d" % i)
            with open(d + "/child-%d.txt" % i, "w") as f:
                f.write("from child %d " % i + "SCONE-SECRET-MARKER-" + "7f3a9\n")
            os._exit(0)
        os.waitpid(pid, 0)
        rounds.append(open(d + "/child-%d.txt" % i).read().split()[2])
        os.write(ap, b"parent-%d\n" % (i + 2))
    os.write(sh, b"CCC")
    os.lseek(sh, 0, os.SEEK_SET)
    print("SHARED=%r" % os.read(sh, 100))
    os.close(sh)
    os.close(ap)
    print("CHILDREN=" + ",".join(rounds))
    print("LOG=%r" % open(d + "/log.txt").read())
    # Two processes writing at once, each its own file, 50 writes each.
    pid = os.fork()
    who = "c" if pid == 0 else "p"
    with open(d + "/both-%s.txt" % who, "w") as f:
        for i in range(50):
            f.write("%s%d\n" % (who, i))
            f.flush()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    print("BOTH=%d,%d" % (len(open(d + "/both-p.txt").read().split()), len(open(d + "/both-c.txt").read().split())))
elif sys.argv[1] == "stress":
    # Four children at once, each appending to a shared log and writing its own file.
    kids = []
    for k in range(4):
        pid = os.fork()
        if pid == 0:
            log = os.open(d + "/stress.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with open(d + "/own-%d.txt" % k, "w") as f:
                for i in range(150):
                    f.write("k%d line %d\n" % (k, i))
                    f.flush()
                    os.write(log, b"k%d %d\n" % (k, i))
            os.close(log)
            os._exit(0)
        kids.append(pid)
    print("EXITS=" + ",".join(str(os.waitpid(p, 0)[1]) for p in kids))
elif sys.argv[1] == "stresscheck":
    lines = open(d + "/stress.log").read().split("\n")[:-1]
    own = [len(open(d + "/own-%d.txt" % k).read().split("\n")) - 1 for k in range(4)]
    print("STRESS=%d,%d,%s" % (len(lines), len(set(lines)), ",".join(map(str, own))))
elif sys.argv[1] == "daemon":
    # daemon(3): fork, the parent leaves at once through _exit; the child goes on with the volume.
    with open(d + "/before.txt", "w") as f:
        f.write("written before daemonizing\n")
    if os.fork() != 0:
        os._exit(0)
    os.setsid()
    out = open(d + "/daemon.txt", "w")
    for i in range(200):
        out.write("daemon line %d\n" % i)
        out.flush()
    out.close()
    kid = os.fork()  # the daemon forks workers of its own
    if kid == 0:
        open(d + "/worker.txt", "w").write("from the worker\n")
        os._exit(0)
    os.waitpid(kid, 0)
    open(os.environ.get("DONE", d + "/../done"), "w").write("done")
elif sys.argv[1] == "daemoncheck":
    print("DAEMON=%s,%d,%s" % (open(d + "/before.txt").read().strip(), len(open(d + "/daemon.txt").read().split("\n")) - 1,
                               open(d + "/worker.txt").read().strip()))
elif sys.argv[1] == "killserver":
    # The process serving the volume is killed while its children sleep between synced writes:
    # the program has crashed. What was synced before stays; the children end.
    import signal, time
    open(d + "/ks-parent.txt", "w").write("committed before the fork\n")
    r, w = os.pipe()
    for k in range(3):
        if os.fork() == 0:
            os.close(r)
            fd = os.open(d + "/ks-%d.txt" % k, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.write(fd, b"k%d line 0\n" % k)
            os.fsync(fd)
            os.write(w, b"s")
            time.sleep(0.5)
            for i in range(1, 100):
                os.write(fd, b"k%d line %d\n" % (k, i))
                if i == 50:
                    os.fsync(fd)
            os.fsync(fd)
            os.close(fd)
            open(os.path.dirname(d) + "/ks-done-%d" % k, "w").close()  # a host file: the test waits for it
            os._exit(0)
    os.close(w)
    synced = b""
    while len(synced) < 3:
        synced += os.read(r, 3)
    os.kill(os.getpid(), signal.SIGKILL)
elif sys.argv[1] == "lostwb":
    # The server is killed while it holds a write it acknowledged and did not commit:
    # the program has crashed. X wrote without syncing and waits on a pipe; Y has the
    # file open and waits on a pipe (PostgreSQL's walwriter waiting on a lock a dead
    # backend held); Z, after the kill, fsyncs. Z's fsync finds the server gone and
    # ends them all, itself too, before anyone can acknowledge anything past the loss.
    import errno, signal, time
    out = os.path.dirname(d) + "/lostwb"  # host files: the test reads them
    with open(d + "/wal.bin", "wb") as f:
        f.write(b"." * 200)
        f.flush()
        os.fsync(f.fileno())
    parent = os.getpid()
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    hold_r, hold_w = os.pipe()  # nobody writes: X and Y block on it for ever
    def report(name, text):
        open(out + "." + name + ".tmp", "w").write(text)
        os.rename(out + "." + name + ".tmp", out + "." + name)
    if os.fork() == 0:  # Y: has the file open, writes nothing, blocks
        fd = os.open(d + "/wal.bin", os.O_RDWR)
        report("ypid", str(os.getpid()))
        os.write(w2, b"y")
        os.read(hold_r, 1)
        report("y", "woke up")
        os._exit(0)
    if os.fork() == 0:  # Z: fsyncs after the kill
        report("zpid", str(os.getpid()))
        while os.getppid() == parent:
            time.sleep(0.01)
        fd = os.open(d + "/wal.bin", os.O_RDWR)
        try:
            os.fsync(fd)
            report("z", "ok")
        except OSError as e:
            report("z", errno.errorcode[e.errno])
        os._exit(0)
    if os.fork() == 0:  # X: writes, never syncs, blocks
        fd = os.open(d + "/wal.bin", os.O_RDWR)
        os.pwrite(fd, b"LOSTBYTES", 100)
        report("xpid", str(os.getpid()))
        os.write(w1, b"x")
        os.read(hold_r, 1)
        report("x", "woke up")
        os._exit(0)
    os.read(r1, 1)
    os.read(r2, 1)
    os.kill(os.getpid(), signal.SIGKILL)
elif sys.argv[1] == "osync":
    # Writes through O_DSYNC and O_SYNC descriptions are durable when they return;
    # a plain write is not (until a sync point). Then the process is killed.
    import signal
    for name, flag in (("dsync", os.O_DSYNC), ("sync", os.O_SYNC), ("plain", 0)):
        fd = os.open(d + "/%s.txt" % name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | flag, 0o600)
        os.write(fd, b"durable " + name.encode())
    os.kill(os.getpid(), signal.SIGKILL)
elif sys.argv[1] == "osynccheck":
    print("OSYNC=%s" % ",".join(repr(open(d + "/%s.txt" % n).read()) if os.path.exists(d + "/%s.txt" % n)
                                else "missing" for n in ("dsync", "sync", "plain")))
elif sys.argv[1] == "lostcheck":
    fd = os.open(d + "/wal.bin", os.O_RDWR)
    print("LOSTWB=%r,%d" % (os.pread(fd, 9, 100), os.fstat(fd).st_size))
elif sys.argv[1] == "killcheck":
    print("KILLED=%s,%s" % (open(d + "/ks-parent.txt").read().strip(),
                            ",".join(str(len(open(d + "/ks-%d.txt" % k).read().split("\n")) - 1) for k in range(3))))
elif sys.argv[1] == "childkill":
    # A child killed by a signal in the middle of writing: what its calls returned is in the volume.
    import signal
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        fd = os.open(d + "/victim.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        i = 0
        while True:
            os.write(fd, b"victim line %d\n" % i)
            os.write(w, b"%d\n" % i)
            i += 1
    os.close(w)
    acked = b""
    while acked.count(b"\n") < 300:
        acked += os.read(r, 4096)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    last = int(acked.split(b"\n")[-2])
    lines = open(d + "/victim.txt").read().split("\n")
    print("VICTIM=%s" % ("victim line %d" % last in lines))
elif sys.argv[1] == "cache":
    # Processes the volume is served to read through the shared read cache: what they read is
    # always what the server holds now (writes, appends, truncation, renames by any process).
    import subprocess
    def ask(w, r, msg):  # tell the other side, wait for its answer
        os.write(w, msg + b"\n")
        return os.read(r, 65536).decode()
    def child(fn):
        pr, cw = os.pipe()
        cr, pw = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(pr), os.close(pw)
            try:
                fn(cr, cw)
            except BaseException as e:
                print("child: %r" % e, file=sys.stderr, flush=True)
            os._exit(0)
        os.close(cr), os.close(cw)
        return pid, pr, pw
    def read_all(path):
        fd = os.open(path, os.O_RDONLY)
        b = b""
        while True:
            k = os.read(fd, 3000)
            if not k:
                break
            b += k
        size = os.fstat(fd).st_size
        os.close(fd)
        return b, size
    def reader(r, w):
        while True:
            cmd = os.read(r, 4096).decode().strip()
            if cmd == "quit":
                return
            if cmd.startswith("hold "):  # open now, read when told
                held = os.open(d + "/" + cmd[5:], os.O_RDONLY)
                os.write(w, b"held")
                continue
            if cmd == "readheld":
                b = os.pread(held, 20000, 0)
                os.close(held)
            else:
                b, size = read_all(d + "/" + cmd)
                assert size == len(b), (size, len(b))
            os.write(w, b"%d:%s" % (len(b), __import__("hashlib").sha256(b).hexdigest().encode()))
    import hashlib
    def want(b):
        return "%d:%s" % (len(b), hashlib.sha256(b).hexdigest())
    body = bytes(range(256)) * 20  # 5120 bytes: one block and a part
    open(d + "/c.bin", "wb").write(body)
    pid, r, w = child(reader)
    bad = []
    def check(name, path, expect):
        got = ask(w, r, path.encode())
        if got != want(expect):
            bad.append(name)
    check("first read", "c.bin", body)
    check("second read (cached)", "c.bin", body)
    with open(d + "/c.bin", "r+b") as f:  # the server overwrites across the block boundary
        f.seek(4090)
        f.write(b"X" * 20)
    body = body[:4090] + b"X" * 20 + body[4110:]
    check("after the server's write", "c.bin", body)
    with open(d + "/c.bin", "ab") as f:  # and appends
        f.write(b"tail" * 1000)
    body += b"tail" * 1000
    check("after an append", "c.bin", body)
    os.truncate(d + "/c.bin", 10)  # shrinks, then extends with zeros
    with open(d + "/c.bin", "r+b") as f:
        f.truncate(8192)
    body = body[:10] + b"\0" * (8192 - 10)
    check("after truncate and extend", "c.bin", body)
    # Another client writes; the reader sees it at once.
    def writer(r2, w2):
        os.read(r2, 100)
        with open(d + "/c.bin", "r+b") as f:
            f.seek(100)
            f.write(b"from another child")
        os.write(w2, b"done")
    pid2, r2, w2 = child(writer)
    ask(w2, r2, b"go")
    os.waitpid(pid2, 0)
    body = body[:100] + b"from another child" + body[118:]
    check("after another client's write", "c.bin", body)
    # A file opened for reading keeps its data when another is renamed over its name.
    old = b"old content " * 300
    open(d + "/g.bin", "wb").write(old)
    check("g read", "g.bin", old)
    ask(w, r, b"hold g.bin")
    open(d + "/h.bin", "wb").write(b"new content " * 10)
    os.rename(d + "/h.bin", d + "/g.bin")
    if ask(w, r, b"readheld") != want(old):
        bad.append("a held file renamed over")
    check("g after the rename", "g.bin", b"new content " * 10)
    os.remove(d + "/g.bin")
    open(d + "/g.bin", "wb").write(b"third")
    check("g removed and made again", "g.bin", b"third")
    # A program exec'd beside the server reads what the server wrote last.
    open(d + "/c.bin", "wb").write(b"for the exec'd program")
    out = subprocess.run([sys.executable or "/usr/bin/python3", "-c", "print(open(%r).read())" % (d + "/c.bin")],
                         capture_output=True, text=True).stdout.strip()
    if out != "for the exec'd program":
        bad.append("exec'd program: %r" % out)
    os.write(w, b"quit\n")
    os.waitpid(pid, 0)
    print("CACHE=" + (",".join(bad) or "ok"))
elif sys.argv[1] == "inherit":
    import subprocess
    # An exec'd program takes over an fd by the file it was, not by its path: a file renamed
    # over the old one since is not it.
    with open(d + "/old.txt", "w") as f:
        f.write("the old file")
    with open(d + "/new.txt", "w") as f:
        f.write("the new file")
    fd = os.open(d + "/old.txt", os.O_RDONLY)
    os.rename(d + "/new.txt", d + "/old.txt")
    r = subprocess.run(["/usr/bin/python3", "-c", "import os, sys; print(os.pread(int(sys.argv[1]), 100, 0).decode())",
                        str(fd)], pass_fds=[fd], capture_output=True, text=True)
    print("EXECD=" + r.stdout.strip() + r.stderr.strip()[-200:])
    os.close(fd)
    # A spawn's file action dup2'ing one volume fd onto another (stdout): the child writes to
    # the one the action put there.
    a = os.open(d + "/spawn-a.txt", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    b = os.open(d + "/spawn-b.txt", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    saved = os.dup(1)
    os.dup2(a, 1)
    pid = os.posix_spawn("/bin/sh", ["/bin/sh", "-c", "echo meant-for-b"], os.environ,
                         file_actions=[(os.POSIX_SPAWN_DUP2, b, 1)])
    st = os.waitpid(pid, 0)[1]
    os.dup2(saved, 1)
    os.close(saved)
    print("SPAWN=%d,%r,%r" % (st, os.pread(a, 100, 0), os.pread(b, 100, 0)))
    # A spawn's file action opening a volume path: the child's stdout is the volume file.
    pid = os.posix_spawn("/bin/sh", ["/bin/sh", "-c", "echo opened-by-the-action"], os.environ,
                         file_actions=[(os.POSIX_SPAWN_OPEN, 1, d + "/spawn-open.txt",
                                        os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)])
    st = os.waitpid(pid, 0)[1]
    print("SPAWN_OPEN=%d,%r" % (st, open(d + "/spawn-open.txt", "rb").read()))
    # subprocess (a vfork child dup2'ing the volume fd onto 1) and a program writing through stdio.
    with open(d + "/echo.txt", "wb") as f:
        r = subprocess.run(["/bin/echo", "through-stdio"], stdout=f)
    print("STDIO=%d,%r" % (r.returncode, open(d + "/echo.txt", "rb").read()))

elif sys.argv[1] == "placeholders":
    # Placeholders are reused from one open to the next (fd_volume.c): each open reads its own
    # file from offset 0 with its own flags, and a placeholder another process may still hold (a
    # fork's child, a spawned program) is never given to another file.
    import fcntl, subprocess
    bad = []
    names = [d + "/ph%d.txt" % i for i in range(100)]
    for i, p in enumerate(names):
        with open(p, "wb") as f:
            f.write(b"file %03d " % i + b"." * 171)  # (a read at another offset differs)
    def want(i):
        return b"file %03d " % i
    def read_new(i, flags=os.O_RDONLY):
        fd = os.open(names[i], flags)
        got = os.read(fd, 9)
        nb = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK
        os.close(fd)
        return got == want(i) and not nb
    for rnd in range(3):
        fds = [os.open(p, os.O_RDONLY) for p in names]  # (more at once than the pool keeps)
        bad += ["pread %d" % i for i, fd in enumerate(fds) if os.pread(fd, 9, 0) != want(i)]
        inos = set(os.fstat(fd).st_ino for fd in fds)
        if len(inos) != len(fds):
            bad.append("inodes %d" % len(inos))
        [os.close(fd) for fd in fds]
        for i in range(len(names)):
            fd = os.open(names[i], os.O_RDONLY)
            if i % 3 == 1:
                fcntl.fcntl(fd, fcntl.F_SETFL, os.O_NONBLOCK)
            elif i % 3 == 2:
                os.lseek(fd, 50, os.SEEK_SET)
            elif os.pread(fd, 9, 0) != want(i):
                bad.append("pooled pread %d" % i)
            os.close(fd)
            if not read_new((i * 7) % len(names)):
                bad.append("after %d: offset or flags carried over" % i)
    # A fork's child moves the offset of a description it shares with the parent.
    x = os.open(names[5], os.O_RDONLY)
    pid = os.fork()
    if pid == 0:
        os.read(x, 9)
        ok = all(read_new(i) for i in range(10, 40))
        os._exit(0 if ok else 1)
    ok = all(read_new(i) for i in range(40, 70))
    st = os.waitpid(pid, 0)[1]
    os.close(x)
    if not ok or st != 0 or not read_new(6):
        bad.append("fork %d %s" % (st, ok))
    # A spawned program reads from an inherited fd (moving its offset); the caller closed its own.
    x = os.open(names[7], os.O_RDONLY)
    r = subprocess.run(["/usr/bin/python3", "-c", "import os, sys; print(os.read(int(sys.argv[1]), 9).decode())",
                        str(x)], pass_fds=[x], capture_output=True, text=True)
    os.close(x)
    if r.stdout.strip() != "file 007" or not read_new(8):
        bad.append("spawn %r" % r.stdout)
    print("PLACEHOLDERS=" + (",".join(bad[:5]) or "ok"))
elif sys.argv[1] == "pinleak":
    # Children open files from the cache alone (pinned) and end without closing them, through
    # _exit and through an exec; then the files are removed: the server holds no file of the
    # volume open (a 32-hex host file) for them.
    for i in range(12):
        path = d + "/leak%d.txt" % i
        open(path, "wb").write(b"pinned %d " % i * 50)
        pid = os.fork()
        if pid == 0:
            for _ in range(2):
                open(path, "rb").read()  # (the server caches it whole)
            fd = os.open(path, os.O_RDONLY)  # from the cache alone: pinned
            assert os.pread(fd, 6, 0) == b"pinned"
            if i % 2:
                os.execv("/bin/true", ["/bin/true"])
            os._exit(0)
        os.waitpid(pid, 0)
        os.remove(path)
    open(d + "/after.txt", "wb").write(b"x")  # (a change: the server lets go of what no pin holds)
    os.remove(d + "/after.txt")
    links = []
    for f in os.listdir("/proc/self/fd"):
        try:
            links.append(os.readlink("/proc/self/fd/" + f))
        except OSError:
            pass  # (the listing's own fd)
    import re
    kept = [l for l in links if re.fullmatch(re.escape(d) + "/[0-9a-f]{32}( \\(deleted\\))?", l)]
    print("KEPT=%d" % len(kept))
elif sys.argv[1] == "lazygone":
    # A child opens small files the cache holds whole (no request to the server); another
    # process changes their mode (which forgets their status in the cache, so that the
    # child's next reads miss), then renames one away, renames a file over another and
    # removes a third: the child's descriptions read their own files on, as the kernel's.
    # A fourth ("forked") is held only by a grandchild the child forked and closed it after.
    names = {"away": b"renamed away " * 100, "over": b"renamed over " * 100, "gone": b"removed " * 100,
             "forked": b"held by a grandchild " * 50}
    for n, body in names.items():
        open(d + "/" + n + ".txt", "wb").write(body)
    pr, cw = os.pipe()
    cr, pw = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(pr), os.close(pw)
        for n in names:  # read once (the server caches them whole), then open from the cache
            open(d + "/" + n + ".txt", "rb").read()
        fds = {n: os.open(d + "/" + n + ".txt", os.O_RDONLY) for n in names}
        gr, gw = os.pipe()
        rr, rw = os.pipe()
        gpid = os.fork()
        if gpid == 0:  # the grandchild: its inherited description of forked.txt, read when told
            os.read(gr, 10)
            try:
                b = os.pread(fds["forked"], 100000, 0)
                os.write(rw, b"ok" if b == names["forked"] else b"%d bytes" % len(b))
            except OSError as e:
                os.write(rw, e.strerror.encode())
            os._exit(0)
        os.close(fds.pop("forked"))  # the child's own is closed: the grandchild's pin holds it
        os.write(cw, b"held")
        os.read(cr, 10)
        os.write(gw, b"go")
        res = {"forked": os.read(rr, 100).decode()}
        os.waitpid(gpid, 0)
        for rnd in range(2):  # twice round: a file read second must not answer another's bytes
            for n, fd in fds.items():
                try:
                    b = os.pread(fd, 100000, 0)
                    mode = os.fstat(fd).st_mode & 0o777
                    ok = b == names[n] and mode == 0o640
                    res[n] = res.get(n, "ok") if ok else "%d bytes, mode %o" % (len(b), mode)
                except OSError as e:
                    res[n] = e.strerror
        for fd in fds.values():
            os.close(fd)
        os.write(cw, (",".join("%s=%s" % kv for kv in res.items())).encode())
        os._exit(0)
    os.close(cr), os.close(cw)
    assert os.read(pr, 10) == b"held"
    for n in names:
        os.chmod(d + "/" + n + ".txt", 0o640)
    os.rename(d + "/away.txt", d + "/moved.txt")
    open(d + "/new.txt", "wb").write(b"the new file")
    os.rename(d + "/new.txt", d + "/over.txt")
    os.remove(d + "/gone.txt")
    os.remove(d + "/forked.txt")
    os.write(pw, b"go")
    print("LAZY=" + os.read(pr, 1000).decode(), flush=True)
    os.waitpid(pid, 0)
    print("OVER=" + open(d + "/over.txt").read())
elif sys.argv[1] == "cachetakeover":
    # A child holds a file open for writing; the parent renames another file over its name and
    # exits; the child takes the volume over. Its description is of the old file: its write must
    # not land in the new one behind the back of a reader's cache (the kernel writes the old file).
    import time
    host = os.path.dirname(d)
    open(d + "/k.bin", "wb").write(b"K" * 5000)
    open(d + "/b.bin", "wb").write(b"B" * 5000)
    r1, w1 = os.pipe()
    if os.fork() == 0:  # the writer, K
        fd = os.open(d + "/k.bin", os.O_RDWR)
        os.write(w1, b"k")
        while os.path.exists(host + "/parent-alive"):
            time.sleep(0.05)
        time.sleep(0.3)
        try:
            res = "wrote %d" % os.pwrite(fd, b"Z" * 100, 0)
        except OSError as e:
            res = "error %d" % e.errno
        open(host + "/k-result", "w").write(res)
        time.sleep(1.0)  # the reader reads meanwhile, through the new server
        os._exit(0)
    r2, w2 = os.pipe()
    if os.fork() == 0:  # the reader, R: reads k.bin before the takeover (cached) and after K wrote
        def whole():
            with open(d + "/k.bin", "rb") as f:
                return f.read()
        whole()
        os.write(w2, b"r")
        while not os.path.exists(host + "/k-result"):
            time.sleep(0.05)
        b = whole()
        open(host + "/r-result", "w").write("%d:%s" % (len(b), b[:4].decode()))
        os._exit(0)
    os.read(r1, 1), os.read(r2, 1)
    os.rename(d + "/b.bin", d + "/k.bin")
    # A program exec'd beside the server must not pass the shared state on to what it execs.
    import subprocess
    code = ("import os\n"
            "for n in os.listdir('/proc/self/fd'):\n"
            "    try:\n"
            "        if 'scone-volumes' in os.readlink('/proc/self/fd/' + n):\n"
            "            flags = int(open('/proc/self/fdinfo/' + n).read().split('flags:')[1].split()[0], 8)\n"
            "            print('CLOEXEC=%d' % bool(flags & 0o2000000))\n"
            "    except OSError:\n"
            "        pass\n")
    out = subprocess.run([sys.executable or "/usr/bin/python3", "-c", code], capture_output=True, text=True).stdout
    print(out.strip() or "CLOEXEC=none", flush=True)
    os.remove(host + "/parent-alive")
    os._exit(0)
elif sys.argv[1] == "shmap":
    # Shared writable mappings (shield_map.c): every mapping of a file, reads and
    # writes through fds, a forked child and a truncation meet in one window.
    import mmap, subprocess
    rw = mmap.PROT_READ | mmap.PROT_WRITE
    fd = os.open(d + "/shared.bin", os.O_RDWR | os.O_CREAT, 0o600)
    os.ftruncate(fd, 3 * 4096)
    m1 = mmap.mmap(fd, 3 * 4096, mmap.MAP_SHARED, rw)
    m2 = mmap.mmap(fd, 4096, mmap.MAP_SHARED, rw, offset=4096)
    m1[4096:4108] = b"SHARED-STORE"
    out = ["TWO=%r" % m2[:12], "PREAD=%r" % os.pread(fd, 12, 4096)]
    os.pwrite(fd, b"FD-WRITE", 100)
    out.append("SEEN=%r" % m1[100:108])
    ro = mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_READ)
    m1[0:5] = b"LATER"
    out.append("RO=%r" % ro[0:5])
    m1.flush()
    pid = os.fork()
    if pid == 0:
        m3 = mmap.mmap(fd, 4096, mmap.MAP_SHARED, rw, offset=8192)
        m3[0:11] = b"CHILD-STORE"
        m1[200:205] = b"CHILD"
        os._exit(0)
    os.waitpid(pid, 0)
    out.append("CHILD=%r,%r" % (m1[8192:8203], m1[200:205]))
    os.ftruncate(fd, 4096 + 6)
    out.append("TRUNC=%r" % m1[4096:4108])
    os.ftruncate(fd, 3 * 4096)
    m1[8192:8197] = b"AGAIN"
    # MAP_SYNC (stores durable as they land: persistent memory) is refused, as on any file not on DAX
    import ctypes, errno
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    r = libc.mmap(None, 4096, mmap.PROT_READ | mmap.PROT_WRITE, 0x03 | 0x80000, fd, 0)  # MAP_SHARED_VALIDATE | MAP_SYNC
    out.append("MAPSYNC=" + (errno.errorcode[ctypes.get_errno()] if r == 2**64 - 1 else "mapped"))
    # a program exec'd beside this one maps the same window (the holder's, passed to it):
    # it sees this process's stores and this process sees its own; its reads (no mapping left)
    # come from the window too, never from the read cache
    m1[400:405] = b"NEWER"
    code = ("import mmap, os\n"
            "fd = os.open(%r, os.O_RDWR)\na = os.pread(fd, 5, 400)\n"
            "m = mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)\n"
            "m[300:306] = b'BESIDE'\nm[400:405] = b'THERE'\nfirst = m[0:5]\nm.close()\n"
            "print('%%s,%%s,%%s' %% (first.decode(), a.decode(), os.pread(fd, 5, 400).decode()))\n") % (d + "/shared.bin")
    r = subprocess.run([sys.executable or "/usr/bin/python3", "-c", code], capture_output=True, text=True)
    out.append("EXECD=%s,%r,%r" % (r.stdout.strip() or r.stderr.strip()[-200:], m1[300:306], m1[400:405]))
    m2.close()
    ro.close()
    os.fsync(fd)
    m1.close()
    os.close(fd)
    print(";".join(out))
elif sys.argv[1] == "shmapcheck":
    b = open(d + "/shared.bin", "rb").read()
    print("FILE=%d,%r,%r,%r,%r,%r,%r" % (len(b), b[0:5], b[100:108], b[200:205], b[300:306], b[4096:4108], b[8192:8203]))
elif sys.argv[1] in ("wal", "walkill"):
    # SQLite in WAL mode (its -shm index is a shared writable mapping): threads
    # with connections of their own, a reader, a forked child; walkill dies by
    # SIGKILL in the middle of a transaction after 300 commits.
    import signal, sqlite3, threading
    db = d + "/wal.db"
    a = sqlite3.connect(db, timeout=60, check_same_thread=False)
    print("MODE=" + a.execute("PRAGMA journal_mode=WAL").fetchone()[0], flush=True)
    a.execute("CREATE TABLE IF NOT EXISTS t(k INTEGER PRIMARY KEY, v TEXT)")
    a.commit()
    if sys.argv[1] == "walkill":
        for i in range(300):
            a.execute("INSERT INTO t(v) VALUES(?)", ("wal-row-killed-%d" % i,))
            a.commit()
        a.execute("BEGIN")
        a.execute("INSERT INTO t(v) VALUES('never committed')")
        os.kill(os.getpid(), signal.SIGKILL)
    def writer(n):
        c = sqlite3.connect(db, timeout=60)
        for i in range(100):
            c.execute("INSERT INTO t(v) VALUES(?)", ("wal-row-%d-%d" % (n, i),))
            c.commit()
        c.close()
    ts = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in ts:
        t.start()
    b = sqlite3.connect(db, timeout=60)
    while any(t.is_alive() for t in ts):
        b.execute("SELECT count(*) FROM t").fetchone()
    for t in ts:
        t.join()
    pid = os.fork()
    if pid == 0:
        c = sqlite3.connect(db, timeout=60)
        for i in range(50):
            c.execute("INSERT INTO t(v) VALUES(?)", ("wal-row-child-%d" % i,))
            c.commit()
        os._exit(0)
    os.waitpid(pid, 0)
    print("ROWS=%d,%s" % (b.execute("SELECT count(*) FROM t").fetchone()[0],
                          b.execute("PRAGMA integrity_check").fetchone()[0]))
elif sys.argv[1] == "walprocs":
    # Processes the window was not made for: children forked while the database was closed
    # (its window gone), and sqlite3 shells started by a shell script, all writing one WAL
    # database at once; each asks the holder for the window.
    import sqlite3, subprocess
    db = d + "/procs.db"
    new_wal(db, "CREATE TABLE t(w, i, v)")
    pids = []
    for w in range(4):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                c = sqlite3.connect(db, timeout=60)
                for i in range(100):
                    c.execute("INSERT INTO t VALUES(?, ?, ?)", (w, i, "wal-proc-row-%d-%d" % (w, i)))
                    c.commit()
                    if c.execute("SELECT count(*) FROM t WHERE w = ?", (w,)).fetchone()[0] != i + 1:
                        raise RuntimeError("a row of this process missing")
                c.close()
                code = 0
            except Exception as e:
                print("WORKER %d: %s" % (w, e), flush=True)
            os._exit(code)
        pids.append(pid)
    script = ("for w in 1 2 3; do\n"
              "  (i=0; while [ $i -lt 50 ]; do i=$((i+1)); echo \"INSERT INTO t VALUES(1$w, $i, 'wal-shell-row');\"; done |"
              "   /usr/bin/sqlite3 -cmd '.timeout 60000' %s) &\n"
              "done\nwait\n/usr/bin/sqlite3 -cmd '.timeout 60000' %s 'SELECT count(*) FROM t WHERE w > 9'\n") % (db, db)
    sh = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True)
    bad = sum(os.waitpid(p, 0)[1] != 0 for p in pids)
    c = sqlite3.connect(db)
    print("PROCS=%d,%s,%s,%d" % (c.execute("SELECT count(*) FROM t").fetchone()[0],
                                 c.execute("PRAGMA integrity_check").fetchone()[0], sh.stdout.strip() or sh.stderr.strip(), bad))
elif sys.argv[1] == "waltakeover":
    # The process holding the volumes leaves while its child still writes the WAL database:
    # the child holds them next (the window's from the mailbox).
    import sqlite3, time
    db = d + "/takeover.db"
    new_wal(db, "CREATE TABLE t(i)")
    if os.fork() == 0:
        c = sqlite3.connect(db, timeout=60)
        for i in range(300):
            c.execute("INSERT INTO t VALUES(?)", (i,))
            c.commit()
            time.sleep(0.002)
        n = c.execute("SELECT count(*) FROM t").fetchone()[0]
        c.close()
        with open(os.path.dirname(d) + "/takeover.done", "w") as f:
            f.write("%d %d\n" % (os.getpid(), n))
        os._exit(0)
    time.sleep(0.2)
elif sys.argv[1] == "walprocscheck":
    import sqlite3
    c, k = sqlite3.connect(d + "/procs.db"), sqlite3.connect(d + "/takeover.db")
    print("WALPROCS=%d,%s;%d,%s" % (c.execute("SELECT count(*) FROM t").fetchone()[0], c.execute("PRAGMA integrity_check").fetchone()[0],
                                    k.execute("SELECT count(*) FROM t").fetchone()[0], k.execute("PRAGMA integrity_check").fetchone()[0]))
elif sys.argv[1] == "walcheck":
    import sqlite3
    c = sqlite3.connect(d + "/wal.db")
    print("WALCHECK=%d,%d,%s" % (c.execute("SELECT count(*) FROM t").fetchone()[0],
                                 c.execute("SELECT count(*) FROM t WHERE v = 'never committed'").fetchone()[0],
                                 c.execute("PRAGMA integrity_check").fetchone()[0]))
elif sys.argv[1] == "shmapedge":
    # A hostile and careless program around a window (an attacker's review found each of these):
    # changes by path, O_TRUNC and a program exec'd beside; its memfd closed or dup2'ed over;
    # stores past the end of the file; mremap, then msync(MS_SYNC) and SIGKILL.
    import ctypes, errno, mmap, signal, subprocess
    rw = mmap.PROT_READ | mmap.PROT_WRITE
    def mk(name, data):
        with open(d + "/" + name, "wb") as f:
            f.write(data)
        return os.open(d + "/" + name, os.O_RDWR)
    out = []
    fd = mk("e1", b"A" * 8192)
    m = mmap.mmap(fd, 8192, mmap.MAP_SHARED, rw)
    os.truncate(d + "/e1", 0)
    os.ftruncate(fd, 8192)
    out.append("PATH=%r,%r" % (os.pread(fd, 4, 0), m[0:4]))
    m[100] = ord("x")
    m.flush()
    fd2 = os.open(d + "/e1", os.O_WRONLY | os.O_TRUNC)
    os.write(fd2, b"B")
    os.close(fd2)
    out.append("OTRUNC=%r,%r" % (os.pread(fd, 4, 0), m[0:2]))
    m.close()
    os.close(fd)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.msync.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    libc.mremap.restype = ctypes.c_void_p
    libc.mremap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_int]
    fd = mk("e6", b"0123456789")
    p = libc.mmap(None, 8192, rw, mmap.MAP_SHARED, fd, 0)
    ctypes.memmove(p + 5000, b"PASTEOF", 7)
    os.ftruncate(fd, 8192)
    out.append("PASTEOF=%r" % os.pread(fd, 7, 5000))
    os.fsync(fd)
    fd = mk("e7", b"\0" * 8192)
    p = libc.mmap(None, 8192, rw, mmap.MAP_SHARED, fd, 0)
    libc.mmap(p + 8192, 4096, rw, 0x22 | 0x100000, -1, 0)  # (anonymous, MAP_FIXED_NOREPLACE: no growth in place)
    q = libc.mremap(p, 8192, 1 << 24, 1)  # MREMAP_MAYMOVE
    ctypes.memmove(q, b"MREMAPPED", 9)
    # (windows are made only while the process is alone: the program beside comes last)
    fd = mk("e4", b"A" * 8192)
    m = mmap.mmap(fd, 8192, mmap.MAP_SHARED, rw)
    code = "import os\nfd = os.open(%r, os.O_RDWR)\nos.pwrite(fd, b'BESIDE', 0)\nos.fsync(fd)\n" % (d + "/e4")
    subprocess.run([sys.executable or "/usr/bin/python3", "-c", code], check=True)
    out.append("BESIDE=%r,%r" % (os.pread(fd, 6, 0), m[0:6]))
    m[100] = ord("z")
    m.flush()
    def link(x):
        try:
            return os.readlink("/proc/self/fd/" + x)
        except OSError:  # (a volume file's fd reads as the volume path: EINVAL)
            return ""
    win = [int(x) for x in os.listdir("/proc/self/fd") if "scone-window" in link(x)]
    host = os.open(os.path.dirname(d) + "/host.bin", os.O_RDWR | os.O_CREAT, 0o600)
    os.write(host, b"H" * 4096)
    out.append("MEMFD=%d,%s,%s" % (len(win), err(lambda: os.dup2(host, win[0])), err(lambda: os.close(win[0]))))
    m.close()
    os.close(fd)
    out.append("MREMAP=%s,%d" % (q != p, libc.msync(q, 8192, 4)))  # MS_SYNC
    print(";".join(out), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
elif sys.argv[1] == "shmapedgecheck":
    r = lambda n: open(d + "/" + n, "rb").read()
    host = open(os.path.dirname(d) + "/host.bin", "rb").read()
    print("EDGE=%r,%d;%r,%d;%r,%r;%r;%r;%d" % (r("e1")[0:4], len(r("e1")), r("e4")[0:6], r("e4")[100],
                                              r("e6")[5000:5007], r("e6")[0:4], r("e7")[0:9], host[0:4], len(host)))
elif sys.argv[1] == "shmaplife":
    # A second review's cases: the last mapping goes after the program closed its fd (the window
    # held the last hold: a self-deadlock); a forked child's store, msync and fsync, then both
    # processes killed (the fsync returned before the holder wrote the store back).
    import mmap, signal, time
    rw = mmap.PROT_READ | mmap.PROT_WRITE
    with open(d + "/l1", "wb") as f:
        f.write(b"A" * 4096)
    fd = os.open(d + "/l1", os.O_RDWR)
    m = mmap.mmap(fd, 4096, mmap.MAP_SHARED, rw)
    os.close(fd)
    m[0:6] = b"CLOSED"
    m.close()
    print("LAST_UNMAP=done", flush=True)
    with open(d + "/l2", "wb") as f:
        f.write(b"A" * 4096)
    fd = os.open(d + "/l2", os.O_RDWR)
    m = mmap.mmap(fd, 4096, mmap.MAP_SHARED, rw)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        m[0:5] = b"CHILD"
        m.flush()
        os.fsync(fd)
        os.write(w, b"s")
        time.sleep(100)
        os._exit(0)
    os.read(r, 1)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    os.kill(os.getpid(), signal.SIGKILL)
elif sys.argv[1] == "shmapheir":
    # The holder leaves (exit) while a child maps a window that another child, which never
    # mapped it, comes to hold: the windows' mailbox hands it over, so the first child's later
    # stores and fsync reach the file (before the mailbox the new holder had no window: the
    # fsync returned and the stores were lost).
    import mmap, time
    rw = mmap.PROT_READ | mmap.PROT_WRITE
    with open(d + "/heir.bin", "wb") as f:
        f.write(b"." * 8192)
    parent = os.getpid()
    a_ready_r, a_ready_w = os.pipe()
    b_done_r, b_done_w = os.pipe()
    if os.fork() == 0:
        while os.getppid() == parent:
            time.sleep(0.01)
        with open(d + "/heir-other.txt", "w") as f:  # a request: the holder is gone, this one holds
            f.write("b")
        os.write(b_done_w, b"x")
        os.read(a_ready_r, 1)  # the first child stored AFTER and synced
        fd = os.open(d + "/heir.bin", os.O_RDWR)
        m = mmap.mmap(fd, 8192, mmap.MAP_SHARED, rw)
        res = "HEIR=%r,%r" % (m[0:6], m[100:105])
        m.close()
        with open(os.path.dirname(d) + "/heir.done", "w") as f:
            f.write("%d %s\n" % (os.getpid(), res))
        os._exit(0)
    if os.fork() == 0:
        before_after(d + "/heir.bin", a_ready_w, b_done_r)
        os.write(a_ready_w, b"x")
        time.sleep(0.5)
        os._exit(0)
    os.read(a_ready_r, 1)
    os._exit(0)
elif sys.argv[1] == "shmapexec":
    # The holder execs while its child maps a window: the next program holds the volumes and
    # takes the window over from the mailbox; the child's later stores and fsync reach the file.
    import mmap
    rw = mmap.PROT_READ | mmap.PROT_WRITE
    with open(d + "/exec.bin", "wb") as f:
        f.write(b"." * 8192)
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    a = os.fork()
    if a == 0:
        before_after(d + "/exec.bin", ready_w, go_r)
        os._exit(0)
    os.read(ready_r, 1)
    os.set_inheritable(go_w, True)
    os.execv(sys.executable or "/usr/bin/python3", [sys.executable or "/usr/bin/python3", os.path.abspath(__file__),
                                                    "shmapexecd", str(go_w), str(a)])
elif sys.argv[1] == "shmapexecd":
    import mmap
    os.write(int(sys.argv[2]), b"x")
    os.waitpid(int(sys.argv[3]), 0)
    fd = os.open(d + "/exec.bin", os.O_RDWR)
    m = mmap.mmap(fd, 8192, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    print("EXECD=%r,%r" % (m[0:6], m[100:105]), flush=True)
    m.close()
elif sys.argv[1] in ("shmapreuse", "shmaprotake"):
    # A review's cases of a change of holder. shmapreuse: a forked child holds next while the
    # window it inherited belongs to a file removed and made anew under its name (its stores
    # must not land in the new file). shmaprotake: a child took the window in through a
    # read-only fd, holds next, and syncs (its commits must not fail for the read-only fd).
    import mmap, time
    rw = mmap.PROT_READ | mmap.PROT_WRITE
    done = os.path.dirname(d) + "/" + sys.argv[1] + ".done"
    p = d + "/" + sys.argv[1]
    with open(p, "wb") as f:
        f.write(b"OLD-FILE" * 512)
    r_exit, w_exit = os.pipe()
    r_go, w_go = os.pipe()
    r_ok, w_ok = os.pipe()
    if os.fork() == 0:
        os.close(w_exit)
        res = []
        if sys.argv[1] == "shmaprotake":
            os.read(r_go, 1)
            ro = os.open(p, os.O_RDONLY)
            mr = mmap.mmap(ro, 4096, mmap.MAP_SHARED, mmap.PROT_READ)
            res.append("RO=%r" % mr[0:3])
            os.write(w_ok, b"x")
        os.read(r_exit, 1)  # the holder left
        time.sleep(0.2)
        os.stat(d)  # this process holds the volumes next
        if sys.argv[1] == "shmaprotake":
            fd = os.open(p, os.O_RDWR)
            m = mmap.mmap(fd, 4096, mmap.MAP_SHARED, rw)
            m[0:3] = b"new"
            res.append("SYNC=" + err(lambda: (m.flush(), os.fsync(fd))))
            os.pwrite(fd, b"W", 10)
            res.append("SYNC2=" + err(lambda: os.fsync(fd)))
        x = os.open(d + "/" + sys.argv[1] + "-other", os.O_RDWR | os.O_CREAT, 0o600)
        os.write(x, b"x")
        os.fsync(x)  # a commit: the windows' write-backs
        res.append("FILE=%r" % open(p, "rb").read()[0:12])
        with open(done, "w") as f:
            f.write("%d %s\n" % (os.getpid(), ";".join(res)))
        os._exit(0)
    fd = os.open(p, os.O_RDWR)
    m = mmap.mmap(fd, 4096, mmap.MAP_SHARED, rw)
    m[0:3] = b"old"
    if sys.argv[1] == "shmaprotake":
        os.write(w_go, b"g")
        os.read(r_ok, 1)
    else:
        m.close()
        os.close(fd)
        os.unlink(p)
        with open(p, "wb") as f:
            f.write(b"a new file of the same name")
            f.flush()
            os.fsync(f.fileno())
    os._exit(0)
elif sys.argv[1] == "shmapro":
    # A read-only fd's shared mapping cannot be made writable (mprotect: EACCES, as the kernel's),
    # also in a program beside the window's; and a program with a child maps 200 files in turn
    # (windows nobody maps any more go: the table does not fill).
    import mmap, subprocess
    rw = mmap.PROT_READ | mmap.PROT_WRITE
    p = d + "/ro.bin"
    with open(p, "wb") as f:
        f.write(b"." * 4096)
    fd = os.open(p, os.O_RDWR)
    m = mmap.mmap(fd, 4096, mmap.MAP_SHARED, rw)
    code = ("import ctypes, os\nl = ctypes.CDLL(None, use_errno=True)\nl.mmap.restype = ctypes.c_void_p\n"
            "l.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]\n"
            "l.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]\n"
            "q = l.mmap(None, 4096, 1, 1, os.open(%r, os.O_RDONLY), 0)\n"
            "print(l.mprotect(q, 4096, 3), ctypes.get_errno() == 13)\n") % p
    r = subprocess.run([sys.executable or "/usr/bin/python3", "-c", code], capture_output=True, text=True)
    os.fsync(fd)
    out = ["MPROTECT=%s,%r" % (r.stdout.strip() or r.stderr.strip()[-200:], os.pread(fd, 8, 0))]
    m.close()
    os.close(fd)
    for i in range(200):
        q = d + "/many%d" % i
        with open(q, "wb") as f:
            f.write(b"x" * 4096)
        fd = os.open(q, os.O_RDWR)
        try:
            m = mmap.mmap(fd, 4096, mmap.MAP_SHARED, rw)
        except OSError as e:
            out.append("MANY=%d:%s" % (i, errno.errorcode[e.errno]))
            break
        m[0] = ord("y")
        m.close()
        os.close(fd)
        os.unlink(q)
    else:
        out.append("MANY=200")
    print(";".join(out))
elif sys.argv[1] == "shmaprace":
    # A second review's race: the holder maps and unmaps a file in a loop (its window dropped and
    # made again each time) while a child maps it, stores a counter, unmaps and reads it back;
    # and maps it through a read-only fd. A store made before a munmap was lost when the holder
    # dropped the window between its write-back and its seal; a mapping failed with EAGAIN.
    import mmap, struct
    p = d + "/race.bin"
    with open(p, "wb") as f:
        f.write(b"\0" * 4096)
    r, w = os.pipe()
    c = os.fork()
    if c == 0:
        fd, ro = os.open(p, os.O_RDWR), os.open(p, os.O_RDONLY)
        lost, errs = 0, {}
        for i in range(1, 1500):
            try:
                m = mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
                m[0:8] = struct.pack("<Q", i)
                m.close()
                mr = mmap.mmap(ro, 4096, mmap.MAP_SHARED, mmap.PROT_READ)
                mr.close()
            except OSError as e:
                errs[errno.errorcode[e.errno]] = errs.get(errno.errorcode[e.errno], 0) + 1
                continue
            lost += struct.unpack("<Q", os.pread(fd, 8, 0))[0] != i
        print("RACE=%d,%r" % (lost, errs), flush=True)
        os.write(w, b"x")
        os._exit(0)
    fd = os.open(p, os.O_RDWR)
    os.set_blocking(r, False)
    while True:
        try:
            os.read(r, 1)
            break
        except BlockingIOError:
            pass
        mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE).close()
    os.waitpid(c, 0)
elif sys.argv[1] == "execafterexit":
    # The process holding the volumes exits; its child, which has not touched a volume since,
    # then runs a program (exec through subprocess). The exec's handover asked the gone server
    # for a connection and was refused (EIO) until the child had made some other request.
    import subprocess, time
    parent = os.getpid()
    if os.fork() == 0:
        while os.getppid() == parent:
            time.sleep(0.01)
        try:
            r = subprocess.run([sys.executable or "/usr/bin/python3", "-c",
                                "open(%r, 'w').write('exec ran')" % (d + "/after-exit.txt")])
            res = "EXEC=%d,%s" % (r.returncode, open(d + "/after-exit.txt").read())
        except OSError as e:
            res = "EXEC=" + errno.errorcode[e.errno]
        with open(os.path.dirname(d) + "/execafterexit.done", "w") as f:
            f.write("%d %s\n" % (os.getpid(), res))
        os._exit(0)
    os._exit(0)
elif sys.argv[1] == "fixedfds":
    # Shells use fixed fd numbers (3 to 9) for redirections and locks; the runtime's own fds (CAS's
    # connection, the shared state, the server's sockets) are out of their way, in this process and
    # in the programs it runs.
    import subprocess
    host = os.path.dirname(d) + "/fixed-host.txt"
    low = [f for f in range(3, 10) if os.path.exists("/proc/self/fd/%d" % f)
           and not os.readlink("/proc/self/fd/%d" % f).startswith("pipe:")]
    print("LOW=%s" % ",".join("%d:%s" % (f, os.readlink("/proc/self/fd/%d" % f)) for f in low))
    script = (
        "{ echo dash-top >&3; } 3>>%(h)s\n"
        "sh -c '{ echo dash-child >&3; } 3>>%(h)s'\n"
        "bash -c 'exec 3>>%(h)s && echo bash-exec >&3'\n"
        "exec 9>%(d)s/fixed.lock; flock -n 9 && echo FLOCK=ok\n"
        "for f in 3 4 5 6 7 8; do [ -e /proc/$$/fd/$f ] && echo CHILDLOW=$f; done; echo CHILDLOW=done\n"
        "echo volume-after > %(d)s/fixed.txt && cat %(d)s/fixed.txt\n"
        # A sibling named as a directory plus '.' sorts between it and its children.
        "mkdir -p %(d)s/sib/src && echo a > %(d)s/sib/src/a.c && echo b > %(d)s/sib/src.txt\n"
        "echo SIBLS=$(ls %(d)s/sib/src); rmdir %(d)s/sib/src 2>/dev/null; echo SIBRMDIR=$?\n"
        # A #! script stored on a volume runs where the runtime can read it (bash forks); from a vfork
        # child (dash) it is refused (EACCES, with a line saying why); its interpreter named runs it.
        "printf '#!/bin/sh\\necho script-ran $1\\n' > %(d)s/s.sh; chmod +x %(d)s/s.sh\n"
        "%(d)s/s.sh; echo VOLEXEC=$?; sh %(d)s/s.sh named\n"
        "bash -c '%(d)s/s.sh viabash; echo BASHEXEC=$?'\nenv %(d)s/s.sh viaenv\n"
        # The kernel's reading of the line: none (a file without a newline), a NUL ending the name.
        "printf '#!/bin/echo NONL' > %(d)s/nonl; printf '#!/bin/echo\\0junk\\necho body\\n' > %(d)s/nul\n"
        "chmod +x %(d)s/nonl %(d)s/nul; bash -c '%(d)s/nonl a | sed s,.*/,NONL:,; %(d)s/nul b | sed s,.*/,NUL:,'\n"
        # A lower limit moves where the runtime's next fds go (a child's connection, here).
        "sh -c 'ulimit -n 64; exec 4>>%(h)s 5>>%(h)s; echo low-limit >&4; cat %(d)s/fixed.txt & wait; echo LOWLIMIT=$?'\n"
        ) % {"h": host, "d": d}
    r = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True)
    sys.stdout.write(r.stdout)
    sys.stderr.write(r.stderr)
    print("SH=%d" % r.returncode)
    print("HOST=" + ",".join(open(host).read().split()))
elif sys.argv[1] == "nodefs":
    # Node.js (libuv): stat through statx and __fxstat64, copies sized by them, the IPC channel a
    # forked child gets on fd 3, a fourth stdio pipe.
    import subprocess
    js = os.path.dirname(d) + "/nodefs.js"
    with open(js, "w") as f:
        f.write(r"""
const fs = require("fs"), cp = require("child_process"), V = process.argv[2];
const t = (n, fn) => { try { console.log(n + "=" + JSON.stringify(fn())); } catch (e) { console.log(n + "=ERR " + e.code); } };
fs.mkdirSync(V + "/n/sub", {recursive: true});
fs.writeFileSync(V + "/n/a.txt", "hello-secret\n");
t("STAT", () => fs.statSync(V + "/n/a.txt").size);
t("FSTAT", () => fs.fstatSync(fs.openSync(V + "/n/a.txt")).size);
t("COPY", () => { fs.copyFileSync(V + "/n/a.txt", V + "/n/c.txt"); return fs.readFileSync(V + "/n/c.txt", "utf8"); });
t("MKDIRP", () => fs.mkdirSync(V + "/n/sub", {recursive: true}) === undefined);
t("REAL", () => fs.realpathSync(V + "/n/a.txt") === V + "/n/a.txt");
t("CP", () => { fs.cpSync(V + "/n/sub", V + "/n/sub2", {recursive: true}); return fs.existsSync(V + "/n/sub2"); });
t("RM", () => { fs.rmSync(V + "/n/sub2", {recursive: true}); return fs.existsSync(V + "/n/sub2"); });
const r = cp.spawnSync("sh", ["-c", "echo via-fd3 >&3"], {stdio: ["pipe", "pipe", "pipe", "pipe"]});
t("FD3", () => r.error ? "ERR " + r.error.code : String(r.output[3]));
try {
  const c = cp.fork(process.argv[1] + ".child.js");
  c.on("message", m => console.log("FORK=" + m));
  c.on("error", e => console.log("FORK=ERR " + e.code));
} catch (e) { console.log("FORK=ERR " + e.code); }
""")
    with open(js + ".child.js", "w") as f:
        f.write('process.send("hello from child"); process.exit(0);\n')
    r = subprocess.run(["/usr/bin/node", js, d], capture_output=True, text=True, timeout=120)
    sys.stdout.write(r.stdout)
    sys.stderr.write(r.stderr)
    print("NODE=%d" % r.returncode)
elif sys.argv[1] == "tailpoll":
    # tail -f cannot watch a volume file (inotify is refused there) and polls it instead.
    import subprocess, time
    open(d + "/tail.txt", "w").write("first\n")
    t = subprocess.Popen(["tail", "-n1", "-f", d + "/tail.txt"], stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    with open(d + "/tail.txt", "a") as f:
        f.write("second\n")
    time.sleep(2)
    t.terminate()
    print("TAIL=" + ",".join(t.communicate()[0].split()))
elif sys.argv[1] == "bgexec":
    # A shell holding the volumes starts a program in the background and exits; the program's exec
    # comes after (a loop of builtins first: nothing asks the volumes before it). The exec's
    # handover found the server gone, was elected and made a connection to itself: the program
    # then took itself for a dead server and ended.
    out = os.path.dirname(d) + "/bgexec.done"
    os.execv("/bin/sh", ["sh", "-c",
        "echo bg-data > %s/bg.txt\n"
        "(i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; exec /bin/cat %s/bg.txt) > %s.tmp 2>&1 &\n"
        "echo $! > %s.pid; exit 0\n" % (d, d, out, out)])
elif sys.argv[1] == "shmapheircheck":
    e, h = open(d + "/exec.bin", "rb").read(), open(d + "/heir.bin", "rb").read()
    print("FILES=%r,%r;%r,%r" % (e[0:6], e[100:105], h[0:6], h[100:105]))
elif sys.argv[1] == "shmaplifecheck":
    print("LIFE=%r,%r" % (open(d + "/l1", "rb").read()[0:6], open(d + "/l2", "rb").read()[0:5]))
elif sys.argv[1] == "owner":
    # stat names the process's user and group as the owner, also after they change
    import ctypes, platform
    with open(d + "/owned.txt", "w") as f:
        f.write("x")
        f.flush()
        os.fsync(f.fileno())
    def show(tag):
        st, fst = os.stat(d + "/owned.txt"), os.fstat(fd)
        print("%s=%d:%d,%d:%d,%d:%d" % (tag, st.st_uid, st.st_gid, fst.st_uid, fst.st_gid, os.getuid(), os.getgid()), flush=True)
    fd = os.open(d + "/owned.txt", os.O_RDONLY)
    show("START")
    # the raw call through syscall(): setresgid is 119 on x86-64, 149 on arm64
    libc = ctypes.CDLL(None, use_errno=True)
    nr = {"x86_64": 119, "aarch64": 149}[platform.machine()]
    assert libc.syscall(nr, 1, 1, 1) == 0, ctypes.get_errno()
    show("RAWGID")
    # the raw call changes its own thread's group alone: each thread's stat names its own
    import threading
    def other():
        assert libc.syscall(nr, 2, 2, 2) == 0, ctypes.get_errno()
        show("THREAD")
    th = threading.Thread(target=other)
    th.start()
    th.join()
    show("MAIN")
    # the effective user owns what a process creates
    os.setresuid(0, 65534, 0)
    show("EUID")
    os.setresuid(65534, 65534, 65534)
    show("SETUID")
    os._exit(0)
elif sys.argv[1] == "cachetakeovercheck":
    b = open(d + "/k.bin", "rb").read()
    print("VOLUME=%d:%s" % (len(b), b[:4].decode()))
elif sys.argv[1] == "lazyserve":
    # One thread and one connection to CAS until a child comes: the volume server's thread starts
    # with the first child, and the tag reports go over the configuration's connection.
    def threads():
        for line in open("/proc/self/status"):
            if line.startswith("Threads:"):
                return int(line.split()[1])
    def tcp_sockets():
        inodes = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                inodes |= {line.split()[9] for line in open(table).readlines()[1:]}
            except OSError:
                pass
        mine = set()
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink("/proc/self/fd/" + fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                mine.add(target)
        return mine
    before, t0 = tcp_sockets(), threads()
    with open(d + "/lazy.txt", "w") as f:
        f.write("one\n")
        f.flush()
        os.fsync(f.fileno())  # a commit and its tag report
    with open(d + "/lazy.txt", "a") as f:
        f.write("two\n")
        f.flush()
        os.fsync(f.fileno())  # the next waits for the first's answer
    print("THREADS=%d,%d" % (t0, threads()))
    print("CONN=%d,%s" % (len(before), before == tcp_sockets()))
    code = "open(%r, 'w').write('spawned')" % (d + "/lazy-spawn.txt")
    pid = os.posix_spawn("/usr/bin/python3", ["/usr/bin/python3", "-c", code], os.environ)
    print("SPAWNED=%d,%s" % (os.waitpid(pid, 0)[1], open(d + "/lazy-spawn.txt").read()))
    pid = os.fork()
    if pid == 0:
        with open(d + "/lazy-fork.txt", "w") as f:
            f.write("forked")
        os._exit(0)
    os.waitpid(pid, 0)
    print("FORKED=%s,%d" % (open(d + "/lazy-fork.txt").read(), threads()))
elif sys.argv[1] == "offsets":
    # The offset of a description only this process holds is kept by the runtime (no system call);
    # once another process may hold it (fork, spawn, SCM_RIGHTS), every move of theirs counts.
    import socket
    path = d + "/offsets.txt"
    with open(path, "w") as f:
        f.write("0123456789abcdefghij")
    fd = os.open(path, os.O_RDONLY)
    got = [os.read(fd, 5)]
    os.lseek(fd, 0, os.SEEK_END), os.lseek(fd, 0, os.SEEK_END)
    os.lseek(fd, 5, os.SEEK_SET)
    got.append(os.read(fd, 2))
    pid = os.fork()
    if pid == 0:
        os.read(fd, 3)  # the shared description moves to 10
        os._exit(0)
    os.waitpid(pid, 0)
    got.append(os.read(fd, 3))
    os.close(fd)
    fd = os.open(path, os.O_RDONLY)  # private again
    got.append(os.read(fd, 4))
    os.set_inheritable(fd, True)
    pid = os.posix_spawn("/usr/bin/python3", ["/usr/bin/python3", "-c", "import os; os.lseek(%d, 12, 0)" % fd],
                         os.environ)
    os.waitpid(pid, 0)
    got.append(os.read(fd, 2))
    os.close(fd)
    a, b = socket.socketpair()
    pid = os.fork()  # the child exists before the next open: that description is private
    if pid == 0:
        a.close()
        _, fds, _, _ = socket.recv_fds(b, 1, 1)
        os.lseek(fds[0], 15, os.SEEK_SET)  # the sealed placeholder, the same description
        b.send(b"moved")
        os._exit(0)
    b.close()
    fd = os.open(path, os.O_RDONLY)
    got.append(os.read(fd, 2))
    socket.send_fds(a, [b"x"], [fd])
    a.recv(5)
    os.waitpid(pid, 0)
    got.append(os.read(fd, 2))
    print("OFFSETS=" + ",".join(x.decode() for x in got))
elif sys.argv[1] == "lazycheck":
    print("LAZY=%r,%s,%s" % (open(d + "/lazy.txt").read(), open(d + "/lazy-spawn.txt").read(),
                             open(d + "/lazy-fork.txt").read()))
elif sys.argv[1] == "forkcheck":
    print("LOG=%r" % open(d + "/log.txt").read())
    print("BOTH=%d,%d" % (len(open(d + "/both-p.txt").read().split()), len(open(d + "/both-c.txt").read().split())))
elif sys.argv[1] == "check":
    print("READ=" + repr(open(d + "/renamed.txt").read()))
PY
}

start() {
	cas_case_begin
	cas_start "$CASE_DIR/cas"
	owner_new "$CASE_DIR/owner"
	write_py
	session_yaml >vol.yaml
	expect_created vol.yaml
}

case_python() {
	start
	SCONE_VERSION=1 expect_ok scone run --config-id vol/py -- "$PY" write
	grep -q "file-system shield on (1 volumes mounted)" "$ERR" || { show_output; fail "SCONE_VERSION=1: shield not on"; }
	grep -qx "READ='SCONE-SECRET-MARKER-7f3a9 line one\\\\nline two\\\\n'" "$OUT" || { show_output; fail "write/append/read back"; }
	grep -qx "SIZE=10000" "$OUT" || { show_output; fail "stat size"; }
	grep -qx "LIST=notes.txt,other.txt,sub" "$OUT" || { show_output; fail "listdir"; }
	grep -qx "EXISTS=False,True" "$OUT" || { show_output; fail "rename/remove"; }
	grep -qx "LIST2=renamed.txt,sub" "$OUT" || { show_output; fail "listdir after rename"; }
	# On the host: the fspf and random-named files only; no plaintext.
	[ -f "$CASE_DIR/data/volume.fspf" ] || fail "no volume.fspf on the host"
	[ ! -e "$CASE_DIR/data/renamed.txt" ] && [ ! -e "$CASE_DIR/data/sub" ] || fail "plaintext names on the host"
	ls "$CASE_DIR/data" | grep -v '^volume\.fspf' | grep -qvE '^[0-9a-f]{32}$' && { ls -la "$CASE_DIR/data"; fail "unexpected host file names"; }
	if grep -rqa "SCONE-SECRET-MARKER" "$CASE_DIR/data"; then fail "the marker is on disk in plaintext"; fi
	cp -a "$CASE_DIR/data" "$CASE_DIR/data.run1"
	# Run 2: the data is back (CAS's tag matches), and more is written.
	expect_ok scone run --config-id vol/py -- "$PY" read
	grep -qx "READ='SCONE-SECRET-MARKER-7f3a9 line one\\\\nline two\\\\n'" "$OUT" || { show_output; fail "second run read"; }
	grep -qx "LIST=renamed.txt,sub" "$OUT" || { show_output; fail "second run listdir"; }
	grep -qx "PREAD=b'xyyx'" "$OUT" || { show_output; fail "pwrite/pread"; }
	expect_ok scone run --config-id vol/py -- "$PY" edge
	grep -qx "ERRS=ENOENT,EEXIST,EINVAL,EXDEV,ENOTEMPTY,EACCES,EINVAL,ok" "$OUT" || { show_output; fail "errno of refused calls"; }
	grep -qx "SUBCWD=True,10000" "$OUT" || { show_output; fail "chdir into a volume subdirectory"; }
	grep -qx "IO_URING=-1,ENOSYS" "$OUT" && grep -q "io_uring refused" "$ERR" || { show_output; fail "io_uring not refused"; }
	grep -qx "IO_SETUP=-1,ENOSYS" "$OUT" && grep -q "Linux AIO refused" "$ERR" || { show_output; fail "Linux AIO not refused"; }
	grep -qxF "FALLOCATE=24096,0,-1,ENOTSUP,0,b'\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00',EBADF" "$OUT" ||
		{ show_output; fail "fallocate family"; }
	grep -qx "MMAP_PRIVATE=b'SCONE-SECRE'" "$OUT" || { show_output; fail "private read-only mmap"; }
	grep -qx "STDIO=b'through stdio\\\\n'" "$OUT" || { show_output; fail "fopen/fputs/fgets"; }
	grep -qx "PLAIN='through stdio\\\\n'" "$OUT" || { show_output; fail "stdio write read back with open"; }
	grep -qx "CREAT=creat" "$OUT" || { show_output; fail "creat"; }
	if grep -rqa "through stdio" "$CASE_DIR/data"; then fail "stdio plaintext on disk"; fi
	expect_ok scone run --config-id vol/py -- "$PY" check
	grep -qx "READ='SCONE-SECRET-MARKER-7f3a9 line one\\\\nline two\\\\nline three\\\\n'" "$OUT" ||
		{ show_output; fail "third run read"; }
	# Roll the directory back to the copy after run 1: refused at start.
	rm -rf "$CASE_DIR/data"
	cp -a "$CASE_DIR/data.run1" "$CASE_DIR/data"
	expect_no_main "ROLLBACK" scone run --config-id vol/py -- "$PY" check
}

# The owner's recovery path (docs/runtime.md "A volume CAS does not know"): a
# directory restored to an older copy is refused; `scone volume show` says
# why; nobody but the owner (another owner, no identity, a runtime's key) can
# read or move CAS's tag; the owner's accept makes the copy open, once,
# audited with the owner's key; a stale accept is a conflict.
case_accept() {
	local owner=$CASE_DIR/owner body=$CASE_DIR/accept.json disk cas_tag
	start
	expect_ok scone run --config-id vol/py -- "$PY" write
	cp -a "$CASE_DIR/data" "$CASE_DIR/data.run1"
	expect_ok scone run --config-id vol/py -- "$PY" read
	rm -rf "$CASE_DIR/data"
	cp -a "$CASE_DIR/data.run1" "$CASE_DIR/data"
	expect_no_main "ROLLBACK" scone run --config-id vol/py -- "$PY" check
	expect_ok scone volume show "$CASE_DIR/data" --session vol --volume data
	disk=$(sed -n 's/^disk: .* newest \([0-9a-f]\{32\}\)$/\1/p' "$OUT")
	cas_tag=$(sed -n 's/^CAS:  \([0-9a-f]\{32\}\)$/\1/p' "$OUT")
	[ -n "$disk" ] && [ -n "$cas_tag" ] && [ "$disk" != "$cas_tag" ] || { show_output; fail "volume show: tags"; }
	assert_grep "not in the disk's log" "$OUT"
	# Nobody else: another owner, a client without identity, a runtime's fresh key.
	owner_new "$CASE_DIR/other"
	expect_fail_with "PERMISSION" scone volume accept "$CASE_DIR/data" --session vol --volume data
	expect_fail_with "PERMISSION" scone volume show "$CASE_DIR/data" --session vol --volume data
	runtime_new "$CASE_DIR/rt"
	printf '{"tag": "%s", "previous_tag": "%s"}\n' "$disk" "$cas_tag" >"$body"
	for who in "$CASE_DIR/other" "$CASE_DIR/rt" anon; do
		expect_http 403 PERMISSION "$who" PUT /v1/volumes/vol/data "$body" application/json
		expect_http 403 PERMISSION "$who" GET /v1/volumes/vol/data
	done
	use_id "$owner"
	expect_no_main "ROLLBACK" scone run --config-id vol/py -- "$PY" check
	# Bad requests: a volume the session does not define, a malformed tag, a stale view.
	expect_http 404 NOT_FOUND "$owner" GET /v1/volumes/vol/nope
	printf '{"tag": "%s", "previous_tag": ""}\n' "${disk^^}" >"$CASE_DIR/bad.json"
	expect_http 400 INVALID "$owner" PUT /v1/volumes/vol/data "$CASE_DIR/bad.json" application/json
	printf '{"tag": "%s", "previous_tag": "%s"}\n' "$disk" "$disk" >"$CASE_DIR/stale.json"
	expect_http 409 CONFLICT "$owner" PUT /v1/volumes/vol/data "$CASE_DIR/stale.json" application/json
	# The owner accepts: the copy opens with run 1's content.
	expect_ok scone volume accept "$CASE_DIR/data" --session vol --volume data
	assert_grep "CAS now trusts $disk for volume data of session vol \\(was $cas_tag\\)" "$OUT"
	expect_http 200 "$owner" GET /v1/volumes/vol/data
	assert_eq "$disk" "$(jget "$BODY" 'd["tag"]')" "CAS's tag after the accept"
	expect_http 200 "$owner" PUT /v1/volumes/vol/data "$body" application/json
	expect_ok scone run --config-id vol/py -- "$PY" check
	grep -qx "READ='SCONE-SECRET-MARKER-7f3a9 line one\\\\nline two\\\\n'" "$OUT" || { show_output; fail "the accepted copy reads"; }
	assert_grep "the owner accepted the disk state $disk" "$CAS_LOG"
	# The audit log holds the accept with the owner's key, method and path.
	expect_ok "$SCONE_CAS_BIN" audit-export --state-dir "$CAS_DIR" "$CASE_DIR/audit.log"
	"$PY" - "$CASE_DIR/audit.log" "$disk" "$(cat "$owner/keyhash")" <<'PY' || fail "no audit entry of the accept"
import json, sys
hits = [e for e in map(json.loads, open(sys.argv[1])) if e.get("path") == "/v1/volumes/vol/data"
        and e.get("method") == "PUT" and e.get("tag") == sys.argv[2]]
sys.exit(0 if len(hits) == 1 and hits[0].get("actor") == sys.argv[3] else 1)
PY
}

case_fork() {
	start
	expect_ok scone run --config-id vol/py -- "$PY" fork
	grep -qx "SHARED=b'AAAB0B1B2CCC'" "$OUT" || { show_output; fail "an fd shared with forked children keeps one offset"; }
	grep -qx "CHILDREN=0,1,2" "$OUT" || { show_output; fail "the parent reads files its children wrote"; }
	local log="LOG='parent-1\\nchild-0\\nparent-2\\nchild-1\\nparent-3\\nchild-2\\nparent-4\\n'"
	grep -qxF "$log" "$OUT" || { show_output; fail "O_APPEND from parent and children"; }
	grep -qx "BOTH=50,50" "$OUT" || { show_output; fail "parent and child writing at the same time"; }
	if grep -rqa "SCONE-SECRET-MARKER" "$CASE_DIR/data"; then fail "a child's plaintext is on disk"; fi
	# The next start: CAS's tag matches what the last of the processes committed.
	expect_ok scone run --config-id vol/py -- "$PY" forkcheck
	grep -qxF "$log" "$OUT" || { show_output; fail "fork: second run"; }
	grep -qx "BOTH=50,50" "$OUT" || { show_output; fail "fork: second run, concurrent files"; }
	# Four writers at once: nothing lost or doubled, in this run and the next.
	expect_ok scone run --config-id vol/py -- "$PY" stress
	grep -qx "EXITS=0,0,0,0" "$OUT" || { show_output; fail "stress: a child failed"; }
	expect_ok scone run --config-id vol/py -- "$PY" stresscheck
	grep -qx "STRESS=600,600,150,150,150,150" "$OUT" || { show_output; fail "stress: lines lost or doubled"; }
	# A child killed by SIGKILL while writing: every write it was answered is in the volume.
	expect_ok scone run --config-id vol/py -- "$PY" childkill
	grep -qx "VICTIM=True" "$OUT" || { show_output; fail "a killed child's acknowledged writes are lost"; }
}

# A program that makes no child stays single-threaded under the runtime (the volume server's
# thread starts with the first child: glibc's malloc and locks keep their single-thread paths), and
# its tag reports share the configuration's TLS connection to CAS. A spawned and a forked child
# are still served.
case_lazy_serve() {
	local run
	start
	# Twice: the first start reports the new volume's first tag while it mounts, the second not.
	for run in first second; do
		expect_ok scone run --config-id vol/py -- "$PY" lazyserve
		grep -qx "THREADS=1,1" "$OUT" || { show_output; fail "$run run: a second thread before any child"; }
		grep -qx "CONN=1,True" "$OUT" ||
			{ show_output; fail "$run run: the tag reports did not use the configuration's connection"; }
		grep -qx "SPAWNED=0,spawned" "$OUT" || { show_output; fail "$run run: a spawned first child not served"; }
		grep -qx "FORKED=forked,2" "$OUT" || { show_output; fail "$run run: a forked child not served"; }
	done
	expect_ok scone run --config-id vol/py -- "$PY" lazycheck
	grep -qxF "LAZY='one\ntwo\n',spawned,forked" "$OUT" || { show_output; fail "lazy serve: next run"; }
}

# A child made by a raw system call (syscall(SYS_fork), no fork handlers) that execs a program:
# the program is served by its parent, whose serving thread starts before that call.
case_raw_fork_served() {
	cat >rf.c <<'C'
#define _GNU_SOURCE
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void)
{
	char self[4096], path[4200], code[4400], got[64] = {0};
	int st, fd;
	pid_t pid;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[n > 0 ? n : 0] = 0;
	snprintf(path, sizeof(path), "%s/data/raw-fork.txt", dirname(self));
	snprintf(code, sizeof(code), "open(%s%s%s, 'w').write('raw-forked')", "'", path, "'");
	pid = (pid_t)syscall(SYS_fork);
	if (pid == 0) {
		execl("/usr/bin/python3", "python3", "-c", code, (char *)NULL);
		_exit(127);
	}
	alarm(30); /* a child nobody serves would wait for ever */
	if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		printf("RAWFORK=child-failed\n");
		return 0;
	}
	fd = open(path, O_RDONLY);
	if (fd < 0 || read(fd, got, sizeof(got) - 1) < 0)
		printf("RAWFORK=unreadable\n");
	else
		printf("RAWFORK=%s\n", got);
	return 0;
}
C
	run_c_check rf.c "raw fork" RAWFORK=raw-forked
}

# The runtime keeps the offset of a description only its process holds; a fork, a spawn or an
# fd sent over a socket makes every other process's moves count again.
case_offsets() {
	start
	expect_ok scone run --config-id vol/py -- "$PY" offsets
	grep -qx "OFFSETS=01234,56,abc,0123,cd,01,fg" "$OUT" || { show_output; fail "an offset moved by another process was not seen"; }
}

# Children read through the shared read cache: never anything but what the server holds now.
case_cache() {
	start
	expect_ok scone run --config-id vol/py -- "$PY" cache
	grep -qx "CACHE=ok" "$OUT" || { show_output; fail "a client read something the volume no longer holds"; }
}

# The read cache's default size: 1/32 of the memory the program may use (the
# machine's, or its memory cgroup's limit), a power of two from 64 to 512 MiB;
# SCONE_READ_CACHE_MB sets it. In a cgroup with a memory limit (as root, where
# a memory cgroup can be made) the limit decides.
cache_mb_of() { sed -n 's/.*the volumes. shared read cache: \([0-9]*\) MiB.*/\1/p' "$ERR" | head -1; }
cache_want() { # MiB the process may use -> the default's MiB
	local want=$(($1 / 32)) mb=64
	while [ "$mb" -lt 512 ] && [ $((mb * 2)) -le "$want" ]; do mb=$((mb * 2)); done
	echo "$mb"
}
case_cache_size() {
	start
	local mem got cg='' limit=''
	mem=$(($(awk '/^MemTotal:/ { print $2 }' /proc/meminfo) / 1024))
	SCONE_LOG=info run_cmd scone run --config-id vol/py -- "$PY" nothing
	got=$(cache_mb_of)
	[ "$got" = "$(cache_want "$mem")" ] || { show_output; fail "default read cache ${got:-?} MiB on a machine of $mem MiB, want $(cache_want "$mem")"; }
	SCONE_LOG=info SCONE_READ_CACHE_MB=16 run_cmd scone run --config-id vol/py -- "$PY" nothing
	[ "$(cache_mb_of)" = 16 ] || { show_output; fail "SCONE_READ_CACHE_MB=16 gave $(cache_mb_of) MiB"; }
	[ "$(id -u)" -eq 0 ] || { echo "# not root: the cgroup part is left out"; return 0; }
	if [ -f /sys/fs/cgroup/cgroup.controllers ] && grep -qw memory /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null; then
		cg=/sys/fs/cgroup/scone-test-$$-$RANDOM limit=memory.max # v2
	elif [ -d /sys/fs/cgroup/memory ]; then
		cg=/sys/fs/cgroup/memory/scone-test-$$-$RANDOM limit=memory.limit_in_bytes # v1
	fi
	if [ -n "$cg" ]; then
		if mkdir "$cg" 2>/dev/null; then echo $((1024 << 20)) >"$cg/$limit" 2>/dev/null || { rmdir "$cg"; cg=''; }; else cg=''; fi
	fi
	[ -n "$cg" ] || { echo "# no memory cgroup can be made here: the cgroup part is left out"; return 0; }
	SCONE_LOG=info run_cmd sh -c '(echo $$ >"$1/cgroup.procs") 2>/dev/null || exit 99; shift; exec "$@"' sh "$cg" \
		"$SCONE_BIN" run --config-id vol/py -- "$PY" nothing
	got=$(cache_mb_of)
	rmdir "$cg" 2>/dev/null || true
	if [ "$RC" -eq 99 ]; then
		echo "# a process cannot be moved into a memory cgroup here: the cgroup part is left out"
		return 0
	fi
	echo "# read cache: $(cache_want "$mem") MiB by default on a machine of $mem MiB, $got MiB under a 1 GiB limit ($cg)"
	[ "$got" = "$(cache_want $((mem < 1024 ? mem : 1024)))" ] || { show_output; fail "a 1 GiB memory limit gave a ${got:-?} MiB read cache"; }
}

# A description of a file renamed over, carried across a takeover: what a reader's cache
# answers afterwards is what the volume holds; the shared state is not passed on by exec.
case_cache_takeover() {
	local n=0
	start
	touch "$CASE_DIR/parent-alive"
	expect_ok scone run --config-id vol/py -- "$PY" cachetakeover
	grep -qx "CLOEXEC=1" "$OUT" || { show_output; fail "an exec'd program's shared state would reach what it execs"; }
	while [ ! -e "$CASE_DIR/r-result" ] && [ $n -lt 200 ]; do sleep 0.1; n=$((n + 1)); done
	sleep 1.5 # both children exit (the last commits)
	[ -e "$CASE_DIR/r-result" ] || fail "the reader did not finish"
	expect_ok scone run --config-id vol/py -- "$PY" cachetakeovercheck
	local vol reader
	vol=$(sed -n 's/^VOLUME=//p' "$OUT")
	reader=$(cat "$CASE_DIR/r-result")
	echo "# writer: $(cat "$CASE_DIR/k-result"); reader: $reader; volume: $vol"
	[ "$reader" = "$vol" ] || fail "the reader's cache answered $reader, the volume holds $vol"
	[ "$vol" = "5000:BBBB" ] || fail "the old file's description wrote into the new file ($vol)"
}

# stat's owner of volume files is the process's user and group, also after set*id calls
# (through libc and through syscall()): the runtime keeps the answer until one.
case_owner() {
	[ "$(id -u)" -eq 0 ] || t_skip_case "changing the user and group needs root"
	start
	expect_ok scone run --config-id vol/py -- "$PY" owner
	grep -qx "START=0:0,0:0,0:0" "$OUT" || { show_output; fail "a volume file's owner is not the process's user and group"; }
	grep -qx "RAWGID=0:1,0:1,0:1" "$OUT" || { show_output; fail "after syscall(SYS_setresgid) stat names the old group"; }
	grep -qx "THREAD=0:2,0:2,0:2" "$OUT" || { show_output; fail "a thread's own syscall(SYS_setresgid): its stat names another group"; }
	grep -qx "MAIN=0:1,0:1,0:1" "$OUT" || { show_output; fail "another thread's syscall(SYS_setresgid) changed this thread's owner"; }
	grep -qx "EUID=65534:1,65534:1,0:1" "$OUT" || { show_output; fail "stat does not name the effective user"; }
	grep -qx "SETUID=65534:1,65534:1,65534:1" "$OUT" || { show_output; fail "after setresuid stat names the old user"; }
}

# Placeholders reused from one open to the next (fd_volume.c).
case_placeholders() {
	start
	expect_ok scone run --config-id vol/py -- "$PY" placeholders
	grep -qx "PLACEHOLDERS=ok" "$OUT" || { show_output; fail "a reused placeholder carried another file's offset, flags or description"; }
}

# A child that ends without closing the files it opened from the cache
# alone (pinned), through _exit or an exec, gives their pins back: once
# removed, no such file stays open on the server.
case_pin_leak() {
	start
	expect_ok scone run --config-id vol/py -- "$PY" pinleak
	grep -qx "KEPT=0" "$OUT" || { show_output; fail "removed files stay open on the server: pins of ended children"; }
}

# An exec'd program takes over inherited volume fds by their files (not by
# path: a file renamed over one since is another), and by the placeholder
# each fd holds (a spawn's file action may have dup2'ed another there).
case_inherit_identity() {
	start
	expect_ok scone run --config-id vol/py -- "$PY" inherit
	grep -qx "EXECD=the old file" "$OUT" || { show_output; fail "the exec'd program read another file than the fd it inherited"; }
	grep -qxF "SPAWN=0,b'',b'meant-for-b\\n'" "$OUT" || { show_output; fail "the spawned program's stdout went to another file than its file action put there"; }
	grep -qxF "SPAWN_OPEN=0,b'opened-by-the-action\\n'" "$OUT" || { show_output; fail "a spawn's file action opening a volume path"; }
	grep -qxF "STDIO=0,b'through-stdio\\n'" "$OUT" || { show_output; fail "a child's stdout on a volume file, written through stdio"; }
	if ls "$CASE_DIR/data" | grep -v '^volume\.fspf' | grep -qvE '^[0-9a-f]{32}$'; then
		ls -la "$CASE_DIR/data"
		fail "plaintext names on the host"
	fi
}

# Descriptions opened from the read cache alone read their own files on after another process
# renames them away, renames a file over them or removes them (pins, vcache.h).
case_lazy_gone() {
	start
	expect_ok scone run --config-id vol/py -- "$PY" lazygone
	grep -qx "LAZY=forked=ok,away=ok,over=ok,gone=ok" "$OUT" ||
		{ show_output; fail "a description opened from the cache lost its file when another process renamed or removed it"; }
	grep -qx "OVER=the new file" "$OUT" || { show_output; fail "the file renamed over the old one is not there"; }
}

# The process holding the volume goes away while others still use it: they elect a new one.
case_server_gone() {
	local n=0
	start
	# daemon(3): the parent leaves through _exit right after forking.
	DONE="$CASE_DIR/done" expect_ok scone run --config-id vol/py -- "$PY" daemon
	while [ ! -e "$CASE_DIR/done" ] && [ $n -lt 200 ]; do sleep 0.1; n=$((n + 1)); done
	[ -e "$CASE_DIR/done" ] || fail "the daemonized child did not finish"
	sleep 0.5 # it exits (and commits) right after
	expect_ok scone run --config-id vol/py -- "$PY" daemoncheck
	grep -qx "DAEMON=written before daemonizing,200,from the worker" "$OUT" || { show_output; fail "daemon pattern"; }
	# The serving process killed by SIGKILL (with everything committed) while three children
	# sleep between synced writes: a crash of the program. The first child to write again
	# ends the others and itself; what they synced is there.
	run_cmd scone run --config-id vol/py -- "$PY" killserver
	[ "$RC" -eq 137 ] || { show_output; fail "killserver: expected the parent killed (137), got $RC"; }
	n=0
	while [ $n -lt 300 ] && ! grep -q "the program has crashed" "$ERR"; do sleep 0.1; n=$((n + 1)); done
	grep -q "died without exiting (nothing was uncommitted): the program has crashed" "$ERR" ||
		{ show_output; fail "no crash after the server was killed"; }
	sleep 0.5
	[ -z "$(ls "$CASE_DIR"/ks-done-* 2>/dev/null)" ] || fail "a child went on after the program crashed"
	expect_ok scone run --config-id vol/py -- "$PY" killcheck
	grep -qx "KILLED=committed before the fork,1,1,1" "$OUT" || { show_output; fail "children after the server was killed"; }
	if grep -rqa "k[0-9] line" "$CASE_DIR/data"; then fail "plaintext on disk"; fi
}

# The serving process killed while it holds a write it acknowledged and had
# not committed: a crash of the whole program. The first process to notice
# ends every other one (also those blocked outside the runtime) and itself,
# before any of them can acknowledge anything past the lost write (PostgreSQL:
# a backend writes a WAL page, another flushes the segment past it).
case_lost_writeback() {
	local n=0 alive p
	start
	run_cmd scone run --config-id vol/py -- "$PY" lostwb
	[ "$RC" -eq 137 ] || { show_output; fail "lostwb: expected the parent killed (137), got $RC"; }
	while [ $n -lt 300 ]; do
		alive=""
		for p in x y z; do
			[ -s "$CASE_DIR/lostwb.${p}pid" ] && kill -0 "$(cat "$CASE_DIR/lostwb.${p}pid")" 2>/dev/null && alive="$alive $p"
		done
		[ -z "$alive" ] && break
		sleep 0.1
		n=$((n + 1))
	done
	[ -z "$alive" ] || { kill -9 $(cat "$CASE_DIR"/lostwb.?pid) 2>/dev/null; fail "processes of the crashed program still running:$alive"; }
	for p in x y z; do
		[ ! -e "$CASE_DIR/lostwb.$p" ] || fail "process $p went on after the crash: $(cat "$CASE_DIR/lostwb.$p")"
	done
	grep -q "died with changes it had not committed: the program has crashed" "$ERR" ||
		{ show_output; fail "no message about the crash"; }
	expect_ok scone run --config-id vol/py -- "$PY" lostcheck
	grep -qx "LOSTWB=b'.........',200" "$OUT" || { show_output; fail "the volume after the crash"; }
}

# O_SYNC / O_DSYNC writes are committed before they return, as the kernel's synchronous I/O.
case_osync() {
	start
	run_cmd scone run --config-id vol/py -- "$PY" osync
	[ "$RC" -eq 137 ] || { show_output; fail "osync: expected the process killed (137), got $RC"; }
	expect_ok scone run --config-id vol/py -- "$PY" osynccheck
	grep -qxF "OSYNC='durable dsync','durable sync',missing" "$OUT" || { show_output; fail "O_DSYNC/O_SYNC writes after a kill"; }
}

case_fspf_env() {
	local lib key tag line newtag
	lib=$(cd "$(dirname "$SCONE_BIN")/../lib" && pwd)/libscone.so
	mkdir -p "$CASE_DIR/fs/native"
	echo "fspf volume SCONE-SECRET-MARKER-7f3a9" >"$CASE_DIR/fs/native/a.txt"
	(
		cd "$CASE_DIR/fs" && "$SCONE_BIN" fspf create volume.fspf >/dev/null &&
			"$SCONE_BIN" fspf addr volume.fspf /scone-test-fspf --encrypted --kernel enc >/dev/null &&
			"$SCONE_BIN" fspf addf volume.fspf /scone-test-fspf native enc >/dev/null
	) || fail "scone fspf"
	line=$(cd "$CASE_DIR/fs" && "$SCONE_BIN" fspf encrypt volume.fspf) || fail "scone fspf encrypt"
	key=$(echo "$line" | sed 's/.* key: //')
	tag=$(echo "$line" | sed 's/.* tag: \([0-9a-f]*\) .*/\1/')
	rm -rf "$CASE_DIR/fs/native"
	cp -a "$CASE_DIR/fs" "$CASE_DIR/fs.old"
	cat >"$CASE_DIR/fs.py" <<'PY'
import os, sys
d = "/scone-test-fspf"
print("READ=" + open(d + "/a.txt").read().strip())
if sys.argv[1] == "write":
    open(d + "/b.txt", "w").write("written under SCONE_FSPF\n")
print("LIST=" + ",".join(sorted(os.listdir(d))))
print("KEY_IN_PROC=%s" % (("SCONE_FSPF_KEY=" + os.environ.get("K", "-")).encode() in open("/proc/self/environ", "rb").read()))
print("VARS=" + ",".join(sorted(k for k in os.environ if k.startswith("SCONE_FSPF"))))
PY
	run_cmd env -i PATH=/usr/bin:/bin K="$key" SCONE_FSPF="$CASE_DIR/fs/volume.fspf" SCONE_FSPF_KEY="$key" \
		SCONE_FSPF_TAG="$tag" /bin/sh -c 'LD_PRELOAD=$0 exec "$@"' "$lib" "$PY" "$CASE_DIR/fs.py" write
	[ "$RC" -eq 0 ] || { show_output; fail "python3 under SCONE_FSPF"; }
	grep -qx "READ=fspf volume SCONE-SECRET-MARKER-7f3a9" "$OUT" || { show_output; fail "reading a file of the fspf"; }
	grep -qx "LIST=a.txt,b.txt" "$OUT" || { show_output; fail "listing the region"; }
	grep -qx "KEY_IN_PROC=False" "$OUT" || { show_output; fail "SCONE_FSPF_KEY visible in /proc/PID/environ"; }
	grep -qx "VARS=" "$OUT" || { show_output; fail "SCONE_FSPF* passed on to the program"; }
	newtag=$(sed -n 's/^scone: warn: fspf .*: new tag \([0-9a-f]*\) .*/\1/p' "$ERR")
	[ -n "$newtag" ] && [ "$newtag" != "$tag" ] || { show_output; fail "no new tag printed at exit"; }
	[ ! -e /scone-test-fspf ] || fail "/scone-test-fspf exists on the host"
	if grep -rqa -e "SCONE-SECRET-MARKER" -e "written under" "$CASE_DIR/fs"; then fail "plaintext in the fspf's host directory"; fi
	# The next run with the new tag sees b.txt; the directory rolled back to its copy is refused.
	run_cmd env -i PATH=/usr/bin:/bin SCONE_FSPF="$CASE_DIR/fs/volume.fspf" SCONE_FSPF_KEY="$key" \
		SCONE_FSPF_TAG="$newtag" /bin/sh -c 'LD_PRELOAD=$0 exec "$@"' "$lib" "$PY" "$CASE_DIR/fs.py" read
	[ "$RC" -eq 0 ] && grep -qx "LIST=a.txt,b.txt" "$OUT" || { show_output; fail "second run with the new tag"; }
	rm -rf "$CASE_DIR/fs"
	mv "$CASE_DIR/fs.old" "$CASE_DIR/fs"
	run_cmd env -i PATH=/usr/bin:/bin SCONE_FSPF="$CASE_DIR/fs/volume.fspf" SCONE_FSPF_KEY="$key" \
		SCONE_FSPF_TAG="$newtag" /bin/sh -c 'LD_PRELOAD=$0 exec "$@"' "$lib" "$PY" "$CASE_DIR/fs.py" read
	[ "$RC" -eq 1 ] && [ ! -s "$OUT" ] && grep -q "scone: error: cannot start: SCONE_FSPF: .*ROLLBACK" "$ERR" ||
		{ show_output; fail "a rolled-back fspf directory must refuse the start"; }
}

case_sqlite() {
	[ -x "$SQLITE" ] || t_skip_case "sqlite3 not installed (scripts/install-deps.sh)"
	start
	# 100,000 rows in 10 transactions, then a second run reads them back.
	{
		echo "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
		for k in $(seq 0 9); do
			echo "BEGIN;"
			echo "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10000)"
			echo "  INSERT INTO t(v) SELECT 'row-text-' || (x + $((k * 10000))) FROM c;"
			echo "COMMIT;"
		done
	} >"$CASE_DIR/insert.sql"
	expect_ok scone run --config-id vol/sql -- "$SQLITE" ".read $CASE_DIR/insert.sql"
	expect_ok scone run --config-id vol/sql -- "$SQLITE" \
		"SELECT count(*) FROM t; SELECT v FROM t WHERE id = 77777; PRAGMA integrity_check;"
	assert_eq "100000
row-text-77777
ok" "$(cat "$OUT")" "count, a row and integrity_check on the second run"
	if grep -rqa "SQLite format 3" "$CASE_DIR/data"; then fail "the SQLite header is on disk"; fi
	if grep -rqa "row-text-" "$CASE_DIR/data"; then fail "row text is on disk"; fi
	[ ! -e "$CASE_DIR/data/db.sqlite" ] || fail "db.sqlite exists in plaintext on the host"
}

# A process a program left behind (its parent, holding the volumes, exited) writes "<pid> <result>"
# into $CASE_DIR/$1 when done: wait for the file ($2 tenths of a second, default 300), then for
# that process to end.
wait_left_behind() {
	local waited=0 pid
	while [ ! -s "$CASE_DIR/$1" ] && [ $waited -lt "${2:-300}" ]; do sleep 0.1; waited=$((waited + 1)); done
	read -r pid _ <"$CASE_DIR/$1" || fail "$1: the process left behind did not finish"
	waited=0
	while kill -0 "$pid" 2>/dev/null && [ $waited -lt 300 ]; do sleep 0.1; waited=$((waited + 1)); done
}

# Shared writable mappings of volume files (docs/runtime.md, "Shared writable
# mappings"): one window per file, coherent with reads, writes, truncation and
# a forked child, its stores in the file after fsync; SQLite in WAL mode (the
# sqlite3 shell, Python's threads and a forked child, a SIGKILL in a
# transaction); nothing of it in plaintext on the host.
case_shared_mappings() {
	start
	expect_ok scone run --config-id vol/py -- "$PY" shmap
	grep -qxF "TWO=b'SHARED-STORE';PREAD=b'SHARED-STORE';SEEN=b'FD-WRITE';RO=b'LATER';CHILD=b'CHILD-STORE',b'CHILD';TRUNC=b'SHARED\\x00\\x00\\x00\\x00\\x00\\x00';MAPSYNC=ENOTSUP;EXECD=LATER,NEWER,THERE,b'BESIDE',b'THERE'" "$OUT" ||
		{ show_output; fail "shared mappings of one file do not meet"; }
	run_cmd scone run --config-id vol/py -- "$PY" shmapedge
	[ "$RC" -eq 137 ] || { show_output; fail "shmapedge: expected the process killed (137), got $RC"; }
	grep -qxF "PATH=b'\\x00\\x00\\x00\\x00',b'\\x00\\x00\\x00\\x00';OTRUNC=b'B',b'B\\x00';PASTEOF=b'\\x00\\x00\\x00\\x00\\x00\\x00\\x00';BESIDE=b'BESIDE',b'BESIDE';MEMFD=3,EBADF,EBADF;MREMAP=True,0" "$OUT" ||
		{ show_output; fail "a window after changes by path, O_TRUNC, a program beside, its memfd attacked, stores past the end, mremap"; }
	expect_ok scone run --config-id vol/py -- "$PY" shmapedgecheck
	grep -qxF "EDGE=b'B',1;b'BESIDE',122;b'\\x00\\x00\\x00\\x00\\x00\\x00\\x00',b'0123';b'MREMAPPED';b'HHHH';4096" "$OUT" ||
		{ show_output; fail "the files after a window's edge cases (a store undid a write, or reached the host)"; }
	T_CMD_TIMEOUT=30 run_cmd scone run --config-id vol/py -- "$PY" shmaplife
	[ "$RC" -eq 137 ] || { show_output; fail "shmaplife: expected the process killed (137), got $RC (a deadlock ends in a timeout)"; }
	grep -qx "LAST_UNMAP=done" "$OUT" || { show_output; fail "the last munmap after the fd's close did not return"; }
	expect_ok scone run --config-id vol/py -- "$PY" shmaplifecheck
	grep -qxF "LIFE=b'CLOSED',b'CHILD'" "$OUT" || { show_output; fail "a store lost after its fsync returned (a child's), or at the last munmap"; }
	# A change of holder (an exit, an exec) while another process maps a window.
	expect_ok scone run --config-id vol/py -- "$PY" shmapexec
	grep -qxF "EXECD=b'BEFORE',b'AFTER'" "$OUT" || { show_output; fail "a window across the holder's exec"; }
	expect_ok scone run --config-id vol/py -- "$PY" shmapheir
	wait_left_behind heir.done
	grep -qF "HEIR=b'BEFORE',b'AFTER'" "$CASE_DIR/heir.done" || { cat "$CASE_DIR/heir.done"; fail "a window across the holder's exit"; }
	sleep 0.5 # (the first child's own exit)
	expect_ok scone run --config-id vol/py -- "$PY" shmapheircheck
	grep -qxF "FILES=b'BEFORE',b'AFTER';b'BEFORE',b'AFTER'" "$OUT" || { show_output; fail "stores lost across a change of holder"; }
	local c
	for c in shmapreuse shmaprotake; do
		expect_ok scone run --config-id vol/py -- "$PY" "$c"
		wait_left_behind "$c.done"
	done
	grep -qF "FILE=b'a new file o'" "$CASE_DIR/shmapreuse.done" || { cat "$CASE_DIR/shmapreuse.done"; fail "a removed file's window written into the new file of its name"; }
	grep -qF "RO=b'old';SYNC=ok;SYNC2=ok;FILE=b'new-FILEOLW-'" "$CASE_DIR/shmaprotake.done" || { cat "$CASE_DIR/shmaprotake.done"; fail "a window taken in through a read-only fd broke the commits"; }
	expect_ok scone run --config-id vol/py -- "$PY" shmaprace
	grep -qxF "RACE=0,{}" "$OUT" || { show_output; fail "a store lost, or a mapping failed, while the holder dropped and made the window"; }
	expect_ok scone run --config-id vol/py -- "$PY" shmapro
	grep -qxF "MPROTECT=-1 True,b'........';MANY=200" "$OUT" || { show_output; fail "a read-only fd's mapping made writable, or the windows' table filled"; }
	expect_ok scone run --config-id vol/py -- "$PY" shmapcheck
	grep -qxF "FILE=12288,b'LATER',b'FD-WRITE',b'CHILD',b'BESIDE',b'SHARED\\x00\\x00\\x00\\x00\\x00\\x00',b'AGAIN\\x00\\x00\\x00\\x00\\x00\\x00'" "$OUT" ||
		{ show_output; fail "a mapping's stores are not in the file after fsync"; }
	expect_ok scone run --config-id vol/sql -- "$SQLITE" \
		"PRAGMA journal_mode=WAL; CREATE TABLE s(v); INSERT INTO s VALUES('wal-shell-row'); SELECT count(*) FROM s;"
	assert_eq "wal
1" "$(cat "$OUT")" "the sqlite3 shell in WAL mode"
	expect_ok scone run --config-id vol/sql -- "$SQLITE" "INSERT INTO s VALUES('again'); SELECT count(*) FROM s; PRAGMA integrity_check;"
	assert_eq "2
ok" "$(cat "$OUT")" "the sqlite3 shell in WAL mode, a second run"
	expect_ok scone run --config-id vol/py -- "$PY" wal
	grep -qx "ROWS=450,ok" "$OUT" || { show_output; fail "SQLite WAL: threads and a forked child"; }
	run_cmd scone run --config-id vol/py -- "$PY" walkill
	[ "$RC" -eq 137 ] || { show_output; fail "walkill: expected the process killed (137), got $RC"; }
	expect_ok scone run --config-id vol/py -- "$PY" walcheck
	grep -qx "WALCHECK=750,0,ok" "$OUT" || { show_output; fail "SQLite WAL after a SIGKILL in a transaction"; }
	# Processes that did not exist when a window was made: forked ones, sqlite3 in a shell script.
	T_CMD_TIMEOUT=120 expect_ok scone run --config-id vol/py -- "$PY" walprocs
	grep -qx "PROCS=550,ok,150,0" "$OUT" || { show_output; fail "SQLite WAL: forked processes and sqlite3 shells of a script"; }
	# The holder leaves while its child writes; the child's exit is waited for by its pid.
	expect_ok scone run --config-id vol/py -- "$PY" waltakeover
	wait_left_behind takeover.done 600
	expect_ok scone run --config-id vol/py -- "$PY" walprocscheck
	grep -qx "WALPROCS=550,ok;300,ok" "$OUT" || { show_output; fail "SQLite WAL after the processes and a change of holder"; }
	if grep -rqaE "SHARED-STORE|CHILD-STORE|BESIDE|wal-row-|wal-proc-row|wal-shell-row|SQLite format 3" "$CASE_DIR/data"; then
		fail "plaintext on the host"
	fi
}

run_case "runtime volume: python3 writes, appends, lists, renames, deletes; only ciphertext on disk; a rollback is refused" case_python

case_fdapi() {
	start
	printf 'from the host SCONE-SECRET-MARKER-%s\n' 7f3a9 >"$CASE_DIR/host.txt"
	expect_ok scone run --config-id vol/py -- "$PY" fdapi
	local want
	for want in "WRITEV=17" "READV=17,b'alpha-',b'beta-gamma\\n'" "PREADV=6,b'BETA-g'" "DUP=b'BETA'" \
		"DUP2=b'alpha'" "INHERIT=True" "BLOCKING=False" "SENDFILE=17" "PIPE=b'alpha-BETA-gamma\\n'" \
		"CFR=17" "COPY=b'alpha-BETA-gamma\\n'" "SENDIN=40" "IN=b'from the host SCONE-SECRET-MARKER-7f3a9\\n'" \
		"MMAP=b'BETA',17" "FDOPEN='fdopen SCONE-SECRET-MARKER-7f3a9\\n'" \
		"SCANDIR=copy.txt,fdopen.txt,in.txt,vec.txt" "COPY2=1234567890,$(stat --format=%a "$CASE_DIR/host.txt"),b'from'"; do
		grep -qxF "$want" "$OUT" || { show_output; fail "expected $want"; }
	done
	if grep -rqa -e "SCONE-SECRET-MARKER" -e "alpha-" "$CASE_DIR/data"; then fail "plaintext on disk"; fi
	# The data is back on the next run.
	expect_ok scone run --config-id vol/py -- "$PY" fdapi
	grep -qxF "COPY=b'alpha-BETA-gamma\\n'" "$OUT" || { show_output; fail "second run"; }
}

# liburing and libaio make their system calls themselves: refused where they are set up (-ENOSYS),
# so a program falls back to ordinary reads and writes instead of spinning on empty placeholders.
case_async_libraries() {
	local libs="" cflags=""
	[ -e /usr/lib/x86_64-linux-gnu/liburing.so ] && { libs="$libs -luring"; cflags="$cflags -DURING"; }
	[ -e /usr/lib/x86_64-linux-gnu/libaio.so ] && { libs="$libs -laio"; cflags="$cflags -DAIO"; }
	[ -n "$libs" ] || t_skip_case "neither liburing-dev nor libaio-dev installed (scripts/install-deps.sh)"
	cat >async.c <<'C'
#include <stdio.h>
int io_uring_queue_init(unsigned entries, void *ring, unsigned flags);
int io_setup(int maxevents, void *ctx);
int main(void)
{
	static char ring[4096];
	void *ctx = 0;
#ifdef URING
	printf("URING=%d\n", io_uring_queue_init(8, ring, 0));
#endif
#ifdef AIO
	printf("AIO=%d\n", io_setup(8, &ctx));
#endif
	(void)ring;
	(void)ctx;
	return 0;
}
C
	# shellcheck disable=SC2086
	"${CC:-cc}" $cflags -o async async.c $libs || fail "cannot build the liburing/libaio check"
	las_attestation "$PY" "$SQLITE" "$CASE_DIR/async"
	start
	expect_ok ./async
	if grep -q '=-' "$OUT"; then show_output; fail "io_uring/AIO unavailable even without the runtime"; fi
	expect_ok scone run --config-id vol/async -- "$CASE_DIR/async"
	if grep -qv '=-38$' "$OUT"; then show_output; fail "io_uring/AIO not refused at setup under the runtime"; fi
}

# vfork() marks only its calling thread as a vfork child (proc_vfork.c): the parent's other threads
# open and close volume files meanwhile; the child's close leaves the parent's fd as it was, and its
# open is refused (its memory is the parent's). The same through clone(CLONE_VM | CLONE_VFORK).
case_vfork_mark() {
	cat >vf.c <<'C'
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
static char dir[4096];
static int vfd, child_errno, child_close;
static volatile int done;
static void *opener(void *arg)
{
	char p[4200];
	long fails = 0;
	(void)arg;
	for (int i = 0; !done || i < 50; i++) {
		snprintf(p, sizeof(p), "%s/t%d.txt", dir, i % 8);
		int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || write(fd, "thread\n", 7) != 7 || close(fd) != 0)
			fails++;
	}
	return (void *)fails;
}
static void in_child(void)
{
	char p[4200];
	int fd;
	snprintf(p, sizeof(p), "%s/child.txt", dir);
	child_close = close(vfd);
	fd = open(p, O_RDWR | O_CREAT, 0600);
	child_errno = fd < 0 ? errno : 0;
	usleep(20000); /* the other thread opens and closes meanwhile */
}
static int clone_child(void *arg)
{
	(void)arg;
	in_child();
	_exit(0);
}
int main(void)
{
	static char stack[1 << 16];
	char p[4200], back[64] = {0};
	pthread_t t;
	void *fails;
	int bad = 0, st;
	ssize_t n = readlink("/proc/self/exe", p, sizeof(p) - 1);
	p[n > 0 ? n : 0] = 0;
	snprintf(dir, sizeof(dir), "%s/data", dirname(p));
	snprintf(p, sizeof(p), "%s/vf.txt", dir);
	vfd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (vfd < 0 || write(vfd, "parent\n", 7) != 7)
		return 2;
	pthread_create(&t, NULL, opener, NULL);
	for (int i = 0; i < 20; i++) {
		pid_t pid = vfork();
		if (pid == 0) {
			in_child();
			_exit(0);
		}
		waitpid(pid, &st, 0);
		if (child_close != 0 || child_errno != ENOTSUP)
			printf("vfork child %d: close %d, open errno %d\n", i, child_close, child_errno), bad++;
	}
	printf("VFORK_CHILD_BAD=%d\n", bad);
	bad = 0;
	for (int i = 0; i < 5; i++) {
		pid_t pid = clone(clone_child, stack + sizeof(stack), CLONE_VM | CLONE_VFORK | SIGCHLD, NULL);
		waitpid(pid, &st, 0);
		bad += child_close != 0 || child_errno != ENOTSUP;
	}
	printf("CLONE_CHILD_BAD=%d\n", bad);
	done = 1;
	pthread_join(t, &fails);
	printf("THREAD_FAILS=%ld\n", (long)fails);
	if (write(vfd, "after\n", 6) != 6 || pread(vfd, back, sizeof(back) - 1, 0) != 13)
		return 3;
	printf("VFD=%s\n", strcmp(back, "parent\nafter\n") == 0 ? "ok" : "bad");
	return close(vfd) == 0 ? 0 : 4;
}
C
	"${CC:-cc}" -O1 -pthread -o async vf.c || fail "cannot build the vfork check"
	las_attestation "$PY" "$SQLITE" "$CASE_DIR/async"
	start
	expect_ok scone run --config-id vol/async -- "$CASE_DIR/async"
	for want in VFORK_CHILD_BAD=0 CLONE_CHILD_BAD=0 THREAD_FAILS=0 VFD=ok; do
		grep -qx "$want" "$OUT" || { show_output; fail "vfork child or its parent's other thread: want $want"; }
	done
}

# The C checks' helpers: paths on the volume (data/ beside the program), files with a content.
write_volc_h() {
	cat >volc.h <<'C'
static char dir[4096], self[4096];
static char *vp(const char *name)
{
	static char b[8][4200];
	static int i;
	i = (i + 1) % 8;
	snprintf(b[i], sizeof(b[i]), "%s/%s", dir, name);
	return b[i];
}
static void mk(const char *name, const char *content)
{
	int fd = open(vp(name), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, content, strlen(content)) < 0 || close(fd) != 0)
		exit(9);
}
C
}

# Build the C check $1 into async (the session's service), run it under the runtime and want each
# further argument as a line of its output ($2 says what failed).
run_c_check() {
	local src=$1 what=$2 want
	shift 2
	write_volc_h
	"${CC:-cc}" -O1 -pthread -o async "$src" || fail "cannot build $src"
	las_attestation "$PY" "$SQLITE" "$CASE_DIR/async"
	start
	expect_ok scone run --config-id vol/async -- "$CASE_DIR/async"
	for want in "$@"; do
		grep -qx "$want" "$OUT" || { show_output; fail "$what: want $want"; }
	done
}

# Placeholders kept for reuse and the vfork mark, against what may move or share them behind the
# interposers: an offset moved by syscall(SYS_lseek), a description sent over SCM_RIGHTS, a vfork
# child that execs with a file another thread closes meanwhile, signal handlers run right after a
# vfork (one that longjmps out), clone without CLONE_VM and __clone with it, a low fd limit.
case_placeholder_attacks() {
	cat >pa.c <<'C'
/* Placeholders kept for reuse and the vfork mark, against what may share or move them. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
extern int __clone(int (*fn)(void *), void *stack, int flags, void *arg, ...);
#include "volc.h"
static int pooled(const char *name) /* open, pread, close: the placeholder is kept */
{
	char c;
	int fd = open(vp(name), O_RDONLY);
	if (fd < 0 || pread(fd, &c, 1, 0) != 1)
		return -1;
	return close(fd);
}
static const char *read_all(const char *name)
{
	static char buf[128];
	int fd = open(vp(name), O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = 0;
	if (fd >= 0)
		close(fd);
	return buf;
}
/* An offset moved by syscall(SYS_lseek), and a description sent over SCM_RIGHTS: neither is kept. */
static void moved(void)
{
	int fd, fd2, sv[2];
	char cb[CMSG_SPACE(sizeof(int))], c = 'x';
	struct iovec io = {&c, 1};
	struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = cb, .msg_controllen = sizeof(cb)};
	struct cmsghdr *h;
	mk("a.txt", "AAAAAAAAAAAAAAAAAAAA");
	mk("b.txt", "0123456789abcdefghij");
	pooled("a.txt");
	fd = open(vp("a.txt"), O_RDONLY);
	syscall(SYS_lseek, fd, 10, SEEK_SET);
	close(fd);
	printf("RAWSEEK=%s\n", strcmp(read_all("b.txt"), "0123456789abcdefghij") ? "carried" : "ok");
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	fd = open(vp("a.txt"), O_RDONLY);
	h = CMSG_FIRSTHDR(&m);
	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_RIGHTS;
	h->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(h), &fd, sizeof(int));
	if (sendmsg(sv[0], &m, 0) != 1 || recvmsg(sv[1], &m, 0) != 1)
		exit(8);
	memcpy(&fd2, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof(int));
	close(fd);
	fd = open(vp("b.txt"), O_RDONLY);
	lseek(fd2, 15, SEEK_SET); /* (the received fd: the runtime does not serve it) */
	char buf[64] = {0};
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	printf("SCM_RIGHTS=%s\n", n == 20 && !strcmp(buf, "0123456789abcdefghij") ? "ok" : "carried");
	close(fd);
	close(fd2);
}
/* A vfork child dup2's a file onto its stdout and execs while another thread closes that file and opens another. */
static int afd, bfd = -1;
static void *swapper(void *arg)
{
	(void)arg;
	usleep(100000);
	close(afd);
	bfd = open(vp("vb.txt"), O_WRONLY);
	return NULL;
}
static void vfork_swap(void)
{
	pthread_t t;
	int st;
	mk("va.txt", "");
	mk("vb.txt", "");
	afd = open(vp("va.txt"), O_WRONLY | O_CLOEXEC);
	pthread_create(&t, NULL, swapper, NULL);
	pid_t pid = vfork();
	if (pid == 0) {
		dup2(afd, 1);
		usleep(300000);
		execl(self, self, "child", (char *)NULL);
		_exit(127);
	}
	waitpid(pid, &st, 0);
	pthread_join(t, NULL);
	close(bfd);
	printf("VFORK_SWAP=%s\n", strlen(read_all("vb.txt")) == 0 ? "ok" : "wrong file");
}
/* A signal handler run in the parent right after vfork opens a volume file; one that longjmps out. */
static volatile int h_ran, h_err, armed;
static sigjmp_buf jb;
static void on_chld(int sig)
{
	(void)sig;
	if (armed) {
		armed = 0;
		siglongjmp(jb, 1);
	}
	int fd = open(vp("log.txt"), O_WRONLY | O_CREAT | O_APPEND, 0600);
	h_err = fd < 0 ? errno : 0;
	if (fd >= 0)
		close(fd);
	h_ran = 1;
}
static void vfork_signals(void)
{
	struct sigaction sa = {.sa_handler = on_chld};
	int bad = 0, fd;
	sigaction(SIGCHLD, &sa, NULL);
	for (int i = 0; i < 20; i++) {
		h_ran = 0;
		pid_t pid = vfork();
		if (pid == 0)
			_exit(0);
		while (!h_ran)
			usleep(1000);
		bad += h_err != 0;
		waitpid(pid, NULL, 0);
	}
	printf("HANDLER_OPEN_FAILED=%d\n", bad);
	for (int i = 0; i < 20; i++) {
		if (sigsetjmp(jb, 1))
			break;
		armed = 1;
		if (vfork() == 0)
			_exit(0);
		while (armed)
			usleep(1000);
	}
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	fd = open(vp("later.txt"), O_RDWR | O_CREAT, 0600);
	printf("AFTER_LONGJMP=%s\n", fd < 0 ? strerror(errno) : "ok");
	close(fd);
	signal(SIGCHLD, SIG_DFL);
}
/* clone without CLONE_VM (a fork without fork handlers) and __clone with CLONE_VM. */
static int vfd, c_close, c_errno;
static char c_read[16];
static int nonvm_child(void *arg)
{
	(void)arg;
	int fd = open(vp("c.txt"), O_RDONLY);
	if (fd >= 0) {
		ssize_t n = read(fd, c_read, 5);
		usleep(200000);
		n += read(fd, c_read + 5, 5);
		_exit(n == 10 && !strcmp(c_read, "CCCC0CCCC1") ? 0 : 3);
	}
	_exit(errno == ENOTSUP ? 0 : 4);
}
static int vm_child(void *arg)
{
	(void)arg;
	c_close = close(vfd);
	int fd = open(vp("child.txt"), O_RDWR | O_CREAT, 0600);
	c_errno = fd < 0 ? errno : 0;
	_exit(0);
}
static void clones(void)
{
	static char stack[1 << 16];
	char buf[32] = {0}, back[32] = {0};
	int st, fd;
	mk("x.txt", "xxxxxxxxxxxxxxxxxxxx");
	mk("cb.txt", "BBBBBBBBBBBBBBBBBBBB");
	mk("c.txt", "CCCC0CCCC1CCCC2CCCC3");
	pooled("x.txt");
	pid_t pid = clone(nonvm_child, stack + sizeof(stack), SIGCHLD, NULL);
	usleep(100000);
	fd = open(vp("cb.txt"), O_RDONLY);
	ssize_t n = read(fd, buf, 10);
	waitpid(pid, &st, 0);
	close(fd);
	printf("CLONE_FORK=%s\n", n == 10 && !strcmp(buf, "BBBBBBBBBB") && WIFEXITED(st) && !WEXITSTATUS(st) ? "ok" : "shared");
	vfd = open(vp("v.txt"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (write(vfd, "parent\n", 7) != 7)
		exit(7);
	pid = __clone(vm_child, stack + sizeof(stack), CLONE_VM | CLONE_VFORK | SIGCHLD, NULL);
	waitpid(pid, &st, 0);
	n = write(vfd, "after\n", 6);
	pread(vfd, back, sizeof(back) - 1, 0);
	printf("CLONE_VM=%s\n", c_errno == ENOTSUP && n == 6 && !strcmp(back, "parent\nafter\n") ? "ok" : "parent's table changed");
	close(vfd);
}
/* A low fd limit: volume opens end in EMFILE (not EIO); dup2 onto any free number works. */
static void low_limit(void)
{
	int st;
	pid_t pid = fork();
	if (pid == 0) {
		struct rlimit rl = {128, 128};
		int fds[200], k, hits = 0, d, e = 0;
		char name[32];
		setrlimit(RLIMIT_NOFILE, &rl);
		for (int i = 0; i < 130; i++) {
			snprintf(name, sizeof(name), "f%d", i % 40);
			if (i < 40)
				mk(name, "x");
		}
		for (k = 0; k < 130; k++) {
			snprintf(name, sizeof(name), "f%d", k % 40);
			if ((fds[k] = open(vp(name), O_RDONLY)) < 0) {
				e = errno;
				break;
			}
		}
		for (int i = 0; i < k; i++)
			close(fds[i]);
		d = open("/dev/null", O_RDONLY);
		for (int t = 64; t < 128; t++) {
			if (dup2(d, t) < 0)
				hits++;
			else
				close(t);
		}
		printf("LOW_LIMIT=%s\n", e == EMFILE && hits == 0 ? "ok" : strerror(e));
		if (hits)
			printf("DUP2_REFUSED=%d\n", hits);
		fflush(stdout);
		_exit(0);
	}
	waitpid(pid, &st, 0);
}
int main(int argc, char **argv)
{
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[n > 0 ? n : 0] = 0;
	if (argc > 1) /* the vfork child's program: its stdout is va.txt */
		return write(1, "meant-for-a\n", 12) == 12 ? 0 : 1;
	snprintf(dir, sizeof(dir), "%s", self);
	snprintf(dir, sizeof(dir), "%s/data", dirname(self));
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[n > 0 ? n : 0] = 0;
	setvbuf(stdout, NULL, _IONBF, 0);
	moved();
	vfork_swap();
	vfork_signals();
	clones();
	low_limit();
	/* (va.txt: the line, or nothing where the other thread's close came first: never another file) */
	printf("VA=%s", read_all("va.txt"));
	return 0;
}
C
	run_c_check pa.c "placeholders or the vfork mark" RAWSEEK=ok SCM_RIGHTS=ok VFORK_SWAP=ok \
		HANDLER_OPEN_FAILED=0 AFTER_LONGJMP=ok CLONE_FORK=ok CLONE_VM=ok LOW_LIMIT=ok
}

# The same against what hands a placeholder on or changes it around the runtime: libc's ioctl,
# sendmmsg and syscall(SYS_sendmsg) with SCM_RIGHTS, a control message longer than its buffer, the
# program's own opens meeting EMFILE, lockf (glibc's locks the placeholder), a vfork child's dup2 onto a kept master, dup2 onto a master
# from a signal handler that interrupts shield calls, an exec racing a thread that closes an
# inherited fd and opens another file at its number.
case_placeholder_handed_on() {
	cat >pa2.c <<'C'
/* Kept placeholders against what hands them on or changes them around the runtime (second review). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/pidfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "volc.h"
static int fd_number(const char *s)
{
	return (int)strtol(s, NULL, 10);
}
/* memfds at or above lo (the runtime's masters sit in the upper half of the limit) */
static int memfds(int lo, int *out, int max)
{
	char p[64], l[256];
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	while ((e = readdir(d))) {
		int fd = fd_number(e->d_name);
		ssize_t k;
		snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
		if (fd < lo || (k = readlink(p, l, sizeof(l) - 1)) <= 0)
			continue;
		l[k] = 0;
		if (!strncmp(l, "/memfd:scone-shield", 19) && n < max)
			out[n++] = fd;
	}
	closedir(d);
	return n;
}
static int upper(void)
{
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	return (int)(rl.rlim_cur / 2);
}
static void ioctl_flags(void)
{
	char c;
	int one = 1, fa = open(vp("a.txt"), O_RDONLY), fb;
	pread(fa, &c, 1, 0);
	ioctl(fa, FIONBIO, &one);
	close(fa);
	fb = open(vp("b.txt"), O_RDONLY);
	printf("IOCTL=%s\n", fcntl(fb, F_GETFL) & O_NONBLOCK ? "carried" : "ok");
	close(fb);
}
/* The receiver of a volume fd moves its offset after the sender closed it and opened another file. */
static void rights(int how)
{
	int sv[2], st, fa, fb, r;
	char c, buf[8] = {0}, cb[CMSG_SPACE(sizeof(int))] = {0};
	struct iovec io = {&c, 1};
	struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = cb, .msg_controllen = sizeof(cb)};
	struct cmsghdr *cm;
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	pid_t pid = fork();
	if (pid == 0) {
		close(sv[0]);
		if (recvmsg(sv[1], &m, 0) != 1)
			_exit(3);
		memcpy(&r, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof(int));
		read(sv[1], &c, 1);
		lseek(r, 5, SEEK_SET);
		write(sv[1], "k", 1);
		read(sv[1], &c, 1);
		_exit(0);
	}
	close(sv[1]);
	fa = open(vp("a.txt"), O_RDONLY);
	pread(fa, &c, 1, 0);
	cm = CMSG_FIRSTHDR(&m);
	cm->cmsg_level = SOL_SOCKET, cm->cmsg_type = SCM_RIGHTS, cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fa, sizeof(int));
	if (how == 1) {
		struct mmsghdr mm = {.msg_hdr = m};
		sendmmsg(sv[0], &mm, 1, 0);
	} else {
		syscall(SYS_sendmsg, sv[0], &m, 0);
	}
	close(fa);
	fb = open(vp("b.txt"), O_RDONLY);
	write(sv[0], "o", 1);
	read(sv[0], &c, 1);
	read(fb, buf, 4);
	printf("%s=%s\n", how == 1 ? "SENDMMSG" : "SYS_SENDMSG", strcmp(buf, "0123") ? "carried" : "ok");
	close(fb);
	write(sv[0], "e", 1);
	waitpid(pid, &st, 0);
	close(sv[0]);
}
/* A control message whose length runs past msg_controllen: EINVAL, not a crash. */
static void bogus_cmsg(void)
{
	int st;
	pid_t pid = fork();
	if (pid == 0) {
		int sv[2];
		long pg = sysconf(_SC_PAGESIZE);
		char *p = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		struct cmsghdr *cm = (struct cmsghdr *)(p + pg - sizeof(struct cmsghdr) - 8);
		struct iovec io = {"x", 1};
		struct msghdr m = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = cm, .msg_controllen = sizeof(*cm) + 8};
		socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
		munmap(p + pg, pg);
		cm->cmsg_len = 1 << 20, cm->cmsg_level = SOL_SOCKET, cm->cmsg_type = SCM_RIGHTS;
		_exit(sendmsg(sv[0], &m, 0) < 0 ? 0 : 1);
	}
	waitpid(pid, &st, 0);
	printf("BOGUS_CMSG=%s\n", WIFEXITED(st) && !WEXITSTATUS(st) ? "ok" : "crashed");
}
/* The kept placeholders give their fds back when the program's own opens run out. */
static int count_opens(void)
{
	static int fds[70000];
	int n = 0, fd;
	while (n < 70000 && (fd = open("/dev/null", O_RDONLY)) >= 0)
		fds[n++] = fd;
	for (int i = 0; i < n; i++)
		close(fds[i]);
	return n;
}
/* fds a maker gives until EMFILE (how many it made: 0 at the end); all closed again */
static int make_pipe(int *fds)
{
	return pipe(fds) == 0 ? 2 : 0;
}
static int make_timerfd(int *fds)
{
	return (fds[0] = timerfd_create(CLOCK_MONOTONIC, 0)) >= 0;
}
static int make_signalfd(int *fds)
{
	sigset_t m;
	sigemptyset(&m);
	return (fds[0] = signalfd(-1, &m, 0)) >= 0;
}
static int make_memfd(int *fds)
{
	return (fds[0] = memfd_create("emfile", 0)) >= 0;
}
static int make_pidfd(int *fds)
{
	return (fds[0] = pidfd_open(getpid(), 0)) >= 0;
}
static int count_made(int (*make)(int *))
{
	static int fds[70000];
	int n = 0, k;
	while (n + 1 < 70000 && (k = make(fds + n)) > 0)
		n += k;
	for (int i = 0; i < n; i++)
		close(fds[i]);
	return n;
}
/* The kept placeholders' fds come back at EMFILE, for open and for pipe alike. */
static void keep_some(void)
{
	int fds[40];
	for (int i = 0; i < 40; i++)
		fds[i] = open(vp("a.txt"), O_RDONLY);
	for (int i = 0; i < 40; i++)
		close(fds[i]);
}
/* fds each maker gives before and after placeholders are kept: the same */
static void emfile(void)
{
	static const struct {
		const char *what;
		int (*make)(int *);
	} makers[] = {{"PIPE", make_pipe},     {"TIMERFD", make_timerfd}, {"SIGNALFD", make_signalfd},
		      {"MEMFD", make_memfd},   {"PIDFD", make_pidfd}};
	int c0 = count_opens(), c1, n0[5], n1;
	for (int i = 0; i < 5; i++)
		n0[i] = count_made(makers[i].make);
	for (int i = 0; i < 5; i++) {
		keep_some();
		n1 = count_made(makers[i].make);
		printf("EMFILE_%s=%s\n", makers[i].what, n0[i] == n1 ? "ok" : "fewer");
		if (n0[i] != n1)
			printf("%s: %d fds, then %d\n", makers[i].what, n0[i], n1);
	}
	keep_some();
	c1 = count_opens();
	printf("EMFILE=%s\n", c0 == c1 ? "ok" : "fewer");
}
/* A vfork child dup2's onto a kept master: the parent's master is neither leaked nor lost. */
static void vfork_evict(void)
{
	int ms[64], before, after;
	char c;
	for (int i = 0; i < 20; i++) {
		int f = open(vp("a.txt"), O_RDONLY), n;
		pread(f, &c, 1, 0);
		close(f);
		if ((n = memfds(upper(), ms, 64)) < 1)
			break;
		if (i == 0)
			before = n;
		pid_t pid = vfork();
		if (pid == 0) {
			dup2(0, ms[0]);
			_exit(0);
		}
		waitpid(pid, NULL, 0);
	}
	after = memfds(upper(), ms, 64);
	printf("VFORK_EVICT=%s\n", after <= before ? "ok" : "leaked");
}
/* dup2 onto a master from a signal handler interrupting shield operations: no deadlock. */
static int M, nullfd;
static volatile sig_atomic_t hits;
static pthread_t mainth;
static volatile int stop;
static void on_prof(int sig)
{
	int e = errno;
	(void)sig;
	dup2(nullfd, M);
	hits++;
	errno = e;
}
static void *spam(void *a)
{
	(void)a;
	while (!stop) {
		pthread_kill(mainth, SIGPROF);
		for (volatile int i = 0; i < 200; i++)
			;
	}
	return NULL;
}
static void handler_dup2(void)
{
	int st;
	pid_t pid = fork();
	if (pid == 0) {
		char c;
		int ms[8], f;
		pthread_t th;
		struct sigaction sa = {.sa_handler = on_prof, .sa_flags = SA_RESTART};
		nullfd = open("/dev/null", O_RDONLY);
		f = open(vp("a.txt"), O_RDONLY);
		read(f, &c, 1);
		if (memfds(upper(), ms, 8) < 1)
			_exit(2);
		M = ms[0];
		sigaction(SIGPROF, &sa, NULL);
		mainth = pthread_self();
		pthread_create(&th, NULL, spam, NULL);
		for (time_t t0 = time(NULL); time(NULL) - t0 < 3;)
			pread(f, &c, 1, 0);
		stop = 1;
		pthread_join(th, NULL);
		_exit(0);
	}
	for (int i = 0; i < 150; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid) {
			printf("HANDLER_DUP2=%s\n", WIFEXITED(st) && !WEXITSTATUS(st) ? "ok" : "failed");
			return;
		}
		usleep(100000);
	}
	printf("HANDLER_DUP2=deadlock\n");
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
}
/* An exec racing another thread that closes an inherited fd and opens another file at its number. */
static int f1, marker_src;
static volatile int ready;
static void *swapper(void *a)
{
	char p[64], l[4200], c;
	int first = 3, f2;
	(void)a;
	while (fcntl(first, F_GETFD) >= 0)
		first++;
	ready = 1;
	for (int done = 0; !done;) {
		for (int g = first; g < first + 5 && !done; g++) {
			ssize_t k;
			snprintf(p, sizeof(p), "/proc/self/fd/%d", g);
			if ((k = readlink(p, l, sizeof(l) - 1)) > 0) {
				l[k] = 0;
				done = strstr(l, "scone-handover") != NULL;
			}
		}
	}
	close(f1);
	f2 = open(vp("file2.txt"), O_RDONLY);
	pread(f2, &c, 1, 0);
	if (f2 == f1)
		dup2(marker_src, 100);
	for (;;)
		pause();
	return NULL;
}
static void exec_adopt(void)
{
	int wrong = 0;
	mk("file1.txt", "file1-content");
	mk("file2.txt", "file2-content-longer");
	for (int i = 0; i < 20; i++) {
		int pfd[2], st;
		char out[512] = {0};
		ssize_t k, t = 0;
		pipe(pfd);
		pid_t pid = fork();
		if (pid == 0) {
			char num[16], c;
			pthread_t th;
			close(pfd[0]);
			dup2(pfd[1], 1);
			marker_src = open("/dev/null", O_RDONLY | O_CLOEXEC);
			f1 = open(vp("file1.txt"), O_RDONLY);
			pread(f1, &c, 1, 0);
			pthread_create(&th, NULL, swapper, NULL);
			while (!ready)
				;
			snprintf(num, sizeof(num), "%d", f1);
			execl(self, self, "child", num, (char *)NULL);
			_exit(127);
		}
		close(pfd[1]);
		while ((k = read(pfd[0], out + t, sizeof(out) - 1 - t)) > 0)
			t += k;
		close(pfd[0]);
		waitpid(pid, &st, 0);
		wrong += strstr(out, "WRONG") != NULL;
	}
	printf("EXEC_ADOPT=%s\n", wrong ? "wrong file" : "ok");
}
/* dup2 onto a kept master while other threads hold the shield for their reads, and in a vfork child. */
static volatile int hammering;
static void *hammer(void *a)
{
	char c;
	while (hammering)
		pread(*(int *)a, &c, 1, 0);
	return NULL;
}
static int kept_master(const int *busy, int nbusy)
{
	int ms[64], n = memfds(upper(), ms, 64);
	for (int i = 0; i < n; i++) {
		int taken = 0;
		for (int j = 0; j < nbusy; j++)
			taken |= ms[i] == busy[j];
		if (!taken)
			return ms[i];
	}
	return -1;
}
static void contended_dup2(void)
{
	int hf[2], hm[2], nullfd = open("/dev/null", O_RDONLY), ebadf = 0, m, f;
	volatile int r = -2;
	pthread_t th[2];
	char c;
	for (int i = 0; i < 2; i++) {
		hf[i] = open(vp("a.txt"), O_RDONLY);
		pread(hf[i], &c, 1, 0);
		hm[i] = kept_master(hm, i);
	}
	f = open(vp("a.txt"), O_RDONLY);
	pread(f, &c, 1, 0);
	close(f);
	m = kept_master(hm, 2);
	pid_t pid = vfork();
	if (pid == 0) {
		r = dup2(nullfd, m);
		_exit(0);
	}
	waitpid(pid, NULL, 0);
	printf("VFORK_DUP2=%s\n", m >= 0 && r == m ? "ok" : "refused");
	hammering = 1;
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, hammer, &hf[i]);
	for (int i = 0; i < 1000; i++) {
		f = open(vp("a.txt"), O_RDONLY);
		pread(f, &c, 1, 0);
		close(f);
		if ((m = kept_master(hm, 2)) < 0)
			continue;
		if (dup2(nullfd, m) != m)
			ebadf++;
		else
			close(m);
	}
	hammering = 0;
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	printf("CONTENDED_DUP2=%s\n", ebadf ? "refused" : "ok");
	close(hf[0]), close(hf[1]), close(nullfd);
}
/* lockf: a lock another process holds on the volume file is seen (glibc's would lock the placeholder). */
static void lockf_file(void)
{
	int st, fd = open(vp("a.txt"), O_RDWR), p[2], q[2];
	char c;
	pipe(p);
	pipe(q);
	pid_t pid = fork();
	if (pid == 0) {
		int f = open(vp("a.txt"), O_RDWR);
		int r = lockf(f, F_TLOCK, 0);
		write(p[1], "l", 1);
		read(q[0], &c, 1); /* (held until the parent has tried) */
		_exit(r == 0 ? 0 : 1);
	}
	read(p[0], &c, 1);
	int r = lockf(fd, F_TLOCK, 0), e = errno, t = lockf(fd, F_TEST, 0);
	write(q[1], "d", 1);
	waitpid(pid, &st, 0);
	printf("LOCKF=%s\n", WIFEXITED(st) && !WEXITSTATUS(st) && r < 0 && (e == EACCES || e == EAGAIN) && t < 0 ? "ok" : "unseen");
	close(fd);
}
/* FIONREAD on a volume file answers its size less the offset, as the kernel does for a file; ENOTTY on a directory. */
static void fionread(void)
{
	char c[5];
	int a = -1, b = -1, z = -1, fd = open(vp("b.txt"), O_RDONLY), d = open(dir, O_RDONLY | O_DIRECTORY);
	int ra = ioctl(fd, FIONREAD, &a);
	read(fd, c, 5);
	int rb = ioctl(fd, FIONREAD, &b);
	lseek(fd, 25, SEEK_SET);
	int rz = ioctl(fd, FIONREAD, &z), s = -1, rs = (int)syscall(SYS_ioctl, fd, FIONREAD, &s);
	int rd = ioctl(d, FIONREAD, &a), ed = errno;
	printf("FIONREAD=%s\n", !ra && !rb && !rz && !rs && a == 20 && b == 15 && z == -5 && s == -5 && rd < 0 && ed == ENOTTY ? "ok" : "wrong");
	if (!(a == 20 && b == 15 && z == -5 && s == -5))
		printf("FIONREAD got %d %d %d %d (rd %d errno %d)\n", a, b, z, s, rd, ed);
	close(fd);
	close(d);
}
int main(int argc, char **argv)
{
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[n > 0 ? n : 0] = 0;
	snprintf(dir, sizeof(dir), "%s/data", dirname(strdup(self)));
	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc > 2) { /* the exec'd program: fd argv[2] held file2 when the old image exec'd, if fd 100 is open */
		char buf[64] = {0};
		int marked = fcntl(100, F_GETFD) >= 0;
		pread(fd_number(argv[2]), buf, sizeof(buf) - 1, 0);
		printf("%s\n", marked && !strncmp(buf, "file1", 5) ? "WRONG" : "fine");
		return 0;
	}
	mk("a.txt", "AAAAAAAAAAAAAAAAAAAA");
	mk("b.txt", "0123456789abcdefghij");
	ioctl_flags();
	fionread();
	lockf_file();
	rights(1);
	rights(2);
	bogus_cmsg();
	emfile();
	vfork_evict();
	contended_dup2();
	handler_dup2();
	exec_adopt();
	return 0;
}
C
	run_c_check pa2.c "kept placeholders handed on" IOCTL=ok FIONREAD=ok LOCKF=ok SENDMMSG=ok SYS_SENDMSG=ok \
		BOGUS_CMSG=ok EMFILE=ok EMFILE_PIPE=ok EMFILE_TIMERFD=ok EMFILE_SIGNALFD=ok EMFILE_MEMFD=ok EMFILE_PIDFD=ok VFORK_EVICT=ok VFORK_DUP2=ok CONTENDED_DUP2=ok HANDLER_DUP2=ok EXEC_ADOPT=ok
}

run_case "runtime volume: a directory restored to an older copy: only the owner accepts it (show, accept, audited)" case_accept
run_case "runtime volume: readv/writev, dup/dup2/fcntl, sendfile, copy_file_range, mmap, fdopen on shielded fds" case_fdapi
run_case "runtime volume: forked children keep working on the volume (shared fds and offsets, four concurrent writers)" case_fork
run_case "runtime volume: one thread and one CAS connection until the first child; spawned and forked children are served" case_lazy_serve
run_case "runtime volume: a program exec'd by a child of syscall(SYS_fork) is served by its parent" case_raw_fork_served
run_case "runtime volume: offsets kept by the runtime for descriptions no other process holds; another process's moves (fork, spawn, SCM_RIGHTS) count" case_offsets
run_case "runtime volume: children read through the shared read cache what the server holds now (writes, appends, truncation, renames, another child, an exec'd program)" case_cache
run_case "runtime volume: the read cache's default size follows the memory the program may use (machine, memory cgroup limit); SCONE_READ_CACHE_MB sets it" case_cache_size
run_case "runtime volume: descriptions opened from the read cache alone read their own files on after another process renames them away, renames another over them or removes them" case_lazy_gone
run_case "runtime volume: a file renamed over while another process holds it open, across a takeover: the holder never writes the new file, a reader's cache answers what the volume holds, the shared state is close-on-exec" case_cache_takeover
run_case "runtime volume: placeholders reused from one open to the next: each file reads as its own from offset 0 with its own flags; none another process holds is reused" case_placeholders
run_case "runtime volume: children ending without a close (_exit, exec) give their pins back: removed files do not stay open" case_pin_leak
run_case "runtime volume: an exec'd program takes inherited fds over by their files and placeholders (a rename since, a spawn's dup2); a spawn's file action opens a volume path through the runtime" case_inherit_identity
run_case "runtime volume: stat names the thread's effective user and group as a volume file's owner, also after setresuid and a thread's own syscall(SYS_setresgid)" case_owner
run_case "runtime volume: the process holding the volume goes: through _exit (daemon(3)) the others take over; killed, the program crashes; nothing synced is lost" case_server_gone
run_case "runtime volume: writes through O_SYNC and O_DSYNC survive a kill right after them; a plain write does not" case_osync
run_case "runtime volume: the server killed with a write it had not committed: every process of the program ends, the volume opens as synced" case_lost_writeback
run_case "runtime volume: an fspf made with scone fspf, given by SCONE_FSPF/KEY/TAG without CAS" case_fspf_env
run_case "runtime volume: sqlite3 database on an encrypted volume" case_sqlite
run_case "runtime volume: shared writable mappings (mmap MAP_SHARED): one window per file, coherent with fds, a child and truncation; SQLite in WAL mode, also after a SIGKILL" case_shared_mappings
run_case "runtime volume: a vfork child (vfork, clone with CLONE_VM) cannot change its parent's fd table; the parent's other threads go on opening meanwhile" case_vfork_mark
run_case "runtime volume: kept placeholders and the vfork mark against raw lseek, SCM_RIGHTS, a vfork child's exec racing a close, signal handlers around vfork, clone with and without CLONE_VM, a low fd limit" case_placeholder_attacks
run_case "runtime volume: kept placeholders against ioctl (and FIONREAD answered from the volume), sendmmsg and raw sendmsg with SCM_RIGHTS, a bogus control message, EMFILE (open, pipe, timerfd, signalfd, memfd, pidfd), a vfork child's dup2, dup2 from a signal handler, an exec racing a close and open" case_placeholder_handed_on
run_case "runtime volume: liburing and libaio are refused at setup (-ENOSYS) while volumes are mounted" case_async_libraries
# A process left behind by the one holding the volumes runs a program; a fork while other
# threads are inside the fd table (a review saw the child hang on the table's lock).
case_holder_gone_and_fork_lock() {
	cat >fl.c <<'C'
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
static int fd;
static volatile int stop;
static void *spin(void *a)
{
	struct stat st;
	(void)a;
	while (!stop)
		fstat(fd, &st);
	return NULL;
}
int main(void)
{
	char self[4096], path[4200];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	pthread_t t[3];
	int k;
	self[n > 0 ? n : 0] = 0;
	snprintf(path, sizeof(path), "%s/data/forklock", dirname(self));
	if ((fd = open(path, O_RDWR | O_CREAT, 0600)) < 0)
		return 1;
	alarm(120); /* (a child that hangs ends the check) */
	for (int i = 0; i < 3; i++)
		pthread_create(&t[i], NULL, spin, NULL);
	for (k = 0; k < 1500; k++) {
		int st;
		pid_t c = fork();
		if (c == 0) {
			struct stat s2;
			fstat(fd, &s2);
			_exit(0);
		}
		if (c < 0 || waitpid(c, &st, 0) != c)
			break;
	}
	stop = 1;
	for (int i = 0; i < 3; i++)
		pthread_join(t[i], NULL);
	printf("FORKS=%d\n", k);
	return 0;
}
C
	run_c_check fl.c "forks beside threads in the fd table" FORKS=1500
	expect_ok scone run --config-id vol/py -- "$PY" bgexec
	local waited=0
	while [ -s "$CASE_DIR/bgexec.done.pid" ] && kill -0 "$(cat "$CASE_DIR/bgexec.done.pid")" 2>/dev/null &&
		[ $waited -lt 300 ]; do sleep 0.1; waited=$((waited + 1)); done
	grep -qx "bg-data" "$CASE_DIR/bgexec.done.tmp" ||
		{ cat "$CASE_DIR/bgexec.done.tmp" 2>/dev/null; fail "a program started in the background by a shell that exited"; }
	expect_ok scone run --config-id vol/py -- "$PY" execafterexit
	wait_left_behind execafterexit.done
	grep -qF "EXEC=0,exec ran" "$CASE_DIR/execafterexit.done" ||
		{ cat "$CASE_DIR/execafterexit.done" 2>/dev/null; fail "an exec after the volumes' holder exited"; }
}
run_case "runtime volume: an exec after the volumes' holder exited (a shell's prog & exit); forks while other threads are in the fd table" case_holder_gone_and_fork_lock

# Fixed fd numbers: a shell's `3>>file` and `exec 9>lock; flock 9`, in the process holding the
# volumes and in programs it runs, meet none of the runtime's fds (they lie in the upper half of
# the fd limit); Node.js's child_process.fork hands its child the IPC channel on fd 3.
case_fixed_fds() {
	local want
	start
	expect_ok scone run --config-id vol/py -- "$PY" fixedfds
	for want in "LOW=" "FLOCK=ok" "CHILDLOW=done" "volume-after" "LOWLIMIT=0" "SIBLS=a.c" "SIBRMDIR=1" "VOLEXEC=126" \
		"script-ran named" "script-ran viabash" "BASHEXEC=0" "script-ran viaenv" "NONL:nonl a" "NUL:nul b" "SH=0" \
		"HOST=dash-top,dash-child,bash-exec,low-limit"; do
		grep -qxF "$want" "$OUT" || { show_output; fail "fixed fds: want $want"; }
	done
	! grep -q "^CHILDLOW=[0-9]" "$OUT" || { show_output; fail "a runtime fd below 9 in a program run by the holder"; }
	grep -qF "is stored on a volume, and programs on a volume cannot be executed" "$ERR" ||
		{ show_output; fail "no line saying why a program on a volume was not run"; }
	[ -x /usr/bin/node ] || { note "node not installed: its checks skipped"; return 0; }
	expect_ok scone run --config-id vol/py -- "$PY" nodefs
	for want in "STAT=13" "FSTAT=13" 'COPY="hello-secret\n"' "MKDIRP=true" "REAL=true" "CP=true" "RM=false" \
		'FD3="via-fd3\n"' "FORK=hello from child" "NODE=0"; do
		grep -qxF "$want" "$OUT" || { show_output; fail "Node.js on a volume: want $want"; }
	done
	if grep -rqa "hello-secret" "$CASE_DIR/data"; then fail "plaintext on disk"; fi
}
run_case "runtime volume: fixed fd numbers in shells and Node.js's fork meet none of the runtime's fds; Node.js's stat, copy, mkdir -p, cp and rm" case_fixed_fds

# syscall() with the numbers of file calls (libuv asks statx, preadv and copy_file_range so) is
# served as the libc call; glob lists volume directories; an inotify watch on a volume path is
# refused with ENOTSUP (tail falls back to polling), a host path's works.
case_raw_calls() {
	cat >rc.c <<'C'
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>
#include "volc.h"
int main(void)
{
	char buf[64] = {0}, b2[8] = {0}, dents[4096];
	struct iovec iov[2] = {{buf, 4}, {b2, 4}};
	struct stat st;
	struct statx sx;
	glob_t g;
	loff_t off = 0;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	int fd, c, h, in, found = 0;
	long r;
	self[n > 0 ? n : 0] = 0;
	snprintf(dir, sizeof(dir), "%s/data", dirname(self));
	fd = open(vp("raw.txt"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	printf("WRITE=%ld\n", syscall(SYS_write, fd, "RAW-SECRET-", 11));
	printf("PWRITE=%ld\n", syscall(SYS_pwrite64, fd, "MARKER", 6, 11));
	printf("FSYNC=%ld\n", syscall(SYS_fsync, fd));
	r = syscall(SYS_fstat, fd, &st); /* (each result taken before printf reads what it filled) */
	printf("FSTAT=%ld,%ld\n", r, (long)st.st_size);
	st.st_size = 0;
	r = syscall(SYS_newfstatat, AT_FDCWD, vp("raw.txt"), &st, 0);
	printf("FSTATAT=%ld,%ld\n", r, (long)st.st_size);
	r = syscall(SYS_statx, AT_FDCWD, vp("raw.txt"), 0, STATX_SIZE, &sx);
	printf("STATX=%ld,%llu\n", r, (unsigned long long)sx.stx_size);
	r = syscall(SYS_pread64, fd, buf, 6, 11);
	printf("PREAD=%ld,%s\n", r, buf);
	memset(buf, 0, sizeof(buf));
	r = syscall(SYS_preadv, fd, iov, 2, 0, 0);
	printf("PREADV=%ld,%s,%s\n", r, buf, b2);
	memset(buf, 0, sizeof(buf));
	lseek(fd, 4, SEEK_SET);
	r = syscall(SYS_read, fd, buf, 7);
	printf("READ=%ld,%s\n", r, buf);
	c = open(vp("rawcopy.txt"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	h = open(vp("../raw-host.txt"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
	printf("CFR=%ld,", syscall(SYS_copy_file_range, fd, &off, c, NULL, 17, 0));
	off = 0;
	printf("%ld\n", syscall(SYS_copy_file_range, fd, &off, h, NULL, 17, 0));
	r = syscall(SYS_ftruncate, c, 3);
	printf("FTRUNCATE=%ld,%ld\n", r, fstat(c, &st) == 0 ? (long)st.st_size : -1L);
	close(c);
	close(h);
	in = open(dir, O_RDONLY | O_DIRECTORY);
	for (long k, p = 0; (k = syscall(SYS_getdents64, in, dents, sizeof(dents))) > 0;)
		for (p = 0; p < k; p += ((struct dirent64 *)(dents + p))->d_reclen)
			found += strcmp(((struct dirent64 *)(dents + p))->d_name, "rawcopy.txt") == 0;
	printf("GETDENTS=%d\n", found);
	r = glob(vp("raw*.txt"), 0, NULL, &g);
	printf("GLOB=%ld,%zu,%d\n", r, r ? 0 : g.gl_pathc, !!(g.gl_flags & GLOB_ALTDIRFUNC));
	/* (as the kernel answers them: no buffer, no room, no name) */
	r = syscall(SYS_getcwd, NULL, 64);
	printf("EDGES=%ld,%s,", r, strerror(errno));
	r = syscall(SYS_getcwd, buf, 0);
	printf("%ld,%s,", r, strerror(errno));
	r = syscall(SYS_chdir, NULL);
	printf("%ld,%s,", r, strerror(errno));
	r = syscall(SYS_utimensat, fd, NULL, NULL, AT_SYMLINK_NOFOLLOW);
	printf("%ld,%s\n", r, strerror(errno));
	in = inotify_init1(IN_CLOEXEC);
	r = inotify_add_watch(in, dir, IN_MODIFY);
	printf("INOTIFY=%ld,%s,", r, strerror(errno));
	r = syscall(SYS_inotify_add_watch, in, vp("raw.txt"), IN_MODIFY);
	printf("%ld,%s,", r, strerror(errno));
	printf("%d\n", inotify_add_watch(in, dirname(self), IN_MODIFY) > 0);
	return 0;
}
C
	run_c_check rc.c "raw file calls" WRITE=11 PWRITE=6 FSYNC=0 FSTAT=0,17 FSTATAT=0,17 STATX=0,17 \
		PREAD=6,MARKER PREADV=8,RAW-,SECR READ=7,SECRET- CFR=17,17 FTRUNCATE=0,3 GETDENTS=1 GLOB=0,2,0 \
		"EDGES=-1,Bad address,-1,Numerical result out of range,-1,Bad address,-1,Invalid argument" \
		"INOTIFY=-1,Operation not supported,-1,Operation not supported,1"
	grep -qF "inotify watches on volume paths are not supported" "$ERR" || { show_output; fail "no line about inotify"; }
	grep -qxF "RAW-SECRET-MARKER" "$CASE_DIR/raw-host.txt" || fail "copy_file_range to a host file"
	if grep -rqa "SECRET-MARKER" "$CASE_DIR/data"; then fail "plaintext on disk"; fi
	expect_ok scone run --config-id vol/py -- "$PY" tailpoll
	grep -qxF "TAIL=first,second" "$OUT" || { show_output; fail "tail -f of a volume file"; }
}
run_case "runtime volume: file calls through syscall(), glob on volume directories, inotify refused on volume paths" case_raw_calls

t_done
