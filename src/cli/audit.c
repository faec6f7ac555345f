/*
 * audit.c - `scone cas verify-audit-log`: check a CAS audit log (an export
 * from `scone-cas audit-export`, or a replica's --audit-mirror file) entry
 * by entry: each entry's hash and CAS's signature, and that each chain runs
 * without a gap from its start; with --previous, that the log holds every
 * entry an earlier log held (else the store was rolled back in between).
 * The first broken entry is named by line, chain and seq.
 *
 * CAS's key comes from --cert, or from the log's header checked against
 * --fingerprint, or against the fingerprint pinned for the CAS (--cas, or
 * the default one of `scone cas trust`): a key taken from the log alone
 * would prove nothing.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cas/audit.h"
#include "cli.h"
#include "lib/crypto.h"
#include "lib/hex.h"

#define USAGE                                                                                                \
	"scone cas verify-audit-log FILE [--cert CAS.crt | --fingerprint SHA256 | --cas ADDR] [--previous "  \
	"OLD]"

struct verify_opts {
	const char *file, *cert, *fingerprint, *cas, *previous;
};

static enum scone_err key_from_cert_file(const char *path, const uint8_t *want_fp, EVP_PKEY **key)
{
	FILE *f = fopen(path, "r");
	X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	uint8_t fp[32];
	enum scone_err err = SCONE_ERR_OK;

	if (f)
		fclose(f);
	if (!x)
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: not a PEM certificate", path);
	if (want_fp && (scone_cert_sha256(x, fp) != SCONE_ERR_OK || !scone_ct_equal(fp, want_fp, 32)))
		err = scone_err_set(SCONE_ERR_UNTRUSTED,
				    "%s is not the certificate with the given fingerprint", path);
	*key = err == SCONE_ERR_OK ? X509_get_pubkey(x) : NULL;
	X509_free(x);
	return err;
}

/* The certificate in the log's header line, if its SHA-256 is want_fp. */
static enum scone_err key_from_header(const char *path, const uint8_t want_fp[32], EVP_PKEY **key)
{
	FILE *f = fopen(path, "r");
	char *line = malloc(SCONE_AUDIT_LINE_MAX + 4096), *pem = NULL;
	X509 *x = NULL;
	BIO *b = NULL;
	uint8_t fp[32];
	enum scone_err err = SCONE_ERR_OK;

	*key = NULL;
	if (!f || !line || !fgets(line, SCONE_AUDIT_LINE_MAX + 4096, f))
		err = scone_err_set(SCONE_ERR_IO, "%s: cannot read its first line", path);
	if (err == SCONE_ERR_OK)
		err = cas_audit_parse_header(line, strcspn(line, "\n"), &pem);
	if (err == SCONE_ERR_OK &&
	    (!(b = BIO_new_mem_buf(pem, -1)) || !(x = PEM_read_bio_X509(b, NULL, NULL, NULL))))
		err = scone_err_set(SCONE_ERR_MALFORMED, "%s: the header's certificate does not parse", path);
	if (err == SCONE_ERR_OK &&
	    (scone_cert_sha256(x, fp) != SCONE_ERR_OK || !scone_ct_equal(fp, want_fp, 32)))
		err = scone_err_set(
		    SCONE_ERR_UNTRUSTED,
		    "%s was written by a CAS whose certificate is not the one with the given fingerprint",
		    path);
	if (err == SCONE_ERR_OK)
		*key = X509_get_pubkey(x);
	X509_free(x);
	BIO_free(b);
	free(pem);
	free(line);
	if (f)
		fclose(f);
	return err;
}

/* The fingerprint to trust: --fingerprint, else the pin of --cas or the default CAS. */
static enum scone_err trusted_fp(const struct verify_opts *o, uint8_t fp[32], bool *have)
{
	json_t *cfg = NULL;
	char addr[300], host[256];
	const char *pin;
	uint16_t port;
	enum scone_err err;

	*have = false;
	if (o->fingerprint) {
		*have = true;
		return scone_fingerprint_parse(o->fingerprint, fp);
	}
	SCONE_TRY(cli_config_load(&cfg));
	err = cli_cas_key(cli_cas_address(o->cas, cfg), addr, sizeof(addr), host, sizeof(host), &port);
	pin = err == SCONE_ERR_OK ? cli_config_pin(cfg, addr) : NULL;
	if (pin) {
		*have = true;
		err = scone_fingerprint_parse(pin, fp);
	}
	json_decref(cfg);
	return err;
}

static enum scone_err load_key(const struct verify_opts *o, EVP_PKEY **key)
{
	uint8_t fp[32];
	bool have = false;

	if (o->cert && !o->fingerprint)
		return key_from_cert_file(o->cert, NULL, key);
	SCONE_TRY(trusted_fp(o, fp, &have));
	if (!have)
		return scone_err_set(SCONE_ERR_INVALID,
				     "no CAS to trust: give --cert, --fingerprint, or pin the CAS with "
				     "`scone cas trust`");
	if (o->cert)
		return key_from_cert_file(o->cert, fp, key);
	return key_from_header(o->file, fp, key);
}

/* Check one file into l; prints the first broken entry and returns 1 if there is one. */
static int check_file(struct cas_audit_log *l, const char *path)
{
	FILE *f = fopen(path, "r");
	unsigned long bad = 0;
	enum scone_err err;

	if (!f)
		return cli_fail(scone_err_from_errno(errno), path);
	err = cas_audit_log_check(l, f, path, false, NULL, NULL, &bad);
	fclose(f);
	if (err == SCONE_ERR_OK)
		return 0;
	if (bad)
		fprintf(stderr, "scone: first broken entry: %s\n", scone_err_detail());
	return cli_fail(err, path);
}

static int parse_verify(int argc, char **argv, struct verify_opts *o)
{
	static const struct option opts[] = {
	    {"cert", required_argument, NULL, 'c'}, {"fingerprint", required_argument, NULL, 'f'},
	    {"cas", required_argument, NULL, 'a'},  {"previous", required_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},	    {NULL, 0, NULL, 0}};
	int c;

	memset(o, 0, sizeof(*o));
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:f:a:p:h", opts, NULL)) != -1) {
		if (c == 'c')
			o->cert = optarg;
		else if (c == 'f')
			o->fingerprint = optarg;
		else if (c == 'a')
			o->cas = optarg;
		else if (c == 'p')
			o->previous = optarg;
		else if (c == 'h')
			return -1;
		else
			return cli_usage(USAGE, "unknown option");
	}
	if (argc - optind != 1)
		return cli_usage(USAGE, "expected one FILE");
	o->file = argv[optind];
	return 0;
}

int cli_cas_verify_audit_log(int argc, char **argv)
{
	struct verify_opts o;
	struct cas_audit_log *l = NULL, *old = NULL;
	EVP_PKEY *key = NULL;
	uint64_t n = 0;
	size_t chains = 0;
	enum scone_err err;
	int rc = parse_verify(argc, argv, &o);

	if (rc < 0) {
		printf(
		    "%s\n\nCheck a CAS audit log (scone-cas audit-export, or a --audit-mirror file): every\n"
		    "entry's hash and CAS's signature, and every chain without a gap. The first broken\n"
		    "entry is named (line, chain, seq) and the exit status is 1. CAS's key: --cert, or\n"
		    "the log's own certificate if its SHA-256 is --fingerprint or the pin of the CAS\n"
		    "(--cas ADDR, default the CAS `scone cas trust` pinned first). --previous OLD: the\n"
		    "log must also hold every entry of an earlier log OLD (a store rolled back in\n"
		    "between fails this).\n",
		    USAGE);
		return 0;
	}
	if (rc)
		return rc;
	if ((err = load_key(&o, &key)))
		return cli_fail(err, o.file);
	rc = 1;
	if ((err = cas_audit_log_new(key, &l)) || (o.previous && (err = cas_audit_log_new(key, &old)))) {
		cli_fail(err, "audit log");
		goto out;
	}
	if ((o.previous && check_file(old, o.previous)) || check_file(l, o.file))
		goto out;
	if (old && (err = cas_audit_log_extends(l, old))) {
		fprintf(stderr, "scone: %s does not extend %s: the log was rolled back or cut: %s\n", o.file,
			o.previous, scone_err_detail());
		goto out;
	}
	cas_audit_log_counts(l, &n, &chains);
	printf("audit log %s: %llu entries in %zu chains, every hash and signature checked%s\n", o.file,
	       (unsigned long long)n, chains, old ? ", extends the previous log" : "");
	rc = 0;
out:
	cas_audit_log_free(l);
	cas_audit_log_free(old);
	EVP_PKEY_free(key);
	return rc;
}
