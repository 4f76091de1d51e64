/*
 * smtp_data: the reader of message content for DATA and BDAT.
 *
 * Contract (smtp_data.h): a resumable state machine over (ptr, len) that
 * gives the same output, flags, size and counts however the input is split
 * into feeds. The output is the message as stored: dot-unstuffed, CRLF line
 * ends exactly as received, without the terminating "." CRLF.
 *
 * How it reads: in the common case a feed is one run of input bytes that go
 * to the output unchanged, so the reader only looks for the next LF and CR
 * with memchr() and hands whole runs to the output callback. A run is cut
 * only where the output differs from the input (a stuffing dot), where output
 * must stop (the first error), and at the end of the feed. A CR that ends a
 * feed is held back (DS_CR) until the next byte tells whether it is half of a
 * CRLF; a run never ends between a CR and its LF, so a size or line-length
 * limit never leaves half a line end in the output.
 *
 * Where output stops: at the first error, exactly before the offending
 * octet (the bare CR or LF; the first octet past the line limit, or the CR
 * when it is the LF of a CRLF that passes it; the first octet past max_size,
 * again never between CR and LF). Everything after is still read, checked
 * and counted in size, so that the session can refuse with the right reason,
 * log the real size, and find the real end of the data.
 *
 * Security: SMTP smuggling (CVE-2023-51764 Postfix, CVE-2023-51765 sendmail,
 * CVE-2023-51766 Exim) relies on a receiver that takes "\n.\n", "\n.\r\n",
 * "\r\n.\n", "\r.\r" or the like as the end of data while another MTA on the
 * path does not, so that a client can hide a second message inside the
 * first. Here only "." CRLF at the start of a line ends the data, and only a
 * CRLF starts a line: a bare CR or bare LF never does, so none of those
 * sequences can end the data, and the message that contains one is refused
 * (its bytes, a smuggled "message" among them, go nowhere). Limits are
 * checked before anything is accumulated; line_len saturates at
 * SMTP_DATA_LINE_MAX + 1 and size at UINT64_MAX.
 *
 * RFC 5321 4.1.1.4 (DATA, end of data), 4.5.2 (transparency: dot-stuffing),
 * 4.5.3.1.6 (1000-octet text lines), 2.3.8 (CRLF is the only line end; bare
 * CR and LF are not to be accepted as one); RFC 3030 (BDAT: no stuffing, no
 * end marker, the chunk size delimits the data).
 */
#include "smtpd/smtp_data.h"

#include <limits.h>
#include <string.h>

#include "util/str.h"

/* d->state */
enum data_state {
	DS_LINE_START, /* the next octet starts a line: after CRLF, or the first */
	DS_TEXT,       /* inside a line */
	DS_CR,         /* inside a line, a CR ended the last feed; its LF decides */
	DS_DOT,        /* DATA: the line began with '.', which was dropped */
	DS_DOT_CR,     /* DATA: the line is ".\r" so far; LF now ends the data */
};

/* d->header_state: how far the current line is from a name of interest, WSP* ":" */
enum header_state {
	HDR_NAME,     /* in the field name; header_name_len octets match */
	HDR_NAME_WSP, /* after the name and some WSP */
	HDR_SKIP,     /* the line has been decided (or we are past the headers) */
};

/* The field names looked for (lower-case), as bits of d->header_cands. */
enum { NAME_RECEIVED, NAME_DATE, NAME_MESSAGE_ID, NAME_COUNT };
static const struct {
	const char *text;
	size_t len;
} header_names[NAME_COUNT] = {
	[NAME_RECEIVED] = { "received", 8 },
	[NAME_DATE] = { "date", 4 },
	[NAME_MESSAGE_ID] = { "message-id", 10 },
};
#define ALL_NAMES ((1u << NAME_COUNT) - 1)

/*
 * The bytes of the current feed that are waiting to be written, from ptr to
 * the reading position. cr: a CR held back from the previous feed comes
 * before them; ptr then points at its LF. lf: the next LF in the feed (or its
 * end), kept so that a feed full of bare CRs is not searched again for each.
 */
struct run {
	const char *ptr;
	bool cr;
	const char *lf;
};

/*
 * Write n octets that belong to the message, or only count them once output
 * has stopped. A write cut by max_size never ends between CR and LF (every
 * CR handed in here is followed by its LF in the same call).
 */
static void emit(struct smtp_data *d, const char *p, size_t n)
{
	uint64_t room = d->size < d->max_size ? d->max_size - d->size : 0;
	bool too_big = (uint64_t)n > room;
	size_t w = n;

	if (too_big) {
		w = (size_t)room;
		if (w > 0 && p[w - 1] == '\r')
			w--;
	}
	if (__builtin_add_overflow(d->size, (uint64_t)n, &d->size))
		d->size = UINT64_MAX;
	if (w > 0 && d->flags == 0 && d->output && d->output(d->output_ctx, p, w) < 0)
		d->flags |= SMTP_DATA_OUTPUT_FAILED;
	if (too_big)
		d->flags |= SMTP_DATA_TOO_BIG;
}

/* Write the run up to end (end > r->ptr whenever r->cr). */
static void flush(struct smtp_data *d, struct run *r, const char *end)
{
	if (r->cr) {
		emit(d, "\r\n", 2);
		r->ptr++;
		r->cr = false;
	}
	if (end > r->ptr)
		emit(d, r->ptr, (size_t)(end - r->ptr));
	r->ptr = end;
}

/* Record an error at pos: what comes before it is written, nothing after. */
static void fail_at(struct smtp_data *d, struct run *r, const char *pos, unsigned flag)
{
	flush(d, r, pos);
	d->flags |= flag;
}

/* Add m octets at q (text or a CR) to the line, checking the limit first. */
static void line_grow(struct smtp_data *d, struct run *r, const char *q, size_t m)
{
	size_t room;

	if (d->line_len > SMTP_DATA_LINE_MAX)
		return;
	room = SMTP_DATA_LINE_MAX - d->line_len;
	if (m <= room) {
		d->line_len += m;
		return;
	}
	fail_at(d, r, q + room, SMTP_DATA_LINE_TOO_LONG);
	d->line_len = SMTP_DATA_LINE_MAX + 1;
}

/*
 * Add the LF of a CRLF whose CR is at cr (or held back in r->cr). When the LF
 * passes the limit, output stops before the CR, not between the two.
 */
static void line_grow_lf(struct smtp_data *d, struct run *r, const char *cr)
{
	if (d->line_len < SMTP_DATA_LINE_MAX) {
		d->line_len++;
		return;
	}
	if (d->line_len == SMTP_DATA_LINE_MAX) {
		if (r->cr) {
			/* The held-back CR is counted but not written. */
			r->cr = false;
			d->flags |= SMTP_DATA_LINE_TOO_LONG;
			emit(d, "\r", 1);
		} else {
			fail_at(d, r, cr, SMTP_DATA_LINE_TOO_LONG);
		}
	}
	d->line_len = SMTP_DATA_LINE_MAX + 1;
}

/* A CRLF has ended the line: the next octet starts one. */
static void line_end(struct smtp_data *d)
{
	/* "\r\n" alone is the empty line that ends the header section. */
	if (d->in_header && d->line_len == 2)
		d->in_header = false;
	d->line_len = 0;
	d->header_state = d->in_header ? HDR_NAME : HDR_SKIP;
	d->header_name_len = 0;
	d->header_cands = ALL_NAMES;
	d->state = DS_LINE_START;
}

/* A name of interest followed by ':' ends here: record it. */
static void header_name_end(struct smtp_data *d)
{
	for (unsigned k = 0; k < NAME_COUNT; k++) {
		if (!(d->header_cands & (1u << k)) || header_names[k].len != d->header_name_len)
			continue;
		if (k == NAME_RECEIVED && d->received_count < UINT_MAX)
			d->received_count++;
		else if (k == NAME_DATE)
			d->headers_seen |= SMTP_DATA_HDR_DATE;
		else if (k == NAME_MESSAGE_ID)
			d->headers_seen |= SMTP_DATA_HDR_MESSAGE_ID;
	}
}

/* Keep the candidate names whose next octet is c; false when none is left. */
static bool header_name_next(struct smtp_data *d, char c)
{
	char lc = ascii_tolower(c);
	for (unsigned k = 0; k < NAME_COUNT; k++) {
		if ((d->header_cands & (1u << k)) &&
		    (d->header_name_len >= header_names[k].len ||
		     header_names[k].text[d->header_name_len] != lc))
			d->header_cands &= ~(1u << k);
	}
	if (!d->header_cands)
		return false;
	d->header_name_len++;
	return true;
}

/*
 * The header section ends (at an empty line, or at the end of a message
 * without body) and nothing before this point is still held in the run:
 * insert what the caller wants there, once.
 */
static void header_section_end(struct smtp_data *d)
{
	if (!d->header_end)
		return;
	const char *add = d->header_end(d->output_ctx, d->headers_seen);
	d->header_end = NULL;
	if (add && add[0])
		emit(d, add, strlen(add));
}

/*
 * Follow the field name of a header line through the octets p[0..n), up to
 * the first CR or LF (which ends it either way): a "Received" WSP* ":" is
 * counted, a Date or Message-ID recorded. Lines starting with WSP continue the
 * previous field.
 */
static void header_scan(struct smtp_data *d, const char *p, size_t n)
{
	for (size_t i = 0; i < n && d->header_state != HDR_SKIP; i++) {
		char c = p[i];

		if (c == ':') {
			header_name_end(d);
			d->header_state = HDR_SKIP;
		} else if (c == ' ' || c == '\t') {
			if (d->header_name_len == 0)
				d->header_state = HDR_SKIP;
			else
				d->header_state = HDR_NAME_WSP;
		} else if (d->header_state != HDR_NAME || !header_name_next(d, c)) {
			d->header_state = HDR_SKIP;
		}
	}
}

/*
 * Read inside a line from p[i], up to and including its line end or the end
 * of the feed; returns the new position. The common path: two memchr()s and
 * a few compares per line, the bytes left in the run.
 */
static size_t scan_text(struct smtp_data *d, struct run *r, const char *p, size_t i, size_t n)
{
	const char *s = p + i, *end = p + n, *lf, *k;

	if (d->header_state != HDR_SKIP)
		header_scan(d, s, n - i);
	if (!r->lf || r->lf < s) {
		lf = memchr(s, '\n', n - i);
		r->lf = lf ? lf : end;
	}
	end = r->lf;
	k = memchr(s, '\r', (size_t)(end - s));
	if (!k)
		k = end;
	line_grow(d, r, s, (size_t)(k - s));
	if (k == p + n)
		return n;
	if (*k == '\n') {
		/* No CR before it in this line: a bare LF, which starts no line. */
		line_grow(d, r, k, 1);
		fail_at(d, r, k, SMTP_DATA_BARE_LF);
		return (size_t)(k + 1 - p);
	}
	line_grow(d, r, k, 1);
	if (k + 1 == p + n) {
		/* Hold the CR back: the next feed says what it is. */
		flush(d, r, k);
		r->ptr = p + n;
		d->state = DS_CR;
		return n;
	}
	if (k[1] == '\n') {
		if (d->in_header && d->line_len == 1 && d->header_end) {
			/* The empty line: what is inserted goes before it. */
			flush(d, r, k);
			header_section_end(d);
		}
		line_grow_lf(d, r, k);
		line_end(d);
		return (size_t)(k + 2 - p);
	}
	/* A bare CR stays in the run, to be counted; output stops before it. */
	fail_at(d, r, k, SMTP_DATA_BARE_CR);
	return (size_t)(k + 1 - p);
}

/* Any octet >= 0x80; eight at a time, as the common case has none. */
static bool has_8bit(const char *p, size_t n)
{
	uint64_t acc = 0, w;
	size_t i = 0;

	for (; i + sizeof(w) <= n; i += sizeof(w)) {
		memcpy(&w, p + i, sizeof(w));
		acc |= w;
	}
	for (; i < n; i++)
		acc |= (unsigned char)p[i];
	return (acc & UINT64_C(0x8080808080808080)) != 0;
}

/* Set the mode, the size limit and the output, and reset the state. */
void smtp_data_init(struct smtp_data *d, enum smtp_data_mode mode, uint64_t max_size,
		    smtp_data_output_fn *output, void *output_ctx)
{
	d->mode = mode;
	d->max_size = max_size;
	d->output = output;
	d->output_ctx = output_ctx;
	d->header_end = NULL;
	smtp_data_reset(d);
}

void smtp_data_set_header_end(struct smtp_data *d, smtp_data_header_end_fn *fn)
{
	d->header_end = fn;
}

/* Start a new message with the same configuration (results cleared). */
void smtp_data_reset(struct smtp_data *d)
{
	/* One assignment, so that no field added later can be forgotten. */
	*d = (struct smtp_data){
		.mode = d->mode,
		.max_size = d->max_size,
		.output = d->output,
		.output_ctx = d->output_ctx,
		.state = DS_LINE_START,
		.header_end = d->header_end,
		.in_header = true,
		.header_state = HDR_NAME,
		.header_cands = ALL_NAMES,
	};
}

/* Feed n octets; returns how many were consumed (DATA: up to the end of data). */
size_t smtp_data_feed(struct smtp_data *d, const char *p, size_t n)
{
	struct run r = { p, false, NULL };
	size_t i = 0;

	if (d->done || n == 0)
		return 0;
	while (i < n) {
		switch (d->state) {
		case DS_LINE_START:
			if (d->mode == SMTP_DATA_MODE_DATA && p[i] == '.') {
				flush(d, &r, p + i);
				d->line_len = 0; /* the stuffing dot does not count (RFC 5321 4.5.3.1.6) */
				r.ptr = p + ++i;
				d->state = DS_DOT;
			} else {
				d->state = DS_TEXT;
			}
			break;
		case DS_DOT:
			if (p[i] == '\r') {
				/* Kept out of the run: the terminator's CR unless no LF follows. */
				d->line_len = 1;
				r.ptr = p + ++i;
				d->state = DS_DOT_CR;
			} else {
				d->state = DS_TEXT;
			}
			break;
		case DS_DOT_CR:
			if (p[i] == '\n') {
				/* The run is empty here: the dot and the CR were never in it. */
				if (d->in_header)
					header_section_end(d);
				d->done = true;
				i++;
				goto out;
			}
			fail_at(d, &r, p + i, SMTP_DATA_BARE_CR);
			emit(d, "\r", 1);
			d->header_state = HDR_SKIP;
			d->state = DS_TEXT;
			break;
		case DS_CR:
			/* Only ever the state at the start of a feed. */
			d->state = DS_TEXT;
			if (p[i] == '\n') {
				if (d->in_header && d->line_len == 1)
					header_section_end(d); /* the run is empty: before the CRLF */
				r.cr = true; /* so the CR position is not needed */
				line_grow_lf(d, &r, NULL);
				line_end(d);
				i++;
			} else {
				fail_at(d, &r, p + i, SMTP_DATA_BARE_CR);
				emit(d, "\r", 1);
			}
			break;
		default: /* DS_TEXT */
			i = scan_text(d, &r, p, i, n);
			break;
		}
	}
	flush(d, &r, p + n);
out:
	if (!d->eight_bit)
		d->eight_bit = has_8bit(p, i);
	return i;
}

/* BDAT: after the LAST chunk; adds a final CRLF if missing. */
void smtp_data_bdat_end(struct smtp_data *d)
{
	if (d->mode != SMTP_DATA_MODE_BDAT)
		return;
	if (d->state == DS_CR) {
		/* Nothing follows the CR held back from the last chunk. */
		d->flags |= SMTP_DATA_BARE_CR;
		emit(d, "\r", 1);
		d->state = DS_TEXT;
	}
	if (d->state != DS_LINE_START) {
		/* The stored line gets the CRLF, so the limit counts it. */
		if (d->line_len <= SMTP_DATA_LINE_MAX && d->line_len + 2 > SMTP_DATA_LINE_MAX)
			d->flags |= SMTP_DATA_LINE_TOO_LONG;
		emit(d, "\r\n", 2);
		d->line_len = 0;
		d->state = DS_LINE_START;
	}
	if (d->in_header)
		header_section_end(d); /* a message without body */
}
