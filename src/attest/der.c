/* der.c - a minimal DER reader over struct scone_rbuf (see der.h). */
#include "attest/der.h"

#include <string.h>

static enum scone_err read_len(struct scone_rbuf *r, const char *field, size_t *out)
{
	uint8_t b, n;
	size_t len = 0;

	SCONE_TRY(scone_rbuf_u8(r, field, &b));
	if (b < 0x80) {
		*out = b;
		return SCONE_ERR_OK;
	}
	n = b & 0x7f;
	if (n == 0 || n > 4)
		return scone_err_set(SCONE_ERR_MALFORMED,
				     "%s: %s: unsupported DER length form 0x%02x at byte %zu", r->what, field,
				     b, r->pos - 1);
	for (uint8_t i = 0; i < n; i++) {
		SCONE_TRY(scone_rbuf_u8(r, field, &b));
		if (i == 0 && b == 0)
			return scone_err_set(SCONE_ERR_MALFORMED,
					     "%s: %s: non-minimal DER length at byte %zu", r->what, field,
					     r->pos - 1);
		len = len << 8 | b;
	}
	if (len < 0x80)
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: %s: non-minimal DER length at byte %zu",
				     r->what, field, r->pos);
	*out = len;
	return SCONE_ERR_OK;
}

enum scone_err der_read_any(struct scone_rbuf *r, const char *field, uint8_t *tag, struct scone_rbuf *content)
{
	const uint8_t *p;
	size_t len = 0;

	SCONE_TRY(scone_rbuf_u8(r, field, tag));
	if ((*tag & 0x1f) == 0x1f)
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: %s: multi-byte DER tag at byte %zu", r->what,
				     field, r->pos - 1);
	SCONE_TRY(read_len(r, field, &len));
	SCONE_TRY(scone_rbuf_view(r, field, &p, len));
	scone_rbuf_init(content, p, len, r->what);
	return SCONE_ERR_OK;
}

enum scone_err der_read(struct scone_rbuf *r, uint8_t tag, const char *field, struct scone_rbuf *content)
{
	size_t at = r->pos;
	uint8_t got;

	SCONE_TRY(der_read_any(r, field, &got, content));
	if (got != tag)
		return scone_err_set(SCONE_ERR_MALFORMED,
				     "%s: %s: DER tag 0x%02x at byte %zu, expected 0x%02x", r->what, field,
				     got, at, tag);
	return SCONE_ERR_OK;
}

enum scone_err der_read_uint(struct scone_rbuf *r, uint8_t tag, const char *field, uint32_t *out)
{
	struct scone_rbuf c;
	uint8_t b;
	uint64_t v = 0;
	size_t n;

	SCONE_TRY(der_read(r, tag, field, &c));
	n = c.size;
	if (n == 0 || (c.data[0] & 0x80))
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: %s: not a non-negative integer", r->what,
				     field);
	if (n > 1 && c.data[0] == 0 && !(c.data[1] & 0x80))
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: %s: non-minimal integer", r->what, field);
	if (n > 5 || (n == 5 && c.data[0] != 0))
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: %s: integer larger than 32 bits", r->what,
				     field);
	while (scone_rbuf_left(&c)) {
		SCONE_TRY(scone_rbuf_u8(&c, field, &b));
		v = v << 8 | b;
	}
	*out = (uint32_t)v;
	return SCONE_ERR_OK;
}

bool der_oid_under(const struct scone_rbuf *oid, const uint8_t *prefix, size_t prefix_size, size_t extra)
{
	if (oid->size != prefix_size + extra || memcmp(oid->data, prefix, prefix_size) != 0)
		return false;
	for (size_t i = prefix_size; i < oid->size; i++)
		if (oid->data[i] & 0x80)
			return false;
	return true;
}

enum scone_err der_end(const struct scone_rbuf *r, const char *field)
{
	if (scone_rbuf_left(r))
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: %s: %zu unexpected bytes at byte %zu", r->what,
				     field, scone_rbuf_left(r), r->pos);
	return SCONE_ERR_OK;
}
