/*
 * otp.h - one-time passwords as a second factor of a configuration
 * request (SCONE_CONFIG_ID=session/service@CODE): RFC 6238 TOTP with
 * HMAC-SHA-1, 30-second steps, 6 digits, the step before and after
 * accepted for clock skew, and each step's code used at most once per
 * service, recorded in the store (so the rule holds across CAS worker
 * threads and replicas sharing one store).
 */
#ifndef SCONE_CAS_OTP_H
#define SCONE_CAS_OTP_H

#include <stddef.h>
#include <stdint.h>

#include "cas/store.h"
#include "lib/err.h"

#define CAS_OTP_STEP 30
#define CAS_OTP_DIGITS 6
#define CAS_OTP_KEY_MAX 64

/* The code for counter (RFC 4226 HOTP, 6 digits) as text into out[7]. */
void cas_hotp(const uint8_t *key, size_t key_len, uint64_t counter, char out[CAS_OTP_DIGITS + 1]);

/* Decode an expanded secret (base32) into key (at most CAS_OTP_KEY_MAX bytes). */
SCONE_MUST_CHECK enum scone_err cas_otp_key(const char *text, size_t len, uint8_t key[CAS_OTP_KEY_MAX],
					    size_t *key_len);

/*
 * Check code ("" = none given) for session/service at time now against
 * key and record its use in st. ATTESTATION (detail: missing, wrong, or
 * used already) when it does not admit the request; store errors as they
 * are.
 */
SCONE_MUST_CHECK enum scone_err cas_otp_check(struct scone_store *st, const char *session, const char *service,
					      const uint8_t *key, size_t key_len, const char *code, int64_t now);

/* otpauth://totp/... for an authenticator app (issuer "scone", account SESSION/SERVICE) into out. */
SCONE_MUST_CHECK enum scone_err cas_otp_uri(const uint8_t *key, size_t key_len, const char *session,
					    const char *service, char *out, size_t out_size);

#endif
