/*
 * conn_limit: shared connection counting. See conn_limit.h.
 *
 * Layout of the shared mapping: a header, then nworkers totals, then an open
 * addressing hash table (linear probing, backward-shift deletion, so there
 * are no tombstones and probe chains stay short) of per-address entries,
 * each with one counter per worker. The table has at least twice as many
 * slots as max_total, so it can never fill up: every counted connection
 * occupies at most one entry.
 */
#include "smtpd/conn_limit.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/netaddr.h"
#include "util/shm.h"

struct conn_entry {
	uint8_t key[16];
	uint32_t total; /* 0: the slot is free */
	uint32_t per_worker[];
};

struct conn_limit {
	pthread_mutex_t lock;
	size_t map_size;
	unsigned max_total;
	unsigned max_per_ip;
	unsigned nworkers;
	size_t nslots;     /* a power of two */
	size_t entry_size; /* bytes per slot */
	uint32_t total;
	/* then: uint32_t worker_total[nworkers]; slots */
	unsigned char data[];
};

static uint32_t *worker_totals(struct conn_limit *cl)
{
	return (uint32_t *)(void *)cl->data;
}

static struct conn_entry *slot_at(struct conn_limit *cl, size_t i)
{
	size_t base = ((size_t)cl->nworkers * sizeof(uint32_t) + 15) & ~(size_t)15;
	return (struct conn_entry *)(void *)(cl->data + base + i * cl->entry_size);
}

struct conn_limit *conn_limit_create(unsigned max_total, unsigned max_per_ip, unsigned nworkers)
{
	size_t nslots = 64;
	while (nslots < (size_t)max_total * 2)
		nslots *= 2;
	size_t entry_size = (sizeof(struct conn_entry) + nworkers * sizeof(uint32_t) + 7) & ~(size_t)7;
	size_t base = ((size_t)nworkers * sizeof(uint32_t) + 15) & ~(size_t)15;
	size_t size = sizeof(struct conn_limit) + base + nslots * entry_size;

	struct conn_limit *cl = shm_map(size);
	if (!cl)
		return NULL;
	shm_mutex_init(&cl->lock);
	cl->map_size = size;
	cl->max_total = max_total;
	cl->max_per_ip = max_per_ip;
	cl->nworkers = nworkers;
	cl->nslots = nslots;
	cl->entry_size = entry_size;
	return cl;
}

void conn_limit_destroy(struct conn_limit *cl)
{
	if (cl)
		shm_unmap(cl, cl->map_size);
}

/* A worker that dies inside the critical section: the master rebuilds its share. */
static void cl_lock(struct conn_limit *cl)
{
	shm_mutex_lock(&cl->lock, "conn_limit");
}

static void cl_unlock(struct conn_limit *cl)
{
	shm_mutex_unlock(&cl->lock);
}

/* The slot holding key, or the free slot where it would go. */
static size_t find_slot(struct conn_limit *cl, const uint8_t key[16])
{
	size_t mask = cl->nslots - 1;
	size_t i = netaddr_key_hash(key) & mask;
	for (;;) {
		struct conn_entry *e = slot_at(cl, i);
		if (e->total == 0 || memcmp(e->key, key, 16) == 0)
			return i;
		i = (i + 1) & mask;
	}
}

/* Free slot i and shift later entries of its probe chain back (no tombstones). */
static void delete_slot(struct conn_limit *cl, size_t i)
{
	size_t mask = cl->nslots - 1;
	size_t j = i;
	for (;;) {
		slot_at(cl, i)->total = 0;
		for (;;) {
			j = (j + 1) & mask;
			struct conn_entry *e = slot_at(cl, j);
			if (e->total == 0)
				return;
			size_t home = netaddr_key_hash(e->key) & mask;
			/* Move e back to i unless its home lies cyclically in (i, j]. */
			bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
			if (!stays) {
				memcpy(slot_at(cl, i), e, cl->entry_size);
				i = j;
				break;
			}
		}
	}
}

int conn_limit_acquire(struct conn_limit *cl, unsigned worker, const struct sockaddr *sa)
{
	uint8_t key[16];
	int result = CONN_OK;

	netaddr_key(sa, key);
	cl_lock(cl);
	if (cl->total >= cl->max_total) {
		result = CONN_TOO_MANY;
	} else {
		size_t i = find_slot(cl, key);
		struct conn_entry *e = slot_at(cl, i);
		if (e->total >= cl->max_per_ip) {
			result = CONN_TOO_MANY_FROM_IP;
		} else {
			if (e->total == 0) {
				memset(e, 0, cl->entry_size);
				memcpy(e->key, key, 16);
			}
			e->total++;
			e->per_worker[worker]++;
			worker_totals(cl)[worker]++;
			cl->total++;
		}
	}
	cl_unlock(cl);
	return result;
}

void conn_limit_release(struct conn_limit *cl, unsigned worker, const struct sockaddr *sa)
{
	uint8_t key[16];

	netaddr_key(sa, key);
	cl_lock(cl);
	size_t i = find_slot(cl, key);
	struct conn_entry *e = slot_at(cl, i);
	if (e->total > 0 && e->per_worker[worker] > 0) {
		e->per_worker[worker]--;
		worker_totals(cl)[worker]--;
		cl->total--;
		if (--e->total == 0)
			delete_slot(cl, i);
	}
	cl_unlock(cl);
}

void conn_limit_reset_worker(struct conn_limit *cl, unsigned worker)
{
	cl_lock(cl);
	/* Subtract the worker's share and re-insert the survivors into a clean
	 * table: the rebuild also repairs a probe chain that a worker dying in
	 * the middle of delete_slot() may have left half-shifted. */
	unsigned char *saved = malloc(cl->nslots * cl->entry_size);
	size_t n = 0;
	uint32_t total = 0;
	for (size_t i = 0; i < cl->nslots; i++) {
		struct conn_entry *e = slot_at(cl, i);
		if (e->total == 0)
			continue;
		uint32_t mine = e->per_worker[worker];
		e->per_worker[worker] = 0;
		e->total = e->total > mine ? e->total - mine : 0;
		total += e->total;
		if (e->total && saved)
			memcpy(saved + n++ * cl->entry_size, e, cl->entry_size);
	}
	if (saved) {
		for (size_t i = 0; i < cl->nslots; i++)
			slot_at(cl, i)->total = 0;
		for (size_t k = 0; k < n; k++) {
			struct conn_entry *e = (struct conn_entry *)(void *)(saved + k * cl->entry_size);
			memcpy(slot_at(cl, find_slot(cl, e->key)), e, cl->entry_size);
		}
		free(saved);
	}
	worker_totals(cl)[worker] = 0;
	cl->total = total;
	cl_unlock(cl);
}

unsigned conn_limit_total(struct conn_limit *cl)
{
	cl_lock(cl);
	unsigned t = cl->total;
	cl_unlock(cl);
	return t;
}
