/*
 * token.h - proofs of SCONE's service access tokens (a session's
 * security.service_access_token, a runtime's SCONE_SERVICE_ACCESS_TOKEN).
 *
 * Both sides prove they hold the token without sending it: each MACs the
 * runtime's fresh TLS key and the service it asks for, under its own label,
 * so a proof cannot be replayed over another connection, for another
 * service, or reflected back as the other side's:
 *   MAC = HMAC-SHA256(token, "scone service access token v1 " label || 0x00
 *                            || SHA-256(runtime's SPKI) || "SESSION/SERVICE")
 * with label "runtime" (in the configuration request) or "cas" (in the
 * answer). docs/api.md, "Service access tokens".
 */
#ifndef SCONE_TOKEN_H
#define SCONE_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define SCONE_TOKEN_LABEL_RUNTIME "runtime"
#define SCONE_TOKEN_LABEL_CAS "cas"
#define SCONE_TOKEN_MAX 1024 /* bytes of a token */

SCONE_MUST_CHECK enum scone_err scone_access_token_mac(const char *token, const char *label,
						       const uint8_t spki[32], const char *config_id,
						       uint8_t out[32]);

#endif
