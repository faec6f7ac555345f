/*
 * audit.h - CAS's audit log: every session create, update and delete,
 * volume tag change, configuration release and refusal, as one line of
 * JSON, in chains of entries linked by hash and signed with CAS's key.
 *
 *   audit.c      the writer: one chain per worker of each CAS process,
 *                entries kept in the store (a write's entry commits with
 *                the write), optionally mirrored to a file
 *   audit_log.c  the reader: parse a line, check its hash and signature,
 *                check chains and whole log files (scone cas
 *                verify-audit-log, restore)
 *
 * A line (keys in this order; optional ones left out when absent):
 *   {"v":1,"chain":C,"seq":N,"time":T,"replica":R,"event":E,
 *    "session":S,"service":V,"volume":VOL,"actor":HEX,"hash":HEX,
 *    "previous":HEX,"tag":HEX,"previous_tag":HEX,"method":M,"path":P,
 *    "status":N,"code":CODE,"note":TEXT,"reports":N,"last":T,
 *    "supersedes":HEX64,"prev":HEX64,"entry":HEX64,"sig":BASE64}
 * entry = SHA-256 of the line's bytes before ',"entry":'; sig = ECDSA
 * P-256 with SHA-256 over the same bytes, by the key of CAS's TLS
 * certificate (DER, base64); prev = entry of the chain's previous line
 * (64 zeros for seq 1). Strings are ASCII: other bytes are written as
 * \u00XX. No line holds a secret: names, hashes, tags (not secret), key
 * hashes and error codes only.
 *
 * Spans: a runtime reports a volume's new tag at every commit, so that one
 * entry a report would grow the log without bound (hundreds a second for a
 * busy database). Consecutive tag reports of one volume by one runtime on
 * one chain share an entry instead: the chain's last entry is replaced, in
 * the tag write's own transaction, by a later version of itself, same seq
 * and prev, "previous_tag" still the span's first, "tag" the newest,
 * "reports" the count (2 or more), "last" the newest report's time and
 * "supersedes" the entry hash of the version it replaces. A span ends when
 * another entry follows it on the chain or after SPAN_MAX_SEC (audit.c). A
 * reader takes a version that supersedes the chain's last entry in its
 * place (the store and an export hold only the last version; a mirror
 * the versions of at most one a second, the newest within a second), and a
 * later export extends an earlier one when its version of an entry covers
 * more reports of the same span.
 *
 * A log file (an export or a mirror) starts with a header line
 *   {"scone_cas_audit_log":1,"certificate":PEM}
 * followed by entry lines; chains may interleave.
 */
#ifndef SCONE_CAS_AUDIT_H
#define SCONE_CAS_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <openssl/evp.h>

#include "cas/store.h"
#include "lib/err.h"

#define CAS_AUDIT_NAME_MAX 300 /* session, service, volume, path as written (escaped) */

/* What happened; strings and hashes borrowed for the call. */
struct cas_audit_event {
	const char *event; /* create update delete tag release refuse start restore */
	const char *session, *service, *volume;
	const uint8_t *actor;		/* SHA-256 of the client's key, or NULL */
	const uint8_t *hash, *previous; /* session hashes, or NULL */
	const char *tag, *previous_tag; /* volume tags (hex), or NULL */
	const char *method, *path;	/* refuse */
	int status;			/* refuse: the HTTP status (0: left out) */
	const char *code;		/* refuse: the error code */
	const char *note;		/* start, restore: a few words, no secret */
	uint64_t reports;		/* tag, a span's version: the reports it covers (0, 1: left out) */
	int64_t last;			/* tag, a span's version: the newest report's time (0: left out) */
	const uint8_t *supersedes;	/* tag, a span's version: the entry it replaces, or NULL */
};

/* ---- writing (audit.c) ---- */

struct cas_audit_signer {
	EVP_PKEY *key;	     /* CAS's private key (borrowed) */
	const char *replica; /* the replica's name */
};

/*
 * Make the line of ev as entry seq of chain after prev, signed, into row
 * (row->line malloc'd; the caller frees it). time 0 = now.
 */
SCONE_MUST_CHECK enum scone_err cas_audit_format(const struct cas_audit_signer *sg, const char *chain,
						 uint64_t seq, const uint8_t prev[32], int64_t time,
						 const struct cas_audit_event *ev,
						 struct scone_audit_row *row);

/* A chain name for a writer: "<replica>.<8 random hex>/w<worker>" (replica sanitised). */
SCONE_MUST_CHECK enum scone_err cas_audit_chain_name(const char *replica, int worker,
						     char out[SCONE_AUDIT_CHAIN_MAX + 1]);

/* ---- reading (audit_log.c) ---- */

/* One parsed entry line (strings unescaped; absent ones ""). */
struct cas_audit_entry {
	char chain[SCONE_AUDIT_CHAIN_MAX + 1];
	uint64_t seq;
	int64_t time;
	uint8_t prev[32], entry[32];
	char event[16];
	char replica[CAS_AUDIT_NAME_MAX + 1];
	char session[CAS_AUDIT_NAME_MAX + 1], service[CAS_AUDIT_NAME_MAX + 1], volume[CAS_AUDIT_NAME_MAX + 1];
	char hash[65], previous[65], tag[65], previous_tag[65], actor[65];
	char code[40];
	int status;
	uint64_t reports; /* 1 unless the entry is a span's version */
	int64_t last;	  /* 0 unless the entry is a span's version */
	bool has_supersedes;
	uint8_t supersedes[32];
};

/*
 * Parse one entry line (untrusted: bounded, fuzzed) and check that its
 * entry hash is that of its content. With key, also check the signature.
 * MALFORMED (detail names the field) or TAMPERED (hash or signature).
 */
SCONE_MUST_CHECK enum scone_err cas_audit_parse_line(const char *line, size_t len, EVP_PKEY *key,
						     struct cas_audit_entry *out);

/* The header line of a log file: the certificate PEM (malloc'd into *pem). */
SCONE_MUST_CHECK enum scone_err cas_audit_parse_header(const char *line, size_t len, char **pem);
/* Write the header line for cert_pem to f. */
SCONE_MUST_CHECK enum scone_err cas_audit_write_header(FILE *f, const char *cert_pem);

/*
 * Reading a whole log: each entry is checked (hash, signature, and that it
 * follows its chain's previous entry: seq + 1, prev); a chain starts at
 * seq 1, or where a base (an earlier log of the same CAS, see
 * cas_audit_log_base) left it. Every checked entry is handed to fn (with
 * its raw line), if given. The first problem stops the check: *bad_line
 * gets its line number (1-based, the header is line 1) and the detail
 * names the entry.
 */
struct cas_audit_log;
SCONE_MUST_CHECK enum scone_err cas_audit_log_new(EVP_PKEY *key, struct cas_audit_log **out);
void cas_audit_log_free(struct cas_audit_log *l);
typedef enum scone_err (*cas_audit_entry_fn)(void *ctx, const struct cas_audit_entry *e, const char *line,
					     size_t len);
/*
 * Check the log in f (its header's certificate must be the key's, if the
 * log has a header; must_have_header: refuse one without). Entries
 * accumulate in l across calls: a second file continues the chains of the
 * first.
 */
SCONE_MUST_CHECK enum scone_err cas_audit_log_check(struct cas_audit_log *l, FILE *f, const char *name,
						    bool must_have_header, cas_audit_entry_fn fn, void *ctx,
						    unsigned long *bad_line);
/* Totals of what was checked. */
void cas_audit_log_counts(const struct cas_audit_log *l, uint64_t *entries, size_t *chains);
/*
 * Does log l hold every entry base held (each chain of base reaches at
 * least base's last entry, with the same hash)? ROLLBACK naming the first
 * chain that does not.
 */
SCONE_MUST_CHECK enum scone_err cas_audit_log_extends(const struct cas_audit_log *l,
						      const struct cas_audit_log *base);
/* The last (seq, entry) of chain in l; false if l has no such chain. */
bool cas_audit_log_head(const struct cas_audit_log *l, const char *chain, uint64_t *seq, uint8_t entry[32]);
/* Start l's chains where base's end (for checking the tail of a log after a backup). */
SCONE_MUST_CHECK enum scone_err cas_audit_log_base(struct cas_audit_log *l, const struct cas_audit_log *base);
/* Add one already-checked entry to l as its chain's head, as if the chain had been read to it. */
SCONE_MUST_CHECK enum scone_err cas_audit_log_seed_entry(struct cas_audit_log *l,
							 const struct cas_audit_entry *e);
/* The (seq, tag, reports) of chain's head in l when that head is a tag entry that was read; else false. */
bool cas_audit_log_head_tag(const struct cas_audit_log *l, const char *chain, uint64_t *seq, char tag[65],
			    uint64_t *reports);
/* Add one already-checked chain head (seq, entry) to l, as if its entries had been read. */
SCONE_MUST_CHECK enum scone_err cas_audit_log_seed(struct cas_audit_log *l, const char *chain, uint64_t seq,
						   const uint8_t entry[32]);

/* The public key of a PEM certificate (EVP_PKEY_free it). */
SCONE_MUST_CHECK enum scone_err cas_audit_cert_key(const char *pem, size_t len, EVP_PKEY **out);

#endif
