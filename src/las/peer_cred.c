/*
 * peer_cred.c - identifying a caller on kernels without SO_PEERPIDFD
 * (before Linux 6.5). SO_PEERCRED names the connecting process only by
 * its pid, which may have been reused by another process between
 * connect() and now. So the pid is pinned with pidfd_open, and then the
 * process behind it must hold the other end of our connection (one of its
 * fds is the socket whose inode sock_diag names as our peer): a process
 * that merely got the old pid does not.
 */
#include "las.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

enum scone_err las_peer_identify_cred(int sock, struct las_peer *p)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	long fd;

	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0)
		return scone_err_set(scone_err_from_errno(errno), "SO_PEERCRED: %s", strerror(errno));
	fd = syscall(SYS_pidfd_open, cr.pid, 0);
	if (fd < 0)
		return scone_err_set(errno == ENOSYS ? SCONE_ERR_UNSUPPORTED : SCONE_ERR_ATTESTATION,
				     "pidfd_open(%d): %s (the caller has exited, or the kernel is older than 5.3)",
				     (int)cr.pid, strerror(errno));
	p->pidfd = (int)fd;
	p->pid = cr.pid;
	p->uid = cr.uid;
	p->gid = cr.gid;
	p->by_cred = true;
	return SCONE_ERR_OK;
}

/* The inode of the socket at the other end of sock, from the kernel's unix socket diagnostics. */
static enum scone_err peer_inode(int sock, uint32_t *out)
{
	struct {
		struct nlmsghdr nlh;
		struct unix_diag_req r;
	} req = { .nlh = { .nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY, .nlmsg_flags = NLM_F_REQUEST },
		  .r = { .sdiag_family = AF_UNIX, .udiag_states = ~0u, .udiag_show = UDIAG_SHOW_PEER,
			 .udiag_cookie = { ~0u, ~0u } } };
	union {
		struct nlmsghdr h;
		uint8_t b[8192];
	} ans;
	struct stat st;
	ssize_t n;
	int nl;

	if (fstat(sock, &st) != 0)
		return scone_err_set(SCONE_ERR_IO, "fstat of the connection: %s", strerror(errno));
	req.r.udiag_ino = (uint32_t)st.st_ino;
	nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (nl < 0)
		return scone_err_set(SCONE_ERR_UNSUPPORTED, "sock_diag: %s", strerror(errno));
	n = send(nl, &req, sizeof(req), 0) == (ssize_t)sizeof(req) ? recv(nl, &ans, sizeof(ans), 0) : -1;
	close(nl);
	if (n < (ssize_t)NLMSG_LENGTH(sizeof(struct unix_diag_msg)) || !NLMSG_OK(&ans.h, (size_t)n) ||
	    ans.h.nlmsg_type != SOCK_DIAG_BY_FAMILY)
		return scone_err_set(SCONE_ERR_UNSUPPORTED, "sock_diag gave no answer for the connection (unix_diag missing?)");
	{
		struct unix_diag_msg *m = NLMSG_DATA(&ans.h);
		struct rtattr *a = (struct rtattr *)(m + 1);
		int left = (int)(ans.h.nlmsg_len - NLMSG_LENGTH(sizeof(*m)));

		for (; RTA_OK(a, left); a = RTA_NEXT(a, left)) {
			if (a->rta_type == UNIX_DIAG_PEER && RTA_PAYLOAD(a) >= sizeof(uint32_t)) {
				memcpy(out, RTA_DATA(a), sizeof(uint32_t));
				return SCONE_ERR_OK;
			}
		}
	}
	return scone_err_set(SCONE_ERR_ATTESTATION, "the connection has no peer any more");
}

enum scone_err las_peer_holds_socket(const struct las_peer *p)
{
	char want[48], link[64];
	uint32_t ino;
	struct dirent *e;
	DIR *d;
	int dfd;
	bool found = false;

	SCONE_TRY(peer_inode(p->sock, &ino));
	snprintf(want, sizeof(want), "socket:[%" PRIu32 "]", ino);
	dfd = openat(p->proc_fd, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || !(d = fdopendir(dfd))) {
		if (dfd >= 0)
			close(dfd);
		return scone_err_set(SCONE_ERR_ATTESTATION, "cannot list the fds of pid %d (it has exited?)", (int)p->pid);
	}
	while (!found && (e = readdir(d))) {
		ssize_t n = readlinkat(dfd, e->d_name, link, sizeof(link) - 1);
		if (n > 0) {
			link[n] = '\0';
			found = strcmp(link, want) == 0;
		}
	}
	closedir(d);
	if (!found)
		return scone_err_set(SCONE_ERR_ATTESTATION,
				     "pid %d does not hold the connecting socket: the caller exited and its pid was "
				     "reused by another process, which gets no report",
				     (int)p->pid);
	return SCONE_ERR_OK;
}
