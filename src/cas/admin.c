/*
 * admin.c - the operator's commands of scone-cas, run beside or instead of
 * the server on the same state directory and store:
 *
 *   scone-cas init          make the key material replicas share, and the store
 *   scone-cas backup        a consistent, sealed snapshot while CAS serves
 *   scone-cas restore       a backup into an empty store, plus the audit log since
 *   scone-cas audit-export  the audit log, to check with `scone cas verify-audit-log`
 *
 * Each prints one line of result on stdout, errors on stderr (exit 1), and
 * usage errors exit 2. Store URLs with a password are refused (ps shows
 * command lines): libpq reads it from a password file.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "cas.h"
#include "cas/audit.h"
#include "cas/backup.h"
#include "lib/hex.h"

#define MAX_LOGS 64

struct admin_opts {
	const char *state_dir;
	const char *store;
	const char *logs[MAX_LOGS];
	int n_logs;
	bool accept_tag_rollback;
	const char *arg; /* the one positional argument */
};

static int fail(const char *cmd, const char *what, enum scone_err err)
{
	fprintf(stderr, "scone-cas %s: %s: %s%s%s (%s)\n", cmd, what, scone_strerror(err),
		scone_err_detail()[0] ? ": " : "", scone_err_detail(), scone_errname(err));
	return 1;
}

static int usage_error(const char *usage, const char *msg)
{
	fprintf(stderr, "scone-cas: %s\nusage: %s\n", msg, usage);
	return 2;
}

/* Options common to the commands; returns 0, or the exit status of a usage error or --help. */
static int parse(int argc, char **argv, const char *usage, const char *help, bool need_arg,
		 struct admin_opts *o)
{
	static const struct option longopts[] = {
	    {"state-dir", required_argument, NULL, 'd'},
	    {"store", required_argument, NULL, 's'},
	    {"audit-log", required_argument, NULL, 'a'},
	    {"accept-tag-rollback", no_argument, NULL, 'A'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->state_dir = getenv("SCONE_CAS_STATE_DIR") ? getenv("SCONE_CAS_STATE_DIR") : "/var/lib/scone-cas";
	o->store = getenv("SCONE_CAS_STORE");
	optind = 1;
	while ((c = getopt_long(argc, argv, "d:s:a:Ah", longopts, NULL)) != -1) {
		if (c == 'd') {
			o->state_dir = optarg;
		} else if (c == 's') {
			o->store = optarg;
		} else if (c == 'a' && o->n_logs < MAX_LOGS) {
			o->logs[o->n_logs++] = optarg;
		} else if (c == 'A') {
			o->accept_tag_rollback = true;
		} else if (c == 'h') {
			printf("usage: %s\n\n%s", usage, help);
			return -1;
		} else {
			return usage_error(usage, "unknown option");
		}
	}
	if (need_arg && argc - optind != 1)
		return usage_error(usage, "expected one argument");
	if (!need_arg && argc != optind)
		return usage_error(usage, "unexpected argument");
	o->arg = need_arg ? argv[optind] : NULL;
	if (o->store && scone_store_url_has_password(o->store))
		return usage_error(
		    usage, "--store carries a password, which ps would show to every user: put it in a "
			   "password file (passfile=PATH in the URL, or ~/.pgpass)");
	return 0;
}

/* The store of the state: opened with flags, after the key material. */
static enum scone_err open_store(struct cas *cas, const struct admin_opts *o, bool create_keys,
				 unsigned flags, struct scone_store **st)
{
	SCONE_TRY(cas_state_keys(cas, o->state_dir, o->store, create_keys));
	return scone_store_open(cas->store_url, cas->master_key, flags, st);
}

static int cmd_init(int argc, char **argv)
{
	static struct cas cas;
	struct admin_opts o;
	struct scone_store *st = NULL;
	char fp[65];
	enum scone_err err;
	int rc = parse(argc, argv, "scone-cas init [--state-dir DIR] [--store URL]",
		       "Make the key material in DIR (the TLS identity cas.key/cas.crt and master.key),\n"
		       "unless it is there, and the store's tables (default: sqlite:DIR/cas.db). Replicas\n"
		       "on one postgres store each get a copy of DIR's three files: the same master key\n"
		       "unseals the store, the same certificate matches the clients' pin.\n",
		       false, &o);

	if (rc)
		return rc < 0 ? 0 : rc;
	err = open_store(&cas, &o, true, 0, &st);
	if (err == SCONE_ERR_OK)
		err = cas_state_mark_store(&cas);
	if (st)
		st->ops->close(st);
	if (err == SCONE_ERR_OK) {
		scone_hex_encode(fp, sizeof(fp), cas.cert_sha256, 32);
		printf("initialised %s (store %s); certificate SHA-256 %s\n", cas.state_dir,
		       scone_store_url_is_pg(cas.store_url) ? "postgres" : cas.store_path, fp);
	}
	cas_state_close(&cas);
	return err ? fail("init", o.state_dir, err) : 0;
}

static int cmd_backup(int argc, char **argv)
{
	static struct cas cas;
	struct admin_opts o;
	struct scone_store *st = NULL;
	struct cas_backup_counts c;
	enum scone_err err;
	int rc = parse(argc, argv, "scone-cas backup [--state-dir DIR] [--store URL] OUT",
		       "Write a consistent snapshot of the store to OUT (mode 0600) while CAS serves: every\n"
		       "session, volume tag and audit entry as stored, sealed blobs still sealed under the\n"
		       "master key (which the backup does not hold), the whole file authenticated.\n",
		       true, &o);

	if (rc)
		return rc < 0 ? 0 : rc;
	err = open_store(&cas, &o, false, SCONE_STORE_OPEN_EXISTING, &st);
	if (err == SCONE_ERR_OK)
		err = cas_backup_write(&cas, st, o.arg, &c);
	if (st)
		st->ops->close(st);
	cas_state_close(&cas);
	if (err)
		return fail("backup", o.arg, err);
	printf("backup %s: %llu sessions, %llu volume tags, %llu audit entries\n", o.arg,
	       (unsigned long long)c.sessions, (unsigned long long)c.tags, (unsigned long long)c.entries);
	return 0;
}

static int cmd_restore(int argc, char **argv)
{
	static struct cas cas;
	struct admin_opts o;
	struct scone_store *st = NULL;
	struct cas_restore_opts ro;
	enum scone_err err;
	int rc = parse(
	    argc, argv,
	    "scone-cas restore [--state-dir DIR] [--store URL] (--audit-log FILE... | --accept-tag-rollback) "
	    "BACKUP",
	    "Load BACKUP into an empty store (made if absent), then bring forward what the audit\n"
	    "logs (exports, or replicas' --audit-mirror files) say happened after the backup: newer\n"
	    "audit entries, every volume's newest tag (so a volume rolled back to the backup's\n"
	    "state is refused), sessions deleted since; sessions created or updated since are\n"
	    "listed for their owners. DIR must hold the original master key and identity.\n",
	    true, &o);

	if (rc)
		return rc < 0 ? 0 : rc;
	err = open_store(&cas, &o, false, 0, &st);
	ro = (struct cas_restore_opts){.backup = o.arg,
				       .logs = o.logs,
				       .n_logs = o.n_logs,
				       .accept_tag_rollback = o.accept_tag_rollback,
				       .report = stdout};
	snprintf(cas.replica, sizeof(cas.replica), "restore");
	if (err == SCONE_ERR_OK)
		err = cas_restore(&cas, st, &ro);
	if (err == SCONE_ERR_OK)
		err = cas_state_mark_store(&cas);
	if (st)
		st->ops->close(st);
	cas_state_close(&cas);
	return err ? fail("restore", o.arg, err) : 0;
}

struct export
{
	FILE *f;
	uint64_t n;
};

static enum scone_err export_entry(void *ctx, const struct scone_store_item *it)
{
	struct export *x = ctx;

	if (fwrite(it->audit->line, 1, it->audit->line_len, x->f) != it->audit->line_len ||
	    fputc('\n', x->f) == EOF)
		return scone_err_set(SCONE_ERR_IO, "audit export: write failed");
	x->n++;
	return SCONE_ERR_OK;
}

static enum scone_err write_export(struct cas *cas, struct scone_store *st, const char *path, uint64_t *n)
{
	struct export x = {0};
	BIO *b = BIO_new(BIO_s_mem());
	char *pem = NULL;
	long len = 0;
	enum scone_err err = SCONE_ERR_OK;
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0 || !(x.f = fdopen(fd, "w"))) {
		if (fd >= 0)
			close(fd);
		BIO_free(b);
		return scone_err_set(scone_err_from_errno(errno), "%s: %s", path, strerror(errno));
	}
	if (!b || PEM_write_bio_X509(b, cas->identity.cert) != 1 || (len = BIO_get_mem_data(b, &pem)) <= 0)
		err = scone_err_set(SCONE_ERR_CRYPTO, "audit export: the certificate");
	if (err == SCONE_ERR_OK) {
		char *copy = strndup(pem, (size_t)len);
		err = copy ? cas_audit_write_header(x.f, copy) : SCONE_ERR_NOMEM;
		free(copy);
	}
	if (err == SCONE_ERR_OK)
		err = st->ops->dump(st, SCONE_DUMP_AUDIT, export_entry, &x);
	BIO_free(b);
	if (fclose(x.f) != 0 && err == SCONE_ERR_OK)
		err = scone_err_set(SCONE_ERR_IO, "%s: %s", path, strerror(errno));
	*n = x.n;
	return err;
}

static int cmd_audit_export(int argc, char **argv)
{
	static struct cas cas;
	struct admin_opts o;
	struct scone_store *st = NULL;
	uint64_t n = 0;
	enum scone_err err;
	int rc = parse(argc, argv, "scone-cas audit-export [--state-dir DIR] [--store URL] OUT",
		       "Write the whole audit log (every chain, in order) to OUT with CAS's certificate in\n"
		       "its first line. Check it with `scone cas verify-audit-log OUT`; keep exports\n"
		       "elsewhere: a later one must extend an earlier one (--previous), which shows a store\n"
		       "rolled back in between, and a restore brings volume tags forward from one.\n",
		       true, &o);

	if (rc)
		return rc < 0 ? 0 : rc;
	err = open_store(&cas, &o, false, SCONE_STORE_OPEN_EXISTING, &st);
	if (err == SCONE_ERR_OK)
		err = write_export(&cas, st, o.arg, &n);
	if (st)
		st->ops->close(st);
	cas_state_close(&cas);
	if (err)
		return fail("audit-export", o.arg, err);
	printf("audit log %s: %llu entries\n", o.arg, (unsigned long long)n);
	return 0;
}

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
} commands[] = {
    {"init", cmd_init},
    {"backup", cmd_backup},
    {"restore", cmd_restore},
    {"audit-export", cmd_audit_export},
};

int cas_admin_main(int argc, char **argv)
{
	if (argc < 2)
		return -1;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	return -1;
}
