/*
 * cas.c - `scone cas keygen|trust|id`: the owner's identity and the pinning
 * of a CAS by its certificate fingerprint.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "lib/crypto.h"
#include "lib/hex.h"

static int print_key_hash(const struct scone_identity *id)
{
	uint8_t h[32];
	char hex[65];
	enum scone_err err = scone_spki_sha256(id->cert, h);

	if (err)
		return cli_fail(err, "owner key");
	scone_hex_encode(hex, sizeof(hex), h, 32);
	printf("owner key hash: %s\n", hex);
	return 0;
}

static int cas_keygen(int argc, char **argv)
{
	const char *usage = "scone cas keygen [--force]";
	static const struct option opts[] = {
	    {"force", no_argument, NULL, 'f'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
	char key[4096], crt[4096];
	struct scone_identity id;
	enum scone_err err;
	bool force = false;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "fh", opts, NULL)) != -1) {
		if (c == 'f') {
			force = true;
		} else if (c == 'h') {
			printf(
			    "%s\n\nMake the owner identity: a P-256 key (owner.key, mode 0600) and a\n"
			    "self-signed certificate (owner.crt) beside $SCONE_CLI_CONFIG (default\n"
			    "~/.cas/config.json). CAS knows an owner by the hash of this key; the hash is\n"
			    "printed, for access_policy entries. --force replaces an existing identity.\n",
			    usage);
			return 0;
		} else {
			return cli_usage(usage, "unknown option");
		}
	}
	if (optind != argc)
		return cli_usage(usage, "unexpected argument %s", argv[optind]);
	if ((err = cli_config_sibling("owner.key", key, sizeof(key))) ||
	    (err = cli_config_sibling("owner.crt", crt, sizeof(crt))) || (err = cli_config_dir_create()))
		return cli_fail(err, "config");
	if (!force && access(key, F_OK) == 0)
		return cli_usage(
		    usage,
		    "%s exists; --force replaces it (sessions created with it stay bound to the old key)",
		    key);
	if ((err = scone_identity_new("scone-owner", 3650, &id)))
		return cli_fail(err, "keygen");
	err = scone_identity_save(&id, key, crt);
	if (err) {
		scone_identity_free(&id);
		return cli_fail(err, key);
	}
	printf("owner identity: %s\n", crt);
	rc = print_key_hash(&id);
	scone_identity_free(&id);
	return rc;
}

static int cas_id(int argc, char **argv)
{
	char key[4096], crt[4096];
	struct scone_identity id;
	enum scone_err err;
	int rc;

	if (argc > 1) {
		if (cli_is_help(argv[1])) {
			printf("scone cas id\n\nPrint the owner key hash (for access_policy entries).\n");
			return 0;
		}
		return cli_usage("scone cas id", "unexpected argument %s", argv[1]);
	}
	if ((err = cli_config_sibling("owner.key", key, sizeof(key))) ||
	    (err = cli_config_sibling("owner.crt", crt, sizeof(crt))) ||
	    (err = scone_identity_load(key, crt, &id)))
		return cli_fail(err, "owner identity (run `scone cas keygen`)");
	rc = print_key_hash(&id);
	scone_identity_free(&id);
	return rc;
}

int cli_save_pin(const char *addr_key, const char *fp_hex, bool replace)
{
	json_t *cfg;
	enum scone_err err;
	const char *old_fp;

	if ((err = cli_config_load(&cfg)))
		return cli_fail(err, "config");
	old_fp = cli_config_pin(cfg, addr_key);
	if (old_fp && strcmp(old_fp, fp_hex) != 0 && !replace) {
		fprintf(stderr,
			"scone: CAS %s is already pinned to %s; refusing to change the pin (--replace if the "
			"CAS was "
			"really re-keyed)\n",
			addr_key, old_fp);
		json_decref(cfg);
		return 1;
	}
	json_object_set_new(json_object_get(cfg, "cas"), addr_key, json_pack("{s:s}", "fingerprint", fp_hex));
	if (!json_object_get(cfg, "default_cas"))
		json_object_set_new(cfg, "default_cas", json_string(addr_key));
	err = cli_config_save(cfg);
	json_decref(cfg);
	return err ? cli_fail(err, "config") : 0;
}

static int cas_trust(int argc, char **argv)
{
	const char *usage = "scone cas trust ADDR --fingerprint SHA256 [--replace]";
	static const struct option opts[] = {{"fingerprint", required_argument, NULL, 'f'},
					     {"replace", no_argument, NULL, 'r'},
					     {"help", no_argument, NULL, 'h'},
					     {NULL, 0, NULL, 0}};
	const char *fp_text = NULL;
	char addr_key[300], host[256], want_hex[65], got_hex[65];
	uint8_t want[32], got[32];
	uint16_t port;
	enum scone_err err;
	bool replace = false;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "f:rh", opts, NULL)) != -1) {
		if (c == 'f') {
			fp_text = optarg;
		} else if (c == 'r') {
			replace = true;
		} else if (c == 'h') {
			printf(
			    "%s\n\nPin the CAS at ADDR (host:port) to the certificate with this SHA-256\n"
			    "fingerprint (scone-cas logs it at start; or: openssl x509 -in cas.crt -outform "
			    "DER |\n"
			    "sha256sum). The CAS is contacted and must present exactly that certificate.\n"
			    "Later commands refuse a CAS that presents another one. The first CAS trusted\n"
			    "becomes the default for --cas.\n",
			    usage);
			return 0;
		} else {
			return cli_usage(usage, "unknown option");
		}
	}
	if (argc - optind != 1 || !fp_text)
		return cli_usage(usage, "expected ADDR and --fingerprint");
	if ((err = scone_fingerprint_parse(fp_text, want)))
		return cli_fail(err, "--fingerprint");
	if ((err = cli_cas_key(argv[optind], addr_key, sizeof(addr_key), host, sizeof(host), &port)))
		return cli_fail(err, "ADDR");
	if ((err = scone_https_probe(host, port, 10000, got)))
		return cli_fail(err, addr_key);
	scone_hex_encode(want_hex, sizeof(want_hex), want, 32);
	scone_hex_encode(got_hex, sizeof(got_hex), got, 32);
	if (!scone_ct_equal(want, got, 32)) {
		fprintf(stderr, "scone: %s presents certificate %s, not %s; not trusted\n", addr_key, got_hex,
			want_hex);
		return 1;
	}
	if (cli_save_pin(addr_key, want_hex, replace))
		return 1;
	printf("trusted CAS %s (certificate SHA-256 %s)\n", addr_key, want_hex);
	return 0;
}

static const struct cli_cmd cas_cmds[] = {
    {"keygen", cas_keygen, "make the owner identity (key and certificate)"},
    {"trust", cas_trust, "pin a CAS by its certificate fingerprint"},
    {"attest", cli_cas_attest, "pin a CAS after verifying its TEE evidence"},
    {"id", cas_id, "print the owner key hash"},
    {"verify-audit-log", cli_cas_verify_audit_log, "check a CAS audit log's chains and signatures"},
    {NULL, NULL, NULL},
};

int cmd_cas(int argc, char **argv)
{
	return cli_dispatch("scone cas", cas_cmds, argc, argv);
}
