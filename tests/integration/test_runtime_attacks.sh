#!/usr/bin/env bash
# test_runtime_attacks.sh - what an attacker, or an ordinary program doing
# ordinary things, tried against the runtime, and what must hold:
# - no spelling of a volume path writes plaintext to the disk: symbolic
#   links to the volume or to a parent, a mount point configured through a
#   link, /proc/self/cwd, /proc/self/fd/N, relative paths after a chdir
#   through a link;
# - fds closed behind the runtime's back (close_range in a vfork child, a raw
#   syscall(SYS_close)) never make a later write land in a volume file;
# - opens through syscall() reach the runtime, not the host directory;
# - a program that cannot load the runtime never gets the handover, and the
#   handover memfd holds no plaintext a same-uid process could read;
# - once secrets arrive the process is not dumpable: no core file, no
#   /proc/PID/environ for another process of the same user;
# - the host's OPENSSL_CONF naming a provider module puts no code into the
#   runtime (a session's start, and a network shield the host started);
# - the volumes' shared state (the read cache every process maps) cannot be
#   shrunk behind the runtime's back by a raw ftruncate.
# The programs are Debian's python3 and sh, unmodified.
set -u
cd "$(dirname "$0")/../.." || exit 1
. tests/integration/lib.sh
. tests/integration/cas_lib.sh
t_init
cas_require
PY=/usr/bin/python3
[ -x "$PY" ] || { t_fail "setup: /usr/bin/python3 missing (scripts/install-deps.sh)"; t_done; exit 1; }
MARK='SCONE-ATTACK-MARKER'

session_yaml() {
	cat <<YAML
name: atk
version: "0.3"
security:
  attestation:
    mode: none
services:
  - name: py
    image_name: with-data
    command: python3 $CASE_DIR/atk.py @@1
    environment:
      SECRET: \$\$SCONE::pw\$\$
  - name: linked
    image_name: through-link
    command: python3 $CASE_DIR/atk.py @@1
  - name: sh
    image_name: with-data
    command: /bin/sh -c "exec $CASE_DIR/static"
    environment:
      SECRET: \$\$SCONE::pw\$\$
  - name: sh-allowed
    image_name: with-data
    command: /bin/sh -c "exec $CASE_DIR/static"
    environment:
      SECRET: \$\$SCONE::pw\$\$
      SCONE_ALLOW_UNSHIELDED_EXEC: "1"
  - name: plain
    command: python3 -c "import os, time; print(os.getpid(), flush=True); time.sleep(60)"
    environment:
      SECRET: \$\$SCONE::pw\$\$
  - name: dumpable
    command: python3 $CASE_DIR/atk.py @@1
    environment:
      SECRET: \$\$SCONE::pw\$\$
      SCONE_DUMPABLE: "1"
images:
  - name: with-data
    volumes:
      - name: data
        path: $CASE_DIR/data
  - name: through-link
    volumes:
      - name: other
        path: $CASE_DIR/via-link/data
volumes:
  - name: data
  - name: other
secrets:
  - name: pw
    kind: ascii
    size: 24
YAML
}

write_py() {
	cat >"$CASE_DIR/atk.py" <<'PY'
import ctypes, errno, os, signal, subprocess, sys, threading
case = os.path.dirname(os.path.abspath(__file__))
d = case + "/data"
mark = "SCONE-ATTACK-" + "MARKER"
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

def put(path, text):
    with open(path, "w") as f:
        f.write(mark + " " + text + "\n")

def names():
    return ",".join(sorted(os.listdir(d)))

if sys.argv[1] == "paths":
    os.makedirs(d + "/sub", exist_ok=True)
    link = case + "/link-to-vol"
    plink = case + "/side/link-to-parent"
    os.makedirs(case + "/side", exist_ok=True)
    for l, t in ((link, d), (plink, case)):
        if not os.path.islink(l):
            os.symlink(t, l)
    put(link + "/a.txt", "through a link to the volume")
    put(plink + "/data/b.txt", "through a link to its parent")
    put(link + "/sub/h.txt", "through a link into a subdirectory")
    put(os.path.realpath(link) + "/i.txt", "realpath of the link")
    dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    pfd = os.open(case, os.O_RDONLY | os.O_DIRECTORY)
    put("/proc/self/fd/%d/d.txt" % dfd, "/proc/self/fd of the volume")
    put("/proc/self/fd/%d/data/e.txt" % pfd, "/proc/self/fd of its parent")
    put("/proc/self/fd/%d/../data/f.txt" % dfd, "/proc/self/fd/N/..")
    put("/dev/fd/%d/data/l.txt" % pfd, "/dev/fd of its parent")
    put("/proc/%d/fd/%d/m.txt" % (os.getpid(), dfd), "/proc/PID/fd")
    os.chdir(d)
    put("/proc/self/cwd/c.txt", "/proc/self/cwd in a volume cwd")
    os.chdir(case)
    os.chdir(link)
    put("g.txt", "relative after chdir through a link")
    put("/proc/self/cwd/n.txt", "/proc/self/cwd after chdir through a link")
    os.chdir(case + "/side")
    put("link-to-parent/data/k.txt", "relative through a link to the parent")
    print("NAMES=" + names())
    print("SUB=" + ",".join(sorted(os.listdir(d + "/sub"))))
elif sys.argv[1] == "list":
    print("NAMES=" + names())
    print("A=" + open(d + "/a.txt").read().strip())
elif sys.argv[1] == "linkwrite":
    put(case + "/via-link/data/j.txt", "configured path through a link")
    put(os.path.realpath(case + "/via-link/data") + "/o.txt", "its real path")
    print("LINKED=" + ",".join(sorted(os.listdir(case + "/via-link/data"))))
elif sys.argv[1] == "prepare":
    pattern = (mark + " vfork pattern 0123456789\n").encode() * 200
    for i in range(10):
        with open(d + "/vf%d.txt" % i, "wb") as f:
            f.write(pattern)
elif sys.argv[1] == "vfork":
    # Files opened as the issue's reproduction does: existing volume files, O_RDWR.
    pattern = (mark + " vfork pattern 0123456789\n").encode() * 200
    vfds = [os.open(d + "/vf%d.txt" % i, os.O_RDWR) for i in range(10)]
    def spawn():
        for _ in range(15):
            subprocess.run(["/bin/echo", "x"], stdout=subprocess.DEVNULL, check=True)
    ts = [threading.Thread(target=spawn) for _ in range(4)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    print("PREAD_OK=%s" % all(os.pread(fd, len(pattern) + 1, 0) == pattern for fd in vfds))
    [os.close(fd) for fd in vfds]
    print("REOPEN_OK=%s" % all(open(d + "/vf%d.txt" % i, "rb").read() == pattern for i in range(10)))
    # libuv's way: syscall(SYS_close), through the exported syscall() and through libc's own (no
    # interposer sees that one); then the number is reused for a host file or a dup2 puts one there.
    own = ctypes.CDLL("libc.so.6", use_errno=True)  # dlsym in libc itself: libc's syscall, not the runtime's
    own.syscall.restype = ctypes.c_long
    results = []
    for how, sc in (("exported", libc.syscall), ("libc", own.syscall)):
        vfd = os.open(d + "/raw-%s.txt" % how, os.O_RDWR | os.O_CREAT, 0o600)
        os.write(vfd, b"volume bytes\n")
        r = sc(3, vfd)  # SYS_close
        fds = []
        while True:
            hfd = os.open(case + "/host-%s.txt" % how, os.O_RDWR | os.O_CREAT, 0o600)
            fds.append(hfd)
            if hfd == vfd or len(fds) > 64:
                break
        # An lseek that would leave a kept offset where it is is answered without an identity
        # check (the volume file's answer); the write after it is checked and goes to the host file.
        os.lseek(vfd, 0, os.SEEK_END)
        os.lseek(vfd, 0, os.SEEK_CUR)
        os.write(vfd, b"host bytes\n")
        [os.close(f) for f in fds]
        results.append("%d,%s,%s" % (r, vfd in fds, open(case + "/host-%s.txt" % how, "rb").read() == b"host bytes\n"))
        # dup2 by a raw system call onto a shielded fd: the write goes to the host file.
        vfd = os.open(d + "/dup-%s.txt" % how, os.O_RDWR | os.O_CREAT, 0o600)
        os.write(vfd, b"volume bytes\n")
        hfd = os.open(case + "/dup-%s.txt" % how, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        r = sc(33, hfd, vfd)  # SYS_dup2
        os.write(vfd, b"host bytes\n")
        os.close(vfd)
        os.close(hfd)
        results.append("%s,%s" % (r == vfd, open(case + "/dup-%s.txt" % how, "rb").read() == b"host bytes\n"))
    print("RAW=" + ";".join(results))
    print("RAW_VOLUME=" + ",".join(repr(open(d + "/%s-%s.txt" % (k, h), "rb").read())
                                  for k in ("raw", "dup") for h in ("exported", "libc")))
elif sys.argv[1] == "sysopen":
    # Opens through syscall() (the exported one: what a program's syscall(SYS_openat, ...) reaches).
    class OpenHow(ctypes.Structure):
        _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]
    creat = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    how = OpenHow(creat, 0o600, 0)
    beneath = OpenHow(creat, 0o600, 0x08)  # RESOLVE_BENEATH
    dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    got = []
    for name, call in (("open", lambda p: libc.syscall(2, p, creat, 0o600)),
                       ("creat", lambda p: libc.syscall(85, p, 0o600)),
                       ("openat", lambda p: libc.syscall(257, -100, p, creat, 0o600)),
                       ("openat-dirfd", lambda p: libc.syscall(257, dfd, os.path.basename(p), creat, 0o600)),
                       ("openat2", lambda p: libc.syscall(437, -100, p, ctypes.byref(how), ctypes.sizeof(how))),
                       ("openat2-beneath", lambda p: libc.syscall(437, dfd, os.path.basename(p),
                                                                  ctypes.byref(beneath), ctypes.sizeof(beneath)))):
        fd = call(("%s/sys-%s.txt" % (d, name)).encode())
        if fd < 0:
            got.append("%s:%s" % (name, errno.errorcode[ctypes.get_errno()]))
            continue
        os.write(fd, ("%s through syscall(%s)\n" % (mark, name)).encode())
        os.close(fd)
        got.append("%s:%s" % (name, open("%s/sys-%s.txt" % (d, name)).read() == "%s through syscall(%s)\n" % (mark, name)))
    print("SYSOPEN=" + ",".join(got))
    print("NAMES=" + names())
elif sys.argv[1] == "tempnames":
    # glibc's mkstemp family and mkdtemp create with its internal calls; syscall() reaches the
    # kernel: on a volume both must go through the runtime (no plaintext file or name on the host).
    libc.mkdtemp.restype = ctypes.c_char_p
    got = []
    for name, call in (("mkstemp", lambda b: libc.mkstemp(b)),
                       ("mkostemps", lambda b: libc.mkostemps(b, 4, os.O_APPEND))):
        b = ctypes.create_string_buffer((d + "/%s-XXXXXX%s" % (name, ".txt" if name == "mkostemps" else "")).encode())
        fd = call(b)
        if fd < 0:
            got.append("%s:%s" % (name, errno.errorcode[ctypes.get_errno()]))
            continue
        os.write(fd, (mark + " through " + name).encode())
        os.close(fd)
        got.append("%s:%s" % (name, open(b.value.decode()).read() == mark + " through " + name))
    t = libc.mkdtemp(ctypes.create_string_buffer((d + "/dir-XXXXXX").encode()))
    got.append("mkdtemp:%s" % (t is not None and os.path.isdir(t.decode())))
    nr = {"mkdir": 83, "symlink": 88, "mknod": 133, "rename": 82, "unlink": 87, "mkdirat": 258}
    r = [libc.syscall(nr["mkdir"], (d + "/sysdir").encode(), 0o700),
         libc.syscall(nr["mkdirat"], -100, (d + "/sysdir2").encode(), 0o700),
         libc.syscall(nr["symlink"], b"/etc/passwd", (d + "/syslink").encode()),
         libc.syscall(nr["mknod"], (d + "/sysfifo").encode(), 0o10600, 0)]
    open(d + "/sysfile", "w").write(mark + " renamed by syscall")
    r.append(libc.syscall(nr["rename"], (d + "/sysfile").encode(), (d + "/sysfile2").encode()))
    r.append(libc.syscall(nr["unlink"], (d + "/sysfile2").encode()))
    got.append("SYSCALLS=" + ",".join(str(x) for x in r))
    libc.fopen.restype = libc.freopen.restype = ctypes.c_void_p
    libc.freopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p]
    f = libc.fopen((case + "/host-stream.txt").encode(), b"w")
    g = libc.freopen((d + "/reopened.txt").encode(), b"w", ctypes.c_void_p(f))
    got.append("freopen:%s,%s" % (g is None, errno.errorcode.get(ctypes.get_errno(), "?")))
    print("TEMP=" + ";".join(got))
    print("NAMES=" + ",".join(n.split("-")[0] if "-" in n else n for n in sorted(os.listdir(d))))
elif sys.argv[1] == "offrace":
    # A thread writes at a volume fd's offset while another closes the fd and opens a host file
    # (which takes the number): the volume file's head is never written over (the offset the
    # write takes is its own file's, never the host file's 0). (A write after the close goes to
    # the host file, as without the runtime.)
    import threading, time
    bad = 0
    for i in range(int(os.environ.get("RACE_ROUNDS", "600"))):
        p = d + "/race.txt"
        fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, b"H" * 64)
        stop = []
        def writer():
            while not stop:
                try:
                    os.write(fd, b"W" * 8)
                except OSError:
                    break
        t = threading.Thread(target=writer)
        t.start()
        time.sleep(0.0002 * (i % 5))
        os.close(fd)
        h = os.open(case + "/race-host.txt", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        time.sleep(0.0005)
        stop.append(1)
        t.join()
        os.close(h)
        bad += open(p, "rb").read(64) != b"H" * 64
    print("RACE=%d" % bad)
elif sys.argv[1] == "stale":
    # A locked volume fd closed by a raw system call; the kernel gives its number to the next
    # volume file opened: the first one's description is released (its lock too), as a close would.
    import fcntl
    own = ctypes.CDLL("libc.so.6", use_errno=True)  # libc's own syscall: no interposer sees it
    own.syscall.restype = ctypes.c_long
    a = os.open(d + "/locked.txt", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(a, fcntl.LOCK_EX)
    own.syscall(3, a)  # SYS_close
    b = os.open(d + "/locked.txt", os.O_RDWR)  # (its host file is open: no other fd comes first)
    os.write(b, b"next\n")
    pid = os.fork()
    if pid == 0:
        c = os.open(d + "/locked.txt", os.O_RDWR)
        try:
            fcntl.flock(c, fcntl.LOCK_EX | fcntl.LOCK_NB)
            print("CHILD_LOCK=taken", flush=True)
        except OSError as e:
            print("CHILD_LOCK=" + errno.errorcode[e.errno], flush=True)
        os._exit(0)
    os.waitpid(pid, 0)
    print("SAME_NUMBER=%s" % (a == b))
    os.close(b)
    print("NEXT=%r" % open(d + "/locked.txt", "rb").read())
elif sys.argv[1].startswith("closeall-"):
    # A daemon's start: every fd above 2 closed (a loop of close, or closefrom), then its log
    # opened; the volume's own host files and lock handles must survive it.
    import fcntl
    how = sys.argv[1].split("-", 1)[1]
    a = os.open(d + "/before-%s.txt" % how, os.O_RDWR | os.O_CREAT, 0o600)
    os.write(a, b"before\n")
    os.fsync(a)
    fcntl.flock(a, fcntl.LOCK_EX)
    if how == "loop":
        for fd in range(3, 1024):
            try:
                os.close(fd)
            except OSError:
                pass
    elif how == "closefrom":
        libc.closefrom(3)
    log = os.open(case + "/daemon-%s.log" % how, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    if how == "dup2":  # every number above 2 made the log (as a shell's redirections would)
        for fd in range(3, 256):
            if fd != log:
                try:
                    os.dup2(log, fd)
                    os.close(fd)
                except OSError:
                    pass
    for i in range(20):
        v = os.open(d + "/after-%s-%d.txt" % (how, i), os.O_RDWR | os.O_CREAT, 0o600)
        os.write(v, b"after %d\n" % i)
        os.fsync(v)
        os.close(v)
        os.write(log, b"log line %d\n" % i)
    os.close(log)
    want = b"".join(b"log line %d\n" % i for i in range(20))
    print("LOG_OK=%s" % (open(case + "/daemon-%s.log" % how, "rb").read() == want))
elif sys.argv[1] == "closeallcheck":
    print("AFTER_OK=%s" % all(open(d + "/after-%s-%d.txt" % (h, i), "rb").read() == b"after %d\n" % i
                               for h in ("loop", "closefrom", "dup2") for i in range(20)))
elif sys.argv[1] == "vcheck":
    pattern = (mark + " vfork pattern 0123456789\n").encode() * 200
    print("AGAIN_OK=%s" % all(open(d + "/vf%d.txt" % i, "rb").read() == pattern for i in range(10)))
    print("RAW_VOLUME=" + ",".join(repr(open(d + "/%s-%s.txt" % (k, h), "rb").read())
                                  for k in ("raw", "dup") for h in ("exported", "libc")))
elif sys.argv[1] == "preload":
    env = dict(os.environ, LD_PRELOAD="/nonexistent/libother.so")
    out = subprocess.run(["/usr/bin/python3", "-c", "import os; print(len(os.environ.get('SECRET', '')))"],
                         env=env, capture_output=True, text=True).stdout.strip()
    print("CHILD_SECRET_LEN=" + out)
elif sys.argv[1] == "dumpable":
    print("DUMPABLE=%d" % libc.prctl(3, 0, 0, 0, 0))  # PR_GET_DUMPABLE
    sys.stdout.flush()
    if len(sys.argv) > 2 and sys.argv[2] == "crash":
        os.kill(os.getpid(), signal.SIGSEGV)
elif sys.argv[1] == "shrink":
    put(d + "/cached.txt", "cached " * 2000)
    want = open(d + "/cached.txt").read()  # the read fills the shared read cache
    res = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink("/proc/self/fd/" + fd)
        except OSError:
            continue
        if "scone-volumes" in target:  # the shared state and read cache every process maps
            r = libc.syscall(77, int(fd), 0)  # SYS_ftruncate, past every wrapper
            res.append("EPERM" if r != 0 and ctypes.get_errno() == errno.EPERM else "r=%d" % r)
    print("SHRINK=" + ",".join(res), flush=True)
    pid = os.fork()
    if pid == 0:  # a reader of the cache after the attempt, in another process
        os._exit(0 if open(d + "/cached.txt").read() == want else 1)
    print("CHILD=%d" % os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    print("READ_OK=%s" % (open(d + "/cached.txt").read() == want))
elif sys.argv[1] == "wait":
    print("PID=%d" % os.getpid(), flush=True)
    while not os.path.exists(case + "/go"):
        import time; time.sleep(0.05)
PY
}

start() {
	cas_case_begin
	cas_start "$CASE_DIR/cas"
	owner_new "$CASE_DIR/owner"
	write_py
	mkdir -p "$CASE_DIR/real"
	ln -s "$CASE_DIR/real" "$CASE_DIR/via-link"
	session_yaml >atk.yaml
	expect_created atk.yaml
}

# Only the protection file and random-named ciphertext in a volume's host directory; no marker anywhere.
only_ciphertext() { # DIR
	local bad
	bad=$(find "$1" -mindepth 1 ! -name 'volume.fspf*' -regextype posix-extended ! -regex '.*/[0-9a-f]{32}' -printf '%P\n')
	[ -z "$bad" ] || fail "plaintext names in the volume's host directory $1: $bad"
	if grep -rqaF "$MARK" "$1"; then fail "plaintext in the volume's host directory $1"; fi
}

case_paths() {
	start
	expect_ok scone run --config-id atk/py -- "$PY" paths
	assert_eq "NAMES=a.txt,b.txt,c.txt,d.txt,e.txt,f.txt,g.txt,i.txt,k.txt,l.txt,m.txt,n.txt,sub" \
		"$(grep '^NAMES=' "$OUT")" "every spelling lands in the volume"
	assert_eq "SUB=h.txt" "$(grep '^SUB=' "$OUT")" "a subdirectory through a link"
	only_ciphertext "$CASE_DIR/data"
	if grep -rqaF --exclude=atk.py --exclude='*.yaml' "$MARK" "$CASE_DIR"; then
		grep -rlaF --exclude=atk.py "$MARK" "$CASE_DIR"
		fail "plaintext outside the volume"
	fi
	expect_ok scone run --config-id atk/py -- "$PY" list
	grep -qx "A=$MARK through a link to the volume" "$OUT" || { show_output; fail "second run"; }
	# A mount point configured through a link, written by its spelling and by its real path.
	expect_ok scone run --config-id atk/linked -- "$PY" linkwrite
	assert_eq "LINKED=j.txt,o.txt" "$(grep '^LINKED=' "$OUT")" "a mount point configured through a link"
	only_ciphertext "$CASE_DIR/real/data"
}

case_closed_behind() {
	start
	expect_ok scone run --config-id atk/py -- "$PY" prepare
	expect_ok scone run --config-id atk/py -- "$PY" vfork
	local vol="RAW_VOLUME=b'volume bytes\\n',b'volume bytes\\n',b'volume bytes\\n',b'volume bytes\\n'"
	for want in PREAD_OK=True REOPEN_OK=True "RAW=0,True,True;True,True;0,True,True;True,True" "$vol"; do
		grep -qxF "$want" "$OUT" || { show_output; fail "expected $want"; }
	done
	only_ciphertext "$CASE_DIR/data"
	expect_ok scone run --config-id atk/py -- "$PY" vcheck
	for want in AGAIN_OK=True "$vol"; do
		grep -qxF "$want" "$OUT" || { show_output; fail "second run: expected $want"; }
	done
}

# syscall(SYS_open / SYS_creat / SYS_openat / SYS_openat2) of a volume path
# is the runtime's open, never a plaintext file in the host directory;
# openat2 with a RESOLVE_* rule is ENOSYS there (its users fall back to
# openat).
case_sysopen() {
	start
	expect_ok scone run --config-id atk/py -- "$PY" sysopen
	assert_eq "SYSOPEN=open:True,creat:True,openat:True,openat-dirfd:True,openat2:True,openat2-beneath:ENOSYS" \
		"$(grep '^SYSOPEN=' "$OUT")" "opens through syscall()"
	assert_eq "NAMES=sys-creat.txt,sys-open.txt,sys-openat-dirfd.txt,sys-openat.txt,sys-openat2.txt" \
		"$(grep '^NAMES=' "$OUT")" "the files are in the volume"
	only_ciphertext "$CASE_DIR/data"
}

# Temporary files and directories made on a volume (mkstemp, mkostemps,
# mkdtemp: glibc makes them with its internal calls) and names made through
# syscall() (mkdir, mkdirat, symlink, mknod, rename, unlink) go through the
# runtime: no plaintext file or name in the host directory.
case_temp_names() {
	start
	expect_ok scone run --config-id atk/py -- "$PY" tempnames
	assert_eq "TEMP=mkstemp:True;mkostemps:True;mkdtemp:True;SYSCALLS=0,0,-1,-1,0,0;freopen:True,ENOTSUP" "$(grep '^TEMP=' "$OUT")" \
		"temporary files and syscall() names on a volume"
	assert_eq "NAMES=dir,mkostemps,mkstemp,sysdir,sysdir2" "$(grep '^NAMES=' "$OUT")" "the volume's names"
	only_ciphertext "$CASE_DIR/data"
}

# A write racing a close whose number a host file takes at once: the
# volume file's head is never written over (the runtime keeps each
# description's offset through its own dup of the placeholder, never the
# number's).
case_offset_race() {
	start
	expect_ok scone run --config-id atk/py -- "$PY" offrace
	assert_eq "RACE=0" "$(grep '^RACE=' "$OUT")" "volume heads overwritten"
}

# A volume fd closed by a raw system call and its number given to the next
# volume file: the old description is released as a close would (its flock
# no longer binds another process).
case_stale_entry() {
	start
	expect_ok scone run --config-id atk/py -- "$PY" stale
	for want in SAME_NUMBER=True CHILD_LOCK=taken "NEXT=b'next\\n'"; do
		grep -qxF "$want" "$OUT" || { show_output; fail "expected $want"; }
	done
}

# A daemon closes every fd above 2 at its start (a loop of close, or
# closefrom) and opens its log: the volume's host files and lock handles
# are stepped around, so neither does the log get the volume's bytes nor
# the fspf the log's, and the volume opens again with every file.
case_close_all() {
	start
	local how
	for how in loop closefrom dup2; do
		expect_ok scone run --config-id atk/py -- "$PY" "closeall-$how"
		grep -qx "LOG_OK=True" "$OUT" || { show_output; fail "$how: the daemon's log does not hold its own lines"; }
		if grep -q "^scone: error" "$ERR"; then show_output; fail "$how: the runtime failed after the closes"; fi
	done
	expect_ok scone run --config-id atk/py -- "$PY" closeallcheck
	grep -qx "AFTER_OK=True" "$OUT" || { show_output; fail "the volume's files written after the closes are not all there"; }
	only_ciphertext "$CASE_DIR/data"
}

case_no_runtime_no_handover() {
	command -v "${CC:-cc}" >/dev/null || t_skip_case "no C compiler"
	start
	cat >static.c <<'C'
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(void)
{
	char p[300], l[300];
	struct dirent *e;
	DIR *d = opendir("/proc/self/fd");
	printf("SECRET=%s\n", getenv("SECRET") ? "present" : "absent");
	while (d && (e = readdir(d))) {
		ssize_t n;
		snprintf(p, sizeof(p), "/proc/self/fd/%s", e->d_name);
		if ((n = readlink(p, l, sizeof(l) - 1)) > 0) {
			l[n] = 0;
			printf("FD=%s\n", l);
		}
	}
	return 0;
}
C
	"${CC:-cc}" -static -o static static.c 2>/dev/null || t_skip_case "no static libc to link a static program"
	run_cmd scone run --config-id atk/sh -- /bin/sh
	[ "$RC" -ne 0 ] || { show_output; fail "a static program was exec'd under the runtime"; }
	grep -q "exec refused: .*statically linked" "$ERR" || { show_output; fail "no clear refusal"; }
	if grep -q "^SECRET=" "$OUT"; then fail "the static program ran"; fi
	# Allowed by the session: it runs, without the session's variables and without any handover.
	expect_ok scone run --config-id atk/sh-allowed -- /bin/sh
	grep -qx "SECRET=absent" "$OUT" || { show_output; fail "the session's variable reached a program without the runtime"; }
	if grep -q "scone-handover\|socket:" "$OUT"; then show_output; fail "a program without the runtime holds the handover"; fi
	grep -q "warn: .*statically linked.*SCONE_ALLOW_UNSHIELDED_EXEC" "$ERR" || { show_output; fail "no warning"; }
	# Replacing LD_PRELOAD does not start a child without the runtime.
	expect_ok scone run --config-id atk/py -- "$PY" preload
	grep -qx "CHILD_SECRET_LEN=24" "$OUT" || { show_output; fail "a child with another LD_PRELOAD lost the runtime"; }
}

case_not_dumpable() {
	start
	expect_ok scone run --config-id atk/py -- "$PY" dumpable
	grep -qx "DUMPABLE=0" "$OUT" || { show_output; fail "a process holding secrets is dumpable"; }
	# No core file, where the same program without the runtime leaves one.
	mkdir crash plain
	(cd plain && ulimit -c unlimited && "$PY" -c 'import os, signal; os.kill(os.getpid(), signal.SIGSEGV)') 2>/dev/null || true
	if ls plain/core* >/dev/null 2>&1; then
		(cd crash && ulimit -c unlimited && "$SCONE_BIN" run --config-id atk/py -- "$PY" dumpable crash) >/dev/null 2>&1 || true
		if ls crash/core* >/dev/null 2>&1; then fail "a crash under the runtime wrote a core file"; fi
	else
		echo "core files are not written to the working directory here; the core check is left out"
	fi
	# A development session may ask for it back (mode none only).
	expect_ok scone run --config-id atk/dumpable -- "$PY" dumpable
	grep -qx "DUMPABLE=1" "$OUT" || { show_output; fail "SCONE_DUMPABLE=1 in a mode none session"; }
	grep -q "SCONE_DUMPABLE=1: core dumps" "$ERR" || { show_output; fail "no warning for SCONE_DUMPABLE"; }
	# Another process of the same user cannot read its environment.
	if command -v setpriv >/dev/null; then
		local as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups) pid n=0 target
		(cd / && "${as_nobody[@]}" env HOME=/ "$SCONE_BIN" run --config-id atk/plain --cas "$CAS_ADDR" \
			--cas-fingerprint "$(cert_fp "$CAS_DIR/cas.crt")" -- "$PY" >"$CASE_DIR/wait.out" 2>"$CASE_DIR/wait.err") &
		pid=$!
		case_track_pid "$pid"
		while ! grep -q '^[0-9]' wait.out && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
		target=$(head -1 wait.out)
		[ -n "$target" ] || { cat wait.err; fail "the program as nobody did not start"; }
		[ "$(stat -c %u "/proc/$target")" = 65534 ] || fail "the program does not run as nobody"
		if "${as_nobody[@]}" cat "/proc/$target/environ" >/dev/null 2>&1; then
			fail "another process of the same user read /proc/PID/environ"
		fi
		kill "$target" 2>/dev/null || true
		wait "$pid" || true
	fi
}

# The memfd that holds the volumes' shared state and read cache is mapped
# whole by every process of the program: one that shrank it (a raw
# ftruncate, which no wrapper sees) would make the others' cache reads die
# of SIGBUS. Its size is sealed.
case_shrink_shared() {
	start
	expect_ok scone run --config-id atk/py -- "$PY" shrink
	for want in SHRINK=EPERM CHILD=0 READ_OK=True; do
		grep -qxF "$want" "$OUT" || { show_output; fail "expected $want"; }
	done
}

# The host sets OPENSSL_CONF to a configuration that loads a provider
# module: a library whose constructor would run inside the program, before
# CAS releases anything. The runtime's OpenSSL reads no configuration.
case_openssl_conf() {
	start
	cat >evil.c <<'C'
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
__attribute__((constructor)) static void loaded(void)
{
	char exe[256] = "", maps[65536];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	int fd = open("/proc/self/maps", O_RDONLY), out;
	size_t got = 0;
	ssize_t r;
	if (n > 0)
		exe[n] = 0;
	while (fd >= 0 && got < sizeof(maps) - 1 && (r = read(fd, maps + got, sizeof(maps) - 1 - got)) > 0)
		got += (size_t)r;
	maps[got] = 0;
	if (fd >= 0)
		close(fd);
	out = open(getenv("EVIL_MARK"), O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (out >= 0) {
		dprintf(out, "LOADED %s%s\n", exe, strstr(maps, "libscone") ? " (with the runtime)" : "");
		close(out);
	}
}
C
	"${CC:-cc}" -shared -fPIC -o evil.so evil.c || fail "cannot build the module"
	cat >evil.cnf <<CNF
openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
[provider_sect]
evil = evil_sect
default = default_sect
[evil_sect]
module = $CASE_DIR/evil.so
activate = 1
[default_sect]
activate = 1
CNF
	# The control: the host's own OpenSSL (python3's ssl module) follows the configuration.
	EVIL_MARK=$CASE_DIR/control.mark OPENSSL_CONF=$CASE_DIR/evil.cnf "$PY" -c 'import ssl; ssl.create_default_context()' 2>/dev/null || true
	grep -q "^LOADED" control.mark 2>/dev/null || t_skip_case "this OpenSSL does not load provider modules from a configuration"
	OPENSSL_CONF=$CASE_DIR/evil.cnf EVIL_MARK=$CASE_DIR/rt.mark run_cmd scone run --config-id atk/py -- "$PY" dumpable
	[ "$RC" -eq 0 ] || { show_output; fail "the program did not run"; }
	if grep -q "with the runtime" rt.mark 2>/dev/null; then
		cat rt.mark
		fail "the host's OPENSSL_CONF loaded a module into the program under the runtime"
	fi
	# The runtime started by the host alone, for its network shield (no CAS, no session).
	OPENSSL_CONF=$CASE_DIR/evil.cnf EVIL_MARK=$CASE_DIR/ns.mark LD_PRELOAD=$(cd "$(dirname "$SCONE_BIN")/../lib" && pwd)/libscone.so SCONE_NETWORK_SHIELD=protected \
		SCONE_NETWORK_SHIELD_SERVER_1=protected SCONE_NETWORK_SHIELD_SERVER_1_PORT=TCP:9 \
		run_cmd "$PY" -c 'print("ran")'
	grep -qx ran "$OUT" || { show_output; fail "the program with the host's network shield did not run"; }
	if grep -q "with the runtime" ns.mark 2>/dev/null; then
		cat ns.mark
		fail "the host's OPENSSL_CONF loaded a module into a program whose network shield the host started"
	fi
}

run_case "attack: no spelling of a volume path (links, /proc/self/cwd, /proc/self/fd, chdir through a link) writes plaintext" case_paths
run_case "attack: fds closed behind the runtime (close_range in vfork children, raw close) never redirect writes into a volume" case_closed_behind
run_case "attack: opens through syscall() (SYS_open, SYS_creat, SYS_openat, SYS_openat2) write no plaintext to the host" case_sysopen
run_case "attack: mkstemp, mkostemps, mkdtemp, freopen and names made through syscall() on a volume leave no plaintext on the host" case_temp_names
run_case "attack: a write racing a close (the number given to a host file at once) never takes the host file's offset" case_offset_race
run_case "attack: a volume fd closed by a raw system call whose number the next open gets is released (its lock too)" case_stale_entry
run_case "attack: a daemon closing every fd above 2 (a close loop, closefrom) or dup2ing onto them leaves the volume's own fds alone" case_close_all
run_case "attack: a program that cannot load the runtime gets no handover; LD_PRELOAD cannot be dropped" case_no_runtime_no_handover
run_case "attack: processes holding secrets are not dumpable (no core, no /proc for the same user)" case_not_dumpable
run_case "attack: the host's OPENSSL_CONF loads no provider module into the runtime" case_openssl_conf
run_case "attack: a raw ftruncate of the volumes' shared state (the read cache every process maps) is refused" case_shrink_shared
t_done
