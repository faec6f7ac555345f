/*
 * session_cache.c - a per-worker cache of parsed sessions and their
 * unsealed secret sets, keyed by name and validated by the session hash.
 *
 * Every request still reads the session's record from the store (so an
 * update made by another worker, process or replica is seen at once; a
 * PostgreSQL store may answer a configuration fetch from its own read
 * cache, and then the release's audit entry commits only if the record did
 * not change, see store.h "optimistic"); only when the
 * stored session hash and the digest of the stored secrets both equal the
 * cached ones are the YAML parse and the secrets decoding skipped. (The
 * digest matters: a session deleted and created again from the same text
 * has the same hash but new secrets.) Entries are reference-counted because one request may
 * load several sessions (imports) that map to the same slot: an evicted
 * entry lives until its last user lets go. One cache per worker thread, so
 * no locking. Evicted entries are freed with their secrets wiped.
 */
#include "cas.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cas/secrets.h"
#include "lib/crypto.h"

#define CACHE_SLOTS 1024

struct cas_parsed {
	unsigned refs;
	char name[SCONE_SESSION_NAME_MAX + 1];
	uint8_t hash[32];
	uint8_t secrets_digest[32];
	struct scone_session *session;
	struct scone_secret_set *secrets;
};

struct cas_cache {
	struct cas_parsed *slot[CACHE_SLOTS];
};

struct cas_cache *cas_cache_new(void)
{
	return calloc(1, sizeof(struct cas_cache));
}

void cas_parsed_put(struct cas_parsed *p)
{
	if (!p || --p->refs > 0)
		return;
	scone_session_free(p->session);
	scone_secrets_free(p->secrets);
	scone_wipe(p, sizeof(*p));
	free(p);
}

void cas_cache_free(struct cas_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < CACHE_SLOTS; i++)
		cas_parsed_put(c->slot[i]);
	free(c);
}

static size_t slot_of(const char *name)
{
	uint8_t h[32];

	scone_sha256(name, strlen(name), h);
	return ((size_t)h[0] | (size_t)h[1] << 8) % CACHE_SLOTS;
}

static enum scone_err parse_rec(const struct scone_session_rec *rec, const uint8_t digest[32],
				struct cas_parsed **out)
{
	struct cas_parsed *p = calloc(1, sizeof(*p));
	enum scone_err err;

	if (!p)
		return scone_err_set(SCONE_ERR_NOMEM, "session cache");
	p->refs = 1;
	snprintf(p->name, sizeof(p->name), "%s", rec->name);
	memcpy(p->hash, rec->hash, 32);
	memcpy(p->secrets_digest, digest, 32);
	err = scone_session_parse(rec->body, rec->body_len, &p->session, NULL);
	if (!err)
		err = scone_secrets_parse(rec->secrets, rec->secrets_len, &p->secrets);
	if (err) {
		cas_parsed_put(p);
		return scone_err_set(SCONE_ERR_CORRUPT, "stored session %s does not parse", rec->name);
	}
	*out = p;
	return SCONE_ERR_OK;
}

enum scone_err cas_cache_get(struct cas_cache *c, const struct scone_session_rec *rec,
			     struct cas_parsed **out, struct scone_session **session,
			     struct scone_secret_set **secrets)
{
	struct cas_parsed *p = NULL;
	uint8_t digest[32];
	size_t i = 0;

	scone_sha256(rec->secrets, rec->secrets_len, digest);
	if (c) {
		i = slot_of(rec->name);
		p = c->slot[i];
		if (p && strcmp(p->name, rec->name) == 0 && scone_ct_equal(p->hash, rec->hash, 32) &&
		    scone_ct_equal(p->secrets_digest, digest, 32)) {
			p->refs++;
			goto found;
		}
	}
	SCONE_TRY(parse_rec(rec, digest, &p));
	if (c) {
		cas_parsed_put(c->slot[i]);
		c->slot[i] = p;
		p->refs++; /* the cache's reference */
	}
found:
	*out = p;
	*session = p->session;
	*secrets = p->secrets;
	return SCONE_ERR_OK;
}
