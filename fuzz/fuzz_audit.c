/*
 * fuzz_audit.c - libFuzzer target for what CAS and the CLI read from files
 * an operator hands around: audit log lines and headers
 * (cas_audit_parse_line, cas_audit_parse_header), whole audit logs
 * (cas_audit_log_check, through fmemopen) and the records of a backup
 * (cas_backup_parse; its MAC is checked elsewhere, so the parser must hold
 * on its own).
 *
 * The first input byte picks the reader. Errors are expected; a crash, a
 * sanitizer report, a leak, or a result that breaks the reader's contract
 * (an entry without a chain, seq 0, an item that fails the store's checks)
 * aborts. Seeds: fuzz/corpus/audit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cas/audit.h"
#include "cas/backup.h"
#include "fuzz_common.h"

static void line(const char *s, size_t n)
{
	struct cas_audit_entry e;

	if (cas_audit_parse_line(s, n, NULL, &e) == SCONE_ERR_OK) {
		CHECK(e.chain[0] && e.seq >= 1);
		CHECK(strlen(e.event) < sizeof(e.event));
	}
}

static void header(const char *s, size_t n)
{
	char *pem = NULL;

	if (cas_audit_parse_header(s, n, &pem) == SCONE_ERR_OK)
		CHECK(pem != NULL);
	free(pem);
}

static enum scone_err count_entry(void *ctx, const struct cas_audit_entry *e, const char *l, size_t n)
{
	(void)e;
	(void)l;
	(void)n;
	(*(unsigned *)ctx)++;
	return SCONE_ERR_OK;
}

/* A log without a certificate header: entries are checked for hash and chain only. */
static void log_file(const char *s, size_t n)
{
	struct cas_audit_log *l = NULL;
	unsigned long bad = 0;
	unsigned seen = 0;
	FILE *f = fmemopen((void *)s, n, "r");

	if (!f)
		return;
	if (cas_audit_log_new(NULL, &l) == SCONE_ERR_OK) {
		(void)cas_audit_log_check(l, f, "fuzz", false, count_entry, &seen, &bad);
		cas_audit_log_free(l);
	}
	fclose(f);
}

static enum scone_err check_item(void *ctx, const struct scone_store_item *it)
{
	(void)ctx;
	if (it->kind == SCONE_ITEM_AUDIT)
		CHECK(scone_store_check_audit_row(it->audit) == SCONE_ERR_OK);
	else
		CHECK(it->name && it->name[0]);
	if (it->kind == SCONE_ITEM_SESSION)
		CHECK(it->hash && it->creator);
	return SCONE_ERR_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data + 1;

	if (size < 1)
		return 0;
	switch (data[0] % 4) {
	case 0:
		line(s, size - 1);
		break;
	case 1:
		header(s, size - 1);
		break;
	case 2:
		log_file(s, size - 1);
		break;
	default:
		(void)cas_backup_parse(data + 1, size - 1, check_item, NULL);
		break;
	}
	return 0;
}
