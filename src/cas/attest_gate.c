/*
 * attest_gate.c - CAS's attestation decision for a configuration request:
 * which evidence types the session's mode admits, verification through
 * the evidence interface (src/attest), then the policy matcher, which sees
 * claims only. Every refusal is SCONE_ERR_ATTESTATION with a detail naming
 * the factor that failed (docs/attestation.md, "Refusals"); nothing in a
 * detail is secret.
 */
#include "cas/attest_gate.h"

#include <stdio.h>
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
		return scone_err_set(SCONE_ERR_ATTESTATION,
				     "wrong report data: the evidence binds another TLS key than this connection's "
				     "(evidence copied from another connection, or made for another key)");
	if (c->type == SCONE_EVIDENCE_LAS && !scone_ct_equal(c->report_data + 32, zero, 32))
		return scone_err_set(SCONE_ERR_ATTESTATION,
				     "wrong report data: the second half must be zero for las evidence (its freshness is "
				     "the LAS's signed time)");
	return SCONE_ERR_OK;
}

/* Up to three expected measurements of the variants listing platform, for the message. */
static void expected_list(const struct scone_service *svc, const char *platform, char *out, size_t size)
{
	size_t n = 0, k = 0;

	out[0] = '\0';
	for (size_t i = 0; i < svc->n_variants; i++) {
		const struct scone_attest_variant *v = &svc->variants[i];
		if (v->platforms.n && !in_list(&v->platforms, platform))
			continue;
		for (size_t j = 0; j < v->mrenclaves.n; j++, n++)
			if (n < 3)
				k += (size_t)snprintf(out + k, k < size ? size - k : 0, "%s%s", n ? ", " : "",
						      v->mrenclaves.v[j]);
	}
	if (n > 3 && k < size)
		snprintf(out + k, size - k, " and %zu more", n - 3);
}

enum scone_err cas_attest_match(const struct scone_service *svc, const struct scone_claims *c,
				const uint8_t spki[32])
{
	char meas[2 * sizeof(c->measurement) + 1], plat[2 * sizeof(c->platform_id) + 1], signer[129];
	char expected[3 * 66 + 32];
	bool platform_known = false;

	SCONE_TRY(check_report_data(c, spki));
	scone_hex_encode(meas, sizeof(meas), c->measurement, c->measurement_size);
	scone_hex_encode(plat, sizeof(plat), c->platform_id, c->platform_id_size);
	scone_hex_encode(signer, sizeof(signer), c->signer, c->signer_size);
	for (size_t i = 0; i < svc->n_variants; i++) {
		const struct scone_attest_variant *v = &svc->variants[i];
		bool platform_ok = v->platforms.n ? in_list(&v->platforms, plat) : c->type != SCONE_EVIDENCE_LAS;
		platform_known = platform_known || platform_ok;
		if (!platform_ok)
			continue;
		if (v->mrenclaves.n && !in_list(&v->mrenclaves, meas))
			continue;
		if (v->mrsigner && (c->type == SCONE_EVIDENCE_LAS || strcmp(v->mrsigner, signer) != 0))
			continue;
		return SCONE_ERR_OK;
	}
	if (!platform_known)
		return scone_err_set(SCONE_ERR_ATTESTATION,
				     "unknown platform %s: service %s does not list this host in platforms "
				     "(scone-las --print-identity on the host prints it)",
				     plat, svc->name);
	expected_list(svc, plat, expected, sizeof(expected));
	return scone_err_set(SCONE_ERR_ATTESTATION,
			     "measurement mismatch: the program measures %s, service %s expects %s (scone measure "
			     "PROGRAM)",
			     meas, svc->name, expected[0] ? expected : "another signer");
}

/* ---- the gate ---- */

/*
 * The evidence types a mode admits. hardware admits none yet: the sgx, tdx
 * and snp verifiers exist, but the matcher below does not decide on their
 * TCB status, debug flag and the session's tolerate list, and a session
 * must never be given a weaker meaning than it states. Wiring them: admit
 * SCONE_EVIDENCE_SGX/TDX/SNP here and extend cas_attest_match with those
 * factors (docs/attestation.md, "From claims to a policy").
 */
static bool admits(enum scone_attestation_mode mode, enum scone_evidence_type t)
{
	return mode == SCONE_ATTEST_LAS && t == SCONE_EVIDENCE_LAS;
}

static enum scone_err wrong_type(const struct scone_session *s, const struct cas_config_request *cr)
{
	const char *note = cr->evidence_note[0] ? cr->evidence_note : "";

	if (s->mode == SCONE_ATTEST_HARDWARE)
		return scone_err_set(SCONE_ERR_ATTESTATION,
				     "session %s requires hardware attestation (security.attestation.mode: hardware, the "
				     "default when no mode is given), which this CAS does not decide on yet: use mode las "
				     "with a LAS on the host (docs/attestation.md)",
				     s->name);
	return scone_err_set(SCONE_ERR_ATTESTATION,
			     "session %s requires %s evidence, the runtime presented %s%s%s%s", s->name,
			     s->mode == SCONE_ATTEST_LAS ? "las" : "hardware", cr->evidence_type,
			     note[0] ? " (the runtime says: " : "", note, note[0] ? ")" : "");
}

enum scone_err cas_attest_gate(const struct cas_attest_opts *o, const struct scone_session *s,
			       const struct scone_service *svc, const struct cas_config_request *cr,
			       const uint8_t spki[32], struct scone_claims *claims)
{
	const struct scone_evidence_ops *ops = scone_evidence_find(cr->evidence_type);
	struct scone_verify_opts vo = { .at = o->at, .max_age_sec = o->max_age_sec,
					.collateral_dir = o->collateral_dir };
	enum scone_err err;

	memset(claims, 0, sizeof(*claims));
	if (s->mode == SCONE_ATTEST_NONE) {
		scone_warn("service %s/%s started without attestation (security.attestation.mode: none)", cr->session,
			   cr->service);
		return SCONE_ERR_OK;
	}
	if (!ops || !admits(s->mode, ops->type))
		return wrong_type(s, cr);
	err = ops->verify(cr->evidence, cr->evidence_size, &vo, claims);
	if (err)
		return scone_err_set(SCONE_ERR_ATTESTATION, "%s evidence refused: %s", ops->name, scone_err_detail());
	return cas_attest_match(svc, claims, spki);
}
