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
 *
 * And the process's umask, which the kernel takes off the mode of every
 * file and directory a process creates: the runtime takes it off the modes
 * of what it creates on a volume. Asked of the kernel once
 * (/proc/self/status names it without changing it), then kept: umask()
 * and syscall(SYS_umask) pass through here. A fork child inherits it with
 * the value; an exec'd program asks again. A umask set through the raw
 * instruction, or by a thread with its own file-system context
 * (unshare(CLONE_FS)), is not seen.
 */
#undef _FORTIFY_SOURCE
#include "runtime/io_ids.h"
#include "runtime/shield_internal.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- the umask ---- */

static _Atomic int g_umask = -1; /* the process's umask; -1: not asked yet */

/* The umask as the kernel has it now. */
static int umask_of_kernel(void)
{
	char buf[4096], *at;
	mode_t old;

	if (shield_read_small("/proc/self/status", buf, sizeof(buf)) &&
	    (at = strstr(buf, "\nUmask:")) != NULL)
		return (int)(strtoul(at + 8, NULL, 8) & 0777);
	/* (no /proc: set and set back; a racing umask() of another thread may be lost) */
	old = SYS(umask)(022);
	SYS(umask)(old);
	return (int)(old & 0777);
}

mode_t shield_umask(void)
{
	int u = atomic_load_explicit(&g_umask, memory_order_acquire), none = -1;

	if (u < 0) {
		u = umask_of_kernel();
		/* (a umask() meanwhile wins: it is newer than what was read) */
		if (!atomic_compare_exchange_strong(&g_umask, &none, u))
			u = atomic_load(&g_umask);
	}
	return (mode_t)u;
}

void shield_umask_set(mode_t mask)
{
	atomic_store_explicit(&g_umask, (int)(mask & 0777), memory_order_release);
}

mode_t umask(mode_t mask)
{
	REAL(umask);
	mode_t old = real_umask(mask);

	shield_umask_set(mask);
	return old;
}
