/* snp_report.c - parse SEV-SNP reports and certificate tables (see snp_report.h). */
#include "attest/snp_report.h"

#include <string.h>

#include "lib/buf.h"

#define TABLE_MAX_ENTRIES 16

/* Certificate table GUIDs, in textual byte order (GHCB spec; go-sev-guest abi.go). */
static const uint8_t guid_vcek[16] = {0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64,
				      0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd};
static const uint8_t guid_vlek[16] = {0xa8, 0x07, 0x4b, 0xc2, 0xa2, 0x5a, 0x48, 0x3e,
				      0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0, 0xb8, 0xa1};
static const uint8_t guid_ask[16] = {0x4a, 0xb7, 0xb3, 0x79, 0xbb, 0xac, 0x4f, 0xe4,
				     0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7, 0x82};
static const uint8_t guid_ark[16] = {0xc0, 0xb4, 0x06, 0xa4, 0xa8, 0x03, 0x49, 0x52,
				     0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0, 0xae};

static bool zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

/* Reserved ranges (must be zero) of a report of version v: [start, end) pairs. */
static enum scone_err check_reserved(const uint8_t *b, uint32_t v)
{
	const size_t ranges[][2] = {
	    {0x04C, 0x050},
	    {v >= 3 ? 0x18B : 0x188, 0x1A0},
	    {0x1EB, 0x1EC},
	    {0x1EF, 0x1F0},
	    {v >= 5 ? 0x208 : 0x1F8, SNP_SIGNED_SIZE},
	    {SNP_O_SIG_R + 48, SNP_O_SIG_R + 72}, /* r and s are zero-extended P-384 values */
	    {SNP_O_SIG_S + 48, SNP_O_SIG_S + 72},
	    {SNP_O_SIG_S + 72, SNP_REPORT_SIZE},
	};

	for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++)
		if (!zero(b + ranges[i][0], ranges[i][1] - ranges[i][0]))
			return scone_err_set(
			    SCONE_ERR_MALFORMED,
			    "SNP report: reserved bytes 0x%03zx..0x%03zx are not zero (version %u)",
			    ranges[i][0], ranges[i][1], v);
	return SCONE_ERR_OK;
}

static enum scone_err check_fields(struct snp_report *r)
{
	uint32_t key = (r->signer_info >> 2) & 7;

	if (r->version < 2 || r->version > 5)
		return scone_err_set(SCONE_ERR_UNSUPPORTED, "SNP report: version %u (2 to 5 are known)",
				     r->version);
	if (r->sig_algo != 1)
		return scone_err_set(
		    SCONE_ERR_UNSUPPORTED,
		    "SNP report: signature algorithm %u at 0x034 (1, ECDSA P-384 SHA-384, expected)",
		    r->sig_algo);
	if (r->signer_info >> 5)
		return scone_err_set(SCONE_ERR_MALFORMED,
				     "SNP report: reserved signer info bits set (0x%08x at 0x048)",
				     r->signer_info);
	if (key != SNP_KEY_VCEK && key != SNP_KEY_VLEK)
		return scone_err_set(
		    SCONE_ERR_UNSUPPORTED,
		    "SNP report: signing key %u at 0x048 (0 VCEK and 1 VLEK are verifiable; 7 means "
		    "unsigned)",
		    key);
	r->key = (enum snp_key)key;
	if (!(r->policy & SNP_POLICY_RESERVED_1) || (r->policy >> 26))
		return scone_err_set(
		    SCONE_ERR_MALFORMED,
		    "SNP report: guest policy 0x%016llx at 0x008 has bit 17 clear or reserved bits set",
		    (unsigned long long)r->policy);
	if (r->vmpl > 3)
		return scone_err_set(SCONE_ERR_MALFORMED, "SNP report: VMPL %u at 0x030 (0..3)", r->vmpl);
	return check_reserved(r->raw, r->version);
}

static enum scone_err parse_report(const uint8_t *b, struct snp_report *r)
{
	struct scone_rbuf rb;

	memset(r, 0, sizeof(*r));
	r->raw = b;
	scone_rbuf_init(&rb, b, SNP_REPORT_SIZE, "SNP report");
	SCONE_TRY(scone_rbuf_u32(&rb, "VERSION", &r->version));
	SCONE_TRY(scone_rbuf_u32(&rb, "GUEST_SVN", &r->guest_svn));
	SCONE_TRY(scone_rbuf_u64(&rb, "POLICY", &r->policy));
	rb.pos = 0x030;
	SCONE_TRY(scone_rbuf_u32(&rb, "VMPL", &r->vmpl));
	SCONE_TRY(scone_rbuf_u32(&rb, "SIGNATURE_ALGO", &r->sig_algo));
	SCONE_TRY(scone_rbuf_u64(&rb, "CURRENT_TCB", &r->current_tcb));
	SCONE_TRY(scone_rbuf_u64(&rb, "PLATFORM_INFO", &r->platform_info));
	SCONE_TRY(scone_rbuf_u32(&rb, "signer info", &r->signer_info));
	rb.pos = 0x180;
	SCONE_TRY(scone_rbuf_u64(&rb, "REPORTED_TCB", &r->reported_tcb));
	rb.pos = 0x1E0;
	SCONE_TRY(scone_rbuf_u64(&rb, "COMMITTED_TCB", &r->committed_tcb));
	SCONE_TRY(scone_rbuf_bytes(&rb, "CURRENT_BUILD/MINOR/MAJOR", r->current_fw, 3));
	rb.pos = 0x1EC;
	SCONE_TRY(scone_rbuf_bytes(&rb, "COMMITTED_BUILD/MINOR/MAJOR", r->committed_fw, 3));
	rb.pos = 0x1F0;
	SCONE_TRY(scone_rbuf_u64(&rb, "LAUNCH_TCB", &r->launch_tcb));
	if (r->version >= 3) {
		r->has_cpuid = true;
		r->cpuid_fam = b[0x188];
		r->cpuid_mod = b[0x189];
		r->cpuid_step = b[0x18A];
	}
	if (r->version >= 5) {
		SCONE_TRY(scone_rbuf_u64(&rb, "LAUNCH_MIT_VECTOR", &r->launch_mit));
		SCONE_TRY(scone_rbuf_u64(&rb, "CURRENT_MIT_VECTOR", &r->current_mit));
	}
	return check_fields(r);
}

struct table_entry {
	const uint8_t *guid;
	uint32_t offset, length;
};

static struct snp_blob *slot_of(struct snp_certs *c, const uint8_t *guid)
{
	if (memcmp(guid, guid_vcek, 16) == 0)
		return &c->vcek;
	if (memcmp(guid, guid_vlek, 16) == 0)
		return &c->vlek;
	if (memcmp(guid, guid_ask, 16) == 0)
		return &c->ask;
	if (memcmp(guid, guid_ark, 16) == 0)
		return &c->ark;
	return NULL; /* another kind of entry: not ours */
}

/* The entries up to the all-zero terminator; *header the bytes they take. */
static enum scone_err read_entries(const uint8_t *t, size_t size, struct table_entry *e, size_t *n,
				   size_t *header)
{
	struct scone_rbuf r;

	scone_rbuf_init(&r, t, size, "SNP certificate table");
	for (*n = 0;; (*n)++) {
		struct table_entry x;
		SCONE_TRY(scone_rbuf_view(&r, "entry GUID", &x.guid, 16));
		SCONE_TRY(scone_rbuf_u32(&r, "entry offset", &x.offset));
		SCONE_TRY(scone_rbuf_u32(&r, "entry length", &x.length));
		if (zero(x.guid, 16) && x.offset == 0 && x.length == 0)
			break;
		if (*n == TABLE_MAX_ENTRIES)
			return scone_err_set(SCONE_ERR_MALFORMED,
					     "SNP certificate table: more than %d entries",
					     TABLE_MAX_ENTRIES);
		e[*n] = x;
	}
	*header = r.pos;
	return SCONE_ERR_OK;
}

/* Each entry's data inside the table, after the entries; *end the furthest byte used. */
static enum scone_err check_entries(const struct table_entry *e, size_t n, size_t header, size_t size,
				    size_t *end)
{
	*end = header;
	for (size_t i = 0; i < n; i++) {
		if (e[i].length == 0 || e[i].offset < header || e[i].offset > size ||
		    e[i].length > size - e[i].offset)
			return scone_err_set(
			    SCONE_ERR_MALFORMED,
			    "SNP certificate table: entry %zu (offset %u, length %u) is not inside the "
			    "table's %zu bytes after its %zu-byte header",
			    i, e[i].offset, e[i].length, size, header);
		if (e[i].offset + (size_t)e[i].length > *end)
			*end = e[i].offset + (size_t)e[i].length;
	}
	return SCONE_ERR_OK;
}

enum scone_err snp_cert_table_size(const uint8_t *table, size_t size, size_t *used)
{
	struct table_entry e[TABLE_MAX_ENTRIES];
	size_t n, header;

	SCONE_TRY(read_entries(table, size, e, &n, &header));
	return check_entries(e, n, header, size, used);
}

static enum scone_err parse_table(const uint8_t *t, size_t size, bool allow_padding, struct snp_certs *c)
{
	struct table_entry e[TABLE_MAX_ENTRIES];
	size_t n, header, end;

	SCONE_TRY(read_entries(t, size, e, &n, &header));
	SCONE_TRY(check_entries(e, n, header, size, &end));
	for (size_t i = 0; i < n; i++) {
		struct snp_blob *s = slot_of(c, e[i].guid);
		if (!s)
			continue;
		if (s->data)
			return scone_err_set(SCONE_ERR_MALFORMED,
					     "SNP certificate table: entry %zu repeats a GUID", i);
		s->data = t + e[i].offset;
		s->size = e[i].length;
	}
	if (end < size && !(allow_padding && zero(t + end, size - end)))
		return scone_err_set(
		    SCONE_ERR_MALFORMED,
		    "SNP evidence: %zu bytes after the certificate table's last entry (at evidence byte "
		    "%zu; %s)",
		    size - end, SNP_REPORT_SIZE + end,
		    allow_padding ? "not zero padding" : "zero padding is accepted only when allowed");
	c->present = true;
	return SCONE_ERR_OK;
}

enum scone_err snp_report_parse(const uint8_t *evidence, size_t size, bool allow_padding,
				struct snp_report *r, struct snp_certs *certs)
{
	enum scone_err err;

	memset(certs, 0, sizeof(*certs));
	memset(r, 0, sizeof(*r));
	if (size > 64u * 1024)
		return scone_err_set(SCONE_ERR_TOO_LARGE, "SNP evidence: %zu bytes (at most 65536 accepted)",
				     size);
	if (size < SNP_REPORT_SIZE)
		return scone_err_set(SCONE_ERR_MALFORMED,
				     "SNP evidence: %zu bytes, shorter than a report (%d bytes)", size,
				     SNP_REPORT_SIZE);
	SCONE_TRY(parse_report(evidence, r));
	if (size == SNP_REPORT_SIZE ||
	    (allow_padding && zero(evidence + SNP_REPORT_SIZE, size - SNP_REPORT_SIZE)))
		return SCONE_ERR_OK;
	err = parse_table(evidence + SNP_REPORT_SIZE, size - SNP_REPORT_SIZE, allow_padding, certs);
	if (err)
		return scone_err_set(
		    err, "SNP evidence: the %zu bytes after the report are not a certificate table: %s",
		    size - SNP_REPORT_SIZE, scone_err_detail());
	return SCONE_ERR_OK;
}
