/*
 * otp.c - TOTP (RFC 6238 over RFC 4226 HOTP) for CAS: codes, the check
 * with its once-per-service record in the store, and provisioning URIs.
 */
#include "cas/otp.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "lib/base32.h"
#include "lib/crypto.h"
#include "lib/hex.h"

void cas_hotp(const uint8_t *key, size_t key_len, uint64_t counter, char out[CAS_OTP_DIGITS + 1])
{
	uint8_t msg[8], mac[EVP_MAX_MD_SIZE];
	unsigned mac_len = 0, off;
	uint32_t bin;

	for (int i = 7; i >= 0; i--, counter >>= 8)
		msg[i] = (uint8_t)counter;
	if (!HMAC(EVP_sha1(), key, (int)key_len, msg, sizeof(msg), mac, &mac_len) || mac_len != 20) {
		memset(out, 'x', CAS_OTP_DIGITS); /* matches no code: only digits are accepted */
		out[CAS_OTP_DIGITS] = '\0';
		return;
	}
	off = mac[19] & 0x0f;
	bin = (uint32_t)(mac[off] & 0x7f) << 24 | (uint32_t)mac[off + 1] << 16 | (uint32_t)mac[off + 2] << 8 |
	      mac[off + 3];
	snprintf(out, CAS_OTP_DIGITS + 1, "%06" PRIu32, bin % 1000000u);
	scone_wipe(mac, sizeof(mac));
}

enum scone_err cas_otp_key(const char *text, size_t len, uint8_t key[CAS_OTP_KEY_MAX], size_t *key_len)
{
	enum scone_err err = scone_base32_decode(text, len, key, CAS_OTP_KEY_MAX, key_len, "one-time password secret");

	if (!err && *key_len < 16)
		err = scone_err_set(SCONE_ERR_INVALID, "one-time password secret: %zu bytes, at least 16", *key_len);
	return err;
}

enum scone_err cas_otp_check(struct scone_store *st, const char *session, const char *service, const uint8_t *key,
			     size_t key_len, const char *code, int64_t now)
{
	uint64_t step = (uint64_t)now / CAS_OTP_STEP;
	char want[CAS_OTP_DIGITS + 1], record[65 + 24], who[2 * 130];
	uint8_t id[32];
	enum scone_err err;

	if (!code || !code[0])
		return scone_err_set(SCONE_ERR_ATTESTATION,
				     "one-time password missing: service %s/%s requires one (SCONE_CONFIG_ID=%s/%s@CODE)",
				     session, service, session, service);
	for (uint64_t c = step - 1; c <= step + 1; c++) {
		cas_hotp(key, key_len, c, want);
		if (!scone_ct_equal(want, code, CAS_OTP_DIGITS + 1))
			continue;
		scone_wipe(want, sizeof(want));
		/* The record names the service by a hash, so that it stays short for any store. */
		snprintf(who, sizeof(who), "%s/%s", session, service);
		scone_sha256(who, strlen(who), id);
		scone_hex_encode(record, 65, id, 32);
		snprintf(record + 64, sizeof(record) - 64, "@%" PRIu64, c);
		err = st->ops->use_once(st, "otp", record, (int64_t)(c + 2) * CAS_OTP_STEP);
		if (err == SCONE_ERR_CONFLICT)
			return scone_err_set(SCONE_ERR_ATTESTATION,
					     "one-time password already used: each code admits one start of %s/%s (wait "
					     "for the next code)",
					     session, service);
		return err;
	}
	scone_wipe(want, sizeof(want));
	return scone_err_set(SCONE_ERR_ATTESTATION, "one-time password is wrong (or the clocks differ by more than 30 s)");
}

/* Percent-encode the account label (RFC 3986 unreserved kept). */
static void label(const char *s, char *out, size_t size)
{
	size_t k = 0;

	for (; *s && k + 4 < size; s++) {
		unsigned char ch = (unsigned char)*s;
		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || strchr("-._~", ch))
			out[k++] = (char)ch;
		else
			k += (size_t)snprintf(out + k, size - k, "%%%02X", ch);
	}
	out[k] = '\0';
}

enum scone_err cas_otp_uri(const uint8_t *key, size_t key_len, const char *session, const char *service,
			   char *out, size_t out_size)
{
	char b32[2 * CAS_OTP_KEY_MAX], account[4 * 260], name[270];
	int n;

	snprintf(name, sizeof(name), "%s/%s", session, service);
	label(name, account, sizeof(account));
	scone_base32_encode(b32, sizeof(b32), key, key_len);
	n = snprintf(out, out_size,
		     "otpauth://totp/scone:%s?secret=%s&issuer=scone&algorithm=SHA1&digits=%d&period=%d", account, b32,
		     CAS_OTP_DIGITS, CAS_OTP_STEP);
	scone_wipe(b32, sizeof(b32));
	if (n < 0 || (size_t)n >= out_size)
		return scone_err_set(SCONE_ERR_TOO_LARGE, "otpauth URI longer than %zu bytes", out_size);
	return SCONE_ERR_OK;
}
