/*
 * session.c - `scone session create|update|read|delete|list|check|hash`:
 * owners manage their sessions on a CAS; check and hash work offline.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "lib/buf.h"
#include "policy/policy.h"

/* Read a session file (or "-" for stdin), at most SCONE_SESSION_MAX_BYTES. The detail never repeats path. */
static enum scone_err read_doc(const char *path, struct scone_wbuf *out)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
	uint8_t buf[8192];
	size_t n;
	enum scone_err err = SCONE_ERR_OK;

	scone_wbuf_init(out, SCONE_SESSION_MAX_BYTES, 1);
	if (!f)
		return scone_err_set(SCONE_ERR_NOT_FOUND, "cannot open: %s", strerror(errno));
	while (!err && (n = fread(buf, 1, sizeof(buf), f)) > 0)
		err = scone_wbuf_put(out, buf, n);
	if (!err && ferror(f))
		err = scone_err_set(SCONE_ERR_IO, "read error");
	if (err == SCONE_ERR_TOO_LARGE)
		scone_err_set(err, "larger than the limit of %d bytes", SCONE_SESSION_MAX_BYTES);
	if (f != stdin)
		fclose(f);
	if (!err)
		err = scone_wbuf_u8(out, 0); /* NUL for printing, not counted below */
	if (!err)
		out->size--;
	return err;
}

/* ---- SCONE's session templates: -e VAR=VALUE and --use-env ---- */

#define MAX_VARS 256

struct doc_vars {
	const char *v[MAX_VARS]; /* "NAME=VALUE", borrowed from argv */
	size_t n;
	bool use_env;
};

static bool vars_given(const struct doc_vars *dv)
{
	return dv->n || dv->use_env;
}

/* -e takes precedence over the environment; the last -e for a name wins. */
static const char *var_lookup(void *ctx, const char *name)
{
	const struct doc_vars *dv = ctx;
	size_t len = strlen(name);

	for (size_t i = dv->n; i > 0; i--)
		if (strncmp(dv->v[i - 1], name, len) == 0 && dv->v[i - 1][len] == '=')
			return dv->v[i - 1] + len + 1;
	return dv->use_env ? getenv(name) : NULL;
}

static int add_var(struct doc_vars *dv, const char *arg, const char *usage)
{
	const char *eq = strchr(arg, '=');

	if (!eq || eq == arg)
		return cli_usage(usage, "-e expects VAR=VALUE, not %s", arg);
	if (dv->n == MAX_VARS)
		return cli_usage(usage, "more than %d -e options", MAX_VARS);
	dv->v[dv->n++] = arg;
	return -1;
}

/* Read path and fill its template variables (when -e or --use-env are given); errors printed. */
static bool load_doc(const char *path, const struct doc_vars *dv, struct scone_wbuf *out)
{
	struct scone_wbuf raw;
	enum scone_err err = read_doc(path, &raw);

	if (err || !vars_given(dv)) {
		*out = raw;
		if (err)
			cli_fail(err, path);
		return !err;
	}
	scone_wbuf_init(out, SCONE_SESSION_MAX_BYTES, 1);
	err = scone_session_vars_expand((const char *)raw.data, raw.size, var_lookup, (void *)dv, out);
	if (!err)
		err = scone_wbuf_u8(out, 0);
	if (!err)
		out->size--;
	scone_wbuf_free(&raw);
	if (err == SCONE_ERR_TOO_LARGE)
		scone_err_set(err, "larger than %d bytes once its variables are filled", SCONE_SESSION_MAX_BYTES);
	if (err) {
		fprintf(stderr, "scone: %s: %s\n", path, scone_err_detail());
		scone_wbuf_free(out);
	}
	return !err;
}

/* ---- parsing, with errors and notes ---- */

static void print_notes(const char *path, const struct scone_policy_diag *d, enum scone_note_kind kind,
			const char *label, FILE *to)
{
	for (size_t i = 0; i < d->n_notes; i++) {
		char line[512];
		if (d->notes[i].kind != kind)
			continue;
		scone_policy_error_format(&d->notes[i].e, line, sizeof(line));
		fprintf(to, "%s:%s: %s\n", path, label, line);
	}
}

/*
 * Parse and print every error as FILE:LINE:COL: PATH: MESSAGE and every
 * warning as FILE: warning: LINE:COL: ...; returns the session or NULL. With
 * compat, the differences from SCONE are printed too (stdout).
 */
static struct scone_session *parse_doc_ex(const char *path, const struct scone_wbuf *doc, bool compat)
{
	struct scone_policy_diag diag = { 0 };
	struct scone_session *s = NULL;
	enum scone_err err = scone_session_parse((const char *)doc->data, doc->size, &s, &diag);

	if (err) {
		for (size_t i = 0; i < diag.count; i++) {
			char line[512];
			scone_policy_error_format(&diag.errors[i], line, sizeof(line));
			fprintf(stderr, "%s:%s\n", path, line);
		}
		if (diag.dropped)
			fprintf(stderr, "%s: ... and %zu more errors\n", path, diag.dropped);
		if (err != SCONE_ERR_POLICY || diag.count == 0)
			cli_fail(err, path);
		s = NULL;
	} else {
		print_notes(path, &diag, SCONE_NOTE_WARNING, " warning", stderr);
		if (compat)
			print_notes(path, &diag, SCONE_NOTE_DIFFERENCE, " differs from SCONE", stdout);
	}
	scone_policy_diag_free(&diag);
	return s;
}

static struct scone_session *parse_doc(const char *path, const struct scone_wbuf *doc)
{
	return parse_doc_ex(path, doc, false);
}

struct sess_args {
	const char *cas;
	bool json;
	bool compat, model; /* check */
	struct doc_vars vars;
};

static int parse_args_n(int argc, char **argv, const char *usage, const char *help, struct sess_args *a,
			bool many)
{
	static const struct option opts[] = { { "cas", required_argument, NULL, 'c' },
					      { "json", no_argument, NULL, 'j' },
					      { "use-env", no_argument, NULL, 'U' },
					      { "compat", no_argument, NULL, 'C' },
					      { "model", no_argument, NULL, 'M' },
					      { "help", no_argument, NULL, 'h' },
					      { NULL, 0, NULL, 0 } };
	int c, rc;

	memset(a, 0, sizeof(*a));
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:je:h", opts, NULL)) != -1) {
		if (c == 'c') {
			a->cas = optarg;
		} else if (c == 'j') {
			a->json = true;
		} else if (c == 'e') {
			if ((rc = add_var(&a->vars, optarg, usage)) >= 0)
				return rc;
		} else if (c == 'U') {
			a->vars.use_env = true;
		} else if (c == 'C') {
			a->compat = true;
		} else if (c == 'M') {
			a->model = true;
		} else if (c == 'h') {
			printf("%s\n\n%s", usage, help);
			return 0;
		} else {
			return cli_usage(usage, "unknown option");
		}
	}
	if (many ? argc - optind < 1 : argc - optind != 1)
		return cli_usage(usage, many ? "expected FILE" : "expected one argument");
	return -1;
}

static int parse_args(int argc, char **argv, const char *usage, const char *help, struct sess_args *a)
{
	return parse_args_n(argc, argv, usage, help, a, false);
}

#define VARS_HELP                                                                                                    \
	"-e VAR=VALUE (repeatable) and --use-env fill SCONE's session template variables, $VAR and\n"              \
	"${VAR}, before anything else reads the file (-e wins over the environment; $$ stays as it\n"              \
	"is, so $$SCONE::...$$ references are kept). A variable without a value is an error:\n"                   \
	"Value for variable $X is missing at line L column C.\n"

#define CAS_HELP                                                                                                     \
	"--cas ADDR picks the CAS (default $SCONE_CAS_ADDR, else the first one trusted with\n"                      \
	"`scone cas trust`); it must present its pinned certificate. The owner identity comes\n"                    \
	"from `scone cas keygen`.\n"

/* Print the "hash" field of a JSON response, and its warnings on stderr. */
static int print_hash(const struct scone_https_response *resp)
{
	json_t *j = json_loadb(resp->body, resp->len, 0, NULL), *w;
	const char *h = json_string_value(json_object_get(j, "hash"));
	size_t i;

	json_array_foreach(json_object_get(j, "warnings"), i, w)
		fprintf(stderr, "scone: warning: %d:%d: %s: %s\n", (int)json_integer_value(json_object_get(w, "line")),
			(int)json_integer_value(json_object_get(w, "column")),
			json_string_value(json_object_get(w, "path")), json_string_value(json_object_get(w, "message")));
	if (h)
		printf("%s\n", h);
	json_decref(j);
	return h ? 0 : cli_http_fail(resp, "unexpected response");
}

static int upload(int argc, char **argv, bool update)
{
	const char *usage = update ? "scone session update FILE [--cas ADDR] [-e VAR=VALUE]... [--use-env]"
				   : "scone session create FILE [--cas ADDR] [-e VAR=VALUE]... [--use-env]";
	const char *help = update ? "Replace a session on CAS. The file's predecessor must be the current hash;\n"
				    "access_policy.update of the current session must admit you. Prints the new hash\n"
				    "(and CAS's warnings on stderr).\n" CAS_HELP VARS_HELP
				  : "Validate FILE and upload it as a new session. Prints its hash (and CAS's\n"
				    "warnings on stderr).\n" CAS_HELP VARS_HELP;
	struct sess_args a;
	struct scone_https_response resp;
	struct scone_session *s;
	struct scone_wbuf doc;
	struct cli_cas cas;
	char path[300];
	enum scone_err err;
	int rc = parse_args(argc, argv, usage, help, &a);

	if (rc >= 0)
		return rc;
	if (!load_doc(argv[optind], &a.vars, &doc))
		return 1;
	s = parse_doc(argv[optind], &doc);
	if (!s) {
		scone_wbuf_free(&doc);
		return 1;
	}
	snprintf(path, sizeof(path), update ? "/v1/sessions/%s" : "/v1/sessions", s->name);
	scone_session_free(s);
	if ((err = cli_cas_open(a.cas, true, &cas))) {
		scone_wbuf_free(&doc);
		return cli_fail(err, "CAS");
	}
	err = cli_cas_request(&cas, update ? "PUT" : "POST", path, "application/yaml", doc.data, doc.size, &resp);
	scone_wbuf_free(&doc);
	cli_cas_close(&cas);
	if (err)
		return cli_fail(err, cas.addr);
	rc = resp.status / 100 == 2 ? print_hash(&resp) : cli_http_fail(&resp, update ? "update" : "create");
	scone_https_response_free(&resp);
	return rc;
}

static int session_create(int argc, char **argv)
{
	return upload(argc, argv, false);
}

static int session_update(int argc, char **argv)
{
	return upload(argc, argv, true);
}

/* GET or DELETE of one session by name. */
static int by_name(int argc, char **argv, bool del)
{
	const char *usage = del ? "scone session delete NAME [--cas ADDR]" : "scone session read NAME [--cas ADDR] [--json]";
	const char *help = del ? "Remove a session (access_policy.update must admit you). Prints its last hash.\n" CAS_HELP
			       : "Print a session as stored (access_policy.read must admit you). With --json, the\n"
				 "whole answer: hash, creator, and each secret's kind and public part (certificates,\n"
				 "public keys); values CAS generated are never returned.\n" CAS_HELP;
	struct sess_args a;
	struct scone_https_response resp;
	struct cli_cas cas;
	char path[300];
	enum scone_err err;
	int rc = parse_args(argc, argv, usage, help, &a);

	if (rc >= 0)
		return rc;
	rc = 0;
	if (!scone_session_name_valid(argv[optind]))
		return cli_usage(usage, "%s is not a valid session name", argv[optind]);
	snprintf(path, sizeof(path), "/v1/sessions/%s", argv[optind]);
	if ((err = cli_cas_open(a.cas, false, &cas)))
		return cli_fail(err, "CAS");
	err = cli_cas_request(&cas, del ? "DELETE" : "GET", path, NULL, NULL, 0, &resp);
	cli_cas_close(&cas);
	if (err)
		return cli_fail(err, cas.addr);
	if (resp.status != 200) {
		rc = cli_http_fail(&resp, del ? "delete" : "read");
	} else if (del) {
		rc = print_hash(&resp);
	} else if (a.json) {
		fwrite(resp.body, 1, resp.len, stdout);
	} else {
		json_t *j = json_loadb(resp.body, resp.len, 0, NULL);
		json_t *body = json_object_get(j, "session");
		if (json_is_string(body))
			fwrite(json_string_value(body), 1, json_string_length(body), stdout);
		else
			rc = cli_http_fail(&resp, "read");
		json_decref(j);
	}
	scone_https_response_free(&resp);
	return rc;
}

static int session_read(int argc, char **argv)
{
	return by_name(argc, argv, false);
}

static int session_delete(int argc, char **argv)
{
	return by_name(argc, argv, true);
}

static int session_list(int argc, char **argv)
{
	const char *usage = "scone session list [--cas ADDR]";
	struct scone_https_response resp;
	struct cli_cas cas;
	enum scone_err err;
	const char *cas_opt = NULL;
	int rc = 0;

	for (int i = 1; i < argc; i++) {
		if (cli_is_help(argv[i])) {
			printf("%s\n\nList the sessions you created: NAME HASH per line.\n" CAS_HELP, usage);
			return 0;
		} else if (strcmp(argv[i], "--cas") == 0 && i + 1 < argc) {
			cas_opt = argv[++i];
		} else {
			return cli_usage(usage, "unexpected argument %s", argv[i]);
		}
	}
	if ((err = cli_cas_open(cas_opt, true, &cas)))
		return cli_fail(err, "CAS");
	err = cli_cas_request(&cas, "GET", "/v1/sessions", NULL, NULL, 0, &resp);
	cli_cas_close(&cas);
	if (err)
		return cli_fail(err, cas.addr);
	if (resp.status != 200) {
		rc = cli_http_fail(&resp, "list");
	} else {
		json_t *j = json_loadb(resp.body, resp.len, 0, NULL), *e;
		size_t i;
		json_array_foreach(json_object_get(j, "sessions"), i, e)
			printf("%s %s\n", json_string_value(json_object_get(e, "name")),
			       json_string_value(json_object_get(e, "hash")));
		json_decref(j);
	}
	scone_https_response_free(&resp);
	return rc;
}

/* One file of check: 0 when valid. */
static int check_one(const char *path, const struct sess_args *a)
{
	struct scone_wbuf doc;
	struct scone_session *s;
	char h[65];

	if (!load_doc(path, &a->vars, &doc))
		return 1;
	s = parse_doc_ex(path, &doc, a->compat);
	scone_wbuf_free(&doc);
	if (!s)
		return 1;
	scone_session_hash_hex(s->hash, h);
	if (a->model) {
		json_t *m = cli_session_model(s);
		char *text = json_dumps(m, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (text)
			printf("%s\n", text);
		free(text);
		json_decref(m);
	} else {
		printf("%s: ok (session %s, hash %s)\n", path, s->name, h);
	}
	scone_session_free(s);
	return 0;
}

static int session_check(int argc, char **argv)
{
	const char *usage = "scone session check [--compat] [--model] [-e VAR=VALUE]... [--use-env] FILE...";
	const char *help =
	    "Validate sessions offline: every error is printed as FILE:LINE:COLUMN: KEY PATH: MESSAGE,\n"
	    "every warning (a deprecated SCONE form accepted with SCONE's meaning) as FILE: warning: ...\n"
	    "Exit status 1 if any file is invalid.\n"
	    "--compat also lists, for a valid session, each construct whose effect in scone differs from\n"
	    "SCONE's (FILE: differs from SCONE: LINE:COLUMN: ...; docs/sessions.md section 15).\n"
	    "--model prints how scone reads the session (JSON: services, environment, attestation,\n"
	    "access rules, secrets; explicit secret values are never printed).\n" VARS_HELP;
	struct sess_args a;
	int rc = parse_args_n(argc, argv, usage, help, &a, true);

	if (rc >= 0)
		return rc;
	for (int i = optind; i < argc; i++)
		rc = check_one(argv[i], &a) || rc == 1 ? 1 : 0;
	return rc == 1 ? 1 : 0;
}

static int session_hash(int argc, char **argv)
{
	const char *usage = "scone session hash FILE [-e VAR=VALUE]... [--use-env]";
	const char *help = "Print the session's hash (docs/sessions.md says how it is computed): the value an\n"
			   "update names as its predecessor.\n" VARS_HELP;
	struct sess_args a;
	struct scone_wbuf doc;
	struct scone_session *s;
	char h[65];
	int rc = parse_args(argc, argv, usage, help, &a);

	if (rc >= 0)
		return rc;
	if (!load_doc(argv[optind], &a.vars, &doc))
		return 1;
	s = parse_doc(argv[optind], &doc);
	scone_wbuf_free(&doc);
	if (!s)
		return 1;
	scone_session_hash_hex(s->hash, h);
	printf("%s\n", h);
	scone_session_free(s);
	return 0;
}

/* Show a URI as a QR code through qrencode (given on its stdin, never on a command line), if installed. */
static void print_qr(const char *uri)
{
	FILE *q;

	if (system("command -v qrencode >/dev/null 2>&1") != 0) {
		fprintf(stderr, "(install qrencode to see a QR code here)\n");
		return;
	}
	q = popen("qrencode -t UTF8 -o -", "w");
	if (!q)
		return;
	fputs(uri, q);
	pclose(q);
}

static int session_otp(int argc, char **argv)
{
	const char *usage = "scone session otp SESSION --service SERVICE [--no-qr] [--cas ADDR]";
	const char *cas_opt = NULL, *name = NULL, *service = NULL;
	struct scone_https_response resp;
	struct cli_cas cas;
	char path[600];
	bool qr = true;
	enum scone_err err;
	int rc = 0;

	for (int i = 1; i < argc; i++) {
		if (cli_is_help(argv[i])) {
			printf("%s\n\nPrint the otpauth:// URI (and a QR code, with qrencode) that provisions an\n"
			       "authenticator app with the one-time password secret of SERVICE (its\n"
			       "one_time_password_shared_secret, or the session's). The app then shows the\n"
			       "6-digit codes a start needs: SCONE_CONFIG_ID=SESSION/SERVICE@CODE, each code once.\n"
			       "Admitted by the session's access_policy.read. The URI holds the secret: keep it\n"
			       "off shared screens and logs.\n" CAS_HELP,
			       usage);
			return 0;
		} else if (strcmp(argv[i], "--cas") == 0 && i + 1 < argc) {
			cas_opt = argv[++i];
		} else if (strcmp(argv[i], "--service") == 0 && i + 1 < argc) {
			service = argv[++i];
		} else if (strcmp(argv[i], "--no-qr") == 0) {
			qr = false;
		} else if (!name && argv[i][0] != '-') {
			name = argv[i];
		} else {
			return cli_usage(usage, "unexpected argument %s", argv[i]);
		}
	}
	if (!name || !service)
		return cli_usage(usage, "expected SESSION and --service SERVICE");
	if (!scone_session_name_valid(name) || !scone_session_name_valid(service) || strchr(service, '/'))
		return cli_usage(usage, "invalid session or service name");
	snprintf(path, sizeof(path), "/v1/otp/%s/%s", name, service);
	if ((err = cli_cas_open(cas_opt, true, &cas)))
		return cli_fail(err, "CAS");
	err = cli_cas_request(&cas, "GET", path, NULL, NULL, 0, &resp);
	cli_cas_close(&cas);
	if (err)
		return cli_fail(err, cas.addr);
	if (resp.status != 200) {
		rc = cli_http_fail(&resp, "otp");
	} else {
		json_t *j = json_loadb(resp.body, resp.len, 0, NULL);
		const char *uri = json_string_value(json_object_get(j, "uri"));
		if (uri) {
			printf("%s\n", uri);
			fflush(stdout);
			if (qr)
				print_qr(uri);
		} else {
			rc = cli_fail(SCONE_ERR_MALFORMED, "CAS answered without a uri");
		}
		json_decref(j);
	}
	scone_https_response_free(&resp);
	return rc;
}

static const struct cli_cmd session_cmds[] = {
	{ "create", session_create, "upload a new session (prints its hash)" },
	{ "update", session_update, "replace a session (predecessor = current hash)" },
	{ "read", session_read, "print a session" },
	{ "delete", session_delete, "remove a session" },
	{ "list", session_list, "list your sessions" },
	{ "check", session_check, "validate session files offline" },
	{ "hash", session_hash, "print a session file's hash" },
	{ "otp", session_otp, "the otpauth:// URI (and QR code) of a service's one-time passwords" },
	{ NULL, NULL, NULL },
};

int cmd_session(int argc, char **argv)
{
	return cli_dispatch("scone session", session_cmds, argc, argv);
}
