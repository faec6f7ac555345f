/*
 * fuzz_snp.c - libFuzzer target for SEV-SNP evidence: a report, optionally
 * followed by a certificate table (src/attest: snp_report.c, amd_cert.c,
 * x509chain.c, attest_snp.c). A report that parses must hold the parser's
 * promises (known version, VCEK or VLEK, certificates inside the input);
 * the table's size function must agree; then the snp verifier runs (see
 * fuzz_attest_common.h). Seeds: fuzz/corpus/snp (vectors 09 and 11, and 11
 * with its VCEK in a certificate table).
 */
#include "attest/snp_report.h"
#include "fuzz_attest_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_blob(const struct snp_blob *b, const uint8_t *data, size_t size)
{
	if (b->data)
		CHECK_INSIDE(b->data, b->size, data, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct snp_report r;
	struct snp_certs c;
	size_t used;

	if (snp_report_parse(data, size, false, &r, &c) == SCONE_ERR_OK) {
		CHECK(r.version >= 2 && r.version <= 5);
		CHECK(r.key == SNP_KEY_VCEK || r.key == SNP_KEY_VLEK);
		CHECK(r.raw == data);
		check_blob(&c.vcek, data, size);
		check_blob(&c.vlek, data, size);
		check_blob(&c.ask, data, size);
		check_blob(&c.ark, data, size);
		CHECK(c.present == (size > SNP_REPORT_SIZE));
		if (c.present) {
			CHECK(snp_cert_table_size(data + SNP_REPORT_SIZE, size - SNP_REPORT_SIZE, &used) ==
			      SCONE_ERR_OK);
			CHECK(used == size - SNP_REPORT_SIZE);
		}
	}
	if (size > SNP_REPORT_SIZE &&
	    snp_cert_table_size(data + SNP_REPORT_SIZE, size - SNP_REPORT_SIZE, &used) == SCONE_ERR_OK)
		CHECK(used <= size - SNP_REPORT_SIZE);
	fuzz_verify("snp", data, size, 1735689600); /* 2025-01-01 */
	scone_err_clear();
	return 0;
}
