/*
 * measure.h - the LAS measurement of a process (docs/attestation.md,
 * "Measurement"): which of its mappings count as code, how each code file
 * is hashed, and how the hashes combine into one value.
 *
 *   code files  every file mapped executable in /proc/PID/maps (the
 *               executable, the loader, every shared library, preloaded
 *               ones included), each once (by device and inode);
 *               [vdso], [vsyscall] and [uprobes] are the kernel's and not
 *               counted; executable mappings without a file (JIT code)
 *               are counted (anon_exec) but cannot be measured
 *   file hash   SHA-256 of the whole file, read through the process's own
 *               mapping (/proc/PID/map_files/START-END), never by path
 *   exe hash    the same for /proc/PID/exe
 *   measurement SHA-256("scone-las measurement v1" || exe hash ||
 *               u32 LE count || the distinct file hashes in ascending
 *               byte order)
 *
 * Sorting makes the value independent of load order and addresses; the
 * executable's hash stands apart so that the same set of files run as
 * another program measures differently.
 *
 * One traversal serves both sides: the LAS measures a caller through
 * /proc/PID with a hashing hook that caches (src/las/), the runtime
 * measures itself through /proc/self for `scone measure`
 * (scone_measure_self). Links only libc and libcrypto.
 */
#ifndef SCONE_ATTEST_MEASURE_H
#define SCONE_ATTEST_MEASURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/buf.h"
#include "lib/err.h"

#define SCONE_MEASURE_MAX_FILES 1024
#define SCONE_MEASURE_MAPS_MAX (16u * 1024 * 1024) /* bytes of /proc/PID/maps read */

/* One line of /proc/PID/maps; path points into the text read (not NUL-terminated). */
struct scone_map_line {
	uint64_t start, end;
	bool exec;
	unsigned dev_major, dev_minor;
	uint64_t inode;
	const char *path;
	size_t path_len;
};

/*
 * The next line of maps text in r (kernel-made, still parsed as untrusted):
 * OK with *out filled, NOT_FOUND at the end, MALFORMED naming the line.
 */
SCONE_MUST_CHECK enum scone_err scone_maps_next(struct scone_rbuf *r, struct scone_map_line *out);

/* The measurement of an executable's hash and the code files' hashes (sorted and deduplicated in place). */
void scone_measurement_combine(const uint8_t exe_hash[32], uint8_t (*files)[32], size_t n, uint8_t out[32]);

/* SHA-256 of everything readable from fd (from its current offset); *size gets the byte count (may be NULL). */
SCONE_MUST_CHECK enum scone_err scone_measure_fd(int fd, uint8_t out[32], uint64_t *size);

/*
 * How a traversal gets a code file's hash: name is "exe" or
 * "map_files/START-END" under proc_fd (a /proc/PID directory); m is the
 * maps line (NULL for "exe").
 */
struct scone_measure_io {
	enum scone_err (*file_hash)(void *ctx, int proc_fd, const char *name, const struct scone_map_line *m,
				    uint8_t out[32]);
	/* Called once per distinct code file and for the executable (role "exe" or "file"); may be NULL. */
	void (*on_file)(void *ctx, const char *role, const char *path, size_t path_len, const uint8_t hash[32]);
	void *ctx;
	uint64_t addr; /* if non-zero: report the hash of the code file mapped at this address */
};

struct scone_measure_result {
	uint8_t measurement[32];
	uint8_t exe_hash[32];
	uint8_t addr_hash[32]; /* zero unless addr_found */
	bool addr_found;
	uint32_t files;     /* distinct code files */
	uint32_t anon_exec; /* executable mappings without a file */
};

/* Measure the process whose /proc/PID directory is proc_fd. */
SCONE_MUST_CHECK enum scone_err scone_measure_process(int proc_fd, const struct scone_measure_io *io,
						      struct scone_measure_result *out);

/*
 * The calling process's own measurement, as the LAS would report it now:
 * files through /proc/self/map_files where permitted, else by the path in
 * maps checked against its device and inode. on_file/ctx as above (may be
 * NULL).
 */
SCONE_MUST_CHECK enum scone_err scone_measure_self(void (*on_file)(void *ctx, const char *role, const char *path,
								    size_t path_len, const uint8_t hash[32]),
						   void *ctx, struct scone_measure_result *out);

#endif
