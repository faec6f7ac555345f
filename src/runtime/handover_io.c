/*
 * handover_io.c - the encrypted memfd and the key socket of a handover
 * (handover_io.h).
 */
#include "runtime/handover_io.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "lib/crypto.h"
#include "runtime/handover.h"
#include "runtime/sys.h"

#define AAD "scone-handover v2"
#define HEAD (SCONE_NONCE_SIZE + SCONE_TAG_SIZE)

static enum scone_err sys_err(const char *what)
{
	int e = errno;

	return scone_err_set(scone_err_from_errno(e), "handover %s: %s", what, strerror(e));
}

static enum scone_err write_all(int fd, const void *data, size_t size, const char *what)
{
	const uint8_t *p = data;

	while (size) {
		ssize_t n = SYS(write)(fd, p, size);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? sys_err(what)
				     : scone_err_set(SCONE_ERR_IO, "handover %s: short write", what);
		p += n;
		size -= (size_t)n;
	}
	return SCONE_ERR_OK;
}

/* nonce || tag || ciphertext of encoded under key, into a fresh buffer. */
static enum scone_err seal(const struct scone_wbuf *encoded, const uint8_t key[SCONE_KEY_SIZE], uint8_t **out,
			   size_t *out_size)
{
	struct scone_aead *a;
	enum scone_err err;
	uint8_t *b;

	if (!(b = malloc(HEAD + encoded->size)))
		return scone_err_set(SCONE_ERR_NOMEM, "handover");
	err = scone_random(b, SCONE_NONCE_SIZE);
	if (!err)
		err = scone_aead_new(SCONE_AEAD_AES256_GCM, key, &a);
	if (!err) {
		err = scone_aead_seal(a, b, AAD, sizeof(AAD) - 1, encoded->data, encoded->size, b + HEAD,
				      b + SCONE_NONCE_SIZE);
		scone_aead_free(a);
	}
	if (err) {
		free(b);
		return err;
	}
	*out = b;
	*out_size = HEAD + encoded->size;
	return SCONE_ERR_OK;
}

static enum scone_err make_memfd(const uint8_t *data, size_t size, int *out)
{
	int fd = memfd_create(SCONE_HANDOVER_MEMFD, MFD_ALLOW_SEALING);
	enum scone_err err;

	if (fd < 0)
		return sys_err("memfd");
	err = write_all(fd, data, size, "memfd");
	if (!err &&
	    SYS(fcntl)(fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
		err = sys_err("memfd seals");
	if (err) {
		SYS(close)(fd);
		return err;
	}
	*out = fd;
	return SCONE_ERR_OK;
}

/*
 * A socket holding the key for its reader, with the n_pass fds of pass
 * passed along (SCM_RIGHTS): an fd in flight on a socket cannot be opened
 * through /proc/PID/fd by another process of the user while the new
 * program is still dumpable, as an inherited memfd could. The writing end
 * is closed (the bytes and the fds stay queued).
 */
static enum scone_err make_keyfd(const uint8_t key[SCONE_KEY_SIZE], const int *pass, size_t n_pass, int *out)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(SCONE_HANDOVER_PASSED * sizeof(int))];
	} ctl;
	struct iovec v = {.iov_base = (void *)key, .iov_len = SCONE_KEY_SIZE};
	struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1};
	int sv[2];
	enum scone_err err = SCONE_ERR_OK;
	ssize_t n;

	if (n_pass > SCONE_HANDOVER_PASSED)
		return scone_err_set(SCONE_ERR_INVALID, "%zu fds to pass with the handover", n_pass);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return sys_err("key socket");
	if (n_pass) {
		memset(&ctl, 0, sizeof(ctl));
		m.msg_control = ctl.b;
		m.msg_controllen = CMSG_SPACE(n_pass * sizeof(int));
		CMSG_FIRSTHDR(&m)->cmsg_level = SOL_SOCKET;
		CMSG_FIRSTHDR(&m)->cmsg_type = SCM_RIGHTS;
		CMSG_FIRSTHDR(&m)->cmsg_len = CMSG_LEN(n_pass * sizeof(int));
		memcpy(CMSG_DATA(CMSG_FIRSTHDR(&m)), pass, n_pass * sizeof(int));
	}
	while ((n = sendmsg(sv[0], &m, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	if (n != SCONE_KEY_SIZE) /* (a fresh socket takes 32 bytes whole) */
		err = sys_err("key socket");
	SYS(close)(sv[0]);
	if (err) {
		SYS(close)(sv[1]);
		return err;
	}
	*out = sv[1];
	return SCONE_ERR_OK;
}

enum scone_err scone_handover_send(const struct scone_wbuf *encoded, const int *pass, size_t n_pass,
				   int *memfd, int *keyfd)
{
	uint8_t key[SCONE_KEY_SIZE], *sealed = NULL;
	size_t sealed_size = 0;
	enum scone_err err;

	*memfd = *keyfd = -1;
	err = scone_random(key, sizeof(key));
	if (!err)
		err = seal(encoded, key, &sealed, &sealed_size);
	if (!err)
		err = make_memfd(sealed, sealed_size, memfd);
	if (!err && (err = make_keyfd(key, pass, n_pass, keyfd))) {
		SYS(close)(*memfd);
		*memfd = -1;
	}
	scone_wipe(key, sizeof(key));
	free(sealed); /* ciphertext: nothing to wipe */
	return err;
}

/* ---- the receiving side ---- */

static bool parse_fds(const char *text, int *memfd, int *keyfd)
{
	char *end;
	long a = strtol(text, &end, 10), b;

	if (end == text || *end != ':' || a < 0 || a > INT_MAX)
		return false;
	text = end + 1;
	b = strtol(text, &end, 10);
	if (end == text || *end || b < 0 || b > INT_MAX || a == b)
		return false;
	*memfd = (int)a;
	*keyfd = (int)b;
	return true;
}

/* Is fd the runtime's handover memfd (by its name in /proc/self/fd)? */
static bool is_handover_memfd(int fd)
{
	char proc[64], link[128];
	ssize_t n;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	n = SYS(readlink)(proc, link, sizeof(link) - 1);
	if (n < 0)
		return false;
	link[n] = '\0';
	return strcmp(link, "/memfd:" SCONE_HANDOVER_MEMFD " (deleted)") == 0;
}

static bool is_socket(int fd)
{
	struct stat st;

	return SYS(fstat)(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* Close the fds passed (and mark them none). */
static void close_passed(int pass[SCONE_HANDOVER_PASSED])
{
	for (size_t i = 0; i < SCONE_HANDOVER_PASSED; i++) {
		if (pass[i] >= 0)
			SYS(close)(pass[i]);
		pass[i] = -1;
	}
}

/* The key, and the fds passed along with it (-1 where none came). */
static enum scone_err read_key(int fd, uint8_t key[SCONE_KEY_SIZE], int pass[SCONE_HANDOVER_PASSED])
{
	size_t got = 0;
	bool taken = false;

	for (size_t i = 0; i < SCONE_HANDOVER_PASSED; i++)
		pass[i] = -1;
	while (got < SCONE_KEY_SIZE) {
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(SCONE_HANDOVER_PASSED * sizeof(int))];
		} ctl;
		struct iovec v = {.iov_base = key + got, .iov_len = SCONE_KEY_SIZE - got};
		struct msghdr m = {
		    .msg_iov = &v, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof(ctl.b)};
		ssize_t n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
		struct cmsghdr *c;
		if (n < 0 && errno == EINTR)
			continue;
		for (c = n > 0 ? CMSG_FIRSTHDR(&m) : NULL; c; c = CMSG_NXTHDR(&m, c)) {
			size_t k = c->cmsg_len >= CMSG_LEN(0) ? (c->cmsg_len - CMSG_LEN(0)) / sizeof(int) : 0;
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			for (size_t i = 0; i < k; i++) { /* (more than expected: closed) */
				int f;
				memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				if (!taken && i < SCONE_HANDOVER_PASSED)
					pass[i] = f;
				else
					SYS(close)(f);
			}
			taken = true;
		}
		if (n <= 0) {
			close_passed(pass);
			return scone_err_set(SCONE_ERR_INVALID, "the handover key socket holds no key");
		}
		got += (size_t)n;
	}
	return SCONE_ERR_OK;
}

static enum scone_err read_sealed(int fd, uint8_t **out, size_t *out_size)
{
	struct stat st;
	size_t done = 0;
	uint8_t *b;

	if (SYS(fstat)(fd, &st) != 0 || st.st_size < HEAD || (uint64_t)st.st_size > SCONE_HANDOVER_MAX + HEAD)
		return scone_err_set(SCONE_ERR_INVALID, "handover memfd of a bad size");
	if (!(b = malloc((size_t)st.st_size)))
		return scone_err_set(SCONE_ERR_NOMEM, "handover");
	while (done < (size_t)st.st_size) {
		ssize_t n = SYS(pread)(fd, b + done, (size_t)st.st_size - done, (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(b);
			return scone_err_set(SCONE_ERR_IO, "reading the handover memfd");
		}
		done += (size_t)n;
	}
	*out = b;
	*out_size = done;
	return SCONE_ERR_OK;
}

static enum scone_err open_sealed(const uint8_t key[SCONE_KEY_SIZE], uint8_t *sealed, size_t size,
				  uint8_t **out, size_t *out_size)
{
	struct scone_aead *a;
	enum scone_err err;
	uint8_t *plain;

	if (!(plain = malloc(size - HEAD + 1)))
		return scone_err_set(SCONE_ERR_NOMEM, "handover");
	err = scone_aead_new(SCONE_AEAD_AES256_GCM, key, &a);
	if (!err) {
		err = scone_aead_open(a, sealed, AAD, sizeof(AAD) - 1, sealed + HEAD, size - HEAD, plain,
				      sealed + SCONE_NONCE_SIZE);
		scone_aead_free(a);
	}
	if (err) {
		free(plain);
		return scone_err_set(err, "the handover does not authenticate with its key");
	}
	*out = plain;
	*out_size = size - HEAD;
	return SCONE_ERR_OK;
}

enum scone_err scone_handover_receive(const char *fds, uint8_t **out, size_t *out_size,
				      int pass[SCONE_HANDOVER_PASSED])
{
	uint8_t key[SCONE_KEY_SIZE], *sealed = NULL;
	size_t sealed_size = 0;
	enum scone_err err;
	int memfd, keyfd;

	for (size_t i = 0; i < SCONE_HANDOVER_PASSED; i++)
		pass[i] = -1;
	if (!fds || !parse_fds(fds, &memfd, &keyfd))
		return scone_err_set(SCONE_ERR_INVALID, "expected MEMFD:KEYFD");
	/* Nothing is closed unless both are the runtime's: the variable may name the program's own fds. */
	if (!is_handover_memfd(memfd) || !is_socket(keyfd))
		return scone_err_set(SCONE_ERR_INVALID,
				     "%s does not name the runtime's handover memfd and key socket", fds);
	err = read_key(keyfd, key, pass);
	if (!err)
		err = read_sealed(memfd, &sealed, &sealed_size);
	if (!err)
		err = open_sealed(key, sealed, sealed_size, out, out_size);
	scone_wipe(key, sizeof(key));
	free(sealed);
	SYS(close)(memfd);
	SYS(close)(keyfd);
	if (err)
		close_passed(pass);
	return err;
}
