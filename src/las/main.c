/*
 * main.c - scone-las: options, the host identity, the cache, the workers
 * and signals. The daemon's parts are listed in las.h.
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

#include "attest/measure.h"
#include "las.h"
#include "lib/hex.h"
#include "lib/log.h"

#define CACHE_ENTRIES 8192

static struct las_server *running;

static void on_signal(int sig)
{
	(void)sig;
	if (running)
		las_server_stop(running);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: scone-las [--listen unix:PATH] [--state-dir DIR] [--workers N]\n"
		"       scone-las --print-identity [--state-dir DIR]\n"
		"\n"
		"The Local Attestation Service, one per host. A program starting under the scone\n"
		"runtime asks it for a report; the LAS identifies the caller through the kernel\n"
		"(the connecting process's pidfd, never anything the caller says about itself),\n"
		"refuses a traced process, measures every code file the process has mapped\n"
		"executable (docs/attestation.md) and signs the report with the host key. CAS\n"
		"releases a session's secrets only to reports from hosts the session lists.\n"
		"\n"
		"  --listen unix:PATH   the socket (default %s, mode 0666; mount it\n"
		"                       into containers). There is no TCP listener: over TCP the\n"
		"                       LAS could not tell who its caller is.\n"
		"  --state-dir DIR      the host key DIR/las.key, made at first start (default\n"
		"                       $SCONE_LAS_STATE_DIR or %s)\n"
		"  --workers N          worker threads (default: the number of CPUs)\n"
		"  --print-identity     print the platform id (the SHA-256 of the host's public key)\n"
		"                       that sessions list in platforms:, and exit\n"
		"  --peer-check MODE    auto (default), pidfd (SO_PEERPIDFD, Linux 6.5+) or peercred\n"
		"                       (SO_PEERCRED + pidfd_open + a check that the pid still holds\n"
		"                       the socket; what auto uses on older kernels)\n"
		"\n"
		"Runs as root (it reads other processes' /proc/PID/map_files and memory) in the\n"
		"host's pid namespace. Logs go to stderr (SCONE_LOG=error|warn|info|debug).\n"
		"SIGTERM or SIGINT stops it.\n",
		LAS_DEFAULT_LISTEN, LAS_DEFAULT_STATE_DIR);
}

struct options {
	const char *listen;
	const char *state_dir;
	int workers;
	bool print_identity;
	enum las_peer_mode peer_mode;
};

static void bad(const char *msg, const char *arg)
{
	fprintf(stderr, "scone-las: %s%s\n", msg, arg ? arg : "");
	exit(2);
}

static void parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },	{ "state-dir", required_argument, NULL, 'd' },
		{ "workers", required_argument, NULL, 'w' },	{ "print-identity", no_argument, NULL, 'p' },
		{ "peer-check", required_argument, NULL, 'c' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "l:d:w:pc:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			o->listen = optarg;
			break;
		case 'd':
			o->state_dir = optarg;
			break;
		case 'w':
			o->workers = (int)strtol(optarg, &end, 10);
			if (*end || o->workers < 1 || o->workers > LAS_MAX_WORKERS)
				bad("--workers: expected 1 to 64, not ", optarg);
			break;
		case 'p':
			o->print_identity = true;
			break;
		case 'c':
			if (strcmp(optarg, "auto") == 0)
				o->peer_mode = LAS_PEER_AUTO;
			else if (strcmp(optarg, "pidfd") == 0)
				o->peer_mode = LAS_PEER_PIDFD;
			else if (strcmp(optarg, "peercred") == 0)
				o->peer_mode = LAS_PEER_CRED;
			else
				bad("--peer-check: expected auto, pidfd or peercred, not ", optarg);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (optind != argc)
		bad("unexpected argument ", argv[optind]);
}

static int fail(const char *what, enum scone_err err)
{
	scone_error("%s: %s%s%s (%s)", what, scone_strerror(err), scone_err_detail()[0] ? ": " : "",
		    scone_err_detail(), scone_errname(err));
	return 1;
}

/* The LAS must be able to follow /proc/PID/map_files (root, or CAP_SYS_ADMIN / CAP_CHECKPOINT_RESTORE). */
static enum scone_err check_privilege(void)
{
	char buf[256], name[96];
	struct scone_map_line m;
	struct scone_rbuf r;
	struct stat st;
	ssize_t n;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);

	n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
	if (fd >= 0)
		close(fd);
	scone_rbuf_init(&r, buf, n > 0 ? (size_t)n : 0, "/proc/self/maps");
	if (n <= 0 || scone_maps_next(&r, &m) != SCONE_ERR_OK)
		return scone_err_set(SCONE_ERR_IO, "cannot read /proc/self/maps");
	snprintf(name, sizeof(name), "/proc/self/map_files/%lx-%lx", (unsigned long)m.start, (unsigned long)m.end);
	if (stat(name, &st) != 0)
		return scone_err_set(SCONE_ERR_PERMISSION,
				     "%s: %s: scone-las needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE to read its callers' "
				     "mappings, and CAP_SYS_PTRACE for their memory (run it as root)",
				     name, strerror(errno));
	return SCONE_ERR_OK;
}

static int serve(const struct options *o, struct las_identity *id, const char *path)
{
	struct las_server_opts so = { .socket_path = path, .workers = o->workers, .peer_mode = o->peer_mode };
	struct las_ctx ctx = { .id = id, .cache = las_cache_new(CACHE_ENTRIES) };
	struct sigaction sa = { .sa_handler = on_signal };
	char hex[65];
	enum scone_err err;

	if (!ctx.cache)
		return fail("cache", SCONE_ERR_NOMEM);
	if ((err = check_privilege()) || (err = las_server_start(&so, &ctx, &running))) {
		las_cache_free(ctx.cache);
		return fail(path, err);
	}
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	scone_hex_encode(hex, sizeof(hex), id->platform_id, 32);
	scone_info("platform id %s; listening on unix:%s", hex, path);
	las_server_wait(running);
	running = NULL;
	las_cache_free(ctx.cache);
	scone_info("stopped");
	return 0;
}

int main(int argc, char **argv)
{
	struct options o = { .listen = LAS_DEFAULT_LISTEN, .state_dir = getenv("SCONE_LAS_STATE_DIR") };
	struct las_identity id;
	char path[108], hex[65];
	enum scone_err err;
	int rc;

	setenv("SCONE_LOG", getenv("SCONE_LOG") ? getenv("SCONE_LOG") : "info", 1);
	scone_log_init("scone-las");
	parse_options(argc, argv, &o);
	if (!o.state_dir || !*o.state_dir)
		o.state_dir = LAS_DEFAULT_STATE_DIR;
	if ((err = scone_las_addr_path(o.listen, path, sizeof(path))))
		return fail("--listen", err);
	if ((err = las_identity_open(o.state_dir, &id)))
		return fail(o.state_dir, err);
	if (o.print_identity) {
		scone_hex_encode(hex, sizeof(hex), id.platform_id, 32);
		printf("%s\n", hex);
		las_identity_close(&id);
		return 0;
	}
	rc = serve(&o, &id, path);
	las_identity_close(&id);
	return rc;
}
