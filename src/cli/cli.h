/*
 * cli.h - shared pieces of the scone command-line tool: the subcommand
 * table type, error reporting, key/tag arguments and the progress bar.
 */
#ifndef SCONE_CLI_H
#define SCONE_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"

struct cli_cmd {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

/* Dispatch argv[1] among cmds; prints usage for --help or an unknown name. */
int cli_dispatch(const char *prog, const struct cli_cmd *cmds, int argc, char **argv);

/* Print "scone: what: error (detail)" to stderr and return exit status 1. */
int cli_fail(enum scone_err err, const char *what);

/* Print a usage error and return exit status 2. */
int cli_usage(const char *usage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

bool cli_is_help(const char *arg);

/*
 * A 32-byte key from --key HEX, --key-file PATH or $SCONE_FSPF_KEY (in that
 * order of precedence; the option values may be NULL). Returns false when
 * none is given; *err set when one is given but invalid.
 */
bool cli_get_key(const char *hex, const char *file, uint8_t key[static 32], enum scone_err *err);
/* A 16-byte tag from --tag HEX or $SCONE_FSPF_TAG. */
bool cli_get_tag(const char *hex, uint8_t tag[static 16], enum scone_err *err);

/* Progress bar on stderr when it is a terminal; silent otherwise. */
struct cli_progress {
	uint64_t total, done;
	int last_pct;
	bool tty;
	const char *label;
};
void cli_progress_start(struct cli_progress *p, const char *label, uint64_t total);
void cli_progress_add(struct cli_progress *p, uint64_t n);
void cli_progress_end(struct cli_progress *p);

int cmd_fspf(int argc, char **argv);

#endif
