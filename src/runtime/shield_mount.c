/*
 * shield_mount.c - mounting the session's volumes (and an fspf) before main:
 * the volumes opened with CAS's keys and tags, their shared state, who
 * serves them; and across exec, what the next program's runtime is handed
 * (the volumes' tags and state, the fds its kinds record) and takes over.
 */
#undef _FORTIFY_SOURCE
#include "lib/log.h"
#include "runtime/shield_internal.h"
#include "runtime/rt.h"
#include "volume/vio.h"

#include <sys/resource.h>

/*
 * Open flags of the session's volumes: SCONE_VOLUME_REDO=1 (a setting of
 * the session, or the environment) makes each commit carry the blocks it
 * wrote in its record, one flush per commit (docs/databases.md).
 */
unsigned shield_volume_flags(void)
{
	const char *v = scone_runtime_setting(scone_rt()->cfg, "SCONE_VOLUME_REDO");

	if (!v)
		v = getenv("SCONE_VOLUME_REDO");
	return v && strcmp(v, "1") == 0 ? SCONE_VOL_REDO : 0;
}

/* The mount point's directories, made through the real mkdir (a signal's EINTR retried). */
static enum scone_err make_dirs(char *path)
{
	for (char *p = path + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		int r;
		while ((r = SYS(mkdir)(path, 0700)) != 0 && errno == EINTR)
			;
		int e = errno;
		*p = c;
		if (r != 0 && e != EEXIST)
			return scone_err_set(scone_err_from_errno(e), "volume mount point %s: %s", path,
					     strerror(e));
		if (c == '\0')
			return SCONE_ERR_OK;
	}
}

/* Mount rv at m; the volume itself is opened only by the process that holds it (hold). */
static enum scone_err mount_one(const struct scone_rt_volume *rv, struct mount *m, bool hold)
{
	char fspf[PATH_MAX];
	uint8_t key_out[SCONE_VOLUME_KEY_SIZE];
	uint8_t tag[SCONE_RT_TAG_SIZE];
	enum scone_err err;

	if (!rv->path || rv->path[0] != '/' || strlen(rv->path) >= PATH_MAX - 16)
		return scone_err_set(SCONE_ERR_INVALID, "volume %s: mount point is not an absolute path",
				     rv->name);
	m->path = strdup(rv->path);
	if (!m->path)
		return scone_err_set(SCONE_ERR_NOMEM, "volume %s", rv->name);
	scone_path_normalise(m->path);
	m->len = strcmp(m->path, "/") == 0 ? 0 : strlen(m->path);
	m->name = rv->name;
	m->tracked = rv->tag_tracked;
	if (!(m->key = scone_secure_alloc(SCONE_VOLUME_KEY_SIZE)))
		return scone_err_set(SCONE_ERR_NOMEM, "volume %s", rv->name);
	memcpy(m->key, rv->key, SCONE_VOLUME_KEY_SIZE);
	if ((err = make_dirs(m->path)))
		return err;
	if (!(m->ids = calloc(1, sizeof(*m->ids))))
		return scone_err_set(SCONE_ERR_NOMEM, "volume %s", rv->name);
	m->n_ids = 1;
	shield_note_dir(m, 0, m->path);
	{
		char real[PATH_MAX];
		if (SYS(realpath)(m->path, real) && strcmp(real, m->path) != 0 &&
		    !(m->real_path = strdup(real)))
			return scone_err_set(SCONE_ERR_NOMEM, "volume %s", rv->name);
	}
	snprintf(fspf, sizeof(fspf), "%s/volume.fspf", m->path);
	if (!(m->fspf = strdup(fspf)))
		return scone_err_set(SCONE_ERR_NOMEM, "volume %s", rv->name);
	if (!hold)
		return SCONE_ERR_OK;
	if (!rv->initialised) {
		if ((err = scone_volume_create(fspf)))
			return scone_err_set(err,
					     "volume %s: CAS has no tag for it, but %s cannot be created: %s",
					     rv->name, fspf, scone_err_detail());
		if ((err = scone_volume_open(fspf, NULL, NULL, SCONE_VOL_RDWR | SCONE_VOL_ALLOW_UNSEALED,
					     &m->vol)))
			return err;
		err =
		    scone_volume_add_region(m->vol, "/", SCONE_REGION_ENCRYPTED, SCONE_STORE_KERNEL, m->path);
		if (!err)
			err = scone_volume_seal(m->vol, rv->key, key_out, tag);
		scone_wipe(key_out, sizeof(key_out));
		if (err)
			return err;
		m->dirty = false;
		return shield_report(m);
	}
	if ((err =
		 scone_volume_open(fspf, rv->key, rv->tag, SCONE_VOL_RDWR | shield_volume_flags(), &m->vol)))
		return scone_err_set(err, "volume %s at %s: %s", rv->name, m->path, scone_err_detail());
	shield_know_tag(m, rv->tag);
	/* The disk may be one sync ahead of CAS (a writer that stopped before reporting). */
	return shield_report(m);
}

/*
 * The shared state of n volumes: a MAP_SHARED memfd, fresh (fd < 0) or the
 * one a parent handed over across exec.
 */
static struct vshare *g_share;

/* (shield_internal.h) */
bool shield_read_small(const char *path, char *out, size_t n)
{
	int fd = SYS(open)(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	struct stat st;
	ssize_t got = -1;

	if (fd < 0)
		return false;
	if (SYS(fstat)(fd, &st) == 0 && S_ISREG(st.st_mode))
		got = SYS(read)(fd, out, n);
	SYS(close)(fd);
	if (got <= 0 || (size_t)got >= n)
		return false;
	out[got] = '\0';
	return true;
}

/* Lower *mb to the limit in FILE of cgroup rel under root and of each cgroup above it. */
static void cgroup_cap(uint64_t *mb, const char *root, const char *cgroup, const char *file)
{
	char rel[PATH_MAX], path[2 * PATH_MAX], num[64], *end, *slash;
	unsigned long long bytes;

	if (snprintf(rel, sizeof(rel), "%s", cgroup) >= (int)sizeof(rel) || rel[0] != '/')
		return;
	for (;;) {
		snprintf(path, sizeof(path), "%s%s/%s", root, strcmp(rel, "/") == 0 ? "" : rel, file);
		if (shield_read_small(path, num, sizeof(num)) &&
		    (bytes = strtoull(num, &end, 10), end != num) && (*end == '\n' || !*end) &&
		    (bytes >> 20) < *mb)
			*mb = bytes >> 20; /* ("max", v2's no limit, is no number) */
		slash = strrchr(rel, '/');
		if (slash == rel && rel[1] == '\0')
			return;
		if (slash == rel)
			rel[1] = '\0';
		else
			*slash = '\0';
	}
}

/*
 * The memory this process may use, in MiB: the machine's, or less where its
 * cgroup or one above it has a memory limit (v2 memory.max, v1
 * memory.limit_in_bytes): the cache's pages are shared memory, charged to
 * the cgroup, and not given back under pressure as the page cache is; and
 * no more than an address-space limit leaves. 0 when /proc/self/cgroup
 * cannot be read whole.
 */
static uint64_t memory_mb(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
	uint64_t mb = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page >> 20 : UINT64_MAX;
	char list[16384], *save = NULL;
	struct rlimit as;

	/* The address space a limit leaves (ulimit -v): the cache is mapped whole. */
	if (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY && (as.rlim_cur >> 20) < mb)
		mb = as.rlim_cur >> 20;
	if (!shield_read_small("/proc/self/cgroup", list, sizeof(list)))
		return 0; /* (unknown: the smallest default) */
	for (char *line = strtok_r(list, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *ctl = strchr(line, ':'), *cg = ctl ? strchr(ctl + 1, ':') : NULL;
		if (!cg)
			continue;
		*cg++ = '\0';
		ctl++;
		if (strcmp(line, "0") == 0 && *ctl == '\0')
			cgroup_cap(&mb, "/sys/fs/cgroup", cg, "memory.max");
		else if (strcmp(ctl, "memory") == 0 || strncmp(ctl, "memory,", 7) == 0 ||
			 strstr(ctl, ",memory"))
			cgroup_cap(&mb, "/sys/fs/cgroup/memory", cg, "memory.limit_in_bytes");
	}
	return mb;
}

/*
 * The default size: 1/32 of memory_mb(), from VCACHE_DEFAULT_MB to
 * VCACHE_AUTO_MAX_MB, a power of two (the cache's slots are). Like the
 * kernel's page cache, which serves the same reads without the runtime, it
 * takes pages only as it fills.
 */
static size_t default_cache_mb(void)
{
	uint64_t want = memory_mb() / 32;
	size_t mb = VCACHE_DEFAULT_MB;

	while (mb < VCACHE_AUTO_MAX_MB && (uint64_t)mb * 2 <= want)
		mb *= 2;
	return mb;
}

/* SCONE_READ_CACHE_MB: the shared read cache's size (vcache.h; 0 turns it off). */
static size_t read_cache_mb(const struct scone_runtime_config *cfg)
{
	const char *v = scone_runtime_setting(cfg, "SCONE_READ_CACHE_MB");
	char *end;
	long mb;

	if (!v)
		v = getenv("SCONE_READ_CACHE_MB");
	if (!v || !*v)
		return default_cache_mb();
	mb = strtol(v, &end, 10);
	if (*end || mb < 0 || mb > VCACHE_MAX_MB) {
		size_t d = default_cache_mb();
		scone_warn("SCONE_READ_CACHE_MB=%.16s: not 0 to %d; the read cache has %zu MiB", v,
			   VCACHE_MAX_MB, d);
		return d;
	}
	return (size_t)mb;
}

/* Can fd's size no longer shrink (a memfd sealed so)? */
static bool size_sealed(int fd)
{
	int seals = SYS(fcntl)(fd, F_GET_SEALS);

	return seals >= 0 && (seals & F_SEAL_SHRINK);
}

static enum scone_err share_map(size_t n, int fd, size_t cache_mb)
{
	REAL(close);
	size_t head = (sizeof(struct vsrv_shared) + n * sizeof(struct vshare) + 4095) & ~(size_t)4095;
	size_t size = (head + vcache_size(cache_mb) + 4095) & ~(size_t)4095;
	bool fresh = fd < 0;
	struct stat st;
	void *p;

	if (fresh) {
		/*
		 * Its size sealed: every process maps it whole, and one that shrank it
		 * would make the others' reads of the cache fault (SIGBUS).
		 */
		fd = scone_shield_fd_up(memfd_create("scone-volumes", MFD_CLOEXEC | MFD_ALLOW_SEALING));
		if (fd < 0 || ftruncate(fd, (off_t)size) != 0 ||
		    SYS(fcntl)(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
			int e = errno;
			if (fd >= 0)
				real_close(fd);
			return scone_err_set(scone_err_from_errno(e), "volumes: shared state: %s",
					     strerror(e));
		}
	} else if (fstat(fd, &st) != 0 || (size_t)st.st_size < head + vcache_size(0) ||
		   (size_t)st.st_size > head + vcache_size(VCACHE_MAX_MB) + 4096) {
		return scone_err_set(SCONE_ERR_INVALID, "volumes: the handed-over shared state does not fit");
	} else if (!size_sealed(fd)) {
		return scone_err_set(SCONE_ERR_INVALID,
				     "volumes: the handed-over shared state is not sealed against shrinking");
	} else {
		size = (size_t)st.st_size; /* its read cache as the first process laid it out */
		/* Inherited across exec without CLOEXEC: an unshielded program exec'd later must not get it.
		 */
		(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
		fd = scone_shield_fd_up(fd); /* (it came in at the lowest free number) */
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		int e = errno;
		real_close(fd);
		return scone_err_set(scone_err_from_errno(e), "volumes: shared state: %s", strerror(e));
	}
	/* The read cache holds plaintext: never in a core dump (docs/runtime.md). */
	(void)madvise(p, size, MADV_DONTDUMP);
	if (!vcache_attach((uint8_t *)p + head, size - head, fresh ? cache_mb : VCACHE_MAPPED)) {
		munmap(p, size);
		real_close(fd);
		return scone_err_set(SCONE_ERR_INVALID, "volumes: the handed-over read cache does not fit");
	}
	if (fresh) { /* the windows' mailbox: made with the shared state, as every process has it */
		enum scone_err err = shield_map_mailbox_new();
		if (err) {
			munmap(p, size);
			real_close(fd);
			return err;
		}
	}
	shield_g.srv = p;
	g_share = (struct vshare *)(void *)((struct vsrv_shared *)p + 1);
	shield_g.share_fd = fd;
	vsrv_register(shield_g.srv);
	return SCONE_ERR_OK;
}

/*
 * Mount a protection file made with `scone fspf` (SCONE_FSPF, or a session's
 * fspf_path): each of its regions is shielded under its own path. Its tag
 * is not tracked by CAS: without one the freshness is not checked (a
 * warning says so), and a changed tag is printed at exit for the next run.
 */
static enum scone_err mount_fspf(const struct scone_rt_fspf *f, struct mount *m, bool hold)
{
	char full[PATH_MAX];
	char *slash;
	enum scone_err err;
	size_t n;

	m->name = "fspf";
	m->tracked = false;
	if (!f->has_key)
		return scone_err_set(SCONE_ERR_INVALID, "fspf %s: no key (SCONE_FSPF_KEY)", f->path);
	if (!scone_shield_abspath(AT_FDCWD, f->path, full, sizeof(full)))
		return scone_err_set(SCONE_ERR_NAME_TOO_LONG, "fspf %s: path too long", f->path);
	if (!(m->fspf = strdup(full)) || !(m->path = strdup(full)) ||
	    !(m->key = scone_secure_alloc(SCONE_VOLUME_KEY_SIZE)))
		return scone_err_set(SCONE_ERR_NOMEM, "fspf %s", f->path);
	slash = strrchr(m->path, '/');
	slash[slash == m->path ? 1 : 0] = '\0';
	m->len = strlen(m->path);
	memcpy(m->key, f->key, SCONE_VOLUME_KEY_SIZE);
	if (!f->has_tag)
		scone_warn("fspf %s opened without SCONE_FSPF_TAG: an older copy would not be noticed", full);
	/* A process served by another reads only the regions (where its paths go), then lets go. */
	if ((err = scone_volume_open(full, f->key, f->has_tag ? f->tag : NULL,
				     hold ? SCONE_VOL_RDWR : SCONE_VOL_RDONLY, &m->vol)))
		return scone_err_set(err, "fspf %s: %s", full, scone_err_detail());
	n = scone_volume_region_count(m->vol);
	if (n == 0 || !(m->prefixes = calloc(n, sizeof(*m->prefixes))) ||
	    !(m->ids = calloc(n, sizeof(*m->ids))))
		return scone_err_set(n ? SCONE_ERR_NOMEM : SCONE_ERR_INVALID, "fspf %s: %s", full,
				     n ? "out of memory" : "it has no regions");
	for (size_t i = 0; i < n; i++) {
		struct scone_region_info info;
		scone_volume_region(m->vol, i, &info);
		if (!(m->prefixes[i] = strdup(info.path)))
			return scone_err_set(SCONE_ERR_NOMEM, "fspf %s", full);
		m->n_prefixes++;
		m->n_ids++;
		shield_note_dir(m, i, info.path); /* a region whose path is also a host directory */
	}
	scone_volume_tag(m->vol, m->first_tag);
	if (!hold) {
		scone_volume_abandon(m->vol);
		m->vol = NULL;
		return SCONE_ERR_OK;
	}
	shield_know_tag(m, m->first_tag);
	return SCONE_ERR_OK;
}

/*
 * The tag a parent handed over for the mount named name into tag: the shared
 * state's when the parent handed that over (it is the newest), else the one
 * in its record; false when there is none.
 */
static bool handed_tag(const struct scone_handover *h, const char *name, const struct vshare *sh,
		       uint8_t tag[SCONE_RT_TAG_SIZE])
{
	bool known = false;

	for (size_t k = 0; k < h->volume_count; k++) {
		if (strcmp(h->volumes[k].name, name) != 0 || !h->volumes[k].has_tag)
			continue;
		memcpy(tag, h->volumes[k].tag, SCONE_RT_TAG_SIZE);
		known = true;
	}
	if (h->share_fd >= 0 && sh->has_tag) {
		memcpy(tag, sh->tag, SCONE_RT_TAG_SIZE);
		known = true;
	}
	return known;
}

/*
 * Does this process hold the volumes (true) or is it served by another?
 * A program exec'd with a connection is served over it; one exec'd by a
 * server that had clients joins a server that is still there (a client
 * that took over first), else it serves; any other holds them.
 */
static bool decide_role(const struct scone_handover *h)
{
	bool hold = true;
	int lfd;

	if (h && h->conn_fd >= 0) {
		vsrv_use_conn(shield_g.srv, h->conn_fd);
		return false;
	}
	if (!h || !h->shared || (lfd = shield_lock_fd(&shield_g.mounts[0])) < 0)
		return true;
	while (SYS(flock)(lfd, LOCK_EX) != 0 && errno == EINTR)
		;
	if (shield_g.srv->pid > 0 && shield_g.srv->pid != getpid() && vsrv_server_runs(shield_g.srv->pid) &&
	    vsrv_join(shield_g.srv) == SCONE_ERR_OK)
		hold = false;
	scone_err_clear();
	if (hold)
		shield_g.election_held = true; /* released once this process serves */
	else
		(void)SYS(flock)(lfd, LOCK_UN);
	return hold;
}

/* The volume library's host files: in the runtime's range (never on stdio) and marked the runtime's own. */
static int own_open(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;
	int fd, hi, e;

	va_start(ap, flags);
	mode = (flags & O_CREAT) ? (mode_t)va_arg(ap, int) : 0;
	va_end(ap);
	/* (a vfork child's fd would be recorded, and marked own, in its parent's memory) */
	if (fdtab_foreign()) {
		errno = ENOTSUP;
		return -1;
	}
	fd = SYS(open)(path, flags, mode);
	if (fd < 0 && errno == EMFILE) { /* (the kept placeholders' fds are the program's first) */
		shield_placeholders_drain();
		fd = SYS(open)(path, flags, mode);
	}
	fd = scone_shield_fd_up(fd);
	if (fd >= 0 && fd <= 2) { /* (no room up there: at least not on stdio) */
		hi = SYS(fcntl)(fd, F_DUPFD_CLOEXEC, 3);
		e = errno;
		SYS(close)(fd);
		errno = e;
		fd = hi;
	}
	shield_own_mark(fd, true);
	return fd;
}

static int own_close(int fd)
{
	if (fdtab_foreign())
		return 0; /* the parent's file: the child's copy goes with its exec or exit */
	return shield_own_close(fd);
}

/* The volume library's host I/O goes to libc itself, never through the runtime's interposers. */
static void volume_io_unshielded(void)
{
	static struct scone_vio_sys sys;

	sys = (struct scone_vio_sys){
	    .open = own_open,
	    .close = own_close,
	    .pread = SYS(pread),
	    .pwrite = SYS(pwrite),
	    .ftruncate = SYS(ftruncate),
	    .fstat = SYS(fstat),
	    .fsync = SYS(fsync),
	    .fdatasync = SYS(fdatasync),
	    .unlink = SYS(unlink),
	    .rename = SYS(rename),
	    .mkdir = SYS(mkdir),
	    .opendir = SYS(opendir),
	    .readdir = SYS(readdir),
	    .closedir = SYS(closedir),
	};
	scone_vio_host_sys(&sys);
}

static enum scone_err mount_all(struct scone_runtime_config *cfg, const struct scone_handover *h)
{
	enum scone_err err = SCONE_ERR_OK;
	size_t i;
	bool hold;

	volume_io_unshielded();
	size_t total = cfg->volume_count + (cfg->fspf ? 1 : 0), cache_mb;

	shield_g.mounts = calloc(total, sizeof(*shield_g.mounts));
	if (!shield_g.mounts)
		return scone_err_set(SCONE_ERR_NOMEM, "volumes");
	shield_g.pid = getpid();
	fdtab_own();
	cache_mb = h ? 0 : read_cache_mb(cfg); /* (a handed-over cache keeps its size) */
	if (h && h->share_fd >= 0)
		shield_map_mailbox(h->mail[0], h->mail[1]);
	if ((err = share_map(total, h ? h->share_fd : -1, cache_mb)))
		return err;
	if (!h)
		scone_info("runtime: the volumes' shared read cache: %zu MiB", cache_mb);
	for (i = 0; i < total; i++) {
		shield_g.mounts[i].sh = &g_share[i];
		shield_g.mounts[i].lock_fd = -1;
		shield_g.mounts[i].plock_fd = -1;
		if (h && i < cfg->volume_count)
			cfg->volumes[i].initialised =
			    handed_tag(h, cfg->volumes[i].name, shield_g.mounts[i].sh, cfg->volumes[i].tag);
		else if (h)
			cfg->fspf->has_tag |= handed_tag(h, "fspf", shield_g.mounts[i].sh, cfg->fspf->tag);
		if (i < cfg->volume_count &&
		    !(shield_g.mounts[i].path = strdup(cfg->volumes[i].path ? cfg->volumes[i].path : "")))
			return scone_err_set(SCONE_ERR_NOMEM, "volumes");
	}
	shield_enter();
	hold = decide_role(h);
	for (i = 0; i < total && !err; i++) {
		free(shield_g.mounts[i].path); /* set again by the mount */
		shield_g.mounts[i].path = NULL;
		err = i < cfg->volume_count ? mount_one(&cfg->volumes[i], &shield_g.mounts[i], hold)
					    : mount_fspf(cfg->fspf, &shield_g.mounts[i], hold);
	}
	if (!err && hold)
		err = shield_report_settle_all(); /* main starts from a tag CAS has */
	if (!err && hold)
		err = vsrv_serve(shield_g.srv, !h, h && h->shared);
	if (shield_g.election_held) {
		(void)SYS(flock)(shield_lock_fd(&shield_g.mounts[0]), LOCK_UN);
		shield_g.election_held = false;
	}
	shield_leave();
	if (err) {
		char detail[512];
		snprintf(detail, sizeof(detail), "%s", scone_err_detail());
		for (size_t j = 0; j < i; j++) {
			if (shield_g.mounts[j].vol && scone_volume_close(shield_g.mounts[j].vol, NULL))
				scone_err_clear(); /* the mount error is the one to report */
			free(shield_g.mounts[j].path);
		}
		for (size_t j = 0; j < total; j++) {
			scone_secure_free(shield_g.mounts[j].key, SCONE_VOLUME_KEY_SIZE);
			free(shield_g.mounts[j].fspf);
			for (size_t k = 0; k < shield_g.mounts[j].n_prefixes; k++)
				free(shield_g.mounts[j].prefixes[k]);
			free(shield_g.mounts[j].prefixes);
			free(shield_g.mounts[j].ids);
			free(shield_g.mounts[j].real_path);
		}
		scone_err_set(err, "%s", detail);
		free(shield_g.mounts);
		shield_g.mounts = NULL;
		return err;
	}
	for (i = 0; i < cfg->volume_count; i++) /* the volumes hold their own copies */
		scone_wipe(cfg->volumes[i].key, sizeof(cfg->volumes[i].key));
	if (cfg->fspf)
		scone_wipe(cfg->fspf->key, sizeof(cfg->fspf->key));
	if (atexit(shield_exit) != 0 ||
	    pthread_atfork(shield_at_prepare, shield_at_parent, shield_at_child) != 0)
		return scone_err_set(SCONE_ERR_NOMEM, "volumes: atexit");
	__atomic_store_n(&shield_g.n_mounts, total, __ATOMIC_RELEASE);
	if (hold && h) { /* the windows the program before left: taken over if others may map them */
		shield_enter();
		shield_map_holding(h->shared);
		shield_leave();
	}
	return SCONE_ERR_OK;
}

enum scone_err scone_shield_mount(void)
{
	struct scone_runtime_config *cfg = scone_rt()->cfg;

	if (cfg->volume_count == 0 && !cfg->fspf)
		return SCONE_ERR_OK;
	return mount_all(cfg, NULL);
}

/* ---- exec: handing the volumes to the next program ---- */

bool scone_memfd_named(int fd, const char *name)
{
	char proc[64], link[128], want[96];
	ssize_t n;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	snprintf(want, sizeof(want), "/memfd:%s (deleted)", name);
	n = readlink(proc, link, sizeof(link) - 1);
	if (n < 0)
		return false;
	link[n] = '\0';
	return strcmp(link, want) == 0;
}

/* Open s's file again by its path when next used (an exec'd program's inherited fd). */
static void reopen_file(struct sfd *s)
{
	s->file = true;
	s->vf_reopen = shield_vf_flags(s->flags & ~(O_CREAT | O_EXCL | O_TRUNC));
}

/*
 * The record of the placeholder the inherited fd is now, by its identity,
 * or -1: the fd a record names may hold another record's placeholder (a
 * dup made before the exec, or a spawn's file action dup2'ing one fd onto
 * another after the handover was written), or no placeholder at all.
 */
static long record_of(const struct scone_handover *h, int fd)
{
	struct stat st;

	if (SYS(fstat)(fd, &st) != 0)
		return -1;
	for (size_t j = 0; j < h->fd_count; j++)
		if (h->fds[j].dev == (uint64_t)st.st_dev && h->fds[j].ino == (uint64_t)st.st_ino)
			return (long)j;
	return -1;
}

/* A description for record r's file, as the previous program had it. */
static struct sfd *adopted(const struct scone_handover_fd *r)
{
	struct sfd *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	fdtab_desc_init(&s->base, &shield_volume_kind);
	s->m = &shield_g.mounts[r->volume];
	s->flags = r->flags;
	snprintf(s->vpath, sizeof(s->vpath), "%s", r->vpath);
	s->file = !r->dir;
	s->has_fid = r->has_fid; /* (not pinned: its first use opens it on the server) */
	memcpy(s->fid, r->fid, sizeof(s->fid));
	if (s->file)
		reopen_file(s);
	return s;
}

/* Take over inherited fd, if it holds a placeholder h describes (made: the descriptions so far, by record).
 */
static enum scone_err adopt_one(const struct scone_handover *h, int fd, struct fd_desc **made)
{
	long src;
	struct sfd *s;

	if (fd < 0 || fdtab_peek(fd) || !scone_memfd_named(fd, SHIELD_PLACEHOLDER) ||
	    (src = record_of(h, fd)) < 0)
		return SCONE_ERR_OK; /* closed or reused on the way: nothing to take over */
	if (made[src]) {
		(void)fdtab_share(fd, made[src]); /* one description, as before the exec */
		return SCONE_ERR_OK;
	}
	if (!(s = adopted(&h->fds[src])))
		return scone_err_set(SCONE_ERR_NOMEM, "inherited fd %d", fd);
	if (!fdtab_note(&s->base, fd) || !fdtab_install(fd, &s->base)) {
		free(s);
		return SCONE_ERR_OK; /* (a placeholder the table cannot hold stays an empty memfd) */
	}
	made[src] = &s->base;
	s->m->open_count++;
	return SCONE_ERR_OK;
}

/*
 * Take over the fds the previous program left open on the volumes (before
 * main): at the numbers the records name, and, after a spawn whose file
 * actions may have put a placeholder at any number, wherever one is.
 */
static enum scone_err adopt_fds(const struct scone_handover *h)
{
	struct fd_desc **made = calloc(h->fd_count ? h->fd_count : 1, sizeof(*made));
	enum scone_err err = SCONE_ERR_OK;
	bool spawned = false;

	if (!made)
		return scone_err_set(SCONE_ERR_NOMEM, "inherited fds");
	for (size_t i = 0; i < h->fd_count && !err; i++) {
		spawned = spawned || h->fds[i].cloexec;
		err = adopt_one(h, h->fds[i].fd, made);
	}
	if (!err && spawned) {
		DIR *dir = SYS(opendir)("/proc/self/fd");
		struct dirent *e;
		int own = dir ? dirfd(dir) : -1;
		while (dir && !err && (e = SYS(readdir)(dir))) {
			char *end;
			long fd = strtol(e->d_name, &end, 10);
			if (!*end && end != e->d_name && fd >= 0 && fd <= INT_MAX && fd != own)
				err = adopt_one(h, (int)fd, made);
		}
		if (dir)
			SYS(closedir)(dir);
	}
	free(made);
	return err;
}

enum scone_err scone_shield_mount_handover(const struct scone_handover *h)
{
	struct scone_runtime_config *cfg = scone_rt()->cfg;
	enum scone_err err;

	if (cfg->volume_count == 0 && !cfg->fspf)
		return SCONE_ERR_OK;
	if ((err = mount_all(cfg, h)))
		return err;
	shield_enter();
	err = adopt_fds(h);
	shield_leave();
	fdtab_reap();
	for (int fd = 0; fd <= 2 && !err; fd++) /* stdio on an inherited volume file (coreutils' echo > f) */
		shield_std_stream(fd);
	if (!err && h->cwd)
		shield_set_vcwd(h->cwd);
	return err;
}

/*
 * Walking the table for an exec's handover: what the kinds of the
 * inheritable fds record; for a spawn (or a vfork child's exec) also the
 * others, close-on-exec or already closed in the child (a file action, or
 * the child itself, may have dup2'ed one onto a number the new program
 * keeps: it finds them by their placeholders), as far as the handover has
 * room.
 */
struct handover_walk {
	struct scone_handover *h;
	bool spawn;
	enum scone_err err;
};

static void handover_one(int fd, struct fd_desc *d, void *arg)
{
	struct handover_walk *w = arg;
	int fl, e;
	bool kept;

	if (w->err || !d->kind->handover)
		return;
	kept = fdtab_is(fd, d) && (fl = SYS(fcntl)(fd, F_GETFD)) >= 0 && !(fl & FD_CLOEXEC);
	if (!kept && (!w->spawn || w->h->fd_count >= SCONE_HANDOVER_MAX_FDS / 2))
		return;
	if ((e = d->kind->handover(d, fd, w->h)))
		w->err = scone_err_set(scone_err_from_errno(e), "exec: fd %d: %s", fd, strerror(e));
	else if (!kept)
		w->h->fds[w->h->fd_count - 1].cloexec = true;
}

static enum scone_err handover_fds(struct scone_handover *h, bool spawn)
{
	struct handover_walk w = {.h = h, .spawn = spawn};

	fdtab_each(handover_one, &w);
	return w.err;
}

/* A server the exec replaces: its n volumes committed and their reports confirmed. (lock held) */
static enum scone_err commit_replaced(size_t n)
{
	enum scone_err err = SCONE_ERR_OK;

	for (size_t i = 0; i < n && !err; i++)
		err = shield_commit(&shield_g.mounts[i]);
	return err ? err : shield_report_settle_all();
}

enum scone_err scone_shield_handover(struct scone_handover *h, bool spawn, struct scone_wbuf *identity,
				     int pass[SCONE_HANDOVER_PASSED], int *conn_dup)
{
	REAL(fcntl);
	REAL(close);
	enum scone_err err = SCONE_ERR_OK;
	size_t n = __atomic_load_n(&shield_g.n_mounts, __ATOMIC_ACQUIRE);

	int *share_dup = &pass[0];

	pass[0] = pass[1] = pass[2] = *conn_dup = -1;
	if (n == 0)
		return SCONE_ERR_OK;
	/* A vfork child shares the caller's memory: the caller goes on beside the new program too. */
	spawn = spawn || getpid() != shield_g.pid;
	shield_enter();
	/*
	 * What the handover records is the new program's, by its placeholder:
	 * never kept for another file, also when another thread closes it
	 * before the exec (a spawn: the caller goes on beside the new program).
	 */
	scone_shield_placeholders_shared();
	/*
	 * A server replaced by the new program: the volumes as committed, which
	 * the new program finds when it comes to hold them. (A spawn, or a vfork
	 * child whose fds subprocess modules closed, leaves them to the server.)
	 */
	if (vsrv_role() == VR_SERVER && !spawn)
		err = commit_replaced(n);
	/* Served by the process that goes on (this one, or the server), over a connection of its own. */
	if (!err && (spawn || vsrv_role() == VR_CLIENT))
		err = vsrv_new_conn(conn_dup);
	/*
	 * A client whose server had left (a shell that ran `prog & exit`) was
	 * elected while asking for that connection: it holds the volumes now,
	 * and the exec replaces it as it replaces any server. A connection to
	 * itself would leave the new program a client of a server that is gone
	 * with the exec (it then took itself for a dead server and ended the
	 * program).
	 */
	if (!err && !spawn && vsrv_role() == VR_SERVER && *conn_dup >= 0) {
		real_close(*conn_dup);
		*conn_dup = -1;
		err = commit_replaced(n);
	}
	if (!err && !(h->volumes = calloc(n, sizeof(*h->volumes))))
		err = scone_err_set(SCONE_ERR_NOMEM, "exec: volumes");
	for (size_t i = 0; !err && i < n; i++) {
		h->volumes[i].name = (char *)shield_g.mounts[i].name;
		h->volumes[i].has_tag = shield_g.mounts[i].sh->has_tag;
		memcpy(h->volumes[i].tag, shield_g.mounts[i].sh->tag, sizeof(h->volumes[i].tag));
	}
	h->volume_count = err ? 0 : n;
	if (!err)
		err = handover_fds(h, spawn);
	if (!err)
		err = scone_identity_to_pem(&scone_rt()->id, identity);
	/* (passed along the handover's key socket, never inherited: handover_io.c) */
	if (!err && shield_g.share_fd >= 0)
		*share_dup = real_fcntl(shield_g.share_fd, F_DUPFD_CLOEXEC, 3);
	if (!err && shield_g.share_fd >= 0 && *share_dup < 0)
		err = scone_err_set(scone_err_from_errno(errno), "exec: volumes' shared state: %s",
				    strerror(errno));
	if (!err && *share_dup >= 0)
		shield_map_mailbox_dup(&pass[1]); /* (none: the next program's holder lets windows go) */
	if (!err) {
		h->identity = (char *)identity->data;
		h->identity_len = identity->size;
		h->share_fd = *share_dup;
		h->conn_fd = *conn_dup;
		char cwd[PATH_MAX];
		h->shared = vsrv_serving_others(); /* a server with clients execs: they elect, and so does the
						      new program */
		shield_vcwd(cwd);
		h->cwd = cwd[0] ? strdup(cwd) : NULL;
	}
	shield_leave();
	return err;
}
