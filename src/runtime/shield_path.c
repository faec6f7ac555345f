/*
 * shield_path.c - which mount a path the program names belongs to, however
 * it is spelled.
 *
 * A path is shielded when it leads into a volume. Two steps decide it:
 *
 * 1. By its spelling: the absolute, normalised path (relative ones against
 *    the directory fd or the working directory, a volume's included) under
 *    a mount point, or under the mount point's real path (with its symbolic
 *    links resolved). /proc/self/cwd and /proc/self/fd/N (also as
 *    /proc/thread-self, /proc/PID, /dev/fd/N and /dev/std*) are rewritten
 *    first when they name the volume working directory or a shielded fd,
 *    which the kernel knows nothing of.
 *
 * 2. By where the kernel resolves it: any other spelling may still reach a
 *    mount's host directory through symbolic links (to the volume, to one of
 *    its parents, /proc/self/fd/N of a kernel directory fd, ".." after a
 *    link). The directory part is resolved by the kernel itself
 *    (fstatat, following links) and compared by device and inode with the
 *    host directories of the mounts; a directory part that does not exist on
 *    the host (a volume's subdirectories exist only inside the volume) is
 *    walked up until one does. A volume's host directory holds no
 *    subdirectories, so a path can reach it only as "DIR/NAME" with DIR
 *    resolving to it, or through a missing part below it.
 *
 * Invariant: no spelling of a path inside a volume reaches the host file
 * system through a shielded call; the cost is one fstatat per path call
 * outside the volumes (none when no volume is mounted).
 */
#undef _FORTIFY_SOURCE
#include "runtime/shield_internal.h"

/* ---- /proc and /dev/fd aliases ---- */

/* After "/proc/": "self/", "thread-self/", "PID/" (this process) or "PID/task/TID/"; its length, or 0. */
static size_t proc_self_len(const char *p)
{
	char pid[24];
	size_t n;

	if (strncmp(p, "self/", 5) == 0)
		return 5;
	if (strncmp(p, "thread-self/", 12) == 0)
		return 12;
	snprintf(pid, sizeof(pid), "%d/", (int)getpid());
	n = strlen(pid);
	if (strncmp(p, pid, n) != 0)
		return 0;
	if (strncmp(p + n, "task/", 5) == 0) {
		size_t k = n + 5;
		while (p[k] >= '0' && p[k] <= '9')
			k++;
		return p[k] == '/' && k > n + 5 ? k + 1 : n;
	}
	return n;
}

/* "N[/rest]" naming a shielded fd: its program path and rest into out. */
static bool fd_alias(const char *p, char *out, size_t size)
{
	char base[PATH_MAX];
	long fd = 0;
	size_t k = 0;

	while (p[k] >= '0' && p[k] <= '9' && k < 9)
		fd = fd * 10 + (p[k++] - '0');
	if (k == 0 || (p[k] != '\0' && p[k] != '/') || !shield_fd_program_path((int)fd, base))
		return false;
	return (size_t)snprintf(out, size, "%s%s", base, p + k) < size;
}

/* The shield's own reading of a /proc or /dev/fd alias of path into out; false: none applies. */
static bool proc_alias(const char *path, char *out, size_t size)
{
	char cwd[PATH_MAX];
	size_t n;

	if (strncmp(path, "/dev/fd/", 8) == 0)
		return fd_alias(path + 8, out, size);
	if (strcmp(path, "/dev/stdin") == 0 || strcmp(path, "/dev/stdout") == 0 ||
	    strcmp(path, "/dev/stderr") == 0)
		return fd_alias(path[5] == 'i' ? "0" : path[8] == 'o' ? "1" : "2", out, size);
	if (strncmp(path, "/proc/", 6) != 0 || !(n = proc_self_len(path + 6)))
		return false;
	path += 6 + n;
	if (strncmp(path, "fd/", 3) == 0)
		return fd_alias(path + 3, out, size);
	if (strncmp(path, "cwd", 3) != 0 || (path[3] != '\0' && path[3] != '/'))
		return false;
	shield_vcwd(cwd);
	return cwd[0] && (size_t)snprintf(out, size, "%s%s", cwd, path + 3) < size;
}

/* ---- spelling ---- */

bool scone_shield_abspath(int dirfd, const char *path, char *full, size_t size)
{
	char base[PATH_MAX];

	if (!path || !*path)
		return false;
	if (path[0] == '/') {
		if (!proc_alias(path, full, size) && (size_t)snprintf(full, size, "%s", path) >= size)
			return false;
	} else {
		if (dirfd == AT_FDCWD) {
			if (!getcwd(base, sizeof(base))) /* the interposer: a volume cwd first */
				return false;
		} else if (!shield_fd_program_path(dirfd, base)) {
			char proc[64];
			ssize_t r;
			snprintf(proc, sizeof(proc), "/proc/self/fd/%d", dirfd);
			r = SYS(readlink)(proc, base, sizeof(base) - 1);
			if (r < 0)
				return false;
			base[r] = '\0';
		}
		if ((size_t)snprintf(full, size, "%s/%s", base, path) >= size)
			return false;
	}
	scone_path_normalise(full);
	return true;
}

/* Is full at or under dir (normalised, absolute)? Its remainder ("" or "/...") then. */
static const char *under(const char *full, const char *dir)
{
	size_t n = strlen(dir);

	if (n == 1)
		return full; /* "/" */
	if (strncmp(full, dir, n) != 0 || (full[n] != '\0' && full[n] != '/'))
		return NULL;
	return full + n;
}

/* Is full under one of m's region prefixes? */
static bool under_prefix(const struct mount *m, const char *full)
{
	for (size_t i = 0; i < m->n_prefixes; i++)
		if (under(full, m->prefixes[i]))
			return true;
	return false;
}

int shield_program_path(const struct mount *m, const char *vpath, char *out, size_t size)
{
	return snprintf(out, size, "%s%s", m->n_prefixes ? "" : m->path, vpath);
}

/* The mount full (absolute, normalised) is spelled under, and its volume path. */
static struct mount *by_spelling(const char *full, char vpath[PATH_MAX])
{
	for (size_t i = 0, n = shield_mount_count(); i < n; i++) {
		struct mount *m = shield_mount(i);
		const char *rest;
		if (m->n_prefixes) {
			if (!under_prefix(m, full))
				continue;
			return (size_t)snprintf(vpath, PATH_MAX, "%s", full) < PATH_MAX ? m : NULL;
		}
		if (!(rest = under(full, m->path)) && !(m->real_path && (rest = under(full, m->real_path))))
			continue;
		return (size_t)snprintf(vpath, PATH_MAX, "%s", *rest ? rest : "/") < PATH_MAX ? m : NULL;
	}
	return NULL;
}

/* ---- where the kernel resolves it ---- */

/* The mount whose host directory (or region directory, *base its program path) is st. */
static struct mount *by_dir_id(const struct stat *st, const char **base)
{
	for (size_t i = 0, n = shield_mount_count(); i < n; i++) {
		struct mount *m = shield_mount(i);
		for (size_t k = 0; k < m->n_ids; k++) {
			if (m->ids[k].ino != st->st_ino || m->ids[k].dev != st->st_dev ||
			    !S_ISDIR(st->st_mode))
				continue;
			*base = m->n_prefixes ? m->prefixes[k] : "";
			return m;
		}
	}
	return NULL;
}

/*
 * path (relative to dirfd) whose directory part the kernel resolves into a
 * mount's host directory: the mount and the volume path. buf holds the
 * shrinking directory part; rest what was cut off it.
 */
static struct mount *by_kernel(int dirfd, const char *path, char vpath[PATH_MAX])
{
	char buf[PATH_MAX], rest[PATH_MAX] = "", tmp[PATH_MAX];
	size_t len = strlen(path);
	struct stat st;

	if (len >= sizeof(buf))
		return NULL;
	memcpy(buf, path, len + 1);
	for (;;) {
		char *slash;
		const char *dir, *name, *base;
		struct mount *m;
		while (len > 1 && buf[len - 1] == '/')
			buf[--len] = '\0';
		slash = strrchr(buf, '/');
		if (!slash) {
			dir = ".";
			name = buf;
		} else {
			*slash = '\0';
			dir = slash == buf ? "/" : buf;
			name = slash + 1;
		}
		if (!*name || strcmp(name, "..") == 0 ||
		    (size_t)snprintf(tmp, sizeof(tmp), "/%s%s", name, rest) >= sizeof(tmp))
			return NULL; /* "/", or a ".." that leaves the directory: the kernel's to resolve */
		memcpy(rest, tmp, strlen(tmp) + 1);
		if (SYS(fstatat)(dirfd, dir, &st, 0) == 0) {
			if (!(m = by_dir_id(&st, &base)))
				return NULL;
			if ((size_t)snprintf(vpath, PATH_MAX, "%s%s", base, rest) >= PATH_MAX)
				return NULL;
			scone_path_normalise(vpath);
			return m;
		}
		if ((errno != ENOENT && errno != ENOTDIR) || !slash || slash == buf)
			return NULL; /* no parent left to try */
		len = strlen(buf);
	}
}

struct mount *shield_resolve(int dirfd, const char *path, char vpath[PATH_MAX])
{
	char full[PATH_MAX * 2];
	struct mount *m;
	int e = errno;

	if (shield_mount_count() == 0 || !path || !*path)
		return NULL;
	if (scone_shield_abspath(dirfd, path, full, sizeof(full)) && (m = by_spelling(full, vpath)))
		return m;
	m = by_kernel(dirfd, path, vpath);
	errno = e;
	return m;
}

bool scone_shield_on_volume(const char *path)
{
	char vpath[PATH_MAX];

	return shield_resolve_dir(AT_FDCWD, path, vpath) != NULL;
}

struct mount *shield_resolve_dir(int dirfd, const char *path, char vpath[PATH_MAX])
{
	struct mount *m = shield_resolve(dirfd, path, vpath);
	const char *base;
	struct stat st;
	int e = errno;

	if (m || shield_mount_count() == 0 || !path || !*path)
		return m;
	if (SYS(fstatat)(dirfd, path, &st, 0) == 0 && (m = by_dir_id(&st, &base)) &&
	    (size_t)snprintf(vpath, PATH_MAX, "%s", *base ? base : "/") >= PATH_MAX)
		m = NULL;
	errno = e;
	return m;
}

/* ---- a mount's host directories ---- */

/* Note the identity of the host directory at path as m's k-th (none if it does not exist). */
void shield_note_dir(struct mount *m, size_t k, const char *path)
{
	struct stat st;

	if (k < m->n_ids && SYS(stat)(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		m->ids[k].dev = st.st_dev;
		m->ids[k].ino = st.st_ino;
	}
}
