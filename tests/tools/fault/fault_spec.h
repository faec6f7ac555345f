/*
 * fault_spec.h - the fault injector's rule (SCONE_FAULT) and the families of
 * calls it knows; owns nothing but the parse of one string. Used by the
 * preloaded injector (fault.c) and by tests/unit/test_fault_spec.c.
 *
 * SCONE_FAULT is a comma-separated list of KEY=VALUE:
 *
 *   call=FAMILY   the family of calls counted for nth (below), or "*" for
 *                 every family; required when fault is not "none"
 *   nth=N         inject at the Nth matching call (1-based, per process)
 *   times=M       and at the M-1 matching calls after it (default 1; 0: at
 *                 every matching call from the Nth on)
 *   fault=KIND    none (default: count only), eintr, short, eio, enospc,
 *                 crash (SIGKILL before the call)
 *   path=DIR      only calls on DIR or a path below it (for fd calls, the
 *                 fd's path in /proc/self/fd; rename: either path)
 *   count=FILE    keep per-family counts of the calls matching path= in
 *                 FILE, one line "FAMILY COUNT" per family, current at
 *                 every moment (a shared mapping: survives SIGKILL, _exit)
 *   log=FILE      append one line per injected fault to FILE
 *
 * DIR and FILE are absolute paths. "short" applies to the transfer
 * families only (read, write, pread, pwrite).
 */
#ifndef SCONE_FAULT_SPEC_H
#define SCONE_FAULT_SPEC_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

/* X(id, name, transfer): the families, each a set of libc names (fault.c). */
#define FAULT_FAMILIES(X)                                                                                    \
	X(OPEN, "open", false)                                                                               \
	X(READ, "read", true)                                                                                \
	X(WRITE, "write", true)                                                                              \
	X(PREAD, "pread", true)                                                                              \
	X(PWRITE, "pwrite", true)                                                                            \
	X(FSYNC, "fsync", false)                                                                             \
	X(FDATASYNC, "fdatasync", false)                                                                     \
	X(FTRUNCATE, "ftruncate", false)                                                                     \
	X(RENAME, "rename", false)                                                                           \
	X(UNLINK, "unlink", false)                                                                           \
	X(MKDIR, "mkdir", false)                                                                             \
	X(CLOSE, "close", false)                                                                             \
	X(FSTAT, "fstat", false)                                                                             \
	X(STAT, "stat", false)                                                                               \
	X(OPENDIR, "opendir", false)                                                                         \
	X(READDIR, "readdir", false)                                                                         \
	X(CLOSEDIR, "closedir", false)

enum fault_family {
#define FAULT_FAMILY_ENUM(id, name, transfer) FAULT_##id,
	FAULT_FAMILIES(FAULT_FAMILY_ENUM)
#undef FAULT_FAMILY_ENUM
	    FAULT_FAMILY_COUNT,
	FAULT_ANY = FAULT_FAMILY_COUNT, /* call=* */
};

enum fault_kind {
	FAULT_NONE,
	FAULT_EINTR,
	FAULT_SHORT,
	FAULT_EIO,
	FAULT_ENOSPC,
	FAULT_CRASH,
};

struct fault_spec {
	enum fault_family call; /* FAULT_ANY for "*" */
	bool has_call;
	unsigned long nth;   /* 0: not given */
	unsigned long times; /* 0: every call from nth on */
	enum fault_kind kind;
	char path[PATH_MAX]; /* "" : every path */
	char count[PATH_MAX];
	char log[PATH_MAX];
};

/* The family's name ("open", ...) or NULL for an out-of-range value. */
const char *fault_family_name(enum fault_family f);

/* The fault's name ("eio", ...). */
const char *fault_kind_name(enum fault_kind k);

/* Whether short transfers apply to f. */
bool fault_family_transfers(enum fault_family f);

/*
 * Parse s (NULL or "" : no rule, count nothing) into *out. On error returns
 * false and writes what is wrong, and where, into err (err_size bytes).
 */
bool fault_spec_parse(const char *s, struct fault_spec *out, char *err, size_t err_size);

/* Whether the rule injects at the call numbered n (1-based) of its family. */
bool fault_spec_hits(const struct fault_spec *spec, unsigned long n);

#endif
