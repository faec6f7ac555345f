/* common.c - dispatch, error reporting, key/tag arguments, progress bar. */
#include "cli.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/crypto.h"
#include "lib/hex.h"

bool cli_is_help(const char *arg)
{
	return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0 || strcmp(arg, "help") == 0;
}

int cli_dispatch(const char *prog, const struct cli_cmd *cmds, int argc, char **argv)
{
	if (argc >= 2 && !cli_is_help(argv[1])) {
		for (const struct cli_cmd *c = cmds; c->name; c++)
			if (strcmp(argv[1], c->name) == 0)
				return c->run(argc - 1, argv + 1);
		fprintf(stderr, "%s: unknown command '%s'\n\n", prog, argv[1]);
	}
	FILE *out = argc >= 2 && cli_is_help(argv[1]) ? stdout : stderr;
	fprintf(out, "Usage: %s COMMAND [ARGS...]\n\nCommands:\n", prog);
	for (const struct cli_cmd *c = cmds; c->name; c++)
		fprintf(out, "  %-10s %s\n", c->name, c->summary);
	fprintf(out, "\nRun '%s COMMAND --help' for a command's options.\n", prog);
	return out == stdout ? 0 : 2;
}

int cli_fail(enum scone_err err, const char *what)
{
	const char *detail = scone_err_detail();

	if (detail[0])
		fprintf(stderr, "scone: %s: %s (%s)\n", what, detail, scone_errname(err));
	else
		fprintf(stderr, "scone: %s: %s (%s)\n", what, scone_strerror(err), scone_errname(err));
	return 1;
}

int cli_usage(const char *usage, const char *fmt, ...)
{
	va_list ap;

	fputs("scone: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nUsage: %s\n", usage);
	return 2;
}

static bool read_key_file(const char *path, char *hex, size_t hex_size, enum scone_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0) {
		*err = scone_err_set(SCONE_ERR_NOT_FOUND, "cannot open key file %s", path);
		return false;
	}
	n = read(fd, hex, hex_size - 1);
	close(fd);
	if (n < 0) {
		*err = scone_err_set(SCONE_ERR_IO, "cannot read key file %s", path);
		return false;
	}
	hex[n] = '\0';
	while (n > 0 && (hex[n - 1] == '\n' || hex[n - 1] == '\r' || hex[n - 1] == ' '))
		hex[--n] = '\0';
	return true;
}

bool cli_get_key(const char *hex, const char *file, uint8_t key[static 32], enum scone_err *err)
{
	char buf[160];
	bool ok = true;

	*err = SCONE_ERR_OK;
	if (!hex && file) {
		if (!read_key_file(file, buf, sizeof(buf), err))
			return true;
		hex = buf;
	}
	if (!hex)
		hex = getenv("SCONE_FSPF_KEY");
	if (!hex)
		ok = false;
	else
		*err = scone_hex_decode(key, 32, hex, "key");
	scone_wipe(buf, sizeof(buf));
	return ok;
}

bool cli_get_tag(const char *hex, uint8_t tag[static 16], enum scone_err *err)
{
	*err = SCONE_ERR_OK;
	if (!hex)
		hex = getenv("SCONE_FSPF_TAG");
	if (!hex)
		return false;
	*err = scone_hex_decode(tag, 16, hex, "tag");
	return true;
}

void cli_progress_start(struct cli_progress *p, const char *label, uint64_t total)
{
	p->total = total;
	p->done = 0;
	p->last_pct = -1;
	p->label = label;
	p->tty = isatty(STDERR_FILENO) && !getenv("SCONE_NO_PROGRESS");
}

void cli_progress_add(struct cli_progress *p, uint64_t n)
{
	int pct, width = 30, fill;
	char bar[32];

	p->done += n;
	if (!p->tty)
		return;
	pct = p->total ? (int)(p->done * 100 / p->total) : 100;
	if (pct > 100)
		pct = 100;
	if (pct == p->last_pct)
		return;
	p->last_pct = pct;
	fill = pct * width / 100;
	memset(bar, '#', (size_t)fill);
	memset(bar + fill, ' ', (size_t)(width - fill));
	bar[width] = '\0';
	fprintf(stderr, "\r%s [%s] %3d%%", p->label, bar, pct);
	fflush(stderr);
}

void cli_progress_end(struct cli_progress *p)
{
	if (p->tty && p->last_pct >= 0)
		fputs("\n", stderr);
}
