/*
 * attest_gate.c - CAS's attestation decision for a configuration request:
 * which evidence types the session's mode admits, verification through
 * the evidence interface (src/attest), then the policy matcher, which sees
 * claims only. Every refusal is SCONE_ERR_ATTESTATION with a detail naming
 * the factor that failed (docs/attestation.md, "Refusals"); nothing in a
 * detail is secret.
 */
#include "cas/attest_gate.h"

#include "attest/tolerate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/crypto.h"
#include "lib/hex.h"
#include "lib/log.h"

/* ---- the matcher: claims against the session ---- */

static bool in_list(const struct scone_strs *l, const char *hex)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i], hex) == 0)
			return true;
	return false;
}

static enum scone_err check_report_data(const struct scone_claims *c, const uint8_t spki[32])
{
	static const uint8_t zero[32];

	if (!scone_ct_equal(c->report_data, spki, 32))
		return scone_err_set(
		    SCONE_ERR_ATTESTATION,
		    "wrong report data: the evidence binds another TLS key than this connection's "
		    "(evidence copied from another connection, or made for another key)");
	if (c->type == SCONE_EVIDENCE_LAS && !scone_ct_equal(c->report_data + 32, zero, 32))
		return scone_err_set(
		    SCONE_ERR_ATTESTATION,
		    "wrong report data: the second half must be zero for las evidence (its freshness is "
		    "the LAS's signed time)");
	return SCONE_ERR_OK;
}

/* The measurements a variant lists for evidence of type t (SGX's for las too). */
static const struct scone_strs *measurements_of(const struct scone_attest_variant *v,
						enum scone_evidence_type t)
{
	switch (t) {
	case SCONE_EVIDENCE_TDX:
		return &v->mrtds;
	case SCONE_EVIDENCE_SNP:
		return &v->snp_measurements;
	default:
		return &v->mrenclaves;
	}
}

/* Up to three expected measurements of the variants listing platform (NULL: any), for the message. */
static void expected_list(const struct scone_service *svc, enum scone_evidence_type t, const char *platform,
			  char *out, size_t size)
{
	size_t n = 0, k = 0;

	out[0] = '\0';
	for (size_t i = 0; i < svc->n_variants; i++) {
		const struct scone_attest_variant *v = &svc->variants[i];
		const struct scone_strs *l = measurements_of(v, t);
		if (platform && v->platforms.n && !in_list(&v->platforms, platform))
			continue;
		for (size_t j = 0; j < l->n; j++, n++)
			if (n < 3)
				k += (size_t)snprintf(out + k, k < size ? size - k : 0, "%s%s", n ? ", " : "",
						      l->v[j]);
	}
	if (n > 3 && k < size)
		snprintf(out + k, size - k, " and %zu more", n - 3);
}

/* What the variants of a hardware type found wrong besides the measurement, for the refusal. */
struct miss {
	char why[400];
};

static bool claim_is(const struct scone_claims *c, const char *name, const char *want, struct miss *m,
		     const char *what)
{
	const char *got = scone_claims_get(c, name);

	if (got && strcmp(got, want) == 0)
		return true;
	snprintf(m->why, sizeof(m->why), "%s mismatch: the evidence has %s %s, the variant expects %s", what,
		 name, got ? got : "(none)", want);
	return false;
}

static bool match_sgx(const struct scone_attest_variant *v, const struct scone_claims *c, const char *meas,
		      struct miss *m)
{
	char signer[2 * sizeof(c->signer) + 1];
	const char *p = scone_claims_get(c, "isvprodid"), *n = scone_claims_get(c, "isvsvn");
	long prod = p ? atol(p) : -1, svn = n ? atol(n) : -1;

	if (!v->mrenclaves.n && !v->mrsigner)
		return false; /* a TDX or SNP variant */
	if (v->mrenclaves.n && !in_list(&v->mrenclaves, meas))
		return false;
	if (!v->mrsigner)
		return true;
	scone_hex_encode(signer, sizeof(signer), c->signer, c->signer_size);
	if (strcmp(v->mrsigner, signer) != 0)
		snprintf(m->why, sizeof(m->why),
			 "signer mismatch: the enclave's mrsigner is %s, the variant "
			 "expects %s",
			 signer, v->mrsigner);
	else if (v->isvprodid >= 0 && prod != v->isvprodid)
		snprintf(m->why, sizeof(m->why),
			 "isvprodid mismatch: the enclave's is %ld, the variant expects %d", prod,
			 v->isvprodid);
	else if ((v->isvsvn_min >= 0 && svn < v->isvsvn_min) || (v->isvsvn_max >= 0 && svn > v->isvsvn_max))
		snprintf(m->why, sizeof(m->why), "isvsvn %ld is outside the variant's range %d to %d", svn,
			 v->isvsvn_min, v->isvsvn_max);
	else
		return true;
	return false;
}

static bool match_tdx(const struct scone_attest_variant *v, const struct scone_claims *c, const char *meas,
		      struct miss *m)
{
	static const char *const names[4] = {"rtmr0", "rtmr1", "rtmr2", "rtmr3"};

	if (!v->mrtds.n || !in_list(&v->mrtds, meas))
		return false;
	for (int i = 0; i < 4; i++)
		if (v->rtmr[i] && !claim_is(c, names[i], v->rtmr[i], m, "runtime measurement"))
			return false;
	return true;
}

static bool match_snp(const struct scone_attest_variant *v, const struct scone_claims *c, const char *meas,
		      struct miss *m)
{
	if (!v->snp_measurements.n || !in_list(&v->snp_measurements, meas))
		return false;
	return !v->host_data || claim_is(c, "host_data", v->host_data, m, "host data");
}

/* The hardware types: a variant of the type's kind admits the claims (the measurement, then the rest). */
static const struct {
	enum scone_evidence_type type;
	bool (*match)(const struct scone_attest_variant *v, const struct scone_claims *c, const char *meas,
		      struct miss *m);
} hw_matchers[] = {
    {SCONE_EVIDENCE_SGX, match_sgx},
    {SCONE_EVIDENCE_TDX, match_tdx},
    {SCONE_EVIDENCE_SNP, match_snp},
};

static enum scone_err match_hardware(const struct scone_service *svc, const struct scone_claims *c,
				     const char *meas)
{
	struct miss m = {{0}};
	char expected[3 * 98 + 32];
	bool platforms = false;
	size_t t;

	for (t = 0; t < sizeof(hw_matchers) / sizeof(hw_matchers[0]) && hw_matchers[t].type != c->type; t++)
		;
	if (t == sizeof(hw_matchers) / sizeof(hw_matchers[0]))
		return scone_err_set(SCONE_ERR_ATTESTATION, "no hardware matcher for this evidence type");
	for (size_t i = 0; i < svc->n_variants; i++) {
		const struct scone_attest_variant *v = &svc->variants[i];
		if (v->platforms
			.n) { /* LAS hosts or SCONE's QE ids: nothing hardware evidence carries here */
			platforms = true;
			continue;
		}
		if (hw_matchers[t].match(v, c, meas, &m))
			return SCONE_ERR_OK;
	}
	if (m.why[0])
		return scone_err_set(SCONE_ERR_ATTESTATION, "%s (service %s)", m.why, svc->name);
	expected_list(svc, c->type, NULL, expected, sizeof(expected));
	return scone_err_set(SCONE_ERR_ATTESTATION,
			     "measurement mismatch: the %s evidence measures %s, service %s expects %s%s",
			     scone_evidence_of(c->type) ? scone_evidence_of(c->type)->name : "hardware", meas,
			     svc->name, expected[0] ? expected : "no measurement of this kind",
			     platforms ? " (variants with platforms are for las evidence and are not used)"
				       : "");
}

enum scone_err cas_attest_match(const struct scone_service *svc, const struct scone_claims *c,
				const uint8_t spki[32])
{
	char meas[2 * sizeof(c->measurement) + 1], plat[2 * sizeof(c->platform_id) + 1];
	char expected[3 * 98 + 32];
	bool platform_known = false;

	SCONE_TRY(check_report_data(c, spki));
	scone_hex_encode(meas, sizeof(meas), c->measurement, c->measurement_size);
	if (c->type != SCONE_EVIDENCE_LAS)
		return match_hardware(svc, c, meas);
	scone_hex_encode(plat, sizeof(plat), c->platform_id, c->platform_id_size);
	for (size_t i = 0; i < svc->n_variants; i++) {
		const struct scone_attest_variant *v = &svc->variants[i];
		bool platform_ok = v->platforms.n && in_list(&v->platforms, plat);
		platform_known = platform_known || platform_ok;
		if (!platform_ok)
			continue;
		if (v->mrenclaves.n && !in_list(&v->mrenclaves, meas))
			continue;
		if (v->mrsigner)
			continue; /* an SGX signer: a LAS report has none */
		return SCONE_ERR_OK;
	}
	if (!platform_known)
		return scone_err_set(SCONE_ERR_ATTESTATION,
				     "unknown platform %s: service %s does not list this host in platforms "
				     "(scone-las --print-identity on the host prints it)",
				     plat, svc->name);
	expected_list(svc, c->type, plat, expected, sizeof(expected));
	return scone_err_set(
	    SCONE_ERR_ATTESTATION,
	    "measurement mismatch: the program measures %s, service %s expects %s (scone measure "
	    "PROGRAM)",
	    meas, svc->name, expected[0] ? expected : "another signer");
}

/* ---- the platform's state: src/attest/tolerate.c on the session's lists ---- */

enum scone_err cas_attest_tolerated(const struct scone_session *s, const struct scone_claims *c)
{
	char who[SCONE_SESSION_NAME_MAX + 16];
	struct scone_tolerance t = {.tolerate = (const char *const *)s->tolerate.v,
				    .n_tolerate = s->tolerate.n,
				    .ignore = (const char *const *)s->ignore_advisories.v,
				    .n_ignore = s->ignore_advisories.n,
				    .who = who};

	snprintf(who, sizeof(who), "session %s", s->name);
	return scone_claims_tolerated(c, &t);
}

/* ---- the gate ---- */

/* The evidence types a mode admits: las the LAS's reports, hardware the TEE vendors' evidence. */
static bool admits(enum scone_attestation_mode mode, enum scone_evidence_type t)
{
	if (mode == SCONE_ATTEST_LAS)
		return t == SCONE_EVIDENCE_LAS;
	return mode == SCONE_ATTEST_HARDWARE &&
	       (t == SCONE_EVIDENCE_SGX || t == SCONE_EVIDENCE_TDX || t == SCONE_EVIDENCE_SNP);
}

static enum scone_err wrong_type(const struct scone_session *s, const struct cas_config_request *cr)
{
	const char *note = cr->evidence_note[0] ? cr->evidence_note : "";

	return scone_err_set(
	    SCONE_ERR_ATTESTATION, "session %s requires %s evidence, the runtime presented %s%s%s%s%s",
	    s->name, s->mode == SCONE_ATTEST_LAS ? "las" : "hardware (sgx, tdx or snp)", cr->evidence_type,
	    note[0] ? " (the runtime says: " : "", note, note[0] ? ")" : "",
	    s->mode == SCONE_ATTEST_HARDWARE
		? "; hardware mode (the default) needs a TEE: on a host without one, use mode "
		  "las with a LAS (docs/attestation.md)"
		: "");
}

enum scone_err cas_attest_gate(const struct cas_attest_opts *o, const struct scone_session *s,
			       const struct scone_service *svc, const struct cas_config_request *cr,
			       const uint8_t spki[32], struct scone_claims *claims)
{
	const struct scone_evidence_ops *ops = scone_evidence_find(cr->evidence_type);
	struct scone_verify_opts vo = {.at = o->at,
				       .max_age_sec = o->max_age_sec,
				       .collateral_dir = o->collateral_dir,
				       .collateral = o->collateral};
	enum scone_err err;

	memset(claims, 0, sizeof(*claims));
	if (s->mode == SCONE_ATTEST_NONE) {
		scone_warn("service %s/%s started without attestation (security.attestation.mode: none)",
			   cr->session, cr->service);
		return SCONE_ERR_OK;
	}
	if (!ops || !admits(s->mode, ops->type))
		return wrong_type(s, cr);
	err = ops->verify(cr->evidence, cr->evidence_size, &vo, claims);
	if (err)
		return scone_err_set(SCONE_ERR_ATTESTATION, "%s evidence refused: %s", ops->name,
				     scone_err_detail());
	SCONE_TRY(cas_attest_match(svc, claims, spki));
	return cas_attest_tolerated(s, claims);
}
