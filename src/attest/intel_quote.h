/*
 * intel_quote.h - the layout of Intel DCAP ECDSA quotes: SGX quote v3, TDX
 * quote v4 (TD report for TDX 1.0) and v5 (body types 1, 2 and 3). Parsing
 * only: no signature is checked here (intel_verify.c does that). Private to
 * src/attest.
 *
 * The parser follows the lengths inside the quote (body size, signature
 * data length, certification data sizes) and never the buffer size: every
 * declared length must fit and be filled exactly, and bytes after the
 * signature data are refused unless the caller allows zero padding.
 * Layouts: Intel DCAP sgx_quote_3.h, sgx_quote_4.h, sgx_quote_5.h
 * (summarised in docs/attestation.md).
 */
#ifndef SCONE_ATTEST_INTEL_QUOTE_H
#define SCONE_ATTEST_INTEL_QUOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define INTEL_TEE_SGX 0x00000000u
#define INTEL_TEE_TDX 0x00000081u

#define INTEL_BODY_SGX 1  /* sgx_report_body_t, 384 bytes */
#define INTEL_BODY_TD10 2 /* TD report, TDX 1.0, 584 bytes */
#define INTEL_BODY_TD15 3 /* TD report, TDX 1.5, 648 bytes */

#define SGX_REPORT_SIZE 384
#define TD10_REPORT_SIZE 584
#define TD15_REPORT_SIZE 648

/* Offsets in an SGX report body (sgx_report_body_t). */
#define SGX_R_CPUSVN 0
#define SGX_R_MISCSELECT 16
#define SGX_R_ISVEXTPRODID 32
#define SGX_R_ATTRIBUTES 48
#define SGX_R_MRENCLAVE 64
#define SGX_R_MRSIGNER 128
#define SGX_R_CONFIGID 192
#define SGX_R_ISVPRODID 256
#define SGX_R_ISVSVN 258
#define SGX_R_CONFIGSVN 260
#define SGX_R_ISVFAMILYID 304
#define SGX_R_REPORTDATA 320

/* Offsets in a TD report body (TDX 1.0; TDX 1.5 appends the last two). */
#define TD_R_TEE_TCB_SVN 0
#define TD_R_MRSEAM 16
#define TD_R_MRSIGNERSEAM 64
#define TD_R_SEAMATTRIBUTES 112
#define TD_R_TDATTRIBUTES 120
#define TD_R_XFAM 128
#define TD_R_MRTD 136
#define TD_R_MRCONFIGID 184
#define TD_R_MROWNER 232
#define TD_R_MROWNERCONFIG 280
#define TD_R_RTMR0 328
#define TD_R_REPORTDATA 520
#define TD_R_TEE_TCB_SVN2 584
#define TD_R_MRSERVICETD 600

struct intel_quote {
	uint16_t version;	  /* 3, 4, 5 */
	uint32_t tee_type;	  /* INTEL_TEE_SGX / INTEL_TEE_TDX */
	uint16_t qe_svn, pce_svn; /* v3 header only (0 otherwise) */
	const uint8_t *user_data; /* 20 bytes */
	uint16_t body_type;	  /* INTEL_BODY_* */
	const uint8_t *body;	  /* body_size bytes */
	size_t body_size;
	size_t signed_size;	      /* the attestation key signs quote bytes [0, signed_size) */
	const uint8_t *signature;     /* 64: r||s, big-endian */
	const uint8_t *attest_key;    /* 64: P-256 x||y */
	const uint8_t *qe_report;     /* 384: the quoting enclave's report */
	const uint8_t *qe_report_sig; /* 64: r||s by the PCK key */
	const uint8_t *qe_auth;	      /* qe_auth_size bytes */
	uint16_t qe_auth_size;
	const uint8_t *pck_chain; /* PEM text of the PCK certificate chain */
	uint32_t pck_chain_size;
	size_t size; /* bytes the quote occupies */
};

/*
 * Parse quote bytes (untrusted). Views in *q point into quote. With
 * allow_padding, bytes after the quote are accepted if all are zero
 * (evidence recorded in a fixed-size buffer); otherwise any byte after
 * the signature data is refused. MALFORMED / UNSUPPORTED / TOO_LARGE with
 * the field and offset.
 */
SCONE_MUST_CHECK enum scone_err intel_quote_parse(const uint8_t *quote, size_t size, bool allow_padding,
						  struct intel_quote *q);

#endif
