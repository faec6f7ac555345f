/*
 * image.c - `scone image sconify`: SCONE's sconify_image workflow. From an
 * application image and its entrypoint, make (a) a new image in which the
 * chosen directories are encrypted volumes and the runtime layer
 * (/opt/scone, entrypoint `scone run`) is added, and (b) the session that
 * runs it. The source image's layers are not reused: its file system is
 * exported, the chosen directories are left out, and the rest is imported
 * as one new layer, so no layer of the new image holds their plaintext.
 *
 * Steps: inspect the source image; create a stopped container of it; copy
 * each --dir out and encrypt it into a volume (`scone fspf`, key and tag
 * for the session); export the file system without those directories and
 * the data volumes' paths, import it; build the runtime layer and the
 * volumes on top (a generated Dockerfile); measure the entrypoint in the
 * new image (las mode); write the session.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "image.h"
#include "lib/crypto.h"
#include "policy/policy.h"

#define RUNTIME_DIR "/opt/scone"

struct sconify {
	struct img_plan p;
	char work[512];	     /* 0700: plaintext of the directories passes through here */
	char self[PATH_MAX]; /* this scone, for `scone fspf` */
	char cid[128];	     /* the stopped container of the source image */
	char base[160];	     /* the imported file system's image id */
};

static void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

void img_plan_free(struct img_plan *p)
{
	for (size_t i = 0; i < p->n_dirs; i++)
		scone_wipe(p->dirs[i].key_hex, sizeof(p->dirs[i].key_hex));
	strv_free(p->command);
	strv_free(p->env);
	strv_free(p->ports);
	free(p->workdir);
	free(p->user);
}

/* ---------------- options ---------------- */

static const char usage_line[] = "scone image sconify [OPTIONS] --session NAME FROM_IMAGE TO_IMAGE";

static int sconify_help(void)
{
	printf("Usage: %s\n\n"
	       "Make TO_IMAGE from the application image FROM_IMAGE: the directories given with\n"
	       "--dir (the application's code) are encrypted into volumes inside the image, the\n"
	       "paths given with --volume become data volumes whose keys CAS makes, and the\n"
	       "runtime layer (%s: scone, libscone.so) is added with `scone run` as the\n"
	       "entrypoint. FROM_IMAGE's layers are not reused (its file system is exported\n"
	       "without those paths and imported as one layer), so no layer of TO_IMAGE holds\n"
	       "their plaintext. Writes the session for it (its keys included: mode 0600) with\n"
	       "the entrypoint's measurement for the LAS hosts given (--platform), and\n"
	       "placeholders for secrets. Nothing is pulled; the engine builds offline.\n\n"
	       "  --session NAME        the session's name (required)\n"
	       "  --service NAME        the service's name (default app)\n"
	       "  --dir [NAME:]PATH     encrypt FROM_IMAGE's directory PATH (repeatable)\n"
	       "  --volume [NAME:]PATH  a data volume at PATH, empty in the image (repeatable)\n"
	       "  --secret VAR          environment variable VAR gets a secret CAS generates\n"
	       "                        (a placeholder the owner may fill in; repeatable)\n"
	       "  --platform HEX        a LAS host's platform id (`scone-las --print-identity`;\n"
	       "                        repeatable): attestation mode las with the entrypoint's\n"
	       "                        measurement taken in TO_IMAGE\n"
	       "  --mode las|none       attestation mode (default: las with --platform, else none)\n"
	       "  --command WORDS       the entrypoint, split like a shell (default: FROM_IMAGE's\n"
	       "                        ENTRYPOINT and CMD)\n"
	       "  --session-out FILE    where the session goes (default NAME.yaml, / as _)\n"
	       "  --runtime-image IMG   the image with %s (default $SCONE_RUNTIME_IMAGE,\n"
	       "                        else scone/runtime:latest)\n"
	       "  --engine CLI          docker or podman (default $SCONE_ENGINE, else docker)\n",
	       usage_line, RUNTIME_DIR, RUNTIME_DIR);
	return 0;
}

/* The volume name of a path: its last component, made a session name, unique in p. */
static void default_name(const struct img_plan *p, const char *path, char out[64])
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	size_t n = 0;

	for (; base[n] && n < 40; n++) {
		char c = base[n];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			  c == '_' || c == '-';
		out[n] = ok ? c : '_';
	}
	out[n] = '\0';
	if (n == 0)
		snprintf(out, 64, "volume");
	for (int k = 2;; k++) {
		bool taken = false;
		for (size_t i = 0; i < p->n_dirs; i++)
			taken |= strcmp(p->dirs[i].name, out) == 0;
		for (size_t i = 0; i < p->n_vols; i++)
			taken |= strcmp(p->vols[i].name, out) == 0;
		if (!taken)
			return;
		snprintf(out + n, 64 - n, "_%d", k);
	}
}

/* Parse [NAME:]PATH into name and path; a usage message (exit 2) when it is not one. */
static int name_path(const struct img_plan *p, const char *opt, const char *arg, char name[64],
		     char path[1024])
{
	const char *colon = arg[0] == '/' ? NULL : strchr(arg, ':');
	const char *pth = colon ? colon + 1 : arg;
	size_t len = strlen(pth);

	if (pth[0] != '/' || len >= 1024 || strcmp(pth, "/") == 0 || strstr(pth, "//") ||
	    strstr(pth, "/./") || strstr(pth, "/../") || (len >= 2 && strcmp(pth + len - 2, "/.") == 0) ||
	    (len >= 3 && strcmp(pth + len - 3, "/..") == 0))
		return cli_usage(usage_line,
				 "%s %s: expected [NAME:]PATH with an absolute, normalised PATH other than /",
				 opt, arg);
	if (strncmp(pth, RUNTIME_DIR, strlen(RUNTIME_DIR)) == 0)
		return cli_usage(usage_line, "%s %s: %s is the runtime's own directory", opt, arg,
				 RUNTIME_DIR);
	memcpy(path, pth, len + 1);
	while (len > 1 && path[len - 1] == '/')
		path[--len] = '\0';
	if (colon) {
		if ((size_t)(colon - arg) >= 64 || colon == arg)
			return cli_usage(usage_line, "%s %s: the name must have 1 to 63 characters", opt,
					 arg);
		snprintf(name, 64, "%.*s", (int)(colon - arg), arg);
	} else {
		default_name(p, path, name);
	}
	return -1;
}

/* true when a and b are the same path or one lies under the other. */
static bool nested(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), n = la < lb ? la : lb;

	return strncmp(a, b, n) == 0 && (la == lb || (la < lb ? b[la] : a[lb]) == '/');
}

static int check_plan(struct img_plan *p)
{
	const char *paths[2 * IMG_MAX_ITEMS], *names[2 * IMG_MAX_ITEMS];
	size_t n = 0;

	if (!p->session || !scone_session_name_valid(p->session))
		return cli_usage(usage_line, "--session NAME is required (letters, digits, _.~- and /)");
	for (size_t i = 0; i < p->n_dirs; i++)
		paths[n] = p->dirs[i].path, names[n++] = p->dirs[i].name;
	for (size_t i = 0; i < p->n_vols; i++)
		paths[n] = p->vols[i].path, names[n++] = p->vols[i].name;
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++) {
			if (nested(paths[i], paths[j]))
				return cli_usage(usage_line,
						 "%s and %s overlap: a volume cannot hold another", paths[i],
						 paths[j]);
			if (strcmp(names[i], names[j]) == 0)
				return cli_usage(usage_line, "two volumes are named %s", names[i]);
		}
	for (size_t i = 0; i < p->n_platforms; i++)
		if (strlen(p->platforms[i]) != 64 || strspn(p->platforms[i], "0123456789abcdef") != 64)
			return cli_usage(usage_line, "--platform %s: expected 64 lowercase hex digits",
					 p->platforms[i]);
	if (!p->mode)
		p->mode = p->n_platforms ? "las" : "none";
	if (strcmp(p->mode, "las") != 0 && strcmp(p->mode, "none") != 0)
		return cli_usage(usage_line, "--mode %s: expected las or none", p->mode);
	if (strcmp(p->mode, "las") == 0 && p->n_platforms == 0)
		return cli_usage(usage_line,
				 "--mode las needs --platform HEX (scone-las --print-identity on the host)");
	return -1;
}

static int add_item(const char **list, size_t *n, const char *v, const char *opt)
{
	if (*n >= IMG_MAX_ITEMS)
		return cli_usage(usage_line, "at most %d %s options", IMG_MAX_ITEMS, opt);
	list[(*n)++] = v;
	return -1;
}

static int parse_args(int argc, char **argv, struct img_plan *p, const char **command)
{
	static const struct option opts[] = {
	    {"session", required_argument, NULL, 's'},
	    {"service", required_argument, NULL, 'S'},
	    {"dir", required_argument, NULL, 'd'},
	    {"volume", required_argument, NULL, 'v'},
	    {"secret", required_argument, NULL, 'x'},
	    {"platform", required_argument, NULL, 'p'},
	    {"mode", required_argument, NULL, 'm'},
	    {"command", required_argument, NULL, 'c'},
	    {"session-out", required_argument, NULL, 'o'},
	    {"runtime-image", required_argument, NULL, 'r'},
	    {"engine", required_argument, NULL, 'e'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int c, rc = -1;

	optind = 1;
	while (rc < 0 && (c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			p->session = optarg;
			break;
		case 'S':
			p->service = optarg;
			break;
		case 'm':
			p->mode = optarg;
			break;
		case 'c':
			*command = optarg;
			break;
		case 'o':
			p->session_out = optarg;
			break;
		case 'r':
			p->runtime_image = optarg;
			break;
		case 'e':
			p->engine = optarg;
			break;
		case 'h':
			return sconify_help();
		case 'd':
			if (p->n_dirs >= IMG_MAX_ITEMS)
				return cli_usage(usage_line, "at most %d --dir options", IMG_MAX_ITEMS);
			rc = name_path(p, "--dir", optarg, p->dirs[p->n_dirs].name, p->dirs[p->n_dirs].path);
			p->n_dirs++;
			break;
		case 'v':
			if (p->n_vols >= IMG_MAX_ITEMS)
				return cli_usage(usage_line, "at most %d --volume options", IMG_MAX_ITEMS);
			rc = name_path(p, "--volume", optarg, p->vols[p->n_vols].name,
				       p->vols[p->n_vols].path);
			p->n_vols++;
			break;
		case 'x':
			if (!optarg[0] || strchr(optarg, '=') || strncmp(optarg, "SCONE_", 6) == 0 ||
			    strlen(optarg) > 60)
				return cli_usage(
				    usage_line, "--secret %s: expected an environment variable name", optarg);
			rc = add_item(p->secrets, &p->n_secrets, optarg, "--secret");
			break;
		case 'p':
			rc = add_item(p->platforms, &p->n_platforms, optarg, "--platform");
			break;
		default:
			return cli_usage(usage_line, "unknown option");
		}
	}
	if (rc >= 0)
		return rc;
	if (argc - optind != 2)
		return cli_usage(usage_line, "expected FROM_IMAGE and TO_IMAGE");
	p->from = argv[optind];
	p->to = argv[optind + 1];
	return check_plan(p);
}

/* ---------------- the source image ---------------- */

static char **json_strv(json_t *a)
{
	size_t n = json_is_array(a) ? json_array_size(a) : 0;
	char **v = calloc(n + 1, sizeof(*v));

	for (size_t i = 0; v && i < n; i++) {
		const char *s = json_string_value(json_array_get(a, i));
		if (!(v[i] = strdup(s ? s : ""))) {
			strv_free(v);
			return NULL;
		}
	}
	return v;
}

/* argv: the command's words (--command), else the image's ENTRYPOINT followed by its CMD. */
static enum scone_err pick_command(struct img_plan *p, json_t *cfg, const char *command)
{
	struct scone_strs words = {0};
	char **ep, **cmd;
	size_t ne = 0, nc = 0;
	enum scone_err err;

	if (command) {
		if ((err = scone_shell_split(command, &words)))
			return scone_err_set(err, "--command: %s", scone_err_detail());
		p->command = words.v;
		return words.n ? SCONE_ERR_OK : scone_err_set(SCONE_ERR_INVALID, "--command is empty");
	}
	ep = json_strv(json_object_get(cfg, "Entrypoint"));
	cmd = json_strv(json_object_get(cfg, "Cmd"));
	if (!ep || !cmd || !(p->command = calloc(1, sizeof(char *)))) {
		strv_free(ep);
		strv_free(cmd);
		return scone_err_set(SCONE_ERR_NOMEM, "image configuration");
	}
	while (ep[ne])
		ne++;
	while (cmd[nc])
		nc++;
	free(p->command);
	p->command = calloc(ne + nc + 1, sizeof(char *));
	for (size_t i = 0; p->command && i < ne + nc; i++)
		p->command[i] = i < ne ? ep[i] : cmd[i - ne];
	free(ep);
	free(cmd);
	if (!p->command)
		return scone_err_set(SCONE_ERR_NOMEM, "image configuration");
	if (ne + nc == 0)
		return scone_err_set(SCONE_ERR_INVALID, "%s has neither ENTRYPOINT nor CMD: give --command",
				     p->from);
	return SCONE_ERR_OK;
}

static enum scone_err read_config(struct img_plan *p, const char *text, const char *command)
{
	json_error_t jerr;
	json_t *cfg = json_loads(text, 0, &jerr), *ports;
	const char *key, *wd, *user;
	json_t *v;
	size_t n = 0;
	enum scone_err err;

	if (!json_is_object(cfg)) {
		json_decref(cfg);
		return scone_err_set(SCONE_ERR_MALFORMED,
				     "the engine's configuration of %s is not a JSON object", p->from);
	}
	err = pick_command(p, cfg, command);
	wd = json_string_value(json_object_get(cfg, "WorkingDir"));
	user = json_string_value(json_object_get(cfg, "User"));
	p->workdir = strdup(wd ? wd : "");
	p->user = strdup(user ? user : "");
	p->env = json_strv(json_object_get(cfg, "Env"));
	ports = json_object_get(cfg, "ExposedPorts");
	p->ports = calloc(json_is_object(ports) ? json_object_size(ports) + 1 : 1, sizeof(char *));
	json_object_foreach(json_is_object(ports) ? ports : NULL, key, v)
	{
		if (p->ports && strspn(key, "0123456789/tcpud") == strlen(key))
			p->ports[n++] = strdup(key);
	}
	json_decref(cfg);
	if (!err && (!p->workdir || !p->user || !p->env || !p->ports))
		err = scone_err_set(SCONE_ERR_NOMEM, "image configuration");
	return err;
}

static enum scone_err inspect(struct sconify *s, const char *command)
{
	char *argv[] = {(char *)s->p.engine, "image",		"inspect", "--format",
			"{{json .Config}}",  (char *)s->p.from, NULL};
	struct img_out o;
	enum scone_err err = img_run(argv, &o);

	if (!err && o.status != 0)
		err = img_failed("image inspect (is the image there? nothing is pulled)", &o);
	if (!err)
		err = read_config(&s->p, o.out ? o.out : "", command);
	img_out_free(&o);
	return err;
}

/* ---------------- steps ---------------- */

/* Run argv; its stdout, trimmed, into out (at most size-1 bytes). */
static enum scone_err run_line(char *const argv[], const char *what, char *out, size_t size)
{
	struct img_out o;
	enum scone_err err = img_run(argv, &o);
	size_t n;

	if (!err && o.status != 0)
		err = img_failed(what, &o);
	if (!err) {
		n = o.out_size;
		while (n > 0 && (o.out[n - 1] == '\n' || o.out[n - 1] == '\r' || o.out[n - 1] == ' '))
			n--;
		const char *line = o.out ? o.out : "";
		const char *last = memrchr(line, '\n', n);
		size_t start = last ? (size_t)(last - line) + 1 : 0;
		if (n == start || n - start >= size)
			err = scone_err_set(SCONE_ERR_MALFORMED, "%s printed %s", what,
					    n == start ? "nothing" : "too much");
		else
			snprintf(out, size, "%.*s", (int)(n - start), line + start);
	}
	img_out_free(&o);
	return err;
}

static enum scone_err create_container(struct sconify *s)
{
	char *argv[] = {(char *)s->p.engine,	 "create",	    "--entrypoint",
			RUNTIME_DIR "/.sconify", (char *)s->p.from, NULL};

	return run_line(argv, "create", s->cid, sizeof(s->cid));
}

/* `scone fspf ARGS...` (this binary); its stdout into o. */
static enum scone_err fspf(struct sconify *s, char *args[], struct img_out *o)
{
	char *argv[12] = {s->self, "fspf"};
	size_t n = 2;
	enum scone_err err;

	for (; args[n - 2] && n < 11; n++)
		argv[n] = args[n - 2];
	argv[n] = NULL;
	err = img_run(argv, o);
	if (!err && o->status != 0)
		err = img_failed("scone fspf", o);
	if (!err && strstr(o->err, "skipping"))
		fprintf(stderr, "%s", o->err);
	return err;
}

/* Take key and tag from `scone fspf encrypt`'s line into d. */
static enum scone_err parse_encrypt(const char *line, struct img_dir *d)
{
	const char *t = strstr(line, " tag: "), *k = strstr(line, " key: ");

	if (!t || !k || strspn(t + 6, "0123456789abcdef") < 32 || strspn(k + 6, "0123456789abcdef") < 64)
		return scone_err_set(SCONE_ERR_MALFORMED, "scone fspf encrypt printed no tag and key");
	memcpy(d->tag_hex, t + 6, 32);
	d->tag_hex[32] = '\0';
	memcpy(d->key_hex, k + 6, 64);
	d->key_hex[64] = '\0';
	return SCONE_ERR_OK;
}

/* Copy directory i out of the container and encrypt it into WORK/ctx/vol/i (the volume layout). */
static enum scone_err encrypt_dir(struct sconify *s, size_t i)
{
	struct img_dir *d = &s->p.dirs[i];
	char src[PATH_MAX + 64], plain[PATH_MAX], vol[PATH_MAX], fspf_path[PATH_MAX + 16],
	    tree[PATH_MAX + 1100];
	const char *base = strrchr(d->path, '/') + 1;
	struct img_out o;
	enum scone_err err;

	snprintf(plain, sizeof(plain), "%s/plain", s->work);
	snprintf(vol, sizeof(vol), "%s/ctx/vol/%zu", s->work, i);
	snprintf(fspf_path, sizeof(fspf_path), "%s/volume.fspf", vol);
	snprintf(src, sizeof(src), "%s:%s", s->cid, d->path);
	snprintf(tree, sizeof(tree), "%s/%s", plain, base);
	if (mkdir(plain, 0700) != 0 || mkdir(vol, 0755) != 0)
		return scone_err_set(SCONE_ERR_IO, "%s: %s", vol, strerror(errno));
	char *cp[] = {(char *)s->p.engine, "cp", src, "-", NULL};
	char *untar[] = {"tar", "-x", "--no-same-owner", "-C", plain, "-f", "-", NULL};
	char *const *stages[] = {cp, untar};
	if ((err = img_pipeline(stages, 2, &o)))
		err = scone_err_set(err, "copying %s out of %s: %s", d->path, s->p.from, scone_err_detail());
	img_out_free(&o);
	struct stat st;
	if (!err && (stat(tree, &st) != 0 || !S_ISDIR(st.st_mode)))
		err = scone_err_set(SCONE_ERR_NOT_DIR, "%s in %s is not a directory", d->path, s->p.from);
	char *create[] = {"create", fspf_path, NULL};
	char *addr[] = {"addr", fspf_path, "/", "--encrypted", "--kernel", ".", NULL};
	char *addf[] = {"addf", fspf_path, "/", tree, vol, NULL};
	char *enc[] = {"encrypt", fspf_path, NULL};
	char **steps[] = {create, addr, addf, enc};
	for (size_t k = 0; !err && k < 4; k++) {
		err = fspf(s, steps[k], &o);
		if (!err && k == 3)
			err = parse_encrypt(o.out ? o.out : "", d);
		if (o.out)
			scone_wipe(o.out, o.out_size);
		img_out_free(&o);
	}
	img_rmtree(plain); /* the plaintext goes at once */
	return err;
}

/* Does PATH exist in the container? (cp of it succeeds) */
static bool in_container(struct sconify *s, const char *path)
{
	char src[PATH_MAX + 64];
	char *cp[] = {(char *)s->p.engine, "cp", src, "-", NULL};
	struct img_out o;
	bool ok;

	snprintf(src, sizeof(src), "%s:%s", s->cid, path);
	ok = img_run_to_file(cp, "/dev/null", &o) == SCONE_ERR_OK && o.status == 0;
	img_out_free(&o);
	scone_err_clear();
	return ok;
}

/* export | tar --delete (the directories, the volumes' paths) | import: the base image's id. */
static enum scone_err import_base(struct sconify *s)
{
	char *del[8 + 2 * IMG_MAX_ITEMS] = {"tar", "--delete", "-f", "-"};
	size_t n = 4;
	char *exp[] = {(char *)s->p.engine, "export", s->cid, NULL};
	char *imp[] = {(char *)s->p.engine, "import", "-", NULL};
	struct img_out o;
	enum scone_err err;

	for (size_t i = 0; i < s->p.n_dirs; i++)
		del[n++] = s->p.dirs[i].path + 1;
	for (size_t i = 0; i < s->p.n_vols; i++)
		if (in_container(s, s->p.vols[i].path))
			del[n++] = s->p.vols[i].path + 1;
	del[n] = NULL;
	char *const *with_delete[] = {exp, del, imp};
	char *const *plain[] = {exp, imp};
	err = n > 4 ? img_pipeline(with_delete, 3, &o) : img_pipeline(plain, 2, &o);
	if (!err) {
		size_t len = o.out_size;
		while (len > 0 && (o.out[len - 1] == '\n' || o.out[len - 1] == ' '))
			len--;
		const char *nl = memrchr(o.out, '\n', len);
		size_t start = nl ? (size_t)(nl - o.out) + 1 : 0;
		if (len == start || len - start >= sizeof(s->base))
			err = scone_err_set(SCONE_ERR_MALFORMED, "import printed no image id");
		else
			snprintf(s->base, sizeof(s->base), "%.*s", (int)(len - start), o.out + start);
	}
	img_out_free(&o);
	return err;
}

/* A Dockerfile string: quoted, with \ " $ escaped; false for a newline. */
static bool df_str(FILE *f, const char *v)
{
	if (strpbrk(v, "\n\r"))
		return false;
	fputc('"', f);
	for (; *v; v++) {
		if (*v == '"' || *v == '\\' || *v == '$')
			fputc('\\', f);
		fputc(*v, f);
	}
	fputc('"', f);
	return true;
}

static enum scone_err put_json_argv(FILE *f, const char *prefix, char **words)
{
	json_t *a = json_array();
	char *text;

	for (size_t i = 0; a && words[i]; i++)
		json_array_append_new(a, json_string(words[i]));
	text = a ? json_dumps(a, JSON_COMPACT) : NULL;
	json_decref(a);
	if (!text)
		return scone_err_set(SCONE_ERR_INVALID, "the command is not valid UTF-8");
	fprintf(f, "%s %s\n", prefix, text);
	free(text);
	return SCONE_ERR_OK;
}

static enum scone_err write_dockerfile(struct sconify *s)
{
	struct img_plan *p = &s->p;
	char path[PATH_MAX + 32], chown[300] = "";
	FILE *f;
	enum scone_err err = SCONE_ERR_OK;

	snprintf(path, sizeof(path), "%s/ctx/Dockerfile", s->work);
	if (!(f = fopen(path, "w")))
		return scone_err_set(SCONE_ERR_IO, "%s: %s", path, strerror(errno));
	if (p->user[0] &&
	    strspn(p->user, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-") ==
		strlen(p->user))
		snprintf(chown, sizeof(chown), "--chown=%s ", p->user);
	fprintf(f, "# made by scone image sconify from %s\nFROM %s\n", p->from, s->base);
	fprintf(f, "COPY --from=%s %s %s\n", p->runtime_image, RUNTIME_DIR, RUNTIME_DIR);
	for (size_t i = 0; i < p->n_dirs; i++)
		fprintf(f, "COPY %svol/%zu/ %s/\n", chown, i, p->dirs[i].path);
	for (size_t i = 0; i < p->n_vols; i++)
		fprintf(f, "COPY %sempty/ %s/\n", chown, p->vols[i].path);
	for (size_t i = 0; p->env[i]; i++) {
		const char *eq = strchr(p->env[i], '=');
		if (!eq || eq == p->env[i] || strncmp(p->env[i], "SCONE_", 6) == 0)
			continue;
		fprintf(f, "ENV %.*s=", (int)(eq - p->env[i]), p->env[i]);
		if (!df_str(f, eq + 1))
			err = scone_err_set(SCONE_ERR_INVALID, "the image's variable %.*s has a newline",
					    (int)(eq - p->env[i]), p->env[i]);
		fputc('\n', f);
	}
	fprintf(f, "ENV SCONE_CONFIG_ID=\"%s/%s\"\n", p->session,
		p->service); /* both checked: no quote or $ */
	if (p->workdir[0] && !strpbrk(p->workdir, "\n\r$"))
		fprintf(f, "WORKDIR %s\n", p->workdir);
	if (chown[0])
		fprintf(f, "USER %s\n", p->user);
	for (size_t i = 0; p->ports[i]; i++)
		fprintf(f, "EXPOSE %s\n", p->ports[i]);
	fprintf(f, "LABEL org.scone.sconified-from=");
	df_str(f, p->from);
	fputc('\n', f);
	fprintf(f, "ENTRYPOINT [\"%s/bin/scone\", \"run\", \"--\"]\n", RUNTIME_DIR);
	if (!err)
		err = put_json_argv(f, "CMD", p->command);
	if (fclose(f) != 0 && !err)
		err = scone_err_set(SCONE_ERR_IO, "%s: %s", path, strerror(errno));
	return err;
}

static enum scone_err build(struct sconify *s)
{
	char ctx[PATH_MAX + 8], empty[PATH_MAX + 16], dockerfile[PATH_MAX + 32];
	char *argv[] = {(char *)s->p.engine, "build", "-q", "-t", (char *)s->p.to, "-f",
			dockerfile,	     ctx,     NULL};
	struct img_out o;
	enum scone_err err;

	snprintf(ctx, sizeof(ctx), "%s/ctx", s->work);
	snprintf(empty, sizeof(empty), "%s/empty", ctx);
	snprintf(dockerfile, sizeof(dockerfile), "%s/Dockerfile", ctx);
	if (mkdir(empty, 0700) != 0)
		return scone_err_set(SCONE_ERR_IO, "%s: %s", empty, strerror(errno));
	if ((err = write_dockerfile(s)))
		return err;
	setenv("DOCKER_BUILDKIT", "0", 1); /* the classic builder: offline, no buildx plugin needed */
	err = img_run(argv, &o);
	if (!err && o.status != 0)
		err = img_failed("build of the runtime layer", &o);
	img_out_free(&o);
	return err;
}

/* `scone measure` of the entrypoint, run in the new image: what its LAS will report. */
static enum scone_err measure(struct sconify *s)
{
	char *argv[] = {
	    (char *)s->p.engine,      "run",	       "--rm",	  "--network",	   "none", "--entrypoint",
	    RUNTIME_DIR "/bin/scone", (char *)s->p.to, "measure", s->p.command[0], NULL};
	enum scone_err err =
	    run_line(argv, "scone measure in the new image", s->p.measurement, sizeof(s->p.measurement));

	if (!err && (strlen(s->p.measurement) != 64 || strspn(s->p.measurement, "0123456789abcdef") != 64))
		err = scone_err_set(SCONE_ERR_MALFORMED, "scone measure printed '%.70s', not a measurement",
				    s->p.measurement);
	return err;
}

static enum scone_err prepare(struct sconify *s)
{
	const char *tmp = getenv("TMPDIR");
	ssize_t n;

	n = readlink("/proc/self/exe", s->self, sizeof(s->self) - 1);
	if (n <= 0)
		return scone_err_set(SCONE_ERR_IO, "/proc/self/exe: %s", strerror(errno));
	s->self[n] = '\0';
	if ((size_t)snprintf(s->work, sizeof(s->work), "%s/scone-sconify.XXXXXX",
			     tmp && *tmp ? tmp : "/tmp") >= sizeof(s->work) - 64)
		return scone_err_set(SCONE_ERR_NAME_TOO_LONG, "TMPDIR is too long");
	if (!mkdtemp(s->work))
		return scone_err_set(SCONE_ERR_IO, "%s: %s", s->work, strerror(errno));
	char ctx[PATH_MAX + 16];
	snprintf(ctx, sizeof(ctx), "%s/ctx", s->work);
	if (mkdir(ctx, 0700) != 0 ||
	    (snprintf(ctx, sizeof(ctx), "%s/ctx/vol", s->work), mkdir(ctx, 0700)) != 0)
		return scone_err_set(SCONE_ERR_IO, "%s: %s", ctx, strerror(errno));
	return SCONE_ERR_OK;
}

static void note(const char *what, const char *arg)
{
	fprintf(stderr, "sconify: %s %s\n", what, arg);
}

static enum scone_err steps(struct sconify *s, const char *command)
{
	enum scone_err err;

	if ((err = inspect(s, command)) || (err = prepare(s)) || (err = create_container(s)))
		return err;
	for (size_t i = 0; i < s->p.n_dirs; i++) {
		note("encrypting", s->p.dirs[i].path);
		if ((err = encrypt_dir(s, i)))
			return err;
	}
	note("exporting without the protected paths:", s->p.from);
	if ((err = import_base(s)))
		return err;
	note("adding the runtime layer from", s->p.runtime_image);
	if ((err = build(s)))
		return err;
	if (strcmp(s->p.mode, "las") == 0) {
		note("measuring the entrypoint in the new image:", s->p.command[0]);
		if ((err = measure(s)))
			return err;
	}
	return img_session_write(&s->p);
}

static void cleanup(struct sconify *s)
{
	if (s->cid[0]) {
		char *argv[] = {(char *)s->p.engine, "rm", "-f", s->cid, NULL};
		struct img_out o;
		if (img_run(argv, &o) == SCONE_ERR_OK)
			img_out_free(&o);
		scone_err_clear();
	}
	if (s->work[0])
		img_rmtree(s->work);
}

static int sconify(int argc, char **argv)
{
	static struct sconify s;
	const char *command = NULL;
	char out[300];
	enum scone_err err;
	int rc;

	memset(&s, 0, sizeof(s));
	s.p.service = "app";
	s.p.engine = getenv("SCONE_ENGINE") && *getenv("SCONE_ENGINE") ? getenv("SCONE_ENGINE") : "docker";
	s.p.runtime_image = getenv("SCONE_RUNTIME_IMAGE") && *getenv("SCONE_RUNTIME_IMAGE")
				? getenv("SCONE_RUNTIME_IMAGE")
				: "scone/runtime:latest";
	if ((rc = parse_args(argc, argv, &s.p, &command)) >= 0)
		return rc;
	if (!scone_session_name_valid(s.p.service) || strchr(s.p.service, '/'))
		return cli_usage(usage_line, "--service %s: letters, digits and _.~- only", s.p.service);
	if (!s.p.session_out) {
		snprintf(out, sizeof(out), "%s.yaml", s.p.session);
		for (char *c = out; *c; c++)
			*c = *c == '/' ? '_' : *c;
		s.p.session_out = out;
	}
	err = steps(&s, command);
	rc = err ? cli_fail(err, "sconify") : 0; /* before the clean-up, which has errors of its own */
	cleanup(&s);
	if (!err)
		printf("image %s: %zu encrypted directories, %zu data volumes, attestation %s\nsession %s "
		       "written to %s\n",
		       s.p.to, s.p.n_dirs, s.p.n_vols, s.p.mode, s.p.session, s.p.session_out);
	img_plan_free(&s.p);
	return rc;
}

int cmd_image(int argc, char **argv)
{
	static const struct cli_cmd cmds[] = {
	    {"sconify", sconify, "make a secure image and its session from an application image"},
	    {NULL, NULL, NULL},
	};

	return cli_dispatch("scone image", cmds, argc, argv);
}
