/*
 * io_ids.c - the owner stat reports for volume and injected files: the
 * thread's effective user and group (what the kernel gives the files a
 * process creates), asked of the kernel once per thread and again only
 * after a set*id call: nginx stats every file it serves, and two system
 * calls per stat were a tenth of what the runtime added to a request. The
 * set*id interposers (and syscall() for their numbers), unshare and setns
 * (a new user namespace maps the ids anew) pass the call on and mark every
 * thread's answer stale.
 *
 * Credentials are per thread in the kernel (glibc's set*id apply to every
 * thread; syscall(SYS_setresuid...) to the caller alone), so each thread
 * keeps its own answer: no lock, nothing a fork child could inherit held.
 * A thread that changes its credentials through the raw instruction is
 * not seen (volume files have no owner of their own; the runtime's
 * permission decisions never use this answer).
 */
#undef _FORTIFY_SOURCE
#include "runtime/io_ids.h"
#include "runtime/shield_internal.h"

#include <sched.h>
#include <stdatomic.h>

static _Atomic uint32_t g_gen = 1; /* bumped by every set*id, unshare and setns call */
static __thread uint32_t t_known;  /* the generation t_uid/t_gid were asked in (0: never) */
static __thread uid_t t_uid;
static __thread gid_t t_gid;

void shield_ids(uid_t *uid, gid_t *gid)
{
	uint32_t want = atomic_load_explicit(&g_gen, memory_order_acquire);

	if (t_known != want) {
		t_uid = geteuid();
		t_gid = getegid();
		t_known = want;
	}
	*uid = t_uid;
	*gid = t_gid;
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
IDS_CALL(unshare, (int flags), (flags))
IDS_CALL(setns, (int fd, int type), (fd, type))
