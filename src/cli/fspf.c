/*
 * fspf.c - `scone fspf`: build a protected volume (create, addr, addf,
 * encrypt) and inspect one (show, verify, cat, extract), with SCONE's
 * command shapes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "lib/crypto.h"
#include "lib/hex.h"
#include "volume/volume.h"

#define IO_CHUNK (1u << 20)

struct vol_args {
	const char *key_hex, *key_file, *tag_hex;
};

static const struct option vol_options[] = {
    {"key", required_argument, NULL, 'k'},
    {"key-file", required_argument, NULL, 'K'},
    {"tag", required_argument, NULL, 't'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static const char key_help[] =
    "  --key HEX        the volume key printed by 'scone fspf encrypt' (visible in ps:\n"
    "                   prefer --key-file or $SCONE_FSPF_KEY)\n"
    "  --key-file PATH  read the key (hex) from a file\n"
    "  --tag HEX        the expected tag (or $SCONE_FSPF_TAG); refuses older states\n";

/* Parse --key/--key-file/--tag; returns -1 to continue, else an exit status. */
static int parse_vol_args(int argc, char **argv, const char *usage, const char *help, struct vol_args *a)
{
	int c;

	memset(a, 0, sizeof(*a));
	optind = 1;
	while ((c = getopt_long(argc, argv, "k:K:t:h", vol_options, NULL)) != -1) {
		switch (c) {
		case 'k':
			a->key_hex = optarg;
			break;
		case 'K':
			a->key_file = optarg;
			break;
		case 't':
			a->tag_hex = optarg;
			break;
		case 'h':
			printf("Usage: %s\n\n%s\nOptions:\n%s", usage, help, key_help);
			return 0;
		default:
			return cli_usage(usage, "invalid option");
		}
	}
	return -1;
}

/* Close after an error that is already being reported. */
static void close_quietly(struct scone_volume *v)
{
	if (scone_volume_close(v, NULL) != SCONE_ERR_OK)
		scone_err_clear();
}

/* Open a volume for inspection: sealed needs a key; the tag is optional but checked when given. */
static int open_for_reading(const char *fspf, const struct vol_args *a, bool need_tag,
			    struct scone_volume **v)
{
	uint8_t key[32], tag[16];
	enum scone_err err;
	bool have_key = cli_get_key(a->key_hex, a->key_file, key, &err), have_tag;

	if (err)
		return cli_fail(err, "key");
	have_tag = cli_get_tag(a->tag_hex, tag, &err);
	if (err)
		return cli_fail(err, "tag");
	if (need_tag && !have_tag) {
		fprintf(stderr, "scone: --tag is required (or $SCONE_FSPF_TAG): without it an older copy "
				"of the volume would be accepted\n");
		return 2;
	}
	err = scone_volume_open(fspf, have_key ? key : NULL, have_tag ? tag : NULL,
				have_key ? SCONE_VOL_RDONLY : SCONE_VOL_ALLOW_UNSEALED, v);
	scone_wipe(key, sizeof(key));
	return err ? cli_fail(err, "cannot open volume") : -1;
}

/* ---------------- create / addr ---------------- */

static int fspf_create(int argc, char **argv)
{
	const char *usage = "scone fspf create FSPF";
	enum scone_err err;

	if (argc == 2 && cli_is_help(argv[1])) {
		printf("Usage: %s\n\nCreate an empty file system protection file. Add regions with 'addr',\n"
		       "files with 'addf', then seal it with 'encrypt'.\n",
		       usage);
		return 0;
	}
	if (argc != 2)
		return cli_usage(usage, "expected one argument");
	err = scone_volume_create(argv[1]);
	if (err)
		return cli_fail(err, argv[1]);
	printf("Created file system protection file %s\n", argv[1]);
	return 0;
}

static int open_for_building(const char *fspf, const char *key_hex, const char *key_file,
			     struct scone_volume **v)
{
	uint8_t key[32];
	enum scone_err err;
	bool have_key = cli_get_key(key_hex, key_file, key, &err);

	if (err)
		return cli_fail(err, "key");
	err = scone_volume_open(fspf, have_key ? key : NULL, NULL,
				SCONE_VOL_RDWR | (have_key ? 0 : SCONE_VOL_ALLOW_UNSEALED), v);
	scone_wipe(key, sizeof(key));
	if (err == SCONE_ERR_INVALID && !have_key)
		fprintf(stderr, "scone: %s is encrypted: give its key with --key-file or $SCONE_FSPF_KEY\n",
			fspf);
	return err ? cli_fail(err, "cannot open volume") : -1;
}

static int close_volume(struct scone_volume *v, const char *fspf)
{
	enum scone_err err = scone_volume_close(v, NULL);
	return err ? cli_fail(err, fspf) : 0;
}

static int fspf_addr(int argc, char **argv)
{
	const char *usage = "scone fspf addr FSPF PATH (--encrypted|--authenticated|--not-protected) "
			    "(--kernel DIR|--ephemeral)";
	static const struct option opts[] = {
	    {"encrypted", no_argument, NULL, 'e'},     {"authenticated", no_argument, NULL, 'a'},
	    {"not-protected", no_argument, NULL, 'n'}, {"kernel", required_argument, NULL, 'd'},
	    {"ephemeral", no_argument, NULL, 'E'},     {"key-file", required_argument, NULL, 'K'},
	    {"help", no_argument, NULL, 'h'},	       {NULL, 0, NULL, 0},
	};
	int kind = -1, store = -1, c, rc;
	const char *dir = NULL, *key_file = NULL;
	struct scone_volume *v;
	enum scone_err err;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'e':
		case 'a':
		case 'n':
			if (kind >= 0)
				return cli_usage(
				    usage, "choose one of --encrypted, --authenticated, --not-protected");
			kind = c == 'e'	  ? SCONE_REGION_ENCRYPTED
			       : c == 'a' ? SCONE_REGION_AUTHENTICATED
					  : SCONE_REGION_NOT_PROTECTED;
			break;
		case 'd':
		case 'E':
			if (store >= 0)
				return cli_usage(usage, "choose one of --kernel DIR, --ephemeral");
			store = c == 'd' ? SCONE_STORE_KERNEL : SCONE_STORE_EPHEMERAL;
			dir = c == 'd' ? optarg : NULL;
			break;
		case 'K':
			key_file = optarg;
			break;
		case 'h':
			printf(
			    "Usage: %s\n\nAdd a region: files under PATH (inside the protected program's "
			    "view) are\n"
			    "  --encrypted      confidential and integrity-protected\n"
			    "  --authenticated  plaintext on disk, integrity-protected\n"
			    "  --not-protected  passed through unchanged\n"
			    "and stored\n"
			    "  --kernel DIR     on the host under DIR (relative: to the fspf's directory)\n"
			    "  --ephemeral      in memory only, empty at every start\n"
			    "The longest matching region prefix governs a path.\n",
			    usage);
			return 0;
		default:
			return cli_usage(usage, "invalid option");
		}
	}
	if (argc - optind != 2)
		return cli_usage(usage, "expected FSPF and PATH");
	if (kind < 0 || store < 0)
		return cli_usage(usage,
				 "a protection (--encrypted|--authenticated|--not-protected) and a store "
				 "(--kernel DIR|--ephemeral) are required");
	if ((rc = open_for_building(argv[optind], NULL, key_file, &v)) >= 0)
		return rc;
	err = scone_volume_add_region(v, argv[optind + 1], (enum scone_region_kind)kind,
				      (enum scone_region_store)store, dir);
	if (err) {
		close_quietly(v);
		return cli_fail(err, argv[optind + 1]);
	}
	return close_volume(v, argv[optind]);
}

/* ---------------- addf ---------------- */

struct addf_ctx {
	struct scone_volume *v;
	struct cli_progress prog;
	uint8_t *buf;
	size_t files;
	char **originals; /* plaintext files to remove after an in-place commit */
	size_t original_count;
};

static enum scone_err protect_file(struct addf_ctx *ctx, const char *native, const char *vpath, mode_t mode)
{
	struct scone_vfile *f = NULL;
	enum scone_err err;
	uint64_t off = 0;
	int fd = open(native, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return scone_err_set(scone_err_from_errno(errno), "%s: %s", native, strerror(errno));
	err = scone_vfile_open(ctx->v, vpath, SCONE_VF_WRONLY | SCONE_VF_CREAT | SCONE_VF_TRUNC, mode & 07777,
			       &f);
	while (!err) {
		ssize_t n = read(fd, ctx->buf, IO_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = scone_err_set(SCONE_ERR_IO, "%s: %s", native, strerror(errno));
			break;
		}
		if (n == 0)
			break;
		err = scone_vfile_pwrite(f, ctx->buf, (size_t)n, off);
		off += (uint64_t)n;
		cli_progress_add(&ctx->prog, (uint64_t)n);
	}
	scone_vfile_close(f);
	close(fd);
	scone_wipe(ctx->buf, IO_CHUNK);
	ctx->files++;
	return err;
}

static enum scone_err ensure_vdir(struct scone_volume *v, const char *vpath)
{
	struct scone_vstat st;

	if (scone_volume_stat(v, vpath, &st) == SCONE_ERR_OK)
		return st.is_dir ? SCONE_ERR_OK : scone_err_set(SCONE_ERR_NOT_DIR, "%s is a file", vpath);
	return scone_volume_mkdir(v, vpath, 0755);
}

static char *join(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s%s%s", a, strcmp(a, "/") == 0 ? "" : "/", b);
	return p;
}

/* Walk native directory ndir (protected path vdir); count (buf NULL) or protect. */
static enum scone_err walk_native(struct addf_ctx *ctx, const char *ndir, const char *vdir, bool count,
				  uint64_t *bytes, bool in_place)
{
	DIR *d = opendir(ndir);
	struct dirent *de;
	enum scone_err err = SCONE_ERR_OK;

	if (!d)
		return scone_err_set(scone_err_from_errno(errno), "%s: %s", ndir, strerror(errno));
	while (!err && (de = readdir(d)) != NULL) {
		struct stat st;
		char *np, *vp;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		/* In place, the host directory also holds the protected files: skip those. */
		if (in_place && strlen(de->d_name) == 32 && strspn(de->d_name, "0123456789abcdef") == 32)
			continue;
		np = join(ndir, de->d_name);
		vp = join(vdir, de->d_name);
		if (!np || !vp)
			err = SCONE_ERR_NOMEM;
		else if (lstat(np, &st) != 0)
			err = scone_err_set(scone_err_from_errno(errno), "%s: %s", np, strerror(errno));
		else if (S_ISDIR(st.st_mode)) {
			if (!count)
				err = ensure_vdir(ctx->v, vp);
			if (!err)
				err = walk_native(ctx, np, vp, count, bytes, in_place);
		} else if (S_ISREG(st.st_mode)) {
			if (count)
				*bytes += (uint64_t)st.st_size;
			else
				err = protect_file(ctx, np, vp, st.st_mode);
			if (!err && !count && in_place) {
				char **no = realloc(ctx->originals, (ctx->original_count + 1) * sizeof(*no));
				if (!no)
					err = SCONE_ERR_NOMEM;
				else {
					ctx->originals = no;
					ctx->originals[ctx->original_count++] = np;
					np = NULL;
				}
			}
		} else if (!count) {
			fprintf(stderr, "scone: skipping %s: not a regular file or directory\n", np);
		}
		free(np);
		free(vp);
	}
	closedir(d);
	return err;
}

static int fspf_addf(int argc, char **argv)
{
	const char *usage = "scone fspf addf FSPF PATH NATIVE_DIR [PROTECTED_DIR]";
	struct addf_ctx ctx = {0};
	const char *fspf, *vpath, *native, *prot;
	char *native_abs = NULL, *prot_abs = NULL;
	uint64_t bytes = 0;
	bool in_place;
	int rc, c;
	enum scone_err err;
	const char *key_file = NULL;
	static const struct option opts[] = {
	    {"key-file", required_argument, NULL, 'K'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'K')
			key_file = optarg;
		else if (c == 'h') {
			printf("Usage: %s\n\nProtect every file under NATIVE_DIR as PATH/... in the volume, "
			       "writing the\n"
			       "protected form to PROTECTED_DIR (the region's directory as it will be "
			       "mounted),\n"
			       "or in place, replacing the plaintext files, when PROTECTED_DIR is omitted.\n",
			       usage);
			return 0;
		} else
			return cli_usage(usage, "invalid option");
	}
	if (argc - optind < 3 || argc - optind > 4)
		return cli_usage(usage, "expected FSPF PATH NATIVE_DIR [PROTECTED_DIR]");
	fspf = argv[optind];
	vpath = argv[optind + 1];
	native = argv[optind + 2];
	prot = argc - optind == 4 ? argv[optind + 3] : native;
	native_abs = realpath(native, NULL);
	if (!native_abs)
		return cli_fail(scone_err_set(SCONE_ERR_NOT_FOUND, "%s: %s", native, strerror(errno)),
				"addf");
	if (mkdir(prot, 0700) != 0 && errno != EEXIST)
		rc = cli_fail(scone_err_set(SCONE_ERR_IO, "%s: %s", prot, strerror(errno)), "addf");
	prot_abs = realpath(prot, NULL);
	in_place = prot_abs && strcmp(native_abs, prot_abs) == 0;
	if ((rc = open_for_building(fspf, NULL, key_file, &ctx.v)) >= 0)
		goto out;
	err = prot_abs ? scone_volume_redirect(ctx.v, vpath, prot_abs)
		       : scone_err_set(SCONE_ERR_NOT_FOUND, "%s: %s", prot, strerror(errno));
	if (!err)
		err = walk_native(&ctx, native_abs, vpath, true, &bytes, in_place);
	ctx.buf = malloc(IO_CHUNK);
	if (!err && !ctx.buf)
		err = SCONE_ERR_NOMEM;
	if (!err && !(strcmp(vpath, "/") == 0))
		err = ensure_vdir(ctx.v, vpath);
	cli_progress_start(&ctx.prog, "protecting", bytes);
	if (!err)
		err = walk_native(&ctx, native_abs, vpath, false, &bytes, in_place);
	cli_progress_end(&ctx.prog);
	if (!err)
		err = scone_volume_sync(ctx.v);
	if (err) {
		close_quietly(ctx.v);
		rc = cli_fail(err, "addf");
		goto out;
	}
	rc = close_volume(ctx.v, fspf);
	/* Only once the protected copies are committed do the plaintext originals go. */
	for (size_t i = 0; rc == 0 && i < ctx.original_count; i++)
		if (unlink(ctx.originals[i]) != 0)
			fprintf(stderr, "scone: could not remove plaintext %s: %s\n", ctx.originals[i],
				strerror(errno));
	if (rc == 0)
		printf("Added %zu files (%llu bytes) under %s\n", ctx.files, (unsigned long long)bytes,
		       vpath);
out:
	for (size_t i = 0; i < ctx.original_count; i++)
		free(ctx.originals[i]);
	free(ctx.originals);
	free(ctx.buf);
	free(native_abs);
	free(prot_abs);
	return rc;
}

/* ---------------- encrypt ---------------- */

static int fspf_encrypt(int argc, char **argv)
{
	const char *usage = "scone fspf encrypt FSPF [--key HEX | --key-file PATH]";
	struct vol_args a;
	struct scone_volume *v;
	uint8_t key[32], key_out[32], tag[16];
	char key_hex[65], tag_hex[33];
	enum scone_err err;
	bool have_key;
	int rc =
	    parse_vol_args(argc, argv, usage,
			   "Encrypt the protection file. Prints one line with its tag and key. With --key\n"
			   "(or --key-file, $SCONE_FSPF_KEY) that key is used, so the key stays stable\n"
			   "while the tag advances; without, a random key is made.\n",
			   &a);

	if (rc >= 0)
		return rc;
	if (argc - optind != 1)
		return cli_usage(usage, "expected FSPF");
	have_key = cli_get_key(a.key_hex, a.key_file, key, &err);
	if (err)
		return cli_fail(err, "key");
	/* An already-sealed fspf opens with the same key; an unsealed one needs none. */
	err = scone_volume_open(argv[optind], have_key ? key : NULL, NULL,
				SCONE_VOL_RDWR | SCONE_VOL_ALLOW_UNSEALED, &v);
	if (err) {
		scone_wipe(key, sizeof(key));
		return cli_fail(err, "cannot open volume");
	}
	err = scone_volume_seal(v, have_key ? key : NULL, key_out, tag);
	scone_wipe(key, sizeof(key));
	if (!err)
		err = scone_volume_close(v, tag);
	else
		close_quietly(v);
	if (err) {
		scone_wipe(key_out, sizeof(key_out));
		return cli_fail(err, argv[optind]);
	}
	scone_hex_encode(key_hex, sizeof(key_hex), key_out, sizeof(key_out));
	scone_hex_encode(tag_hex, sizeof(tag_hex), tag, sizeof(tag));
	printf("Encrypted file system protection file %s AES-GCM tag: %s key: %s\n", argv[optind], tag_hex,
	       key_hex);
	scone_wipe(key_out, sizeof(key_out));
	scone_wipe(key_hex, sizeof(key_hex));
	return 0;
}

/* ---------------- show ---------------- */

static const char *kind_name(enum scone_region_kind k)
{
	return k == SCONE_REGION_ENCRYPTED	 ? "encrypted"
	       : k == SCONE_REGION_AUTHENTICATED ? "authenticated"
						 : "not-protected";
}

static int show_entry(void *arg, const char *path, const struct scone_vstat *st)
{
	char id[33];

	(void)arg;
	scone_hex_encode(id, sizeof(id), st->file_id, sizeof(st->file_id));
	if (st->is_dir)
		printf("  dir   %s\n", path);
	else
		printf("  file  %s  %llu bytes  id %s\n", path, (unsigned long long)st->size, id);
	return 0;
}

static int fspf_show(int argc, char **argv)
{
	const char *usage = "scone fspf show FSPF [--key HEX | --key-file PATH] [--tag HEX]";
	struct vol_args a;
	struct scone_volume *v;
	uint8_t tag[16];
	char tag_hex[33];
	int rc = parse_vol_args(argc, argv, usage, "Print the regions and files of a volume.\n", &a);

	if (rc >= 0)
		return rc;
	if (argc - optind != 1)
		return cli_usage(usage, "expected FSPF");
	if ((rc = open_for_reading(argv[optind], &a, false, &v)) >= 0)
		return rc;
	scone_volume_tag(v, tag);
	scone_hex_encode(tag_hex, sizeof(tag_hex), tag, sizeof(tag));
	printf("fspf %s (%s)\n", argv[optind], scone_volume_is_sealed(v) ? "encrypted" : "NOT encrypted yet");
	if (scone_volume_is_sealed(v))
		printf("tag  %s\n", tag_hex);
	printf("regions:\n");
	for (size_t i = 0; i < scone_volume_region_count(v); i++) {
		struct scone_region_info r;
		scone_volume_region(v, i, &r);
		printf("  %-14s %s  %s%s\n", kind_name(r.kind), r.path, r.host_dir ? "kernel " : "ephemeral",
		       r.host_dir ? r.host_dir : "");
	}
	printf("entries:\n");
	scone_volume_walk(v, show_entry, NULL);
	return close_volume(v, argv[optind]);
}

/* ---------------- verify / cat / extract ---------------- */

struct copy_ctx {
	struct scone_volume *v;
	struct cli_progress prog;
	uint8_t *buf;
	const char *out_dir;
	int problems;
	size_t files;
	uint64_t bytes;
};

/* Stream one file through fn (fd >= 0: write there; -1: read only to verify). */
static enum scone_err stream_file(struct copy_ctx *c, const char *path, int fd)
{
	struct scone_vfile *f = NULL;
	uint64_t off = 0;
	size_t got;
	enum scone_err err = scone_vfile_open(c->v, path, SCONE_VF_RDONLY, 0, &f);

	while (!err) {
		err = scone_vfile_pread(f, c->buf, IO_CHUNK, off, &got);
		if (err || got == 0)
			break;
		for (size_t w = 0; fd >= 0 && w < got && !err;) {
			ssize_t n = write(fd, c->buf + w, got - w);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				err = scone_err_set(SCONE_ERR_IO, "writing %s: %s", path, strerror(errno));
			else
				w += (size_t)n;
		}
		off += got;
		cli_progress_add(&c->prog, got);
	}
	scone_vfile_close(f);
	scone_wipe(c->buf, IO_CHUNK);
	c->bytes += off;
	return err;
}

static int sum_sizes(void *arg, const char *path, const struct scone_vstat *st)
{
	(void)path;
	*(uint64_t *)arg += st->is_dir ? 0 : st->size;
	return 0;
}

static void print_problem(void *arg, enum scone_err err, const char *msg)
{
	struct copy_ctx *c = arg;
	fprintf(stderr, "%sscone: FAILED (%s): %s\n", c->prog.tty && c->prog.last_pct >= 0 ? "\n" : "",
		scone_errname(err), msg);
	c->problems++;
}

static int verify_entry(void *arg, const char *path, const struct scone_vstat *st)
{
	struct copy_ctx *c = arg;
	enum scone_err err;

	if (st->is_dir)
		return 0;
	err = stream_file(c, path, -1);
	c->files++;
	if (err)
		print_problem(c, err, scone_err_detail());
	return 0;
}

static int begin_copy(struct copy_ctx *c, int argc, char **argv, const char *usage, const char *help,
		      int nargs, int *first)
{
	struct vol_args a;
	int rc = parse_vol_args(argc, argv, usage, help, &a);
	uint64_t total = 0;

	if (rc >= 0)
		return rc;
	if (argc - optind != nargs)
		return cli_usage(usage, "wrong number of arguments");
	*first = optind;
	if ((rc = open_for_reading(argv[optind], &a, true, &c->v)) >= 0)
		return rc;
	c->buf = malloc(IO_CHUNK);
	if (!c->buf) {
		close_quietly(c->v);
		return cli_fail(SCONE_ERR_NOMEM, "memory");
	}
	scone_volume_walk(c->v, sum_sizes, &total);
	cli_progress_start(&c->prog, "reading", total);
	return -1;
}

static int end_copy(struct copy_ctx *c, const char *fspf)
{
	int rc;

	cli_progress_end(&c->prog);
	free(c->buf);
	rc = close_volume(c->v, fspf);
	return c->problems ? 1 : rc;
}

static int fspf_verify(int argc, char **argv)
{
	const char *usage = "scone fspf verify FSPF --key HEX --tag HEX";
	struct copy_ctx c = {0};
	int first, rc = begin_copy(
		       &c, argc, argv, usage,
		       "Check every file of the volume: presence, identity, size and every chunk's\n"
		       "authentication tag, and that no unknown file was added. Exits 1 on any problem.\n",
		       1, &first);

	if (rc == 1)
		fprintf(stderr, "scone: verification FAILED: the volume cannot be opened\n");
	if (rc >= 0)
		return rc;
	enum scone_err host_err = scone_volume_check_host(c.v, print_problem, &c);
	(void)host_err; /* every problem was reported and counted by print_problem */
	scone_volume_walk(c.v, verify_entry, &c);
	rc = end_copy(&c, argv[first]);
	if (rc == 0)
		printf("Verified %zu files (%llu bytes): OK\n", c.files, (unsigned long long)c.bytes);
	else
		fprintf(stderr, "scone: verification FAILED: %d problem(s)\n", c.problems);
	return rc;
}

static int fspf_cat(int argc, char **argv)
{
	const char *usage = "scone fspf cat FSPF --key HEX --tag HEX PATH";
	struct copy_ctx c = {0};
	enum scone_err err;
	int first,
	    rc = begin_copy(&c, argc, argv, usage,
			    "Decrypt and verify one file to standard output. Nothing is printed from a\n"
			    "chunk before its tag is verified.\n",
			    2, &first);

	if (rc >= 0)
		return rc;
	c.prog.tty = false;
	/* Verify the whole file first, so a damaged file prints nothing at all. */
	err = stream_file(&c, argv[first + 1], -1);
	if (!err)
		err = stream_file(&c, argv[first + 1], STDOUT_FILENO);
	if (err)
		print_problem(&c, err, scone_err_detail());
	return end_copy(&c, argv[first]);
}

/* OUT_DIR + protected path (absolute, validated: no "..") ; caller frees. */
static char *out_path(const struct copy_ctx *c, const char *path)
{
	size_t n = strlen(c->out_dir) + strlen(path) + 1;
	char *out = malloc(n);

	if (out)
		snprintf(out, n, "%s%s", c->out_dir, path);
	return out;
}

static int extract_entry(void *arg, const char *path, const struct scone_vstat *st)
{
	struct copy_ctx *c = arg;
	char *out = out_path(c, path);
	enum scone_err err = SCONE_ERR_OK;
	int fd;

	if (!out)
		return 1;
	if (st->is_dir) {
		if (mkdir(out, 0700) != 0 && errno != EEXIST)
			err = scone_err_set(SCONE_ERR_IO, "%s: %s", out, strerror(errno));
	} else {
		fd =
		    open(out, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (st->mode & 0777) | 0600);
		if (fd < 0)
			err = scone_err_set(scone_err_from_errno(errno), "%s: %s", out, strerror(errno));
		else {
			err = stream_file(c, path, fd);
			if (close(fd) != 0 && !err)
				err = scone_err_set(SCONE_ERR_IO, "%s: %s", out, strerror(errno));
			if (err)
				unlink(out); /* never leave a partial, unverified file */
			c->files++;
		}
	}
	if (err)
		print_problem(c, err, scone_err_detail());
	free(out);
	return 0;
}

/* Parents of region roots have no entries; create every ancestor of each path. */
static int extract_parents(void *arg, const char *path, const struct scone_vstat *st)
{
	struct copy_ctx *c = arg;
	char *out = out_path(c, path);

	(void)st;
	if (!out)
		return 1;
	for (char *p = out + strlen(c->out_dir) + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		(void)mkdir(out, 0700);
		*p = '/';
	}
	free(out);
	return 0;
}

static int fspf_extract(int argc, char **argv)
{
	const char *usage = "scone fspf extract FSPF --key HEX --tag HEX OUT_DIR";
	struct copy_ctx c = {0};
	int first, rc = begin_copy(&c, argc, argv, usage,
				   "Decrypt and verify every file into OUT_DIR (existing files are not\n"
				   "overwritten). A file that fails verification is not written.\n",
				   2, &first);

	if (rc >= 0)
		return rc;
	c.out_dir = argv[first + 1];
	if (mkdir(c.out_dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "scone: %s: %s\n", c.out_dir, strerror(errno));
		c.problems++;
	} else {
		scone_volume_walk(c.v, extract_parents, &c);
		scone_volume_walk(c.v, extract_entry, &c);
	}
	rc = end_copy(&c, argv[first]);
	if (rc == 0)
		printf("Extracted %zu files (%llu bytes) to %s\n", c.files, (unsigned long long)c.bytes,
		       c.out_dir);
	return rc;
}

static const struct cli_cmd fspf_cmds[] = {
    {"create", fspf_create, "create an empty protection file"},
    {"addr", fspf_addr, "add a region (encrypted, authenticated or not protected)"},
    {"addf", fspf_addf, "protect the files of a native directory"},
    {"encrypt", fspf_encrypt, "encrypt the protection file; prints tag and key"},
    {"show", fspf_show, "print regions and files"},
    {"verify", fspf_verify, "verify every file against key and tag"},
    {"cat", fspf_cat, "decrypt one file to standard output"},
    {"extract", fspf_extract, "decrypt every file into a directory"},
    {NULL, NULL, NULL},
};

int cmd_fspf(int argc, char **argv)
{
	return cli_dispatch("scone fspf", fspf_cmds, argc, argv);
}
