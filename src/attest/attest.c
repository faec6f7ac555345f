/*
 * attest.c - the evidence table and the claims helpers every type shares.
 */
#include "attest/attest.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "attest/attest_types.h"
#include "lib/crypto.h"
#include "lib/hex.h"
#include "lib/json.h"

static const struct scone_evidence_ops *const evidence_types[] = {
    &scone_evidence_none, &scone_evidence_las, &scone_evidence_sgx, &scone_evidence_tdx, &scone_evidence_snp,
};

#define N_TYPES (sizeof(evidence_types) / sizeof(evidence_types[0]))

const struct scone_evidence_ops *scone_evidence_at(size_t i)
{
	return i < N_TYPES ? evidence_types[i] : NULL;
}

const struct scone_evidence_ops *scone_evidence_tee(const struct scone_collect_opts *o)
{
	for (size_t i = 0; i < N_TYPES; i++) {
		const struct scone_evidence_ops *e = evidence_types[i];
		bool hw = e->type == SCONE_EVIDENCE_SGX || e->type == SCONE_EVIDENCE_TDX ||
			  e->type == SCONE_EVIDENCE_SNP;
		if (hw && e->available && e->collect && e->available(o))
			return e;
	}
	return NULL;
}

const struct scone_evidence_ops *scone_evidence_find(const char *name)
{
	for (size_t i = 0; name && i < N_TYPES; i++)
		if (strcmp(evidence_types[i]->name, name) == 0)
			return evidence_types[i];
	return NULL;
}

const struct scone_evidence_ops *scone_evidence_of(enum scone_evidence_type type)
{
	for (size_t i = 0; i < N_TYPES; i++)
		if (evidence_types[i]->type == type)
			return evidence_types[i];
	return NULL;
}

static const char *const tcb_names[] = {
#define SCONE_TCB_NAME(name, text) text,
    SCONE_TCB_STATUSES(SCONE_TCB_NAME)
#undef SCONE_TCB_NAME
};

const char *scone_tcb_status_name(enum scone_tcb_status s)
{
	return (size_t)s < sizeof(tcb_names) / sizeof(tcb_names[0]) ? tcb_names[s] : tcb_names[0];
}

enum scone_err scone_tcb_status_parse(const char *text, enum scone_tcb_status *out)
{
	for (size_t i = 1; i < sizeof(tcb_names) / sizeof(tcb_names[0]); i++) {
		if (strcmp(text, tcb_names[i]) == 0) {
			*out = (enum scone_tcb_status)i;
			return SCONE_ERR_OK;
		}
	}
	return scone_err_set(SCONE_ERR_INVALID, "unknown TCB status \"%.64s\"", text);
}

enum scone_err scone_claims_add(struct scone_claims *c, const char *name, const char *value)
{
	struct scone_claim_extra *e;

	if (c->n_extras == SCONE_CLAIM_MAX_EXTRAS)
		return scone_err_set(SCONE_ERR_LIMIT, "more than %d claims", SCONE_CLAIM_MAX_EXTRAS);
	if (strlen(name) >= SCONE_CLAIM_NAME_MAX)
		return scone_err_set(SCONE_ERR_INVALID, "claim name %.32s is too long", name);
	e = &c->extras[c->n_extras++];
	snprintf(e->name, sizeof(e->name), "%s", name);
	snprintf(e->value, sizeof(e->value), "%s", value);
	return SCONE_ERR_OK;
}

enum scone_err scone_claims_add_hex(struct scone_claims *c, const char *name, const uint8_t *value,
				    size_t size)
{
	char hex[SCONE_CLAIM_VALUE_MAX];

	if (2 * size + 1 > sizeof(hex))
		return scone_err_set(SCONE_ERR_TOO_LARGE, "claim %s: %zu bytes", name, size);
	scone_hex_encode(hex, sizeof(hex), value, size);
	return scone_claims_add(c, name, hex);
}

const char *scone_claims_get(const struct scone_claims *c, const char *name)
{
	for (size_t i = 0; i < c->n_extras; i++)
		if (strcmp(c->extras[i].name, name) == 0)
			return c->extras[i].value;
	return NULL;
}

static enum scone_err put_str(struct scone_wbuf *w, const char *sep, const char *key, const char *value)
{
	SCONE_TRY(scone_wbuf_put(w, sep, strlen(sep)));
	SCONE_TRY(scone_json_put_string(w, key));
	SCONE_TRY(scone_wbuf_put(w, ":", 1));
	return scone_json_put_string(w, value);
}

static enum scone_err put_hex(struct scone_wbuf *w, const char *key, const uint8_t *v, size_t size)
{
	char hex[2 * 64 + 1];

	if (!size)
		return SCONE_ERR_OK;
	scone_hex_encode(hex, sizeof(hex), v, size);
	return put_str(w, ",", key, hex);
}

/* Which name the common byte fields carry for each type (docs/attestation.md). */
static void field_names(enum scone_evidence_type t, const char **meas, const char **signer,
			const char **platform)
{
	switch (t) {
	case SCONE_EVIDENCE_SGX:
		*meas = "mrenclave", *signer = "mrsigner", *platform = "fmspc";
		break;
	case SCONE_EVIDENCE_TDX:
		*meas = "mrtd", *signer = "mrsignerseam", *platform = "fmspc";
		break;
	case SCONE_EVIDENCE_SNP:
		*meas = "measurement", *signer = "id_key_digest", *platform = "chip_id";
		break;
	case SCONE_EVIDENCE_LAS:
		*meas = "measurement", *signer = "runtime_measurement", *platform = "platform_id";
		break;
	default:
		*meas = "measurement", *signer = "signer", *platform = "platform_id";
		break;
	}
}

enum scone_err scone_claims_to_json(const struct scone_claims *c, struct scone_wbuf *out)
{
	const struct scone_evidence_ops *ops = scone_evidence_of(c->type);
	const char *meas, *signer, *platform;
	char num[32];

	field_names(c->type, &meas, &signer, &platform);
	SCONE_TRY(put_str(out, "{", "type", ops ? ops->name : "unknown"));
	SCONE_TRY(put_hex(out, meas, c->measurement, c->measurement_size));
	SCONE_TRY(put_hex(out, signer, c->signer, c->signer_size));
	SCONE_TRY(put_hex(out, platform, c->platform_id, c->platform_id_size));
	SCONE_TRY(put_hex(out, "report_data", c->report_data, sizeof(c->report_data)));
	SCONE_TRY(scone_wbuf_put(out, c->debug ? ",\"debug\":true" : ",\"debug\":false", c->debug ? 13 : 14));
	SCONE_TRY(put_str(out, ",", "tcb_status", scone_tcb_status_name(c->tcb_status)));
	SCONE_TRY(scone_wbuf_put(out, ",\"advisories\":[", 15));
	for (const char *p = c->advisories; *p;) {
		size_t n = strcspn(p, ",");
		char id[SCONE_CLAIM_VALUE_MAX];
		snprintf(id, sizeof(id), "%.*s", (int)n, p);
		SCONE_TRY(scone_json_put_string(out, id));
		p += n;
		if (*p == ',' && *++p)
			SCONE_TRY(scone_wbuf_put(out, ",", 1));
	}
	SCONE_TRY(scone_wbuf_put(out, "]", 1));
	snprintf(num, sizeof(num), ",\"time\":%" PRId64, c->time);
	SCONE_TRY(scone_wbuf_put(out, num, strlen(num)));
	for (size_t i = 0; i < c->n_extras; i++)
		SCONE_TRY(put_str(out, ",", c->extras[i].name, c->extras[i].value));
	return scone_wbuf_put(out, "}", 1);
}

void scone_report_data(const uint8_t spki_sha256[32], const uint8_t freshness[32],
		       uint8_t out[SCONE_REPORT_DATA_SIZE])
{
	memcpy(out, spki_sha256, 32);
	memcpy(out + 32, freshness, 32);
}
