/*
 * fuzz_smtp_data: libFuzzer target for the DATA/BDAT reader (smtp_data.c).
 *
 * Input: the first byte chooses the mode, the size limit and how the rest is
 * split into feeds; the rest is what the client sends after 354 (DATA) or
 * the BDAT chunks' bytes. Checked, abort() on any violation:
 *  - all at once and in pieces give the same output, flags, size, counts,
 *    consumed count and done;
 *  - both agree with a reference model written the obvious way (whole lines
 *    between real CRLFs), so that the resumable fast path is checked against
 *    the rules themselves, not only against itself;
 *  - the output never holds a bare CR or LF (so never without a BARE flag);
 *  - the output never passes max_size, nor size without TOO_BIG;
 *  - DATA: done means the consumed input ends with "\r\n.\r\n" or is ".\r\n",
 *    and not done means all of it was consumed.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "smtpd/smtp_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct result {
	struct fuzz_sink out; /* the input plus an added CRLF at most */
	unsigned flags;
	uint64_t size;
	size_t consumed;
	bool done;
	unsigned received;
	bool eight_bit;
};

enum split { SPLIT_BYTES, SPLIT_RANDOM, SPLIT_FIXED, SPLIT_AFTER_CR };

struct config {
	enum smtp_data_mode mode;
	uint64_t max_size;
	enum split split;
	size_t fixed;
	uint32_t seed;
};

static uint32_t rnd_next(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* The length of the next feed starting at off. */
static size_t next_piece(const struct config *cf, uint32_t *rnd, const char *p, size_t off,
			 size_t n)
{
	size_t left = n - off, want = left;

	switch (cf->split) {
	case SPLIT_BYTES:
		want = 1;
		break;
	case SPLIT_RANDOM:
		want = 1 + rnd_next(rnd) % 9;
		break;
	case SPLIT_FIXED:
		want = cf->fixed;
		break;
	case SPLIT_AFTER_CR: {
		/* Every CR ends a feed: the held-back CR path, every time. */
		const char *cr = memchr(p + off, '\r', left);
		want = cr ? (size_t)(cr - (p + off)) + 1 : left;
		break;
	}
	}
	return want < left ? want : left;
}

static void run(const struct config *cf, const char *p, size_t n, bool pieces,
		struct result *r)
{
	struct smtp_data d;
	uint32_t rnd = cf->seed | 1;
	size_t off = 0;

	r->out.len = 0;
	r->consumed = 0;
	smtp_data_init(&d, cf->mode, cf->max_size, fuzz_sink_write, &r->out);
	while (off < n) {
		size_t piece = pieces ? next_piece(cf, &rnd, p, off, n) : n - off;
		size_t got = smtp_data_feed(&d, p + off, piece);

		if (got > piece)
			abort();
		r->consumed += got;
		if (got < piece) {
			if (!d.done)
				abort();
			break;
		}
		off += piece;
	}
	if (d.done && smtp_data_feed(&d, p + r->consumed, n - r->consumed) != 0)
		abort();
	if (cf->mode == SMTP_DATA_MODE_BDAT)
		smtp_data_bdat_end(&d);
	r->flags = d.flags;
	r->size = d.size;
	r->done = d.done;
	r->received = d.received_count;
	r->eight_bit = d.eight_bit;
}

/*
 * The reference: cut the input at real CRLFs and judge each line whole. The
 * would-be output goes to o; err is the first octet of o that must not be
 * written (bare CR/LF, line or size limit).
 */
struct ref {
	enum smtp_data_mode mode;
	char *o;
	size_t olen;
	size_t err;
	unsigned flags;
	unsigned received;
	bool in_header;
};

static void ref_err(struct ref *r, size_t pos, unsigned flag)
{
	r->flags |= flag;
	if (pos < r->err)
		r->err = pos;
}

static bool ref_is_received(const char *s, size_t n)
{
	static const char name[] = "received";
	size_t j;

	for (j = 0; j < 8; j++) {
		char c = j < n ? s[j] : '\0';
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != name[j])
			return false;
	}
	while (j < n && (s[j] == ' ' || s[j] == '\t'))
		j++;
	return j < n && s[j] == ':';
}

/* One line s[0..len): complete (ends with a real CRLF) or the unfinished last one. */
static void ref_line(struct ref *r, const char *s, size_t len, bool complete)
{
	size_t off = r->mode == SMTP_DATA_MODE_DATA && len > 0 && s[0] == '.' ? 1 : 0;
	size_t end = complete ? len - 2 : len;
	size_t base = r->olen;

	if (!complete && len > off && s[len - 1] == '\r')
		end = len - 1; /* a CR whose LF has not come yet */
	for (size_t j = off; j < end; j++) {
		if (s[j] == '\r')
			ref_err(r, base + j - off, SMTP_DATA_BARE_CR);
		else if (s[j] == '\n')
			ref_err(r, base + j - off, SMTP_DATA_BARE_LF);
	}
	/* The stuffing dot does not count (RFC 5321 4.5.3.1.6). */
	if (len - off > SMTP_DATA_LINE_MAX) {
		size_t j = SMTP_DATA_LINE_MAX + off; /* the first octet past the limit */
		if (complete && j == len - 1)
			j--; /* the LF: output stops before its CR */
		ref_err(r, base + j - off, SMTP_DATA_LINE_TOO_LONG);
	}
	if (r->in_header) {
		if (complete && len == 2)
			r->in_header = false;
		else if (ref_is_received(s + off, end - off))
			r->received++;
	}
	memcpy(r->o + r->olen, s + off, end - off);
	r->olen += end - off;
	if (complete) {
		memcpy(r->o + r->olen, "\r\n", 2);
		r->olen += 2;
	}
}

static void ref_run(const struct config *cf, const char *p, size_t n, struct result *res,
		    char *obuf)
{
	struct ref r = { cf->mode, obuf, 0, SIZE_MAX, 0, 0, true };
	size_t ls = 0, i;

	res->done = false;
	res->consumed = n;
	for (i = 0; i < n; i++) {
		if (p[i] != '\n' || i == ls || p[i - 1] != '\r')
			continue;
		if (cf->mode == SMTP_DATA_MODE_DATA && i + 1 - ls == 3 && p[ls] == '.') {
			res->done = true;
			res->consumed = i + 1;
			break;
		}
		ref_line(&r, p + ls, i + 1 - ls, true);
		ls = i + 1;
	}
	if (!res->done && ls < n)
		ref_line(&r, p + ls, n - ls, false);
	if (cf->mode == SMTP_DATA_MODE_BDAT && ls < n) {
		size_t len = n - ls;
		if (p[n - 1] == '\r') {
			ref_err(&r, r.olen, SMTP_DATA_BARE_CR);
			r.o[r.olen++] = '\r';
		}
		if (len <= SMTP_DATA_LINE_MAX && len + 2 > SMTP_DATA_LINE_MAX)
			ref_err(&r, r.olen, SMTP_DATA_LINE_TOO_LONG);
		memcpy(r.o + r.olen, "\r\n", 2);
		r.olen += 2;
	}
	if (r.olen > cf->max_size) {
		size_t pos = (size_t)cf->max_size;
		if (pos > 0 && r.o[pos - 1] == '\r')
			pos--;
		ref_err(&r, pos, SMTP_DATA_TOO_BIG);
	}
	res->flags = r.flags;
	res->size = r.olen;
	res->received = r.received;
	res->eight_bit = false;
	for (i = 0; i < res->consumed; i++)
		if ((unsigned char)p[i] >= 0x80)
			res->eight_bit = true;
	res->out.data = r.o;
	res->out.len = r.err < r.olen ? r.err : r.olen;
}

static bool same(const struct result *a, const struct result *b)
{
	return a->out.len == b->out.len && memcmp(a->out.data, b->out.data, a->out.len) == 0 &&
	       a->flags == b->flags && a->size == b->size && a->consumed == b->consumed &&
	       a->done == b->done && a->received == b->received && a->eight_bit == b->eight_bit;
}

static void check_invariants(const struct config *cf, const char *p, const struct result *r)
{
	const char *o = r->out.data;
	size_t n = r->out.len;

	for (size_t i = 0; i < n; i++) {
		if (o[i] == '\r' && (i + 1 == n || o[i + 1] != '\n'))
			abort();
		if (o[i] == '\n' && (i == 0 || o[i - 1] != '\r'))
			abort();
	}
	if (n > cf->max_size)
		abort();
	if (!(r->flags & SMTP_DATA_TOO_BIG) && r->size > cf->max_size)
		abort();
	if (r->flags == 0 && r->size != n)
		abort();
	if (cf->mode == SMTP_DATA_MODE_DATA && r->done) {
		size_t c = r->consumed;
		bool empty = c == 3 && memcmp(p, ".\r\n", 3) == 0;
		if (!empty && (c < 5 || memcmp(p + c - 5, "\r\n.\r\n", 5) != 0))
			abort();
	}
	if (cf->mode == SMTP_DATA_MODE_BDAT && r->flags == 0 && n > 0 &&
	    (n < 2 || memcmp(o + n - 2, "\r\n", 2) != 0))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t limits[8] = { UINT64_MAX, 0, 1, 2, 5, 17, 100, 1001 };
	static const size_t fixed[4] = { 2, 3, 7, 64 };
	struct config cf;
	struct result all, parts, ref;
	const char *p;
	size_t n;

	if (size < 1)
		return 0;
	cf.mode = (data[0] & 1) ? SMTP_DATA_MODE_BDAT : SMTP_DATA_MODE_DATA;
	cf.split = (enum split)((data[0] >> 1) & 3);
	cf.max_size = limits[(data[0] >> 3) & 7];
	cf.fixed = fixed[data[0] >> 6];
	cf.seed = (uint32_t)size * 2654435761u ^ data[0];
	p = (const char *)data + 1;
	n = size - 1;

	all.out.cap = parts.out.cap = n + 2;
	all.out.data = malloc(n + 2);
	parts.out.data = malloc(n + 2);
	char *obuf = malloc(n + 2);
	if (!all.out.data || !parts.out.data || !obuf)
		abort();

	run(&cf, p, n, false, &all);
	run(&cf, p, n, true, &parts);
	ref_run(&cf, p, n, &ref, obuf);
	if (!same(&all, &parts) || !same(&all, &ref))
		abort();
	check_invariants(&cf, p, &all);
	if (cf.mode == SMTP_DATA_MODE_DATA && !all.done && all.consumed != n)
		abort();
	if (cf.mode == SMTP_DATA_MODE_BDAT && all.consumed != n)
		abort();

	free(all.out.data);
	free(parts.out.data);
	free(obuf);
	return 0;
}
