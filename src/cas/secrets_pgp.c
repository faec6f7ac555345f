/*
 * secrets_pgp.c - SCONE's pgp-key secrets (0.3.10): an OpenPGP version 4
 * key (RFC 4880) of a primary EdDSA Ed25519 signing key and an ECDH
 * Curve25519 encryption subkey (RFC 6637, the curves as GnuPG writes them),
 * a random user ID that is no email address, and AES-256, SHA-256 and ZLIB
 * as preferred algorithms - what SCONE documents it generates.
 *
 * Stored form (the item's value, sealed with the other secrets):
 *   u32 creation time (big-endian), 32-byte Ed25519 seed, 32-byte X25519
 *   scalar (clamped, native little-endian), u8 user ID length, user ID.
 * The packets are built from it each time they are rendered; Ed25519
 * signatures are deterministic, so every rendering is byte-identical.
 *
 * Rendered: the transferable secret key (secret-key, user ID, positive
 * certification, secret-subkey, subkey binding) or the public key (the
 * same with public packets), binary or ASCII-armored with its CRC-24, as
 * `gpg --export-secret-keys` / `gpg --export` write them. Secret material is
 * unencrypted (S2K usage 0), as the key is handed to the service only.
 */
#include "secrets_internal.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/crypto.h"
#include "lib/hex.h"

#define PGP_SEED 32
#define PGP_UID_MAX 64
#define PGP_STORED_MIN (4 + 2 * PGP_SEED + 1 + 1)
#define PGP_PACKETS_MAX 2048 /* the whole key, either form */

enum {
	TAG_SIG = 2,
	TAG_SECKEY = 5,
	TAG_PUBKEY = 6,
	TAG_SECSUB = 7,
	TAG_UID = 13,
	TAG_PUBSUB = 14,
	ALG_ECDH = 18,
	ALG_EDDSA = 22,
	HASH_SHA256 = 8,
	SYM_AES256 = 9,
	COMP_ZLIB = 2,
};

/* 1.3.6.1.4.1.11591.15.1 (Ed25519) and 1.3.6.1.4.1.3029.1.5.1 (Curve25519), as OpenPGP writes OIDs. */
static const uint8_t oid_ed25519[] = {0x2B, 0x06, 0x01, 0x04, 0x01, 0xDA, 0x47, 0x0F, 0x01};
static const uint8_t oid_cv25519[] = {0x2B, 0x06, 0x01, 0x04, 0x01, 0x97, 0x55, 0x01, 0x05, 0x01};

struct pgp_key {
	uint32_t created;
	uint8_t ed_seed[PGP_SEED], ed_pub[PGP_SEED];
	uint8_t cv_secret[PGP_SEED], cv_pub[PGP_SEED]; /* cv_secret little-endian (X25519's order) */
	char uid[PGP_UID_MAX + 1];
	size_t uid_len;
};

/* A small output buffer: the key is far below PGP_PACKETS_MAX. */
struct pbuf {
	uint8_t b[PGP_PACKETS_MAX];
	size_t n;
	bool over;
};

static void put(struct pbuf *p, const void *v, size_t n)
{
	if (p->over || n > sizeof(p->b) - p->n) {
		p->over = true;
		return;
	}
	memcpy(p->b + p->n, v, n);
	p->n += n;
}

static void put_u8(struct pbuf *p, uint8_t v)
{
	put(p, &v, 1);
}

static void put_u16(struct pbuf *p, size_t v)
{
	uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
	put(p, b, 2);
}

static void put_u32(struct pbuf *p, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	put(p, b, 4);
}

/* An MPI: bit count then the big-endian bytes without leading zeros. */
static void put_mpi(struct pbuf *p, const uint8_t *v, size_t n)
{
	size_t bits;

	while (n && *v == 0)
		v++, n--;
	bits = n ? 8 * (n - 1) : 0;
	for (uint8_t top = n ? v[0] : 0; top; top >>= 1)
		bits++;
	put_u16(p, bits);
	put(p, v, n);
}

/* 0x40 then the 32 bytes: the native point encoding OpenPGP uses for these curves. */
static void put_point(struct pbuf *p, const uint8_t pub[PGP_SEED])
{
	uint8_t pt[1 + PGP_SEED] = {0x40};

	memcpy(pt + 1, pub, PGP_SEED);
	put_mpi(p, pt, sizeof(pt));
}

static void put_header(struct pbuf *p, int tag, size_t len)
{
	put_u8(p, (uint8_t)(0xC0 | tag)); /* new format */
	if (len < 192) {
		put_u8(p, (uint8_t)len);
	} else if (len < 8384) {
		put_u8(p, (uint8_t)(((len - 192) >> 8) + 192));
		put_u8(p, (uint8_t)(len - 192));
	} else {
		put_u8(p, 0xFF);
		put_u32(p, (uint32_t)len);
	}
}

static void put_packet(struct pbuf *p, int tag, const struct pbuf *body)
{
	put_header(p, tag, body->n);
	put(p, body->b, body->n);
	p->over |= body->over;
}

/* The public part of a key packet: version, time, algorithm, curve, point (and KDF for ECDH). */
static void key_body(struct pbuf *p, const struct pgp_key *k, bool sub)
{
	put_u8(p, 4);
	put_u32(p, k->created);
	put_u8(p, sub ? ALG_ECDH : ALG_EDDSA);
	put_u8(p, (uint8_t)(sub ? sizeof(oid_cv25519) : sizeof(oid_ed25519)));
	put(p, sub ? oid_cv25519 : oid_ed25519, sub ? sizeof(oid_cv25519) : sizeof(oid_ed25519));
	put_point(p, sub ? k->cv_pub : k->ed_pub);
	if (sub) {
		static const uint8_t kdf[] = {3, 1, HASH_SHA256, SYM_AES256};
		put(p, kdf, sizeof(kdf));
	}
}

/* The secret part: S2K usage 0, the secret as an MPI, its two-byte checksum. */
static void secret_tail(struct pbuf *p, const struct pgp_key *k, bool sub)
{
	uint8_t be[PGP_SEED];
	struct pbuf mpi = {.n = 0};
	unsigned sum = 0;

	if (sub)
		for (size_t i = 0; i < PGP_SEED; i++)
			be[i] = k->cv_secret[PGP_SEED - 1 - i]; /* OpenPGP stores Curve25519 big-endian */
	else
		memcpy(be, k->ed_seed, PGP_SEED);
	put_mpi(&mpi, be, PGP_SEED);
	for (size_t i = 0; i < mpi.n; i++)
		sum += mpi.b[i];
	put_u8(p, 0);
	put(p, mpi.b, mpi.n);
	put_u16(p, sum & 0xFFFF);
	scone_wipe(be, sizeof(be));
	scone_wipe(&mpi, sizeof(mpi));
}

static bool sha1(const uint8_t *in, size_t n, uint8_t out[20])
{
	unsigned int len = 0;

	return EVP_Digest(in, n, out, &len, EVP_sha1(), NULL) == 1 && len == 20;
}

/* v4 fingerprint: SHA-1 of 0x99, the body's length and the public key body. */
static bool fingerprint(const struct pgp_key *k, bool sub, uint8_t out[20])
{
	struct pbuf body = {.n = 0}, in = {.n = 0};

	key_body(&body, k, sub);
	put_u8(&in, 0x99);
	put_u16(&in, body.n);
	put(&in, body.b, body.n);
	return !in.over && sha1(in.b, in.n, out);
}

static enum scone_err ed25519_sign(const struct pgp_key *k, const uint8_t *msg, size_t n, uint8_t sig[64])
{
	EVP_PKEY *key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, k->ed_seed, PGP_SEED);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	size_t len = 64;
	bool ok = key && md && EVP_DigestSignInit(md, NULL, NULL, NULL, key) == 1 &&
		  EVP_DigestSign(md, sig, &len, msg, n) == 1 && len == 64;

	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key);
	ERR_clear_error();
	return ok ? SCONE_ERR_OK : scone_err_set(SCONE_ERR_CRYPTO, "pgp-key: Ed25519 signature failed");
}

/*
 * A signature packet by the primary key: type 0x13 over the user ID
 * (self-certification with preferences) or 0x18 over the subkey (binding).
 */
static enum scone_err signature(struct pbuf *out, const struct pgp_key *k, bool binding)
{
	uint8_t fpr[20], digest[32], sig[64];
	struct pbuf hashed = {.n = 0}, sigdata = {.n = 0}, msg = {.n = 0}, key = {.n = 0}, body = {.n = 0};
	unsigned int dlen = 0;
	enum scone_err err;

	if (!fingerprint(k, false, fpr))
		return scone_err_set(SCONE_ERR_CRYPTO, "pgp-key: fingerprint failed");
	put_u8(&hashed, 5), put_u8(&hashed, 2), put_u32(&hashed, k->created);		 /* creation time */
	put_u8(&hashed, 2), put_u8(&hashed, 27), put_u8(&hashed, binding ? 0x0C : 0x03); /* key flags */
	if (!binding) {
		put_u8(&hashed, 2), put_u8(&hashed, 11), put_u8(&hashed, SYM_AES256);
		put_u8(&hashed, 2), put_u8(&hashed, 21), put_u8(&hashed, HASH_SHA256);
		put_u8(&hashed, 2), put_u8(&hashed, 22), put_u8(&hashed, COMP_ZLIB);
		put_u8(&hashed, 2), put_u8(&hashed, 30), put_u8(&hashed, 0x01); /* features: MDC */
	}
	put_u8(&hashed, 22), put_u8(&hashed, 33), put_u8(&hashed, 4), put(&hashed, fpr, 20); /* issuer fpr */
	put_u8(&sigdata, 4), put_u8(&sigdata, binding ? 0x18 : 0x13), put_u8(&sigdata, ALG_EDDSA);
	put_u8(&sigdata, HASH_SHA256), put_u16(&sigdata, hashed.n), put(&sigdata, hashed.b, hashed.n);
	/* what is hashed: the primary key, the user ID or subkey, the signature data, the trailer */
	key_body(&key, k, false);
	put_u8(&msg, 0x99), put_u16(&msg, key.n), put(&msg, key.b, key.n);
	if (binding) {
		struct pbuf sub = {.n = 0};
		key_body(&sub, k, true);
		put_u8(&msg, 0x99), put_u16(&msg, sub.n), put(&msg, sub.b, sub.n);
	} else {
		put_u8(&msg, 0xB4), put_u32(&msg, (uint32_t)k->uid_len), put(&msg, k->uid, k->uid_len);
	}
	put(&msg, sigdata.b, sigdata.n);
	put_u8(&msg, 4), put_u8(&msg, 0xFF), put_u32(&msg, (uint32_t)sigdata.n);
	if (msg.over || hashed.over || EVP_Digest(msg.b, msg.n, digest, &dlen, EVP_sha256(), NULL) != 1)
		return scone_err_set(SCONE_ERR_CRYPTO, "pgp-key: hashing the signature data failed");
	if ((err = ed25519_sign(k, digest, sizeof(digest), sig)))
		return err;
	put(&body, sigdata.b, sigdata.n);
	put_u16(&body, 10), put_u8(&body, 9), put_u8(&body, 16),
	    put(&body, fpr + 12, 8); /* unhashed: issuer */
	put(&body, digest, 2);
	put_mpi(&body, sig, 32);
	put_mpi(&body, sig + 32, 32);
	put_packet(out, TAG_SIG, &body);
	return SCONE_ERR_OK;
}

static void key_packet(struct pbuf *out, const struct pgp_key *k, bool sub, bool secret)
{
	struct pbuf body = {.n = 0};

	key_body(&body, k, sub);
	if (secret)
		secret_tail(&body, k, sub);
	put_packet(out, secret ? (sub ? TAG_SECSUB : TAG_SECKEY) : (sub ? TAG_PUBSUB : TAG_PUBKEY), &body);
	scone_wipe(&body, sizeof(body));
}

static enum scone_err packets(const struct pgp_key *k, bool secret, struct pbuf *out)
{
	struct pbuf uid = {.n = 0};

	key_packet(out, k, false, secret);
	put(&uid, k->uid, k->uid_len);
	put_packet(out, TAG_UID, &uid);
	SCONE_TRY(signature(out, k, false));
	key_packet(out, k, true, secret);
	SCONE_TRY(signature(out, k, true));
	return out->over
		   ? scone_err_set(SCONE_ERR_LIMIT, "pgp-key: the key does not fit %d bytes", PGP_PACKETS_MAX)
		   : SCONE_ERR_OK;
}

/* ---- stored form ---- */

static bool uid_ok(const uint8_t *u, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (u[i] < 0x20 || u[i] > 0x7E || u[i] == '@')
			return false;
	return n >= 1 && n <= PGP_UID_MAX;
}

enum scone_err sec_pgp_check(const uint8_t *p, size_t n)
{
	if (n < PGP_STORED_MIN || n != PGP_STORED_MIN - 1 + (size_t)p[4 + 2 * PGP_SEED] ||
	    !uid_ok(p + PGP_STORED_MIN - 1, p[4 + 2 * PGP_SEED]))
		return scone_err_set(SCONE_ERR_MALFORMED, "a pgp-key value of %zu bytes is not a stored key",
				     n);
	return SCONE_ERR_OK;
}

/* Public halves from the secrets (X25519 and Ed25519 through OpenSSL). */
static enum scone_err load_key(const struct sec_blob *stored, struct pgp_key *k)
{
	const uint8_t *p = stored->p;
	EVP_PKEY *ed, *cv;
	size_t a = PGP_SEED, b = PGP_SEED;
	bool ok;

	SCONE_TRY(sec_pgp_check(p, stored->n));
	memset(k, 0, sizeof(*k));
	k->created = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	memcpy(k->ed_seed, p + 4, PGP_SEED);
	memcpy(k->cv_secret, p + 4 + PGP_SEED, PGP_SEED);
	k->uid_len = p[4 + 2 * PGP_SEED];
	memcpy(k->uid, p + PGP_STORED_MIN - 1, k->uid_len);
	ed = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, k->ed_seed, PGP_SEED);
	cv = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, k->cv_secret, PGP_SEED);
	ok = ed && cv && EVP_PKEY_get_raw_public_key(ed, k->ed_pub, &a) == 1 &&
	     EVP_PKEY_get_raw_public_key(cv, k->cv_pub, &b) == 1 && a == PGP_SEED && b == PGP_SEED;
	EVP_PKEY_free(ed);
	EVP_PKEY_free(cv);
	ERR_clear_error();
	if (!ok) {
		scone_wipe(k, sizeof(*k));
		return scone_err_set(SCONE_ERR_CRYPTO, "pgp-key: deriving the public keys failed");
	}
	return SCONE_ERR_OK;
}

enum scone_err sec_pgp_generate(struct sec_blob *out)
{
	uint8_t rnd[2 * PGP_SEED + 8];
	char uid[4 + 2 * 8 + 1] = "key-";
	uint32_t now = (uint32_t)time(NULL);
	size_t uid_len;

	SCONE_TRY(scone_random(rnd, sizeof(rnd)));
	/* X25519 clamping, as GnuPG stores the scalar */
	rnd[PGP_SEED] &= 248;
	rnd[2 * PGP_SEED - 1] = (uint8_t)((rnd[2 * PGP_SEED - 1] & 127) | 64);
	scone_hex_encode(uid + 4, sizeof(uid) - 4, rnd + 2 * PGP_SEED, 8);
	uid_len = strlen(uid);
	if (sec_blob_dup(out, NULL, PGP_STORED_MIN - 1 + uid_len) != SCONE_ERR_OK) {
		scone_wipe(rnd, sizeof(rnd));
		return SCONE_ERR_NOMEM;
	}
	out->p[0] = (uint8_t)(now >> 24), out->p[1] = (uint8_t)(now >> 16);
	out->p[2] = (uint8_t)(now >> 8), out->p[3] = (uint8_t)now;
	memcpy(out->p + 4, rnd, 2 * PGP_SEED);
	out->p[4 + 2 * PGP_SEED] = (uint8_t)uid_len;
	memcpy(out->p + PGP_STORED_MIN - 1, uid, uid_len);
	scone_wipe(rnd, sizeof(rnd));
	return SCONE_ERR_OK;
}

/* ---- rendering ---- */

static uint32_t crc24(const uint8_t *p, size_t n)
{
	uint32_t crc = 0xB704CE;

	for (size_t i = 0; i < n; i++) {
		crc ^= (uint32_t)p[i] << 16;
		for (int b = 0; b < 8; b++) {
			crc <<= 1;
			if (crc & 0x1000000)
				crc ^= 0x1864CFB;
		}
	}
	return crc & 0xFFFFFF;
}

static enum scone_err armor(struct scone_wbuf *out, const struct pbuf *bin, bool secret)
{
	const char *what = secret ? "PRIVATE" : "PUBLIC";
	unsigned char line[65], crc[3], crc64[5];
	uint32_t c = crc24(bin->b, bin->n);
	char head[64];

	snprintf(head, sizeof(head), "-----BEGIN PGP %s KEY BLOCK-----\n\n", what);
	SCONE_TRY(scone_wbuf_put(out, head, strlen(head)));
	for (size_t off = 0; off < bin->n; off += 48) {
		int k = (int)(bin->n - off < 48 ? bin->n - off : 48);
		int len = EVP_EncodeBlock(line, bin->b + off, k);
		SCONE_TRY(scone_wbuf_put(out, line, (size_t)len));
		SCONE_TRY(scone_wbuf_u8(out, '\n'));
	}
	crc[0] = (uint8_t)(c >> 16), crc[1] = (uint8_t)(c >> 8), crc[2] = (uint8_t)c;
	EVP_EncodeBlock(crc64, crc, 3);
	SCONE_TRY(scone_wbuf_u8(out, '='));
	SCONE_TRY(scone_wbuf_put(out, crc64, 4));
	snprintf(head, sizeof(head), "\n-----END PGP %s KEY BLOCK-----\n", what);
	scone_wipe(line, sizeof(line));
	return scone_wbuf_put(out, head, strlen(head));
}

enum scone_err sec_pgp_render(const struct sec_blob *stored, bool secret, bool armored,
			      struct scone_wbuf *out)
{
	struct pgp_key k;
	struct pbuf *bin = calloc(1, sizeof(*bin));
	enum scone_err err;

	if (!bin)
		return scone_err_set(SCONE_ERR_NOMEM, "pgp-key");
	err = load_key(stored, &k);
	if (!err)
		err = packets(&k, secret, bin);
	if (!err)
		err = armored ? armor(out, bin, secret) : scone_wbuf_put(out, bin->b, bin->n);
	scone_wipe(&k, sizeof(k));
	scone_wipe(bin, sizeof(*bin));
	free(bin);
	return err;
}
