/*
 * auth_limit: shared AUTH failure counts. See auth_limit.h.
 *
 * Layout: a header, then BUCKETS buckets of WAYS entries. An address hashes
 * to one bucket and lives in one of its ways; a lookup reads at most WAYS
 * entries, and nothing is ever deleted or moved (an entry whose window has
 * passed is simply reused), so a worker that dies inside the critical
 * section cannot leave the structure inconsistent, only one count stale.
 */
#include "smtpd/auth_limit.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#include "util/netaddr.h"
#include "util/shm.h"

#define BUCKETS 1024
#define WAYS 8

struct auth_entry {
	uint8_t key[16];
	uint32_t failures;     /* 0: the entry is free */
	int64_t first;         /* first failure of the window */
	int64_t last;          /* latest failure */
	int64_t banned_until;  /* 0: not banned */
};

struct auth_limit {
	pthread_mutex_t lock;
	struct auth_entry entries[BUCKETS][WAYS];
};

struct auth_limit *auth_limit_create(void)
{
	struct auth_limit *al = shm_map(sizeof *al);
	if (al)
		shm_mutex_init(&al->lock);
	return al;
}

void auth_limit_destroy(struct auth_limit *al)
{
	shm_unmap(al, sizeof *al);
}

int64_t auth_limit_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

/* The entry of key, or NULL; with create, a free or the least recently used entry. */
static struct auth_entry *lookup(struct auth_limit *al, const uint8_t key[16], bool create)
{
	struct auth_entry *b = al->entries[netaddr_key_hash(key) % BUCKETS], *victim = &b[0];
	int64_t oldest = INT64_MAX;

	for (int i = 0; i < WAYS; i++) {
		if (b[i].failures && memcmp(b[i].key, key, 16) == 0)
			return &b[i];
		/* A free entry first, else the one whose latest failure is oldest. */
		int64_t age = b[i].failures ? b[i].last : INT64_MIN;
		if (age < oldest) {
			oldest = age;
			victim = &b[i];
		}
	}
	if (!create)
		return NULL;
	memset(victim, 0, sizeof *victim);
	memcpy(victim->key, key, 16);
	return victim;
}

bool auth_limit_banned(struct auth_limit *al, const struct sockaddr *sa, int64_t now)
{
	uint8_t key[16];

	netaddr_key(sa, key);
	shm_mutex_lock(&al->lock, "auth_limit");
	struct auth_entry *e = lookup(al, key, false);
	bool banned = e && e->banned_until > now;
	shm_mutex_unlock(&al->lock);
	return banned;
}

unsigned auth_limit_failed(struct auth_limit *al, const struct sockaddr *sa, int64_t now,
			   unsigned max, unsigned window)
{
	uint8_t key[16];

	netaddr_key(sa, key);
	shm_mutex_lock(&al->lock, "auth_limit");
	struct auth_entry *e = lookup(al, key, true);
	/* A window that has passed (and no ban running) starts over. */
	if (e->failures && e->banned_until <= now && now - e->first >= (int64_t)window) {
		e->failures = 0;
		e->banned_until = 0;
	}
	if (e->failures == 0)
		e->first = now;
	if (e->failures < UINT32_MAX)
		e->failures++;
	e->last = now;
	if (e->failures >= max)
		e->banned_until = now + (int64_t)window;
	unsigned n = e->failures;
	shm_mutex_unlock(&al->lock);
	return n;
}
