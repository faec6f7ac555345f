/*
 * exec.c - exec and spawn under the runtime (DESIGN.md §4, "Processes under
 * the runtime"). Every way a program starts another one goes through
 * prepare(): the exec'd environment loses the session's variables (whatever
 * their current value), gains LD_PRELOAD if the caller dropped it and
 * SCONE_HANDOVER=<fd>, and the runtime's state (configuration, those
 * variables, volumes, shielded fds, report key) goes into a sealed memfd
 * the new program inherits. Its runtime restores everything before its main
 * (start.c). The volumes are committed first; a caller that goes on beside
 * the child shares them with it from then on (shield.c).
 *
 * Interposed: execve, execveat, fexecve, execv, execvp, execvpe, execl,
 * execle, execlp, posix_spawn, posix_spawnp, and system, popen and pclose
 * (glibc runs those through its internal spawn, which no interposer sees);
 * posix_spawn_file_actions_addopen of a volume path (below).
 * Without a configuration (no SCONE_CONFIG_ID) everything passes through.
 */
#undef _FORTIFY_SOURCE
#include "lib/log.h"
#include "runtime/rt.h"
#include "runtime/exec.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/crypto.h"
#include "lib/elf.h"
#include "runtime/handover.h"
#include "runtime/handover_io.h"
#include "runtime/shield.h"
#include "runtime/sys.h"

#define REAL(name) const __typeof__(scone_sys_table.name) real_##name = SYS(name)

static const struct scone_runtime_config *g_cfg; /* the context's, once armed */
static char g_preload[PATH_MAX + 16];		 /* "LD_PRELOAD=" this library */
static char g_loader[PATH_MAX]; /* the program's loader: an exec'd program must use the same */

enum scone_err scone_exec_install(void)
{
	Dl_info info;

	if (dladdr((void *)scone_exec_install, &info) && info.dli_fname && info.dli_fname[0] == '/')
		snprintf(g_preload, sizeof(g_preload), "LD_PRELOAD=%s", info.dli_fname);
	if (!scone_own_loader(g_loader, sizeof(g_loader)))
		g_loader[0] = '\0';
	__atomic_store_n(&g_cfg, scone_rt()->cfg, __ATOMIC_RELEASE);
	return SCONE_ERR_OK;
}

/* ---- preparing an exec ---- */

struct prepared;
static void finish(struct prepared *p);

struct prepared {
	char **envp;	   /* the new program's environment: the caller's envp when passing through */
	bool owned;	   /* envp allocated here */
	char *ho_var;	   /* its SCONE_HANDOVER=<memfd>:<keyfd> entry */
	char *preload_var; /* an LD_PRELOAD entry made here (the caller's, with this library first) */
	int ho_fd;	   /* the handover memfd and its key socket, closed after the exec or spawn */
	int key_fd;
	int pass[SCONE_HANDOVER_PASSED]; /* fds passed with the handover's key (handover_io.h) */
	int conn_fd;			 /* the new program's connection to the volumes' server */
	bool pins_given; /* this image's pins in the read cache let go (taken again if the exec fails) */
	bool spawning;	 /* a spawn under way: placeholders released meanwhile are not kept (fd_volume.c) */
};

/*
 * The program an exec will run, as each call names it: a path (execve,
 * posix_spawn), a file searched in $PATH (execvpe, posix_spawnp), a path
 * relative to a directory fd (execveat) or an open fd (fexecve).
 */
struct exec_target {
	const char *path;
	bool search;
	int dirfd;
	int fd;
	int flags;
};

/* Is entry ("NAME=VALUE") one of the session's variables? */
static bool session_var(const struct scone_runtime_config *cfg, const char *entry)
{
	const char *eq = strchr(entry, '=');
	size_t n = eq ? (size_t)(eq - entry) : strlen(entry);

	for (size_t i = 0; i < cfg->env_count; i++)
		if (strlen(cfg->env[i].name) == n && memcmp(cfg->env[i].name, entry, n) == 0)
			return true;
	return false;
}

static void release(struct scone_handover *h, struct scone_wbuf *id)
{
	for (size_t i = 0; i < h->fd_count; i++)
		free(h->fds[i].vpath);
	free(h->fds);
	free(h->volumes);
	free(h->cwd);
	free(h->env);
	scone_wbuf_free(id);
}

/* Does an LD_PRELOAD entry's value (colon- or space-separated) name this library? */
static bool names_runtime(const char *value)
{
	const char *self = g_preload + 11;
	size_t n = strlen(self);

	for (const char *p = value; *p;) {
		size_t k = strcspn(p, ": ");
		if (k == n && memcmp(p, self, n) == 0)
			return true;
		p += k + (p[k] != '\0');
	}
	return false;
}

/*
 * Split envp into what the new program sees (p->envp) and the session's
 * variables (h->env). The new program's LD_PRELOAD names this library
 * first, whatever the caller did to it: dropping or replacing it must not
 * start a program without the runtime, holding the handover.
 */
static int split_env(const struct scone_runtime_config *cfg, char *const envp[], struct prepared *p,
		     struct scone_handover *h)
{
	size_t n = 0, k = 0;
	bool preload = false;

	for (char *const *e = envp; e && *e; e++)
		n++;
	p->envp = calloc(n + 3, sizeof(char *));
	p->owned = p->envp != NULL;
	h->env = calloc(n + 1, sizeof(char *));
	if (!p->envp || !h->env)
		return -1;
	for (char *const *e = envp; e && *e; e++) {
		if (scone_is_handover_var(*e)) /* a stale one; the new one is added */
			continue;
		if (session_var(cfg, *e)) {
			h->env[h->env_count++] = *e;
			continue;
		}
		if (strncmp(*e, "LD_PRELOAD=", 11) == 0 && g_preload[0]) {
			preload = true;
			if (!names_runtime(*e + 11)) {
				if (asprintf(&p->preload_var, "%s:%s", g_preload, *e + 11) < 0)
					return -1;
				p->envp[k++] = p->preload_var;
				continue;
			}
		}
		p->envp[k++] = *e;
	}
	if (!preload && g_preload[0])
		p->envp[k++] = g_preload;
	p->envp[k] = NULL;
	return 0;
}

/*
 * Will the target load the runtime? A program that would not (statically
 * linked, another machine, another loader, also behind "#!") would run
 * without the session's secrets and shields, holding the handover: refused
 * (UNSUPPORTED) unless the session allows it. A target that cannot be
 * found or read is left to the exec to report.
 */
static enum scone_err check_target(const struct exec_target *t)
{
	struct stat st;
	char path[PATH_MAX];
	enum scone_err err;
	int n;

	if (t->fd >= 0 || ((t->flags & AT_EMPTY_PATH) && !t->path[0]))
		n = snprintf(path, sizeof(path), "/proc/self/fd/%d", t->fd >= 0 ? t->fd : t->dirfd);
	else if (t->dirfd != AT_FDCWD && t->path[0] != '/')
		n = snprintf(path, sizeof(path), "/proc/self/fd/%d/%s", t->dirfd, t->path);
	else if (t->search)
		n = scone_exec_find(t->path, getenv("PATH"), path, sizeof(path)) ? 0 : -1;
	else
		n = snprintf(path, sizeof(path), "%s", t->path);
	if (n < 0 || (size_t)n >= sizeof(path))
		return SCONE_ERR_OK;
	/*
	 * The kernel would look for the program in the host directory (file ids
	 * and ciphertext): ENOENT, or the runtime's own check failing to read it
	 * in a vfork child. Say what it is instead, as a noexec mount would (a
	 * missing file stays ENOENT).
	 */
	if (scone_shield_on_volume(path) && (stat(path, &st) == 0 || errno != ENOENT))
		return scone_err_set(SCONE_ERR_PERMISSION,
				     "%s is stored on a volume, and programs on a volume cannot be executed "
				     "(a script can be run by its interpreter: sh %s)",
				     path, path);
	err = scone_exec_check_runtime(path, g_loader[0] ? g_loader : NULL);
	if (err == SCONE_ERR_UNSUPPORTED)
		return err;
	scone_err_clear();
	return SCONE_ERR_OK;
}

/* The session allows programs without the runtime (they get neither its variables nor the handover). */
static bool unshielded_allowed(const struct scone_runtime_config *cfg)
{
	const char *v = scone_runtime_setting(cfg, "SCONE_ALLOW_UNSHIELDED_EXEC");

	return v && strcmp(v, "1") == 0;
}

/* How many of p->pass go (they are set in order). */
static size_t passed_count(const struct prepared *p)
{
	size_t n = 0;

	while (n < SCONE_HANDOVER_PASSED && p->pass[n] >= 0)
		n++;
	return n;
}

/* Seal the handover h for the new program and name it in p->envp. */
static enum scone_err hand_over(const struct scone_handover *h, struct prepared *p)
{
	struct scone_wbuf enc;
	enum scone_err err;
	size_t k;

	scone_wbuf_init(&enc, SCONE_HANDOVER_MAX, 1);
	err = scone_handover_encode(h, &enc);
	if (!err)
		err = scone_handover_send(&enc, p->pass, passed_count(p), &p->ho_fd, &p->key_fd);
	scone_wbuf_free(&enc);
	SCONE_TRY(err);
	if (asprintf(&p->ho_var, SCONE_HANDOVER_VAR "=%d:%d", p->ho_fd, p->key_fd) < 0) {
		p->ho_var = NULL;
		return scone_err_set(SCONE_ERR_NOMEM, "exec: environment");
	}
	for (k = 0; p->envp[k]; k++)
		;
	p->envp[k] = p->ho_var;
	p->envp[k + 1] = NULL;
	return SCONE_ERR_OK;
}

/*
 * Get an exec ready: p->envp is what to pass. spawn: the caller goes on
 * beside the new program. -1 with errno when the handover cannot be made
 * (the exec then fails rather than hand the secrets over in the clear) or
 * the target would not load the runtime (EPERM).
 */
static int prepare(const struct exec_target *t, char *const envp[], bool spawn, struct prepared *p)
{
	const struct scone_runtime_config *cfg = __atomic_load_n(&g_cfg, __ATOMIC_ACQUIRE);
	struct scone_handover h;
	struct scone_wbuf id;
	enum scone_err err;
	bool unshielded = false;
	int e;

	*p = (struct prepared){
	    .envp = (char **)envp, .ho_fd = -1, .key_fd = -1, .pass = {-1, -1, -1}, .conn_fd = -1};
	if (!cfg)
		return 0;
	if (spawn)
		scone_shield_spawn_window(p->spawning = true);
	scone_handover_init(&h);
	scone_wbuf_init(&id, 64 * 1024, 1);
	h.config = cfg->raw;
	h.config_len = cfg->raw_len;
	h.cas_addr = scone_rt()->cas_addr ? scone_rt()->cas_addr : "";
	memcpy(h.pin, scone_rt()->pin, sizeof(h.pin));
	if ((err = check_target(t)) && unshielded_allowed(cfg)) {
		scone_warn(
		    "%s; it runs without the session's secrets and volumes (SCONE_ALLOW_UNSHIELDED_EXEC)",
		    scone_err_detail());
		scone_err_clear();
		err = SCONE_ERR_OK;
		unshielded = true;
	}
	if (err)
		goto out;
	if (split_env(cfg, envp, p, &h) != 0) {
		err = scone_err_set(SCONE_ERR_NOMEM, "exec: environment");
		goto out;
	}
	if (unshielded)
		goto out;
	if ((err = scone_shield_handover(&h, spawn, &id, p->pass, &p->conn_fd)))
		goto out;
	err = hand_over(&h, p);
	/* This image's descriptions end with the exec (the next program opens its own on the server). */
	if (!err && !spawn)
		p->pins_given = scone_shield_pins_release();
out:
	release(&h, &id);
	if (!err)
		return 0;
	e = err == SCONE_ERR_UNSUPPORTED ? EPERM : scone_err_to_errno(err);
	scone_error("exec refused: %s: %s (%s)", scone_strerror(err), scone_err_detail(), scone_errname(err));
	scone_err_clear();
	finish(p); /* the memfds made so far, the environment */
	p->envp = NULL;
	errno = e ? e : EIO;
	return -1;
}

/* After the exec failed, or the spawn is done: drop what prepare made; errno kept. */
static void finish(struct prepared *p)
{
	REAL(close);
	int e = errno;

	if (p->ho_fd >= 0)
		real_close(p->ho_fd);
	if (p->key_fd >= 0)
		real_close(p->key_fd);
	for (size_t i = 0; i < SCONE_HANDOVER_PASSED; i++) {
		if (p->pass[i] >= 0)
			real_close(p->pass[i]);
		p->pass[i] = -1;
	}
	if (p->conn_fd >= 0)
		real_close(p->conn_fd);
	if (p->pins_given)
		scone_shield_pins_retake();
	p->pins_given = false;
	if (p->spawning) /* (the spawned program holds the fds it inherited) */
		scone_shield_spawn_window(p->spawning = false);
	free(p->ho_var);
	free(p->preload_var);
	p->preload_var = NULL;
	if (p->owned)
		free(p->envp);
	p->ho_fd = p->key_fd = p->conn_fd = -1;
	p->ho_var = NULL;
	p->owned = false;
	errno = e;
}

/* ---- the exec family ---- */

/*
 * A `#!` script stored on a volume: the kernel cannot read it (the host
 * directory holds its ciphertext under a file id), so the runtime does what
 * the kernel's script loader (binfmt_script) does with the first 256 bytes:
 * the line ends at a newline, or at the buffer's end when the interpreter's
 * name ends within it; the name ends at a space, tab or NUL, and the rest of
 * the line (trimmed) is one argument. The interpreter runs with the script's
 * path in front of the script's arguments, and reads the script through the
 * runtime. A readable, executable file without `#!` is ENOEXEC, as from the
 * kernel (shells then run it themselves). execve, execv, execvp, execvpe,
 * execveat (absolute or AT_FDCWD paths), posix_spawn and posix_spawnp do
 * this; a vfork child cannot read the volume (dash's commands, Python's
 * subprocess), and its exec is refused with EACCES, as is any binary stored
 * on a volume.
 */
#define SCRIPT_BUF 256
#define SCRIPT_DEPTH_MAX 5 /* (the kernel's: a script's interpreter may be a script, 5 deep) */

static _Thread_local int g_script_depth;

static bool spacetab(char c)
{
	return c == ' ' || c == '\t';
}

/* The end of the word at p (a space, tab or NUL), or NULL if none comes before end. */
static char *word_end(char *p, const char *end)
{
	while (p < end && !spacetab(*p) && *p)
		p++;
	return p < end ? p : NULL;
}

/* The interpreter and its argument of the script at path into line; 0, or ENOEXEC. (a volume file) */
static int script_line(int fd, char line[SCRIPT_BUF + 1], char **interp, char **arg)
{
	ssize_t n = read(fd, line, SCRIPT_BUF);
	char *end, *p, *sep;

	if (n < 2 || line[0] != '#' || line[1] != '!')
		return ENOEXEC;
	line[n] = '\0';
	if (!(end = memchr(line, '\n', (size_t)n))) {
		for (p = line + 2; p < line + n && spacetab(*p); p++)
			;
		if (p == line + n || !word_end(p, line + n))
			return ENOEXEC; /* (only blanks, or a name longer than the buffer) */
		end = line + n;
	}
	while (end > line + 2 && spacetab(end[-1]))
		end--;
	*end = '\0';
	for (p = line + 2; spacetab(*p); p++)
		;
	if (!*p)
		return ENOEXEC;
	*interp = p;
	*arg = NULL;
	sep = word_end(p, end + 1); /* (end itself holds the NUL) */
	if (sep && *sep) {
		for (*arg = sep; spacetab(**arg); (*arg)++)
			;
		if (!**arg)
			*arg = NULL;
	}
	if (sep)
		*sep = '\0';
	return 0;
}

/*
 * The argument vector that runs the volume script at path (its interpreter
 * first, in *interp), malloc'd; NULL with *err 0: not a volume script (the
 * exec goes on as before), or with *err ENOEXEC, ELOOP or ENOMEM.
 */
static char **script_argv(const char *path, char *const argv[], char line[SCRIPT_BUF + 1], char **interp,
			  int *err)
{
	char *arg = NULL;
	char **v;
	size_t n = 0, k = 0;
	unsigned char elf[4];
	int fd;

	/* (glibc declares both nonnull, so a test of them would be dropped; a program may pass NULL) */
	__asm__("" : "+r"(path), "+r"(argv));
	*err = 0;
	if (!__atomic_load_n(&g_cfg, __ATOMIC_ACQUIRE) || !path || !scone_shield_on_volume(path) ||
	    access(path, X_OK) != 0 || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return NULL;
	if (pread(fd, elf, sizeof(elf), 0) == (ssize_t)sizeof(elf) && memcmp(elf, "\177ELF", 4) == 0) {
		close(fd);
		return NULL; /* (a binary: refused in prepare, with the line saying why) */
	}
	*err = script_line(fd, line, interp, &arg);
	close(fd);
	if (*err)
		return NULL;
	if (g_script_depth >= SCRIPT_DEPTH_MAX) {
		*err = ELOOP;
		return NULL;
	}
	while (argv && argv[n])
		n++;
	if (!(v = calloc(n + 3, sizeof(*v)))) {
		*err = ENOMEM;
		return NULL;
	}
	v[k++] = *interp;
	if (arg)
		v[k++] = arg;
	v[k++] = (char *)path;
	for (size_t i = 1; i < n; i++)
		v[k++] = argv[i];
	return v;
}

/*
 * Run path if it is a volume script (the exec family): true when it was one,
 * or an error kept it from running (errno set); false: exec as before.
 */
static bool exec_if_script(const char *path, char *const argv[], char *const envp[])
{
	char line[SCRIPT_BUF + 1], *interp, **v;
	int e;

	if ((v = script_argv(path, argv, line, &interp, &e))) {
		g_script_depth++;
		execve(interp, v, envp); /* (returns only when it failed) */
		g_script_depth--;
		free(v);
		return true;
	}
	if (e)
		errno = e;
	return e != 0;
}

/* path, or file found along PATH (execvp's search) into buf. */
static const char *searched(const char *file, char *buf, size_t size)
{
	if (!file || strchr(file, '/'))
		return file;
	return scone_exec_find(file, getenv("PATH"), buf, size) ? buf : NULL;
}

int execve(const char *path, char *const argv[], char *const envp[])
{
	REAL(execve);
	struct exec_target t = {.path = path, .dirfd = AT_FDCWD, .fd = -1};
	struct prepared p;

	if (exec_if_script(path, argv, envp))
		return -1;
	if (prepare(&t, envp, false, &p) != 0)
		return -1;
	real_execve(path, argv, p.envp);
	finish(&p);
	return -1;
}

int execveat(int dirfd, const char *path, char *const argv[], char *const envp[], int flags)
{
	REAL(execveat);
	struct exec_target t = {.path = path, .dirfd = dirfd, .fd = -1, .flags = flags};
	struct prepared p;
	const char *named = path;

	__asm__("" : "+r"(named)); /* (nonnull in glibc's declaration; a program may pass NULL) */
	if (named && (named[0] == '/' || dirfd == AT_FDCWD) && !(flags & AT_EMPTY_PATH) &&
	    exec_if_script(named, argv, envp))
		return -1;

	if (prepare(&t, envp, false, &p) != 0)
		return -1;
	real_execveat(dirfd, path, argv, p.envp, flags);
	finish(&p);
	return -1;
}

int fexecve(int fd, char *const argv[], char *const envp[])
{
	REAL(fexecve);
	struct exec_target t = {.path = "", .dirfd = AT_FDCWD, .fd = fd};
	struct prepared p;

	if (prepare(&t, envp, false, &p) != 0)
		return -1;
	real_fexecve(fd, argv, p.envp);
	finish(&p);
	return -1;
}

int execvpe(const char *file, char *const argv[], char *const envp[])
{
	REAL(execvpe);
	struct exec_target t = {.path = file, .search = true, .dirfd = AT_FDCWD, .fd = -1};
	struct prepared p;
	char found[PATH_MAX];

	if (exec_if_script(searched(file, found, sizeof(found)), argv, envp))
		return -1;

	if (prepare(&t, envp, false, &p) != 0)
		return -1;
	real_execvpe(file, argv, p.envp);
	finish(&p);
	return -1;
}

int execv(const char *path, char *const argv[])
{
	return execve(path, argv, environ);
}

int execvp(const char *file, char *const argv[])
{
	return execvpe(file, argv, environ);
}

/* The arguments of an execl call as an argv array (envp: execle's, after the NULL). */
static char **list_args(const char *arg0, va_list ap, char ***envp)
{
	va_list cp;
	size_t n = 1;
	char **argv;

	va_copy(cp, ap);
	while (va_arg(cp, char *))
		n++;
	va_end(cp);
	if (!(argv = calloc(n + 1, sizeof(char *))))
		return NULL;
	argv[0] = (char *)arg0;
	for (size_t i = 1; i <= n; i++)
		argv[i] = va_arg(ap, char *);
	if (envp)
		*envp = va_arg(ap, char **);
	return argv;
}

/* The end of an execl-style call: exec argv (gathered by list_args), with a PATH search or not. */
static int exec_listed(const char *prog, char **argv, char *const envp[], bool search)
{
	if (!argv)
		return -1;
	if (search)
		execvpe(prog, argv, envp);
	else
		execve(prog, argv, envp);
	free(argv);
	return -1;
}

int execl(const char *path, const char *arg, ...)
{
	va_list ap;
	char **argv;

	va_start(ap, arg);
	argv = list_args(arg, ap, NULL);
	va_end(ap);
	return exec_listed(path, argv, environ, false);
}

int execlp(const char *file, const char *arg, ...)
{
	va_list ap;
	char **argv;

	va_start(ap, arg);
	argv = list_args(arg, ap, NULL);
	va_end(ap);
	return exec_listed(file, argv, environ, true);
}

int execle(const char *path, const char *arg, ...)
{
	va_list ap;
	char **argv, **envp = NULL;

	va_start(ap, arg);
	argv = list_args(arg, ap, &envp);
	va_end(ap);
	return exec_listed(path, argv, envp, false);
}

/* ---- spawning ---- */

/*
 * posix_spawn_file_actions_addopen of a volume path: glibc's child would
 * open it with its internal open, which no interposer sees (a plaintext
 * file in the volume's host directory). The runtime opens it at once, in
 * the caller (close-on-exec), and adds a dup2 of that fd instead: the
 * child gets the placeholder, and its runtime takes it over by identity.
 * So the open happens when the action is added, not at the spawn. The fds
 * are closed when the actions are destroyed.
 */
struct spawn_open {
	const posix_spawn_file_actions_t *fa;
	int fd;
	struct spawn_open *next;
};
static struct spawn_open *spawn_opens;
static pthread_mutex_t spawn_opens_lock = PTHREAD_MUTEX_INITIALIZER;

int posix_spawn_file_actions_addopen(posix_spawn_file_actions_t *fa, int fd, const char *path, int oflag,
				     mode_t mode)
{
	REAL(posix_spawn_file_actions_addopen);
	REAL(posix_spawn_file_actions_adddup2);
	struct spawn_open *o;
	int v, r;

	if (!scone_shield_openat(AT_FDCWD, path, oflag | O_CLOEXEC, mode, &v))
		return real_posix_spawn_file_actions_addopen(fa, fd, path, oflag, mode);
	if (v < 0)
		return errno;
	if (!(o = malloc(sizeof(*o)))) {
		close(v);
		return ENOMEM;
	}
	if ((r = real_posix_spawn_file_actions_adddup2(fa, v, fd)) != 0) {
		free(o);
		close(v);
		return r;
	}
	pthread_mutex_lock(&spawn_opens_lock);
	*o = (struct spawn_open){.fa = fa, .fd = v, .next = spawn_opens};
	spawn_opens = o;
	pthread_mutex_unlock(&spawn_opens_lock);
	return 0;
}

/*
 * A spawn's chdir into a volume: glibc's child would enter the host
 * directory, where a relative open of a later action would make a
 * plaintext file. Refused (ENOTSUP); the child inherits a volume working
 * directory of the caller's instead.
 */
int posix_spawn_file_actions_addchdir_np(posix_spawn_file_actions_t *fa, const char *path)
{
	REAL(posix_spawn_file_actions_addchdir_np);

	if (scone_shield_on_volume(path))
		return ENOTSUP;
	return real_posix_spawn_file_actions_addchdir_np(fa, path);
}

int posix_spawn_file_actions_destroy(posix_spawn_file_actions_t *fa)
{
	REAL(posix_spawn_file_actions_destroy);
	struct spawn_open **p, *o;

	pthread_mutex_lock(&spawn_opens_lock);
	for (p = &spawn_opens; (o = *p);) {
		if (o->fa != fa) {
			p = &o->next;
			continue;
		}
		*p = o->next;
		close(o->fd);
		free(o);
	}
	pthread_mutex_unlock(&spawn_opens_lock);
	return real_posix_spawn_file_actions_destroy(fa);
}

int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
		const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	REAL(posix_spawn);
	struct exec_target t = {.path = path, .dirfd = AT_FDCWD, .fd = -1};
	struct prepared p;
	char line[SCRIPT_BUF + 1], *interp, **v;
	int r;

	if ((v = script_argv(path, argv, line, &interp, &r))) {
		g_script_depth++;
		r = posix_spawn(pid, interp, fa, attr, v, envp);
		g_script_depth--;
		free(v);
		return r;
	}
	if (r)
		return r;
	if (prepare(&t, envp, true, &p) != 0)
		return errno;
	r = real_posix_spawn(pid, path, fa, attr, argv, p.envp);
	finish(&p);
	return r;
}

int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
		 const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	REAL(posix_spawnp);
	struct exec_target t = {.path = file, .search = true, .dirfd = AT_FDCWD, .fd = -1};
	struct prepared p;
	char found[PATH_MAX];
	const char *script = searched(file, found, sizeof(found));
	int r;

	if (script && scone_shield_on_volume(script))
		return posix_spawn(pid, script, fa, attr, argv, envp); /* (a script there runs as above) */
	if (prepare(&t, envp, true, &p) != 0)
		return errno;
	r = real_posix_spawnp(pid, file, fa, attr, argv, p.envp);
	finish(&p);
	return r;
}

/* /bin/sh -c cmd through our posix_spawn, with the signal setup system() and popen() need. */
static int spawn_shell(pid_t *pid, const char *cmd, const posix_spawn_file_actions_t *fa,
		       const sigset_t *mask, bool sigdef)
{
	char *argv[] = {"sh", "-c", (char *)cmd, NULL};
	posix_spawnattr_t attr;
	sigset_t def;
	int r;

	posix_spawnattr_init(&attr);
	sigemptyset(&def);
	if (sigdef) {
		sigaddset(&def, SIGINT);
		sigaddset(&def, SIGQUIT);
	}
	posix_spawnattr_setsigdefault(&attr, &def);
	posix_spawnattr_setsigmask(&attr, mask);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
	r = posix_spawn(pid, "/bin/sh", fa, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	return r;
}

int system(const char *cmd)
{
	REAL(system);
	struct sigaction ign = {.sa_handler = SIG_IGN}, old_int, old_quit;
	sigset_t chld, old_mask;
	int status = -1;
	pid_t pid;

	if (!__atomic_load_n(&g_cfg, __ATOMIC_ACQUIRE))
		return real_system(cmd);
	if (!cmd)
		return 1;
	sigemptyset(&ign.sa_mask);
	sigaction(SIGINT, &ign, &old_int);
	sigaction(SIGQUIT, &ign, &old_quit);
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &old_mask);
	if (spawn_shell(&pid, cmd, NULL, &old_mask, true) == 0) {
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	} else {
		status = 127 << 8; /* as glibc: the shell could not be run */
	}
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGQUIT, &old_quit, NULL);
	sigprocmask(SIG_SETMASK, &old_mask, NULL);
	return status;
}

/* popen's children by stream, for pclose (and to close in later children, as POSIX asks). */
struct piped {
	struct piped *next;
	FILE *f;
	int fd;
	pid_t pid;
};

static pthread_mutex_t pipes_lock = PTHREAD_MUTEX_INITIALIZER;
static struct piped *pipes;

FILE *popen(const char *cmd, const char *mode)
{
	REAL(popen);
	posix_spawn_file_actions_t fa;
	struct piped *pp;
	bool rd = mode && mode[0] == 'r', cloexec = mode && strchr(mode, 'e');
	int fds[2], mine, theirs, r;
	sigset_t mask;
	FILE *f = NULL;

	if (!__atomic_load_n(&g_cfg, __ATOMIC_ACQUIRE))
		return real_popen(cmd, mode);
	if (!mode || (mode[0] != 'r' && mode[0] != 'w') || (mode[1] && strcmp(mode + 1, "e") != 0)) {
		errno = EINVAL;
		return NULL;
	}
	if (!(pp = calloc(1, sizeof(*pp))) || pipe2(fds, O_CLOEXEC) != 0) {
		free(pp);
		return NULL;
	}
	mine = rd ? fds[0] : fds[1];
	theirs = rd ? fds[1] : fds[0];
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, theirs, rd ? STDOUT_FILENO : STDIN_FILENO);
	pthread_mutex_lock(&pipes_lock);
	for (struct piped *q = pipes; q; q = q->next)
		posix_spawn_file_actions_addclose(&fa, q->fd);
	sigprocmask(SIG_SETMASK, NULL, &mask);
	r = spawn_shell(&pp->pid, cmd, &fa, &mask, false);
	posix_spawn_file_actions_destroy(&fa);
	close(theirs);
	if (r == 0 && (f = fdopen(mine, rd ? "r" : "w"))) {
		if (!cloexec)
			fcntl(mine, F_SETFD, 0);
		pp->f = f;
		pp->fd = mine;
		pp->next = pipes;
		pipes = pp;
	}
	pthread_mutex_unlock(&pipes_lock);
	if (!f) {
		int e = r ? r : errno;
		close(mine);
		if (r == 0)
			while (waitpid(pp->pid, NULL, 0) < 0 && errno == EINTR)
				;
		free(pp);
		errno = e;
	}
	return f;
}

int pclose(FILE *f)
{
	REAL(pclose);
	struct piped **q, *pp = NULL;
	int status = -1;

	pthread_mutex_lock(&pipes_lock);
	for (q = &pipes; *q; q = &(*q)->next)
		if ((*q)->f == f) {
			pp = *q;
			*q = pp->next;
			break;
		}
	pthread_mutex_unlock(&pipes_lock);
	if (!pp)
		return real_pclose(f);
	fclose(f);
	while (waitpid(pp->pid, &status, 0) < 0) {
		if (errno != EINTR) {
			status = -1;
			break;
		}
	}
	free(pp);
	return status;
}
