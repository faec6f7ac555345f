/*
 * test_handover.c - unit tests for src/runtime/handover: the state a
 * program under the runtime hands to the program it execs. A full and a
 * minimal handover round-trip field by field; every malformation of the
 * untrusted bytes (framing, each record kind, the cross-record checks, the
 * count and size limits) is refused with its code and a detail naming what
 * failed, and leaves the output re-initialised with nothing allocated.
 */
#include "helpers.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "runtime/handover.h"
#include "runtime/handover_io.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <unistd.h>

#define TEST(name) static void name(void **state __attribute__((unused)))
#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* Limits of handover.c (not in its header): kept in step by these tests. */
#define MAX_ENV SCONE_HANDOVER_MAX_ENV
#define MAX_VOLUMES SCONE_HANDOVER_MAX_VOLUMES
#define MAX_PATH SCONE_HANDOVER_MAX_PATH

static const char config_json[] = "{\"config_id\": \"app/web\", \"mode\": \"none\"}";
static const char identity_pem[] =
    "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n";

/* ---- raw record builder ---- */

static void start(struct scone_wbuf *w)
{
	scone_wbuf_init(w, SIZE_MAX, 0);
	assert_ok(scone_wbuf_put(w, "SCONEHO1", 8));
}

static void rec(struct scone_wbuf *w, uint8_t type, const void *p, size_t n)
{
	assert_ok(scone_wbuf_u8(w, type));
	assert_ok(scone_wbuf_u32(w, (uint32_t)n));
	assert_ok(scone_wbuf_put(w, p, n));
}

static void rec_str(struct scone_wbuf *w, uint8_t type, const char *s)
{
	rec(w, type, s, strlen(s));
}

static void rec_pin(struct scone_wbuf *w)
{
	uint8_t pin[32];

	memset(pin, 0x5a, sizeof(pin));
	rec(w, 'P', pin, sizeof(pin));
}

/* Magic, configuration, CAS address and pin: the smallest valid handover. */
static void base(struct scone_wbuf *w)
{
	start(w);
	rec_str(w, 'C', config_json);
	rec_str(w, 'A', "cas.example:8081");
	rec_pin(w);
}

static void rec_volume(struct scone_wbuf *w, uint8_t flag, const char *name)
{
	uint8_t p[1 + SCONE_HANDOVER_TAG_SIZE];

	p[0] = flag;
	memset(p + 1, 0x77, SCONE_HANDOVER_TAG_SIZE);
	assert_ok(scone_wbuf_u8(w, 'V'));
	assert_ok(scone_wbuf_u32(w, (uint32_t)(sizeof(p) + strlen(name))));
	assert_ok(scone_wbuf_put(w, p, sizeof(p)));
	assert_ok(scone_wbuf_put(w, name, strlen(name)));
}

static void rec_fd(struct scone_wbuf *w, uint32_t fd, uint32_t vol, uint8_t dir, const char *path)
{
	assert_ok(scone_wbuf_u8(w, 'F'));
	static const uint8_t fid[16];

	assert_ok(scone_wbuf_u32(w, (uint32_t)(46 + strlen(path))));
	assert_ok(scone_wbuf_u32(w, fd));
	assert_ok(scone_wbuf_u32(w, 2));
	assert_ok(scone_wbuf_u32(w, vol));
	assert_ok(scone_wbuf_u8(w, dir));
	assert_ok(scone_wbuf_u64(w, 7));	 /* the placeholder's device */
	assert_ok(scone_wbuf_u64(w, 1000 + fd)); /* and inode */
	assert_ok(scone_wbuf_u8(w, 0));		 /* no file id, inherited */
	assert_ok(scone_wbuf_put(w, fid, sizeof(fid)));
	assert_ok(scone_wbuf_put(w, path, strlen(path)));
}

static void rec_share(struct scone_wbuf *w, uint32_t fd, uint8_t shared)
{
	uint8_t p[5];

	scone_put_le32(p, fd);
	p[4] = shared;
	rec(w, 'S', p, sizeof(p));
}

static void assert_reinit(const struct scone_handover *h)
{
	assert_null(h->config);
	assert_int_equal(h->config_len, 0);
	assert_null(h->cas_addr);
	assert_null(h->identity);
	assert_null(h->env);
	assert_int_equal(h->env_count, 0);
	assert_null(h->volumes);
	assert_int_equal(h->volume_count, 0);
	assert_int_equal(h->share_fd, -1);
	assert_false(h->shared);
	assert_null(h->fds);
	assert_int_equal(h->fd_count, 0);
	assert_null(h->cwd);
}

static void decode_ok(const struct scone_wbuf *w, struct scone_handover *h)
{
	enum scone_err err = scone_handover_decode(w->data, w->size, h);

	if (err)
		fail_msg("decode: %s: %s", scone_errname(err), scone_err_detail());
}

/* Decoding w must fail with code, a detail containing detail, and leave nothing behind. */
static void reject_bytes(const uint8_t *p, size_t n, enum scone_err code, const char *detail)
{
	struct scone_handover h;
	enum scone_err err;

	memset(&h, 0xa5, sizeof(h));
	err = scone_handover_decode(p, n, &h);
	if (err != code || !strstr(scone_err_detail(), detail))
		fail_msg("expected %s \"%s\", got %s \"%s\"", scone_errname(code), detail, scone_errname(err),
			 scone_err_detail());
	assert_reinit(&h);
}

static void reject(struct scone_wbuf *w, enum scone_err code, const char *detail)
{
	reject_bytes(w->data, w->size, code, detail);
	scone_wbuf_free(w);
}

/* ---- round trips ---- */

static void fill_full(struct scone_handover *h, char **env, struct scone_handover_volume *vols,
		      struct scone_handover_fd *fds)
{
	scone_handover_init(h);
	h->config = (char *)config_json;
	h->config_len = strlen(config_json);
	h->cas_addr = (char *)"10.0.0.7:8081";
	for (size_t i = 0; i < sizeof(h->pin); i++)
		h->pin[i] = (uint8_t)(i * 7 + 1);
	h->identity = (char *)identity_pem;
	h->identity_len = strlen(identity_pem);
	env[0] = (char *)"DB_PASSWORD=s3cr\xc3\xa9t";
	env[1] = (char *)"EMPTY=";
	env[2] = (char *)"EQ=a=b=c";
	h->env = env;
	h->env_count = 3;
	vols[0] = (struct scone_handover_volume){.name = (char *)"data", .has_tag = true};
	memset(vols[0].tag, 0xc3, SCONE_HANDOVER_TAG_SIZE);
	vols[1] = (struct scone_handover_volume){.name = (char *)"shared", .has_tag = false};
	h->volumes = vols;
	h->volume_count = 2;
	h->share_fd = 1017;
	h->shared = true;
	fds[0] = (struct scone_handover_fd){.fd = 3,
					    .flags = 02 | 02000,
					    .volume = 0,
					    .vpath = (char *)"/db/log",
					    .dev = 0x1234,
					    .ino = UINT64_MAX - 5,
					    .has_fid = true,
					    .cloexec = true};
	memset(fds[0].fid, 0x5a, sizeof(fds[0].fid));
	fds[1] = (struct scone_handover_fd){
	    .fd = INT_MAX, .flags = 0, .volume = 1, .vpath = (char *)"/", .dir = true};
	fds[2] = (struct scone_handover_fd){.fd = 0, .flags = 1, .volume = 1, .vpath = (char *)"/tmp/x y"};
	h->fds = fds;
	h->fd_count = 3;
	h->cwd = (char *)"/data/db";
}

static void assert_same(const struct scone_handover *a, const struct scone_handover *b)
{
	assert_int_equal(a->config_len, b->config_len);
	assert_memory_equal(a->config, b->config, a->config_len);
	assert_int_equal(b->config[b->config_len], '\0');
	assert_string_equal(a->cas_addr, b->cas_addr);
	assert_memory_equal(a->pin, b->pin, sizeof(a->pin));
	assert_int_equal(a->identity == NULL, b->identity == NULL);
	if (a->identity) {
		assert_int_equal(a->identity_len, b->identity_len);
		assert_memory_equal(a->identity, b->identity, a->identity_len);
	}
	assert_int_equal(a->env_count, b->env_count);
	for (size_t i = 0; i < a->env_count; i++)
		assert_string_equal(a->env[i], b->env[i]);
	assert_int_equal(a->volume_count, b->volume_count);
	for (size_t i = 0; i < a->volume_count; i++) {
		assert_string_equal(a->volumes[i].name, b->volumes[i].name);
		assert_int_equal(a->volumes[i].has_tag, b->volumes[i].has_tag);
		assert_memory_equal(a->volumes[i].tag, b->volumes[i].tag, SCONE_HANDOVER_TAG_SIZE);
	}
	assert_int_equal(a->share_fd, b->share_fd);
	assert_int_equal(a->shared, b->shared);
	assert_int_equal(a->fd_count, b->fd_count);
	for (size_t i = 0; i < a->fd_count; i++) {
		assert_int_equal(a->fds[i].fd, b->fds[i].fd);
		assert_int_equal(a->fds[i].flags, b->fds[i].flags);
		assert_int_equal(a->fds[i].volume, b->fds[i].volume);
		assert_string_equal(a->fds[i].vpath, b->fds[i].vpath);
		assert_int_equal(a->fds[i].dir, b->fds[i].dir);
		assert_true(a->fds[i].dev == b->fds[i].dev && a->fds[i].ino == b->fds[i].ino);
		assert_int_equal(a->fds[i].has_fid, b->fds[i].has_fid);
		assert_int_equal(a->fds[i].cloexec, b->fds[i].cloexec);
		assert_memory_equal(a->fds[i].fid, b->fds[i].fid, sizeof(a->fds[i].fid));
	}
	assert_int_equal(a->cwd == NULL, b->cwd == NULL);
	if (a->cwd)
		assert_string_equal(a->cwd, b->cwd);
}

static void roundtrip(const struct scone_handover *h)
{
	struct scone_handover d, d2;
	struct scone_wbuf w, w2;

	scone_wbuf_init(&w, SCONE_HANDOVER_MAX, 1);
	assert_ok(scone_handover_encode(h, &w));
	decode_ok(&w, &d);
	assert_same(h, &d);
	/* Encoding the decoded state gives the same bytes. */
	scone_wbuf_init(&w2, SCONE_HANDOVER_MAX, 1);
	assert_ok(scone_handover_encode(&d, &w2));
	assert_int_equal(w.size, w2.size);
	assert_memory_equal(w.data, w2.data, w.size);
	decode_ok(&w2, &d2);
	assert_same(&d, &d2);
	scone_handover_free(&d);
	scone_handover_free(&d2);
	scone_wbuf_free(&w);
	scone_wbuf_free(&w2);
}

TEST(test_roundtrip_full)
{
	struct scone_handover h;
	char *env[3];
	struct scone_handover_volume vols[2];
	struct scone_handover_fd fds[3];

	fill_full(&h, env, vols, fds);
	roundtrip(&h);
	/* Unshared volumes, share fd 0. */
	h.share_fd = 0;
	h.shared = false;
	roundtrip(&h);
}

TEST(test_roundtrip_minimal)
{
	struct scone_handover h, d;
	struct scone_wbuf w;

	scone_handover_init(&h);
	h.config = (char *)config_json;
	h.config_len = strlen(config_json);
	h.cas_addr = (char *)"cas:1";
	memset(h.pin, 0xee, sizeof(h.pin));
	roundtrip(&h);

	scone_wbuf_init(&w, SCONE_HANDOVER_MAX, 1);
	assert_ok(scone_handover_encode(&h, &w));
	/* magic + C + A + P, nothing else */
	assert_int_equal(w.size, 8 + 5 + strlen(config_json) + 5 + 5 + 5 + 32);
	decode_ok(&w, &d);
	assert_null(d.identity);
	assert_int_equal(d.env_count, 0);
	assert_int_equal(d.volume_count, 0);
	assert_int_equal(d.fd_count, 0);
	assert_int_equal(d.share_fd, -1);
	assert_null(d.cwd);
	scone_handover_free(&d);
	scone_wbuf_free(&w);

	/* An empty configuration is still a configuration. */
	h.config = (char *)"";
	h.config_len = 0;
	roundtrip(&h);
}

/* Records may come in any order; the decoder does not care. */
TEST(test_any_order)
{
	struct scone_wbuf w;
	struct scone_handover h;

	start(&w);
	rec_fd(&w, 4, 0, 1, "/d");
	rec_str(&w, 'W', "/d");
	rec_volume(&w, 0, "v");
	rec_pin(&w);
	rec_str(&w, 'I', identity_pem);
	rec_str(&w, 'E', "A=1");
	rec_str(&w, 'A', "a");
	rec_str(&w, 'C', "{}");
	rec_str(&w, 'E', "B=2");
	decode_ok(&w, &h);
	assert_int_equal(h.env_count, 2);
	assert_string_equal(h.env[1], "B=2");
	assert_int_equal(h.fd_count, 1);
	assert_true(h.fds[0].dir);
	assert_int_equal(h.volume_count, 1);
	assert_false(h.volumes[0].has_tag);
	scone_handover_free(&h);
	scone_wbuf_free(&w);
}

TEST(test_free_reinitialises)
{
	struct scone_handover h;
	char *env[3];
	struct scone_handover_volume vols[2];
	struct scone_handover_fd fds[3];
	struct scone_handover d;
	struct scone_wbuf w;

	fill_full(&h, env, vols, fds);
	scone_wbuf_init(&w, SCONE_HANDOVER_MAX, 1);
	assert_ok(scone_handover_encode(&h, &w));
	decode_ok(&w, &d);
	assert_int_equal(d.share_fd, 1017);
	scone_handover_free(&d);
	assert_reinit(&d);
	for (size_t i = 0; i < sizeof(d.pin); i++)
		assert_int_equal(d.pin[i], 0);
	scone_handover_free(&d); /* freeing twice is harmless */
	assert_reinit(&d);
	scone_wbuf_free(&w);

	scone_handover_init(&d);
	assert_reinit(&d);
}

TEST(test_encode_over_ceiling)
{
	struct scone_handover h;
	char *env[3];
	struct scone_handover_volume vols[2];
	struct scone_handover_fd fds[3];
	struct scone_wbuf w;

	fill_full(&h, env, vols, fds);
	scone_wbuf_init(&w, 64, 1);
	assert_int_equal(scone_handover_encode(&h, &w), SCONE_ERR_TOO_LARGE);
	scone_wbuf_free(&w);
}

/* ---- framing ---- */

TEST(test_bad_framing)
{
	static const uint8_t hdr[] = {'S', 'C', 'O', 'N', 'E', 'H', 'O', '1', 'C', 1, 0};
	struct scone_wbuf w;

	reject_bytes((const uint8_t *)"", 0, SCONE_ERR_MALFORMED, "no SCONEHO1 magic");
	reject_bytes((const uint8_t *)"SCONEHO", 7, SCONE_ERR_MALFORMED, "no SCONEHO1 magic");
	reject_bytes((const uint8_t *)"SCONEHO2", 8, SCONE_ERR_MALFORMED, "no SCONEHO1 magic");
	/* magic only: no records, so nothing required is there */
	reject_bytes((const uint8_t *)"SCONEHO1", 8, SCONE_ERR_MALFORMED,
		     "configuration, CAS address or pin missing");

	base(&w);
	w.data[0] = 's';
	reject(&w, SCONE_ERR_MALFORMED, "no SCONEHO1 magic");

	/* Record header cut after the type, and inside the length. */
	reject_bytes(hdr, 9, SCONE_ERR_MALFORMED, "reading record length");
	reject_bytes(hdr, sizeof(hdr), SCONE_ERR_MALFORMED, "reading record length");

	/* A record shorter than its length says. */
	base(&w);
	rec_str(&w, 'W', "/cwd");
	w.size -= 2;
	reject(&w, SCONE_ERR_MALFORMED, "reading record (4 bytes needed, 2 left)");

	/* A length far past the end. */
	base(&w);
	assert_ok(scone_wbuf_u8(&w, 'E'));
	assert_ok(scone_wbuf_u32(&w, UINT32_MAX));
	assert_ok(scone_wbuf_put(&w, "A=b", 3));
	reject(&w, SCONE_ERR_MALFORMED, "reading record (4294967295 bytes needed, 3 left)");
}

TEST(test_unknown_type)
{
	static const uint8_t types[] = {0, 'c', 'X', 0x80, 0xff};
	struct scone_wbuf w;

	for (size_t i = 0; i < N_ELEMS(types); i++) {
		base(&w);
		rec(&w, types[i], "x", 1);
		reject(&w, SCONE_ERR_MALFORMED, "unknown record type");
	}
	base(&w);
	rec(&w, 'Z', "", 0);
	reject(&w, SCONE_ERR_MALFORMED, "unknown record type 0x5a");
}

TEST(test_duplicate_singletons)
{
	static const char types[] = "CAPISW";
	struct scone_wbuf w;
	char detail[32];

	for (size_t i = 0; types[i]; i++) {
		base(&w);
		rec_str(&w, 'I', identity_pem);
		rec_share(&w, 9, 0);
		rec_str(&w, 'W', "/");
		switch (types[i]) {
		case 'C':
			rec_str(&w, 'C', "{}");
			break;
		case 'A':
			rec_str(&w, 'A', "other:1");
			break;
		case 'P':
			rec_pin(&w);
			break;
		case 'I':
			rec_str(&w, 'I', identity_pem);
			break;
		case 'S':
			rec_share(&w, 10, 1);
			break;
		default:
			rec_str(&w, 'W', "/x");
			break;
		}
		snprintf(detail, sizeof(detail), "record %c twice", types[i]);
		reject(&w, SCONE_ERR_MALFORMED, detail);
	}
}

/* ---- single records ---- */

TEST(test_bad_singletons)
{
	uint8_t pin[33] = {0}, share[6] = {0};
	char big[MAX_PATH + 2];
	struct scone_wbuf w;

	for (size_t n = 0; n <= sizeof(pin); n += n == 0 ? 31 : 1) {
		if (n == 32)
			continue;
		start(&w);
		rec_str(&w, 'C', "{}");
		rec_str(&w, 'A', "a");
		rec(&w, 'P', pin, n);
		reject(&w, SCONE_ERR_MALFORMED, "CAS pin of");
	}

	start(&w);
	rec_str(&w, 'C', "{}");
	rec(&w, 'A', "", 0);
	reject(&w, SCONE_ERR_MALFORMED, "CAS address of 0 bytes");
	memset(big, 'a', sizeof(big));
	start(&w);
	rec(&w, 'A', big, 257);
	reject(&w, SCONE_ERR_MALFORMED, "CAS address of 257 bytes");
	start(&w);
	rec(&w, 'A', "a\0b", 3);
	reject(&w, SCONE_ERR_MALFORMED, "CAS address holds a NUL byte");

	start(&w);
	rec(&w, 'C', "{\0}", 3);
	reject(&w, SCONE_ERR_MALFORMED, "configuration holds a NUL byte");

	base(&w);
	rec(&w, 'I', "", 0);
	reject(&w, SCONE_ERR_MALFORMED, "identity of 0 bytes");
	base(&w);
	rec(&w, 'I', "k\0", 2);
	reject(&w, SCONE_ERR_MALFORMED, "identity holds a NUL byte");

	base(&w);
	rec(&w, 'S', share, 4);
	reject(&w, SCONE_ERR_MALFORMED, "share record");
	base(&w);
	rec(&w, 'S', share, 6);
	reject(&w, SCONE_ERR_MALFORMED, "share record");
	base(&w);
	rec_share(&w, (uint32_t)INT_MAX + 1, 0);
	reject(&w, SCONE_ERR_MALFORMED, "share record");
	base(&w);
	rec_share(&w, 5, 2);
	reject(&w, SCONE_ERR_MALFORMED, "share record");

	base(&w);
	rec_str(&w, 'W', "data");
	reject(&w, SCONE_ERR_MALFORMED, "working directory");
	base(&w);
	rec(&w, 'W', "", 0);
	reject(&w, SCONE_ERR_MALFORMED, "working directory");
	base(&w);
	big[0] = '/';
	rec(&w, 'W', big, MAX_PATH + 1);
	reject(&w, SCONE_ERR_MALFORMED, "working directory");
	base(&w);
	rec(&w, 'W', "/a\0b", 4);
	reject(&w, SCONE_ERR_MALFORMED, "working directory holds a NUL byte");
}

TEST(test_bad_env)
{
	struct scone_wbuf w;
	char *big;

	base(&w);
	rec_str(&w, 'E', "A=1");
	rec_str(&w, 'E', "NOEQUALS");
	reject(&w, SCONE_ERR_MALFORMED, "environment entry 1 is not NAME=VALUE");
	base(&w);
	rec_str(&w, 'E', "=value");
	reject(&w, SCONE_ERR_MALFORMED, "environment entry 0 is not NAME=VALUE");
	base(&w);
	rec(&w, 'E', "", 0);
	reject(&w, SCONE_ERR_MALFORMED, "environment entry 0 is not NAME=VALUE");
	base(&w);
	rec(&w, 'E', "A=b\0c", 5);
	reject(&w, SCONE_ERR_MALFORMED, "environment entry holds a NUL byte");
	base(&w);
	rec(&w, 'E', "A\0=b", 4);
	reject(&w, SCONE_ERR_MALFORMED, "environment entry holds a NUL byte");

	/* One entry over 1 MiB. */
	assert_non_null(big = malloc((1u << 20) + 1));
	memset(big, 'v', (1u << 20) + 1);
	big[0] = 'K';
	big[1] = '=';
	base(&w);
	rec(&w, 'E', big, (1u << 20) + 1);
	reject(&w, SCONE_ERR_LIMIT, "environment entry 0 is 1048577 bytes (limit 1048576)");
	free(big);
}

/* The encoder refuses what the decoder would, naming it. */
TEST(test_encode_refuses)
{
	struct scone_handover h;
	struct scone_handover_volume vols[2];
	struct scone_handover_fd fds[3];
	char *env[3];
	struct scone_wbuf w;

	fill_full(&h, env, vols, fds);
	env[1] = (char *)"NOEQUALS";
	scone_wbuf_init(&w, SCONE_HANDOVER_MAX, 1);
	assert_int_equal(scone_handover_encode(&h, &w), SCONE_ERR_INVALID);
	assert_non_null(strstr(scone_err_detail(), "environment entry 1 is not NAME=VALUE"));
	scone_wbuf_free(&w);

	fill_full(&h, env, vols, fds);
	fds[0].vpath = (char *)"relative";
	scone_wbuf_init(&w, SCONE_HANDOVER_MAX, 1);
	assert_int_equal(scone_handover_encode(&h, &w), SCONE_ERR_INVALID);
	assert_non_null(strstr(scone_err_detail(), "fd record 0"));
	scone_wbuf_free(&w);

	fill_full(&h, env, vols, fds);
	h.identity = NULL;
	scone_wbuf_init(&w, SCONE_HANDOVER_MAX, 1);
	assert_int_equal(scone_handover_encode(&h, &w), SCONE_ERR_INVALID);
	assert_non_null(strstr(scone_err_detail(), "report key"));
	scone_wbuf_free(&w);

	fill_full(&h, env, vols, fds);
	h.cwd = (char *)"not/absolute";
	scone_wbuf_init(&w, SCONE_HANDOVER_MAX, 1);
	assert_int_equal(scone_handover_encode(&h, &w), SCONE_ERR_INVALID);
	scone_wbuf_free(&w);
}

TEST(test_bad_volume)
{
	uint8_t p[1 + SCONE_HANDOVER_TAG_SIZE + MAX_PATH + 1];
	struct scone_wbuf w;

	memset(p, 'n', sizeof(p));
	p[0] = 1;
	base(&w);
	rec_str(&w, 'I', identity_pem);
	rec(&w, 'V', p, 1 + SCONE_HANDOVER_TAG_SIZE); /* no name */
	reject(&w, SCONE_ERR_MALFORMED, "volume record 0: bad length or flag");
	base(&w);
	rec_str(&w, 'I', identity_pem);
	rec(&w, 'V', p, 3);
	reject(&w, SCONE_ERR_MALFORMED, "volume record 0: bad length or flag");
	base(&w);
	rec_str(&w, 'I', identity_pem);
	rec(&w, 'V', p, sizeof(p)); /* name one byte too long */
	reject(&w, SCONE_ERR_MALFORMED, "volume record 0: bad length or flag");
	base(&w);
	rec_str(&w, 'I', identity_pem);
	rec_volume(&w, 1, "ok");
	rec_volume(&w, 2, "flag");
	reject(&w, SCONE_ERR_MALFORMED, "volume record 1: bad length or flag");
	base(&w);
	rec_str(&w, 'I', identity_pem);
	p[1 + SCONE_HANDOVER_TAG_SIZE + 1] = '\0';
	rec(&w, 'V', p, 1 + SCONE_HANDOVER_TAG_SIZE + 3);
	reject(&w, SCONE_ERR_MALFORMED, "volume name holds a NUL byte");

	/* Longest name accepted. */
	p[1 + SCONE_HANDOVER_TAG_SIZE + 1] = 'n';
	{
		struct scone_handover h;
		base(&w);
		rec_str(&w, 'I', identity_pem);
		rec(&w, 'V', p, sizeof(p) - 1);
		decode_ok(&w, &h);
		assert_int_equal(strlen(h.volumes[0].name), MAX_PATH);
		scone_handover_free(&h);
		scone_wbuf_free(&w);
	}
}

TEST(test_bad_fd)
{
	struct scone_wbuf w;

	base(&w);
	rec_str(&w, 'I', identity_pem);
	rec_volume(&w, 0, "v");
	rec_fd(&w, (uint32_t)INT_MAX + 1, 0, 0, "/f");
	reject(&w, SCONE_ERR_MALFORMED, "fd record 0: bad length, fd, flag or path");
	base(&w);
	rec_str(&w, 'I', identity_pem);
	rec_volume(&w, 0, "v");
	rec_fd(&w, UINT32_MAX, 0, 0, "/f");
	reject(&w, SCONE_ERR_MALFORMED, "fd record 0: bad length, fd, flag or path");
	base(&w);
	rec_str(&w, 'I', identity_pem);
	rec_volume(&w, 0, "v");
	rec_fd(&w, 3, 0, 0, "/ok");
	rec_fd(&w, 4, 0, 0, "relative");
	reject(&w, SCONE_ERR_MALFORMED, "fd record 1: bad length, fd, flag or path");
	base(&w);
	rec_str(&w, 'I', identity_pem);
	rec_volume(&w, 0, "v");
	rec_fd(&w, 4, 0, 0, ""); /* no path at all */
	reject(&w, SCONE_ERR_MALFORMED, "fd record 0: bad length, fd, flag or path");
	base(&w);
	rec_str(&w, 'I', identity_pem);
	rec_volume(&w, 0, "v");
	rec_fd(&w, 4, 0, 2, "/f"); /* dir flag */
	reject(&w, SCONE_ERR_MALFORMED, "fd record 0: bad length, fd, flag or path");
	base(&w);
	rec_str(&w, 'I', identity_pem);
	rec_volume(&w, 0, "v");
	rec_fd(&w, 4, 0, 0, "/f");
	w.data[w.size - 2 - 16 - 1] = 4; /* an unknown bit in the file id's flags */
	reject(&w, SCONE_ERR_MALFORMED, "fd record 0: bad length, fd, flag or path");
	base(&w);
	rec(&w, 'F', "\x01\x00\x00", 3); /* shorter than the fixed fields */
	reject(&w, SCONE_ERR_MALFORMED, "fd record 0: bad length, fd, flag or path");
	base(&w);
	rec_str(&w, 'I', identity_pem);
	rec_volume(&w, 0, "v");
	rec_fd(&w, 4, 0, 0, "/a");
	w.data[w.size - 1] = '\0'; /* the path is "/\0" */
	reject(&w, SCONE_ERR_MALFORMED, "fd path holds a NUL byte");

	/* Volume index out of range (also with no volume at all). */
	base(&w);
	rec_str(&w, 'I', identity_pem);
	rec_volume(&w, 0, "v");
	rec_volume(&w, 1, "w");
	rec_fd(&w, 7, 2, 0, "/f");
	reject(&w, SCONE_ERR_MALFORMED, "fd 7 names volume 2 of 2");
	base(&w);
	rec_fd(&w, 8, 0, 0, "/f");
	reject(&w, SCONE_ERR_MALFORMED, "fd 8 names volume 0 of 0");
}

/* ---- cross-record checks ---- */

TEST(test_missing_required)
{
	struct scone_wbuf w;

	start(&w);
	rec_str(&w, 'A', "a");
	rec_pin(&w);
	reject(&w, SCONE_ERR_MALFORMED, "configuration, CAS address or pin missing");
	start(&w);
	rec_str(&w, 'C', "{}");
	rec_pin(&w);
	reject(&w, SCONE_ERR_MALFORMED, "configuration, CAS address or pin missing");
	start(&w);
	rec_str(&w, 'C', "{}");
	rec_str(&w, 'A', "a");
	rec_str(&w, 'E', "A=b");
	reject(&w, SCONE_ERR_MALFORMED, "configuration, CAS address or pin missing");

	base(&w);
	rec_volume(&w, 1, "data");
	reject(&w, SCONE_ERR_MALFORMED, "volumes without the key");
}

/* ---- limits ---- */

TEST(test_env_count_limit)
{
	struct scone_wbuf w;
	struct scone_handover h;
	char e[32];

	base(&w);
	for (unsigned i = 0; i < MAX_ENV; i++) {
		snprintf(e, sizeof(e), "V%u=%u", i, i);
		rec_str(&w, 'E', e);
	}
	decode_ok(&w, &h);
	assert_int_equal(h.env_count, MAX_ENV);
	assert_string_equal(h.env[MAX_ENV - 1], "V4095=4095");
	scone_handover_free(&h);
	rec_str(&w, 'E', "ONE=more");
	reject(&w, SCONE_ERR_LIMIT, "more than 4096 environment entries");
}

TEST(test_volume_count_limit)
{
	struct scone_wbuf w;
	struct scone_handover h;

	base(&w);
	rec_str(&w, 'I', identity_pem);
	for (unsigned i = 0; i < MAX_VOLUMES; i++)
		rec_volume(&w, i & 1, "vol");
	decode_ok(&w, &h);
	assert_int_equal(h.volume_count, MAX_VOLUMES);
	scone_handover_free(&h);
	rec_volume(&w, 0, "vol");
	reject(&w, SCONE_ERR_LIMIT, "more than 64 volumes");
}

TEST(test_fd_count_limit)
{
	struct scone_wbuf w;

	base(&w);
	rec_str(&w, 'I', identity_pem);
	rec_volume(&w, 0, "v");
	for (unsigned i = 0; i <= 16384; i++)
		rec_fd(&w, i, 0, 0, "/f");
	reject(&w, SCONE_ERR_LIMIT, "more than 16384 fds");
}

TEST(test_oversize)
{
	uint8_t *p;
	size_t n = SCONE_HANDOVER_MAX + 1;

	assert_non_null(p = calloc(1, n));
	memcpy(p, "SCONEHO1", 8);
	reject_bytes(p, n, SCONE_ERR_TOO_LARGE, "handover: 33554433 bytes");
	free(p);
}

/* ---- the sealed transport (handover_io.h) ---- */

/* expr fails with code, and the error's detail contains detail ("" for any). */
#define assert_err(expr, code, detail)                                                                       \
	do {                                                                                                 \
		enum scone_err e_ = (expr);                                                                  \
		if (e_ != (code) || !strstr(scone_err_detail(), (detail)))                                   \
			fail_msg("%s: got %s (%s), expected %s with \"%s\"", #expr, scone_errname(e_),       \
				 scone_err_detail(), scone_errname(code), (detail));                         \
	} while (0)

static const char secret_text[] = "SCONE-HANDOVER-SECRET-0123456789";

static void send_secret_with(int share, int *memfd, int *keyfd)
{
	struct scone_wbuf w;

	scone_wbuf_init(&w, 1 << 20, 1);
	assert_ok(scone_wbuf_put(&w, secret_text, sizeof(secret_text)));
	assert_ok(scone_handover_send(&w, &share, share >= 0 ? 1 : 0, memfd, keyfd));
	scone_wbuf_free(&w);
	assert_true(*memfd > 2 && *keyfd > 2);
	assert_int_equal(fcntl(*memfd, F_GETFD) & FD_CLOEXEC, 0); /* the next program inherits both */
	assert_int_equal(fcntl(*keyfd, F_GETFD) & FD_CLOEXEC, 0);
}

static void send_secret(int *memfd, int *keyfd)
{
	send_secret_with(-1, memfd, keyfd);
}

TEST(test_transport_roundtrip)
{
	char fds[32];
	uint8_t *out;
	size_t n;
	int memfd, keyfd, pass[SCONE_HANDOVER_PASSED];

	send_secret(&memfd, &keyfd);
	snprintf(fds, sizeof(fds), "%d:%d", memfd, keyfd);
	assert_ok(scone_handover_receive(fds, &out, &n, pass));
	assert_int_equal(n, sizeof(secret_text));
	assert_memory_equal(out, secret_text, n);
	assert_int_equal(pass[0], -1);
	assert_int_equal(pass[1], -1);
	free(out);
	assert_int_equal(fcntl(memfd, F_GETFD), -1); /* both closed */
	assert_int_equal(fcntl(keyfd, F_GETFD), -1);
}

/* The volumes' shared state travels on the key socket, not as an fd /proc would open. */
TEST(test_transport_passes_shared_state)
{
	struct stat a, b;
	char fds[32];
	uint8_t *out;
	size_t n;
	int memfd, keyfd, share, pass[SCONE_HANDOVER_PASSED],
	    shared_state_fd = memfd_create("state", MFD_CLOEXEC);

	assert_true(shared_state_fd >= 0 && fstat(shared_state_fd, &a) == 0);
	send_secret_with(shared_state_fd, &memfd, &keyfd);
	close(shared_state_fd); /* (in flight: kept by the socket) */
	snprintf(fds, sizeof(fds), "%d:%d", memfd, keyfd);
	assert_ok(scone_handover_receive(fds, &out, &n, pass));
	free(out);
	share = pass[0];
	assert_int_equal(pass[1], -1);
	assert_true(share >= 0 && fstat(share, &b) == 0);
	assert_true(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
	assert_int_equal(fcntl(share, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	close(share);
}

/* The windows' mailbox (two socket ends) travels after the shared state, in order. */
TEST(test_transport_passes_mailbox)
{
	struct scone_wbuf w;
	struct stat a[3], b;
	char fds[32];
	uint8_t *out;
	size_t n;
	int memfd, keyfd, sv[2], pass[SCONE_HANDOVER_PASSED], sent[SCONE_HANDOVER_PASSED];

	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	sent[0] = memfd_create("state", MFD_CLOEXEC);
	sent[1] = sv[0];
	sent[2] = sv[1];
	for (int i = 0; i < 3; i++)
		assert_int_equal(fstat(sent[i], &a[i]), 0);
	scone_wbuf_init(&w, 1 << 20, 1);
	assert_ok(scone_wbuf_put(&w, secret_text, sizeof(secret_text)));
	assert_ok(scone_handover_send(&w, sent, 3, &memfd, &keyfd));
	scone_wbuf_free(&w);
	for (int i = 0; i < 3; i++)
		close(sent[i]); /* (in flight) */
	snprintf(fds, sizeof(fds), "%d:%d", memfd, keyfd);
	assert_ok(scone_handover_receive(fds, &out, &n, pass));
	free(out);
	for (int i = 0; i < 3; i++) {
		assert_true(pass[i] >= 0 && fstat(pass[i], &b) == 0);
		assert_true(a[i].st_ino == b.st_ino && a[i].st_dev == b.st_dev);
		assert_int_equal(fcntl(pass[i], F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	}
	assert_int_equal(write(pass[2], "m", 1), 1); /* the ends still make a pair */
	assert_int_equal(read(pass[1], fds, sizeof(fds)), 1);
	for (int i = 0; i < 3; i++)
		close(pass[i]);
	/* more than the handover takes: refused at the sender */
	scone_wbuf_init(&w, 1 << 20, 1);
	assert_ok(scone_wbuf_put(&w, secret_text, sizeof(secret_text)));
	assert_err(scone_handover_send(&w, sent, 4, &memfd, &keyfd), SCONE_ERR_INVALID, "fds to pass");
	scone_wbuf_free(&w);
}

/* What another process of the same user gets through /proc/PID/fd: ciphertext, and no key. */
TEST(test_transport_unreadable_through_proc)
{
	char path[64], buf[4096];
	ssize_t n;
	int memfd, keyfd, fd;

	send_secret(&memfd, &keyfd);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	assert_true((fd = open(path, O_RDONLY)) >= 0);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	assert_true(n > (ssize_t)sizeof(secret_text));
	assert_null(memmem(buf, (size_t)n, "SCONE-HANDOVER", 14));
	snprintf(path, sizeof(path), "/proc/self/fd/%d", keyfd);
	assert_int_equal(open(path, O_RDONLY), -1);
	assert_int_equal(errno, ENXIO);		    /* a socket cannot be opened through /proc */
	assert_int_equal(write(memfd, "x", 1), -1); /* sealed */
	close(memfd);
	close(keyfd);
}

TEST(test_transport_refuses_foreign_fds)
{
	uint8_t *out = NULL;
	size_t n;
	int p[2], memfd, keyfd, share[SCONE_HANDOVER_PASSED];
	char fds[32];

	assert_int_equal(pipe(p), 0);
	snprintf(fds, sizeof(fds), "%d:%d", p[0], p[1]);
	assert_err(scone_handover_receive(fds, &out, &n, share), SCONE_ERR_INVALID,
		   "does not name the runtime's handover");
	assert_true(fcntl(p[0], F_GETFD) >= 0 && fcntl(p[1], F_GETFD) >= 0); /* the program's fds stay open */
	static const char *const bad[] = {"", "3", "3:", ":4", "3:3", "-1:4", "a:b", "3:4x", "99999999999:4"};
	for (size_t i = 0; i < N_ELEMS(bad); i++)
		assert_err(scone_handover_receive(bad[i], &out, &n, share), SCONE_ERR_INVALID, "");
	close(p[0]);
	close(p[1]);
	/* The right memfd with another socket's key: refused, nothing released. */
	send_secret(&memfd, &keyfd);
	close(keyfd);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p), 0);
	assert_int_equal(write(p[0], "0123456789abcdef0123456789abcdef", 32), 32);
	snprintf(fds, sizeof(fds), "%d:%d", memfd, p[1]);
	assert_err(scone_handover_receive(fds, &out, &n, share), SCONE_ERR_AUTH, "does not authenticate");
	assert_null(out);
	close(p[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip_full),
	    cmocka_unit_test(test_roundtrip_minimal),
	    cmocka_unit_test(test_any_order),
	    cmocka_unit_test(test_free_reinitialises),
	    cmocka_unit_test(test_encode_over_ceiling),
	    cmocka_unit_test(test_bad_framing),
	    cmocka_unit_test(test_unknown_type),
	    cmocka_unit_test(test_duplicate_singletons),
	    cmocka_unit_test(test_bad_singletons),
	    cmocka_unit_test(test_bad_env),
	    cmocka_unit_test(test_encode_refuses),
	    cmocka_unit_test(test_bad_volume),
	    cmocka_unit_test(test_bad_fd),
	    cmocka_unit_test(test_missing_required),
	    cmocka_unit_test(test_env_count_limit),
	    cmocka_unit_test(test_volume_count_limit),
	    cmocka_unit_test(test_fd_count_limit),
	    cmocka_unit_test(test_oversize),
	    cmocka_unit_test(test_transport_roundtrip),
	    cmocka_unit_test(test_transport_passes_shared_state),
	    cmocka_unit_test(test_transport_passes_mailbox),
	    cmocka_unit_test(test_transport_unreadable_through_proc),
	    cmocka_unit_test(test_transport_refuses_foreign_fds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
