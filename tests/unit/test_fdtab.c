/*
 * test_fdtab.c - the runtime's fd table (src/runtime/fdtab.c): entries,
 * holds, dup sharing, and fds closed or replaced behind its back.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "helpers.h"
#include "runtime/fdtab.h"

static int released;
static int closings;

static int count_release(struct fd_desc *d)
{
	(void)d;
	released++;
	return 0;
}

static void count_closing(struct fd_desc *d, int fd)
{
	(void)d, (void)fd;
	closings++;
}

static const struct fd_kind test_kind = {.name = "test", .release = count_release, .closing = count_closing};

static int placeholder(void)
{
	int fd = memfd_create("fdtab-test", MFD_CLOEXEC);

	assert_true(fd >= 0);
	return fd;
}

static void reset(void)
{
	released = closings = 0;
}

static void test_install_get_remove(void **state)
{
	struct fd_desc d = {.kind = &test_kind};
	int fd = placeholder();

	(void)state;
	reset();
	assert_true(fdtab_note(&d, fd));
	assert_true(fdtab_install(fd, &d));
	assert_true(fdtab_maybe(fd));
	assert_true(fdtab_high() >= fd);
	assert_ptr_equal(fdtab_get(fd), &d);
	assert_int_equal(d.holds, 2);
	assert_int_equal(fdtab_put(&d), 0);
	assert_int_equal(released, 0);
	assert_int_equal(fdtab_remove(fd), 0);
	assert_int_equal(closings, 1);
	assert_int_equal(released, 1);
	assert_null(fdtab_peek(fd));
	assert_null(fdtab_get(fd));
	close(fd);
}

/* A call in flight keeps the description alive past the close of its last fd. */
static void test_hold_outlives_close(void **state)
{
	struct fd_desc d = {.kind = &test_kind};
	int fd = placeholder();
	struct fd_desc *h;

	(void)state;
	reset();
	assert_true(fdtab_note(&d, fd) && fdtab_install(fd, &d));
	h = fdtab_get(fd);
	assert_ptr_equal(h, &d);
	assert_int_equal(fdtab_remove(fd), 0);
	assert_int_equal(released, 0);
	assert_int_equal(fdtab_put(h), 0);
	assert_int_equal(released, 1);
	close(fd);
}

/* dup: two fds, one description, released with the last. */
static void test_share(void **state)
{
	struct fd_desc d = {.kind = &test_kind};
	int fd = placeholder(), fd2;

	(void)state;
	reset();
	assert_true(fdtab_note(&d, fd) && fdtab_install(fd, &d));
	fd2 = dup(fd);
	assert_true(fd2 >= 0);
	assert_true(fdtab_share(fd2, &d));
	assert_ptr_equal(fdtab_peek(fd2), &d);
	assert_int_equal(fdtab_remove(fd), 0);
	assert_int_equal(released, 0);
	close(fd);
	assert_ptr_equal(fdtab_get(fd2), &d);
	(void)fdtab_put(&d);
	assert_int_equal(fdtab_remove(fd2), 0);
	assert_int_equal(released, 1);
	close(fd2);
}

/* dup2 onto an fd with an entry: the kernel closed it silently; its entry goes. */
static void test_share_replaces(void **state)
{
	struct fd_desc a = {.kind = &test_kind}, b = {.kind = &test_kind};
	int fa = placeholder(), fb = placeholder();

	(void)state;
	reset();
	assert_true(fdtab_note(&a, fa) && fdtab_install(fa, &a));
	assert_true(fdtab_note(&b, fb) && fdtab_install(fb, &b));
	assert_int_equal(dup2(fa, fb), fb);
	assert_true(fdtab_share(fb, &a));
	assert_int_equal(released, 0); /* b's close is told at the reap (no caller's lock held) */
	fdtab_reap();
	assert_int_equal(released, 1); /* b */
	assert_int_equal(closings, 1);
	assert_ptr_equal(fdtab_get(fb), &a);
	(void)fdtab_put(&a);
	(void)fdtab_remove(fa);
	(void)fdtab_remove(fb);
	assert_int_equal(released, 2);
	close(fa);
	close(fb);
}

/* An fd closed behind the table and reused for another file is the kernel's: no entry, dropped once. */
static void test_replaced_behind(void **state)
{
	struct fd_desc d = {.kind = &test_kind};
	int fd = placeholder(), other;

	(void)state;
	reset();
	assert_true(fdtab_note(&d, fd) && fdtab_install(fd, &d));
	close(fd); /* as a raw system call would */
	other = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_int_equal(other, fd);
	assert_null(fdtab_get(fd));
	assert_int_equal(released, 1);
	assert_null(fdtab_peek(fd));
	assert_false(fdtab_is(fd, &d));
	close(other);
}

/* Past the table: EMFILE, nothing recorded. */
static void test_out_of_range(void **state)
{
	struct fd_desc d = {.kind = &test_kind};

	(void)state;
	errno = 0;
	assert_false(fdtab_install(-1, &d));
	assert_int_equal(errno, EMFILE);
	assert_false(fdtab_install(1 << 30, &d));
	assert_int_equal(d.holds, 0);
	assert_null(fdtab_get(1 << 30));
	assert_false(fdtab_maybe(-5));
}

static void count_each(int fd, struct fd_desc *d, void *arg)
{
	(void)fd, (void)d;
	(*(int *)arg)++;
}

static void test_each(void **state)
{
	struct fd_desc d = {.kind = &test_kind};
	int fd = placeholder(), fd2 = dup(fd), n = 0;

	(void)state;
	reset();
	assert_true(fdtab_note(&d, fd) && fdtab_install(fd, &d) && fdtab_share(fd2, &d));
	fdtab_each(count_each, &n);
	assert_int_equal(n, 2);
	(void)fdtab_remove(fd);
	(void)fdtab_remove(fd2);
	n = 0;
	fdtab_each(count_each, &n);
	assert_int_equal(n, 0);
	close(fd);
	close(fd2);
}

/*
 * Lookups racing closes of the same fd on other threads: a description is
 * freed by its last hold only, never under a lookup that loaded it (ASan
 * reports a use after free otherwise), and every hold taken is given back.
 */
static _Atomic int race_stop;
static int race_fd;
static _Atomic long race_frees;

static int free_release(struct fd_desc *d)
{
	atomic_fetch_add(&race_frees, 1);
	free(d);
	return 0;
}

static const struct fd_kind race_kind = {.name = "race", .release = free_release, .trusts_number = true};

static void *race_lookups(void *arg)
{
	(void)arg;
	while (!atomic_load(&race_stop)) {
		struct fd_desc *d = fdtab_get(race_fd);
		if (d) {
			assert_ptr_equal(d->kind, &race_kind);
			(void)fdtab_put(d);
		}
	}
	return NULL;
}

static void test_lookup_races_close(void **state)
{
	pthread_t t[2];
	long made = 0;

	(void)state;
	race_fd = placeholder();
	atomic_store(&race_stop, 0);
	atomic_store(&race_frees, 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, race_lookups, NULL), 0);
	for (; made < 100000; made++) {
		struct fd_desc *d = calloc(1, sizeof(*d));
		assert_non_null(d);
		fdtab_desc_init(d, &race_kind);
		assert_true(fdtab_note(d, race_fd) && fdtab_install(race_fd, d));
		(void)fdtab_remove(race_fd);
	}
	atomic_store(&race_stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(atomic_load(&race_frees), made);
	close(race_fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_install_get_remove),
	    cmocka_unit_test(test_hold_outlives_close),
	    cmocka_unit_test(test_share),
	    cmocka_unit_test(test_share_replaces),
	    cmocka_unit_test(test_replaced_behind),
	    cmocka_unit_test(test_out_of_range),
	    cmocka_unit_test(test_each),
	    cmocka_unit_test(test_lookup_races_close),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
