/*
 * nsio.c - plain POSIX servers and clients for test_netshield_io.sh: they
 * use the socket API the way real programs do and know nothing about TLS;
 * the network shield (libscone.so, preloaded) wraps their connections.
 *
 *   nsio server MODE PORT [--chunk N] [--block]
 *       an echo server: MODE et (epoll EPOLLET|EPOLLIN|EPOLLOUT|EPOLLRDHUP,
 *       non-blocking accept4, read and write until EAGAIN), lt (epoll
 *       level-triggered), oneshot (epoll EPOLLONESHOT re-armed after every
 *       wake-up), poll, select, ppoll, pselect (SIGUSR1 blocked except in
 *       the wait, which reports "signal N" on stdout). --chunk: bytes read
 *       per wake-up (lt, oneshot, poll, select); --block: blocking
 *       connections (poll, select, lt): one read per readiness, writes
 *       wait. Prints "ready" when it listens.
 *   nsio forkserver PORT [--parent-delay MS] [--read-first]
 *       accept, fork: the child echoes until EOF, the parent closes its copy
 *       (after MS milliseconds). --read-first: the parent reads a line
 *       before the fork, the child writes it back before echoing.
 *   nsio forkboth PORT
 *       one connection: read a line, fork; the child writes "child-1\n",
 *       then the parent writes (expected: EBADF), then the child writes
 *       "child-2\n" and closes. Prints what each write returned.
 *   nsio forkafter PORT
 *       one connection: read a line, fork; the child writes "child-1\n" and
 *       exits without closing; then the parent writes "parent\n".
 *   nsio sendfile PORT FILE
 *       three connections: splice through a pipe into the socket (the third),
 *       two before it: sendfile with an offset, then with the file's own
 *       offset; the whole file each, then close.
 *   nsio client HOST PORT nb|block http|echo [FILE]
 *       connect (nb: non-blocking, EINPROGRESS, poll POLLOUT, SO_ERROR);
 *       http: send a GET, read until EOF; echo: send FILE while reading the
 *       echo (nb: one poll loop; block: a sender thread) until as many
 *       bytes came back. What was read goes to stdout.
 *   nsio flags connect|listen PORT [--sigpipe]
 *       the recv/send flags conversation with tests/integration/netshield/peer.py
 *       (see there). --sigpipe: only the last step, writing without
 *       MSG_NOSIGNAL after the peer closed (the process should die of SIGPIPE).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "nsio: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

#define CHECK(cond, ...)                                                                                     \
	do {                                                                                                 \
		if (!(cond))                                                                                 \
			die(__VA_ARGS__);                                                                    \
	} while (0)

static void msleep(int ms)
{
	struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000};
	while (nanosleep(&t, &t) != 0 && errno == EINTR)
		;
}

static struct sockaddr_in loopback(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

static int listen_on(int port, bool nonblock)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0), one = 1;
	struct sockaddr_in a = loopback(port);

	CHECK(s >= 0, "socket: %s", strerror(errno));
	(void)setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	CHECK(bind(s, (struct sockaddr *)&a, sizeof(a)) == 0, "bind %d: %s", port, strerror(errno));
	CHECK(listen(s, 512) == 0, "listen: %s", strerror(errno));
	printf("ready\n");
	fflush(stdout);
	return s;
}

/* write all n bytes (a blocking fd): 0, or -1 */
static int write_all(int fd, const void *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p = (const char *)p + w;
		n -= (size_t)w;
	}
	return 0;
}

/* ---------------- event-loop echo servers ---------------- */

struct conn {
	int fd;
	uint8_t *out;
	size_t off, len, cap;
	bool eof;
};

#define MAXFD 65536
static struct conn *conns[MAXFD];
static size_t chunk = 65536;
static bool blocking_conns;
static volatile sig_atomic_t got_signal;

static struct conn *conn_new(int fd)
{
	struct conn *c = calloc(1, sizeof(*c));
	CHECK(c && fd < MAXFD, "conn_new");
	c->fd = fd;
	conns[fd] = c;
	return c;
}

static bool debug;
static unsigned long long served;

static void conn_free(struct conn *c, const char *why)
{
	served++;
	if (debug)
		fprintf(stderr, "nsio: fd %d closed (%s, errno %s, %llu served)\n", c->fd, why,
			strerror(errno), served);
	conns[c->fd] = NULL;
	close(c->fd);
	free(c->out);
	free(c);
}

static void out_append(struct conn *c, const uint8_t *p, size_t n)
{
	if (c->off + c->len + n > c->cap) {
		if (c->off) {
			memmove(c->out, c->out + c->off, c->len);
			c->off = 0;
		}
		if (c->len + n > c->cap) {
			size_t cap = c->cap ? c->cap : 65536;
			while (cap < c->len + n)
				cap *= 2;
			c->out = realloc(c->out, cap);
			CHECK(c->out, "out of memory");
			c->cap = cap;
		}
	}
	memcpy(c->out + c->off + c->len, p, n);
	c->len += n;
}

/* Push pending output: 0 (maybe some left: EAGAIN), -1 the connection failed. */
static int out_flush(struct conn *c)
{
	while (c->len) {
		ssize_t w = write(c->fd, c->out + c->off, c->len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (w <= 0)
			return -1;
		c->off += (size_t)w;
		c->len -= (size_t)w;
	}
	c->off = 0;
	return 0;
}

/* One read of up to `chunk` bytes into the output: 1 data, 0 EOF, 2 EAGAIN, -1 error. */
static int read_once(struct conn *c)
{
	uint8_t buf[65536];
	size_t want = chunk < sizeof(buf) ? chunk : sizeof(buf);
	ssize_t r;

	do
		r = read(c->fd, buf, want);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 2 : -1;
	if (r == 0) {
		c->eof = true;
		return 0;
	}
	out_append(c, buf, (size_t)r);
	return 1;
}

/*
 * A readable/writable connection in a level-triggered loop: one read (when
 * readable), then push. Returns false when it is to be closed.
 */
static bool serve_level(struct conn *c, bool readable)
{
	int r = 0;

	if (readable && !c->eof) {
		r = read_once(c);
		if (r < 0)
			return false;
	}
	if (out_flush(c) < 0)
		return false;
	return !(c->eof && c->len == 0);
}

static int accept_one(int ls, bool nonblock_conn)
{
	int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC | (nonblock_conn ? SOCK_NONBLOCK : 0));
	if (fd < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED && errno != EINTR)
		fprintf(stderr, "nsio: accept4: %s\n", strerror(errno));
	if (fd >= 0)
		(void)conn_new(fd);
	return fd;
}

static void on_usr1(int sig)
{
	(void)sig;
	got_signal++;
}

static void loop_epoll(int ls, bool et, bool oneshot)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls}, evs[64];

	CHECK(ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev) == 0, "epoll: %s", strerror(errno));
	for (;;) {
		int n = epoll_wait(ep, evs, 64, -1);
		if (n < 0 && errno == EINTR)
			continue;
		CHECK(n >= 0, "epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			uint32_t e = evs[i].events;
			struct conn *c;
			if (fd == ls) {
				for (;;) { /* the listener is non-blocking in et mode; once otherwise */
					int cfd = accept_one(ls, !blocking_conns);
					if (cfd < 0)
						break;
					ev.data.fd = cfd;
					ev.events = et	      ? EPOLLIN | EPOLLOUT | EPOLLET | EPOLLRDHUP
						    : oneshot ? EPOLLIN | EPOLLONESHOT
							      : EPOLLIN;
					CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &ev) == 0,
					      "epoll_ctl add: %s", strerror(errno));
					if (!et)
						break;
				}
				continue;
			}
			if (!(c = conns[fd]))
				continue;
			if (et) {
				bool dead = false;
				if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
					int r;
					while ((r = read_once(c)) == 1) {
						if (out_flush(c) < 0) {
							dead = true;
							break;
						}
					}
					if (r < 0)
						dead = true;
				}
				if (!dead && out_flush(c) < 0)
					dead = true;
				if (dead || (c->eof && c->len == 0))
					conn_free(c,
						  dead ? "error" : "eof"); /* close removes it from the set */
				continue;
			}
			if (!serve_level(c, e & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
				conn_free(c, "end");
				continue;
			}
			ev.data.fd = fd;
			ev.events =
			    (c->eof ? 0 : EPOLLIN) | (c->len ? EPOLLOUT : 0) | (oneshot ? EPOLLONESHOT : 0);
			CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) == 0, "epoll_ctl mod: %s",
			      strerror(errno));
		}
	}
}

enum pmode { P_POLL, P_PPOLL, P_SELECT, P_PSELECT };

static void loop_poll(int ls, enum pmode m)
{
	static struct pollfd pf[MAXFD];
	sigset_t block, none;

	sigemptyset(&none);
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	if (m == P_PPOLL || m == P_PSELECT) {
		struct sigaction sa = {.sa_handler = on_usr1};
		sigaction(SIGUSR1, &sa, NULL);
		sigprocmask(SIG_BLOCK, &block, NULL);
	}
	for (;;) {
		nfds_t n = 0;
		int r;
		pf[n++] = (struct pollfd){.fd = ls, .events = POLLIN};
		for (int fd = 0; fd < MAXFD; fd++)
			if (conns[fd])
				pf[n++] = (struct pollfd){.fd = fd,
							  .events = (short)((conns[fd]->eof ? 0 : POLLIN) |
									    (conns[fd]->len ? POLLOUT : 0))};
		if (m == P_POLL) {
			r = poll(pf, n, -1);
		} else if (m == P_PPOLL) {
			r = ppoll(pf, n, NULL, &none);
		} else {
			fd_set rd, wr;
			int max = -1;
			FD_ZERO(&rd);
			FD_ZERO(&wr);
			for (nfds_t i = 0; i < n; i++) {
				CHECK(pf[i].fd < FD_SETSIZE, "fd %d too large for select", pf[i].fd);
				if (pf[i].events & POLLIN)
					FD_SET(pf[i].fd, &rd);
				if (pf[i].events & POLLOUT)
					FD_SET(pf[i].fd, &wr);
				if (pf[i].fd > max)
					max = pf[i].fd;
			}
			if (m == P_SELECT) {
				struct timeval tv = {5, 0}; /* a timeout, so that it is handled too */
				r = select(max + 1, &rd, &wr, NULL, &tv);
			} else {
				r = pselect(max + 1, &rd, &wr, NULL, NULL, &none);
			}
			for (nfds_t i = 0; r > 0 && i < n; i++)
				pf[i].revents = (short)((FD_ISSET(pf[i].fd, &rd) ? POLLIN : 0) |
							(FD_ISSET(pf[i].fd, &wr) ? POLLOUT : 0));
			if (r == 0)
				for (nfds_t i = 0; i < n; i++)
					pf[i].revents = 0;
		}
		if (r < 0 && errno == EINTR) {
			printf("signal %d\n", (int)got_signal);
			fflush(stdout);
			continue;
		}
		CHECK(r >= 0, "wait: %s", strerror(errno));
		for (nfds_t i = 0; i < n; i++) {
			struct conn *c;
			if (!pf[i].revents)
				continue;
			if (pf[i].fd == ls) {
				(void)accept_one(ls, !blocking_conns);
				continue;
			}
			c = conns[pf[i].fd];
			CHECK(!(pf[i].revents & POLLNVAL), "POLLNVAL on fd %d", pf[i].fd);
			if (c && !serve_level(c, pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				conn_free(c, "end");
		}
	}
}

static int cmd_server(int argc, char **argv)
{
	const char *mode;
	int port, ls;

	CHECK(argc >= 2, "usage: nsio server MODE PORT [--chunk N] [--block]");
	mode = argv[0];
	port = atoi(argv[1]);
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--chunk") == 0 && i + 1 < argc)
			chunk = (size_t)atol(argv[++i]);
		else if (strcmp(argv[i], "--block") == 0)
			blocking_conns = true;
		else
			die("unknown option %s", argv[i]);
	}
	signal(SIGPIPE, SIG_IGN);
	debug = getenv("NSIO_DEBUG") != NULL;
	ls = listen_on(port, strcmp(mode, "et") == 0);
	if (strcmp(mode, "et") == 0)
		loop_epoll(ls, true, false);
	else if (strcmp(mode, "lt") == 0)
		loop_epoll(ls, false, false);
	else if (strcmp(mode, "oneshot") == 0)
		loop_epoll(ls, false, true);
	else if (strcmp(mode, "poll") == 0)
		loop_poll(ls, P_POLL);
	else if (strcmp(mode, "ppoll") == 0)
		loop_poll(ls, P_PPOLL);
	else if (strcmp(mode, "select") == 0)
		loop_poll(ls, P_SELECT);
	else if (strcmp(mode, "pselect") == 0)
		loop_poll(ls, P_PSELECT);
	else
		die("unknown mode %s", mode);
	return 0;
}

/* ---------------- fork ---------------- */

static void echo_blocking(int fd)
{
	char buf[65536];
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return;
		if (write_all(fd, buf, (size_t)r) != 0)
			return;
	}
}

static int read_line(int fd, char *buf, size_t max);

/* --read-first: the parent reads a line before the fork, the child writes it back first. */
static int cmd_forkserver(int argc, char **argv)
{
	int ls, delay = 0;
	bool read_first = false;

	CHECK(argc >= 1, "usage: nsio forkserver PORT [--parent-delay MS] [--read-first]");
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--parent-delay") == 0 && i + 1 < argc)
			delay = atoi(argv[++i]);
		else if (strcmp(argv[i], "--read-first") == 0)
			read_first = true;
		else
			die("unknown option %s", argv[i]);
	}
	signal(SIGPIPE, SIG_IGN);
	ls = listen_on(atoi(argv[0]), false);
	for (;;) {
		int fd = accept(ls, NULL, NULL);
		char line[256] = "";
		pid_t pid;
		if (fd < 0)
			continue;
		if (read_first && read_line(fd, line, sizeof(line)) < 0) {
			close(fd);
			continue;
		}
		pid = fork();
		CHECK(pid >= 0, "fork: %s", strerror(errno));
		if (pid == 0) {
			close(ls);
			if (read_first) {
				msleep(50);
				if (write_all(fd, line, strlen(line)) != 0)
					fprintf(stderr, "nsio: child: write: %s\n", strerror(errno));
			}
			echo_blocking(fd);
			close(fd);
			_exit(0);
		}
		if (delay)
			msleep(delay);
		close(fd);
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
	}
}

static int read_line(int fd, char *buf, size_t max)
{
	size_t n = 0;
	while (n + 1 < max) {
		ssize_t r = read(fd, buf + n, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		if (buf[n++] == '\n')
			break;
	}
	buf[n] = '\0';
	return (int)n;
}

static const char *wrote(ssize_t r, size_t n)
{
	static char s[64];
	if (r == (ssize_t)n)
		return "ok";
	snprintf(s, sizeof(s), "%s", r < 0 ? (errno == EBADF ? "EBADF" : strerror(errno)) : "short");
	return s;
}

static void tell(int fd)
{
	(void)!write(fd, "x", 1);
}

static void await_(int fd)
{
	char x;
	(void)!read(fd, &x, 1);
}

/*
 * forkboth: one connection, a line read (the handshake is over), fork;
 * child, parent, child write a line each in turn (synchronised by pipes);
 * then the child closes and exits, then the parent closes.
 * forkafter: the same, but the parent writes a line and exits without
 * closing; the child writes once the parent is gone.
 */
static int cmd_forkboth(int argc, char **argv, bool after)
{
	int ls, fd, p2c[2], c2p[2];
	char line[256];
	pid_t pid, parent = getpid();
	ssize_t r;

	CHECK(argc >= 1, "usage: nsio forkboth|forkafter PORT");
	signal(SIGPIPE, SIG_IGN);
	ls = listen_on(atoi(argv[0]), false);
	fd = accept(ls, NULL, NULL);
	CHECK(fd >= 0, "accept: %s", strerror(errno));
	CHECK(read_line(fd, line, sizeof(line)) > 0, "read_line: %s", strerror(errno));
	CHECK(pipe(p2c) == 0 && pipe(c2p) == 0, "pipe");
	fflush(stdout);
	pid = fork();
	CHECK(pid >= 0, "fork");
	if (after) {
		if (pid != 0) {
			r = write(fd, "parent\n", 7);
			printf("parent write: %s\n", wrote(r, 7));
			exit(0); /* without closing it */
		}
		while (getppid() == parent)
			msleep(10);
		msleep(100);
		r = write(fd, "child\n", 6);
		printf("child write: %s\n", wrote(r, 6));
		fflush(stdout);
		msleep(200);
		close(fd);
		return 0;
	}
	if (pid == 0) {
		r = write(fd, "child-1\n", 8);
		printf("child write 1: %s\n", wrote(r, 8));
		fflush(stdout);
		tell(c2p[1]);
		await_(p2c[0]);
		r = write(fd, "child-2\n", 8);
		printf("child write 2: %s\n", wrote(r, 8));
		fflush(stdout);
		close(fd);
		_exit(0);
	}
	await_(c2p[0]);
	r = write(fd, "parent-1\n", 9);
	printf("parent write 1: %s\n", wrote(r, 9));
	fflush(stdout);
	tell(p2c[1]);
	waitpid(pid, NULL, 0);
	r = write(fd, "parent-2\n", 9);
	printf("parent write 2: %s\n", wrote(r, 9));
	fflush(stdout);
	close(fd);
	return 0;
}

/* ---------------- sendfile ---------------- */

static int cmd_sendfile(int argc, char **argv)
{
	int ls;
	struct stat st;

	CHECK(argc >= 2, "usage: nsio sendfile PORT FILE");
	signal(SIGPIPE, SIG_IGN);
	ls = listen_on(atoi(argv[0]), false);
	for (int k = 0; k < 3; k++) {
		int fd = accept(ls, NULL, NULL), in = open(argv[1], O_RDONLY), p[2];
		off_t off = 0, sent = 0;
		CHECK(fd >= 0 && in >= 0 && fstat(in, &st) == 0, "accept/open: %s", strerror(errno));
		/* the third connection: the file into a pipe (the kernel's splice), the pipe into the socket
		 */
		CHECK(k != 2 || pipe(p) == 0, "pipe: %s", strerror(errno));
		while (k == 2 && sent < st.st_size) {
			ssize_t in_pipe = splice(in, NULL, p[1], NULL, 65536, 0);
			CHECK(in_pipe > 0, "splice file -> pipe: %s",
			      in_pipe < 0 ? strerror(errno) : "returned 0");
			while (in_pipe > 0) {
				ssize_t w = splice(p[0], NULL, fd, NULL, (size_t)in_pipe, 0);
				CHECK(w > 0, "splice pipe -> socket after %lld bytes: %s", (long long)sent,
				      w < 0 ? strerror(errno) : "returned 0");
				in_pipe -= w;
				sent += w;
			}
		}
		while (k < 2 && sent < st.st_size) {
			ssize_t w = k == 0 ? sendfile(fd, in, &off, (size_t)(st.st_size - sent))
					   : sendfile(fd, in, NULL, 100000);
			CHECK(w > 0, "sendfile (%s offset) after %lld bytes: %s",
			      k == 0 ? "with an" : "the file's", (long long)sent,
			      w < 0 ? strerror(errno) : "returned 0");
			sent += w;
		}
		CHECK(k != 0 || off == st.st_size, "sendfile: offset %lld, expected %lld", (long long)off,
		      (long long)st.st_size);
		CHECK(k != 1 || lseek(in, 0, SEEK_CUR) == st.st_size, "sendfile: file offset %lld",
		      (long long)lseek(in, 0, SEEK_CUR));
		printf("sent %lld\n", (long long)sent);
		fflush(stdout);
		close(in);
		close(fd);
	}
	return 0;
}

/* ---------------- client ---------------- */

struct sender {
	int fd;
	const uint8_t *p;
	size_t n;
	int err;
};

static void *send_thread(void *arg)
{
	struct sender *s = arg;
	size_t done = 0;
	while (done < s->n) {
		size_t k = s->n - done < 50000 ? s->n - done : 50000;
		ssize_t w = send(s->fd, s->p + done, k, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			s->err = errno ? errno : EIO;
			return NULL;
		}
		done += (size_t)w;
	}
	return NULL;
}

static uint8_t *slurp(const char *path, size_t *n)
{
	int fd = open(path, O_RDONLY);
	struct stat st;
	uint8_t *p;
	size_t got = 0;

	CHECK(fd >= 0 && fstat(fd, &st) == 0, "%s: %s", path, strerror(errno));
	p = malloc((size_t)st.st_size + 1);
	CHECK(p, "out of memory");
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, p + got, (size_t)st.st_size - got);
		CHECK(r > 0, "read %s", path);
		got += (size_t)r;
	}
	close(fd);
	*n = got;
	return p;
}

static int cmd_client(int argc, char **argv)
{
	struct sockaddr_in a;
	bool nb;
	bool http;
	int fd, r;
	uint8_t *payload = NULL;
	size_t size = 0, sent = 0, got = 0;
	static uint8_t buf[1 << 16];

	CHECK(argc >= 4, "usage: nsio client HOST PORT nb|block http|echo [FILE]");
	signal(SIGPIPE, SIG_IGN);
	a = loopback(atoi(argv[1]));
	CHECK(inet_pton(AF_INET, argv[0], &a.sin_addr) == 1, "bad address %s", argv[0]);
	nb = strcmp(argv[2], "nb") == 0;
	http = strcmp(argv[3], "http") == 0;
	if (http) {
		payload = (uint8_t *)strdup("GET / HTTP/1.0\r\n\r\n");
		size = strlen((char *)payload);
	} else {
		CHECK(argc >= 5, "echo needs a FILE");
		payload = slurp(argv[4], &size);
	}
	fd = socket(AF_INET, SOCK_STREAM | (nb ? SOCK_NONBLOCK : 0), 0);
	CHECK(fd >= 0, "socket: %s", strerror(errno));
	r = connect(fd, (struct sockaddr *)&a, sizeof(a));
	if (nb) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		int err = 0;
		socklen_t len = sizeof(err);
		CHECK(r == 0 || errno == EINPROGRESS, "connect: %s", strerror(errno));
		if (r != 0)
			fprintf(stderr, "nsio: connect: EINPROGRESS\n");
		CHECK(poll(&p, 1, 10000) == 1 && (p.revents & POLLOUT),
		      "poll POLLOUT after connect: revents %#x", p.revents);
		CHECK(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0, "SO_ERROR: %s",
		      strerror(err));
		/* one poll loop for both directions */
		while (http ? true : got < size) {
			struct pollfd q = {.fd = fd, .events = (short)(POLLIN | (sent < size ? POLLOUT : 0))};
			int k = poll(&q, 1, 20000);
			CHECK(k == 1, "poll: %s (sent %zu, got %zu)", k == 0 ? "timed out" : strerror(errno),
			      sent, got);
			if (q.revents & POLLOUT && sent < size) {
				ssize_t w = write(fd, payload + sent, size - sent);
				CHECK(w > 0 || errno == EAGAIN, "write: %s", strerror(errno));
				if (w > 0)
					sent += (size_t)w;
			}
			if (q.revents & (POLLIN | POLLHUP | POLLERR)) {
				ssize_t n = read(fd, buf, sizeof(buf));
				if (n < 0 && errno == EAGAIN)
					continue;
				CHECK(n >= 0, "read: %s (got %zu)", strerror(errno), got);
				if (n == 0)
					break;
				fwrite(buf, 1, (size_t)n, stdout);
				got += (size_t)n;
			}
		}
	} else {
		struct sender s = {.fd = fd, .p = payload, .n = size};
		pthread_t t;
		CHECK(r == 0, "connect: %s", strerror(errno));
		CHECK(pthread_create(&t, NULL, send_thread, &s) == 0, "pthread_create");
		while (http || got < size) {
			ssize_t n = read(fd, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			CHECK(n >= 0, "read: %s (got %zu)", strerror(errno), got);
			if (n == 0)
				break;
			fwrite(buf, 1, (size_t)n, stdout);
			got += (size_t)n;
		}
		pthread_join(t, NULL);
		CHECK(s.err == 0, "send: %s", strerror(s.err));
	}
	fflush(stdout);
	close(fd);
	return 0;
}

/* ---------------- flags ---------------- */

static int flags_conn(const char *role, int port, int *ls)
{
	struct sockaddr_in a = loopback(port);
	int fd;

	if (strcmp(role, "listen") == 0) {
		if (*ls < 0)
			*ls = listen_on(port, false);
		fd = accept(*ls, NULL, NULL);
		CHECK(fd >= 0, "accept: %s", strerror(errno));
		return fd;
	}
	fd = socket(AF_INET, SOCK_STREAM, 0);
	CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0, "connect: %s", strerror(errno));
	return fd;
}

static void pattern(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 7 + seed);
}

static void expect_bytes(const char *what, const uint8_t *got, ssize_t n, const uint8_t *want, size_t wn)
{
	CHECK(n == (ssize_t)wn, "%s: got %zd bytes (%s), expected %zu", what, n, n < 0 ? strerror(errno) : "",
	      wn);
	CHECK(memcmp(got, want, wn) == 0, "%s: the bytes differ", what);
	printf("%s: ok\n", what);
	fflush(stdout);
}

static void say(int fd, const char *s)
{
	CHECK(write_all(fd, s, strlen(s)) == 0, "write %s: %s", s, strerror(errno));
}

/* The last step: the peer closed; writes fail with EPIPE (MSG_NOSIGNAL) or kill with SIGPIPE. */
static void flags_epipe(int fd, bool nosignal)
{
	char b[64];
	ssize_t r;
	int i;

	say(fd, "HELLO2\n");
	r = read(fd, b, sizeof(b)); /* the peer closes: EOF */
	CHECK(r == 0 || (r < 0 && errno == ECONNRESET), "read after the peer closed: %zd (%s)", r,
	      r < 0 ? strerror(errno) : "");
	for (i = 0; i < 200; i++) {
		r = nosignal ? send(fd, "xxxxxxxx", 8, MSG_NOSIGNAL) : write(fd, "xxxxxxxx", 8);
		if (r < 0)
			break;
		msleep(10);
	}
	CHECK(r < 0, "200 writes after the peer closed all succeeded");
	printf("write after the peer closed: %s (still alive)\n", errno == EPIPE ? "EPIPE" : strerror(errno));
	fflush(stdout);
	CHECK(errno == EPIPE || errno == ECONNRESET, "unexpected errno");
}

static int cmd_flags(int argc, char **argv)
{
	int ls = -1, fd, one = 1;
	bool sigpipe_only;
	uint8_t want[8192], got[8192];
	char b[64];
	ssize_t r;

	CHECK(argc >= 2, "usage: nsio flags connect|listen PORT [--sigpipe]");
	sigpipe_only = argc >= 3 && strcmp(argv[2], "--sigpipe") == 0;
	if (sigpipe_only) {
		fd = flags_conn(argv[0], atoi(argv[1]), &ls);
		flags_epipe(fd, false);
		return 0; /* not reached: SIGPIPE */
	}
	fd = flags_conn(argv[0], atoi(argv[1]), &ls);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	/* 1. MSG_DONTWAIT on a blocking socket with nothing to read: EAGAIN */
	say(fd, "HELLO\n");
	CHECK(read(fd, b, 6) == 6 && memcmp(b, "READY\n", 6) == 0, "no READY from the peer");
	r = recv(fd, b, sizeof(b), MSG_DONTWAIT);
	CHECK(r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK), "recv MSG_DONTWAIT with nothing: %zd (%s)",
	      r, r < 0 ? strerror(errno) : "data");
	printf("MSG_DONTWAIT: EAGAIN\n");

	/* 2. sendmsg with iovecs, then sendmmsg (two messages, one line); MSG_WAITALL gets exactly 1000 bytes
	 */
	{
		struct iovec iov[3] = {{"G", 1}, {"O1", 2}, {"\n", 1}};
		struct msghdr m = {.msg_iov = iov, .msg_iovlen = 3};
		struct mmsghdr mm[2] = {{.msg_hdr = {.msg_iov = iov, .msg_iovlen = 1}},
					{.msg_hdr = {.msg_iov = iov + 1, .msg_iovlen = 2}}};
		CHECK(sendmsg(fd, &m, 0) == 4, "sendmsg: %s", strerror(errno));
		CHECK(read(fd, b, 6) == 6 && memcmp(b, "AGAIN\n", 6) == 0, "no AGAIN from the peer");
		CHECK(sendmmsg(fd, mm, 2, 0) == 2 && mm[0].msg_len == 1 && mm[1].msg_len == 3, "sendmmsg: %s",
		      strerror(errno));
		pattern(want, 1000, 1);
		r = recv(fd, got, 1000, MSG_WAITALL);
		expect_bytes("MSG_WAITALL 1000 (600 + 400)", got, r, want, 1000);
	}

	/* 3. writev; MSG_PEEK then read again */
	{
		struct iovec iov[2] = {{"G", 1}, {"O2\n", 3}};
		struct pollfd p = {.fd = fd, .events = POLLIN};
		CHECK(writev(fd, iov, 2) == 4, "writev: %s", strerror(errno));
		CHECK(poll(&p, 1, 10000) == 1 && (p.revents & POLLIN), "poll POLLIN before MSG_PEEK");
		r = recv(fd, got, 9, MSG_PEEK);
		expect_bytes("MSG_PEEK 9", got, r, (const uint8_t *)"PEEKDATA-", 9);
		r = recv(fd, got, 100, MSG_PEEK);
		expect_bytes("MSG_PEEK 100 (19 there)", got, r, (const uint8_t *)"PEEKDATA-0123456789", 19);
		p.revents = 0;
		CHECK(poll(&p, 1, 0) == 1 && (p.revents & POLLIN), "peeked bytes are not readable (poll)");
		r = recv(fd, got, 19, MSG_WAITALL);
		expect_bytes("read after MSG_PEEK", got, r, (const uint8_t *)"PEEKDATA-0123456789", 19);
		p.revents = 0;
		r = poll(&p, 1, 200);
		CHECK(r == 0, "poll after everything was read: %zd, revents %#x", r, p.revents);
	}

	/* 4. recvmsg into three iovecs with MSG_WAITALL; readv */
	{
		struct iovec iov[3] = {{got, 100}, {got + 100, 900}, {got + 1000, 4000}};
		struct msghdr m = {.msg_iov = iov, .msg_iovlen = 3};
		size_t n = 0;
		say(fd, "GO3\n");
		pattern(want, 5000, 3);
		memset(got, 0, sizeof(got));
		r = recvmsg(fd, &m, MSG_WAITALL);
		expect_bytes("recvmsg 3 iovecs MSG_WAITALL 5000", got, r, want, 5000);
		say(fd, "GO4\n");
		pattern(want, 3000, 4);
		memset(got, 0, sizeof(got));
		while (n < 3000) {
			struct iovec v[2];
			int cnt = 1;
			if (n < 1000) {
				v[0] = (struct iovec){got + n, 1000 - n};
				v[1] = (struct iovec){got + 1000, 2000};
				cnt = 2;
			} else {
				v[0] = (struct iovec){got + n, 3000 - n};
			}
			r = readv(fd, v, cnt);
			CHECK(r > 0, "readv: %zd %s", r, r < 0 ? strerror(errno) : "EOF");
			n += (size_t)r;
		}
		expect_bytes("readv 2 iovecs 3000", got, (ssize_t)n, want, 3000);
	}

	/* 4b. recvmmsg: two messages of 4 and 6 bytes, each filled (MSG_WAITALL) */
	{
		struct iovec iov[2] = {{got, 4}, {got + 4, 6}};
		struct mmsghdr mm[2] = {{.msg_hdr = {.msg_iov = iov, .msg_iovlen = 1}},
					{.msg_hdr = {.msg_iov = iov + 1, .msg_iovlen = 1}}};
		say(fd, "GO6\n");
		memset(got, 0, sizeof(got));
		r = recvmmsg(fd, mm, 2, MSG_WAITALL, NULL);
		CHECK(r == 2 && mm[0].msg_len == 4 && mm[1].msg_len == 6, "recvmmsg: %zd (%s)", r,
		      r < 0 ? strerror(errno) : "short");
		expect_bytes("recvmmsg 4 + 6", got, 10, (const uint8_t *)"0123456789", 10);
	}

	/* 5. sendmsg with SCM_RIGHTS: EOPNOTSUPP, and the connection still works */
	{
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} u;
		struct iovec iov = {"Z", 1};
		struct msghdr m = {
		    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
		struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
		int passfd = 1;
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &passfd, sizeof(int));
		r = sendmsg(fd, &m, 0);
		CHECK(r < 0 && errno == EOPNOTSUPP, "sendmsg SCM_RIGHTS: %zd (%s), expected EOPNOTSUPP", r,
		      r < 0 ? strerror(errno) : "sent");
		printf("sendmsg SCM_RIGHTS: EOPNOTSUPP\n");
		say(fd, "GO5\n");
		r = recv(fd, got, 4, MSG_WAITALL);
		expect_bytes("after SCM_RIGHTS", got, r, (const uint8_t *)"OK5\n", 4);
	}

	/* 6. shutdown(SHUT_WR): the peer reads the end, we still read its answer, then the end */
	{
		size_t n = 0;
		CHECK(shutdown(fd, SHUT_WR) == 0, "shutdown: %s", strerror(errno));
		r = send(fd, "late", 4, MSG_NOSIGNAL);
		CHECK(r < 0 && errno == EPIPE, "send after SHUT_WR: %zd (%s), expected EPIPE", r,
		      r < 0 ? strerror(errno) : "sent");
		for (;;) {
			r = read(fd, got + n, sizeof(got) - n);
			CHECK(r >= 0, "read after SHUT_WR: %s", strerror(errno));
			if (r == 0)
				break;
			n += (size_t)r;
		}
		expect_bytes("read after SHUT_WR", got, (ssize_t)n, (const uint8_t *)"AFTER-EOF\n", 10);
		close(fd);
	}

	/* 7. a second connection: the peer closes; MSG_NOSIGNAL writes get EPIPE, no SIGPIPE */
	fd = flags_conn(argv[0], atoi(argv[1]), &ls);
	flags_epipe(fd, true);
	close(fd);
	printf("flags: all ok\n");
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	if (argc < 2)
		die("usage: nsio server|forkserver|forkboth|forkafter|sendfile|client|flags ...");
	if (strcmp(argv[1], "server") == 0)
		return cmd_server(argc - 2, argv + 2);
	if (strcmp(argv[1], "forkserver") == 0)
		return cmd_forkserver(argc - 2, argv + 2);
	if (strcmp(argv[1], "forkboth") == 0)
		return cmd_forkboth(argc - 2, argv + 2, false);
	if (strcmp(argv[1], "forkafter") == 0)
		return cmd_forkboth(argc - 2, argv + 2, true);
	if (strcmp(argv[1], "sendfile") == 0)
		return cmd_sendfile(argc - 2, argv + 2);
	if (strcmp(argv[1], "client") == 0)
		return cmd_client(argc - 2, argv + 2);
	if (strcmp(argv[1], "flags") == 0)
		return cmd_flags(argc - 2, argv + 2);
	die("unknown command %s", argv[1]);
	return 1;
}
