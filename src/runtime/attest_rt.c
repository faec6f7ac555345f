/*
 * attest_rt.c - evidence for CAS, collected in the runtime before main
 * (attest_rt.h). The report data binds the runtime's fresh TLS key:
 * SHA-256 of its SubjectPublicKeyInfo, then 32 zero bytes (a las report's
 * freshness is the LAS's signed time: docs/attestation.md).
 */
#include "runtime/attest_rt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attest/attest.h"
#include "attest/measure.h"
#include "lib/crypto.h"
#include "lib/hex.h"
#include "lib/log.h"

static void set_none(struct scone_rt_attest *a, const char *why)
{
	snprintf(a->note, sizeof(a->note), "%s", why);
	for (char *p = a->note; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
	a->ev.type = "none";
	a->ev.data = NULL;
	a->ev.size = 0;
	a->ev.note = a->note;
}

/* Hardware evidence binding id's key: an error if the interface fails (no fallback: HW was found). */
static enum scone_err collect_tee(const struct scone_evidence_ops *tee, const struct scone_collect_opts *o,
				  const uint8_t rd[SCONE_REPORT_DATA_SIZE], struct scone_rt_attest *out)
{
	enum scone_err err = tee->collect(o, rd, &out->data);

	if (err)
		return scone_err_set(err, "%s evidence: %s", tee->name, scone_err_detail());
	out->ev.type = tee->name;
	out->ev.data = out->data.data;
	out->ev.size = out->data.size;
	out->ev.note = NULL;
	return SCONE_ERR_OK;
}

enum scone_err scone_rt_attest_collect(const struct scone_identity *id, const char *mode,
				       struct scone_rt_attest *out)
{
	const char *addr = getenv("SCONE_LAS_ADDR");
	struct scone_collect_opts o = {.las_addr = addr};
	const struct scone_evidence_ops *las = scone_evidence_find("las"), *tee;
	uint8_t spki[32], rd[SCONE_REPORT_DATA_SIZE];
	static const uint8_t zero[32];
	char path[108], why[SCONE_LAS_TEXT_MAX + 32];
	enum scone_err err;

	memset(out, 0, sizeof(*out));
	scone_wbuf_init(&out->data, SCONE_EVIDENCE_MAX, 0);
	tee = strcmp(mode, "SIM") != 0 ? scone_evidence_tee(&o) : NULL;
	if (tee) {
		SCONE_TRY(scone_spki_sha256(id->cert, spki));
		scone_report_data(spki, zero, rd);
		return collect_tee(tee, &o, rd, out);
	}
	if (strcmp(mode, "HW") == 0)
		return scone_err_set(
		    SCONE_ERR_UNSUPPORTED,
		    "no TEE interface here: neither configfs-tsm (%s, TDX and SEV-SNP guests) nor "
		    "Gramine's /dev/attestation (SGX enclaves); use SCONE_MODE=AUTO or SIM on "
		    "a host without a TEE",
		    "/sys/kernel/config/tsm/report");
	SCONE_TRY(scone_las_addr_path(addr, path, sizeof(path)));
	if (!las->available(&o)) {
		if (addr && *addr)
			return scone_err_set(SCONE_ERR_NOT_FOUND,
					     "SCONE_LAS_ADDR: no socket at %s (is scone-las running?)", path);
		snprintf(why, sizeof(why), "no LAS at unix:%s", path);
		set_none(out, why);
		return SCONE_ERR_OK;
	}
	SCONE_TRY(scone_spki_sha256(id->cert, spki));
	scone_report_data(spki, zero, rd);
	err = las->collect(&o, rd, &out->data);
	if (err) {
		snprintf(why, sizeof(why), "%s", scone_err_detail());
		scone_warn("no LAS report: %s", why);
		set_none(out, why);
		scone_err_clear();
		return SCONE_ERR_OK;
	}
	out->ev.type = las->name;
	out->ev.data = out->data.data;
	out->ev.size = out->data.size;
	out->ev.note = NULL;
	return SCONE_ERR_OK;
}

void scone_rt_attest_free(struct scone_rt_attest *a)
{
	scone_wbuf_free(&a->data);
	memset(a, 0, sizeof(*a));
}

/* ---- scone measure ---- */

struct listing {
	FILE *f;
};

static void list_file(void *ctx, const char *role, const char *path, size_t path_len, const uint8_t hash[32])
{
	struct listing *l = ctx;
	char hex[65];

	scone_hex_encode(hex, sizeof(hex), hash, 32);
	fprintf(l->f, "%s %s %.*s\n", role, hex, (int)path_len, path);
}

enum scone_err scone_rt_measure(const char *fd_text)
{
	struct scone_measure_result m;
	struct listing l;
	char *end, hex[65];
	long fd = strtol(fd_text, &end, 10);
	enum scone_err err;

	if (*end || fd < 0 || fd > 1 << 20 || !(l.f = fdopen((int)fd, "w")))
		return scone_err_set(SCONE_ERR_INVALID, "SCONE_MEASURE must name an open file descriptor");
	err = scone_measure_self(list_file, &l, &m);
	if (!err) {
		scone_hex_encode(hex, sizeof(hex), m.measurement, 32);
		fprintf(l.f, "anon_exec %u\nmeasurement %s\n", m.anon_exec, hex);
	}
	if (fclose(l.f) != 0 && !err)
		err = scone_err_set(SCONE_ERR_IO, "SCONE_MEASURE: %s", strerror(errno));
	return err;
}
