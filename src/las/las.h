/*
 * las.h - scone-las, the Local Attestation Service: one per host, on a
 * unix socket only. It identifies each caller through the kernel (never
 * through anything the caller says about itself), measures the code the
 * caller has mapped, and signs a report with the host's key.
 *
 *   main.c      options, the state directory, signals
 *   identity.c  the host key (Ed25519, DIR/las.key, 0600) and signing
 *   peer.c      who is calling: pidfd, /proc/PID, the request's writer,
 *               tracing, the exec binding, cgroup
 *   peer_cred.c the same on kernels without SO_PEERPIDFD (SO_PEERCRED,
 *               pidfd_open and a check that the process holds the socket)
 *   cache.c     file hashes by (device, inode, size, ctime, mtime)
 *   report.c    measurement through the cache, the signed report
 *   serve.c     workers: epoll loops, the protocol (src/attest/las_proto.h)
 *
 * Design note with the invariants: docs/attestation.md.
 */
#ifndef SCONE_LAS_H
#define SCONE_LAS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <openssl/evp.h>

#include "attest/las_proto.h"
#include "lib/buf.h"
#include "lib/err.h"

#define LAS_DEFAULT_LISTEN "unix:/run/scone/las.sock"
#define LAS_DEFAULT_STATE_DIR "/var/lib/scone-las"
#define LAS_MAX_WORKERS 64
#define LAS_REQUEST_TIMEOUT_MS 5000 /* a connection must complete its request within this */

/* ---- identity.c ---- */

struct las_identity {
	EVP_PKEY *key;                       /* Ed25519 */
	uint8_t pub[SCONE_LAS_KEY_SIZE];     /* raw public key */
	uint8_t platform_id[32];             /* SHA-256(pub): what sessions list in platforms */
};

/*
 * DIR/las.key (64 hex digits of the Ed25519 seed, mode 0600; refused when
 * others may read it), created with DIR (0700) at first start. The same
 * file gives the same identity after every restart.
 */
SCONE_MUST_CHECK enum scone_err las_identity_open(const char *state_dir, struct las_identity *out);
void las_identity_close(struct las_identity *id);
SCONE_MUST_CHECK enum scone_err las_identity_sign(const struct las_identity *id, const uint8_t *msg, size_t size,
						  uint8_t sig[SCONE_LAS_SIG_SIZE]);

/* ---- cache.c ---- */

/* What identifies a file's content to the cache: any write changes ctime. */
struct las_file_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec ctime, mtime;
};

void las_file_id_of(const struct stat *st, struct las_file_id *out);
struct las_cache;
/* A cache of capacity entries (thread-safe); NULL when out of memory. */
struct las_cache *las_cache_new(size_t capacity);
void las_cache_free(struct las_cache *c);
bool las_cache_get(struct las_cache *c, const struct las_file_id *id, uint8_t out[32]);
void las_cache_put(struct las_cache *c, const struct las_file_id *id, const uint8_t hash[32]);
void las_cache_counts(struct las_cache *c, uint64_t *hits, uint64_t *misses);

/* ---- peer.c, peer_cred.c ---- */

enum las_peer_mode {
	LAS_PEER_AUTO = 0, /* SO_PEERPIDFD where the kernel has it, else the SO_PEERCRED way */
	LAS_PEER_PIDFD,
	LAS_PEER_CRED,
};

/* A caller, as the kernel names it. */
struct las_peer {
	int sock;     /* the accepted connection (not owned) */
	int pidfd;    /* the connecting process; -1 until identified */
	int proc_fd;  /* its /proc/PID directory; -1 until opened */
	pid_t pid;    /* in the LAS's pid namespace */
	uid_t uid;    /* credentials at connect() */
	gid_t gid;
	bool by_cred; /* identified the SO_PEERCRED way (older kernels) */
};

/* Identify the process that connected sock (at accept). */
SCONE_MUST_CHECK enum scone_err las_peer_identify(int sock, enum las_peer_mode mode, struct las_peer *out);
/* The pid behind the pidfd, its /proc/PID, and that it is still the same process. */
SCONE_MUST_CHECK enum scone_err las_peer_open_proc(struct las_peer *p);
/* Every byte of the request was written by the connecting process (writer: SCM_CREDENTIALS pid). */
SCONE_MUST_CHECK enum scone_err las_peer_check_writer(const struct las_peer *p, pid_t writer);
/* The caller is alive (it has not exited, so its pid and /proc/PID are still its own). */
SCONE_MUST_CHECK enum scone_err las_peer_alive(const struct las_peer *p);
/* No tracer is attached (TracerPid 0). */
SCONE_MUST_CHECK enum scone_err las_peer_check_untraced(const struct las_peer *p);
/* The image running now is the one that asked: its AT_RANDOM bytes hash to binding. */
SCONE_MUST_CHECK enum scone_err las_peer_check_exec(const struct las_peer *p, const uint8_t binding[32]);
/* The cgroup path ("0::" line) and executable path, printable, at most SCONE_LAS_TEXT_MAX bytes. */
void las_peer_cgroup(const struct las_peer *p, char out[SCONE_LAS_TEXT_MAX + 1]);
void las_peer_exe(const struct las_peer *p, char out[SCONE_LAS_TEXT_MAX + 1]);
void las_peer_close(struct las_peer *p);
/* peer_cred.c: the older kernels' way; p->pid, uid, gid from SO_PEERCRED, pidfd from pidfd_open. */
SCONE_MUST_CHECK enum scone_err las_peer_identify_cred(int sock, struct las_peer *p);
/* The process behind p->proc_fd holds the other end of p->sock (it is the connecting one, not a pid reuse). */
SCONE_MUST_CHECK enum scone_err las_peer_holds_socket(const struct las_peer *p);
/* Copy printable text, replacing other bytes by '?'; longer text keeps its tail after "...". */
void las_printable(const char *in, size_t len, char out[SCONE_LAS_TEXT_MAX + 1]);

/* ---- report.c ---- */

struct las_ctx {
	const struct las_identity *id;
	struct las_cache *cache;
};

/*
 * The whole check and report for a caller whose request arrived: the
 * caller alive and untraced, the image the one that asked, its code
 * measured; the signed report appended to out. Errors name the factor.
 */
SCONE_MUST_CHECK enum scone_err las_report(struct las_ctx *ctx, struct las_peer *p, const struct scone_las_request *req,
					   struct scone_wbuf *out);

/* ---- serve.c ---- */

struct las_server_opts {
	const char *socket_path;
	int workers; /* 0 = online CPUs */
	enum las_peer_mode peer_mode;
};

struct las_server;
/* Bind (mode 0666), listen and start the workers. */
SCONE_MUST_CHECK enum scone_err las_server_start(const struct las_server_opts *o, struct las_ctx *ctx,
						 struct las_server **out);
/* Wait until las_server_stop (async-signal-safe) was called, then join and free. */
void las_server_wait(struct las_server *s);
void las_server_stop(struct las_server *s);

#endif
