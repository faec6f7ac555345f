/*
 * handover.h - the runtime's state handed from a program to the program it
 * execs (DESIGN.md §4, "Processes under the runtime"): the configuration
 * CAS gave, the session's environment variables taken out of the exec'd
 * environment, the volumes (tags, shared state, open fds, working
 * directory) and the key the tag reports are bound to. Encoded here,
 * carried encrypted in a sealed memfd with its key in a socket
 * (handover_io.h); the child's runtime decodes it before its main instead
 * of asking CAS again.
 *
 * Format (all integers little-endian): the magic "SCONEHO1", then records
 * of u8 type, u32 length, length bytes, in any order; docs/runtime.md lists
 * the types. The decoder treats the bytes as untrusted: every length is
 * bounded, every record checked, unknown types refused.
 */
#ifndef SCONE_RUNTIME_HANDOVER_H
#define SCONE_RUNTIME_HANDOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/err.h"

#define SCONE_HANDOVER_MAX (32u * 1024 * 1024)
#define SCONE_HANDOVER_TAG_SIZE 16
/* Bounds on what one handover may hold (the decoder refuses more; so does the encoder). */
#define SCONE_HANDOVER_MAX_ADDR 256
#define SCONE_HANDOVER_MAX_IDENTITY (64u * 1024)
#define SCONE_HANDOVER_MAX_ENV 4096
#define SCONE_HANDOVER_MAX_ENV_ENTRY (1u * 1024 * 1024)
#define SCONE_HANDOVER_MAX_VOLUMES 64
#define SCONE_HANDOVER_MAX_FDS 16384
#define SCONE_HANDOVER_MAX_PATH 4096

struct scone_handover_volume {
	char *name; /* the image's name for the mount */
	bool has_tag;
	uint8_t tag[SCONE_HANDOVER_TAG_SIZE];
};

struct scone_handover_fd {
	int fd;
	int flags;	 /* open flags (access mode, O_APPEND) */
	uint32_t volume; /* index into volumes */
	char *vpath;	 /* path inside the volume */
	bool dir;
	uint64_t dev, ino; /* its placeholder's identity: a file action may have put another there */
	bool has_fid;	   /* fid: the file's id, opened by it (a rename since does not change the file) */
	bool cloexec;	   /* closed by the exec: only a spawn's file action may have put it elsewhere */
	uint8_t fid[16];
};

struct scone_handover {
	char *config; /* CAS's answer (JSON), as fetched */
	size_t config_len;
	char *cas_addr;
	uint8_t pin[32];
	char *identity; /* the runtime key and its certificate (PEM), NULL without volumes */
	size_t identity_len;
	char **env; /* "NAME=VALUE" taken out of the exec'd environment */
	size_t env_count;
	struct scone_handover_volume *volumes;
	size_t volume_count;
	int share_fd; /* the volumes' shared state (memfd), -1: none */
	bool shared;  /* another process still uses the volumes */
	int conn_fd;  /* a connection to the process serving the volumes (vserver.c), -1: none */
	int mail[2];  /* the windows' mailbox (shield_map.c): passed with the key, not encoded; -1: none */
	struct scone_handover_fd *fds;
	size_t fd_count;
	char *cwd; /* a working directory inside a volume, or NULL */
};

void scone_handover_init(struct scone_handover *h);
/*
 * Encode h into out (a secret wbuf: it holds keys). What the decoder would
 * refuse is refused here already (INVALID or LIMIT, naming the field), so a
 * bad handover fails the exec in the caller, not the start of the child.
 */
SCONE_MUST_CHECK enum scone_err scone_handover_encode(const struct scone_handover *h, struct scone_wbuf *out);
/* Decode untrusted bytes; on success the caller frees *out. */
SCONE_MUST_CHECK enum scone_err scone_handover_decode(const uint8_t *data, size_t len,
						      struct scone_handover *out);
/* Wipe and free everything h owns (the decoder's output; share_fd is not closed). */
void scone_handover_free(struct scone_handover *h);

#endif
