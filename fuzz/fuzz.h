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

#define ASSERT(cond)                                                                  \
	do {                                                                          \
		if (!(cond)) {                                                        \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, \
				#cond);                                               \
			abort();                                                      \
		}                                                                     \
	} while (0)

#endif
