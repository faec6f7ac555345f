/*
 * peer.c - who is calling, as the kernel says, and whether it is still the
 * same process and program when the report is made.
 *
 * Invariants (docs/attestation.md, "How the LAS knows its caller"):
 * - The caller is the process that called connect(): SO_PEERPIDFD gives a
 *   pidfd for it (peer_cred.c does the same on older kernels). Nothing the
 *   caller sends names a process.
 * - /proc/PID is opened once; it is the caller's if the pidfd shows the
 *   process alive after the open (a pid is not reused while its process
 *   lives), and every later read goes through that directory fd, whose
 *   files fail once the process is gone. The report is made only if the
 *   caller is still alive after the measurement.
 * - Every byte of the request was written by the connecting process
 *   (SCM_CREDENTIALS per segment), and the program image running now is
 *   the one that wrote it (the request carries a hash of the AT_RANDOM
 *   bytes the kernel gave that image; an exec makes new ones).
 */
#include "las.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/crypto.h"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

/* Read a small /proc/PID file into buf (NUL-terminated); false if it cannot be read. */
static bool read_small(int dir, const char *name, char *buf, size_t size, size_t *len)
{
	int fd = openat(dir, name, O_RDONLY | O_CLOEXEC);
	size_t n = 0;
	ssize_t k;

	if (fd < 0)
		return false;
	while (n + 1 < size && (k = read(fd, buf + n, size - 1 - n)) != 0) {
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			close(fd);
			return false;
		}
		n += (size_t)k;
	}
	close(fd);
	buf[n] = '\0';
	if (len)
		*len = n;
	return true;
}

enum scone_err las_peer_identify(int sock, enum las_peer_mode mode, struct las_peer *out)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	int pidfd = -1;

	memset(out, 0, sizeof(*out));
	out->sock = sock;
	out->pidfd = out->proc_fd = -1;
	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0)
		return scone_err_set(scone_err_from_errno(errno), "SO_PEERCRED: %s", strerror(errno));
	if (cr.pid <= 0)
		return scone_err_set(SCONE_ERR_PERMISSION,
				     "the caller is in a pid namespace the LAS cannot see (run scone-las in the host's "
				     "pid namespace)");
	out->uid = cr.uid;
	out->gid = cr.gid;
	/*
	 * The pid the kernel recorded at connect(). With the pidfd it is
	 * trustworthy: the pidfd's process had this pid then, and keeps it
	 * while it lives, which las_peer_open_proc checks after opening
	 * /proc/PID (cheaper than asking the pidfd's fdinfo).
	 */
	out->pid = cr.pid;
	if (mode == LAS_PEER_CRED)
		return las_peer_identify_cred(sock, out);
	len = sizeof(pidfd);
	if (getsockopt(sock, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) != 0) {
		if (mode == LAS_PEER_AUTO && (errno == ENOPROTOOPT || errno == EINVAL))
			return las_peer_identify_cred(sock, out);
		return scone_err_set(scone_err_from_errno(errno), "SO_PEERPIDFD: %s", strerror(errno));
	}
	out->pidfd = pidfd;
	return SCONE_ERR_OK;
}

enum scone_err las_peer_alive(const struct las_peer *p)
{
	struct pollfd pfd = { .fd = p->pidfd, .events = POLLIN };

	if (poll(&pfd, 1, 0) < 0)
		return scone_err_set(scone_err_from_errno(errno), "pidfd: %s", strerror(errno));
	if (pfd.revents)
		return scone_err_set(SCONE_ERR_ATTESTATION,
				     "the calling process (pid %d) has exited: its pid may be reused by another process, "
				     "which gets no report",
				     (int)p->pid);
	return SCONE_ERR_OK;
}

enum scone_err las_peer_open_proc(struct las_peer *p)
{
	char path[64];

	if (p->pid <= 0)
		return scone_err_set(SCONE_ERR_ATTESTATION, "the calling process has exited before it could be measured");
	snprintf(path, sizeof(path), "/proc/%d", (int)p->pid);
	p->proc_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (p->proc_fd < 0)
		return scone_err_set(SCONE_ERR_ATTESTATION, "%s: %s (the caller has exited?)", path, strerror(errno));
	SCONE_TRY(las_peer_alive(p));
	return p->by_cred ? las_peer_holds_socket(p) : SCONE_ERR_OK;
}

enum scone_err las_peer_check_writer(const struct las_peer *p, pid_t writer)
{
	if (writer != p->pid)
		return scone_err_set(SCONE_ERR_PERMISSION,
				     "the request was written by process %d, not by the process that connected (%d): a "
				     "LAS connection handed to another process gets no report",
				     (int)writer, (int)p->pid);
	return SCONE_ERR_OK;
}

enum scone_err las_peer_check_untraced(const struct las_peer *p)
{
	char buf[4096], *t;
	long tracer;

	if (!read_small(p->proc_fd, "status", buf, sizeof(buf), NULL) || !(t = strstr(buf, "\nTracerPid:")))
		return scone_err_set(SCONE_ERR_ATTESTATION, "cannot read the caller's status (it has exited?)");
	tracer = strtol(t + 11, NULL, 10);
	if (tracer != 0)
		return scone_err_set(SCONE_ERR_ATTESTATION,
				     "the process is being traced (TracerPid %ld): a traced process gets no report", tracer);
	return SCONE_ERR_OK;
}

/* The address of the AT_RANDOM bytes, from the kernel's copy of the caller's auxiliary vector. */
static enum scone_err at_random_addr(const struct las_peer *p, uint64_t *out)
{
	uint64_t auxv[2 * 64];
	size_t len = 0;

	if (!read_small(p->proc_fd, "auxv", (char *)auxv, sizeof(auxv), &len))
		return scone_err_set(SCONE_ERR_ATTESTATION, "cannot read the caller's auxv (it has exited?)");
	for (size_t i = 0; i + 1 < len / 8; i += 2) {
		if (auxv[i] == AT_NULL)
			break;
		if (auxv[i] == AT_RANDOM) {
			*out = auxv[i + 1];
			return SCONE_ERR_OK;
		}
	}
	return scone_err_set(SCONE_ERR_ATTESTATION, "the caller's auxv has no AT_RANDOM");
}

enum scone_err las_peer_check_exec(const struct las_peer *p, const uint8_t binding[32])
{
	uint8_t rnd[16], want[32];
	uint64_t addr = 0;
	ssize_t n;
	int fd;

	SCONE_TRY(at_random_addr(p, &addr));
	fd = openat(p->proc_fd, "mem", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return scone_err_set(SCONE_ERR_PERMISSION,
				     "cannot open the caller's memory: %s (scone-las needs CAP_SYS_PTRACE: run it as root)",
				     strerror(errno));
	n = pread(fd, rnd, sizeof(rnd), (off_t)addr);
	close(fd);
	if (n != (ssize_t)sizeof(rnd))
		return scone_err_set(SCONE_ERR_ATTESTATION, "cannot read the caller's AT_RANDOM bytes (it has exited?)");
	scone_las_exec_binding(rnd, want);
	scone_wipe(rnd, sizeof(rnd));
	if (!scone_ct_equal(want, binding, 32))
		return scone_err_set(SCONE_ERR_ATTESTATION,
				     "the program running in the calling process is not the one that asked (it exec'd "
				     "another program after sending the request, or the request was made for another "
				     "process)");
	return SCONE_ERR_OK;
}

void las_printable(const char *in, size_t len, char out[SCONE_LAS_TEXT_MAX + 1])
{
	size_t k = 0;

	if (len > SCONE_LAS_TEXT_MAX) {
		memcpy(out, "...", 3);
		k = 3;
		in += len - (SCONE_LAS_TEXT_MAX - 3);
		len = SCONE_LAS_TEXT_MAX - 3;
	}
	for (size_t i = 0; i < len; i++)
		out[k++] = (unsigned char)in[i] >= 0x20 && (unsigned char)in[i] <= 0x7e ? in[i] : '?';
	out[k] = '\0';
}

void las_peer_cgroup(const struct las_peer *p, char out[SCONE_LAS_TEXT_MAX + 1])
{
	char buf[8192], *line, *end;
	size_t len;

	out[0] = '\0';
	if (!read_small(p->proc_fd, "cgroup", buf, sizeof(buf), &len) || len == 0)
		return;
	line = strstr(buf, "0::");
	if (line && (line == buf || line[-1] == '\n')) {
		line += 3;
	} else { /* cgroup v1 only: the first hierarchy's path */
		line = strchr(buf, ':');
		line = line ? strchr(line + 1, ':') : NULL;
		if (!line)
			return;
		line++;
	}
	end = strchr(line, '\n');
	las_printable(line, end ? (size_t)(end - line) : strlen(line), out);
}

void las_peer_exe(const struct las_peer *p, char out[SCONE_LAS_TEXT_MAX + 1])
{
	char buf[4096];
	ssize_t n = readlinkat(p->proc_fd, "exe", buf, sizeof(buf));

	las_printable(buf, n > 0 ? (size_t)n : 0, out);
}

void las_peer_close(struct las_peer *p)
{
	if (p->pidfd >= 0)
		close(p->pidfd);
	if (p->proc_fd >= 0)
		close(p->proc_fd);
	p->pidfd = p->proc_fd = -1;
}
