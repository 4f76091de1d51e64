/*
 * unit: the smallest test framework that does the job.
 *
 *   TEST(parses_null_path) { CHECK(x == 1); CHECK_STR(a, "b"); }
 *
 * Each test_*.c file is its own program; UNIT_MAIN() at the end runs every
 * TEST in it. A failed CHECK prints file:line and the expression and marks the
 * test failed (the test goes on, so a table reports every bad row). The last
 * line is "RESULT passed=N failed=M", read by tests/run.py.
 */
#ifndef CARTEIRO_TESTS_UNIT_H
#define CARTEIRO_TESTS_UNIT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct unit_test {
	const char *name;
	void (*fn)(void);
	struct unit_test *next;
};

extern struct unit_test *unit_tests;
extern int unit_failed_checks;

#define TEST(name)                                                           \
	static void test_##name(void);                                       \
	static struct unit_test unit_reg_##name = { #name, test_##name, 0 }; \
	__attribute__((constructor)) static void unit_register_##name(void)  \
	{                                                                    \
		unit_reg_##name.next = unit_tests;                           \
		unit_tests = &unit_reg_##name;                               \
	}                                                                    \
	static void test_##name(void)

#define CHECK(cond)                                                                   \
	do {                                                                          \
		if (!(cond)) {                                                        \
			fprintf(stderr, "  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, \
				#cond);                                               \
			unit_failed_checks++;                                         \
		}                                                                     \
	} while (0)

#define CHECK_MSG(cond, ...)                                                   \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "  %s:%d: CHECK(%s) failed: ", __FILE__, \
				__LINE__, #cond);                              \
			fprintf(stderr, __VA_ARGS__);                          \
			fputc('\n', stderr);                                   \
			unit_failed_checks++;                                  \
		}                                                              \
	} while (0)

#define CHECK_INT(a, b)                                                             \
	do {                                                                        \
		long long unit_a_ = (long long)(a), unit_b_ = (long long)(b);       \
		if (unit_a_ != unit_b_) {                                           \
			fprintf(stderr, "  %s:%d: %s == %lld, expected %s == %lld\n", \
				__FILE__, __LINE__, #a, unit_a_, #b, unit_b_);      \
			unit_failed_checks++;                                       \
		}                                                                   \
	} while (0)

#define CHECK_STR(a, b)                                                             \
	do {                                                                        \
		const char *unit_a_ = (a), *unit_b_ = (b);                          \
		if (!unit_a_ || !unit_b_ || strcmp(unit_a_, unit_b_) != 0) {        \
			fprintf(stderr, "  %s:%d: %s == \"%s\", expected \"%s\"\n", \
				__FILE__, __LINE__, #a, unit_a_ ? unit_a_ : "(null)", \
				unit_b_ ? unit_b_ : "(null)");                      \
			unit_failed_checks++;                                       \
		}                                                                   \
	} while (0)

#define UNIT_MAIN()                                                              \
	struct unit_test *unit_tests;                                            \
	int unit_failed_checks;                                                  \
	int main(int argc, char **argv)                                          \
	{                                                                        \
		int passed = 0, failed = 0;                                      \
		for (struct unit_test *t = unit_tests; t; t = t->next) {         \
			if (argc > 1 && strcmp(argv[1], t->name) != 0)           \
				continue;                                        \
			int before = unit_failed_checks;                         \
			t->fn();                                                 \
			if (unit_failed_checks == before) {                      \
				passed++;                                        \
				printf("PASS %s\n", t->name);                    \
			} else {                                                 \
				failed++;                                        \
				printf("FAIL %s\n", t->name);                    \
			}                                                        \
		}                                                                \
		printf("RESULT passed=%d failed=%d\n", passed, failed);          \
		return failed ? 1 : 0;                                           \
	}

#endif
