/*
 * fuzz_vproto.c - libFuzzer target for the frames between a process and the
 * one serving its volumes (src/runtime/vproto.c). Both ends are the
 * program's own processes, but the server decodes whatever arrives on its
 * sockets, so the decoder takes the bytes as untrusted.
 *
 * The input is a frame's payload. A refusal is fine; an accepted frame must
 * keep the decoder's promises (strings NUL-terminated within their
 * buffers, data inside the input) and round-trip: encoding it gives the
 * length prefix and exactly the input. The data part is also read as a
 * directory listing, entry by entry, until it ends or is refused.
 * Seeds: fuzz/corpus/vproto.
 */
#include "runtime/vproto.h"

#include <string.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vp_msg m;

static void read_listing(const uint8_t *p, size_t n)
{
	struct scone_rbuf r;
	char name[NAME_MAX + 1];
	struct scone_vstat st;

	scone_rbuf_init(&r, p, n, "listing");
	while (scone_rbuf_left(&r) && vp_get_entry(&r, name, &st) == SCONE_ERR_OK)
		CHECK(name[0] && strlen(name) <= NAME_MAX && !strchr(name, '/'));
	scone_err_clear();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scone_wbuf w;

	if (vp_decode(data, size, &m) != SCONE_ERR_OK) {
		CHECK(scone_err_detail()[0] != '\0');
		scone_err_clear();
		return 0;
	}
	CHECK(m.op > 0 && m.op < VP_OP_END_);
	CHECK(strlen(m.p1) < sizeof(m.p1) && strlen(m.p2) < sizeof(m.p2) &&
	      strlen(m.detail) < sizeof(m.detail));
	CHECK(m.data_size <= VP_MAX_DATA);
	CHECK(m.data_size == 0 || (m.data >= data && m.data + m.data_size <= data + size));
	read_listing(m.data, m.data_size);
	scone_wbuf_init(&w, VP_MAX_FRAME + 4, 0);
	CHECK(vp_encode(&m, &w) == SCONE_ERR_OK);
	CHECK(w.size == size + 4 && scone_get_le32(w.data) == size && memcmp(w.data + 4, data, size) == 0);
	scone_wbuf_free(&w);
	return 0;
}
