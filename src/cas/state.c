/*
 * state.c - the CAS state directory.
 *
 *   DIR/cas.key, DIR/cas.crt   the CAS's TLS identity (P-256), made at first start;
 *                              clients pin the certificate's SHA-256
 *   DIR/master.key             32 random bytes (hex), mode 0600: seals the store.
 *                              Without a TEE it is only as safe as the file system;
 *                              on TEE hardware it must be sealed to the enclave.
 *   DIR/cas.db (+ -wal, -shm)  the embedded store (store_sqlite.c)
 *   DIR/cas.db.created         marks that the store was made: a store that vanishes or is
 *                              emptied later is refused instead of silently started anew
 *
 * A missing master key next to an existing store is a refusal, never a new key:
 * a new key would make every sealed record unreadable.
 */
#include "cas.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/crypto.h"
#include "lib/hex.h"
#include "lib/log.h"

static bool exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static enum scone_err path_in(const struct cas *cas, const char *name, char *out, size_t size)
{
	if ((size_t)snprintf(out, size, "%s/%s", cas->state_dir, name) >= size)
		return scone_err_set(SCONE_ERR_NAME_TOO_LONG, "%s: state directory path too long", cas->state_dir);
	return SCONE_ERR_OK;
}

static enum scone_err open_identity(struct cas *cas)
{
	char key[4200], crt[4200], fp[65];
	bool have_key, have_crt;

	SCONE_TRY(path_in(cas, "cas.key", key, sizeof(key)));
	SCONE_TRY(path_in(cas, "cas.crt", crt, sizeof(crt)));
	have_key = exists(key);
	have_crt = exists(crt);
	if (have_key != have_crt)
		return scone_err_set(SCONE_ERR_MISSING, "%s exists but %s does not; restore it from a backup", have_key ? key : crt,
				     have_key ? crt : key);
	if (have_key) {
		SCONE_TRY(scone_identity_load(key, crt, &cas->identity));
	} else {
		SCONE_TRY(scone_identity_new("scone-cas", 3650, &cas->identity));
		SCONE_TRY(scone_identity_save(&cas->identity, key, crt));
		scone_info("created the CAS identity %s", crt);
	}
	SCONE_TRY(scone_cert_sha256(cas->identity.cert, cas->cert_sha256));
	scone_hex_encode(fp, sizeof(fp), cas->cert_sha256, 32);
	scone_info("CAS certificate SHA-256 fingerprint %s (clients pin it: scone cas trust ADDR --fingerprint %s)", fp, fp);
	return SCONE_ERR_OK;
}

static enum scone_err read_master_key(const char *path, uint8_t *key)
{
	char hex[66];
	struct stat st;
	ssize_t n;
	enum scone_err err;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return scone_err_set(scone_err_from_errno(errno), "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0 || (st.st_mode & 077)) {
		close(fd);
		return scone_err_set(SCONE_ERR_PERMISSION, "%s: readable by others (mode %03o); chmod 600 it", path,
				     (unsigned)(st.st_mode & 0777));
	}
	n = read(fd, hex, sizeof(hex));
	close(fd);
	if (n < 64 || (n > 64 && hex[64] != '\n')) {
		scone_wipe(hex, sizeof(hex));
		return scone_err_set(SCONE_ERR_MALFORMED, "%s: expected 64 hex digits", path);
	}
	hex[64] = '\0';
	err = scone_hex_decode(key, 32, hex, path);
	scone_wipe(hex, sizeof(hex));
	return err;
}

static enum scone_err write_master_key(const char *path, uint8_t *key)
{
	char hex[66];
	int fd, ok;

	SCONE_TRY(scone_random(key, 32));
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return scone_err_set(scone_err_from_errno(errno), "%s: %s", path, strerror(errno));
	scone_hex_encode(hex, sizeof(hex), key, 32);
	hex[64] = '\n';
	ok = write(fd, hex, 65) == 65 && fsync(fd) == 0;
	scone_wipe(hex, sizeof(hex));
	if (close(fd) != 0 || !ok) {
		unlink(path);
		return scone_err_set(SCONE_ERR_IO, "%s: cannot write the master key", path);
	}
	return SCONE_ERR_OK;
}

static enum scone_err open_master_key(struct cas *cas)
{
	char path[4200];

	SCONE_TRY(path_in(cas, "master.key", path, sizeof(path)));
	cas->master_key = scone_secure_alloc(32);
	cas->token_key = scone_secure_alloc(32);
	if (!cas->master_key || !cas->token_key)
		return scone_err_set(SCONE_ERR_NOMEM, "key memory");
	if (exists(path)) {
		SCONE_TRY(read_master_key(path, cas->master_key));
	} else if (exists(cas->store_path)) {
		return scone_err_set(SCONE_ERR_MISSING,
				     "%s is missing but the store %s exists; restore the master key (a new one could not read the store)",
				     path, cas->store_path);
	} else {
		SCONE_TRY(write_master_key(path, cas->master_key));
	}
	scone_warn("the store's master key is kept in %s (mode 0600): anyone who can read that file can read every "
		   "secret; on TEE hardware it must be sealed to the enclave instead", path);
	return scone_hkdf_sha256(cas->token_key, 32, cas->master_key, 32, NULL, 0, "scone-cas instance token v1");
}

/* A store that existed once must still exist and not be empty. */
static enum scone_err check_store_marker(struct cas *cas, bool *first)
{
	char marker[4300];
	struct stat st;

	SCONE_TRY(path_in(cas, "cas.db.created", marker, sizeof(marker)));
	*first = !exists(marker);
	if (*first)
		return SCONE_ERR_OK;
	if (stat(cas->store_path, &st) != 0)
		return scone_err_set(SCONE_ERR_MISSING, "the store %s is gone (%s says it was created); restore it from a backup",
				     cas->store_path, marker);
	if (st.st_size == 0)
		return scone_err_set(SCONE_ERR_CORRUPT, "the store %s is empty but was created before; restore it from a backup",
				     cas->store_path);
	return SCONE_ERR_OK;
}

static enum scone_err write_store_marker(struct cas *cas)
{
	char marker[4300];
	int fd;

	SCONE_TRY(path_in(cas, "cas.db.created", marker, sizeof(marker)));
	fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || fsync(fd) != 0) {
		if (fd >= 0)
			close(fd);
		return scone_err_set(SCONE_ERR_IO, "%s: %s", marker, strerror(errno));
	}
	close(fd);
	return SCONE_ERR_OK;
}

enum scone_err cas_state_open(struct cas *cas, const char *state_dir)
{
	struct scone_store *st;
	uint64_t n = 0;
	bool first;

	if (strlen(state_dir) >= sizeof(cas->state_dir))
		return scone_err_set(SCONE_ERR_NAME_TOO_LONG, "state directory path too long");
	snprintf(cas->state_dir, sizeof(cas->state_dir), "%s", state_dir);
	if (mkdir(state_dir, 0700) != 0 && errno != EEXIST)
		return scone_err_set(scone_err_from_errno(errno), "%s: %s", state_dir, strerror(errno));
	SCONE_TRY(path_in(cas, "cas.db", cas->store_path, sizeof(cas->store_path)));
	SCONE_TRY(open_identity(cas));
	SCONE_TRY(open_master_key(cas));
	SCONE_TRY(check_store_marker(cas, &first));
	/* Open once here so that a corrupt store or a wrong key refuses the start. */
	SCONE_TRY(scone_store_open_sqlite(cas->store_path, cas->master_key, &st));
	enum scone_err err = st->ops->count(st, &n);
	st->ops->close(st);
	if (!err && first)
		err = write_store_marker(cas);
	if (err)
		return err;
	scone_info("store %s opened: %llu sessions", cas->store_path, (unsigned long long)n);
	return SCONE_ERR_OK;
}

void cas_state_close(struct cas *cas)
{
	for (int i = 0; i < CAS_MAX_WORKERS; i++) {
		if (cas->stores[i])
			cas->stores[i]->ops->close(cas->stores[i]);
		cas->stores[i] = NULL;
	}
	scone_identity_free(&cas->identity);
	if (cas->master_key)
		scone_secure_free(cas->master_key, 32);
	if (cas->token_key)
		scone_secure_free(cas->token_key, 32);
	cas->master_key = cas->token_key = NULL;
}
