/*
 * cas_client.h - the runtime's side of the CAS service endpoint: fetch a
 * service configuration (POST /v1/service/config), parse it into a typed,
 * wipe-on-free structure, and report a volume's new tag (POST
 * /v1/volumes/tag). Wire format: docs/api.md, "Runtimes: the service
 * endpoint"; producer: src/cas/config.c.
 *
 * Links only libc, libcrypto, libssl and src/lib (it runs inside
 * unmodified programs). The whole configuration is a secret: nothing of it
 * is logged, and scone_runtime_config_free wipes every byte.
 */
#ifndef SCONE_RUNTIME_CAS_CLIENT_H
#define SCONE_RUNTIME_CAS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"
#include "lib/tls.h"

#define SCONE_RT_KEY_SIZE 32
#define SCONE_RT_TAG_SIZE 16
#define SCONE_RT_TOKEN_SIZE 32
#define SCONE_RT_DEFAULT_PORT 8081

struct scone_rt_env {
	char *name;
	char *value;
};

struct scone_rt_file {
	char *path;
	uint32_t mode;
	uint8_t *content; /* decoded from content_base64; may hold any bytes */
	size_t content_size;
	bool from_image; /* the image's own file: read at start and expanded (image_files.h) */
};

struct scone_rt_volume {
	char *name;    /* the image's name for the mount */
	char *path;    /* mount point */
	char *session; /* owning session (differs when imported) */
	char *volume;  /* the volume's name in its owning session */
	uint8_t key[SCONE_RT_KEY_SIZE];
	uint8_t tag[SCONE_RT_TAG_SIZE];
	bool initialised; /* false: tag was "" (volume not created yet), tag is zero */
	bool tag_tracked; /* CAS tracks the tag (report it after a sync) */
};

struct scone_rt_fspf {
	char *path;
	bool has_key;
	uint8_t key[SCONE_RT_KEY_SIZE];
	bool has_tag;
	uint8_t tag[SCONE_RT_TAG_SIZE];
};

struct scone_runtime_config {
	char *config_id;    /* SESSION/SERVICE */
	char *session_hash; /* hex */
	char *mode;	    /* attestation mode CAS applied ("none") */
	char *pwd;
	char **argv; /* NULL-terminated; "@@N" words still to be replaced */
	size_t argc;
	bool command_public; /* no word of the command holds a secret: it may show in ps */
	struct scone_rt_env *env;
	size_t env_count;
	struct scone_rt_file *files;
	size_t file_count;
	struct scone_rt_volume *volumes;
	size_t volume_count;
	struct scone_rt_fspf *fspf; /* NULL when the answer had "fspf": null or none */
	uint8_t instance_token[SCONE_RT_TOKEN_SIZE];
	char *raw; /* CAS's answer as parsed (NUL-terminated), for an exec'd program's runtime */
	size_t raw_len;
	char **host_env; /* SCONE's \@\@NAME: names taken from the host environment at start */
	size_t host_env_count;
	bool has_token_proof; /* CAS proved the session's service access token (lib/token.h) */
	uint8_t token_proof[32];
};

/*
 * Parse CAS's answer (untrusted bytes; len need not be NUL-terminated).
 * Every field is type-checked, and errors (MALFORMED or INVALID) name it;
 * unknown top-level fields are ignored. On success the caller owns *out.
 */
SCONE_MUST_CHECK enum scone_err scone_runtime_config_parse(const char *json, size_t len,
							   struct scone_runtime_config **out);
/* Wipe and free everything; NULL is fine. */
void scone_runtime_config_free(struct scone_runtime_config *cfg);

/*
 * A runtime setting: a variable of the session's environment that
 * configures the runtime (SCONE_DUMPABLE, SCONE_ALLOW_UNSHIELDED_EXEC,
 * SCONE_NETWORK_SHIELD*; docs/runtime.md) and is not passed into the
 * program's environment. scone_runtime_setting gives its value, or NULL.
 */
const char *scone_runtime_setting(const struct scone_runtime_config *cfg, const char *name);
bool scone_runtime_is_setting(const char *name);

/* Volume of cfg by its image name, or NULL. */
/*
 * POST body (JSON) to path on CAS with the runtime's identity; resp holds
 * the answer (any status) on OK. For the runtime's other exchanges
 * (image_files.c).
 */
SCONE_MUST_CHECK enum scone_err scone_runtime_post(const char *cas_addr, const uint8_t pin_sha256[32],
						   const struct scone_identity *id, const char *path,
						   const struct scone_wbuf *body,
						   struct scone_https_response *resp);
/* CAS's refusal in resp (status, code, message) as an error naming what was asked. */
SCONE_MUST_CHECK enum scone_err scone_runtime_refused(const struct scone_https_response *resp,
						      const char *what);
/*
 * Append the expanded contents of the image's own files to cfg->raw (as
 * "image_files"), so a program exec'd later gets them through the handover
 * without another round trip.
 */
SCONE_MUST_CHECK enum scone_err scone_runtime_config_keep_images(struct scone_runtime_config *cfg);

const struct scone_rt_volume *scone_runtime_config_volume(const struct scone_runtime_config *cfg,
							  const char *name);

/* Evidence for CAS (docs/api.md): a type of src/attest, its bytes, and why there is none (note). */
struct scone_rt_evidence {
	const char *type;    /* "las", "none", ... */
	const uint8_t *data; /* NULL with size 0 for "none" */
	size_t size;
	const char *note; /* printable text or NULL: e.g. the LAS's refusal, for CAS's message */
};

/*
 * POST /v1/service/config for config_id ("SESSION/SERVICE", optionally
 * "@OTP") to cas_addr ("host[:port]", default port 8081), pinning the CAS
 * certificate to pin_sha256, presenting fresh_id (the runtime's fresh key;
 * the evidence and the instance token are bound to it) and ev (NULL: no
 * evidence field). A non-200 answer becomes an error (NOT_FOUND,
 * PERMISSION, ATTESTATION, ...) whose detail carries CAS's "error" message.
 */

SCONE_MUST_CHECK enum scone_err scone_runtime_fetch_config(const char *cas_addr, const uint8_t pin_sha256[32],
							   const char *config_id,
							   struct scone_identity *fresh_id,
							   const struct scone_rt_evidence *ev,
							   struct scone_runtime_config **out);

/*
 * POST /v1/volumes/tag: the volume named volume (its image name) of cfg
 * moved from previous_tag (NULL: it was not initialised) to tag. Must use
 * the identity the configuration was fetched with. CONFLICT when another
 * instance moved the tag first (or the tag is fixed in the session).
 */
SCONE_MUST_CHECK enum scone_err scone_runtime_report_tag(const char *cas_addr, const uint8_t pin_sha256[32],
							 const struct scone_identity *id,
							 const struct scone_runtime_config *cfg,
							 const char *volume, const uint8_t *previous_tag,
							 const uint8_t tag[SCONE_RT_TAG_SIZE]);

/*
 * The same in two steps, so that a volume's next writes overlap CAS's
 * round trip: send the report, later read CAS's answer (one report in
 * flight per process; wait before starting the next).
 */
SCONE_MUST_CHECK enum scone_err
scone_runtime_report_tag_start(const char *cas_addr, const uint8_t pin_sha256[32],
			       const struct scone_identity *id, const struct scone_runtime_config *cfg,
			       const char *volume, const uint8_t *previous_tag,
			       const uint8_t tag[SCONE_RT_TAG_SIZE]);
SCONE_MUST_CHECK enum scone_err scone_runtime_report_tag_wait(void);
/* The socket of the reports' kept-alive connection, or -1. */
int scone_runtime_report_fd(void);
/*
 * The identity the configuration was fetched with moved from *from to *to
 * (the runtime's context took it): the reports' connection, which the
 * fetch left open for them, connects again with *to.
 */
void scone_runtime_report_identity_moved(const struct scone_identity *from, const struct scone_identity *to);

#endif
