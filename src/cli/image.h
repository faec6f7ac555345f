/*
 * image.h - `scone image`: the pieces of sconify shared by its files.
 *
 * image.c owns the options and the steps of sconify; image_proc.c runs the
 * container engine's CLI and tar (argv arrays, never a shell) and collects
 * what they print; image_session.c writes the session the new image needs
 * and checks it with the policy parser before it is saved.
 */
#ifndef SCONE_CLI_IMAGE_H
#define SCONE_CLI_IMAGE_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/err.h"

#define IMG_MAX_ITEMS 32	  /* directories, volumes, secrets, platforms, env entries per list */
#define IMG_MAX_OUTPUT (4u << 20) /* what one engine command may print that we keep */

/* A directory of the image encrypted into a volume with a fixed key and tag. */
struct img_dir {
	char name[64];
	char path[1024];
	char key_hex[65]; /* secret: wiped by img_plan_wipe */
	char tag_hex[33];
};

/* A data volume: empty in the image, CAS makes its key and tracks its tag. */
struct img_vol {
	char name[64];
	char path[1024];
};

struct img_plan {
	const char *engine;	   /* the container engine's CLI (docker, podman) */
	const char *from, *to;	   /* images */
	const char *runtime_image; /* where /opt/scone comes from */
	const char *session, *service;
	const char *session_out;
	const char *mode; /* "las" or "none" */
	struct img_dir dirs[IMG_MAX_ITEMS];
	size_t n_dirs;
	struct img_vol vols[IMG_MAX_ITEMS];
	size_t n_vols;
	const char *secrets[IMG_MAX_ITEMS]; /* environment variable names */
	size_t n_secrets;
	const char *platforms[IMG_MAX_ITEMS];
	size_t n_platforms;
	char measurement[65];
	/* From the source image's configuration (owned, freed by img_plan_free). */
	char **command; /* NULL-terminated */
	char **env;	/* NAME=VALUE, NULL-terminated */
	char *workdir, *user;
	char **ports; /* "8080/tcp", NULL-terminated */
};

void img_plan_free(struct img_plan *p);

/* ---- image_proc.c ---- */

/* What a finished command left: its exit status and what it printed (NUL-terminated). */
struct img_out {
	int status; /* exit status, or 128+signal */
	char *out;  /* stdout, at most IMG_MAX_OUTPUT bytes kept */
	size_t out_size;
	char err[2048]; /* the end of stderr */
};

/* Run argv (NULL-terminated, argv[0] looked up in PATH), stdin /dev/null. out freed with img_out_free. */
SCONE_MUST_CHECK enum scone_err img_run(char *const argv[], struct img_out *out);
/* As img_run, with stdout written to the file at path (created 0600) instead of kept. */
SCONE_MUST_CHECK enum scone_err img_run_to_file(char *const argv[], const char *path, struct img_out *out);
/*
 * a | b | c: each stage's stdout is the next one's stdin; c's stdout is
 * kept in out. Fails, naming the stage, unless every stage exits 0.
 */
SCONE_MUST_CHECK enum scone_err img_pipeline(char *const *stages[], size_t n, struct img_out *out);
void img_out_free(struct img_out *o);
/* The error of a command that exited non-zero: names it and shows the end of its stderr. */
enum scone_err img_failed(const char *what, const struct img_out *o);
/* Remove a directory tree (the work directory); errors are ignored. */
void img_rmtree(const char *path);

/* ---- image_session.c ---- */

/* Write the session for p to p->session_out (0600), after checking it parses. */
SCONE_MUST_CHECK enum scone_err img_session_write(const struct img_plan *p);

#endif
