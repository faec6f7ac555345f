/*
 * attest.h - evidence and claims: one interface for every evidence type.
 *
 * An evidence type is a row of a table (attest.c): a name, a collect
 * function (runtime side: produce evidence that binds 64 bytes of report
 * data) and a verify function (CAS side: check the evidence to its root of
 * trust and turn it into claims). Each type lives in its own file
 * (attest_none.c, attest_las.c, attest_sgx.c, attest_tdx.c, attest_snp.c);
 * a new type adds a file and a row, nothing else.
 *
 * Verification answers only "is this evidence authentic, and what does it
 * say": the claims. Whether the claims satisfy a session (measurements,
 * platforms, debug, TCB status) is decided by the policy matcher, which
 * sees claims only, never evidence bytes.
 *
 * Report data binding (every type): report_data[0..32) is the SHA-256 of
 * the DER SubjectPublicKeyInfo of the TLS client key the runtime presents
 * to CAS; report_data[32..64) is the freshness element (see
 * docs/attestation.md). CAS compares both before it releases anything.
 *
 * Links only libc, libcrypto and src/lib: the runtime links it.
 */
#ifndef SCONE_ATTEST_H
#define SCONE_ATTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/err.h"

#define SCONE_REPORT_DATA_SIZE 64
#define SCONE_EVIDENCE_MAX (64u * 1024) /* bytes of evidence accepted by any verifier */

enum scone_evidence_type {
	SCONE_EVIDENCE_NONE = 0,
	SCONE_EVIDENCE_LAS,
	SCONE_EVIDENCE_SGX,
	SCONE_EVIDENCE_TDX,
	SCONE_EVIDENCE_SNP,
};

/* Intel's TCB statuses (AMD has none: UP_TO_DATE when the chain verifies). */
#define SCONE_TCB_STATUSES(X)                                                                                \
	X(UNKNOWN, "Unknown")                                                                                \
	X(UP_TO_DATE, "UpToDate")                                                                            \
	X(SW_HARDENING_NEEDED, "SWHardeningNeeded")                                                          \
	X(CONFIGURATION_NEEDED, "ConfigurationNeeded")                                                       \
	X(CONFIGURATION_AND_SW_HARDENING_NEEDED, "ConfigurationAndSWHardeningNeeded")                        \
	X(OUT_OF_DATE, "OutOfDate")                                                                          \
	X(OUT_OF_DATE_CONFIGURATION_NEEDED, "OutOfDateConfigurationNeeded")                                  \
	X(REVOKED, "Revoked")                                                                                \
	X(TD_RELAUNCH_ADVISED, "TDRelaunchAdvised")                                                          \
	X(TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED, "TDRelaunchAdvisedConfigurationNeeded")

enum scone_tcb_status {
#define SCONE_TCB_ENUM(name, text) SCONE_TCB_##name,
	SCONE_TCB_STATUSES(SCONE_TCB_ENUM)
#undef SCONE_TCB_ENUM
};

/* "UpToDate" ...; "Unknown" for values out of range. */
const char *scone_tcb_status_name(enum scone_tcb_status s);
/* Parse Intel's spelling; INVALID (detail names it) for anything else. */
SCONE_MUST_CHECK enum scone_err scone_tcb_status_parse(const char *text, enum scone_tcb_status *out);

#define SCONE_CLAIM_MAX_EXTRAS 32
#define SCONE_CLAIM_NAME_MAX 24
#define SCONE_CLAIM_VALUE_MAX 512

/* A type-specific claim: "rtmr0" -> lowercase hex, "isvsvn" -> decimal, "cgroup" -> text. */
struct scone_claim_extra {
	char name[SCONE_CLAIM_NAME_MAX];
	char value[SCONE_CLAIM_VALUE_MAX];
};

/*
 * What verified evidence says. Byte fields are raw; *_size 0 means the
 * type has no such field. Fixed size, no heap: a claims value can be
 * copied and dropped freely.
 */
struct scone_claims {
	enum scone_evidence_type type;
	uint8_t measurement[64]; /* las: SHA-256 measurement; sgx: MRENCLAVE; tdx: MRTD; snp: MEASUREMENT */
	size_t measurement_size;
	uint8_t signer[64]; /* sgx: MRSIGNER; tdx: MRSIGNERSEAM; las: runtime measurement */
	size_t signer_size;
	uint8_t platform_id[64]; /* las: SHA-256 of the LAS public key; snp: CHIP_ID; sgx/tdx: FMSPC */
	size_t platform_id_size;
	uint8_t report_data[SCONE_REPORT_DATA_SIZE];
	bool debug;				/* debug enclave / TD / SNP policy DEBUG */
	enum scone_tcb_status tcb_status;	/* UNKNOWN for types without a TCB (none, las) */
	char advisories[SCONE_CLAIM_VALUE_MAX]; /* comma-separated advisory ids, "" if none */
	int64_t time; /* unix seconds the evidence was made, 0 if it carries no time */
	struct scone_claim_extra extras[SCONE_CLAIM_MAX_EXTRAS];
	size_t n_extras;
};

/* Append an extra (name <= 23 bytes, value truncated to fit); LIMIT when full. */
SCONE_MUST_CHECK enum scone_err scone_claims_add(struct scone_claims *c, const char *name, const char *value);
/* The same with value as lowercase hex of size bytes. */
SCONE_MUST_CHECK enum scone_err scone_claims_add_hex(struct scone_claims *c, const char *name,
						     const uint8_t *value, size_t size);
/* An extra's value, or NULL. */
const char *scone_claims_get(const struct scone_claims *c, const char *name);
/* The claims as one JSON object (field names of docs/attestation.md) appended to out. */
SCONE_MUST_CHECK enum scone_err scone_claims_to_json(const struct scone_claims *c, struct scone_wbuf *out);

/* Runtime side: where the interfaces that produce evidence are. NULL = the default. */
struct scone_collect_opts {
	const char *las_addr;	  /* "unix:/run/scone/las.sock" */
	const char *tsm_root;	  /* "/sys/kernel/config/tsm/report" */
	const char *gramine_root; /* "/dev/attestation" */
	int timeout_ms;		  /* 0 = 5000 */
};

/*
 * Hardware types' collateral (Intel TCB info, QE identities, CRLs; AMD
 * VCEKs): a directory the operator maintains offline (layout and how to
 * fill it: docs/attestation.md, "Collateral directory"). Loaded once, it
 * is shared read-only by any number of concurrent verifications and
 * caches the certificate chains they verified.
 */
struct scone_collateral;

/*
 * Load dir. Fails only if dir cannot be read; a file that is present but
 * broken is refused, with its error, by the verifications that need it.
 */
SCONE_MUST_CHECK enum scone_err scone_collateral_load(const char *dir, struct scone_collateral **out);
void scone_collateral_free(struct scone_collateral *c);
/* One line per file of c: what it is, its validity at time at (0 = now), problems, what to fetch. */
SCONE_MUST_CHECK enum scone_err scone_collateral_describe(const struct scone_collateral *c, int64_t at,
							  struct scone_wbuf *out);
/*
 * Add one downloaded file to the directory dir under its layout name: a
 * PCS TCB info or QE identity body, a PCK or Root CA CRL, the TCB signing
 * chain (PEM), an AMD VCEK, or a dcap-qvl collateral JSON (which holds
 * several). Signatures are checked to the pinned roots first (dates are
 * not: old collateral serves verifications "as of" a date). One line per
 * file written is appended to report.
 */
SCONE_MUST_CHECK enum scone_err scone_collateral_import(const char *dir, const uint8_t *data, size_t size,
							struct scone_wbuf *report);

/* CAS side. */
struct scone_verify_opts {
	int64_t at;				   /* verification time (unix seconds); 0 = now */
	const char *collateral_dir;		   /* hardware types: the operator's collateral directory */
	const struct scone_collateral *collateral; /* loaded collateral; wins over collateral_dir */
	int max_age_sec; /* evidence that carries a time: accepted this long; 0 = 60 */
	bool
	    allow_padding; /* hardware types: accept zero bytes after the evidence (recorded fixed buffers) */
};

struct scone_evidence_ops {
	const char *name; /* "none", "las", "sgx", "tdx", "snp": the wire's evidence.type */
	enum scone_evidence_type type;
	/* Is this interface present here (runtime side; SCONE_MODE=AUTO picks the first that is)? */
	bool (*available)(const struct scone_collect_opts *o);
	/* Produce evidence binding report_data into out (not secret). */
	enum scone_err (*collect)(const struct scone_collect_opts *o,
				  const uint8_t report_data[SCONE_REPORT_DATA_SIZE], struct scone_wbuf *out);
	/*
	 * Verify evidence (untrusted bytes) to the type's root of trust and
	 * fill *out. Any defect is an error naming the field or check that
	 * failed (MALFORMED, AUTH, UNTRUSTED, ...); *out is then zeroed.
	 */
	enum scone_err (*verify)(const uint8_t *evidence, size_t size, const struct scone_verify_opts *o,
				 struct scone_claims *out);
};

/* The row for name ("las"), or NULL. */
const struct scone_evidence_ops *scone_evidence_find(const char *name);
/* The row for type, or NULL. */
const struct scone_evidence_ops *scone_evidence_of(enum scone_evidence_type type);
/* Rows in table order, NULL after the last. */
const struct scone_evidence_ops *scone_evidence_at(size_t i);
/*
 * The first hardware type whose interface is present here (configfs-tsm:
 * tdx, snp; Gramine's /dev/attestation: sgx), or NULL; o says where to
 * look (NULL members: the defaults). SCONE_MODE=AUTO and HW use it.
 */
const struct scone_evidence_ops *scone_evidence_tee(const struct scone_collect_opts *o);

/*
 * The report data a runtime binds: SHA-256(spki_der) || freshness (32
 * bytes, see docs/attestation.md).
 */
void scone_report_data(const uint8_t spki_sha256[32], const uint8_t freshness[32],
		       uint8_t out[SCONE_REPORT_DATA_SIZE]);

#endif
