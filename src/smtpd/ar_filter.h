/*
 * ar_filter: removes forged Authentication-Results header fields from a
 * message as it streams to the spool (RFC 8601 5).
 *
 * carteiro adds its own Authentication-Results (authserv-id = its hostname)
 * to the mail it checks. A field with that authserv-id that arrives in the
 * message did not come from us: a sender could otherwise hand the recipient
 * "dkim=pass dmarc=pass" results in our name. RFC 8601 5: an MTA at the
 * boundary MUST delete any instance that claims by its authserv-id to have
 * been added within its trust boundary. Fields of other authserv-ids are
 * kept, and so is everything after the header section.
 *
 * A resumable filter over (ptr, len) between the DATA/BDAT reader and the
 * spool: the output is the same however the message is split into writes.
 * Its input is the reader's output (lines end in CRLF; no bare CR or LF).
 * A field whose name is Authentication-Results is held back until its
 * authserv-id (the first token of its value, after any comments and folding)
 * is known; at most AR_FILTER_HOLD_MAX octets are held: a field that has not
 * shown its authserv-id by then is removed (no honest field starts with a
 * kilobyte of comments). A removed field goes with its continuation lines.
 */
#ifndef CARTEIRO_SMTPD_AR_FILTER_H
#define CARTEIRO_SMTPD_AR_FILTER_H

#include <stdbool.h>
#include <stddef.h>

#define AR_FILTER_HOLD_MAX 1024
#define AR_FILTER_ID_MAX 255

typedef int ar_filter_output_fn(void *ctx, const char *p, size_t n);

struct ar_filter {
	char id[AR_FILTER_ID_MAX + 1]; /* the authserv-id to remove, lower case */
	size_t id_len;
	ar_filter_output_fn *output;
	void *ctx;
	int state;
	int resume;        /* the holding state to return to after a folded line end */
	bool dropping;     /* the field being read is removed (its continuation lines too) */
	size_t matched;    /* octets of the name, or of the authserv-id, that match */
	bool mismatch;     /* the authserv-id read so far differs */
	unsigned depth;    /* comment nesting */
	bool escaped;      /* a backslash in a comment or quoted string */
	char hold[AR_FILTER_HOLD_MAX];
	size_t hold_len;
	unsigned removed;  /* fields removed so far */
	int error;         /* the first error of output (negative), then nothing is written */
};

/* authserv_id: our hostname (compared without regard to case). */
void ar_filter_init(struct ar_filter *f, const char *authserv_id, ar_filter_output_fn *output,
		    void *ctx);
/* Filter n more octets of the message. 0, or the output's first error. */
int ar_filter_write(struct ar_filter *f, const char *p, size_t n);
/* The message is complete: write what is still held. 0 or the output's first error. */
int ar_filter_end(struct ar_filter *f);

#endif
