/* amd_cert.c - VCEK/VLEK extensions and SNP product lines (see amd_cert.h). */
#include "attest/amd_cert.h"

#include <stdio.h>
#include <string.h>

#include "attest/der.h"
#include "attest/x509chain.h"

static const char *const spl_oid[SPL_COUNT] = {
    "1.3.6.1.4.1.3704.1.3.1", /* blSPL */
    "1.3.6.1.4.1.3704.1.3.2", /* teeSPL */
    "1.3.6.1.4.1.3704.1.3.3", /* snpSPL */
    "1.3.6.1.4.1.3704.1.3.8", /* ucodeSPL */
    "1.3.6.1.4.1.3704.1.3.9", /* fmcSPL (Turin) */
};

static enum scone_err product_name(X509 *c, struct amd_cert_ext *e)
{
	struct scone_rbuf v, s;
	bool present;

	SCONE_TRY(x509_ext_value(c, "1.3.6.1.4.1.3704.1.2", "VCEK productName", &v, &present));
	if (!present)
		return SCONE_ERR_OK;
	SCONE_TRY(der_read(&v, DER_IA5STRING, "productName", &s));
	SCONE_TRY(der_end(&v, "productName"));
	if (s.size == 0 || s.size >= sizeof(e->product) || memchr(s.data, 0, s.size))
		return scone_err_set(SCONE_ERR_MALFORMED, "VCEK productName: %zu bytes", s.size);
	memcpy(e->product, s.data, s.size);
	e->product[s.size] = '\0';
	return SCONE_ERR_OK;
}

/* hwID: the raw bytes (KDS certificates), or the same wrapped in a DER OCTET STRING. */
static enum scone_err hwid(X509 *c, struct amd_cert_ext *e)
{
	struct scone_rbuf v, s;
	bool present;

	SCONE_TRY(x509_ext_value(c, "1.3.6.1.4.1.3704.1.4", "VCEK hwID", &v, &present));
	if (!present)
		return SCONE_ERR_OK;
	if (v.size != 64 && v.size != 8) {
		SCONE_TRY(der_read(&v, DER_OCTET_STRING, "hwID", &s));
		SCONE_TRY(der_end(&v, "hwID"));
		v = s;
	}
	if (v.size != 64 && v.size != 8)
		return scone_err_set(SCONE_ERR_MALFORMED, "VCEK hwID: %zu bytes (64, or 8 on Turin)", v.size);
	memcpy(e->hwid, v.data, v.size);
	e->hwid_size = v.size;
	return SCONE_ERR_OK;
}

enum scone_err amd_cert_ext_parse(X509 *c, struct amd_cert_ext *e)
{
	memset(e, 0, sizeof(*e));
	SCONE_TRY(product_name(c, e));
	SCONE_TRY(hwid(c, e));
	for (int i = 0; i < SPL_COUNT; i++) {
		struct scone_rbuf v;
		uint32_t spl;
		bool present;
		SCONE_TRY(x509_ext_value(c, spl_oid[i], "VCEK TCB extension", &v, &present));
		if (!present)
			continue;
		SCONE_TRY(der_read_uint(&v, DER_INTEGER, spl_oid[i], &spl));
		SCONE_TRY(der_end(&v, spl_oid[i]));
		if (spl > 255)
			return scone_err_set(SCONE_ERR_MALFORMED, "VCEK %s: SPL %u out of range", spl_oid[i],
					     spl);
		e->has_spl[i] = true;
		e->spl[i] = (uint8_t)spl;
	}
	return SCONE_ERR_OK;
}

void amd_tcb_split(enum amd_product p, uint64_t tcb, uint8_t spl[SPL_COUNT])
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(tcb >> (8 * i));
	if (p == AMD_TURIN) {
		spl[SPL_FMC] = b[0], spl[SPL_BL] = b[1], spl[SPL_TEE] = b[2], spl[SPL_SNP] = b[3];
	} else {
		spl[SPL_FMC] = 0, spl[SPL_BL] = b[0], spl[SPL_TEE] = b[1], spl[SPL_SNP] = b[6];
	}
	spl[SPL_UCODE] = b[7];
}

static bool product_by_name(const char *name, enum amd_product *out)
{
	for (int p = 0; p < AMD_PRODUCTS; p++) {
		size_t n = strlen(amd_product_name((enum amd_product)p));
		if (strncmp(name, amd_product_name((enum amd_product)p), n) == 0 &&
		    (name[n] == '\0' || name[n] == '-')) {
			*out = (enum amd_product)p;
			return true;
		}
	}
	return false;
}

/* Family 19h: Milan models 00h-0Fh, Genoa 10h-1Fh and A0h-AFh; family 1Ah: Turin 00h-11h. */
static bool product_by_cpuid(uint8_t fam, uint8_t mod, enum amd_product *out)
{
	if (fam == 0x19 && mod <= 0x0f)
		*out = AMD_MILAN;
	else if (fam == 0x19 && ((mod >= 0x10 && mod <= 0x1f) || (mod >= 0xa0 && mod <= 0xaf)))
		*out = AMD_GENOA;
	else if (fam == 0x1a && mod <= 0x11)
		*out = AMD_TURIN;
	else
		return false;
	return true;
}

enum scone_err amd_product_of(const struct snp_report *r, const struct amd_cert_ext *ext,
			      enum amd_product *out)
{
	enum amd_product by_name;
	bool named = ext && ext->product[0] && product_by_name(ext->product, &by_name);

	if (r->has_cpuid) {
		if (!product_by_cpuid(r->cpuid_fam, r->cpuid_mod, out))
			return scone_err_set(
			    SCONE_ERR_UNSUPPORTED,
			    "SNP report: CPUID family 0x%02x model 0x%02x is not Milan, Genoa or Turin",
			    r->cpuid_fam, r->cpuid_mod);
		if (named && by_name != *out)
			return scone_err_set(SCONE_ERR_UNTRUSTED,
					     "the certificate is for %s, the report's CPU is %s",
					     ext->product, amd_product_name(*out));
		return SCONE_ERR_OK;
	}
	if (!named)
		return scone_err_set(
		    SCONE_ERR_UNSUPPORTED,
		    "SNP report version %u carries no CPUID and the certificate names no known product",
		    r->version);
	*out = by_name;
	return SCONE_ERR_OK;
}
