/*
 * shield_report.c - commits and their tag reports to CAS: a volume's
 * commit, its new tag pending in the state every process shares, the report
 * sent (pipelined) and confirmed before the next record, with retries for
 * passing failures (SCONE_TAG_REPORT_TIMEOUT).
 */
#undef _FORTIFY_SOURCE
#include "lib/log.h"
#include "runtime/shield_internal.h"
#include "runtime/rt.h"

/*
 * Tag reports. A commit writes its record, marks the new tag pending in the
 * state every process of the volume shares (sh->pending) and sends its
 * report without waiting (pipelined). Before anything writes the next
 * record of that volume (and before exit, fork, exec and letting another
 * process at a shared volume), the pending tag must be confirmed by CAS:
 * so the disk is never more than one unconfirmed commit ahead of CAS, and
 * the next start accepts it. A report whose answer is lost or refused for
 * a passing reason (CAS unreachable or restarting, busy, a rate limit) is
 * sent again, with backoff, for up to SCONE_TAG_REPORT_TIMEOUT seconds
 * (default 30); CAS treats a report of the tag it already has as done, so
 * sending twice is harmless. Only then does the sync fail (EIO), and the
 * pending tag stays: the next sync, by any process, tries again before it
 * writes. (lock held; in shared mode the mount's flock too)
 */
static struct mount *g_inflight; /* the report on this process's connection whose answer is unread */
/*
 * Set when a settle gave up on a report CAS could not be reached for, until
 * CAS confirms a report again: meanwhile each settle tries for
 * REPORT_RETRY_MS only. A program that got EIO after the full wait usually
 * stops (InnoDB aborts, PostgreSQL panics), and its exit, the closes and
 * syncs on the way, would otherwise wait the full time again, each. (A
 * forked child is in the same outage and keeps it; an exec'd program starts
 * without it.)
 */
static bool g_gave_up;

#define REPORT_TIMEOUT_DEFAULT_SEC 30
#define REPORT_RETRY_MS 1000

/* Record tag as the one CAS knows for m (in the state all processes share). */
void shield_know_tag(struct mount *m, const uint8_t tag[SCONE_RT_TAG_SIZE])
{
	memcpy(m->sh->tag, tag, SCONE_RT_TAG_SIZE);
	m->sh->has_tag = 1;
	m->sh->has_pending = 0;
}

static void report_failed(const struct mount *m, enum scone_err err)
{
	scone_error("volume %s: cannot report its new tag to CAS: %s: %s (%s)", m->name, scone_strerror(err),
		    scone_err_detail(), scone_errname(err));
}

/* Worth sending again: CAS unreachable, restarting, busy or rate-limiting; not a refusal on the merits. */
static bool report_retryable(enum scone_err err)
{
	/* (TRUNCATED: CAS's answer cut off, as when it is killed while answering; a report sent again
	 * after CAS took it is recognised there) */
	return err == SCONE_ERR_NETWORK || err == SCONE_ERR_LIMIT || err == SCONE_ERR_BUSY ||
	       err == SCONE_ERR_IO || err == SCONE_ERR_NO_SPACE || err == SCONE_ERR_TRUNCATED;
}

/* How long a sync may wait for CAS to confirm a tag (SCONE_TAG_REPORT_TIMEOUT seconds). */
static int64_t report_timeout_ms(void)
{
	const char *v = scone_runtime_setting(scone_rt()->cfg, "SCONE_TAG_REPORT_TIMEOUT");
	char *end;
	long sec;

	if (!v)
		v = getenv("SCONE_TAG_REPORT_TIMEOUT");
	if (!v || !*v)
		return REPORT_TIMEOUT_DEFAULT_SEC * 1000;
	sec = strtol(v, &end, 10);
	return *end || sec < 1 || sec > 3600 ? REPORT_TIMEOUT_DEFAULT_SEC * 1000 : (int64_t)sec * 1000;
}

static int64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
	struct timespec t = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};

	while (nanosleep(&t, &t) != 0 && errno == EINTR)
		;
}

/* Send m's pending tag (from the tag CAS confirmed last). */
static enum scone_err report_send(struct mount *m)
{
	const struct scone_rt *rt = scone_rt();
	enum scone_err err =
	    scone_runtime_report_tag_start(rt->cas_addr ? rt->cas_addr : "", rt->pin, &rt->id, rt->cfg,
					   m->name, m->sh->has_tag ? m->sh->tag : NULL, m->sh->pending);

	if (!err)
		g_inflight = m;
	return err;
}

/* Read the answer to the report in flight on this connection, if any: OK, or the report's error. */
static enum scone_err report_read(struct mount **which)
{
	struct mount *m = g_inflight;
	enum scone_err err;

	*which = m;
	if (!m)
		return SCONE_ERR_OK;
	g_inflight = NULL;
	err = scone_runtime_report_tag_wait();
	if (!err) {
		shield_know_tag(m, m->sh->pending);
		g_gave_up = false; /* CAS answers again */
	}
	return err;
}

/* Make CAS confirm m's pending tag (sending it again while that may still help). */
enum scone_err shield_report_settle(struct mount *m)
{
	int64_t deadline = 0, backoff = 20;
	struct mount *answered;
	enum scone_err err;
	bool unsent = false; /* the last send failed (CAS unreachable): wait before the next */

	for (;;) {
		err = report_read(&answered);
		if (err && answered != m) {
			scone_err_clear(); /* another volume's: its own next sync settles it */
			err = SCONE_ERR_OK;
		}
		if (!m->sh->has_pending)
			return SCONE_ERR_OK;
		if (answered == m && err && !report_retryable(err))
			break;
		if (!deadline)
			deadline = now_ms() + (g_gave_up ? REPORT_RETRY_MS : report_timeout_ms());
		else if (now_ms() >= deadline)
			break;
		if (answered == m || err || unsent)
			sleep_ms(backoff), backoff = backoff < 1000 ? backoff * 2 : 1000;
		if ((err = report_send(m)) && !report_retryable(err))
			break;
		unsent = err != SCONE_ERR_OK;
	}
	if (!err)
		err = scone_err_set(SCONE_ERR_NETWORK, "no answer");
	if (report_retryable(err)) {
		if (g_gave_up)
			scone_err_set(
			    err,
			    "%s (still: tried for %d s more after giving up earlier; the volume stays "
			    "one commit ahead of CAS and opens at the next start)",
			    scone_err_detail(), REPORT_RETRY_MS / 1000);
		else
			scone_err_set(
			    err,
			    "%s (gave up after %lld s: SCONE_TAG_REPORT_TIMEOUT; the volume stays one "
			    "commit ahead of CAS and opens at the next start)",
			    scone_err_detail(), (long long)(report_timeout_ms() / 1000));
		g_gave_up = true;
	}
	report_failed(m, err);
	return err;
}

/* Settle every volume's pending tag (before exit, fork, exec and letting other processes at the volumes). */
enum scone_err shield_report_settle_all(void)
{
	enum scone_err first = SCONE_ERR_OK, err;

	for (size_t i = 0; i < shield_g.n_mounts; i++)
		if ((err = shield_report_settle(&shield_g.mounts[i])) && !first)
			first = err;
	return first;
}

/* For scone_volume_sync_with: between the data flush and the record, the previous tag is confirmed. */
static enum scone_err report_wait_cb(void *arg)
{
	return shield_report_settle(arg);
}

/* After m's record: its tag is pending, and its report goes out (not waited for). */
enum scone_err shield_report(struct mount *m)
{
	uint8_t tag[SCONE_RT_TAG_SIZE];

	SCONE_TRY(shield_report_settle(m));
	scone_volume_tag(m->vol, tag);
	if (m->sh->has_tag && memcmp(tag, m->sh->tag, sizeof(tag)) == 0)
		return SCONE_ERR_OK;
	if (!m->tracked) {
		shield_know_tag(m, tag);
		return SCONE_ERR_OK;
	}
	memcpy(m->sh->pending, tag, sizeof(tag));
	m->sh->has_pending = 1;
	if (report_send(m))
		scone_err_clear(); /* pending: the next sync (or exit) sends it again */
	return SCONE_ERR_OK;
}

/* Commit m in the process that holds it (lock held); prints what failed. */
enum scone_err shield_commit_local(struct mount *m)
{
	enum scone_err err;

	if (m->vol && !vsrv_retired() && shield_map_commit_locked(m)) /* (what mappings stored first) */
		return scone_err_set(SCONE_ERR_IO,
				     "volume %s: a shared mapping's stores could not be written: %s", m->name,
				     scone_err_detail());
	if (!m->dirty || !m->vol || vsrv_retired())
		return SCONE_ERR_OK;
	if ((err = scone_volume_sync_with(m->vol, report_wait_cb, m))) {
		scone_error("volume %s: cannot commit: %s: %s (%s)", m->name, scone_strerror(err),
			    scone_err_detail(), scone_errname(err));
		return err;
	}
	m->dirty = false;
	vsrv_note_committed(m);
	return shield_report(m);
}

enum scone_err shield_commit(struct mount *m)
{
	if (vsrv_role() != VR_CLIENT)
		return shield_commit_local(m);
	/*
	 * Nothing uncommitted on the server (its last commit made it durable):
	 * nothing to ask, unless a window's stores may wait for the commit.
	 */
	return vsrv_all_committed(m) && !shield_map_has(m) ? SCONE_ERR_OK : vop_sync(m);
}
