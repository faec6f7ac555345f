/*
 * inject.h - the session's injection files, served from memory at their
 * paths inside the program (see inject.c for what is interposed).
 */
#ifndef SCONE_RUNTIME_INJECT_H
#define SCONE_RUNTIME_INJECT_H

#include <stddef.h>

#include "lib/err.h"
#include "runtime/cas_client.h"

/* Copy the files into the runtime's table (once, before main). */
SCONE_MUST_CHECK enum scone_err scone_inject_install(const struct scone_rt_file *files, size_t n);
size_t scone_inject_count(void);

/* Normalise an absolute path in place: collapse "//", "." and "..". */
void scone_path_normalise(char *p);

#endif
