/*
 * cas_attest.c - `scone cas attest ADDR`: pin a CAS only after it proved
 * what it is. CAS's evidence (GET /v1/cas/evidence) binds SHA-256 of its TLS
 * certificate; it is verified with the same verifiers CAS uses for
 * programs (src/attest), the measurement given here must match, and the
 * platform's state must be tolerated (src/attest/tolerate.c). A CAS
 * without a TEE says so: it is then pinned only by a fingerprint the user
 * checked out of band (--fingerprint), as `scone cas trust` does.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "attest/attest.h"
#include "attest/tolerate.h"
#include "cli.h"
#include "lib/base64.h"
#include "lib/crypto.h"
#include "lib/hex.h"
#include "lib/rfc3339.h"

#define MAX_LIST 32

static const char usage[] =
    "scone cas attest ADDR --measurement HEX[,HEX...] [--tolerate LIST] [--ignore-advisories LIST]\n"
    "                 [--collateral DIR] [--at RFC3339] [--fingerprint SHA256] [--replace]";

struct attest_args {
	const char *addr, *fingerprint, *collateral;
	char *measurements[MAX_LIST], *tolerate[MAX_LIST], *ignore[MAX_LIST];
	size_t n_measurements, n_tolerate, n_ignore;
	int64_t at;
	bool replace;
	char *lists[3]; /* the strdup'd option values the arrays point into */
};

static void help(void)
{
	printf("%s\n\n"
	       "Fetch the evidence of the CAS at ADDR (host:port), bound to the TLS certificate it\n"
	       "presents, verify it to the TEE vendor's root (sgx, tdx or snp), check its measurement\n"
	       "and the platform's state, and only then pin the CAS as `scone cas trust` does.\n\n"
	       "  --measurement HEX[,HEX]   what CAS's TEE must measure (MRENCLAVE, MRTD or SNP\n"
	       "                            MEASUREMENT), any one of them; required\n"
	       "  --tolerate LIST           platform issues accepted, comma-separated: debug-mode,\n"
	       "                            hyperthreading, outdated-tcb, software-hardening-needed,\n"
	       "                            insecure-configuration\n"
	       "  --ignore-advisories LIST  advisory ids accepted (INTEL-SA-...), or *\n"
	       "  --collateral DIR          Intel and AMD collateral (scone attest collateral import)\n"
	       "  --at RFC3339              verify as of this time (default now)\n"
	       "  --fingerprint SHA256      the certificate the CAS must present; for a CAS without a\n"
	       "                            TEE the only way to pin it (checked out of band)\n"
	       "  --replace                 replace an existing pin of ADDR\n\n"
	       "Exit status: 0 pinned, 1 refused (the reason on stderr), 2 usage.\n",
	       usage);
}

/* Split a comma-separated option value into v (pointing into a copy kept in *keep). */
static int split(const char *text, char **keep, char **v, size_t *n)
{
	char *save = NULL;

	free(*keep);
	if (!(*keep = strdup(text)))
		return cli_fail(scone_err_set(SCONE_ERR_NOMEM, "options"), "scone cas attest");
	*n = 0;
	for (char *t = strtok_r(*keep, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (*n == MAX_LIST)
			return cli_usage(usage, "at most 32 values per list");
		v[(*n)++] = t;
	}
	return 0;
}

static void args_free(struct attest_args *a)
{
	for (int i = 0; i < 3; i++)
		free(a->lists[i]);
}

static int parse_args(int argc, char **argv, struct attest_args *a)
{
	static const struct option opts[] = {{"measurement", required_argument, NULL, 'm'},
					     {"tolerate", required_argument, NULL, 't'},
					     {"ignore-advisories", required_argument, NULL, 'i'},
					     {"collateral", required_argument, NULL, 'c'},
					     {"at", required_argument, NULL, 'a'},
					     {"fingerprint", required_argument, NULL, 'f'},
					     {"replace", no_argument, NULL, 'r'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	int c, rc = 0;

	optind = 1;
	while (!rc && (c = getopt_long(argc, argv, "m:t:i:c:a:f:rh", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			rc = split(optarg, &a->lists[0], a->measurements, &a->n_measurements);
			for (size_t i = 0; !rc && i < a->n_measurements; i++)
				if (strlen(a->measurements[i]) != 64 && strlen(a->measurements[i]) != 96)
					rc = cli_usage(usage, "--measurement: 64 or 96 hex digits each");
			break;
		case 't':
			rc = split(optarg, &a->lists[1], a->tolerate, &a->n_tolerate);
			break;
		case 'i':
			rc = split(optarg, &a->lists[2], a->ignore, &a->n_ignore);
			break;
		case 'c':
			a->collateral = optarg;
			break;
		case 'a':
			if (scone_rfc3339_parse(optarg, "--at", &a->at))
				rc = cli_fail(SCONE_ERR_INVALID, "--at");
			break;
		case 'f':
			a->fingerprint = optarg;
			break;
		case 'r':
			a->replace = true;
			break;
		case 'h':
			help();
			return -1;
		default:
			return cli_usage(usage, "unknown option");
		}
	}
	if (!rc && argc - optind != 1)
		rc = cli_usage(usage, "expected ADDR");
	if (!rc)
		a->addr = argv[optind];
	return rc;
}

/* The evidence JSON: {"type": "none", "note"} or {"type", "evidence": base64}. */
static int fetch(const char *host, uint16_t port, const uint8_t fp[32], json_t **out)
{
	struct scone_https_opts o = {.host = host, .port = port, .pin_sha256 = fp, .timeout_ms = 15000};
	struct scone_https_response r = {0};
	enum scone_err err = scone_https_request(&o, "GET", "/v1/cas/evidence", NULL, NULL, 0, &r);
	int rc = 0;

	if (err)
		return cli_fail(err, host);
	if (r.status != 200)
		rc = cli_http_fail(&r, "CAS evidence");
	else if (!(*out = json_loads(r.body, 0, NULL)) || !json_is_string(json_object_get(*out, "type")))
		rc = cli_fail(
		    scone_err_set(SCONE_ERR_MALFORMED, "CAS's evidence answer is not {\"type\": ...}"), host);
	scone_https_response_free(&r);
	return rc;
}

/* A CAS without a TEE: pinned only by a fingerprint checked out of band. */
static int no_tee(const struct attest_args *a, const char *addr_key, const char *got_hex, const json_t *j)
{
	const char *note = json_string_value(json_object_get(j, "note"));
	uint8_t want[32];
	char want_hex[65];

	if (!a->fingerprint) {
		fprintf(stderr,
			"scone: CAS %s has no TEE evidence (%s). It cannot prove what it is: check its "
			"certificate fingerprint %s out of band, then: scone cas trust %s --fingerprint %s\n",
			addr_key, note ? note : "type none", got_hex, addr_key, got_hex);
		return 1;
	}
	if (scone_fingerprint_parse(a->fingerprint, want))
		return cli_fail(SCONE_ERR_INVALID, "--fingerprint");
	scone_hex_encode(want_hex, sizeof(want_hex), want, 32);
	if (strcmp(want_hex, got_hex) != 0) {
		fprintf(stderr, "scone: %s presents certificate %s, not %s; not trusted\n", addr_key, got_hex,
			want_hex);
		return 1;
	}
	if (cli_save_pin(addr_key, got_hex, a->replace))
		return 1;
	printf("CAS %s has no TEE: it proved nothing about its code; trusted by its fingerprint %s\n",
	       addr_key, got_hex);
	return 0;
}

/* Verify the evidence, its binding to the certificate fp, the measurement and the platform's state. */
static enum scone_err judge(const struct attest_args *a, const json_t *j, const uint8_t fp[32],
			    struct scone_claims *c)
{
	const struct scone_evidence_ops *ops =
	    scone_evidence_find(json_string_value(json_object_get(j, "type")));
	const char *b64 = json_string_value(json_object_get(j, "evidence"));
	struct scone_verify_opts vo = {.at = a->at, .collateral_dir = a->collateral};
	struct scone_tolerance t = {.tolerate = (const char *const *)a->tolerate,
				    .n_tolerate = a->n_tolerate,
				    .ignore = (const char *const *)a->ignore,
				    .n_ignore = a->n_ignore,
				    .who = "--tolerate/--ignore-advisories"};
	static const uint8_t zero[32];
	char meas[2 * sizeof(c->measurement) + 1];
	uint8_t *ev;
	size_t n = 0;
	enum scone_err err;
	bool found = false;

	if (!ops || ops->type == SCONE_EVIDENCE_NONE || ops->type == SCONE_EVIDENCE_LAS || !b64)
		return scone_err_set(SCONE_ERR_ATTESTATION,
				     "CAS answered evidence of type %s, not sgx, tdx or snp",
				     json_string_value(json_object_get(j, "type")));
	if (!(ev = malloc(scone_base64_decoded_max(strlen(b64)) + 1)))
		return scone_err_set(SCONE_ERR_NOMEM, "evidence");
	err = scone_base64_decode(b64, strlen(b64), ev, scone_base64_decoded_max(strlen(b64)) + 1, &n, 0,
				  "evidence");
	if (!err)
		err = ops->verify(ev, n, &vo, c);
	free(ev);
	if (err)
		return scone_err_set(SCONE_ERR_ATTESTATION, "%s evidence refused: %s", ops->name,
				     scone_err_detail());
	if (!scone_ct_equal(c->report_data, fp, 32) || !scone_ct_equal(c->report_data + 32, zero, 32))
		return scone_err_set(SCONE_ERR_ATTESTATION,
				     "the evidence binds another certificate than the one this CAS presents "
				     "(evidence copied from another server)");
	scone_hex_encode(meas, sizeof(meas), c->measurement, c->measurement_size);
	for (size_t i = 0; i < a->n_measurements; i++)
		found = found || strcasecmp(a->measurements[i], meas) == 0;
	if (!found)
		return scone_err_set(SCONE_ERR_ATTESTATION, "measurement mismatch: CAS's TEE measures %s",
				     meas);
	return scone_claims_tolerated(c, &t);
}

int cli_cas_attest(int argc, char **argv)
{
	struct attest_args a = {0};
	char addr_key[300], host[256], got_hex[65];
	uint8_t got[32], want[32];
	struct scone_claims c;
	json_t *j = NULL;
	uint16_t port;
	enum scone_err err;
	int rc = parse_args(argc, argv, &a);

	if (rc)
		goto out;
	if ((err = cli_cas_key(a.addr, addr_key, sizeof(addr_key), host, sizeof(host), &port))) {
		rc = cli_fail(err, "ADDR");
		goto out;
	}
	if ((err = scone_https_probe(host, port, 10000, got))) {
		rc = cli_fail(err, addr_key);
		goto out;
	}
	scone_hex_encode(got_hex, sizeof(got_hex), got, 32);
	if ((rc = fetch(host, port, got, &j)))
		goto out;
	if (!strcmp(json_string_value(json_object_get(j, "type")), "none")) {
		rc = no_tee(&a, addr_key, got_hex, j);
		goto out;
	}
	if (!a.n_measurements) {
		rc = cli_usage(usage, "--measurement is required: what CAS's TEE must measure");
		goto out;
	}
	if (a.fingerprint &&
	    (scone_fingerprint_parse(a.fingerprint, want) || !scone_ct_equal(want, got, 32))) {
		fprintf(stderr, "scone: %s presents certificate %s, not %s; not trusted\n", addr_key, got_hex,
			a.fingerprint);
		rc = 1;
		goto out;
	}
	if ((err = judge(&a, j, got, &c))) {
		fprintf(stderr, "scone: CAS %s not trusted: %s\n", addr_key, scone_err_detail());
		rc = 1;
		goto out;
	}
	if ((rc = cli_save_pin(addr_key, got_hex, a.replace)))
		goto out;
	printf("CAS %s proved itself with %s evidence (TCB status %s); trusted (certificate SHA-256 %s)\n",
	       addr_key, json_string_value(json_object_get(j, "type")), scone_tcb_status_name(c.tcb_status),
	       got_hex);
out:
	json_decref(j);
	args_free(&a);
	return rc < 0 ? 0 : rc;
}
