/* buf.c - bounded reader and ceiling-limited writer. */
#include "buf.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

void scone_rbuf_init(struct scone_rbuf *r, const void *data, size_t size, const char *what)
{
	r->data = data;
	r->size = size;
	r->pos = 0;
	r->what = what ? what : "input";
}

size_t scone_rbuf_left(const struct scone_rbuf *r)
{
	return r->size - r->pos;
}

static enum scone_err need(const struct scone_rbuf *r, const char *field, size_t n)
{
	if (n > r->size - r->pos)
		return scone_err_set(SCONE_ERR_MALFORMED,
				     "%s: truncated at byte %zu reading %s (%zu bytes needed, %zu left)",
				     r->what, r->pos, field, n, r->size - r->pos);
	return SCONE_ERR_OK;
}

enum scone_err scone_rbuf_view(struct scone_rbuf *r, const char *field, const uint8_t **out, size_t n)
{
	SCONE_TRY(need(r, field, n));
	*out = r->data + r->pos;
	r->pos += n;
	return SCONE_ERR_OK;
}

enum scone_err scone_rbuf_bytes(struct scone_rbuf *r, const char *field, void *out, size_t n)
{
	const uint8_t *p;

	SCONE_TRY(scone_rbuf_view(r, field, &p, n));
	if (n)
		memcpy(out, p, n);
	return SCONE_ERR_OK;
}

enum scone_err scone_rbuf_u8(struct scone_rbuf *r, const char *field, uint8_t *out)
{
	return scone_rbuf_bytes(r, field, out, 1);
}

enum scone_err scone_rbuf_u16(struct scone_rbuf *r, const char *field, uint16_t *out)
{
	const uint8_t *p;

	SCONE_TRY(scone_rbuf_view(r, field, &p, 2));
	*out = (uint16_t)(p[0] | p[1] << 8);
	return SCONE_ERR_OK;
}

enum scone_err scone_rbuf_u32(struct scone_rbuf *r, const char *field, uint32_t *out)
{
	const uint8_t *p;

	SCONE_TRY(scone_rbuf_view(r, field, &p, 4));
	*out = scone_get_le32(p);
	return SCONE_ERR_OK;
}

enum scone_err scone_rbuf_u64(struct scone_rbuf *r, const char *field, uint64_t *out)
{
	const uint8_t *p;

	SCONE_TRY(scone_rbuf_view(r, field, &p, 8));
	*out = scone_get_le64(p);
	return SCONE_ERR_OK;
}

void scone_wbuf_init(struct scone_wbuf *w, size_t max, int secret)
{
	memset(w, 0, sizeof(*w));
	w->max = max;
	w->secret = secret;
}

static enum scone_err grow(struct scone_wbuf *w, size_t need_size)
{
	size_t cap = w->cap ? w->cap : 256;
	uint8_t *p;

	if (need_size > w->max)
		return scone_err_set(SCONE_ERR_TOO_LARGE, "buffer would exceed its limit of %zu bytes",
				     w->max);
	while (cap < need_size)
		cap = cap > w->max / 2 ? w->max : cap * 2;
	p = malloc(cap);
	if (!p)
		return SCONE_ERR_NOMEM;
	if (w->size)
		memcpy(p, w->data, w->size);
	if (w->data && w->secret)
		OPENSSL_cleanse(w->data, w->cap);
	free(w->data);
	w->data = p;
	w->cap = cap;
	return SCONE_ERR_OK;
}

enum scone_err scone_wbuf_put(struct scone_wbuf *w, const void *data, size_t n)
{
	if (n > SIZE_MAX - w->size)
		return scone_err_set(SCONE_ERR_TOO_LARGE, "buffer size overflow");
	if (w->size + n > w->cap)
		SCONE_TRY(grow(w, w->size + n));
	if (n)
		memcpy(w->data + w->size, data, n);
	w->size += n;
	return SCONE_ERR_OK;
}

enum scone_err scone_wbuf_u8(struct scone_wbuf *w, uint8_t v)
{
	return scone_wbuf_put(w, &v, 1);
}

enum scone_err scone_wbuf_u16(struct scone_wbuf *w, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
	return scone_wbuf_put(w, b, 2);
}

enum scone_err scone_wbuf_u32(struct scone_wbuf *w, uint32_t v)
{
	uint8_t b[4];
	scone_put_le32(b, v);
	return scone_wbuf_put(w, b, 4);
}

enum scone_err scone_wbuf_u64(struct scone_wbuf *w, uint64_t v)
{
	uint8_t b[8];
	scone_put_le64(b, v);
	return scone_wbuf_put(w, b, 8);
}

enum scone_err scone_wbuf_reserve(struct scone_wbuf *w, size_t size)
{
	return size <= w->cap ? SCONE_ERR_OK : grow(w, size);
}

void scone_wbuf_free(struct scone_wbuf *w)
{
	if (w->data && w->secret)
		OPENSSL_cleanse(w->data, w->cap);
	free(w->data);
	w->data = NULL;
	w->size = w->cap = 0;
}
