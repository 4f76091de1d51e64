/*
 * strmap: string-keyed hash map, open addressing with linear probing.
 * See strmap.h for the contract.
 *
 * Invariants: the capacity is 0 or a power of two; a slot is empty when its
 * key is NULL; count < capacity * 2 / 3 after every insertion, so a probe
 * always reaches an empty slot. Deletion shifts the following cluster back
 * (no tombstones), so lookups never walk over dead slots.
 */
#include "util/strmap.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

#define STRMAP_MIN_CAP 16

struct strmap_slot {
	char *key; /* NULL: empty */
	void *value;
	uint64_t hash;
};

struct strmap {
	struct strmap_slot *slots;
	size_t cap; /* 0 or a power of two */
	size_t count;
};

static uint64_t strmap_hash(const char *key)
{
	uint64_t h = 0xcbf29ce484222325u; /* FNV-1a 64 */

	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		h ^= *p;
		h *= 0x100000001b3u;
	}
	/* FNV's low bits mix poorly and the table index uses exactly those. */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdu;
	h ^= h >> 33;
	return h;
}

/* Index of key's slot, or of the empty slot where it would go. */
static size_t strmap_find_slot(const struct strmap *map, const char *key, uint64_t h)
{
	size_t mask = map->cap - 1;
	size_t i = (size_t)h & mask;

	while (map->slots[i].key) {
		if (map->slots[i].hash == h && strcmp(map->slots[i].key, key) == 0)
			return i;
		i = (i + 1) & mask;
	}
	return i;
}

static int strmap_grow(struct strmap *map)
{
	size_t cap;
	struct strmap_slot *slots;

	if (map->cap == 0)
		cap = STRMAP_MIN_CAP;
	else if (!size_mul(map->cap, 2, &cap))
		return -ENOMEM;
	slots = calloc(cap, sizeof *slots);
	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < map->cap; i++) {
		struct strmap_slot *s = &map->slots[i];
		if (!s->key)
			continue;
		size_t j = (size_t)s->hash & (cap - 1);
		while (slots[j].key)
			j = (j + 1) & (cap - 1);
		slots[j] = *s;
	}
	free(map->slots);
	map->slots = slots;
	map->cap = cap;
	return 0;
}

struct strmap *strmap_new(void)
{
	return calloc(1, sizeof(struct strmap));
}

void strmap_free(struct strmap *map, void (*free_value)(void *))
{
	if (!map)
		return;
	for (size_t i = 0; i < map->cap; i++) {
		if (!map->slots[i].key)
			continue;
		free(map->slots[i].key);
		if (free_value)
			free_value(map->slots[i].value);
	}
	free(map->slots);
	free(map);
}

void *strmap_get(const struct strmap *map, const char *key)
{
	if (!map || map->count == 0)
		return NULL;
	size_t i = strmap_find_slot(map, key, strmap_hash(key));
	return map->slots[i].key ? map->slots[i].value : NULL;
}

bool strmap_has(const struct strmap *map, const char *key)
{
	if (!map || map->count == 0)
		return false;
	return map->slots[strmap_find_slot(map, key, strmap_hash(key))].key != NULL;
}

int strmap_put(struct strmap *map, const char *key, void *value)
{
	uint64_t h = strmap_hash(key);
	size_t need, limit, i;

	if (map->cap && map->slots[strmap_find_slot(map, key, h)].key)
		return -EEXIST;
	/* Keep the load below 2/3: count + 1 <= cap * 2 / 3. */
	if (!size_add(map->count, 1, &need) || !size_mul(need, 3, &need))
		return -ENOMEM;
	if (!size_mul(map->cap, 2, &limit))
		limit = SIZE_MAX;
	if (need > limit) {
		int r = strmap_grow(map);
		if (r < 0)
			return r;
	}
	char *copy = strdup(key);
	if (!copy)
		return -ENOMEM;
	i = strmap_find_slot(map, key, h);
	map->slots[i] = (struct strmap_slot){ copy, value, h };
	map->count++;
	return 0;
}

int strmap_del(struct strmap *map, const char *key, void **value)
{
	if (!map || map->count == 0)
		return -ENOENT;
	size_t mask = map->cap - 1;
	size_t i = strmap_find_slot(map, key, strmap_hash(key));
	if (!map->slots[i].key)
		return -ENOENT;
	if (value)
		*value = map->slots[i].value;
	free(map->slots[i].key);
	map->count--;

	/*
	 * Backward shift: move up every later entry of the cluster whose home
	 * slot is not cyclically within (i, j], so that no probe from its home
	 * slot meets the hole before reaching it.
	 */
	for (size_t j = (i + 1) & mask; map->slots[j].key; j = (j + 1) & mask) {
		size_t home = (size_t)map->slots[j].hash & mask;
		bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
		if (stays)
			continue;
		map->slots[i] = map->slots[j];
		i = j;
	}
	map->slots[i] = (struct strmap_slot){ NULL, NULL, 0 };
	return 0;
}

size_t strmap_count(const struct strmap *map)
{
	return map ? map->count : 0;
}

void strmap_iter_init(struct strmap_iter *it, const struct strmap *map)
{
	it->map = map;
	it->pos = 0;
}

bool strmap_iter_next(struct strmap_iter *it, const char **key, void **value)
{
	const struct strmap *map = it->map;

	if (!map)
		return false;
	while (it->pos < map->cap) {
		const struct strmap_slot *s = &map->slots[it->pos++];
		if (!s->key)
			continue;
		if (key)
			*key = s->key;
		if (value)
			*value = s->value;
		return true;
	}
	return false;
}
