/*
 * diag.c - the error list of one parse and the key path ("services[0].
 * environment.PORT") that every error carries.
 *
 * Errors are collected, not returned one by one: a user fixing a session
 * sees every problem of it in one run. The first POL_MAX_STORED_ERRORS
 * are stored, the rest only counted (diag->dropped) so a hostile document
 * cannot make the list grow without bound.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void scone_policy_diag_free(struct scone_policy_diag *d)
{
	if (!d)
		return;
	free(d->errors);
	memset(d, 0, sizeof(*d));
}

void scone_policy_error_format(const struct scone_policy_error *e, char *out, size_t out_size)
{
	int n;

	if (!out || out_size == 0)
		return;
	if (e->path[0])
		n = snprintf(out, out_size, "%d:%d: %s: %s", e->pos.line, e->pos.column, e->path, e->message);
	else
		n = snprintf(out, out_size, "%d:%d: %s", e->pos.line, e->pos.column, e->message);
	if (n < 0)
		out[0] = '\0';
}

void pol_error(struct pctx *c, struct scone_pos pos, const char *fmt, ...)
{
	struct scone_policy_diag *d = c->diag;
	struct scone_policy_error *e;
	va_list ap;

	c->errors++;
	if (d->count >= POL_MAX_STORED_ERRORS) {
		d->dropped++;
		return;
	}
	if (!d->errors) {
		d->errors = calloc(POL_MAX_STORED_ERRORS, sizeof(*d->errors));
		if (!d->errors) {
			c->nomem = true;
			d->dropped++;
			return;
		}
	}
	e = &d->errors[d->count++];
	memset(e, 0, sizeof(*e));
	e->pos = pos;
	memcpy(e->path, c->path, c->path_len);
	e->path[c->path_len] = '\0';
	va_start(ap, fmt);
	if (vsnprintf(e->message, sizeof(e->message), fmt, ap) < 0)
		e->message[0] = '\0';
	va_end(ap);
}

/* Append text to the path, truncating (with "...") when it does not fit. */
static size_t path_append(struct pctx *c, const char *text)
{
	size_t old = c->path_len, n = strlen(text);

	if (old + n >= POL_PATH_MAX) {
		size_t room = POL_PATH_MAX - 1 - old;
		memcpy(c->path + old, text, room);
		c->path_len = POL_PATH_MAX - 1;
		if (c->path_len >= 3)
			memcpy(c->path + c->path_len - 3, "...", 3);
	} else {
		memcpy(c->path + old, text, n);
		c->path_len = old + n;
	}
	c->path[c->path_len] = '\0';
	return old;
}

size_t pol_path_key(struct pctx *c, const char *key)
{
	size_t old = c->path_len;

	if (c->path_len > 0 && c->path_len < POL_PATH_MAX - 1)
		path_append(c, ".");
	path_append(c, key);
	return old;
}

size_t pol_path_index(struct pctx *c, size_t i)
{
	char buf[32];

	if (snprintf(buf, sizeof(buf), "[%zu]", i) < 0)
		buf[0] = '\0';
	return path_append(c, buf);
}

void pol_path_restore(struct pctx *c, size_t len)
{
	c->path_len = len;
	c->path[len] = '\0';
}

static int pos_cmp(const struct scone_policy_error *a, const struct scone_policy_error *b)
{
	if (a->pos.line != b->pos.line)
		return a->pos.line < b->pos.line ? -1 : 1;
	if (a->pos.column != b->pos.column)
		return a->pos.column < b->pos.column ? -1 : 1;
	return 0;
}

void pol_diag_sort(struct scone_policy_diag *d)
{
	/* insertion sort: stable, and at most POL_MAX_STORED_ERRORS entries */
	for (size_t i = 1; i < d->count; i++) {
		struct scone_policy_error tmp = d->errors[i];
		size_t j = i;
		while (j > 0 && pos_cmp(&d->errors[j - 1], &tmp) > 0) {
			d->errors[j] = d->errors[j - 1];
			j--;
		}
		d->errors[j] = tmp;
	}
}
