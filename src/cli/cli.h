/*
 * cli.h - shared pieces of the scone command-line tool: the subcommand
 * table type, error reporting, key/tag arguments and the progress bar.
 */
#ifndef SCONE_CLI_H
#define SCONE_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/err.h"
#include "lib/tls.h"

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

/* ---- talking to a CAS (casconf.c) ---- */

struct json_t;
struct cli_cas {
	char addr[300]; /* "host:port", the key under which it is pinned */
	char host[256];
	uint16_t port;
	uint8_t pin[32];
	struct scone_identity id;
	bool has_id;
};

/* $SCONE_CLI_CONFIG or ~/.cas/config.json, and files beside it. */
enum scone_err cli_config_path(char *out, size_t size);
enum scone_err cli_config_sibling(const char *name, char *out, size_t size);
enum scone_err cli_config_dir_create(void);
enum scone_err cli_config_load(struct json_t **out);
enum scone_err cli_config_save(struct json_t *cfg);
/* The CAS address: opt (--cas), $SCONE_CAS_ADDR, the config's default, 127.0.0.1:8081; borrowed from cfg. */
const char *cli_cas_address(const char *opt, struct json_t *cfg);
/* The fingerprint (hex) pinned for addr_key ("host:port") by `scone cas trust`, or NULL; borrowed from cfg.
 */
const char *cli_config_pin(struct json_t *cfg, const char *addr_key);
enum scone_err cli_cas_key(const char *addr, char *out, size_t size, char *host, size_t host_size,
			   uint16_t *port);
/* Resolve the CAS (--cas, $SCONE_CAS_ADDR, config default), its pin and the owner identity. */
enum scone_err cli_cas_open(const char *addr_opt, bool need_identity, struct cli_cas *c);
void cli_cas_close(struct cli_cas *c);
enum scone_err cli_cas_request(struct cli_cas *c, const char *method, const char *path,
			       const char *content_type, const void *body, size_t len,
			       struct scone_https_response *resp);
/* `scone session check --model`: the typed model of a session as JSON (session_model.c). */
struct scone_session;
struct json_t *cli_session_model(const struct scone_session *s);
/* Pin CAS addr_key to fingerprint fp_hex in the CLI config (refused if pinned elsewhere, unless replace). */
int cli_save_pin(const char *addr_key, const char *fp_hex, bool replace);
/* `scone cas attest` (cas_attest.c). */
int cli_cas_attest(int argc, char **argv);
/* `scone cas verify-audit-log` (audit.c). */
int cli_cas_verify_audit_log(int argc, char **argv);

/* Print a CAS error response (with validation errors) and return 1. */
int cli_http_fail(const struct scone_https_response *resp, const char *what);

/* ---- the runtime (run.c) ---- */

/* $SCONE_RUNTIME_LIB, else ../lib/libscone.so next to this executable. */
enum scone_err cli_runtime_path(char *out, size_t size);
/* Refuse a PROGRAM the runtime cannot be preloaded into (static, another machine). */
enum scone_err cli_check_program(const char *prog);
/* LD_PRELOAD=lib in front of any preload already set. */
void cli_preload(const char *lib);

int cmd_fspf(int argc, char **argv);
int cmd_measure(int argc, char **argv);
int cmd_cas(int argc, char **argv);
int cmd_session(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_image(int argc, char **argv);
int cmd_attest(int argc, char **argv);
int cmd_volume(int argc, char **argv);

#endif
