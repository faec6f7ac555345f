/*
 * report.c - from a caller whose request arrived to a signed report: the
 * checks of peer.c in order, the measurement (src/attest/measure.h) with
 * file hashes from the cache, then the report, signed with the host key.
 *
 * Order matters: the caller is pinned (/proc/PID open, alive) and checked
 * (the same image) before it is measured, and checked alive and untraced
 * after, so that what was measured is the process that is still there and
 * no tracer is attached when the report is made. (A check for a tracer
 * before the measurement would add nothing: a tracer could have come and
 * gone before it just as well; docs/attestation.md, "Files, not memory".)
 */
#include "las.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "attest/measure.h"
#include "lib/crypto.h"

/* Hash a code file opened under /proc/PID; retried once if it changes while being read. */
static enum scone_err hash_fresh(int proc_fd, const char *name, struct las_file_id *id, uint8_t out[32])
{
	struct stat before, after;
	enum scone_err err = SCONE_ERR_OK;

	for (int attempt = 0; attempt < 2; attempt++) {
		int fd = openat(proc_fd, name, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return scone_err_set(errno == EPERM ? SCONE_ERR_PERMISSION : SCONE_ERR_ATTESTATION,
					     "/proc/PID/%s: %s%s", name, strerror(errno),
					     errno == EPERM ? " (scone-las needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE: "
							      "run it as root)"
							    : " (the caller has exited?)");
		if (fstat(fd, &before) != 0)
			err = scone_err_set(SCONE_ERR_IO, "fstat %s: %s", name, strerror(errno));
		if (!err)
			err = scone_measure_fd(fd, out, NULL);
		if (!err && fstat(fd, &after) != 0)
			err = scone_err_set(SCONE_ERR_IO, "fstat %s: %s", name, strerror(errno));
		close(fd);
		if (err)
			return err;
		las_file_id_of(&after, id);
		if (before.st_ctim.tv_sec == after.st_ctim.tv_sec && before.st_ctim.tv_nsec == after.st_ctim.tv_nsec &&
		    before.st_size == after.st_size)
			return SCONE_ERR_OK;
	}
	return scone_err_set(SCONE_ERR_BUSY, "a code file of the caller changes while it is measured");
}

/* The measurement's hook: a stat through the mapping, then the cache or a read. */
static enum scone_err cached_hash(void *ctx, int proc_fd, const char *name, const struct scone_map_line *m,
				  uint8_t out[32])
{
	struct las_cache *cache = ctx;
	struct las_file_id id;
	struct stat st;

	(void)m;
	if (fstatat(proc_fd, name, &st, 0) != 0)
		return scone_err_set(errno == EPERM ? SCONE_ERR_PERMISSION : SCONE_ERR_ATTESTATION,
				     "stat /proc/PID/%s: %s%s", name, strerror(errno),
				     errno == EPERM ? " (scone-las needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE: run it "
						      "as root)"
						    : " (the caller has exited?)");
	las_file_id_of(&st, &id);
	if (las_cache_get(cache, &id, out))
		return SCONE_ERR_OK;
	SCONE_TRY(hash_fresh(proc_fd, name, &id, out));
	las_cache_put(cache, &id, out);
	return SCONE_ERR_OK;
}

static enum scone_err measure(struct las_ctx *ctx, struct las_peer *p, const struct scone_las_request *req,
			      struct scone_las_report *r)
{
	struct scone_measure_io io = { .file_hash = cached_hash, .ctx = ctx->cache, .addr = req->runtime_addr };
	struct scone_measure_result m;

	SCONE_TRY(scone_measure_process(p->proc_fd, &io, &m));
	memcpy(r->measurement, m.measurement, 32);
	if (m.addr_found)
		memcpy(r->runtime_measurement, m.addr_hash, 32);
	r->files = m.files;
	r->anon_exec = m.anon_exec;
	return SCONE_ERR_OK;
}

static enum scone_err sign_into(struct las_ctx *ctx, struct scone_las_report *r, struct scone_wbuf *out)
{
	struct scone_wbuf tbs;
	enum scone_err err;

	scone_wbuf_init(&tbs, SCONE_LAS_BODY_MAX, 0);
	err = scone_las_report_tbs(r, &tbs);
	if (!err)
		err = las_identity_sign(ctx->id, tbs.data, tbs.size, r->signature);
	scone_wbuf_free(&tbs);
	return err ? err : scone_las_report_encode(r, out);
}

enum scone_err las_report(struct las_ctx *ctx, struct las_peer *p, const struct scone_las_request *req,
			  struct scone_wbuf *out)
{
	struct scone_las_report r;

	memset(&r, 0, sizeof(r));
	SCONE_TRY(las_peer_check_exec(p, req->exec_binding));
	SCONE_TRY(measure(ctx, p, req, &r));
	las_peer_cgroup(p, r.cgroup);
	las_peer_exe(p, r.exe);
	/* The process measured must still be the caller, and still untraced. */
	SCONE_TRY(las_peer_check_untraced(p));
	SCONE_TRY(las_peer_alive(p));
	r.time = (int64_t)time(NULL);
	memcpy(r.report_data, req->report_data, SCONE_REPORT_DATA_SIZE);
	r.uid = (uint32_t)p->uid;
	r.gid = (uint32_t)p->gid;
	r.pid = (uint32_t)p->pid;
	SCONE_TRY(scone_random(r.report_id, sizeof(r.report_id)));
	memcpy(r.las_key, ctx->id->pub, SCONE_LAS_KEY_SIZE);
	return sign_into(ctx, &r, out);
}
