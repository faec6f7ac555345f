/*
 * der.h - a minimal DER (X.690) reader over the bounded reader, for the
 * vendor extensions OpenSSL does not decode: Intel's SGX extension of PCK
 * certificates and AMD's VCEK/VLEK extensions. Private to src/attest.
 *
 * Only definite lengths of at most 4 bytes, single-byte tags, and the
 * minimal length encoding DER requires; anything else is MALFORMED with
 * the structure's name and byte offset.
 */
#ifndef SCONE_ATTEST_DER_H
#define SCONE_ATTEST_DER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

#define DER_BOOLEAN 0x01
#define DER_INTEGER 0x02
#define DER_OCTET_STRING 0x04
#define DER_OID 0x06
#define DER_ENUMERATED 0x0a
#define DER_IA5STRING 0x16
#define DER_SEQUENCE 0x30

/*
 * Read one element whose tag must be tag; content becomes a reader over
 * its value (borrowing r's bytes, named field for errors).
 */
SCONE_MUST_CHECK enum scone_err der_read(struct scone_rbuf *r, uint8_t tag, const char *field,
					 struct scone_rbuf *content);
/* Read one element of any tag: *tag and its content. */
SCONE_MUST_CHECK enum scone_err der_read_any(struct scone_rbuf *r, const char *field, uint8_t *tag,
					     struct scone_rbuf *content);
/* A non-negative INTEGER (or ENUMERATED when tag says so) that fits in 32 bits. */
SCONE_MUST_CHECK enum scone_err der_read_uint(struct scone_rbuf *r, uint8_t tag, const char *field,
					      uint32_t *out);
/*
 * Is the OID content (its value bytes) prefix followed by exactly extra
 * more bytes (single-byte arcs < 128 each)?
 */
bool der_oid_under(const struct scone_rbuf *oid, const uint8_t *prefix, size_t prefix_size, size_t extra);
/* Fail (MALFORMED, naming field) unless r is fully consumed. */
SCONE_MUST_CHECK enum scone_err der_end(const struct scone_rbuf *r, const char *field);

#endif
