/*
 * services.c - services[] (command, environment, pwd, attestation, fspf),
 * images[] (injection files, volume mounts) and volumes[].
 *
 * Decoded after secrets and volumes, so every $$SCONE::...$$ reference and
 * every volume name can be checked where it appears.
 */
#include "internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"

#define SVN_MAX 65535ul

/* ---- attestation ---- */

/*
 * A platform: a 64-hex host key (SCONE's QE public key before 7.0, a LAS
 * host key here), or SCONE 7's "INTEL_QE_ID:" and 32 hex digits (the Intel
 * DCAP QE ID of a machine; only hardware evidence carries one).
 */
static bool check_platform(struct pctx *c, const struct ynode *n)
{
	if (!strncmp(n->text, "INTEL_QE_ID:", 12)) {
		if (pol_is_hex(n->text + 12, 16))
			return true;
		pol_error(c, n->pos, "INTEL_QE_ID: is followed by 32 hex digits (16 bytes), got '%.80s'",
			  n->text + 12);
		return false;
	}
	if (pol_is_hex(n->text, 32))
		return true;
	pol_error(
	    c, n->pos,
	    "a platform is 64 hex digits (a platform key) or INTEL_QE_ID: and 32 hex digits, got '%.80s'",
	    n->text);
	return false;
}

static bool field_u16(struct pctx *c, const struct ynode *m, const char *key, int *out)
{
	const struct ynode *v = pol_field(c, m, key, false);
	unsigned long n;
	size_t saved;
	bool ok;

	if (!v)
		return false;
	saved = pol_path_key(c, key);
	ok = pol_uint(c, v, SVN_MAX, &n);
	if (ok)
		*out = (int)n;
	pol_path_restore(c, saved);
	return ok;
}

/* mrsigner, isvprodid, isvsvn | isvsvn_min/isvsvn_max from map m (a signer: or the variant itself). */
static void decode_signer(struct pctx *c, const struct ynode *m, struct scone_attest_variant *v)
{
	const struct ynode *n = pol_field(c, m, "mrsigner", true);
	int svn = -1;
	size_t saved;

	if (n) {
		saved = pol_path_key(c, "mrsigner");
		if (pol_expect(c, n, YN_SCALAR, "an MRSIGNER (64 hex digits)") && pol_check_hex32(c, n)) {
			v->mrsigner = pol_str(c, n);
			pol_lower(v->mrsigner);
		}
		pol_path_restore(c, saved);
	}
	if (!pol_map_get(m, "isvprodid"))
		pol_error(c, m->pos,
			  "missing required key 'isvprodid' (a signer is checked with its product id)");
	field_u16(c, m, "isvprodid", &v->isvprodid);
	field_u16(c, m, "isvsvn", &svn);
	field_u16(c, m, "isvsvn_min", &v->isvsvn_min);
	field_u16(c, m, "isvsvn_max", &v->isvsvn_max);
	if (pol_map_get(m, "isvsvn") && (pol_map_get(m, "isvsvn_min") || pol_map_get(m, "isvsvn_max")))
		pol_error(c, pol_map_get(m, "isvsvn")->pos,
			  "give isvsvn or a range (isvsvn_min / isvsvn_max), not both");
	if (svn >= 0)
		v->isvsvn_min = v->isvsvn_max = svn;
	if (v->isvsvn_min >= 0 && v->isvsvn_max >= 0 && v->isvsvn_min > v->isvsvn_max)
		pol_error(c, m->pos, "isvsvn_min is larger than isvsvn_max");
}

static bool check_hex48(struct pctx *c, const struct ynode *n)
{
	if (pol_is_hex(n->text, 48))
		return true;
	pol_error(c, n->pos, "expected 96 hex digits (48 bytes), got '%.100s'", n->text);
	return false;
}

/* One lowercase hex value of bytes at key of m, or NULL. */
static char *field_hex(struct pctx *c, const struct ynode *m, const char *key, size_t bytes)
{
	const struct ynode *n = pol_field(c, m, key, false);
	size_t saved;
	char *out = NULL;

	if (!n)
		return NULL;
	saved = pol_path_key(c, key);
	if (pol_expect(c, n, YN_SCALAR, "hex digits") && !n->null) {
		if (pol_is_hex(n->text, bytes)) {
			out = pol_str(c, n);
			pol_lower(out);
		} else {
			pol_error(c, n->pos, "expected %zu hex digits (%zu bytes), got '%.100s'", 2 * bytes,
				  bytes, n->text);
		}
	}
	pol_path_restore(c, saved);
	return out;
}

/*
 * The TDX and SEV-SNP factors of a variant (hardware mode): mrtd, rtmr0-3;
 * measurement, host_data. A variant is of one kind: SGX, TDX or SNP.
 */
static void decode_vm_factors(struct pctx *c, const struct ynode *m, struct scone_attest_variant *v)
{
	static const char *const rtmr[4] = {"rtmr0", "rtmr1", "rtmr2", "rtmr3"};
	const struct ynode *n;
	size_t saved;
	bool sgx = pol_map_get(m, "mrenclave") || pol_map_get(m, "mrenclaves") || pol_map_get(m, "signer") ||
		   pol_map_get(m, "mrsigner");
	bool tdx = pol_map_get(m, "mrtd") != NULL;
	bool snp = pol_map_get(m, "measurement") || pol_map_get(m, "host_data");

	for (int i = 0; i < 4; i++)
		tdx = tdx || pol_map_get(m, rtmr[i]);
	if (sgx + tdx + snp > 1)
		pol_error(c, m->pos,
			  "a variant is for one kind of TEE: SGX (mrenclave, signer), TDX (mrtd, rtmr0-3) or "
			  "SEV-SNP (measurement, host_data); give each its own variant");
	if ((n = pol_field(c, m, "mrtd", false))) {
		saved = pol_path_key(c, "mrtd");
		pol_str_list(c, n, true, true, check_hex48, &v->mrtds);
		pol_path_restore(c, saved);
	}
	for (int i = 0; i < 4; i++)
		v->rtmr[i] = field_hex(c, m, rtmr[i], 48);
	if ((n = pol_field(c, m, "measurement", false))) {
		saved = pol_path_key(c, "measurement");
		pol_str_list(c, n, true, true, check_hex48, &v->snp_measurements);
		pol_path_restore(c, saved);
	}
	v->host_data = field_hex(c, m, "host_data", 32);
	if (tdx && !pol_map_get(m, "mrtd"))
		pol_error(c, m->pos,
			  "a TDX variant needs mrtd (the TD's measurement): rtmr0-3 alone do not "
			  "identify the TD");
	if (snp && !pol_map_get(m, "measurement"))
		pol_error(c, m->pos,
			  "an SEV-SNP variant needs measurement: host_data alone does not identify "
			  "the guest");
}

static void decode_variant(struct pctx *c, const struct ynode *m, struct scone_attest_variant *v)
{
	static const char *const keys[] = {
	    "mrenclave",  "mrenclaves", "signer",      "mrsigner",  "isvprodid", "isvsvn",
	    "isvsvn_min", "isvsvn_max", "platforms",   "mrtd",	    "rtmr0",	 "rtmr1",
	    "rtmr2",	  "rtmr3",	"measurement", "host_data", NULL};
	static const char *const signer_keys[] = {"mrsigner",	"isvprodid",  "isvsvn",
						  "isvsvn_min", "isvsvn_max", NULL};
	const struct ynode *n;
	size_t saved;

	v->pos = m->pos;
	v->isvprodid = v->isvsvn_min = v->isvsvn_max = -1;
	pol_check_keys(c, m, keys);
	if (pol_map_get(m, "mrenclave") && pol_map_get(m, "mrenclaves"))
		pol_error(c, m->pos, "give mrenclave or mrenclaves, not both");
	for (int k = 0; k < 2; k++) {
		const char *key = k ? "mrenclaves" : "mrenclave";
		if ((n = pol_field(c, m, key, false))) {
			saved = pol_path_key(c, key);
			pol_str_list(c, n, true, true, pol_check_hex32, &v->mrenclaves);
			pol_path_restore(c, saved);
		}
	}
	if ((n = pol_field(c, m, "signer", false))) {
		saved = pol_path_key(c, "signer");
		if (pol_map_get(m, "mrsigner"))
			pol_error(c, n->pos,
				  "give signer: {mrsigner, isvprodid, ...} or mrsigner beside it, not both");
		if (pol_expect(c, n, YN_MAP, "a mapping {mrsigner, isvprodid, isvsvn ...}")) {
			pol_check_keys(c, n, signer_keys);
			decode_signer(c, n, v);
		}
		pol_path_restore(c, saved);
	} else if (pol_map_get(m, "mrsigner") || pol_map_get(m, "isvprodid") || pol_map_get(m, "isvsvn") ||
		   pol_map_get(m, "isvsvn_min") || pol_map_get(m, "isvsvn_max")) {
		decode_signer(c, m, v);
	}
	if ((n = pol_field(c, m, "platforms", false))) {
		saved = pol_path_key(c, "platforms");
		pol_str_list(c, n, true, true, check_platform, &v->platforms);
		pol_path_restore(c, saved);
	}
	decode_vm_factors(c, m, v);
	if (!pol_map_get(m, "mrenclave") && !pol_map_get(m, "mrenclaves") && !pol_map_get(m, "signer") &&
	    !pol_map_get(m, "mrsigner") && !pol_map_get(m, "mrtd") && !pol_map_get(m, "measurement") &&
	    !pol_map_get(m, "host_data") && !pol_map_get(m, "rtmr0") && !pol_map_get(m, "rtmr1") &&
	    !pol_map_get(m, "rtmr2") && !pol_map_get(m, "rtmr3"))
		pol_error(c, m->pos,
			  "an attestation variant needs mrenclave or a signer (SGX), mrtd (TDX) or "
			  "measurement (SEV-SNP); platforms alone do not identify the program");
}

/* attestation: a variant (mapping) or a list of variants. */
static void decode_attestation(struct pctx *c, const struct ynode *n, struct scone_service *svc)
{
	size_t count = n->kind == YN_SEQ ? n->n : 1;
	size_t saved = pol_path_key(c, "attestation");

	if (n->kind != YN_SEQ && !pol_expect(c, n, YN_MAP, "a mapping (one variant) or a list of variants"))
		goto out;
	if (count == 0) {
		pol_error(c, n->pos, "an empty list of attestation variants");
		goto out;
	}
	svc->variants = pol_calloc(c, count, sizeof(*svc->variants));
	if (!svc->variants)
		goto out;
	svc->n_variants = count;
	for (size_t i = 0; i < count; i++) {
		const struct ynode *m = n->kind == YN_SEQ ? n->items[i] : n;
		size_t s2 = n->kind == YN_SEQ ? pol_path_index(c, i) : c->path_len;
		svc->variants[i].isvprodid = svc->variants[i].isvsvn_min = svc->variants[i].isvsvn_max = -1;
		if (pol_expect(c, m, YN_MAP, "an attestation variant (mrenclave / signer)"))
			decode_variant(c, m, &svc->variants[i]);
		pol_path_restore(c, s2);
	}
out:
	pol_path_restore(c, saved);
}

/* The deprecated mrenclaves: [..] is one variant with those measurements. */
static void decode_mrenclaves(struct pctx *c, const struct ynode *n, struct scone_service *svc)
{
	size_t saved = pol_path_key(c, "mrenclaves");

	svc->variants = pol_calloc(c, 1, sizeof(*svc->variants));
	if (svc->variants) {
		svc->n_variants = 1;
		svc->variants[0].pos = n->pos;
		svc->variants[0].isvprodid = svc->variants[0].isvsvn_min = svc->variants[0].isvsvn_max = -1;
		pol_str_list(c, n, true, true, pol_check_hex32, &svc->variants[0].mrenclaves);
		if (n->kind == YN_SEQ && n->n == 0)
			pol_error(c, n->pos, "an empty list of measurements");
	}
	pol_path_restore(c, saved);
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Sort l and drop repeats, in O(n log n): a session may list 10^5
 * measurements, so no pairwise comparison. The dropped strings are freed.
 */
static void strs_sort_unique(struct scone_strs *l)
{
	size_t k = 0;

	if (l->n < 2)
		return;
	qsort(l->v, l->n, sizeof(*l->v), str_cmp);
	for (size_t i = 0; i < l->n; i++) {
		if (k > 0 && !strcmp(l->v[k - 1], l->v[i]))
			free(l->v[i]);
		else
			l->v[k++] = l->v[i];
	}
	l->n = k;
	l->v[k] = NULL;
}

/* The flat lists of the model: the union over the variants, sorted. */
static void flatten_variants(struct pctx *c, struct scone_service *svc)
{
	for (size_t i = 0; i < svc->n_variants; i++) {
		struct scone_attest_variant *v = &svc->variants[i];
		for (size_t j = 0; j < v->mrenclaves.n; j++)
			pol_strs_add(c, &svc->mrenclaves, v->mrenclaves.v[j]);
		if (v->mrsigner)
			pol_strs_add(c, &svc->mrsigners, v->mrsigner);
		for (size_t j = 0; j < v->platforms.n; j++)
			pol_strs_add(c, &svc->platforms, v->platforms.v[j]);
	}
	strs_sort_unique(&svc->mrenclaves);
	strs_sort_unique(&svc->mrsigners);
	strs_sort_unique(&svc->platforms);
}

/* ---- command and environment ---- */

/* The N of every "@@N" in word into seen (bits 1..63); a second use of one is SCONE's fatal error. */
static bool host_arg_twice(const char *word, uint64_t *seen, unsigned *dup)
{
	for (const char *p = strstr(word, "@@"); p; p = strstr(p + 2, "@@")) {
		unsigned long n = 0;
		const char *d = p + 2;
		if (*d < '0' || *d > '9')
			continue;
		while (*d >= '0' && *d <= '9' && n < 100000)
			n = n * 10 + (unsigned long)(*d++ - '0');
		if (n == 0 || n > 63)
			continue; /* 0 and large numbers fail at start, with the arguments in hand */
		if (*seen & (1ull << n)) {
			*dup = (unsigned)n;
			return true;
		}
		*seen |= 1ull << n;
	}
	return false;
}

static void check_host_args(struct pctx *c, const struct ynode *n, const struct scone_strs *argv)
{
	uint64_t seen = 0;
	unsigned dup = 0;

	for (size_t i = 0; i < argv->n; i++) {
		if (host_arg_twice(argv->v[i], &seen, &dup)) {
			pol_error(
			    c, n->pos,
			    "@@%u is used twice: SCONE refuses a host argument used twice (a fatal error at "
			    "start); use each @@N once",
			    dup);
			return;
		}
	}
}

static void decode_command(struct pctx *c, const struct ynode *n, struct scone_service *svc,
			   const struct scone_session *s)
{
	size_t saved = pol_path_key(c, "command");

	if (n->kind == YN_SCALAR && !n->null) {
		enum scone_err e = scone_shell_split(n->text, &svc->command);
		if (e == SCONE_ERR_NOMEM)
			c->nomem = true;
		else if (e != SCONE_ERR_OK)
			pol_error(c, n->pos, "%s (quote the word, or give command as a list)",
				  scone_err_detail());
		else if (svc->command.n == 0)
			pol_error(c, n->pos, "an empty command");
		else if (svc->command.n > SCONE_SESSION_MAX_ITEMS)
			pol_error(c, n->pos, "more than %d words in the command", SCONE_SESSION_MAX_ITEMS);
		else
			pol_check_template(c, n, n->text, n->len, s);
	} else if (pol_expect(c, n, YN_SEQ, "a string or a list of strings")) {
		if (n->n == 0)
			pol_error(c, n->pos, "an empty command");
		if (pol_str_list(c, n, false, false, NULL, &svc->command)) {
			for (size_t i = 0; i < n->n; i++) {
				size_t s2 = pol_path_index(c, i);
				pol_check_template(c, n->items[i], n->items[i]->text, n->items[i]->len, s);
				pol_path_restore(c, s2);
			}
		}
	}
	check_host_args(c, n, &svc->command);
	pol_path_restore(c, saved);
}

/* A path field checked as absolute (NULL if absent or bad). */
static char *field_path(struct pctx *c, const struct ynode *m, const char *key)
{
	const struct ynode *v = pol_field(c, m, key, false);
	size_t saved;
	char *p = NULL;

	if (!v)
		return NULL;
	saved = pol_path_key(c, key);
	if (pol_expect(c, v, YN_SCALAR, "an absolute path") && pol_check_abs_path(c, v))
		p = pol_str(c, v);
	pol_path_restore(c, saved);
	return p;
}

/* fspf_key / fspf_tag of a service or volume. */
static void decode_fspf(struct pctx *c, const struct ynode *m, char **key, char **tag,
			const struct scone_session *s)
{
	const struct ynode *k = pol_field(c, m, "fspf_key", false), *t = pol_field(c, m, "fspf_tag", false);
	size_t saved;

	if (k) {
		saved = pol_path_key(c, "fspf_key");
		if (pol_expect(c, k, YN_SCALAR, "a key (64 hex digits or $$SCONE::NAME$$)")) {
			pol_check_fspf_key(c, k, s);
			*key = pol_str(c, k);
		}
		pol_path_restore(c, saved);
	}
	if (t) {
		saved = pol_path_key(c, "fspf_tag");
		if (pol_expect(c, t, YN_SCALAR, "a tag (32 hex digits)")) {
			if (!pol_is_hex(t->text, 16))
				pol_error(c, t->pos, "expected 32 hex digits (16 bytes), got '%.80s'",
					  t->text);
			else if ((*tag = pol_str(c, t)))
				pol_lower(*tag);
		}
		pol_path_restore(c, saved);
	}
}

/*
 * Service-level platforms restrict every variant: they are copied into
 * each, so a verifier reading the variants alone sees them. Platforms
 * given both here and in a variant are refused (which would win?).
 */
static void service_platforms(struct pctx *c, const struct ynode *n, struct scone_service *svc)
{
	struct scone_strs list = {0};
	size_t saved = pol_path_key(c, "platforms");

	if (pol_str_list(c, n, true, true, check_platform, &list)) {
		for (size_t i = 0; i < svc->n_variants; i++) {
			struct scone_attest_variant *v = &svc->variants[i];
			if (v->platforms.n) {
				pol_error(c, n->pos,
					  "platforms are given here and in attestation variant %zu: "
					  "give them in one place",
					  i);
				break;
			}
			for (size_t j = 0; j < list.n; j++)
				pol_strs_add(c, &v->platforms, list.v[j]);
		}
		for (size_t j = 0; j < list.n; j++)
			pol_strs_add(c, &svc->platforms, list.v[j]);
	}
	scone_strs_free(&list);
	pol_path_restore(c, saved);
}

/*
 * fspf_update_policy (SCONE 0.3.11). no_rollback_protection: the main FSPF
 * is opened without checking its tag. The default,
 * rollback_protected_reinitializable, is what scone does without the key:
 * the state must be the session's fspf_tag (SCONE also accepts the latest
 * state a service wrote, which scone does not track: a difference).
 */
static void decode_fspf_policy(struct pctx *c, const struct ynode *m, struct scone_service *svc)
{
	const struct ynode *v = pol_field(c, m, "fspf_update_policy", false);
	size_t saved;

	if (!v)
		return;
	saved = pol_path_key(c, "fspf_update_policy");
	if (pol_expect(c, v, YN_SCALAR, "rollback_protected_reinitializable or no_rollback_protection")) {
		if (!strcmp(v->text, "no_rollback_protection"))
			svc->fspf_no_rollback = true;
		else if (strcmp(v->text, "rollback_protected_reinitializable"))
			pol_error(
			    c, v->pos,
			    "unknown fspf_update_policy '%.40s': use rollback_protected_reinitializable (the "
			    "default) or no_rollback_protection",
			    v->text);
	}
	if (!pol_map_get(m, "fspf_path"))
		pol_error(c, v->pos, "fspf_update_policy needs fspf_path (the main FSPF it applies to)");
	pol_path_restore(c, saved);
}

static void decode_service(struct pctx *c, const struct ynode *m, struct scone_service *svc,
			   const struct scone_session *s)
{
	static const char *const keys[] = {"name",
					   "image_name",
					   "command",
					   "environment",
					   "pwd",
					   "attestation",
					   "mrenclaves",
					   "platforms",
					   "fspf_path",
					   "fspf_key",
					   "fspf_tag",
					   "fspf_update_policy",
					   "one_time_password_shared_secret",
					   NULL};
	const struct ynode *n;
	size_t saved, deferred;
	bool measured_by_cas;

	svc->pos = m->pos;
	pol_check_keys(c, m, keys);
	if ((n = pol_field(c, m, "name", true))) {
		saved = pol_path_key(c, "name");
		if (pol_expect(c, n, YN_SCALAR, "a name") && pol_check_name(c, n, "service"))
			svc->name = pol_str(c, n);
		pol_path_restore(c, saved);
	}
	if ((n = pol_field(c, m, "image_name", false))) {
		svc->image_name = pol_field_str(c, m, "image_name", false);
		saved = pol_path_key(c, "image_name");
		if (svc->image_name && !scone_session_image(s, svc->image_name))
			pol_error(c, n->pos, "no image named '%.80s' in images", svc->image_name);
		pol_path_restore(c, saved);
	}
	if ((n = pol_field(c, m, "command", false)))
		decode_command(c, n, svc, s);
	if ((n = pol_field(c, m, "environment", false)))
		pol_decode_env(c, n, svc, s);
	svc->pwd = field_path(c, m, "pwd");
	deferred = c->deferred;
	if (pol_map_get(m, "attestation") && pol_map_get(m, "mrenclaves"))
		pol_error(c, pol_map_get(m, "mrenclaves")->pos,
			  "give attestation or the deprecated mrenclaves, not both");
	else if ((n = pol_field(c, m, "attestation", false)))
		decode_attestation(c, n, svc);
	else if ((n = pol_field(c, m, "mrenclaves", false)))
		decode_mrenclaves(c, n, svc);
	measured_by_cas = c->deferred > deferred;
	if ((n = pol_field(c, m, "platforms", false)))
		service_platforms(c, n, svc);
	svc->dynamic = c->deferred > deferred;
	flatten_variants(c, svc);
	if (s->mode != SCONE_ATTEST_NONE && svc->n_variants == 0 && !measured_by_cas)
		pol_error(c, m->pos,
			  "the service has no attestation: list its measurements (mrenclaves: [...] or "
			  "attestation:) "
			  "or set security.attestation.mode: none");
	if (s->mode == SCONE_ATTEST_LAS)
		pol_check_las_service(c, m, svc);
	if ((n = pol_field(c, m, "one_time_password_shared_secret", false)))
		svc->otp_secret = pol_decode_otp(c, n, "one_time_password_shared_secret", s);
	svc->fspf_path = field_path(c, m, "fspf_path");
	decode_fspf(c, m, &svc->fspf_key, &svc->fspf_tag, s);
	decode_fspf_policy(c, m, svc);
	if (svc->fspf_path && !svc->fspf_no_rollback)
		pol_note(
		    c, SCONE_NOTE_DIFFERENCE, pol_map_get(m, "fspf_path")->pos,
		    "the main FSPF must be at fspf_tag at every start: SCONE (rollback_protected_"
		    "reinitializable) also accepts the latest state a service wrote, which scone does not "
		    "track");
	if ((svc->fspf_path || svc->fspf_key || svc->fspf_tag) &&
	    !(pol_map_get(m, "fspf_path") && pol_map_get(m, "fspf_key") &&
	      (pol_map_get(m, "fspf_tag") || svc->fspf_no_rollback)))
		pol_error(
		    c, m->pos,
		    "fspf_path, fspf_key and fspf_tag go together: give all three (fspf_tag may be left "
		    "out with fspf_update_policy: no_rollback_protection)");
}

void pol_decode_services(struct pctx *c, const struct ynode *list, struct scone_session *s)
{
	size_t saved = pol_path_key(c, "services");

	if (pol_expect(c, list, YN_SEQ, "a list of services")) {
		s->services = pol_calloc(c, list->n, sizeof(*s->services));
		if (s->services) {
			s->n_services = list->n;
			for (size_t i = 0; i < list->n; i++) {
				size_t s2 = pol_path_index(c, i);
				if (pol_expect(c, list->items[i], YN_MAP,
					       "a service (a mapping with name, command ...)"))
					decode_service(c, list->items[i], &s->services[i], s);
				pol_path_restore(c, s2);
			}
			pol_check_unique(c, list, "name", "service");
		}
	}
	pol_path_restore(c, saved);
}

/* ---- images ---- */

/* "0640", 0640, "0o640", 640: octal, at most 0777. */
static bool parse_mode(const char *t, unsigned *out)
{
	unsigned v = 0;
	size_t i = 0;

	if (t[0] == '0' && (t[1] == 'o' || t[1] == 'O'))
		i = 2;
	if (!t[i] || strlen(t + i) > 4)
		return false;
	for (; t[i]; i++) {
		if (t[i] < '0' || t[i] > '7')
			return false;
		v = v * 8 + (unsigned)(t[i] - '0');
	}
	if (v > 0777)
		return false;
	*out = v;
	return true;
}

static void decode_injection_file(struct pctx *c, const struct ynode *n, struct scone_injection_file *f,
				  const struct scone_session *s)
{
	static const char *const keys[] = {"path", "content", "permission", "permissions", NULL};
	const struct ynode *v;
	size_t saved;

	f->pos = n->pos;
	f->mode = 0700;				/* SCONE's default for injection files */
	if (n->kind == YN_SCALAR && !n->null) { /* a bare path: the image's own file, with references */
		if (pol_check_abs_path(c, n))
			f->path = pol_str(c, n);
		return;
	}
	if (!pol_expect(c, n, YN_MAP, "a path or a mapping {path, content}"))
		return;
	pol_check_keys(c, n, keys);
	f->path = field_path(c, n, "path");
	if (!pol_map_get(n, "path"))
		pol_error(c, n->pos, "missing required key 'path'");
	if ((v = pol_field(c, n, "content", false))) {
		saved = pol_path_key(c, "content");
		if ((f->content = pol_str(c, v))) {
			f->content_len = v->len;
			pol_check_template(c, v, v->text, v->len, s);
		}
		pol_path_restore(c, saved);
	}
	if (pol_map_get(n, "permission") && pol_map_get(n, "permissions"))
		pol_error(c, n->pos, "give permission or permissions, not both");
	for (int k = 0; k < 2; k++) {
		const char *key = k ? "permissions" : "permission";
		if (!(v = pol_field(c, n, key, false)))
			continue;
		saved = pol_path_key(c, key);
		if (pol_expect(c, v, YN_SCALAR, "an octal mode like \"0640\"") &&
		    !parse_mode(v->text, &f->mode))
			pol_error(c, v->pos,
				  "'%.20s' is not an octal file mode from 0000 to 0777 (e.g. \"0640\")",
				  v->text);
		pol_path_restore(c, saved);
	}
}

/*
 * update_policy of a mount or a volume export (SCONE 0.3.2): rollback_protected
 * (the default) or ephemeral; no_rollback_protection is refused.
 */
bool pol_update_policy(struct pctx *c, const struct ynode *m, enum scone_update_policy *out)
{
	const struct ynode *v = pol_field(c, m, "update_policy", false);
	size_t saved;
	bool ok = false;

	*out = SCONE_UPDATE_ROLLBACK_PROTECTED;
	if (!v)
		return true;
	saved = pol_path_key(c, "update_policy");
	if (pol_expect(c, v, YN_SCALAR, "rollback_protected or ephemeral")) {
		ok = true;
		if (!strcmp(v->text, "ephemeral")) {
			*out = SCONE_UPDATE_EPHEMERAL;
		} else if (!strcmp(v->text, "no_rollback_protection")) {
			pol_error(
			    c, v->pos,
			    "update_policy: no_rollback_protection would let anyone with the disk roll a "
			    "volume "
			    "back unnoticed; scone always checks a volume's tag: use rollback_protected or "
			    "ephemeral");
			ok = false;
		} else if (strcmp(v->text, "rollback_protected")) {
			pol_error(c, v->pos,
				  "unknown update_policy '%.40s': use rollback_protected or ephemeral",
				  v->text);
			ok = false;
		}
	}
	pol_path_restore(c, saved);
	return ok;
}

static void decode_image_volume(struct pctx *c, const struct ynode *n, struct scone_image_volume *iv,
				const struct scone_session *s)
{
	static const char *const keys[] = {"name", "path", "update_policy", NULL};
	const struct ynode *v;

	if (!pol_expect(c, n, YN_MAP, "a mapping {name, path}"))
		return;
	pol_check_keys(c, n, keys);
	iv->name = pol_field_str(c, n, "name", true);
	if (iv->name && !scone_session_volume(s, iv->name)) {
		size_t saved = pol_path_key(c, "name");
		v = pol_map_get(n, "name");
		pol_error(c, v->pos, "no volume named '%.80s' in volumes", iv->name);
		pol_path_restore(c, saved);
	}
	iv->path = field_path(c, n, "path");
	if (!pol_map_get(n, "path"))
		pol_error(c, n->pos, "missing required key 'path' (the mount point)");
	pol_update_policy(c, n, &iv->update_policy);
}

/* Report a path used twice in one image. */
static void unique_paths(struct pctx *c, const struct ynode *list, char **paths, size_t stride,
			 const char *what)
{
	for (size_t i = 0; i < list->n; i++) {
		const char *p = *(char **)((char *)paths + i * stride);
		for (size_t j = 0; p && j < i; j++) {
			const char *q = *(char **)((char *)paths + j * stride);
			if (q && !strcmp(p, q)) {
				size_t saved = pol_path_index(c, i);
				pol_error(c, list->items[i]->pos, "%s '%.80s' is listed twice", what, p);
				pol_path_restore(c, saved);
				break;
			}
		}
	}
}

static bool check_image_name(struct pctx *c, const struct ynode *n)
{
	bool ok = n->len > 0 && n->len <= SCONE_SESSION_NAME_MAX;

	for (size_t i = 0; ok && i < n->len; i++)
		ok = n->text[i] > ' ' && n->text[i] < 0x7f;
	if (!ok)
		pol_error(c, n->pos, "an image name is 1 to %d printable characters without spaces",
			  SCONE_SESSION_NAME_MAX);
	return ok;
}

/* provide_secrets (SCONE 0.3.11): the secrets the image's own files may use. */
static bool check_secret_name(struct pctx *c, const struct ynode *n)
{
	return pol_check_name(c, n, "secret");
}

static void decode_provide_secrets(struct pctx *c, const struct ynode *m, struct scone_image *img,
				   const struct scone_session *s)
{
	const struct ynode *v = pol_field(c, m, "provide_secrets", false);
	size_t saved;

	if (!v)
		return;
	saved = pol_path_key(c, "provide_secrets");
	img->restrict_secrets = true;
	if (pol_str_list(c, v, false, false, check_secret_name, &img->provide_secrets))
		for (size_t i = 0; i < img->provide_secrets.n; i++)
			if (!scone_session_secret(s, img->provide_secrets.v[i])) {
				size_t s2 = pol_path_index(c, i);
				pol_error(c, v->items[i]->pos, "no secret named '%.80s' in secrets",
					  img->provide_secrets.v[i]);
				pol_path_restore(c, s2);
			}
	pol_path_restore(c, saved);
}

/* Is p at or below the directory dir? */
static bool path_below(const char *p, const char *dir)
{
	size_t n = strlen(dir);

	while (n > 1 && dir[n - 1] == '/')
		n--;
	return !strncmp(p, dir, n) && (p[n] == '/' || p[n] == '\0' || (n == 1 && dir[0] == '/'));
}

/*
 * An injection file inside a volume the same image mounts would not be
 * seen: the runtime serves every path below a mount point from the volume.
 * Refused rather than accepted and left out.
 */
static void files_outside_volumes(struct pctx *c, const struct ynode *m, const struct scone_image *img)
{
	const struct ynode *files = pol_map_get(m, "injection_files");

	for (size_t i = 0; files && files->kind == YN_SEQ && i < img->n_files; i++) {
		const struct scone_injection_file *f = &img->files[i];
		for (size_t j = 0; f->path && j < img->n_volumes; j++) {
			if (!img->volumes[j].path || !path_below(f->path, img->volumes[j].path))
				continue;
			size_t s2 = pol_path_key(c, "injection_files");
			size_t s3 = pol_path_index(c, i);
			pol_error(
			    c, files->items[i]->pos,
			    "'%.80s' is inside volume %.40s, mounted at %.80s by this image: the runtime "
			    "serves "
			    "that path from the volume, so the injection file would not be seen; put it "
			    "outside the mount point",
			    f->path, img->volumes[j].name ? img->volumes[j].name : "", img->volumes[j].path);
			pol_path_restore(c, s3);
			pol_path_restore(c, s2);
			break;
		}
	}
}

static void decode_image(struct pctx *c, const struct ynode *m, struct scone_image *img,
			 const struct scone_session *s)
{
	static const char *const keys[] = {"name", "injection_files", "volumes", "provide_secrets", NULL};
	const struct ynode *n;
	size_t saved;

	img->pos = m->pos;
	pol_check_keys(c, m, keys);
	if ((n = pol_field(c, m, "name", true))) {
		saved = pol_path_key(c, "name");
		if (pol_expect(c, n, YN_SCALAR, "a name") && check_image_name(c, n))
			img->name = pol_str(c, n);
		pol_path_restore(c, saved);
	}
	if ((n = pol_field(c, m, "injection_files", false))) {
		saved = pol_path_key(c, "injection_files");
		if (pol_expect(c, n, YN_SEQ, "a list of files") &&
		    (img->files = pol_calloc(c, n->n, sizeof(*img->files)))) {
			img->n_files = n->n;
			for (size_t i = 0; i < n->n; i++) {
				size_t s2 = pol_path_index(c, i);
				decode_injection_file(c, n->items[i], &img->files[i], s);
				pol_path_restore(c, s2);
			}
			unique_paths(c, n, &img->files[0].path, sizeof(*img->files), "file");
		}
		pol_path_restore(c, saved);
	}
	if ((n = pol_field(c, m, "volumes", false))) {
		saved = pol_path_key(c, "volumes");
		if (pol_expect(c, n, YN_SEQ, "a list of {name, path}") &&
		    (img->volumes = pol_calloc(c, n->n, sizeof(*img->volumes)))) {
			img->n_volumes = n->n;
			for (size_t i = 0; i < n->n; i++) {
				size_t s2 = pol_path_index(c, i);
				decode_image_volume(c, n->items[i], &img->volumes[i], s);
				pol_path_restore(c, s2);
			}
			unique_paths(c, n, &img->volumes[0].path, sizeof(*img->volumes), "mount point");
		}
		pol_path_restore(c, saved);
	}
	decode_provide_secrets(c, m, img, s);
	files_outside_volumes(c, m, img);
}

void pol_decode_images(struct pctx *c, const struct ynode *list, struct scone_session *s)
{
	size_t saved = pol_path_key(c, "images");

	if (pol_expect(c, list, YN_SEQ, "a list of images")) {
		s->images = pol_calloc(c, list->n, sizeof(*s->images));
		if (s->images) {
			s->n_images = list->n;
			for (size_t i = 0; i < list->n; i++) {
				size_t s2 = pol_path_index(c, i);
				if (pol_expect(c, list->items[i], YN_MAP,
					       "an image (a mapping with name ...)"))
					decode_image(c, list->items[i], &s->images[i], s);
				pol_path_restore(c, s2);
			}
			pol_check_unique(c, list, "name", "image");
		}
	}
	pol_path_restore(c, saved);
}

/* ---- volumes ---- */

/* files (SCONE 0.3.11): encrypted, the default and what scone's volumes are; authenticated-only refused. */
static void decode_volume_files(struct pctx *c, const struct ynode *m)
{
	const struct ynode *v = pol_field(c, m, "files", false);
	size_t saved;

	if (!v)
		return;
	saved = pol_path_key(c, "files");
	if (pol_expect(c, v, YN_SCALAR, "encrypted")) {
		if (!strcmp(v->text, "authenticated-only"))
			pol_error(
			    c, v->pos,
			    "files: authenticated-only (plaintext files with authentication tags) is not "
			    "made by "
			    "scone's runtime, which creates encrypted volumes: remove it (or write files: "
			    "encrypted)");
		else if (strcmp(v->text, "encrypted"))
			pol_error(c, v->pos, "unknown files mode '%.40s': use encrypted", v->text);
	}
	pol_path_restore(c, saved);
}

static void decode_volume(struct pctx *c, const struct ynode *m, struct scone_volume *vol,
			  const struct scone_session *s)
{
	static const char *const keys[] = {"name", "fspf_key", "fspf_tag", "export", "import", "files", NULL};
	const struct ynode *n;
	size_t saved;

	vol->pos = m->pos;
	pol_check_keys(c, m, keys);
	if ((n = pol_field(c, m, "name", true))) {
		saved = pol_path_key(c, "name");
		if (pol_expect(c, n, YN_SCALAR, "a name") && pol_check_name(c, n, "volume"))
			vol->name = pol_str(c, n);
		pol_path_restore(c, saved);
	}
	if ((n = pol_field(c, m, "import", false))) {
		for (size_t i = 0; i < m->n; i++) {
			const struct ynode *k = m->items[2 * i];
			if (strcmp(k->text, "name") && strcmp(k->text, "import"))
				pol_error(
				    c, k->pos,
				    "'%s' cannot be combined with import: the exporting session defines it",
				    k->text);
		}
		vol->import = pol_decode_import(c, n, "volume", s);
		return;
	}
	decode_volume_files(c, m);
	decode_fspf(c, m, &vol->fspf_key, &vol->fspf_tag, s);
	if (!pol_map_get(m, "fspf_key") != !pol_map_get(m, "fspf_tag"))
		pol_error(c, m->pos,
			  "fspf_key and fspf_tag go together (or leave both out: CAS then creates the key)");
	if ((n = pol_field(c, m, "export", false)))
		pol_decode_exports(c, n, true, s, &vol->exports, &vol->n_exports);
}

void pol_decode_volumes(struct pctx *c, const struct ynode *list, struct scone_session *s)
{
	size_t saved = pol_path_key(c, "volumes");

	if (pol_expect(c, list, YN_SEQ, "a list of volumes")) {
		s->volumes = pol_calloc(c, list->n, sizeof(*s->volumes));
		if (s->volumes) {
			s->n_volumes = list->n;
			for (size_t i = 0; i < list->n; i++) {
				size_t s2 = pol_path_index(c, i);
				if (pol_expect(c, list->items[i], YN_MAP,
					       "a volume (a mapping with name ...)"))
					decode_volume(c, list->items[i], &s->volumes[i], s);
				pol_path_restore(c, s2);
			}
			pol_check_unique(c, list, "name", "volume");
		}
	}
	pol_path_restore(c, saved);
}
