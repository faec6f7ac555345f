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

#include <errno.h>
#include <stddef.h>

/*
 * Every error has a kind (as s2n-tls keeps its categories): what a caller
 * that does not care about the exact error needs to decide. CAS's HTTP
 * status comes from the kind; the errno a runtime call returns is the
 * error's own (third column of the list).
 */
enum scone_err_kind {
	SCONE_KIND_NONE,      /* success */
	SCONE_KIND_INPUT,     /* the request or data is wrong: fix it (400) */
	SCONE_KIND_ABSENT,    /* what it names does not exist (404) */
	SCONE_KIND_CONFLICT,  /* the state changed or is in the way (409) */
	SCONE_KIND_DENIED,    /* not allowed, or not proven (403) */
	SCONE_KIND_SIZE,      /* larger than its limit (413) */
	SCONE_KIND_SPACE,     /* the disk is full (507) */
	SCONE_KIND_RESOURCE,  /* memory, rate or capacity: try later (503) */
	SCONE_KIND_INTEGRITY, /* protected data was changed, rolled back or is corrupt (500) */
	SCONE_KIND_FAILURE,   /* a call below failed: I/O, network, crypto (500) */
};

#define SCONE_ERRORS(X)                                                                                      \
	X(OK, NONE, 0, "success")                                                                            \
	X(NOMEM, RESOURCE, ENOMEM, "out of memory")                                                          \
	X(INVALID, INPUT, EINVAL, "invalid argument")                                                        \
	X(IO, FAILURE, EIO, "input/output error")                                                            \
	X(CRYPTO, FAILURE, EIO, "cryptographic library failure")                                             \
	X(TOO_LARGE, SIZE, EFBIG, "input exceeds its size limit")                                            \
	X(MALFORMED, INPUT, EINVAL, "malformed input")                                                       \
	X(NOT_FOUND, ABSENT, ENOENT, "not found")                                                            \
	X(EXISTS, CONFLICT, EEXIST, "already exists")                                                        \
	X(AUTH, DENIED, EIO, "authentication failed (wrong key or tampered data)")                           \
	X(TAMPERED, INTEGRITY, EIO, "integrity error: data was modified")                                    \
	X(MISPLACED, INTEGRITY, EIO, "integrity error: chunk swapped or duplicated")                         \
	X(TRUNCATED, INTEGRITY, EIO, "integrity error: data truncated")                                      \
	X(EXTENDED, INTEGRITY, EIO, "integrity error: unexpected data appended")                             \
	X(MISSING, INTEGRITY, EIO, "integrity error: protected file missing")                                \
	X(SWAPPED, INTEGRITY, EIO, "integrity error: file holds another file's data")                        \
	X(UNKNOWN_FILE, INTEGRITY, EIO, "integrity error: file not in the protection file")                  \
	X(ROLLBACK, INTEGRITY, EIO, "rollback detected (or unknown state)")                                  \
	X(NOT_DIR, INPUT, ENOTDIR, "not a directory")                                                        \
	X(IS_DIR, INPUT, EISDIR, "is a directory")                                                           \
	X(NOT_EMPTY, CONFLICT, ENOTEMPTY, "directory not empty")                                             \
	X(NO_REGION, ABSENT, ENOENT, "path is in no region of the protection file")                          \
	X(READ_ONLY, DENIED, EROFS, "opened read-only")                                                      \
	X(UNSUPPORTED, INPUT, ENOTSUP, "operation not supported")                                            \
	X(BAD_FD, INPUT, EBADF, "bad handle")                                                                \
	X(NO_SPACE, SPACE, ENOSPC, "no space left on device")                                                \
	X(PERMISSION, DENIED, EACCES, "permission denied")                                                   \
	X(UNSEALED, FAILURE, EIO, "protection file is not encrypted yet")                                    \
	X(BUSY, RESOURCE, EBUSY, "resource busy")                                                            \
	X(CROSS_REGION, INPUT, EXDEV, "cannot move a file between regions")                                  \
	X(NAME_TOO_LONG, INPUT, ENAMETOOLONG, "path too long")                                               \
	X(CONFLICT, CONFLICT, EIO, "conflict: the resource changed (stale predecessor)")                     \
	X(NETWORK, FAILURE, EIO, "network or TLS failure")                                                   \
	X(UNTRUSTED, DENIED, EIO, "peer identity does not match the pinned one")                             \
	X(CORRUPT, INTEGRITY, EIO, "stored state is corrupt")                                                \
	X(LIMIT, RESOURCE, EIO, "rate or resource limit reached")                                            \
	X(POLICY, INPUT, EINVAL, "session policy is invalid")                                                \
	X(EXPIRED, DENIED, EIO, "expired or not yet valid (certificate, CRL or collateral)")                 \
	X(STALE, FAILURE, EIO, "answered from a cache that has changed since (read again)")                  \
	X(ATTESTATION, DENIED, EACCES, "attestation refused")

enum scone_err {
#define SCONE_ERR_ENUM(name, kind, errno_value, text) SCONE_ERR_##name,
	SCONE_ERRORS(SCONE_ERR_ENUM)
#undef SCONE_ERR_ENUM
	    SCONE_ERR_COUNT_
};

#define SCONE_MUST_CHECK __attribute__((warn_unused_result))

/* The kind of e (SCONE_KIND_FAILURE for a value outside the list). */
enum scone_err_kind scone_err_kind(enum scone_err e);

/* Static description of e; never NULL. */
const char *scone_strerror(enum scone_err e);

/* Short stable identifier ("TAMPERED"); never NULL. */
const char *scone_errname(enum scone_err e);

/*
 * Record detail for the error being returned on this thread (printf-style).
 * Returns e so call sites read: return scone_err_set(SCONE_ERR_IO, "...").
 * Detail must never contain secret material.
 */
enum scone_err scone_err_set(enum scone_err e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Detail of the last scone_err_set on this thread ("" if none). */
const char *scone_err_detail(void);

/* Forget the detail (e.g. after an error has been handled). */
void scone_err_clear(void);

/* Map an errno value to the closest scone_err. */
enum scone_err scone_err_from_errno(int errnum);

/* Map a scone_err to an errno value for libc-facing shims. */
int scone_err_to_errno(enum scone_err e);

#define SCONE_TRY(expr)                                                                                      \
	do {                                                                                                 \
		enum scone_err try_err_ = (expr);                                                            \
		if (try_err_ != SCONE_ERR_OK)                                                                \
			return try_err_;                                                                     \
	} while (0)

#endif
