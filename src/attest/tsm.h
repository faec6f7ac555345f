/*
 * tsm.h - evidence from the Linux configfs-tsm report interface
 * (/sys/kernel/config/tsm/report, Linux 6.7+; Documentation/ABI/testing/
 * configfs-tsm-report), used by TDX guests (provider tdx_guest: a TDX
 * quote) and SEV-SNP guests (sev_guest: the attestation report, and the
 * certificate table in auxblob). Private to src/attest.
 *
 * One report: mkdir a fresh entry (configfs creates its attribute files),
 * check its provider, write the 64-byte inblob, read generation, outblob
 * and auxblob, read generation again (unchanged, or another writer raced
 * us), rmdir the entry.
 */
#ifndef SCONE_ATTEST_TSM_H
#define SCONE_ATTEST_TSM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/buf.h"

#define TSM_DEFAULT_ROOT "/sys/kernel/config/tsm/report"
#define TSM_BLOB_MAX (64u * 1024)

/* Is root a configfs-tsm report directory whose entries have provider want ("tdx_guest", "sev_guest")? */
bool tsm_available(const char *root, const char *want);

/*
 * One report for inblob (64 bytes) from provider want: outblob appended to
 * out, auxblob (when aux is not NULL and the entry has one) to aux.
 */
SCONE_MUST_CHECK enum scone_err tsm_report(const char *root, const char *want, const uint8_t inblob[64],
					   struct scone_wbuf *out, struct scone_wbuf *aux);

/*
 * How an entry is created and removed: mkdir(2) and rmdir(2). Tests
 * replace them to behave as configfs does on a plain directory tree
 * (mkdir creates the attribute files, rmdir removes them).
 */
struct tsm_sys {
	int (*mkdir)(const char *path, mode_t mode);
	int (*rmdir)(const char *path);
};
extern struct tsm_sys tsm_sys;

#endif
