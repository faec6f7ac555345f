/* intel_quote.c - parse Intel DCAP quotes v3, v4 and v5 (see intel_quote.h). */
#include "attest/intel_quote.h"

#include <string.h>

#include "attest/attest.h"
#include "lib/buf.h"

#define ATT_KEY_ECDSA_P256 2
#define CERT_PCK_CHAIN 5
#define CERT_QE_REPORT 6

static const uint8_t intel_qe_vendor[16] = {0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9,
					    0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07};

static enum scone_err parse_header(struct scone_rbuf *r, struct intel_quote *q)
{
	uint16_t key_type, reserved;
	const uint8_t *vendor;

	SCONE_TRY(scone_rbuf_u16(r, "header.version", &q->version));
	if (q->version < 3 || q->version > 5)
		return scone_err_set(SCONE_ERR_UNSUPPORTED,
				     "quote: version %u (versions 3, 4 and 5 are known)", q->version);
	SCONE_TRY(scone_rbuf_u16(r, "header.att_key_type", &key_type));
	if (key_type != ATT_KEY_ECDSA_P256)
		return scone_err_set(SCONE_ERR_UNSUPPORTED,
				     "quote: attestation key type %u (only 2, ECDSA P-256, is supported)",
				     key_type);
	SCONE_TRY(scone_rbuf_u32(r, "header.tee_type", &q->tee_type));
	if (q->version == 3 && q->tee_type != INTEL_TEE_SGX)
		return scone_err_set(SCONE_ERR_MALFORMED,
				     "quote: version 3 header word 0x%08x at byte 4 must be 0 (SGX)",
				     q->tee_type);
	if (q->tee_type != INTEL_TEE_SGX && q->tee_type != INTEL_TEE_TDX)
		return scone_err_set(SCONE_ERR_UNSUPPORTED,
				     "quote: TEE type 0x%08x (0 SGX and 0x81 TDX are known)", q->tee_type);
	if (q->version == 3) {
		SCONE_TRY(scone_rbuf_u16(r, "header.qe_svn", &q->qe_svn));
		SCONE_TRY(scone_rbuf_u16(r, "header.pce_svn", &q->pce_svn));
	} else {
		SCONE_TRY(scone_rbuf_u16(r, "header.reserved1", &reserved));
		SCONE_TRY(scone_rbuf_u16(r, "header.reserved2", &reserved));
	}
	SCONE_TRY(scone_rbuf_view(r, "header.qe_vendor_id", &vendor, 16));
	if (memcmp(vendor, intel_qe_vendor, 16) != 0)
		return scone_err_set(SCONE_ERR_UNSUPPORTED, "quote: QE vendor id at byte 12 is not Intel's");
	return scone_rbuf_view(r, "header.user_data", &q->user_data, 20);
}

static size_t body_size_of(uint16_t type)
{
	return type == INTEL_BODY_SGX	 ? SGX_REPORT_SIZE
	       : type == INTEL_BODY_TD10 ? TD10_REPORT_SIZE
					 : TD15_REPORT_SIZE;
}

static enum scone_err parse_body(struct scone_rbuf *r, struct intel_quote *q)
{
	uint32_t size;

	if (q->version < 5) {
		q->body_type = q->tee_type == INTEL_TEE_TDX ? INTEL_BODY_TD10 : INTEL_BODY_SGX;
	} else {
		SCONE_TRY(scone_rbuf_u16(r, "body.type", &q->body_type));
		if (q->body_type < INTEL_BODY_SGX || q->body_type > INTEL_BODY_TD15)
			return scone_err_set(SCONE_ERR_UNSUPPORTED,
					     "quote: body type %u at byte 48 (1, 2, 3 are known)",
					     q->body_type);
		if ((q->body_type == INTEL_BODY_SGX) != (q->tee_type == INTEL_TEE_SGX))
			return scone_err_set(SCONE_ERR_MALFORMED,
					     "quote: body type %u does not fit TEE type 0x%x", q->body_type,
					     q->tee_type);
		SCONE_TRY(scone_rbuf_u32(r, "body.size", &size));
		if (size != body_size_of(q->body_type))
			return scone_err_set(SCONE_ERR_MALFORMED,
					     "quote: body size %u at byte 50 (body type %u has %zu bytes)",
					     size, q->body_type, body_size_of(q->body_type));
	}
	q->body_size = body_size_of(q->body_type);
	return scone_rbuf_view(r, "body", &q->body, q->body_size);
}

/* QE report, its signature, QE auth data and the inner PCK chain (types 5 inside 6, or v3's own). */
static enum scone_err parse_qe_part(struct scone_rbuf *s, struct intel_quote *q)
{
	uint16_t type;

	SCONE_TRY(scone_rbuf_view(s, "qe_report", &q->qe_report, SGX_REPORT_SIZE));
	SCONE_TRY(scone_rbuf_view(s, "qe_report_signature", &q->qe_report_sig, 64));
	SCONE_TRY(scone_rbuf_u16(s, "qe_auth_data.size", &q->qe_auth_size));
	SCONE_TRY(scone_rbuf_view(s, "qe_auth_data", &q->qe_auth, q->qe_auth_size));
	SCONE_TRY(scone_rbuf_u16(s, "certification_data.type", &type));
	if (type != CERT_PCK_CHAIN)
		return scone_err_set(
		    SCONE_ERR_UNSUPPORTED,
		    "%s: certification data type %u (only 5, the PCK certificate chain, is supported)",
		    s->what, type);
	SCONE_TRY(scone_rbuf_u32(s, "certification_data.size", &q->pck_chain_size));
	return scone_rbuf_view(s, "PCK certificate chain", &q->pck_chain, q->pck_chain_size);
}

static enum scone_err filled(const struct scone_rbuf *r, const char *what, size_t declared)
{
	if (scone_rbuf_left(r))
		return scone_err_set(SCONE_ERR_MALFORMED,
				     "quote: %s declares %zu bytes but its content ends after %zu", what,
				     declared, r->pos);
	return SCONE_ERR_OK;
}

static enum scone_err parse_sig_data(struct scone_rbuf *s, struct intel_quote *q)
{
	const uint8_t *inner;
	struct scone_rbuf c;
	uint16_t type;
	uint32_t size;

	SCONE_TRY(scone_rbuf_view(s, "quote signature", &q->signature, 64));
	SCONE_TRY(scone_rbuf_view(s, "attestation key", &q->attest_key, 64));
	if (q->version == 3)
		return parse_qe_part(s, q);
	SCONE_TRY(scone_rbuf_u16(s, "certification_data.type", &type));
	if (type != CERT_QE_REPORT)
		return scone_err_set(
		    SCONE_ERR_UNSUPPORTED,
		    "quote signature data: certification data type %u (6, QE report data, expected)", type);
	SCONE_TRY(scone_rbuf_u32(s, "certification_data.size", &size));
	SCONE_TRY(scone_rbuf_view(s, "QE report certification data", &inner, size));
	scone_rbuf_init(&c, inner, size, "QE report certification data");
	SCONE_TRY(parse_qe_part(&c, q));
	return filled(&c, "QE report certification data (type 6)", size);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

enum scone_err intel_quote_parse(const uint8_t *quote, size_t size, bool allow_padding, struct intel_quote *q)
{
	struct scone_rbuf r, s;
	const uint8_t *sig;
	uint32_t sig_size;

	memset(q, 0, sizeof(*q));
	if (size > SCONE_EVIDENCE_MAX)
		return scone_err_set(SCONE_ERR_TOO_LARGE, "quote: %zu bytes (at most %u accepted)", size,
				     SCONE_EVIDENCE_MAX);
	scone_rbuf_init(&r, quote, size, "quote");
	SCONE_TRY(parse_header(&r, q));
	SCONE_TRY(parse_body(&r, q));
	q->signed_size = r.pos;
	SCONE_TRY(scone_rbuf_u32(&r, "signature_data_len", &sig_size));
	SCONE_TRY(scone_rbuf_view(&r, "signature data", &sig, sig_size));
	scone_rbuf_init(&s, sig, sig_size, "quote signature data");
	SCONE_TRY(parse_sig_data(&s, q));
	SCONE_TRY(filled(&s, "signature_data_len", sig_size));
	q->size = r.pos;
	if (scone_rbuf_left(&r) && !(allow_padding && all_zero(quote + r.pos, scone_rbuf_left(&r))))
		return scone_err_set(SCONE_ERR_MALFORMED,
				     "quote: %zu bytes after the end of the signature data at byte %zu (%s)",
				     scone_rbuf_left(&r), r.pos,
				     allow_padding ? "not zero padding"
						   : "zero padding is accepted only when allowed");
	return SCONE_ERR_OK;
}
