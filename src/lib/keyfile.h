/*
 * keyfile.h - a 32-byte secret kept in a file of its own as 64 hex digits
 * and a newline, readable by its owner only: CAS's master key, the LAS's
 * host key seed. Reading refuses a file others may read, a symlink and
 * anything but 64 hex digits; creating never leaves half a key under the
 * name and never replaces a key that is there.
 */
#ifndef SCONE_KEYFILE_H
#define SCONE_KEYFILE_H

#include <stdint.h>

#include "err.h"

#define SCONE_KEYFILE_KEY_SIZE 32

/* Read path's key into key; what names the key in errors ("the master key"). On error key is wiped. */
SCONE_MUST_CHECK enum scone_err scone_keyfile_read(const char *path, uint8_t key[SCONE_KEYFILE_KEY_SIZE],
						   const char *what);

/*
 * A new random key, written to path.tmp (mode 0600), made durable and
 * linked to path, then the directory made durable. EXISTS when path is
 * there already (made meanwhile by another process: read it instead).
 */
SCONE_MUST_CHECK enum scone_err scone_keyfile_create(const char *path, uint8_t key[SCONE_KEYFILE_KEY_SIZE],
						     const char *what);

#endif
