/*
 * namespace.c - who holds a session name, and whom an export by name
 * reaches.
 *
 * Names are paths: "acme/team/app" lies below "acme/team" and "acme". The
 * session that decides who may create a name is its nearest existing
 * ancestor: that session's access_policy.create_sessions (default: its
 * update list, default [CREATOR]) must admit the creator's key. A name
 * without any existing ancestor is free to take. (SCONE requires the parent
 * session to exist; here a missing parent is skipped, so that a session
 * below a namespace nobody created yet still works - docs/sessions.md.)
 *
 * Creation is checked once, but access policies change and sessions are
 * deleted and created again, possibly by someone else. So an export by name
 * (no session_hash) is checked again at every use, against the sessions as
 * they are now. It reaches the importing session I from the exporting
 * session E only if
 *   - I was created by E's creator, or
 *   - some existing session P is an ancestor (or the very name) of both I
 *     and E, and the creator chain from P down to each of them holds: every
 *     existing session on the path below P was created by a key that its
 *     nearest existing ancestor's create_sessions admits now.
 * In words: an export by name trusts the exporter's own key and the
 * namespaces the exporter itself lives in, never a namespace that someone
 * else created around or above the name. Another owner who takes a name an
 * export points at (because it was free, or deleted) gets nothing: its
 * session fails both conditions. An export pinned with session_hash, and an
 * export to "*", are not checked this way (the owner chose that exact
 * document, or everyone).
 */
#include "cas.h"

#include <stdio.h>
#include <string.h>

#include "lib/crypto.h"

/* ---- access lists ---- */

/*
 * Does session s let key create sessions below it? Its create_sessions
 * (default: its update list), with rules and dynamic entries as every
 * other access check reads them (dynamic.c).
 */
static bool creates_below(struct cas *cas, int worker, const struct cas_loaded *s, const uint8_t key[32])
{
	return cas_access_allows(cas, worker, s, 'c', key);
}

/* ---- names ---- */

/* Length of the parent of name[0..len) (0: a top-level name). */
static size_t parent_len(const char *name, size_t len)
{
	while (len > 0 && name[len - 1] != '/')
		len--;
	return len ? len - 1 : 0;
}

/* Is name[0..len) a whole-segment prefix of other (or all of it)? */
static bool segment_prefix(const char *name, size_t len, const char *other)
{
	return strncmp(name, other, len) == 0 && (other[len] == '\0' || other[len] == '/');
}

/*
 * Load the session called name[0..len): true with *out filled when it
 * exists; false when it does not (or cannot be read: *failed set, fail
 * closed).
 */
static bool load_prefix(struct cas *cas, int worker, const char *name, size_t len, struct cas_loaded *out,
			bool *failed)
{
	char part[SCONE_SESSION_NAME_MAX + 1];
	struct cas_response scratch = {0};
	bool ok;

	if (len == 0 || len > SCONE_SESSION_NAME_MAX)
		return false;
	memcpy(part, name, len);
	part[len] = '\0';
	scone_wbuf_init(&scratch.body, 4096, 0);
	ok = cas_load_session(cas, worker, part, out, &scratch);
	scone_wbuf_free(&scratch.body);
	if (!ok && scratch.status != 404)
		*failed = true;
	scone_err_clear();
	return ok;
}

/*
 * The nearest existing strict ancestor of name[0..len), no shorter than
 * min_len bytes (0: any). False when there is none (or on a read failure,
 * *failed set).
 */
static bool nearest_ancestor(struct cas *cas, int worker, const char *name, size_t len, size_t min_len,
			     struct cas_loaded *out, bool *failed)
{
	for (size_t p = parent_len(name, len); p > 0 && p >= min_len; p = parent_len(name, p)) {
		if (load_prefix(cas, worker, name, p, out, failed))
			return true;
		if (*failed)
			return false;
	}
	return false;
}

enum scone_err cas_namespace_may_create(struct cas *cas, int worker, const char *name,
					const uint8_t creator[32])
{
	struct cas_loaded anc;
	bool failed = false, ok;
	char parent[SCONE_SESSION_NAME_MAX + 1];

	if (!nearest_ancestor(cas, worker, name, strlen(name), 0, &anc, &failed))
		return failed ? scone_err_set(SCONE_ERR_IO,
					      "session %s: its namespace sessions cannot be read", name)
			      : SCONE_ERR_OK;
	ok = creates_below(cas, worker, &anc, creator);
	snprintf(parent, sizeof(parent), "%s", anc.rec.name);
	cas_loaded_free(&anc);
	if (ok)
		return SCONE_ERR_OK;
	return scone_err_set(
	    SCONE_ERR_PERMISSION,
	    "session %s: access_policy.create_sessions of %s (the nearest existing session above "
	    "it) does not allow this client",
	    name, parent);
}

/*
 * The creator chain from the existing session top (top_len bytes of
 * name) down to name: every existing session below top, down to and with
 * name itself (whose creator is given, since it may not be stored yet), was
 * created by a key its nearest existing ancestor admits now.
 */
static bool chain_holds(struct cas *cas, int worker, size_t top_len, const char *name,
			const uint8_t creator[32])
{
	size_t len = strlen(name);
	const uint8_t *key = creator;
	struct cas_loaded self = {0}, anc;
	bool failed = false, ok = true, have_self = false;

	while (ok && len > top_len) {
		if (!nearest_ancestor(cas, worker, name, len, top_len, &anc, &failed)) {
			ok = false; /* top exists, so only a read failure gets here */
			break;
		}
		ok = creates_below(cas, worker, &anc, key);
		if (have_self)
			cas_loaded_free(&self);
		self = anc;
		have_self = true;
		key = self.rec.creator;
		len = strlen(self.rec.name);
	}
	if (have_self)
		cas_loaded_free(&self);
	return ok && !failed;
}

bool cas_namespace_vouches(struct cas *cas, int worker, const char *from, const uint8_t from_creator[32],
			   const char *who, const uint8_t who_creator[32])
{
	size_t common = 0, len;

	if (scone_ct_equal(from_creator, who_creator, 32))
		return true;
	/* The longest whole-segment prefix the two names share. */
	for (len = 1; from[len - 1] && who[len - 1] && from[len - 1] == who[len - 1]; len++)
		if (segment_prefix(from, len, who) && segment_prefix(who, len, from))
			common = len;
	for (len = common; len > 0; len = parent_len(from, len)) {
		struct cas_loaded top;
		bool failed = false, ok;
		if (!load_prefix(cas, worker, from, len, &top, &failed)) {
			if (failed)
				return false;
			continue;
		}
		cas_loaded_free(&top);
		ok = chain_holds(cas, worker, len, who, who_creator) &&
		     chain_holds(cas, worker, len, from, from_creator);
		if (ok)
			return true;
	}
	return false;
}
