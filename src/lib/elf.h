/*
 * elf.h - what kind of program a file is, as the kernel's exec sees it:
 * a dynamically linked ELF (and its PT_INTERP loader), a static one, one
 * of another machine or word size, a "#!" script (its interpreter and
 * optional argument), or something else. `scone run` and the runtime's
 * exec interposers use it to refuse a program the runtime cannot be loaded
 * into, which would otherwise run without its secrets and shields.
 *
 * The file's bytes are untrusted: every offset and size is checked against
 * what was read.
 */
#ifndef SCONE_ELF_H
#define SCONE_ELF_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"

enum scone_exec_kind {
	SCONE_EXEC_OTHER = 0, /* neither ELF nor "#!": the kernel refuses it (ENOEXEC) */
	SCONE_EXEC_DYNAMIC,   /* ELF of this machine with a PT_INTERP loader */
	SCONE_EXEC_STATIC,    /* ELF of this machine without one */
	SCONE_EXEC_FOREIGN,   /* ELF of another machine, class or byte order */
	SCONE_EXEC_SCRIPT,    /* "#!interpreter [arg]" */
};

struct scone_exec_info {
	enum scone_exec_kind kind;
	char interp[PATH_MAX]; /* DYNAMIC: the loader; SCRIPT: the interpreter */
	char arg[PATH_MAX];    /* SCRIPT: the optional argument ("" if none) */
};

/* Inspect the file open at fd (pread only: its offset is left alone). IO if it cannot be read. */
SCONE_MUST_CHECK enum scone_err scone_exec_inspect_fd(int fd, struct scone_exec_info *out);
/* The same for a path (opened read-only; NOT_FOUND / PERMISSION / IO with detail). */
SCONE_MUST_CHECK enum scone_err scone_exec_inspect(const char *path, struct scone_exec_info *out);
/* Inspect bytes already read (the file's first size bytes; phdrs beyond them are "not found"). */
SCONE_MUST_CHECK enum scone_err scone_exec_inspect_bytes(const void *data, size_t size,
							 struct scone_exec_info *out);

/* "dynamically linked", "statically linked", ... for messages. */
const char *scone_exec_kind_name(enum scone_exec_kind kind);

/*
 * file as execvp finds it: a name with '/' as is, else the first
 * executable regular file in path_env's directories (NULL or "": the
 * default "/bin:/usr/bin"; an empty entry is the current directory).
 * False when none is found or the result does not fit.
 */
bool scone_exec_find(const char *file, const char *path_env, char *out, size_t size);

/*
 * Will the program at path load a preloaded library of this machine? It
 * must be, after following "#!" interpreters as the kernel does (at most 4
 * deep), a dynamically linked ELF whose loader is the same file as loader
 * (compared by device and inode; NULL: any loader). UNSUPPORTED with a
 * detail naming the program and why (statically linked, another machine,
 * another loader); NOT_FOUND/PERMISSION/IO when it cannot be read.
 */
SCONE_MUST_CHECK enum scone_err scone_exec_check_runtime(const char *path, const char *loader);

/* The loader (PT_INTERP) of the running program into out; false if it has none or it does not fit. */
bool scone_own_loader(char *out, size_t size);

#endif
