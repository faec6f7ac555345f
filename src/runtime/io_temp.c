/*
 * io_temp.c - temporary files and directories made on a volume: mkstemp,
 * mkostemp, mkstemps, mkostemps (and their 64 names) and mkdtemp. glibc
 * makes them with its internal open and mkdir, which no interposer sees:
 * a template inside a volume became a plaintext file (or a plaintext name)
 * in the volume's host directory. Here a template whose directory is on a
 * volume gets its six X's from the random generator and is created through
 * the runtime (exclusively, retried on a name taken); any other template
 * goes to libc.
 */
#undef _FORTIFY_SOURCE
#include "lib/crypto.h"
#include "runtime/shield_internal.h"

#define TEMP_TRIES 100

static const char letters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/* The six X's before suffix_len bytes of t, or NULL (EINVAL, as glibc). */
static char *xs_of(char *t, int suffix_len)
{
	size_t n = strlen(t);

	if (suffix_len < 0 || n < 6 + (size_t)suffix_len ||
	    memcmp(t + n - (size_t)suffix_len - 6, "XXXXXX", 6) != 0) {
		errno = EINVAL;
		return NULL;
	}
	return t + n - (size_t)suffix_len - 6;
}

static bool fill(char *xs)
{
	uint8_t r[6];

	if (scone_random(r, sizeof(r)) != SCONE_ERR_OK) {
		scone_err_clear();
		errno = EIO;
		return false;
	}
	for (int i = 0; i < 6; i++)
		xs[i] = letters[r[i] % (sizeof(letters) - 1)];
	return true;
}

/* The volume's mkostemps: the fd, or -1 with errno. */
static int volume_temp(char *t, int suffix_len, int flags)
{
	char *xs = xs_of(t, suffix_len);
	int fd = -1;

	if (!xs)
		return -1;
	for (int i = 0; i < TEMP_TRIES; i++) {
		if (!fill(xs))
			return -1;
		(void)scone_shield_openat(AT_FDCWD, t, O_RDWR | O_CREAT | O_EXCL | (flags & ~O_ACCMODE), 0600,
					  &fd);
		if (fd >= 0 || errno != EEXIST)
			return fd;
	}
	errno = EEXIST;
	return -1;
}

#define TEMP_CALL(name, params, suffix, flags, args)                                                         \
	int name params                                                                                      \
	{                                                                                                    \
		REAL(name);                                                                                  \
		return scone_shield_on_volume(t) ? volume_temp(t, suffix, flags) : real_##name args;         \
	}

TEMP_CALL(mkstemp, (char *t), 0, 0, (t))
TEMP_CALL(mkstemp64, (char *t), 0, 0, (t))
TEMP_CALL(mkostemp, (char *t, int f), 0, f, (t, f))
TEMP_CALL(mkostemp64, (char *t, int f), 0, f, (t, f))
TEMP_CALL(mkstemps, (char *t, int s), s, 0, (t, s))
TEMP_CALL(mkstemps64, (char *t, int s), s, 0, (t, s))
TEMP_CALL(mkostemps, (char *t, int s, int f), s, f, (t, s, f))
TEMP_CALL(mkostemps64, (char *t, int s, int f), s, f, (t, s, f))

char *mkdtemp(char *t)
{
	REAL(mkdtemp);
	char *xs;

	if (!scone_shield_on_volume(t))
		return real_mkdtemp(t);
	if (!(xs = xs_of(t, 0)))
		return NULL;
	for (int i = 0; i < TEMP_TRIES; i++) {
		if (!fill(xs))
			return NULL;
		if (mkdir(t, 0700) == 0) /* (the runtime's mkdir: shield_ns.c) */
			return t;
		if (errno != EEXIST)
			return NULL;
	}
	errno = EEXIST;
	return NULL;
}
