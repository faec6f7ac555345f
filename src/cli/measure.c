/*
 * measure.c - `scone measure PROGRAM [ARGS...]`: the measurement the LAS
 * reports for PROGRAM started under `scone run` on this host, which a
 * session in las mode lists in mrenclave.
 *
 * PROGRAM is started exactly as `scone run` starts it (the runtime
 * preloaded, the same environment), so the loader maps the same files: the
 * same libraries found the same way, LD_PRELOAD included. The runtime, told
 * by SCONE_MEASURE, measures its own process with the LAS's algorithm
 * (src/attest/measure.h) at the point where a real start asks the LAS, and
 * exits before main: the program's own code never runs.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

static int usage_text(const char *usage)
{
	printf("%s\n\n"
	       "Print the measurement (64 hex) that the LAS reports for PROGRAM started with\n"
	       "`scone run` on this host, for a session's attestation: mrenclave in las mode.\n"
	       "It covers every file mapped executable before main: PROGRAM, the loader, every\n"
	       "shared library and preloaded library (the runtime among them). PROGRAM is started\n"
	       "under the runtime in a measure-only mode that stops before its main, with this\n"
	       "environment (LD_LIBRARY_PATH, LD_PRELOAD ... as `scone run` would have them).\n"
	       "For an interpreter (python3 app.py) this is the interpreter's measurement: the\n"
	       "script must come from a volume whose tag CAS checks (docs/attestation.md).\n\n"
	       "  --verbose, -v   also list each code file: role, SHA-256, path\n",
	       usage);
	return 0;
}

/* Run PROGRAM with SCONE_MEASURE=fd; its report is read from the pipe into out. */
static enum scone_err run_measured(char **argv, const char *lib, char *out, size_t size, int *status)
{
	int p[2];
	pid_t child;
	size_t n = 0;
	ssize_t k;
	char fd_text[16];

	if (pipe(p) != 0)
		return scone_err_set(SCONE_ERR_IO, "pipe: %s", strerror(errno));
	child = fork();
	if (child == 0) {
		close(p[0]);
		snprintf(fd_text, sizeof(fd_text), "%d", p[1]);
		setenv("SCONE_MEASURE", fd_text, 1);
		unsetenv("SCONE_HANDOVER");
		cli_preload(lib);
		execvp(argv[0], argv);
		fprintf(stderr, "scone: %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(p[1]);
	if (child < 0) {
		close(p[0]);
		return scone_err_set(SCONE_ERR_IO, "fork: %s", strerror(errno));
	}
	while (n + 1 < size && ((k = read(p[0], out + n, size - 1 - n)) > 0 || (k < 0 && errno == EINTR)))
		n += k > 0 ? (size_t)k : 0;
	out[n] = '\0';
	close(p[0]);
	while (waitpid(child, status, 0) < 0 && errno == EINTR)
		;
	return SCONE_ERR_OK;
}

int cmd_measure(int argc, char **argv)
{
	const char *usage = "scone measure [--verbose] PROGRAM [ARGS...]";
	char lib[PATH_MAX], *report, *m;
	bool verbose = false;
	enum scone_err err;
	int i = 1, status = 0, rc = 0;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (cli_is_help(argv[i]))
			return usage_text(usage);
		if (strcmp(argv[i], "--verbose") == 0 || strcmp(argv[i], "-v") == 0)
			verbose = true;
		else if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else
			return cli_usage(usage, "unknown option %s", argv[i]);
	}
	if (i >= argc)
		return cli_usage(usage, "expected PROGRAM");
	if ((err = cli_runtime_path(lib, sizeof(lib))))
		return cli_fail(err, "runtime");
	if ((err = cli_check_program(argv[i])))
		return cli_fail(err, argv[i]);
	if (!(report = malloc(1 << 20)))
		return cli_fail(scone_err_set(SCONE_ERR_NOMEM, "out of memory"), "measure");
	err = run_measured(argv + i, lib, report, 1 << 20, &status);
	m = strstr(report, "measurement ");
	if (err) {
		rc = cli_fail(err, argv[i]);
	} else if (!m || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		rc = cli_fail(scone_err_set(SCONE_ERR_UNSUPPORTED,
					    "%s did not report a measurement (exit %d): it did not load the runtime?",
					    argv[i], WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)),
			      argv[i]);
	} else {
		if (verbose)
			fwrite(report, 1, (size_t)(m - report), stdout);
		printf("%.64s\n", m + strlen("measurement "));
	}
	free(report);
	return rc;
}
