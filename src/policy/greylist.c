/*
 * greylist: the shared, persistent triplet table. See greylist.h.
 *
 * File layout: a 4 KiB header (magic, version, geometry, the epoch that
 * entry times count from, the salt), then nbuckets * WAYS entries of 32
 * bytes. Entries never straddle a page, so a page written back whole never
 * holds half an entry; an entry whose time fields are odd after a crash is
 * only a triplet remembered wrongly (one more delay, or one less).
 *
 * Security: the file is in the spool, which the server's user owns; the
 * master opens it as root, so it refuses anything but a plain file with one
 * link (O_NOFOLLOW, st_nlink), and it checks the header's geometry against
 * the file size before it maps anything. Lookups hash client data with
 * SHA-256 and a per-file random salt: no one can choose the bucket or the
 * key an entry lands in.
 */
#include "policy/greylist.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mail/addr.h"
#include "util/log.h"
#include "util/netaddr.h"
#include "util/shm.h"
#include "util/str.h"

#define MAGIC "carteiro-greyl\n"
#define VERSION 1
#define HEADER_SIZE 4096
#define WAYS 8
#define SALT_LEN 32

/* ENTRY_CLIENT: a client network's count of passed triplets (auto-allowing); its first and
 * last are those of the passes. */
enum entry_state { ENTRY_FREE = 0, ENTRY_PENDING = 1, ENTRY_GOOD = 2, ENTRY_CLIENT = 3 };

struct gl_header {
	char magic[16];
	uint32_t version;
	uint32_t ways;
	uint64_t nbuckets;
	int64_t epoch; /* entry times are seconds after this */
	uint8_t salt[SALT_LEN];
};

struct gl_entry {
	uint8_t key[16];
	uint32_t first; /* first attempt */
	uint32_t last;  /* latest attempt */
	uint32_t state; /* enum entry_state */
	uint32_t count; /* attempts; for a client network, its passed triplets */
};

_Static_assert(sizeof(struct gl_entry) == 32, "entries must tile pages");
_Static_assert(sizeof(struct gl_header) <= HEADER_SIZE, "header fits its page");

struct gl_shared {
	pthread_mutex_t lock;
};

struct greylist {
	struct gl_shared *shared; /* anonymous shared memory */
	void *map;
	size_t map_size;
	struct gl_header *hdr;
	struct gl_entry *entries;
	uint64_t nbuckets;
};

static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

static size_t table_size(uint64_t nbuckets)
{
	return HEADER_SIZE + (size_t)nbuckets * WAYS * sizeof(struct gl_entry);
}

static uint64_t buckets_for(size_t max_entries)
{
	uint64_t n = GREYLIST_ENTRIES_MIN;
	while (n < max_entries && n < GREYLIST_ENTRIES_MAX)
		n *= 2;
	return n / WAYS;
}

static bool header_valid(const struct gl_header *h, off_t file_size)
{
	uint64_t n = h->nbuckets;
	return memcmp(h->magic, MAGIC, sizeof h->magic) == 0 && h->version == VERSION &&
	       h->ways == WAYS && n >= GREYLIST_ENTRIES_MIN / WAYS &&
	       n <= GREYLIST_ENTRIES_MAX / WAYS && (n & (n - 1)) == 0 &&
	       (uint64_t)file_size == table_size(n);
}

/* Entry times: seconds after the epoch, kept in 1..UINT32_MAX. */
static uint32_t rel_time(const struct greylist *g, int64_t now)
{
	int64_t r = now - g->hdr->epoch;
	return r < 1 ? 1 : r > UINT32_MAX ? UINT32_MAX : (uint32_t)r;
}

static bool entry_live(const struct gl_entry *e, uint32_t now, const struct greylist_times *t)
{
	if (e->state == ENTRY_PENDING)
		return now < e->first || now - e->first <= t->retry_window;
	if (e->state == ENTRY_GOOD || e->state == ENTRY_CLIENT)
		return now < e->last || now - e->last <= t->expire;
	return false;
}

static struct gl_entry *bucket_of(struct greylist *g, const uint8_t key[16])
{
	uint64_t h;
	memcpy(&h, key, sizeof h);
	return &g->entries[(h & (g->nbuckets - 1)) * WAYS];
}

/* The client's network (/24 for IPv4, /64 for IPv6) as 16 bytes at out. */
static void network_of(const struct sockaddr *client, unsigned char out[16])
{
	netaddr_key(client, out);
	if (memcmp(out, v4mapped, sizeof v4mapped) == 0)
		out[15] = 0; /* IPv4 /24 */
	else
		memset(out + 8, 0, 8); /* IPv6 /64 */
}

static void digest_key(const unsigned char *in, size_t n, uint8_t key[16])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	if (EVP_Digest(in, n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen < 16)
		panic("greylist: SHA-256 failed");
	memcpy(key, md, 16);
}

/* SHA-256(salt, network, sender, NUL, recipient), cut to 16 bytes. */
static void triplet_key(const struct greylist *g, const struct sockaddr *client,
			const char *sender, const char *rcpt, uint8_t key[16])
{
	unsigned char in[SALT_LEN + 16 + 2 * (ADDR_TEXT_MAX + 1)];
	size_t o = 0;

	memcpy(in, g->hdr->salt, SALT_LEN);
	o = SALT_LEN;
	network_of(client, in + o);
	o += 16;
	for (int part = 0; part < 2; part++) {
		const char *s = part ? rcpt : sender;
		for (size_t i = 0; s[i] && i < ADDR_TEXT_MAX; i++)
			in[o++] = (unsigned char)ascii_tolower(s[i]);
		if (part == 0)
			in[o++] = 0;
	}
	digest_key(in, o, key);
}

/* SHA-256(salt, "client", network), cut to 16 bytes: the tag comes before the network, where
 * a triplet's key has the network, so no triplet has this input. */
static void network_key(const struct greylist *g, const struct sockaddr *client,
			uint8_t key[16])
{
	static const char tag[] = "client";
	unsigned char in[SALT_LEN + sizeof tag + 16];

	memcpy(in, g->hdr->salt, SALT_LEN);
	memcpy(in + SALT_LEN, tag, sizeof tag);
	network_of(client, in + SALT_LEN + sizeof tag);
	digest_key(in, sizeof in, key);
}

/* The live entry of key in its bucket, or NULL. */
static struct gl_entry *find_entry(struct greylist *g, const uint8_t key[16], uint32_t now,
				   const struct greylist_times *t)
{
	struct gl_entry *b = bucket_of(g, key);
	for (int i = 0; i < WAYS; i++)
		if (entry_live(&b[i], now, t) && memcmp(b[i].key, key, 16) == 0)
			return &b[i];
	return NULL;
}

/* An entry for a new triplet in bucket b: free or expired, else the stalest pending, else
 * the stalest good one. */
static struct gl_entry *victim(struct gl_entry *b, uint32_t now, const struct greylist_times *t)
{
	struct gl_entry *best = NULL;
	for (int i = 0; i < WAYS; i++) {
		struct gl_entry *e = &b[i];
		if (!entry_live(e, now, t))
			return e;
		/* Pending before good (a good triplet and a network's count alike). */
		bool pending = e->state == ENTRY_PENDING;
		bool best_pending = best && best->state == ENTRY_PENDING;
		if (!best || (pending && !best_pending) ||
		    (pending == best_pending && e->last < best->last))
			best = e;
	}
	return best;
}

/* A triplet of the network of nkey passed: count it (lock held); true when that makes the
 * network auto-allowed. */
static bool network_passed(struct greylist *g, const uint8_t nkey[16], uint32_t now,
			   const struct greylist_times *t)
{
	struct gl_entry *n = find_entry(g, nkey, now, t);
	if (!n) {
		n = victim(bucket_of(g, nkey), now, t);
		memcpy(n->key, nkey, 16);
		n->first = now;
		n->state = ENTRY_CLIENT;
		n->count = 0;
	}
	n->last = now;
	if (n->count < UINT32_MAX)
		n->count++;
	return n->count == t->auto_allow;
}

void greylist_check(struct greylist *g, const struct sockaddr *client, const char *sender,
		    const char *rcpt, int64_t now, const struct greylist_times *t,
		    struct greylist_result *out)
{
	uint8_t key[16], nkey[16];

	triplet_key(g, client, sender, rcpt, key);
	if (t->auto_allow)
		network_key(g, client, nkey);
	memset(out, 0, sizeof *out);
	shm_mutex_lock(&g->shared->lock, "greylist");
	uint32_t r = rel_time(g, now);
	if (t->auto_allow) {
		struct gl_entry *n = find_entry(g, nkey, r, t);
		if (n && n->state == ENTRY_CLIENT && n->count >= t->auto_allow) {
			n->last = r;
			out->status = GREYLIST_PASS;
			out->auto_allowed = true;
			shm_mutex_unlock(&g->shared->lock);
			return;
		}
	}
	struct gl_entry *e = find_entry(g, key, r, t);
	if (!e) {
		e = victim(bucket_of(g, key), r, t);
		memcpy(e->key, key, 16);
		e->first = e->last = r;
		e->state = ENTRY_PENDING;
		e->count = 1;
		out->status = GREYLIST_NEW;
		out->wait = t->delay;
	} else {
		out->age = r > e->first ? r - e->first : 0;
		e->last = r;
		if (e->count < UINT32_MAX)
			e->count++;
		if (e->state == ENTRY_GOOD) {
			out->status = GREYLIST_PASS;
		} else if (out->age >= t->delay) {
			e->state = ENTRY_GOOD;
			out->status = GREYLIST_PASS;
			out->first_pass = true;
			if (t->auto_allow)
				out->allowed_now = network_passed(g, nkey, r, t);
		} else {
			out->status = GREYLIST_EARLY;
			out->wait = t->delay - out->age;
		}
	}
	shm_mutex_unlock(&g->shared->lock);
}

size_t greylist_count(struct greylist *g, int64_t now, const struct greylist_times *t)
{
	size_t n = 0;
	shm_mutex_lock(&g->shared->lock, "greylist");
	uint32_t r = rel_time(g, now);
	for (uint64_t i = 0; i < g->nbuckets * WAYS; i++)
		if (entry_live(&g->entries[i], r, t))
			n++;
	shm_mutex_unlock(&g->shared->lock);
	return n;
}

/* --- the file ------------------------------------------------------------- */

static void *map_fd(int fd, size_t size)
{
	/* Populated now, in the master: the workers' lookups find the pages in memory. */
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* A fresh table of nbuckets in fd (truncated first); the mapping, or NULL with errno. */
static void *init_table(int fd, uint64_t nbuckets, const struct gl_header *from)
{
	size_t size = table_size(nbuckets);
	if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t)size) < 0)
		return NULL;
	void *p = map_fd(fd, size);
	if (!p)
		return NULL;
	struct gl_header *h = p;
	memcpy(h->magic, MAGIC, sizeof h->magic);
	h->version = VERSION;
	h->ways = WAYS;
	h->nbuckets = nbuckets;
	if (from) {
		h->epoch = from->epoch;
		memcpy(h->salt, from->salt, SALT_LEN);
	} else {
		h->epoch = (int64_t)time(NULL) - 1;
		if (getrandom(h->salt, SALT_LEN, 0) != SALT_LEN) {
			int err = errno;
			munmap(p, size);
			errno = err ? err : EIO;
			return NULL;
		}
	}
	return p;
}

/* Copy the entries of the old table (mapped at old) into the new one (same salt). */
static void carry_over(const void *old, void *new_map)
{
	const struct gl_header *oh = old;
	struct gl_header *nh = new_map;
	const struct gl_entry *oe = (const void *)((const char *)old + HEADER_SIZE);
	struct gl_entry *ne = (void *)((char *)new_map + HEADER_SIZE);

	for (uint64_t i = 0; i < oh->nbuckets * WAYS; i++) {
		if (oe[i].state != ENTRY_PENDING && oe[i].state != ENTRY_GOOD &&
		    oe[i].state != ENTRY_CLIENT)
			continue;
		uint64_t h;
		memcpy(&h, oe[i].key, sizeof h);
		struct gl_entry *b = &ne[(h & (nh->nbuckets - 1)) * WAYS];
		for (int w = 0; w < WAYS; w++) {
			if (b[w].state == ENTRY_FREE) {
				b[w] = oe[i];
				break;
			}
		}
	}
}

struct greylist *greylist_open(const char *path, size_t max_entries, long uid, long gid,
			       char *err, size_t errlen)
{
	uint64_t nbuckets = buckets_for(max_entries);
	struct gl_header old;
	struct stat st;
	void *map = NULL;
	const char *what = "open";

	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || fstat(fd, &st) < 0)
		goto fail;
	if (!S_ISREG(st.st_mode) || st.st_nlink != 1) {
		snprintf(err, errlen, "%s: not a plain file with one link", path);
		close(fd);
		return NULL;
	}
	what = "chown";
	if (geteuid() == 0 && fchown(fd, (uid_t)uid, (gid_t)gid) < 0)
		goto fail;
	what = "read";
	bool valid = st.st_size >= HEADER_SIZE && pread(fd, &old, sizeof old, 0) == sizeof old &&
		     header_valid(&old, st.st_size);
	what = "map";
	if (valid && old.nbuckets == nbuckets) {
		map = map_fd(fd, table_size(nbuckets));
	} else if (valid) {
		/* Another size: the entries move into a table of the new size, written beside the
		 * old one and renamed over it, so a crash leaves one or the other. */
		char tmp[4096];
		size_t old_size = table_size(old.nbuckets);
		void *old_map = mmap(NULL, old_size, PROT_READ, MAP_SHARED, fd, 0);
		if (old_map == MAP_FAILED ||
		    !str_format(tmp, sizeof tmp, "%s.resize", path)) {
			if (old_map != MAP_FAILED)
				munmap(old_map, old_size);
			goto fail;
		}
		int nfd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (nfd >= 0 && geteuid() == 0 && fchown(nfd, (uid_t)uid, (gid_t)gid) < 0) {
			close(nfd);
			nfd = -1;
		}
		map = nfd >= 0 ? init_table(nfd, nbuckets, &old) : NULL;
		if (map)
			carry_over(old_map, map);
		munmap(old_map, old_size);
		if (!map || msync(map, table_size(nbuckets), MS_SYNC) < 0 ||
		    rename(tmp, path) < 0) {
			if (map)
				munmap(map, table_size(nbuckets));
			map = NULL;
			if (nfd >= 0)
				close(nfd);
			unlink(tmp);
			goto fail;
		}
		close(fd);
		fd = nfd;
		log_info("event=greylist_resized entries_from=%llu entries_to=%llu",
			 (unsigned long long)old.nbuckets * WAYS,
			 (unsigned long long)nbuckets * WAYS);
	} else {
		if (st.st_size != 0)
			log_warn("event=greylist_reset file=%s reason=\"not a greylist table of this "
				 "version\"", LOG_ESC(path));
		map = init_table(fd, nbuckets, NULL);
	}
	if (!map)
		goto fail;
	close(fd);

	struct greylist *g = calloc(1, sizeof *g);
	struct gl_shared *sh = shm_map(sizeof *sh);
	if (!g || !sh) {
		free(g);
		shm_unmap(sh, sizeof *sh);
		munmap(map, table_size(nbuckets));
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	shm_mutex_init(&sh->lock);
	g->shared = sh;
	g->map = map;
	g->map_size = table_size(nbuckets);
	g->hdr = map;
	g->entries = (void *)((char *)map + HEADER_SIZE);
	g->nbuckets = nbuckets;
	return g;
fail:;
	int e = errno;
	if (fd >= 0)
		close(fd);
	snprintf(err, errlen, "%s: %s: %s", path, what, strerror(e));
	return NULL;
}

void greylist_close(struct greylist *g)
{
	if (!g)
		return;
	msync(g->map, g->map_size, MS_ASYNC);
	munmap(g->map, g->map_size);
	shm_unmap(g->shared, sizeof *g->shared);
	free(g);
}
