/*
 * exec.h - programs started by a program under the runtime (exec.c): every
 * exec and spawn hands the runtime's state to the new program through a
 * private memfd instead of the environment (handover.h), so the session's
 * secret variables never show in a child's /proc/PID/environ and the child
 * gets its injection files and volumes without a new CAS round trip.
 */
#ifndef SCONE_RUNTIME_EXEC_H
#define SCONE_RUNTIME_EXEC_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "lib/err.h"
#include "runtime/cas_client.h"

/*
 * Arm the exec interposers with the runtime's context (rt.h: its
 * configuration, whose raw form is what children get, and the pinned CAS).
 */
SCONE_MUST_CHECK enum scone_err scone_exec_install(void);

/* The variable naming the handover fd in an exec'd program's environment. */
#define SCONE_HANDOVER_VAR "SCONE_HANDOVER"

/* Is entry ("NAME=VALUE") that variable? */
static inline bool scone_is_handover_var(const char *entry)
{
	return strncmp(entry, SCONE_HANDOVER_VAR "=", sizeof(SCONE_HANDOVER_VAR)) == 0;
}

#endif
