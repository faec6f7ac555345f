/*
 * las_proto.c - encoding and strict decoding of the LAS messages
 * (las_proto.h). The report layout, all integers little endian:
 *
 *   "SLASRPT1"                        8   magic and layout version
 *   time                              8   i64 unix seconds
 *   measurement                      32
 *   runtime_measurement              32
 *   report_data                      64
 *   uid gid pid files anon_exec      20   u32 each
 *   report_id                        16
 *   cgroup length, cgroup          2 + n  printable ASCII, n <= 480
 *   exe length, exe                2 + n  printable ASCII, n <= 480
 *   las_key                          32   Ed25519 public key
 *   signature                        64   Ed25519 over every byte above
 */
#include "attest/las_proto.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "lib/crypto.h"

#define REPORT_MAGIC "SLASRPT1"
#define EXEC_BINDING_DOMAIN "scone-las exec v1"

enum scone_err scone_las_frame(enum scone_las_kind kind, const uint8_t *body, size_t size, struct scone_wbuf *out)
{
	if (size > SCONE_LAS_BODY_MAX)
		return scone_err_set(SCONE_ERR_TOO_LARGE, "LAS message: %zu bytes, limit %d", size, SCONE_LAS_BODY_MAX);
	SCONE_TRY(scone_wbuf_put(out, "SLAS", 4));
	SCONE_TRY(scone_wbuf_u8(out, SCONE_LAS_VERSION));
	SCONE_TRY(scone_wbuf_u8(out, (uint8_t)kind));
	SCONE_TRY(scone_wbuf_u16(out, 0));
	SCONE_TRY(scone_wbuf_u32(out, (uint32_t)size));
	return size ? scone_wbuf_put(out, body, size) : SCONE_ERR_OK;
}

enum scone_err scone_las_header(const uint8_t hdr[SCONE_LAS_HEADER_SIZE], enum scone_las_kind *kind, size_t *body_size)
{
	struct scone_rbuf r;
	uint8_t magic[4], version, k;
	uint16_t reserved;
	uint32_t size;

	scone_rbuf_init(&r, hdr, SCONE_LAS_HEADER_SIZE, "LAS message header");
	SCONE_TRY(scone_rbuf_bytes(&r, "magic", magic, 4));
	SCONE_TRY(scone_rbuf_u8(&r, "version", &version));
	SCONE_TRY(scone_rbuf_u8(&r, "kind", &k));
	SCONE_TRY(scone_rbuf_u16(&r, "reserved", &reserved));
	SCONE_TRY(scone_rbuf_u32(&r, "size", &size));
	if (memcmp(magic, "SLAS", 4) != 0)
		return scone_err_set(SCONE_ERR_MALFORMED, "LAS message header: bad magic (not a LAS peer?)");
	if (version != SCONE_LAS_VERSION)
		return scone_err_set(SCONE_ERR_UNSUPPORTED, "LAS message header: protocol version %u, this side speaks %d",
				     version, SCONE_LAS_VERSION);
	if (k < SCONE_LAS_MSG_REQUEST || k > SCONE_LAS_MSG_REFUSAL || reserved != 0)
		return scone_err_set(SCONE_ERR_MALFORMED, "LAS message header: unknown kind %u or reserved bits set", k);
	if (size > SCONE_LAS_BODY_MAX)
		return scone_err_set(SCONE_ERR_TOO_LARGE, "LAS message header: body of %u bytes, limit %d", size,
				     SCONE_LAS_BODY_MAX);
	*kind = (enum scone_las_kind)k;
	*body_size = size;
	return SCONE_ERR_OK;
}

void scone_las_request_encode(const struct scone_las_request *r, uint8_t out[SCONE_LAS_REQUEST_SIZE])
{
	memcpy(out, r->report_data, SCONE_REPORT_DATA_SIZE);
	memcpy(out + 64, r->exec_binding, 32);
	scone_put_le64(out + 96, r->runtime_addr);
}

enum scone_err scone_las_request_decode(const uint8_t *body, size_t size, struct scone_las_request *out)
{
	struct scone_rbuf r;

	memset(out, 0, sizeof(*out));
	if (size != SCONE_LAS_REQUEST_SIZE)
		return scone_err_set(SCONE_ERR_MALFORMED, "LAS request: %zu bytes, expected %d", size,
				     SCONE_LAS_REQUEST_SIZE);
	scone_rbuf_init(&r, body, size, "LAS request");
	SCONE_TRY(scone_rbuf_bytes(&r, "report_data", out->report_data, SCONE_REPORT_DATA_SIZE));
	SCONE_TRY(scone_rbuf_bytes(&r, "exec_binding", out->exec_binding, 32));
	return scone_rbuf_u64(&r, "runtime_addr", &out->runtime_addr);
}

/* ---- reports ---- */

static bool printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

static enum scone_err put_text(struct scone_wbuf *w, const char *what, const char *s)
{
	size_t n = strnlen(s, SCONE_LAS_TEXT_MAX + 1);

	if (n > SCONE_LAS_TEXT_MAX || !printable(s, n))
		return scone_err_set(SCONE_ERR_INVALID, "LAS report: %s is longer than %d bytes or not printable ASCII",
				     what, SCONE_LAS_TEXT_MAX);
	SCONE_TRY(scone_wbuf_u16(w, (uint16_t)n));
	return scone_wbuf_put(w, s, n);
}

enum scone_err scone_las_report_tbs(const struct scone_las_report *r, struct scone_wbuf *out)
{
	SCONE_TRY(scone_wbuf_put(out, REPORT_MAGIC, 8));
	SCONE_TRY(scone_wbuf_u64(out, (uint64_t)r->time));
	SCONE_TRY(scone_wbuf_put(out, r->measurement, 32));
	SCONE_TRY(scone_wbuf_put(out, r->runtime_measurement, 32));
	SCONE_TRY(scone_wbuf_put(out, r->report_data, SCONE_REPORT_DATA_SIZE));
	SCONE_TRY(scone_wbuf_u32(out, r->uid));
	SCONE_TRY(scone_wbuf_u32(out, r->gid));
	SCONE_TRY(scone_wbuf_u32(out, r->pid));
	SCONE_TRY(scone_wbuf_u32(out, r->files));
	SCONE_TRY(scone_wbuf_u32(out, r->anon_exec));
	SCONE_TRY(scone_wbuf_put(out, r->report_id, 16));
	SCONE_TRY(put_text(out, "cgroup", r->cgroup));
	SCONE_TRY(put_text(out, "exe", r->exe));
	return scone_wbuf_put(out, r->las_key, SCONE_LAS_KEY_SIZE);
}

enum scone_err scone_las_report_encode(const struct scone_las_report *r, struct scone_wbuf *out)
{
	SCONE_TRY(scone_las_report_tbs(r, out));
	return scone_wbuf_put(out, r->signature, SCONE_LAS_SIG_SIZE);
}

static enum scone_err get_text(struct scone_rbuf *r, const char *field, char out[SCONE_LAS_TEXT_MAX + 1])
{
	uint16_t n;

	SCONE_TRY(scone_rbuf_u16(r, field, &n));
	if (n > SCONE_LAS_TEXT_MAX)
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: %s of %u bytes at offset %zu, limit %d", r->what, field, n,
				     r->pos - 2, SCONE_LAS_TEXT_MAX);
	SCONE_TRY(scone_rbuf_bytes(r, field, out, n));
	out[n] = '\0';
	if (!printable(out, n))
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: %s holds a byte that is not printable ASCII", r->what,
				     field);
	return SCONE_ERR_OK;
}

static enum scone_err decode_fields(struct scone_rbuf *r, struct scone_las_report *out)
{
	uint8_t magic[8];
	uint64_t t;

	SCONE_TRY(scone_rbuf_bytes(r, "magic", magic, 8));
	if (memcmp(magic, REPORT_MAGIC, 8) != 0)
		return scone_err_set(SCONE_ERR_MALFORMED, "LAS report: bad magic (not a LAS report, or another version)");
	SCONE_TRY(scone_rbuf_u64(r, "time", &t));
	if (t > INT64_MAX)
		return scone_err_set(SCONE_ERR_MALFORMED, "LAS report: time out of range");
	out->time = (int64_t)t;
	SCONE_TRY(scone_rbuf_bytes(r, "measurement", out->measurement, 32));
	SCONE_TRY(scone_rbuf_bytes(r, "runtime_measurement", out->runtime_measurement, 32));
	SCONE_TRY(scone_rbuf_bytes(r, "report_data", out->report_data, SCONE_REPORT_DATA_SIZE));
	SCONE_TRY(scone_rbuf_u32(r, "uid", &out->uid));
	SCONE_TRY(scone_rbuf_u32(r, "gid", &out->gid));
	SCONE_TRY(scone_rbuf_u32(r, "pid", &out->pid));
	SCONE_TRY(scone_rbuf_u32(r, "files", &out->files));
	SCONE_TRY(scone_rbuf_u32(r, "anon_exec", &out->anon_exec));
	SCONE_TRY(scone_rbuf_bytes(r, "report_id", out->report_id, 16));
	SCONE_TRY(get_text(r, "cgroup", out->cgroup));
	SCONE_TRY(get_text(r, "exe", out->exe));
	return scone_rbuf_bytes(r, "las_key", out->las_key, SCONE_LAS_KEY_SIZE);
}

enum scone_err scone_las_report_decode(const uint8_t *in, size_t size, struct scone_las_report *out,
				       size_t *tbs_size)
{
	struct scone_rbuf r;
	enum scone_err err;

	memset(out, 0, sizeof(*out));
	if (size > SCONE_LAS_BODY_MAX)
		return scone_err_set(SCONE_ERR_TOO_LARGE, "LAS report: %zu bytes, limit %d", size, SCONE_LAS_BODY_MAX);
	scone_rbuf_init(&r, in, size, "LAS report");
	err = decode_fields(&r, out);
	if (!err) {
		*tbs_size = r.pos;
		err = scone_rbuf_bytes(&r, "signature", out->signature, SCONE_LAS_SIG_SIZE);
	}
	if (!err && scone_rbuf_left(&r))
		err = scone_err_set(SCONE_ERR_MALFORMED, "LAS report: %zu bytes after the signature", scone_rbuf_left(&r));
	if (err)
		memset(out, 0, sizeof(*out));
	return err;
}

enum scone_err scone_las_report_check_sig(const struct scone_las_report *r, const uint8_t *in, size_t tbs_size)
{
	EVP_PKEY *key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, r->las_key, SCONE_LAS_KEY_SIZE);
	EVP_MD_CTX *md = key ? EVP_MD_CTX_new() : NULL;
	int ok = 0;

	if (md && EVP_DigestVerifyInit(md, NULL, NULL, NULL, key) == 1)
		ok = EVP_DigestVerify(md, r->signature, SCONE_LAS_SIG_SIZE, in, tbs_size);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key);
	if (!md)
		return scone_err_set(SCONE_ERR_CRYPTO, "LAS report: cannot set up Ed25519 verification");
	if (ok != 1)
		return scone_err_set(SCONE_ERR_AUTH,
				     "LAS report: the signature does not verify with the LAS key it names (forged or "
				     "altered report)");
	return SCONE_ERR_OK;
}

void scone_las_platform_id(const uint8_t key[SCONE_LAS_KEY_SIZE], uint8_t out[32])
{
	scone_sha256(key, SCONE_LAS_KEY_SIZE, out);
}

/* ---- refusals ---- */

enum scone_err scone_las_refusal_encode(enum scone_err code, const char *reason, struct scone_wbuf *out)
{
	char text[SCONE_LAS_TEXT_MAX + 1];
	size_t n;

	snprintf(text, sizeof(text), "%s", reason ? reason : "");
	n = strlen(text);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)text[i] < 0x20 || (unsigned char)text[i] > 0x7e)
			text[i] = '?';
	SCONE_TRY(scone_wbuf_u16(out, (uint16_t)code));
	SCONE_TRY(scone_wbuf_u16(out, (uint16_t)n));
	return scone_wbuf_put(out, text, n);
}

enum scone_err scone_las_refusal_decode(const uint8_t *body, size_t size, enum scone_err *code,
					char reason[SCONE_LAS_TEXT_MAX + 1])
{
	struct scone_rbuf r;
	uint16_t c;

	reason[0] = '\0';
	scone_rbuf_init(&r, body, size, "LAS refusal");
	SCONE_TRY(scone_rbuf_u16(&r, "code", &c));
	SCONE_TRY(get_text(&r, "reason", reason));
	if (scone_rbuf_left(&r))
		return scone_err_set(SCONE_ERR_MALFORMED, "LAS refusal: %zu bytes after the reason", scone_rbuf_left(&r));
	/* A code this side does not know, or OK, still means "refused". */
	*code = c > SCONE_ERR_OK && c < SCONE_ERR_COUNT_ ? (enum scone_err)c : SCONE_ERR_ATTESTATION;
	return SCONE_ERR_OK;
}

/* ---- addresses and bindings ---- */

enum scone_err scone_las_addr_path(const char *addr, char *path, size_t path_size)
{
	if (!addr || !*addr)
		addr = SCONE_LAS_DEFAULT_ADDR;
	if (strncmp(addr, "unix:", 5) != 0 || addr[5] != '/')
		return scone_err_set(SCONE_ERR_INVALID,
				     "LAS address \"%.100s\": expected unix:/PATH (the LAS has no TCP listener: over TCP "
				     "it could not identify its caller)",
				     addr);
	if ((size_t)snprintf(path, path_size, "%s", addr + 5) >= path_size)
		return scone_err_set(SCONE_ERR_NAME_TOO_LONG, "LAS address: socket path longer than %zu bytes",
				     path_size - 1);
	return SCONE_ERR_OK;
}

void scone_las_exec_binding(const uint8_t random16[16], uint8_t out[32])
{
	uint8_t msg[sizeof(EXEC_BINDING_DOMAIN) - 1 + 16];

	memcpy(msg, EXEC_BINDING_DOMAIN, sizeof(EXEC_BINDING_DOMAIN) - 1);
	memcpy(msg + sizeof(EXEC_BINDING_DOMAIN) - 1, random16, 16);
	scone_sha256(msg, sizeof(msg), out);
	scone_wipe(msg, sizeof(msg));
}
