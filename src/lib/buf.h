/*
 * buf.h - bounded buffers: a checked reader over untrusted bytes and a
 * growable writer with a hard size ceiling.
 *
 * Every parser of untrusted input reads through struct scone_rbuf; a read
 * past the end fails with SCONE_ERR_MALFORMED naming the field and offset
 * instead of touching memory outside the buffer.
 */
#ifndef SCONE_BUF_H
#define SCONE_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct scone_rbuf {
	const uint8_t *data;
	size_t size;
	size_t pos;
	const char *what; /* name of the structure being parsed, for errors */
};

void scone_rbuf_init(struct scone_rbuf *r, const void *data, size_t size, const char *what);
size_t scone_rbuf_left(const struct scone_rbuf *r);
SCONE_MUST_CHECK enum scone_err scone_rbuf_u8(struct scone_rbuf *r, const char *field, uint8_t *out);
SCONE_MUST_CHECK enum scone_err scone_rbuf_u16(struct scone_rbuf *r, const char *field, uint16_t *out);
SCONE_MUST_CHECK enum scone_err scone_rbuf_u32(struct scone_rbuf *r, const char *field, uint32_t *out);
SCONE_MUST_CHECK enum scone_err scone_rbuf_u64(struct scone_rbuf *r, const char *field, uint64_t *out);
/* Copy n bytes out. */
SCONE_MUST_CHECK enum scone_err scone_rbuf_bytes(struct scone_rbuf *r, const char *field, void *out,
						 size_t n);
/* Borrow n bytes (pointer into the buffer, valid while the buffer lives). */
SCONE_MUST_CHECK enum scone_err scone_rbuf_view(struct scone_rbuf *r, const char *field, const uint8_t **out,
						size_t n);

struct scone_wbuf {
	uint8_t *data;
	size_t size;
	size_t cap;
	size_t max; /* ceiling; appends beyond it fail with SCONE_ERR_TOO_LARGE */
	int secret; /* wipe on growth and free */
};

void scone_wbuf_init(struct scone_wbuf *w, size_t max, int secret);
/* Room for size bytes in all (one allocation for what is about to be put). */
SCONE_MUST_CHECK enum scone_err scone_wbuf_reserve(struct scone_wbuf *w, size_t size);
SCONE_MUST_CHECK enum scone_err scone_wbuf_put(struct scone_wbuf *w, const void *data, size_t n);
SCONE_MUST_CHECK enum scone_err scone_wbuf_u8(struct scone_wbuf *w, uint8_t v);
SCONE_MUST_CHECK enum scone_err scone_wbuf_u16(struct scone_wbuf *w, uint16_t v);
SCONE_MUST_CHECK enum scone_err scone_wbuf_u32(struct scone_wbuf *w, uint32_t v);
SCONE_MUST_CHECK enum scone_err scone_wbuf_u64(struct scone_wbuf *w, uint64_t v);
/* Release memory (wiped first when secret). */
void scone_wbuf_free(struct scone_wbuf *w);

/* Little-endian helpers for fixed layouts. */
static inline void scone_put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline void scone_put_le64(uint8_t *p, uint64_t v)
{
	scone_put_le32(p, (uint32_t)v);
	scone_put_le32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t scone_get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t scone_get_le64(const uint8_t *p)
{
	return (uint64_t)scone_get_le32(p) | (uint64_t)scone_get_le32(p + 4) << 32;
}

#endif
