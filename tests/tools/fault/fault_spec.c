/* fault_spec.c - parse the fault injector's rule (fault_spec.h). */
#include "fault_spec.h"

#include <stdio.h>
#include <string.h>

static const struct {
	const char *name;
	bool transfer;
} families[] = {
#define FAULT_FAMILY_ROW(id, name, transfer) {name, transfer},
    FAULT_FAMILIES(FAULT_FAMILY_ROW)
#undef FAULT_FAMILY_ROW
};

static const char *const kinds[] = {
    [FAULT_NONE] = "none", [FAULT_EINTR] = "eintr",   [FAULT_SHORT] = "short",
    [FAULT_EIO] = "eio",   [FAULT_ENOSPC] = "enospc", [FAULT_CRASH] = "crash",
};

#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))
#define MAX_VALUE (PATH_MAX - 1)

const char *fault_family_name(enum fault_family f)
{
	if (f == FAULT_ANY)
		return "*";
	return (unsigned)f < FAULT_FAMILY_COUNT ? families[f].name : NULL;
}

const char *fault_kind_name(enum fault_kind k)
{
	return (unsigned)k < N_KINDS ? kinds[k] : "?";
}

bool fault_family_transfers(enum fault_family f)
{
	return (unsigned)f < FAULT_FAMILY_COUNT && families[f].transfer;
}

/* The value v (v_len bytes, not terminated) equals word. */
static bool is(const char *v, size_t v_len, const char *word)
{
	return strlen(word) == v_len && memcmp(v, word, v_len) == 0;
}

/* A decimal number without sign, spaces or leading zeros, below 2^32. */
static bool number(const char *v, size_t v_len, unsigned long *out)
{
	unsigned long n = 0;

	if (v_len == 0 || v_len > 10 || (v_len > 1 && v[0] == '0'))
		return false;
	for (size_t i = 0; i < v_len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return false;
		n = n * 10 + (unsigned long)(v[i] - '0');
	}
	if (n > 0xffffffffUL)
		return false;
	*out = n;
	return true;
}

static bool family(const char *v, size_t v_len, enum fault_family *out)
{
	if (is(v, v_len, "*")) {
		*out = FAULT_ANY;
		return true;
	}
	for (size_t i = 0; i < FAULT_FAMILY_COUNT; i++) {
		if (is(v, v_len, families[i].name)) {
			*out = (enum fault_family)i;
			return true;
		}
	}
	return false;
}

static bool kind(const char *v, size_t v_len, enum fault_kind *out)
{
	for (size_t i = 0; i < N_KINDS; i++) {
		if (is(v, v_len, kinds[i])) {
			*out = (enum fault_kind)i;
			return true;
		}
	}
	return false;
}

/* An absolute path without NUL (the caller knows there is none), copied terminated. */
static bool abs_path(const char *v, size_t v_len, char out[PATH_MAX])
{
	if (v_len == 0 || v_len > MAX_VALUE || v[0] != '/')
		return false;
	memcpy(out, v, v_len);
	out[v_len] = '\0';
	return true;
}

enum key { K_CALL, K_NTH, K_TIMES, K_FAULT, K_PATH, K_COUNT, K_LOG, K_N };
static const char *const keys[K_N] = {"call", "nth", "times", "fault", "path", "count", "log"};
/* What each key takes, for the message that refuses a value. */
static const char *const wants[K_N] = {
    [K_CALL] = ("a family (open, read, write, pread, pwrite, fsync, fdatasync, ftruncate, rename, unlink, "
		"mkdir, close, fstat, stat, opendir, readdir, closedir) or *"),
    [K_NTH] = "a decimal number from 1 to 4294967295, no sign or leading zero",
    [K_TIMES] = "a decimal number from 0 to 4294967295, no sign or leading zero",
    [K_FAULT] = "none, eintr, short, eio, enospc or crash",
    [K_PATH] = "an absolute path shorter than PATH_MAX",
    [K_COUNT] = "an absolute path shorter than PATH_MAX",
    [K_LOG] = "an absolute path shorter than PATH_MAX",
};

/* At most this much of the input is quoted in a message. */
#define QUOTE 64

/* One KEY=VALUE item starting at byte pos of the rule; false with err filled in. */
static bool item(struct fault_spec *o, size_t pos, const char *k, size_t k_len, const char *v, size_t v_len,
		 bool seen[K_N], char *err, size_t err_size)
{
	size_t i;
	bool ok;

	for (i = 0; i < K_N && !is(k, k_len, keys[i]); i++)
		;
	if (i == K_N) {
		snprintf(err, err_size,
			 "at byte %zu: unknown key '%.*s' (call, nth, times, fault, path, count, log)", pos,
			 (int)(k_len > QUOTE ? QUOTE : k_len), k);
		return false;
	}
	if (seen[i]) {
		snprintf(err, err_size, "at byte %zu: key '%s' given twice", pos, keys[i]);
		return false;
	}
	seen[i] = true;
	switch ((enum key)i) {
	case K_CALL:
		ok = family(v, v_len, &o->call);
		o->has_call = ok;
		break;
	case K_NTH:
		ok = number(v, v_len, &o->nth) && o->nth > 0;
		break;
	case K_TIMES:
		ok = number(v, v_len, &o->times);
		break;
	case K_FAULT:
		ok = kind(v, v_len, &o->kind);
		break;
	case K_PATH:
		ok = abs_path(v, v_len, o->path);
		break;
	case K_COUNT:
		ok = abs_path(v, v_len, o->count);
		break;
	default:
		ok = abs_path(v, v_len, o->log);
		break;
	}
	if (!ok)
		snprintf(err, err_size, "at byte %zu: bad value '%.*s'%s for %s: expected %s",
			 pos + k_len + 1, (int)(v_len > QUOTE ? QUOTE : v_len), v, v_len > QUOTE ? "..." : "",
			 keys[i], wants[i]);
	return ok;
}

/* The rule as a whole makes sense. */
static bool coherent(const struct fault_spec *o, char *err, size_t err_size)
{
	if (o->kind == FAULT_NONE)
		return true;
	if (!o->has_call || !o->nth) {
		snprintf(err, err_size, "fault=%s needs call= and nth= (the rule has %s%s)",
			 fault_kind_name(o->kind),
			 o->has_call ? "no nth=" : "no call=", !o->has_call && !o->nth ? " and no nth=" : "");
		return false;
	}
	if (o->kind == FAULT_SHORT && !fault_family_transfers(o->call)) {
		snprintf(err, err_size, "fault=short applies to read, write, pread and pwrite, not %s",
			 fault_family_name(o->call));
		return false;
	}
	return true;
}

bool fault_spec_parse(const char *s, struct fault_spec *out, char *err, size_t err_size)
{
	bool seen[K_N] = {false};
	size_t pos = 0, len;

	memset(out, 0, sizeof(*out));
	out->times = 1;
	if (err_size)
		err[0] = '\0';
	if (!s || !*s)
		return true;
	len = strlen(s);
	while (pos <= len) {
		const char *it = s + pos, *comma = memchr(it, ',', len - pos), *eq;
		size_t it_len = comma ? (size_t)(comma - it) : len - pos;

		eq = memchr(it, '=', it_len);
		if (!eq || eq == it) {
			snprintf(err, err_size, "at byte %zu ('%.*s'): expected KEY=VALUE", pos,
				 (int)(it_len > QUOTE ? QUOTE : it_len), it);
			return false;
		}
		if (!item(out, pos, it, (size_t)(eq - it), eq + 1, it_len - (size_t)(eq - it) - 1, seen, err,
			  err_size))
			return false;
		pos += it_len + 1;
	}
	return coherent(out, err, err_size);
}

bool fault_spec_hits(const struct fault_spec *spec, unsigned long n)
{
	if (spec->kind == FAULT_NONE || n < spec->nth)
		return false;
	return spec->times == 0 || n - spec->nth < spec->times;
}
