/*
 * fuzz_handover.c - libFuzzer target for the exec handover decoder
 * (src/runtime/handover.c), which reads bytes a parent process wrote.
 *
 * The input is decoded as is. A refusal must leave the output
 * re-initialised (nothing allocated: LeakSanitizer checks) with a detail
 * starting "handover". An accepted handover must hold the decoder's
 * promises (required records present, strings NUL-terminated without NUL
 * inside, every fd's volume in range) and round-trip: encoding it gives
 * exactly as many bytes as the input (every record is kept), decoding that
 * encoding gives an equal struct, and encoding again gives the same bytes.
 * Seeds: fuzz/corpus/handover.
 */
#include "runtime/handover.h"

#include <limits.h>
#include <string.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_reinit(const struct scone_handover *h)
{
	CHECK(!h->config && !h->config_len && !h->cas_addr && !h->identity && !h->identity_len);
	CHECK(!h->env && !h->env_count && !h->volumes && !h->volume_count);
	CHECK(h->share_fd == -1 && !h->shared && !h->fds && !h->fd_count && !h->cwd);
}

static void check_str(const char *s, size_t len)
{
	CHECK(s != NULL);
	CHECK(s[len] == '\0' && strlen(s) == len);
}

/* What the decoder promises about any struct it returns. */
static void check_valid(const struct scone_handover *h)
{
	check_str(h->config, h->config_len);
	CHECK(h->cas_addr && h->cas_addr[0]);
	CHECK(!h->identity || (h->identity_len && strlen(h->identity) == h->identity_len));
	CHECK(!h->volume_count || h->identity);
	for (size_t i = 0; i < h->env_count; i++) {
		const char *eq = strchr(h->env[i], '=');
		CHECK(eq && eq != h->env[i]);
	}
	for (size_t i = 0; i < h->volume_count; i++)
		CHECK(h->volumes[i].name && h->volumes[i].name[0]);
	CHECK(h->share_fd >= -1);
	for (size_t i = 0; i < h->fd_count; i++) {
		CHECK(h->fds[i].fd >= 0 && h->fds[i].volume < h->volume_count);
		CHECK(h->fds[i].vpath && h->fds[i].vpath[0] == '/');
	}
	CHECK(!h->cwd || h->cwd[0] == '/');
}

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void check_same(const struct scone_handover *a, const struct scone_handover *b)
{
	CHECK(a->config_len == b->config_len && memcmp(a->config, b->config, a->config_len) == 0);
	CHECK(same_str(a->cas_addr, b->cas_addr) && memcmp(a->pin, b->pin, sizeof(a->pin)) == 0);
	CHECK(a->identity_len == b->identity_len && same_str(a->identity, b->identity));
	CHECK(a->env_count == b->env_count && a->volume_count == b->volume_count &&
	      a->fd_count == b->fd_count);
	for (size_t i = 0; i < a->env_count; i++)
		CHECK(strcmp(a->env[i], b->env[i]) == 0);
	for (size_t i = 0; i < a->volume_count; i++) {
		CHECK(strcmp(a->volumes[i].name, b->volumes[i].name) == 0);
		CHECK(a->volumes[i].has_tag == b->volumes[i].has_tag);
		CHECK(memcmp(a->volumes[i].tag, b->volumes[i].tag, SCONE_HANDOVER_TAG_SIZE) == 0);
	}
	CHECK(a->share_fd == b->share_fd && a->shared == b->shared);
	for (size_t i = 0; i < a->fd_count; i++) {
		const struct scone_handover_fd *x = &a->fds[i], *y = &b->fds[i];
		CHECK(x->fd == y->fd && x->flags == y->flags && x->volume == y->volume && x->dir == y->dir);
		CHECK(strcmp(x->vpath, y->vpath) == 0);
	}
	CHECK(same_str(a->cwd, b->cwd));
}

static void encode_ok(const struct scone_handover *h, struct scone_wbuf *w)
{
	scone_wbuf_init(w, SCONE_HANDOVER_MAX, 1);
	if (scone_handover_encode(h, w) != SCONE_ERR_OK) {
		fprintf(stderr, "decoded handover does not encode: %s\n", scone_err_detail());
		abort();
	}
}

static void roundtrip(const struct scone_handover *h, size_t size)
{
	struct scone_handover again;
	struct scone_wbuf e1, e2;
	enum scone_err err;

	encode_ok(h, &e1);
	CHECK(e1.size == size);
	err = scone_handover_decode(e1.data, e1.size, &again);
	if (err != SCONE_ERR_OK) {
		fprintf(stderr, "encoded handover does not decode: %s: %s\n", scone_errname(err),
			scone_err_detail());
		abort();
	}
	check_valid(&again);
	check_same(h, &again);
	encode_ok(&again, &e2);
	CHECK(e2.size == e1.size && memcmp(e1.data, e2.data, e1.size) == 0);
	scone_handover_free(&again);
	check_reinit(&again);
	scone_wbuf_free(&e1);
	scone_wbuf_free(&e2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scone_handover h;

	memset(&h, 0xa5, sizeof(h));
	if (scone_handover_decode(data, size, &h) == SCONE_ERR_OK) {
		check_valid(&h);
		roundtrip(&h, size);
		scone_handover_free(&h);
	} else {
		CHECK(strncmp(scone_err_detail(), "handover", 8) == 0);
	}
	check_reinit(&h);
	scone_err_clear();
	return 0;
}
