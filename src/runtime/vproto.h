/*
 * vproto.h - the requests a process sends to the process that serves its
 * program's volumes (vserver.c), and the answers. Once a program forks,
 * one process holds the volumes and the others send it every volume
 * operation over a unix socket; this is the frame on that socket.
 *
 * A frame is a little-endian u32 payload length, then the payload: op,
 * mount index, flags, an error code (answers), three 64-bit arguments or
 * results, up to two paths, a short error detail (answers), an optional
 * file status and up to VP_MAX_DATA bytes of data. The decoder treats the
 * bytes as untrusted: every length is checked against what is left and
 * against its limit (fuzz/fuzz_vproto.c).
 */
#ifndef SCONE_RUNTIME_VPROTO_H
#define SCONE_RUNTIME_VPROTO_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "volume/volume.h"

enum vp_op {
	VP_HELLO = 1, /* a: protocol version; data: the program's token (joining after a takeover) */
	VP_STAT,      /* p1 -> st */
	VP_OPEN,      /* p1, a: SCONE_VF_* flags, b: mode, h: 0 or VP_OPEN_CHECK | open(2) flags -> h, st */
	VP_CLOSE,     /* h, a: VP_CLOSE_NO_ANSWER or 0 */
	VP_PREAD,     /* h, a: offset, b: length -> data */
	VP_PWRITE,    /* h, a: offset, data */
	VP_APPEND,    /* h, data -> a: offset written */
	VP_FTRUNCATE, /* h, a: size */
	VP_FSTAT,     /* h -> st */
	VP_MKDIR,     /* p1, a: mode */
	VP_REMOVE,    /* p1, a: 1 for a directory */
	VP_RENAME,    /* p1 -> p2 */
	VP_TRUNCATE,  /* p1, a: size */
	VP_CHMOD,     /* p1, a: mode */
	VP_MTIME,     /* p1, a: ns (two's complement) */
	VP_READDIR,   /* p1 -> data: entries (vp_put_entry) */
	VP_SYNC,      /* commit the mount */
	VP_ADD_CONN,  /* a new connection, for a forked or exec'd process, travels with it (SCM_RIGHTS) */
	VP_WINDOW,    /* h, a: VP_WINDOW_MAKE or 0 -> the file's window, its memfd passed (shield_map.c) */
	VP_OP_END_,
};

#define VP_VERSION 4 /* 2: VP_OPEN with VP_OPEN_CHECK, VP_CLOSE_NO_ANSWER; 3: VP_OPEN_FID; 4: VP_WINDOW */
/* VP_OPEN: look the path up first and open only what open(2) would (h 0 with st otherwise). */
#define VP_OPEN_CHECK (1ULL << 32)
/*
 * VP_OPEN: for reading, the file whose id is data (16 bytes), wherever it is
 * now or kept for a pin (vcache.h); p1 is the path it had, for messages.
 */
#define VP_OPEN_FID (1ULL << 33)
/* VP_WINDOW: made if the file has none (a shared writable mapping); else NOT_FOUND then. */
#define VP_WINDOW_MAKE 1
/* VP_CLOSE: the client does not wait for an answer (and none is sent). */
#define VP_CLOSE_NO_ANSWER 1
#define VP_MAX_DATA (1u << 20)
#define VP_MAX_PATH 4096
#define VP_DETAIL_MAX 240
#define VP_MAX_FRAME (VP_MAX_DATA + 2 * VP_MAX_PATH + VP_DETAIL_MAX + 256)

struct vp_msg {
	uint8_t op;
	uint8_t mount;
	int32_t err; /* answers: enum scone_err */
	uint64_t h, a, b;
	char p1[VP_MAX_PATH], p2[VP_MAX_PATH]; /* "" when absent */
	char detail[VP_DETAIL_MAX];	       /* answers with an error */
	bool has_st;
	struct scone_vstat st;
	const uint8_t *data; /* a view: into the frame decoded, or the caller's buffer to encode */
	size_t data_size;
};

/* The whole frame of m (length included) into out. INVALID/TOO_LARGE on a field over its limit. */
SCONE_MUST_CHECK enum scone_err vp_encode(const struct vp_msg *m, struct scone_wbuf *out);
/* A payload (without its length) into m; data points into payload. MALFORMED naming the field. */
SCONE_MUST_CHECK enum scone_err vp_decode(const uint8_t *payload, size_t size, struct vp_msg *m);

/* Directory listings: one entry (name and status) appended to out; read back one at a time. */
SCONE_MUST_CHECK enum scone_err vp_put_entry(struct scone_wbuf *out, const char *name,
					     const struct scone_vstat *st);
SCONE_MUST_CHECK enum scone_err vp_get_entry(struct scone_rbuf *in, char name[NAME_MAX + 1],
					     struct scone_vstat *st);

/*
 * Send a frame on fd (all of it; EINTR retried; no SIGPIPE) and receive
 * one: its payload into buf (at least VP_MAX_FRAME bytes), decoded into m.
 * A closed peer is SCONE_ERR_NETWORK ("closed").
 */
SCONE_MUST_CHECK enum scone_err vp_send(int fd, const struct scone_wbuf *frame, int pass_fd);
SCONE_MUST_CHECK enum scone_err vp_recv(int fd, uint8_t *buf, struct vp_msg *m, int *passed_fd);
/*
 * An answer: as vp_recv, in as few reads as it comes (a client has one
 * request out at a time, so nothing follows it; more is MALFORMED). An fd
 * passed with it goes to *passed_fd (-1: none); without passed_fd it is
 * closed by the kernel.
 */
SCONE_MUST_CHECK enum scone_err vp_recv_answer(int fd, uint8_t *buf, struct vp_msg *m, int *passed_fd);

#endif
