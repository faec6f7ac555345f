/*
 * attest_las.c - the "las" evidence type: a report of the host's Local
 * Attestation Service (scone-las), which measured the calling process from
 * the kernel's view and signed what it saw with the host's Ed25519 key.
 *
 * Collect (runtime side): ask the LAS over its unix socket, binding the
 * report data, this image's exec binding (so a report asked for before an
 * exec is refused) and an address in the runtime's code. The evidence is
 * the report's bytes as the LAS signed them.
 *
 * Verify (CAS side): parse, check the signature with the key the report
 * names and the report's age. Whether that key is trusted (its platform id
 * is listed in the session) and the measurement is right is the policy
 * matcher's decision, on the claims.
 */
#include "attest/attest_types.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "attest/las_proto.h"
#include "lib/crypto.h"
#include "lib/hex.h"

#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_MAX_AGE 60

static bool las_available(const struct scone_collect_opts *o)
{
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct stat st;

	return scone_las_addr_path(o ? o->las_addr : NULL, path, sizeof(path)) == SCONE_ERR_OK && stat(path, &st) == 0 &&
	       S_ISSOCK(st.st_mode);
}

static enum scone_err connect_las(const char *addr, int timeout_ms, int *out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
	int fd;

	SCONE_TRY(scone_las_addr_path(addr, sa.sun_path, sizeof(sa.sun_path)));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return scone_err_set(scone_err_from_errno(errno), "LAS: socket: %s", strerror(errno));
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;
		close(fd);
		return scone_err_set(SCONE_ERR_NETWORK, "LAS at unix:%s: %s (is scone-las running? SCONE_LAS_ADDR)",
				     sa.sun_path, strerror(e));
	}
	*out = fd;
	return SCONE_ERR_OK;
}

static enum scone_err io_all(int fd, void *buf, size_t n, bool writing)
{
	uint8_t *p = buf;

	while (n) {
		ssize_t k = writing ? send(fd, p, n, MSG_NOSIGNAL) : recv(fd, p, n, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return scone_err_set(SCONE_ERR_NETWORK, "LAS: no answer in time");
		if (k < 0)
			return scone_err_set(SCONE_ERR_NETWORK, "LAS: %s", strerror(errno));
		if (k == 0)
			return scone_err_set(SCONE_ERR_NETWORK, "LAS: closed the connection before answering");
		p += k;
		n -= (size_t)k;
	}
	return SCONE_ERR_OK;
}

/* This image's exec binding, from the 16 random bytes the kernel placed for it (AT_RANDOM). */
static enum scone_err exec_binding(uint8_t out[32])
{
	const uint8_t *rnd = (const uint8_t *)getauxval(AT_RANDOM);

	if (!rnd)
		return scone_err_set(SCONE_ERR_UNSUPPORTED, "LAS: the kernel gave this process no AT_RANDOM");
	scone_las_exec_binding(rnd, out);
	return SCONE_ERR_OK;
}

static enum scone_err send_request(int fd, const uint8_t report_data[SCONE_REPORT_DATA_SIZE])
{
	struct scone_las_request req = { .runtime_addr = (uint64_t)(uintptr_t)&las_available };
	uint8_t body[SCONE_LAS_REQUEST_SIZE];
	struct scone_wbuf w;
	enum scone_err err;

	memcpy(req.report_data, report_data, SCONE_REPORT_DATA_SIZE);
	SCONE_TRY(exec_binding(req.exec_binding));
	scone_las_request_encode(&req, body);
	scone_wbuf_init(&w, SCONE_LAS_HEADER_SIZE + SCONE_LAS_REQUEST_SIZE, 0);
	err = scone_las_frame(SCONE_LAS_MSG_REQUEST, body, sizeof(body), &w);
	if (!err)
		err = io_all(fd, w.data, w.size, true);
	scone_wbuf_free(&w);
	return err;
}

/* The LAS's answer: a report appended to out, or its refusal as the error. */
static enum scone_err read_answer(int fd, struct scone_wbuf *out)
{
	uint8_t hdr[SCONE_LAS_HEADER_SIZE], body[SCONE_LAS_BODY_MAX];
	char reason[SCONE_LAS_TEXT_MAX + 1];
	enum scone_las_kind kind;
	enum scone_err code;
	size_t size;

	SCONE_TRY(io_all(fd, hdr, sizeof(hdr), false));
	SCONE_TRY(scone_las_header(hdr, &kind, &size));
	SCONE_TRY(io_all(fd, body, size, false));
	if (kind == SCONE_LAS_MSG_REFUSAL) {
		SCONE_TRY(scone_las_refusal_decode(body, size, &code, reason));
		return scone_err_set(code, "LAS refused: %s", reason);
	}
	if (kind != SCONE_LAS_MSG_REPORT)
		return scone_err_set(SCONE_ERR_MALFORMED, "LAS: answered with message kind %d", (int)kind);
	return scone_wbuf_put(out, body, size);
}

static enum scone_err las_collect(const struct scone_collect_opts *o, const uint8_t report_data[SCONE_REPORT_DATA_SIZE],
				  struct scone_wbuf *out)
{
	int timeout = o && o->timeout_ms > 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS;
	enum scone_err err;
	int fd = -1;

	SCONE_TRY(connect_las(o ? o->las_addr : NULL, timeout, &fd));
	err = send_request(fd, report_data);
	if (!err)
		err = read_answer(fd, out);
	close(fd);
	return err;
}

/* ---- verify ---- */

static enum scone_err check_age(const struct scone_las_report *r, const struct scone_verify_opts *o)
{
	int64_t now = o && o->at ? o->at : (int64_t)time(NULL);
	int64_t max_age = o && o->max_age_sec > 0 ? o->max_age_sec : DEFAULT_MAX_AGE;

	if (r->time < now - max_age)
		return scone_err_set(SCONE_ERR_ATTESTATION,
				     "stale LAS report: made %lld s ago, accepted for %lld s (replayed, or the LAS "
				     "host's clock is behind)",
				     (long long)(now - r->time), (long long)max_age);
	if (r->time > now + max_age)
		return scone_err_set(SCONE_ERR_ATTESTATION,
				     "LAS report from the future: made %lld s ahead of this CAS's clock (set the LAS "
				     "host's clock)",
				     (long long)(r->time - now));
	return SCONE_ERR_OK;
}

static enum scone_err add_extras(struct scone_claims *c, const struct scone_las_report *r)
{
	char num[24];

	snprintf(num, sizeof(num), "%u", r->uid);
	SCONE_TRY(scone_claims_add(c, "uid", num));
	snprintf(num, sizeof(num), "%u", r->gid);
	SCONE_TRY(scone_claims_add(c, "gid", num));
	snprintf(num, sizeof(num), "%u", r->pid);
	SCONE_TRY(scone_claims_add(c, "pid", num));
	snprintf(num, sizeof(num), "%u", r->files);
	SCONE_TRY(scone_claims_add(c, "files", num));
	snprintf(num, sizeof(num), "%u", r->anon_exec);
	SCONE_TRY(scone_claims_add(c, "anon_exec", num));
	SCONE_TRY(scone_claims_add(c, "cgroup", r->cgroup));
	SCONE_TRY(scone_claims_add(c, "exe", r->exe));
	SCONE_TRY(scone_claims_add_hex(c, "report_id", r->report_id, sizeof(r->report_id)));
	return scone_claims_add_hex(c, "las_key", r->las_key, sizeof(r->las_key));
}

static enum scone_err las_verify(const uint8_t *evidence, size_t size, const struct scone_verify_opts *o,
				 struct scone_claims *out)
{
	struct scone_las_report r;
	size_t tbs;
	enum scone_err err;

	memset(out, 0, sizeof(*out));
	if (!evidence || size == 0)
		return scone_err_set(SCONE_ERR_MALFORMED, "las evidence is empty");
	err = scone_las_report_decode(evidence, size, &r, &tbs);
	if (!err)
		err = scone_las_report_check_sig(&r, evidence, tbs);
	if (!err)
		err = check_age(&r, o);
	if (!err) {
		out->type = SCONE_EVIDENCE_LAS;
		memcpy(out->measurement, r.measurement, 32);
		out->measurement_size = 32;
		memcpy(out->signer, r.runtime_measurement, 32);
		out->signer_size = 32;
		scone_las_platform_id(r.las_key, out->platform_id);
		out->platform_id_size = 32;
		memcpy(out->report_data, r.report_data, SCONE_REPORT_DATA_SIZE);
		out->time = r.time;
		err = add_extras(out, &r);
	}
	if (err)
		memset(out, 0, sizeof(*out));
	return err;
}

const struct scone_evidence_ops scone_evidence_las = {
	.name = "las",
	.type = SCONE_EVIDENCE_LAS,
	.available = las_available,
	.collect = las_collect,
	.verify = las_verify,
};
