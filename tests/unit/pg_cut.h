/*
 * pg_cut.h - a relay between a store and the test PostgreSQL server
 * (pg_fixture.h) that can lose the answer to a COMMIT.
 *
 * It listens on a unix socket of its own (host=<dir> in a URL) and passes
 * every connection through to the fixture's server. Armed, it lets the next
 * "COMMIT" query through, waits until the server answers (the transaction
 * has committed), and then cuts both sides before the answer reaches the
 * client: the client sees its database connection break and cannot know
 * whether its COMMIT happened. That is what a network cut or a proxy
 * restart at the worst moment does; nothing else is simulated.
 *
 * Header-only (static functions), included after pg_fixture.h.
 */
#ifndef SCONE_TEST_PG_CUT_H
#define SCONE_TEST_PG_CUT_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "pg_fixture.h"

#define PGCUT_PAIRS 8
#define PGCUT_FN static __attribute__((unused))

struct pgcut_pair {
	int c, s;     /* the client's side, the server's side */
	bool started; /* the startup message went through: typed messages follow */
	uint8_t *buf; /* the client's bytes not yet a whole message */
	size_t len, cap;
};

struct pgcut {
	char dir[64]; /* the relay's socket directory */
	int listen_fd, wake[2];
	pthread_t thread;
	atomic_int armed; /* 1: lose the answer to the next COMMIT */
	atomic_int cuts;  /* answers lost so far */
	struct pgcut_pair pair[PGCUT_PAIRS];
	int n;
};

PGCUT_FN int pgcut_unix(const char *dir, bool listening)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/.s.PGSQL.5432", dir);
	if (fd < 0)
		return -1;
	if (listening ? bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fd, 16) == 0
		      : connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	close(fd);
	return -1;
}

PGCUT_FN bool pgcut_write(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

PGCUT_FN uint32_t pgcut_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

PGCUT_FN void pgcut_drop(struct pgcut *x, int i)
{
	close(x->pair[i].c);
	close(x->pair[i].s);
	free(x->pair[i].buf);
	x->pair[i] = x->pair[--x->n];
}

/* The server's answer has arrived (read and thrown away), or 5 s passed. */
PGCUT_FN void pgcut_swallow_answer(int s)
{
	struct pollfd p = {.fd = s, .events = POLLIN};
	uint8_t b[4096];

	if (poll(&p, 1, 5000) == 1 && read(s, b, sizeof(b)) < 0)
		return;
}

/*
 * Pass the client's whole messages on; false when the pair is to be cut
 * (a COMMIT while armed, or the server gone).
 */
PGCUT_FN bool pgcut_forward(struct pgcut *x, struct pgcut_pair *q)
{
	size_t off = 0;

	for (;;) {
		size_t head = q->started ? 5 : 4, total;
		const uint8_t *m = q->buf + off;
		uint32_t n;
		bool commit;

		if (q->len - off < head)
			break;
		n = pgcut_be32(m + head - 4);
		total = (q->started ? 1 : 0) + (size_t)n;
		if (n < 4 || q->len - off < total)
			break;
		commit = q->started && m[0] == 'Q' && total == 5 + sizeof("COMMIT") &&
			 memcmp(m + 5, "COMMIT", sizeof("COMMIT")) == 0;
		if (!pgcut_write(q->s, m, total))
			return false;
		/* an SSL or GSS encryption request (8 bytes) comes before the startup message */
		if (!q->started &&
		    !(n == 8 && (pgcut_be32(m + 4) == 80877103 || pgcut_be32(m + 4) == 80877104)))
			q->started = true;
		off += total;
		if (commit && atomic_exchange(&x->armed, 0)) {
			pgcut_swallow_answer(q->s);
			atomic_fetch_add(&x->cuts, 1);
			return false;
		}
	}
	memmove(q->buf, q->buf + off, q->len - off);
	q->len -= off;
	return true;
}

PGCUT_FN bool pgcut_from_client(struct pgcut *x, struct pgcut_pair *q)
{
	ssize_t r;

	if (q->cap - q->len < 4096) {
		size_t cap = q->cap ? q->cap * 2 : 65536;
		uint8_t *b = realloc(q->buf, cap);
		if (!b)
			return false;
		q->buf = b;
		q->cap = cap;
	}
	r = read(q->c, q->buf + q->len, q->cap - q->len);
	if (r <= 0)
		return false;
	q->len += (size_t)r;
	return pgcut_forward(x, q);
}

PGCUT_FN bool pgcut_from_server(struct pgcut_pair *q)
{
	uint8_t b[16384];
	ssize_t r = read(q->s, b, sizeof(b));

	return r > 0 && pgcut_write(q->c, b, (size_t)r);
}

PGCUT_FN void pgcut_accept(struct pgcut *x)
{
	int c = accept4(x->listen_fd, NULL, NULL, SOCK_CLOEXEC), s;

	if (c < 0)
		return;
	s = x->n < PGCUT_PAIRS ? pgcut_unix(pgfx_dir, false) : -1;
	if (s < 0) {
		close(c);
		return;
	}
	x->pair[x->n++] = (struct pgcut_pair){.c = c, .s = s};
}

PGCUT_FN void *pgcut_run(void *arg)
{
	struct pgcut *x = arg;

	for (;;) {
		struct pollfd p[2 + 2 * PGCUT_PAIRS];
		int n = x->n;

		p[0] = (struct pollfd){.fd = x->wake[0], .events = POLLIN};
		p[1] = (struct pollfd){.fd = x->listen_fd, .events = POLLIN};
		for (int i = 0; i < n; i++) {
			p[2 + 2 * i] = (struct pollfd){.fd = x->pair[i].c, .events = POLLIN};
			p[3 + 2 * i] = (struct pollfd){.fd = x->pair[i].s, .events = POLLIN};
		}
		if (poll(p, (nfds_t)(2 + 2 * n), -1) < 0)
			continue;
		if (p[0].revents)
			break;
		for (int i = n - 1; i >= 0;
		     i--) { /* (backwards: a dropped pair takes the last one's place) */
			bool ok = true;
			if (p[3 + 2 * i].revents)
				ok = pgcut_from_server(&x->pair[i]);
			if (ok && p[2 + 2 * i].revents)
				ok = pgcut_from_client(x, &x->pair[i]);
			if (!ok)
				pgcut_drop(x, i);
		}
		if (p[1].revents)
			pgcut_accept(x);
	}
	while (x->n > 0)
		pgcut_drop(x, x->n - 1);
	return NULL;
}

/* Start the relay (the fixture's server must be running); false if it cannot. */
PGCUT_FN bool pgcut_start(struct pgcut *x)
{
	memset(x, 0, sizeof(*x));
	snprintf(x->dir, sizeof(x->dir), "/tmp/scone-pgcut-XXXXXX");
	if (!mkdtemp(x->dir) || pipe2(x->wake, O_CLOEXEC) != 0)
		return false;
	x->listen_fd = pgcut_unix(x->dir, true);
	if (x->listen_fd < 0)
		return false;
	return pthread_create(&x->thread, NULL, pgcut_run, x) == 0;
}

/* The URL of database db through the relay. */
PGCUT_FN void pgcut_url(const struct pgcut *x, const char *db, char *out, size_t size)
{
	snprintf(out, size, "postgresql:///%s?host=%s&port=5432&user=scone", db, x->dir);
}

PGCUT_FN void pgcut_stop(struct pgcut *x)
{
	char path[128];

	if (write(x->wake[1], "x", 1) == 1)
		pthread_join(x->thread, NULL);
	close(x->wake[0]);
	close(x->wake[1]);
	close(x->listen_fd);
	snprintf(path, sizeof(path), "%s/.s.PGSQL.5432", x->dir);
	unlink(path);
	rmdir(x->dir);
}

#endif
