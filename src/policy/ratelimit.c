/*
 * ratelimit: shared sliding-window counters. See ratelimit.h.
 *
 * Layout: a header, then BUCKETS buckets of WAYS entries (48 bytes each,
 * 1.5 MiB in all). A (kind, key) hashes to one bucket and lives in one of
 * its ways; nothing is moved or deleted, so a lookup reads at most WAYS
 * entries and a crash inside the lock cannot break the structure.
 */
#include "policy/ratelimit.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/netaddr.h"
#include "util/shm.h"
#include "util/str.h"

#define BUCKETS 4096
#define WAYS 8
#define NAME_MAX_HASHED 512

struct rl_entry {
	uint8_t key[16];
	uint32_t kind;   /* enum ratelimit_kind + 1; 0: the entry is free */
	uint32_t cur;    /* events in window number `window` */
	uint32_t prev;   /* events in the window before */
	uint32_t pad;
	int64_t window;  /* now_ms / window length of the latest event */
	int64_t last;    /* now_ms of the latest event, for eviction */
};

struct ratelimit {
	pthread_mutex_t lock;
	struct rl_entry entries[BUCKETS][WAYS];
};

int ratelimit_rate_parse(struct slice s, struct ratelimit_rate *out)
{
	const char *slash = memchr(s.ptr, '/', s.len);
	uint64_t n, w;

	memset(out, 0, sizeof *out);
	if (slice_eq_cstr_nocase(s, "off") || slice_eq_cstr_nocase(s, "0"))
		return 0;
	if (!slash)
		return -EINVAL;
	struct slice ns = { s.ptr, (size_t)(slash - s.ptr) };
	struct slice ws = { slash + 1, s.len - ns.len - 1 };
	if (parse_u64(ns, RATELIMIT_COUNT_MAX, &n) < 0 || n == 0 ||
	    parse_duration(ws, &w) < 0 || w == 0 || w > RATELIMIT_WINDOW_MAX)
		return -EINVAL;
	out->count = (unsigned)n;
	out->window = (unsigned)w;
	return 0;
}

struct ratelimit *ratelimit_create(void)
{
	struct ratelimit *rl = shm_map(sizeof *rl);
	if (rl)
		shm_mutex_init(&rl->lock);
	return rl;
}

void ratelimit_destroy(struct ratelimit *rl)
{
	shm_unmap(rl, sizeof *rl);
}

int64_t ratelimit_now_ms(void)
{
	return clock_mono_ms();
}

void ratelimit_key_addr(const struct sockaddr *sa, uint8_t key[16])
{
	netaddr_key(sa, key);
}

void ratelimit_key_name(const char *name, uint8_t key[16])
{
	unsigned char in[NAME_MAX_HASHED], md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	size_t n = 0;

	for (; name[n] && n < sizeof in; n++)
		in[n] = (unsigned char)ascii_tolower(name[n]);
	if (EVP_Digest(in, n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen < 16)
		panic("ratelimit: SHA-256 failed");
	memcpy(key, md, 16);
}

const char *ratelimit_kind_name(enum ratelimit_kind kind)
{
	static const char *const names[RATELIMIT_KINDS] = {
		"connections", "messages", "user_messages", "user_recipients",
	};
	return (unsigned)kind < RATELIMIT_KINDS ? names[kind] : "?";
}

/* The entry of (kind, key), or a free or the least recently used one, reset. */
static struct rl_entry *lookup(struct ratelimit *rl, uint32_t kind, const uint8_t key[16])
{
	size_t h = netaddr_key_hash(key) ^ ((size_t)kind * 0x9e3779b97f4a7c15ull);
	struct rl_entry *b = rl->entries[h % BUCKETS], *victim = &b[0];
	int64_t oldest = INT64_MAX;

	for (int i = 0; i < WAYS; i++) {
		if (b[i].kind == kind && memcmp(b[i].key, key, 16) == 0)
			return &b[i];
		int64_t age = b[i].kind ? b[i].last : INT64_MIN;
		if (age < oldest) {
			oldest = age;
			victim = &b[i];
		}
	}
	memset(victim, 0, sizeof *victim);
	memcpy(victim->key, key, 16);
	victim->kind = kind;
	return victim;
}

bool ratelimit_hit(struct ratelimit *rl, enum ratelimit_kind kind, const uint8_t key[16],
		   const struct ratelimit_rate *rate, int64_t now_ms, unsigned *count)
{
	if (count)
		*count = 0;
	if (!rl || rate->count == 0)
		return true;
	int64_t len = (int64_t)rate->window * 1000;
	int64_t window = now_ms / len, into = now_ms % len;

	shm_mutex_lock(&rl->lock, "ratelimit");
	struct rl_entry *e = lookup(rl, (uint32_t)kind + 1, key);
	if (e->window != window) {
		e->prev = e->window == window - 1 ? e->cur : 0;
		e->cur = 0;
		e->window = window;
	}
	/* prev * (len - into) / len + cur, in 64 bits: no overflow for counts < 2^32. */
	uint64_t estimate = (uint64_t)e->prev * (uint64_t)(len - into) / (uint64_t)len + e->cur;
	if (e->cur < UINT32_MAX)
		e->cur++;
	e->last = now_ms;
	shm_mutex_unlock(&rl->lock);
	if (count)
		*count = estimate > UINT32_MAX ? UINT32_MAX : (unsigned)estimate;
	return estimate < rate->count;
}
