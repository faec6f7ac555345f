#!/usr/bin/python3
"""peer.py - the standard TLS peer of test_netshield_io.sh (Python's ssl
module, i.e. OpenSSL, with nothing of the runtime): clients and servers
talking to the shielded programs of nsio.c.

  clients PORT CAFILE N SIZE CONC      N echo connections, CONC at a time, each
                                       sending SIZE random bytes (while reading)
                                       and checking the echo's sha256
  hold PORT CAFILE K GOFILE            K connections opened and used, kept
                                       until GOFILE exists, used again
  echo-server PORT CERT KEY            a threaded TLS echo server
  flags-peer connect|listen PORT CERT KEY CAFILE
                                       the other end of `nsio flags`
  fetch PORT CAFILE OUT                read until the end into OUT
  lines PORT CAFILE                    send "hi\\n", print what comes back
                                       until the end (and how it ended)
  hello-echo PORT CAFILE N             send "hi\\n", expect it back, then an echo
  bad PORT GOODCA WRONGCA N            N plain-TCP clients and N clients
                                       trusting the wrong CA: all refused
"""
import hashlib
import os
import select
import socket
import ssl
import sys
import threading
import time

TIMEOUT = 30


def client_ctx(cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    return ctx


def connect(port, ctx, timeout=TIMEOUT):
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def recv_exact(s, n):
    out = bytearray()
    while len(out) < n:
        b = s.recv(min(1 << 16, n - len(out)))
        if not b:
            raise EOFError("end after %d of %d bytes" % (len(out), n))
        out += b
    return bytes(out)


def exchange(s, payload):
    """Send payload while reading as many bytes back: one thread, a non-blocking
    socket (an OpenSSL connection must not be read and written by two threads
    at once). Returns what came back."""
    size = len(payload)
    sent, got = 0, bytearray()
    s.setblocking(False)
    try:
        while len(got) < size:
            r, w, _ = select.select([s], [s] if sent < size else [], [], TIMEOUT)
            if not r and not w:
                raise TimeoutError("no progress in %d s (sent %d, got %d of %d)" % (TIMEOUT, sent, len(got), size))
            if w and sent < size:
                try:
                    sent += s.send(payload[sent:sent + 65536])
                except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                    pass
            while len(got) < size:
                try:
                    b = s.recv(65536)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    break
                if not b:
                    raise EOFError("end after %d of %d bytes (sent %d)" % (len(got), size, sent))
                got += b
    finally:
        s.setblocking(True)
        s.settimeout(TIMEOUT)
    return bytes(got)


def echo_once(port, ctx, size):
    payload = os.urandom(size)
    s = connect(port, ctx)
    try:
        got = exchange(s, payload)
        if hashlib.sha256(got).digest() != hashlib.sha256(payload).digest():
            raise ValueError("echo of %d bytes differs" % size)
    finally:
        s.close()


def cmd_clients(port, cafile, n, size, conc):
    port, n, size, conc = int(port), int(n), int(size), int(conc)
    ctx = client_ctx(cafile)
    lock = threading.Lock()
    state = {"next": 0, "ok": 0, "errors": []}

    def worker():
        while True:
            with lock:
                if state["next"] >= n:
                    return
                state["next"] += 1
            try:
                echo_once(port, ctx, size)
                with lock:
                    state["ok"] += 1
            except Exception as e:
                with lock:
                    state["errors"].append(repr(e))

    t0 = time.time()
    ts = [threading.Thread(target=worker) for _ in range(conc)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print("clients: %d ok, %d failed, %.1f s" % (state["ok"], len(state["errors"]), time.time() - t0))
    for e in state["errors"][:5]:
        print("  error:", e)
    return 0 if state["ok"] == n else 1


def cmd_hold(port, cafile, k, gofile):
    port, k = int(port), int(k)
    ctx = client_ctx(cafile)
    socks = []
    for i in range(k):
        s = connect(port, ctx, timeout=120)
        msg = b"held-%d\n" % i
        s.sendall(msg)
        if recv_exact(s, len(msg)) != msg:
            print("hold: wrong echo before")
            return 1
        socks.append(s)
    print("held %d" % k, flush=True)
    while not os.path.exists(gofile):
        time.sleep(0.05)
    for i, s in enumerate(socks):
        s.settimeout(TIMEOUT)
        payload = os.urandom(100000)
        try:
            got = exchange(s, payload)
        except Exception as e:
            print("hold: connection %d (%s): %r" % (i, s.getsockname(), e))
            return 1
        if got != payload:
            print("hold: connection %d: wrong echo after" % i)
            return 1
        s.close()
    print("hold: %d long-lived connections still work" % k)
    return 0


def server_ctx(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


def cmd_echo_server(port, cert, key):
    ctx = server_ctx(cert, key)
    ls = socket.create_server(("127.0.0.1", int(port)), backlog=64)
    print("ready", flush=True)

    def serve(c):
        try:
            s = ctx.wrap_socket(c, server_side=True)
            while True:
                b = s.recv(1 << 16)
                if not b:
                    break
                s.sendall(b)
            s.close()
        except Exception as e:
            print("echo-server:", repr(e), file=sys.stderr, flush=True)
            c.close()

    while True:
        c, _ = ls.accept()
        c.settimeout(TIMEOUT)
        threading.Thread(target=serve, args=(c,), daemon=True).start()


def pattern(n, seed):
    return bytes(((i * 7 + seed) & 0xFF) for i in range(n))


def recv_line(s):
    out = b""
    while not out.endswith(b"\n"):
        b = s.recv(1)
        if not b:
            raise EOFError("end inside a line: %r" % out)
        out += b
    return out


def cmd_flags_peer(role, port, cert, key, cafile):
    port = int(port)
    if role == "listen":  # nsio listens: we connect
        cctx = client_ctx(cafile)

        def conn():
            for _ in range(100):
                try:
                    return connect(port, cctx)
                except ConnectionRefusedError:
                    time.sleep(0.05)
            raise RuntimeError("cannot connect")
    else:
        sctx = server_ctx(cert, key)
        ls = socket.create_server(("127.0.0.1", port))
        print("ready", flush=True)

        def conn():
            c, _ = ls.accept()
            c.settimeout(TIMEOUT)
            return sctx.wrap_socket(c, server_side=True)

    s = conn()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    assert recv_line(s) == b"HELLO\n"
    s.sendall(b"READY\n")
    assert recv_line(s) == b"GO1\n"
    s.sendall(b"AGAIN\n")
    line = recv_line(s)
    assert line == b"GO1\n", "the line sent by sendmmsg: %r" % line
    p = pattern(1000, 1)
    s.sendall(p[:600])
    time.sleep(0.2)
    s.sendall(p[600:])
    assert recv_line(s) == b"GO2\n"
    s.sendall(b"PEEKDATA-0123456789")
    assert recv_line(s) == b"GO3\n"
    s.sendall(pattern(5000, 3))
    assert recv_line(s) == b"GO4\n"
    p = pattern(3000, 4)
    s.sendall(p[:1500])
    time.sleep(0.1)
    s.sendall(p[1500:])
    assert recv_line(s) == b"GO6\n"
    s.sendall(b"0123456789")
    line = recv_line(s)
    assert line == b"GO5\n", "after the refused SCM_RIGHTS: %r" % line
    s.sendall(b"OK5\n")
    rest = s.recv(100)
    assert rest == b"", "expected the end after SHUT_WR, got %r" % rest
    s.sendall(b"AFTER-EOF\n")
    s.unwrap().close()
    # the second connection: closed by us after one line
    s = conn()
    assert recv_line(s) == b"HELLO2\n"
    s.close()
    print("flags-peer: ok")
    return 0


def cmd_fetch(port, cafile, out):
    s = connect(int(port), client_ctx(cafile))
    with open(out, "wb") as f:
        while True:
            b = s.recv(1 << 16)
            if not b:
                break
            f.write(b)
    s.close()
    return 0


def cmd_lines(port, cafile):
    s = connect(int(port), client_ctx(cafile))
    s.sendall(b"hi\n")
    got = b""
    how = "end"
    try:
        while True:
            b = s.recv(1 << 16)
            if not b:
                break
            got += b
    except Exception as e:
        how = repr(e)
    print("received %r" % got.decode("latin-1"))
    print("ended: %s" % how)
    return 0


def cmd_hello_echo(port, cafile, n):
    """n connections: send "hi\\n", expect it back, then a 100000-byte echo."""
    ctx = client_ctx(cafile)
    for i in range(int(n)):
        s = connect(int(port), ctx)
        s.sendall(b"hi\n")
        first = recv_exact(s, 3)
        if first != b"hi\n":
            print("hello-echo %d: first answer %r" % (i, first))
            return 1
        payload = os.urandom(100000)
        if exchange(s, payload) != payload:
            print("hello-echo %d: the echo differs" % i)
            return 1
        s.close()
    print("hello-echo: %s ok" % n)
    return 0


def cmd_bad(port, goodca, wrongca, n):
    port, n = int(port), int(n)
    wrong = client_ctx(wrongca)
    bad = []
    for i in range(n):
        # a plain client: no HTTP answer, no echo of its plaintext
        c = socket.create_connection(("127.0.0.1", port), timeout=10)
        req = b"GET / HTTP/1.0\r\nX-Plain: %d\r\n\r\n" % i
        c.sendall(req)
        got = b""
        try:
            while len(got) < 4096:
                b = c.recv(4096)
                if not b:
                    break
                got += b
        except (ConnectionResetError, socket.timeout) as e:
            if isinstance(e, socket.timeout):
                bad.append("plain client %d: no answer and no close within 10 s" % i)
        c.close()
        if b"GET /" in got or b"X-Plain" in got:
            bad.append("plain client %d: its plaintext came back: %r" % (i, got[:80]))
        # a TLS client trusting another CA: the handshake fails
        try:
            s = connect(port, wrong, timeout=10)
            s.sendall(b"should-not-pass\n")
            bad.append("wrong-CA client %d: handshake succeeded" % i)
            s.close()
        except ssl.SSLCertVerificationError:
            pass
        except (OSError, ssl.SSLError) as e:
            bad.append("wrong-CA client %d: the handshake failed with %r instead of a certificate "
                       "verification failure" % (i, e))
        # a client that sends half a ClientHello and resets
        c = socket.create_connection(("127.0.0.1", port), timeout=10)
        c.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        c.close()
    for b in bad[:5]:
        print("bad:", b)
    print("bad clients: %d refused, %d problems" % (3 * n, len(bad)))
    return 1 if bad else 0


def main(argv):
    cmds = {
        "clients": cmd_clients,
        "hold": cmd_hold,
        "echo-server": cmd_echo_server,
        "flags-peer": cmd_flags_peer,
        "fetch": cmd_fetch,
        "lines": cmd_lines,
        "bad": cmd_bad,
        "hello-echo": cmd_hello_echo,
    }
    if len(argv) < 2 or argv[1] not in cmds:
        print(__doc__, file=sys.stderr)
        return 2
    return cmds[argv[1]](*argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
