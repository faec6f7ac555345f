/*
 * attestation.c - the session rules of the `las` attestation mode and of
 * one-time passwords (docs/sessions.md, "Attestation" and "One-time
 * passwords"), kept apart from the section decoders they hook into.
 *
 * las mode: a LAS report names a measurement (scone measure) and the LAS
 * host that made it, nothing like an SGX signer; so every variant must
 * give measurements and platforms, and SGX's signer factors are refused
 * (never silently ignored).
 *
 * one_time_password_shared_secret (security.attestation, or a service):
 * base32 text of at least 128 bits (RFC 4226), or exactly one
 * $$SCONE::NAME:base32nopad$$ of a binary secret (own or imported; SCONE
 * has base32nopad for binary secrets only) that CAS renders at fetch time.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#include "lib/base32.h"

#define OTP_MIN_BYTES 16
#define OTP_MAX_BYTES 64

static const char *const mode_names[] = {
    [SCONE_ATTEST_HARDWARE] = "hardware",
    [SCONE_ATTEST_NONE] = "none",
    [SCONE_ATTEST_LAS] = "las",
};

const char *scone_attestation_mode_name(enum scone_attestation_mode mode)
{
	if ((size_t)mode < sizeof(mode_names) / sizeof(mode_names[0]) && mode_names[mode])
		return mode_names[mode];
	return "unknown";
}

const char *scone_service_otp_secret(const struct scone_session *s, const struct scone_service *svc)
{
	if (svc && svc->otp_secret)
		return svc->otp_secret;
	return s ? s->otp_secret : NULL;
}

/* ---- las mode ---- */

void pol_check_las_service(struct pctx *c, const struct ynode *m, const struct scone_service *svc)
{
	(void)m;
	for (size_t i = 0; i < svc->n_variants; i++) {
		const struct scone_attest_variant *v = &svc->variants[i];
		if (v->mrtds.n || v->snp_measurements.n || v->host_data || v->rtmr[0] || v->rtmr[1] ||
		    v->rtmr[2] || v->rtmr[3])
			pol_error(c, v->pos,
				  "mrtd, rtmr0-3, measurement and host_data are TDX and SEV-SNP factors "
				  "(mode: hardware): in las mode a variant lists mrenclave (scone measure "
				  "PROGRAM) and platforms");
		else if (v->mrsigner || v->isvprodid >= 0 || v->isvsvn_min >= 0 || v->isvsvn_max >= 0)
			pol_error(c, v->pos,
				  "mrsigner, isvprodid and isvsvn are SGX factors that a LAS report does not "
				  "carry: in "
				  "las mode a variant lists mrenclave (scone measure PROGRAM) and platforms");
		else if (v->mrenclaves.n == 0)
			pol_error(
			    c, v->pos,
			    "in las mode a variant needs mrenclave: the measurements `scone measure PROGRAM` "
			    "prints");
		if (v->platforms.n == 0)
			pol_error(
			    c, v->pos,
			    "in las mode a variant needs platforms: the ids of the LAS hosts it may run on "
			    "(scone-las --print-identity); a report from an unlisted host is refused");
	}
}

/* ---- one-time password secrets ---- */

struct otp_ref {
	struct pctx *c;
	const struct ynode *n;
	const struct scone_session *s;
	int refs;
};

static enum scone_err otp_on_ref(void *ctx, const char *name, const char *format)
{
	struct otp_ref *r = ctx;
	const struct scone_secret *sec = scone_session_secret(r->s, name);

	r->refs++;
	if (!format || strcmp(format, "base32nopad") != 0) {
		pol_error(r->c, r->n->pos,
			  "write $$SCONE::%s:base32nopad$$: the secret is given to CAS in base32", name);
	} else if (sec && sec->kind && sec->kind != SCONE_SECRET_BINARY) {
		pol_error(r->c, r->n->pos, "secret '%s' is a %s: a one-time password secret is binary", name,
			  scone_secret_kind_name(sec->kind));
	} else if (sec && !sec->import && (sec->value ? sec->value_len : sec->size) < OTP_MIN_BYTES) {
		pol_error(
		    r->c, r->n->pos,
		    "secret '%s' has fewer than %d bytes: a one-time password secret has at least 128 bits "
		    "(RFC 4226)",
		    name, OTP_MIN_BYTES);
	}
	return SCONE_ERR_OK;
}

/* A literal: base32 of 16 to 64 bytes. */
static void check_literal(struct pctx *c, const struct ynode *n)
{
	uint8_t key[OTP_MAX_BYTES];
	size_t len = 0;

	if (scone_base32_decode(n->text, n->len, key, sizeof(key), &len, "one-time password secret") !=
	    SCONE_ERR_OK)
		pol_error(c, n->pos, "%s (or write one $$SCONE::NAME:base32nopad$$)", scone_err_detail());
	else if (len < OTP_MIN_BYTES)
		pol_error(
		    c, n->pos,
		    "a one-time password secret of %zu bytes: at least %d (26 base32 characters, RFC 4226)",
		    len, OTP_MIN_BYTES);
	memset(key, 0, sizeof(key));
	scone_err_clear();
}

char *pol_decode_otp(struct pctx *c, const struct ynode *n, const char *key, const struct scone_session *s)
{
	struct otp_ref r = {c, n, s, 0};
	size_t saved = pol_path_key(c, key);
	char *out = NULL;

	if (!pol_expect(c, n, YN_SCALAR, "base32 text or $$SCONE::NAME:base32nopad$$") || n->null) {
		if (n->kind == YN_SCALAR)
			pol_error(c, n->pos, "a one-time password secret needs a value");
		goto done;
	}
	if (strstr(n->text, "$$SCONE::")) {
		pol_check_template(c, n, n->text, n->len, s);
		if (scone_template_refs(n->text, n->len, otp_on_ref, &r) != SCONE_ERR_OK)
			r.refs = 0;
		if (r.refs != 1 || strncmp(n->text, "$$SCONE::", 9) != 0 || n->text[n->len - 1] != '$' ||
		    strstr(n->text + 2, "$$") != n->text + n->len - 2)
			pol_error(c, n->pos,
				  "write exactly one $$SCONE::NAME:base32nopad$$ and nothing else");
	} else {
		check_literal(c, n);
	}
	out = pol_str(c, n);
done:
	pol_path_restore(c, saved);
	return out;
}

void pol_decode_session_otp(struct pctx *c, const struct ynode *root, struct scone_session *s)
{
	const struct ynode *sec = root->kind == YN_MAP ? pol_map_get(root, "security") : NULL;
	const struct ynode *att = sec && sec->kind == YN_MAP ? pol_map_get(sec, "attestation") : NULL;
	const struct ynode *n =
	    att && att->kind == YN_MAP ? pol_map_get(att, "one_time_password_shared_secret") : NULL;
	size_t s1, s2;

	if (!n)
		return;
	s1 = pol_path_key(c, "security");
	s2 = pol_path_key(c, "attestation");
	s->otp_secret = pol_decode_otp(c, n, "one_time_password_shared_secret", s);
	pol_path_restore(c, s2);
	pol_path_restore(c, s1);
}
