/*
 * vops.c - the volume behind a mount, wherever it lives. In the process that
 * holds the volumes (vserver.c: the server) each operation calls the volume
 * library; in a process they are served to (a client), it is a request to
 * the server. The shield calls these with its lock held and knows nothing of
 * where the volume is.
 *
 * A client's open files are handles on the server, opened again by path
 * when a new server took over (rh 0 with file set). When a request finds the
 * server gone, an election runs (vserver.c) and the operation is done again,
 * locally if this process won it.
 */
#undef _FORTIFY_SOURCE
#include "runtime/shield_internal.h"

#include "runtime/vproto.h"

static bool served(void)
{
	return vsrv_role() == VR_CLIENT;
}

static void ask(struct vp_msg *q, enum vp_op op, const struct mount *m)
{
	memset(q, 0, offsetof(struct vp_msg, p1));
	q->p1[0] = q->p2[0] = q->detail[0] = '\0';
	q->has_st = false;
	q->data = NULL;
	q->data_size = 0;
	q->op = (uint8_t)op;
	q->mount = (uint8_t)shield_mount_index(m);
}

static enum scone_err set_path(char out[VP_MAX_PATH], const char *vpath)
{
	if ((size_t)snprintf(out, VP_MAX_PATH, "%s", vpath) >= VP_MAX_PATH)
		return scone_err_set(SCONE_ERR_NAME_TOO_LONG, "%.64s...: path too long", vpath);
	return SCONE_ERR_OK;
}

/*
 * The request/answer pair each remote operation uses: thread-local, since
 * a vp_msg carries two paths (too large for some threads' stacks).
 */
static __thread struct vp_msg t_q, t_a;

/* A path request of m: RETRY in *again when the server changed. */
static enum scone_err path_call(struct mount *m, enum vp_op op, const char *p1, const char *p2, uint64_t a,
				struct scone_wbuf *out, bool *again)
{
	ask(&t_q, op, m);
	SCONE_TRY(set_path(t_q.p1, p1));
	if (p2)
		SCONE_TRY(set_path(t_q.p2, p2));
	t_q.a = a;
	return vsrv_call(&t_q, &t_a, out, again);
}

/*
 * Give back s's handle on the server. A description opened only for
 * reading asks for no answer: nothing of its close can fail or commit
 * anything it wrote, and the server takes the requests of a connection in
 * order, so the handle is closed before anything this process asks next.
 */
static void close_remote(struct sfd *s)
{
	bool again;

	if (!s->rh || !served())
		return;
	ask(&t_q, VP_CLOSE, s->m);
	t_q.h = s->rh;
	s->rh = 0;
	if ((s->flags & O_ACCMODE) == O_RDONLY) {
		t_q.a = VP_CLOSE_NO_ANSWER;
		if (vsrv_send(&t_q))
			scone_err_clear(); /* the server closes what a gone connection held */
		return;
	}
	if (vsrv_call(&t_q, &t_a, NULL, &again))
		scone_err_clear();
}

/* s's path names another file now, or none: the file s had is gone (removed or replaced). */
static enum scone_err replaced(struct sfd *s)
{
	s->stale = true;
	return scone_err_set(SCONE_ERR_NOT_FOUND, "%s was removed or replaced by another process", s->vpath);
}

/* An open request (h: 0, or VP_OPEN_CHECK | open(2) flags); *again when the server changed. */
static enum scone_err open_call(struct sfd *s, const char *vpath, unsigned vf, uint32_t mode, uint64_t h,
				bool *again)
{
	ask(&t_q, VP_OPEN, s->m);
	SCONE_TRY(set_path(t_q.p1, vpath));
	t_q.a = vf;
	t_q.b = mode;
	t_q.h = h;
	return vsrv_call(&t_q, &t_a, NULL, again);
}

/* s's id from its own status. */
static void note_fid(struct sfd *s, const struct scone_vstat *st)
{
	memcpy(s->fid, st->file_id, sizeof(s->fid));
	s->has_fid = true;
}

/* The answer's handle, and the file's id (its key to the read cache) where the answer has its status. */
static void take_handle(struct sfd *s)
{
	s->rh = t_a.h;
	if (t_a.has_st && !s->has_fid)
		note_fid(s, &t_a.st);
}

/* Opened again later (a new server, an exec'd program): never create or truncate twice. */
static unsigned reopen_flags(unsigned vf)
{
	return vf & ~(unsigned)(SCONE_VF_CREAT | SCONE_VF_EXCL | SCONE_VF_TRUNC);
}

/*
 * A description for reading whose path names another file now, or none:
 * its own file by id, where it went (renamed away) or as the server kept it
 * for the description's pin (vcache.h), as the kernel's reads on.
 */
static bool by_id(const struct sfd *s)
{
	return s->has_fid && (s->flags & O_ACCMODE) == O_RDONLY;
}

/* An open by path that failed because the path names no file (or a directory) now. */
static bool gone_from_path(enum scone_err err)
{
	return err == SCONE_ERR_NOT_FOUND || err == SCONE_ERR_IS_DIR || err == SCONE_ERR_NOT_DIR;
}

static enum scone_err open_fid_call(struct sfd *s, bool *again)
{
	enum scone_err err;

	ask(&t_q, VP_OPEN, s->m);
	SCONE_TRY(set_path(t_q.p1, s->vpath));
	t_q.h = VP_OPEN_FID;
	t_q.data = s->fid;
	t_q.data_size = sizeof(s->fid);
	err = vsrv_call(&t_q, &t_a, NULL, again);
	if (err || *again)
		return err;
	s->rh = t_a.h; /* s keeps its id: the answer must have the same */
	if (!t_a.has_st || memcmp(t_a.st.file_id, s->fid, sizeof(s->fid)) != 0) {
		close_remote(s);
		return scone_err_set(SCONE_ERR_NOT_FOUND, "%s: the server opened another file by its id",
				     s->vpath);
	}
	return SCONE_ERR_OK;
}

/* The file's handle on the server, opened (again) by its path if it has none. */
static enum scone_err remote_handle(struct sfd *s, bool *again)
{
	unsigned vf = (unsigned)s->vf_reopen;
	enum scone_err err;

	if (s->rh)
		return SCONE_ERR_OK;
	if (s->stale)
		return scone_err_set(SCONE_ERR_NOT_FOUND, "%s was removed by another process", s->vpath);
	err = open_call(s, s->vpath, vf, 0, 0, again);
	if (!err && !*again) {
		bool other = t_a.has_st && s->has_fid && memcmp(s->fid, t_a.st.file_id, sizeof(s->fid)) != 0;
		if (!other) {
			take_handle(s);
			return SCONE_ERR_OK;
		}
		s->rh = t_a.h; /* another file's: given back (s keeps its own file's id) */
		close_remote(s);
	}
	if (*again || (err && !gone_from_path(err)))
		return err;
	if (by_id(s)) {
		scone_err_clear();
		err = open_fid_call(s, again);
		if (*again || err != SCONE_ERR_NOT_FOUND)
			return err;
	}
	scone_err_clear();
	return replaced(s);
}

/* A request on s's file: its handle first. */
static enum scone_err file_call(struct sfd *s, enum vp_op op, uint64_t a, uint64_t b, const void *data,
				size_t size, struct scone_wbuf *out, bool *again)
{
	SCONE_TRY(remote_handle(s, again));
	if (*again)
		return SCONE_ERR_OK;
	ask(&t_q, op, s->m);
	t_q.h = s->rh;
	t_q.a = a;
	t_q.b = b;
	t_q.data = data;
	t_q.data_size = size;
	return vsrv_call(&t_q, &t_a, out, again);
}

enum scone_err vop_window(struct sfd *s, bool make, int *fd, bool *again)
{
	*fd = -1;
	*again = false;
	if (!served())
		return scone_err_set(SCONE_ERR_INVALID, "a window asked of no holder");
	SCONE_TRY(remote_handle(s, again));
	if (*again)
		return SCONE_ERR_OK;
	ask(&t_q, VP_WINDOW, s->m);
	t_q.h = s->rh;
	t_q.a = make ? VP_WINDOW_MAKE : 0;
	SCONE_TRY(vsrv_call_taking(&t_q, &t_a, NULL, again, fd));
	if (!*again && *fd < 0)
		return scone_err_set(SCONE_ERR_IO, "%s: the window came without its memfd", s->vpath);
	return SCONE_ERR_OK;
}

/* Locally, a file opened on another server is opened again by its path. */
static enum scone_err local_file(struct sfd *s)
{
	if (s->f)
		return SCONE_ERR_OK;
	if (s->stale)
		return scone_err_set(SCONE_ERR_NOT_FOUND, "%s was removed by another process", s->vpath);
	if (s->window) { /* (by its id: wherever a rename took it; never another file of its name) */
		enum scone_err err = scone_vfile_open_id_as(s->m->vol, s->fid, SCONE_VF_RDWR, NULL, 0, &s->f);
		return err == SCONE_ERR_NOT_FOUND ? replaced(s) : err;
	}
	enum scone_err err = scone_vfile_open(s->m->vol, s->vpath, (unsigned)s->vf_reopen, 0, &s->f);
	if (!err && s->has_fid) { /* the path must still name the file this description had */
		struct scone_vstat st;
		if (scone_vfile_stat(s->f, &st) != SCONE_ERR_OK ||
		    memcmp(st.file_id, s->fid, sizeof(s->fid)) != 0) {
			scone_vfile_close(s->f);
			s->f = NULL;
			err = SCONE_ERR_NOT_FOUND;
		}
	}
	if (!gone_from_path(err))
		return err;
	if (by_id(s)) {
		scone_err_clear();
		if ((err = vop_open_fid(s, s->fid)) != SCONE_ERR_NOT_FOUND)
			return err;
	}
	scone_err_clear();
	return replaced(s);
}

enum scone_err vop_open_fid(struct sfd *s, const uint8_t fid[16])
{
	struct scone_vfile *kept = vsrv_kept(s->m, fid);

	s->file = true;
	s->vf_reopen = SCONE_VF_RDONLY;
	memcpy(s->fid, fid, sizeof(s->fid));
	s->has_fid = true;
	return kept ? scone_vfile_dup(kept, &s->f) : scone_vfile_open_id(s->m->vol, fid, &s->f);
}

/*
 * After the serving process's last commit (it exits) another process may
 * hold the volumes already: this one changes nothing more.
 */
static enum scone_err local_change(void)
{
	if (vsrv_retired())
		return scone_err_set(SCONE_ERR_IO,
				     "the volumes were committed for the last time: the process is exiting");
	return SCONE_ERR_OK;
}

/* ---- the shared read cache (vcache.h) ---- */

static unsigned mount_no(const struct mount *m)
{
	return (unsigned)shield_mount_index(m);
}

/* A local file's id, taken once. */
static const uint8_t *local_fid(struct sfd *s)
{
	struct scone_vstat st;

	if (!s->has_fid && s->f && scone_vfile_stat(s->f, &st) == SCONE_ERR_OK)
		note_fid(s, &st);
	return s->has_fid ? s->fid : NULL;
}

/* Before a change to a local file is acknowledged: what the cache holds of it goes. */
static void forget_file(struct sfd *s, uint64_t off, uint64_t n)
{
	const uint8_t *id;

	if (!vcache_used())
		return;
	if ((id = local_fid(s)))
		vcache_forget(mount_no(s->m), id, off, n);
	else
		vcache_forget_all();
}

/*
 * After a change to a local file's bytes (lock held, before the answer):
 * its new status goes back into the cache, where the change's forget_file
 * took the old one out. Every other process's fstat and lseek(SEEK_END)
 * then answer locally, as before the write (PostgreSQL's backends ask a
 * relation's size at every query while the others write its pages). So do
 * the whole blocks the write gave (n bytes of data at off), as the kernel's
 * page cache keeps what was written: the pages pgbench -i or a checkpoint
 * wrote are then read without asking the server. Only a cache in use: a
 * program of one process never fills it.
 */
static void recache_written(struct sfd *s, uint64_t off, const void *data, size_t n)
{
	if (vcache_used())
		vop_cache_data(s, off, data, n);
}

/* The file of status st: its status, and its blocks from byte from to its end. */
static void forget_from(const struct mount *m, const struct scone_vstat *st, uint64_t from)
{
	vcache_forget(mount_no(m), st->file_id, from, st->size > from ? st->size - from : 0);
}

/* Before a truncation of a local file: its blocks from the new end to the old. */
static void forget_tail(struct sfd *s, uint64_t from)
{
	struct scone_vstat st;

	if (!vcache_used())
		return;
	if (scone_vfile_stat(s->f, &st) != SCONE_ERR_OK) {
		scone_err_clear();
		vcache_forget_all();
		return;
	}
	forget_from(s->m, &st, from);
}

/*
 * Before a change by path (a truncation, chmod, mtime): what the cache
 * holds of the file from byte from on, and its status.
 */
static void forget_path(struct mount *m, const char *vpath, uint64_t from)
{
	struct scone_vstat st;

	if (!vcache_used())
		return;
	if (scone_volume_stat(m->vol, vpath, &st) != SCONE_ERR_OK) {
		scone_err_clear();
		return; /* nothing there to have been cached */
	}
	if (!st.is_dir)
		forget_from(m, &st, from);
}

/*
 * A change of the namespace (which file a path names): before it, every
 * path's file id is forgotten; and should vpath's file leave the namespace
 * (removed, or another renamed over it), a pinned one is kept for the
 * descriptions opened from the cache alone: names first, then pins (pin()
 * checks in the other order).
 */
static void unnaming(struct mount *m, const char *vpath)
{
	struct scone_vstat st;

	if (!vcache_used())
		return;
	vcache_forget_names();
	if (scone_volume_stat(m->vol, vpath, &st) != SCONE_ERR_OK) {
		scone_err_clear();
		return;
	}
	if (!st.is_dir && vcache_pinned(mount_no(m), st.file_id))
		vsrv_keep(m, vpath, st.file_id);
}

/* A status without an id (never a file's) has no key in the cache. */
static bool has_id(const struct scone_vstat *st)
{
	static const uint8_t none[16];

	return memcmp(st->file_id, none, sizeof(none)) != 0;
}

void vop_cache_stat(struct sfd *s, const struct scone_vstat *st)
{
	if (!has_id(st))
		return;
	note_fid(s, st);
	vcache_put_stat(mount_no(s->m), s->fid, st);
}

void vop_cache_data(struct sfd *s, uint64_t off, const uint8_t *data, size_t n)
{
	struct scone_vstat st;

	if (!s->f || scone_vfile_stat(s->f, &st) != SCONE_ERR_OK) {
		scone_err_clear();
		return;
	}
	if (!has_id(&st))
		return;
	vop_cache_stat(s, &st);
	if (!shield_map_covers(mount_no(s->m), s->fid)) /* (a window's stores change its bytes unseen) */
		vcache_put(mount_no(s->m), s->fid, off, data, n, st.size);
}

/* ---- path operations ---- */

enum scone_err vop_stat(struct mount *m, const char *vpath, struct scone_vstat *st)
{
	bool again = true;
	enum scone_err err = SCONE_ERR_OK;

	while (served() && again) {
		again = false;
		if (!(err = path_call(m, VP_STAT, vpath, NULL, 0, NULL, &again)) && !again)
			*st = t_a.st;
		if (!again)
			return err;
	}
	return scone_volume_stat(m->vol, vpath, st);
}

/* A request with no answer but its error, or the library call. */
#define PATH_OP(call_remote, call_local)                                                                     \
	do {                                                                                                 \
		bool again_ = true;                                                                          \
		enum scone_err err_;                                                                         \
		while (served() && again_) {                                                                 \
			again_ = false;                                                                      \
			err_ = (call_remote);                                                                \
			if (!again_)                                                                         \
				return err_;                                                                 \
		}                                                                                            \
		SCONE_TRY(local_change());                                                                   \
		return (call_local);                                                                         \
	} while (0)

enum scone_err vop_mkdir(struct mount *m, const char *vpath, uint32_t mode)
{
	PATH_OP(path_call(m, VP_MKDIR, vpath, NULL, mode, NULL, &again_),
		scone_volume_mkdir(m->vol, vpath, mode));
}

enum scone_err vop_remove(struct mount *m, const char *vpath, bool dir)
{
	PATH_OP(path_call(m, VP_REMOVE, vpath, NULL, dir, NULL, &again_),
		(unnaming(m, vpath),
		 dir ? scone_volume_rmdir(m->vol, vpath) : scone_volume_unlink(m->vol, vpath)));
}

enum scone_err vop_rename(struct mount *m, const char *from, const char *to)
{
	PATH_OP(path_call(m, VP_RENAME, from, to, 0, NULL, &again_),
		(unnaming(m, to), scone_volume_rename(m->vol, from, to)));
}

/* A truncation by path here, the file's window (shield_map.c) cleared or zero-extended with it. */
static enum scone_err truncate_local(struct mount *m, const char *vpath, uint64_t size)
{
	uint64_t before = 0;
	int w = shield_map_before_path(m, vpath, &before);
	enum scone_err err;

	forget_path(m, vpath, size);
	if ((err = scone_volume_truncate(m->vol, vpath, size)) == SCONE_ERR_OK && w >= 0)
		shield_map_resized(w, before, size);
	return err;
}

enum scone_err vop_truncate(struct mount *m, const char *vpath, uint64_t size)
{
	PATH_OP(path_call(m, VP_TRUNCATE, vpath, NULL, size, NULL, &again_), truncate_local(m, vpath, size));
}

enum scone_err vop_chmod(struct mount *m, const char *vpath, uint32_t mode)
{
	PATH_OP(path_call(m, VP_CHMOD, vpath, NULL, mode, NULL, &again_),
		(forget_path(m, vpath, UINT64_MAX), scone_volume_chmod(m->vol, vpath, mode)));
}

enum scone_err vop_set_mtime(struct mount *m, const char *vpath, int64_t ns)
{
	PATH_OP(path_call(m, VP_MTIME, vpath, NULL, (uint64_t)ns, NULL, &again_),
		(forget_path(m, vpath, UINT64_MAX), scone_volume_set_mtime(m->vol, vpath, ns)));
}

enum scone_err vop_sync(struct mount *m)
{
	PATH_OP(path_call(m, VP_SYNC, "/", NULL, 0, NULL, &again_), shield_commit_local(m));
}

/* The listing comes as entries (vproto.h); fn gets each, as the library would call it. */
static enum scone_err replay_entries(const struct scone_wbuf *w, scone_readdir_fn fn, void *arg)
{
	struct scone_rbuf r;
	char name[NAME_MAX + 1];
	struct scone_vstat st;

	scone_rbuf_init(&r, w->data, w->size, "directory listing");
	while (scone_rbuf_left(&r)) {
		SCONE_TRY(vp_get_entry(&r, name, &st));
		if (fn(arg, name, &st))
			break;
	}
	return SCONE_ERR_OK;
}

enum scone_err vop_readdir(struct mount *m, const char *vpath, scone_readdir_fn fn, void *arg)
{
	bool again = true;
	enum scone_err err = SCONE_ERR_OK;

	while (served() && again) {
		again = false;
		struct scone_wbuf w;
		scone_wbuf_init(&w, VP_MAX_DATA, 0);
		err = path_call(m, VP_READDIR, vpath, NULL, 0, &w, &again);
		if (!err && !again)
			err = replay_entries(&w, fn, arg);
		scone_wbuf_free(&w);
		if (!again)
			return err;
	}
	return scone_volume_readdir(m->vol, vpath, fn, arg);
}

/* ---- files ---- */

enum scone_err vop_open(struct sfd *s, const char *vpath, unsigned vf, uint32_t mode)
{
	bool again = true;
	enum scone_err err = SCONE_ERR_OK;

	s->file = true;
	s->vf_reopen = reopen_flags(vf);
	while (served() && again) {
		again = false;
		err = open_call(s, vpath, vf, mode, 0, &again);
		if (!again) {
			if (!err)
				take_handle(s);
			return err;
		}
	}
	if (vf & SCONE_VF_TRUNC) {
		uint64_t before = 0;
		int w = shield_map_before_path(s->m, vpath, &before);
		forget_path(s->m, vpath, 0);
		if ((err = scone_vfile_open(s->m->vol, vpath, vf, mode, &s->f)) == SCONE_ERR_OK && w >= 0)
			shield_map_resized(w, before, 0);
		return err;
	}
	return scone_vfile_open(s->m->vol, vpath, vf, mode, &s->f);
}

/*
 * A file opened from the cache alone is pinned (vcache.h): should it leave
 * the namespace, the server keeps it for this description. Pinned first,
 * then the path checked again: the server forgets names before it looks
 * at pins, so either it sees the pin or this sees the name gone.
 */
static bool pin(struct sfd *s, const char *vpath)
{
	uint8_t id[16];

	if (!vcache_pin(mount_no(s->m), s->fid))
		return false;
	if (vcache_name(mount_no(s->m), vpath, id) && memcmp(id, s->fid, sizeof(id)) == 0)
		return s->pinned = true;
	vcache_unpin(mount_no(s->m), s->fid);
	return false;
}

static void unpin(struct sfd *s)
{
	if (s->pinned)
		vcache_unpin(mount_no(s->m), s->fid);
	s->pinned = false;
}

void vop_forget_remote(struct sfd *s)
{
	s->rh = 0;
	s->f = NULL;
}

void vop_pin_more(struct sfd *s)
{
	if (s->pinned)
		(void)vcache_pin(mount_no(s->m), s->fid);
}

void vop_pin_give(struct sfd *s)
{
	if (s->pinned)
		vcache_unpin(mount_no(s->m), s->fid);
	s->pin_given = s->pinned;
	s->pinned = false; /* (a close after this gives nothing more) */
}

void vop_pin_back(struct sfd *s)
{
	if (s->pin_given && vcache_pin(mount_no(s->m), s->fid))
		s->pinned = true;
	s->pin_given = false;
}

/* The largest file opened for reading without a request (vop_open_path). */
#define LAZY_OPEN_MAX (256u << 10)

/* What open(2) with flags does with a path whose status is st (or stat_err). */
int vop_open_verdict(enum scone_err stat_err, const struct scone_vstat *st, int flags)
{
	int acc = flags & O_ACCMODE;

	if (!stat_err && st->is_dir) {
		if ((flags & O_CREAT) && (flags & O_EXCL))
			return EEXIST;
		if (acc != O_RDONLY || (flags & O_CREAT))
			return EISDIR;
		return VOP_OPEN_DIR;
	}
	if (!stat_err && (flags & O_DIRECTORY))
		return ENOTDIR;
	if (stat_err && (stat_err != SCONE_ERR_NOT_FOUND || !(flags & O_CREAT) || (flags & O_DIRECTORY)))
		return VOP_OPEN_STAT_ERR;
	return VOP_OPEN_FILE;
}

enum scone_err vop_open_path(struct sfd *s, const char *vpath, int flags, uint32_t mode,
			     struct scone_vstat *st, bool *opened)
{
	unsigned vf = shield_vf_flags(flags);
	bool again = true;
	enum scone_err err = SCONE_ERR_OK;
	int v;

	*opened = false;
	/*
	 * Opened for reading, a small file the cache holds whole (its id, status
	 * and every block) needs no request: reads and fstat come from the
	 * cache, and a handle on the server is taken (by path, the same file or
	 * stale) only when they miss (the file changed, or its blocks were
	 * pushed out).
	 */
	if (served() && (flags & O_ACCMODE) == O_RDONLY &&
	    !(flags & (O_CREAT | O_TRUNC | O_DIRECTORY | O_PATH)) &&
	    vcache_name(mount_no(s->m), vpath, s->fid) &&
	    vcache_whole(mount_no(s->m), s->fid, LAZY_OPEN_MAX) && pin(s, vpath)) {
		s->has_fid = s->file = *opened = true;
		s->vf_reopen = vf;
		return SCONE_ERR_OK;
	}
	while (served() && again) {
		again = false;
		/* One request: the server looks the path up, decides as below, and opens. */
		err = open_call(s, vpath, vf, mode, VP_OPEN_CHECK | (uint32_t)flags, &again);
		if (again)
			continue;
		if (err)
			return err;
		if (t_a.has_st)
			*st = t_a.st;
		if (!t_a.h)
			return SCONE_ERR_OK; /* a directory, or an error the caller finds from st */
		s->file = *opened = true;
		s->vf_reopen = reopen_flags(vf);
		take_handle(s);
		return SCONE_ERR_OK;
	}
	err = vop_stat(s->m, vpath, st);
	v = vop_open_verdict(err, st, flags);
	if (v == VOP_OPEN_STAT_ERR)
		return err;
	scone_err_clear();
	if (v != VOP_OPEN_FILE)
		return SCONE_ERR_OK;
	SCONE_TRY(vop_open(s, vpath, vf, mode));
	*opened = true;
	return SCONE_ERR_OK;
}

void vop_close(struct sfd *s)
{
	if (s->f)
		scone_vfile_close(s->f);
	s->f = NULL;
	close_remote(s);
	unpin(s);
}

bool vop_is_open(const struct sfd *s)
{
	return s->f != NULL || s->rh != 0;
}

enum scone_err vop_pread(struct sfd *s, void *buf, size_t n, uint64_t off, size_t *got)
{
	bool again = true;
	enum scone_err err = SCONE_ERR_OK;

	*got = 0;
	if (shield_map_pread_locked(s, buf, n, off, got)) /* (a window holds the file's newest bytes) */
		return SCONE_ERR_OK;
	if (served() && s->has_fid && vcache_read(mount_no(s->m), s->fid, buf, n, off, got))
		return SCONE_ERR_OK;
	while (served() && again) {
		again = false;
		/* At most VP_MAX_DATA a request; a short answer is the end of the file. */
		while (*got < n) {
			size_t want = n - *got < VP_MAX_DATA ? n - *got : VP_MAX_DATA;
			struct scone_wbuf w = {.data = (uint8_t *)buf + *got, .cap = want, .max = want};
			err = file_call(s, VP_PREAD, off + *got, want, NULL, 0, &w, &again);
			if (err || again)
				break;
			*got += w.size;
			if (w.size < want)
				break;
		}
		if (!again)
			return err;
		*got = 0;
	}
	SCONE_TRY(local_file(s));
	return scone_vfile_pread(s->f, buf, n, off, got);
}

enum scone_err vop_pwrite(struct sfd *s, const void *buf, size_t n, uint64_t off, size_t *written)
{
	bool again = true;
	enum scone_err err = SCONE_ERR_OK;
	uint64_t before = 0;
	int w;

	*written = 0;
	while (served() && again) {
		again = false;
		for (size_t done = 0; done < n && !err && !again;) {
			size_t k = n - done < VP_MAX_DATA ? n - done : VP_MAX_DATA;
			err = file_call(s, VP_PWRITE, off + done, 0, (const uint8_t *)buf + done, k, NULL,
					&again);
			done += k;
			if (!err && !again)
				*written = done; /* the frames before a failed one are in the file */
		}
		if (!again)
			return err;
		*written = 0;
	}
	SCONE_TRY(local_change());
	SCONE_TRY(local_file(s));
	vsrv_note_dirty(s->m, s->vpath); /* before the write is acknowledged */
	forget_file(s, off, n);
	w = shield_map_before(s, &before);
	if ((err = scone_vfile_pwrite_some(s->f, buf, n, off, written)) == SCONE_ERR_OK)
		recache_written(s, off, buf, *written);
	if (w >= 0 && *written)
		shield_map_wrote(w, buf, *written, off, before);
	return err;
}

enum scone_err vop_append(struct sfd *s, const void *buf, size_t n, uint64_t *at, size_t *written)
{
	bool again = true;
	enum scone_err err = SCONE_ERR_OK;
	uint64_t before = 0;
	int w;

	*written = 0;
	while (served() && again) {
		again = false;
		/* One request: an append larger than a frame would not be atomic; write it in one piece. */
		if (n > VP_MAX_DATA)
			return scone_err_set(SCONE_ERR_TOO_LARGE,
					     "an append of %zu bytes to a shared volume (at most %u)", n,
					     VP_MAX_DATA);
		err = file_call(s, VP_APPEND, 0, 0, buf, n, NULL, &again);
		if (!again) {
			if (!err) {
				*at = t_a.a;
				*written = n;
			}
			return err;
		}
	}
	SCONE_TRY(local_change());
	SCONE_TRY(local_file(s));
	vsrv_note_dirty(s->m, s->vpath); /* before the write is acknowledged */
	*at = 0;
	w = shield_map_before(s, &before);
	err = scone_vfile_append_some(s->f, buf, n, at, written);
	if (err)
		vcache_forget_all();
	else {
		forget_file(s, *at, n); /* where it went is known now; still before the answer */
		recache_written(s, *at, buf, *written);
	}
	if (w >= 0 && *written)
		shield_map_wrote(w, buf, *written, *at, before);
	return err;
}

enum scone_err vop_ftruncate(struct sfd *s, uint64_t size)
{
	bool again = true;
	enum scone_err err = SCONE_ERR_OK;
	uint64_t before = 0;
	int w;

	while (served() && again) {
		again = false;
		err = file_call(s, VP_FTRUNCATE, size, 0, NULL, 0, NULL, &again);
		if (!again)
			return err;
	}
	SCONE_TRY(local_change());
	SCONE_TRY(local_file(s));
	vsrv_note_dirty(s->m, s->vpath);
	forget_tail(s, size);
	w = shield_map_before(s, &before);
	if ((err = scone_vfile_truncate(s->f, size)) == SCONE_ERR_OK && w >= 0)
		shield_map_resized(w, before, size);
	return err;
}

enum scone_err vop_fstat(const struct sfd *cs, struct scone_vstat *st)
{
	struct sfd *s = (struct sfd *)cs; /* a handle may be opened (again) on the way */
	bool again = true;
	enum scone_err err = SCONE_ERR_OK;

	if (!s->file)
		return vop_stat(s->m, s->vpath, st);
	if (served() && s->has_fid && vcache_stat(mount_no(s->m), s->fid, st))
		return SCONE_ERR_OK;
	while (served() && again) {
		again = false;
		err = file_call(s, VP_FSTAT, 0, 0, NULL, 0, NULL, &again);
		if (!again) {
			if (!err)
				*st = t_a.st;
			return err;
		}
	}
	SCONE_TRY(local_file(s));
	return scone_vfile_stat(s->f, st);
}
