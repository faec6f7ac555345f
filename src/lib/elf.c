/*
 * elf.c - the kind of program a file is (elf.h). Only the ELF header and
 * program headers are read; nothing is mapped or executed.
 */
#include "elf.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <link.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"

#if defined(__x86_64__)
#define OWN_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define OWN_MACHINE EM_AARCH64
#else
#error "elf.c: unknown machine"
#endif

/* The kernel reads at most this much of a "#!" line (BINPRM_BUF_SIZE since Linux 5.1). */
#define SHEBANG_MAX 256
/* Program headers beyond this many are not looked at (the kernel's limit is 64 KiB of them). */
#define PHDR_MAX 1024

const char *scone_exec_kind_name(enum scone_exec_kind kind)
{
	switch (kind) {
	case SCONE_EXEC_DYNAMIC:
		return "dynamically linked";
	case SCONE_EXEC_STATIC:
		return "statically linked";
	case SCONE_EXEC_FOREIGN:
		return "built for another machine or word size";
	case SCONE_EXEC_SCRIPT:
		return "a script";
	default:
		return "neither an ELF program nor a script";
	}
}

/* "#!interp [arg]": the kernel's split (blanks are space and tab; the rest of the line is one argument). */
static enum scone_err parse_shebang(const char *p, size_t size, struct scone_exec_info *out)
{
	size_t end = 2, i, j;

	while (end < size && end < SHEBANG_MAX && p[end] != '\n')
		end++;
	for (i = 2; i < end && (p[i] == ' ' || p[i] == '\t'); i++)
		;
	for (j = i; j < end && p[j] != ' ' && p[j] != '\t'; j++)
		;
	if (j == i)
		return scone_err_set(SCONE_ERR_MALFORMED, "script: \"#!\" names no interpreter");
	out->kind = SCONE_EXEC_SCRIPT;
	snprintf(out->interp, sizeof(out->interp), "%.*s", (int)(j - i), p + i);
	while (j < end && (p[j] == ' ' || p[j] == '\t'))
		j++;
	while (end > j && (p[end - 1] == ' ' || p[end - 1] == '\t' || p[end - 1] == '\r'))
		end--;
	snprintf(out->arg, sizeof(out->arg), "%.*s", (int)(end - j), p + j);
	return SCONE_ERR_OK;
}

/* PT_INTERP's path from the program headers in data (ELF64, this machine). */
static enum scone_err find_interp(const uint8_t *data, size_t size, const Elf64_Ehdr *eh,
				  struct scone_exec_info *out)
{
	struct scone_rbuf r;
	size_t n = eh->e_phnum < PHDR_MAX ? eh->e_phnum : PHDR_MAX;

	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phoff > size)
		return scone_err_set(SCONE_ERR_MALFORMED,
				     "ELF: program headers at %llu are not where they can be read",
				     (unsigned long long)eh->e_phoff);
	scone_rbuf_init(&r, data + eh->e_phoff, size - eh->e_phoff, "ELF program headers");
	out->kind = SCONE_EXEC_STATIC;
	for (size_t i = 0; i < n; i++) {
		Elf64_Phdr ph;
		SCONE_TRY(scone_rbuf_bytes(&r, "program header", &ph, sizeof(ph)));
		if (ph.p_type != PT_INTERP)
			continue;
		if (ph.p_offset > size || ph.p_filesz == 0 || ph.p_filesz > sizeof(out->interp) ||
		    ph.p_filesz > size - ph.p_offset || data[ph.p_offset + ph.p_filesz - 1] != '\0')
			return scone_err_set(SCONE_ERR_MALFORMED, "ELF: PT_INTERP at %llu is not a path",
					     (unsigned long long)ph.p_offset);
		memcpy(out->interp, data + ph.p_offset, ph.p_filesz);
		out->kind = SCONE_EXEC_DYNAMIC;
		return SCONE_ERR_OK;
	}
	return SCONE_ERR_OK;
}

enum scone_err scone_exec_inspect_bytes(const void *data, size_t size, struct scone_exec_info *out)
{
	const uint8_t *p = data;
	Elf64_Ehdr eh;

	memset(out, 0, sizeof(*out));
	if (size >= 2 && p[0] == '#' && p[1] == '!')
		return parse_shebang(data, size, out);
	if (size < EI_NIDENT || memcmp(p, ELFMAG, SELFMAG) != 0)
		return SCONE_ERR_OK; /* OTHER */
	if (p[EI_CLASS] != ELFCLASS64 || p[EI_DATA] != ELFDATA2LSB || size < sizeof(eh)) {
		out->kind = SCONE_EXEC_FOREIGN;
		return SCONE_ERR_OK;
	}
	memcpy(&eh, p, sizeof(eh));
	if (eh.e_machine != OWN_MACHINE) {
		out->kind = SCONE_EXEC_FOREIGN;
		return SCONE_ERR_OK;
	}
	return find_interp(p, size, &eh, out);
}

/* Read up to size bytes from the start of fd into buf; *got says how many. */
static enum scone_err read_head(int fd, uint8_t *buf, size_t size, size_t *got)
{
	*got = 0;
	while (*got < size) {
		ssize_t n = pread(fd, buf + *got, size - *got, (off_t)*got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return scone_err_set(scone_err_from_errno(errno), "cannot read the program: %s",
					     strerror(errno));
		if (n == 0)
			break;
		*got += (size_t)n;
	}
	return SCONE_ERR_OK;
}

/*
 * The headers of almost every program sit in its first page; a program
 * whose headers lie further in is read again, up to 64 KiB (no buffer of
 * that size on the stack: this runs in vfork children too).
 */
#define INSPECT_PAGE 4096u
#define INSPECT_MAX (64u * 1024)

enum scone_err scone_exec_inspect_fd(int fd, struct scone_exec_info *out)
{
	uint8_t page[INSPECT_PAGE], *big;
	size_t got;
	enum scone_err err;

	SCONE_TRY(read_head(fd, page, sizeof(page), &got));
	err = scone_exec_inspect_bytes(page, got, out);
	if (err != SCONE_ERR_MALFORMED || got < sizeof(page) || out->kind == SCONE_EXEC_SCRIPT)
		return err;
	scone_err_clear();
	if (!(big = malloc(INSPECT_MAX)))
		return scone_err_set(SCONE_ERR_NOMEM, "reading the program");
	err = read_head(fd, big, INSPECT_MAX, &got);
	if (!err)
		err = scone_exec_inspect_bytes(big, got, out);
	free(big);
	return err;
}

enum scone_err scone_exec_inspect(const char *path, struct scone_exec_info *out)
{
	enum scone_err err;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return scone_err_set(scone_err_from_errno(errno), "%s: %s", path, strerror(errno));
	err = scone_exec_inspect_fd(fd, out);
	close(fd);
	if (err)
		return scone_err_set(err, "%s: %s", path, scone_err_detail());
	return SCONE_ERR_OK;
}

static bool executable_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

bool scone_exec_find(const char *file, const char *path_env, char *out, size_t size)
{
	const char *p = path_env && *path_env ? path_env : "/bin:/usr/bin";

	if (!*file)
		return false;
	if (strchr(file, '/'))
		return (size_t)snprintf(out, size, "%s", file) < size;
	for (;;) {
		size_t n = strcspn(p, ":");
		if ((size_t)snprintf(out, size, "%.*s%s%s", (int)n, n ? p : ".", "/", file) < size &&
		    executable_file(out))
			return true;
		if (!p[n])
			return false;
		p += n + 1;
	}
}

/* Is path the same file as loader (NULL: any)? */
static bool same_loader(const char *path, const char *loader)
{
	struct stat a, b;

	if (!loader)
		return true;
	return stat(path, &a) == 0 && stat(loader, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

enum scone_err scone_exec_check_runtime(const char *path, const char *loader)
{
	struct scone_exec_info info;
	char cur[PATH_MAX];

	snprintf(cur, sizeof(cur), "%s", path);
	for (int depth = 0; depth <= 4; depth++) {
		/* The loader run as a program ("ld.so PROG") honours LD_PRELOAD like any loaded program. */
		if (loader && same_loader(cur, loader))
			return SCONE_ERR_OK;
		SCONE_TRY(scone_exec_inspect(cur, &info));
		switch (info.kind) {
		case SCONE_EXEC_SCRIPT:
			snprintf(cur, sizeof(cur), "%s", info.interp);
			continue;
		case SCONE_EXEC_DYNAMIC:
			if (same_loader(info.interp, loader))
				return SCONE_ERR_OK;
			return scone_err_set(
			    SCONE_ERR_UNSUPPORTED,
			    "%s uses the loader %s, not the runtime's %s: the runtime cannot be loaded "
			    "into it",
			    cur, info.interp, loader);
		case SCONE_EXEC_OTHER:
			/* The kernel refuses it (ENOEXEC); execvp and shells then run it with /bin/sh. */
			return SCONE_ERR_OK;
		default:
			return scone_err_set(
			    SCONE_ERR_UNSUPPORTED,
			    "%s is %s: the runtime cannot be preloaded into it, so it would run without "
			    "its secrets and shields",
			    cur, scone_exec_kind_name(info.kind));
		}
	}
	return scone_err_set(SCONE_ERR_UNSUPPORTED, "%s: more than 4 levels of \"#!\" interpreters", path);
}

bool scone_own_loader(char *out, size_t size)
{
	const ElfW(Phdr) *ph = (const ElfW(Phdr) *)getauxval(AT_PHDR);
	size_t n = getauxval(AT_PHNUM);
	uintptr_t base = 0;

	if (!ph)
		return false;
	for (size_t i = 0; i < n; i++)
		if (ph[i].p_type == PT_PHDR)
			base = (uintptr_t)ph - ph[i].p_vaddr;
	for (size_t i = 0; i < n; i++)
		if (ph[i].p_type == PT_INTERP)
			return (size_t)snprintf(out, size, "%s", (const char *)(base + ph[i].p_vaddr)) < size;
	return false;
}
