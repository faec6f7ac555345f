/*
 * fuzz_secrets.c - libFuzzer target for the CAS secret set
 * (src/cas/secrets*.c).
 *
 * The input is tried as
 *   - a serialized set: if scone_secrets_parse accepts it, serializing the
 *     set must give back the input exactly (the format has one encoding per
 *     set), and parsing that again must succeed and serialize the same;
 *     then every secret is rendered in every format of the table and in a
 *     few invalid ones: a format outside the table must be INVALID, one in
 *     it must succeed (except where the bytes cannot: a certificate without
 *     a key, or the public key of key material the parser does not decode),
 *     and nothing may crash or leak; volume keys and public parts too;
 *   - a recipe for a small session (up to 8 secrets of every kind, P-256
 *     and Ed25519 keys, issuer and private_key references to any index, so
 *     cycles and wrong kinds occur, imported secrets resolved in a fixed
 *     exporting set, plus volumes): generation must succeed or refuse with
 *     INVALID (NOT_FOUND for an import the exporter lacks); a generated set
 *     must round-trip through the codec, render, and generate again with
 *     itself as previous.
 * Seeds: fuzz/corpus/secrets.
 */
#include "cas/secrets_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const valid_formats[] = {NULL,  "hex",	"base64", "pem",   "privatekey",
					    "der", "publickey", "crt",	  "chain", "key"};
static const char *const invalid_formats[] = {"", "PEM", "raw", "hex\n", "x509"};

static bool in_table(uint8_t kind, const char *f)
{
	static const char *const bytes[] = {"hex", "base64"};
	static const char *const priv[] = {"pem", "privatekey", "der", "publickey"};
	static const char *const pub[] = {"pem", "der"};
	static const char *const cert[] = {"crt", "pem", "chain", "privatekey", "key", "der"};
	const char *const *list;
	size_t n;

	if (!f)
		return kind != SEC_KIND_VOLUME;
	switch (kind) {
	case SCONE_SECRET_ASCII:
	case SCONE_SECRET_BINARY:
		list = bytes, n = 2;
		break;
	case SCONE_SECRET_PRIVATE_KEY:
		list = priv, n = 4;
		break;
	case SCONE_SECRET_PUBLIC_KEY:
		list = pub, n = 2;
		break;
	case SCONE_SECRET_X509:
	case SCONE_SECRET_X509_CA:
		list = cert, n = 6;
		break;
	default:
		return false;
	}
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], f) == 0)
			return true;
	return false;
}

/* Formats whose output needs more than copying and encoding stored bytes. */
static bool may_fail(const struct sec_item *it, const char *f)
{
	if (!f)
		return false;
	if (it->kind == SCONE_SECRET_PRIVATE_KEY && strcmp(f, "publickey") == 0)
		return true;
	return (strcmp(f, "key") == 0 || strcmp(f, "privatekey") == 0) && it->value.n == 0;
}

static void render_one(const struct scone_secret_set *set, const struct sec_item *it, const char *f,
		       bool strict)
{
	struct scone_wbuf w;
	enum scone_err err;

	scone_wbuf_init(&w, 16u << 20, 1);
	err = scone_secrets_render(set, it->name, f, &w);
	if (it->kind == SEC_KIND_VOLUME) {
		/* not a secret, unless a secret has the same name */
		CHECK(err == SCONE_ERR_NOT_FOUND || scone_secrets_has(set, it->name));
	} else if (!in_table(it->kind, f)) {
		CHECK(err == SCONE_ERR_INVALID && w.size == 0);
	} else if (strict && !may_fail(it, f)) {
		if (err != SCONE_ERR_OK) {
			fprintf(stderr, "render %s:%s failed: %s: %s\n", it->name, f ? f : "-",
				scone_errname(err), scone_err_detail());
			abort();
		}
	} else {
		CHECK(err == SCONE_ERR_OK || err == SCONE_ERR_NOT_FOUND || err == SCONE_ERR_MALFORMED);
		CHECK(err == SCONE_ERR_OK || w.size == 0);
	}
	scone_wbuf_free(&w);
}

static void render_all(const struct scone_secret_set *set, bool strict)
{
	for (size_t i = 0; i < set->n; i++) {
		const struct sec_item *it = &set->v[i];
		struct scone_wbuf w;
		uint8_t key[32];

		for (size_t f = 0; f < sizeof(valid_formats) / sizeof(valid_formats[0]); f++)
			render_one(set, it, valid_formats[f], strict);
		for (size_t f = 0; f < sizeof(invalid_formats) / sizeof(invalid_formats[0]); f++)
			render_one(set, it, invalid_formats[f], strict);
		scone_wbuf_init(&w, 16u << 20, 0);
		(void)scone_secrets_public(set, it->name, &w);
		scone_wbuf_free(&w);
		if (it->kind == SEC_KIND_VOLUME)
			CHECK(scone_secrets_volume_key(set, it->name, key) == SCONE_ERR_OK &&
			      memcmp(key, it->value.p, 32) == 0);
	}
}

static void serialize_ok(const struct scone_secret_set *set, struct scone_wbuf *w)
{
	enum scone_err err;

	scone_wbuf_init(w, SCONE_SECRETS_MAX_BYTES, 1);
	err = scone_secrets_serialize(set, w);
	if (err != SCONE_ERR_OK) {
		fprintf(stderr, "serialize failed: %s: %s\n", scone_errname(err), scone_err_detail());
		abort();
	}
}

/* b parsed into set: b == serialize(set), and the encoding is stable. */
static void roundtrip(const struct scone_secret_set *set, const uint8_t *b, size_t n)
{
	struct scone_secret_set *again = NULL;
	struct scone_wbuf e1, e2;

	serialize_ok(set, &e1);
	if (b)
		CHECK(e1.size == n && memcmp(e1.data, b, n) == 0);
	CHECK(scone_secrets_parse(e1.data, e1.size, &again) == SCONE_ERR_OK);
	serialize_ok(again, &e2);
	CHECK(e2.size == e1.size && memcmp(e1.data, e2.data, e1.size) == 0);
	scone_secrets_free(again);
	scone_wbuf_free(&e1);
	scone_wbuf_free(&e2);
}

static void parse_input(const uint8_t *data, size_t size)
{
	struct scone_secret_set *set = NULL;
	enum scone_err err = scone_secrets_parse(data, size, &set);

	if (err != SCONE_ERR_OK) {
		CHECK(set == NULL && (err == SCONE_ERR_MALFORMED || err == SCONE_ERR_TOO_LARGE));
		return;
	}
	roundtrip(set, data, size);
	render_all(set, false);
	scone_secrets_free(set);
}

/* ---------------- session recipe -> generate ---------------- */

struct in {
	const uint8_t *p;
	size_t n;
};

static unsigned get8(struct in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static char *dup_name(unsigned i)
{
	char buf[16];
	char *s;

	CHECK(snprintf(buf, sizeof(buf), "s%u", i) > 0);
	CHECK((s = strdup(buf)) != NULL);
	return s;
}

#define MAX_SECRETS 8

/* The exporting session's set: s0..s8 of assorted kinds, made once. */
static struct scone_secret_set *exporter;

static enum scone_err resolve(void *ctx, const struct scone_secret *imported,
			      const struct scone_secret_set **set, const char **name)
{
	(void)ctx;
	*set = exporter;
	*name = imported->name;
	return SCONE_ERR_OK;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const enum scone_secret_kind kinds[MAX_SECRETS + 1] = {
	    SCONE_SECRET_PRIVATE_KEY, SCONE_SECRET_X509_CA,    SCONE_SECRET_X509,
	    SCONE_SECRET_ASCII,	      SCONE_SECRET_PUBLIC_KEY, SCONE_SECRET_X509_CA,
	    SCONE_SECRET_PRIVATE_KEY, SCONE_SECRET_BINARY,     SCONE_SECRET_X509};
	static char names[MAX_SECRETS + 1][4];
	struct scone_secret sec[MAX_SECRETS + 1];
	struct scone_session s;

	(void)argc;
	(void)argv;
	memset(sec, 0, sizeof(sec));
	memset(&s, 0, sizeof(s));
	for (unsigned i = 0; i <= MAX_SECRETS; i++) {
		CHECK(snprintf(names[i], sizeof(names[i]), "s%u", i) > 0);
		sec[i].name = names[i];
		sec[i].kind = kinds[i];
		sec[i].key_type = i % 2 ? SCONE_KEY_P256 : SCONE_KEY_ED25519;
	}
	sec[1].private_key = names[0]; /* CA with the key s0 */
	sec[2].issuer = names[1];
	sec[4].private_key = names[6];
	sec[5].issuer = names[1]; /* intermediate */
	sec[8].issuer = names[5];
	s.secrets = sec;
	s.n_secrets = MAX_SECRETS + 1;
	CHECK(scone_secrets_generate(&s, NULL, &exporter) == SCONE_ERR_OK);
	return 0;
}

static void recipe_secret(struct in *in, struct scone_secret *x, unsigned i)
{
	unsigned b = get8(in), r = get8(in);

	x->name = dup_name(i);
	if ((b & 0x18) == 0x18) {
		CHECK((x->import = calloc(1, sizeof(*x->import))) != NULL);
		CHECK((x->import->session = strdup("exporter")) != NULL);
	}
	x->kind = (enum scone_secret_kind)(b % 6 + 1);
	x->key_type = (b & 0x40) ? SCONE_KEY_ED25519 : (b & 0x20) ? SCONE_KEY_P256 : 0;
	x->migrate = b & 0x80;
	x->size = r & 0x80 ? 0 : r % 40;
	if (r & 0x40)
		x->private_key = dup_name(get8(in) % (MAX_SECRETS + 1));
	if (r & 0x20)
		x->issuer = dup_name(get8(in) % (MAX_SECRETS + 1));
	if ((r & 0x10) && x->kind <= SCONE_SECRET_BINARY) {
		x->value_len = get8(in) % 16;
		CHECK((x->value = calloc(1, x->value_len + 1)) != NULL);
		for (size_t k = 0; k < x->value_len; k++)
			x->value[k] = (char)get8(in);
	}
	if (r & 0x08) {
		static const char *const eps[] = {"server", "client", "both"};
		CHECK((x->endpoint = strdup(eps[get8(in) % 3])) != NULL);
	}
	x->valid_for_days = r & 0x04 ? get8(in) : 0;
}

static void recipe_free(struct scone_session *s)
{
	for (size_t i = 0; i < s->n_secrets; i++) {
		struct scone_secret *x = &s->secrets[i];
		free(x->name);
		free(x->value);
		free(x->private_key);
		free(x->issuer);
		free(x->endpoint);
		if (x->import)
			free(x->import->session);
		free(x->import);
	}
	for (size_t i = 0; i < s->n_volumes; i++)
		free(s->volumes[i].name);
	free(s->secrets);
	free(s->volumes);
}

static void recipe(const uint8_t *data, size_t size)
{
	struct in in = {data, size};
	struct scone_session s;
	struct scone_secret_set *set = NULL, *set2 = NULL;
	enum scone_err err;
	unsigned head = get8(&in);

	memset(&s, 0, sizeof(s));
	s.n_secrets = head % (MAX_SECRETS + 1);
	s.n_volumes = head / 16 % 3;
	CHECK((s.secrets = calloc(s.n_secrets + 1, sizeof(*s.secrets))) != NULL);
	CHECK((s.volumes = calloc(s.n_volumes + 1, sizeof(*s.volumes))) != NULL);
	for (unsigned i = 0; i < s.n_secrets; i++)
		recipe_secret(&in, &s.secrets[i], i);
	for (unsigned i = 0; i < s.n_volumes; i++)
		s.volumes[i].name = dup_name(i);

	err = scone_secrets_generate_ex(&s, NULL, resolve, NULL, &set);
	if (err != SCONE_ERR_OK) {
		if (err != SCONE_ERR_INVALID && err != SCONE_ERR_NOT_FOUND) {
			fprintf(stderr, "generate: %s: %s\n", scone_errname(err), scone_err_detail());
			abort();
		}
		CHECK(set == NULL);
		recipe_free(&s);
		return;
	}
	roundtrip(set, NULL, 0);
	render_all(set, true);
	CHECK(scone_secrets_generate_ex(&s, set, resolve, NULL, &set2) == SCONE_ERR_OK);
	roundtrip(set2, NULL, 0);
	scone_secrets_free(set);
	scone_secrets_free(set2);
	recipe_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > ((size_t)1 << 20))
		return 0;
	parse_input(data, size);
	if (size && data[0] != 'S')
		recipe(data, size);
	scone_err_clear();
	return 0;
}
