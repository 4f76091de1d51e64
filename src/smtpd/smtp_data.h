/*
 * smtp_data: the reader of message content, for DATA (RFC 5321 4.1.1.4,
 * 4.5.2) and BDAT (RFC 3030).
 *
 * A resumable state machine over (ptr, len): feed it the bytes as they arrive,
 * in chunks of any size (one byte at a time works the same as all at once).
 * It writes the message as it will be stored, CRLF line ends, to an output
 * callback, and keeps everything it needs across calls in struct smtp_data.
 *
 * DATA mode: dot-unstuffing (a line starting with '.' loses that dot); only
 * CRLF "." CRLF ends the data. A bare LF or a bare CR anywhere (including the
 * smuggling variants "\n.\n", "\r.\r", "\r\n.\n", "\n.\r\n", ...) is never an
 * end of data: it sets SMTP_DATA_BARE_LF / SMTP_DATA_BARE_CR, and since the
 * message will be refused the output stops, but reading goes on to the real
 * CRLF.CRLF so that the session stays in step with the client (the refused
 * bytes, a smuggled "second message" among them, are simply discarded).
 *
 * BDAT mode: the chunk size is known; no dot-unstuffing and no end marker.
 * The caller feeds exactly the chunk's bytes; smtp_data_bdat_end() is called
 * after the LAST chunk. Bare CR / LF are flagged the same way. A CR that ends
 * one chunk and the LF that starts the next are one line end.
 * If the message does not end with CRLF, smtp_data_bdat_end() adds one.
 *
 * Both modes:
 *  - a text line longer than SMTP_DATA_LINE_MAX octets (CRLF included,
 *    RFC 5321 4.5.3.1.6) sets SMTP_DATA_LINE_TOO_LONG;
 *  - more than max_size octets of output sets SMTP_DATA_TOO_BIG;
 *  - in the header section (up to the first empty line), header lines whose
 *    name is "Received" (any case) are counted in received_count, and the
 *    presence of Date and Message-ID is recorded in headers_seen;
 *  - with a header_end callback (smtp_data_set_header_end), the text it
 *    returns is inserted at the end of the header section: before the empty
 *    line that ends it, or at the end of a message that has no body. RFC 6409
 *    8 lets a submission server add a missing Date or Message-ID this way.
 * After the first error flag, nothing more is written to the output; the
 * session reads on to the end and then refuses the message with the reason.
 */
#ifndef CARTEIRO_SMTPD_SMTP_DATA_H
#define CARTEIRO_SMTPD_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SMTP_DATA_LINE_MAX 1000

enum smtp_data_mode {
	SMTP_DATA_MODE_DATA,
	SMTP_DATA_MODE_BDAT,
};

enum {
	SMTP_DATA_BARE_LF = 1 << 0,
	SMTP_DATA_BARE_CR = 1 << 1,
	SMTP_DATA_LINE_TOO_LONG = 1 << 2,
	SMTP_DATA_TOO_BIG = 1 << 3,
	SMTP_DATA_OUTPUT_FAILED = 1 << 4, /* the output callback returned an error */
};

/* smtp_data.headers_seen */
enum {
	SMTP_DATA_HDR_DATE = 1 << 0,
	SMTP_DATA_HDR_MESSAGE_ID = 1 << 1,
};

/* Receives output bytes; returns 0, or <0 to stop output (sets OUTPUT_FAILED). */
typedef int smtp_data_output_fn(void *ctx, const char *p, size_t n);
/* At the end of the header section, with the SMTP_DATA_HDR_* seen: whole header lines
 * (CRLF-ended) to insert there, or NULL. */
typedef const char *smtp_data_header_end_fn(void *ctx, unsigned headers_seen);

struct smtp_data {
	/* Configuration, kept across smtp_data_reset(). */
	enum smtp_data_mode mode;
	uint64_t max_size;
	smtp_data_output_fn *output;
	void *output_ctx;
	smtp_data_header_end_fn *header_end; /* NULL: insert nothing */

	/* Parser state; private. */
	int state;              /* where the reader stands in the line (smtp_data.c) */
	size_t line_len;        /* octets in the current line so far, as received */
	bool in_header;         /* still in the header section */
	int header_state;       /* where the current line's field name stands */
	size_t header_name_len; /* octets of the field name matched so far */
	unsigned header_cands;  /* names of interest the field name may still be */

	/* Results. */
	bool done;              /* DATA: CRLF.CRLF seen */
	unsigned flags;         /* SMTP_DATA_* errors */
	uint64_t size;          /* octets written to output (or that would have been) */
	unsigned received_count;
	unsigned headers_seen;  /* SMTP_DATA_HDR_* */
	bool eight_bit;         /* a byte >= 0x80 was seen */
};

/* Set the mode, the size limit and the output, and reset the state. */
void smtp_data_init(struct smtp_data *d, enum smtp_data_mode mode, uint64_t max_size,
		    smtp_data_output_fn *output, void *output_ctx);
/* Call fn (with the output's ctx) at the end of the header section. */
void smtp_data_set_header_end(struct smtp_data *d, smtp_data_header_end_fn *fn);
/* Start a new message with the same configuration (results cleared). */
void smtp_data_reset(struct smtp_data *d);

/*
 * Feed n bytes. Returns how many were consumed: in DATA mode it stops right
 * after the terminating CRLF.CRLF (d->done is then true) so that what follows
 * (pipelined commands) stays with the caller; otherwise consumes everything.
 */
size_t smtp_data_feed(struct smtp_data *d, const char *p, size_t n);
/* BDAT: after the LAST chunk; adds a final CRLF if missing. */
void smtp_data_bdat_end(struct smtp_data *d);

#endif
