/* hex.c - hex encoding and strict decoding. */
#include "hex.h"

#include <string.h>

void scone_hex_encode(char *out, size_t out_size, const uint8_t *in, size_t in_size)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	if (out_size == 0)
		return;
	for (i = 0; i < in_size && 2 * i + 2 < out_size; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * i] = '\0';
}

static int nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

enum scone_err scone_hex_decode(uint8_t *out, size_t out_size, const char *in, const char *what)
{
	size_t len = strlen(in);

	if (len != 2 * out_size)
		return scone_err_set(SCONE_ERR_INVALID, "%s: expected %zu hex digits, got %zu", what,
				     2 * out_size, len);
	for (size_t i = 0; i < out_size; i++) {
		int hi = nibble(in[2 * i]);
		int lo = nibble(in[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return scone_err_set(SCONE_ERR_INVALID, "%s: invalid hex digit at position %zu", what,
					     hi < 0 ? 2 * i : 2 * i + 1);
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return SCONE_ERR_OK;
}
