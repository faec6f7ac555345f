/*
 * secrets.c - secrets[]: kinds, their parameters, explicit values
 * (checked with OpenSSL where they are keys or certificates), exports and
 * imports. References between secrets (private_key, issuer) are checked
 * in refs.c once every secret is known.
 */
#include "internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/base64.h"
#include "lib/crypto.h"
#include "lib/hex.h"
#include "lib/tls.h"

#define SECRET_MAX_SIZE (64 * 1024)
#define VALID_FOR_MAX_DAYS 36525u /* 100 years */

static const char *const secret_keys[] = {
    "name", "kind",	"size",	     "value",	"key_type", "private_key",   "issuer", "common_name", "dns",
    "san",  "endpoint", "valid_for", "migrate", "export",   "export_public", "import", NULL};

/* SCONE secret keys scone refuses, with why. */
static const struct pol_refusal secret_refused[] = {
    {"import_akv", "imports from Microsoft Azure Key Vault (import_akv) are not supported: CAS reaches no "
		   "Azure service; give the value (value:) or let CAS generate it"},
    {NULL, NULL},
};

static const char *const ascii_keys[] = {"size", "value", NULL};
static const char *const private_keys[] = {"key_type", "value", "migrate", NULL};
static const char *const public_keys[] = {"private_key", "value", NULL};
static const char *const x509_keys[] = {"private_key", "key_type", "issuer",	"common_name", "dns",
					"san",	       "endpoint", "valid_for", "value",       NULL};
static const char *const x509_ca_keys[] = {"private_key", "key_type", "issuer", "common_name",
					   "valid_for",	  "value",    NULL};
static const char *const fragment_keys[] = {"value", NULL};
static const char *const pgp_keys[] = {NULL};
static const char *const common_keys[] = {"name", "kind", "export", "export_public", NULL};
static const char *const import_keys[] = {"name", "kind", "import", NULL};

static const struct kind_info {
	const char *name;
	enum scone_secret_kind kind;
	const char *const *keys;
} kinds[] = {
    {"ascii", SCONE_SECRET_ASCII, ascii_keys},
    {"binary", SCONE_SECRET_BINARY, ascii_keys},
    {"private-key", SCONE_SECRET_PRIVATE_KEY, private_keys},
    {"public-key", SCONE_SECRET_PUBLIC_KEY, public_keys},
    {"x509", SCONE_SECRET_X509, x509_keys},
    {"x509-ca", SCONE_SECRET_X509_CA, x509_ca_keys},
    {"config-fragment", SCONE_SECRET_CONFIG_FRAGMENT, fragment_keys},
    {"pgp-key", SCONE_SECRET_PGP_KEY, pgp_keys},
};

/* SCONE kinds scone refuses, with why and what to write instead. */
static const struct pol_refusal kinds_refused[] = {
    {"aad-token", "aad-token secrets fetch Microsoft Azure Active Directory tokens, and CAS reaches no Azure "
		  "service: give the token to the service another way"},
    {"jwt", "jwt secrets (SCONE 7) are not supported: CAS does not mint tokens; sign a token with a "
	    "private-key secret inside the service"},
    {NULL, NULL},
};

static const struct kind_info *kind_by_name(const char *name)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(kinds[i].name, name) == 0)
			return &kinds[i];
	return NULL;
}

static bool in_list(const char *const *list, const char *s)
{
	for (size_t i = 0; list[i]; i++)
		if (strcmp(list[i], s) == 0)
			return true;
	return false;
}

/* Keys valid for some secret but not for this kind (or an import). */
static void check_kind_keys(struct pctx *c, const struct ynode *m, const char *kind,
			    const char *const *kind_keys, bool imported)
{
	pol_check_keys_refusing(c, m, secret_keys, secret_refused);
	for (size_t i = 0; i < m->n; i++) {
		const struct ynode *k = m->items[2 * i];
		if (!in_list(secret_keys, k->text))
			continue; /* reported as unknown above */
		if (imported) {
			if (!in_list(import_keys, k->text))
				pol_error(
				    c, k->pos,
				    "'%s' cannot be combined with import: the exporting session defines it",
				    k->text);
		} else if (kind_keys && !in_list(common_keys, k->text) && !in_list(kind_keys, k->text)) {
			pol_error(c, k->pos, "'%s' does not apply to %s secrets", k->text, kind);
		}
	}
}

/* ---- PEM values ---- */

static BIO *pem_bio(const struct ynode *n)
{
	return BIO_new_mem_buf(n->text, (int)n->len);
}

/* The key type of a parsed private key, or 0 if scone does not support it. */
static enum scone_key_type pkey_type(EVP_PKEY *k)
{
	char group[64];
	size_t glen = 0;

	switch (EVP_PKEY_get_base_id(k)) {
	case EVP_PKEY_ED25519:
		return SCONE_KEY_ED25519;
	case EVP_PKEY_RSA:
		if (EVP_PKEY_get_bits(k) == 2048)
			return SCONE_KEY_RSA2048;
		if (EVP_PKEY_get_bits(k) == 3072)
			return SCONE_KEY_RSA3072;
		return 0;
	case EVP_PKEY_EC:
		if (EVP_PKEY_get_group_name(k, group, sizeof(group), &glen) != 1)
			return 0;
		if (!strcmp(group, "prime256v1") || !strcmp(group, "P-256"))
			return SCONE_KEY_P256;
		if (!strcmp(group, "secp384r1") || !strcmp(group, "P-384"))
			return SCONE_KEY_P384;
		return 0;
	default:
		return 0;
	}
}

static void check_private_pem(struct pctx *c, const struct ynode *n, struct scone_secret *sec,
			      bool type_given)
{
	BIO *bio = pem_bio(n);
	EVP_PKEY *k = bio ? PEM_read_bio_PrivateKey(bio, NULL, scone_pem_no_passphrase, NULL) : NULL;
	enum scone_key_type t;

	if (!bio)
		c->nomem = true;
	else if (!k)
		pol_error(c, n->pos,
			  "not a PEM private key (PKCS#8 '-----BEGIN PRIVATE KEY-----', unencrypted)");
	if (k) {
		t = pkey_type(k);
		if (!t)
			pol_error(
			    c, n->pos,
			    "unsupported private key type: use P-256, P-384, Ed25519, RSA-2048 or RSA-3072");
		else if (type_given && t != sec->key_type)
			pol_error(c, n->pos, "the key in value does not match key_type");
		else
			sec->key_type = t;
	}
	EVP_PKEY_free(k);
	BIO_free(bio);
}

static void check_public_pem(struct pctx *c, const struct ynode *n)
{
	BIO *bio = pem_bio(n);
	EVP_PKEY *k = bio ? PEM_read_bio_PUBKEY(bio, NULL, scone_pem_no_passphrase, NULL) : NULL;

	if (!bio)
		c->nomem = true;
	else if (!k)
		pol_error(c, n->pos, "not a PEM public key ('-----BEGIN PUBLIC KEY-----')");
	EVP_PKEY_free(k);
	BIO_free(bio);
}

static void check_cert_pem(struct pctx *c, const struct ynode *n)
{
	BIO *bio = pem_bio(n);
	X509 *x = bio ? PEM_read_bio_X509(bio, NULL, scone_pem_no_passphrase, NULL) : NULL;

	if (!bio)
		c->nomem = true;
	else if (!x)
		pol_error(c, n->pos, "not a PEM certificate ('-----BEGIN CERTIFICATE-----')");
	X509_free(x);
	BIO_free(bio);
}

/* ---- binary values: hex (SCONE's form) or base64 ---- */

/*
 * A binary value: all hex digits (even count) is hex, as SCONE reads it;
 * anything else is base64; "base64:" or "hex:" in front forces the form.
 */
static void decode_binary(struct pctx *c, const struct ynode *n, struct scone_secret *sec)
{
	const char *t = n->text;
	size_t len = n->len, out_len = 0;
	bool hex = len % 2 == 0 && len > 0, ok;
	uint8_t *out;

	for (size_t i = 0; hex && i < len; i++)
		hex = isxdigit((unsigned char)t[i]) != 0;
	if (len >= 7 && !memcmp(t, "base64:", 7)) {
		t += 7, len -= 7, hex = false;
	} else if (len >= 4 && !memcmp(t, "hex:", 4)) {
		t += 4, len -= 4, hex = true;
	}
	out = pol_calloc(c, len / 2 + len + 1, 1);
	if (!out)
		return;
	/* lib's decoders: constant time, nothing left behind on error (a value may be a key) */
	if (hex) {
		out_len = len / 2;
		ok = len % 2 == 0 && scone_hex_decode(out, out_len, t, "binary value") == SCONE_ERR_OK;
	} else {
		ok = scone_base64_decode(t, len, out, len / 2 + len + 1, &out_len, SCONE_BASE64_SPACE,
					 "binary value") == SCONE_ERR_OK;
	}
	scone_err_clear(); /* the policy's own message names the position */
	if (!ok)
		pol_error(c, n->pos, "a binary value must be hex digits or base64");
	else if (out_len == 0 || out_len > SECRET_MAX_SIZE)
		pol_error(c, n->pos, "a binary value must hold 1 to %d bytes, this one holds %zu",
			  SECRET_MAX_SIZE, out_len);
	if (!ok || out_len == 0 || out_len > SECRET_MAX_SIZE) {
		scone_wipe(out, len / 2 + len + 1);
		free(out);
		return;
	}
	sec->value = (char *)out;
	sec->value_len = out_len;
	sec->size = out_len;
}

/* ---- per-kind parameters ---- */

static bool field_uint(struct pctx *c, const struct ynode *m, const char *key, unsigned long min,
		       unsigned long max, unsigned long *out)
{
	const struct ynode *v = pol_field(c, m, key, false);
	size_t saved;
	bool ok;

	if (!v)
		return false;
	saved = pol_path_key(c, key);
	ok = pol_uint(c, v, max, out);
	if (ok && *out < min) {
		pol_error(c, v->pos, "must be at least %lu", min);
		ok = false;
	}
	pol_path_restore(c, saved);
	return ok;
}

static void decode_value_secret(struct pctx *c, const struct ynode *m, struct scone_secret *sec)
{
	const struct ynode *value = pol_field(c, m, "value", false);
	const struct ynode *size = pol_field(c, m, "size", false);
	unsigned long n = 0;
	size_t saved;

	sec->size = 20; /* SCONE's default for ascii and binary alike */
	if (size && field_uint(c, m, "size", 1, SECRET_MAX_SIZE, &n))
		sec->size = n;
	if (value && size) {
		saved = pol_path_key(c, "size");
		pol_error(c, size->pos, "give either size (generated) or value (explicit), not both");
		pol_path_restore(c, saved);
	}
	if (!value)
		return;
	saved = pol_path_key(c, "value");
	if (!pol_expect(c, value, YN_SCALAR, "a string")) {
		pol_path_restore(c, saved);
		return;
	}
	if (sec->kind == SCONE_SECRET_BINARY) {
		decode_binary(c, value, sec);
	} else {
		bool ascii = true;
		for (size_t i = 0; i < value->len; i++)
			ascii = ascii && (unsigned char)value->text[i] < 0x80;
		if (!ascii)
			pol_error(c, value->pos,
				  "an ascii value must be ASCII text (use kind: binary for other bytes)");
		else if (value->len > SECRET_MAX_SIZE)
			pol_error(c, value->pos, "an ascii value is limited to %d bytes", SECRET_MAX_SIZE);
		else if ((sec->value = pol_strndup(c, value->text, value->len)))
			sec->value_len = sec->size = value->len;
	}
	pol_path_restore(c, saved);
}

static enum scone_key_type key_type_by_name(const char *t)
{
	static const struct {
		const char *name;
		enum scone_key_type type;
	} names[] = {
	    {"P-256", SCONE_KEY_P256},	    {"P256", SCONE_KEY_P256},	     {"secp256r1", SCONE_KEY_P256},
	    {"prime256v1", SCONE_KEY_P256}, {"P-384", SCONE_KEY_P384},	     {"P384", SCONE_KEY_P384},
	    {"secp384r1", SCONE_KEY_P384},  {"Ed25519", SCONE_KEY_ED25519},  {"RSA-2048", SCONE_KEY_RSA2048},
	    {"RSA2048", SCONE_KEY_RSA2048}, {"RSA-3072", SCONE_KEY_RSA3072}, {"RSA3072", SCONE_KEY_RSA3072},
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(names[i].name, t) == 0)
			return names[i].type;
	return 0;
}

/* key_type (default P-256); returns whether it was given. */
static bool decode_key_type(struct pctx *c, const struct ynode *m, struct scone_secret *sec)
{
	const struct ynode *v = pol_field(c, m, "key_type", false);
	size_t saved;

	sec->key_type = SCONE_KEY_P256;
	if (!v)
		return false;
	saved = pol_path_key(c, "key_type");
	if (pol_expect(c, v, YN_SCALAR, "a key type")) {
		enum scone_key_type t = key_type_by_name(v->text);
		if (t)
			sec->key_type = t;
		else
			pol_error(c, v->pos,
				  "unknown key_type '%.40s': use P-256, P-384, Ed25519, RSA-2048 or RSA-3072",
				  v->text);
	}
	pol_path_restore(c, saved);
	return true;
}

static void decode_private_key(struct pctx *c, const struct ynode *m, struct scone_secret *sec)
{
	bool type_given = decode_key_type(c, m, sec);
	const struct ynode *value = pol_field(c, m, "value", false);

	pol_field_bool(c, m, "migrate", &sec->migrate);
	if (value) {
		size_t saved = pol_path_key(c, "value");
		if (pol_expect(c, value, YN_SCALAR, "a PEM private key")) {
			check_private_pem(c, value, sec, type_given);
			sec->value = pol_strndup(c, value->text, value->len);
			sec->value_len = value->len;
		}
		pol_path_restore(c, saved);
	}
}

static void decode_public_key(struct pctx *c, const struct ynode *m, struct scone_secret *sec)
{
	const struct ynode *value = pol_field(c, m, "value", false);

	sec->private_key = pol_field_str(c, m, "private_key", false);
	if (!value && !pol_map_get(m, "private_key"))
		pol_error(c, m->pos,
			  "a public-key secret needs private_key (a private-key secret) or value (PEM)");
	if (value && pol_map_get(m, "private_key"))
		pol_error(c, value->pos, "give either private_key or value, not both");
	if (value) {
		size_t saved = pol_path_key(c, "value");
		if (pol_expect(c, value, YN_SCALAR, "a PEM public key")) {
			check_public_pem(c, value);
			sec->value = pol_strndup(c, value->text, value->len);
			sec->value_len = value->len;
		}
		pol_path_restore(c, saved);
	}
}

/* "365", "30d", "90 days", "2 weeks", "1 year": whole days, 1..36525. */
static bool parse_days(const char *t, unsigned *out)
{
	static const struct {
		const char *unit;
		unsigned days;
	} units[] = {{"", 1},	  {"d", 1},	{"day", 1}, {"days", 1},   {"w", 7},
		     {"week", 7}, {"weeks", 7}, {"y", 365}, {"year", 365}, {"years", 365}};
	unsigned long n = 0;
	size_t i = 0;

	while (t[i] >= '0' && t[i] <= '9' && n <= VALID_FOR_MAX_DAYS)
		n = n * 10 + (unsigned long)(t[i++] - '0');
	if (i == 0)
		return false;
	while (t[i] == ' ')
		i++;
	for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
		if (strcmp(t + i, units[u].unit) == 0) {
			n *= units[u].days;
			if (n == 0 || n > VALID_FOR_MAX_DAYS)
				return false;
			*out = (unsigned)n;
			return true;
		}
	}
	return false;
}

static bool is_dns_name(const char *s)
{
	size_t len = strlen(s), label = 0;

	if (len == 0 || len > 253)
		return false;
	if (s[0] == '*' && s[1] == '.')
		s += 2; /* one leading wildcard label */
	for (const char *p = s;; p++) {
		if (*p == '.' || *p == '\0') {
			if (label == 0 || label > 63 || p[-1] == '-')
				return false;
			if (*p == '\0')
				return true;
			label = 0;
		} else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
			   *p == '_' || (*p == '-' && label > 0)) {
			label++;
		} else {
			return false;
		}
	}
}

static bool is_ip(const char *s)
{
	unsigned char buf[16];
	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* dns: / san: entries go to ips when they are IP addresses, else to dns. */
static void decode_names(struct pctx *c, const struct ynode *m, const char *key, bool single_ok,
			 struct scone_secret *sec)
{
	const struct ynode *v = pol_field(c, m, key, false);
	struct scone_strs all = {0};
	size_t saved;

	if (!v)
		return;
	saved = pol_path_key(c, key);
	if (pol_str_list(c, v, single_ok, false, NULL, &all)) {
		for (size_t i = 0; i < all.n; i++) {
			const struct ynode *item = v->kind == YN_SEQ ? v->items[i] : v;
			const char *e = all.v[i];
			/* san: SCONE 0.3.10 writes "dns:NAME" and "ip:ADDRESS" */
			if (!strcmp(key, "san") && !strncmp(e, "dns:", 4)) {
				if (is_dns_name(e + 4))
					pol_strs_add(c, &sec->dns, e + 4);
				else
					pol_error(c, item->pos, "'%.80s' is not a DNS name", e + 4);
			} else if (!strcmp(key, "san") && !strncmp(e, "ip:", 3)) {
				if (is_ip(e + 3))
					pol_strs_add(c, &sec->ips, e + 3);
				else
					pol_error(c, item->pos, "'%.80s' is not an IPv4 or IPv6 address",
						  e + 3);
			} else if (is_ip(e)) {
				pol_strs_add(c, &sec->ips, e);
			} else if (is_dns_name(e)) {
				pol_strs_add(c, &sec->dns, e);
			} else {
				pol_error(c, item->pos,
					  "'%.80s' is neither a DNS name nor an IP address (san entries are "
					  "written "
					  "\"dns:NAME\" or \"ip:ADDRESS\")",
					  e);
			}
		}
	}
	scone_strs_free(&all);
	pol_path_restore(c, saved);
}

static void decode_x509(struct pctx *c, const struct ynode *m, struct scone_secret *sec)
{
	const struct ynode *value = pol_field(c, m, "value", false), *v;
	bool type_given = decode_key_type(c, m, sec);
	size_t saved;

	sec->private_key = pol_field_str(c, m, "private_key", false);
	sec->issuer = pol_field_str(c, m, "issuer", false);
	sec->common_name = pol_field_str(c, m, "common_name", false);
	if (sec->common_name && (strlen(sec->common_name) == 0 || strlen(sec->common_name) > 64))
		pol_error(c, pol_map_get(m, "common_name")->pos, "common_name must be 1 to 64 characters");
	if (type_given && (sec->private_key || value))
		pol_error(c, pol_map_get(m, "key_type")->pos,
			  "key_type applies only to a certificate with its own generated key (no "
			  "private_key, no value)");
	decode_names(c, m, "dns", true, sec);
	decode_names(c, m, "san", true, sec);
	sec->endpoint = pol_field_str(c, m, "endpoint", false);
	if (sec->endpoint && strcmp(sec->endpoint, "server") && strcmp(sec->endpoint, "client"))
		pol_error(c, pol_map_get(m, "endpoint")->pos, "endpoint must be server or client");
	if (sec->endpoint && !strcmp(sec->endpoint, "client") && (sec->dns.n || sec->ips.n))
		pol_error(c, pol_map_get(m, "endpoint")->pos,
			  "a client certificate has no subject alternative names (drop dns/san)");
	sec->valid_for_days = 0; /* SCONE: without valid_for, valid for a virtually unlimited time */
	if ((v = pol_field(c, m, "valid_for", false))) {
		saved = pol_path_key(c, "valid_for");
		if (pol_expect(c, v, YN_SCALAR, "a duration") && !parse_days(v->text, &sec->valid_for_days))
			pol_error(
			    c, v->pos,
			    "valid_for '%.40s': write days as 365, \"30d\", \"90 days\", \"2 weeks\" or "
			    "\"1 year\" (1 day to 100 years)",
			    v->text);
		pol_path_restore(c, saved);
	}
	if (value) {
		saved = pol_path_key(c, "value");
		if (pol_expect(c, value, YN_SCALAR, "a PEM certificate")) {
			check_cert_pem(c, value);
			sec->value = pol_strndup(c, value->text, value->len);
			sec->value_len = value->len;
		}
		pol_path_restore(c, saved);
	}
}

/* ---- export / import: SCONE IDs ---- */

static const struct pol_refusal remote_refused[] = {
    {"cas_url", "sessions on another CAS (cas_url, cas_key) are not supported: scone's CAS exports and "
		"imports between its own sessions only"},
    {"cas_key", "sessions on another CAS (cas_url, cas_key) are not supported: scone's CAS exports and "
		"imports between its own sessions only"},
    {"cas_software_key", "sessions on another CAS (cas_url, cas_software_key) are not supported: scone's CAS "
			 "exports and imports between its own sessions only"},
    {NULL, NULL},
};

/* Resolve "..", "." and "../x", "./x" against base (a session name) into out. */
static bool resolve_relative(const char *ref, const char *base, char *out, size_t out_size)
{
	size_t len;

	if (strlen(base) >= out_size)
		return false;
	memcpy(out, base, strlen(base) + 1);
	while (*ref) {
		const char *slash = strchr(ref, '/');
		size_t n = slash ? (size_t)(slash - ref) : strlen(ref);
		if (n == 2 && !strncmp(ref, "..", 2)) {
			char *cut = strrchr(out, '/');
			if (!cut && !*out)
				return false; /* above the top */
			if (cut)
				*cut = '\0';
			else
				*out = '\0';
		} else if (!(n == 1 && ref[0] == '.')) {
			len = strlen(out);
			if (len + 1 + n >= out_size || n == 0)
				return false;
			if (len)
				out[len++] = '/';
			memcpy(out + len, ref, n);
			out[len + n] = '\0';
		}
		ref += n + (slash ? 1 : 0);
	}
	return *out != '\0';
}

char *pol_session_ref(struct pctx *c, const struct ynode *n, const struct scone_session *s)
{
	char buf[SCONE_SESSION_NAME_MAX + 1];
	const char *t = n->text;

	if (!strcmp(t, "*"))
		return pol_strndup(c, t, 1);
	if (!strcmp(t, ".") || !strcmp(t, "..") || !strncmp(t, "./", 2) || !strncmp(t, "../", 3)) {
		if (!s->name)
			return NULL; /* the session's own name is invalid: reported there */
		if (!resolve_relative(t, s->name, buf, sizeof(buf)) || !scone_session_name_valid(buf)) {
			pol_error(c, n->pos, "'%.80s' relative to session %.80s names no valid session", t,
				  s->name);
			return NULL;
		}
		return pol_strndup(c, buf, strlen(buf));
	}
	if (!scone_session_name_valid(t)) {
		pol_error(c, n->pos, "'%.80s' is not a session name", t);
		return NULL;
	}
	return pol_strndup(c, t, n->len);
}

/* A hash field of a SCONE ID (session_hash), stored lowercase. */
static char *id_hash(struct pctx *c, const struct ynode *m, const char *key)
{
	const struct ynode *v = pol_field(c, m, key, false);
	size_t saved;
	char *h = NULL;

	if (!v)
		return NULL;
	saved = pol_path_key(c, key);
	if (pol_expect(c, v, YN_SCALAR, "a session hash") && pol_check_hex32(c, v) && (h = pol_str(c, v)))
		pol_lower(h);
	pol_path_restore(c, saved);
	return h;
}

/*
 * SCONE's URL short form of a local SCONE ID, "/session=NAME,session_hash=H"
 * or "/namespace=NAME", into e. A form with a host names another CAS: refused.
 */
static void export_url(struct pctx *c, const struct ynode *n, const struct scone_session *s,
		       struct scone_export *e)
{
	char field[SCONE_SESSION_NAME_MAX + 80];
	const char *p = n->text + 1;

	if (n->text[0] != '/') {
		pol_error(c, n->pos,
			  "'%.80s' names a session on another CAS, which scone does not support: "
			  "export to sessions of this CAS",
			  n->text);
		return;
	}
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		struct ynode tmp = {.kind = YN_SCALAR, .pos = n->pos, .text = field};
		if (len >= sizeof(field))
			break;
		memcpy(field, p, len);
		field[len] = '\0';
		if (!strncmp(field, "session=", 8) || !strncmp(field, "namespace=", 10)) {
			e->namespace = field[0] == 'n';
			tmp.text = field + (e->namespace ? 10 : 8);
			tmp.len = strlen(tmp.text);
			free(e->session);
			e->session = pol_session_ref(c, &tmp, s);
		} else if (!strncmp(field, "session_hash=", 13) && pol_is_hex(field + 13, 32)) {
			free(e->session_hash);
			e->session_hash = pol_strndup(c, field + 13, 64);
			pol_lower(e->session_hash);
		} else {
			pol_error(c, n->pos,
				  "'%.80s' in '%.80s': a local SCONE ID has session=, session_hash= or "
				  "namespace= (another CAS is not supported)",
				  field, n->text);
			return;
		}
		p += len + (comma ? 1 : 0);
	}
	if (!e->session)
		pol_error(c, n->pos, "'%.80s' names no session", n->text);
}

/* The SCONE ID of an export entry (a mapping: session/session_hash/namespace). */
static void export_id(struct pctx *c, const struct ynode *n, bool volumes, const struct scone_session *s,
		      struct scone_export *e)
{
	static const char *const keys[] = {"session", "session_hash", "namespace", NULL};
	const struct ynode *v;

	pol_check_keys_refusing(c, n, keys, remote_refused);
	if ((v = pol_field(c, n, "namespace", false))) {
		size_t saved = pol_path_key(c, "namespace");
		if (volumes)
			pol_error(c, pol_map_get(n, "namespace")->pos,
				  "volumes cannot be exported to a namespace (as in SCONE)");
		if (pol_map_get(n, "session") || pol_map_get(n, "session_hash"))
			pol_error(c, n->pos,
				  "an export names either namespace or session (with session_hash)");
		e->namespace = true;
		if (pol_expect(c, v, YN_SCALAR, "a namespace name"))
			e->session = pol_session_ref(c, v, s);
		pol_path_restore(c, saved);
	} else if ((v = pol_field(c, n, "session", true))) {
		size_t saved = pol_path_key(c, "session");
		if (pol_expect(c, v, YN_SCALAR, "a session name"))
			e->session = pol_session_ref(c, v, s);
		pol_path_restore(c, saved);
	}
	e->session_hash = id_hash(c, n, "session_hash");
}

/*
 * A volume export with options: {to: SCONE ID, volume_alias, update_policy}
 * (SCONE 0.3.2 and 0.3.10).
 */
static void export_to(struct pctx *c, const struct ynode *n, const struct scone_session *s,
		      struct scone_export *e)
{
	static const char *const keys[] = {"to", "volume_alias", "update_policy", NULL};
	const struct ynode *to = pol_field(c, n, "to", true), *alias;
	size_t saved;

	pol_check_keys(c, n, keys);
	if (to) {
		saved = pol_path_key(c, "to");
		if (to->kind == YN_SCALAR && !to->null && strchr(to->text, '='))
			export_url(c, to, s, e);
		else if (pol_expect(c, to, YN_MAP, "a SCONE ID {session, session_hash}"))
			export_id(c, to, true, s, e);
		pol_path_restore(c, saved);
	}
	if ((alias = pol_field(c, n, "volume_alias", false))) {
		saved = pol_path_key(c, "volume_alias");
		if (pol_expect(c, alias, YN_SCALAR, "a volume name") && pol_check_name(c, alias, "volume"))
			e->volume_alias = pol_str(c, alias);
		pol_path_restore(c, saved);
	}
	pol_update_policy(c, n, &e->update_policy);
}

static void export_one(struct pctx *c, const struct ynode *n, bool volumes, const struct scone_session *s,
		       struct scone_export *e)
{
	if (n->kind == YN_SCALAR && !n->null) {
		if (strchr(n->text, '='))
			export_url(c, n, s, e);
		else
			e->session = pol_session_ref(c, n, s);
		return;
	}
	if (!pol_expect(c, n, YN_MAP, "a session name or {session, session_hash}"))
		return;
	if (pol_map_key(n, "to") || pol_map_key(n, "volume_alias") || pol_map_key(n, "update_policy")) {
		if (!volumes)
			pol_error(c, n->pos,
				  "to / volume_alias / update_policy are for volume exports; a secret "
				  "export names the session directly");
		else
			export_to(c, n, s, e);
		return;
	}
	export_id(c, n, volumes, s, e);
}

void pol_decode_exports(struct pctx *c, const struct ynode *n, bool volumes, const struct scone_session *s,
			struct scone_export **out, size_t *n_out)
{
	size_t count = n->kind == YN_SEQ ? n->n : 1;
	size_t saved = pol_path_key(c, "export");

	*out = pol_calloc(c, count, sizeof(**out));
	if (*out) {
		*n_out = count;
		if (n->kind == YN_SEQ) {
			if (count == 0)
				pol_error(c, n->pos, "an empty export list: remove it");
			for (size_t i = 0; i < count; i++) {
				size_t s2 = pol_path_index(c, i);
				export_one(c, n->items[i], volumes, s, &(*out)[i]);
				pol_path_restore(c, s2);
			}
		} else {
			export_one(c, n, volumes, s, &(*out)[0]);
		}
	}
	pol_path_restore(c, saved);
}

void pol_free_exports(struct scone_export *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].session);
		free(v[i].session_hash);
		free(v[i].volume_alias);
	}
	free(v);
}

struct scone_import *pol_decode_import(struct pctx *c, const struct ynode *n, const char *name_key,
				       const struct scone_session *s)
{
	const char *keys[] = {"session", name_key, "session_hash", NULL};
	struct scone_import *imp;
	const struct ynode *v;
	size_t saved = pol_path_key(c, "import");

	if (!pol_expect(c, n, YN_MAP, "a mapping {session, ...}")) {
		pol_path_restore(c, saved);
		return NULL;
	}
	pol_check_keys_refusing(c, n, keys, remote_refused);
	imp = pol_calloc(c, 1, sizeof(*imp));
	if (imp) {
		if ((v = pol_field(c, n, "session", true))) {
			size_t s2 = pol_path_key(c, "session");
			if (pol_expect(c, v, YN_SCALAR, "a session name"))
				imp->session = pol_session_ref(c, v, s);
			pol_path_restore(c, s2);
		}
		imp->name = pol_field_str(c, n, name_key, false);
		imp->session_hash = id_hash(c, n, "session_hash");
	}
	pol_path_restore(c, saved);
	return imp;
}

/* ---- one secret ---- */

static void decode_kind(struct pctx *c, const struct ynode *m, struct scone_secret *sec,
			const struct kind_info **ki)
{
	const struct ynode *v = pol_field(c, m, "kind", !pol_map_get(m, "import"));
	size_t saved;

	*ki = NULL;
	if (!v)
		return;
	saved = pol_path_key(c, "kind");
	if (pol_expect(c, v, YN_SCALAR, "a secret kind")) {
		const char *why = NULL;
		*ki = kind_by_name(v->text);
		for (size_t i = 0; !*ki && kinds_refused[i].key; i++)
			if (!strcmp(kinds_refused[i].key, v->text))
				why = kinds_refused[i].why;
		if (*ki)
			sec->kind = (*ki)->kind;
		else if (why)
			pol_error(c, v->pos, "%s", why);
		else
			pol_error(c, v->pos,
				  "unknown secret kind '%.40s': use ascii, binary, private-key, public-key, "
				  "x509, x509-ca, config-fragment or pgp-key",
				  v->text);
	}
	pol_path_restore(c, saved);
}

/*
 * config-fragment (SCONE 0.3.10): a YAML value substituted where a whole
 * $$SCONE::NAME$$ stands in security, access_policy or a service's
 * attestation (fragment.c). Kept as canonical JSON text; a scalar one may
 * also be used inside strings.
 */
static void decode_fragment(struct pctx *c, const struct ynode *m, struct scone_secret *sec)
{
	const struct ynode *v = pol_field(c, m, "value", true);

	if (!v)
		return;
	pol_mark_consumed(v);
	sec->fragment_scalar = v->kind == YN_SCALAR;
	sec->value = pol_ynode_json(c, v);
	sec->value_len = sec->value ? strlen(sec->value) : 0;
	if (sec->value_len > SECRET_MAX_SIZE) {
		size_t saved = pol_path_key(c, "value");
		pol_error(c, v->pos, "a config-fragment is limited to %d bytes of JSON", SECRET_MAX_SIZE);
		pol_path_restore(c, saved);
	}
}

static void decode_secret(struct pctx *c, const struct ynode *m, struct scone_secret *sec,
			  const struct scone_session *s)
{
	const struct ynode *name = pol_field(c, m, "name", true), *v;
	const struct kind_info *ki;
	size_t saved;

	sec->pos = m->pos;
	if (name) {
		saved = pol_path_key(c, "name");
		if (pol_expect(c, name, YN_SCALAR, "a name") && pol_check_name(c, name, "secret"))
			sec->name = pol_str(c, name);
		pol_path_restore(c, saved);
	}
	decode_kind(c, m, sec, &ki);
	if ((v = pol_field(c, m, "import", false))) {
		check_kind_keys(c, m, NULL, NULL, true);
		sec->import = pol_decode_import(c, v, "secret", s);
		return;
	}
	check_kind_keys(c, m, ki ? ki->name : NULL, ki ? ki->keys : NULL, false);
	switch (sec->kind) {
	case SCONE_SECRET_ASCII:
	case SCONE_SECRET_BINARY:
		decode_value_secret(c, m, sec);
		break;
	case SCONE_SECRET_PRIVATE_KEY:
		decode_private_key(c, m, sec);
		break;
	case SCONE_SECRET_PUBLIC_KEY:
		decode_public_key(c, m, sec);
		break;
	case SCONE_SECRET_X509:
	case SCONE_SECRET_X509_CA:
		decode_x509(c, m, sec);
		break;
	case SCONE_SECRET_CONFIG_FRAGMENT:
		decode_fragment(c, m, sec);
		break;
	case SCONE_SECRET_PGP_KEY:
		break; /* generated by CAS; SCONE takes no parameters or values */
	}
	pol_field_bool(c, m, "export_public", &sec->export_public);
	if ((v = pol_field(c, m, "export", false)))
		pol_decode_exports(c, v, false, s, &sec->exports, &sec->n_exports);
}

void pol_decode_secrets(struct pctx *c, const struct ynode *list, struct scone_session *s)
{
	size_t saved = pol_path_key(c, "secrets");

	if (pol_expect(c, list, YN_SEQ, "a list of secrets")) {
		s->secrets = pol_calloc(c, list->n, sizeof(*s->secrets));
		if (s->secrets) {
			s->n_secrets = list->n;
			for (size_t i = 0; i < list->n; i++) {
				size_t s2 = pol_path_index(c, i);
				if (pol_expect(c, list->items[i], YN_MAP,
					       "a secret (a mapping with name and kind)"))
					decode_secret(c, list->items[i], &s->secrets[i], s);
				pol_path_restore(c, s2);
			}
			pol_check_unique(c, list, "name", "secret");
		}
	}
	pol_path_restore(c, saved);
}
