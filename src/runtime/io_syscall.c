/*
 * io_syscall.c - syscall(): the fd calls programs make through it (libuv
 * closes files with syscall(SYS_close)) go to the runtime's own, so the fd
 * table hears of them; io_uring and Linux AIO setup are refused while
 * volumes are mounted.
 */
#undef _FORTIFY_SOURCE
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
long syscall(long n, ...)
{
	REAL(syscall);
	long a[6];
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
		default:
			break;
		}
	}
	switch (n) { /* the owner stat reports is asked again (io_ids.c) */
	case SYS_setuid:
	case SYS_setgid:
	case SYS_setreuid:
	case SYS_setregid:
	case SYS_setresuid:
	case SYS_setresgid: {
		long r = real_syscall(n, a[0], a[1], a[2], a[3], a[4], a[5]);
		shield_ids_changed();
		return r;
	}
	default:
		break;
	}
	if ((n == SYS_io_uring_setup && scone_async_io_refused("io_uring")) ||
	    (n == SYS_io_setup && scone_async_io_refused("Linux AIO"))) {
		errno = ENOSYS;
		return -1;
	}
	return real_syscall(n, a[0], a[1], a[2], a[3], a[4], a[5]);
}
