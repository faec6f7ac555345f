/*
 * image_proc.c - run the container engine's CLI and tar for `scone image`:
 * argv arrays (never a shell), stdin from /dev/null, stdout kept in memory
 * (bounded), sent to a file or to the next command of a pipeline, and the
 * end of stderr kept for the message when a command fails.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "image.h"

#define MAX_STAGES 4

void img_out_free(struct img_out *o)
{
	free(o->out);
	o->out = NULL;
	o->out_size = 0;
}

/* Start argv with the given stdin, stdout and stderr; every fd of ours is close-on-exec. */
static enum scone_err spawn(char *const argv[], int in, int out, int err, pid_t *pid)
{
	pid_t c = fork();

	if (c < 0)
		return scone_err_set(SCONE_ERR_IO, "fork for %s: %s", argv[0], strerror(errno));
	if (c == 0) {
		signal(SIGPIPE, SIG_DFL);
		if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
			_exit(126);
		execvp(argv[0], argv);
		dprintf(2, "%s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	*pid = c;
	return SCONE_ERR_OK;
}

static void keep_tail(char *buf, size_t cap, size_t *len, const char *in, size_t n)
{
	if (n >= cap - 1) {
		in += n - (cap - 1);
		n = cap - 1;
	}
	if (*len + n > cap - 1) {
		size_t drop = *len + n - (cap - 1);
		memmove(buf, buf + drop, *len - drop);
		*len -= drop;
	}
	memcpy(buf + *len, in, n);
	*len += n;
	buf[*len] = '\0';
}

/* Append n bytes to o->out, up to IMG_MAX_OUTPUT. */
static enum scone_err keep_out(struct img_out *o, size_t *cap, const char *in, size_t n)
{
	if (o->out_size + n > IMG_MAX_OUTPUT)
		n = IMG_MAX_OUTPUT - o->out_size;
	if (o->out_size + n + 1 > *cap) {
		size_t want = (o->out_size + n + 1) * 2;
		char *p = realloc(o->out, want);
		if (!p)
			return scone_err_set(SCONE_ERR_NOMEM, "output of a command");
		o->out = p;
		*cap = want;
	}
	memcpy(o->out + o->out_size, in, n);
	o->out_size += n;
	o->out[o->out_size] = '\0';
	return SCONE_ERR_OK;
}

/* Read the kept stdout (out_fd, or -1) and stderr until both are closed. */
static enum scone_err collect(int out_fd, int err_fd, struct img_out *o)
{
	struct pollfd p[2] = {{.fd = err_fd, .events = POLLIN}, {.fd = out_fd, .events = POLLIN}};
	size_t cap = 0, err_len = 0;
	char buf[65536];
	enum scone_err err = SCONE_ERR_OK;
	int open_count = out_fd >= 0 ? 2 : 1;

	while (open_count > 0) {
		if (poll(p, out_fd >= 0 ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			return scone_err_set(SCONE_ERR_IO, "poll: %s", strerror(errno));
		}
		for (int i = 0; i < 2; i++) {
			if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t n = read(p[i].fd, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				p[i].fd = -1;
				open_count--;
			} else if (i == 0) {
				keep_tail(o->err, sizeof(o->err), &err_len, buf, (size_t)n);
			} else if (!err) {
				err = keep_out(o, &cap, buf, (size_t)n);
			}
		}
	}
	return err;
}

static int wait_status(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return 127;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/*
 * Run the stages as a pipeline; the last one's stdout goes to out_file (a
 * fd) or, when out_file < 0, into o->out. o->status is the first non-zero
 * status, and failed_stage which stage it was.
 */
static enum scone_err run_stages(char *const *stages[], size_t n, int out_file, struct img_out *o,
				 size_t *failed_stage)
{
	pid_t pids[MAX_STAGES];
	int errp[2] = {-1, -1}, outp[2] = {-1, -1}, prev = -1, null_in;
	size_t started = 0;
	enum scone_err err = SCONE_ERR_OK;

	memset(o, 0, sizeof(*o));
	if (n == 0 || n > MAX_STAGES)
		return scone_err_set(SCONE_ERR_INVALID, "a pipeline of %zu commands", n);
	if ((null_in = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0 || pipe2(errp, O_CLOEXEC) != 0)
		err = scone_err_set(SCONE_ERR_IO, "pipe: %s", strerror(errno));
	prev = null_in;
	for (size_t i = 0; !err && i < n; i++) {
		int out_fd;
		if (i + 1 < n || out_file < 0) {
			if (pipe2(outp, O_CLOEXEC) != 0) {
				err = scone_err_set(SCONE_ERR_IO, "pipe: %s", strerror(errno));
				break;
			}
			out_fd = outp[1];
		} else {
			out_fd = out_file;
		}
		err = spawn(stages[i], prev, out_fd, errp[1], &pids[i]);
		if (!err)
			started++;
		if (prev != null_in)
			close_fd(&prev);
		if (out_fd == outp[1])
			close_fd(&outp[1]);
		prev = outp[0];
		outp[0] = -1;
	}
	close_fd(&errp[1]);
	if (!err)
		err = collect(out_file < 0 ? prev : -1, errp[0], o);
	if (prev != null_in)
		close_fd(&prev);
	close_fd(&errp[0]);
	if (null_in >= 0)
		close(null_in);
	for (size_t i = 0; i < started; i++) {
		int st = wait_status(pids[i]);
		if (st != 0 && o->status == 0) {
			o->status = st;
			*failed_stage = i;
		}
	}
	return err;
}

enum scone_err img_pipeline(char *const *stages[], size_t n, struct img_out *out)
{
	size_t failed = 0;
	enum scone_err err = run_stages(stages, n, -1, out, &failed);

	if (!err && out->status != 0)
		err = img_failed(stages[failed][0], out);
	return err;
}

enum scone_err img_run(char *const argv[], struct img_out *out)
{
	char *const *stages[] = {argv};
	size_t failed;

	return run_stages(stages, 1, -1, out, &failed);
}

enum scone_err img_run_to_file(char *const argv[], const char *path, struct img_out *out)
{
	char *const *stages[] = {argv};
	size_t failed;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	enum scone_err err;

	if (fd < 0)
		return scone_err_set(SCONE_ERR_IO, "%s: %s", path, strerror(errno));
	err = run_stages(stages, 1, fd, out, &failed);
	if (close(fd) != 0 && !err)
		err = scone_err_set(SCONE_ERR_IO, "%s: %s", path, strerror(errno));
	return err;
}

enum scone_err img_failed(const char *what, const struct img_out *o)
{
	const char *e = o->err;
	size_t n = strlen(e);

	while (n > 0 && (e[n - 1] == '\n' || e[n - 1] == ' '))
		n--;
	return scone_err_set(SCONE_ERR_IO, "%s exited with status %d%s%.*s", what, o->status, n ? ": " : "",
			     (int)n, e);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

void img_rmtree(const char *path)
{
	nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS);
}
