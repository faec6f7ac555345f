/*
 * vops.c - the volume behind a mount, wherever it lives. In the process that
 * holds the volume (one process alone, or the one serving it to the others
 * after a fork: vserver.c) each operation calls the volume library; in a
 * process the volume is served to, it is a request to the server. The
 * shield calls these with its lock held and knows nothing of where the
 * volume is.
 */
#undef _FORTIFY_SOURCE
#include "runtime/shield_internal.h"

enum scone_err vop_stat(struct mount *m, const char *vpath, struct scone_vstat *st)
{
	return scone_volume_stat(m->vol, vpath, st);
}

enum scone_err vop_open(struct sfd *s, const char *vpath, unsigned vf, uint32_t mode)
{
	SCONE_TRY(scone_vfile_open(s->m->vol, vpath, vf, mode, &s->f));
	s->file = true;
	return SCONE_ERR_OK;
}

void vop_close(struct sfd *s)
{
	if (s->f)
		scone_vfile_close(s->f);
	s->f = NULL;
}

bool vop_is_open(const struct sfd *s)
{
	return s->f != NULL;
}

enum scone_err vop_pread(struct sfd *s, void *buf, size_t n, uint64_t off, size_t *got)
{
	return scone_vfile_pread(s->f, buf, n, off, got);
}

enum scone_err vop_pwrite(struct sfd *s, const void *buf, size_t n, uint64_t off)
{
	return scone_vfile_pwrite(s->f, buf, n, off);
}

enum scone_err vop_append(struct sfd *s, const void *buf, size_t n, uint64_t *at)
{
	return scone_vfile_append(s->f, buf, n, at);
}

enum scone_err vop_ftruncate(struct sfd *s, uint64_t size)
{
	return scone_vfile_truncate(s->f, size);
}

enum scone_err vop_fstat(const struct sfd *s, struct scone_vstat *st)
{
	return s->f ? scone_vfile_stat(s->f, st) : scone_volume_stat(s->m->vol, s->vpath, st);
}

enum scone_err vop_mkdir(struct mount *m, const char *vpath, uint32_t mode)
{
	return scone_volume_mkdir(m->vol, vpath, mode);
}

enum scone_err vop_remove(struct mount *m, const char *vpath, bool dir)
{
	return dir ? scone_volume_rmdir(m->vol, vpath) : scone_volume_unlink(m->vol, vpath);
}

enum scone_err vop_rename(struct mount *m, const char *from, const char *to)
{
	return scone_volume_rename(m->vol, from, to);
}

enum scone_err vop_truncate(struct mount *m, const char *vpath, uint64_t size)
{
	return scone_volume_truncate(m->vol, vpath, size);
}

enum scone_err vop_chmod(struct mount *m, const char *vpath, uint32_t mode)
{
	return scone_volume_chmod(m->vol, vpath, mode);
}

enum scone_err vop_set_mtime(struct mount *m, const char *vpath, int64_t ns)
{
	return scone_volume_set_mtime(m->vol, vpath, ns);
}

enum scone_err vop_readdir(struct mount *m, const char *vpath, scone_readdir_fn fn, void *arg)
{
	return scone_volume_readdir(m->vol, vpath, fn, arg);
}
