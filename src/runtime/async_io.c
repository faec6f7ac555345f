/*
 * async_io.c - asynchronous I/O interfaces while volumes are mounted.
 *
 * io_uring and Linux AIO submit reads and writes that the kernel performs
 * without calling libc, so they would meet a shielded fd's empty, sealed
 * placeholder (nothing leaks, but a program waiting for them may spin: a
 * read that completes with 0 bytes forever). They are refused where they
 * are set up, with the error that makes programs fall back to ordinary
 * reads and writes: the liburing and libaio functions (which make the
 * system call themselves, past libc's syscall()) return -ENOSYS, and
 * syscall(SYS_io_uring_setup) and syscall(SYS_io_setup) fail with ENOSYS
 * (shield.c). Without volumes everything passes through.
 *
 * Interposing these names costs nothing to programs that do not use the
 * libraries: the next definition is then absent and the call fails as
 * "not supported", which only such a program could have made.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>

#include "lib/log.h"
#include "runtime/shield.h"

/* Once per process and interface: say why it is refused. */
static void refused_note(const char *what)
{
	static int warned_uring, warned_aio;
	int *warned = what[0] == 'i' ? &warned_uring : &warned_aio;

	if (!__atomic_exchange_n(warned, 1, __ATOMIC_ACQ_REL))
		scone_warn("%s refused while volumes are mounted: its I/O would bypass the file-system "
			   "shield (the program falls back to ordinary reads and writes)",
			   what);
}

bool scone_async_io_refused(const char *what)
{
	if (scone_shield_count() == 0)
		return false;
	refused_note(what);
	return true;
}

/* The library's own definition (liburing.so, libaio.so), or NULL when it is not loaded. */
static void *next(const char *name)
{
	return dlsym(RTLD_NEXT, name);
}

/* ---- liburing (its functions return -errno) ---- */

typedef int (*uring_init_fn)(unsigned, void *, unsigned);
typedef int (*uring_init_params_fn)(unsigned, void *, void *);

int io_uring_queue_init(unsigned entries, void *ring, unsigned flags);
int io_uring_queue_init(unsigned entries, void *ring, unsigned flags)
{
	uring_init_fn real = (uring_init_fn)next("io_uring_queue_init");

	if (scone_async_io_refused("io_uring") || !real)
		return -ENOSYS;
	return real(entries, ring, flags);
}

int io_uring_queue_init_params(unsigned entries, void *ring, void *params);
int io_uring_queue_init_params(unsigned entries, void *ring, void *params)
{
	uring_init_params_fn real = (uring_init_params_fn)next("io_uring_queue_init_params");

	if (scone_async_io_refused("io_uring") || !real)
		return -ENOSYS;
	return real(entries, ring, params);
}

/* ---- libaio (io_setup and io_queue_init return -errno too) ---- */

typedef int (*aio_setup_fn)(int, void *);

int io_setup(int maxevents, void *ctx);
int io_setup(int maxevents, void *ctx)
{
	aio_setup_fn real = (aio_setup_fn)next("io_setup");

	if (scone_async_io_refused("Linux AIO") || !real)
		return -ENOSYS;
	return real(maxevents, ctx);
}

int io_queue_init(int maxevents, void *ctx);
int io_queue_init(int maxevents, void *ctx)
{
	aio_setup_fn real = (aio_setup_fn)next("io_queue_init");

	if (scone_async_io_refused("Linux AIO") || !real)
		return -ENOSYS;
	return real(maxevents, ctx);
}
