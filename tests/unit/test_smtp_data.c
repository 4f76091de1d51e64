/*
 * test_smtp_data: the DATA/BDAT content reader (src/smtpd/smtp_data.c).
 *
 * Every case is run three ways: all input in one feed, one byte per feed,
 * and many random splits (fixed seeds). The results must be the same each
 * time and equal the expected output, flags, size, received_count,
 * eight_bit, consumed count and done. The SMTP smuggling variants
 * (CVE-2023-51764/51765/51766) must neither end the data nor reach the
 * output, and what follows the real end of data must stay unconsumed.
 */
#include "smtpd/smtp_data.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "unit.h"
#include "util/buf.h"

#define NO_LIMIT UINT64_MAX
#define LEN(s) (sizeof(s) - 1)

struct sink {
	char data[16384];
	size_t len;
	unsigned calls;
	unsigned fail_on_call; /* 0: never fail; n: the n-th call fails */
	bool overflow;
};

static int sink_write(void *ctx, const char *p, size_t n)
{
	struct sink *s = ctx;

	s->calls++;
	if (s->fail_on_call && s->calls >= s->fail_on_call)
		return -1;
	if (n > sizeof(s->data) - s->len) {
		s->overflow = true;
		return -1;
	}
	memcpy(s->data + s->len, p, n);
	s->len += n;
	return 0;
}

struct data_case {
	const char *name;
	enum smtp_data_mode mode;
	uint64_t max_size;
	struct slice in;
	struct slice out;
	unsigned flags;
	uint64_t size;
	size_t consumed;
	bool done;
	unsigned received;
	bool eight_bit;
};

struct data_result {
	struct sink sink;
	unsigned flags;
	uint64_t size;
	size_t consumed;
	bool done;
	unsigned received;
	bool eight_bit;
};

enum split { SPLIT_ALL, SPLIT_BYTES, SPLIT_RANDOM };

static uint32_t rnd_next(uint32_t *s)
{
	/* xorshift32: fixed seeds, the same splits on every run */
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void run_split(const struct data_case *c, enum split how, uint32_t seed,
		      struct data_result *res)
{
	struct smtp_data d;
	size_t off = 0, len = c->in.len;

	memset(res, 0, sizeof(*res));
	smtp_data_init(&d, c->mode, c->max_size, sink_write, &res->sink);
	while (off < len) {
		size_t piece = len - off;

		if (how == SPLIT_BYTES) {
			piece = 1;
		} else if (how == SPLIT_RANDOM) {
			uint32_t r = rnd_next(&seed);
			size_t want = (r & 3) == 0 ? 1 + (r >> 2) % 64 : 1 + (r >> 2) % 4;
			if (want < piece)
				piece = want;
		}
		size_t got = smtp_data_feed(&d, c->in.ptr + off, piece);
		res->consumed += got;
		if (got < piece) {
			CHECK_MSG(d.done, "%s: feed stopped short without done", c->name);
			break;
		}
		off += piece;
	}
	if (d.done && res->consumed < len) {
		/* Once done, nothing more is taken. */
		CHECK(smtp_data_feed(&d, c->in.ptr + res->consumed, len - res->consumed) == 0);
	}
	if (c->mode == SMTP_DATA_MODE_BDAT)
		smtp_data_bdat_end(&d);
	res->flags = d.flags;
	res->size = d.size;
	res->done = d.done;
	res->received = d.received_count;
	res->eight_bit = d.eight_bit;
}

static const char *split_name(enum split how)
{
	return how == SPLIT_ALL ? "all" : how == SPLIT_BYTES ? "bytes" : "random";
}

static void check_result(const struct data_case *c, enum split how, uint32_t seed,
			 const struct data_result *r)
{
	const char *n = c->name, *h = split_name(how);

	CHECK_MSG(!r->sink.overflow, "%s/%s: sink overflow", n, h);
	CHECK_MSG(r->sink.len == c->out.len && memcmp(r->sink.data, c->out.ptr, c->out.len) == 0,
		  "%s/%s seed=%u: output (%zu octets) differs from expected (%zu octets)", n, h,
		  (unsigned)seed, r->sink.len, c->out.len);
	CHECK_MSG(r->flags == c->flags, "%s/%s seed=%u: flags 0x%x, expected 0x%x", n, h,
		  (unsigned)seed, r->flags, c->flags);
	CHECK_MSG(r->size == c->size, "%s/%s seed=%u: size %llu, expected %llu", n, h,
		  (unsigned)seed, (unsigned long long)r->size, (unsigned long long)c->size);
	CHECK_MSG(r->consumed == c->consumed, "%s/%s seed=%u: consumed %zu, expected %zu", n, h,
		  (unsigned)seed, r->consumed, c->consumed);
	CHECK_MSG(r->done == c->done, "%s/%s seed=%u: done %d", n, h, (unsigned)seed, r->done);
	CHECK_MSG(r->received == c->received, "%s/%s seed=%u: received_count %u, expected %u", n,
		  h, (unsigned)seed, r->received, c->received);
	CHECK_MSG(r->eight_bit == c->eight_bit, "%s/%s seed=%u: eight_bit %d", n, h,
		  (unsigned)seed, r->eight_bit);
}

/* Run a case all at once, byte by byte and with 40 random splittings. */
static void run_case(const struct data_case *c)
{
	struct data_result *r = malloc(sizeof(*r));

	if (!r)
		abort();
	run_split(c, SPLIT_ALL, 0, r);
	check_result(c, SPLIT_ALL, 0, r);
	run_split(c, SPLIT_BYTES, 0, r);
	check_result(c, SPLIT_BYTES, 0, r);
	for (uint32_t seed = 1; seed <= 40; seed++) {
		run_split(c, SPLIT_RANDOM, seed * 2654435761u, r);
		check_result(c, SPLIT_RANDOM, seed, r);
	}
	free(r);
}

#define IN(s) .in = SLICE_LIT(s)
#define OUT(s) .out = SLICE_LIT(s)
#define D SMTP_DATA_MODE_DATA
#define B SMTP_DATA_MODE_BDAT
#define BARE_LF SMTP_DATA_BARE_LF
#define BARE_CR SMTP_DATA_BARE_CR

/* Head of every smuggling case; what a client sends before the trick. */
#define HEAD "From: a@example.org\r\nSubject: hi\r\n\r\nbody"
#define EVIL "MAIL FROM:<evil@example.org>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\n" \
	"From: ceo@example.org\r\n\r\nsend money\r\n"

static const struct data_case data_cases[] = {
	/* --- plain DATA --- */
	{ "plain", D, NO_LIMIT, IN("Subject: hi\r\n\r\nhello\r\n.\r\n"),
	  OUT("Subject: hi\r\n\r\nhello\r\n"), 0, LEN("Subject: hi\r\n\r\nhello\r\n"),
	  LEN("Subject: hi\r\n\r\nhello\r\n.\r\n"), true, 0, false },
	{ "last_line_crlf_kept", D, NO_LIMIT, IN("abc\r\n.\r\n"), OUT("abc\r\n"), 0, 5, 8, true,
	  0, false },
	{ "empty_message", D, NO_LIMIT, IN(".\r\n"), OUT(""), 0, 0, 3, true, 0, false },
	{ "empty_message_limit_0", D, 0, IN(".\r\n"), OUT(""), 0, 0, 3, true, 0, false },
	{ "empty_line_message", D, NO_LIMIT, IN("\r\n.\r\n"), OUT("\r\n"), 0, 2, 5, true, 0,
	  false },
	{ "no_end_yet", D, NO_LIMIT, IN("abc\r\ndef"), OUT("abc\r\ndef"), 0, 8, 8, false, 0,
	  false },
	{ "partial_end", D, NO_LIMIT, IN("abc\r\n.\r"), OUT("abc\r\n"), 0, 5, 7, false, 0,
	  false },
	{ "partial_end_dot", D, NO_LIMIT, IN("abc\r\n."), OUT("abc\r\n"), 0, 5, 6, false, 0,
	  false },
	{ "pending_cr", D, NO_LIMIT, IN("abc\r"), OUT("abc"), 0, 3, 4, false, 0, false },
	{ "pipelined_mail_from", D, NO_LIMIT,
	  IN("hi\r\n.\r\nMAIL FROM:<b@example.org>\r\nRCPT TO:<c@example.org>\r\n"),
	  OUT("hi\r\n"), 0, 4, 7, true, 0, false },
	{ "pipelined_after_empty", D, NO_LIMIT, IN(".\r\nQUIT\r\n"), OUT(""), 0, 0, 3, true, 0,
	  false },
	{ "end_then_dot_line", D, NO_LIMIT, IN("a\r\n.\r\n.\r\n"), OUT("a\r\n"), 0, 3, 6, true, 0,
	  false },

	/* --- dot-stuffing (RFC 5321 4.5.2) --- */
	{ "stuffed", D, NO_LIMIT, IN("a\r\n..b\r\n.\r\n"), OUT("a\r\n.b\r\n"), 0, 7, 11, true, 0,
	  false },
	{ "stuffed_first_line", D, NO_LIMIT, IN("..b\r\n.\r\n"), OUT(".b\r\n"), 0, 4, 8, true, 0,
	  false },
	{ "line_dotdot", D, NO_LIMIT, IN("x\r\n..\r\n.\r\n"), OUT("x\r\n.\r\n"), 0, 6, 10, true,
	  0, false },
	{ "line_dotdotdot", D, NO_LIMIT, IN("...\r\n.\r\n"), OUT("..\r\n"), 0, 4, 8, true, 0,
	  false },
	{ "unstuffed_dot_dropped", D, NO_LIMIT, IN(".x\r\n.\r\n"), OUT("x\r\n"), 0, 3, 7, true, 0,
	  false },
	{ "dot_inside_line", D, NO_LIMIT, IN("a.b\r\n a.\r\n.\r\n"), OUT("a.b\r\n a.\r\n"), 0, 10,
	  13, true, 0, false },
	{ "dot_space_line", D, NO_LIMIT, IN(". \r\n.\r\n"), OUT(" \r\n"), 0, 3, 7, true, 0,
	  false },

	/* --- SMTP smuggling: none of these ends the data --- */
	{ "smuggle_lf_dot_lf", D, NO_LIMIT, IN(HEAD "\n.\n" EVIL ".\r\nQUIT\r\n"), OUT(HEAD),
	  BARE_LF, LEN(HEAD "\n.\n" EVIL), LEN(HEAD "\n.\n" EVIL ".\r\n"), true, 0, false },
	{ "smuggle_cr_dot_cr", D, NO_LIMIT, IN(HEAD "\r.\r" EVIL ".\r\nQUIT\r\n"), OUT(HEAD),
	  BARE_CR, LEN(HEAD "\r.\r" EVIL), LEN(HEAD "\r.\r" EVIL ".\r\n"), true, 0, false },
	{ "smuggle_crlf_dot_lf", D, NO_LIMIT, IN(HEAD "\r\n.\n" EVIL ".\r\nQUIT\r\n"),
	  OUT(HEAD "\r\n"), BARE_LF, LEN(HEAD "\r\n\n" EVIL), LEN(HEAD "\r\n.\n" EVIL ".\r\n"),
	  true, 0, false },
	{ "smuggle_lf_dot_crlf", D, NO_LIMIT, IN(HEAD "\n.\r\n" EVIL ".\r\nQUIT\r\n"), OUT(HEAD),
	  BARE_LF, LEN(HEAD "\n.\r\n" EVIL), LEN(HEAD "\n.\r\n" EVIL ".\r\n"), true, 0, false },
	{ "smuggle_cr_dot_lf", D, NO_LIMIT, IN(HEAD "\r.\n" EVIL ".\r\nQUIT\r\n"), OUT(HEAD),
	  BARE_CR | BARE_LF, LEN(HEAD "\r.\n" EVIL), LEN(HEAD "\r.\n" EVIL ".\r\n"), true, 0,
	  false },
	{ "smuggle_crlf_dot_cr", D, NO_LIMIT, IN(HEAD "\r\n.\r" EVIL ".\r\nQUIT\r\n"),
	  OUT(HEAD "\r\n"), BARE_CR, LEN(HEAD "\r\n\r" EVIL), LEN(HEAD "\r\n.\r" EVIL ".\r\n"),
	  true, 0, false },
	{ "smuggle_crlf_dot_cr_crlf", D, NO_LIMIT, IN(HEAD "\r\n.\r\r\n" EVIL ".\r\nQUIT\r\n"),
	  OUT(HEAD "\r\n"), BARE_CR, LEN(HEAD "\r\n\r\r\n" EVIL),
	  LEN(HEAD "\r\n.\r\r\n" EVIL ".\r\n"), true, 0, false },
	{ "smuggle_lf_dot_lf_first", D, NO_LIMIT, IN("\n.\n.\r\n" EVIL ".\r\n"), OUT(""),
	  BARE_LF, LEN("\n.\n.\r\n" EVIL), LEN("\n.\n.\r\n" EVIL ".\r\n"), true, 0, false },
	{ "smuggle_dot_lf_first", D, NO_LIMIT, IN(".\n" EVIL ".\r\nQUIT\r\n"), OUT(""), BARE_LF,
	  LEN("\n" EVIL), LEN(".\n" EVIL ".\r\n"), true, 0, false },
	{ "smuggle_dot_cr_first", D, NO_LIMIT, IN(".\r" EVIL ".\r\nQUIT\r\n"), OUT(""), BARE_CR,
	  LEN("\r" EVIL), LEN(".\r" EVIL ".\r\n"), true, 0, false },
	/* Stopping right after the trick: still reading, all consumed. */
	{ "smuggle_open_lf_dot_lf", D, NO_LIMIT, IN(HEAD "\n.\n"), OUT(HEAD), BARE_LF,
	  LEN(HEAD "\n.\n"), LEN(HEAD "\n.\n"), false, 0, false },
	{ "smuggle_open_cr_dot_cr", D, NO_LIMIT, IN(HEAD "\r.\r"), OUT(HEAD), BARE_CR,
	  LEN(HEAD "\r."), LEN(HEAD "\r.\r"), false, 0, false },
	{ "smuggle_open_crlf_dot_lf", D, NO_LIMIT, IN(HEAD "\r\n.\n"), OUT(HEAD "\r\n"), BARE_LF,
	  LEN(HEAD "\r\n\n"), LEN(HEAD "\r\n.\n"), false, 0, false },
	{ "smuggle_open_lf_dot_crlf", D, NO_LIMIT, IN(HEAD "\n.\r\n"), OUT(HEAD), BARE_LF,
	  LEN(HEAD "\n.\r\n"), LEN(HEAD "\n.\r\n"), false, 0, false },
	{ "smuggle_open_cr_dot_lf", D, NO_LIMIT, IN(HEAD "\r.\n"), OUT(HEAD), BARE_CR | BARE_LF,
	  LEN(HEAD "\r.\n"), LEN(HEAD "\r.\n"), false, 0, false },
	{ "smuggle_open_crlf_dot_cr_x", D, NO_LIMIT, IN(HEAD "\r\n.\rX"), OUT(HEAD "\r\n"),
	  BARE_CR, LEN(HEAD "\r\n\rX"), LEN(HEAD "\r\n.\rX"), false, 0, false },
	{ "smuggle_open_crlf_dot_cr_crlf", D, NO_LIMIT, IN(HEAD "\r\n.\r\r\n"), OUT(HEAD "\r\n"),
	  BARE_CR, LEN(HEAD "\r\n\r\r\n"), LEN(HEAD "\r\n.\r\r\n"), false, 0, false },
	/* A lone LF then a real "\r\n.\r\n": that one ends it. */
	{ "bare_lf_then_real_end", D, NO_LIMIT, IN("a\nb\r\n.\r\nX"), OUT("a"), BARE_LF, 5, 8,
	  true, 0, false },
	{ "bare_cr_then_real_end", D, NO_LIMIT, IN("a\rb\r\n.\r\nX"), OUT("a"), BARE_CR, 5, 8,
	  true, 0, false },
	{ "bare_cr_at_line_start", D, NO_LIMIT, IN("a\r\n\r.\r\n.\r\n"), OUT("a\r\n"), BARE_CR,
	  7, 10, true, 0, false },
	{ "cr_cr_lf", D, NO_LIMIT, IN("a\r\r\n.\r\n"), OUT("a"), BARE_CR, 4, 7, true, 0, false },
	{ "lf_lf", D, NO_LIMIT, IN("a\n\n\r\n.\r\n"), OUT("a"), BARE_LF, 5, 8, true, 0, false },

	/* --- size limit --- */
	{ "size_exact", D, 5, IN("abc\r\n.\r\n"), OUT("abc\r\n"), 0, 5, 8, true, 0, false },
	{ "size_one_over", D, 4, IN("abc\r\n.\r\n"), OUT("abc"), SMTP_DATA_TOO_BIG, 5, 8, true, 0,
	  false },
	{ "size_over_mid_line", D, 2, IN("abc\r\n.\r\n"), OUT("ab"), SMTP_DATA_TOO_BIG, 5, 8,
	  true, 0, false },
	{ "size_counts_on", D, 4, IN("abcdef\r\nghi\r\n..j\r\n.\r\nQUIT\r\n"), OUT("abcd"),
	  SMTP_DATA_TOO_BIG, 17, 21, true, 0, false },
	{ "size_zero", D, 0, IN("a\r\n.\r\n"), OUT(""), SMTP_DATA_TOO_BIG, 3, 6, true, 0, false },
	{ "size_stuffing_not_counted", D, 4, IN("..b\r\n.\r\n"), OUT(".b\r\n"), 0, 4, 8, true, 0,
	  false },

	/* --- Received counting in the header section --- */
	{ "received", D, NO_LIMIT,
	  IN("Received: from a\r\n\tby b; folded\r\nreceived:x\r\nRECEIVED :y\r\n"
	     "Received\t:z\r\nX-Received: no\r\n Received: continuation\r\n"
	     "\tReceived: continuation\r\nReceivedX: no\r\nRecei: no\r\nReceived no\r\n"
	     "Received\r\n:\r\nSubject: s\r\n\r\nReceived: body\r\n.\r\n"),
	  OUT("Received: from a\r\n\tby b; folded\r\nreceived:x\r\nRECEIVED :y\r\n"
	      "Received\t:z\r\nX-Received: no\r\n Received: continuation\r\n"
	      "\tReceived: continuation\r\nReceivedX: no\r\nRecei: no\r\nReceived no\r\n"
	      "Received\r\n:\r\nSubject: s\r\n\r\nReceived: body\r\n"),
	  0,
	  LEN("Received: from a\r\n\tby b; folded\r\nreceived:x\r\nRECEIVED :y\r\n"
	      "Received\t:z\r\nX-Received: no\r\n Received: continuation\r\n"
	      "\tReceived: continuation\r\nReceivedX: no\r\nRecei: no\r\nReceived no\r\n"
	      "Received\r\n:\r\nSubject: s\r\n\r\nReceived: body\r\n"),
	  LEN("Received: from a\r\n\tby b; folded\r\nreceived:x\r\nRECEIVED :y\r\n"
	      "Received\t:z\r\nX-Received: no\r\n Received: continuation\r\n"
	      "\tReceived: continuation\r\nReceivedX: no\r\nRecei: no\r\nReceived no\r\n"
	      "Received\r\n:\r\nSubject: s\r\n\r\nReceived: body\r\n.\r\n"),
	  true, 4, false },
	{ "received_stuffed", D, NO_LIMIT, IN(".Received: x\r\n\r\n.\r\n"),
	  OUT("Received: x\r\n\r\n"), 0, 15, 19, true, 1, false },
	{ "received_after_body_start", D, NO_LIMIT,
	  IN("\r\nReceived: a\r\nReceived: b\r\n.\r\n"),
	  OUT("\r\nReceived: a\r\nReceived: b\r\n"), 0, 28, 31, true, 0, false },
	{ "received_bare_lf_in_name", D, NO_LIMIT, IN("Rece\nived: a\r\n.\r\n"), OUT("Rece"),
	  BARE_LF, 14, 17, true, 0, false },
	{ "received_long_wsp", D, NO_LIMIT, IN("Received    \t  : a\r\n.\r\n"),
	  OUT("Received    \t  : a\r\n"), 0, 20, 23, true, 1, false },

	/* --- 8-bit --- */
	{ "eight_bit", D, NO_LIMIT, IN("Subject: \xc3\xa9t\xc3\xa9\r\n\r\n.\r\n"),
	  OUT("Subject: \xc3\xa9t\xc3\xa9\r\n\r\n"), 0, 18, 21, true, 0, true },
	{ "eight_bit_after_end", D, NO_LIMIT, IN("a\r\n.\r\n\xff"), OUT("a\r\n"), 0, 3, 6, true,
	  0, false },
	{ "seven_bit_nul", D, NO_LIMIT, IN("a\0b\r\n.\r\n"), OUT("a\0b\r\n"), 0, 5, 8, true, 0,
	  false },

	/* --- BDAT (RFC 3030) --- */
	{ "bdat_plain", B, NO_LIMIT, IN("Received: x\r\n\r\nbody\r\n"),
	  OUT("Received: x\r\n\r\nbody\r\n"), 0, 21, 21, false, 1, false },
	{ "bdat_no_stuffing", B, NO_LIMIT, IN("..x\r\n.\r\nMAIL\r\n"),
	  OUT("..x\r\n.\r\nMAIL\r\n"), 0, 14, 14, false, 0, false },
	{ "bdat_missing_crlf", B, NO_LIMIT, IN("a\r\nbody"), OUT("a\r\nbody\r\n"), 0, 9, 7, false,
	  0, false },
	{ "bdat_bare_cr_at_end", B, NO_LIMIT, IN("a\r\nbody\r"), OUT("a\r\nbody"), BARE_CR, 10, 8,
	  false, 0, false },
	{ "bdat_bare_lf", B, NO_LIMIT, IN("a\nb\r\n"), OUT("a"), BARE_LF, 5, 5, false, 0, false },
	{ "bdat_bare_cr", B, NO_LIMIT, IN("a\rb\r\n"), OUT("a"), BARE_CR, 5, 5, false, 0, false },
	{ "bdat_empty", B, NO_LIMIT, IN(""), OUT(""), 0, 0, 0, false, 0, false },
	{ "bdat_only_crlf", B, NO_LIMIT, IN("\r\n"), OUT("\r\n"), 0, 2, 2, false, 0, false },
	{ "bdat_only_cr", B, NO_LIMIT, IN("\r"), OUT(""), BARE_CR, 3, 1, false, 0, false },
	{ "bdat_size_exact_with_added_crlf", B, 5, IN("abc"), OUT("abc\r\n"), 0, 5, 3, false, 0,
	  false },
	{ "bdat_size_added_crlf_over", B, 4, IN("abc"), OUT("abc"), SMTP_DATA_TOO_BIG, 5, 3,
	  false, 0, false },
	{ "bdat_eight_bit", B, NO_LIMIT, IN("\x80\r\n"), OUT("\x80\r\n"), 0, 3, 3, false, 0,
	  true },
};

TEST(data_table)
{
	for (size_t i = 0; i < sizeof(data_cases) / sizeof(data_cases[0]); i++)
		run_case(&data_cases[i]);
}

/* Build "<prefix><n x 'a'><suffix>" into a static buffer (one case at a time). */
static struct slice make_line(char *buf, size_t cap, const char *prefix, size_t n,
			      const char *suffix)
{
	size_t pl = strlen(prefix), sl = strlen(suffix);

	if (pl + n + sl > cap)
		abort();
	memcpy(buf, prefix, pl);
	memset(buf + pl, 'a', n);
	memcpy(buf + pl + n, suffix, sl);
	return (struct slice){ buf, pl + n + sl };
}

TEST(line_length)
{
	static char in[4096], out[4096];
	struct data_case c;

	/* 998 + CRLF = 1000 octets: the limit, accepted. */
	c = (struct data_case){ .name = "line_1000", .mode = D, .max_size = NO_LIMIT,
				.done = true };
	c.in = make_line(in, sizeof(in), "x\r\n", 998, "\r\n.\r\n");
	c.out = make_line(out, sizeof(out), "x\r\n", 998, "\r\n");
	c.size = c.out.len;
	c.consumed = c.in.len;
	run_case(&c);

	/* 999 + CRLF = 1001: too long; output stops before that line's CR. */
	c = (struct data_case){ .name = "line_1001", .mode = D, .max_size = NO_LIMIT,
				.flags = SMTP_DATA_LINE_TOO_LONG, .done = true };
	c.in = make_line(in, sizeof(in), "x\r\n", 999, "\r\nnext\r\n.\r\nQUIT\r\n");
	c.out = make_line(out, sizeof(out), "x\r\n", 999, "");
	c.size = 3 + 999 + 2 + 6;
	c.consumed = c.in.len - LEN("QUIT\r\n");
	run_case(&c);

	/* RFC 5321 4.5.3.1.6: the stuffing dot does not count. "." + 999 + CRLF: too long. */
	c = (struct data_case){ .name = "line_1001_stuffed", .mode = D, .max_size = NO_LIMIT,
				.flags = SMTP_DATA_LINE_TOO_LONG, .done = true };
	c.in = make_line(in, sizeof(in), ".", 999, "\r\n.\r\n");
	c.out = make_line(out, sizeof(out), "", 999, "");
	c.size = 1001;
	c.consumed = c.in.len;
	run_case(&c);

	/* "." + 998 + CRLF: 1000 octets once the dot is removed: fine. */
	c = (struct data_case){ .name = "line_1000_stuffed", .mode = D, .max_size = NO_LIMIT,
				.done = true };
	c.in = make_line(in, sizeof(in), ".", 998, "\r\n.\r\n");
	c.out = make_line(out, sizeof(out), "", 998, "\r\n");
	c.size = 1000;
	c.consumed = c.in.len;
	run_case(&c);

	/* 1000 + CRLF: the CR is octet 1001. */
	c = (struct data_case){ .name = "line_1002", .mode = D, .max_size = NO_LIMIT,
				.flags = SMTP_DATA_LINE_TOO_LONG, .done = true };
	c.in = make_line(in, sizeof(in), "", 1000, "\r\n.\r\n");
	c.out = make_line(out, sizeof(out), "", 1000, "");
	c.size = 1002;
	c.consumed = c.in.len;
	run_case(&c);

	/* A much longer line: flagged once, counted whole. */
	c = (struct data_case){ .name = "line_3000", .mode = D, .max_size = NO_LIMIT,
				.flags = SMTP_DATA_LINE_TOO_LONG, .done = true };
	c.in = make_line(in, sizeof(in), "", 3000, "\r\nb\r\n.\r\n");
	c.out = make_line(out, sizeof(out), "", 1000, "");
	c.size = 3000 + 2 + 3;
	c.consumed = c.in.len;
	run_case(&c);

	/* BDAT: 998 octets without CRLF; the added CRLF makes the line 1000. */
	c = (struct data_case){ .name = "bdat_line_1000_added", .mode = B, .max_size = NO_LIMIT };
	c.in = make_line(in, sizeof(in), "", 998, "");
	c.out = make_line(out, sizeof(out), "", 998, "\r\n");
	c.size = 1000;
	c.consumed = c.in.len;
	run_case(&c);

	/* BDAT: 999 octets without CRLF: the stored line would be 1001. */
	c = (struct data_case){ .name = "bdat_line_1001_added", .mode = B, .max_size = NO_LIMIT,
				.flags = SMTP_DATA_LINE_TOO_LONG };
	c.in = make_line(in, sizeof(in), "", 999, "");
	c.out = make_line(out, sizeof(out), "", 999, "");
	c.size = 1001;
	c.consumed = c.in.len;
	run_case(&c);

	/* BDAT: 999 + CRLF received. */
	c = (struct data_case){ .name = "bdat_line_1001", .mode = B, .max_size = NO_LIMIT,
				.flags = SMTP_DATA_LINE_TOO_LONG };
	c.in = make_line(in, sizeof(in), "", 999, "\r\n");
	c.out = make_line(out, sizeof(out), "", 999, "");
	c.size = 1001;
	c.consumed = c.in.len;
	run_case(&c);
}

/* Feed the chunks in order to a BDAT reader; return it for inspection. */
static void bdat_chunks(struct smtp_data *d, struct sink *s, const char *const *chunks,
			size_t n)
{
	memset(s, 0, sizeof(*s));
	smtp_data_init(d, SMTP_DATA_MODE_BDAT, NO_LIMIT, sink_write, s);
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(chunks[i]);
		CHECK(smtp_data_feed(d, chunks[i], len) == len);
	}
	smtp_data_bdat_end(d);
}

TEST(bdat_chunk_boundaries)
{
	static struct sink s;
	struct smtp_data d;

	/* CR at the end of one chunk, LF at the start of the next: one CRLF. */
	const char *split_crlf[] = { "Subject: x\r", "\n\r", "\nbody\r", "\n" };
	bdat_chunks(&d, &s, split_crlf, 4);
	CHECK_INT(d.flags, 0);
	CHECK(s.len == 20 && memcmp(s.data, "Subject: x\r\n\r\nbody\r\n", 20) == 0);
	CHECK_INT(d.size, 20);

	/* The last chunk lacks the final CRLF. */
	const char *no_crlf[] = { "a\r\n", "b" };
	bdat_chunks(&d, &s, no_crlf, 2);
	CHECK_INT(d.flags, 0);
	CHECK(s.len == 6 && memcmp(s.data, "a\r\nb\r\n", 6) == 0);
	CHECK_INT(d.size, 6);

	/* A CR ends the last chunk: nothing follows it, so it is bare. */
	const char *cr_end[] = { "a\r\n", "b\r" };
	bdat_chunks(&d, &s, cr_end, 2);
	CHECK_INT(d.flags, SMTP_DATA_BARE_CR);
	CHECK(s.len == 4 && memcmp(s.data, "a\r\nb", 4) == 0);

	/* A CR ends a chunk and the next starts with something else. */
	const char *cr_x[] = { "a\r", "b\r\n" };
	bdat_chunks(&d, &s, cr_x, 2);
	CHECK_INT(d.flags, SMTP_DATA_BARE_CR);
	CHECK(s.len == 1 && s.data[0] == 'a');

	/* bdat_end twice adds nothing more. */
	smtp_data_bdat_end(&d);
	CHECK_INT(d.size, 5);
}

TEST(output_failure)
{
	static const char msg[] = "Subject: x\r\n\r\nline one\r\n..two\r\n.\r\nQUIT\r\n";
	static struct sink s;
	struct smtp_data d;
	size_t got = 0;

	/* All at once: the first write fails; reading goes on to the end. */
	memset(&s, 0, sizeof(s));
	s.fail_on_call = 1;
	smtp_data_init(&d, SMTP_DATA_MODE_DATA, NO_LIMIT, sink_write, &s);
	got = smtp_data_feed(&d, msg, LEN(msg));
	CHECK_INT(got, LEN(msg) - LEN("QUIT\r\n"));
	CHECK(d.done);
	CHECK_INT(d.flags, SMTP_DATA_OUTPUT_FAILED);
	CHECK_INT(s.calls, 1);
	CHECK_INT(d.size, LEN("Subject: x\r\n\r\nline one\r\n.two\r\n"));

	/* Byte by byte: the second write fails, and there is no third. */
	memset(&s, 0, sizeof(s));
	s.fail_on_call = 2;
	smtp_data_init(&d, SMTP_DATA_MODE_DATA, NO_LIMIT, sink_write, &s);
	got = 0;
	for (size_t i = 0; i < LEN(msg) && !d.done; i++)
		got += smtp_data_feed(&d, msg + i, 1);
	CHECK_INT(got, LEN(msg) - LEN("QUIT\r\n"));
	CHECK(d.done);
	CHECK_INT(d.flags, SMTP_DATA_OUTPUT_FAILED);
	CHECK_INT(s.calls, 2);
	CHECK_INT(s.len, 1);

	/* BDAT: the failure stays after bdat_end (which writes nothing more). */
	memset(&s, 0, sizeof(s));
	s.fail_on_call = 1;
	smtp_data_init(&d, SMTP_DATA_MODE_BDAT, NO_LIMIT, sink_write, &s);
	CHECK_INT(smtp_data_feed(&d, "abc", 3), 3);
	smtp_data_bdat_end(&d);
	CHECK_INT(d.flags, SMTP_DATA_OUTPUT_FAILED);
	CHECK_INT(s.calls, 1);
	CHECK_INT(d.size, 5);
}

TEST(large_runs)
{
	/* The common path hands whole runs to the output, not bytes or lines. */
	static const char msg[] = "Subject: x\r\n\r\nline one\r\nline two\r\nline three\r\n.\r\n";
	static struct sink s;
	struct smtp_data d;

	memset(&s, 0, sizeof(s));
	smtp_data_init(&d, SMTP_DATA_MODE_DATA, NO_LIMIT, sink_write, &s);
	CHECK_INT(smtp_data_feed(&d, msg, LEN(msg)), LEN(msg));
	CHECK_INT(s.calls, 1);
	CHECK_INT(s.len, LEN(msg) - 3);

	/* One cut per stuffing dot. */
	static const char stuffed[] = "a\r\n..b\r\nc\r\n.\r\n";
	memset(&s, 0, sizeof(s));
	smtp_data_init(&d, SMTP_DATA_MODE_DATA, NO_LIMIT, sink_write, &s);
	CHECK_INT(smtp_data_feed(&d, stuffed, LEN(stuffed)), LEN(stuffed));
	CHECK_INT(s.calls, 2);
}

TEST(done_consumes_nothing)
{
	struct smtp_data d;

	smtp_data_init(&d, SMTP_DATA_MODE_DATA, NO_LIMIT, NULL, NULL);
	CHECK_INT(smtp_data_feed(&d, "a\r\n.\r\nMAIL", 10), 6);
	CHECK(d.done);
	CHECK_INT(smtp_data_feed(&d, "MAIL", 4), 0);
	CHECK_INT(smtp_data_feed(&d, "\r\n.\r\n", 5), 0);
	CHECK_INT(d.size, 3);
	CHECK_INT(smtp_data_feed(&d, "", 0), 0);
}

TEST(reset_keeps_configuration)
{
	static struct sink s;
	struct smtp_data d;

	memset(&s, 0, sizeof(s));
	smtp_data_init(&d, SMTP_DATA_MODE_DATA, 4, sink_write, &s);
	CHECK_INT(smtp_data_feed(&d, "Received: x\r\n\xff\n\r\n.\r\n", 20), 20);
	CHECK(d.done);
	CHECK(d.flags == (SMTP_DATA_TOO_BIG | SMTP_DATA_BARE_LF));
	CHECK(d.eight_bit);
	CHECK_INT(d.received_count, 1);

	/* A half-read line ("Rec" in the header name, a held-back CR) is forgotten too. */
	smtp_data_reset(&d);
	CHECK_INT(smtp_data_feed(&d, "..\r", 3), 3);
	smtp_data_reset(&d);
	CHECK(!d.done && d.flags == 0 && d.size == 0 && d.received_count == 0 && !d.eight_bit);
	CHECK(d.mode == SMTP_DATA_MODE_DATA && d.max_size == 4 && d.output == sink_write &&
	      d.output_ctx == &s);
	s.len = 0;
	CHECK_INT(smtp_data_feed(&d, "\r\n.\r\n", 5), 5);
	CHECK(d.done);
	CHECK_INT(d.flags, 0);
	CHECK(s.len == 2 && memcmp(s.data, "\r\n", 2) == 0);
}

TEST(no_output_callback)
{
	struct smtp_data d;

	/* A NULL output only counts: useful to read on and discard. */
	smtp_data_init(&d, SMTP_DATA_MODE_DATA, NO_LIMIT, NULL, NULL);
	CHECK_INT(smtp_data_feed(&d, "ab\r\n.\r\n", 7), 7);
	CHECK(d.done);
	CHECK_INT(d.size, 4);
	CHECK_INT(d.flags, 0);
}

/* The header_end callback: says what was seen, and is asked at most once. */
static unsigned header_end_calls;
static const char *added_header(void *ctx, unsigned seen)
{
	static char text[64];
	(void)ctx;
	header_end_calls++;
	if ((seen & (SMTP_DATA_HDR_DATE | SMTP_DATA_HDR_MESSAGE_ID)) ==
	    (SMTP_DATA_HDR_DATE | SMTP_DATA_HDR_MESSAGE_ID))
		return NULL;
	snprintf(text, sizeof text, "X-Added: %u\r\n", seen);
	return text;
}

struct header_end_case {
	enum smtp_data_mode mode;
	const char *in;
	const char *out;
};

TEST(header_end_insertion)
{
	static const struct header_end_case rows[] = {
		{ SMTP_DATA_MODE_DATA, "Subject: x\r\n\r\nbody\r\n.\r\n",
		  "Subject: x\r\nX-Added: 0\r\n\r\nbody\r\n" },
		{ SMTP_DATA_MODE_DATA, "date: x\r\nSubject: y\r\n\r\nDate: body\r\n.\r\n",
		  "date: x\r\nSubject: y\r\nX-Added: 1\r\n\r\nDate: body\r\n" },
		{ SMTP_DATA_MODE_DATA, "Message-ID : <a@b>\r\nDates: x\r\n\r\n.\r\n",
		  "Message-ID : <a@b>\r\nDates: x\r\nX-Added: 2\r\n\r\n" },
		{ SMTP_DATA_MODE_DATA, "Date: x\r\nMESSAGE-ID: <a@b>\r\n\r\nb\r\n.\r\n",
		  "Date: x\r\nMESSAGE-ID: <a@b>\r\n\r\nb\r\n" },
		/* Folded lines and names that only begin like ours. */
		{ SMTP_DATA_MODE_DATA, "Subject: a\r\n Date: b\r\nMessage-IDs: c\r\nDat: d\r\n\r\n.\r\n",
		  "Subject: a\r\n Date: b\r\nMessage-IDs: c\r\nDat: d\r\nX-Added: 0\r\n\r\n" },
		/* No body, no message at all, a stuffed dot in the headers. */
		{ SMTP_DATA_MODE_DATA, "Subject: x\r\n.\r\n", "Subject: x\r\nX-Added: 0\r\n" },
		{ SMTP_DATA_MODE_DATA, ".\r\n", "X-Added: 0\r\n" },
		{ SMTP_DATA_MODE_DATA, "..x: y\r\n\r\n.\r\n", ".x: y\r\nX-Added: 0\r\n\r\n" },
		{ SMTP_DATA_MODE_BDAT, "Subject: x\r\n\r\nb", "Subject: x\r\nX-Added: 0\r\n\r\nb\r\n" },
		{ SMTP_DATA_MODE_BDAT, "Subject: x", "Subject: x\r\nX-Added: 0\r\n" },
		{ SMTP_DATA_MODE_BDAT, "", "X-Added: 0\r\n" },
	};
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		const struct header_end_case *c = &rows[i];
		size_t n = strlen(c->in);
		/* Whole, then one byte at a time (every CR/LF split). */
		for (int bytewise = 0; bytewise < 2; bytewise++) {
			static struct sink s;
			struct smtp_data d;
			memset(&s, 0, sizeof(s));
			header_end_calls = 0;
			smtp_data_init(&d, c->mode, NO_LIMIT, sink_write, &s);
			smtp_data_set_header_end(&d, added_header);
			for (size_t k = 0; k < n && !d.done; k += bytewise ? 1 : n)
				smtp_data_feed(&d, c->in + k, bytewise ? 1 : n);
			if (c->mode == SMTP_DATA_MODE_BDAT)
				smtp_data_bdat_end(&d);
			CHECK_MSG(s.len == strlen(c->out) && memcmp(s.data, c->out, s.len) == 0,
				  "row %zu bytewise %d: got '%.*s'", i, bytewise, (int)s.len, s.data);
			CHECK_MSG(header_end_calls == 1, "row %zu: %u calls", i, header_end_calls);
			CHECK_INT(d.size, strlen(c->out));
			CHECK_INT(d.flags, 0);
		}
	}
}

UNIT_MAIN()
