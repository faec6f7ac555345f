/*
 * request.c - the JSON bodies the service endpoints accept. Bodies come
 * from unauthenticated callers: each is size-checked, parsed with jansson
 * with duplicate keys refused, and every field is type- and length-checked
 * and named in the error. Unknown fields are errors, as in sessions.
 */
#include "cas.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <stdlib.h>

#include "attest/attest.h"
#include "lib/base64.h"
#include "lib/crypto.h"
#include "lib/hex.h"

#define CAS_JSON_BODY_MAX (64 * 1024)

static enum scone_err parse_object(const char *body, size_t len, json_t **out)
{
	json_error_t jerr;

	if (len > CAS_JSON_BODY_MAX)
		return scone_err_set(SCONE_ERR_TOO_LARGE, "request body: %zu bytes, limit %d", len,
				     CAS_JSON_BODY_MAX);
	*out = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!*out)
		return scone_err_set(SCONE_ERR_MALFORMED, "request body: line %d, column %d: %s", jerr.line,
				     jerr.column, jerr.text);
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return scone_err_set(SCONE_ERR_MALFORMED, "request body: expected a JSON object");
	}
	return SCONE_ERR_OK;
}

/* Every key of obj must be in allowed (NULL-terminated). */
static enum scone_err check_keys(json_t *obj, const char *const *allowed)
{
	const char *key;
	json_t *v;

	json_object_foreach(obj, key, v)
	{
		const char *const *a;
		(void)v;
		for (a = allowed; *a; a++)
			if (strcmp(*a, key) == 0)
				break;
		if (!*a)
			return scone_err_set(SCONE_ERR_INVALID, "request body: unknown field \"%.64s\"", key);
	}
	return SCONE_ERR_OK;
}

/* Copy string field name into out (size bytes incl. NUL); required or "" when absent. */
static enum scone_err get_string(json_t *obj, const char *name, bool required, char *out, size_t size)
{
	json_t *v = json_object_get(obj, name);
	size_t n;

	out[0] = '\0';
	if (!v) {
		if (required)
			return scone_err_set(SCONE_ERR_INVALID, "request body: field \"%s\" is required",
					     name);
		return SCONE_ERR_OK;
	}
	if (!json_is_string(v))
		return scone_err_set(SCONE_ERR_INVALID, "request body: field \"%s\" must be a string", name);
	n = json_string_length(v);
	if (n >= size || memchr(json_string_value(v), '\0', n))
		return scone_err_set(SCONE_ERR_INVALID, "request body: field \"%s\" is too long or holds NUL",
				     name);
	memcpy(out, json_string_value(v), n + 1);
	return SCONE_ERR_OK;
}

enum scone_err cas_split_config_id(const char *id, char *session, char *service)
{
	const char *slash = strrchr(id, '/');
	size_t slen;

	if (!slash)
		return scone_err_set(SCONE_ERR_INVALID, "config_id \"%.64s\": expected SESSION/SERVICE", id);
	slen = (size_t)(slash - id);
	if (slen == 0 || slen > SCONE_SESSION_NAME_MAX || strlen(slash + 1) > SCONE_SESSION_NAME_MAX)
		return scone_err_set(SCONE_ERR_INVALID, "config_id: bad length");
	memcpy(session, id, slen);
	session[slen] = '\0';
	memcpy(service, slash + 1, strlen(slash + 1) + 1);
	if (!scone_session_name_valid(session) || !service[0] || strchr(service, '/') ||
	    !scone_session_name_valid(service))
		return scone_err_set(SCONE_ERR_INVALID,
				     "config_id \"%.64s\": invalid session or service name", id);
	return SCONE_ERR_OK;
}

/* Strict standard base64 with padding (lib/base64): what the runtime sends. */
static enum scone_err decode_base64(const char *s, size_t n, struct cas_config_request *out)
{
	size_t cap = scone_base64_decoded_max(n);

	if (n == 0 || n / 4 * 3 > SCONE_EVIDENCE_MAX)
		return scone_err_set(SCONE_ERR_INVALID,
				     "request body: \"evidence.data\" must be padded base64 of 1 to %u "
				     "bytes",
				     SCONE_EVIDENCE_MAX);
	out->evidence = malloc(cap);
	if (!out->evidence)
		return scone_err_set(SCONE_ERR_NOMEM, "request body: evidence");
	return scone_base64_decode(s, n, out->evidence, cap, &out->evidence_size, 0,
				   "request body: \"evidence.data\"");
}

static enum scone_err parse_evidence(json_t *obj, struct cas_config_request *out)
{
	static const char *const keys[] = {"type", "data", "note", NULL};
	json_t *ev = json_object_get(obj, "evidence"), *data;

	snprintf(out->evidence_type, sizeof(out->evidence_type), "%s", "none");
	if (!ev || json_is_null(ev))
		return SCONE_ERR_OK;
	if (!json_is_object(ev))
		return scone_err_set(SCONE_ERR_INVALID, "request body: \"evidence\" must be an object");
	SCONE_TRY(check_keys(ev, keys));
	SCONE_TRY(get_string(ev, "type", true, out->evidence_type, sizeof(out->evidence_type)));
	SCONE_TRY(get_string(ev, "note", false, out->evidence_note, sizeof(out->evidence_note)));
	for (char *p = out->evidence_note; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
	data = json_object_get(ev, "data");
	if (!data || json_is_null(data))
		return SCONE_ERR_OK;
	if (!json_is_string(data))
		return scone_err_set(SCONE_ERR_INVALID,
				     "request body: \"evidence.data\" must be a base64 string");
	return decode_base64(json_string_value(data), json_string_length(data), out);
}

/* "SESSION/SERVICE@123456": the one-time password off the end. */
static enum scone_err take_otp(char *id, char otp[8])
{
	char *at = strrchr(id, '@');
	size_t n;

	otp[0] = '\0';
	if (!at)
		return SCONE_ERR_OK;
	n = strlen(at + 1);
	if (n != 6 || strspn(at + 1, "0123456789") != 6)
		return scone_err_set(SCONE_ERR_INVALID,
				     "config_id: the one-time password after '@' must be 6 digits");
	memcpy(otp, at + 1, 7);
	*at = '\0';
	return SCONE_ERR_OK;
}

void cas_config_request_free(struct cas_config_request *r)
{
	if (r->evidence) {
		scone_wipe(r->evidence, r->evidence_size);
		free(r->evidence);
	}
	scone_wipe(r->otp, sizeof(r->otp));
	r->evidence = NULL;
	r->evidence_size = 0;
}

enum scone_err cas_parse_config_request(const char *body, size_t len, struct cas_config_request *out)
{
	static const char *const keys[] = {"config_id", "evidence", "access_token_mac", NULL};
	char id[CAS_CONFIG_ID_MAX];
	json_t *obj;
	enum scone_err err;

	memset(out, 0, sizeof(*out));
	SCONE_TRY(parse_object(body, len, &obj));
	if (!(err = check_keys(obj, keys)) && !(err = get_string(obj, "config_id", true, id, sizeof(id))) &&
	    !(err = take_otp(id, out->otp)) && !(err = cas_split_config_id(id, out->session, out->service)))
		err = parse_evidence(obj, out);
	if (!err)
		err = get_string(obj, "access_token_mac", false, out->access_token_mac,
				 sizeof(out->access_token_mac));
	json_decref(obj);
	scone_wipe(id, sizeof(id));
	if (err)
		cas_config_request_free(out);
	return err;
}

static enum scone_err check_tag(const char *field, const char *hex, bool allow_empty)
{
	size_t n = strlen(hex);

	if (n == 0 && allow_empty)
		return SCONE_ERR_OK;
	if (n != 32)
		return scone_err_set(SCONE_ERR_INVALID, "request body: \"%s\" must be 32 hex digits", field);
	for (size_t i = 0; i < n; i++)
		if (!strchr("0123456789abcdef", hex[i]))
			return scone_err_set(SCONE_ERR_INVALID, "request body: \"%s\" must be lowercase hex",
					     field);
	return SCONE_ERR_OK;
}

enum scone_err cas_parse_tag_request(const char *body, size_t len, struct cas_tag_request *out)
{
	static const char *const keys[] = {"config_id", "volume",	  "previous_tag",
					   "tag",	"instance_token", NULL};
	char id[CAS_CONFIG_ID_MAX], token[65];
	json_t *obj;
	enum scone_err err;

	memset(out, 0, sizeof(*out));
	SCONE_TRY(parse_object(body, len, &obj));
	if ((err = check_keys(obj, keys)) || (err = get_string(obj, "config_id", true, id, sizeof(id))) ||
	    (err = cas_split_config_id(id, out->session, out->service)) ||
	    (err = get_string(obj, "volume", true, out->volume, sizeof(out->volume))) ||
	    (err = get_string(obj, "previous_tag", true, out->previous_tag, sizeof(out->previous_tag))) ||
	    (err = get_string(obj, "tag", true, out->tag, sizeof(out->tag))) ||
	    (err = get_string(obj, "instance_token", true, token, sizeof(token))))
		goto out;
	if ((err = check_tag("previous_tag", out->previous_tag, true)) ||
	    (err = check_tag("tag", out->tag, false)))
		goto out;
	if (!scone_session_name_valid(out->volume) || strchr(out->volume, '/')) {
		err = scone_err_set(SCONE_ERR_INVALID, "request body: \"volume\" is not a valid name");
		goto out;
	}
	if (strlen(token) != 64 ||
	    scone_hex_decode(out->token, sizeof(out->token), token, "instance_token")) {
		err = scone_err_set(SCONE_ERR_INVALID,
				    "request body: \"instance_token\" must be 64 hex digits");
		goto out;
	}
out:
	json_decref(obj);
	return err;
}

enum scone_err cas_parse_accept_request(const char *body, size_t len, struct cas_accept_request *out)
{
	static const char *const keys[] = {"tag", "previous_tag", NULL};
	json_t *obj;
	enum scone_err err;

	memset(out, 0, sizeof(*out));
	SCONE_TRY(parse_object(body, len, &obj));
	if (!(err = check_keys(obj, keys)) &&
	    !(err = get_string(obj, "tag", true, out->tag, sizeof(out->tag))) &&
	    !(err = get_string(obj, "previous_tag", true, out->previous_tag, sizeof(out->previous_tag))) &&
	    !(err = check_tag("tag", out->tag, false)))
		err = check_tag("previous_tag", out->previous_tag, true);
	json_decref(obj);
	return err;
}

/* One entry of "refs": {name, format?}. */
static enum scone_err parse_ref(json_t *o, size_t i, struct cas_values_ref *r)
{
	static const char *const keys[] = {"name", "format", NULL};

	if (!json_is_object(o))
		return scone_err_set(SCONE_ERR_INVALID, "request body: refs[%zu] must be an object", i);
	SCONE_TRY(check_keys(o, keys));
	SCONE_TRY(get_string(o, "name", true, r->name, sizeof(r->name)));
	SCONE_TRY(get_string(o, "format", false, r->format, sizeof(r->format)));
	r->has_format = json_object_get(o, "format") != NULL;
	if (!r->name[0] || (r->has_format && !r->format[0]))
		return scone_err_set(SCONE_ERR_INVALID, "request body: refs[%zu] has an empty name or format",
				     i);
	return SCONE_ERR_OK;
}

static enum scone_err parse_values(json_t *obj, struct cas_values_request *out)
{
	static const char *const keys[] = {"config_id", "instance_token", "path", "refs", NULL};
	char id[CAS_CONFIG_ID_MAX], token[65];
	json_t *refs, *r;
	size_t i;

	SCONE_TRY(check_keys(obj, keys));
	SCONE_TRY(get_string(obj, "config_id", true, id, sizeof(id)));
	SCONE_TRY(cas_split_config_id(id, out->session, out->service));
	SCONE_TRY(get_string(obj, "path", true, out->path, sizeof(out->path)));
	if (out->path[0] != '/')
		return scone_err_set(SCONE_ERR_INVALID, "request body: \"path\" must be an absolute path");
	SCONE_TRY(get_string(obj, "instance_token", true, token, sizeof(token)));
	if (strlen(token) != 64 || scone_hex_decode(out->token, sizeof(out->token), token, "instance_token"))
		return scone_err_set(SCONE_ERR_INVALID,
				     "request body: \"instance_token\" must be 64 hex digits");
	refs = json_object_get(obj, "refs");
	if (!json_is_array(refs) || json_array_size(refs) > CAS_VALUES_MAX_REFS)
		return scone_err_set(SCONE_ERR_INVALID,
				     "request body: \"refs\" must be an array of at most %d",
				     CAS_VALUES_MAX_REFS);
	json_array_foreach(refs, i, r)
	{
		SCONE_TRY(parse_ref(r, i, &out->refs[out->n_refs]));
		out->n_refs++;
	}
	return SCONE_ERR_OK;
}

enum scone_err cas_parse_values_request(const char *body, size_t len, struct cas_values_request **out)
{
	struct cas_values_request *v = calloc(1, sizeof(*v));
	json_t *obj;
	enum scone_err err;

	*out = NULL;
	if (!v)
		return scone_err_set(SCONE_ERR_NOMEM, "values request");
	if ((err = parse_object(body, len, &obj))) {
		free(v);
		return err;
	}
	err = parse_values(obj, v);
	json_decref(obj);
	if (err)
		free(v);
	else
		*out = v;
	return err;
}
