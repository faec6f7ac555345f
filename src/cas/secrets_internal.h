/*
 * secrets_internal.h - structures and helpers shared by the secret set's
 * implementation files; not part of its interface (src/cas/secrets.h):
 *   secrets.c         the set, generation in dependency order, keep rules
 *   secrets_x509.c    keys, certificates and explicit PEM/DER values (OpenSSL)
 *   secrets_codec.c   the serialized form the store seals, and its parser
 *   secrets_render.c  rendering in template formats, public parts
 *
 * An item owns every byte it points to; sec_item_clear wipes all of it
 * (certificates too: cheaper than deciding what is public).
 */
#ifndef SCONE_CAS_SECRETS_INTERNAL_H
#define SCONE_CAS_SECRETS_INTERNAL_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdint.h>

#include "secrets.h"

#define SEC_KIND_VOLUME 0x80 /* a volume key, in its own name space */

#define SEC_F_EXPLICIT 0x01 /* value given by the session, not generated */
#define SEC_F_OWN_KEY 0x02  /* x509*: key generated for the certificate itself */
#define SEC_F_ALL (SEC_F_EXPLICIT | SEC_F_OWN_KEY)

#define SEC_NAME_MAX 256			    /* bytes of a secret or volume name */
#define SEC_VALUE_MAX (1024 * 1024)		    /* an ascii/binary/key value */
#define SEC_DER_MAX (64 * 1024)			    /* one certificate */
#define SEC_CHAIN_MAX 16			    /* issuer certificates above one certificate */
#define SEC_ITEMS_MAX (2 * SCONE_SESSION_MAX_ITEMS) /* secrets + volumes */
#define SEC_GEN_MAX 65536			    /* generated ascii/binary bytes */
#define SEC_ASCII_DEFAULT 20
#define SEC_BINARY_DEFAULT 20
#define SEC_VOLUME_KEY 32
#define SEC_DAYS_MAX 36600u /* about a century */

struct sec_blob {
	uint8_t *p;
	size_t n;
};

struct sec_item {
	char *name;
	uint8_t kind;	  /* enum scone_secret_kind or SEC_KIND_VOLUME */
	uint8_t flags;	  /* SEC_F_* */
	uint8_t key_type; /* enum scone_key_type of value's key; 0 = no key */
	/*
	 * ascii/binary: the bytes; private-key and x509*: PKCS#8 DER of the key
	 * (x509* may have none if explicit); public-key: SPKI DER; volume: key.
	 */
	struct sec_blob value;
	struct sec_blob cert;	/* x509*: certificate DER */
	struct sec_blob *chain; /* x509*: issuer certificates DER, nearest first */
	size_t n_chain;
};

struct scone_secret_set {
	struct sec_item *v;
	size_t n;
};

/* secrets.c */
void sec_blob_free(struct sec_blob *b);
/* A copy of p (n bytes; p NULL: uninitialised, for the caller to fill). */
SCONE_MUST_CHECK enum scone_err sec_blob_dup(struct sec_blob *b, const void *p, size_t n);
void sec_item_clear(struct sec_item *it);
/* The item called name among secrets (volume false) or volume keys; NULL if none. */
const struct sec_item *sec_find(const struct scone_secret_set *set, const char *name, bool volume);
const char *sec_kind_name(uint8_t kind);

/* secrets_codec.c: structural rules (name, kind, flags, sizes) every item obeys; MALFORMED. */
SCONE_MUST_CHECK enum scone_err sec_item_check(const struct sec_item *it);

/* secrets_x509.c: every function leaves the OpenSSL error queue empty. */
SCONE_MUST_CHECK enum scone_err sec_key_generate(uint8_t key_type, EVP_PKEY **out);
/* INVALID for a key none of enum scone_key_type describes. */
SCONE_MUST_CHECK enum scone_err sec_key_type_of(const EVP_PKEY *k, uint8_t *out);
SCONE_MUST_CHECK enum scone_err sec_key_to_pkcs8(EVP_PKEY *k, struct sec_blob *out);
SCONE_MUST_CHECK enum scone_err sec_key_to_spki(EVP_PKEY *k, struct sec_blob *out);
SCONE_MUST_CHECK enum scone_err sec_cert_to_der(X509 *x, struct sec_blob *out);
/* secrets_pgp.c: a new OpenPGP key in the stored form (see there); pgp rendering. */
SCONE_MUST_CHECK enum scone_err sec_pgp_generate(struct sec_blob *out);
SCONE_MUST_CHECK enum scone_err sec_pgp_check(const uint8_t *p, size_t n);
/* part: "privatekey" or "publickey"; armored or binary (base64 is the caller's). */
SCONE_MUST_CHECK enum scone_err sec_pgp_render(const struct sec_blob *stored, bool secret, bool armored,
					       struct scone_wbuf *out);

/* Strict DER decoders (the whole input, nothing more): MALFORMED otherwise. */
SCONE_MUST_CHECK enum scone_err sec_key_from_pkcs8(const uint8_t *p, size_t n, EVP_PKEY **out);
SCONE_MUST_CHECK enum scone_err sec_cert_from_der(const uint8_t *p, size_t n, X509 **out);
/*
 * Cheap structural checks for the parser (OpenSSL 3.0 needs 0.1-0.5 ms to
 * decode one key, certificates included): DER of a PKCS#8 / SPKI whose
 * algorithm is key_type's; the outer structure of a certificate.
 */
SCONE_MUST_CHECK enum scone_err sec_pkcs8_check(const uint8_t *p, size_t n, uint8_t key_type);
SCONE_MUST_CHECK enum scone_err sec_spki_check(const uint8_t *p, size_t n, uint8_t key_type);
SCONE_MUST_CHECK enum scone_err sec_cert_check(const uint8_t *p, size_t n);
/* Explicit session values: PEM or DER; INVALID with what in the detail otherwise. */
SCONE_MUST_CHECK enum scone_err sec_key_from_text(const char *what, const char *p, size_t n, bool public_only,
						  EVP_PKEY **out);
/* One or more certificates (PEM, or one DER); *n_out <= 1 + SEC_CHAIN_MAX. */
SCONE_MUST_CHECK enum scone_err sec_certs_from_text(const char *what, const char *p, size_t n, X509 **out,
						    size_t *n_out);

struct sec_cert_req {
	const struct scone_secret *def; /* name, common_name, dns, ips, endpoint, days */
	bool ca;
	EVP_PKEY *key;	      /* the certificate's key (private) */
	X509 *issuer;	      /* NULL: self-signed */
	EVP_PKEY *issuer_key; /* the issuer's private key (ignored if self-signed) */
};
/* The certificate, its key and chain as PKCS#12 DER with the empty password, appended to out. */
SCONE_MUST_CHECK enum scone_err sec_pkcs12(const struct sec_item *it, struct scone_wbuf *out);
/* A new certificate for req (random 16-byte serial); *out owned by the caller. */
SCONE_MUST_CHECK enum scone_err sec_cert_issue(const struct sec_cert_req *req, X509 **out);

#endif
