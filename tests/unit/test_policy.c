/*
 * test_policy.c - unit tests for src/policy: the session language (every
 * section and secret kind into the model), every class of error with its
 * exact line:column and key path, the structural limits (size, depth,
 * list length, aliases, duplicates, documents), the canonical hash and
 * its published test vector, shell splitting, $$SCONE::...$$ templates,
 * the format table, @@N host arguments, and wiping of explicit secrets.
 */
#include "helpers.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/hex.h"
#include "policy/policy.h"

#define TEST(name) static void name(void **state __attribute__((unused)))
#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* src/lib binds to this OPENSSL_cleanse: remember what was wiped. */
#define WIPES_MAX 4096
static const void *wiped_ptr[WIPES_MAX];
static size_t wiped_len[WIPES_MAX];
static size_t n_wiped;

void OPENSSL_cleanse(void *ptr, size_t len)
{
	if (n_wiped < WIPES_MAX) {
		wiped_ptr[n_wiped] = ptr;
		wiped_len[n_wiped++] = len;
	}
	explicit_bzero(ptr, len);
}

static bool was_wiped(const void *p, size_t len)
{
	for (size_t i = 0; i < n_wiped; i++)
		if (wiped_ptr[i] == p && wiped_len[i] >= len)
			return true;
	return false;
}

/* ---- helpers ---- */

static struct scone_session *parse_ok(const char *text)
{
	struct scone_session *s = NULL;
	struct scone_policy_diag d;
	enum scone_err e = scone_session_parse(text, strlen(text), &s, &d);

	if (e != SCONE_ERR_OK) {
		for (size_t i = 0; i < d.count; i++) {
			char line[512];
			scone_policy_error_format(&d.errors[i], line, sizeof(line));
			print_error("unexpected: %s\n", line);
		}
	}
	assert_int_equal(e, SCONE_ERR_OK);
	assert_int_equal(d.count, 0);
	assert_non_null(s);
	scone_policy_diag_free(&d);
	return s;
}

/* Parse text that must fail with POLICY; returns the diagnostics. */
static struct scone_policy_diag parse_bad(const char *text)
{
	struct scone_session *s = (struct scone_session *)1;
	struct scone_policy_diag d;
	enum scone_err e = scone_session_parse(text, strlen(text), &s, &d);

	if (e != SCONE_ERR_POLICY)
		print_error("expected POLICY, got %s for:\n%s\n", scone_errname(e), text);
	assert_int_equal(e, SCONE_ERR_POLICY);
	assert_null(s);
	assert_true(d.count > 0);
	return d;
}

static void dump(const struct scone_policy_diag *d)
{
	for (size_t i = 0; i < d->count; i++) {
		char line[512];
		scone_policy_error_format(&d->errors[i], line, sizeof(line));
		print_message("  %s\n", line);
	}
}

/* Is there an error at line:col with exactly path whose message contains text? */
static bool has_error(const struct scone_policy_diag *d, int line, int col, const char *path,
		      const char *text)
{
	for (size_t i = 0; i < d->count; i++) {
		const struct scone_policy_error *e = &d->errors[i];
		if (e->pos.line == line && e->pos.column == col && !strcmp(e->path, path) &&
		    strstr(e->message, text))
			return true;
	}
	dump(d);
	print_error("missing error %d:%d: %s: ...%s...\n", line, col, path, text);
	return false;
}

/* One error, anywhere, whose message contains text. */
static bool has_message(const struct scone_policy_diag *d, const char *text)
{
	for (size_t i = 0; i < d->count; i++)
		if (strstr(d->errors[i].message, text))
			return true;
	dump(d);
	print_error("missing error ...%s...\n", text);
	return false;
}

/* A session around extra top-level text, in attestation mode none unless extra has its own security:. */
static char *wrap(const char *extra)
{
	const char *head = !strncmp(extra, "security:", 9)
			       ? "name: t\nversion: \"0.3\"\n"
			       : "name: t\nversion: \"0.3\"\nsecurity: {attestation: {mode: none}}\n";
	size_t n = strlen(head) + strlen(extra) + 1;
	char *p = malloc(n);
	assert_non_null(p);
	snprintf(p, n, "%s%s", head, extra);
	return p;
}

static void expect_bad(const char *extra, const char *text)
{
	char *doc = wrap(extra);
	struct scone_policy_diag d = parse_bad(doc);
	assert_true(has_message(&d, text));
	scone_policy_diag_free(&d);
	free(doc);
}

static void expect_ok(const char *extra)
{
	char *doc = wrap(extra);
	scone_session_free(parse_ok(doc));
	free(doc);
}

/* sha256 of the DER SubjectPublicKeyInfo of the certificate in full_session (openssl x509 -pubkey | openssl
 * pkey -pubin -outform DER) */
static const char cert_spki_hex[] = "77e21e5802502a10cac35015bb3e6367401d17a696675594e4d36148574db68f";

/* ---- a full session into the model ---- */

static const char full_session[] =
    "# every section of the language\n"
    "name: acme/shop\n"
    "version: \"0.3\"\n"
    "predecessor: E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855\n"
    "access_policy:\n"
    "  read: [CREATOR, \"sha256:0F5A3C1E2B4D6F8091A2B3C4D5E6F708192A3B4C5D6E7F8091A2B3C4D5E6F708\"]\n"
    "  update:\n"
    "    - |\n"
    "      -----BEGIN CERTIFICATE-----\n"
    "      MIIBdjCCARugAwIBAgIUMHVfOYQU3KMy3E/s++cxkBU40eAwCgYIKoZIzj0EAwIw\n"
    "      EDEOMAwGA1UEAwwFb3duZXIwHhcNMjYxMTIyMDQzNDA0WhcNMzYxMTE5MDQzNDA0\n"
    "      WjAQMQ4wDAYDVQQDDAVvd25lcjBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABOvV\n"
    "      QT6S8Bzd6VKxxrrq+pN+Y0VIZ/kaZjRKQXICNVucouGlzEJnpl2or0M4+9FzeL5y\n"
    "      l4GvEyfqIDl+YPdnvyujUzBRMB0GA1UdDgQWBBSe9U+1qVm7w/epDvmFGYE479Zw\n"
    "      UTAfBgNVHSMEGDAWgBSe9U+1qVm7w/epDvmFGYE479ZwUTAPBgNVHRMBAf8EBTAD\n"
    "      AQH/MAoGCCqGSM49BAMCA0kAMEYCIQDCzU0U16EKkiF3RIIGUm7MZ2ioFkhCcTsS\n"
    "      XCnawizVhwIhAIGGTVOiFy24bpncU0Vwm3BAS3TiDfAs/vbtamJRo4lY\n"
    "      -----END CERTIFICATE-----\n"
    "  create_sessions: [NONE]\n"
    "security:\n"
    "  attestation:\n"
    "    mode: hardware\n"
    "    tolerate: [debug-mode, outdated-tcb]\n"
    "    ignore_advisories: \"*\"\n"
    "    trusted_scone_qe_pubkeys: [E37F149AE30896E314A2859874C5A9C7803FB3187B99F5D08E526B1C0396507C]\n"
    "services:\n"
    "  - name: web\n"
    "    image_name: web-image\n"
    "    command: nginx -g 'daemon off;' --pw=$$SCONE::pw$$ \"a \\\"b\\\"\"\n"
    "    environment:\n"
    "      PORT: 8080\n"
    "      DEBUG: true\n"
    "      RATIO: 0.5\n"
    "      EMPTY: \"\"\n"
    "      KEY: $$SCONE::bin:hex$$\n"
    "    pwd: /srv\n"
    "    attestation:\n"
    "      - mrenclave: [AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA]\n"
    "        signer: {mrsigner: 1111111111111111111111111111111111111111111111111111111111111111, "
    "isvprodid: 6, isvsvn: 3}\n"
    "      - mrsigner: 2222222222222222222222222222222222222222222222222222222222222222\n"
    "        isvprodid: 213\n"
    "        isvsvn_min: 13\n"
    "        platforms: [3333333333333333333333333333333333333333333333333333333333333333]\n"
    "    fspf_path: /fspf.pb\n"
    "    fspf_key: $$SCONE::volkey$$\n"
    "    fspf_tag: 5A0FE9BDCFED5C0391A707E05F6CFBEB\n"
    "  - name: batch\n"
    "    command: [/bin/job, --id, 42, \"two words\"]\n"
    "    mrenclaves: [bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb]\n"
    "images:\n"
    "  - name: web-image\n"
    "    injection_files:\n"
    "      - /etc/nginx/nginx.conf\n"
    "      - path: /etc/ssl/server.pem\n"
    "        content: |\n"
    "          $$SCONE::tls:crt$$\n"
    "          $$SCONE::tls:chain$$\n"
    "        permission: \"0644\"\n"
    "      - path: /etc/ssl/server.key\n"
    "        content: $$SCONE::tls:privatekey$$\n"
    "        permissions: 0o440\n"
    "    volumes:\n"
    "      - {name: data, path: /data}\n"
    "volumes:\n"
    "  - name: data\n"
    "    export:\n"
    "      - session: acme/backup\n"
    "        session_hash: 668E9AABA22C7631BBCC89B627D77E53539BCAADE9E7C2C08242F56AAB272088\n"
    "  - name: keyed\n"
    "    fspf_key: 66e7935397249112d1148e6ce98a396a8c96b3b0ae70708c16ff284c66f0821e\n"
    "    fspf_tag: 5a0fe9bdcfed5c0391a707e05f6cfbeb\n"
    "    export: other-session\n"
    "  - name: theirs\n"
    "    import: {session: acme/other, volume: their_data}\n"
    "secrets:\n"
    "  - {name: pw, kind: ascii}\n"
    "  - {name: pw2, kind: ascii, value: \"s3cr3t!\", export_public: true}\n"
    "  - {name: bin, kind: binary, size: 64}\n"
    "  - {name: volkey, kind: binary, value: "
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f}\n"
    "  - {name: b64, kind: binary, value: \"3q2+7w==\"}\n"
    "  - name: key\n"
    "    kind: private-key\n"
    "    key_type: Ed25519\n"
    "    migrate: true\n"
    "    export: {namespace: acme}\n"
    "  - name: ca_key\n"
    "    kind: private-key\n"
    "    value: |\n"
    "      -----BEGIN PRIVATE KEY-----\n"
    "      MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgAHv1mIEyGtgzhw0u\n"
    "      qya0UXgAM0L58pg3chrFIWhv3UqhRANCAATr1UE+kvAc3elSsca66vqTfmNFSGf5\n"
    "      GmY0SkFyAjVbnKLhpcxCZ6ZdqK9DOPvRc3i+cpeBrxMn6iA5fmD3Z78r\n"
    "      -----END PRIVATE KEY-----\n"
    "  - name: ca\n"
    "    kind: x509-ca\n"
    "    private_key: ca_key\n"
    "    common_name: Acme CA\n"
    "    valid_for: 10 years\n"
    "  - name: tls\n"
    "    kind: x509\n"
    "    issuer: ca\n"
    "    common_name: shop.acme.example\n"
    "    san: [shop.acme.example, \"*.api.acme.example\", 10.0.0.1, \"::1\"]\n"
    "    dns: www.acme.example\n"
    "    endpoint: server\n"
    "    valid_for: 30d\n"
    "  - {name: pub, kind: public-key, private_key: key}\n"
    "  - name: shared\n"
    "    import: {session: acme/vault, secret: master}\n"
    "  - name: shared_cert\n"
    "    kind: x509\n"
    "    import: {session: acme/vault}\n";

TEST(test_full_session)
{
	struct scone_session *s = parse_ok(full_session);
	const struct scone_service *web = scone_session_service(s, "web"),
				   *batch = scone_session_service(s, "batch");
	const struct scone_secret *sec;
	const struct scone_image *img = scone_session_image(s, "web-image");
	const struct scone_volume *vol;
	uint8_t want[32];

	assert_string_equal(s->name, "acme/shop");
	assert_string_equal(s->version, "0.3");
	assert_string_equal(s->predecessor,
			    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

	/* access policy */
	assert_int_equal(s->read.n, 2);
	assert_int_equal(s->read.v[0].kind, SCONE_PRINCIPAL_CREATOR);
	assert_int_equal(s->read.v[1].kind, SCONE_PRINCIPAL_KEY);
	assert_ok(scone_hex_decode(want, 32,
				   "0f5a3c1e2b4d6f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708", "t"));
	assert_memory_equal(s->read.v[1].spki_sha256, want, 32);
	assert_int_equal(s->update.n, 1);
	assert_int_equal(s->update.v[0].kind, SCONE_PRINCIPAL_KEY);
	assert_ok(scone_hex_decode(want, 32, cert_spki_hex, "t"));
	assert_memory_equal(s->update.v[0].spki_sha256, want, 32);
	assert_int_equal(s->create_sessions.n, 1);
	assert_int_equal(s->create_sessions.v[0].kind, SCONE_PRINCIPAL_NONE);

	/* security */
	assert_int_equal(s->mode, SCONE_ATTEST_HARDWARE);
	assert_int_equal(s->tolerate.n, 2);
	assert_string_equal(s->tolerate.v[1], "outdated-tcb");
	assert_int_equal(s->ignore_advisories.n, 1);
	assert_string_equal(s->ignore_advisories.v[0], "*");
	assert_string_equal(s->trusted_qe_pubkeys.v[0],
			    "e37f149ae30896e314a2859874c5a9c7803fb3187b99f5d08e526b1c0396507c");

	/* services: command split like a shell, env values as written */
	assert_int_equal(s->n_services, 2);
	assert_non_null(web);
	assert_string_equal(web->image_name, "web-image");
	assert_int_equal(web->command.n, 5);
	assert_string_equal(web->command.v[0], "nginx");
	assert_string_equal(web->command.v[2], "daemon off;");
	assert_string_equal(web->command.v[3], "--pw=$$SCONE::pw$$");
	assert_string_equal(web->command.v[4], "a \"b\"");
	assert_null(web->command.v[5]);
	assert_int_equal(web->n_env, 5);
	assert_string_equal(web->env[0].key, "PORT");
	assert_string_equal(web->env[0].value, "8080");
	assert_string_equal(web->env[1].value, "true");
	assert_string_equal(web->env[2].value, "0.5");
	assert_string_equal(web->env[3].value, "");
	assert_string_equal(web->env[4].value, "$$SCONE::bin:hex$$");
	assert_int_equal(web->env[0].pos.line, 31);
	assert_int_equal(web->env[0].pos.column, 13);
	assert_string_equal(web->pwd, "/srv");
	assert_int_equal(web->n_variants, 2);
	assert_int_equal(web->variants[0].mrenclaves.n, 1);
	assert_string_equal(web->variants[0].mrenclaves.v[0],
			    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	assert_string_equal(web->variants[0].mrsigner,
			    "1111111111111111111111111111111111111111111111111111111111111111");
	assert_int_equal(web->variants[0].isvprodid, 6);
	assert_int_equal(web->variants[0].isvsvn_min, 3);
	assert_int_equal(web->variants[0].isvsvn_max, 3);
	assert_int_equal(web->variants[1].mrenclaves.n, 0);
	assert_int_equal(web->variants[1].isvprodid, 213);
	assert_int_equal(web->variants[1].isvsvn_min, 13);
	assert_int_equal(web->variants[1].isvsvn_max, -1);
	assert_int_equal(web->mrenclaves.n, 1);
	assert_int_equal(web->mrsigners.n, 2);
	assert_int_equal(web->platforms.n, 1);
	assert_string_equal(web->fspf_path, "/fspf.pb");
	assert_string_equal(web->fspf_key, "$$SCONE::volkey$$");
	assert_string_equal(web->fspf_tag, "5a0fe9bdcfed5c0391a707e05f6cfbeb");
	assert_non_null(batch);
	assert_int_equal(batch->command.n, 4);
	assert_string_equal(batch->command.v[2], "42");
	assert_string_equal(batch->command.v[3], "two words");
	assert_null(batch->pwd);
	assert_null(batch->image_name);
	assert_int_equal(batch->n_variants, 1);
	assert_string_equal(batch->mrenclaves.v[0],
			    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");

	/* images */
	assert_non_null(img);
	assert_int_equal(img->n_files, 3);
	assert_string_equal(img->files[0].path, "/etc/nginx/nginx.conf");
	assert_null(img->files[0].content);
	assert_int_equal(img->files[0].mode, 0700); /* SCONE's default */
	assert_string_equal(img->files[1].content, "$$SCONE::tls:crt$$\n$$SCONE::tls:chain$$\n");
	assert_int_equal(img->files[1].content_len, strlen(img->files[1].content));
	assert_int_equal(img->files[1].mode, 0644);
	assert_int_equal(img->files[2].mode, 0440);
	assert_int_equal(img->n_volumes, 1);
	assert_string_equal(img->volumes[0].name, "data");
	assert_string_equal(img->volumes[0].path, "/data");

	/* volumes */
	vol = scone_session_volume(s, "data");
	assert_non_null(vol);
	assert_null(vol->fspf_key);
	assert_int_equal(vol->n_exports, 1);
	assert_string_equal(vol->exports[0].session, "acme/backup");
	assert_string_equal(vol->exports[0].session_hash,
			    "668e9aaba22c7631bbcc89b627d77e53539bcaade9e7c2c08242f56aab272088");
	vol = scone_session_volume(s, "keyed");
	assert_string_equal(vol->fspf_tag, "5a0fe9bdcfed5c0391a707e05f6cfbeb");
	assert_string_equal(vol->exports[0].session, "other-session");
	assert_null(vol->exports[0].session_hash);
	vol = scone_session_volume(s, "theirs");
	assert_non_null(vol->import);
	assert_string_equal(vol->import->session, "acme/other");
	assert_string_equal(vol->import->name, "their_data");

	/* secrets of every kind */
	assert_int_equal(s->n_secrets, 12);
	sec = scone_session_secret(s, "pw");
	assert_int_equal(sec->kind, SCONE_SECRET_ASCII);
	assert_int_equal(sec->size, 20);
	assert_null(sec->value);
	sec = scone_session_secret(s, "pw2");
	assert_string_equal(sec->value, "s3cr3t!");
	assert_int_equal(sec->value_len, 7);
	assert_true(sec->export_public);
	sec = scone_session_secret(s, "bin");
	assert_int_equal(sec->kind, SCONE_SECRET_BINARY);
	assert_int_equal(sec->size, 64);
	sec = scone_session_secret(s, "volkey");
	assert_int_equal(sec->value_len, 32);
	assert_int_equal((uint8_t)sec->value[31], 0x1f);
	sec = scone_session_secret(s, "b64");
	assert_int_equal(sec->value_len, 4);
	assert_memory_equal(sec->value, "\xde\xad\xbe\xef", 4);
	sec = scone_session_secret(s, "key");
	assert_int_equal(sec->kind, SCONE_SECRET_PRIVATE_KEY);
	assert_int_equal(sec->key_type, SCONE_KEY_ED25519);
	assert_true(sec->migrate);
	assert_true(sec->exports[0].namespace);
	assert_string_equal(sec->exports[0].session, "acme");
	sec = scone_session_secret(s, "ca_key");
	assert_int_equal(sec->key_type, SCONE_KEY_P256); /* read from the PEM value */
	assert_non_null(strstr(sec->value, "BEGIN PRIVATE KEY"));
	sec = scone_session_secret(s, "ca");
	assert_int_equal(sec->kind, SCONE_SECRET_X509_CA);
	assert_string_equal(sec->private_key, "ca_key");
	assert_int_equal(sec->valid_for_days, 3650);
	sec = scone_session_secret(s, "tls");
	assert_int_equal(sec->kind, SCONE_SECRET_X509);
	assert_string_equal(sec->issuer, "ca");
	assert_null(sec->private_key);
	assert_int_equal(sec->key_type, SCONE_KEY_P256);
	assert_int_equal(sec->dns.n, 3);
	assert_string_equal(sec->dns.v[0], "www.acme.example"); /* dns: first, then san: */
	assert_string_equal(sec->dns.v[1], "shop.acme.example");
	assert_string_equal(sec->dns.v[2], "*.api.acme.example");
	assert_int_equal(sec->ips.n, 2);
	assert_string_equal(sec->ips.v[0], "10.0.0.1");
	assert_string_equal(sec->ips.v[1], "::1");
	assert_string_equal(sec->endpoint, "server");
	assert_int_equal(sec->valid_for_days, 30);
	sec = scone_session_secret(s, "pub");
	assert_int_equal(sec->kind, SCONE_SECRET_PUBLIC_KEY);
	assert_string_equal(sec->private_key, "key");
	sec = scone_session_secret(s, "shared");
	assert_int_equal(sec->kind, 0);
	assert_string_equal(sec->import->session, "acme/vault");
	assert_string_equal(sec->import->name, "master");
	sec = scone_session_secret(s, "shared_cert");
	assert_int_equal(sec->kind, SCONE_SECRET_X509);
	assert_null(sec->import->name);
	assert_null(scone_session_secret(s, "nope"));
	assert_null(scone_session_service(s, "nope"));
	scone_session_free(s);
}

TEST(test_examples_parse)
{
	static const char *const files[] = {"examples/sessions/postgres.yaml", "examples/sessions/api.yaml",
					    "examples/sessions/dev.yaml"};
	for (size_t i = 0; i < N_ELEMS(files); i++) {
		FILE *f = fopen(files[i], "rb");
		static char buf[64 * 1024];
		size_t n;
		assert_non_null(f);
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		scone_session_free(parse_ok(buf));
	}
}

TEST(test_defaults)
{
	struct scone_session *s =
	    parse_ok("name: x\nversion: 0.3\nservices:\n  - name: a\n    mrenclaves: "
		     "[0000000000000000000000000000000000000000000000000000000000000000]\n");

	assert_string_equal(s->version, "0.3"); /* unquoted 0.3 is the same text */
	assert_null(s->predecessor);
	assert_int_equal(s->mode, SCONE_ATTEST_HARDWARE);
	assert_int_equal(s->read.n, 0); /* 0 = the default [CREATOR] */
	assert_int_equal(s->update.n, 0);
	assert_int_equal(s->services[0].command.n, 0);
	scone_session_free(s);

	s = parse_ok("name: x\nversion: \"0.3\"\npredecessor: ~\n");
	assert_null(s->predecessor);
	assert_int_equal(s->n_services, 0);
	scone_session_free(s);
	s = parse_ok("name: x\nversion: \"0.3\"\npredecessor: null\nsecrets:\n  - {name: a, kind: x509}\n");
	assert_int_equal(s->secrets[0].valid_for_days, 0); /* SCONE: no expiry without valid_for */
	assert_int_equal(s->secrets[0].key_type, SCONE_KEY_P256);
	assert_null(s->secrets[0].endpoint);
	scone_session_free(s);
}

/* ---- errors: exact positions and paths ---- */

TEST(test_error_positions)
{
	static const char doc[] = "name: shop\n"			    /* 1 */
				  "version: \"0.3\"\n"			    /* 2 */
				  "services:\n"				    /* 3 */
				  "  - name: web\n"			    /* 4 */
				  "    image_name: missing-image\n"	    /* 5 */
				  "    mrenclaves: [0123]\n"		    /* 6 */
				  "    environment:\n"			    /* 7 */
				  "      PORT: [8080]\n"		    /* 8 */
				  "      PASS: $$SCONE::nope$$\n"	    /* 9 */
				  "      KEY: \"$$SCONE::pw:pem$$\"\n"	    /* 10 */
				  "    pwd: relative/dir\n"		    /* 11 */
				  "secrets:\n"				    /* 12 */
				  "  - name: pw\n"			    /* 13 */
				  "    kind: ascii\n"			    /* 14 */
				  "    size: -3\n"			    /* 15 */
				  "  - name: cert\n"			    /* 16 */
				  "    kind: x509\n"			    /* 17 */
				  "    issuer: pw\n"			    /* 18 */
				  "    valid_for: forever\n"		    /* 19 */
				  "images:\n"				    /* 20 */
				  "  - name: img\n"			    /* 21 */
				  "    injection_files:\n"		    /* 22 */
				  "      - path: etc/x\n"		    /* 23 */
				  "        permission: \"0999\"\n"	    /* 24 */
				  "    volumes: [{name: nov, path: /v}]\n"; /* 25 */
	struct scone_policy_diag d = parse_bad(doc);
	char line[512];

	assert_true(has_error(&d, 5, 17, "services[0].image_name", "no image named 'missing-image'"));
	assert_true(has_error(&d, 6, 18, "services[0].mrenclaves[0]", "expected 64 hex digits"));
	assert_true(has_error(&d, 8, 13, "services[0].environment.PORT", "expected a string, got a list"));
	assert_true(has_error(&d, 9, 13, "services[0].environment.PASS", "no secret named 'nope'"));
	/* at the reference, inside the quoted value (column 12 is the quote) */
	assert_true(
	    has_error(&d, 10, 13, "services[0].environment.KEY", "format 'pem' is not valid for ascii"));
	assert_true(has_error(&d, 11, 10, "services[0].pwd", "not an absolute path"));
	assert_true(has_error(&d, 15, 11, "secrets[0].size", "expected a number"));
	assert_true(has_error(&d, 18, 13, "secrets[1].issuer", "must name an x509-ca secret"));
	assert_true(has_error(&d, 19, 16, "secrets[1].valid_for", "valid_for 'forever'"));
	assert_true(has_error(&d, 23, 15, "images[0].injection_files[0].path", "not an absolute path"));
	assert_true(
	    has_error(&d, 24, 21, "images[0].injection_files[0].permission", "not an octal file mode"));
	assert_true(has_error(&d, 25, 22, "images[0].volumes[0].name", "no volume named 'nov'"));
	/* sorted by position, and the formatted form */
	for (size_t i = 1; i < d.count; i++)
		assert_true(d.errors[i - 1].pos.line < d.errors[i].pos.line ||
			    (d.errors[i - 1].pos.line == d.errors[i].pos.line &&
			     d.errors[i - 1].pos.column <= d.errors[i].pos.column));
	scone_policy_error_format(&d.errors[0], line, sizeof(line));
	assert_string_equal(line, "5:17: services[0].image_name: no image named 'missing-image' in images");
	assert_int_equal(d.count, 12);
	assert_int_equal(d.dropped, 0);
	scone_policy_diag_free(&d);
}

TEST(test_error_format)
{
	struct scone_policy_error e = {{3, 7}, "secrets[2].kind", "unknown kind"};
	char out[64];

	scone_policy_error_format(&e, out, sizeof(out));
	assert_string_equal(out, "3:7: secrets[2].kind: unknown kind");
	e.path[0] = '\0';
	scone_policy_error_format(&e, out, sizeof(out));
	assert_string_equal(out, "3:7: unknown kind");
	scone_policy_error_format(&e, out, 5); /* truncates, stays terminated */
	assert_string_equal(out, "3:7:");
}

TEST(test_many_errors_capped)
{
	/* 150 services each with two errors: every error counted, 100 stored */
	size_t cap = 150 * 64 + 128, n;
	char *doc = malloc(cap);
	struct scone_policy_diag d;

	assert_non_null(doc);
	n = (size_t)snprintf(doc, cap, "name: x\nversion: \"0.3\"\nservices:\n");
	for (int i = 0; i < 150; i++)
		n += (size_t)snprintf(doc + n, cap - n, "  - {name: \"s %d\", pwd: rel}\n", i);
	d = parse_bad(doc);
	assert_int_equal(d.count, 100);
	assert_int_equal(d.count + d.dropped, 450); /* bad name, bad pwd, no attestation */
	assert_non_null(strstr(scone_err_detail(), "and 449 more"));
	scone_policy_diag_free(&d);
	free(doc);
}

TEST(test_missing_and_unknown_keys)
{
	struct scone_policy_diag d =
	    parse_bad("version: \"0.3\"\nservice:\n  - name: x\nimages:\n  - name: i\n    "
		      "injection_file: []\n");

	assert_true(has_error(&d, 1, 1, "", "missing required key 'name'"));
	assert_true(has_error(&d, 2, 1, "", "unknown key 'service' (did you mean 'services'?)"));
	assert_true(has_error(&d, 6, 5, "images[0]",
			      "unknown key 'injection_file' (did you mean 'injection_files'?)"));
	scone_policy_diag_free(&d);

	d = parse_bad("name: x\n");
	assert_true(has_error(&d, 1, 1, "", "missing required key 'version'"));
	scone_policy_diag_free(&d);

	d = parse_bad("name: x\nversion: \"0.3\"\nfrobnicate: 1\n");
	assert_true(has_error(&d, 3, 1, "", "unknown key 'frobnicate'"));
	assert_int_equal(d.count, 1);
	scone_policy_diag_free(&d);
}

TEST(test_duplicate_keys)
{
	struct scone_policy_diag d = parse_bad("name: x\nversion: \"0.3\"\nname: y\n");

	assert_true(has_error(&d, 3, 1, "", "duplicate key 'name' (first at 1:1)"));
	scone_policy_diag_free(&d);
	/* the same key in different quoting is the same key */
	d = parse_bad("name: x\nversion: \"0.3\"\nsecurity:\n  attestation: {mode: none, 'mode': none}\n");
	assert_true(has_message(&d, "duplicate key 'mode'"));
	scone_policy_diag_free(&d);
	expect_bad("services:\n  - name: a\n    environment: {A: 1, B: 2, A: 3}\n", "duplicate key 'A'");
}

TEST(test_duplicate_names)
{
	expect_bad("secrets:\n  - {name: a, kind: ascii}\n  - {name: a, kind: binary, size: 4}\n",
		   "secret name 'a' is used twice");
	expect_bad("services:\n  - name: s\n  - name: s\n", "service name 's' is used twice");
	expect_bad("images:\n  - name: i\n  - name: i\n", "image name 'i' is used twice");
	expect_bad("volumes:\n  - name: v\n  - name: v\n", "volume name 'v' is used twice");
	expect_bad("images:\n  - name: i\n    injection_files: [/a, {path: /a, content: x}]\n",
		   "file '/a' is listed twice");
	expect_bad("volumes: [{name: v}]\nimages:\n  - name: i\n    volumes: [{name: v, path: /m}, {name: v, "
		   "path: /m}]\n",
		   "mount point '/m' is listed twice");
}

TEST(test_alias_rejected)
{
	static const char laughs[] = "name: x\nversion: \"0.3\"\n"
				     "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
				     "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
				     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n";
	struct scone_policy_diag d = parse_bad(laughs);

	assert_int_equal(d.count, 1); /* stops at the first anchor */
	assert_true(has_error(&d, 3, 4, "", "anchors (&a) and aliases are not allowed"));
	scone_policy_diag_free(&d);
	d = parse_bad("name: x\nversion: \"0.3\"\nservices: *nothing\n");
	assert_true(has_error(&d, 3, 11, "", "aliases (*nothing) are not allowed"));
	scone_policy_diag_free(&d);
	d = parse_bad("name: !!str x\nversion: \"0.3\"\n");
	assert_true(has_message(&d, "YAML tags (tag:yaml.org,2002:str) are not allowed"));
	scone_policy_diag_free(&d);
}

TEST(test_documents)
{
	struct scone_policy_diag d = parse_bad("name: x\nversion: \"0.3\"\n---\nname: y\nversion: \"0.3\"\n");

	assert_true(has_error(&d, 3, 1, "", "more than one YAML document"));
	scone_policy_diag_free(&d);
	scone_session_free(parse_ok("---\nname: x\nversion: \"0.3\"\n...\n"));
	d = parse_bad("");
	assert_true(has_error(&d, 1, 1, "", "the session is empty"));
	scone_policy_diag_free(&d);
	d = parse_bad("# only a comment\n");
	assert_true(has_message(&d, "the session is empty"));
	scone_policy_diag_free(&d);
	d = parse_bad("- a\n- b\n");
	assert_true(has_error(&d, 1, 1, "", "a session is a YAML mapping"));
	scone_policy_diag_free(&d);
}

TEST(test_syntax_and_encoding)
{
	struct scone_policy_diag d = parse_bad("name: x\nversion: \"0.3\"\nservices: [a\n");

	assert_true(has_message(&d, "YAML syntax error"));
	assert_int_equal(d.errors[0].pos.line, 4);
	scone_policy_diag_free(&d);
	d = parse_bad("name: x\nversion: \"0.3\n");
	assert_true(has_message(&d, "YAML syntax error"));
	scone_policy_diag_free(&d);
	d = parse_bad("name: x\nversion: \"0.3\"\nx: \"\xff\"\n");
	assert_true(has_error(&d, 3, 5, "", "not valid UTF-8"));
	scone_policy_diag_free(&d);
	d = parse_bad("name: \"a\\0b\"\nversion: \"0.3\"\n");
	assert_true(has_error(&d, 1, 7, "", "a NUL byte"));
	scone_policy_diag_free(&d);
	/* a raw NUL byte in the text */
	{
		static const char raw[] = "name: x\nversion: \"0.3\"\n\0";
		struct scone_session *s;
		assert_int_equal(scone_session_parse(raw, sizeof(raw) - 1, &s, &d), SCONE_ERR_POLICY);
		assert_null(s);
		assert_int_equal(d.errors[0].pos.line, 3);
		scone_policy_diag_free(&d);
	}
}

TEST(test_oversize)
{
	size_t len = SCONE_SESSION_MAX_BYTES + 1;
	char *doc = malloc(len);
	struct scone_session *s;
	struct scone_policy_diag d;

	assert_non_null(doc);
	memset(doc, '#', len);
	assert_int_equal(scone_session_parse(doc, len, &s, &d), SCONE_ERR_TOO_LARGE);
	assert_null(s);
	assert_int_equal(d.count, 1);
	assert_non_null(strstr(d.errors[0].message, "more than the limit of 1048576"));
	scone_policy_diag_free(&d);
	/* exactly at the limit is read (a comment, padded) */
	memcpy(doc, "name: x\nversion: \"0.3\"\n", 23);
	assert_int_equal(scone_session_parse(doc, len - 1, &s, NULL), SCONE_ERR_OK);
	scone_session_free(s);
	free(doc);
}

/* A document "name..version..deep: [[[...]]]" with depth collections in all (root included). */
static char *nested(int depth)
{
	size_t cap = 64 + 2 * (size_t)depth;
	char *p = malloc(cap);
	size_t n;

	assert_non_null(p);
	n = (size_t)snprintf(p, cap, "name: x\nversion: \"0.3\"\ndeep: ");
	for (int i = 1; i < depth; i++)
		p[n++] = '[';
	for (int i = 1; i < depth; i++)
		p[n++] = ']';
	p[n++] = '\n';
	p[n] = '\0';
	return p;
}

TEST(test_depth_limit)
{
	char *ok = nested(SCONE_SESSION_MAX_DEPTH), *bad = nested(SCONE_SESSION_MAX_DEPTH + 1);
	struct scone_policy_diag d = parse_bad(ok);

	/* 16 levels parse: the only complaint is the unknown key */
	assert_int_equal(d.count, 1);
	assert_true(has_message(&d, "unknown key 'deep'"));
	scone_policy_diag_free(&d);
	d = parse_bad(bad);
	assert_int_equal(d.count, 1);
	assert_true(has_error(&d, 3, 7 + SCONE_SESSION_MAX_DEPTH - 1, "", "nesting deeper than 16 levels"));
	scone_policy_diag_free(&d);
	free(ok);
	free(bad);
	/* a million brackets stop at level 17 too */
	{
		size_t len = 1000000;
		char *deep = malloc(len + 1);
		assert_non_null(deep);
		memset(deep, '[', len);
		deep[len] = '\0';
		d = parse_bad(deep);
		assert_true(has_message(&d, "nesting deeper than 16 levels"));
		scone_policy_diag_free(&d);
		free(deep);
	}
}

static char *long_list(size_t items)
{
	size_t cap = 64 + 2 * items;
	char *p = malloc(cap);
	size_t n;

	assert_non_null(p);
	n = (size_t)snprintf(p, cap, "name: x\nversion: \"0.3\"\nsecurity:\n  attestation:\n    tolerate: [");
	for (size_t i = 0; i < items; i++) {
		p = realloc(p, cap += 16);
		n += (size_t)snprintf(p + n, cap - n, "%shyperthreading", i ? "," : "");
	}
	snprintf(p + n, cap - n, "]\n");
	return p;
}

TEST(test_list_limit)
{
	char *ok = long_list(SCONE_SESSION_MAX_ITEMS), *bad = long_list(SCONE_SESSION_MAX_ITEMS + 1);
	struct scone_session *s = parse_ok(ok);
	struct scone_policy_diag d;

	assert_int_equal(s->tolerate.n, SCONE_SESSION_MAX_ITEMS);
	scone_session_free(s);
	d = parse_bad(bad);
	assert_int_equal(d.count, 1);
	assert_true(has_message(&d, "more than 1024 items in one list"));
	assert_int_equal(d.errors[0].pos.line, 5);
	scone_policy_diag_free(&d);
	free(ok);
	free(bad);
}

TEST(test_node_limit)
{
	/* 200 lists of 1000 items: each list is fine, the whole is too many nodes */
	size_t cap = 200 * 2100 + 64, n;
	char *doc = malloc(cap);
	struct scone_policy_diag d;

	assert_non_null(doc);
	n = (size_t)snprintf(doc, cap, "name: x\nversion: \"0.3\"\nx: [");
	for (int l = 0; l < 200; l++) {
		doc[n++] = '[';
		for (int i = 0; i < 1000; i++) {
			doc[n++] = '1';
			doc[n++] = i < 999 ? ',' : ']';
		}
		doc[n++] = l < 199 ? ',' : ']';
	}
	doc[n] = '\0';
	d = parse_bad(doc);
	assert_int_equal(d.count, 1);
	assert_true(has_message(&d, "more than 131072 YAML nodes"));
	scone_policy_diag_free(&d);
	free(doc);
}

TEST(test_names)
{
	static const char *const good[] = {
	    "a", "my-testing-session", "A_b.c~d-e", "my-company/project-1/hello", "x/y", "..a", "a.."};
	static const char *const bad[] = {"",	   "/a", "a/",	 "a//b", "a b", "a:b",	"ä",
					  "a/./b", "..", "a/..", ".",	 "a$b", "a\\b", "a@b"};
	char longest[SCONE_SESSION_NAME_MAX + 2];

	for (size_t i = 0; i < N_ELEMS(good); i++)
		assert_true(scone_session_name_valid(good[i]));
	for (size_t i = 0; i < N_ELEMS(bad); i++)
		assert_false(scone_session_name_valid(bad[i]));
	assert_false(scone_session_name_valid(NULL));
	memset(longest, 'n', sizeof(longest));
	longest[SCONE_SESSION_NAME_MAX] = '\0';
	assert_true(scone_session_name_valid(longest));
	longest[SCONE_SESSION_NAME_MAX] = 'n';
	longest[SCONE_SESSION_NAME_MAX + 1] = '\0';
	assert_false(scone_session_name_valid(longest));

	expect_bad("services: [{name: \"a/b\"}]\n", "invalid service name 'a/b'");
	expect_bad("secrets: [{name: \"a:b\", kind: ascii}]\n", "invalid secret name 'a:b'");
	expect_bad("volumes: [{name: \"\"}]\n", "invalid volume name ''");
	expect_bad("images: [{name: \"has space\"}]\n", "image name is 1 to 128 printable");
	{
		struct scone_policy_diag d = parse_bad("name: a//b\nversion: \"0.3\"\n");
		assert_true(has_error(&d, 1, 7, "name", "invalid session name 'a//b'"));
		scone_policy_diag_free(&d);
	}
}

TEST(test_wrong_types)
{
	expect_bad("services: {name: a}\n", "expected a list of services, got a mapping");
	expect_bad("services: [{name: [a]}]\n", "expected a name, got a list");
	expect_bad("services: [{name: a, command: {x: y}}]\n",
		   "expected a string or a list of strings, got a mapping");
	expect_bad("services: [{name: a, environment: [A=1]}]\n",
		   "expected a mapping {name, value}, got a string");
	expect_bad("services: [{name: a, environment: {A: {b: c}}}]\n", "expected a string, got a mapping");
	expect_bad("secrets: [{name: a, kind: private-key, migrate: yes}]\n",
		   "expected true or false, got 'yes'");
	expect_bad("secrets: [{name: a, kind: private-key, migrate: \"true\"}]\n", "expected true or false");
	expect_bad("secrets: [{name: a, kind: ascii, size: \"12\"}]\n", "expected a number");
	expect_bad("secrets: [{name: a, kind: ascii, size: 0x10}]\n", "expected a number");
	expect_bad("secrets: [{name: a, kind: ascii, size: 70000}]\n", "70000 is too large");
	expect_bad("secrets: [{name: a, kind: ascii, size: 0}]\n", "must be at least 1");
	expect_bad("access_policy: {read: {a: b}}\n", "unknown rule 'a'");
	expect_bad("secrets: a\n", "expected a list of secrets, got a string");
	expect_bad("security: [mode]\n", "expected a mapping with attestation, got a list");
	expect_bad("services: [{name: a, environment: {A: }}]\n", "no value: write \"\" for an empty string");
	expect_bad("services: [a]\n", "expected a service (a mapping");
}

TEST(test_secret_rules)
{
	expect_bad("secrets: [{name: a}]\n", "missing required key 'kind'");
	expect_bad("secrets: [{name: a, kind: aad-token}]\n",
		   "aad-token secrets fetch Microsoft Azure Active Directory tokens");
	expect_bad("secrets: [{name: a, kind: binary, size: 0}]\n", "must be at least 1");
	expect_bad("secrets: [{name: a, kind: binary, size: 65537}]\n", "65537 is too large");
	expect_bad("secrets: [{name: a, kind: binary, value: \"not base64!\"}]\n",
		   "must be hex digits or base64");
	expect_bad("secrets: [{name: a, kind: binary, value: \"abc\"}]\n", "must be hex digits or base64");
	expect_bad("secrets: [{name: a, kind: ascii, value: \"caf\xc3\xa9\"}]\n",
		   "an ascii value must be ASCII");
	expect_bad("secrets: [{name: a, kind: ascii, key_type: P-256}]\n",
		   "'key_type' does not apply to ascii secrets");
	expect_bad("secrets: [{name: a, kind: x509-ca, dns: [a.b]}]\n",
		   "'dns' does not apply to x509-ca secrets");
	expect_bad("secrets: [{name: a, kind: x509-ca, endpoint: server}]\n", "'endpoint' does not apply");
	expect_bad("secrets: [{name: a, kind: ascii, migrate: true}]\n", "'migrate' does not apply to ascii");
	expect_bad("secrets: [{name: a, kind: private-key, key_type: RSA-1024}]\n",
		   "unknown key_type 'RSA-1024'");
	expect_bad(
	    "secrets: [{name: a, kind: private-key, value: \"-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END "
	    "PRIVATE KEY-----\\n\"}]\n",
	    "not a PEM private key");
	expect_bad("secrets:\n  - name: a\n    kind: private-key\n    key_type: P-384\n    value: |\n"
		   "      -----BEGIN PRIVATE KEY-----\n"
		   "      MC4CAQAwBQYDK2VwBCIEIEYzocK/nLTwHix5xiyjw4FPinanhlxoewz3h6iRUlSb\n"
		   "      -----END PRIVATE KEY-----\n",
		   "the key in value does not match key_type");
	expect_bad("secrets: [{name: a, kind: x509, value: \"-----BEGIN CERTIFICATE-----\\n\"}]\n",
		   "not a PEM certificate");
	expect_bad("secrets: [{name: a, kind: public-key}]\n", "needs private_key");
	expect_bad("secrets: [{name: a, kind: public-key, value: nope}]\n", "not a PEM public key");
	expect_bad("secrets: [{name: a, kind: x509, endpoint: both}]\n", "endpoint must be server or client");
	expect_bad("secrets: [{name: a, kind: x509, endpoint: client, dns: a.example}]\n",
		   "a client certificate has no subject alternative names");
	expect_bad("secrets: [{name: a, kind: x509, san: [\"bad name\"]}]\n", "neither a DNS name nor an IP");
	expect_bad("secrets: [{name: a, kind: x509, san: [\"-a.b\"]}]\n", "neither a DNS name nor an IP");
	expect_bad("secrets: [{name: a, kind: x509, common_name: \"\"}]\n", "common_name must be 1 to 64");
	expect_bad("secrets: [{name: a, kind: x509, valid_for: 0}]\n", "valid_for '0'");
	expect_bad("secrets: [{name: a, kind: x509, valid_for: 200 years}]\n", "valid_for '200 years'");
	expect_bad("secrets: [{name: a, kind: x509, valid_for: 3 fortnights}]\n", "valid_for '3 fortnights'");
	expect_bad("secrets: [{name: a, kind: x509, private_key: k, key_type: P-384}, {name: k, kind: "
		   "private-key}]\n",
		   "key_type applies only to a certificate with its own generated key");
	expect_bad("secrets: [{name: a, kind: x509, private_key: nokey}]\n", "no secret named 'nokey'");
	expect_bad("secrets: [{name: a, kind: x509, private_key: b}, {name: b, kind: ascii}]\n",
		   "'b' is ascii, private_key must name a private-key secret");
	expect_bad("secrets: [{name: a, kind: x509-ca, issuer: a}]\n", "cannot name itself as its issuer");
	expect_bad("secrets: [{name: a, kind: x509-ca, issuer: b}, {name: b, kind: x509-ca, issuer: a}]\n",
		   "the issuer chain of 'a' comes back to it");
	expect_ok("secrets: [{name: a, kind: ascii, import: {session: s}}]\n"); /* kind checks the import */
	expect_bad("secrets: [{name: a, kind: ascii, value: x, import: {session: s}}]\n",
		   "'value' cannot be combined with import");
	expect_bad("secrets: [{name: a, import: {session: s, volume: v}}]\n", "unknown key 'volume'");
	expect_bad("secrets: [{name: a, import: {secret: b}}]\n", "missing required key 'session'");
	expect_bad("secrets: [{name: a, kind: ascii, export: {session: \"bad name\"}}]\n",
		   "is not a session name");
	expect_bad("secrets: [{name: a, kind: ascii, export: {session: s, session_hash: abc}}]\n",
		   "expected 64 hex digits");
	expect_bad("secrets: [{name: a, kind: ascii, export: []}]\n", "an empty export list");
	expect_bad("volumes: [{name: v, export: {namespace: n}}]\n",
		   "volumes cannot be exported to a namespace");
	expect_bad("secrets: [{name: a, kind: binary, value: \"hex:0g\"}]\n", "must be hex digits or base64");
	expect_bad("secrets: [{name: a, kind: binary, value: \"hex:abc\"}]\n",
		   "must be hex digits or base64");
	expect_bad("secrets: [{name: a, kind: binary, value: \"base64:\"}]\n", "must hold 1 to 65536 bytes");
	/* explicit binary values: hex as SCONE writes them, base64, or forced */
	expect_ok("secrets: [{name: a, kind: binary, value: DEADBEEF}]\n");
	expect_ok("secrets: [{name: a, kind: binary, value: \"base64:AAAA\"}]\n");
	expect_ok("secrets: [{name: a, kind: binary, value: \"hex:00ff\"}]\n");
	expect_ok("secrets: [{name: a, kind: binary, value: \"AAECAwQFBgcICQ==\"}]\n");
	expect_ok("secrets: [{name: a, kind: x509, private_key: b}, {name: b, import: {session: s}}]\n");
	{
		struct scone_session *s = parse_ok("name: t\nversion: \"0.3\"\nsecrets:\n"
						   "  - {name: h, kind: binary, value: DEADBEEF}\n"
						   "  - {name: b, kind: binary, value: \"base64:AAAA\"}\n"
						   "  - {name: k, kind: private-key, key_type: rsa-3072}\n");
		assert_int_equal(s->secrets[0].value_len, 4);
		assert_memory_equal(s->secrets[0].value, "\xde\xad\xbe\xef", 4);
		assert_int_equal(s->secrets[1].value_len, 3);
		assert_memory_equal(s->secrets[1].value, "\0\0\0", 3);
		assert_int_equal(s->secrets[2].key_type, SCONE_KEY_RSA3072);
		scone_session_free(s);
	}
}

TEST(test_service_rules)
{
	static const char enclave[] = "0000000000000000000000000000000000000000000000000000000000000000";
	char doc[512];

	/* hardware mode (the default) needs measurements */
	{
		struct scone_policy_diag d = parse_bad("name: t\nversion: \"0.3\"\nservices:\n  - name: a\n");
		assert_true(has_error(&d, 4, 5, "services[0]", "the service has no attestation"));
		scone_policy_diag_free(&d);
	}
	expect_bad("services: [{name: a, command: \"\"}]\n", "an empty command");
	expect_bad("services: [{name: a, command: []}]\n", "an empty command");
	expect_bad("services: [{name: a, command: \"echo 'x\"}]\n", "unterminated single quote");
	expect_bad("services: [{name: a, environment: {\"A=B\": x}}]\n", "without '='");
	expect_bad("services: [{name: a, pwd: /a/../b}]\n", "'.' or '..' component");
	expect_bad("services: [{name: a, fspf_path: /f}]\n", "fspf_path, fspf_key and fspf_tag go together");
	expect_bad("services: [{name: a, fspf_path: /f, fspf_key: abc, fspf_tag: 00}]\n",
		   "expected 64 hex digits or one $$SCONE::NAME$$ reference");
	expect_bad("services: [{name: a, fspf_path: /f, fspf_key: \"x$$SCONE::k$$\", fspf_tag: 00}]\n",
		   "expected 64 hex digits or one $$SCONE::NAME$$ reference");
	expect_bad("services: [{name: a, fspf_path: /f, fspf_key: $$SCONE::k$$, fspf_tag: "
		   "00000000000000000000000000000000}]\nsecrets: [{name: k, kind: ascii}]\n",
		   "a volume key must be a binary secret");
	expect_bad("services: [{name: a, fspf_path: /f, fspf_key: $$SCONE::k$$, fspf_tag: "
		   "00000000000000000000000000000000}]\nsecrets: [{name: k, kind: binary, size: 16}]\n",
		   "a volume key must be 32 bytes");
	expect_bad("services: [{name: a, fspf_path: /f, fspf_key: $$SCONE::k:base64$$, fspf_tag: "
		   "00000000000000000000000000000000}]\nsecrets: [{name: k, kind: binary, size: 32}]\n",
		   "takes no format or :hex");
	expect_bad(
	    "volumes: [{name: v, fspf_key: $$SCONE::v$$, fspf_tag: 00000000000000000000000000000000}]\n",
	    "no secret named 'v'");
	expect_bad("volumes: [{name: v, fspf_key: "
		   "0000000000000000000000000000000000000000000000000000000000000000}]\n",
		   "fspf_key and fspf_tag go together");
	expect_bad("volumes: [{name: v, fspf_tag: 00, import: {session: s}}]\n",
		   "'fspf_tag' cannot be combined");
	expect_bad("images: [{name: i, injection_files: [{content: x}]}]\n", "missing required key 'path'");
	expect_bad("images: [{name: i, injection_files: [\"/a//b\"]}]\n", "empty component");
	expect_bad("images: [{name: i, injection_files: [{path: /a, permission: 1777}]}]\n",
		   "not an octal file mode");
	expect_bad("images: [{name: i, volumes: [{name: v}]}]\nvolumes: [{name: v}]\n",
		   "missing required key 'path'");

	/* attestation variants */
	snprintf(doc, sizeof(doc), "services: [{name: a, attestation: {signer: {mrsigner: %s}}}]\n", enclave);
	expect_bad(doc, "missing required key 'isvprodid'");
	snprintf(
	    doc, sizeof(doc),
	    "services: [{name: a, attestation: {mrsigner: %s, isvprodid: 1, isvsvn: 2, isvsvn_min: 1}}]\n",
	    enclave);
	expect_bad(doc, "give isvsvn or a range");
	snprintf(doc, sizeof(doc),
		 "services: [{name: a, attestation: {mrsigner: %s, isvprodid: 1, isvsvn_min: 5, isvsvn_max: "
		 "4}}]\n",
		 enclave);
	expect_bad(doc, "isvsvn_min is larger than isvsvn_max");
	snprintf(doc, sizeof(doc), "services: [{name: a, attestation: {mrsigner: %s, isvprodid: 70000}}]\n",
		 enclave);
	expect_bad(doc, "70000 is too large");
	snprintf(doc, sizeof(doc), "services: [{name: a, attestation: [], mrenclaves: [%s]}]\n", enclave);
	expect_bad(doc, "give attestation or the deprecated mrenclaves, not both");
	expect_bad("services: [{name: a, attestation: []}]\n", "an empty list of attestation variants");
	snprintf(doc, sizeof(doc), "services: [{name: a, attestation: {mrenclave: %s, mrcnclave: x}}]\n",
		 enclave);
	expect_bad(doc, "unknown key 'mrcnclave' (did you mean 'mrenclave'?)");
	/* service-level platforms restrict every variant */
	snprintf(doc, sizeof(doc),
		 "services: [{name: a, platforms: [%s], attestation: [{mrenclave: %s, platforms: [%s]}]}]\n",
		 enclave, enclave, enclave);
	expect_bad(doc, "platforms are given here and in attestation variant 0");
	{
		struct scone_session *s;
		char *full;
		snprintf(
		    doc, sizeof(doc),
		    "services: [{name: a, platforms: [%.63s1], attestation: [{mrenclave: %s}, {mrsigner: %s, "
		    "isvprodid: 1}]}]\n",
		    enclave, enclave, enclave);
		full = wrap(doc);
		s = parse_ok(full);
		assert_int_equal(s->services[0].n_variants, 2);
		for (size_t i = 0; i < 2; i++) {
			assert_int_equal(s->services[0].variants[i].platforms.n, 1);
			assert_string_equal(s->services[0].variants[i].platforms.v[0] + 63, "1");
		}
		assert_int_equal(s->services[0].platforms.n, 1);
		scone_session_free(s);
		free(full);
	}
	/* mode none: no measurements needed, listed ones are still checked */
	expect_ok("services: [{name: a}]\n");
	expect_bad("services: [{name: a, mrenclaves: [xyz]}]\n", "expected 64 hex digits");
}

TEST(test_access_and_security)
{
	expect_bad("access_policy: {read: []}\n", "an empty list: leave read out");
	expect_bad("access_policy: {update: [ANY, CREATOR]}\n", "ANY must be the only entry");
	expect_bad("access_policy: {read: [CREATOR, NONE]}\n", "NONE must be the only entry");
	expect_bad("access_policy: {read: [creator]}\n", "'creator' is not CREATOR, ANY, NONE");
	expect_bad("access_policy: {read: [\"x$$SCONE::cert$$\"]}\n", "must be the whole entry");
	expect_bad(
	    "access_policy: {read: [\"-----BEGIN CERTIFICATE-----\\nAAAA\\n-----END CERTIFICATE-----\"]}\n",
	    "not a readable PEM certificate");
	expect_bad("access_policy: {delete: [NONE]}\n", "unknown key 'delete'");
	expect_bad("security: {attestation: {mode: maa}}\n",
		   "mode maa (Microsoft Azure Attestation) is not supported");
	expect_bad("security: {attestation: {mode: sim}}\n", "unknown attestation mode 'sim'");
	expect_bad("security: {attestation: {mode: none, tolerate: [debug]}}\n", "goes with mode: maa");
	expect_bad("security: {attestation: {mode: none, tolerate: [no-such-issue]}}\n",
		   "unknown issue 'no-such-issue'");
	expect_bad("security: {attestation: {mode: none, ignore_advisories: \"*\"}}\n",
		   "\"*\" is only allowed with tolerate: [debug-mode");
	expect_bad("security: {attestation: {mode: none, ignore_advisories: [\"*\"]}}\n",
		   "\"*\" alone means all");
	expect_bad("security: {attestation: {mode: none, trusted_scone_qe_pubkeys: [abc]}}\n",
		   "expected 64 hex");
	{
		char *doc = wrap("access_policy:\n  read:\n    - |\n      -----BEGIN PUBLIC KEY-----\n"
				 "      MCowBQYDK2VwAyEAbeHb4/P+4Oal9KDIwxTkc85QO62ZuMAXE9KVU4NjNSQ=\n"
				 "      -----END PUBLIC KEY-----\n  update: [ANY]\n");
		struct scone_session *s = parse_ok(doc);
		uint8_t want[32];
		assert_ok(scone_hex_decode(
		    want, 32, "44472f644ea27c7900052410a04b127a5f902693c0a887a5a6d1981bdcfaf56f", "t"));
		assert_int_equal(s->read.v[0].kind, SCONE_PRINCIPAL_KEY);
		assert_memory_equal(s->read.v[0].spki_sha256, want, 32);
		assert_int_equal(s->update.v[0].kind, SCONE_PRINCIPAL_ANY);
		assert_int_equal(s->mode, SCONE_ATTEST_NONE);
		scone_session_free(s);
		free(doc);
	}
}

TEST(test_template_validation)
{
	expect_ok("services: [{name: a, command: \"x $$SCONE::k$$ $$SCONE::k:hex$$ $$SCONE::k:base64$$\"}]\n"
		  "secrets: [{name: k, kind: binary, size: 8}]\n");
	expect_bad(
	    "services: [{name: a, command: \"x $$SCONE::k:pem$$\"}]\nsecrets: [{name: k, kind: "
	    "binary, size: 8}]\n",
	    "format 'pem' is not valid for binary secret 'k' (formats: (none), bin, hex, base64, base64url, "
	    "base32, base32nopad)");
	expect_bad(
	    "services: [{name: a, command: [\"$$SCONE::k:crt:txt$$\"]}]\nsecrets: [{name: k, kind: x509}]\n",
	    "format 'crt:txt' is not valid for x509 secret 'k'");
	expect_bad("services: [{name: a, environment: {X: $$SCONE::v$$}}]\nvolumes: [{name: v}]\n",
		   "names a volume: volume keys cannot be referenced");
	/* SCONE's old NAME.crt works only for certificates; see test_scone_compat for the accepted forms */
	expect_bad(
	    "services: [{name: a, environment: {X: $$SCONE::c.crt$$}}]\nsecrets: [{name: c, kind: ascii}]\n",
	    "the old form NAME.crt applies to x509 secrets");
	expect_bad("services: [{name: a, environment: {X: \"$$SCONE::a b$$\"}}]\n",
		   "an incomplete secret reference");
	expect_bad("images: [{name: i, injection_files: [{path: /a, content: \"pw=$$SCONE::x\"}]}]\n",
		   "an incomplete secret reference");
	expect_bad("images: [{name: i, injection_files: [{path: /a, content: \"$$SCONE::x$$\"}]}]\n",
		   "no secret named 'x'");
	/* imported secrets without kind take any known format, not unknown ones */
	expect_ok("services: [{name: a, command: \"x $$SCONE::i:chain$$ $$SCONE::i:hex$$\"}]\n"
		  "secrets: [{name: i, import: {session: other}}]\n");
	expect_bad("services: [{name: a, command: \"x $$SCONE::i:json$$\"}]\nsecrets: [{name: i, import: "
		   "{session: o}}]\n",
		   "format 'json' is not valid for imported secret 'i'");
	/* plain text with dollars is fine */
	expect_ok("services: [{name: a, command: \"echo $$ $HOME $$SCONE\"}]\n");
}

/* ---- the hash ---- */

static void hash_of(const char *text, uint8_t out[32])
{
	struct scone_session *s = parse_ok(text);
	memcpy(out, s->hash, 32);
	scone_session_free(s);
}

/* The test vector published in docs/sessions.md. */
static const char vector_doc[] = "name: example\n"
				 "version: \"0.3\"\n"
				 "security:\n"
				 "  attestation:\n"
				 "    mode: none\n"
				 "services:\n"
				 "  - name: hello\n"
				 "    command: echo hello\n";
static const char vector_hash[] = "535c7d084a53742669fc687104570c9a97f8592ee9d696b14fbceb916356cd0a";

TEST(test_hash_vector)
{
	uint8_t h[32];
	char hex[65];

	hash_of(vector_doc, h);
	scone_session_hash_hex(h, hex);
	assert_string_equal(hex, vector_hash);
}

TEST(test_hash_stable)
{
	static const char base[] =
	    "name: acme/app\nversion: \"0.3\"\n"
	    "predecessor: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
	    "security:\n  attestation:\n    mode: none\n"
	    "services:\n  - name: web\n    command: [run, --port, 80]\n"
	    "    environment:\n      A: one\n      B: two\n"
	    "secrets:\n  - name: pw\n    kind: ascii\n    size: 12\n";
	/* the same session: flow style, other key order, quotes, comments, CRLF, a document marker */
	static const char *const same[] = {
	    "# comment\nversion: '0.3'\nname: \"acme/app\"\npredecessor: "
	    "\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"\n"
	    "secrets: [{size: 12, kind: ascii, name: pw}]\n"
	    "services: [{environment: {B: two, A: \"one\"}, command: [\"run\", '--port', \"80\"], name: "
	    "web}]\n"
	    "security: {attestation: {mode: none}}  # trailing comment\n",
	    "---\r\nname: acme/app\r\nversion: \"0.3\"\r\n"
	    "predecessor: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\r\n"
	    "security:\r\n    attestation:\r\n        mode: none\r\n"
	    "services:\r\n-   name: web\r\n    command:\r\n    - run\r\n    - --port\r\n    - 80\r\n"
	    "    environment:\r\n        B: two\r\n        A: one\r\n"
	    "secrets:\r\n-   {name: pw, kind: ascii, size: 12}\r\n...\r\n",
	};
	/* each changes one value */
	static const char *const other[] = {
	    "name: acme/app2\n",
	    "predecessor: f3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n",
	    "predecessor: ~\n",
	    "mode: hardware\n",
	    "command: [run, --port, 81]\n",
	    "A: One\n",
	    "size: 13\n",
	    "command: [run, --port]\n",
	};
	uint8_t h0[32], h[32];

	hash_of(base, h0);
	for (size_t i = 0; i < N_ELEMS(same); i++) {
		hash_of(same[i], h);
		assert_memory_equal(h0, h, 32);
	}
	for (size_t i = 0; i < N_ELEMS(other); i++) {
		/* replace the line with the same key in base */
		char doc[1024], key[32];
		const char *colon = strchr(other[i], ':'), *at;
		size_t klen = (size_t)(colon - other[i]) + 1;
		memcpy(key, other[i], klen);
		key[klen] = '\0';
		at = strstr(base, key);
		assert_non_null(at);
		snprintf(doc, sizeof(doc), "%.*s%s%s", (int)(at - base), base, other[i],
			 strchr(at, '\n') + 1);
		if (strstr(other[i], "hardware")) { /* hardware needs measurements: add them too */
			char *m = strstr(doc, "    command");
			char tmp[1024];
			snprintf(tmp, sizeof(tmp),
				 "%.*s    mrenclaves: "
				 "[0000000000000000000000000000000000000000000000000000000000000000]\n%s",
				 (int)(m - doc), doc, m);
			snprintf(doc, sizeof(doc), "%s", tmp);
		}
		hash_of(doc, h);
		assert_memory_not_equal(h0, h, 32);
	}
	/* null and the string "~" differ; a missing key and a null one differ (both are hashed as written) */
	{
		uint8_t a[32], b[32];
		hash_of("name: x\nversion: \"0.3\"\npredecessor: ~\n", a);
		hash_of("name: x\nversion: \"0.3\"\npredecessor: null\n", b);
		assert_memory_equal(a, b, 32);
		hash_of("name: x\nversion: \"0.3\"\n", b);
		assert_memory_not_equal(a, b, 32);
	}
}

/* ---- shell split ---- */

static void split_is(const char *line, const char *const *want, size_t n)
{
	struct scone_strs out;

	assert_ok(scone_shell_split(line, &out));
	assert_int_equal(out.n, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(out.v[i], want[i]);
	assert_null(out.v[n]);
	scone_strs_free(&out);
	assert_null(out.v);
	assert_int_equal(out.n, 0);
}

TEST(test_shell_split)
{
	struct scone_strs out;

	split_is("a b  c", (const char *[]){"a", "b", "c"}, 3);
	split_is("  \t\n lead and trail \r\n", (const char *[]){"lead", "and", "trail"}, 3);
	split_is("", NULL, 0);
	split_is("   ", NULL, 0);
	split_is("mysql -e \"show databases;\"", (const char *[]){"mysql", "-e", "show databases;"}, 3);
	split_is("'single $x \\n' \"dq \\\" \\\\ \\$ \\` \\n\"",
		 (const char *[]){"single $x \\n", "dq \" \\ $ ` \\n"}, 2);
	split_is("a\\ b c\\\\d \\'e", (const char *[]){"a b", "c\\d", "'e"}, 3);
	split_is("x\"y z\"'w'v", (const char *[]){"xy zwv"}, 1);
	split_is("\"\" '' a", (const char *[]){"", "", "a"}, 3);
	split_is("a\\\nb \\\n c \"d\\\ne\"", (const char *[]){"ab", "c", "de"}, 3);
	split_is("$$SCONE::pw$$ --x=$$SCONE::k:hex$$ #no-comment ~ *",
		 (const char *[]){"$$SCONE::pw$$", "--x=$$SCONE::k:hex$$", "#no-comment", "~", "*"}, 5);
	assert_int_equal(scone_shell_split("echo 'oops", &out), SCONE_ERR_MALFORMED);
	assert_non_null(strstr(scone_err_detail(), "unterminated single quote at offset 5"));
	assert_null(out.v);
	assert_int_equal(scone_shell_split("a \"b c", &out), SCONE_ERR_MALFORMED);
	assert_non_null(strstr(scone_err_detail(), "unterminated double quote at offset 2"));
	assert_int_equal(scone_shell_split("a \"b\\\"", &out), SCONE_ERR_MALFORMED);
	assert_int_equal(scone_shell_split("a b\\", &out), SCONE_ERR_MALFORMED);
	assert_non_null(strstr(scone_err_detail(), "lone backslash"));
	assert_int_equal(scone_shell_split(NULL, &out), SCONE_ERR_INVALID);
}

/* ---- templates ---- */

struct fake {
	int calls;
	bool fail;
};

static enum scone_err fake_lookup(void *ctx, const char *name, const char *format, struct scone_wbuf *out)
{
	struct fake *f = ctx;
	char buf[200];
	int n;

	f->calls++;
	if (f->fail || !strcmp(name, "missing"))
		return scone_err_set(SCONE_ERR_NOT_FOUND, "no secret %s", name);
	if (!strcmp(name, "evil")) /* a value that looks like a reference is not expanded again */
		return scone_wbuf_put(out, "$$SCONE::pw$$", 13);
	n = snprintf(buf, sizeof(buf), "<%s|%s>", name, format ? format : "-");
	return scone_wbuf_put(out, buf, (size_t)n);
}

static void expand_is(const char *in, const char *want)
{
	struct scone_wbuf w;
	struct fake f = {0, false};

	scone_wbuf_init(&w, 1 << 20, 1);
	assert_ok(scone_template_expand(in, strlen(in), fake_lookup, &f, &w));
	assert_int_equal(w.size, strlen(want));
	assert_memory_equal(w.data, want, w.size);
	scone_wbuf_free(&w);
}

TEST(test_template_expand)
{
	struct scone_wbuf w;
	struct fake f = {0, false};

	expand_is("plain", "plain");
	expand_is("", "");
	expand_is("$$SCONE::pw$$", "<pw|->");
	expand_is("a$$SCONE::pw$$b$$SCONE::k:hex$$c", "a<pw|->b<k|hex>c");
	expand_is("$$SCONE::c:crt:pem$$", "<c|crt:pem>");
	expand_is("$$SCONE::a.b-c_d~e$$", "<a.b-c_d~e|->");
	/* incomplete references are text */
	expand_is("$$SCONE::", "$$SCONE::");
	expand_is("$$SCONE::pw", "$$SCONE::pw");
	expand_is("$$SCONE::pw$", "$$SCONE::pw$");
	expand_is("$$SCONE::$$", "$$SCONE::$$");
	expand_is("$$SCONE::pw:$$", "$$SCONE::pw:$$");
	expand_is("$$SCONE::a b$$", "$$SCONE::a b$$");
	expand_is("$$SCONE:pw$$", "$$SCONE:pw$$");
	expand_is("$$$SCONE::pw$$$", "$<pw|->$");
	expand_is("$$SCONE::$$SCONE::pw$$", "$$SCONE::<pw|->");
	/* the value of a secret is never expanded */
	expand_is("$$SCONE::evil$$", "$$SCONE::pw$$");
	/* bytes after NUL are expanded too (injection files hold any bytes) */
	scone_wbuf_init(&w, 1 << 20, 1);
	assert_ok(scone_template_expand("a\0$$SCONE::x$$", 15, fake_lookup, &f, &w));
	assert_int_equal(w.size, 8);
	assert_memory_equal(w.data, "a\0<x|->", 8);
	scone_wbuf_free(&w);
	/* name longer than 128 is not a reference */
	{
		char in[300], out_want[300];
		memset(in, 0, sizeof(in));
		memcpy(in, "$$SCONE::", 9);
		memset(in + 9, 'n', 129);
		memcpy(in + 138, "$$", 2);
		memcpy(out_want, in, sizeof(in));
		expand_is(in, out_want);
	}
	/* lookup errors stop expansion and propagate */
	scone_wbuf_init(&w, 1 << 20, 1);
	assert_int_equal(scone_template_expand("x $$SCONE::missing$$ y", 22, fake_lookup, &f, &w),
			 SCONE_ERR_NOT_FOUND);
	scone_wbuf_free(&w);
	/* the output ceiling is honoured */
	scone_wbuf_init(&w, 4, 1);
	assert_int_equal(scone_template_expand("$$SCONE::long$$", 15, fake_lookup, &f, &w),
			 SCONE_ERR_TOO_LARGE);
	scone_wbuf_free(&w);
	assert_int_equal(scone_template_expand("x", 1, NULL, &f, &w), SCONE_ERR_INVALID);
}

struct refs {
	char seen[8][64];
	int n;
};

static enum scone_err collect(void *ctx, const char *name, const char *format)
{
	struct refs *r = ctx;
	if (!strcmp(name, "stop"))
		return scone_err_set(SCONE_ERR_INVALID, "stop");
	snprintf(r->seen[r->n++], 64, "%s/%s", name, format ? format : "");
	return SCONE_ERR_OK;
}

TEST(test_template_refs)
{
	struct refs r = {0};
	const char *in = "$$SCONE::a$$ x $$SCONE::b:der$$ $$SCONE::incomplete $$SCONE::c:hex$$";

	assert_ok(scone_template_refs(in, strlen(in), collect, &r));
	assert_int_equal(r.n, 3);
	assert_string_equal(r.seen[0], "a/");
	assert_string_equal(r.seen[1], "b/der");
	assert_string_equal(r.seen[2], "c/hex");
	r.n = 0;
	in = "$$SCONE::a$$ $$SCONE::stop$$ $$SCONE::c$$";
	assert_int_equal(scone_template_refs(in, strlen(in), collect, &r), SCONE_ERR_INVALID);
	assert_int_equal(r.n, 1);
}

TEST(test_format_table)
{
#define X509_FORMATS                                                                                         \
	{                                                                                                    \
		"crt", "crt:pem", "crt:der", "pem", "der", "chain", "privatekey", "privatekey:pem",          \
		    "privatekey:pkcs8:pem", "privatekey:der", "privatekey:pkcs8:der", "key",                 \
		    "pkcs12-with-private-key"                                                                \
	}
	static const struct {
		enum scone_secret_kind kind;
		const char *valid[16];
	} table[] = {
	    {SCONE_SECRET_ASCII, {"hex", "base64"}},
	    {SCONE_SECRET_BINARY, {"bin", "hex", "base64", "base64url", "base32", "base32nopad"}},
	    {SCONE_SECRET_PRIVATE_KEY, {"pem", "pkcs8:pem", "der", "pkcs8:der", "privatekey", "publickey"}},
	    {SCONE_SECRET_PUBLIC_KEY, {"pem", "der", "spki:pem", "spki:der"}},
	    {SCONE_SECRET_X509, X509_FORMATS},
	    {SCONE_SECRET_X509_CA, X509_FORMATS},
	};
	static const char *const all[] = {"hex",
					  "base64",
					  "pem",
					  "privatekey",
					  "der",
					  "publickey",
					  "crt",
					  "chain",
					  "key",
					  "bin",
					  "crt:pem",
					  "HEX",
					  "",
					  "pkcs8:pem",
					  "spki:der",
					  "base32nopad",
					  "crt:der",
					  "pkcs8:der",
					  "base64url",
					  "privatekey:der",
					  "asciiarmored",
					  "publickey:binary"};

	for (size_t t = 0; t < N_ELEMS(table); t++) {
		assert_true(scone_template_format_valid(table[t].kind, NULL));
		for (size_t a = 0; a < N_ELEMS(all); a++) {
			bool want = false;
			for (size_t v = 0; table[t].valid[v]; v++)
				want = want || !strcmp(table[t].valid[v], all[a]);
			assert_int_equal(scone_template_format_valid(table[t].kind, all[a]), want);
		}
	}
	assert_true(scone_template_format_valid(SCONE_SECRET_CONFIG_FRAGMENT, NULL));
	assert_false(scone_template_format_valid(SCONE_SECRET_CONFIG_FRAGMENT, "hex"));
	assert_false(scone_template_format_valid(SCONE_SECRET_PGP_KEY, NULL)); /* pgp-key names its part */
	assert_true(scone_template_format_valid(SCONE_SECRET_PGP_KEY, "publickey:asciiarmored"));
	assert_false(scone_template_format_valid((enum scone_secret_kind)0, NULL));
	assert_false(scone_template_format_valid((enum scone_secret_kind)99, "hex"));
}

/* ---- @@N ---- */

TEST(test_host_args)
{
	char *host[] = {"/usr/bin/app", "8443", "with space", "$$SCONE::pw$$", "4", "5", "6", "7", "8", "9",
			"ten",		NULL};
	char *session_argv[] = {"app", "--port=@@1", "@@2", "@@1@@1", "mail@@example", "@@", "x@@10y", "@@3"};
	struct scone_strs in = {session_argv, N_ELEMS(session_argv)}, out;

	assert_ok(scone_host_args(&in, 11, host, &out));
	assert_int_equal(out.n, 8);
	assert_string_equal(out.v[0], "app");
	assert_string_equal(out.v[1], "--port=8443");
	assert_string_equal(out.v[2], "with space");
	assert_string_equal(out.v[3], "84438443");
	assert_string_equal(out.v[4], "mail@@example");
	assert_string_equal(out.v[5], "@@");
	assert_string_equal(out.v[6], "xteny");
	assert_string_equal(out.v[7], "$$SCONE::pw$$"); /* copied, never expanded */
	assert_null(out.v[8]);
	scone_strs_free(&out);

	assert_int_equal(scone_host_args(&in, 3, host, &out), SCONE_ERR_INVALID);
	assert_non_null(strstr(scone_err_detail(), "uses @@10 but the program got 2 arguments"));
	assert_null(out.v);
	{
		char *zero[] = {"@@0"};
		struct scone_strs z = {zero, 1};
		assert_int_equal(scone_host_args(&z, 11, host, &out), SCONE_ERR_INVALID);
		assert_non_null(strstr(scone_err_detail(), "numbered from @@1"));
	}
	{
		struct scone_strs empty = {NULL, 0};
		assert_ok(scone_host_args(&empty, 1, host, &out));
		assert_int_equal(out.n, 0);
		assert_non_null(out.v);
		assert_null(out.v[0]);
		scone_strs_free(&out);
	}
	{
		char *huge[] = {"@@99999999999"};
		struct scone_strs hz = {huge, 1};
		assert_int_equal(scone_host_args(&hz, 11, host, &out), SCONE_ERR_INVALID);
	}
}

/* ---- wiping ---- */

TEST(test_secrets_wiped)
{
	struct scone_session *s =
	    parse_ok("name: t\nversion: \"0.3\"\nsecurity: {attestation: {mode: none}}\n"
		     "services: [{name: a, environment: {PW: hunter2}}]\n"
		     "volumes: [{name: v, fspf_key: "
		     "66e7935397249112d1148e6ce98a396a8c96b3b0ae70708c16ff284c66f0821e, "
		     "fspf_tag: 5a0fe9bdcfed5c0391a707e05f6cfbeb}]\n"
		     "secrets:\n  - {name: a, kind: ascii, value: topsecret}\n"
		     "  - {name: b, kind: binary, value: 00ff00ff}\n");
	const void *a = s->secrets[0].value, *b = s->secrets[1].value, *env = s->services[0].env[0].value;
	const void *key = s->volumes[0].fspf_key;

	n_wiped = 0;
	scone_session_free(s);
	assert_true(was_wiped(a, 9));
	assert_true(was_wiped(b, 4));
	assert_true(was_wiped(env, 7));
	assert_true(was_wiped(key, 64));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_full_session),
	    cmocka_unit_test(test_examples_parse),
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_error_positions),
	    cmocka_unit_test(test_error_format),
	    cmocka_unit_test(test_many_errors_capped),
	    cmocka_unit_test(test_missing_and_unknown_keys),
	    cmocka_unit_test(test_duplicate_keys),
	    cmocka_unit_test(test_duplicate_names),
	    cmocka_unit_test(test_alias_rejected),
	    cmocka_unit_test(test_documents),
	    cmocka_unit_test(test_syntax_and_encoding),
	    cmocka_unit_test(test_oversize),
	    cmocka_unit_test(test_depth_limit),
	    cmocka_unit_test(test_list_limit),
	    cmocka_unit_test(test_node_limit),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_wrong_types),
	    cmocka_unit_test(test_secret_rules),
	    cmocka_unit_test(test_service_rules),
	    cmocka_unit_test(test_access_and_security),
	    cmocka_unit_test(test_template_validation),
	    cmocka_unit_test(test_hash_vector),
	    cmocka_unit_test(test_hash_stable),
	    cmocka_unit_test(test_shell_split),
	    cmocka_unit_test(test_template_expand),
	    cmocka_unit_test(test_template_refs),
	    cmocka_unit_test(test_format_table),
	    cmocka_unit_test(test_host_args),
	    cmocka_unit_test(test_secrets_wiped),
	};
	(void)OPENSSL_cleanse;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
