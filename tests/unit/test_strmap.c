/*
 * Unit tests for util/strmap: insertion, duplicates, growth, deletion with
 * backward shift (checked against a reference array), iteration, destructors.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "util/strmap.h"

TEST(empty_map)
{
	struct strmap *m = strmap_new();
	struct strmap_iter it;

	CHECK(m != NULL);
	CHECK_INT(strmap_count(m), 0);
	CHECK(strmap_get(m, "x") == NULL);
	CHECK(!strmap_has(m, ""));
	CHECK_INT(strmap_del(m, "x", NULL), -ENOENT);
	strmap_iter_init(&it, m);
	CHECK(!strmap_iter_next(&it, NULL, NULL));
	strmap_free(m, NULL);
	strmap_free(NULL, NULL);
	CHECK_INT(strmap_count(NULL), 0);
	CHECK(strmap_get(NULL, "x") == NULL);
}

TEST(put_get_and_duplicates)
{
	static const struct {
		const char *key;
		int value;
		int expect;
	} rows[] = {
		{ "alice@example.test", 1, 0 },
		{ "bob@example.test", 2, 0 },
		{ "Alice@example.test", 3, 0 }, /* case-sensitive: another key */
		{ "", 4, 0 },                   /* the empty key is a key */
		{ "alice@example.test", 5, -EEXIST },
		{ "", 6, -EEXIST },
	};
	int values[sizeof rows / sizeof rows[0]];
	struct strmap *m = strmap_new();

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		values[i] = rows[i].value;
		CHECK_INT(strmap_put(m, rows[i].key, &values[i]), rows[i].expect);
	}
	CHECK_INT(strmap_count(m), 4);
	CHECK_INT(*(int *)strmap_get(m, "alice@example.test"), 1);
	CHECK_INT(*(int *)strmap_get(m, "Alice@example.test"), 3);
	CHECK_INT(*(int *)strmap_get(m, ""), 4);
	CHECK(strmap_get(m, "ALICE@example.test") == NULL);
	strmap_free(m, NULL);
}

TEST(keys_are_copied)
{
	struct strmap *m = strmap_new();
	char key[] = "mutable";
	int v = 7;

	CHECK_INT(strmap_put(m, key, &v), 0);
	key[0] = 'M';
	CHECK(strmap_get(m, "mutable") == &v);
	CHECK(strmap_get(m, key) == NULL);
	strmap_free(m, NULL);
}

TEST(null_values_are_present)
{
	struct strmap *m = strmap_new();

	CHECK_INT(strmap_put(m, "k", NULL), 0);
	CHECK(strmap_has(m, "k"));
	CHECK(strmap_get(m, "k") == NULL);
	CHECK_INT(strmap_put(m, "k", NULL), -EEXIST);
	strmap_free(m, NULL);
}

TEST(grows_and_keeps_everything)
{
	enum { N = 20000 };
	struct strmap *m = strmap_new();
	char key[32];

	for (uintptr_t i = 0; i < N; i++) {
		snprintf(key, sizeof key, "user%lu@example.test", (unsigned long)i);
		CHECK_INT(strmap_put(m, key, (void *)(i + 1)), 0);
	}
	CHECK_INT(strmap_count(m), N);
	for (uintptr_t i = 0; i < N; i++) {
		snprintf(key, sizeof key, "user%lu@example.test", (unsigned long)i);
		CHECK((uintptr_t)strmap_get(m, key) == i + 1);
	}
	CHECK(strmap_get(m, "user20000@example.test") == NULL);
	strmap_free(m, NULL);
}

TEST(iterates_every_entry_once)
{
	enum { N = 1000 };
	static unsigned char seen[N];
	struct strmap *m = strmap_new();
	struct strmap_iter it;
	const char *key;
	void *value;
	char buf[16];
	size_t n = 0;

	for (uintptr_t i = 0; i < N; i++) {
		snprintf(buf, sizeof buf, "k%lu", (unsigned long)i);
		CHECK_INT(strmap_put(m, buf, (void *)i), 0);
	}
	strmap_iter_init(&it, m);
	while (strmap_iter_next(&it, &key, &value)) {
		uintptr_t i = (uintptr_t)value;
		snprintf(buf, sizeof buf, "k%lu", (unsigned long)i);
		CHECK(i < N);
		if (i < N) {
			CHECK_STR(key, buf);
			seen[i]++;
		}
		n++;
	}
	CHECK_INT(n, N);
	for (size_t i = 0; i < N; i++)
		CHECK_INT(seen[i], 1);
	strmap_free(m, NULL);
}

/* Deterministic pseudo-random sequence for the model test. */
static uint32_t rng_next(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

TEST(random_put_del_matches_model)
{
	/* Few distinct keys and many operations: clusters wrap and shift a lot. */
	enum { KEYS = 300, OPS = 200000 };
	static bool present[KEYS];
	struct strmap *m = strmap_new();
	uint32_t seed = 12345;
	size_t count = 0;
	char key[16];

	for (int op = 0; op < OPS; op++) {
		uintptr_t k = rng_next(&seed) % KEYS;
		void *v = NULL;
		snprintf(key, sizeof key, "%lu", (unsigned long)k);
		switch (rng_next(&seed) % 3) {
		case 0:
			CHECK_INT(strmap_put(m, key, (void *)(k + 1)), present[k] ? -EEXIST : 0);
			if (!present[k])
				count++;
			present[k] = true;
			break;
		case 1:
			CHECK_INT(strmap_del(m, key, &v), present[k] ? 0 : -ENOENT);
			if (present[k]) {
				CHECK((uintptr_t)v == k + 1);
				count--;
			}
			present[k] = false;
			break;
		default:
			CHECK(strmap_has(m, key) == present[k]);
			if (present[k])
				CHECK((uintptr_t)strmap_get(m, key) == k + 1);
			break;
		}
	}
	CHECK_INT(strmap_count(m), count);
	for (uintptr_t k = 0; k < KEYS; k++) {
		snprintf(key, sizeof key, "%lu", (unsigned long)k);
		CHECK(strmap_has(m, key) == present[k]);
	}
	strmap_free(m, NULL);
}

static int freed;

static void count_free(void *p)
{
	freed++;
	free(p);
}

TEST(free_calls_destructor_on_each_value)
{
	struct strmap *m = strmap_new();
	char key[16];

	for (int i = 0; i < 50; i++) {
		snprintf(key, sizeof key, "%d", i);
		CHECK_INT(strmap_put(m, key, malloc(8)), 0);
	}
	void *v = NULL;
	CHECK_INT(strmap_del(m, "7", &v), 0);
	free(v);
	freed = 0;
	strmap_free(m, count_free);
	CHECK_INT(freed, 49);
}

UNIT_MAIN()
