/*
 * test_lib.c - unit tests for src/lib: errors, logging, bounded buffers, hex,
 * key files and the OpenSSL wrappers.
 *
 * Negative tests are first-class: every reader is truncated at every length
 * (on exact-size heap buffers, so ASan sees any over-read), every tag and
 * nonce bit is flipped, every buffer is overfilled. Crypto is checked against
 * published vectors: FIPS 180-2 (SHA-256), RFC 4231 (HMAC), RFC 5869 (HKDF),
 * GCM spec test cases 14 and 16 (AES-256-GCM), RFC 7253 appendix A (OCB).
 */
#include "helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/crypto.h"
#include "lib/err.h"
#include "lib/base64.h"
#include "lib/hex.h"
#include "lib/keyfile.h"
#include "lib/log.h"

#define TEST(name) static void name(void **state __attribute__((unused)))
#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define FLIP(buf, bit) ((buf)[(bit) / 8] ^= (uint8_t)(1u << (bit) % 8))
#define assert_err(expr, code, detail)                                                                       \
	do {                                                                                                 \
		assert_int_equal((expr), (code));                                                            \
		assert_non_null(strstr(scone_err_detail(), (detail)));                                       \
	} while (0)

/* src/lib binds to this OPENSSL_cleanse: it notes when the watched block is
 * wiped (and still wipes), so tests can see secrets being erased. */
static const void *wipe_watch;
static size_t wipe_len;

void OPENSSL_cleanse(void *ptr, size_t len)
{
	if (ptr && ptr == wipe_watch)
		wipe_len = len;
	explicit_bzero(ptr, len);
}

static void watch(const void *p)
{
	wipe_watch = p;
	wipe_len = 0;
}

static void unhex(uint8_t *out, size_t size, const char *hex)
{
	assert_ok(scone_hex_decode(out, size, hex, "vector"));
}

static int all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/* ---- err ---------------------------------------------------------------- */

TEST(test_err_names)
{
#define PAIR(name, kind, errno_value, text) {#name, text},
	static const char *const want[][2] = {SCONE_ERRORS(PAIR)};
#undef PAIR
	static const int bad[] = {SCONE_ERR_COUNT_, SCONE_ERR_COUNT_ + 1, 1000, -1};

	assert_int_equal(N_ELEMS(want), SCONE_ERR_COUNT_);
	for (int e = 0; e < SCONE_ERR_COUNT_; e++) {
		assert_string_equal(scone_errname((enum scone_err)e), want[e][0]);
		assert_string_equal(scone_strerror((enum scone_err)e), want[e][1]);
		for (int f = 0; f < e; f++)
			assert_string_not_equal(want[e][0], want[f][0]);
	}
	assert_string_equal(scone_errname(SCONE_ERR_TAMPERED), "TAMPERED");
	for (size_t i = 0; i < N_ELEMS(bad); i++) {
		assert_string_equal(scone_errname((enum scone_err)bad[i]), "UNKNOWN");
		assert_string_equal(scone_strerror((enum scone_err)bad[i]), "unknown error");
		assert_int_equal(scone_err_to_errno((enum scone_err)bad[i]), EIO);
	}
}

/*
 * The numbers are part of the wire (volume server answers, exit codes a
 * caller may keep): written out here, so that an error inserted in the
 * middle of the list, instead of appended, fails this test.
 */
TEST(test_err_numbers_pinned)
{
	static const struct {
		int number;
		const char *name;
	} pinned[] = {
	    {0, "OK"},
	    {1, "NOMEM"},
	    {2, "INVALID"},
	    {3, "IO"},
	    {4, "CRYPTO"},
	    {5, "TOO_LARGE"},
	    {6, "MALFORMED"},
	    {7, "NOT_FOUND"},
	    {8, "EXISTS"},
	    {9, "AUTH"},
	    {10, "TAMPERED"},
	    {11, "MISPLACED"},
	    {12, "TRUNCATED"},
	    {13, "EXTENDED"},
	    {14, "MISSING"},
	    {15, "SWAPPED"},
	    {16, "UNKNOWN_FILE"},
	    {17, "ROLLBACK"},
	    {18, "NOT_DIR"},
	    {19, "IS_DIR"},
	    {20, "NOT_EMPTY"},
	    {21, "NO_REGION"},
	    {22, "READ_ONLY"},
	    {23, "UNSUPPORTED"},
	    {24, "BAD_FD"},
	    {25, "NO_SPACE"},
	    {26, "PERMISSION"},
	    {27, "UNSEALED"},
	    {28, "BUSY"},
	    {29, "CROSS_REGION"},
	    {30, "NAME_TOO_LONG"},
	    {31, "CONFLICT"},
	    {32, "NETWORK"},
	    {33, "UNTRUSTED"},
	    {34, "CORRUPT"},
	    {35, "LIMIT"},
	    {36, "POLICY"},
	    {37, "EXPIRED"},
	    {38, "STALE"},
	    {39, "ATTESTATION"},
	};

	assert_int_equal(N_ELEMS(pinned), SCONE_ERR_COUNT_);
	for (size_t i = 0; i < N_ELEMS(pinned); i++)
		assert_string_equal(scone_errname((enum scone_err)pinned[i].number), pinned[i].name);
}

/* Every error has a kind; CAS's status and the runtime's errno follow the list. */
TEST(test_err_kinds)
{
	assert_int_equal(scone_err_kind(SCONE_ERR_OK), SCONE_KIND_NONE);
	for (int e = 1; e < SCONE_ERR_COUNT_; e++)
		assert_int_not_equal(scone_err_kind((enum scone_err)e), SCONE_KIND_NONE);
	assert_int_equal(scone_err_kind(SCONE_ERR_TAMPERED), SCONE_KIND_INTEGRITY);
	assert_int_equal(scone_err_kind(SCONE_ERR_ROLLBACK), SCONE_KIND_INTEGRITY);
	assert_int_equal(scone_err_kind(SCONE_ERR_POLICY), SCONE_KIND_INPUT);
	assert_int_equal(scone_err_kind(SCONE_ERR_ATTESTATION), SCONE_KIND_DENIED);
	assert_int_equal(scone_err_kind(SCONE_ERR_LIMIT), SCONE_KIND_RESOURCE);
	assert_int_equal(scone_err_kind((enum scone_err)SCONE_ERR_COUNT_), SCONE_KIND_FAILURE);
	assert_int_equal(scone_err_to_errno(SCONE_ERR_NOT_DIR), ENOTDIR);
	assert_int_equal(scone_err_to_errno(SCONE_ERR_READ_ONLY), EROFS);
	assert_int_equal(scone_err_to_errno(SCONE_ERR_TAMPERED), EIO);
	assert_int_equal(scone_err_to_errno(SCONE_ERR_OK), 0);
}

static void *other_thread(void *arg)
{
	return (void *)(uintptr_t)scone_err_set(SCONE_ERR_IO, "%s", (const char *)arg);
}

TEST(test_err_detail)
{
	char big[2000];
	pthread_t t;

	scone_err_clear();
	assert_string_equal(scone_err_detail(), "");
	assert_int_equal(
	    scone_err_set(SCONE_ERR_TAMPERED, "%s: chunk %d at byte %zu", "a.db", 7, (size_t)4096),
	    SCONE_ERR_TAMPERED);
	assert_string_equal(scone_err_detail(), "a.db: chunk 7 at byte 4096");
	/* Detail is per thread. */
	assert_int_equal(pthread_create(&t, NULL, other_thread, "elsewhere"), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_string_equal(scone_err_detail(), "a.db: chunk 7 at byte 4096");
	/* A long detail is cut to the 512-byte buffer, NUL-terminated. */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	(void)scone_err_set(SCONE_ERR_IO, "start %s", big);
	assert_int_equal(strlen(scone_err_detail()), 511);
	assert_memory_equal(scone_err_detail(), "start xxx", 9);
	/* A detail built from the current one (a caller adding where it happened). */
	(void)scone_err_set(SCONE_ERR_IO, "chunk %d", 7);
	(void)scone_err_set(SCONE_ERR_IO, "volume %s: %s", "data", scone_err_detail());
	assert_string_equal(scone_err_detail(), "volume data: chunk 7");
	scone_err_clear();
	assert_string_equal(scone_err_detail(), "");
}

TEST(test_err_errno)
{
	/* clang-format off */
	static const struct {
		int errnum;
		enum scone_err e;
	} both[] = {
		{ 0, SCONE_ERR_OK },                { ENOMEM, SCONE_ERR_NOMEM },        { EINVAL, SCONE_ERR_INVALID },
		{ ENOENT, SCONE_ERR_NOT_FOUND },    { EEXIST, SCONE_ERR_EXISTS },       { ENOTDIR, SCONE_ERR_NOT_DIR },
		{ EISDIR, SCONE_ERR_IS_DIR },       { ENOTEMPTY, SCONE_ERR_NOT_EMPTY }, { ENOSPC, SCONE_ERR_NO_SPACE },
		{ EACCES, SCONE_ERR_PERMISSION },   { EROFS, SCONE_ERR_READ_ONLY },     { EBADF, SCONE_ERR_BAD_FD },
		{ EBUSY, SCONE_ERR_BUSY },          { EFBIG, SCONE_ERR_TOO_LARGE },     { ENOTSUP, SCONE_ERR_UNSUPPORTED },
		{ EIO, SCONE_ERR_IO },
	};
	/* clang-format on */

	for (size_t i = 0; i < N_ELEMS(both); i++) {
		assert_int_equal(scone_err_from_errno(both[i].errnum), both[i].e);
		assert_int_equal(scone_err_to_errno(both[i].e), both[i].errnum);
	}
	/* Many-to-one and unknown values. */
	assert_int_equal(scone_err_from_errno(EDQUOT), SCONE_ERR_NO_SPACE);
	assert_int_equal(scone_err_from_errno(EPERM), SCONE_ERR_PERMISSION);
	assert_int_equal(scone_err_from_errno(EOPNOTSUPP), SCONE_ERR_UNSUPPORTED);
	assert_int_equal(scone_err_from_errno(EAGAIN), SCONE_ERR_IO);
	assert_int_equal(scone_err_from_errno(-1), SCONE_ERR_IO);
	assert_int_equal(scone_err_to_errno(SCONE_ERR_MALFORMED), EINVAL);
	assert_int_equal(scone_err_to_errno(SCONE_ERR_NO_REGION), ENOENT);
	assert_int_equal(scone_err_to_errno(SCONE_ERR_AUTH), EIO);
	/* Every error gives a real errno, and that errno maps back to itself. */
	for (int e = 1; e < SCONE_ERR_COUNT_; e++) {
		int x = scone_err_to_errno((enum scone_err)e);
		assert_int_not_equal(x, 0);
		assert_int_equal(scone_err_to_errno(scone_err_from_errno(x)), x);
	}
}

/* ---- log ---------------------------------------------------------------- */

/* Log msg with stderr redirected to a temporary file; return what was written. */
static size_t capture_log(char *out, size_t out_size, enum scone_log_level level, const char *msg)
{
	FILE *f = tmpfile();
	int saved = dup(STDERR_FILENO);
	ssize_t n;

	assert_true(f && saved >= 0 && dup2(fileno(f), STDERR_FILENO) >= 0);
	scone_log(level, "%s", msg);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	n = pread(fileno(f), out, out_size - 1, 0);
	fclose(f);
	assert_true(n >= 0);
	out[n] = '\0';
	return (size_t)n;
}

TEST(test_log)
{
	static char line[4096], msg[2000];
	size_t n;

	setenv("SCONE_LOG", "bogus", 1); /* ignored: the level stays as set */
	scone_log_set_level(SCONE_LOG_WARN);
	scone_log_init("t");
	assert_true(scone_log_enabled(SCONE_LOG_WARN) && !scone_log_enabled(SCONE_LOG_INFO));
	assert_int_equal(capture_log(line, sizeof(line), SCONE_LOG_INFO, "hidden"), 0);
	capture_log(line, sizeof(line), SCONE_LOG_WARN, "disk 90% full");
	assert_string_equal(line, "t: warn: disk 90% full\n");

	setenv("SCONE_LOG", "debug", 1);
	setenv("SCONE_LOG_FORMAT", "json", 1);
	scone_log_init("t");
	capture_log(line, sizeof(line), SCONE_LOG_DEBUG, "a\"b\\c\nd");
	assert_non_null(
	    strstr(line, "\"level\":\"debug\",\"component\":\"t\",\"msg\":\"a\\\"b\\\\c\\u000ad\"}\n"));
	/* Escaping that overflows stops on an escape boundary; the line stays whole. */
	memset(msg, '\x01', sizeof(msg) - 1);
	n = capture_log(line, sizeof(line), SCONE_LOG_ERROR, msg);
	assert_true(n > 9);
	assert_string_equal(line + n - 9, "\\u0001\"}\n");

	unsetenv("SCONE_LOG");
	unsetenv("SCONE_LOG_FORMAT");
	scone_log_init("t");
	scone_log_set_level(SCONE_LOG_WARN);
}

/* ---- buf ---------------------------------------------------------------- */

TEST(test_buf_roundtrip)
{
	static const uint8_t le[] = {0xab, 2, 1, 4, 3, 2, 1, 8, 7, 6, 5, 4, 3, 2, 1, 'h', 'i', '!'};
	struct scone_wbuf w;
	struct scone_rbuf r;
	uint8_t u8, b[2];
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;
	const uint8_t *v;

	scone_wbuf_init(&w, 64, 0);
	assert_ok(scone_wbuf_u8(&w, 0xab));
	assert_ok(scone_wbuf_u16(&w, 0x0102));
	assert_ok(scone_wbuf_u32(&w, 0x01020304));
	assert_ok(scone_wbuf_u64(&w, 0x0102030405060708ull));
	assert_ok(scone_wbuf_put(&w, "hi!", 3));
	assert_ok(scone_wbuf_put(&w, NULL, 0));
	assert_int_equal(w.size, sizeof(le));
	assert_memory_equal(w.data, le, sizeof(le)); /* little-endian layout */

	scone_rbuf_init(&r, w.data, w.size, "rec");
	assert_ok(scone_rbuf_u8(&r, "a", &u8));
	assert_ok(scone_rbuf_u16(&r, "b", &u16));
	assert_ok(scone_rbuf_u32(&r, "c", &u32));
	assert_ok(scone_rbuf_u64(&r, "d", &u64));
	assert_ok(scone_rbuf_bytes(&r, "e", b, 2));
	assert_ok(scone_rbuf_view(&r, "f", &v, 1));
	assert_true(u8 == 0xab && u16 == 0x0102 && u32 == 0x01020304 && u64 == 0x0102030405060708ull);
	assert_memory_equal(b, "hi", 2);
	assert_ptr_equal(v, w.data + sizeof(le) - 1); /* a view borrows, no copy */
	assert_int_equal(scone_rbuf_left(&r), 0);
	assert_ok(scone_rbuf_view(&r, "g", &v, 0));
	scone_wbuf_free(&w);
}

/* Run reader k (u8, u16, u32, u64, bytes(5), view(5)); out is written only by u8 and bytes. */
static enum scone_err read_kind(struct scone_rbuf *r, int k, const char *field, uint8_t *out)
{
	const uint8_t *v;
	uint16_t u16;
	uint32_t u32;
	uint64_t u64;

	switch (k) {
	case 0:
		return scone_rbuf_u8(r, field, out);
	case 1:
		return scone_rbuf_u16(r, field, &u16);
	case 2:
		return scone_rbuf_u32(r, field, &u32);
	case 3:
		return scone_rbuf_u64(r, field, &u64);
	case 4:
		return scone_rbuf_bytes(r, field, out, 5);
	default:
		return scone_rbuf_view(r, field, &v, 5);
	}
}

TEST(test_rbuf_truncated)
{
	static const size_t width[] = {1, 2, 4, 8, 5, 5};
	static const char *const field[] = {"f_u8", "f_u16", "f_u32", "f_u64", "f_bytes", "f_view"};
	uint8_t out[8];
	struct scone_rbuf r;
	uint16_t magic;

	for (int k = 0; k < 6; k++) {
		for (size_t cut = 0; cut < width[k]; cut++) {
			uint8_t *p = malloc(2 + cut); /* exact size: an over-read trips ASan */
			assert_non_null(p);
			memset(p, 0x5a, 2 + cut);
			scone_rbuf_init(&r, p, 2 + cut, "hdr");
			assert_ok(scone_rbuf_u16(&r, "magic", &magic));
			memset(out, 0xee, sizeof(out));
			scone_err_clear();
			assert_err(read_kind(&r, k, field[k], out), SCONE_ERR_MALFORMED,
				   "hdr: truncated at byte 2 ");
			assert_non_null(strstr(scone_err_detail(), field[k]));
			assert_int_equal(scone_rbuf_left(&r), cut); /* nothing consumed */
			assert_int_equal(out[0], 0xee);
			free(p);
		}
	}
	/* Empty input, the default name, and a size that would overflow pos + n. */
	scone_rbuf_init(&r, NULL, 0, NULL);
	assert_err(scone_rbuf_u8(&r, "first", out), SCONE_ERR_MALFORMED,
		   "input: truncated at byte 0 reading first");
	scone_rbuf_init(&r, "abc", 3, "x");
	assert_ok(scone_rbuf_u8(&r, "a", out));
	assert_err(scone_rbuf_bytes(&r, "huge", out, SIZE_MAX), SCONE_ERR_MALFORMED,
		   "x: truncated at byte 1");
	assert_int_equal(scone_rbuf_left(&r), 2);
}

TEST(test_wbuf_ceiling)
{
	struct scone_wbuf w;
	uint8_t chunk[600] = {0};

	scone_wbuf_init(&w, 1000, 0);
	for (size_t i = 0; i < 1000; i++) /* many growths, content preserved */
		assert_ok(scone_wbuf_u8(&w, (uint8_t)(i * 7)));
	for (size_t i = 0; i < 1000; i++)
		assert_int_equal(w.data[i], (uint8_t)(i * 7));
	/* Full: every writer fails and changes nothing. */
	assert_err(scone_wbuf_u8(&w, 1), SCONE_ERR_TOO_LARGE, "limit of 1000 bytes");
	assert_int_equal(scone_wbuf_u16(&w, 1), SCONE_ERR_TOO_LARGE);
	assert_int_equal(scone_wbuf_u32(&w, 1), SCONE_ERR_TOO_LARGE);
	assert_int_equal(scone_wbuf_u64(&w, 1), SCONE_ERR_TOO_LARGE);
	assert_int_equal(scone_wbuf_put(&w, chunk, SIZE_MAX), SCONE_ERR_TOO_LARGE);
	assert_true(w.size == 1000 && w.data[999] == (uint8_t)(999 * 7));
	assert_ok(scone_wbuf_put(&w, chunk, 0));
	scone_wbuf_free(&w);
	assert_true(w.data == NULL && w.size == 0);

	/* A put that straddles the limit is refused whole; not secret: no wipe. */
	scone_wbuf_init(&w, 1000, 0);
	assert_ok(scone_wbuf_put(&w, chunk, 600));
	assert_int_equal(scone_wbuf_put(&w, chunk, 401), SCONE_ERR_TOO_LARGE);
	assert_int_equal(w.size, 600);
	watch(w.data);
	assert_ok(scone_wbuf_put(&w, chunk, 400));
	scone_wbuf_free(&w);
	assert_int_equal(wipe_len, 0);
	scone_wbuf_init(&w, 0, 0);
	assert_int_equal(scone_wbuf_u8(&w, 1), SCONE_ERR_TOO_LARGE);
}

TEST(test_wbuf_secret)
{
	struct scone_wbuf w;
	uint8_t key[300];
	size_t old_cap;

	memset(key, 0x42, sizeof(key));
	scone_wbuf_init(&w, 4096, 1);
	assert_ok(scone_wbuf_put(&w, key, 200));
	watch(w.data); /* growth wipes the old block before freeing it ... */
	old_cap = w.cap;
	assert_ok(scone_wbuf_put(&w, key, sizeof(key)));
	assert_int_equal(wipe_len, old_cap);
	assert_true(w.size == 500 && w.data[499] == 0x42);
	watch(w.data); /* ... and free wipes the whole capacity */
	old_cap = w.cap;
	scone_wbuf_free(&w);
	assert_int_equal(wipe_len, old_cap);
	watch(NULL);
}

/* ---- hex ---------------------------------------------------------------- */

TEST(test_hex)
{
	uint8_t all[256], back[256], four[4];
	char text[513], small[5];

	for (int i = 0; i < 256; i++)
		all[i] = (uint8_t)i;
	scone_hex_encode(text, sizeof(text), all, sizeof(all));
	assert_int_equal(strlen(text), 512);
	assert_string_equal(text + 500, "fafbfcfdfeff");
	assert_ok(scone_hex_decode(back, sizeof(back), text, "all"));
	assert_memory_equal(back, all, sizeof(all));
	assert_ok(scone_hex_decode(four, 4, "DEADbeef", "k")); /* any case */
	assert_memory_equal(four, "\xde\xad\xbe\xef", 4);
	assert_ok(scone_hex_decode(four, 0, "", "k"));
	scone_hex_encode(small, sizeof(small), four, 4); /* short out: whole bytes only */
	assert_string_equal(small, "dead");
}

TEST(test_hex_bad)
{
	static const char *const wrong_len[] = {"", "abc", "abcdef0", "abcdef012", "abcdef0123"};
	static const char bad_chars[] = "gG x:-\xff/@`";
	uint8_t four[4];
	char in[9], want[64];

	for (size_t i = 0; i < N_ELEMS(wrong_len); i++) {
		snprintf(want, sizeof(want), "volume key: expected 8 hex digits, got %zu",
			 strlen(wrong_len[i]));
		assert_err(scone_hex_decode(four, 4, wrong_len[i], "volume key"), SCONE_ERR_INVALID, want);
	}
	for (size_t pos = 0; pos < 8; pos++) {
		for (size_t c = 0; bad_chars[c]; c++) {
			memcpy(in, "0123abcd", 9);
			in[pos] = bad_chars[c];
			snprintf(want, sizeof(want), "tag: invalid hex digit at position %zu", pos);
			assert_err(scone_hex_decode(four, 4, in, "tag"), SCONE_ERR_INVALID, want);
		}
	}
	/* A bad digit late in a key leaves none of its bytes behind. */
	assert_err(scone_hex_decode(four, 4, "deadbeeZ", "key"), SCONE_ERR_INVALID,
		   "key: invalid hex digit at position 7");
	assert_memory_equal(four, "\0\0\0\0", 4);
}

/* ---- key files ---------------------------------------------------------- */

static void write_text(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

TEST(test_keyfile)
{
	char dir[] = "/tmp/scone-keyfile-XXXXXX", path[128], tmp[140], link_path[128];
	uint8_t key[32], again[32], zero[32] = {0};
	struct stat st;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/master.key", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	snprintf(link_path, sizeof(link_path), "%s/link.key", dir);
	write_text(tmp, "a crash's leftover\n", 0600);
	assert_int_equal(scone_keyfile_create(path, key, "the master key"), SCONE_ERR_OK);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, 65);
	assert_int_equal(access(tmp, F_OK), -1); /* the leftover is gone, not the key */
	assert_int_equal(scone_keyfile_read(path, again, "the master key"), SCONE_ERR_OK);
	assert_memory_equal(key, again, 32);
	/* never over a key that is there: EXISTS, the file unchanged, the new key wiped */
	assert_err(scone_keyfile_create(path, again, "the master key"), SCONE_ERR_EXISTS,
		   "made meanwhile by another process");
	assert_memory_equal(again, zero, 32);
	assert_int_equal(scone_keyfile_read(path, again, "the master key"), SCONE_ERR_OK);
	assert_memory_equal(key, again, 32);
	/* refused: others may read it, a symlink, too short, not hex, junk after the digits */
	assert_int_equal(chmod(path, 0640), 0);
	assert_err(scone_keyfile_read(path, again, "the master key"), SCONE_ERR_PERMISSION,
		   "readable by others (mode 640); chmod 600 it");
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(symlink(path, link_path), 0);
	assert_int_not_equal(scone_keyfile_read(link_path, again, "the master key"), SCONE_ERR_OK);
	write_text(path, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde", 0600);
	assert_err(scone_keyfile_read(path, again, "the master key"), SCONE_ERR_MALFORMED,
		   "(the master key): expected 64 hex digits");
	write_text(path, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeZ\n", 0600);
	assert_err(scone_keyfile_read(path, again, "the master key"), SCONE_ERR_INVALID, "invalid hex digit");
	write_text(path, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0\n", 0600);
	assert_err(scone_keyfile_read(path, again, "the master key"), SCONE_ERR_MALFORMED,
		   "expected 64 hex digits");
	assert_int_equal(unlink(link_path), 0);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

/* ---- base64 ------------------------------------------------------------- */

TEST(test_base64_vectors)
{
	/* RFC 4648 section 10. */
	static const char *const v[][2] = {
	    {"", ""},
	    {"f", "Zg=="},
	    {"fo", "Zm8="},
	    {"foo", "Zm9v"},
	    {"foob", "Zm9vYg=="},
	    {"fooba", "Zm9vYmE="},
	    {"foobar", "Zm9vYmFy"},
	};
	char enc[16];
	uint8_t dec[16], all[256], back[256];
	char all_text[350];
	size_t n;

	for (size_t i = 0; i < N_ELEMS(v); i++) {
		size_t len = strlen(v[i][0]);
		assert_int_equal(scone_base64_encoded_len(len), strlen(v[i][1]));
		scone_base64_encode(enc, sizeof(enc), (const uint8_t *)v[i][0], len);
		assert_string_equal(enc, v[i][1]);
		assert_ok(scone_base64_decode(v[i][1], strlen(v[i][1]), dec, sizeof(dec), &n, 0, "v"));
		assert_int_equal(n, len);
		assert_memory_equal(dec, v[i][0], len);
	}
	for (int i = 0; i < 256; i++)
		all[i] = (uint8_t)(255 - i);
	scone_base64_encode(all_text, sizeof(all_text), all, sizeof(all));
	assert_ok(scone_base64_decode(all_text, strlen(all_text), back, sizeof(back), &n, 0, "all"));
	assert_int_equal(n, 256);
	assert_memory_equal(back, all, 256);
	/* PEM-style layout with the option. */
	assert_ok(scone_base64_decode("Zm9v\nYmFy\r\n", 11, dec, sizeof(dec), &n, SCONE_BASE64_SPACE, "pem"));
	assert_int_equal(n, 6);
	assert_memory_equal(dec, "foobar", 6);
}

TEST(test_base64_bad)
{
	static const char *const bad[][2] = {
	    {"Zg=", "v: not padded base64 (3 characters)"},  {"Zg", "v: not padded base64 (2 characters)"},
	    {"Z===", "v: not padded base64 (4 characters)"}, {"Zm9v!A==", "v: not base64 at character 4"},
	    {"Zg==Zg==", "v: not base64 at character 4"},    /* padding in the middle */
	    {"Zh==", "v: not padded base64 (4 characters)"}, /* unused bits set: not canonical */
	    {"Zm9v YmFy", "v: not base64 at character 4"},   /* space without the option */
	    {"Zm-_", "v: not base64 at character 2"},	     /* the URL alphabet is another encoding */
	};
	uint8_t out[8];
	size_t n = 99;

	for (size_t i = 0; i < N_ELEMS(bad); i++) {
		memset(out, 0xa5, sizeof(out));
		assert_err(scone_base64_decode(bad[i][0], strlen(bad[i][0]), out, sizeof(out), &n, 0, "v"),
			   SCONE_ERR_MALFORMED, bad[i][1]);
		assert_int_equal(n, 0);
		assert_memory_equal(out, "\0\0\0\0\0\0\0\0", 8); /* nothing decoded is left */
	}
	/* More than the buffer holds. */
	assert_err(scone_base64_decode("Zm9vYmFyYmF6", 12, out, 8, &n, 0, "key"), SCONE_ERR_MALFORMED,
		   "key: decodes to more than 8 bytes");
	assert_int_equal(scone_base64_decoded_max(12), 12);
}

/* ---- crypto: hashes and KDF --------------------------------------------- */

TEST(test_sha256_hmac)
{
	static const char *const v[][2] = {
	    {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	    {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	    {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
	     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
	};
	uint8_t got[32], want[32];

	for (size_t i = 0; i < N_ELEMS(v); i++) {
		scone_sha256(v[i][0], strlen(v[i][0]), got);
		unhex(want, 32, v[i][1]);
		assert_memory_equal(got, want, 32);
	}
	/* RFC 4231 test case 2. */
	assert_ok(scone_hmac_sha256((const uint8_t *)"Jefe", 4, "what do ya want for nothing?", 28, got));
	unhex(want, 32, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	assert_memory_equal(got, want, 32);
}

TEST(test_hkdf_rfc5869)
{
	uint8_t ikm[22], salt[13], okm[42], want[42], *big = malloc(255 * 32 + 1);

	assert_non_null(big);
	memset(ikm, 0x0b, sizeof(ikm));
	for (int i = 0; i < 13; i++)
		salt[i] = (uint8_t)i;
	/* Test case 1, then test case 3 (no salt, empty info). */
	assert_ok(scone_hkdf_sha256(okm, 42, ikm, 22, salt, 13, "\xf0\xf1\xf2\xf3\xf4\xf5\xf6\xf7\xf8\xf9"));
	unhex(want, 42,
	      "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
	assert_memory_equal(okm, want, 42);
	assert_ok(scone_hkdf_sha256(okm, 42, ikm, 22, NULL, 0, ""));
	unhex(want, 42,
	      "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
	assert_memory_equal(okm, want, 42);
	/* Output is capped at 255 * HashLen. */
	assert_ok(scone_hkdf_sha256(big, 255 * 32, ikm, 22, NULL, 0, "max"));
	assert_err(scone_hkdf_sha256(big, 255 * 32 + 1, ikm, 22, NULL, 0, "max"), SCONE_ERR_CRYPTO, "HKDF");
	free(big);
}

/* ---- crypto: AEAD ------------------------------------------------------- */

static const enum scone_aead_alg algs[] = {SCONE_AEAD_AES256_GCM, SCONE_AEAD_AES256_OCB};

static struct scone_aead *new_aead(enum scone_aead_alg alg, const uint8_t *key)
{
	struct scone_aead *a = NULL;

	assert_ok(scone_aead_new(alg, key, &a));
	return a;
}

TEST(test_aead_roundtrip)
{
	static const size_t sizes[] = {0, 1, 15, 16, 17, 4096, 100000};
	uint8_t key[32], nonce[12], aad[29], tag[16], tag2[16];

	assert_ok(scone_random(key, sizeof(key)));
	assert_ok(scone_random(nonce, sizeof(nonce)));
	assert_ok(scone_random(aad, sizeof(aad)));
	for (size_t k = 0; k < N_ELEMS(algs); k++) {
		struct scone_aead *a = new_aead(algs[k], key);
		for (size_t s = 0; s < N_ELEMS(sizes); s++) {
			size_t n = sizes[s], alloc = n ? n : 1; /* exact size for ASan */
			uint8_t *pt = malloc(alloc), *ct = malloc(alloc), *buf = malloc(alloc);
			assert_true(pt && ct && buf);
			assert_ok(scone_random(pt, alloc));
			assert_ok(scone_aead_seal(a, nonce, aad, sizeof(aad), pt, n, ct, tag));
			assert_true(n < 16 || memcmp(ct, pt, n) != 0);
			assert_ok(scone_aead_open(a, nonce, aad, sizeof(aad), ct, n, buf, tag));
			assert_memory_equal(buf, pt, n);
			/* In place (out == in): the same ciphertext and tag, and back. */
			memcpy(buf, pt, n);
			assert_ok(scone_aead_seal(a, nonce, aad, sizeof(aad), buf, n, buf, tag2));
			assert_memory_equal(buf, ct, n);
			assert_memory_equal(tag2, tag, 16);
			assert_ok(scone_aead_open(a, nonce, aad, sizeof(aad), buf, n, buf, tag));
			assert_memory_equal(buf, pt, n);
			free(pt);
			free(ct);
			free(buf);
		}
		/* AAD alone: no payload, so in and out may be NULL. */
		assert_ok(scone_aead_seal(a, nonce, aad, sizeof(aad), NULL, 0, NULL, tag));
		assert_ok(scone_aead_open(a, nonce, aad, sizeof(aad), NULL, 0, NULL, tag));
		tag[0] ^= 1;
		assert_int_equal(scone_aead_open(a, nonce, aad, sizeof(aad), NULL, 0, NULL, tag),
				 SCONE_ERR_AUTH);
		scone_aead_free(a);
	}
}

enum { MSG = 33 }; /* two blocks and a partial one */
struct sealed {
	uint8_t nonce[12], aad[20], ct[MSG], tag[16];
};

/* Opening m (its first aad_size and size bytes) must fail and leave out zeroed. */
static void expect_auth(struct scone_aead *a, const struct sealed *m, size_t aad_size, size_t size)
{
	uint8_t out[MSG];

	memset(out, 0xa5, sizeof(out));
	assert_int_equal(
	    scone_aead_open(a, m->nonce, aad_size ? m->aad : NULL, aad_size, m->ct, size, out, m->tag),
	    SCONE_ERR_AUTH);
	assert_true(all_zero(out, size));
}

/* Flip every step-th bit of field, one at a time; each must fail to open. */
static void flip_each(struct scone_aead *a, struct sealed *m, uint8_t *field, size_t bits, size_t step)
{
	for (size_t i = 0; i < bits; i += step) {
		FLIP(field, i);
		expect_auth(a, m, sizeof(m->aad), MSG);
		FLIP(field, i);
	}
}

TEST(test_aead_tamper)
{
	uint8_t key[32], pt[MSG], out[MSG];
	struct sealed m;

	assert_ok(scone_random(key, sizeof(key)));
	assert_ok(scone_random(&m, sizeof(m)));
	assert_ok(scone_random(pt, sizeof(pt)));
	for (size_t k = 0; k < N_ELEMS(algs); k++) {
		struct scone_aead *a = new_aead(algs[k], key), *other;
		assert_ok(scone_aead_seal(a, m.nonce, m.aad, sizeof(m.aad), pt, MSG, m.ct, m.tag));
		flip_each(a, &m, m.tag, 128, 1);
		flip_each(a, &m, m.nonce, 96, 1);
		flip_each(a, &m, m.ct, MSG * 8, 9); /* one bit in every byte */
		flip_each(a, &m, m.aad, sizeof(m.aad) * 8, 9);
		expect_auth(a, &m, sizeof(m.aad), MSG - 1);
		expect_auth(a, &m, sizeof(m.aad) - 1, MSG);
		expect_auth(a, &m, 0, MSG);
		key[0] ^= 1; /* wrong key */
		expect_auth(other = new_aead(algs[k], key), &m, sizeof(m.aad), MSG);
		scone_aead_free(other);
		key[0] ^= 1; /* right key, other algorithm */
		expect_auth(other = new_aead(algs[1 - k], key), &m, sizeof(m.aad), MSG);
		scone_aead_free(other);
		/* In place: a failed open wipes the buffer. */
		memcpy(out, m.ct, MSG);
		out[MSG - 1] ^= 4;
		assert_int_equal(scone_aead_open(a, m.nonce, m.aad, sizeof(m.aad), out, MSG, out, m.tag),
				 SCONE_ERR_AUTH);
		assert_true(all_zero(out, MSG));
		/* Failures do not wedge the context. */
		assert_ok(scone_aead_open(a, m.nonce, m.aad, sizeof(m.aad), m.ct, MSG, out, m.tag));
		assert_memory_equal(out, pt, MSG);
		scone_aead_free(a);
	}
}

TEST(test_aead_gcm_kat)
{
	uint8_t key[32] = {0}, nonce[12] = {0}, aad[20], pt[60] = {0}, ct[60], want[60], tag[16], wtag[16];
	struct scone_aead *a = new_aead(SCONE_AEAD_AES256_GCM, key);

	/* GCM spec test case 14: zero key and nonce, one zero block. */
	assert_ok(scone_aead_seal(a, nonce, NULL, 0, pt, 16, ct, tag));
	unhex(want, 16, "cea7403d4d606b6e074ec5d3baf39d18");
	unhex(wtag, 16, "d0d1c8a799996bf0265b98b5d48ab919");
	assert_memory_equal(ct, want, 16);
	assert_memory_equal(tag, wtag, 16);
	scone_aead_free(a);
	/* Test case 16: 60-byte plaintext with 20 bytes of AAD; seal and open. */
	unhex(key, 32, "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
	unhex(nonce, 12, "cafebabefacedbaddecaf888");
	unhex(aad, 20, "feedfacedeadbeeffeedfacedeadbeefabaddad2");
	unhex(pt, 60,
	      "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
	      "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39");
	unhex(want, 60,
	      "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
	      "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662");
	unhex(wtag, 16, "76fc6ece0f4e1768cddf8853bb2d551b");
	a = new_aead(SCONE_AEAD_AES256_GCM, key);
	assert_ok(scone_aead_seal(a, nonce, aad, 20, pt, 60, ct, tag));
	assert_memory_equal(ct, want, 60);
	assert_memory_equal(tag, wtag, 16);
	assert_ok(scone_aead_open(a, nonce, aad, 20, want, 60, ct, wtag));
	assert_memory_equal(ct, pt, 60);
	scone_aead_free(a);
}

/* RFC 7253 appendix A, KEYLEN 256, TAGLEN 128: C is 384 encryptions of zero
 * strings, each C || T; the output is the tag of OCB(num2str(385), A = C). */
TEST(test_aead_ocb_kat)
{
	static const uint8_t zeros[128];
	uint8_t key[32] = {[31] = 128}, nonce[12] = {0}, want[16], tag[16], *c = malloc(22400);
	struct scone_aead *a = new_aead(SCONE_AEAD_AES256_OCB, key);
	size_t len = 0;

	assert_non_null(c);
	for (uint32_t n = 1; n <= 384; n++) { /* i = (n-1)/3: (S, S), (<>, S), (S, <>) */
		size_t i = (n - 1) / 3, aad = n % 3 == 2 ? 0 : i, pt = n % 3 == 0 ? 0 : i;
		nonce[10] = (uint8_t)(n >> 8);
		nonce[11] = (uint8_t)n;
		assert_ok(scone_aead_seal(a, nonce, zeros, aad, zeros, pt, c + len, c + len + pt));
		len += pt + 16;
	}
	assert_int_equal(len, 22400);
	nonce[10] = 385 >> 8;
	nonce[11] = 385 & 0xff;
	assert_ok(scone_aead_seal(a, nonce, c, len, zeros, 0, tag, tag));
	unhex(want, 16, "d90eb8e9c977c88b79dd793d7ffa161c");
	assert_memory_equal(tag, want, 16);
	scone_aead_free(a);
	free(c);
}

/* The one-shot forms give what a kept context gives, and refuse what it refuses. */
TEST(test_aead_once)
{
	uint8_t key[32], nonce[12], aad[7] = "context", pt[100], ct[100], ct2[100], back[100], tag[16],
				    tag2[16];

	assert_ok(scone_random(key, sizeof(key)));
	assert_ok(scone_random(nonce, sizeof(nonce)));
	assert_ok(scone_random(pt, sizeof(pt)));
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		struct scone_aead *a = new_aead(algs[i], key);
		assert_ok(scone_aead_seal(a, nonce, aad, sizeof(aad), pt, sizeof(pt), ct, tag));
		assert_ok(
		    scone_aead_seal_once(algs[i], key, nonce, aad, sizeof(aad), pt, sizeof(pt), ct2, tag2));
		assert_memory_equal(ct, ct2, sizeof(ct));
		assert_memory_equal(tag, tag2, sizeof(tag));
		assert_ok(
		    scone_aead_open_once(algs[i], key, nonce, aad, sizeof(aad), ct, sizeof(ct), back, tag));
		assert_memory_equal(back, pt, sizeof(pt));
		/* Empty message, tag over the AAD alone. */
		assert_ok(scone_aead_seal_once(algs[i], key, nonce, aad, sizeof(aad), NULL, 0, NULL, tag2));
		assert_ok(scone_aead_open_once(algs[i], key, nonce, aad, sizeof(aad), NULL, 0, NULL, tag2));
		/* A flipped bit anywhere: AUTH, nothing released. */
		ct[50] ^= 1;
		memset(back, 0x77, sizeof(back));
		assert_int_equal(
		    scone_aead_open_once(algs[i], key, nonce, aad, sizeof(aad), ct, sizeof(ct), back, tag),
		    SCONE_ERR_AUTH);
		for (size_t k = 0; k < sizeof(back); k++)
			assert_int_equal(back[k], 0);
		ct[50] ^= 1;
		tag[0] ^= 0x80;
		assert_int_equal(
		    scone_aead_open_once(algs[i], key, nonce, aad, sizeof(aad), ct, sizeof(ct), back, tag),
		    SCONE_ERR_AUTH);
		scone_aead_free(a);
	}
	assert_int_equal(scone_aead_seal_once((enum scone_aead_alg)0, key, nonce, NULL, 0, pt, 1, ct, tag),
			 SCONE_ERR_UNSUPPORTED);
}

TEST(test_aead_misuse)
{
	static int sentinel;
	uint8_t key[32] = {0};
	struct scone_aead *a = (struct scone_aead *)(void *)&sentinel;

	assert_string_equal(scone_aead_name(SCONE_AEAD_AES256_GCM), "aes-256-gcm");
	assert_string_equal(scone_aead_name(SCONE_AEAD_AES256_OCB), "aes-256-ocb");
	assert_null(scone_aead_name((enum scone_aead_alg)0));
	assert_err(scone_aead_new((enum scone_aead_alg)0, key, &a), SCONE_ERR_UNSUPPORTED, "algorithm 0");
	assert_err(scone_aead_new((enum scone_aead_alg)3, key, &a), SCONE_ERR_UNSUPPORTED, "algorithm 3");
	assert_ptr_equal(a, &sentinel); /* untouched on failure */
	scone_aead_free(NULL);
}

/* ---- crypto: helpers ---------------------------------------------------- */

TEST(test_ct_equal_and_wipe)
{
	uint8_t a[64], b[64];

	memset(a, 0x3c, sizeof(a));
	memcpy(b, a, sizeof(b));
	assert_true(scone_ct_equal(a, b, sizeof(a)));
	assert_true(scone_ct_equal(a, "x", 0));
	for (size_t i = 0; i < sizeof(b) * 8; i++) {
		FLIP(b, i);
		assert_false(scone_ct_equal(a, b, sizeof(a)));
		FLIP(b, i);
	}
	scone_wipe(a, sizeof(a));
	assert_true(all_zero(a, sizeof(a)));
	scone_wipe(NULL, 10);
}

TEST(test_secure_alloc)
{
	static const size_t sizes[] = {0, 1, 32, 4095, 4096, 5000};
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	for (size_t i = 0; i < N_ELEMS(sizes); i++) {
		size_t n = sizes[i];
		uint8_t *p = scone_secure_alloc(n);
		assert_non_null(p);
		assert_int_equal((uintptr_t)p % page, 0);
		assert_true(all_zero(p, n));
		memset(p, 0x77, n); /* writable over its whole size */
		watch(p);
		scone_secure_free(p, n);
		assert_int_equal(wipe_len, (n ? n + page - 1 : page) / page * page); /* whole pages wiped */
	}
	watch(NULL);
	scone_secure_free(NULL, 32);
}

TEST(test_fingerprint)
{
	char fp[17], fp2[17];
	uint8_t key[32];

	scone_fingerprint("abc", 3, fp);
	assert_string_equal(fp, "ba7816bf8f01cfea"); /* first 8 bytes of SHA-256("abc") */
	memset(key, 0x11, sizeof(key));
	scone_fingerprint(key, sizeof(key), fp);
	scone_fingerprint(key, sizeof(key), fp2);
	assert_string_equal(fp, fp2);
	assert_int_equal(strspn(fp, "0123456789abcdef"), 16);
	assert_int_equal(fp[16], '\0');
	key[31] ^= 1;
	scone_fingerprint(key, sizeof(key), fp2);
	assert_string_not_equal(fp, fp2);
}

TEST(test_random)
{
	static uint8_t buf[65536], buf2[64];
	int seen[256] = {0};

	assert_ok(scone_random(buf, sizeof(buf)));
	for (size_t i = 0; i < sizeof(buf); i++)
		seen[buf[i]] = 1;
	for (int v = 0; v < 256; v++)
		assert_true(seen[v]); /* a miss has probability ~2^-360 */
	for (size_t i = 0; i < sizeof(buf); i += 64)
		assert_false(all_zero(buf + i, 64)); /* every part was filled */
	assert_ok(scone_random(buf2, sizeof(buf2)));
	assert_memory_not_equal(buf, buf2, sizeof(buf2));
	assert_ok(scone_random(buf2, 0));
	assert_err(scone_random(buf2, (size_t)INT32_MAX + 1), SCONE_ERR_CRYPTO, "random");
}

int main(void)
{
	/* clang-format off */
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_err_names),
	    cmocka_unit_test(test_err_numbers_pinned),
	    cmocka_unit_test(test_err_kinds),
	    cmocka_unit_test(test_err_detail),
	    cmocka_unit_test(test_err_errno),
	    cmocka_unit_test(test_log),
	    cmocka_unit_test(test_buf_roundtrip),
	    cmocka_unit_test(test_rbuf_truncated),
	    cmocka_unit_test(test_wbuf_ceiling),
	    cmocka_unit_test(test_wbuf_secret),
	    cmocka_unit_test(test_hex),
	    cmocka_unit_test(test_base64_vectors),
	    cmocka_unit_test(test_base64_bad),
	    cmocka_unit_test(test_hex_bad),
	    cmocka_unit_test(test_keyfile),
	    cmocka_unit_test(test_sha256_hmac),
	    cmocka_unit_test(test_hkdf_rfc5869),
	    cmocka_unit_test(test_aead_roundtrip),
	    cmocka_unit_test(test_aead_tamper),
	    cmocka_unit_test(test_aead_gcm_kat),
	    cmocka_unit_test(test_aead_ocb_kat),
	    cmocka_unit_test(test_aead_once),
	    cmocka_unit_test(test_aead_misuse),
	    cmocka_unit_test(test_ct_equal_and_wipe),
	    cmocka_unit_test(test_secure_alloc),
	    cmocka_unit_test(test_fingerprint),
	    cmocka_unit_test(test_random),
	};
	/* clang-format on */

	return cmocka_run_group_tests(tests, NULL, NULL);
}
