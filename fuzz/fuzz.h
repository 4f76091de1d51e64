/*
 * fuzz.h: what the libFuzzer targets share.
 *
 * ASSERT(cond) checks an invariant of the code under test: when it breaks,
 * the file, line and condition go to stderr and abort() makes libFuzzer keep
 * the input as a crash (a failed invariant is a finding like a crash).
 */
#ifndef CARTEIRO_FUZZ_FUZZ_H
#define CARTEIRO_FUZZ_FUZZ_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ASSERT(cond)                                                                  \
	do {                                                                          \
		if (!(cond)) {                                                        \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, \
				#cond);                                               \
			abort();                                                      \
		}                                                                     \
	} while (0)

/*
 * An output callback's buffer of fixed capacity, for code that writes through
 * one: the capacity is what the code's invariants allow it to write, so that
 * writing more is a finding.
 */
struct fuzz_sink {
	char *data;
	size_t len, cap;
};

static inline int fuzz_sink_write(void *ctx, const char *p, size_t n)
{
	struct fuzz_sink *s = ctx;
	ASSERT(n <= s->cap - s->len);
	memcpy(s->data + s->len, p, n);
	s->len += n;
	return 0;
}

#endif
