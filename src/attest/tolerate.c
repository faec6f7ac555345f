/*
 * tolerate.c - a TEE platform's state against what is tolerated
 * (tolerate.h): one table maps each TCB status to the tolerations it
 * needs.
 */
#include "attest/tolerate.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static bool listed(const char *const *v, size_t n, const char *what)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] && strcmp(v[i], what) == 0)
			return true;
	return false;
}

static bool tolerates(const struct scone_tolerance *t, const char *what)
{
	return listed(t->tolerate, t->n_tolerate, what);
}

/* What each TCB status needs tolerated. */
static const struct {
	enum scone_tcb_status status;
	const char *needs[2];
} tcb_needs[] = {
    {SCONE_TCB_UP_TO_DATE, {NULL, NULL}},
    {SCONE_TCB_SW_HARDENING_NEEDED, {"software-hardening-needed", NULL}},
    {SCONE_TCB_CONFIGURATION_NEEDED, {"insecure-configuration", NULL}},
    {SCONE_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED,
     {"software-hardening-needed", "insecure-configuration"}},
    {SCONE_TCB_OUT_OF_DATE, {"outdated-tcb", NULL}},
    {SCONE_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED, {"outdated-tcb", "insecure-configuration"}},
    {SCONE_TCB_TD_RELAUNCH_ADVISED, {"outdated-tcb", NULL}},
    {SCONE_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED, {"outdated-tcb", "insecure-configuration"}},
};

/* Intel's advisories about SMT (hyperthreading): tolerated with hyperthreading. */
static bool smt_advisory(const char *id)
{
	return strcmp(id, "INTEL-SA-00161") == 0 || strcmp(id, "INTEL-SA-00233") == 0;
}

static enum scone_err tcb_tolerated(const struct scone_claims *c, const struct scone_tolerance *t)
{
	const char *name = scone_tcb_status_name(c->tcb_status);

	for (size_t i = 0; i < sizeof(tcb_needs) / sizeof(tcb_needs[0]); i++) {
		if (tcb_needs[i].status != c->tcb_status)
			continue;
		for (int k = 0; k < 2; k++)
			if (tcb_needs[i].needs[k] && !tolerates(t, tcb_needs[i].needs[k]))
				return scone_err_set(
				    SCONE_ERR_ATTESTATION,
				    "the platform's TCB status is %s: %s does not tolerate %s "
				    "(tolerate)",
				    name, t->who, tcb_needs[i].needs[k]);
		return SCONE_ERR_OK;
	}
	return scone_err_set(SCONE_ERR_ATTESTATION,
			     "the platform's TCB status is %s, which is never tolerated", name);
}

static enum scone_err advisories_ignored(const struct scone_claims *c, const struct scone_tolerance *t)
{
	char list[sizeof(c->advisories)], *save = NULL;
	bool all = listed(t->ignore, t->n_ignore, "*");

	snprintf(list, sizeof(list), "%s", c->advisories);
	for (char *id = strtok_r(list, ",", &save); id; id = strtok_r(NULL, ",", &save)) {
		if (smt_advisory(id) && !tolerates(t, "hyperthreading"))
			return scone_err_set(
			    SCONE_ERR_ATTESTATION,
			    "advisory %s (SMT) applies to this platform: %s does not tolerate "
			    "hyperthreading",
			    id, t->who);
		if (!all && !smt_advisory(id) && !listed(t->ignore, t->n_ignore, id))
			return scone_err_set(SCONE_ERR_ATTESTATION,
					     "advisory %s applies to this platform: %s does not list it in "
					     "ignore_advisories",
					     id, t->who);
	}
	return SCONE_ERR_OK;
}

static const char *tee_name(enum scone_evidence_type type)
{
	return type == SCONE_EVIDENCE_SGX ? "enclave" : type == SCONE_EVIDENCE_TDX ? "TD" : "guest";
}

enum scone_err scone_claims_tolerated(const struct scone_claims *c, const struct scone_tolerance *t)
{
	const char *smt_on = scone_claims_get(c, "smt_enabled"), *smt_ok = scone_claims_get(c, "smt_allowed");

	if (c->type == SCONE_EVIDENCE_NONE || c->type == SCONE_EVIDENCE_LAS)
		return SCONE_ERR_OK;
	if (c->debug && !tolerates(t, "debug-mode"))
		return scone_err_set(
		    SCONE_ERR_ATTESTATION,
		    "the %s is in debug mode (its memory is readable by the host): %s does not "
		    "tolerate debug-mode",
		    tee_name(c->type), t->who);
	if (c->type == SCONE_EVIDENCE_SNP && smt_on && smt_ok && !strcmp(smt_on, "true") &&
	    !strcmp(smt_ok, "true") && !tolerates(t, "hyperthreading"))
		return scone_err_set(SCONE_ERR_ATTESTATION,
				     "the guest runs with SMT enabled and allowed: %s does not tolerate "
				     "hyperthreading",
				     t->who);
	SCONE_TRY(tcb_tolerated(c, t));
	return advisories_ignored(c, t);
}
