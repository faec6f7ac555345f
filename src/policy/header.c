/*
 * header.c - a session's top-level scalars: name, version, predecessor,
 * and the keys SCONE added around them (salt, namespace_hash, creator).
 *
 * Versions: SCONE numbers its language 0.3.0 .. 0.3.12 (SCONE 4.0 to 7.0);
 * "0.3" is 0.3.0. Every 0.3.x is read the same way here: a version only
 * says which SCONE release first knew a key, and a session written for an
 * older one stays valid in a newer one. "0.2" (the language before 0.3,
 * with other reference formats and certificates without private_key) and
 * "0.1" (what SCONE assumes without a version) are refused with what to
 * change. docs/sessions.md, section 2.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#include "lib/crypto.h"

#define NEWEST_MINOR 12 /* 0.3.12, SCONE 7.0 */

static void decode_name(struct pctx *c, const struct ynode *root, struct scone_session *s)
{
	const struct ynode *v = pol_field(c, root, "name", true);
	size_t saved;

	if (!v)
		return;
	s->name = pol_field_str(c, root, "name", true);
	saved = pol_path_key(c, "name");
	if (s->name && !strcmp(s->name, "/"))
		pol_error(c, v->pos,
			  "SCONE's root namespace session (name: /) is not supported: scone's CAS has no "
			  "session above the top-level ones; give the session its own name");
	else if (s->name && !scone_session_name_valid(s->name))
		pol_error(c, v->pos,
			  "invalid session name '%.80s': 1 to %d of A-Z a-z 0-9 _ . ~ - and '/' between "
			  "namespace parts (no empty, '.' or '..' part)",
			  s->name, SCONE_SESSION_NAME_MAX);
	pol_path_restore(c, saved);
}

/* "0.3" or "0.3.N" (N without leading zeros) into *minor; false otherwise. */
static bool version_03(const char *t, unsigned *minor)
{
	unsigned n = 0;

	if (strncmp(t, "0.3", 3) != 0)
		return false;
	if (t[3] == '\0') {
		*minor = 0;
		return true;
	}
	if (t[3] != '.' || t[4] < '0' || t[4] > '9' || (t[4] == '0' && t[5]))
		return false;
	for (t += 4; *t >= '0' && *t <= '9' && n < 1000; t++)
		n = n * 10 + (unsigned)(*t - '0');
	if (*t)
		return false;
	*minor = n;
	return true;
}

static void check_version(struct pctx *c, const struct ynode *v, struct scone_session *s)
{
	unsigned minor = 0;

	if (version_03(s->version, &minor) && minor <= NEWEST_MINOR) {
		s->version_minor = minor;
		return;
	}
	if (version_03(s->version, &minor))
		pol_error(
		    c, v->pos,
		    "version \"%.20s\" is newer than the newest SCONE language this scone reads (0.3.%d): "
		    "write a version from \"0.3\" to \"0.3.%d\"",
		    s->version, NEWEST_MINOR, NEWEST_MINOR);
	else if (!strcmp(s->version, "0.2"))
		pol_error(
		    c, v->pos,
		    "version \"0.2\" is SCONE's older session language (other export/import references, "
		    "x509 without private_key, access policies by certificate hash): scone reads 0.3.x "
		    "only; port the session to 0.3 (docs/sessions.md, section 2) and write version: "
		    "\"0.3\"");
	else
		pol_error(c, v->pos,
			  "version \"%.20s\" is not supported: this is SCONE's session language 0.3.x "
			  "(write version: \"0.3\" or \"0.3.N\" up to \"0.3.%d\")",
			  s->version, NEWEST_MINOR);
}

static void decode_version(struct pctx *c, const struct ynode *root, struct scone_session *s)
{
	const struct ynode *v = pol_field(c, root, "version", false);
	size_t saved = pol_path_key(c, "version");

	if (v) {
		if (pol_expect(c, v, YN_SCALAR, "a version (\"0.3\")") && (s->version = pol_str(c, v)))
			check_version(c, v, s);
	} else if (!pol_map_get(root, "version")) {
		pol_path_restore(c, saved);
		pol_error(
		    c, root->pos,
		    "missing required key 'version' (write version: \"0.3\"; SCONE would read a session "
		    "without one as its old language 0.1)");
	} else {
		pol_error(c, pol_map_get(root, "version")->pos, "'version' needs a value (\"0.3\")");
	}
	pol_path_restore(c, saved);
}

/* A 64-hex-digit hash field (predecessor, namespace_hash), stored lowercase. */
static char *hash_field(struct pctx *c, const struct ynode *root, const char *key)
{
	const struct ynode *v = pol_field(c, root, key, false);
	size_t saved;
	char *out = NULL;

	if (!v)
		return NULL;
	saved = pol_path_key(c, key);
	if (pol_expect(c, v, YN_SCALAR, "a session hash (64 hex digits) or ~") && pol_check_hex32(c, v) &&
	    (out = pol_str(c, v)))
		pol_lower(out);
	pol_path_restore(c, saved);
	return out;
}

/* salt: 16 bytes in hex; it only changes the hash, which covers it (section 12). */
static void decode_salt(struct pctx *c, const struct ynode *root, struct scone_session *s)
{
	const struct ynode *v = pol_field(c, root, "salt", false);
	size_t saved;

	if (!v)
		return;
	saved = pol_path_key(c, "salt");
	if (pol_expect(c, v, YN_SCALAR, "a salt (32 hex digits)")) {
		if (!pol_is_hex(v->text, 16))
			pol_error(c, v->pos,
				  "a salt is 32 hex digits (16 bytes, e.g. openssl rand -hex 16), got "
				  "'%.80s'",
				  v->text);
		else {
			s->salted = true;
			pol_note(
			    c, SCONE_NOTE_DIFFERENCE, v->pos,
			    "salt randomizes the session hash as in SCONE; scone does not publish salted "
			    "hashes to callers without read permission (SCONE does, and logs them)");
		}
	}
	pol_path_restore(c, saved);
}

/*
 * creator: what SCONE's CAS writes into a session it stores (and its
 * session read prints): the uploader's certificate. Accepted when
 * re-uploaded; CAS then checks it names the uploader (or, on update, the
 * session's creator).
 */
static void decode_creator(struct pctx *c, const struct ynode *root, struct scone_session *s)
{
	const struct ynode *v = pol_field(c, root, "creator", false);
	struct scone_principal p;
	size_t saved;

	if (!v)
		return;
	saved = pol_path_key(c, "creator");
	if (v->kind == YN_MAP && pol_map_get(v, "signer"))
		pol_error(c, v->pos,
			  "creator: signer is written by SCONE's session signing, which scone does not have: "
			  "remove creator (CAS records the uploader's certificate itself)");
	else if (pol_expect(c, v, YN_SCALAR, "the creator's PEM certificate") &&
		 pol_principal_pem(c, v, &p)) {
		s->has_creator = true;
		memcpy(s->creator_spki_sha256, p.spki_sha256, 32);
		pol_note(
		    c, SCONE_NOTE_WARNING, v->pos,
		    "creator is set by CAS (SCONE's read-back key): CAS accepts it only when it names the "
		    "uploader (or, on update, the session's creator)");
	}
	pol_path_restore(c, saved);
}

void pol_decode_header(struct pctx *c, const struct ynode *root, struct scone_session *s)
{
	decode_name(c, root, s);
	decode_version(c, root, s);
	s->predecessor = hash_field(c, root, "predecessor");
	s->namespace_hash = hash_field(c, root, "namespace_hash");
	if (s->namespace_hash && s->predecessor) {
		size_t saved = pol_path_key(c, "namespace_hash");
		pol_error(c, pol_map_get(root, "namespace_hash")->pos,
			  "namespace_hash is checked when a session is created: remove it from an update "
			  "(with predecessor)");
		pol_path_restore(c, saved);
	} else if (s->namespace_hash && s->name && !strchr(s->name, '/')) {
		size_t saved = pol_path_key(c, "namespace_hash");
		pol_error(c, pol_map_get(root, "namespace_hash")->pos,
			  "namespace_hash pins the parent namespace, and '%.80s' is in none", s->name);
		pol_path_restore(c, saved);
	}
	decode_salt(c, root, s);
	decode_creator(c, root, s);
}
