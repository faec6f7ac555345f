/*
 * main.c - scone-cas: options, state directory, TLS context, workers and
 * signals. Everything else lives in the modules listed in cas.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "cas.h"
#include "attest/attest.h"
#include "cas/memwipe.h"
#include "cas/audit.h"
#include "lib/log.h"
#include "lib/wipealloc.h"

/* OpenSSL's secure heap: private keys, the TLS identity's key, cached secret values (power of two). */
#define CAS_SECURE_HEAP_BYTES ((size_t)16 << 20)

static struct cas_server *running;

static void on_signal(int sig)
{
	(void)sig;
	if (running)
		cas_server_stop(running);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: scone-cas [--listen ADDR:PORT] [--state-dir DIR] [--store URL] [--workers N]\n"
		"                 [--max-connections N] [--timeout SECONDS] [--rate-limit N]\n"
		"                 [--evidence-max-age SECONDS]\n"
		"                 [--max-pending-mb N] [--slow-workers N]\n"
		"                 [--keygen-per-session UNITS] [--keygen-per-minute UNITS]\n"
		"                 [--replica NAME] [--audit-mirror FILE] [--collateral DIR]\n"
		"       scone-cas init|backup|restore|audit-export ... (each with --help)\n"
		"\n"
		"The Configuration and Attestation Service: keeps sessions and their secrets,\n"
		"and hands a service its configuration after attestation. HTTPS on ADDR:PORT\n"
		"(default 127.0.0.1:%d); identity and master key in DIR (default\n"
		"$SCONE_CAS_STATE_DIR or /var/lib/scone-cas). The store is URL (default\n"
		"$SCONE_CAS_STORE, else sqlite:DIR/cas.db); postgres://... lets several replicas\n"
		"share one database: make the store and the key material once with scone-cas\n"
		"init, give each replica a copy of DIR (docs/cas-replicas.md). Every write,\n"
		"configuration release and refusal goes to the audit log in the store, under\n"
		"--replica NAME (default: the host name), and to --audit-mirror FILE if given.\n"
		"Workers default to the number of CPUs. Logs are JSON lines on stderr\n"
		"(SCONE_LOG=error|warn|info|debug, default info). --rate-limit caps the\n"
		"requests per second on one connection (default 1000; a runtime's successful\n"
		"volume tag reports, one a commit, do not count). --max-pending-mb caps the\n"
		"memory held by requests not yet answered, over all connections, beyond each\n"
		"connection's first 16 KiB (default 64; the connection that goes over is\n"
		"closed). Session creates and updates run on --slow-workers threads of their\n"
		"own (default 1, at a lower priority), so that key generation never delays\n"
		"other requests. Key generation costs units (an RSA-3072 key 4, RSA-2048\n"
		"1, EC and Ed25519 keys 0): one create or update may spend at most\n"
		"--keygen-per-session (default %d), one client key at most\n"
		"--keygen-per-minute (default %d; 0: no limit). --evidence-max-age is how\n"
		"long evidence that carries a time (a LAS report) is accepted (default 60; it\n"
		"must cover the clock difference between the LAS hosts and CAS). SIGTERM or\n"
		"--collateral is the directory of Intel and AMD collateral that SGX, TDX and\n"
		"SEV-SNP evidence is verified with (scone attest collateral import; read at\n"
		"start: restart CAS after an update). SIGTERM or\n"
		"SIGINT stops it gracefully. API: docs/api.md, attestation:\n"
		"docs/attestation.md.\n",
		CAS_DEFAULT_PORT, CAS_KEYGEN_PER_REQUEST, CAS_KEYGEN_PER_MINUTE);
}

static int parse_int(const char *opt, const char *v, int lo, int hi)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || *end || n < lo || n > hi) {
		fprintf(stderr, "scone-cas: %s: expected a number from %d to %d\n", opt, lo, hi);
		exit(2);
	}
	return (int)n;
}

struct options {
	const char *listen;
	const char *state_dir;
	const char *store;
	const char *replica;
	const char *audit_mirror;
	const char *collateral;
	int workers;
	int max_connections;
	int timeout;
	int rate_limit;
	int evidence_max_age;
	int max_pending_mb;
	int slow_workers;
	int keygen_per_session;
	int keygen_per_minute;
};

static void parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"state-dir", required_argument, NULL, 'd'},
	    {"workers", required_argument, NULL, 'w'},
	    {"max-connections", required_argument, NULL, 'c'},
	    {"timeout", required_argument, NULL, 't'},
	    {"rate-limit", required_argument, NULL, 'r'},
	    {"evidence-max-age", required_argument, NULL, 'e'},
	    {"max-pending-mb", required_argument, NULL, 'm'},
	    {"slow-workers", required_argument, NULL, 's'},
	    {"keygen-per-session", required_argument, NULL, 'k'},
	    {"keygen-per-minute", required_argument, NULL, 'K'},
	    {"store", required_argument, NULL, 'S'},
	    {"replica", required_argument, NULL, 'R'},
	    {"audit-mirror", required_argument, NULL, 'A'},
	    {"collateral", required_argument, NULL, 'C'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "l:d:w:c:t:r:e:m:s:k:K:S:R:A:C:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'S':
			o->store = optarg;
			break;
		case 'R':
			o->replica = optarg;
			break;
		case 'A':
			o->audit_mirror = optarg;
			break;
		case 'C':
			o->collateral = optarg;
			break;
		case 'l':
			o->listen = optarg;
			break;
		case 'd':
			o->state_dir = optarg;
			break;
		case 'w':
			o->workers = parse_int("--workers", optarg, 1, CAS_MAX_LOOPS);
			break;
		case 'c':
			o->max_connections = parse_int("--max-connections", optarg, 1, 1000000);
			break;
		case 't':
			o->timeout = parse_int("--timeout", optarg, 1, 3600);
			break;
		case 'r':
			o->rate_limit = parse_int("--rate-limit", optarg, 1, 1000000);
			break;
		case 'e':
			o->evidence_max_age = parse_int("--evidence-max-age", optarg, 1, 86400);
			break;
		case 'm':
			o->max_pending_mb = parse_int("--max-pending-mb", optarg, 2, 1 << 20);
			break;
		case 's':
			o->slow_workers = parse_int("--slow-workers", optarg, 1, CAS_MAX_SLOW);
			break;
		case 'k':
			o->keygen_per_session = parse_int("--keygen-per-session", optarg, 1, 1 << 20);
			break;
		case 'K':
			o->keygen_per_minute = parse_int("--keygen-per-minute", optarg, 0, 1 << 20);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind != argc) {
		fprintf(stderr, "scone-cas: unexpected argument %s\n", argv[optind]);
		usage(stderr);
		exit(2);
	}
	if (o->store && scone_store_url_has_password(o->store)) {
		fprintf(
		    stderr,
		    "scone-cas: --store carries a password, which ps would show to every user: put it in a "
		    "password file (passfile=PATH in the URL, or ~/.pgpass)\n");
		exit(2);
	}
}

/* The replica's name in the audit log: --replica, else the host name. */
static void set_replica(struct cas *cas, const char *name)
{
	char host[64] = "cas";

	if (!name && gethostname(host, sizeof(host)) == 0)
		host[sizeof(host) - 1] = '\0';
	snprintf(cas->replica, sizeof(cas->replica), "%s", name ? name : host);
}

/* --audit-mirror: every committed entry is appended; a new file starts with the header. */
static enum scone_err open_mirror(struct cas *cas, const char *path)
{
	struct stat sb;
	BIO *b;
	char *pem = NULL, *copy;
	long len = 0;
	FILE *f;
	enum scone_err err = SCONE_ERR_OK;
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);

	if (fd < 0 || fstat(fd, &sb) != 0)
		return scone_err_set(scone_err_from_errno(errno), "%s: %s", path, strerror(errno));
	cas->audit_mirror_fd = fd;
	if (sb.st_size > 0)
		return SCONE_ERR_OK;
	b = BIO_new(BIO_s_mem());
	if (!b || PEM_write_bio_X509(b, cas->identity.cert) != 1 || (len = BIO_get_mem_data(b, &pem)) <= 0) {
		BIO_free(b);
		return scone_err_set(SCONE_ERR_CRYPTO, "%s: the certificate for the header", path);
	}
	copy = strndup(pem, (size_t)len);
	f = fdopen(dup(fd), "w");
	if (!copy || !f)
		err = scone_err_set(SCONE_ERR_NOMEM, "%s: header", path);
	else
		err = cas_audit_write_header(f, copy);
	if (f && fclose(f) != 0 && err == SCONE_ERR_OK)
		err = scone_err_set(SCONE_ERR_IO, "%s: %s", path, strerror(errno));
	free(copy);
	BIO_free(b);
	return err;
}

static int fail(const char *what, enum scone_err err)
{
	scone_error("%s: %s%s%s (%s)", what, scone_strerror(err), scone_err_detail()[0] ? ": " : "",
		    scone_err_detail(), scone_errname(err));
	return 1;
}

int main(int argc, char **argv)
{
	struct options o = {.listen = "127.0.0.1:8081",
			    .state_dir = getenv("SCONE_CAS_STATE_DIR"),
			    .store = getenv("SCONE_CAS_STORE"),
			    .rate_limit = 1000,
			    .keygen_per_session = CAS_KEYGEN_PER_REQUEST,
			    .keygen_per_minute = CAS_KEYGEN_PER_MINUTE};
	static struct cas cas;
	struct cas_server_opts so = {0};
	struct sigaction sa = {.sa_handler = on_signal};
	char host[256], crt[4200], key[4200];
	uint16_t port;
	enum scone_err err;
	int rc = 0;

	/* Before jansson, libevent or OpenSSL allocate anything: their blocks are wiped when freed. */
	cas_memwipe_install();
	if (!scone_wipealloc_openssl())
		scone_warn("OpenSSL allocated memory before the wiping allocator could be installed");
	setenv("SCONE_LOG_FORMAT", getenv("SCONE_LOG_FORMAT") ? getenv("SCONE_LOG_FORMAT") : "json", 1);
	setenv("SCONE_LOG", getenv("SCONE_LOG") ? getenv("SCONE_LOG") : "info", 1);
	scone_log_init("scone-cas");
	if ((rc = cas_admin_main(argc, argv)) >= 0)
		return rc;
	rc = 0;
	parse_options(argc, argv, &o);
	if (!o.state_dir)
		o.state_dir = "/var/lib/scone-cas";
	/* Before any key is loaded: keys and cached secrets go to the secure heap, nothing to a core. */
	if ((err = cas_memwipe_harden_process(CAS_SECURE_HEAP_BYTES)))
		return fail("hardening the process", err);
	if ((err = scone_hostport_parse(o.listen, CAS_DEFAULT_PORT, host, sizeof(host), &port)))
		return fail("--listen", err);
	set_replica(&cas, o.replica);
	if ((err = cas_state_open(&cas, o.state_dir, o.store, false))) {
		rc = fail(o.state_dir, err);
		goto out;
	}
	cas.evidence_max_age = o.evidence_max_age;
	if (o.collateral && (err = scone_collateral_load(o.collateral, &cas.collateral))) {
		rc = fail("--collateral", err);
		goto out;
	}
	if ((err = cas_self_evidence_init(&cas))) {
		rc = fail("attestation", err);
		goto out;
	}
	if (o.audit_mirror && (err = open_mirror(&cas, o.audit_mirror))) {
		rc = fail("--audit-mirror", err);
		goto out;
	}
	snprintf(crt, sizeof(crt), "%s/cas.crt", cas.state_dir);
	snprintf(key, sizeof(key), "%s/cas.key", cas.state_dir);
	so.host = host;
	so.port = port;
	so.workers = o.workers;
	so.max_connections = o.max_connections;
	so.timeout_sec = o.timeout;
	so.max_requests_per_conn_per_sec = o.rate_limit;
	so.max_pending_bytes = (size_t)o.max_pending_mb << 20;
	so.is_slow = cas_is_slow;
	so.slow_workers = o.slow_workers;
	cas.keygen_per_request = (unsigned)o.keygen_per_session;
	if (o.keygen_per_minute && !(cas.keygen = cas_budget_new((unsigned)o.keygen_per_minute))) {
		rc = fail("key generation budget", SCONE_ERR_NOMEM);
		goto out;
	}
	so.ssl_ctx = cas_server_tls_ctx(crt, key);
	so.handler = cas_handle;
	so.handler_ctx = &cas;
	so.worker_init = cas_worker_init;
	so.worker_fini = cas_worker_fini;
	so.worker_tick = cas_worker_tick;
	if (!so.ssl_ctx) {
		rc = fail("TLS context", SCONE_ERR_CRYPTO);
		goto out;
	}
	if ((err = cas_server_new(&so, &cas.server))) {
		rc = fail(o.listen, err);
		goto out;
	}
	running = cas.server;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	scone_info("listening on https://%s:%u", host, cas_server_port(cas.server));
	if ((err = cas_server_run(cas.server)))
		rc = fail("serve", err);
	else
		scone_info("stopped");
	running = NULL;
	cas_server_free(cas.server);
	cas.server = NULL;
out:
	if (so.ssl_ctx)
		SSL_CTX_free(so.ssl_ctx);
	scone_collateral_free(cas.collateral);
	cas_self_evidence_free(&cas);
	cas_state_close(&cas);
	cas_budget_free(cas.keygen);
	return rc;
}
