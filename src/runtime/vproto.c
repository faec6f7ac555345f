/*
 * vproto.c - frames between a process and the one serving its volumes
 * (vproto.h).
 */
#include "runtime/vproto.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "runtime/sys.h"

#define F_ST 0x1
#define HEAD 44 /* op, mount, flags, pad, err, h, a, b, p1 len, p2 len, detail len, pad, data size */
#define ST_SIZE (1 + 8 + 4 + 16 + 8)

static enum scone_err put_st(struct scone_wbuf *w, const struct scone_vstat *st)
{
	SCONE_TRY(scone_wbuf_u8(w, st->is_dir ? 1 : 0));
	SCONE_TRY(scone_wbuf_u64(w, st->size));
	SCONE_TRY(scone_wbuf_u32(w, st->mode));
	SCONE_TRY(scone_wbuf_put(w, st->file_id, sizeof(st->file_id)));
	return scone_wbuf_u64(w, (uint64_t)st->mtime_ns);
}

static enum scone_err get_st(struct scone_rbuf *r, struct scone_vstat *st)
{
	uint8_t dir;
	uint64_t mt;

	SCONE_TRY(scone_rbuf_u8(r, "is_dir", &dir));
	if (dir > 1)
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: is_dir %u at byte %zu", r->what, dir,
				     r->pos - 1);
	st->is_dir = dir;
	SCONE_TRY(scone_rbuf_u64(r, "size", &st->size));
	SCONE_TRY(scone_rbuf_u32(r, "mode", &st->mode));
	SCONE_TRY(scone_rbuf_bytes(r, "file_id", st->file_id, sizeof(st->file_id)));
	SCONE_TRY(scone_rbuf_u64(r, "mtime", &mt));
	st->mtime_ns = (int64_t)mt;
	return SCONE_ERR_OK;
}

enum scone_err vp_encode(const struct vp_msg *m, struct scone_wbuf *out)
{
	size_t l1 = strnlen(m->p1, VP_MAX_PATH), l2 = strnlen(m->p2, VP_MAX_PATH),
	       ld = strnlen(m->detail, VP_DETAIL_MAX);
	size_t payload = HEAD + (m->has_st ? ST_SIZE : 0) + l1 + l2 + ld + m->data_size;

	if (l1 == VP_MAX_PATH || l2 == VP_MAX_PATH || ld == VP_DETAIL_MAX)
		return scone_err_set(SCONE_ERR_INVALID, "volume request: a path or detail is not terminated");
	if (m->data_size > VP_MAX_DATA)
		return scone_err_set(SCONE_ERR_TOO_LARGE, "volume request: %zu bytes of data", m->data_size);
	SCONE_TRY(scone_wbuf_reserve(out, out->size + 4 + payload));
	SCONE_TRY(scone_wbuf_u32(out, (uint32_t)payload));
	SCONE_TRY(scone_wbuf_u8(out, m->op));
	SCONE_TRY(scone_wbuf_u8(out, m->mount));
	SCONE_TRY(scone_wbuf_u8(out, m->has_st ? F_ST : 0));
	SCONE_TRY(scone_wbuf_u8(out, 0));
	SCONE_TRY(scone_wbuf_u32(out, (uint32_t)m->err));
	SCONE_TRY(scone_wbuf_u64(out, m->h));
	SCONE_TRY(scone_wbuf_u64(out, m->a));
	SCONE_TRY(scone_wbuf_u64(out, m->b));
	SCONE_TRY(scone_wbuf_u16(out, (uint16_t)l1));
	SCONE_TRY(scone_wbuf_u16(out, (uint16_t)l2));
	SCONE_TRY(scone_wbuf_u16(out, (uint16_t)ld));
	SCONE_TRY(scone_wbuf_u16(out, 0));
	SCONE_TRY(scone_wbuf_u32(out, (uint32_t)m->data_size));
	if (m->has_st)
		SCONE_TRY(put_st(out, &m->st));
	SCONE_TRY(scone_wbuf_put(out, m->p1, l1));
	SCONE_TRY(scone_wbuf_put(out, m->p2, l2));
	SCONE_TRY(scone_wbuf_put(out, m->detail, ld));
	return m->data_size ? scone_wbuf_put(out, m->data, m->data_size) : SCONE_ERR_OK;
}

/* A string of n bytes (no NUL inside) into out (n < size). */
static enum scone_err get_str(struct scone_rbuf *r, const char *field, size_t n, size_t size, char *out)
{
	const uint8_t *p;

	if (n >= size)
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: %s of %zu bytes (at most %zu)", r->what, field,
				     n, size - 1);
	SCONE_TRY(scone_rbuf_view(r, field, &p, n));
	if (memchr(p, '\0', n))
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: %s holds a NUL byte", r->what, field);
	memcpy(out, p, n);
	out[n] = '\0';
	return SCONE_ERR_OK;
}

enum scone_err vp_decode(const uint8_t *payload, size_t size, struct vp_msg *m)
{
	struct scone_rbuf r;
	uint8_t flags, pad8;
	uint16_t l1, l2, ld, pad16;
	uint32_t err, dsize;

	memset(m, 0, offsetof(struct vp_msg, p1));
	m->p1[0] = m->p2[0] = m->detail[0] = '\0';
	m->has_st = false;
	m->data = NULL;
	m->data_size = 0;
	scone_rbuf_init(&r, payload, size, "volume frame");
	SCONE_TRY(scone_rbuf_u8(&r, "op", &m->op));
	SCONE_TRY(scone_rbuf_u8(&r, "mount", &m->mount));
	SCONE_TRY(scone_rbuf_u8(&r, "flags", &flags));
	SCONE_TRY(scone_rbuf_u8(&r, "pad", &pad8));
	if (m->op == 0 || m->op >= VP_OP_END_ || (flags & ~F_ST) || pad8)
		return scone_err_set(SCONE_ERR_MALFORMED, "volume frame: op %u, flags 0x%x", m->op, flags);
	SCONE_TRY(scone_rbuf_u32(&r, "err", &err));
	m->err = (int32_t)err;
	if (m->err < 0 || m->err >= SCONE_ERR_COUNT_)
		return scone_err_set(SCONE_ERR_MALFORMED, "volume frame: error code %d", m->err);
	SCONE_TRY(scone_rbuf_u64(&r, "h", &m->h));
	SCONE_TRY(scone_rbuf_u64(&r, "a", &m->a));
	SCONE_TRY(scone_rbuf_u64(&r, "b", &m->b));
	SCONE_TRY(scone_rbuf_u16(&r, "p1 length", &l1));
	SCONE_TRY(scone_rbuf_u16(&r, "p2 length", &l2));
	SCONE_TRY(scone_rbuf_u16(&r, "detail length", &ld));
	SCONE_TRY(scone_rbuf_u16(&r, "pad", &pad16));
	SCONE_TRY(scone_rbuf_u32(&r, "data size", &dsize));
	if (pad16 || dsize > VP_MAX_DATA)
		return scone_err_set(SCONE_ERR_MALFORMED, "volume frame: %u bytes of data", dsize);
	if ((m->has_st = flags & F_ST))
		SCONE_TRY(get_st(&r, &m->st));
	SCONE_TRY(get_str(&r, "p1", l1, sizeof(m->p1), m->p1));
	SCONE_TRY(get_str(&r, "p2", l2, sizeof(m->p2), m->p2));
	SCONE_TRY(get_str(&r, "detail", ld, sizeof(m->detail), m->detail));
	SCONE_TRY(scone_rbuf_view(&r, "data", &m->data, dsize));
	m->data_size = dsize;
	if (scone_rbuf_left(&r))
		return scone_err_set(SCONE_ERR_MALFORMED, "volume frame: %zu bytes after the data",
				     scone_rbuf_left(&r));
	return SCONE_ERR_OK;
}

enum scone_err vp_put_entry(struct scone_wbuf *out, const char *name, const struct scone_vstat *st)
{
	size_t n = strlen(name);

	if (n == 0 || n > NAME_MAX)
		return scone_err_set(SCONE_ERR_INVALID, "directory entry of %zu bytes", n);
	SCONE_TRY(scone_wbuf_u8(out, (uint8_t)n));
	SCONE_TRY(scone_wbuf_put(out, name, n));
	return put_st(out, st);
}

enum scone_err vp_get_entry(struct scone_rbuf *in, char name[NAME_MAX + 1], struct scone_vstat *st)
{
	uint8_t n;

	SCONE_TRY(scone_rbuf_u8(in, "entry name length", &n));
	if (n == 0)
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: empty entry name", in->what);
	SCONE_TRY(get_str(in, "entry name", n, NAME_MAX + 1, name));
	if (strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: entry name is not a name", in->what);
	return get_st(in, st);
}

/* ---- the socket ---- */

enum scone_err vp_send(int fd, const struct scone_wbuf *frame, int pass_fd)
{
	size_t done = 0;
	char cbuf[CMSG_SPACE(sizeof(int))];

	while (done < frame->size) {
		struct iovec iov = {.iov_base = frame->data + done, .iov_len = frame->size - done};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
		ssize_t n;
		if (pass_fd >= 0 && done == 0) {
			struct cmsghdr *c;
			memset(cbuf, 0, sizeof(cbuf));
			mh.msg_control = cbuf;
			mh.msg_controllen = sizeof(cbuf);
			c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
		}
		n = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return scone_err_set(SCONE_ERR_NETWORK, "volume server: send: %s",
					     n < 0 ? strerror(errno) : "closed");
		done += (size_t)n;
	}
	return SCONE_ERR_OK;
}

/* Read exactly n bytes (the first read may carry an fd). */
static enum scone_err read_all(int fd, uint8_t *buf, size_t n, int *passed_fd)
{
	size_t got = 0;
	char cbuf[CMSG_SPACE(sizeof(int))];

	while (got < n) {
		struct iovec iov = {.iov_base = buf + got, .iov_len = n - got};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
		ssize_t r;
		if (passed_fd) {
			mh.msg_control = cbuf;
			mh.msg_controllen = sizeof(cbuf);
		}
		r = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return scone_err_set(SCONE_ERR_NETWORK, "volume server: %s",
					     r < 0 ? strerror(errno) : "closed");
		if (passed_fd) {
			for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
				if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
				    c->cmsg_len == CMSG_LEN(sizeof(int)) && *passed_fd < 0)
					memcpy(passed_fd, CMSG_DATA(c), sizeof(int));
		}
		got += (size_t)r;
	}
	return SCONE_ERR_OK;
}

enum scone_err vp_recv_answer(int fd, uint8_t *buf, struct vp_msg *m, int *passed_fd)
{
	uint8_t len[4];
	struct iovec iov[2] = {{.iov_base = len, .iov_len = sizeof(len)},
			       {.iov_base = buf, .iov_len = VP_MAX_FRAME}};
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
	ssize_t r;
	size_t got;
	uint32_t n;

	if (passed_fd) {
		*passed_fd = -1;
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
	}
	/* Length and payload in one call, as the answer usually comes whole. */
	while ((r = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
		;
	if (r <= 0)
		return scone_err_set(SCONE_ERR_NETWORK, "volume server: %s",
				     r < 0 ? strerror(errno) : "closed");
	if (passed_fd)
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
			    c->cmsg_len == CMSG_LEN(sizeof(int)))
				memcpy(passed_fd, CMSG_DATA(c), sizeof(int));
	if ((size_t)r < sizeof(len))
		SCONE_TRY(read_all(fd, len + r, sizeof(len) - (size_t)r, NULL));
	got = (size_t)r > sizeof(len) ? (size_t)r - sizeof(len) : 0;
	n = scone_get_le32(len);
	if (n > VP_MAX_FRAME || n < HEAD || got > n)
		return scone_err_set(SCONE_ERR_MALFORMED, "volume answer frame of %u bytes (%zu came)", n,
				     got);
	if (got < n)
		SCONE_TRY(read_all(fd, buf + got, n - got, NULL));
	return vp_decode(buf, n, m);
}

enum scone_err vp_recv(int fd, uint8_t *buf, struct vp_msg *m, int *passed_fd)
{
	uint8_t len[4];
	uint32_t n;

	if (passed_fd)
		*passed_fd = -1;
	SCONE_TRY(read_all(fd, len, sizeof(len), passed_fd));
	n = scone_get_le32(len);
	if (n > VP_MAX_FRAME || n < HEAD)
		return scone_err_set(SCONE_ERR_MALFORMED, "volume frame of %u bytes", n);
	SCONE_TRY(read_all(fd, buf, n, NULL));
	return vp_decode(buf, n, m);
}
