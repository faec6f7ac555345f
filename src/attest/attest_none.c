/*
 * attest_none.c - the "none" evidence type: no evidence at all. It exists
 * so that a development session (security.attestation.mode: none) goes
 * through the same interface as every other type; its claims say only that
 * nothing was proven. CAS accepts it only where the session says so.
 */
#include "attest/attest_types.h"

#include <string.h>

static bool none_available(const struct scone_collect_opts *o)
{
	(void)o;
	return true;
}

static enum scone_err none_collect(const struct scone_collect_opts *o,
				   const uint8_t report_data[SCONE_REPORT_DATA_SIZE], struct scone_wbuf *out)
{
	(void)o;
	(void)report_data;
	(void)out;
	return SCONE_ERR_OK;
}

static enum scone_err none_verify(const uint8_t *evidence, size_t size, const struct scone_verify_opts *o,
				  struct scone_claims *out)
{
	(void)o;
	memset(out, 0, sizeof(*out));
	if (size != 0 || (evidence && size))
		return scone_err_set(SCONE_ERR_MALFORMED,
				     "evidence of type none must be empty (%zu bytes given)", size);
	out->type = SCONE_EVIDENCE_NONE;
	return SCONE_ERR_OK;
}

const struct scone_evidence_ops scone_evidence_none = {
    .name = "none",
    .type = SCONE_EVIDENCE_NONE,
    .available = none_available,
    .collect = none_collect,
    .verify = none_verify,
};
