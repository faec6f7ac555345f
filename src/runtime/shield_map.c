/*
 * shield_map.c - shared writable mappings (MAP_SHARED with PROT_WRITE) of
 * volume files, as SQLite's WAL index (the -shm file) and programs that
 * write a file through mmap make them (docs/runtime.md, "Shared writable
 * mappings").
 *
 * The kernel cannot page a volume file (on the host its bytes are
 * ciphertext), so such a mapping maps the file's *window*: a memfd holding
 * the file's plaintext, made at the file's first shared writable mapping
 * and filled from the file then. Every such mapping of the file maps the
 * same window, so stores meet as in a kernel file's page cache. While the
 * window exists the runtime's reads of the file come from it, its writes
 * land in it as well as in the file, and a truncation clears it past the
 * new end. Its stores reach the file (through the runtime's write, so
 * sealed) at msync, at fsync/fdatasync of any fd of the file (before the
 * commit), at exit and exec, and when the process's last mapping of it
 * goes: the blocks that differ from the window's *shadow* (what the file
 * holds as far as the window knows: its fill, writes through fds, earlier
 * write-backs), so a write-back costs what was stored and never puts back
 * bytes nobody stored. A window that nobody maps writable any more (its
 * memfd then takes a write seal) is dropped.
 *
 * Invariants:
 * - one window per file (mount, file id) in the program. A window is made
 *   only by a process that is alone: it holds its volumes and no other
 *   process of the program can exist yet (vsrv_alone). Forked children
 *   inherit it (its memfd, its mappings and this table) and share it with
 *   their parent. Any other process gets ENODEV for a file without a
 *   window, as before windows existed: a second window would split the
 *   file's stores;
 * - bytes past the file's end are zero in the window and never written
 *   back (the kernel's SIGBUS there is not reproduced);
 * - the memfd is close-on-exec; the window keeps a hold on a description
 *   of the file, so it can be written back after the program closed its
 *   fds, and on a file renamed or removed meanwhile (as a kernel mapping
 *   keeps its inode);
 * - munmap and msync cost one atomic load while no window exists; the
 *   runtime's own (with the shield lock held) pass straight through.
 *
 * Limits: a window covers WINDOW_CAP bytes of its file (a mapping past
 * them: ENODEV); mremap of a window's mapping is not followed (its bytes
 * still reach the file at exit); stores of a process killed by a signal
 * reach the file only if another process of the program maps the window.
 */
#undef _FORTIFY_SOURCE
#include "runtime/shield_internal.h"

#include <stdatomic.h>

#define WINDOWS_MAX 64
#define MAPS_MAX 1024
#define WINDOW_CAP ((uint64_t)256 << 20)

struct window {
	int fd1; /* 1 + the memfd; 0: a free slot */
	unsigned mount;
	uint8_t fid[16];
	char *base;   /* the runtime's own mapping of all of it */
	char *shadow; /* what the file holds of it, shadow_len bytes (malloc'd) */
	size_t shadow_len;
	struct fd_desc *desc; /* a description of the file, held */
};

#define BLOCK 4096

struct map {
	char *addr; /* NULL: a free slot */
	size_t len;
	int win;
	uint64_t off; /* the file offset at addr */
};

static struct window g_win[WINDOWS_MAX];
static struct map g_map[MAPS_MAX];
static _Atomic unsigned g_n_win; /* windows made (the fast paths: none) */

static struct sfd *win_sfd(const struct window *w)
{
	return (struct sfd *)w->desc;
}

/* The window of file fid of mount (-1: none). Lock held. */
static int find_window(unsigned mount, const uint8_t fid[16])
{
	for (int i = 0; i < WINDOWS_MAX; i++)
		if (g_win[i].fd1 && g_win[i].mount == mount && memcmp(g_win[i].fid, fid, 16) == 0)
			return i;
	return -1;
}

/*
 * The window of s's file (-1: none); with st, the file's status too (asked
 * only when there is one). The file's id from the description where known.
 * Lock held.
 */
static int window_of(struct sfd *s, struct scone_vstat *st)
{
	struct scone_vstat own;
	int i;

	if (atomic_load_explicit(&g_n_win, memory_order_acquire) == 0 || !s->file)
		return -1;
	if (!s->has_fid) {
		if (vop_fstat(s, &own))
			return -1;
		memcpy(s->fid, own.file_id, sizeof(s->fid));
		s->has_fid = true;
	}
	i = find_window((unsigned)shield_mount_index(s->m), s->fid);
	if (i >= 0 && st && vop_fstat(s, st))
		return -1;
	return i;
}

/* The shadow covers n bytes at least (zero where it grew); false without memory. */
static bool shadow_cover(struct window *w, size_t n)
{
	char *p;

	if (n <= w->shadow_len)
		return true;
	if (!(p = realloc(w->shadow, n)))
		return false;
	memset(p + w->shadow_len, 0, n - w->shadow_len);
	w->shadow = p;
	w->shadow_len = n;
	return true;
}

/* Bytes now in the file at off: the shadow knows them too. */
static void shadow_note(struct window *w, const void *buf, size_t n, uint64_t off)
{
	if (off < WINDOW_CAP && shadow_cover(w, (size_t)(off + n)))
		memcpy(w->shadow + off, buf, n);
}

/*
 * The window's stores up to the file's end (size) into the file through s:
 * each block that differs from the shadow. Lock held.
 */
static int write_back(struct window *w, struct sfd *s, uint64_t size)
{
	size_t n = (size_t)(size < WINDOW_CAP ? size : WINDOW_CAP), written;
	bool marked = false;

	if (!shadow_cover(w, n))
		return shield_fail(ENOMEM);
	for (size_t at = 0; at < n; at += BLOCK) {
		size_t len = n - at < BLOCK ? n - at : BLOCK, done = 0;
		if (memcmp(w->base + at, w->shadow + at, len) == 0)
			continue;
		if (!marked)
			shield_mark_dirty(s->m);
		marked = true;
		memcpy(w->shadow + at, w->base + at,
		       len); /* (what goes to the file: stores racing it go next time) */
		while (done < len) {
			if (vop_pwrite(s, w->shadow + at + done, len - done, at + done, &written) ||
			    written == 0)
				return -1;
			done += written;
		}
	}
	return 0;
}

static int write_back_window(int i)
{
	struct window *w = &g_win[i];
	struct sfd *s = win_sfd(w);
	struct scone_vstat st;

	if (s->stale || vop_fstat(s, &st))
		return -1;
	return write_back(w, s, st.size);
}

/* The runtime's own mapping of a whole window (MAP_FAILED, errno), kept out of core dumps. */
static char *map_base(int fd)
{
	char *p = SYS(mmap)(NULL, WINDOW_CAP, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p != MAP_FAILED)
		(void)madvise(p, WINDOW_CAP, MADV_DONTDUMP);
	return p;
}

/* Drop window i: no mapping of it is left here, and nobody maps it writable (a write seal takes). */
static void window_try_drop(int i)
{
	struct window *w = &g_win[i];
	int fd = w->fd1 - 1;

	for (int k = 0; k < MAPS_MAX; k++)
		if (g_map[k].addr && g_map[k].win == i)
			return;
	if (write_back_window(i))
		scone_err_clear();	  /* (the next sync reports what failed) */
	SYS(munmap)(w->base, WINDOW_CAP); /* (its own writable mapping would hold the seal off) */
	if (SYS(fcntl)(fd, F_ADD_SEALS, F_SEAL_WRITE) != 0) { /* another process still maps it */
		if ((w->base = map_base(fd)) != MAP_FAILED)
			return;
	}
	SYS(close)(fd);
	(void)fdtab_put(w->desc);
	free(w->shadow);
	memset(w, 0, sizeof(*w));
	atomic_fetch_sub_explicit(&g_n_win, 1, memory_order_acq_rel);
}

/* A new window for s's file (status st), filled from the file. Lock held. Returns it or -1 (errno). */
static int window_make(int fd, struct sfd *s, const struct scone_vstat *st)
{
	uint64_t n = st->size < WINDOW_CAP ? st->size : WINDOW_CAP, got = 0;
	struct window *w;
	int i = 0, mfd;
	size_t r;

	if (!vsrv_alone())
		return shield_fail(ENODEV); /* another process may make its own: the stores would split */
	while (i < WINDOWS_MAX && g_win[i].fd1)
		i++;
	if (i == WINDOWS_MAX)
		return shield_fail(ENOMEM);
	w = &g_win[i];
	mfd = SYS(memfd_create)("scone-window", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0)
		return -1;
	if (SYS(ftruncate)(mfd, (off_t)WINDOW_CAP) != 0 || (w->base = map_base(mfd)) == MAP_FAILED) {
		int e = errno;
		SYS(close)(mfd);
		memset(w, 0, sizeof(*w));
		return shield_fail(e);
	}
	while (got < n && !vop_pread(s, w->base + got, (size_t)(n - got), got, &r) && r > 0)
		got += r;
	if (got < n || !shadow_cover(w, (size_t)n) || !(w->desc = fdtab_get(fd))) {
		int e = got < n ? EIO : got ? ENOMEM : EBADF;
		free(w->shadow);
		SYS(munmap)(w->base, WINDOW_CAP);
		SYS(close)(mfd);
		memset(w, 0, sizeof(*w));
		scone_err_clear();
		return shield_fail(e);
	}
	memcpy(w->shadow, w->base, (size_t)n);
	w->fd1 = mfd + 1;
	w->mount = (unsigned)shield_mount_index(s->m);
	memcpy(w->fid, st->file_id, 16);
	atomic_fetch_add_explicit(&g_n_win, 1, memory_order_acq_rel);
	return i;
}

void *shield_map_shared(struct fd_desc *d, int fd, void *addr, size_t len, int prot, int flags, off64_t off)
{
	struct sfd *s = (struct sfd *)d;
	bool writable = (prot & PROT_WRITE) != 0;
	struct scone_vstat st;
	void *p = MAP_FAILED;
	int i = -1, k, e = 0;

	/* (as the kernel: a shared writable mapping needs an fd open for reading and writing) */
	if (writable && (s->flags & O_ACCMODE) != O_RDWR)
		return errno = EACCES, MAP_FAILED;
	/*
	 * MAP_SYNC asks for stores that are durable as they land (persistent
	 * memory, DAX): a window's are not before a write-back, so EOPNOTSUPP,
	 * as the kernel answers for any file not on DAX (InnoDB then writes its
	 * log as usual; given the mapping, it wrote the log by stores alone).
	 */
	if ((flags & MAP_TYPE) == MAP_SHARED_VALIDATE && (flags & MAP_SYNC))
		return errno = EOPNOTSUPP, MAP_FAILED;
	if (!writable && atomic_load_explicit(&g_n_win, memory_order_acquire) == 0)
		return NULL;
	if ((uint64_t)off > WINDOW_CAP || len > WINDOW_CAP - (uint64_t)off)
		return writable ? (errno = ENODEV, MAP_FAILED) : NULL;
	shield_enter();
	if (!s->file || vop_fstat(s, &st))
		e = s->file ? EIO : ENODEV;
	else if ((i = find_window((unsigned)shield_mount_index(s->m), st.file_id)) < 0 && !writable) {
		shield_leave();
		return NULL; /* (read only, no window: the snapshot) */
	} else if (i < 0 && (i = window_make(fd, s, &st)) < 0) {
		e = errno;
	}
	for (k = 0; !e && k < MAPS_MAX && g_map[k].addr; k++)
		;
	if (!e && k == MAPS_MAX)
		e = ENOMEM;
	if (!e) {
		p = SYS(mmap64)(addr, len, prot, flags, g_win[i].fd1 - 1,
				off); /* (the kernel checks the flags) */
		e = p == MAP_FAILED ? errno : 0;
	}
	if (!e)
		g_map[k] = (struct map){.addr = p, .len = len, .win = i, .off = (uint64_t)off};
	else if (i >= 0 && g_win[i].fd1)
		window_try_drop(i); /* (a window made for this call alone goes again) */
	scone_err_clear();
	shield_leave();
	errno = e;
	return p;
}

bool shield_map_pread_locked(struct sfd *s, void *buf, size_t n, uint64_t off, size_t *got)
{
	struct scone_vstat st;
	int i = window_of(s, &st);
	uint64_t end;

	if (i < 0 || off >= WINDOW_CAP)
		return false;
	end = st.size < WINDOW_CAP ? st.size : WINDOW_CAP;
	if (st.size > WINDOW_CAP && off + n > WINDOW_CAP)
		return false; /* (past the window: the file's bytes) */
	*got = off >= end ? 0 : (size_t)(end - off < n ? end - off : n);
	memcpy(buf, g_win[i].base + off, *got);
	return true;
}

void shield_map_pwrite_locked(struct sfd *s, const void *buf, size_t n, uint64_t off)
{
	int i = window_of(s, NULL);

	if (i >= 0 && off < WINDOW_CAP) {
		n = (size_t)(WINDOW_CAP - off < n ? WINDOW_CAP - off : n);
		memcpy(g_win[i].base + off, buf, n);
		shadow_note(&g_win[i], buf, n, off);
	}
}

void shield_map_truncate_locked(struct sfd *s, uint64_t len)
{
	int i = window_of(s, NULL);
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), whole;

	if (i < 0 || len >= WINDOW_CAP)
		return;
	if (g_win[i].shadow_len > len) /* (the file holds zeros there if it grows again) */
		memset(g_win[i].shadow + len, 0, g_win[i].shadow_len - (size_t)len);
	whole = (len + page - 1) / page * page;
	memset(g_win[i].base + len, 0, (size_t)(whole - len));
	if (whole < WINDOW_CAP) /* (the rest: given back, zero when touched again) */
		(void)SYS(fallocate)(g_win[i].fd1 - 1, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				     (off_t)whole, (off_t)(WINDOW_CAP - whole));
}

int shield_map_sync_locked(struct sfd *s)
{
	int i = window_of(s, NULL);

	return i < 0 ? 0
		     : write_back_window(i); /* (through the window's own description: s may be read-only) */
}

void shield_map_sync_all_locked(void)
{
	for (int i = 0; atomic_load(&g_n_win) && i < WINDOWS_MAX; i++)
		if (g_win[i].fd1 && write_back_window(i))
			scone_err_clear(); /* (the commit that follows reports a volume that fails) */
}

/* The map entries [addr, addr + len) overlaps, cut to what stays mapped; windows they leave, dropped. */
static void unmapped(char *addr, size_t len)
{
	bool left[WINDOWS_MAX] = {false};

	for (int k = 0; k < MAPS_MAX; k++) {
		struct map *m = &g_map[k];
		char *end = addr + len, *m_end;
		if (!m->addr || m->addr >= end || m->addr + m->len <= addr)
			continue;
		m_end = m->addr + m->len;
		left[m->win] = true;
		if (addr <= m->addr && end >= m_end) {
			m->addr = NULL;
			continue;
		}
		if (addr > m->addr &&
		    end < m_end) { /* a hole in the middle: the tail is a mapping of its own */
			for (int t = 0; t < MAPS_MAX; t++)
				if (!g_map[t].addr) {
					g_map[t] = (struct map){end, (size_t)(m_end - end), m->win,
								m->off + (uint64_t)(end - m->addr)};
					break;
				}
			m->len = (size_t)(addr - m->addr);
		} else if (addr <= m->addr) { /* the head goes */
			m->off += (uint64_t)(end - m->addr);
			m->len = (size_t)(m_end - end);
			m->addr = end;
		} else { /* the tail goes */
			m->len = (size_t)(addr - m->addr);
		}
	}
	for (int i = 0; i < WINDOWS_MAX; i++)
		if (left[i] && g_win[i].fd1)
			window_try_drop(i);
}

int munmap(void *addr, size_t len)
{
	int r = SYS(munmap)(addr, len), e = errno;

	/* (the runtime's own munmap, with the lock held, is never a window's) */
	if (r == 0 && len && atomic_load_explicit(&g_n_win, memory_order_acquire) &&
	    shield_enter_unless_mine()) {
		size_t page = (size_t)sysconf(_SC_PAGESIZE);
		unmapped(addr, (len + page - 1) / page * page);
		scone_err_clear();
		shield_leave();
	}
	errno = e;
	return r;
}

/* msync of a window's mapping: its bytes into the file; with MS_SYNC, committed as by fsync. */
int msync(void *addr, size_t len, int flags)
{
	REAL(msync);
	int fail = 0;

	if (atomic_load_explicit(&g_n_win, memory_order_acquire) && shield_enter_unless_mine()) {
		for (int k = 0; k < MAPS_MAX && !fail; k++) {
			struct map *m = &g_map[k];
			if (!m->addr || m->addr >= (char *)addr + len || m->addr + m->len <= (char *)addr)
				continue;
			fail = write_back_window(m->win) ||
			       ((flags & MS_SYNC) && shield_commit(win_sfd(&g_win[m->win])->m));
		}
		scone_err_clear();
		shield_leave();
		if (fail)
			return shield_fail(EIO);
	}
	return real_msync(addr, len, flags);
}
