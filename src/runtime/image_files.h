/*
 * image_files.h - SCONE's injection files that name a file of the image
 * (injection_files: - /etc/nginx/nginx.conf): the runtime reads the file
 * at start - through the file-system shield when it lies in a region the
 * shield protects, else from the host (never below a volume mount of the
 * image: the session language refuses that) - asks CAS for the values of its
 * $$SCONE::...$$ references (POST /v1/service/values, with the instance
 * token of its configuration), and serves the expanded file from memory
 * like any injection file.
 */
#ifndef SCONE_RUNTIME_IMAGE_FILES_H
#define SCONE_RUNTIME_IMAGE_FILES_H

#include <stdint.h>

#include "lib/err.h"
#include "lib/tls.h"
#include "runtime/cas_client.h"

#define SCONE_IMAGE_FILE_MAX (1024 * 1024) /* bytes of one image file */

/*
 * Fill the content of every from_image file of cfg (a file that cannot be
 * read, or a reference CAS refuses, is an error naming the file), then keep
 * the contents in cfg->raw for exec'd programs. id is the identity the
 * configuration was fetched with.
 */
SCONE_MUST_CHECK enum scone_err scone_image_files_expand(const char *cas_addr, const uint8_t pin[32],
							 const struct scone_identity *id,
							 struct scone_runtime_config *cfg);
/* Does cfg have an image file still to expand? */
bool scone_image_files_pending(const struct scone_runtime_config *cfg);

#endif
