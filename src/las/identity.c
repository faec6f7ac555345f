/*
 * identity.c - the LAS host key: an Ed25519 key whose seed is kept as 64
 * hex digits in DIR/las.key (mode 0600, refused when others may read it),
 * made at first start. Its platform id, SHA-256 of the raw public key, is
 * what a session lists in `platforms:`; the same file gives the same id
 * after every restart.
 */
#include "las.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/crypto.h"
#include "lib/keyfile.h"
#include "lib/log.h"

static enum scone_err make_dir(const char *dir)
{
	struct stat st;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return scone_err_set(scone_err_from_errno(errno), "state directory %s: %s", dir,
				     strerror(errno));
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return scone_err_set(SCONE_ERR_NOT_DIR, "state directory %s is not a directory", dir);
	return SCONE_ERR_OK;
}

static enum scone_err key_from_seed(const uint8_t seed[32], struct las_identity *out)
{
	size_t len = SCONE_LAS_KEY_SIZE;

	out->key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
	if (!out->key || EVP_PKEY_get_raw_public_key(out->key, out->pub, &len) != 1 ||
	    len != SCONE_LAS_KEY_SIZE)
		return scone_err_set(SCONE_ERR_CRYPTO, "the host key: Ed25519 from its seed");
	scone_las_platform_id(out->pub, out->platform_id);
	return SCONE_ERR_OK;
}

enum scone_err las_identity_open(const char *state_dir, struct las_identity *out)
{
	char path[4200];
	uint8_t seed[32];
	struct stat st;
	enum scone_err err;

	memset(out, 0, sizeof(*out));
	if ((size_t)snprintf(path, sizeof(path), "%s/las.key", state_dir) >= sizeof(path))
		return scone_err_set(SCONE_ERR_NAME_TOO_LONG, "%s: state directory path too long", state_dir);
	SCONE_TRY(make_dir(state_dir));
	if (lstat(path, &st) == 0) {
		err = scone_keyfile_read(path, seed, "the host key's Ed25519 seed");
	} else {
		err = scone_keyfile_create(path, seed, "the host key's Ed25519 seed");
		if (!err)
			scone_info("created the host key %s", path);
		else if (err == SCONE_ERR_EXISTS) /* another scone-las made it first: use that one */
			err = scone_keyfile_read(path, seed, "the host key's Ed25519 seed");
	}
	if (!err)
		err = key_from_seed(seed, out);
	scone_wipe(seed, sizeof(seed));
	if (err)
		las_identity_close(out);
	return err;
}

void las_identity_close(struct las_identity *id)
{
	EVP_PKEY_free(id->key);
	memset(id, 0, sizeof(*id));
}

enum scone_err las_identity_sign(const struct las_identity *id, const uint8_t *msg, size_t size,
				 uint8_t sig[SCONE_LAS_SIG_SIZE])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	size_t len = SCONE_LAS_SIG_SIZE;
	int ok = md && EVP_DigestSignInit(md, NULL, NULL, NULL, id->key) == 1 &&
		 EVP_DigestSign(md, sig, &len, msg, size) == 1 && len == SCONE_LAS_SIG_SIZE;

	EVP_MD_CTX_free(md);
	return ok ? SCONE_ERR_OK : scone_err_set(SCONE_ERR_CRYPTO, "signing the report (Ed25519)");
}
