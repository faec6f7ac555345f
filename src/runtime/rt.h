/*
 * rt.h - the runtime's context: what one process under the runtime knows
 * once it has started (its configuration, the CAS it talks to and pins, and
 * its own key), set up once before main and read by every part (the
 * shield's tag reports, exec's handover, attestation).
 */
#ifndef SCONE_RUNTIME_RT_H
#define SCONE_RUNTIME_RT_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"
#include "runtime/cas_client.h"

struct scone_rt {
	/* CAS's configuration, or an fspf's alone; lives as long as the process (exec hands it on). */
	struct scone_runtime_config *cfg;
	char *cas_addr;		  /* "host:port"; NULL without CAS (SCONE_FSPF alone) */
	uint8_t pin[32];	  /* the CAS certificate's SHA-256 */
	struct scone_identity id; /* this runtime's key: CAS binds its tag reports to it */
};

/* The process's context: all zero until scone_rt_init. */
const struct scone_rt *scone_rt(void);

/* Set the context up (once, at start). Takes *id over (left zeroed); cfg is borrowed for the process's life.
 */
SCONE_MUST_CHECK enum scone_err scone_rt_init(const char *cas_addr, const uint8_t pin[32],
					      struct scone_identity *id, struct scone_runtime_config *cfg);

/*
 * The runtime's own connections (CAS's, the volume server's) are not the
 * program's: a thread between scone_rt_own_enter and _leave is never
 * subject to the network shield's rules.
 */
void scone_rt_own_enter(void);
void scone_rt_own_leave(void);
bool scone_rt_own(void);

#endif
