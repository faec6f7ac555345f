/*
 * state.c - the CAS state directory.
 *
 *   DIR/cas.key, DIR/cas.crt   the CAS's TLS identity (P-256), made at first start;
 *                              clients pin the certificate's SHA-256
 *   DIR/master.key             32 random bytes (hex), mode 0600: seals the store.
 *                              Without a TEE it is only as safe as the file system;
 *                              on TEE hardware it must be sealed to the enclave.
 *   DIR/cas.db (+ -wal, -shm)  the embedded store (store_sqlite.c), unless --store
 *                              names another (sqlite:PATH, or postgres://... shared by
 *                              replicas: store_pg.c)
 *   PATH.created               marks that a SQLite store was made: a store that vanishes
 *                              or is emptied later is refused instead of silently started anew
 *
 * A missing master key next to an existing store is a refusal, never a new key:
 * a new key would make every sealed record unreadable. Replicas on one
 * PostgreSQL store share cas.key, cas.crt and master.key (the same files in
 * each replica's DIR, made once by `scone-cas init`): a serving replica never
 * makes them, and the database never sees the master key.
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
#include "lib/keyfile.h"
#include "lib/log.h"

static bool exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static enum scone_err path_in(const struct cas *cas, const char *name, char *out, size_t size)
{
	if ((size_t)snprintf(out, size, "%s/%s", cas->state_dir, name) >= size)
		return scone_err_set(SCONE_ERR_NAME_TOO_LONG, "%s: state directory path too long",
				     cas->state_dir);
	return SCONE_ERR_OK;
}

static enum scone_err need_init(const struct cas *cas, const char *path)
{
	return scone_err_set(
	    SCONE_ERR_MISSING,
	    "%s is missing: replicas of a postgres store share their key material; make it once with "
	    "`scone-cas init --state-dir DIR --store URL` and give each replica a copy of %s",
	    path, cas->state_dir);
}

static enum scone_err open_identity(struct cas *cas, bool may_create)
{
	char key[4200], crt[4200], fp[65];
	bool have_key, have_crt;

	SCONE_TRY(path_in(cas, "cas.key", key, sizeof(key)));
	SCONE_TRY(path_in(cas, "cas.crt", crt, sizeof(crt)));
	have_key = exists(key);
	have_crt = exists(crt);
	if (have_key != have_crt)
		return scone_err_set(SCONE_ERR_MISSING, "%s exists but %s does not; restore it from a backup",
				     have_key ? key : crt, have_key ? crt : key);
	if (have_key) {
		SCONE_TRY(scone_identity_load(key, crt, &cas->identity));
	} else if (!may_create) {
		return need_init(cas, key);
	} else {
		SCONE_TRY(scone_identity_new("scone-cas", 3650, &cas->identity));
		SCONE_TRY(scone_identity_save(&cas->identity, key, crt));
		scone_info("created the CAS identity %s", crt);
	}
	SCONE_TRY(scone_cert_sha256(cas->identity.cert, cas->cert_sha256));
	scone_hex_encode(fp, sizeof(fp), cas->cert_sha256, 32);
	scone_info(
	    "CAS certificate SHA-256 fingerprint %s (clients pin it: scone cas trust ADDR --fingerprint %s)",
	    fp, fp);
	return SCONE_ERR_OK;
}

static enum scone_err open_master_key(struct cas *cas, bool may_create)
{
	char path[4200];

	SCONE_TRY(path_in(cas, "master.key", path, sizeof(path)));
	cas->master_key = scone_secure_alloc(32);
	cas->token_key = scone_secure_alloc(32);
	if (!cas->master_key || !cas->token_key)
		return scone_err_set(SCONE_ERR_NOMEM, "key memory");
	if (exists(path)) {
		SCONE_TRY(scone_keyfile_read(path, cas->master_key, "the master key"));
	} else if (cas->store_path[0] && exists(cas->store_path)) {
		return scone_err_set(SCONE_ERR_MISSING,
				     "%s is missing but the store %s exists; restore the master key (a new "
				     "one could not read the store)",
				     path, cas->store_path);
	} else if (!may_create) {
		return need_init(cas, path);
	} else {
		SCONE_TRY(scone_keyfile_create(path, cas->master_key, "the master key"));
	}
	scone_warn(
	    "the store's master key is kept in %s (mode 0600): anyone who can read that file can read every "
	    "secret; on TEE hardware it must be sealed to the enclave instead",
	    path);
	return scone_hkdf_sha256(cas->token_key, 32, cas->master_key, 32, NULL, 0,
				 "scone-cas instance token v1");
}

/* A store that existed once must still exist and not be empty. */
static enum scone_err marker_path(const struct cas *cas, char *out, size_t size)
{
	if ((size_t)snprintf(out, size, "%s.created", cas->store_path) >= size)
		return scone_err_set(SCONE_ERR_NAME_TOO_LONG, "%s: store path too long", cas->store_path);
	return SCONE_ERR_OK;
}

static enum scone_err check_store_marker(struct cas *cas, bool *first)
{
	char marker[4300];
	struct stat st;

	SCONE_TRY(marker_path(cas, marker, sizeof(marker)));
	*first = !exists(marker);
	if (*first)
		return SCONE_ERR_OK;
	if (stat(cas->store_path, &st) != 0)
		return scone_err_set(
		    SCONE_ERR_MISSING,
		    "the store %s is gone (%s says it was created); restore it from a backup",
		    cas->store_path, marker);
	if (st.st_size == 0)
		return scone_err_set(SCONE_ERR_CORRUPT,
				     "the store %s is empty but was created before; restore it from a backup",
				     cas->store_path);
	return SCONE_ERR_OK;
}

static enum scone_err write_store_marker(struct cas *cas)
{
	char marker[4300];
	int fd;

	SCONE_TRY(marker_path(cas, marker, sizeof(marker)));
	fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || fsync(fd) != 0) {
		if (fd >= 0)
			close(fd);
		return scone_err_set(SCONE_ERR_IO, "%s: %s", marker, strerror(errno));
	}
	close(fd);
	return SCONE_ERR_OK;
}

/* store_url (or the default DIR/cas.db) into cas->store_url, and the SQLite path into cas->store_path. */
static enum scone_err set_store(struct cas *cas, const char *store_url)
{
	const char *path;

	cas->store_path[0] = '\0';
	if (!store_url) {
		SCONE_TRY(path_in(cas, "cas.db", cas->store_path, sizeof(cas->store_path)));
		snprintf(cas->store_url, sizeof(cas->store_url), "sqlite:%s", cas->store_path);
		return SCONE_ERR_OK;
	}
	if (strlen(store_url) >= sizeof(cas->store_url))
		return scone_err_set(SCONE_ERR_NAME_TOO_LONG, "--store: URL too long");
	snprintf(cas->store_url, sizeof(cas->store_url), "%s", store_url);
	if (scone_store_url_is_pg(store_url))
		return SCONE_ERR_OK;
	path = strncmp(store_url, "sqlite:", 7) == 0 ? store_url + 7 : store_url;
	if (strncmp(path, "//", 2) == 0)
		path += 2;
	if (!*path || strlen(path) >= sizeof(cas->store_path))
		return scone_err_set(SCONE_ERR_INVALID, "--store %s: no usable SQLite path", store_url);
	snprintf(cas->store_path, sizeof(cas->store_path), "%s", path);
	return SCONE_ERR_OK;
}

enum scone_err cas_state_keys(struct cas *cas, const char *state_dir, const char *store_url, bool create)
{
	bool pg = scone_store_url_is_pg(store_url);

	cas->audit_mirror_fd = -1;
	pthread_mutex_init(&cas->audit_mirror_lock, NULL);
	if (strlen(state_dir) >= sizeof(cas->state_dir))
		return scone_err_set(SCONE_ERR_NAME_TOO_LONG, "state directory path too long");
	snprintf(cas->state_dir, sizeof(cas->state_dir), "%s", state_dir);
	if (mkdir(state_dir, 0700) != 0 && errno != EEXIST)
		return scone_err_set(scone_err_from_errno(errno), "%s: %s", state_dir, strerror(errno));
	SCONE_TRY(set_store(cas, store_url));
	SCONE_TRY(open_identity(cas, create || !pg));
	return open_master_key(cas, create || !pg);
}

enum scone_err cas_state_mark_store(struct cas *cas)
{
	return cas->store_path[0] ? write_store_marker(cas) : SCONE_ERR_OK;
}

enum scone_err cas_state_open(struct cas *cas, const char *state_dir, const char *store_url, bool create)
{
	struct scone_store *st;
	uint64_t n = 0;
	bool first = false, pg = scone_store_url_is_pg(store_url);

	SCONE_TRY(cas_state_keys(cas, state_dir, store_url, create));
	if (!pg)
		SCONE_TRY(check_store_marker(cas, &first));
	/* Open once here so that a corrupt store or a wrong key refuses the start. */
	SCONE_TRY(scone_store_open(cas->store_url, cas->master_key,
				   pg && !create ? SCONE_STORE_OPEN_EXISTING : 0, &st));
	enum scone_err err = st->ops->count(st, &n);
	st->ops->close(st);
	if (!err && first)
		err = write_store_marker(cas);
	if (err)
		return err;
	scone_info("store %s opened: %llu sessions", pg ? "postgres" : cas->store_path,
		   (unsigned long long)n);
	return SCONE_ERR_OK;
}

void cas_state_close(struct cas *cas)
{
	for (int i = 0; i < CAS_MAX_WORKERS; i++)
		cas_audit_stop(cas, i);
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
	if (cas->audit_mirror_fd >= 0)
		close(cas->audit_mirror_fd);
	cas->audit_mirror_fd = -1;
}
