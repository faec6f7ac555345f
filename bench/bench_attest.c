/*
 * bench_attest.c - verifications per second of the hardware evidence
 * types on the recorded vectors, with the collateral loaded once (as CAS
 * keeps it), against the rate of one plain OpenSSL ECDSA verification of
 * the same curve, measured in the same run.
 *
 *   RESULT evidence.sgx_verify value=<verifications/s> unit=ops/s baseline=<ECDSA P-256 verifies/s> ratio=<r>
 *   RESULT evidence.tdx_verify ...                                baseline=<ECDSA P-256 verifies/s>
 *   RESULT evidence.snp_verify ...                                baseline=<ECDSA P-384 verifies/s>
 *   RESULT evidence.*_verify_cold ...  the same with the certificate chain cache off
 *
 * An SGX or TDX verification with a warm chain cache does two P-256
 * verifications (QE report, quote) plus parsing and the collateral
 * decisions, so its ratio cannot exceed 0.5; an SNP one does one P-384
 * verification (the VCEK comes from the collateral directory), ratio <= 1.
 * One thread: figures are per core. docs/performance.md has the method.
 *
 * Environment: BENCH_RUNS (default 5, the median is reported),
 * BENCH_ATTEST_SECONDS (default 1, per measurement), BENCH_ATTEST_VECTORS
 * (default ../shared/testdata/attestation).
 */
#include <ftw.h>
#include <stdbool.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "attest/attest.h"
#include "attest/collateral.h"
#include "lib/rfc3339.h"

#define GOAL 2000.0

static unsigned runs = 5;
static double seconds = 1.0;
static char vec_dir[512];

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void die(const char *what)
{
	fprintf(stderr, "bench_attest: %s: %s\n", what, scone_err_detail());
	exit(1);
}

static uint8_t *slurp(const char *rel, size_t *size)
{
	char path[700];
	uint8_t *data;

	snprintf(path, sizeof(path), "%s/%s", vec_dir, rel);
	if (collateral_read_file(path, 1u << 20, &data, size))
		die(path);
	return data;
}

/* ---------------- the baseline: one ECDSA verification ---------------- */

struct ecdsa_case {
	EVP_PKEY *key;
	const char *md;
	uint8_t msg[0x2A0], sig[160];
	size_t msg_size, sig_size;
};

static void ecdsa_setup(struct ecdsa_case *e, const char *curve, const char *md, size_t msg_size)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	e->key = EVP_EC_gen(curve);
	e->md = md;
	e->msg_size = msg_size;
	memset(e->msg, 0x5a, sizeof(e->msg));
	e->sig_size = sizeof(e->sig);
	if (!e->key || !ctx || EVP_DigestSignInit_ex(ctx, NULL, md, NULL, NULL, e->key, NULL) != 1 ||
	    EVP_DigestSign(ctx, e->sig, &e->sig_size, e->msg, msg_size) != 1) {
		fprintf(stderr, "bench_attest: cannot make an %s signature\n", curve);
		exit(1);
	}
	EVP_MD_CTX_free(ctx);
}

/* The same calls the verifiers make: a fresh digest context per verification. */
static void ecdsa_once(void *arg)
{
	struct ecdsa_case *e = arg;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	if (!ctx || EVP_DigestVerifyInit_ex(ctx, NULL, e->md, NULL, NULL, e->key, NULL) != 1 ||
	    EVP_DigestVerify(ctx, e->sig, e->sig_size, e->msg, e->msg_size) != 1) {
		fprintf(stderr, "bench_attest: the baseline signature does not verify\n");
		exit(1);
	}
	EVP_MD_CTX_free(ctx);
}

/* ---------------- the verifiers ---------------- */

struct evidence_case {
	const struct scone_evidence_ops *ops;
	const uint8_t *ev;
	size_t size;
	struct scone_verify_opts o;
};

static void verify_once(void *arg)
{
	static struct scone_claims claims;
	struct evidence_case *c = arg;

	if (c->ops->verify(c->ev, c->size, &c->o, &claims) != SCONE_ERR_OK)
		die(c->ops->name);
}

/* Operations per second of fn over `seconds` (one run). */
static double rate_once(void (*fn)(void *), void *arg)
{
	double start = now(), t;
	unsigned long n = 0;

	do {
		for (int k = 0; k < 16; k++)
			fn(arg);
		n += 16;
	} while ((t = now() - start) < seconds);
	return (double)n / t;
}

static void result(const char *name, double value, double baseline)
{
	printf("RESULT %s value=%.0f unit=ops/s baseline=%.0f ratio=%.2f\n", name, value, baseline,
	       value / baseline);
	fflush(stdout);
}

static char tmp_dir[256];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st, (void)flag, (void)f;
	return remove(p);
}

static void cleanup(void)
{
	if (tmp_dir[0])
		nftw(tmp_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static struct scone_collateral *make_collateral(void)
{
	static const char *const files[] = {"01-sgx-v3-phala/sgx_quote_collateral.json",
					    "03-tdx-v4-phala/tdx_quote_collateral.json",
					    "11-snp-v2-trustee-milan/test-vcek.der", NULL};
	struct scone_collateral *c;

	snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/bench-attest.XXXXXX");
	if (!mkdtemp(tmp_dir))
		die("mkdtemp");
	atexit(cleanup);
	for (size_t i = 0; files[i]; i++) {
		struct scone_wbuf report;
		size_t size;
		uint8_t *data = slurp(files[i], &size);
		scone_wbuf_init(&report, 1u << 16, 0);
		if (scone_collateral_import(tmp_dir, data, size, &report))
			die(files[i]);
		scone_wbuf_free(&report);
		free(data);
	}
	if (scone_collateral_load(tmp_dir, &c))
		die("collateral");
	return c;
}

/*
 * The series measured, interleaved run by run (baseline, then the
 * verifiers, then again) so that load from elsewhere on the machine
 * touches all of them alike; each figure is the median of its runs.
 */
struct series {
	const char *name;
	void (*fn)(void *);
	void *arg;
	int baseline; /* index of the baseline series, or -1 */
	bool cold;    /* chain cache off */
	double r[1000];
};

static void measure_all(struct series *s, size_t n, struct scone_collateral *coll)
{
	for (size_t i = 0; i < n; i++)
		s[i].fn(s[i].arg); /* warm up: the pinned roots, the chain cache */
	for (unsigned run = 0; run < runs; run++) {
		fprintf(stderr, "run %u:", run + 1);
		for (size_t i = 0; i < n; i++) {
			coll->no_cache = s[i].cold;
			s[i].r[run] = rate_once(s[i].fn, s[i].arg);
			fprintf(stderr, " %s %.0f/s", s[i].name + 9, s[i].r[run]);
		}
		coll->no_cache = false;
		fprintf(stderr, "\n");
	}
	for (size_t i = 0; i < n; i++)
		s[i].r[0] = median(s[i].r, runs);
	for (size_t i = 0; i < n; i++) {
		double base = s[i].baseline < 0 ? s[i].r[0] : s[s[i].baseline].r[0];
		result(s[i].name, s[i].r[0], base);
		if (s[i].baseline >= 0 && !s[i].cold)
			fprintf(stderr, "%s: goal >= %.0f/s per core: %s\n", s[i].name, GOAL,
				s[i].r[0] >= GOAL ? "met" : "MISSED");
	}
}

static void env_settings(void)
{
	const char *v = getenv("BENCH_RUNS"), *s = getenv("BENCH_ATTEST_SECONDS"),
		   *d = getenv("BENCH_ATTEST_VECTORS");

	if (v && *v)
		runs = (unsigned)strtoul(v, NULL, 10);
	if (runs < 1 || runs > 1000)
		runs = 5;
	if (s && *s)
		seconds = strtod(s, NULL);
	if (!(seconds > 0 && seconds <= 60))
		seconds = 1.0;
	snprintf(vec_dir, sizeof(vec_dir), "%s", d && *d ? d : "../shared/testdata/attestation");
}

int main(void)
{
	struct ecdsa_case p256, p384;
	struct scone_collateral *coll;
	struct evidence_case sgx, tdx, snp;
	size_t size;
	int64_t at_intel = 0, at_amd = 0;

	env_settings();
	coll = make_collateral();
	if (scone_rfc3339_parse("2025-07-01T00:00:00Z", "at", &at_intel) ||
	    scone_rfc3339_parse("2025-01-01T00:00:00Z", "at", &at_amd))
		die("time");
	sgx = (struct evidence_case){scone_evidence_find("sgx"),
				     slurp("01-sgx-v3-phala/sgx_quote", &size),
				     0,
				     {.at = at_intel, .collateral = coll}};
	sgx.size = size;
	tdx = (struct evidence_case){scone_evidence_find("tdx"),
				     slurp("03-tdx-v4-phala/tdx_quote", &size),
				     0,
				     {.at = at_intel, .collateral = coll}};
	tdx.size = size - 70; /* the quote without its buffer's zero padding */
	snp = (struct evidence_case){scone_evidence_find("snp"),
				     slurp("11-snp-v2-trustee-milan/test-report.bin", &size),
				     0,
				     {.at = at_amd, .collateral = coll}};
	snp.size = size;

	ecdsa_setup(&p256, "P-256", "SHA256", 632);
	ecdsa_setup(&p384, "P-384", "SHA384", 0x2A0);
	{
		struct series all[] = {
		    {"evidence.ecdsa_p256_verify", ecdsa_once, &p256, -1, false, {0}},
		    {"evidence.ecdsa_p384_verify", ecdsa_once, &p384, -1, false, {0}},
		    {"evidence.sgx_verify", verify_once, &sgx, 0, false, {0}},
		    {"evidence.tdx_verify", verify_once, &tdx, 0, false, {0}},
		    {"evidence.snp_verify", verify_once, &snp, 1, false, {0}},
		    {"evidence.sgx_verify_cold", verify_once, &sgx, 0, true, {0}},
		    {"evidence.tdx_verify_cold", verify_once, &tdx, 0, true, {0}},
		    {"evidence.snp_verify_cold", verify_once, &snp, 1, true, {0}},
		};
		measure_all(all, sizeof(all) / sizeof(all[0]), coll);
	}

	free((void *)sgx.ev);
	free((void *)tdx.ev);
	free((void *)snp.ev);
	EVP_PKEY_free(p256.key);
	EVP_PKEY_free(p384.key);
	scone_collateral_free(coll);
	return 0;
}
