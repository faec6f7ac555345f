/* intel_pck.c - the SGX extension of PCK certificates (see intel_pck.h). */
#include "attest/intel_pck.h"

#include <string.h>

#include "attest/der.h"
#include "attest/x509chain.h"

/* 1.2.840.113741.1.13.1 */
static const uint8_t sgx_oid[] = {0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x01, 0x0d, 0x01};

enum { F_PPID = 1, F_TCB = 2, F_PCEID = 4, F_FMSPC = 8, F_TYPE = 16 };

static enum scone_err octets(struct scone_rbuf *v, const char *field, uint8_t *out, size_t n)
{
	struct scone_rbuf c;

	SCONE_TRY(der_read(v, DER_OCTET_STRING, field, &c));
	if (c.size != n)
		return scone_err_set(SCONE_ERR_MALFORMED, "PCK SGX extension: %s has %zu bytes, not %zu",
				     field, c.size, n);
	return scone_rbuf_bytes(&c, field, out, n);
}

/* TCB: SEQUENCE OF SEQUENCE { OID .2.N, INTEGER | OCTET STRING } for N = 1..18, each once. */
static enum scone_err parse_tcb(struct scone_rbuf *v, struct intel_pck *p)
{
	struct scone_rbuf seq, item, oid;
	uint32_t seen = 0, svn;

	SCONE_TRY(der_read(v, DER_SEQUENCE, "TCB", &seq));
	while (scone_rbuf_left(&seq)) {
		uint8_t arc;
		SCONE_TRY(der_read(&seq, DER_SEQUENCE, "TCB component", &item));
		SCONE_TRY(der_read(&item, DER_OID, "TCB component id", &oid));
		if (!der_oid_under(&oid, sgx_oid, sizeof(sgx_oid), 2) || oid.data[sizeof(sgx_oid)] != 2 ||
		    (arc = oid.data[oid.size - 1]) < 1 || arc > 18 || (seen & 1u << arc))
			return scone_err_set(SCONE_ERR_MALFORMED,
					     "PCK SGX extension: unknown or repeated TCB component");
		seen |= 1u << arc;
		if (arc == 18) {
			SCONE_TRY(octets(&item, "CPUSVN", p->cpusvn, 16));
		} else {
			SCONE_TRY(der_read_uint(&item, DER_INTEGER, "TCB component SVN", &svn));
			if (svn > (arc == 17 ? 0xffffu : 0xffu))
				return scone_err_set(SCONE_ERR_MALFORMED,
						     "PCK SGX extension: TCB component %u = %u out of range",
						     arc, svn);
			if (arc == 17)
				p->pcesvn = (uint16_t)svn;
			else
				p->comp_svn[arc - 1] = (uint8_t)svn;
		}
		SCONE_TRY(der_end(&item, "TCB component"));
	}
	if (seen != 0x7fffeu)
		return scone_err_set(SCONE_ERR_MALFORMED,
				     "PCK SGX extension: TCB lacks components (mask 0x%x)", seen);
	return SCONE_ERR_OK;
}

/* Configuration: SEQUENCE OF SEQUENCE { OID .7.N, BOOLEAN } (N = 1 dynamicPlatform, 2 cachedKeys, 3
 * smtEnabled). */
static enum scone_err parse_config(struct scone_rbuf *v, struct intel_pck *p)
{
	struct scone_rbuf seq, item, oid, b;
	enum pck_tristate *slot;

	SCONE_TRY(der_read(v, DER_SEQUENCE, "Configuration", &seq));
	while (scone_rbuf_left(&seq)) {
		SCONE_TRY(der_read(&seq, DER_SEQUENCE, "Configuration item", &item));
		SCONE_TRY(der_read(&item, DER_OID, "Configuration item id", &oid));
		SCONE_TRY(der_read(&item, DER_BOOLEAN, "Configuration item value", &b));
		if (!der_oid_under(&oid, sgx_oid, sizeof(sgx_oid), 2) || oid.data[sizeof(sgx_oid)] != 7 ||
		    b.size != 1)
			return scone_err_set(SCONE_ERR_MALFORMED,
					     "PCK SGX extension: malformed Configuration item");
		switch (oid.data[oid.size - 1]) {
		case 1:
			slot = &p->dynamic_platform;
			break;
		case 2:
			slot = &p->cached_keys;
			break;
		case 3:
			slot = &p->smt_enabled;
			break;
		default:
			slot = NULL;
			break; /* a later addition: ignored */
		}
		if (slot)
			*slot = b.data[0] ? PCK_YES : PCK_NO;
	}
	return SCONE_ERR_OK;
}

static enum scone_err parse_item(struct scone_rbuf *item, struct intel_pck *p, uint32_t *seen)
{
	struct scone_rbuf oid;
	uint8_t arc;

	SCONE_TRY(der_read(item, DER_OID, "item id", &oid));
	if (!der_oid_under(&oid, sgx_oid, sizeof(sgx_oid), 1))
		return SCONE_ERR_OK; /* not ours to read */
	arc = oid.data[oid.size - 1];
	if (arc >= 1 && arc <= 5) {
		if (*seen & 1u << (arc - 1))
			return scone_err_set(SCONE_ERR_MALFORMED, "PCK SGX extension: item %u repeated", arc);
		*seen |= 1u << (arc - 1);
	}
	switch (arc) {
	case 1:
		return octets(item, "PPID", p->ppid, 16);
	case 2:
		return parse_tcb(item, p);
	case 3:
		return octets(item, "PCE-ID", p->pceid, 2);
	case 4:
		return octets(item, "FMSPC", p->fmspc, 6);
	case 5:
		return der_read_uint(item, DER_ENUMERATED, "SGX type", &p->sgx_type);
	case 6:
		p->has_platform_instance = true;
		return octets(item, "PlatformInstanceID", p->platform_instance, 16);
	case 7:
		return parse_config(item, p);
	default:
		return SCONE_ERR_OK;
	}
}

enum scone_err intel_pck_parse(X509 *pck, struct intel_pck *p)
{
	struct scone_rbuf ext, seq, item;
	uint32_t seen = 0;
	bool present;

	memset(p, 0, sizeof(*p));
	p->dynamic_platform = p->cached_keys = p->smt_enabled = PCK_UNKNOWN;
	SCONE_TRY(x509_ext_value(pck, "1.2.840.113741.1.13.1", "PCK certificate", &ext, &present));
	if (!present)
		return scone_err_set(SCONE_ERR_MALFORMED,
				     "PCK certificate: no SGX extension (1.2.840.113741.1.13.1)");
	ext.what = "PCK SGX extension";
	SCONE_TRY(der_read(&ext, DER_SEQUENCE, "extension", &seq));
	SCONE_TRY(der_end(&ext, "extension"));
	while (scone_rbuf_left(&seq)) {
		SCONE_TRY(der_read(&seq, DER_SEQUENCE, "item", &item));
		SCONE_TRY(parse_item(&item, p, &seen));
	}
	if ((seen & (F_TCB | F_PCEID | F_FMSPC | F_TYPE)) != (F_TCB | F_PCEID | F_FMSPC | F_TYPE))
		return scone_err_set(SCONE_ERR_MALFORMED,
				     "PCK SGX extension: TCB, PCE-ID, FMSPC or SGX type missing");
	return SCONE_ERR_OK;
}
