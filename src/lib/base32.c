/* base32.c - RFC 4648 base32 without padding out, padding optional in. */
#include "base32.h"

#include <string.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

size_t scone_base32_len(size_t in_size)
{
	return (in_size * 8 + 4) / 5;
}

void scone_base32_encode(char *out, size_t out_size, const uint8_t *in, size_t in_size)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t k = 0;

	if (!out_size)
		return;
	for (size_t i = 0; i < in_size; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 5 && k + 1 < out_size) {
			out[k++] = alphabet[(acc >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	if (bits && k + 1 < out_size)
		out[k++] = alphabet[(acc << (5 - bits)) & 31];
	out[k] = '\0';
	acc = 0;
}

static int value_of(char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a';
	if (ch >= '2' && ch <= '7')
		return ch - '2' + 26;
	return -1;
}

/*
 * Characters before the padding. A final group of n % 8 characters holds
 * whole bytes only for 0, 2, 4, 5 and 7 characters; padding, when given,
 * must fill that group to 8 exactly.
 */
static enum scone_err unpadded_len(const char *text, size_t len, const char *what, size_t *out)
{
	static const signed char pad_for[8] = { 0, -1, 6, -1, 4, 3, -1, 1 };
	size_t n = len;

	while (n && text[n - 1] == '=')
		n--;
	if (pad_for[n % 8] < 0)
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: %zu base32 characters are not a whole number of bytes",
				     what, n);
	if (n < len && (size_t)pad_for[n % 8] != len - n)
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: base32 padding at character %zu does not fit the length",
				     what, n + 1);
	*out = n;
	return SCONE_ERR_OK;
}

enum scone_err scone_base32_decode(const char *text, size_t len, uint8_t *out, size_t out_size, size_t *out_len,
				   const char *what)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t n = 0, k = 0;

	SCONE_TRY(unpadded_len(text, len, what, &n));
	for (size_t i = 0; i < n; i++) {
		int v = value_of(text[i]);
		if (v < 0)
			return scone_err_set(SCONE_ERR_MALFORMED,
					     "%s: character %zu is not base32 (A-Z and 2-7, padding '=' only at the end)",
					     what, i + 1);
		acc = (acc << 5) | (uint32_t)v;
		bits += 5;
		if (bits >= 8) {
			if (k == out_size)
				return scone_err_set(SCONE_ERR_TOO_LARGE, "%s: more than %zu bytes", what, out_size);
			out[k++] = (uint8_t)(acc >> (bits - 8));
			bits -= 8;
		}
	}
	if (bits && (acc & ((1u << bits) - 1)))
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: the last base32 character has bits set beyond the data",
				     what);
	*out_len = k;
	return SCONE_ERR_OK;
}
