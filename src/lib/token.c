/* token.c - service access token proofs (token.h). */
#include "token.h"

#include <stdio.h>
#include <string.h>

#include "crypto.h"

enum scone_err scone_access_token_mac(const char *token, const char *label, const uint8_t spki[32],
				      const char *config_id, uint8_t out[32])
{
	uint8_t msg[64 + 32 + 1024];
	size_t n, id_len = strlen(config_id), tok_len = strlen(token);
	int k = snprintf((char *)msg, 64, "scone service access token v1 %s", label);
	enum scone_err err;

	if (k < 0 || k >= 64 || id_len > 1024 || tok_len == 0 || tok_len > SCONE_TOKEN_MAX)
		return scone_err_set(SCONE_ERR_INVALID,
				     "service access token: bad label, token or config id");
	n = (size_t)k + 1; /* the label's NUL separates it */
	memcpy(msg + n, spki, 32);
	n += 32;
	memcpy(msg + n, config_id, id_len);
	n += id_len;
	err = scone_hmac_sha256((const uint8_t *)token, tok_len, msg, n, out);
	scone_wipe(msg, sizeof(msg));
	return err;
}
