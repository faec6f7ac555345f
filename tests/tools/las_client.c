/*
 * las_client.c - a LAS client for the integration tests: the honest
 * request the runtime makes, the attacks an owner of a process on the same
 * host can try, and the verifier CAS runs.
 *
 *   las_client report SOCK [RD_HEX] [OUT]
 *       Ask for a report binding RD_HEX (128 hex, default zero); write the
 *       evidence to OUT; print "REPORT <measurement hex>" or "REFUSED <why>".
 *   las_client verify FILE [MAX_AGE]
 *       Verify evidence as CAS does; print the claims as JSON or "INVALID <why>".
 *   las_client forge-sig IN OUT     copy IN with one measurement byte changed
 *   las_client forge-key IN OUT     re-sign IN with a fresh Ed25519 key of our own
 *   las_client set-rd IN OUT RD_HEX re-sign nothing: copy IN with other report data
 *   las_client handoff SOCK
 *       Connect, then let a forked child write the request (the connecting
 *       process stays alive): the writer is not the caller.
 *   las_client exec SOCK PROGRAM [ARGS]
 *       Connect and send the request, then exec PROGRAM keeping the
 *       connection; a forked child reads the answer (printed as above).
 *   las_client pidreuse SOCK LAS_PID
 *       Inside a fresh pid namespace (run under unshare --pid --fork with
 *       the LAS): stop the LAS, let process A connect and hand its socket to
 *       B, let A exit and start `sleep` with A's pid (ns_last_pid), resume
 *       the LAS and have B send the request. Prints what B gets, and
 *       "REUSED <pid>" when the pid was indeed taken over.
 *
 * Exit status 0 when the tool itself worked (refusals included), 2 usage,
 * 3 setup failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/auxv.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "attest/attest.h"
#include "attest/las_proto.h"
#include "lib/hex.h"

static void die(const char *what)
{
	fprintf(stderr, "las_client: %s: %s %s\n", what, strerror(errno), scone_err_detail());
	exit(3);
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		die("connect");
	return fd;
}

static void request_frame(const char *rd_hex, uint8_t out[SCONE_LAS_HEADER_SIZE + SCONE_LAS_REQUEST_SIZE])
{
	struct scone_las_request req = { .runtime_addr = (uint64_t)(uintptr_t)&request_frame };
	struct scone_wbuf w;
	uint8_t body[SCONE_LAS_REQUEST_SIZE];

	if (rd_hex && scone_hex_decode(req.report_data, 64, rd_hex, "report data"))
		die("report data (128 hex)");
	scone_las_exec_binding((const uint8_t *)getauxval(AT_RANDOM), req.exec_binding);
	scone_las_request_encode(&req, body);
	scone_wbuf_init(&w, 1024, 0);
	if (scone_las_frame(SCONE_LAS_MSG_REQUEST, body, sizeof(body), &w))
		die("frame");
	memcpy(out, w.data, w.size);
	scone_wbuf_free(&w);
}

static void read_all(int fd, void *p, size_t n)
{
	uint8_t *b = p;

	while (n) {
		ssize_t k = read(fd, b, n);
		if (k <= 0)
			die("read answer");
		b += k;
		n -= (size_t)k;
	}
}

/* Print the answer; the evidence goes to out_path if given. */
static int print_answer(int fd, const char *out_path)
{
	uint8_t hdr[SCONE_LAS_HEADER_SIZE], body[SCONE_LAS_BODY_MAX];
	char reason[SCONE_LAS_TEXT_MAX + 1], hex[65];
	struct scone_las_report r;
	enum scone_las_kind kind;
	enum scone_err code;
	size_t size, tbs;
	FILE *f;

	read_all(fd, hdr, sizeof(hdr));
	if (scone_las_header(hdr, &kind, &size))
		die("header");
	read_all(fd, body, size);
	if (kind == SCONE_LAS_MSG_REFUSAL) {
		if (scone_las_refusal_decode(body, size, &code, reason))
			die("refusal");
		printf("REFUSED %s: %s\n", scone_errname(code), reason);
		return 0;
	}
	if (scone_las_report_decode(body, size, &r, &tbs))
		die("report");
	scone_hex_encode(hex, sizeof(hex), r.measurement, 32);
	printf("REPORT %s\n", hex);
	if (out_path) {
		f = fopen(out_path, "wb");
		if (!f || fwrite(body, 1, size, f) != size || fclose(f) != 0)
			die(out_path);
	}
	return 0;
}

static int cmd_report(int argc, char **argv)
{
	uint8_t frame[SCONE_LAS_HEADER_SIZE + SCONE_LAS_REQUEST_SIZE];
	int fd;

	if (argc < 3)
		return 2;
	fd = connect_to(argv[2]);
	request_frame(argc > 3 && strcmp(argv[3], "-") ? argv[3] : NULL, frame);
	if (write(fd, frame, sizeof(frame)) != (ssize_t)sizeof(frame))
		die("write");
	return print_answer(fd, argc > 4 ? argv[4] : NULL);
}

static size_t load(const char *path, uint8_t *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f)
		die(path);
	n = fread(buf, 1, cap, f);
	fclose(f);
	return n;
}

static void save(const char *path, const uint8_t *buf, size_t n)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(buf, 1, n, f) != n || fclose(f) != 0)
		die(path);
}

static int cmd_verify(int argc, char **argv)
{
	uint8_t buf[SCONE_EVIDENCE_MAX];
	struct scone_verify_opts o = { .max_age_sec = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 0 };
	struct scone_claims c;
	struct scone_wbuf w;
	size_t n;

	if (argc < 3)
		return 2;
	n = load(argv[2], buf, sizeof(buf));
	if (scone_evidence_find("las")->verify(buf, n, &o, &c)) {
		printf("INVALID %s\n", scone_err_detail());
		return 0;
	}
	scone_wbuf_init(&w, 1 << 16, 0);
	if (scone_claims_to_json(&c, &w) || scone_wbuf_u8(&w, 0))
		die("claims");
	printf("%s\n", (char *)w.data);
	scone_wbuf_free(&w);
	return 0;
}

/* Re-sign a decoded report with a key of our own (a LAS nobody listed). */
static void resign(struct scone_las_report *r, uint8_t *out, size_t *out_n)
{
	EVP_PKEY *k = NULL;
	EVP_PKEY_CTX *kc = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	struct scone_wbuf w;
	size_t len = 32, slen = 64;

	if (!kc || EVP_PKEY_keygen_init(kc) != 1 || EVP_PKEY_keygen(kc, &k) != 1 ||
	    EVP_PKEY_get_raw_public_key(k, r->las_key, &len) != 1)
		die("keygen");
	scone_wbuf_init(&w, SCONE_LAS_BODY_MAX, 0);
	if (scone_las_report_tbs(r, &w) || EVP_DigestSignInit(md, NULL, NULL, NULL, k) != 1 ||
	    EVP_DigestSign(md, r->signature, &slen, w.data, w.size) != 1)
		die("sign");
	w.size = 0;
	if (scone_las_report_encode(r, &w))
		die("encode");
	memcpy(out, w.data, w.size);
	*out_n = w.size;
	scone_wbuf_free(&w);
	EVP_MD_CTX_free(md);
	EVP_PKEY_CTX_free(kc);
	EVP_PKEY_free(k);
}

static int cmd_forge(int argc, char **argv)
{
	uint8_t buf[SCONE_LAS_BODY_MAX], out[SCONE_LAS_BODY_MAX];
	struct scone_las_report r;
	size_t n, tbs, out_n;

	if (argc < 4)
		return 2;
	n = load(argv[2], buf, sizeof(buf));
	if (scone_las_report_decode(buf, n, &r, &tbs))
		die("decode");
	if (strcmp(argv[1], "forge-sig") == 0) {
		buf[8 + 8] ^= 0x01; /* the first measurement byte */
		save(argv[3], buf, n);
	} else if (strcmp(argv[1], "set-rd") == 0) {
		if (argc < 5 || scone_hex_decode(buf + 8 + 8 + 64, 64, argv[4], "report data"))
			return 2;
		save(argv[3], buf, n);
	} else {
		r.time = (int64_t)time(NULL);
		resign(&r, out, &out_n);
		save(argv[3], out, out_n);
	}
	return 0;
}

static int cmd_handoff(int argc, char **argv)
{
	uint8_t frame[SCONE_LAS_HEADER_SIZE + SCONE_LAS_REQUEST_SIZE];
	int fd, st;
	pid_t child;

	if (argc < 3)
		return 2;
	fd = connect_to(argv[2]);
	request_frame(NULL, frame);
	child = fork();
	if (child == 0) {
		if (write(fd, frame, sizeof(frame)) != (ssize_t)sizeof(frame))
			die("write");
		_exit(print_answer(fd, NULL));
	}
	waitpid(child, &st, 0);
	return 0;
}

static int cmd_exec(int argc, char **argv)
{
	uint8_t frame[SCONE_LAS_HEADER_SIZE + SCONE_LAS_REQUEST_SIZE];
	int fd;

	if (argc < 4)
		return 2;
	fd = connect_to(argv[2]);
	if (fork() == 0) /* the reader shares the connection and gets whatever the LAS answers */
		_exit(print_answer(fd, NULL));
	request_frame(NULL, frame);
	/* The script stops the LAS around this, so that it sees the caller after the exec. */
	if (write(fd, frame, sizeof(frame)) != (ssize_t)sizeof(frame))
		die("write");
	execvp(argv[3], argv + 3);
	die("exec");
	return 3;
}

/* Is every thread of pid stopped (state T)? */
static bool all_stopped(pid_t pid)
{
	char path[320], stat[512];
	struct dirent *e;
	bool stopped = true;
	DIR *d;

	if (snprintf(path, sizeof(path), "/proc/%d/task", (int)pid) >= (int)sizeof(path) || !(d = opendir(path)))
		return false;
	while (stopped && (e = readdir(d))) {
		FILE *f;
		char *paren;
		if (e->d_name[0] == '.')
			continue;
		int n = snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", (int)pid, e->d_name);
		f = n > 0 && n < (int)sizeof(path) ? fopen(path, "r") : NULL;
		if (!f || !fgets(stat, sizeof(stat), f) || !(paren = strrchr(stat, ')')) || paren[1] != ' ' ||
		    paren[2] != 'T')
			stopped = false;
		if (f)
			fclose(f);
	}
	closedir(d);
	return stopped;
}

/*
 * kill(SIGSTOP) returns before the target stops: a LAS thread running on
 * another CPU could still accept the connection made next, while its
 * caller lives. Wait until every thread is stopped.
 */
static void stop_and_wait(pid_t pid)
{
	kill(pid, SIGSTOP);
	for (int i = 0; i < 5000 && !all_stopped(pid); i++)
		usleep(1000);
	if (!all_stopped(pid))
		die("the LAS did not stop");
}

static int cmd_pidreuse(int argc, char **argv)
{
	uint8_t frame[SCONE_LAS_HEADER_SIZE + SCONE_LAS_REQUEST_SIZE];
	pid_t las, a, l;
	int ready[2], go[2], done[2], st;
	char c = 0;
	FILE *f;

	if (argc < 4)
		return 2;
	las = (pid_t)strtol(argv[3], NULL, 10);
	if (pipe(ready) != 0 || pipe(go) != 0 || pipe(done) != 0)
		die("pipe");
	stop_and_wait(las);
	a = fork();
	if (a == 0) {
		int fd = connect_to(argv[2]);
		if (fork() == 0) { /* B: keeps the socket, writes the request when told */
			(void)!write(ready[1], "r", 1);
			(void)!read(go[0], &c, 1);
			request_frame(NULL, frame);
			/* The LAS may have refused and closed already: its answer is still there to read. */
			(void)!send(fd, frame, sizeof(frame), MSG_NOSIGNAL);
			_exit(print_answer(fd, NULL)); /* done[1] closes with B */
		}
		_exit(0); /* A exits; its pid is free for reuse */
	}
	close(done[1]);
	(void)!read(ready[0], &c, 1);
	waitpid(a, &st, 0);
	f = fopen("/proc/sys/kernel/ns_last_pid", "w");
	if (!f || fprintf(f, "%d", (int)a - 1) < 0 || fclose(f) != 0)
		die("ns_last_pid (run inside unshare --pid --fork as root)");
	l = fork();
	if (l == 0) {
		execlp("sleep", "sleep", "30", (char *)NULL);
		_exit(127);
	}
	if (l == a)
		printf("REUSED %d\n", (int)l);
	usleep(200000); /* sleep has exec'd */
	kill(las, SIGCONT);
	(void)!write(go[1], "g", 1);
	(void)!read(done[0], &c, 1); /* EOF when B has printed its answer and exited */
	kill(l, SIGKILL);
	waitpid(l, &st, 0);
	return 0;
}

int main(int argc, char **argv)
{
	int rc = 2;

	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc >= 2 && strcmp(argv[1], "report") == 0)
		rc = cmd_report(argc, argv);
	else if (argc >= 2 && strcmp(argv[1], "verify") == 0)
		rc = cmd_verify(argc, argv);
	else if (argc >= 2 && (!strcmp(argv[1], "forge-sig") || !strcmp(argv[1], "forge-key") || !strcmp(argv[1], "set-rd")))
		rc = cmd_forge(argc, argv);
	else if (argc >= 2 && strcmp(argv[1], "handoff") == 0)
		rc = cmd_handoff(argc, argv);
	else if (argc >= 2 && strcmp(argv[1], "exec") == 0)
		rc = cmd_exec(argc, argv);
	else if (argc >= 2 && strcmp(argv[1], "pidreuse") == 0)
		rc = cmd_pidreuse(argc, argv);
	if (rc == 2)
		fprintf(stderr, "usage: las_client report|verify|forge-sig|forge-key|set-rd|handoff|exec|pidreuse ...\n");
	return rc;
}
