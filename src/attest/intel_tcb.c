/*
 * intel_tcb.c - parse Intel TCB info and enclave identity documents and
 * select TCB levels (see intel_tcb.h). Field names and rules: Intel PCS
 * API v4 and the Quote Verification Library (docs/attestation.md).
 */
#include "attest/intel_tcb.h"

#include <stdio.h>
#include <string.h>

#include "lib/hex.h"
#include "lib/json.h"
#include "lib/rfc3339.h"

/* ---------------- JSON fields ---------------- */

static const struct scone_json *field(const struct scone_json *o, const char *key)
{
	return scone_json_get(o, key);
}

static enum scone_err need(const struct scone_json *o, const char *key, const char *path,
			   enum scone_json_kind kind, const struct scone_json **out)
{
	const struct scone_json *v = field(o, key);

	if (!v || v->kind != kind)
		return scone_err_set(SCONE_ERR_MALFORMED, "%s.%s: expected %s, got %s", path, key,
				     scone_json_kind_name(kind),
				     v ? scone_json_kind_name(v->kind) : "nothing");
	*out = v;
	return SCONE_ERR_OK;
}

static enum scone_err get_int(const struct scone_json *o, const char *key, const char *path, int64_t max,
			      int64_t *out)
{
	const struct scone_json *v = field(o, key);

	if (!v || v->kind != SCONE_JSON_NUMBER || !v->is_int || v->integer < 0 || v->integer > max)
		return scone_err_set(SCONE_ERR_MALFORMED, "%s.%s: expected an integer 0..%lld", path, key,
				     (long long)max);
	*out = v->integer;
	return SCONE_ERR_OK;
}

static enum scone_err get_hex(const struct scone_json *o, const char *key, const char *path, uint8_t *out,
			      size_t n)
{
	const struct scone_json *v;
	char what[96];

	SCONE_TRY(need(o, key, path, SCONE_JSON_STRING, &v));
	snprintf(what, sizeof(what), "%s.%s", path, key);
	if (scone_hex_decode(out, n, v->str, what))
		return scone_err_set(SCONE_ERR_MALFORMED, "%s", scone_err_detail());
	return SCONE_ERR_OK;
}

static enum scone_err get_date(const struct scone_json *o, const char *key, const char *path, int64_t *out)
{
	const struct scone_json *v;
	char what[96];

	SCONE_TRY(need(o, key, path, SCONE_JSON_STRING, &v));
	snprintf(what, sizeof(what), "%s.%s", path, key);
	if (scone_rfc3339_parse(v->str, what, out))
		return scone_err_set(SCONE_ERR_MALFORMED, "%s", scone_err_detail());
	return SCONE_ERR_OK;
}

static enum scone_err get_status(const struct scone_json *o, const char *path, bool module,
				 enum scone_tcb_status *out)
{
	const struct scone_json *v;

	SCONE_TRY(need(o, "tcbStatus", path, SCONE_JSON_STRING, &v));
	if (scone_tcb_status_parse(v->str, out) ||
	    (module && *out != SCONE_TCB_UP_TO_DATE && *out != SCONE_TCB_OUT_OF_DATE &&
	     *out != SCONE_TCB_REVOKED) ||
	    *out == SCONE_TCB_TD_RELAUNCH_ADVISED ||
	    *out == SCONE_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED)
		return scone_err_set(SCONE_ERR_MALFORMED,
				     "%s.tcbStatus: \"%.40s\" is not a status of this document", path,
				     v->str);
	return SCONE_ERR_OK;
}

/* Advisory ids: letters, digits and '-' only, so a comma-separated list stays unambiguous. */
static bool advisory_id_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		      *s == '-'))
			return false;
	return true;
}

static enum scone_err get_advisories(const struct scone_json *o, const char *path, char *out, size_t size)
{
	const struct scone_json *a = field(o, "advisoryIDs");
	size_t used = 0;

	out[0] = '\0';
	if (!a)
		return SCONE_ERR_OK;
	if (a->kind != SCONE_JSON_ARRAY)
		return scone_err_set(SCONE_ERR_MALFORMED, "%s.advisoryIDs: expected an array", path);
	for (size_t i = 0; i < a->count; i++) {
		const char *id = scone_json_string(a->items[i], NULL);
		int n;
		if (!id || !advisory_id_ok(id))
			return scone_err_set(SCONE_ERR_MALFORMED, "%s.advisoryIDs[%zu]: not an advisory id",
					     path, i);
		n = snprintf(out + used, size - used, "%s%s", used ? "," : "", id);
		if (n < 0 || (size_t)n >= size - used)
			return scone_err_set(SCONE_ERR_TOO_LARGE, "%s.advisoryIDs: more than %zu bytes", path,
					     size);
		used += (size_t)n;
	}
	return SCONE_ERR_OK;
}

/* ---------------- levels ---------------- */

/* v3: "sgxtcbcomponents"/"tdxtcbcomponents": [16 x {"svn": N, ...}] */
static enum scone_err components(const struct scone_json *tcb, const char *key, const char *path,
				 uint8_t out[16])
{
	const struct scone_json *a;
	int64_t svn;

	SCONE_TRY(need(tcb, key, path, SCONE_JSON_ARRAY, &a));
	if (a->count != 16)
		return scone_err_set(SCONE_ERR_MALFORMED, "%s.%s: %zu components, expected 16", path, key,
				     a->count);
	for (size_t i = 0; i < 16; i++) {
		SCONE_TRY(get_int(a->items[i], "svn", path, 255, &svn));
		out[i] = (uint8_t)svn;
	}
	return SCONE_ERR_OK;
}

/* v2: "sgxtcbcomp01svn" .. "sgxtcbcomp16svn" */
static enum scone_err components_v2(const struct scone_json *tcb, const char *path, uint8_t out[16])
{
	char key[32];
	int64_t svn;

	for (int i = 0; i < 16; i++) {
		snprintf(key, sizeof(key), "sgxtcbcomp%02dsvn", i + 1);
		SCONE_TRY(get_int(tcb, key, path, 255, &svn));
		out[i] = (uint8_t)svn;
	}
	return SCONE_ERR_OK;
}

enum level_kind { LEVEL_SGX_V2, LEVEL_SGX, LEVEL_TDX, LEVEL_ISV, LEVEL_MODULE };

static enum scone_err parse_level(const struct scone_json *o, const char *path, enum level_kind kind,
				  struct tcb_level *l)
{
	const struct scone_json *tcb;
	int64_t v;

	SCONE_TRY(need(o, "tcb", path, SCONE_JSON_OBJECT, &tcb));
	if (kind == LEVEL_ISV || kind == LEVEL_MODULE) {
		SCONE_TRY(get_int(tcb, "isvsvn", path, 0xffff, &v));
		l->isvsvn = (uint16_t)v;
	} else {
		if (kind == LEVEL_SGX_V2)
			SCONE_TRY(components_v2(tcb, path, l->sgx));
		else
			SCONE_TRY(components(tcb, "sgxtcbcomponents", path, l->sgx));
		if (kind == LEVEL_TDX)
			SCONE_TRY(components(tcb, "tdxtcbcomponents", path, l->tdx));
		SCONE_TRY(get_int(tcb, "pcesvn", path, 0xffff, &v));
		l->pcesvn = (uint16_t)v;
	}
	SCONE_TRY(get_date(o, "tcbDate", path, &l->date));
	SCONE_TRY(get_status(o, path, kind == LEVEL_MODULE || kind == LEVEL_ISV, &l->status));
	return get_advisories(o, path, l->advisories, sizeof(l->advisories));
}

static enum scone_err parse_levels(const struct scone_json *o, const char *path, enum level_kind kind,
				   struct tcb_level *levels, size_t *n)
{
	const struct scone_json *a;
	char p[80];

	SCONE_TRY(need(o, "tcbLevels", path, SCONE_JSON_ARRAY, &a));
	if (a->count == 0 || a->count > TCB_MAX_LEVELS)
		return scone_err_set(SCONE_ERR_MALFORMED, "%s.tcbLevels: %zu levels (1..%d accepted)", path,
				     a->count, TCB_MAX_LEVELS);
	for (size_t i = 0; i < a->count; i++) {
		if (a->items[i]->kind != SCONE_JSON_OBJECT)
			return scone_err_set(SCONE_ERR_MALFORMED, "%s.tcbLevels[%zu]: expected an object",
					     path, i);
		snprintf(p, sizeof(p), "%s.tcbLevels[%zu]", path, i);
		SCONE_TRY(parse_level(a->items[i], p, kind, &levels[i]));
	}
	*n = a->count;
	return SCONE_ERR_OK;
}

/* ---------------- TCB info ---------------- */

static enum scone_err parse_module(const struct scone_json *o, const char *path, bool with_levels,
				   struct tdx_module *m)
{
	const struct scone_json *id;

	if (with_levels) {
		SCONE_TRY(need(o, "id", path, SCONE_JSON_STRING, &id));
		if (id->str_len >= sizeof(m->id))
			return scone_err_set(SCONE_ERR_MALFORMED, "%s.id: too long", path);
		memcpy(m->id, id->str, id->str_len + 1);
	}
	SCONE_TRY(get_hex(o, "mrsigner", path, m->mrsigner, 48));
	SCONE_TRY(get_hex(o, "attributes", path, m->attributes, 8));
	SCONE_TRY(get_hex(o, "attributesMask", path, m->attributes_mask, 8));
	return with_levels ? parse_levels(o, path, LEVEL_MODULE, m->levels, &m->n_levels) : SCONE_ERR_OK;
}

static enum scone_err parse_modules(const struct scone_json *o, struct tcb_info *ti)
{
	const struct scone_json *m = field(o, "tdxModule"), *a = field(o, "tdxModuleIdentities");
	char p[64];

	if (m) {
		if (m->kind != SCONE_JSON_OBJECT)
			return scone_err_set(SCONE_ERR_MALFORMED, "tcbInfo.tdxModule: expected an object");
		SCONE_TRY(parse_module(m, "tcbInfo.tdxModule", false, &ti->module));
		ti->has_module = true;
	}
	if (!a)
		return SCONE_ERR_OK;
	if (a->kind != SCONE_JSON_ARRAY || a->count > TCB_MAX_MODULES)
		return scone_err_set(SCONE_ERR_MALFORMED,
				     "tcbInfo.tdxModuleIdentities: expected an array of at most %d",
				     TCB_MAX_MODULES);
	for (size_t i = 0; i < a->count; i++) {
		snprintf(p, sizeof(p), "tcbInfo.tdxModuleIdentities[%zu]", i);
		if (a->items[i]->kind != SCONE_JSON_OBJECT)
			return scone_err_set(SCONE_ERR_MALFORMED, "%s: expected an object", p);
		SCONE_TRY(parse_module(a->items[i], p, true, &ti->modules[i]));
	}
	ti->n_modules = a->count;
	return SCONE_ERR_OK;
}

static enum scone_err tcbinfo_fields(const struct scone_json *o, struct tcb_info *ti)
{
	const char *path = "tcbInfo";
	const struct scone_json *id;
	int64_t v;

	if (o->kind != SCONE_JSON_OBJECT)
		return scone_err_set(SCONE_ERR_MALFORMED, "tcbInfo: expected an object");
	SCONE_TRY(get_int(o, "version", path, 1000, &v));
	ti->version = (int)v;
	if (v != 2 && v != 3)
		return scone_err_set(SCONE_ERR_UNSUPPORTED, "tcbInfo.version %d (2 and 3 are known)",
				     ti->version);
	if (v == 3) {
		SCONE_TRY(need(o, "id", path, SCONE_JSON_STRING, &id));
		if (strcmp(id->str, "SGX") != 0 && strcmp(id->str, "TDX") != 0)
			return scone_err_set(SCONE_ERR_MALFORMED,
					     "tcbInfo.id \"%.16s\" (SGX or TDX expected)", id->str);
		ti->tdx = strcmp(id->str, "TDX") == 0;
	}
	SCONE_TRY(get_date(o, "issueDate", path, &ti->issue_date));
	SCONE_TRY(get_date(o, "nextUpdate", path, &ti->next_update));
	SCONE_TRY(get_hex(o, "fmspc", path, ti->fmspc, 6));
	SCONE_TRY(get_hex(o, "pceId", path, ti->pceid, 2));
	SCONE_TRY(get_int(o, "tcbEvaluationDataNumber", path, INT32_MAX, &ti->eval_number));
	if (v == 3) {
		SCONE_TRY(get_int(o, "tcbType", path, 1000, &v));
		if (v != 0)
			return scone_err_set(SCONE_ERR_UNSUPPORTED, "tcbInfo.tcbType %d (0 is known)",
					     (int)v);
	}
	if (ti->tdx)
		SCONE_TRY(parse_modules(o, ti));
	return parse_levels(o, path,
			    v == 2    ? LEVEL_SGX_V2
			    : ti->tdx ? LEVEL_TDX
				      : LEVEL_SGX,
			    ti->levels, &ti->n_levels);
}

static const struct scone_json_limits collateral_limits = {256u << 10, 20000, 8};

enum scone_err intel_tcbinfo_parse(const char *text, size_t size, struct tcb_info *ti)
{
	struct scone_json *doc = NULL;
	enum scone_err err;

	memset(ti, 0, sizeof(*ti));
	if ((err = scone_json_parse(text, size, &collateral_limits, &doc)))
		return scone_err_set(err, "tcbInfo: %s", scone_err_detail());
	err = tcbinfo_fields(doc, ti);
	scone_json_free(doc);
	return err;
}

/* ---------------- QE identity ---------------- */

static enum scone_err qeid_fields(const struct scone_json *o, struct qe_identity *id)
{
	const char *path = "enclaveIdentity";
	const struct scone_json *name;
	int64_t v;

	if (o->kind != SCONE_JSON_OBJECT)
		return scone_err_set(SCONE_ERR_MALFORMED, "enclaveIdentity: expected an object");
	SCONE_TRY(need(o, "id", path, SCONE_JSON_STRING, &name));
	if (strcmp(name->str, "QE") != 0 && strcmp(name->str, "TD_QE") != 0)
		return scone_err_set(SCONE_ERR_MALFORMED,
				     "enclaveIdentity.id \"%.16s\" (QE or TD_QE expected)", name->str);
	id->td = strcmp(name->str, "TD_QE") == 0;
	SCONE_TRY(get_int(o, "version", path, 1000, &v));
	id->version = (int)v;
	if (v != 2)
		return scone_err_set(SCONE_ERR_UNSUPPORTED, "enclaveIdentity.version %d (2 is known)",
				     id->version);
	SCONE_TRY(get_date(o, "issueDate", path, &id->issue_date));
	SCONE_TRY(get_date(o, "nextUpdate", path, &id->next_update));
	SCONE_TRY(get_int(o, "tcbEvaluationDataNumber", path, INT32_MAX, &id->eval_number));
	SCONE_TRY(get_hex(o, "miscselect", path, id->miscselect, 4));
	SCONE_TRY(get_hex(o, "miscselectMask", path, id->miscselect_mask, 4));
	SCONE_TRY(get_hex(o, "attributes", path, id->attributes, 16));
	SCONE_TRY(get_hex(o, "attributesMask", path, id->attributes_mask, 16));
	SCONE_TRY(get_hex(o, "mrsigner", path, id->mrsigner, 32));
	SCONE_TRY(get_int(o, "isvprodid", path, 0xffff, &v));
	id->isvprodid = (uint16_t)v;
	return parse_levels(o, path, LEVEL_ISV, id->levels, &id->n_levels);
}

enum scone_err intel_qeid_parse(const char *text, size_t size, struct qe_identity *id)
{
	struct scone_json *doc = NULL;
	enum scone_err err;

	memset(id, 0, sizeof(*id));
	if ((err = scone_json_parse(text, size, &collateral_limits, &doc)))
		return scone_err_set(err, "enclaveIdentity: %s", scone_err_detail());
	err = qeid_fields(doc, id);
	scone_json_free(doc);
	return err;
}

/* MISCSELECT is a little-endian u32 in the report and big-endian hex in the identity (QVL swaps it). */
static bool masked_equal_le32(const uint8_t *report, const uint8_t mask_be[4], const uint8_t want_be[4])
{
	for (int i = 0; i < 4; i++)
		if ((report[i] & mask_be[3 - i]) != want_be[3 - i])
			return false;
	return true;
}

static bool masked_equal(const uint8_t *report, const uint8_t *mask, const uint8_t *want, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((report[i] & mask[i]) != want[i])
			return false;
	return true;
}

enum scone_err intel_qeid_check(const struct qe_identity *id, const uint8_t qe_report[SGX_REPORT_SIZE],
				const struct tcb_level **level)
{
	uint16_t prodid = (uint16_t)(qe_report[SGX_R_ISVPRODID] | qe_report[SGX_R_ISVPRODID + 1] << 8);
	uint16_t svn = (uint16_t)(qe_report[SGX_R_ISVSVN] | qe_report[SGX_R_ISVSVN + 1] << 8);

	*level = NULL;
	if (!masked_equal_le32(qe_report + SGX_R_MISCSELECT, id->miscselect_mask, id->miscselect))
		return scone_err_set(SCONE_ERR_UNTRUSTED, "QE identity: the QE's MISCSELECT does not match");
	if (!masked_equal(qe_report + SGX_R_ATTRIBUTES, id->attributes_mask, id->attributes, 16))
		return scone_err_set(SCONE_ERR_UNTRUSTED, "QE identity: the QE's ATTRIBUTES do not match");
	if (memcmp(qe_report + SGX_R_MRSIGNER, id->mrsigner, 32) != 0)
		return scone_err_set(SCONE_ERR_UNTRUSTED, "QE identity: the QE's MRSIGNER is not Intel's");
	if (prodid != id->isvprodid)
		return scone_err_set(SCONE_ERR_UNTRUSTED, "QE identity: the QE's ISVPRODID %u is not %u",
				     prodid, id->isvprodid);
	for (size_t i = 0; i < id->n_levels; i++) {
		if (svn >= id->levels[i].isvsvn) {
			*level = &id->levels[i];
			return SCONE_ERR_OK;
		}
	}
	return scone_err_set(SCONE_ERR_UNTRUSTED,
			     "QE identity: the QE's ISVSVN %u is below every level (not supported)", svn);
}
