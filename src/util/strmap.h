/*
 * strmap: a hash map from NUL-terminated string keys to void * values.
 *
 * Contract: keys are compared byte for byte (case-sensitive; callers that
 * want case-insensitive lookups lower-case their keys first). The map copies
 * and owns its keys; it never owns values, except that strmap_free() can hand
 * each one to a destructor. A key is inserted once: strmap_put() refuses a key
 * that is already present, so a loader can report duplicates. Lookups are
 * O(1) on average (open addressing, linear probing, load kept below 2/3).
 *
 * Security: the hash (FNV-1a with a final mix) is not keyed. The tables
 * built here come from files the administrator wrote; a client only chooses
 * the key it looks up, which costs one probe sequence over clusters it cannot
 * shape. Do not fill a strmap with many keys chosen by a remote party.
 * All size arithmetic is overflow-checked; a failed allocation leaves the
 * map as it was.
 */
#ifndef CARTEIRO_UTIL_STRMAP_H
#define CARTEIRO_UTIL_STRMAP_H

#include <stdbool.h>
#include <stddef.h>

struct strmap;

/* Walks the entries in no particular order; the map must not change meanwhile. */
struct strmap_iter {
	const struct strmap *map;
	size_t pos;
};

/* A new empty map, or NULL when out of memory. */
struct strmap *strmap_new(void);
/* Free the map and its keys; free_value (may be NULL) is called on every value. */
void strmap_free(struct strmap *map, void (*free_value)(void *));
/* The value stored under key, or NULL when absent. */
void *strmap_get(const struct strmap *map, const char *key);
/* Is key present (whatever its value, NULL included)? */
bool strmap_has(const struct strmap *map, const char *key);
/* Insert a copy of key: 0, -EEXIST if already present (map unchanged), -ENOMEM. */
int strmap_put(struct strmap *map, const char *key, void *value);
/* Remove key, giving its value in *value if not NULL: 0, or -ENOENT. */
int strmap_del(struct strmap *map, const char *key, void **value);
/* Number of keys. */
size_t strmap_count(const struct strmap *map);

/* Start a walk over map. */
void strmap_iter_init(struct strmap_iter *it, const struct strmap *map);
/* Next entry into *key and *value (either may be NULL); false at the end. */
bool strmap_iter_next(struct strmap_iter *it, const char **key, void **value);

#endif
