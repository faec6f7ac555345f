/*
 * fd_tls.c - the network shield's TLS connections (fd_tls.h): one
 * OpenSSL connection per shielded socket, its handshake, its bytes, its
 * readiness, its life across fork and exec.
 *
 * The socket stays the program's fd (the placeholder). OpenSSL reads and
 * writes it through a BIO of our own: reads never block (MSG_DONTWAIT),
 * writes always succeed into the connection's output buffer, which is
 * then pushed to the kernel without blocking. So OpenSSL never waits; this
 * file decides whether a call waits (a blocking socket, no MSG_DONTWAIT)
 * or fails with EAGAIN, and waits with the description's lock released,
 * so that one thread reading and another writing the same connection do
 * not stall each other.
 *
 * - Writes: a record is committed once OpenSSL has encrypted it; what the
 *   kernel did not take (at most about one record) stays in the output
 *   buffer and goes out at the next call on the connection, in the
 *   program's poll/select/epoll waits (io_net.c asks the kernel for POLLOUT
 *   while some is left); what is left when the program closes or shuts
 *   the connection down goes out from a background thread (lingering).
 * - The handshake starts at the first call that needs it (or at connect on
 *   a blocking socket): accept never waits for a client. Plaintext written
 *   before it ends (up to 256 KiB) is kept and sent when it does.
 * - A connection belongs to one process at a time (AES-GCM must never
 *   encrypt two records with one sequence number): after fork, the process
 *   that uses it first owns it until it closes it; the other gets EBADF
 *   with a message. A page shared across fork holds the owner's pid (made
 *   for each connection alive when the process forks; none before).
 * - exec: TLS state cannot pass to another program: a shielded socket is
 *   closed at exec (FD_CLOEXEC), never left to it as plain TCP.
 */
#include "runtime/fd_tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "lib/log.h"
#include "runtime/sys.h"

#define EARLY_MAX (256u * 1024)
#define WRITE_CHUNK (64u * 1024)
#define IOV_BOUNCE_MAX (1u << 20) /* readv/writev/recvmsg/sendmsg move at most this much per call */
#define LINGER_MS 10000 /* ciphertext left at a close: sent in the background for this long at most */

/*
 * Shared by the processes a fork gave the connection to. epoch counts the
 * claims: a process's copy of the TLS state is current only while the
 * epoch is the one it last saw; a copy another process went on from is
 * never used again (its record numbers are spent).
 */
struct tls_owner {
	pid_t pid;	/* the process using the connection, or 0: none since the fork (or the last close) */
	unsigned epoch; /* claims so far */
};

struct tls_conn {
	struct fd_desc d; /* first: the table's description */
	SSL *ssl;
	int io_fd;	/* the fd of the call in progress (BIO I/O); -1 once that number closed */
	int closing_fd; /* the number whose close dropped the last fd (for the release) */
	int io_errno;
	bool raw_eof;
	bool server, handshaken, failed, closed_write;
	const char *what;
	uint8_t *early; /* plaintext written before the handshake ended */
	size_t early_len;
	uint8_t *out; /* ciphertext the kernel has not taken yet */
	size_t out_off, out_len, out_cap;
	struct tls_owner *owner;   /* NULL until a fork while it lives; then MAP_SHARED (both sides see it) */
	unsigned fork_gen;	   /* forks when this process became its only user */
	unsigned epoch;		   /* the owner page's epoch this copy of the state is current at */
	bool hint_ready, hint_out; /* counted in ready_hints / out_hints (settle) */
	struct tls_conn *prev, *next;
};

static pthread_mutex_t list_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tls_conn *conns;
static int live;
/*
 * Connections that may be readable without the kernel (decrypted or read
 * ahead bytes, a failure to report) and connections with ciphertext the
 * kernel has not taken: the waits scan the connections only when some are.
 */
static int ready_hints, out_hints;
static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;
static pid_t my_pid;
static unsigned forks; /* fork()s in this process's history (parent and child side) */

bool tls_any(void)
{
	return __atomic_load_n(&live, __ATOMIC_ACQUIRE) > 0;
}

static pid_t self(void)
{
	pid_t p = __atomic_load_n(&my_pid, __ATOMIC_RELAXED);

	if (p == 0) {
		p = getpid();
		__atomic_store_n(&my_pid, p, __ATOMIC_RELAXED);
	}
	return p;
}

static void linger_forget(void);
static bool hand_tail(struct tls_conn *c, int fd, bool shut_wr);

/*
 * fork, before (pthread_atfork): no call is in progress on any connection
 * (their locks are held across the fork), and every connection alive is
 * marked "nobody since the fork" in a page shared with the child: the first
 * process to use it afterwards owns it (a server that accepts, forks and
 * lets the child serve; a parent that goes on while the child never
 * touches it). A page that cannot be made leaves the connection unshared:
 * then the child's use of it is not refused (logged).
 */
static void at_prepare(void)
{
	pid_t me = self();

	pthread_mutex_lock(&list_lock);
	for (struct tls_conn *c = conns; c; c = c->next) {
		struct tls_owner *o = c->owner;
		pthread_mutex_lock(&c->d.lock);
		if (!o) {
			o = SYS(mmap)(NULL, sizeof(*o), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
				      -1, 0);
			if (o == MAP_FAILED) {
				scone_error(
				    "network shield: no memory to share a TLS connection's owner with a "
				    "child");
				continue;
			}
			o->pid = 0;
			o->epoch = c->epoch = 0;
			__atomic_store_n(&c->owner, o, __ATOMIC_RELEASE);
		} else if (__atomic_load_n(&o->pid, __ATOMIC_ACQUIRE) == me) {
			__atomic_store_n(&o->pid, 0, __ATOMIC_RELEASE);
		}
	}
}

/* After the fork, in both processes: the connections' locks and the list go back. */
static void unlock_all(void)
{
	for (struct tls_conn *c = conns; c; c = c->next)
		pthread_mutex_unlock(&c->d.lock);
	pthread_mutex_unlock(&list_lock);
}

/* fork parent (pthread_atfork): a child may hold every connection from now on. */
static void at_parent(void)
{
	__atomic_add_fetch(&forks, 1, __ATOMIC_RELAXED);
	unlock_all();
}

/* fork child: its pid, and the fd table is its own (also without volumes). */
static void at_child(void)
{
	unlock_all();
	linger_forget();
	__atomic_add_fetch(&forks, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&my_pid, getpid(), __ATOMIC_RELAXED);
	if (fdtab_foreign())
		fdtab_forked();
}

/* ---- the BIO: non-blocking socket I/O, writes into the output buffer ---- */

static int bio_write(BIO *b, const char *buf, int n)
{
	struct tls_conn *c = BIO_get_data(b);
	size_t need = c->out_len + (size_t)n;

	BIO_clear_retry_flags(b);
	if (c->out_off > 0 && c->out_len > 0 && need > c->out_cap) {
		memmove(c->out, c->out + c->out_off, c->out_len);
		c->out_off = 0;
	} else if (c->out_len == 0) {
		c->out_off = 0;
	}
	if (c->out_off + need > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 32768;
		while (cap < c->out_off + need)
			cap *= 2;
		uint8_t *p = realloc(c->out, cap);
		if (!p)
			return -1;
		c->out = p;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_off + c->out_len, buf, (size_t)n);
	c->out_len += (size_t)n;
	return n;
}

static int bio_read(BIO *b, char *buf, int n)
{
	struct tls_conn *c = BIO_get_data(b);
	ssize_t r;

	BIO_clear_retry_flags(b);
	do
		r = SYS(recvfrom)(c->io_fd, buf, (size_t)n, MSG_DONTWAIT, NULL, NULL);
	while (r < 0 && errno == EINTR);
	if (r < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			BIO_set_retry_read(b);
		else
			c->io_errno = errno;
		return -1;
	}
	if (r == 0)
		c->raw_eof = true;
	return (int)r;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b, (void)num, (void)ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static void bio_setup(void)
{
	(void)pthread_atfork(at_prepare, at_parent, at_child);
	bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "scone-shield-socket");
	if (!bio_method)
		return;
	BIO_meth_set_write(bio_method, bio_write);
	BIO_meth_set_read(bio_method, bio_read);
	BIO_meth_set_ctrl(bio_method, bio_ctrl);
}

/* Push the output buffer to the kernel without blocking: true when it is empty. */
static bool flush_out(struct tls_conn *c, int fd)
{
	while (c->out_len > 0) {
		ssize_t w =
		    SYS(sendto)(fd, c->out + c->out_off, c->out_len, MSG_DONTWAIT | MSG_NOSIGNAL, NULL, 0);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				c->io_errno = errno;
				c->failed = true;
				c->out_len = 0;
			}
			return c->out_len == 0;
		}
		c->out_off += (size_t)w;
		c->out_len -= (size_t)w;
	}
	c->out_off = 0;
	return true;
}

/* ---- ownership across fork ---- */

/* The process using c: this one when no fork happened while c lived. */
static pid_t owner_of(struct tls_conn *c)
{
	struct tls_owner *o = __atomic_load_n(&c->owner, __ATOMIC_ACQUIRE);

	return o ? __atomic_load_n(&o->pid, __ATOMIC_ACQUIRE) : self();
}

/*
 * May this process use c (its lock held)? Yes when no fork happened while c
 * lived, when it owns c, or when nobody used c since the fork (or since its
 * owner closed it) and this process's copy of the state is current: then it
 * takes c over. Otherwise EBADF, with a message.
 */
static bool owner_claim(struct tls_conn *c, int fd)
{
	struct tls_owner *page = c->owner;
	pid_t me, o;

	if (!page)
		return true;
	me = self();
	o = __atomic_load_n(&page->pid, __ATOMIC_ACQUIRE);
	if (o == me)
		return true;
	if (o == 0 && __atomic_load_n(&page->epoch, __ATOMIC_ACQUIRE) == c->epoch &&
	    __atomic_compare_exchange_n(&page->pid, &o, me, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		c->epoch = __atomic_add_fetch(&page->epoch, 1, __ATOMIC_ACQ_REL);
		c->fork_gen = __atomic_load_n(&forks, __ATOMIC_RELAXED);
		return true;
	}
	if (o != 0)
		scone_error(
		    "network shield: fd %d: this TLS connection is in use by process %d; two processes "
		    "cannot share one (close it in the other first)",
		    fd, (int)o);
	else
		scone_error("network shield: fd %d: this TLS connection went on in another process after a "
			    "fork; this process's copy of it cannot be used",
			    fd);
	errno = EBADF;
	return false;
}

/* ---- the connection's steps (its lock held) ---- */

static void fail(struct tls_conn *c, int fd, const char *during)
{
	unsigned long e = ERR_peek_last_error();
	char reason[160];

	if (!c->failed) {
		ERR_error_string_n(e, reason, sizeof(reason));
		scone_warn("network shield: %s, fd %d: TLS %s failed: %s", c->what, fd, during,
			   e		 ? reason
			   : c->io_errno ? strerror(c->io_errno)
					 : "connection closed");
	}
	ERR_clear_error();
	c->failed = true;
	/* the peer must not wait for a connection that is over */
	(void)SYS(shutdown)(fd, SHUT_RDWR);
}

/* Encrypt n bytes (the connection is established): how many were taken, or -1 (failed). */
static ssize_t encrypt(struct tls_conn *c, int fd, const void *buf, size_t n, bool stop_when_full)
{
	size_t done = 0;

	while (done < n) {
		size_t chunk = n - done < WRITE_CHUNK ? n - done : WRITE_CHUNK;
		int r = SSL_write(c->ssl, (const uint8_t *)buf + done, (int)chunk);
		if (r <= 0) {
			fail(c, fd, "write");
			return done > 0 ? (ssize_t)done : -1;
		}
		done += (size_t)r;
		if (!flush_out(c, fd) && stop_when_full)
			break;
	}
	return (ssize_t)done;
}

/* One step of the handshake: 1 done, 0 wants the kernel (*want), -1 failed. */
static int handshake_step(struct tls_conn *c, int fd, short *want)
{
	int r, e;

	if (c->handshaken)
		return 1;
	if (c->failed)
		return -1;
	ERR_clear_error();
	r = SSL_do_handshake(c->ssl);
	(void)flush_out(c, fd);
	if (r == 1) {
		c->handshaken = true;
		if (c->early_len) {
			ssize_t w = encrypt(c, fd, c->early, c->early_len, false);
			OPENSSL_cleanse(c->early, c->early_len);
			free(c->early);
			c->early = NULL;
			c->early_len = 0;
			if (w < 0)
				return -1;
		}
		return 1;
	}
	e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		*want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		return 0;
	}
	fail(c, fd, "handshake");
	return -1;
}

/*
 * Is the call non-blocking (*nb: 1 yes, 0 no, -1 not known yet)? The fd's
 * O_NONBLOCK is asked only when it matters (a call about to wait), not at
 * every call: ioctl(FIONBIO) changes it without passing the runtime.
 */
static bool is_nb(int *nb, int fd)
{
	int fl;

	if (*nb < 0) {
		fl = SYS(fcntl)(fd, F_GETFL);
		*nb = fl >= 0 && (fl & O_NONBLOCK);
	}
	return *nb == 1;
}

/* Wait for the kernel (lock not held): 0, or -1 with errno (EINTR; EAGAIN when timeout_ms ran out). */
static int wait_for(int fd, short events, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = events};
	int r = SYS(poll)(&p, 1, timeout_ms);

	if (r == 0)
		errno = EAGAIN;
	return r > 0 ? 0 : -1;
}

/*
 * A blocking call's wait, as the kernel's: SO_RCVTIMEO (or SO_SNDTIMEO)
 * bounds it, and then the call fails with EAGAIN. 0 when fd is ready.
 */
static int wait_blocking(int fd, short events, int opt)
{
	struct timeval tv = {0};
	socklen_t len = sizeof(tv);
	int ms = -1;

	if (getsockopt(fd, SOL_SOCKET, opt, &tv, &len) == 0 && (tv.tv_sec || tv.tv_usec))
		ms = tv.tv_sec > INT32_MAX / 1000 - 1 ? INT32_MAX
						      : (int)(tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000);
	return wait_for(fd, events, ms);
}

static bool enter(struct tls_conn *c, int fd)
{
	pthread_mutex_lock(&c->d.lock);
	if (!owner_claim(c, fd)) {
		pthread_mutex_unlock(&c->d.lock);
		return false;
	}
	c->io_fd = fd;
	return true;
}

/* Keep c's hints true (lock held): called whenever a call on c lets go of it. */
static void settle(struct tls_conn *c)
{
	bool ready = c->failed || (c->handshaken && (SSL_pending(c->ssl) > 0 || SSL_has_pending(c->ssl)));
	bool out = c->out_len > 0;

	if (ready != c->hint_ready) {
		c->hint_ready = ready;
		__atomic_add_fetch(&ready_hints, ready ? 1 : -1, __ATOMIC_RELEASE);
	}
	if (out != c->hint_out) {
		c->hint_out = out;
		__atomic_add_fetch(&out_hints, out ? 1 : -1, __ATOMIC_RELEASE);
	}
}

static void leave(struct tls_conn *c)
{
	settle(c);
	pthread_mutex_unlock(&c->d.lock);
}

bool tls_maybe_ready(void)
{
	return __atomic_load_n(&ready_hints, __ATOMIC_ACQUIRE) > 0;
}

ssize_t tls_recv(struct fd_desc *d, int fd, void *buf, size_t n, int flags)
{
	struct tls_conn *c = (struct tls_conn *)d;
	int nb = (flags & MSG_DONTWAIT) ? 1 : -1;
	size_t got = 0;

	if (flags & ~(MSG_PEEK | MSG_DONTWAIT | MSG_WAITALL | MSG_NOSIGNAL | MSG_CMSG_CLOEXEC)) {
		errno = EOPNOTSUPP;
		return -1;
	}
	for (;;) {
		short want = POLLIN;
		int r, e, step;
		if (!enter(c, fd))
			return -1;
		(void)flush_out(c, fd);
		step = handshake_step(c, fd, &want);
		if (step < 0 || c->failed) {
			leave(c);
			if (got)
				return (ssize_t)got;
			errno = c->io_errno ? c->io_errno : ECONNRESET;
			return -1;
		}
		if (step == 1) {
			if (n == 0) {
				leave(c);
				return 0;
			}
			ERR_clear_error();
			c->io_errno = 0;
			r = (flags & MSG_PEEK) ? SSL_peek(c->ssl, (uint8_t *)buf + got,
							  (int)(n - got < INT32_MAX ? n - got : INT32_MAX))
					       : SSL_read(c->ssl, (uint8_t *)buf + got,
							  (int)(n - got < INT32_MAX ? n - got : INT32_MAX));
			(void)flush_out(c, fd); /* (a key update answered) */
			if (r > 0) {
				got += (size_t)r;
				if (!(flags & MSG_WAITALL) || got == n || (flags & MSG_PEEK) ||
				    is_nb(&nb, fd)) {
					leave(c);
					return (ssize_t)got;
				}
				leave(c);
				continue;
			}
			e = SSL_get_error(c->ssl, r);
			if (e == SSL_ERROR_ZERO_RETURN ||
			    (e == SSL_ERROR_SYSCALL && c->raw_eof && !c->io_errno) ||
			    (e == SSL_ERROR_SSL && c->raw_eof &&
			     ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
				ERR_clear_error();
				leave(c);
				return (ssize_t)got; /* the end */
			}
			if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
				fail(c, fd, "read");
				leave(c);
				if (got)
					return (ssize_t)got;
				errno = c->io_errno ? c->io_errno : ECONNRESET;
				return -1;
			}
			want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
		}
		if (c->out_len)
			want |= POLLOUT;
		leave(c);
		if (got && !(flags & MSG_WAITALL))
			return (ssize_t)got;
		if (is_nb(&nb, fd)) {
			if (got)
				return (ssize_t)got;
			errno = EAGAIN;
			return -1;
		}
		if (wait_blocking(fd, want, SO_RCVTIMEO) != 0)
			return got ? (ssize_t)got : -1;
	}
}

ssize_t tls_send(struct fd_desc *d, int fd, const void *buf, size_t n, int flags)
{
	struct tls_conn *c = (struct tls_conn *)d;
	int nb = (flags & MSG_DONTWAIT) ? 1 : -1;
	size_t done = 0;

	if (flags & ~(MSG_DONTWAIT | MSG_NOSIGNAL | MSG_MORE | MSG_EOR)) {
		errno = EOPNOTSUPP;
		return -1;
	}
	for (;;) {
		short want = POLLOUT;
		int step;
		if (!enter(c, fd))
			return -1;
		(void)flush_out(c, fd);
		if (c->closed_write || c->failed) {
			leave(c);
			if (done)
				return (ssize_t)done;
			if (!(flags & MSG_NOSIGNAL))
				(void)pthread_kill(pthread_self(), SIGPIPE);
			errno = EPIPE;
			return -1;
		}
		step = handshake_step(c, fd, &want);
		if (step == 0 && c->early_len + n <= EARLY_MAX) {
			/* kept until the handshake ends: the program need not know it is still going */
			uint8_t *p = realloc(c->early, c->early_len + n);
			if (p) {
				memcpy(p + c->early_len, buf, n);
				c->early = p;
				c->early_len += n;
				leave(c);
				return (ssize_t)n;
			}
		}
		if (step == 1 && c->out_len == 0) {
			ssize_t w = encrypt(c, fd, (const uint8_t *)buf + done, n - done, true);
			if (w > 0)
				done += (size_t)w;
			if (done == n || w < 0 || (done > 0 && is_nb(&nb, fd))) {
				leave(c);
				if (done)
					return (ssize_t)done;
				errno = c->io_errno && c->io_errno != EAGAIN ? c->io_errno : EPIPE;
				return -1;
			}
			want = POLLOUT;
		} else if (step < 0) {
			leave(c);
			continue; /* failed (reported): the next round answers EPIPE */
		}
		if (c->out_len)
			want |= POLLOUT;
		leave(c);
		if (is_nb(&nb, fd)) {
			if (done)
				return (ssize_t)done;
			errno = EAGAIN;
			return -1;
		}
		if (wait_blocking(fd, want, SO_SNDTIMEO) != 0)
			return done ? (ssize_t)done : -1;
	}
}

ssize_t tls_send_all(struct fd_desc *d, int fd, const void *buf, size_t n)
{
	struct tls_conn *c = (struct tls_conn *)d;
	short want = POLLOUT;
	ssize_t w = -1;

	for (;;) {
		int step;
		if (!enter(c, fd))
			return -1;
		step = handshake_step(c, fd, &want);
		if (step == 1 && !c->closed_write) {
			w = encrypt(c, fd, buf, n,
				    false); /* what the kernel does not take waits in the buffer */
			leave(c);
			if (w < 0)
				errno = EPIPE;
			return w;
		}
		leave(c);
		if (step < 0 || c->closed_write) {
			errno = EPIPE;
			return -1;
		}
		if (wait_for(fd, want, -1) != 0)
			return -1;
	}
}

int tls_handshake_now(struct fd_desc *d, int fd)
{
	struct tls_conn *c = (struct tls_conn *)d;

	for (;;) {
		short want = POLLIN;
		int step;
		if (!enter(c, fd))
			return -1;
		step = handshake_step(c, fd, &want);
		if (c->out_len)
			want |= POLLOUT;
		leave(c);
		if (step == 1)
			return 0;
		if (step < 0) {
			errno = ECONNREFUSED;
			return -1;
		}
		if (wait_for(fd, want, -1) != 0 && errno != EINTR)
			return -1;
	}
}

int tls_shutdown(struct fd_desc *d, int fd, int how)
{
	struct tls_conn *c = (struct tls_conn *)d;

	if ((how == SHUT_WR || how == SHUT_RDWR) && enter(c, fd)) {
		if (c->handshaken && !c->failed && !c->closed_write) {
			(void)SSL_shutdown(c->ssl); /* close_notify: the peer reads the end, not a cut */
			(void)flush_out(c, fd);
		}
		c->closed_write = true;
		/* the kernel's FIN must follow the last bytes: with some left, the background sends both */
		if (c->out_len && hand_tail(c, fd, true)) {
			leave(c);
			return how == SHUT_RDWR ? SYS(shutdown)(fd, SHUT_RD) : 0;
		}
		leave(c);
	}
	return SYS(shutdown)(fd, how);
}

/* ---- readiness ---- */

/*
 * Decrypted bytes waiting, or a whole record read ahead from the kernel
 * (OpenSSL reads ahead: one recv takes several records): readable without
 * the kernel. A partial record read ahead is not. Lock held.
 */
static bool has_record(struct tls_conn *c)
{
	uint8_t b;
	int p;

	if (SSL_pending(c->ssl) > 0)
		return true;
	if (!SSL_has_pending(c->ssl))
		return false;
	ERR_clear_error();
	p = SSL_peek(c->ssl, &b, 1); /* (may ask the kernel for the rest, without waiting) */
	ERR_clear_error();
	return p > 0;
}

short tls_ready_now(struct fd_desc *d, short events)
{
	struct tls_conn *c = (struct tls_conn *)d;
	short r = 0;

	if (pthread_mutex_trylock(&c->d.lock) != 0)
		return 0;
	if (c->failed)
		r = (short)(POLLERR | (events & POLLIN));
	else if ((events & POLLIN) && c->handshaken && has_record(c))
		r = POLLIN;
	leave(c);
	return r;
}

short tls_wait_events(struct fd_desc *d, short events)
{
	struct tls_conn *c = (struct tls_conn *)d;
	short ev = events;

	if (__atomic_load_n(&c->out_len, __ATOMIC_RELAXED))
		ev |= POLLOUT;
	if (!__atomic_load_n(&c->handshaken, __ATOMIC_RELAXED) && (events & POLLOUT))
		ev |= POLLIN; /* a handshake waiting for the peer */
	return ev;
}

short tls_revents(struct fd_desc *d, int fd, short events, short kr)
{
	struct tls_conn *c = (struct tls_conn *)d;
	short r = (short)(kr & ~(POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM));
	short want = 0;

	if (!enter(c, fd))
		return (short)(kr & (events | POLLERR | POLLHUP));
	if (kr & POLLOUT)
		(void)flush_out(c, fd);
	if ((kr & (POLLIN | POLLHUP | POLLERR)) || (kr & POLLOUT && !c->handshaken))
		(void)handshake_step(c, fd, &want);
	if (c->failed) {
		r |= (short)(POLLERR | (events & (POLLIN | POLLOUT)));
	} else if (c->handshaken) {
		if (events & (POLLIN | POLLRDNORM)) {
			uint8_t b;
			int p;
			ERR_clear_error();
			p = SSL_peek(c->ssl, &b, 1);
			if (p > 0 || c->raw_eof || SSL_get_error(c->ssl, p) != SSL_ERROR_WANT_READ)
				r |= (short)(events &
					     (POLLIN | POLLRDNORM)); /* data, or an end the read reports */
			ERR_clear_error();
			(void)flush_out(c, fd);
		}
		if ((events & (POLLOUT | POLLWRNORM)) && (kr & POLLOUT) && c->out_len == 0)
			r |= (short)(events & (POLLOUT | POLLWRNORM));
	} else {
		/* a handshake in progress: writes are kept until it ends */
		if ((events & (POLLOUT | POLLWRNORM)) && (kr & POLLOUT) && c->early_len < EARLY_MAX)
			r |= (short)(events & (POLLOUT | POLLWRNORM));
		if (c->raw_eof)
			r |= (short)(events & (POLLIN | POLLRDNORM));
	}
	leave(c);
	return r;
}

size_t tls_flush_all(int *fds, size_t max)
{
	size_t k = 0;

	if (__atomic_load_n(&out_hints, __ATOMIC_ACQUIRE) == 0)
		return 0;
	pthread_mutex_lock(&list_lock);
	for (struct tls_conn *c = conns; c; c = c->next) {
		if (!__atomic_load_n(&c->out_len, __ATOMIC_RELAXED) || c->io_fd < 0 || owner_of(c) != self())
			continue;
		if (pthread_mutex_trylock(&c->d.lock) != 0)
			continue; /* a call in progress pushes it */
		if (c->io_fd >= 0 && !flush_out(c, c->io_fd) && k < max)
			fds[k++] = c->io_fd;
		leave(c);
	}
	pthread_mutex_unlock(&list_lock);
	return k;
}

/* ---- lingering: ciphertext left when the program closes or shuts down ---- */

/*
 * When the program closes a connection (or shuts down its writing side)
 * whose last records the kernel has not taken yet, waiting for a slow peer
 * would stall the program (an event loop would stop serving everyone). A
 * dup of the socket and the bytes go to a background thread instead, which
 * sends them as the peer reads, then shuts the writing side down or closes
 * its dup; it gives up after LINGER_MS. The dup is checked to still be the
 * socket (device and inode) before every send: a number reused by the
 * program never gets a byte.
 */
struct tail {
	int fd;
	dev_t dev;
	ino_t ino;
	uint8_t *buf;
	size_t off, len;
	int64_t deadline;
	bool shut_wr; /* then shutdown(SHUT_WR) (the program's shutdown, after its last bytes) */
	struct tail *next;
};

static pthread_mutex_t linger_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tail *lingering;
static bool linger_running;

static int64_t mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static bool linger_is(const struct tail *l)
{
	struct stat st;

	return SYS(fstat)(l->fd, &st) == 0 && st.st_dev == l->dev && st.st_ino == l->ino;
}

static void linger_end(struct tail *l)
{
	if (linger_is(l)) {
		if (l->shut_wr && l->off == l->len)
			(void)SYS(shutdown)(l->fd, SHUT_WR);
		SYS(close)(l->fd);
	}
	free(l->buf);
	free(l);
}

static void *linger_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct pollfd p[64];
		struct tail *l, **pp;
		nfds_t n = 0;

		pthread_mutex_lock(&linger_lock);
		for (l = lingering; l && n < 64; l = l->next) {
			p[n].fd = l->fd;
			p[n++].events = POLLOUT;
		}
		if (n == 0) {
			linger_running = false;
			pthread_mutex_unlock(&linger_lock);
			return NULL;
		}
		pthread_mutex_unlock(&linger_lock);
		(void)SYS(poll)(p, n, 100);
		pthread_mutex_lock(&linger_lock);
		for (pp = &lingering; (l = *pp);) {
			bool done = false;
			if (!linger_is(l)) {
				done = true;
			} else {
				ssize_t w = SYS(sendto)(l->fd, l->buf + l->off, l->len - l->off,
							MSG_DONTWAIT | MSG_NOSIGNAL, NULL, 0);
				if (w > 0)
					l->off += (size_t)w;
				done = l->off == l->len || (w < 0 && errno != EAGAIN && errno != EINTR) ||
				       mono_ms() > l->deadline;
			}
			if (done) {
				*pp = l->next;
				linger_end(l);
			} else {
				pp = &l->next;
			}
		}
		pthread_mutex_unlock(&linger_lock);
	}
}

/* Hand c's unsent ciphertext (and the shutdown, if shut_wr) to the background. false: not possible. */
static bool hand_tail(struct tls_conn *c, int fd, bool shut_wr)
{
	struct tail *l = calloc(1, sizeof(*l));
	struct stat st;

	if (!l)
		return false;
	l->fd = SYS(fcntl)(fd, F_DUPFD_CLOEXEC, 3);
	if (l->fd < 0 || SYS(fstat)(l->fd, &st) != 0) {
		if (l->fd >= 0)
			SYS(close)(l->fd);
		free(l);
		return false;
	}
	l->dev = st.st_dev;
	l->ino = st.st_ino;
	l->buf = c->out; /* the buffer moves */
	l->off = c->out_off;
	l->len = c->out_off + c->out_len;
	l->shut_wr = shut_wr;
	l->deadline = mono_ms() + LINGER_MS;
	c->out = NULL;
	c->out_off = c->out_len = c->out_cap = 0;
	pthread_mutex_lock(&linger_lock);
	l->next = lingering;
	lingering = l;
	if (!linger_running) {
		pthread_t t;
		pthread_attr_t a;
		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		linger_running = pthread_create(&t, &a, linger_main, NULL) == 0;
		pthread_attr_destroy(&a);
		if (!linger_running) { /* no thread: the bytes are lost, as a kill would lose them */
			lingering = l->next;
			pthread_mutex_unlock(&linger_lock);
			linger_end(l);
			return true;
		}
	}
	pthread_mutex_unlock(&linger_lock);
	return true;
}

/* fork child: the lingering dups and bytes are the parent's business. */
static void linger_forget(void)
{
	struct tail *l = lingering;

	lingering = NULL;
	linger_running = false;
	pthread_mutex_init(&linger_lock, NULL);
	while (l) {
		struct tail *next = l->next;
		SYS(close)(l->fd);
		free(l->buf);
		free(l);
		l = next;
	}
}

/* ---- the kind ---- */

static ssize_t k_read(struct fd_desc *d, int fd, void *buf, size_t n)
{
	return tls_recv(d, fd, buf, n, 0);
}

static ssize_t k_write(struct fd_desc *d, int fd, const void *buf, size_t n)
{
	return tls_send(d, fd, buf, n, 0);
}

ssize_t tls_iov(struct fd_desc *d, int fd, const struct iovec *iov, size_t cnt, int flags, bool wr)
{
	size_t total = 0, off = 0;
	uint8_t *buf;
	ssize_t r;
	int e;

	for (size_t i = 0; i < cnt; i++)
		total += iov[i].iov_len;
	if (total > IOV_BOUNCE_MAX) /* a short transfer, as a socket may do */
		total = IOV_BOUNCE_MAX;
	if (!(buf = malloc(total ? total : 1))) {
		errno = ENOMEM;
		return -1;
	}
	if (wr) {
		for (size_t i = 0; i < cnt && off < total; i++) {
			size_t k = iov[i].iov_len < total - off ? iov[i].iov_len : total - off;
			memcpy(buf + off, iov[i].iov_base, k);
			off += k;
		}
		r = tls_send(d, fd, buf, total, flags);
	} else {
		r = tls_recv(d, fd, buf, total, flags);
		for (size_t i = 0; r > 0 && i < cnt && off < (size_t)r; i++) {
			size_t k = iov[i].iov_len < (size_t)r - off ? iov[i].iov_len : (size_t)r - off;
			memcpy(iov[i].iov_base, buf + off, k);
			off += k;
		}
	}
	e = errno;
	OPENSSL_cleanse(buf, total);
	free(buf);
	errno = e;
	return r;
}

/* readv/writev: through one buffer (a record is made of contiguous bytes anyway). */
static ssize_t k_iov(struct fd_desc *d, int fd, const struct iovec *iov, int cnt, const int64_t *at, bool wr)
{
	if (at) {
		errno = ESPIPE;
		return -1;
	}
	return tls_iov(d, fd, iov, cnt > 0 ? (size_t)cnt : 0, 0, wr);
}

static int k_release(struct fd_desc *d)
{
	struct tls_conn *c = (struct tls_conn *)d;
	int fd = c->io_fd >= 0 ? c->io_fd : c->closing_fd;

	pthread_mutex_lock(&list_lock);
	if (c->prev)
		c->prev->next = c->next;
	else
		conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	pthread_mutex_unlock(&list_lock);
	__atomic_sub_fetch(&live, 1, __ATOMIC_RELEASE);
	io_net_forget(d);
	if (c->hint_ready)
		__atomic_sub_fetch(&ready_hints, 1, __ATOMIC_RELEASE);
	if (c->hint_out)
		__atomic_sub_fetch(&out_hints, 1, __ATOMIC_RELEASE);
	if (owner_of(c) == self()) {
		/*
		 * The end of the connection: what is left, and close_notify while the
		 * socket is still open, unless a fork since may have left it to a
		 * child (a server that forks per connection closes its copy first).
		 */
		bool alone = c->fork_gen == __atomic_load_n(&forks, __ATOMIC_RELAXED);
		if (c->handshaken && !c->failed && !c->closed_write && fdtab_is(fd, d)) {
			if (alone)
				(void)SSL_shutdown(c->ssl);
			if (!flush_out(c, fd))
				(void)hand_tail(c, fd, false);
		}
		if (c->owner)
			__atomic_store_n(&c->owner->pid, 0, __ATOMIC_RELEASE);
	}
	SSL_free(c->ssl);
	if (c->early) {
		OPENSSL_cleanse(c->early, c->early_len);
		free(c->early);
	}
	free(c->out);
	if (c->owner)
		SYS(munmap)(c->owner, sizeof(*c->owner));
	pthread_mutex_destroy(&c->d.lock);
	free(c);
	return 0;
}

static void k_closing(struct fd_desc *d, int fd)
{
	struct tls_conn *c = (struct tls_conn *)d;

	pthread_mutex_lock(&c->d.lock);
	if (fdtab_is(fd, d))
		(void)flush_out(c, fd);
	/*
	 * This number is the kernel's again once closed: nothing (a background
	 * flush, a release that comes later) may use it. The release gets it
	 * while the close is still under way, checked again then.
	 */
	c->closing_fd = fd;
	if (c->io_fd == fd)
		c->io_fd = -1;
	leave(c);
}

static void k_forked(struct fd_desc *d)
{
	(void)d;
	__atomic_store_n(&my_pid, getpid(), __ATOMIC_RELAXED);
}

static int k_handover(struct fd_desc *d, int fd, struct scone_handover *h)
{
	struct tls_conn *c = (struct tls_conn *)d;

	(void)h;
	scone_warn(
	    "network shield: %s, fd %d: a TLS connection cannot pass to another program; closed at exec",
	    c->what, fd);
	(void)SYS(fcntl)(fd, F_SETFD, FD_CLOEXEC);
	return 0;
}

const struct fd_kind tls_kind = {
    .name = "tls",
    .trusts_number = true, /* no fstat per call; a stale entry only fails (ENOTSOCK), never leaks */
    .release = k_release,
    .closing = k_closing,
    .read = k_read,
    .write = k_write,
    .iov = k_iov,
    .forked = k_forked,
    .handover = k_handover,
};

/*
 * The server's certificate must name this: an address literal is checked
 * against the certificate's IP addresses (and sent as no SNI, RFC 6066), a
 * name against its DNS names (and sent as SNI).
 */
static bool expect_name(SSL *ssl, const char *name)
{
	char ip[64];
	size_t n = strlen(name);
	struct in6_addr a;

	if (n >= 2 && name[0] == '[' && name[n - 1] == ']' && n - 2 < sizeof(ip)) {
		memcpy(ip, name + 1, n - 2);
		ip[n - 2] = '\0';
	} else {
		snprintf(ip, sizeof(ip), "%s", name);
	}
	if (inet_pton(AF_INET, ip, &a) == 1 || inet_pton(AF_INET6, ip, &a) == 1)
		return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), ip) == 1;
	return SSL_set_tlsext_host_name(ssl, name) == 1 && SSL_set1_host(ssl, name) == 1;
}

int tls_install(int fd, const struct ns_decision *dec, bool server)
{
	struct tls_conn *c;
	BIO *b = NULL;
	int e = ENOMEM;

	pthread_once(&bio_once, bio_setup);
	if (!bio_method || !(c = calloc(1, sizeof(*c)))) {
		errno = ENOMEM;
		return -1;
	}
	c->fork_gen = __atomic_load_n(&forks, __ATOMIC_RELAXED);
	c->server = server;
	c->what = dec->what;
	c->io_fd = fd;
	c->closing_fd = -1;
	fdtab_desc_init(&c->d, &tls_kind);
	if (!(c->ssl = SSL_new(dec->ctx)) || !(b = BIO_new(bio_method)))
		goto fail;
	BIO_set_data(b, c);
	BIO_set_init(b, 1);
	SSL_set_bio(c->ssl, b, b);
	SSL_set_options(c->ssl, SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_set_read_ahead(c->ssl, 1); /* one recv for several records, not two per record */
	if (server) {
		SSL_set_accept_state(c->ssl);
	} else {
		SSL_set_connect_state(c->ssl);
		if (dec->dns_name && *dec->dns_name && !expect_name(c->ssl, dec->dns_name))
			goto fail;
	}
	if (!fdtab_note(&c->d, fd) || !fdtab_install(fd, &c->d)) {
		e = errno ? errno : EMFILE;
		goto fail;
	}
	fdtab_reap();
	(void)SYS(fcntl)(fd, F_SETFD, FD_CLOEXEC); /* never plain TCP in another program */
	pthread_mutex_lock(&list_lock);
	c->next = conns;
	if (conns)
		conns->prev = c;
	conns = c;
	pthread_mutex_unlock(&list_lock);
	__atomic_add_fetch(&live, 1, __ATOMIC_RELEASE);
	return 0;
fail:
	if (c->ssl)
		SSL_free(c->ssl); /* (and b with it) */
	else
		BIO_free(b);
	pthread_mutex_destroy(&c->d.lock);
	free(c);
	errno = e;
	return -1;
}
