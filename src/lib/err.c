/* err.c - error names, descriptions and thread-local detail. */
#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const err_text[] = {
#define SCONE_ERR_TEXT(name, text) [SCONE_ERR_##name] = text,
	SCONE_ERRORS(SCONE_ERR_TEXT)
#undef SCONE_ERR_TEXT
};

static const char *const err_name[] = {
#define SCONE_ERR_NAME(name, text) [SCONE_ERR_##name] = #name,
	SCONE_ERRORS(SCONE_ERR_NAME)
#undef SCONE_ERR_NAME
};

static _Thread_local char err_detail[512];

const char *scone_strerror(enum scone_err e)
{
	if ((unsigned)e >= SCONE_ERR_COUNT_)
		return "unknown error";
	return err_text[e];
}

const char *scone_errname(enum scone_err e)
{
	if ((unsigned)e >= SCONE_ERR_COUNT_)
		return "UNKNOWN";
	return err_name[e];
}

enum scone_err scone_err_set(enum scone_err e, const char *fmt, ...)
{
	char buf[sizeof(err_detail)]; /* the arguments may include the current detail */
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(buf, sizeof(buf), fmt, ap) < 0)
		buf[0] = '\0';
	va_end(ap);
	memcpy(err_detail, buf, sizeof(err_detail));
	return e;
}

const char *scone_err_detail(void)
{
	return err_detail;
}

void scone_err_clear(void)
{
	err_detail[0] = '\0';
}

enum scone_err scone_err_from_errno(int errnum)
{
	switch (errnum) {
	case 0:
		return SCONE_ERR_OK;
	case ENOMEM:
		return SCONE_ERR_NOMEM;
	case ENOENT:
		return SCONE_ERR_NOT_FOUND;
	case EEXIST:
		return SCONE_ERR_EXISTS;
	case ENOTDIR:
		return SCONE_ERR_NOT_DIR;
	case EISDIR:
		return SCONE_ERR_IS_DIR;
	case ENOTEMPTY:
		return SCONE_ERR_NOT_EMPTY;
	case ENOSPC:
	case EDQUOT:
		return SCONE_ERR_NO_SPACE;
	case EACCES:
	case EPERM:
		return SCONE_ERR_PERMISSION;
	case EINVAL:
		return SCONE_ERR_INVALID;
	case EBADF:
		return SCONE_ERR_BAD_FD;
	case EROFS:
		return SCONE_ERR_READ_ONLY;
	case EBUSY:
		return SCONE_ERR_BUSY;
	case EFBIG:
		return SCONE_ERR_TOO_LARGE;
	case ENOTSUP: /* == EOPNOTSUPP on Linux; scone_err_to_errno gives it */
		return SCONE_ERR_UNSUPPORTED;
	case EXDEV:
		return SCONE_ERR_CROSS_REGION;
	case ENAMETOOLONG:
		return SCONE_ERR_NAME_TOO_LONG;
	default:
		return SCONE_ERR_IO;
	}
}

int scone_err_to_errno(enum scone_err e)
{
	switch (e) {
	case SCONE_ERR_OK:
		return 0;
	case SCONE_ERR_NOMEM:
		return ENOMEM;
	case SCONE_ERR_INVALID:
	case SCONE_ERR_MALFORMED:
		return EINVAL;
	case SCONE_ERR_NOT_FOUND:
	case SCONE_ERR_NO_REGION:
		return ENOENT;
	case SCONE_ERR_EXISTS:
		return EEXIST;
	case SCONE_ERR_NOT_DIR:
		return ENOTDIR;
	case SCONE_ERR_IS_DIR:
		return EISDIR;
	case SCONE_ERR_NOT_EMPTY:
		return ENOTEMPTY;
	case SCONE_ERR_NO_SPACE:
		return ENOSPC;
	case SCONE_ERR_PERMISSION:
	case SCONE_ERR_ATTESTATION:
		return EACCES;
	case SCONE_ERR_READ_ONLY:
		return EROFS;
	case SCONE_ERR_UNSUPPORTED:
		return ENOTSUP;
	case SCONE_ERR_BAD_FD:
		return EBADF;
	case SCONE_ERR_BUSY:
		return EBUSY;
	case SCONE_ERR_TOO_LARGE:
		return EFBIG;
	case SCONE_ERR_CROSS_REGION:
		return EXDEV;
	case SCONE_ERR_NAME_TOO_LONG:
		return ENAMETOOLONG;
	default:
		return EIO;
	}
}
