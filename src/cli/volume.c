/*
 * volume.c - `scone volume show|accept`: the owner's recovery path for a
 * session volume whose disk state CAS does not know (CAS restored from a
 * backup, a report lost with a crash two commits deep). show compares the
 * tags on the disk (read without the key) with the one CAS tracks; accept
 * tells CAS, as the owner (access_policy.update of the session), that the
 * disk's state is the one to trust from now on. CAS logs the act. Without
 * the owner, a state CAS does not know is still refused at every start.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "lib/hex.h"
#include "volume/volume.h"

#define MAX_RECORDS 64

struct vol_args {
	const char *cas, *session, *volume, *tag;
	const char *dir;
};

static int vol_usage_text(const char *usage)
{
	printf("%s\n\n"
	       "A session volume's directory (DIR, holding volume.fspf) and the tag CAS tracks for it.\n"
	       "  show    the tags of the records on the disk (newest last; read without the key) and,\n"
	       "          with --session and --volume, CAS's tag and how far the disk is from it\n"
	       "  accept  make CAS trust the disk's newest state (or --tag T): needs the session's\n"
	       "          access_policy.update; CAS logs it. Use it after restoring CAS from a backup or\n"
	       "          when a crash left the disk more than one commit ahead. A wrong tag only makes\n"
	       "          the next start refuse the volume, as before.\n\n"
	       "  --session NAME   the session that owns the volume\n"
	       "  --volume NAME    the volume's name in it\n"
	       "  --tag HEX        (accept) the state to trust (default: the disk's newest)\n"
	       "  --cas ADDR       the CAS (default as for scone session)\n",
	       usage);
	return 0;
}

static int parse_vol_args(int argc, char **argv, const char *usage, struct vol_args *a)
{
	static const struct option opts[] = {
	    {"cas", required_argument, NULL, 'c'},    {"session", required_argument, NULL, 's'},
	    {"volume", required_argument, NULL, 'v'}, {"tag", required_argument, NULL, 't'},
	    {"help", no_argument, NULL, 'h'},	      {NULL, 0, NULL, 0}};
	int c;

	memset(a, 0, sizeof(*a));
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:s:v:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			a->cas = optarg;
			break;
		case 's':
			a->session = optarg;
			break;
		case 'v':
			a->volume = optarg;
			break;
		case 't':
			a->tag = optarg;
			break;
		case 'h':
			return vol_usage_text(usage), -1;
		default:
			return cli_usage(usage, "unknown option"), -2;
		}
	}
	if (optind + 1 != argc)
		return cli_usage(usage, "expected DIR (the volume's directory)"), -2;
	a->dir = argv[optind];
	return 0;
}

/* The disk's record tags, as hex, newest last. */
static enum scone_err disk_tags(const char *dir, char hex[MAX_RECORDS][2 * SCONE_VOLUME_TAG_SIZE + 1],
				size_t *n)
{
	uint8_t tags[MAX_RECORDS][SCONE_VOLUME_TAG_SIZE];
	char path[4200];

	snprintf(path, sizeof(path), "%s/volume.fspf", dir);
	SCONE_TRY(scone_volume_log_tags(path, tags, MAX_RECORDS, n));
	if (*n == 0)
		return scone_err_set(SCONE_ERR_NOT_FOUND, "%s: no sealed record", path);
	for (size_t i = 0; i < *n; i++)
		scone_hex_encode(hex[i], sizeof(hex[i]), tags[i], SCONE_VOLUME_TAG_SIZE);
	return SCONE_ERR_OK;
}

/* GET /v1/volumes/SESSION/VOLUME: CAS's tag ("" when not initialised) into tag. */
static int cas_tag(struct cli_cas *c, const struct vol_args *a, char tag[65])
{
	struct scone_https_response r = {0};
	char path[600];
	json_t *j;
	enum scone_err err;
	int rc = 0;

	snprintf(path, sizeof(path), "/v1/volumes/%s/%s", a->session, a->volume);
	if ((err = cli_cas_request(c, "GET", path, NULL, NULL, 0, &r)))
		return cli_fail(err, "CAS");
	if (r.status != 200) {
		rc = cli_http_fail(&r, "volume");
	} else if (!(j = json_loads(r.body, 0, NULL)) || !json_is_string(json_object_get(j, "tag"))) {
		json_decref(j);
		rc = cli_fail(scone_err_set(SCONE_ERR_MALFORMED, "CAS's answer has no tag"), "volume");
	} else {
		snprintf(tag, 65, "%s", json_string_value(json_object_get(j, "tag")));
		json_decref(j);
	}
	scone_https_response_free(&r);
	return rc;
}

static int volume_show(int argc, char **argv)
{
	const char *usage = "scone volume show DIR [--session NAME --volume NAME] [--cas ADDR]";
	char hex[MAX_RECORDS][2 * SCONE_VOLUME_TAG_SIZE + 1], cas[65];
	struct vol_args a;
	struct cli_cas c;
	enum scone_err err;
	size_t n, at = SIZE_MAX;
	int rc;

	if ((rc = parse_vol_args(argc, argv, usage, &a)))
		return rc == -1 ? 0 : 2;
	if ((err = disk_tags(a.dir, hex, &n)))
		return cli_fail(err, a.dir);
	printf("disk: %zu record%s, newest %s\n", n, n == 1 ? "" : "s", hex[n - 1]);
	if (!a.session || !a.volume)
		return 0;
	if ((err = cli_cas_open(a.cas, true, &c)))
		return cli_fail(err, "CAS");
	rc = cas_tag(&c, &a, cas);
	cli_cas_close(&c);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++)
		if (strcmp(hex[i], cas) == 0)
			at = i;
	printf("CAS:  %s\n", cas[0] ? cas : "(not initialised)");
	if (at == n - 1)
		puts("state: the disk is where CAS is: the volume opens");
	else if (at == n - 2)
		puts("state: the disk is one commit ahead of CAS: the volume opens and the runtime reports "
		     "it");
	else if (at != SIZE_MAX)
		printf("state: the disk is %zu commits ahead of CAS: refused at start; `scone volume accept` "
		       "if the "
		       "disk is the state to trust\n",
		       n - 1 - at);
	else
		puts("state: CAS's tag is not in the disk's log (an older state compacted away, a copy "
		     "rolled back or "
		     "replaced): refused at start; `scone volume accept` only if the disk is the state to "
		     "trust");
	return 0;
}

static int volume_accept(int argc, char **argv)
{
	const char *usage = "scone volume accept DIR --session NAME --volume NAME [--tag HEX] [--cas ADDR]";
	char hex[MAX_RECORDS][2 * SCONE_VOLUME_TAG_SIZE + 1], cas[65], path[600];
	struct scone_https_response r = {0};
	struct vol_args a;
	struct cli_cas c;
	const char *want;
	enum scone_err err;
	json_t *body;
	char *text;
	size_t n;
	int rc;

	if ((rc = parse_vol_args(argc, argv, usage, &a)))
		return rc == -1 ? 0 : 2;
	if (!a.session || !a.volume)
		return cli_usage(usage, "--session and --volume are required");
	if ((err = disk_tags(a.dir, hex, &n)))
		return cli_fail(err, a.dir);
	want = a.tag ? a.tag : hex[n - 1];
	if ((err = cli_cas_open(a.cas, true, &c)))
		return cli_fail(err, "CAS");
	if ((rc = cas_tag(&c, &a, cas))) {
		cli_cas_close(&c);
		return rc;
	}
	body = json_pack("{s:s,s:s}", "tag", want, "previous_tag", cas);
	text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	snprintf(path, sizeof(path), "/v1/volumes/%s/%s", a.session, a.volume);
	err = text ? cli_cas_request(&c, "PUT", path, "application/json", text, strlen(text), &r)
		   : scone_err_set(SCONE_ERR_NOMEM, "request");
	free(text);
	cli_cas_close(&c);
	if (err)
		return cli_fail(err, "CAS");
	rc = r.status == 200 ? 0 : cli_http_fail(&r, "accept");
	if (!rc)
		printf("CAS now trusts %s for volume %s of session %s (was %s)\n", want, a.volume, a.session,
		       cas[0] ? cas : "not initialised");
	scone_https_response_free(&r);
	return rc;
}

int cmd_volume(int argc, char **argv)
{
	static const struct cli_cmd sub[] = {
	    {"show", volume_show, "the disk's tags and CAS's (the owner's view of a volume)"},
	    {"accept", volume_accept, "make CAS trust the disk's state (the owner's recovery path)"},
	    {NULL, NULL, NULL},
	};

	return cli_dispatch("scone volume", sub, argc, argv);
}
