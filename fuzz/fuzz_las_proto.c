/*
 * fuzz_las_proto.c - libFuzzer target for what the LAS and its clients
 * read from each other (src/attest/las_proto.c) and what the LAS reads
 * from /proc (the maps parser of src/attest/measure.c).
 *
 * The first input byte picks the parser: a frame header, a request, a
 * report, a refusal, or maps text. Errors are expected; a crash, a
 * sanitizer report, a leak or a broken contract aborts: a decoded request
 * or report encodes back to exactly the input bytes, a refusal's reason is
 * printable, a maps line lies within the input. Seeds: fuzz/corpus/las_proto.
 */
#include <string.h>

#include "attest/las_proto.h"
#include "attest/measure.h"
#include "fuzz_common.h"

static void header(const uint8_t *d, size_t n)
{
	enum scone_las_kind kind;
	size_t size;

	if (n >= SCONE_LAS_HEADER_SIZE && scone_las_header(d, &kind, &size) == SCONE_ERR_OK)
		CHECK(size <= SCONE_LAS_BODY_MAX && kind >= SCONE_LAS_MSG_REQUEST && kind <= SCONE_LAS_MSG_REFUSAL);
}

static void request(const uint8_t *d, size_t n)
{
	struct scone_las_request r;
	uint8_t back[SCONE_LAS_REQUEST_SIZE];

	if (scone_las_request_decode(d, n, &r) == SCONE_ERR_OK) {
		scone_las_request_encode(&r, back);
		CHECK(n == sizeof(back) && memcmp(back, d, n) == 0);
	}
}

static void report(const uint8_t *d, size_t n)
{
	struct scone_las_report r;
	struct scone_wbuf w;
	size_t tbs;

	if (scone_las_report_decode(d, n, &r, &tbs) != SCONE_ERR_OK)
		return;
	CHECK(tbs + SCONE_LAS_SIG_SIZE == n);
	scone_wbuf_init(&w, SCONE_LAS_BODY_MAX, 0);
	CHECK(scone_las_report_encode(&r, &w) == SCONE_ERR_OK);
	CHECK(w.size == n && memcmp(w.data, d, n) == 0);
	scone_wbuf_free(&w);
	(void)scone_las_report_check_sig(&r, d, tbs);
}

static void refusal(const uint8_t *d, size_t n)
{
	enum scone_err code;
	char reason[SCONE_LAS_TEXT_MAX + 1];

	if (scone_las_refusal_decode(d, n, &code, reason) == SCONE_ERR_OK) {
		CHECK(code > SCONE_ERR_OK && code < SCONE_ERR_COUNT_);
		for (const char *p = reason; *p; p++)
			CHECK(*p >= 0x20 && *p <= 0x7e);
	}
}

static void maps(const uint8_t *d, size_t n)
{
	struct scone_rbuf r;
	struct scone_map_line m;
	size_t lines = 0;

	scone_rbuf_init(&r, d, n, "maps");
	while (scone_maps_next(&r, &m) == SCONE_ERR_OK) {
		CHECK(m.start <= m.end);
		CHECK(m.path >= (const char *)d && m.path + m.path_len <= (const char *)d + n);
		CHECK(++lines <= n);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy;

	if (size < 1)
		return 0;
	copy = malloc(size - 1 ? size - 1 : 1); /* exact size: ASan sees any read past the end */
	if (!copy)
		return 0;
	memcpy(copy, data + 1, size - 1);
	switch (data[0] % 5) {
	case 0:
		header(copy, size - 1);
		break;
	case 1:
		request(copy, size - 1);
		break;
	case 2:
		report(copy, size - 1);
		break;
	case 3:
		refusal(copy, size - 1);
		break;
	default:
		maps(copy, size - 1);
		break;
	}
	free(copy);
	scone_err_clear();
	return 0;
}
