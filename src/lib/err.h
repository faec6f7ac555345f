/*
 * err.h - the one project-wide error type.
 *
 * Every fallible function in scone returns enum scone_err. The list below is
 * append-only (values are stable); scone_strerror() gives a one-line
 * description. Detail (which file, which byte range) travels separately via
 * scone_err_detail(), a thread-local message set where the error arises.
 */
#ifndef SCONE_ERR_H
#define SCONE_ERR_H

#include <stddef.h>

#define SCONE_ERRORS(X)                                                        \
	X(OK, "success")                                                       \
	X(NOMEM, "out of memory")                                              \
	X(INVALID, "invalid argument")                                         \
	X(IO, "input/output error")                                            \
	X(CRYPTO, "cryptographic library failure")                             \
	X(TOO_LARGE, "input exceeds its size limit")                           \
	X(MALFORMED, "malformed input")                                        \
	X(NOT_FOUND, "not found")                                              \
	X(EXISTS, "already exists")                                            \
	X(AUTH, "authentication failed (wrong key or tampered data)")          \
	X(TAMPERED, "integrity error: data was modified")                      \
	X(MISPLACED, "integrity error: chunk swapped or duplicated")           \
	X(TRUNCATED, "integrity error: data truncated")                        \
	X(EXTENDED, "integrity error: unexpected data appended")               \
	X(MISSING, "integrity error: protected file missing")                  \
	X(SWAPPED, "integrity error: file holds another file's data")          \
	X(UNKNOWN_FILE, "integrity error: file not in the protection file")    \
	X(ROLLBACK, "rollback detected (or unknown state)")                    \
	X(NOT_DIR, "not a directory")                                          \
	X(IS_DIR, "is a directory")                                            \
	X(NOT_EMPTY, "directory not empty")                                    \
	X(NO_REGION, "path is in no region of the protection file")            \
	X(READ_ONLY, "opened read-only")                                       \
	X(UNSUPPORTED, "operation not supported")                              \
	X(BAD_FD, "bad handle")                                                \
	X(NO_SPACE, "no space left on device")                                 \
	X(PERMISSION, "permission denied")                                     \
	X(UNSEALED, "protection file is not encrypted yet")                    \
	X(BUSY, "resource busy")                                               \
	X(CROSS_REGION, "cannot move a file between regions")                  \
	X(NAME_TOO_LONG, "path too long")                                      \
	X(CONFLICT, "conflict: the resource changed (stale predecessor)")      \
	X(NETWORK, "network or TLS failure")                                   \
	X(UNTRUSTED, "peer identity does not match the pinned one")            \
	X(CORRUPT, "stored state is corrupt")                                  \
	X(LIMIT, "rate or resource limit reached")                             \
	X(POLICY, "session policy is invalid")                                 \
	X(EXPIRED, "expired or not yet valid (certificate, CRL or collateral)") \
	X(STALE, "answered from a cache that has changed since (read again)")  \
	X(ATTESTATION, "attestation refused")

enum scone_err {
#define SCONE_ERR_ENUM(name, text) SCONE_ERR_##name,
	SCONE_ERRORS(SCONE_ERR_ENUM)
#undef SCONE_ERR_ENUM
	SCONE_ERR_COUNT_
};

#define SCONE_MUST_CHECK __attribute__((warn_unused_result))

/* Static description of e; never NULL. */
const char *scone_strerror(enum scone_err e);

/* Short stable identifier ("TAMPERED"); never NULL. */
const char *scone_errname(enum scone_err e);

/*
 * Record detail for the error being returned on this thread (printf-style).
 * Returns e so call sites read: return scone_err_set(SCONE_ERR_IO, "...").
 * Detail must never contain secret material.
 */
enum scone_err scone_err_set(enum scone_err e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Detail of the last scone_err_set on this thread ("" if none). */
const char *scone_err_detail(void);

/* Forget the detail (e.g. after an error has been handled). */
void scone_err_clear(void);

/* Map an errno value to the closest scone_err. */
enum scone_err scone_err_from_errno(int errnum);

/* Map a scone_err to an errno value for libc-facing shims. */
int scone_err_to_errno(enum scone_err e);

#define SCONE_TRY(expr)                                                        \
	do {                                                                   \
		enum scone_err try_err_ = (expr);                              \
		if (try_err_ != SCONE_ERR_OK)                                  \
			return try_err_;                                       \
	} while (0)

#endif
