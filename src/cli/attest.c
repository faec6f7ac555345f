/*
 * attest.c - `scone attest verify|collateral`: verify recorded hardware
 * evidence (SGX DCAP, TDX, SEV-SNP) to the vendors' pinned roots and print
 * its claims; fill and check the offline collateral directory.
 *
 * Exit status of verify: 0 authentic (signatures and chains to the pinned
 * roots verify, collateral current), 2 not (the message names the check),
 * 1 for usage errors and unreadable input.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attest/attest.h"
#include "cli.h"
#include "lib/rfc3339.h"

#define EXIT_NOT_AUTHENTIC 2

static const char verify_usage[] =
    "scone attest verify FILE --type sgx|tdx|snp [--collateral DIR] [--at RFC3339] [--padded]";
static const char import_usage[] = "scone attest collateral import --dir DIR FILE...";
static const char check_usage[] = "scone attest collateral check DIR [--at RFC3339]";

/* A usage error: exit 1 (2 means "not authentic" here). */
static int usage(const char *use, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int usage(const char *use, const char *fmt, ...)
{
	va_list ap;

	fputs("scone: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nUsage: %s\n", use);
	return 1;
}

static int read_input(const char *path, struct scone_wbuf *out, size_t max)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	uint8_t buf[8192];
	size_t n;
	enum scone_err err = SCONE_ERR_OK;

	if (!f) {
		fprintf(stderr, "scone: cannot open %s\n", path);
		return 1;
	}
	while (!err && (n = fread(buf, 1, sizeof(buf), f)) > 0)
		err = scone_wbuf_put(out, buf, n);
	if (f != stdin)
		fclose(f);
	if (err) {
		fprintf(stderr, "scone: %s: more than %zu bytes\n", path, max);
		return 1;
	}
	return 0;
}

static int parse_at(const char *text, int64_t *at, const char *use)
{
	if (scone_rfc3339_parse(text, "--at", at))
		return usage(use, "%s", scone_err_detail());
	return 0;
}

static void verify_help(void)
{
	printf("%s\n\n"
	       "Verify recorded hardware evidence to the vendor's pinned root and print its\n"
	       "claims as JSON (docs/attestation.md, \"Hardware evidence\").\n\n"
	       "  FILE              the evidence: an SGX quote (v3), a TDX quote (v4, v5), or an SEV-SNP\n"
	       "                    report (v2, v3, v5), optionally followed by its certificate table;\n"
	       "                    - reads stdin\n"
	       "  --type T          sgx, tdx or snp\n"
	       "  --collateral DIR  the offline collateral directory (Intel TCB info, QE identities,\n"
	       "                    CRLs; AMD VCEKs): see `scone attest collateral import`\n"
	       "  --at RFC3339      verify as of this time (default now), e.g. 2025-07-01T00:00:00Z:\n"
	       "                    certificates, CRLs and collateral must be valid then\n"
	       "  --padded          accept zero bytes after the evidence (recorded fixed-size buffers)\n\n"
	       "Exit status: 0 authentic, 2 not authentic (the message names the failed check),\n"
	       "1 usage error. The TCB status is a claim: whether it is acceptable is the session's\n"
	       "decision.\n",
	       verify_usage);
}

static int print_claims(const struct scone_claims *c)
{
	struct scone_wbuf w;
	enum scone_err err;

	scone_wbuf_init(&w, 1u << 20, 0);
	err = scone_claims_to_json(c, &w);
	if (!err)
		printf("%.*s\n", (int)w.size, (const char *)w.data);
	scone_wbuf_free(&w);
	return err ? cli_fail(err, "claims") : 0;
}

static int attest_verify(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"type", required_argument, NULL, 't'}, {"collateral", required_argument, NULL, 'c'},
	    {"at", required_argument, NULL, 'a'},   {"padded", no_argument, NULL, 'p'},
	    {"help", no_argument, NULL, 'h'},	    {NULL, 0, NULL, 0}};
	struct scone_verify_opts vo = {0};
	const struct scone_evidence_ops *ops = NULL;
	struct scone_claims claims;
	struct scone_wbuf ev;
	enum scone_err err;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			verify_help();
			return 0;
		} else if (c == 't') {
			ops = scone_evidence_find(optarg);
			if (!ops || (ops->type != SCONE_EVIDENCE_SGX && ops->type != SCONE_EVIDENCE_TDX &&
				     ops->type != SCONE_EVIDENCE_SNP))
				return usage(verify_usage, "--type %s: expected sgx, tdx or snp", optarg);
		} else if (c == 'c') {
			vo.collateral_dir = optarg;
		} else if (c == 'a') {
			if ((rc = parse_at(optarg, &vo.at, verify_usage)))
				return rc;
		} else if (c == 'p') {
			vo.allow_padding = true;
		} else {
			return usage(verify_usage, "unknown option");
		}
	}
	if (optind != argc - 1)
		return usage(verify_usage, "expected one evidence FILE");
	if (!ops)
		return usage(verify_usage, "--type is required");
	scone_wbuf_init(&ev, SCONE_EVIDENCE_MAX, 0);
	if ((rc = read_input(argv[optind], &ev, SCONE_EVIDENCE_MAX))) {
		scone_wbuf_free(&ev);
		return rc;
	}
	err = ops->verify(ev.data, ev.size, &vo, &claims);
	scone_wbuf_free(&ev);
	if (err) {
		fprintf(stderr, "scone: %s evidence %s is NOT authentic: %s (%s)\n", ops->name, argv[optind],
			scone_err_detail(), scone_errname(err));
		return EXIT_NOT_AUTHENTIC;
	}
	return print_claims(&claims);
}

static int import_one(const char *dir, const char *path)
{
	struct scone_wbuf data, report;
	enum scone_err err;
	int rc;

	scone_wbuf_init(&data, 1u << 20, 0);
	scone_wbuf_init(&report, 1u << 16, 0);
	if ((rc = read_input(path, &data, 1u << 20))) {
		scone_wbuf_free(&data);
		return rc;
	}
	err = scone_collateral_import(dir, data.data, data.size, &report);
	if (report.size)
		printf("%.*s", (int)report.size, (const char *)report.data);
	scone_wbuf_free(&data);
	scone_wbuf_free(&report);
	return err ? cli_fail(err, path) : 0;
}

static int collateral_import(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"dir", required_argument, NULL, 'd'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	const char *dir = NULL;
	int c, rc = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			printf(
			    "%s\n\n"
			    "Add downloaded collateral files to the directory DIR (created if needed) under\n"
			    "their layout names, after checking their signatures to the pinned roots:\n"
			    "Intel PCS TCB info and QE identity bodies, PCK and Root CA CRLs (DER or PEM),\n"
			    "the TCB signing chain (the TCB-Info-Issuer-Chain header, URL-decoded, as PEM;\n"
			    "import it before the documents it signs), dcap-qvl collateral JSON, AMD VCEKs\n"
			    "and AMD CRLs. Validity dates are not checked here: `scone attest collateral\n"
			    "check` shows them. Layout: docs/attestation.md.\n",
			    import_usage);
			return 0;
		} else if (c == 'd') {
			dir = optarg;
		} else {
			return usage(import_usage, "unknown option");
		}
	}
	if (!dir || optind == argc)
		return usage(import_usage, "expected --dir DIR and at least one FILE");
	for (int i = optind; i < argc && !rc; i++)
		rc = import_one(dir, argv[i]);
	return rc;
}

static int collateral_check(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"at", required_argument, NULL, 'a'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	struct scone_collateral *coll;
	struct scone_wbuf out;
	enum scone_err err;
	int64_t at = 0;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			printf("%s\n\nList the collateral files of DIR: what each is, its validity at --at "
			       "(default\n"
			       "now), and what is missing or broken, with where to fetch it.\n",
			       check_usage);
			return 0;
		} else if (c == 'a') {
			if ((rc = parse_at(optarg, &at, check_usage)))
				return rc;
		} else {
			return usage(check_usage, "unknown option");
		}
	}
	if (optind != argc - 1)
		return usage(check_usage, "expected one DIR");
	if ((err = scone_collateral_load(argv[optind], &coll)))
		return cli_fail(err, "collateral");
	scone_wbuf_init(&out, 1u << 20, 0);
	err = scone_collateral_describe(coll, at, &out);
	if (!err)
		printf("%.*s", (int)out.size, (const char *)out.data);
	scone_wbuf_free(&out);
	scone_collateral_free(coll);
	return err ? cli_fail(err, "collateral") : 0;
}

static const struct cli_cmd collateral_cmds[] = {
    {"import", collateral_import, "add downloaded collateral files to a collateral directory"},
    {"check", collateral_check, "list a collateral directory's files and their validity"},
    {NULL, NULL, NULL},
};

static int dispatch(const char *prog, const struct cli_cmd *cmds, int argc, char **argv);

static int attest_collateral(int argc, char **argv)
{
	return dispatch("scone attest collateral", collateral_cmds, argc, argv);
}

static const struct cli_cmd attest_cmds[] = {
    {"verify", attest_verify, "verify SGX, TDX or SEV-SNP evidence and print its claims"},
    {"collateral", attest_collateral, "fill and check the offline collateral directory"},
    {NULL, NULL, NULL},
};

/* cli_dispatch, with exit status 1 for an unknown or missing command (2 is "not authentic" here). */
static int dispatch(const char *prog, const struct cli_cmd *cmds, int argc, char **argv)
{
	int rc = cli_dispatch(prog, cmds, argc, argv);
	bool known = false;

	for (const struct cli_cmd *c = cmds; argc >= 2 && c->name; c++)
		known = known || strcmp(argv[1], c->name) == 0;
	return !known && rc == 2 ? 1 : rc;
}

int cmd_attest(int argc, char **argv)
{
	return dispatch("scone attest", attest_cmds, argc, argv);
}
