/*
 * snp_report.h - the AMD SEV-SNP ATTESTATION_REPORT (versions 2 to 5,
 * 0x4A0 bytes; SEV-SNP Firmware ABI specification 56860, Table 22) and the
 * certificate table of an extended report (GHCB specification 56421;
 * configfs-tsm auxblob), as scone's "snp" evidence carries them: the
 * report, optionally followed by the table. Parsing only; private to
 * src/attest.
 */
#ifndef SCONE_ATTEST_SNP_REPORT_H
#define SCONE_ATTEST_SNP_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define SNP_REPORT_SIZE 0x4A0
#define SNP_SIGNED_SIZE 0x2A0 /* the signature covers bytes [0, 0x2A0) */

#define SNP_POLICY_SMT (1ull << 16)
#define SNP_POLICY_RESERVED_1 (1ull << 17)
#define SNP_POLICY_MIGRATE_MA (1ull << 18)
#define SNP_POLICY_DEBUG (1ull << 19)
#define SNP_POLICY_SINGLE_SOCKET (1ull << 20)

#define SNP_PLATFORM_SMT_EN (1ull << 0)
#define SNP_PLATFORM_TSME_EN (1ull << 1)

enum snp_key { SNP_KEY_VCEK = 0, SNP_KEY_VLEK = 1 };

/* Offsets of the byte fields. */
#define SNP_O_FAMILY_ID 0x010
#define SNP_O_IMAGE_ID 0x020
#define SNP_O_REPORT_DATA 0x050
#define SNP_O_MEASUREMENT 0x090
#define SNP_O_HOST_DATA 0x0C0
#define SNP_O_ID_KEY_DIGEST 0x0E0
#define SNP_O_AUTHOR_KEY_DIGEST 0x110
#define SNP_O_REPORT_ID 0x140
#define SNP_O_REPORT_ID_MA 0x160
#define SNP_O_CHIP_ID 0x1A0
#define SNP_O_SIG_R 0x2A0
#define SNP_O_SIG_S 0x2E8

struct snp_report {
	const uint8_t *raw; /* SNP_REPORT_SIZE bytes */
	uint32_t version, guest_svn, vmpl, sig_algo, signer_info;
	enum snp_key key;
	uint64_t policy, current_tcb, platform_info, reported_tcb, committed_tcb, launch_tcb;
	uint64_t launch_mit, current_mit; /* version 5 */
	bool has_cpuid;			  /* version 3 and later */
	uint8_t cpuid_fam, cpuid_mod, cpuid_step;
	uint8_t current_fw[3], committed_fw[3]; /* build, minor, major */
};

/* A certificate from the table: a view into the evidence (NULL when absent). */
struct snp_blob {
	const uint8_t *data;
	size_t size;
};

struct snp_certs {
	struct snp_blob vcek, vlek, ask, ark; /* ask: ASK or ASVK */
	bool present;			      /* the evidence has a table */
};

/*
 * Parse evidence (untrusted): the report, then optionally a certificate
 * table whose last entry's data end the evidence (zero bytes after it are
 * accepted only with allow_padding). Views point into evidence.
 * MALFORMED / UNSUPPORTED naming the field and offset.
 */
SCONE_MUST_CHECK enum scone_err snp_report_parse(const uint8_t *evidence, size_t size, bool allow_padding,
						 struct snp_report *r, struct snp_certs *certs);

/*
 * The size of a certificate table's content at table (size bytes, e.g. a
 * kernel auxblob padded to pages): the end of its furthest entry's data.
 */
SCONE_MUST_CHECK enum scone_err snp_cert_table_size(const uint8_t *table, size_t size, size_t *used);

#endif
