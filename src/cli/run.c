/*
 * run.c - `scone run`: start a program with the runtime (libscone.so)
 * preloaded and the SCONE_* variables that tell it which CAS to trust and
 * which configuration to fetch. The program itself is not changed.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "lib/elf.h"
#include "lib/hex.h"

/* $SCONE_RUNTIME_LIB, else ../lib/libscone.so next to this executable. */
enum scone_err cli_runtime_path(char *out, size_t size)
{
	const char *env = getenv("SCONE_RUNTIME_LIB");
	char self[PATH_MAX];
	ssize_t n;

	if (env && *env) {
		snprintf(out, size, "%s", env);
	} else {
		n = readlink("/proc/self/exe", self, sizeof(self) - 1);
		if (n < 0)
			return scone_err_set(SCONE_ERR_IO, "/proc/self/exe: %s", strerror(errno));
		self[n] = '\0';
		snprintf(out, size, "%s/../lib/libscone.so", dirname(self));
	}
	if (access(out, R_OK) != 0)
		return scone_err_set(SCONE_ERR_NOT_FOUND, "%s: the runtime library is missing (set SCONE_RUNTIME_LIB)", out);
	return SCONE_ERR_OK;
}

/*
 * A program the runtime cannot be preloaded into would run without its
 * secrets and shields, and ld.so would only ignore LD_PRELOAD: refuse it
 * here. Such are statically linked programs, programs of another machine
 * or word size, and programs of another loader (musl's), also behind "#!"
 * interpreters. What cannot be found or read is left to execvp to report.
 */
enum scone_err cli_check_program(const char *prog)
{
	char path[PATH_MAX], loader[PATH_MAX];
	enum scone_err err;

	if (!scone_exec_find(prog, getenv("PATH"), path, sizeof(path)))
		return SCONE_ERR_OK;
	err = scone_exec_check_runtime(path, scone_own_loader(loader, sizeof(loader)) ? loader : NULL);
	if (err == SCONE_ERR_UNSUPPORTED)
		return err;
	scone_err_clear();
	return SCONE_ERR_OK;
}

/*
 * The CAS address (--cas, $SCONE_CAS_ADDR, the first trusted) and, when
 * `scone cas trust` pinned it, its fingerprint as hex ("" otherwise).
 */
static void cas_from_config(const char *opt, char addr[300], char pin_hex[65])
{
	char key[300], host[256];
	uint16_t port;
	json_t *cfg = NULL;
	const char *fp;

	pin_hex[0] = '\0';
	if (cli_config_load(&cfg) != SCONE_ERR_OK)
		cfg = NULL;
	snprintf(addr, 300, "%s", cli_cas_address(opt, cfg));
	if (cfg && cli_cas_key(addr, key, sizeof(key), host, sizeof(host), &port) == SCONE_ERR_OK) {
		fp = cli_config_pin(cfg, key);
		if (fp && strlen(fp) == 64)
			memcpy(pin_hex, fp, 65);
	}
	scone_err_clear();
	json_decref(cfg);
}

void cli_preload(const char *lib)
{
	const char *old = getenv("LD_PRELOAD");
	char preload[2 * PATH_MAX + 2];

	snprintf(preload, sizeof(preload), "%s%s%s", lib, old && *old ? ":" : "", old && *old ? old : "");
	setenv("LD_PRELOAD", preload, 1);
}

static int run_usage(const char *usage)
{
	printf("%s\n\n"
	       "Run PROGRAM under the scone runtime. Before its main() runs, the runtime connects to\n"
	       "CAS over TLS with a fresh key, fetches the configuration SESSION/SERVICE and gives the\n"
	       "program the session's arguments (@@N are PROGRAM's ARGS), environment (the host's is\n"
	       "dropped, except SCONE_* and LD_PRELOAD) and working directory. If that fails, PROGRAM\n"
	       "does not start (exit 1). Secrets never appear in /proc/PID/environ or cmdline, nor in\n"
	       "those of the programs it starts (they get them through a private handover). The\n"
	       "session's volumes are mounted at their paths: plaintext for the program, ciphertext on\n"
	       "disk (docs/runtime.md). A statically linked PROGRAM is refused: the runtime cannot be\n"
	       "loaded into it. Without --config-id, SCONE_FSPF/SCONE_FSPF_KEY/SCONE_FSPF_TAG mount a\n"
	       "volume made with `scone fspf`.\n\n"
	       "Attestation: the runtime asks the host's LAS (SCONE_LAS_ADDR, default\n"
	       "unix:/run/scone/las.sock) for a report of PROGRAM bound to its key and shows it to\n"
	       "CAS; a session in mode las admits only the measurements `scone measure PROGRAM`\n"
	       "prints, from the hosts it lists (docs/attestation.md). SESSION/SERVICE@CODE gives\n"
	       "a one-time password.\n\n"
	       "  --cas ADDR               CAS address (default $SCONE_CAS_ADDR, else the first trusted)\n"
	       "  --cas-fingerprint HEX    SHA-256 of the CAS certificate (default $SCONE_CAS_FINGERPRINT,\n"
	       "                           else the pin stored by `scone cas trust`)\n"
	       "  --config-id S/SERVICE    the configuration (default $SCONE_CONFIG_ID); without one the\n"
	       "                           runtime stays out of the way\n"
	       "  --mode HW|SIM|AUTO       SCONE_MODE (default AUTO: no TEE here, with a warning)\n",
	       usage);
	return 0;
}

int cmd_run(int argc, char **argv)
{
	const char *usage = "scone run [--cas ADDR] [--cas-fingerprint SHA256] [--config-id SESSION/SERVICE] "
			    "[--mode M] -- PROGRAM [ARGS...]";
	static const struct option opts[] = {
		{ "cas", required_argument, NULL, 'c' },	 { "cas-fingerprint", required_argument, NULL, 'f' },
		{ "config-id", required_argument, NULL, 'i' }, { "mode", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },		 { NULL, 0, NULL, 0 },
	};
	const char *cas_opt = NULL, *fp = NULL, *id = NULL, *mode = NULL;
	char lib[PATH_MAX], hex[65], cas[300], pinned[65];
	uint8_t pin[32];
	enum scone_err err;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+c:f:i:m:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			cas_opt = optarg;
			break;
		case 'f':
			fp = optarg;
			break;
		case 'i':
			id = optarg;
			break;
		case 'm':
			mode = optarg;
			break;
		case 'h':
			return run_usage(usage);
		default:
			return cli_usage(usage, "unknown option");
		}
	}
	if (optind >= argc)
		return cli_usage(usage, "expected PROGRAM");
	if ((err = cli_runtime_path(lib, sizeof(lib))))
		return cli_fail(err, "runtime");
	cas_from_config(cas_opt, cas, pinned);
	if (!fp)
		fp = getenv("SCONE_CAS_FINGERPRINT");
	if (!fp && pinned[0])
		fp = pinned;
	if (fp && (err = scone_fingerprint_parse(fp, pin)))
		return cli_fail(err, "--cas-fingerprint");
	if (fp) {
		scone_hex_encode(hex, sizeof(hex), pin, 32);
		setenv("SCONE_CAS_FINGERPRINT", hex, 1);
	}
	setenv("SCONE_CAS_ADDR", cas, 1);
	if (id)
		setenv("SCONE_CONFIG_ID", id, 1);
	if (mode)
		setenv("SCONE_MODE", mode, 1);
	if ((err = cli_check_program(argv[optind])))
		return cli_fail(err, argv[optind]);
	cli_preload(lib);
	execvp(argv[optind], argv + optind);
	fprintf(stderr, "scone: %s: %s\n", argv[optind], strerror(errno));
	return errno == ENOENT ? 127 : 126;
}
