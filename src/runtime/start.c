/*
 * start.c - the runtime's start-up inside an unmodified program: libscone.so
 * interposes __libc_start_main, so that before the program's main runs it
 * can fetch the service's configuration from CAS (over TLS, with a fresh
 * key, the CAS pinned by fingerprint) and give main the session's argv,
 * environment and working directory instead of the host's.
 *
 * Where secrets end up: the new argv and environment live in heap memory.
 * /proc/PID/cmdline and /proc/PID/environ show the kernel's copies made at
 * exec (the host's arguments and variables), which never held a secret.
 *
 * Attestation (attest_rt.c): with the fresh key made, the runtime asks the
 * host's LAS for a report bound to it and presents it to CAS; CAS decides.
 * The process is non-dumpable before it asks. SCONE_MEASURE=FD instead
 * prints the measurement the LAS would report and exits before main
 * (`scone measure`).
 *
 * Without SCONE_CONFIG_ID the runtime stays out of the way. If anything
 * fails, main never runs: one line on stderr and exit status 1.
 *
 * Injection files are served from memory (inject.c); the session's volumes
 * (and its fspf, or one given by SCONE_FSPF without CAS) are mounted by the
 * file-system shield (shield.c) before main. A program exec'd by a program
 * under the runtime starts from the handover instead (exec.c, handover.h).
 */
#include <dlfcn.h>
#include <openssl/ssl.h>
#include <errno.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/crypto.h"
#include "lib/elf.h"
#include "lib/err.h"
#include "lib/hex.h"
#include "lib/tls.h"
#include "policy/template.h"
#include "lib/log.h"
#include "lib/wipealloc.h"
#include "runtime/attest_rt.h"
#include "runtime/cas_client.h"
#include "runtime/exec.h"
#include "runtime/image_files.h"
#include "runtime/handover.h"
#include "runtime/handover_io.h"
#include "runtime/inject.h"
#include "runtime/netshield.h"
#include "runtime/rt.h"
#include "runtime/shield.h"

typedef int (*main_fn)(int, char **, char **);
typedef int (*start_main_fn)(main_fn, int, char **, void (*)(void), void (*)(void), void (*)(void), void *);

static main_fn real_main;
static char **kernel_argv; /* what the kernel laid out: argv, NULL, envp, NULL, auxv */
static int kernel_argc;

static void die(const char *what, enum scone_err err) __attribute__((noreturn));
static void die(const char *what, enum scone_err err)
{
	const char *d = scone_err_detail();

	scone_error("cannot start: %s: %s%s%s (%s)", what, scone_strerror(err), d[0] ? ": " : "", d,
		    scone_errname(err));
	_exit(1);
}

/*
 * main gets one contiguous, well-formed start block: argv, NULL, the
 * environment, NULL, then the auxiliary vector copied from the kernel's.
 * Programs that read all three from the pointer main receives (Go's
 * runtime finds the page size in auxv after the environment's NULL) see
 * what the runtime decided, laid out as the kernel would. Nothing in the
 * kernel's own block is moved or shrunk. The block lives for the
 * program's whole life; environ points into it.
 */
static int start_program(int argc, char **argv, char **env)
{
	char **kenv = kernel_argv + kernel_argc + 1, **block;
	ElfW(auxv_t) * aux;
	size_t n_env = 0, n_aux = 1, words;

	while (*kenv)
		kenv++;
	aux = (ElfW(auxv_t) *)(void *)(kenv + 1);
	while (aux[n_aux - 1].a_type != AT_NULL)
		n_aux++;
	while (env && env[n_env])
		n_env++;
	words = (size_t)argc + 1 + n_env + 1 + n_aux * sizeof(*aux) / sizeof(char *);
	if (!(block = calloc(words, sizeof(char *))))
		die("start", scone_err_set(SCONE_ERR_NOMEM, "out of memory"));
	memcpy(block, argv, (size_t)argc * sizeof(char *));
	if (n_env)
		memcpy(block + argc + 1, env, n_env * sizeof(char *));
	memcpy(block + argc + 1 + n_env + 1, aux, n_aux * sizeof(*aux));
	environ = block + argc + 1;
	return real_main(argc, block, environ);
}

/* The pinned CAS: $SCONE_CAS_FINGERPRINT (64 hex). */
static void cas_pin(uint8_t pin[32])
{
	const char *fp = getenv("SCONE_CAS_FINGERPRINT");
	enum scone_err err;

	if (!fp || !*fp) {
		scone_err_set(SCONE_ERR_UNTRUSTED,
			      "set SCONE_CAS_FINGERPRINT to the CAS certificate's SHA-256 "
			      "(scone run --cas-fingerprint)");
		die("CAS", SCONE_ERR_UNTRUSTED);
	}
	if ((err = scone_fingerprint_parse(fp, pin)))
		die("SCONE_CAS_FINGERPRINT", err);
}

/*
 * The variables the runtime keeps from the host: its own, except
 * SCONE_CONFIG_ID, so that a child the program starts does not fetch the
 * configuration again and take the session's argv for its own (it gets the
 * runtime's state through the handover instead: exec.c).
 */
static bool runtime_var(const char *entry)
{
	if (strncmp(entry, "SCONE_CONFIG_ID=", 16) == 0 ||
	    strncmp(entry, "SCONE_SERVICE_ACCESS_TOKEN=", 27) == 0 || scone_netshield_is_var(entry))
		return false;
	return strncmp(entry, "SCONE_", 6) == 0 || strncmp(entry, "LD_PRELOAD=", 11) == 0;
}

/*
 * environ becomes the entries of host_env that keep accepts, then extra (n
 * "NAME=VALUE" strings, environ owns them). The old block stays where the
 * kernel put it, so /proc/PID/environ shows the exec'd variables only.
 */
static size_t env_count(char **env)
{
	size_t n = 0;

	while (env && env[n])
		n++;
	return n;
}

static void install_environ(char **host_env, bool (*keep)(const char *), char **extra, size_t n)
{
	size_t k = 0;
	char **env;

	if (!(env = calloc(env_count(host_env) + n + 1, sizeof(*env))))
		die("environment", scone_err_set(SCONE_ERR_NOMEM, "out of memory"));
	for (char **e = host_env; e && *e; e++)
		if (keep(*e))
			env[k++] = *e;
	memcpy(env + k, extra, n * sizeof(*extra));
	env[k + n] = NULL;
	environ = env;
}

/* ---- the network shield: its variables configure the runtime, never the program ---- */

/* Start the shield from n "NAME=VALUE" entries; a bad configuration stops the start, naming the variable. */
static void netshield_start(char *const *entries, size_t n)
{
	enum scone_err err = scone_netshield_init(entries, n);

	if (err)
		die("network shield", err);
}

/* The session's SCONE_NETWORK_SHIELD* variables (CAS's answer, or the handover's copy of it). */
static void netshield_from_session(const struct scone_runtime_config *cfg)
{
	char **e = calloc(cfg->env_count + 1, sizeof(*e));
	size_t n = 0;

	if (!e)
		die("network shield", scone_err_set(SCONE_ERR_NOMEM, "out of memory"));
	for (size_t i = 0; i < cfg->env_count; i++)
		if (scone_netshield_is_var(cfg->env[i].name) &&
		    asprintf(&e[n++], "%s=%s", cfg->env[i].name, cfg->env[i].value) < 0)
			die("network shield", scone_err_set(SCONE_ERR_NOMEM, "out of memory"));
	netshield_start(e, n);
	for (size_t i = 0; i < n; i++) {
		scone_wipe(e[i], strlen(e[i])); /* identities: private keys */
		free(e[i]);
	}
	free(e);
}

/*
 * Without CAS: the host's variables, the user's own choice of configuration.
 * They stay in the environment: without a handover, that is how programs
 * the process execs get the shield too (rather than talking plain TCP).
 */
static bool netshield_wanted(void)
{
	const char *mode = getenv("SCONE_NETWORK_SHIELD");

	return mode && *mode && strcmp(mode, "disabled") != 0;
}

static bool netshield_from_host(char **envp)
{
	if (!netshield_wanted())
		return false;
	netshield_start(envp, env_count(envp));
	return true;
}

/* NAME's value in the host's environment block, or "" (SCONE's rule for an unset \@\@NAME). */
static const char *host_value(char **host_env, const char *name)
{
	size_t n = strlen(name);

	for (char **e = host_env; e && *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return "";
}

/*
 * Replace the environment with the session's (plus the runtime's own
 * variables). The session's SCONE_* variables configure the runtime and
 * stay out of the program's environment. SCONE's \@\@NAME variables
 * come last with the host's values, never expanded: the host is not trusted.
 */
static void set_environment(const struct scone_runtime_config *cfg, char **host_env)
{
	char **extra = calloc(cfg->env_count + cfg->host_env_count + 1, sizeof(*extra));
	size_t n = 0;

	if (!extra)
		die("environment", scone_err_set(SCONE_ERR_NOMEM, "out of memory"));
	for (size_t i = 0; i < cfg->env_count; i++) {
		if (scone_runtime_is_setting(cfg->env[i].name))
			continue;
		if (asprintf(&extra[n++], "%s=%s", cfg->env[i].name, cfg->env[i].value) < 0)
			die("environment", scone_err_set(SCONE_ERR_NOMEM, "out of memory"));
	}
	for (size_t i = 0; i < cfg->host_env_count; i++)
		if (asprintf(&extra[n++], "%s=%s", cfg->host_env[i], host_value(host_env, cfg->host_env[i])) <
		    0)
			die("environment", scone_err_set(SCONE_ERR_NOMEM, "out of memory"));
	install_environ(host_env, runtime_var, extra, n);
	free(extra);
}

/*
 * SCONE_SERVICE_ACCESS_TOKEN is the runtime's: wiped from the block the
 * kernel shows in /proc/PID/environ and kept from the program's environment.
 */
static void hide_access_token(char **envp)
{
	static const char var[] = "SCONE_SERVICE_ACCESS_TOKEN=";

	for (char **e = envp; e && *e; e++)
		if (strncmp(*e, var, sizeof(var) - 1) == 0)
			scone_wipe(*e + sizeof(var) - 1, strlen(*e + sizeof(var) - 1));
}

/*
 * The image's own injection files: read after the mount (through the shield
 * when a file lies in a region it protects), their values asked from CAS
 * with the runtime's key, which the context holds.
 */
static void expand_image_files(struct scone_runtime_config *cfg)
{
	const struct scone_rt *rt = scone_rt();
	enum scone_err err;

	if ((err = scone_image_files_expand(rt->cas_addr, rt->pin, &rt->id, cfg)))
		die("injection files", err);
}

/*
 * Secrets are about to arrive: from now on the process is not dumpable, so
 * no core file holds them, and other processes of the same user can no
 * longer ptrace it or open its /proc/PID/mem, environ and fd entries.
 */
static void no_dump(void)
{
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		die("PR_SET_DUMPABLE", scone_err_set(scone_err_from_errno(errno), "%s", strerror(errno)));
}

/*
 * A development session may ask for core dumps and debuggers back
 * (SCONE_DUMPABLE=1 in the service's environment); honoured only when the
 * session runs without attestation (mode none), where nothing is proven
 * about the program anyway.
 */
static void dump_setting(const struct scone_runtime_config *cfg)
{
	const char *v = scone_runtime_setting(cfg, "SCONE_DUMPABLE");

	if (!v || strcmp(v, "1") != 0)
		return;
	if (!cfg->mode || strcmp(cfg->mode, "none") != 0) {
		scone_warn("SCONE_DUMPABLE=1 ignored: only a session in attestation mode none may make its "
			   "processes "
			   "dumpable");
		return;
	}
	scone_warn("SCONE_DUMPABLE=1: core dumps and debuggers can read this process's secrets");
	(void)prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
}

static int handover_main(int argc, char **argv, char **envp, const char *fd_text);

/* SCONE_VERSION=1: print the runtime's view at start. */
/* SCONE_VERSION=1: print the runtime's view at start (an info line, shown whatever SCONE_LOG says). */
static bool view_wanted(void)
{
	const char *v = getenv("SCONE_VERSION");
	bool want = v && strcmp(v, "1") == 0;

	if (want && !scone_log_enabled(SCONE_LOG_INFO))
		scone_log_set_level(SCONE_LOG_INFO);
	return want;
}

/*
 * The runtime's OpenSSL (linked into libscone.so, apart from any the program
 * uses) without the legacy name tables of every cipher and digest: the
 * runtime fetches algorithms from the provider or uses EVP_sha256() and the
 * like, never EVP_get_cipherbyname, and building those tables was 0.4 ms of
 * every start. It reads no configuration file: OPENSSL_CONF and openssl.cnf
 * belong to the host, and a configuration can load providers and engines,
 * which is code the host would put into the program (it also cost 0.2 ms a
 * start). And it leaves nothing for exit to clean up (OPENSSL_cleanup freed
 * every table at each exit, 0.25 ms; the process's memory goes with it).
 */
static void openssl_init(void)
{
	if (OPENSSL_init_ssl(OPENSSL_INIT_NO_ADD_ALL_CIPHERS | OPENSSL_INIT_NO_ADD_ALL_DIGESTS |
				 OPENSSL_INIT_NO_LOAD_CONFIG | OPENSSL_INIT_NO_ATEXIT,
			     NULL) != 1)
		die("OpenSSL", scone_err_set(SCONE_ERR_CRYPTO, "cannot be initialised"));
	scone_tls_set_fd_placer(scone_shield_fd_up); /* CAS's connection out of the program's fds' way */
}

/* A 64-hex key or 32-hex tag from the environment into out; false if unset. */
static bool env_hex(const char *name, uint8_t *out, size_t n)
{
	const char *v = getenv(name);
	enum scone_err err;

	if (!v || !*v)
		return false;
	if ((err = scone_hex_decode(out, n, v, name)))
		die(name, err);
	return true;
}

/*
 * Without a configuration the runtime stays out of the way, except for a
 * volume given by SCONE_FSPF (a protection file made with `scone fspf`),
 * SCONE_FSPF_KEY and SCONE_FSPF_TAG, mounted before main. The three
 * variables are taken out of the program's environment (its children are
 * not handed the volume; they would mount a stale tag).
 */
static int fspf_main(int argc, char **argv, char **envp)
{
	struct scone_runtime_config *cfg;
	struct scone_identity none = {0};
	const char *path = getenv("SCONE_FSPF");
	enum scone_err err;
	char **env;
	size_t k = 0;

	if (!path || !*path) {
		if (!netshield_wanted())
			return real_main(argc, argv, envp);
		no_dump();
		openssl_init(); /* before the network shield's first use of OpenSSL */
		(void)netshield_from_host(envp);
		if (view_wanted())
			scone_netshield_show();
		return start_program(argc, argv, envp);
	}
	no_dump();
	openssl_init();
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg || !(cfg->fspf = calloc(1, sizeof(*cfg->fspf))) || !(cfg->fspf->path = strdup(path)))
		die("SCONE_FSPF", scone_err_set(SCONE_ERR_NOMEM, "out of memory"));
	cfg->fspf->has_key = env_hex("SCONE_FSPF_KEY", cfg->fspf->key, sizeof(cfg->fspf->key));
	cfg->fspf->has_tag = env_hex("SCONE_FSPF_TAG", cfg->fspf->tag, sizeof(cfg->fspf->tag));
	if ((err = scone_rt_init(NULL, (const uint8_t[32]){0}, &none, cfg)) || (err = scone_shield_mount()))
		die("SCONE_FSPF", err);
	(void)netshield_from_host(envp);
	if (view_wanted())
		scone_netshield_show();
	if (view_wanted())
		scone_info(
		    "runtime: no config_id, SCONE_FSPF %s, file-system shield %s (%zu volumes mounted)", path,
		    scone_shield_count() ? "on" : "off", scone_shield_count());
	if (!(env = calloc(env_count(envp) + 1, sizeof(*env))))
		die("SCONE_FSPF", scone_err_set(SCONE_ERR_NOMEM, "out of memory"));
	for (char **e = envp; e && *e; e++) {
		if (strncmp(*e, "SCONE_FSPF_KEY=", 15) ==
		    0) /* also out of /proc/PID/environ, which shows this memory */
			scone_wipe(*e + 15, strlen(*e + 15));
		if (strncmp(*e, "SCONE_FSPF", 10) != 0)
			env[k++] = *e;
	}
	env[k] = NULL;
	return start_program(argc, argv, env);
}

/*
 * When the program was started through "#!" lines, the kernel put the
 * interpreter (and its optional argument, for each level) in front of the
 * script's path, which replaced the script's argv[0]. The number of those
 * leading arguments: the index of the script's path (AT_EXECFN, the name
 * given to execve) in argv, when that file is a script; 0 otherwise.
 */
static int script_lead(int argc, char **argv)
{
	const char *execfn = (const char *)getauxval(AT_EXECFN);
	struct scone_exec_info info;

	if (!execfn || scone_exec_inspect(execfn, &info) != SCONE_ERR_OK || info.kind != SCONE_EXEC_SCRIPT) {
		scone_err_clear();
		return 0;
	}
	for (int k = 1; k < argc && k <= 8; k++) /* at most 4 levels of an interpreter and its argument */
		if (strcmp(argv[k], execfn) == 0)
			return k;
	return 0;
}

/*
 * main's argv from the session's command: the command's words with @@N
 * replaced by the host's arguments. For a script, the interpreter's
 * leading arguments stay in front, the script's path takes the command's
 * first word's place (the interpreter must still find its script), and
 * @@N are the script's own arguments.
 */
static void session_argv_for(const struct scone_runtime_config *cfg, int argc, char **argv,
			     struct scone_strs *out)
{
	struct scone_strs session_argv = {.v = cfg->argv, .n = cfg->argc}, rest;
	int lead = script_lead(argc, argv);
	enum scone_err err;

	if ((err = scone_host_args(&session_argv, argc - lead, argv + lead, &rest)))
		die("command", err);
	if (lead == 0) {
		*out = rest;
		return;
	}
	out->n = (size_t)lead + rest.n;
	if (!(out->v = calloc(out->n + 1, sizeof(char *))))
		die("command", scone_err_set(SCONE_ERR_NOMEM, "out of memory"));
	for (int i = 0; i < lead; i++)
		out->v[i] = argv[i];
	/* The session's pwd may differ from the host's: the interpreter finds its script by an absolute path.
	 */
	out->v[lead] = argv[lead][0] == '/' ? argv[lead] : realpath(argv[lead], NULL);
	if (!out->v[lead])
		die("command",
		    scone_err_set(scone_err_from_errno(errno), "%s: %s", argv[lead], strerror(errno)));
	for (size_t i = 1; i < rest.n; i++)
		out->v[lead + i] = rest.v[i];
	/* rest.v[0] (the command's first word) is replaced by the script's path; the array goes. */
	scone_wipe(rest.v[0], strlen(rest.v[0]));
	free(rest.v[0]);
	free(rest.v);
}

/*
 * The kernel's block of argument and environment strings (what
 * /proc/PID/cmdline and environ show, and where programs that set their
 * process title write: PostgreSQL's "postgres: checkpointer", nginx's
 * "worker process"): [*start, *end) when argv's and envp's strings lie in
 * it back to back, as exec puts them.
 */
static bool kernel_block(int argc, char **argv, char **envp, char **start, char **end)
{
	char *p = argv[0];

	for (int i = 0; i < argc; i++, p += strlen(p) + 1)
		if (argv[i] != p)
			return false;
	for (char **e = envp; e && *e; e++, p += strlen(p) + 1)
		if (*e != p)
			return false;
	*start = argv[0];
	*end = p;
	return true;
}

/*
 * A command without secrets (CAS says so: command_public) is shown where
 * the program's own would be: main's argv strings move into the kernel's
 * block, which then holds nothing else (the host's variables there are
 * copied out first and the rest is zeroed), so ps shows the session's
 * command, and a program that writes its title over argv writes where ps
 * reads. A command with a secret stays in the heap; the block keeps what
 * the host passed.
 */
static void show_command(int argc, char **argv, char **envp, struct scone_strs *av)
{
	char *start, *end, *buf, *p;
	size_t total = 0;

	if (!kernel_block(argc, argv, envp, &start, &end))
		return;
	for (size_t i = 0; i < av->n; i++)
		total += strlen(av->v[i]) + 1;
	if (total > (size_t)(end - start) || !(buf = malloc(total)))
		return;
	for (char **e = environ; e && *e; e++) /* environ may still point into the block */
		if (*e >= start && *e < end && !(*e = strdup(*e)))
			die("environment", scone_err_set(SCONE_ERR_NOMEM, "out of memory"));
	p = buf;
	for (size_t i = 0; i < av->n; i++) {
		size_t n = strlen(av->v[i]) + 1;
		memcpy(p, av->v[i], n);
		p += n;
	}
	memcpy(start, buf, total);
	memset(start + total, 0, (size_t)(end - start) - total);
	free(buf);
	p = start;
	for (size_t i = 0; i < av->n; i++, p += strlen(p) + 1)
		av->v[i] = p;
}

static void print_view(const struct scone_runtime_config *cfg, const char *mode)
{
	scone_info("runtime: config_id %s, session %.16s..., attestation %s, SCONE_MODE %s, "
		   "%zu arguments, %zu environment variables, %zu injection files, %zu volumes, "
		   "file-system shield %s (%zu volumes mounted), network shield off",
		   cfg->config_id, cfg->session_hash, cfg->mode, mode, cfg->argc, cfg->env_count,
		   cfg->file_count, cfg->volume_count, scone_shield_count() ? "on" : "off",
		   scone_shield_count());
}

/*
 * `scone measure`: the same start as a real one up to the point where the
 * runtime asks the LAS (OpenSSL set up, the fresh key made), then the
 * measurement of what is mapped now, and exit before main.
 */
static void measure_main(void) __attribute__((noreturn));
static void measure_main(void)
{
	struct scone_identity id;
	enum scone_err err;

	openssl_init();
	if ((err = scone_identity_new("scone-runtime", 1, &id)))
		die("runtime key", err);
	if ((err = scone_rt_measure(getenv("SCONE_MEASURE"))))
		die("SCONE_MEASURE", err);
	scone_identity_free(&id);
	_exit(0);
}

static int scone_main(int argc, char **argv, char **envp)
{
	const char *config_id = getenv("SCONE_CONFIG_ID");
	const char *addr = getenv("SCONE_CAS_ADDR");
	const char *mode = getenv("SCONE_MODE");
	struct scone_runtime_config *cfg = NULL;
	struct scone_identity id;
	struct scone_rt_attest att;
	struct scone_strs new_argv;
	const char *handover = getenv(SCONE_HANDOVER_VAR);
	uint8_t pin[32];
	enum scone_err err;

	/* Before the runtime's OpenSSL allocates anything: keys and TLS record buffers wiped when freed */
	(void)scone_wipealloc_openssl();
	scone_log_init("scone"); /* SCONE_LOG, SCONE_LOG_FORMAT */
	if (getenv("SCONE_MEASURE"))
		measure_main();
	if (handover && *handover)
		return handover_main(argc, argv, envp, handover);
	if (!config_id || !*config_id)
		return fspf_main(argc, argv, envp);
	no_dump();
	mode = mode && *mode ? mode : "AUTO";
	if (strcmp(mode, "HW") != 0 && strcmp(mode, "SIM") != 0 && strcmp(mode, "AUTO") != 0)
		die("SCONE_MODE",
		    scone_err_set(SCONE_ERR_INVALID, "expected HW, SIM or AUTO, not %.16s", mode));
	cas_pin(pin);
	openssl_init();
	if ((err = scone_identity_new("scone-runtime", 1, &id)))
		die("runtime key", err);
	if ((err = scone_rt_attest_collect(&id, mode, &att)))
		die(strcmp(mode, "HW") == 0 ? "SCONE_MODE=HW" : "attestation", err);
	if (strcmp(att.ev.type, "sgx") && strcmp(att.ev.type, "tdx") && strcmp(att.ev.type, "snp"))
		scone_warn("running without a TEE (SCONE_MODE=%s): the host can read this process's memory",
			   mode);
	addr = addr && *addr ? addr : "127.0.0.1:8081";
	err = scone_runtime_fetch_config(addr, pin, config_id, &id, &att.ev, &cfg);
	scone_rt_attest_free(&att);
	hide_access_token(envp);
	if (err) {
		char shown[512];
		/* a one-time password that was not used stays valid for its window: never print it */
		snprintf(shown, sizeof(shown), "%.*s%s", (int)strcspn(config_id, "@"), config_id,
			 strchr(config_id, '@') ? "@******" : "");
		die(shown, err);
	}
	dump_setting(cfg);
	/* The context keeps cfg, CAS and the key for the tag reports and exec's handover. */
	if ((err = scone_rt_init(addr, pin, &id, cfg)))
		die("start", err);
	if ((err = scone_shield_mount()))
		die("volumes", err);
	if (scone_image_files_pending(cfg))
		expand_image_files(cfg);
	if ((err = scone_inject_install(cfg->files, cfg->file_count)))
		die("injection files", err);
	if (cfg->argc) {
		session_argv_for(cfg, argc, argv, &new_argv);
	} else {
		new_argv.v = argv;
		new_argv.n = (size_t)argc;
	}
	if (cfg->pwd && chdir(cfg->pwd) != 0)
		die("pwd", scone_err_set(scone_err_from_errno(errno), "%s: %s", cfg->pwd, strerror(errno)));
	set_environment(cfg, envp);
	netshield_from_session(cfg);
	if (view_wanted()) {
		print_view(cfg, mode);
		scone_netshield_show();
	}
	/* argv, environment and cfg stay alive for the program's whole life (exec hands cfg on). */
	if ((err = scone_exec_install()))
		die("exec", err);
	/* Last: the kernel's block is rewritten, and getenv's earlier answers (addr, mode) pointed into it.
	 */
	if (cfg->argc && cfg->command_public)
		show_command(argc, argv, envp, &new_argv);
	return start_program((int)new_argv.n, new_argv.v, environ);
}

/* ---- a program exec'd by a program under the runtime ---- */

/* The handover SCONE_HANDOVER names (handover_io.h), decrypted, decoded, its fds closed. */
static void read_handover(const char *text, struct scone_handover *h)
{
	uint8_t *blob;
	size_t size;
	enum scone_err err;
	int pass[SCONE_HANDOVER_PASSED], share;

	if ((err = scone_handover_receive(text, &blob, &size, pass)))
		die(SCONE_HANDOVER_VAR, err);
	share = pass[0];
	err = scone_handover_decode(blob, size, h);
	scone_wipe(blob, size);
	free(blob);
	if (!err && (h->share_fd >= 0) != (share >= 0))
		err = scone_err_set(SCONE_ERR_INVALID,
				    "the volumes' shared state did not come with the handover");
	if (err)
		die(SCONE_HANDOVER_VAR, err);
	if (share >= 0)
		h->share_fd = share; /* (the number the handover names was the caller's) */
	h->mail[0] = pass[1];	     /* (the windows' mailbox: passed, never named) */
	h->mail[1] = pass[2];
}

static bool not_handover_var(const char *entry)
{
	return !scone_is_handover_var(entry);
}

/* The exec'd environment without SCONE_HANDOVER, plus the session's variables (taken from h). */
static void restore_environment(char **envp, struct scone_handover *h)
{
	install_environ(envp, not_handover_var, h->env, h->env_count);
	for (size_t i = 0; i < h->env_count; i++)
		h->env[i] = NULL; /* environ owns them now */
}

/*
 * The runtime's start in a program another one exec'd (DESIGN §4): no CAS
 * round trip; the configuration, the session's variables, the volumes as
 * they were left and the report key come through the handover memfd. The
 * program keeps its own argv and working directory.
 */
static int handover_main(int argc, char **argv, char **envp, const char *fd_text)
{
	struct scone_handover h;
	struct scone_runtime_config *cfg;
	struct scone_identity id = {0};
	const char *mode = getenv("SCONE_MODE");
	enum scone_err err;

	no_dump();
	openssl_init();
	read_handover(fd_text, &h);
	if ((err = scone_runtime_config_parse(h.config, h.config_len, &cfg)))
		die("handover", err);
	dump_setting(cfg);
	if (h.identity && (err = scone_identity_from_pem(h.identity, h.identity_len, &id)))
		die("handover", err);
	if ((err = scone_rt_init(h.cas_addr, h.pin, &id, cfg)))
		die("handover", err);
	if ((err = scone_shield_mount_handover(&h)))
		die("volumes", err);
	if ((err = scone_inject_install(cfg->files, cfg->file_count)))
		die("injection files", err);
	if ((err = scone_exec_install()))
		die("exec", err);
	restore_environment(envp, &h);
	scone_handover_free(&h);
	netshield_from_session(cfg);
	if (view_wanted()) {
		print_view(cfg, mode && *mode ? mode : "AUTO");
		scone_netshield_show();
	}
	return start_program(argc, argv, environ);
}

int __libc_start_main(main_fn main, int argc, char **argv, void (*init)(void), void (*fini)(void),
		      void (*rtld_fini)(void), void *stack_end);
int __libc_start_main(main_fn main, int argc, char **argv, void (*init)(void), void (*fini)(void),
		      void (*rtld_fini)(void), void *stack_end)
{
	start_main_fn next = (start_main_fn)dlsym(RTLD_NEXT, "__libc_start_main");

	if (!next) {
		scone_error("cannot start: __libc_start_main not found (%s)", dlerror());
		_exit(1);
	}
	real_main = main;
	kernel_argv = argv;
	kernel_argc = argc;
	return next(scone_main, argc, argv, init, fini, rtld_fini, stack_end);
}
