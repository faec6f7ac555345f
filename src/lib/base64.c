/*
 * base64.c - standard base64 (base64.h). Decoding maps each character to
 * its value with masks instead of branches or a table indexed by the
 * character, so its timing does not depend on the secret it decodes; the
 * validity of the whole input is accumulated and checked once at the end.
 */
#include "base64.h"

#include "crypto.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t scone_base64_encoded_len(size_t n)
{
	return (n + 2) / 3 * 4;
}

size_t scone_base64_decoded_max(size_t len)
{
	return len / 4 * 3 + 3;
}

void scone_base64_encode(char *out, size_t out_size, const uint8_t *in, size_t n)
{
	size_t o = 0;

	if (out_size == 0)
		return;
	for (size_t i = 0; i < n && o + 4 < out_size; i += 3) {
		uint32_t w = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
			     (i + 2 < n ? in[i + 2] : 0);
		out[o++] = alphabet[w >> 18 & 63];
		out[o++] = alphabet[w >> 12 & 63];
		out[o++] = i + 1 < n ? alphabet[w >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? alphabet[w & 63] : '=';
	}
	out[o] = '\0';
}

/* All ones when lo <= c <= hi, else 0 (no branch). */
static uint32_t in_range(uint32_t c, uint32_t lo, uint32_t hi)
{
	return (uint32_t)0 - (((c - lo) | (hi - c)) >> 31 ^ 1);
}

/* c's value (0..63) and *valid all ones when c is of the alphabet; 0 otherwise. */
static uint32_t value_of(uint8_t ch, uint32_t *valid)
{
	uint32_t c = ch, upper = in_range(c, 'A', 'Z'), lower = in_range(c, 'a', 'z'),
		 digit = in_range(c, '0', '9');
	uint32_t plus = in_range(c, '+', '+'), slash = in_range(c, '/', '/');

	*valid = upper | lower | digit | plus | slash;
	return (upper & (c - 'A')) | (lower & (c - 'a' + 26)) | (digit & (c - '0' + 52)) | (plus & 62) |
	       (slash & 63);
}

static bool is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

/* The position of the first character that is not base64 where it stands (for the message only). */
static size_t first_bad(const char *in, size_t len, unsigned flags)
{
	size_t chars = 0, pad = 0;

	for (size_t i = 0; i < len; i++) {
		uint32_t ok;
		if ((flags & SCONE_BASE64_SPACE) && is_space(in[i]))
			continue;
		chars++;
		if (in[i] == '=') {
			pad++;
			continue;
		}
		(void)value_of((uint8_t)in[i], &ok);
		if (!ok || pad)
			return i;
	}
	return len;
}

enum scone_err scone_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap, size_t *out_len,
				   unsigned flags, const char *what)
{
	uint32_t acc = 0, bad = 0;
	size_t bits = 0, n = 0, pad = 0, chars = 0;

	*out_len = 0;
	for (size_t i = 0; i < len; i++) {
		uint32_t valid, v;
		if ((flags & SCONE_BASE64_SPACE) && is_space(in[i]))
			continue; /* (layout, not data) */
		chars++;
		if (in[i] == '=') {
			pad++;
			continue;
		}
		v = value_of((uint8_t)in[i], &valid);
		bad |= ~valid | (uint32_t)(pad != 0);
		acc = acc << 6 | (v & 63);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n < cap)
				out[n] = (uint8_t)(acc >> bits);
			n++;
		}
	}
	bad |= (uint32_t)(chars % 4 != 0) | (uint32_t)(pad > 2) | (acc & ((1u << bits) - 1));
	bad |= (uint32_t)((pad == 1 && bits != 2) || (pad == 2 && bits != 4) || (pad == 0 && bits != 0));
	if (bad || n > cap) {
		scone_wipe(out, cap);
		if (n > cap && !bad)
			return scone_err_set(SCONE_ERR_MALFORMED, "%s: decodes to more than %zu bytes", what,
					     cap);
		if (first_bad(in, len, flags) < len)
			return scone_err_set(SCONE_ERR_MALFORMED, "%s: not base64 at character %zu", what,
					     first_bad(in, len, flags));
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: not padded base64 (%zu characters)", what,
				     chars);
	}
	*out_len = n;
	return SCONE_ERR_OK;
}
