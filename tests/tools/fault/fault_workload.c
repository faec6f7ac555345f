/*
 * fault_workload.c - the program tests/integration/test_runtime_faults.sh
 * runs under the runtime while libscone-fault.so fails its real calls. It
 * uses libc only, as any program would; every EINTR or short count it sees
 * is reported, never retried.
 *
 *   fault_workload write DIR NAME COUNT EVERY
 *       Append COUNT records to DIR/NAME (created if missing), one write
 *       each. After every EVERY records: replace DIR/NAME.state through
 *       DIR/NAME.state.tmp and rename (the state names the last record),
 *       then fsync DIR/NAME and print "ACK SEQ" (records 0..SEQ are
 *       durable). At the end close DIR/NAME and print "ACK SEQ" for the
 *       last record (close of the volume's last file commits), then "DONE".
 *       On a failure print "ERR OP SEQ ERRNAME" (OP: open, write, fsync,
 *       state, close; ERRNAME: the errno's name, or "short" for a short
 *       count) and exit 3; a failed fsync is retried once first (after
 *       "ERR fsync ..."), and its success is an ACK like any other.
 *   fault_workload check DIR NAME[,NAME...]
 *       Read DIR/NAME and DIR/NAME.state back, for each NAME. Prints
 *       "RECORDS NAME N" when the file is exactly records 0..N-1 of NAME
 *       (N = 0: no file), each intact, in order, and "STATE NAME S" (the
 *       last record the state names; -1: no state file). A file that ends
 *       in the first B bytes of record N (what a short write of it leaves)
 *       also prints "TORN NAME N B". Anything else prints "BAD NAME ..."
 *       with the offset and what is wrong, and exits 1.
 *
 * A record: "FAULTREC-5d1e NAME SEQ PAYLOAD\n", PAYLOAD 96 letters, a pure
 * function of NAME and SEQ: a check can tell a torn, reordered, doubled or
 * foreign record from the one the workload wrote. The marker
 * "FAULTREC-5d1e" must never be found on the host.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MARKER "FAULTREC-5d1e"
#define PAYLOAD 96
#define MAX_RECORD 256
#define MAX_FILE (16u << 20)

static const char *errname(int e)
{
	switch (e) {
	case EINTR:
		return "EINTR";
	case EIO:
		return "EIO";
	case ENOSPC:
		return "ENOSPC";
	case EAGAIN:
		return "EAGAIN";
	case ENOENT:
		return "ENOENT";
	case EBADF:
		return "EBADF";
	case ESTALE:
		return "ESTALE";
	default:
		return "other";
	}
}

/* Record seq of name into buf; its length. */
static size_t record(char buf[MAX_RECORD], const char *name, long seq)
{
	uint64_t h = 1469598103934665603ULL;
	int n;

	for (const char *p = name; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ULL;
	h = (h ^ (uint64_t)seq) * 1099511628211ULL;
	n = snprintf(buf, MAX_RECORD, "%s %s %ld ", MARKER, name, seq);
	if (n < 0 || n + PAYLOAD + 1 >= MAX_RECORD)
		return 0;
	for (int i = 0; i < PAYLOAD; i++) {
		h ^= h >> 29;
		h *= 0xbf58476d1ce4e5b9ULL;
		buf[n + i] = (char)('a' + (h >> 40) % 26);
	}
	buf[n + PAYLOAD] = '\n';
	return (size_t)n + PAYLOAD + 1;
}

static int failed(const char *op, long seq, const char *why)
{
	printf("ERR %s %ld %s\n", op, seq, why);
	fflush(stdout);
	return 3;
}

/* One whole write, or false (errno set; 0 for a short count). */
static bool write_all(int fd, const char *buf, size_t n)
{
	ssize_t w = write(fd, buf, n);

	if (w == (ssize_t)n)
		return true;
	if (w >= 0)
		errno = 0;
	return false;
}

static const char *why(void)
{
	return errno ? errname(errno) : "short";
}

/* DIR/NAME.state = "SEQ\n", through a temporary file and rename. */
static bool put_state(const char *dir, const char *name, long seq)
{
	char tmp[4096], dst[4096], text[32];
	int fd, n = snprintf(text, sizeof(text), "%ld\n", seq);

	if (snprintf(tmp, sizeof(tmp), "%s/%s.state.tmp", dir, name) >= (int)sizeof(tmp) ||
	    snprintf(dst, sizeof(dst), "%s/%s.state", dir, name) >= (int)sizeof(dst) || n <= 0)
		return false;
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0)
		return false;
	if (!write_all(fd, text, (size_t)n)) {
		int e = errno;
		close(fd);
		errno = e;
		return false;
	}
	return close(fd) == 0 && rename(tmp, dst) == 0;
}

static int do_write(const char *dir, const char *name, long count, long every)
{
	char path[4096], rec[MAX_RECORD];
	long seq;
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return 2;
	if ((fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) < 0)
		return failed("open", 0, errname(errno));
	for (seq = 0; seq < count; seq++) {
		size_t n = record(rec, name, seq);
		if (!write_all(fd, rec, n))
			return failed("write", seq, why());
		if ((seq + 1) % every != 0)
			continue;
		if (!put_state(dir, name, seq))
			return failed("state", seq, why());
		if (fsync(fd) != 0) {
			failed("fsync", seq, errname(errno));
			if (fsync(fd) != 0)
				return failed("fsync", seq, errname(errno));
		}
		printf("ACK %ld\n", seq);
		fflush(stdout);
	}
	if (close(fd) != 0)
		return failed("close", count - 1, errname(errno));
	printf("ACK %ld\nDONE\n", count - 1);
	return 0;
}

/* All of path into a fresh buffer (*size bytes); NULL with errno set. */
static char *slurp(const char *path, size_t *size)
{
	char *buf = malloc(MAX_FILE);
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || !buf) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		free(buf);
		errno = e;
		return NULL;
	}
	for (;;) {
		ssize_t n = read(fd, buf + got, MAX_FILE - got);
		if (n < 0) {
			int e = errno;
			close(fd);
			free(buf);
			errno = e;
			return NULL;
		}
		if (n == 0 || (got += (size_t)n) == MAX_FILE)
			break;
	}
	close(fd);
	*size = got;
	return buf;
}

static int bad(const char *name, const char *what, size_t off, long seq)
{
	printf("BAD %s %s at offset %zu (record %ld)\n", name, what, off, seq);
	return 1;
}

/* The records of DIR/NAME: their count into *count, the bytes of a torn last one into *torn; or 1 after a BAD
 * line. */
static int check_records(const char *dir, const char *name, long *count, size_t *torn)
{
	char path[4096], rec[MAX_RECORD];
	size_t size = 0, off = 0;
	long seq = 0;
	char *data;
	int rc = 0;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return 2;
	data = slurp(path, &size);
	if (!data && errno != ENOENT) {
		printf("BAD %s cannot read %s: %s\n", name, path, strerror(errno));
		return 1;
	}
	*torn = 0;
	while (data && off < size && rc == 0) {
		size_t n = record(rec, name, seq);
		if (size - off < n && memcmp(data + off, rec, size - off) == 0)
			*torn = size - off, off = size; /* the start of record seq: a short write */
		else if (size - off < n)
			rc = bad(name, "torn record (not a prefix of it)", off, seq);
		else if (memcmp(data + off, rec, n) != 0)
			rc = bad(name,
				 memcmp(data + off, MARKER, strlen(MARKER)) ? "garbage"
									    : "wrong or corrupt record",
				 off, seq);
		else
			off += n, seq++;
	}
	free(data);
	*count = seq;
	return rc;
}

/* The last record DIR/NAME.state names (-1: no state file), or 1 after a BAD line. */
static int check_state(const char *dir, const char *name, long *state)
{
	char path[4096], *data, *end;
	size_t size = 0;

	*state = -1;
	if (snprintf(path, sizeof(path), "%s/%s.state", dir, name) >= (int)sizeof(path))
		return 2;
	if (!(data = slurp(path, &size))) {
		if (errno == ENOENT)
			return 0;
		printf("BAD %s cannot read %s: %s\n", name, path, strerror(errno));
		return 1;
	}
	data[size < MAX_FILE ? size : MAX_FILE - 1] = '\0';
	*state = strtol(data, &end, 10);
	if (end == data || *end != '\n' || end[1] != '\0' || *state < 0) {
		printf("BAD %s state file: '%.40s'\n", name, data);
		free(data);
		return 1;
	}
	free(data);
	return 0;
}

static int do_check(const char *dir, const char *names)
{
	char name[256];

	while (*names) {
		size_t len = strcspn(names, ",");
		long count, state;
		size_t torn;
		int rc;

		if (len == 0 || len >= sizeof(name))
			return 2;
		memcpy(name, names, len);
		name[len] = '\0';
		names += len + (names[len] == ',');
		if ((rc = check_records(dir, name, &count, &torn)) || (rc = check_state(dir, name, &state)))
			return rc;
		printf("RECORDS %s %ld\nSTATE %s %ld\n", name, count, name, state);
		if (torn)
			printf("TORN %s %ld %zu\n", name, count, torn);
	}
	return 0;
}

static long arg_num(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);

	return *s && !*end && v > 0 && v <= 1000000 ? v : -1;
}

int main(int argc, char **argv)
{
	if (argc == 6 && strcmp(argv[1], "write") == 0) {
		long count = arg_num(argv[4]), every = arg_num(argv[5]);
		if (count < 0 || every < 0)
			return 2;
		return do_write(argv[2], argv[3], count, every);
	}
	if (argc == 4 && strcmp(argv[1], "check") == 0)
		return do_check(argv[2], argv[3]);
	fprintf(stderr, "usage: fault_workload write DIR NAME COUNT EVERY\n"
			"       fault_workload check DIR NAME[,NAME...]\n");
	return 2;
}
