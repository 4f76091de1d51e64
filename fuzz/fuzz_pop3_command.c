/*
 * fuzz_pop3_command: libFuzzer target for pop3d/pop3_command.c (line reader
 * and command parser) and the RETR/TOP conversion of pop3d/pop3_mailbox.c.
 *
 * The first octet chooses how the rest is split when fed to the reader.
 * Invariants (abort() if violated):
 *   - the reader takes every octet it is given (or stops at a line end),
 *     never hands out a line longer than its limit, nor one with a CR, LF or
 *     NUL, and gives the same lines for any split of the input;
 *   - a parsed command has a verb in range, its arguments are views into the
 *     line, numbers are in range and print back to their argument, and the
 *     argument count fits the verb;
 *   - the conversion of the whole input (as a stored message) has no bare
 *     LF, no CR CR LF that was not in the input, every line that starts with
 *     '.' stuffed, ends with ".CRLF", and un-stuffed equals the input with
 *     LF -> CRLF, the size pop3_wire_octets gives; TOP's output is a prefix
 *     of RETR's (before the termination).
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pop3d/pop3_command.h"
#include "pop3d/pop3_mailbox.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_command(struct slice line)
{
	struct pop3_command c;
	int r = pop3_command_parse(line, &c);

	ASSERT(r <= 0 && r >= POP3_CMD_ERR_TOO_LONG);
	ASSERT(c.verb >= POP3_VERB_UNKNOWN && c.verb < POP3_VERB_COUNT);
	ASSERT(c.verb != POP3_VERB_UNKNOWN || r == POP3_CMD_ERR_UNKNOWN ||
	       r == POP3_CMD_ERR_TOO_LONG);
	ASSERT(r != POP3_CMD_ERR_UNKNOWN || c.verb == POP3_VERB_UNKNOWN);
	ASSERT(c.name.ptr == line.ptr && c.name.len <= line.len);
	if (r != POP3_CMD_OK) {
		ASSERT(c.num[0] == 0 && c.num[1] == 0);
		return;
	}
	ASSERT(line.len + 2 <= pop3_command_line_max(c.verb));
	ASSERT(c.nargs <= 2);
	for (unsigned i = 0; i < c.nargs; i++) {
		ASSERT(c.arg[i].len > 0);
		ASSERT(c.arg[i].ptr > line.ptr && c.arg[i].ptr + c.arg[i].len <= line.ptr + line.len);
		ASSERT(c.arg[i].ptr[-1] == ' ');
	}
	switch (c.verb) {
	case POP3_VERB_RETR:
	case POP3_VERB_DELE:
	case POP3_VERB_LIST:
	case POP3_VERB_UIDL:
	case POP3_VERB_TOP:
		for (unsigned i = 0; i < c.nargs; i++) {
			char again[32];
			ASSERT(c.num[i] <= POP3_NUMBER_MAX);
			snprintf(again, sizeof again, "%" PRIu64, c.num[i]);
			/* Leading zeros are allowed; the value is the same. */
			size_t z = 0;
			while (z + 1 < c.arg[i].len && c.arg[i].ptr[z] == '0')
				z++;
			ASSERT(strlen(again) == c.arg[i].len - z &&
			       memcmp(again, c.arg[i].ptr + z, c.arg[i].len - z) == 0);
		}
		ASSERT(c.verb != POP3_VERB_TOP || c.nargs == 2);
		ASSERT((c.verb != POP3_VERB_RETR && c.verb != POP3_VERB_DELE) || c.nargs == 1);
		break;
	case POP3_VERB_USER:
	case POP3_VERB_PASS:
		ASSERT(c.nargs == 1);
		break;
	default:
		break;
	}
}

/* Every line the reader hands out for data split in pieces of step; returns a digest. */
static uint64_t read_lines(const char *p, size_t n, size_t step, size_t max)
{
	static struct pop3_reader r;
	uint64_t digest = 1469598103934665603ULL;
	size_t pos = 0;

	pop3_reader_init(&r, max);
	while (pos < n) {
		size_t k = n - pos < step ? n - pos : step, used;
		enum pop3_line_status st = pop3_reader_feed(&r, p + pos, k, &used);
		ASSERT(used <= k && (used == k || st != POP3_LINE_MORE));
		ASSERT(used > 0);
		pos += used;
		if (st == POP3_LINE_MORE)
			continue;
		digest = (digest ^ (uint64_t)st) * 1099511628211ULL;
		if (st != POP3_LINE_OK)
			continue;
		ASSERT(r.len + 2 <= max);
		ASSERT(!memchr(r.line, '\n', r.len) && !memchr(r.line, '\0', r.len));
		for (size_t i = 0; i < r.len; i++)
			digest = (digest ^ (unsigned char)r.line[i]) * 1099511628211ULL;
		digest = (digest ^ 0x100) * 1099511628211ULL;
		check_command((struct slice){ r.line, r.len });
	}
	return digest;
}

static void check_xfer(const char *p, size_t n, uint64_t top_lines)
{
	char *out = malloc(2 * n + 8), *top = malloc(2 * n + 8), *want = malloc(2 * n + 8);
	struct pop3_xfer x;
	size_t used, o, t;

	ASSERT(out && top && want);
	pop3_xfer_init(&x, false, 0);
	o = pop3_xfer_convert(&x, p, n, out, &used);
	ASSERT(used == n && o <= 2 * n);
	o += pop3_xfer_finish(&x, out + o);
	ASSERT(o >= 3 && memcmp(out + o - 3, ".\r\n", 3) == 0);
	ASSERT(o == 3 || (out[o - 5] == '\r' && out[o - 4] == '\n'));

	/* Un-stuff the body and compare with the input, LF -> CRLF. */
	size_t w = 0, u = 0;
	bool bol = true, cr = false;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\n' && !cr)
			want[w++] = '\r';
		want[w++] = p[i];
		cr = p[i] == '\r';
	}
	if (n && p[n - 1] != '\n') {
		if (!cr)
			want[w++] = '\r';
		want[w++] = '\n';
	}
	bool cr2 = false;
	ASSERT(pop3_wire_octets(p, n, &cr2) + (n && p[n - 1] != '\n' ? (cr2 ? 1 : 2) : 0) == w);
	char *un = malloc(o + 1);
	ASSERT(un);
	for (size_t i = 0; i + 3 < o; i++) {
		if (bol && out[i] == '.') {
			ASSERT(i + 1 < o - 3 && out[i + 1] == '.'); /* stuffed */
			i++;
		}
		un[u++] = out[i];
		if (out[i] == '\n')
			ASSERT(i > 0 && out[i - 1] == '\r');
		bol = out[i] == '\n';
	}
	ASSERT(u == w && memcmp(un, want, w) == 0);

	pop3_xfer_init(&x, true, top_lines);
	t = pop3_xfer_convert(&x, p, n, top, &used);
	ASSERT(used <= n && (used == n || x.done));
	ASSERT(t <= o - 3 && memcmp(top, out, t) == 0);
	t += pop3_xfer_finish(&x, top + t);
	ASSERT(memcmp(top + t - 3, ".\r\n", 3) == 0);
	free(un);
	free(out);
	free(top);
	free(want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t step = (size_t)(data[0] % 17) + 1;
	const char *p = (const char *)data + 1;
	size_t n = size - 1;

	uint64_t whole = read_lines(p, n, n ? n : 1, POP3_LINE_ABS_MAX);
	ASSERT(read_lines(p, n, step, POP3_LINE_ABS_MAX) == whole);
	ASSERT(read_lines(p, n, 1, POP3_LINE_ABS_MAX) == whole);
	read_lines(p, n, step, 16 + data[0] % 64);
	check_xfer(p, n, data[0] % 5);
	return 0;
}
