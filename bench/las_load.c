/*
 * las_load.c - load for scone-las (driven by bench/bench_las.sh).
 *
 *   las_load rate SOCK CALLERS SECONDS [refused]
 *       CALLERS processes ask for reports in a loop (connect, request,
 *       answer, close) for SECONDS; prints "RATE <answers per second>".
 *       With "refused" each sends a request with a bad magic, which the LAS
 *       refuses at the header: the same connections without measuring or
 *       signing (the same-run baseline).
 *   las_load cold SOCK FILE RUNS
 *       Map FILE executable, then RUNS times: give it a new change time (the
 *       LAS's cache misses) and time one report (cold), then time a second
 *       one (warm). Prints "COLD <median ms> WARM <median ms>".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "attest/las_proto.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static uint8_t frame[SCONE_LAS_HEADER_SIZE + SCONE_LAS_REQUEST_SIZE];

static void make_frame(int bad)
{
	struct scone_las_request req = { .runtime_addr = (uint64_t)(uintptr_t)&make_frame };
	uint8_t body[SCONE_LAS_REQUEST_SIZE];
	struct scone_wbuf w;

	scone_las_exec_binding((const uint8_t *)getauxval(AT_RANDOM), req.exec_binding);
	scone_las_request_encode(&req, body);
	scone_wbuf_init(&w, sizeof(frame), 0);
	if (scone_las_frame(SCONE_LAS_MSG_REQUEST, body, sizeof(body), &w) != SCONE_ERR_OK)
		exit(3);
	memcpy(frame, w.data, w.size);
	scone_wbuf_free(&w);
	if (bad)
		frame[0] = 'X';
}

/* One request; returns 1 for a report, 0 for a refusal, -1 for an error. */
static int ask(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint8_t buf[SCONE_LAS_HEADER_SIZE + SCONE_LAS_BODY_MAX];
	size_t have = 0;
	ssize_t n;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), rc = -1;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    send(fd, frame, sizeof(frame), MSG_NOSIGNAL) != (ssize_t)sizeof(frame))
		goto out;
	while ((n = read(fd, buf + have, sizeof(buf) - have)) > 0)
		have += (size_t)n;
	if (have >= SCONE_LAS_HEADER_SIZE)
		rc = buf[5] == SCONE_LAS_MSG_REPORT ? 1 : 0;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

static int rate(const char *path, int callers, double seconds, int bad)
{
	int p[2];
	long total = 0, n;
	double t0;

	if (pipe(p) != 0)
		return 3;
	make_frame(bad);
	t0 = now_ms();
	for (int i = 0; i < callers; i++) {
		if (fork() == 0) {
			long count = 0;
			close(p[0]);
			while (now_ms() - t0 < seconds * 1000.0) {
				int r = ask(path);
				if (r < 0 || r == bad)
					_exit(4); /* an error, a refusal of a good request, or a report for a bad one */
				count++;
			}
			(void)!write(p[1], &count, sizeof(count));
			_exit(0);
		}
	}
	close(p[1]);
	while (read(p[0], &n, sizeof(n)) == (ssize_t)sizeof(n))
		total += n;
	for (int i = 0, st; i < callers; i++) {
		wait(&st);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "las_load: a caller failed\n");
			return 4;
		}
	}
	printf("RATE %.0f\n", (double)total / ((now_ms() - t0) / 1000.0));
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static int cold(const char *path, const char *file, int runs)
{
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	struct stat st;
	double *c = calloc((size_t)runs, sizeof(double)), *w = calloc((size_t)runs, sizeof(double)), t;

	if (fd < 0 || fstat(fd, &st) != 0 || !c || !w ||
	    mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0) == MAP_FAILED) {
		perror(file);
		return 3;
	}
	make_frame(0);
	for (int i = 0; i < runs; i++) {
		if (futimens(fd, NULL) != 0) /* a new ctime: the LAS must hash the file again */
			return 3;
		t = now_ms();
		if (ask(path) != 1)
			return 4;
		c[i] = now_ms() - t;
		t = now_ms();
		if (ask(path) != 1)
			return 4;
		w[i] = now_ms() - t;
	}
	qsort(c, (size_t)runs, sizeof(double), cmp_double);
	qsort(w, (size_t)runs, sizeof(double), cmp_double);
	printf("COLD %.3f WARM %.3f\n", c[runs / 2], w[runs / 2]);
	free(c);
	free(w);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 5 && strcmp(argv[1], "rate") == 0)
		return rate(argv[2], (int)strtol(argv[3], NULL, 10), strtod(argv[4], NULL), argc > 5 && strcmp(argv[5], "refused") == 0);
	if (argc == 5 && strcmp(argv[1], "cold") == 0)
		return cold(argv[2], argv[3], (int)strtol(argv[4], NULL, 10));
	fprintf(stderr, "usage: las_load rate SOCK CALLERS SECONDS [refused] | cold SOCK FILE RUNS\n");
	return 2;
}
