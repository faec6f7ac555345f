/*
 * fuzz_common.h - constants shared by the fuzz targets and the seed corpus
 * generator (fuzz/gen_corpus.c): the fixed fspf key and the layout of a
 * fuzz_chunk input (a list of operations on the host files of a volume).
 */
#ifndef SCONE_FUZZ_COMMON_H
#define SCONE_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Abort (a finding for libFuzzer) when an invariant does not hold. */
#define CHECK(cond)                                                                                          \
	do {                                                                                                 \
		if (!(cond)) {                                                                               \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);             \
			abort();                                                                             \
		}                                                                                            \
	} while (0)

/* The fixed volume / fspf key: byte i is 0xA5 ^ (i * 7). */
static inline void fuzz_fixed_key(uint8_t key[32])
{
	for (unsigned i = 0; i < 32; i++)
		key[i] = (uint8_t)(0xA5 ^ (i * 7));
}

/*
 * fuzz_chunk volume input:
 *   byte 0     flags: FZ_F_RDWR opens the volume read-write,
 *              FZ_F_PIECES reads files in odd-sized pieces, FZ_F_WRITE
 *              (read-write) when every file verified: edit files, commit,
 *              reopen with the new tag and verify again (must succeed)
 *   then up to FZ_MAX_OPS operations, each an op byte (low 3 bits the
 *   kind, FZ_OP_FROM_OLD to take source bytes from the previous commit's
 *   snapshot) followed by its fields (LE integers):
 *   OVERWRITE  file:1 block:2 off:2 n:1 bytes:n (n = 0: rest of input, <= FZ_MAX_WRITE)
 *   COPY       sfile:1 sblock:2 dfile:1 dblock:2      (one 4096-byte block)
 *   TRUNCATE   file:1 block:2 off:2
 *   UNLINK     file:1
 *   CREATE     dir:1 name:16 sfile:1                  (new file = copy of sfile)
 *   REPLACE    dfile:1 sfile:1                        (whole file)
 * Files: FZ_FILE_*, taken modulo FZ_FILES. Blocks are taken modulo the
 * file's block count + 2, offsets modulo 4096.
 */
enum {
	FZ_F_RDWR = 0x1,
	FZ_F_PIECES = 0x2,
	FZ_F_WRITE = 0x4,
};

enum {
	FZ_OP_OVERWRITE = 0,
	FZ_OP_COPY = 1,
	FZ_OP_TRUNCATE = 2,
	FZ_OP_UNLINK = 3,
	FZ_OP_CREATE = 4,
	FZ_OP_REPLACE = 5,
	FZ_OP_KINDS = 6,
	FZ_OP_FROM_OLD = 0x8,
};

enum {
	FZ_FILE_FSPF = 0,
	FZ_FILE_SMALL = 1, /* /enc/small: 3 chunks, encrypted region */
	FZ_FILE_BIG = 2,   /* /enc/big: 71 chunks (two tree levels), with a hole */
	FZ_FILE_AUTH = 3,  /* /auth/log: 5 chunks, authenticated region */
	FZ_FILE_EMPTY = 4, /* /enc/dir/empty: no tree */
	FZ_FILES = 5,
};

#define FZ_MAX_OPS 16
#define FZ_MAX_WRITE 8192

#endif
