/*
 * test_attest_hw.c - unit tests for the hardware evidence types of
 * src/attest (sgx, tdx, snp): every recorded vector of
 * ../shared/testdata/attestation checked field by field against its .txt;
 * every negative variant those files name (bit flips in the signed ranges,
 * the malformed VCEKs, a look-alike root, truncation, trailing bytes);
 * collateral missing, stale, tampered; the TCB level rules; SNP reports of
 * versions 3 and 5 and of Genoa and Turin, signed under generated
 * anchors (no such recorded report exists); and the collection paths
 * against directory trees that behave like configfs-tsm and Gramine's
 * /dev/attestation.
 *
 * The vectors are read relative to the repository root (CI has shared/ at
 * ../shared); SCONE_ATTEST_VECTORS overrides the directory.
 */
#include "helpers.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attest/amd_cert.h"
#include "attest/attest.h"
#include "attest/attest_types.h"
#include "attest/collateral.h"
#include "attest/der.h"
#include "attest/intel_pck.h"
#include "attest/intel_quote.h"
#include "attest/intel_tcb.h"
#include "attest/intel_verify.h"
#include "attest/roots.h"
#include "attest/sigcheck.h"
#include "attest/snp_report.h"
#include "attest/tsm.h"
#include "attest/x509chain.h"
#include "cas/attest_gate.h"
#include "lib/crypto.h"
#include "lib/hex.h"
#include "lib/rfc3339.h"

#define TEST(name) static void name(void **state __attribute__((unused)))
#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

#define HEXA "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HEXA_HALF "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define V01 "01-sgx-v3-phala/"
#define V03 "03-tdx-v4-phala/"
#define V07 "07-tdx-v5-gotdx/"
#define V09 "09-snp-v2-gosev-milan/"
#define V11 "11-snp-v2-trustee-milan/"

/* ---------------------------------------------------------------- helpers */

static char tmp_root[256];

static const char *vectors(void)
{
	const char *v = getenv("SCONE_ATTEST_VECTORS");
	return v && *v ? v : "../shared/testdata/attestation";
}

static uint8_t *slurp(const char *rel, size_t *size)
{
	char path[512];
	uint8_t *data = NULL;

	snprintf(path, sizeof(path), "%s/%s", vectors(), rel);
	if (collateral_read_file(path, 1u << 20, &data, size))
		fail_msg("cannot read vector %s: %s (run from the repository root with shared/ at ../shared)",
			 path, scone_err_detail());
	return data;
}

static int64_t T(const char *text)
{
	int64_t t = 0;

	assert_ok(scone_rfc3339_parse(text, "test time", &t));
	return t;
}

static void hex_eq(const uint8_t *got, size_t n, const char *want_hex)
{
	char hex[2 * 128 + 1];

	assert_true(n <= 128);
	scone_hex_encode(hex, sizeof(hex), got, n);
	assert_string_equal(hex, want_hex);
}

static void claim_eq(const struct scone_claims *c, const char *name, const char *want)
{
	const char *got = scone_claims_get(c, name);

	if (!got || strcmp(got, want) != 0)
		fail_msg("claim %s: got \"%s\", want \"%s\"", name, got ? got : "(absent)", want);
}

/* err must be code and the detail must contain needle. */
static void expect_err(enum scone_err err, enum scone_err code, const char *needle)
{
	if (err != code || !strstr(scone_err_detail(), needle))
		fail_msg("got %s \"%s\", want %s \"%s\"", scone_errname(err), scone_err_detail(),
			 scone_errname(code), needle);
}

static bool claims_zero(const struct scone_claims *c)
{
	static const struct scone_claims zero;
	return memcmp(c, &zero, sizeof(zero)) == 0;
}

static void write_file(const char *path, const void *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, size), (ssize_t)size);
	close(fd);
}

static void make_dir(const char *path)
{
	assert_true(mkdir(path, 0755) == 0 || errno == EEXIST);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st, (void)flag, (void)f;
	return remove(p);
}

/* A fresh directory under tmp_root. */
static void new_dir(const char *name, char *out, size_t size)
{
	snprintf(out, size, "%s/%s", tmp_root, name);
	make_dir(out);
}

/* Import vector files (relative to the vectors) into the directory dir. */
static void import_into(const char *dir, const char *const *files)
{
	for (size_t i = 0; files[i]; i++) {
		struct scone_wbuf report;
		size_t size;
		uint8_t *data = slurp(files[i], &size);
		enum scone_err err;
		scone_wbuf_init(&report, 1u << 16, 0);
		err = scone_collateral_import(dir, data, size, &report);
		if (err)
			fail_msg("import %s: %s", files[i], scone_err_detail());
		scone_wbuf_free(&report);
		free(data);
	}
}

static void copy_file(const char *from, const char *to)
{
	uint8_t *data;
	size_t size;

	assert_ok(collateral_read_file(from, 1u << 20, &data, &size));
	write_file(to, data, size);
	free(data);
}

/* Directories of collateral built from the vectors (group setup). */
static char dir01[300], dir03[300], dir07[300], dir_amd[300];
static struct scone_collateral *loaded[4]; /* the same, loaded once (as CAS does) */

static int group_setup(void **state)
{
	static const char *const f01[] = {V01 "sgx_quote_collateral.json", NULL};
	static const char *const f03[] = {V03 "tdx_quote_collateral.json", NULL};
	static const char *const f07[] = {V07 "tcb_info_issuer_chain_from_phala.pem",
					  V07 "sample_tcbinfo_response_v5", NULL};
	static const char *const famd[] = {V09 "vcek.der", V11 "test-vcek.der", NULL};
	char from[400], to[400];

	(void)state;
	snprintf(tmp_root, sizeof(tmp_root), "/tmp/scone-attest-hw.XXXXXX");
	if (!mkdtemp(tmp_root))
		return -1;
	new_dir("c01", dir01, sizeof(dir01));
	new_dir("c03", dir03, sizeof(dir03));
	new_dir("c07", dir07, sizeof(dir07));
	new_dir("camd", dir_amd, sizeof(dir_amd));
	import_into(dir01, f01);
	import_into(dir03, f03);
	import_into(dir07, f07);
	import_into(dir_amd, famd);
	/* Vector 07 has no 2026 QE identity or CRLs: those of vector 03 (2025) stand in, stale at its date.
	 */
	for (const char *const *n =
		 (const char *const[]){"tdx-qe-identity.json", "pckcrl-platform.der", "rootca-crl.der", NULL};
	     *n; n++) {
		snprintf(from, sizeof(from), "%s/intel/%s", dir03, *n);
		snprintf(to, sizeof(to), "%s/intel/%s", dir07, *n);
		copy_file(from, to);
	}
	for (int i = 0; i < 4; i++)
		if (scone_collateral_load((const char *[]){dir01, dir03, dir07, dir_amd}[i], &loaded[i]))
			return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	for (int i = 0; i < 4; i++)
		scone_collateral_free(loaded[i]);
	nftw(tmp_root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static const struct scone_collateral *loaded_for(const char *dir)
{
	const char *dirs[4] = {dir01, dir03, dir07, dir_amd};

	for (int i = 0; dir && i < 4; i++)
		if (strcmp(dir, dirs[i]) == 0)
			return loaded[i];
	return NULL;
}

/* Verify at time at with the collateral directory dir (NULL: none): the loaded one for the group's. */
static enum scone_err verify_at(const char *type, const uint8_t *ev, size_t size, const char *dir, int64_t at,
				bool padded, struct scone_claims *out)
{
	struct scone_verify_opts o = {.at = at, .collateral_dir = dir, .allow_padding = padded};

	o.collateral = loaded_for(dir);
	return scone_evidence_find(type)->verify(ev, size, &o, out);
}

/* ---------------------------------------------------------------- roots, time, DER */

TEST(test_pinned_roots)
{
	const struct attest_trust *t;
	uint8_t h[32];

	assert_ok(attest_trust_pinned(&t));
	assert_ok(x509_sha256(t->intel_root, h));
	hex_eq(h, 32, "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3");
	for (int p = 0; p < AMD_PRODUCTS; p++) {
		char cn[64], want[64];
		x509_cn(t->ark[p], cn, sizeof(cn));
		snprintf(want, sizeof(want), "ARK-%s", amd_product_name((enum amd_product)p));
		assert_string_equal(cn, want);
		assert_ok(
		    x509_verify_chain(t->ask[p], NULL, t->ark[p], T("2030-01-01T00:00:00Z"), false, "ASK"));
		assert_ok(
		    x509_verify_chain(t->asvk[p], NULL, t->ark[p], T("2030-01-01T00:00:00Z"), false, "ASVK"));
		/* an ASK does not chain to another product's ARK */
		expect_err(x509_verify_chain(t->ask[p], NULL, t->ark[(p + 1) % AMD_PRODUCTS],
					     T("2030-01-01T00:00:00Z"), false, "ASK"),
			   SCONE_ERR_UNTRUSTED, "ASK");
	}
	/* the ARKs expire: Milan 2045-10-22 */
	expect_err(x509_verify_chain(t->ask[AMD_MILAN], NULL, t->ark[AMD_MILAN], T("2046-01-01T00:00:00Z"),
				     false, "ASK"),
		   SCONE_ERR_EXPIRED, "expired on 2045-10-22");
}

TEST(test_rfc3339)
{
	char out[SCONE_RFC3339_SIZE];
	int64_t t;

	assert_int_equal(T("1970-01-01T00:00:00Z"), 0);
	assert_int_equal(T("2025-07-19T10:01:18Z"), 1752919278);
	assert_int_equal(T("2025-07-19T12:01:18.123+02:00"), 1752919278);
	assert_int_equal(T("2024-02-29T00:00:00z"), 1709164800);
	scone_rfc3339_format(1752919278, out);
	assert_string_equal(out, "2025-07-19T10:01:18Z");
	for (const char *const *bad =
		 (const char *const[]){"2025-02-29T00:00:00Z", "2025-07-19 10:01:18Z", "2025-07-19T10:01:18",
				       "2025-13-01T00:00:00Z", "2025-07-19T24:00:00Z", "1969-12-31T23:59:59Z",
				       "2025-07-19T10:01:18.Z", "2025-07-19T10:01:18Zx", "", NULL};
	     *bad; bad++)
		expect_err(scone_rfc3339_parse(*bad, "t", &t), SCONE_ERR_INVALID, "RFC 3339");
}

TEST(test_der_reader)
{
	static const uint8_t long_form_short[] = {0x04, 0x81, 0x05, 1, 2, 3, 4, 5};
	static const uint8_t indefinite[] = {0x30, 0x80, 0, 0};
	static const uint8_t negative[] = {0x02, 0x01, 0x80};
	static const uint8_t padded[] = {0x02, 0x02, 0x00, 0x05};
	static const uint8_t ok[] = {0x02, 0x02, 0x00, 0x85};
	static const uint8_t truncated[] = {0x04, 0x05, 1, 2};
	struct scone_rbuf r, c;
	uint32_t v;

	scone_rbuf_init(&r, long_form_short, sizeof(long_form_short), "t");
	expect_err(der_read(&r, DER_OCTET_STRING, "x", &c), SCONE_ERR_MALFORMED, "non-minimal");
	scone_rbuf_init(&r, indefinite, sizeof(indefinite), "t");
	expect_err(der_read(&r, DER_SEQUENCE, "x", &c), SCONE_ERR_MALFORMED, "length form");
	scone_rbuf_init(&r, negative, sizeof(negative), "t");
	expect_err(der_read_uint(&r, DER_INTEGER, "x", &v), SCONE_ERR_MALFORMED, "non-negative");
	scone_rbuf_init(&r, padded, sizeof(padded), "t");
	expect_err(der_read_uint(&r, DER_INTEGER, "x", &v), SCONE_ERR_MALFORMED, "non-minimal");
	scone_rbuf_init(&r, ok, sizeof(ok), "t");
	assert_ok(der_read_uint(&r, DER_INTEGER, "x", &v));
	assert_int_equal(v, 0x85);
	scone_rbuf_init(&r, truncated, sizeof(truncated), "t");
	expect_err(der_read(&r, DER_OCTET_STRING, "x", &c), SCONE_ERR_MALFORMED, "truncated");
	scone_rbuf_init(&r, ok, sizeof(ok), "t");
	expect_err(der_read(&r, DER_SEQUENCE, "x", &c), SCONE_ERR_MALFORMED, "DER tag 0x02");
}

/* ---------------------------------------------------------------- vector 01: SGX v3 */

TEST(test_sgx_v3_layout)
{
	size_t size;
	uint8_t *ev = slurp(V01 "sgx_quote", &size);
	struct intel_quote q;
	STACK_OF(X509) * chain;
	struct intel_pck pck;
	static const uint8_t comps[16] = {11, 11, 2, 2, 255, 1};
	uint8_t h[32], auth[32];

	assert_int_equal(size, 4600);
	assert_ok(intel_quote_parse(ev, size, false, &q));
	assert_int_equal(q.version, 3);
	assert_int_equal(q.tee_type, INTEL_TEE_SGX);
	assert_int_equal(q.qe_svn, 10);
	assert_int_equal(q.pce_svn, 15);
	hex_eq(q.user_data, 20, "3987622ee6968a54977c8626ef47123500000000");
	assert_int_equal(q.body_type, INTEL_BODY_SGX);
	assert_int_equal(q.signed_size, 432);
	assert_int_equal(q.size - 436, 4164); /* signature_data_len */
	assert_int_equal(q.size, size);
	hex_eq(q.body + SGX_R_CPUSVN, 16, "0b0b1a18ffff04000000000000000000");
	hex_eq(q.body + SGX_R_ATTRIBUTES, 16, "0500000000000000e700000000000000");
	/* QE auth data 00 01 .. 1f, QE report binding the attestation key */
	for (int i = 0; i < 32; i++)
		auth[i] = (uint8_t)i;
	assert_int_equal(q.qe_auth_size, 32);
	assert_memory_equal(q.qe_auth, auth, 32);
	hex_eq(q.qe_report + SGX_R_MRENCLAVE, 32,
	       "96b347a64e5a045e27369c26e6dcda51fd7c850e9b3a3a79e718f43261dee1e4");
	hex_eq(q.qe_report + SGX_R_MRSIGNER, 32,
	       "8c4f5775d796503e96137f77c68a829a0056ac8ded70140b081b094490c57bff");
	assert_int_equal(q.qe_report[SGX_R_ISVPRODID], 1);
	assert_int_equal(q.qe_report[SGX_R_ISVSVN], 10);
	hex_eq(q.qe_report + SGX_R_REPORTDATA, 32,
	       "c261bb882e542aa8d7f9e99a00efcb11cf2ee66fa9c6861f9230d3f803a275fd");
	assert_ok(sig_sha256_2(q.attest_key, 64, q.qe_auth, 32, h));
	assert_memory_equal(h, q.qe_report + SGX_R_REPORTDATA, 32);
	/* PCK chain: 3548 bytes of PEM ending with one NUL */
	assert_int_equal(q.pck_chain_size, 3548);
	assert_int_equal(q.pck_chain[q.pck_chain_size - 1], 0);
	assert_ok(x509_pem_chain(q.pck_chain, q.pck_chain_size, 3, "chain", &chain));
	assert_int_equal(sk_X509_num(chain), 3);
	assert_ok(intel_pck_parse(sk_X509_value(chain, 0), &pck));
	hex_eq(pck.fmspc, 6, "00a067110000");
	hex_eq(pck.pceid, 2, "0000");
	assert_int_equal(pck.sgx_type, 0);
	assert_int_equal(pck.pcesvn, 13);
	assert_memory_equal(pck.comp_svn, comps, 16);
	assert_int_equal(pck.smt_enabled, PCK_UNKNOWN); /* a Processor-CA certificate */
	sk_X509_pop_free(chain, X509_free);
	free(ev);
}

TEST(test_sgx_v3_claims)
{
	size_t size;
	uint8_t *ev = slurp(V01 "sgx_quote", &size);
	struct scone_claims c;
	struct scone_wbuf w;

	assert_ok(verify_at("sgx", ev, size, dir01, T("2025-07-01T00:00:00Z"), false, &c));
	assert_int_equal(c.type, SCONE_EVIDENCE_SGX);
	assert_int_equal(c.measurement_size, 32);
	hex_eq(c.measurement, 32, "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb");
	hex_eq(c.signer, 32, "815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6");
	hex_eq(c.platform_id, c.platform_id_size, "00a067110000");
	assert_memory_equal(c.report_data, "Hello, world!", 13);
	for (int i = 13; i < 64; i++)
		assert_int_equal(c.report_data[i], 0);
	assert_false(c.debug);
	assert_int_equal(c.tcb_status, SCONE_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED);
	assert_string_equal(c.advisories, "INTEL-SA-00289,INTEL-SA-00615");
	claim_eq(&c, "isvprodid", "0");
	claim_eq(&c, "isvsvn", "0");
	claim_eq(&c, "configsvn", "0");
	claim_eq(&c, "miscselect", "00000000");
	claim_eq(&c, "attributes", "0500000000000000e700000000000000");
	claim_eq(&c, "cpusvn", "0b0b1a18ffff04000000000000000000");
	claim_eq(&c, "pcesvn", "13");
	claim_eq(&c, "pceid", "0000");
	claim_eq(&c, "quote_version", "3");
	claim_eq(&c, "tcb_date", "2024-03-13T00:00:00Z");
	claim_eq(&c, "tcb_eval", "17");
	claim_eq(&c, "qe_status", "UpToDate");
	scone_wbuf_init(&w, 1u << 16, 0);
	assert_ok(scone_claims_to_json(&c, &w));
	assert_ok(scone_wbuf_u8(&w, 0));
	assert_non_null(strstr((char *)w.data, "\"type\":\"sgx\",\"mrenclave\":\"33d8736d"));
	assert_non_null(strstr((char *)w.data, "\"advisories\":[\"INTEL-SA-00289\",\"INTEL-SA-00615\"]"));
	assert_non_null(strstr((char *)w.data, "\"tcb_status\":\"ConfigurationAndSWHardeningNeeded\""));
	scone_wbuf_free(&w);
	free(ev);
}

/* The .txt's window: [2025-06-19T10:56:11Z, 2025-07-19T10:01:18Z). */
TEST(test_sgx_v3_window)
{
	size_t size;
	uint8_t *ev = slurp(V01 "sgx_quote", &size);
	struct scone_claims c;

	assert_ok(verify_at("sgx", ev, size, dir01, T("2025-06-19T10:56:11Z"), false, &c));
	assert_ok(verify_at("sgx", ev, size, dir01, T("2025-07-19T10:01:17Z"), false, &c));
	expect_err(verify_at("sgx", ev, size, dir01, T("2025-07-19T10:01:18Z"), false, &c), SCONE_ERR_EXPIRED,
		   "sgx-qe-identity.json");
	assert_true(claims_zero(&c));
	expect_err(verify_at("sgx", ev, size, dir01, T("2025-06-19T10:56:10Z"), false, &c), SCONE_ERR_EXPIRED,
		   "not yet issued");
	expect_err(verify_at("sgx", ev, size, dir01, T("2025-09-01T00:00:00Z"), false, &c), SCONE_ERR_EXPIRED,
		   "fetch https://");
	/* the PCK certificate expires 2030-09-20, its chain checks come before the collateral's */
	expect_err(verify_at("sgx", ev, size, dir01, T("2031-01-01T00:00:00Z"), false, &c), SCONE_ERR_EXPIRED,
		   "PCK certificate chain");
	free(ev);
}

/*
 * Change one bit of every byte in [from, to) (bit i % 8): the verification
 * must fail (and leave no claims). Returns how many failed with AUTH.
 */
static size_t flip_all(const char *type, const uint8_t *ev, size_t size, size_t from, size_t to,
		       const char *dir, int64_t at, bool padded)
{
	uint8_t *copy = malloc(size);
	struct scone_claims c;
	size_t auth = 0;

	assert_non_null(copy);
	for (size_t i = from; i < to; i++) {
		enum scone_err err;
		memcpy(copy, ev, size);
		copy[i] ^= (uint8_t)(1u << (i % 8));
		err = verify_at(type, copy, size, dir, at, padded, &c);
		if (err == SCONE_ERR_OK)
			fail_msg("%s: flipping a bit of byte %zu went unnoticed", type, i);
		assert_true(claims_zero(&c));
		auth += err == SCONE_ERR_AUTH;
	}
	free(copy);
	return auth;
}

TEST(test_sgx_v3_flips)
{
	size_t size;
	uint8_t *ev = slurp(V01 "sgx_quote", &size);
	int64_t at = T("2025-07-01T00:00:00Z");
	struct intel_quote q;
	size_t sig, qe;

	assert_ok(intel_quote_parse(ev, size, false, &q));
	/* signed by the attestation key: header and report body (the version and key type are refused as
	 * unknown) */
	assert_true(flip_all("sgx", ev, size, 0, 432, dir01, at, false) >= 400);
	sig = (size_t)(q.signature - ev);
	qe = (size_t)(q.qe_report - ev);
	/* the signature, the attestation key, the QE report and its signature, the QE auth data */
	assert_int_equal(flip_all("sgx", ev, size, sig, sig + 128, dir01, at, false), 128);
	assert_int_equal(flip_all("sgx", ev, size, qe, qe + 384 + 64, dir01, at, false), 448);
	flip_all("sgx", ev, size, (size_t)(q.qe_auth - ev), (size_t)(q.qe_auth - ev) + 32, dir01, at, false);
	/* the PCK chain text, sampled */
	for (size_t i = (size_t)(q.pck_chain - ev); i < size; i += 97)
		flip_all("sgx", ev, size, i, i + 1, dir01, at, false);
	free(ev);
}

TEST(test_sgx_v3_truncation_and_trailing)
{
	size_t size;
	uint8_t *ev = slurp(V01 "sgx_quote", &size), *big = calloc(1, SCONE_EVIDENCE_MAX + 16);
	int64_t at = T("2025-07-01T00:00:00Z");
	struct scone_claims c;

	assert_non_null(big);
	for (size_t n = 0; n < size; n++) {
		enum scone_err err = verify_at("sgx", ev, n, dir01, at, false, &c);
		if (err == SCONE_ERR_OK)
			fail_msg("a quote truncated to %zu bytes verified", n);
		assert_true(claims_zero(&c));
	}
	expect_err(verify_at("sgx", ev, 436, dir01, at, false, &c), SCONE_ERR_MALFORMED,
		   "truncated at byte 436 reading signature data (4164 bytes needed, 0 left)");
	expect_err(verify_at("sgx", ev, 434, dir01, at, false, &c), SCONE_ERR_MALFORMED,
		   "reading signature_data_len");
	memcpy(big, ev, size);
	big[size] = 0x01;
	expect_err(verify_at("sgx", big, size + 1, dir01, at, false, &c), SCONE_ERR_MALFORMED,
		   "1 bytes after the end of the signature data at byte 4600");
	expect_err(verify_at("sgx", big, size + 1, dir01, at, true, &c), SCONE_ERR_MALFORMED,
		   "not zero padding");
	big[size] = 0;
	expect_err(verify_at("sgx", big, size + 8, dir01, at, false, &c), SCONE_ERR_MALFORMED,
		   "8 bytes after");
	assert_ok(verify_at("sgx", big, size + 8, dir01, at, true, &c));
	expect_err(verify_at("sgx", big, SCONE_EVIDENCE_MAX + 1, dir01, at, true, &c), SCONE_ERR_TOO_LARGE,
		   "at most");
	/* signature_data_len larger than what follows, and smaller than what it holds */
	memcpy(big, ev, size);
	scone_put_le32(big + 432, 4165);
	expect_err(verify_at("sgx", big, size, dir01, at, false, &c), SCONE_ERR_MALFORMED, "truncated");
	scone_put_le32(big + 432, 4163);
	expect_err(verify_at("sgx", big, size, dir01, at, false, &c), SCONE_ERR_MALFORMED, "truncated");
	free(big);
	free(ev);
}

TEST(test_sgx_v3_wrong_type)
{
	size_t size;
	uint8_t *ev = slurp(V01 "sgx_quote", &size);
	struct scone_claims c;

	expect_err(verify_at("tdx", ev, size, dir01, T("2025-07-01T00:00:00Z"), false, &c), SCONE_ERR_INVALID,
		   "an SGX quote, not a TDX quote");
	expect_err(verify_at("snp", ev, size, dir01, T("2025-07-01T00:00:00Z"), false, &c),
		   SCONE_ERR_UNSUPPORTED, "version");
	free(ev);
}

/* ---------------------------------------------------------------- generated certificates */

static EVP_PKEY *gen_key(const char *what)
{
	EVP_PKEY *k = strcmp(what, "RSA") == 0 ? EVP_RSA_gen(2048) : EVP_EC_gen(what);

	assert_non_null(k);
	return k;
}

struct ext {
	const char *oid;
	const uint8_t *value; /* the bytes inside extnValue */
	size_t size;
};

/* A certificate for key, named by its subject fields, signed by issuer (NULL: self-signed with key). */
static X509 *make_cert(const char *subject, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, bool ca,
		       long serial, const struct ext *exts, size_t n_exts)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	X509V3_CTX v3;
	X509_EXTENSION *e;

	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)subject, -1, -1, 0);
	if (strncmp(subject, "Intel", 5) == 0) {
		X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
					   (const unsigned char *)"Intel Corporation", -1, -1, 0);
		X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC, (const unsigned char *)"US", -1, -1, 0);
	}
	X509_set_subject_name(x, name);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
	X509_NAME_free(name);
	ASN1_TIME_set(X509_getm_notBefore(x), (time_t)T("2020-01-01T00:00:00Z"));
	ASN1_TIME_set(X509_getm_notAfter(x), (time_t)T("2040-01-01T00:00:00Z"));
	X509_set_pubkey(x, key);
	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
				ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	e = X509V3_EXT_conf_nid(NULL, &v3, NID_key_usage,
				ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	e = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_key_identifier, "hash");
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	e = X509V3_EXT_conf_nid(NULL, &v3, NID_authority_key_identifier, "keyid:always");
	X509_add_ext(x, e, -1);
	X509_EXTENSION_free(e);
	for (size_t i = 0; i < n_exts; i++) {
		ASN1_OBJECT *obj = OBJ_txt2obj(exts[i].oid, 1);
		ASN1_OCTET_STRING *v = ASN1_OCTET_STRING_new();
		ASN1_OCTET_STRING_set(v, exts[i].value, (int)exts[i].size);
		e = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, v);
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
		ASN1_OCTET_STRING_free(v);
		ASN1_OBJECT_free(obj);
	}
	assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
	return x;
}

/* A CRL by issuer listing the serials, current [this_update, next_update]. */
static X509_CRL *make_crl(X509 *issuer, EVP_PKEY *key, const long *serials, size_t n, const char *this_update,
			  const char *next_update)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t = ASN1_TIME_new();

	X509_CRL_set_version(crl, 1);
	X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer));
	ASN1_TIME_set(t, (time_t)T(this_update));
	X509_CRL_set1_lastUpdate(crl, t);
	ASN1_TIME_set(t, (time_t)T(next_update));
	X509_CRL_set1_nextUpdate(crl, t);
	for (size_t i = 0; i < n; i++) {
		X509_REVOKED *r = X509_REVOKED_new();
		ASN1_INTEGER *s = ASN1_INTEGER_new();
		ASN1_INTEGER_set(s, serials[i]);
		X509_REVOKED_set_serialNumber(r, s);
		X509_REVOKED_set_revocationDate(r, t);
		X509_CRL_add0_revoked(crl, r);
		ASN1_INTEGER_free(s);
	}
	ASN1_TIME_free(t);
	assert_true(X509_CRL_sign(crl, key, EVP_sha256()) > 0);
	return crl;
}

static void write_crl(const char *path, X509_CRL *crl)
{
	unsigned char *der = NULL;
	int n = i2d_X509_CRL(crl, &der);

	assert_true(n > 0);
	write_file(path, der, (size_t)n);
	OPENSSL_free(der);
}

static void write_cert(const char *path, X509 *x)
{
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der);

	assert_true(n > 0);
	write_file(path, der, (size_t)n);
	OPENSSL_free(der);
}

/* A self-signed P-256 "Intel SGX Root CA" that is not Intel's (like the sample root of Intel's QVL). */
static X509 *lookalike_root(EVP_PKEY **key)
{
	*key = gen_key("P-256");
	return make_cert("Intel SGX Root CA", *key, NULL, NULL, true, 1, NULL, 0);
}

/* ---------------------------------------------------------------- look-alike roots */

/* Vector 01 with its PCK chain replaced by pem (the attestation key signs only [0, 432): the rest is
 * framing). */
static uint8_t *sgx_with_chain(const uint8_t *ev, size_t size, const char *pem, size_t *out_size)
{
	struct intel_quote q;
	size_t head, n = strlen(pem) + 1;
	uint8_t *out;

	assert_ok(intel_quote_parse(ev, size, false, &q));
	head = (size_t)(q.pck_chain - ev);
	out = malloc(head + n);
	assert_non_null(out);
	memcpy(out, ev, head);
	memcpy(out + head, pem, n);
	scone_put_le32(out + head - 4, (uint32_t)n);
	scone_put_le32(out + 432, (uint32_t)(head + n - 436));
	*out_size = head + n;
	return out;
}

static char *chain_pem(STACK_OF(X509) * chain, X509 *replace_root)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *out;
	long n;

	for (int i = 0; i < sk_X509_num(chain); i++)
		PEM_write_bio_X509(b, i == 2 && replace_root ? replace_root : sk_X509_value(chain, i));
	n = BIO_get_mem_data(b, &p);
	out = strndup(p, (size_t)n);
	BIO_free(b);
	return out;
}

TEST(test_sgx_lookalike_root)
{
	size_t size, n;
	uint8_t *ev = slurp(V01 "sgx_quote", &size), *forged;
	const struct attest_trust *pinned;
	struct attest_trust fake;
	struct scone_verify_opts o = {.at = T("2025-07-01T00:00:00Z"), .collateral_dir = dir01};
	struct scone_claims c;
	struct intel_quote q;
	STACK_OF(X509) * chain;
	EVP_PKEY *key;
	X509 *root = lookalike_root(&key);
	char *pem;

	/* a verifier pinned to the look-alike refuses Intel's real quote */
	assert_ok(attest_trust_pinned(&pinned));
	fake = *pinned;
	fake.intel_root = root;
	expect_err(attest_sgx_verify_with(ev, size, &o, &fake, &c), SCONE_ERR_UNTRUSTED,
		   "root is not the pinned");
	assert_true(claims_zero(&c));
	/* a quote whose chain ends in the look-alike is refused by the pinned verifier */
	assert_ok(intel_quote_parse(ev, size, false, &q));
	assert_ok(x509_pem_chain(q.pck_chain, q.pck_chain_size, 3, "chain", &chain));
	pem = chain_pem(chain, root);
	forged = sgx_with_chain(ev, size, pem, &n);
	expect_err(verify_at("sgx", forged, n, dir01, o.at, false, &c), SCONE_ERR_UNTRUSTED,
		   "root is not the pinned");
	free(forged);
	free(pem);
	/* the same chain rewritten unchanged still verifies: the framing is right */
	pem = chain_pem(chain, NULL);
	forged = sgx_with_chain(ev, size, pem, &n);
	assert_ok(verify_at("sgx", forged, n, dir01, o.at, false, &c));
	free(forged);
	free(pem);
	/* a chain of two (no root) and text after the last certificate are refused */
	X509_free(sk_X509_pop(chain));
	pem = chain_pem(chain, NULL);
	forged = sgx_with_chain(ev, size, pem, &n);
	expect_err(verify_at("sgx", forged, n, dir01, o.at, false, &c), SCONE_ERR_MALFORMED,
		   "2 certificates, not 3");
	free(forged);
	free(pem);
	X509_free(sk_X509_pop(chain)); /* one certificate (found by fuzz_sgx: it crashed the CN checks) */
	pem = chain_pem(chain, NULL);
	forged = sgx_with_chain(ev, size, pem, &n);
	expect_err(verify_at("sgx", forged, n, dir01, o.at, false, &c), SCONE_ERR_MALFORMED,
		   "1 certificates, not 3");
	free(forged);
	free(pem);
	sk_X509_pop_free(chain, X509_free);
	X509_free(root);
	EVP_PKEY_free(key);
	free(ev);
}

TEST(test_pem_chain_strict)
{
	const char *cert = attest_pem_intel_root;
	char buf[4096];
	STACK_OF(X509) *chain = NULL;

	snprintf(buf, sizeof(buf), "%s", cert);
	assert_ok(x509_pem_chain((const uint8_t *)buf, strlen(buf) + 1, 3, "c", &chain)); /* one NUL */
	sk_X509_pop_free(chain, X509_free);
	expect_err(x509_pem_chain((const uint8_t *)buf, strlen(buf) + 2, 3, "c", &chain), SCONE_ERR_MALFORMED,
		   "unexpected bytes");
	snprintf(buf, sizeof(buf), "%sX", cert);
	expect_err(x509_pem_chain((const uint8_t *)buf, strlen(buf), 3, "c", &chain), SCONE_ERR_MALFORMED,
		   "unexpected bytes");
	snprintf(buf, sizeof(buf), "junk%s", cert);
	expect_err(x509_pem_chain((const uint8_t *)buf, strlen(buf), 3, "c", &chain), SCONE_ERR_MALFORMED,
		   "unexpected bytes at offset 0");
	snprintf(buf, sizeof(buf), "%s%s%s%s", cert, cert, cert, cert);
	expect_err(x509_pem_chain((const uint8_t *)buf, strlen(buf), 3, "c", &chain), SCONE_ERR_MALFORMED,
		   "more than 3");
	snprintf(buf, sizeof(buf), "%.*s", (int)strlen(cert) - 30, cert);
	expect_err(x509_pem_chain((const uint8_t *)buf, strlen(buf), 3, "c", &chain), SCONE_ERR_MALFORMED,
		   "no END");
	expect_err(x509_pem_chain((const uint8_t *)"", 0, 3, "c", &chain), SCONE_ERR_MALFORMED,
		   "no certificate");
}

/* ---------------------------------------------------------------- collateral refusals */

/* A copy of the Intel files of base without the file drop (NULL: all). */
static void dir_variant(const char *base, const char *name, const char *drop, char *out, size_t size)
{
	char from[600], to[600];
	DIR *d;
	struct dirent *de;

	new_dir(name, out, size);
	snprintf(to, sizeof(to), "%s/intel", out);
	make_dir(to);
	snprintf(from, sizeof(from), "%s/intel", base);
	d = opendir(from);
	assert_non_null(d);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || (drop && strcmp(de->d_name, drop) == 0))
			continue;
		snprintf(from, sizeof(from), "%s/intel/%s", base, de->d_name);
		snprintf(to, sizeof(to), "%s/intel/%s", out, de->d_name);
		copy_file(from, to);
	}
	closedir(d);
}

TEST(test_sgx_collateral_refusals)
{
	static const struct {
		const char *drop, *needle;
		enum scone_err code;
	} cases[] = {
	    {"rootca-crl.der", "IntelSGXRootCA.der", SCONE_ERR_NOT_FOUND},
	    {"pckcrl-processor.der", "pckcrl?ca=processor&encoding=der", SCONE_ERR_NOT_FOUND},
	    {"sgx-tcbinfo-00a067110000.json", "sgx/certification/v4/tcb?fmspc=00a067110000",
	     SCONE_ERR_NOT_FOUND},
	    {"sgx-qe-identity.json", "sgx/certification/v4/qe/identity", SCONE_ERR_NOT_FOUND},
	    {"tcb-signing-chain.pem", "tcb-signing-chain.pem is missing", SCONE_ERR_NOT_FOUND},
	};
	size_t size;
	uint8_t *ev = slurp(V01 "sgx_quote", &size), *doc;
	int64_t at = T("2025-07-01T00:00:00Z");
	struct scone_claims c;
	char dir[400], path[600], other[600];
	size_t doc_size;

	expect_err(verify_at("sgx", ev, size, NULL, at, false, &c), SCONE_ERR_NOT_FOUND, "--collateral DIR");
	expect_err(verify_at("sgx", ev, size, "/nonexistent/collateral", at, false, &c), SCONE_ERR_NOT_FOUND,
		   "does not exist");
	expect_err(verify_at("sgx", ev, size, dir03, at, false, &c), SCONE_ERR_NOT_FOUND,
		   "pckcrl?ca=processor");
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		char name[16];
		snprintf(name, sizeof(name), "drop%zu", i);
		dir_variant(dir01, name, cases[i].drop, dir, sizeof(dir));
		expect_err(verify_at("sgx", ev, size, dir, at, false, &c), cases[i].code, cases[i].needle);
		assert_true(claims_zero(&c));
	}
	/* a tampered TCB info: one digit of its content changed */
	dir_variant(dir01, "tampered", NULL, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/intel/sgx-tcbinfo-00a067110000.json", dir);
	assert_ok(collateral_read_file(path, 1u << 20, &doc, &doc_size));
	assert_non_null(strstr((char *)doc, "\"pcesvn\":13"));
	strstr((char *)doc, "\"pcesvn\":13")[10] = '2';
	write_file(path, doc, doc_size);
	free(doc);
	expect_err(verify_at("sgx", ev, size, dir, at, false, &c), SCONE_ERR_AUTH,
		   "tcbInfo: the signature does not verify");
	assert_non_null(strstr(scone_err_detail(), "sgx-tcbinfo-00a067110000.json"));
	/* a TCB info filed under another FMSPC */
	dir_variant(dir01, "renamed", NULL, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/intel/sgx-tcbinfo-00a067110000.json", dir);
	snprintf(other, sizeof(other), "%s/intel/sgx-tcbinfo-00a067110001.json", dir);
	assert_int_equal(rename(path, other), 0);
	expect_err(verify_at("sgx", ev, size, dir, at, false, &c), SCONE_ERR_NOT_FOUND, "fmspc=00a067110000");
	free(ev);
}

TEST(test_collateral_describe)
{
	struct scone_collateral *c;
	struct scone_wbuf w;

	assert_ok(scone_collateral_load(dir01, &c));
	scone_wbuf_init(&w, 1u << 16, 0);
	assert_ok(scone_collateral_describe(c, T("2025-07-01T00:00:00Z"), &w));
	assert_ok(scone_wbuf_u8(&w, 0));
	assert_non_null(strstr((char *)w.data,
			       "intel/sgx-tcbinfo-00a067110000.json: SGX TCB info, FMSPC 00a067110000, "
			       "issued 2025-06-19T10:56:11Z, next update 2025-07-19T10:56:11Z: current"));
	assert_non_null(strstr((char *)w.data, "intel/tdx-qe-identity.json: missing: https://"));
	assert_non_null(strstr((char *)w.data, "intel/rootca-crl.der: CRL"));
	scone_wbuf_free(&w);
	scone_wbuf_init(&w, 1u << 16, 0);
	assert_ok(scone_collateral_describe(c, T("2025-08-01T00:00:00Z"), &w));
	assert_ok(scone_wbuf_u8(&w, 0));
	assert_non_null(strstr((char *)w.data, "next update 2025-07-19T10:56:11Z: STALE"));
	scone_wbuf_free(&w);
	scone_collateral_free(c);
}

/* Revocation, with generated CAs and CRLs: the real vectors revoke nothing. */
TEST(test_revocation)
{
	EVP_PKEY *rk, *ck = gen_key("P-256"), *lk = gen_key("P-256"), *other = gen_key("P-256");
	X509 *root = lookalike_root(&rk);
	X509 *ca = make_cert("Intel SGX PCK Platform CA", ck, root, rk, true, 77, NULL, 0);
	X509 *leaf = make_cert("Intel SGX PCK Certificate", lk, ca, ck, false, 4242, NULL, 0);
	struct attest_trust trust = {.intel_root = root};
	struct scone_collateral *c;
	char dir[400], path[600];
	int64_t at = T("2025-07-01T00:00:00Z");
	X509_CRL *crl;

	new_dir("revocation", dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/intel", dir);
	make_dir(path);
	snprintf(path, sizeof(path), "%s/intel/rootca-crl.der", dir);
	crl = make_crl(root, rk, (const long[]){5}, 1, "2025-06-01T00:00:00Z", "2025-08-01T00:00:00Z");
	write_crl(path, crl);
	X509_CRL_free(crl);
	snprintf(path, sizeof(path), "%s/intel/pckcrl-platform.der", dir);
	crl = make_crl(ca, ck, (const long[]){1, 2}, 2, "2025-06-01T00:00:00Z", "2025-08-01T00:00:00Z");
	write_crl(path, crl);
	X509_CRL_free(crl);
	assert_ok(collateral_load_with(dir, &trust, &c));
	assert_ok(collateral_check_revocation(c, leaf, ca, at));
	expect_err(collateral_check_revocation(c, leaf, ca, T("2025-08-02T00:00:00Z")), SCONE_ERR_EXPIRED,
		   "IntelSGXRootCA.der");
	scone_collateral_free(c);
	/* the PCK certificate on the PCK CRL */
	crl = make_crl(ca, ck, (const long[]){1, 4242}, 2, "2025-06-01T00:00:00Z", "2025-08-01T00:00:00Z");
	write_crl(path, crl);
	X509_CRL_free(crl);
	assert_ok(collateral_load_with(dir, &trust, &c));
	expect_err(collateral_check_revocation(c, leaf, ca, at), SCONE_ERR_UNTRUSTED,
		   "PCK certificate is revoked");
	scone_collateral_free(c);
	/* a PCK CRL not signed by the CA */
	crl = make_crl(ca, other, NULL, 0, "2025-06-01T00:00:00Z", "2025-08-01T00:00:00Z");
	write_crl(path, crl);
	X509_CRL_free(crl);
	assert_ok(collateral_load_with(dir, &trust, &c));
	expect_err(collateral_check_revocation(c, leaf, ca, at), SCONE_ERR_UNTRUSTED,
		   "signature does not verify");
	scone_collateral_free(c);
	/* the CA on the Root CA CRL */
	snprintf(path, sizeof(path), "%s/intel/rootca-crl.der", dir);
	crl = make_crl(root, rk, (const long[]){77}, 1, "2025-06-01T00:00:00Z", "2025-08-01T00:00:00Z");
	write_crl(path, crl);
	X509_CRL_free(crl);
	assert_ok(collateral_load_with(dir, &trust, &c));
	expect_err(collateral_check_revocation(c, leaf, ca, at), SCONE_ERR_UNTRUSTED,
		   "intermediate CA is revoked");
	scone_collateral_free(c);
	/* a Root CA CRL signed by another key fails at load and is refused when needed */
	crl = make_crl(root, other, NULL, 0, "2025-06-01T00:00:00Z", "2025-08-01T00:00:00Z");
	write_crl(path, crl);
	X509_CRL_free(crl);
	assert_ok(collateral_load_with(dir, &trust, &c));
	expect_err(collateral_check_revocation(c, leaf, ca, at), SCONE_ERR_UNTRUSTED, "rootca-crl.der");
	scone_collateral_free(c);
	X509_free(leaf);
	X509_free(ca);
	X509_free(root);
	EVP_PKEY_free(rk);
	EVP_PKEY_free(ck);
	EVP_PKEY_free(lk);
	EVP_PKEY_free(other);
}

/* ---------------------------------------------------------------- vector 03: TDX v4 */

TEST(test_tdx_v4_layout)
{
	size_t size;
	uint8_t *ev = slurp(V03 "tdx_quote", &size);
	struct intel_quote q;
	STACK_OF(X509) * chain;
	struct intel_pck pck;
	char cn[64];
	static const uint8_t comps[16] = {3, 3, 2, 2, 4, 1, 0, 5};

	assert_int_equal(size, 5006);
	expect_err(intel_quote_parse(ev, size, false, &q), SCONE_ERR_MALFORMED, "70 bytes after");
	assert_ok(intel_quote_parse(ev, size, true, &q));
	assert_int_equal(q.version, 4);
	assert_int_equal(q.tee_type, INTEL_TEE_TDX);
	assert_int_equal(q.body_type, INTEL_BODY_TD10);
	assert_int_equal(q.signed_size, 632);
	assert_int_equal(q.size, 5006 - 70);
	assert_int_equal(q.size - 636, 4300); /* signature_data_len */
	hex_eq(q.user_data, 20, "889b7d6ff9df2405b240a830e73faf3d00000000");
	hex_eq(q.body + TD_R_SEAMATTRIBUTES, 8, "0000000000000000");
	assert_int_equal(q.qe_report[SGX_R_ISVPRODID], 2);
	assert_int_equal(q.qe_report[SGX_R_ISVSVN], 6);
	hex_eq(q.qe_report + SGX_R_MRENCLAVE, 32,
	       "e5a3a7b5d830c2953b98534c6c59a3a34fdc34e933f7f5898f0a85cf08846bca");
	hex_eq(q.qe_report + SGX_R_MRSIGNER, 32,
	       "dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5");
	assert_int_equal(q.qe_auth_size, 32);
	assert_int_equal(q.pck_chain_size, 3678);
	assert_ok(x509_pem_chain(q.pck_chain, q.pck_chain_size, 3, "chain", &chain));
	x509_cn(sk_X509_value(chain, 1), cn, sizeof(cn));
	assert_string_equal(cn, "Intel SGX PCK Platform CA");
	assert_ok(intel_pck_parse(sk_X509_value(chain, 0), &pck));
	hex_eq(pck.fmspc, 6, "b0c06f000000");
	assert_int_equal(pck.sgx_type, 1);
	assert_int_equal(pck.pcesvn, 11);
	assert_memory_equal(pck.comp_svn, comps, 16);
	assert_int_equal(pck.smt_enabled, PCK_YES);
	sk_X509_pop_free(chain, X509_free);
	free(ev);
}

TEST(test_tdx_v4_claims)
{
	size_t size;
	uint8_t *ev = slurp(V03 "tdx_quote", &size);
	struct scone_claims c;

	expect_err(verify_at("tdx", ev, size, dir03, T("2025-07-01T00:00:00Z"), false, &c),
		   SCONE_ERR_MALFORMED, "70 bytes after the end of the signature data at byte 4936");
	assert_ok(verify_at("tdx", ev, size, dir03, T("2025-07-01T00:00:00Z"), true, &c));
	assert_ok(verify_at("tdx", ev, size - 70, dir03, T("2025-07-01T00:00:00Z"), false, &c));
	assert_int_equal(c.type, SCONE_EVIDENCE_TDX);
	hex_eq(c.measurement, c.measurement_size,
	       "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b253887311"
	       "8b7");
	hex_eq(c.signer, c.signer_size,
	       "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
	       "000");
	hex_eq(c.platform_id, c.platform_id_size, "b0c06f000000");
	hex_eq(c.report_data, 64,
	       "9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9eca3efdbb481601c163cf52493d6e"
	       "44aed55d51ec39"
	       "b7e518fadb92c2b523f20");
	assert_false(c.debug);
	assert_int_equal(c.tcb_status, SCONE_TCB_UP_TO_DATE);
	assert_string_equal(c.advisories, "");
	claim_eq(&c, "tee_tcb_svn", "06010300000000000000000000000000");
	claim_eq(&c, "mrseam",
		 "5b38e33a6487958b72c3c12a938eaa5e3fd4510c51aeeab58c7d5ecee41d7c436489d6c8e4f92f160b7cad34207"
		 "b00c1");
	claim_eq(&c, "td_attributes", "0000001000000000");
	claim_eq(&c, "xfam", "e702060000000000");
	claim_eq(&c, "rtmr0",
		 "44c0197b39157fdd7a4dcc44767f9d6b0bb3977c7a8e347b8492f827fe9d9e5c48aca29b220b80b6a540cf994b9"
		 "bc9c0");
	claim_eq(&c, "rtmr1",
		 "0084452c01668329d4bc06acdf58a7205c26743304509973949e5619bf81a6a7aea8c323c173019b3093d54e579"
		 "e9378");
	claim_eq(&c, "rtmr2",
		 "d833feef2cd945148aa38ead2c53e9b7f138190aaaebfc551dccd829fc207aa3ba80b70870d7330733642e01d48"
		 "c3132");
	claim_eq(&c, "rtmr3",
		 "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
		 "00000");
	claim_eq(&c, "mrconfigid",
		 "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
		 "00000");
	claim_eq(&c, "mrowner",
		 "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
		 "00000");
	claim_eq(&c, "body_type", "2");
	claim_eq(&c, "quote_version", "4");
	claim_eq(&c, "pcesvn", "11");
	claim_eq(&c, "tdx_module", "TDX_01");
	claim_eq(&c, "tdx_module_status", "UpToDate");
	claim_eq(&c, "qe_status", "UpToDate");
	claim_eq(&c, "tcb_date", "2024-03-13T00:00:00Z");
	claim_eq(&c, "smt", "true");
	assert_null(scone_claims_get(&c, "mr_servicetd"));
	/* the .txt's window: [2025-06-19T10:32:27Z, 2025-07-19T10:00:35Z) */
	assert_ok(verify_at("tdx", ev, size, dir03, T("2025-06-19T10:32:27Z"), true, &c));
	assert_ok(verify_at("tdx", ev, size, dir03, T("2025-07-19T10:00:34Z"), true, &c));
	expect_err(verify_at("tdx", ev, size, dir03, T("2025-07-19T10:00:36Z"), true, &c), SCONE_ERR_EXPIRED,
		   "PCK CRL");
	expect_err(verify_at("tdx", ev, size, dir03, T("2025-06-19T10:32:26Z"), true, &c), SCONE_ERR_EXPIRED,
		   "tdx-qe-identity.json");
	/* an SGX verifier refuses it */
	expect_err(verify_at("sgx", ev, size, dir03, T("2025-07-01T00:00:00Z"), true, &c), SCONE_ERR_INVALID,
		   "a TDX quote, not an SGX quote");
	free(ev);
}

TEST(test_tdx_v4_flips_and_truncation)
{
	size_t size;
	uint8_t *ev = slurp(V03 "tdx_quote", &size);
	int64_t at = T("2025-07-01T00:00:00Z");
	struct scone_claims c;
	struct intel_quote q;

	size -= 70;
	assert_ok(intel_quote_parse(ev, size, false, &q));
	assert_true(flip_all("tdx", ev, size, 0, 632, dir03, at, false) >= 600);
	assert_int_equal(flip_all("tdx", ev, size, (size_t)(q.qe_report - ev),
				  (size_t)(q.qe_report - ev) + 448, dir03, at, false),
			 448);
	for (size_t n = 0; n < size; n += 7)
		assert_int_not_equal(verify_at("tdx", ev, n, dir03, at, false, &c), SCONE_ERR_OK);
	/* the inner certification data (type 6) must be filled exactly */
	scone_put_le32(ev + 636 + 130, scone_get_le32(ev + 636 + 130) - 1);
	expect_err(verify_at("tdx", ev, size, dir03, at, false, &c), SCONE_ERR_MALFORMED, "");
	free(ev);
}

/* ---------------------------------------------------------------- vector 07: TDX v5, body type 3 */

TEST(test_tdx_v5)
{
	size_t size, body_size;
	uint8_t *ev = slurp(V07 "quote_v5_sample.dat", &size), *body;
	int64_t at = T("2026-02-03T01:00:00Z");
	struct intel_quote q;
	STACK_OF(X509) * chain;
	struct intel_pck pck;
	struct tcb_info *ti = malloc(sizeof(*ti));
	struct tcb_result r;
	struct scone_claims c;
	char *text;
	size_t text_size;
	uint8_t sig[64];
	static const uint8_t comps[16] = {4, 4, 2, 2, 4, 1, 0, 5};

	assert_int_equal(size, 5006);
	assert_ok(intel_quote_parse(ev, size, true, &q));
	assert_int_equal(q.version, 5);
	assert_int_equal(q.body_type, INTEL_BODY_TD15);
	assert_int_equal(q.body_size, 648);
	assert_int_equal(q.signed_size, 702);
	assert_int_equal(scone_get_le32(ev + 50), 648);
	hex_eq(q.user_data, 20, "ba103c0e5dffa40351f9d5dd559888eb00000000");
	hex_eq(q.body + TD_R_TEE_TCB_SVN, 16, "0b010400000000000000000000000000");
	hex_eq(q.body + TD_R_MRSEAM, 48,
	       "7bf063280e94fb051f5dd7b1fc59ce9aac42bb961df8d44b709c9b0ff87a7b4df648657ba6d1189589feab1d5a3c9"
	       "a9d");
	hex_eq(q.body + TD_R_MRTD, 48,
	       "7348651a34b2d2d3462822e3a750ec6110125f36757c78480bbfc69cc0d21fb001a1ced3ee19747dda8f750c3bc8f"
	       "876");
	hex_eq(q.body + TD_R_RTMR0, 48,
	       "5c8daf76063a71ac8fcef4067564661fc682ed7944c7a5d21dbbced02f61ceff4ba0678c6aef3bdae8cbc614cec24"
	       "619");
	hex_eq(q.body + TD_R_RTMR0 + 48, 48,
	       "463acaace1b6e97c76e92e41fe312aa66f3fd4dad60ec7acf169859db0343e3d1e591646795cdc80fbc0ca5f7041d"
	       "253");
	hex_eq(q.body + TD_R_RTMR0 + 96, 48,
	       "6369b9c9a3b791ebcbdc5a0bb9536cfb57f50df2b393b33c8b29616d3568baa61f4b59dc6092e31ea8764bcbdfc69"
	       "f20");
	hex_eq(q.body + TD_R_REPORTDATA, 64,
	       "945eaacf5abc1f719d8666a942fda03d1edcb4490277396093dc5a5289ab9f1e094aed63060cd4a4933a4dd537ed1"
	       "255c9c79ecb3ed"
	       "82cd1b486233e31c25c3a");
	hex_eq(q.body + TD_R_TEE_TCB_SVN2, 16, "0d010400000000000000000000000000");
	hex_eq(q.body + TD_R_MRSERVICETD, 48,
	       "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
	       "000");
	hex_eq(q.body + TD_R_TDATTRIBUTES, 8, "0000001000000000");
	assert_int_equal(q.qe_report[SGX_R_ISVSVN], 7);
	assert_ok(x509_pem_chain(q.pck_chain, q.pck_chain_size, 3, "chain", &chain));
	assert_ok(intel_pck_parse(sk_X509_value(chain, 0), &pck));
	hex_eq(pck.fmspc, 6, "90c06f000000");
	assert_int_equal(pck.pcesvn, 13);
	assert_memory_equal(pck.comp_svn, comps, 16);
	sk_X509_pop_free(chain, X509_free);
	/*
	 * The chain (valid at 2026-02-03) and both signatures verify: the
	 * verification reaches the collateral, whose 2025 CRLs and TD_QE
	 * identity (all the vectors have) are stale in 2026.
	 */
	expect_err(verify_at("tdx", ev, size, dir07, at, true, &c), SCONE_ERR_EXPIRED, "PCK CRL");
	/* the signed range covers the TDX 1.5 fields: TEE_TCB_SVN2 and MR_SERVICETD, up to byte 702 */
	assert_int_equal(flip_all("tdx", ev, size, 54 + 584, 702, dir07, at, true), 702 - 638);
	assert_true(flip_all("tdx", ev, size, 0, 54 + 584, dir07, at, true) >= 600);
	/* the TCB level with the v5 TCB info (computed: 2024-11-13, UpToDate; module TDX_01, SVN 11) */
	body = slurp(V07 "sample_tcbinfo_response_v5", &body_size);
	assert_ok(collateral_signed_body(body, body_size, "tcbInfo", &text, &text_size, sig));
	assert_ok(intel_tcbinfo_parse(text, text_size, ti));
	assert_true(ti->tdx);
	assert_int_equal(ti->eval_number, 18);
	assert_ok(intel_tdx_module_check(ti, &q));
	assert_ok(intel_tcb_evaluate(ti, &pck, &q, NULL, &r));
	assert_int_equal(r.status, SCONE_TCB_UP_TO_DATE);
	assert_int_equal(r.module_status, SCONE_TCB_UP_TO_DATE);
	assert_string_equal(r.module_id, "TDX_01");
	assert_int_equal(r.tcb_date, T("2024-11-13T00:00:00Z"));
	free(text);
	free(body);
	free(ti);
	free(ev);
}

/* Body sizes that do not match the body type, and body types that do not match the TEE. */
TEST(test_tdx_v5_framing)
{
	size_t size;
	uint8_t *ev = slurp(V07 "quote_v5_sample.dat", &size);
	struct intel_quote q;

	scone_put_le32(ev + 50, 584);
	expect_err(intel_quote_parse(ev, size, true, &q), SCONE_ERR_MALFORMED, "body size 584");
	scone_put_le32(ev + 50, 648);
	ev[48] = 1;
	expect_err(intel_quote_parse(ev, size, true, &q), SCONE_ERR_MALFORMED, "does not fit TEE type");
	ev[48] = 4;
	expect_err(intel_quote_parse(ev, size, true, &q), SCONE_ERR_UNSUPPORTED, "body type 4");
	ev[48] = 3;
	ev[4] = 0x82;
	expect_err(intel_quote_parse(ev, size, true, &q), SCONE_ERR_UNSUPPORTED, "TEE type 0x00000082");
	ev[4] = 0x81;
	ev[2] = 3;
	expect_err(intel_quote_parse(ev, size, true, &q), SCONE_ERR_UNSUPPORTED, "attestation key type 3");
	ev[2] = 2;
	ev[12] ^= 1;
	expect_err(intel_quote_parse(ev, size, true, &q), SCONE_ERR_UNSUPPORTED, "not Intel's");
	ev[12] ^= 1;
	ev[0] = 6;
	expect_err(intel_quote_parse(ev, size, true, &q), SCONE_ERR_UNSUPPORTED, "version 6");
	free(ev);
}

/* ---------------------------------------------------------------- TCB levels and identities */

static void set_level(struct tcb_level *l, uint8_t sgx, uint16_t pcesvn, uint8_t tdx2,
		      enum scone_tcb_status s, const char *adv)
{
	memset(l, 0, sizeof(*l));
	memset(l->sgx, sgx, 16);
	l->pcesvn = pcesvn;
	l->tdx[0] = 5;
	l->tdx[2] = tdx2;
	l->status = s;
	l->date = T("2024-01-01T00:00:00Z");
	snprintf(l->advisories, sizeof(l->advisories), "%s", adv);
}

TEST(test_tcb_levels_sgx)
{
	struct tcb_info *ti = calloc(1, sizeof(*ti));
	struct intel_pck pck = {.pcesvn = 10};
	uint8_t body[TD15_REPORT_SIZE] = {0};
	struct intel_quote q = {
	    .version = 3, .tee_type = INTEL_TEE_SGX, .body_type = INTEL_BODY_SGX, .body = body};
	struct tcb_level qe = {.isvsvn = 1, .status = SCONE_TCB_UP_TO_DATE};
	struct tcb_result r;

	memset(pck.comp_svn, 5, 16);
	set_level(&ti->levels[0], 6, 10, 0, SCONE_TCB_UP_TO_DATE, "");
	set_level(&ti->levels[1], 5, 10, 0, SCONE_TCB_SW_HARDENING_NEEDED, "INTEL-SA-1");
	set_level(&ti->levels[2], 0, 0, 0, SCONE_TCB_OUT_OF_DATE, "INTEL-SA-1,INTEL-SA-9");
	ti->n_levels = 3;
	assert_ok(intel_tcb_evaluate(ti, &pck, &q, &qe, &r));
	assert_int_equal(r.status, SCONE_TCB_SW_HARDENING_NEEDED);
	assert_string_equal(r.advisories, "INTEL-SA-1");
	pck.pcesvn = 9; /* below the PCESVN of the first two levels */
	assert_ok(intel_tcb_evaluate(ti, &pck, &q, &qe, &r));
	assert_int_equal(r.status, SCONE_TCB_OUT_OF_DATE);
	assert_string_equal(r.advisories, "INTEL-SA-1,INTEL-SA-9");
	pck.pcesvn = 10;
	/* the QE's level converges: OutOfDate makes SWHardeningNeeded OutOfDate, advisories merge without
	 * repeats */
	qe.status = SCONE_TCB_OUT_OF_DATE;
	snprintf(qe.advisories, sizeof(qe.advisories), "INTEL-SA-1,INTEL-SA-2");
	assert_ok(intel_tcb_evaluate(ti, &pck, &q, &qe, &r));
	assert_int_equal(r.status, SCONE_TCB_OUT_OF_DATE);
	assert_string_equal(r.advisories, "INTEL-SA-1,INTEL-SA-2");
	ti->levels[1].status = SCONE_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED;
	assert_ok(intel_tcb_evaluate(ti, &pck, &q, &qe, &r));
	assert_int_equal(r.status, SCONE_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED);
	qe.status = SCONE_TCB_REVOKED;
	assert_ok(intel_tcb_evaluate(ti, &pck, &q, &qe, &r));
	assert_int_equal(r.status, SCONE_TCB_REVOKED);
	/* one component below every level: not supported */
	pck.comp_svn[7] = 0;
	memset(ti->levels[2].sgx, 1, 16);
	expect_err(intel_tcb_evaluate(ti, &pck, &q, &qe, &r), SCONE_ERR_UNTRUSTED, "TCB not supported");
	/* a TDX TCB info for an SGX quote */
	ti->tdx = true;
	expect_err(intel_tcb_evaluate(ti, &pck, &q, &qe, &r), SCONE_ERR_INVALID, "TCB info is for TDX");
	free(ti);
}

TEST(test_tcb_levels_tdx)
{
	struct tcb_info *ti = calloc(1, sizeof(*ti));
	struct intel_pck pck = {.pcesvn = 10};
	uint8_t body[TD15_REPORT_SIZE] = {0}, *tee = body + TD_R_TEE_TCB_SVN,
		*svn2 = body + TD_R_TEE_TCB_SVN2;
	struct intel_quote q = {
	    .version = 4, .tee_type = INTEL_TEE_TDX, .body_type = INTEL_BODY_TD10, .body = body};
	struct tdx_module *m = &ti->modules[0];
	struct tcb_result r;

	ti->tdx = true;
	memset(pck.comp_svn, 5, 16);
	set_level(&ti->levels[0], 5, 10, 3, SCONE_TCB_UP_TO_DATE, "");
	set_level(&ti->levels[1], 5, 10, 2, SCONE_TCB_OUT_OF_DATE, "INTEL-SA-7");
	ti->n_levels = 2;
	snprintf(m->id, sizeof(m->id), "TDX_01");
	m->levels[0] = (struct tcb_level){.isvsvn = 6, .status = SCONE_TCB_UP_TO_DATE};
	m->levels[1] = (struct tcb_level){.isvsvn = 2, .status = SCONE_TCB_OUT_OF_DATE};
	snprintf(m->levels[1].advisories, sizeof(m->levels[1].advisories), "INTEL-SA-3");
	m->n_levels = 2;
	ti->n_modules = 1;
	tee[0] = 6, tee[1] = 1, tee[2] = 3;
	assert_ok(intel_tdx_module_check(ti, &q));
	assert_ok(intel_tcb_evaluate(ti, &pck, &q, NULL, &r));
	assert_int_equal(r.status, SCONE_TCB_UP_TO_DATE);
	assert_string_equal(r.module_id, "TDX_01");
	/* the TDX level is the first one the TEE_TCB_SVN also meets (from byte 2 on when byte 1 is set) */
	tee[2] = 2;
	assert_ok(intel_tcb_evaluate(ti, &pck, &q, NULL, &r));
	assert_int_equal(r.status, SCONE_TCB_OUT_OF_DATE);
	assert_int_equal(r.sgx_status, SCONE_TCB_UP_TO_DATE);
	assert_string_equal(r.advisories, "INTEL-SA-7");
	tee[2] = 1;
	expect_err(intel_tcb_evaluate(ti, &pck, &q, NULL, &r), SCONE_ERR_UNTRUSTED, "TEE_TCB_SVN is below");
	/* an out-of-date module makes an up-to-date platform out of date */
	tee[0] = 4, tee[2] = 3;
	assert_ok(intel_tcb_evaluate(ti, &pck, &q, NULL, &r));
	assert_int_equal(r.status, SCONE_TCB_OUT_OF_DATE);
	assert_int_equal(r.module_status, SCONE_TCB_OUT_OF_DATE);
	assert_string_equal(r.advisories, "INTEL-SA-3");
	/* TDX 1.5: the same TD on an updated platform and module is advised to relaunch */
	q.body_type = INTEL_BODY_TD15;
	svn2[0] = 6, svn2[1] = 1, svn2[2] = 3;
	assert_ok(intel_tcb_evaluate(ti, &pck, &q, NULL, &r));
	assert_int_equal(r.status, SCONE_TCB_TD_RELAUNCH_ADVISED);
	svn2[0] = 5;
	assert_ok(intel_tcb_evaluate(ti, &pck, &q, NULL, &r));
	assert_int_equal(r.status, SCONE_TCB_OUT_OF_DATE);
	svn2[0] = 5, svn2[1] = 0; /* no module major: the latest level's TDX component 0 (5) applies */
	assert_ok(intel_tcb_evaluate(ti, &pck, &q, NULL, &r));
	assert_int_equal(r.status, SCONE_TCB_TD_RELAUNCH_ADVISED);
	q.body_type = INTEL_BODY_TD10;
	tee[0] = 1;
	expect_err(intel_tcb_evaluate(ti, &pck, &q, NULL, &r), SCONE_ERR_UNTRUSTED,
		   "TDX module SVN 1 is below");
	tee[0] = 6, tee[1] = 2;
	expect_err(intel_tcb_evaluate(ti, &pck, &q, NULL, &r), SCONE_ERR_UNTRUSTED, "no identity TDX_02");
	expect_err(intel_tdx_module_check(ti, &q), SCONE_ERR_UNTRUSTED, "no identity TDX_02");
	/* the module identity: MRSIGNERSEAM and SEAMATTRIBUTES */
	tee[1] = 1;
	body[TD_R_MRSIGNERSEAM] = 1;
	expect_err(intel_tdx_module_check(ti, &q), SCONE_ERR_UNTRUSTED, "MRSIGNERSEAM");
	body[TD_R_MRSIGNERSEAM] = 0;
	body[TD_R_SEAMATTRIBUTES + 3] = 1;
	expect_err(intel_tdx_module_check(ti, &q), SCONE_ERR_UNTRUSTED, "SEAMATTRIBUTES");
	body[TD_R_SEAMATTRIBUTES + 3] = 0;
	tee[1] = 0; /* TEE_TCB_SVN[1] = 0: tdxModule, and all 16 components compared */
	expect_err(intel_tdx_module_check(ti, &q), SCONE_ERR_UNTRUSTED, "no tdxModule");
	ti->has_module = true;
	assert_ok(intel_tdx_module_check(ti, &q));
	assert_ok(intel_tcb_evaluate(ti, &pck, &q, NULL, &r));
	assert_int_equal(r.status, SCONE_TCB_UP_TO_DATE);
	tee[0] = 4; /* below the levels' TDX component 0 (5), compared now */
	expect_err(intel_tcb_evaluate(ti, &pck, &q, NULL, &r), SCONE_ERR_UNTRUSTED, "TEE_TCB_SVN is below");
	free(ti);
}

TEST(test_qe_identity_checks)
{
	size_t size;
	uint8_t *ev = slurp(V03 "tdx_quote", &size), report[SGX_REPORT_SIZE];
	struct scone_collateral *c;
	const struct qe_identity *id;
	const struct tcb_level *level;
	struct intel_quote q;

	assert_ok(intel_quote_parse(ev, size, true, &q));
	assert_ok(scone_collateral_load(dir03, &c));
	assert_ok(collateral_qeid(c, COLL_TDX, T("2025-07-01T00:00:00Z"), &id));
	assert_true(id->td);
	assert_int_equal(id->isvprodid, 2);
	assert_ok(intel_qeid_check(id, q.qe_report, &level));
	assert_int_equal(level->isvsvn, 4);
	assert_int_equal(level->status, SCONE_TCB_UP_TO_DATE);
	memcpy(report, q.qe_report, sizeof(report));
	report[SGX_R_MRSIGNER + 5] ^= 1;
	expect_err(intel_qeid_check(id, report, &level), SCONE_ERR_UNTRUSTED, "MRSIGNER");
	memcpy(report, q.qe_report, sizeof(report));
	report[SGX_R_ISVPRODID] = 1; /* the SGX QE is not the TD QE */
	expect_err(intel_qeid_check(id, report, &level), SCONE_ERR_UNTRUSTED, "ISVPRODID 1 is not 2");
	memcpy(report, q.qe_report, sizeof(report));
	report[SGX_R_ATTRIBUTES] ^= 0x02; /* DEBUG, inside the mask */
	expect_err(intel_qeid_check(id, report, &level), SCONE_ERR_UNTRUSTED, "ATTRIBUTES");
	memcpy(report, q.qe_report, sizeof(report));
	report[SGX_R_MISCSELECT] = 1;
	expect_err(intel_qeid_check(id, report, &level), SCONE_ERR_UNTRUSTED, "MISCSELECT");
	memcpy(report, q.qe_report, sizeof(report));
	report[SGX_R_ISVSVN] = 3;
	expect_err(intel_qeid_check(id, report, &level), SCONE_ERR_UNTRUSTED, "below every level");
	/* the SGX QE identity is not there for a TDX quote's directory, and the TDX one not for SGX */
	expect_err(collateral_qeid(c, COLL_SGX, T("2025-07-01T00:00:00Z"), &id), SCONE_ERR_NOT_FOUND,
		   "sgx/certification/v4/qe/identity");
	scone_collateral_free(c);
	free(ev);
}

/* Malformed TCB info documents are refused naming the field. */
TEST(test_tcbinfo_malformed)
{
	static const struct {
		const char *text, *needle;
	} cases[] = {
	    {"[]", "expected an object"},
	    {"{\"version\":4}", "tcbInfo.version 4"},
	    {"{\"id\":\"XYZ\",\"version\":3}", "tcbInfo.id"},
	    {"{\"id\":\"SGX\",\"version\":3,\"issueDate\":\"yesterday\"}", "issueDate"},
	    {"{\"id\":\"SGX\",\"version\":3,\"issueDate\":\"2025-01-01T00:00:00Z\",\"nextUpdate\":\"2025-02-"
	     "01T00:00:00Z\","
	     "\"fmspc\":\"00A06711000\"}",
	     "fmspc"},
	    {"{\"id\":\"SGX\",\"version\":3,\"issueDate\":\"2025-01-01T00:00:00Z\",\"nextUpdate\":\"2025-02-"
	     "01T00:00:00Z\","
	     "\"fmspc\":\"00A067110000\",\"pceId\":\"0000\",\"tcbEvaluationDataNumber\":1,\"tcbType\":0,"
	     "\"tcbLevels\":[]}",
	     "0 levels"},
	    {"{\"id\":\"SGX\",\"version\":3,\"issueDate\":\"2025-01-01T00:00:00Z\",\"nextUpdate\":\"2025-02-"
	     "01T00:00:00Z\","
	     "\"fmspc\":\"00A067110000\",\"pceId\":\"0000\",\"tcbEvaluationDataNumber\":1,\"tcbType\":0,"
	     "\"tcbLevels\":[{"
	     "\"tcb\":{"
	     "\"sgxtcbcomponents\":[{\"svn\":1}],\"pcesvn\":1},\"tcbDate\":\"2025-01-01T00:00:00Z\","
	     "\"tcbStatus\":"
	     "\"UpToDate\"}]}",
	     "1 components, expected 16"},
	    {"{\"id\":\"SGX\",\"version\":3,\"issueDate\":\"2025-01-01T00:00:00Z\",\"nextUpdate\":\"2025-02-"
	     "01T00:00:00Z\","
	     "\"fmspc\":\"00A067110000\",\"pceId\":\"0000\",\"tcbEvaluationDataNumber\":1,\"tcbType\":0,"
	     "\"tcbLevels\":[{"
	     "\"tcb\":{"
	     "\"sgxtcbcomponents\":[{\"svn\":1},{\"svn\":1},{\"svn\":1},{\"svn\":1},{\"svn\":1},{\"svn\":1},{"
	     "\"svn\":1},"
	     "{\"svn\":1},{\"svn\":1},{\"svn\":1},{\"svn\":1},{\"svn\":1},{\"svn\":1},{\"svn\":1},{\"svn\":1}"
	     ",{\"svn\":256}],"
	     "\"pcesvn\":1},\"tcbDate\":\"2025-01-01T00:00:00Z\",\"tcbStatus\":\"UpToDate\"}]}",
	     "svn: expected an integer 0..255"},
	    {"{\"id\":\"SGX\",\"version\":3,\"issueDate\":\"2025-01-01T00:00:00Z\",\"nextUpdate\":\"2025-02-"
	     "01T00:00:00Z\","
	     "\"fmspc\":\"00A067110000\",\"pceId\":\"0000\",\"tcbEvaluationDataNumber\":1,\"tcbType\":0,"
	     "\"tcbLevels\":[{"
	     "\"tcb\":{"
	     "\"sgxtcbcomponents\":[{\"svn\":1},{\"svn\":1},{\"svn\":1},{\"svn\":1},{\"svn\":1},{\"svn\":1},{"
	     "\"svn\":1},"
	     "{\"svn\":1},{\"svn\":1},{\"svn\":1},{\"svn\":1},{\"svn\":1},{\"svn\":1},{\"svn\":1},{\"svn\":1}"
	     ",{\"svn\":1}],"
	     "\"pcesvn\":1},\"tcbDate\":\"2025-01-01T00:00:00Z\",\"tcbStatus\":\"TDRelaunchAdvised\"}]}",
	     "not a status of this document"},
	};
	static const char tcb_type[] =
	    "{\"id\":\"SGX\",\"version\":3,\"issueDate\":\"2025-01-01T00:00:00Z\",\"nextUpdate\":"
	    "\"2025-02-01T00:00:00Z\",\"fmspc\":\"00A067110000\",\"pceId\":\"0000\","
	    "\"tcbEvaluationDataNumber\":1,\"tcbType\":1}";
	struct tcb_info *ti = malloc(sizeof(*ti));

	expect_err(intel_tcbinfo_parse(tcb_type, strlen(tcb_type), ti), SCONE_ERR_UNSUPPORTED, "tcbType 1");
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		enum scone_err err = intel_tcbinfo_parse(cases[i].text, strlen(cases[i].text), ti);
		if (err == SCONE_ERR_OK || !strstr(scone_err_detail(), cases[i].needle))
			fail_msg("case %zu: got %s \"%s\", want \"%s\"", i, scone_errname(err),
				 scone_err_detail(), cases[i].needle);
	}
	free(ti);
}

/* ---------------------------------------------------------------- vectors 09 and 11: SEV-SNP v2, Milan */

TEST(test_snp_v2_claims)
{
	size_t size;
	uint8_t *ev = slurp(V09 "attestation.bin", &size);
	struct scone_claims c;
	struct snp_report r;
	struct snp_certs certs;

	assert_int_equal(size, SNP_REPORT_SIZE);
	assert_ok(snp_report_parse(ev, size, false, &r, &certs));
	assert_int_equal(r.key, SNP_KEY_VCEK);
	assert_false(certs.present);
	assert_ok(verify_at("snp", ev, size, dir_amd, T("2025-01-01T00:00:00Z"), false, &c));
	assert_int_equal(c.type, SCONE_EVIDENCE_SNP);
	hex_eq(c.measurement, c.measurement_size,
	       "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872"
	       "b01");
	hex_eq(c.platform_id, 64,
	       "3ac3fe21e13fb0990eb28a802e3fb6a29483a6b0753590c951bdd3b8e53786184ca39e359669a2b76a1936776b564"
	       "ea464cdce40c05"
	       "f63c9b610c5068b006b5d");
	hex_eq(c.report_data, 8, "0102030405000000");
	assert_true(c.debug); /* policy 0xb0000: DEBUG allowed */
	assert_int_equal(c.tcb_status, SCONE_TCB_UP_TO_DATE);
	claim_eq(&c, "policy", "00000000000b0000");
	claim_eq(&c, "smt_allowed", "true");
	claim_eq(&c, "migrate_ma", "false");
	claim_eq(&c, "reported_tcb", "4405000000000002");
	claim_eq(&c, "current_tcb", "4405000000000002");
	claim_eq(&c, "committed_tcb", "4405000000000002");
	claim_eq(&c, "launch_tcb", "4405000000000002");
	claim_eq(&c, "current_firmware", "1.49.3");
	claim_eq(&c, "committed_firmware", "1.49.3");
	claim_eq(&c, "host_data", "0000000000000000000000000000000000000000000000000000000000000000");
	claim_eq(&c, "report_id", "8edc638e1857c555d21f6b11bda3c8b1b5a09dba4852b4c8ee7aa2f16f22cc0a");
	claim_eq(&c, "report_id_ma", "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff");
	claim_eq(&c, "vmpl", "0");
	claim_eq(&c, "guest_svn", "0");
	claim_eq(&c, "version", "2");
	claim_eq(&c, "platform_info", "0000000000000001");
	claim_eq(&c, "smt_enabled", "true");
	claim_eq(&c, "product", "Milan");
	claim_eq(&c, "signing_key", "vcek");
	claim_eq(&c, "amd_crl", "absent");
	free(ev);

	ev = slurp(V11 "test-report.bin", &size);
	assert_ok(verify_at("snp", ev, size, dir_amd, T("2025-01-01T00:00:00Z"), false, &c));
	hex_eq(c.measurement, 48,
	       "a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f9050d3d"
	       "38c");
	hex_eq(c.report_data, 64,
	       "ec6c52d7533cc2c4f45be7849cf112ab82b2009fe7bd43e71ed08c14400ad7e200000000000000000000000000000"
	       "00000000000000"
	       "000000000000000000000");
	hex_eq(c.platform_id, 64,
	       "c38427a30d4c7af9d96f7a15b97269825a64cb76a2352ffd5d18115d89ad473f8e8c0bcd9a5d9286612bad4aadfb4"
	       "426205a3b9e4fe"
	       "a82301135a170e477524e");
	assert_false(c.debug); /* policy 0x3001f */
	claim_eq(&c, "policy", "000000000003001f");
	claim_eq(&c, "reported_tcb", "7308000000000003");
	claim_eq(&c, "current_firmware", "1.52.4");
	/* the VCEK is valid 2023-01-24..2030-01-24 */
	expect_err(verify_at("snp", ev, size, dir_amd, T("2031-01-01T00:00:00Z"), false, &c),
		   SCONE_ERR_EXPIRED, "SNP certificate chain");
	/* no certificate table and no collateral: what to fetch */
	expect_err(verify_at("snp", ev, size, NULL, 0, false, &c), SCONE_ERR_NOT_FOUND,
		   "https://kdsintf.amd.com/vcek/v1/{Milan|Genoa}/c38427a30d4c7af9");
	assert_non_null(strstr(scone_err_detail(), "?blSPL=3&teeSPL=0&snpSPL=8&ucodeSPL=115"));
	free(ev);
}

TEST(test_snp_v2_negatives)
{
	size_t size;
	uint8_t *ev = slurp(V11 "test-report.bin", &size), *copy = malloc(size + 64);
	int64_t at = T("2025-01-01T00:00:00Z");
	struct scone_claims c;

	/* trustee's variants: report byte 42 + 1, report byte 384 (REPORTED_TCB) + 1 */
	memcpy(copy, ev, size);
	copy[42]++;
	expect_err(verify_at("snp", copy, size, dir_amd, at, false, &c), SCONE_ERR_AUTH,
		   "SNP report signature");
	memcpy(copy, ev, size);
	copy[384]++; /* the VCEK for that TCB is not in the directory */
	expect_err(verify_at("snp", copy, size, dir_amd, at, false, &c), SCONE_ERR_NOT_FOUND,
		   "7308000000000004");
	/* every byte of the signed range */
	assert_true(flip_all("snp", ev, size, 0, SNP_SIGNED_SIZE, dir_amd, at, false) >= 300);
	/* the signature's zero extension and the reserved tail (not signed: must be zero) */
	assert_int_equal(flip_all("snp", ev, size, SNP_O_SIG_R + 48, SNP_O_SIG_R + 72, dir_amd, at, false),
			 0);
	assert_int_equal(flip_all("snp", ev, size, SNP_O_SIG_S + 72, SNP_REPORT_SIZE, dir_amd, at, false), 0);
	assert_int_equal(flip_all("snp", ev, size, SNP_O_SIG_R, SNP_O_SIG_R + 48, dir_amd, at, false), 48);
	/* truncated, trailing bytes, zero padding */
	for (size_t n = 0; n < size; n++)
		expect_err(verify_at("snp", ev, n, dir_amd, at, true, &c), SCONE_ERR_MALFORMED,
			   "shorter than a report");
	memcpy(copy, ev, size);
	memset(copy + size, 0, 64);
	copy[size] = 7;
	expect_err(verify_at("snp", copy, size + 1, dir_amd, at, true, &c), SCONE_ERR_MALFORMED,
		   "not a certificate table");
	copy[size] = 0;
	expect_err(verify_at("snp", copy, size + 64, dir_amd, at, false, &c), SCONE_ERR_MALFORMED,
		   "not a certificate table");
	assert_ok(verify_at("snp", copy, size + 64, dir_amd, at, true, &c));
	free(copy);
	free(ev);
}

/* trustee's malformed VCEKs: their TBS was edited (hwID 00 01 .. 3f), so AMD's signature no longer holds. */
TEST(test_snp_bad_vceks)
{
	static const char *const bad[] = {V11 "test-vcek-invalid-legacy.der",
					  V11 "test-vcek-invalid-new.der"};
	const struct attest_trust *t;
	uint8_t want[64];
	size_t size;

	assert_ok(attest_trust_pinned(&t));
	for (int i = 0; i < 64; i++)
		want[i] = (uint8_t)i;
	for (size_t i = 0; i < N_ELEMS(bad); i++) {
		uint8_t *der = slurp(bad[i], &size);
		struct amd_cert_ext e;
		STACK_OF(X509) *mid = sk_X509_new_null();
		X509 *x;
		assert_ok(x509_parse_one(der, size, "VCEK", &x));
		assert_ok(amd_cert_ext_parse(x, &e)); /* both encodings of the hwID are read */
		assert_int_equal(e.hwid_size, 64);
		assert_memory_equal(e.hwid, want, 64);
		assert_string_equal(e.product, "Milan-B0");
		sk_X509_push(mid, t->ask[AMD_MILAN]);
		expect_err(
		    x509_verify_chain(x, mid, t->ark[AMD_MILAN], T("2025-01-01T00:00:00Z"), false, "VCEK"),
		    SCONE_ERR_UNTRUSTED, "signature");
		sk_X509_free(mid);
		X509_free(x);
		free(der);
	}
}

static const uint8_t guid_vcek[16] = {0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64,
				      0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd};
static const uint8_t guid_vlek[16] = {0xa8, 0x07, 0x4b, 0xc2, 0xa2, 0x5a, 0x48, 0x3e,
				      0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0, 0xb8, 0xa1};
static const uint8_t guid_ask[16] = {0x4a, 0xb7, 0xb3, 0x79, 0xbb, 0xac, 0x4f, 0xe4,
				     0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7, 0x82};
static const uint8_t guid_ark[16] = {0xc0, 0xb4, 0x06, 0xa4, 0xa8, 0x03, 0x49, 0x52,
				     0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0, 0xae};

struct entry {
	const uint8_t *guid, *data;
	size_t size;
};

/* report || certificate table of the entries; the evidence's size. */
static size_t with_table(uint8_t *out, const uint8_t *report, const struct entry *e, size_t n)
{
	size_t header = 24 * (n + 1), at = header;

	memcpy(out, report, SNP_REPORT_SIZE);
	memset(out + SNP_REPORT_SIZE, 0, header);
	for (size_t i = 0; i < n; i++) {
		uint8_t *slot = out + SNP_REPORT_SIZE + 24 * i;
		memcpy(slot, e[i].guid, 16);
		scone_put_le32(slot + 16, (uint32_t)at);
		scone_put_le32(slot + 20, (uint32_t)e[i].size);
		memcpy(out + SNP_REPORT_SIZE + at, e[i].data, e[i].size);
		at += e[i].size;
	}
	return SNP_REPORT_SIZE + at;
}

static size_t der_of(X509 *x, uint8_t *out)
{
	unsigned char *p = out;
	int n = i2d_X509(x, &p);

	assert_true(n > 0);
	return (size_t)n;
}

TEST(test_snp_cert_table)
{
	size_t size, vsize, n, other_size;
	uint8_t *ev = slurp(V11 "test-report.bin", &size), *vcek = slurp(V11 "test-vcek.der", &vsize);
	uint8_t *other = slurp(V09 "vcek.der", &other_size), *buf = calloc(1, 16384), ask[4096], ark[4096];
	const struct attest_trust *t;
	int64_t at = T("2025-01-01T00:00:00Z");
	struct scone_claims c;
	size_t ask_size, ark_size;

	assert_ok(attest_trust_pinned(&t));
	ask_size = der_of(t->ask[AMD_MILAN], ask);
	ark_size = der_of(t->ark[AMD_MILAN], ark);
	/* the VCEK from the table: no collateral needed */
	n = with_table(buf, ev, (struct entry[]){{guid_vcek, vcek, vsize}}, 1);
	assert_ok(verify_at("snp", buf, n, NULL, at, false, &c));
	claim_eq(&c, "product", "Milan");
	/* with ASK and ARK (the ARK must be the pinned one) */
	n = with_table(
	    buf, ev,
	    (struct entry[]){{guid_ark, ark, ark_size}, {guid_vcek, vcek, vsize}, {guid_ask, ask, ask_size}},
	    3);
	assert_ok(verify_at("snp", buf, n, NULL, at, false, &c));
	ark_size = der_of(t->ark[AMD_GENOA], ark);
	n = with_table(buf, ev, (struct entry[]){{guid_vcek, vcek, vsize}, {guid_ark, ark, ark_size}}, 2);
	expect_err(verify_at("snp", buf, n, NULL, at, false, &c), SCONE_ERR_UNTRUSTED,
		   "table's ARK is not the pinned");
	/* an ASK of another product in the table */
	ask_size = der_of(t->ask[AMD_GENOA], ask);
	n = with_table(buf, ev, (struct entry[]){{guid_vcek, vcek, vsize}, {guid_ask, ask, ask_size}}, 2);
	expect_err(verify_at("snp", buf, n, NULL, at, false, &c), SCONE_ERR_UNTRUSTED,
		   "intermediate \"SEV-Genoa\"");
	/* another chip's VCEK */
	n = with_table(buf, ev, (struct entry[]){{guid_vcek, other, other_size}}, 1);
	expect_err(verify_at("snp", buf, n, NULL, at, false, &c), SCONE_ERR_AUTH, "SNP report signature");
	/* trailing bytes after the last entry; zero padding only when allowed */
	n = with_table(buf, ev, (struct entry[]){{guid_vcek, vcek, vsize}}, 1);
	memset(buf + n, 0, 100);
	buf[n] = 1;
	expect_err(verify_at("snp", buf, n + 1, NULL, at, true, &c), SCONE_ERR_MALFORMED,
		   "after the certificate table");
	buf[n] = 0;
	expect_err(verify_at("snp", buf, n + 100, NULL, at, false, &c), SCONE_ERR_MALFORMED,
		   "100 bytes after");
	assert_ok(verify_at("snp", buf, n + 100, NULL, at, true, &c));
	/* an entry outside the table, a repeated GUID, no terminator */
	scone_put_le32(buf + SNP_REPORT_SIZE + 20, (uint32_t)vsize + 1);
	expect_err(verify_at("snp", buf, n, NULL, at, false, &c), SCONE_ERR_MALFORMED,
		   "is not inside the table");
	n = with_table(buf, ev, (struct entry[]){{guid_vcek, vcek, vsize}, {guid_vcek, vcek, vsize}}, 2);
	expect_err(verify_at("snp", buf, n, NULL, at, false, &c), SCONE_ERR_MALFORMED, "repeats a GUID");
	memset(buf + SNP_REPORT_SIZE, 0x41, 48);
	expect_err(verify_at("snp", buf, SNP_REPORT_SIZE + 48, NULL, at, false, &c), SCONE_ERR_MALFORMED,
		   "not a certificate table");
	free(buf);
	free(other);
	free(vcek);
	free(ev);
}

TEST(test_snp_turin_vcek)
{
	size_t size;
	uint8_t *der = slurp("roots/extra_turin_vcek.der", &size);
	const struct attest_trust *t;
	struct amd_cert_ext e;
	STACK_OF(X509) *mid = sk_X509_new_null();
	X509 *x;
	int64_t nb;

	assert_ok(attest_trust_pinned(&t));
	assert_ok(x509_parse_one(der, size, "VCEK", &x));
	assert_ok(amd_cert_ext_parse(x, &e));
	assert_string_equal(e.product, "Turin");
	assert_true(e.has_spl[SPL_FMC] && e.spl[SPL_FMC] == 0);
	assert_true(e.has_spl[SPL_BL] && e.spl[SPL_BL] == 0);
	assert_true(e.has_spl[SPL_UCODE] && e.spl[SPL_UCODE] == 9);
	assert_int_equal(e.hwid_size, 8);
	hex_eq(e.hwid, 8, "1e550a8ee5cf9f4d");
	assert_ok(x509_time(X509_get0_notBefore(x), &nb));
	sk_X509_push(mid, t->ask[AMD_TURIN]);
	assert_ok(x509_verify_chain(x, mid, t->ark[AMD_TURIN], nb + 86400, false, "Turin VCEK"));
	expect_err(x509_verify_chain(x, mid, t->ark[AMD_MILAN], nb + 86400, false, "Turin VCEK"),
		   SCONE_ERR_UNTRUSTED, "Turin VCEK");
	sk_X509_free(mid);
	X509_free(x);
	free(der);
}

/* ---------------------------------------------------------------- SNP v3 / v5, Genoa / Turin, VLEK:
 * generated */

/*
 * No recorded report of version 3 or 5, of Genoa or Turin, or signed by a
 * VLEK exists with its certificates: these are made here, under generated
 * anchors named like AMD's, and verified with those anchors.
 */
struct amd_pki {
	EVP_PKEY *ark_key, *ask_key, *asvk_key, *vcek_key;
	X509 *ark, *ask, *asvk;
	struct attest_trust trust;
};

static void pki_make(struct amd_pki *p, enum amd_product prod)
{
	char cn[40];

	memset(p, 0, sizeof(*p));
	p->ark_key = gen_key("P-384");
	p->ask_key = gen_key("P-384");
	p->asvk_key = gen_key("P-384");
	p->vcek_key = gen_key("P-384");
	snprintf(cn, sizeof(cn), "ARK-%s", amd_product_name(prod));
	p->ark = make_cert(cn, p->ark_key, NULL, NULL, true, 1, NULL, 0);
	snprintf(cn, sizeof(cn), "SEV-%s", amd_product_name(prod));
	p->ask = make_cert(cn, p->ask_key, p->ark, p->ark_key, true, 2, NULL, 0);
	snprintf(cn, sizeof(cn), "SEV-VLEK-%s", amd_product_name(prod));
	p->asvk = make_cert(cn, p->asvk_key, p->ark, p->ark_key, true, 3, NULL, 0);
	for (int i = 0; i < AMD_PRODUCTS; i++) {
		p->trust.ark[i] = p->ark;
		p->trust.ask[i] = p->ask;
		p->trust.asvk[i] = p->asvk;
	}
}

static void pki_free(struct amd_pki *p)
{
	X509_free(p->ark);
	X509_free(p->ask);
	X509_free(p->asvk);
	EVP_PKEY_free(p->ark_key);
	EVP_PKEY_free(p->ask_key);
	EVP_PKEY_free(p->asvk_key);
	EVP_PKEY_free(p->vcek_key);
}

/* DER of an INTEGER v (< 0x8000) and of an IA5String s, as the VCEK extensions hold them. */
static size_t der_int(uint8_t *out, unsigned v)
{
	if (v < 0x80) {
		out[0] = 0x02, out[1] = 1, out[2] = (uint8_t)v;
		return 3;
	}
	out[0] = 0x02, out[1] = 2, out[2] = (uint8_t)(v >> 8), out[3] = (uint8_t)v;
	return 4;
}

/* A VCEK (vlek: a VLEK) of the PKI for product name, SPLs and hwID. */
static X509 *make_vcek(struct amd_pki *p, bool vlek, const char *product, const uint8_t spl[SPL_COUNT],
		       const uint8_t *hwid, size_t hwid_size)
{
	static const char *const oid[SPL_COUNT] = {"1.3.6.1.4.1.3704.1.3.1", "1.3.6.1.4.1.3704.1.3.2",
						   "1.3.6.1.4.1.3704.1.3.3", "1.3.6.1.4.1.3704.1.3.8",
						   "1.3.6.1.4.1.3704.1.3.9"};
	uint8_t ints[SPL_COUNT][4], name[40];
	struct ext e[SPL_COUNT + 2];
	size_t n = 0;

	name[0] = 0x16, name[1] = (uint8_t)strlen(product);
	memcpy(name + 2, product, strlen(product));
	e[n++] = (struct ext){"1.3.6.1.4.1.3704.1.2", name, 2 + strlen(product)};
	for (int i = 0; i < SPL_COUNT; i++)
		e[n++] = (struct ext){oid[i], ints[i], der_int(ints[i], spl[i])};
	if (hwid_size)
		e[n++] = (struct ext){"1.3.6.1.4.1.3704.1.4", hwid, hwid_size};
	return make_cert(vlek ? "SEV-VLEK" : "SEV-VCEK", p->vcek_key, vlek ? p->asvk : p->ask,
			 vlek ? p->asvk_key : p->ask_key, false, 99, e, n);
}

struct report_spec {
	uint32_t version;
	uint64_t policy, tcb;
	uint8_t fam, mod;
	bool vlek;
	const uint8_t *chip;
};

static void make_report(uint8_t r[SNP_REPORT_SIZE], const struct report_spec *s, EVP_PKEY *key)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t der[128];
	size_t der_size = sizeof(der);
	const unsigned char *p = der;
	ECDSA_SIG *sig;

	memset(r, 0, SNP_REPORT_SIZE);
	scone_put_le32(r, s->version);
	scone_put_le32(r + 4, 7); /* GUEST_SVN */
	scone_put_le64(r + 8, s->policy);
	scone_put_le32(r + 0x34, 1);
	scone_put_le64(r + 0x38, s->tcb);
	scone_put_le64(r + 0x40, 0x3); /* SMT and TSME enabled */
	scone_put_le32(r + 0x48, (uint32_t)(s->vlek ? 1 : 0) << 2);
	for (int i = 0; i < 64; i++)
		r[SNP_O_REPORT_DATA + i] = (uint8_t)(0xa0 + i);
	memset(r + SNP_O_MEASUREMENT, 0x4d, 48);
	memset(r + SNP_O_HOST_DATA, 0x48, 32);
	scone_put_le64(r + 0x180, s->tcb);
	if (s->version >= 3)
		r[0x188] = s->fam, r[0x189] = s->mod, r[0x18A] = 1;
	if (s->chip)
		memcpy(r + SNP_O_CHIP_ID, s->chip, 64);
	scone_put_le64(r + 0x1E0, s->tcb);
	r[0x1E8] = 9, r[0x1E9] = 55, r[0x1EA] = 1;
	scone_put_le64(r + 0x1F0, s->tcb);
	if (s->version >= 5) {
		scone_put_le64(r + 0x1F8, 0x11);
		scone_put_le64(r + 0x200, 0x13);
	}
	assert_true(EVP_DigestSignInit(md, NULL, EVP_sha384(), NULL, key) == 1);
	assert_true(EVP_DigestSign(md, der, &der_size, r, SNP_SIGNED_SIZE) == 1);
	EVP_MD_CTX_free(md);
	sig = d2i_ECDSA_SIG(NULL, &p, (long)der_size);
	assert_non_null(sig);
	BN_bn2lebinpad(ECDSA_SIG_get0_r(sig), r + SNP_O_SIG_R, 72);
	BN_bn2lebinpad(ECDSA_SIG_get0_s(sig), r + SNP_O_SIG_S, 72);
	ECDSA_SIG_free(sig);
}

static enum scone_err verify_snp_with(const struct amd_pki *p, const uint8_t *ev, size_t size,
				      const char *dir, int64_t at, struct scone_claims *c)
{
	struct scone_verify_opts o = {.at = at, .collateral_dir = dir};

	return attest_snp_verify_with(ev, size, &o, &p->trust, c);
}

TEST(test_snp_genoa_v3)
{
	struct amd_pki p;
	uint8_t chip[64], spl[SPL_COUNT] = {7, 0, 14, 72, 0}, r[SNP_REPORT_SIZE], *buf = calloc(1, 8192),
			  der[4096];
	struct report_spec s = {.version = 3, .policy = 0x30000, .fam = 0x19, .mod = 0x11, .chip = chip};
	int64_t at = T("2025-01-01T00:00:00Z");
	struct scone_claims c;
	X509 *vcek;
	size_t n;

	for (int i = 0; i < 64; i++)
		chip[i] = (uint8_t)(0x80 + i);
	pki_make(&p, AMD_GENOA);
	vcek = make_vcek(&p, false, "Genoa", spl, chip, 64);
	s.tcb = 7 | 0ull << 8 | 14ull << 48 | 72ull << 56; /* Genoa: bl byte 0, tee 1, snp 6, ucode 7 */
	make_report(r, &s, p.vcek_key);
	n = with_table(buf, r, (struct entry[]){{guid_vcek, der, der_of(vcek, der)}}, 1);
	assert_ok(verify_snp_with(&p, buf, n, NULL, at, &c));
	claim_eq(&c, "product", "Genoa");
	claim_eq(&c, "version", "3");
	claim_eq(&c, "guest_svn", "7");
	claim_eq(&c, "reported_tcb", "480e000000000007");
	claim_eq(&c, "current_firmware", "1.55.9");
	claim_eq(&c, "platform_info", "0000000000000003");
	claim_eq(&c, "host_data", "4848484848484848484848484848484848484848484848484848484848484848");
	assert_null(scone_claims_get(&c, "launch_mit_vector"));
	assert_false(c.debug);
	/* the pinned AMD roots do not know this chain */
	expect_err(verify_at("snp", buf, n, NULL, at, false, &c), SCONE_ERR_UNTRUSTED,
		   "SNP certificate chain");
	/* DEBUG in the guest policy is a claim */
	s.policy |= SNP_POLICY_DEBUG;
	make_report(r, &s, p.vcek_key);
	n = with_table(buf, r, (struct entry[]){{guid_vcek, der, der_of(vcek, der)}}, 1);
	assert_ok(verify_snp_with(&p, buf, n, NULL, at, &c));
	assert_true(c.debug);
	/* REPORTED_TCB must be the VCEK's: the same signed report for another TCB */
	s.tcb += 1ull << 56;
	make_report(r, &s, p.vcek_key);
	n = with_table(buf, r, (struct entry[]){{guid_vcek, der, der_of(vcek, der)}}, 1);
	expect_err(verify_snp_with(&p, buf, n, NULL, at, &c), SCONE_ERR_UNTRUSTED,
		   "ucodeSPL 73 does not match");
	s.tcb -= 1ull << 56;
	/* CHIP_ID must be the VCEK's hwID */
	chip[5] ^= 1;
	make_report(r, &s, p.vcek_key);
	n = with_table(buf, r, (struct entry[]){{guid_vcek, der, der_of(vcek, der)}}, 1);
	expect_err(verify_snp_with(&p, buf, n, NULL, at, &c), SCONE_ERR_UNTRUSTED,
		   "CHIP_ID is not the VCEK's hwID");
	chip[5] ^= 1;
	/* a Milan certificate for a Genoa CPU */
	X509_free(vcek);
	vcek = make_vcek(&p, false, "Milan-B0", spl, chip, 64);
	make_report(r, &s, p.vcek_key);
	n = with_table(buf, r, (struct entry[]){{guid_vcek, der, der_of(vcek, der)}}, 1);
	expect_err(verify_snp_with(&p, buf, n, NULL, at, &c), SCONE_ERR_UNTRUSTED,
		   "the certificate is for Milan-B0");
	/* a CPU that is none of the three */
	s.mod = 0x40;
	make_report(r, &s, p.vcek_key);
	n = with_table(buf, r, (struct entry[]){{guid_vcek, der, der_of(vcek, der)}}, 1);
	expect_err(verify_snp_with(&p, buf, n, NULL, at, &c), SCONE_ERR_UNSUPPORTED, "model 0x40");
	X509_free(vcek);
	pki_free(&p);
	free(buf);
}

TEST(test_snp_turin_v5)
{
	struct amd_pki p;
	uint8_t chip[64] = {0x1e, 0x55, 0x0a, 0x8e, 0xe5, 0xcf, 0x9f, 0x4d}, spl[SPL_COUNT] = {1, 2, 3, 9, 4};
	uint8_t r[SNP_REPORT_SIZE], *buf = calloc(1, 8192), der[4096];
	/* Turin: fmc byte 0, bl 1, tee 2, snp 3, ucode 7 */
	struct report_spec s = {.version = 5,
				.policy = 0x30000,
				.fam = 0x1a,
				.mod = 0x02,
				.chip = chip,
				.tcb = 4 | 1ull << 8 | 2ull << 16 | 3ull << 24 | 9ull << 56};
	int64_t at = T("2025-01-01T00:00:00Z");
	struct scone_claims c;
	X509 *vcek;
	size_t n;

	pki_make(&p, AMD_TURIN);
	vcek = make_vcek(&p, false, "Turin", spl, chip, 8);
	make_report(r, &s, p.vcek_key);
	n = with_table(buf, r, (struct entry[]){{guid_vcek, der, der_of(vcek, der)}}, 1);
	assert_ok(verify_snp_with(&p, buf, n, NULL, at, &c));
	claim_eq(&c, "product", "Turin");
	claim_eq(&c, "version", "5");
	claim_eq(&c, "launch_mit_vector", "0000000000000011");
	claim_eq(&c, "current_mit_vector", "0000000000000013");
	hex_eq(c.platform_id, 8, "1e550a8ee5cf9f4d");
	/* the FMC SPL counts on Turin */
	s.tcb ^= 1;
	make_report(r, &s, p.vcek_key);
	n = with_table(buf, r, (struct entry[]){{guid_vcek, der, der_of(vcek, der)}}, 1);
	expect_err(verify_snp_with(&p, buf, n, NULL, at, &c), SCONE_ERR_UNTRUSTED, "fmcSPL 5 does not match");
	/* without a table, the KDS address uses the 8-byte hwID and fmcSPL */
	expect_err(verify_snp_with(&p, r, SNP_REPORT_SIZE, NULL, at, &c), SCONE_ERR_NOT_FOUND,
		   "https://kdsintf.amd.com/vcek/v1/Turin/"
		   "1e550a8ee5cf9f4d?fmcSPL=5&blSPL=1&teeSPL=2&snpSPL=3&ucodeSPL=9");
	/* version 5 keeps 0x208.. reserved; version 3 reserves the mitigation vectors too */
	s.tcb ^= 1;
	s.version = 3;
	make_report(r, &s, p.vcek_key);
	scone_put_le64(r + 0x1F8, 1);
	n = with_table(buf, r, (struct entry[]){{guid_vcek, der, der_of(vcek, der)}}, 1);
	expect_err(verify_snp_with(&p, buf, n, NULL, at, &c), SCONE_ERR_MALFORMED,
		   "reserved bytes 0x1f8..0x2a0");
	X509_free(vcek);
	pki_free(&p);
	free(buf);
}

TEST(test_snp_vlek)
{
	struct amd_pki p;
	uint8_t spl[SPL_COUNT] = {3, 0, 8, 115, 0}, r[SNP_REPORT_SIZE], *buf = calloc(1, 16384), der[4096],
		mid[4096];
	struct report_spec s = {.version = 3,
				.policy = 0x30000,
				.fam = 0x19,
				.mod = 0x01,
				.vlek = true,
				.tcb = 3 | 8ull << 48 | 115ull << 56};
	int64_t at = T("2025-01-01T00:00:00Z");
	struct scone_claims c;
	X509 *vlek;
	size_t n, vsize, msize;

	pki_make(&p, AMD_MILAN);
	vlek = make_vcek(&p, true, "Milan", spl, NULL, 0);
	make_report(r, &s, p.vcek_key);
	vsize = der_of(vlek, der);
	msize = der_of(p.asvk, mid);
	n = with_table(buf, r, (struct entry[]){{guid_vlek, der, vsize}, {guid_ask, mid, msize}}, 2);
	assert_ok(verify_snp_with(&p, buf, n, NULL, at, &c));
	claim_eq(&c, "signing_key", "vlek");
	hex_eq(c.platform_id, 8, "0000000000000000"); /* no CHIP_ID in VLEK-signed reports */
	/* the pinned ASVK is used when the table has none */
	n = with_table(buf, r, (struct entry[]){{guid_vlek, der, vsize}}, 1);
	assert_ok(verify_snp_with(&p, buf, n, NULL, at, &c));
	/* a VLEK-signed report needs the table */
	expect_err(verify_snp_with(&p, r, SNP_REPORT_SIZE, NULL, at, &c), SCONE_ERR_NOT_FOUND, "VLEK");
	/* a VLEK under the ASK (VCEK's intermediate) is refused by its CN */
	msize = der_of(p.ask, mid);
	n = with_table(buf, r, (struct entry[]){{guid_vlek, der, vsize}, {guid_ask, mid, msize}}, 2);
	expect_err(verify_snp_with(&p, buf, n, NULL, at, &c), SCONE_ERR_UNTRUSTED,
		   "expected \"SEV-VLEK-Milan\"");
	/* the VCEK slot does not serve a VLEK-signed report */
	n = with_table(buf, r, (struct entry[]){{guid_vcek, der, vsize}}, 1);
	expect_err(verify_snp_with(&p, buf, n, NULL, at, &c), SCONE_ERR_NOT_FOUND, "VLEK");
	X509_free(vlek);
	pki_free(&p);
	free(buf);
}

/* The VCEK from the collateral directory, and the AMD CRL when the directory has one. */
TEST(test_snp_collateral_and_crl)
{
	struct amd_pki p;
	uint8_t chip[64], spl[SPL_COUNT] = {7, 0, 14, 72, 0}, r[SNP_REPORT_SIZE];
	struct report_spec s = {.version = 3,
				.policy = 0x30000,
				.fam = 0x19,
				.mod = 0x11,
				.chip = chip,
				.tcb = 7 | 14ull << 48 | 72ull << 56};
	int64_t at = T("2025-01-01T00:00:00Z");
	struct scone_claims c;
	char dir[400], path[800], hex[129];
	X509 *vcek;
	X509_CRL *crl;

	memset(chip, 0x5c, sizeof(chip));
	pki_make(&p, AMD_GENOA);
	vcek = make_vcek(&p, false, "Genoa", spl, chip, 64);
	make_report(r, &s, p.vcek_key);
	new_dir("amdcoll", dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/amd", dir);
	make_dir(path);
	expect_err(verify_snp_with(&p, r, SNP_REPORT_SIZE, dir, at, &c), SCONE_ERR_NOT_FOUND,
		   "https://kdsintf.amd.com/vcek/v1/Genoa/5c5c");
	scone_hex_encode(hex, sizeof(hex), chip, 64);
	snprintf(path, sizeof(path), "%s/amd/vcek-%s-480e000000000007.der", dir, hex);
	write_cert(path, vcek);
	assert_ok(verify_snp_with(&p, r, SNP_REPORT_SIZE, dir, at, &c));
	claim_eq(&c, "amd_crl", "absent");
	snprintf(path, sizeof(path), "%s/amd/crl-genoa.der", dir);
	crl = make_crl(p.ark, p.ark_key, (const long[]){12345}, 1, "2024-12-01T00:00:00Z",
		       "2025-02-01T00:00:00Z");
	write_crl(path, crl);
	X509_CRL_free(crl);
	assert_ok(verify_snp_with(&p, r, SNP_REPORT_SIZE, dir, at, &c));
	claim_eq(&c, "amd_crl", "checked");
	expect_err(verify_snp_with(&p, r, SNP_REPORT_SIZE, dir, T("2025-03-01T00:00:00Z"), &c),
		   SCONE_ERR_EXPIRED, "https://kdsintf.amd.com/vcek/v1/Genoa/crl");
	crl =
	    make_crl(p.ark, p.ark_key, (const long[]){2}, 1, "2024-12-01T00:00:00Z", "2025-02-01T00:00:00Z");
	write_crl(path, crl);
	X509_CRL_free(crl);
	expect_err(verify_snp_with(&p, r, SNP_REPORT_SIZE, dir, at, &c), SCONE_ERR_UNTRUSTED,
		   "ASK is revoked");
	crl = make_crl(p.ark, p.ask_key, NULL, 0, "2024-12-01T00:00:00Z", "2025-02-01T00:00:00Z");
	write_crl(path, crl);
	X509_CRL_free(crl);
	expect_err(verify_snp_with(&p, r, SNP_REPORT_SIZE, dir, at, &c), SCONE_ERR_UNTRUSTED,
		   "signature does not verify");
	X509_free(vcek);
	pki_free(&p);
}

TEST(test_snp_report_fields)
{
	size_t size;
	uint8_t *ev = slurp(V09 "attestation.bin", &size);
	struct snp_report r;
	struct snp_certs certs;

	ev[0x34] = 2;
	expect_err(snp_report_parse(ev, size, false, &r, &certs), SCONE_ERR_UNSUPPORTED,
		   "signature algorithm 2");
	ev[0x34] = 1;
	ev[0x48] = 7 << 2;
	expect_err(snp_report_parse(ev, size, false, &r, &certs), SCONE_ERR_UNSUPPORTED, "signing key 7");
	ev[0x48] = 1 << 5;
	expect_err(snp_report_parse(ev, size, false, &r, &certs), SCONE_ERR_MALFORMED,
		   "reserved signer info");
	ev[0x48] = 0;
	ev[0x0a] &= (uint8_t)~0x02; /* policy bit 17 */
	expect_err(snp_report_parse(ev, size, false, &r, &certs), SCONE_ERR_MALFORMED, "bit 17");
	ev[0x0a] |= 0x02;
	ev[0x0b] = 0x04; /* policy bit 26 */
	expect_err(snp_report_parse(ev, size, false, &r, &certs), SCONE_ERR_MALFORMED, "reserved bits");
	ev[0x0b] = 0;
	ev[0x30] = 4;
	expect_err(snp_report_parse(ev, size, false, &r, &certs), SCONE_ERR_MALFORMED, "VMPL 4");
	ev[0x30] = 0;
	ev[0] = 6;
	expect_err(snp_report_parse(ev, size, false, &r, &certs), SCONE_ERR_UNSUPPORTED, "version 6");
	ev[0] = 1;
	expect_err(snp_report_parse(ev, size, false, &r, &certs), SCONE_ERR_UNSUPPORTED, "version 1");
	ev[0] = 2;
	assert_ok(snp_report_parse(ev, size, false, &r, &certs));
	assert_int_equal(r.reported_tcb, 0x4405000000000002ull);
	assert_int_equal(r.policy, 0xb0000);
	assert_false(r.has_cpuid);
	free(ev);
}

/* ---------------------------------------------------------------- collection */

/*
 * A directory tree that behaves like configfs-tsm: mkdir of an entry
 * creates its attribute files (provider, generation, inblob, outblob,
 * auxblob), rmdir removes them. The inblob written is kept for checks.
 */
static struct {
	const char *provider;
	const uint8_t *out, *aux;
	size_t out_size, aux_size;
	uint8_t inblob[64];
	size_t inblob_size;
	int entries;
} sim;

static void entry_file(const char *entry, const char *name, const void *data, size_t size)
{
	char path[600];

	snprintf(path, sizeof(path), "%s/%s", entry, name);
	write_file(path, data, size);
}

static int sim_mkdir(const char *path, mode_t mode)
{
	if (mkdir(path, mode) != 0)
		return -1;
	entry_file(path, "provider", sim.provider, strlen(sim.provider));
	entry_file(path, "generation", "1\n", 2);
	entry_file(path, "inblob", "", 0);
	entry_file(path, "outblob", sim.out, sim.out_size);
	if (sim.aux)
		entry_file(path, "auxblob", sim.aux, sim.aux_size);
	sim.entries++;
	return 0;
}

static int sim_rmdir(const char *path)
{
	static const char *const files[] = {"provider", "generation", "inblob", "outblob", "auxblob"};
	char p[600];
	uint8_t *data;
	size_t size;

	snprintf(p, sizeof(p), "%s/inblob", path);
	if (!collateral_read_file(p, 64, &data, &size)) {
		memcpy(sim.inblob, data, size);
		sim.inblob_size = size;
		free(data);
	}
	for (size_t i = 0; i < N_ELEMS(files); i++) {
		snprintf(p, sizeof(p), "%s/%s", path, files[i]);
		unlink(p);
	}
	sim.entries--;
	return rmdir(path);
}

static void sim_install(const char *provider, const uint8_t *out, size_t out_size, const uint8_t *aux,
			size_t aux_size)
{
	memset(&sim, 0, sizeof(sim));
	sim.provider = provider;
	sim.out = out, sim.out_size = out_size;
	sim.aux = aux, sim.aux_size = aux_size;
	tsm_sys.mkdir = sim_mkdir;
	tsm_sys.rmdir = sim_rmdir;
}

static void sim_remove(void)
{
	tsm_sys.mkdir = mkdir;
	tsm_sys.rmdir = rmdir;
}

static bool dir_empty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	bool empty = true;

	assert_non_null(d);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			empty = false;
	closedir(d);
	return empty;
}

TEST(test_collect_tdx_configfs)
{
	size_t size;
	uint8_t *quote = slurp(V03 "tdx_quote", &size);
	const struct scone_evidence_ops *tdx = scone_evidence_find("tdx"), *snp = scone_evidence_find("snp");
	char root[400];
	struct scone_collect_opts o = {.tsm_root = root};
	struct scone_wbuf out;
	struct intel_quote q;
	struct scone_claims c;
	uint8_t rd[64];

	new_dir("tsm-tdx", root, sizeof(root));
	assert_ok(intel_quote_parse(quote, size, true, &q));
	memcpy(rd, q.body + TD_R_REPORTDATA, 64);
	assert_null(scone_evidence_tee(&o));		/* an empty directory is no configfs-tsm */
	sim_install("tdx_guest", quote, size, NULL, 0); /* a fixed-size buffer: the quote is trimmed */
	assert_true(tdx->available(&o));
	assert_false(snp->available(&o));
	assert_ptr_equal(scone_evidence_tee(&o), tdx); /* what SCONE_MODE=AUTO and HW pick */
	scone_wbuf_init(&out, SCONE_EVIDENCE_MAX, 0);
	assert_ok(tdx->collect(&o, rd, &out));
	assert_int_equal(out.size, size - 70);
	assert_memory_equal(out.data, quote, out.size);
	assert_int_equal(sim.inblob_size, 64);
	assert_memory_equal(sim.inblob, rd, 64);
	assert_int_equal(sim.entries, 0);
	assert_true(dir_empty(root));
	assert_ok(verify_at("tdx", out.data, out.size, dir03, T("2025-07-01T00:00:00Z"), false, &c));
	assert_memory_equal(c.report_data, rd, 64);
	scone_wbuf_free(&out);
	/* a quote that does not bind the report data asked for */
	rd[0] ^= 1;
	scone_wbuf_init(&out, SCONE_EVIDENCE_MAX, 0);
	expect_err(tdx->collect(&o, rd, &out), SCONE_ERR_IO, "does not carry this report data");
	assert_int_equal(out.size, 0);
	/* another provider */
	expect_err(snp->collect(&o, rd, &out), SCONE_ERR_UNSUPPORTED,
		   "provider is \"tdx_guest\", not \"sev_guest\"");
	assert_true(dir_empty(root));
	scone_wbuf_free(&out);
	sim_remove();
	/* no configfs-tsm */
	o.tsm_root = "/nonexistent/tsm/report";
	assert_false(tdx->available(&o));
	scone_wbuf_init(&out, SCONE_EVIDENCE_MAX, 0);
	expect_err(tdx->collect(&o, rd, &out), SCONE_ERR_NOT_FOUND, "cannot create a report entry");
	scone_wbuf_free(&out);
	free(quote);
}

TEST(test_collect_snp_configfs)
{
	size_t size, vsize, n;
	uint8_t *report = slurp(V11 "test-report.bin", &size), *vcek = slurp(V11 "test-vcek.der", &vsize);
	uint8_t *aux = calloc(1, 4096), *tmp = calloc(1, 8192);
	const struct scone_evidence_ops *snp = scone_evidence_find("snp");
	char root[400];
	struct scone_collect_opts o = {.tsm_root = root};
	struct scone_wbuf out;
	struct scone_claims c;

	new_dir("tsm-snp", root, sizeof(root));
	/* the kernel's auxblob: the table padded to a page */
	n = with_table(tmp, report, (struct entry[]){{guid_vcek, vcek, vsize}}, 1);
	memcpy(aux, tmp + SNP_REPORT_SIZE, n - SNP_REPORT_SIZE);
	sim_install("sev_guest", report, size, aux, 4096);
	assert_true(snp->available(&o));
	scone_wbuf_init(&out, SCONE_EVIDENCE_MAX, 0);
	assert_ok(snp->collect(&o, report + SNP_O_REPORT_DATA, &out));
	assert_int_equal(out.size, n);
	assert_memory_equal(out.data, tmp, n);
	assert_memory_equal(sim.inblob, report + SNP_O_REPORT_DATA, 64);
	assert_ok(verify_at("snp", out.data, out.size, NULL, T("2025-01-01T00:00:00Z"), false, &c));
	claim_eq(&c, "product", "Milan");
	scone_wbuf_free(&out);
	/* without an auxblob the evidence is the report alone */
	sim_install("sev_guest", report, size, NULL, 0);
	scone_wbuf_init(&out, SCONE_EVIDENCE_MAX, 0);
	assert_ok(snp->collect(&o, report + SNP_O_REPORT_DATA, &out));
	assert_int_equal(out.size, SNP_REPORT_SIZE);
	scone_wbuf_free(&out);
	/* an outblob that is not a report */
	sim_install("sev_guest", report, 100, NULL, 0);
	scone_wbuf_init(&out, SCONE_EVIDENCE_MAX, 0);
	expect_err(snp->collect(&o, report + SNP_O_REPORT_DATA, &out), SCONE_ERR_IO, "not a report");
	scone_wbuf_free(&out);
	assert_true(dir_empty(root));
	sim_remove();
	free(aux);
	free(tmp);
	free(vcek);
	free(report);
}

TEST(test_collect_gramine)
{
	size_t size;
	uint8_t *quote = slurp(V01 "sgx_quote", &size), *written;
	const struct scone_evidence_ops *sgx = scone_evidence_find("sgx");
	char root[400], path[600];
	struct scone_collect_opts o = {.gramine_root = root};
	struct scone_wbuf out;
	struct scone_claims c;
	uint8_t rd[64] = "Hello, world!";
	size_t wsize;

	new_dir("gramine", root, sizeof(root));
	assert_false(sgx->available(&o));
	snprintf(path, sizeof(path), "%s/attestation_type", root);
	write_file(path, "none\n", 5);
	assert_false(sgx->available(&o));
	scone_wbuf_init(&out, SCONE_EVIDENCE_MAX, 0);
	expect_err(sgx->collect(&o, rd, &out), SCONE_ERR_UNSUPPORTED, "sgx.remote_attestation = \"dcap\"");
	write_file(path, "dcap", 4);
	snprintf(path, sizeof(path), "%s/user_report_data", root);
	write_file(path, "", 0);
	snprintf(path, sizeof(path), "%s/quote", root);
	write_file(path, quote, size);
	assert_true(sgx->available(&o));
	assert_ok(sgx->collect(&o, rd, &out));
	assert_int_equal(out.size, size);
	assert_memory_equal(out.data, quote, size);
	snprintf(path, sizeof(path), "%s/user_report_data", root);
	assert_ok(collateral_read_file(path, 64, &written, &wsize));
	assert_int_equal(wsize, 64);
	assert_memory_equal(written, rd, 64);
	free(written);
	assert_ok(verify_at("sgx", out.data, out.size, dir01, T("2025-07-01T00:00:00Z"), false, &c));
	scone_wbuf_free(&out);
	rd[1] = 'a';
	scone_wbuf_init(&out, SCONE_EVIDENCE_MAX, 0);
	expect_err(sgx->collect(&o, rd, &out), SCONE_ERR_IO, "does not carry this report data");
	scone_wbuf_free(&out);
	free(quote);
}

/* One loaded collateral shared by concurrent verifications (as CAS's threads share it): its cache is locked.
 */
struct worker {
	const char *type;
	const uint8_t *ev;
	size_t size;
	int64_t at;
	int failures;
};

static void *verify_many(void *arg)
{
	struct worker *w = arg;
	struct scone_claims *c = malloc(sizeof(*c));

	for (int i = 0; i < 40 && c; i++) {
		const char *dir = strcmp(w->type, "snp") == 0	? dir_amd
				  : strcmp(w->type, "sgx") == 0 ? dir01
								: dir03;
		w->failures += verify_at(w->type, w->ev, w->size, dir, w->at, false, c) != SCONE_ERR_OK;
	}
	free(c);
	return NULL;
}

TEST(test_shared_collateral_threads)
{
	size_t s1, s3, s11;
	uint8_t *sgx = slurp(V01 "sgx_quote", &s1), *tdx = slurp(V03 "tdx_quote", &s3),
		*snp = slurp(V11 "test-report.bin", &s11);
	struct worker w[6] = {
	    {"sgx", sgx, s1, T("2025-07-01T00:00:00Z"), 0},
	    {"tdx", tdx, s3 - 70, T("2025-07-01T00:00:00Z"), 0},
	    {"snp", snp, s11, T("2025-01-01T00:00:00Z"), 0},
	    {"sgx", sgx, s1, T("2025-07-01T00:00:00Z"), 0},
	    {"tdx", tdx, s3 - 70, T("2025-07-01T00:00:00Z"), 0},
	    {"snp", snp, s11, T("2025-01-01T00:00:00Z"), 0},
	};
	pthread_t t[6];

	for (int i = 0; i < 6; i++)
		assert_int_equal(pthread_create(&t[i], NULL, verify_many, &w[i]), 0);
	for (int i = 0; i < 6; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].failures, 0);
	}
	free(sgx);
	free(tdx);
	free(snp);
}

TEST(test_table_rows)
{
	static const char *const names[] = {"sgx", "tdx", "snp"};
	static const enum scone_evidence_type types[] = {SCONE_EVIDENCE_SGX, SCONE_EVIDENCE_TDX,
							 SCONE_EVIDENCE_SNP};

	for (size_t i = 0; i < N_ELEMS(names); i++) {
		const struct scone_evidence_ops *ops = scone_evidence_find(names[i]);
		assert_non_null(ops);
		assert_int_equal(ops->type, types[i]);
		assert_ptr_equal(scone_evidence_of(types[i]), ops);
		assert_non_null(ops->available && ops->collect && ops->verify ? ops : NULL);
	}
}

/* ---- CAS's hardware mode: the claims of the recorded evidence against sessions ---- */

#define SGX01_MRENCLAVE "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb"
#define SGX01_MRSIGNER "815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6"

static struct scone_session *hw_session(const char *security, const char *variants)
{
	char yaml[4096];
	struct scone_session *s = NULL;
	struct scone_policy_diag d;

	snprintf(yaml, sizeof(yaml),
		 "name: h\nversion: \"0.3\"\nsecurity:\n  attestation:\n    mode: hardware\n%s"
		 "services:\n  - name: app\n    attestation:\n%s",
		 security, variants);
	memset(&d, 0, sizeof(d));
	if (scone_session_parse(yaml, strlen(yaml), &s, &d) != SCONE_ERR_OK) {
		for (size_t i = 0; i < d.count; i++)
			fprintf(stderr, "%s: %s\n", d.errors[i].path, d.errors[i].message);
		fail_msg("session does not parse:\n%s", yaml);
	}
	scone_policy_diag_free(&d);
	return s;
}

/* Match and tolerate: OK, or the error with detail containing want. */
static void hw_expect(const char *security, const char *variants, const struct scone_claims *c,
		      enum scone_err want, const char *detail)
{
	struct scone_session *s = hw_session(security, variants);
	enum scone_err err = cas_attest_match(scone_session_service(s, "app"), c, c->report_data);

	if (!err)
		err = cas_attest_tolerated(s, c);
	if (err != want || (detail && !strstr(scone_err_detail(), detail)))
		fail_msg("expected %d (%s), got %d: %s", (int)want, detail ? detail : "", (int)err,
			 scone_err_detail());
	scone_err_clear();
	scone_session_free(s);
}

#define SGX01_TOLERATE                                                                                       \
	"    tolerate: [software-hardening-needed, insecure-configuration]\n"                                \
	"    ignore_advisories: [INTEL-SA-00289, INTEL-SA-00615]\n"

/* 01: ConfigurationAndSWHardeningNeeded with INTEL-SA-00289 and INTEL-SA-00615, not debug, isvsvn 0. */
TEST(test_hw_policy_sgx)
{
	size_t size;
	uint8_t *ev = slurp(V01 "sgx_quote", &size);
	struct scone_claims c;

	assert_ok(verify_at("sgx", ev, size, dir01, T("2025-07-01T00:00:00Z"), false, &c));
	hw_expect(SGX01_TOLERATE, "      - mrenclave: " SGX01_MRENCLAVE "\n", &c, SCONE_ERR_OK, NULL);
	hw_expect(SGX01_TOLERATE,
		  "      - signer: {mrsigner: " SGX01_MRSIGNER ", isvprodid: 0, isvsvn_max: 3}\n", &c,
		  SCONE_ERR_OK, NULL);
	/* each factor refused */
	hw_expect(SGX01_TOLERATE, "      - mrenclave: " HEXA "\n", &c, SCONE_ERR_ATTESTATION,
		  "measurement mismatch: the sgx evidence measures " SGX01_MRENCLAVE);
	hw_expect(SGX01_TOLERATE, "      - signer: {mrsigner: " HEXA ", isvprodid: 0}\n", &c,
		  SCONE_ERR_ATTESTATION, "signer mismatch");
	hw_expect(SGX01_TOLERATE, "      - signer: {mrsigner: " SGX01_MRSIGNER ", isvprodid: 7}\n", &c,
		  SCONE_ERR_ATTESTATION, "isvprodid mismatch: the enclave's is 0");
	hw_expect(SGX01_TOLERATE,
		  "      - signer: {mrsigner: " SGX01_MRSIGNER ", isvprodid: 0, isvsvn_min: 1}\n", &c,
		  SCONE_ERR_ATTESTATION, "isvsvn 0 is outside");
	/* the platform's state */
	hw_expect("    tolerate: [software-hardening-needed]\n"
		  "    ignore_advisories: [INTEL-SA-00289, INTEL-SA-00615]\n",
		  "      - mrenclave: " SGX01_MRENCLAVE "\n", &c, SCONE_ERR_ATTESTATION,
		  "TCB status is ConfigurationAndSWHardeningNeeded: session h does not tolerate "
		  "insecure-configuration");
	hw_expect("", "      - mrenclave: " SGX01_MRENCLAVE "\n", &c, SCONE_ERR_ATTESTATION,
		  "does not tolerate software-hardening-needed");
	hw_expect("    tolerate: [software-hardening-needed, insecure-configuration]\n"
		  "    ignore_advisories: [INTEL-SA-00289]\n",
		  "      - mrenclave: " SGX01_MRENCLAVE "\n", &c, SCONE_ERR_ATTESTATION,
		  "advisory INTEL-SA-00615 applies to this platform: session h does not list it");
	/* a debug enclave (the flag forced on the verified claims) only with debug-mode */
	c.debug = true;
	hw_expect(SGX01_TOLERATE, "      - mrenclave: " SGX01_MRENCLAVE "\n", &c, SCONE_ERR_ATTESTATION,
		  "the enclave is in debug mode");
	hw_expect("    tolerate: [debug-mode, software-hardening-needed, insecure-configuration]\n"
		  "    ignore_advisories: \"*\"\n",
		  "      - mrenclave: " SGX01_MRENCLAVE "\n", &c, SCONE_ERR_OK, NULL);
	c.debug = false;
	c.tcb_status = SCONE_TCB_REVOKED;
	hw_expect(SGX01_TOLERATE, "      - mrenclave: " SGX01_MRENCLAVE "\n", &c, SCONE_ERR_ATTESTATION,
		  "Revoked, which is never tolerated");
	c.tcb_status = SCONE_TCB_UP_TO_DATE;
	snprintf(c.advisories, sizeof(c.advisories), "INTEL-SA-00161");
	hw_expect("", "      - mrenclave: " SGX01_MRENCLAVE "\n", &c, SCONE_ERR_ATTESTATION,
		  "does not tolerate hyperthreading");
	hw_expect("    tolerate: [hyperthreading]\n", "      - mrenclave: " SGX01_MRENCLAVE "\n", &c,
		  SCONE_ERR_OK, NULL);
	/* the report data binds another key than this connection's */
	{
		struct scone_session *s =
		    hw_session(SGX01_TOLERATE, "      - mrenclave: " SGX01_MRENCLAVE "\n");
		uint8_t other[32] = {1};
		assert_int_equal(cas_attest_match(scone_session_service(s, "app"), &c, other),
				 SCONE_ERR_ATTESTATION);
		assert_non_null(strstr(scone_err_detail(), "wrong report data"));
		scone_err_clear();
		scone_session_free(s);
	}
	free(ev);
}

#define TDX03_MRTD                                                                                           \
	"91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7"

/* 03: UpToDate, not debug; an SGX variant does not admit a TD, nor a TD variant with another RTMR. */
TEST(test_hw_policy_tdx)
{
	size_t size;
	uint8_t *ev = slurp(V03 "tdx_quote", &size);
	struct scone_claims c;
	char variant[512];

	assert_ok(verify_at("tdx", ev, size - 70, dir03, T("2025-07-01T00:00:00Z"), false, &c));
	hw_expect("", "      - mrtd: " TDX03_MRTD "\n", &c, SCONE_ERR_OK, NULL);
	snprintf(variant, sizeof(variant), "      - mrtd: [" TDX03_MRTD "]\n        rtmr0: %s\n",
		 scone_claims_get(&c, "rtmr0"));
	hw_expect("", variant, &c, SCONE_ERR_OK, NULL);
	hw_expect("", "      - mrtd: " TDX03_MRTD "\n        rtmr1: " HEXA HEXA_HALF "\n", &c,
		  SCONE_ERR_ATTESTATION, "runtime measurement mismatch: the evidence has rtmr1");
	hw_expect("", "      - mrenclave: " HEXA "\n", &c, SCONE_ERR_ATTESTATION,
		  "expects no measurement of this kind");
	hw_expect("", "      - mrtd: " HEXA HEXA_HALF "\n", &c, SCONE_ERR_ATTESTATION,
		  "the tdx evidence measures " TDX03_MRTD);
	free(ev);
}

#define SNP09_MEASUREMENT                                                                                    \
	"b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01"

/* 09: a guest whose policy allows debugging and SMT, on a platform with SMT enabled. */
TEST(test_hw_policy_snp)
{
	size_t size;
	uint8_t *ev = slurp(V09 "attestation.bin", &size);
	struct scone_claims c;
	char variant[512];

	assert_ok(verify_at("snp", ev, size, dir_amd, T("2025-01-01T00:00:00Z"), false, &c));
	claim_eq(&c, "smt_enabled", "true");
	hw_expect("", "      - measurement: " SNP09_MEASUREMENT "\n", &c, SCONE_ERR_ATTESTATION,
		  "the guest is in debug mode");
	hw_expect("    tolerate: [debug-mode]\n", "      - measurement: " SNP09_MEASUREMENT "\n", &c,
		  SCONE_ERR_ATTESTATION,
		  "SMT enabled and allowed: session h does not tolerate hyperthreading");
	hw_expect("    tolerate: [debug-mode, hyperthreading]\n",
		  "      - measurement: " SNP09_MEASUREMENT "\n", &c, SCONE_ERR_OK, NULL);
	snprintf(variant, sizeof(variant),
		 "      - measurement: " SNP09_MEASUREMENT "\n        host_data: %s\n",
		 scone_claims_get(&c, "host_data"));
	hw_expect("    tolerate: [debug-mode, hyperthreading]\n", variant, &c, SCONE_ERR_OK, NULL);
	hw_expect("    tolerate: [debug-mode, hyperthreading]\n",
		  "      - measurement: " SNP09_MEASUREMENT "\n        host_data: " HEXA "\n", &c,
		  SCONE_ERR_ATTESTATION, "host data mismatch");
	hw_expect("    tolerate: [debug-mode, hyperthreading]\n", "      - measurement: " HEXA HEXA_HALF "\n",
		  &c, SCONE_ERR_ATTESTATION, "the snp evidence measures " SNP09_MEASUREMENT);
	free(ev);
}

/* The gate: hardware mode admits sgx evidence, verifies it with the collateral, then matches. */
TEST(test_hw_gate)
{
	size_t size;
	uint8_t *ev = slurp(V01 "sgx_quote", &size);
	struct scone_session *s = hw_session(SGX01_TOLERATE, "      - mrenclave: " SGX01_MRENCLAVE "\n");
	struct cas_config_request cr = {.session = "h", .service = "app", .evidence_type = "sgx"};
	struct cas_attest_opts o = {.at = T("2025-07-01T00:00:00Z"), .collateral_dir = dir01};
	struct scone_claims c;
	uint8_t spki[32];

	cr.evidence = ev;
	cr.evidence_size = size;
	memcpy(spki, "Hello, world!", 13); /* what the recorded quote binds */
	memset(spki + 13, 0, sizeof(spki) - 13);
	assert_ok(cas_attest_gate(&o, s, scone_session_service(s, "app"), &cr, spki, &c));
	spki[0] ^= 1;
	assert_int_equal(cas_attest_gate(&o, s, scone_session_service(s, "app"), &cr, spki, &c),
			 SCONE_ERR_ATTESTATION);
	assert_non_null(strstr(scone_err_detail(), "wrong report data"));
	spki[0] ^= 1;
	ev[100] ^= 1; /* in the signed body */
	assert_int_equal(cas_attest_gate(&o, s, scone_session_service(s, "app"), &cr, spki, &c),
			 SCONE_ERR_ATTESTATION);
	assert_non_null(strstr(scone_err_detail(), "sgx evidence refused"));
	ev[100] ^= 1;
	o.collateral_dir = NULL; /* no collateral: a refusal that names it */
	assert_int_equal(cas_attest_gate(&o, s, scone_session_service(s, "app"), &cr, spki, &c),
			 SCONE_ERR_ATTESTATION);
	assert_non_null(strstr(scone_err_detail(), "collateral"));
	snprintf(cr.evidence_type, sizeof(cr.evidence_type), "las");
	assert_int_equal(cas_attest_gate(&o, s, scone_session_service(s, "app"), &cr, spki, &c),
			 SCONE_ERR_ATTESTATION);
	assert_non_null(strstr(scone_err_detail(), "requires hardware (sgx, tdx or snp) evidence"));
	scone_err_clear();
	scone_session_free(s);
	free(ev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table_rows),
	    cmocka_unit_test(test_pinned_roots),
	    cmocka_unit_test(test_rfc3339),
	    cmocka_unit_test(test_der_reader),
	    cmocka_unit_test(test_pem_chain_strict),
	    cmocka_unit_test(test_sgx_v3_layout),
	    cmocka_unit_test(test_sgx_v3_claims),
	    cmocka_unit_test(test_sgx_v3_window),
	    cmocka_unit_test(test_sgx_v3_flips),
	    cmocka_unit_test(test_sgx_v3_truncation_and_trailing),
	    cmocka_unit_test(test_sgx_v3_wrong_type),
	    cmocka_unit_test(test_sgx_lookalike_root),
	    cmocka_unit_test(test_sgx_collateral_refusals),
	    cmocka_unit_test(test_collateral_describe),
	    cmocka_unit_test(test_revocation),
	    cmocka_unit_test(test_tdx_v4_layout),
	    cmocka_unit_test(test_tdx_v4_claims),
	    cmocka_unit_test(test_tdx_v4_flips_and_truncation),
	    cmocka_unit_test(test_tdx_v5),
	    cmocka_unit_test(test_tdx_v5_framing),
	    cmocka_unit_test(test_tcb_levels_sgx),
	    cmocka_unit_test(test_tcb_levels_tdx),
	    cmocka_unit_test(test_qe_identity_checks),
	    cmocka_unit_test(test_tcbinfo_malformed),
	    cmocka_unit_test(test_snp_v2_claims),
	    cmocka_unit_test(test_snp_v2_negatives),
	    cmocka_unit_test(test_snp_bad_vceks),
	    cmocka_unit_test(test_snp_cert_table),
	    cmocka_unit_test(test_snp_turin_vcek),
	    cmocka_unit_test(test_snp_genoa_v3),
	    cmocka_unit_test(test_snp_turin_v5),
	    cmocka_unit_test(test_snp_vlek),
	    cmocka_unit_test(test_snp_collateral_and_crl),
	    cmocka_unit_test(test_snp_report_fields),
	    cmocka_unit_test(test_collect_tdx_configfs),
	    cmocka_unit_test(test_collect_snp_configfs),
	    cmocka_unit_test(test_collect_gramine),
	    cmocka_unit_test(test_shared_collateral_threads),
	    cmocka_unit_test(test_hw_policy_sgx),
	    cmocka_unit_test(test_hw_policy_tdx),
	    cmocka_unit_test(test_hw_policy_snp),
	    cmocka_unit_test(test_hw_gate),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
