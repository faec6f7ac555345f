/*
 * sync_writer.c - a program that writes and fsyncs records on a file
 * system while signals rain on it, and a checker of what it left (driven
 * by tests/integration/test_databases.sh, run under the runtime with DIR
 * on a volume; it knows nothing of scone).
 *
 *   sync_writer [--procs N] [--signal-us U] [--gap-us G] [--seconds S] DIR
 *       N processes (the first forks the others; default 1) each write
 *       records 0, 1, 2, ... to DIR/w<k>.dat: record i is RECORD_SIZE
 *       bytes at offset i * RECORD_SIZE (a pseudo-random function of k
 *       and i, with a header naming them), then fsync. A process prints
 *       "START <k> <pid>" once, then "SYNCED <k> <i>" on stdout each time
 *       fsync of record i returned 0 and "FAILED <k> <i> <errno name>"
 *       when the write or the fsync failed (it goes on with the next
 *       record: a database would retry). With --signal-us each process
 *       takes SIGALRM every U microseconds (setitimer; a handler installed
 *       with SA_RESTART, as PostgreSQL's are) from before its first write.
 *       With --gap-us a process waits G microseconds between a write and
 *       its fsync (a database writes its log, then syncs it later), so
 *       that more of its records are written but not yet synced when
 *       something happens to another process.
 *       After S seconds (default: until killed) each process prints
 *       "DONE <k> <records> <signals>" and exits 0 (the first after
 *       waiting for the others).
 *   sync_writer --check [--procs N] DIR
 *       For each k < N: read DIR/w<k>.dat, print "BAD <k> <i>" for each
 *       record slot i that does not hold record i intact (never written,
 *       lost, partly written, damaged), then "CHECK <k> <slots>" (the
 *       file's size in records, rounded up). A missing file has 0 slots.
 *
 * A record that fsync acknowledged must be there afterwards, whatever
 * happened in between: the caller checks that every SYNCED <k> <i> has
 * i < slots and no BAD line (records whose write or fsync failed may be
 * anything). Exit status: 0 ok (the check ran), 1 the file could not be
 * read, 2 usage, 3 cannot start (open, fork, timer).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RECORD_SIZE 1000 /* not a divisor of any chunk size: records straddle chunks */
#define MAX_PROCS 16

static volatile sig_atomic_t signals_seen;

static void on_alarm(int sig)
{
	(void)sig;
	signals_seen++;
}

/* Record i of writer k: "rec <k> <i>\n" then bytes of a xorshift stream seeded by (k, i). */
static void record_fill(uint8_t rec[RECORD_SIZE], unsigned k, unsigned long i)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)k << 48) ^ (uint64_t)i;
	int n = snprintf((char *)rec, RECORD_SIZE, "rec %u %lu\n", k, i);
	size_t j;

	if (n < 0 || n >= RECORD_SIZE)
		n = 0;
	for (j = (size_t)n; j < RECORD_SIZE; j++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		rec[j] = (uint8_t)(x >> 24);
	}
}

/* One line on stdout with a single write(2), so lines of several processes never mix. */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char line[160];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	while (write(STDOUT_FILENO, line, (size_t)n) < 0 && errno == EINTR)
		;
}

static const char *errno_name(int e)
{
	switch (e) {
	case EIO:
		return "EIO";
	case EINTR:
		return "EINTR";
	case EAGAIN:
		return "EAGAIN";
	case EPERM:
		return "EPERM";
	case EBADF:
		return "EBADF";
	case ENOSPC:
		return "ENOSPC";
	case ETIMEDOUT:
		return "ETIMEDOUT";
	default:
		return "other";
	}
}

static int start_timer(long usec)
{
	struct sigaction sa;
	struct itimerval it;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGALRM, &sa, NULL) != 0)
		return -1;
	it.it_interval.tv_sec = usec / 1000000;
	it.it_interval.tv_usec = usec % 1000000;
	it.it_value = it.it_interval;
	return setitimer(ITIMER_REAL, &it, NULL);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Writer k: the loop described above. */
static int writer(const char *dir, unsigned k, long signal_us, long gap_us, double seconds)
{
	uint8_t rec[RECORD_SIZE];
	char path[4096];
	unsigned long i;
	double end = seconds > 0 ? now_s() + seconds : 0;
	int fd, n;

	n = snprintf(path, sizeof(path), "%s/w%u.dat", dir, k);
	if (n < 0 || (size_t)n >= sizeof(path))
		return 3;
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "sync_writer: %s: %s\n", path, strerror(errno));
		return 3;
	}
	if (signal_us > 0 && start_timer(signal_us) != 0) {
		fprintf(stderr, "sync_writer: setitimer: %s\n", strerror(errno));
		return 3;
	}
	say("START %u %ld\n", k, (long)getpid());
	for (i = 0; end == 0 || now_s() < end; i++) {
		ssize_t w;

		record_fill(rec, k, i);
		w = pwrite(fd, rec, RECORD_SIZE, (off_t)(i * RECORD_SIZE));
		if (w != RECORD_SIZE) {
			say("FAILED %u %lu %s\n", k, i, w < 0 ? errno_name(errno) : "short");
			continue;
		}
		if (gap_us > 0) {
			struct timespec gap = {.tv_sec = gap_us / 1000000,
					       .tv_nsec = (gap_us % 1000000) * 1000};

			while (nanosleep(&gap, &gap) != 0 && errno == EINTR)
				;
		}
		if (fsync(fd) != 0)
			say("FAILED %u %lu %s\n", k, i, errno_name(errno));
		else
			say("SYNCED %u %lu\n", k, i);
	}
	if (signal_us > 0) {
		struct itimerval off;

		memset(&off, 0, sizeof(off));
		setitimer(ITIMER_REAL, &off, NULL);
	}
	if (close(fd) != 0)
		say("FAILED %u close %s\n", k, errno_name(errno));
	say("DONE %u %lu %ld\n", k, i, (long)signals_seen);
	return 0;
}

static int run_writers(const char *dir, unsigned procs, long signal_us, long gap_us, double seconds)
{
	pid_t kids[MAX_PROCS];
	unsigned k;
	int rc = 0, st;

	for (k = 1; k < procs; k++) {
		kids[k] = fork();
		if (kids[k] < 0) {
			fprintf(stderr, "sync_writer: fork: %s\n", strerror(errno));
			return 3;
		}
		if (kids[k] == 0)
			_exit(writer(dir, k, signal_us, gap_us, seconds));
	}
	rc = writer(dir, 0, signal_us, gap_us, seconds);
	for (k = 1; k < procs; k++) {
		while (waitpid(kids[k], &st, 0) < 0 && errno == EINTR)
			;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			rc = rc ? rc : 3;
	}
	return rc;
}

/*
 * CHECK: the file's record slots (its size rounded up to whole records) and
 * each slot that does not hold its record, intact.
 */
static int check_one(const char *dir, unsigned k)
{
	uint8_t want[RECORD_SIZE], got[RECORD_SIZE];
	char path[4096];
	unsigned long i, slots;
	off_t size;
	ssize_t r;
	int fd, n;

	n = snprintf(path, sizeof(path), "%s/w%u.dat", dir, k);
	if (n < 0 || (size_t)n >= sizeof(path))
		return 1;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT) {
			fprintf(stderr, "sync_writer: %s: %s\n", path, strerror(errno));
			return 1;
		}
		say("CHECK %u 0\n", k);
		return 0;
	}
	size = lseek(fd, 0, SEEK_END);
	if (size < 0) {
		fprintf(stderr, "sync_writer: %s: lseek: %s\n", path, strerror(errno));
		close(fd);
		return 1;
	}
	slots = (unsigned long)((size + RECORD_SIZE - 1) / RECORD_SIZE);
	for (i = 0; i < slots; i++) {
		r = pread(fd, got, RECORD_SIZE, (off_t)(i * RECORD_SIZE));
		if (r < 0) {
			fprintf(stderr, "sync_writer: %s: read: %s\n", path, strerror(errno));
			close(fd);
			return 1;
		}
		record_fill(want, k, i);
		if (r < RECORD_SIZE || memcmp(want, got, RECORD_SIZE) != 0)
			say("BAD %u %lu\n", k, i);
	}
	close(fd);
	say("CHECK %u %lu\n", k, slots);
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: sync_writer [--procs N] [--signal-us U] [--gap-us G] [--seconds S] DIR\n"
			"       sync_writer --check [--procs N] DIR\n");
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"procs", required_argument, NULL, 'p'},   {"signal-us", required_argument, NULL, 's'},
	    {"seconds", required_argument, NULL, 't'}, {"check", no_argument, NULL, 'c'},
	    {"gap-us", required_argument, NULL, 'g'},  {NULL, 0, NULL, 0},
	};
	unsigned long procs = 1;
	long signal_us = 0, gap_us = 0;
	double seconds = 0;
	int c, check = 0, rc = 0;
	char *end;
	unsigned k;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			procs = strtoul(optarg, &end, 10);
			if (*end || procs < 1 || procs > MAX_PROCS)
				return usage();
			break;
		case 's':
			signal_us = strtol(optarg, &end, 10);
			if (*end || signal_us < 1)
				return usage();
			break;
		case 'g':
			gap_us = strtol(optarg, &end, 10);
			if (*end || gap_us < 0 || gap_us > 10000000)
				return usage();
			break;
		case 't':
			seconds = strtod(optarg, &end);
			if (*end || seconds <= 0)
				return usage();
			break;
		case 'c':
			check = 1;
			break;
		default:
			return usage();
		}
	}
	if (optind != argc - 1)
		return usage();
	if (!check)
		return run_writers(argv[optind], (unsigned)procs, signal_us, gap_us, seconds);
	for (k = 0; k < procs; k++)
		rc |= check_one(argv[optind], k);
	return rc;
}
