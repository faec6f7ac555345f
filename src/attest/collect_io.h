/*
 * collect_io.h - reading and writing the pseudo-files through which TEE
 * guests get evidence (configfs-tsm report entries, Gramine's
 * /dev/attestation). Private to src/attest.
 */
#ifndef SCONE_ATTEST_COLLECT_IO_H
#define SCONE_ATTEST_COLLECT_IO_H

#include <stddef.h>

#include "lib/buf.h"

/* Write size bytes to the existing file path in one write(2) (pseudo-files take the whole value at once). */
SCONE_MUST_CHECK enum scone_err collect_write(const char *path, const void *data, size_t size);
/* Append the whole content of path (at most max bytes, TOO_LARGE beyond) to out. */
SCONE_MUST_CHECK enum scone_err collect_read(const char *path, size_t max, struct scone_wbuf *out);
/* A short text attribute, trailing newlines removed. */
SCONE_MUST_CHECK enum scone_err collect_read_text(const char *path, char *buf, size_t size);
/* path = dir "/" name, NAME_TOO_LONG if it does not fit. */
SCONE_MUST_CHECK enum scone_err collect_path(char *path, size_t size, const char *dir, const char *name);

#endif
