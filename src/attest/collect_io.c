/* collect_io.c - pseudo-file I/O for evidence collection (see collect_io.h). */
#include "attest/collect_io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum scone_err collect_path(char *path, size_t size, const char *dir, const char *name)
{
	int n = snprintf(path, size, "%s/%s", dir, name);

	if (n < 0 || (size_t)n >= size)
		return scone_err_set(SCONE_ERR_NAME_TOO_LONG, "path %.64s/%s is too long", dir, name);
	return SCONE_ERR_OK;
}

enum scone_err collect_write(const char *path, const void *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return scone_err_set(scone_err_from_errno(errno), "cannot open %s for writing: %s", path,
				     strerror(errno));
	do
		n = write(fd, data, size);
	while (n < 0 && errno == EINTR);
	if (n < 0 || (size_t)n != size) {
		int e = n < 0 ? errno : EIO;
		close(fd);
		return scone_err_set(scone_err_from_errno(e), "cannot write %zu bytes to %s: %s", size, path,
				     strerror(e));
	}
	if (close(fd) != 0)
		return scone_err_set(SCONE_ERR_IO, "cannot write %s: %s", path, strerror(errno));
	return SCONE_ERR_OK;
}

enum scone_err collect_read(const char *path, size_t max, struct scone_wbuf *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	uint8_t buf[4096];
	size_t total = 0;
	enum scone_err err = SCONE_ERR_OK;

	if (fd < 0)
		return scone_err_set(scone_err_from_errno(errno), "cannot open %s: %s", path,
				     strerror(errno));
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = scone_err_set(scone_err_from_errno(errno), "cannot read %s: %s", path,
					    strerror(errno));
			break;
		}
		if (n == 0)
			break;
		total += (size_t)n;
		if (total > max) {
			err = scone_err_set(SCONE_ERR_TOO_LARGE, "%s: more than %zu bytes", path, max);
			break;
		}
		if ((err = scone_wbuf_put(out, buf, (size_t)n)))
			break;
	}
	close(fd);
	return err;
}

enum scone_err collect_read_text(const char *path, char *text, size_t size)
{
	struct scone_wbuf w;
	enum scone_err err;

	scone_wbuf_init(&w, size - 1, 0);
	err = collect_read(path, size - 1, &w);
	if (!err) {
		size_t n = w.size;
		if (n)
			memcpy(text, w.data, n);
		while (n && (text[n - 1] == '\n' || text[n - 1] == '\0'))
			n--;
		text[n] = '\0';
	}
	scone_wbuf_free(&w);
	return err;
}
