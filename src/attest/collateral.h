/*
 * collateral.h - the operator's offline collateral directory (layout in
 * docs/attestation.md, "Collateral directory") and the verified state the
 * verifiers keep in it. Private to src/attest; attest.h has the public
 * load/free/describe/import.
 *
 * Loading reads every Intel document of the directory once and checks its
 * signature to the pinned root (time-independent); validity dates are
 * checked at each verification against its time. A file that is present
 * but broken does not fail the load: the verification that needs it is
 * refused with that file's error. Missing or stale documents are refused
 * with what to fetch.
 *
 * A loaded collateral is shared read-only by concurrent verifications;
 * its one mutable part, a cache of verified certificate chains (and of
 * which CA verified each PCK CRL), is guarded by its mutex.
 */
#ifndef SCONE_ATTEST_COLLATERAL_H
#define SCONE_ATTEST_COLLATERAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "attest/amd_cert.h"
#include "attest/attest.h"
#include "attest/intel_pck.h"
#include "attest/intel_tcb.h"
#include "attest/roots.h"

#define COLL_MAX_TCBINFO 64
#define COLL_FILE_MAX (256u << 10) /* bytes of one collateral file */
#define COLL_CACHE 64

/* One file of the directory: present? and if it failed to load, why. */
struct coll_file {
	char name[96]; /* relative to the directory */
	bool present;
	enum scone_err err;
	char detail[320];
};

struct coll_tcbinfo {
	struct coll_file f;
	bool tdx;
	uint8_t fmspc[6];
	struct tcb_info *info; /* NULL unless loaded and its signature verified */
};

enum { COLL_SGX, COLL_TDX };
enum { COLL_PLATFORM_CA, COLL_PROCESSOR_CA };

/* A certificate chain verified to a pinned anchor (signatures; its window is checked per use). */
struct coll_chain {
	uint8_t key[32]; /* SHA-256 of the evidence bytes the chain came from */
	X509 *leaf, *ca;
	int64_t not_before, not_after; /* intersection over the chain */
	struct intel_pck pck;	       /* Intel PCK chains */
	struct amd_cert_ext ext;       /* AMD chains: the VCEK's (VLEK's) extensions */
	int product;		       /* AMD chains: enum amd_product */
	int role;		       /* AMD chains: 1 + enum snp_key (a VCEK's chain is not a VLEK's) */
};

struct scone_collateral {
	char dir[512];
	const struct attest_trust *trust;
	/* Intel */
	struct coll_file signing_f; /* TCB signing chain: signs TCB info and QE identities */
	X509 *signer;
	int64_t signer_nb, signer_na;
	struct coll_tcbinfo tcbinfo[COLL_MAX_TCBINFO];
	size_t n_tcbinfo;
	struct coll_file qe_f[2];
	struct qe_identity *qe[2];
	struct coll_file pckcrl_f[2];
	X509_CRL *pckcrl[2];
	struct coll_file rootcrl_f;
	X509_CRL *rootcrl; /* signature checked at load */
	/* mutable, under lock */
	pthread_mutex_t lock;
	uint8_t pckcrl_ca[2][32]; /* SHA-256 of the CA that verified pckcrl[i]; zero: not yet */
	struct coll_chain cache[COLL_CACHE];
	size_t n_cache, next;
	bool no_cache; /* benchmarks of the uncached path */
};

/* Load dir against the anchors of trust (the pinned ones in production). */
SCONE_MUST_CHECK enum scone_err collateral_load_with(const char *dir, const struct attest_trust *trust,
						     struct scone_collateral **out);

/*
 * The collateral a verification uses: o->collateral, else a fresh load of
 * o->collateral_dir into *owned (free it after), else NOT_FOUND saying to
 * pass a collateral directory.
 */
SCONE_MUST_CHECK enum scone_err collateral_resolve(const struct scone_verify_opts *o,
						   const struct attest_trust *trust,
						   const struct scone_collateral **out,
						   struct scone_collateral **owned);

/* The TCB info for (tee, fmspc), current at at: NOT_FOUND / EXPIRED / its load error, each naming what to
 * fetch. */
SCONE_MUST_CHECK enum scone_err collateral_tcbinfo(const struct scone_collateral *c, int tee,
						   const uint8_t fmspc[6], int64_t at,
						   const struct tcb_info **out);
/* The QE identity (QE for SGX, TD_QE for TDX), current at at. */
SCONE_MUST_CHECK enum scone_err collateral_qeid(const struct scone_collateral *c, int tee, int64_t at,
						const struct qe_identity **out);
/*
 * Revocation of a PCK chain at time at: the Root CA CRL (current, not
 * listing ca) and the PCK CRL of ca's kind (current, signed by ca, not
 * listing leaf). UNTRUSTED when revoked.
 */
SCONE_MUST_CHECK enum scone_err collateral_check_revocation(const struct scone_collateral *c, X509 *leaf,
							    X509 *ca, int64_t at);

/* A cached chain for key (references taken: free with collateral_chain_release), or false. */
bool collateral_cache_get(const struct scone_collateral *c, const uint8_t key[32], struct coll_chain *out);
/* Remember a verified chain (takes its own references). */
void collateral_cache_put(const struct scone_collateral *c, const struct coll_chain *in);
void collateral_chain_release(struct coll_chain *ch);

/* Read a whole file of at most max bytes into a new buffer (*data owned by the caller). */
SCONE_MUST_CHECK enum scone_err collateral_read_file(const char *path, size_t max, uint8_t **data,
						     size_t *size);

/*
 * A signed Intel document body {"tcbInfo"|"enclaveIdentity": {...},
 * "signature": "<128 hex>"}: the exact text of the value of key and the
 * signature's r||s.
 */
SCONE_MUST_CHECK enum scone_err collateral_signed_body(const uint8_t *body, size_t size, const char *key,
						       char **text, size_t *text_size, uint8_t sig[64]);

#endif
