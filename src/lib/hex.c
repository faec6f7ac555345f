/* hex.c - hex encoding and strict decoding. */
#include "hex.h"

#include <string.h>

#include "crypto.h"

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

/* All ones when lo <= c <= hi, else 0 (no branch: keys are decoded here). */
static uint32_t in_range(uint32_t c, uint32_t lo, uint32_t hi)
{
	return (uint32_t)0 - (((c - lo) | (hi - c)) >> 31 ^ 1);
}

/* c's value and *valid all ones when c is a hex digit (either case); no branch on c. */
static uint32_t nibble(char ch, uint32_t *valid)
{
	uint32_t c = (uint8_t)ch, digit = in_range(c, '0', '9'), lower = in_range(c, 'a', 'f'),
		 upper = in_range(c, 'A', 'F');

	*valid = digit | lower | upper;
	return (digit & (c - '0')) | (lower & (c - 'a' + 10)) | (upper & (c - 'A' + 10));
}

/* The first position that is not a hex digit (for the message only). */
static size_t first_bad(const char *in, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		uint32_t ok;
		(void)nibble(in[i], &ok);
		if (!ok)
			return i;
	}
	return len;
}

enum scone_err scone_hex_decode(uint8_t *out, size_t out_size, const char *in, const char *what)
{
	size_t len = strlen(in);
	uint32_t bad = 0;

	if (len != 2 * out_size)
		return scone_err_set(SCONE_ERR_INVALID, "%s: expected %zu hex digits, got %zu", what,
				     2 * out_size, len);
	for (size_t i = 0; i < out_size; i++) {
		uint32_t ok_hi, ok_lo;
		uint32_t hi = nibble(in[2 * i], &ok_hi), lo = nibble(in[2 * i + 1], &ok_lo);
		bad |= ~(ok_hi & ok_lo);
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	if (bad) {
		scone_wipe(out, out_size); /* no partial key left behind */
		return scone_err_set(SCONE_ERR_INVALID, "%s: invalid hex digit at position %zu", what,
				     first_bad(in, len));
	}
	return SCONE_ERR_OK;
}
