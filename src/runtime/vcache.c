/*
 * vcache.c - the volumes' shared read cache (vcache.h): one writer (the
 * server, under the shield lock), readers in every process without a lock.
 *
 * A slot holds one key (mount, file id, block; VC_STAT for the status) and
 * is valid while its epoch is the cache's. Slots' keys sit together, their
 * data in page-aligned blocks of its own (slot i, block i): a lookup reads
 * one set's keys from a line or two, and a sparsely filled cache touches
 * one page per block it holds, not two. A key hashes to a set of
 * VC_WAYS slots and may sit in any of them: a few hundred small files in a
 * few thousand slots then rarely push each other out, as they did when
 * each key had one slot. The writer makes a slot's
 * sequence count odd, changes it, and makes it even again; a reader copies
 * and then checks that the count was even and unchanged (a seqlock), so it
 * never takes a half-written slot for a whole one.
 */
#include "runtime/vcache.h"

#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>

#define VC_STAT UINT64_MAX	 /* the block number of a file's status */
#define VC_NAME (UINT64_MAX - 1) /* of a path's file id (the entry's id: the path's hash) */
#define VC_WAYS 4u		 /* slots a key may take (a power of two; every layout has more) */
#define VC_PINS 1024u		 /* pin counters (vcache_pin), by a hash of the file */
#define VC_LAYOUT 0x53564303u	 /* "SVC", 3: 4-way sets, pins, slots' keys, then their data */

struct vc_slot {
	_Atomic uint32_t seq;
	_Atomic uint32_t len; /* valid bytes of data */
	_Atomic uint64_t epoch;
	_Atomic uint64_t block;
	uint8_t id[16];
	uint8_t mount;
	uint8_t pad[7];
};

struct vc_head {
	_Atomic uint64_t epoch;	     /* data and status slots of another epoch are empty */
	_Atomic uint64_t name_epoch; /* name slots of another are (a file's data outlives its names) */
	_Atomic uint32_t used;	     /* a slot was ever filled: writes have something to forget */
	uint32_t data_slots;	     /* blocks (a power of two), then */
	uint32_t meta_slots;	     /* status and names (a power of two): never pushed out by blocks */
	uint32_t clock;		     /* the writer's: which way of a full set a new key takes */
	uint32_t layout;	     /* VC_LAYOUT: a runtime that lays slots out otherwise refuses it */
	uint8_t pad[28];
};

static struct vc_head *g_head;		  /* NULL: no cache (none mapped, or 0 MiB) */
static _Atomic int32_t *g_pins;		  /* VC_PINS, after the head */
static struct vc_slot *g_data, *g_meta;	  /* the keys: g_meta follows g_data */
static uint8_t *g_blocks;		  /* their data, VCACHE_BLOCK each, in the same order */
static uint32_t g_data_mask, g_meta_mask; /* as checked at attach: never read again from shared memory */

/* The slots of a cache of mb MiB of blocks: a power of two, none for 0. */
static uint32_t data_slots_for(size_t mb)
{
	uint32_t n = 1;

	if (mb == 0)
		return 0;
	if (mb > VCACHE_MAX_MB)
		mb = VCACHE_MAX_MB;
	while ((size_t)n * 2 * VCACHE_BLOCK <= mb << 20)
		n *= 2;
	return n;
}

static uint32_t meta_slots_for(uint32_t data)
{
	return data == 0 ? 0 : data / 8 < 256 ? 256 : data / 8;
}

/* Where the data blocks start: after head, pins and keys, on a page of its own (the map is page-aligned). */
static size_t blocks_offset(uint32_t data, uint32_t meta)
{
	size_t keys = sizeof(struct vc_head) + VC_PINS * sizeof(int32_t) +
		      ((size_t)data + meta) * sizeof(struct vc_slot);

	return (keys + VCACHE_BLOCK - 1) & ~(size_t)(VCACHE_BLOCK - 1);
}

static size_t layout_size(uint32_t data, uint32_t meta)
{
	if (data == 0 && meta == 0)
		return sizeof(struct vc_head); /* no cache, no pins */
	return blocks_offset(data, meta) + ((size_t)data + meta) * VCACHE_BLOCK;
}

size_t vcache_size(size_t mb)
{
	uint32_t data = data_slots_for(mb);

	return layout_size(data, meta_slots_for(data));
}

static bool power_of_two(uint32_t n)
{
	return n && (n & (n - 1)) == 0;
}

bool vcache_attach(void *p, size_t bytes, size_t mb)
{
	struct vc_head *h = p;
	uint32_t data, meta; /* read once: another process may change the head after the checks */

	g_head = NULL;
	if (bytes < sizeof(*h))
		return false;
	if (mb != VCACHE_MAPPED) { /* a new cache: its layout goes into its head */
		h->data_slots = data_slots_for(mb);
		h->meta_slots = meta_slots_for(h->data_slots);
		h->layout = VC_LAYOUT;
		/* Epoch 0 is a forgotten slot's: no zeroed slot ever holds a key. */
		atomic_store_explicit(&h->epoch, 1, memory_order_relaxed);
		atomic_store_explicit(&h->name_epoch, 1, memory_order_relaxed);
	}
	data = __atomic_load_n(&h->data_slots, __ATOMIC_RELAXED);
	meta = __atomic_load_n(&h->meta_slots, __ATOMIC_RELAXED);
	if (data == 0 && meta == 0)
		return true; /* none */
	if (__atomic_load_n(&h->layout, __ATOMIC_RELAXED) != VC_LAYOUT || !power_of_two(data) ||
	    !power_of_two(meta) || data < VC_WAYS || meta < VC_WAYS || data > data_slots_for(VCACHE_MAX_MB) ||
	    meta > meta_slots_for(data) || layout_size(data, meta) > bytes)
		return false;
	g_data_mask = data - 1;
	g_meta_mask = meta - 1;
	g_pins = (_Atomic int32_t *)(void *)(h + 1);
	g_data = (struct vc_slot *)(void *)(g_pins + VC_PINS);
	g_meta = g_data + data;
	g_blocks = (uint8_t *)p + blocks_offset(data, meta);
	g_head = h;
	return true;
}

static uint64_t load64(const uint8_t *b)
{
	uint64_t v;

	memcpy(&v, b, sizeof(v));
	return v;
}

/* A slot's data block. */
static uint8_t *data_of(const struct vc_slot *s)
{
	return g_blocks + (size_t)(s - g_data) * VCACHE_BLOCK;
}

/* The first of the VC_WAYS slots key (mount, id, block) may take. */
static struct vc_slot *set_of(unsigned mount, const uint8_t id[16], uint64_t block)
{
	uint64_t h = load64(id) ^ (load64(id + 8) << 1) ^ ((uint64_t)mount << 56);

	h ^= (block + 1) * 0x9E3779B97F4A7C15ULL;
	h ^= h >> 29;
	h *= 0xBF58476D1CE4E5B9ULL;
	h ^= h >> 32;
	if (block >= VC_NAME)
		return &g_meta[h & g_meta_mask & ~(uint64_t)(VC_WAYS - 1)];
	return &g_data[h & g_data_mask & ~(uint64_t)(VC_WAYS - 1)];
}

/* ---- the writer ---- */

/*
 * Odd while written, even after, whatever the count was: a writer killed
 * in the middle (a crashed server) leaves it odd, and the next one must
 * still end on an even count.
 */
static void write_begin(struct vc_slot *s)
{
	atomic_store_explicit(&s->seq, atomic_load_explicit(&s->seq, memory_order_relaxed) | 1,
			      memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
}

static void write_end(struct vc_slot *s)
{
	atomic_store_explicit(&s->seq, (atomic_load_explicit(&s->seq, memory_order_relaxed) | 1) + 1,
			      memory_order_release);
}

/* The counter a slot of block is valid under. */
static _Atomic uint64_t *epoch_of(uint64_t block)
{
	return block == VC_NAME ? &g_head->name_epoch : &g_head->epoch;
}

static bool holds(const struct vc_slot *s, unsigned mount, const uint8_t id[16], uint64_t block,
		  uint64_t epoch)
{
	return atomic_load_explicit(&s->epoch, memory_order_relaxed) == epoch &&
	       atomic_load_explicit(&s->block, memory_order_relaxed) == block && s->mount == mount &&
	       memcmp(s->id, id, sizeof(s->id)) == 0;
}

/* The slot of set that holds the key now, or NULL (the writer's view: no slot changes under it). */
static struct vc_slot *find(struct vc_slot *set, unsigned mount, const uint8_t id[16], uint64_t block)
{
	uint64_t epoch = atomic_load_explicit(epoch_of(block), memory_order_relaxed);

	for (unsigned w = 0; w < VC_WAYS; w++)
		if (holds(&set[w], mount, id, block, epoch))
			return &set[w];
	return NULL;
}

/* Where a key goes: its own slot, else one holding nothing now, else the next way round. */
static struct vc_slot *place(struct vc_slot *set, unsigned mount, const uint8_t id[16], uint64_t block)
{
	struct vc_slot *s = find(set, mount, id, block);

	for (unsigned w = 0; !s && w < VC_WAYS; w++) {
		uint64_t held = atomic_load_explicit(&set[w].block, memory_order_relaxed);
		if (atomic_load_explicit(&set[w].epoch, memory_order_relaxed) !=
		    atomic_load_explicit(epoch_of(held), memory_order_relaxed))
			s = &set[w];
	}
	return s ? s : &set[g_head->clock++ % VC_WAYS];
}

static void put(unsigned mount, const uint8_t id[16], uint64_t block, const void *data, size_t len)
{
	struct vc_slot *s = place(set_of(mount, id, block), mount, id, block);

	write_begin(s);
	atomic_store_explicit(&s->epoch, atomic_load_explicit(epoch_of(block), memory_order_relaxed),
			      memory_order_relaxed);
	atomic_store_explicit(&s->block, block, memory_order_relaxed);
	atomic_store_explicit(&s->len, (uint32_t)len, memory_order_relaxed);
	memcpy(s->id, id, sizeof(s->id));
	s->mount = (uint8_t)mount;
	memcpy(data_of(s), data, len);
	write_end(s);
	if (!atomic_load_explicit(&g_head->used, memory_order_relaxed))
		atomic_store_explicit(&g_head->used, 1, memory_order_relaxed);
}

static void forget(unsigned mount, const uint8_t id[16], uint64_t block)
{
	struct vc_slot *s = find(set_of(mount, id, block), mount, id, block);

	if (!s)
		return;
	write_begin(s);
	atomic_store_explicit(&s->epoch, 0, memory_order_relaxed);
	write_end(s);
}

void vcache_put_stat(unsigned mount, const uint8_t id[16], const struct scone_vstat *st)
{
	struct scone_vstat copy;

	if (!g_head)
		return;
	memset(&copy, 0, sizeof(copy)); /* no stack bytes in the padding go to shared memory */
	copy.is_dir = st->is_dir;
	copy.size = st->size;
	copy.mode = st->mode;
	memcpy(copy.file_id, st->file_id, sizeof(copy.file_id));
	copy.mtime_ns = st->mtime_ns;
	put(mount, id, VC_STAT, &copy, sizeof(copy));
}

void vcache_put(unsigned mount, const uint8_t id[16], uint64_t off, const uint8_t *data, size_t n,
		uint64_t size)
{
	uint64_t end = off + n;

	if (!g_head)
		return;
	for (uint64_t b = (off + VCACHE_BLOCK - 1) / VCACHE_BLOCK; b * VCACHE_BLOCK < end; b++) {
		uint64_t at = b * VCACHE_BLOCK;
		size_t len = end - at < VCACHE_BLOCK ? (size_t)(end - at) : VCACHE_BLOCK;
		if (len < VCACHE_BLOCK && end != size)
			break; /* a part of a block that is not the file's last */
		put(mount, id, b, data + (at - off), len);
	}
}

void vcache_forget(unsigned mount, const uint8_t id[16], uint64_t off, uint64_t n)
{
	if (!g_head || !atomic_load_explicit(&g_head->used, memory_order_relaxed))
		return;
	forget(mount, id, VC_STAT);
	if (n > ((uint64_t)g_data_mask + 1) * VCACHE_BLOCK) {
		vcache_forget_all();
		return;
	}
	/*
	 * The blocks written. A cached last block that was short stays right:
	 * bytes past its length are never read from it.
	 */
	for (uint64_t b = off / VCACHE_BLOCK; b <= (off + n) / VCACHE_BLOCK; b++)
		forget(mount, id, b);
}

/*
 * A new epoch: a random one (not 0, a forgotten slot's, nor the current),
 * so that no slot the layout holds can be of it ahead of time. With the
 * next number instead, a layout handed over by a hostile or broken parent
 * could keep slots of epoch + 1 that a forget would bring to life (the
 * fuzzer found one). Epochs are only compared for equality.
 */
static void new_epoch(_Atomic uint64_t *epoch)
{
	uint64_t cur = atomic_load_explicit(epoch, memory_order_relaxed), next = 0;

	while (next == 0 || next == cur)
		if (getrandom(&next, sizeof(next), 0) != (ssize_t)sizeof(next))
			next = cur + 1 ? cur + 1 : 1; /* (no randomness: the next one, as before) */
	atomic_store_explicit(epoch, next, memory_order_release);
}

void vcache_forget_names(void)
{
	if (g_head)
		new_epoch(&g_head->name_epoch);
}

void vcache_forget_all(void)
{
	if (!g_head)
		return;
	new_epoch(&g_head->epoch);
	vcache_forget_names();
}

/* A path's key: two FNV-1a hashes of it. */
static void name_key(const char *vpath, uint8_t key[16])
{
	uint64_t a = 0xcbf29ce484222325ULL, b = 0x84222325cbf29ce4ULL;

	for (const unsigned char *c = (const unsigned char *)vpath; *c; c++) {
		a = (a ^ *c) * 0x100000001b3ULL;
		b = (b ^ *c) * 0x100000001b3ULL;
	}
	memcpy(key, &a, 8);
	memcpy(key + 8, &b, 8);
}

/* A name entry's bytes (thread-local: too large for some threads' stacks). */
static __thread uint8_t t_name[VCACHE_BLOCK];

void vcache_put_name(unsigned mount, const char *vpath, const uint8_t id[16])
{
	uint8_t key[16], *data = t_name;
	size_t n = strlen(vpath) + 1;

	if (!g_head || 16 + n > sizeof(t_name))
		return;
	name_key(vpath, key);
	memcpy(data, id, 16);
	memcpy(data + 16, vpath, n);
	put(mount, key, VC_NAME, data, 16 + n);
}

/* ---- readers ---- */

/* The slot a read took a file's status from, and its count then. */
struct seen {
	const struct vc_slot *slot;
	uint32_t seq;
};

/*
 * n bytes at from of the key's data into out; false if no slot of its set
 * holds them. With seen: where they came from, for unchanged().
 */
static bool read_slot(unsigned mount, const uint8_t id[16], uint64_t block, uint64_t epoch, void *out,
		      size_t from, size_t n, struct seen *seen)
{
	const struct vc_slot *set = set_of(mount, id, block);

	for (unsigned w = 0; w < VC_WAYS; w++) {
		const struct vc_slot *s = &set[w];
		uint32_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
		bool ok;
		if (seq & 1 || !holds(s, mount, id, block, epoch))
			continue;
		ok = from + n <= atomic_load_explicit(&s->len, memory_order_relaxed);
		if (ok)
			memcpy(out, data_of(s) + from, n);
		atomic_thread_fence(memory_order_acquire);
		/* Changed meanwhile: a miss (the key is in one slot at most; the writer may be moving it). */
		ok = ok && atomic_load_explicit(&s->seq, memory_order_relaxed) == seq;
		if (ok && seen)
			*seen = (struct seen){s, seq};
		return ok;
	}
	return false;
}

/*
 * Is the status slot a read started from unchanged? Every change forgets a
 * file's status before any block of it can be filled again, so blocks read
 * after the status belong with it only if it is still there: otherwise a
 * read of several blocks could join old ones to new ones.
 */
static bool unchanged(const struct seen *seen)
{
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(&seen->slot->seq, memory_order_relaxed) == seen->seq;
}

static bool cached(void)
{
	return g_head && atomic_load_explicit(&g_head->used, memory_order_relaxed);
}

bool vcache_used(void)
{
	return cached();
}

bool vcache_stat(unsigned mount, const uint8_t id[16], struct scone_vstat *st)
{
	return cached() &&
	       read_slot(mount, id, VC_STAT, atomic_load_explicit(&g_head->epoch, memory_order_acquire), st,
			 0, sizeof(*st), NULL);
}

bool vcache_name(unsigned mount, const char *vpath, uint8_t id[16])
{
	uint8_t key[16], *data = t_name;
	size_t n = strlen(vpath) + 1;

	if (!cached() || 16 + n > sizeof(t_name))
		return false;
	name_key(vpath, key);
	if (!read_slot(mount, key, VC_NAME, atomic_load_explicit(&g_head->name_epoch, memory_order_acquire),
		       data, 0, 16 + n, NULL) ||
	    memcmp(data + 16, vpath, n) != 0)
		return false;
	memcpy(id, data, 16);
	return true;
}

bool vcache_whole(unsigned mount, const uint8_t id[16], uint64_t max)
{
	struct scone_vstat st;
	struct seen seen;
	uint8_t probe;
	uint64_t epoch;

	if (!cached())
		return false;
	epoch = atomic_load_explicit(&g_head->epoch, memory_order_acquire);
	if (!read_slot(mount, id, VC_STAT, epoch, &st, 0, sizeof(st), &seen) || st.size > max)
		return false;
	for (uint64_t at = 0; at < st.size; at += VCACHE_BLOCK) /* each block's last byte */
		if (!read_slot(mount, id, at / VCACHE_BLOCK, epoch, &probe,
			       st.size - at < VCACHE_BLOCK ? (size_t)(st.size - at) - 1 : VCACHE_BLOCK - 1, 1,
			       NULL))
			return false;
	return unchanged(&seen);
}

bool vcache_read(unsigned mount, const uint8_t id[16], void *buf, size_t n, uint64_t off, size_t *got)
{
	struct scone_vstat st;
	struct seen seen;
	uint64_t epoch, end;

	if (!cached())
		return false;
	epoch = atomic_load_explicit(&g_head->epoch, memory_order_acquire);
	if (!read_slot(mount, id, VC_STAT, epoch, &st, 0, sizeof(st), &seen))
		return false;
	if (off >= st.size || n == 0) {
		*got = 0;
		return true;
	}
	end = st.size - off < n ? st.size : off + n;
	for (uint64_t p = off; p < end;) {
		size_t from = (size_t)(p % VCACHE_BLOCK);
		size_t k = end - p < VCACHE_BLOCK - from ? (size_t)(end - p) : VCACHE_BLOCK - from;
		if (!read_slot(mount, id, p / VCACHE_BLOCK, epoch, (uint8_t *)buf + (p - off), from, k, NULL))
			return false;
		p += k;
	}
	if (!unchanged(&seen))
		return false;
	*got = (size_t)(end - off);
	return true;
}

/* ---- pins: files read through descriptions the server has no handle for ---- */

static _Atomic int32_t *pin_of(unsigned mount, const uint8_t id[16])
{
	uint64_t h = (load64(id) ^ load64(id + 8)) + mount;

	h ^= h >> 31;
	h *= 0x9E3779B97F4A7C15ULL;
	return &g_pins[(h >> 40) & (VC_PINS - 1)];
}

bool vcache_pin(unsigned mount, const uint8_t id[16])
{
	if (!g_head)
		return false;
	atomic_fetch_add_explicit(pin_of(mount, id), 1, memory_order_seq_cst);
	atomic_thread_fence(memory_order_seq_cst); /* before the caller looks at the name again */
	return true;
}

void vcache_unpin(unsigned mount, const uint8_t id[16])
{
	_Atomic int32_t *p;

	if (!g_head)
		return;
	p = pin_of(mount, id);
	/* Never below 0 (a count a crashed writer of the layout left): an unpin too many is lost. */
	if (atomic_fetch_sub_explicit(p, 1, memory_order_seq_cst) <= 0)
		atomic_fetch_add_explicit(p, 1, memory_order_seq_cst);
}

bool vcache_pinned(unsigned mount, const uint8_t id[16])
{
	if (!g_head)
		return false;
	atomic_thread_fence(memory_order_seq_cst); /* after the caller forgot the names */
	return atomic_load_explicit(pin_of(mount, id), memory_order_seq_cst) > 0;
}
