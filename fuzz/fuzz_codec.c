/*
 * fuzz_codec.c - libFuzzer target for the strict decoders of src/lib:
 * base64 (with and without the whitespace option) and hex. A decoded value
 * must encode back to the same text (both are canonical: one encoding per
 * value), a failure must leave the output buffer wiped, and neither may read
 * or write past its buffers. Seeds: fuzz/corpus/codec.
 */
#include <string.h>

#include "fuzz_common.h"
#include "lib/base64.h"
#include "lib/hex.h"

static void base64_plain(const char *s, size_t n)
{
	size_t cap = scone_base64_decoded_max(n), got = 99;
	uint8_t *out = malloc(cap + 1);
	char *back;

	CHECK(out);
	if (scone_base64_decode(s, n, out, cap, &got, 0, "fuzz") == SCONE_ERR_OK) {
		CHECK(got <= cap);
		back = malloc(scone_base64_encoded_len(got) + 1);
		CHECK(back);
		scone_base64_encode(back, scone_base64_encoded_len(got) + 1, out, got);
		CHECK(strlen(back) == n && memcmp(back, s, n) == 0);
		free(back);
	} else {
		CHECK(got == 0);
		for (size_t i = 0; i < cap; i++)
			CHECK(out[i] == 0);
	}
	free(out);
}

static void base64_spaced(const char *s, size_t n)
{
	size_t cap = scone_base64_decoded_max(n), got;
	uint8_t *out = malloc(cap + 1);

	CHECK(out);
	if (scone_base64_decode(s, n, out, cap, &got, SCONE_BASE64_SPACE, "fuzz") == SCONE_ERR_OK)
		CHECK(got <= cap);
	free(out);
}

static void hex(const char *s, size_t n)
{
	char *z = malloc(n + 1), back[2 * 64 + 1];
	uint8_t out[64];

	CHECK(z);
	memcpy(z, s, n);
	z[n] = '\0';
	if (n % 2 == 0 && n / 2 <= sizeof(out)) {
		memset(out, 0, sizeof(out)); /* an error leaves it so: untouched, or wiped */
		if (scone_hex_decode(out, n / 2, z, "fuzz") == SCONE_ERR_OK) {
			scone_hex_encode(back, sizeof(back), out, n / 2);
			for (size_t i = 0; i < n; i++)
				CHECK(back[i] == (z[i] >= 'A' && z[i] <= 'F' ? z[i] - 'A' + 'a' : z[i]));
		} else {
			for (size_t i = 0; i < n / 2; i++)
				CHECK(out[i] == 0);
		}
	}
	free(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data + 1;

	if (size == 0)
		return 0;
	switch (data[0] % 3) {
	case 0:
		base64_plain(s, size - 1);
		break;
	case 1:
		base64_spaced(s, size - 1);
		break;
	default:
		hex(s, size - 1);
		break;
	}
	return 0;
}
