/*
 * shield_map.c - shared writable mappings (MAP_SHARED with PROT_WRITE) of
 * volume files, as SQLite's WAL index (the -shm file) and programs that
 * write a file through mmap make them (docs/runtime.md, "Shared writable
 * mappings").
 *
 * The kernel cannot page a volume file (on the host its bytes are
 * ciphertext), so such a mapping maps the file's *window*: a memfd holding
 * the file's plaintext, made at the file's first shared writable mapping
 * and filled from the file then. Every shared mapping of the file maps the
 * same window, so stores meet as in a kernel file's page cache. While the
 * window exists, reads of the file (vop_pread) come from it, and every
 * change of the file (a write, an append, a truncation by fd, by path or by
 * O_TRUNC) lands in it too: the process that makes the change on the
 * volume (the one holding the volumes: vops.c's local paths) applies it,
 * zeroing what a growth exposes.
 *
 * Write-back: the stores reach the file (through the runtime's write, so
 * sealed) at every local commit of the volume (any process's fsync, msync
 * with MS_SYNC, exit, exec, a fork of the holder), at msync, and when the
 * holder's last mapping of the file goes; only the process holding the
 * volumes writes back, and only the blocks that differ from the window's
 * *shadow* (what the file holds as far as the window knows), so a
 * write-back costs what was stored and never puts back bytes nobody
 * stored. Changes and write-backs happen under the holder's shield lock,
 * one after the other: neither undoes the other. A holder alone in its
 * program drops a window that nobody maps writable any more (its memfd then
 * takes a write seal).
 *
 * Invariants:
 * - one window per file (mount, file id) in the program, the holder's: the
 *   process holding the volumes makes it (at its own mapping, or at
 *   another process's request, VP_WINDOW) and keeps it while other
 *   processes exist. Another process maps the holder's: inherited at fork,
 *   or asked for and passed over the volume server's socket; its copy goes
 *   with its last mapping of it. Only the holder writes a window back, so
 *   one shadow speaks for the file;
 * - while a file has a window its bytes are never in the shared read cache
 *   (stores change them unseen): reads come from the window, here or in
 *   the holder;
 * - a shadow not known to be the file's (a copy taken in, a fork's, a
 *   holder's after a change of holder) is marked: the next write-back
 *   writes every block;
 * - bytes past the file's end are zeroed when the file grows over them,
 *   never written back (the kernel's SIGBUS is not reproduced);
 * - the memfd is one of the runtime's own fds (in the upper half, marked:
 *   a program's close or dup2 onto it is refused as for the others) and
 *   close-on-exec; the window keeps a hold on a description of the file,
 *   so it can be written back after the program closed its fds;
 * - the table of mappings follows munmap, mremap and MAP_FIXED mappings
 *   over them, under the shield lock; munmap, mremap and msync cost one
 *   atomic load while no window exists, and the runtime's own (lock held)
 *   pass straight through.
 *
 * Limits: a window covers WINDOW_CAP bytes of its file (a mapping past
 * them: ENODEV); a program of several processes keeps at most WINDOWS_MAX
 * windows (each until its holder ends); the stores of a process killed by a
 * signal reach the file only if the holder still has the window.
 */
#undef _FORTIFY_SOURCE
#include "lib/log.h"
#include "runtime/shield_internal.h"

#include <stdarg.h>
#include <stdatomic.h>

#define WINDOWS_MAX 128 /* (one mailbox message passes them all: at most 253 fds) */
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
	bool full;	      /* the shadow is not known: read from the file before the next write-back */
	bool gone;	      /* its file left the volume: nothing to write back, found by nobody */
	bool lent;	      /* passed to another process: dropped only when the table is full */
	int ro1;	      /* 1 + a read-only fd of the memfd (mappings through read-only fds), 0: none */
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
static bool g_writing_back;	 /* (lock held) a write-back's own writes change no window */
static bool g_bypass;		 /* (lock held) reads go to the file, not to its window */
static int g_mail[2] = {-1, -1}; /* the mailbox: [0] reads what [1] sent (shield_map_mailbox) */
/* Every window mapping lies in [g_lo, g_hi): munmap, msync and MAP_FIXED elsewhere take no lock. */
static _Atomic uintptr_t g_lo = UINTPTR_MAX, g_hi;

static size_t page_up(size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	return len > SIZE_MAX - page ? len : (len + page - 1) / page * page;
}

static struct sfd *win_sfd(const struct window *w)
{
	return (struct sfd *)w->desc;
}

/* Does this process hold the volumes (and so make windows, and write them back)? */
static bool holder(void)
{
	return vsrv_role() == VR_SERVER && !vsrv_retired() && !fdtab_foreign();
}

/* The window of file fid of mount (-1: none). Lock held. */
static int find_window(unsigned mount, const uint8_t fid[16])
{
	for (int i = 0; i < WINDOWS_MAX; i++)
		if (g_win[i].fd1 && g_win[i].base && !g_win[i].gone && g_win[i].mount == mount &&
		    memcmp(g_win[i].fid, fid, 16) == 0)
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
	bool asked = !s->has_fid;

	if (asked) { /* (the status asked for the id serves the caller too) */
		if (vop_fstat(s, st ? st : &own))
			return -1;
		memcpy(s->fid, (st ? st : &own)->file_id, sizeof(s->fid));
		s->has_fid = true;
	}
	i = find_window((unsigned)shield_mount_index(s->m), s->fid);
	if (i >= 0 && st && !asked && vop_fstat(s, st))
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

/* The first n bytes of s's file into buf (false: fewer came). */
static bool read_file(struct sfd *s, char *buf, size_t n)
{
	size_t got = 0, r;

	while (got < n && !vop_pread(s, buf + got, n - got, got, &r) && r > 0)
		got += r;
	return got == n;
}

static __thread char t_block[BLOCK]; /* (thread-local: too large for some threads' stacks) */

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
	if (w->full) { /* what the file holds, read once */
		bool read;
		g_bypass = true;
		read = read_file(s, w->shadow, n);
		g_bypass = false;
		if (!read)
			return shield_fail(EIO);
		w->full = false;
	}
	g_writing_back = true;
	for (size_t at = 0; at < n; at += BLOCK) {
		size_t len = n - at < BLOCK ? n - at : BLOCK, done = 0;
		if (memcmp(w->base + at, w->shadow + at, len) == 0)
			continue;
		if (!marked)
			shield_mark_dirty(s->m);
		marked = true;
		memcpy(t_block, w->base + at,
		       len); /* (what goes to the file: stores racing it go next time) */
		while (done < len) {
			if (vop_pwrite(s, t_block + done, len - done, at + done, &written) || written == 0) {
				g_writing_back =
				    false; /* (the shadow still differs: the next write-back tries again) */
				return -1;
			}
			done += written;
		}
		memcpy(w->shadow + at, t_block, len);
	}
	g_writing_back = false;
	return 0;
}

/* Window i's stores into its file: by the process holding the volumes only (others: 0, nothing). */
static int write_back_window(int i)
{
	struct window *w = &g_win[i];
	struct sfd *s = win_sfd(w);
	struct scone_vstat st;

	if (!holder() || !w->base || w->gone)
		return 0;
	if (s->stale || vop_fstat(s, &st)) {
		if (!s->stale)
			return -1;
		/* its file left the volume (removed, by another process or a holder before): as a kernel's
		 * mapping of a removed file, the stores go nowhere */
		scone_err_clear();
		w->gone = true;
		return 0;
	}
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

static void mail_post(void);
static void own_free(struct sfd *own);

/*
 * Drop window i where no mapping of it is left here: another process's
 * copy at once (the holder has the window); the holder's once no other
 * process has a copy or a writable mapping of it (each is a writable
 * mapping of the memfd, so a write seal takes only then).
 */
static void window_try_drop(int i, bool full)
{
	struct window *w = &g_win[i];
	int fd = w->fd1 - 1;

	if (fdtab_foreign())
		return; /* (a vfork child: the table and the mappings are its parent's) */
	if (vsrv_retired())
		return; /* (past its last commit: kept, stores and all, for the next holder's mailbox) */
	for (int k = 0; k < MAPS_MAX; k++)
		if (g_map[k].addr && g_map[k].win == i)
			return;
	if (write_back_window(i))
		scone_err_clear(); /* (the next sync reports what failed) */
	/*
	 * Lent to another process, which may not have mapped it yet: dropped
	 * only for a slot. (Dropped each time its holder unmapped it, a window
	 * passed to a process could be sealed again and again before it mapped
	 * it: its mmap failed.)
	 */
	if (w->lent && !full && vsrv_role() == VR_SERVER)
		return;
	if (w->base)
		SYS(munmap)(w->base, WINDOW_CAP); /* (its own writable mapping would hold the seal off) */
	if (vsrv_role() == VR_SERVER &&
	    SYS(fcntl)(fd, F_ADD_SEALS, F_SEAL_WRITE) != 0) { /* another process still maps it */
		/* (without memory to map it again: kept, found by nobody, until the other process goes) */
		if ((w->base = map_base(fd)) == MAP_FAILED)
			w->base = NULL;
		return;
	}
	if (vsrv_role() == VR_SERVER) {
		/*
		 * Sealed: frozen. What another process stored after the write-back
		 * above, before its last munmap, goes in now (read-only mapping).
		 */
		w->base = SYS(mmap)(NULL, WINDOW_CAP, PROT_READ, MAP_SHARED, fd, 0);
		if (w->base != MAP_FAILED && write_back_window(i))
			scone_err_clear();
		if (w->base != MAP_FAILED)
			SYS(munmap)(w->base, WINDOW_CAP);
		w->base = NULL;
	}
	shield_own_close(fd);
	if (w->ro1)
		shield_own_close(w->ro1 - 1);
	own_free(win_sfd(w)); /* (the window's own: nobody else holds it) */
	free(w->shadow);
	memset(w, 0, sizeof(*w));
	atomic_fetch_sub_explicit(&g_n_win, 1, memory_order_acq_rel);
	mail_post();
}

/* A free slot of the table (-1: none). */
static int free_window(void)
{
	for (int i = 0; i < WINDOWS_MAX; i++)
		if (!g_win[i].fd1)
			return i;
	return -1;
}

/*
 * A window's own description of file fid of m (known at vpath), held once:
 * the window's. Never the program's, which may be read-only and whose last
 * close commits: this one is opened by the file's id for reading and
 * writing when first used (vops.c's local_file), and not counted among the
 * mount's open files (fd_volume.c's release).
 */
static struct sfd *own_desc(struct mount *m, const char *vpath, const uint8_t fid[16])
{
	struct sfd *own = calloc(1, sizeof(*own));

	if (!own)
		return NULL;
	fdtab_desc_init(&own->base, &shield_volume_kind);
	own->base.holds = 1;
	own->m = m;
	own->file = true;
	own->window = true;
	own->flags = O_RDWR;
	own->vf_reopen = SCONE_VF_RDWR;
	own->has_fid = true;
	memcpy(own->fid, fid, sizeof(own->fid));
	snprintf(own->vpath, sizeof(own->vpath), "%s", vpath);
	return own;
}

/* An own description no window took (lock held: its release would take the lock). */
static void own_free(struct sfd *own)
{
	vop_close(own);
	free(own);
}

/* Slot i becomes the window of st's file of s's mount: memfd mfd, mapped at w->base, desc held. */
static int window_set(int i, int mfd, struct fd_desc *desc, struct sfd *s, const struct scone_vstat *st)
{
	struct window *w = &g_win[i];

	w->fd1 = mfd + 1;
	w->desc = desc;
	w->mount = (unsigned)shield_mount_index(s->m);
	memcpy(w->fid, st->file_id, 16);
	atomic_fetch_add_explicit(&g_n_win, 1, memory_order_acq_rel);
	return i;
}

/*
 * A new window for s's file (status st), filled from the file; desc, a
 * held description of it, goes to the window. By the holder alone: one
 * window per file in the program. Lock held. Returns it or -1 (errno;
 * desc not taken).
 */
static int window_make(struct fd_desc *desc, struct sfd *s, const struct scone_vstat *st)
{
	uint64_t n = st->size < WINDOW_CAP ? st->size : WINDOW_CAP;
	struct window *w;
	int i, mfd;
	bool read;

	if (!holder())
		return shield_fail(ENODEV); /* (a vfork child, a holder on its way out) */
	if ((i = free_window()) < 0) {	    /* full: the windows nobody maps any more go */
		for (int k = 0; k < WINDOWS_MAX; k++)
			if (g_win[k].fd1)
				window_try_drop(k, true);
		i = free_window();
	}
	if (i < 0)
		return shield_fail(ENOMEM);
	w = &g_win[i];
	mfd = SYS(memfd_create)("scone-window", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (mfd < 0)
		return -1;
	mfd = shield_own_up(mfd);
	if (SYS(ftruncate)(mfd, (off_t)WINDOW_CAP) != 0 || (w->base = map_base(mfd)) == MAP_FAILED) {
		int e = errno;
		shield_own_close(mfd);
		memset(w, 0, sizeof(*w));
		return shield_fail(e);
	}
	read = read_file(s, w->base, (size_t)n);
	if (!read || !shadow_cover(w, (size_t)n)) {
		int e = !read ? EIO : ENOMEM;
		free(w->shadow);
		SYS(munmap)(w->base, WINDOW_CAP);
		shield_own_close(mfd);
		memset(w, 0, sizeof(*w));
		scone_err_clear();
		return shield_fail(e);
	}
	memcpy(w->shadow, w->base, (size_t)n);
	/* (the read cache holds no byte of it from now: stores change them unseen) */
	vcache_forget((unsigned)shield_mount_index(s->m), st->file_id, 0, n);
	window_set(i, mfd, desc, s, st);
	mail_post();
	return i;
}

/*
 * The holder's window of s's file, taken in by another process (its memfd
 * mfd, passed by the holder): stores meet in it; its reads come from it.
 * desc (held) goes to it. Its shadow is not known: should this process
 * hold the volumes one day, its first write-back writes every block.
 */
static int window_adopt(int mfd, struct fd_desc *desc, struct sfd *s, const struct scone_vstat *st)
{
	struct window *w;
	int i = free_window();

	mfd = shield_own_up(mfd);
	if (i < 0) {
		shield_own_close(mfd);
		return shield_fail(ENOMEM);
	}
	w = &g_win[i];
	if ((w->base = map_base(mfd)) == MAP_FAILED) {
		int e = errno;
		shield_own_close(mfd);
		memset(w, 0, sizeof(*w));
		return shield_fail(e);
	}
	w->full = true;
	return window_set(i, mfd, desc, s, st);
}

/*
 * The window of s's file in a process that does not hold the volumes: the
 * holder's, asked for (made there with make). -1 with errno: ENODEV for
 * none (!make), or what failed. Lock held; desc held (taken on success).
 */
static int window_ask(struct fd_desc *desc, struct sfd *s, const struct scone_vstat *st, bool make)
{
	for (int round = 0; round < 8; round++) {
		int mfd = -1, i;
		bool again = false;
		enum scone_err err = vop_window(s, make, &mfd, &again);
		if (again && holder()) {
			/* elected meanwhile: the windows the holder left are this process's now (mailbox) */
			struct scone_vstat now;
			if ((i = find_window((unsigned)shield_mount_index(s->m), st->file_id)) >= 0 || !make)
				return i >= 0 ? i : shield_fail(ENODEV);
			if (vop_fstat(s, &now)) {
				scone_err_clear();
				return shield_fail(EIO);
			}
			return window_make(desc, s, &now);
		}
		if (again)
			continue; /* (another process holds them now: ask it) */
		if (err) {
			int e = err == SCONE_ERR_NOT_FOUND ? ENODEV : err == SCONE_ERR_NOMEM ? ENOMEM : EIO;
			scone_err_clear();
			return shield_fail(e);
		}
		/* (EPERM: the holder dropped it meanwhile, sealed: ask again) */
		if ((i = window_adopt(mfd, desc, s, st)) >= 0 || errno != EPERM)
			return i;
	}
	return shield_fail(EAGAIN);
}

static void unmapped(char *addr, size_t len, int keep);

/* Leave the shield's lock (what failed on the way was reported). */
static void map_leave(void)
{
	scone_err_clear();
	shield_leave();
}

/* Might [addr, addr + len) hold a window mapping? */
static bool near_windows(const void *addr, size_t len)
{
	uintptr_t a = (uintptr_t)addr;

	return atomic_load_explicit(&g_n_win, memory_order_acquire) &&
	       a < atomic_load_explicit(&g_hi, memory_order_relaxed) &&
	       a + len > atomic_load_explicit(&g_lo, memory_order_relaxed);
}

/* A window mapping at [p, p + len): the range the fast paths look at covers it. */
static void note_range(const char *p, size_t len)
{
	uintptr_t a = (uintptr_t)p, b = a + len, cur;

	for (cur = atomic_load(&g_lo); a < cur && !atomic_compare_exchange_weak(&g_lo, &cur, a);)
		;
	for (cur = atomic_load(&g_hi); b > cur && !atomic_compare_exchange_weak(&g_hi, &cur, b);)
		;
}

/* A read-only fd of w's memfd, for mappings of read-only fds (-1, errno). */
static int read_only_fd(struct window *w)
{
	char path[64];
	int fd;

	if (w->ro1)
		return w->ro1 - 1;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", w->fd1 - 1);
	if ((fd = SYS(open)(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	fd = shield_own_up(fd);
	w->ro1 = fd + 1;
	return fd;
}

/*
 * The window of s's file (status st) for a new mapping: found, made by the
 * holder, or asked of it (make: for a writable mapping). -1 with errno;
 * ENODEV for a read-only mapping of a file without one.
 */
static int window_for(struct sfd *s, const struct scone_vstat *st, bool make)
{
	struct sfd *own;
	int i = find_window((unsigned)shield_mount_index(s->m), st->file_id);

	if (i >= 0 || (!make && vsrv_role() != VR_CLIENT) || fdtab_foreign())
		return i >= 0 ? i
			      : shield_fail(ENODEV); /* (a vfork child: its parent's memory, its own fds) */
	if (!(own = own_desc(s->m, s->vpath, st->file_id)))
		return shield_fail(ENOMEM);
	if (vsrv_role() != VR_CLIENT && s->f && scone_vfile_dup_access(s->f, &own->f)) {
		own_free(own);
		return shield_fail(ENOMEM);
	}
	i = vsrv_role() == VR_CLIENT ? window_ask(&own->base, s, st, make) : window_make(&own->base, s, st);
	if (i < 0) {
		int e = errno;
		own_free(own);
		errno = e;
	}
	return i;
}

void *shield_map_shared(struct fd_desc *d, void *addr, size_t len, int prot, int flags, off64_t off)
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
	/* (read only: a snapshot unless the file has a window, here or, for another process, the holder's) */
	if (!writable && atomic_load_explicit(&g_n_win, memory_order_acquire) == 0 &&
	    vsrv_role() != VR_CLIENT)
		return NULL;
	if ((uint64_t)off > WINDOW_CAP || len > WINDOW_CAP - (uint64_t)off)
		return writable ? (errno = ENODEV, MAP_FAILED) : NULL;
	shield_enter();
	if (!s->file || vop_fstat(s, &st))
		e = s->file ? EIO : ENODEV;
	else if ((i = window_for(s, &st, writable)) < 0 && !writable && errno == ENODEV) {
		map_leave();
		return NULL; /* (read only, no window: the snapshot) */
	} else if (i < 0) {
		e = errno;
	}
	for (k = 0; !e && k < MAPS_MAX && g_map[k].addr; k++)
		;
	if (!e && k == MAPS_MAX)
		e = ENOMEM;
	if (!e) {
		/* (the kernel checks the flags; through a read-only fd, as it would: no later mprotect to
		 * write) */
		int mfd = (s->flags & O_ACCMODE) == O_RDWR ? g_win[i].fd1 - 1 : read_only_fd(&g_win[i]);
		p = mfd < 0 ? MAP_FAILED : SYS(mmap64)(addr, len, prot, flags, mfd, off);
		e = p == MAP_FAILED ? errno : 0;
	}
	if (!e) {
		g_map[k] = (struct map){.addr = p, .len = page_up(len), .win = i, .off = (uint64_t)off};
		note_range(p, g_map[k].len);
		if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE))
			unmapped(p, g_map[k].len, k); /* (what it replaced) */
	} else if (i >= 0 && g_win[i].fd1)
		window_try_drop(i, false); /* (a window made for this call alone goes again) */
	map_leave();
	errno = e;
	return p;
}

/*
 * The holder, for another process's mapping of s's file (one of its
 * handles): the file's window, made with make; a dup of its memfd to pass.
 */
enum scone_err shield_map_serve(struct sfd *s, bool make, int *pass)
{
	struct scone_vstat st;
	struct sfd *own;
	int i, e;

	*pass = -1;
	if (!s->file || !s->f)
		return scone_err_set(SCONE_ERR_INVALID, "a window of what is not a file here");
	SCONE_TRY(vop_fstat(s, &st));
	if ((i = find_window((unsigned)shield_mount_index(s->m), st.file_id)) < 0) {
		if (!make)
			return scone_err_set(SCONE_ERR_NOT_FOUND, "%s has no window", s->vpath);
		/* a writable mapping: the handle's file open for writing (as its fd had to be) */
		if (!(s->vf_reopen & (SCONE_VF_WRONLY | SCONE_VF_RDWR)))
			return scone_err_set(SCONE_ERR_PERMISSION, "%s: a window of a file open for reading",
					     s->vpath);
		if (!(own = own_desc(s->m, s->vpath, st.file_id)))
			return scone_err_set(SCONE_ERR_NOMEM, "a window");
		if (scone_vfile_dup_access(s->f, &own->f)) {
			free(own);
			return SCONE_ERR_NOMEM;
		}
		if ((i = window_make(&own->base, own, &st)) < 0) {
			e = errno;
			own_free(own);
			return scone_err_set(e == ENOMEM ? SCONE_ERR_NOMEM : SCONE_ERR_IO,
					     "%s: no window: %s", s->vpath, strerror(e));
		}
	}
	if ((*pass = SYS(fcntl)(g_win[i].fd1 - 1, F_DUPFD_CLOEXEC, shield_own_fd_floor())) < 0)
		return scone_err_set(SCONE_ERR_IO, "a window: %s", strerror(errno));
	g_win[i].lent = true;
	shield_own_mark(*pass, true);
	return SCONE_ERR_OK;
}

/*
 * ---- the mailbox: the holder's windows, for the next holder ----
 *
 * A window is memory of the processes that map it, not of the volume. A
 * holder that leaves (exit, exec, a crash) would take the program's windows
 * with it, and the next holder would make a second window of a file others
 * still map: their stores would never reach the file, and SQLite's
 * processes would disagree on their WAL index. So the holder keeps its
 * windows in flight on a socket every process of the program has (a
 * SOCK_SEQPACKET pair made with the volumes' shared state, inherited at
 * fork, passed with the handover's key at exec, never named): one message,
 * the windows' (mount, file id) with their memfds (SCM_RIGHTS). The next
 * holder takes them over before it serves (shield_map_holding). Only the
 * holder reads or writes it, under its lock.
 */
struct mail_entry {
	uint32_t mount;
	uint8_t fid[16];
};

#define MAIL_MAX (4 + WINDOWS_MAX * sizeof(struct mail_entry))

void shield_map_mailbox(int rd, int wr)
{
	int fds[2] = {rd, wr};

	for (int k = 0; k < 2; k++) {
		if (fds[k] >= 0) {
			(void)SYS(fcntl)(fds[k], F_SETFD, FD_CLOEXEC);
			fds[k] = shield_own_up(fds[k]); /* (moved up and marked, as a window's memfd) */
		}
		if (g_mail[k] >= 0)
			shield_own_close(g_mail[k]);
		g_mail[k] = fds[k];
	}
}

enum scone_err shield_map_mailbox_new(void)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
		return scone_err_set(scone_err_from_errno(errno), "volumes: the windows' mailbox: %s",
				     strerror(errno));
	shield_map_mailbox(sv[0], sv[1]);
	return SCONE_ERR_OK;
}

void shield_map_mailbox_dup(int out[2])
{
	for (int k = 0; k < 2; k++)
		out[k] = g_mail[k] >= 0 ? SYS(fcntl)(g_mail[k], F_DUPFD_CLOEXEC, 3) : -1;
	if (out[0] < 0 || out[1] < 0) { /* (both or none) */
		for (int k = 0; k < 2; k++)
			if (out[k] >= 0)
				SYS(close)(out[k]);
		out[0] = out[1] = -1;
	}
}

/* A window the last holder had, taken over: in the table unless this process has it already. */
static void mail_take(const struct mail_entry *e, int mfd)
{
	int i;
	struct scone_vfile *f;
	struct scone_vstat st = {0};
	struct mount *m;
	struct sfd *own;

	if (e->mount >= shield_mount_total() || find_window(e->mount, e->fid) >= 0 ||
	    !scone_memfd_named(mfd, "scone-window") || !(m = shield_mount(e->mount))->vol ||
	    !(own = own_desc(m, "", e->fid))) {
		SYS(close)(mfd);
		return;
	}
	/* (its path, for messages; opened by its id when first used) */
	if (scone_vfile_open_id_as(m->vol, e->fid, SCONE_VF_RDONLY, own->vpath, sizeof(own->vpath), &f) ||
	    (scone_vfile_close(f), !own->vpath[0])) {
		scone_err_clear(); /* (gone from the namespace: nobody opens it again) */
		free(own);
		SYS(close)(mfd);
		return;
	}
	memcpy(st.file_id, e->fid, sizeof(st.file_id));
	if ((i = window_adopt(mfd, &own->base, own, &st)) < 0)
		free(own);
	else
		g_win[i].lent = true; /* (other processes map it) */
}

/* The mailbox's message, each window to mail_take (take) or closed. */
static void mail_drain(bool take)
{
	static uint8_t buf[MAIL_MAX];
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(WINDOWS_MAX * sizeof(int))];
	} ctl;

	for (;;) {
		struct iovec v = {.iov_base = buf, .iov_len = sizeof(buf)};
		struct msghdr mh = {
		    .msg_iov = &v, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof(ctl.b)};
		ssize_t n = recvmsg(g_mail[0], &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		int fds[WINDOWS_MAX];
		size_t k = 0;
		uint32_t count;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
				for (size_t j = 0; j < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); j++, k++)
					memcpy(&fds[k < WINDOWS_MAX ? k : WINDOWS_MAX - 1],
					       CMSG_DATA(c) + j * sizeof(int), sizeof(int));
		count = n >= 4 ? scone_get_le32(buf) : 0;
		for (size_t j = 0; j < k && j < WINDOWS_MAX; j++) {
			struct mail_entry e;
			if (take && k == count && (size_t)n == 4 + count * sizeof(e)) {
				memcpy(&e, buf + 4 + j * sizeof(e), sizeof(e));
				mail_take(&e, fds[j]);
			} else {
				SYS(close)(fds[j]);
			}
		}
	}
}

/* The holder's windows into the mailbox, in place of what it held. Lock held. */
static void mail_post(void)
{
	static uint8_t buf[MAIL_MAX];
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(WINDOWS_MAX * sizeof(int))];
	} ctl;
	struct iovec v = {.iov_base = buf};
	struct msghdr mh = {.msg_iov = &v, .msg_iovlen = 1};
	int fds[WINDOWS_MAX];
	uint32_t n = 0;
	ssize_t r;

	if (g_mail[0] < 0 || !holder())
		return;
	mail_drain(true); /* (a window the message has and this process lacks is taken, not lost) */
	memset(&ctl, 0, sizeof(ctl));
	for (int i = 0; i < WINDOWS_MAX; i++) {
		struct mail_entry e = {.mount = g_win[i].mount};
		int fd = g_win[i].fd1 - 1;
		if (!g_win[i].fd1 || !g_win[i].base)
			continue;
		memcpy(e.fid, g_win[i].fid, sizeof(e.fid));
		memcpy(buf + 4 + n * sizeof(e), &e, sizeof(e));
		fds[n++] = fd;
	}
	if (!n)
		return;
	scone_put_le32(buf, n);
	v.iov_len = 4 + n * sizeof(struct mail_entry);
	mh.msg_control = ctl.b;
	mh.msg_controllen = CMSG_SPACE(n * sizeof(int));
	CMSG_FIRSTHDR(&mh)->cmsg_level = SOL_SOCKET;
	CMSG_FIRSTHDR(&mh)->cmsg_type = SCM_RIGHTS;
	CMSG_FIRSTHDR(&mh)->cmsg_len = CMSG_LEN(n * sizeof(int));
	memcpy(CMSG_DATA(CMSG_FIRSTHDR(&mh)), fds, n * sizeof(int));
	while ((r = sendmsg(g_mail[1], &mh, MSG_DONTWAIT | MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	if (r < 0) /* (the windows then go with this holder, as they did before the mailbox) */
		scone_debug("runtime: the windows' mailbox: %s", strerror(errno));
}

void shield_map_holding(bool take)
{
	if (g_mail[0] < 0 || shield_mount_total() == 0)
		return; /* (a program's start: called again once its volumes are mounted) */
	mail_drain(take);
	mail_post();
}

bool shield_map_pread_locked(struct sfd *s, void *buf, size_t n, uint64_t off, size_t *got)
{
	struct scone_vstat st;
	int i = g_bypass ? -1 : window_of(s, &st);
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

int shield_map_before(struct sfd *s, uint64_t *size)
{
	struct scone_vstat st;
	int i;

	if (g_writing_back || (i = window_of(s, &st)) < 0)
		return -1;
	*size = st.size;
	return i;
}

int shield_map_before_path(struct mount *m, const char *vpath, uint64_t *size)
{
	struct scone_vstat st;
	int i;

	if (atomic_load_explicit(&g_n_win, memory_order_acquire) == 0 || g_writing_back)
		return -1;
	if (vop_stat(m, vpath, &st) || st.is_dir) {
		scone_err_clear();
		return -1;
	}
	if ((i = find_window((unsigned)shield_mount_index(m), st.file_id)) >= 0)
		*size = st.size;
	return i;
}

/* [from, to) of window w (and what its file holds there) is zero now. */
static void zero_range(struct window *w, uint64_t from, uint64_t to)
{
	if (to > WINDOW_CAP)
		to = WINDOW_CAP;
	if (from >= to)
		return;
	{ /* whole pages given back (zero when touched again), the edges cleared */
		uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), a = (from + page - 1) / page * page,
			 b = to / page * page;
		if (b > a && SYS(fallocate)(w->fd1 - 1, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)a,
					    (off_t)(b - a)) == 0) {
			memset(w->base + from, 0, (size_t)(a - from));
			memset(w->base + b, 0, (size_t)(to - b));
		} else {
			memset(w->base + from, 0, (size_t)(to - from));
		}
	}
	if (from < w->shadow_len)
		memset(w->shadow + from, 0, (size_t)((to < w->shadow_len ? to : w->shadow_len) - from));
}

void shield_map_wrote(int i, const void *buf, size_t n, uint64_t off, uint64_t size_before)
{
	struct window *w = &g_win[i];

	if (off > size_before) /* (a hole: zeros, whatever was stored past the old end) */
		zero_range(w, size_before, off);
	if (off >= WINDOW_CAP)
		return;
	n = (size_t)(WINDOW_CAP - off < n ? WINDOW_CAP - off : n);
	memcpy(w->base + off, buf, n);
	shadow_note(w, buf, n, off);
}

void shield_map_resized(int i, uint64_t size_before, uint64_t size)
{
	/*
	 * Grown: what it exposes reads as zeros (stores past the old end go).
	 * Shrunk: all past the new end is zero, in the file too if it grows again.
	 */
	if (size > size_before)
		zero_range(&g_win[i], size_before, size);
	else
		zero_range(&g_win[i], size, WINDOW_CAP);
}

int shield_map_commit_locked(struct mount *m)
{
	unsigned mount = (unsigned)shield_mount_index(m);
	int fail = 0;

	for (int i = 0; atomic_load(&g_n_win) && i < WINDOWS_MAX; i++)
		if (g_win[i].fd1 && g_win[i].mount == mount && write_back_window(i))
			fail = -1; /* (the sync that asked fails: the stores are not in the file) */
	return fail;
}

bool shield_map_has(const struct mount *m)
{
	unsigned mount = (unsigned)shield_mount_index(m);

	for (int i = 0; atomic_load(&g_n_win) && i < WINDOWS_MAX; i++)
		if (g_win[i].fd1 && g_win[i].mount == mount)
			return true;
	return false;
}

void shield_map_forget_remote(void)
{
	for (int i = 0; atomic_load(&g_n_win) && i < WINDOWS_MAX; i++)
		if (g_win[i].fd1) {
			vop_forget_remote(win_sfd(&g_win[i]));
			/* (its shadow is the holder's of the fork, or another's: not what the file holds now)
			 */
			g_win[i].full = true;
		}
}

void shield_map_forked(void)
{
	for (int i = 0; atomic_load(&g_n_win) && i < WINDOWS_MAX; i++)
		if (g_win[i].fd1)
			window_try_drop(i, false); /* (a copy it does not map: it would keep it alive) */
}

bool shield_map_covers(unsigned mount, const uint8_t fid[16])
{
	return atomic_load_explicit(&g_n_win, memory_order_acquire) && find_window(mount, fid) >= 0;
}

/*
 * The map entries [addr, addr + len) overlaps (but entry keep), cut to what
 * stays mapped; windows they leave, dropped where nothing maps them. Lock
 * held.
 */
static void unmapped(char *addr, size_t len, int keep)
{
	bool left[WINDOWS_MAX] = {false};

	for (int k = 0; k < MAPS_MAX; k++) {
		struct map *m = &g_map[k];
		char *end = addr + len, *m_end;
		if (!m->addr || k == keep || m->addr >= end || m->addr + m->len <= addr)
			continue;
		m_end = m->addr + m->len;
		left[m->win] = true;
		if (addr <= m->addr && end >= m_end) {
			m->addr = NULL;
			continue;
		}
		if (addr > m->addr &&
		    end < m_end) { /* a hole in the middle: the tail is a mapping of its own */
			int t = 0;
			while (t < MAPS_MAX && g_map[t].addr)
				t++;
			if (t == MAPS_MAX)
				continue; /* (no room: the entry stays whole, its window kept) */
			g_map[t] = (struct map){end, (size_t)(m_end - end), m->win,
						m->off + (uint64_t)(end - m->addr)};
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
			window_try_drop(i, false);
}

void shield_map_replaced(void *addr, size_t len)
{
	if (!len || !near_windows(addr, len) || !shield_enter_unless_mine())
		return;
	unmapped(addr, page_up(len), -1);
	map_leave();
}

/*
 * The lock is taken before the unmapping (when windows exist), so another
 * thread's new mapping at the same address is recorded after this one's
 * entry went. The runtime's own munmap (lock held) is never a window's.
 */
int munmap(void *addr, size_t len)
{
	bool locked = len && near_windows(addr, len) && shield_enter_unless_mine();
	int r = SYS(munmap)(addr, len), e = errno;

	if (locked) {
		if (r == 0)
			unmapped(addr, page_up(len), -1);
		map_leave();
	}
	errno = e;
	return r;
}

/* mremap of a window's mapping: its entry follows (and a fixed target replaces what was there). */
void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
	REAL(mremap);
	bool locked = near_windows(old, old_len ? old_len : 1) && shield_enter_unless_mine();
	void *target = NULL, *p;
	int e, k = 0;

	if (flags & MREMAP_FIXED) {
		va_list ap;
		va_start(ap, flags);
		target = va_arg(ap, void *);
		va_end(ap);
	}
	p = real_mremap(old, old_len, new_len, flags, target);
	e = errno;
	if (locked) {
		while (p != MAP_FAILED && k < MAPS_MAX && g_map[k].addr != old)
			k++;
		if (p != MAP_FAILED && k < MAPS_MAX) {
			g_map[k].addr = p;
			g_map[k].len = page_up(new_len);
			unmapped(p, g_map[k].len, k);
		} else if (p != MAP_FAILED && (flags & MREMAP_FIXED)) {
			unmapped(p, page_up(new_len), -1);
		}
		if (p != MAP_FAILED && k < MAPS_MAX)
			note_range(p, g_map[k].len);
		map_leave();
	}
	errno = e;
	return p;
}

/*
 * msync of a window's mapping: with MS_SYNC a commit of its volume (which
 * writes the stores back first), as fsync; otherwise the stores go into the
 * file now (by the process holding the volumes; another's go at the next
 * commit).
 */
int msync(void *addr, size_t len, int flags)
{
	REAL(msync);
	int fail = 0;

	if (len && near_windows(addr, len) && shield_enter_unless_mine()) {
		for (int k = 0; k < MAPS_MAX && !fail; k++) {
			struct map *m = &g_map[k];
			if (!m->addr || m->addr >= (char *)addr + len || m->addr + m->len <= (char *)addr)
				continue;
			fail = (flags & MS_SYNC) ? shield_commit(win_sfd(&g_win[m->win])->m) != SCONE_ERR_OK
						 : write_back_window(m->win);
		}
		map_leave();
		if (fail)
			return shield_fail(EIO);
	}
	return real_msync(addr, len, flags);
}
