/*
 * io_ids.c - the process's user and group as stat reports them for volume
 * and injected files (their owner), asked of the kernel once and again
 * only after a set*id call: nginx stats every file it serves, and two
 * system calls per stat were a tenth of what the runtime added to a
 * request. The set*id interposers (and syscall() for their numbers) pass
 * the call on and mark the answer stale.
 *
 * Credentials are per thread in the kernel; glibc's set*id apply to every
 * thread, so one answer serves the process. A thread that changes its own
 * through the raw instruction is not seen: its stat still names the
 * owner the process had (volume files have no owner of their own; the
 * runtime's permission decisions never use this answer).
 */
#undef _FORTIFY_SOURCE
#include "runtime/io_ids.h"
#include "runtime/shield_internal.h"

#include <stdatomic.h>

#include <pthread.h>

static _Atomic uint32_t g_gen = 1;			  /* bumped by every set*id call */
static pthread_mutex_t g_ask = PTHREAD_MUTEX_INITIALIZER; /* one asks at a time: no older answer last */
static _Atomic uint32_t g_known;			  /* the generation g_ids was asked in (0: never) */
static _Atomic uint64_t g_ids;				  /* uid << 32 | gid */

void shield_ids(uid_t *uid, gid_t *gid)
{
	uint32_t want = atomic_load_explicit(&g_gen, memory_order_acquire);
	uint64_t ids;

	if (atomic_load_explicit(&g_known, memory_order_acquire) == want) {
		ids = atomic_load_explicit(&g_ids, memory_order_relaxed);
	} else {
		pthread_mutex_lock(&g_ask);
		want = atomic_load_explicit(&g_gen, memory_order_acquire);
		ids = (uint64_t)getuid() << 32 | (uint32_t)getgid();
		atomic_store_explicit(&g_ids, ids, memory_order_relaxed);
		atomic_store_explicit(&g_known, want, memory_order_release);
		pthread_mutex_unlock(&g_ask);
	}
	*uid = (uid_t)(ids >> 32);
	*gid = (gid_t)(uint32_t)ids;
}

void shield_ids_changed(void)
{
	atomic_fetch_add_explicit(&g_gen, 1, memory_order_acq_rel);
}

/* The set*id calls: passed on; the answer above is asked again. */
#define IDS_CALL(name, params, args)                                                                         \
	int name params                                                                                      \
	{                                                                                                    \
		REAL(name);                                                                                  \
		int ret = real_##name args;                                                                  \
		shield_ids_changed();                                                                        \
		return ret;                                                                                  \
	}

IDS_CALL(setuid, (uid_t u), (u))
IDS_CALL(setgid, (gid_t g), (g))
IDS_CALL(setreuid, (uid_t r, uid_t e), (r, e))
IDS_CALL(setregid, (gid_t r, gid_t e), (r, e))
IDS_CALL(setresuid, (uid_t r, uid_t e, uid_t s), (r, e, s))
IDS_CALL(setresgid, (gid_t r, gid_t e, gid_t s), (r, e, s))
