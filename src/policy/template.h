/*
 * template.h - what the runtime needs of the session language, without the
 * rest of it: $$SCONE::NAME[:FORMAT]$$ references (expanding and listing
 * them), SCONE's pre-5.2 reference forms, shell-like splitting of a command
 * line, and @@N host arguments. src/policy/template.c; libscone.so links
 * that file alone (no libyaml, no session parser).
 */
#ifndef SCONE_POLICY_TEMPLATE_H
#define SCONE_POLICY_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"
#include "lib/err.h"

/* The longest NAME of a $$SCONE::NAME$$ reference. */
#define SCONE_TEMPLATE_NAME_MAX 128

struct scone_strs {
	char **v;
	size_t n;
};

/*
 * Split a command line like a POSIX shell does for words: blanks (space,
 * tab, newline, CR, VT, FF) separate, '...' is literal, "..." allows
 * \" \\ \$ \` (other backslashes stay), a backslash outside quotes takes
 * the next character literally, backslash-newline joins lines; adjacent
 * parts form one word ("a"'b'c is abc) and "" is an empty word. No
 * expansion of any kind: $, *, ~, # and $$SCONE::...$$ are ordinary
 * characters. An unterminated quote or a trailing lone backslash is
 * SCONE_ERR_MALFORMED with the offset in detail. out->v is NULL-terminated.
 */
SCONE_MUST_CHECK enum scone_err scone_shell_split(const char *line, struct scone_strs *out);
/* Free (wiping every string first) and zero s; v is NULL-terminated after split/host_args. */
void scone_strs_free(struct scone_strs *s);

/*
 * Templating. scone_template_expand copies in to out, replacing each
 * $$SCONE::NAME$$ or $$SCONE::NAME:FORMAT$$ with what lookup writes for
 * (NAME, FORMAT or NULL). NAME is 1..128 of [A-Za-z0-9_.~-], FORMAT 1..32
 * of those and ':'. Text that is not a complete reference is copied as is;
 * what lookup writes is never scanned again. in may hold any bytes (len
 * counts them). The first error of lookup or of out (e.g. TOO_LARGE) stops
 * the expansion and is returned. out should be a secret wbuf.
 */
typedef enum scone_err (*scone_secret_lookup_fn)(void *ctx, const char *name, const char *format,
						 struct scone_wbuf *out);
SCONE_MUST_CHECK enum scone_err scone_template_expand(const char *in, size_t len,
						      scone_secret_lookup_fn lookup, void *ctx,
						      struct scone_wbuf *out);

/*
 * SCONE's references from before 5.2: NAME.crt (the certificate), NAME.key
 * (its private key), NAME.chain (root first, then intermediates, the
 * certificate itself last) and NAME.hex (a binary secret in hex). For a name
 * ending in one of these, base gets NAME and *format the format to render
 * (SCONE_FORMAT_LEGACY_CHAIN for .chain, which no template can write). The
 * caller uses it only when no secret is called name itself.
 */
#define SCONE_FORMAT_LEGACY_CHAIN "chain (pre-5.2 order)"
bool scone_template_legacy(const char *name, char *base, size_t base_size, const char **format);

/* Call fn for each reference in in (for validation); stops at the first error fn returns. */
typedef enum scone_err (*scone_template_ref_fn)(void *ctx, const char *name, const char *format);
SCONE_MUST_CHECK enum scone_err scone_template_refs(const char *in, size_t len, scone_template_ref_fn fn,
						    void *ctx);
/* The same with where each reference is: byte offset off in in, size bytes long. */
typedef enum scone_err (*scone_template_ref_at_fn)(void *ctx, const char *name, const char *format,
						   size_t off, size_t size);
SCONE_MUST_CHECK enum scone_err scone_template_refs_at(const char *in, size_t len,
						       scone_template_ref_at_fn fn, void *ctx);

/*
 * @@N host arguments (runtime side): replace every "@@N" in the session's
 * argv - a whole argument or part of one ("--port=@@2") - with
 * host_argv[N] (N >= 1, all digits after "@@" belong to N; "@@" not
 * followed by a digit stays as is). host_argc/host_argv are main()'s, so
 * host_argv[0] is the program and a reference to N >= host_argc is an
 * error (SCONE_ERR_INVALID). Replacements are not scanned again.
 *
 * Host arguments are untrusted: call this AFTER scone_template_expand, so
 * a "$$SCONE::...$$" typed on the host is never expanded.
 *
 * *out is a NULL-terminated argv (out->v[out->n] == NULL) the caller frees
 * with scone_strs_free.
 */
SCONE_MUST_CHECK enum scone_err scone_host_args(const struct scone_strs *argv, int host_argc,
						char *const *host_argv, struct scone_strs *out);

#endif
