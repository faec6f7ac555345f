/* keyfile.c - a 32-byte secret in a file of its own (contract in keyfile.h). */
#include "keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto.h"
#include "hex.h"

#define HEX_LEN (2 * SCONE_KEYFILE_KEY_SIZE)

enum scone_err scone_keyfile_read(const char *path, uint8_t key[SCONE_KEYFILE_KEY_SIZE], const char *what)
{
	char hex[HEX_LEN + 2];
	struct stat st;
	enum scone_err err;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return scone_err_set(scone_err_from_errno(errno), "%s (%s): %s", path, what, strerror(errno));
	if (fstat(fd, &st) != 0 || (st.st_mode & 077)) {
		close(fd);
		return scone_err_set(SCONE_ERR_PERMISSION,
				     "%s (%s): readable by others (mode %03o); chmod 600 it", path, what,
				     (unsigned)(st.st_mode & 0777));
	}
	n = read(fd, hex, sizeof(hex));
	close(fd);
	if (n < HEX_LEN || (n > HEX_LEN && hex[HEX_LEN] != '\n')) {
		scone_wipe(hex, sizeof(hex));
		return scone_err_set(SCONE_ERR_MALFORMED, "%s (%s): expected 64 hex digits", path, what);
	}
	hex[HEX_LEN] = '\0';
	err = scone_hex_decode(key, SCONE_KEYFILE_KEY_SIZE, hex, path);
	scone_wipe(hex, sizeof(hex));
	return err;
}

/* fsync the directory that holds path, so that a new name in it survives a crash. */
static enum scone_err sync_parent(const char *path)
{
	char copy[4200];
	int fd, r;

	if ((size_t)snprintf(copy, sizeof(copy), "%s", path) >= sizeof(copy))
		return scone_err_set(SCONE_ERR_NAME_TOO_LONG, "%s: path too long", path);
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return scone_err_set(scone_err_from_errno(errno), "%s: its directory: %s", path,
				     strerror(errno));
	r = fsync(fd);
	close(fd);
	return r == 0 ? SCONE_ERR_OK
		      : scone_err_set(SCONE_ERR_IO, "%s: fsync of its directory: %s", path, strerror(errno));
}

/* Write key as hex to a new file tmp (0600) and make it durable. */
static enum scone_err write_new(const char *tmp, const uint8_t key[SCONE_KEYFILE_KEY_SIZE], const char *what)
{
	char hex[HEX_LEN + 2];
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	bool ok;

	if (fd < 0)
		return scone_err_set(scone_err_from_errno(errno), "%s (%s): %s", tmp, what, strerror(errno));
	scone_hex_encode(hex, sizeof(hex), key, SCONE_KEYFILE_KEY_SIZE);
	hex[HEX_LEN] = '\n';
	ok = write(fd, hex, HEX_LEN + 1) == HEX_LEN + 1 && fsync(fd) == 0;
	scone_wipe(hex, sizeof(hex));
	if (close(fd) != 0 || !ok)
		return scone_err_set(SCONE_ERR_IO, "%s: cannot write %s", tmp, what);
	return SCONE_ERR_OK;
}

enum scone_err scone_keyfile_create(const char *path, uint8_t key[SCONE_KEYFILE_KEY_SIZE], const char *what)
{
	char tmp[4200];
	enum scone_err err;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
		return scone_err_set(SCONE_ERR_NAME_TOO_LONG, "%s: path too long", path);
	SCONE_TRY(scone_random(key, SCONE_KEYFILE_KEY_SIZE));
	unlink(tmp); /* a crash's leftover: never a key under the name */
	err = write_new(tmp, key, what);
	/* link, not rename: a key another process put there meanwhile stays, and this one goes */
	if (!err && link(tmp, path) != 0)
		err = errno == EEXIST
			  ? scone_err_set(SCONE_ERR_EXISTS, "%s (%s): made meanwhile by another process",
					  path, what)
			  : scone_err_set(scone_err_from_errno(errno), "%s (%s): %s", path, what,
					  strerror(errno));
	unlink(tmp);
	if (!err)
		err = sync_parent(path);
	if (err)
		scone_wipe(key, SCONE_KEYFILE_KEY_SIZE);
	return err;
}
