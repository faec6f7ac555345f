/*
 * volumes.c - GET|PUT /v1/volumes/SESSION/VOLUME: the owner's view of the
 * tag CAS tracks for one of a session's volumes, and the owner's act of
 * accepting a state of the disk that CAS does not know (CAS restored from a
 * backup, a report lost in a crash, a volume directory restored on
 * purpose). Reading needs the session's access_policy.read, accepting its
 * access_policy.update; the accept is a compare-and-swap of the tag like a
 * runtime's report, and the store's audit hook logs it with the owner's key,
 * method and path, so that the log tells an owner's accept from a runtime's
 * report. A runtime's instance token gives no access here: without the
 * owner, a state CAS does not know is still refused at every start.
 */
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "cas.h"
#include "lib/log.h"

/* The session's own (not imported) volume named name, or NULL. */
static const struct scone_volume *own_volume(const struct scone_session *s, const char *name)
{
	for (size_t i = 0; i < s->n_volumes; i++)
		if (!s->volumes[i].import && strcmp(s->volumes[i].name, name) == 0)
			return &s->volumes[i];
	return NULL;
}

static void volume_get(struct cas *cas, const struct cas_request *req, const struct cas_loaded *l,
		       const struct scone_volume *v, struct cas_response *resp)
{
	struct scone_store *st = cas->stores[req->worker];
	char tag[65];
	enum scone_err err;

	if (v->fspf_tag) {
		cas_respond_json(resp, 200,
				 json_pack("{s:s,s:s,s:s,s:b}", "session", l->rec.name, "volume", v->name,
					   "tag", v->fspf_tag, "fixed", 1));
		return;
	}
	err = st->ops->get_volume_tag(st, l->rec.name, v->name, tag);
	if (err) {
		cas_respond_err(resp, err, "volume tag");
		return;
	}
	cas_respond_json(resp, 200,
			 json_pack("{s:s,s:s,s:s,s:b}", "session", l->rec.name, "volume", v->name, "tag", tag,
				   "fixed", 0));
}

static void volume_accept(struct cas *cas, const struct cas_request *req, const struct cas_loaded *l,
			  const struct scone_volume *v, struct cas_response *resp)
{
	struct scone_store *st = cas->stores[req->worker];
	struct cas_accept_request a;
	char cur[65];
	enum scone_err err;

	err = cas_parse_accept_request((const char *)req->body, req->body_len, &a);
	if (err) {
		cas_respond_err(resp, err, "accept request");
		return;
	}
	if (v->fspf_tag) {
		cas_respond_error(resp, 409, "CONFLICT",
				  "volume %s has a fixed tag in its session; update the session instead",
				  v->name);
		return;
	}
	err = st->ops->put_volume_tag(st, l->rec.name, v->name, a.previous_tag, a.tag);
	if (err == SCONE_ERR_CONFLICT &&
	    st->ops->get_volume_tag(st, l->rec.name, v->name, cur) == SCONE_ERR_OK) {
		if (strcasecmp(cur, a.tag) == 0) {
			err = SCONE_ERR_OK; /* accepted already (an answer lost, a second click) */
			scone_err_clear();
		} else {
			atomic_fetch_add(&cas->counters.tag_conflicts, 1);
			cas_respond_error(
			    resp, 409, "CONFLICT",
			    "volume %s: CAS's tag is %s, not %s: it moved since you looked (look "
			    "again)",
			    v->name, cur[0] ? cur : "(not initialised)",
			    a.previous_tag[0] ? a.previous_tag : "(not initialised)");
			return;
		}
	}
	if (err) {
		cas_respond_err(resp, err, "accept a volume state");
		return;
	}
	atomic_fetch_add(&cas->counters.tag_updates, 1);
	scone_warn("volume %s of session %s: the owner accepted the disk state %s (CAS had %s)", v->name,
		   l->rec.name, a.tag, a.previous_tag[0] ? a.previous_tag : "none");
	cas_respond_json(resp, 200,
			 json_pack("{s:s,s:s,s:s,s:s}", "session", l->rec.name, "volume", v->name, "tag",
				   a.tag, "previous_tag", a.previous_tag));
}

void cas_handle_volume_owner(struct cas *cas, const struct cas_request *req, const char *path,
			     struct cas_response *resp)
{
	char session[SCONE_SESSION_NAME_MAX + 1], volume[SCONE_SESSION_NAME_MAX + 1];
	bool write = req->method == CAS_PUT;
	const struct scone_volume *v;
	struct cas_loaded l;

	/* SESSION/VOLUME splits as a config id does: at the last '/', a volume name has none */
	if (cas_split_config_id(path, session, volume) != SCONE_ERR_OK) {
		scone_err_clear();
		cas_respond_error(resp, 400, "INVALID", "expected /v1/volumes/SESSION/VOLUME");
		return;
	}
	if (!cas_load_session(cas, req->worker, session, &l, resp))
		return;
	if (!cas_access_allows(cas, req->worker, &l, write ? 'u' : 'r',
			       req->has_peer_key ? req->peer_spki_sha256 : NULL)) {
		cas_respond_error(resp, 403, "PERMISSION",
				  "session %s: access_policy.%s does not allow this client", session,
				  write ? "update" : "read");
	} else if (!(v = own_volume(l.session, volume))) {
		cas_respond_error(resp, 404, "NOT_FOUND",
				  "session %s defines no volume %s (an imported volume "
				  "is accepted in the session that exports it)",
				  session, volume);
	} else if (write) {
		volume_accept(cas, req, &l, v, resp);
	} else {
		volume_get(cas, req, &l, v, resp);
	}
	cas_loaded_free(&l);
}
