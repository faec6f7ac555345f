/*
 * attest_rt.h - the runtime's side of attestation: evidence for CAS bound
 * to the runtime's fresh TLS key (from the LAS when one is there), and the
 * measure-only start that `scone measure` uses.
 */
#ifndef SCONE_RUNTIME_ATTEST_RT_H
#define SCONE_RUNTIME_ATTEST_RT_H

#include "attest/las_proto.h"
#include "lib/buf.h"
#include "lib/tls.h"
#include "runtime/cas_client.h"

struct scone_rt_attest {
	struct scone_rt_evidence ev; /* points into data and note */
	struct scone_wbuf data;
	char note[SCONE_LAS_TEXT_MAX + 64];
};

/*
 * Collect evidence for id's key. mode (SCONE_MODE) HW or AUTO: from the
 * first TEE interface present (configfs-tsm in a TDX or SEV-SNP guest,
 * Gramine's /dev/attestation in an SGX enclave; its failure is an error);
 * HW without one is an error. SIM, or AUTO without a TEE: the LAS at
 * $SCONE_LAS_ADDR (default unix:/run/scone/las.sock); without a LAS, or
 * when it refuses, the evidence is "none" with a note saying why (CAS then
 * decides: a session in las mode is refused, naming the reason), and an
 * error only for a SCONE_LAS_ADDR that is not unix:/PATH or names no
 * socket. Free with scone_rt_attest_free.
 */
SCONE_MUST_CHECK enum scone_err scone_rt_attest_collect(const struct scone_identity *id, const char *mode,
							struct scone_rt_attest *out);

void scone_rt_attest_free(struct scone_rt_attest *a);

/*
 * SCONE_MEASURE=FD: write this process's measurement (and its code files)
 * to FD as the LAS would report it now, for `scone measure`. Lines:
 * "measurement HEX", "exe HEX PATH", "file HEX PATH", "anon_exec N".
 */
SCONE_MUST_CHECK enum scone_err scone_rt_measure(const char *fd_text);

#endif
