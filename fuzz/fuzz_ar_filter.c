/*
 * fuzz_ar_filter: libFuzzer target for the Authentication-Results filter
 * (smtpd/ar_filter.c).
 *
 * Input: the first byte chooses how the rest is split into writes; the rest
 * is a message as the DATA reader hands it on. Checked, abort() on any
 * violation:
 *  - all at once and in pieces give the same output and the same count of
 *    removed fields;
 *  - the output is the input with whole lines left out (never part of a
 *    line), and from the first empty line on it is the input unchanged;
 *  - a line left out is in the header section;
 *  - with no removed field, the output is the input.
 * The line checks hold for input whose line ends are all CRLF (what the
 * reader gives); other input is only run for crashes and the split check.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "smtpd/ar_filter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned run(const char *in, size_t n, size_t step, struct fuzz_sink *out)
{
	struct ar_filter f;
	ar_filter_init(&f, "mx.example.test", fuzz_sink_write, out);
	for (size_t off = 0; off < n;) {
		size_t k = step == 0 || n - off < step ? n - off : step;
		ASSERT(ar_filter_write(&f, in + off, k) == 0);
		off += k;
	}
	ASSERT(ar_filter_end(&f) == 0);
	return f.removed;
}

static bool crlf_only(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\r' && (i + 1 == n || p[i + 1] != '\n'))
			return false;
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			return false;
	}
	return true;
}

/* The end of the line that starts at p (past its LF, or the end). */
static size_t line_end(const char *p, size_t off, size_t n)
{
	const char *lf = memchr(p + off, '\n', n - off);
	return lf ? (size_t)(lf - p) + 1 : n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t step = data[0] % 9; /* 0: all at once */
	const char *in = (const char *)data + 1;
	size_t n = size - 1;
	struct fuzz_sink whole = { malloc(n + 1), 0, n + 1 }, parts = { malloc(n + 1), 0, n + 1 };

	unsigned removed = run(in, n, 0, &whole);
	ASSERT(run(in, n, step ? step : 1, &parts) == removed);
	ASSERT(parts.len == whole.len && memcmp(parts.data, whole.data, whole.len) == 0);
	ASSERT(whole.len <= n);
	if (removed == 0)
		ASSERT(whole.len == n && memcmp(whole.data, in, n) == 0);

	if (crlf_only(in, n)) {
		/* Walk the input's lines: each is either the output's next line or left out. */
		size_t i = 0, o = 0;
		bool body = false;
		while (i < n) {
			size_t e = line_end(in, i, n), len = e - i;
			if (o + len <= whole.len && memcmp(whole.data + o, in + i, len) == 0) {
				o += len;
			} else {
				ASSERT(!body); /* only header lines are left out */
			}
			if (len == 2 && in[i] == '\r')
				body = true;
			i = e;
		}
		ASSERT(o == whole.len);
	}
	free(whole.data);
	free(parts.data);
	return 0;
}
