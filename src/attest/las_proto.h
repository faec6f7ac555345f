/*
 * las_proto.h - the Local Attestation Service's wire (docs/attestation.md,
 * "The LAS protocol"): a runtime's request over the LAS unix socket, the
 * LAS's answer (a signed report or a refusal with its reason), and the
 * report itself, which is the `las` evidence CAS verifies.
 *
 * Every message is a frame: "SLAS", version 1, a kind byte, two zero bytes
 * and the body's size (u32 LE), then the body. All integers are little
 * endian. Decoders read untrusted bytes through the bounded reader, take
 * exactly the bytes a layout names (no trailing bytes) and name the field
 * that fails. Shared by the runtime (libc + libcrypto only), scone-las and
 * CAS.
 */
#ifndef SCONE_ATTEST_LAS_PROTO_H
#define SCONE_ATTEST_LAS_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "attest/attest.h"
#include "lib/buf.h"
#include "lib/err.h"

#define SCONE_LAS_DEFAULT_ADDR "unix:/run/scone/las.sock"
#define SCONE_LAS_VERSION 1
#define SCONE_LAS_HEADER_SIZE 12
#define SCONE_LAS_BODY_MAX 4096     /* no LAS message is larger */
#define SCONE_LAS_REQUEST_SIZE 104  /* report data 64, exec binding 32, runtime address 8 */
#define SCONE_LAS_TEXT_MAX 480      /* cgroup and exe paths in a report, a refusal's reason */
#define SCONE_LAS_KEY_SIZE 32       /* Ed25519 public key */
#define SCONE_LAS_SIG_SIZE 64       /* Ed25519 signature */

enum scone_las_kind {
	SCONE_LAS_MSG_REQUEST = 1,
	SCONE_LAS_MSG_REPORT = 2,
	SCONE_LAS_MSG_REFUSAL = 3,
};

/* What a runtime asks for. */
struct scone_las_request {
	uint8_t report_data[SCONE_REPORT_DATA_SIZE];
	/* SHA-256("scone-las exec v1" || the 16 AT_RANDOM bytes the kernel gave the caller's image) */
	uint8_t exec_binding[32];
	uint64_t runtime_addr; /* an address in the caller's runtime code: names its runtime measurement */
};

/* What the LAS saw and signed. Strings are NUL-terminated, at most SCONE_LAS_TEXT_MAX bytes. */
struct scone_las_report {
	int64_t time; /* unix seconds, the LAS host's clock */
	uint8_t measurement[32];
	uint8_t runtime_measurement[32]; /* SHA-256 of the file holding runtime_addr; zero if none */
	uint8_t report_data[SCONE_REPORT_DATA_SIZE];
	uint32_t uid, gid, pid;
	uint32_t files;     /* distinct code files measured */
	uint32_t anon_exec; /* executable mappings without a file (JIT code): counted, not measured */
	uint8_t report_id[16];
	char cgroup[SCONE_LAS_TEXT_MAX + 1];
	char exe[SCONE_LAS_TEXT_MAX + 1];
	uint8_t las_key[SCONE_LAS_KEY_SIZE];
	uint8_t signature[SCONE_LAS_SIG_SIZE];
};

/* Append a frame of kind around body to out. */
SCONE_MUST_CHECK enum scone_err scone_las_frame(enum scone_las_kind kind, const uint8_t *body, size_t size,
						struct scone_wbuf *out);
/*
 * Parse a frame header (SCONE_LAS_HEADER_SIZE bytes): *kind and the body
 * size that follows (at most SCONE_LAS_BODY_MAX).
 */
SCONE_MUST_CHECK enum scone_err scone_las_header(const uint8_t hdr[SCONE_LAS_HEADER_SIZE], enum scone_las_kind *kind,
						 size_t *body_size);

void scone_las_request_encode(const struct scone_las_request *r, uint8_t out[SCONE_LAS_REQUEST_SIZE]);
SCONE_MUST_CHECK enum scone_err scone_las_request_decode(const uint8_t *body, size_t size, struct scone_las_request *out);

/* The report's bytes up to (not including) the signature: what the LAS signs. */
SCONE_MUST_CHECK enum scone_err scone_las_report_tbs(const struct scone_las_report *r, struct scone_wbuf *out);
/* The whole report (tbs || signature): the evidence bytes. */
SCONE_MUST_CHECK enum scone_err scone_las_report_encode(const struct scone_las_report *r, struct scone_wbuf *out);
/*
 * Parse a report (untrusted) without checking its signature; *tbs_size is
 * the number of signed bytes at the start of in.
 */
SCONE_MUST_CHECK enum scone_err scone_las_report_decode(const uint8_t *in, size_t size, struct scone_las_report *out,
							size_t *tbs_size);
/* Check the Ed25519 signature of a decoded report over in[0..tbs_size): AUTH when it fails. */
SCONE_MUST_CHECK enum scone_err scone_las_report_check_sig(const struct scone_las_report *r, const uint8_t *in,
							   size_t tbs_size);
/* The platform id of a LAS: SHA-256 of its raw Ed25519 public key. */
void scone_las_platform_id(const uint8_t key[SCONE_LAS_KEY_SIZE], uint8_t out[32]);

/* A refusal: an error code (enum scone_err) and a reason for the caller (printable ASCII). */
SCONE_MUST_CHECK enum scone_err scone_las_refusal_encode(enum scone_err code, const char *reason, struct scone_wbuf *out);
SCONE_MUST_CHECK enum scone_err scone_las_refusal_decode(const uint8_t *body, size_t size, enum scone_err *code,
							 char reason[SCONE_LAS_TEXT_MAX + 1]);

/*
 * "unix:PATH" (NULL or "" = SCONE_LAS_DEFAULT_ADDR) into path; INVALID for
 * anything else (the LAS listens on a unix socket only: over TCP it could
 * not tell who its caller is).
 */
SCONE_MUST_CHECK enum scone_err scone_las_addr_path(const char *addr, char *path, size_t path_size);

/* SHA-256("scone-las exec v1" || random16): the exec binding of an image with AT_RANDOM bytes random16. */
void scone_las_exec_binding(const uint8_t random16[16], uint8_t out[32]);

#endif
