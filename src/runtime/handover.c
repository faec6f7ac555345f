/*
 * handover.c - encoding and decoding of the state a program under the
 * runtime hands to the program it execs (see handover.h for the format).
 */
#include "runtime/handover.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "lib/crypto.h"

#define MAGIC "SCONEHO1"
#define MAGIC_LEN 8

#define MAX_ADDR SCONE_HANDOVER_MAX_ADDR
#define MAX_IDENTITY SCONE_HANDOVER_MAX_IDENTITY
#define MAX_ENV SCONE_HANDOVER_MAX_ENV
#define MAX_ENV_ENTRY SCONE_HANDOVER_MAX_ENV_ENTRY
#define MAX_VOLUMES SCONE_HANDOVER_MAX_VOLUMES
#define MAX_FDS SCONE_HANDOVER_MAX_FDS
#define MAX_PATH SCONE_HANDOVER_MAX_PATH

enum rec {
	REC_CONFIG = 'C',
	REC_ADDR = 'A',
	REC_PIN = 'P',
	REC_IDENTITY = 'I',
	REC_ENV = 'E',
	REC_VOLUME = 'V',
	REC_SHARE = 'S',
	REC_CONN = 'N',
	REC_FD = 'F',
	REC_CWD = 'W',
};

void scone_handover_init(struct scone_handover *h)
{
	memset(h, 0, sizeof(*h));
	h->share_fd = -1;
	h->conn_fd = -1;
	h->mail[0] = h->mail[1] = -1;
}

/* ---- encoding ---- */

static enum scone_err put_head(struct scone_wbuf *w, enum rec type, size_t len)
{
	if (len > UINT32_MAX)
		return scone_err_set(SCONE_ERR_TOO_LARGE, "handover record %c: %zu bytes", type, len);
	SCONE_TRY(scone_wbuf_u8(w, (uint8_t)type));
	return scone_wbuf_u32(w, (uint32_t)len);
}

static enum scone_err put_rec(struct scone_wbuf *w, enum rec type, const void *data, size_t len)
{
	SCONE_TRY(put_head(w, type, len));
	return scone_wbuf_put(w, data, len);
}

static enum scone_err put_str(struct scone_wbuf *w, enum rec type, const char *s)
{
	return s ? put_rec(w, type, s, strlen(s)) : SCONE_ERR_OK;
}

static enum scone_err put_volume(struct scone_wbuf *w, const struct scone_handover_volume *v)
{
	size_t n = strlen(v->name);

	SCONE_TRY(put_head(w, REC_VOLUME, 1 + SCONE_HANDOVER_TAG_SIZE + n));
	SCONE_TRY(scone_wbuf_u8(w, v->has_tag));
	SCONE_TRY(scone_wbuf_put(w, v->tag, SCONE_HANDOVER_TAG_SIZE));
	return scone_wbuf_put(w, v->name, n);
}

/* An fd record: fd, flags, volume (u32 each), dir (u8), dev, ino (u64), has_fid | cloexec << 1 (u8), fid,
 * path. */
#define FD_FIXED 46u

static enum scone_err put_fd(struct scone_wbuf *w, const struct scone_handover_fd *f)
{
	size_t n = strlen(f->vpath);

	SCONE_TRY(put_head(w, REC_FD, FD_FIXED + n));
	SCONE_TRY(scone_wbuf_u32(w, (uint32_t)f->fd));
	SCONE_TRY(scone_wbuf_u32(w, (uint32_t)f->flags));
	SCONE_TRY(scone_wbuf_u32(w, f->volume));
	SCONE_TRY(scone_wbuf_u8(w, f->dir));
	SCONE_TRY(scone_wbuf_u64(w, f->dev));
	SCONE_TRY(scone_wbuf_u64(w, f->ino));
	SCONE_TRY(scone_wbuf_u8(w, (uint8_t)(f->has_fid | f->cloexec << 1)));
	SCONE_TRY(scone_wbuf_put(w, f->fid, sizeof(f->fid)));
	return scone_wbuf_put(w, f->vpath, n);
}

/* The decoder's rules, applied before encoding. */
static enum scone_err enc_check(const struct scone_handover *h)
{
	if (!h->config || !h->cas_addr || !h->cas_addr[0] || strlen(h->cas_addr) > MAX_ADDR)
		return scone_err_set(SCONE_ERR_INVALID,
				     "handover: configuration or CAS address missing or too long");
	if (h->identity ? h->identity_len == 0 || h->identity_len > MAX_IDENTITY : h->volume_count > 0)
		return scone_err_set(SCONE_ERR_INVALID,
				     "handover: volumes need the report key (at most %u bytes)",
				     MAX_IDENTITY);
	if (h->env_count > MAX_ENV || h->volume_count > MAX_VOLUMES || h->fd_count > MAX_FDS)
		return scone_err_set(
		    SCONE_ERR_LIMIT, "handover: %zu variables, %zu volumes, %zu fds (limits %u, %u, %u)",
		    h->env_count, h->volume_count, h->fd_count, MAX_ENV, MAX_VOLUMES, MAX_FDS);
	for (size_t i = 0; i < h->env_count; i++) {
		const char *eq = strchr(h->env[i], '=');
		if (!eq || eq == h->env[i])
			return scone_err_set(SCONE_ERR_INVALID,
					     "handover: environment entry %zu is not NAME=VALUE", i);
		if (strlen(h->env[i]) > MAX_ENV_ENTRY)
			return scone_err_set(SCONE_ERR_LIMIT,
					     "handover: environment entry %zu is over %u bytes", i,
					     MAX_ENV_ENTRY);
	}
	for (size_t i = 0; i < h->volume_count; i++)
		if (!h->volumes[i].name[0] || strlen(h->volumes[i].name) > MAX_PATH)
			return scone_err_set(SCONE_ERR_INVALID,
					     "handover: volume %zu has no name or a name too long", i);
	for (size_t i = 0; i < h->fd_count; i++) {
		const struct scone_handover_fd *f = &h->fds[i];
		if (f->fd < 0 || f->volume >= h->volume_count || f->vpath[0] != '/' ||
		    strlen(f->vpath) > MAX_PATH)
			return scone_err_set(SCONE_ERR_INVALID, "handover: fd record %zu (fd %d, volume %u)",
					     i, f->fd, f->volume);
	}
	if (h->cwd && (h->cwd[0] != '/' || strlen(h->cwd) > MAX_PATH))
		return scone_err_set(SCONE_ERR_INVALID,
				     "handover: the working directory is not an absolute path");
	return SCONE_ERR_OK;
}

enum scone_err scone_handover_encode(const struct scone_handover *h, struct scone_wbuf *w)
{
	SCONE_TRY(enc_check(h));
	SCONE_TRY(scone_wbuf_put(w, MAGIC, MAGIC_LEN));
	SCONE_TRY(put_rec(w, REC_CONFIG, h->config, h->config_len));
	SCONE_TRY(put_str(w, REC_ADDR, h->cas_addr));
	SCONE_TRY(put_rec(w, REC_PIN, h->pin, sizeof(h->pin)));
	if (h->identity)
		SCONE_TRY(put_rec(w, REC_IDENTITY, h->identity, h->identity_len));
	for (size_t i = 0; i < h->env_count; i++)
		SCONE_TRY(put_str(w, REC_ENV, h->env[i]));
	for (size_t i = 0; i < h->volume_count; i++)
		SCONE_TRY(put_volume(w, &h->volumes[i]));
	if (h->share_fd >= 0) {
		SCONE_TRY(put_head(w, REC_SHARE, 5));
		SCONE_TRY(scone_wbuf_u32(w, (uint32_t)h->share_fd));
		SCONE_TRY(scone_wbuf_u8(w, h->shared));
	}
	if (h->conn_fd >= 0) {
		SCONE_TRY(put_head(w, REC_CONN, 4));
		SCONE_TRY(scone_wbuf_u32(w, (uint32_t)h->conn_fd));
	}
	for (size_t i = 0; i < h->fd_count; i++)
		SCONE_TRY(put_fd(w, &h->fds[i]));
	return put_str(w, REC_CWD, h->cwd);
}

/* ---- decoding ---- */

/* A copy of n bytes as a string; NUL bytes inside are refused. */
static enum scone_err dup_str(const uint8_t *p, size_t n, const char *what, char **out)
{
	if (memchr(p, '\0', n))
		return scone_err_set(SCONE_ERR_MALFORMED, "handover: %s holds a NUL byte", what);
	if (!(*out = malloc(n + 1)))
		return scone_err_set(SCONE_ERR_NOMEM, "handover: %s", what);
	memcpy(*out, p, n);
	(*out)[n] = '\0';
	return SCONE_ERR_OK;
}

/* Append one slot to an array of elements of size sz, bounded by max. */
static enum scone_err grow(void **arr, size_t *count, size_t sz, size_t max, const char *what)
{
	void *p;

	if (*count >= max)
		return scone_err_set(SCONE_ERR_LIMIT, "handover: more than %zu %s", max, what);
	if (!(p = realloc(*arr, (*count + 1) * sz)))
		return scone_err_set(SCONE_ERR_NOMEM, "handover: %s", what);
	*arr = p;
	memset((char *)p + *count * sz, 0, sz);
	(*count)++;
	return SCONE_ERR_OK;
}

static enum scone_err once(bool seen, enum rec type)
{
	return seen ? scone_err_set(SCONE_ERR_MALFORMED, "handover: record %c twice", type) : SCONE_ERR_OK;
}

static enum scone_err dec_env(struct scone_handover *h, const uint8_t *p, size_t n)
{
	const uint8_t *eq = memchr(p, '=', n);

	if (n > MAX_ENV_ENTRY)
		return scone_err_set(SCONE_ERR_LIMIT,
				     "handover: environment entry %zu is %zu bytes (limit %u)", h->env_count,
				     n, MAX_ENV_ENTRY);
	if (!eq || eq == p)
		return scone_err_set(SCONE_ERR_MALFORMED, "handover: environment entry %zu is not NAME=VALUE",
				     h->env_count);
	SCONE_TRY(grow((void **)&h->env, &h->env_count, sizeof(*h->env), MAX_ENV, "environment entries"));
	return dup_str(p, n, "environment entry", &h->env[h->env_count - 1]);
}

static enum scone_err dec_volume(struct scone_handover *h, const uint8_t *p, size_t n)
{
	struct scone_handover_volume *v;

	if (n <= 1 + SCONE_HANDOVER_TAG_SIZE || n > 1 + SCONE_HANDOVER_TAG_SIZE + MAX_PATH || p[0] > 1)
		return scone_err_set(SCONE_ERR_MALFORMED, "handover: volume record %zu: bad length or flag",
				     h->volume_count);
	SCONE_TRY(grow((void **)&h->volumes, &h->volume_count, sizeof(*v), MAX_VOLUMES, "volumes"));
	v = &h->volumes[h->volume_count - 1];
	v->has_tag = p[0];
	memcpy(v->tag, p + 1, SCONE_HANDOVER_TAG_SIZE);
	return dup_str(p + 1 + SCONE_HANDOVER_TAG_SIZE, n - 1 - SCONE_HANDOVER_TAG_SIZE, "volume name",
		       &v->name);
}

static enum scone_err dec_fd(struct scone_handover *h, const uint8_t *p, size_t n)
{
	struct scone_handover_fd *f;
	uint32_t fd = n >= FD_FIXED ? scone_get_le32(p) : 0;

	if (n <= FD_FIXED || n > FD_FIXED + MAX_PATH || fd > INT_MAX || p[12] > 1 || p[29] > 3 ||
	    p[FD_FIXED] != '/')
		return scone_err_set(SCONE_ERR_MALFORMED,
				     "handover: fd record %zu: bad length, fd, flag or path", h->fd_count);
	SCONE_TRY(grow((void **)&h->fds, &h->fd_count, sizeof(*f), MAX_FDS, "fds"));
	f = &h->fds[h->fd_count - 1];
	f->fd = (int)fd;
	f->flags = (int)scone_get_le32(p + 4);
	f->volume = scone_get_le32(p + 8);
	f->dir = p[12];
	f->dev = scone_get_le64(p + 13);
	f->ino = scone_get_le64(p + 21);
	f->has_fid = p[29] & 1;
	f->cloexec = (p[29] & 2) != 0;
	memcpy(f->fid, p + 30, sizeof(f->fid));
	return dup_str(p + FD_FIXED, n - FD_FIXED, "fd path", &f->vpath);
}

static enum scone_err dec_record(struct scone_handover *h, uint8_t type, const uint8_t *p, size_t n,
				 bool *seen_pin)
{
	switch (type) {
	case REC_CONFIG:
		SCONE_TRY(once(h->config != NULL, type));
		h->config_len = n;
		return dup_str(p, n, "configuration", &h->config);
	case REC_ADDR:
		SCONE_TRY(once(h->cas_addr != NULL, type));
		if (n == 0 || n > MAX_ADDR)
			return scone_err_set(SCONE_ERR_MALFORMED, "handover: CAS address of %zu bytes", n);
		return dup_str(p, n, "CAS address", &h->cas_addr);
	case REC_PIN:
		SCONE_TRY(once(*seen_pin, type));
		if (n != sizeof(h->pin))
			return scone_err_set(SCONE_ERR_MALFORMED, "handover: CAS pin of %zu bytes", n);
		memcpy(h->pin, p, n);
		*seen_pin = true;
		return SCONE_ERR_OK;
	case REC_IDENTITY:
		SCONE_TRY(once(h->identity != NULL, type));
		if (n == 0 || n > MAX_IDENTITY)
			return scone_err_set(SCONE_ERR_MALFORMED, "handover: identity of %zu bytes", n);
		h->identity_len = n;
		return dup_str(p, n, "identity", &h->identity);
	case REC_ENV:
		return dec_env(h, p, n);
	case REC_VOLUME:
		return dec_volume(h, p, n);
	case REC_SHARE:
		SCONE_TRY(once(h->share_fd >= 0, type));
		if (n != 5 || scone_get_le32(p) > INT_MAX || p[4] > 1)
			return scone_err_set(SCONE_ERR_MALFORMED, "handover: share record");
		h->share_fd = (int)scone_get_le32(p);
		h->shared = p[4];
		return SCONE_ERR_OK;
	case REC_CONN:
		SCONE_TRY(once(h->conn_fd >= 0, type));
		if (n != 4 || scone_get_le32(p) > INT_MAX)
			return scone_err_set(SCONE_ERR_MALFORMED, "handover: connection record");
		h->conn_fd = (int)scone_get_le32(p);
		return SCONE_ERR_OK;
	case REC_FD:
		return dec_fd(h, p, n);
	case REC_CWD:
		SCONE_TRY(once(h->cwd != NULL, type));
		if (n == 0 || n > MAX_PATH || p[0] != '/')
			return scone_err_set(SCONE_ERR_MALFORMED, "handover: working directory");
		return dup_str(p, n, "working directory", &h->cwd);
	default:
		return scone_err_set(SCONE_ERR_MALFORMED, "handover: unknown record type 0x%02x", type);
	}
}

/* What every record alone cannot check: the required ones are there, references resolve. */
static enum scone_err dec_check(const struct scone_handover *h, bool seen_pin)
{
	if (!h->config || !h->cas_addr || !seen_pin)
		return scone_err_set(SCONE_ERR_MALFORMED,
				     "handover: configuration, CAS address or pin missing");
	if (h->volume_count && !h->identity)
		return scone_err_set(SCONE_ERR_MALFORMED,
				     "handover: volumes without the key their tags are reported with");
	for (size_t i = 0; i < h->fd_count; i++)
		if (h->fds[i].volume >= h->volume_count)
			return scone_err_set(SCONE_ERR_MALFORMED, "handover: fd %d names volume %u of %zu",
					     h->fds[i].fd, h->fds[i].volume, h->volume_count);
	return SCONE_ERR_OK;
}

enum scone_err scone_handover_decode(const uint8_t *data, size_t len, struct scone_handover *out)
{
	struct scone_rbuf r;
	enum scone_err err = SCONE_ERR_OK;
	bool seen_pin = false;

	scone_handover_init(out);
	if (len > SCONE_HANDOVER_MAX)
		return scone_err_set(SCONE_ERR_TOO_LARGE, "handover: %zu bytes", len);
	if (len < MAGIC_LEN || memcmp(data, MAGIC, MAGIC_LEN) != 0)
		return scone_err_set(SCONE_ERR_MALFORMED, "handover: no SCONEHO1 magic");
	scone_rbuf_init(&r, data + MAGIC_LEN, len - MAGIC_LEN, "handover");
	while (!err && scone_rbuf_left(&r) > 0) {
		uint8_t type;
		uint32_t n;
		const uint8_t *p;
		err = scone_rbuf_u8(&r, "record type", &type);
		if (!err)
			err = scone_rbuf_u32(&r, "record length", &n);
		if (!err)
			err = scone_rbuf_view(&r, "record", &p, n);
		if (!err)
			err = dec_record(out, type, p, n, &seen_pin);
	}
	if (!err)
		err = dec_check(out, seen_pin);
	if (err)
		scone_handover_free(out);
	return err;
}

static void free_str(char *s)
{
	if (s) {
		scone_wipe(s, strlen(s));
		free(s);
	}
}

void scone_handover_free(struct scone_handover *h)
{
	free_str(h->config);
	free_str(h->cas_addr);
	free_str(h->identity);
	for (size_t i = 0; i < h->env_count; i++)
		free_str(h->env[i]);
	free(h->env);
	for (size_t i = 0; i < h->volume_count; i++)
		free(h->volumes[i].name);
	free(h->volumes);
	for (size_t i = 0; i < h->fd_count; i++)
		free(h->fds[i].vpath);
	free(h->fds);
	free_str(h->cwd);
	scone_wipe(h->pin, sizeof(h->pin));
	scone_handover_init(h);
}
