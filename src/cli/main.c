/* main.c - the scone command-line tool: top-level subcommand table. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "lib/log.h"

static int cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	puts("scone 0.1.0");
	return 0;
}

static const struct cli_cmd commands[] = {
	{ "fspf", cmd_fspf, "create, encrypt, inspect and verify protected volumes" },
	{ "session", cmd_session, "create, read, update, delete and check sessions (policies)" },
	{ "cas", cmd_cas, "owner identity (keygen) and CAS pinning (trust)" },
	{ "image", cmd_image, "make secure container images and their sessions (sconify)" },
	{ "run", cmd_run, "run a program under the runtime (secrets from CAS)" },
	{ "volume", cmd_volume, "a session volume's disk state and CAS's; accept the disk's (recovery)" },
	{ "attest", cmd_attest, "verify SGX, TDX and SEV-SNP evidence; the collateral directory" },
	{ "measure", cmd_measure, "print the measurement a session lists for a program (las mode)" },
	{ "version", cmd_version, "print the version" },
	{ NULL, NULL, NULL },
};

int main(int argc, char **argv)
{
	scone_log_init("scone");
	return cli_dispatch("scone", commands, argc, argv);
}
