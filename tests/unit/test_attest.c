/*
 * test_attest.c - unit tests for attestation: the LAS wire and report
 * (src/attest/las_proto.c), the las evidence verifier, the measurement
 * algorithm and maps parser (src/attest/measure.c), the LAS's file-hash
 * cache, base32, CAS's claims matcher and gate (src/cas/attest_gate.c),
 * one-time passwords (src/cas/otp.c, RFC 6238 vectors, once per service
 * across store handles), the config request's evidence and OTP fields, and
 * the session rules of las mode and OTP secrets (line and column).
 *
 * Negative tests: every truncation and every flipped byte of a signed
 * report is refused; reports too old, from the future, for another key,
 * from an unlisted host or of another program are refused naming that.
 */
#include "helpers.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "attest/attest.h"
#include "attest/las_proto.h"
#include "attest/measure.h"
#include "cas/attest_gate.h"
#include "cas/cas.h"
#include "cas/otp.h"
#include "cas/store.h"
#include "las/las.h"
#include "lib/base32.h"
#include "lib/crypto.h"
#include "lib/hex.h"
#include "policy/policy.h"

#define TEST(name) static void name(void **state __attribute__((unused)))
#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define assert_detail(text)                                                                                  \
	do {                                                                                                 \
		if (!strstr(scone_err_detail(), (text)))                                                     \
			fail_msg("detail \"%s\" lacks \"%s\"", scone_err_detail(), (text));                  \
	} while (0)

/* ---------------- a LAS of our own: a key and signed reports ---------------- */

struct test_las {
	EVP_PKEY *key;
	uint8_t pub[32];
	uint8_t platform[32];
	char platform_hex[65];
};

static void las_new(struct test_las *l)
{
	EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
	size_t len = 32;

	memset(l, 0, sizeof(*l));
	assert_non_null(kc);
	assert_int_equal(EVP_PKEY_keygen_init(kc), 1);
	assert_int_equal(EVP_PKEY_keygen(kc, &l->key), 1);
	assert_int_equal(EVP_PKEY_get_raw_public_key(l->key, l->pub, &len), 1);
	EVP_PKEY_CTX_free(kc);
	scone_las_platform_id(l->pub, l->platform);
	scone_hex_encode(l->platform_hex, sizeof(l->platform_hex), l->platform, 32);
}

static void las_free(struct test_las *l)
{
	EVP_PKEY_free(l->key);
}

static void report_fill(struct scone_las_report *r, const struct test_las *l, const uint8_t spki[32],
			int64_t t)
{
	memset(r, 0, sizeof(*r));
	r->time = t;
	memset(r->measurement, 0x11, 32);
	memset(r->runtime_measurement, 0x22, 32);
	memcpy(r->report_data, spki, 32);
	r->uid = 1000;
	r->gid = 100;
	r->pid = 4242;
	r->files = 7;
	memset(r->report_id, 0x33, 16);
	snprintf(r->cgroup, sizeof(r->cgroup), "/system.slice/app.service");
	snprintf(r->exe, sizeof(r->exe), "/usr/bin/python3.11");
	memcpy(r->las_key, l->pub, 32);
}

/* The report signed by l, encoded into w (initialised here). */
static void report_sign(struct scone_las_report *r, const struct test_las *l, struct scone_wbuf *w)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	size_t len = 64;

	scone_wbuf_init(w, SCONE_LAS_BODY_MAX, 0);
	assert_ok(scone_las_report_tbs(r, w));
	assert_int_equal(EVP_DigestSignInit(md, NULL, NULL, NULL, l->key), 1);
	assert_int_equal(EVP_DigestSign(md, r->signature, &len, w->data, w->size), 1);
	EVP_MD_CTX_free(md);
	w->size = 0;
	assert_ok(scone_las_report_encode(r, w));
}

static const struct scone_evidence_ops *las_ops(void)
{
	const struct scone_evidence_ops *ops = scone_evidence_find("las");

	assert_non_null(ops);
	assert_int_equal(ops->type, SCONE_EVIDENCE_LAS);
	return ops;
}

/* ---------------- the wire ---------------- */

TEST(test_frames_and_requests)
{
	struct scone_las_request req = {.runtime_addr = 0x7f0012345678ull}, back;
	uint8_t body[SCONE_LAS_REQUEST_SIZE], hdr[SCONE_LAS_HEADER_SIZE];
	enum scone_las_kind kind;
	struct scone_wbuf w;
	size_t size;

	memset(req.report_data, 0xab, sizeof(req.report_data));
	memset(req.exec_binding, 0xcd, sizeof(req.exec_binding));
	scone_las_request_encode(&req, body);
	assert_ok(scone_las_request_decode(body, sizeof(body), &back));
	assert_memory_equal(&req, &back, sizeof(req));
	assert_int_equal(scone_las_request_decode(body, sizeof(body) - 1, &back), SCONE_ERR_MALFORMED);
	scone_wbuf_init(&w, 4096, 0);
	assert_ok(scone_las_frame(SCONE_LAS_MSG_REQUEST, body, sizeof(body), &w));
	assert_int_equal(w.size, SCONE_LAS_HEADER_SIZE + SCONE_LAS_REQUEST_SIZE);
	assert_ok(scone_las_header(w.data, &kind, &size));
	assert_int_equal(kind, SCONE_LAS_MSG_REQUEST);
	assert_int_equal(size, SCONE_LAS_REQUEST_SIZE);
	/* every header byte matters */
	for (size_t i = 0; i < SCONE_LAS_HEADER_SIZE; i++) {
		memcpy(hdr, w.data, sizeof(hdr));
		hdr[i] ^=
		    i < 4 ? 0x20 : (i == 4 ? 0x02 : (i == 5 ? 0x07 : (i < 8 ? 0x01 : (i == 9 ? 0x10 : 0))));
		if (i >= 8 && i != 9)
			continue; /* the size's other bytes are checked below */
		assert_int_not_equal(scone_las_header(hdr, &kind, &size), SCONE_ERR_OK);
	}
	memcpy(hdr, w.data, sizeof(hdr));
	scone_put_le32(hdr + 8, SCONE_LAS_BODY_MAX + 1);
	assert_int_equal(scone_las_header(hdr, &kind, &size), SCONE_ERR_TOO_LARGE);
	assert_int_equal(scone_las_frame(SCONE_LAS_MSG_REPORT, body, SCONE_LAS_BODY_MAX + 1, &w),
			 SCONE_ERR_TOO_LARGE);
	scone_wbuf_free(&w);
}

TEST(test_refusals)
{
	struct scone_wbuf w;
	enum scone_err code;
	char reason[SCONE_LAS_TEXT_MAX + 1];

	scone_wbuf_init(&w, 4096, 0);
	assert_ok(scone_las_refusal_encode(SCONE_ERR_ATTESTATION, "traced\n(by 7)", &w));
	assert_ok(scone_las_refusal_decode(w.data, w.size, &code, reason));
	assert_int_equal(code, SCONE_ERR_ATTESTATION);
	assert_string_equal(reason, "traced?(by 7)");
	/* an unknown code still means refused; trailing bytes do not pass */
	w.data[0] = 0xff;
	w.data[1] = 0xff;
	assert_ok(scone_las_refusal_decode(w.data, w.size, &code, reason));
	assert_int_equal(code, SCONE_ERR_ATTESTATION);
	assert_int_equal(scone_las_refusal_decode(w.data, w.size - 1, &code, reason), SCONE_ERR_MALFORMED);
	assert_ok(scone_wbuf_u8(&w, 'x'));
	assert_int_equal(scone_las_refusal_decode(w.data, w.size, &code, reason), SCONE_ERR_MALFORMED);
	scone_wbuf_free(&w);
}

TEST(test_addresses)
{
	char path[108];

	assert_ok(scone_las_addr_path(NULL, path, sizeof(path)));
	assert_string_equal(path, "/run/scone/las.sock");
	assert_ok(scone_las_addr_path("unix:/tmp/x.sock", path, sizeof(path)));
	assert_string_equal(path, "/tmp/x.sock");
	assert_int_equal(scone_las_addr_path("127.0.0.1:9000", path, sizeof(path)), SCONE_ERR_INVALID);
	assert_detail("no TCP listener");
	assert_int_equal(scone_las_addr_path("unix:relative", path, sizeof(path)), SCONE_ERR_INVALID);
	assert_int_equal(
	    scone_las_addr_path("unix:/a/very/long/path/that/does/not/fit/in/a/small/buffer", path, 16),
	    SCONE_ERR_NAME_TOO_LONG);
}

/* ---------------- reports and the verifier ---------------- */

TEST(test_report_roundtrip_and_verify)
{
	struct test_las l;
	struct scone_las_report r, back;
	struct scone_verify_opts o = {0};
	struct scone_claims c;
	struct scone_wbuf w;
	uint8_t spki[32];
	size_t tbs;

	las_new(&l);
	memset(spki, 0x5a, sizeof(spki));
	report_fill(&r, &l, spki, (int64_t)time(NULL));
	report_sign(&r, &l, &w);
	assert_ok(scone_las_report_decode(w.data, w.size, &back, &tbs));
	assert_memory_equal(&r, &back, sizeof(r));
	assert_int_equal(tbs, w.size - 64);
	assert_ok(las_ops()->verify(w.data, w.size, &o, &c));
	assert_int_equal(c.type, SCONE_EVIDENCE_LAS);
	assert_int_equal(c.measurement_size, 32);
	assert_memory_equal(c.measurement, r.measurement, 32);
	assert_memory_equal(c.signer, r.runtime_measurement, 32);
	assert_memory_equal(c.platform_id, l.platform, 32);
	assert_memory_equal(c.report_data, spki, 32);
	assert_string_equal(scone_claims_get(&c, "uid"), "1000");
	assert_string_equal(scone_claims_get(&c, "cgroup"), "/system.slice/app.service");
	assert_string_equal(scone_claims_get(&c, "exe"), "/usr/bin/python3.11");
	scone_wbuf_free(&w);
	las_free(&l);
}

TEST(test_report_every_byte)
{
	struct test_las l;
	struct scone_las_report r;
	struct scone_verify_opts o = {0};
	struct scone_claims c;
	struct scone_wbuf w;
	uint8_t spki[32] = {1}, *copy;

	las_new(&l);
	report_fill(&r, &l, spki, (int64_t)time(NULL));
	report_sign(&r, &l, &w);
	copy = malloc(w.size + 1);
	for (size_t n = 0; n < w.size; n++) /* every truncation */
		assert_int_not_equal(las_ops()->verify(w.data, n, &o, &c), SCONE_ERR_OK);
	memcpy(copy, w.data, w.size);
	copy[w.size] = 0;
	assert_int_equal(las_ops()->verify(copy, w.size + 1, &o, &c), SCONE_ERR_MALFORMED);
	for (size_t i = 0; i < w.size;
	     i++) { /* every byte flipped: refused (a changed key fails the signature too) */
		memcpy(copy, w.data, w.size);
		copy[i] ^= 0x01;
		assert_int_not_equal(las_ops()->verify(copy, w.size, &o, &c), SCONE_ERR_OK);
		assert_int_equal(c.type, 0); /* claims zeroed on failure */
	}
	free(copy);
	scone_wbuf_free(&w);
	las_free(&l);
}

TEST(test_report_age)
{
	struct test_las l;
	struct scone_las_report r;
	struct scone_verify_opts o = {.max_age_sec = 30};
	struct scone_claims c;
	struct scone_wbuf w;
	uint8_t spki[32] = {0};
	int64_t t = 1800000000;

	las_new(&l);
	report_fill(&r, &l, spki, t);
	report_sign(&r, &l, &w);
	o.at = t + 30;
	assert_ok(las_ops()->verify(w.data, w.size, &o, &c));
	o.at = t + 31;
	assert_int_equal(las_ops()->verify(w.data, w.size, &o, &c), SCONE_ERR_ATTESTATION);
	assert_detail("stale LAS report: made 31 s ago, accepted for 30 s");
	o.at = t - 31;
	assert_int_equal(las_ops()->verify(w.data, w.size, &o, &c), SCONE_ERR_ATTESTATION);
	assert_detail("from the future");
	o.at = t + 59;
	o.max_age_sec = 0; /* the default: 60 s */
	assert_ok(las_ops()->verify(w.data, w.size, &o, &c));
	scone_wbuf_free(&w);
	las_free(&l);
}

TEST(test_report_text_fields)
{
	struct test_las l;
	struct scone_las_report r;
	struct scone_wbuf w;
	uint8_t spki[32] = {0};

	las_new(&l);
	report_fill(&r, &l, spki, 1);
	r.exe[3] = '\n';
	scone_wbuf_init(&w, SCONE_LAS_BODY_MAX, 0);
	assert_int_equal(scone_las_report_tbs(&r, &w), SCONE_ERR_INVALID);
	scone_wbuf_free(&w);
	/* las_printable keeps the tail of long text and replaces what is not printable */
	{
		char big[1000], out[SCONE_LAS_TEXT_MAX + 1];
		memset(big, 'a', sizeof(big));
		big[999] = 'z';
		big[998] = '\t';
		las_printable(big, sizeof(big), out);
		assert_int_equal(strlen(out), SCONE_LAS_TEXT_MAX);
		assert_memory_equal(out, "...", 3);
		assert_string_equal(out + SCONE_LAS_TEXT_MAX - 2, "?z");
	}
	las_free(&l);
}

/* ---------------- the measurement ---------------- */

TEST(test_maps_parser)
{
	static const char maps[] =
	    "55d0c5a00000-55d0c5a02000 r--p 00000000 08:01 1234                       /usr/bin/prog\n"
	    "55d0c5a02000-55d0c5a09000 r-xp 00002000 08:01 1234                       /usr/bin/prog\n"
	    "7f0000000000-7f0000021000 rw-p 00000000 00:00 0 \n"
	    "7f1000000000-7f1000001000 r-xp 00000000 103:02 99                        /opt/my lib (deleted)\n"
	    "7ffd1d3f3000-7ffd1d3f5000 r-xp 00000000 00:00 0                          [vdso]\n"
	    "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]";
	struct scone_rbuf r;
	struct scone_map_line m;

	scone_rbuf_init(&r, maps, strlen(maps), "maps");
	assert_ok(scone_maps_next(&r, &m));
	assert_false(m.exec);
	assert_ok(scone_maps_next(&r, &m));
	assert_true(m.exec);
	assert_int_equal(m.start, 0x55d0c5a02000ull);
	assert_int_equal(m.inode, 1234);
	assert_int_equal(m.dev_major, 8);
	assert_int_equal(m.path_len, strlen("/usr/bin/prog"));
	assert_ok(scone_maps_next(&r, &m));
	assert_int_equal(m.path_len, 0);
	assert_ok(scone_maps_next(&r, &m));
	assert_int_equal(m.dev_major, 0x103);
	assert_memory_equal(m.path, "/opt/my lib (deleted)", m.path_len);
	assert_ok(scone_maps_next(&r, &m));
	assert_ok(scone_maps_next(&r, &m));
	assert_int_equal(m.start, 0xffffffffff600000ull);
	assert_int_equal(scone_maps_next(&r, &m), SCONE_ERR_NOT_FOUND);
	static const char *const bad[] = {"zz-1 r-xp 0 00:00 0\n", "10-5 r-xp 0 00:00 0\n",
					  "1-2 r-x 0 00:00 0\n",   "1-2 r-xp 0 0000 0\n",
					  "1-2 r-xp 0 00:00\n",	   "11111111111111111-2 r-xp 0 00:00 0\n"};
	for (size_t i = 0; i < N_ELEMS(bad); i++) {
		scone_rbuf_init(&r, bad[i], strlen(bad[i]), "maps");
		assert_int_equal(scone_maps_next(&r, &m), SCONE_ERR_MALFORMED);
	}
}

TEST(test_measurement_combine)
{
	uint8_t exe[32], files[4][32], again[4][32], a[32], b[32];

	memset(exe, 1, 32);
	for (int i = 0; i < 4; i++)
		memset(files[i], 0x10 * (i + 1), 32);
	memcpy(again[0], files[3], 32); /* another order, and a duplicate */
	memcpy(again[1], files[1], 32);
	memcpy(again[2], files[0], 32);
	memcpy(again[3], files[2], 32);
	scone_measurement_combine(exe, files, 4, a);
	scone_measurement_combine(exe, again, 4, b);
	assert_memory_equal(a, b, 32);
	memcpy(again[3], again[0], 32); /* files[2] gone, files[3] twice: another set */
	scone_measurement_combine(exe, again, 4, b);
	assert_memory_not_equal(a, b, 32);
	for (int i = 0; i < 4; i++)
		memset(files[i], 0x10 * (i + 1), 32);
	exe[0] ^= 1; /* the same files run as another program */
	scone_measurement_combine(exe, files, 4, b);
	assert_memory_not_equal(a, b, 32);
}

static enum scone_err via_map_files(void *ctx, int proc_fd, const char *name, const struct scone_map_line *m,
				    uint8_t out[32])
{
	int fd = openat(proc_fd, name, O_RDONLY | O_CLOEXEC);
	enum scone_err err;

	(void)ctx;
	(void)m;
	if (fd < 0)
		return scone_err_set(SCONE_ERR_PERMISSION, "%s", name);
	err = scone_measure_fd(fd, out, NULL);
	close(fd);
	return err;
}

/* The runtime's self-measurement and the LAS's way through map_files agree. */
TEST(test_measure_self_matches_map_files)
{
	struct scone_measure_result a, b;
	struct scone_measure_io io = {.file_hash = via_map_files,
				      .addr = (uint64_t)(uintptr_t)&via_map_files};
	int proc_fd = open("/proc/self", O_RDONLY | O_DIRECTORY);

	assert_ok(scone_measure_self(NULL, NULL, &a));
	if (geteuid() != 0) {
		close(proc_fd);
		skip(); /* map_files needs CAP_SYS_ADMIN */
	}
	assert_ok(scone_measure_process(proc_fd, &io, &b));
	close(proc_fd);
	assert_memory_equal(a.measurement, b.measurement, 32);
	assert_int_equal(a.files, b.files);
	assert_true(a.files >= 3); /* this program, libc, the loader ... */
	assert_true(b.addr_found); /* this test binary holds via_map_files */
	assert_memory_equal(b.addr_hash, a.exe_hash, 32);
}

TEST(test_cache)
{
	struct las_cache *c = las_cache_new(16);
	struct las_file_id id = {.dev = 1, .ino = 2, .size = 3}, other;
	uint8_t h[32], got[32];
	uint64_t hits, misses;

	assert_non_null(c);
	memset(h, 7, 32);
	assert_false(las_cache_get(c, &id, got));
	las_cache_put(c, &id, h);
	assert_true(las_cache_get(c, &id, got));
	assert_memory_equal(got, h, 32);
	other = id;
	other.ctime.tv_nsec = 1; /* written since: a miss */
	assert_false(las_cache_get(c, &other, got));
	las_cache_put(c, &other, h); /* replaces the old version in place */
	assert_false(las_cache_get(c, &id, got));
	for (ino_t i = 100; i < 200; i++) { /* fills and starts over, never wrong */
		other.ino = i;
		las_cache_put(c, &other, h);
		assert_true(las_cache_get(c, &other, got));
	}
	las_cache_counts(c, &hits, &misses);
	assert_true(hits >= 101 && misses == 3);
	las_cache_free(c);
}

/* ---------------- base32 and TOTP ---------------- */

TEST(test_base32)
{
	static const struct {
		const char *plain, *b32;
	} v[] = {{"", ""},
		 {"f", "MY"},
		 {"fo", "MZXQ"},
		 {"foo", "MZXW6"},
		 {"foob", "MZXW6YQ"},
		 {"fooba", "MZXW6YTB"},
		 {"foobar", "MZXW6YTBOI"}};
	char out[32];
	uint8_t dec[16];
	size_t n;

	for (size_t i = 0; i < N_ELEMS(v); i++) {
		scone_base32_encode(out, sizeof(out), (const uint8_t *)v[i].plain, strlen(v[i].plain));
		assert_string_equal(out, v[i].b32);
		assert_ok(scone_base32_decode(v[i].b32, strlen(v[i].b32), dec, sizeof(dec), &n, "t"));
		assert_int_equal(n, strlen(v[i].plain));
		assert_memory_equal(dec, v[i].plain, n);
	}
	assert_ok(
	    scone_base32_decode("mzxw6ytboi======", 16, dec, sizeof(dec), &n, "t")); /* padded, lower case */
	assert_int_equal(n, 6);
	assert_int_equal(scone_base32_decode("MZXW6YTBOI=", 11, dec, sizeof(dec), &n, "t"),
			 SCONE_ERR_MALFORMED);
	assert_int_equal(scone_base32_decode("MZX", 3, dec, sizeof(dec), &n, "t"), SCONE_ERR_MALFORMED);
	assert_int_equal(scone_base32_decode("MZ1W", 4, dec, sizeof(dec), &n, "t"), SCONE_ERR_MALFORMED);
	assert_int_equal(scone_base32_decode("MZ=W", 4, dec, sizeof(dec), &n, "t"), SCONE_ERR_MALFORMED);
	assert_int_equal(scone_base32_decode("MZ", 2, dec, 0, &n, "t"), SCONE_ERR_TOO_LARGE);
	assert_int_equal(scone_base32_decode("MZ", 2, dec, 0, &n, "t"), SCONE_ERR_TOO_LARGE);
	assert_int_equal(scone_base32_decode("M7", 2, dec, sizeof(dec), &n, "t"),
			 SCONE_ERR_MALFORMED); /* stray bits */
}

TEST(test_totp_rfc6238)
{
	/* RFC 6238 appendix B, SHA-1, the last 6 of its 8 digits */
	static const struct {
		uint64_t t;
		const char *code;
	} v[] = {{59, "287082"},	 {1111111109, "081804"}, {1111111111, "050471"},
		 {1234567890, "005924"}, {2000000000, "279037"}, {20000000000ull, "353130"}};
	const uint8_t *key = (const uint8_t *)"12345678901234567890";
	char code[7];

	for (size_t i = 0; i < N_ELEMS(v); i++) {
		cas_hotp(key, 20, v[i].t / 30, code);
		assert_string_equal(code, v[i].code);
	}
}

struct store_fx {
	char dir[64], path[96];
	uint8_t key[32];
	struct scone_store *st;
};

static void store_open(struct store_fx *f)
{
	snprintf(f->dir, sizeof(f->dir), "/tmp/scone-test-attest.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/cas.db", f->dir);
	memset(f->key, 0x42, 32);
	assert_ok(scone_store_open_sqlite(f->path, f->key, &f->st));
}

static void store_close(struct store_fx *f)
{
	char cmd[160];

	f->st->ops->close(f->st);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
}

TEST(test_otp_check)
{
	const uint8_t *key = (const uint8_t *)"12345678901234567890";
	struct store_fx f;
	char now_code[7], prev_code[7];
	int64_t now = (int64_t)time(NULL); /* the store forgets records by the real clock */

	store_open(&f);
	cas_hotp(key, 20, (uint64_t)now / 30, now_code);
	cas_hotp(key, 20, (uint64_t)now / 30 - 1, prev_code);
	assert_int_equal(cas_otp_check(f.st, "s", "svc", key, 20, "", now), SCONE_ERR_ATTESTATION);
	assert_detail("one-time password missing");
	assert_int_equal(cas_otp_check(f.st, "s", "svc", key, 20, "000000", now), SCONE_ERR_ATTESTATION);
	assert_detail("one-time password is wrong");
	assert_ok(cas_otp_check(f.st, "s", "svc", key, 20, now_code, now));
	assert_int_equal(cas_otp_check(f.st, "s", "svc", key, 20, now_code, now), SCONE_ERR_ATTESTATION);
	assert_detail("already used");
	assert_int_equal(cas_otp_check(f.st, "s", "svc", key, 20, now_code, now + 30), SCONE_ERR_ATTESTATION);
	assert_ok(cas_otp_check(f.st, "s", "other", key, 20, now_code, now)); /* once per service */
	assert_ok(cas_otp_check(f.st, "s", "svc", key, 20, prev_code, now));  /* the step before: skew */
	store_close(&f);
}

struct race {
	const char *path;
	const uint8_t *key;
	int ok, conflict;
};

static void *race_one(void *arg)
{
	struct race *r = arg;
	struct scone_store *st;
	enum scone_err err;

	assert_ok(scone_store_open_sqlite(r->path, r->key, &st));
	err = st->ops->use_once(st, "otp", "racing-key@1", (int64_t)time(NULL) + 60);
	__atomic_add_fetch(err == SCONE_ERR_OK ? &r->ok : &r->conflict, 1, __ATOMIC_SEQ_CST);
	st->ops->close(st);
	return NULL;
}

/* Eight handles (as CAS workers or replicas have) race for one use: exactly one wins. */
TEST(test_use_once_across_handles)
{
	struct store_fx f;
	struct race r = {0};
	pthread_t t[8];

	store_open(&f);
	r.path = f.path;
	r.key = f.key;
	for (int i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&t[i], NULL, race_one, &r), 0);
	for (int i = 0; i < 8; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(r.ok, 1);
	assert_int_equal(r.conflict, 7);
	/* an expired record is forgotten */
	assert_ok(f.st->ops->use_once(f.st, "otp", "old@1", 1));
	assert_ok(f.st->ops->use_once(f.st, "otp", "old@1", 1));
	assert_int_equal(f.st->ops->use_once(f.st, "otp", "", 1), SCONE_ERR_INVALID);
	store_close(&f);
}

TEST(test_otp_uri)
{
	const uint8_t key[20] = "12345678901234567890";
	char uri[512];

	assert_ok(cas_otp_uri(key, 20, "team/app", "web", uri, sizeof(uri)));
	assert_string_equal(uri,
			    "otpauth://totp/scone:team%2Fapp%2Fweb?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
			    "&issuer=scone&algorithm=SHA1&digits=6&period=30");
	assert_int_equal(cas_otp_uri(key, 20, "a", "b", uri, 20), SCONE_ERR_TOO_LARGE);
}

/* ---------------- sessions: las mode and OTP secrets ---------------- */

static struct scone_session *parse(const char *yaml, struct scone_policy_diag *d)
{
	struct scone_session *s = NULL;

	memset(d, 0, sizeof(*d));
	if (scone_session_parse(yaml, strlen(yaml), &s, d) != SCONE_ERR_OK)
		return NULL;
	return s;
}

static void expect_policy_error(const char *yaml, int line, int col, const char *text)
{
	struct scone_policy_diag d;
	struct scone_session *s = parse(yaml, &d);

	assert_null(s);
	for (size_t i = 0; i < d.count; i++) {
		if (strstr(d.errors[i].message, text)) {
			if (d.errors[i].pos.line != line || d.errors[i].pos.column != col)
				fail_msg("\"%s\" at %d:%d, expected %d:%d", text, d.errors[i].pos.line,
					 d.errors[i].pos.column, line, col);
			scone_policy_diag_free(&d);
			return;
		}
	}
	for (size_t i = 0; i < d.count; i++)
		printf("  %d:%d %s\n", d.errors[i].pos.line, d.errors[i].pos.column, d.errors[i].message);
	fail_msg("no error \"%s\"", text);
}

#define HEX64 "1111111111111111111111111111111111111111111111111111111111111111"
#define HEX64B "2222222222222222222222222222222222222222222222222222222222222222"
#define LAS_HEAD "name: s\nversion: \"0.3\"\nsecurity:\n  attestation:\n    mode: las\n"

#define HEX96 HEX64 "11111111111111111111111111111111"
#define HW_HEAD "name: s\nversion: \"0.3\"\nservices:\n  - name: a\n    attestation:\n"

/* The TDX and SNP factors of a variant: one kind per variant, each with its measurement. */
TEST(test_session_vm_factors)
{
	struct scone_policy_diag d;
	struct scone_session *s =
	    parse(HW_HEAD "      - mrtd: " HEX96 "\n        rtmr2: " HEX96 "\n      - measurement: [" HEX96
			  "]\n        host_data: " HEX64 "\n",
		  &d);
	const struct scone_service *svc;

	assert_non_null(s);
	scone_policy_diag_free(&d);
	svc = scone_session_service(s, "a");
	assert_int_equal(svc->n_variants, 2);
	assert_int_equal(svc->variants[0].mrtds.n, 1);
	assert_null(svc->variants[0].rtmr[0]);
	assert_string_equal(svc->variants[0].rtmr[2], HEX96);
	assert_int_equal(svc->variants[1].snp_measurements.n, 1);
	assert_string_equal(svc->variants[1].host_data, HEX64);
	scone_session_free(s);
	expect_policy_error(HW_HEAD "      - mrenclave: " HEX64 "\n        mrtd: " HEX96 "\n", 6, 9,
			    "a variant is for one kind of TEE");
	expect_policy_error(HW_HEAD "      - rtmr0: " HEX96 "\n", 6, 9, "a TDX variant needs mrtd");
	expect_policy_error(HW_HEAD "      - host_data: " HEX64 "\n", 6, 9,
			    "an SEV-SNP variant needs measurement");
	expect_policy_error(HW_HEAD "      - mrtd: " HEX64 "\n", 6, 15, "expected 96 hex digits");
	expect_policy_error(HW_HEAD "      - measurement: " HEX96 "\n        host_data: " HEX96 "\n", 7, 20,
			    "expected 64 hex digits");
	expect_policy_error(LAS_HEAD "services:\n  - name: a\n    attestation:\n      mrtd: " HEX96
				     "\n      platforms: [" HEX64 "]\n",
			    9, 7, "TDX and SEV-SNP factors");
}

TEST(test_session_las_rules)
{
	struct scone_policy_diag d;
	struct scone_session *s;

	s = parse(LAS_HEAD "services:\n  - name: a\n    attestation:\n      mrenclave: [" HEX64
			   "]\n      platforms: [" HEX64B "]\n",
		  &d);
	assert_non_null(s);
	assert_int_equal(s->mode, SCONE_ATTEST_LAS);
	assert_string_equal(scone_attestation_mode_name(s->mode), "las");
	scone_session_free(s);
	scone_policy_diag_free(&d);
	/* a service without measurements: line and column of the service */
	expect_policy_error(LAS_HEAD "services:\n  - name: a\n    command: x\n", 7, 5,
			    "the service has no attestation");
	/* a variant without platforms */
	expect_policy_error(LAS_HEAD "services:\n  - name: a\n    attestation:\n      mrenclave: [" HEX64
				     "]\n",
			    9, 7, "in las mode a variant needs platforms");
	/* a signer is an SGX factor */
	expect_policy_error(LAS_HEAD "services:\n  - name: a\n    attestation:\n      mrsigner: " HEX64
				     "\n      isvprodid: 1\n      platforms: [" HEX64B "]\n",
			    9, 7, "SGX factors");
	/* service-level platforms count for every variant */
	s = parse(LAS_HEAD "services:\n  - name: a\n    mrenclaves: [" HEX64 "]\n    platforms: [" HEX64B
			   "]\n",
		  &d);
	assert_non_null(s);
	scone_session_free(s);
	scone_policy_diag_free(&d);
}

#define OTP_HEAD "name: s\nversion: \"0.3\"\nsecurity:\n  attestation:\n    mode: none\n"

TEST(test_session_otp_secrets)
{
	struct scone_policy_diag d;
	struct scone_session *s;

	s = parse("name: s\nversion: \"0.3\"\nsecurity:\n  attestation:\n    mode: none\n"
		  "    one_time_password_shared_secret: GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\n"
		  "services:\n  - name: a\n  - name: b\n    one_time_password_shared_secret: "
		  "$$SCONE::otp:base32nopad$$\n"
		  "secrets:\n  - name: otp\n    kind: binary\n    size: 20\n",
		  &d);
	assert_non_null(s);
	assert_string_equal(scone_service_otp_secret(s, scone_session_service(s, "a")),
			    "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
	assert_string_equal(scone_service_otp_secret(s, scone_session_service(s, "b")),
			    "$$SCONE::otp:base32nopad$$");
	scone_session_free(s);
	scone_policy_diag_free(&d);
	expect_policy_error(OTP_HEAD "    one_time_password_shared_secret: JBSWY3DPEHPK3PXP\n", 6, 38,
			    "at least 16");
	expect_policy_error(OTP_HEAD "    one_time_password_shared_secret: not!base32\n", 6, 38,
			    "is not base32");
	expect_policy_error(OTP_HEAD
			    "services:\n  - name: a\n    one_time_password_shared_secret: $$SCONE::otp$$\n"
			    "secrets:\n  - name: otp\n    kind: binary\n",
			    8, 38, "write $$SCONE::otp:base32nopad$$");
	expect_policy_error(OTP_HEAD
			    "services:\n  - name: a\n    one_time_password_shared_secret: "
			    "x$$SCONE::otp:base32nopad$$\nsecrets:\n  - name: otp\n    kind: binary\n",
			    8, 38, "exactly one");
	expect_policy_error(
	    OTP_HEAD "services:\n  - name: a\n    one_time_password_shared_secret: "
		     "$$SCONE::otp:base32nopad$$\nsecrets:\n  - name: otp\n    kind: binary\n    size: 8\n",
	    8, 38, "fewer than 16 bytes");
	expect_policy_error(OTP_HEAD "services:\n  - name: a\n    one_time_password_shared_secret: "
				     "$$SCONE::nope:base32nopad$$\n",
			    8, 38, "no secret named 'nope'");
}

/* ---------------- CAS: the matcher and the gate ---------------- */

static struct scone_session *las_session(const char *platform_hex, const char *meas_hex)
{
	char yaml[1024];
	struct scone_policy_diag d;
	struct scone_session *s;

	snprintf(yaml, sizeof(yaml),
		 LAS_HEAD "services:\n  - name: app\n    attestation:\n      - mrenclave: [%s, " HEX64B "]\n"
			  "        platforms: [%s]\n",
		 meas_hex, platform_hex);
	s = parse(yaml, &d);
	scone_policy_diag_free(&d);
	assert_non_null(s);
	return s;
}

TEST(test_matcher)
{
	struct test_las l, other;
	struct scone_las_report r;
	struct scone_verify_opts o = {0};
	struct scone_claims c;
	struct scone_wbuf w;
	struct scone_session *s;
	const struct scone_service *svc;
	uint8_t spki[32], wrong[32];
	char meas[65];

	las_new(&l);
	las_new(&other);
	memset(spki, 9, 32);
	memset(wrong, 8, 32);
	report_fill(&r, &l, spki, (int64_t)time(NULL));
	scone_hex_encode(meas, sizeof(meas), r.measurement, 32);
	report_sign(&r, &l, &w);
	assert_ok(las_ops()->verify(w.data, w.size, &o, &c));
	s = las_session(l.platform_hex, meas);
	svc = scone_session_service(s, "app");
	assert_ok(cas_attest_match(svc, &c, spki));
	assert_int_equal(cas_attest_match(svc, &c, wrong), SCONE_ERR_ATTESTATION);
	assert_detail("wrong report data");
	c.report_data[40] = 1;
	assert_int_equal(cas_attest_match(svc, &c, spki), SCONE_ERR_ATTESTATION);
	assert_detail("second half must be zero");
	c.report_data[40] = 0;
	c.measurement[0] ^= 1;
	assert_int_equal(cas_attest_match(svc, &c, spki), SCONE_ERR_ATTESTATION);
	assert_detail("measurement mismatch");
	assert_detail(meas); /* the expected value is named ... */
	scone_hex_encode(meas, sizeof(meas), c.measurement, 32);
	assert_detail(meas); /* ... and the one measured */
	scone_session_free(s);
	s = las_session(other.platform_hex, HEX64);
	svc = scone_session_service(s, "app");
	assert_int_equal(cas_attest_match(svc, &c, spki), SCONE_ERR_ATTESTATION);
	assert_detail("unknown platform");
	assert_detail(l.platform_hex);
	scone_session_free(s);
	scone_wbuf_free(&w);
	las_free(&l);
	las_free(&other);
}

TEST(test_gate)
{
	struct test_las l;
	struct scone_las_report r;
	struct scone_claims c;
	struct scone_wbuf w;
	struct scone_session *s, *none, *hw;
	struct scone_policy_diag d;
	struct cas_config_request cr = {.session = "s", .service = "app", .evidence_type = "las"};
	struct cas_attest_opts o = {0};
	uint8_t spki[32];
	char meas[65];

	las_new(&l);
	memset(spki, 9, 32);
	report_fill(&r, &l, spki, (int64_t)time(NULL));
	scone_hex_encode(meas, sizeof(meas), r.measurement, 32);
	report_sign(&r, &l, &w);
	s = las_session(l.platform_hex, meas);
	cr.evidence = w.data;
	cr.evidence_size = w.size;
	assert_ok(cas_attest_gate(&o, s, scone_session_service(s, "app"), &cr, spki, &c));
	/* stale */
	o.at = (int64_t)time(NULL) + 120;
	assert_int_equal(cas_attest_gate(&o, s, scone_session_service(s, "app"), &cr, spki, &c),
			 SCONE_ERR_ATTESTATION);
	assert_detail("stale LAS report");
	o.at = 0;
	/* forged */
	w.data[20] ^= 1;
	assert_int_equal(cas_attest_gate(&o, s, scone_session_service(s, "app"), &cr, spki, &c),
			 SCONE_ERR_ATTESTATION);
	assert_detail("forged or altered");
	w.data[20] ^= 1;
	/* no evidence: the runtime's note is passed on */
	snprintf(cr.evidence_type, sizeof(cr.evidence_type), "none");
	snprintf(cr.evidence_note, sizeof(cr.evidence_note), "LAS refused: the process is being traced");
	assert_int_equal(cas_attest_gate(&o, s, scone_session_service(s, "app"), &cr, spki, &c),
			 SCONE_ERR_ATTESTATION);
	assert_detail(
	    "requires las evidence, the runtime presented none (the runtime says: LAS refused: the process "
	    "is being traced)");
	/* mode none takes anything; hardware mode refuses las evidence, saying what to do */
	none = parse(
	    "name: n\nversion: \"0.3\"\nsecurity: {attestation: {mode: none}}\nservices: [{name: app}]\n",
	    &d);
	scone_policy_diag_free(&d);
	assert_ok(cas_attest_gate(&o, none, scone_session_service(none, "app"), &cr, spki, &c));
	hw = parse("name: h\nversion: \"0.3\"\nservices: [{name: app, mrenclaves: [" HEX64 "]}]\n", &d);
	scone_policy_diag_free(&d);
	assert_non_null(hw);
	snprintf(cr.evidence_type, sizeof(cr.evidence_type), "las");
	assert_int_equal(cas_attest_gate(&o, hw, scone_session_service(hw, "app"), &cr, spki, &c),
			 SCONE_ERR_ATTESTATION);
	assert_detail("hardware");
	scone_session_free(hw);
	scone_session_free(none);
	scone_session_free(s);
	scone_wbuf_free(&w);
	las_free(&l);
}

TEST(test_config_request_fields)
{
	struct cas_config_request cr;
	const char *ok = "{\"config_id\": \"team/app/web@123456\", \"evidence\": {\"type\": \"las\", "
			 "\"data\": \"AAEC\", \"note\": \"no\\nLAS\"}}";

	assert_ok(cas_parse_config_request(ok, strlen(ok), &cr));
	assert_string_equal(cr.session, "team/app");
	assert_string_equal(cr.service, "web");
	assert_string_equal(cr.otp, "123456");
	assert_string_equal(cr.evidence_type, "las");
	assert_int_equal(cr.evidence_size, 3);
	assert_int_equal(cr.evidence[2], 2);
	assert_string_equal(cr.evidence_note, "no?LAS");
	cas_config_request_free(&cr);
	static const char *const bad[] = {
	    "{\"config_id\": \"a/b@12345\"}",
	    "{\"config_id\": \"a/b@12345x\"}",
	    "{\"config_id\": \"a/b@\"}",
	    "{\"config_id\": \"a/b\", \"evidence\": {\"type\": \"las\", \"data\": \"AAE\"}}",
	    "{\"config_id\": \"a/b\", \"evidence\": {\"type\": \"las\", \"data\": \"AA=C\"}}",
	    "{\"config_id\": \"a/b\", \"evidence\": {\"type\": \"las\", \"data\": \"AAF=\"}}", /* bits left
												  over */
	    "{\"config_id\": \"a/b\", \"evidence\": {\"type\": \"las\", \"data\": \"AA==AAEC\"}}",
	    "{\"config_id\": \"a/b\", \"evidence\": {\"type\": \"las\", \"data\": \"AA EC\"}}",
	    "{\"config_id\": \"a/b\", \"evidence\": {\"type\": \"las\", \"data\": \"\"}}",
	    "{\"config_id\": \"a/b\", \"evidence\": {\"type\": \"las\", \"data\": 5}}",
	    "{\"config_id\": \"a/b\", \"evidence\": {\"type\": \"las\", \"extra\": 1}}",
	};
	for (size_t i = 0; i < N_ELEMS(bad); i++) {
		assert_int_not_equal(cas_parse_config_request(bad[i], strlen(bad[i]), &cr), SCONE_ERR_OK);
		assert_null(cr.evidence);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_frames_and_requests),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_addresses),
	    cmocka_unit_test(test_report_roundtrip_and_verify),
	    cmocka_unit_test(test_report_every_byte),
	    cmocka_unit_test(test_report_age),
	    cmocka_unit_test(test_report_text_fields),
	    cmocka_unit_test(test_maps_parser),
	    cmocka_unit_test(test_measurement_combine),
	    cmocka_unit_test(test_measure_self_matches_map_files),
	    cmocka_unit_test(test_cache),
	    cmocka_unit_test(test_base32),
	    cmocka_unit_test(test_totp_rfc6238),
	    cmocka_unit_test(test_otp_check),
	    cmocka_unit_test(test_use_once_across_handles),
	    cmocka_unit_test(test_otp_uri),
	    cmocka_unit_test(test_session_las_rules),
	    cmocka_unit_test(test_session_vm_factors),
	    cmocka_unit_test(test_session_otp_secrets),
	    cmocka_unit_test(test_matcher),
	    cmocka_unit_test(test_gate),
	    cmocka_unit_test(test_config_request_fields),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
