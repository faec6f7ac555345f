/*
 * io_syscall.c - syscall(): the file calls programs make through it go to
 * the runtime's own wrappers, as if they had called libc. libuv closes files
 * with syscall(SYS_close) and asks statx, preadv and pwritev through it;
 * the fd table must hear of a close, a volume fd's reads, writes, status
 * and syncs are the shield's to serve (the kernel would answer from the
 * empty placeholder: a size of 0, no data), and a volume path through the
 * raw call would reach the host directory. Execs go through the runtime's
 * execve (the handover). io_uring and Linux AIO setup are refused while
 * volumes are mounted.
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

/*
 * preadv's and pwritev's offset comes in two halves (low, high); on a 64-bit
 * kernel the low one is the whole offset.
 */
static off64_t split_offset(long low)
{
	return (off64_t)low;
}

/* Calls on an fd (reads, writes, status, syncs, sizes, mappings): the runtime's. *ret: the result. */
static bool fd_call(long n, const long a[6], long *ret)
{
	int fd = (int)a[0];
	void *p = (void *)a[1];

	switch (n) {
	case SYS_read:
		*ret = read(fd, p, (size_t)a[2]);
		return true;
	case SYS_write:
		*ret = write(fd, p, (size_t)a[2]);
		return true;
	case SYS_pread64:
		*ret = pread64(fd, p, (size_t)a[2], (off64_t)a[3]);
		return true;
	case SYS_pwrite64:
		*ret = pwrite64(fd, p, (size_t)a[2], (off64_t)a[3]);
		return true;
	case SYS_readv:
		*ret = readv(fd, p, (int)a[2]);
		return true;
	case SYS_writev:
		*ret = writev(fd, p, (int)a[2]);
		return true;
	case SYS_preadv:
		*ret = preadv64(fd, p, (int)a[2], split_offset(a[3]));
		return true;
	case SYS_pwritev:
		*ret = pwritev64(fd, p, (int)a[2], split_offset(a[3]));
		return true;
	case SYS_preadv2:
		*ret = preadv64v2(fd, p, (int)a[2], split_offset(a[3]), (int)a[5]);
		return true;
	case SYS_pwritev2:
		*ret = pwritev64v2(fd, p, (int)a[2], split_offset(a[3]), (int)a[5]);
		return true;
	case SYS_fstat:
		*ret = fstat(fd, p);
		return true;
	case SYS_fstatfs:
		*ret = fstatfs(fd, p);
		return true;
	case SYS_fsync:
		*ret = fsync(fd);
		return true;
	case SYS_fdatasync:
		*ret = fdatasync(fd);
		return true;
	case SYS_ftruncate:
		*ret = ftruncate64(fd, (off64_t)a[1]);
		return true;
	case SYS_fallocate:
		*ret = fallocate64(fd, (int)a[1], (off64_t)a[2], (off64_t)a[3]);
		return true;
	case SYS_flock:
		*ret = flock(fd, (int)a[1]);
		return true;
	case SYS_getdents64:
		*ret = getdents64(fd, p, (size_t)a[2]);
		return true;
	case SYS_copy_file_range:
		*ret = copy_file_range(fd, p, (int)a[2], (loff_t *)a[3], (size_t)a[4], (unsigned)a[5]);
		return true;
	case SYS_sendfile:
		*ret = sendfile64(fd, (int)a[1], (off64_t *)a[2], (size_t)a[3]);
		return true;
	case SYS_splice:
		*ret = splice(fd, p, (int)a[2], (loff_t *)a[3], (size_t)a[4], (unsigned)a[5]);
		return true;
	case SYS_fchmod:
		*ret = fchmod(fd, (mode_t)a[1]);
		return true;
	case SYS_fchown:
		*ret = fchown(fd, (uid_t)a[1], (gid_t)a[2]);
		return true;
	case SYS_fchdir:
		*ret = fchdir(fd);
		return true;
	case SYS_fgetxattr:
		*ret = fgetxattr(fd, p, (void *)a[2], (size_t)a[3]);
		return true;
	case SYS_fsetxattr:
		*ret = fsetxattr(fd, p, (const void *)a[2], (size_t)a[3], (int)a[4]);
		return true;
	case SYS_flistxattr:
		*ret = flistxattr(fd, p, (size_t)a[2]);
		return true;
	case SYS_fremovexattr:
		*ret = fremovexattr(fd, p);
		return true;
	case SYS_mmap: /* (a volume fd's shared writable mapping maps its window) */
		*ret = (long)mmap((void *)a[0], (size_t)a[1], (int)a[2], (int)a[3], (int)a[4], (off_t)a[5]);
		return true;
	case SYS_munmap:
		*ret = munmap((void *)a[0], (size_t)a[1]);
		return true;
	case SYS_msync:
		*ret = msync((void *)a[0], (size_t)a[1], (int)a[2]);
		return true;
	case SYS_mremap:
		*ret = (long)mremap((void *)a[0], (size_t)a[1], (size_t)a[2], (int)a[3], (void *)a[4]);
		return true;
	default:
		return false;
	}
}

/*
 * getcwd's raw form: the length of the name written, its NUL included. No
 * buffer is the kernel's EFAULT (glibc would allocate one), a size of 0 its
 * ERANGE (glibc's EINVAL).
 */
static bool raw_getcwd(char *buf, size_t size, long *ret)
{
	char *p;

	if (!buf)
		return false;
	if (size == 0) {
		errno = ERANGE;
		*ret = -1;
		return true;
	}
	p = getcwd(buf, size);
	*ret = p ? (long)strlen(p) + 1 : -1;
	return true;
}

/*
 * Calls on a name: status, access, links, modes, owners, times, attributes,
 * the working directory, execs. A volume path is the shield's; the others
 * pass through to the kernel as before.
 */
static bool name_call(long n, const long a[6], long *ret)
{
	const char *path = (const char *)a[1]; /* (the *at calls' name) */

	switch (n) {
#ifdef SYS_stat
	case SYS_stat:
		*ret = stat((const char *)a[0], (struct stat *)a[1]);
		return true;
	case SYS_lstat:
		*ret = lstat((const char *)a[0], (struct stat *)a[1]);
		return true;
#endif
	case SYS_newfstatat:
		*ret = fstatat((int)a[0], path, (struct stat *)a[2], (int)a[3]);
		return true;
	case SYS_statx:
		*ret = statx((int)a[0], path, (int)a[2], (unsigned)a[3], (struct statx *)a[4]);
		return true;
	case SYS_statfs:
		*ret = statfs((const char *)a[0], (struct statfs *)a[1]);
		return true;
#ifdef SYS_access
	case SYS_access:
		*ret = access((const char *)a[0], (int)a[1]);
		return true;
#endif
	case SYS_faccessat: /* (the raw call has no flags) */
		*ret = faccessat((int)a[0], path, (int)a[2], 0);
		return true;
	case SYS_faccessat2:
		*ret = faccessat((int)a[0], path, (int)a[2], (int)a[3]);
		return true;
#ifdef SYS_readlink
	case SYS_readlink:
		*ret = readlink((const char *)a[0], (char *)a[1], (size_t)a[2]);
		return true;
#endif
	case SYS_readlinkat:
		*ret = readlinkat((int)a[0], path, (char *)a[2], (size_t)a[3]);
		return true;
#ifdef SYS_chmod
	case SYS_chmod:
		*ret = chmod((const char *)a[0], (mode_t)a[1]);
		return true;
	case SYS_chown:
		*ret = chown((const char *)a[0], (uid_t)a[1], (gid_t)a[2]);
		return true;
	case SYS_lchown:
		*ret = lchown((const char *)a[0], (uid_t)a[1], (gid_t)a[2]);
		return true;
#endif
	case SYS_fchmodat: /* (the raw call has no flags) */
		*ret = fchmodat((int)a[0], path, (mode_t)a[2], 0);
		return true;
	case SYS_fchownat:
		*ret = fchownat((int)a[0], path, (uid_t)a[2], (gid_t)a[3], (int)a[4]);
		return true;
	case SYS_utimensat: /* (no name and no flags: the fd itself, which libc's utimensat refuses) */
		if (!path && (a[3] != 0 || (int)a[0] == AT_FDCWD))
			return false; /* (the kernel's EINVAL or EFAULT) */
		*ret = path ? utimensat((int)a[0], path, (const struct timespec *)a[2], (int)a[3])
			    : futimens((int)a[0], (const struct timespec *)a[2]);
		return true;
	case SYS_getxattr:
		*ret = getxattr((const char *)a[0], path, (void *)a[2], (size_t)a[3]);
		return true;
	case SYS_lgetxattr:
		*ret = lgetxattr((const char *)a[0], path, (void *)a[2], (size_t)a[3]);
		return true;
	case SYS_setxattr:
		*ret = setxattr((const char *)a[0], path, (const void *)a[2], (size_t)a[3], (int)a[4]);
		return true;
	case SYS_lsetxattr:
		*ret = lsetxattr((const char *)a[0], path, (const void *)a[2], (size_t)a[3], (int)a[4]);
		return true;
	case SYS_listxattr:
		*ret = listxattr((const char *)a[0], (char *)a[1], (size_t)a[2]);
		return true;
	case SYS_llistxattr:
		*ret = llistxattr((const char *)a[0], (char *)a[1], (size_t)a[2]);
		return true;
	case SYS_removexattr:
		*ret = removexattr((const char *)a[0], path);
		return true;
	case SYS_lremovexattr:
		*ret = lremovexattr((const char *)a[0], path);
		return true;
	case SYS_chdir:
		*ret = chdir((const char *)a[0]);
		return true;
	case SYS_getcwd:
		return raw_getcwd((char *)a[0], (size_t)a[1], ret);
	case SYS_inotify_add_watch:
		*ret = inotify_add_watch((int)a[0], path, (uint32_t)a[2]);
		return true;
	case SYS_execve:
		*ret = execve((const char *)a[0], (char *const *)a[1], (char *const *)a[2]);
		return true;
	case SYS_execveat:
		*ret = execveat((int)a[0], path, (char *const *)a[2], (char *const *)a[3], (int)a[4]);
		return true;
	default:
		return false;
	}
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
		default:
			if (fd_call(n, a, &r) || name_call(n, a, &r))
				return r;
			break;
		}
		switch (n) {
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
	/* The fd limit moves where the runtime's own fds go: its setters' wrappers (io_fd.c). */
	if (n == SYS_setrlimit)
		return setrlimit((__rlimit_resource_t)a[0], (const struct rlimit *)a[1]);
	if (n == SYS_prlimit64)
		return prlimit64((pid_t)a[0], (__rlimit_resource_t)a[1], (const struct rlimit64 *)a[2],
				 (struct rlimit64 *)a[3]);
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
