/* tsm.c - one report through configfs-tsm (see tsm.h). */
#include "attest/tsm.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attest/collect_io.h"
#include "lib/crypto.h"
#include "lib/hex.h"

struct tsm_sys tsm_sys = {.mkdir = mkdir, .rmdir = rmdir};

/* A fresh entry under root: "scone-<pid>-<random>". */
static enum scone_err make_entry(const char *root, char *entry, size_t size)
{
	for (int tries = 0; tries < 8; tries++) {
		uint8_t r[8];
		char hex[17], name[48];
		SCONE_TRY(scone_random(r, sizeof(r)));
		scone_hex_encode(hex, sizeof(hex), r, sizeof(r));
		snprintf(name, sizeof(name), "scone-%ld-%s", (long)getpid(), hex);
		SCONE_TRY(collect_path(entry, size, root, name));
		if (tsm_sys.mkdir(entry, 0700) == 0)
			return SCONE_ERR_OK;
		if (errno != EEXIST)
			return scone_err_set(scone_err_from_errno(errno),
					     "cannot create a report entry in %s: %s", root, strerror(errno));
	}
	return scone_err_set(SCONE_ERR_BUSY, "cannot create a fresh report entry in %s", root);
}

static enum scone_err attr_text(const char *entry, const char *name, char *buf, size_t size)
{
	char path[600];

	SCONE_TRY(collect_path(path, sizeof(path), entry, name));
	return collect_read_text(path, buf, size);
}

static enum scone_err attr_blob(const char *entry, const char *name, struct scone_wbuf *out, bool optional)
{
	char path[600];

	SCONE_TRY(collect_path(path, sizeof(path), entry, name));
	if (optional && access(path, F_OK) != 0)
		return SCONE_ERR_OK;
	return collect_read(path, TSM_BLOB_MAX, out);
}

static enum scone_err report_in(const char *entry, const char *want, const uint8_t inblob[64],
				struct scone_wbuf *out, struct scone_wbuf *aux)
{
	char provider[32], gen1[32], gen2[32], path[600];

	SCONE_TRY(attr_text(entry, "provider", provider, sizeof(provider)));
	if (strcmp(provider, want) != 0)
		return scone_err_set(SCONE_ERR_UNSUPPORTED, "configfs-tsm provider is \"%s\", not \"%s\"",
				     provider, want);
	SCONE_TRY(collect_path(path, sizeof(path), entry, "inblob"));
	SCONE_TRY(collect_write(path, inblob, 64));
	SCONE_TRY(attr_text(entry, "generation", gen1, sizeof(gen1)));
	SCONE_TRY(attr_blob(entry, "outblob", out, false));
	if (aux)
		SCONE_TRY(attr_blob(entry, "auxblob", aux, true));
	SCONE_TRY(attr_text(entry, "generation", gen2, sizeof(gen2)));
	if (strcmp(gen1, gen2) != 0)
		return scone_err_set(
		    SCONE_ERR_BUSY,
		    "configfs-tsm entry %s was written by someone else while the report was read "
		    "(generation %s -> %s): retry",
		    entry, gen1, gen2);
	if (out->size == 0)
		return scone_err_set(SCONE_ERR_IO, "configfs-tsm entry %s gave an empty outblob", entry);
	return SCONE_ERR_OK;
}

enum scone_err tsm_report(const char *root, const char *want, const uint8_t inblob[64],
			  struct scone_wbuf *out, struct scone_wbuf *aux)
{
	char entry[512];
	enum scone_err err;

	SCONE_TRY(make_entry(root, entry, sizeof(entry)));
	err = report_in(entry, want, inblob, out, aux);
	if (tsm_sys.rmdir(entry) != 0 && !err)
		err = scone_err_set(scone_err_from_errno(errno), "cannot remove the report entry %s: %s",
				    entry, strerror(errno));
	return err;
}

bool tsm_available(const char *root, const char *want)
{
	char entry[512], provider[32];
	bool ok;

	if (access(root, W_OK) != 0 || make_entry(root, entry, sizeof(entry)))
		return false;
	ok = attr_text(entry, "provider", provider, sizeof(provider)) == SCONE_ERR_OK &&
	     strcmp(provider, want) == 0;
	if (tsm_sys.rmdir(entry) != 0)
		ok = false;
	scone_err_clear();
	return ok;
}
