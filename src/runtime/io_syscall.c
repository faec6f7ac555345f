/*
 * io_syscall.c - syscall(): the fd calls programs make through it (libuv
 * closes files with syscall(SYS_close)) go to the runtime's own, so the fd
 * table hears of them, and so do the opens and the calls on names (a volume
 * path through the raw call would reach the host directory); io_uring and
 * Linux AIO setup are refused while volumes are mounted.
 */
#undef _FORTIFY_SOURCE
#include <linux/openat2.h>

#include "runtime/fd_tls.h"
#include "runtime/shield_internal.h"

/*
 * io_uring submits reads and writes the kernel performs without calling
 * libc, so they would meet a shielded fd's empty, sealed placeholder
 * (nothing leaks: reads see end of file, writes EPERM). While volumes are
 * mounted, io_uring_setup through syscall() is refused (ENOSYS, which
 * io_uring users take as "not available" and fall back) with a line on
 * stderr saying why. A program issuing the raw instruction itself still
 * only meets the placeholders.
 */
/*
 * openat2 of a volume path: served as openat when it asks for no RESOLVE_*
 * rule, else ENOSYS (what openat2's users take for an older kernel, and
 * fall back to openat). *ret is the result; false: not a volume path.
 */
static bool openat2_served(int dirfd, const char *path, const void *how_p, size_t size, long *ret)
{
	struct open_how how = {0};
	char vpath[PATH_MAX];

	if (!path || !how_p || size < sizeof(how) || !shield_resolve(dirfd, path, vpath))
		return false;
	memcpy(&how, how_p, sizeof(how));
	if (how.resolve) {
		errno = ENOSYS;
		*ret = -1;
		return true;
	}
	*ret = openat(dirfd, path, (int)how.flags, (mode_t)how.mode);
	return true;
}

long syscall(long n, ...)
{
	REAL(syscall);
	long a[6], r;
	va_list ap;

	va_start(ap, n);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	/* (volumes mounted: the runtime's own fds; or some fd ever served: a TLS socket) */
	if ((__atomic_load_n(&shield_g.n_mounts, __ATOMIC_ACQUIRE) > 0 || fdtab_high() >= 0) &&
	    !shield_inside()) {
		/* libuv closes files with syscall(SYS_close): the fd table must hear of it. */
		switch (n) {
		case SYS_close:
			return close((int)a[0]);
		case SYS_close_range:
			return close_range((unsigned)a[0], (unsigned)a[1], (int)a[2]);
		case SYS_dup:
			return dup((int)a[0]);
		case SYS_dup2:
			return dup2((int)a[0], (int)a[1]);
		case SYS_dup3:
			return dup3((int)a[0], (int)a[1], (int)a[2]);
			/* The offset and status flags of a volume fd are the runtime's to move. */
		case SYS_lseek:
			return lseek64((int)a[0], (off64_t)a[1], (int)a[2]);
		case SYS_fcntl:
			return fcntl((int)a[0], (int)a[1], a[2]);
		case SYS_ioctl: /* (FIONBIO and the like change the placeholder's description; FIONREAD) */
			return ioctl((int)a[0], (unsigned long)a[1], (void *)a[2]);
		case SYS_sendmsg: /* (fds sent to another process: their placeholders are not kept) */
			io_net_rights_sent((const struct msghdr *)a[1]);
			break;
		case SYS_sendmmsg:
			for (unsigned i = 0; a[1] && i < (unsigned)a[2]; i++)
				io_net_rights_sent(&((const struct mmsghdr *)a[1])[i].msg_hdr);
			break;
			/* Opens: a volume path must not reach the host directory (a plaintext file). */
#ifdef SYS_open
		case SYS_open:
			return open((const char *)a[0], (int)a[1], (mode_t)a[2]);
#endif
#ifdef SYS_creat
		case SYS_creat:
			return creat((const char *)a[0], (mode_t)a[1]);
#endif
		case SYS_openat:
			return openat((int)a[0], (const char *)a[1], (int)a[2], (mode_t)a[3]);
		case SYS_openat2:
			if (openat2_served((int)a[0], (const char *)a[1], (const void *)a[2], (size_t)a[3],
					   &r))
				return r;
			break;
			/* Names: a volume path must not become a plaintext name in the host directory. */
#ifdef SYS_mkdir
		case SYS_mkdir:
			return mkdir((const char *)a[0], (mode_t)a[1]);
#endif
		case SYS_mkdirat:
			return mkdirat((int)a[0], (const char *)a[1], (mode_t)a[2]);
#ifdef SYS_rmdir
		case SYS_rmdir:
			return rmdir((const char *)a[0]);
#endif
#ifdef SYS_unlink
		case SYS_unlink:
			return unlink((const char *)a[0]);
#endif
		case SYS_unlinkat:
			return unlinkat((int)a[0], (const char *)a[1], (int)a[2]);
#ifdef SYS_rename
		case SYS_rename:
			return rename((const char *)a[0], (const char *)a[1]);
#endif
		case SYS_renameat:
			return renameat((int)a[0], (const char *)a[1], (int)a[2], (const char *)a[3]);
		case SYS_renameat2:
			return renameat2((int)a[0], (const char *)a[1], (int)a[2], (const char *)a[3],
					 (unsigned)a[4]);
#ifdef SYS_link
		case SYS_link:
			return link((const char *)a[0], (const char *)a[1]);
#endif
		case SYS_linkat:
			return linkat((int)a[0], (const char *)a[1], (int)a[2], (const char *)a[3],
				      (int)a[4]);
#ifdef SYS_symlink
		case SYS_symlink:
			return symlink((const char *)a[0], (const char *)a[1]);
#endif
		case SYS_symlinkat:
			return symlinkat((const char *)a[0], (int)a[1], (const char *)a[2]);
#ifdef SYS_mknod
		case SYS_mknod:
			return mknod((const char *)a[0], (mode_t)a[1], (dev_t)a[2]);
#endif
		case SYS_mknodat:
			return mknodat((int)a[0], (const char *)a[1], (mode_t)a[2], (dev_t)a[3]);
		case SYS_truncate:
			return truncate((const char *)a[0], (off_t)a[1]);
		default:
			break;
		}
	}
	/* A child that may share this memory unmarked: the fd table asks getpid() (proc_vfork.c). */
	switch (n) {
	case SYS_clone:
	case SYS_clone3:
#ifdef SYS_fork
	case SYS_fork:
#endif
#ifdef SYS_vfork
	case SYS_vfork:
#endif
		/*
		 * The child may hold the fds (nothing released meanwhile is
		 * kept, no offset is private) and may ask the volumes' server
		 * (its thread starts). The parent closes the window after the
		 * call; a child, which may share this memory, leaves it.
		 */
		fdtab_pid_untracked();
		scone_shield_spawn_window(true);
		r = real_syscall(n, a[0], a[1], a[2], a[3], a[4], a[5]);
		if (r != 0)
			scone_shield_spawn_window(false);
		return r;
	default:
		break;
	}
	switch (n) { /* the owner stat reports is asked again (io_ids.c) */
	case SYS_setuid:
	case SYS_setgid:
	case SYS_setreuid:
	case SYS_setregid:
	case SYS_setresuid:
	case SYS_setresgid:
	case SYS_unshare:
	case SYS_setns:
		r = real_syscall(n, a[0], a[1], a[2], a[3], a[4], a[5]);
		shield_ids_changed();
		return r;
	default:
		break;
	}
	if (n == SYS_umask) { /* kept for the modes of what is created on a volume (io_ids.c) */
		r = real_syscall(n, a[0], a[1], a[2], a[3], a[4], a[5]);
		shield_umask_set((mode_t)a[0]);
		return r;
	}
	if ((n == SYS_io_uring_setup && scone_async_io_refused("io_uring")) ||
	    (n == SYS_io_setup && scone_async_io_refused("Linux AIO"))) {
		errno = ENOSYS;
		return -1;
	}
	return real_syscall(n, a[0], a[1], a[2], a[3], a[4], a[5]);
}
