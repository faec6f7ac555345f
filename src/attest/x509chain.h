/*
 * x509chain.h - certificates from vendor evidence and collateral: strict
 * PEM chains, single certificates and CRLs (DER or PEM), chain
 * verification to one pinned anchor at a caller-chosen time, and raw
 * extension values. Private to src/attest.
 *
 * Every function names what it was checking in its error detail; errors
 * are MALFORMED (does not parse), UNTRUSTED (does not chain to the anchor,
 * revoked), EXPIRED (outside its validity at the verification time).
 */
#ifndef SCONE_ATTEST_X509CHAIN_H
#define SCONE_ATTEST_X509CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "lib/buf.h"

#define X509_CHAIN_MAX 4

/*
 * A concatenation of PEM certificates, nothing else: blocks separated by
 * newlines, optionally ending with one NUL byte (as Intel's quote
 * generation writes it). 1..max certificates; *out owned by the caller.
 */
SCONE_MUST_CHECK enum scone_err x509_pem_chain(const uint8_t *pem, size_t size, size_t max, const char *what,
					       STACK_OF(X509) * *out);

/* One certificate, DER or PEM; the input must hold it and nothing else. */
SCONE_MUST_CHECK enum scone_err x509_parse_one(const uint8_t *data, size_t size, const char *what,
					       X509 **out);

/* One CRL, DER or PEM; the input must hold it and nothing else. */
SCONE_MUST_CHECK enum scone_err x509_crl_parse(const uint8_t *data, size_t size, const char *what,
					       X509_CRL **out);

/* For x509_verify_chain: check signatures and extensions only (validity is checked later, per use). */
#define X509_NO_TIME INT64_MIN

/*
 * Verify leaf up to anchor, the only trusted certificate (a self-signed
 * root, or an intermediate verified earlier: then the chain may end at
 * it), with the certificates in untrusted (may be NULL) as candidates for
 * the path, every validity period checked at the unix time at (unless
 * X509_NO_TIME). strict: RFC 5280 profile checks as well (X509_V_FLAG_
 * X509_STRICT; Intel's certificates pass them, AMD's VCEKs lack an
 * authority key identifier and do not).
 */
SCONE_MUST_CHECK enum scone_err x509_verify_chain(X509 *leaf, STACK_OF(X509) * untrusted, X509 *anchor,
						  int64_t at, bool strict, const char *what);

/*
 * Check a CRL: signed by issuer's key, issued by issuer's subject, and
 * current at time at (thisUpdate <= at <= nextUpdate; EXPIRED otherwise,
 * the detail says to fetch fetch_hint). X509_NO_TIME: signature and
 * issuer only.
 */
SCONE_MUST_CHECK enum scone_err x509_crl_check(X509_CRL *crl, X509 *issuer, int64_t at, const char *what,
					       const char *fetch_hint);

/* The dates part of x509_crl_check alone: thisUpdate <= at <= nextUpdate (EXPIRED naming fetch_hint). */
SCONE_MUST_CHECK enum scone_err x509_crl_current(X509_CRL *crl, int64_t at, const char *what,
						 const char *fetch_hint);

/* Is cert listed in crl? (The caller checked that crl is cert's issuer's.) */
bool x509_crl_lists(X509_CRL *crl, X509 *cert);

/*
 * The value (the bytes inside extnValue) of the extension with the dotted
 * OID, which must occur at most once: *present false when absent.
 */
SCONE_MUST_CHECK enum scone_err x509_ext_value(X509 *c, const char *oid, const char *what,
					       struct scone_rbuf *out, bool *present);

/* The subject's common name into out ("?" if none). */
void x509_cn(X509 *c, char *out, size_t size);
/* The issuer's common name into out ("?" if none). */
void x509_issuer_cn(X509 *c, char *out, size_t size);

/* An ASN.1 time as unix seconds. */
SCONE_MUST_CHECK enum scone_err x509_time(const ASN1_TIME *t, int64_t *out);

/*
 * The intersection of the validity periods of the certificates in chain
 * (and extra, if not NULL): [*not_before, *not_after].
 */
SCONE_MUST_CHECK enum scone_err x509_validity(STACK_OF(X509) * chain, X509 *extra, int64_t *not_before,
					      int64_t *not_after);

/* EXPIRED (naming what and the window) unless not_before <= at <= not_after. */
SCONE_MUST_CHECK enum scone_err x509_check_window(int64_t not_before, int64_t not_after, int64_t at,
						  const char *what);

/* SHA-256 of the DER encoding. */
SCONE_MUST_CHECK enum scone_err x509_sha256(X509 *c, uint8_t out[32]);

#endif
