/*
 * intel_tcbeval.c - TCB level selection for Intel quotes (intel_tcb.h):
 * the platform level from the PCK TCB (and the TD report's TEE_TCB_SVN),
 * the TDX module level, the TD relaunch advice of TDX 1.5, and the
 * convergence with the QE's level, as Intel's QVL does it
 * (TcbLevelCheck.cpp, TdxModuleCheck.cpp, TDRelaunchCheck.cpp).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "attest/intel_tcb.h"

static bool sgx_at_least(const struct intel_pck *pck, const struct tcb_level *l)
{
	for (int i = 0; i < 16; i++)
		if (pck->comp_svn[i] < l->sgx[i])
			return false;
	return pck->pcesvn >= l->pcesvn;
}

/* TEE_TCB_SVN[0..1] are the module's own (checked by its identity) when byte 1 is set. */
static bool tdx_at_least(const uint8_t tee[16], const struct tcb_level *l)
{
	for (int i = tee[1] > 0 ? 2 : 0; i < 16; i++)
		if (tee[i] < l->tdx[i])
			return false;
	return true;
}

static const struct tdx_module *find_module(const struct tcb_info *ti, uint8_t major)
{
	char want[16];

	snprintf(want, sizeof(want), "TDX_%02X", major);
	for (size_t i = 0; i < ti->n_modules; i++)
		if (strcasecmp(ti->modules[i].id, want) == 0)
			return &ti->modules[i];
	return NULL;
}

enum scone_err intel_tdx_module_check(const struct tcb_info *ti, const struct intel_quote *q)
{
	const uint8_t *b = q->body;
	const struct tdx_module *m = ti->has_module ? &ti->module : NULL;

	if (b[TD_R_TEE_TCB_SVN + 1] > 0) {
		m = find_module(ti, b[TD_R_TEE_TCB_SVN + 1]);
		if (!m)
			return scone_err_set(SCONE_ERR_UNTRUSTED,
					     "TDX module: the TCB info has no identity TDX_%02X",
					     b[TD_R_TEE_TCB_SVN + 1]);
	}
	if (!m)
		return scone_err_set(SCONE_ERR_UNTRUSTED, "TDX module: the TCB info has no tdxModule");
	if (memcmp(b + TD_R_MRSIGNERSEAM, m->mrsigner, 48) != 0)
		return scone_err_set(SCONE_ERR_UNTRUSTED, "TDX module: MRSIGNERSEAM is not the signer of %s",
				     m->id[0] ? m->id : "tdxModule");
	for (int i = 0; i < 8; i++)
		if (b[TD_R_SEAMATTRIBUTES + i] != 0 || m->attributes[i] != 0)
			return scone_err_set(SCONE_ERR_UNTRUSTED, "TDX module: SEAMATTRIBUTES must be zero");
	return SCONE_ERR_OK;
}

/* A module (or QE) OutOfDate makes the platform status out of date; Revoked wins (QVL converge*). */
static enum scone_tcb_status converge(enum scone_tcb_status platform, enum scone_tcb_status other)
{
	if (other == SCONE_TCB_REVOKED)
		return SCONE_TCB_REVOKED;
	if (other != SCONE_TCB_OUT_OF_DATE)
		return platform;
	if (platform == SCONE_TCB_UP_TO_DATE || platform == SCONE_TCB_SW_HARDENING_NEEDED)
		return SCONE_TCB_OUT_OF_DATE;
	if (platform == SCONE_TCB_CONFIGURATION_NEEDED ||
	    platform == SCONE_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED)
		return SCONE_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED;
	return platform;
}

static bool config_needed(enum scone_tcb_status s)
{
	return s == SCONE_TCB_CONFIGURATION_NEEDED || s == SCONE_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED ||
	       s == SCONE_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED ||
	       s == SCONE_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED;
}

/*
 * TDX 1.5 (body type 3): an out-of-date TD on an updated platform and
 * module (TEE_TCB_SVN2 shows the update was applied) is advised to
 * relaunch rather than declared out of date (QVL TDRelaunchCheck).
 */
static enum scone_tcb_status relaunch(const struct tcb_info *ti, const uint8_t svn2[16], struct tcb_result *r,
				      enum scone_tcb_status tdx)
{
	const struct tcb_level *latest = &ti->levels[0];
	uint8_t latest_module;

	if (r->qe_status == SCONE_TCB_OUT_OF_DATE || r->qe_status == SCONE_TCB_REVOKED)
		return tdx;
	if (r->sgx_status != SCONE_TCB_UP_TO_DATE && r->sgx_status != SCONE_TCB_SW_HARDENING_NEEDED &&
	    r->sgx_status != SCONE_TCB_CONFIGURATION_NEEDED &&
	    r->sgx_status != SCONE_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED)
		return tdx;
	if ((tdx != SCONE_TCB_OUT_OF_DATE && tdx != SCONE_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED) ||
	    r->module_status != SCONE_TCB_OUT_OF_DATE)
		return tdx;
	if (svn2[1] == 0) {
		latest_module = latest->tdx[0];
	} else {
		const struct tdx_module *m = find_module(ti, svn2[1]);
		if (!m || m->n_levels == 0)
			return tdx;
		latest_module = (uint8_t)(m->levels[0].isvsvn > 255 ? 255 : m->levels[0].isvsvn);
	}
	if (svn2[0] < latest_module || svn2[2] < latest->tdx[2])
		return tdx;
	return config_needed(r->sgx_status) || config_needed(tdx)
		   ? SCONE_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED
		   : SCONE_TCB_TD_RELAUNCH_ADVISED;
}

static void add_advisories(char *out, size_t size, const char *list)
{
	while (*list) {
		size_t n = strcspn(list, ","), used = strlen(out);
		bool dup = false;
		for (const char *p = out; *p;) {
			size_t m = strcspn(p, ",");
			if (m == n && strncmp(p, list, n) == 0)
				dup = true;
			p += m + (p[m] == ',');
		}
		if (!dup && used + n + 2 <= size)
			snprintf(out + used, size - used, "%s%.*s", used ? "," : "", (int)n, list);
		list += n + (list[n] == ',');
	}
}

/* The platform level: first level the PCK TCB meets (and, for TDX, also the TEE_TCB_SVN). */
static enum scone_err select_level(const struct tcb_info *ti, const struct intel_pck *pck, const uint8_t *tee,
				   const struct tcb_level **sgx, const struct tcb_level **tdx)
{
	*sgx = *tdx = NULL;
	for (size_t i = 0; i < ti->n_levels; i++) {
		if (!sgx_at_least(pck, &ti->levels[i]))
			continue;
		if (!*sgx)
			*sgx = &ti->levels[i];
		if (!tee)
			break;
		if (tdx_at_least(tee, &ti->levels[i])) {
			*tdx = &ti->levels[i];
			break;
		}
	}
	if (!*sgx)
		return scone_err_set(
		    SCONE_ERR_UNTRUSTED,
		    "TCB not supported: the platform's SGX TCB (PCESVN %u) is below every level of the "
		    "TCB info",
		    pck->pcesvn);
	if (tee && !*tdx)
		return scone_err_set(
		    SCONE_ERR_UNTRUSTED,
		    "TCB not supported: the TD's TEE_TCB_SVN is below every TDX level of the TCB info");
	return SCONE_ERR_OK;
}

/* The module's own level by TEE_TCB_SVN[0] (TEE_TCB_SVN[1] > 0); UP_TO_DATE when the quote has none. */
static enum scone_err module_level(const struct tcb_info *ti, const uint8_t *tee, struct tcb_result *r,
				   const struct tcb_level **level)
{
	const struct tdx_module *m;

	*level = NULL;
	r->module_status = SCONE_TCB_UP_TO_DATE;
	if (tee[1] == 0)
		return SCONE_ERR_OK;
	m = find_module(ti, tee[1]);
	if (!m)
		return scone_err_set(SCONE_ERR_UNTRUSTED, "TDX module: the TCB info has no identity TDX_%02X",
				     tee[1]);
	snprintf(r->module_id, sizeof(r->module_id), "%s", m->id);
	for (size_t i = 0; i < m->n_levels; i++) {
		if (tee[0] >= m->levels[i].isvsvn) {
			*level = &m->levels[i];
			r->module_status = m->levels[i].status;
			return SCONE_ERR_OK;
		}
	}
	return scone_err_set(SCONE_ERR_UNTRUSTED,
			     "TCB not supported: TDX module SVN %u is below every level of %s", tee[0],
			     m->id);
}

enum scone_err intel_tcb_evaluate(const struct tcb_info *ti, const struct intel_pck *pck,
				  const struct intel_quote *q, const struct tcb_level *qe_level,
				  struct tcb_result *r)
{
	bool tdx = q->tee_type == INTEL_TEE_TDX;
	const uint8_t *tee = tdx ? q->body + TD_R_TEE_TCB_SVN : NULL;
	const struct tcb_level *sgx_level, *tdx_level, *mod = NULL, *platform;
	enum scone_tcb_status status;

	memset(r, 0, sizeof(*r));
	if (ti->tdx != tdx)
		return scone_err_set(SCONE_ERR_INVALID, "TCB info is for %s, the quote for %s",
				     ti->tdx ? "TDX" : "SGX", tdx ? "TDX" : "SGX");
	SCONE_TRY(select_level(ti, pck, tee, &sgx_level, &tdx_level));
	platform = tdx ? tdx_level : sgx_level;
	r->sgx_status = sgx_level->status;
	r->qe_status = qe_level ? qe_level->status : SCONE_TCB_UP_TO_DATE;
	status = platform->status;
	if (tdx) {
		SCONE_TRY(module_level(ti, tee, r, &mod));
		status = converge(status, r->module_status);
		if (status != SCONE_TCB_REVOKED && q->body_type == INTEL_BODY_TD15)
			status = relaunch(ti, q->body + TD_R_TEE_TCB_SVN2, r, status);
	}
	r->status = converge(status, r->qe_status);
	r->tcb_date = platform->date;
	add_advisories(r->advisories, sizeof(r->advisories), platform->advisories);
	if (mod)
		add_advisories(r->advisories, sizeof(r->advisories), mod->advisories);
	if (qe_level)
		add_advisories(r->advisories, sizeof(r->advisories), qe_level->advisories);
	return SCONE_ERR_OK;
}
