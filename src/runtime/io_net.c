/*
 * io_net.c - the socket calls of the network shield: socket, connect,
 * accept/accept4 (where a connection becomes a TLS one, netshield.h),
 * recv/recvfrom/recvmsg, send/sendto/sendmsg, shutdown, and the readiness
 * calls poll/ppoll, select/pselect, epoll_ctl/epoll_wait/epoll_pwait,
 * which report what the program can rely on for a TLS connection
 * (fd_tls.h): a record not complete is not readable, decrypted bytes
 * waiting inside the TLS layer are.
 *
 * Without the shield (or without a TLS connection in the process) every
 * call goes straight to libc after one load.
 *
 * epoll: a TLS socket added to an epoll set is registered with a record
 * of ours as its data (from an arena of our own, so its events are told
 * apart from the program's by address); epoll_wait turns the record back
 * into the program's data after correcting the events. A socket that
 * becomes TLS after it was added (connect after EPOLL_CTL_ADD) keeps the
 * kernel's readiness: spurious wake-ups, which a non-blocking program
 * answers with EAGAIN.
 */
#undef _FORTIFY_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "lib/log.h"
#include "runtime/fd_tls.h"
#include "runtime/fdtab.h"
#include "runtime/netshield.h"
#include "runtime/rt.h"
#include "runtime/shield.h"
#include "runtime/sys.h"

/* (glibc declares poll's array with an access attribute GCC misreads in an interposer) */
#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Wunknown-warning-option"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

/* The TLS description of fd with a hold, or NULL (then the call is the kernel's). */
static struct fd_desc *tls_of(int fd)
{
	struct fd_desc *d;

	if (!tls_any() || !fdtab_maybe(fd) || !(d = fdtab_get(fd)))
		return NULL;
	if (d->kind != &tls_kind) {
		(void)fdtab_put(d);
		return NULL;
	}
	return d;
}

#define NET_OP(fd, passthrough, call)                                                                        \
	do {                                                                                                 \
		struct fd_desc *d = tls_of(fd);                                                              \
		__typeof__(passthrough) r_;                                                                  \
		int e_;                                                                                      \
		if (!d)                                                                                      \
			return passthrough;                                                                  \
		r_ = call;                                                                                   \
		e_ = errno;                                                                                  \
		(void)fdtab_put(d);                                                                          \
		errno = e_;                                                                                  \
		return r_;                                                                                   \
	} while (0)

static bool nonblocking_fd(int fd)
{
	int fl = SYS(fcntl)(fd, F_GETFL);

	return fl >= 0 && (fl & O_NONBLOCK);
}

/* ---- where connections become TLS ---- */

int socket(int domain, int type, int protocol)
{
	if (scone_netshield_on() && ns_decide_socket(domain, type) == NSV_REFUSE) {
		scone_warn("network shield: a socket of an unsupported protocol (domain %d, type %d) refused "
			   "(SCONE_NETWORK_SHIELD_UNSUPPORTED_PROTOCOLS=refuse)",
			   domain, type & 0xf);
		errno = EACCES;
		return -1;
	}
	return SCONE_FD_CALL(SYS(socket)(domain, type, protocol));
}

/* "127.0.0.1:6379", "[::1]:6379" or "unix:/path", for messages. */
static void addr_text(const struct sockaddr *a, socklen_t len, char *out, size_t size)
{
	char ip[INET6_ADDRSTRLEN];

	if (a->sa_family == AF_INET && len >= sizeof(struct sockaddr_in) &&
	    inet_ntop(AF_INET, &((const struct sockaddr_in *)a)->sin_addr, ip, sizeof(ip)))
		snprintf(out, size, "%s:%u", ip, ntohs(((const struct sockaddr_in *)a)->sin_port));
	else if (a->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6) &&
		 inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)a)->sin6_addr, ip, sizeof(ip)))
		snprintf(out, size, "[%s]:%u", ip, ntohs(((const struct sockaddr_in6 *)a)->sin6_port));
	else if (a->sa_family == AF_UNIX && len > offsetof(struct sockaddr_un, sun_path))
		snprintf(out, size, "unix:%.*s",
			 (int)strnlen(((const struct sockaddr_un *)a)->sun_path,
				      len - offsetof(struct sockaddr_un, sun_path)),
			 ((const struct sockaddr_un *)a)->sun_path);
	else
		snprintf(out, size, "an address of family %d", a->sa_family);
}

static int stream_socket(int fd)
{
	int t = 0;
	socklen_t len = sizeof(t);

	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &t, &len) == 0 && t == SOCK_STREAM;
}

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct ns_decision dec;
	struct fd_desc *d;
	int r, e;

	if (!scone_netshield_on() || scone_rt_own() || (addr && addr->sa_family == AF_UNSPEC))
		return SYS(connect)(fd, addr, len);
	if (!stream_socket(fd)) {
		if (addr && (addr->sa_family == AF_INET || addr->sa_family == AF_INET6) &&
		    ns_decide_socket(addr->sa_family, SOCK_DGRAM) == NSV_REFUSE) {
			errno = EACCES;
			return -1;
		}
		return SYS(connect)(fd, addr, len);
	}
	if ((d = tls_of(fd))) { /* already connected or connecting */
		(void)fdtab_put(d);
		errno = EISCONN;
		return -1;
	}
	ns_decide_connect(addr, len, &dec);
	if (dec.verdict == NSV_PASS)
		return SYS(connect)(fd, addr, len);
	if (dec.verdict == NSV_REFUSE) {
		char to[INET6_ADDRSTRLEN + 120];
		addr_text(addr, len, to, sizeof(to));
		scone_warn("network shield: connection to %s refused (%s)", to, dec.what);
		errno = EACCES;
		return -1;
	}
	r = SYS(connect)(fd, addr, len);
	if (r != 0 && errno != EINPROGRESS)
		return r;
	e = errno;
	if (tls_install(fd, &dec, false) != 0) {
		scone_error("network shield: %s: the connection cannot be shielded: %s", dec.what,
			    strerror(errno));
		(void)SYS(shutdown)(fd, SHUT_RDWR);
		errno = ECONNREFUSED;
		return -1;
	}
	if (r != 0) {
		errno = e; /* EINPROGRESS: the handshake comes with the first call */
		return r;
	}
	if (!(d = tls_of(fd))) {
		errno = ECONNREFUSED;
		return -1;
	}
	r = tls_handshake_now(d, fd);
	e = errno;
	(void)fdtab_put(d);
	errno = e;
	return r;
}

static int accepted(int fd)
{
	struct ns_decision dec;

	if (fd < 0 || !scone_netshield_on() || scone_rt_own())
		return fd;
	ns_decide_accepted(fd, &dec);
	if (dec.verdict == NSV_PASS)
		return fd;
	if (dec.verdict == NSV_REFUSE) {
		scone_info("network shield: a connection to %s refused", dec.what);
		SYS(close)(fd);
		errno = ECONNABORTED;
		return -1;
	}
	if (tls_install(fd, &dec, true) != 0) {
		int e = errno;
		scone_error("network shield: %s: an accepted connection cannot be shielded: %s", dec.what,
			    strerror(e));
		SYS(close)(fd);
		errno = e == EMFILE ? EMFILE : ECONNABORTED;
		return -1;
	}
	return fd;
}

int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	return accepted(SCONE_FD_CALL(SYS(accept)(fd, addr, len)));
}

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	return accepted(SCONE_FD_CALL(SYS(accept4)(fd, addr, len, flags)));
}

/* ---- bytes ---- */

ssize_t recv(int fd, void *buf, size_t n, int flags)
{
	NET_OP(fd, SYS(recv)(fd, buf, n, flags), tls_recv(d, fd, buf, n, flags));
}

ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *src, socklen_t *len)
{
	if (src && len)
		NET_OP(fd, SYS(recvfrom)(fd, buf, n, flags, src, len),
		       (*len = 0, tls_recv(d, fd, buf, n, flags)));
	NET_OP(fd, SYS(recvfrom)(fd, buf, n, flags, src, len), tls_recv(d, fd, buf, n, flags));
}

ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	NET_OP(fd, SYS(send)(fd, buf, n, flags), tls_send(d, fd, buf, n, flags));
}

ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to, socklen_t len)
{
	NET_OP(fd, SYS(sendto)(fd, buf, n, flags, to, len), tls_send(d, fd, buf, n, flags));
}

/* recvmsg/sendmsg without ancillary data: the iovecs as readv/writev's (fd_tls.c). */
static ssize_t msg_io(struct fd_desc *d, int fd, struct msghdr *m, int flags, bool wr)
{
	ssize_t r;

	if (m->msg_control && m->msg_controllen > 0 && wr) {
		scone_warn("network shield: fd %d: sendmsg with ancillary data on a TLS connection refused",
			   fd);
		errno = EOPNOTSUPP;
		return -1;
	}
	r = tls_iov(d, fd, m->msg_iov, m->msg_iovlen, flags, wr);
	if (!wr) {
		m->msg_namelen = 0;
		m->msg_controllen = 0; /* no ancillary data arrives over TLS */
		m->msg_flags = 0;
	}
	return r;
}

ssize_t recvmsg(int fd, struct msghdr *m, int flags)
{
	NET_OP(fd, SYS(recvmsg)(fd, m, flags), msg_io(d, fd, m, flags, false));
}

/*
 * Volume fds sent to another process (SCM_RIGHTS): their placeholders'
 * descriptions are held there too, so they are never kept for another
 * file (fd_volume.c). (The receiver meets only the sealed placeholder.)
 * The lengths are the program's: read within msg_controllen only (the
 * kernel answers EINVAL to the rest).
 */
void io_net_rights_sent(const struct msghdr *m)
{
	const char *end;

	if (!m || !m->msg_control || m->msg_controllen < sizeof(struct cmsghdr) || scone_shield_count() == 0)
		return;
	end = (const char *)m->msg_control + m->msg_controllen;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR((struct msghdr *)m, c)) {
		const unsigned char *data = CMSG_DATA(c);
		size_t len;
		if (c->cmsg_len < CMSG_LEN(0) || (const char *)data > end)
			break;
		len = c->cmsg_len - CMSG_LEN(0);
		if (len > (size_t)(end - (const char *)data))
			len = (size_t)(end - (const char *)data);
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i + sizeof(int) <= len; i += sizeof(int)) {
			int sent;
			memcpy(&sent, data + i, sizeof(int));
			scone_shield_fd_shared(sent);
		}
	}
}

/*
 * sendmmsg: on a TLS connection each message goes through sendmsg (the
 * kernel's would put the plaintext on the wire); as the kernel's, the
 * count of messages sent, or -1 when the first fails.
 */
static int tls_sendmmsg(struct fd_desc *d, int fd, struct mmsghdr *v, unsigned n, int flags)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		ssize_t r = msg_io(d, fd, &v[i].msg_hdr, flags, true);
		if (r < 0)
			return i ? (int)i : -1;
		v[i].msg_len = (unsigned)r;
	}
	return (int)i;
}

/*
 * recvmmsg on a TLS connection: each message through recvmsg (the kernel's
 * would hand over TLS records); after the first, MSG_WAITFORONE makes the
 * rest non-blocking, and an end, EAGAIN or an error stops at what came.
 * (The timeout is not applied.)
 */
static int tls_recvmmsg(struct fd_desc *d, int fd, struct mmsghdr *v, unsigned n, int flags)
{
	int each = flags & ~MSG_WAITFORONE;
	unsigned i;

	for (i = 0; i < n; i++) {
		ssize_t r = msg_io(d, fd, &v[i].msg_hdr,
				   i && (flags & MSG_WAITFORONE) ? each | MSG_DONTWAIT : each, false);
		if (r < 0)
			return i ? (int)i : -1;
		v[i].msg_len = (unsigned)r;
		if (r == 0) /* (the end: this message is empty, none follows) */
			return (int)i + 1;
	}
	return (int)i;
}

int recvmmsg(int fd, struct mmsghdr *v, unsigned n, int flags, struct timespec *timeout)
{
	NET_OP(fd, SYS(recvmmsg)(fd, v, n, flags, timeout), tls_recvmmsg(d, fd, v, n, flags));
}

int sendmmsg(int fd, struct mmsghdr *v, unsigned n, int flags)
{
	for (unsigned i = 0; v && i < n; i++)
		io_net_rights_sent(&v[i].msg_hdr);
	NET_OP(fd, SYS(sendmmsg)(fd, v, n, flags), tls_sendmmsg(d, fd, v, n, flags));
}

ssize_t sendmsg(int fd, const struct msghdr *m, int flags)
{
	io_net_rights_sent(m);
	NET_OP(fd, SYS(sendmsg)(fd, m, flags), msg_io(d, fd, (struct msghdr *)m, flags, true));
}

int shutdown(int fd, int how)
{
	NET_OP(fd, SYS(shutdown)(fd, how), tls_shutdown(d, fd, how));
}

/*
 * splice from a pipe (or any fd not served) to a TLS connection: the bytes
 * are read and encrypted; once read they cannot go back into the pipe, so
 * all of them are committed (what the kernel does not take yet waits in the
 * connection). A non-blocking connection that cannot take more gets EAGAIN
 * before anything is read.
 */
ssize_t io_net_splice_to_tls(int in, int out, size_t len, unsigned flags)
{
	struct fd_desc *d = tls_of(out);
	uint8_t *buf;
	ssize_t r;
	int e;

	if (!d)
		return -2;
	if (len > 65536)
		len = 65536;
	if ((flags & SPLICE_F_NONBLOCK) || nonblocking_fd(out)) {
		struct pollfd p = {.fd = out, .events = POLLOUT};
		if (tls_revents(d, out, POLLOUT, (SYS(poll)(&p, 1, 0) == 1 ? p.revents : 0)) == 0) {
			(void)fdtab_put(d);
			errno = EAGAIN;
			return -1;
		}
	}
	if (!(buf = malloc(len ? len : 1))) {
		(void)fdtab_put(d);
		errno = ENOMEM;
		return -1;
	}
	r = SYS(read)(in, buf, len);
	if (r > 0)
		r = tls_send_all(d, out, buf, (size_t)r);
	e = errno;
	memset(buf, 0, len);
	free(buf);
	(void)fdtab_put(d);
	errno = e;
	return r;
}

/* ---- readiness: poll, ppoll, select, pselect ---- */

static int64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Milliseconds left of timeout (started at t0), -1 forever. */
static int left_ms(int timeout, int64_t t0)
{
	int64_t l;

	if (timeout < 0)
		return -1;
	l = timeout - (now_ms() - t0);
	return l > 0 ? (int)l : 0;
}

#define SMALL 64

static int do_poll(struct pollfd *fds, nfds_t n, int timeout, const sigset_t *ss, bool with_mask)
{
	struct fd_desc *small[SMALL], **ds = small;
	short saved_small[SMALL], *saved = saved_small;
	size_t tls = 0;
	int64_t t0 = now_ms();
	int r = 0;

	if (n > SMALL) {
		ds = calloc(n, sizeof(*ds));
		saved = calloc(n, sizeof(*saved));
		if (!ds || !saved) {
			free(ds == small ? NULL : ds);
			free(saved == saved_small ? NULL : saved);
			errno = ENOMEM;
			return -1;
		}
	}
	for (nfds_t i = 0; i < n; i++)
		if ((ds[i] = fds[i].fd >= 0 ? tls_of(fds[i].fd) : NULL))
			tls++;
	for (;;) {
		int ready = 0, wait;
		struct timespec ts;
		for (nfds_t i = 0; i < n; i++) {
			saved[i] = fds[i].events;
			if (ds[i] && tls_ready_now(ds[i], fds[i].events))
				ready++;
			if (ds[i])
				fds[i].events = tls_wait_events(ds[i], fds[i].events);
		}
		wait = ready ? 0 : left_ms(timeout, t0);
		if (with_mask) {
			ts.tv_sec = wait / 1000;
			ts.tv_nsec = (long)(wait % 1000) * 1000000;
			r = SYS(ppoll)(fds, n, wait < 0 ? NULL : &ts, ss);
		} else {
			r = SYS(poll)(fds, n, wait);
		}
		for (nfds_t i = 0; i < n; i++)
			fds[i].events = saved[i];
		if (r < 0)
			break;
		r = 0;
		for (nfds_t i = 0; i < n; i++) {
			if (ds[i])
				fds[i].revents =
				    (short)(tls_revents(ds[i], fds[i].fd, fds[i].events, fds[i].revents) |
					    tls_ready_now(ds[i], fds[i].events));
			if (fds[i].revents)
				r++;
		}
		if (r > 0 || left_ms(timeout, t0) == 0)
			break;
	}
	for (nfds_t i = 0; i < n; i++)
		if (ds[i])
			(void)fdtab_put(ds[i]);
	if (ds != small) {
		free(ds);
		free(saved);
	}
	return r;
}

static bool any_tls(const struct pollfd *fds, nfds_t n)
{
	if (!tls_any())
		return false;
	for (nfds_t i = 0; i < n; i++)
		if (fds[i].fd >= 0 && fdtab_maybe(fds[i].fd) && fdtab_peek(fds[i].fd)->kind == &tls_kind)
			return true;
	return false;
}

int poll(struct pollfd *fds, nfds_t n, int timeout)
{
	if (!any_tls(fds, n))
		return SYS(poll)(fds, n, timeout);
	return do_poll(fds, n, timeout, NULL, false);
}

int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t size);
int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t size)
{
	(void)size;
	return poll(fds, n, timeout);
}

int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *ss)
{
	int ms;

	if (!any_tls(fds, n))
		return SYS(ppoll)(fds, n, ts, ss);
	ms = ts ? (int)(ts->tv_sec * 1000 + ts->tv_nsec / 1000000) : -1;
	return do_poll(fds, n, ms, ss, true);
}

/* select/pselect with a TLS fd among the sets: as a poll. */
static bool sets_have_tls(int nfds, fd_set *rd, fd_set *wr, fd_set *ex)
{
	if (!tls_any())
		return false;
	for (int fd = 0; fd < nfds && fd < FD_SETSIZE; fd++)
		if (((rd && FD_ISSET(fd, rd)) || (wr && FD_ISSET(fd, wr)) || (ex && FD_ISSET(fd, ex))) &&
		    fdtab_maybe(fd) && fdtab_peek(fd)->kind == &tls_kind)
			return true;
	return false;
}

static int select_as_poll(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, int ms, const sigset_t *ss, bool mask)
{
	struct pollfd *p = calloc((size_t)(nfds > 0 ? nfds : 1), sizeof(*p));
	nfds_t n = 0;
	int r;

	if (!p) {
		errno = ENOMEM;
		return -1;
	}
	for (int fd = 0; fd < nfds && fd < FD_SETSIZE; fd++) {
		short ev =
		    (short)((rd && FD_ISSET(fd, rd) ? POLLIN : 0) | (wr && FD_ISSET(fd, wr) ? POLLOUT : 0) |
			    (ex && FD_ISSET(fd, ex) ? POLLPRI : 0));
		if (ev) {
			p[n].fd = fd;
			p[n++].events = ev;
		}
	}
	r = do_poll(p, n, ms, ss, mask);
	if (r >= 0) {
		r = 0;
		for (nfds_t i = 0; i < n; i++) {
			int fd = p[i].fd;
			if (p[i].revents & POLLNVAL) {
				free(p);
				errno = EBADF;
				return -1;
			}
			if (rd && FD_ISSET(fd, rd) && !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				FD_CLR(fd, rd);
			else if (rd && FD_ISSET(fd, rd))
				r++;
			if (wr && FD_ISSET(fd, wr) && !(p[i].revents & (POLLOUT | POLLERR)))
				FD_CLR(fd, wr);
			else if (wr && FD_ISSET(fd, wr))
				r++;
			if (ex && FD_ISSET(fd, ex) && !(p[i].revents & POLLPRI))
				FD_CLR(fd, ex);
			else if (ex && FD_ISSET(fd, ex))
				r++;
		}
	}
	free(p);
	return r;
}

int select(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, struct timeval *tv)
{
	if (!sets_have_tls(nfds, rd, wr, ex))
		return SYS(select)(nfds, rd, wr, ex, tv);
	return select_as_poll(nfds, rd, wr, ex, tv ? (int)(tv->tv_sec * 1000 + tv->tv_usec / 1000) : -1, NULL,
			      false);
}

int pselect(int nfds, fd_set *rd, fd_set *wr, fd_set *ex, const struct timespec *ts, const sigset_t *ss)
{
	if (!sets_have_tls(nfds, rd, wr, ex))
		return SYS(pselect)(nfds, rd, wr, ex, ts, ss);
	return select_as_poll(nfds, rd, wr, ex, ts ? (int)(ts->tv_sec * 1000 + ts->tv_nsec / 1000000) : -1,
			      ss, true);
}

/* ---- epoll ---- */

#define REG_MAGIC 0x73636f6e65726567ull
#define ARENA_REGS (1u << 20)

struct ep_reg {
	uint64_t magic; /* REG_MAGIC while registered */
	uint64_t user;	/* the program's epoll_data */
	uint32_t events;
	bool armed; /* EPOLLONESHOT: armed by the program, not reported since */
	int fd, epfd;
	struct fd_desc *d; /* no hold: compared only */
	struct ep_reg *next_free;
};

static struct ep_reg *arena;
static size_t arena_used;
static struct ep_reg *free_regs;
static pthread_mutex_t ep_lock = PTHREAD_MUTEX_INITIALIZER;

static bool arena_ready(void)
{
	void *p;

	if (__atomic_load_n(&arena, __ATOMIC_ACQUIRE))
		return true;
	p = SYS(mmap)(NULL, ARENA_REGS * sizeof(struct ep_reg), PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return false;
	__atomic_store_n(&arena, (struct ep_reg *)p, __ATOMIC_RELEASE);
	return true;
}

static struct ep_reg *reg_of(uint64_t data)
{
	struct ep_reg *a = __atomic_load_n(&arena, __ATOMIC_ACQUIRE);
	uintptr_t p = (uintptr_t)data, lo = (uintptr_t)a;

	if (!a || p < lo || p >= lo + arena_used * sizeof(*a) || (p - lo) % sizeof(*a) != 0)
		return NULL;
	return (struct ep_reg *)p;
}

/* The live record of (epfd, fd), or NULL (ep_lock held). */
static struct ep_reg *reg_find(int epfd, int fd)
{
	for (size_t i = 0; i < arena_used; i++)
		if (arena[i].magic == REG_MAGIC && arena[i].epfd == epfd && arena[i].fd == fd)
			return &arena[i];
	return NULL;
}

static struct ep_reg *reg_new(void)
{
	struct ep_reg *r = free_regs;

	if (r) {
		free_regs = r->next_free;
		return r;
	}
	if (arena_used == ARENA_REGS)
		return NULL;
	return &arena[arena_used++];
}

static void reg_free(struct ep_reg *r)
{
	r->magic = 0;
	r->next_free = free_regs;
	free_regs = r;
}

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	struct fd_desc *d = tls_of(fd);
	struct ep_reg *r;
	struct epoll_event mine;
	int rc, e;

	if (!d) {
		if (op == EPOLL_CTL_DEL && arena) { /* a TLS socket of the past under this number */
			pthread_mutex_lock(&ep_lock);
			if ((r = reg_find(epfd, fd)))
				reg_free(r);
			pthread_mutex_unlock(&ep_lock);
		}
		return SYS(epoll_ctl)(epfd, op, fd, ev);
	}
	pthread_mutex_lock(&ep_lock);
	if (!arena_ready()) {
		pthread_mutex_unlock(&ep_lock);
		(void)fdtab_put(d);
		errno = ENOMEM;
		return -1;
	}
	r = reg_find(epfd, fd);
	if (op == EPOLL_CTL_DEL) {
		rc = SYS(epoll_ctl)(epfd, op, fd, ev);
		e = errno;
		if (rc == 0 && r)
			reg_free(r);
	} else if (!ev) {
		rc = -1;
		e = EFAULT;
	} else {
		bool fresh = !r || op == EPOLL_CTL_ADD;
		if (!r && !(r = reg_new())) {
			pthread_mutex_unlock(&ep_lock);
			(void)fdtab_put(d);
			errno = ENOMEM;
			return -1;
		}
		mine = *ev;
		mine.data.u64 = (uint64_t)(uintptr_t)r;
		rc = SYS(epoll_ctl)(epfd, op, fd, &mine);
		e = errno;
		if (rc == 0) {
			r->user = ev->data.u64;
			r->events = ev->events;
			r->armed = true;
			r->fd = fd;
			r->epfd = epfd;
			r->d = d;
			r->magic = REG_MAGIC;
		} else if (fresh && r->magic != REG_MAGIC) {
			reg_free(r);
		}
	}
	pthread_mutex_unlock(&ep_lock);
	(void)fdtab_put(d);
	errno = e;
	return rc;
}

/* Level-triggered readers of epfd with decrypted bytes waiting: put them in ev (up to max). */
static int ep_pending(int epfd, struct epoll_event *ev, int max)
{
	int k = 0;

	if (!tls_maybe_ready())
		return 0;
	pthread_mutex_lock(&ep_lock);
	for (size_t i = 0; i < arena_used && k < max; i++) {
		struct ep_reg *r = &arena[i];
		short ready;
		if (r->magic != REG_MAGIC || r->epfd != epfd || !(r->events & EPOLLIN) ||
		    (r->events & EPOLLET) || ((r->events & EPOLLONESHOT) && !r->armed) ||
		    fdtab_peek(r->fd) != r->d)
			continue;
		if ((ready = tls_ready_now(r->d, (short)(r->events & 0xffff)))) {
			ev[k].events = (uint32_t)(unsigned short)ready;
			ev[k].data.u64 = r->user;
			k++;
			if (r->events & EPOLLONESHOT) {
				/* reported: disarmed, in the kernel too, until the program arms it again */
				struct epoll_event off = {.events = EPOLLONESHOT,
							  .data.u64 = (uint64_t)(uintptr_t)r};
				r->armed = false;
				(void)SYS(epoll_ctl)(epfd, EPOLL_CTL_MOD, r->fd, &off);
			}
		}
	}
	pthread_mutex_unlock(&ep_lock);
	return k;
}

/* The kernel's event e (ours: its data is a record): the program's, or false to drop it. */
static bool ep_translate(int epfd, struct epoll_event *e, const struct epoll_event *pre, int npre)
{
	struct ep_reg *r = reg_of(e->data.u64);
	struct fd_desc *d;
	uint32_t ev;
	int fd;

	if (!r)
		return true; /* the program's own */
	pthread_mutex_lock(&ep_lock);
	if (r->magic != REG_MAGIC) {
		pthread_mutex_unlock(&ep_lock);
		return false;
	}
	fd = r->fd;
	ev = r->events;
	e->data.u64 = r->user;
	d = fdtab_get(fd);
	if (d != r->d) {
		pthread_mutex_unlock(&ep_lock);
		if (d)
			(void)fdtab_put(d);
		return false;
	}
	pthread_mutex_unlock(&ep_lock);
	for (int i = 0; i < npre; i++)
		if (pre[i].data.u64 == e->data.u64) { /* already reported */
			(void)fdtab_put(d);
			return false;
		}
	{
		short got = tls_revents(d, fd, (short)(ev & 0xffff), (short)(e->events & 0xffff));
		e->events = (uint32_t)(unsigned short)got | (e->events & EPOLLRDHUP & ev);
	}
	if (e->events && (ev & EPOLLONESHOT))
		r->armed = false; /* (a plain store: a stale true only costs a look) */
	if (!(e->events & ~EPOLLRDHUP) && (ev & EPOLLONESHOT)) {
		struct epoll_event again = {.events = ev, .data.u64 = (uint64_t)(uintptr_t)r};
		(void)SYS(epoll_ctl)(epfd, EPOLL_CTL_MOD, fd,
				     &again); /* nothing for the program: armed again */
	}
	(void)fdtab_put(d);
	return e->events != 0;
}

void io_net_forget(const struct fd_desc *d)
{
	if (!__atomic_load_n(&arena, __ATOMIC_ACQUIRE))
		return;
	pthread_mutex_lock(&ep_lock);
	for (size_t i = 0; i < arena_used; i++)
		if (arena[i].magic == REG_MAGIC && arena[i].d == d)
			reg_free(&arena[i]);
	pthread_mutex_unlock(&ep_lock);
}

static int ep_wait(int epfd, struct epoll_event *ev, int max, int timeout, const sigset_t *ss, bool mask)
{
	int64_t t0 = now_ms();

	if (!tls_any() || max <= 0 || !arena)
		return mask ? SYS(epoll_pwait)(epfd, ev, max, timeout, ss)
			    : SYS(epoll_wait)(epfd, ev, max, timeout);
	for (;;) {
		int fds[32];
		int k = ep_pending(epfd, ev, max), r, out, wait;
		size_t nres = tls_flush_all(fds, 32);
		wait = k ? 0 : left_ms(timeout, t0);
		if (nres && wait != 0) {
			/* ciphertext the kernel has not taken yet: wake when it can, or when epfd has events
			 */
			struct pollfd p[33];
			p[0].fd = epfd;
			p[0].events = POLLIN;
			for (size_t i = 0; i < nres; i++) {
				p[i + 1].fd = fds[i];
				p[i + 1].events = POLLOUT;
			}
			if (SYS(poll)(p, nres + 1, wait) < 0 && errno == EINTR)
				return -1;
			if (!(p[0].revents & POLLIN)) {
				if (left_ms(timeout, t0) == 0)
					return 0;
				continue;
			}
			wait = 0;
		}
		r = mask ? SYS(epoll_pwait)(epfd, ev + k, max - k, wait, ss)
			 : SYS(epoll_wait)(epfd, ev + k, max - k, wait);
		if (r < 0)
			return k ? k : -1;
		out = k;
		for (int i = k; i < k + r; i++)
			if (ep_translate(epfd, &ev[i], ev, k))
				ev[out++] = ev[i];
		if (out > 0 || left_ms(timeout, t0) == 0)
			return out;
	}
}

int epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout)
{
	return ep_wait(epfd, ev, max, timeout, NULL, false);
}

int epoll_pwait(int epfd, struct epoll_event *ev, int max, int timeout, const sigset_t *ss)
{
	return ep_wait(epfd, ev, max, timeout, ss, true);
}
