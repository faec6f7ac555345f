/*
 * shield_cwd.c - a working directory inside a volume (chdir, fchdir, getcwd,
 * get_current_dir_name): virtual, since the kernel's would be the host
 * directory of ciphertext.
 */
#undef _FORTIFY_SOURCE
#include "runtime/shield_internal.h"

/*
 * A working directory inside a volume is virtual: the kernel's cwd would be
 * the host directory of ciphertext, so the kernel's stays where it was and
 * the shield remembers the volume directory. Relative paths given to the
 * shielded calls (open, stat, rename, mkdir, opendir, ... and AT_FDCWD) and
 * getcwd use it; chdir/fchdir out of the volume go back to the kernel's.
 * Any directory of a volume can be the working directory (chdir, or fchdir
 * to a shielded directory fd); exec'd programs get it through the handover.
 * Relative paths given to calls the shield does not interpose (e.g. execve,
 * bind of a unix socket) still resolve against the kernel's cwd.
 */
/* A working directory inside a volume (normalised, absolute), or "" (the kernel's). */
static pthread_mutex_t cwd_lock = PTHREAD_MUTEX_INITIALIZER;
static char vcwd[PATH_MAX];

int shield_set_vcwd(const char *full)
{
	pthread_mutex_lock(&cwd_lock);
	snprintf(vcwd, sizeof(vcwd), "%s", full);
	pthread_mutex_unlock(&cwd_lock);
	return 0;
}

/* A copy of the volume working directory ("" when the kernel's is the one). */
void shield_vcwd(char out[PATH_MAX])
{
	pthread_mutex_lock(&cwd_lock);
	snprintf(out, PATH_MAX, "%s", vcwd);
	pthread_mutex_unlock(&cwd_lock);
}

/* chdir into m's directory vpath (the mount point or any directory below it). */
static int chdir_volume(struct mount *m, const char *vpath)
{
	char full[PATH_MAX];
	struct stat st;

	if (shield_path_stat(m, vpath, &st) != 0)
		return -1;
	if (!S_ISDIR(st.st_mode))
		return shield_fail(ENOTDIR);
	if ((size_t)shield_program_path(m, vpath, full, sizeof(full)) >= sizeof(full))
		return shield_fail(ENAMETOOLONG);
	scone_path_normalise(full);
	return shield_set_vcwd(full);
}

int chdir(const char *path)
{
	char vpath[PATH_MAX], full[PATH_MAX];
	struct mount *m = shield_resolve_dir(AT_FDCWD, path, vpath);
	const char *given = path;
	int r;
	REAL(chdir);

	/* glibc declares path nonnull, so the compiler would drop a test of it; a program's NULL is the
	 * kernel's EFAULT. */
	__asm__("" : "+r"(given));
	if (m)
		return chdir_volume(m, vpath);
	/* A relative path out of a volume cwd: from the volume cwd, not the kernel's. */
	full[0] = '\0';
	if (given && given[0] && given[0] != '/' && !shield_inside()) {
		char cur[PATH_MAX];
		shield_vcwd(cur);
		if (cur[0] && (size_t)snprintf(full, sizeof(full), "%s/%s", cur, path) >= sizeof(full))
			full[0] = '\0';
		if (full[0])
			scone_path_normalise(full);
	}
	r = real_chdir(full[0] ? full : path);
	if (r == 0 && !shield_inside())
		shield_set_vcwd("");
	return r;
}

int fchdir(int fd)
{
	struct sfd *s;
	char vpath[PATH_MAX];
	struct mount *m = NULL;
	int r;
	REAL(fchdir);

	if (shield_maybe_shielded(fd)) {
		shield_enter();
		if ((s = shield_fd_entry(fd)) && !s->file) {
			m = s->m;
			snprintf(vpath, sizeof(vpath), "%s", s->vpath);
		}
		r = s ? 0 : -1;
		shield_leave();
		if (m)
			return chdir_volume(m, vpath);
		if (r == 0)
			return shield_fail(ENOTDIR);
	}
	r = real_fchdir(fd);
	if (r == 0 && !shield_inside())
		shield_set_vcwd("");
	return r;
}

char *get_current_dir_name(void)
{
	REAL(get_current_dir_name);
	char cur[PATH_MAX];

	if (shield_inside())
		return real_get_current_dir_name();
	shield_vcwd(cur);
	return cur[0] ? strdup(cur) : real_get_current_dir_name();
}

/*
 * getcwd with a volume cwd: its path, with glibc's semantics (buf NULL:
 * malloc'ed, of at least size bytes when size is not 0; size 0 with a buf:
 * EINVAL; too small: ERANGE).
 */
char *getcwd(char *buf, size_t size)
{
	char cur[PATH_MAX];
	size_t k;
	REAL(getcwd);

	if (shield_inside())
		return real_getcwd(buf, size);
	shield_vcwd(cur);
	if (!cur[0])
		return real_getcwd(buf, size);
	k = strlen(cur) + 1;
	if (buf && size == 0)
		return errno = EINVAL, NULL;
	if (size && size < k)
		return errno = ERANGE, NULL;
	if (!buf && !(buf = malloc(size > k ? size : k)))
		return errno = ENOMEM, NULL;
	memcpy(buf, cur, k);
	return buf;
}
