/*
 * vshared.c - what every process of a program shares about its volumes'
 * server (struct vsrv_shared, in the memfd they all map), apart from who
 * serves: the files a server's death may leave with lost writes, the
 * program's processes, and the crash of the program when a server dies
 * without leaving through exit or exec (docs/runtime.md, "A server killed
 * is a crash of the program"). The election itself is vserver.c's.
 */
#undef _FORTIFY_SOURCE
#include "runtime/shield_internal.h"

#include <signal.h>

#include "lib/log.h"

/* ---- files with writes a server may lose (struct vsrv_shared) ---- */

/* The file's identity across processes: its mount and volume path (FNV-1a). */
static uint64_t file_id(const char *vpath)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (const unsigned char *c = (const unsigned char *)vpath; *c; c++)
		h = (h ^ *c) * 0x100000001b3ULL;
	return h;
}

static uint64_t mount_bit(size_t mount)
{
	return 1ULL << (mount < 63 ? mount : 63);
}

void vsrv_note_dirty(const struct mount *m, const char *vpath)
{
	uint32_t mount = (uint32_t)shield_mount_index(m), n;
	uint64_t id = file_id(vpath);

	if (!shield_g.srv || vsrv_role() != VR_SERVER)
		return;
	n = shield_g.srv->n_dirty;
	for (uint32_t i = 0; i < n; i++)
		if (shield_g.srv->dirty[i].id == id && shield_g.srv->dirty[i].mount == mount)
			return;
	if (n == VSRV_DIRTY_MAX) {
		shield_g.srv->dirty_overflow |= mount_bit(mount);
		return;
	}
	shield_g.srv->dirty[n] = (struct vsrv_file){.id = id, .mount = mount};
	__atomic_store_n(&shield_g.srv->n_dirty, n + 1, __ATOMIC_RELEASE);
}

void shield_mark_dirty(struct mount *m)
{
	uint64_t bit;

	m->dirty = true;
	if (!shield_g.srv || vsrv_role() != VR_SERVER)
		return;
	bit = mount_bit(shield_mount_index(m));
	if (!(__atomic_load_n(&shield_g.srv->changed, __ATOMIC_RELAXED) & bit))
		__atomic_or_fetch(&shield_g.srv->changed, bit, __ATOMIC_ACQ_REL);
}

bool vsrv_all_committed(const struct mount *m)
{
	size_t mount = shield_mount_index(m);

	/* Set before any change is answered, cleared after the commit that covers it is durable. */
	return shield_g.srv && mount < 63 &&
	       !(__atomic_load_n(&shield_g.srv->changed, __ATOMIC_ACQUIRE) & mount_bit(mount));
}

void vsrv_note_committed(const struct mount *m)
{
	uint32_t mount = (uint32_t)shield_mount_index(m), n = 0;

	if (!shield_g.srv || vsrv_role() != VR_SERVER)
		return;
	for (uint32_t i = 0; i < shield_g.srv->n_dirty; i++)
		if (shield_g.srv->dirty[i].mount != mount)
			shield_g.srv->dirty[n++] = shield_g.srv->dirty[i];
	__atomic_store_n(&shield_g.srv->n_dirty, n, __ATOMIC_RELEASE);
	if (mount < 63) { /* bit 63 stands for every other mount: kept until they are all committed */
		__atomic_and_fetch(&shield_g.srv->changed, ~mount_bit(mount), __ATOMIC_ACQ_REL);
		shield_g.srv->dirty_overflow &= ~mount_bit(mount);
	}
}

/* Elected after the server of epoch dead: what it had noted and not committed is lost (flock held). */
void vsrv_lose_dirty(uint64_t dead)
{
	uint32_t n = shield_g.srv->n_lost;

	for (uint32_t i = 0; i < shield_g.srv->n_dirty; i++) {
		if (n == VSRV_LOST_MAX) {
			shield_g.srv->dirty_overflow |= 1;
			break;
		}
		shield_g.srv->lost[n] = shield_g.srv->dirty[i];
		shield_g.srv->lost[n++].epoch = dead;
	}
	if (shield_g.srv->dirty_overflow &&
	    (!shield_g.srv->lost_all_epoch || shield_g.srv->lost_all_epoch > dead))
		shield_g.srv->lost_all_epoch = dead;
	__atomic_store_n(&shield_g.srv->n_lost, n, __ATOMIC_RELEASE);
	shield_g.srv->n_dirty = 0;
	shield_g.srv->dirty_overflow = 0;
}

/* ---- the program's processes, ended together when a server dies with changes (struct vsrv_shared) ---- */

/*
 * A process's state letter (field 3 of /proc/PID/stat) and start time
 * (field 22, clock ticks since boot): 0 and 0 when it cannot be read.
 */
static uint64_t proc_stat(pid_t pid, char *state)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd, field;

	*state = 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = SYS(open)(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	while ((n = SYS(read)(fd, buf, sizeof(buf) - 1)) < 0 && errno == EINTR)
		;
	SYS(close)(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	/* the name (field 2) may hold spaces and parentheses: count from the last ')' (field 3 follows) */
	if (!(p = strrchr(buf, ')')) || p[1] != ' ')
		return 0;
	*state = p[2];
	for (field = 2; *p && field < 22; p++)
		if (*p == ' ')
			field++;
	return field == 22 ? strtoull(p, NULL, 10) : 0;
}

uint64_t vsrv_proc_start(pid_t pid)
{
	char state;

	return proc_stat(pid, &state);
}

/*
 * Does the serving process still run? Not when it is gone, a zombie (killed,
 * not yet reaped), or its pid is another process's now (its start time
 * differs from the one the server noted).
 */
bool vsrv_server_runs(pid_t pid)
{
	char state;
	uint64_t start;

	if (pid <= 0 || (kill(pid, 0) != 0 && errno == ESRCH))
		return false;
	start = proc_stat(pid, &state);
	if (!start)
		return true; /* no /proc: alive as far as can be told */
	return state != 'Z' && state != 'X' && (!shield_g.srv->pid_start || start == shield_g.srv->pid_start);
}

/* Is slot i a process that is gone (or a pid another process took since)? */
static bool proc_gone(const struct vsrv_proc *e)
{
	if (e->pid <= 0 || (kill(e->pid, 0) != 0 && errno == ESRCH))
		return true;
	return vsrv_proc_start(e->pid) != e->start; /* alive (or another user's): still the one listed? */
}

void vsrv_register(struct vsrv_shared *srv)
{
	int32_t pid = (int32_t)getpid(), none = 0;
	uint64_t start = vsrv_proc_start(pid);

	/* without /proc it cannot be told from a later holder of its pid: it is not ended by a crash */
	if (!srv || !start)
		return;
	for (int round = 0; round < 2; round++)
		for (size_t i = 0; i < VSRV_PROCS_MAX; i++) {
			struct vsrv_proc *e = &srv->procs[i];
			int32_t cur = __atomic_load_n(&e->pid, __ATOMIC_ACQUIRE);
			/* its own slot (an exec keeps the pid), a free one, or (second round) a dead one's */
			if (cur == pid ||
			    (cur == 0 && __atomic_compare_exchange_n(&e->pid, &none, pid, false,
								     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) ||
			    (round == 1 && cur > 0 && proc_gone(e) &&
			     __atomic_compare_exchange_n(&e->pid, &cur, pid, false, __ATOMIC_ACQ_REL,
							 __ATOMIC_ACQUIRE))) {
				__atomic_store_n(&e->start, start, __ATOMIC_RELEASE);
				return;
			}
			none = 0;
		}
}

/*
 * Elected after a server that died without leaving through exit or exec
 * (a signal: kill -9, a crash; flock held): the program has crashed. The
 * changes it had acknowledged and not committed are gone, and the other
 * processes may hold answers the volume no longer has (a WAL page written,
 * another process about to flush the segment past it) or wait on a lock a
 * process that saw the loss held. Even with nothing left uncommitted,
 * PostgreSQL's backends going on past their postmaster's death lost
 * acknowledged transactions (about 1 run in 3): a program's processes
 * depend on each other in ways the volumes cannot see. End every one of
 * them, and this one, as the machine's crash would. What was committed is
 * on the disk; the next start opens it.
 */
_Noreturn void vsrv_crash_program(int32_t dead, bool changes)
{
	int32_t self = (int32_t)getpid();
	size_t ended = 0;

	for (size_t i = 0; i < VSRV_PROCS_MAX; i++) {
		struct vsrv_proc *e = &shield_g.srv->procs[i];
		int32_t pid = __atomic_load_n(&e->pid, __ATOMIC_ACQUIRE);
		if (pid <= 0 || pid == self || pid == dead || proc_gone(e))
			continue;
		if (kill(pid, SIGKILL) == 0)
			ended++;
	}
	scone_error(
	    "the process serving the volumes (pid %d) died %s: the program has crashed; ending its %zu "
	    "other processes and this one (what was synced is kept)",
	    (int)dead,
	    changes ? "with changes it had not committed" : "without exiting (nothing was uncommitted)",
	    ended);
	kill(self, SIGKILL);
	_exit(137); /* not reached */
}

bool vsrv_file_lost(const struct mount *m, const char *vpath, uint64_t since)
{
	uint32_t mount = (uint32_t)shield_mount_index(m), n;
	uint64_t id = file_id(vpath);

	if (!shield_g.srv)
		return false;
	if (shield_g.srv->lost_all_epoch && shield_g.srv->lost_all_epoch >= since)
		return true;
	n = __atomic_load_n(&shield_g.srv->n_lost, __ATOMIC_ACQUIRE);
	for (uint32_t i = 0; i < n; i++)
		if (shield_g.srv->lost[i].id == id && shield_g.srv->lost[i].mount == mount &&
		    shield_g.srv->lost[i].epoch >= since)
			return true;
	return false;
}

bool vsrv_file_loss_unseen(const struct mount *m, const char *vpath)
{
	uint32_t mount, n;
	uint64_t id;
	bool unseen = false;

	if (!shield_g.srv || !(n = __atomic_load_n(&shield_g.srv->n_lost, __ATOMIC_ACQUIRE)))
		return false;
	mount = (uint32_t)shield_mount_index(m);
	id = file_id(vpath);
	for (uint32_t i = 0; i < n; i++)
		if (shield_g.srv->lost[i].id == id && shield_g.srv->lost[i].mount == mount &&
		    __atomic_exchange_n(&shield_g.srv->lost[i].seen, 1, __ATOMIC_ACQ_REL) == 0)
			unseen = true;
	return unseen;
}
